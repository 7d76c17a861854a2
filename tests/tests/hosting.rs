//! What a host runs: HTTPS and WSS with a certificate (one made here with
//! rcgen), and the self-contained binary `scripts/release.sh` builds, started
//! from an empty directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use arena_bots::ws::{ClientError, WsClient};
use arena_server::ServerConfig;
use arena_shared::protocol::{ServerMsg, close};
use arena_tests::{TestServer, expect_close, http_get, recv_until, test_config};
use tokio::io::{AsyncBufReadExt, BufReader};

fn gunzip(body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut raw)?;
    Ok(raw)
}

fn unbrotli(body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut raw = Vec::new();
    brotli_decompressor::BrotliDecompress(&mut &body[..], &mut raw)?;
    Ok(raw)
}

/// A self-signed certificate for 127.0.0.1, written as PEM files.
struct Certificate {
    dir: tempfile::TempDir,
    pem: String,
}

impl Certificate {
    fn new() -> anyhow::Result<Self> {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
        let dir = tempfile::tempdir()?;
        let pem = made.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &pem)?;
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem())?;
        Ok(Certificate { dir, pem })
    }

    fn config(&self) -> ServerConfig {
        test_config().with(|c| {
            c.net.tls_cert = Some(self.dir.path().join("cert.pem"));
            c.net.tls_key = Some(self.dir.path().join("key.pem"));
        })
    }
}

/// GET over TLS, trusting `trust`.
async fn https_get(
    server: &TestServer,
    path: &str,
    trust: Arc<rustls::ClientConfig>,
) -> anyhow::Result<arena_tests::HttpResponse> {
    let http = arena_bots::http::Http::new(Some(trust), Duration::from_secs(5), 1 << 20)?;
    Ok(http.get(&format!("https://127.0.0.1:{}{path}", server.addr.port())).await?)
}

