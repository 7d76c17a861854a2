//! The round being recorded: from the first tick a round is played here
//! (or this world first ticks it) to its podium, each coming and going and
//! each input applied, in order, as `arena_shared::replay` records them.
//! Finished rounds wait until the room takes them to the store.

use arena_shared::game::Match;
use arena_shared::protocol::{PlayerId, PlayerInfo, RoundPhase};
use arena_shared::replay::{Change, Recorder, Replay};
use arena_shared::sim::Input;

/// A world's recording of its rounds (off unless asked for).
#[derive(Default)]
pub struct Recording {
    /// Record each round at all.
    pub on: bool,
    /// The round being recorded.
    round: Option<Recorder>,
    /// Rounds recorded and not yet taken.
    finished: Vec<Replay>,
    /// The round being played is not recorded (its recording was cut):
    /// the next one is.
    skipping: bool,
}

impl Recording {
    /// Whether a round should start being recorded: recording, none is
    /// being recorded, and `game` plays one now.
    pub fn wants_to_start(&self, game: &Match) -> bool {
        self.on
            && !self.skipping
            && self.round.is_none()
            && matches!(game.round().phase, RoundPhase::Playing { .. })
    }

    /// Starts recording the round `game` plays now, with `players` in it.
    pub fn start(&mut self, game: &Match, players: Vec<PlayerInfo>, tick_rate: u16) {
        self.round = Some(Recorder::new(game, players, tick_rate));
    }

    /// Notes a coming or going in the round being recorded.
    pub fn note(&mut self, change: Change) {
        if let Some(round) = &mut self.round {
            round.change(change);
        }
    }

    /// Notes an input applied for player `id`.
    pub fn input(&mut self, id: PlayerId, input: Input) {
        if let Some(round) = &mut self.round {
            round.input(id, input);
        }
    }

    /// Notes the end of a tick (a checksum each second).
    pub fn end_tick(&mut self, game: &Match) {
        if let Some(round) = &mut self.round {
            round.end_tick(game);
        }
    }

    /// The round being recorded is over (its podium, or a host's next
    /// round): it waits in [`Recording::take`].
    pub fn finish(&mut self) {
        self.skipping = false;
        if let Some(round) = self.round.take() {
            self.finished.push(round.finish());
        }
    }

    /// Drops the round being recorded (a restored world starts afresh).
    pub fn forget_round(&mut self) {
        self.round = None;
    }

    /// Drops the round being recorded, and records no more of it: the next
    /// round is recorded from its start.
    pub fn cut(&mut self) {
        self.round = None;
        self.skipping = true;
    }

    /// Heap bytes the round being recorded holds (0: none is).
    pub fn held(&self) -> usize {
        self.round.as_ref().map_or(0, Recorder::held_bytes)
    }

    /// The rounds finished since the last call, oldest first.
    pub fn take(&mut self) -> Vec<Replay> {
        std::mem::take(&mut self.finished)
    }
}
