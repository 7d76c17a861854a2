//! Harness for arena's end-to-end tests: the real server on `127.0.0.1:0`,
//! real sockets, small helpers to speak HTTP and read close frames, and
//! [`browser`], headless Chromium over the DevTools protocol; [`redis`], a
//! real `redis-server` of the test's own; [`node`], a real `arena-server`
//! process, for a cluster's crash and drain drills.

pub mod browser;
pub mod frames;
pub mod node;
pub mod redis;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use arena_bots::ws::{ClientError, Incoming, WsClient};
use arena_bots::{Behaviour, Live, Outcome, Report, RoomPlan, SwarmConfig, run_swarm};
use arena_server::ServerConfig;
use arena_shared::netcode::ViewHistory;
use arena_shared::protocol::{PlayerId, Rejection, RoomRequest, ServerMsg, Welcome};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token every test server is started with, unless its config
/// sets another.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A server running in this process on an ephemeral loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The operators' listener (`--metrics-bind`), on its own port.
    pub operator: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> anyhow::Result<TestServer> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on a given address (to bring a server back on the same port).
    pub async fn start_on(addr: SocketAddr, config: ServerConfig) -> anyhow::Result<TestServer> {
        log_if_asked();
        let listener = TcpListener::bind(addr).await.with_context(|| format!("bind {addr}"))?;
        let addr = listener.local_addr()?;
        let operator_listener = TcpListener::bind("127.0.0.1:0").await.context("bind the operators' port")?;
        let operator = operator_listener.local_addr()?;
        let mut config = config;
        config.ops.admin_token.get_or_insert_with(|| ADMIN_TOKEN.to_owned());
        let (stop, stopped) = oneshot::channel::<()>();
        let task =
            tokio::spawn(arena_server::run_with_operator(listener, Some(operator_listener), config, async {
                let _ = stopped.await;
            }));
        Ok(TestServer { addr, operator, stop: Some(stop), task: Some(task) })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> anyhow::Result<WsClient> {
        Ok(WsClient::connect(&self.ws_url()).await?)
    }

    /// A client from 127.0.0.`source` (an address of its own, as the
    /// per-address limits and a host's kick count it) asking for `room`.
    pub async fn join_from(
        &self,
        source: u8,
        name: &str,
        room: RoomRequest,
    ) -> Result<(WsClient, Welcome), ClientError> {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, source));
        let mut client = arena_bots::ws::connect_from(&self.ws_url(), Some(from), false)
            .await
            .map_err(ClientError::Connect)?;
        let welcome = client.handshake_in(name, room).await?;
        Ok((client, welcome))
    }

    /// A client that completed the handshake as `name`.
    pub async fn player(&self, name: &str) -> anyhow::Result<(WsClient, arena_shared::protocol::Welcome)> {
        let mut client = self.client().await?;
        let welcome = client.handshake(name).await?;
        Ok((client, welcome))
    }

    /// Reads one counter from the public `/metrics`.
    pub async fn metric(&self, name: &str) -> anyhow::Result<u64> {
        read_metric(self.addr, name).await
    }

    /// Reads one series from `/metrics` as operators see it (per room).
    pub async fn operator_metric(&self, name: &str) -> anyhow::Result<u64> {
        read_metric(self.operator, name).await
    }

    /// Reads `players` from `/healthz`.
    pub async fn players(&self) -> anyhow::Result<u64> {
        let health = http_get(self.addr, "/healthz", &[]).await?;
        let json: serde_json::Value = serde_json::from_slice(&health.body)?;
        json["players"].as_u64().context("healthz should report players")
    }

    /// Reads `arena_kicks_total{reason="..."}`.
    pub async fn kicks(&self, reason: &str) -> anyhow::Result<u64> {
        self.metric(&format!("arena_kicks_total{{reason=\"{reason}\"}}")).await
    }

    /// Triggers graceful shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .context("server should stop within 10s")???;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// With `ARENA_TEST_LOG` set (an env filter such as `info`), in-process
/// servers log to the test's output: run a test with `--nocapture` to read
/// what the server did.
fn log_if_asked() {
    if let Ok(filter) = std::env::var("ARENA_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Says a test was skipped: on stderr, and as a line in the file named by
/// `ARENA_SKIP_LOG`, which `scripts/test.sh` counts into its totals so a
/// skip never passes for a pass.
pub fn skipped(why: &str) {
    eprintln!("SKIPPED: {why}");
    if let Some(path) = std::env::var_os("ARENA_SKIP_LOG") {
        use std::io::Write as _;
        let line = format!("{}: {why}\n", std::thread::current().name().unwrap_or("a test"));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!("cannot record the skip in {}: {e}", path.to_string_lossy());
        }
    }
}

/// Reads one series from the `/metrics` served at `addr`.
async fn read_metric(addr: SocketAddr, name: &str) -> anyhow::Result<u64> {
    let response = http_get(addr, "/metrics", &[]).await?;
    let body = String::from_utf8(response.body)?;
    body.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .with_context(|| format!("metric {name} missing"))?
        .trim()
        .parse()
        .context("metric value")
}

/// A player joined as `name` over a socket with a `recv_buffer`-byte
/// receive buffer, for a test to then never read from.
pub async fn non_reader(server: &TestServer, name: &str, recv_buffer: u32) -> anyhow::Result<WsClient> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(recv_buffer)?;
    let tcp = socket.connect(server.addr).await?;
    let mut client = WsClient::over(&server.ws_url(), tcp).await?;
    client.handshake(name).await?;
    Ok(client)
}

