//! The page around the canvas: the status line (loading, connecting,
//! connected with ping / fps / players, rejected with the server's reason,
//! disconnected and retrying), the game's HUD (score and rank, the round
//! timer, a top-5 leaderboard, the kill feed, the dash meter, the
//! "knocked out" overlay and the podium), `data-*` state on `<body>`, and
//! a JSON snapshot of the client's view on `#arena-snapshot` for tests.
//!
//! Names are user input: they only ever reach the page as text.

use arena_game_view::*;
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::{Net, Notice, Session};
use super::render::Drawn;
use super::{ArenaSet, Screen, now_secs};

/// DOM updates per second: plenty for people, cheap for the frame.
const HUD_REFRESH_SECS: f64 = 0.2;

/// How long "knocked out by X" stays up (the respawn takes 2 s).
const OVERLAY_SECS: f64 = arena_shared::game::RESPAWN_MS as f64 / 1000.0;

mod arena_game_view {
    pub use arena_shared::protocol::{Life, RoundPhase};
    pub use arena_shared::sim::FIXED_ONE;
}

pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<FrameStats>().add_systems(Update, update_hud.in_set(ArenaSet::Hud));
    }
}

#[derive(Resource, Default)]
struct FrameStats {
    /// Smoothed frame time, ms.
    frame_ms: f64,
    last_refresh: f64,
}

/// Sets an element's text, if the element exists and the text changed.
fn set_text(document: &web_sys::Document, id: &str, text: &str) {
    if let Some(element) = document.get_element_by_id(id)
        && element.text_content().as_deref() != Some(text)
    {
        element.set_text_content(Some(text));
    }
}

fn set_flag(body: &web_sys::HtmlElement, name: &str, on: bool) {
    let _ = body.set_attribute(name, if on { "1" } else { "0" });
}

fn clock_text(secs: f64) -> String {
    let secs = secs.ceil() as u64;
    format!("{}:{:02}", secs / 60, secs % 60)
}

