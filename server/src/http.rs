//! The HTTP face: `app(state) -> Router`, shared by the binary and the tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arena_shared::protocol::MAX_CLIENT_MSG_BYTES;
use axum::extract::{ConnectInfo, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::FutureExt;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::{ServeDir, ServeFile};

use crate::config::ServerConfig;
use crate::connection;
use crate::limits::{AddressCaps, ConnectionSlot};
use crate::metrics::Metrics;
use crate::rooms::Rooms;

/// Largest WebSocket message the socket layer will buffer. Anything over
/// `MAX_CLIENT_MSG_BYTES` is refused (1009) by the read task; this is the
/// hard stop for messages so big they are not worth reading at all.
const MAX_WS_MESSAGE_BYTES: usize = 16 * MAX_CLIENT_MSG_BYTES;
/// tungstenite's read buffer per socket (its default, 128 KiB, is allocated
/// up front: 4,000 sockets would hold 512 MiB). Client messages are tiny.
const WS_READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes tungstenite gathers before writing to the socket; we flush every
/// batch anyway.
const WS_WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// Most bytes one socket may have waiting to be written: a batch of events
/// and the largest frame fit; a peer that stops reading while pinging us
/// hits this instead of growing memory.
const WS_MAX_WRITE_BUFFER_BYTES: usize = 512 * 1024;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub origins: Arc<OriginPolicy>,
    pub rooms: Arc<Rooms>,
    pub metrics: Arc<Metrics>,
    /// Fires at shutdown; every connection watches it.
    pub cancel: CancellationToken,
    /// Every connection task, so shutdown can wait for their close frames.
    pub connections: TaskTracker,
    /// Seats held for a resume, per address (`--max-held-seats-per-ip`).
    pub held_seats: Arc<AddressCaps>,
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(public_rooms));
    if let Some(dir) = &state.config.web_dir {
        // An invite link is the page itself; the page reads the code from its path.
        let page = ServeFile::new(dir.join("index.html")).precompressed_br().precompressed_gzip();
        router = router
            .route_service("/r/{code}", page)
            .fallback_service(static_files(dir))
            .layer(middleware::from_fn(cache_headers));
    } else {
        #[cfg(feature = "embed-client")]
        {
            router = router
                .route("/r/{code}", get(crate::embedded::index))
                .fallback_service(crate::embedded::router());
        }
    }
    router.with_state(state)
}

async fn upgrade(
    State(state): State<AppState>,
    slot: Option<Extension<Arc<ConnectionSlot>>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // The accept loop always sets it; a router driven without one counts as one address.
    let socket_peer =
        peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(ConnectInfo(addr))| addr.ip());
    let peer = client_address(state.config.behind_proxy, socket_peer, &headers);
    if !state.origins.allows(&headers) {
        Metrics::inc(&state.metrics.bad_origin_total);
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("?");
        tracing::debug!(origin, "refusing websocket from a foreign origin");
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not connect; see --public-host and --allow-origin\n",
        )
            .into_response();
    }
    Metrics::inc(&state.metrics.connections_total);
    ws.read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WS_MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let connections = state.connections.clone();
            let metrics = state.metrics.clone();
            connections.track_future(async move {
                // The socket keeps its place under the connection caps until it ends.
                let _slot = slot;
                // A bug must cost one connection, not the process; the seat is
                // freed by its guard while the panic unwinds.
                let context = connection::Context {
                    config: state.config,
                    rooms: state.rooms,
                    metrics: state.metrics,
                    cancel: state.cancel,
                    peer,
                    held_seats: state.held_seats,
                };
                if AssertUnwindSafe(connection::serve(socket, context)).catch_unwind().await.is_err() {
                    Metrics::inc(&metrics.task_panics_total);
                    tracing::error!("a connection task panicked; its player was dropped");
                }
            })
        })
}

/// Which pages may open `/ws`. Browsers always send `Origin`; other clients
/// (bots) send none and are let in. A page may connect when:
/// - its origin is listed with `--allow-origin` (or `*` is);
/// - it was served from this machine (localhost, 127.0.0.0/8, [::1]), e.g.
///   by `trunk serve` on another port: DNS rebinding cannot forge those;
/// - it was served by this server: its host is a name the server answers to
///   (`--public-host`, its own addresses, `localhost`) and equals the
///   request's `Host` (`X-Forwarded-Host` only with `--behind-proxy`, since
///   anything but a proxy we trust can set that header).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Normalised origins (`scheme://host[:port]`) or `*`.
    pub allowed: Vec<String>,
    /// Lower-case host names and addresses (IPv6 in brackets), no port.
    pub public_hosts: Vec<String>,
    pub behind_proxy: bool,
}

