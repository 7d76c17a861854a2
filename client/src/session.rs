//! One client's view of its room, with no engine and no socket: apply each
//! [`ServerMsg`] to a [`ClientSession`] and read the game off it. The Bevy
//! app and `arena-bots` both drive one, so everything here is tested
//! natively.
//!
//! It owns the roster (names, colours, scores, who is away), the round,
//! each player's knock-out state, your predicted player, the server clock,
//! interpolation of the others and the round-trip estimate. Times are local
//! seconds (`performance.now()` in the browser, a monotonic clock in bots).

use std::collections::{BTreeMap, VecDeque};

use arena_shared::netcode::{
    Interpolator, Playout, Prediction, RttEstimate, ServerClock, Smoother, ViewHistory,
};
use arena_shared::protocol::{
    ClientMsg, Frame, Knockout, Life, PlayerId, PlayerInfo, ResumeToken, RoundInfo, RoundPhase, Seen,
    ServerMsg, Standing, Welcome,
};
use arena_shared::sim::{DASH_COOLDOWN_STEPS, Input, Platform};

/// Kill-feed lines kept.
pub const FEED_LINES: usize = 5;

/// A player in the room, as the roster knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub color: u8,
    pub score: i32,
    /// Its socket dropped; the seat is held while it reconnects.
    pub away: bool,
    pub life: Life,
}

/// What a message changed, for a renderer that spawns and despawns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Joined(PlayerId),
    Left(PlayerId),
    KnockedOut(Knockout),
    Round(RoundInfo),
    /// Your player's life changed (to falling, out, back on the platform).
    MyLife(Life),
    /// A frame built on a view this client no longer has: send
    /// `ClientMsg::Resync` for a full one.
    NeedResync,
}

/// Why a message could not be applied: the server broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("unexpected after the handshake: {0}")]
    Unexpected(&'static str),
    #[error("frame tick went from {last} to {now}")]
    TickWentBack { last: u32, now: u32 },
}

/// One line of the kill feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedLine {
    pub knockout: Knockout,
    pub text: String,
}

/// How your player was last knocked out, for the overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct KnockedOutBy {
    pub by: Option<String>,
    /// Local time it happened.
    pub at: f64,
}

#[derive(Debug)]
pub struct ClientSession {
    pub you: PlayerId,
    pub room: String,
    pub private: bool,
    pub resume: ResumeToken,
    pub platform: Platform,
    pub tick_rate: u16,
    pub roster: BTreeMap<PlayerId, Member>,
    pub round: RoundInfo,
    pub prediction: Prediction,
    pub clock: ServerClock,
    pub interpolator: Interpolator,
    pub rtt: RttEstimate,
    /// The newest frame's tick.
    pub tick: Option<u32>,
    pub feed: VecDeque<FeedLine>,
    pub knocked_out: Option<KnockedOutBy>,
    /// Knockouts you gave and took this session.
    pub knockouts_given: u32,
    pub knockouts_taken: u32,
    /// The views of the last frames (others in view).
    views: ViewHistory,
    /// Fades your player's corrections out instead of snapping.
    pub smoother: Smoother,
    /// The tick the others are drawn at (see [`Playout`]).
    pub playout: Playout,
    /// Inputs recorded but not sent yet (the newest has the prediction's
    /// last seq).
    unsent: Vec<Input>,
}

/// Inputs one message carries: two 60 Hz samples make one message per
/// 30 Hz frame, half the messages (and the server's reads) of one each.
pub const INPUTS_PER_MESSAGE: usize = 2;

impl ClientSession {
    /// The session a `Welcome` starts; `name` and `color` are what this
    /// client asked for (the server's `Joined` for you follows and wins).
    pub fn new(welcome: Welcome, name: &str, color: u8) -> Self {
        let mut roster: BTreeMap<PlayerId, Member> =
            welcome.players.into_iter().map(|info| (info.id, member(info))).collect();
        roster.insert(
            welcome.you,
            Member { name: name.to_owned(), color, score: 0, away: false, life: Life::Protected },
        );
        ClientSession {
            you: welcome.you,
            room: welcome.room,
            private: welcome.private,
            resume: welcome.resume,
            platform: welcome.platform,
            tick_rate: welcome.tick_rate,
            roster,
            round: welcome.round,
            prediction: Prediction::default(),
            clock: ServerClock::new(welcome.tick_rate),
            interpolator: Interpolator::default(),
            rtt: RttEstimate::default(),
            tick: None,
            feed: VecDeque::new(),
            knocked_out: None,
            knockouts_given: 0,
            knockouts_taken: 0,
            views: ViewHistory::default(),
            smoother: Smoother::default(),
            playout: Playout::default(),
            unsent: Vec::with_capacity(INPUTS_PER_MESSAGE),
        }
    }

