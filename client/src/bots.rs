//! The bot swarm behind `arena-bots`: N bots in one process, each a real
//! client that handshakes, sends inputs at the protocol's input rate, pings,
//! and measures every frame it reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use arena_shared::codec::encoded_len;
use arena_shared::netcode::CorrectionStats;
use arena_shared::protocol::{
    ClientMsg, Frame, INPUT_RATE_HZ, Life, PlayerId, RoomRequest, Seen, ServerMsg, close,
};
use arena_shared::sim::Input;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::conditioner::{DelayLine, LinkConditions};
use crate::session::{Change, ClientSession};
use crate::ws::{ClientError, Incoming, WsClient};

/// How long a bot may take to connect and complete the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often each bot measures its round-trip time.
const PING_PERIOD: Duration = Duration::from_millis(500);

/// How a bot steers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// Plays the game: seeks the nearest player, dashes into it, keeps
    /// away from the edge.
    Brawler,
    /// Picks a new random direction every second or two, dashing into
    /// every other one.
    Wander,
    /// Steers in a circle.
    Circle,
    /// Sends neutral inputs: connected, never moves on its own.
    Idle,
}

#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub url: String,
    pub count: usize,
    pub duration: Duration,
    pub behaviour: Behaviour,
    /// Bot `i` is named `{name_prefix}{i}`.
    pub name_prefix: String,
    /// Whom `wss://` trusts ([`crate::tls`]); `None`: the public CAs.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// What the network does to every bot's messages (nothing by default).
    pub conditions: LinkConditions,
    /// Which rooms the bots join.
    pub rooms: RoomPlan,
}

/// Where a swarm's bots play.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoomPlan {
    /// Each bot quick-joins (the fullest public room with space).
    #[default]
    Quick,
    /// Every bot joins the room with this code.
    Join(String),
    /// Bot `i` plays in private room `i % n`; the first bot of each opens it.
    Spread(usize),
}

/// How bot `index` finds its room: quick, a fixed code, or the code its
/// group's first bot announces once it has opened the room.
enum RoomTicket {
    Request(RoomRequest),
    Opens(tokio::sync::watch::Sender<Option<String>>),
    Follows(tokio::sync::watch::Receiver<Option<String>>),
}

impl RoomTicket {
    fn plan(config: &SwarmConfig) -> Vec<RoomTicket> {
        match &config.rooms {
            RoomPlan::Quick => (0..config.count).map(|_| RoomTicket::Request(RoomRequest::Quick)).collect(),
            RoomPlan::Join(code) => (0..config.count)
                .map(|_| RoomTicket::Request(RoomRequest::Join { code: code.clone() }))
                .collect(),
            RoomPlan::Spread(n) => {
                let n = (*n).clamp(1, config.count.max(1));
                let (senders, receivers): (Vec<_>, Vec<_>) =
                    (0..n).map(|_| tokio::sync::watch::channel(None)).unzip();
                let mut tickets: Vec<RoomTicket> = senders.into_iter().map(RoomTicket::Opens).collect();
                tickets.extend((n..config.count).map(|i| RoomTicket::Follows(receivers[i % n].clone())));
                tickets
            }
        }
    }

    /// The request to send, waiting for the group's code if need be.
    async fn request(&mut self) -> Result<RoomRequest, ClientError> {
        match self {
            RoomTicket::Request(request) => Ok(request.clone()),
            RoomTicket::Opens(_) => Ok(RoomRequest::CreatePrivate),
            RoomTicket::Follows(code) => {
                let code = code
                    .wait_for(Option::is_some)
                    .await
                    .map_err(|_| ClientError::Connect("the bot opening this room failed".into()))?;
                Ok(RoomRequest::Join { code: code.clone().unwrap_or_default() })
            }
        }
    }

    /// Tells the group where the room is, once this bot opened it.
    fn opened(&self, code: &str) {
        if let RoomTicket::Opens(sender) = self {
            let _ = sender.send(Some(code.to_owned()));
        }
    }
}

/// One bot's steering state; deterministic per bot index.
struct Brain {
    behaviour: Behaviour,
    rng: u64,
    current: Input,
    steps_left: u32,
    phase: f32,
}