#[tokio::test]
async fn https_and_wss_serve_the_game_with_the_hosts_certificate() -> anyhow::Result<()> {
    let certificate = Certificate::new()?;
    let server = TestServer::start(certificate.config()).await?;
    let trust = arena_bots::tls::trusting(certificate.pem.as_bytes()).map_err(anyhow::Error::msg)?;

    let health = https_get(&server, "/healthz", trust.clone()).await?;
    assert_eq!(health.status, 200, "healthz over HTTPS: {}", health.text());

    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());
    let mut client = WsClient::connect_with(&url, &[], Some(trust)).await?;
    let welcome = client.handshake("secure").await?;
    // Frames for this player arrive over WSS.
    recv_until(&mut client, |m| match m {
        ServerMsg::Frame(f) if f.you.id == welcome.you => Some(f.tick),
        _ => None,
    })
    .await?;

    let untrusted = WsClient::connect_with(&url, &[], None).await.err();
    assert!(
        matches!(&untrusted, Some(ClientError::Connect(e)) if e.starts_with("TLS")),
        "a client that does not trust the certificate fails its TLS handshake: {untrusted:?}"
    );
    let plain = WsClient::connect(&format!("ws://{}/ws", server.addr)).await.err();
    assert!(
        matches!(&plain, Some(ClientError::Connect(_) | ClientError::Lost(_))),
        "plain ws:// to a TLS port gets no WebSocket: {plain:?}"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_are_budgeted_per_address_and_honest_players_wait_their_turn() -> anyhow::Result<()> {
    let certificate = Certificate::new()?;
    let config = certificate.config().with(|c| c.limits.limit_loopback = true);
    let server = TestServer::start(config).await?;
    let trust = arena_bots::tls::trusting(certificate.pem.as_bytes()).map_err(anyhow::Error::msg)?;
    let url = format!("wss://127.0.0.1:{}/ws", server.addr.port());

    // Twenty players behind one address, all at once: past the 8 handshakes
    // one address may have in flight, they wait instead of being refused.
    let joins = (0..20).map(|n| {
        let (url, trust) = (url.clone(), trust.clone());
        tokio::spawn(async move {
            let mut client = WsClient::connect_with(&url, &[], Some(trust)).await?;
            client.handshake(&format!("lan{n}")).await?;
            Ok::<_, arena_bots::ws::ClientError>(client)
        })
    });
    let mut players = Vec::new();
    for join in joins {
        players.push(join.await??);
    }
    assert_eq!(players.len(), 20, "every player behind one address got in");
    assert_eq!(server.operator_metric("arena_tls_refused_total").await?, 0, "nobody was refused");

    // One address flooding full handshakes gets its burst (40) and then 20 a
    // second; the rest wait past their deadline and are refused.
    let flood = arena_attack::AttackConfig {
        kind: arena_attack::AttackKind::TlsFlood,
        url: url.clone(),
        count: 16,
        concurrency: 16,
        duration: Duration::from_secs(3),
        sources: vec![std::net::IpAddr::from([127, 0, 0, 9])],
    };
    let report = arena_attack::run_attack(flood).await;
    assert_eq!(report.failed, 0, "{report:?}");
    // 40 + 3 s × 20, and the handshakes still in their turn when it ended.
    assert!(report.completed <= 40 + 3 * 20 + 20, "the budget should hold the flood: {report:?}");
    assert!(report.completed >= 16, "every flooder gets at least its first handshake: {report:?}");
    for player in &mut players {
        recv_until(player, |m| matches!(m, ServerMsg::Frame(_)).then_some(())).await?;
    }
    server.stop().await
}

#[test]
fn a_bad_certificate_or_key_is_refused_with_a_reason() -> anyhow::Result<()> {
    let certificate = Certificate::new()?;
    let cert = certificate.dir.path().join("cert.pem");
    let key = certificate.dir.path().join("key.pem");
    let junk = certificate.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem file\n")?;
    let err = arena_server::edge::tls::acceptor(&junk, &key).err().expect("junk is no certificate");
    assert!(err.to_string().contains("no certificate"), "{err}");
    let err = arena_server::edge::tls::acceptor(&cert, &junk).err().expect("junk is no key");
    assert!(err.to_string().contains("private key"), "{err}");
    let other = Certificate::new()?;
    let err = arena_server::edge::tls::acceptor(&cert, &other.dir.path().join("key.pem"))
        .err()
        .expect("a key from another certificate is refused");
    assert!(err.to_string().contains("does not fit the certificate"), "{err}");
    Ok(())
}

/// `scripts/release.sh`'s output, or `ARENA_BUNDLE`.
fn bundle() -> Option<PathBuf> {
    let path = std::env::var_os("ARENA_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bundle/arena-server"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("ARENA_SKIP_BROWSER").is_ok_and(|v| v == "1"),
        "{} is missing: run scripts/release.sh (or set ARENA_SKIP_BROWSER=1 to skip the built-client tests)",
        path.display()
    );
    arena_tests::skipped(&format!("no self-contained binary at {} (ARENA_SKIP_BROWSER=1)", path.display()));
    None
}

#[tokio::test]
async fn the_self_contained_binary_serves_the_game_from_an_empty_directory() -> anyhow::Result<()> {
    let Some(bundle) = bundle() else { return Ok(()) };
    let empty = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(&bundle)
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(empty.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await??.unwrap_or_default();
    let addr: std::net::SocketAddr = first
        .strip_prefix("arena-server listening on http://")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("should say where it listens: {first}"))?;
    let second = lines.next_line().await?.unwrap_or_default();
    assert!(second.contains("play:"), "should offer a play URL, so it has the client: {second}");

    let index = http_get(addr, "/", &[]).await?;
    assert_eq!(index.status, 200, "/ should be the page");
    assert!(index.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{:?}", index.headers);
    let page = String::from_utf8_lossy(&index.body);
    // An invite link is the page itself, from inside the binary too.
    let invite = http_get(addr, "/r/k3x9q2m7pd", &[]).await?;
    assert_eq!(invite.status, 200, "/r/<code> should be the page");
    assert!(
        invite.header("content-type").is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        invite.headers
    );
    assert_eq!(invite.body, index.body, "the invite link serves the same page");
    let replay = http_get(addr, "/replay/0123456789abcdef0123456789abcdef", &[]).await?;
    assert_eq!(replay.body, index.body, "so does a replay's link");
    let wasm = page
        .split('"')
        .find(|part| part.ends_with("_bg.wasm"))
        .ok_or_else(|| anyhow::anyhow!("the page should name its wasm: {page}"))?
        .to_owned();

    let brotli = http_get(addr, &wasm, &[("Accept-Encoding", "gzip, br")]).await?;
    assert_eq!(brotli.status, 200, "{wasm}");
    assert_eq!(brotli.header("content-type"), Some("application/wasm"));
    assert_eq!(brotli.header("content-encoding"), Some("br"), "the brotli sibling should be sent");
    let cache = brotli.header("cache-control").unwrap_or_default();
    assert!(cache.contains("immutable"), "hashed files are cached for good: {cache}");
    assert!(brotli.body.len() > 100_000, "the wasm should be all there: {} bytes", brotli.body.len());
    let raw = http_get(addr, &wasm, &[]).await?;
    assert_eq!(raw.header("content-encoding"), None, "no encoding asked, none sent");
    assert!(raw.body.starts_with(b"\0asm"), "the raw wasm");
    // Carried once, as brotli: gzip (a browser over plain http) and raw
    // are made from it, and all three are the same wasm as the build's.
    let gzipped = http_get(addr, &wasm, &[("Accept-Encoding", "gzip")]).await?;
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"), "gzip for a client that takes only gzip");
    assert_eq!(gzipped.header("content-type"), Some("application/wasm"));
    assert_eq!(gunzip(&gzipped.body)?, raw.body, "the gzip form is the wasm");
    assert_eq!(unbrotli(&brotli.body)?, raw.body, "the brotli form is the wasm");
    let again = http_get(addr, &wasm, &[("Accept-Encoding", "gzip")]).await?;
    assert_eq!(again.body, gzipped.body, "made once and kept");
    assert_eq!(again.header("etag"), gzipped.header("etag"));
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist").join(wasm.trim_start_matches('/'));
    if let Ok(built) = std::fs::read(&built) {
        assert_eq!(raw.body, built, "the same bytes as dist/ has");
    }
    let size = std::fs::metadata(&bundle)?.len();
    // 10.1 MiB since the cluster's Redis client speaks TLS and follows
    // Sentinels (a second copy of its connection code, for TLS streams).
    assert!(size <= 11 * 1024 * 1024, "the host's one file is at most 11 MiB, not {size} bytes");

    let mut bot = WsClient::connect(&format!("ws://{addr}/ws")).await?;
    let welcome = bot.handshake("bundle-bot").await?;
    let frame = recv_until(&mut bot, |m| match m {
        ServerMsg::Frame(f) if f.you.id == welcome.you => Some(f.tick),
        _ => None,
    })
    .await?;
    assert!(frame > 0, "a bot should play against the binary");
    bot.close().await;
    let echoed = expect_close(&mut bot).await?;
    assert_eq!(echoed.map(|(code, _)| code), Some(close::NORMAL), "the binary echoes a goodbye");
    child.start_kill()?;
    Ok(())
}

/// Debian's nginx, if installed (`scripts/setup.sh` installs it with the
/// other test tools).
fn nginx() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/sbin/nginx");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("ARENA_SKIP_BROWSER").is_ok_and(|v| v == "1"),
        "nginx is missing: run scripts/setup.sh (or set ARENA_SKIP_BROWSER=1 to skip)"
    );
    arena_tests::skipped("no nginx (ARENA_SKIP_BROWSER=1)");
    None
}

