//! The game's rules on top of [`crate::sim`]: knock everyone off.
//!
//! A [`Match`] is one room's game: fighters on a round platform, dashing
//! and bumping; a fighter whose centre leaves the platform falls and is out,
//! credited to whoever touched it last within [`CREDIT_WINDOW_MS`] (a fall
//! with nobody to blame costs a point), and comes back after
//! [`RESPAWN_MS`] at the spawn point farthest from everyone, protected for
//! [`PROTECTION_MS`]. Rounds last `round_ticks`, then a podium shows for
//! `podium_ticks`, then scores reset and everyone respawns.
//!
//! Deterministic and engine-free like `sim`: the server's room runs it,
//! tests drive it tick by tick. Players are kept in id order, the order
//! everything is simulated in.

use std::collections::BTreeMap;

use crate::protocol::{Knockout, Life, PlayerId, PlayerState, RoundInfo, RoundPhase, ServerMsg, Standing};
use crate::sim::{self, Body, INPUT_DT_MICROS, INPUT_RATE_HZ, Input, Platform};

/// From leaving the platform to vanishing (the fall drawn on screen).
pub const FALL_MS: u32 = 600;
/// From leaving the platform to standing on it again.
pub const RESPAWN_MS: u32 = 2000;
/// After a respawn, how long a fighter can neither bump nor be bumped.
pub const PROTECTION_MS: u32 = 1500;
/// A fall is credited to the last fighter who touched the victim this
/// recently; after that it is the victim's own fall.
pub const CREDIT_WINDOW_MS: u32 = 3000;
/// A fighter that sent no input for this long (its socket dropped, or the
/// client stalled) coasts: the tick steps it with a neutral input, so a
/// bump still carries it. Longer than a TCP stall, so a healthy client's
/// prediction never sees a step it did not send.
pub const COAST_AFTER_MS: u32 = 500;

/// A room's game settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MatchSettings {
    pub tick_rate: u16,
    pub round_ticks: u32,
    pub podium_ticks: u32,
    pub platform: Platform,
    /// A round also ends once someone has this many points (0: only the
    /// clock ends it).
    pub points_to_win: u32,
}

impl MatchSettings {
    pub fn new(tick_rate: u16, round_secs: u32, podium_secs: u32, capacity: u16) -> Self {
        let tick_rate = tick_rate.max(1);
        MatchSettings {
            tick_rate,
            round_ticks: (round_secs * u32::from(tick_rate)).max(1),
            podium_ticks: (podium_secs * u32::from(tick_rate)).max(1),
            platform: Platform::for_capacity(capacity),
            points_to_win: 0,
        }
    }

    fn ticks(&self, ms: u32) -> u32 {
        (ms * u32::from(self.tick_rate)).div_ceil(1000)
    }
}

/// One player's place in the game.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fighter {
    pub body: Body,
    pub life: Life,
    /// The tick `life` last changed.
    since: u32,
    /// The tick it left the platform, while falling or out.
    fell_at: u32,
    /// Who touched it last, and when.
    last_touch: Option<(PlayerId, u32)>,
    /// The tick its last input was applied (or it spawned).
    last_input: u32,
    /// This round's points: +1 per knockout given, -1 per fall of its own.
    pub score: i32,
    pub knockouts: u32,
}

impl Fighter {
    /// Whether inputs move it (standing on the platform).
    pub fn can_move(&self) -> bool {
        matches!(self.life, Life::Alive | Life::Protected)
    }
}

/// What a tick decided that players are told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GameEvent {
    KnockedOut(Knockout),
    Round(RoundInfo),
}

/// What players are told of it: the message of the same name.
impl From<GameEvent> for ServerMsg {
    fn from(event: GameEvent) -> Self {
        match event {
            GameEvent::KnockedOut(knockout) => ServerMsg::KnockedOut(knockout),
            GameEvent::Round(round) => ServerMsg::Round(round),
        }
    }
}

/// One room's game. It serializes whole (bodies, lives, scores, the round
/// clock), so a room can be saved and carried on by another process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Match {
    settings: MatchSettings,
    tick: u32,
    fighters: BTreeMap<PlayerId, Fighter>,
    round: RoundInfo,
    /// Round length and points to win for the rounds after this one.
    next_rules: Option<(u32, u32)>,
}

impl Match {
    pub fn new(settings: MatchSettings) -> Self {
        let round = RoundInfo { number: 1, phase: RoundPhase::Playing { ends_at: settings.round_ticks } };
        Match { settings, tick: 0, fighters: BTreeMap::new(), round, next_rules: None }
    }

