//! A leased room's end of the input log (cluster mode): after each tick,
//! and before that tick's frames and news go out, the room hands its
//! world's journal record ([`crate::room::world::journal`]) to the node's
//! log writer and waits for Redis to have it, so nothing a player saw can
//! be lost with this node. Every checkpoint goes the same way, in order
//! with the records, so the log restarts exactly at each save.
//!
//! The writer is the cluster's (`cluster::inputlog`); the room knows it
//! only as a channel of [`LogWrite`]s. A write that fails or is not
//! answered within [`LOG_WAIT`] does not stop the game: the room plays on
//! unlogged and saves a checkpoint as soon as it may (every
//! [`RETRY_SAVE`]), after which it logs again. A log with a hole is never
//! appended to.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use arena_shared::codec::encode_state;
use tokio::sync::{mpsc, oneshot};

use crate::room::fence::Fence;
use crate::room::world::World;
use crate::telemetry::metrics::Metrics;

/// How long a room holds a tick's frames for the log at most.
pub const LOG_WAIT: Duration = Duration::from_millis(250);

/// How often a room whose log is broken tries to start it again.
pub const RETRY_SAVE: Duration = Duration::from_millis(250);

/// What a room asks the node's log writer to write.
#[derive(Debug)]
pub struct LogWrite {
    pub code: Arc<str>,
    /// The lease the room runs under: a write under any other is refused.
    pub epoch: u64,
    /// The game's tick the write brings the log to.
    pub tick: u32,
    pub what: Written,
    /// Whether Redis has it now.
    pub done: oneshot::Sender<bool>,
}

#[derive(Debug)]
pub enum Written {
    /// A checkpoint (an encoded `WorldSnapshot`): the log starts again.
    Save(Vec<u8>),
    /// One tick's record (an encoded journal `Record`), after the last.
    Append(Vec<u8>),
}

impl Written {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Written::Save(bytes) | Written::Append(bytes) => bytes,
        }
    }
}

/// The way to the node's log writer.
pub type LogSink = mpsc::Sender<LogWrite>;

/// A room's side of the input log.
pub struct RoomLog {
    sink: LogSink,
    code: Arc<str>,
    /// The steward asks for a checkpoint here (each `--checkpoint-ms`,
    /// and after taking the lease back).
    save_wanted: Arc<AtomicBool>,
    /// The log has a hole (or was never started): nothing is appended
    /// until a checkpoint goes through, tried again from this instant.
    broken: Option<Instant>,
    /// Records appended since the last checkpoint, and how many make the
    /// room save one of its own accord (the log's bound, halved).
    since_save: u32,
    save_after: u32,
    metrics: Arc<Metrics>,
}

impl RoomLog {
    /// Room `code`'s log through `sink`; a checkpoint is written at its
    /// first tick (a new room's log starts there, a restored room's
    /// restarts at what the re-run made of it), and after every
    /// `save_after` records.
    pub fn new(sink: LogSink, code: &str, save_after: u32, metrics: Arc<Metrics>) -> Self {
        RoomLog {
            sink,
            code: code.into(),
            save_wanted: Arc::default(),
            broken: Some(Instant::now()),
            since_save: 0,
            save_after,
            metrics,
        }
    }

    /// Where the steward asks for a checkpoint.
    pub fn save_flag(&self) -> Arc<AtomicBool> {
        self.save_wanted.clone()
    }

