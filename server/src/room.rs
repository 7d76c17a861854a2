//! The room task: the only owner of its [`World`]. It ticks at the configured
//! rate and takes joins and leaves over channels, so game state needs no
//! lock. A room that stays empty for `--room-idle-secs` takes itself out of
//! the directory and stops.
//!
//! A seat is freed by its [`SeatGuard`]'s `Drop`, so every way out of a
//! connection (a clean close, a reset, an early `select!` arm, a panic)
//! gives the seat back.

use std::sync::Arc;
use std::time::Instant;

use arena_shared::protocol::{PlayerId, Rejection, ResumeToken, close};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::metrics::{Metrics, RoomStats};
use crate::outbox::CloseReason;
use crate::outbox::Outbox;
use crate::rooms::RoomDirectory;
use crate::world::{Newcomer, QueuedInput, Seat, World};

/// Joins and leaves waiting for the room. Small: each is handled within a tick.
const COMMAND_QUEUE: usize = 256;

enum Command {
    Join { newcomer: Newcomer, resume: Option<ResumeToken>, reply: oneshot::Sender<Result<Membership, JoinError>> },
}

/// A seat's connection ended.
#[derive(Debug, Clone, Copy)]
struct Departure {
    id: PlayerId,
    /// The connection's epoch: a replaced connection's end is ignored.
    epoch: u32,
    /// Without a goodbye (the socket dropped, or the task died): the seat is
    /// held for a resume. A goodbye or a kick frees it at once.
    abrupt: bool,
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
    pub id: PlayerId,
    pub outbox: Arc<Outbox>,
    pub inputs: mpsc::Sender<QueuedInput>,
    /// Frees the seat when the membership is dropped, however that happens.
    guard: SeatGuard,
}

impl Membership {
    /// The connection ended with a goodbye or a kick: free the seat at once
    /// instead of holding it for a resume.
    pub fn leave_for_good(&mut self) {
        self.guard.abrupt = false;
    }
}

/// Tells the room a seat is free when dropped.
#[derive(Debug)]
struct SeatGuard {
    id: PlayerId,
    epoch: u32,
    /// Until told otherwise, a drop is a dropped socket (or a panic).
    abrupt: bool,
    leaves: mpsc::UnboundedSender<Departure>,
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        // A stopped room has already dropped everyone.
        let _ = self.leaves.send(Departure { id: self.id, epoch: self.epoch, abrupt: self.abrupt });
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Join { newcomer, .. } => write!(f, "Join({})", newcomer.name),
        }
    }
}

impl RoomHandle {
    /// Asks for a seat: the one `resume` holds if it is still held, else a
    /// new one. The seat is freed when the returned membership is dropped.
    pub async fn join(&self, newcomer: Newcomer, resume: Option<ResumeToken>) -> Result<Membership, JoinError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Join { newcomer, resume, reply }).await.map_err(|_| JoinError::Closed)?;
        answer.await.map_err(|_| JoinError::Closed)?
    }
}

/// Everything a new room needs to know.
pub struct RoomSpec {
    pub code: String,
    pub private: bool,
    pub stats: Arc<RoomStats>,
}

/// Starts a room's task on `tracker`; it stops when `cancel` fires (closing
/// every player) or when it has been empty for the idle time (leaving
/// `directory` first, so nobody is sent to a closed room).
pub fn spawn(
    spec: RoomSpec,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    directory: Arc<dyn RoomDirectory>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> RoomHandle {
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (leaves, leaves_rx) = mpsc::unbounded_channel();
    let world = World::new(config.tick_rate, config.max_players, config.slow_client_ticks(), metrics.clone())
        .in_room(spec.code.clone(), spec.private, spec.stats)
        .holding_seats_for(config.resume_ticks())
        .with_rounds(config.round_secs, config.podium_secs);
    let handle = RoomHandle { commands, leaves };
    let channels = Channels { commands: commands_rx, leaves: leaves_rx, leave_sender: handle.leaves.clone() };
    tracker.spawn(run(world, channels, spec.code, config, metrics, directory, cancel));
    handle
}

/// The room task's ends of its channels.
struct Channels {
    commands: mpsc::Receiver<Command>,
    leaves: mpsc::UnboundedReceiver<Departure>,
    /// Cloned into each seat's guard.
    leave_sender: mpsc::UnboundedSender<Departure>,
}

async fn run(
    mut world: World,
    channels: Channels,
    code: String,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    directory: Arc<dyn RoomDirectory>,
    cancel: CancellationToken,
) {
    let Channels { mut commands, mut leaves, leave_sender } = channels;
    let mut ticker = tokio::time::interval(config.tick_interval());
    // An overloaded server runs slow rather than bursting to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let budget = config.tick_interval();
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
                world.tick();
                let took = started.elapsed();
                metrics.record_tick(took);
                world.record_tick(took);
                if took > budget {
                    tracing::warn!(room = %code, tick = world.tick_number(), ?took, "tick overran its budget");
                }
                if world.player_count() > 0 {
                    empty_since = None;
                } else if empty_since.get_or_insert(started).elapsed() >= idle_limit {
                    break false;
                }
            }
            // Leaves before joins: a freed seat is there for the next joiner.
            Some(Departure { id, epoch, abrupt }) = leaves.recv() => {
                if world.depart(id, epoch, abrupt) {
                    let how = if abrupt { "dropped; holding the seat" } else { "left" };
                    tracing::info!(room = %code, player = id, players = world.player_count(), "{how}");
                }
            }
            Some(Command::Join { newcomer, resume, reply }) = commands.recv() => {
                let resumed = resume.and_then(|token| world.resume(&token));
                let result = match resumed {
                    Some(seat) => Ok(seat),
                    None => match new_token() {
                        Ok(token) => world.join(newcomer, token),
                        Err(e) => {
                            tracing::error!("no randomness for a resume token: {e}");
                            Err(Rejection::new(arena_shared::protocol::RejectReason::ShuttingDown))
                        }
                    },
                };
                let result = result.map(|seat| {
                    let Seat { id, name, epoch, outbox, inputs } = seat;
                    tracing::info!(room = %code, player = id, %name, epoch, players = world.player_count(), "joined");
                    let guard = SeatGuard { id, epoch, abrupt: true, leaves: leave_sender.clone() };
                    Membership { id, outbox, inputs, guard }
                });
                if let Err(rejection) = &result {
                    tracing::info!(room = %code, reason = %rejection.message, "join refused");
                }
                // If the connection gave up waiting, dropping the answer
                // drops its guard, which frees the seat again.
                let _ = reply.send(result.map_err(JoinError::Rejected));
            }
        }
    };
    // Out of the directory first, then refuse what is already queued.
    directory.remove(&code);
    commands.close();
    while let Ok(Command::Join { reply, .. }) = commands.try_recv() {
        let _ = reply.send(Err(JoinError::Closed));
    }
    if shutting_down {
        world.close_all(&CloseReason::new(close::GOING_AWAY, "server shutting down"));
    }
    tracing::info!(room = %code, "room closed");
}

/// 128 bits from the OS's randomness.
fn new_token() -> Result<ResumeToken, getrandom::Error> {
    let mut token = [0u8; 16];
    getrandom::fill(&mut token)?;
    Ok(token)
}
