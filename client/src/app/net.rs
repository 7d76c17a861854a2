//! The connection: one gloo-net WebSocket task per attempt, talking to the
//! ECS over channels; reconnects with backoff; applies server messages.

use std::collections::HashMap;
use std::sync::Mutex;

use arena_shared::codec::{decode_server, encode_client};
use arena_shared::netcode::{Interpolator, Prediction, RttEstimate, ServerClock};
use arena_shared::protocol::{
    ClientMsg, PROTOCOL_VERSION, PlayerId, RejectReason, ResumeToken, RoomRequest, ServerMsg, close,
};
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::{Sink, StreamExt};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};

use super::now_secs;

/// First wait before reconnecting, and the most it grows to.
const BACKOFF_START_SECS: f64 = 0.5;
const BACKOFF_MAX_SECS: f64 = 10.0;
/// How often to measure the round trip.
const PING_EVERY_SECS: f64 = 1.0;

pub struct NetPlugin;

impl Plugin for NetPlugin {
    fn build(&self, app: &mut App) {
        let (events_tx, events_rx) = unbounded();
        app.insert_resource(Net::new(server_url(), player_name(), events_tx, events_rx))
            .init_resource::<Game>()
            .add_systems(PreUpdate, (receive_messages, manage_connection, send_pings).chain());
    }
}

/// What the player sees on the status line.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnState {
    /// The landing screen: waiting for Play or Create a private room.
    Choosing,
    Connecting,
    Connected,
    /// The server refused us; `retry_at` is when we try again, if ever.
    Rejected {
        message: String,
        retry_at: Option<f64>,
    },
    Disconnected {
        reason: String,
        retry_at: f64,
    },
    /// The invite link's room is gone; the page offers a new room.
    RoomGone {
        message: String,
    },
}

/// From a socket task to the ECS; `attempt` tells stale tasks apart.
enum NetEvent {
    Msg { attempt: u32, msg: ServerMsg, at: f64 },
    Closed { attempt: u32, code: u16, reason: String },
}

#[derive(Resource)]
pub struct Net {
    pub state: ConnState,
    pub url: String,
    pub name: String,
    /// The room an invite link (`/r/<code>`) leads to, if the page is one.
    pub link_room: Option<String>,
    /// The room we were last welcomed into; reconnects go back to it.
    pub room: Option<String>,
    /// Open a new private room on the next connect (the landing screen's
    /// choice, or `?create`).
    create_private: bool,
    /// The seat's resume token from that room's `Welcome`; kept in the tab's
    /// `sessionStorage`, so a reload or a dropped socket gets the player back.
    resume: Option<ResumeToken>,
    /// Connection attempts so far; events from older ones are ignored.
    attempt: u32,
    backoff_secs: f64,
    /// Messages for the current socket task.
    outgoing: Option<UnboundedSender<ClientMsg>>,
    events_tx: UnboundedSender<NetEvent>,
    /// Behind a mutex only because resources must be `Sync`.
    events_rx: Mutex<UnboundedReceiver<NetEvent>>,
    /// The rejection received on the current attempt, if any.
    rejection: Option<(RejectReason, String)>,
    last_ping: f64,
}

impl Net {
    fn new(
        url: String,
        name: String,
        events_tx: UnboundedSender<NetEvent>,
        events_rx: UnboundedReceiver<NetEvent>,
    ) -> Self {
        let seat = saved_seat();
        let link_room = link_room();
        // The landing screen shows only when nothing says where to play.
        let chosen = seat.is_some() || link_room.is_some() || query_has("name") || query_has("play");
        let create_private = query_has("create");
        Net {
            state: if chosen || create_private { ConnState::Connecting } else { ConnState::Choosing },
            url,
            name,
            link_room,
            create_private,
            room: seat.as_ref().map(|(room, _)| room.clone()),
            resume: seat.map(|(_, token)| token),
            attempt: 0,
            backoff_secs: BACKOFF_START_SECS,
            outgoing: None,
            events_tx,
            events_rx: Mutex::new(events_rx),
            rejection: None,
            last_ping: 0.0,
        }
    }

    /// Queues a message for the server; dropped when not connected.
    pub fn send(&self, msg: ClientMsg) {
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
        self.rejection = None;
        let (tx, rx) = unbounded();
        self.outgoing = Some(tx);
        wasm_bindgen_futures::spawn_local(run_socket(
            self.attempt,
            self.url.clone(),
            self.name.clone(),
            self.room_request(),
            self.room.as_ref().and(self.resume),
            self.events_tx.clone(),
            rx,
        ));
    }
}