impl Brain {
    fn new(behaviour: Behaviour, index: usize) -> Self {
        Brain {
            behaviour,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
            current: Input::default(),
            steps_left: 0,
            phase: index as f32 * 0.7,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: fast and plenty for steering.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_input(&mut self, view: Option<&ClientSession>, now: f64) -> Input {
        match self.behaviour {
            Behaviour::Idle => Input::default(),
            Behaviour::Brawler => view.map_or_else(Input::default, |session| self.brawl(session, now)),
            Behaviour::Wander => {
                if self.steps_left == 0 {
                    let r = self.next_random();
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

    /// Back to the middle when near the edge; else at the nearest player
    /// standing on the platform, dashing when close and lined up.
    fn brawl(&mut self, session: &ClientSession, now: f64) -> Input {
        let positions = session.positions(now);
        let Some(&(_, me)) = positions.iter().find(|(id, _)| *id == session.you) else {
            return Input::default();
        };
        let radius = session.platform.radius as f32;
        let from_centre = (me.0 * me.0 + me.1 * me.1).sqrt();
        let toward = |to: (f32, f32)| {
            let (dx, dy) = (to.0 - me.0, to.1 - me.1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-3);
            (Input::stick((dx / len * 127.0) as i8, (dy / len * 127.0) as i8), len)
        };
        if from_centre > radius * 0.72 {
            return toward((0.0, 0.0)).0;
        }
        let target = positions
            .iter()
            .filter(|(id, _)| *id != session.you)
            .filter(|(id, _)| session.roster.get(id).is_some_and(|m| m.life == Life::Alive))
            .map(|&(_, at)| toward(at))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((stick, distance)) = target else {
            return self.wander_slowly();
        };
        // Some hesitation so that bots do not all dash on the same frame.
        let eager = self.next_random().is_multiple_of(4);
        stick.with_dash(distance < 180.0 && session.dash_ready() >= 1.0 && eager)
    }

    fn wander_slowly(&mut self) -> Input {
        if self.steps_left == 0 {
            let r = self.next_random();
            self.current = Input::stick((r & 0x7f) as i8 - 64, ((r >> 8) & 0x7f) as i8 - 64);
            self.steps_left = INPUT_RATE_HZ;
        }
        self.steps_left -= 1;
        self.current
    }
}

/// How a bot's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Ran for the whole duration.
    Completed,
    /// Could not connect or complete the handshake (not a rejection).
    ConnectFailed { error: String },
    /// The server refused the handshake.
    Rejected { message: String },
    /// The server sent bytes that did not decode, or out of order.
    ProtocolError { error: String },
    /// The server closed the connection before the end.
    Disconnected { code: u16, reason: String },
}

/// Everything one bot measured.
#[derive(Debug, Clone, Serialize)]
pub struct BotRecord {
    pub index: usize,
    pub id: Option<PlayerId>,
    /// The room the bot played in.
    pub room: Option<String>,
    pub outcome: Outcome,
    pub frames: u64,
    /// Ticks missing between consecutive frames.
    pub tick_gaps: u64,
    pub first_tick: Option<u32>,
    pub last_tick: Option<u32>,
    /// Highest input seq the server acked.
    pub max_ack: u32,
    pub inputs_sent: u32,
    pub rtt_ms: Vec<f64>,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// Time between Welcome and the end of the run.
    pub connected_secs: f64,
    /// Most players seen in one frame.
    pub max_players_seen: usize,
    /// Other players this bot saw change position.
    pub saw_move: BTreeSet<PlayerId>,
    /// Other players this bot saw at all.
    pub saw: BTreeSet<PlayerId>,
    /// How far reconciliation moved this bot's predicted player.
    #[serde(skip)]
    pub corrections: CorrectionStats,
    /// Each correction's size, world units.
    #[serde(skip)]
    pub correction_units: Vec<f64>,
    /// Input ticks at which the bot asked "what would I draw now?".
    pub renders: u64,
    /// Of those, the ones with no newer frame to draw others towards.
    pub underruns: u64,
    /// The interpolation delay the bot's clock settled on, ms.
    pub interp_delay_ms: f64,
    /// Sum over renders of how far behind the estimated server tick the
    /// others were drawn, ms (the playout stretches it during stalls).
    #[serde(skip)]
    pub playout_delay_ms_sum: f64,
    /// Knockouts this bot was credited with, and times it was knocked out
    /// or fell.
    pub knockouts_given: u32,
    pub knockouts_taken: u32,
    /// Bytes of the frames received, by part.
    pub frame_bytes: FrameBytes,
    #[serde(skip)]
    first_pos: BTreeMap<PlayerId, (i16, i16)>,
}

impl BotRecord {
    fn new(index: usize, outcome: Outcome) -> Self {
        BotRecord {
            index,
            id: None,
            room: None,
            outcome,
            frames: 0,
            tick_gaps: 0,
            first_tick: None,
            last_tick: None,
            max_ack: 0,
            inputs_sent: 0,
            rtt_ms: Vec::new(),
            bytes_down: 0,
            bytes_up: 0,
            connected_secs: 0.0,
            max_players_seen: 0,
            saw_move: BTreeSet::new(),
            saw: BTreeSet::new(),
            corrections: CorrectionStats::default(),
            correction_units: Vec::new(),
            renders: 0,
            underruns: 0,
            interp_delay_ms: 0.0,
            playout_delay_ms_sum: 0.0,
            knockouts_given: 0,
            knockouts_taken: 0,
            frame_bytes: FrameBytes::default(),
            first_pos: BTreeMap::new(),
        }
    }

    /// Counts a frame of `size` bytes: ticks, acks, and its bytes by part.
    fn observe_frame(&mut self, frame: &Frame, size: usize) -> Result<(), String> {
        if let Some(last) = self.last_tick {
            if frame.tick <= last {
                return Err(format!("frame tick went from {last} to {}", frame.tick));
            }
            self.tick_gaps += u64::from(frame.tick - last - 1);
        }
        self.first_tick.get_or_insert(frame.tick);
        self.last_tick = Some(frame.tick);
        self.frames += 1;
        self.max_ack = self.max_ack.max(frame.ack_seq);
        let header = encoded_len(&(2u32, frame.tick, frame.ack_seq, frame.baseline));
        let you = encoded_len(&frame.you);
        let all = size.max(header + you);
        self.frame_bytes.header += header as u64;
        self.frame_bytes.you += you as u64;
        self.frame_bytes.others += (all - header - you) as u64;
        Ok(())
    }

    /// Counts who is in view after a frame, and who moved in it.
    fn observe_view(&mut self, view: &[(PlayerId, Seen)]) {
        self.max_players_seen = self.max_players_seen.max(view.len() + 1);
        for &(id, seen) in view {
            self.saw.insert(id);
            let first = *self.first_pos.entry(id).or_insert((seen.x, seen.y));
            if first != (seen.x, seen.y) {
                self.saw_move.insert(id);
            }
        }
    }
}

/// Frame bytes by part: the header (tick, ack, baseline), your own state,
/// and the others (updates, departures and their counts).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct FrameBytes {
    pub header: u64,
    pub you: u64,
    pub others: u64,
}

/// Mean bytes per frame by part, over every frame the bots received.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct FrameParts {
    pub header: f64,
    pub you: f64,
    pub others: f64,
}

/// Live totals for the progress line.
#[derive(Default)]
pub struct Live {
    pub connected: AtomicUsize,
    pub finished: AtomicUsize,
    pub failed: AtomicUsize,
    pub frames: AtomicU64,
}

/// Runs the swarm to the end and returns every bot's record.
pub async fn run_swarm(config: SwarmConfig, live: Arc<Live>) -> Vec<BotRecord> {
    let config = Arc::new(config);
    let clock = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, ticket) in RoomTicket::plan(&config).into_iter().enumerate() {
        tasks.spawn(run_bot(index, ticket, config.clone(), live.clone(), clock));
    }
    let mut records = Vec::with_capacity(config.count);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(record) => records.push(record),
            Err(e) => records.push(BotRecord::new(
                usize::MAX,
                Outcome::ConnectFailed { error: format!("bot task died: {e}") },
            )),
        }
    }
    records.sort_by_key(|r| r.index);
    records
}

