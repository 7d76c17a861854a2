//! The room's game state and what one tick does to it.
//!
//! Nothing here touches a socket or a timer: the room task calls [`World::tick`]
//! at the tick rate, and benches and tests call it directly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arena_shared::codec::{EncodedPlayers, encode_frame, encode_server};
use arena_shared::protocol::{
    MAX_NAME_CHARS, PROTOCOL_VERSION, PlayerId, PlayerInfo, PlayerState, RejectReason, Rejection, ServerMsg,
    Welcome, close,
};
use arena_shared::sim::{self, Body, INPUT_DT_MICROS, Input, Vec2q};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::metrics::{Kick, Metrics, RoomStats};
use crate::outbox::{CloseReason, FramePush, Outbox};

/// Inputs a client may have queued before new ones are dropped (half a
/// second at 60 Hz).
pub const INPUT_QUEUE: usize = 32;
/// Inputs a player may apply in one tick after a hiccup (100 ms at 60 Hz).
/// Caps how far a client can run ahead: sending faster buys nothing.
const MAX_INPUT_BURST: u64 = 6;

/// One input as the read task hands it over.
#[derive(Debug, Clone, Copy)]
pub struct QueuedInput {
    pub seq: u32,
    pub input: Input,
}

/// What a connection gets back when its join is accepted.
#[derive(Debug)]
pub struct Seat {
    pub id: PlayerId,
    /// The name the room shows: the one asked for, made unique.
    pub name: String,
    pub outbox: Arc<Outbox>,
    pub inputs: mpsc::Sender<QueuedInput>,
}

struct Player {
    name: String,
    body: Body,
    /// Highest input seq applied; acked in every frame.
    last_seq: u32,
    /// Simulation time this player may still spend on inputs, in µs.
    input_credit: u64,
    /// Filled by the read task, drained here in seq order.
    inputs: mpsc::Receiver<QueuedInput>,
    /// Inputs received but not yet affordable this tick.
    pending: VecDeque<QueuedInput>,
    outbox: Arc<Outbox>,
    /// Consecutive ticks whose frame replaced one the writer had not taken.
    stale_ticks: u32,
}

pub struct World {
    tick: u32,
    tick_rate: u16,
    max_players: u16,
    /// Ticks of stale frames before a client is dropped.
    slow_client_ticks: u32,
    /// Sorted by id: the simulation order, so it is deterministic.
    players: BTreeMap<PlayerId, Player>,
    next_id: PlayerId,
    /// How many players have ever spawned; picks the next spawn point.
    spawns: u32,
    metrics: Arc<Metrics>,
    /// This room's code (for Welcome) and whether only its link leads here.
    room: String,
    private: bool,
    /// This room's figures for `/healthz` and `/metrics`.
    stats: Arc<RoomStats>,
}

impl World {
    pub fn new(tick_rate: u16, max_players: u16, slow_client_ticks: u32, metrics: Arc<Metrics>) -> Self {
        World {
            tick: 0,
            tick_rate,
            max_players,
            slow_client_ticks,
            players: BTreeMap::new(),
            next_id: 1,
            spawns: 0,
            metrics,
            room: String::new(),
            private: false,
            stats: Arc::new(RoomStats::default()),
        }
    }

    /// Names the room this world is, and where its figures go.
    pub fn in_room(mut self, code: String, private: bool, stats: Arc<RoomStats>) -> Self {
        self.room = code;
        self.private = private;
        self.stats = stats;
        self
    }

    /// Records how long a tick took, in this room's histogram.
    pub fn record_tick(&self, took: std::time::Duration) {
        self.stats.ticks.record(took.as_micros() as u64);
    }

    pub fn tick_number(&self) -> u32 {
        self.tick
    }

    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    pub fn body(&self, id: PlayerId) -> Option<Body> {
        self.players.get(&id).map(|p| p.body)
    }

