//! What one bot measured: its outcome, frames, ticks, round trips, bytes,
//! corrections and interpolation underruns.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use arena_shared::codec::encoded_len;
use arena_shared::netcode::CorrectionStats;
use arena_shared::protocol::{Frame, PlayerId, Seen};
use serde::Serialize;

/// How a bot's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Ran for the whole duration.
    Completed,
    /// Could not connect or complete the handshake (not a rejection).
    ConnectFailed { error: String },
    /// The server refused the handshake.
    Rejected { message: String },
    /// The server sent bytes that did not decode, or out of order.
    ProtocolError { error: String },
    /// The server closed the connection before the end.
    Disconnected { code: u16, reason: String },
}

/// Everything one bot measured.
#[derive(Debug, Clone, Serialize)]
pub struct BotRecord {
    pub index: usize,
    pub id: Option<PlayerId>,
    /// The room the bot played in.
    pub room: Option<String>,
    pub outcome: Outcome,
    pub frames: u64,
    /// Ticks missing between consecutive frames.
    pub tick_gaps: u64,
    pub first_tick: Option<u32>,
    pub last_tick: Option<u32>,
    /// Highest input seq the server acked.
    pub max_ack: u32,
    pub inputs_sent: u32,
    pub rtt_ms: Vec<f64>,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// Time between Welcome and the end of the run.
    pub connected_secs: f64,
    /// Most players seen in one frame.
    pub max_players_seen: usize,
    /// Other players this bot saw change position.
    pub saw_move: BTreeSet<PlayerId>,
    /// Other players this bot saw at all.
    pub saw: BTreeSet<PlayerId>,
    /// How far reconciliation moved this bot's predicted player.
    #[serde(skip)]
    pub corrections: CorrectionStats,
    /// Each correction's size, world units.
    #[serde(skip)]
    pub correction_units: Vec<f64>,
    /// Input ticks at which the bot asked "what would I draw now?".
    pub renders: u64,
    /// Of those, the ones with no newer frame to draw others towards.
    pub underruns: u64,
    /// The interpolation delay the bot's clock settled on, ms.
    pub interp_delay_ms: f64,
    /// Sum over renders of how far behind the estimated server tick the
    /// others were drawn, ms (the playout stretches it during stalls).
    #[serde(skip)]
    pub playout_delay_ms_sum: f64,
    /// Knockouts this bot was credited with, and times it was knocked out
    /// or fell.
    pub knockouts_given: u32,
    pub knockouts_taken: u32,
    /// Bytes of the frames received, by part.
    pub frame_bytes: FrameBytes,
    /// New connections after a `Moved` or a drop, the longest time without
    /// one (ms), and what they lost: the player (a new id), and points of
    /// the round in progress.
    pub reconnects: u32,
    pub worst_gap_ms: f64,
    /// The longest time between two frames, ms: a room paused, moved or
    /// failed over, or a reconnect, as the player saw it.
    pub longest_silence_ms: f64,
    /// When the last frame came.
    #[serde(skip)]
    pub last_frame_at: Option<std::time::Instant>,
    pub players_lost: u32,
    pub points_lost: i64,
    /// The most ticks a resumed room went back behind what this bot had
    /// already seen (0: nothing it saw was taken back).
    pub ticks_taken_back: u32,
    /// The newest tick seen before a reconnect, until the first frame after.
    #[serde(skip)]
    pub resumed_after: Option<u32>,
    #[serde(skip)]
    first_pos: BTreeMap<PlayerId, (i16, i16)>,
}

impl BotRecord {
    pub fn new(index: usize, outcome: Outcome) -> Self {
        BotRecord {
            index,
            id: None,
            room: None,
            outcome,
            frames: 0,
            tick_gaps: 0,
            first_tick: None,
            last_tick: None,
            max_ack: 0,
            inputs_sent: 0,
            rtt_ms: Vec::new(),
            bytes_down: 0,
            bytes_up: 0,
            connected_secs: 0.0,
            max_players_seen: 0,
            saw_move: BTreeSet::new(),
            saw: BTreeSet::new(),
            corrections: CorrectionStats::default(),
            correction_units: Vec::new(),
            renders: 0,
            underruns: 0,
            interp_delay_ms: 0.0,
            playout_delay_ms_sum: 0.0,
            knockouts_given: 0,
            knockouts_taken: 0,
            frame_bytes: FrameBytes::default(),
            reconnects: 0,
            worst_gap_ms: 0.0,
            longest_silence_ms: 0.0,
            last_frame_at: None,
            players_lost: 0,
            points_lost: 0,
            ticks_taken_back: 0,
            resumed_after: None,
            first_pos: BTreeMap::new(),
        }
    }

