//! The room task: the only owner of the [`World`]. It ticks at the configured
//! rate and takes joins and leaves over channels, so game state needs no lock.
//!
//! A seat is freed by its [`SeatGuard`]'s `Drop`, so every way out of a
//! connection (a clean close, a reset, an early `select!` arm, a panic)
//! gives the seat back.

use std::sync::Arc;
use std::time::Instant;

use arena_shared::protocol::{PlayerId, RejectReason, Rejection, close};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::outbox::CloseReason;
use crate::outbox::Outbox;
use crate::world::{QueuedInput, Seat, World};

/// Joins and leaves waiting for the room. Small: each is handled within a tick.
const COMMAND_QUEUE: usize = 256;

enum Command {
    Join { name: String, reply: oneshot::Sender<Result<Membership, Rejection>> },
}

/// How connections talk to the room.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
    /// Unbounded so a guard can send from `Drop`; each seat sends at most one
    /// leave, so it holds at most the room's seats.
    leaves: mpsc::UnboundedSender<PlayerId>,
}

/// A seat in the room, held by its connection for as long as it plays.
#[derive(Debug)]
pub struct Membership {
    pub id: PlayerId,
    pub outbox: Arc<Outbox>,
    pub inputs: mpsc::Sender<QueuedInput>,
    /// Frees the seat when the membership is dropped, however that happens.
    _guard: SeatGuard,
}

/// Tells the room a seat is free when dropped.
#[derive(Debug)]
struct SeatGuard {
    id: PlayerId,
    leaves: mpsc::UnboundedSender<PlayerId>,
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        // A stopped room has already dropped everyone.
        let _ = self.leaves.send(self.id);
    }
}

pub struct SpawnedRoom {
    pub handle: RoomHandle,
    pub task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Join { name, .. } => write!(f, "Join({name})"),
        }
    }
}

impl RoomHandle {
    /// Asks for a seat; a stopped room answers "shutting down". The seat is
    /// freed when the returned membership is dropped.
    pub async fn join(&self, name: String) -> Result<Membership, Rejection> {
        let shutting_down = || Rejection::new(RejectReason::ShuttingDown);
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Join { name, reply }).await.map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

/// Starts the room task; it stops when `cancel` fires, closing every player.
pub fn spawn(config: Arc<ServerConfig>, metrics: Arc<Metrics>, cancel: CancellationToken) -> SpawnedRoom {
    let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (leaves, leaves_rx) = mpsc::unbounded_channel();
    let world = World::new(config.tick_rate, config.max_players, config.slow_client_ticks(), metrics.clone());
    let handle = RoomHandle { commands, leaves };
    let task =
        tokio::spawn(run(world, commands_rx, leaves_rx, handle.leaves.clone(), config, metrics, cancel));
    SpawnedRoom { handle, task }
}

async fn run(
    mut world: World,
    mut commands: mpsc::Receiver<Command>,
    mut leaves: mpsc::UnboundedReceiver<PlayerId>,
    leave_sender: mpsc::UnboundedSender<PlayerId>,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(config.tick_interval());
    // An overloaded server runs slow rather than bursting to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let budget = config.tick_interval();
    tracing::info!(tick_rate = config.tick_rate, max_players = config.max_players, "room started");
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {
                let started = Instant::now();
                world.tick();
                let took = started.elapsed();
                metrics.record_tick(took);
                if took > budget {
                    tracing::warn!(tick = world.tick_number(), ?took, "tick overran its budget");
                }
            }
            // Leaves before joins: a freed seat is there for the next joiner.
            Some(id) = leaves.recv() => {
                if world.leave(id) {
                    tracing::info!(player = id, players = world.player_count(), "left");
                }
            }
            Some(Command::Join { name, reply }) = commands.recv() => {
                let result = world.join(name).map(|seat| {
                    let Seat { id, name, outbox, inputs } = seat;
                    tracing::info!(player = id, %name, players = world.player_count(), "joined");
                    let _guard = SeatGuard { id, leaves: leave_sender.clone() };
                    Membership { id, outbox, inputs, _guard }
                });
                if let Err(rejection) = &result {
                    tracing::info!(reason = %rejection.message, "join refused");
                }
                // If the connection gave up waiting, dropping the answer
                // drops its guard, which frees the seat again.
                let _ = reply.send(result);
            }
        }
    }
    world.close_all(&CloseReason::new(close::GOING_AWAY, "server shutting down"));
    tracing::info!("room stopped");
}
