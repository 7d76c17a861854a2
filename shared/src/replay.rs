//! A round recorded as what determines it, and played back by re-running
//! the rules: the game as the round started, then for each tick the
//! players who came and went and every input applied, in the order the
//! server applied them. [`Match`] is integer maths driven only by `spawn`,
//! `remove`, `apply_input` and `advance`, so the same steps give the same
//! game, bit for bit; a checksum of the game every second says so.
//!
//! On the wire a recording is columns (the inputs' counts per player per
//! tick, then each input's change of stick from that player's last one,
//! then the dash bits), bincode-encoded and deflated: a 20-player,
//! 3-minute round's 216,000 inputs take well under 200 KB.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};
use crate::game::{GameEvent, Match};
use crate::protocol::{PROTOCOL_VERSION, PlayerId, PlayerInfo};
use crate::sim::Input;

/// The largest recording a decoder inflates: 8 MiB (a round is far smaller).
pub const MAX_REPLAY_BYTES: usize = 8 << 20;

/// A player coming or going between two ticks.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Spawn(PlayerInfo),
    Remove(PlayerId),
}

/// One player's inputs, as columns that deflate well: the stick's x as
/// its change from the previous input's; the stick's y as its difference
/// from the y that would put the stick on its rim (on the side the previous
/// y was), which a full stick (keys, or a pad pushed all the way) hits
/// nearly always; the dash bits.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct InputStream {
    pub id: PlayerId,
    pub dx: Vec<u8>,
    pub dy: Vec<u8>,
    pub dash: Vec<u8>,
}

impl InputStream {
    pub fn len(&self) -> usize {
        self.dx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dx.is_empty()
    }
}

/// The y that puts a stick with this `x` on its rim, on the side of `last_y`.
fn rim_y(x: i8, last_y: i8) -> i8 {
    let full = crate::sim::STICK_MAX;
    let y = ((full * full - i32::from(x) * i32::from(x)).max(0) as u32).isqrt() as i8;
    if last_y < 0 { -y } else { y }
}

/// Input `input` after `last` (x, y) as its columns' bytes.
fn encode_input(input: Input, last: (i8, i8)) -> (u8, u8, u8) {
    let dx = input.x.wrapping_sub(last.0);
    let dy = input.y.wrapping_sub(rim_y(input.x, last.1));
    (dx as u8, dy as u8, u8::from(input.dash))
}

/// The input whose columns' bytes these are, after `last`.
fn decode_input((dx, dy, dash): (u8, u8, u8), last: (i8, i8)) -> Input {
    let x = last.0.wrapping_add(dx as i8);
    let y = rim_y(x, last.1).wrapping_add(dy as i8);
    Input { x, y, dash: dash != 0 }
}

/// One recorded round.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Replay {
    /// The protocol (and so the rules) it was recorded under.
    pub version: u16,
    pub tick_rate: u16,
    /// The game as the recording starts.
    pub start: Match,
    /// Who was there at the start (names and colours for drawing).
    pub players: Vec<PlayerInfo>,
    /// Ticks recorded.
    pub ticks: u32,
    /// Comings and goings, each before the inputs of tick `.0` (counted
    /// from 0 at the start).
    pub changes: Vec<(u32, Change)>,
    /// For each tick, for each fighter in the game then (by id), how many
    /// inputs it applied.
    pub counts: Vec<u8>,
    /// Each player's inputs in the order it applied them, by id.
    pub streams: Vec<InputStream>,
    /// [`checksum`] of the game after every [`Replay::checksum_every`]th tick.
    pub checksums: Vec<u64>,
}

impl Replay {
    /// Ticks between two checksums: one a second.
    pub fn checksum_every(&self) -> u32 {
        u32::from(self.tick_rate).max(1)
    }

    /// Inputs recorded, everyone's.
    pub fn inputs(&self) -> usize {
        self.streams.iter().map(InputStream::len).sum()
    }

    /// Seconds of play.
    pub fn secs(&self) -> f64 {
        f64::from(self.ticks) / f64::from(self.tick_rate.max(1))
    }

