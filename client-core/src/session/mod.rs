//! The whole client side of arena's protocol as a state machine with no
//! socket, no engine and no clock of its own, in the shape of quinn-proto
//! or rustls: a driver hands it what arrived ([`ClientSession::handle`])
//! and the time, sends what it asks for ([`ClientSession::poll_transmit`]),
//! and reads what happened ([`ClientSession::poll_event`]). The browser
//! app and `arena-bots` are two such drivers; every protocol rule (the
//! `Hello`, input batches, pings, `Resync`, tick order, the round trip)
//! lives here once, and is tested natively below.
//!
//! - [`room`]: what the client knows of its room once welcomed (roster,
//!   round, prediction, clock, interpolation), read through [`Room`].

mod room;

use std::collections::VecDeque;

use arena_shared::protocol::{
    ClientMsg, HostCommand, Moved, PROTOCOL_VERSION, PlayerId, Rejection, ResumeToken, RoomRequest, ServerMsg,
};
use arena_shared::sim::Input;

pub use room::{Change, FEED_LINES, FeedLine, KnockedOutBy, Member, Room, SessionError};

/// Inputs one message carries: two 60 Hz samples make one message per
/// 30 Hz frame, half the messages (and the server's reads) of one each.
pub const INPUTS_PER_MESSAGE: usize = 2;

/// How long to wait for the full view a `Resync` asked for before asking
/// again (the server drops a request it has no room for).
const RESYNC_RETRY_SECS: f64 = 1.0;

/// A colour for a bot or test client, picked from its name so that a
/// swarm is colourful and each bot keeps its colour.
pub fn color_for(name: &str) -> u8 {
    let sum = name.bytes().fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(u32::from(b)));
    (sum % u32::from(arena_shared::protocol::COLORS)) as u8
}

/// Who asks to join, and where: everything a `Hello` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub name: String,
    pub color: u8,
    pub room: RoomRequest,
    /// A seat to take back (from an earlier `Welcome` in `room`).
    pub resume: Option<ResumeToken>,
}

impl JoinRequest {
    /// Quick-join as `name` in `color`.
    pub fn quick(name: impl Into<String>, color: u8) -> Self {
        JoinRequest { name: name.into(), color, room: RoomRequest::Quick, resume: None }
    }

    /// The `Hello` that asks for it: the one place a `Hello` is built.
    pub fn hello(&self) -> ClientMsg {
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: self.name.clone(),
            color: self.color,
            room: self.room.clone(),
            resume: self.resume,
        }
    }
}

/// What happened, for the driver to show or count.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The server seated this client: [`ClientSession::room`] is there now.
    Welcomed { resumed: bool },
    /// The server refused the `Hello`; its close follows.
    Rejected(Rejection),
    /// What a message changed in the room, for a renderer that spawns and
    /// despawns.
    Changed(Change),
    /// A ping's round trip, seconds.
    RoundTrip(f64),
    /// The room is played on another node of the cluster: connect to its
    /// [`websocket_url`] and send [`ClientSession::rejoin`]'s `Hello`
    /// there (once per attempt). Its close follows.
    Moved(Moved),
}

/// The WebSocket URL of a cluster node named by its base URL in a
/// `Moved` (`https://eu1.example.com` → `wss://eu1.example.com/ws`);
/// `None` for anything but an http(s) URL.
pub fn websocket_url(node: &str) -> Option<String> {
    let (scheme, rest) = node.split_once("://")?;
    let scheme = match scheme {
        "http" => "ws",
        "https" => "wss",
        _ => return None,
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        return None;
    }
    Some(format!("{scheme}://{host}/ws"))
}

/// Where the handshake is.
#[derive(Debug)]
enum Phase {
    /// `Hello` queued or sent; waiting for `Welcome` or `Rejected`.
    Joining,
    Playing(Box<Room>),
    Refused(Rejection),
}

/// One connection's protocol, from its `Hello` on. Times are local seconds
/// on the driver's monotonic clock.
#[derive(Debug)]
pub struct ClientSession {
    join: JoinRequest,
    phase: Phase,
    /// Messages waiting for the driver, oldest first.
    outgoing: VecDeque<ClientMsg>,
    events: VecDeque<Event>,
    /// Inputs recorded but not sent yet (the newest has the prediction's
    /// last seq).
    unsent: Vec<Input>,
    ping_every: f64,
    /// When the next ping is due (from the `Welcome` on).
    next_ping: Option<f64>,
    /// When a `Resync` went out that no full view has answered yet.
    resync_sent: Option<f64>,
    /// Where the server said the room is played now.
    moved: Option<Moved>,
    /// Whether the room keeps the others' tracks for drawing them
    /// interpolated ([`ClientSession::without_interpolation`]).
    interpolate: bool,
}