/// The server's refusal of a join; panics if the client was let in, or
/// failed some other way.
pub fn rejection<T>(result: Result<T, ClientError>) -> Rejection {
    match result {
        Err(ClientError::Rejected(rejection)) => rejection,
        Err(other) => panic!("should have been rejected, got {other:?}"),
        Ok(_) => panic!("should have been rejected, but was let in"),
    }
}

/// Reads until the server closes the connection; returns the close frame,
/// skipping any messages before it.
pub async fn expect_close(client: &mut WsClient) -> anyhow::Result<Option<(u16, String)>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, client.recv()).await.context("no close within 10s")?;
        match next {
            Ok(Incoming::Closed(frame)) => return Ok(frame),
            Ok(Incoming::Msg(_)) => {}
            Err(ClientError::Lost(_)) => return Ok(None),
            Err(e) => bail!("unexpected error while waiting for close: {e}"),
        }
    }
}

/// Reads until a message matches `want`.
pub async fn recv_until<T>(
    client: &mut WsClient,
    mut want: impl FnMut(&ServerMsg) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next =
            tokio::time::timeout_at(deadline, client.recv()).await.context("waited 10s for a message")??;
        match next {
            Incoming::Msg(msg) => {
                if let Some(found) = want(&msg) {
                    return Ok(found);
                }
            }
            Incoming::Closed(frame) => bail!("closed while waiting: {frame:?}"),
        }
    }
}

/// A test client that builds its view of the others from every frame it
/// reads, as a real client does (frames are changes to earlier views).
pub struct Observer {
    pub client: WsClient,
    views: ViewHistory,
}

impl Observer {
    pub fn new(client: WsClient) -> Self {
        Observer { client, views: ViewHistory::default() }
    }

    /// The others in view after the last frame, by id.
    pub fn view(&self) -> &[(PlayerId, arena_shared::protocol::Seen)] {
        self.views.latest()
    }

    /// Where `id` is (world units) in the view, if it is in view.
    pub fn position(&self, id: PlayerId) -> Option<(f32, f32)> {
        self.view().iter().find(|(who, _)| *who == id).map(|(_, seen)| seen.to_units())
    }

    /// Reads (applying every frame) until `want` matches a message; `want`
    /// sees the view as it is after that message.
    pub async fn recv_until<T>(
        &mut self,
        mut want: impl FnMut(&ServerMsg, &Observer) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, self.client.recv())
                .await
                .context("waited 10s for a message")??;
            match next {
                Incoming::Msg(msg) => {
                    if let ServerMsg::Frame(frame) = &msg {
                        self.views.apply(frame).context("frame fits a kept baseline")?;
                    }
                    if let Some(found) = want(&msg, self) {
                        return Ok(found);
                    }
                }
                Incoming::Closed(frame) => bail!("closed while waiting: {frame:?}"),
            }
        }
    }

    /// Walks this client's player to the platform's centre (from where it
    /// sees the whole inner platform), sending inputs at 60 Hz.
    pub async fn walk_to_centre(&mut self) -> anyhow::Result<()> {
        let mut seq = 0u32;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let me = self
                .recv_until(|m, _| match m {
                    ServerMsg::Frame(f) => Some(f.you.body),
                    _ => None,
                })
                .await?;
            let (x, y) = me.pos.to_units();
            let far = (x * x + y * y).sqrt();
            let speed = (me.vel.length_squared() as f64).sqrt() / f64::from(arena_shared::sim::FIXED_ONE);
            if far < 40.0 && speed < 5.0 {
                return Ok(());
            }
            // Two inputs per frame: 60 Hz against 30 frames a second. Slow
            // down near the middle.
            let pull = if far < 120.0 { 40.0 } else { 127.0 };
            let stick = if far < 10.0 {
                arena_shared::sim::Input::default()
            } else {
                arena_shared::sim::Input::stick((-x / far * pull) as i8, (-y / far * pull) as i8)
            };
            for _ in 0..2 {
                seq += 1;
                self.client.send(&arena_shared::protocol::ClientMsg::Input { seq, input: stick }).await?;
            }
        }
        bail!("did not reach the centre within 10 s")
    }

    /// Where `id` is in the first frame of tick `from` or later that has it in view.
    pub async fn position_of(&mut self, id: PlayerId, from: u32) -> anyhow::Result<(f32, f32)> {
        self.recv_until(|m, view| match m {
            ServerMsg::Frame(f) if f.tick >= from => view.position(id),
            _ => None,
        })
        .await
    }
}

