//! The HTTP face: `app(state) -> Router`, shared by the binary and the tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use arena_shared::protocol::MAX_CLIENT_MSG_BYTES;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use futures_util::FutureExt;
use subtle::ConstantTimeEq;

use crate::config::ServerConfig;
use crate::edge::admin;
use crate::edge::connection;
use crate::edge::socket::{Upgrade, WebSocketConfig};
pub use crate::edge::state::AppState;
use crate::edge::state::PUBLIC_READS_PER_SEC;
use crate::limits::ConnectionSlot;
use crate::room::replays::Found;
use crate::room::wire::SentCounters;

/// Largest WebSocket message the socket layer will buffer. Anything over
/// `MAX_CLIENT_MSG_BYTES` is refused (1009) by the read task; this is the
/// hard stop for messages so big they are not worth reading at all.
const MAX_WS_MESSAGE_BYTES: usize = 16 * MAX_CLIENT_MSG_BYTES;
/// tungstenite's read buffer per socket (its default, 128 KiB, is allocated
/// up front: 4,000 sockets would hold 512 MiB). Client messages are at most
/// 256 bytes (an input batch is about 20, 26 framed): 256-byte reads take
/// nine whole, and the rare larger message grows its buffer to fit; 512
/// cost 0.25 KiB more per player, 4 KiB 3.5 KiB more (`scripts/capacity.sh`).
const WS_READ_BUFFER_BYTES: usize = 256;
/// Bytes tungstenite gathers before writing to the socket; we flush every
/// batch anyway.
const WS_WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// Most bytes one socket may have waiting to be written: a batch of events
/// and the largest frame fit; a peer that stops reading while pinging us
/// hits this instead of growing memory.
const WS_MAX_WRITE_BUFFER_BYTES: usize = 512 * 1024;

pub fn app(state: AppState) -> Router {
    // The public API, at a rate per address.
    let public = Router::new()
        .route("/api/rooms", get(public_rooms))
        .route("/api/replays", get(public_replays))
        .route("/api/replays/{id}", get(one_replay))
        .route("/api/cluster", get(cluster_nodes))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), public_read_budget));
    let mut router = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(public)
        .route("/admin", get(admin_page))
        .route("/admin/api/cluster", get(admin_cluster))
        .route("/admin/api/orders", post(admin_order));
    if let Some(dir) = &state.config.net.web_dir {
        router = crate::edge::web::serve_dir(router, dir);
    } else {
        #[cfg(feature = "embed-client")]
        {
            router = router
                .route("/r/{code}", get(crate::edge::embedded::index))
                .route("/replay/{id}", get(crate::edge::embedded::index))
                .fallback_service(crate::edge::embedded::router());
        }
    }
    // No route reads a body but the orders', which bound their own; this
    // bounds any that ever does.
    router.layer(DefaultBodyLimit::max(MAX_ORDER_BODY_BYTES)).with_state(state)
}

async fn upgrade(
    State(state): State<AppState>,
    slot: Option<Extension<Arc<ConnectionSlot>>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let ws = match Upgrade::from_parts(&mut parts) {
        Ok(ws) => ws,
        Err(refusal) => return *refusal,
    };
    let headers = &parts.headers;
    let socket_peer = socket_peer(peer.as_ref().map(|Extension(info)| info));
    let peer = state.origins.proxies.client_address(socket_peer, headers);
    let from_node = || {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        origin.is_some_and(|origin| state.cluster.serves_origin(origin))
    };
    if !state.origins.allows(headers, socket_peer) && !from_node() {
        state.metrics.bad_origin_total.inc();
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("?");
        tracing::debug!(origin, "refusing websocket from a foreign origin");
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not connect; see --public-host and --allow-origin\n",
        )
            .into_response();
    }
    state.metrics.connections_total.inc();
    let config = WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WS_MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_WS_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_WS_MESSAGE_BYTES));
    let counters = SentCounters {
        messages: state.metrics.messages_out_total.clone(),
        bytes: state.metrics.bytes_out_total.clone(),
        direct: state.metrics.writes_direct_total.clone(),
        by_writer: state.metrics.writes_by_writer_total.clone(),
    };
    ws.answer(config, counters, move |socket| {
        let connections = state.connections.clone();
        let metrics = state.metrics.clone();
        // A bug must cost one connection, not the process; the seat is freed
        // by its guard while the panic unwinds. Combinators, not an `async`
        // block: a block would hold the connection's future twice, as what
        // it captured and as what it awaits.
        let serving = AssertUnwindSafe(connection::serve(socket, connection::Context { app: state, peer }));
        connections.track_future(serving.catch_unwind().map(move |ended| {
            // The socket kept its place under the connection caps until now.
            drop(slot);
            if ended.is_err() {
                metrics.task_panics_total.inc();
                tracing::error!("a connection task panicked; its player was dropped");
            }
        }))
    })
}

/// Who reads `/healthz` and `/metrics`: the public sees totals; an operator
/// (the admin token, or the `--metrics-bind` address) sees each room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Public,
    Operator,
}