impl ClientSession {
    /// A session that asks to `join`, measuring the round trip every
    /// `ping_every` seconds once welcomed. Its first transmit is the `Hello`.
    pub fn new(join: JoinRequest, ping_every: f64) -> Self {
        ClientSession {
            outgoing: VecDeque::from([join.hello()]),
            join,
            phase: Phase::Joining,
            events: VecDeque::new(),
            unsent: Vec::with_capacity(INPUTS_PER_MESSAGE),
            ping_every,
            next_ping: None,
            resync_sent: None,
            moved: None,
            interpolate: true,
        }
    }

    /// For a client that draws nothing (a light bot): the room keeps no
    /// tracks to interpolate the others along, and [`Room::positions`]
    /// gives where the newest frame put them. Prediction, the clock and
    /// every protocol rule are as before.
    pub fn without_interpolation(mut self) -> Self {
        self.interpolate = false;
        self
    }

    /// Applies one message received at local time `now`. An error means the
    /// server broke the protocol: drop the connection.
    pub fn handle(&mut self, msg: ServerMsg, now: f64) -> Result<(), SessionError> {
        if let ServerMsg::Moved(moved) = msg {
            self.moved = Some(moved.clone());
            self.events.push_back(Event::Moved(moved));
            return Ok(());
        }
        let Phase::Playing(room) = &mut self.phase else {
            return self.handshake(msg, now);
        };
        let mut changes = Vec::new();
        let applied = room.apply(msg, now, &mut changes)?;
        self.events.extend(changes.into_iter().map(Event::Changed));
        if let Some(secs) = applied.round_trip {
            self.events.push_back(Event::RoundTrip(secs));
        }
        if applied.full_view {
            self.resync_sent = None;
        }
        if applied.lacks_baseline && self.resync_sent.is_none_or(|at| now - at >= RESYNC_RETRY_SECS) {
            self.resync_sent = Some(now);
            self.outgoing.push_back(ClientMsg::Resync);
        }
        Ok(())
    }

    /// The answer to the `Hello`: a seat, or a refusal.
    fn handshake(&mut self, msg: ServerMsg, now: f64) -> Result<(), SessionError> {
        match (&self.phase, msg) {
            (Phase::Joining, ServerMsg::Welcome(welcome)) => {
                let resumed = welcome.resumed;
                let mut room = Room::new(welcome, self.join.name.trim(), self.join.color);
                if !self.interpolate {
                    room.skip_interpolation();
                }
                self.phase = Phase::Playing(Box::new(room));
                self.next_ping = Some(now);
                self.events.push_back(Event::Welcomed { resumed });
                Ok(())
            }
            (Phase::Joining, ServerMsg::Rejected(rejection)) => {
                self.phase = Phase::Refused(rejection.clone());
                self.events.push_back(Event::Rejected(rejection));
                Ok(())
            }
            (_, other) => Err(SessionError::NotWelcomed((&other).into())),
        }
    }

    /// Records one input sample, predicting it at once; every
    /// [`INPUTS_PER_MESSAGE`]th sample queues the batch. Ignored before the
    /// `Welcome`.
    pub fn input(&mut self, input: Input) {
        let Phase::Playing(room) = &mut self.phase else { return };
        // A watcher moves nobody.
        if room.is_watching() {
            return;
        }
        let last = room.predict(input);
        self.unsent.push(input);
        if self.unsent.len() == INPUTS_PER_MESSAGE {
            self.outgoing.push_back(ClientMsg::Inputs {
                seq: last.wrapping_sub(INPUTS_PER_MESSAGE as u32 - 1),
                inputs: std::mem::replace(&mut self.unsent, Vec::with_capacity(INPUTS_PER_MESSAGE)),
            });
        }
    }

    /// While watching: point the camera at player `id` (0: the leader).
    /// Ignored while playing.
    pub fn follow(&mut self, id: PlayerId) {
        if self.room().is_some_and(Room::is_watching) {
            self.outgoing.push_back(ClientMsg::Follow { id });
        }
    }

    /// Runs the room, if you host it (the server refuses it otherwise, and
    /// says why: [`Room::refused`]). Ignored before the `Welcome` and while
    /// watching.
    pub fn host(&mut self, command: HostCommand) {
        if self.room().is_some_and(|room| !room.is_watching()) {
            self.outgoing.push_back(ClientMsg::Host(command));
        }
    }