    pub fn settings(&self) -> &MatchSettings {
        &self.settings
    }

    pub fn tick(&self) -> u32 {
        self.tick
    }

    pub fn round(&self) -> &RoundInfo {
        &self.round
    }

    pub fn fighter(&self, id: PlayerId) -> Option<&Fighter> {
        self.fighters.get(&id)
    }

    pub fn fighters(&self) -> impl Iterator<Item = (PlayerId, &Fighter)> {
        self.fighters.iter().map(|(&id, f)| (id, f))
    }

    pub fn len(&self) -> usize {
        self.fighters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fighters.is_empty()
    }

    /// Every fighter as frames carry it, in id order.
    pub fn states(&self) -> Vec<PlayerState> {
        self.fighters.iter().map(|(&id, f)| PlayerState { id, body: f.body, life: f.life }).collect()
    }

    /// Puts a new fighter on the platform, protected, away from the others.
    pub fn spawn(&mut self, id: PlayerId) {
        let body = Body::at(self.spawn_point());
        let fighter = Fighter {
            body,
            life: Life::Protected,
            since: self.tick,
            fell_at: 0,
            last_touch: None,
            last_input: self.tick,
            score: 0,
            knockouts: 0,
        };
        self.fighters.insert(id, fighter);
    }

    pub fn remove(&mut self, id: PlayerId) -> Option<Fighter> {
        let gone = self.fighters.remove(&id);
        // Nobody is credited for touching a player who has left.
        for fighter in self.fighters.values_mut() {
            if fighter.last_touch.is_some_and(|(by, _)| by == id) {
                fighter.last_touch = None;
            }
        }
        gone
    }

    /// Applies one input step to a fighter that can move; a fighter that is
    /// falling or out ignores it. Returns whether it moved.
    pub fn apply_input(&mut self, id: PlayerId, input: Input) -> bool {
        match self.fighters.get_mut(&id) {
            Some(fighter) if fighter.can_move() => {
                sim::step(&mut fighter.body, input, INPUT_DT_MICROS);
                fighter.last_input = self.tick;
                true
            }
            _ => false,
        }
    }

    /// Advances the game one tick (after this tick's inputs were applied):
    /// bumps, falls, respawns and the round clock.
    pub fn advance(&mut self) -> Vec<GameEvent> {
        self.tick = self.tick.wrapping_add(1);
        let mut events = Vec::new();
        self.slide_falling();
        self.bump_fighters();
        self.knock_out_the_fallen(&mut events);
        self.run_timers();
        self.run_round(&mut events);
        events
    }

    /// Fallen fighters keep their momentum for the fall, and so do
    /// standing ones whose inputs stopped coming.
    fn slide_falling(&mut self) {
        let steps = (INPUT_RATE_HZ / u32::from(self.settings.tick_rate)).max(1);
        let (tick, coast_after) = (self.tick, self.settings.ticks(COAST_AFTER_MS));
        let coasting = |f: &Fighter| {
            f.life == Life::Falling || (f.can_move() && tick.wrapping_sub(f.last_input) > coast_after)
        };
        for fighter in self.fighters.values_mut().filter(|f| coasting(f)) {
            for _ in 0..steps {
                sim::step(&mut fighter.body, Input::default(), INPUT_DT_MICROS);
            }
        }
    }

    fn bump_fighters(&mut self) {
        let solid: Vec<PlayerId> =
            self.fighters.iter().filter(|(_, f)| f.life == Life::Alive).map(|(&id, _)| id).collect();
        let mut bodies: Vec<Body> = solid.iter().map(|id| self.fighters[id].body).collect();
        let mut touches = Vec::new();
        sim::collide(&mut bodies, |i, j| touches.push((solid[i], solid[j])));
        for (id, body) in solid.iter().zip(bodies) {
            if let Some(fighter) = self.fighters.get_mut(id) {
                fighter.body = body;
            }
        }
        let tick = self.tick;
        for (a, b) in touches {
            for (who, by) in [(a, b), (b, a)] {
                if let Some(fighter) = self.fighters.get_mut(&who) {
                    fighter.last_touch = Some((by, tick));
                }
            }
        }
    }

