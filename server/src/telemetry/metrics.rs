//! The server's figures, served at `/metrics` in Prometheus's text format
//! by `prometheus-client` (the Prometheus project's Rust client): counters
//! and gauges in a registry, the tick-time histograms as our own lock-free
//! type the registry encodes, and the rooms' figures (totals for the
//! public, one series per room for operators) collected at each scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why the server threw a connection out; one counter each, labelled
/// `arena_kicks_total{reason="..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// Bytes that did not decode, a text message, a message out of order or too big.
    Protocol,
    /// More messages (control frames included) than `--max-message-rate` allows.
    RateLimit,
    /// Frames going stale, events piling up, or pings unanswered.
    TooSlow,
    /// Nothing heard for the idle timeout.
    Idle,
    /// No `Hello` in time after the upgrade.
    BadHandshake,
    /// Refused with 503: too many connections in all or from one address.
    ConnectionCap,
    /// The HTTP request head did not arrive within `--header-timeout-ms`.
    HeaderTimeout,
}

impl Kick {
    pub const ALL: [Kick; 7] = [
        Kick::Protocol,
        Kick::RateLimit,
        Kick::TooSlow,
        Kick::Idle,
        Kick::BadHandshake,
        Kick::ConnectionCap,
        Kick::HeaderTimeout,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kick::Protocol => "protocol",
            Kick::RateLimit => "rate_limit",
            Kick::TooSlow => "too_slow",
            Kick::Idle => "idle",
            Kick::BadHandshake => "bad_handshake",
            Kick::ConnectionCap => "connection_cap",
            Kick::HeaderTimeout => "header_timeout",
        }
    }
}

/// Upper bounds (µs) of the tick-time histogram's buckets; a 30 Hz tick has
/// 33,333 µs.
pub const TICK_BUCKETS_MICROS: [u64; 10] =
    [100, 250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 33_333, 100_000];

