//! A real `redis-server` (Debian's, installed by `scripts/setup.sh`) on a
//! free loopback port, with nothing saved to disk; stopped when dropped.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub async fn start() -> anyhow::Result<RedisServer> {
        // A port the OS just handed out is free unless raced for; retry then.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            if let Some(child) = spawn(port).await? {
                return Ok(RedisServer { port, child });
            }
        }
        bail!("redis-server did not start")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
        for _ in 0..20 {
            if let Some(child) = spawn(self.port).await? {
                self.child = child;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("redis-server did not start again on port {}", self.port)
    }
}

/// A `redis-server` on `port` once it accepts connections; `None` if it
/// exited first (the port was taken).
async fn spawn(port: u16) -> anyhow::Result<Option<Child>> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting redis-server (scripts/setup.sh installs it)")?;
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
