//! The room task: the only owner of the [`World`]. It ticks at the configured
//! rate and takes joins and leaves over a channel, so game state needs no lock.

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
use crate::world::{Seat, World};

/// Joins and leaves waiting for the room. Small: each is handled within a tick.
const COMMAND_QUEUE: usize = 256;

enum Command {
    Join { name: String, reply: oneshot::Sender<Result<Seat, Rejection>> },
    Leave { id: PlayerId },
}

/// How connections talk to the room.
#[derive(Clone, Debug)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
}

pub struct SpawnedRoom {
    pub handle: RoomHandle,
    pub task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Join { name, .. } => write!(f, "Join({name})"),
            Command::Leave { id } => write!(f, "Leave({id})"),
        }
    }
}

impl RoomHandle {
    /// Asks for a seat; a stopped room answers "shutting down".
    pub async fn join(&self, name: String) -> Result<Seat, Rejection> {
        let shutting_down = || Rejection::new(RejectReason::ShuttingDown);
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Join { name, reply }).await.map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }

    pub async fn leave(&self, id: PlayerId) {
        // A stopped room has already dropped everyone.
        let _ = self.commands.send(Command::Leave { id }).await;
    }
}

/// Starts the room task; it stops when `cancel` fires, closing every player.
pub fn spawn(config: Arc<ServerConfig>, metrics: Arc<Metrics>, cancel: CancellationToken) -> SpawnedRoom {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let world = World::new(config.tick_rate, config.max_players, config.slow_client_ticks(), metrics.clone());
    let task = tokio::spawn(run(world, rx, config, metrics, cancel));
    SpawnedRoom { handle: RoomHandle { commands: tx }, task }
}

async fn run(
    mut world: World,
    mut commands: mpsc::Receiver<Command>,
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
            Some(command) = commands.recv() => match command {
                Command::Join { name, reply } => {
                    let result = world.join(name.clone());
                    match &result {
                        Ok(seat) => tracing::info!(player = seat.id, %name, players = world.player_count(), "joined"),
                        Err(rejection) => {
                            tracing::info!(%name, reason = %rejection.message, "join refused");
                        }
                    }
                    if let Err(Ok(seat)) = reply.send(result) {
                        // The connection gave up waiting; free the seat again.
                        world.leave(seat.id);
                    }
                }
                Command::Leave { id } => {
                    if world.leave(id) {
                        tracing::info!(player = id, players = world.player_count(), "left");
                    }
                }
            },
        }
    }
    world.close_all(&CloseReason::new(close::GOING_AWAY, "server shutting down"));
    tracing::info!("room stopped");
}
