//! The room task: the only owner of its [`World`]. It ticks at the configured
//! rate and takes joins and leaves over channels, so game state needs no
//! lock. A room that stays empty for `--room-idle-secs` stops, calling the
//! `on_close` its opener gave it first (the directory forgets it there, so
//! nobody is sent to a closed room).
//!
//! A seat is freed by its [`SeatGuard`]'s `Drop`, so every way out of a
//! connection (a clean close, a reset, an early `select!` arm, a panic)
//! gives the seat back.

pub mod fence;
pub mod interest;
pub mod links;
pub mod outbox;
pub mod replays;
pub mod world;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use arena_shared::codec::encode_server;
use arena_shared::protocol::{Moved, PlayerId, Rejection, ResumeToken, ServerMsg, close};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::limits::{AddressKey, Slot};
use crate::ops::metrics::{Kick, Metrics, RoomStats};
use crate::room::fence::Fence;
use crate::room::interest::Scene;
use crate::room::links::{Ends, InboundQueue, Links};
use crate::room::outbox::{CloseReason, Outbox};
use crate::room::replays::ReplayStore;
use crate::room::world::{Frames, HostEffect, Newcomer, RosterLine, World, WorldSnapshot};

/// Watchers a room takes unless told otherwise (`--max-watchers`).
pub const DEFAULT_MAX_WATCHERS: u16 = 32;

/// Joins and leaves waiting for the room. Small: each is handled within a tick.
const COMMAND_QUEUE: usize = 256;

enum Command {
    Join {
        newcomer: Newcomer,
        resume: Option<ResumeToken>,
        reply: oneshot::Sender<Result<Membership, JoinError>>,
    },
    /// The room as it is now (a checkpoint, or a hand-over once fenced).
    Snapshot { reply: oneshot::Sender<WorldSnapshot> },
    /// The room is played elsewhere now: send everyone there and stop.
    Move { to: Moved },
    /// Close every connection with this reason and stop.
    Close { reason: CloseReason },
    /// Someone (from `from`) watches, without a seat.
    Watch { from: Option<AddressKey>, reply: oneshot::Sender<Result<Membership, JoinError>> },
    /// Who sits in the room now (the operators' page).
    Roster { reply: oneshot::Sender<Vec<RosterLine>> },
    /// An operator removes a player: its seat is freed and its connection
    /// closed with [`close::KICKED`]. Answers whether it was there.
    Kick { id: PlayerId, reply: oneshot::Sender<bool> },
}

/// A seat's connection ended.
#[derive(Debug)]
pub struct Departure {
    pub id: PlayerId,
    /// The connection's epoch: a replaced connection's end is ignored.
    pub epoch: u32,
    /// Without a goodbye (the socket dropped, or the task died): the seat is
    /// held for a resume. A goodbye or a kick frees it at once.
    pub abrupt: bool,
    /// The connection's address's place under `--max-held-seats-per-ip`,
    /// kept by the room for as long as it holds the seat.
    pub hold: Option<Slot>,
    /// A watcher left (`id` is its watcher id): there is no seat.
    pub watcher: bool,
}

/// Why a room did not seat someone.
#[derive(Debug)]
pub enum JoinError {
    /// Refused with a reason the client is told (the room is full, say).
    Rejected(Rejection),
    /// The room closed (emptied, or the server stops) before it could answer.
    Closed,
}

/// How connections talk to the room.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
    /// Unbounded so a guard can send from `Drop`; each seat sends at most one
    /// departure, so it holds at most the room's seats.
    leaves: mpsc::UnboundedSender<Departure>,
}

/// A seat in the room, held by its connection for as long as it plays.
#[derive(Debug)]
pub struct Membership {
    /// The player's id, or a watcher's own.
    pub id: PlayerId,
    /// A watcher: no seat, no inputs; it may say whom to follow.
    pub watching: bool,
    pub outbox: Arc<Outbox>,
    /// Inputs and `Resync` for the room, in the order the client sent them.
    pub inbound: Arc<InboundQueue>,
    /// Frees the seat when the membership is dropped, however that happens.
    guard: SeatGuard,
}

