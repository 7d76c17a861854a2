//! One bot's life in three steps: connect (the session's `Hello`, its
//! `Welcome`), then until the run ends, tick (the brain's input into the
//! session at the input rate, and whether a renderer would have had a newer
//! frame to draw) and deliver (the server's messages into the session and
//! the session's out, each way through the link conditioner). The session
//! keeps every protocol rule; the bot only moves messages and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use arena_shared::protocol::{ClientMsg, INPUT_RATE_HZ, RejectReason, RoomRequest, ServerMsg, close};
use tokio::time::{Instant, MissedTickBehavior};

use crate::brain::Brain;
use crate::config::{RoomTicket, SwarmConfig};
use crate::nodes::KnownNodes;
use crate::record::{BotRecord, Outcome};
use crate::ws::{ClientError, Incoming, WsClient, WsReceiver, WsSender};
use arena_client_core::conditioner::DelayLine;
use arena_client_core::session::{ClientSession, Event, JoinRequest, color_for, websocket_url};

/// The view is looked at on one frame in this many (see `observe_view`).
const VIEW_EVERY: u64 = 8;

/// How long a bot may take to connect and complete the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often each bot measures its round-trip time.
const PING_EVERY_SECS: f64 = 0.5;

/// Live totals for the progress line.
#[derive(Default)]
pub struct Live {
    pub connected: AtomicUsize,
    pub finished: AtomicUsize,
    pub failed: AtomicUsize,
    pub frames: AtomicU64,
}

/// What came down the socket, with its size in bytes.
type Arrival = (Result<Incoming, ClientError>, usize);

/// A connected bot.
struct Bot {
    session: ClientSession,
    /// The WebSocket URL it is connected to.
    url: String,
    brain: Brain,
    record: BotRecord,
    /// The swarm's start: every local time is seconds since it.
    clock: Instant,
    /// What the network does to this bot's messages, both ways.
    up: DelayLine<ClientMsg, Instant>,
    down: DelayLine<Arrival, Instant>,
    live: Arc<Live>,
    /// Drawn by nobody (`--light`): two inputs per wake, no playout.
    light: bool,
}

/// Runs bot `index` for the swarm's duration; its record says how it went.
/// A `Moved` is followed, and with `--reconnect-secs` a dropped connection
/// is resumed (at the node it was on, else at `--url`, else at the other
/// `nodes` of the cluster in turn).
pub(crate) async fn run_bot(
    index: usize,
    mut ticket: RoomTicket,
    (config, nodes): (Arc<SwarmConfig>, Arc<KnownNodes>),
    live: Arc<Live>,
    clock: Instant,
) -> BotRecord {
    let (mut client, session, url) = match connect(index, &mut ticket, &config, clock).await {
        Ok(connected) => connected,
        Err(outcome) => {
            live.failed.fetch_add(1, Relaxed);
            return BotRecord::new(index, outcome);
        }
    };
    live.connected.fetch_add(1, Relaxed);
    let connected_at = Instant::now();
    let mut bot = Bot::new(index, session, &config, live, clock);
    bot.url = url;
    let deadline = clock + config.duration;
    let mut bytes = (0, 0);
    let outcome = loop {
        let (mut tx, mut rx) = client.split();
        let outcome = bot.play(&mut tx, &mut rx, deadline).await;
        bytes = (bytes.0 + tx.bytes_up, bytes.1 + rx.bytes_down);
        let Some(url) = bot.where_next(&outcome, &config) else { break outcome };
        match bot.reconnect(url, (&config, &nodes), deadline).await {
            Ok(next) => client = next,
            Err(outcome) => break outcome,
        }
    };
    bot.finish(outcome, connected_at, bytes)
}

/// Opens the socket and runs the handshake through a new session.
async fn connect(
    index: usize,
    ticket: &mut RoomTicket,
    config: &SwarmConfig,
    clock: Instant,
) -> Result<(WsClient, ClientSession, String), Outcome> {
    let name = format!("{}{index}", config.name_prefix);
    let attempt = async {
        let room = ticket.request().await?;
        let join = JoinRequest { color: color_for(&name), name, room, resume: None };
        let (client, session, url) = open(&config.url, join, config, clock).await?;
        if let Some(room) = session.room() {
            ticket.opened(room.code());
        }
        Ok::<_, ClientError>((client, session, url))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(e)) => Err(failure_outcome(e)),
        Err(_) => Err(Outcome::ConnectFailed { error: "timed out connecting".into() }),
    }
}

