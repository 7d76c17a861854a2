//! The swarm's summary: what `arena-bots` prints, as a table or JSON.

use std::collections::BTreeSet;

use arena_shared::netcode::CorrectionStats;
use serde::Serialize;

use crate::brain::Behaviour;
use crate::config::SwarmConfig;
use crate::record::{BotRecord, FrameBytes, Outcome};
use arena_client_core::conditioner::LinkConditions;

/// Mean bytes per frame by part, over every frame the bots received.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct FrameParts {
    pub header: f64,
    pub you: f64,
    pub others: f64,
    /// The players near each bot, exactly (what neighbour prediction needs).
    pub near: f64,
}

/// Percentiles of a measurement (round trips in milliseconds, say).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of samples sorted ascending.
    pub fn of_sorted(sorted: &[f64]) -> Self {
        Percentiles {
            p50: percentile(sorted, 0.50),
            p95: percentile(sorted, 0.95),
            p99: percentile(sorted, 0.99),
        }
    }
}

/// Prediction corrections over all bots: how often and how far
/// reconciliation moved a bot's own predicted player (world units).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Corrections {
    pub frames: u64,
    pub corrected: u64,
    /// Share of reconciled frames that needed a correction.
    pub rate: f64,
    pub mean_units: f64,
    pub max_units: f64,
    /// Sizes of the corrections that happened (not of every frame), units.
    pub p50_units: f64,
    pub p99_units: f64,
}

impl Corrections {
    fn total(records: &[BotRecord]) -> Self {
        let mut all = CorrectionStats::default();
        for record in records {
            all.merge(&record.corrections);
        }
        let mut sizes: Vec<f64> = records.iter().flat_map(|r| r.correction_units.iter().copied()).collect();
        sizes.sort_by(f64::total_cmp);
        Corrections {
            frames: all.frames,
            corrected: all.corrected,
            rate: all.rate(),
            mean_units: all.mean_units(),
            max_units: all.max_units,
            p50_units: percentile(&sizes, 0.50),
            p99_units: percentile(&sizes, 0.99),
        }
    }
}

/// Reconnections (a `Moved`, or a drop with `--reconnect-secs`): how many,
/// the longest a bot went without its seat, and what the bots' players lost.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Reconnects {
    /// Reconnections that took the seat back, summed over bots.
    pub count: u64,
    /// Bots that reconnected at least once.
    pub bots: usize,
    /// The longest gap between losing the seat and having it back, ms.
    pub worst_gap_ms: f64,
    /// The longest any bot went without a frame, ms (seated or not).
    pub longest_silence_ms: f64,
    /// Reconnections that came back as a different player.
    pub players_lost: u64,
    /// Points a player had before and not after, within the same round.
    pub points_lost: i64,
    /// The most ticks any resumed room went back behind what its player
    /// had seen.
    pub ticks_taken_back: u32,
}

impl Reconnects {
    fn total(records: &[BotRecord]) -> Self {
        Reconnects {
            count: records.iter().map(|r| u64::from(r.reconnects)).sum(),
            bots: records.iter().filter(|r| r.reconnects > 0).count(),
            worst_gap_ms: records.iter().map(|r| r.worst_gap_ms).fold(0.0, f64::max),
            longest_silence_ms: records.iter().map(|r| r.longest_silence_ms).fold(0.0, f64::max),
            players_lost: records.iter().map(|r| u64::from(r.players_lost)).sum(),
            points_lost: records.iter().map(|r| r.points_lost).sum(),
            ticks_taken_back: records.iter().map(|r| r.ticks_taken_back).max().unwrap_or(0),
        }
    }
}

