//! Recorded rounds: kept in memory up to `--replay-memory-mb` and, with
//! `--replay-dir`, on disk up to `--replay-dir-mb`, each counted as what
//! keeping it really costs (its bytes and the bookkeeping beside them in
//! memory; whole 4 KiB blocks on disk). Each has an unguessable id (128
//! random bits): a private room's rounds are listed nowhere and reachable
//! only by that id; public rooms' rounds are listed by `GET /api/replays`.
//!
//! Both places keep public and private rooms' rounds on separate shelves
//! of half the budget each, and no room takes more than an eighth of its
//! shelf, so a host who ends rounds at will pushes out only its own older
//! rounds, never another room's or a public one. A look-up by id is a hash
//! look-up; nothing scans the kept rounds under the lock.
//!
//! The rounds being recorded hold memory too (about 3 KB a player a
//! minute): each room's is granted from a pool of its own
//! ([`ReplayStore::recording_in`]) as it grows, and a round the pool cannot
//! take any more of stops being recorded ([`RecordingGrant::cover`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arena_shared::protocol::{ReplayId, replay_id_hex};
use arena_shared::replay::{Change, Replay};
use bytes::Bytes;

/// What keeping one round costs in memory besides its bytes: the kept
/// round itself behind its `Arc`, its room's name, its place in the id
/// map and in its shelf's two orders, and the allocator's rounding of
/// each. Measured with jemalloc's own count (`server/tests/replay_memory.rs`
/// keeps 20,000 one-tick rounds and checks the heap grows by no more than
/// the budget).
pub const ROUND_OVERHEAD_BYTES: usize = 384;
/// A file takes whole blocks on disk.
const DISK_BLOCK_BYTES: usize = 4096;
/// A room keeps at most this share of its shelf (public or private).
const ROOM_SHARE_DIVISOR: usize = 8;
/// Public rounds `GET /api/replays` lists at most (the newest).
pub const MAX_LISTED: usize = 100;
/// Rounds being deflated and written at once; past it a finished round is
/// not kept (a room ends a round at most every few seconds).
const MAX_PENDING: usize = 16;
/// A recording's file name's ending.
const EXTENSION: &str = "replay";
/// A round being recorded takes memory from the pool in steps of this
/// (a room of 20 needs a step every 15 s or so).
const GRANT_STEP_BYTES: usize = 16 << 10;

/// A kept round's line in `GET /api/replays`.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct ReplayInfo {
    pub id: String,
    pub room: String,
    /// Unix seconds when the round ended.
    pub ended_at: u64,
    /// Everyone who played in it (people and bots).
    pub players: usize,
    pub secs: f64,
    pub bytes: usize,
}

/// One round in memory.
struct Kept {
    id: ReplayId,
    room: Arc<str>,
    ended_at: u64,
    players: u16,
    ticks: u32,
    tick_rate: u16,
    bytes: Bytes,
}

impl Kept {
    fn info(&self) -> ReplayInfo {
        ReplayInfo {
            id: replay_id_hex(&self.id),
            room: self.room.to_string(),
            ended_at: self.ended_at,
            players: usize::from(self.players),
            secs: f64::from(self.ticks) / f64::from(self.tick_rate.max(1)),
            bytes: self.bytes.len(),
        }
    }
}

/// Which shelf a round sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Private,
}

impl Kind {
    fn of(private: bool) -> Self {
        if private { Kind::Private } else { Kind::Public }
    }

    fn folder(self) -> &'static str {
        match self {
            Kind::Public => "public",
            Kind::Private => "private",
        }
    }
}

/// The order rounds go in from one budget: oldest first, and a room past
/// its share loses its own oldest first. Holds ids and costs only.
#[derive(Debug)]
struct Shelf {
    cap: usize,
    room_share: usize,
    used: usize,
    next_serial: u64,
    /// Every round on the shelf by age: serial → (id, room, cost); no room
    /// for a round found on disk at start.
    by_age: BTreeMap<u64, (ReplayId, Option<Arc<str>>, usize)>,
    /// Each room's rounds (serials, oldest first) and the bytes they cost.
    rooms: HashMap<Arc<str>, (VecDeque<u64>, usize)>,
}