impl OriginPolicy {
    /// The policy for a server bound to `bound`: its addresses (or, bound to
    /// all interfaces, loopback and every LAN address) and `localhost`,
    /// plus the configured names.
    pub fn new(config: &ServerConfig, addresses: &[IpAddr]) -> Self {
        let mut public_hosts = vec!["localhost".to_owned()];
        public_hosts.extend(addresses.iter().map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }));
        public_hosts.extend(config.public_hosts.iter().cloned());
        public_hosts.dedup();
        OriginPolicy {
            allowed: config.allow_origins.clone(),
            public_hosts,
            behind_proxy: config.behind_proxy,
        }
    }

    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed.iter().any(|a| a == "*" || *a == origin) {
            return true;
        }
        let Some(("http" | "https", authority)) = origin.split_once("://") else {
            return false;
        };
        let host = host_of(authority);
        if is_loopback_host(host) {
            return true;
        }
        if !self.public_hosts.iter().any(|h| h == host) {
            return false;
        }
        let forwarded = self.behind_proxy.then(|| headers.get("x-forwarded-host")).flatten();
        let request_host = forwarded.or_else(|| headers.get(header::HOST)).and_then(|v| v.to_str().ok());
        // A proxy chain lists hosts comma-separated, the client's first.
        let request_host = request_host.and_then(|h| h.split(',').next()).map(str::trim);
        request_host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
    }
}

/// The player's address, for the per-address budgets: the socket's peer, or,
/// behind a proxy we trust (`--behind-proxy`), the last address in
/// `X-Forwarded-For`: the one the proxy itself appended (nginx's
/// `$proxy_add_x_forwarded_for`, Caddy's default). Entries before it are
/// whatever the client wrote, so they are never believed.
pub fn client_address(behind_proxy: bool, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !behind_proxy {
        return peer;
    }
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|entry| !entry.is_empty());
    let parsed = last.and_then(|entry| {
        entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
    });
    parsed.unwrap_or(peer)
}

/// The host part of `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        authority.find(']').map_or(authority, |end| &authority[..=end])
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
    let token = config.admin_token.as_ref()?;
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
        "tick_rate": state.config.tick_rate,
        "room_size": state.config.max_players,
        "max_rooms": state.config.max_rooms,
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
    let text = state.metrics.render(&state.rooms.stats(), audience == Audience::Operator);
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// What `--metrics-bind` serves: `/metrics` and `/healthz` with each room's
/// detail and no token (the address itself is the credential: loopback, or
/// a private network a scraper sits on).
pub fn operator_app(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { prometheus(&state, Audience::Operator) }),
        )
        .route(
            "/healthz",
            get(|State(state): State<AppState>| async move { health(&state, Audience::Operator) }),
        )
        .with_state(state)
}

/// Public rooms, fullest first: `[{"code", "players", "room_size"}]`.
async fn public_rooms(State(state): State<AppState>) -> Response {
    axum::Json(state.rooms.public()).into_response()
}

/// trunk's dist/: precompressed .br/.gz siblings are served when the browser
/// accepts them, and the cache headers follow the file name.
fn static_files(dir: &Path) -> ServeDir {
    ServeDir::new(dir).precompressed_br().precompressed_gzip()
}

async fn cache_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let value = HeaderValue::from_static(cache_policy(&path));
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// Hashed files never change under their name; everything else (index.html
/// above all) must be revalidated so a new build is picked up.
pub fn cache_policy(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if has_content_hash(name) { "public, max-age=31536000, immutable" } else { "no-cache" }
}

