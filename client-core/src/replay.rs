//! A recorded round shown as a watcher sees a room, with no server: the
//! [`ReplayFeed`] re-runs the round's rules from its recording
//! ([`Playback`]) and speaks the protocol a watcher hears (a `Welcome`,
//! then per tick the comings and goings, knockouts, the round's end and a
//! full-view `Frame` around the player the camera follows). A
//! [`crate::session::ClientSession`] takes those messages as it would a
//! server's, so the page draws a replay with the code that draws a game.
//!
//! Seeking goes back to the nearest keyframe (a copy of the playback every
//! [`KEYFRAME_TICKS`], kept as they are first played) and plays forward.
//! A checksum that differs stops the feed: the page then says the replay
//! does not match rather than show a game that was not played.
//! Engine-free and tested natively; `app::replay` drives it in the page.

use arena_shared::protocol::{
    Frame, Hosting, OtherUpdate, PROTOCOL_VERSION, PlayerId, PlayerInfo, Seen, ServerMsg, Welcome,
};
use arena_shared::replay::{Change, Playback, Replay, ReplayError};

/// Ticks between two keyframes: 5 s at 30 Hz, so a seek replays at most
/// 150 ticks (a few milliseconds) past the one it starts from.
pub const KEYFRAME_TICKS: u32 = 150;

/// The room code a replay's `Welcome` names (it is no room).
pub const REPLAY_ROOM: &str = "replay";

/// A recorded round, played as a watcher's messages.
#[derive(Debug)]
pub struct ReplayFeed {
    playback: Playback,
    /// `keyframes[i]` is the playback at tick `i * KEYFRAME_TICKS`.
    keyframes: Vec<Playback>,
    /// Whom the camera follows (0: the round's leader).
    follow: PlayerId,
    /// The checksum that differed (the feed stops there).
    failed: Option<ReplayError>,
}

impl ReplayFeed {
    /// A feed at the start of `replay`; `Err` if it was recorded under
    /// another version of the rules.
    pub fn new(replay: Replay) -> Result<Self, ReplayError> {
        let playback = Playback::new(replay)?;
        Ok(ReplayFeed { keyframes: vec![playback.clone()], playback, follow: 0, failed: None })
    }

    /// Ticks played since the recording's start.
    pub fn tick(&self) -> u32 {
        self.playback.tick()
    }

    /// Ticks in the recording.
    pub fn ticks(&self) -> u32 {
        self.playback.replay().ticks
    }

    pub fn tick_rate(&self) -> u16 {
        self.playback.replay().tick_rate
    }

    /// Whether the feed has played its last tick (or stopped on a mismatch).
    pub fn is_over(&self) -> bool {
        self.playback.is_done() || self.failed.is_some()
    }

    /// Why the feed stopped early, if it did.
    pub fn failed(&self) -> Option<&ReplayError> {
        self.failed.as_ref()
    }

    /// The camera follows player `id` (0: the leader) from the next frame.
    pub fn follow(&mut self, id: PlayerId) {
        self.follow = id;
    }

