//! The room task: the only owner of its [`Room`]. It ticks at the
//! configured rate and takes its handle's commands between ticks. A room
//! that stays empty for `--room-idle-secs` stops, calling the `on_close`
//! its opener gave it first (the directory forgets it there, so nobody is
//! sent to a closed room); a room whose fence does not hold pauses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_shared::protocol::{Rejection, ResumeToken, close};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{Room, Seat};
use super::handle::{COMMAND_QUEUE, Command, JoinError, Membership, RoomHandle};
use crate::config::GameConfig;
use crate::limits::{AddressKey, Slot};
use crate::room::fence::Fence;
use crate::room::links::Departure;
use crate::room::log::RoomLog;
use crate::room::outbox::CloseReason;
use crate::room::replays::ReplayStore;
use crate::room::world::journal::Record;
use crate::room::world::{Newcomer, World, WorldSnapshot};
use crate::telemetry::metrics::{Metrics, RoomStats};

/// Everything a new room needs to know.
pub struct RoomSpec {
    pub code: String,
    pub private: bool,
    pub stats: Arc<RoomStats>,
    /// A private room's opener's place under `--max-rooms-per-ip`, held
    /// until the room closes.
    pub owner: Option<Slot>,
    /// Called once when the room stops, before it refuses the joins still
    /// queued: the directory forgets the room there.
    pub on_close: Box<dyn FnOnce() + Send>,
    /// Until when the room may run (its lease, in cluster mode): past it,
    /// the room pauses, sending nothing, until the fence is pushed back.
    pub fence: Arc<Fence>,
    /// The saved room this one carries on (a hand-over or a crash's
    /// checkpoint), instead of a fresh game.
    pub restore: Option<Restore>,
    /// Where its recorded rounds go.
    pub replays: Arc<ReplayStore>,
    /// Its input log (cluster mode with `--input-log`): every tick is
    /// logged before its frames go out.
    pub log: Option<RoomLog>,
}

/// A saved room to carry on: its last checkpoint, and the input log after
/// it (re-run up to its last tick that follows and checks out).
#[derive(Debug)]
pub struct Restore {
    pub snapshot: WorldSnapshot,
    pub log: Vec<Record>,
}

