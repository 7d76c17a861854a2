//! Headless Chromium driven over the DevTools protocol: just enough to open
//! a page, evaluate JavaScript, press keys and take a screenshot. It starts
//! Debian's `chromium` (or `$CHROMIUM`) and never downloads a browser.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Browser {
    child: Child,
    cdp: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Console messages and uncaught exceptions seen so far (the newest 200).
    pub console: Vec<String>,
    /// A fresh profile directory, removed when the browser is dropped.
    _profile: tempfile::TempDir,
}

/// One open tab.
pub struct Page {
    session: String,
}

/// A page's size in CSS pixels, its device pixel ratio, and whether it is
/// a phone (a mobile viewport with touch).
#[derive(Debug, Clone, Copy)]
pub struct Screen {
    pub width: u32,
    pub height: u32,
    /// 0: the browser's own ratio.
    pub ratio: f64,
    pub mobile: bool,
}

impl Screen {
    /// A laptop, or any Retina Mac, at ratio 1 (`with_ratio` for others).
    pub const LAPTOP: Screen = Screen { width: 1280, height: 800, ratio: 1.0, mobile: false };
    /// A tablet held upright.
    pub const TABLET: Screen = Screen { width: 768, height: 1024, ratio: 2.0, mobile: false };
    /// A phone (an iPhone's size and ratio).
    pub const PHONE: Screen = Screen { width: 390, height: 844, ratio: 3.0, mobile: true };

    pub const fn with_ratio(self, ratio: f64) -> Screen {
        Screen { ratio, ..self }
    }

    /// The DevTools calls that make a tab this screen.
    fn emulation(self) -> Vec<(&'static str, Value)> {
        // A ratio of 0 keeps the browser's own (`--force-device-scale-factor`).
        let metrics = json!({
            "width": self.width,
            "height": self.height,
            "deviceScaleFactor": self.ratio,
            "mobile": self.mobile,
        });
        let touch = json!({ "enabled": self.mobile, "maxTouchPoints": 5 });
        vec![("Emulation.setDeviceMetricsOverride", metrics), ("Emulation.setTouchEmulationEnabled", touch)]
    }
}

/// A screenshot: RGB(A) device pixels, row by row.
pub struct Shot {
    pub width: u32,
    pub height: u32,
    channels: usize,
    pixels: Vec<u8>,
}

impl Shot {
    /// Decodes a PNG as Chromium writes them (8-bit RGB or RGBA).
    pub fn decode(png_bytes: &[u8]) -> anyhow::Result<Shot> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info()?;
        let mut pixels = vec![0; reader.output_buffer_size().context("a screenshot's size")?];
        let frame = reader.next_frame(&mut pixels)?;
        let channels = match frame.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => bail!("a screenshot in {other:?}"),
        };
        pixels.truncate(frame.buffer_size());
        Ok(Shot { width: frame.width, height: frame.height, channels, pixels })
    }

    /// The colour at device pixel (x, y) as 0xRRGGBB; `None` off the shot.
    pub fn rgb(&self, x: i64, y: i64) -> Option<u32> {
        let (x, y) = (u32::try_from(x).ok()?, u32::try_from(y).ok()?);
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * self.channels;
        let p = self.pixels.get(at..at + 3)?;
        Some(u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]))
    }
}

/// Whether two colours are the same within `tolerance` per channel.
pub fn same_colour(a: u32, b: u32, tolerance: u8) -> bool {
    (0..3).all(|i| ((a >> (8 * i)) as u8).abs_diff((b >> (8 * i)) as u8) <= tolerance)
}

pub fn chromium_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Ok(path.into());
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    bail!(
        "no chromium found: install Debian's (`apt-get install chromium`, done by scripts/setup.sh) or set CHROMIUM"
    )
}

impl Browser {
    pub async fn launch() -> anyhow::Result<Browser> {
        Self::launch_with(&[]).await
    }