async fn run_bot(
    index: usize,
    mut ticket: RoomTicket,
    config: Arc<SwarmConfig>,
    live: Arc<Live>,
    clock: Instant,
) -> BotRecord {
    let deadline = clock + config.duration;
    let name = format!("{}{index}", config.name_prefix);
    let connecting = async {
        let room = ticket.request().await?;
        let mut client = WsClient::connect_with(&config.url, &[], config.tls.clone()).await?;
        let welcome = client.handshake_in(&name, room).await?;
        ticket.opened(&welcome.room);
        Ok::<_, ClientError>((client, welcome))
    };
    let (client, welcome) = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => {
            live.failed.fetch_add(1, Relaxed);
            return BotRecord::new(index, failure_outcome(e));
        }
        Err(_) => {
            live.failed.fetch_add(1, Relaxed);
            return BotRecord::new(index, Outcome::ConnectFailed { error: "timed out connecting".into() });
        }
    };
    live.connected.fetch_add(1, Relaxed);
    let mut record = BotRecord::new(index, Outcome::Completed);
    record.id = Some(welcome.you);
    record.room = Some(welcome.room.clone());
    let connected_at = Instant::now();

    let (mut tx, mut rx) = client.split();
    let mut brain = Brain::new(config.behaviour, index);
    let mut inputs = tokio::time::interval(Duration::from_micros(1_000_000 / u64::from(INPUT_RATE_HZ)));
    inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut pings = tokio::time::interval(PING_PERIOD);
    pings.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // The same session the browser runs, so bots measure its corrections.
    let mut session = ClientSession::new(welcome.clone(), &name, crate::ws::color_for(&name));

    // What the network does to this bot's messages, both ways.
    let started = Instant::now();
    let mut up = DelayLine::new(config.conditions, 0x5EED ^ index as u64, started);
    let mut down = DelayLine::new(config.conditions, 0xD0E5 ^ (index as u64) << 8, started);
    let mut reading = true;
    let idle = deadline + Duration::from_secs(3600);

    let outcome = 'bot: loop {
        let next_due = [up.next_due(), down.next_due()].into_iter().flatten().min().unwrap_or(idle);
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                tx.close().await;
                break Outcome::Completed;
            }
            () = tokio::time::sleep_until(next_due) => {}
            _ = inputs.tick() => {
                let now = clock.elapsed().as_secs_f64();
                let input = brain.next_input(Some(&session), now);
                // Batched as the page batches them: one message a frame.
                if let Some(message) = session.input(input) {
                    up.push(Instant::now(), message);
                }
                record.inputs_sent = session.last_input_seq();
                // The input rate is the bot's frame rate: would a renderer have
                // two frames to draw others between, at the delay it settled on?
                if let Some(render_tick) = session.advance_playout(now) {
                    record.renders += 1;
                    if record.last_tick.is_none_or(|newest| f64::from(newest) < render_tick) {
                        record.underruns += 1;
                    }
                    if let Some(latest) = session.clock.tick_at(now) {
                        record.playout_delay_ms_sum += (latest - render_tick) / session.clock.tick_rate() * 1000.0;
                    }
                }
            }
            _ = pings.tick() => {
                up.push(Instant::now(), session.ping(clock.elapsed().as_secs_f64()));
            }
            incoming = rx.recv(), if reading => {
                reading = matches!(incoming, Ok(Incoming::Msg(_)));
                down.push(Instant::now(), (incoming, rx.last_message_bytes));
            }
        }
        let now = Instant::now();
        while let Some(msg) = up.pop_due(now) {
            if let Err(e) = tx.send(&msg).await {
                break 'bot failure_outcome(e);
            }
        }
        while let Some((incoming, size)) = down.pop_due(now) {
            let at = clock.elapsed().as_secs_f64();
            let msg = match incoming {
                Ok(Incoming::Msg(msg)) => msg,
                Ok(Incoming::Closed(frame)) => {
                    let (code, reason) =
                        frame.unwrap_or((close::ABNORMAL, "connection closed without a close frame".into()));
                    break 'bot Outcome::Disconnected { code, reason };
                }
                Err(e) => break 'bot failure_outcome(e),
            };
            match &msg {
                ServerMsg::Frame(frame) => {
                    if let Err(error) = record.observe_frame(frame, size) {
                        break 'bot Outcome::ProtocolError { error };
                    }
                    live.frames.fetch_add(1, Relaxed);
                }
                ServerMsg::Pong { client_time_us } => {
                    let now = clock.elapsed().as_micros() as u64;
                    record.rtt_ms.push(now.saturating_sub(*client_time_us) as f64 / 1000.0);
                }
                _ => {}
            }
            let corrected_before = session.prediction.corrections.total_units;
            let is_frame = matches!(msg, ServerMsg::Frame(_));
            match session.apply(msg, at) {
                Ok(changes) => {
                    if changes.contains(&Change::NeedResync) {
                        up.push(Instant::now(), ClientMsg::Resync);
                    }
                }
                Err(error) => break 'bot Outcome::ProtocolError { error: error.to_string() },
            }
            if is_frame {
                record.observe_view(session.view());
            }
            let moved = session.prediction.corrections.total_units - corrected_before;
            if moved > 0.0 {
                record.correction_units.push(moved);
            }
        }
    };
    record.interp_delay_ms = session.clock.interp_delay_ticks() / session.clock.tick_rate() * 1000.0;
    record.outcome = outcome;
    record.corrections = session.prediction.corrections;
    record.knockouts_given = session.knockouts_given;
    record.knockouts_taken = session.knockouts_taken;
    record.connected_secs = connected_at.elapsed().as_secs_f64();
    record.bytes_up = tx.bytes_up;
    record.bytes_down = rx.bytes_down;
    live.finished.fetch_add(1, Relaxed);
    record
}

