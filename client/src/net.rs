//! The connection in the ECS: when to connect (the [`Reconnect`] policy),
//! and the [`ClientSession`] between the socket and the game. Each frame,
//! what arrived goes through the page's link conditioner (`?lag=`) into the
//! session, the session's news goes out as [`SessionChange`] messages for
//! the renderer, and what the session asks to send goes back through the
//! conditioner to the socket. Every protocol rule is the session's.

use arena_shared::protocol::{ClientMsg, close};
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::page::{
    body_attr, lag_query, link_room, now_secs, page_opened_at, player_color, player_name, query_has,
    random_seed, replay_id, save_seat, saved_seat, server_url, set_body_attr, show_invite,
};
use super::screen::{ArenaSet, Screen};
use super::socket::{Socket, SocketEvent};
use arena_client_core::conditioner::{DelayLine, LinkConditions};
use arena_client_core::reconnect::{After, Reconnect};
use arena_client_core::session::{Change, ClientSession, Event, Room, websocket_url};
use std::sync::{Arc, Mutex};

/// How often to measure the round trip.
const PING_EVERY_SECS: f64 = 1.0;

pub struct NetPlugin;

impl Plugin for NetPlugin {
    fn build(&self, app: &mut App) {
        let policy = Policy(
            Reconnect::new(link_room(), saved_seat(), query_has("create"), random_seed())
                .watching(query_has("watch")),
        );
        // A replay's page plays a download, not a connection (`super::replay`).
        let replay = replay_id().is_some();
        let first = if policy.knows_where() || query_has("play") || replay {
            Screen::Connecting
        } else {
            Screen::Join
        };
        app.insert_resource(policy)
            .insert_resource(ServerUrl(server_url()))
            .insert_resource(Player { name: player_name(), color: player_color() })
            .insert_resource(Conditioner::from_page())
            .init_resource::<Socket>()
            .init_resource::<Session>()
            .init_resource::<ClusterNodes>()
            .insert_state(first)
            .add_message::<SessionChange>()
            .add_systems(
                Update,
                (
                    leave_join_screen.run_if(in_state(Screen::Join)),
                    connect_when_due.run_if(in_state(Screen::Connecting).or_else(in_state(Screen::Waiting))),
                    receive,
                    transmit,
                    learn_cluster,
                )
                    .chain()
                    .run_if(move || !replay)
                    .in_set(ArenaSet::Network),
            )
            .add_systems(OnEnter(Screen::Playing), ask_cluster.run_if(move || !replay));
    }
}

/// Where the page's own server is (`?server=`, else this page's host); in
/// a cluster, a `Moved` sends the page to another node for a while (see
/// [`Reconnect::connecting`]).
#[derive(Resource)]
pub struct ServerUrl(pub String);

/// Who plays: the join screen's name and colour.
#[derive(Resource)]
pub struct Player {
    pub name: String,
    pub color: u8,
}

/// Where to connect next, when, and what to say meanwhile.
#[derive(Resource, Deref, DerefMut)]
pub struct Policy(pub Reconnect);

/// The current connection's protocol, from its `Hello` on.
#[derive(Resource, Default)]
pub struct Session(pub Option<ClientSession>);

impl Session {
    /// The room, once welcomed.
    pub fn room(&self) -> Option<&Room> {
        self.0.as_ref().and_then(ClientSession::room)
    }
}

/// What one server message changed in the room.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct SessionChange(pub Change);

/// The page's link conditioner (`?lag=100&jitter=20`), both ways; none
/// without the query. Arrival times are the delayed ones, as a real link
/// would give.
#[derive(Resource)]
struct Conditioner(Option<Lines>);

/// Both ways of the page's simulated link, on the page's clock.
struct Lines {
    up: DelayLine<ClientMsg, f64>,
    down: DelayLine<(u32, SocketEvent), f64>,
}

