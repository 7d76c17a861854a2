//! Every message that crosses the wire, in one place.
//!
//! Messages are bincode-encoded with [`crate::codec`]; one WebSocket binary
//! message carries exactly one [`ClientMsg`] or [`ServerMsg`]. The first
//! message each way is the handshake (`Hello` / `Welcome` or `Rejected`).

use serde::{Deserialize, Serialize};

pub use crate::sim::I24;
pub use crate::sim::INPUT_RATE_HZ;
use crate::sim::{Body, Input, Platform, Vec2q};

// ---------------------------------------------------------------------------
// Versions and limits
// ---------------------------------------------------------------------------

/// Bumped on every incompatible change to these types or to `sim`.
pub const PROTOCOL_VERSION: u16 = 11;

/// The player colours as `0xRRGGBB`, by index: what the game draws and
/// what the join screen offers (`web/index.html`; a test compares them).
pub const PALETTE: [u32; 10] =
    [0xff6b6b, 0xffa94d, 0xffd43b, 0x69db7c, 0x38d9a9, 0x4dabf7, 0x748ffc, 0xb197fc, 0xf783ac, 0xe9ecef];

/// How many player colours there are; a `Hello` picks one by index.
pub const COLORS: u8 = PALETTE.len() as u8;

/// Longest player name, in characters.
pub const MAX_NAME_CHARS: usize = 16;

/// Most players a room can hold, whatever `--max-players` says; also the cap on
/// every player list a decoder accepts.
pub const MAX_PLAYERS: usize = 512;

/// Longest rejection or close reason, in bytes (a close frame allows 123).
pub const MAX_REASON_BYTES: usize = 120;

/// Largest message a client may send. Real ones are under 40 bytes.
pub const MAX_CLIENT_MSG_BYTES: usize = 256;

/// Largest message the server sends (a full frame of `MAX_PLAYERS`).
pub const MAX_SERVER_MSG_BYTES: usize = 64 * 1024;

/// Identifies a player's seat across sockets: 128 random bits, known only
/// to the server and that player's client.
pub type ResumeToken = [u8; 16];

/// Longest room code a decoder accepts (the server makes 10-character ones).
pub const MAX_ROOM_CODE_CHARS: usize = 16;
/// The longest node URL a `Moved` may name.
pub const MAX_URL_BYTES: usize = 256;

/// Identifies a player within a room for as long as it is connected.
pub type PlayerId = u16;

// ---------------------------------------------------------------------------
// Client -> server
// ---------------------------------------------------------------------------

/// What a client sends. `<&str>::from(&msg)` is its variant's name.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
pub enum ClientMsg {
    /// Handshake: must be the first message, exactly once. `resume` is the
    /// token of an earlier `Welcome` in the same room: within the resume
    /// window it gets back that player (same id, name and place).
    /// `color` is an index below [`COLORS`].
    Hello { version: u16, name: String, color: u8, room: RoomRequest, resume: Option<ResumeToken> },
    /// One input, applied as one simulation step. `seq` rises by at least one
    /// per input so the server can ack it in frames.
    Input { seq: u32, input: Input },
    /// Application-level ping; the server echoes `client_time_us` in `Pong`.
    Ping { client_time_us: u64 },
    /// The client lost a frame's baseline: the next frame is a full view.
    Resync,
    /// Several inputs in one message (1 to [`MAX_INPUTS_PER_MSG`]), the
    /// first with `seq` and each next one with the next seq: half the
    /// messages for a client that sends two per frame.
    Inputs { seq: u32, inputs: Vec<Input> },
    /// A watcher's camera: follow player `id` (0: whoever leads the
    /// round). Frames then carry that player as `you`. Only watchers send it.
    Follow { id: PlayerId },
    /// The host of a private room runs it; anyone else is answered with a
    /// [`ServerMsg::Refused`]. Only players send it (a watcher is closed).
    Host(HostCommand),
}

/// What the host of a private room may do ([`ClientMsg::Host`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCommand {
    /// The round length and points to win, from the next round on.
    SetRules(Rules),
    /// No new players (`true`), or open again. Seats held for a resume and
    /// watchers still come in.
    Lock(bool),
    /// Removes a player: its connection closes with [`close::KICKED`], and
    /// its address cannot join or watch the room for [`KICK_BAN_SECS`].
    Kick { id: PlayerId },
    /// A player becomes a watcher: its connection closes with
    /// [`close::TO_WATCHERS`], and its page comes back watching.
    ToWatchers { id: PlayerId },
    /// Ends the round now and starts the next (with the rules set).
    NextRound,
}

/// How long a kicked player's address is kept out of the room.
pub const KICK_BAN_SECS: u32 = 600;

/// A private room's rules, set by its host.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long a round lasts, in seconds: within [`Rules::ROUND_SECS`].
    pub round_secs: u16,
    /// A round also ends when someone has this many points (0: it never
    /// does): at most [`Rules::MAX_POINTS`].
    pub points_to_win: u16,
}

