//! The connection: one gloo-net WebSocket task per attempt, talking to the
//! ECS over channels; reconnects with backoff. Every server message goes
//! through the [`ClientSession`], and what it changed is written as a
//! [`SessionChange`] message for the renderer.

use std::sync::Mutex;

use arena_shared::codec::{decode_server, encode_client};
use arena_shared::protocol::{
    COLORS, ClientMsg, PROTOCOL_VERSION, RejectReason, ResumeToken, RoomRequest, ServerMsg, close,
};
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::{Sink, StreamExt};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};

use super::{ArenaSet, Screen, body_attr, now_secs};
use crate::session::{Change, ClientSession};

/// First wait before reconnecting, and the most it grows to.
const BACKOFF_START_SECS: f64 = 0.5;
const BACKOFF_MAX_SECS: f64 = 10.0;
/// How often to measure the round trip.
const PING_EVERY_SECS: f64 = 1.0;

pub struct NetPlugin;

impl Plugin for NetPlugin {
    fn build(&self, app: &mut App) {
        let (events_tx, events_rx) = unbounded();
        let net = Net::new(server_url(), events_tx, events_rx);
        let first = if net.skip_join_screen { Screen::Connecting } else { Screen::Join };
        app.insert_resource(net)
            .insert_state(first)
            .init_resource::<Session>()
            .add_message::<SessionChange>()
            .add_systems(
                Update,
                (
                    leave_join_screen.run_if(in_state(Screen::Join)),
                    connect_when_due.run_if(in_state(Screen::Connecting).or_else(in_state(Screen::Waiting))),
                    receive_messages,
                    send_pings.run_if(in_state(Screen::Playing)),
                )
                    .chain()
                    .in_set(ArenaSet::Network),
            );
    }
}

/// What the status line says besides the state itself: why we are waiting.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The server refused us; `retry_at` is when we try again, if ever.
    Rejected {
        message: String,
        retry_at: Option<f64>,
    },
    Disconnected {
        reason: String,
        retry_at: f64,
    },
    /// The invite link's room is gone.
    RoomGone {
        message: String,
    },
}

/// What one server message changed in the session.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SessionChange(pub Change);

/// The room we are playing in, while we are.
#[derive(Resource, Default)]
pub struct Session(pub Option<ClientSession>);

/// From a socket task to the ECS; `attempt` tells stale tasks apart.
enum NetEvent {
    Msg { attempt: u32, msg: ServerMsg, at: f64 },
    Closed { attempt: u32, code: u16, reason: String },
}

#[derive(Resource)]
pub struct Net {
    pub url: String,
    pub name: String,
    pub color: u8,
    pub notice: Option<Notice>,
    /// Whether the page said where to play already (`?play`, an invite
    /// link, `?create`, or a seat to resume).
    skip_join_screen: bool,
    /// The room an invite link (`/r/<code>`) leads to, if the page is one.
    pub link_room: Option<String>,
    /// The room we were last welcomed into; reconnects go back to it.
    pub room: Option<String>,
    /// Open a new private room on the next connect (the join screen's
    /// choice, or `?create`).
    create_private: bool,
    /// The seat's resume token from that room's `Welcome`; kept in the tab's
    /// `sessionStorage`, so a reload or a dropped socket gets the player back.
    resume: Option<ResumeToken>,
    /// Connection attempts so far; events from older ones are ignored.
    attempt: u32,
    backoff_secs: f64,
    retry_at: f64,
    /// Messages for the current socket task.
    outgoing: Option<UnboundedSender<ClientMsg>>,
    events_tx: UnboundedSender<NetEvent>,
    /// Behind a mutex only because resources must be `Sync`.
    events_rx: Mutex<UnboundedReceiver<NetEvent>>,
    /// The rejection received on the current attempt, if any.
    rejection: Option<(RejectReason, String)>,
    /// `?lag=MS&jitter=MS`: a link conditioner for trying the game on a
    /// bad network (behind a mutex only because resources must be `Sync`).
    lag: Mutex<Option<Lag>>,
    last_ping: f64,
}