    /// Logs the tick `world` just played (or saves it, if a checkpoint is
    /// due), waiting for Redis to have it before the frames go out. Under
    /// any lease but the fence's, the write is refused.
    pub async fn write(&mut self, world: &mut World, fence: &Fence) {
        let now = Instant::now();
        let wanted = self.save_wanted.swap(false, Relaxed) || self.since_save >= self.save_after;
        if self.broken.is_some_and(|retry| now < retry) && !wanted {
            // The next checkpoint covers this tick.
            let _ = world.take_record();
            return;
        }
        let saving = wanted || self.broken.is_some();
        let (tick, what) = if saving {
            let saved = world.checkpoint();
            (saved.tick(), Written::Save(encode_state(&saved)))
        } else {
            let Some(record) = world.take_record() else { return };
            (record.tick, Written::Append(record.encode()))
        };
        let bytes = what.bytes().len();
        let (done, answer) = oneshot::channel();
        let write = LogWrite { code: self.code.clone(), epoch: fence.epoch(), tick, what, done };
        // A writer that has more than it can take is as good as down.
        let written = if self.sink.try_send(write).is_ok() {
            let written = tokio::time::timeout(LOG_WAIT, answer).await;
            self.metrics.log_wait_seconds.observe(now.elapsed().as_secs_f64());
            matches!(written, Ok(Ok(true)))
        } else {
            false
        };
        if !written {
            if self.broken.is_none() {
                tracing::warn!(room = %self.code, tick, "the input log is not written: playing on, saving again as soon as Redis takes it");
            }
            self.metrics.log_failures_total.inc();
            self.broken = Some(now + RETRY_SAVE);
            return;
        }
        if saving {
            if self.broken.take().is_some() {
                tracing::debug!(room = %self.code, tick, "the input log starts at this checkpoint");
            }
            self.since_save = 0;
            self.metrics.checkpoints_total.inc();
        } else {
            self.since_save += 1;
            self.metrics.log_ticks_total.inc();
            self.metrics.log_bytes_total.inc_by(bytes as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use arena_shared::codec::decode_state;

    use super::*;
    use crate::room::input::NoInputs;
    use crate::room::world::journal::Record;
    use crate::room::world::{Newcomer, WorldSnapshot};

    fn world() -> World {
        let mut world = World::new(30, 8).journaling();
        world.join(Newcomer { name: "ada".into(), color: 0, from: None }, [1; 16]).expect("space");
        world
    }

    /// Ticks `world` and logs it, the writer answering `answer` (`None`:
    /// not at all); what the writer was asked.
    async fn tick_and_log(
        log: &mut RoomLog,
        world: &mut World,
        writer: &mut mpsc::Receiver<LogWrite>,
        answer: Option<bool>,
    ) -> Option<(u32, bool)> {
        world.tick(&mut NoInputs);
        let fence = Fence::until(Instant::now() + Duration::from_secs(60), 7);
        let writing = log.write(world, &fence);
        let answering = async {
            let write = writer.recv().await?;
            assert_eq!((&*write.code, write.epoch), ("logroom", 7), "fenced by the room's lease");
            let saved = match &write.what {
                Written::Save(bytes) => {
                    let snapshot: WorldSnapshot = decode_state(bytes, 1 << 20).expect("a snapshot");
                    assert_eq!(snapshot.tick(), write.tick);
                    true
                }
                Written::Append(bytes) => {
                    assert_eq!(Record::decode(bytes, 1 << 16).expect("a record").tick, write.tick);
                    false
                }
            };
            if let Some(answer) = answer {
                let _ = write.done.send(answer);
            } else {
                // Not answered: held until the room gave up waiting.
                tokio::time::sleep(LOG_WAIT * 2).await;
            }
            Some((write.tick, saved))
        };
        let ((), asked) = tokio::join!(writing, answering);
        asked
    }

    // Real time: the log keeps its own clock (`std::time::Instant`).
    #[tokio::test]
    async fn a_room_log_starts_at_a_checkpoint_and_after_any_failure_saves_before_it_appends_again() {
        let (sink, mut writer) = mpsc::channel(8);
        let mut log = RoomLog::new(sink, "logroom", 4, Arc::new(Metrics::default()));
        let mut world = world();
        let w = &mut writer;
        assert_eq!(
            tick_and_log(&mut log, &mut world, w, Some(true)).await,
            Some((1, true)),
            "a checkpoint first"
        );
        assert_eq!(tick_and_log(&mut log, &mut world, w, Some(true)).await, Some((2, false)), "then records");
        assert_eq!(tick_and_log(&mut log, &mut world, w, Some(true)).await, Some((3, false)));
        // Refused (a hole, a lost lease, a full log): nothing is appended
        // until a checkpoint goes through, tried again after RETRY_SAVE.
        assert_eq!(tick_and_log(&mut log, &mut world, w, Some(false)).await, Some((4, false)));
        world.let_time_pass(1);
        log.write(&mut world, &Fence::until(Instant::now() + Duration::from_secs(60), 7)).await;
        assert!(writer.try_recv().is_err(), "nothing written while broken (the next checkpoint covers it)");
        tokio::time::sleep(RETRY_SAVE).await;
        assert_eq!(tick_and_log(&mut log, &mut world, &mut writer, Some(true)).await, Some((6, true)));
        assert_eq!(tick_and_log(&mut log, &mut world, &mut writer, Some(true)).await, Some((7, false)));
        // An answer that does not come within LOG_WAIT breaks it too.
        assert_eq!(tick_and_log(&mut log, &mut world, &mut writer, None).await, Some((8, false)));
        tokio::time::sleep(RETRY_SAVE).await;
        assert_eq!(tick_and_log(&mut log, &mut world, &mut writer, Some(true)).await, Some((9, true)));
        // The steward asks for a checkpoint: the next write is one.
        log.save_flag().store(true, Relaxed);
        assert_eq!(tick_and_log(&mut log, &mut world, &mut writer, Some(true)).await, Some((10, true)));
        // And after four records the room saves of its own accord.
        for tick in 11..=14 {
            assert_eq!(
                tick_and_log(&mut log, &mut world, &mut writer, Some(true)).await,
                Some((tick, false))
            );
        }
        assert_eq!(tick_and_log(&mut log, &mut world, &mut writer, Some(true)).await, Some((15, true)));
    }
}