/// The README's nginx site, on `port`, in front of `backend`.
fn nginx_config(dir: &std::path::Path, port: u16, backend: std::net::SocketAddr) -> String {
    let dir = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{backend};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 1h;
    }}
  }}
}}
"#
    )
}

#[tokio::test]
async fn behind_nginx_pages_from_the_public_name_play_and_others_are_refused() -> anyhow::Result<()> {
    let Some(nginx) = nginx() else { return Ok(()) };
    let config = test_config().with(|c| {
        c.net.behind_proxy = true;
        c.net.public_hosts = vec!["arena.test".into()];
    });
    let server = TestServer::start(config).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_config(dir.path(), port, server.addr))?;
    let _nginx = tokio::process::Command::new(nginx)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let proxy = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut health = None;
    for _ in 0..50 {
        health = http_get(proxy, "/healthz", &[]).await.ok().map(|r| r.status);
        if health == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health, Some(200), "healthz through nginx");

    // A page on http://arena.test:PORT, as a browser sends it through the proxy.
    let url = format!("ws://{proxy}/ws");
    let page_host = format!("arena.test:{port}");
    let origin = format!("http://{page_host}");
    let mut player =
        WsClient::connect_with_headers(&url, &[("host", &page_host), ("origin", &origin)]).await?;
    let welcome = player.handshake("proxied").await?;
    let tick = recv_until(&mut player, |m| match m {
        ServerMsg::Frame(f) if f.you.id == welcome.you => Some(f.tick),
        _ => None,
    })
    .await?;
    assert!(tick > 0, "frames should come through nginx");

    let evil =
        WsClient::connect_with_headers(&url, &[("host", "evil.example"), ("origin", "http://evil.example")])
            .await;
    assert!(
        matches!(evil, Err(arena_bots::ws::ClientError::Http(403))),
        "a page under a name the server does not answer to is refused through the proxy"
    );
    server.stop().await
}

