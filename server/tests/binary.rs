//! Starts the built `arena-server` binary itself.

use std::process::Stdio;
use std::time::Duration;

use arena_shared::codec::{decode_server, encode_client};
use arena_shared::protocol::{ClientMsg, PROTOCOL_VERSION, ServerMsg, close};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_arena-server");

/// Starts the binary on an ephemeral port and reads the address it prints.
async fn start(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the arena-server binary should start");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("should print its address within 20s")
        .expect("stdout readable")
        .expect("a first line");
    let addr = first
        .strip_prefix("arena-server listening on http://")
        .unwrap_or_else(|| panic!("first line should say where it listens: {first}"))
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

#[tokio::test]
async fn binary_serves_players_and_closes_them_on_sigterm() {
    let (mut child, addr) = start(&["--tick-rate", "20"]).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("should accept a websocket");
    let hello = encode_client(&ClientMsg::Hello { version: PROTOCOL_VERSION, name: "cli".into() });
    ws.send(Message::Binary(hello.into())).await.expect("send hello");
    let mut welcomed = false;
    let mut frames = 0;
    while frames < 5 {
        let Some(Ok(Message::Binary(bytes))) = ws.next().await else { continue };
        match decode_server(&bytes).expect("server bytes should decode") {
            ServerMsg::Welcome(w) => {
                assert_eq!(w.tick_rate, 20, "--tick-rate should reach the room");
                welcomed = true;
            }
            ServerMsg::Frame(_) => frames += 1,
            _ => {}
        }
    }
    assert!(welcomed, "should be welcomed before frames");

    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(status.success());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("close within 10s") {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("close frame should carry a code");
    assert_eq!(u16::from(close.code), close::GOING_AWAY, "reason: {}", close.reason);
    let exit =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits").expect("wait");
    assert!(exit.success(), "SIGTERM should be a clean exit, got {exit}");
}

#[tokio::test]
async fn binary_answers_healthz() {
    let (_child, addr) = start(&[]).await;
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "healthz should be 200: {response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
}

#[test]
fn bad_flags_get_a_readable_error() {
    for (args, expect) in [
        (&["--tick-rate", "500"][..], "tick-rate"),
        (&["--max-players", "0"], "max-players"),
        (&["--bind", "nowhere"], "--bind"),
        (&["--web-dir", "/no/such/dir"], "not a directory"),
        (&["--allow-origin", "evil"], "not an origin"),
    ] {
        let out = std::process::Command::new(BIN).args(args).output().expect("binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2");
        assert!(stderr.contains(expect), "{args:?} should explain itself, said: {stderr}");
    }
}

#[test]
fn env_vars_are_a_fallback_for_flags() {
    let out = std::process::Command::new(BIN).env("ARENA_TICK_RATE", "0").output().expect("binary runs");
    assert_eq!(out.status.code(), Some(2), "ARENA_TICK_RATE=0 should be refused like --tick-rate 0");
    assert!(String::from_utf8_lossy(&out.stderr).contains("tick-rate"));
}