fn failure_outcome(error: ClientError) -> Outcome {
    match error {
        ClientError::Rejected(rejection) => Outcome::Rejected { message: rejection.message },
        ClientError::Protocol(error) => Outcome::ProtocolError { error },
        ClientError::Closed { code, reason } => Outcome::Disconnected { code, reason },
        other => Outcome::ConnectFailed { error: other.to_string() },
    }
}

/// Percentiles of a measurement (round trips in milliseconds, say).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of samples sorted ascending.
    pub fn of_sorted(sorted: &[f64]) -> Self {
        Percentiles {
            p50: percentile(sorted, 0.50),
            p95: percentile(sorted, 0.95),
            p99: percentile(sorted, 0.99),
        }
    }
}

/// Prediction corrections over all bots: how often and how far
/// reconciliation moved a bot's own predicted player (world units).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Corrections {
    pub frames: u64,
    pub corrected: u64,
    /// Share of reconciled frames that needed a correction.
    pub rate: f64,
    pub mean_units: f64,
    pub max_units: f64,
    /// Sizes of the corrections that happened (not of every frame), units.
    pub p50_units: f64,
    pub p99_units: f64,
}

impl Corrections {
    fn total(records: &[BotRecord]) -> Self {
        let mut all = CorrectionStats::default();
        for record in records {
            all.merge(&record.corrections);
        }
        let mut sizes: Vec<f64> = records.iter().flat_map(|r| r.correction_units.iter().copied()).collect();
        sizes.sort_by(f64::total_cmp);
        Corrections {
            frames: all.frames,
            corrected: all.corrected,
            rate: all.rate(),
            mean_units: all.mean_units(),
            max_units: all.max_units,
            p50_units: percentile(&sizes, 0.50),
            p99_units: percentile(&sizes, 0.99),
        }
    }
}