/// Starts a room's task on `tracker`; it stops when `cancel` fires (closing
/// every player) or when it has been empty for the idle time (calling
/// `spec.on_close` first).
pub fn spawn(
    spec: RoomSpec,
    game: Arc<GameConfig>,
    slow_client_ticks: u32,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> RoomHandle {
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (leaves, leaves_rx) = mpsc::unbounded_channel();
    let mut world = World::new(game.tick_rate, game.max_players)
        .in_room(spec.code.clone(), spec.private)
        .holding_seats_for(game.resume_ticks())
        .holding_at_most(held_seats_per_room(game.max_players))
        .with_rounds(game.round_secs, game.podium_secs)
        .filling_with_bots(usize::from(game.fill_bots));
    if spec.log.is_some() {
        world = world.journaling();
    }
    if let Some(Restore { snapshot, log }) = spec.restore {
        let from = snapshot.tick();
        world = world.restored(snapshot);
        if !log.is_empty() {
            let done = world.rerun(&log);
            metrics.log_rerun_ticks_total.inc_by(u64::from(done.ticks));
            match done.stopped {
                None => {
                    tracing::info!(room = %spec.code, from, ticks = done.ticks, "re-ran the input log after the checkpoint")
                }
                Some(why) => {
                    tracing::warn!(room = %spec.code, from, ticks = done.ticks, "re-ran the input log only in part: {why}")
                }
            }
        }
    }
    if game.replay_memory_mb > 0 {
        world = world.recording();
    }
    let mut room = Room::new(world, slow_client_ticks, metrics, spec.code.clone())
        .reporting_to(spec.stats)
        .watched_by_at_most(game.max_watchers)
        .keeping_replays_in(spec.replays);
    if spec.log.is_some() {
        room = room.holding_welcomes();
    }
    let handle = RoomHandle { commands, leaves };
    let channels = Channels { commands: commands_rx, leaves: leaves_rx, leave_sender: handle.leaves.clone() };
    let (owner, on_close) = (spec.owner, spec.on_close);
    let (fence, log) = (spec.fence, spec.log);
    tracker.spawn(async move {
        run(room, channels, game, (on_close, fence, log), cancel).await;
        // The opener's address may open another room once this one is gone.
        drop(owner);
    });
    handle
}

/// Seats of a room that may be held for a resume at once: half, so dropped
/// sockets can never keep a room full.
fn held_seats_per_room(room_size: u16) -> usize {
    usize::from(room_size / 2).max(1)
}

/// How long a room that only ever seated one player (a private room its
/// opener left, a public one a lone player tried) stays open once empty, if
/// `--room-idle-secs` is longer: nobody else is waiting for it.
const LONE_ROOM_IDLE: Duration = Duration::from_secs(5);

/// The room task's ends of its channels.
struct Channels {
    commands: mpsc::Receiver<Command>,
    leaves: mpsc::UnboundedReceiver<Departure>,
    /// Cloned into each seat's guard.
    leave_sender: mpsc::UnboundedSender<Departure>,
}

/// How many tick intervals lie between two deadlines of a ticker that skips
/// missed ticks (one for the first tick).
fn periods_between(
    last: Option<tokio::time::Instant>,
    deadline: tokio::time::Instant,
    interval: Duration,
) -> u32 {
    let Some(last) = last else { return 1 };
    let nanos = interval.as_nanos().max(1);
    let periods = (deadline.saturating_duration_since(last).as_nanos() + nanos / 2) / nanos;
    u32::try_from(periods).unwrap_or(u32::MAX).max(1)
}

/// The loop that owns `room` until it stops: its ticks (while `fence`
/// holds), its handle's commands and its seats' departures; `on_close` is
/// called once as it stops.
async fn run(
    mut room: Room,
    channels: Channels,
    game: Arc<GameConfig>,
    (on_close, fence, mut log): (Box<dyn FnOnce() + Send>, Arc<Fence>, Option<RoomLog>),
    cancel: CancellationToken,
) {
    let Channels { mut commands, mut leaves, leave_sender } = channels;
    let mut paused = false;
    let code = room.code.clone();
    // A logged room ticks in step with the node's other logged rooms, so
    // the node's log writer carries all their ticks in one call.
    let mut ticker = match log {
        Some(_) => tokio::time::interval_at(in_step(game.tick_interval()), game.tick_interval()),
        None => tokio::time::interval(game.tick_interval()),
    };
    // An overloaded server runs slow rather than bursting to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // The deadline of the last tick: the ticker skips ticks when the room
    // runs late, and the players are owed input time for every period.
    let mut last_deadline = None;
    let idle_limit = game.room_idle();
    // A room is made for a joiner who is on the way.
    let mut empty_since = Some(Instant::now());
    tracing::info!(room = %code, room_size = game.max_players, "room opened");
    let shutting_down = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break true,
            deadline = ticker.tick() => {
                let started = Instant::now();
                // Past its lease another node may run this room: no tick, no
                // frames, and (below) no joins and no news.
                if !fence.holds(started) {
                    if !paused {
                        tracing::warn!(room = %code, "the room's lease ran out: paused until it is renewed");
                    }
                    paused = true;
                    continue;
                }
                if std::mem::take(&mut paused) {
                    tracing::info!(room = %code, "the room's lease is renewed: playing again");
                }
                let periods = periods_between(last_deadline.replace(deadline), deadline, game.tick_interval());
                match log.as_mut() {
                    None => room.timed_tick(game.tick_interval(), periods),
                    Some(log) => {
                        // Played, logged, then told: what a player sees is in Redis.
                        let frames = room.play(periods);
                        let played = started.elapsed();
                        log.write(&mut room.world, &fence).await;
                        let told = Instant::now();
                        room.publish(frames);
                        room.note_tick_time(played + told.elapsed(), game.tick_interval());
                    }
                }
                // Nobody else is waiting for a room only one player ever used.
                let idle_limit = if room.seated_ever <= 1 { idle_limit.min(LONE_ROOM_IDLE) } else { idle_limit };
                if room.world.player_count() > 0 {
                    empty_since = None;
                } else if empty_since.get_or_insert(started).elapsed() >= idle_limit {
                    break false;
                }
            }
            // Leaves before joins: a freed seat is there for the next joiner.
            Some(departure) = leaves.recv() => {
                let (id, abrupt) = (departure.id, departure.abrupt);
                if room.depart(departure, fence.holds(Instant::now())) {
                    let how = if !abrupt { "left" } else if room.world.is_held(id) { "dropped; holding the seat" } else { "dropped" };
                    tracing::info!(room = %code, player = id, players = room.world.player_count(), "{how}");
                }
            }
            Some(command) = commands.recv() => if room.obey(command, &leave_sender, &fence) {
                break false;
            }
        }
    };
    // Out of the directory first, then refuse what is already queued.
    on_close();
    refuse_queued(&mut commands);
    if shutting_down {
        room.close_all(&CloseReason::new(close::GOING_AWAY, "server shutting down"));
    } else {
        // Watchers of a room everyone left.
        room.close_all(&CloseReason::new(close::ROOM_NOT_FOUND, "everyone left the room"));
    }
    tracing::info!(room = %code, "room closed");
}