impl Net {
    fn new(
        url: String,
        events_tx: UnboundedSender<NetEvent>,
        events_rx: UnboundedReceiver<NetEvent>,
    ) -> Self {
        let seat = saved_seat();
        let link_room = link_room();
        let create_private = query_has("create");
        let skip_join_screen = seat.is_some() || link_room.is_some() || query_has("play") || create_private;
        Net {
            url,
            name: player_name(),
            color: player_color(),
            notice: None,
            skip_join_screen,
            link_room,
            create_private,
            room: seat.as_ref().map(|(room, _)| room.clone()),
            resume: seat.map(|(_, token)| token),
            attempt: 0,
            backoff_secs: BACKOFF_START_SECS,
            retry_at: 0.0,
            outgoing: None,
            events_tx,
            events_rx: Mutex::new(events_rx),
            rejection: None,
            last_ping: 0.0,
            lag: Mutex::new(Lag::from_query()),
        }
    }

    /// Queues a message for the server (after the page's simulated lag, if
    /// any); dropped when not connected.
    pub fn send(&self, msg: ClientMsg) {
        if self.outgoing.is_none() {
            return;
        }
        match self.lag.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_mut() {
            Some(lag) => lag.up(now_secs(), msg),
            None => self.forward(msg),
        }
    }

    fn forward(&self, msg: ClientMsg) {
        if let Some(outgoing) = &self.outgoing {
            let _ = outgoing.unbounded_send(msg);
        }
    }

    /// Back to the room we were in, else the link's room, else a new
    /// private room if asked, else quick-join.
    fn room_request(&self) -> RoomRequest {
        match self.room.as_ref().or(self.link_room.as_ref()) {
            Some(code) => RoomRequest::Join { code: code.clone() },
            None if self.create_private => RoomRequest::CreatePrivate,
            None => RoomRequest::Quick,
        }
    }

    fn connect(&mut self) {
        self.attempt += 1;
        // Nothing held back for the old socket may reach the new one.
        if let Some(lag) = self.lag.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).as_mut() {
            lag.up.clear();
            lag.down.clear();
        }
        self.rejection = None;
        let (tx, rx) = unbounded();
        self.outgoing = Some(tx);
        wasm_bindgen_futures::spawn_local(run_socket(
            self.attempt,
            self.url.clone(),
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: self.name.clone(),
                color: self.color,
                room: self.room_request(),
                resume: self.room.as_ref().and(self.resume),
            },
            self.events_tx.clone(),
            rx,
        ));
    }
}

/// Play or Create on the join screen (`data-choice` on `<body>`, with the
/// name and colour beside it).
fn leave_join_screen(mut net: ResMut<Net>, mut next: ResMut<NextState<Screen>>) {
    let Some(choice) = body_attr("data-choice") else { return };
    net.name = player_name();
    net.color = player_color();
    net.create_private = choice == "private";
    next.set(Screen::Connecting);
}

fn connect_when_due(mut net: ResMut<Net>, state: Res<State<Screen>>) {
    let due = match state.get() {
        Screen::Connecting => net.outgoing.is_none(),
        _ => net.outgoing.is_none() && now_secs() >= net.retry_at && net.retry_at > 0.0,
    };
    if due {
        net.connect();
    }
}

/// `?server=` if given, else `/ws` on the host that served the page, with
/// `wss:` when the page is `https:`.
fn server_url() -> String {
    let location = web_sys::window().map(|w| w.location());
    let param = location.as_ref().and_then(|l| l.search().ok()).and_then(|search| {
        web_sys::UrlSearchParams::new_with_str(&search).ok().and_then(|p| p.get("server"))
    });
    if let Some(server) = param.filter(|s| !s.is_empty()) {
        return server;
    }
    let host = location.as_ref().and_then(|l| l.host().ok()).unwrap_or_else(|| "127.0.0.1:7777".into());
    let secure = location.as_ref().and_then(|l| l.protocol().ok()).is_some_and(|p| p == "https:");
    format!("{}://{host}/ws", if secure { "wss" } else { "ws" })
}

/// Where the tab keeps its seat: `room-code:token-in-hex`.
const SEAT_KEY: &str = "arena-seat";

/// The room and resume token this tab last played with, if any.
fn saved_seat() -> Option<(String, ResumeToken)> {
    let storage = web_sys::window()?.session_storage().ok()??;
    let saved = storage.get_item(SEAT_KEY).ok()??;
    let (room, hex) = saved.split_once(':')?;
    let mut token = [0u8; 16];
    for (i, byte) in token.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((room.to_owned(), token))
}