    /// Seats a player whose handshake passed, or refuses with the reason.
    /// `name` must have passed `validate_name`; a name already taken gets a
    /// suffix, so "ada" joins a room with an "ada" as "ada (2)".
    pub fn join(&mut self, name: String) -> Result<Seat, Rejection> {
        if self.players.len() >= usize::from(self.max_players) {
            return Err(Rejection::new(RejectReason::ServerFull { max_players: self.max_players }));
        }
        let name = self.unique_name(name);
        let id = self.allocate_id();
        let outbox = Arc::new(Outbox::default());
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let welcome = ServerMsg::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            you: id,
            tick_rate: self.tick_rate,
            tick: self.tick,
            players: self.players.iter().map(|(&id, p)| PlayerInfo { id, name: p.name.clone() }).collect(),
            room: self.room.clone(),
            private: self.private,
        });
        outbox.push_event(Bytes::from(encode_server(&welcome)));
        let body = Body { pos: sim::spawn_point(self.spawns), vel: Vec2q::default() };
        self.spawns = self.spawns.wrapping_add(1);
        self.players.insert(
            id,
            Player {
                name: name.clone(),
                body,
                last_seq: 0,
                input_credit: MAX_INPUT_BURST * u64::from(INPUT_DT_MICROS),
                inputs: rx,
                pending: VecDeque::new(),
                outbox: outbox.clone(),
                stale_ticks: 0,
            },
        );
        self.broadcast(&ServerMsg::Joined(PlayerInfo { id, name: name.clone() }));
        self.stats.players.store(self.players.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(Seat { id, name, outbox, inputs: tx })
    }

    /// Removes a player (if still here) and tells everyone else.
    pub fn leave(&mut self, id: PlayerId) -> bool {
        let Some(player) = self.players.remove(&id) else {
            return false;
        };
        player.outbox.close(CloseReason::new(close::NORMAL, "left"));
        self.broadcast(&ServerMsg::Left { id });
        self.stats.players.store(self.players.len() as u64, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// Closes every connection with `reason`; used at shutdown.
    pub fn close_all(&mut self, reason: &CloseReason) {
        for player in self.players.values() {
            player.outbox.close(reason.clone());
        }
    }

    /// One tick: apply queued inputs in seq order, step, resolve overlaps,
    /// and hand every player its frame.
    pub fn tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
        let tick_micros = 1_000_000 / u64::from(self.tick_rate);
        let max_credit = MAX_INPUT_BURST * u64::from(INPUT_DT_MICROS);

        for player in self.players.values_mut() {
            while player.pending.len() < INPUT_QUEUE {
                match player.inputs.try_recv() {
                    Ok(input) => player.pending.push_back(input),
                    Err(_) => break,
                }
            }
            player.input_credit = (player.input_credit + tick_micros).min(max_credit);
            while player.input_credit >= u64::from(INPUT_DT_MICROS) {
                let Some(queued) = player.pending.pop_front() else {
                    break;
                };
                // The socket is ordered, so an old seq is a confused client: skip it.
                if queued.seq <= player.last_seq {
                    continue;
                }
                sim::step(&mut player.body, queued.input, INPUT_DT_MICROS);
                player.last_seq = queued.seq;
                player.input_credit -= u64::from(INPUT_DT_MICROS);
            }
        }

        let mut bodies: Vec<Body> = self.players.values().map(|p| p.body).collect();
        sim::resolve_overlaps(&mut bodies);
        for (player, body) in self.players.values_mut().zip(&bodies) {
            player.body = *body;
        }

        let states: Vec<PlayerState> =
            self.players.iter().map(|(&id, p)| PlayerState { id, body: p.body }).collect();
        let shared = EncodedPlayers::new(&states);
        let mut too_slow = Vec::new();
        for (&id, player) in &mut self.players {
            let frame = Bytes::from(encode_frame(self.tick, player.last_seq, &shared));
            match player.outbox.push_frame(frame) {
                FramePush::Fresh => player.stale_ticks = 0,
                FramePush::Replaced => {
                    Metrics::inc(&self.metrics.frames_dropped_total);
                    player.stale_ticks += 1;
                    if player.stale_ticks >= self.slow_client_ticks {
                        too_slow.push(id);
                    }
                }
            }
        }
        for id in too_slow {
            self.kick_slow(id);
        }
        self.stats.tick.store(u64::from(self.tick), std::sync::atomic::Ordering::Relaxed);
    }

    fn kick_slow(&mut self, id: PlayerId) {
        if let Some(player) = self.players.get(&id) {
            tracing::warn!(player = id, name = %player.name, "disconnecting a client that stayed behind");
            player.outbox.close(CloseReason::new(close::TOO_SLOW, "too slow: frames were not being read"));
            self.metrics.kick(Kick::TooSlow);
            self.leave(id);
        }
    }

    /// Queues one event for everyone; a player whose event queue is full is
    /// stuck and gets dropped.
    fn broadcast(&mut self, msg: &ServerMsg) {
        let bytes = Bytes::from(encode_server(msg));
        let stuck: Vec<PlayerId> = self
            .players
            .iter()
            .filter(|(_, p)| !p.outbox.push_event(bytes.clone()))
            .map(|(&id, _)| id)
            .collect();
        for id in stuck {
            self.kick_slow(id);
        }
    }

    /// `wanted`, or `wanted (N)` with the smallest free N, cut to fit
    /// [`MAX_NAME_CHARS`]. Names compare case-insensitively: "Ada" and "ada"
    /// would be told apart by nobody.
    fn unique_name(&self, wanted: String) -> String {
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

    fn allocate_id(&mut self) -> PlayerId {
        // Ids are reused only after wrapping, so a client never confuses a
        // newcomer with someone who just left. There is always a free id:
        // max_players is far below u16::MAX.
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if !self.players.contains_key(&id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arena_shared::codec::decode_server;
    use arena_shared::protocol::Frame;

    use super::*;

    fn world(max_players: u16) -> World {
        World::new(30, max_players, 3, Arc::new(Metrics::default()))
    }

    async fn take_messages(outbox: &Outbox) -> Vec<ServerMsg> {
        let batch = outbox.next().await;
        batch.messages.iter().map(|b| decode_server(b).expect("server bytes decode")).collect()
    }

    fn last_frame(msgs: &[ServerMsg]) -> Frame {
        msgs.iter()
            .rev()
            .find_map(|m| if let ServerMsg::Frame(f) = m { Some(f.clone()) } else { None })
            .expect("should have sent a frame")
    }

    #[tokio::test]
    async fn join_sends_welcome_then_joined_and_frames_ack_inputs() {
        let mut world = world(8);
        let seat = world.join("ada".into()).expect("room has space");
        let start = world.body(seat.id).expect("player exists");
        for seq in 1..=2 {
            seat.inputs.try_send(QueuedInput { seq, input: Input { x: 127, y: 0 } }).expect("queue has room");
        }
        world.tick();
        let msgs = take_messages(&seat.outbox).await;
        assert!(matches!(&msgs[0], ServerMsg::Welcome(w) if w.you == seat.id), "welcome should come first");
        assert!(matches!(&msgs[1], ServerMsg::Joined(p) if p.id == seat.id && p.name == "ada"));
        let frame = last_frame(&msgs);
        assert_eq!((frame.tick, frame.ack_seq), (1, 2), "should ack the last applied seq");
        assert!(world.body(seat.id).expect("exists").pos.x > start.pos.x, "inputs should move the player");
    }

    #[tokio::test]
    async fn a_client_sending_too_fast_gains_nothing() {
        let mut world = world(8);
        let seat = world.join("speedy".into()).expect("room has space");
        for seq in 1..=INPUT_QUEUE as u32 {
            seat.inputs.try_send(QueuedInput { seq, input: Input { x: 127, y: 0 } }).expect("queue has room");
        }
        world.tick();
        let frame = last_frame(&take_messages(&seat.outbox).await);
        assert_eq!(frame.ack_seq, MAX_INPUT_BURST as u32, "should apply at most a burst per tick");
        world.tick();
        let frame = last_frame(&take_messages(&seat.outbox).await);
        assert_eq!(frame.ack_seq, MAX_INPUT_BURST as u32 + 2, "then the input rate (60 Hz / 30 Hz = 2)");
    }

    #[test]
    fn full_room_rejects_with_server_full() {
        let mut world = world(1);
        let _seat = world.join("one".into()).expect("first fits");
        let rejection = world.join("two".into()).expect_err("second should not fit");
        assert_eq!(rejection.reason, RejectReason::ServerFull { max_players: 1 });
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_dropped_without_stopping_others() {
        let mut world = world(8);
        let reader = world.join("reader".into()).expect("space");
        let stuck = world.join("stuck".into()).expect("space");
        let mut last = Vec::new();
        for _ in 0..5 {
            world.tick();
            last = take_messages(&reader.outbox).await;
        }
        assert!(stuck.outbox.is_closed(), "stuck client should be closed after slow_client_ticks");
        assert_eq!(world.player_count(), 1);
        assert_eq!(last_frame(&last).tick, 5, "the reader should get every tick's frame");
        assert_eq!(last_frame(&last).players.len(), 1, "the stuck player should be gone from frames");
    }

    #[test]
    fn a_taken_name_gets_the_next_free_suffix_within_the_length_cap() {
        let mut world = world(8);
        let names: Vec<String> = ["ada", "Ada", "ada", "sixteen-chars-xx", "sixteen-chars-xx"]
            .map(|n| world.join(n.into()).expect("space").name)
            .into();
        assert_eq!(names, ["ada", "Ada (2)", "ada (3)", "sixteen-chars-xx", "sixteen-char (2)"]);
        assert!(names.iter().all(|n| n.chars().count() <= MAX_NAME_CHARS), "suffixed names fit: {names:?}");
    }

    #[test]
    fn a_name_is_free_again_once_its_player_leaves() {
        let mut world = world(8);
        let first = world.join("bob".into()).expect("space");
        world.leave(first.id);
        assert_eq!(world.join("bob".into()).expect("space").name, "bob");
    }

    #[test]
    fn ids_are_not_reused_right_away() {
        let mut world = world(8);
        let a = world.join("a".into()).expect("space").id;
        world.leave(a);
        let b = world.join("b".into()).expect("space").id;
        assert_ne!(a, b, "a newcomer should not take a leaver's id");
    }
}
