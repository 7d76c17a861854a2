//! This node's last minute, one sample a second, for the operators' page:
//! tick p50/p99 over each second and over the whole minute (from the tick
//! histogram's bucket counts, so nothing is added to the tick itself),
//! bytes sent per second, and players.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::metrics::{TickCounts, bucket_quantile};

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
    use crate::metrics::TickHistogram;

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
