//! Recorded rounds over real sockets: 20 brawler bots play a round, the
//! server lists it at `/api/replays` and serves it, and it re-runs natively
//! with every checksum equal; a private room's round is kept but not listed.

use arena_bots::verify::verify_replay;
use arena_bots::{Behaviour, Live, run_swarm};
use arena_shared::protocol::{RoomRequest, ServerMsg, replay_id_hex};
use arena_tests::{TestServer, eventually, http_get, recv_until, swarm, test_config};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_bot_round_is_listed_served_and_replays_with_every_checksum_equal() -> anyhow::Result<()> {
    let config = test_config().with(|c| {
        c.game.round_secs = 8;
        c.game.podium_secs = 2;
        c.game.max_players = 32;
    });
    let server = TestServer::start(config).await?;
    // A private room's round: kept, never listed.
    let (mut host, private) = {
        let mut client = server.client().await?;
        let welcome = client.handshake_in("host", RoomRequest::CreatePrivate).await?;
        (client, welcome)
    };
    let bots = tokio::spawn(run_swarm(swarm(&server, 20, 14.0, Behaviour::Brawler), Live::default().into()));
    let listed = eventually("a round is recorded", Duration::from_secs(30), async || {
        let body = http_get(server.addr, "/api/replays", &[]).await?.body;
        let listed: serde_json::Value = serde_json::from_slice(&body)?;
        let count = listed.as_array().map_or(0, Vec::len);
        Ok((count > 0, listed))
    })
    .await?;
    let round = &listed[0];
    assert!(round["room"] != private.room.as_str(), "a private room's round is not listed: {listed}");
    assert!(round["players"].as_u64().is_some_and(|n| n >= 20), "twenty bots played: {round}");
    let id = round["id"].as_str().unwrap_or_default();
    let url = format!("http://{}/api/replays/{id}", server.addr);
    let verified = verify_replay(&url).await.map_err(anyhow::Error::msg)?;
    eprintln!("{verified:?}");
    assert_eq!(verified.ticks, 8 * 30);
    assert_eq!(verified.checksums, 8, "one a second, all equal");
    assert!(verified.inputs > 20 * 8 * 50, "the bots' inputs are in it: {}", verified.inputs);

    // The private room's players are told its round's id at the podium:
    // that id, and only it, reaches the recording.
    let id =
        recv_until(&mut host, |m| if let ServerMsg::Replay { id } = m { Some(*id) } else { None }).await?;
    let url = format!("http://{}/api/replays/{}", server.addr, replay_id_hex(&id));
    let served = eventually("the private round is stored", Duration::from_secs(5), async || {
        Ok((http_get(server.addr, &url[url.find("/api").unwrap_or(0)..], &[]).await?.status == 200, ()))
    });
    served.await?;
    assert_eq!(verify_replay(&url).await.map_err(anyhow::Error::msg)?.ticks, 8 * 30);

    let missing = http_get(server.addr, "/api/replays/00000000000000000000000000000000", &[]).await?;
    assert_eq!(missing.status, 404);
    let bad = verify_replay(&format!("http://{}/api/replays/nope", server.addr)).await;
    assert!(bad.is_err_and(|why| why.contains("404")));
    bots.abort();
    server.stop().await
}