impl Rules {
    pub const ROUND_SECS: std::ops::RangeInclusive<u16> = 30..=900;
    pub const MAX_POINTS: u16 = 99;

    /// Whether a host may set these.
    pub fn in_bounds(&self) -> bool {
        Rules::ROUND_SECS.contains(&self.round_secs) && self.points_to_win <= Rules::MAX_POINTS
    }
}

/// Who runs a room and how it is set ([`Welcome::hosting`],
/// [`ServerMsg::Hosting`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hosting {
    /// The host: who created the private room, or after it left, whoever
    /// has been in it longest. 0: nobody (a public room, or an empty one).
    pub host: PlayerId,
    /// The rules set: the round being played may have started under others.
    pub rules: Rules,
    pub locked: bool,
}

impl Hosting {
    /// A room nobody hosts (a public one), with rounds of `round_secs`.
    pub fn nobody(round_secs: u16) -> Self {
        Hosting { host: 0, rules: Rules { round_secs, points_to_win: 0 }, locked: false }
    }
}

/// Why a [`HostCommand`] was refused.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandRefusal {
    /// Only the room's host runs it.
    NotHost,
    /// Public rooms have no host.
    PublicRoom,
    /// No such player in the room (it may have just left).
    NoSuchPlayer,
    /// A host does not kick itself.
    Yourself,
    /// Rules outside [`Rules::ROUND_SECS`] or [`Rules::MAX_POINTS`].
    OutOfRange,
    /// The next round was started less than [`MIN_SECS_BETWEEN_NEXT_ROUNDS`]
    /// ago: try again in this many seconds.
    TooSoon { retry_after_secs: u16 },
}

/// The least time between two of a host's `NextRound`s: each ends a
/// round, and every round is recorded.
pub const MIN_SECS_BETWEEN_NEXT_ROUNDS: u32 = 10;

impl CommandRefusal {
    /// What the page tells the player.
    pub fn message(self) -> String {
        match self {
            CommandRefusal::NotHost => "only the room's host can do that".to_owned(),
            CommandRefusal::PublicRoom => "public rooms have no host".to_owned(),
            CommandRefusal::NoSuchPlayer => "that player is not in the room any more".to_owned(),
            CommandRefusal::Yourself => "you cannot kick yourself; leave the room instead".to_owned(),
            CommandRefusal::OutOfRange => format!(
                "rounds last {} to {} s, and points to win are 0 (none) to {}",
                Rules::ROUND_SECS.start(),
                Rules::ROUND_SECS.end(),
                Rules::MAX_POINTS
            ),
            CommandRefusal::TooSoon { retry_after_secs } => format!(
                "a new round can start once every {MIN_SECS_BETWEEN_NEXT_ROUNDS} s; try again in {retry_after_secs} s"
            ),
        }
    }
}

/// A recorded round's id: `GET /api/replays/<32 hex digits>`.
pub type ReplayId = [u8; 16];

/// `id` as the 32 hex digits its URLs use.
pub fn replay_id_hex(id: &ReplayId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Most inputs one `Inputs` message may carry.
pub const MAX_INPUTS_PER_MSG: usize = 4;

/// Which room a `Hello` asks for.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub enum RoomRequest {
    /// The public room with the most players that has space, or a new one.
    #[default]
    Quick,
    /// A new private room, reachable only through its code.
    CreatePrivate,
    /// The room with this code (an invite link's `/r/<code>`).
    Join { code: String },
    /// Watch the room with this code without taking a seat (`/r/<code>?watch`):
    /// the `Welcome` says `watching`, and frames follow the player the
    /// watcher asks for with `Follow` (the leader until then).
    Watch { code: String },
}

