//! `arena-attack`: attacks a host can run against their own server
//! (`arena-attack KIND`; `scripts/attack.sh` runs them all), and the
//! end-to-end tests run in small doses: each opens real sockets,
//! misbehaves in one way, and measures how the server ends it. Kept apart
//! from the game's clients (`arena-client`, `arena-bots`), whose
//! connections it borrows.
//!
//! Point them only at a server you run, on loopback: a flood is a flood.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arena_shared::protocol::{ClientMsg, RejectReason, RoomRequest, ServerMsg};
use arena_shared::sim::Input;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use arena_bots::Percentiles;
use arena_bots::ws::{ClientError, Incoming, WsReceiver, WsSender, connect_from, connect_tcp, server_addr};

/// What the attackers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// Join, send a few inputs, see a frame, then reset the TCP connection
    /// (no close frame); `count` cycles.
    Reset,
    /// Join and leave cleanly with a close frame; `count` cycles.
    Churn,
    /// Join, then send inputs as fast as the socket takes them.
    InputFlood,
    /// Join, then send WebSocket pings as fast as possible and never read.
    PingFlood,
    /// Join, then never read, sending a WebSocket ping every 20 ms (inside
    /// the rate budget, so it is not cut off for flooding): the server's
    /// frames, news and pong replies back up on the server's side of the
    /// socket, where the room's tick writes them.
    NoRead,
    /// Join, then in turn sit silent for half a second (reading frames) and
    /// send a second's worth of inputs at once (60, in batches of four): a
    /// client saving up input time to move faster than real time. Tallied:
    /// the inputs sent (what the server applied is what it did not drop,
    /// `arena_inputs_dropped_total`, less what still waits at the end; the
    /// acks cannot say it, as they pass over the dropped inputs' seqs).
    Burst,
    /// Join, then send inputs at the rate the server applies them (two a
    /// tick interval) with a new random stick and dash bit in each: the
    /// least compressible round there is to record, from every connection,
    /// until the duration ends. Tallied: the inputs sent.
    Noise,
    /// Open a TCP connection and send nothing.
    Idle,
    /// Send an HTTP request head one byte at a time, never finishing it.
    Slowloris,
    /// Upgrade to a WebSocket and never send Hello.
    NoHello,
    /// Open TLS connections (`wss://` URL) and do full handshakes, no
    /// session resumption, one after another until the duration ends: the
    /// server signs for each. Any certificate is accepted.
    TlsFlood,
    /// Ask for rooms by random codes, one after another until the duration
    /// ends: how many guesses the server answers.
    Guess,
    /// Open private rooms and drop each socket, one after another until the
    /// duration ends: how many rooms one address gets.
    OpenRooms,
    /// Post an operator's order declaring a 2 MB body, send 1,990,000 bytes
    /// of it and stall (no token): how long the server holds it.
    AdminBody,
    /// Open a private room (its creator hosts it) and ask for the next
    /// round every tick until the duration ends: how many rounds, and so
    /// recordings, one host makes.
    NextRounds,
    /// Ask `/api/rooms` and `/api/cluster` in turn on one kept-alive
    /// connection until the duration ends: how many the server answers
    /// (what it costs the cluster's Redis meanwhile is attack.sh's figure).
    PublicReads,
}

#[derive(Debug, Clone)]
pub struct AttackConfig {
    pub kind: AttackKind,
    /// The server's WebSocket URL (`ws://host:port/ws`).
    pub url: String,
    /// Attackers (or, for `reset` and `churn`, join cycles).
    pub count: usize,
    /// Attackers running at once (cycles in flight for `reset` and `churn`).
    pub concurrency: usize,
    /// The longest an attacker keeps going before giving up on being closed.
    pub duration: Duration,
    /// Local addresses to connect from, round-robin (loopback has
    /// 127.0.0.0/8, so one machine can look like many); empty: the OS picks.
    pub sources: Vec<IpAddr>,
}

/// How one attacker's connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// The server ended it: a close code, an HTTP status, or a bare close
    /// (`eof`, `reset`), after this long.
    ByServer { how: String, after: Duration },
    /// The attacker finished its script (a cycle completed) or gave up.
    Finished,
    /// The attacker could not do its part (connect refused, handshake failed).
    Failed(String),
    /// A repeating attacker ran its time: what the server did for it, and
    /// what it refused.
    Tallied { completed: usize, refused: usize },
}