/// Tick times as a Prometheus histogram (one extra bucket for +Inf): three
/// relaxed atomic adds per tick, no lock, and bucket quantiles for
/// `/healthz`.
#[derive(Debug, Default)]
pub struct TickHistogram {
    buckets: [AtomicU64; TICK_BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl TickHistogram {
    pub fn record(&self, micros: u64) {
        let bucket =
            TICK_BUCKETS_MICROS.iter().position(|&le| micros <= le).unwrap_or(TICK_BUCKETS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    pub fn sum_micros(&self) -> u64 {
        self.sum_micros.load(Relaxed)
    }

    /// The bucket bound the `q` quantile falls under (µs); `None` with no
    /// ticks, `u64::MAX` past the last bound.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        bucket_quantile(&self.counts(), q)
    }

    /// Ticks per bucket so far (the last bucket: over every bound).
    pub fn counts(&self) -> TickCounts {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }
}

/// A tick histogram's bucket counts at one moment: the difference of two is
/// the ticks in between.
pub type TickCounts = [u64; TICK_BUCKETS_MICROS.len() + 1];

/// The bucket bound the `q` quantile of `counts` falls under (µs); `None`
/// with no ticks, `u64::MAX` past the last bound.
pub fn bucket_quantile(counts: &TickCounts, q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(TICK_BUCKETS_MICROS.get(i).copied().unwrap_or(u64::MAX));
        }
    }
    Some(u64::MAX)
}

impl EncodeMetric for TickHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let bounds = TICK_BUCKETS_MICROS.iter().map(|&le| le as f64).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(self.buckets.iter().map(|b| b.load(Relaxed))).collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum_micros() as f64, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A histogram shared between the registry and the code that records.
#[derive(Debug, Clone, Default)]
struct SharedHistogram(Arc<TickHistogram>);

impl EncodeMetric for SharedHistogram {
    fn encode(&self, encoder: MetricEncoder) -> std::fmt::Result {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One room's figures, for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RoomStats {
    pub players: AtomicU64,
    /// Watchers (no seat; not in `players`).
    pub watchers: AtomicU64,
    pub tick: AtomicU64,
    pub ticks: TickHistogram,
}

/// A kick's label set: `reason="…"`.
type KickLabel = [(&'static str, &'static str); 1];

/// Process-wide counters, registered once; each is independent and only
/// read for reporting.
#[derive(Debug)]
pub struct Metrics {
    /// Longest tick seen, µs.
    pub tick_micros_max: Gauge,
    /// TCP connections open right now (HTTP and WebSocket).
    pub connections_open: Gauge,
    /// WebSocket upgrades accepted.
    pub connections_total: Counter,
    /// Handshakes refused (version, full, bad name).
    pub rejected_total: Counter,
    /// Upgrades refused for their Origin.
    pub bad_origin_total: Counter,
    /// `accept` calls that failed (out of file descriptors, for one).
    pub accept_errors_total: Counter,
    /// Connection tasks that panicked; their seats were still freed.
    pub task_panics_total: Counter,
    /// Frames replaced in an outbox before the writer took them.
    pub frames_dropped_total: Counter,
    /// Inputs dropped because a client sent faster than its queue drains.
    pub inputs_dropped_total: Counter,
    /// Ticks rooms skipped because they ran late (the players' input time
    /// for them is still granted).
    pub ticks_skipped_total: Counter,
    /// Binary messages written to sockets.
    pub messages_out_total: Counter,
    pub bytes_out_total: Counter,
    /// Writes the tick made straight to a player's socket (plain TCP).
    pub writes_direct_total: Counter,
    /// Writes a connection's writer task made: what the socket would not
    /// take at once, a held `Welcome`, everything on TLS.
    pub writes_by_writer_total: Counter,
    pub bytes_in_total: Counter,
    /// `Join { code }` handshakes whose code named no open room.
    pub room_code_misses_total: Counter,
    /// Handshakes refused because their address had used up its budget of
    /// wrong room codes.
    pub guesses_limited_total: Counter,
    /// Private rooms refused because their address had its limit open.
    pub rooms_limited_total: Counter,
    /// Dropped seats freed at once because their address (or room) already
    /// had its limit of held seats.
    pub holds_refused_total: Counter,
    /// TLS handshakes refused (over the per-address budget, or too many at once).
    pub tls_refused_total: Counter,
    /// Public API reads refused (429): their address was over its rate.
    pub public_reads_limited_total: Counter,
    /// Every room's tick times; its count and sum are the ticks run and the
    /// time spent ticking.
    pub tick_histogram: Arc<TickHistogram>,
    /// Cluster mode: room leases this node holds now.
    pub leases_held: Gauge,
    /// Lease renewals that went through.
    pub lease_renewals_total: Counter,
    /// Renewals that found the lease gone (it ran out, or another node took it).
    pub leases_lost_total: Counter,
    /// Rooms saved to Redis.
    pub checkpoints_total: Counter,
    /// Rooms this node handed to another (a drain), and took from one.
    pub handovers_out_total: Counter,
    pub handovers_in_total: Counter,
    /// Rooms this node brought back from a crashed node's last save.
    pub restores_total: Counter,
    /// Round trips to the cluster's Redis (lease renewals), seconds.
    pub redis_seconds: Histogram,
    /// Ticks appended to the input log, and their bytes.
    pub log_ticks_total: Counter,
    pub log_bytes_total: Counter,
    /// Writes to the input log that did not go through (the room played
    /// on unlogged until its next checkpoint went through).
    pub log_failures_total: Counter,
    /// The node's input-log writes to Redis (each carries every room's
    /// ticks that waited), and how long a room held its frames for one.
    pub log_writes_total: Counter,
    pub log_wait_seconds: Histogram,
    /// Ticks re-run from the input log when restoring rooms.
    pub log_rerun_ticks_total: Counter,
    /// This node's id in the cluster, once it has one.
    pub node: Arc<std::sync::OnceLock<String>>,
    /// Connections thrown out, by [`Kick`].
    kicks: Family<KickLabel, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            tick_micros_max: Gauge::default(),
            connections_open: Gauge::default(),
            connections_total: Counter::default(),
            rejected_total: Counter::default(),
            bad_origin_total: Counter::default(),
            accept_errors_total: Counter::default(),
            task_panics_total: Counter::default(),
            frames_dropped_total: Counter::default(),
            inputs_dropped_total: Counter::default(),
            ticks_skipped_total: Counter::default(),
            messages_out_total: Counter::default(),
            bytes_out_total: Counter::default(),
            writes_direct_total: Counter::default(),
            writes_by_writer_total: Counter::default(),
            bytes_in_total: Counter::default(),
            room_code_misses_total: Counter::default(),
            guesses_limited_total: Counter::default(),
            rooms_limited_total: Counter::default(),
            holds_refused_total: Counter::default(),
            tls_refused_total: Counter::default(),
            public_reads_limited_total: Counter::default(),
            tick_histogram: Arc::default(),
            leases_held: Gauge::default(),
            lease_renewals_total: Counter::default(),
            leases_lost_total: Counter::default(),
            checkpoints_total: Counter::default(),
            handovers_out_total: Counter::default(),
            handovers_in_total: Counter::default(),
            restores_total: Counter::default(),
            redis_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 14)),
            log_ticks_total: Counter::default(),
            log_bytes_total: Counter::default(),
            log_failures_total: Counter::default(),
            log_writes_total: Counter::default(),
            log_wait_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 14)),
            log_rerun_ticks_total: Counter::default(),
            node: Arc::default(),
            kicks: Family::default(),
            registry: Registry::default(),
        };
        metrics.register();
        metrics
    }
}