    /// Applies one message received at local time `at`.
    pub fn apply(&mut self, msg: ServerMsg, at: f64) -> Result<Vec<Change>, SessionError> {
        let mut changes = Vec::new();
        match msg {
            ServerMsg::Welcome(_) => return Err(SessionError::Unexpected("Welcome")),
            ServerMsg::Rejected(_) => return Err(SessionError::Unexpected("Rejected")),
            ServerMsg::Joined(info) => {
                let id = info.id;
                let life = self.roster.get(&id).map_or(Life::Protected, |m| m.life);
                let fresh = self.roster.insert(id, Member { life, ..member(info) }).is_none();
                if fresh {
                    changes.push(Change::Joined(id));
                }
            }
            ServerMsg::Left { id } => {
                if self.roster.remove(&id).is_some() {
                    changes.push(Change::Left(id));
                }
            }
            ServerMsg::Away { id } | ServerMsg::Back { id } => {
                let away = matches!(msg, ServerMsg::Away { .. });
                if let Some(member) = self.roster.get_mut(&id) {
                    member.away = away;
                }
            }
            ServerMsg::Pong { client_time_us } => self.rtt.on_pong(client_time_us as f64 / 1e6, at),
            ServerMsg::KnockedOut(knockout) => {
                self.knocked_out(knockout, at);
                changes.push(Change::KnockedOut(knockout));
            }
            ServerMsg::Round(round) => {
                if matches!(round.phase, RoundPhase::Playing { .. }) {
                    self.roster.values_mut().for_each(|m| m.score = 0);
                    self.feed.clear();
                }
                self.round = round.clone();
                changes.push(Change::Round(round));
            }
            ServerMsg::Frame(frame) => self.frame(frame, at, &mut changes)?,
        }
        Ok(changes)
    }

    fn frame(&mut self, frame: Frame, at: f64, changes: &mut Vec<Change>) -> Result<(), SessionError> {
        if let Some(last) = self.tick
            && frame.tick <= last
        {
            return Err(SessionError::TickWentBack { last, now: frame.tick });
        }
        self.tick = Some(frame.tick);
        self.clock.on_frame(frame.tick, at);

        // Yourself, exactly.
        let me = frame.you;
        if me.id == self.you
            && let Some(member) = self.roster.get_mut(&me.id)
        {
            let was = std::mem::replace(&mut member.life, me.life);
            if was != me.life {
                // Fell, respawned, or a round moved everyone: no input
                // explains it, so it is no correction, and nothing to smooth.
                self.prediction.reanchor();
                self.smoother.reset();
                changes.push(Change::MyLife(me.life));
            }
            if can_move(me.life) {
                let anchored = self.prediction.is_anchored();
                let before = self.prediction.body().pos.to_units();
                if self.prediction.reconcile(me.body, frame.ack_seq) > 0.0 && anchored {
                    let after = self.prediction.body().pos.to_units();
                    self.smoother.correct((after.0 - before.0, after.1 - before.1), at);
                }
            }
        }

        // The others in view: this frame's changes on its baseline's view.
        let Some(view) = self.views.apply(&frame) else {
            changes.push(Change::NeedResync);
            return Ok(());
        };
        if frame.baseline == 0 {
            self.interpolator.clear();
        }
        for id in &frame.gone {
            self.interpolator.remove(*id);
        }
        let mut id: PlayerId = 0;
        for update in &frame.others {
            id += update.id_gap;
            if let Ok(at) = view.binary_search_by_key(&id, |(known, _)| *known) {
                let seen = view[at].1;
                self.interpolator.push(id, frame.tick, seen.to_units());
                if let Some(member) = self.roster.get_mut(&id) {
                    member.life = seen.life;
                }
            }
        }
        Ok(())
    }

    /// Moves the playout to local time `now` (once per drawn frame);
    /// returns the tick the others are drawn at.
    pub fn advance_playout(&mut self, now: f64) -> Option<f64> {
        self.playout.advance(&self.clock, self.tick, now)
    }

    /// The others this client can see now, by id.
    pub fn view(&self) -> &[(PlayerId, Seen)] {
        self.views.latest()
    }

