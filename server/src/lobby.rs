//! Where a `Hello` is answered: [`Lobby::join`] seats a newcomer where its
//! room request asks (quick-join, a new private room, a code from an
//! invite link, a room to watch), in one of this process's
//! [`crate::rooms`], or sends it to another node of the cluster
//! ([`crate::cluster::placement`]) with a `Moved`. What one address may do
//! here is bounded: private rooms it holds, and codes it guesses.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arena_shared::protocol::{RejectReason, Rejection, ResumeToken, RoomRequest};
use tokio_util::sync::CancellationToken;

use crate::cluster::placement::Placement;
use crate::config::{GameConfig, LimitsConfig};
use crate::limits::{AddressCaps, AddressKey, Counting, PerAddressBudget};
use crate::room::handle::{JoinError, Membership};
use crate::room::world::Newcomer;
use crate::rooms::directory::RoomEntry;
use crate::rooms::{NoSeat, Rooms};
use crate::telemetry::metrics::Metrics;

/// Wrong room codes one address may try at once (a mistyped link or two,
/// a few expired ones)...
const CODE_MISS_BURST: f64 = 10.0;
/// ...and then per second: one every 5 s. With 64 rooms open among 31^10
/// codes, one address finds one in about two million years.
const CODE_MISSES_PER_SEC: f64 = 0.2;
/// Times a quick-join looks again when the room it chose closed before the
/// join reached it...
const QUICK_JOIN_TRIES: usize = 4;
/// ...and when the room it chose was full by then. A crowd arriving at once
/// all choose the same room with space, which seats what fits and refuses
/// the rest, who then fill the next room (opened or found): a try a room.
/// Each refusal is a room filled, so as many tries as a node's default
/// `--max-rooms` seat any crowd there is room for (four seated a crowd of
/// four rooms' worth and told the rest the server was full).
const QUICK_JOIN_FULL_TRIES: usize = 64;

/// Answers `Hello`s.
pub struct Lobby {
    rooms: Arc<Rooms>,
    placement: Arc<Placement>,
    /// A room's seats, for a full server's refusal.
    room_size: u16,
    /// Private rooms one address may hold, for its refusal.
    max_rooms_per_ip: u16,
    /// How peers are counted.
    counting: Counting,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    /// Wrong codes each address has tried: code guessing is slow.
    code_misses: PerAddressBudget,
    /// Private rooms each address has open: one address cannot take them all.
    private_rooms: Arc<AddressCaps>,
}

