//! Many rooms in one process: [`Rooms`] answers a `Hello`'s room request
//! (quick-join, a new private room, or a code from an invite link) and
//! opens rooms as needed.
//!
//! Each room is its own task owning its own world; nothing is shared between
//! rooms but the [`crate::directory`], which holds handles, not game state.
//!
//! - [`cluster`]: the same in cluster mode, where a room may live on
//!   another node (a `Moved` sends the player there), rooms are leased,
//!   adopted from Redis after a drain or a crash, and handed over.

mod cluster;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arena_shared::protocol::{Moved, RejectReason, Rejection, ResumeToken, RoomRequest};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Cluster;
use crate::config::ServerConfig;
use crate::directory::{InMemoryDirectory, RoomDirectory, RoomEntry};
use crate::fence::Fence;
use crate::limits::{AddressCaps, AddressKey, PerAddressBudget, Slot};
use crate::metrics::{Metrics, RoomStats};
use crate::replays::ReplayStore;
use crate::room::{self, JoinError, Membership, RoomSpec};
use crate::steward::RoomLease;
use crate::world::{Newcomer, WorldSnapshot};

/// Characters of a room code: lower-case letters and digits without the
/// look-alikes (0/o, 1/l/i), so a code read aloud or retyped survives.
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// 10 characters of 31: about 49.5 bits, too many to guess a live room.
const CODE_LEN: usize = 10;
/// Wrong room codes one address may try at once (a mistyped link or two,
/// a few expired ones)...
const CODE_MISS_BURST: f64 = 10.0;
/// ...and then per second: one every 5 s. With 64 rooms open among 31^10
/// codes, one address finds one in about two million years.
const CODE_MISSES_PER_SEC: f64 = 0.2;

/// Opens rooms and seats players in them.
pub struct Rooms {
    directory: Arc<dyn RoomDirectory>,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    /// Every room task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// Serialises opening rooms, so two joiners cannot both pass the cap.
    opening: tokio::sync::Mutex<()>,
    /// Wrong codes each address has tried: code guessing is slow.
    code_misses: PerAddressBudget,
    /// Private rooms each address has open: one address cannot take them all.
    private_rooms: Arc<AddressCaps>,
    /// This node and the cluster it is in (itself alone without `--redis-url`).
    cluster: Arc<Cluster>,
    /// The rounds its rooms recorded.
    replays: Arc<ReplayStore>,
}

/// Why a `Hello` got no seat here.
#[derive(Debug)]
pub enum Refusal {
    /// Refused, with a reason the client is told.
    Rejected(Rejection),
    /// The room (or, with an empty code, the request) is served by another
    /// node of the cluster.
    Moved(Moved),
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Refusal::Rejected(rejection)
    }
}

/// A public room's line in `GET /api/rooms`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublicRoom {
    pub code: String,
    pub players: u64,
    pub watchers: u64,
    pub room_size: u16,
}