/// What an attack measured.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub kind: AttackKind,
    pub attackers: usize,
    /// Connections the server closed before the attacker gave up.
    pub closed_by_server: usize,
    /// Attackers that ran their course (cycles done, or never closed).
    pub finished: usize,
    pub failed: usize,
    /// How the server ended connections: close code, HTTP status, `eof` or `reset`.
    pub closed_with: BTreeMap<String, usize>,
    /// Seconds from the start of the misbehaviour to the server's close.
    pub close_secs: Percentiles,
    pub close_secs_max: f64,
    /// The first few failures, to say what went wrong.
    pub errors: Vec<String>,
    pub elapsed_secs: f64,
    /// What the repeating attacks got done: full TLS handshakes
    /// (`tls-flood`), codes answered "no such room" (`guess`), rooms opened
    /// (`open-rooms`); and what the server refused.
    pub completed: usize,
    pub refused: usize,
}

impl AttackReport {
    /// Whether the server handled the attack: every join cycle completed
    /// (reset, churn), or every attacker was closed by the server.
    pub fn is_defended(&self) -> bool {
        match self.kind {
            AttackKind::Reset | AttackKind::Churn => self.failed == 0 && self.finished == self.attackers,
            // What these cost the game is measured beside them (attack.sh).
            AttackKind::TlsFlood
            | AttackKind::Guess
            | AttackKind::OpenRooms
            | AttackKind::NextRounds
            | AttackKind::PublicReads
            | AttackKind::Burst
            | AttackKind::Noise => self.failed == 0,
            _ => self.closed_by_server == self.attackers,
        }
    }

    /// One line for people.
    pub fn to_line(&self) -> String {
        let codes: Vec<String> = self.closed_with.iter().map(|(how, n)| format!("{how}×{n}")).collect();
        format!(
            "{:<12} attackers {:>5}  closed by server {:>5} [{}]  in p50 {:.2}s / max {:.2}s  \
             finished {}  failed {}  ({:.1}s)",
            format!("{:?}", self.kind).to_lowercase(),
            self.attackers,
            self.closed_by_server,
            codes.join(" "),
            self.close_secs.p50,
            self.close_secs_max,
            self.finished,
            self.failed,
            self.elapsed_secs,
        ) + &match self.kind {
            AttackKind::TlsFlood
            | AttackKind::Guess
            | AttackKind::OpenRooms
            | AttackKind::NextRounds
            | AttackKind::PublicReads
            | AttackKind::Burst
            | AttackKind::Noise => {
                format!(
                    "  done {} ({:.2}/s), refused {}",
                    self.completed,
                    self.completed as f64 / self.elapsed_secs.max(1e-9),
                    self.refused
                )
            }
            _ => String::new(),
        }
    }
}

/// Runs the attack to its end.
pub async fn run_attack(config: AttackConfig) -> AttackReport {
    let started = Instant::now();
    let config = Arc::new(config);
    let gate = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..config.count {
        let Ok(permit) = gate.clone().acquire_owned().await else { break };
        let config = config.clone();
        tasks.spawn(async move {
            let ended = attack_one(&config, index).await;
            drop(permit);
            ended
        });
    }
    let mut ended = Vec::with_capacity(config.count);
    while let Some(result) = tasks.join_next().await {
        ended.push(result.unwrap_or_else(|e| Ended::Failed(format!("attacker task died: {e}"))));
    }
    report(&config, &ended, started.elapsed())
}

fn report(config: &AttackConfig, ended: &[Ended], elapsed: Duration) -> AttackReport {
    let mut closed_with = BTreeMap::new();
    let mut close_secs = Vec::new();
    let mut errors = Vec::new();
    let (mut finished, mut failed) = (0, 0);
    let (mut done, mut refusals) = (0, 0);
    for end in ended {
        match end {
            Ended::Tallied { completed, refused } => {
                finished += 1;
                done += completed;
                refusals += refused;
            }
            Ended::ByServer { how, after } => {
                *closed_with.entry(how.clone()).or_insert(0) += 1;
                close_secs.push(after.as_secs_f64());
            }
            Ended::Finished => finished += 1,
            Ended::Failed(error) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(error.clone());
                }
            }
        }
    }
    close_secs.sort_by(f64::total_cmp);
    AttackReport {
        kind: config.kind,
        attackers: ended.len(),
        closed_by_server: close_secs.len(),
        finished,
        failed,
        closed_with,
        close_secs: Percentiles::of_sorted(&close_secs),
        close_secs_max: close_secs.last().copied().unwrap_or(0.0),
        errors,
        elapsed_secs: elapsed.as_secs_f64(),
        completed: done,
        refused: refusals,
    }
}

