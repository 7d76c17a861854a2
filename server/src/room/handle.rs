//! What other tasks hold of a room: the [`RoomHandle`] they ask it
//! through (join, watch, snapshot, move, close, roster, kick; each a
//! command on the room's bounded channel), and a seat's [`Membership`].
//! A seat is freed by its [`SeatGuard`]'s `Drop`, so every way out of a
//! connection gives the seat back.

use std::sync::Arc;

use arena_shared::protocol::{Moved, PlayerId, Rejection, ResumeToken};
use tokio::sync::{mpsc, oneshot};

use crate::limits::{AddressKey, Slot};
use crate::room::links::{Departure, InboundQueue, LinkEnds};
use crate::room::outbox::{CloseReason, Outbox};
use crate::room::world::{Newcomer, RosterLine, WorldSnapshot};

/// Joins and leaves waiting for the room. Small: each is handled within a tick.
pub(super) const COMMAND_QUEUE: usize = 256;

pub(super) enum Command {
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
    pub(super) commands: mpsc::Sender<Command>,
    /// Unbounded so a guard can send from `Drop`; each seat sends at most one
    /// departure, so it holds at most the room's seats.
    pub(super) leaves: mpsc::UnboundedSender<Departure>,
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
    /// Seat `id` (its connection's `epoch`) with `ends`: its guard tells
    /// the room through `leaves` when it ends, a drop counting as abrupt
    /// until told otherwise.
    pub(super) fn seat(
        id: PlayerId,
        epoch: u32,
        ends: LinkEnds,
        leaves: &mpsc::UnboundedSender<Departure>,
    ) -> Self {
        let guard = SeatGuard { id, epoch, abrupt: true, hold: None, watcher: false, leaves: leaves.clone() };
        Membership { id, watching: false, outbox: ends.outbox, inbound: ends.inbound, guard }
    }

    /// Watcher `id`'s place with `ends`: no seat to hold.
    pub(super) fn watcher(id: PlayerId, ends: LinkEnds, leaves: &mpsc::UnboundedSender<Departure>) -> Self {
        let guard =
            SeatGuard { id, epoch: 0, abrupt: false, hold: None, watcher: true, leaves: leaves.clone() };
        Membership { id, watching: true, outbox: ends.outbox, inbound: ends.inbound, guard }
    }

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
