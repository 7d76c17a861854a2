//! `arena-bots --verify-replay FILE|URL`: loads a recorded round (a file,
//! or the server's `GET /api/replays/<id>` over plain HTTP) and re-runs it
//! natively with the shared rules, checking every checksum.

use std::time::Duration;

use arena_shared::replay::{Playback, Replay};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    if source.starts_with("https://") {
        return Err(format!("{source}: fetch it first (curl -o round.replay …) and pass the file"));
    }
    let Some(rest) = source.strip_prefix("http://") else {
        return std::fs::read(source).map_err(|e| format!("cannot read {source}: {e}"));
    };
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(host).await.map_err(|e| format!("{host}: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("{host}: {e}"))?;
        let mut response = Vec::new();
        stream
            .take(MAX_DOWNLOAD as u64 + 4096)
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("{host}: {e}"))?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(30), fetch)
        .await
        .map_err(|_| format!("{source}: no answer within 30 s"))??;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or(format!("{source}: not HTTP"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(format!("{source}: {status}"));
    }
    Ok(response[split + 4..].to_vec())
}