impl Shelf {
    fn new(cap: usize) -> Self {
        Shelf {
            cap,
            room_share: cap / ROOM_SHARE_DIVISOR,
            used: 0,
            next_serial: 0,
            by_age: BTreeMap::new(),
            rooms: HashMap::new(),
        }
    }

    /// Puts a round of `room` (none: found on disk, of no known room)
    /// costing `cost` on the shelf, and returns the ids that made room for
    /// it; `None` (and nothing moves) if it is larger than the whole shelf.
    fn put(&mut self, id: ReplayId, room: Option<&Arc<str>>, cost: usize) -> Option<Vec<ReplayId>> {
        if cost > self.cap {
            return None;
        }
        let mut gone = Vec::new();
        // The room's own oldest first, while the room is past its share
        // (its newest round stays, even alone past the share).
        while self.room(room).is_some_and(|(_, used)| used + cost > self.room_share) {
            let Some(&serial) = self.room(room).and_then(|(serials, _)| serials.front()) else { break };
            gone.extend(self.remove(serial));
        }
        while self.used + cost > self.cap {
            let Some((&serial, _)) = self.by_age.first_key_value() else { break };
            gone.extend(self.remove(serial));
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.by_age.insert(serial, (id, room.cloned(), cost));
        if let Some(room) = room {
            let (serials, used) = self.rooms.entry(room.clone()).or_default();
            serials.push_back(serial);
            *used += cost;
        }
        self.used += cost;
        Some(gone)
    }

    /// `room`'s rounds and what they cost.
    fn room(&self, room: Option<&Arc<str>>) -> Option<&(VecDeque<u64>, usize)> {
        self.rooms.get(room?)
    }

    /// Takes round `serial` off the shelf; its id.
    fn remove(&mut self, serial: u64) -> Option<ReplayId> {
        let (id, room, cost) = self.by_age.remove(&serial)?;
        self.used -= cost;
        if let Some(room) = room
            && let Some((serials, used)) = self.rooms.get_mut(&room)
        {
            // Rounds leave a room oldest first, so this is its front.
            if serials.front() == Some(&serial) {
                serials.pop_front();
            } else {
                serials.retain(|&s| s != serial);
            }
            *used -= cost;
            if serials.is_empty() {
                self.rooms.remove(&room);
            }
        }
        Some(id)
    }

    fn len(&self) -> usize {
        self.by_age.len()
    }
}

/// A public and a private shelf, half the budget each.
#[derive(Debug)]
struct Shelves {
    public: Shelf,
    private: Shelf,
}

impl Shelves {
    fn new(cap: usize) -> Self {
        Shelves { public: Shelf::new(cap / 2), private: Shelf::new(cap / 2) }
    }

    fn get(&mut self, kind: Kind) -> &mut Shelf {
        match kind {
            Kind::Public => &mut self.public,
            Kind::Private => &mut self.private,
        }
    }

    fn used(&self) -> usize {
        self.public.used + self.private.used
    }
}

/// The rounds in memory: the shelves' order and the rounds by id.
struct Memory {
    shelves: Shelves,
    by_id: HashMap<ReplayId, Arc<Kept>>,
}

/// The rounds on disk (`--replay-dir`): `public/<id>.replay` and
/// `private/<id>.replay`, indexed so a look-up needs no directory scan.
struct Disk {
    dir: PathBuf,
    shelves: Shelves,
    by_id: HashMap<ReplayId, Kind>,
}

/// What a round costs on disk: its bytes in whole blocks.
fn disk_cost(len: usize) -> usize {
    len.div_ceil(DISK_BLOCK_BYTES).max(1) * DISK_BLOCK_BYTES
}

impl Disk {
    /// Indexes what an earlier run left in `dir` (oldest first, by file
    /// time), deleting the oldest past `cap`.
    fn open(dir: PathBuf, cap: usize) -> Self {
        let mut disk = Disk { dir, shelves: Shelves::new(cap), by_id: HashMap::new() };
        for kind in [Kind::Public, Kind::Private] {
            let folder = disk.dir.join(kind.folder());
            if let Err(e) = std::fs::create_dir_all(&folder) {
                tracing::warn!(dir = %folder.display(), "cannot use the replay folder: {e}");
            }
            let mut found = files_in(&folder);
            found.sort_by_key(|file| file.2);
            for (id, len, _) in found {
                for old in disk.add(kind, id, None, len).unwrap_or_else(|| vec![disk.path(kind, &id)]) {
                    delete(&old);
                }
            }
        }
        disk
    }

