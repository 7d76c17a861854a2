//! How a bot steers: the behaviours `arena-bots --behaviour` offers, and
//! the brain that turns what the bot's session knows of its room into
//! inputs. Deterministic per bot index.

use arena_shared::brawler::{Brawler, Sight};
use arena_shared::protocol::{INPUT_RATE_HZ, Life};
use arena_shared::sim::Input;
use serde::Serialize;

use arena_client_core::session::Room;

/// How a bot steers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// Plays the game: seeks the nearest player, dashes into it, keeps
    /// away from the edge.
    Brawler,
    /// A brawler that never dashes: every push is a run, which a client
    /// holding its neighbours' inputs foresees better (what dashes cost
    /// prediction, measured).
    Shover,
    /// Picks a new random direction every second or two, dashing into
    /// every other one.
    Wander,
    /// Steers in a circle.
    Circle,
    /// Sends neutral inputs: connected, never moves on its own.
    Idle,
}

/// One bot's steering state; deterministic per bot index.
pub struct Brain {
    behaviour: Behaviour,
    current: Input,
    steps_left: u32,
    phase: f32,
    brawler: Brawler,
}

impl Brain {
    pub fn new(behaviour: Behaviour, index: usize) -> Self {
        Brain {
            behaviour,
            current: Input::default(),
            steps_left: 0,
            phase: index as f32 * 0.7,
            brawler: Brawler::new(index as u64),
        }
    }

    /// The next input sample, from what the bot sees of its room (`None`:
    /// nothing yet) at local time `now`.
    pub fn next_input(&mut self, view: Option<&Room>, now: f64) -> Input {
        match self.behaviour {
            Behaviour::Idle => Input::default(),
            Behaviour::Brawler => view.map_or_else(Input::default, |room| self.brawl(room, now)),
            Behaviour::Shover => {
                view.map_or_else(Input::default, |room| self.brawl(room, now).with_dash(false))
            }
            Behaviour::Wander => {
                if self.steps_left == 0 {
                    let r = self.brawler.next_random();
                    // Every other new direction starts with a dash.
                    self.current = Input::stick((r & 0xff) as u8 as i8, ((r >> 8) & 0xff) as u8 as i8)
                        .with_dash(r >> 40 & 1 == 1);
                    self.steps_left = INPUT_RATE_HZ + (r >> 16) as u32 % INPUT_RATE_HZ;
                }
                self.steps_left -= 1;
                let input = self.current;
                self.current.dash = false;
                input
            }
            Behaviour::Circle => {
                self.phase += std::f32::consts::TAU / (3.0 * INPUT_RATE_HZ as f32);
                Input::stick((self.phase.cos() * 127.0) as i8, (self.phase.sin() * 127.0) as i8)
            }
        }
    }

    /// Plays the brawler ([`Brawler`]) on what the bot's session draws.
    fn brawl(&mut self, room: &Room, now: f64) -> Input {
        let positions = room.positions(now);
        let Some(&(_, me)) = positions.iter().find(|(id, _)| *id == room.you()) else {
            return Input::default();
        };
        let targets: Vec<(f32, f32)> = positions
            .iter()
            .filter(|(id, _)| *id != room.you())
            .filter(|(id, _)| room.roster().get(id).is_some_and(|m| m.life == Life::Alive))
            .map(|&(_, at)| at)
            .collect();
        self.brawler.steer(Sight {
            me,
            targets: &targets,
            platform_radius: room.platform().radius as f32,
            dash_ready: room.dash_ready() >= 1.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arena_shared::protocol::{Frame, OtherUpdate, PlayerState, Seen, ServerMsg};
    use arena_shared::sim::{Body, Vec2q};

    use super::*;
    use arena_client_core::session::{ClientSession, JoinRequest};

    #[test]
    fn behaviours_steer_as_named() {
        let mut idle = Brain::new(Behaviour::Idle, 3);
        assert!((0..100).all(|_| idle.next_input(None, 0.0) == Input::default()));
        let mut wander = Brain::new(Behaviour::Wander, 3);
        let distinct: BTreeSet<(i8, i8)> =
            (0..600).map(|_| wander.next_input(None, 0.0)).map(|i| (i.x, i.y)).collect();
        assert!(distinct.len() >= 4, "wandering should change direction: {distinct:?}");
        let mut circle = Brain::new(Behaviour::Circle, 0);
        let inputs: Vec<Input> = (0..180).map(|_| circle.next_input(None, 0.0)).collect();
        assert!(
            inputs.iter().any(|i| i.x > 100) && inputs.iter().any(|i| i.x < -100),
            "should sweep a full circle"
        );
    }

    fn brawl_view(me: (i32, i32), other: (i32, i32)) -> ClientSession {
        use arena_shared::protocol::{PROTOCOL_VERSION, PlayerInfo, RoundInfo, RoundPhase, Welcome};
        let welcome = Welcome {
            version: PROTOCOL_VERSION,
            you: 1,
            watching: false,
            watchers: 0,
            tick_rate: 30,
            tick: 0,
            players: vec![PlayerInfo { id: 2, name: "ada".into(), color: 0, score: 0, bot: false }],
            room: "abcdefghjk".into(),
            private: false,
            resume: [0; 16],
            resumed: false,
            score: 0,
            platform: arena_shared::sim::Platform { radius: 500 },
            round: RoundInfo { number: 1, phase: RoundPhase::Playing { ends_at: 5400 } },
            hosting: arena_shared::protocol::Hosting::nobody(180),
        };
        let mut session = ClientSession::new(JoinRequest::quick("bot", 0), 1.0);
        session.handle(ServerMsg::Welcome(welcome), 0.0).expect("welcomed");
        for tick in 1..=2 {
            let them =
                PlayerState { id: 2, body: Body::at(Vec2q::from_units(other.0, other.1)), life: Life::Alive };
            let seen = Seen::of(&them);
            let frame = Frame {
                tick,
                ack_seq: 0,
                baseline_age: 0,
                you: PlayerState { id: 1, body: Body::at(Vec2q::from_units(me.0, me.1)), life: Life::Alive },
                others: vec![OtherUpdate { id_gap: 2, dx: seen.x, dy: seen.y, life: Life::Alive }],
                gone: Vec::new(),
                near: Vec::new(),
            };
            session.handle(ServerMsg::Frame(frame), f64::from(tick) / 30.0).expect("valid frame");
        }
        session
    }

    #[test]
    fn brawlers_charge_the_nearest_player_and_keep_off_the_edge() {
        let mut brain = Brain::new(Behaviour::Brawler, 1);
        let near_edge = brawl_view((450, 0), (300, 0));
        let input = brain.next_input(near_edge.room(), 5.0);
        assert!(input.x < -100 && !input.dash, "back towards the middle: {input:?}");
        let close = brawl_view((0, 0), (0, 100));
        let inputs: Vec<Input> = (0..40).map(|_| brain.next_input(close.room(), 5.0)).collect();
        assert!(inputs.iter().all(|i| i.y > 100), "straight at the other player: {inputs:?}");
        assert!(inputs.iter().any(|i| i.dash), "and dashes when close and ready");
        assert_eq!(brain.next_input(None, 0.0), Input::default(), "nothing to see, nothing to do");
        let mut shover = Brain::new(Behaviour::Shover, 1);
        let inputs: Vec<Input> = (0..40).map(|_| shover.next_input(close.room(), 5.0)).collect();
        assert!(
            inputs.iter().all(|i| i.y > 100 && !i.dash),
            "a shover charges too, never dashing: {inputs:?}"
        );
    }
}
