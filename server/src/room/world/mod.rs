//! The room's game state and what one tick does to it: the [`Match`], and
//! around it the room's small parts: its [`seats`] (people and fill bots,
//! their names, tokens and input budgets, held seats), its [`fill`] bots,
//! the round being recorded ([`recording`]), a private room's host
//! ([`hosting`]), and the [`news`] everyone must be told. Nothing here
//! touches a socket, a channel, a timer or a metric: the room
//! ([`crate::room`]) calls [`World::tick`] at the tick rate with its
//! players' inbound queues as the [`InputSource`], delivers the frames and
//! news, and records the figures; benches and tests call it directly.

mod fill;
mod hosting;
pub mod journal;
mod news;
mod recording;
mod seats;

use arena_shared::codec::{DecodeError, decode_state};
use arena_shared::game::{GameEvent, Match, MatchSettings};
use arena_shared::protocol::{
    COLORS, CommandRefusal, HostCommand, Hosting, PROTOCOL_VERSION, PlayerId, PlayerInfo, PlayerState,
    RejectReason, Rejection, ResumeToken, RoundInfo, RoundPhase, ServerMsg, Welcome,
};
use arena_shared::replay::{Change, Replay};
use arena_shared::sim::{Body, INPUT_DT_MICROS, Input};

use self::fill::FillBots;
pub use self::hosting::HostEffect;
use self::hosting::{HostControls, Now};
use self::journal::{Entry, Journal, Record, Rerun};
use self::news::News;
use self::recording::Recording;
pub use self::seats::SavedSeat;
use self::seats::{MAX_INPUT_BURST, MAX_INPUT_CREDIT, Player, Seats};
use crate::limits::AddressKey;
use crate::room::input::{InputSource, QueuedInput};

/// The `you` of a watcher's `Welcome`: no player has id 0.
const NOBODY: PlayerId = 0;

/// Who asks for a seat: the name (already through `validate_name`) and
/// the colour the join screen picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newcomer {
    pub name: String,
    pub color: u8,
    /// Where it connects from: a host's kick keeps this address out.
    pub from: Option<AddressKey>,
}

/// A seat given to a connection: its player, and the `Welcome` to send it
/// before anything else.
#[derive(Debug)]
pub struct Seated {
    pub id: PlayerId,
    /// The name the room shows: the one asked for, made unique.
    pub name: String,
    /// Which connection of this player this is (rises on each resume), so
    /// the end of a replaced connection does not touch the new one.
    pub epoch: u32,
    pub welcome: ServerMsg,
}

/// One tick's outcome for the frames: every player's state (by id), and
/// each connected player's ack (the last input seq applied for it).
#[derive(Debug)]
pub struct Frames {
    pub tick: u32,
    pub states: Vec<PlayerState>,
    /// Each of `states`' players' last applied input, in the same order.
    pub inputs: Vec<Input>,
    pub acks: Vec<(PlayerId, u32)>,
}

/// A room saved by [`World::snapshot`], for a checkpoint or a hand-over;
/// encoded with the protocol's codec (`codec::encode_state`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorldSnapshot {
    pub room: String,
    pub private: bool,
    game: Match,
    seats: Vec<SavedSeat>,
    next_id: PlayerId,
    host_controls: HostControls,
}

impl WorldSnapshot {
    /// A saved room as [`codec::encode_state`] wrote it, by this build or
    /// by the one before (whose seats did not say whether they were fill
    /// bots, and which saved none), so a rolling restart across the two
    /// keeps its rooms.
    ///
    /// [`codec::encode_state`]: arena_shared::codec::encode_state
    pub fn decode(bytes: &[u8], max: usize) -> Result<Self, DecodeError> {
        decode_state(bytes, max).or_else(|error| {
            let earlier: seats::EarlierSnapshot = decode_state(bytes, max).map_err(|_| error)?;
            Ok(earlier.into())
        })
    }

    pub fn players(&self) -> usize {
        self.seats.len()
    }

    pub fn tick(&self) -> u32 {
        self.game.tick()
    }
}

/// A seat as the operators' page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RosterLine {
    pub id: PlayerId,
    pub name: String,
    /// Its connection dropped; the seat is held for a resume.
    pub away: bool,
}

pub struct World {
    /// The game: bodies, knockouts, scores, rounds, and the tick count.
    game: Match,
    tick_rate: u16,
    /// This room's code (for Welcome) and whether only its link leads here.
    room: String,
    private: bool,
    /// How many watch (the room keeps it; a `Welcome` says it).
    watchers: u16,
    seats: Seats,
    bots: FillBots,
    recording: Recording,
    /// A private room's host, lock, rules and kicked addresses.
    host_controls: HostControls,
    news: News,
    /// What changed since the last checkpoint, for the input log.
    journal: Journal,
}

impl World {
    pub fn new(tick_rate: u16, max_players: u16) -> Self {
        World {
            game: Match::new(MatchSettings::new(tick_rate, 180, 10, max_players)),
            tick_rate,
            room: String::new(),
            private: false,
            watchers: 0,
            seats: Seats::new(max_players),
            bots: FillBots::default(),
            recording: Recording::default(),
            host_controls: HostControls::new(180),
            news: News::default(),
            journal: Journal::default(),
        }
    }

    /// Rounds of `round_secs`, with a podium of `podium_secs` between them.
    pub fn with_rounds(mut self, round_secs: u32, podium_secs: u32) -> Self {
        let settings = MatchSettings::new(self.tick_rate, round_secs, podium_secs, self.seats.max_players);
        self.game = Match::new(settings);
        self.host_controls = HostControls::new(round_secs);
        self
    }

    /// Holds a dropped player's seat this many ticks for a resume.
    pub fn holding_seats_for(mut self, ticks: u32) -> Self {
        self.seats.resume_ticks = ticks;
        self
    }

    /// Holds at most `seats` dropped seats at once: past it, the one held
    /// longest is freed, so dropped sockets cannot keep the room full.
    pub fn holding_at_most(mut self, seats: usize) -> Self {
        self.seats.max_held = seats;
        self
    }