    fn path(&self, kind: Kind, id: &ReplayId) -> PathBuf {
        self.dir.join(kind.folder()).join(format!("{}.{EXTENSION}", replay_id_hex(id)))
    }

    /// Books a round of `len` bytes; returns the paths of the rounds that
    /// made room (to delete), or `None` if it does not fit at all.
    fn add(&mut self, kind: Kind, id: ReplayId, room: Option<&Arc<str>>, len: usize) -> Option<Vec<PathBuf>> {
        let gone = self.shelves.get(kind).put(id, room, disk_cost(len))?;
        self.by_id.insert(id, kind);
        Some(
            gone.into_iter()
                .map(|old| {
                    self.by_id.remove(&old);
                    self.path(kind, &old)
                })
                .collect(),
        )
    }
}

fn delete(file: &Path) {
    if let Err(e) = std::fs::remove_file(file) {
        tracing::debug!(file = %file.display(), "could not delete an old replay: {e}");
    }
}

/// The `.replay` files in `folder`: (id, bytes, modified).
fn files_in(folder: &Path) -> Vec<(ReplayId, usize, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let id = parse_id(name.to_str()?.strip_suffix(&format!(".{EXTENSION}"))?)?;
            let meta = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            Some((id, usize::try_from(meta.len()).unwrap_or(usize::MAX), modified))
        })
        .collect()
}

/// A round's id from the 32 hex digits its URLs and files use.
pub fn parse_id(hex: &str) -> Option<ReplayId> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// Where a round asked for by id is.
pub enum Found {
    /// In memory.
    Bytes(Bytes),
    /// Only on disk, here.
    File(PathBuf),
}

