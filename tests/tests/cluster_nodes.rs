//! A cluster of real `arena-server` processes on one real `redis-server`:
//! invite links through any node, a crash (`kill -9`), a freeze past the
//! lease (`SIGSTOP`) and a short stall, a drain (`SIGTERM`), a rolling restart of every node
//! and quick-joins across nodes, with real bots that follow
//! `Moved` and resume with their tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arena_bots::ws::{ClientError, Incoming, WsClient};
use arena_bots::{Behaviour, BotRecord, Live, Outcome, RoomPlan, SwarmConfig, run_swarm};
use arena_client_core::session::{ClientSession, JoinRequest, websocket_url};
use arena_server::cluster::lease::{LeaseStore, Leases};
use arena_server::cluster::listing::Listings;
use arena_server::cluster::redis::Redis;
use arena_server::config::RedisSource;
use arena_shared::protocol::{ClientMsg, Moved, RoomRequest, ServerMsg, close};
use arena_shared::sim::Input;
use arena_tests::node::{Node, knowing_each_other};
use arena_tests::redis::RedisServer;

/// The node binary cargo built for these tests.
const NODE: &str = env!("CARGO_BIN_EXE_arena-node");

/// A short lease and frequent saves, so the drills take seconds.
const NODE_ARGS: &[&str] = &["--lease-ms", "1000", "--checkpoint-ms", "200", "--drain-secs", "10"];

/// Joins at `url` as `join` asks, without following a `Moved`.
async fn hello(url: &str, join: JoinRequest) -> Result<(WsClient, ClientSession), ClientError> {
    let mut client = WsClient::connect(url).await?;
    let mut session = ClientSession::new(join, 1.0);
    client.join(&mut session, || 0.0).await?;
    Ok((client, session))
}

fn create_private(name: &str) -> JoinRequest {
    JoinRequest { name: name.into(), color: 1, room: RoomRequest::CreatePrivate, resume: None }
}

fn join_code(name: &str, code: &str) -> JoinRequest {
    JoinRequest { name: name.into(), color: 2, room: RoomRequest::Join { code: code.into() }, resume: None }
}

/// A public counter from `node`'s `/metrics`.
async fn metric(node: &Node, name: &str) -> anyhow::Result<u64> {
    let response = arena_tests::http_get(node.addr(), "/metrics", &[]).await?;
    let text = String::from_utf8(response.body)?;
    let line = text.lines().find(|line| line.split_whitespace().next() == Some(name));
    Ok(line.and_then(|line| line.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0))
}

fn bots(url: String, count: usize, secs: u64, rooms: RoomPlan) -> SwarmConfig {
    SwarmConfig {
        url,
        count,
        duration: Duration::from_secs(secs),
        behaviour: Behaviour::Brawler,
        name_prefix: "bot-".into(),
        tls: None,
        rooms,
        conditions: Default::default(),
        reconnect: Some(Duration::from_secs(10)),
        light: false,
    }
}

/// Fails with every node's log when `ok` is false.
fn check(ok: bool, what: &str, nodes: &[&Node]) {
    if !ok {
        for node in nodes {
            eprintln!("--- node {} ---\n{}", node.port, node.log());
        }
        panic!("{what}");
    }
}