    /// The `Welcome` a watcher would get now: everyone in the game, and
    /// `tick_rate` as the rate the frames will come at (the replay's own
    /// times the speed, so the page's clock and timer keep pace).
    pub fn welcome(&self, tick_rate: u16) -> ServerMsg {
        let game = self.playback.game();
        let players = self
            .playback
            .players()
            .values()
            .map(|info| PlayerInfo { score: game.fighter(info.id).map_or(0, |f| f.score), ..info.clone() })
            .collect();
        let round_secs = game.settings().round_ticks / u32::from(self.tick_rate().max(1));
        ServerMsg::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            you: 0,
            watching: true,
            watchers: 0,
            tick_rate: tick_rate.max(1),
            tick: game.tick(),
            players,
            room: REPLAY_ROOM.to_owned(),
            private: false,
            resume: [0; 16],
            resumed: false,
            score: 0,
            platform: game.settings().platform,
            round: game.round().clone(),
            hosting: Hosting::nobody(u16::try_from(round_secs).unwrap_or(u16::MAX)),
        })
    }

    /// Plays one tick and returns what a watcher hears of it, in the order
    /// a server sends it; empty once the recording is over. A checksum that
    /// differs stops the feed ([`ReplayFeed::failed`]).
    pub fn step(&mut self) -> Vec<ServerMsg> {
        if self.is_over() {
            return Vec::new();
        }
        if let Err(e) = self.advance() {
            self.failed = Some(e);
            return Vec::new();
        }
        let (changed, events) = self.playback.last_step();
        let mut heard: Vec<ServerMsg> = changed
            .iter()
            .map(|change| match change {
                Change::Spawn(info) => ServerMsg::Joined(info.clone()),
                Change::Remove(id) => ServerMsg::Left { id: *id },
            })
            .collect();
        heard.extend(events.iter().cloned().map(ServerMsg::from));
        heard.extend(self.frame_now());
        heard
    }

    /// The frame of the tick played last (a watcher's first, after its
    /// `Welcome`); `None` with nobody in the game.
    pub fn frame_now(&self) -> Option<ServerMsg> {
        self.frame().map(ServerMsg::Frame)
    }

    /// One tick of the playback, keeping a keyframe where one is due.
    fn advance(&mut self) -> Result<(), ReplayError> {
        self.playback.step()?;
        let tick = self.playback.tick();
        if tick.is_multiple_of(KEYFRAME_TICKS) && self.keyframes.len() == (tick / KEYFRAME_TICKS) as usize {
            self.keyframes.push(self.playback.clone());
        }
        Ok(())
    }

    /// Goes to `tick` (clamped to the recording): back to the keyframe at
    /// or before it, then forward. The page welcomes itself again after.
    pub fn seek(&mut self, tick: u32) {
        let tick = tick.min(self.ticks());
        let nearest = ((tick / KEYFRAME_TICKS) as usize).min(self.keyframes.len() - 1);
        if tick < self.playback.tick() || self.keyframes[nearest].tick() > self.playback.tick() {
            self.playback = self.keyframes[nearest].clone();
        }
        while self.playback.tick() < tick && self.failed.is_none() {
            if let Err(e) = self.advance() {
                self.failed = Some(e);
            }
        }
    }

    /// A full-view frame around the followed player (the leader if it is
    /// not in the game); `None` with nobody in it.
    fn frame(&self) -> Option<Frame> {
        let game = self.playback.game();
        let followed =
            Some(self.follow).filter(|&id| game.fighter(id).is_some()).or_else(|| game.leader())?;
        let states = game.states();
        let you = *states.iter().find(|state| state.id == followed)?;
        let mut last = 0;
        let others = states
            .iter()
            .filter(|other| other.id != followed)
            .map(|other| {
                let seen = Seen::of(other);
                let id_gap = other.id - last;
                last = other.id;
                OtherUpdate { id_gap, dx: seen.x, dy: seen.y, life: seen.life }
            })
            .collect();
        Some(Frame {
            tick: game.tick(),
            ack_seq: 0,
            baseline_age: 0,
            you,
            others,
            gone: Vec::new(),
            near: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use arena_shared::game::{Match, MatchSettings};
    use arena_shared::protocol::RoomRequest;
    use arena_shared::replay::Recorder;
    use arena_shared::sim::Input;

    use super::*;
    use crate::session::{ClientSession, JoinRequest};

    /// A 10 s round of `players` circling (one walks off the edge, so
    /// there is a knockout), recorded as the server records it.
    fn round(players: u16) -> Replay {
        let mut game = Match::new(MatchSettings::new(30, 10, 5, 16));
        let info =
            |id| PlayerInfo { id, name: format!("p{id}"), color: (id % 10) as u8, score: 0, bot: false };
        for id in 1..=players {
            game.spawn(id);
        }
        let mut recorder = Recorder::new(&game, (1..=players).map(info).collect(), 30);
        for tick in 0..300u32 {
            for id in 1..=players {
                let angle = tick as f32 / 30.0 + f32::from(id);
                let input = if id == 1 {
                    Input::stick(127, 0)
                } else {
                    Input::stick((angle.cos() * 100.0) as i8, (angle.sin() * 100.0) as i8)
                };
                for _ in 0..2 {
                    game.apply_input(id, input);
                    recorder.input(id, input);
                }
            }
            game.advance();
            recorder.end_tick(&game);
        }
        recorder.finish()
    }

    fn watcher(feed: &ReplayFeed) -> ClientSession {
        let room = RoomRequest::Watch { code: REPLAY_ROOM.into() };
        let join = JoinRequest { name: "viewer".into(), color: 0, room, resume: None };
        let mut session = ClientSession::new(join, 1.0);
        session.handle(feed.welcome(30), 0.0).expect("welcomed");
        session
    }

    #[test]
    fn a_session_watches_a_replay_as_it_watches_a_room() {
        let mut feed = ReplayFeed::new(round(4)).expect("this version");
        let mut session = watcher(&feed);
        let mut knockouts = 0;
        let mut t = 0.0;
        while !feed.is_over() {
            t += 1.0 / 30.0;
            for msg in feed.step() {
                knockouts += usize::from(matches!(msg, ServerMsg::KnockedOut(_)));
                session.handle(msg, t).expect("the protocol is kept");
            }
        }
        assert!(feed.failed().is_none(), "every checksum equal");
        assert_eq!(feed.tick(), 300);
        assert!(knockouts >= 1, "p1 walked off the edge");
        let room = session.room().expect("in the replay");
        assert!(room.is_watching());
        assert_eq!(room.roster().len(), 4);
        assert!(room.podium().is_some(), "the round ended on its podium");
        assert_eq!(room.tick(), Some(feed.playback.game().tick()));
    }

    #[test]
    fn seeking_back_and_forth_lands_on_the_same_game_and_following_moves_the_camera() {
        let replay = round(3);
        let mut straight = ReplayFeed::new(replay.clone()).expect("v");
        for _ in 0..250 {
            straight.step();
        }
        let mut seeking = ReplayFeed::new(replay).expect("v");
        seeking.seek(280);
        seeking.seek(20);
        assert_eq!(seeking.tick(), 20);
        seeking.seek(250);
        assert_eq!(seeking.playback.game(), straight.playback.game(), "bit for bit");
        seeking.seek(u32::MAX);
        assert!(seeking.is_over() && seeking.failed().is_none());

        let mut feed = ReplayFeed::new(round(3)).expect("v");
        let you = |msgs: Vec<ServerMsg>| {
            msgs.into_iter().find_map(|m| if let ServerMsg::Frame(f) = m { Some(f.you.id) } else { None })
        };
        let leader = you(feed.step());
        feed.follow(3);
        assert_eq!(you(feed.step()), Some(3));
        feed.follow(99);
        assert_eq!(you(feed.step()), leader, "nobody by that id: the leader");
    }

    #[test]
    fn a_replay_that_does_not_match_the_rules_stops_where_it_differs() {
        let mut replay = round(3);
        for stream in &mut replay.streams {
            for at in 130..140 {
                stream.dx[at] = stream.dx[at].wrapping_add(90);
            }
        }
        let mut feed = ReplayFeed::new(replay).expect("v");
        feed.seek(300);
        assert!(matches!(feed.failed(), Some(ReplayError::Mismatch { tick: 90 })), "{:?}", feed.failed());
        assert!(feed.is_over() && feed.step().is_empty(), "nothing more is shown");
        let mut old = round(1);
        old.version -= 1;
        assert!(matches!(ReplayFeed::new(old), Err(ReplayError::Version(_))));
    }
}
