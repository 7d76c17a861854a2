//! The built browser client inside the binary (cargo feature `embed-client`,
//! built by `scripts/release.sh`): the same files `--web-dir dist` serves,
//! with the same MIME types and cache headers, so one file is the whole
//! server. Each file is carried once, as brotli (what browsers take over
//! HTTPS); a client that does not take brotli (a browser over plain http
//! takes gzip) gets the gzip form or the raw file, made from it on first
//! request and kept ([`crate::edge::compress`]).

use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::edge::compress::{FormCache, gzip, unbrotli};
use crate::edge::web::{cache_policy, mime_type, takes};

/// trunk's `dist/`, each file's brotli form only, read at compile time.
#[derive(rust_embed::Embed)]
#[folder = "../dist"]
#[include = "*.br"]
struct Dist;

/// The gzip and raw forms made so far.
static FORMS: LazyLock<FormCache> = LazyLock::new(FormCache::default);

/// Whether the binary carries a client (a build without `dist/` would not).
pub fn has_client() -> bool {
    Dist::get("index.html.br").is_some()
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
    let (Some(mime), Some(file)) = (mime_type(&path), Dist::get(&format!("{path}.br"))) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = hex(&file.metadata.sha256_hash()[..12]);
    let brotli = file.data;
    let (encoding, suffix, body) = if takes(&headers, "br") {
        ("br", ".br", Bytes::from(brotli.into_owned()))
    } else if takes(&headers, "gzip") {
        ("gzip", ".gz", FORMS.get_or_make(&format!("{path}.gz"), move || gzip(&unbrotli(&brotli))).await)
    } else {
        ("identity", "", FORMS.get_or_make(&path, move || unbrotli(&brotli)).await)
    };
    let etag = format!("\"{hash}{suffix}\"");
    let mut response = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(body))
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_policy(uri.path())));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    if encoding != "identity" {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_client_has_its_page() {
        assert!(has_client(), "build the client (scripts/build-client.sh) before the embed-client feature");
    }
}