/// The audience a request's `Authorization` header makes it: no header is
/// the public; `None` for a header that is not the admin token, which is
/// refused (401) so an operator with a wrong token finds out instead of
/// seeing totals only.
fn audience(config: &ServerConfig, headers: &HeaderMap) -> Option<Audience> {
    let Some(given) = headers.get(header::AUTHORIZATION) else {
        return Some(Audience::Public);
    };
    let token = config.ops.admin_token.as_ref()?;
    let given = given.as_bytes().strip_prefix(b"Bearer ").unwrap_or_default();
    // Constant time: the comparison's duration says nothing about how much matched.
    bool::from(given.ct_eq(token.as_bytes())).then_some(Audience::Operator)
}

fn wrong_token() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        "wrong admin token; see --admin-token\n",
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    audience(&state.config, &headers).map_or_else(wrong_token, |audience| health(&state, audience))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    audience(&state.config, &headers).map_or_else(wrong_token, |audience| prometheus(&state, audience))
}

/// `{"status", "players", "rooms", "tick_rate", "room_size", "max_rooms",
/// "tick_micros_p50", "tick_micros_p99"}`, and for operators `"room_list"`:
/// each room's code, privacy, players, tick and tick times.
fn health(state: &AppState, audience: Audience) -> Response {
    let rooms = state.rooms.list();
    let players: u64 = rooms.iter().map(|(_, r)| r.stats.players.load(Relaxed)).sum();
    let ticks = &state.metrics.tick_histogram;
    let mut body = serde_json::json!({
        "status": "ok",
        "players": players,
        "rooms": rooms.len(),
        "tick_rate": state.config.game.tick_rate,
        "room_size": state.config.game.max_players,
        "max_rooms": state.config.game.max_rooms,
        "tick_micros_p50": ticks.quantile(0.5),
        "tick_micros_p99": ticks.quantile(0.99),
    });
    if audience == Audience::Operator {
        body["room_list"] = rooms
            .iter()
            .map(|(code, room)| {
                let figures = &room.stats;
                serde_json::json!({
                    "code": code,
                    "private": room.private,
                    "players": figures.players.load(Relaxed),
                    "tick": figures.tick.load(Relaxed),
                    "tick_micros_p50": figures.ticks.quantile(0.5),
                    "tick_micros_p99": figures.ticks.quantile(0.99),
                })
            })
            .collect();
    }
    axum::Json(body).into_response()
}

fn prometheus(state: &AppState, audience: Audience) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4");
    let replays = state.rooms.replays().figures();
    let text = state.metrics.render(&state.rooms.stats(), audience == Audience::Operator, replays);
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// The operators' page: plain HTML and a little JS, no data in it (the
/// page asks `/admin/api/…` with the admin token).
async fn admin_page() -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, include_str!("admin.html")).into_response()
}

/// `None` for the admin token; a 401 for anything else (no token
/// configured: the answer says how to get one).
fn unless_operator(config: &ServerConfig, headers: &HeaderMap) -> Option<Response> {
    match audience(config, headers) {
        Some(Audience::Operator) => None,
        _ if config.ops.admin_token.is_none() => Some(
            (
                StatusCode::UNAUTHORIZED,
                "the operators' page needs --admin-token on this listener (or use --metrics-bind)\n",
            )
                .into_response(),
        ),
        _ => Some(wrong_token()),
    }
}

async fn admin_cluster(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match unless_operator(&state.config, &headers) {
        None => cluster_report(&state).await,
        Some(refused) => refused,
    }
}

/// The token is checked before a byte of the body is read; the body is
/// then read within `--header-timeout-ms` and [`MAX_ORDER_BODY_BYTES`].
async fn admin_order(State(state): State<AppState>, request: Request) -> Response {
    match unless_operator(&state.config, request.headers()) {
        None => match read_order(request, state.config.limits.header_timeout()).await {
            Ok(body) => give(&state, &body).await,
            Err(refused) => refused,
        },
        Some(refused) => refused,
    }
}

/// Largest order body: the longest order is under 200 bytes.
const MAX_ORDER_BODY_BYTES: usize = 4 * 1024;

/// The body of an order, or why it is refused: 413 past
/// [`MAX_ORDER_BODY_BYTES`] (declared or sent), 408 when it is not all
/// there within `deadline` (a body gets the time its head got). The
/// connection closes after either, so what the client still sends is
/// never read.
async fn read_order(request: Request, deadline: Duration) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        let message = format!("an order is at most {MAX_ORDER_BODY_BYTES} bytes\n");
        (StatusCode::PAYLOAD_TOO_LARGE, [(header::CONNECTION, "close")], message).into_response()
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared.and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > MAX_ORDER_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_ORDER_BODY_BYTES);
    match tokio::time::timeout(deadline, body).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            format!("the order's body did not arrive within {} ms\n", deadline.as_millis()),
        )
            .into_response()),
    }
}

/// `{"node": this node, "nodes": [every node's report]}`.
async fn cluster_report(state: &AppState) -> Response {
    match admin::cluster_report(state).await {
        Ok(nodes) => {
            axum::Json(serde_json::json!({ "node": state.cluster.node, "nodes": nodes })).into_response()
        }
        Err(refused) => refusal(&refused),
    }
}

