//! Many rooms in one process, over real sockets: private rooms by code,
//! quick-join, rooms closing when empty, caps, and the bots' room plans.

use std::collections::BTreeSet;
use std::time::Duration;

use arena_bots::ws::{ClientError, WsClient};
use arena_bots::{Behaviour, Live, Report, RoomPlan, run_swarm};
use arena_shared::protocol::{PlayerId, RejectReason, RoomRequest, ServerMsg, Welcome, close};
use arena_tests::{TestServer, eventually, expect_close, http_get, recv_until, swarm, test_config};

async fn join(
    server: &TestServer,
    name: &str,
    room: RoomRequest,
) -> Result<(WsClient, Welcome), ClientError> {
    let mut client = server.client().await.map_err(|e| ClientError::Connect(e.to_string()))?;
    let welcome = client.handshake_in(name, room).await?;
    Ok((client, welcome))
}

/// The ids in the next frames, over about half a second.
async fn seen_ids(client: &mut WsClient) -> anyhow::Result<BTreeSet<PlayerId>> {
    let mut seen = BTreeSet::new();
    for _ in 0..15 {
        let ids = recv_until(client, |m| match m {
            // Ids travel as gaps from the one before.
            ServerMsg::Frame(f) => Some(
                f.others
                    .iter()
                    .scan(0u16, |id, update| {
                        *id += update.id_gap;
                        Some(*id)
                    })
                    .chain([f.you.id])
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .await?;
        seen.extend(ids);
    }
    Ok(seen)
}

#[tokio::test]
async fn private_rooms_do_not_see_each_others_players() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let (mut ada, in_a) = join(&server, "ada", RoomRequest::CreatePrivate).await?;
    let (mut bob, in_b) = join(&server, "bob", RoomRequest::CreatePrivate).await?;
    assert!(in_a.private && in_b.private, "created rooms are private");
    assert_ne!(in_a.room, in_b.room, "each creation opens its own room");
    assert_eq!(in_a.room.len(), 10, "codes are short: {}", in_a.room);
    let (_cy, cy_in_a) = join(&server, "cy", RoomRequest::Join { code: in_a.room.clone() }).await?;
    assert_eq!(cy_in_a.room, in_a.room);
    assert_eq!(cy_in_a.players.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["ada"]);

    let a_sees = seen_ids(&mut ada).await?;
    let b_sees = seen_ids(&mut bob).await?;
    assert!(a_sees.contains(&cy_in_a.you), "ada should see cy, who joined her room by code");
    assert_eq!(b_sees, BTreeSet::from([in_b.you]), "bob's room holds bob alone");
    assert_eq!(a_sees.len(), 2, "ada's room holds ada and cy: {a_sees:?}");

    let listed = http_get(server.addr, "/api/rooms", &[]).await?;
    assert_eq!(String::from_utf8_lossy(&listed.body), "[]", "private rooms are not listed");
    server.stop().await
}

#[tokio::test]
async fn quick_join_fills_the_fullest_public_room_then_opens_another() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.game.max_players = 2)).await?;
    let (_p1, w1) = join(&server, "p1", RoomRequest::Quick).await?;
    let (_p2, w2) = join(&server, "p2", RoomRequest::Quick).await?;
    let (_p3, w3) = join(&server, "p3", RoomRequest::Quick).await?;
    assert!(!w1.private, "quick-join rooms are public");
    assert_eq!(w1.room, w2.room, "the second player fills the first room");
    assert_ne!(w3.room, w1.room, "the third opens a new room");

    let listed = http_get(server.addr, "/api/rooms", &[]).await?;
    let rooms: serde_json::Value = serde_json::from_slice(&listed.body)?;
    assert_eq!(rooms[0]["code"], w1.room.as_str(), "fullest first: {rooms}");
    assert_eq!(rooms[0]["players"], 2);
    assert_eq!(rooms[1]["players"], 1);
    assert_eq!(rooms[0]["room_size"], 2);

    let health = http_get(server.addr, "/healthz", &[]).await?;
    let health: serde_json::Value = serde_json::from_slice(&health.body)?;
    assert_eq!(health["players"], 3, "players in every room: {health}");
    assert_eq!(health["rooms"], 2, "{health}");
    let room_line = format!("arena_room_players{{room=\"{}\"}}", w1.room);
    assert_eq!(server.operator_metric(&room_line).await?, 2, "per-room players for operators");
    assert!(server.metric("arena_tick_micros_count").await? > 0, "the tick histogram counts ticks");
    server.stop().await
}