    /// Tops a public room with fewer than `people` people up with bots
    /// that play the brawler; they leave as people come (`--fill-bots`).
    pub fn filling_with_bots(mut self, people: usize) -> Self {
        self.bots.target = people;
        self
    }

    /// Records every round played here as a [`Replay`]: the game as the
    /// round began (or as this world first ticked it), then what each tick
    /// applied. A finished round waits in [`World::take_replays`].
    pub fn recording(mut self) -> Self {
        self.recording.on = true;
        self
    }

    /// Journals what each tick changes (cluster mode's input log): see
    /// [`World::take_record`] and [`World::checkpoint`].
    pub fn journaling(mut self) -> Self {
        self.journal.start();
        self
    }

    /// Names the room this world is.
    pub fn in_room(mut self, code: String, private: bool) -> Self {
        self.room = code;
        self.private = private;
        self
    }

    /// Each seat's id and name, and whether it is held for a resume.
    pub fn roster(&self) -> Vec<RosterLine> {
        self.seats.roster()
    }

    /// Whether player `id`'s seat is held for a resume.
    pub fn is_held(&self, id: PlayerId) -> bool {
        self.seats.get(id).is_some_and(|p| p.away_since.is_some())
    }

    /// Whether only its link leads to this room.
    pub fn is_private(&self) -> bool {
        self.private
    }

    pub fn tick_number(&self) -> u32 {
        self.game.tick()
    }

    /// Everything another process needs to carry this room on: the game
    /// and every seat. Inputs in flight and connections are not in it:
    /// each player comes back through its resume token. Fill bots are in
    /// it (a new brain steers each on its new node): the input log after
    /// a checkpoint has their inputs, which a re-run must find them for.
    pub fn snapshot(&self) -> WorldSnapshot {
        WorldSnapshot {
            room: self.room.clone(),
            private: self.private,
            game: self.game.clone(),
            seats: self.seats.saved(),
            next_id: self.seats.next_id,
            host_controls: self.host_controls.clone(),
        }
    }

    /// This world as `snapshot` left it, every seat held for a resume from
    /// now on (for `--resume-secs`, whatever the room's share of held
    /// seats says: the whole room is on its way here).
    pub fn restored(mut self, snapshot: WorldSnapshot) -> Self {
        let WorldSnapshot { room, private, game, seats, next_id, host_controls } = snapshot;
        let tick = game.tick();
        (self.room, self.private, self.game, self.host_controls) = (room, private, game, host_controls);
        self.seats.restore(seats, next_id, tick, &mut self.bots);
        self.news.clear();
        self.recording.forget_round();
        self
    }

    /// A checkpoint: the [`World::snapshot`] that the journal starts again
    /// after (the records taken from now on follow it).
    pub fn checkpoint(&mut self) -> WorldSnapshot {
        self.journal.restart(&self.host_controls);
        self.snapshot()
    }

    /// What this world did since the last record (one tick of the input
    /// log), or `None` when it does not journal.
    pub fn take_record(&mut self) -> Option<Record> {
        self.journal.take(&self.game, &self.host_controls)
    }

    /// Carries a restored world on through `records`, the input log after
    /// its checkpoint, checking each tick's checksum: up to the last record
    /// that follows and matches (a copy of the game is tried first, so a
    /// record that does not leaves nothing half done). Every person's seat
    /// is held for a resume from the last tick re-run.
    pub fn rerun(&mut self, records: &[Record]) -> Rerun {
        let tried = journal::rerun(&mut self.game.clone(), &mut (), records);
        let mut beside =
            RerunSeats { seats: &mut self.seats, bots: &mut self.bots, controls: &mut self.host_controls };
        let done = journal::rerun(&mut self.game, &mut beside, &records[..tried.read]);
        debug_assert_eq!(done.ticks, tried.ticks, "the same records re-run the same way twice");
        self.seats.hold_all(self.game.tick());
        Rerun { stopped: tried.stopped, ..done }
    }

    pub fn game(&self) -> &Match {
        &self.game
    }

    /// Who leads the round: the best score, then the most knockouts,
    /// then the longest here (lowest id). `None` in an empty room.
    pub fn leader(&self) -> Option<PlayerId> {
        self.game.leader()
    }

    /// People in the room (seated, connected or held); bots are not counted.
    pub fn player_count(&self) -> usize {
        self.seats.people()
    }

    /// Fill bots in the room.
    pub fn bot_count(&self) -> usize {
        self.seats.bots()
    }

    /// Adds or removes fill bots so that people and bots make
    /// `--fill-bots` (none in a private room, or with nobody to play with).
    fn fill_with_bots(&mut self) {
        if self.bots.target == 0 || self.private {
            return;
        }
        let wanted = self.bots.wanted(self.seats.people());
        while self.seats.bots() > wanted
            && let Some(bot) = self.seats.newest_bot()
        {
            self.leave(bot);
        }
        while self.seats.bots() < wanted && !self.seats.is_full() {
            self.add_bot();
        }
    }

    fn add_bot(&mut self) {
        let (number, brain) = self.bots.make();
        let name = self.seats.unique_name(format!("bot {number}"));
        let id = self.seats.allocate_id();
        let color = (id % u16::from(COLORS)) as u8;
        self.seat(id, Player::bot(name, color, brain));
    }

    /// Seats `player` as `id` in the game; the recording notes it and
    /// everyone is told.
    fn seat(&mut self, id: PlayerId, player: Player) {
        self.game.spawn(id);
        let info =
            PlayerInfo { id, name: player.name.clone(), color: player.color, score: 0, bot: player.is_bot() };
        self.recording.note(Change::Spawn(info.clone()));
        self.journal.note(Entry::Seat(SavedSeat::of(id, &player)));
        self.seats.insert(id, player);
        self.news.push(ServerMsg::Joined(info));
    }

    /// Who hosts this room, and how it is set.
    pub fn hosting(&self) -> Hosting {
        self.host_controls.hosting
    }

    fn tell_hosting(&mut self) {
        self.news.push(ServerMsg::Hosting(self.hosting()));
    }

    /// The host left: whoever has been here longest (the lowest id) hosts now.
    fn pass_hosting_on(&mut self) {
        self.host_controls.hosting.host = self.seats.longest_present().unwrap_or(NOBODY);
        self.tell_hosting();
    }