impl Membership {
    /// The connection ended with a goodbye or a kick: free the seat at once
    /// instead of holding it for a resume.
    pub fn leave_for_good(&mut self) {
        self.guard.abrupt = false;
        self.guard.hold = None;
    }

    /// The socket dropped and its address may hold one more seat: `place`
    /// goes to the room with the departure.
    pub fn hold(&mut self, place: Slot) {
        self.guard.hold = Some(place);
    }
}

/// Tells the room a seat is free when dropped.
#[derive(Debug)]
struct SeatGuard {
    id: PlayerId,
    epoch: u32,
    /// Until told otherwise, a drop is a dropped socket (or a panic).
    abrupt: bool,
    /// A watcher's guard: see [`Departure::watcher`].
    watcher: bool,
    /// See [`Departure::hold`]. A drop without one (a panic) is held too:
    /// a bug must not cost a player its seat.
    hold: Option<Slot>,
    leaves: mpsc::UnboundedSender<Departure>,
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        let departure = Departure {
            id: self.id,
            epoch: self.epoch,
            abrupt: self.abrupt,
            hold: self.hold.take(),
            watcher: self.watcher,
        };
        // A stopped room has already dropped everyone.
        let _ = self.leaves.send(departure);
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Join { newcomer, .. } => write!(f, "Join({})", newcomer.name),
            Command::Snapshot { .. } => write!(f, "Snapshot"),
            Command::Move { to } => write!(f, "Move({})", to.url),
            Command::Close { reason } => write!(f, "Close({})", reason.code),
            Command::Watch { .. } => write!(f, "Watch"),
            Command::Roster { .. } => write!(f, "Roster"),
            Command::Kick { id, .. } => write!(f, "Kick({id})"),
        }
    }
}

impl RoomHandle {
    /// Asks for a seat: the one `resume` holds if it is still held, else a
    /// new one. The seat is freed when the returned membership is dropped.
    pub async fn join(
        &self,
        newcomer: Newcomer,
        resume: Option<ResumeToken>,
    ) -> Result<Membership, JoinError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Join { newcomer, resume, reply }).await.map_err(|_| JoinError::Closed)?;
        answer.await.map_err(|_| JoinError::Closed)?
    }

    /// Asks to watch; the watcher's link closes when the returned
    /// membership is dropped.
    pub async fn watch(&self, from: Option<AddressKey>) -> Result<Membership, JoinError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Watch { from, reply }).await.map_err(|_| JoinError::Closed)?;
        answer.await.map_err(|_| JoinError::Closed)?
    }

    /// The room's state now; `None` if it has stopped.
    pub async fn snapshot(&self) -> Option<WorldSnapshot> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Snapshot { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Tells the room it is played at `to` now: its players are sent there
    /// and it stops. `false` if it had stopped already.
    pub async fn move_to(&self, to: Moved) -> bool {
        self.commands.send(Command::Move { to }).await.is_ok()
    }

    /// Closes the room: every connection with `reason`. `false` if it had
    /// stopped already.
    pub async fn close(&self, reason: CloseReason) -> bool {
        self.commands.send(Command::Close { reason }).await.is_ok()
    }

    /// Who sits in the room; `None` if it has stopped.
    pub async fn roster(&self) -> Option<Vec<RosterLine>> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Roster { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Removes player `id` for good; `false` if it was not there.
    pub async fn kick(&self, id: PlayerId) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Kick { id, reply }).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Whether the room's task has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

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
    pub restore: Option<WorldSnapshot>,
    /// Where its recorded rounds go.
    pub replays: Arc<ReplayStore>,
}

