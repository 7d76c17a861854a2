//! Server configuration: CLI flags, each with an `ARENA_*` env fallback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arena_shared::protocol::MAX_PLAYERS;
use clap::{Args, CommandFactory, FromArgMatches, Parser};

pub use crate::limits::Cidr;

/// Everything `arena-server` is told, in groups; each part of the server
/// takes only its group. The defaults are the flags' own (see
/// [`ServerConfig::default`]).
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(name = "arena-server", version, about = "arena's authoritative game server")]
pub struct ServerConfig {
    #[command(flatten)]
    pub net: NetworkConfig,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub game: GameConfig,
    #[command(flatten)]
    pub cluster: ClusterConfig,
    #[command(flatten)]
    pub ops: OpsConfig,
}

/// Where the server listens and whom it answers: the address, TLS, the
/// client's files, which pages may connect, and the proxy in front.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Network")]
pub struct NetworkConfig {
    /// Address to listen on.
    #[arg(long, env = "ARENA_BIND", default_value = "0.0.0.0:7777")]
    pub bind: SocketAddr,

    /// Threads that run the rooms and the sockets. One costs the least CPU
    /// (no work stealing, no waking idle threads) and holds 1,000 players
    /// in 50 rooms at about half a core; more spread rooms over cores for
    /// bigger hosts. 0: one per core.
    #[arg(long, env = "ARENA_THREADS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: u16,

    /// PEM certificate chain for HTTPS and WSS (with --tls-key); the page
    /// then connects over wss: by itself.
    #[arg(long, env = "ARENA_TLS_CERT", requires = "tls_key", value_parser = parse_file)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "ARENA_TLS_KEY", requires = "tls_cert", value_parser = parse_file)]
    pub tls_key: Option<PathBuf>,

    /// Directory of the built browser client (trunk's dist/) to serve at /.
    #[arg(long, env = "ARENA_WEB_DIR", value_parser = parse_web_dir)]
    pub web_dir: Option<PathBuf>,

    /// Extra page origin allowed to open /ws (repeatable, or comma-separated
    /// in the env var), e.g. http://127.0.0.1:8080 for `trunk serve`; `*`
    /// allows any. Pages served by this server are always allowed.
    #[arg(long = "allow-origin", env = "ARENA_ALLOW_ORIGIN", value_delimiter = ',',
          value_parser = parse_origin)]
    pub allow_origins: Vec<String>,

    /// A host name this server answers to (repeatable, or comma-separated in
    /// the env var), e.g. game.example.com. Pages served under these names,
    /// localhost and the server's own addresses may open /ws.
    #[arg(long = "public-host", env = "ARENA_PUBLIC_HOST", value_delimiter = ',',
          value_parser = parse_public_host)]
    pub public_hosts: Vec<String>,

    /// The server sits behind a reverse proxy (nginx, Caddy, trunk serve
    /// with a public name): from a --trusted-proxy peer, believe
    /// X-Forwarded-For as the player's address and X-Forwarded-Host as the
    /// page's host.
    #[arg(long, env = "ARENA_BEHIND_PROXY")]
    pub behind_proxy: bool,

    /// With --behind-proxy: a proxy whose forwarded headers are believed,
    /// as an address or CIDR block (repeatable, or comma-separated in the
    /// env var). Headers from any other peer are ignored, so a client that
    /// reaches the server directly cannot choose its own address.
    #[arg(long = "trusted-proxy", env = "ARENA_TRUSTED_PROXY", value_delimiter = ',',
          value_parser = parse_cidr, default_values = ["127.0.0.0/8", "::1/128"])]
    pub trusted_proxies: Vec<Cidr>,

    /// Kernel send buffer per socket in bytes (0 = the OS default).
    #[arg(long, env = "ARENA_SEND_BUFFER", default_value_t = 64 * 1024)]
    pub send_buffer_bytes: usize,
}

/// What one connection or address may hold and do, and how long the
/// server waits for it.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Limits")]
pub struct LimitsConfig {
    /// Open TCP connections the process accepts in all; more get HTTP 503.
    /// Lowered to fit the file-descriptor limit if that is smaller.
    #[arg(long, env = "ARENA_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Open TCP connections one remote address may hold; more get HTTP 503.
    #[arg(long, env = "ARENA_MAX_CONNECTIONS_PER_IP", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_ip: u32,