    /// Whether someone from `from` may come in, to play or to watch: not
    /// while a host's kick keeps that address out.
    pub fn admits(&mut self, from: Option<AddressKey>) -> Result<(), Rejection> {
        self.host_controls.admits(from, self.game.tick(), self.tick_rate)
    }

    /// Carries out `command` from player `by` if the room's host may give
    /// it (see `hosting`); everyone is told what changed.
    pub fn host_command(&mut self, by: PlayerId, command: HostCommand) -> Result<HostEffect, CommandRefusal> {
        let now = Now { tick: self.game.tick(), tick_rate: self.tick_rate };
        self.host_controls.check(self.private, by, &command, now)?;
        let effect = match command {
            HostCommand::SetRules(rules) => {
                self.host_controls.hosting.rules = rules;
                let (round_secs, points_to_win) =
                    (u32::from(rules.round_secs), u32::from(rules.points_to_win));
                self.game.set_next_rules(round_secs, points_to_win);
                self.journal.note(Entry::Rules { round_secs, points_to_win });
                HostEffect::Done
            }
            HostCommand::Lock(locked) => {
                self.host_controls.hosting.locked = locked;
                HostEffect::Done
            }
            HostCommand::Kick { id } => {
                let from = self.seats.get(id).ok_or(CommandRefusal::NoSuchPlayer)?.from;
                if let Some(from) = from {
                    self.host_controls.ban(from, self.game.tick(), self.tick_rate);
                }
                self.leave(id);
                return Ok(HostEffect::Kicked(id));
            }
            HostCommand::ToWatchers { id } => {
                if !self.leave(id) {
                    return Err(CommandRefusal::NoSuchPlayer);
                }
                return Ok(HostEffect::ToWatchers(id));
            }
            HostCommand::NextRound => {
                self.host_controls.started_next_round(now);
                self.next_round_now();
                return Ok(HostEffect::Done);
            }
        };
        self.tell_hosting();
        Ok(effect)
    }

    /// The round being played ends here (its recording too, cut short) and
    /// the next one starts.
    fn next_round_now(&mut self) {
        self.recording.finish();
        self.journal.note(Entry::NextRound);
        let events = self.game.next_round_now();
        self.announce(events);
    }

    pub fn body(&self, id: PlayerId) -> Option<Body> {
        self.game.fighter(id).map(|f| f.body)
    }

    /// Seats a player whose handshake passed, or refuses with the reason.
    /// A name already taken gets a suffix, so "ada" joins a room with an
    /// "ada" as "ada (2)". `token` is the new player's resume token
    /// (random, from the room).
    pub fn join(&mut self, newcomer: Newcomer, token: ResumeToken) -> Result<Seated, Rejection> {
        // A bot gives its seat to a person.
        if self.seats.is_full()
            && let Some(bot) = self.seats.newest_bot()
        {
            self.leave(bot);
        }
        if self.seats.is_full() {
            return Err(Rejection::new(RejectReason::ServerFull { max_players: self.seats.max_players }));
        }
        self.admits(newcomer.from)?;
        if self.private && self.host_controls.hosting.locked {
            return Err(Rejection::new(RejectReason::RoomLocked));
        }
        let Newcomer { name, color, from } = newcomer;
        let name = self.seats.unique_name(name);
        let id = self.seats.allocate_id();
        // The first to sit in a private room hosts it.
        let hosts = self.private && self.host_controls.hosting.host == NOBODY;
        if hosts {
            self.host_controls.hosting.host = id;
        }
        let welcome = self.welcome(id, token, false);
        self.seat(id, Player::person(name.clone(), color, token, from));
        if hosts {
            self.tell_hosting();
        }
        Ok(Seated { id, name, epoch: 0, welcome })
    }

    /// The rounds finished since the last call, oldest first.
    pub fn take_replays(&mut self) -> Vec<Replay> {
        self.recording.take()
    }

    /// Heap bytes the round being recorded holds (0: none is).
    pub fn recording_held(&self) -> usize {
        self.recording.held()
    }

    /// Stops recording the round being played (the next one is recorded).
    pub fn cut_recording(&mut self) {
        self.recording.cut();
    }

    /// How many watch the room now: told to everyone who comes.
    pub fn set_watchers(&mut self, watchers: u16) {
        self.watchers = watchers;
    }

    /// The `Welcome` of a watcher: everyone in the room, no seat, no token.
    pub fn watcher_welcome(&self) -> ServerMsg {
        self.welcome(NOBODY, [0; 16], false)
    }

