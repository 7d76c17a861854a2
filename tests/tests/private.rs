//! "Private means private" (issue #15): what the public can read never names
//! a private room, and one address cannot guess codes quickly, take every
//! room or seat, or hide a dead reader behind a forged pong. Each test here
//! failed on the code before the fix; the long runs are `scripts/attack.sh`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arena_bots::ws::connect_from;
use arena_bots::ws::{Incoming, WsClient};
use arena_server::ServerConfig;
use arena_shared::codec::{CONFIG, encode_client};
use arena_shared::protocol::{
    ClientMsg, PROTOCOL_VERSION, RejectReason, Rejection, RoomRequest, ServerMsg, close,
};
use arena_shared::sim::Input;
use arena_tests::{
    ADMIN_TOKEN, TestServer, eventually, expect_close, http_get, non_reader, recv_until, rejection,
    test_config,
};
use tokio_tungstenite::tungstenite::{Bytes, Message};

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Loopback peers held to every per-address limit, as remote ones are.
fn per_address_config() -> ServerConfig {
    test_config().with(|c| c.limits.limit_loopback = true)
}

#[tokio::test]
async fn no_public_endpoint_names_a_private_room_but_operators_see_it() -> anyhow::Result<()> {
    let web = tempfile::tempdir()?;
    std::fs::write(web.path().join("index.html"), "<!doctype html><title>arena</title>")?;
    let config = test_config().with(|c| c.net.web_dir = Some(web.path().to_owned()));
    let server = TestServer::start(config).await?;
    let (_host, private) = server.join_from(1, "host", RoomRequest::CreatePrivate).await?;
    let (_guest, public) = server.join_from(1, "guest", RoomRequest::Quick).await?;
    assert!(private.private && !public.private);
    eventually("both rooms to tick", Duration::from_secs(3), async || {
        let ticks = server
            .operator_metric(&format!("arena_room_tick_micros_count{{room=\"{}\"}}", private.room))
            .await;
        Ok((ticks.as_ref().is_ok_and(|&t| t > 0), format!("{ticks:?}")))
    })
    .await?;

    for path in ["/", "/index.html", "/api/rooms", "/healthz", "/metrics"] {
        let answer = http_get(server.addr, path, &[]).await?;
        assert_eq!(answer.status, 200, "{path} should be served to the public");
        let body = String::from_utf8_lossy(&answer.body);
        assert!(!body.contains(&private.room), "{path} should not name the private room:\n{body}");
    }
    let listed = http_get(server.addr, "/api/rooms", &[]).await?;
    assert!(String::from_utf8_lossy(&listed.body).contains(&public.room), "public rooms stay listed");

    // Operators: the token on the public address, or the operators' address.
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for (addr, headers) in
        [(server.addr, vec![("Authorization", bearer.as_str())]), (server.operator, vec![])]
    {
        let health = http_get(addr, "/healthz", &headers).await?;
        let json: serde_json::Value = serde_json::from_slice(&health.body)?;
        let codes: Vec<&str> =
            json["room_list"].as_array().into_iter().flatten().filter_map(|r| r["code"].as_str()).collect();
        assert!(codes.contains(&private.room.as_str()), "operators at {addr} should see every room: {json}");
        let metrics = String::from_utf8(http_get(addr, "/metrics", &headers).await?.body)?;
        assert!(metrics.contains(&format!("arena_room_players{{room=\"{}\"}} 1", private.room)), "{metrics}");
    }
    let wrong =
        http_get(server.addr, "/metrics", &[("Authorization", "Bearer not-the-token-at-all")]).await?;
    assert_eq!(wrong.status, 401, "a wrong token is refused, not shown the public figures");
    assert!(!String::from_utf8_lossy(&wrong.body).contains(&private.room));
    server.stop().await
}

