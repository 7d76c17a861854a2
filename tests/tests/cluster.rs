//! Room leases against a real `redis-server`: one owner per code however
//! many race for it, epochs that only grow, renewal and release only by
//! the holder, expiry by TTL, and nodes that vanish when they stop
//! beating. (Cluster mode builds on these; see the README.)

use std::time::Duration;

use arena_bots::ws::ClientError;
use arena_server::cluster::lease::{Lease, LeaseStore, Leases};
use arena_server::cluster::redis::RedisError;
use arena_server::cluster::registry::{NodeInfo, Nodes};
use arena_shared::protocol::{RejectReason, RoomRequest};
use arena_tests::frames::{record_frames, worst_gap};
use arena_tests::redis::RedisServer;

const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn twenty_concurrent_claims_of_one_code_give_exactly_one_owner() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    // Twenty nodes, each with its own connection, claim at once.
    let mut claims = tokio::task::JoinSet::new();
    for node in 0..20 {
        let redis = redis.connect(TIMEOUT).await?;
        claims.spawn(async move {
            let leases = Leases(redis);
            let epoch = leases.claim("abcdefghjk", &format!("node-{node}"), Duration::from_secs(10)).await?;
            anyhow::Ok((node, epoch))
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = claims.join_next().await {
        if let (node, Some(epoch)) = result?? {
            winners.push((node, epoch));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one owner: {winners:?}");
    let (node, epoch) = winners[0];
    let leases = Leases(redis.connect(TIMEOUT).await?);
    assert_eq!(leases.owner("abcdefghjk").await?, Some(Lease { epoch, node: format!("node-{node}") }));
    Ok(())
}

#[tokio::test]
async fn only_the_holder_renews_or_releases_and_epochs_only_grow() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let leases = Leases(redis.connect(TIMEOUT).await?);
    // Margins a loaded machine keeps: renewals every 300 ms of a 1 s lease.
    let ttl = Duration::from_secs(1);
    let first = Lease { epoch: leases.claim("room", "a", ttl).await?.expect("free"), node: "a".into() };
    assert_eq!(leases.claim("room", "b", ttl).await?, None, "held");
    let forged = Lease { epoch: first.epoch, node: "b".into() };
    assert!(!leases.renew("room", &forged, ttl).await?, "another node cannot renew it");
    assert!(!leases.release("room", &forged).await?, "nor release it");
    // Renewed past its first TTL, it is still held.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(leases.renew("room", &first, ttl).await?, "the holder renews");
    }
    assert_eq!(leases.claim("room", "b", ttl).await?, None, "still held past its first TTL");
    // Left to expire, it goes to the next claimant with a higher epoch...
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(leases.owner("room").await?, None, "expired");
    let second =
        Lease { epoch: leases.claim("room", "b", ttl).await?.expect("free again"), node: "b".into() };
    assert!(second.epoch > first.epoch, "epochs only grow: {} then {}", first.epoch, second.epoch);
    // ...and the old holder, waking up late, can neither renew nor release it.
    assert!(!leases.renew("room", &first, ttl).await?, "fenced: the old epoch renews nothing");
    let same_node_old_epoch = Lease { epoch: first.epoch, node: "b".into() };
    assert!(!leases.renew("room", &same_node_old_epoch, ttl).await?, "not even under the new holder's name");
    assert!(!leases.release("room", &first).await?);
    assert!(leases.release("room", &second).await?, "the holder releases");
    let third = leases.claim("room", "c", ttl).await?.expect("released");
    assert!(third > second.epoch, "a release does not reset the count");
    Ok(())
}

#[tokio::test]
async fn saved_rooms_are_read_from_their_index_and_a_forgotten_room_leaves_no_key() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let leases = Leases(redis.connect(TIMEOUT).await?);
    let ttl = Duration::from_secs(10);
    let mut held = Vec::new();
    for code in ["aaaa", "bbbb", "cccc"] {
        let lease = Lease { epoch: leases.claim(code, "a", ttl).await?.expect("free"), node: "a".into() };
        assert!(leases.save(code, &lease, b"state", Duration::from_secs(60)).await?);
        held.push((code, lease));
    }
    let mut saved = leases.saved().await?;
    saved.sort();
    assert_eq!(saved, ["aaaa", "bbbb", "cccc"]);
    for (code, lease) in &held[..2] {
        assert!(leases.forget(code, lease).await?);
    }
    assert_eq!(leases.saved().await?, ["cccc"], "forgotten rooms leave the index");
    // A save that lapses leaves the index at the next read.
    let (code, lease) = &held[2];
    assert!(leases.save(code, lease, b"state", Duration::from_millis(200)).await?);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(leases.saved().await?.is_empty(), "a lapsed save is not listed");
    // What is left is the one room still leased: its lease and its epoch
    // counter (a forgotten room's counter went with it).
    assert_eq!(redis.keys().await?, ["arena:epoch:cccc", "arena:lease:cccc"]);
    Ok(())
}

#[tokio::test]
async fn nodes_appear_while_they_beat_and_vanish_within_a_ttl() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let nodes = Nodes(redis.connect(TIMEOUT).await?);
    let node = |id: &str| NodeInfo {
        node: id.to_owned(),
        url: format!("https://{id}.example.com"),
        rooms: 1,
        players: 2,
        draining: false,
    };
    let ttl = Duration::from_secs(1);
    nodes.register(&node("eu-1"), ttl).await?;
    nodes.register(&node("eu-2"), ttl).await?;
    assert_eq!(nodes.read().await?, [node("eu-1"), node("eu-2")]);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        nodes.register(&node("eu-1"), ttl).await?;
    }
    assert_eq!(nodes.read().await?, [node("eu-1")], "eu-2 stopped");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_within_the_timeout_not_a_hang() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let leases = Leases(redis.connect(Duration::from_millis(500)).await?);
    assert!(leases.claim("room", "a", Duration::from_secs(5)).await?.is_some());
    redis.kill().await;
    let started = std::time::Instant::now();
    let renewed = leases.renew("room", &Lease { epoch: 1, node: "a".into() }, Duration::from_secs(5)).await;
    let lost_redis = |e: &RedisError| match e {
        RedisError::Timeout(_) => true,
        RedisError::Redis(e) => e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal(),
        RedisError::NotReplicated { .. } | RedisError::Ca(_) => false,
    };
    assert!(
        matches!(&renewed, Err(e) if lost_redis(e)),
        "no answer is a lost connection or a timeout, never a renewal: {renewed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "within the timeout: {:?}", started.elapsed());
    Ok(())
}