/// The next instant a whole number of `period`s after this process's
/// first call: rooms that start their tickers there tick together.
fn in_step(period: Duration) -> tokio::time::Instant {
    static BASE: std::sync::LazyLock<tokio::time::Instant> =
        std::sync::LazyLock::new(tokio::time::Instant::now);
    let now = tokio::time::Instant::now();
    let since = now.duration_since(*BASE).as_nanos();
    let period_nanos = period.as_nanos().max(1);
    let ahead = period_nanos - since % period_nanos;
    now + Duration::from_nanos(u64::try_from(ahead).unwrap_or(0))
}

/// Closes the command queue and turns away the joins already in it.
fn refuse_queued(commands: &mut mpsc::Receiver<Command>) {
    commands.close();
    while let Ok(command) = commands.try_recv() {
        if let Command::Join { reply, .. } = command {
            let _ = reply.send(Err(JoinError::Closed));
        }
    }
}

/// What the room's handle asks of it, between ticks.
impl Room {
    /// Carries out one command; `true` when the room ends with it.
    pub(super) fn obey(
        &mut self,
        command: Command,
        leave_sender: &mpsc::UnboundedSender<Departure>,
        fence: &Fence,
    ) -> bool {
        match command {
            // A paused room speaks for nobody: another node may run it.
            Command::Join { reply, .. } | Command::Watch { reply, .. } if !fence.holds(Instant::now()) => {
                tracing::info!(room = %self.code, "join refused: the room is paused");
                let _ = reply.send(Err(JoinError::Rejected(paused())));
                false
            }
            Command::Kick { reply, .. } if !fence.holds(Instant::now()) => {
                let _ = reply.send(false);
                false
            }
            // If the connection gave up waiting, dropping the answer
            // drops its guard, which frees the seat again.
            Command::Join { newcomer, resume, reply } => {
                let _ = reply.send(self.admit(newcomer, resume, leave_sender));
                false
            }
            Command::Snapshot { reply } => {
                let _ = reply.send(self.world.snapshot());
                false
            }
            Command::Move { to } => {
                fence.retire();
                tracing::info!(room = %self.code, players = self.world.player_count(), to = %to.url, "room moved: sending its players there");
                self.send_everyone(&to);
                true
            }
            Command::Close { reason } => {
                tracing::info!(room = %self.code, players = self.world.player_count(), reason = %reason.reason, "room closed by the server");
                self.close_all(&reason);
                true
            }
            Command::Watch { from, reply } => {
                let _ = reply.send(self.admit_watcher(from, leave_sender));
                false
            }
            Command::Roster { reply } => {
                let _ = reply.send(self.world.roster());
                false
            }
            Command::Kick { id, reply } => {
                let _ = reply.send(self.kick(id));
                false
            }
        }
    }