/// One room without its task: the world and the players' links, and how
/// what the world decides reaches the players. The task below drives it;
/// benches and tests drive it directly.
pub struct Room {
    pub world: World,
    links: Links,
    metrics: Arc<Metrics>,
    /// This room's figures for `/healthz` and `/metrics`, from what the
    /// world reports.
    stats: Arc<RoomStats>,
    code: String,
    /// Each held seat's place under its address's limit, freed with the hold.
    holds: HashMap<PlayerId, Slot>,
    /// Players seated here so far (resumes are not new players).
    seated_ever: u32,
    /// Watchers this room takes at once (`--max-watchers`).
    max_watchers: usize,
    /// The watcher count everyone was last told.
    watchers_told: usize,
    /// Where recorded rounds are kept (none: the world records nothing).
    replays: Option<Arc<ReplayStore>>,
}

/// A seat given by [`Room::seat`].
#[derive(Debug)]
pub struct Seat {
    pub id: PlayerId,
    pub name: String,
    pub epoch: u32,
    pub ends: Ends,
}

impl Room {
    pub fn new(world: World, slow_client_ticks: u32, metrics: Arc<Metrics>, code: String) -> Self {
        Room {
            world,
            links: Links::new(slow_client_ticks),
            metrics,
            stats: Arc::new(RoomStats::default()),
            code,
            holds: HashMap::new(),
            seated_ever: 0,
            max_watchers: usize::from(DEFAULT_MAX_WATCHERS),
            watchers_told: 0,
            replays: None,
        }
    }

    /// Keeps the rounds the world records in `store`.
    pub fn keeping_replays_in(mut self, store: Arc<ReplayStore>) -> Self {
        self.replays = Some(store);
        self
    }

    /// Hands finished recordings to the store, deflated off the tick, and
    /// tells everyone each one's id (the podium's "Watch this round").
    fn keep_replays(&mut self) {
        let finished = self.world.take_replays();
        if finished.is_empty() {
            return;
        }
        let Some(store) = self.replays.clone().filter(|store| store.keeps()) else { return };
        for replay in finished {
            let Some(id) = crate::room::replays::new_id() else { continue };
            let Some(pending) = store.reserve() else {
                tracing::warn!(room = %self.code, "a round was not kept: too many rounds are being stored");
                continue;
            };
            let (code, private) = (self.code.clone(), self.world.is_private());
            tokio::task::spawn_blocking(move || pending.store().keep(id, &code, private, &replay));
            let told = Bytes::from(encode_server(&ServerMsg::Replay { id }));
            for stuck in self.links.broadcast(&told, false) {
                self.kick_slow(stuck);
            }
        }
    }

    /// Takes at most `max` watchers at once.
    pub fn watched_by_at_most(mut self, max: u16) -> Self {
        self.max_watchers = usize::from(max);
        self
    }

    /// Opens a watcher's link, with its `Welcome` first; refused past
    /// `--max-watchers`.
    pub fn watch(&mut self, from: Option<AddressKey>) -> Result<(PlayerId, Ends), Rejection> {
        self.world.admits(from)?;
        if self.links.watchers() >= self.max_watchers {
            let max = u16::try_from(self.max_watchers).unwrap_or(u16::MAX);
            return Err(Rejection::new(arena_shared::protocol::RejectReason::WatchersFull { max }));
        }
        let (id, ends) = self.links.open_watcher();
        self.world.set_watchers(self.watcher_count());
        ends.outbox.push_event(Bytes::from(encode_server(&self.world.watcher_welcome())));
        self.tell_watchers();
        Ok((id, ends))
    }

    fn watcher_count(&self) -> u16 {
        u16::try_from(self.links.watchers()).unwrap_or(u16::MAX)
    }

