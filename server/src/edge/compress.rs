//! FormCache of the client's files that the server makes itself, once, and
//! keeps: the gzip form of a `--web-dir` file that has no `.gz` beside it
//! (a plain `trunk build`), and the gzip and raw forms of an embedded file
//! the binary carries only as brotli. Made off the async threads, each at
//! most once however many ask at the same moment; at most [`MAX_FORMS`]
//! are kept (oldest out first), so a directory rebuilt under a running
//! server cannot grow memory without bound.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::OnceCell;

/// FormCache kept at most: a client build has a handful of files.
pub const MAX_FORMS: usize = 32;

/// The forms made so far, by key (a file and its form).
#[derive(Default)]
pub struct FormCache {
    made: Mutex<VecDeque<(String, Arc<OnceCell<Bytes>>)>>,
}

impl FormCache {
    /// The form `key` names, made by `make` the first time it is asked for.
    pub async fn get_or_make(&self, key: &str, make: impl FnOnce() -> Vec<u8> + Send + 'static) -> Bytes {
        let cell = {
            let mut made = self.made.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match made.iter().find(|(k, _)| k == key) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    made.push_back((key.to_owned(), cell.clone()));
                    while made.len() > MAX_FORMS {
                        made.pop_front();
                    }
                    cell
                }
            }
        };
        cell.get_or_init(|| async move {
            let made = tokio::task::spawn_blocking(make).await.unwrap_or_default();
            Bytes::from(made)
        })
        .await
        .clone()
    }
}

/// `raw` gzipped at the best compression (as `gzip -9`).
pub fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 3), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(raw);
    encoder.finish().unwrap_or_default()
}

/// What `brotli` decodes to; empty if it is not brotli (a broken build).
#[cfg(feature = "embed-client")]
pub fn unbrotli(brotli: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(brotli.len() * 5);
    match brotli_decompressor::BrotliDecompress(&mut &brotli[..], &mut raw) {
        Ok(()) => raw,
        Err(e) => {
            tracing::error!("an embedded file is not brotli: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    #[tokio::test]
    async fn a_form_is_made_once_however_many_ask_and_old_ones_go() {
        let forms = FormCache::default();
        let makes = Arc::new(AtomicUsize::new(0));
        let asks = (0..8).map(|_| {
            let makes = makes.clone();
            forms.get_or_make("app.wasm.gz", move || {
                makes.fetch_add(1, SeqCst);
                gzip(&[7; 10_000])
            })
        });
        let got = futures_util::future::join_all(asks).await;
        assert_eq!(makes.load(SeqCst), 1, "made once");
        assert!(got.iter().all(|bytes| *bytes == got[0]));
        let mut decoder = flate2::read::GzDecoder::new(&got[0][..]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut decoder, &mut raw).expect("gzip");
        assert_eq!(raw, vec![7; 10_000]);
        for i in 0..MAX_FORMS {
            forms.get_or_make(&format!("other-{i}"), Vec::new).await;
        }
        let made_again = makes.clone();
        forms
            .get_or_make("app.wasm.gz", move || {
                made_again.fetch_add(1, SeqCst);
                Vec::new()
            })
            .await;
        assert_eq!(makes.load(SeqCst), 2, "the oldest form went to keep the bound");
    }
}