/// The swarm's summary: what `arena-bots` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bots: usize,
    /// Bots that completed the handshake.
    pub connected: usize,
    /// Bots that could not connect or were rejected.
    pub failed: usize,
    /// Of `failed`, those the server rejected (full, bad name, version).
    pub rejected: usize,
    pub protocol_errors: usize,
    /// Bots the server closed before the end.
    pub disconnected: usize,
    pub behaviour: Behaviour,
    pub duration_secs: f64,
    /// Frames received per second, mean over connected bots.
    pub frames_per_sec: f64,
    /// Missing ticks between received frames, summed over bots.
    pub tick_gaps: u64,
    pub rtt_ms: Percentiles,
    /// Payload bytes per second, mean per connected bot.
    pub down_bytes_per_sec: f64,
    /// The same, median and 99th percentile over the connected bots.
    pub down_bytes_per_sec_p50: f64,
    pub down_bytes_per_sec_p99: f64,
    /// Mean bytes per frame received, by part.
    pub frame_bytes: FrameParts,
    pub up_bytes_per_sec: f64,
    /// Most players any bot saw in one frame.
    pub max_players_seen: usize,
    /// Distinct rooms the bots played in.
    pub rooms: usize,
    /// Highest input seq acked, mean per connected bot.
    pub mean_max_ack: f64,
    pub corrections: Corrections,
    /// The link conditioner's settings (all zero: none).
    pub conditions: LinkConditions,
    /// The interpolation delay the bots' clocks settled on, mean, ms.
    pub interp_delay_ms: f64,
    /// How far behind the others were actually drawn, mean over renders,
    /// ms: the delay plus what stalls stretched it by.
    pub playout_delay_ms: f64,
    /// Share of the bots' frames (one per input) with no newer server frame
    /// to draw others towards.
    pub interp_underrun_rate: f64,
    /// Knockouts the bots were credited with, and times they left the
    /// platform (knocked off or on their own), summed over bots.
    pub knockouts_given: u64,
    pub knockouts_taken: u64,
    /// Times a bot left the platform, per minute of the run.
    pub knockouts_per_min: f64,
    /// Up to five distinct failure descriptions.
    pub errors: Vec<String>,
}

