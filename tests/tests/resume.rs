//! A player's seat outlives its socket: within `--resume-secs` a `Hello`
//! with the resume token gets back the same id, name and place; after it, or
//! with a forged token, a fresh player; a second socket takes the seat over.

use anyhow::Context;
use arena_bots::ws::WsClient;
use arena_bots::ws::connect_from;
use arena_server::ServerConfig;
use arena_shared::protocol::{ClientMsg, PlayerId, ResumeToken, RoomRequest, ServerMsg, Welcome, close};
use arena_shared::sim::Input;
use arena_tests::{Observer, TestServer, expect_close, recv_until, test_config};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn config(resume_secs: f64) -> ServerConfig {
    test_config().with(|c| c.game.resume_secs = resume_secs)
}

/// A player whose socket resets (no close frame) when dropped.
async fn fragile_player(
    server: &TestServer,
    name: &str,
    room: RoomRequest,
) -> anyhow::Result<(WsClient, Welcome)> {
    let mut client = connect_from(&server.ws_url(), None, true).await.map_err(anyhow::Error::msg)?;
    let welcome = client.handshake_in(name, room).await?;
    Ok((client, welcome))
}

async fn resume(server: &TestServer, code: &str, token: ResumeToken) -> anyhow::Result<(WsClient, Welcome)> {
    let mut client = server.client().await?;
    let room = RoomRequest::Join { code: code.to_owned() };
    let welcome = client.handshake_resuming("someone-else", room, Some(token)).await?;
    Ok((client, welcome))
}

#[tokio::test]
async fn a_dropped_player_comes_back_with_its_id_name_and_place() -> anyhow::Result<()> {
    let server = TestServer::start(config(5.0)).await?;
    let (mut ada, welcome) = fragile_player(&server, "ada", RoomRequest::CreatePrivate).await?;
    let code = welcome.room.clone();
    let mut observer = server.client().await?;
    observer.handshake_in("observer", RoomRequest::Join { code: code.clone() }).await?;
    let mut observer = Observer::new(observer);
    for seq in 1..=20 {
        ada.send(&ClientMsg::Input { seq, input: Input::stick(127, 0) }).await?;
    }
    // All 20 applied: ada has no more inputs.
    let applied = recv_until(&mut ada, |m| match m {
        ServerMsg::Frame(f) if f.ack_seq == 20 => Some(f.tick),
        _ => None,
    })
    .await?;
    // She slides on a little (a player with no inputs coasts): wait until
    // she has stood still for half a second.
    observer.position_of(welcome.you, applied).await?;
    let mut still = (None, 0);
    let before = observer
        .recv_until(|m, view| {
            let ServerMsg::Frame(_) = m else { return None };
            let at = view.position(welcome.you)?;
            still = if still.0 == Some(at) { (still.0, still.1 + 1) } else { (Some(at), 0) };
            (still.1 >= 15).then_some(at)
        })
        .await?;

    drop(ada);
    let away = observer
        .recv_until(|m, _| match m {
            ServerMsg::Away { id } => Some(*id),
            ServerMsg::Left { id } => Some(id.wrapping_add(10_000)),
            _ => None,
        })
        .await?;
    assert_eq!(away, welcome.you, "the others see ada as away, not gone");
    let held = observer.position_of(welcome.you, applied).await?;
    assert_eq!(held, before, "a held player does not move");

    let (mut back, again) = resume(&server, &code, welcome.resume).await?;
    assert!(again.resumed, "the token should give the seat back");
    assert_eq!((again.you, again.room.as_str()), (welcome.you, code.as_str()), "same id, same room");
    observer
        .recv_until(|m, _| match m {
            ServerMsg::Back { id } if *id == welcome.you => Some(()),
            ServerMsg::Joined(p) if p.id == welcome.you => Some(()),
            _ => None,
        })
        .await
        .context("the others hear ada is back")?;
    assert_eq!(observer.position_of(welcome.you, again.tick).await?, before, "in the same place");
    // Inputs count from 1 again on the new connection, and move the player.
    for seq in 1..=6 {
        back.send(&ClientMsg::Input { seq, input: Input::stick(0, 127) }).await?;
    }
    let ack = recv_until(&mut back, |m| match m {
        ServerMsg::Frame(f) if f.ack_seq >= 6 => Some(f.ack_seq),
        _ => None,
    })
    .await?;
    assert_eq!(ack, 6);
    server.stop().await
}