impl Lobby {
    pub fn new(
        rooms: Arc<Rooms>,
        placement: Arc<Placement>,
        (game, limits): (&GameConfig, &LimitsConfig),
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Self {
        let counting = limits.counting();
        Lobby {
            code_misses: PerAddressBudget::new(CODE_MISSES_PER_SEC, CODE_MISS_BURST, counting),
            private_rooms: AddressCaps::new(
                usize::from(game.max_rooms),
                limits.max_rooms_per_ip as usize,
                counting,
            ),
            rooms,
            placement,
            room_size: game.max_players,
            max_rooms_per_ip: u16::try_from(limits.max_rooms_per_ip).unwrap_or(u16::MAX),
            counting,
            metrics,
            cancel,
        }
    }

    /// Seats `newcomer`, who connected from `peer`, where `request` asks; in
    /// a room asked for by code, `resume` gets back a held seat. The room
    /// knows the newcomer by `peer`'s address (a host's kick keeps it out).
    pub async fn join(
        &self,
        request: &RoomRequest,
        mut newcomer: Newcomer,
        resume: Option<ResumeToken>,
        peer: IpAddr,
    ) -> Result<Membership, NoSeat> {
        newcomer.from = Some(AddressKey::new(peer, self.counting.v6_prefix));
        if self.cancel.is_cancelled() {
            return Err(Rejection::new(RejectReason::ShuttingDown).into());
        }
        // A draining node opens nothing: new rooms go to another node.
        if request.code().is_none()
            && let Some(moved) = self.placement.draining_to()
        {
            return Err(NoSeat::Moved(moved));
        }
        match request {
            RoomRequest::Join { code } => {
                let entry = self.by_code(code, peer).await?;
                entry.handle.join(newcomer, resume).await.map_err(not_found_if_closed)
            }
            RoomRequest::Watch { code } => {
                let entry = self.by_code(code, peer).await?;
                entry.handle.watch(newcomer.from).await.map_err(not_found_if_closed)
            }
            RoomRequest::CreatePrivate => {
                let owner = self.private_rooms.try_acquire(peer).map_err(|_| {
                    self.metrics.rooms_limited_total.inc();
                    Rejection::new(RejectReason::TooManyRooms { max: self.max_rooms_per_ip })
                })?;
                let entry = self.placement.open(Some(owner)).await?;
                entry.handle.join(newcomer, None).await.map_err(|e| shutting_down_if_closed(e).into())
            }
            RoomRequest::Quick => self.quick(newcomer).await,
        }
    }

    /// The fullest public room with space, here or (sent on) on another
    /// node, or a new one; a room may fill or close between the look and
    /// the join: look again.
    async fn quick(&self, newcomer: Newcomer) -> Result<Membership, NoSeat> {
        let (mut closed, mut full) = (0, 0);
        while closed < QUICK_JOIN_TRIES && full < QUICK_JOIN_FULL_TRIES {
            let entry = match self.rooms.fullest_public_with_space() {
                // Another node's room may be fuller: send the player there.
                Some(entry) => match self.placement.fuller_elsewhere(entry.stats.players.load(Relaxed)).await
                {
                    Some(moved) => return Err(NoSeat::Moved(moved)),
                    None => entry,
                },
                // No room to fill anywhere: a new one, on a quieter node if there is one.
                None => {
                    match self.placement.fuller_elsewhere(0).await.or_else(|| self.placement.quieter_node()) {
                        Some(moved) => return Err(NoSeat::Moved(moved)),
                        None => self.placement.open_public().await?,
                    }
                }
            };
            match entry.handle.join(newcomer.clone(), None).await {
                Ok(membership) => return Ok(membership),
                Err(JoinError::Closed) => closed += 1,
                Err(JoinError::Rejected(r)) if matches!(r.reason, RejectReason::ServerFull { .. }) => {
                    full += 1
                }
                Err(JoinError::Rejected(r)) => return Err(r.into()),
            }
        }
        Err(Rejection::new(RejectReason::ServerFull { max_players: self.room_size }).into())
    }

    /// The room under `code`, here or (in a cluster) on another node; a
    /// code that names none is a guess, and one address's guesses are slow.
    async fn by_code(&self, code: &str, peer: IpAddr) -> Result<RoomEntry, NoSeat> {
        // Checked before the look-up: an address out of tries learns nothing.
        if let Err(over) = self.code_misses.check(peer) {
            self.metrics.guesses_limited_total.inc();
            return Err(Rejection::new(RejectReason::TooManyGuesses {
                retry_after_secs: retry_secs(over.retry_after),
            })
            .into());
        }
        if let Some(entry) = self.rooms.get(code) {
            return Ok(entry);
        }
        match self.placement.locate(code).await? {
            Some(entry) => Ok(entry),
            None => {
                self.metrics.room_code_misses_total.inc();
                // Over budget only if another miss raced this one; it is refused next time.
                let _ = self.code_misses.spend(peer);
                Err(Rejection::new(RejectReason::RoomNotFound).into())
            }
        }
    }
}

/// A room that closed while asked is a room not found.
fn not_found_if_closed(error: JoinError) -> NoSeat {
    match error {
        JoinError::Rejected(rejection) => rejection.into(),
        JoinError::Closed => Rejection::new(RejectReason::RoomNotFound).into(),
    }
}

/// A room that closed as it opened: the server is stopping.
fn shutting_down_if_closed(error: JoinError) -> Rejection {
    match error {
        JoinError::Rejected(rejection) => rejection,
        JoinError::Closed => Rejection::new(RejectReason::ShuttingDown),
    }
}

/// Whole seconds to wait, rounded up, for a rejection.
fn retry_secs(wait: std::time::Duration) -> u16 {
    u16::try_from(wait.as_secs_f64().ceil() as u64).unwrap_or(u16::MAX).max(1)
}