/// `GET /api/cluster` on `server`: the node ids and URLs it lists.
async fn cluster_of(server: &arena_tests::TestServer) -> anyhow::Result<(u16, Vec<(String, String, u64)>)> {
    let response = arena_tests::http_get(server.addr, "/api/cluster", &[]).await?;
    let body: serde_json::Value = serde_json::from_slice(&response.body)?;
    let nodes = body["nodes"].as_array().cloned().unwrap_or_default();
    let listed = nodes
        .iter()
        .map(|n| {
            let text = |key: &str| n[key].as_str().unwrap_or_default().to_owned();
            (text("node"), text("url"), n["players"].as_u64().unwrap_or_default())
        })
        .collect();
    Ok((response.status, listed))
}

#[tokio::test]
async fn nodes_sharing_a_redis_list_each_other_and_a_stopped_one_leaves() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let node = |url: &str| {
        arena_tests::test_config().with(|c| {
            c.cluster.redis_url = Some(redis.url());
            c.cluster.node_url = Some(url.to_owned());
            c.cluster.lease_ms = 1_000;
        })
    };
    let a = arena_tests::TestServer::start(node("https://a.example.com")).await?;
    let b = arena_tests::TestServer::start(node("https://b.example.com")).await?;
    let (_player, _) = b.player("ada").await?;
    let urls = |listed: &[(String, String, u64)]| listed.iter().map(|n| n.1.clone()).collect::<Vec<_>>();
    let both = arena_tests::eventually("both nodes listed on a", Duration::from_secs(5), async || {
        let (status, listed) = cluster_of(&a).await?;
        let mut seen = urls(&listed);
        seen.sort();
        Ok((status == 200 && seen == ["https://a.example.com", "https://b.example.com"], listed))
    })
    .await?;
    assert!(both.iter().all(|n| n.0.len() == 16), "ids are 64-bit hex: {both:?}");
    arena_tests::eventually("b's player counted on a", Duration::from_secs(5), async || {
        let (_, listed) = cluster_of(&a).await?;
        let players = listed.iter().find(|n| n.1 == "https://b.example.com").map_or(0, |n| n.2);
        Ok((players == 1, players))
    })
    .await?;
    // A page served by one node may play on another (once b knows a);
    // other sites may not.
    arena_tests::node::cluster_knows_itself(&[a.addr, b.addr]).await?;
    let b_socket = b.ws_url();
    let from =
        async |origin: &str| arena_bots::ws::WsClient::connect_with_origin(&b_socket, Some(origin)).await;
    assert!(from("https://a.example.com").await.is_ok(), "a page from node a opens b's socket");
    assert!(
        matches!(from("https://evil.example.com").await, Err(arena_bots::ws::ClientError::Http(403))),
        "a foreign page does not"
    );
    // A clean stop leaves the registry at once (not a lease later; the
    // answer is read from Redis at most four times a second).
    b.stop().await?;
    arena_tests::eventually("b left", Duration::from_secs(1), async || {
        let (status, listed) = cluster_of(&a).await?;
        Ok(((status, urls(&listed)) == (200, vec!["https://a.example.com".to_owned()]), listed))
    })
    .await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test]