    /// Hold loopback peers to every per-address limit too (connections,
    /// held seats, private rooms, room codes, TLS handshakes). By default
    /// connections from this machine (bots, a reverse proxy in front of the
    /// server) count only toward the totals.
    #[arg(long, env = "ARENA_LIMIT_LOOPBACK")]
    pub limit_loopback: bool,

    /// IPv6 peers are counted by this prefix for every per-address limit
    /// (one subscriber usually holds a whole /64); IPv4 by address.
    #[arg(long, env = "ARENA_IPV6_PREFIX", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(16..=128))]
    pub ipv6_prefix: u8,

    /// Time a connection has to send a complete HTTP request head (first
    /// request and every keep-alive request after it); then it is closed.
    #[arg(long, env = "ARENA_HEADER_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub header_timeout_ms: u64,

    /// Time an upgraded socket has to send Hello.
    #[arg(long, env = "ARENA_HANDSHAKE_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub handshake_timeout_ms: u64,

    /// Drop a client that sends nothing (not even a pong) for this many seconds.
    #[arg(long, env = "ARENA_IDLE_TIMEOUT_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub idle_timeout_secs: u64,

    /// Disconnect a client whose frames have been going stale this long.
    #[arg(long, env = "ARENA_SLOW_CLIENT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub slow_client_ms: u64,

    /// Messages per second one connection may send, WebSocket control frames
    /// included (a real client sends about 32), with 3 seconds of burst;
    /// a client over it is closed with 4006.
    #[arg(long, env = "ARENA_MAX_MESSAGE_RATE", default_value_t = 120,
          value_parser = clap::value_parser!(u32).range(70..=100_000))]
    pub max_message_rate: u32,

    /// Seats one address may have held for a resume at once, across rooms;
    /// past it, that address's next dropped seat is freed at once. A room
    /// also holds at most half its seats.
    #[arg(long, env = "ARENA_MAX_HELD_SEATS_PER_IP", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_held_seats_per_ip: u32,

    /// Private rooms one address may have open at once.
    #[arg(long, env = "ARENA_MAX_ROOMS_PER_IP", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_rooms_per_ip: u32,
}

/// The game a room runs: its rate and size, rounds, resumes, watchers,
/// fill bots, and the rounds it records.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Game")]
pub struct GameConfig {
    /// Simulation ticks (and frames sent to each player) per second.
    #[arg(long, env = "ARENA_TICK_RATE", default_value_t = 30,
          value_parser = clap::value_parser!(u16).range(1..=120))]
    pub tick_rate: u16,

    /// Players one room holds; the next one is rejected as "room full"
    /// (quick-join opens another room instead). The platform grows with it.
    #[arg(long = "room-size", visible_alias = "max-players", env = "ARENA_ROOM_SIZE", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=MAX_PLAYERS as i64))]
    pub max_players: u16,

    /// Rooms the process hosts at once; past it, a new room is refused.
    #[arg(long, env = "ARENA_MAX_ROOMS", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub max_rooms: u16,

    /// A player whose socket drops without a goodbye keeps its seat this
    /// long; a Hello with its resume token gets it back (0: no holding).
    #[arg(long, env = "ARENA_RESUME_SECS", default_value_t = 20.0, value_parser = parse_resume)]
    pub resume_secs: f64,

    /// Length of a round; then the podium shows and scores reset.
    #[arg(long, env = "ARENA_ROUND_SECS", default_value_t = 180,
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub round_secs: u32,

    /// How long the podium shows between rounds.
    #[arg(long, env = "ARENA_PODIUM_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=600))]
    pub podium_secs: u32,

    /// A room that stays empty this long closes, and its link stops working.
    #[arg(long, env = "ARENA_ROOM_IDLE_SECS", default_value_t = 60.0, value_parser = parse_room_idle)]
    pub room_idle_secs: f64,

    /// Watchers one room takes at once (`/r/<code>?watch`): they hold no
    /// seat, but each is a connection that gets every frame.
    #[arg(long, env = "ARENA_MAX_WATCHERS", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(0..=1_000))]
    pub max_watchers: u16,

    /// A public room with fewer people than this gets bots that play the
    /// brawler inside the room (no sockets), marked as bots, leaving as
    /// people come; 0: none. Bots never count as players.
    #[arg(long, env = "ARENA_FILL_BOTS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=64))]
    pub fill_bots: u16,

    /// Every round is recorded (its inputs, deflated: about 180 KB for 20
    /// players and 3 minutes) in at most this many MiB of memory: half for
    /// the rounds being recorded (a round that finds it full is not
    /// recorded to its end), half for the rounds kept, the oldest going
    /// first; 0 records nothing. `GET /api/replays` lists public rooms'
    /// rounds.
    #[arg(long, env = "ARENA_REPLAY_MEMORY_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub replay_memory_mb: u32,

    /// Also write each recorded round to this directory, as
    /// `public/<id>.replay` or `private/<id>.replay`; rounds no longer in
    /// memory are served from there.
    #[arg(long, env = "ARENA_REPLAY_DIR", value_parser = parse_replay_dir)]
    pub replay_dir: Option<PathBuf>,

    /// Most MiB --replay-dir holds (files counted in whole 4 KiB blocks);
    /// past it the oldest files are deleted. Public and private rooms'
    /// rounds get half each, and one room at most an eighth of its half.
    #[arg(long, env = "ARENA_REPLAY_DIR_MB", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub replay_dir_mb: u32,
}

