//! A link conditioner: what a real network does to a client's messages,
//! applied inside the client in both directions, so a loopback test feels
//! like a home connection. The bots use it (`--latency-ms` …) on tokio's
//! clock, the page (`?lag=100&jitter=20`) on `performance.now()` seconds:
//! one line, generic over its clock ([`Moment`]).
//!
//! `latency` is the round trip it adds (half each way), `jitter` spreads each
//! message's delay by up to ± half of it each way, and every `stall_every`
//! nothing gets through for `stall` (a TCP retransmission stall): what was
//! due in the stall arrives at its end, at once. Like TCP, the line never
//! reorders: a message is never due before the one sent ahead of it.

use std::collections::VecDeque;
use std::time::Duration;

/// A point on a monotonic clock.
pub trait Moment: Copy + PartialOrd {
    fn plus(self, by: Duration) -> Self;
    /// How long after `earlier` this is (zero if it is not after).
    fn since(self, earlier: Self) -> Duration;
}

/// Seconds on the page's clock (`performance.now() / 1000`).
impl Moment for f64 {
    fn plus(self, by: Duration) -> Self {
        self + by.as_secs_f64()
    }

    fn since(self, earlier: Self) -> Duration {
        Duration::from_secs_f64((self - earlier).max(0.0))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Moment for tokio::time::Instant {
    fn plus(self, by: Duration) -> Self {
        self + by
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// How bad the network is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkConditions {
    /// Added round trip, milliseconds (half each way).
    pub latency_ms: u32,
    /// Spread of the round trip, milliseconds (± half each way).
    pub jitter_ms: u32,
    /// How long each stall lasts, milliseconds (0: no stalls).
    pub stall_ms: u32,
    /// Time between the starts of stalls, milliseconds.
    pub stall_every_ms: u32,
}

impl LinkConditions {
    pub fn is_perfect(&self) -> bool {
        self.latency_ms == 0 && self.jitter_ms == 0 && self.stall_ms == 0
    }
}

/// Messages in flight one way, each due at a time; delivered in order.
#[derive(Debug)]
pub struct DelayLine<T, I: Moment> {
    conditions: LinkConditions,
    queue: VecDeque<(I, T)>,
    /// When the last message pushed is due: the next is never earlier.
    last_due: Option<I>,
    /// Stalls are counted from here.
    started: I,
    rng: u64,
}

impl<T, I: Moment> DelayLine<T, I> {
    /// `seed` makes each client's jitter its own, and repeatable.
    pub fn new(conditions: LinkConditions, seed: u64, now: I) -> Self {
        DelayLine { conditions, queue: VecDeque::new(), last_due: None, started: now, rng: seed | 1 }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// One way's delay: half the round trip, ± half the jitter.
    fn one_way_delay(&mut self) -> Duration {
        let base = f64::from(self.conditions.latency_ms) / 2.0;
        let spread = f64::from(self.conditions.jitter_ms) / 2.0;
        let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        Duration::from_secs_f64(((base + spread * (2.0 * unit - 1.0)).max(0.0)) / 1000.0)
    }

    /// The end of the stall `at` falls in, if it falls in one.
    fn stall_end(&self, at: I) -> Option<I> {
        let LinkConditions { stall_ms, stall_every_ms, .. } = self.conditions;
        if stall_ms == 0 || stall_every_ms == 0 {
            return None;
        }
        let since = at.since(self.started).as_millis() as u64;
        let into = since % u64::from(stall_every_ms);
        // The first period starts with play, not with a stall.
        let period_start = since - into;
        (period_start > 0 && into < u64::from(stall_ms))
            .then(|| self.started.plus(Duration::from_millis(period_start + u64::from(stall_ms))))
    }

    /// Sends `item` at `now`.
    pub fn push(&mut self, now: I, item: T) {
        let mut due = now.plus(self.one_way_delay());
        if let Some(end) = self.stall_end(due) {
            due = end;
        }
        if let Some(last) = self.last_due
            && last > due
        {
            due = last;
        }
        self.last_due = Some(due);
        self.queue.push_back((due, item));
    }

    /// When the next message is due, if any is in flight.
    pub fn next_due(&self) -> Option<I> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// The next message, if it is due at `now`.
    pub fn pop_due(&mut self, now: I) -> Option<T> {
        self.pop_due_at(now).map(|(_, item)| item)
    }

    /// The next message with when it arrived, if it is due at `now`.
    pub fn pop_due_at(&mut self, now: I) -> Option<(I, T)> {
        if self.next_due()? <= now { self.queue.pop_front() } else { None }
    }

    /// Forgets everything in flight (the connection it carried is gone).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.last_due = None;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use tokio::time::Instant;

    use super::*;

    fn conditions(latency_ms: u32, jitter_ms: u32, stall_ms: u32) -> LinkConditions {
        LinkConditions { latency_ms, jitter_ms, stall_ms, stall_every_ms: 5_000 }
    }

    #[test]
    fn a_perfect_line_delivers_at_once_and_in_order() {
        let now = Instant::now();
        let mut line = DelayLine::new(LinkConditions::default(), 1, now);
        line.push(now, 1);
        line.push(now, 2);
        assert_eq!((line.pop_due(now), line.pop_due(now), line.pop_due(now)), (Some(1), Some(2), None));
    }

    #[test]
    fn latency_and_jitter_delay_each_way_by_half_the_round_trip_without_reordering() {
        let now = Instant::now();
        let mut line = DelayLine::new(conditions(100, 40, 0), 7, now);
        let mut dues = Vec::new();
        for i in 0..1000 {
            let at = now + Duration::from_millis(i * 16);
            line.push(at, i);
            let due = line.queue.back().map(|(due, _)| *due).expect("just pushed");
            dues.push(due);
            let delay = due.duration_since(at).as_secs_f64() * 1000.0;
            assert!(
                (30.0..=70.0 + 16.0).contains(&delay),
                "one way is 50 ± 20 ms (or waits behind the last): {delay}"
            );
        }
        assert!(dues.windows(2).all(|w| w[0] <= w[1]), "never reordered");
    }

    #[test]
    fn a_stall_holds_everything_due_in_it_until_it_ends() {
        let now = Instant::now();
        let mut line = DelayLine::new(conditions(0, 0, 200), 3, now);
        let in_stall = now + Duration::from_millis(5_050);
        line.push(in_stall, "held");
        assert_eq!(line.next_due(), Some(now + Duration::from_millis(5_200)), "due when the stall ends");
        assert_eq!(line.pop_due(in_stall), None);
        let before = now + Duration::from_millis(4_000);
        let mut early = DelayLine::new(conditions(0, 0, 200), 3, now);
        early.push(before, "free");
        assert_eq!(early.pop_due(before), Some("free"), "outside a stall nothing waits");
    }

    #[test]
    fn on_the_pages_clock_the_same_seed_gives_the_same_delays() {
        let mut page: DelayLine<u32, f64> = DelayLine::new(conditions(100, 40, 0), 7, 0.0);
        let mut bots: DelayLine<u32, Instant> = DelayLine::new(conditions(100, 40, 0), 7, Instant::now());
        let start = bots.started;
        for i in 0..50 {
            let at = f64::from(i) * 0.016;
            page.push(at, i);
            bots.push(start + Duration::from_secs_f64(at), i);
            let (page_due, bots_due) =
                (page.queue.back().expect("pushed").0, bots.queue.back().expect("pushed").0);
            let bots_due = bots_due.duration_since(start).as_secs_f64();
            assert!((page_due - bots_due).abs() < 1e-6, "{page_due} vs {bots_due}");
        }
        let first = page.next_due().expect("in flight");
        assert!((0.03..=0.07).contains(&first), "50 ± 20 ms one way: {first}");
        assert_eq!(page.pop_due_at(first), Some((first, 0)), "arrives when due, with its arrival time");
        page.clear();
        assert_eq!(page.next_due(), None, "nothing left in flight");
    }
}