/// The kept rounds.
pub struct ReplayStore {
    memory: Mutex<Memory>,
    disk: Option<Mutex<Disk>>,
    cap_bytes: usize,
    /// Rounds handed to [`ReplayStore::keep`] and not yet kept.
    pending: AtomicUsize,
    /// Memory the rounds being recorded may hold, all rooms together, and
    /// what they hold now ([`RecordingGrant`]s).
    recording_cap: usize,
    recording: AtomicUsize,
    /// Rounds that stopped being recorded because the pool was full.
    recordings_cut: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain map operations: nothing panics while the lock is held.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReplayStore {
    /// Keeps up to `cap_bytes` in memory and, with `dir`, up to
    /// `dir_cap_bytes` on disk (indexing what is there already).
    pub fn new(cap_bytes: usize, dir: Option<(PathBuf, usize)>) -> Self {
        ReplayStore {
            memory: Mutex::new(Memory { shelves: Shelves::new(cap_bytes), by_id: HashMap::new() }),
            disk: dir.map(|(dir, cap)| Mutex::new(Disk::open(dir, cap))),
            cap_bytes,
            pending: AtomicUsize::new(0),
            recording_cap: 0,
            recording: AtomicUsize::new(0),
            recordings_cut: AtomicU64::new(0),
        }
    }

    /// Lets the rounds being recorded hold up to `cap_bytes`, all rooms
    /// together (none by default: nothing is recorded).
    pub fn recording_in(mut self, cap_bytes: usize) -> Self {
        self.recording_cap = cap_bytes;
        self
    }

    /// A room's account for the round it records, holding nothing yet.
    pub fn grant(self: &Arc<Self>) -> RecordingGrant {
        RecordingGrant { store: self.clone(), bytes: 0 }
    }

    /// A round stopped being recorded for want of memory.
    pub fn recording_cut(&self) {
        self.recordings_cut.fetch_add(1, Relaxed);
    }

    /// Memory the rounds being recorded hold now, as granted.
    pub fn recording_bytes(&self) -> usize {
        self.recording.load(Relaxed)
    }

    /// Whether rounds are kept at all (`--replay-memory-mb` above 0).
    pub fn keeps(&self) -> bool {
        self.cap_bytes > 0
    }

    /// Takes a place for one round to be kept, or `None` while
    /// [`MAX_PENDING`] are being deflated already (the round is not kept).
    pub fn reserve(self: &Arc<Self>) -> Option<Pending> {
        if self.pending.fetch_add(1, Relaxed) >= MAX_PENDING {
            self.pending.fetch_sub(1, Relaxed);
            return None;
        }
        Some(Pending(self.clone()))
    }

    /// Rounds waiting to be kept.
    pub fn pending(&self) -> usize {
        self.pending.load(Relaxed)
    }

    /// Encodes and keeps a round of room `room` under `id` (from
    /// [`new_id`]; deflating a round takes a few milliseconds: call it off
    /// the tick); returns its id as its URLs spell it, or `None` if the
    /// store keeps nothing or the round is larger than its shelf.
    pub fn keep(&self, id: ReplayId, room: &str, private: bool, replay: &Replay) -> Option<String> {
        if !self.keeps() {
            return None;
        }
        // An exact allocation: `Bytes` keeps a vector's spare capacity too.
        let bytes = Bytes::from(replay.encode().into_boxed_slice());
        let room: Arc<str> = Arc::from(room);
        let kind = Kind::of(private);
        let kept = Arc::new(Kept {
            id,
            room: room.clone(),
            ended_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            players: u16::try_from(players_in(replay)).unwrap_or(u16::MAX),
            ticks: replay.ticks,
            tick_rate: replay.tick_rate,
            bytes: bytes.clone(),
        });
        let hex = replay_id_hex(&id);
        self.write(kind, id, &room, &bytes);
        let mut memory = lock(&self.memory);
        let Some(gone) = memory.shelves.get(kind).put(id, Some(&room), bytes.len() + ROUND_OVERHEAD_BYTES)
        else {
            tracing::warn!(%room, bytes = bytes.len(), "a recorded round is larger than its share of --replay-memory-mb");
            return None;
        };
        for old in gone {
            memory.by_id.remove(&old);
        }
        memory.by_id.insert(id, kept);
        tracing::info!(%room, replay = %hex, bytes = bytes.len(), "round recorded");
        Some(hex)
    }

    /// Writes the round to disk (with `--replay-dir`) and deletes what made
    /// room for it.
    fn write(&self, kind: Kind, id: ReplayId, room: &Arc<str>, bytes: &[u8]) {
        let Some(disk) = &self.disk else { return };
        let (path, gone) = {
            let mut disk = lock(disk);
            let Some(gone) = disk.add(kind, id, Some(room), bytes.len()) else { return };
            (disk.path(kind, &id), gone)
        };
        for old in gone {
            delete(&old);
        }
        if let Err(e) = std::fs::write(&path, bytes) {
            tracing::warn!(file = %path.display(), "could not write a replay: {e}");
        }
    }

    /// Public rooms' kept rounds, newest first, at most [`MAX_LISTED`].
    pub fn public(&self) -> Vec<ReplayInfo> {
        let memory = lock(&self.memory);
        let newest = memory.shelves.public.by_age.values().rev().take(MAX_LISTED);
        newest.filter_map(|(id, _, _)| memory.by_id.get(id)).map(|kept| kept.info()).collect()
    }

    /// One recording, by id: from memory, or where it is on disk.
    pub fn get(&self, id: &ReplayId) -> Option<Found> {
        if let Some(kept) = lock(&self.memory).by_id.get(id) {
            return Some(Found::Bytes(kept.bytes.clone()));
        }
        let disk = lock(self.disk.as_ref()?);
        let kind = *disk.by_id.get(id)?;
        Some(Found::File(disk.path(kind, id)))
    }

    /// Bytes kept in memory now, as counted against the cap.
    pub fn used(&self) -> usize {
        lock(&self.memory).shelves.used()
    }

    /// Rounds kept in memory now.
    pub fn rounds(&self) -> usize {
        let memory = lock(&self.memory);
        memory.shelves.public.len() + memory.shelves.private.len()
    }

    /// Bytes and files on disk now, as counted against `--replay-dir-mb`.
    pub fn on_disk(&self) -> (usize, usize) {
        self.disk.as_ref().map_or((0, 0), |disk| {
            let disk = lock(disk);
            (disk.shelves.used(), disk.by_id.len())
        })
    }

    /// What `/metrics` says of the store.
    pub fn figures(&self) -> crate::telemetry::metrics::ReplayFigures {
        let (file_bytes, files) = self.on_disk();
        crate::telemetry::metrics::ReplayFigures {
            rounds: self.rounds(),
            bytes: self.used(),
            files,
            file_bytes,
            recording_bytes: self.recording_bytes(),
            recordings_cut: self.recordings_cut.load(Relaxed),
        }
    }
}

/// Memory granted to one room's round being recorded, from the store's
/// pool; dropping it gives it all back.
pub struct RecordingGrant {
    store: Arc<ReplayStore>,
    bytes: usize,
}

impl RecordingGrant {
    /// Holds the account at `held` bytes (what the round being recorded
    /// holds now, 0 for none): takes more from the pool in steps when the
    /// round outgrows it, gives back what it no longer needs. `false`: the
    /// pool has not got the room (the account is unchanged): the round
    /// must stop being recorded.
    pub fn cover(&mut self, held: usize) -> bool {
        let store = &self.store;
        if held > self.bytes {
            let more = (held - self.bytes).next_multiple_of(GRANT_STEP_BYTES);
            let taken = store.recording.fetch_update(Relaxed, Relaxed, |used| {
                used.checked_add(more).filter(|&now| now <= store.recording_cap)
            });
            if taken.is_err() {
                return false;
            }
            self.bytes += more;
        } else if self.bytes - held >= GRANT_STEP_BYTES {
            // A round finished (or was dropped): what it held is back.
            let spare = (self.bytes - held) / GRANT_STEP_BYTES * GRANT_STEP_BYTES;
            store.recording.fetch_sub(spare, Relaxed);
            self.bytes -= spare;
        }
        true
    }