    /// Launches with extra command-line flags (`--ignore-certificate-errors`
    /// for a server with a certificate made in the test).
    pub async fn launch_with(extra: &[&str]) -> anyhow::Result<Browser> {
        let profile = tempfile::Builder::new().prefix("arena-chromium-").tempdir()?;
        let mut child = Command::new(chromium_path()?)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-unsafe-swiftshader",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--window-size=1280,720",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromium")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let mut lines = BufReader::new(stderr).lines();
        let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("chromium exited before opening DevTools")
        })
        .await
        .context("chromium did not start within 30s")??;
        // Keep draining stderr so chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (cdp, _) = tokio_tungstenite::connect_async(&endpoint).await.context("connecting to DevTools")?;
        Ok(Browser { child, cdp, next_id: 0, console: Vec::new(), _profile: profile })
    }

    /// Sends one DevTools command and waits for its result (events are skipped).
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.cdp.send(Message::Text(command.to_string().into())).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let message = tokio::time::timeout_at(deadline, self.cdp.next())
                .await
                .with_context(|| format!("{method} got no answer within 30s"))?
                .context("DevTools connection closed")??;
            let Message::Text(text) = message else { continue };
            let reply: Value = serde_json::from_str(&text)?;
            if reply["id"] != json!(id) {
                self.record_console(&reply);
                continue;
            }
            if let Some(error) = reply.get("error") {
                bail!("{method} failed: {error}");
            }
            return Ok(reply["result"].clone());
        }
    }

    fn record_console(&mut self, event: &Value) {
        let line = match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args = event["params"]["args"].as_array().cloned().unwrap_or_default();
                let text: Vec<String> = args
                    .iter()
                    .map(|a| a["value"].as_str().map_or_else(|| a["value"].to_string(), str::to_owned))
                    .collect();
                format!("console.{}: {}", event["params"]["type"].as_str().unwrap_or("log"), text.join(" "))
            }
            Some("Runtime.exceptionThrown") => {
                format!("exception: {}", event["params"]["exceptionDetails"]["exception"]["description"])
            }
            _ => return,
        };
        if self.console.len() == 200 {
            self.console.remove(0);
        }
        self.console.push(line);
    }

    /// Opens `url` in a new tab.
    pub async fn open(&mut self, url: &str) -> anyhow::Result<Page> {
        self.open_as(url, &[]).await
    }

    /// Opens `url` in a new tab sized and behaving like a phone: 390×844
    /// CSS pixels at a device pixel ratio of 3, a mobile viewport, and
    /// touch input.
    pub async fn open_phone(&mut self, url: &str) -> anyhow::Result<Page> {
        self.open_on(url, Screen::PHONE).await
    }

    /// Opens `url` in a new tab on `screen`.
    pub async fn open_on(&mut self, url: &str, screen: Screen) -> anyhow::Result<Page> {
        self.open_as(url, &screen.emulation()).await
    }

    /// Moves an open page to `screen`, as turning a phone or dragging a
    /// window to another monitor does: the page resizes, nothing reloads.
    pub async fn set_screen(&mut self, page: &Page, screen: Screen) -> anyhow::Result<()> {
        for (method, params) in screen.emulation() {
            self.call(Some(&page.session), method, params).await?;
        }
        Ok(())
    }

    /// Opens `url` in a new tab with `script` run in it before any of the
    /// page's own (to record when things happen, say).
    pub async fn open_watched(&mut self, url: &str, script: &str) -> anyhow::Result<Page> {
        self.open_as(url, &[("Page.addScriptToEvaluateOnNewDocument", json!({ "source": script }))]).await
    }

    /// Opens `url` in a new tab whose downloads are held to
    /// `bytes_per_sec` (a slow mobile network).
    pub async fn open_throttled(&mut self, url: &str, bytes_per_sec: u32) -> anyhow::Result<Page> {
        let conditions = json!({
            "offline": false,
            "latency": 0,
            "downloadThroughput": bytes_per_sec,
            "uploadThroughput": -1,
        });
        self.open_as(url, &[("Network.enable", json!({})), ("Network.emulateNetworkConditions", conditions)])
            .await
    }

    /// Opens a tab, makes `setup`'s calls (method and parameters) in it,
    /// then goes to `url`.
    async fn open_as(&mut self, url: &str, setup: &[(&str, Value)]) -> anyhow::Result<Page> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = self
            .call(None, "Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }))
            .await?;
        let page = Page { session: attached["sessionId"].as_str().context("sessionId")?.to_owned() };
        let s = Some(page.session.as_str());
        self.call(s, "Page.enable", json!({})).await?;
        self.call(s, "Runtime.enable", json!({})).await?;
        // Headless has no window focus; without this the page never gets key events.
        self.call(s, "Emulation.setFocusEmulationEnabled", json!({ "enabled": true })).await?;
        for (method, params) in setup {
            self.call(s, method, params.clone()).await?;
        }
        self.call(s, "Page.navigate", json!({ "url": url })).await?;
        Ok(page)
    }

    /// Sends the page to `url`, as a click on a link does (one tab rendering
    /// instead of two).
    pub async fn navigate(&mut self, page: &Page, url: &str) -> anyhow::Result<()> {
        self.call(Some(&page.session), "Page.navigate", json!({ "url": url })).await?;
        Ok(())
    }

    /// Reloads the page, as a player pressing F5 does.
    pub async fn reload(&mut self, page: &Page) -> anyhow::Result<()> {
        self.call(Some(&page.session), "Page.reload", json!({})).await?;
        Ok(())
    }

    /// Evaluates `expression` in the page and returns its JSON value.
    pub async fn eval(&mut self, page: &Page, expression: &str) -> anyhow::Result<Value> {
        let result = self
            .call(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        if let Some(exception) = result.get("exceptionDetails") {
            bail!("{expression} threw: {exception}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it returns true; while the page is still
    /// loading, an exception just means "not yet".
    pub async fn wait_for(&mut self, page: &Page, expression: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.eval(page, expression).await;
            if matches!(&value, Ok(v) if *v == json!(true)) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let status = self.eval(page, "document.getElementById('status')?.textContent").await;
                let console = self.console.join("\n  ");
                bail!(
                    "waited {timeout:?} for `{expression}` (last: {value:?}); the page says: {status:?}\n\
                     console:\n  {console}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses (`down`) or releases a key, e.g. ("d", "KeyD", 68).
    pub async fn key(
        &mut self,
        page: &Page,
        down: bool,
        key: &str,
        code: &str,
        key_code: u32,
    ) -> anyhow::Result<()> {
        let params = json!({
            "type": if down { "keyDown" } else { "keyUp" },
            "key": key,
            "code": code,
            "windowsVirtualKeyCode": key_code,
            "nativeVirtualKeyCode": key_code,
        });
        self.call(Some(&page.session), "Input.dispatchKeyEvent", params).await?;
        Ok(())
    }

    /// One touch event (`touchStart`, `touchMove`, `touchEnd`) with one
    /// finger at (x, y) CSS pixels; `touchEnd` lifts every finger.
    pub async fn touch(&mut self, page: &Page, kind: &str, x: f64, y: f64) -> anyhow::Result<()> {
        let points = if kind == "touchEnd" { json!([]) } else { json!([{ "x": x, "y": y, "id": 1 }]) };
        let params = json!({ "type": kind, "touchPoints": points });
        self.call(Some(&page.session), "Input.dispatchTouchEvent", params).await?;
        Ok(())
    }

    /// A left click at (x, y) CSS pixels: the mouse pressed and released.
    pub async fn click(&mut self, page: &Page, x: f64, y: f64) -> anyhow::Result<()> {
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            let params =
                json!({ "type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1 });
            self.call(Some(&page.session), "Input.dispatchMouseEvent", params).await?;
        }
        Ok(())
    }

    /// Writes a PNG screenshot of the page to `path`.
    pub async fn screenshot(&mut self, page: &Page, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.screenshot_png(page).await?)?;
        Ok(())
    }

    /// The page as the screen shows it, in device pixels.
    pub async fn capture(&mut self, page: &Page) -> anyhow::Result<Shot> {
        Shot::decode(&self.screenshot_png(page).await?)
    }

    async fn screenshot_png(&mut self, page: &Page) -> anyhow::Result<Vec<u8>> {
        let shot =
            self.call(Some(&page.session), "Page.captureScreenshot", json!({ "format": "png" })).await?;
        let data = shot["data"].as_str().context("screenshot data")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    }

    pub async fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