impl RoomRequest {
    /// The room code this request names, if it names one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RoomRequest::Join { code } | RoomRequest::Watch { code } => Some(code),
            RoomRequest::Quick | RoomRequest::CreatePrivate => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Server -> client
// ---------------------------------------------------------------------------

/// What the server sends. `<&str>::from(&msg)` is its variant's name.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
pub enum ServerMsg {
    /// Handshake accepted.
    Welcome(Welcome),
    /// Handshake refused; a close frame follows.
    Rejected(Rejection),
    /// The world after one tick, sent to every player every tick.
    Frame(Frame),
    /// A player joined (also sent for yourself, after `Welcome`).
    Joined(PlayerInfo),
    /// A player left.
    Left { id: PlayerId },
    /// A player's socket dropped; the seat is held for the resume window
    /// (the player is shown as reconnecting, and does not move on its own).
    Away { id: PlayerId },
    /// An away player is back.
    Back { id: PlayerId },
    /// Answer to `ClientMsg::Ping`.
    Pong { client_time_us: u64 },
    /// A player left the platform (sent to everyone, with the new scores).
    KnockedOut(Knockout),
    /// The round changed phase: it ended (standings for the podium) or a
    /// new one started (every score is back to 0).
    Round(RoundInfo),
    /// This room is played on another node of the cluster: connect there
    /// and send the same `Hello` (name, colour, resume token) for `room`.
    /// Answers a `Hello`, or comes mid-game when the room moves (its node
    /// drains); a close with [`close::MOVED`] follows.
    Moved(Moved),
    /// How many watch the room now (sent to everyone when it changes).
    Watchers { count: u16 },
    /// The room's host or settings changed.
    Hosting(Hosting),
    /// Your [`HostCommand`] was refused (only you are told).
    Refused(CommandRefusal),
    /// The round that just ended was recorded: `/replay/<hex id>` plays it
    /// (sent at the podium; private rooms' rounds are found only this way).
    Replay { id: ReplayId },
}

/// Where a room is played now: the node's base URL (`https://host:port`,
/// its WebSocket is `<url>/ws`) and the room's code.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub url: String,
    pub room: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub version: u16,
    /// Your own player's id (0 for a watcher, who has none).
    pub you: PlayerId,
    /// You watch: no seat, no inputs; each frame's `you` is the player
    /// your camera follows.
    pub watching: bool,
    /// How many watch the room (you included, if you do).
    pub watchers: u16,
    /// Server ticks per second; frames arrive at this rate.
    pub tick_rate: u16,
    /// The tick the next frame will follow.
    pub tick: u32,
    /// Everyone already in the room (not including you).
    pub players: Vec<PlayerInfo>,
    /// The room you are in: its code (for `/r/<code>` links) and whether
    /// only that link leads to it.
    pub room: String,
    pub private: bool,
    /// Send this in a later `Hello` to get this player back after a drop.
    pub resume: ResumeToken,
    /// Whether this `Welcome` gave back a held seat.
    pub resumed: bool,
    /// Your score this round (not 0 after a resume).
    pub score: i32,
    /// The platform this room plays on (its size suits the room's capacity).
    pub platform: Platform,
    /// The round in progress.
    pub round: RoundInfo,
    /// Who hosts the room (a private one) and its settings.
    pub hosting: Hosting,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PlayerInfo {
    pub id: PlayerId,
    pub name: String,
    /// Below [`COLORS`].
    pub color: u8,
    /// This round's score.
    pub score: i32,
    /// Played by the server to fill the room (`--fill-bots`), not a person.
    pub bot: bool,
}

/// Where a player is in the knock-out cycle.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Life {
    /// On the platform.
    #[default]
    Alive,
    /// Just (re)spawned: on the platform, passing through others.
    Protected,
    /// Left the platform; the fall is being drawn. Inputs do nothing.
    Falling,
    /// Gone until the respawn.
    Out,
}

/// `victim` left the platform. `by` is credited if it touched the victim
/// within the credit window; otherwise the victim lost a point. Scores are
/// the new ones (`by_score` is 0 without `by`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knockout {
    pub victim: PlayerId,
    pub victim_score: i32,
    pub by: Option<PlayerId>,
    pub by_score: i32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RoundInfo {
    /// Counts from 1 in each room.
    pub number: u32,
    pub phase: RoundPhase,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum RoundPhase {
    /// Knockouts score until tick `ends_at`.
    Playing { ends_at: u32 },
    /// The round is over: the podium shows `standings` (best first) until
    /// tick `next_at`, when scores reset and the next round starts.
    Podium { standings: Vec<Standing>, next_at: u32 },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub id: PlayerId,
    pub score: i32,
    pub knockouts: u32,
}

/// One tick for one player: your own state in full, and what changed
/// about the others you can see since an earlier frame (the baseline).
///
/// The others a client knows form its *view*: id → quantised position and
/// life. A frame's view is its baseline's view (an empty one for baseline
/// 0), without `gone`, with `others` applied. Positions travel at
/// [`POS_QUANTUM`] precision, as deltas from the baseline's (from 0 for a
/// player new to the view); ids as gaps from the previous one.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tick: u32,
    /// The last input `seq` the server applied for the receiving player
    /// (0 before any input).
    pub ack_seq: u32,
    /// How many ticks before `tick` the frame this one's view builds on
    /// was (a byte, where the tick itself would take up to five); 0: a
    /// full view. See [`Frame::baseline_tick`].
    pub baseline_age: u32,
    /// The receiving player, exactly: reconciliation needs position,
    /// velocity and cooldown bit for bit.
    pub you: PlayerState,
    /// Others that entered the view or changed since the baseline, by id.
    pub others: Vec<OtherUpdate>,
    /// Others that left the view (or the room) since the baseline, by id.
    pub gone: Vec<PlayerId>,
    /// Others close enough to touch the receiving player soon, exactly and
    /// with the stick they last used, by id: what its client predicts
    /// forward with its own player, so that bumps happen in one timeline.
    /// Their positions build on this frame's view ([`near_updates`],
    /// [`near_bodies`]).
    pub near: Vec<NearUpdate>,
}