impl Report {
    pub fn from_records(records: &[BotRecord], config: &SwarmConfig) -> Report {
        let connected: Vec<&BotRecord> = records.iter().filter(|r| r.id.is_some()).collect();
        let count = |f: fn(&Outcome) -> bool| records.iter().filter(|r| f(&r.outcome)).count();
        let mean = |f: &dyn Fn(&BotRecord) -> f64| {
            if connected.is_empty() {
                0.0
            } else {
                connected.iter().map(|r| f(r)).sum::<f64>() / connected.len() as f64
            }
        };
        let per_sec = |value: u64, r: &BotRecord| {
            if r.connected_secs > 0.0 { value as f64 / r.connected_secs } else { 0.0 }
        };
        let mut down_rates: Vec<f64> = connected.iter().map(|r| per_sec(r.bytes_down, r)).collect();
        down_rates.sort_by(f64::total_cmp);
        let mut rtts: Vec<f64> = records.iter().flat_map(|r| r.rtt_ms.iter().copied()).collect();
        rtts.sort_by(f64::total_cmp);
        let mut errors: Vec<String> = Vec::new();
        for record in records {
            let text = match &record.outcome {
                Outcome::Completed => continue,
                Outcome::ConnectFailed { error } | Outcome::ProtocolError { error } => error.clone(),
                Outcome::Rejected { message } => format!("rejected: {message}"),
                Outcome::Disconnected { code, reason } => {
                    format!("closed by server ({code}): {reason}")
                }
            };
            if errors.len() < 5 && !errors.contains(&text) {
                errors.push(text);
            }
        }
        Report {
            bots: records.len(),
            connected: connected.len(),
            failed: count(|o| matches!(o, Outcome::ConnectFailed { .. } | Outcome::Rejected { .. })),
            rejected: count(|o| matches!(o, Outcome::Rejected { .. })),
            protocol_errors: count(|o| matches!(o, Outcome::ProtocolError { .. })),
            disconnected: count(|o| matches!(o, Outcome::Disconnected { .. })),
            behaviour: config.behaviour,
            duration_secs: config.duration.as_secs_f64(),
            frames_per_sec: mean(&|r| per_sec(r.frames, r)),
            tick_gaps: records.iter().map(|r| r.tick_gaps).sum(),
            rtt_ms: Percentiles::of_sorted(&rtts),
            down_bytes_per_sec: mean(&|r| per_sec(r.bytes_down, r)),
            down_bytes_per_sec_p50: percentile(&down_rates, 0.50),
            down_bytes_per_sec_p99: percentile(&down_rates, 0.99),
            frame_bytes: {
                let frames: u64 = records.iter().map(|r| r.frames).sum();
                let part = |f: fn(&FrameBytes) -> u64| {
                    let total: u64 = records.iter().map(|r| f(&r.frame_bytes)).sum();
                    if frames == 0 { 0.0 } else { total as f64 / frames as f64 }
                };
                FrameParts { header: part(|b| b.header), you: part(|b| b.you), others: part(|b| b.others) }
            },
            up_bytes_per_sec: mean(&|r| per_sec(r.bytes_up, r)),
            max_players_seen: records.iter().map(|r| r.max_players_seen).max().unwrap_or(0),
            rooms: records.iter().filter_map(|r| r.room.as_ref()).collect::<BTreeSet<_>>().len(),
            mean_max_ack: mean(&|r| f64::from(r.max_ack)),
            conditions: config.conditions,
            interp_delay_ms: mean(&|r| r.interp_delay_ms),
            playout_delay_ms: {
                let renders: u64 = records.iter().map(|r| r.renders).sum();
                let sum: f64 = records.iter().map(|r| r.playout_delay_ms_sum).sum();
                if renders == 0 { 0.0 } else { sum / renders as f64 }
            },
            interp_underrun_rate: {
                let renders: u64 = records.iter().map(|r| r.renders).sum();
                let underruns: u64 = records.iter().map(|r| r.underruns).sum();
                if renders == 0 { 0.0 } else { underruns as f64 / renders as f64 }
            },
            corrections: Corrections::total(records),
            knockouts_given: records.iter().map(|r| u64::from(r.knockouts_given)).sum(),
            knockouts_taken: records.iter().map(|r| u64::from(r.knockouts_taken)).sum(),
            knockouts_per_min: {
                let taken: u64 = records.iter().map(|r| u64::from(r.knockouts_taken)).sum();
                let minutes = config.duration.as_secs_f64() / 60.0;
                if minutes > 0.0 { taken as f64 / minutes } else { 0.0 }
            },
            errors,
        }
    }