/// Cluster mode: the Redis the nodes share and the timing of leases,
/// checkpoints and drains.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterConfig {
    /// Cluster mode: the Redis the nodes share, `redis://host:port[/db]`,
    /// or `rediss://` for TLS; a password or an ACL user goes in the URL
    /// (`rediss://USER:PASSWORD@host:port`). Each room is leased to one
    /// node, invite links and quick-joins work through any node, and rooms
    /// move to another node on a drain or a crash. Off by default: without
    /// it (or `--redis-sentinel`) nothing needs Redis.
    #[arg(long, env = "ARENA_REDIS_URL", value_parser = parse_redis_url, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Cluster mode through Redis Sentinel, instead of `--redis-url`: a
    /// Sentinel's `host:port` (repeat the flag, or separate with commas),
    /// asked where the primary named by `--redis-master` is; the nodes
    /// follow it when a failover replaces it.
    #[arg(long = "redis-sentinel", env = "ARENA_REDIS_SENTINEL", value_delimiter = ',',
          value_parser = parse_host_port, conflicts_with = "redis_url", requires = "redis_master")]
    pub redis_sentinels: Vec<String>,

    /// The primary's name as the Sentinels know it (`sentinel monitor NAME
    /// ...` in their configuration).
    #[arg(long, env = "ARENA_REDIS_MASTER", requires = "redis_sentinels")]
    pub redis_master: Option<String>,

    /// The password (with `--redis-user`, the ACL user's) of the Redis
    /// behind the Sentinels; with `--redis-url`, put it in the URL.
    #[arg(long, env = "ARENA_REDIS_PASSWORD", hide_env_values = true, requires = "redis_sentinels")]
    pub redis_password: Option<String>,

    /// The ACL user of the Redis behind the Sentinels (default: `default`).
    #[arg(long, env = "ARENA_REDIS_USER", requires = "redis_password")]
    pub redis_user: Option<String>,

    /// A PEM file of the root certificates a `rediss://` Redis is checked
    /// against (a hosted Redis's own CA); default: the system's roots.
    #[arg(long, env = "ARENA_REDIS_CA", value_parser = parse_file, requires = "redis_url")]
    pub redis_ca: Option<PathBuf>,

    /// How many replicas must have each lease renewal (Redis `WAIT`) before
    /// it lets a room run on: with 1, a failover that loses the primary's
    /// newest writes cannot lose a renewal a room is running on, so two
    /// nodes never run a room at once; but a primary with no replica up
    /// pauses every room. Default: 1 with `--redis-sentinel`, 0 otherwise.
    #[arg(long, env = "ARENA_REDIS_WAIT_REPLICAS", value_parser = clap::value_parser!(u8).range(0..=8))]
    pub redis_wait_replicas: Option<u8>,

    /// The base URL players reach this node at (`https://eu1.example.com`),
    /// published in the cluster; default: this node's address.
    #[arg(long, env = "ARENA_NODE_URL", value_parser = parse_node_url)]
    pub node_url: Option<String>,

    /// How long a node's registration and a room's lease live without
    /// renewal; renewed three times per period. A room whose lease runs out
    /// pauses; a crashed node's rooms come back elsewhere after about this.
    #[arg(long, env = "ARENA_LEASE_MS", default_value_t = 3_000,
          value_parser = clap::value_parser!(u64).range(500..=60_000))]
    pub lease_ms: u64,

    /// How often (cluster mode) each room is saved to Redis, for another
    /// node to carry it on if this one crashes.
    #[arg(long, env = "ARENA_CHECKPOINT_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub checkpoint_ms: u64,

    /// Cluster mode: each room also appends every tick's inputs (and who
    /// came and went) to Redis before that tick's frames go out, so a node
    /// that restores it after a crash re-runs it to the last tick a player
    /// saw, not back to its last checkpoint. `false` keeps only the
    /// checkpoints (cheaper for Redis; a crash loses up to
    /// `--checkpoint-ms` of play).
    #[arg(long, env = "ARENA_INPUT_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub input_log: bool,

    /// At most how long (cluster mode) a stopping node spends handing its
    /// rooms to other nodes before it closes what is left.
    #[arg(long, env = "ARENA_DRAIN_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub drain_secs: u64,
}