/// 202 once the order is carried out here or queued for its node; 400
/// for a body that is no order.
async fn give(state: &AppState, body: &[u8]) -> Response {
    let order = match serde_json::from_slice::<admin::Order>(body) {
        Ok(order) => order,
        Err(e) => {
            let hint = r#"expected {"order":"drain","node":ID}, {"order":"close","room":CODE} or {"order":"kick","room":CODE,"player":ID}"#;
            return (StatusCode::BAD_REQUEST, format!("not an order ({e}); {hint}\n")).into_response();
        }
    };
    match admin::give(state, order).await {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "ok": true }))).into_response(),
        Err(refused) => refusal(&refused),
    }
}

fn refusal(refused: &admin::OrderError) -> Response {
    match refused {
        admin::OrderError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what}\n")).into_response(),
        admin::OrderError::Unavailable(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("the cluster's Redis does not answer: {why}\n"))
                .into_response()
        }
    }
}

/// What `--metrics-bind` serves: `/metrics` and `/healthz` with each room's
/// detail, and the operators' page, with no token (the address itself is
/// the credential: loopback, or a private network a scraper sits on).
pub fn operator_app(state: AppState) -> Router {
    Router::new()
        .route("/admin", get(admin_page))
        .route(
            "/admin/api/cluster",
            get(|State(state): State<AppState>| async move { cluster_report(&state).await }),
        )
        .route(
            "/admin/api/orders",
            post(|State(state): State<AppState>, request: Request| async move {
                match read_order(request, state.config.limits.header_timeout()).await {
                    Ok(body) => give(&state, &body).await,
                    Err(refused) => refused,
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { prometheus(&state, Audience::Operator) }),
        )
        .route(
            "/healthz",
            get(|State(state): State<AppState>| async move { health(&state, Audience::Operator) }),
        )
        .layer(DefaultBodyLimit::max(MAX_ORDER_BODY_BYTES))
        .with_state(state)
}

/// The cluster's live nodes: `{"cluster", "node", "nodes": [{"node", "url",
/// "rooms", "players"}], "knows"}` (this node alone without `--redis-url`;
/// no room codes); `knows` is how many of them this node knew at its last
/// heartbeat. 503 while the cluster's Redis does not answer. Read from
/// Redis at most four times a second, however many ask.
async fn cluster_nodes(State(state): State<AppState>) -> Response {
    let cluster = &state.cluster;
    match cluster.nodes_now(state.rooms.figures()).await {
        Ok(nodes) => {
            // How many live nodes this one knows as of its last heartbeat
            // (where it sends rooms, whose pages it takes).
            let knows = cluster.known().len();
            let body = serde_json::json!({
                "cluster": cluster.is_on(),
                "node": cluster.node,
                "nodes": nodes,
                "knows": knows,
            });
            axum::Json(body).into_response()
        }
        Err(e) => {
            let body = serde_json::json!({ "cluster": true, "node": cluster.node, "error": e });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

/// Public rooms' recorded rounds, newest first (at most
/// [`crate::room::replays::MAX_LISTED`]).
async fn public_replays(State(state): State<AppState>) -> Response {
    axum::Json(state.rooms.replays().public()).into_response()
}

/// One recorded round (a private room's too: its id is the key), as
/// `arena_shared::replay::Replay::encode` made it: from memory, or from
/// `--replay-dir` once memory has made room.
async fn one_replay(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let found = crate::room::replays::parse_id(&id).and_then(|id| state.rooms.replays().get(&id));
    let bytes = match found {
        Some(Found::Bytes(bytes)) => Some(bytes),
        Some(Found::File(path)) => tokio::fs::read(&path).await.ok().map(axum::body::Bytes::from),
        None => None,
    };
    match bytes {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "no such replay (rounds are kept for a while, then make room)\n")
            .into_response(),
    }
}

/// The socket's peer as the accept loop recorded it; a router driven
/// without one counts as one address.
fn socket_peer(info: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

/// Spends a public read of the asking address's (behind a trusted proxy,
/// the client's): past [`PUBLIC_READS_PER_SEC`], 429 with `Retry-After`.
async fn public_read_budget(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let socket_peer = socket_peer(request.extensions().get::<ConnectInfo<SocketAddr>>());
    let peer = state.origins.proxies.client_address(socket_peer, request.headers());
    match state.public_reads.spend(peer) {
        Ok(()) => next.run(request).await,
        Err(over) => {
            state.metrics.public_reads_limited_total.inc();
            let secs = over.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let message = format!(
                "too many requests from this address (at most {PUBLIC_READS_PER_SEC} a second); try again in {secs} s\n"
            );
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs.to_string())], message)
                .into_response()
        }
    }
}

/// Public rooms, fullest first: `[{"code", "players", "room_size"}]`.
async fn public_rooms(State(state): State<AppState>) -> Response {
    axum::Json(state.placement.public_everywhere().await).into_response()
}