#[tokio::test]
async fn wrong_room_codes_are_budgeted_per_address_before_the_look_up() -> anyhow::Result<()> {
    let server = TestServer::start(per_address_config()).await?;
    let (_host, room) = server.join_from(1, "host", RoomRequest::CreatePrivate).await?;
    let guess = |n: usize| RoomRequest::Join { code: format!("{n:0>10}") };
    for n in 0..10 {
        let refused = rejection(server.join_from(2, "guesser", guess(n)).await);
        assert_eq!(refused.reason, RejectReason::RoomNotFound, "guess {n} is answered");
    }
    let mut client =
        connect_from(&server.ws_url(), Some(loopback(2)), false).await.map_err(anyhow::Error::msg)?;
    let refused =
        rejection(client.handshake_in("guesser", RoomRequest::Join { code: room.room.clone() }).await);
    assert!(
        matches!(refused.reason, RejectReason::TooManyGuesses { retry_after_secs: 1..=5 }),
        "past the burst even the right code is refused: {refused:?}"
    );
    assert!(refused.message.contains("try again in"), "{}", refused.message);
    assert_eq!(expect_close(&mut client).await?.map(|c| c.0), Some(close::RATE_LIMITED));
    let (_friend, joined) =
        server.join_from(3, "friend", RoomRequest::Join { code: room.room.clone() }).await?;
    assert_eq!(joined.room, room.room, "another address still gets in with the link");
    assert_eq!(server.metric("arena_room_code_misses_total").await?, 10);
    assert_eq!(server.metric("arena_guesses_limited_total").await?, 1);
    server.stop().await
}

#[tokio::test]
async fn behind_a_proxy_the_budgets_count_the_forwarded_address() -> anyhow::Result<()> {
    // The proxy is on this machine (exempt); the players it forwards are not.
    let config = test_config().with(|c| c.net.behind_proxy = true);
    let server = TestServer::start(config).await?;
    let via_proxy = async |player: &str| -> Result<Rejection, anyhow::Error> {
        let headers = [("X-Forwarded-For", player)];
        let mut client = WsClient::connect_with_headers(&server.ws_url(), &headers).await?;
        Ok(rejection(client.handshake_in("p", RoomRequest::Join { code: "nosuchroom".into() }).await))
    };
    for _ in 0..10 {
        assert_eq!(via_proxy("10.0.0.1, 198.51.100.7").await?.reason, RejectReason::RoomNotFound);
    }
    let refused = via_proxy("10.0.0.2, 198.51.100.7").await?;
    assert!(
        matches!(refused.reason, RejectReason::TooManyGuesses { .. }),
        "the player the proxy saw is out of tries, whatever it wrote before: {refused:?}"
    );
    let other = via_proxy("198.51.100.8").await?;
    assert_eq!(
        other.reason,
        RejectReason::RoomNotFound,
        "another player behind the proxy has its own budget"
    );
    server.stop().await
}

#[tokio::test]
async fn a_peer_that_is_no_trusted_proxy_cannot_choose_its_address_with_a_header() -> anyhow::Result<()> {
    // Behind a proxy on 10.0.0.0/8; this client reaches the server directly.
    let config = per_address_config().with(|c| {
        c.net.behind_proxy = true;
        c.net.trusted_proxies = vec!["10.0.0.0/8".parse().expect("a block")];
    });
    let server = TestServer::start(config).await?;
    let mut outcomes = Vec::new();
    for n in 0..11 {
        let forged = format!("198.51.100.{n}");
        let mut client =
            WsClient::connect_with_headers(&server.ws_url(), &[("X-Forwarded-For", forged.as_str())]).await?;
        let asked = client.handshake_in("p", RoomRequest::Join { code: "nosuchroom".into() }).await;
        outcomes.push(rejection(asked).reason);
    }
    assert!(outcomes[..10].iter().all(|r| *r == RejectReason::RoomNotFound), "{outcomes:?}");
    assert!(
        matches!(outcomes[10], RejectReason::TooManyGuesses { .. }),
        "eleven forged addresses are one peer's eleven guesses: {outcomes:?}"
    );
    server.stop().await
}