/// Connects to `url` and asks to `join`, following one `Moved` (a room on
/// another node of a cluster) with the same name, colour and token; also
/// says which URL it ended up at.
pub async fn open(
    url: &str,
    mut join: JoinRequest,
    config: &SwarmConfig,
    clock: Instant,
) -> Result<(WsClient, ClientSession, String), ClientError> {
    let mut url = url.to_owned();
    for hop in 0..2 {
        let mut client = WsClient::connect_with(&url, &[], config.tls.clone()).await?;
        let mut session = ClientSession::new(join.clone(), PING_EVERY_SECS);
        if config.light {
            session = session.without_interpolation();
        }
        match client.join(&mut session, || clock.elapsed().as_secs_f64()).await {
            Ok(()) => return Ok((client, session, url)),
            Err(ClientError::Moved(moved)) if hop == 0 => {
                url = websocket_url(&moved.url).ok_or_else(|| {
                    ClientError::Protocol(format!("moved to {}, not a node URL", moved.url))
                })?;
                if !moved.room.is_empty() {
                    join.room = RoomRequest::Join { code: moved.room };
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ClientError::Protocol("sent on by the node a Moved named".into()))
}

impl Bot {
    fn new(
        index: usize,
        session: ClientSession,
        config: &SwarmConfig,
        live: Arc<Live>,
        clock: Instant,
    ) -> Self {
        let mut record = BotRecord::new(index, Outcome::Completed);
        record.id = session.room().map(|room| room.you());
        record.room = session.room().map(|room| room.code().to_owned());
        let started = Instant::now();
        Bot {
            session,
            url: config.url.clone(),
            brain: Brain::new(config.behaviour, index),
            record,
            clock,
            up: DelayLine::new(config.conditions, 0x5EED ^ index as u64, started),
            down: DelayLine::new(config.conditions, 0xD0E5 ^ (index as u64) << 8, started),
            live,
            light: config.light,
        }
    }

    /// Input samples per wake: a light bot wakes half as often.
    fn inputs_per_wake(&self) -> u32 {
        if self.light { 2 } else { 1 }
    }

    /// Local time, seconds.
    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    /// Ticks and delivers until `deadline` (then says goodbye) or the
    /// connection ends.
    async fn play(&mut self, tx: &mut WsSender, rx: &mut WsReceiver, deadline: Instant) -> Outcome {
        let every =
            Duration::from_micros(1_000_000 * u64::from(self.inputs_per_wake()) / u64::from(INPUT_RATE_HZ));
        let mut inputs = tokio::time::interval(every);
        inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut reading = true;
        // Two timers for the whole run, moved rather than made anew on each
        // wake: registering a timer is a lock on the runtime's wheel, and a
        // bot wakes about 120 times a second.
        let end = tokio::time::sleep_until(deadline);
        let due = tokio::time::sleep_until(deadline);
        tokio::pin!(end, due);
        let mut due_at = None;
        loop {
            let wake = self.next_wake().unwrap_or(deadline);
            if due_at != Some(wake) {
                due.as_mut().reset(wake);
                due_at = Some(wake);
            }
            tokio::select! {
                () = &mut end => {
                    tx.close().await;
                    return Outcome::Completed;
                }
                () = &mut due => due_at = None,
                _ = inputs.tick() => self.tick(),
                incoming = rx.recv(), if reading => {
                    reading = matches!(incoming, Ok(Incoming::Msg(_)));
                    self.down.push(Instant::now(), (incoming, rx.last_message_bytes));
                }
            }
            if let Err(outcome) = self.deliver(tx).await {
                return outcome;
            }
        }
    }

    /// When something is due: a message on either line, or the session's
    /// next ping.
    fn next_wake(&self) -> Option<Instant> {
        let ping = self.session.poll_timeout().map(|at| self.clock + Duration::from_secs_f64(at.max(0.0)));
        [self.up.next_due(), self.down.next_due(), ping].into_iter().flatten().min()
    }

    /// One input sample (two for a light bot), batched by the session as
    /// the page batches them. The input rate is the bot's frame rate: would
    /// a renderer have two frames to draw the others between, at the delay
    /// it settled on? A light bot has no renderer to ask for.
    fn tick(&mut self) {
        let now = self.now();
        for _ in 0..self.inputs_per_wake() {
            let input = self.brain.next_input(self.session.room(), now);
            self.session.input(input);
        }
        self.record.inputs_sent = self.session.last_input_seq();
        if self.light {
            return;
        }
        let Some(render_tick) = self.session.advance_playout(now) else { return };
        let Some(room) = self.session.room() else { return };
        self.record.renders += 1;
        if self.record.last_tick.is_none_or(|newest| f64::from(newest) < render_tick) {
            self.record.underruns += 1;
        }
        if let Some(latest) = room.clock().tick_at(now) {
            self.record.playout_delay_ms_sum += (latest - render_tick) / room.clock().tick_rate() * 1000.0;
        }
    }

    /// What is due arrives (into the session) and goes out (to the socket).
    async fn deliver(&mut self, tx: &mut WsSender) -> Result<(), Outcome> {
        let now = Instant::now();
        while let Some((incoming, size)) = self.down.pop_due(now) {
            match incoming {
                Ok(Incoming::Msg(msg)) => self.receive(msg, size)?,
                Ok(Incoming::Closed(frame)) => {
                    let (code, reason) =
                        frame.unwrap_or((close::ABNORMAL, "connection closed without a close frame".into()));
                    return Err(Outcome::Disconnected { code, reason });
                }
                // Reset mid-game: the connection dropped, as a crash drops it.
                Err(ClientError::Lost(reason)) => {
                    return Err(Outcome::Disconnected { code: close::ABNORMAL, reason });
                }
                Err(e) => return Err(failure_outcome(e)),
            }
        }
        while let Some(msg) = self.session.poll_transmit(self.now()) {
            self.up.push(now, msg);
        }
        while let Some(msg) = self.up.pop_due(now) {
            tx.send(&msg).await.map_err(failure_outcome)?;
        }
        Ok(())
    }

    /// One server message: counted, then applied by the session.
    fn receive(&mut self, msg: ServerMsg, size: usize) -> Result<(), Outcome> {
        let is_frame = matches!(msg, ServerMsg::Frame(_));
        if let ServerMsg::Frame(frame) = &msg {
            self.record.observe_frame(frame, size);
            self.live.frames.fetch_add(1, Relaxed);
        }
        let corrected = |session: &ClientSession| {
            session.room().map_or(0.0, |room| room.prediction().corrections.total_units)
        };
        let before = corrected(&self.session);
        let now = self.now();
        self.session.handle(msg, now).map_err(|e| Outcome::ProtocolError { error: e.to_string() })?;
        while let Some(event) = self.session.poll_event() {
            if let Event::RoundTrip(secs) = event {
                self.record.rtt_ms.push(secs * 1000.0);
            }
        }
        // Who was seen, and who moved, is a figure over the run: every
        // eighth frame tells it as well as all thirty a second, for an
        // eighth of the cost (it was the bots' biggest cost of their own).
        if is_frame && let Some(room) = self.session.room() {
            let view = room.view();
            self.record.max_players_seen = self.record.max_players_seen.max(view.len() + 1);
            if self.record.frames.is_multiple_of(VIEW_EVERY) {
                self.record.observe_view(view);
            }
        }
        let moved = corrected(&self.session) - before;
        if moved > 0.0 {
            self.record.correction_units.push(moved);
        }
        Ok(())
    }

    /// Where to connect after `outcome`: the node a `Moved` named, or, with
    /// `--reconnect-secs`, the same node after a drop; `None`: the run ends.
    fn where_next(&self, outcome: &Outcome, config: &SwarmConfig) -> Option<String> {
        let Outcome::Disconnected { code, .. } = outcome else { return None };
        if *code == close::MOVED {
            return self.session.moved().and_then(|moved| websocket_url(&moved.url));
        }
        let dropped = matches!(*code, close::ABNORMAL | close::GOING_AWAY | close::TRY_AGAIN_LATER);
        (dropped && config.reconnect.is_some()).then(|| self.url.clone())
    }

    /// Takes the seat back at `url` (then at `--url` and the cluster's other
    /// nodes in turn, retrying with backoff within `--reconnect-secs`, at
    /// least 10 s after a `Moved`), and records the gap and whether the
    /// player and its points came through.
    async fn reconnect(
        &mut self,
        url: String,
        (config, nodes): (&SwarmConfig, &KnownNodes),
        deadline: Instant,
    ) -> Result<WsClient, Outcome> {
        let lost = Instant::now();
        let window = config.reconnect.unwrap_or_default().max(Duration::from_secs(10));
        let give_up = (lost + window).min(deadline);
        let before = self
            .session
            .room()
            .map(|room| (room.you(), room.me().map_or(0, |me| me.score), room.round().number));
        let (mut target, mut wait) = (url.clone(), Duration::from_millis(100));
        // The node it was on may be gone: then every other one, in turn.
        let mut elsewhere = Vec::new().into_iter();
        loop {
            let attempt = open(&target, self.session.rejoin(), config, self.clock);
            let error = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok((client, session, url))) => {
                    self.url = url;
                    self.resumed(session, before, lost.elapsed());
                    return Ok(client);
                }
                Ok(Err(ClientError::Rejected(rejection)))
                    if rejection.reason == RejectReason::RoomNotFound =>
                {
                    return Err(failure_outcome(ClientError::Rejected(rejection)));
                }
                Ok(Err(e)) => failure_outcome(e),
                Err(_) => Outcome::ConnectFailed { error: "timed out reconnecting".into() },
            };
            if Instant::now() + wait >= give_up {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
            target = match elsewhere.next() {
                Some(next) => next,
                None => {
                    elsewhere = nodes.after(&url, &config.url).into_iter();
                    elsewhere.next().unwrap_or_else(|| config.url.clone())
                }
            };
        }
    }

    /// A new connection's session replaces the old one; what it kept is
    /// recorded.
    fn resumed(&mut self, session: ClientSession, before: Option<(u16, i32, u32)>, gap: Duration) {
        let record = &mut self.record;
        record.reconnects += 1;
        record.worst_gap_ms = record.worst_gap_ms.max(gap.as_secs_f64() * 1000.0);
        if let (Some((id, score, round)), Some(room)) = (before, session.room()) {
            if room.you() != id {
                record.players_lost += 1;
            } else if room.round().number == round {
                let now = room.me().map_or(0, |me| me.score);
                record.points_lost += i64::from((score - now).max(0));
            }
        }
        record.room = session.room().map(|room| room.code().to_owned());
        self.session = session;
        // The new connection's frames start a new count.
        self.record.resumed_after = self.record.last_tick.take().or(self.record.resumed_after);
    }

    /// The record, completed with what the session measured.
    fn finish(mut self, outcome: Outcome, connected_at: Instant, (up, down): (u64, u64)) -> BotRecord {
        let record = &mut self.record;
        if let Some(room) = self.session.room() {
            record.interp_delay_ms = room.clock().interp_delay_ticks() / room.clock().tick_rate() * 1000.0;
            record.corrections = room.prediction().corrections;
            (record.knockouts_given, record.knockouts_taken) = room.knockouts();
        }
        record.outcome = outcome;
        record.connected_secs = connected_at.elapsed().as_secs_f64();
        record.bytes_up = up;
        record.bytes_down = down;
        self.live.finished.fetch_add(1, Relaxed);
        self.record
    }
}

fn failure_outcome(error: ClientError) -> Outcome {
    match error {
        ClientError::Rejected(rejection) => Outcome::Rejected { message: rejection.message },
        ClientError::Protocol(error) => Outcome::ProtocolError { error },
        ClientError::Closed { code, reason } => Outcome::Disconnected { code, reason },
        other => Outcome::ConnectFailed { error: other.to_string() },
    }
}
