//! The trunk-built client (dist/) served by the real server, in a real
//! headless Chromium, checked from outside the page: its state attribute,
//! its JSON snapshot, and what a bot in the same room sees in the frames.
//!
//! Needs `dist/` (scripts/build-client.sh, run by scripts/test.sh) and
//! Debian's chromium (and, for the cluster, redis-server).
//! `ARENA_SKIP_BROWSER=1` skips it, loudly.

use anyhow::Context;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arena_bots::ws::Incoming;
use arena_bots::{Behaviour, Live, RoomPlan, SwarmConfig, run_swarm};
use arena_server::ServerConfig;
use arena_shared::protocol::{PALETTE, PlayerId, ServerMsg};
use arena_tests::browser::{Browser, Page, Screen, same_colour};
use arena_tests::node::{Node, knowing_each_other};
use arena_tests::redis::RedisServer;
use arena_tests::{Observer, Relay, TestServer, eventually, http_get, test_config};
use serde_json::Value;

/// The node binary cargo built for these tests.
const NODE: &str = env!("CARGO_BIN_EXE_arena-node");

/// One browser at a time: software WebGL on two cores is slow enough alone.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// The built client, or `None` when the browser tests are skipped on purpose.
fn dist() -> Option<PathBuf> {
    if std::env::var("ARENA_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        arena_tests::skipped("browser test (ARENA_SKIP_BROWSER=1)");
        return None;
    }
    let dist =
        std::env::var_os("ARENA_DIST").map(PathBuf::from).unwrap_or_else(|| workspace_dir().join("dist"));
    assert!(
        dist.join("index.html").is_file(),
        "no built client at {}: run scripts/build-client.sh first (scripts/test.sh does)",
        dist.display()
    );
    Some(dist)
}

fn config(dist: PathBuf, max_players: u16) -> ServerConfig {
    test_config().with(|c| {
        c.net.web_dir = Some(dist);
        c.game.max_players = max_players;
    })
}

async fn snapshot(browser: &mut Browser, page: &Page) -> anyhow::Result<Value> {
    let raw =
        browser.eval(page, "document.getElementById('arena-snapshot').dataset.snapshot || 'null'").await?;
    Ok(serde_json::from_str(raw.as_str().unwrap_or("null"))?)
}

/// True once the page is connected to the server (playing).
const CONNECTED: &str = "document.body.dataset.state === 'connected'";

/// Opens `url` (a page that skips the join screen) and waits until it plays.
async fn open_connected(browser: &mut Browser, url: &str) -> anyhow::Result<Page> {
    let page = browser.open(url).await?;
    browser.wait_for(&page, CONNECTED, Duration::from_secs(90)).await?;
    Ok(page)
}

/// True once the page is connected with one other player in the room.
const TWO_ONLINE: &str = "document.body.dataset.state === 'connected' && \
    JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{}').players_online === 2";

/// True once the page is connected as player `you`.
fn connected_as(you: u64) -> String {
    format!(
        "document.body.dataset.state === 'connected' && \
         JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{{}}').you === {you}"
    )
}

fn bots(server: &TestServer, count: usize, behaviour: Behaviour, prefix: &str) -> SwarmConfig {
    SwarmConfig {
        url: server.ws_url(),
        count,
        duration: Duration::from_secs(300),
        behaviour,
        name_prefix: prefix.into(),
        tls: None,
        rooms: RoomPlan::Quick,
        conditions: Default::default(),
        reconnect: None,
        light: false,
    }
}

/// How a test moves the page's player down.
#[derive(Clone, Copy)]
enum Control {
    /// Holds the S key.
    KeyS,
    /// Drags the touch stick down from the left half of the screen.
    TouchDrag,
}

async fn press(browser: &mut Browser, page: &Page, control: Control, down: bool) -> anyhow::Result<()> {
    match (control, down) {
        (Control::KeyS, down) => browser.key(page, down, "s", "KeyS", 83).await,
        (Control::TouchDrag, true) => {
            browser.touch(page, "touchStart", 100.0, 560.0).await?;
            for y in [580.0, 610.0, 640.0] {
                browser.touch(page, "touchMove", 100.0, y).await?;
            }
            Ok(())
        }
        (Control::TouchDrag, false) => browser.touch(page, "touchEnd", 0.0, 0.0).await,
    }
}

/// Holds `control` for `secs`, then returns how far (world units) a bot in
/// the room saw `player` move down, reading frames until it has moved
/// `expect` units or 15 s pass (a software-rendered page sends its inputs
/// late).
async fn hold_down(
    browser: &mut Browser,
    page: &Page,
    server: &TestServer,
    player: PlayerId,
    control: Control,
    (secs, expect): (f64, f64),
) -> anyhow::Result<f64> {
    let (observer, welcome) = server.player("observer").await?;
    let mut observer = Observer::new(observer);
    // A room bigger than a view: watch from the middle, which sees the
    // whole inner platform (smaller rooms are seen whole from anywhere).
    if welcome.platform.radius > arena_server::room::interest::VIEW_RADIUS as u32 / 2 {
        observer.walk_to_centre().await?;
    }
    let y_of = |msg: &ServerMsg, view: &Observer| match msg {
        ServerMsg::Frame(_) => view.position(player).map(|p| f64::from(p.1)),
        _ => None,
    };
    let before = observer.recv_until(y_of).await?;
    browser.eval(page, "document.getElementById('arena-canvas').focus(), true").await?;
    press(browser, page, control, true).await?;
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    press(browser, page, control, false).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut moved = 0.0;
    while moved < expect && Instant::now() < deadline {
        moved = observer.recv_until(y_of).await? - before;
    }
    observer.client.close().await;
    Ok(moved)
}

