//! What one client knows of its room, with no engine and no socket: the
//! roster (names, colours, scores, who is away), the round, each player's
//! knock-out state, your predicted player, the server clock, interpolation
//! of the others and the round-trip estimate. [`super::ClientSession`]
//! applies every server message here; the page and the bots read it.
//! Times are local seconds (`performance.now()` in the browser, a
//! monotonic clock in bots).

use std::collections::{BTreeMap, VecDeque};

use arena_shared::netcode::{
    Interpolator, Playout, Prediction, RttEstimate, ServerClock, Smoother, ViewHistory,
};
use arena_shared::protocol::{
    CommandRefusal, Frame, Hosting, Knockout, Life, NearBody, PlayerId, PlayerInfo, ReplayId, ResumeToken,
    RoundInfo, RoundPhase, Seen, ServerMsg, Standing, Welcome, near_bodies,
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
    /// One of the server's fill bots, not a person.
    pub bot: bool,
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
}

/// What applying one message found, besides the changes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Applied {
    /// A frame built on a view this client no longer has: it needs a full one.
    pub lacks_baseline: bool,
    /// A frame that was a full view.
    pub full_view: bool,
    /// A pong's round trip, seconds.
    pub round_trip: Option<f64>,
}

/// Why a message could not be applied: the server broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("unexpected after the handshake: {0}")]
    Unexpected(&'static str),
    #[error("expected Welcome first, got {0}")]
    NotWelcomed(&'static str),
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
    /// Who did it (`None`: you fell by yourself).
    pub by_id: Option<PlayerId>,
    /// Local time it happened.
    pub at: f64,
}

/// The room as this client knows it, from its `Welcome` on.
#[derive(Debug)]
pub struct Room {
    /// Your player (0 while you watch).
    you: PlayerId,
    /// You watch: no seat, no inputs, and the frames' `you` is the player
    /// the camera follows.
    watching: bool,
    /// Whom the newest frame followed, while you watch, and where.
    following: PlayerId,
    followed_at: (f32, f32),
    /// How many watch the room.
    watchers: u16,
    code: String,
    private: bool,
    resume: ResumeToken,
    platform: Platform,
    tick_rate: u16,
    roster: BTreeMap<PlayerId, Member>,
    round: RoundInfo,
    prediction: Prediction,
    clock: ServerClock,
    interpolator: Interpolator,
    /// Off for a client that draws nothing: the interpolator stays empty.
    interpolate: bool,
    rtt: RttEstimate,
    /// The newest frame's tick.
    tick: Option<u32>,
    feed: VecDeque<FeedLine>,
    knocked_out: Option<KnockedOutBy>,
    /// Knockouts you gave and took this session.
    knockouts_given: u32,
    knockouts_taken: u32,
    /// The views of the last frames (others in view).
    views: ViewHistory,
    /// The newest frame's near bodies, decoded on its view.
    near: Vec<NearBody>,
    /// Fades your player's corrections out instead of snapping.
    smoother: Smoother,
    /// The same for the players near you: their predicted positions'
    /// corrections, and the switch between drawing them interpolated (in
    /// the past) and predicted (now) as they come near and go.
    near_smoothers: BTreeMap<PlayerId, Smoother>,
    /// The tick the others are drawn at (see [`Playout`]).
    playout: Playout,
    /// Local time the newest frame came.
    last_frame_at: Option<f64>,
    /// Who hosts the room and how it is set.
    hosting: Hosting,
    /// The server's answer to your last refused host command, and when.
    refused: Option<(CommandRefusal, f64)>,
    /// The id of the last round recorded (`/replay/<hex>`), told at its podium.
    replay: Option<ReplayId>,
}

impl Room {
    /// The room a `Welcome` starts; `name` and `color` are what this
    /// client asked for (the server's `Joined` for you follows and wins).
    pub fn new(welcome: Welcome, name: &str, color: u8) -> Self {
        let mut roster: BTreeMap<PlayerId, Member> =
            welcome.players.into_iter().map(|info| (info.id, member(info))).collect();
        if !welcome.watching {
            roster.insert(
                welcome.you,
                Member {
                    name: name.to_owned(),
                    color,
                    score: welcome.score,
                    away: false,
                    life: Life::Protected,
                    bot: false,
                },
            );
        }
        Room {
            you: welcome.you,
            watching: welcome.watching,
            following: 0,
            followed_at: (0.0, 0.0),
            watchers: welcome.watchers,
            code: welcome.room,
            private: welcome.private,
            resume: welcome.resume,
            platform: welcome.platform,
            tick_rate: welcome.tick_rate,
            roster,
            round: welcome.round,
            prediction: {
                let mut prediction = Prediction::default();
                prediction.set_tick_rate(welcome.tick_rate);
                prediction
            },
            clock: ServerClock::new(welcome.tick_rate),
            interpolator: Interpolator::default(),
            interpolate: true,
            rtt: RttEstimate::default(),
            tick: None,
            feed: VecDeque::new(),
            knocked_out: None,
            knockouts_given: 0,
            knockouts_taken: 0,
            views: ViewHistory::default(),
            near: Vec::new(),
            smoother: Smoother::default(),
            near_smoothers: BTreeMap::new(),
            playout: Playout::default(),
            last_frame_at: None,
            hosting: welcome.hosting,
            refused: None,
            replay: None,
        }
    }

    /// Applies one message received at local time `at`, noting what it
    /// changed in `changes`.
    pub(super) fn apply(
        &mut self,
        msg: ServerMsg,
        at: f64,
        changes: &mut Vec<Change>,
    ) -> Result<Applied, SessionError> {
        let mut applied = Applied::default();
        match msg {
            ServerMsg::Welcome(_) => return Err(SessionError::Unexpected("Welcome")),
            ServerMsg::Rejected(_) => return Err(SessionError::Unexpected("Rejected")),
            // The session takes it before the room sees it.
            ServerMsg::Moved(_) => return Err(SessionError::Unexpected("Moved")),
            ServerMsg::Watchers { count } => self.watchers = count,
            ServerMsg::Hosting(hosting) => self.hosting = hosting,
            ServerMsg::Refused(refusal) => self.refused = Some((refusal, at)),
            ServerMsg::Replay { id } => self.replay = Some(id),
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
            ServerMsg::Pong { client_time_us } => {
                let sent = client_time_us as f64 / 1e6;
                self.rtt.on_pong(sent, at);
                applied.round_trip = Some((at - sent).max(0.0));
            }
            ServerMsg::KnockedOut(knockout) => {
                self.on_knockout(knockout, at);
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
            ServerMsg::Frame(frame) => {
                applied.full_view = frame.baseline_age == 0;
                applied.lacks_baseline = !self.frame_smoothly(frame, at, changes)?;
            }
        }
        Ok(applied)
    }

    /// Applies a frame; `false` if it was built on a view this client no
    /// longer has (only your own player was applied).
    /// [`Room::frame`], with the players near you kept from jumping: where
    /// they were drawn before it, they are drawn after it, fading to where
    /// they are now predicted (or, gone from near, interpolated).
    fn frame_smoothly(
        &mut self,
        frame: Frame,
        at: f64,
        changes: &mut Vec<Change>,
    ) -> Result<bool, SessionError> {
        if !self.interpolate {
            return self.frame(frame, at, changes);
        }
        let near_before: Vec<PlayerId> = self.prediction.predicted_near().iter().map(|n| n.id).collect();
        let before = self.others_at(at);
        let applied = self.frame(frame, at, changes);
        let near_now: Vec<PlayerId> = self.prediction.predicted_near().iter().map(|n| n.id).collect();
        if !near_before.is_empty() || !near_now.is_empty() {
            let after = self.others_at(at);
            let find =
                |list: &[(PlayerId, (f32, f32))], id| list.iter().find(|(p, _)| *p == id).map(|(_, at)| *at);
            for &id in near_before.iter().chain(near_now.iter().filter(|id| !near_before.contains(id))) {
                if let (Some(old), Some(new)) = (find(&before, id), find(&after, id)) {
                    self.near_smoothers.entry(id).or_default().correct((new.0 - old.0, new.1 - old.1), at);
                }
            }
        }
        // A smoother whose player is no longer near is kept until it faded.
        self.near_smoothers.retain(|id, smoother| {
            let (dx, dy) = smoother.offset(at);
            near_now.contains(id) || dx.abs() + dy.abs() > 0.01
        });
        applied
    }

    /// Your own player, exactly as the frame has it, reconciled with the
    /// prediction, with the frame's near bodies (`self.near`).
    fn reconcile_you(&mut self, frame: &Frame, at: f64, changes: &mut Vec<Change>) {
        let me = frame.you;
        if me.id != self.you {
            return;
        }
        let Some(member) = self.roster.get_mut(&me.id) else { return };
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
            let solid = (self.you, me.life == Life::Alive);
            if self.prediction.reconcile_near(me.body, frame.ack_seq, solid, &self.near) > 0.0 && anchored {
                let after = self.prediction.body().pos.to_units();
                self.smoother.correct((after.0 - before.0, after.1 - before.1), at);
            }
        }
    }

    fn frame(&mut self, frame: Frame, at: f64, changes: &mut Vec<Change>) -> Result<bool, SessionError> {
        if let Some(last) = self.tick
            && frame.tick <= last
        {
            return Err(SessionError::TickWentBack { last, now: frame.tick });
        }
        self.tick = Some(frame.tick);
        self.last_frame_at = Some(at);
        self.clock.on_frame(frame.tick, at);

        // The others in view: this frame's changes on its baseline's view,
        // and the near bodies on that.
        // (Near bodies that do not fit the view decode to nobody.)
        let fits = match self.views.apply(&frame) {
            Some(view) => {
                near_bodies(view, &frame.near, &mut self.near);
                true
            }
            None => {
                self.near.clear();
                false
            }
        };
        self.reconcile_you(&frame, at, changes);
        if !fits {
            return Ok(false);
        }
        let view = self.views.latest();
        if frame.baseline_age == 0 {
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
                if self.interpolate {
                    self.interpolator.push(id, frame.tick, seen.to_units());
                }
                if let Some(member) = self.roster.get_mut(&id) {
                    member.life = seen.life;
                }
            }
        }
        if self.watching {
            self.follow(&frame);
        }
        Ok(true)
    }

    /// While you watch, the frame's `you` is the player the camera follows:
    /// drawn interpolated like everyone else.
    fn follow(&mut self, frame: &Frame) {
        let followed = frame.you;
        self.following = followed.id;
        self.followed_at = Seen::of(&followed).to_units();
        if self.interpolate {
            self.interpolator.push(followed.id, frame.tick, self.followed_at);
        }
        if let Some(member) = self.roster.get_mut(&followed.id) {
            member.life = followed.life;
        }
    }

    /// Keeps no interpolation tracks from here on (see
    /// [`super::ClientSession::without_interpolation`]).
    pub fn skip_interpolation(&mut self) {
        self.interpolate = false;
        self.interpolator.clear();
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

    fn on_knockout(&mut self, knockout: Knockout, at: f64) {
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
            self.knocked_out = Some(KnockedOutBy { by: by.map(name), by_id: by, at });
        }
        if by == Some(self.you) {
            self.knockouts_given += 1;
        }
        if self.feed.len() == FEED_LINES {
            self.feed.pop_front();
        }
        self.feed.push_back(FeedLine { knockout, text });
    }

    /// Predicts one input sample at once (when your player stands on the
    /// platform); returns its seq.
    pub(super) fn predict(&mut self, input: Input) -> u32 {
        self.prediction.apply_input(input)
    }

    /// Your player's id.
    pub fn you(&self) -> PlayerId {
        self.you
    }

    /// The room's code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether only its invite link leads here.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The token that gets this seat back after a dropped socket.
    pub fn resume_token(&self) -> ResumeToken {
        self.resume
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// Everyone in the room, by id.
    pub fn roster(&self) -> &BTreeMap<PlayerId, Member> {
        &self.roster
    }

    pub fn round(&self) -> &RoundInfo {
        &self.round
    }

    /// Your predicted player and how often reconciliation corrected it.
    pub fn prediction(&self) -> &Prediction {
        &self.prediction
    }

    /// The server's tick estimated on the local clock.
    pub fn clock(&self) -> &ServerClock {
        &self.clock
    }

    /// The smoothed round trip.
    pub fn rtt(&self) -> &RttEstimate {
        &self.rtt
    }

    /// The newest frame's tick.
    pub fn tick(&self) -> Option<u32> {
        self.tick
    }

    /// How long the server has sent no frame, at local time `now` (0 before
    /// the first): a room whose node cannot renew its lease pauses and sends
    /// nothing until it plays again, here or on another node.
    pub fn silent_for(&self, now: f64) -> f64 {
        self.last_frame_at.map_or(0.0, |at| (now - at).max(0.0))
    }

    /// The kill feed, oldest line first.
    pub fn feed(&self) -> &VecDeque<FeedLine> {
        &self.feed
    }

    /// How your player was last knocked out.
    pub fn knocked_out(&self) -> Option<&KnockedOutBy> {
        self.knocked_out.as_ref()
    }

    /// Whom the camera follows: you, except while you are off the platform
    /// (falling or out) and during the podium, when it follows whoever last
    /// knocked you out, if that player is still standing in the room.
    pub fn camera_on(&self) -> PlayerId {
        if self.watching {
            return self.following;
        }
        let watching = matches!(self.my_life(), Life::Falling | Life::Out) || self.podium().is_some();
        let knocker = self.knocked_out.as_ref().and_then(|k| k.by_id);
        let standing = |id: &PlayerId| {
            self.roster.get(id).is_some_and(|m| matches!(m.life, Life::Alive | Life::Protected))
        };
        knocker.filter(|id| watching && standing(id)).unwrap_or(self.you)
    }

    /// Whether you watch rather than play.
    pub fn is_watching(&self) -> bool {
        self.watching
    }

    /// How many watch the room.
    /// Who hosts the room (0: nobody) and how it is set.
    pub fn hosting(&self) -> &Hosting {
        &self.hosting
    }

    /// Whether you host this room (a private room's host runs it).
    pub fn is_host(&self) -> bool {
        !self.watching && self.hosting.host == self.you && self.you != 0
    }

    /// Your last refused host command and the local time it was refused.
    pub fn refused(&self) -> Option<(CommandRefusal, f64)> {
        self.refused
    }

    /// The last recorded round's id, once the server told it (at the podium).
    pub fn replay(&self) -> Option<&ReplayId> {
        self.replay.as_ref()
    }

    pub fn watchers(&self) -> u16 {
        self.watchers
    }

    /// The player after (`step` 1) or before (-1) `from` in id order,
    /// wrapping: what a watcher's keys cycle through.
    pub fn next_player(&self, from: PlayerId, step: i32) -> Option<PlayerId> {
        let ids: Vec<PlayerId> = self.roster.keys().copied().collect();
        let at = ids.iter().position(|&id| id == from).map_or(-1, |i| i as i32);
        let len = ids.len() as i32;
        (len > 0).then(|| ids[(at + step).rem_euclid(len) as usize])
    }

    /// Knockouts you gave and took in this room: (given, taken).
    pub fn knockouts(&self) -> (u32, u32) {
        (self.knockouts_given, self.knockouts_taken)
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
    /// prediction says (while you stand on the platform), the players near
    /// you where they are predicted alongside you, the others interpolated
    /// (or, without interpolation, where the newest frame put them).
    /// Corrections fade rather than jump. Players who are out are left out.
    pub fn positions(&self, now: f64) -> Vec<(PlayerId, (f32, f32))> {
        let mut drawn = self.others_at(now);
        for (id, at) in &mut drawn {
            if let Some(smoother) = self.near_smoothers.get(id) {
                let (dx, dy) = smoother.offset(now);
                *at = (at.0 + dx, at.1 + dy);
            }
        }
        if !self.watching && can_move(self.my_life()) && self.prediction.is_anchored() {
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

impl Room {
    /// Where the others are at `now` before any smoothing: predicted if
    /// near you, else interpolated.
    fn others_at(&self, now: f64) -> Vec<(PlayerId, (f32, f32))> {
        let render_tick = self.playout.at().or_else(|| self.clock.render_tick(now));
        let mut drawn = match render_tick {
            Some(render_tick) if self.interpolate => self.interpolator.sample(render_tick),
            Some(_) => {
                let mut newest: Vec<_> =
                    self.view().iter().map(|(id, seen)| (*id, seen.to_units())).collect();
                if self.watching && self.following != 0 {
                    newest.push((self.following, self.followed_at));
                }
                newest
            }
            None => Vec::new(),
        };
        drawn.retain(|(id, _)| self.roster.get(id).is_some_and(|m| m.life != Life::Out));
        for near in self.prediction.predicted_near() {
            let at = near.body.pos.to_units();
            match drawn.iter_mut().find(|(id, _)| *id == near.id) {
                Some(entry) => entry.1 = at,
                None => drawn.push((near.id, at)),
            }
        }
        drawn
    }
}

fn member(info: PlayerInfo) -> Member {
    let PlayerInfo { name, color, score, bot, .. } = info;
    Member { name, color, score, away: false, life: Life::Protected, bot }
}

fn can_move(life: Life) -> bool {
    matches!(life, Life::Alive | Life::Protected)
}