/// trunk names outputs `stem-<hash>[_bg].ext`, the hash a u64 in hex without
/// leading zeros (so usually, not always, 16 digits).
fn has_content_hash(name: &str) -> bool {
    name.split(['-', '_', '.']).any(|part| part.len() >= 12 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("valid host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("valid origin"));
        }
        h
    }

    /// A LAN server at 192.168.1.20 that also answers to game.example.com.
    fn policy(allowed: &[&str], behind_proxy: bool) -> OriginPolicy {
        let config = ServerConfig {
            allow_origins: allowed.iter().map(|s| s.to_string()).collect(),
            public_hosts: vec!["game.example.com".into()],
            behind_proxy,
            ..ServerConfig::default()
        };
        OriginPolicy::new(&config, &["127.0.0.1".parse().expect("ip"), "192.168.1.20".parse().expect("ip")])
    }

    #[test]
    fn pages_this_server_serves_and_listed_origins_are_allowed() {
        let p = policy(&[], false);
        assert!(p.allows(&headers(None, "a:1")), "no Origin (a bot) should pass");
        assert!(p.allows(&headers(Some("http://192.168.1.20:7777"), "192.168.1.20:7777")), "the LAN page");
        assert!(p.allows(&headers(Some("https://game.example.com"), "GAME.example.com")), "a public name");
        let p = policy(&["http://dev:8080"], false);
        assert!(p.allows(&headers(Some("http://dev:8080"), "192.168.1.20:7777")), "a listed origin");
        assert!(policy(&["*"], false).allows(&headers(Some("https://x.y"), "a:1")), "* allows any");
    }

    #[test]
    fn pages_from_this_machine_are_allowed_so_trunk_serve_works() {
        // trunk serve: the page is on :8080, its proxy rewrites Host to the server's.
        let p = policy(&[], false);
        for origin in
            ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.0.0.2"]
        {
            assert!(p.allows(&headers(Some(origin), "127.0.0.1:7777")), "{origin} should pass");
        }
    }

    #[test]
    fn dns_rebinding_and_forged_forwarded_hosts_are_refused() {
        let p = policy(&[], false);
        // evil.example resolved to the server's LAN address: Host matches Origin.
        assert!(!p.allows(&headers(Some("http://evil.example:7777"), "evil.example:7777")), "rebinding");
        let mut h = headers(Some("http://evil.example"), "192.168.1.20:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert!(!p.allows(&h), "X-Forwarded-Host from a client that is not a trusted proxy");
        let mut h = headers(Some("http://game.example.com"), "192.168.1.20:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("game.example.com"));
        assert!(!p.allows(&h), "without --behind-proxy the forwarded host is ignored");
        assert!(!p.allows(&headers(Some("http://192.168.1.20:9999"), "192.168.1.20:7777")), "another port");
        assert!(!p.allows(&headers(Some("null"), "a:1")), "an opaque origin");
        assert!(!p.allows(&headers(Some("file://x"), "a:1")), "a file page");
        assert!(!p.allows(&headers(Some("http://localhost.evil.example"), "a:1")), "not a loopback name");
    }

    #[test]
    fn behind_a_proxy_the_forwarded_host_is_the_pages_host() {
        let p = policy(&[], true);
        let mut h = headers(Some("https://game.example.com"), "127.0.0.1:7777");
        assert!(!p.allows(&h), "without the forwarded host it looks foreign");
        h.insert("x-forwarded-host", HeaderValue::from_static("game.example.com, inner.proxy"));
        assert!(p.allows(&h), "the forwarded host is the page's host");
        let mut h = headers(Some("https://evil.example"), "127.0.0.1:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert!(!p.allows(&h), "a name the server does not answer to is still refused");
    }

    #[test]
    fn behind_a_proxy_the_address_it_appended_is_the_players() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut h = HeaderMap::new();
        assert_eq!(client_address(true, proxy, &h), proxy, "no header: the socket's peer");
        h.insert("x-forwarded-for", HeaderValue::from_static("10.1.1.1, 203.0.113.7"));
        assert_eq!(client_address(false, proxy, &h), proxy, "ignored without --behind-proxy");
        let player: IpAddr = "203.0.113.7".parse().expect("ip");
        assert_eq!(client_address(true, proxy, &h), player, "the last entry: what the proxy saw");
        h.append("x-forwarded-for", HeaderValue::from_static("[2001:db8::1]:4711"));
        assert_eq!(
            client_address(true, proxy, &h),
            "2001:db8::1".parse::<IpAddr>().expect("ip"),
            "last header"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_address(true, proxy, &h), proxy, "unparseable: the socket's peer");
    }

    #[test]
    fn hashed_files_are_cached_forever_and_the_rest_revalidated() {
        assert_eq!(
            cache_policy("/arena-client-1a2b3c4d5e6f7a8b_bg.wasm"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_policy("/style-0123456789abcdef.css"), "public, max-age=31536000, immutable");
        assert_eq!(cache_policy("/arena-client-45c1e547a57e4f2.js"), "public, max-age=31536000, immutable");
        assert_eq!(cache_policy("/"), "no-cache");
        assert_eq!(cache_policy("/index.html"), "no-cache");
        assert_eq!(cache_policy("/favicon.ico"), "no-cache");
    }
}