    /// Counts a frame of `size` bytes: ticks, acks, and its bytes by part.
    /// (Whether ticks only go forward is the session's to check.)
    pub fn observe_frame(&mut self, frame: &Frame, size: usize) {
        if let Some(last) = self.last_tick {
            self.tick_gaps += u64::from(frame.tick.saturating_sub(last).saturating_sub(1));
        }
        self.first_tick.get_or_insert(frame.tick);
        self.last_tick = Some(frame.tick);
        if let Some(before) = self.resumed_after.take() {
            self.ticks_taken_back =
                self.ticks_taken_back.max(before.wrapping_add(1).saturating_sub(frame.tick));
        }
        let now = std::time::Instant::now();
        if let Some(last) = self.last_frame_at.replace(now) {
            self.longest_silence_ms =
                self.longest_silence_ms.max(now.duration_since(last).as_secs_f64() * 1000.0);
        }
        self.frames += 1;
        self.max_ack = self.max_ack.max(frame.ack_seq);
        let header = encoded_len(&(2u32, frame.tick, frame.ack_seq, frame.baseline_age));
        let you = encoded_len(&frame.you);
        let near = encoded_len(&frame.near);
        let all = size.max(header + you + near);
        self.frame_bytes.header += header as u64;
        self.frame_bytes.you += you as u64;
        self.frame_bytes.near += near as u64;
        self.frame_bytes.others += (all - header - you - near) as u64;
    }

    /// Counts who is in view after a frame, and who moved in it.
    pub fn observe_view(&mut self, view: &[(PlayerId, Seen)]) {
        self.max_players_seen = self.max_players_seen.max(view.len() + 1);
        for &(id, seen) in view {
            // Seen moving already: nothing left to learn about this one
            // (one lookup per player per frame, not three inserts).
            if self.saw_move.contains(&id) {
                continue;
            }
            match self.first_pos.entry(id) {
                Entry::Vacant(first) => {
                    first.insert((seen.x, seen.y));
                    self.saw.insert(id);
                }
                Entry::Occupied(first) => {
                    if *first.get() != (seen.x, seen.y) {
                        self.saw_move.insert(id);
                    }
                }
            }
        }
    }
}

/// Frame bytes by part: the header (tick, ack, baseline), your own state,
/// and the others (updates, departures and their counts).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct FrameBytes {
    pub header: u64,
    pub you: u64,
    pub others: u64,
    /// The players near you, exactly, for predicting them.
    pub near: u64,
}

#[cfg(test)]
mod tests {
    use arena_shared::protocol::{Life, PlayerState, ServerMsg};
    use arena_shared::sim::Body;

    use super::*;

    #[test]
    fn frames_count_gaps_bytes_and_moves() {
        let mut record = BotRecord::new(0, Outcome::Completed);
        record.id = Some(1);
        let frame = |tick| Frame {
            tick,
            ack_seq: tick,
            baseline_age: 0,
            you: PlayerState { id: 1, body: Body::default(), life: Life::Alive },
            others: vec![arena_shared::protocol::OtherUpdate { id_gap: 2, dx: 5, dy: 0, life: Life::Alive }],
            gone: Vec::new(),
            near: Vec::new(),
        };
        let seen = |x| vec![(2, Seen { x, y: 0, life: Life::Alive })];
        let total = encoded_len(&ServerMsg::Frame(frame(14))) as u64;
        record.observe_frame(&frame(10), total as usize);
        record.observe_view(&seen(5));
        record.observe_frame(&frame(11), total as usize);
        record.observe_view(&seen(5));
        assert!(record.saw_move.is_empty(), "should not count a still player as moving");
        record.observe_frame(&frame(14), total as usize);
        record.observe_view(&seen(9));
        assert_eq!(record.tick_gaps, 2, "should count ticks 12 and 13 as missing");
        assert_eq!(record.saw_move, BTreeSet::from([2]), "should see player 2 move");
        assert_eq!(record.max_players_seen, 2, "itself and player 2");
        let bytes = record.frame_bytes;
        assert_eq!(
            bytes.header + bytes.you + bytes.others + bytes.near,
            3 * total,
            "the parts add up to the frames"
        );
        assert_eq!(bytes.near, 3, "nobody near: one byte a frame for the empty list");
        assert!(bytes.others > 0 && bytes.you > bytes.others, "{bytes:?}");
    }
}