#[tokio::test]
async fn an_empty_room_closes_and_its_code_is_then_refused() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.game.room_idle_secs = 0.5)).await?;
    let (mut host, welcome) = join(&server, "host", RoomRequest::CreatePrivate).await?;
    host.close().await;
    eventually("the empty room to close", Duration::from_secs(3), async || {
        let rooms = server.metric("arena_rooms").await?;
        Ok((rooms == 0, rooms))
    })
    .await?;
    for code in [welcome.room.as_str(), "nosuchroom"] {
        let mut late = server.client().await?;
        match late.handshake_in("late", RoomRequest::Join { code: code.into() }).await {
            Err(ClientError::Rejected(r)) => {
                assert_eq!(r.reason, RejectReason::RoomNotFound);
                assert!(r.message.contains("does not exist"), "should say so: {}", r.message);
            }
            other => panic!("joining {code} should be refused, got {other:?}"),
        }
        assert_eq!(expect_close(&mut late).await?.map(|c| c.0), Some(close::ROOM_NOT_FOUND));
    }
    server.stop().await
}

#[tokio::test]
async fn past_max_rooms_a_new_room_is_refused_with_the_reason() -> anyhow::Result<()> {
    // Four rooms: three may be private, one stays for quick-join.
    let config = test_config().with(|c| {
        c.game.max_rooms = 4;
        c.game.max_players = 1;
    });
    let server = TestServer::start(config).await?;
    let _a = join(&server, "a", RoomRequest::CreatePrivate).await?;
    let _b = join(&server, "b", RoomRequest::CreatePrivate).await?;
    let _c = join(&server, "c", RoomRequest::CreatePrivate).await?;
    match join(&server, "d", RoomRequest::CreatePrivate).await {
        Err(ClientError::Rejected(r)) => {
            assert_eq!(r.reason, RejectReason::RoomsFull { max_rooms: 3 });
            assert!(r.message.contains("server is full"), "{}", r.message);
        }
        other => panic!("a fourth private room should be refused, got {:?}", other.map(|(_, w)| w)),
    }
    let (_e, public) = join(&server, "e", RoomRequest::Quick).await?;
    assert!(!public.private, "quick-join still opens the room kept for public play");
    match join(&server, "f", RoomRequest::Quick).await {
        Err(ClientError::Rejected(r)) => assert_eq!(r.reason, RejectReason::RoomsFull { max_rooms: 4 }),
        other => panic!("a fifth room should be refused, got {:?}", other.map(|(_, w)| w)),
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_spread_over_rooms_or_join_one_by_code() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut spread = swarm(&server, 9, 2.0, Behaviour::Wander);
    spread.rooms = RoomPlan::Spread(3);
    let records = run_swarm(spread.clone(), Live::default().into()).await;
    let report = Report::from_records(&records, &spread);
    assert_eq!((report.connected, report.rooms), (9, 3), "9 bots in 3 rooms: {report:?}");
    assert!(records.iter().all(|r| r.max_players_seen == 3), "3 bots a room");

    let (_host, welcome) = join(&server, "host", RoomRequest::CreatePrivate).await?;
    let mut guests = swarm(&server, 4, 2.0, Behaviour::Wander);
    guests.rooms = RoomPlan::Join(welcome.room.clone());
    let records = run_swarm(guests.clone(), Live::default().into()).await;
    assert!(
        records.iter().all(|r| r.room.as_deref() == Some(welcome.room.as_str())),
        "all in the host's room"
    );
    assert!(records.iter().all(|r| r.max_players_seen == 5), "the host and 4 bots");
    server.stop().await
}

#[tokio::test]
async fn an_invite_link_and_a_replay_link_serve_the_page() -> anyhow::Result<()> {
    let web = tempfile::tempdir()?;
    std::fs::write(web.path().join("index.html"), "<!doctype html><title>arena</title>")?;
    let config = test_config().with(|c| c.net.web_dir = Some(web.path().to_path_buf()));
    let server = TestServer::start(config).await?;
    for link in ["/r/k3x9q2m7pd", "/replay/0123456789abcdef0123456789abcdef"] {
        let page = http_get(server.addr, link, &[]).await?;
        assert_eq!(page.status, 200, "{link} is the page");
        assert!(String::from_utf8_lossy(&page.body).contains("<title>arena</title>"));
        assert_eq!(page.header("cache-control"), Some("no-cache"));
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_joiners_arriving_together_share_one_new_room() -> anyhow::Result<()> {
    // Regression: the second of two simultaneous quick-joiners used to find
    // no room, try to open one past --max-rooms 1, and be refused.
    let server = TestServer::start(test_config().with(|c| {
        c.game.max_players = 8;
        c.game.max_rooms = 1;
    }))
    .await?;
    let (_clients, rooms) = arena_tests::racing_quick_joins(&server, 8).await?;
    assert_eq!(rooms.len(), 1, "all eight should share the one room: {rooms:?}");
    server.stop().await
}

#[tokio::test]
async fn a_crowd_of_quick_joiners_arriving_at_once_is_seated_and_nobody_is_told_the_server_is_full()
-> anyhow::Result<()> {
    // Regression (attack.sh section 11, 160 players at once in rooms of
    // 32): every joiner of a crowd picked the same room with space, the
    // room seated what fit and refused the rest as full, and after four
    // such tries some were told "the server is full" while rooms could
    // still be opened.
    let server = TestServer::start(test_config().with(|c| {
        c.game.max_players = 4;
        c.game.max_rooms = 64;
    }))
    .await?;
    // Every socket is open first; then every Hello goes at once.
    let mut clients = Vec::new();
    for _ in 0..120 {
        clients.push(server.client().await?);
    }
    let joins = clients.into_iter().enumerate().map(|(i, mut client)| {
        tokio::spawn(async move {
            let welcome = client.handshake(&format!("crowd-{i}")).await?;
            Ok::<_, ClientError>((client, welcome.room))
        })
    });
    let joins: Vec<_> = joins.collect();
    let mut rooms = BTreeSet::new();
    let mut seated = Vec::new();
    for join in joins {
        let (client, room) = join.await??;
        rooms.insert(room);
        seated.push(client);
    }
    assert_eq!(rooms.len(), 30, "the crowd fills rooms of four: {rooms:?}");
    server.stop().await
}

#[tokio::test]
async fn watchers_see_frames_take_no_seat_are_counted_and_capped() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.game.max_watchers = 2)).await?;
    let (mut ada, seated) = join(&server, "ada", RoomRequest::Quick).await?;
    let (_bob, bob_in) = join(&server, "bob", RoomRequest::Join { code: seated.room.clone() }).await?;
    let watch = || RoomRequest::Watch { code: seated.room.clone() };
    let (mut eve, watching) = join(&server, "eve", watch()).await?;
    assert!(watching.watching, "the Welcome says it watches");
    assert_eq!((watching.you, watching.watchers, watching.players.len()), (0, 1, 2));
    let (_zed, _) = join(&server, "zed", watch()).await?;
    // Both players hear how many watch; the players' count does not move.
    recv_until(&mut ada, |m| matches!(m, ServerMsg::Watchers { count: 2 }).then_some(())).await?;
    assert_eq!(server.players().await?, 2, "a watcher is no player");
    let listed = http_get(server.addr, "/api/rooms", &[]).await?;
    let rooms: serde_json::Value = serde_json::from_slice(&listed.body)?;
    assert_eq!((rooms[0]["players"].as_u64(), rooms[0]["watchers"].as_u64()), (Some(2), Some(2)));

    // The watcher sees the room through the leader (ada, longest here), then
    // through whom it asks for.
    let first = recv_until(&mut eve, |m| if let ServerMsg::Frame(f) = m { Some(f.clone()) } else { None });
    let first = first.await?;
    assert_eq!((first.you.id, first.baseline_age), (seated.you, 0), "a full view around ada");
    let others: Vec<PlayerId> = first.others.iter().map(|u| u.id_gap).collect();
    assert_eq!(others, [bob_in.you], "bob is in her view");
    eve.send(&arena_shared::protocol::ClientMsg::Follow { id: bob_in.you }).await?;
    eventually("the watcher follows bob", Duration::from_secs(5), async || {
        let you = recv_until(&mut eve, |m| if let ServerMsg::Frame(f) = m { Some(f.you.id) } else { None });
        let you = you.await?;
        Ok((you == bob_in.you, you))
    })
    .await?;

    // The cap: a third is refused with a reason, and the close code.
    let mut third = server.client().await?;
    match third.handshake_in("cy", watch()).await {
        Err(ClientError::Rejected(r)) => assert_eq!(r.reason, RejectReason::WatchersFull { max: 2 }),
        other => panic!("a third watcher should be refused: {other:?}"),
    }
    assert_eq!(expect_close(&mut third).await?.map(|(code, _)| code), Some(close::SERVER_FULL));

    // Inputs from a watcher close it; its place is free again.
    eve.send(&arena_shared::protocol::ClientMsg::Input { seq: 1, input: Default::default() }).await?;
    assert_eq!(expect_close(&mut eve).await?.map(|(code, _)| code), Some(close::PROTOCOL_ERROR));
    // (Ada has read up to the count of 2 already.)
    recv_until(&mut ada, |m| matches!(m, ServerMsg::Watchers { count: 1 }).then_some(())).await?;
    let (_again, welcome) = join(&server, "eve", watch()).await?;
    assert!(welcome.watching);
    server.stop().await
}