#[expect(clippy::too_many_lines, reason = "one player's story from page to page, told in order")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_client_connects_plays_and_reconnects() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist.clone(), 256)).await?;
    let addr = server.addr;

    // The page and its assets come from arena-server, compressed and cached right.
    let index = http_get(addr, "/", &[]).await?;
    assert_eq!(index.status, 200);
    assert_eq!(index.header("cache-control"), Some("no-cache"), "index.html must be revalidated");
    let html = String::from_utf8_lossy(&index.body).to_string();
    let wasm = html
        .split('"')
        .find(|s| s.ends_with("_bg.wasm"))
        .map(|s| s.trim_start_matches("./").trim_start_matches('/').to_owned())
        .expect("index.html should reference the hashed wasm");
    let gz = http_get(addr, &format!("/{wasm}"), &[("Accept-Encoding", "gzip")]).await?;
    assert_eq!(gz.status, 200);
    assert_eq!(
        gz.header("content-type"),
        Some("application/wasm"),
        "wasm needs its MIME type to stream-compile"
    );
    assert_eq!(gz.header("content-encoding"), Some("gzip"), "precompressed gzip should be served");
    assert!(
        gz.header("cache-control").is_some_and(|c| c.contains("immutable")),
        "hashed files cache forever"
    );
    let br = http_get(addr, &format!("/{wasm}"), &[("Accept-Encoding", "br, gzip")]).await?;
    assert_eq!(br.header("content-encoding"), Some("br"), "brotli preferred when accepted");

    let bot_task =
        tokio::spawn(run_swarm(bots(&server, 3, Behaviour::Circle, "ring-"), Live::default().into()));

    let mut browser = Browser::launch().await?;
    let started = Instant::now();
    let page = open_connected(&mut browser, &format!("http://{addr}/?name=chromium&play")).await?;
    let connect_ms = started.elapsed().as_millis();
    println!("FIGURE navigation_to_connected_ms={connect_ms}");
    // The loader (web/loader.mjs) saw the download through and got out of the way.
    let loaded = browser
        .eval(
            &page,
            "document.body.dataset.load + ' ' + getComputedStyle(document.getElementById('loader')).display",
        )
        .await?;
    assert_eq!(loaded.as_str(), Some("ready none"), "the loader ends ready and hidden");

    // Bots appear for the browser client, by name, with drawn positions.
    browser
        .wait_for(
            &page,
            "(JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{}').players || [])\
             .filter(p => p.name && p.name.startsWith('ring-')).length === 3",
            Duration::from_secs(20),
        )
        .await?;
    let first = snapshot(&mut browser, &page).await?;
    assert_eq!(first["name"], "chromium", "?name= should name the player");
    let me = first["you"].as_u64().expect("snapshot should have our id") as PlayerId;

    // Names are the page's own text, one tag over each circle standing on
    // the platform: the bots' by name, yours marked and (the camera follows
    // you) just above the middle of the window.
    let tags = "[...document.querySelectorAll('#names span:not([hidden])')]\
                .map(s => { const r = s.getBoundingClientRect(); \
                return [s.textContent, r.left + r.width / 2 - innerWidth / 2, r.bottom - innerHeight / 2]; })";
    let placed = browser
        .wait_for(
            &page,
            &format!(
                "{tags}.filter(([t, dx, dy]) => t === 'chromium (you)' && Math.abs(dx) < 40 && dy < 0 && dy > -60)\
                 .length === 1 && {tags}.filter(([t]) => t.startsWith('ring-')).length >= 1"
            ),
            Duration::from_secs(10),
        )
        .await;
    if let Err(e) = placed {
        anyhow::bail!(
            "{e}; the name tags (text, x and bottom from the middle): {}",
            browser.eval(&page, tags).await?
        );
    }

    // Holding S moves our player down an empty column, as a bot in the room
    // sees it in frames. With nobody near nothing can push it, so the wasm
    // build's prediction must match the native server bit for bit: no
    // corrections in any frame reconciled alone. (The ring bots circle where
    // they spawned, which depends on when each joined: on a slow machine
    // one may pass within the near radius, and the page then predicts it
    // with you, from its last input, which a circling bot keeps changing.)
    let moved = hold_down(&mut browser, &page, &server, me, Control::KeyS, (1.0, 100.0)).await?;
    assert!(moved > 100.0, "holding S for 1 s should move down by well over 100 units, moved {moved:.1}");
    // And a dash: hold A, tap Space. Still predicted bit for bit.
    browser.key(&page, true, "a", "KeyA", 65).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.key(&page, true, " ", "Space", 32).await?;
    browser.key(&page, false, " ", "Space", 32).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    browser.key(&page, false, "a", "KeyA", 65).await?;
    browser
        .wait_for(
            &page,
            "JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot).dash_ready < 1",
            Duration::from_secs(10),
        )
        .await?;
    let after = snapshot(&mut browser, &page).await?;
    assert!(
        after["corrections"]["frames"].as_u64().unwrap_or(0) > 30,
        "frames should be reconciled: {after}"
    );
    // A correction is a misprediction, or an input the server never applied:
    // its counters say which.
    let (dropped, skipped) = (
        server.metric("arena_inputs_dropped_total").await?,
        server.metric("arena_ticks_skipped_total").await?,
    );
    let alone = after["corrections"]["alone_frames"].as_u64().unwrap_or(0);
    assert!(alone > 30, "most frames should be reconciled with nobody near: {}", after["corrections"]);
    assert_eq!(
        after["corrections"]["alone_corrected"], 0,
        "the wasm simulation should predict the server's bits exactly, dash included: {} \
         (the server dropped {dropped} inputs and skipped {skipped} ticks)",
        after["corrections"]
    );
    let ping = after["ping_ms"].as_f64().unwrap_or(-1.0);
    assert!(
        (0.0..1_000.0).contains(&ping),
        "the client measures its ping (loopback: well under 1 s): {after}"
    );
    assert!(after["fps"].as_f64().unwrap_or(0.0) > 1.0, "the client should be rendering: {after}");
    println!(
        "FIGURE corrections_3_bots={} fps_3_bots={:.1} frame_ms_3_bots={:.1}",
        after["corrections"],
        after["fps"].as_f64().unwrap_or(0.0),
        after["frame_ms"].as_f64().unwrap_or(0.0)
    );
    let shots = workspace_dir().join("target");
    std::fs::create_dir_all(&shots)?;
    browser.screenshot(&page, &shots.join("arena-browser.png")).await?;

    // With 100 bots in the room: frame time, for the load figures.
    let crowd =
        tokio::spawn(run_swarm(bots(&server, 100, Behaviour::Wander, "crowd-"), Live::default().into()));
    browser
        .wait_for(
            &page,
            "(JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{}').players_online || 0) >= 104",
            Duration::from_secs(30),
        )
        .await?;
    // In the crowd, players come near: the page predicts them with you.
    browser
        .wait_for(
            &page,
            "(JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{}').near || []).length > 0",
            Duration::from_secs(30),
        )
        .await
        .context("with 100 bots in the room, someone should come within the near radius")?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let crowded = snapshot(&mut browser, &page).await?;
    println!(
        "FIGURE players_online={} fps_100_bots={:.1} frame_ms_100_bots={:.1} corrections_100_bots={}",
        crowded["players_online"],
        crowded["fps"].as_f64().unwrap_or(0.0),
        crowded["frame_ms"].as_f64().unwrap_or(0.0),
        crowded["corrections"]
    );
    assert!(crowded["players"].as_array().is_some_and(|p| p.len() >= 104), "all 100 bots should be drawn");
    browser.screenshot(&page, &shots.join("arena-browser-100-bots.png")).await?;
    crowd.abort();
    bot_task.abort();

    // The server goes away: the page says so, then reconnects by itself.
    server.stop().await?;
    browser
        .wait_for(&page, "document.body.dataset.state === 'disconnected'", Duration::from_secs(15))
        .await?;
    let status = browser.eval(&page, "document.getElementById('status').textContent").await?;
    assert!(status.as_str().unwrap_or("").contains("Reconnecting"), "should say it is retrying: {status}");
    let server = TestServer::start_on(addr, config(dist, 256)).await?;
    browser.wait_for(&page, CONNECTED, Duration::from_secs(30)).await?;

    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_shows_its_reason_on_the_page() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    // One room of one: the occupant fills the server.
    let server = TestServer::start(config(dist, 1).with(|c| c.game.max_rooms = 1)).await?;
    let (_occupant, _) = server.player("occupant").await?;
    let mut browser = Browser::launch().await?;
    let page = browser.open(&format!("http://{}/?name=latecomer&play", server.addr)).await?;
    browser.wait_for(&page, "document.body.dataset.state === 'rejected'", Duration::from_secs(90)).await?;
    let status = browser.eval(&page, "document.getElementById('status').textContent").await?;
    let status = status.as_str().unwrap_or_default().to_owned();
    assert!(status.contains("server is full"), "the page should show the server's reason, shows: {status}");
    let workspace_target = workspace_dir().join("target");
    std::fs::create_dir_all(&workspace_target)?;
    browser.screenshot(&page, &workspace_target.join("arena-browser-rejected.png")).await?;
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_page_connects_over_wss_by_itself() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    let config = config(dist, 16).with(|c| {
        c.net.tls_cert = Some(cert);
        c.net.tls_key = Some(key);
    });
    let server = TestServer::start(config).await?;
    // The certificate is the test's own; Chromium is told not to check it.
    let mut browser = Browser::launch_with(&["--ignore-certificate-errors"]).await?;
    let page =
        open_connected(&mut browser, &format!("https://127.0.0.1:{}/?name=secure&play", server.addr.port()))
            .await?;
    let url = browser.eval(&page, "location.protocol").await?;
    assert_eq!(url.as_str(), Some("https:"), "the page came over HTTPS");
    // The server speaks only TLS: a connected page is one that chose wss: itself.
    assert_eq!(server.metric("arena_players").await.ok(), None, "plain HTTP is not served on a TLS port");
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_page_comes_back_as_the_same_player() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 16)).await?;
    let (mut observer, _) = server.player("observer").await?;
    // The observer keeps reading (a silent client is dropped) and records
    // what happens to other players' seats.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let watching = tokio::spawn(async move {
        while let Ok(Incoming::Msg(msg)) = observer.recv().await {
            let event = match msg {
                ServerMsg::Away { id } => ("away", id),
                ServerMsg::Back { id } => ("back", id),
                ServerMsg::Left { id } => ("left", id),
                _ => continue,
            };
            let _ = seen_tx.send(event);
        }
    });
    let mut browser = Browser::launch().await?;
    let page = open_connected(&mut browser, &format!("http://{}/?name=reloader&play", server.addr)).await?;
    let before = snapshot(&mut browser, &page).await?;
    let you = before["you"].as_u64().expect("the page knows its id");
    assert_eq!(before["room"].as_str().map(str::len), Some(10), "the page shows its room: {before}");

    browser.reload(&page).await?;
    let same_player = connected_as(you);
    browser.wait_for(&page, &same_player, Duration::from_secs(90)).await?;
    let after = snapshot(&mut browser, &page).await?;
    assert_eq!(after["room"], before["room"], "the same room");
    // The observer saw the seat held and taken back, never a leave.
    let mut events = Vec::new();
    while let Ok(event) = seen.try_recv() {
        if u64::from(event.1) == you {
            events.push(event.0);
        }
    }
    assert_eq!(events, ["away", "back"], "the reload should hold the seat and resume it, not leave it");
    watching.abort();
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_screen_opens_a_private_room_whose_link_brings_a_friend() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 16)).await?;
    let mut browser = Browser::launch().await?;
    let host = browser.open(&format!("http://{}/", server.addr)).await?;
    browser.wait_for(&host, "document.body.dataset.state === 'landing'", Duration::from_secs(90)).await?;
    browser.screenshot(&host, &workspace_dir().join("target/arena-browser-landing.png")).await?;
    assert_eq!(server.players().await?, 0, "nobody joins before choosing");

    browser.eval(&host, "document.getElementById('create').click(), true").await?;
    let private_and_connected =
        "document.body.dataset.state === 'connected' && document.body.dataset.private === '1'";
    browser.wait_for(&host, private_and_connected, Duration::from_secs(30)).await?;
    let room = snapshot(&mut browser, &host).await?["room"].as_str().unwrap_or_default().to_owned();
    let link = browser.eval(&host, "document.getElementById('invite-link').href").await?;
    let link = link.as_str().unwrap_or_default().to_owned();
    assert!(link.ends_with(&format!("/r/{room}")), "the invite link leads to the room: {link} ({room})");
    let listed = http_get(server.addr, "/api/rooms", &[]).await?;
    assert_eq!(String::from_utf8_lossy(&listed.body), "[]", "a private room is not listed");
    browser.screenshot(&host, &workspace_dir().join("target/arena-browser-private-room.png")).await?;

    // A friend opens the link: same room, and each sees the other.
    let friend = browser.open(&link).await?;
    browser.wait_for(&friend, TWO_ONLINE, Duration::from_secs(90)).await?;
    assert_eq!(snapshot(&mut browser, &friend).await?["room"], room.as_str(), "the friend is in the room");
    browser.wait_for(&host, TWO_ONLINE, Duration::from_secs(30)).await?;

    // A link to a room that is gone says so, and offers a new room.
    let stale = browser.open(&format!("http://{}/r/nosuchroom", server.addr)).await?;
    browser.wait_for(&stale, "document.body.dataset.state === 'room-gone'", Duration::from_secs(90)).await?;
    let offer = browser.eval(&stale, "document.getElementById('new-room').getAttribute('href')").await?;
    assert_eq!(offer.as_str(), Some("/?create"), "the room-gone screen offers a new room");
    browser.screenshot(&stale, &workspace_dir().join("target/arena-browser-room-gone.png")).await?;
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_connection_is_cut_comes_back_as_the_same_player() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 16)).await?;
    // The page reaches the server through a relay the test can cut, as a
    // Wi-Fi blink would: no close frame, the socket just dies.
    let relay = Relay::start(server.addr).await?;
    let mut browser = Browser::launch().await?;
    let page = open_connected(&mut browser, &format!("http://{}/?name=blinker&play", relay.addr)).await?;
    let you = snapshot(&mut browser, &page).await?["you"].as_u64().expect("an id");

    relay.cut();
    let same_player = connected_as(you);
    browser.wait_for(&page, "document.body.dataset.state !== 'connected'", Duration::from_secs(30)).await?;
    browser.wait_for(&page, &same_player, Duration::from_secs(60)).await?;
    assert_eq!(server.players().await?, 1, "one player, back in its seat, not a second one");
    browser.close().await;
    server.stop().await
}

