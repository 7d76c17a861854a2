//! The real server on 127.0.0.1:0, real WebSockets, real bots.

use std::collections::BTreeSet;
use std::time::Duration;

use arena_bots::ws::{ClientError, WsClient};
use arena_bots::{Behaviour, Live, Outcome, Report, run_swarm};
use arena_shared::codec::encode_client;
use arena_shared::protocol::{
    ClientMsg, MAX_CLIENT_MSG_BYTES, PROTOCOL_VERSION, RejectReason, RoomRequest, ServerMsg, close,
};
use arena_shared::sim::Input;
use arena_tests::{
    TestServer, bots_unaffected_by, eventually, expect_close, http_get, non_reader, recv_until, swarm,
    test_config,
};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_bots_join_and_see_the_others_in_view_move() -> anyhow::Result<()> {
    // One room big enough for all fifty (the default room holds 32).
    let server = TestServer::start(test_config().with(|c| c.game.max_players = 64)).await?;
    let config = swarm(&server, 50, 5.0, Behaviour::Wander);
    let records = run_swarm(config.clone(), Live::default().into()).await;
    let report = Report::from_records(&records, &config);
    assert_eq!(report.connected, 50, "all 50 bots should connect: {report:?}");
    assert_eq!(report.protocol_errors, 0, "should see no protocol errors: {report:?}");
    let ids: BTreeSet<u16> = records.iter().filter_map(|r| r.id).collect();
    assert_eq!(ids.len(), 50, "every bot should get its own id");
    // Each bot sees the others within its view (interest management), so
    // not necessarily all 49; every bot is seen moving by some other.
    let seen_moving: BTreeSet<u16> = records.iter().flat_map(|r| r.saw_move.iter().copied()).collect();
    assert_eq!(seen_moving, ids, "every bot should be seen moving by another");
    for record in &records {
        assert_eq!(record.outcome, Outcome::Completed, "bot {} should run to the end", record.index);
        let me = record.id.expect("connected bots have an id");
        assert!(!record.saw_move.contains(&me), "a bot's view holds the others, not itself");
        assert!(
            record.saw_move.len() >= 10,
            "bot {me} should see at least 10 others move: {:?}",
            record.saw_move
        );
        let (first, last) = (record.first_tick.expect("got frames"), record.last_tick.expect("got frames"));
        assert!(last > first + 30, "ticks should advance: {first} -> {last}");
        assert!(
            record.max_ack > 0 && record.max_ack <= record.inputs_sent,
            "acked seq should rise with inputs sent"
        );
    }
    server.stop().await
}

#[tokio::test]
async fn acked_seq_rises_and_inputs_move_the_player() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let (mut client, welcome) = server.player("mover").await?;
    let me = welcome.you;
    let start = recv_until(&mut client, |m| match m {
        ServerMsg::Frame(f) => (f.you.id == me).then_some(f.you.body.pos),
        _ => None,
    })
    .await?;
    let mut acks = Vec::new();
    for seq in 1..=30u32 {
        client.send(&ClientMsg::Input { seq, input: Input::stick(127, 0) }).await?;
        if seq % 10 == 0 {
            let ack = recv_until(&mut client, |m| match m {
                ServerMsg::Frame(f) if f.ack_seq >= seq - 9 => Some(f.ack_seq),
                _ => None,
            })
            .await?;
            acks.push(ack);
        }
    }
    let (ack, pos) = recv_until(&mut client, |m| match m {
        ServerMsg::Frame(f) if f.ack_seq == 30 => (f.you.id == me).then_some((f.ack_seq, f.you.body.pos)),
        _ => None,
    })
    .await?;
    assert!(acks.windows(2).all(|w| w[0] <= w[1]), "acks should never go back: {acks:?}");
    assert_eq!(ack, 30, "the server should ack the last input");
    assert!(pos.x > start.x, "holding right should move the player right: {start:?} -> {pos:?}");
    assert_eq!(pos.y, start.y, "and not vertically");
    server.stop().await
}