impl Conditioner {
    fn from_page() -> Self {
        let (latency_ms, jitter_ms) = lag_query();
        let conditions = LinkConditions { latency_ms, jitter_ms, ..LinkConditions::default() };
        let seed = 0x9E37_79B9_7F4A_7C15 ^ u64::from(page_opened_at());
        Conditioner((!conditions.is_perfect()).then(|| Lines {
            up: DelayLine::new(conditions, seed, now_secs()),
            down: DelayLine::new(conditions, !seed, now_secs()),
        }))
    }

    /// Nothing held back for the old socket may reach a new one.
    fn clear(&mut self) {
        if let Some(lines) = &mut self.0 {
            lines.up.clear();
            lines.down.clear();
        }
    }
}

/// The cluster's nodes (their WebSocket URLs), asked of the page's own
/// server after each welcome: if the node the page plays on dies, the
/// policy tries the others instead of waiting for it.
#[derive(Resource, Default)]
struct ClusterNodes(Arc<Mutex<Option<Vec<String>>>>);

/// Asks the page's own server for the cluster's nodes (`GET /api/cluster`;
/// outside a cluster the one node, which changes nothing).
fn ask_cluster(url: Res<ServerUrl>, nodes: Res<ClusterNodes>) {
    let Some(endpoint) = cluster_endpoint(&url.0) else { return };
    let arrived = nodes.0.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let Ok(response) = gloo_net::http::Request::get(&endpoint).send().await else { return };
        let Ok(text) = response.text().await else { return };
        let Ok(answer) = serde_json::from_str::<serde_json::Value>(&text) else { return };
        let Some(listed) = answer.get("nodes").and_then(|nodes| nodes.as_array()) else { return };
        let urls = listed.iter().filter_map(|node| websocket_url(node.get("url")?.as_str()?)).collect();
        if let Ok(mut slot) = arrived.lock() {
            *slot = Some(urls);
        }
    });
}

/// Hands the nodes that arrived to the policy.
fn learn_cluster(nodes: Res<ClusterNodes>, mut policy: ResMut<Policy>) {
    let Some(urls) = nodes.0.lock().ok().and_then(|mut slot| slot.take()) else { return };
    set_body_attr("data-nodes", &urls.len().to_string());
    policy.learn_nodes(urls);
}

/// `http(s)://host/api/cluster` for the socket URL `ws(s)://host/ws`.
fn cluster_endpoint(ws_url: &str) -> Option<String> {
    let (scheme, rest) = ws_url.split_once("://")?;
    let scheme = match scheme {
        "ws" => "http",
        "wss" => "https",
        _ => return None,
    };
    let host = rest.split(['/', '?', '#']).next().filter(|host| !host.is_empty())?;
    Some(format!("{scheme}://{host}/api/cluster"))
}

/// Play or Create on the join screen (`data-choice` on `<body>`, with the
/// name and colour beside it).
fn leave_join_screen(
    mut player: ResMut<Player>,
    mut policy: ResMut<Policy>,
    mut next: ResMut<NextState<Screen>>,
) {
    let Some(choice) = body_attr("data-choice") else { return };
    *player = Player { name: player_name(), color: player_color() };
    policy.choose(choice == "private");
    next.set(Screen::Connecting);
}

fn connect_when_due(
    state: Res<State<Screen>>,
    mut policy: ResMut<Policy>,
    player: Res<Player>,
    url: Res<ServerUrl>,
    mut socket: ResMut<Socket>,
    mut session: ResMut<Session>,
    mut conditioner: ResMut<Conditioner>,
) {
    let due = match state.get() {
        Screen::Connecting => !socket.is_open(),
        _ => !socket.is_open() && policy.due(now_secs()),
    };
    if due {
        conditioner.clear();
        // The page's own server, or the cluster node a Moved named.
        socket.open(&policy.connecting(&url.0));
        let join = policy.join_request(player.name.trim(), player.color);
        session.0 = Some(ClientSession::new(join, PING_EVERY_SECS));
    }
}