async fn attack_one(config: &AttackConfig, index: usize) -> Ended {
    let source = (!config.sources.is_empty()).then(|| config.sources[index % config.sources.len()]);
    let result = match config.kind {
        AttackKind::Reset => join_cycle(config, source, index, Leave::Reset).await,
        AttackKind::Churn => join_cycle(config, source, index, Leave::Close).await,
        AttackKind::InputFlood => input_flood(config, source, index).await,
        AttackKind::PingFlood => ping_flood(config, source, index, None).await,
        AttackKind::NoRead => ping_flood(config, source, index, Some(Duration::from_millis(20))).await,
        AttackKind::Burst => burst(config, source, index).await,
        AttackKind::Noise => noise(config, source, index).await,
        AttackKind::Idle => idle(config, source).await,
        AttackKind::Slowloris => slowloris(config, source).await,
        AttackKind::NoHello => no_hello(config, source).await,
        AttackKind::TlsFlood => tls_flood(config, source).await,
        AttackKind::Guess => repeat_hello(config, source, Ask::Guess).await,
        AttackKind::OpenRooms => repeat_hello(config, source, Ask::OpenRoom).await,
        AttackKind::AdminBody => admin_body(config, source).await,
        AttackKind::NextRounds => next_rounds(config, source).await,
        AttackKind::PublicReads => public_reads(config, source).await,
    };
    result.unwrap_or_else(Ended::Failed)
}

#[derive(Debug, Clone, Copy)]
enum Leave {
    Reset,
    Close,
}