    /// The next message to send at local time `now`, if any: what is queued
    /// first, then a ping when one is due.
    pub fn poll_transmit(&mut self, now: f64) -> Option<ClientMsg> {
        if let Some(msg) = self.outgoing.pop_front() {
            return Some(msg);
        }
        let due = self.next_ping.filter(|&at| now >= at)?;
        // Pings keep their period even when the driver calls late.
        let next = due + self.ping_every;
        self.next_ping = Some(if next > now { next } else { now + self.ping_every });
        Some(ClientMsg::Ping { client_time_us: (now * 1e6) as u64 })
    }

    /// When [`ClientSession::poll_transmit`] will next have something of its
    /// own to send (a ping), if nothing else is queued.
    pub fn poll_timeout(&self) -> Option<f64> {
        if self.outgoing.is_empty() { self.next_ping } else { Some(f64::NEG_INFINITY) }
    }

    /// The next thing that happened, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The room, once welcomed.
    pub fn room(&self) -> Option<&Room> {
        match &self.phase {
            Phase::Playing(room) => Some(room),
            _ => None,
        }
    }

    /// Why the server refused the `Hello`, if it did.
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.phase {
            Phase::Refused(rejection) => Some(rejection),
            _ => None,
        }
    }

    /// Moves the others' playout to local time `now` (once per drawn
    /// frame); returns the tick they are drawn at.
    pub fn advance_playout(&mut self, now: f64) -> Option<f64> {
        match &mut self.phase {
            Phase::Playing(room) => room.advance_playout(now),
            _ => None,
        }
    }

    /// What this session asked for.
    pub fn join_request(&self) -> &JoinRequest {
        &self.join
    }

    /// How to ask for this seat again on a new connection: the same room by
    /// code with its resume token, once welcomed; before, the same request,
    /// or the room a `Moved` named.
    pub fn rejoin(&self) -> JoinRequest {
        match (self.room(), &self.moved) {
            (Some(room), _) if room.is_watching() => {
                JoinRequest { room: RoomRequest::Watch { code: room.code().to_owned() }, ..self.join.clone() }
            }
            (Some(room), _) => JoinRequest {
                room: RoomRequest::Join { code: room.code().to_owned() },
                resume: Some(room.resume_token()),
                ..self.join.clone()
            },
            (None, Some(moved)) if !moved.room.is_empty() => {
                let code = moved.room.clone();
                let room = match self.join.room {
                    RoomRequest::Watch { .. } => RoomRequest::Watch { code },
                    _ => RoomRequest::Join { code },
                };
                JoinRequest { room, ..self.join.clone() }
            }
            (None, _) => self.join.clone(),
        }
    }

    /// Where the server said the room is played now, if it did.
    pub fn moved(&self) -> Option<&Moved> {
        self.moved.as_ref()
    }

    /// The seq of the newest input recorded.
    pub fn last_input_seq(&self) -> u32 {
        self.room().map_or(0, |room| room.prediction().last_seq())
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Deref;

    use arena_shared::protocol::{
        Frame, Knockout, Life, NearBody, OtherUpdate, PlayerId, PlayerInfo, PlayerState, RejectReason,
        RoundInfo, RoundPhase, Seen, Standing, Welcome, near_updates,
    };
    use arena_shared::sim::{self, Body, DASH_COOLDOWN_STEPS, INPUT_DT_MICROS, Platform, Vec2q};

    use super::*;

    /// A welcomed session, read as its room; `apply` and `input` give back
    /// what one message changed and what one input sent.
    struct Tested(ClientSession);

    impl Deref for Tested {
        type Target = Room;

        fn deref(&self) -> &Room {
            self.0.room().expect("welcomed")
        }
    }

    impl Tested {
        fn apply(&mut self, msg: ServerMsg, at: f64) -> Result<Vec<Change>, SessionError> {
            self.0.handle(msg, at)?;
            let events = std::iter::from_fn(|| self.0.poll_event());
            Ok(events.filter_map(|e| if let Event::Changed(c) = e { Some(c) } else { None }).collect())
        }

        fn input(&mut self, input: Input) -> Option<ClientMsg> {
            self.0.input(input);
            self.0.outgoing.pop_front()
        }

        fn positions(&self, now: f64) -> Vec<(PlayerId, (f32, f32))> {
            self.deref().positions(now)
        }
    }

    fn welcome() -> Welcome {
        Welcome {
            version: arena_shared::protocol::PROTOCOL_VERSION,
            you: 2,
            watching: false,
            watchers: 0,
            tick_rate: 30,
            tick: 100,
            players: vec![PlayerInfo { id: 1, name: "ada".into(), color: 3, score: 4, bot: false }],
            room: "abcdefghjk".into(),
            private: false,
            resume: [7; 16],
            resumed: false,
            score: 0,
            platform: Platform { radius: 500 },
            round: RoundInfo { number: 1, phase: RoundPhase::Playing { ends_at: 400 } },
            hosting: arena_shared::protocol::Hosting::nobody(180),
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
        ServerMsg::Frame(Frame {
            tick,
            ack_seq,
            baseline_age: 0,
            you,
            others,
            gone: Vec::new(),
            near: Vec::new(),
        })
    }

    /// Welcomed at local time 0 (the first ping sent), then told its own
    /// join.
    fn session() -> Tested {
        let mut session = ClientSession::new(JoinRequest::quick("bob", 5), 1.0);
        assert!(matches!(session.poll_transmit(0.0), Some(ClientMsg::Hello { .. })));
        session.handle(ServerMsg::Welcome(welcome()), 0.0).expect("welcomed");
        assert!(matches!(session.poll_transmit(0.0), Some(ClientMsg::Ping { .. })));
        let mut session = Tested(session);
        assert_eq!(session.0.poll_event(), Some(Event::Welcomed { resumed: false }));
        let changes = session
            .apply(
                ServerMsg::Joined(PlayerInfo {
                    id: 2,
                    name: "bob (2)".into(),
                    color: 5,
                    score: 0,
                    bot: false,
                }),
                0.0,
            )
            .expect("valid");
        assert!(changes.is_empty(), "your own Joined is no newcomer");
        session
    }

    #[test]
    fn the_host_s_commands_go_out_and_the_room_keeps_its_host_refusals_and_replay() {
        use arena_shared::protocol::{CommandRefusal, Hosting, Rules};
        let mut session = session();
        assert!(!session.is_host(), "a public room: nobody hosts");
        let rules = Rules { round_secs: 60, points_to_win: 3 };
        let hosting = Hosting { host: 2, rules, locked: true };
        session.apply(ServerMsg::Hosting(hosting), 0.5).expect("valid");
        assert!(session.is_host() && session.hosting().locked);
        session.0.host(HostCommand::Kick { id: 1 });
        assert_eq!(session.0.outgoing.pop_front(), Some(ClientMsg::Host(HostCommand::Kick { id: 1 })));
        session.apply(ServerMsg::Refused(CommandRefusal::NoSuchPlayer), 0.7).expect("valid");
        assert_eq!(session.refused(), Some((CommandRefusal::NoSuchPlayer, 0.7)));
        assert_eq!(session.replay(), None);
        session.apply(ServerMsg::Replay { id: [9; 16] }, 0.8).expect("valid");
        assert_eq!(session.replay(), Some(&[9; 16]));
    }

    #[test]
    fn a_silent_server_is_noticed() {
        let mut session = session();
        assert_eq!(session.silent_for(5.0), 0.0, "no frame yet: nothing to miss");
        session.apply(frame(101, 0, &[]), 1.0).expect("valid");
        assert!((session.silent_for(1.5) - 0.5).abs() < 1e-9);
        session.apply(frame(102, 0, &[]), 2.0).expect("valid");
        assert!((session.silent_for(4.0) - 2.0).abs() < 1e-9, "counted from the newest frame");
    }

    #[test]
    fn the_roster_follows_welcome_joins_leaves_and_away() {
        let mut session = session();
        assert_eq!(session.me().map(|m| m.name.as_str()), Some("bob (2)"), "the server's name wins");
        assert_eq!(session.roster()[&1].score, 4, "scores come with the welcome");
        let joined = PlayerInfo { id: 9, name: "cy".into(), color: 0, score: 0, bot: false };
        assert_eq!(session.apply(ServerMsg::Joined(joined), 1.0), Ok(vec![Change::Joined(9)]));
        session.apply(ServerMsg::Away { id: 9 }, 1.0).expect("valid");
        assert!(session.roster()[&9].away);
        session.apply(ServerMsg::Back { id: 9 }, 1.0).expect("valid");
        assert!(!session.roster()[&9].away);
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
        assert_eq!(session.roster()[&1].score, 5);
        assert_eq!(session.feed().back().map(|l| l.text.as_str()), Some("ada knocked out bob (2)"));
        assert_eq!(
            session.knocked_out().cloned(),
            Some(KnockedOutBy { by: Some("ada".into()), by_id: Some(1), at: 10.0 })
        );
        let fall = Knockout { victim: 1, victim_score: 4, by: None, by_score: 0 };
        session.apply(ServerMsg::KnockedOut(fall), 11.0).expect("valid");
        assert_eq!(session.feed().back().map(|l| l.text.as_str()), Some("ada fell off"));
        assert_eq!(session.knockouts(), (0, 1), "none given, one taken");
        for _ in 0..10 {
            session.apply(ServerMsg::KnockedOut(fall), 12.0).expect("valid");
        }
        assert_eq!(session.feed().len(), FEED_LINES, "the feed keeps the newest lines");
        assert_eq!(session.ranking()[0].0, 1);
        assert_eq!(session.my_rank(), 2);
    }

    #[test]
    fn the_camera_follows_whoever_knocked_you_out_while_you_are_off_and_on_the_podium() {
        let mut session = session();
        let body = Body::at(Vec2q::from_units(100, 0));
        let lives = |tick, ada, you| frame(tick, 0, &[(1, body, ada), (2, Body::default(), you)]);
        session.apply(lives(1, Life::Alive, Life::Alive), 0.0).expect("valid");
        assert_eq!(session.camera_on(), 2, "you, while you play");
        let ko = Knockout { victim: 2, victim_score: 0, by: Some(1), by_score: 1 };
        session.apply(ServerMsg::KnockedOut(ko), 0.1).expect("valid");
        let steps = [
            (Life::Alive, Life::Falling, 1, "ada, who knocked you out, while you fall"),
            (Life::Alive, Life::Out, 1, "and while you are out"),
            (Life::Falling, Life::Out, 2, "not once she is off the platform too"),
            (Life::Alive, Life::Protected, 2, "you again once you are back"),
        ];
        for (tick, (ada, you, want, why)) in (2..).zip(steps) {
            session.apply(lives(tick, ada, you), f64::from(tick) / 10.0).expect("valid");
            assert_eq!(session.camera_on(), want, "{why}");
        }
        let standings = vec![Standing { id: 1, score: 1, knockouts: 1 }];
        let podium = RoundInfo { number: 1, phase: RoundPhase::Podium { standings, next_at: 700 } };
        session.apply(ServerMsg::Round(podium), 0.5).expect("valid");
        assert_eq!(session.camera_on(), 1, "on the podium, ada");
        session.apply(ServerMsg::Left { id: 1 }, 0.6).expect("valid");
        assert_eq!(session.camera_on(), 2, "you, once she has left");
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
        assert_eq!(session.roster()[&1].score, 4, "scores stay up on the podium");
        let next = RoundInfo { number: 2, phase: RoundPhase::Playing { ends_at: 6100 } };
        session.apply(ServerMsg::Round(next), 2.0).expect("valid");
        assert_eq!(session.podium(), None);
        assert!(session.roster().values().all(|m| m.score == 0), "a new round starts level");
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
        assert_ne!(session.prediction().body(), start, "but moves your player at once");
        assert_eq!(session.input(dash), Some(ClientMsg::Inputs { seq: 1, inputs: vec![right, dash] }));
        assert_eq!(session.input(right), None);
        assert_eq!(session.input(right), Some(ClientMsg::Inputs { seq: 3, inputs: vec![right, right] }));
        assert_eq!(session.0.last_input_seq(), 4);
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
        assert_eq!(session.prediction().corrections.corrected, 0, "same sim, same inputs");
        // Knocked off: the server's body jumps and then reappears elsewhere.
        let fell = Body::at(Vec2q::from_units(600, 0));
        let changes = session.apply(frame(12, 20, &[(2, fell, Life::Falling)]), 0.0).expect("valid");
        assert_eq!(changes, [Change::MyLife(Life::Falling)]);
        session.input(Input::stick(-127, 0));
        let spawn = Body::at(Vec2q::from_units(-200, 40));
        session.apply(frame(13, 21, &[(2, spawn, Life::Protected)]), 0.0).expect("valid");
        assert_eq!(session.prediction().body(), spawn, "re-anchored at the spawn point");
        assert_eq!(session.prediction().corrections.corrected, 0, "a respawn is no correction");
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
    fn a_watcher_has_no_seat_draws_whom_it_follows_sends_no_inputs_and_rejoins_as_a_watcher() {
        let watch = RoomRequest::Watch { code: "abcdefghjk".into() };
        let mut session =
            ClientSession::new(JoinRequest { room: watch.clone(), ..JoinRequest::quick("eve", 1) }, 1.0)
                .without_interpolation();
        assert!(matches!(session.poll_transmit(0.0), Some(ClientMsg::Hello { .. })));
        let mut welcome = welcome();
        welcome.you = 0;
        welcome.watching = true;
        welcome.watchers = 1;
        welcome.players.push(PlayerInfo { id: 2, name: "cy".into(), color: 0, score: 0, bot: true });
        session.handle(ServerMsg::Welcome(welcome), 0.0).expect("welcomed");
        let _ = session.poll_transmit(0.0); // the first ping
        let mut session = Tested(session);
        assert!(session.is_watching() && session.me().is_none(), "no seat of its own");
        assert!(session.roster()[&2].bot, "fill bots are marked");
        // Frames follow ada (1); cy (2) is in her view.
        let at = |x| Body::at(Vec2q::from_units(x, 0));
        let cy = Seen::of(&PlayerState { id: 2, body: at(50), life: Life::Alive });
        let followed = Frame {
            tick: 101,
            ack_seq: 0,
            baseline_age: 0,
            you: PlayerState { id: 1, body: at(-40), life: Life::Alive },
            others: vec![OtherUpdate { id_gap: 2, dx: cy.x, dy: cy.y, life: Life::Alive }],
            gone: Vec::new(),
            near: Vec::new(),
        };
        session.apply(ServerMsg::Frame(followed), 0.1).expect("valid");
        let mut drawn = session.positions(0.1);
        drawn.sort_by_key(|(id, _)| *id);
        assert_eq!(drawn, vec![(1, (-40.0, 0.0)), (2, (50.0, 0.0))]);
        assert_eq!(session.camera_on(), 1);
        assert_eq!(session.next_player(1, 1), Some(2));
        assert_eq!(session.next_player(1, -1), Some(2), "wrapping");
        session.apply(ServerMsg::Watchers { count: 3 }, 0.2).expect("valid");
        assert_eq!(session.watchers(), 3);
        assert_eq!(session.input(Input::stick(127, 0)), None, "a watcher sends no inputs");
        session.0.input(Input::stick(127, 0));
        session.0.follow(2);
        assert_eq!(session.0.poll_transmit(0.3), Some(ClientMsg::Follow { id: 2 }));
        assert_eq!(session.0.rejoin().room, watch, "a watcher comes back as one, holding no seat");
        assert_eq!(session.0.rejoin().resume, None);
    }

    #[test]
    fn without_interpolation_the_others_are_where_the_newest_frame_put_them() {
        // Ada at x = 100, then 30 units further right on each of two frames.
        let feed = |session: &mut Tested| {
            let body = |x| Body::at(Vec2q::from_units(x, 0));
            session
                .apply(frame(1, 0, &[(1, body(100), Life::Alive), (2, body(0), Life::Alive)]), 1.0 / 30.0)?;
            let you = PlayerState { id: 2, body: body(0), life: Life::Alive };
            for tick in [2, 3] {
                let others = vec![OtherUpdate { id_gap: 1, dx: 120, dy: 0, life: Life::Alive }];
                let step = Frame {
                    tick,
                    ack_seq: 0,
                    baseline_age: 1,
                    you,
                    others,
                    gone: Vec::new(),
                    near: Vec::new(),
                };
                session.apply(ServerMsg::Frame(step), f64::from(tick) / 30.0)?;
            }
            Ok::<_, SessionError>(())
        };
        let ada = |s: &Tested| s.positions(0.1).into_iter().find(|(id, _)| *id == 1).map(|(_, at)| at);
        let mut light = ClientSession::new(JoinRequest::quick("bob", 5), 1.0).without_interpolation();
        light.handle(ServerMsg::Welcome(welcome()), 0.0).expect("welcomed");
        let mut light = Tested(light);
        feed(&mut light).expect("valid");
        assert_eq!(ada(&light), Some((160.0, 0.0)), "where the newest frame put her");
        // A client that draws interpolates a little in the past.
        let mut drawn = session();
        feed(&mut drawn).expect("valid");
        drawn.0.advance_playout(0.1);
        assert!(ada(&drawn).is_some_and(|(x, _)| x < 160.0), "drawn in the past: {:?}", ada(&drawn));
    }

    #[test]
    fn a_player_coming_near_is_drawn_predicted_without_a_jump() {
        let mut session = session();
        let body = |x| Body::at(Vec2q::from_units(x, 0));
        let ada = |s: &Tested, at| s.positions(at).into_iter().find(|(id, _)| *id == 1).map(|(_, p)| p);
        for tick in 1..=6u32 {
            let x = 400 - 10 * tick as i32;
            session
                .apply(
                    frame(tick, 0, &[(1, body(x), Life::Alive), (2, body(0), Life::Alive)]),
                    f64::from(tick) / 30.0,
                )
                .expect("ok");
        }
        // Ada comes within reach: the frame sends her exactly, running at you.
        let at = 7.0 / 30.0;
        let drawn_before = ada(&session, at).expect("drawn");
        let runner = Body { vel: Vec2q::from_units(-320, 0), ..body(330) };
        let ServerMsg::Frame(mut near) = frame(7, 0, &[(1, runner, Life::Alive), (2, body(0), Life::Alive)])
        else {
            unreachable!("frame() makes frames")
        };
        // On the view the frame makes (a full one): Ada where she is.
        let view = [(1, Seen::of(&PlayerState { id: 1, body: runner, life: Life::Alive }))];
        near.near = near_updates(&view, [NearBody { id: 1, body: runner, input: Input::stick(-127, 0) }]);
        session.apply(ServerMsg::Frame(near), at).expect("ok");
        let drawn_after = ada(&session, at).expect("drawn");
        let jump =
            ((drawn_after.0 - drawn_before.0).powi(2) + (drawn_after.1 - drawn_before.1).powi(2)).sqrt();
        assert!(jump < 0.5, "no jump as she comes near: {drawn_before:?} then {drawn_after:?}");
        // Half a second on, she is drawn where she is predicted.
        assert_eq!(session.prediction().predicted_near().len(), 1);
        let predicted = session.prediction().predicted_near()[0].body.pos.to_units();
        let later = ada(&session, at + 0.5).expect("drawn");
        assert!((later.0 - predicted.0).abs() < 0.1, "drawn {later:?}, predicted {predicted:?}");
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
            baseline_age: 1,
            you,
            others: vec![OtherUpdate { id_gap: 1, dx: 8, dy: 0, life: Life::Alive }],
            gone: Vec::new(),
            near: Vec::new(),
        };
        session.apply(ServerMsg::Frame(moved.clone()), 0.03).expect("ok");
        assert_eq!(session.view()[0].1.to_units(), (102.0, 0.0));
        // A frame on view 1 again (frame 2 was replaced on the server's
        // side before its writer took it... or arrived anyway): still fine.
        session
            .apply(ServerMsg::Frame(Frame { tick: 3, baseline_age: 2, ..moved.clone() }), 0.06)
            .expect("ok");
        assert_eq!(session.view()[0].1.to_units(), (102.0, 0.0));
        // Player 1 leaves the view.
        let gone = Frame { tick: 4, baseline_age: 1, others: Vec::new(), gone: vec![1], ..moved.clone() };
        session.apply(ServerMsg::Frame(gone), 0.1).expect("ok");
        assert!(session.view().is_empty());
        assert!(session.positions(5.0).iter().all(|(id, _)| *id != 1), "nor drawn");
        // A baseline this client never had: ask for a full view, once...
        let orphan = Frame { tick: 5, baseline_age: 99, ..moved.clone() };
        assert_eq!(session.apply(ServerMsg::Frame(orphan.clone()), 0.2), Ok(vec![]));
        assert_eq!(session.0.poll_transmit(0.2), Some(ClientMsg::Resync));
        session.apply(ServerMsg::Frame(Frame { tick: 6, ..orphan.clone() }), 0.3).expect("ok");
        assert_eq!(session.0.poll_transmit(0.3), None, "one request while the answer is on its way");
        // ...again if no full view came within a second (the server may have
        // had no room for the request)...
        session.apply(ServerMsg::Frame(Frame { tick: 7, ..orphan.clone() }), 1.3).expect("ok");
        assert_eq!(session.0.poll_transmit(1.3), Some(ClientMsg::Resync));
        // A full view answers it; a loss after that asks at once.
        session.apply(frame(8, 0, &[(2, body(0), Life::Alive)]), 1.4).expect("ok");
        session.apply(ServerMsg::Frame(Frame { tick: 9, ..orphan }), 2.5).expect("ok");
        assert_eq!(session.0.poll_transmit(2.5), Some(ClientMsg::Resync), "a new loss asks anew");
    }

    #[test]
    fn a_correction_is_drawn_fading_not_snapping() {
        let mut session = session();
        let start = Body::at(Vec2q::from_units(0, 0));
        session.apply(frame(1, 0, &[(2, start, Life::Alive)]), 0.0).expect("ok");
        session.input(Input::stick(127, 0));
        // The server says we did not move (someone held us): a correction.
        session.apply(frame(2, 1, &[(2, start, Life::Alive)]), 1.0).expect("ok");
        assert_eq!(session.prediction().corrections.corrected, 1);
        let drawn =
            |now| session.positions(now).iter().find(|(id, _)| *id == 2).map(|(_, p)| p.0).expect("drawn");
        let predicted = session.prediction().body().pos.to_units().0;
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

    #[test]
    fn the_hello_goes_first_and_a_rejection_ends_the_handshake() {
        let join = JoinRequest {
            name: "ada".into(),
            color: 3,
            room: RoomRequest::Join { code: "abcdefghjk".into() },
            resume: Some([9; 16]),
        };
        let mut session = ClientSession::new(join.clone(), 1.0);
        assert_eq!(session.poll_transmit(0.0), Some(join.hello()));
        assert_eq!(session.poll_transmit(5.0), None, "no pings before the welcome");
        session.input(Input::stick(127, 0));
        assert_eq!(session.poll_transmit(5.0), None, "nor inputs");
        assert_eq!(
            session.handle(frame(1, 0, &[]), 5.0),
            Err(SessionError::NotWelcomed("Frame")),
            "a frame before the welcome is a protocol error"
        );
        let mut refused = ClientSession::new(join, 1.0);
        let rejection = Rejection::new(RejectReason::RoomNotFound);
        refused.handle(ServerMsg::Rejected(rejection.clone()), 0.1).expect("a rejection is an answer");
        assert_eq!(refused.poll_event(), Some(Event::Rejected(rejection.clone())));
        assert_eq!(refused.rejection(), Some(&rejection));
        assert!(refused.room().is_none());
    }

    #[test]
    fn pings_keep_their_period_and_pongs_measure_the_round_trip() {
        let mut session = session();
        assert_eq!(session.0.poll_timeout(), Some(1.0), "the next ping, a second after the first");
        assert_eq!(session.0.poll_transmit(0.5), None);
        assert_eq!(session.0.poll_transmit(1.02), Some(ClientMsg::Ping { client_time_us: 1_020_000 }));
        assert_eq!(session.0.poll_timeout(), Some(2.0), "due on the period, not a second after a late call");
        session.0.handle(ServerMsg::Pong { client_time_us: 1_020_000 }, 1.07).expect("valid");
        let round_trip = std::iter::from_fn(|| session.0.poll_event()).find_map(|e| match e {
            Event::RoundTrip(secs) => Some(secs),
            _ => None,
        });
        assert!(round_trip.is_some_and(|secs| (secs - 0.05).abs() < 1e-9), "{round_trip:?}");
        assert!(session.rtt().smoothed_ms().is_some_and(|ms| (ms - 50.0).abs() < 1e-6));
        assert_eq!(session.0.poll_transmit(10.0), Some(ClientMsg::Ping { client_time_us: 10_000_000 }));
        assert_eq!(session.0.poll_timeout(), Some(11.0), "after a long gap, one ping, not a burst");
    }

    #[test]
    fn a_rejoin_asks_for_the_same_seat_by_code_and_token() {
        let session = session();
        assert_eq!(
            session.0.rejoin(),
            JoinRequest {
                name: "bob".into(),
                color: 5,
                room: RoomRequest::Join { code: "abcdefghjk".into() },
                resume: Some([7; 16]),
            }
        );
        let joining = ClientSession::new(JoinRequest::quick("cy", 1), 1.0);
        assert_eq!(joining.rejoin(), JoinRequest::quick("cy", 1), "not welcomed yet: the same request");
    }

    #[test]
    fn a_moved_room_is_followed_with_the_same_seat_or_the_named_room() {
        let moved = Moved { url: "https://eu2.example.com".into(), room: "abcdefghjk".into() };
        // Mid-game: the same seat, by code and token, on the other node.
        let mut playing = session();
        playing.0.handle(ServerMsg::Moved(moved.clone()), 5.0).expect("a Moved is no protocol error");
        assert_eq!(playing.0.poll_event(), Some(Event::Moved(moved.clone())));
        assert_eq!(playing.0.moved(), Some(&moved));
        assert_eq!(playing.0.rejoin().resume, Some([7; 16]));
        // Answering a quick-join's Hello: that room, as the same player.
        let mut joining = ClientSession::new(JoinRequest::quick("cy", 1), 1.0);
        joining.handle(ServerMsg::Moved(moved.clone()), 0.1).expect("an answer to Hello");
        let rejoin = joining.rejoin();
        assert_eq!(rejoin.room, RoomRequest::Join { code: "abcdefghjk".into() });
        assert_eq!((rejoin.name.as_str(), rejoin.color, rejoin.resume), ("cy", 1, None));
        // A drain's "ask there": the same request.
        let mut asked = ClientSession::new(JoinRequest::quick("di", 2), 1.0);
        asked.handle(ServerMsg::Moved(Moved { room: String::new(), ..moved }), 0.1).expect("ok");
        assert_eq!(asked.rejoin(), JoinRequest::quick("di", 2));
    }

    #[test]
    fn a_node_url_becomes_its_websocket_url() {
        assert_eq!(websocket_url("https://eu1.example.com").as_deref(), Some("wss://eu1.example.com/ws"));
        assert_eq!(websocket_url("http://10.0.0.2:7777/").as_deref(), Some("ws://10.0.0.2:7777/ws"));
        assert_eq!(websocket_url("http://[::1]:7777").as_deref(), Some("ws://[::1]:7777/ws"));
        for bad in ["ftp://x", "https://", "javascript:alert(1)", "http://a/b", "eu1.example.com"] {
            assert_eq!(websocket_url(bad), None, "{bad}");
        }
    }
}
