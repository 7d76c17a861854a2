//! `arena-bots --verify-replay FILE|URL`: loads a recorded round (a file,
//! or the server's `GET /api/replays/<id>`, over http or https) and
//! re-runs it natively with the shared rules, checking every checksum.

use std::time::Duration;

use arena_shared::replay::{Playback, Replay};

use crate::http::Http;

/// What a verified replay held.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verified {
    pub bytes: usize,
    pub ticks: u32,
    pub secs: f64,
    pub inputs: usize,
    /// Checksums compared, every one equal.
    pub checksums: usize,
}

/// The largest download accepted: a recording is far smaller.
const MAX_DOWNLOAD: usize = arena_shared::replay::MAX_REPLAY_BYTES;

/// Loads `source` and re-runs it; `Err` says what is wrong, readably.
pub async fn verify_replay(source: &str) -> Result<Verified, String> {
    let bytes = load(source).await?;
    let replay = Replay::decode(&bytes).map_err(|e| format!("{source} is not a recording: {e}"))?;
    let (ticks, secs, inputs) = (replay.ticks, replay.secs(), replay.inputs());
    let playback = Playback::new(replay).map_err(|e| e.to_string())?;
    let checksums = playback.verify().map_err(|e| e.to_string())?;
    Ok(Verified { bytes: bytes.len(), ticks, secs, inputs, checksums })
}

async fn load(source: &str) -> Result<Vec<u8>, String> {
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        return std::fs::read(source).map_err(|e| format!("cannot read {source}: {e}"));
    }
    let http = Http::new(None, Duration::from_secs(30), MAX_DOWNLOAD).map_err(|e| e.to_string())?;
    let response = http.get(source).await.map_err(|e| format!("{source}: {e}"))?;
    if response.status != 200 {
        return Err(format!("{source}: HTTP {}: {}", response.status, response.text().trim()));
    }
    Ok(response.body)
}
