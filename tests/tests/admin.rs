//! The operators' page and its API (`/admin`): only with the admin token
//! (or on the operators' listener), every room with its players and the
//! node's last minute, and the orders: kick a player, close a room, drain
//! a node; across a real cluster, an order given on one node is carried
//! out by the node it concerns.

use std::time::Duration;

use arena_bots::ws::{Incoming, WsClient};
use arena_shared::protocol::{ServerMsg, close};
use arena_tests::node::{Node, knowing_each_other};
use arena_tests::redis::RedisServer;
use arena_tests::{ADMIN_TOKEN, HttpResponse, TestServer, http_get, http_post_json, test_config};
use serde_json::{Value, json};

/// The node binary cargo built for these tests.
const NODE: &str = env!("CARGO_BIN_EXE_arena-node");

const BEARER: &str = "Bearer test-admin-token-0123456789";

async fn cluster(addr: std::net::SocketAddr) -> anyhow::Result<Value> {
    let response = http_get(addr, "/admin/api/cluster", &[("authorization", BEARER)]).await?;
    anyhow::ensure!(response.status == 200, "HTTP {}: {}", response.status, text(&response));
    Ok(serde_json::from_slice(&response.body)?)
}

async fn order(addr: std::net::SocketAddr, order: Value) -> anyhow::Result<HttpResponse> {
    http_post_json(addr, "/admin/api/orders", &[("authorization", BEARER)], &order).await
}