impl Rooms {
    pub fn new(
        config: Arc<ServerConfig>,
        metrics: Arc<Metrics>,
        cluster: Arc<Cluster>,
        cancel: CancellationToken,
    ) -> Self {
        let cap = config.replay_memory_mb as usize * (1 << 20);
        Rooms {
            cluster,
            replays: Arc::new(ReplayStore::new(
                cap,
                config.replay_dir.clone().map(|dir| (dir, config.replay_dir_mb as usize * (1 << 20))),
            )),
            directory: Arc::new(InMemoryDirectory::default()),
            metrics,
            cancel,
            tasks: TaskTracker::new(),
            opening: tokio::sync::Mutex::new(()),
            code_misses: PerAddressBudget::new(CODE_MISSES_PER_SEC, CODE_MISS_BURST, config.counting()),
            private_rooms: AddressCaps::new(
                usize::from(config.max_rooms),
                config.max_rooms_per_ip as usize,
                config.counting(),
            ),
            config,
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
    ) -> Result<Membership, Refusal> {
        newcomer.from = Some(AddressKey::new(peer, self.config.counting().v6_prefix));
        if self.cancel.is_cancelled() {
            return Err(Rejection::new(RejectReason::ShuttingDown).into());
        }
        // A draining node opens nothing: new rooms go to another node.
        if self.cluster.is_draining()
            && request.code().is_none()
            && let Some(successor) = self.cluster.successor()
        {
            return Err(Refusal::Moved(Moved { url: successor.url, room: String::new() }));
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
                    let max = u16::try_from(self.config.max_rooms_per_ip).unwrap_or(u16::MAX);
                    Rejection::new(RejectReason::TooManyRooms { max })
                })?;
                let entry = self.open(Some(owner)).await?;
                entry.handle.join(newcomer, None).await.map_err(|e| self.closed_or(e).into())
            }
            RoomRequest::Quick => {
                // A room may fill or close between the look and the join: look again.
                for _ in 0..4 {
                    let entry = match self.fullest_public_with_space() {
                        // Another node's room may be fuller: send the player there.
                        Some(entry) => match self.fuller_elsewhere(entry.stats.players.load(Relaxed)).await {
                            Some(moved) => return Err(Refusal::Moved(moved)),
                            None => entry,
                        },
                        // No room to fill anywhere: a new one, on a quieter node if there is one.
                        None => match self.fuller_elsewhere(0).await.or_else(|| self.quieter_node()) {
                            Some(moved) => return Err(Refusal::Moved(moved)),
                            None => self.open_public().await?,
                        },
                    };
                    match entry.handle.join(newcomer.clone(), None).await {
                        Ok(membership) => return Ok(membership),
                        Err(JoinError::Closed) => {}
                        Err(JoinError::Rejected(r))
                            if matches!(r.reason, RejectReason::ServerFull { .. }) => {}
                        Err(JoinError::Rejected(r)) => return Err(r.into()),
                    }
                }
                Err(Rejection::new(RejectReason::ServerFull { max_players: self.config.max_players }).into())
            }
        }
    }

    /// The room under `code`, here or (in a cluster) on another node; a
    /// code that names none is a guess, and one address's guesses are slow.
    async fn by_code(&self, code: &str, peer: IpAddr) -> Result<RoomEntry, Refusal> {
        // Checked before the look-up: an address out of tries learns nothing.
        if let Err(over) = self.code_misses.check(peer) {
            self.metrics.guesses_limited_total.inc();
            return Err(Rejection::new(RejectReason::TooManyGuesses {
                retry_after_secs: retry_secs(over.retry_after),
            })
            .into());
        }
        if let Some(entry) = self.directory.get(code) {
            return Ok(entry);
        }
        match self.locate(code).await? {
            Some(entry) => Ok(entry),
            None => {
                self.metrics.room_code_misses_total.inc();
                // Over budget only if another miss raced this one; it is refused next time.
                let _ = self.code_misses.spend(peer);
                Err(Rejection::new(RejectReason::RoomNotFound).into())
            }
        }
    }

    fn closed_or(&self, error: JoinError) -> Rejection {
        match error {
            JoinError::Rejected(rejection) => rejection,
            JoinError::Closed => Rejection::new(RejectReason::ShuttingDown),
        }
    }

    /// The public room with the most players that still has a seat.
    fn fullest_public_with_space(&self) -> Option<RoomEntry> {
        let size = u64::from(self.config.max_players);
        self.directory
            .list()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| !entry.private && entry.stats.players.load(Relaxed) < size)
            .max_by_key(|entry| entry.stats.players.load(Relaxed))
    }

    /// A public room with space, opening one if there is none. Two
    /// quick-joiners arriving together share the room the first opens.
    async fn open_public(&self) -> Result<RoomEntry, Rejection> {
        let _one_at_a_time = self.opening.lock().await;
        match self.fullest_public_with_space() {
            Some(entry) => Ok(entry),
            None => self.open_locked(None).await,
        }
    }

    /// Opens a private room held by `owner` (its address's place under
    /// `--max-rooms-per-ip`) under a fresh code.
    async fn open(&self, owner: Option<Slot>) -> Result<RoomEntry, Rejection> {
        let _one_at_a_time = self.opening.lock().await;
        self.open_locked(owner).await
    }

    /// Opens a room under a fresh code: private if it has an `owner`, which
    /// it holds until it closes. Refused past `--max-rooms`, and a private
    /// one past the rooms that are not kept for public play.
    async fn open_locked(&self, owner: Option<Slot>) -> Result<RoomEntry, Rejection> {
        let private = owner.is_some();
        let rooms = self.directory.list();
        if rooms.len() >= usize::from(self.config.max_rooms) {
            return Err(Rejection::new(RejectReason::RoomsFull { max_rooms: self.config.max_rooms }));
        }
        let max_private = self.config.max_private_rooms();
        if private && rooms.iter().filter(|(_, room)| room.private).count() >= usize::from(max_private) {
            return Err(Rejection::new(RejectReason::RoomsFull { max_rooms: max_private }));
        }
        // Only the opening lock's holders insert: a code free now is still
        // free below. (A collision is about 1 in 10^15; in cluster mode the
        // lease makes sure no other node has it.)
        let (code, lease) = loop {
            let code = new_code().map_err(|e| {
                tracing::error!("no randomness for a room code: {e}");
                Rejection::new(RejectReason::ShuttingDown)
            })?;
            if self.directory.get(&code).is_some() {
                continue;
            }
            match self.lease_new(&code).await? {
                Some(lease) => break (code, lease),
                None => continue,
            }
        };
        self.spawn_room(NewRoom { code, private, owner, lease, restore: None })
    }

    /// Starts a room and lists it in the directory (under the opening lock).
    fn spawn_room(&self, new: NewRoom) -> Result<RoomEntry, Rejection> {
        let NewRoom { code, private, owner, lease, restore } = new;
        let stats = Arc::new(RoomStats::default());
        let directory = self.directory.clone();
        let closing = code.clone();
        let on_close = Box::new(move || directory.remove(&closing));
        let fence = lease.as_ref().map_or_else(|| Arc::new(Fence::always()), |lease| lease.fence.clone());
        let replays = self.replays.clone();
        let spec = RoomSpec {
            code: code.clone(),
            private,
            stats: stats.clone(),
            owner,
            on_close,
            fence,
            restore,
            replays,
        };
        let handle =
            room::spawn(spec, self.config.clone(), self.metrics.clone(), self.cancel.clone(), &self.tasks);
        let entry = RoomEntry { handle, private, stats, lease };
        if !self.directory.insert(code, entry.clone()) {
            tracing::error!("a fresh room code was taken under the opening lock");
            return Err(Rejection::new(RejectReason::ShuttingDown));
        }
        self.steward(&entry);
        Ok(entry)
    }

    /// This node's open rooms and their players, for the cluster.
    pub fn figures(&self) -> (u64, u64) {
        let list = self.directory.list();
        let players = list.iter().map(|(_, room)| room.stats.players.load(Relaxed)).sum();
        (list.len() as u64, players)
    }

    /// Open rooms and their figures, by code.
    pub fn stats(&self) -> Vec<(String, Arc<RoomStats>)> {
        self.directory.list().into_iter().map(|(code, entry)| (code, entry.stats)).collect()
    }

    /// The room this node runs under `code`, if any.
    pub fn get(&self, code: &str) -> Option<RoomEntry> {
        self.directory.get(code)
    }

    /// Open rooms, by code: their privacy and figures, for operators.
    pub fn list(&self) -> Vec<(String, RoomEntry)> {
        self.directory.list()
    }

    /// Public rooms, fullest first, for `GET /api/rooms`.
    pub fn public(&self) -> Vec<PublicRoom> {
        let mut rooms: Vec<PublicRoom> = self
            .directory
            .list()
            .into_iter()
            .filter(|(_, entry)| !entry.private)
            .map(|(code, entry)| PublicRoom {
                code,
                players: entry.stats.players.load(Relaxed),
                watchers: entry.stats.watchers.load(Relaxed),
                room_size: self.config.max_players,
            })
            .collect();
        rooms.sort_by(|a, b| b.players.cmp(&a.players).then_with(|| a.code.cmp(&b.code)));
        rooms
    }

    /// The rounds this node's rooms recorded.
    pub fn replays(&self) -> &ReplayStore {
        &self.replays
    }

    /// Waits for every room task to stop (after `cancel`).
    pub async fn stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// A room to start: fresh, or carrying a saved one on.