impl Frame {
    /// The tick of the frame this one's view builds on (`None`: a full
    /// view, or an age past the tick, which fits no kept view).
    pub fn baseline_tick(&self) -> Option<u32> {
        if self.baseline_age == 0 { None } else { self.tick.checked_sub(self.baseline_age) }
    }
}

/// At most this many others are sent as [`NearUpdate`]s, the nearest first.
pub const MAX_NEAR: usize = 6;

/// Another player within [`NEAR_RADIUS`] of the receiver, standing on the
/// platform, as the client predicts it: its exact body and its last input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearBody {
    pub id: PlayerId,
    pub body: Body,
    pub input: Input,
}

/// A [`NearBody`] on the wire, in about 11 bytes instead of 25. The
/// position is the frame's view's (which the server keeps current for the
/// players near you) plus the remainder below a quantum: a byte an axis.
/// The velocity is exact in three bytes an axis (no body is faster than
/// 2^23 fixed units a second). The dash cooldown and the dash bit are left
/// out: a neighbour's dash is never predicted.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearUpdate {
    /// This id minus the previous one's (the first: minus 0).
    pub id_gap: u16,
    /// Position minus the view's for this player, in fixed-point units (the
    /// whole position if the view lacks the player).
    pub dx: i32,
    pub dy: i32,
    pub vel: [I24; 2],
    pub stick: [i8; 2],
}

/// Encodes `bodies` (by id) against `view`, the view the frame they go in
/// makes: see [`NearUpdate`].
pub fn near_updates(
    view: &[(PlayerId, Seen)],
    bodies: impl IntoIterator<Item = NearBody>,
) -> Vec<NearUpdate> {
    let mut last_id = 0;
    bodies
        .into_iter()
        .map(|near| {
            let base = view_pos(view, near.id);
            let id_gap = near.id - last_id;
            last_id = near.id;
            let body = near.body;
            NearUpdate {
                id_gap,
                dx: body.pos.x.wrapping_sub(base.x),
                dy: body.pos.y.wrapping_sub(base.y),
                vel: [I24::saturating(body.vel.x), I24::saturating(body.vel.y)],
                stick: [near.input.x, near.input.y],
            }
        })
        .collect()
}

/// Decodes a frame's `near` into `bodies` (cleared first) with `view`, the
/// view that frame made. `false`: the ids do not rise, or a position
/// overflows; `bodies` is then empty.
pub fn near_bodies(view: &[(PlayerId, Seen)], near: &[NearUpdate], bodies: &mut Vec<NearBody>) -> bool {
    bodies.clear();
    let mut id: PlayerId = 0;
    for (i, update) in near.iter().enumerate() {
        let next = id.checked_add(update.id_gap).filter(|_| i == 0 || update.id_gap > 0);
        let base = next.map(|next| view_pos(view, next));
        let pos = base.and_then(|base| {
            Some(Vec2q::new(base.x.checked_add(update.dx)?, base.y.checked_add(update.dy)?))
        });
        let (Some(next), Some(pos)) = (next, pos) else {
            bodies.clear();
            return false;
        };
        id = next;
        let vel = Vec2q::new(update.vel[0].get(), update.vel[1].get());
        let input = Input::stick(update.stick[0], update.stick[1]);
        bodies.push(NearBody { id, body: Body { pos, vel, dash_cooldown: 0 }, input });
    }
    true
}

/// Where `view` has player `id`, in fixed-point units (the origin if not).
fn view_pos(view: &[(PlayerId, Seen)], id: PlayerId) -> Vec2q {
    match view.binary_search_by_key(&id, |(known, _)| *known) {
        Ok(at) => Vec2q::new(i32::from(view[at].1.x) * POS_QUANTUM, i32::from(view[at].1.y) * POS_QUANTUM),
        Err(_) => Vec2q::default(),
    }
}

/// How close (world units, centre to centre) another player must be to be
/// sent as a [`NearUpdate`]: a dash (950 units/s) and a run (320) closing
/// on each other touch within 0.16 s from this far: a round trip at 100 ms
/// plus a frame or two.
pub const NEAR_RADIUS: i32 = 240;

/// Fixed-point units per quantum of the others' positions: a quarter of a
/// world unit (a quarter pixel at zoom 1), finer than anything drawn.
pub const POS_QUANTUM: i32 = 64;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherUpdate {
    /// This id minus the previous update's (the first: minus 0).
    pub id_gap: u16,
    /// Position change in quanta since the baseline (for a player new to
    /// the view: the position itself).
    pub dx: i16,
    pub dy: i16,
    pub life: Life,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerState {
    pub id: PlayerId,
    pub body: Body,
    pub life: Life,
}

/// What a client knows of another player: position in quanta, and life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    pub x: i16,
    pub y: i16,
    pub life: Life,
}

impl Seen {
    /// The view's form of a player's state.
    pub fn of(state: &PlayerState) -> Self {
        let q = |v: i32| {
            (v + POS_QUANTUM / 2).div_euclid(POS_QUANTUM).clamp(i32::from(i16::MIN), i32::from(i16::MAX))
                as i16
        };
        Seen { x: q(state.body.pos.x), y: q(state.body.pos.y), life: state.life }
    }