    fn knock_out_the_fallen(&mut self, events: &mut Vec<GameEvent>) {
        let (tick, platform) = (self.tick, self.settings.platform);
        let window = self.settings.ticks(CREDIT_WINDOW_MS);
        let fallen: Vec<PlayerId> = self
            .fighters
            .iter()
            .filter(|(_, f)| f.can_move() && platform.is_off(f.body.pos))
            .map(|(&id, _)| id)
            .collect();
        let scoring = matches!(self.round.phase, RoundPhase::Playing { .. });
        for victim in fallen {
            let Some(fighter) = self.fighters.get_mut(&victim) else { continue };
            let by = fighter
                .last_touch
                .take()
                .filter(|&(_, at)| tick.wrapping_sub(at) <= window)
                .map(|(by, _)| by);
            fighter.life = Life::Falling;
            fighter.since = tick;
            fighter.fell_at = tick;
            if scoring && by.is_none() {
                fighter.score -= 1;
            }
            let victim_score = fighter.score;
            let mut by_score = 0;
            if let Some(by) = by
                && let Some(credited) = self.fighters.get_mut(&by)
            {
                if scoring {
                    credited.score += 1;
                    credited.knockouts += 1;
                }
                by_score = credited.score;
            }
            events.push(GameEvent::KnockedOut(Knockout { victim, victim_score, by, by_score }));
        }
    }

    fn run_timers(&mut self) {
        let tick = self.tick;
        let (fall, respawn, protection) = (
            self.settings.ticks(FALL_MS),
            self.settings.ticks(RESPAWN_MS),
            self.settings.ticks(PROTECTION_MS),
        );
        let ids: Vec<PlayerId> = self.fighters.keys().copied().collect();
        for id in ids {
            let fighter = &self.fighters[&id];
            let (life, since, fell_at) = (fighter.life, fighter.since, fighter.fell_at);
            match life {
                Life::Falling if tick.wrapping_sub(since) >= fall => self.set_life(id, Life::Out),
                Life::Out if tick.wrapping_sub(fell_at) >= respawn => self.respawn(id),
                Life::Protected if tick.wrapping_sub(since) >= protection => self.set_life(id, Life::Alive),
                _ => {}
            }
        }
    }

    fn set_life(&mut self, id: PlayerId, life: Life) {
        if let Some(fighter) = self.fighters.get_mut(&id) {
            fighter.life = life;
            fighter.since = self.tick;
        }
    }

    fn respawn(&mut self, id: PlayerId) {
        let at = self.spawn_point();
        if let Some(fighter) = self.fighters.get_mut(&id) {
            fighter.body = Body::at(at);
            fighter.last_touch = None;
        }
        self.set_life(id, Life::Protected);
    }

    /// The spawn point farthest from everyone on the platform.
    fn spawn_point(&self) -> sim::Vec2q {
        let standing = self.fighters.values().filter(|f| f.can_move()).map(|f| f.body.pos);
        self.settings.platform.spawn_point(standing)
    }

    fn run_round(&mut self, events: &mut Vec<GameEvent>) {
        let tick = self.tick;
        match self.round.phase {
            RoundPhase::Playing { ends_at } if tick >= ends_at || self.someone_won() => {
                let standings = self.standings();
                let next_at = tick + self.settings.podium_ticks;
                self.round.phase = RoundPhase::Podium { standings, next_at };
                events.push(GameEvent::Round(self.round.clone()));
            }
            RoundPhase::Podium { next_at, .. } if tick >= next_at => self.start_round(events),
            _ => {}
        }
    }

    /// Whether someone has the points to win (if the rules say a number).
    fn someone_won(&self) -> bool {
        let points = self.settings.points_to_win;
        let points = i32::try_from(points).unwrap_or(i32::MAX);
        points > 0 && self.fighters.values().any(|f| f.score >= points)
    }

    /// The next round starts now, under the rules set for it: no points,
    /// everyone somewhere new and protected.
    fn start_round(&mut self, events: &mut Vec<GameEvent>) {
        if let Some((round_ticks, points_to_win)) = self.next_rules.take() {
            self.settings.round_ticks = round_ticks.max(1);
            self.settings.points_to_win = points_to_win;
        }
        self.round = RoundInfo {
            number: self.round.number + 1,
            phase: RoundPhase::Playing { ends_at: self.tick + self.settings.round_ticks },
        };
        let ids: Vec<PlayerId> = self.fighters.keys().copied().collect();
        for id in &ids {
            self.fighters.remove(id);
        }
        for id in ids {
            self.spawn(id);
        }
        events.push(GameEvent::Round(self.round.clone()));
    }

