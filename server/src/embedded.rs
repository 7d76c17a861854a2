//! The built browser client inside the binary (cargo feature `embed-client`,
//! built by `scripts/release.sh`): the same files `--web-dir dist` serves,
//! with the same precompressed siblings, MIME types and cache headers, so
//! one file is the whole server.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::web::cache_policy;

/// trunk's `dist/`, compressed siblings included, read at compile time.
#[derive(rust_embed::Embed)]
#[folder = "../dist"]
struct Dist;

/// Whether the binary carries a client (a build without `dist/` would not).
pub fn has_client() -> bool {
    Dist::get("index.html").is_some()
}

/// Serves the embedded files at every path the game's routes do not take.
pub fn router() -> Router {
    Router::new().fallback(serve)
}

/// The page, for an invite link's `/r/<code>`.
pub async fn index(headers: HeaderMap) -> Response {
    serve(Uri::from_static("/"), headers).await
}

async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path =
        if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_owned() };
    let Some(mime) = mime_type(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let encodings = [("br", ".br"), ("gzip", ".gz"), ("identity", "")];
    for (encoding, suffix) in encodings {
        if encoding != "identity" && !accepts(accepted, encoding) {
            continue;
        }
        let Some(file) = Dist::get(&format!("{path}{suffix}")) else { continue };
        let etag = format!("\"{}{suffix}\"", hex(&file.metadata.sha256_hash()[..12]));
        let mut response =
            if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                Response::new(Body::from(file.data.into_owned()))
            };
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_policy(uri.path())));
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Ok(etag) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, etag);
        }
        if !suffix.is_empty() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        return response;
    }
    StatusCode::NOT_FOUND.into_response()
}

/// Whether an Accept-Encoding value takes `encoding` (and not with q=0).
fn accepts(accept_encoding: &str, encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name_matches = parts.next().is_some_and(|name| name.eq_ignore_ascii_case(encoding));
        let refused =
            parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
        name_matches && !refused
    })
}

/// The types trunk's output has; anything else is not ours to serve.
fn mime_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext)?;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(mime_type("README"), None);
    }

    #[test]
    fn the_embedded_client_has_its_page() {
        assert!(has_client(), "build the client (scripts/build-client.sh) before the embed-client feature");
    }
}