/// How many plain counters there are ([`Metrics::counters`]).
const COUNTERS: usize = 30;

impl Metrics {
    /// Registers every series (counters named without `_total`: the
    /// encoder adds it).
    fn register(&mut self) {
        let counters = self.counters().map(|(name, help, counter)| (name, help, counter.clone()));
        let r = &mut self.registry;
        r.register("arena_tick_micros_max", "longest tick, microseconds", self.tick_micros_max.clone());
        r.register("arena_connections_open", "TCP connections open", self.connections_open.clone());
        for (name, help, counter) in counters {
            r.register(name, help, counter);
        }
        // Every reason is listed, at 0 until it happens.
        for kind in Kick::ALL {
            let _ = self.kicks.get_or_create(&[("reason", kind.label())]);
        }
        r.register("arena_kicks", "connections thrown out, by reason", self.kicks.clone());
        r.register("arena_leases_held", "room leases this node holds (cluster)", self.leases_held.clone());
        r.register("arena_redis_seconds", "round trips to the cluster's Redis", self.redis_seconds.clone());
        r.register(
            "arena_log_wait_seconds",
            "frames held for the input log, a tick",
            self.log_wait_seconds.clone(),
        );
        r.register_collector(Box::new(NodeId(self.node.clone())));
        let ticks = SharedHistogram(self.tick_histogram.clone());
        r.register("arena_tick_micros", "tick time in every room, microseconds", ticks.clone());
        r.register_collector(Box::new(TickTotals(ticks)));
    }

    /// Every plain counter: name (without `_total`), help, the counter.
    fn counters(&self) -> [(&'static str, &'static str, &Counter); COUNTERS] {
        [
            ("arena_connections", "websocket upgrades", &self.connections_total),
            ("arena_rejected", "handshakes refused", &self.rejected_total),
            ("arena_bad_origin", "upgrades refused for their origin", &self.bad_origin_total),
            ("arena_accept_errors", "failed accepts", &self.accept_errors_total),
            ("arena_task_panics", "connection tasks that panicked", &self.task_panics_total),
            ("arena_frames_dropped", "frames replaced before sending", &self.frames_dropped_total),
            ("arena_inputs_dropped", "inputs dropped for flooding", &self.inputs_dropped_total),
            ("arena_ticks_skipped", "ticks rooms skipped running late", &self.ticks_skipped_total),
            ("arena_messages_out", "messages written", &self.messages_out_total),
            ("arena_bytes_out", "payload bytes written", &self.bytes_out_total),
            ("arena_writes_direct", "writes the tick made to a player's socket", &self.writes_direct_total),
            ("arena_writes_by_writer", "writes by connections' writer tasks", &self.writes_by_writer_total),
            ("arena_bytes_in", "payload bytes read", &self.bytes_in_total),
            (
                "arena_room_code_misses",
                "joins by a code that named no open room",
                &self.room_code_misses_total,
            ),
            (
                "arena_guesses_limited",
                "joins refused: the address tried too many wrong codes",
                &self.guesses_limited_total,
            ),
            (
                "arena_rooms_limited",
                "private rooms refused: the address has its limit open",
                &self.rooms_limited_total,
            ),
            (
                "arena_holds_refused",
                "dropped seats freed at once: the address or room holds its limit",
                &self.holds_refused_total,
            ),
            ("arena_tls_refused", "TLS handshakes refused", &self.tls_refused_total),
            (
                "arena_public_reads_limited",
                "public API reads refused (429): the address was over its rate",
                &self.public_reads_limited_total,
            ),
            ("arena_lease_renewals", "room lease renewals (cluster)", &self.lease_renewals_total),
            ("arena_leases_lost", "room leases found gone at renewal (cluster)", &self.leases_lost_total),
            ("arena_checkpoints", "rooms saved to Redis (cluster)", &self.checkpoints_total),
            ("arena_handovers_out", "rooms handed to another node (cluster)", &self.handovers_out_total),
            ("arena_handovers_in", "rooms taken from a draining node (cluster)", &self.handovers_in_total),
            ("arena_restores", "rooms restored from a crashed node's save (cluster)", &self.restores_total),
            ("arena_log_ticks", "room ticks appended to the input log (cluster)", &self.log_ticks_total),
            ("arena_log_bytes", "bytes appended to the input log (cluster)", &self.log_bytes_total),
            (
                "arena_log_failures",
                "input-log writes that failed: played on unlogged",
                &self.log_failures_total,
            ),
            ("arena_log_writes", "the node's pipelined input-log writes to Redis", &self.log_writes_total),
            (
                "arena_log_rerun_ticks",
                "ticks re-run from the input log on restores",
                &self.log_rerun_ticks_total,
            ),
        ]
    }

