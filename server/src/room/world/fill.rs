//! Fill bots (`--fill-bots`): a public room with fewer people than asked
//! is topped up with bots that play the brawler inside the tick (no
//! sockets), marked as bots, leaving as people come.

use arena_shared::brawler::{Brawler, Sight};
use arena_shared::game::Match;
use arena_shared::protocol::{Life, PlayerId};
use arena_shared::sim::Input;

/// How many bots a room wants, and the seeds of those it made.
#[derive(Debug, Default)]
pub struct FillBots {
    /// People and bots together make this many (0: no bots).
    pub target: usize,
    /// Bots made so far: each new one's number and steering seed.
    made: u64,
}

impl FillBots {
    /// How many bots `people` people want beside them: none with nobody to
    /// play with.
    pub fn wanted(&self, people: usize) -> usize {
        if people == 0 { 0 } else { self.target.saturating_sub(people) }
    }

    /// The next bot's number and its steering.
    pub fn make(&mut self) -> (u64, Brawler) {
        self.made += 1;
        (self.made, Brawler::new(self.made))
    }
}

/// Everyone standing on the platform (what a bot may chase), by id.
pub fn standing(game: &Match) -> Vec<(PlayerId, (f32, f32))> {
    game.fighters()
        .filter(|(_, f)| f.life == Life::Alive)
        .map(|(id, f)| (id, f.body.pos.to_units()))
        .collect()
}

/// Bot `id`'s next input: the brawler's choice on `standing`.
pub fn bot_input(
    brain: &mut Brawler,
    game: &Match,
    id: PlayerId,
    standing: &[(PlayerId, (f32, f32))],
) -> Input {
    let Some(fighter) = game.fighter(id) else { return Input::default() };
    let targets: Vec<(f32, f32)> =
        standing.iter().filter(|(other, _)| *other != id).map(|&(_, at)| at).collect();
    brain.steer(Sight {
        me: fighter.body.pos.to_units(),
        targets: &targets,
        platform_radius: game.settings().platform.radius as f32,
        dash_ready: fighter.body.dash_cooldown == 0,
    })
}