    /// Bytes granted now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for RecordingGrant {
    fn drop(&mut self) {
        self.store.recording.fetch_sub(self.bytes, Relaxed);
    }
}

/// A round's place among those being kept; dropping it frees the place.
pub struct Pending(Arc<ReplayStore>);

impl Pending {
    pub fn store(&self) -> &ReplayStore {
        &self.0
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Relaxed);
    }
}

/// Everyone who played in `replay` (people and bots).
fn players_in(replay: &Replay) -> usize {
    let mut players: Vec<u16> = replay.players.iter().map(|p| p.id).collect();
    players.extend(replay.changes.iter().filter_map(|(_, change)| match change {
        Change::Spawn(info) => Some(info.id),
        Change::Remove(_) => None,
    }));
    players.sort_unstable();
    players.dedup();
    players.len()
}

/// A new round's id: 128 bits from the OS's randomness.
pub fn new_id() -> Option<ReplayId> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).ok()?;
    Some(bits)
}

#[cfg(test)]
mod tests {
    use arena_shared::game::{Match, MatchSettings};
    use arena_shared::replay::Recorder;

    use super::*;

    fn round(ticks: u32) -> Replay {
        let mut game = Match::new(MatchSettings::new(30, 60, 5, 8));
        game.spawn(1);
        let mut recorder = Recorder::new(&game, Vec::new(), 30);
        for _ in 0..ticks {
            game.advance();
            recorder.end_tick(&game);
        }
        recorder.finish()
    }

