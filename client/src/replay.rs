//! The replay page, `/replay/<id>`: the recording is downloaded once
//! (`GET /api/replays/<id>`) and re-run here by the shared rules
//! ([`ReplayFeed`]); no server is needed after that. Its messages go into a
//! watcher's [`ClientSession`], so the platform, players, names, feed,
//! leaderboard and podium are drawn as in a game, and the watcher's keys
//! and clicks pick whom the camera follows.
//!
//! The bar under the page (`#replay-bar`) plays and pauses, sets the speed
//! (0.5× to 4×) and scrubs; its script writes `data-replay-paused`,
//! `data-replay-speed` and `data-replay-seek` on `<body>`, and this reads
//! them each frame. A recording from another version, or one whose re-run
//! differs from its checksums, is refused in words, and nothing is drawn.

use std::sync::{Arc, Mutex};

use arena_shared::protocol::{ClientMsg, RoomRequest};
use arena_shared::replay::Replay;
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::{Policy, Session, SessionChange, end_session, report};
use super::page::{body_attr, now_secs, replay_id, set_body_attr};
use super::screen::{ArenaSet, Screen};
use arena_client_core::replay::{REPLAY_ROOM, ReplayFeed};
use arena_client_core::session::{ClientSession, JoinRequest};

/// The most ticks one page frame plays: a stalled tab catches up in steps.
const MAX_TICKS_PER_FRAME: u32 = 16;

/// The speeds the bar offers.
const SPEEDS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];

/// Where the download lands: the bytes, or why there are none.
type Download = Arc<Mutex<Option<Result<Vec<u8>, String>>>>;

/// The replay this page shows (its id from the path), once loaded.
#[derive(Resource)]
pub struct ReplayPage {
    pub id: String,
    /// The download, when it is done: the bytes or why not.
    download: Download,
    player: Option<Player>,
    /// What went wrong, for the status line.
    pub error: Option<String>,
}

impl ReplayPage {
    /// The recording's own tick rate (not times the speed), once playing.
    pub fn tick_rate(&self) -> Option<u16> {
        self.player.as_ref().map(|p| p.feed.tick_rate())
    }

    /// Seconds played and in all, and the speed, once playing.
    pub fn progress(&self) -> Option<(f64, f64, f64)> {
        let player = self.player.as_ref()?;
        let rate = f64::from(player.feed.tick_rate().max(1));
        Some((f64::from(player.feed.tick()) / rate, f64::from(player.feed.ticks()) / rate, player.speed))
    }
}

/// The feed and how it is being played.
struct Player {
    feed: ReplayFeed,
    speed: f64,
    paused: bool,
    /// Ticks owed to the clock, fractional.
    owed: f64,
    last_at: f64,
}

pub struct ReplayPlugin;

impl Plugin for ReplayPlugin {
    fn build(&self, app: &mut App) {
        let Some(id) = replay_id() else { return };
        set_body_attr("data-replay", "1");
        let download = Arc::new(Mutex::new(None));
        start_download(&id, download.clone());
        app.insert_resource(ReplayPage { id, download, player: None, error: None })
            .add_systems(Update, play.in_set(ArenaSet::Network));
    }
}

/// Fetches the recording into `into`.
fn start_download(id: &str, into: Download) {
    let url = format!("/api/replays/{id}");
    wasm_bindgen_futures::spawn_local(async move {
        let result = match gloo_net::http::Request::get(&url).send().await {
            Ok(response) if response.ok() => response.binary().await.map_err(|e| e.to_string()),
            Ok(response) if response.status() == 404 => {
                Err("this replay is not kept any more (rounds make room for newer ones)".to_owned())
            }
            Ok(response) => Err(format!("the server answered {}", response.status())),
            Err(e) => Err(format!("the download failed: {e}")),
        };
        if let Ok(mut slot) = into.lock() {
            *slot = Some(result);
        }
    });
}