    fn welcome(&self, you: PlayerId, resume: ResumeToken, resumed: bool) -> ServerMsg {
        let others = self.seats.iter().filter(|&(id, _)| id != you);
        ServerMsg::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            you,
            watching: you == NOBODY,
            watchers: self.watchers,
            tick_rate: self.tick_rate,
            tick: self.game.tick(),
            players: others.map(|(id, p)| self.info(id, p)).collect(),
            room: self.room.clone(),
            private: self.private,
            resume,
            resumed,
            score: self.game.fighter(you).map_or(0, |f| f.score),
            platform: self.game.settings().platform,
            round: self.game.round().clone(),
            hosting: self.hosting(),
        })
    }

    fn info(&self, id: PlayerId, player: &Player) -> PlayerInfo {
        let score = self.game.fighter(id).map_or(0, |f| f.score);
        PlayerInfo { id, name: player.name.clone(), color: player.color, score, bot: player.is_bot() }
    }

    /// Gives the player holding `token` a new connection: same id, name and
    /// place, under a new epoch. `None`: no such player (a forged token, or
    /// the seat's hold ran out).
    pub fn resume(&mut self, token: &ResumeToken) -> Option<Seated> {
        let id = self.seats.holding(token)?;
        let welcome = self.welcome(id, *token, true);
        let player = self.seats.get_mut(id)?;
        // The new connection numbers its inputs from 1 again.
        player.last_seq = 0;
        player.epoch = player.epoch.wrapping_add(1);
        let (epoch, name) = (player.epoch, player.name.clone());
        if player.away_since.take().is_some() {
            self.news.push(ServerMsg::Back { id });
        }
        Some(Seated { id, name, epoch, welcome })
    }

    /// A connection of player `id` ended: if it is still the player's
    /// current one, hold the seat (`abrupt`) or free it. The end of a
    /// connection that a resume replaced changes nothing.
    pub fn depart(&mut self, id: PlayerId, epoch: u32, abrupt: bool) -> bool {
        if self.seats.get(id).is_none_or(|p| p.epoch != epoch) {
            return false;
        }
        if abrupt {
            self.away(id);
            true
        } else {
            self.leave(id)
        }
    }

    /// The player's socket dropped without a goodbye: hold the seat for a
    /// resume (the player stays, still), or remove it when seats are not held.
    fn away(&mut self, id: PlayerId) {
        if self.seats.resume_ticks == 0 {
            self.leave(id);
            return;
        }
        let tick = self.game.tick();
        if let Some(player) = self.seats.get_mut(id)
            && player.away_since.is_none()
        {
            player.away_since = Some(tick);
            self.news.push(ServerMsg::Away { id });
        }
        if let Some(longest) = self.seats.held_too_many(tick) {
            self.leave(longest);
        }
    }

    /// Removes a player (if still here); everyone is told.
    pub fn leave(&mut self, id: PlayerId) -> bool {
        if self.seats.remove(id).is_none() {
            return false;
        }
        self.game.remove(id);
        self.recording.note(Change::Remove(id));
        self.journal.note(Entry::Leave(id));
        self.news.push(ServerMsg::Left { id });
        if id == self.host_controls.hosting.host {
            self.pass_hosting_on();
        }
        true
    }

    /// What everyone must be told since the last call, oldest first.
    pub fn take_news(&mut self) -> Vec<ServerMsg> {
        self.news.take()
    }

    /// One tick: apply each player's waiting inputs in seq order (within its
    /// input budget), advance the game, note what it decided, free seats
    /// whose hold ran out, and return the frames for connected players.
    pub fn tick(&mut self, inputs: &mut impl InputSource) -> Frames {
        self.tick_after(1, inputs)
    }

    /// [`World::tick`] after `periods` tick intervals: more than one when the
    /// server ran late and skipped ticks. The game still advances one tick,
    /// but players earn input time for every period that passed, so inputs
    /// sent in real time while the server stalled are not left waiting for
    /// good (each skipped tick would otherwise add two inputs of lag).
    pub fn tick_after(&mut self, periods: u32, inputs: &mut impl InputSource) -> Frames {
        if self.recording.wants_to_start(&self.game) {
            let players = self.seats.iter().map(|(id, p)| self.info(id, p)).collect();
            self.recording.start(&self.game, players, self.tick_rate);
        }
        self.fill_with_bots();
        self.apply_inputs(periods, inputs);
        self.advance();
        let tick = self.game.tick();
        for id in self.seats.expired(tick) {
            self.leave(id);
        }
        let states = self.game.states();
        let inputs = states
            .iter()
            .map(|s| self.seats.get(s.id).map_or_else(Input::default, |p| p.last_input))
            .collect();
        Frames { tick, states, inputs, acks: self.seats.acks() }
    }

    /// Each player's waiting inputs in seq order, within its budget; a bot's
    /// are made here, numbered as a client would. A player earns input time
    /// for each of the `periods` that passed, banks at most
    /// [`MAX_INPUT_CREDIT`] and spends at most [`MAX_INPUT_BURST`] a tick.
    fn apply_inputs(&mut self, periods: u32, inputs: &mut impl InputSource) {
        let earned = u64::from(periods.max(1)) * 1_000_000 / u64::from(self.tick_rate);
        let standing = if self.seats.bots() > 0 { fill::standing(&self.game) } else { Vec::new() };
        for (id, player) in self.seats.iter_mut() {
            player.input_credit = (player.input_credit + earned).min(MAX_INPUT_CREDIT);
            let mut applied = 0;
            while applied < MAX_INPUT_BURST && player.input_credit >= u64::from(INPUT_DT_MICROS) {
                let queued = match &mut player.brain {
                    Some(brain) => QueuedInput {
                        seq: player.last_seq.wrapping_add(1),
                        input: fill::bot_input(brain, &self.game, id, &standing),
                    },
                    None => match inputs.next_input(id) {
                        Some(queued) => queued,
                        None => break,
                    },
                };
                // The socket is ordered, so an old seq is a confused client: skip it.
                if queued.seq <= player.last_seq {
                    continue;
                }
                // Falling or out, the input does nothing, but it is acked:
                // the client's prediction moves past it.
                self.game.apply_input(id, queued.input);
                self.recording.input(id, queued.input);
                self.journal.note(Entry::Input(id, queued.input));
                player.last_seq = queued.seq;
                player.last_input = queued.input;
                player.input_credit -= u64::from(INPUT_DT_MICROS);
                applied += 1;
            }
        }
    }

    /// Advances the game a tick: the recording notes it (and a round that
    /// ended is finished), and what it decided becomes news.
    fn advance(&mut self) {
        let events = self.game.advance();
        self.recording.end_tick(&self.game);
        self.journal.tick(&self.game);
        self.announce(events);
    }

    /// What the game decided becomes news; a round that reached its podium
    /// finishes its recording.
    fn announce(&mut self, events: Vec<GameEvent>) {
        for event in events {
            match &event {
                GameEvent::Round(RoundInfo { phase: RoundPhase::Podium { .. }, .. }) => {
                    self.recording.finish()
                }
                GameEvent::KnockedOut(knockout) => {
                    tracing::debug!(room = %self.room, victim = knockout.victim, by = ?knockout.by, "knocked out");
                }
                GameEvent::Round(_) => {}
            }
            self.news.push(event.into());
        }
    }
}

/// A re-run's seats: a person comes back held for a resume (from the
/// re-run's last tick: [`World::rerun`] holds every seat again at its
/// end), a fill bot with a new brain.
struct RerunSeats<'a> {
    seats: &'a mut Seats,
    bots: &'a mut FillBots,
    controls: &'a mut HostControls,
}