/// What arrived, through the conditioner, into the session.
fn receive(
    mut socket: ResMut<Socket>,
    mut conditioner: ResMut<Conditioner>,
    mut session: ResMut<Session>,
    mut policy: ResMut<Policy>,
    mut changes: MessageWriter<SessionChange>,
    mut next: ResMut<NextState<Screen>>,
) {
    let now = now_secs();
    let arrived = socket.arrived();
    let due: Vec<(f64, (u32, SocketEvent))> = match &mut conditioner.0 {
        Some(Lines { down, .. }) => {
            arrived.into_iter().for_each(|event| down.push(now, event));
            std::iter::from_fn(|| down.pop_due_at(now)).collect()
        }
        None => arrived.into_iter().map(|event| (now, event)).collect(),
    };
    for (at, (attempt, event)) in due {
        if !socket.is_current(attempt) {
            continue;
        }
        let ended = match event {
            SocketEvent::Msg(msg) => match session.0.as_mut().map(|s| s.handle(msg, at)) {
                Some(Err(e)) => Some((None, format!("the server sent something unexpected: {e}"), 0)),
                _ => None,
            },
            SocketEvent::Closed { code, reason } => {
                let rejection = session.0.as_ref().and_then(|s| s.rejection().cloned());
                Some((rejection, if reason.is_empty() { format!("closed ({code})") } else { reason }, code))
            }
        };
        report(&mut session, &mut policy, &mut changes, &mut next);
        if let Some((rejection, reason, code)) = ended {
            // Closed, or the server broke the protocol: drop the socket, retry
            // (unless an operator removed us).
            socket.forget();
            end_session(&mut session, &mut changes);
            let after = match code {
                close::KICKED => policy.kicked(reason),
                close::TO_WATCHERS => policy.made_watcher(now),
                _ => policy.closed(rejection, reason, now),
            };
            next.set(match after {
                After::Wait { .. } => Screen::Waiting,
                After::RoomGone => Screen::RoomGone,
            });
        }
    }
}

/// The session's news: a welcome starts play, changes go to the renderer.
pub(super) fn report(
    session: &mut Session,
    policy: &mut Policy,
    changes: &mut MessageWriter<SessionChange>,
    next: &mut NextState<Screen>,
) {
    let Some(playing) = session.0.as_mut() else { return };
    while let Some(event) = playing.poll_event() {
        match event {
            Event::Welcomed { .. } => {
                let Some(room) = playing.room() else { continue };
                // A watcher holds no seat to come back to.
                if !room.is_watching() {
                    save_seat(room.code(), &room.resume_token());
                }
                set_body_attr("data-watching", if room.is_watching() { "1" } else { "0" });
                // How many times this page was welcomed: a move to another
                // node is one more, however fast it went.
                let welcomes = body_attr("data-welcomes").and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
                set_body_attr("data-welcomes", &(welcomes + 1).to_string());
                show_invite(room.code(), room.is_private());
                policy.welcomed(room.code(), room.resume_token());
                // Our own Joined follows; the roster has us already.
                changes.write_batch(room.roster().keys().map(|&id| SessionChange(Change::Joined(id))));
                next.set(Screen::Playing);
            }
            Event::Changed(change) => {
                changes.write(SessionChange(change));
            }
            // Its close follows; the policy connects there at once.
            Event::Moved(moved) => {
                policy.moved(&moved);
            }
            Event::Rejected(_) | Event::RoundTrip(_) => {}
        }
    }
}

/// Everyone leaves the screen with the session.
pub(super) fn end_session(session: &mut Session, changes: &mut MessageWriter<SessionChange>) {
    if let Some(room) = session.0.take().as_ref().and_then(ClientSession::room) {
        changes.write_batch(room.roster().keys().map(|&id| SessionChange(Change::Left(id))));
    }
}

/// What the session asks to send, through the conditioner, to the socket.
fn transmit(mut session: ResMut<Session>, mut conditioner: ResMut<Conditioner>, socket: Res<Socket>) {
    let now = now_secs();
    let Some(playing) = session.0.as_mut() else { return };
    while let Some(msg) = playing.poll_transmit(now) {
        match &mut conditioner.0 {
            Some(lines) => lines.up.push(now, msg),
            None => socket.send(msg),
        }
    }
    if let Some(lines) = &mut conditioner.0 {
        while let Some(msg) = lines.up.pop_due(now) {
            socket.send(msg);
        }
    }
}