async fn join_cycle(
    config: &AttackConfig,
    source: Option<IpAddr>,
    index: usize,
    leave: Leave,
) -> Result<Ended, String> {
    let mut client = connect_from(&config.url, source, matches!(leave, Leave::Reset)).await?;
    let welcome = client.handshake(&format!("cycle-{index}")).await.map_err(|e| e.to_string())?;
    for seq in 1..=3 {
        client
            .send(&ClientMsg::Input { seq, input: Input::stick(100, -100) })
            .await
            .map_err(|e| e.to_string())?;
    }
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match client.recv().await {
                Ok(Incoming::Msg(ServerMsg::Frame(f))) if f.you.id == welcome.you => {
                    return Ok(());
                }
                Ok(Incoming::Msg(_)) => {}
                Ok(Incoming::Closed(frame)) => return Err(format!("closed before a frame: {frame:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    frame.await.map_err(|_| "no frame within 5s".to_owned())??;
    match leave {
        // Dropping a linger-0 socket resets it.
        Leave::Reset => drop(client),
        Leave::Close => {
            client.close().await;
            // The server echoes the close frame; wait for it like a polite client.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(Incoming::Msg(_)) = client.recv().await {}
            })
            .await;
        }
    }
    Ok(Ended::Finished)
}

/// Reads until the server's close frame (or the socket's end) and says how
/// it ended; `None` if `deadline` came first.
async fn server_close(rx: &mut WsReceiver, started: Instant, deadline: Instant) -> Option<Ended> {
    let read = async {
        loop {
            match rx.recv().await {
                Ok(Incoming::Msg(_)) => {}
                Ok(Incoming::Closed(Some((code, _)))) => return code.to_string(),
                Ok(Incoming::Closed(None)) => return "eof".to_owned(),
                Err(ClientError::Lost(_)) => return "reset".to_owned(),
                Err(e) => return format!("error: {e}"),
            }
        }
    };
    let how = tokio::time::timeout_at(deadline, read).await.ok()?;
    Some(Ended::ByServer { how, after: started.elapsed() })
}

/// A player seated as `name`, its socket's two halves, and the attack's
/// clock: when it started (once seated) and when it ends.
struct Joined {
    tx: WsSender,
    rx: WsReceiver,
    started: Instant,
    deadline: Instant,
}

async fn join_as(config: &AttackConfig, source: Option<IpAddr>, name: &str) -> Result<Joined, String> {
    let mut client = connect_from(&config.url, source, false).await?;
    client.handshake(name).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (tx, rx) = client.split();
    Ok(Joined { tx, rx, started, deadline: started + config.duration })
}

async fn input_flood(config: &AttackConfig, source: Option<IpAddr>, index: usize) -> Result<Ended, String> {
    let Joined { mut tx, mut rx, started, deadline } =
        join_as(config, source, &format!("flood-{index}")).await?;
    let flood = async {
        let mut seq = 0u32;
        loop {
            seq = seq.wrapping_add(1);
            if tx.send(&ClientMsg::Input { seq, input: Input::stick(127, 127) }).await.is_err() {
                // The server is gone; the reader reports how.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        ended = server_close(&mut rx, started, deadline) => Ok(ended.unwrap_or(Ended::Finished)),
        () = flood => Ok(Ended::Finished),
    }
}

async fn burst(config: &AttackConfig, source: Option<IpAddr>, index: usize) -> Result<Ended, String> {
    let Joined { mut tx, mut rx, started, deadline } =
        join_as(config, source, &format!("burst-{index}")).await?;
    let mut sent = 0u32;
    while Instant::now() < deadline {
        // Half a second of silence (the frames still read), then a second's worth.
        let quiet_until = (Instant::now() + Duration::from_millis(500)).min(deadline);
        if let Some(ended) = server_close(&mut rx, started, quiet_until).await {
            return Ok(ended);
        }
        for _ in 0..15 {
            let inputs = vec![Input::stick(127, 0); 4];
            if tx.send(&ClientMsg::Inputs { seq: sent + 1, inputs }).await.is_err() {
                return Ok(Ended::ByServer { how: "write failed".into(), after: started.elapsed() });
            }
            sent += 4;
        }
    }
    Ok(Ended::Tallied { completed: sent as usize, refused: 0 })
}

async fn noise(config: &AttackConfig, source: Option<IpAddr>, index: usize) -> Result<Ended, String> {
    let Joined { mut tx, mut rx, started, deadline } =
        join_as(config, source, &format!("noise-{index}")).await?;
    // xorshift, seeded apart for each connection: no two stick alike.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut every = tokio::time::interval(Duration::from_millis(33));
    let mut sent = 0u32;
    // One reader for the whole run (frames read, until the server closes
    // or the deadline), beside the inputs.
    let closed = server_close(&mut rx, started, deadline);
    tokio::pin!(closed);
    loop {
        tokio::select! {
            ended = &mut closed => {
                return Ok(ended.unwrap_or(Ended::Tallied { completed: sent as usize, refused: 0 }));
            }
            _ = every.tick() => {
                let inputs = (0..2)
                    .map(|_| {
                        let bits = next();
                        Input { x: bits as i8, y: (bits >> 8) as i8, dash: bits >> 16 & 7 == 0 }
                    })
                    .collect();
                if tx.send(&ClientMsg::Inputs { seq: sent + 1, inputs }).await.is_err() {
                    return Ok(Ended::ByServer { how: "write failed".into(), after: started.elapsed() });
                }
                sent += 2;
            }
        }
    }
}

/// Pings (every `every`, or as fast as the socket takes them) and never
/// reads, until the server cuts the connection off or the duration ends.
async fn ping_flood(
    config: &AttackConfig,
    source: Option<IpAddr>,
    index: usize,
    every: Option<Duration>,
) -> Result<Ended, String> {
    let mut client = connect_from(&config.url, source, false).await?;
    client.handshake(&format!("pinger-{index}")).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let deadline = started + config.duration;
    // Never reading: the server's pongs pile up on its side, not ours.
    let payload = bytes_of(b"arena ping flood");
    while Instant::now() < deadline {
        if let Err(e) = client.send_raw(Message::Ping(payload.clone())).await {
            let how = if e.to_string().contains("reset") { "reset" } else { "write failed" };
            return Ok(Ended::ByServer { how: how.to_owned(), after: started.elapsed() });
        }
        if let Some(every) = every {
            tokio::time::sleep(every).await;
        }
    }
    Ok(Ended::Finished)
}

fn bytes_of(data: &'static [u8]) -> tokio_tungstenite::tungstenite::Bytes {
    tokio_tungstenite::tungstenite::Bytes::from_static(data)
}

/// Waits for the server to close a raw TCP connection (or the deadline).
async fn raw_close(tcp: &mut TcpStream, started: Instant, deadline: Instant) -> Option<Ended> {
    let mut buf = [0u8; 1024];
    let mut answer = Vec::new();
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n.min(64)]),
                Err(_) => return "reset".to_owned(),
            }
        }
        http_status(&answer).unwrap_or_else(|| "eof".to_owned())
    };
    let how = tokio::time::timeout_at(deadline, read).await.ok()?;
    Some(Ended::ByServer { how, after: started.elapsed() })
}