fn text(response: &HttpResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Whether `client` keeps getting frames for a second.
async fn still_playing(client: &mut WsClient) -> bool {
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut frames = 0;
    while let Ok(Ok(Incoming::Msg(msg))) = tokio::time::timeout_at(until, client.recv()).await {
        frames += u32::from(matches!(msg, ServerMsg::Frame(_)));
    }
    frames >= 10
}

#[tokio::test]
async fn only_operators_see_the_rooms_and_their_orders_kick_and_close() -> anyhow::Result<()> {
    assert_eq!(BEARER, format!("Bearer {ADMIN_TOKEN}"));
    let server = TestServer::start(test_config()).await?;
    let (mut ada, welcome) = server.player("ada").await?;
    let (mut bob, bob_welcome) = server.player("bob").await?;
    let room = welcome.room.clone();

    // The page itself holds no data; its API wants the token.
    let page = http_get(server.addr, "/admin", &[]).await?;
    assert_eq!(page.status, 200);
    assert!(text(&page).contains("/admin/api/cluster") && !text(&page).contains(&room));
    for headers in [&[][..], &[("authorization", "Bearer wrong-token-0123456789")][..]] {
        let refused = http_get(server.addr, "/admin/api/cluster", headers).await?;
        assert_eq!(refused.status, 401, "{headers:?}: {}", text(&refused));
        let refused = http_post_json(
            server.addr,
            "/admin/api/orders",
            headers,
            &json!({"order": "close", "room": room}),
        )
        .await?;
        assert_eq!(refused.status, 401);
    }

    // Every room, its seats, and the node's last minute (a sample a second).
    let seen =
        arena_tests::eventually("a sample of the node's last minute", Duration::from_secs(5), async || {
            let seen = cluster(server.addr).await?;
            let sampled = seen["nodes"][0]["samples"].as_array().is_some_and(|samples| !samples.is_empty());
            Ok((sampled, seen))
        })
        .await?;
    let node = &seen["nodes"][0];
    assert_eq!(node["players"], 2, "{seen}");
    assert!(node["samples"].as_array().is_some_and(|samples| !samples.is_empty()), "{seen}");
    assert!(node["tick_p99"].as_u64().is_some(), "a minute's tick p99: {seen}");
    let listed = &node["rooms"][0];
    assert_eq!(listed["code"], room.as_str());
    assert!(listed["tick_p99"].as_u64().is_some(), "the room's last minute: {seen}");
    let names: Vec<&str> =
        listed["roster"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["ada", "bob"]);
    // The same without a token on the operators' own listener.
    let operators = http_get(server.operator, "/admin/api/cluster", &[]).await?;
    assert_eq!(operators.status, 200, "{}", text(&operators));

    // Kick bob: his connection closes with 4010, his seat is gone, ada plays on.
    let kicked =
        order(server.addr, json!({"order": "kick", "room": room, "player": bob_welcome.you})).await?;
    assert_eq!(kicked.status, 202, "{}", text(&kicked));
    let closed = arena_tests::expect_close(&mut bob).await?;
    assert_eq!(closed.map(|(code, _)| code), Some(close::KICKED));
    assert!(still_playing(&mut ada).await, "the others play on");
    assert_eq!(server.players().await?, 1, "the kicked seat is freed, not held");
    let again = order(server.addr, json!({"order": "kick", "room": room, "player": bob_welcome.you})).await?;
    assert_eq!(again.status, 404, "a player who is not there: {}", text(&again));

    // Mistakes get a clear answer.
    let unknown = order(server.addr, json!({"order": "close", "room": "nosuchroom"})).await?;
    assert_eq!(unknown.status, 404);
    assert!(text(&unknown).contains("nosuchroom"));
    let garbled = order(server.addr, json!({"order": "explode"})).await?;
    assert_eq!(garbled.status, 400, "{}", text(&garbled));
    assert!(text(&garbled).contains("expected"), "the answer says what an order looks like");

    // Close the room: ada is told why, and the room is gone.
    let closing = order(server.addr, json!({"order": "close", "room": room})).await?;
    assert_eq!(closing.status, 202, "{}", text(&closing));
    let closed = arena_tests::expect_close(&mut ada).await?;
    let (code, reason) = closed.expect("a close frame");
    assert_eq!(code, close::GOING_AWAY);
    assert!(reason.contains("operator"), "{reason}");
    arena_tests::eventually("the room is gone", Duration::from_secs(5), async || {
        let rooms = cluster(server.addr).await?["nodes"][0]["rooms"].as_array().map_or(0, Vec::len);
        Ok((rooms == 0, rooms))
    })
    .await?;
    server.stop().await
}

#[tokio::test]
async fn an_order_given_on_one_node_is_carried_out_by_the_node_it_concerns() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let args = ["--admin-token", ADMIN_TOKEN, "--lease-ms", "1000", "--checkpoint-ms", "200"];
    let a = Node::start(NODE, &redis.url(), &args).await?;
    let b = Node::start(NODE, &redis.url(), &args).await?;
    knowing_each_other(&[&a, &b]).await?;
    let mut host = WsClient::connect(&b.ws_url()).await?;
    let welcome = host.handshake("host").await?;
    let (mut guest, guest_welcome) = {
        let mut guest = WsClient::connect(&b.ws_url()).await?;
        let welcome = guest.handshake("guest").await?;
        (guest, welcome)
    };
    assert_eq!(welcome.room, guest_welcome.room, "one public room on B");
    let room = welcome.room.clone();

    // A answers for the whole cluster: B's room and its seats.
    let seen = arena_tests::eventually("A lists B's room", Duration::from_secs(10), async || {
        let seen = cluster(a.addr()).await?;
        let rooms: Vec<String> = seen["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|node| node["rooms"].as_array().cloned().unwrap_or_default())
            .filter_map(|room| Some(format!("{}:{}", room["code"].as_str()?, room["players"])))
            .collect();
        Ok((rooms == [format!("{room}:2")], seen))
    })
    .await?;
    assert_eq!(seen["nodes"].as_array().map(Vec::len), Some(2), "{seen}");

    // A kick given on A reaches B.
    let kicked = order(a.addr(), json!({"order": "kick", "room": room, "player": guest_welcome.you})).await?;
    assert_eq!(kicked.status, 202, "{}", text(&kicked));
    let closed = arena_tests::expect_close(&mut guest).await?;
    assert_eq!(closed.map(|(code, _)| code), Some(close::KICKED));

    // A drain of B given on A: B hands its room over (to A), the host is
    // sent on, and B stays up, draining.
    let b_node = seen["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|node| node["url"] == b.url().as_str())
        .and_then(|node| node["node"].as_str())
        .expect("B is listed")
        .to_owned();
    let draining = order(a.addr(), json!({"order": "drain", "node": b_node})).await?;
    assert_eq!(draining.status, 202, "{}", text(&draining));
    let moved = arena_tests::recv_until(&mut host, |msg| match msg {
        ServerMsg::Moved(moved) => Some(moved.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(moved.url, a.url(), "the room went to A");
    let after = arena_tests::eventually("B is draining with no room", Duration::from_secs(10), async || {
        let seen = cluster(a.addr()).await?;
        let b_seen = seen["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|node| node["node"] == b_node.as_str())
            .cloned();
        let done = b_seen.as_ref().is_some_and(|node| {
            node["draining"] == true && node["rooms"].as_array().is_some_and(Vec::is_empty)
        });
        Ok((done, seen))
    })
    .await?;
    let a_rooms =
        after["nodes"].as_array().into_iter().flatten().find(|node| node["url"] == a.url().as_str()).cloned();
    assert!(a_rooms.is_some_and(|node| node["rooms"][0]["code"] == room.as_str()), "{after}");
    let unknown = order(a.addr(), json!({"order": "drain", "node": "0000000000000000"})).await?;
    assert_eq!(unknown.status, 404, "{}", text(&unknown));
    Ok(())
}