/// `count` quick-joiners arriving at `server` at once: their clients,
/// and the rooms they were seated in.
pub async fn racing_quick_joins(
    server: &TestServer,
    count: usize,
) -> anyhow::Result<(Vec<WsClient>, std::collections::BTreeSet<String>)> {
    let joins = (0..count).map(|i| {
        let url = server.ws_url();
        tokio::spawn(async move {
            let mut client = WsClient::connect(&url).await?;
            let welcome = client.handshake(&format!("racer-{i}")).await?;
            Ok::<_, ClientError>((client, welcome.room))
        })
    });
    let mut rooms = std::collections::BTreeSet::new();
    let mut clients = Vec::new();
    for join in joins {
        let (client, room) = join.await??;
        rooms.insert(room);
        clients.push(client);
    }
    Ok((clients, rooms))
}

/// An HTTP answer, read whole (the bots' client's).
pub use arena_bots::http::Response as HttpResponse;

/// A GET over a fresh connection with extra request headers; the body is
/// read whole (chunked or not).
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    http_request(addr, "GET", path, headers, Vec::new()).await
}

/// A POST of a JSON body, as [`http_get`].
pub async fn http_post_json(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> anyhow::Result<HttpResponse> {
    let mut headers = headers.to_vec();
    headers.push(("content-type", "application/json"));
    http_request(addr, "POST", path, &headers, serde_json::to_vec(body)?).await
}

/// One request to `addr` with arena's one HTTP client (`arena_bots::http`),
/// no redirect followed and nothing decoded on the way.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<HttpResponse> {
    let http = arena_bots::http::Http::new(None, Duration::from_secs(10), 64 << 20)?;
    Ok(http.request(method, &format!("http://{addr}{path}"), headers, body).await?)
}

/// A swarm of `count` bots for `secs` seconds against `server`.
pub fn swarm(server: &TestServer, count: usize, secs: f64, behaviour: Behaviour) -> SwarmConfig {
    SwarmConfig {
        url: server.ws_url(),
        count,
        duration: Duration::from_secs_f64(secs),
        behaviour,
        name_prefix: "bot-".into(),
        tls: None,
        rooms: RoomPlan::Quick,
        conditions: Default::default(),
        reconnect: None,
        light: false,
    }
}

/// Runs `abuse` against a server started with `config` while ten bots play
/// for three seconds, and checks the bots never noticed: all connected, none
/// disconnected, frames at the tick rate throughout.
pub async fn bots_unaffected_by(
    config: ServerConfig,
    abuse: impl AsyncFnOnce(&TestServer) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tick_rate = f64::from(config.game.tick_rate);
    let server = TestServer::start(config).await?;
    let bots = swarm(&server, 10, 3.0, Behaviour::Circle);
    let playing = tokio::spawn(run_swarm(bots.clone(), Live::default().into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    abuse(&server).await?;
    let records = playing.await?;
    let report = Report::from_records(&records, &bots);
    anyhow::ensure!(report.connected == 10, "bots should all connect: {report:?}");
    let outcomes: Vec<_> = records.iter().map(|r| &r.outcome).collect();
    anyhow::ensure!(
        records.iter().all(|r| r.outcome == Outcome::Completed),
        "no bot should be disconnected: {outcomes:?}"
    );
    // Over ~3 s a bot that kept receiving sees about 3 × tick_rate frames.
    let least = records.iter().map(|r| r.frames).min().unwrap_or(0);
    anyhow::ensure!(
        least as f64 >= 2.0 * tick_rate,
        "every bot should keep receiving frames at the tick rate: the least got {least}: {report:?}"
    );
    server.stop().await
}

/// Polls `check` every 50 ms until it holds or `within` passes; the error
/// says what was awaited and the last value seen.
pub async fn eventually<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<(bool, T)>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (done, seen) = check().await?;
        if done {
            return Ok(seen);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what} did not happen within {within:?}; last seen: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP relay in front of a server: what a flaky network does to a
/// connection, on demand. Clients connect to `addr`; [`Relay::cut`] drops
/// every relayed connection at once (both sides just see the socket end).
pub struct Relay {
    pub addr: SocketAddr,
    links: std::sync::Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    accepting: JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> anyhow::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let links = std::sync::Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let accepting = tokio::spawn({
            let links = links.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let link = async move {
                        if let Ok(mut server) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    };
                    links.lock().unwrap_or_else(|p| p.into_inner()).spawn(link);
                }
            }
        });
        Ok(Relay { addr, links, accepting })
    }

    /// Drops every connection through the relay; new ones still go through.
    pub fn cut(&self) {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).abort_all();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

/// A config suited to tests: loopback, fast timeouts where a test needs them.
pub fn test_config() -> ServerConfig {
    ServerConfig::default().with(|c| c.net.bind = SocketAddr::from(([127, 0, 0, 1], 0)))
}