#[tokio::test]
async fn a_plain_trunk_build_is_served_gzipped_made_once_and_siblings_win() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let wasm: Vec<u8> = (0..400_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>arena</title>")?;
    std::fs::write(dir.path().join("app-0123456789abcdef_bg.wasm"), &wasm)?;
    std::fs::write(dir.path().join("style-0123456789abcdef.css"), "body { color: red }")?;
    // A sibling someone made: it is what a gzip client gets.
    std::fs::write(dir.path().join("style-0123456789abcdef.css.gz"), flate2_gzip(b"body { color: blue }"))?;
    let config = test_config().with(|c| c.net.web_dir = Some(dir.path().to_owned()));
    let server = TestServer::start(config).await?;
    let path = "/app-0123456789abcdef_bg.wasm";

    let gzipped = http_get(server.addr, path, &[("Accept-Encoding", "gzip, br")]).await?;
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"), "{:?}", gzipped.headers);
    assert_eq!(gzipped.header("content-type"), Some("application/wasm"));
    assert!(gzipped.header("cache-control").is_some_and(|c| c.contains("immutable")));
    assert!(
        gzipped.body.len() < wasm.len() / 4,
        "compressed: {} of {} bytes",
        gzipped.body.len(),
        wasm.len()
    );
    assert_eq!(gunzip(&gzipped.body)?, wasm);
    let again = http_get(server.addr, path, &[("Accept-Encoding", "gzip")]).await?;
    assert_eq!(again.body, gzipped.body, "kept");
    let raw = http_get(server.addr, path, &[]).await?;
    assert_eq!(raw.header("content-encoding"), None);
    assert_eq!(raw.body, wasm, "raw for a client that takes no encoding");

    let css = http_get(server.addr, "/style-0123456789abcdef.css", &[("Accept-Encoding", "gzip")]).await?;
    assert_eq!(gunzip(&css.body)?, b"body { color: blue }", "a sibling on disk wins");
    let escape = http_get(server.addr, "/../Cargo.toml", &[("Accept-Encoding", "gzip")]).await?;
    assert_ne!(escape.status, 200, "nothing outside the directory");
    server.stop().await
}

fn flate2_gzip(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(raw).expect("to a Vec");
    encoder.finish().expect("to a Vec")
}