fn summary(records: &[BotRecord]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "bot {} {:?}: reconnects {}, gap {:.0} ms, players lost {}, points lost {}, ticks taken back {}",
                r.index,
                r.outcome,
                r.reconnects,
                r.worst_gap_ms,
                r.players_lost,
                r.points_lost,
                r.ticks_taken_back
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn an_invite_link_on_any_node_leads_to_the_node_that_runs_the_room() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    let b = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    knowing_each_other(&[&a, &b]).await?;
    let (_host, host) = hello(&b.ws_url(), create_private("host")).await?;
    let code = host.room().expect("welcomed").code().to_owned();

    // The link opened on node A: a typed Moved naming B, then close 4009.
    let mut client = WsClient::connect(&a.ws_url()).await?;
    client.send(&join_code("guest", &code).hello()).await?;
    let moved = Moved { url: b.url(), room: code.clone() };
    assert_eq!(client.recv().await?, Incoming::Msg(ServerMsg::Moved(moved.clone())));
    let closed = arena_tests::expect_close(&mut client).await?;
    assert_eq!(closed.map(|(code, _)| code), Some(close::MOVED));

    // Followed, the same Hello seats the guest beside the host.
    let there = websocket_url(&moved.url).expect("a node URL");
    let (_guest, guest) = hello(&there, join_code("guest", &code)).await?;
    let room = guest.room().expect("welcomed on B");
    assert_eq!(room.code(), code);
    assert!(room.roster().values().any(|member| member.name == "host"), "the host is there");

    // A private room is listed nowhere; a wrong code is still a miss.
    for node in [&a, &b] {
        let rooms = arena_tests::http_get(node.addr(), "/api/rooms", &[]).await?;
        assert!(!String::from_utf8_lossy(&rooms.body).contains(&code), "private codes stay private");
    }
    let missing = hello(&a.ws_url(), join_code("lost", "zzzzzzzzzz")).await;
    assert!(matches!(missing, Err(ClientError::Rejected(_))), "{:?}", missing.err());
    Ok(())
}

