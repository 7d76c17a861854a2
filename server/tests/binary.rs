//! Starts the built `arena-server` binary itself.

use std::process::Stdio;
use std::time::Duration;

use arena_shared::codec::{decode_server, encode_client};
use arena_shared::protocol::{ClientMsg, PROTOCOL_VERSION, RoomRequest, ServerMsg, close};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_arena-server");

/// Starts the binary on an ephemeral port and reads the address it prints.
async fn start(extra: &[&str]) -> (Child, String) {
    start_with(Command::new(BIN), extra).await
}

/// Starts the binary with a shell's open-files limit (soft and hard) of `fds`.
async fn start_with_fd_limit(fds: u32, extra: &[&str]) -> (Child, String) {
    let mut command = Command::new("bash");
    command.args(["-c", &format!("ulimit -n {fds} && exec \"$0\" \"$@\""), BIN]);
    start_with(command, extra).await
}

async fn start_with(mut command: Command, extra: &[&str]) -> (Child, String) {
    let mut child = command
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
    let hello = encode_client(&ClientMsg::Hello {
        version: PROTOCOL_VERSION,
        name: "cli".into(),
        color: 1,
        room: RoomRequest::Quick,
        resume: None,
    });
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
    let (status, body) = get(&addr, "/healthz").await.expect("an answer");
    assert_eq!(status, 200, "healthz should be 200: {body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_promptly_whatever_is_connected() {
    let (mut child, addr) = start(&[]).await;
    // A request head half sent, an idle socket, and 50 upgraded sockets that never say Hello.
    let mut half_sent = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    half_sent.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ").await.expect("write");
    let _idle = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let mut mute = Vec::new();
    for _ in 0..50 {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("upgrade");
        mute.push(ws);
    }
    let started = tokio::time::Instant::now();
    sigterm(&child);
    let exit =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits").expect("wait");
    let took = started.elapsed();
    assert!(exit.success(), "SIGTERM should be a clean exit, got {exit}");
    // The bound: shutdown's grace is 1.5 s, so 2 s means nothing hung.
    assert!(took < Duration::from_secs(2), "should exit within 2 s, took {took:?}");
    for ws in &mut mute {
        let frame = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("an upgraded socket should get a close frame, got {other:?}"),
            }
        };
        assert_eq!(frame.map(|f| u16::from(f.code)), Some(close::GOING_AWAY));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_is_survived_and_logged() {
    let (_child, addr) = start_with_fd_limit(60, &[]).await;
    // Far more sockets than 60 descriptors: accepts fail with "too many open files".
    let mut flood = Vec::new();
    for _ in 0..150 {
        if let Ok(tcp) = tokio::net::TcpStream::connect(&addr).await {
            flood.push(tcp);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(flood);
    // Once the attacker leaves, the server serves again.
    let mut answer = (0, String::new());
    for _ in 0..50 {
        answer = get(&addr, "/metrics").await.unwrap_or_default();
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, answer) = answer;
    assert_eq!(status, 200, "the server should serve again: {answer}");
    let errors = answer
        .lines()
        .find_map(|l| l.strip_prefix("arena_accept_errors_total "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(errors.is_some_and(|n| n > 0), "failed accepts should be counted: {errors:?}");
}

/// `GET path` with arena's one HTTP client: the status and body.
async fn get(addr: &str, path: &str) -> Result<(u16, String), arena_bots::http::HttpError> {
    let http = arena_bots::http::Http::new(None, Duration::from_secs(2), 1 << 20)?;
    let response = http.get(&format!("http://{addr}{path}")).await?;
    Ok((response.status, response.text()))
}

#[test]
fn bad_flags_get_a_readable_error() {
    for (args, expect) in [
        (&["--tick-rate", "500"][..], "tick-rate"),
        (&["--room-size", "0"], "room-size"),
        (&["--max-rooms", "0"], "max-rooms"),
        (&["--round-secs", "0"], "round-secs"),
        (&["--podium-secs", "abc"], "podium-secs"),
        (&["--room-idle-secs", "0"], "not a time"),
        (&["--bind", "nowhere"], "--bind"),
        (&["--web-dir", "/no/such/dir"], "not a directory"),
        (&["--allow-origin", "evil"], "not an origin"),
        (&["--public-host", "http://x/"], "not a host name"),
        (&["--max-connections", "0"], "max-connections"),
        (&["--header-timeout-ms", "5"], "header-timeout-ms"),
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