fn save_seat(room: &str, token: &ResumeToken) {
    let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.session_storage()) {
        let _ = storage.set_item(SEAT_KEY, &format!("{room}:{hex}"));
    }
}

/// Whether the page's query has `key` (`?play`, `?name=…`, `?create`).
fn query_has(key: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .is_some_and(|params| params.has(key))
}

/// Shows the invite link of a private room (`data-private` on `<body>`
/// reveals it, with its Copy button).
fn show_invite(room: &str, private: bool) {
    let Some(window) = web_sys::window() else { return };
    let Some(document) = window.document() else { return };
    if let Some(body) = document.body() {
        let _ = body.set_attribute("data-private", if private { "1" } else { "0" });
    }
    let origin = window.location().origin().unwrap_or_default();
    let link = format!("{origin}/r/{room}");
    if let Some(anchor) = document.get_element_by_id("invite-link") {
        let _ = anchor.set_attribute("href", &link);
        anchor.set_text_content(Some(&link));
    }
}

/// The code in an invite link's path, `/r/<code>`.
fn link_room() -> Option<String> {
    let path = web_sys::window()?.location().pathname().ok()?;
    let code = path.strip_prefix("/r/")?.trim_end_matches('/');
    (!code.is_empty()).then(|| code.to_owned())
}

/// The join screen's name (`data-name`, from the name box, `?name=` or
/// the one remembered), else a generated one.
fn player_name() -> String {
    body_attr("data-name").filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
        const ANIMALS: [&str; 8] = ["otter", "lynx", "heron", "gecko", "bison", "koala", "raven", "tapir"];
        let n = (now_secs() * 1000.0) as usize ^ (page_opened_at() as usize);
        format!("{}-{}", ANIMALS[n % ANIMALS.len()], n % 1000)
    })
}

/// The join screen's colour (`data-color`).
fn player_color() -> u8 {
    body_attr("data-color").and_then(|c| c.parse::<u8>().ok()).filter(|&c| c < COLORS).unwrap_or(0)
}

/// When the page was opened (µs, truncated): enough to tell two tabs'
/// generated names apart; nothing depends on it being random.
fn page_opened_at() -> u32 {
    (web_sys::window().and_then(|w| w.performance()).map(|p| p.time_origin()).unwrap_or_default() * 1000.0)
        as u32
}

/// One connection attempt: open, say Hello, then pump messages both ways
/// until the socket closes.
///
/// gloo-net delivers what arrives (messages and the close event, in order).
/// Sending goes through the same socket's web-sys handle as a `Uint8Array`:
/// gloo-net sends bytes as a `Blob`, which Chromium reads asynchronously and,
/// under load, so slowly that inputs sat in `bufferedAmount` for seconds.
async fn run_socket(
    attempt: u32,
    url: String,
    hello: ClientMsg,
    events: UnboundedSender<NetEvent>,
    mut outgoing: UnboundedReceiver<ClientMsg>,
) {
    let closed = |code: u16, reason: String| NetEvent::Closed { attempt, code, reason };
    let opened = web_sys::WebSocket::new(&url).map_err(|e| format!("{e:?}")).and_then(|raw| {
        let sender = raw.clone();
        WebSocket::try_from(raw).map(|socket| (sender, socket)).map_err(|e| e.to_string())
    });
    let (sender, socket) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let _ = events.unbounded_send(closed(close::ABNORMAL, format!("cannot open {url}: {e}")));
            return;
        }
    };
    let mut socket = Box::pin(socket);
    // The sink side of gloo's socket is ready once the socket is open.
    if futures_util::future::poll_fn(|cx| socket.as_mut().poll_ready(cx)).await.is_err() {
        let _ = events.unbounded_send(closed(close::ABNORMAL, "the server did not answer".into()));
        return;
    }
    let send = |msg: &ClientMsg| sender.send_with_u8_array(&encode_client(msg)).is_ok();
    if !send(&hello) {
        let _ = events.unbounded_send(closed(close::ABNORMAL, "the server did not answer".into()));
        return;
    }
    let reader = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Bytes(bytes)) => match decode_server(&bytes) {
                    Ok(msg) => {
                        let _ = events.unbounded_send(NetEvent::Msg { attempt, msg, at: now_secs() });
                    }
                    Err(e) => return closed(4000, format!("the server sent bad data: {e}")),
                },
                Ok(Message::Text(_)) => return closed(4000, "the server sent text".into()),
                Err(WebSocketError::ConnectionClose(event)) => return closed(event.code, event.reason),
                Err(e) => return closed(close::ABNORMAL, e.to_string()),
            }
        }
        closed(close::ABNORMAL, "connection lost".into())
    };
    let writer = async {
        while let Some(msg) = outgoing.next().await {
            if !send(&msg) {
                break;
            }
        }
        closed(close::ABNORMAL, "connection lost while sending".into())
    };
    let ended = futures_util::future::select(Box::pin(reader), Box::pin(writer)).await.factor_first().0;
    let _ = events.unbounded_send(ended);
}