#[tokio::test]
async fn fill_bots_play_in_a_public_room_and_leave_as_people_come() -> anyhow::Result<()> {
    let server = TestServer::start(test_config().with(|c| c.game.fill_bots = 3)).await?;
    let (mut ada, seated) = join(&server, "ada", RoomRequest::Quick).await?;
    let mut bots = BTreeSet::new();
    while bots.len() < 2 {
        let bot = recv_until(&mut ada, |m| match m {
            ServerMsg::Joined(info) if info.bot => Some(info.id),
            _ => None,
        });
        bots.insert(bot.await?);
    }
    assert!(seen_ids(&mut ada).await?.is_superset(&bots), "the bots move about in ada's view");
    assert_eq!(server.players().await?, 1, "bots are not players");
    let listed: serde_json::Value =
        serde_json::from_slice(&http_get(server.addr, "/api/rooms", &[]).await?.body)?;
    assert_eq!(listed[0]["players"].as_u64(), Some(1));

    // Bob comes: one bot goes; his Welcome shows the other as a bot.
    let (_bob, bob_in) = join(&server, "bob", RoomRequest::Join { code: seated.room.clone() }).await?;
    let marked: Vec<_> = bob_in.players.iter().filter(|p| p.bot).map(|p| p.id).collect();
    assert!(!marked.is_empty() && marked.iter().all(|id| bots.contains(id)), "{marked:?}");
    let gone = recv_until(&mut ada, |m| match m {
        ServerMsg::Left { id } => Some(*id),
        _ => None,
    });
    assert!(bots.contains(&gone.await?), "a bot gave way");
    server.stop().await
}
