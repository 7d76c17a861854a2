//! The room's seats: who sits in it (people and fill bots), by id in the
//! simulation's order, with each one's name, colour, resume token, input
//! budget and, while its connection is away, since when its seat is held.
//! [`Seats`] keeps the rules of the table itself: names made unique, ids
//! not reused at once, how many seats are held and for how long. What
//! the game and the news make of a seat is the world's.

use std::collections::BTreeMap;

use arena_shared::brawler::Brawler;
use arena_shared::protocol::{MAX_NAME_CHARS, PlayerId, ResumeToken};
use arena_shared::sim::{INPUT_DT_MICROS, Input};

use super::RosterLine;
use super::fill::FillBots;
use crate::limits::AddressKey;

/// Inputs a player may apply in one tick (three times the sustained two at
/// 30 Hz): how fast a player catches up after a hiccup, and how far it can
/// move between two ticks' bumps.
pub const MAX_INPUT_BURST: u32 = 6;

/// The most input time a player may have in hand, in µs: half a second, the
/// inbound queue's worth (32 inputs). Time is earned as it passes on the
/// server's clock, a tick interval for every interval, skipped ticks
/// included. So a stall on either side (a browser that froze for a frame,
/// a server that skipped ticks) is made up, a burst a tick, instead of
/// leaving the player's inputs waiting behind it for good; and sending
/// faster than real time buys nothing past this half second.
pub const MAX_INPUT_CREDIT: u64 = 30 * INPUT_DT_MICROS as u64;

/// One seat.
pub struct Player {
    pub name: String,
    /// Index into the page's palette.
    pub color: u8,
    /// The secret a reconnecting client shows to get this seat back.
    pub token: ResumeToken,
    /// The address it joined from (see [`super::Newcomer::from`]).
    pub from: Option<AddressKey>,
    /// The tick the socket dropped, while the seat is held for a resume.
    pub away_since: Option<u32>,
    /// The current connection's epoch (see [`super::Seated::epoch`]).
    pub epoch: u32,
    /// Highest input seq applied; acked in every frame.
    pub last_seq: u32,
    /// Simulation time this player may still spend on inputs, in µs.
    pub input_credit: u64,
    /// The last input applied: what its neighbours' clients extrapolate.
    pub last_input: Input,
    /// A fill bot's steering (`--fill-bots`): it plays inside the tick,
    /// with no connection. `None`: a person.
    pub brain: Option<Brawler>,
}

impl Player {
    /// A person who just sat down; its input time starts now.
    pub fn person(name: String, color: u8, token: ResumeToken, from: Option<AddressKey>) -> Self {
        Player {
            name,
            color,
            token,
            from,
            away_since: None,
            epoch: 0,
            last_seq: 0,
            input_credit: 0,
            last_input: Input::default(),
            brain: None,
        }
    }

    /// A fill bot steered by `brain`; its token is never matched (a resume
    /// looks for people only).
    pub fn bot(name: String, color: u8, brain: Brawler) -> Self {
        Player { brain: Some(brain), ..Player::person(name, color, [0; 16], None) }
    }

    pub fn is_bot(&self) -> bool {
        self.brain.is_some()
    }
}

/// The seats of one room.
pub struct Seats {
    /// Sorted by id: the simulation order, so it is deterministic.
    players: BTreeMap<PlayerId, Player>,
    pub next_id: PlayerId,
    pub max_players: u16,
    /// Ticks a dropped player's seat is held for a resume.
    pub resume_ticks: u32,
    /// Seats held at once at most; a drop past it frees the longest-held.
    pub max_held: usize,
}

impl Seats {
    pub fn new(max_players: u16) -> Self {
        Seats { players: BTreeMap::new(), next_id: 1, max_players, resume_ticks: 0, max_held: usize::MAX }
    }

    /// Every seat is taken (people and bots).
    pub fn is_full(&self) -> bool {
        self.players.len() >= usize::from(self.max_players)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.players.len()
    }

    /// People (seated, connected or held); bots are not counted.
    pub fn people(&self) -> usize {
        self.players.values().filter(|p| !p.is_bot()).count()
    }

    pub fn bots(&self) -> usize {
        self.players.len() - self.people()
    }

    /// The bot that came last (the highest id).
    pub fn newest_bot(&self) -> Option<PlayerId> {
        self.players.iter().rev().find(|(_, p)| p.is_bot()).map(|(&id, _)| id)
    }

    /// The person here longest (the lowest id).
    pub fn longest_present(&self) -> Option<PlayerId> {
        self.players.iter().find(|(_, p)| !p.is_bot()).map(|(&id, _)| id)
    }

    pub fn get(&self, id: PlayerId) -> Option<&Player> {
        self.players.get(&id)
    }

    pub fn get_mut(&mut self, id: PlayerId) -> Option<&mut Player> {
        self.players.get_mut(&id)
    }

    /// Seats `player` under `id` (from [`Seats::allocate_id`]).
    pub fn insert(&mut self, id: PlayerId, player: Player) {
        self.players.insert(id, player);
    }

    pub fn remove(&mut self, id: PlayerId) -> Option<Player> {
        self.players.remove(&id)
    }

    /// Every seat, by id.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (PlayerId, &Player)> {
        self.players.iter().map(|(&id, p)| (id, p))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (PlayerId, &mut Player)> {
        self.players.iter_mut().map(|(&id, p)| (id, p))
    }

    /// The person holding `token`.
    pub fn holding(&self, token: &ResumeToken) -> Option<PlayerId> {
        self.players.iter().find(|(_, p)| p.token == *token && !p.is_bot()).map(|(&id, _)| id)
    }