    /// Rounds after this one last `round_secs` and end early at
    /// `points_to_win` (0: never); the round being played keeps its rules.
    pub fn set_next_rules(&mut self, round_secs: u32, points_to_win: u32) {
        let round_ticks = round_secs.saturating_mul(u32::from(self.settings.tick_rate));
        self.next_rules = Some((round_ticks, points_to_win));
    }

    /// Ends the round being played (or the podium) and starts the next one
    /// at once; returns the round's news.
    pub fn next_round_now(&mut self) -> Vec<GameEvent> {
        let mut events = Vec::new();
        self.start_round(&mut events);
        events
    }

    /// Everyone by score, then knockouts given, then who joined first.
    pub fn standings(&self) -> Vec<Standing> {
        let mut standings: Vec<Standing> = self.fighters.iter().map(|(&id, f)| standing(id, f)).collect();
        standings.sort_by(better_first);
        standings
    }

    /// Who leads the round: the first of [`Match::standings`], found
    /// without sorting everyone. `None` with nobody in the game.
    pub fn leader(&self) -> Option<PlayerId> {
        self.fighters.iter().map(|(&id, f)| standing(id, f)).min_by(better_first).map(|s| s.id)
    }
}

fn standing(id: PlayerId, fighter: &Fighter) -> Standing {
    Standing { id, score: fighter.score, knockouts: fighter.knockouts }
}

