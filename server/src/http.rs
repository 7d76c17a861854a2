//! The HTTP face: `app(state) -> Router`, shared by the binary and the tests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use arena_shared::protocol::MAX_CLIENT_MSG_BYTES;
use axum::Router;
use axum::extract::{Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;

use crate::config::ServerConfig;
use crate::connection;
use crate::metrics::Metrics;
use crate::room::RoomHandle;

/// Largest WebSocket message the socket layer will buffer. Anything over
/// `MAX_CLIENT_MSG_BYTES` is refused (1009) by the read task; this is the
/// hard stop for messages so big they are not worth reading at all.
const MAX_WS_MESSAGE_BYTES: usize = 64 * MAX_CLIENT_MSG_BYTES;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub room: RoomHandle,
    pub metrics: Arc<Metrics>,
    /// Fires at shutdown; every connection watches it.
    pub cancel: CancellationToken,
    /// Every upgraded connection, so shutdown can wait for their close frames.
    pub connections: TaskTracker,
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/ws", get(upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics));
    if let Some(dir) = &state.config.web_dir {
        router = router.fallback_service(static_files(dir));
    }
    router.with_state(state)
}

async fn upgrade(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !origin_allowed(&headers, &state.config.allow_origins) {
        Metrics::inc(&state.metrics.bad_origin_total);
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("?");
        tracing::debug!(origin, "refusing websocket from a foreign origin");
        return (StatusCode::FORBIDDEN, "this page's origin may not connect; see --allow-origin\n")
            .into_response();
    }
    Metrics::inc(&state.metrics.connections_total);
    ws.max_message_size(MAX_WS_MESSAGE_BYTES).max_frame_size(MAX_WS_MESSAGE_BYTES).on_upgrade(move |socket| {
        let connections = state.connections.clone();
        connections.track_future(connection::serve(socket, state))
    })
}

/// Browsers always send Origin; other clients (bots) send none and are let
/// in. A browser page may connect when it was served by this host, or its
/// origin is listed with `--allow-origin` (or `*` is).
///
/// "This host" is the Host header, or X-Forwarded-Host when a proxy (trunk
/// serve, nginx) rewrote Host: a page's script cannot set that header on a
/// WebSocket handshake, so it cannot be used to sneak a foreign page in.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if allowed.iter().any(|a| a == "*" || *a == origin) {
        return true;
    }
    let Some((_, origin_host)) = origin.split_once("://") else {
        return false;
    };
    [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name)?.to_str().ok())
        .any(|host| origin_host.eq_ignore_ascii_case(host.trim()))
}

async fn healthz(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "players": state.metrics.players.load(Relaxed),
        "tick": state.metrics.tick.load(Relaxed),
        "tick_rate": state.config.tick_rate,
        "max_players": state.config.max_players,
    });
    axum::Json(body).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4");
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

/// trunk's dist/: precompressed .br/.gz siblings are served when the browser
/// accepts them, and the cache headers follow the file name.
fn static_files(dir: &Path) -> Router {
    let serve = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    Router::new().fallback_service(serve).layer(middleware::from_fn(cache_headers))
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

    #[test]
    fn same_host_and_listed_origins_are_allowed() {
        assert!(origin_allowed(&headers(None, "a:1"), &[]), "no Origin (a bot) should pass");
        assert!(origin_allowed(&headers(Some("http://a:1"), "a:1"), &[]), "same host should pass");
        assert!(origin_allowed(&headers(Some("http://dev:8080"), "a:1"), &["http://dev:8080".into()]));
        assert!(origin_allowed(&headers(Some("https://x.y"), "a:1"), &["*".into()]));
    }

    #[test]
    fn a_proxied_page_matches_the_forwarded_host() {
        // trunk serve: Host becomes the backend, the page's host moves to X-Forwarded-Host.
        let mut h = headers(Some("http://127.0.0.1:8080"), "127.0.0.1");
        assert!(!origin_allowed(&h, &[]), "without the forwarded host it looks foreign");
        h.insert("x-forwarded-host", HeaderValue::from_static("127.0.0.1:8080"));
        assert!(origin_allowed(&h, &[]), "the forwarded host is the page's host");
        h.insert("x-forwarded-host", HeaderValue::from_static("elsewhere:1"));
        assert!(!origin_allowed(&h, &[]), "a different forwarded host is still foreign");
    }

    #[test]
    fn foreign_origins_are_refused() {
        assert!(!origin_allowed(&headers(Some("http://evil.example"), "a:1"), &[]));
        assert!(!origin_allowed(&headers(Some("http://a:2"), "a:1"), &[]), "another port is another origin");
        assert!(!origin_allowed(&headers(Some("null"), "a:1"), &[]));
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