fn update_hud(
    time: Res<Time<Real>>,
    screen: Res<State<Screen>>,
    net: Res<Net>,
    session: Res<Session>,
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
    let Some(body) = document.body() else { return };

    let fps = if stats.frame_ms > 0.0 { 1000.0 / stats.frame_ms } else { 0.0 };
    let playing = session.0.as_ref();
    let ping = playing.and_then(|s| s.rtt.smoothed_ms());
    let retrying = |at: f64| match (at - now).ceil() {
        secs if secs >= 1.0 => format!("retrying in {secs}s"),
        _ => "retrying now".to_owned(),
    };
    let (state, text) = match (screen.get(), &net.notice) {
        (Screen::Join, _) => ("landing", "Pick a name and a colour, then Play.".to_owned()),
        (Screen::Connecting, _) => ("connecting", format!("Connecting to {}…", net.url)),
        (Screen::Playing, _) => (
            "connected",
            format!(
                "{} · ping {} · {:.0} fps · {} in the room · room {}",
                playing.and_then(|s| s.me()).map_or(net.name.as_str(), |m| m.name.as_str()),
                ping.map_or("…".into(), |p| format!("{p:.0} ms")),
                fps,
                playing.map_or(0, |s| s.roster.len()),
                playing.map_or("", |s| s.room.as_str()),
            ),
        ),
        (Screen::RoomGone, Some(Notice::RoomGone { message })) => {
            ("room-gone", format!("Rejected: {message}"))
        }
        (_, Some(Notice::Rejected { message, retry_at })) => (
            "rejected",
            match retry_at {
                Some(at) => format!("Rejected: {message} ({})", retrying(*at)),
                None => format!("Rejected: {message}"),
            },
        ),
        (_, Some(Notice::Disconnected { reason, retry_at })) => {
            ("disconnected", format!("Disconnected: {reason}. Reconnecting: {}…", retrying(*retry_at)))
        }
        (_, _) => ("connecting", format!("Connecting to {}…", net.url)),
    };
    let _ = body.set_attribute("data-state", state);
    set_text(&document, "status", &text);

    let mut snapshot = serde_json::json!({
        "state": state,
        "status": text,
        "name": net.name,
        "color": net.color,
        "url": net.url,
        "fps": fps,
        "frame_ms": stats.frame_ms,
        "ping_ms": ping,
    });
    if let Some(playing) = playing {
        update_game_hud(&document, &body, playing, now);
        let mut players: Vec<serde_json::Value> = playing
            .roster
            .iter()
            .map(|(&id, member)| {
                serde_json::json!({
                    "id": id,
                    "name": member.name,
                    "color": member.color,
                    "score": member.score,
                    "life": format!("{:?}", member.life),
                    "away": member.away,
                    "you": id == playing.you,
                    "x": drawn.0.get(&id).map(|p| p.0),
                    "y": drawn.0.get(&id).map(|p| p.1),
                })
            })
            .collect();
        players.sort_by_key(|p| p["id"].as_u64());
        let corrections = playing.prediction.corrections;
        let extra = serde_json::json!({
            "you": playing.you,
            "tick": playing.tick,
            "room": playing.room,
            "players_online": playing.roster.len(),
            "platform_radius": playing.platform.radius,
            "round": playing.round.number,
            "podium": playing.podium().map(|standings| standings.iter().map(|s| s.id).collect::<Vec<_>>()),
            "round_secs_left": playing.round_secs_left(now),
            "score": playing.me().map(|m| m.score),
            "rank": playing.my_rank(),
            "life": format!("{:?}", playing.my_life()),
            "dash_ready": playing.dash_ready(),
            "feed": playing.feed.iter().map(|line| line.text.clone()).collect::<Vec<_>>(),
            "knockouts_given": playing.knockouts_given,
            "knockouts_taken": playing.knockouts_taken,
            "interp_delay_ticks": playing.clock.interp_delay_ticks(),
            "predicted": playing.prediction.is_anchored().then(|| {
                let pos = playing.prediction.body().pos;
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
        if let (Some(all), serde_json::Value::Object(more)) = (snapshot.as_object_mut(), extra) {
            all.extend(more);
        }
    } else {
        set_flag(&body, "data-podium", false);
        set_flag(&body, "data-knocked-out", false);
    }
    if let Some(element) = document.get_element_by_id("arena-snapshot") {
        let _ = element.set_attribute("data-snapshot", &snapshot.to_string());
    }
}

fn update_game_hud(
    document: &web_sys::Document,
    body: &web_sys::HtmlElement,
    playing: &crate::session::ClientSession,
    now: f64,
) {
    let ranking = playing.ranking();
    let rank = playing.my_rank();
    let score = playing.me().map_or(0, |m| m.score);
    set_text(document, "score", &format!("{score} {}", if score == 1 { "point" } else { "points" }));
    set_text(document, "rank", &format!("#{rank} of {}", ranking.len()));
    let left = playing.round_secs_left(now).unwrap_or(0.0);
    let timer = match playing.round.phase {
        RoundPhase::Playing { .. } => format!("Round {} · {}", playing.round.number, clock_text(left)),
        RoundPhase::Podium { .. } => format!("Next round in {}", clock_text(left)),
    };
    set_text(document, "timer", &timer);

    // Top five, yourself marked.
    for slot in 0..5 {
        let entry = ranking.get(slot);
        let text = entry.map_or(String::new(), |(_, m)| format!("{} {}", m.name, m.score));
        set_text(document, &format!("lb-{slot}"), &text);
        if let Some(item) = document.get_element_by_id(&format!("lb-{slot}")) {
            let you = entry.is_some_and(|(id, _)| *id == playing.you);
            let _ = item.set_attribute("class", if you { "you" } else { "" });
        }
    }
    for slot in 0..crate::session::FEED_LINES {
        let text = playing.feed.get(slot).map_or("", |line| line.text.as_str());
        set_text(document, &format!("feed-{slot}"), text);
    }

    let ready = playing.dash_ready();
    if let Some(fill) = document.get_element_by_id("dash-fill") {
        let _ = fill.set_attribute("style", &format!("width: {:.0}%", ready * 100.0));
    }
    set_flag(body, "data-dash-ready", ready >= 1.0);

    // "Knocked out by ada, back in 2…" while you are out.
    let out = matches!(playing.my_life(), Life::Falling | Life::Out);
    let overlay = playing.knocked_out.as_ref().filter(|k| out && now - k.at < OVERLAY_SECS + 1.0);
    set_flag(body, "data-knocked-out", overlay.is_some());
    if let Some(knocked) = overlay {
        let back_in = (OVERLAY_SECS - (now - knocked.at)).max(0.0).ceil();
        let text = match &knocked.by {
            Some(by) => format!("Knocked out by {by}, back in {back_in}…"),
            None => format!("You fell off, back in {back_in}…"),
        };
        set_text(document, "overlay", &text);
    }

    // The podium: the top three and your place.
    let podium = playing.podium();
    set_flag(body, "data-podium", podium.is_some());
    if let Some(standings) = podium {
        set_text(document, "podium-title", &format!("Round {} is over", playing.round.number));
        let name = |id| playing.roster.get(&id).map_or_else(|| "(left)".to_owned(), |m| m.name.clone());
        let count = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        for (place, medal) in ["1st", "2nd", "3rd"].into_iter().enumerate() {
            let text = standings.get(place).map_or(String::new(), |s| {
                format!(
                    "{medal} {} · {}, {}",
                    name(s.id),
                    count(i64::from(s.score), "point", "points"),
                    count(i64::from(s.knockouts), "knockout", "knockouts")
                )
            });
            set_text(document, &format!("podium-{}", place + 1), &text);
        }
        let mine = standings.iter().position(|s| s.id == playing.you);
        let place = mine.map_or("You joined after the round ended".to_owned(), |i| {
            format!("You placed #{} of {}", i + 1, standings.len())
        });
        set_text(document, "your-place", &place);
        set_text(
            document,
            "next-round",
            &format!("Next round in {}", clock_text(playing.round_secs_left(now).unwrap_or(0.0))),
        );
    }
}