    /// One tick, timed into the metrics; a tick over `budget` is logged.
    pub(super) fn timed_tick(&mut self, budget: Duration, periods: u32) {
        let started = Instant::now();
        self.tick(periods);
        self.note_tick_time(started.elapsed(), budget);
    }

    /// A tick took `took` (the wait for the input log left out): into the
    /// metrics, and logged if over `budget`.
    pub(super) fn note_tick_time(&mut self, took: Duration, budget: Duration) {
        self.record_tick(took);
        if took > budget {
            tracing::warn!(room = %self.code, tick = self.world.tick_number(), ?took, "tick overran its budget");
        }
    }

    /// Seats a connection (see [`Room::seat`]) and hands it its membership,
    /// whose guard tells the room through `leaves` when it ends.
    fn admit(
        &mut self,
        newcomer: Newcomer,
        resume: Option<ResumeToken>,
        leaves: &mpsc::UnboundedSender<Departure>,
    ) -> Result<Membership, JoinError> {
        let token = || {
            new_token().map_err(|e| {
                tracing::error!("no randomness for a resume token: {e}");
                Rejection::new(arena_shared::protocol::RejectReason::ShuttingDown)
            })
        };
        let code = self.code.clone();
        let seat = self.seat(newcomer, resume, token).map_err(|rejection| {
            tracing::info!(room = %code, reason = %rejection.message, "join refused");
            JoinError::Rejected(rejection)
        })?;
        let Seat { id, name, epoch, ends } = seat;
        tracing::info!(room = %code, player = id, %name, epoch, players = self.world.player_count(), "joined");
        Ok(Membership::seat(id, epoch, ends, leaves))
    }

    /// Opens a watcher's link (see [`Room::watch`]) and hands it its
    /// membership, whose guard closes the link when it ends.
    fn admit_watcher(
        &mut self,
        from: Option<AddressKey>,
        leaves: &mpsc::UnboundedSender<Departure>,
    ) -> Result<Membership, JoinError> {
        let (id, ends) = self.watch(from).map_err(|rejection| {
            tracing::info!(room = %self.code, reason = %rejection.message, "watcher refused");
            JoinError::Rejected(rejection)
        })?;
        tracing::info!(room = %self.code, watcher = id, watchers = self.watcher_count(), "watching");
        Ok(Membership::watcher(id, ends, leaves))
    }
}

/// Why a paused room turns a joiner away: its lease will be renewed, or
/// the room will be found on the node that holds it, within moments.
fn paused() -> Rejection {
    Rejection::new(arena_shared::protocol::RejectReason::Unavailable { retry_after_secs: PAUSED_RETRY_SECS })
}

/// When a joiner turned away by a paused room tries again.
const PAUSED_RETRY_SECS: u16 = 2;