    /// Position in world units, for drawing.
    pub fn to_units(self) -> (f32, f32) {
        let scale = POS_QUANTUM as f32 / crate::sim::FIXED_ONE as f32;
        (f32::from(self.x) * scale, f32::from(self.y) * scale)
    }
}

/// A view: the others a client knows, sorted by id.
pub type View = Vec<(PlayerId, Seen)>;

/// Applies a frame's `others` and `gone` to its baseline's view: one merge
/// by id (the server builds its copy of the view the same way). `None`:
/// the frame does not fit that view (an id past `u16::MAX`, an id twice):
/// the client should ask for a full view.
pub fn apply_view(baseline: &[(PlayerId, Seen)], frame: &Frame) -> Option<View> {
    let mut view = Vec::new();
    apply_view_into(baseline, frame, &mut view).then_some(view)
}

/// [`apply_view`] into `view` (cleared first), so a caller that keeps views
/// can reuse their memory. `false`: the frame does not fit (see there);
/// `view` is then unspecified.
pub fn apply_view_into(baseline: &[(PlayerId, Seen)], frame: &Frame, view: &mut View) -> bool {
    view.clear();
    // The updates' ids, from their gaps: strictly rising, within u16.
    let mut id: PlayerId = 0;
    for (i, update) in frame.others.iter().enumerate() {
        if i > 0 && update.id_gap == 0 {
            return false;
        }
        let Some(next) = id.checked_add(update.id_gap) else { return false };
        id = next;
    }
    let mut updates = frame
        .others
        .iter()
        .scan(0, |id: &mut PlayerId, update| {
            *id += update.id_gap;
            Some((*id, update))
        })
        .peekable();
    let absolute = |u: &OtherUpdate| Seen { x: u.dx, y: u.dy, life: u.life };
    // Exact: a server keeps two views a player, and doubling would keep
    // half of each empty.
    view.reserve_exact(baseline.len() + frame.others.len());
    let mut g = 0;
    for &(id, old) in baseline {
        // Players new to the view come in between, in id order.
        while let Some((new, update)) = updates.next_if(|&(new, _)| new < id) {
            view.push((new, absolute(update)));
        }
        while g < frame.gone.len() && frame.gone[g] < id {
            g += 1;
        }
        let gone = g < frame.gone.len() && frame.gone[g] == id;
        match updates.next_if(|&(updated, _)| updated == id) {
            // A player that left and came back is new again.
            Some((_, update)) if gone => view.push((id, absolute(update))),
            Some((_, update)) => view.push((
                id,
                Seen {
                    x: old.x.wrapping_add(update.dx),
                    y: old.y.wrapping_add(update.dy),
                    life: update.life,
                },
            )),
            None if gone => {}
            None => view.push((id, old)),
        }
    }
    view.extend(updates.map(|(id, update)| (id, absolute(update))));
    true
}

// ---------------------------------------------------------------------------
// Rejections and close codes
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    /// A sentence a person can read, shown by the client as is.
    pub message: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    VersionMismatch {
        server: u16,
        client: u16,
    },
    ServerFull {
        max_players: u16,
    },
    BadName,
    ShuttingDown,
    /// No room has that code (never made, or closed when it emptied).
    RoomNotFound,
    /// A new room was needed and the server hosts all it may.
    RoomsFull {
        max_rooms: u16,
    },
    /// This network tried too many room codes that named no room; joining
    /// by code works again after this many seconds.
    TooManyGuesses {
        retry_after_secs: u16,
    },
    /// This network already has `max` private rooms open.
    TooManyRooms {
        max: u16,
    },
    /// Cluster mode: the nodes' shared store does not answer (or the
    /// room's node just vanished), so nobody can say where the room is
    /// played; it will be known again within this many seconds.
    Unavailable {
        retry_after_secs: u16,
    },
    /// The room has as many watchers as it takes (`--max-watchers`).
    WatchersFull {
        max: u16,
    },
    /// The host locked the room: no new players for now.
    RoomLocked,
    /// The host removed this address's player: back in `retry_after_secs`.
    Banned {
        retry_after_secs: u16,
    },
}

impl RejectReason {
    /// The close code sent after this rejection.
    pub fn close_code(self) -> u16 {
        match self {
            RejectReason::VersionMismatch { .. } => close::VERSION_MISMATCH,
            RejectReason::ServerFull { .. } => close::SERVER_FULL,
            RejectReason::BadName => close::BAD_NAME,
            RejectReason::ShuttingDown => close::GOING_AWAY,
            RejectReason::RoomNotFound => close::ROOM_NOT_FOUND,
            RejectReason::RoomsFull { .. } => close::SERVER_FULL,
            RejectReason::TooManyGuesses { .. } | RejectReason::TooManyRooms { .. } => close::RATE_LIMITED,
            RejectReason::Unavailable { .. } => close::TRY_AGAIN_LATER,
            RejectReason::WatchersFull { .. } => close::SERVER_FULL,
            RejectReason::RoomLocked => close::ROOM_LOCKED,
            RejectReason::Banned { .. } => close::KICKED,
        }
    }
}

