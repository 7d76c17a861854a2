//! The built client's files from a directory (`--web-dir`), and the cache
//! policy they and the embedded copy ([`crate::edge::embedded`]) share: hashed
//! files are kept forever, the page is revalidated.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::services::{ServeDir, ServeFile};

use crate::edge::compress::{FormCache, gzip};

/// Adds the client's files in `dir` to `router`: every path its routes do
/// not take, `/r/<code>` (an invite link is the page itself; the page
/// reads the code from its path) and `/replay/<id>` (so is a replay's link). Precompressed `.br`/`.gz` siblings are
/// served to clients that take them; a file with neither (a plain `trunk
/// build`) is gzipped once, on first request, and kept.
pub fn serve_dir<S: Clone + Send + Sync + 'static>(router: Router<S>, dir: &Path) -> Router<S> {
    let page = ServeFile::new(dir.join("index.html")).precompressed_br().precompressed_gzip();
    let site = Arc::new(Site { dir: dir.to_owned(), forms: FormCache::default() });
    router
        .route_service("/r/{code}", page.clone())
        .route_service("/replay/{id}", page)
        .fallback_service(ServeDir::new(dir).precompressed_br().precompressed_gzip())
        .layer(middleware::from_fn_with_state(site, gzip_missing))
        .layer(middleware::from_fn(cache_headers))
}

/// `--web-dir`, and the gzip forms made for it.
struct Site {
    dir: PathBuf,
    forms: FormCache,
}

impl Site {
    /// The file a request path names, if it is a plain path inside the
    /// directory (anything else is left to `ServeDir`).
    fn file(&self, path: &str) -> Option<PathBuf> {
        let relative = path.trim_start_matches('/');
        let relative = if relative.is_empty() || relative.ends_with('/') {
            format!("{relative}index.html")
        } else {
            relative.to_owned()
        };
        let relative = Path::new(&relative);
        relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)))
            .then(|| self.dir.join(relative))
    }
}

/// A compressible file without `.br` or `.gz` beside it, for a client that
/// takes gzip: its gzip form, made once.
async fn gzip_missing(State(site): State<Arc<Site>>, request: Request, next: Next) -> Response {
    let wanted = request.method() == Method::GET
        && !request.headers().contains_key(header::RANGE)
        && takes(request.headers(), "gzip");
    let Some(file) = wanted.then(|| site.file(request.uri().path())).flatten() else {
        return next.run(request).await;
    };
    let Some(mime) = file.to_str().and_then(mime_type) else { return next.run(request).await };
    let sibling = |suffix: &str| {
        let mut name = file.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name).exists()
    };
    let Ok(meta) = std::fs::metadata(&file) else { return next.run(request).await };
    if !meta.is_file() || sibling(".gz") || sibling(".br") {
        return next.run(request).await;
    }
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let key = format!("{}:{}:{}", file.display(), meta.len(), modified.map_or(0, |t| t.as_nanos()));
    let source = file.clone();
    let gzipped = site
        .forms
        .get_or_make(&key, move || std::fs::read(source).map(|raw| gzip(&raw)).unwrap_or_default())
        .await;
    if gzipped.is_empty() {
        return next.run(request).await;
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
        (header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    (headers, gzipped).into_response()
}

/// Whether a request's Accept-Encoding takes `encoding` (and not with q=0).
pub fn takes(headers: &HeaderMap, encoding: &str) -> bool {
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    accepts(accepted, encoding)
}

/// Whether an Accept-Encoding value takes `encoding` (and not with q=0).
pub fn accepts(accept_encoding: &str, encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name_matches = parts.next().is_some_and(|name| name.eq_ignore_ascii_case(encoding));
        let refused =
            parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
        name_matches && !refused
    })
}

/// The types trunk's output has; anything else is not ours to compress
/// (or, embedded, to serve).
pub fn mime_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext)?;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "png" => "image/png",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
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
/// above all, and the page under `/r/<code>` and `/replay/<id>`, whose last
/// part is no file name) must be revalidated so a new build is picked up.
pub fn cache_policy(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.contains('.') && has_content_hash(name) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// trunk names outputs `stem-<hash>[_bg].ext`, the hash a u64 in hex without
/// leading zeros (so usually, not always, 16 digits).
fn has_content_hash(name: &str) -> bool {
    name.split(['-', '_', '.']).any(|part| part.len() >= 12 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("br;q=0.9, gzip", "gzip"));
        assert!(!accepts("gzip, br;q=0", "br"), "q=0 means no");
        assert!(!accepts("", "gzip"));
    }

    #[test]
    fn trunk_outputs_get_their_types() {
        assert_eq!(mime_type("arena-client-1234_bg.wasm"), Some("application/wasm"));
        assert_eq!(mime_type("index.html"), Some("text/html; charset=utf-8"));
        assert_eq!(mime_type("452dc55030dee73b-loader.mjs"), Some("text/javascript; charset=utf-8"));
        assert_eq!(mime_type("README"), None);
    }

    #[test]
    fn only_plain_paths_inside_the_directory_name_a_file() {
        let site = Site { dir: PathBuf::from("/srv/dist"), forms: FormCache::default() };
        assert_eq!(site.file("/"), Some(PathBuf::from("/srv/dist/index.html")));
        assert_eq!(site.file("/app_bg.wasm"), Some(PathBuf::from("/srv/dist/app_bg.wasm")));
        assert_eq!(site.file("/../etc/passwd"), None);
        assert_eq!(site.file("/a/./b"), Some(PathBuf::from("/srv/dist/a/b")), "a `.` is dropped by Path");
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
        // Regression: a replay's id is 32 hex digits, but its page is index.html.
        assert_eq!(cache_policy("/replay/0123456789abcdef0123456789abcdef"), "no-cache");
        assert_eq!(cache_policy("/favicon.ico"), "no-cache");
    }
}