    /// Tells everyone how many watch, if that changed.
    fn tell_watchers(&mut self) {
        let count = self.links.watchers();
        if count == self.watchers_told {
            return;
        }
        self.watchers_told = count;
        self.world.set_watchers(self.watcher_count());
        self.stats.watchers.store(count as u64, Relaxed);
        let msg = Bytes::from(encode_server(&ServerMsg::Watchers { count: self.watcher_count() }));
        for id in self.links.broadcast(&msg, true) {
            self.kick_slow(id);
        }
    }

    /// Reports this room's figures into `stats` (the directory's entry).
    pub fn reporting_to(mut self, stats: Arc<RoomStats>) -> Self {
        self.stats = stats;
        self
    }

    /// How long a tick took, into this room's histogram and the server's.
    pub fn record_tick(&self, took: Duration) {
        self.metrics.record_tick(took);
        self.stats.ticks.record(took.as_micros() as u64);
    }

    fn report(&self) {
        self.stats.tick.store(u64::from(self.world.tick_number()), Relaxed);
        self.stats.players.store(self.world.player_count() as u64, Relaxed);
    }

    /// Seats a newcomer, or gives back the seat `resume` holds.
    pub fn seat(
        &mut self,
        newcomer: Newcomer,
        resume: Option<ResumeToken>,
        token: impl FnOnce() -> Result<ResumeToken, Rejection>,
    ) -> Result<Seat, Rejection> {
        let seated = match resume.and_then(|token| self.world.resume(&token)) {
            Some(seated) => {
                self.holds.remove(&seated.id);
                seated
            }
            None => {
                let seated = self.world.join(newcomer, token()?)?;
                self.seated_ever = self.seated_ever.saturating_add(1);
                seated
            }
        };
        let ends = self.links.open(seated.id);
        // The Welcome goes first, before anything the join told everyone.
        ends.outbox.push_event(Bytes::from(encode_server(&seated.welcome)));
        self.deliver_news(true);
        self.report();
        Ok(Seat { id: seated.id, name: seated.name, epoch: seated.epoch, ends })
    }

    /// A connection ended (see [`World::depart`]); its link goes with it.
    pub fn depart(&mut self, departure: Departure) -> bool {
        let Departure { id, epoch, abrupt, hold, watcher } = departure;
        if watcher {
            let current = self.links.close_watcher(id, CloseReason::new(close::NORMAL, "left"));
            self.tell_watchers();
            return current;
        }
        let current = self.world.depart(id, epoch, abrupt);
        if current {
            self.links.close(id, CloseReason::new(close::NORMAL, "left"));
            if let Some(hold) = hold
                && self.world.is_held(id)
            {
                self.holds.insert(id, hold);
            }
        }
        self.deliver_news(true);
        self.report();
        current
    }

    /// One tick: inputs in, the world ticks, news and frames out; clients
    /// that stopped reading are dropped.
    pub fn tick(&mut self) {
        let frames = self.world.tick(&mut self.links);
        self.obey_hosts();
        // The frames follow at once: they wake the writers.
        self.deliver_news(false);
        let Frames { tick, states, inputs, acks } = frames;
        let scene = Scene::new(states, inputs);
        let pushed = self.links.push_frames(tick, &acks, &scene);
        self.metrics.frames_dropped_total.inc_by(pushed.replaced);
        for id in pushed.too_slow {
            self.kick_slow(id);
        }
        if self.links.watchers() > 0 {
            let watched = self.links.push_watcher_frames(tick, &scene, self.world.leader());
            self.metrics.frames_dropped_total.inc_by(watched.replaced);
            for _ in 0..watched.watchers_too_slow {
                self.metrics.kick(Kick::TooSlow);
            }
        }
        self.tell_watchers();
        self.keep_replays();
        self.report();
    }

    /// Closes every connection with `reason`; used at shutdown.
    pub fn close_all(&mut self, reason: &CloseReason) {
        self.links.close_all(reason);
    }

