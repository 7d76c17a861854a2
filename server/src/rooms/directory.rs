//! Where rooms are found by code: the [`RoomDirectory`] trait and its
//! in-memory implementation. The directory holds handles and figures, never
//! game state; [`crate::rooms`] fills it and each room's `on_close` empties it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::room::handle::RoomHandle;
use crate::telemetry::metrics::RoomStats;

/// One open room as the directory lists it.
#[derive(Debug, Clone)]
pub struct RoomEntry {
    pub handle: RoomHandle,
    pub private: bool,
    pub stats: Arc<RoomStats>,
}

/// Where this node's rooms are found by code. In cluster mode, what other
/// nodes run is found through the rooms' leases in Redis
/// ([`crate::cluster::lease`]); this directory holds only what runs here.
pub trait RoomDirectory: Send + Sync {
    fn get(&self, code: &str) -> Option<RoomEntry>;
    /// Adds a room; `false` if the code is taken.
    fn insert(&self, code: String, entry: RoomEntry) -> bool;
    fn remove(&self, code: &str);
    /// Every open room, by code.
    fn list(&self) -> Vec<(String, RoomEntry)>;
}

#[derive(Debug, Default)]
pub struct InMemoryDirectory {
    rooms: Mutex<HashMap<String, RoomEntry>>,
}

impl InMemoryDirectory {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomEntry>> {
        // Plain map operations: nothing panics while the lock is held.
        self.rooms.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RoomDirectory for InMemoryDirectory {
    fn get(&self, code: &str) -> Option<RoomEntry> {
        self.lock().get(code).cloned()
    }

    fn insert(&self, code: String, entry: RoomEntry) -> bool {
        let mut rooms = self.lock();
        if rooms.contains_key(&code) {
            return false;
        }
        rooms.insert(code, entry);
        true
    }

    fn remove(&self, code: &str) {
        self.lock().remove(code);
    }

    fn list(&self) -> Vec<(String, RoomEntry)> {
        let mut rooms: Vec<_> =
            self.lock().iter().map(|(code, entry)| (code.clone(), entry.clone())).collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        rooms
    }
}