impl Rejection {
    pub fn new(reason: RejectReason) -> Self {
        let message = match reason {
            RejectReason::VersionMismatch { server, client } => format!(
                "this client speaks protocol v{client} but the server speaks v{server}; reload the page"
            ),
            RejectReason::ServerFull { max_players } => {
                format!("the server is full (its limit is {max_players}); try again later")
            }
            RejectReason::BadName => {
                format!(
                    "names must be 1 to {MAX_NAME_CHARS} visible characters, without invisible or control ones"
                )
            }
            RejectReason::ShuttingDown => "the server is shutting down".to_owned(),
            RejectReason::RoomNotFound => "this room does not exist any more; create a new one".to_owned(),
            RejectReason::RoomsFull { max_rooms } => {
                format!("the server is full: all {max_rooms} of its rooms are in use; try again later")
            }
            RejectReason::TooManyGuesses { retry_after_secs } => format!(
                "too many links to rooms that do not exist from your network; try again in {retry_after_secs} s"
            ),
            RejectReason::TooManyRooms { max } => format!(
                "your network already has {max} private rooms open; play in one of them or wait for one to close"
            ),
            RejectReason::WatchersFull { max } => {
                format!("this room already has {max} watchers, as many as it takes; try again later")
            }
            RejectReason::RoomLocked => "the host has locked this room; ask them to open it".to_owned(),
            RejectReason::Banned { retry_after_secs } => format!(
                "the host removed you from this room; you can come back in {} min",
                retry_after_secs.div_ceil(60)
            ),
            RejectReason::Unavailable { retry_after_secs } => {
                format!(
                    "the game's servers cannot find your room just now; retrying within {retry_after_secs} s"
                )
            }
        };
        Rejection { reason, message }
    }
}

/// WebSocket close codes the server uses. 1xxx are RFC 6455's; 4xxx are arena's.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    /// A text message: arena speaks binary only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Never sent: what a client reports when the socket ended without a close frame.
    pub const ABNORMAL: u16 = 1006;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// RFC 6455's "try again later": nothing is wrong with the request.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Bytes that do not decode, or a message out of order.
    pub const PROTOCOL_ERROR: u16 = 4000;
    pub const VERSION_MISMATCH: u16 = 4001;
    pub const SERVER_FULL: u16 = 4002;
    pub const BAD_NAME: u16 = 4003;
    /// The client stayed behind on frames for too long.
    pub const TOO_SLOW: u16 = 4004;
    /// No `Hello` in time, or nothing at all heard for the idle timeout.
    pub const TIMEOUT: u16 = 4005;
    /// More messages than the server's rate budget allows (control frames count).
    pub const RATE_LIMITED: u16 = 4006;
    /// The invite link's room does not exist (any more).
    pub const ROOM_NOT_FOUND: u16 = 4007;
    /// The same player connected again elsewhere (its resume token was used).
    pub const RESUMED_ELSEWHERE: u16 = 4008;
    /// The room is played on another node: a `Moved` names it.
    pub const MOVED: u16 = 4009;
    /// An operator removed the player (the seat is gone): do not rejoin by
    /// yourself.
    pub const KICKED: u16 = 4010;
    pub const ROOM_LOCKED: u16 = 4011;
    pub const TO_WATCHERS: u16 = 4012;

    /// Every code the server may send (all of the above but `ABNORMAL`,
    /// which only a client reports).
    pub const SENT: [u16; 18] = [
        NORMAL,
        GOING_AWAY,
        UNSUPPORTED_DATA,
        MESSAGE_TOO_BIG,
        TRY_AGAIN_LATER,
        PROTOCOL_ERROR,
        VERSION_MISMATCH,
        SERVER_FULL,
        BAD_NAME,
        TOO_SLOW,
        TIMEOUT,
        RATE_LIMITED,
        ROOM_NOT_FOUND,
        RESUMED_ELSEWHERE,
        MOVED,
        KICKED,
        ROOM_LOCKED,
        TO_WATCHERS,
    ];
}

/// Checks a requested player name and returns the form the room shows:
/// NFC-normalised, trimmed, inner runs of spaces collapsed to one.
///
/// Refused: names over [`MAX_NAME_CHARS`]; control, format (zero-width
/// spaces, joiners, the BOM, bidirectional overrides), private-use and
/// unassigned characters; spaces other than U+0020 and line breaks; more than
/// [`MAX_COMBINING_MARKS`] combining marks on one character; and names with
/// nothing visible (only spaces, marks or blank letters such as the Hangul
/// fillers), which would render blank.
pub fn validate_name(name: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;

    let normalised: String = name.nfc().collect();
    let mut clean = String::with_capacity(normalised.len());
    for word in normalised.split(' ').filter(|w| !w.is_empty()) {
        if !clean.is_empty() {
            clean.push(' ');
        }
        clean.push_str(word);
    }
    let chars = clean.chars().count();
    let mut marks_in_a_row = 0;
    let mut visible = false;
    for c in clean.chars() {
        match char_kind(c) {
            CharKind::Forbidden => return None,
            CharKind::Mark => {
                marks_in_a_row += 1;
                if marks_in_a_row > MAX_COMBINING_MARKS {
                    return None;
                }
            }
            CharKind::Visible => {
                visible = true;
                marks_in_a_row = 0;
            }
            CharKind::Space => marks_in_a_row = 0,
        }
    }
    ((1..=MAX_NAME_CHARS).contains(&chars) && visible).then_some(clean)
}