    fn knocked_out(&mut self, knockout: Knockout, at: f64) {
        let Knockout { victim, victim_score, by, by_score } = knockout;
        if let Some(member) = self.roster.get_mut(&victim) {
            member.score = victim_score;
        }
        if let Some(by) = by
            && let Some(member) = self.roster.get_mut(&by)
        {
            member.score = by_score;
        }
        let name = |id: PlayerId| self.roster.get(&id).map_or_else(|| format!("#{id}"), |m| m.name.clone());
        let text = match by {
            Some(by) => format!("{} knocked out {}", name(by), name(victim)),
            None => format!("{} fell off", name(victim)),
        };
        if victim == self.you {
            self.knockouts_taken += 1;
            self.knocked_out = Some(KnockedOutBy { by: by.map(name), at });
        }
        if by == Some(self.you) {
            self.knockouts_given += 1;
        }
        if self.feed.len() == FEED_LINES {
            self.feed.pop_front();
        }
        self.feed.push_back(FeedLine { knockout, text });
    }

    /// Records one input sample (predicting it at once when your player
    /// stands on the platform); every [`INPUTS_PER_MESSAGE`]th sample
    /// returns the message that sends the batch.
    pub fn input(&mut self, input: Input) -> Option<ClientMsg> {
        let last = self.prediction.apply_input(input);
        self.unsent.push(input);
        (self.unsent.len() == INPUTS_PER_MESSAGE).then(|| ClientMsg::Inputs {
            seq: last.wrapping_sub(INPUTS_PER_MESSAGE as u32 - 1),
            inputs: std::mem::replace(&mut self.unsent, Vec::with_capacity(INPUTS_PER_MESSAGE)),
        })
    }

    /// The seq of the newest input recorded.
    pub fn last_input_seq(&self) -> u32 {
        self.prediction.last_seq()
    }

    /// A ping stamped with local time `now`.
    pub fn ping(&self, now: f64) -> ClientMsg {
        ClientMsg::Ping { client_time_us: (now * 1e6) as u64 }
    }

    pub fn me(&self) -> Option<&Member> {
        self.roster.get(&self.you)
    }

    pub fn my_life(&self) -> Life {
        self.me().map_or(Life::Protected, |m| m.life)
    }

    /// Everyone by score (ties: lower id first), best first.
    pub fn ranking(&self) -> Vec<(PlayerId, &Member)> {
        let mut all: Vec<(PlayerId, &Member)> = self.roster.iter().map(|(&id, m)| (id, m)).collect();
        all.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(a.0.cmp(&b.0)));
        all
    }

    /// Your place (1 = first) among everyone in the room.
    pub fn my_rank(&self) -> usize {
        self.ranking().iter().position(|(id, _)| *id == self.you).map_or(0, |i| i + 1)
    }

    /// The final standings while the podium shows.
    pub fn podium(&self) -> Option<&[Standing]> {
        match &self.round.phase {
            RoundPhase::Podium { standings, .. } => Some(standings),
            RoundPhase::Playing { .. } => None,
        }
    }

    /// Seconds until the round ends (playing) or the next one starts (podium).
    pub fn round_secs_left(&self, now: f64) -> Option<f64> {
        let until = match &self.round.phase {
            RoundPhase::Playing { ends_at } => *ends_at,
            RoundPhase::Podium { next_at, .. } => *next_at,
        };
        let tick = self.clock.tick_at(now)?;
        Some(((f64::from(until) - tick) / f64::from(self.tick_rate)).max(0.0))
    }

    /// How ready the dash is: 1 ready, 0 just used.
    pub fn dash_ready(&self) -> f32 {
        1.0 - f32::from(self.prediction.body().dash_cooldown) / f32::from(DASH_COOLDOWN_STEPS)
    }

    /// Where to draw everyone at local time `now`, world units: you where
    /// prediction says (while you stand on the platform), the others
    /// interpolated. Players who are out are left out.
    pub fn positions(&self, now: f64) -> Vec<(PlayerId, (f32, f32))> {
        let mut drawn = match self.playout.at().or_else(|| self.clock.render_tick(now)) {
            Some(render_tick) => self.interpolator.sample(render_tick),
            None => Vec::new(),
        };
        drawn.retain(|(id, _)| self.roster.get(id).is_some_and(|m| m.life != Life::Out));
        if can_move(self.my_life()) && self.prediction.is_anchored() {
            let (x, y) = self.prediction.body().pos.to_units();
            let (dx, dy) = self.smoother.offset(now);
            let me = (x + dx, y + dy);
            match drawn.iter_mut().find(|(id, _)| *id == self.you) {
                Some(entry) => entry.1 = me,
                None => drawn.push((self.you, me)),
            }
        }
        drawn
    }
}

