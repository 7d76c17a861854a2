//! Room leases against a real `redis-server`: one owner per code however
//! many race for it, epochs that only grow, renewal and release only by
//! the holder, expiry by TTL, and nodes that vanish when they stop
//! beating. (Cluster mode builds on these; see the README.)

use std::time::Duration;

use arena_server::lease::{Lease, Leases};
use arena_tests::redis::RedisServer;

const TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn twenty_concurrent_claims_of_one_code_give_exactly_one_owner() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    // Twenty nodes, each with its own connection, claim at once.
    let mut claims = tokio::task::JoinSet::new();
    for node in 0..20 {
        let url = redis.url();
        claims.spawn(async move {
            let leases = Leases::connect(&url, TIMEOUT).await?;
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
    let leases = Leases::connect(&redis.url(), TIMEOUT).await?;
    assert_eq!(leases.owner("abcdefghjk").await?, Some(Lease { epoch, node: format!("node-{node}") }));
    Ok(())
}

#[tokio::test]
async fn only_the_holder_renews_or_releases_and_epochs_only_grow() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let leases = Leases::connect(&redis.url(), TIMEOUT).await?;
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
async fn nodes_appear_while_they_beat_and_vanish_within_a_ttl() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let leases = Leases::connect(&redis.url(), TIMEOUT).await?;
    let ttl = Duration::from_secs(1);
    leases.heartbeat("eu-1", "https://eu1.example.com", ttl).await?;
    leases.heartbeat("eu-2", "https://eu2.example.com", ttl).await?;
    assert_eq!(
        leases.nodes().await?,
        [
            ("eu-1".to_owned(), "https://eu1.example.com".to_owned()),
            ("eu-2".into(), "https://eu2.example.com".into())
        ]
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        leases.heartbeat("eu-1", "https://eu1.example.com", ttl).await?;
    }
    assert_eq!(
        leases.nodes().await?,
        [("eu-1".to_owned(), "https://eu1.example.com".to_owned())],
        "eu-2 stopped"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_within_the_timeout_not_a_hang() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let leases = Leases::connect(&redis.url(), Duration::from_millis(500)).await?;
    assert!(leases.claim("room", "a", Duration::from_secs(5)).await?.is_some());
    redis.kill().await;
    let started = std::time::Instant::now();
    let renewed = leases.renew("room", &Lease { epoch: 1, node: "a".into() }, Duration::from_secs(5)).await;
    assert!(renewed.is_err(), "no answer is an error, never a renewal: {renewed:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "within the timeout: {:?}", started.elapsed());
    Ok(())
}