    /// Each seat's id and name, and whether it is held for a resume.
    pub fn roster(&self) -> Vec<RosterLine> {
        self.players
            .iter()
            .map(|(&id, p)| RosterLine { id, name: p.name.clone(), away: p.away_since.is_some() })
            .collect()
    }

    /// When the seats held at `tick` are more than allowed: the one held
    /// longest.
    pub fn held_too_many(&self, tick: u32) -> Option<PlayerId> {
        let held = || self.players.iter().filter_map(|(&id, p)| Some((tick.wrapping_sub(p.away_since?), id)));
        (held().count() > self.max_held).then(|| held().max().map(|(_, id)| id)).flatten()
    }

    /// The seats whose hold has run out at `tick`.
    pub fn expired(&self, tick: u32) -> Vec<PlayerId> {
        self.players
            .iter()
            .filter(|(_, p)| p.away_since.is_some_and(|since| tick.wrapping_sub(since) >= self.resume_ticks))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Each connected seat's last applied input seq, for its frame.
    pub fn acks(&self) -> Vec<(PlayerId, u32)> {
        self.players.iter().filter(|(_, p)| p.away_since.is_none()).map(|(&id, p)| (id, p.last_seq)).collect()
    }

    /// `wanted`, or `wanted (N)` with the smallest free N, cut to fit
    /// [`MAX_NAME_CHARS`]. Names compare case-insensitively: "Ada" and "ada"
    /// would be told apart by nobody.
    pub fn unique_name(&self, wanted: String) -> String {
        let taken = |candidate: &str| {
            let candidate = candidate.to_lowercase();
            self.players.values().any(|p| p.name.to_lowercase() == candidate)
        };
        if !taken(&wanted) {
            return wanted;
        }
        (2..)
            .map(|n| {
                let suffix = format!(" ({n})");
                let room = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
                let stem: String = wanted.chars().take(room).collect();
                format!("{}{suffix}", stem.trim_end())
            })
            .find(|candidate| !taken(candidate))
            .expect("fewer players than numbers: some suffix is free")
    }

    /// A free id. Ids are reused only after wrapping, so a client never
    /// confuses a newcomer with someone who just left. There is always a
    /// free id: `max_players` is far below `u16::MAX`.
    pub fn allocate_id(&mut self) -> PlayerId {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.players.contains_key(&id) {
                return id;
            }
        }
    }

    /// Every seat as a snapshot keeps it.
    pub fn saved(&self) -> Vec<SavedSeat> {
        self.players.iter().map(|(&id, p)| SavedSeat::of(id, p)).collect()
    }

    /// The seats of a snapshot: every person's held for a resume from
    /// `tick`, every bot steered by a new brain from `bots`.
    pub fn restore(&mut self, seats: Vec<SavedSeat>, next_id: PlayerId, tick: u32, bots: &mut FillBots) {
        self.players.clear();
        for seat in seats {
            self.put_back(seat, tick, bots);
        }
        self.next_id = next_id;
    }

    /// A saved seat taken again (a person's held for a resume from
    /// `tick`); ids go on after it, as [`Seats::allocate_id`] left them.
    pub fn put_back(&mut self, seat: SavedSeat, tick: u32, bots: &mut FillBots) {
        let SavedSeat { id, name, color, token, from, bot } = seat;
        let player = if bot {
            Player::bot(name, color, bots.make().1)
        } else {
            Player { away_since: Some(tick), ..Player::person(name, color, token, from) }
        };
        self.players.insert(id, player);
        self.next_id = id.checked_add(1).unwrap_or(1);
    }

    /// Every person's seat held for a resume from `tick` (a restored room:
    /// the whole room is on its way).
    pub fn hold_all(&mut self, tick: u32) {
        for player in self.players.values_mut().filter(|p| !p.is_bot()) {
            player.away_since = Some(tick);
        }
    }
}

/// One seat of a saved room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedSeat {
    id: PlayerId,
    name: String,
    color: u8,
    token: ResumeToken,
    from: Option<AddressKey>,
    /// A fill bot (its token is never matched).
    bot: bool,
}

impl SavedSeat {
    /// Seat `id` as `player` sits in it.
    pub fn of(id: PlayerId, player: &Player) -> Self {
        SavedSeat {
            id,
            name: player.name.clone(),
            color: player.color,
            token: player.token,
            from: player.from,
            bot: player.is_bot(),
        }
    }

    pub fn id(&self) -> PlayerId {
        self.id
    }

    #[cfg(test)]
    pub fn is_bot(&self) -> bool {
        self.bot
    }
}

/// A room as the build before the input log saved it: seats without the
/// fill-bot flag (it saved people only). Read by
/// [`super::WorldSnapshot::decode`].
#[derive(serde::Deserialize)]
pub struct EarlierSnapshot {
    room: String,
    private: bool,
    game: arena_shared::game::Match,
    seats: Vec<EarlierSeat>,
    next_id: PlayerId,
    host_controls: super::hosting::HostControls,
}

#[derive(serde::Deserialize)]
struct EarlierSeat {
    id: PlayerId,
    name: String,
    color: u8,
    token: ResumeToken,
    from: Option<AddressKey>,
}

impl From<EarlierSnapshot> for super::WorldSnapshot {
    fn from(earlier: EarlierSnapshot) -> Self {
        let EarlierSnapshot { room, private, game, seats, next_id, host_controls } = earlier;
        let seats = seats
            .into_iter()
            .map(|EarlierSeat { id, name, color, token, from }| SavedSeat {
                id,
                name,
                color,
                token,
                from,
                bot: false,
            })
            .collect();
        super::WorldSnapshot { room, private, game, seats, next_id, host_controls }
    }
}