fn member(info: PlayerInfo) -> Member {
    Member { name: info.name, color: info.color, score: info.score, away: false, life: Life::Protected }
}

fn can_move(life: Life) -> bool {
    matches!(life, Life::Alive | Life::Protected)
}

#[cfg(test)]
mod tests {
    use arena_shared::protocol::{OtherUpdate, PlayerState, Seen};
    use arena_shared::sim::{self, Body, INPUT_DT_MICROS, Vec2q};

    use super::*;

    fn welcome() -> Welcome {
        Welcome {
            version: arena_shared::protocol::PROTOCOL_VERSION,
            you: 2,
            tick_rate: 30,
            tick: 100,
            players: vec![PlayerInfo { id: 1, name: "ada".into(), color: 3, score: 4 }],
            room: "abcdefghjk".into(),
            private: false,
            resume: [7; 16],
            resumed: false,
            platform: Platform { radius: 500 },
            round: RoundInfo { number: 1, phase: RoundPhase::Playing { ends_at: 400 } },
        }
    }

    /// A full-view frame (baseline 0): player 2 (you) exactly, the others
    /// as newcomers to the view.
    fn frame(tick: u32, ack_seq: u32, players: &[(PlayerId, Body, Life)]) -> ServerMsg {
        let state = |&(id, body, life): &(PlayerId, Body, Life)| PlayerState { id, body, life };
        let you = players
            .iter()
            .find(|p| p.0 == 2)
            .map_or(PlayerState { id: 2, body: Body::default(), life: Life::Alive }, state);
        let mut last = 0;
        let others = players
            .iter()
            .filter(|p| p.0 != 2)
            .map(|p| {
                let seen = Seen::of(&state(p));
                let update = OtherUpdate { id_gap: p.0 - last, dx: seen.x, dy: seen.y, life: p.2 };
                last = p.0;
                update
            })
            .collect();
        ServerMsg::Frame(Frame { tick, ack_seq, baseline: 0, you, others, gone: Vec::new() })
    }

    fn session() -> ClientSession {
        let mut session = ClientSession::new(welcome(), "bob", 5);
        let changes = session
            .apply(ServerMsg::Joined(PlayerInfo { id: 2, name: "bob (2)".into(), color: 5, score: 0 }), 0.0)
            .expect("valid");
        assert!(changes.is_empty(), "your own Joined is no newcomer");
        session
    }

    #[test]
    fn the_roster_follows_welcome_joins_leaves_and_away() {
        let mut session = session();
        assert_eq!(session.me().map(|m| m.name.as_str()), Some("bob (2)"), "the server's name wins");
        assert_eq!(session.roster[&1].score, 4, "scores come with the welcome");
        let joined = PlayerInfo { id: 9, name: "cy".into(), color: 0, score: 0 };
        assert_eq!(session.apply(ServerMsg::Joined(joined), 1.0), Ok(vec![Change::Joined(9)]));
        session.apply(ServerMsg::Away { id: 9 }, 1.0).expect("valid");
        assert!(session.roster[&9].away);
        session.apply(ServerMsg::Back { id: 9 }, 1.0).expect("valid");
        assert!(!session.roster[&9].away);
        assert_eq!(session.apply(ServerMsg::Left { id: 9 }, 2.0), Ok(vec![Change::Left(9)]));
        assert_eq!(
            session.apply(ServerMsg::Left { id: 9 }, 2.0),
            Ok(vec![]),
            "leaving twice changes nothing"
        );
        assert!(
            session.apply(ServerMsg::Welcome(welcome()), 3.0).is_err(),
            "a second welcome is a protocol error"
        );
    }

