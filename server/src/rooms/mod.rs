//! The rooms of this process: [`Rooms`] opens them (under one lock, to
//! the caps), finds them by code in its [`directory`], and says what they
//! hold. It knows nothing of other nodes: answering a `Hello` is
//! [`crate::lobby`]'s, and placing rooms in a cluster
//! [`crate::cluster::placement`]'s, both of which call it.
//!
//! Each room is its own task owning its own world; nothing is shared between
//! rooms but the directory, which holds handles, not game state.

pub mod directory;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arena_shared::protocol::{Moved, RejectReason, Rejection};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::GameConfig;
use crate::limits::Slot;
use crate::room::fence::Fence;
use crate::room::log::RoomLog;
use crate::room::replays::ReplayStore;
use crate::room::task::{self, Restore, RoomSpec};
use crate::rooms::directory::{InMemoryDirectory, RoomDirectory, RoomEntry};
use crate::telemetry::metrics::{Metrics, RoomStats};

/// Characters of a room code: lower-case letters and digits without the
/// look-alikes (0/o, 1/l/i), so a code read aloud or retyped survives.
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// 10 characters of 31: about 49.5 bits, too many to guess a live room.
const CODE_LEN: usize = 10;

/// Opens rooms and finds them.
pub struct Rooms {
    directory: Arc<dyn RoomDirectory>,
    game: Arc<GameConfig>,
    /// Ticks of stale frames after which a room drops a client.
    slow_client_ticks: u32,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    /// Every room task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// Serialises opening rooms, so two joiners cannot both pass the cap.
    opening: tokio::sync::Mutex<()>,
    /// The rounds its rooms recorded.
    replays: Arc<ReplayStore>,
}

/// Why a `Hello` got no seat here.
#[derive(Debug)]
pub enum NoSeat {
    /// Refused, with a reason the client is told.
    Rejected(Rejection),
    /// The room (or, with an empty code, the request) is served by another
    /// node of the cluster.
    Moved(Moved),
}

impl From<Rejection> for NoSeat {
    fn from(rejection: Rejection) -> Self {
        NoSeat::Rejected(rejection)
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

/// A room to start: fresh, or carrying a saved one on.
pub struct NewRoom {
    pub code: String,
    pub private: bool,
    /// A private room's opener's place under `--max-rooms-per-ip`.
    pub owner: Option<Slot>,
    /// Its right to run: always, or its lease's (cluster mode).
    pub fence: Arc<Fence>,
    pub restore: Option<Restore>,
    /// Its input log (cluster mode with `--input-log`).
    pub log: Option<RoomLog>,
}

impl Rooms {
    /// Rooms playing `game`, each dropping a client whose frames go stale
    /// for `slow_client_ticks`.
    pub fn new(
        game: GameConfig,
        slow_client_ticks: u32,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> Self {
        // Half for the rounds kept, half for the rounds being recorded.
        let half = game.replay_memory_mb as usize * (1 << 19);
        Rooms {
            replays: Arc::new(
                ReplayStore::new(
                    half,
                    game.replay_dir.clone().map(|dir| (dir, game.replay_dir_mb as usize * (1 << 20))),
                )
                .recording_in(half),
            ),
            directory: Arc::new(InMemoryDirectory::default()),
            metrics,
            cancel,
            tasks: TaskTracker::new(),
            opening: tokio::sync::Mutex::new(()),
            game: Arc::new(game),
            slow_client_ticks,
        }
    }

    /// The opening lock: rooms start one at a time, so the caps hold (it
    /// is held for the check and the start, never across a network call).
    pub async fn opening(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.opening.lock().await
    }

    /// Whether another room may open (call under [`Rooms::opening`]):
    /// refused past `--max-rooms`, and a private one past the rooms that
    /// are not kept for public play.
    pub fn has_space_for(&self, private: bool) -> Result<(), Rejection> {
        let rooms = self.directory.list();
        if rooms.len() >= usize::from(self.game.max_rooms) {
            return Err(Rejection::new(RejectReason::RoomsFull { max_rooms: self.game.max_rooms }));
        }
        let max_private = self.game.max_private_rooms();
        if private && rooms.iter().filter(|(_, room)| room.private).count() >= usize::from(max_private) {
            return Err(Rejection::new(RejectReason::RoomsFull { max_rooms: max_private }));
        }
        Ok(())
    }

    /// A code no room here has now (a random one: two drawn at once
    /// collide about 1 in 10^15, and then the directory refuses the second).
    pub fn fresh_code(&self) -> Result<String, Rejection> {
        loop {
            let code = new_code().map_err(|e| {
                tracing::error!("no randomness for a room code: {e}");
                Rejection::new(RejectReason::ShuttingDown)
            })?;
            if self.directory.get(&code).is_none() {
                return Ok(code);
            }
        }
    }

    /// Starts a room and lists it in the directory (a new one under the
    /// opening lock, a restored one under its code's look-up lock).
    pub fn spawn(&self, new: NewRoom) -> Result<RoomEntry, Rejection> {
        let NewRoom { code, private, owner, fence, restore, log } = new;
        // Checked before the task starts: a room whose code is taken must
        // not run (its close would take the other's entry with it).
        if self.directory.get(&code).is_some() {
            tracing::error!(room = %code, "a room with this code runs here already");
            return Err(Rejection::new(RejectReason::ShuttingDown));
        }
        let stats = Arc::new(RoomStats::default());
        let directory = self.directory.clone();
        let closing = code.clone();
        let on_close = Box::new(move || directory.remove(&closing));
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
            log,
        };
        let handle = task::spawn(
            spec,
            self.game.clone(),
            self.slow_client_ticks,
            self.metrics.clone(),
            self.cancel.clone(),
            &self.tasks,
        );
        let entry = RoomEntry { handle, private, stats };
        if !self.directory.insert(code.clone(), entry.clone()) {
            tracing::error!(room = %code, "a room took this code while this one started");
        }
        Ok(entry)
    }

    /// The public room with the most players that still has a seat.
    pub fn fullest_public_with_space(&self) -> Option<RoomEntry> {
        let size = u64::from(self.game.max_players);
        self.directory
            .list()
            .into_iter()
            .map(|(_, entry)| entry)
            .filter(|entry| !entry.private && entry.stats.players.load(Relaxed) < size)
            .max_by_key(|entry| entry.stats.players.load(Relaxed))
    }

    /// This node's open rooms and their players, for the cluster.
    pub fn figures(&self) -> (u64, u64) {
        let list = self.directory.list();
        let players = list.iter().map(|(_, room)| room.stats.players.load(Relaxed)).sum();
        (list.len() as u64, players)
    }

    /// Players in this node's rooms now.
    pub fn players(&self) -> u64 {
        self.figures().1
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
                room_size: self.game.max_players,
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
