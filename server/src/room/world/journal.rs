//! The world's journal (cluster mode's input log): everything that changed
//! the game or the seats since the last checkpoint, in the order it
//! happened, cut into one [`Record`] per tick. A checkpoint and the records
//! after it are the room: [`rerun`] plays them again with the shared rules
//! and checks each tick's checksum, so a node that restores a room after a
//! crash carries it on from the last tick the dead node logged, not from
//! its last checkpoint.
//!
//! What is journaled is what a tick cannot work out by itself: who sat
//! down (with the resume token a person will come back with, or as a fill
//! bot), who left, each input applied (a bot's too: its brain is not
//! replayed), a host's new rules and next round, and the host's controls
//! when they changed. Seats held and resumed, connections, acks and news
//! are not: a restored room holds every seat for a resume anyway.

use arena_shared::codec::{self, DecodeError};
use arena_shared::game::Match;
use arena_shared::protocol::PlayerId;
use arena_shared::replay::checksum;
use arena_shared::sim::Input;

use super::hosting::HostControls;
use super::seats::SavedSeat;

/// One thing the world did, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Entry {
    /// A seat was given: a person (with its token) or a fill bot.
    Seat(SavedSeat),
    /// A seat was freed (a leave, a kick, a hold that ran out).
    Leave(PlayerId),
    /// An input was applied for this player.
    Input(PlayerId, Input),
    /// A host set the next rounds' rules.
    Rules { round_secs: u32, points_to_win: u32 },
    /// A host started the next round now.
    NextRound,
    /// The game advanced a tick; the game's checksum after it.
    Tick { checksum: u64 },
    /// The host's controls as they are now (they changed).
    Hosting(HostControls),
}

/// What one tick of the world added to the journal: the entries since the
/// previous record, the tick's `Tick` among them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The game's tick once this record is applied.
    pub tick: u32,
    pub entries: Vec<Entry>,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode_state(self)
    }

    /// A record as [`Record::encode`] wrote it (at most `max` bytes).
    pub fn decode(bytes: &[u8], max: usize) -> Result<Record, DecodeError> {
        codec::decode_state(bytes, max)
    }
}

/// The entries since the last record, while journaling is on.
#[derive(Debug, Default)]
pub struct Journal {
    on: bool,
    entries: Vec<Entry>,
    /// The host's controls the journal last said (or the checkpoint had).
    hosting: Option<HostControls>,
}

impl Journal {
    pub fn start(&mut self) {
        self.on = true;
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn note(&mut self, entry: Entry) {
        if self.on {
            self.entries.push(entry);
        }
    }

    /// Notes the game's checksum after a tick.
    pub fn tick(&mut self, game: &Match) {
        if self.on {
            self.entries.push(Entry::Tick { checksum: checksum(game) });
        }
    }

    /// What happened since the last record, as the record of `game`'s
    /// tick; the host's controls with it if they changed. `None` when off.
    pub fn take(&mut self, game: &Match, hosting: &HostControls) -> Option<Record> {
        if !self.on {
            return None;
        }
        if self.hosting.as_ref() != Some(hosting) {
            self.entries.push(Entry::Hosting(hosting.clone()));
            self.hosting = Some(hosting.clone());
        }
        Some(Record { tick: game.tick(), entries: std::mem::take(&mut self.entries) })
    }

    /// A checkpoint holds everything so far: the journal starts again
    /// after it.
    pub fn restart(&mut self, hosting: &HostControls) {
        self.entries.clear();
        self.hosting = Some(hosting.clone());
    }
}

/// Why a journal could not be played to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RerunError {
    #[error("the log skips from tick {after} to tick {next}")]
    Gap { after: u32, next: u32 },
    #[error("the re-run game differs from the logged one at tick {tick}")]
    Mismatch { tick: u32 },
    #[error("the record of tick {tick} does not advance the game exactly once")]
    Malformed { tick: u32 },
}

/// What re-running a journal must do beside the game: seats and the
/// host's controls.
pub trait Beside {
    fn seat(&mut self, seat: SavedSeat);
    fn leave(&mut self, id: PlayerId);
    fn hosting(&mut self, controls: HostControls);
}

/// Nothing beside the game (a dry run that only checks).
impl Beside for () {
    fn seat(&mut self, _: SavedSeat) {}
    fn leave(&mut self, _: PlayerId) {}
    fn hosting(&mut self, _: HostControls) {}
}

/// How far a journal re-ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// Records read: those applied and those the game already had.
    pub read: usize,
    /// Ticks re-run.
    pub ticks: u32,
    /// Why it stopped before the end.
    pub stopped: Option<RerunError>,
}

/// Plays `records` on `game` (which stands where their checkpoint left
/// it), telling `beside` the seats and controls. Records the game already
/// has (a duplicate, or one from before the checkpoint) are skipped. Stops
/// at the first record that does not follow or whose checksum differs,
/// leaving that record half applied: check on a copy first
/// ([`World::rerun`](super::World::rerun) does).
pub fn rerun(game: &mut Match, beside: &mut impl Beside, records: &[Record]) -> Rerun {
    let mut done = Rerun { read: 0, ticks: 0, stopped: None };
    for record in records {
        if record.tick.wrapping_sub(game.tick()) as i32 <= 0 {
            done.read += 1;
            continue;
        }
        if record.tick != game.tick().wrapping_add(1) {
            done.stopped = Some(RerunError::Gap { after: game.tick(), next: record.tick });
            return done;
        }
        if record.entries.iter().filter(|e| matches!(e, Entry::Tick { .. })).count() != 1 {
            done.stopped = Some(RerunError::Malformed { tick: record.tick });
            return done;
        }
        for entry in &record.entries {
            match entry {
                Entry::Seat(seat) => {
                    game.spawn(seat.id());
                    beside.seat(seat.clone());
                }
                Entry::Leave(id) => {
                    game.remove(*id);
                    beside.leave(*id);
                }
                Entry::Input(id, input) => {
                    game.apply_input(*id, *input);
                }
                Entry::Rules { round_secs, points_to_win } => {
                    game.set_next_rules(*round_secs, *points_to_win)
                }
                Entry::NextRound => {
                    game.next_round_now();
                }
                Entry::Tick { checksum: logged } => {
                    game.advance();
                    if checksum(game) != *logged {
                        done.stopped = Some(RerunError::Mismatch { tick: game.tick() });
                        return done;
                    }
                }
                Entry::Hosting(controls) => beside.hosting(controls.clone()),
            }
        }
        done.read += 1;
        done.ticks += 1;
    }
    done
}