    fn id(n: u16) -> ReplayId {
        let mut id = [7u8; 16];
        id[..2].copy_from_slice(&n.to_be_bytes());
        id
    }

    fn ids(infos: &[ReplayInfo]) -> Vec<String> {
        infos.iter().map(|r| r.id.clone()).collect()
    }

    fn is_kept(store: &ReplayStore, id: &ReplayId) -> bool {
        matches!(store.get(id), Some(Found::Bytes(_)))
    }

    #[test]
    fn rounds_are_kept_to_the_cap_counted_with_their_overhead_and_private_ones_are_not_listed() {
        let cost = round(30).encode().len() + ROUND_OVERHEAD_BYTES;
        // Two rounds a shelf; a room may take all of it.
        let store = ReplayStore::new(cost * 4 + 1, None);
        let first = store.keep(id(1), "aaaa", false, &round(30)).expect("kept");
        store.keep(id(2), "bbbb", true, &round(30)).expect("kept");
        assert_eq!(first, replay_id_hex(&id(1)));
        assert_eq!(ids(&store.public()), std::slice::from_ref(&first), "the private round is not listed");
        assert!(is_kept(&store, &id(2)), "but reachable by its id");
        assert_eq!(store.used(), 2 * cost, "each round counts its bytes and its overhead");
        store.keep(id(3), "cccc", false, &round(30)).expect("kept");
        store.keep(id(4), "dddd", false, &round(30)).expect("kept");
        assert!(!is_kept(&store, &id(1)), "the public shelf's oldest made room");
        assert!(is_kept(&store, &id(2)), "the private shelf is untouched");
        assert!(store.used() <= cost * 4 + 1);
        let Some(Found::Bytes(bytes)) = store.get(&id(4)) else { panic!("kept") };
        assert_eq!(Replay::decode(&bytes), Ok(round(30)));
        assert!(ReplayStore::new(0, None).keep(id(5), "aaaa", false, &round(30)).is_none(), "0 keeps none");
    }

    #[test]
    fn grants_take_from_the_pool_in_steps_to_its_cap_and_give_all_back() {
        let store = Arc::new(ReplayStore::new(0, None).recording_in(3 * GRANT_STEP_BYTES));
        let (mut one, mut two) = (store.grant(), store.grant());
        assert!(one.cover(1));
        assert_eq!((one.bytes(), store.recording_bytes()), (GRANT_STEP_BYTES, GRANT_STEP_BYTES));
        assert!(one.cover(GRANT_STEP_BYTES + 1), "a second step");
        assert!(!two.cover(2 * GRANT_STEP_BYTES), "past the cap: refused");
        assert_eq!((two.bytes(), store.recording_bytes()), (0, 2 * GRANT_STEP_BYTES), "and nothing taken");
        assert!(two.cover(GRANT_STEP_BYTES), "what is left");
        assert!(one.cover(10), "holding less gives back whole steps");
        assert_eq!((one.bytes(), store.recording_bytes()), (GRANT_STEP_BYTES, 2 * GRANT_STEP_BYTES));
        drop(one);
        drop(two);
        assert_eq!(store.recording_bytes(), 0, "dropped grants give all back");
    }

    #[test]
    fn a_room_past_its_share_loses_its_own_oldest_not_another_room_s() {
        let cost = round(1).encode().len() + ROUND_OVERHEAD_BYTES;
        // 32 rounds a shelf: a room's share is 4.
        let store = ReplayStore::new(cost * 64, None);
        for n in 0..4 {
            store.keep(id(n), "public0", false, &round(1)).expect("kept");
            store.keep(id(100 + n), "private0", true, &round(1)).expect("kept");
        }
        for n in 0..1_000 {
            store.keep(id(1_000 + n), "spammer", true, &round(1)).expect("kept");
        }
        assert!((0..4).all(|n| is_kept(&store, &id(n))), "no public round went");
        assert!((0..4).all(|n| is_kept(&store, &id(100 + n))), "no other private room's round went");
        let spammer_kept = (0..1_000).filter(|n| is_kept(&store, &id(1_000 + n))).count();
        assert_eq!(spammer_kept, 4, "the spamming room keeps its share, its newest");
        assert!(is_kept(&store, &id(1_999)));
    }

