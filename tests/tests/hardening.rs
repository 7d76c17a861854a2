//! The server against a determined attacker: every defect found when arena
//! was attacked on purpose (issue #6) is a test here, run against the real
//! server on real sockets, with the real attack code `arena-bots --attack`
//! uses, in doses that take seconds. The long runs are `scripts/attack.sh`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arena_attack::{AttackConfig, AttackKind, AttackReport, run_attack};
use arena_bots::ws::{ClientError, WsClient};
use arena_bots::ws::{connect_from, connect_tcp};
use arena_shared::protocol::{ClientMsg, PROTOCOL_VERSION, RejectReason, RoomRequest, ServerMsg, close};
use arena_shared::sim::Input;
use arena_tests::{
    TestServer, bots_unaffected_by, eventually, expect_close, http_get, recv_until, test_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn attack(server: &TestServer, kind: AttackKind, count: usize, secs: f64) -> AttackConfig {
    AttackConfig {
        kind,
        url: server.ws_url(),
        count,
        concurrency: count,
        duration: Duration::from_secs_f64(secs),
        sources: Vec::new(),
    }
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Seats come back within a second of every way a player can vanish.
async fn assert_no_ghosts(server: &TestServer, honest: u64) -> anyhow::Result<()> {
    eventually("players back to the honest count", Duration::from_secs(1), async || {
        let players = server.players().await?;
        Ok((players == honest, players))
    })
    .await?;
    assert_eq!(server.metric("arena_task_panics_total").await?, 0, "no connection task should panic");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_resets_and_clean_leaves_leave_no_ghost_seats() -> anyhow::Result<()> {
    // One room of 40, so every player lands in it; seats of dropped players
    // are not held (the held ones are the next test's).
    let config = test_config().with(|c| {
        c.game.max_players = 40;
        c.game.max_rooms = 1;
        c.game.resume_secs = 0.0;
    });
    let server = TestServer::start(config).await?;
    let (_honest, _) = server.player("honest").await?;
    let resets =
        run_attack(AttackConfig { concurrency: 30, ..attack(&server, AttackKind::Reset, 150, 10.0) }).await;
    assert!(resets.is_defended(), "every reset cycle should join and play: {resets:?}");
    assert_no_ghosts(&server, 1).await?;
    let churn =
        run_attack(AttackConfig { concurrency: 30, ..attack(&server, AttackKind::Churn, 150, 10.0) }).await;
    assert!(churn.is_defended(), "every clean cycle should join and leave: {churn:?}");
    assert_no_ghosts(&server, 1).await?;
    // 300 players came and went through 39 free seats: all of them are free again.
    let mut full_room = Vec::new();
    for i in 0..39 {
        full_room.push(server.player(&format!("after-{i}")).await?);
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_held_for_resets_are_freed_when_the_window_ends() -> anyhow::Result<()> {
    let config = test_config().with(|c| c.game.resume_secs = 0.5);
    let server = TestServer::start(config).await?;
    let (_honest, _) = server.player("honest").await?;
    let resets =
        run_attack(AttackConfig { concurrency: 30, ..attack(&server, AttackKind::Reset, 100, 10.0) }).await;
    assert!(resets.is_defended(), "every reset cycle should join and play: {resets:?}");
    // The held seats go when their 0.5 s window ends.
    eventually("the held seats to be freed", Duration::from_secs(3), async || {
        let players = server.players().await?;
        Ok((players == 1, players))
    })
    .await?;
    assert_no_ghosts(&server, 1).await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_flooders_are_closed_for_their_rate_while_bots_keep_the_tick() -> anyhow::Result<()> {
    bots_unaffected_by(test_config(), async |server| {
        let report = run_attack(attack(server, AttackKind::InputFlood, 4, 5.0)).await;
        assert_rate_limited(&report);
        assert_eq!(
            server.kicks("rate_limit").await?,
            4,
            "each flooder should be counted as a rate-limit kick"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flooders_that_never_read_are_closed_while_bots_keep_the_tick() -> anyhow::Result<()> {
    bots_unaffected_by(test_config(), async |server| {
        let report = run_attack(attack(server, AttackKind::PingFlood, 2, 5.0)).await;
        assert_eq!(report.closed_by_server, 2, "the server should end both ping floods: {report:?}");
        assert_eq!(server.kicks("rate_limit").await?, 2, "control frames count against the rate: {report:?}");
        Ok(())
    })
    .await
}

fn assert_rate_limited(report: &AttackReport) {
    assert_eq!(report.closed_by_server, report.attackers, "every flooder should be closed: {report:?}");
    assert_eq!(
        report.closed_with.get(&close::RATE_LIMITED.to_string()),
        Some(&report.attackers),
        "flooders should be told 4006 (rate limited): {report:?}"
    );
}

#[tokio::test]
async fn the_rate_limit_close_says_why() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.limits.max_message_rate = 100)).await?;
    let (mut flooder, _) = server.player("flooder").await?;
    for seq in 1..=400 {
        flooder.send(&ClientMsg::Input { seq, input: Input::default() }).await?;
    }
    let (code, reason) = expect_close(&mut flooder).await?.expect("a close frame");
    assert_eq!(code, close::RATE_LIMITED);
    assert!(reason.contains("100 messages a second"), "the reason should give the limit: {reason}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_sockets_are_closed_at_the_head_deadline() -> anyhow::Result<()> {
    let config = test_config().with(|c| c.limits.header_timeout_ms = 800);
    bots_unaffected_by(config, async |server| {
        let started = Instant::now();
        // From ten addresses, so the per-address cap (64) does not answer first.
        let sources: Vec<IpAddr> = (2..12).map(loopback).collect();
        let (idle, slow) = tokio::join!(
            run_attack(AttackConfig {
                sources: sources.clone(),
                ..attack(server, AttackKind::Idle, 100, 5.0)
            }),
            run_attack(AttackConfig { sources, ..attack(server, AttackKind::Slowloris, 100, 5.0) }),
        );
        // Closed, not refused: a trickling writer may see its last byte reset.
        let closed = |r: &AttackReport| {
            r.closed_with
                .iter()
                .filter(|(how, _)| *how == "eof" || *how == "reset")
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        assert_eq!(closed(&idle), 100, "idle sockets should all be closed: {idle:?}");
        assert_eq!(closed(&slow), 100, "slowloris sockets should all be closed: {slow:?}");
        assert!(started.elapsed() < Duration::from_secs(4), "well before the attackers' own 5 s");
        assert_eq!(server.kicks("header_timeout").await?, 200, "each should count as a header timeout");
        // Only the ten bots (and this request) remain.
        let open = server.metric("arena_connections_open").await?;
        assert!(open <= 11, "closed sockets should be forgotten: {open} open");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_keep_alive_connection_gets_a_deadline_for_each_request() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.limits.header_timeout_ms = 500)).await?;
    let mut tcp = TcpStream::connect(server.addr).await?;
    tcp.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await?;
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "the first request is answered");
    // Then nothing: the connection must not stay open forever.
    let rest = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf)).await;
    assert!(
        matches!(rest, Ok(Ok(0)) | Ok(Err(_))),
        "an idle keep-alive connection should be closed: {rest:?}"
    );
    server.stop().await
}

#[tokio::test]
async fn connections_over_the_caps_get_503_with_the_reason() -> anyhow::Result<()> {
    // Loopback is held to the per-address cap only when asked: the test's
    // addresses are all on this machine.
    let config = test_config().with(|c| {
        c.limits.max_connections = 6;
        c.limits.max_connections_per_ip = 3;
        c.limits.limit_loopback = true;
    });
    let server = TestServer::start(config).await?;
    // A player holds a place like any other socket.
    let mut player =
        connect_from(&server.ws_url(), Some(loopback(1)), false).await.map_err(anyhow::Error::msg)?;
    player.handshake("holder").await?;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(connect_tcp(server.addr, Some(loopback(1)), false).await?);
    }
    let refused = http_get_from(&server, loopback(1)).await?;
    assert!(refused.starts_with("HTTP/1.1 503"), "a 4th socket from one address: {refused}");
    assert!(refused.contains("your address holds its limit of 3"), "should say which cap: {refused}");
    for _ in 0..3 {
        held.push(connect_tcp(server.addr, Some(loopback(2)), false).await?);
    }
    let refused = http_get_from(&server, loopback(3)).await?;
    assert!(refused.starts_with("HTTP/1.1 503"), "a 7th socket in all: {refused}");
    assert!(refused.contains("the server holds its limit of 6"), "should say which cap: {refused}");
    // Closing sockets frees places: the caps count what is open, not what was.
    drop(held);
    let answered = eventually("a place to free up", Duration::from_secs(2), async || {
        let answer = http_get_from(&server, loopback(3)).await?;
        Ok((answer.starts_with("HTTP/1.1 200"), answer))
    })
    .await?;
    assert!(answered.contains("\"players\":1"), "the player kept its place: {answered}");
    assert_eq!(server.kicks("connection_cap").await?, 2, "both refusals should be counted");
    server.stop().await
}

/// What a connection from `source` is told: the 503 of a cap is written
/// as the socket is accepted, before any request (an HTTP client takes
/// that for a broken connection), so the socket is read as it is; under
/// the caps, a `GET /healthz` is answered.
async fn http_get_from(server: &TestServer, source: IpAddr) -> anyhow::Result<String> {
    get_from(server, source, "/healthz").await
}

/// A GET of `path` from `source`, the whole answer as text.
async fn get_from(server: &TestServer, source: IpAddr, path: &str) -> anyhow::Result<String> {
    let mut tcp = connect_tcp(server.addr, Some(source), false).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", server.addr);
    tcp.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_and_closes_every_socket_whatever_it_was_doing() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut half_sent = TcpStream::connect(server.addr).await?;
    half_sent.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ").await?;
    let _idle = TcpStream::connect(server.addr).await?;
    let mut no_hello = Vec::new();
    for _ in 0..20 {
        no_hello.push(server.client().await?);
    }
    let mut players = Vec::new();
    for i in 0..5 {
        players.push(server.player(&format!("p{i}")).await?.0);
    }
    let started = Instant::now();
    server.stop().await?;
    let took = started.elapsed();
    // The bound is 1.5 s of grace; more means something waited on a client.
    assert!(took < Duration::from_secs(2), "shutdown should not wait on clients: took {took:?}");
    for client in no_hello.iter_mut().chain(players.iter_mut()) {
        let (code, reason) = expect_close(client).await?.expect("every websocket should get a close frame");
        assert_eq!(code, close::GOING_AWAY, "{reason}");
    }
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(1), half_sent.read_to_end(&mut rest)).await;
    assert!(matches!(ended, Ok(Ok(_))), "the half-sent request's socket is closed (EOF): {ended:?}");
    Ok(())
}

#[tokio::test]
async fn a_clients_close_frame_is_echoed() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    for joined in [true, false] {
        let mut client = server.client().await?;
        if joined {
            client.handshake("polite").await?;
        }
        let frame = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        client.send_raw(Message::Close(Some(frame))).await?;
        let (code, _) = expect_close(&mut client).await?.expect("the server should echo the close frame");
        assert_eq!(code, close::NORMAL, "the echo carries the client's code (joined: {joined})");
    }
    assert_no_ghosts(&server, 0).await?;
    server.stop().await
}

#[tokio::test]
async fn a_non_reader_with_default_buffers_is_found_by_its_unanswered_pings() -> anyhow::Result<()> {
    // Pings every 0.67 s, answered within 2 s or the client is too slow.
    let server = TestServer::start(test_config().with(|c| c.limits.idle_timeout_secs = 2)).await?;
    let (client, _) = server.player("deaf").await?;
    let (mut tx, _rx) = client.split();
    // It keeps sending inputs, so it is never idle, but it reads nothing:
    // megabytes of kernel buffer would hide it from the stale-frame rule.
    let sending = tokio::spawn(async move {
        for seq in 1.. {
            if tx.send(&ClientMsg::Input { seq, input: Input::default() }).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(16)).await;
        }
    });
    eventually("the deaf client to be kicked", Duration::from_secs(6), async || {
        let kicks = server.kicks("too_slow").await?;
        Ok((kicks == 1, kicks))
    })
    .await?;
    assert_no_ghosts(&server, 0).await?;
    sending.abort();
    server.stop().await
}

#[tokio::test]
async fn upgraded_sockets_that_never_say_hello_get_4005_at_the_handshake_deadline() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.limits.handshake_timeout_ms = 500)).await?;
    let report = run_attack(attack(&server, AttackKind::NoHello, 20, 5.0)).await;
    assert_eq!(report.closed_with.get(&close::TIMEOUT.to_string()), Some(&20), "{report:?}");
    assert!(report.close_secs_max < 2.0, "closed at the deadline: {report:?}");
    assert_eq!(server.kicks("bad_handshake").await?, 20);
    server.stop().await
}