async fn without_redis_a_node_is_a_cluster_of_one() -> anyhow::Result<()> {
    let alone = arena_tests::TestServer::start(arena_tests::test_config()).await?;
    let response = arena_tests::http_get(alone.addr, "/api/cluster", &[]).await?;
    let body: serde_json::Value = serde_json::from_slice(&response.body)?;
    assert_eq!((response.status, body["cluster"].as_bool()), (200, Some(false)));
    assert_eq!(body["nodes"].as_array().map(Vec::len), Some(1), "itself: {body}");
    alone.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_redis_restart_loses_no_room_short_outages_are_unseen_and_long_ones_pause_it() -> anyhow::Result<()>
{
    let mut redis = RedisServer::start().await?;
    let config = arena_tests::test_config().with(|c| {
        c.cluster.redis_url = Some(redis.url());
        c.cluster.lease_ms = 2_000;
        c.cluster.checkpoint_ms = 200;
    });
    let node = arena_tests::TestServer::start(config).await?;
    let registered = async || {
        arena_tests::eventually("registered", Duration::from_secs(10), async || {
            let (status, listed) = cluster_of(&node).await?;
            Ok((status == 200 && listed.len() == 1, listed))
        })
        .await
    };
    registered().await?;
    let (player, welcome) = node.player("ada").await?;
    let frames = record_frames(player);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Down for a moment (an empty Redis comes back): nobody notices.
    let quick = std::time::Instant::now();
    redis.restart(Duration::from_millis(100)).await?;
    registered().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (gap, step) = worst_gap(&frames, quick);
    eprintln!("a 100 ms Redis restart: frames at most {gap:?} apart");
    assert!(
        gap < Duration::from_millis(1_000) && step <= 3,
        "no pause: frames {gap:?} and {step} ticks apart"
    );

    // Down for longer than a lease: the room pauses (no frames at all),
    // newcomers are told to retry, and then it plays on where it paused.
    let long = std::time::Instant::now();
    let outage = tokio::spawn(async move { redis.restart(Duration::from_secs(4)).await.map(|()| redis) });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (status, _) = cluster_of(&node).await?;
    assert_eq!(status, 503, "the registry cannot be read");
    // A new room needs its lease: its opener is told to retry (a join to
    // the room already here would still be seated, and wait with it).
    let refused = node.client().await?.handshake_in("late", RoomRequest::CreatePrivate).await;
    assert!(
        matches!(&refused, Err(ClientError::Rejected(r)) if matches!(r.reason, RejectReason::Unavailable { .. })),
        "a new room's opener is told to retry: {refused:?}"
    );
    let redis = outage.await??;
    registered().await?;
    arena_tests::eventually("frames again", Duration::from_secs(10), async || {
        let newest = frames.lock().expect("not poisoned").last().map(|(at, _)| *at);
        Ok((newest.is_some_and(|at| at > long + Duration::from_secs(4)), newest))
    })
    .await?;
    let (gap, step) = worst_gap(&frames, long);
    eprintln!("a 4 s Redis outage with a 2 s lease: paused for {gap:?}, resumed {step} tick(s) on");
    assert!(gap >= Duration::from_millis(1_500), "paused while the lease could not be renewed: {gap:?}");
    assert!(step <= 3, "played on where it paused, not skipping ticks: a step of {step}");
    // Listed again for quick-joins, on a fresh Redis.
    let (_, again) = node.player("back").await?;
    assert_eq!(again.room, welcome.room, "a quick-join finds the room again");
    assert!(node.metric("arena_leases_held").await? >= 1);
    drop(redis);
    node.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_joiners_arriving_together_share_one_room_and_give_their_spare_leases_back()
-> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let server = arena_tests::TestServer::start(arena_tests::test_config().with(|c| {
        c.cluster.redis_url = Some(redis.url());
        c.game.max_players = 8;
        c.game.max_rooms = 4;
    }))
    .await?;
    // Each leases a code without waiting for the others (no lock across a
    // round trip); the first to start opens the room, the rest join it.
    let (_clients, rooms) = arena_tests::racing_quick_joins(&server, 8).await?;
    assert_eq!(rooms.len(), 1, "all eight share one room: {rooms:?}");
    let leased = |keys: &[String]| keys.iter().filter(|key| key.starts_with("arena:lease:")).count();
    let keys = redis.keys().await?;
    assert_eq!(leased(&keys), 1, "the spare leases went back: {keys:?}");
    server.stop().await
}

/// A room's input log through the node's writer, against a real Redis:
/// appends only under the lease and only where they follow, a checkpoint
/// restarts the log, a full log takes no more, and a forgotten room takes
/// its log with it.
#[tokio::test]
async fn the_input_log_appends_only_what_follows_under_the_lease_and_restarts_at_each_checkpoint()
-> anyhow::Result<()> {
    use std::sync::Arc;

    use arena_server::cluster::inputlog::{self, Bounds};
    use arena_server::cluster::registry::Cluster;
    use arena_server::config::{ClusterConfig, ServerConfig};
    use arena_server::room::log::{LogSink, LogWrite, Written};
    use arena_server::telemetry::metrics::Metrics;

    async fn write(sink: &LogSink, epoch: u64, tick: u32, what: Written) -> bool {
        let (done, answer) = tokio::sync::oneshot::channel();
        sink.send(LogWrite { code: "logroom".into(), epoch, tick, what, done })
            .await
            .expect("the writer runs");
        answer.await.unwrap_or(false)
    }
    let append = |bytes: &[u8]| Written::Append(bytes.to_vec());
    let save = |bytes: &[u8]| Written::Save(bytes.to_vec());

    let redis = RedisServer::start().await?;
    let config = ClusterConfig { redis_url: Some(redis.url()), ..ServerConfig::default().cluster };
    let cluster = Cluster::new(&config, "http://127.0.0.1:1".into());
    cluster.connected().await.expect("cluster mode")?;
    let leases = Leases(redis.connect(TIMEOUT).await?);
    let epoch = leases.claim("logroom", &cluster.node, Duration::from_secs(10)).await?.expect("free");
    let cancel = tokio_util::sync::CancellationToken::new();
    let bounds = Bounds { max_records: 2 };
    let sink = inputlog::spawn(cluster.clone(), bounds, Arc::new(Metrics::default()), cancel.clone());

    assert!(!write(&sink, epoch, 11, append(b"t11")).await, "nothing to follow before a checkpoint");
    assert!(write(&sink, epoch, 10, save(b"state@10")).await);
    assert!(!write(&sink, epoch + 1, 11, append(b"t11")).await, "not under another lease");
    assert!(write(&sink, epoch, 11, append(b"t11")).await);
    assert!(!write(&sink, epoch, 11, append(b"t11")).await, "a tick logged twice is refused");
    assert!(!write(&sink, epoch, 13, append(b"t13")).await, "a hole is refused");
    assert!(write(&sink, epoch, 12, append(b"t12")).await);
    assert!(!write(&sink, epoch, 13, append(b"t13")).await, "a full log takes no more");
    let loaded = leases.load_with_log("logroom").await?;
    assert_eq!(loaded, Some((b"state@10".to_vec(), vec![b"t11".to_vec(), b"t12".to_vec()])));

    // A checkpoint restarts it; so does a save made beside the log.
    assert!(write(&sink, epoch, 12, save(b"state@12")).await);
    assert!(write(&sink, epoch, 13, append(b"t13")).await);
    assert_eq!(leases.load_with_log("logroom").await?, Some((b"state@12".to_vec(), vec![b"t13".to_vec()])));
    let lease = Lease { epoch, node: cluster.node.clone() };
    assert!(leases.save("logroom", &lease, b"handed", Duration::from_secs(60)).await?);
    assert_eq!(leases.load_with_log("logroom").await?, Some((b"handed".to_vec(), vec![])));
    assert!(
        !write(&sink, epoch, 14, append(b"t14")).await,
        "the log after that save starts with a checkpoint"
    );
    assert!(write(&sink, epoch, 13, save(b"state@13")).await);
    assert!(write(&sink, epoch, 14, append(b"t14")).await);
    assert!(leases.forget("logroom", &lease).await?);
    assert!(redis.keys().await?.is_empty(), "a forgotten room leaves no log: {:?}", redis.keys().await?);
    cancel.cancel();
    Ok(())
}