    #[test]
    fn the_listing_is_the_newest_public_rounds_and_at_most_a_hundred() {
        let cost = round(1).encode().len() + ROUND_OVERHEAD_BYTES;
        let store = ReplayStore::new(cost * 1_000, None);
        for n in 0..150u16 {
            store.keep(id(n), &format!("room{}", n % 50), false, &round(1)).expect("kept");
        }
        let listed = store.public();
        assert_eq!(listed.len(), MAX_LISTED);
        assert_eq!(listed[0].id, replay_id_hex(&id(149)), "newest first");
        assert_eq!(listed[99].id, replay_id_hex(&id(50)));
    }

    #[test]
    fn the_folder_is_kept_to_its_cap_in_blocks_and_indexed_again_after_a_restart() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let cap = 10 * DISK_BLOCK_BYTES;
        let store = ReplayStore::new(1 << 20, Some((dir.path().to_owned(), cap)));
        for n in 0..40 {
            store.keep(id(n), &format!("room{n}"), false, &round(30)).expect("kept");
        }
        let files = std::fs::read_dir(dir.path().join("public")).expect("the public folder").count();
        assert_eq!(store.on_disk(), (5 * DISK_BLOCK_BYTES, 5), "half the cap is the public shelf's");
        assert_eq!(files, 5, "old files are deleted, not only forgotten");
        drop(store);
        // Files written within a clock tick share a time: give them their order.
        for n in 35..40 {
            let path = dir.path().join("public").join(format!("{}.replay", replay_id_hex(&id(n))));
            let file = std::fs::File::options().write(true).open(path).expect("kept");
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + u64::from(n));
            file.set_modified(at).expect("settable");
        }
        let again = ReplayStore::new(1 << 20, Some((dir.path().to_owned(), cap)));
        assert_eq!(again.on_disk(), (5 * DISK_BLOCK_BYTES, 5), "a restart finds them");
        assert!(
            matches!(again.get(&id(39)), Some(Found::File(path)) if path.exists()),
            "an evicted-from-memory round is served from its file"
        );
        assert!(again.get(&id(0)).is_none());
        drop(again);
        let smaller = ReplayStore::new(1 << 20, Some((dir.path().to_owned(), 4 * DISK_BLOCK_BYTES)));
        assert_eq!(smaller.on_disk(), (2 * DISK_BLOCK_BYTES, 2), "a lower cap keeps the newest");
        let files = std::fs::read_dir(dir.path().join("public")).expect("the public folder").count();
        assert_eq!(files, 2, "and deletes the rest");
        assert!(smaller.get(&id(39)).is_some() && smaller.get(&id(37)).is_none());
    }

    #[test]
    fn at_most_sixteen_rounds_wait_to_be_kept_at_once() {
        let store = Arc::new(ReplayStore::new(1 << 20, None));
        let waiting: Vec<Pending> = (0..MAX_PENDING).map(|_| store.reserve().expect("a place")).collect();
        assert!(store.reserve().is_none(), "the seventeenth round is not kept");
        assert_eq!(store.pending(), MAX_PENDING);
        drop(waiting);
        assert_eq!(store.pending(), 0, "each place is given back");
        assert!(store.reserve().is_some());
    }

    #[test]
    fn ids_parse_from_their_hex_only() {
        assert_eq!(parse_id(&replay_id_hex(&id(513))), Some(id(513)));
        assert_eq!(parse_id(&"A".repeat(32)), Some([0xaa; 16]), "either case");
        for bad in ["", "abc", &"g".repeat(32), &"0".repeat(33), "+f00000000000000000000000000000000"] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }
}