/// 128 bits from the OS's randomness.
fn new_token() -> Result<ResumeToken, getrandom::Error> {
    let mut token = [0u8; 16];
    getrandom::fill(&mut token)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use arena_shared::codec::decode_server;
    use arena_shared::protocol::{RejectReason, ServerMsg};
    use futures_util::FutureExt;
    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_ticker_that_skips_ticks_still_counts_every_period_that_passed() {
        let interval = Duration::from_millis(33);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let start = ticker.tick().await;
        let mut last = None;
        let mut counted = periods_between(last.replace(start), start, interval);
        assert_eq!(counted, 1, "the first tick is one period");
        for _ in 0..3 {
            let deadline = ticker.tick().await;
            assert_eq!(periods_between(last.replace(deadline), deadline, interval), 1, "in step: one each");
            counted += 1;
        }
        // A stall of four and a bit periods: ticks are skipped, not burst.
        tokio::time::advance(interval * 4 + Duration::from_millis(10)).await;
        let mut ticks = 0;
        while tokio::time::Instant::now() < start + interval * 12 {
            let deadline = ticker.tick().await;
            counted += periods_between(last.replace(deadline), deadline, interval);
            ticks += 1;
        }
        let passed = (last.expect("ticked") - start).as_millis() / interval.as_millis() + 1;
        assert!(ticks < passed as u32 - 4, "ticks were skipped: {ticks} for {passed} periods");
        assert_eq!(u128::from(counted), passed, "every period is counted once");
    }

    fn answered<T>(mut answer: oneshot::Receiver<T>) -> T {
        answer.try_recv().expect("a command is answered as it is obeyed")
    }

    fn join(
        room: &mut Room,
        name: &str,
        fence: &Fence,
        leaves: &mpsc::UnboundedSender<Departure>,
    ) -> Result<Membership, JoinError> {
        let (reply, answer) = oneshot::channel();
        let newcomer = Newcomer { name: name.into(), color: 0, from: None };
        assert!(!room.obey(Command::Join { newcomer, resume: None, reply }, leaves, fence));
        answered(answer)
    }

    fn is_unavailable(answer: Result<Membership, JoinError>) -> bool {
        matches!(answer, Err(JoinError::Rejected(rejection)) if matches!(rejection.reason, RejectReason::Unavailable { .. }))
    }

    #[tokio::test]
    async fn a_paused_room_admits_nobody_and_tells_nobody_until_its_fence_holds_again() {
        let world = World::new(30, 8).holding_seats_for(30);
        let mut room = Room::new(world, 8, Arc::new(Metrics::default()), "pausedroom".into());
        let (leaves, mut departures) = mpsc::unbounded_channel();
        let fence = Fence::until(Instant::now() + Duration::from_secs(60), 1);
        let ada = join(&mut room, "ada", &fence, &leaves).expect("a running room seats");
        let mut bob = join(&mut room, "bob", &fence, &leaves).expect("a running room seats");
        let _ = ada.outbox.next().await;

        fence.revoke();
        assert!(is_unavailable(join(&mut room, "cy", &fence, &leaves)), "a paused room seats nobody");
        let (reply, answer) = oneshot::channel();
        room.obey(Command::Watch { from: None, reply }, &leaves, &fence);
        assert!(is_unavailable(answered(answer)), "nor takes watchers");
        let (reply, answer) = oneshot::channel();
        room.obey(Command::Kick { id: ada.id, reply }, &leaves, &fence);
        assert!(!answered(answer), "nor kicks");
        assert!(ada.outbox.next().now_or_never().is_none(), "and told ada nothing of it");

        let bob_id = bob.id;
        bob.leave_for_good();
        drop(bob);
        let departure = departures.try_recv().expect("bob's seat guard tells the room");
        assert!(room.depart(departure, fence.holds(Instant::now())));
        assert!(ada.outbox.next().now_or_never().is_none(), "a paused room keeps bob's leaving to itself");

        fence.extend_to(Instant::now() + Duration::from_secs(60));
        room.tick(1);
        let batch = ada.outbox.next().await;
        let told: Vec<ServerMsg> =
            batch.messages.iter().map(|bytes| decode_server(bytes).expect("decodes")).collect();
        assert!(
            told.contains(&ServerMsg::Left { id: bob_id }),
            "told at the first tick it runs again: {told:?}"
        );
        assert!(join(&mut room, "cy", &fence, &leaves).is_ok(), "and seats again");
    }
}