    /// Whether the run counts as a failure for the exit code.
    pub fn is_failure(&self) -> bool {
        self.failed > 0 || self.protocol_errors > 0
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let rows = [
            ("bots", format!("{} ({:?})", self.bots, self.behaviour).to_lowercase()),
            ("connected", self.connected.to_string()),
            ("failed", format!("{} ({} rejected)", self.failed, self.rejected)),
            ("protocol errors", self.protocol_errors.to_string()),
            ("disconnected early", self.disconnected.to_string()),
            ("frames/s per bot", format!("{:.1}", self.frames_per_sec)),
            ("tick gaps", self.tick_gaps.to_string()),
            (
                "rtt p50/p95/p99",
                format!("{:.2} / {:.2} / {:.2} ms", self.rtt_ms.p50, self.rtt_ms.p95, self.rtt_ms.p99),
            ),
            (
                "down per bot",
                format!(
                    "{:.1} KB/s mean, {:.1} p50, {:.1} p99",
                    self.down_bytes_per_sec / 1000.0,
                    self.down_bytes_per_sec_p50 / 1000.0,
                    self.down_bytes_per_sec_p99 / 1000.0
                ),
            ),
            (
                "frame bytes",
                format!(
                    "{:.1} header + {:.1} you + {:.1} others",
                    self.frame_bytes.header, self.frame_bytes.you, self.frame_bytes.others
                ),
            ),
            ("up per bot", format!("{:.1} KB/s", self.up_bytes_per_sec / 1000.0)),
            ("max players seen", self.max_players_seen.to_string()),
            ("rooms", self.rooms.to_string()),
            (
                "corrections",
                format!(
                    "{} of {} frames ({:.2}%), mean {:.1}, p50 {:.1}, p99 {:.1}, max {:.1} units",
                    self.corrections.corrected,
                    self.corrections.frames,
                    self.corrections.rate * 100.0,
                    self.corrections.mean_units,
                    self.corrections.p50_units,
                    self.corrections.p99_units,
                    self.corrections.max_units
                ),
            ),
            (
                "interpolation",
                format!(
                    "delay {:.0} ms (drawn {:.0} ms behind on average), underruns {:.2}% of frames",
                    self.interp_delay_ms,
                    self.playout_delay_ms,
                    self.interp_underrun_rate * 100.0
                ),
            ),
            (
                "knockouts",
                format!(
                    "{} credited, {} off the platform ({:.1} per minute)",
                    self.knockouts_given, self.knockouts_taken, self.knockouts_per_min
                ),
            ),
        ];
        let mut out = String::new();
        for (name, value) in rows {
            out.push_str(&format!("{name:>20}  {value}\n"));
        }
        for error in &self.errors {
            out.push_str(&format!("{:>20}  {error}\n", "error"));
        }
        out
    }
}