#[tokio::test]
async fn after_the_window_or_with_a_forged_token_a_fresh_player_joins() -> anyhow::Result<()> {
    let server = TestServer::start(config(0.3)).await?;
    let (ada, welcome) = fragile_player(&server, "ada", RoomRequest::CreatePrivate).await?;
    let mut keeper = server.client().await?;
    keeper.handshake_in("keeper", RoomRequest::Join { code: welcome.room.clone() }).await?;
    drop(ada);
    // The room tells everyone when the hold runs out.
    recv_until(&mut keeper, |m| matches!(m, ServerMsg::Left { id } if *id == welcome.you).then_some(()))
        .await?;
    let (_late, late) = resume(&server, &welcome.room, welcome.resume).await?;
    assert!(!late.resumed, "the hold ran out");
    assert_ne!(late.you, welcome.you, "a fresh player, not ada");

    let mut forged = welcome.resume;
    forged[0] ^= 1;
    let (_forger, fresh) = resume(&server, &welcome.room, forged).await?;
    assert!(!fresh.resumed && fresh.you != welcome.you, "a forged token never gets someone's seat");
    assert_eq!(fresh.players.iter().filter(|p| p.name == "someone-else").count(), 1, "it joins as itself");
    server.stop().await
}

#[tokio::test]
async fn a_second_socket_with_the_token_takes_over_and_closes_the_first() -> anyhow::Result<()> {
    let server = TestServer::start(config(5.0)).await?;
    let (mut first, welcome) = server.player("ada").await?;
    let (_second, again) = resume(&server, &welcome.room, welcome.resume).await?;
    assert!(again.resumed && again.you == welcome.you, "the second socket is ada");
    let (code, reason) = expect_close(&mut first).await?.expect("the first socket gets a close frame");
    assert_eq!(code, close::RESUMED_ELSEWHERE, "{reason}");
    assert!(reason.contains("elsewhere"), "{reason}");
    server.stop().await
}

#[tokio::test]
async fn a_goodbye_frees_the_seat_at_once() -> anyhow::Result<()> {
    let server = TestServer::start(config(5.0)).await?;
    let (mut ada, welcome) = server.player("ada").await?;
    let (mut bob, _) = server.player("bob").await?;
    ada.close().await;
    let left = recv_until(&mut bob, |m| match m {
        ServerMsg::Left { id } => Some(*id),
        ServerMsg::Away { .. } => Some(PlayerId::MAX),
        _ => None,
    })
    .await?;
    assert_eq!(left, welcome.you, "a clean goodbye is a leave, not a drop");
    let (_, fresh) = resume(&server, &welcome.room, welcome.resume).await?;
    assert!(!fresh.resumed, "nothing is held after a goodbye");
    server.stop().await
}

#[tokio::test]
async fn a_page_that_goes_away_keeps_its_seat_for_the_reload() -> anyhow::Result<()> {
    // A page being left or reloaded closes its socket without code 1000
    // (Chromium sends a close frame with no code; the spec says 1001).
    let server = TestServer::start(config(5.0)).await?;
    let (mut bob, _) = server.player("bob").await?;
    for frame in [None, Some(CloseFrame { code: CloseCode::Away, reason: "reload".into() })] {
        let (mut page, welcome) = server.player("ada").await?;
        page.send_raw(Message::Close(frame.clone())).await?;
        // The server echoes the page's close (RFC 6455 §5.5.1): its code, or none.
        let echoed = expect_close(&mut page).await?.map(|(code, _)| code);
        assert_eq!(echoed, frame.as_ref().map(|f| u16::from(f.code)), "the close is echoed as sent");
        let seen = recv_until(&mut bob, |m| match m {
            ServerMsg::Away { id } if *id == welcome.you => Some("away"),
            ServerMsg::Left { id } if *id == welcome.you => Some("left"),
            _ => None,
        })
        .await?;
        assert_eq!(seen, "away", "closing with {frame:?} holds the seat");
        let (_page, again) = resume(&server, &welcome.room, welcome.resume).await?;
        assert!(again.resumed && again.you == welcome.you, "the reloaded page is the same player");
    }
    server.stop().await
}

#[tokio::test]
async fn a_socket_that_just_ends_is_a_drop_not_a_protocol_error() -> anyhow::Result<()> {
    // TCP closed without a close frame: the seat is held, nothing is counted as bad bytes.
    let server = TestServer::start(config(5.0)).await?;
    let (mut bob, _) = server.player("bob").await?;
    let (page, welcome) = server.player("ada").await?;
    drop(page);
    let seen = recv_until(&mut bob, |m| match m {
        ServerMsg::Away { id } if *id == welcome.you => Some("away"),
        ServerMsg::Left { id } if *id == welcome.you => Some("left"),
        _ => None,
    })
    .await?;
    assert_eq!(seen, "away");
    assert_eq!(server.kicks("protocol").await?, 0, "an ended socket is not a protocol error");
    server.stop().await
}