    pub fn kick(&self, kind: Kick) {
        self.kicks.get_or_create(&[("reason", kind.label())]).inc();
    }

    pub fn kicks(&self, kind: Kick) -> u64 {
        self.kicks.get_or_create(&[("reason", kind.label())]).get()
    }

    pub fn record_tick(&self, took: Duration) {
        let micros = took.as_micros() as u64;
        self.tick_micros_max.inner().fetch_max(i64::try_from(micros).unwrap_or(i64::MAX), Relaxed);
        self.tick_histogram.record(micros);
    }

    /// Prometheus text exposition format; `rooms` are the open rooms' codes
    /// and figures, `replays` what the replay store holds. The public sees
    /// totals only; with `detail` (operators) each room is a series
    /// labelled with its code, private ones included.
    pub fn render(&self, rooms: &[(String, Arc<RoomStats>)], detail: bool, replays: ReplayFigures) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(RoomFigures { rooms: rooms.to_vec(), detail }));
        scrape.register_collector(Box::new(replays));
        let mut out = String::with_capacity(4096 + 512 * rooms.len());
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// `arena_cluster_node{node="…"} 1`: which node this is (cluster mode).
#[derive(Debug)]
struct NodeId(Arc<std::sync::OnceLock<String>>);

impl Collector for NodeId {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(node) = self.0.get() else { return Ok(()) };
        let mut metric =
            encoder.encode_descriptor("arena_cluster_node", "this node's id", None, MetricType::Gauge)?;
        ConstGauge::new(1).encode(metric.encode_family(&[("node", node.as_str())])?)
    }
}

/// `arena_ticks_total` and `arena_tick_micros_total`, read off the histogram.
#[derive(Debug)]
struct TickTotals(SharedHistogram);

impl Collector for TickTotals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let ticks = &self.0.0;
        let totals = [
            ("arena_ticks", "ticks run", ticks.count()),
            ("arena_tick_micros", "time spent ticking, microseconds", ticks.sum_micros()),
        ];
        for (name, help, value) in totals {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}

/// What the replay store holds at one scrape, as counted against its caps.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayFigures {
    /// Rounds and bytes in memory (`--replay-memory-mb`).
    pub rounds: usize,
    pub bytes: usize,
    /// Files and bytes in `--replay-dir` (`--replay-dir-mb`).
    pub files: usize,
    pub file_bytes: usize,
    /// Memory the rounds being recorded hold (granted from their half of
    /// `--replay-memory-mb`), and rounds no longer recorded for want of it.
    pub recording_bytes: usize,
    pub recordings_cut: u64,
}

impl Collector for ReplayFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let gauges = [
            ("arena_replays_kept", "recorded rounds kept in memory", self.rounds),
            (
                "arena_replay_bytes",
                "memory the kept rounds cost, as counted against --replay-memory-mb",
                self.bytes,
            ),
            ("arena_replay_files", "recorded rounds in --replay-dir", self.files),
            (
                "arena_replay_file_bytes",
                "disk they take, in whole blocks, against --replay-dir-mb",
                self.file_bytes,
            ),
            (
                "arena_replay_recording_bytes",
                "memory the rounds being recorded hold, against half of --replay-memory-mb",
                self.recording_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "arena_replay_recordings_cut",
            "rounds whose recording stopped because the rounds being recorded held all they may",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.recordings_cut).encode(metric)?;
        Ok(())
    }
}

/// The open rooms at one scrape: how many and their players for everyone;
/// each room's players and tick times, by code, for operators.
#[derive(Debug)]
struct RoomFigures {
    rooms: Vec<(String, Arc<RoomStats>)>,
    detail: bool,
}