/// Six bots in a private room on node B, come in through A (or B itself,
/// when `through_b`); B is killed 4 s in and never comes back. Checks that
/// every bot kept its player and every point, came back within seconds to
/// no tick older than the newest it had seen (A re-ran B's input log past
/// its last checkpoint), and that A restored the room once.
async fn kill_the_rooms_node(through_b: bool) -> anyhow::Result<()> {
    // One checkpoint, as the room opens: everything after it is in the log
    // alone (without the log, the room would come back seconds behind).
    const ONE_CHECKPOINT: &[&str] = &["--lease-ms", "1000", "--checkpoint-ms", "600000"];
    let redis = RedisServer::start().await?;
    let a = Node::start(NODE, &redis.url(), ONE_CHECKPOINT).await?;
    let mut b = Node::start(NODE, &redis.url(), ONE_CHECKPOINT).await?;
    knowing_each_other(&[&a, &b]).await?;
    let (_host, host) = hello(&b.ws_url(), create_private("host")).await?;
    let code = host.room().expect("welcomed").code().to_owned();
    let start = if through_b { b.ws_url() } else { a.ws_url() };
    let swarm = tokio::spawn(run_swarm(bots(start, 6, 12, RoomPlan::Join(code)), Arc::new(Live::default())));
    tokio::time::sleep(Duration::from_secs(4)).await;
    b.kill().await?;
    let records = swarm.await?;
    let report = summary(&records);
    eprintln!("{report}");
    let restored = metric(&a, "arena_restores_total").await?;
    check(restored == 1, &format!("A restored the room once, not {restored}"), &[&a, &b]);
    let rerun = metric(&a, "arena_log_rerun_ticks_total").await?;
    check(rerun > 0, "A re-ran B's input log past the checkpoint", &[&a]);
    for record in &records {
        let ok = record.outcome == Outcome::Completed && record.players_lost == 0 && record.reconnects >= 1;
        check(ok, &format!("every bot kept its player:\n{report}"), &[&a]);
        let kept = record.points_lost == 0 && record.ticks_taken_back == 0;
        check(kept, &format!("nothing a player saw was taken back:\n{report}"), &[&a]);
        // Lease (1 s) + 2 s is the target; a loaded 2-core machine gets slack.
        check(
            record.worst_gap_ms < 6_000.0,
            &format!("back within the lease and a few seconds:\n{report}"),
            &[&a],
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_killed_owners_room_comes_back_on_another_node_with_its_players() -> anyhow::Result<()> {
    // The bots come in through A and are sent to B.
    kill_the_rooms_node(false).await
}

#[tokio::test]
async fn bots_whose_node_died_for_good_find_their_room_on_another_node() -> anyhow::Result<()> {
    // The bots start at B, which runs their room, and B never comes back:
    // they must try A (which they know from B's /api/cluster).
    kill_the_rooms_node(true).await
}

#[tokio::test]
async fn a_drained_node_hands_its_rooms_over_and_no_player_or_point_is_lost() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let mut a = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    let b = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    let c = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    knowing_each_other(&[&a, &b, &c]).await?;
    // Two private rooms on A, five bots each.
    let swarm =
        tokio::spawn(run_swarm(bots(a.ws_url(), 10, 8, RoomPlan::Spread(2)), Arc::new(Live::default())));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let exit = a.terminate(Duration::from_secs(15)).await?;
    check(exit == Some(0), &format!("a drained node exits 0, not {exit:?}"), &[&a, &b, &c]);
    let records = swarm.await?;
    let report = summary(&records);
    eprintln!("{report}");
    let handed =
        metric(&b, "arena_handovers_in_total").await? + metric(&c, "arena_handovers_in_total").await?;
    check(handed == 2, &format!("both rooms were handed over, not {handed}"), &[&a, &b, &c]);
    for record in &records {
        let kept =
            record.outcome == Outcome::Completed && record.players_lost == 0 && record.points_lost == 0;
        check(
            kept && record.reconnects == 1,
            &format!("every player and point kept:\n{report}"),
            &[&a, &b, &c],
        );
        check(record.worst_gap_ms < 3_000.0, &format!("a short gap (target 1 s):\n{report}"), &[&a, &b, &c]);
    }
    Ok(())
}

#[tokio::test]
async fn a_frozen_owner_stops_its_room_once_another_node_runs_it() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    let b = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    knowing_each_other(&[&a, &b]).await?;
    let (mut watcher, mut session) = hello(&a.ws_url(), create_private("watcher")).await?;
    let code = session.room().expect("welcomed").code().to_owned();
    let newest_frame = async |client: &mut WsClient, session: &mut ClientSession, for_ms: u64| {
        let mut newest = None;
        let mut frames = 0;
        let until = tokio::time::Instant::now() + Duration::from_millis(for_ms);
        let mut last = None;
        while let Ok(Ok(incoming)) = tokio::time::timeout_at(until, client.recv()).await {
            match incoming {
                Incoming::Msg(ServerMsg::Frame(frame)) => {
                    newest = Some(frame.tick);
                    frames += 1;
                    session.handle(ServerMsg::Frame(frame), 0.0).expect("in order");
                }
                Incoming::Msg(other) => last = Some(other),
                Incoming::Closed(frame) => return (newest, frames, last, frame),
            }
        }
        (newest, frames, last, None)
    };
    // Saved a few times, then frozen; what was on the way arrives.
    let (before, _, _, _) = newest_frame(&mut watcher, &mut session, 1_000).await;
    a.freeze()?;
    let (in_flight, _, _, _) = newest_frame(&mut watcher, &mut session, 300).await;
    let stopped_at = in_flight.or(before).expect("frames came before the freeze");
    // B restores the room after the lease; the player takes its seat there.
    let restored = arena_tests::eventually("B restored the room", Duration::from_secs(10), async || {
        let restores = metric(&b, "arena_restores_total").await?;
        Ok((restores == 1, restores))
    })
    .await;
    check(restored.is_ok(), "B restores the frozen node's room", &[&b]);
    let (_back, back) = hello(&b.ws_url(), session.rejoin()).await?;
    assert_eq!(back.room().map(|room| room.you()), session.room().map(|room| room.you()), "the same player");
    // Thawed, A must not run the room again: at most the frame its writer
    // held, then the players are sent to B.
    a.thaw()?;
    let (after, frames, last, closed) = newest_frame(&mut watcher, &mut session, 3_000).await;
    check(
        frames <= 1 && after.is_none_or(|tick| tick <= stopped_at + 2),
        &format!("A sent {frames} frames after thawing (newest {after:?}, stopped at {stopped_at})"),
        &[&a, &b],
    );
    assert_eq!(last, Some(ServerMsg::Moved(Moved { url: b.url(), room: code })));
    assert_eq!(closed.map(|(code, _)| code), Some(close::MOVED));
    Ok(())
}

fn quick(name: &str) -> JoinRequest {
    JoinRequest { name: name.into(), color: 3, room: RoomRequest::Quick, resume: None }
}

/// Quick-joins at `url`, following one `Moved`: the session and whether it
/// was sent on.
async fn quick_join(url: &str, name: &str) -> anyhow::Result<(WsClient, ClientSession, bool)> {
    match hello(url, quick(name)).await {
        Ok((client, session)) => Ok((client, session, false)),
        Err(ClientError::Moved(moved)) => {
            let there = websocket_url(&moved.url).expect("a node URL");
            // No room named: quick-join there (a new room on a quieter node).
            let join = if moved.room.is_empty() { quick(name) } else { join_code(name, &moved.room) };
            let (client, session) = hello(&there, join).await?;
            Ok((client, session, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// The cluster's listing of public rooms, as Redis holds it: code → players.
async fn listed(redis: &RedisServer) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let listings = Listings(redis.connect(Duration::from_secs(2)).await?);
    Ok(listings.read().await?.into_iter().map(|room| (room.code, room.players)).collect())
}

#[tokio::test]
async fn quick_join_fills_rooms_across_nodes_and_racing_joins_never_overfill_one() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let args = [NODE_ARGS, &["--room-size", "4"]].concat();
    let a = Node::start(NODE, &redis.url(), &args).await?;
    let b = Node::start(NODE, &redis.url(), &args).await?;
    let c = Node::start(NODE, &redis.url(), &args).await?;
    let nodes = [&a, &b, &c];
    knowing_each_other(&nodes).await?;
    // Two players quick-join on A: one public room there, listed cluster-wide.
    let mut seated = Vec::new();
    for name in ["a0", "a1"] {
        let (client, session, moved) = quick_join(&a.ws_url(), name).await?;
        assert!(!moved, "the first public room opens where its player asked");
        seated.push((client, session));
    }
    let code = seated[0].1.room().expect("welcomed").code().to_owned();
    assert_eq!(seated[1].1.room().map(|room| room.code().to_owned()), Some(code.clone()), "one room on A");
    let listed_twice =
        arena_tests::eventually("A's room listed with 2", Duration::from_secs(5), async || {
            let rooms = listed(&redis).await?;
            Ok((rooms.get(&code) == Some(&2), rooms))
        })
        .await;
    check(listed_twice.is_ok(), "A's public room is listed for the cluster", &nodes);

    // Every node lists it, with its players, and nothing private.
    for node in nodes {
        let rooms: serde_json::Value =
            serde_json::from_slice(&arena_tests::http_get(node.addr(), "/api/rooms", &[]).await?.body)?;
        let expected = serde_json::json!([{ "code": code, "players": 2, "watchers": 0, "room_size": 4 }]);
        check(rooms == expected, &format!("node {} lists {rooms}, not {expected}", node.port), &nodes);
    }

    // A quick-join on B goes to A's room, not to a new room on B.
    let (client, session, moved) = quick_join(&b.ws_url(), "b0").await?;
    check(moved, "B sent its quick-joiner to the fuller room on A", &nodes);
    assert_eq!(session.room().map(|room| room.code().to_owned()), Some(code.clone()));
    seated.push((client, session));

    // One seat left (once b0's reservation, counted until the listing has
    // surely caught up, has run out): racing quick-joins on B and C take it
    // once between them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    arena_tests::eventually("A's room listed with 3", Duration::from_secs(5), async || {
        let rooms = listed(&redis).await?;
        Ok((rooms.get(&code) == Some(&3), rooms))
    })
    .await?;
    let (b_url, c_url) = (b.ws_url(), c.ws_url());
    let (on_b, on_c) = tokio::join!(quick_join(&b_url, "b1"), quick_join(&c_url, "c1"));
    let racers = [on_b?, on_c?];
    let sent = racers.iter().filter(|(_, _, moved)| *moved).count();
    check(sent == 1, &format!("exactly one racer was sent to A's room, not {sent}"), &nodes);
    for (_, session, moved) in &racers {
        let room = session.room().expect("every racer has a seat");
        assert_eq!(room.code() == code, *moved, "the one sent on is in A's room, the other in a new one");
        assert!(room.roster().len() <= 4, "no room over its size: {}", room.roster().len());
    }
    // The full room is no quick-join's target any more.
    let (_, late, _) = quick_join(&a.ws_url(), "late").await?;
    assert_ne!(
        late.room().map(|room| room.code().to_owned()),
        Some(code.clone()),
        "the full room is passed over"
    );
    Ok(())
}

#[tokio::test]
async fn a_quick_join_with_no_room_to_fill_opens_one_on_the_quietest_node() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let args = [NODE_ARGS, &["--room-size", "2"]].concat();
    let a = Node::start(NODE, &redis.url(), &args).await?;
    let b = Node::start(NODE, &redis.url(), &args).await?;
    knowing_each_other(&[&a, &b]).await?;
    let (_first, first, _) = quick_join(&a.ws_url(), "a0").await?;
    let (_second, _, _) = quick_join(&a.ws_url(), "a1").await?;
    // A carries a full room; B carries nobody (as its heartbeat says).
    arena_tests::eventually("A's players in the registry", Duration::from_secs(5), async || {
        let response = arena_tests::http_get(b.addr(), "/api/cluster", &[]).await?;
        let body: serde_json::Value = serde_json::from_slice(&response.body)?;
        let players: u64 =
            body["nodes"].as_array().into_iter().flatten().filter_map(|n| n["players"].as_u64()).sum();
        Ok((players == 2, players))
    })
    .await?;
    let (_third, third, moved) = quick_join(&a.ws_url(), "a2").await?;
    check(moved, "A sent the third quick-joiner to the quieter B", &[&a, &b]);
    let here = third.room().expect("seated");
    assert_ne!(Some(here.code()), first.room().map(|room| room.code()), "a new room, on B");
    assert_eq!(here.roster().len(), 1);
    // B does not send its own quick-joiners back: A carries more.
    let (_fourth, fourth, moved) = quick_join(&b.ws_url(), "b0").await?;
    assert!(!moved, "B keeps its quick-joiner");
    assert_eq!(fourth.room().map(|room| room.code()), Some(here.code()), "into the room B opened");
    Ok(())
}

#[tokio::test]
async fn a_rolling_restart_of_every_node_keeps_every_player_and_point() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Node::start(NODE, &redis.url(), NODE_ARGS).await?);
    }
    knowing_each_other(&nodes.iter().collect::<Vec<_>>()).await?;
    // 60 bots in six private rooms of ten, two rooms opened on each node.
    let swarms: Vec<_> = nodes
        .iter()
        .map(|node| {
            let plan = bots(node.ws_url(), 20, 24, RoomPlan::Spread(2));
            tokio::spawn(run_swarm(plan, Arc::new(Live::default())))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A deploy: each node in turn drains, stops and comes back on its port.
    for i in 0..nodes.len() {
        let exit = nodes[i].terminate(Duration::from_secs(15)).await?;
        check(
            exit == Some(0),
            &format!("node {i} drained and exited 0, not {exit:?}"),
            &nodes.iter().collect::<Vec<_>>(),
        );
        nodes[i].restart().await?;
        knowing_each_other(&nodes.iter().collect::<Vec<_>>()).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut records = Vec::new();
    for swarm in swarms {
        records.extend(swarm.await?);
    }
    let report = summary(&records);
    eprintln!("{report}");
    let all: Vec<&Node> = nodes.iter().collect();
    check(records.len() == 60, "60 bots", &all);
    for record in &records {
        let kept =
            record.outcome == Outcome::Completed && record.players_lost == 0 && record.points_lost == 0;
        check(kept, &format!("every player and point kept:\n{report}"), &all);
        check(record.worst_gap_ms < 3_000.0, &format!("short gaps (target 1 s):\n{report}"), &all);
    }
    let moved = records.iter().filter(|record| record.reconnects > 0).count();
    check(moved == 60, &format!("every bot's room moved at least once, not {moved}"), &all);
    Ok(())
}

#[tokio::test]
async fn a_node_uses_a_redis_over_tls_with_a_password_given_its_ca_and_is_refused_without()
-> anyhow::Result<()> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    let redis = RedisServer::start_tls(&cert, &key, "s3cret-pass").await?;
    let url = |password: &str| format!("rediss://:{password}@localhost:{}", redis.port);
    let connect = |url: String, ca: Option<std::path::PathBuf>| async move {
        Redis::connect(&RedisSource::Url { url, ca }, Duration::from_secs(2), 0).await
    };

    let leases = Leases(connect(url("s3cret-pass"), Some(cert.clone())).await?);
    assert!(leases.claim("room", "a", Duration::from_secs(5)).await?.is_some(), "a lease over TLS");
    let refused = connect(url("s3cret-pass"), None).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("certificate"), "the system's roots do not know this CA: {refused}");
    let refused =
        connect(url("wrong"), Some(cert.clone())).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("Password authentication failed"), "a wrong password is refused: {refused}");

    // A node from the command line: it registers and leases a new room.
    let ca = cert.to_string_lossy().into_owned();
    let mut args = vec!["--redis-ca", &ca];
    args.extend_from_slice(NODE_ARGS);
    let node = Node::start(NODE, &url("s3cret-pass"), &args).await?;
    knowing_each_other(&[&node]).await?;
    let (_host, host) = hello(&node.ws_url(), create_private("host")).await?;
    let code = host.room().expect("welcomed").code().to_owned();
    assert_eq!(leases.owner(&code).await?.map(|lease| lease.epoch), Some(1), "leased through TLS");
    Ok(())
}

