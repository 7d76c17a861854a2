//! The cluster through Redis Sentinel, against Debian's `redis-server` and
//! `redis-sentinel`: a primary, two replicas and three Sentinels. The
//! primary is killed; the Sentinels promote a replica and the nodes follow
//! it, with every lease write on a replica before it counts, so the
//! failover loses no lease, no player and no point.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_bots::ws::WsClient;
use arena_bots::{Behaviour, Live, Outcome, RoomPlan, SwarmConfig, run_swarm};
use arena_client_core::session::{ClientSession, JoinRequest};
use arena_server::cluster::lease::{Lease, LeaseStore, Leases};
use arena_server::cluster::redis::{Redis, RedisError};
use arena_server::config::RedisSource;
use arena_shared::protocol::RoomRequest;
use arena_tests::frames::{record_frames, worst_gap};
use arena_tests::node::{Node, knowing_each_other};
use arena_tests::redis::{MASTER, Sentinels};

const NODE: &str = env!("CARGO_BIN_EXE_arena-node");

#[tokio::test]
async fn a_lease_outlives_a_sentinel_failover_and_counts_only_once_a_replica_has_it() -> anyhow::Result<()> {
    let mut set = Sentinels::start().await?;
    let source = RedisSource::Sentinel {
        sentinels: set.addresses(),
        master: MASTER.into(),
        user: None,
        password: None,
    };
    let leases = Leases(Redis::connect(&source, Duration::from_secs(1), 1).await?);
    let ttl = Duration::from_secs(10);
    let Some(epoch) = leases.claim("room", "a", ttl).await? else {
        panic!("not free: held by {:?}", leases.owner("room").await);
    };
    let held = Lease { epoch, node: "a".into() };
    assert!(leases.renew("room", &held, ttl).await?, "renewed on the first primary");
    let first = set.primary_port().await?;

    set.kill_primary().await;
    let killed = Instant::now();
    let (mut failures, mut last) = (0, String::new());
    let back = loop {
        if killed.elapsed() > Duration::from_secs(40) {
            let primary = set.primary_port().await;
            panic!("no new primary within 40 s: {last}; the Sentinels name {primary:?}");
        }
        match leases.renew("room", &held, ttl).await {
            Ok(true) => break killed.elapsed(),
            Ok(false) => panic!("the failover lost the lease"),
            Err(e @ (RedisError::Redis(_) | RedisError::Timeout(_) | RedisError::NotReplicated { .. })) => {
                failures += 1;
                last = e.to_string();
            }
            Err(e) => panic!("not a failover's error: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let second = set.primary_port().await?;
    eprintln!("renewals failed {failures} times; renewed on the new primary {back:?} after the kill");
    assert_ne!(first, second, "a replica was promoted");
    assert_eq!(leases.owner("room").await?, Some(held), "the same holder, the same epoch");
    Ok(())
}

#[tokio::test]
async fn a_primary_killed_under_sentinels_loses_no_player_and_no_point() -> anyhow::Result<()> {
    let mut set = Sentinels::start().await?;
    let args = ["--lease-ms", "3000", "--checkpoint-ms", "1000"];
    let a = Node::start_sentinel(NODE, &set.addresses(), MASTER, &args).await?;
    let b = Node::start_sentinel(NODE, &set.addresses(), MASTER, &args).await?;
    knowing_each_other(&[&a, &b]).await?;
    // A host opens a private room on B and records its frames; ten bots
    // come in through A and are sent there.
    let mut host = WsClient::connect(&b.ws_url()).await?;
    let join = JoinRequest { name: "host".into(), color: 1, room: RoomRequest::CreatePrivate, resume: None };
    let mut session = ClientSession::new(join, 1.0);
    host.join(&mut session, || 0.0).await?;
    let code = session.room().expect("welcomed").code().to_owned();
    let frames = record_frames(host);
    let swarm = SwarmConfig {
        url: a.ws_url(),
        count: 10,
        duration: Duration::from_secs(14),
        behaviour: Behaviour::Brawler,
        name_prefix: "bot-".into(),
        tls: None,
        rooms: RoomPlan::Join(code),
        conditions: Default::default(),
        reconnect: Some(Duration::from_secs(10)),
        light: false,
    };
    let swarm = tokio::spawn(run_swarm(swarm, Arc::new(Live::default())));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let killed = Instant::now();
    set.kill_primary().await;
    let records = swarm.await?;
    let (pause, ticks) = worst_gap(&frames, killed);
    eprintln!("the primary killed: the room's frames at most {pause:?} ({ticks} ticks) apart");
    for record in &records {
        let kept =
            record.outcome == Outcome::Completed && record.players_lost == 0 && record.points_lost == 0;
        if !kept {
            eprintln!("--- node A ---\n{}\n--- node B ---\n{}", a.log(), b.log());
            panic!("bot {} lost something: {record:?}", record.index);
        }
        assert_eq!(record.reconnects, 0, "nobody had to reconnect: {record:?}");
    }
    assert!(pause < Duration::from_secs(3), "the room ran on: frames {pause:?} apart");
    Ok(())
}