#[tokio::test]
async fn names_are_normalised_made_unique_and_invisible_ones_refused() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut names = Vec::new();
    let mut playing = Vec::new();
    for asked in ["ada", "Ada", "Zoe\u{308}"] {
        let (mut client, welcome) = server.player(asked).await?;
        let name = recv_until(&mut client, |m| match m {
            ServerMsg::Joined(p) if p.id == welcome.you => Some(p.name.clone()),
            _ => None,
        })
        .await?;
        names.push(name);
        playing.push(client);
    }
    assert_eq!(names, ["ada", "Ada (2)", "Zoë"], "taken names get a suffix; names are NFC");
    for invisible in ["\u{200B}\u{200B}", "\u{3164}", "ada\u{202E}nimda", "\u{FEFF}"] {
        let mut client = server.client().await?;
        let result = client.handshake(invisible).await;
        assert!(
            matches!(&result, Err(ClientError::Rejected(r)) if r.reason == RejectReason::BadName),
            "{invisible:?} should be refused as a bad name, got {result:?}"
        );
        assert_eq!(expect_close(&mut client).await?.map(|c| c.0), Some(close::BAD_NAME));
    }
    server.stop().await
}

#[tokio::test]
async fn origins_follow_the_policy_end_to_end() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let url = server.ws_url();
    let port = server.addr.port();
    let refused = |result: Result<WsClient, ClientError>| matches!(result, Err(ClientError::Http(403)));
    // A foreign page that sets X-Forwarded-Host to match (a non-browser forger).
    let forged = WsClient::connect_with_headers(
        &url,
        &[("origin", "http://evil.example"), ("x-forwarded-host", "evil.example")],
    )
    .await;
    assert!(refused(forged), "X-Forwarded-Host is not trusted without --behind-proxy");
    // DNS rebinding: evil.example resolves to this server, so Host matches Origin.
    let evil = format!("evil.example:{port}");
    let rebound =
        WsClient::connect_with_headers(&url, &[("origin", &format!("http://{evil}")), ("host", &evil)]).await;
    assert!(refused(rebound), "a name the server does not answer to is refused even when Host matches");
    // trunk serve: the page on :8080, Host rewritten to the server.
    let mut dev = WsClient::connect_with_headers(
        &url,
        &[("origin", "http://127.0.0.1:8080"), ("x-forwarded-host", "127.0.0.1:8080")],
    )
    .await?;
    dev.handshake("trunk-dev").await?;
    assert_eq!(server.metric("arena_bad_origin_total").await?, 2);
    server.stop().await?;

    let config = test_config().with(|c| {
        c.net.public_hosts = vec!["game.example.com".into()];
        c.net.behind_proxy = true;
    });
    let server = TestServer::start(config).await?;
    let mut proxied = WsClient::connect_with_headers(
        &server.ws_url(),
        &[("origin", "https://game.example.com"), ("x-forwarded-host", "game.example.com")],
    )
    .await?;
    proxied.handshake("proxied").await?;
    server.stop().await
}

