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
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting redis-server (scripts/setup.sh installs it)")?;
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Ok(RedisServer { port, child });
                }
                if child.try_wait()?.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill().await;
        }
        bail!("redis-server did not start")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it at once, as a crash would (`SIGKILL`).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