    #[test]
    fn knockouts_update_scores_the_feed_and_the_overlay() {
        let mut session = session();
        let ko = Knockout { victim: 2, victim_score: 0, by: Some(1), by_score: 5 };
        session.apply(ServerMsg::KnockedOut(ko), 10.0).expect("valid");
        assert_eq!(session.roster[&1].score, 5);
        assert_eq!(session.feed.back().map(|l| l.text.as_str()), Some("ada knocked out bob (2)"));
        assert_eq!(session.knocked_out, Some(KnockedOutBy { by: Some("ada".into()), at: 10.0 }));
        let fall = Knockout { victim: 1, victim_score: 4, by: None, by_score: 0 };
        session.apply(ServerMsg::KnockedOut(fall), 11.0).expect("valid");
        assert_eq!(session.feed.back().map(|l| l.text.as_str()), Some("ada fell off"));
        assert_eq!((session.knockouts_taken, session.knockouts_given), (1, 0));
        for _ in 0..10 {
            session.apply(ServerMsg::KnockedOut(fall), 12.0).expect("valid");
        }
        assert_eq!(session.feed.len(), FEED_LINES, "the feed keeps the newest lines");
        assert_eq!(session.ranking()[0].0, 1);
        assert_eq!(session.my_rank(), 2);
    }

    #[test]
    fn a_new_round_resets_scores_and_the_podium_shows_standings() {
        let mut session = session();
        let standings =
            vec![Standing { id: 1, score: 4, knockouts: 4 }, Standing { id: 2, score: 0, knockouts: 0 }];
        let podium =
            RoundInfo { number: 1, phase: RoundPhase::Podium { standings: standings.clone(), next_at: 700 } };
        session.apply(ServerMsg::Round(podium), 1.0).expect("valid");
        assert_eq!(session.podium(), Some(standings.as_slice()));
        assert_eq!(session.roster[&1].score, 4, "scores stay up on the podium");
        let next = RoundInfo { number: 2, phase: RoundPhase::Playing { ends_at: 6100 } };
        session.apply(ServerMsg::Round(next), 2.0).expect("valid");
        assert_eq!(session.podium(), None);
        assert!(session.roster.values().all(|m| m.score == 0), "a new round starts level");
    }

    #[test]
    fn the_round_timer_counts_down_on_the_server_clock() {
        let mut session = session();
        session.apply(frame(100, 0, &[]), 50.0).expect("valid");
        let left = session.round_secs_left(51.0).expect("clock running");
        assert!((left - 9.0).abs() < 0.01, "300 ticks at 30 Hz from tick 100, a second later: {left}");
    }

    #[test]
    fn inputs_go_out_two_a_message_each_predicted_at_once() {
        let mut session = session();
        let start = Body::at(Vec2q::from_units(0, 0));
        session.apply(frame(1, 0, &[(2, start, Life::Alive)]), 0.0).expect("valid");
        let (right, dash) = (Input::stick(127, 0), Input::stick(0, 127).with_dash(true));
        assert_eq!(session.input(right), None, "the first sample waits for the second");
        assert_ne!(session.prediction.body(), start, "but moves your player at once");
        assert_eq!(session.input(dash), Some(ClientMsg::Inputs { seq: 1, inputs: vec![right, dash] }));
        assert_eq!(session.input(right), None);
        assert_eq!(session.input(right), Some(ClientMsg::Inputs { seq: 3, inputs: vec![right, right] }));
        assert_eq!(session.last_input_seq(), 4);
    }

    #[test]
    fn falling_and_respawning_are_not_corrections() {
        let mut session = session();
        let start = Body::at(Vec2q::from_units(0, 0));
        session.apply(frame(1, 0, &[(2, start, Life::Alive)]), 0.0).expect("valid");
        let mut server = start;
        for seq in 1..=20u32 {
            let input = Input::stick(127, 0);
            session.input(input);
            sim::step(&mut server, input, INPUT_DT_MICROS);
            if seq % 2 == 0 {
                session.apply(frame(1 + seq / 2, seq, &[(2, server, Life::Alive)]), 0.0).expect("valid");
            }
        }
        assert_eq!(session.prediction.corrections.corrected, 0, "same sim, same inputs");
        // Knocked off: the server's body jumps and then reappears elsewhere.
        let fell = Body::at(Vec2q::from_units(600, 0));
        let changes = session.apply(frame(12, 20, &[(2, fell, Life::Falling)]), 0.0).expect("valid");
        assert_eq!(changes, [Change::MyLife(Life::Falling)]);
        session.input(Input::stick(-127, 0));
        let spawn = Body::at(Vec2q::from_units(-200, 40));
        session.apply(frame(13, 21, &[(2, spawn, Life::Protected)]), 0.0).expect("valid");
        assert_eq!(session.prediction.body(), spawn, "re-anchored at the spawn point");
        assert_eq!(session.prediction.corrections.corrected, 0, "a respawn is no correction");
        assert!(session.positions(0.0).iter().any(|(id, p)| *id == 2 && *p == (-200.0, 40.0)));
    }