#[tokio::test]
async fn one_address_cannot_take_every_room_and_quick_join_keeps_its_share() -> anyhow::Result<()> {
    // Eight rooms: six may be private, two at most per address.
    let config = per_address_config().with(|c| {
        c.game.max_rooms = 8;
        c.limits.max_rooms_per_ip = 2;
        c.game.room_idle_secs = 600.0;
        c.game.resume_secs = 0.0;
    });
    let server = TestServer::start(config).await?;
    let (mut first, _) = server.join_from(10, "a", RoomRequest::CreatePrivate).await?;
    let _second = server.join_from(10, "b", RoomRequest::CreatePrivate).await?;
    let refused = rejection(server.join_from(10, "c", RoomRequest::CreatePrivate).await);
    assert_eq!(refused.reason, RejectReason::TooManyRooms { max: 2 });
    assert_eq!(refused.reason.close_code(), close::RATE_LIMITED);

    let mut others = Vec::new();
    for source in [11, 11, 12, 12] {
        others.push(server.join_from(source, "d", RoomRequest::CreatePrivate).await?);
    }
    let refused = rejection(server.join_from(13, "e", RoomRequest::CreatePrivate).await);
    assert_eq!(refused.reason, RejectReason::RoomsFull { max_rooms: 6 }, "private rooms are at their cap");
    let (_player, public) = server.join_from(13, "f", RoomRequest::Quick).await?;
    assert!(!public.private, "quick-join still opens a public room");

    // A room whose opener left alone closes soon, not after --room-idle-secs,
    // and its address may open another.
    first.close().await;
    eventually("the abandoned room to close", Duration::from_secs(10), async || {
        let rooms = server.metric("arena_rooms").await?;
        Ok((rooms == 6, rooms))
    })
    .await?;
    server.join_from(10, "g", RoomRequest::CreatePrivate).await?;
    assert_eq!(server.metric("arena_rooms_limited_total").await?, 1);
    server.stop().await
}

#[tokio::test]
async fn one_address_holds_few_seats_and_a_friend_still_resumes() -> anyhow::Result<()> {
    let config = per_address_config().with(|c| {
        c.limits.max_held_seats_per_ip = 2;
        c.game.resume_secs = 60.0;
    });
    let server = TestServer::start(config).await?;
    // Connect, join, drop the socket without a close, repeat.
    for n in 0..6 {
        let (client, _) = server.join_from(20, &format!("holder{n}"), RoomRequest::Quick).await?;
        drop(client);
    }
    eventually("only two dropped seats to stay held", Duration::from_secs(5), async || {
        let players = server.players().await?;
        let refused = server.metric("arena_holds_refused_total").await?;
        Ok((players == 2 && refused == 4, (players, refused)))
    })
    .await?;

    // An honest player from elsewhere drops and comes back to the same seat.
    let (friend, welcome) = server.join_from(21, "friend", RoomRequest::Quick).await?;
    drop(friend);
    eventually("the friend's seat to be held", Duration::from_secs(5), async || {
        let players = server.players().await?;
        Ok((players == 3, players))
    })
    .await?;
    let mut back =
        connect_from(&server.ws_url(), Some(loopback(21)), false).await.map_err(anyhow::Error::msg)?;
    let again = back
        .handshake_resuming("friend", RoomRequest::Join { code: welcome.room.clone() }, Some(welcome.resume))
        .await?;
    assert!(again.resumed && again.you == welcome.you, "the friend gets its own seat back: {again:?}");
    server.stop().await
}