impl journal::Beside for RerunSeats<'_> {
    fn seat(&mut self, seat: SavedSeat) {
        self.seats.put_back(seat, 0, self.bots);
    }

    fn leave(&mut self, id: PlayerId) {
        self.seats.remove(id);
    }

    fn hosting(&mut self, controls: HostControls) {
        *self.controls = controls;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use arena_shared::protocol::MAX_NAME_CHARS;

    use super::*;
    use crate::room::input::NoInputs;

    /// Inputs waiting per player, oldest first.
    impl InputSource for BTreeMap<PlayerId, VecDeque<QueuedInput>> {
        fn next_input(&mut self, id: PlayerId) -> Option<QueuedInput> {
            self.get_mut(&id)?.pop_front()
        }
    }

    fn newcomer(name: &str) -> Newcomer {
        Newcomer { name: name.into(), color: 0, from: None }
    }

    impl World {
        /// `ticks` of the game go by with nobody playing.
        pub(crate) fn let_time_pass(&mut self, ticks: u32) {
            for _ in 0..ticks {
                self.game.advance();
            }
        }
    }

    fn world(max_players: u16) -> World {
        World::new(30, max_players)
    }

    fn news_of_bots(world: &mut World) -> (Vec<PlayerId>, Vec<PlayerId>) {
        let (mut joined, mut left) = (Vec::new(), Vec::new());
        for msg in world.take_news() {
            match msg {
                ServerMsg::Joined(info) if info.bot => joined.push(info.id),
                ServerMsg::Left { id } => left.push(id),
                _ => {}
            }
        }
        (joined, left)
    }

    #[test]
    fn fill_bots_top_a_public_room_up_play_and_give_way_to_people() {
        let mut world = World::new(30, 4).filling_with_bots(3);
        world.tick(&mut NoInputs);
        assert_eq!(world.bot_count(), 0, "nobody to play with: no bots");
        let ada = world.join(Newcomer { name: "ada".into(), color: 0, from: None }, [1; 16]).expect("space");
        world.take_news();
        world.tick(&mut NoInputs);
        let (bots, _) = news_of_bots(&mut world);
        assert_eq!((world.player_count(), world.bot_count(), bots.len()), (1, 2, 2), "marked as bots");
        let start: Vec<Body> = bots.iter().map(|&id| world.body(id).expect("a bot has a body")).collect();
        for _ in 0..30 {
            world.tick(&mut NoInputs);
        }
        let moved =
            bots.iter().zip(&start).filter(|&(&id, was)| world.body(id).is_some_and(|b| b.pos != was.pos));
        assert_eq!(moved.count(), 2, "bots play");
        assert!(world.resume(&[0; 16]).is_none(), "a bot's seat is nobody's to resume");
        let saved = world.snapshot();
        assert_eq!(
            saved.seats.iter().filter(|seat| seat.is_bot()).count(),
            2,
            "a hand-over takes bots along"
        );
        let restored = World::new(30, 4).filling_with_bots(3).holding_seats_for(30).restored(saved);
        assert_eq!((restored.player_count(), restored.bot_count()), (1, 2));
        assert!(restored.is_held(ada.id) && !restored.is_held(bots[0]), "people come back, bots are there");

        // People come: bots go, one for one (and the room never refuses a person for a bot).
        world.join(Newcomer { name: "bob".into(), color: 0, from: None }, [2; 16]).expect("space");
        world.tick(&mut NoInputs);
        assert_eq!((world.player_count(), world.bot_count()), (2, 1));
        world.join(Newcomer { name: "cy".into(), color: 0, from: None }, [3; 16]).expect("space");
        world
            .join(Newcomer { name: "dee".into(), color: 0, from: None }, [4; 16])
            .expect("a bot gives its seat");
        assert_eq!((world.player_count(), world.bot_count()), (4, 0));
        // Everyone leaves: no bots stay to keep the room open.
        for id in world.seats.iter().map(|(id, _)| id).collect::<Vec<_>>() {
            world.leave(id);
        }
        world.tick(&mut NoInputs);
        assert_eq!(world.seats.len(), 0);

        let mut private = World::new(30, 4).in_room("abc".into(), true).filling_with_bots(3);
        private.join(Newcomer { name: "ada".into(), color: 0, from: None }, [1; 16]).expect("space");
        private.tick(&mut NoInputs);
        assert_eq!(private.bot_count(), 0, "a private room is for the people invited");
    }

    /// A 20-player, 3-minute round (one person, 19 fill bots playing the
    /// brawler) recorded, sized and replayed.
    #[test]
    fn a_round_is_recorded_small_and_replays_with_every_checksum_equal() {
        let mut world = World::new(30, 32).with_rounds(180, 5).filling_with_bots(20).recording();
        world.join(Newcomer { name: "ada".into(), color: 0, from: None }, [1; 16]).expect("space");
        let mut replays = Vec::new();
        for _ in 0..(180 + 5 + 2) * 30 {
            world.tick(&mut NoInputs);
            replays.extend(world.take_replays());
        }
        let [replay] = &replays[..] else { panic!("one round recorded: {}", replays.len()) };
        assert_eq!(replay.ticks, 180 * 30);
        let bytes = replay.encode();
        let inputs = replay.inputs();
        eprintln!(
            "a 20-player 3-minute round: {} inputs, {} bytes ({:.2} bytes an input, {:.1} KB a player-minute)",
            inputs,
            bytes.len(),
            bytes.len() as f64 / inputs as f64,
            bytes.len() as f64 / 1000.0 / 20.0 / 3.0
        );
        assert!(inputs > 200_000, "twenty players' inputs: {inputs}");
        assert!(bytes.len() <= 200_000, "a round fits 200 KB: {}", bytes.len());
        let decoded = Replay::decode(&bytes).expect("decodes");
        let checked = arena_shared::replay::Playback::new(decoded).expect("this version").verify();
        assert_eq!(checked, Ok(180), "a checksum every second, all equal");
    }

    fn input(seq: u32) -> QueuedInput {
        QueuedInput { seq, input: Input::stick(127, 0) }
    }

    /// Inputs waiting for player `id`, numbered `seqs`.
    fn waiting(
        id: PlayerId,
        seqs: impl IntoIterator<Item = u32>,
    ) -> BTreeMap<PlayerId, VecDeque<QueuedInput>> {
        BTreeMap::from([(id, seqs.into_iter().map(input).collect())])
    }

    fn ack(frames: &Frames, id: PlayerId) -> Option<u32> {
        frames.acks.iter().find(|(who, _)| *who == id).map(|(_, seq)| *seq)
    }

    #[test]
    fn join_welcomes_tells_everyone_and_frames_ack_inputs() {
        let mut world = world(8);
        let seat = world.join(newcomer("ada"), [0; 16]).expect("room has space");
        assert!(matches!(&seat.welcome, ServerMsg::Welcome(w) if w.you == seat.id && w.players.is_empty()));
        assert!(
            matches!(&world.take_news()[..], [ServerMsg::Joined(p)] if p.id == seat.id && p.name == "ada"),
            "everyone hears of the newcomer"
        );
        let start = world.body(seat.id).expect("player exists");
        let frames = world.tick(&mut waiting(seat.id, 1..=2));
        assert_eq!((frames.tick, ack(&frames, seat.id)), (1, Some(2)), "should ack the last applied seq");
        assert!(world.body(seat.id).expect("exists").pos.x > start.pos.x, "inputs should move the player");
    }

    #[test]
    fn a_client_sending_too_fast_gains_nothing() {
        let mut world = world(8);
        let seat = world.join(newcomer("speedy"), [0; 16]).expect("room has space");
        let mut inputs = waiting(seat.id, 1..=32);
        for tick in 1..=5 {
            assert_eq!(
                ack(&world.tick(&mut inputs), seat.id),
                Some(2 * tick),
                "60 Hz / 30 Hz = 2 a tick, from the join"
            );
        }
        assert_eq!(inputs[&seat.id].len(), 32 - 10, "the rest still wait");
    }

    #[test]
    fn inputs_sent_while_the_server_skipped_ticks_are_made_up_a_burst_a_tick() {
        let mut world = world(8);
        let seat = world.join(newcomer("patient"), [0; 16]).expect("room has space");
        let mut inputs = waiting(seat.id, 1..=2);
        assert_eq!(ack(&world.tick(&mut inputs), seat.id), Some(2));
        // The server stalls for five periods; the client went on sending
        // two inputs a period, ten in all, and two more for the next tick.
        inputs.get_mut(&seat.id).expect("queued").extend((3..=14).map(input));
        let burst = MAX_INPUT_BURST;
        assert_eq!(ack(&world.tick_after(5, &mut inputs), seat.id), Some(2 + burst), "a burst at most");
        assert_eq!(ack(&world.tick(&mut inputs), seat.id), Some(14), "the stall's time is made up");
        inputs.get_mut(&seat.id).expect("queued").extend((15..=16).map(input));
        assert_eq!(
            ack(&world.tick(&mut inputs), seat.id),
            Some(16),
            "back in step: two a tick, none waiting"
        );
        assert!(inputs[&seat.id].is_empty(), "no lag is left behind");
    }

    #[test]
    fn a_client_that_froze_catches_up_but_banks_at_most_half_a_second() {
        let mut world = world(8);
        let seat = world.join(newcomer("frozen"), [0; 16]).expect("room has space");
        // A browser tab that froze for 250 ms sends them all at once: made
        // up at a burst a tick, then two a tick with nothing left waiting.
        world.tick_after(1, &mut NoInputs);
        for _ in 0..7 {
            world.tick(&mut NoInputs);
        }
        let mut inputs = waiting(seat.id, 1..=16);
        let acks: Vec<_> = (0..4).map(|_| ack(&world.tick(&mut inputs), seat.id)).collect();
        let burst = MAX_INPUT_BURST;
        assert_eq!(acks, [Some(burst), Some(2 * burst), Some(16), Some(16)]);
        // Idle for a minute: only half a second is kept.
        world.tick_after(1_800, &mut NoInputs);
        let mut inputs = waiting(seat.id, 17..=16 + 100);
        let mut applied = 0;
        for _ in 0..20 {
            let acked = ack(&world.tick(&mut inputs), seat.id).expect("acked");
            applied = acked - 16;
        }
        let bank = (MAX_INPUT_CREDIT / u64::from(INPUT_DT_MICROS)) as u32;
        // The bank is all a player holds, the first tick's own time included.
        assert_eq!(applied, bank + 2 * 19, "half a second banked, and the later ticks' own time");
    }

    #[test]
    fn full_room_rejects_with_server_full() {
        let mut world = world(1);
        let _seat = world.join(newcomer("one"), [0; 16]).expect("first fits");
        let rejection = world.join(newcomer("two"), [0; 16]).expect_err("second should not fit");
        assert_eq!(rejection.reason, RejectReason::ServerFull { max_players: 1 });
    }

    #[test]
    fn a_taken_name_gets_the_next_free_suffix_within_the_length_cap() {
        let mut world = world(8);
        let names: Vec<String> = ["ada", "Ada", "ada", "sixteen-chars-xx", "sixteen-chars-xx"]
            .map(|n| world.join(newcomer(n), [0; 16]).expect("space").name)
            .into();
        assert_eq!(names, ["ada", "Ada (2)", "ada (3)", "sixteen-chars-xx", "sixteen-char (2)"]);
        assert!(names.iter().all(|n| n.chars().count() <= MAX_NAME_CHARS), "suffixed names fit: {names:?}");
    }

    #[test]
    fn a_name_is_free_again_once_its_player_leaves() {
        let mut world = world(8);
        let first = world.join(newcomer("bob"), [0; 16]).expect("space");
        world.leave(first.id);
        assert_eq!(world.join(newcomer("bob"), [0; 16]).expect("space").name, "bob");
    }

    #[test]
    fn a_dropped_seat_is_held_then_resumed_with_the_same_player() {
        let mut world = world(8).holding_seats_for(30);
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space");
        let _bob = world.join(newcomer("bob"), [2; 16]).expect("space");
        world.take_news();
        let place = world.body(ada.id).expect("ada is here");
        assert!(world.depart(ada.id, ada.epoch, true), "a drop holds the seat");
        let frames = world.tick(&mut NoInputs);
        assert_eq!(world.player_count(), 2, "the held seat stays in the room");
        assert_eq!(ack(&frames, ada.id), None, "no frames for an away player");
        assert!(world.take_news().contains(&ServerMsg::Away { id: ada.id }), "others hear ada is away");

        let back = world.resume(&[1; 16]).expect("the token holds the seat");
        assert_eq!((back.id, back.name.as_str()), (ada.id, "ada"), "same id and name");
        assert_eq!(world.body(ada.id).map(|b| b.pos), Some(place.pos), "same place");
        assert!(
            matches!(&back.welcome, ServerMsg::Welcome(w) if w.you == ada.id && w.resumed && w.resume == [1; 16])
        );
        assert_eq!(world.take_news(), [ServerMsg::Back { id: ada.id }]);
        // The old connection ending now (late) must not free the resumed seat.
        assert!(!world.depart(ada.id, ada.epoch, false), "a replaced connection's end changes nothing");
        assert_eq!(world.player_count(), 2);
    }

    #[test]
    fn a_room_holds_at_most_its_limit_of_seats_freeing_the_longest_held() {
        let mut world = world(8).holding_seats_for(300).holding_at_most(2);
        let seated: Vec<Seated> =
            (1..=4).map(|n| world.join(newcomer(&format!("p{n}")), [n; 16]).expect("space")).collect();
        for seat in &seated[..3] {
            assert!(world.depart(seat.id, seat.epoch, true));
            world.tick(&mut NoInputs);
        }
        assert!(!world.is_held(seated[0].id), "the first drop, held longest, should have been freed");
        assert!(world.is_held(seated[1].id) && world.is_held(seated[2].id), "the two latest stay held");
        assert_eq!(world.player_count(), 3, "the freed seat is free for a newcomer");
        assert!(world.resume(&[1; 16]).is_none(), "its token gets nothing back");
        assert!(world.resume(&[2; 16]).is_some(), "a held one still resumes");
    }

    #[test]
    fn a_held_seat_is_freed_after_the_window_and_tokens_must_match() {
        let mut world = world(8).holding_seats_for(3);
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space");
        assert!(world.resume(&[9; 16]).is_none(), "a forged token gets nothing");
        world.depart(ada.id, ada.epoch, true);
        for _ in 0..3 {
            world.tick(&mut NoInputs);
        }
        assert_eq!(world.player_count(), 0, "the hold ran out");
        assert!(world.take_news().contains(&ServerMsg::Left { id: ada.id }));
        assert!(world.resume(&[1; 16]).is_none(), "and the token with it");
    }

    #[test]
    fn a_goodbye_frees_the_seat_at_once() {
        let mut world = world(8).holding_seats_for(30);
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space");
        assert!(world.depart(ada.id, ada.epoch, false));
        assert_eq!(world.player_count(), 0);
        assert!(world.resume(&[1; 16]).is_none());
    }

    #[test]
    fn ids_are_not_reused_right_away() {
        let mut world = world(8);
        let a = world.join(newcomer("a"), [0; 16]).expect("space").id;
        world.leave(a);
        let b = world.join(newcomer("b"), [0; 16]).expect("space").id;
        assert_ne!(a, b, "a newcomer should not take a leaver's id");
    }

    #[test]
    fn a_restored_room_carries_on_where_its_snapshot_left_it() {
        use arena_shared::codec::{MAX_STATE_BYTES, decode_state, encode_state};
        let mut world = world(8).in_room("roomcode00".into(), true).holding_seats_for(300);
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space");
        let bob = world.join(newcomer("bob"), [2; 16]).expect("space");
        let mut inputs = waiting(ada.id, 1..=40);
        for _ in 0..20 {
            world.tick(&mut inputs);
        }
        let saved = world.snapshot();
        let bytes = encode_state(&saved);
        let decoded: WorldSnapshot = decode_state(&bytes, MAX_STATE_BYTES).expect("decodes");
        assert_eq!(decoded, saved);
        let cut = decode_state::<WorldSnapshot>(&bytes[..bytes.len() - 1], MAX_STATE_BYTES);
        assert!(matches!(cut, Err(arena_shared::codec::DecodeError::Malformed(_))), "a cut save: {cut:?}");

        let mut copy = World::new(30, 8).holding_seats_for(300).restored(decoded);
        assert_eq!(copy.game(), world.game(), "bodies, scores and the round clock");
        assert_eq!(copy.player_count(), 2);
        assert!(copy.is_held(ada.id) && copy.is_held(bob.id), "everyone comes back by resume");
        let back = copy.resume(&[1; 16]).expect("the token still works");
        assert_eq!((back.id, back.name.as_str()), (ada.id, "ada"));
        let ServerMsg::Welcome(welcome) = back.welcome else { panic!("a Welcome") };
        assert_eq!((welcome.room.as_str(), welcome.private, welcome.tick), ("roomcode00", true, 20));
        let carl = copy.join(newcomer("carl"), [3; 16]).expect("space");
        assert!(carl.id != ada.id && carl.id != bob.id, "ids go on from the saved count");
        assert_eq!(copy.tick(&mut NoInputs).tick, world.tick(&mut NoInputs).tick);
    }

    /// Ticks `world` `ticks` times with varied sticks for `ids`, and
    /// returns the records it journaled.
    fn play_journaled(world: &mut World, ids: &[PlayerId], ticks: u32, seq: &mut u32) -> Vec<Record> {
        let mut records = Vec::new();
        for t in 0..ticks {
            let mut inputs = BTreeMap::new();
            for (n, &id) in ids.iter().enumerate() {
                *seq += 1;
                let x = ((t as i32 * 37 + n as i32 * 91) % 255 - 127) as i8;
                let input =
                    Input { dash: t % 23 == n as u32, ..Input::stick(x, 127 - x.unsigned_abs() as i8) };
                inputs.insert(id, VecDeque::from([QueuedInput { seq: *seq, input }]));
            }
            world.tick(&mut inputs);
            records.push(world.take_record().expect("journaling"));
        }
        records
    }

    #[test]
    fn a_checkpoint_and_the_journal_after_it_are_the_room_bots_comings_and_goings_included() {
        let mut world = World::new(30, 8).filling_with_bots(5).holding_seats_for(300).journaling();
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space").id;
        let mut seq = 0;
        play_journaled(&mut world, &[ada], 40, &mut seq);
        let checkpoint = world.checkpoint();

        let mut records = Vec::new();
        let bob = world.join(newcomer("bob"), [2; 16]).expect("space").id;
        records.extend(play_journaled(&mut world, &[ada, bob], 30, &mut seq));
        let cy = world.join(newcomer("cy"), [3; 16]).expect("space").id;
        world.leave(ada);
        records.extend(play_journaled(&mut world, &[bob, cy], 60, &mut seq));
        assert!(world.bot_count() > 0, "bots played along");

        let mut restored = World::new(30, 8).filling_with_bots(5).holding_seats_for(300).restored(checkpoint);
        let bytes: Vec<Vec<u8>> = records.iter().map(Record::encode).collect();
        let decoded: Vec<Record> =
            bytes.iter().map(|b| Record::decode(b, 1 << 16).expect("decodes")).collect();
        let done = restored.rerun(&decoded);
        assert_eq!((done.ticks, done.stopped), (90, None));
        assert_eq!(restored.game(), world.game(), "bodies, scores, the round: the very same game");
        assert_eq!(
            restored.roster().iter().map(|l| (l.id, l.name.clone())).collect::<Vec<_>>(),
            world.roster().iter().map(|l| (l.id, l.name.clone())).collect::<Vec<_>>()
        );
        assert_eq!(
            (restored.player_count(), restored.bot_count()),
            (world.player_count(), world.bot_count())
        );
        assert!(restored.resume(&[1; 16]).is_none(), "ada left");
        assert_eq!(
            restored.resume(&[3; 16]).map(|s| s.id),
            Some(cy),
            "cy, seated after the checkpoint, resumes"
        );
        let next = restored.join(newcomer("dee"), [4; 16]).expect("space").id;
        assert_eq!(
            next,
            world.join(newcomer("dee"), [4; 16]).expect("space").id,
            "ids go on as they would have"
        );

        let per_tick = bytes.iter().map(Vec::len).sum::<usize>() as f64 / bytes.len() as f64;
        eprintln!("journal: {per_tick:.0} bytes a tick for 2 people and {} bots", world.bot_count());
    }

    #[test]
    fn a_hosts_rules_next_round_and_kick_are_journaled_and_a_bad_record_stops_the_rerun_whole() {
        use arena_shared::protocol::{HostCommand, Rules};
        let mut world =
            World::new(30, 8).in_room("private001".into(), true).holding_seats_for(300).journaling();
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space").id;
        let from = Some(crate::limits::AddressKey::new("10.0.0.9".parse().expect("an ip"), 64));
        let bob = world.join(Newcomer { from, ..newcomer("bob") }, [2; 16]).expect("space").id;
        let mut seq = 0;
        play_journaled(&mut world, &[ada, bob], 10, &mut seq);
        let checkpoint = world.checkpoint();
        let mut records = play_journaled(&mut world, &[ada, bob], 10, &mut seq);
        let rules = Rules { round_secs: 60, points_to_win: 3 };
        world.host_command(ada, HostCommand::SetRules(rules)).expect("the host may");
        world.host_command(ada, HostCommand::NextRound).expect("the host may");
        world.host_command(ada, HostCommand::Lock(true)).expect("the host may");
        records.extend(play_journaled(&mut world, &[ada, bob], 10, &mut seq));
        world.host_command(ada, HostCommand::Kick { id: bob }).expect("the host may");
        records.extend(play_journaled(&mut world, &[ada], 10, &mut seq));

        let fresh = || World::new(30, 8).holding_seats_for(300).restored(checkpoint.clone());
        let mut restored = fresh();
        assert_eq!(restored.rerun(&records), Rerun { read: 30, ticks: 30, stopped: None });
        assert_eq!(restored.game(), world.game());
        assert_eq!(restored.host_controls, world.host_controls, "host, rules, lock and the kick's ban");
        assert!(restored.admits(from).is_err(), "bob's address is still kept out");

        // A record that lies: the re-run ends at the tick before it, whole.
        let mut tampered = records.clone();
        let at = tampered[15].entries.iter().position(|e| matches!(e, Entry::Input(..))).expect("an input");
        tampered[15].entries[at] = Entry::Input(ada, Input::stick(-127, 0));
        let mut restored = fresh();
        let done = restored.rerun(&tampered);
        assert_eq!(
            (done.ticks, done.stopped),
            (15, Some(journal::RerunError::Mismatch { tick: checkpoint.tick() + 16 }))
        );
        assert_eq!(restored.game().tick(), checkpoint.tick() + 15);
        assert_eq!(restored.player_count(), 2, "the kick after it was not applied");
        // A gap, and duplicates (a write retried) are skipped.
        let mut gapped = records.clone();
        gapped.remove(20);
        gapped.insert(5, records[4].clone());
        let done = fresh().rerun(&gapped);
        let gap = journal::RerunError::Gap { after: checkpoint.tick() + 20, next: checkpoint.tick() + 22 };
        assert_eq!((done.ticks, done.stopped), (20, Some(gap)));
    }

    #[test]
    fn a_room_saved_by_the_build_before_the_input_log_is_still_read() {
        use arena_shared::codec::{MAX_STATE_BYTES, encode_state};
        let mut world = world(8).in_room("oldroom000".into(), false);
        let ada = world.join(newcomer("ada"), [1; 16]).expect("space").id;
        world.tick(&mut NoInputs);
        let now = world.snapshot();
        // The earlier build's layout: the same fields, seats without `bot`.
        type EarlierSeat = (PlayerId, String, u8, ResumeToken, Option<AddressKey>);
        let seats: Vec<EarlierSeat> = vec![(ada, "ada".into(), 0, [1; 16], None)];
        let earlier = (&now.room, now.private, &now.game, seats, now.next_id, &now.host_controls);
        let read = WorldSnapshot::decode(&encode_state(&earlier), MAX_STATE_BYTES).expect("still read");
        assert_eq!(read, now, "the same room");
        assert!(WorldSnapshot::decode(&encode_state(&now), MAX_STATE_BYTES).is_ok());
        assert!(WorldSnapshot::decode(b"nonsense", MAX_STATE_BYTES).is_err());
    }
}