/// Whether `flag` (a `data-*` attribute on `<body>`) is "1".
fn body_flag(flag: &str) -> String {
    format!("document.body.dataset.{flag} === '1'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_join_screen_comes_first_and_a_touch_drag_moves_the_player() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 16)).await?;
    let mut browser = Browser::launch().await?;
    let page = browser.open_phone(&format!("http://{}/", server.addr)).await?;
    browser.wait_for(&page, "document.body.dataset.state === 'landing'", Duration::from_secs(90)).await?;
    let canvas_hidden = browser
        .eval(&page, "getComputedStyle(document.getElementById('arena-canvas')).visibility === 'hidden'")
        .await?;
    assert_eq!(canvas_hidden, Value::Bool(true), "the canvas appears only after Play");
    let width = browser.eval(&page, "document.documentElement.scrollWidth <= innerWidth").await?;
    assert_eq!(width, Value::Bool(true), "nothing scrolls sideways on a phone");
    assert_eq!(server.players().await?, 0, "nobody joins before Play");

    // Type a name, pick a colour, press Enter.
    browser
        .eval(
            &page,
            "document.getElementById('name-input').value = 'thumbs'; \
             document.querySelector('#colors [data-color=\"4\"]').click(); \
             document.getElementById('name-input').focus(), true",
        )
        .await?;
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-join.png")).await?;
    browser.key(&page, true, "Enter", "Enter", 13).await?;
    browser.key(&page, false, "Enter", "Enter", 13).await?;
    browser.wait_for(&page, CONNECTED, Duration::from_secs(60)).await?;
    let me = snapshot(&mut browser, &page).await?;
    assert_eq!(me["name"], "thumbs", "the typed name is the player's: {me}");
    assert_eq!(me["color"], 4, "with the picked colour");
    // Framed for the phone: a player (40 world units) is about 40 px across
    // on its 390 px-wide screen, not the 22 px that fitting 720 units gave.
    let player_px = me["px_per_unit"].as_f64().unwrap_or(0.0) * 40.0;
    assert!(player_px >= 38.0, "a player should be ~40 px across on a phone, is {player_px:.1} px: {me}");
    let you = me["you"].as_u64().expect("an id") as PlayerId;
    let remembered = browser.eval(&page, "localStorage.getItem('arena-name')").await?;
    assert_eq!(remembered.as_str(), Some("thumbs"), "the name is remembered for next time");

    // A drag on the left half is the stick: an observer sees the player move down.
    let moved = hold_down(&mut browser, &page, &server, you, Control::TouchDrag, (1.0, 60.0)).await?;
    assert!(moved > 60.0, "a 1 s touch drag should move the player down, moved {moved:.1}");
    let touch_shown = browser.eval(&page, "document.body.dataset.touch === '1'").await?;
    assert_eq!(touch_shown, Value::Bool(true), "touch controls appear once touched");
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-phone.png")).await?;
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_in_the_browser_knockouts_overlay_and_podium() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let config = config(dist, 8).with(|c| {
        c.game.round_secs = 12;
        c.game.podium_secs = 6;
    });
    let server = TestServer::start(config).await?;
    let brawlers =
        tokio::spawn(run_swarm(bots(&server, 4, Behaviour::Brawler, "brawler-"), Live::default().into()));
    let mut browser = Browser::launch().await?;
    let page = open_connected(&mut browser, &format!("http://{}/?name=player&play", server.addr)).await?;
    browser
        .wait_for(
            &page,
            "document.getElementById('lb-4').textContent !== '' && \
             document.getElementById('timer').textContent.startsWith('Round 1')",
            Duration::from_secs(20),
        )
        .await?;
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-game.png")).await?;

    // Walk off the edge: the page says so and counts down to the respawn.
    browser.eval(&page, "document.getElementById('arena-canvas').focus(), true").await?;
    browser.key(&page, true, "d", "KeyD", 68).await?;
    let fell = browser.wait_for(&page, &body_flag("knockedOut"), Duration::from_secs(15)).await;
    browser.key(&page, false, "d", "KeyD", 68).await?;
    fell?;
    let overlay = browser.eval(&page, "document.getElementById('overlay').textContent").await?;
    let overlay = overlay.as_str().unwrap_or_default().to_owned();
    assert!(
        overlay.contains("back in") && (overlay.contains("Knocked out by") || overlay.contains("fell off")),
        "the overlay says what happened and when you are back: {overlay}"
    );
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-knocked-out.png")).await?;
    let feed = snapshot(&mut browser, &page).await?["feed"].clone();
    assert!(feed.as_array().is_some_and(|f| !f.is_empty()), "the kill feed shows it: {feed}");

    // The round ends: the podium, with the top three and your place.
    browser.wait_for(&page, &body_flag("podium"), Duration::from_secs(20)).await?;
    let first = browser.eval(&page, "document.getElementById('podium-1').textContent").await?;
    assert!(
        first.as_str().is_some_and(|t| t.starts_with("1st ") && t.contains(" point")),
        "the winner is on the podium: {first}"
    );
    let place = browser.eval(&page, "document.getElementById('your-place').textContent").await?;
    assert!(place.as_str().is_some_and(|t| t.starts_with("You placed #")), "and your place: {place}");
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-podium.png")).await?;
    // Then round 2 starts from zero.
    browser
        .wait_for(
            &page,
            "document.body.dataset.podium === '0' && \
             JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot).round === 2",
            Duration::from_secs(15),
        )
        .await?;
    brawlers.abort();
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_takes_a_link_conditioner_from_its_address() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 16)).await?;
    let mut browser = Browser::launch().await?;
    let page =
        open_connected(&mut browser, &format!("http://{}/?name=faraway&play&lag=240&jitter=20", server.addr))
            .await?;
    // The round trip includes the simulated 240 ms (± 20 ms); alone, nothing
    // is mispredicted however late the frames come.
    browser
        .wait_for(
            &page,
            "(JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot).ping_ms || 0) >= 200",
            Duration::from_secs(20),
        )
        .await?;
    let me = snapshot(&mut browser, &page).await?;
    let you = me["you"].as_u64().expect("an id") as PlayerId;
    let moved = hold_down(&mut browser, &page, &server, you, Control::KeyS, (1.0, 60.0)).await?;
    assert!(moved > 60.0, "inputs still arrive through the lag: moved {moved:.1}");
    let after = snapshot(&mut browser, &page).await?;
    // The page moves messages through the lag once per drawn frame, and
    // software rendering draws slowly: allow two frames each way.
    let bound = 260.0 + 4.0 * after["frame_ms"].as_f64().unwrap_or(0.0);
    let ping = after["ping_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(ping < bound, "but not much more than asked: {ping:.0} ms (bound {bound:.0}): {after}");
    assert_eq!(after["corrections"]["corrected"], 0, "prediction still exact: {}", after["corrections"]);
    browser.close().await;
    server.stop().await
}

