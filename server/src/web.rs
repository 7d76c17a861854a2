//! The built client's files from a directory (`--web-dir`), and the cache
//! policy they and the embedded copy ([`crate::embedded`]) share: hashed
//! files are kept forever, the page is revalidated.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::services::{ServeDir, ServeFile};

/// Adds the client's files in `dir` to `router`: every path its routes do
/// not take, and `/r/<code>` (an invite link is the page itself; the page
/// reads the code from its path). Precompressed `.br`/`.gz` siblings are
/// served to clients that take them.
pub fn serve_dir<S: Clone + Send + Sync + 'static>(router: Router<S>, dir: &Path) -> Router<S> {
    let page = ServeFile::new(dir.join("index.html")).precompressed_br().precompressed_gzip();
    router
        .route_service("/r/{code}", page)
        .fallback_service(ServeDir::new(dir).precompressed_br().precompressed_gzip())
        .layer(middleware::from_fn(cache_headers))
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
