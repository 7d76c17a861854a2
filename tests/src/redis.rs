//! A real `redis-server` (Debian's, installed by `scripts/setup.sh`) on a
//! free loopback port, with nothing saved to disk; stopped when dropped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use arena_server::cluster::redis::Redis;
use arena_server::config::RedisSource;
use tokio::process::{Child, Command};

pub struct RedisServer {
    pub port: u16,
    child: Child,
    /// Its working folder: a replica writes the data it syncs there as
    /// `dump.rdb`, which a server started in the same folder would load.
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub async fn start() -> anyhow::Result<RedisServer> {
        Self::start_with(&[]).await
    }

    /// One that speaks TLS only, with the certificate and key in `cert`
    /// and `key` (PEM), and asks for `password`.
    pub async fn start_tls(cert: &Path, key: &Path, password: &str) -> anyhow::Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        for _ in 0..5 {
            let port = free_port()?;
            let mut args = server_args(port, &dir);
            let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
            let tls = [
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
            ];
            args.extend(tls.iter().map(|arg| (*arg).to_owned()));
            args.extend(
                ["--tls-auth-clients", "no", "--requirepass", password].iter().map(|arg| (*arg).to_owned()),
            );
            if let Some(child) = spawn("redis-server", &args, port).await? {
                return Ok(RedisServer { port, child, dir });
            }
        }
        bail!("redis-server did not start with TLS")
    }

    /// One started with these extra arguments (`--replicaof`...).
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        // A port the OS just handed out is free unless raced for; retry then.
        for _ in 0..5 {
            let port = free_port()?;
            let mut args = server_args(port, &dir);
            args.extend(extra.iter().map(|arg| (*arg).to_owned()));
            if let Some(child) = spawn("redis-server", &args, port).await? {
                return Ok(RedisServer { port, child, dir });
            }
        }
        bail!("redis-server did not start")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection to it, as a node makes one (no replica to wait for),
    /// each call given up after `timeout`.
    pub async fn connect(&self, timeout: Duration) -> anyhow::Result<Redis> {
        Ok(Redis::connect(&RedisSource::Url { url: self.url(), ca: None }, timeout, 0).await?)
    }

    /// Every key it holds, sorted (`redis-cli --scan`: the tests may scan).
    pub async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--scan"])
            .output()
            .await
            .context("running redis-cli (Debian's redis-tools, with redis-server)")?;
        let mut keys: Vec<String> = String::from_utf8(out.stdout)?.lines().map(str::to_owned).collect();
        keys.sort();
        Ok(keys)
    }

    /// Stops it at once, as a crash would (`SIGKILL`).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Kills it, waits `down`, and starts a new, empty one on the same
    /// port (nothing is persisted: every key is gone).
    pub async fn restart(&mut self, down: Duration) -> anyhow::Result<()> {
        let _ = self.child.kill().await;
        tokio::time::sleep(down).await;
        // The port was ours a moment ago; give its socket a few tries.
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        for _ in 0..20 {
            let args = server_args(self.port, &self.dir);
            if let Some(child) = spawn("redis-server", &args, self.port).await? {
                self.child = child;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("redis-server did not start again on port {}", self.port)
    }
}

/// A server on `port` working in `dir`, saving nothing by itself.
fn server_args(port: u16, dir: &tempfile::TempDir) -> Vec<String> {
    let dir = dir.path().to_string_lossy().into_owned();
    ["--port", &port.to_string(), "--dir", &dir, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        .into_iter()
        .map(str::to_owned)
        // A replica that must sync again after a failover starts at once.
        .chain(["--repl-diskless-sync-delay".to_owned(), "0".to_owned()])
        .collect()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `program` (Debian's `redis-server` or `redis-sentinel`) with `args`,
/// once it accepts connections on `port`; `None` if it exited first (the
/// port was taken).
async fn spawn(program: &str, args: &[String], port: u16) -> anyhow::Result<Option<Child>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program} (scripts/setup.sh installs it)"))?;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(Some(child));
        }
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill().await;
    Ok(None)
}

/// The name the Sentinels know the primary by.
pub const MASTER: &str = "arena";

/// A Redis primary with two replicas and three Sentinels (quorum 2)
/// watching it as [`MASTER`], quick to fail over (down after 500 ms).
pub struct Sentinels {
    pub primary: Option<RedisServer>,
    pub replicas: Vec<RedisServer>,
    sentinels: Vec<(u16, Child)>,
    _dir: tempfile::TempDir,
}

impl Sentinels {
    /// Starts them all and waits until every Sentinel sees both replicas
    /// and the other two Sentinels (a failover needs them to agree).
    pub async fn start() -> anyhow::Result<Sentinels> {
        let primary = RedisServer::start().await?;
        let of = primary.port.to_string();
        let mut replicas = Vec::new();
        for _ in 0..2 {
            replicas.push(RedisServer::start_with(&["--replicaof", "127.0.0.1", &of]).await?);
        }
        let dir = tempfile::tempdir()?;
        let mut sentinels = Vec::new();
        for n in 0..3 {
            let port = free_port()?;
            let conf = dir.path().join(format!("sentinel-{n}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\n\
                     sentinel monitor {MASTER} 127.0.0.1 {of} 2\n\
                     sentinel down-after-milliseconds {MASTER} 500\n\
                     sentinel failover-timeout {MASTER} 2000\n\
                     sentinel parallel-syncs {MASTER} 2\n"
                ),
            )?;
            let args = [conf.to_string_lossy().into_owned()];
            let child =
                spawn("redis-sentinel", &args, port).await?.context("redis-sentinel did not start")?;
            sentinels.push((port, child));
        }
        let set = Sentinels { primary: Some(primary), replicas, sentinels, _dir: dir };
        set.settled().await?;
        Ok(set)
    }

    /// Waits until both replicas are in sync and every Sentinel knows the
    /// whole set.
    async fn settled(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let primary = self.primary.as_ref().context("a primary")?.port;
        loop {
            let info = sentinel_cli(primary, &["info", "replication"]).await?;
            if info.matches("state=online").count() == 2 {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the replicas did not sync within 30 s: {info}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (port, _) in &self.sentinels {
            loop {
                let master = sentinel_cli(*port, &["sentinel", "master", MASTER]).await?;
                let field = |name: &str| {
                    let lines: Vec<&str> = master.lines().collect();
                    lines
                        .iter()
                        .position(|line| *line == name)
                        .and_then(|i| lines.get(i + 1))
                        .map(|v| v.to_string())
                };
                if field("num-slaves").as_deref() == Some("2")
                    && field("num-other-sentinels").as_deref() == Some("2")
                {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!("the Sentinels did not find each other and the replicas within 30 s: {master}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// The Sentinels' addresses, `127.0.0.1:port`.
    pub fn addresses(&self) -> Vec<String> {
        self.sentinels.iter().map(|(port, _)| format!("127.0.0.1:{port}")).collect()
    }

    /// Where the Sentinels say the primary is now (the first one asked).
    pub async fn primary_port(&self) -> anyhow::Result<u16> {
        let (port, _) = &self.sentinels[0];
        let answer = sentinel_cli(*port, &["sentinel", "get-master-addr-by-name", MASTER]).await?;
        Ok(answer.lines().nth(1).context("no primary named")?.trim().parse()?)
    }

    /// Kills the primary at once (`SIGKILL`).
    pub async fn kill_primary(&mut self) {
        if let Some(primary) = self.primary.take() {
            primary.kill().await;
        }
    }
}

/// `redis-cli -p PORT ARGS...`'s output.
async fn sentinel_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().await?;
    Ok(String::from_utf8(out.stdout)?)
}