fn receive_messages(
    mut net: ResMut<Net>,
    mut session: ResMut<Session>,
    mut changes: MessageWriter<SessionChange>,
    mut next: ResMut<NextState<Screen>>,
) {
    let net = &mut *net;
    let events: Vec<NetEvent> = {
        let mut rx = net.events_rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let arrived: Vec<NetEvent> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let mut lag = net.lag.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match lag.as_mut() {
            Some(lag) => {
                let now = now_secs();
                arrived.into_iter().for_each(|event| lag.down(now, event));
                lag.due_down(now)
            }
            None => arrived,
        }
    };
    // Messages held back by the simulated lag go out when due.
    let due_up = net
        .lag
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_mut()
        .map(|lag| lag.due_up(now_secs()));
    for msg in due_up.into_iter().flatten() {
        net.forward(msg);
    }
    for event in events {
        match event {
            NetEvent::Msg { attempt, msg, at } if attempt == net.attempt => match msg {
                ServerMsg::Welcome(welcome) => {
                    save_seat(&welcome.room, &welcome.resume);
                    show_invite(&welcome.room, welcome.private);
                    net.create_private = false;
                    net.room = Some(welcome.room.clone());
                    net.resume = Some(welcome.resume);
                    net.notice = None;
                    net.backoff_secs = BACKOFF_START_SECS;
                    net.last_ping = 0.0;
                    let started = ClientSession::new(welcome, net.name.trim(), net.color);
                    changes.write_batch(started.roster.keys().map(|&id| SessionChange(Change::Joined(id))));
                    // Our own Joined follows; the roster has us already.
                    session.0 = Some(started);
                    next.set(Screen::Playing);
                }
                ServerMsg::Rejected(rejection) => net.rejection = Some((rejection.reason, rejection.message)),
                msg => {
                    let Some(playing) = session.0.as_mut() else { continue };
                    match playing.apply(msg, at) {
                        Ok(applied) => {
                            if applied.contains(&Change::NeedResync) {
                                net.send(ClientMsg::Resync);
                            }
                            changes.write_batch(applied.into_iter().map(SessionChange));
                        }
                        Err(e) => {
                            // The server broke the protocol: drop the socket and retry.
                            net.outgoing = None;
                            net.attempt += 1;
                            end_session(&mut session, &mut changes);
                            wait(net, &mut next, None, format!("the server sent something unexpected: {e}"));
                        }
                    }
                }
            },
            NetEvent::Closed { attempt, code, reason } if attempt == net.attempt => {
                net.outgoing = None;
                end_session(&mut session, &mut changes);
                let reason = if reason.is_empty() { format!("closed ({code})") } else { reason };
                let rejection = net.rejection.take();
                wait(net, &mut next, rejection, reason);
            }
            _ => {}
        }
    }
}

/// Everyone leaves the screen with the session.
fn end_session(session: &mut Session, changes: &mut MessageWriter<SessionChange>) {
    if let Some(ended) = session.0.take() {
        changes.write_batch(ended.roster.keys().map(|&id| SessionChange(Change::Left(id))));
    }
}