/// The most `sent - acked` seen in frames over `for_ms`.
async fn most_input_lag(
    rx: &mut arena_bots::ws::WsReceiver,
    sent: &AtomicU32,
    for_ms: u64,
) -> anyhow::Result<u32> {
    let until = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    let mut most = 0;
    while let Ok(incoming) = tokio::time::timeout_at(until, rx.recv()).await {
        match incoming? {
            Incoming::Msg(ServerMsg::Frame(frame)) => {
                most = most.max(sent.load(Ordering::Relaxed).saturating_sub(frame.ack_seq));
            }
            Incoming::Msg(_) => {}
            Incoming::Closed(close) => anyhow::bail!("closed: {close:?}"),
        }
    }
    Ok(most)
}

/// A node that stalls (a long GC pause, a VM that stopped for a moment)
/// skips the ticks it missed. The inputs its players sent meanwhile are owed
/// the time that passed: they are applied as it catches up, and nobody is
/// left with their inputs waiting behind the stall for good.
#[tokio::test]
async fn a_node_that_stalled_leaves_its_players_no_input_lag() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = Node::start(NODE, &redis.url(), NODE_ARGS).await?;
    let (client, _session) = hello(&a.ws_url(), create_private("steady")).await?;
    let (mut tx, mut rx) = client.split();
    // Two inputs a tick, as a client at 60 Hz sends them; `sent` is the newest seq.
    let sent = Arc::new(AtomicU32::new(0));
    let sender = tokio::spawn({
        let sent = sent.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / 30));
            loop {
                every.tick().await;
                let seq = sent.load(Ordering::Relaxed) + 1;
                let inputs = vec![Input::stick(0, 0); 2];
                if tx.send(&ClientMsg::Inputs { seq, inputs }).await.is_err() {
                    return;
                }
                sent.store(seq + 1, Ordering::Relaxed);
            }
        }
    });
    most_input_lag(&mut rx, &sent, 1_000).await?;
    let before = most_input_lag(&mut rx, &sent, 1_000).await?;
    a.freeze()?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.thaw()?;
    most_input_lag(&mut rx, &sent, 1_500).await?;
    let after = most_input_lag(&mut rx, &sent, 1_000).await?;
    sender.abort();
    let (skipped, dropped) =
        (metric(&a, "arena_ticks_skipped_total").await?, metric(&a, "arena_inputs_dropped_total").await?);
    println!(
        "FIGURE input_lag_before={before} input_lag_after_a_400ms_stall={after} ticks_skipped={skipped}"
    );
    check(skipped >= 8, &format!("the stall skipped ticks: {skipped}"), &[&a]);
    check(dropped == 0, &format!("no input was dropped: {dropped}"), &[&a]);
    // In flight at most: a tick's two, two more sent meanwhile, and the
    // scheduling of this busy machine; a stall left behind would be 18 more.
    check(
        after <= before.max(4) + 2,
        &format!("inputs lag {after} behind after the stall, {before} before"),
        &[&a],
    );
    Ok(())
}