/// The standings' order: more points first, then more knockouts, then the
/// longest in the room (the lower id).
fn better_first(a: &Standing, b: &Standing) -> std::cmp::Ordering {
    b.score.cmp(&a.score).then(b.knockouts.cmp(&a.knockouts)).then(a.id.cmp(&b.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{FIXED_ONE, PLAYER_RADIUS, Vec2q};

    const RATE: u16 = 30;

    fn game() -> Match {
        Match::new(MatchSettings {
            tick_rate: RATE,
            round_ticks: 30 * RATE as u32,
            podium_ticks: 5 * RATE as u32,
            platform: Platform { radius: 400 },
            points_to_win: 0,
        })
    }

    /// A game with fighters 1 and 2, just spawned.
    fn duel() -> Match {
        let mut game = game();
        game.spawn(1);
        game.spawn(2);
        game
    }

    /// Runs `ticks` ticks with every movable fighter getting two neutral
    /// input steps per tick; returns the events.
    fn run(game: &mut Match, ticks: u32) -> Vec<GameEvent> {
        (0..ticks)
            .flat_map(|_| {
                let ids: Vec<PlayerId> = game.fighters().map(|(id, _)| id).collect();
                for id in ids {
                    game.apply_input(id, Input::default());
                    game.apply_input(id, Input::default());
                }
                game.advance()
            })
            .collect()
    }

    fn place(game: &mut Match, id: PlayerId, x: i32, y: i32, vx: i32) {
        let fighter = game.fighters.get_mut(&id).expect("spawned");
        fighter.body = Body { pos: Vec2q::from_units(x, y), vel: Vec2q::from_units(vx, 0), dash_cooldown: 0 };
        fighter.life = Life::Alive;
    }

    fn knockouts(events: &[GameEvent]) -> Vec<Knockout> {
        events.iter().filter_map(|e| if let GameEvent::KnockedOut(k) = e { Some(*k) } else { None }).collect()
    }

    fn ticks(ms: u32) -> u32 {
        (ms * u32::from(RATE)).div_ceil(1000)
    }

    #[test]
    fn newcomers_spawn_protected_apart_then_become_solid() {
        let mut game = duel();
        let (a, b) = (game.fighter(1).expect("1").clone(), game.fighter(2).expect("2").clone());
        assert_eq!((a.life, b.life), (Life::Protected, Life::Protected));
        assert!(a.body.pos.distance(b.body.pos) > i64::from(200 * FIXED_ONE), "spawned apart: {a:?} {b:?}");
        run(&mut game, ticks(PROTECTION_MS));
        assert_eq!(game.fighter(1).expect("1").life, Life::Alive, "protection wears off");
    }

    #[test]
    fn protected_fighters_pass_through_others() {
        let mut game = duel();
        place(&mut game, 1, 0, 0, 0);
        let fighter = game.fighters.get_mut(&2).expect("2");
        fighter.body = Body::at(Vec2q::from_units(10, 0));
        run(&mut game, 1);
        assert_eq!(
            game.fighter(1).expect("1").body.pos,
            Vec2q::from_units(0, 0),
            "no bump with a protected one"
        );
    }

    #[test]
    fn a_dash_off_the_edge_is_credited_to_the_dasher() {
        let mut game = duel();
        // 2 stands near the right edge; 1 dashes into it from the left.
        place(&mut game, 2, 340, 0, 0);
        place(&mut game, 1, 340 - 2 * PLAYER_RADIUS - 10, 0, 0);
        game.apply_input(1, Input::stick(127, 0).with_dash(true));
        let events = run(&mut game, ticks(1000));
        let kos = knockouts(&events);
        assert_eq!(kos, [Knockout { victim: 2, victim_score: 0, by: Some(1), by_score: 1 }], "{events:?}");
        assert_eq!(game.fighter(1).expect("1").knockouts, 1);
        assert_eq!(game.fighter(1).expect("1").life, Life::Alive, "the dasher stays on");
        assert_eq!(game.fighter(2).expect("2").life, Life::Out, "the victim fell and vanished");
    }

    #[test]
    fn walking_off_alone_costs_a_point() {
        let mut game = game();
        game.spawn(1);
        place(&mut game, 1, 390, 0, 300);
        let kos = knockouts(&run(&mut game, 10));
        assert_eq!(kos, [Knockout { victim: 1, victim_score: -1, by: None, by_score: 0 }]);
    }

    #[test]
    fn a_touch_long_ago_is_not_credited() {
        let mut game = duel();
        place(&mut game, 1, -200, 0, 0);
        place(&mut game, 2, -200 + 2 * PLAYER_RADIUS - 2, 0, 0);
        run(&mut game, 1);
        assert_eq!(game.fighter(2).expect("2").last_touch.map(|(by, _)| by), Some(1), "they touched");
        // Far apart, then 2 walks off after the window.
        place(&mut game, 1, -300, 0, 0);
        place(&mut game, 2, 0, 0, 0);
        run(&mut game, ticks(CREDIT_WINDOW_MS) + 1);
        place(&mut game, 2, 395, 0, 300);
        let kos = knockouts(&run(&mut game, 5));
        assert_eq!(kos.len(), 1);
        assert_eq!((kos[0].by, kos[0].victim_score), (None, -1), "too long ago: a fall of its own");
    }

    #[test]
    fn a_touch_within_the_window_is_credited_even_if_the_fall_comes_later() {
        let mut game = duel();
        place(&mut game, 1, -200, 0, 0);
        place(&mut game, 2, -200 + 2 * PLAYER_RADIUS - 2, 0, 0);
        run(&mut game, 1);
        place(&mut game, 1, -300, 0, 0);
        run(&mut game, ticks(CREDIT_WINDOW_MS) - 5);
        place(&mut game, 2, 395, 0, 300);
        let kos = knockouts(&run(&mut game, 3));
        assert_eq!(kos.len(), 1);
        assert_eq!(kos[0].by, Some(1), "still within the window");
    }

    #[test]
    fn the_fallen_fall_then_respawn_protected_on_the_platform() {
        let mut game = game();
        game.spawn(1);
        place(&mut game, 1, 399, 0, 200);
        run(&mut game, 1);
        assert_eq!(game.fighter(1).expect("1").life, Life::Falling);
        assert!(!game.apply_input(1, Input::stick(-127, 0)), "a falling fighter cannot steer back");
        run(&mut game, ticks(FALL_MS));
        assert_eq!(game.fighter(1).expect("1").life, Life::Out);
        run(&mut game, ticks(RESPAWN_MS) - ticks(FALL_MS));
        let back = game.fighter(1).expect("1");
        assert_eq!(back.life, Life::Protected, "back after the respawn time");
        assert!(!game.settings.platform.is_off(back.body.pos), "on the platform: {back:?}");
        assert_eq!(back.body.vel, Vec2q::default());
    }

    #[test]
    fn falls_during_the_podium_do_not_score() {
        let mut game = Match::new(MatchSettings { round_ticks: 2, ..*game().settings() });
        game.spawn(1);
        run(&mut game, 2);
        assert!(matches!(game.round().phase, RoundPhase::Podium { .. }));
        place(&mut game, 1, 399, 0, 300);
        let kos = knockouts(&run(&mut game, 2));
        assert_eq!(kos[0].victim_score, 0, "no points lost after the round ended");
    }

    #[test]
    fn a_round_ends_with_standings_then_scores_reset() {
        let mut game = Match::new(MatchSettings { round_ticks: 60, podium_ticks: 30, ..*game().settings() });
        for id in 1..=3 {
            game.spawn(id);
        }
        // 3 scores twice, 1 falls once.
        game.fighters.get_mut(&3).expect("3").score = 2;
        game.fighters.get_mut(&3).expect("3").knockouts = 2;
        game.fighters.get_mut(&1).expect("1").score = -1;
        let events = run(&mut game, 60);
        let rounds: Vec<&RoundInfo> =
            events.iter().filter_map(|e| if let GameEvent::Round(r) = e { Some(r) } else { None }).collect();
        let expected = vec![
            Standing { id: 3, score: 2, knockouts: 2 },
            Standing { id: 2, score: 0, knockouts: 0 },
            Standing { id: 1, score: -1, knockouts: 0 },
        ];
        assert_eq!(
            rounds,
            [&RoundInfo { number: 1, phase: RoundPhase::Podium { standings: expected, next_at: 90 } }]
        );
        let events = run(&mut game, 30);
        assert!(
            events.contains(&GameEvent::Round(RoundInfo {
                number: 2,
                phase: RoundPhase::Playing { ends_at: 150 }
            })),
            "{events:?}"
        );
        assert!(game.fighters().all(|(_, f)| f.score == 0 && f.knockouts == 0), "scores reset");
        assert!(game.fighters().all(|(_, f)| f.life == Life::Protected), "everyone respawned");
    }

    #[test]
    fn a_host_s_rules_wait_for_the_next_round_and_points_to_win_end_it_early() {
        let mut game = Match::new(MatchSettings { round_ticks: 600, podium_ticks: 30, ..*game().settings() });
        game.spawn(1);
        game.spawn(2);
        game.set_next_rules(60, 3);
        game.fighters.get_mut(&1).expect("1").score = 5;
        run(&mut game, 10);
        assert!(
            matches!(game.round().phase, RoundPhase::Playing { ends_at: 600 }),
            "this round keeps its rules"
        );
        let events = game.next_round_now();
        let start = game.tick();
        assert_eq!(
            events,
            [GameEvent::Round(RoundInfo {
                number: 2,
                phase: RoundPhase::Playing { ends_at: start + 60 * 30 }
            })]
        );
        assert!(game.fighters().all(|(_, f)| f.score == 0), "a new round, scores reset");
        assert_eq!((game.settings().points_to_win, game.settings().round_ticks), (3, 60 * 30));
        game.fighters.get_mut(&2).expect("2").score = 3;
        let events = run(&mut game, 1);
        let podium = events.iter().find_map(|e| match e {
            GameEvent::Round(RoundInfo { phase: RoundPhase::Podium { standings, .. }, .. }) => {
                Some(standings)
            }
            _ => None,
        });
        assert_eq!(podium.map(|s| s[0].id), Some(2), "3 points end the round at once: {events:?}");
    }

    #[test]
    fn a_player_who_sends_nothing_still_slides_when_bumped() {
        let mut game = game();
        game.spawn(1);
        place(&mut game, 1, 300, 0, 600);
        // No inputs at all: after the coast delay the tick moves it on.
        for _ in 0..ticks(COAST_AFTER_MS) + 30 {
            game.advance();
        }
        assert_ne!(game.fighter(1).expect("1").life, Life::Alive, "it slid off the edge");
    }

    #[test]
    fn leaving_players_are_never_credited() {
        let mut game = duel();
        place(&mut game, 1, 300, 0, 0);
        place(&mut game, 2, 300 + 2 * PLAYER_RADIUS - 2, 0, 0);
        run(&mut game, 1);
        game.remove(1);
        place(&mut game, 2, 399, 0, 300);
        assert_eq!(knockouts(&run(&mut game, 2))[0].by, None);
    }

    /// Same inputs, same game, bit for bit: the property every client's
    /// prediction and every replay relies on.
    #[test]
    fn the_same_inputs_give_the_same_game() {
        let play = || {
            let mut game = game();
            for id in 1..=6 {
                game.spawn(id);
            }
            let mut log = Vec::new();
            for t in 0..600u32 {
                for id in 1..=6u16 {
                    let k = t.wrapping_mul(31).wrapping_add(u32::from(id) * 17);
                    let input = Input { x: (k % 255) as i8, y: ((k / 3) % 255) as i8, dash: k % 41 == 0 };
                    game.apply_input(id, input);
                    game.apply_input(id, input);
                }
                log.extend(game.advance());
            }
            (game.states(), log, game.standings())
        };
        let first = play();
        assert_eq!(first, play());
        assert!(!first.1.is_empty(), "six wild players knock each other off in 20 s");
    }
}
