//! The node's input-log writer (cluster mode with `--input-log`): one
//! task that takes every leased room's [`LogWrite`]s (a tick's record, or
//! a checkpoint) and writes all those waiting in one Lua call to Redis, so
//! the log costs the node one round trip per tick, not one per room. Each
//! write is fenced by the room's lease, and an append must follow the
//! last tick the log has (a write retried, or lost by a failover, leaves
//! no hole: the room is told, and saves a checkpoint instead).
//!
//! A room's log is a Redis list of journal records, `arena:log:<code>`,
//! and the tick it reaches, `arena:logtip:<code>`: a checkpoint (written
//! here, in order with the records) empties the list and sets the tip to
//! its tick; the list holds at most [`Bounds::max_records`] records of at
//! most [`MAX_RECORD_BYTES`], and lives as long as the saved state.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::lease::held;
use crate::cluster::redis::{RedisError, clocked_script, keys, millis};
use crate::cluster::registry::Cluster;
use crate::cluster::steward::STATE_KEEP;
use crate::room::log::{LogSink, LogWrite, Written};
use crate::telemetry::metrics::Metrics;

/// The largest tick record a room may append (far above a full room's:
/// a tick of 64 players at their input burst is under 4 KB).
pub const MAX_RECORD_BYTES: usize = 64 << 10;

/// Writes waiting for the writer at most (a room waits for each of its
/// own, so this is far above what the rooms of one node queue).
const QUEUE: usize = 4096;

/// Rooms' writes carried by one call at most.
const BATCH: usize = 256;

/// How big a room's log may grow.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Records after a checkpoint at most: past it, an append is refused
    /// and the room saves instead.
    pub max_records: usize,
}

/// Records a log holds at most, whatever `--checkpoint-ms` says: two
/// minutes at 30 Hz (with 64 KiB records at most, 225 MiB a room in
/// theory; a full room of 60 writes about 620 bytes a tick, so 2.2 MiB).
pub const MAX_RECORDS: usize = 3_600;

impl Bounds {
    /// Room for four checkpoints' worth of ticks, and at least a second's
    /// (a checkpoint that fails a few times in a row still fits), at most
    /// [`MAX_RECORDS`].
    pub fn new(checkpoint_every: Duration, tick_rate: u16) -> Self {
        let per_checkpoint = checkpoint_every.as_millis() as usize * usize::from(tick_rate) / 1000;
        Bounds { max_records: (per_checkpoint * 4).max(usize::from(tick_rate)).min(MAX_RECORDS) + 1 }
    }

    /// Records after which a room saves a checkpoint of its own accord
    /// (half the bound), so its log never fills between the steward's.
    pub fn save_after(&self) -> u32 {
        u32::try_from(self.max_records / 2).unwrap_or(u32::MAX).max(1)
    }
}