struct NewRoom {
    code: String,
    private: bool,
    /// A private room's opener's place under `--max-rooms-per-ip`.
    owner: Option<Slot>,
    /// Its lease, in cluster mode.
    lease: Option<Arc<RoomLease>>,
    restore: Option<WorldSnapshot>,
}

/// A room that closed while asked is a room not found.
fn not_found_if_closed(error: JoinError) -> Refusal {
    match error {
        JoinError::Rejected(rejection) => rejection.into(),
        JoinError::Closed => Rejection::new(RejectReason::RoomNotFound).into(),
    }
}

/// Whole seconds to wait, rounded up, for a rejection.
fn retry_secs(wait: std::time::Duration) -> u16 {
    u16::try_from(wait.as_secs_f64().ceil() as u64).unwrap_or(u16::MAX).max(1)
}

/// A fresh room code from the OS's randomness.
fn new_code() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; CODE_LEN];
    getrandom::fill(&mut bytes)?;
    // 256 % 31 != 0 leaves a slight bias toward the first letters; fine for codes.
    Ok(bytes.iter().map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_url_safe_distinct_and_free_of_look_alikes() {
        let codes: std::collections::HashSet<String> =
            (0..1000).map(|_| new_code().expect("randomness")).collect();
        assert_eq!(codes.len(), 1000, "codes should not repeat");
        for code in &codes {
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'o', '1', 'l', 'i']), "no look-alikes: {code}");
        }
    }
}
