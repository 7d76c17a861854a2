//! Recorded rounds, kept in memory up to a byte cap (`--replay-memory-mb`;
//! the oldest go first) and, with `--replay-dir`, written to disk as
//! `<id>.replay`. Each has an unguessable id (128 random bits): a private
//! room's rounds are listed nowhere and reachable only by that id; public
//! rooms' rounds are listed by `GET /api/replays`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use arena_shared::protocol::{ReplayId, replay_id_hex};
use arena_shared::replay::Replay;
use bytes::Bytes;

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

struct Kept {
    info: ReplayInfo,
    private: bool,
    bytes: Bytes,
}

/// The kept rounds, newest last.
pub struct ReplayStore {
    kept: Mutex<(VecDeque<Arc<Kept>>, usize)>,
    cap_bytes: usize,
    dir: Option<PathBuf>,
}

impl ReplayStore {
    pub fn new(cap_bytes: usize, dir: Option<PathBuf>) -> Self {
        ReplayStore { kept: Mutex::new((VecDeque::new(), 0)), cap_bytes, dir }
    }

    /// Whether rounds are kept at all (`--replay-memory-mb` above 0).
    pub fn keeps(&self) -> bool {
        self.cap_bytes > 0
    }

    /// Encodes and keeps a round of room `room` under `id` (from
    /// [`new_id`]; deflating a round takes a few milliseconds: call it off
    /// the tick); returns its id as its URLs spell it, or `None` if the
    /// store keeps nothing.
    pub fn keep(&self, id: ReplayId, room: &str, private: bool, replay: &Replay) -> Option<String> {
        if !self.keeps() {
            return None;
        }
        let bytes = Bytes::from(replay.encode());
        if bytes.len() > self.cap_bytes {
            tracing::warn!(room, bytes = bytes.len(), "a recorded round is larger than --replay-memory-mb");
            return None;
        }
        let id = replay_id_hex(&id);
        let mut players: Vec<u16> = replay.players.iter().map(|p| p.id).collect();
        players.extend(replay.changes.iter().filter_map(|(_, change)| match change {
            arena_shared::replay::Change::Spawn(info) => Some(info.id),
            arena_shared::replay::Change::Remove(_) => None,
        }));
        players.sort_unstable();
        players.dedup();
        let ended_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let info = ReplayInfo {
            id: id.clone(),
            room: room.to_owned(),
            ended_at,
            players: players.len(),
            secs: replay.secs(),
            bytes: bytes.len(),
        };
        if let Some(dir) = &self.dir
            && let Err(e) = std::fs::write(dir.join(format!("{id}.replay")), &bytes)
        {
            tracing::warn!(dir = %dir.display(), "could not write a replay: {e}");
        }
        let mut kept = self.lock();
        let (rounds, used) = &mut *kept;
        while *used + bytes.len() > self.cap_bytes
            && let Some(oldest) = rounds.pop_front()
        {
            *used -= oldest.bytes.len();
        }
        *used += bytes.len();
        tracing::info!(room, replay = %id, bytes = bytes.len(), secs = info.secs, "round recorded");
        rounds.push_back(Arc::new(Kept { info, private, bytes }));
        Some(id)
    }

    /// Public rooms' kept rounds, newest first.
    pub fn public(&self) -> Vec<ReplayInfo> {
        self.lock().0.iter().rev().filter(|k| !k.private).map(|k| k.info.clone()).collect()
    }

    /// One recording, by id.
    pub fn get(&self, id: &str) -> Option<Bytes> {
        self.lock().0.iter().find(|k| k.info.id == id).map(|k| k.bytes.clone())
    }

    /// Bytes kept now.
    pub fn used(&self) -> usize {
        self.lock().1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Arc<Kept>>, usize)> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
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

    #[test]
    fn rounds_are_kept_to_the_byte_cap_and_private_ones_are_not_listed() {
        let size = round(30).encode().len();
        let store = ReplayStore::new(size * 2, None);
        let first = store.keep(new_id().expect("random"), "aaaa", false, &round(30)).expect("kept");
        let hidden = store.keep(new_id().expect("random"), "bbbb", true, &round(30)).expect("kept");
        assert_eq!(first.len(), 32);
        assert_eq!(
            store.public().iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            std::slice::from_ref(&first)
        );
        assert!(store.get(&hidden).is_some(), "reachable by its id");
        let third = store.keep(new_id().expect("random"), "aaaa", false, &round(30)).expect("kept");
        assert!(store.get(&first).is_none(), "the oldest made room");
        assert!(store.get(&third).is_some() && store.used() <= size * 2);
        assert_eq!(Replay::decode(&store.get(&third).expect("kept")), Ok(round(30)));
        assert!(
            ReplayStore::new(0, None).keep([1; 16], "aaaa", false, &round(30)).is_none(),
            "a cap of 0 keeps none"
        );
    }
}