/// Everything the client knows of the game.
#[derive(Resource, Default)]
pub struct Game {
    pub you: Option<PlayerId>,
    pub names: HashMap<PlayerId, String>,
    pub prediction: Prediction,
    pub interpolator: Interpolator,
    pub clock: Option<ServerClock>,
    pub rtt: RttEstimate,
    pub tick: u32,
    pub players_online: usize,
    /// The room's code, for its invite link.
    pub room: String,
    /// Players whose socket dropped; their seat is held while they reconnect.
    pub away: std::collections::HashSet<PlayerId>,
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

/// What the landing screen's buttons chose: `quick` or `private`
/// (`data-choice` on `<body>`, set by the page).
fn landing_choice() -> Option<String> {
    web_sys::window()?.document()?.body()?.get_attribute("data-choice")
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

/// `?name=` if given, else a generated one.
fn player_name() -> String {
    let param = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|p| p.get("name"));
    param.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
        const ANIMALS: [&str; 8] = ["otter", "lynx", "heron", "gecko", "bison", "koala", "raven", "tapir"];
        let n = (now_secs() * 1000.0) as usize ^ (page_opened_at() as usize);
        format!("{}-{}", ANIMALS[n % ANIMALS.len()], n % 1000)
    })
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
    name: String,
    room: RoomRequest,
    resume: Option<ResumeToken>,
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
    if !send(&ClientMsg::Hello { version: PROTOCOL_VERSION, name, room, resume }) {
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

fn receive_messages(mut net: ResMut<Net>, mut game: ResMut<Game>) {
    let net = &mut *net;
    let events: Vec<NetEvent> = {
        let mut rx = net.events_rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    };
    for event in events {
        match event {
            NetEvent::Msg { attempt, msg, at } if attempt == net.attempt => {
                apply_message(net, &mut game, msg, at)
            }
            NetEvent::Closed { attempt, code, reason } if attempt == net.attempt => {
                net.outgoing = None;
                let now = now_secs();
                let retry_at = now + net.backoff_secs;
                let previous = std::mem::replace(&mut net.state, ConnState::Connecting);
                net.state = match (net.rejection.take(), previous) {
                    // Version and name will not fix themselves; full and shutting down might.
                    (Some((RejectReason::VersionMismatch { .. } | RejectReason::BadName, message)), _) => {
                        ConnState::Rejected { message, retry_at: None }
                    }
                    // The link's room is gone for good; a room we were in that
                    // closed (the server restarted, say) means: find another.
                    (Some((RejectReason::RoomNotFound, message)), _) => {
                        if net.link_room.is_some() {
                            ConnState::RoomGone { message }
                        } else {
                            net.room = None;
                            net.resume = None;
                            ConnState::Disconnected {
                                reason: "the room closed; finding another".into(),
                                retry_at: now,
                            }
                        }
                    }
                    // A retry after a rejection keeps the reason up until it succeeds.
                    (Some((_, message)), _) | (None, ConnState::Rejected { message, .. }) => {
                        ConnState::Rejected { message, retry_at: Some(retry_at) }
                    }
                    (None, _) => {
                        let reason = if reason.is_empty() { format!("closed ({code})") } else { reason };
                        ConnState::Disconnected { reason, retry_at }
                    }
                };
                net.backoff_secs = (net.backoff_secs * 2.0).min(BACKOFF_MAX_SECS);
                *game = Game::default();
            }
            _ => {}
        }
    }
}

fn apply_message(net: &mut Net, game: &mut Game, msg: ServerMsg, at: f64) {
    match msg {
        ServerMsg::Welcome(welcome) => {
            *game = Game::default();
            game.you = Some(welcome.you);
            game.clock = Some(ServerClock::new(welcome.tick_rate));
            game.names.extend(welcome.players.into_iter().map(|p| (p.id, p.name)));
            // Our own Joined may come a frame later; the label needs the name now.
            game.names.insert(welcome.you, net.name.trim().to_owned());
            game.room = welcome.room.clone();
            save_seat(&welcome.room, &welcome.resume);
            show_invite(&welcome.room, welcome.private);
            net.create_private = false;
            net.room = Some(welcome.room);
            net.resume = Some(welcome.resume);
            net.state = ConnState::Connected;
            net.backoff_secs = BACKOFF_START_SECS;
            net.last_ping = 0.0;
        }
        ServerMsg::Rejected(rejection) => net.rejection = Some((rejection.reason, rejection.message)),
        ServerMsg::Joined(player) => {
            game.names.insert(player.id, player.name);
        }
        ServerMsg::Left { id } => {
            game.names.remove(&id);
            game.away.remove(&id);
        }
        ServerMsg::Away { id } => {
            game.away.insert(id);
        }
        ServerMsg::Back { id } => {
            game.away.remove(&id);
        }
        ServerMsg::Pong { client_time_us } => game.rtt.on_pong(client_time_us as f64 / 1e6, at),
        ServerMsg::Frame(frame) => {
            if let Some(clock) = &mut game.clock {
                clock.on_frame(frame.tick, at);
            }
            if let Some(me) = game.you.and_then(|you| frame.players.iter().find(|p| p.id == you)) {
                game.prediction.reconcile(me.body, frame.ack_seq);
            }
            game.tick = frame.tick;
            game.players_online = frame.players.len();
            game.interpolator.push(frame.tick, frame.players);
        }
    }
}

fn manage_connection(mut net: ResMut<Net>) {
    let now = now_secs();
    if net.state == ConnState::Choosing {
        match landing_choice().as_deref() {
            Some("quick") => net.state = ConnState::Connecting,
            Some("private") => {
                net.create_private = true;
                net.state = ConnState::Connecting;
            }
            _ => return,
        }
    }
    let due = match &net.state {
        ConnState::Choosing | ConnState::RoomGone { .. } => false,
        ConnState::Connecting => net.outgoing.is_none(),
        ConnState::Disconnected { retry_at, .. } => now >= *retry_at,
        ConnState::Rejected { retry_at: Some(retry_at), .. } => now >= *retry_at && net.outgoing.is_none(),
        ConnState::Rejected { retry_at: None, .. } | ConnState::Connected => false,
    };
    if due {
        if let ConnState::Disconnected { .. } = net.state {
            net.state = ConnState::Connecting;
        }
        net.connect();
    }
}

fn send_pings(mut net: ResMut<Net>) {
    let now = now_secs();
    if net.state == ConnState::Connected && now - net.last_ping >= PING_EVERY_SECS {
        net.last_ping = now;
        net.send(ClientMsg::Ping { client_time_us: (now * 1e6) as u64 });
    }
}