/// Saves and appends for many rooms at once: KEYS = the saved rooms'
/// index, then for each write its room's lease, state, log and tip; ARGV =
/// keep ms, max records, then for each write its kind (`s`: a checkpoint,
/// `a`: a tick's record), the lease value it is made under, the tick it
/// brings the log to, its bytes and the room's code. Returns, for each
/// write: 1 written; 0 not the lease holder's; 2 does not follow the log's
/// tip (a hole); 3 the log is full.
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    clocked_script(
        r"
local keep, max = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 0, (#KEYS - 1) / 4 - 1 do
  local k, a = 2 + 4 * i, 3 + 5 * i
  local lease, state, log, tip = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local kind, held, tick, bytes = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  if redis.call('GET', lease) ~= held then
    out[#out + 1] = 0
  elseif kind == 's' then
    redis.call('SET', state, bytes, 'PX', keep)
    index(KEYS[1], ARGV[a + 4], keep)
    redis.call('DEL', log)
    redis.call('SET', tip, tick, 'PX', keep)
    out[#out + 1] = 1
  else
    local last = tonumber(redis.call('GET', tip))
    if last == nil or (last + 1) % 4294967296 ~= tick then
      out[#out + 1] = 2
    else
      local length = redis.call('RPUSH', log, bytes)
      if length > max then
        redis.call('RPOP', log)
        out[#out + 1] = 3
      else
        -- The list and its tip live as long as the state they follow.
        if length == 1 then redis.call('PEXPIRE', log, keep) end
        redis.call('SET', tip, tick, 'KEEPTTL')
        out[#out + 1] = 1
      end
    end
  end
end
return out
",
    )
});

/// Starts the node's writer; it stops with `cancel` (or when every sink
/// is gone). Rooms' writes go through the returned sink.
pub fn spawn(
    cluster: Arc<Cluster>,
    bounds: Bounds,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> LogSink {
    let (sink, queue) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = write_all(queue, &cluster, bounds, &metrics) => {}
        }
    });
    sink
}

/// Takes what waits, writes it in one call, answers every room; again.
async fn write_all(
    mut queue: mpsc::Receiver<LogWrite>,
    cluster: &Cluster,
    bounds: Bounds,
    metrics: &Metrics,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        // Rooms tick together (see `room::task`): let the others woken with
        // this one queue theirs, so one call carries them all.
        tokio::task::yield_now().await;
        while batch.len() < BATCH
            && let Ok(write) = queue.try_recv()
        {
            batch.push(write);
        }
        // Writes whose room stopped waiting go nowhere (a later one of the
        // same room would not follow them anyway); a record too big to keep
        // is refused here, as a hole is (the room saves instead).
        let dropped = batch.extract_if(.., |write| {
            write.done.is_closed()
                || matches!(&write.what, Written::Append(bytes) if bytes.len() > MAX_RECORD_BYTES)
        });
        for refused in dropped {
            let _ = refused.done.send(false);
        }
        let answers = match write(&batch, cluster, bounds, metrics).await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::debug!(writes = batch.len(), "the input log was not written: {e}");
                Vec::new()
            }
        };
        for (at, write) in batch.drain(..).enumerate() {
            let answer = answers.get(at).copied().unwrap_or(-1);
            if answer != 1 && answer != -1 {
                tracing::debug!(room = %write.code, tick = write.tick, answer, "an input-log write was refused");
            }
            let _ = write.done.send(answer == 1);
        }
    }
}

/// One call for `batch`: each write's answer (see [`WRITE`]).
async fn write(
    batch: &[LogWrite],
    cluster: &Cluster,
    bounds: Bounds,
    metrics: &Metrics,
) -> Result<Vec<i64>, RedisError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let Some(redis) = cluster.redis() else { return Ok(Vec::new()) };
    metrics.log_writes_total.inc();
    let node = &cluster.node;
    redis
        .run(&WRITE, |call| {
            call.key(keys::SAVED.set).arg(millis(STATE_KEEP)).arg(bounds.max_records);
            for write in batch {
                let code = &*write.code;
                call.key(keys::lease(code))
                    .key(keys::state(code))
                    .key(keys::log(code))
                    .key(keys::log_tip(code));
                let kind = if matches!(write.what, Written::Save(_)) { "s" } else { "a" };
                call.arg(kind).arg(held(write.epoch, node)).arg(write.tick).arg(write.what.bytes()).arg(code);
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_holds_four_checkpoints_of_ticks_at_least_a_second_and_at_most_two_minutes() {
        let at = |ms, rate| {
            let bounds = Bounds::new(Duration::from_millis(ms), rate);
            (bounds.max_records, bounds.save_after())
        };
        assert_eq!(at(2_000, 30), (241, 120), "the defaults: the steward's checkpoints come first");
        assert_eq!(at(100, 30), (31, 15), "at least a second");
        assert_eq!(at(600_000, 30), (MAX_RECORDS + 1, 1_800), "a long --checkpoint-ms is capped");
    }
}