    /// Sends every connected player to where the room is played now: a
    /// `Moved`, then the close. Their seats are not freed here: the room
    /// goes with its snapshot, and they resume there.
    pub fn send_everyone(&mut self, to: &Moved) {
        let moved = Bytes::from(encode_server(&ServerMsg::Moved(to.clone())));
        self.links.close_all(&CloseReason::new(close::MOVED, "the room moved to another node").after(moved));
    }

    /// Tells everyone what the world decided; a leaver's link closes, and a
    /// player whose event queue is full is stuck and gets dropped.
    fn deliver_news(&mut self, wake: bool) {
        loop {
            let news = self.world.take_news();
            if news.is_empty() {
                return;
            }
            for msg in news {
                let stuck = self.links.broadcast(&Bytes::from(encode_server(&msg)), wake);
                if let ServerMsg::Left { id } = msg {
                    self.links.close(id, CloseReason::new(close::NORMAL, "left"));
                    self.holds.remove(&id);
                }
                for id in stuck {
                    self.kick_slow(id);
                }
            }
        }
    }

    /// An operator's kick: the connection closes with [`close::KICKED`]
    /// and the seat is freed (no hold: a resume finds nothing). The `Left`
    /// it makes goes out as any leave's does, which drops the seat's hold.
    fn kick(&mut self, id: PlayerId) -> bool {
        if !self.world.leave(id) {
            return false;
        }
        tracing::info!(room = %self.code, player = id, "removed by an operator");
        self.links.close(id, CloseReason::new(close::KICKED, "removed by the server's operator"));
        self.deliver_news(true);
        self.report();
        true
    }

    /// Carries out the host commands this tick's inputs carried: a refused
    /// one is answered to its sender alone; a kicked player's or a new
    /// watcher's connection closes with its code before the `Left` goes out.
    fn obey_hosts(&mut self) {
        for (by, command) in self.links.take_host_commands() {
            let (id, reason) = match self.world.host_command(by, command) {
                Ok(HostEffect::Done) => {
                    tracing::info!(room = %self.code, host = by, ?command, "host command");
                    continue;
                }
                Err(refusal) => {
                    self.links.send(by, Bytes::from(encode_server(&ServerMsg::Refused(refusal))));
                    continue;
                }
                Ok(HostEffect::Kicked(id)) => {
                    let minutes = arena_shared::protocol::KICK_BAN_SECS / 60;
                    let reason =
                        format!("the host removed you from this room; you can come back in {minutes} min");
                    (id, CloseReason::new(close::KICKED, reason))
                }
                Ok(HostEffect::ToWatchers(id)) => {
                    (id, CloseReason::new(close::TO_WATCHERS, "the host made you a watcher"))
                }
            };
            tracing::info!(room = %self.code, host = by, player = id, ?command, "host command");
            self.links.close(id, reason);
        }
    }

    fn kick_slow(&mut self, id: PlayerId) {
        tracing::warn!(room = %self.code, player = id, "disconnecting a client that stayed behind");
        self.links.close(id, CloseReason::new(close::TOO_SLOW, "too slow: frames were not being read"));
        self.metrics.kick(Kick::TooSlow);
        self.world.leave(id);
    }
}