/// Redis and `count` nodes serving the built page from `dist`, with short
/// leases and frequent saves, knowing each other.
async fn page_serving_nodes(
    dist: &std::path::Path,
    count: usize,
) -> anyhow::Result<(RedisServer, Vec<Node>)> {
    let redis = RedisServer::start().await?;
    let dist = dist.to_string_lossy().into_owned();
    let args = ["--web-dir", dist.as_str(), "--lease-ms", "1000", "--checkpoint-ms", "200"];
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        nodes.push(Node::start(NODE, &redis.url(), &args).await?);
    }
    knowing_each_other(&nodes.iter().collect::<Vec<_>>()).await?;
    Ok((redis, nodes))
}

/// The page's count of `Welcome`s (`data-welcomes`), in a JS expression.
const WELCOMES: &str = "Number(document.body.dataset.welcomes || 0)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_follows_its_link_to_the_node_that_runs_the_room_and_survives_its_drain() -> anyhow::Result<()>
{
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let (_redis, nodes) = page_serving_nodes(&dist, 3).await?;
    let [a, mut b, c] = <[Node; 3]>::try_from(nodes).map_err(|_| anyhow::anyhow!("three nodes"))?;
    let mut browser = Browser::launch().await?;

    // The host opens a private room on B.
    let host = open_connected(&mut browser, &format!("{}/?create&name=host", b.url())).await?;
    let room = snapshot(&mut browser, &host).await?["room"].as_str().unwrap_or_default().to_owned();
    assert_eq!(room.len(), 10, "a private room on B");

    // A friend opens the invite link on A: the page follows A's Moved to B.
    let friend = browser.open(&format!("{}/r/{room}?name=friend", a.url())).await?;
    browser.wait_for(&friend, TWO_ONLINE, Duration::from_secs(90)).await?;
    let before = snapshot(&mut browser, &friend).await?;
    assert_eq!(before["room"], room.as_str(), "the friend is in B's room: {before}");
    let you = before["you"].as_u64().expect("an id");
    let b_players = http_get(b.addr(), "/healthz", &[]).await?;
    let b_players: Value = serde_json::from_slice(&b_players.body)?;
    assert_eq!(b_players["players"], 2, "both play on B");

    // B drains (a deploy): the room moves, and the page goes with it as the
    // same player, in the same room, beside the same host.
    let welcomed = browser.eval(&friend, WELCOMES).await?.as_u64().unwrap_or_default();
    assert!(welcomed >= 1);
    let exit = b.terminate(Duration::from_secs(15)).await?;
    assert_eq!(exit, Some(0), "B drained and exited 0");
    arena_tests::eventually("both players on A or C", Duration::from_secs(30), async || {
        let mut elsewhere = 0;
        for node in [&a, &c] {
            let health: Value = serde_json::from_slice(&http_get(node.addr(), "/healthz", &[]).await?.body)?;
            elsewhere += health["players"].as_u64().unwrap_or(0);
        }
        Ok((elsewhere == 2, elsewhere))
    })
    .await?;
    // Until the page has seen B's socket close (software rendering draws a
    // frame in 100 ms or more), its state is still B's: wait for it to have
    // been welcomed again (by the room's new node). Its "connected" may not
    // even flicker: the move can be over between two refreshes of the page.
    let same_player_with_host =
        format!("{WELCOMES} > {welcomed} && ({}) && ({TWO_ONLINE})", connected_as(you));
    browser.wait_for(&friend, &same_player_with_host, Duration::from_secs(30)).await?;
    let after = snapshot(&mut browser, &friend).await?;
    assert_eq!(after["room"], room.as_str(), "the same room after the drain: {after}");
    browser.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_node_died_for_good_plays_on_through_another_node() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let (_redis, nodes) = page_serving_nodes(&dist, 2).await?;
    let [a, mut b] = <[Node; 2]>::try_from(nodes).map_err(|_| anyhow::anyhow!("two nodes"))?;
    let mut browser = Browser::launch().await?;

    // The page is B's, and plays on B; it has learned the cluster's nodes.
    let page = open_connected(&mut browser, &format!("{}/?create&name=host", b.url())).await?;
    let before = snapshot(&mut browser, &page).await?;
    let (room, you) =
        (before["room"].as_str().unwrap_or_default().to_owned(), before["you"].as_u64().expect("an id"));
    browser.wait_for(&page, "document.body.dataset.nodes === '2'", Duration::from_secs(30)).await?;
    let welcomed = browser.eval(&page, WELCOMES).await?.as_u64().unwrap_or_default();

    // B dies and never comes back: the page finds A, which restores the
    // room, and plays on as the same player in the same room.
    b.kill().await?;
    let same_player = format!("{WELCOMES} > {welcomed} && ({})", connected_as(you));
    browser.wait_for(&page, &same_player, Duration::from_secs(30)).await?;
    let after = snapshot(&mut browser, &page).await?;
    assert_eq!(after["room"], room.as_str(), "the same room: {after}");
    let health: Value = serde_json::from_slice(&http_get(a.addr(), "/healthz", &[]).await?.body)?;
    assert_eq!(health["players"], 1, "playing on A now: {health}");
    browser.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_page_drains_a_node_and_its_room_moves() -> anyhow::Result<()> {
    if dist().is_none() {
        return Ok(());
    }
    let _one = ONE_BROWSER.lock().await;
    let redis = RedisServer::start().await?;
    let args = ["--admin-token", arena_tests::ADMIN_TOKEN, "--lease-ms", "1000", "--checkpoint-ms", "200"];
    let a = Node::start(NODE, &redis.url(), &args).await?;
    let b = Node::start(NODE, &redis.url(), &args).await?;
    knowing_each_other(&[&a, &b]).await?;
    let b_id = {
        let cluster: Value = serde_json::from_slice(&http_get(b.addr(), "/api/cluster", &[]).await?.body)?;
        cluster["node"].as_str().expect("B's id").to_owned()
    };
    // Six bots play in a private room on B.
    let plan = SwarmConfig {
        url: b.ws_url(),
        count: 6,
        duration: Duration::from_secs(30),
        behaviour: Behaviour::Brawler,
        name_prefix: "op-".into(),
        tls: None,
        rooms: RoomPlan::Spread(1),
        conditions: Default::default(),
        reconnect: Some(Duration::from_secs(10)),
        light: false,
    };
    let swarm = tokio::spawn(run_swarm(plan, std::sync::Arc::new(Live::default())));

    // The page on A, the token handed over in its address.
    let mut browser = Browser::launch().await?;
    let page = browser.open(&format!("{}/admin#token={}", a.url(), arena_tests::ADMIN_TOKEN)).await?;
    let b_section = format!("document.querySelector('section.node[data-node=\"{b_id}\"]')");
    let room_on_b = format!(
        "document.body.dataset.state === 'ok' && !!{b_section} && {b_section}.querySelectorAll('tr.room').length === 1 && {b_section}.querySelector('tr.room td.players').textContent === '6'"
    );
    browser.wait_for(&page, &room_on_b, Duration::from_secs(60)).await?;
    let token_hidden = browser
        .eval(&page, "location.hash === '' && !document.body.textContent.includes('test-admin-token')")
        .await?;
    assert_eq!(token_hidden, Value::Bool(true), "the token leaves the address and the page");
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-admin.png")).await?;

    // Drain B from the page: one click arms the button, the second sends.
    let drain = format!("{b_section}.querySelector('button.drain').click(), true");
    browser.eval(&page, &drain).await?;
    browser.eval(&page, &drain).await?;
    let a_section = format!("document.querySelector('section.node:not([data-node=\"{b_id}\"])')");
    let moved = format!(
        "!!{a_section} && {a_section}.querySelectorAll('tr.room').length === 1 && !!{b_section} && {b_section}.querySelectorAll('tr.room').length === 0 && !!{b_section}.querySelector('.draining')"
    );
    browser.wait_for(&page, &moved, Duration::from_secs(30)).await?;
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-admin-drained.png")).await?;
    browser.close().await;

    let records = swarm.await?;
    for record in &records {
        assert!(
            record.outcome == arena_bots::Outcome::Completed
                && record.players_lost == 0
                && record.reconnects >= 1,
            "every bot followed its room to A: {record:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_screen_works_before_the_game_has_loaded() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 16)).await?;
    let mut browser = Browser::launch().await?;
    // 1 MB/s: the 2.9 MB game takes about three seconds to arrive.
    let page = browser.open_throttled(&format!("http://{}/", server.addr), 1_000_000).await?;
    let early = "document.body.dataset.state === 'landing' && document.body.dataset.load !== 'ready'";
    browser.wait_for(&page, early, Duration::from_secs(10)).await?;
    let loading = browser.eval(&page, "document.getElementById('load-text').textContent").await?;
    assert!(loading.as_str().is_some_and(|text| text.starts_with("Loading the game")), "{loading}");
    browser
        .eval(
            &page,
            "document.getElementById('name-input').value = 'early bird', \
             document.getElementById('play').click(), true",
        )
        .await?;
    let queued = browser
        .eval(&page, "document.body.dataset.choice + ' ' + (document.body.dataset.load === 'ready')")
        .await?;
    assert_eq!(queued.as_str(), Some("quick false"), "Play pressed while the game still loads is kept");
    browser.wait_for(&page, CONNECTED, Duration::from_secs(90)).await?;
    let playing = snapshot(&mut browser, &page).await?;
    assert_eq!(playing["name"], "early bird", "the queued choice joined with its name: {playing}");
    browser.close().await;
    server.stop().await
}

/// A fake gamepad the page's `navigator.getGamepads()` returns: a standard
/// pad with its left stick at (`window.__pad.axes[0]`, `[1]`) and 17
/// buttons (`window.__pad.buttons[i].pressed`).
const FAKE_GAMEPAD: &str = "window.__pad = { connected: true, axes: [0, 0, 0, 0], \
    buttons: Array.from({ length: 17 }, () => ({ pressed: false, value: 0 })) }; \
    navigator.getGamepads = () => [window.__pad, null, null, null]; true";

/// The page's snapshot field `path` (a JS expression on it).
fn snap(path: &str) -> String {
    format!("JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{{}}').{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sounds_follow_a_gesture_mute_is_remembered_and_a_gamepad_moves_dashes_and_opens_the_menu()
-> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    // 64 seats: a platform 650 units across, room for two dashes.
    let server = TestServer::start(config(dist, 64)).await?;
    let mut browser = Browser::launch().await?;
    let page = open_connected(&mut browser, &format!("http://{}/?name=listener&play", server.addr)).await?;
    browser.wait_for(&page, &format!("{} !== null", snap("predicted")), Duration::from_secs(10)).await?;
    let before = snapshot(&mut browser, &page).await?;
    assert_eq!(before["audio"]["state"], "none", "no sound before a gesture: {}", before["audio"]);
    // Every move and dash here heads for the middle, so nobody falls.
    let inward =
        |snapshot: &Value| if snapshot["predicted"][0].as_f64().unwrap_or(0.0) > 0.0 { -1.0 } else { 1.0 };

    // A key is the page's first gesture: the dash it makes is heard.
    browser.eval(&page, "document.getElementById('arena-canvas').focus(), true").await?;
    let (key, code, key_code) = if inward(&before) < 0.0 { ("a", "KeyA", 65) } else { ("d", "KeyD", 68) };
    browser.key(&page, true, key, code, key_code).await?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    browser.key(&page, true, " ", "Space", 32).await?;
    browser.key(&page, false, " ", "Space", 32).await?;
    browser.key(&page, false, key, code, key_code).await?;
    browser.wait_for(&page, &format!("{} >= 1", snap("audio.played")), Duration::from_secs(10)).await?;
    let heard = snapshot(&mut browser, &page).await?;
    assert_eq!(
        heard["audio"]["state"], "running",
        "the AudioContext runs after the gesture: {}",
        heard["audio"]
    );

    // Muted (the HUD's button), remembered, and nothing more is scheduled.
    browser.eval(&page, "document.getElementById('mute').click(), true").await?;
    assert_eq!(browser.eval(&page, "localStorage.getItem('arena-muted')").await?, "1", "mute is remembered");

    // A gamepad: the left stick moves, A dashes (unheard while muted).
    browser.wait_for(&page, &format!("{} >= 1", snap("dash_ready")), Duration::from_secs(10)).await?;
    let ready = snapshot(&mut browser, &page).await?;
    let played = ready["audio"]["played"].as_u64();
    let (x0, toward) = (ready["predicted"][0].as_f64().unwrap_or(0.0), inward(&ready));
    browser.eval(&page, FAKE_GAMEPAD).await?;
    browser.eval(&page, &format!("window.__pad.axes[0] = {toward}, true")).await?;
    let moved = format!("({} - {x0}) * {toward} > 30", snap("predicted[0]"));
    browser
        .wait_for(&page, &moved, Duration::from_secs(10))
        .await
        .context("the left stick moves the player")?;
    browser.eval(&page, "window.__pad.buttons[0].pressed = true").await?;
    browser
        .wait_for(&page, &format!("{} < 1", snap("dash_ready")), Duration::from_secs(10))
        .await
        .context("A dashes")?;
    browser.eval(&page, "window.__pad.buttons[0].pressed = false, window.__pad.axes[0] = 0, true").await?;
    let dashed = snapshot(&mut browser, &page).await?;
    assert_eq!(
        dashed["audio"]["played"].as_u64(),
        played,
        "muted, nothing is scheduled: {}",
        dashed["audio"]
    );
    assert_eq!(
        dashed["corrections"]["corrected"], 0,
        "gamepad inputs predicted exactly: {}",
        dashed["corrections"]
    );

    // Start opens the menu, and again closes it.
    for open in ["1", "0"] {
        browser.eval(&page, "window.__pad.buttons[9].pressed = true").await?;
        let menu = format!("document.body.dataset.menu === '{open}'");
        browser.wait_for(&page, &menu, Duration::from_secs(5)).await.context("Start toggles the menu")?;
        browser.eval(&page, "window.__pad.buttons[9].pressed = false").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A reload keeps the page muted.
    browser.eval(&page, "window.__old = true, location.reload(), true").await?;
    let reloaded = format!("!window.__old && {CONNECTED}");
    browser.wait_for(&page, &reloaded, Duration::from_secs(90)).await?;
    assert_eq!(browser.eval(&page, "document.body.dataset.muted").await?, "1");
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_screen_watches_a_public_room_and_keys_switch_whom_it_follows() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 8)).await?;
    // Bots that stand where they spawned: a click on one lands where its
    // tag said it was, however slowly the page draws. (Wanderers on this
    // small platform cross their reach between one drawn frame and the next
    // when software rendering is slow, and fall half the time: with them, a
    // click missed often enough that twenty tries sometimes all did.)
    let sitters =
        tokio::spawn(run_swarm(bots(&server, 3, Behaviour::Idle, "sitter-"), Live::default().into()));
    eventually("three bots play", Duration::from_secs(30), async || {
        let players = server.players().await?;
        Ok((players == 3, players))
    })
    .await?;
    let mut browser = Browser::launch().await?;
    let page = browser.open(&format!("http://{}/", server.addr)).await?;
    browser.wait_for(&page, "!document.getElementById('watch').hidden", Duration::from_secs(90)).await?;
    browser.eval(&page, "document.getElementById('watch').click(), true").await?;
    let watching_three = format!(
        "document.body.dataset.state === 'connected' && document.body.dataset.watching === '1' && \
         {} === true && {}.filter((p) => p.x !== null).length === 3 && {} > 0",
        snap("watching"),
        snap("players"),
        snap("camera_on"),
    );
    browser.wait_for(&page, &watching_three, Duration::from_secs(90)).await?;
    let seen = snapshot(&mut browser, &page).await?;
    assert_eq!(seen["you"], 0, "a watcher has no player");
    assert_eq!(seen["watchers"], 1);
    assert!(seen["players"].as_array().is_some_and(|all| all.iter().all(|p| p["you"] == false)));
    assert_eq!(server.players().await?, 3, "watching takes no seat");
    let score = browser.eval(&page, "document.getElementById('score').textContent").await?;
    assert!(score.as_str().is_some_and(|s| s.starts_with("Watching sitter-")), "{score}");
    let dash_shown = "getComputedStyle(document.getElementById('dash-meter')).display !== 'none'";
    assert_eq!(browser.eval(&page, dash_shown).await?, false, "a watcher has no dash meter");
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-watching.png")).await?;

    // → follows the next player.
    let first = seen["camera_on"].as_u64().unwrap_or_default();
    browser.eval(&page, "document.getElementById('arena-canvas').focus(), true").await?;
    browser.key(&page, true, "ArrowRight", "ArrowRight", 39).await?;
    browser.key(&page, false, "ArrowRight", "ArrowRight", 39).await?;
    let moved_on = format!("{} !== {first} && {} > 0", snap("camera_on"), snap("camera_on"));
    browser.wait_for(&page, &moved_on, Duration::from_secs(15)).await?;
    // A click on another player follows that one: the circle is under its
    // name tag (whose bottom sits PLAYER_RADIUS + 6 world units above it).
    // Still, a few tries (a frame may be drawn between the look and the click). The
    // camera follows a chosen player now (→ chose one), so only the click
    // moves it.
    let target = format!(
        "(() => {{ const s = {snapshot}; \
         for (const p of s.players || []) {{ \
           if (p.id === s.camera_on || p.id === s.leader || p.x === null || (p.life !== 'Alive' && p.life !== 'Protected')) continue; \
           const tag = [...document.querySelectorAll('#names span')].find((t) => t.textContent === p.name && !t.hidden); \
           if (tag) {{ const r = tag.getBoundingClientRect(); \
             return [p.id, r.left + r.width / 2, r.bottom + {offset} * s.px_per_unit]; }} }} \
         return null; }})()",
        snapshot = "JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{}')",
        offset = arena_shared::sim::PLAYER_RADIUS + 6,
    );
    let mut followed = false;
    for _ in 0..20 {
        let found = browser.eval(&page, &target).await?;
        if let (Some(id), Some(x), Some(y)) = (found[0].as_u64(), found[1].as_f64(), found[2].as_f64()) {
            browser.click(&page, x, y).await?;
            let on = format!("{} === {id}", snap("camera_on"));
            if browser.wait_for(&page, &on, Duration::from_secs(3)).await.is_ok() {
                followed = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(followed, "a click on a player should follow it");
    // L: back to the leader, whom the clicked player is not (it was chosen so).
    let on_leader = format!("{} === {} && {} > 0", snap("camera_on"), snap("leader"), snap("camera_on"));
    assert_eq!(browser.eval(&page, &on_leader).await?, false, "following the clicked player, not the leader");
    browser.key(&page, true, "l", "KeyL", 76).await?;
    browser.key(&page, false, "l", "KeyL", 76).await?;
    browser.wait_for(&page, &on_leader, Duration::from_secs(15)).await?;

    sitters.abort();
    browser.close().await;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_panel_sets_the_rules_and_kicks_a_second_page_s_player() -> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    // 45 s rounds: a length the panel does not list, so it adds it.
    let server = TestServer::start(config(dist, 16).with(|c| c.game.round_secs = 45)).await?;
    let mut browser = Browser::launch().await?;
    let host = browser.open(&format!("http://{}/?create&name=hoster", server.addr)).await?;
    let hosting = format!("{CONNECTED} && document.body.dataset.host === '1' && {} > 0", snap("host"));
    browser.wait_for(&host, &hosting, Duration::from_secs(90)).await?;
    let room = snapshot(&mut browser, &host).await?["room"].as_str().unwrap_or_default().to_owned();
    let guest = browser.open(&format!("http://{}/r/{room}?name=guesty", server.addr)).await?;
    browser.wait_for(&guest, TWO_ONLINE, Duration::from_secs(90)).await?;
    assert_eq!(
        browser.eval(&guest, "document.body.dataset.host").await?,
        "0",
        "the guest does not host, and sees no panel"
    );

    // The host opens its panel from the header and sets the next rounds.
    browser.eval(&host, "document.getElementById('host-open').click(), true").await?;
    let listed =
        "[...document.querySelectorAll('#host-players li span')].some((s) => s.textContent === 'guesty')";
    browser
        .wait_for(&host, &format!("document.body.dataset.menu === '1' && {listed}"), Duration::from_secs(15))
        .await?;
    assert_eq!(browser.eval(&host, "document.getElementById('host-round').value").await?, "45");
    let named = "document.getElementById('host-name').textContent === 'Hosted by hoster'";
    browser.wait_for(&guest, named, Duration::from_secs(5)).await?;
    browser
        .eval(
            &host,
            "(() => { const s = document.getElementById('host-points'); s.value = '5'; \
             s.dispatchEvent(new Event('change')); return true; })()",
        )
        .await?;
    let rules_set = format!("{}[1] === 5 && {}[0] === 45", snap("rules"), snap("rules"));
    browser.wait_for(&guest, &rules_set, Duration::from_secs(15)).await?;
    browser.screenshot(&host, &workspace_dir().join("target/arena-browser-host.png")).await?;

    // Kick: the guest's page says why and stays out; the server counts one.
    browser
        .eval(&host, "document.querySelector('#host-players button[data-act=\"kick\"]').click(), true")
        .await?;
    let kicked = "document.body.dataset.state === 'rejected' && document.body.dataset.stuck === '1' && \
                  document.getElementById('stuck-reason').textContent.startsWith('The host removed you') && \
                  getComputedStyle(document.getElementById('stuck')).display === 'flex'";
    browser.wait_for(&guest, kicked, Duration::from_secs(15)).await?;
    eventually("the guest's seat to go", Duration::from_secs(10), async || {
        let players = server.players().await?;
        Ok((players == 1, players))
    })
    .await?;
    browser.screenshot(&guest, &workspace_dir().join("target/arena-browser-kicked.png")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.players().await?, 1, "the kicked page does not come back by itself");
    let again = browser.open(&format!("http://{}/r/{room}?name=guesty", server.addr)).await?;
    let banned = "document.body.dataset.state === 'rejected' && \
                  document.getElementById('status').textContent.includes('come back in 10 min')";
    browser.wait_for(&again, banned, Duration::from_secs(90)).await?;
    browser.close().await;
    server.stop().await
}

#[expect(clippy::too_many_lines, reason = "one player's story from page to page, told in order")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_podium_links_to_the_round_s_replay_which_plays_pauses_scrubs_and_speeds_up() -> anyhow::Result<()>
{
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 8).with(|c| {
        c.game.round_secs = 5;
        c.game.podium_secs = 6;
    }))
    .await?;
    let wanderers =
        tokio::spawn(run_swarm(bots(&server, 3, Behaviour::Wander, "wanderer-"), Live::default().into()));
    let mut browser = Browser::launch().await?;
    let game = browser.open(&format!("http://{}/?play&name=viewer", server.addr)).await?;
    // The podium offers the round just played.
    let offered = format!(
        "{CONNECTED} && document.body.dataset.podium === '1' && document.body.dataset.replayReady === '1' && \
         {} !== null && getComputedStyle(document.getElementById('replay-link')).display !== 'none'",
        snap("replay")
    );
    browser.wait_for(&game, &offered, Duration::from_secs(90)).await?;
    let link = browser.eval(&game, "document.getElementById('replay-link').href").await?;
    let link = link.as_str().unwrap_or_default().to_owned();
    let id = snapshot(&mut browser, &game).await?["replay"].as_str().unwrap_or_default().to_owned();
    assert!(link.ends_with(&format!("/replay/{id}")) && id.len() == 32, "{link} ({id})");
    eventually("the round to be stored", Duration::from_secs(10), async || {
        let status = http_get(server.addr, &format!("/api/replays/{id}"), &[]).await?.status;
        Ok((status == 200, status))
    })
    .await?;

    // The join screen offers the newest public round too (the same tab
    // goes there, then to the replay: one page renders at a time).
    let page = game;
    browser.navigate(&page, &format!("http://{}/", server.addr)).await?;
    let offered_there = "!document.getElementById('latest-replay').hidden && \
         /\\/replay\\/[0-9a-f]{32}$/.test(document.getElementById('latest-replay').href)";
    browser.wait_for(&page, offered_there, Duration::from_secs(90)).await?;

    // The replay: loaded, paused at tick 20 (whatever the frame rate of a
    // software renderer), the round's players drawn; then it runs.
    browser.navigate(&page, &link).await?;
    let replay = page;
    let loaded =
        format!("{CONNECTED} && document.body.dataset.replay === '1' && {} !== undefined", snap("tick"));
    browser.wait_for(&replay, &loaded, Duration::from_secs(90)).await?;
    let ticks =
        browser.eval(&replay, "Number(document.body.dataset.replayTicks)").await?.as_u64().unwrap_or(0);
    assert_eq!(ticks, 5 * 30, "a 5 s round");
    let tick = "Number(document.body.dataset.replayTick)";
    let scrub = |to: u32| {
        format!(
            "(() => {{ const s = document.getElementById('replay-scrub'); s.value = '{to}'; \
             s.dispatchEvent(new Event('input')); return true; }})()"
        )
    };
    // (A slow page may have reached the end, where it pauses by itself.)
    let pause = "(document.body.dataset.replayPaused !== '1' && document.getElementById('replay-play').click(), true)";
    browser.eval(&replay, pause).await?;
    browser.wait_for(&replay, "document.body.dataset.replayPaused === '1'", Duration::from_secs(5)).await?;
    browser.eval(&replay, &scrub(20)).await?;
    // The three wanderers opened the room; the viewer may have come later.
    let drawn = format!("{tick} === 20 && {}.filter((p) => p.x !== null).length >= 3", snap("players"));
    browser.wait_for(&replay, &drawn, Duration::from_secs(30)).await?;
    browser.screenshot(&replay, &workspace_dir().join("target/arena-browser-replay.png")).await?;
    browser.eval(&replay, "document.getElementById('replay-play').click(), true").await?;
    browser.wait_for(&replay, &format!("{tick} > 25"), Duration::from_secs(30)).await?;

    // Pause holds the tick; the scrub bar moves it.
    browser.eval(&replay, pause).await?;
    browser.wait_for(&replay, "document.body.dataset.replayPaused === '1'", Duration::from_secs(5)).await?;
    browser.eval(&replay, &scrub(10)).await?;
    browser.wait_for(&replay, &format!("{tick} === 10"), Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(browser.eval(&replay, tick).await?, 10, "paused: the tick holds");
    browser.eval(&replay, &scrub(120)).await?;
    browser.wait_for(&replay, &format!("{tick} === 120"), Duration::from_secs(10)).await?;
    // The round's clock is the game's: 30 ticks of 150 left is 0:01.
    let clock = "document.getElementById('timer').textContent.endsWith(' · 0:01')";
    browser.wait_for(&replay, clock, Duration::from_secs(5)).await?;
    browser.eval(&replay, &scrub(30)).await?;
    browser.wait_for(&replay, &format!("{tick} === 30"), Duration::from_secs(10)).await?;

    // 4×, playing: the rest of the round goes by in about a second, and the
    // replay stops on its podium.
    browser
        .eval(&replay, "document.querySelector('#replay-speeds [data-speed=\"4\"]').click(), true")
        .await?;
    browser.eval(&replay, "document.getElementById('replay-play').click(), true").await?;
    let ended = format!(
        "{tick} === {ticks} && document.body.dataset.replayPaused === '1' && {} !== null",
        snap("podium")
    );
    browser.wait_for(&replay, &ended, Duration::from_secs(20)).await?;
    let status = browser.eval(&replay, "document.getElementById('status').textContent").await?;
    assert!(status.as_str().is_some_and(|s| s.contains("4×")), "{status}");
    browser.screenshot(&replay, &workspace_dir().join("target/arena-browser-replay-podium.png")).await?;

    // A replay that is not kept says so.
    let gone = replay;
    browser.navigate(&gone, &format!("http://{}/replay/{}", server.addr, "0".repeat(32))).await?;
    let refused = "document.body.dataset.state === 'rejected' && \
                   document.getElementById('status').textContent.includes('not kept')";
    browser.wait_for(&gone, refused, Duration::from_secs(90)).await?;
    wanderers.abort();
    browser.close().await;
    server.stop().await
}

/// Each visible name tag over its player's circle, found in a screenshot
/// by the player's colour: the tag must be centred over the circle and
/// its bottom the name's offset above the circle's centre. Returns the CSS
/// pixels a world unit measures on screen (the circles' distances apart
/// on screen over their distances in the world), and how many circles
/// were checked.
async fn names_sit_over_their_circles(
    browser: &mut Browser,
    page: &Page,
    screen: Screen,
) -> anyhow::Result<(f64, usize)> {
    let seen = browser
        .eval(
            page,
            "(() => { const s = JSON.parse(document.getElementById('arena-snapshot').dataset.snapshot || '{}'); \
             const players = Object.fromEntries((s.players || []).map((p) => [p.name, p])); \
             const hud = ['hud', 'corner', 'timer', 'leaderboard', 'feed', 'dash-meter', 'dash-button'] \
               .map((id) => document.getElementById(id)).filter((e) => e && e.getClientRects().length > 0) \
               .map((e) => e.getBoundingClientRect()); \
             const clear = (l, t, r, b) => l >= 0 && t >= 0 && r <= innerWidth && b <= innerHeight && \
               hud.every((h) => h.right <= l || r <= h.left || h.bottom <= t || b <= h.top); \
             return { ratio: devicePixelRatio, tags: [...document.querySelectorAll('#names span:not([hidden])')] \
               .map((t) => { const r = t.getBoundingClientRect(); const x = r.left + r.width / 2; \
                 const p = players[t.textContent.replace(/ \\(you\\)$/, '')] || {}; \
                 return [t.textContent, p.color, x, r.bottom, p.x, p.y, clear(x - 40, r.bottom, x + 40, r.bottom + 100)]; }) }; })()",
        )
        .await?;
    let shot = browser.capture(page).await?;
    let ratio = seen["ratio"].as_f64().context("devicePixelRatio")?;
    if screen.ratio > 0.0 {
        assert_eq!(ratio, screen.ratio, "the page runs at the ratio asked for");
    }
    assert_eq!(f64::from(shot.width), f64::from(screen.width) * ratio, "the shot is in device pixels");
    let radius = f64::from(arena_shared::sim::PLAYER_RADIUS);
    let (mut checked, mut centres) = (0, Vec::new());
    for tag in seen["tags"].as_array().into_iter().flatten() {
        let (Some(text), Some(colour), Some(x), Some(bottom)) =
            (tag[0].as_str(), tag[1].as_u64(), tag[2].as_f64(), tag[3].as_f64())
        else {
            continue;
        };
        // A circle under the HUD, or past the page's edge, is not all in sight.
        if tag[6] != Value::Bool(true) {
            continue;
        }
        let colour = PALETTE[colour as usize];
        // Down from the tag's bottom centre to the circle's top and bottom.
        let column = (x * ratio).round() as i64;
        let start = (bottom * ratio).round() as i64;
        let reach = (200.0 * ratio) as i64;
        let is_player = |x: i64, y: i64| shot.rgb(x, y).is_some_and(|c| same_colour(c, colour, 8));
        let top = (start..start + reach).find(|&y| is_player(column, y)).with_context(|| {
            format!("no circle of {text}'s colour #{colour:06x} under its tag at ({x:.0}, {bottom:.0}) CSS px on {screen:?}")
        })?;
        let Some(end) = (top..top + reach).find(|&y| !is_player(column, y)) else { continue };
        let centre_y = (top + end) as f64 / 2.0;
        let left = (0..reach).take_while(|&d| is_player(column - d, centre_y as i64)).count() as f64;
        let right = (0..reach).take_while(|&d| is_player(column + d, centre_y as i64)).count() as f64;
        // Both runs count the column itself.
        let diameter = (left + right - 1.0) / ratio;
        let centre_x = column as f64 / ratio + (right - left) / 2.0 / ratio;
        let per_unit = diameter / (2.0 * radius);
        // The tag's bottom sits PLAYER_RADIUS + 6 world units above the centre.
        let gap = centre_y / ratio - bottom;
        let expected_gap = (radius + 6.0) * per_unit;
        anyhow::ensure!(
            (centre_x - x).abs() <= 2.0 && (gap - expected_gap).abs() <= 2.5,
            "{text}'s tag should sit centred {expected_gap:.1} px above its circle's centre on {screen:?}: \
             the circle is {:.1} px right of the tag's middle and {gap:.1} px below its bottom",
            centre_x - x
        );
        if let (Some(wx), Some(wy)) = (tag[4].as_f64(), tag[5].as_f64()) {
            centres.push(((centre_x, centre_y / ratio), (wx, wy)));
        }
        checked += 1;
    }
    let mut per_unit: Vec<f64> = Vec::new();
    for (i, (a, wa)) in centres.iter().enumerate() {
        for (b, wb) in &centres[i + 1..] {
            let world = (wa.0 - wb.0).hypot(wa.1 - wb.1);
            if world > 4.0 * radius {
                per_unit.push((a.0 - b.0).hypot(a.1 - b.1) / world);
            }
        }
    }
    per_unit.sort_by(f64::total_cmp);
    Ok((per_unit.get(per_unit.len() / 2).copied().unwrap_or(f64::NAN), checked))
}

/// The HUD's boxes that are showing, by id, in CSS pixels, and every pair
/// that overlaps or box that leaves the page.
async fn hud_layout(browser: &mut Browser, page: &Page) -> anyhow::Result<Value> {
    browser
        .eval(
            page,
            "(() => { const ids = ['hud', 'invite', 'me', 'timer', 'leaderboard', 'feed', 'dash-meter', \
               'dash-button', 'replay-bar']; \
             const boxes = ids.map((id) => [id, document.getElementById(id)]) \
               .filter(([, e]) => e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden') \
               .map(([id, e]) => { const r = e.getBoundingClientRect(); return [id, r.left, r.top, r.right, r.bottom]; }); \
             const overlaps = []; \
             for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) { \
               const [a, b] = [boxes[i], boxes[j]]; \
               if (a[1] < b[3] - 0.5 && b[1] < a[3] - 0.5 && a[2] < b[4] - 0.5 && b[2] < a[4] - 0.5) overlaps.push([a[0], b[0]]); } \
             const outside = boxes.filter((b) => b[1] < -0.5 || b[2] < -0.5 || b[3] > innerWidth + 0.5 || b[4] > innerHeight + 0.5) \
               .map((b) => b[0]); \
             return { shown: boxes.map((b) => b[0]), boxes, overlaps, outside }; })()",
        )
        .await
}

/// Checks the HUD on `screen`: every box in `expected` is showing, none
/// overlaps another, none leaves the page.
async fn hud_fits(
    browser: &mut Browser,
    page: &Page,
    screen: Screen,
    expected: &[&str],
) -> anyhow::Result<()> {
    let layout = hud_layout(browser, page).await?;
    let shown: Vec<&str> =
        layout["shown"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for id in expected {
        anyhow::ensure!(shown.contains(id), "#{id} should show on {screen:?}: {layout}");
    }
    anyhow::ensure!(
        layout["overlaps"].as_array().is_some_and(Vec::is_empty)
            && layout["outside"].as_array().is_some_and(Vec::is_empty),
        "no HUD box should overlap another or leave the page on {screen:?}: {layout}"
    );
    Ok(())
}

/// Moves `page` through a laptop at ratios 1 and 2, a tablet, and a phone
/// at ratios 3 and 1; on each, names must sit over their circles and the
/// HUD must fit. Returns each screen's CSS pixels per world unit.
async fn check_every_screen(browser: &mut Browser, page: &Page) -> anyhow::Result<Vec<f64>> {
    // A touch on a phone shows the dash button.
    let phone_touch = async |browser: &mut Browser, page: &Page| -> anyhow::Result<()> {
        browser.touch(page, "touchStart", 60.0, 500.0).await?;
        browser.touch(page, "touchEnd", 0.0, 0.0).await
    };
    let screens = [
        Screen::LAPTOP,
        Screen::LAPTOP.with_ratio(2.0),
        Screen::TABLET,
        Screen::PHONE,
        Screen::PHONE.with_ratio(1.0),
    ];
    let mut per_unit = Vec::new();
    for screen in screens {
        browser.set_screen(page, screen).await?;
        if screen.mobile {
            phone_touch(browser, page).await?;
        }
        // The camera eases to the new framing (about a second).
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let (units, checked) = names_sit_over_their_circles(browser, page, screen).await?;
        anyhow::ensure!(checked >= 2, "at least two players' circles seen on {screen:?}");
        per_unit.push(units);
        let touch_or_meter = if screen.mobile { "dash-button" } else { "dash-meter" };
        let shown = ["hud", "invite", "me", "timer", "leaderboard", touch_or_meter];
        hud_fits(browser, page, screen, &shown).await?;
    }
    Ok(per_unit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_every_pixel_ratio_names_sit_over_their_players_the_view_is_the_same_and_the_hud_fits()
-> anyhow::Result<()> {
    let Some(dist) = dist() else { return Ok(()) };
    let _one = ONE_BROWSER.lock().await;
    let server = TestServer::start(config(dist, 8)).await?;
    let mut browser = Browser::launch().await?;
    // A private room (its invite link shows) hosted under the longest name there is.
    let page = browser
        .open_on(&format!("http://{}/?create&name=Sixteen_letters_", server.addr), Screen::LAPTOP)
        .await?;
    browser.wait_for(&page, CONNECTED, Duration::from_secs(90)).await?;
    let room = snapshot(&mut browser, &page).await?["room"].as_str().context("a room code")?.to_owned();
    // Five who stand still, with names as long as names get.
    let still = SwarmConfig {
        rooms: RoomPlan::Join(room.clone()),
        ..bots(&server, 5, Behaviour::Idle, "standing_still_")
    };
    let standing = tokio::spawn(run_swarm(still, Live::default().into()));
    browser
        .wait_for(&page, "document.getElementById('lb-4').textContent !== ''", Duration::from_secs(20))
        .await?;

    let per_unit = check_every_screen(&mut browser, &page).await?;
    let same = |a: f64, b: f64| (a - b).abs() <= 0.03 * a.max(b);
    assert!(
        same(per_unit[0], per_unit[1]) && same(per_unit[3], per_unit[4]),
        "the same page shows the same world at any ratio (CSS px per world unit: laptop {:.3} and {:.3} \
         at ratios 1 and 2, phone {:.3} and {:.3} at 3 and 1)",
        per_unit[0],
        per_unit[1],
        per_unit[3],
        per_unit[4]
    );

    // The kill feed fills the bottom: walk off the edge, then look again.
    browser.set_screen(&page, Screen::LAPTOP).await?;
    browser.eval(&page, "document.getElementById('arena-canvas').focus(), true").await?;
    browser.key(&page, true, "d", "KeyD", 68).await?;
    let fell = browser.wait_for(&page, &body_flag("knockedOut"), Duration::from_secs(15)).await;
    browser.key(&page, false, "d", "KeyD", 68).await?;
    fell?;
    for screen in [Screen::PHONE, Screen::TABLET, Screen::LAPTOP.with_ratio(2.0)] {
        browser.set_screen(&page, screen).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let touch_or_meter = if screen.mobile { "dash-button" } else { "dash-meter" };
        let all = ["hud", "invite", "me", "timer", "leaderboard", "feed", touch_or_meter];
        hud_fits(&mut browser, &page, screen, &all).await?;
    }
    browser.screenshot(&page, &workspace_dir().join("target/arena-browser-retina.png")).await?;
    browser.close().await;

    // A browser whose screen really is ratio 2 (not emulated): the same.
    let mut retina = Browser::launch_with(&["--force-device-scale-factor=2"]).await?;
    let page = retina
        .open_on(&format!("http://{}/r/{room}?name=retina", server.addr), Screen::LAPTOP.with_ratio(0.0))
        .await?;
    retina.wait_for(&page, CONNECTED, Duration::from_secs(90)).await?;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (units, checked) =
        names_sit_over_their_circles(&mut retina, &page, Screen::LAPTOP.with_ratio(0.0)).await?;
    assert_eq!(retina.eval(&page, "devicePixelRatio").await?, 2.0, "a ratio-2 screen");
    assert!(
        checked >= 1 && same(units, per_unit[0]),
        "ratio 2 for real: {units:.3} CSS px per unit against {:.3}",
        per_unit[0]
    );
    retina.close().await;
    standing.abort();
    server.stop().await
}