/// What operators get: the admin token and their own listener.
#[derive(Args, Debug, Clone, PartialEq)]
#[command(next_help_heading = "Operations")]
pub struct OpsConfig {
    /// A secret that shows operators per-room detail (room codes, private
    /// ones included) in /healthz and /metrics when sent as
    /// `Authorization: Bearer <token>`. Without it the public sees totals only.
    #[arg(long, env = "ARENA_ADMIN_TOKEN", value_parser = parse_admin_token, hide_env_values = true)]
    pub admin_token: Option<String>,

    /// A second address serving /metrics and /healthz with per-room detail
    /// and no token, for a scraper on this machine or a private network;
    /// a bare port means 127.0.0.1:PORT. Off by default.
    #[arg(long, env = "ARENA_METRICS_BIND", value_parser = parse_metrics_bind)]
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for ServerConfig {
    /// The flags' own defaults, read from their `#[arg]`s (one source, no
    /// copy to keep in step), with no `ARENA_*` variable consulted: what a
    /// server started with no flags in a clean environment gets.
    fn default() -> Self {
        let command = ServerConfig::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command.try_get_matches_from(["arena-server"]).expect("no flags parse to the defaults");
        ServerConfig::from_arg_matches(&matches).expect("the defaults make a config")
    }
}

impl ServerConfig {
    /// This config changed by `change` (tests set a field or two this way).
    pub fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }

    /// Consecutive ticks of stale frames after which a client is dropped.
    pub fn slow_client_ticks(&self) -> u32 {
        self.limits.slow_client_ticks(self.game.tick_rate)
    }
}

impl LimitsConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// Ping often enough that a healthy peer answers well inside the timeout.
    pub fn ping_interval(&self) -> Duration {
        self.idle_timeout() / 3
    }

    /// A ping unanswered this long closes the connection: two ping
    /// intervals, so a peer that stops reading is closed within one idle
    /// timeout (the next ping goes out within an interval, and is given two).
    pub fn pong_timeout(&self) -> Duration {
        self.ping_interval() * 2
    }

    /// How per-address limits count peers.
    pub fn counting(&self) -> crate::limits::Counting {
        crate::limits::Counting { v6_prefix: self.ipv6_prefix, limit_loopback: self.limit_loopback }
    }

    /// Consecutive ticks of stale frames, at `tick_rate`, after which a
    /// client is dropped.
    pub fn slow_client_ticks(&self, tick_rate: u16) -> u32 {
        (self.slow_client_ms * u64::from(tick_rate)).div_ceil(1000).max(2) as u32
    }
}