    #[test]
    fn others_out_of_the_game_are_not_drawn_and_ticks_only_go_forward() {
        let mut session = session();
        let body = Body::at(Vec2q::from_units(10, 10));
        session.apply(frame(5, 0, &[(1, body, Life::Out), (2, body, Life::Alive)]), 0.0).expect("valid");
        session.apply(frame(6, 0, &[(1, body, Life::Out), (2, body, Life::Alive)]), 0.04).expect("valid");
        let drawn: Vec<PlayerId> = session.positions(1.0).into_iter().map(|(id, _)| id).collect();
        assert_eq!(drawn, [2]);
        assert_eq!(session.apply(frame(6, 0, &[]), 1.0), Err(SessionError::TickWentBack { last: 6, now: 6 }));
    }

    #[test]
    fn delta_frames_build_on_kept_views_and_a_lost_baseline_asks_for_a_full_one() {
        let mut session = session();
        let body = |x| Body::at(Vec2q::from_units(x, 0));
        session
            .apply(frame(1, 0, &[(1, body(100), Life::Alive), (2, body(0), Life::Alive)]), 0.0)
            .expect("ok");
        assert_eq!(
            session.view().iter().map(|(id, s)| (*id, s.to_units())).collect::<Vec<_>>(),
            [(1, (100.0, 0.0))]
        );
        let you = PlayerState { id: 2, body: body(0), life: Life::Alive };
        // On view 1: player 1 moves 2 units (8 quanta) right.
        let moved = Frame {
            tick: 2,
            ack_seq: 0,
            baseline: 1,
            you,
            others: vec![OtherUpdate { id_gap: 1, dx: 8, dy: 0, life: Life::Alive }],
            gone: Vec::new(),
        };
        session.apply(ServerMsg::Frame(moved.clone()), 0.03).expect("ok");
        assert_eq!(session.view()[0].1.to_units(), (102.0, 0.0));
        // A frame on view 1 again (frame 2 was replaced on the server's
        // side before its writer took it... or arrived anyway): still fine.
        session.apply(ServerMsg::Frame(Frame { tick: 3, ..moved.clone() }), 0.06).expect("ok");
        assert_eq!(session.view()[0].1.to_units(), (102.0, 0.0));
        // Player 1 leaves the view.
        let gone = Frame { tick: 4, baseline: 3, others: Vec::new(), gone: vec![1], ..moved.clone() };
        session.apply(ServerMsg::Frame(gone), 0.1).expect("ok");
        assert!(session.view().is_empty());
        assert!(session.positions(5.0).iter().all(|(id, _)| *id != 1), "nor drawn");
        // A baseline this client never had: ask for a full view.
        let orphan = Frame { tick: 5, baseline: 99, ..moved };
        assert_eq!(session.apply(ServerMsg::Frame(orphan), 0.2), Ok(vec![Change::NeedResync]));
    }

    #[test]
    fn a_correction_is_drawn_fading_not_snapping() {
        let mut session = session();
        let start = Body::at(Vec2q::from_units(0, 0));
        session.apply(frame(1, 0, &[(2, start, Life::Alive)]), 0.0).expect("ok");
        session.input(Input::stick(127, 0));
        // The server says we did not move (someone held us): a correction.
        session.apply(frame(2, 1, &[(2, start, Life::Alive)]), 1.0).expect("ok");
        assert_eq!(session.prediction.corrections.corrected, 1);
        let drawn =
            |now| session.positions(now).iter().find(|(id, _)| *id == 2).map(|(_, p)| p.0).expect("drawn");
        let predicted = session.prediction.body().pos.to_units().0;
        assert!(drawn(1.0) > predicted, "drawn where it was at first: {} vs {predicted}", drawn(1.0));
        assert!((drawn(1.5) - predicted).abs() < 0.05, "and where the server says half a second later");
    }

    #[test]
    fn the_dash_meter_follows_the_predicted_cooldown() {
        let mut session = session();
        session.apply(frame(1, 0, &[(2, Body::at(Vec2q::default()), Life::Alive)]), 0.0).expect("valid");
        assert_eq!(session.dash_ready(), 1.0);
        session.input(Input::stick(127, 0).with_dash(true));
        assert_eq!(session.dash_ready(), 0.0, "just dashed");
        for _ in 0..DASH_COOLDOWN_STEPS / 2 {
            session.input(Input::default());
        }
        assert!((session.dash_ready() - 0.5).abs() < 0.02);
    }
}