/// Nearest-rank percentile of sorted samples (0 when there are none).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use arena_shared::protocol::PlayerState;
    use arena_shared::sim::{Body, Vec2q};

    #[test]
    fn percentile_uses_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.50), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0, "no samples should give 0");
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn frames_count_gaps_bytes_and_moves() {
        let mut record = BotRecord::new(0, Outcome::Completed);
        record.id = Some(1);
        let frame = |tick| Frame {
            tick,
            ack_seq: tick,
            baseline: 0,
            you: PlayerState { id: 1, body: Body::default(), life: Life::Alive },
            others: vec![arena_shared::protocol::OtherUpdate { id_gap: 2, dx: 5, dy: 0, life: Life::Alive }],
            gone: Vec::new(),
        };
        let seen = |x| vec![(2, Seen { x, y: 0, life: Life::Alive })];
        let total = encoded_len(&ServerMsg::Frame(frame(14))) as u64;
        record.observe_frame(&frame(10), total as usize).expect("first frame");
        record.observe_view(&seen(5));
        record.observe_frame(&frame(11), total as usize).expect("next tick");
        record.observe_view(&seen(5));
        assert!(record.saw_move.is_empty(), "should not count a still player as moving");
        record.observe_frame(&frame(14), total as usize).expect("later tick");
        record.observe_view(&seen(9));
        assert_eq!(record.tick_gaps, 2, "should count ticks 12 and 13 as missing");
        assert_eq!(record.saw_move, BTreeSet::from([2]), "should see player 2 move");
        assert_eq!(record.max_players_seen, 2, "itself and player 2");
        let bytes = record.frame_bytes;
        assert_eq!(bytes.header + bytes.you + bytes.others, 3 * total, "the parts add up to the frames");
        assert!(bytes.others > 0 && bytes.you > bytes.others, "{bytes:?}");
        assert!(
            record.observe_frame(&frame(14), total as usize).is_err(),
            "a repeated tick is a protocol error"
        );
    }

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
            tick_rate: 30,
            tick: 0,
            players: vec![PlayerInfo { id: 2, name: "ada".into(), color: 0, score: 0 }],
            room: "abcdefghjk".into(),
            private: false,
            resume: [0; 16],
            resumed: false,
            platform: arena_shared::sim::Platform { radius: 500 },
            round: RoundInfo { number: 1, phase: RoundPhase::Playing { ends_at: 5400 } },
        };
        let mut session = ClientSession::new(welcome, "bot", 0);
        for tick in 1..=2 {
            let them =
                PlayerState { id: 2, body: Body::at(Vec2q::from_units(other.0, other.1)), life: Life::Alive };
            let seen = Seen::of(&them);
            let frame = Frame {
                tick,
                ack_seq: 0,
                baseline: 0,
                you: PlayerState { id: 1, body: Body::at(Vec2q::from_units(me.0, me.1)), life: Life::Alive },
                others: vec![arena_shared::protocol::OtherUpdate {
                    id_gap: 2,
                    dx: seen.x,
                    dy: seen.y,
                    life: Life::Alive,
                }],
                gone: Vec::new(),
            };
            session.apply(ServerMsg::Frame(frame), f64::from(tick) / 30.0).expect("valid frame");
        }
        session
    }

    #[test]
    fn brawlers_charge_the_nearest_player_and_keep_off_the_edge() {
        let mut brain = Brain::new(Behaviour::Brawler, 1);
        let near_edge = brawl_view((450, 0), (300, 0));
        let input = brain.next_input(Some(&near_edge), 5.0);
        assert!(input.x < -100 && !input.dash, "back towards the middle: {input:?}");
        let close = brawl_view((0, 0), (0, 100));
        let inputs: Vec<Input> = (0..40).map(|_| brain.next_input(Some(&close), 5.0)).collect();
        assert!(inputs.iter().all(|i| i.y > 100), "straight at the other player: {inputs:?}");
        assert!(inputs.iter().any(|i| i.dash), "and dashes when close and ready");
        assert_eq!(brain.next_input(None, 0.0), Input::default(), "nothing to see, nothing to do");
    }
}
