//! The page around the game: its clock, its URL (`?server=`, `?play`,
//! `?create`, `?lag=`, `/r/<code>`, `/replay/<id>`), the join screen's choices on `<body>`,
//! the seat kept in `sessionStorage`, and the invite link. Only DOM and
//! browser APIs; no ECS.

use arena_shared::protocol::{COLORS, ResumeToken};

/// Seconds on the page's monotonic clock (`performance.now()`), the one
/// timebase for frame arrivals, pings and rendering.
pub fn now_secs() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now() / 1000.0).unwrap_or_default()
}

/// The canvas's size in CSS pixels: what the page's layout (names over
/// players, clicks on them) and the view's zoom are measured in. Bevy's own
/// logical size is the drawing buffer over its idea of the pixel ratio,
/// which is not the page's under every browser (device emulation, for one,
/// scales the ratio but not the buffer); CSS pixels are the page's at any
/// ratio. `None` before the canvas has a size.
pub fn canvas_css_size() -> Option<(f32, f32)> {
    let canvas = web_sys::window()?.document()?.get_element_by_id("arena-canvas")?;
    let (width, height) = (canvas.client_width() as f32, canvas.client_height() as f32);
    (width > 0.0 && height > 0.0).then_some((width, height))
}

/// An attribute of the page's `<body>` (the page's script writes the join
/// screen's choices and the touch controls there).
pub fn body_attr(name: &str) -> Option<String> {
    web_sys::window()?.document()?.body()?.get_attribute(name)
}

/// Sets an attribute of the page's `<body>` (where the page's CSS and
/// script read the game's state).
pub fn set_body_attr(name: &str, value: &str) {
    if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
        let _ = body.set_attribute(name, value);
    }
}

/// The page's query parameter `key`, if present.
pub fn query_param(key: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()?.get(key)
}

/// Whether the page's query has `key` (`?play`, `?name=…`, `?create`).
pub fn query_has(key: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .is_some_and(|params| params.has(key))
}

/// `?server=` if given, else `/ws` on the host that served the page, with
/// `wss:` when the page is `https:`.
pub fn server_url() -> String {
    if let Some(server) = query_param("server").filter(|s| !s.is_empty()) {
        return server;
    }
    let location = web_sys::window().map(|w| w.location());
    let host = location.as_ref().and_then(|l| l.host().ok()).unwrap_or_else(|| "127.0.0.1:7777".into());
    let secure = location.as_ref().and_then(|l| l.protocol().ok()).is_some_and(|p| p == "https:");
    format!("{}://{host}/ws", if secure { "wss" } else { "ws" })
}

/// Where the tab keeps its seat: `room-code:token-in-hex`.
const SEAT_KEY: &str = "arena-seat";

/// The room and resume token this tab last played with, if any.
pub fn saved_seat() -> Option<(String, ResumeToken)> {
    let storage = web_sys::window()?.session_storage().ok()??;
    let saved = storage.get_item(SEAT_KEY).ok()??;
    let (room, hex) = saved.split_once(':')?;
    let mut token = [0u8; 16];
    for (i, byte) in token.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((room.to_owned(), token))
}

/// Keeps the seat for a reload or a dropped socket.
pub fn save_seat(room: &str, token: &ResumeToken) {
    let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.session_storage()) {
        let _ = storage.set_item(SEAT_KEY, &format!("{room}:{hex}"));
    }
}

/// Shows the invite link of a private room (`data-private` on `<body>`
/// reveals it, with its Copy button).
pub fn show_invite(room: &str, private: bool) {
    let Some(window) = web_sys::window() else { return };
    let Some(document) = window.document() else { return };
    if let Some(body) = document.body() {
        let _ = body.set_attribute("data-private", if private { "1" } else { "0" });
    }
    let origin = window.location().origin().unwrap_or_default();
    let link = format!("{origin}/r/{room}");
    if let Some(anchor) = document.get_element_by_id("invite-link") {
        let _ = anchor.set_attribute("href", &link);
        anchor.set_text_content(Some(&link));
    }
}

/// The code in an invite link's path, `/r/<code>`.
pub fn link_room() -> Option<String> {
    let path = web_sys::window()?.location().pathname().ok()?;
    let code = path.strip_prefix("/r/")?.trim_end_matches('/');
    (!code.is_empty()).then(|| code.to_owned())
}

/// `/replay/<32 hex digits>`: the id, if this page is a replay's.
pub fn replay_id() -> Option<String> {
    let path = web_sys::window()?.location().pathname().ok()?;
    let id = path.strip_prefix("/replay/")?.trim_end_matches('/');
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

/// The join screen's name (`data-name`, from the name box, `?name=` or
/// the one remembered), else a generated one.
pub fn player_name() -> String {
    body_attr("data-name").filter(|n| !n.trim().is_empty()).unwrap_or_else(|| {
        const ANIMALS: [&str; 8] = ["otter", "lynx", "heron", "gecko", "bison", "koala", "raven", "tapir"];
        let n = (now_secs() * 1000.0) as usize ^ (page_opened_at() as usize);
        format!("{}-{}", ANIMALS[n % ANIMALS.len()], n % 1000)
    })
}

/// The join screen's colour (`data-color`).
pub fn player_color() -> u8 {
    body_attr("data-color").and_then(|c| c.parse::<u8>().ok()).filter(|&c| c < COLORS).unwrap_or(0)
}

/// When the page was opened (µs, truncated): enough to tell two tabs'
/// generated names apart; nothing depends on it being random.
pub fn page_opened_at() -> u32 {
    (web_sys::window().and_then(|w| w.performance()).map(|p| p.time_origin()).unwrap_or_default() * 1000.0)
        as u32
}

/// 64 bits from the browser's randomness (`crypto.getRandomValues`), for
/// what must differ between pages, like when each retries after a restart;
/// the page's opening time if the browser has no crypto.
pub fn random_seed() -> u64 {
    let mut bits = [0u8; 8];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|crypto| crypto.get_random_values_with_u8_array(&mut bits).is_ok());
    if filled { u64::from_le_bytes(bits) } else { u64::from(page_opened_at()) }
}

/// `?lag=MS&jitter=MS`, each clamped to 0..=5000 ms.
pub fn lag_query() -> (u32, u32) {
    let param = |key| {
        query_param(key)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .map_or(0, |v| v.clamp(0.0, 5_000.0) as u32)
    };
    (param("lag"), param("jitter"))
}
