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

/// Process-wide counters. Relaxed atomics: each is independent and only read
/// for reporting.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Players in the room right now.
    pub players: AtomicU64,
    /// The room's current tick number.
    pub tick: AtomicU64,
    /// Ticks run since start.
    pub ticks_total: AtomicU64,
    /// Sum of tick durations, for the mean.
    pub tick_micros_total: AtomicU64,
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
        self.ticks_total.fetch_add(1, Relaxed);
        self.tick_micros_total.fetch_add(micros, Relaxed);
        self.tick_micros_max.fetch_max(micros, Relaxed);
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 16] = [
            ("arena_players", "gauge", "players in the room", &self.players),
            ("arena_tick", "gauge", "current tick number", &self.tick),
            ("arena_ticks_total", "counter", "ticks run", &self.ticks_total),
            (
                "arena_tick_micros_total",
                "counter",
                "time spent ticking, microseconds",
                &self.tick_micros_total,
            ),
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
        ];
        let mut out = String::with_capacity(4096);
        for (name, kind, help, value) in rows {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", value.load(Relaxed));
        }
        out.push_str("# HELP arena_kicks_total connections thrown out, by reason\n");
        out.push_str("# TYPE arena_kicks_total counter\n");
        for kind in Kick::ALL {
            let _ = writeln!(out, "arena_kicks_total{{reason=\"{}\"}} {}", kind.label(), self.kicks(kind));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kick_kind_is_rendered_with_its_own_count() {
        let metrics = Metrics::default();
        for (n, kind) in Kick::ALL.into_iter().enumerate() {
            for _ in 0..n {
                metrics.kick(kind);
            }
        }
        let text = metrics.render();
        for (n, kind) in Kick::ALL.into_iter().enumerate() {
            let line = format!("arena_kicks_total{{reason=\"{}\"}} {n}", kind.label());
            assert!(text.contains(&line), "should render {line:?} in:\n{text}");
        }
    }
}