/// Combining marks allowed on one character (accents stack at most twice;
/// "Zalgo" text spills over the names around it).
pub const MAX_COMBINING_MARKS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharKind {
    Visible,
    Space,
    Mark,
    Forbidden,
}

/// Letters that draw nothing: the Hangul fillers and the blank braille cell.
const BLANK_LETTERS: [char; 5] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}'];

fn char_kind(c: char) -> CharKind {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};

    if c == ' ' {
        return CharKind::Space;
    }
    if BLANK_LETTERS.contains(&c) {
        return CharKind::Forbidden;
    }
    match c.general_category() {
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark => CharKind::Mark,
        G::SpaceSeparator
        | G::LineSeparator
        | G::ParagraphSeparator
        | G::Control
        | G::Format
        | G::Surrogate
        | G::PrivateUse
        | G::Unassigned => CharKind::Forbidden,
        _ => CharKind::Visible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_the_server_sends_is_listed_once_and_every_rejection_uses_one() {
        let mut codes = close::SENT.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), close::SENT.len(), "no code listed twice");
        assert!(!codes.contains(&close::ABNORMAL), "1006 is never sent");
        let reasons = [
            RejectReason::VersionMismatch { server: 1, client: 2 },
            RejectReason::ServerFull { max_players: 1 },
            RejectReason::BadName,
            RejectReason::ShuttingDown,
            RejectReason::RoomNotFound,
            RejectReason::RoomsFull { max_rooms: 1 },
            RejectReason::TooManyGuesses { retry_after_secs: 1 },
            RejectReason::TooManyRooms { max: 1 },
            RejectReason::Unavailable { retry_after_secs: 1 },
            RejectReason::WatchersFull { max: 1 },
            RejectReason::RoomLocked,
            RejectReason::Banned { retry_after_secs: 1 },
        ];
        for reason in reasons {
            assert!(close::SENT.contains(&reason.close_code()), "{reason:?} closes with a listed code");
        }
    }

    fn near_body(id: PlayerId, pos: (i32, i32), vel: (i32, i32), stick: (i8, i8)) -> NearBody {
        let body = Body { pos: Vec2q::new(pos.0, pos.1), vel: Vec2q::new(vel.0, vel.1), dash_cooldown: 0 };
        NearBody { id, body, input: Input::stick(stick.0, stick.1) }
    }

    #[test]
    fn near_bodies_travel_exactly_in_a_few_bytes_on_the_frames_view() {
        let bodies = [
            near_body(3, (12_345, -67_890), (81_919, -409_600), (127, -127)),
            near_body(9, (-153_600, 153_599), (0, 1), (0, 0)),
            near_body(40, (100, -31), (-1, 0), (-64, 5)),
        ];
        let state = |b: &NearBody| PlayerState { id: b.id, body: b.body, life: Life::Alive };
        // The view has each one where it is, as the server keeps it.
        let view: View = bodies.iter().map(|b| (b.id, Seen::of(&state(b)))).collect();
        let updates = near_updates(&view, bodies);
        let mut decoded = Vec::new();
        assert!(near_bodies(&view, &updates, &mut decoded));
        assert_eq!(decoded, bodies);
        for update in &updates {
            // id gap, a byte for each remainder, 3 + 3 for the velocity, 2 for the stick.
            let bytes = crate::codec::encoded_len(update);
            assert_eq!(bytes, 11, "{update:?}");
        }

        // A player the view lacks (or has elsewhere) still arrives exactly,
        // in more bytes.
        let stale: View = vec![(3, Seen { x: 0, y: 0, life: Life::Alive })];
        let updates = near_updates(&stale, bodies);
        assert!(near_bodies(&stale, &updates, &mut decoded));
        assert_eq!(decoded, bodies);
        assert!(crate::codec::encoded_len(&updates[1]) > 11);
    }

    #[test]
    fn near_updates_that_do_not_fit_decode_to_nobody() {
        let update = NearUpdate { id_gap: 2, dx: 0, dy: 0, vel: [I24::default(); 2], stick: [0, 0] };
        let mut bodies = vec![near_body(1, (0, 0), (0, 0), (0, 0))];
        let twice = [update, NearUpdate { id_gap: 0, ..update }];
        assert!(!near_bodies(&[], &twice, &mut bodies), "an id twice");
        assert!(bodies.is_empty());
        let overflow = [NearUpdate { id_gap: u16::MAX, ..update }, NearUpdate { id_gap: 1, ..update }];
        assert!(!near_bodies(&[], &overflow, &mut bodies), "an id past u16::MAX");
        let view: View = vec![(2, Seen { x: i16::MAX, y: 0, life: Life::Alive })];
        let far = [NearUpdate { dx: i32::MAX, ..update }];
        assert!(!near_bodies(&view, &far, &mut bodies), "a position past i32");
        assert!(near_bodies(&view, &[update], &mut bodies) && bodies.len() == 1);
    }

    #[test]
    fn a_frame_names_its_baseline_by_age() {
        let frame = |tick, baseline_age| Frame {
            tick,
            ack_seq: 0,
            baseline_age,
            you: PlayerState { id: 1, body: Body::default(), life: Life::Alive },
            others: Vec::new(),
            gone: Vec::new(),
            near: Vec::new(),
        };
        assert_eq!(frame(70_000, 0).baseline_tick(), None, "a full view");
        assert_eq!(frame(70_000, 1).baseline_tick(), Some(69_999));
        assert_eq!(frame(3, 4).baseline_tick(), None, "before the first tick: no view has it");
    }

    #[test]
    fn names_that_render_are_accepted_in_their_normal_form() {
        let cases: [(&str, &str, &str); 9] = [
            ("  ada ", "ada", "surrounding spaces are trimmed"),
            ("ada   lovelace", "ada lovelace", "inner runs of spaces collapse"),
            ("Zoë 🚀", "Zoë 🚀", "letters and emoji from anywhere"),
            ("Zoe\u{308}", "Zoë", "a decomposed ë is stored composed (NFC)"),
            ("李小龍", "李小龍", "CJK"),
            ("❤\u{FE0F}", "❤\u{FE0F}", "an emoji with its presentation selector"),
            ("a\u{301}\u{302}", "\u{e1}\u{302}", "two stacked accents, the first composed"),
            ("xxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxx", "exactly the longest name"),
            ("  _-_  ", "_-_", "punctuation is visible"),
        ];
        for (input, want, why) in cases {
            assert_eq!(validate_name(input).as_deref(), Some(want), "{why}: {input:?}");
        }
    }

    #[test]
    fn blank_invisible_spoofing_and_oversized_names_are_refused() {
        let cases: [(&str, &str); 16] = [
            ("", "empty"),
            ("   ", "only spaces"),
            ("\u{200B}\u{200B}", "only zero-width spaces"),
            ("\u{FEFF}", "a byte-order mark"),
            ("\u{3164}\u{3164}", "Hangul fillers"),
            ("\u{115F}\u{1160}", "Hangul choseong/jungseong fillers"),
            ("\u{2800}", "the blank braille cell"),
            ("ada\u{202E}nimda", "a right-to-left override"),
            ("\u{2066}ada", "a bidi isolate"),
            ("a\u{200D}b", "a zero-width joiner between letters"),
            ("a\u{7}b", "a control character"),
            ("a\u{3000}b", "an ideographic space"),
            ("a\u{2028}b", "a line separator"),
            ("\u{E000}x", "private use"),
            ("z\u{300}\u{301}\u{302}", "three combining marks (Zalgo)"),
            ("xxxxxxxxxxxxxxxxx", "17 characters"),
        ];
        for (input, why) in cases {
            assert_eq!(validate_name(input), None, "{why} should be refused: {input:?}");
        }
        assert_eq!(validate_name("\u{301}"), None, "a lone combining mark draws nothing of its own");
    }

    #[test]
    fn every_rejection_has_its_close_code_and_a_short_message() {
        for (reason, code) in [
            (RejectReason::VersionMismatch { server: 1, client: 9 }, close::VERSION_MISMATCH),
            (RejectReason::ServerFull { max_players: 500 }, close::SERVER_FULL),
            (RejectReason::BadName, close::BAD_NAME),
            (RejectReason::ShuttingDown, close::GOING_AWAY),
            (RejectReason::RoomNotFound, close::ROOM_NOT_FOUND),
            (RejectReason::RoomsFull { max_rooms: 1000 }, close::SERVER_FULL),
            (RejectReason::TooManyGuesses { retry_after_secs: u16::MAX }, close::RATE_LIMITED),
            (RejectReason::TooManyRooms { max: u16::MAX }, close::RATE_LIMITED),
            (RejectReason::Unavailable { retry_after_secs: u16::MAX }, close::TRY_AGAIN_LATER),
            (RejectReason::WatchersFull { max: u16::MAX }, close::SERVER_FULL),
        ] {
            let rejection = Rejection::new(reason);
            assert!(rejection.message.len() <= MAX_REASON_BYTES, "should fit a close frame: {rejection:?}");
            assert_eq!(reason.close_code(), code, "{reason:?} should close with {code}");
        }
    }
}