    /// The recording on the wire: bincode, deflated.
    pub fn encode(&self) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec(&codec::encode_state(self), 9)
    }

    /// A recording from [`Replay::encode`]'s bytes; bounded however it inflates.
    pub fn decode(bytes: &[u8]) -> Result<Replay, DecodeError> {
        let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(bytes, MAX_REPLAY_BYTES)
            .map_err(|e| DecodeError::Malformed(format!("not a deflated recording ({:?})", e.status)))?;
        codec::decode_state(&raw, MAX_REPLAY_BYTES)
    }
}

/// A stable digest of a game: FNV-1a over its saved form.
pub fn checksum(game: &Match) -> u64 {
    codec::encode_state(game)
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Records a round as the server plays it: call [`Recorder::change`] for
/// each spawn and removal, [`Recorder::input`] for each input applied, and
/// [`Recorder::end_tick`] after each `advance`.
#[derive(Debug, Clone)]
pub struct Recorder {
    replay: Replay,
    /// This tick's inputs so far, by player.
    this_tick: BTreeMap<PlayerId, u8>,
    /// Each player's last stick.
    last: BTreeMap<PlayerId, (i8, i8)>,
    /// Each player's inputs so far.
    streams: BTreeMap<PlayerId, Columns>,
    /// For each tick, each fighter's count of inputs (the replay's `counts`).
    counts: Column,
    /// Heap bytes held besides the vectors [`Recorder::held_bytes`] reads
    /// as it goes: the start, the players' columns, the deflated chunks.
    held: usize,
}

/// Bytes a column being recorded keeps raw before it deflates them: a
/// player's last few seconds of inputs (256 at 60 a second). A round being
/// recorded is then held at about what it will be stored as, not 3 bytes
/// an input and 1 a player a tick: about 0.7 KB a player after 15 s
/// instead of 3 (this was most of what a player cost the server after its
/// connection).
const RAW_BYTES: usize = 256;

/// What a deflated chunk costs besides its bytes: its place in the
/// column's list (with the list's spare room as it doubles), and the
/// allocator's rounding of a small block.
const CHUNK_OVERHEAD_BYTES: usize = 30;
/// What a player's columns cost before any chunk: three raw tails of
/// [`RAW_BYTES`] and three chunk lists, with the player's entries in the
/// recorder's maps. Checked with jemalloc's own count
/// (`server/tests/replay_memory.rs`).
const PLAYER_BYTES: usize = 3 * (RAW_BYTES + 48) + 288;

/// One column of a recording in progress: deflated chunks of
/// [`RAW_BYTES`] bytes each, then the raw tail.
#[derive(Debug, Clone, Default)]
struct Column {
    chunks: Vec<Box<[u8]>>,
    tail: Vec<u8>,
}

impl Column {
    /// Adds a byte; returns the heap bytes a chunk it closed now holds.
    fn push(&mut self, byte: u8) -> usize {
        self.tail.push(byte);
        if self.tail.len() < RAW_BYTES {
            return 0;
        }
        let chunk = miniz_oxide::deflate::compress_to_vec(&self.tail, 6).into_boxed_slice();
        let held = chunk.len() + CHUNK_OVERHEAD_BYTES;
        self.chunks.push(chunk);
        self.tail.clear();
        held
    }

    /// The column's bytes, whole.
    fn finish(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.chunks.len() * RAW_BYTES + self.tail.len());
        for deflated in &self.chunks {
            // Deflated here, from RAW_BYTES bytes: it inflates, to as many.
            let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, RAW_BYTES)
                .expect("a chunk this recorder deflated inflates");
            bytes.extend_from_slice(&raw);
        }
        bytes.extend_from_slice(&self.tail);
        bytes
    }
}

/// One player's columns while its round is recorded: the stick's x and y
/// and the dash bits, as [`InputStream`] has them.
#[derive(Debug, Clone, Default)]
struct Columns([Column; 3]);

impl Columns {
    /// Adds an input's bytes; returns the heap bytes chunks it closed hold.
    fn push(&mut self, (dx, dy, dash): (u8, u8, u8)) -> usize {
        let [x, y, d] = &mut self.0;
        x.push(dx) + y.push(dy) + d.push(dash)
    }

    /// Player `id`'s stream, whole.
    fn finish(self, id: PlayerId) -> InputStream {
        let [dx, dy, dash] = self.0.map(Column::finish);
        InputStream { id, dx, dy, dash }
    }
}