#[tokio::test]
async fn version_mismatch_gets_a_typed_rejection_and_close_code() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut client = server.client().await?;
    client
        .send(&ClientMsg::Hello {
            version: PROTOCOL_VERSION + 1,
            name: "future".into(),
            color: 0,
            room: RoomRequest::Quick,
            resume: None,
        })
        .await?;
    let rejection = recv_until(&mut client, |m| match m {
        ServerMsg::Rejected(r) => Some(r.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(
        rejection.reason,
        RejectReason::VersionMismatch { server: PROTOCOL_VERSION, client: PROTOCOL_VERSION + 1 }
    );
    assert!(rejection.message.contains("protocol"), "should explain in words: {}", rejection.message);
    let (code, _) = expect_close(&mut client).await?.expect("should send a close frame");
    assert_eq!(code, close::VERSION_MISMATCH);
    server.stop().await
}

#[tokio::test]
async fn a_full_server_rejects_with_the_reason_and_close_code() -> anyhow::Result<()> {
    // One room of two: quick-join has nowhere else to go.
    let server = TestServer::start(test_config().with(|c| {
        c.game.max_players = 2;
        c.game.max_rooms = 1;
    }))
    .await?;
    let _a = server.player("a").await?;
    let _b = server.player("b").await?;
    let mut third = server.client().await?;
    match third.handshake("c").await {
        Err(ClientError::Rejected(r)) => {
            assert_eq!(r.reason, RejectReason::RoomsFull { max_rooms: 1 });
            assert!(r.message.contains("full"), "should say the server is full: {}", r.message);
        }
        other => panic!("third player should be rejected, got {other:?}"),
    }
    let (code, reason) = expect_close(&mut third).await?.expect("should send a close frame");
    assert_eq!(code, close::SERVER_FULL);
    assert!(reason.contains("full"));
    server.stop().await
}

#[tokio::test]
async fn a_bad_name_is_rejected() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    for name in ["   ", "a-name-much-too-long-for-arena", "bell\u{7}"] {
        let mut client = server.client().await?;
        let result = client.handshake(name).await;
        assert!(
            matches!(&result, Err(ClientError::Rejected(r)) if r.reason == RejectReason::BadName),
            "{name:?} should be rejected as a bad name, got {result:?}"
        );
        assert_eq!(expect_close(&mut client).await?.map(|c| c.0), Some(close::BAD_NAME));
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_are_refused_without_disturbing_others() -> anyhow::Result<()> {
    bots_unaffected_by(test_config(), async |server| {
        // Before the handshake.
        let mut early = server.client().await?;
        early.send_raw(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into())).await?;
        let (code, reason) = expect_close(&mut early).await?.expect("close frame");
        assert_eq!(code, close::PROTOCOL_ERROR, "garbage before Hello: {reason}");
        // After the handshake, an unknown variant.
        let (mut late, _) = server.player("vandal").await?;
        late.send_raw(Message::Binary(vec![250, 1, 2].into())).await?;
        let (code, reason) = expect_close(&mut late).await?.expect("close frame");
        assert_eq!(code, close::PROTOCOL_ERROR, "garbage after Hello: {reason}");
        assert!(reason.contains("malformed"), "reason should say why: {reason}");
        // Input before Hello, Hello twice, and text.
        let mut eager = server.client().await?;
        eager.send(&ClientMsg::Input { seq: 1, input: Input::default() }).await?;
        assert_eq!(expect_close(&mut eager).await?.map(|c| c.0), Some(close::PROTOCOL_ERROR));
        let (mut twice, _) = server.player("twice").await?;
        twice
            .send(&ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "again".into(),
                color: 0,
                room: RoomRequest::Quick,
                resume: None,
            })
            .await?;
        assert_eq!(expect_close(&mut twice).await?.map(|c| c.0), Some(close::PROTOCOL_ERROR));
        let (mut texter, _) = server.player("texter").await?;
        texter.send_raw(Message::Text("hello?".into())).await?;
        assert_eq!(expect_close(&mut texter).await?.map(|c| c.0), Some(close::UNSUPPORTED_DATA));
        assert_eq!(server.kicks("protocol").await?, 3, "errors after Hello should be counted");
        assert_eq!(server.kicks("bad_handshake").await?, 2, "errors before Hello should be counted");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_without_disturbing_others() -> anyhow::Result<()> {
    bots_unaffected_by(test_config(), async |server| {
        for size in [MAX_CLIENT_MSG_BYTES + 1, 4096, 1 << 20] {
            let (mut client, _) = server.player("big").await?;
            let mut bytes = encode_client(&ClientMsg::Ping { client_time_us: 1 });
            bytes.resize(size, 0);
            // The server may close before a 1 MiB message is fully written.
            let _ = client.send_raw(Message::Binary(bytes.into())).await;
            let close = expect_close(&mut client).await?;
            if size < 1 << 20 {
                let (code, reason) = close.expect("close frame");
                assert_eq!(code, close::MESSAGE_TOO_BIG, "{size} bytes: {reason}");
            } else if let Some((code, _)) = close {
                assert_eq!(code, close::MESSAGE_TOO_BIG, "a 1 MiB message should close with 1009");
            }
        }
        // The 1 MiB sender may see a reset instead of the frame; the server
        // counts every one of them as thrown out for its bytes.
        assert_eq!(server.kicks("protocol").await?, 3, "each oversized message is a protocol kick");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_gets_403_without_disturbing_others() -> anyhow::Result<()> {
    bots_unaffected_by(test_config(), async |server| {
        let evil = WsClient::connect_with_origin(&server.ws_url(), Some("http://evil.example")).await;
        assert!(matches!(evil, Err(ClientError::Http(403))), "foreign origin should get 403");
        let same = format!("http://{}", server.addr);
        let mut ok = WsClient::connect_with_origin(&server.ws_url(), Some(&same)).await?;
        ok.handshake("same-host").await?;
        assert_eq!(server.metric("arena_bad_origin_total").await?, 1);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn listed_origins_are_allowed() -> anyhow::Result<()> {
    let config = test_config().with(|c| c.net.allow_origins = vec!["https://arena.example:8443".into()]);
    let server = TestServer::start(config).await?;
    let mut dev = WsClient::connect_with_origin(&server.ws_url(), Some("https://arena.example:8443")).await?;
    dev.handshake("listed").await?;
    let other = WsClient::connect_with_origin(&server.ws_url(), Some("https://arena.example:9999")).await;
    assert!(matches!(other, Err(ClientError::Http(403))), "an unlisted port should still be refused");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_slow_the_tick_for_anyone() -> anyhow::Result<()> {
    let config = test_config().with(|c| {
        c.game.tick_rate = 60;
        c.net.send_buffer_bytes = 4096;
        c.limits.slow_client_ms = 500;
    });
    let server = TestServer::start(config).await?;
    let mut sloth = non_reader(&server, "sloth", 2048).await?;
    let bots = swarm(&server, 20, 5.0, Behaviour::Wander);
    let records = run_swarm(bots.clone(), Live::default().into()).await;
    let report = Report::from_records(&records, &bots);
    assert_eq!(report.connected, 20, "{report:?}");
    assert!(records.iter().all(|r| r.outcome == Outcome::Completed), "bots should not be disconnected");
    // 60 Hz for ~5 s: a stalled tick would leave them far below 300 frames.
    assert!(records.iter().all(|r| r.frames >= 200), "bots should get frames at the tick rate: {report:?}");
    assert_eq!(server.kicks("too_slow").await?, 1, "the non-reader should be dropped");
    // Reading now, it finds the frames it ignored and then the reason.
    let close = expect_close(&mut sloth).await?;
    if let Some((code, reason)) = close {
        assert_eq!(code, close::TOO_SLOW, "should be told it was too slow: {reason}");
    }
    server.stop().await
}

/// Over plain TCP the tick writes each player's frame to its socket itself;
/// the connection's writer task only sees out what a socket would not take,
/// the welcome, and news between ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_plain_tcp_the_tick_writes_the_frames_itself() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let bots = swarm(&server, 10, 2.0, Behaviour::Wander);
    let records = run_swarm(bots.clone(), Live::default().into()).await;
    let report = Report::from_records(&records, &bots);
    assert_eq!(report.connected, 10, "{report:?}");
    let frames: u64 = records.iter().map(|r| r.frames).sum();
    let direct = server.metric("arena_writes_direct_total").await?;
    let by_writer = server.metric("arena_writes_by_writer_total").await?;
    assert!(direct >= frames, "should write every frame from the tick ({direct} writes, {frames} frames)");
    // Each welcome, and the news of each join between ticks (a burst of
    // joins goes out a batch per player from the writers, not a write per
    // event per player from the room).
    assert!(
        by_writer <= 10 * 11,
        "the writer tasks should only have sent welcomes and joins, not {by_writer}"
    );
    let messages = server.metric("arena_messages_out_total").await?;
    assert!(messages >= frames, "every message is still counted ({messages} < {frames})");
    server.stop().await
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_idle_timeout() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.limits.idle_timeout_secs = 2)).await?;
    let (mut quiet, _) = server.player("quiet").await?;
    // Not reading means not answering pings either: silence (4005) and the
    // unanswered ping (4004) both end it, whichever comes first at 2 s.
    let kicks = eventually("the silent client to be dropped", Duration::from_secs(5), async || {
        let (idle, slow) = (server.kicks("idle").await?, server.kicks("too_slow").await?);
        Ok((idle + slow == 1, (idle, slow)))
    })
    .await?;
    eventually("the silent client to leave the room", Duration::from_secs(2), async || {
        let players = server.metric("arena_players").await?;
        Ok((players == 0, players))
    })
    .await?;
    let (idle, slow) = (server.kicks("idle").await?, server.kicks("too_slow").await?);
    assert_eq!(idle + slow, 1, "one connection, one kick counted (idle {idle}, too slow {slow})");
    // Its own pongs, written while it catches up, may reset the socket
    // before it reads the close frame; if it does read one, it says why.
    if let Some((code, reason)) = expect_close(&mut quiet).await? {
        let expected = if kicks.0 == 1 { close::TIMEOUT } else { close::TOO_SLOW };
        assert_eq!(code, expected, "{reason}");
    }
    server.stop().await
}

#[tokio::test]
async fn a_client_that_never_says_hello_is_closed() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut mute = server.client().await?;
    let (code, reason) = expect_close(&mut mute).await?.expect("close frame");
    assert_eq!(code, close::TIMEOUT, "{reason}");
    server.stop().await
}

#[tokio::test]
async fn joins_and_leaves_are_announced() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let (mut ada, _) = server.player("ada").await?;
    let (mut bob, welcome) = server.player("bob").await?;
    assert_eq!(
        welcome.players.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["ada"],
        "bob should learn of ada"
    );
    let joined = recv_until(&mut ada, |m| match m {
        ServerMsg::Joined(p) if p.name == "bob" => Some(p.id),
        _ => None,
    })
    .await?;
    assert_eq!(joined, welcome.you);
    bob.close().await;
    let left = recv_until(&mut ada, |m| match m {
        ServerMsg::Left { id } => Some(*id),
        _ => None,
    })
    .await?;
    assert_eq!(left, welcome.you, "ada should hear that bob left");
    server.stop().await
}

#[tokio::test]
async fn ping_is_answered_with_the_same_timestamp() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let (mut client, _) = server.player("pinger").await?;
    client.send(&ClientMsg::Ping { client_time_us: 424_242 }).await?;
    let echoed = recv_until(&mut client, |m| match m {
        ServerMsg::Pong { client_time_us } => Some(*client_time_us),
        _ => None,
    })
    .await?;
    assert_eq!(echoed, 424_242);
    server.stop().await
}

#[tokio::test]
async fn shutdown_sends_every_client_a_close_frame() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(server.player(&format!("p{i}")).await?.0);
    }
    server.stop().await?;
    for client in &mut clients {
        let (code, reason) = expect_close(client).await?.expect("every client should get a close frame");
        assert_eq!(code, close::GOING_AWAY, "{reason}");
    }
    Ok(())
}

#[tokio::test]
async fn healthz_and_metrics_report_the_room() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let _player = server.player("counted").await?;
    let health = http_get(server.addr, "/healthz", &[]).await?;
    assert_eq!(health.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&health.body)?;
    assert_eq!(json["status"], "ok");
    assert_eq!(json["players"], 1, "healthz should count the player: {json}");
    // The room opened for this player; its ticks start now.
    eventually("ticks to be counted", Duration::from_secs(2), async || {
        let ticks = server.metric("arena_ticks_total").await?;
        Ok((ticks > 0, ticks))
    })
    .await?;
    assert_eq!(server.metric("arena_players").await?, 1);
    let missing = http_get(server.addr, "/nope", &[]).await?;
    assert_eq!(missing.status, 404, "without --web-dir there is nothing else to serve");
    server.stop().await
}