fn play(
    mut page: ResMut<ReplayPage>,
    mut session: ResMut<Session>,
    mut policy: ResMut<Policy>,
    mut changes: MessageWriter<SessionChange>,
    mut next: ResMut<NextState<Screen>>,
) {
    let now = now_secs();
    if page.player.is_none() && page.error.is_none() {
        let Some(downloaded) = page.download.lock().ok().and_then(|mut slot| slot.take()) else { return };
        match downloaded.and_then(|bytes| start(&bytes, now)) {
            Ok(player) => page.player = Some(player),
            Err(why) => return fail(&mut page, why, &mut session, &mut changes),
        }
        set_body_attr("data-replay-ticks", &page.player.as_ref().map_or(0, |p| p.feed.ticks()).to_string());
        rewelcome(&mut page, &mut session, &mut changes, now);
    }
    let Some(player) = page.player.as_mut() else { return };
    if obey_the_bar(player) {
        rewelcome(&mut page, &mut session, &mut changes, now);
    }
    let Some(player) = page.player.as_mut() else { return };
    if !player.paused {
        player.owed += (now - player.last_at) * f64::from(player.feed.tick_rate()) * player.speed;
    }
    player.last_at = now;
    let due = (player.owed.floor() as u32).min(MAX_TICKS_PER_FRAME);
    player.owed = (player.owed - f64::from(due)).clamp(0.0, f64::from(MAX_TICKS_PER_FRAME));
    if let Some(playing) = session.0.as_mut() {
        for _ in 0..due {
            for msg in player.feed.step() {
                let _ = playing.handle(msg, now);
            }
        }
        // The watcher's camera choices go to the feed; nothing else is sent.
        while let Some(msg) = playing.poll_transmit(now) {
            if let ClientMsg::Follow { id } = msg {
                player.feed.follow(id);
            }
        }
    }
    if player.feed.is_over() && !player.paused {
        player.paused = true;
        set_body_attr("data-replay-paused", "1");
    }
    set_body_attr("data-replay-tick", &player.feed.tick().to_string());
    if let Some(why) =
        player.feed.failed().map(|e| format!("this replay does not match the game's rules: {e}"))
    {
        return fail(&mut page, why, &mut session, &mut changes);
    }
    report(&mut session, &mut policy, &mut changes, &mut next);
}

/// A feed for `bytes`, or why there is none.
fn start(bytes: &[u8], now: f64) -> Result<Player, String> {
    let replay = Replay::decode(bytes).map_err(|e| format!("this is not a recording ({e})"))?;
    let feed = ReplayFeed::new(replay).map_err(|e| format!("this replay cannot be played here: {e}"))?;
    Ok(Player { feed, speed: 1.0, paused: false, owed: 0.0, last_at: now })
}

/// Reads the bar: pause, speed and a seek. `true` when the page must be
/// welcomed again (a new speed or a seek starts the session over).
fn obey_the_bar(player: &mut Player) -> bool {
    player.paused = body_attr("data-replay-paused").as_deref() == Some("1");
    let speed = body_attr("data-replay-speed")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| SPEEDS.contains(s))
        .unwrap_or(1.0);
    let mut restart = speed != player.speed;
    player.speed = speed;
    if let Some(tick) = body_attr("data-replay-seek").and_then(|t| t.parse::<u32>().ok()) {
        set_body_attr("data-replay-seek", "");
        player.feed.seek(tick);
        restart = true;
    }
    restart
}

/// Starts a new watcher's session at the feed's tick, its clock running at
/// the replay's rate times the speed.
fn rewelcome(
    page: &mut ReplayPage,
    session: &mut Session,
    changes: &mut MessageWriter<SessionChange>,
    now: f64,
) {
    let Some(player) = page.player.as_mut() else { return };
    end_session(session, changes);
    let room = RoomRequest::Watch { code: REPLAY_ROOM.to_owned() };
    let mut watcher =
        ClientSession::new(JoinRequest { name: String::new(), color: 0, room, resume: None }, 1e9);
    let rate = (f64::from(player.feed.tick_rate()) * player.speed).round() as u16;
    let _ = watcher.handle(player.feed.welcome(rate), now);
    // A frame at once, so the players are drawn even while paused.
    if let Some(frame) = player.feed.frame_now() {
        let _ = watcher.handle(frame, now);
    }
    session.0 = Some(watcher);
    player.last_at = now;
}

/// Stops with `why` on the status line, drawing nothing.
fn fail(
    page: &mut ReplayPage,
    why: String,
    session: &mut Session,
    changes: &mut MessageWriter<SessionChange>,
) {
    tracing::warn!("replay {}: {why}", page.id);
    end_session(session, changes);
    set_body_attr("data-replay-error", "1");
    page.error = Some(why);
    page.player = None;
}