impl Recorder {
    /// Starts from `game` as it is, with `players` in it.
    pub fn new(game: &Match, players: Vec<PlayerInfo>, tick_rate: u16) -> Self {
        let replay = Replay {
            version: PROTOCOL_VERSION,
            tick_rate,
            start: game.clone(),
            players,
            ticks: 0,
            changes: Vec::new(),
            counts: Vec::new(),
            streams: Vec::new(),
            checksums: Vec::new(),
        };
        // The start: the game saved (its maps hold about twice its
        // encoding, and a node or two besides), and the players' names.
        let held = 2 * codec::encode_state(game).len()
            + 1280
            + replay.players.iter().map(|p| std::mem::size_of::<PlayerInfo>() + p.name.len()).sum::<usize>()
            + RAW_BYTES;
        Recorder {
            replay,
            this_tick: BTreeMap::new(),
            last: BTreeMap::new(),
            streams: BTreeMap::new(),
            counts: Column::default(),
            held,
        }
    }

    pub fn change(&mut self, change: Change) {
        match &change {
            Change::Remove(id) => {
                self.last.remove(id);
            }
            Change::Spawn(info) => self.held += info.name.len(),
        }
        self.replay.changes.push((self.replay.ticks, change));
    }

    /// Player `id` applied `input` (in the order the server applies them).
    pub fn input(&mut self, id: PlayerId, input: Input) {
        *self.this_tick.entry(id).or_default() += 1;
        let last = self.last.entry(id).or_default();
        let columns = self.streams.entry(id).or_insert_with(|| {
            self.held += PLAYER_BYTES;
            Columns::default()
        });
        self.held += columns.push(encode_input(input, *last));
        *last = (input.x, input.y);
    }

    /// What the recording holds in memory now, in heap bytes, counted as
    /// it grows (a round of 20 wandering players grows about 55 KB a
    /// minute): what a server bounds the rounds it records by.
    pub fn held_bytes(&self) -> usize {
        use std::mem::size_of;
        self.held
            + self.replay.changes.capacity() * size_of::<(u32, Change)>()
            + self.replay.checksums.capacity() * size_of::<u64>()
    }

    /// The tick is over: `game` is the game after its `advance`.
    pub fn end_tick(&mut self, game: &Match) {
        for (id, _) in game.fighters() {
            self.held += self.counts.push(self.this_tick.get(&id).copied().unwrap_or(0));
        }
        self.this_tick.clear();
        self.replay.ticks += 1;
        if self.replay.ticks.is_multiple_of(self.replay.checksum_every()) {
            self.replay.checksums.push(checksum(game));
        }
    }

    /// Ticks recorded so far.
    pub fn ticks(&self) -> u32 {
        self.replay.ticks
    }

    pub fn finish(mut self) -> Replay {
        self.replay.streams = self.streams.into_iter().map(|(id, columns)| columns.finish(id)).collect();
        self.replay.counts = self.counts.finish();
        self.replay
    }
}

/// Why a replay could not be played to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("recorded under protocol v{0}, this is v{PROTOCOL_VERSION}")]
    Version(u16),
    #[error("the re-run game differs from the recording at tick {tick}")]
    Mismatch { tick: u32 },
    #[error("the recording is cut short at tick {tick}")]
    Truncated { tick: u32 },
}

/// Plays a replay back, tick by tick, checking every checksum. Cheap to
/// clone (the recording is shared): a player keeps clones as keyframes to
/// seek back to.
#[derive(Debug, Clone)]
pub struct Playback {
    replay: Arc<Replay>,
    game: Match,
    tick: u32,
    next_change: usize,
    next_count: usize,
    /// Each player's stream (by its place in the replay) and the next
    /// input in it.
    cursors: BTreeMap<PlayerId, (usize, usize)>,
    last: BTreeMap<PlayerId, (i8, i8)>,
    /// Names of everyone in the game now.
    players: BTreeMap<PlayerId, PlayerInfo>,
    /// Who came and went in the last step, and what the rules decided.
    changed: Vec<Change>,
    events: Vec<GameEvent>,
}