#[tokio::test]
async fn hello_still_works_after_control_frames() -> anyhow::Result<()> {
    // Control frames before Hello are legal WebSocket; they only cost budget.
    let server = TestServer::start(test_config()).await?;
    let mut client = server.client().await?;
    client.send_raw(Message::Ping(vec![1, 2, 3].into())).await?;
    client
        .send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "pinged".into(),
            color: 0,
            room: RoomRequest::Quick,
            resume: None,
        })
        .await?;
    let welcome = recv_until(&mut client, |m| match m {
        ServerMsg::Welcome(w) => Some(w.you),
        _ => None,
    })
    .await?;
    let health = http_get(server.addr, "/healthz", &[]).await?;
    assert_eq!(health.status, 200);
    let frame_for = recv_until(&mut client, |m| match m {
        ServerMsg::Frame(f) => Some(f.you.id),
        _ => None,
    })
    .await?;
    assert_eq!(frame_for, welcome, "the session goes on: a frame for this player");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_reading_the_public_api_as_fast_as_it_can_is_held_to_its_rate_others_are_not()
-> anyhow::Result<()> {
    let config = test_config().with(|c| c.limits.limit_loopback = true);
    let server = TestServer::start(config).await?;
    // Two readers from one address, asking as fast as they are answered.
    let flood =
        AttackConfig { sources: vec![loopback(40)], ..attack(&server, AttackKind::PublicReads, 2, 2.0) };
    let report = run_attack(flood).await;
    assert_eq!(report.failed, 0, "{report:?}");
    // The burst (100) and 50 a second for about two seconds, give or take
    // the refill while the burst went.
    assert!(
        (100..=260).contains(&report.completed) && report.refused > report.completed,
        "held to its rate: {} answered, {} refused",
        report.completed,
        report.refused
    );
    assert!(server.metric("arena_public_reads_limited_total").await? >= report.refused as u64);
    // The answer says so, with when to come back (the bucket refills at 50
    // a second: a few in a row find it empty).
    let mut answer = String::new();
    for _ in 0..20 {
        answer = get_from(&server, loopback(40), "/api/rooms").await?;
        if !answer.starts_with("HTTP/1.1 200") {
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("too many requests from this address"), "{answer}");
    // Another address, and the rest of the server, are untouched.
    for path in ["/api/rooms", "/api/cluster"].repeat(10) {
        let answer = get_from(&server, loopback(41), path).await?;
        assert!(answer.starts_with("HTTP/1.1 200"), "another address reads {path}: {answer}");
    }
    assert!(
        http_get_from(&server, loopback(40)).await?.starts_with("HTTP/1.1 200"),
        "/healthz is not the API"
    );
    server.stop().await
}