impl GameConfig {
    pub fn tick_interval(&self) -> Duration {
        Duration::from_micros(1_000_000 / u64::from(self.tick_rate))
    }

    /// The resume window in ticks.
    pub fn resume_ticks(&self) -> u32 {
        (self.resume_secs * f64::from(self.tick_rate)).ceil() as u32
    }

    pub fn room_idle(&self) -> Duration {
        Duration::from_secs_f64(self.room_idle_secs)
    }

    /// Rooms private games may take: a quarter of `--max-rooms` (at least
    /// one when there are two or more) stays for quick-join's public rooms.
    pub fn max_private_rooms(&self) -> u16 {
        let reserved = if self.max_rooms >= 2 { (self.max_rooms / 4).max(1) } else { 0 };
        self.max_rooms - reserved
    }
}

/// Where the cluster's Redis is (cluster mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisSource {
    /// One Redis at `url` (`redis://` or `rediss://`, credentials in it),
    /// a `rediss://` one checked against `ca` if given.
    Url { url: String, ca: Option<PathBuf> },
    /// The primary the Sentinels name `master`, followed through failovers.
    Sentinel { sentinels: Vec<String>, master: String, user: Option<String>, password: Option<String> },
}

impl ClusterConfig {
    /// Where the cluster's Redis is: `None` outside cluster mode.
    pub fn redis(&self) -> Option<RedisSource> {
        if let Some(url) = &self.redis_url {
            return Some(RedisSource::Url { url: url.clone(), ca: self.redis_ca.clone() });
        }
        let master = self.redis_master.clone()?;
        Some(RedisSource::Sentinel {
            sentinels: self.redis_sentinels.clone(),
            master,
            user: self.redis_user.clone(),
            password: self.redis_password.clone(),
        })
    }

    /// Replicas each lease write must reach before it counts.
    pub fn wait_replicas(&self) -> u8 {
        self.redis_wait_replicas.unwrap_or(u8::from(!self.redis_sentinels.is_empty()))
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub fn checkpoint_every(&self) -> Duration {
        Duration::from_millis(self.checkpoint_ms)
    }

    pub fn drain_limit(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, lower-cased,
/// the default port dropped; or `*`.
fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "*" {
        return Ok(value.to_owned());
    }
    let explain = || {
        format!("'{value}' is not an origin; expected scheme://host[:port], e.g. http://localhost:8080, or *")
    };
    let url = url::Url::parse(value).map_err(|_| explain())?;
    let bare =
        url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        return Err(explain());
    }
    Ok(url.origin().ascii_serialization())
}

/// A bare host name or address, as it appears in a URL (no scheme, port or path).
fn parse_public_host(value: &str) -> Result<String, String> {
    let value = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !value.is_empty()
        && value.len() <= 253
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'))
        && (value.starts_with('[') || !value.contains(':'));
    if valid {
        Ok(value)
    } else {
        Err(format!("'{value}' is not a host name; expected a bare name or address like game.example.com"))
    }
}

fn parse_resume(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(secs) if (0.0..=3600.0).contains(&secs) => Ok(secs),
        _ => Err(format!("'{value}' is not a time; expected seconds between 0 and 3600")),
    }
}

fn parse_room_idle(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(secs) if (0.1..=86_400.0).contains(&secs) => Ok(secs),
        _ => Err(format!("'{value}' is not a time; expected seconds between 0.1 and 86400")),
    }
}

/// Long enough not to be guessed at line speed; printable, so it fits a header.
fn parse_admin_token(value: &str) -> Result<String, String> {
    if value.len() < 16 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the admin token must be at least 16 printable characters without spaces \
             (e.g. the output of `openssl rand -hex 16`)"
            .to_owned());
    }
    Ok(value.to_owned())
}

/// `host:port`, or a bare port on loopback.
fn parse_metrics_bind(value: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value.parse().map_err(|_| format!("'{value}' is not an address; expected a port (9100) or host:port"))
}