impl Playback {
    pub fn new(replay: impl Into<Arc<Replay>>) -> Result<Self, ReplayError> {
        let replay: Arc<Replay> = replay.into();
        if replay.version != PROTOCOL_VERSION {
            return Err(ReplayError::Version(replay.version));
        }
        Ok(Playback {
            game: replay.start.clone(),
            tick: 0,
            next_change: 0,
            next_count: 0,
            cursors: replay.streams.iter().enumerate().map(|(at, s)| (s.id, (at, 0))).collect(),
            last: BTreeMap::new(),
            players: replay.players.iter().map(|p| (p.id, p.clone())).collect(),
            changed: Vec::new(),
            events: Vec::new(),
            replay,
        })
    }

    /// The recording played.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// Who came and went in the last step, and what the rules decided in
    /// it (knockouts, the round's end).
    pub fn last_step(&self) -> (&[Change], &[GameEvent]) {
        (&self.changed, &self.events)
    }

    /// The game now.
    pub fn game(&self) -> &Match {
        &self.game
    }

    /// Ticks played so far.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    pub fn players(&self) -> &BTreeMap<PlayerId, PlayerInfo> {
        &self.players
    }

    pub fn is_done(&self) -> bool {
        self.tick >= self.replay.ticks
    }

    /// Plays one tick; `Ok(false)` once the recording is over. A checksum
    /// due after it that differs is an error: the game is no longer the one
    /// recorded.
    pub fn step(&mut self) -> Result<bool, ReplayError> {
        if self.is_done() {
            return Ok(false);
        }
        let replay = Arc::clone(&self.replay);
        self.changed.clear();
        while let Some((_, change)) = replay.changes.get(self.next_change).filter(|(at, _)| *at == self.tick)
        {
            self.changed.push(change.clone());
            match change {
                Change::Spawn(info) => {
                    self.game.spawn(info.id);
                    self.players.insert(info.id, info.clone());
                }
                Change::Remove(id) => {
                    self.game.remove(*id);
                    self.players.remove(id);
                    self.last.remove(id);
                }
            }
            self.next_change += 1;
        }
        let truncated = ReplayError::Truncated { tick: self.tick };
        let ids: Vec<PlayerId> = self.game.fighters().map(|(id, _)| id).collect();
        for id in ids {
            let count = *replay.counts.get(self.next_count).ok_or(truncated.clone())?;
            self.next_count += 1;
            for _ in 0..count {
                let (stream, next) = self.cursors.get_mut(&id).ok_or(truncated.clone())?;
                let stream = &replay.streams[*stream];
                let (Some(&dx), Some(&dy), Some(&dash)) =
                    (stream.dx.get(*next), stream.dy.get(*next), stream.dash.get(*next))
                else {
                    return Err(truncated);
                };
                *next += 1;
                let last = self.last.entry(id).or_default();
                let input = decode_input((dx, dy, dash), *last);
                *last = (input.x, input.y);
                self.game.apply_input(id, input);
            }
        }
        self.events = self.game.advance();
        self.tick += 1;
        let every = replay.checksum_every();
        if self.tick.is_multiple_of(every) {
            let recorded = replay.checksums.get((self.tick / every - 1) as usize);
            if recorded != Some(&checksum(&self.game)) {
                return Err(ReplayError::Mismatch { tick: self.tick });
            }
        }
        Ok(true)
    }

    /// Plays to the end; returns how many checksums matched.
    pub fn verify(mut self) -> Result<usize, ReplayError> {
        while self.step()? {}
        Ok(self.replay.checksums.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::MatchSettings;

    fn info(id: PlayerId) -> PlayerInfo {
        PlayerInfo { id, name: format!("p{id}"), color: 0, score: 0, bot: false }
    }

    /// A server-like loop over `secs` with `players` steering in circles
    /// (one leaves and another comes half way), recorded.
    fn record(players: u16, secs: u32) -> (Replay, Match) {
        let mut game = Match::new(MatchSettings::new(30, 600, 10, 32));
        for id in 1..=players {
            game.spawn(id);
        }
        let mut recorder = Recorder::new(&game, (1..=players).map(info).collect(), 30);
        for tick in 0..secs * 30 {
            if tick == secs * 15 {
                game.remove(1);
                recorder.change(Change::Remove(1));
                game.spawn(99);
                recorder.change(Change::Spawn(info(99)));
            }
            let ids: Vec<PlayerId> = game.fighters().map(|(id, _)| id).collect();
            for id in ids {
                for step in 0..2 {
                    let angle = (tick * 2 + step) as f32 / 40.0 + f32::from(id);
                    let input = Input::stick((angle.cos() * 127.0) as i8, (angle.sin() * 127.0) as i8)
                        .with_dash((tick + u32::from(id)).is_multiple_of(97));
                    game.apply_input(id, input);
                    recorder.input(id, input);
                }
            }
            game.advance();
            recorder.end_tick(&game);
        }
        (recorder.finish(), game)
    }

    #[test]
    fn columns_kept_deflated_give_back_every_input_in_order() {
        for n in [0, 1, RAW_BYTES - 1, RAW_BYTES, RAW_BYTES + 1, 3 * RAW_BYTES, 1000] {
            let inputs: Vec<(u8, u8, u8)> = (0..n)
                .map(|i| ((i * 7 % 256) as u8, (i / 3 % 5) as u8, u8::from(i.is_multiple_of(97))))
                .collect();
            let mut columns = Columns::default();
            for &input in &inputs {
                columns.push(input);
            }
            assert_eq!(columns.0[0].chunks.len(), n / RAW_BYTES, "a chunk deflated every {RAW_BYTES} inputs");
            let stream = columns.finish(7);
            assert_eq!(stream.id, 7);
            assert_eq!(stream.dx, inputs.iter().map(|i| i.0).collect::<Vec<_>>(), "{n} inputs' x");
            assert_eq!(stream.dy, inputs.iter().map(|i| i.1).collect::<Vec<_>>(), "{n} inputs' y");
            assert_eq!(stream.dash, inputs.iter().map(|i| i.2).collect::<Vec<_>>(), "{n} inputs' dash");
        }
    }

    #[test]
    fn a_recording_round_trips_and_replays_to_the_same_game() {
        let (replay, game) = record(6, 20);
        let bytes = replay.encode();
        let decoded = Replay::decode(&bytes).expect("decodes");
        assert_eq!(decoded, replay);
        let mut playback = Playback::new(decoded.clone()).expect("same version");
        while playback.step().expect("every checksum matches") {}
        assert_eq!(playback.game(), &game, "bit for bit");
        assert!(playback.players().contains_key(&99) && !playback.players().contains_key(&1));
        assert_eq!(Playback::new(decoded.clone()).expect("same version").verify(), Ok(20));
    }

    #[test]
    fn inputs_encode_exactly_and_a_full_stick_costs_little() {
        let mut last = (0, 0);
        for (x, y, dash) in [
            (127, 0, false),
            (90, -90, true),
            (-127, 0, false),
            (0, 0, false),
            (-128, 127, true),
            (13, -77, false),
        ] {
            let input = Input { x, y, dash };
            let bytes = encode_input(input, last);
            assert_eq!(decode_input(bytes, last), input);
            last = (x, y);
        }
        // On the rim, only x's change costs anything.
        assert_eq!(encode_input(Input::stick(89, -90), (90, -90)).1, 0);
        assert_eq!(encode_input(Input::stick(120, 41), (127, 0)).1, 0);
    }

    #[test]
    fn a_tampered_recording_is_caught_at_the_next_checksum() {
        let (mut replay, _) = record(4, 5);
        // Every player's inputs a little different for a moment, in the
        // third second (one of them standing will feel it).
        for stream in &mut replay.streams {
            for at in 130..134 {
                stream.dx[at] = stream.dx[at].wrapping_add(60);
            }
        }
        assert_eq!(
            Playback::new(replay).expect("same version").verify(),
            Err(ReplayError::Mismatch { tick: 90 })
        );
        let (mut cut, _) = record(4, 5);
        cut.streams[0].dx.truncate(100);
        assert!(matches!(Playback::new(cut).expect("v").verify(), Err(ReplayError::Truncated { .. })));
        let (mut old, _) = record(1, 1);
        old.version -= 1;
        assert!(matches!(Playback::new(old), Err(ReplayError::Version(_))));
        assert!(Replay::decode(b"not deflate").is_err());
    }
}
