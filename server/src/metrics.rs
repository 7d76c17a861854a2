//! Counters the server keeps, served as Prometheus text at `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

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
    /// WebSocket upgrades accepted.
    pub connections_total: AtomicU64,
    /// Handshakes refused (version, full, bad name).
    pub rejected_total: AtomicU64,
    /// Connections closed for bytes that broke the protocol.
    pub protocol_errors_total: AtomicU64,
    /// Upgrades refused for their Origin.
    pub bad_origin_total: AtomicU64,
    /// Frames replaced in an outbox before the writer took them.
    pub frames_dropped_total: AtomicU64,
    /// Clients disconnected for staying behind.
    pub slow_kicks_total: AtomicU64,
    /// Clients dropped for silence, or for no Hello in time.
    pub timeouts_total: AtomicU64,
    /// Inputs dropped because a client sent faster than its queue drains.
    pub inputs_dropped_total: AtomicU64,
    /// Binary messages written to sockets.
    pub messages_out_total: AtomicU64,
    pub bytes_out_total: AtomicU64,
    pub bytes_in_total: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn inc_by(counter: &AtomicU64, by: usize) {
        counter.fetch_add(by as u64, Relaxed);
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
            ("arena_connections_total", "counter", "websocket upgrades", &self.connections_total),
            ("arena_rejected_total", "counter", "handshakes refused", &self.rejected_total),
            (
                "arena_protocol_errors_total",
                "counter",
                "connections closed for bad bytes",
                &self.protocol_errors_total,
            ),
            (
                "arena_bad_origin_total",
                "counter",
                "upgrades refused for their origin",
                &self.bad_origin_total,
            ),
            (
                "arena_frames_dropped_total",
                "counter",
                "frames replaced before sending",
                &self.frames_dropped_total,
            ),
            (
                "arena_slow_kicks_total",
                "counter",
                "clients dropped for staying behind",
                &self.slow_kicks_total,
            ),
            ("arena_timeouts_total", "counter", "clients dropped for silence", &self.timeouts_total),
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
        let mut out = String::with_capacity(2048);
        for (name, kind, help, value) in rows {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}", value.load(Relaxed));
        }
        out
    }
}