/// After a close: what to tell the player, and when to try again.
fn wait(
    net: &mut Net,
    next: &mut NextState<Screen>,
    rejection: Option<(RejectReason, String)>,
    reason: String,
) {
    let now = now_secs();
    let retry_at = now + net.backoff_secs;
    net.backoff_secs = (net.backoff_secs * 2.0).min(BACKOFF_MAX_SECS);
    let still_rejected = match &net.notice {
        Some(Notice::Rejected { message, .. }) => Some(message.clone()),
        _ => None,
    };
    let (notice, retry) = match rejection {
        // Version and name will not fix themselves; full and shutting down might.
        Some((RejectReason::VersionMismatch { .. } | RejectReason::BadName, message)) => {
            (Notice::Rejected { message, retry_at: None }, None)
        }
        // The link's room is gone for good; a room we were in that closed
        // (the server restarted, say) means: find another.
        Some((RejectReason::RoomNotFound, message)) if net.link_room.is_some() => {
            net.notice = Some(Notice::RoomGone { message });
            next.set(Screen::RoomGone);
            return;
        }
        Some((RejectReason::RoomNotFound, _)) => {
            net.room = None;
            net.resume = None;
            (
                Notice::Disconnected { reason: "the room closed; finding another".into(), retry_at: now },
                Some(now),
            )
        }
        Some((_, message)) => (Notice::Rejected { message, retry_at: Some(retry_at) }, Some(retry_at)),
        // A retry after a rejection keeps the reason up until it succeeds.
        None => match still_rejected {
            Some(message) => (Notice::Rejected { message, retry_at: Some(retry_at) }, Some(retry_at)),
            None => (Notice::Disconnected { reason, retry_at }, Some(retry_at)),
        },
    };
    net.notice = Some(notice);
    net.retry_at = retry.unwrap_or(0.0);
    next.set(Screen::Waiting);
}

fn send_pings(mut net: ResMut<Net>, session: Res<Session>) {
    let now = now_secs();
    if let Some(playing) = &session.0
        && now - net.last_ping >= PING_EVERY_SECS
    {
        net.last_ping = now;
        net.send(playing.ping(now));
    }
}

/// The page's link conditioner (`?lag=100&jitter=20`): each message waits
/// half the lag, give or take half the jitter, each way; like TCP, it never
/// reorders. Arrival times are the delayed ones, as a real link would give.
struct Lag {
    one_way_secs: f64,
    jitter_secs: f64,
    rng: u64,
    up: std::collections::VecDeque<(f64, ClientMsg)>,
    down: std::collections::VecDeque<(f64, NetEvent)>,
}

impl Lag {
    fn from_query() -> Option<Lag> {
        let param = |key| {
            web_sys::window()
                .and_then(|w| w.location().search().ok())
                .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
                .and_then(|p| p.get(key))
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .map(|v| v.clamp(0.0, 5_000.0))
        };
        let (lag, jitter) = (param("lag").unwrap_or(0.0), param("jitter").unwrap_or(0.0));
        (lag > 0.0 || jitter > 0.0).then(|| Lag {
            one_way_secs: lag / 2000.0,
            jitter_secs: jitter / 2000.0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ page_opened_at() as u64,
            up: Default::default(),
            down: Default::default(),
        })
    }

    /// When a message sent at `now` arrives: never before the one before it.
    fn due(&mut self, now: f64, last: Option<f64>) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let spread = (self.rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let due = now + (self.one_way_secs + spread * self.jitter_secs).max(0.0);
        last.map_or(due, |last| due.max(last))
    }

    fn up(&mut self, now: f64, msg: ClientMsg) {
        let due = self.due(now, self.up.back().map(|(due, _)| *due));
        self.up.push_back((due, msg));
    }

    fn down(&mut self, now: f64, event: NetEvent) {
        let due = self.due(now, self.down.back().map(|(due, _)| *due));
        self.down.push_back((due, event));
    }

    fn due_up(&mut self, now: f64) -> Vec<ClientMsg> {
        let mut out = Vec::new();
        while self.up.front().is_some_and(|(due, _)| *due <= now) {
            out.extend(self.up.pop_front().map(|(_, msg)| msg));
        }
        out
    }

    fn due_down(&mut self, now: f64) -> Vec<NetEvent> {
        let mut out = Vec::new();
        while self.down.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((due, event)) = self.down.pop_front() {
                out.push(match event {
                    NetEvent::Msg { attempt, msg, .. } => NetEvent::Msg { attempt, msg, at: due },
                    closed => closed,
                });
            }
        }
        out
    }
}
