//! A real `arena-server` process (this crate's `arena-node` binary, which
//! is `arena-server` exactly: each test names it with
//! `env!("CARGO_BIN_EXE_arena-node")`) on a free loopback port, for what an in-process server cannot show: a node
//! killed with `SIGKILL`, frozen with `SIGSTOP`, drained with `SIGTERM`.
//! Its log goes to a file, printed if a test fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// One node of a test cluster.
pub struct Node {
    pub port: u16,
    child: Child,
    log: PathBuf,
    /// The binary, its cluster's Redis and its flags, for a restart.
    binary: PathBuf,
    /// How it finds the cluster's Redis (`--redis-url URL`, or Sentinels).
    cluster: Vec<String>,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts `binary` as a node of the cluster on `redis`, with `args`
    /// after the cluster's own flags.
    pub async fn start(binary: &str, redis: &str, args: &[&str]) -> anyhow::Result<Node> {
        Self::start_in(binary, &["--redis-url".to_owned(), redis.to_owned()], args).await
    }

    /// Starts `binary` as a node of the cluster whose Redis the Sentinels
    /// at `sentinels` name `master`.
    pub async fn start_sentinel(
        binary: &str,
        sentinels: &[String],
        master: &str,
        args: &[&str],
    ) -> anyhow::Result<Node> {
        let mut cluster = vec!["--redis-master".to_owned(), master.to_owned()];
        for sentinel in sentinels {
            cluster.extend(["--redis-sentinel".to_owned(), sentinel.clone()]);
        }
        Self::start_in(binary, &cluster, args).await
    }

    async fn start_in(binary: &str, cluster: &[String], args: &[&str]) -> anyhow::Result<Node> {
        let binary = PathBuf::from(binary);
        let dir = tempfile::tempdir()?;
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let log = dir.path().join(format!("node-{port}.log"));
            std::fs::File::create(&log)?;
            if let Some(child) = spawn(&binary, port, &log, cluster, &args).await? {
                return Ok(Node { port, child, log, binary, cluster: cluster.to_vec(), args, _dir: dir });
            }
        }
        bail!("arena-server did not start")
    }

    /// Starts it again, on the same port with the same flags, after it
    /// stopped (a deploy's restart); its log goes on in the same file.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.try_wait()?.is_some(), "the node is still running");
        for _ in 0..20 {
            if let Some(child) = spawn(&self.binary, self.port, &self.log, &self.cluster, &self.args).await? {
                self.child = child;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("arena-server did not start again on port {}", self.port)
    }

    /// Its base URL, as a `Moved` names it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("the node has exited")?;
        let status =
            std::process::Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -{name} {pid} failed");
        Ok(())
    }

    /// `SIGKILL`: a crash, nothing saved at the end.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.signal("KILL")?;
        self.child.wait().await?;
        Ok(())
    }

    /// `SIGSTOP`: frozen (a long GC pause, a VM migration), clock running.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// `SIGCONT` after [`Node::freeze`].
    pub fn thaw(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    /// `SIGTERM` (a deploy: the node drains), waiting up to `within` for it
    /// to exit; its exit code.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<Option<i32>> {
        self.signal("TERM")?;
        let status =
            tokio::time::timeout(within, self.child.wait()).await.context("the node did not stop")??;
        Ok(status.code())
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs the binary on `port`, logging to `log`; `None` if it did not come
/// up (the port was taken, say).
async fn spawn(
    binary: &Path,
    port: u16,
    log: &Path,
    cluster: &[String],
    args: &[String],
) -> anyhow::Result<Option<Child>> {
    let output = || std::fs::File::options().append(true).open(log);
    let mut child = Command::new(binary)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(cluster)
        .args(["--node-url", &format!("http://127.0.0.1:{port}")])
        .args(args)
        .env("RUST_LOG", "info,arena_server=debug")
        .stdin(Stdio::null())
        .stdout(output()?)
        .stderr(output()?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    for _ in 0..200 {
        if crate::http_get(([127, 0, 0, 1], port).into(), "/healthz", &[]).await.is_ok() {
            return Ok(Some(child));
        }
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill().await;
    Ok(None)
}

/// Waits until every one of `nodes` lists them all and knows them all
/// (each learns of the others on its heartbeat, a third of a lease): from
/// then on any node sends rooms and players to any other.
pub async fn knowing_each_other(nodes: &[&Node]) -> anyhow::Result<()> {
    let addresses: Vec<std::net::SocketAddr> = nodes.iter().map(|node| node.addr()).collect();
    cluster_knows_itself(&addresses).await
}

/// [`knowing_each_other`] for servers at `addresses` (in process or not).
pub async fn cluster_knows_itself(addresses: &[std::net::SocketAddr]) -> anyhow::Result<()> {
    for &addr in addresses {
        crate::eventually("every node listed and known", Duration::from_secs(10), async || {
            let response = crate::http_get(addr, "/api/cluster", &[]).await?;
            let body: serde_json::Value = serde_json::from_slice(&response.body)?;
            let listed = body["nodes"].as_array().map_or(0, Vec::len);
            let knows = body["knows"].as_u64().unwrap_or(0) as usize;
            Ok((listed == addresses.len() && knows == addresses.len(), (listed, knows)))
        })
        .await?;
    }
    Ok(())
}
