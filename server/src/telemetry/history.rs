//! This node's last minute, one sample a second, for the operators' page:
//! tick p50/p99 over each second and over the whole minute, for the node
//! and for each open room (from the tick histograms' bucket counts, so
//! nothing is added to the tick itself), bytes sent per second, and
//! players.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::telemetry::metrics::{TickCounts, bucket_quantile};

/// Samples kept: a minute at one a second.
pub const SAMPLES: usize = 60;

/// One second of this node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Tick time quantiles over the second, µs (bucket bounds); `None` with
    /// no tick in it.
    pub tick_p50: Option<u64>,
    pub tick_p99: Option<u64>,
    pub bytes_out_per_sec: f64,
    pub players: u64,
}

/// The minute so far.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    samples: VecDeque<Sample>,
    /// What the counters read at each sample, oldest first (one more than
    /// the samples: the minute's start).
    readings: VecDeque<Reading>,
    /// Each open room's tick counts at each sample, oldest first.
    rooms: HashMap<String, VecDeque<TickCounts>>,
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    ticks: TickCounts,
    bytes_out: u64,
}

impl History {
    /// Takes a sample from the counters as they read now.
    pub fn sample(&self, ticks: TickCounts, bytes_out: u64, players: u64) {
        let now = Reading { at: Instant::now(), ticks, bytes_out };
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(last) = inner.readings.back().copied() {
            let between = since(&now.ticks, &last.ticks);
            let secs = now.at.duration_since(last.at).as_secs_f64().max(1e-3);
            inner.samples.push_back(Sample {
                tick_p50: bucket_quantile(&between, 0.5),
                tick_p99: bucket_quantile(&between, 0.99),
                bytes_out_per_sec: now.bytes_out.saturating_sub(last.bytes_out) as f64 / secs,
                players,
            });
        }
        inner.readings.push_back(now);
        while inner.samples.len() > SAMPLES {
            inner.samples.pop_front();
        }
        while inner.readings.len() > SAMPLES + 1 {
            inner.readings.pop_front();
        }
    }

    /// Takes a sample of each open room's tick counts (`rooms`: code and
    /// counts); rooms not among them are forgotten.
    pub fn sample_rooms(&self, rooms: Vec<(String, TickCounts)>) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut kept = HashMap::with_capacity(rooms.len());
        for (code, counts) in rooms {
            let mut readings = inner.rooms.remove(&code).unwrap_or_default();
            readings.push_back(counts);
            while readings.len() > SAMPLES + 1 {
                readings.pop_front();
            }
            kept.insert(code, readings);
        }
        inner.rooms = kept;
    }

    /// Room `code`'s tick p50 and p99 over the last minute (or as much as
    /// there is; `None` before its second sample).
    pub fn room_minute(&self, code: &str) -> Option<(Option<u64>, Option<u64>)> {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let readings = inner.rooms.get(code)?;
        let (first, last) = (readings.front()?, readings.back()?);
        (readings.len() > 1).then(|| {
            let between = since(last, first);
            (bucket_quantile(&between, 0.5), bucket_quantile(&between, 0.99))
        })
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).samples.iter().copied().collect()
    }

    /// Tick p50 and p99 over the whole minute (or as much as there is).
    pub fn minute(&self) -> (Option<u64>, Option<u64>) {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match (inner.readings.front(), inner.readings.back()) {
            (Some(first), Some(last)) => {
                let between = since(&last.ticks, &first.ticks);
                (bucket_quantile(&between, 0.5), bucket_quantile(&between, 0.99))
            }
            _ => (None, None),
        }
    }
}

/// Ticks counted between two readings.
fn since(now: &TickCounts, then: &TickCounts) -> TickCounts {
    std::array::from_fn(|i| now[i].saturating_sub(then[i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::TickHistogram;

    #[test]
    fn each_sample_sees_only_its_own_second_and_the_minute_sees_them_all() {
        let history = History::default();
        let ticks = TickHistogram::default();
        history.sample(ticks.counts(), 0, 0);
        assert!(history.samples().is_empty(), "the first reading only starts the minute");
        // A slow second (ticks of 3 ms), then a fast one (0.2 ms).
        (0..30).for_each(|_| ticks.record(3_000));
        history.sample(ticks.counts(), 1_000, 5);
        (0..30).for_each(|_| ticks.record(200));
        history.sample(ticks.counts(), 1_500, 6);
        let samples = history.samples();
        assert_eq!(samples.len(), 2);
        assert_eq!((samples[0].tick_p50, samples[0].tick_p99), (Some(4_000), Some(4_000)));
        assert_eq!(
            (samples[1].tick_p50, samples[1].tick_p99),
            (Some(250), Some(250)),
            "not the slow second's"
        );
        assert_eq!((samples[0].players, samples[1].players), (5, 6));
        assert!(samples[1].bytes_out_per_sec > 0.0);
        assert_eq!(history.minute(), (Some(250), Some(4_000)), "half of the minute's ticks were slow");
        history.sample(ticks.counts(), 1_500, 6);
        assert_eq!(history.samples()[2].tick_p50, None, "a second without ticks has no quantiles");
    }

    #[test]
    fn each_room_has_its_own_minute_and_closed_rooms_are_forgotten() {
        let history = History::default();
        let (slow, fast) = (TickHistogram::default(), TickHistogram::default());
        history.sample_rooms(vec![("slow".into(), slow.counts()), ("fast".into(), fast.counts())]);
        assert_eq!(history.room_minute("slow"), None, "one reading is no minute yet");
        (0..30).for_each(|_| slow.record(6_000));
        (0..30).for_each(|_| fast.record(90));
        history.sample_rooms(vec![("slow".into(), slow.counts()), ("fast".into(), fast.counts())]);
        assert_eq!(history.room_minute("slow"), Some((Some(8_000), Some(8_000))));
        assert_eq!(history.room_minute("fast"), Some((Some(100), Some(100))));
        history.sample_rooms(vec![("fast".into(), fast.counts())]);
        assert_eq!(history.room_minute("slow"), None, "a closed room is forgotten");
    }

    #[test]
    fn it_keeps_a_minute() {
        let history = History::default();
        let ticks = TickHistogram::default();
        for _ in 0..SAMPLES + 30 {
            ticks.record(100);
            history.sample(ticks.counts(), 0, 1);
        }
        assert_eq!(history.samples().len(), SAMPLES);
    }
}