/// What the server did to a request it was never sent whole, by
/// `deadline`: its answer's status, an EOF or a reset; or nothing.
async fn answer_to_half_a_request(
    read_half: &mut tokio::net::tcp::OwnedReadHalf,
    started: Instant,
    deadline: Instant,
) -> Ended {
    let mut buf = [0u8; 256];
    let how = match tokio::time::timeout_at(deadline, read_half.read(&mut buf)).await {
        Err(_) => return Ended::Finished,
        Ok(Ok(0)) => "eof".to_owned(),
        Ok(Ok(n)) => http_status(&buf[..n]).unwrap_or_else(|| "answered".to_owned()),
        Ok(Err(_)) => "reset".to_owned(),
    };
    Ended::ByServer { how, after: started.elapsed() }
}

/// "503" from "HTTP/1.1 503 Service Unavailable...".
fn http_status(answer: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(answer.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ").map(|s| s.trim().to_owned())
}

async fn idle(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    let addr = server_addr(&config.url).await?;
    let mut tcp = connect_tcp(addr, source, false).await.map_err(|e| format!("connect: {e}"))?;
    let started = Instant::now();
    Ok(raw_close(&mut tcp, started, started + config.duration).await.unwrap_or(Ended::Finished))
}

async fn slowloris(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    let addr = server_addr(&config.url).await?;
    let tcp = connect_tcp(addr, source, false).await.map_err(|e| format!("connect: {e}"))?;
    let started = Instant::now();
    let deadline = started + config.duration;
    let (mut read_half, mut write_half) = tcp.into_split();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Padding: ");
    let trickle = async {
        let mut bytes = head.into_bytes().into_iter().chain(std::iter::repeat(b'a'));
        let mut every = tokio::time::interval(Duration::from_millis(100));
        loop {
            every.tick().await;
            let byte = bytes.next().unwrap_or(b'a');
            if write_half.write_all(&[byte]).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let watch = answer_to_half_a_request(&mut read_half, started, deadline);
    tokio::select! {
        ended = watch => Ok(ended),
        () = trickle => Ok(Ended::Finished),
    }
}

async fn no_hello(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    let mut client = connect_from(&config.url, source, false).await?;
    let started = Instant::now();
    Ok(server_close(&mut client.rx, started, started + config.duration).await.unwrap_or(Ended::Finished))
}

async fn tls_flood(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    if !config.url.starts_with("wss://") {
        return Err(format!("tls-flood needs a wss:// URL, not {}", config.url));
    }
    let addr = server_addr(&config.url).await?;
    let connector = tokio_rustls::TlsConnector::from(arena_bots::tls::any_certificate_no_resumption());
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + config.duration;
    let (mut completed, mut refused) = (0, 0);
    while Instant::now() < deadline {
        let Ok(tcp) = connect_tcp(addr, source, false).await else {
            refused += 1;
            continue;
        };
        match tokio::time::timeout_at(deadline, connector.connect(name.clone(), tcp)).await {
            Ok(Ok(_session)) => completed += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => break,
        }
    }
    Ok(Ended::Tallied { completed, refused })
}

#[derive(Debug, Clone, Copy)]
enum Ask {
    /// A random code: "no such room" is a guess answered.
    Guess,
    /// A new private room: a `Welcome` is a room opened.
    OpenRoom,
}

async fn repeat_hello(config: &AttackConfig, source: Option<IpAddr>, ask: Ask) -> Result<Ended, String> {
    let deadline = Instant::now() + config.duration;
    let (mut completed, mut refused) = (0, 0);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let room = match ask {
            Ask::Guess => RoomRequest::Join { code: format!("{:0>10}", n % 10_000_000_000) },
            Ask::OpenRoom => RoomRequest::CreatePrivate,
        };
        // Drops the socket after the answer, without a goodbye.
        let mut client = connect_from(&config.url, source, true).await?;
        let answer = tokio::time::timeout_at(deadline, client.handshake_in("attacker", room)).await;
        match (ask, answer) {
            (_, Err(_)) => break,
            (Ask::OpenRoom, Ok(Ok(_))) => completed += 1,
            (Ask::Guess, Ok(Err(ClientError::Rejected(r)))) if r.reason == RejectReason::RoomNotFound => {
                completed += 1
            }
            (_, Ok(Err(ClientError::Rejected(_)))) => refused += 1,
            (_, Ok(other)) => return Err(format!("unexpected answer: {:?}", other.map(|w| w.room))),
        }
    }
    Ok(Ended::Tallied { completed, refused })
}

/// The body an [`AttackKind::AdminBody`] attacker declares, and what it sends.
const ADMIN_BODY_DECLARED: usize = 2_000_000;
const ADMIN_BODY_SENT: usize = 1_990_000;

async fn admin_body(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    let addr = server_addr(&config.url).await?;
    let tcp = connect_tcp(addr, source, false).await.map_err(|e| format!("connect: {e}"))?;
    let started = Instant::now();
    let deadline = started + config.duration;
    let (mut read_half, mut write_half) = tcp.into_split();
    let head = format!(
        "POST /admin/api/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {ADMIN_BODY_DECLARED}\r\n\r\n"
    );
    let upload = async {
        let body = vec![b' '; ADMIN_BODY_SENT];
        if write_half.write_all(head.as_bytes()).await.is_ok() {
            let _ = write_half.write_all(&body).await;
        }
        // Then stall, the connection open.
        std::future::pending::<()>().await;
    };
    let watch = answer_to_half_a_request(&mut read_half, started, deadline);
    tokio::select! {
        ended = watch => Ok(ended),
        () = upload => Ok(Ended::Finished),
    }
}

async fn public_reads(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    let addr = server_addr(&config.url).await?;
    let http = arena_bots::http::Http::from_address(source, None, Duration::from_secs(2), 1 << 20)
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + config.duration;
    let (mut completed, mut refused) = (0, 0);
    for path in ["/api/rooms", "/api/cluster"].iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        match http.get(&format!("http://{addr}{path}")).await {
            Ok(response) if response.status == 200 => completed += 1,
            _ => refused += 1,
        }
    }
    Ok(Ended::Tallied { completed, refused })
}

async fn next_rounds(config: &AttackConfig, source: Option<IpAddr>) -> Result<Ended, String> {
    let deadline = Instant::now() + config.duration;
    let mut client = connect_from(&config.url, source, false).await?;
    client.handshake_in("host", RoomRequest::CreatePrivate).await.map_err(|e| e.to_string())?;
    let (mut rounds, mut refused) = (0, 0);
    let mut every = tokio::time::interval(Duration::from_millis(33));
    while Instant::now() < deadline {
        tokio::select! {
            _ = every.tick() => {
                let next = ClientMsg::Host(arena_shared::protocol::HostCommand::NextRound);
                client.send(&next).await.map_err(|e| e.to_string())?;
            }
            incoming = tokio::time::timeout_at(deadline, client.recv()) => match incoming {
                Err(_) => break,
                Ok(Ok(Incoming::Msg(ServerMsg::Round(_)))) => rounds += 1,
                Ok(Ok(Incoming::Msg(ServerMsg::Refused(_)))) => refused += 1,
                Ok(Ok(Incoming::Msg(_))) => {}
                Ok(Ok(other)) => return Err(format!("the server ended the host's connection: {other:?}")),
                Ok(Err(e)) => return Err(e.to_string()),
            },
        }
    }
    client.close().await;
    Ok(Ended::Tallied { completed: rounds, refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_is_read_from_the_status_line() {
        assert_eq!(http_status(b"HTTP/1.1 503 Service Unavailable\r\n").as_deref(), Some("503"));
        assert_eq!(http_status(b"garbage"), None);
    }

    #[test]
    fn the_report_counts_each_way_an_attacker_ended() {
        let config = AttackConfig {
            kind: AttackKind::Idle,
            url: "ws://127.0.0.1:1/ws".into(),
            count: 4,
            concurrency: 4,
            duration: Duration::from_secs(1),
            sources: Vec::new(),
        };
        let ended = [
            Ended::ByServer { how: "eof".into(), after: Duration::from_secs(1) },
            Ended::ByServer { how: "eof".into(), after: Duration::from_secs(3) },
            Ended::Finished,
            Ended::Failed("refused".into()),
        ];
        let report = report(&config, &ended, Duration::from_secs(4));
        assert_eq!((report.closed_by_server, report.finished, report.failed), (2, 1, 1));
        assert_eq!(report.closed_with.get("eof"), Some(&2));
        assert_eq!(report.close_secs_max, 3.0);
        assert!(report.to_line().contains("closed by server     2"), "{}", report.to_line());
    }
}
