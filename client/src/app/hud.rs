//! The page around the canvas: the status line (loading, connecting,
//! connected with ping / fps / players, rejected with the server's reason,
//! disconnected and retrying), `data-state` on `<body>`, and a JSON snapshot
//! of the client's view on `#arena-snapshot` for tests.

use arena_shared::sim::FIXED_ONE;
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::{ConnState, Game, Net};
use super::now_secs;
use super::render::Drawn;

/// DOM updates per second: plenty for people, cheap for the frame.
const HUD_REFRESH_SECS: f64 = 0.25;

pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<FrameStats>().add_systems(Last, update_hud);
    }
}

#[derive(Resource, Default)]
struct FrameStats {
    /// Smoothed frame time, ms.
    frame_ms: f64,
    last_refresh: f64,
}

fn update_hud(
    time: Res<Time<Real>>,
    net: Res<Net>,
    game: Res<Game>,
    drawn: Res<Drawn>,
    mut stats: ResMut<FrameStats>,
) {
    let dt_ms = time.delta_secs_f64() * 1000.0;
    if dt_ms > 0.0 {
        stats.frame_ms = if stats.frame_ms == 0.0 { dt_ms } else { stats.frame_ms * 0.95 + dt_ms * 0.05 };
    }
    let now = now_secs();
    if now - stats.last_refresh < HUD_REFRESH_SECS {
        return;
    }
    stats.last_refresh = now;
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };

    let fps = if stats.frame_ms > 0.0 { 1000.0 / stats.frame_ms } else { 0.0 };
    let ping = game.rtt.smoothed_ms();
    let retrying = |at: f64| match (at - now).ceil() {
        secs if secs >= 1.0 => format!("retrying in {secs}s"),
        _ => "retrying now".to_owned(),
    };
    let (state, text) = match &net.state {
        ConnState::Choosing => ("landing", "Play with anyone, or make a room for your friends.".to_owned()),
        ConnState::RoomGone { message } => ("room-gone", format!("Rejected: {message}")),
        ConnState::Connecting => ("connecting", format!("Connecting to {}…", net.url)),
        ConnState::Connected => (
            "connected",
            format!(
                "{} · ping {} · {:.0} fps · {} online · room {}",
                net.name,
                ping.map_or("…".into(), |p| format!("{p:.0} ms")),
                fps,
                game.players_online,
                game.room,
            ),
        ),
        ConnState::Rejected { message, retry_at } => (
            "rejected",
            match retry_at {
                Some(at) => format!("Rejected: {message} ({})", retrying(*at)),
                None => format!("Rejected: {message}"),
            },
        ),
        ConnState::Disconnected { reason, retry_at } => {
            ("disconnected", format!("Disconnected: {reason}. Reconnecting: {}…", retrying(*retry_at)))
        }
    };
    if let Some(body) = document.body() {
        let _ = body.set_attribute("data-state", state);
    }
    if let Some(status) = document.get_element_by_id("status") {
        status.set_text_content(Some(&text));
    }

    let mut players: Vec<serde_json::Value> = drawn
        .0
        .iter()
        .map(|(&id, &(x, y))| {
            serde_json::json!({
                "id": id,
                "name": game.names.get(&id),
                "x": x,
                "y": y,
                "you": game.you == Some(id),
            })
        })
        .collect();
    players.sort_by_key(|p| p["id"].as_u64());
    let corrections = game.prediction.corrections;
    let snapshot = serde_json::json!({
        "state": state,
        "status": text,
        "name": net.name,
        "url": net.url,
        "you": game.you,
        "tick": game.tick,
        "ping_ms": ping,
        "fps": fps,
        "frame_ms": stats.frame_ms,
        "players_online": game.players_online,
        "room": game.room,
        "interp_delay_ticks": game.clock.as_ref().map(|c| c.interp_delay_ticks()),
        "predicted": game.prediction.is_anchored().then(|| {
            let pos = game.prediction.body().pos;
            [pos.x as f64 / f64::from(FIXED_ONE), pos.y as f64 / f64::from(FIXED_ONE)]
        }),
        "corrections": {
            "frames": corrections.frames,
            "corrected": corrections.corrected,
            "mean_units": corrections.mean_units(),
            "max_units": corrections.max_units,
        },
        "players": players,
    });
    if let Some(element) = document.get_element_by_id("arena-snapshot") {
        let _ = element.set_attribute("data-snapshot", &snapshot.to_string());
    }
}