#[tokio::test]
async fn clients_that_stop_reading_are_closed_within_the_idle_timeout_even_with_forged_pongs()
-> anyhow::Result<()> {
    // Idle timeout 3 s: a ping every second, two seconds to answer it.
    let server = TestServer::start(test_config().with(|c| c.limits.idle_timeout_secs = 3)).await?;
    let (mut reader, _) = server.player("reader").await?;
    let mut crowd = tokio::task::JoinSet::new();
    for n in 0..24 {
        let mut client = non_reader(&server, &format!("still{n}"), 4096).await?;
        if n % 2 == 0 {
            // Pongs sent ahead of any ping: the largest counter, and a guess.
            for payload in [u64::MAX, 1, 2] {
                client.send_raw(Message::Pong(Bytes::copy_from_slice(&payload.to_be_bytes()))).await?;
            }
        }
        // They keep sending inputs, so silence gives them away: only the
        // pings can.
        crowd.spawn(async move {
            for seq in 1.. {
                let input = ClientMsg::Input { seq, input: Input::stick(50, 0) };
                if client.send(&input).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let stopped = tokio::time::Instant::now();
    // The reader keeps reading (and so answering pings) meanwhile.
    let reading = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_secs(6);
        let mut frames = 0u32;
        while tokio::time::Instant::now() < until {
            match tokio::time::timeout(Duration::from_secs(1), reader.recv()).await {
                Ok(Ok(Incoming::Msg(ServerMsg::Frame(_)))) => frames += 1,
                Ok(Ok(Incoming::Msg(_))) | Err(_) => {}
                Ok(other) => return Err(anyhow::anyhow!("the reader was dropped: {other:?}")),
            }
        }
        Ok(frames)
    });
    // Bound: the idle timeout (3 s) plus the close frame's second; twice
    // that leaves room for a loaded CI machine.
    let closed = eventually("every non-reader to be closed", Duration::from_secs(8), async || {
        let kicked = server.kicks("too_slow").await?;
        Ok((kicked >= 24, kicked))
    })
    .await?;
    assert_eq!(closed, 24, "only the non-readers are closed");
    let took = stopped.elapsed();
    let frames = reading.await??;
    // 180 at the tick rate; a loaded machine skips some ticks, never all.
    assert!(frames >= 60, "the reader kept playing: {frames} frames in 6 s");
    assert_eq!(server.kicks("too_slow").await?, 24, "the reader was never closed");
    assert_eq!(server.kicks("idle").await?, 0, "the pings found them, not silence");
    assert_eq!(server.players().await?, 1, "the non-readers' seats are free (took {took:?})");
    crowd.abort_all();
    server.stop().await
}

/// Sends raw bytes as the first message and returns the rejection and close code.
async fn hello_bytes(server: &TestServer, bytes: Vec<u8>) -> anyhow::Result<(Rejection, Option<u16>)> {
    let mut client = server.client().await?;
    client.send_raw(Message::Binary(bytes.into())).await?;
    let rejection = recv_until(&mut client, |m| match m {
        ServerMsg::Rejected(r) => Some(r.clone()),
        _ => None,
    })
    .await?;
    let code = expect_close(&mut client).await?.map(|c| c.0);
    Ok((rejection, code))
}

#[tokio::test]
async fn an_old_or_new_hello_shape_hears_reload_and_a_long_name_hears_bad_name() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    // Protocol 2's Hello: version and name only.
    let old = bincode::serde::encode_to_vec((0u32, 2u16, "ada"), CONFIG)?;
    let (rejection, code) = hello_bytes(&server, old).await?;
    assert_eq!(rejection.reason, RejectReason::VersionMismatch { server: PROTOCOL_VERSION, client: 2 });
    assert!(rejection.message.contains("reload"), "{}", rejection.message);
    assert_eq!(code, Some(close::VERSION_MISMATCH));

    for name in ["n".repeat(80), "ñ".repeat(100)] {
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name,
            color: 0,
            room: RoomRequest::Quick,
            resume: None,
        };
        let (rejection, code) = hello_bytes(&server, encode_client(&hello)).await?;
        assert_eq!(rejection.reason, RejectReason::BadName, "an over-long name is a bad name");
        assert_eq!(code, Some(close::BAD_NAME));
    }
    server.stop().await
}

#[tokio::test]
async fn input_seqs_near_the_top_of_u32_wrap_instead_of_panicking() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let (mut client, _) = server.player("edge").await?;
    let inputs = vec![Input::stick(10, 0); 4];
    client.send(&ClientMsg::Inputs { seq: u32::MAX - 1, inputs }).await?;
    client.send(&ClientMsg::Input { seq: u32::MAX, input: Input::default() }).await?;
    // Still connected and sent frames afterwards.
    for _ in 0..5 {
        recv_until(&mut client, |m| matches!(m, ServerMsg::Frame(_)).then_some(())).await?;
    }
    assert_eq!(server.metric("arena_task_panics_total").await?, 0, "no connection task panicked");
    assert_eq!(server.players().await?, 1);
    server.stop().await
}
