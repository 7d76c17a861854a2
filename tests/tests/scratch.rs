use arena_server::ServerConfig;
use arena_tests::browser::Browser;
use arena_tests::{TestServer, http_get, test_config};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() -> anyhow::Result<()> {
    let dist = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("dist");
    let server = TestServer::start(ServerConfig { web_dir: Some(dist), ..test_config() }).await?;
    let mut browser = Browser::launch().await?;
    let page = browser.open(&format!("http://{}/?name=probe", server.addr)).await?;
    browser.wait_for(&page, "document.body.dataset.state === 'connected'", Duration::from_secs(60)).await?;
    browser.eval(&page, "window.__sent=0; window.__bytes=0; window.__ws=null; const o=WebSocket.prototype.send; WebSocket.prototype.send=function(d){window.__ws=this; window.__sent++; window.__bytes+=(d.size||d.byteLength||0); return o.call(this,d)}; true").await?;
    browser.eval(&page, "document.getElementById('arena-canvas').focus(), true").await?;
    browser.key(&page, true, "s", "KeyS", 83).await?;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    println!(
        "sent {:?} bytes {:?} buffered {:?} ready {:?}",
        browser.eval(&page, "window.__sent").await?,
        browser.eval(&page, "window.__bytes").await?,
        browser.eval(&page, "window.__ws && window.__ws.bufferedAmount").await?,
        browser.eval(&page, "window.__ws && window.__ws.readyState").await?
    );
    let snap = browser.eval(&page, "document.getElementById('arena-snapshot').dataset.snapshot").await?;
    println!("snap {}", snap.as_str().unwrap_or("").chars().take(700).collect::<String>());
    let m = String::from_utf8(http_get(server.addr, "/metrics", &[]).await?.body)?;
    for l in m.lines().filter(|l| !l.starts_with('#')) {
        println!("M {l}");
    }
    browser.key(&page, false, "s", "KeyS", 83).await?;
    Ok(())
}