/// The swarm's summary: what `arena-bots` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bots: usize,
    /// Bots that completed the handshake.
    pub connected: usize,
    /// Bots that could not connect or were rejected.
    pub failed: usize,
    /// Of `failed`, those the server rejected (full, bad name, version).
    pub rejected: usize,
    pub protocol_errors: usize,
    /// Bots the server closed before the end.
    pub disconnected: usize,
    pub behaviour: Behaviour,
    pub duration_secs: f64,
    /// Frames received per second, mean over connected bots.
    pub frames_per_sec: f64,
    /// Missing ticks between received frames, summed over bots.
    pub tick_gaps: u64,
    pub rtt_ms: Percentiles,
    /// Payload bytes per second, mean per connected bot.
    pub down_bytes_per_sec: f64,
    /// The same, median and 99th percentile over the connected bots.
    pub down_bytes_per_sec_p50: f64,
    pub down_bytes_per_sec_p99: f64,
    /// Mean bytes per frame received, by part.
    pub frame_bytes: FrameParts,
    pub up_bytes_per_sec: f64,
    /// Most players any bot saw in one frame.
    pub max_players_seen: usize,
    /// Distinct rooms the bots played in.
    pub rooms: usize,
    /// Highest input seq acked, mean per connected bot.
    pub mean_max_ack: f64,
    pub corrections: Corrections,
    /// The link conditioner's settings (all zero: none).
    pub conditions: LinkConditions,
    /// Whether the bots were light (`--light`): then the three
    /// interpolation figures below are `None`, as nothing was drawn.
    pub light: bool,
    /// The interpolation delay the bots' clocks settled on, mean, ms.
    pub interp_delay_ms: Option<f64>,
    /// How far behind the others were actually drawn, mean over renders,
    /// ms: the delay plus what stalls stretched it by.
    pub playout_delay_ms: Option<f64>,
    /// Share of the bots' frames (one per input) with no newer server frame
    /// to draw others towards.
    pub interp_underrun_rate: Option<f64>,
    /// Knockouts the bots were credited with, and times they left the
    /// platform (knocked off or on their own), summed over bots.
    pub knockouts_given: u64,
    pub knockouts_taken: u64,
    /// Times a bot left the platform, per minute of the run.
    pub knockouts_per_min: f64,
    pub reconnects: Reconnects,
    /// What the bots cost this process (Linux; `None` elsewhere, or from a
    /// library caller that did not measure).
    pub cpu: Option<ProcessCpu>,
    /// Up to five distinct failure descriptions.
    pub errors: Vec<String>,
}

/// The bots' own CPU: the process's user + system time over the run.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ProcessCpu {
    pub cpu_seconds: f64,
    /// Of one core, over the run's wall time.
    pub percent_of_one_core: f64,
    /// CPU per frame received, summed over bots: what one bot-frame costs
    /// (receiving, decoding, predicting, sending its inputs).
    pub micros_per_bot_frame: f64,
}