impl Collector for RoomFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let players: u64 = self.rooms.iter().map(|(_, r)| r.players.load(Relaxed)).sum();
        let metric =
            encoder.encode_descriptor("arena_players", "players in every room", None, MetricType::Gauge)?;
        ConstGauge::new(players as i64).encode(metric)?;
        let metric = encoder.encode_descriptor("arena_rooms", "open rooms", None, MetricType::Gauge)?;
        ConstGauge::new(self.rooms.len() as i64).encode(metric)?;
        if !self.detail {
            return Ok(());
        }
        let mut metric =
            encoder.encode_descriptor("arena_room_players", "players per room", None, MetricType::Gauge)?;
        for (code, room) in &self.rooms {
            let labels = [("room", code.as_str())];
            ConstGauge::new(room.players.load(Relaxed) as i64).encode(metric.encode_family(&labels)?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "arena_room_tick_micros",
            "tick time per room, microseconds",
            None,
            MetricType::Histogram,
        )?;
        for (code, room) in &self.rooms {
            room.ticks.encode(metric.encode_family(&[("room", code.as_str())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_codes_appear_only_in_the_detailed_rendering() {
        let metrics = Metrics::default();
        let stats = Arc::new(RoomStats::default());
        stats.players.store(3, Relaxed);
        stats.ticks.record(700);
        let rooms = [("secretcode".to_owned(), stats)];
        let public = metrics.render(&rooms, false, ReplayFigures::default());
        assert!(!public.contains("secretcode"), "the public rendering names no room:\n{public}");
        assert!(public.contains("arena_players 3\n") && public.contains("arena_rooms 1\n"), "{public}");
        let detail = metrics.render(&rooms, true, ReplayFigures::default());
        assert!(detail.contains("arena_room_players{room=\"secretcode\"} 3\n"), "{detail}");
        assert!(detail.contains("arena_room_tick_micros_count{room=\"secretcode\"} 1\n"), "{detail}");
    }

    #[test]
    fn counters_gauges_and_tick_totals_render_as_before() {
        let metrics = Metrics::default();
        metrics.bytes_in_total.inc_by(42);
        metrics.connections_open.inc();
        metrics.record_tick(Duration::from_micros(300));
        metrics.record_tick(Duration::from_micros(1_200));
        let text = metrics.render(&[], false, ReplayFigures::default());
        for line in [
            "# TYPE arena_bytes_in_total counter\n",
            "arena_bytes_in_total 42\n",
            "arena_connections_open 1\n",
            "arena_tick_micros_max 1200\n",
            "arena_ticks_total 2\n",
            "arena_tick_micros_total 1500\n",
            "arena_tick_micros_bucket{le=\"500\"} 1\n",
            "arena_tick_micros_count 2\n",
        ] {
            assert!(text.contains(line), "should render {line:?} in:\n{text}");
        }
    }

    #[test]
    fn the_histogram_gives_bucket_quantiles_and_renders_cumulatively() {
        let histogram = TickHistogram::default();
        assert_eq!(histogram.quantile(0.5), None, "no ticks, no quantile");
        for micros in [50, 90, 300, 300, 300, 300, 300, 300, 300, 5_000] {
            histogram.record(micros);
        }
        assert_eq!(histogram.quantile(0.5), Some(500), "the median tick is under 500 µs");
        assert_eq!(histogram.quantile(0.99), Some(8_000), "the slowest is under 8 ms");
        let stats = Arc::new(RoomStats { ticks: histogram, ..RoomStats::default() });
        let out = Metrics::default().render(&[("a".to_owned(), stats)], true, ReplayFigures::default());
        assert!(out.contains("arena_room_tick_micros_bucket{room=\"a\",le=\"100\"} 2\n"), "{out}");
        assert!(out.contains("arena_room_tick_micros_bucket{room=\"a\",le=\"+Inf\"} 10\n"), "{out}");
        assert!(out.contains("arena_room_tick_micros_count{room=\"a\"} 10\n"), "{out}");
    }

    #[test]
    fn every_kick_kind_is_rendered_with_its_own_count() {
        let metrics = Metrics::default();
        for (n, kind) in Kick::ALL.into_iter().enumerate() {
            for _ in 0..n {
                metrics.kick(kind);
            }
        }
        let text = metrics.render(&[], false, ReplayFigures::default());
        for (n, kind) in Kick::ALL.into_iter().enumerate() {
            let line = format!("arena_kicks_total{{reason=\"{}\"}} {n}", kind.label());
            assert!(text.contains(&line), "should render {line:?} in:\n{text}");
        }
    }
}