fn parse_redis_url(value: &str) -> Result<String, String> {
    let explain =
        || format!("'{value}' is not a Redis URL; expected redis://host:port or rediss://host:port");
    let url = url::Url::parse(value).map_err(|_| explain())?;
    match url.scheme() {
        "redis" | "rediss" if url.host().is_some() => Ok(value.to_owned()),
        _ => Err(explain()),
    }
}

/// A Sentinel's `host:port`.
fn parse_host_port(value: &str) -> Result<String, String> {
    let explain =
        || format!("'{value}' is not a Sentinel's address; expected host:port (26379 is its usual port)");
    let (host, port) = value.rsplit_once(':').ok_or_else(explain)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |port| port == 0) {
        return Err(explain());
    }
    Ok(value.to_owned())
}

/// A node's base URL, `http(s)://host[:port]`, without a trailing slash.
fn parse_node_url(value: &str) -> Result<String, String> {
    let explain = || format!("'{value}' is not a base URL; expected https://host[:port]");
    let url = url::Url::parse(value).map_err(|_| explain())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || url.path() != "/" {
        return Err(explain());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn parse_file(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_file() { Ok(path) } else { Err(format!("'{value}' is not a readable file")) }
}

fn parse_cidr(value: &str) -> Result<Cidr, String> {
    value.trim().parse::<Cidr>().map_err(|e| format!("'{value}' {e}"))
}

fn parse_replay_dir(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    std::fs::create_dir_all(&path).map_err(|e| format!("cannot use '{value}' for replays: {e}"))?;
    Ok(path)
}

fn parse_web_dir(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if !path.is_dir() {
        return Err(format!(
            "'{value}' is not a directory; build the client first (see README: `trunk build --release`)"
        ));
    }
    if !path.join("index.html").is_file() {
        return Err(format!("'{value}' has no index.html; is it trunk's dist/ directory?"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_flags_own_whatever_the_environment_says() {
        // Default reads the flags' own defaults with every env fallback
        // switched off: this holds with any ARENA_* variable set.
        let defaults = ServerConfig::default();
        let net = &defaults.net;
        assert_eq!(net.bind, SocketAddr::from(([0, 0, 0, 0], 7777)));
        assert_eq!((net.threads, net.send_buffer_bytes, net.behind_proxy), (1, 64 * 1024, false));
        assert_eq!((&net.tls_cert, &net.tls_key, &net.web_dir), (&None, &None, &None));
        assert!(net.allow_origins.is_empty() && net.public_hosts.is_empty());
        assert_eq!(net.trusted_proxies, Cidr::loopback());
        let limits = &defaults.limits;
        assert_eq!(
            (limits.max_connections, limits.max_connections_per_ip, limits.limit_loopback),
            (4096, 64, false)
        );
        assert_eq!(
            (limits.header_timeout_ms, limits.handshake_timeout_ms, limits.idle_timeout_secs),
            (5_000, 5_000, 15)
        );
        assert_eq!((limits.slow_client_ms, limits.max_message_rate, limits.ipv6_prefix), (2_000, 120, 64));
        assert_eq!((limits.max_held_seats_per_ip, limits.max_rooms_per_ip), (8, 4));
        let game = &defaults.game;
        assert_eq!((game.tick_rate, game.max_players, game.max_rooms), (30, 32, 64));
        assert_eq!(
            (game.resume_secs, game.round_secs, game.podium_secs, game.room_idle_secs),
            (20.0, 180, 10, 60.0)
        );
        assert_eq!((game.max_watchers, game.fill_bots), (32, 0));
        assert_eq!((game.replay_memory_mb, &game.replay_dir, game.replay_dir_mb), (64, &None, 1024));
        let cluster = &defaults.cluster;
        assert_eq!((&cluster.redis_url, &cluster.node_url), (&None, &None));
        assert_eq!(
            (cluster.redis_sentinels.len(), &cluster.redis_master, &cluster.redis_ca),
            (0, &None, &None)
        );
        assert_eq!(
            (&cluster.redis_user, &cluster.redis_password, cluster.redis_wait_replicas),
            (&None, &None, None)
        );
        assert_eq!((cluster.redis(), cluster.wait_replicas()), (None, 0), "no cluster, nothing to wait for");
        assert_eq!((cluster.lease_ms, cluster.checkpoint_ms, cluster.drain_secs), (3_000, 2_000, 10));
        assert_eq!((&defaults.ops.admin_token, defaults.ops.metrics_bind), (&None, None));
    }

    #[test]
    fn every_flag_falls_back_to_its_own_arena_variable_and_says_what_it_does() {
        let command = ServerConfig::command();
        let flags: Vec<_> = command
            .get_arguments()
            .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
            .collect();
        assert_eq!(flags.len(), 47, "every field is a flag");
        for arg in flags {
            let long = arg.get_long().expect("a long flag");
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            // One variable is named for what it holds, as it always was.
            let expected = match long {
                "send-buffer-bytes" => "ARENA_SEND_BUFFER".to_owned(),
                _ => format!("ARENA_{}", long.to_uppercase().replace('-', "_")),
            };
            assert_eq!(env, expected, "--{long}'s variable");
            assert!(arg.get_help().is_some_and(|h| !h.to_string().is_empty()), "--{long} says what it does");
        }
    }
    #[test]
    fn operator_flags_parse_and_explain_mistakes() {
        let cfg = ServerConfig::try_parse_from(["arena-server", "--metrics-bind", "9100"]).expect("a port");
        assert_eq!(
            cfg.ops.metrics_bind,
            Some(SocketAddr::from(([127, 0, 0, 1], 9100))),
            "a port is loopback"
        );
        let cfg = ServerConfig::try_parse_from(["arena-server", "--metrics-bind", "10.0.0.5:9100"])
            .expect("an address");
        assert_eq!(cfg.ops.metrics_bind, Some(SocketAddr::from(([10, 0, 0, 5], 9100))));
        let err = ServerConfig::try_parse_from(["arena-server", "--metrics-bind", "nope"]).expect_err("bad");
        assert!(err.to_string().contains("not an address"), "should explain: {err}");
        let err =
            ServerConfig::try_parse_from(["arena-server", "--admin-token", "short"]).expect_err("short");
        assert!(err.to_string().contains("at least 16"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--ipv6-prefix", "129"]).expect_err("> 128");
        assert!(err.to_string().contains("ipv6-prefix"), "should name the flag: {err}");
    }

    #[test]
    fn a_quarter_of_the_rooms_stays_for_public_play() {
        let rooms = |max_rooms| {
            ServerConfig::default().with(|c| c.game.max_rooms = max_rooms).game.max_private_rooms()
        };
        assert_eq!((rooms(64), rooms(4), rooms(2), rooms(1)), (48, 3, 1, 1));
    }

    #[test]
    fn bad_values_get_readable_errors() {
        let err = ServerConfig::try_parse_from(["arena-server", "--tick-rate", "0"]).expect_err("0 Hz");
        assert!(err.to_string().contains("tick-rate"), "should name the flag: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--threads", "5000"]).expect_err("too many");
        assert!(err.to_string().contains("threads"), "should name the flag: {err}");
        let err =
            ServerConfig::try_parse_from(["arena-server", "--allow-origin", "nope"]).expect_err("bad origin");
        assert!(err.to_string().contains("not an origin"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--web-dir", "/definitely/missing"])
            .expect_err("dir");
        assert!(err.to_string().contains("not a directory"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--public-host", "http://x.y/"])
            .expect_err("a URL is not a host");
        assert!(err.to_string().contains("not a host name"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--max-message-rate", "10"])
            .expect_err("below a real client's rate");
        assert!(err.to_string().contains("max-message-rate"), "should name the flag: {err}");
        let err =
            ServerConfig::try_parse_from(["arena-server", "--tls-cert", "Cargo.toml"]).expect_err("no key");
        assert!(err.to_string().contains("--tls-key"), "should say the key is missing: {err}");
        let err = ServerConfig::try_parse_from([
            "arena-server",
            "--tls-cert",
            "/no/cert.pem",
            "--tls-key",
            "/no/key",
        ])
        .expect_err("missing files");
        assert!(err.to_string().contains("not a readable file"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--redis-url", "localhost:6379"])
            .expect_err("not a URL");
        assert!(err.to_string().contains("not a Redis URL"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--node-url", "eu1.example.com"])
            .expect_err("no scheme");
        assert!(err.to_string().contains("not a base URL"), "should explain: {err}");
        let err = ServerConfig::try_parse_from(["arena-server", "--lease-ms", "10"]).expect_err("too short");
        assert!(err.to_string().contains("lease-ms"), "should name the flag: {err}");
        let ok = ServerConfig::try_parse_from([
            "arena-server",
            "--redis-url",
            "redis://10.0.0.5:6379/2",
            "--node-url",
            "https://eu1.example.com/",
        ])
        .expect("valid");
        assert_eq!(
            ok.cluster.node_url.as_deref(),
            Some("https://eu1.example.com"),
            "without the trailing slash"
        );
        let err = ServerConfig::try_parse_from(["arena-server", "--bind", "localhost"]).expect_err("no port");
        assert!(err.to_string().contains("--bind"), "should name the flag: {err}");
    }

    #[test]
    fn redis_is_a_url_or_sentinels_with_a_master_never_both() {
        let parse = |args: &[&str]| {
            ServerConfig::try_parse_from(std::iter::once("arena-server").chain(args.iter().copied()))
        };
        let tls = parse(&["--redis-url", "rediss://arena:secret@redis.example.com:6380"])
            .expect("rediss:// is TLS");
        let source =
            RedisSource::Url { url: "rediss://arena:secret@redis.example.com:6380".into(), ca: None };
        assert_eq!((tls.cluster.redis(), tls.cluster.wait_replicas()), (Some(source), 0));
        let sentinels = parse(&[
            "--redis-sentinel",
            "10.0.0.5:26379,10.0.0.6:26379",
            "--redis-sentinel",
            "10.0.0.7:26379",
            "--redis-master",
            "arena",
            "--redis-password",
            "secret",
        ])
        .expect("three Sentinels");
        let source = RedisSource::Sentinel {
            sentinels: vec!["10.0.0.5:26379".into(), "10.0.0.6:26379".into(), "10.0.0.7:26379".into()],
            master: "arena".into(),
            user: None,
            password: Some("secret".into()),
        };
        assert_eq!((sentinels.cluster.redis(), sentinels.cluster.wait_replicas()), (Some(source), 1));
        let unwaited =
            parse(&["--redis-sentinel", "a:1", "--redis-master", "m", "--redis-wait-replicas", "0"]);
        assert_eq!(unwaited.expect("valid").cluster.wait_replicas(), 0);
        let mistakes: [(&[&str], &str); 5] = [
            (&["--redis-sentinel", "10.0.0.5:26379"], "--redis-master"),
            (&["--redis-master", "arena"], "--redis-sentinel"),
            (
                &["--redis-url", "redis://a:1", "--redis-sentinel", "b:2", "--redis-master", "m"],
                "cannot be used with",
            ),
            (&["--redis-sentinel", "10.0.0.5", "--redis-master", "m"], "not a Sentinel's address"),
            (&["--redis-ca", "Cargo.toml"], "--redis-url"),
        ];
        for (args, says) in mistakes {
            let err = parse(args).expect_err("a mistake");
            assert!(err.to_string().contains(says), "{args:?} should say {says:?}: {err}");
        }
    }

    #[test]
    fn origins_are_normalised() {
        let cfg = ServerConfig::try_parse_from([
            "arena-server",
            "--allow-origin",
            "HTTP://Example.com:8080/",
            "--allow-origin",
            "*",
        ])
        .expect("valid origins");
        assert_eq!(cfg.net.allow_origins, ["http://example.com:8080", "*"]);
    }

    #[test]
    fn public_hosts_are_normalised() {
        let cfg = ServerConfig::try_parse_from(["arena-server", "--public-host", "Game.Example.COM."])
            .expect("a host name");
        assert_eq!(cfg.net.public_hosts, ["game.example.com"]);
    }

    #[test]
    fn slow_client_ticks_scale_with_tick_rate() {
        let cfg = ServerConfig::default().with(|c| {
            c.game.tick_rate = 30;
            c.limits.slow_client_ms = 2000;
        });
        assert_eq!(cfg.slow_client_ticks(), 60);
    }
}
