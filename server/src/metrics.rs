//! Counters the server keeps, served as Prometheus text at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

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

/// Tick times as a Prometheus-style histogram (one extra bucket for +Inf).
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
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Relaxed);
            if seen >= rank {
                return Some(TICK_BUCKETS_MICROS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = TICK_BUCKETS_MICROS.get(i).map_or("+Inf".to_owned(), u64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_micros.load(Relaxed));
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// One room's figures, for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RoomStats {
    pub players: AtomicU64,
    pub tick: AtomicU64,
    pub ticks: TickHistogram,
}

/// Process-wide counters. Relaxed atomics: each is independent and only read
/// for reporting.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Longest tick seen.
    pub tick_micros_max: AtomicU64,
    /// TCP connections open right now (HTTP and WebSocket).
    pub connections_open: AtomicU64,
    /// WebSocket upgrades accepted.
    pub connections_total: AtomicU64,
    /// Handshakes refused (version, full, bad name).
    pub rejected_total: AtomicU64,
    /// Upgrades refused for their Origin.
    pub bad_origin_total: AtomicU64,
    /// `accept` calls that failed (out of file descriptors, for one).
    pub accept_errors_total: AtomicU64,
    /// Connection tasks that panicked; their seats were still freed.
    pub task_panics_total: AtomicU64,
    /// Frames replaced in an outbox before the writer took them.
    pub frames_dropped_total: AtomicU64,
    /// Inputs dropped because a client sent faster than its queue drains.
    pub inputs_dropped_total: AtomicU64,
    /// Binary messages written to sockets.
    pub messages_out_total: AtomicU64,
    pub bytes_out_total: AtomicU64,
    pub bytes_in_total: AtomicU64,
    /// `Join { code }` handshakes whose code named no open room.
    pub room_code_misses_total: AtomicU64,
    /// Handshakes refused because their address had used up its budget of
    /// wrong room codes.
    pub guesses_limited_total: AtomicU64,
    /// Private rooms refused because their address had its limit open.
    pub rooms_limited_total: AtomicU64,
    /// Dropped seats freed at once because their address (or room) already
    /// had its limit of held seats.
    pub holds_refused_total: AtomicU64,
    /// TLS handshakes refused (over the per-address budget, or too many at once).
    pub tls_refused_total: AtomicU64,
    /// Every room's tick times; its count and sum are the ticks run and the
    /// time spent ticking.
    pub tick_histogram: TickHistogram,
    /// Connections thrown out, by [`Kick`] (indexed by its position in `Kick::ALL`).
    kicks: [AtomicU64; Kick::ALL.len()],
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn inc_by(counter: &AtomicU64, by: usize) {
        counter.fetch_add(by as u64, Relaxed);
    }

    pub fn kick(&self, kind: Kick) {
        self.kicks[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn kicks(&self, kind: Kick) -> u64 {
        self.kicks[kind as usize].load(Relaxed)
    }

    pub fn record_tick(&self, took: Duration) {
        let micros = took.as_micros() as u64;
        self.tick_micros_max.fetch_max(micros, Relaxed);
        self.tick_histogram.record(micros);
    }

    /// Every plain series: name, Prometheus type, help, value.
    fn series(&self) -> [(&'static str, &'static str, &'static str, &AtomicU64); 17] {
        [
            ("arena_tick_micros_max", "gauge", "longest tick, microseconds", &self.tick_micros_max),
            ("arena_connections_open", "gauge", "TCP connections open", &self.connections_open),
            ("arena_connections_total", "counter", "websocket upgrades", &self.connections_total),
            ("arena_rejected_total", "counter", "handshakes refused", &self.rejected_total),
            (
                "arena_bad_origin_total",
                "counter",
                "upgrades refused for their origin",
                &self.bad_origin_total,
            ),
            ("arena_accept_errors_total", "counter", "failed accepts", &self.accept_errors_total),
            ("arena_task_panics_total", "counter", "connection tasks that panicked", &self.task_panics_total),
            (
                "arena_frames_dropped_total",
                "counter",
                "frames replaced before sending",
                &self.frames_dropped_total,
            ),
            (
                "arena_inputs_dropped_total",
                "counter",
                "inputs dropped for flooding",
                &self.inputs_dropped_total,
            ),
            ("arena_messages_out_total", "counter", "messages written", &self.messages_out_total),
            ("arena_bytes_out_total", "counter", "payload bytes written", &self.bytes_out_total),
            ("arena_bytes_in_total", "counter", "payload bytes read", &self.bytes_in_total),
            (
                "arena_room_code_misses_total",
                "counter",
                "joins by a code that named no open room",
                &self.room_code_misses_total,
            ),
            (
                "arena_guesses_limited_total",
                "counter",
                "joins refused: the address tried too many wrong codes",
                &self.guesses_limited_total,
            ),
            (
                "arena_rooms_limited_total",
                "counter",
                "private rooms refused: the address has its limit open",
                &self.rooms_limited_total,
            ),
            (
                "arena_holds_refused_total",
                "counter",
                "dropped seats freed at once: the address or room holds its limit",
                &self.holds_refused_total,
            ),
            ("arena_tls_refused_total", "counter", "TLS handshakes refused", &self.tls_refused_total),
        ]
    }

    /// Prometheus text exposition format; `rooms` are the open rooms' codes
    /// and figures. The public sees totals only; with `detail` (operators)
    /// each room is a series labelled with its code, private ones included.
    pub fn render(&self, rooms: &[(String, std::sync::Arc<RoomStats>)], detail: bool) -> String {
        let mut out = String::with_capacity(4096 + 512 * rooms.len());
        let players: u64 = rooms.iter().map(|(_, r)| r.players.load(Relaxed)).sum();
        let _ = writeln!(
            out,
            "# HELP arena_players players in every room\n# TYPE arena_players gauge\narena_players {players}"
        );
        let _ = writeln!(
            out,
            "# HELP arena_rooms open rooms\n# TYPE arena_rooms gauge\narena_rooms {}",
            rooms.len()
        );
        let ticks = [
            ("arena_ticks_total", "ticks run", self.tick_histogram.count()),
            ("arena_tick_micros_total", "time spent ticking, microseconds", self.tick_histogram.sum_micros()),
        ];
        for (name, help, value) in ticks {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        for (name, kind, help, value) in self.series() {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", value.load(Relaxed));
        }
        out.push_str("# HELP arena_kicks_total connections thrown out, by reason\n");
        out.push_str("# TYPE arena_kicks_total counter\n");
        for kind in Kick::ALL {
            let _ = writeln!(out, "arena_kicks_total{{reason=\"{}\"}} {}", kind.label(), self.kicks(kind));
        }
        out.push_str("# HELP arena_tick_micros tick time in every room, microseconds\n");
        out.push_str("# TYPE arena_tick_micros histogram\n");
        self.tick_histogram.render(&mut out, "arena_tick_micros", "");
        if !detail {
            return out;
        }
        out.push_str("# HELP arena_room_players players per room\n# TYPE arena_room_players gauge\n");
        for (code, room) in rooms {
            let _ = writeln!(out, "arena_room_players{{room=\"{code}\"}} {}", room.players.load(Relaxed));
        }
        out.push_str("# HELP arena_room_tick_micros tick time per room, microseconds\n");
        out.push_str("# TYPE arena_room_tick_micros histogram\n");
        for (code, room) in rooms {
            room.ticks.render(&mut out, "arena_room_tick_micros", &format!("room=\"{code}\""));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_codes_appear_only_in_the_detailed_rendering() {
        let metrics = Metrics::default();
        let stats = std::sync::Arc::new(RoomStats::default());
        stats.players.store(3, Relaxed);
        stats.ticks.record(700);
        let rooms = [("secretcode".to_owned(), stats)];
        let public = metrics.render(&rooms, false);
        assert!(!public.contains("secretcode"), "the public rendering names no room:\n{public}");
        assert!(public.contains("arena_players 3\n") && public.contains("arena_rooms 1\n"), "{public}");
        let detail = metrics.render(&rooms, true);
        assert!(detail.contains("arena_room_players{room=\"secretcode\"} 3\n"), "{detail}");
        assert!(detail.contains("arena_room_tick_micros_count{room=\"secretcode\"} 1\n"), "{detail}");
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
        let mut out = String::new();
        histogram.render(&mut out, "t", "room=\"a\"");
        assert!(out.contains("t_bucket{room=\"a\",le=\"100\"} 2\n"), "{out}");
        assert!(out.contains("t_bucket{room=\"a\",le=\"+Inf\"} 10\n"), "{out}");
        assert!(out.contains("t_count{room=\"a\"} 10\n"), "{out}");
    }

    #[test]
    fn every_kick_kind_is_rendered_with_its_own_count() {
        let metrics = Metrics::default();
        for (n, kind) in Kick::ALL.into_iter().enumerate() {
            for _ in 0..n {
                metrics.kick(kind);
            }
        }
        let text = metrics.render(&[], false);
        for (n, kind) in Kick::ALL.into_iter().enumerate() {
            let line = format!("arena_kicks_total{{reason=\"{}\"}} {n}", kind.label());
            assert!(text.contains(&line), "should render {line:?} in:\n{text}");
        }
    }
}