/// Starts a room's task on `tracker`; it stops when `cancel` fires (closing
/// every player) or when it has been empty for the idle time (calling
/// `spec.on_close` first).
pub fn spawn(
    spec: RoomSpec,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> RoomHandle {
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (leaves, leaves_rx) = mpsc::unbounded_channel();
    let mut world = World::new(config.tick_rate, config.max_players)
        .in_room(spec.code.clone(), spec.private)
        .holding_seats_for(config.resume_ticks())
        .holding_at_most(held_seats_per_room(config.max_players))
        .with_rounds(config.round_secs, config.podium_secs)
        .filling_with_bots(usize::from(config.fill_bots));
    if let Some(saved) = spec.restore {
        world = world.restored(saved);
    }
    if config.replay_memory_mb > 0 {
        world = world.recording();
    }
    let room = Room::new(world, config.slow_client_ticks(), metrics, spec.code.clone())
        .reporting_to(spec.stats)
        .watched_by_at_most(config.max_watchers)
        .keeping_replays_in(spec.replays);
    let handle = RoomHandle { commands, leaves };
    let channels = Channels { commands: commands_rx, leaves: leaves_rx, leave_sender: handle.leaves.clone() };
    let (owner, on_close) = (spec.owner, spec.on_close);
    let ending = Ending { on_close, fence: spec.fence };
    tracker.spawn(async move {
        run(room, channels, config, ending, cancel).await;
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

/// What the room task holds about its end: the directory's callback, and
/// the fence it runs within.
struct Ending {
    on_close: Box<dyn FnOnce() + Send>,
    fence: Arc<Fence>,
}

async fn run(
    mut room: Room,
    channels: Channels,
    config: Arc<ServerConfig>,
    ending: Ending,
    cancel: CancellationToken,
) {
    let Channels { mut commands, mut leaves, leave_sender } = channels;
    let Ending { on_close, fence } = ending;
    let mut paused = false;
    let code = room.code.clone();
    let mut ticker = tokio::time::interval(config.tick_interval());
    // An overloaded server runs slow rather than bursting to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let idle_limit = config.room_idle();
    // A room is made for a joiner who is on the way.
    let mut empty_since = Some(Instant::now());
    tracing::info!(room = %code, room_size = config.max_players, "room opened");
    let shutting_down = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break true,
            _ = ticker.tick() => {
                let started = Instant::now();
                // Past its lease another node may run this room: nothing goes out.
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
                room.timed_tick(config.tick_interval());
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
                if room.depart(departure) {
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

/// Closes the command queue and turns away the joins already in it.
fn refuse_queued(commands: &mut mpsc::Receiver<Command>) {
    commands.close();
    while let Ok(command) = commands.try_recv() {
        if let Command::Join { reply, .. } = command {
            let _ = reply.send(Err(JoinError::Closed));
        }
    }
}

impl Room {
    /// Carries out one command; `true` when the room ends with it.
    fn obey(
        &mut self,
        command: Command,
        leave_sender: &mpsc::UnboundedSender<Departure>,
        fence: &Fence,
    ) -> bool {
        match command {
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
    fn timed_tick(&mut self, budget: Duration) {
        let started = Instant::now();
        self.tick();
        let took = started.elapsed();
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
        let guard = SeatGuard { id, epoch, abrupt: true, hold: None, watcher: false, leaves: leaves.clone() };
        Ok(Membership { id, watching: false, outbox: ends.outbox, inbound: ends.inbound, guard })
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
        tracing::info!(room = %self.code, watcher = id, watchers = self.links.watchers(), "watching");
        let guard =
            SeatGuard { id, epoch: 0, abrupt: false, hold: None, watcher: true, leaves: leaves.clone() };
        Ok(Membership { id, watching: true, outbox: ends.outbox, inbound: ends.inbound, guard })
    }
}

/// 128 bits from the OS's randomness.
fn new_token() -> Result<ResumeToken, getrandom::Error> {
    let mut token = [0u8; 16];
    getrandom::fill(&mut token)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use arena_shared::codec::decode_server;
    use arena_shared::protocol::Frame;
    use arena_shared::sim::Input;

    use super::*;
    use crate::room::links::Inbound;
    use crate::room::world::QueuedInput;

    fn room(slow_client_ticks: u32) -> Room {
        let world = World::new(30, 8).holding_seats_for(30);
        Room::new(world, slow_client_ticks, Arc::new(Metrics::default()), "testroom00".into())
    }

    fn seat(room: &mut Room, name: &str, token: u8) -> Seat {
        let newcomer = Newcomer { name: name.into(), color: 0, from: None };
        room.seat(newcomer, None, || Ok([token; 16])).expect("room has space")
    }

    async fn take_messages(outbox: &Outbox) -> Vec<ServerMsg> {
        let batch = outbox.next().await;
        batch.messages.iter().map(|b| decode_server(b).expect("server bytes decode")).collect()
    }

    fn last_frame(msgs: &[ServerMsg]) -> Frame {
        msgs.iter()
            .rev()
            .find_map(|m| if let ServerMsg::Frame(f) = m { Some(f.clone()) } else { None })
            .expect("should have sent a frame")
    }

    #[tokio::test]
    async fn a_watcher_takes_no_seat_follows_the_leader_or_whom_it_asks_and_is_counted() {
        let mut room = room(3).watched_by_at_most(1);
        let ada = seat(&mut room, "ada", 1);
        let bob = seat(&mut room, "bob", 2);
        take_messages(&ada.ends.outbox).await;
        let (watcher, ends) = room.watch(None).expect("a watcher fits");
        let Some(ServerMsg::Welcome(welcome)) = take_messages(&ends.outbox).await.into_iter().next() else {
            panic!("a watcher's first message is its Welcome");
        };
        assert!(welcome.watching);
        assert_eq!((welcome.you, welcome.watchers, welcome.players.len()), (0, 1, 2));
        assert_eq!(room.world.player_count(), 2, "a watcher is no player");
        assert!(take_messages(&ada.ends.outbox).await.contains(&ServerMsg::Watchers { count: 1 }));
        let refused = room.watch(None).expect_err("one watcher is the cap");
        assert_eq!(refused.reason, arena_shared::protocol::RejectReason::WatchersFull { max: 1 });

        // Equal scores: the leader is the longest here.
        room.tick();
        let frame = last_frame(&take_messages(&ends.outbox).await);
        assert_eq!((frame.you.id, frame.ack_seq), (ada.id, 0));
        assert!(frame.near.is_empty(), "a watcher predicts nobody");
        let others: Vec<PlayerId> = frame.others.iter().map(|u| u.id_gap).collect();
        assert_eq!(others, vec![bob.id], "the followed player's view");
        ends.inbound.push(Inbound::Follow(bob.id)).expect("queued");
        room.tick();
        assert_eq!(last_frame(&take_messages(&ends.outbox).await).you.id, bob.id);
        // Someone who is not there: the leader again.
        ends.inbound.push(Inbound::Follow(99)).expect("queued");
        room.tick();
        assert_eq!(last_frame(&take_messages(&ends.outbox).await).you.id, ada.id);

        take_messages(&ada.ends.outbox).await;
        let departure = Departure { id: watcher, epoch: 0, abrupt: true, hold: None, watcher: true };
        assert!(room.depart(departure));
        assert!(ends.outbox.is_closed());
        assert_eq!(room.world.player_count(), 2);
        assert!(take_messages(&ada.ends.outbox).await.contains(&ServerMsg::Watchers { count: 0 }));
        room.watch(None).expect("its place is free again");
    }

    #[tokio::test]
    async fn host_commands_ride_the_inbound_queue_and_close_kicked_and_moved_players_with_their_codes() {
        use arena_shared::protocol::{CommandRefusal, HostCommand};
        let world = World::new(30, 8).in_room("private000".into(), true);
        let mut room = Room::new(world, 3, Arc::new(Metrics::default()), "private000".into());
        let ada = seat(&mut room, "ada", 1);
        let bob = seat(&mut room, "bob", 2);
        let cy = seat(&mut room, "cy", 3);
        room.tick();
        take_messages(&bob.ends.outbox).await;
        bob.ends.inbound.push(Inbound::Host(HostCommand::Kick { id: ada.id })).expect("queued");
        room.tick();
        let answer = take_messages(&bob.ends.outbox).await;
        assert!(answer.contains(&ServerMsg::Refused(CommandRefusal::NotHost)), "{answer:?}");
        assert!(!ada.ends.outbox.is_closed());

        ada.ends.inbound.push(Inbound::Host(HostCommand::Kick { id: bob.id })).expect("queued");
        ada.ends.inbound.push(Inbound::Host(HostCommand::ToWatchers { id: cy.id })).expect("queued");
        room.tick();
        let kicked = bob.ends.outbox.next().await.close.expect("closed");
        assert_eq!(kicked.code, close::KICKED);
        assert!(kicked.reason.contains("10 min"), "{}", kicked.reason);
        assert_eq!(cy.ends.outbox.next().await.close.expect("closed").code, close::TO_WATCHERS);
        assert_eq!(room.world.player_count(), 1);
        let news = take_messages(&ada.ends.outbox).await;
        assert!(
            news.contains(&ServerMsg::Left { id: bob.id }) && news.contains(&ServerMsg::Left { id: cy.id })
        );
    }

    #[tokio::test]
    async fn a_seat_gets_its_welcome_first_then_news_then_frames_that_ack_its_inputs() {
        let mut room = room(3);
        let ada = seat(&mut room, "ada", 1);
        for seq in 1..=2 {
            ada.ends
                .inbound
                .push(Inbound::Input(QueuedInput { seq, input: Input::stick(127, 0) }))
                .expect("room in queue");
        }
        room.tick();
        let msgs = take_messages(&ada.ends.outbox).await;
        assert!(matches!(&msgs[0], ServerMsg::Welcome(w) if w.you == ada.id), "welcome first: {msgs:?}");
        assert!(matches!(&msgs[1], ServerMsg::Joined(p) if p.id == ada.id && p.name == "ada"));
        assert_eq!((last_frame(&msgs).tick, last_frame(&msgs).ack_seq), (1, 2));
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_dropped_without_stopping_others() {
        let mut room = room(3);
        let reader = seat(&mut room, "reader", 1);
        let stuck = seat(&mut room, "stuck", 2);
        let mut last = Vec::new();
        for _ in 0..5 {
            room.tick();
            last = take_messages(&reader.ends.outbox).await;
        }
        assert!(stuck.ends.outbox.is_closed(), "stuck client should be closed after slow_client_ticks");
        assert_eq!(room.world.player_count(), 1);
        assert_eq!(last_frame(&last).tick, 5, "the reader should get every tick's frame");
        let frame = last_frame(&last);
        assert!(
            frame.others.is_empty() && frame.gone == [stuck.id],
            "the stuck player left the view: {frame:?}"
        );
    }

    #[tokio::test]
    async fn resuming_a_connected_player_closes_its_old_socket() {
        let mut room = room(3);
        let first = seat(&mut room, "ada", 1);
        let newcomer = Newcomer { name: "ignored".into(), color: 0, from: None };
        let second = room.seat(newcomer, Some([1; 16]), || Ok([9; 16])).expect("held");
        assert_eq!(second.id, first.id);
        let closed = first.ends.outbox.next().await.close.expect("the old socket is told to close");
        assert_eq!(closed.code, close::RESUMED_ELSEWHERE);
        // The old connection's late end leaves the new one alone.
        assert!(!room.depart(Departure {
            id: first.id,
            epoch: first.epoch,
            abrupt: false,
            hold: None,
            watcher: false
        }));
        assert!(!second.ends.outbox.is_closed());
    }

    #[tokio::test]
    async fn a_departure_closes_the_link_and_everyone_hears() {
        let mut room = room(3);
        let ada = seat(&mut room, "ada", 1);
        let bob = seat(&mut room, "bob", 2);
        let _ = take_messages(&bob.ends.outbox).await;
        assert!(room.depart(Departure {
            id: ada.id,
            epoch: ada.epoch,
            abrupt: true,
            hold: None,
            watcher: false
        }));
        assert!(ada.ends.outbox.is_closed(), "the link goes with the connection");
        assert_eq!(take_messages(&bob.ends.outbox).await, [ServerMsg::Away { id: ada.id }]);
    }
}