impl ProcessCpu {
    /// From the CPU seconds spent over `wall` seconds, for `records`.
    pub fn over(cpu_seconds: f64, wall: f64, records: &[BotRecord]) -> Self {
        let frames: u64 = records.iter().map(|r| r.frames).sum();
        ProcessCpu {
            cpu_seconds,
            percent_of_one_core: if wall > 0.0 { 100.0 * cpu_seconds / wall } else { 0.0 },
            micros_per_bot_frame: if frames > 0 { cpu_seconds * 1e6 / frames as f64 } else { 0.0 },
        }
    }
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`
/// (in the kernel's fixed 100 ticks a second); `None` off Linux.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

impl Report {
    pub fn from_records(records: &[BotRecord], config: &SwarmConfig) -> Report {
        let connected: Vec<&BotRecord> = records.iter().filter(|r| r.id.is_some()).collect();
        let count = |f: fn(&Outcome) -> bool| records.iter().filter(|r| f(&r.outcome)).count();
        let mean = |f: &dyn Fn(&BotRecord) -> f64| {
            if connected.is_empty() {
                0.0
            } else {
                connected.iter().map(|r| f(r)).sum::<f64>() / connected.len() as f64
            }
        };
        let per_sec = |value: u64, r: &BotRecord| {
            if r.connected_secs > 0.0 { value as f64 / r.connected_secs } else { 0.0 }
        };
        let mut down_rates: Vec<f64> = connected.iter().map(|r| per_sec(r.bytes_down, r)).collect();
        down_rates.sort_by(f64::total_cmp);
        let mut rtts: Vec<f64> = records.iter().flat_map(|r| r.rtt_ms.iter().copied()).collect();
        rtts.sort_by(f64::total_cmp);
        Report {
            bots: records.len(),
            connected: connected.len(),
            failed: count(|o| matches!(o, Outcome::ConnectFailed { .. } | Outcome::Rejected { .. })),
            rejected: count(|o| matches!(o, Outcome::Rejected { .. })),
            protocol_errors: count(|o| matches!(o, Outcome::ProtocolError { .. })),
            disconnected: count(|o| matches!(o, Outcome::Disconnected { .. })),
            behaviour: config.behaviour,
            duration_secs: config.duration.as_secs_f64(),
            frames_per_sec: mean(&|r| per_sec(r.frames, r)),
            tick_gaps: records.iter().map(|r| r.tick_gaps).sum(),
            rtt_ms: Percentiles::of_sorted(&rtts),
            down_bytes_per_sec: mean(&|r| per_sec(r.bytes_down, r)),
            down_bytes_per_sec_p50: percentile(&down_rates, 0.50),
            down_bytes_per_sec_p99: percentile(&down_rates, 0.99),
            frame_bytes: {
                let frames: u64 = records.iter().map(|r| r.frames).sum();
                let part = |f: fn(&FrameBytes) -> u64| {
                    let total: u64 = records.iter().map(|r| f(&r.frame_bytes)).sum();
                    if frames == 0 { 0.0 } else { total as f64 / frames as f64 }
                };
                FrameParts {
                    header: part(|b| b.header),
                    you: part(|b| b.you),
                    others: part(|b| b.others),
                    near: part(|b| b.near),
                }
            },
            up_bytes_per_sec: mean(&|r| per_sec(r.bytes_up, r)),
            max_players_seen: records.iter().map(|r| r.max_players_seen).max().unwrap_or(0),
            rooms: records.iter().filter_map(|r| r.room.as_ref()).collect::<BTreeSet<_>>().len(),
            mean_max_ack: mean(&|r| f64::from(r.max_ack)),
            conditions: config.conditions,
            light: config.light,
            interp_delay_ms: (!config.light).then(|| mean(&|r| r.interp_delay_ms)),
            playout_delay_ms: (!config.light).then(|| {
                let renders: u64 = records.iter().map(|r| r.renders).sum();
                let sum: f64 = records.iter().map(|r| r.playout_delay_ms_sum).sum();
                if renders == 0 { 0.0 } else { sum / renders as f64 }
            }),
            interp_underrun_rate: (!config.light).then(|| {
                let renders: u64 = records.iter().map(|r| r.renders).sum();
                let underruns: u64 = records.iter().map(|r| r.underruns).sum();
                if renders == 0 { 0.0 } else { underruns as f64 / renders as f64 }
            }),
            corrections: Corrections::total(records),
            knockouts_given: records.iter().map(|r| u64::from(r.knockouts_given)).sum(),
            knockouts_taken: records.iter().map(|r| u64::from(r.knockouts_taken)).sum(),
            knockouts_per_min: {
                let taken: u64 = records.iter().map(|r| u64::from(r.knockouts_taken)).sum();
                let minutes = config.duration.as_secs_f64() / 60.0;
                if minutes > 0.0 { taken as f64 / minutes } else { 0.0 }
            },
            reconnects: Reconnects::total(records),
            cpu: None,
            errors: first_errors(records),
        }
    }

    fn describe_interpolation(&self) -> String {
        match (self.interp_delay_ms, self.playout_delay_ms, self.interp_underrun_rate) {
            (Some(delay), Some(behind), Some(underruns)) => format!(
                "delay {delay:.0} ms (drawn {behind:.0} ms behind on average), underruns {:.2}% of frames",
                underruns * 100.0
            ),
            _ => "not measured (light bots draw nothing)".into(),
        }
    }

    /// Whether the run counts as a failure for the exit code.
    pub fn is_failure(&self) -> bool {
        self.failed > 0 || self.protocol_errors > 0
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let rows = [
            ("bots", format!("{} ({:?})", self.bots, self.behaviour).to_lowercase()),
            ("connected", self.connected.to_string()),
            ("failed", format!("{} ({} rejected)", self.failed, self.rejected)),
            ("protocol errors", self.protocol_errors.to_string()),
            ("disconnected early", self.disconnected.to_string()),
            ("frames/s per bot", format!("{:.1}", self.frames_per_sec)),
            ("tick gaps", self.tick_gaps.to_string()),
            (
                "rtt p50/p95/p99",
                format!("{:.2} / {:.2} / {:.2} ms", self.rtt_ms.p50, self.rtt_ms.p95, self.rtt_ms.p99),
            ),
            (
                "down per bot",
                format!(
                    "{:.1} KB/s mean, {:.1} p50, {:.1} p99",
                    self.down_bytes_per_sec / 1000.0,
                    self.down_bytes_per_sec_p50 / 1000.0,
                    self.down_bytes_per_sec_p99 / 1000.0
                ),
            ),
            (
                "frame bytes",
                format!(
                    "{:.1} header + {:.1} you + {:.1} others + {:.1} near",
                    self.frame_bytes.header,
                    self.frame_bytes.you,
                    self.frame_bytes.others,
                    self.frame_bytes.near
                ),
            ),
            ("up per bot", format!("{:.1} KB/s", self.up_bytes_per_sec / 1000.0)),
            ("max players seen", self.max_players_seen.to_string()),
            ("rooms", self.rooms.to_string()),
            ("corrections", self.corrections.describe()),
            ("interpolation", self.describe_interpolation()),
            (
                "knockouts",
                format!(
                    "{} credited, {} off the platform ({:.1} per minute)",
                    self.knockouts_given, self.knockouts_taken, self.knockouts_per_min
                ),
            ),
            ("reconnects", self.reconnects.describe()),
            (
                "own cpu",
                self.cpu.map_or("not measured".into(), |cpu| {
                    format!(
                        "{:.1}% of a core, {:.1} µs per bot-frame",
                        cpu.percent_of_one_core, cpu.micros_per_bot_frame
                    )
                }),
            ),
        ];
        let mut out = String::new();
        for (name, value) in rows {
            out.push_str(&format!("{name:>20}  {value}\n"));
        }
        for error in &self.errors {
            out.push_str(&format!("{:>20}  {error}\n", "error"));
        }
        out
    }
}

impl Corrections {
    /// The table's line for corrections.
    fn describe(&self) -> String {
        format!(
            "{} of {} frames ({:.2}%), mean {:.1}, p50 {:.1}, p99 {:.1}, max {:.1} units",
            self.corrected,
            self.frames,
            self.rate * 100.0,
            self.mean_units,
            self.p50_units,
            self.p99_units,
            self.max_units
        )
    }
}

impl Reconnects {
    /// The table's line for reconnects.
    fn describe(&self) -> String {
        format!(
            "{} by {} bots, worst gap {:.0} ms, {} players and {} points lost, at most {} ticks taken back; longest without a frame {:.0} ms",
            self.count,
            self.bots,
            self.worst_gap_ms,
            self.players_lost,
            self.points_lost,
            self.ticks_taken_back,
            self.longest_silence_ms
        )
    }
}

/// Up to five distinct failure descriptions.
fn first_errors(records: &[BotRecord]) -> Vec<String> {
    let mut errors: Vec<String> = Vec::new();
    for record in records {
        let text = match &record.outcome {
            Outcome::Completed => continue,
            Outcome::ConnectFailed { error } | Outcome::ProtocolError { error } => error.clone(),
            Outcome::Rejected { message } => format!("rejected: {message}"),
            Outcome::Disconnected { code, reason } => format!("closed by server ({code}): {reason}"),
        };
        if errors.len() < 5 && !errors.contains(&text) {
            errors.push(text);
        }
    }
    errors
}

/// Nearest-rank percentile of sorted samples (0 when there are none).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.50), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0, "no samples should give 0");
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn the_bots_own_cpu_is_read_and_shared_over_their_frames() {
        let before = process_cpu_seconds().expect("Linux has /proc/self/stat");
        let mut spin = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = process_cpu_seconds().expect("still there");
        assert!(after - before >= 0.1, "300 ms of spinning shows: {before} → {after}");
        let mut records = vec![BotRecord::new(0, Outcome::Completed), BotRecord::new(1, Outcome::Completed)];
        records[0].frames = 600;
        records[1].frames = 400;
        let cpu = ProcessCpu::over(0.5, 10.0, &records);
        assert_eq!(cpu.percent_of_one_core, 5.0);
        assert_eq!(cpu.micros_per_bot_frame, 500.0, "0.5 s over 1,000 frames");
    }
}
