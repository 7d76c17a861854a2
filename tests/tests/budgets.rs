//! What a stranger can make the server hold through its newer doors: an
//! operator's order is never read before its token, and then only a few
//! KiB within the request deadline, on both listeners; recorded rounds are
//! bounded on disk and in memory (the store's own tests count the heap).

use std::net::SocketAddr;
use std::time::Duration;

use arena_tests::{ADMIN_TOKEN, TestServer, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` and then `body_bytes` of body (without waiting for them to
/// be read), then waits at most `within` for the answer; returns the
/// status line and whether the server closed the connection after it.
async fn post_and_stall(
    addr: SocketAddr,
    head: &str,
    body_bytes: usize,
    within: Duration,
) -> anyhow::Result<(String, bool)> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(head.as_bytes()).await?;
    // As much as the kernel takes at once: a stalled upload, not a slow one.
    let body = vec![b'{'; body_bytes];
    let _ = tokio::time::timeout(Duration::from_millis(200), tcp.write_all(&body)).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or(false);
    let text = String::from_utf8_lossy(&answer);
    let status = text.lines().next().unwrap_or_default().to_owned();
    Ok((status, closed))
}

fn order_head(token: Option<&str>, length: &str) -> String {
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!(
        "POST /admin/api/orders HTTP/1.1\r\nhost: arena\r\ncontent-type: application/json\r\n{auth}content-length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn an_order_s_body_is_read_only_after_its_token_and_only_a_few_kib_within_the_deadline()
-> anyhow::Result<()> {
    let config = test_config().with(|c| c.limits.header_timeout_ms = 800);
    let server = TestServer::start(config).await?;
    let quick = Duration::from_millis(1_500);

    // No token, or a wrong one: 401 before the 2 MB body is read.
    for token in [None, Some("wrong-token-0123456789")] {
        let (status, closed) =
            post_and_stall(server.addr, &order_head(token, "2000000"), 100_000, quick).await?;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{token:?}");
        assert!(closed, "the unread upload ends the connection: {token:?}");
    }
    // The token, and a body declared too large: 413 at once, on both listeners.
    for addr in [server.addr, server.operator] {
        let (status, closed) =
            post_and_stall(addr, &order_head(Some(ADMIN_TOKEN), "2000000"), 100_000, quick).await?;
        assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "{addr}");
        assert!(closed);
    }
    // Chunked, so nothing is declared: cut off past the limit.
    let chunked = format!(
        "POST /admin/api/orders HTTP/1.1\r\nhost: arena\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\
         transfer-encoding: chunked\r\n\r\n10000\r\n"
    );
    let (status, _) = post_and_stall(server.addr, &chunked, 0x10000, quick).await?;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    // A small body that stops coming: 408 once the request deadline passes.
    let started = tokio::time::Instant::now();
    let (status, closed) =
        post_and_stall(server.addr, &order_head(Some(ADMIN_TOKEN), "100"), 10, Duration::from_secs(5))
            .await?;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(closed);
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_millis(3_000)).contains(&waited),
        "answered after the 800 ms deadline, not never: {waited:?}"
    );
    server.stop().await
}
