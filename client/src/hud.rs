//! The page around the canvas, one small system per element: the status
//! line (loading, connecting, connected with ping / fps / players, rejected
//! with the server's reason, disconnected and retrying), the score and
//! rank, the round timer, a top-5 leaderboard, the kill feed, the dash
//! meter, the "knocked out" overlay, the podium, and a JSON snapshot of the
//! client's view on `#arena-snapshot` for tests. They run five times a
//! second (`HUD_REFRESH_SECS`), after the frame is drawn.
//!
//! Names are user input: they only ever reach the page as text.

use arena_shared::protocol::{Life, RoundPhase};
use arena_shared::sim::FIXED_ONE;
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::{Player, Policy, ServerUrl, Session};
use super::page::{now_secs, set_body_attr};
use super::render::{Drawn, ViewScale};
use super::replay::ReplayPage;
use super::screen::{ArenaSet, Screen};
use arena_client_core::reconnect::Notice;
use arena_client_core::session::{FEED_LINES, Room};

/// DOM updates per second: plenty for people, cheap for the frame.
const HUD_REFRESH_SECS: f64 = 0.2;

/// How long "knocked out by X" stays up (the respawn takes 2 s).
const OVERLAY_SECS: f64 = arena_shared::game::RESPAWN_MS as f64 / 1000.0;

/// Leaderboard places shown.
const LEADERBOARD: usize = 5;

pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<FrameStats>().init_resource::<StatusLine>().add_systems(
            Update,
            (
                measure_frames,
                (
                    show_status.run_if(not(resource_exists::<ReplayPage>)),
                    show_replay_status.run_if(resource_exists::<ReplayPage>),
                    (
                        show_score,
                        show_timer,
                        show_leaderboard,
                        show_feed,
                        show_dash,
                        show_knockout,
                        show_podium,
                    )
                        .run_if(in_room),
                    hide_game_overlays.run_if(not(in_room)),
                    write_snapshot,
                )
                    .chain()
                    .run_if(refresh_due),
            )
                .chain()
                .in_set(ArenaSet::Hud),
        );
    }
}

#[derive(Resource, Default)]
struct FrameStats {
    /// Smoothed frame time, ms.
    frame_ms: f64,
    last_refresh: f64,
    /// Whether this frame refreshes the page.
    refresh: bool,
}

impl FrameStats {
    fn fps(&self) -> f64 {
        if self.frame_ms > 0.0 { 1000.0 / self.frame_ms } else { 0.0 }
    }
}

/// The status line as last shown: its state (`data-state` on `<body>`)
/// and text.
#[derive(Resource, Default)]
struct StatusLine {
    state: &'static str,
    text: String,
}

fn measure_frames(time: Res<Time<Real>>, mut stats: ResMut<FrameStats>) {
    let dt_ms = time.delta_secs_f64() * 1000.0;
    if dt_ms > 0.0 {
        stats.frame_ms = if stats.frame_ms == 0.0 { dt_ms } else { stats.frame_ms * 0.95 + dt_ms * 0.05 };
    }
    let now = now_secs();
    stats.refresh = now - stats.last_refresh >= HUD_REFRESH_SECS;
    if stats.refresh {
        stats.last_refresh = now;
    }
}

fn refresh_due(stats: Res<FrameStats>) -> bool {
    stats.refresh
}

fn in_room(session: Res<Session>) -> bool {
    session.room().is_some()
}

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// Sets an element's text, if the element exists and the text changed.
fn set_text(id: &str, text: &str) {
    if let Some(element) = document().and_then(|d| d.get_element_by_id(id))
        && element.text_content().as_deref() != Some(text)
    {
        element.set_text_content(Some(text));
    }
}

fn set_flag(name: &str, on: bool) {
    set_body_attr(name, if on { "1" } else { "0" });
}

fn clock_text(secs: f64) -> String {
    let secs = secs.ceil() as u64;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Past this long without a frame the page says it is reconnecting (a
/// paused room), while the socket is still open.
const SILENT_SECS: f64 = 1.0;

fn show_status(
    screen: Res<State<Screen>>,
    policy: Res<Policy>,
    player: Res<Player>,
    url: Res<ServerUrl>,
    session: Res<Session>,
    stats: Res<FrameStats>,
    mut line: ResMut<StatusLine>,
) {
    let now = now_secs();
    let retrying = |at: f64| match (at - now).ceil() {
        secs if secs >= 1.0 => format!("retrying in {secs}s"),
        _ => "retrying now".to_owned(),
    };
    let room = session.room();
    let silent_for = room.map_or(0.0, |r| r.silent_for(now));
    let silent = silent_for > SILENT_SECS;
    let (state, text) = match (screen.get(), policy.notice()) {
        (Screen::Join, _) => ("landing", "Pick a name and a colour, then Play.".to_owned()),
        (Screen::Connecting, _) => ("connecting", format!("Connecting to {}…", url.0)),
        (Screen::Playing, _) if silent => (
            "connected",
            format!(
                "Waiting for the server: it has sent nothing for {:.0} s (the room may be paused) · room {}",
                silent_for.floor(),
                room.map_or("", Room::code),
            ),
        ),
        (Screen::Playing, _) => (
            "connected",
            format!(
                "{} · ping {} · {:.0} fps · {} in the room · room {}",
                match room {
                    Some(r) if r.is_watching() => "watching",
                    _ => room.and_then(Room::me).map_or(player.name.as_str(), |m| m.name.as_str()),
                },
                room.and_then(|r| r.rtt().smoothed_ms()).map_or("…".into(), |p| format!("{p:.0} ms")),
                stats.fps(),
                room.map_or(0, |r| r.roster().len()),
                room.map_or("", Room::code),
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
        (_, _) => ("connecting", format!("Connecting to {}…", url.0)),
    };
    set_body_attr("data-state", state);
    set_flag("data-silent", silent);
    set_text("status", &text);
    // Refused with no retry coming: the page says so in a panel.
    let stuck = match policy.notice() {
        Some(Notice::Rejected { message, retry_at: None }) if state == "rejected" => Some(message.as_str()),
        _ => None,
    };
    set_flag("data-stuck", stuck.is_some());
    set_text("stuck-reason", stuck.map(capitalised).as_deref().unwrap_or(""));
    *line = StatusLine { state, text };
}

/// `text` with its first letter a capital, as a sentence on its own.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// The replay page's status line: loading, playing (where, how fast), or
/// why it cannot be played.
fn show_replay_status(
    replay: Res<ReplayPage>,
    session: Res<Session>,
    stats: Res<FrameStats>,
    mut line: ResMut<StatusLine>,
) {
    let (state, text) = replay_status(&replay, session.room(), stats.fps());
    set_body_attr("data-state", state);
    set_text("status", &text);
    *line = StatusLine { state, text };
}

fn replay_status(replay: &ReplayPage, room: Option<&Room>, fps: f64) -> (&'static str, String) {
    if let Some(error) = &replay.error {
        return ("rejected", format!("Replay: {error}"));
    }
    match (replay.progress(), room) {
        (Some((at, all, speed)), Some(room)) => (
            "connected",
            format!(
                "replay · {} of {} · {speed}× · {fps:.0} fps · {} players",
                clock_text(at),
                clock_text(all),
                room.roster().len()
            ),
        ),
        _ => ("connecting", "Loading the replay…".to_owned()),
    }
}

fn show_score(session: Res<Session>) {
    let Some(room) = session.room() else { return };
    let watchers = room.watchers();
    set_text("watchers", &if watchers == 0 { String::new() } else { format!("{watchers} watching") });
    if room.is_watching() {
        let on = room.roster().get(&room.camera_on()).map_or("nobody yet", |m| m.name.as_str());
        set_text("score", &format!("Watching {on}"));
        set_text("rank", "← → to switch · L: the leader · click a player");
        return;
    }
    let score = room.me().map_or(0, |m| m.score);
    set_text("score", &format!("{score} {}", if score == 1 { "point" } else { "points" }));
    set_text("rank", &format!("#{} of {}", room.my_rank(), room.roster().len()));
}

fn show_timer(session: Res<Session>, replay: Option<Res<ReplayPage>>) {
    let Some(room) = session.room() else { return };
    // A replay's clock is its game's: exact at any speed, and still while paused.
    let left = match (replay.and_then(|r| r.tick_rate()), room.tick(), &room.round().phase) {
        (Some(rate), Some(tick), RoundPhase::Playing { ends_at }) => {
            f64::from(ends_at.saturating_sub(tick)) / f64::from(rate.max(1))
        }
        _ => room.round_secs_left(now_secs()).unwrap_or(0.0),
    };
    let left = clock_text(left);
    set_text(
        "timer",
        &match room.round().phase {
            RoundPhase::Playing { .. } => format!("Round {} · {left}", room.round().number),
            RoundPhase::Podium { .. } if is_replay(room) => "The round is over".to_owned(),
            RoundPhase::Podium { .. } => format!("Next round in {left}"),
        },
    );
}

/// Whether `room` is a replay's (no next round comes; nobody there is you).
fn is_replay(room: &Room) -> bool {
    room.code() == arena_client_core::replay::REPLAY_ROOM
}

/// The top five, yourself marked.
fn show_leaderboard(session: Res<Session>) {
    let Some(room) = session.room() else { return };
    let ranking = room.ranking();
    for slot in 0..LEADERBOARD {
        let entry = ranking.get(slot);
        let id = format!("lb-{slot}");
        set_text(&id, &entry.map_or(String::new(), |(_, m)| format!("{} {}", m.name, m.score)));
        if let Some(item) = document().and_then(|d| d.get_element_by_id(&id)) {
            let you = entry.is_some_and(|(id, _)| *id == room.you());
            let _ = item.set_attribute("class", if you { "you" } else { "" });
        }
    }
}

fn show_feed(session: Res<Session>) {
    let Some(room) = session.room() else { return };
    for slot in 0..FEED_LINES {
        set_text(&format!("feed-{slot}"), room.feed().get(slot).map_or("", |line| line.text.as_str()));
    }
}

fn show_dash(session: Res<Session>) {
    let Some(room) = session.room() else { return };
    let ready = room.dash_ready();
    if let Some(fill) = document().and_then(|d| d.get_element_by_id("dash-fill")) {
        let _ = fill.set_attribute("style", &format!("width: {:.0}%", ready * 100.0));
    }
    set_flag("data-dash-ready", ready >= 1.0);
}

/// "Knocked out by ada, back in 2…" while you are out.
fn show_knockout(session: Res<Session>) {
    let Some(room) = session.room() else { return };
    let now = now_secs();
    let out = matches!(room.my_life(), Life::Falling | Life::Out);
    let overlay = room.knocked_out().filter(|k| out && now - k.at < OVERLAY_SECS + 1.0);
    set_flag("data-knocked-out", overlay.is_some());
    if let Some(knocked) = overlay {
        let back_in = (OVERLAY_SECS - (now - knocked.at)).max(0.0).ceil();
        set_text(
            "overlay",
            &match &knocked.by {
                Some(by) => format!("Knocked out by {by}, back in {back_in}…"),
                None => format!("You fell off, back in {back_in}…"),
            },
        );
    }
}

/// The podium: the top three and your place.
fn show_podium(session: Res<Session>) {
    let Some(room) = session.room() else { return };
    let podium = room.podium();
    set_flag("data-podium", podium.is_some());
    let Some(standings) = podium else { return };
    set_text("podium-title", &format!("Round {} is over", room.round().number));
    let name = |id| room.roster().get(&id).map_or_else(|| "(left)".to_owned(), |m| m.name.clone());
    let count = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    for (place, medal) in ["1st", "2nd", "3rd"].into_iter().enumerate() {
        let text = standings.get(place).map_or(String::new(), |s| {
            let points = count(i64::from(s.score), "point", "points");
            format!(
                "{medal} {} · {points}, {}",
                name(s.id),
                count(i64::from(s.knockouts), "knockout", "knockouts")
            )
        });
        set_text(&format!("podium-{}", place + 1), &text);
    }
    let mine = standings.iter().position(|s| s.id == room.you());
    let place = match mine {
        Some(i) => format!("You placed #{} of {}", i + 1, standings.len()),
        None if room.is_watching() => format!("{} played", standings.len()),
        None => "You joined after the round ended".to_owned(),
    };
    set_text("your-place", &place);
    let next = clock_text(room.round_secs_left(now_secs()).unwrap_or(0.0));
    set_text("next-round", &if is_replay(room) { String::new() } else { format!("Next round in {next}") });
}

fn hide_game_overlays() {
    set_flag("data-podium", false);
    set_flag("data-knocked-out", false);
}

/// The client's view as JSON on `#arena-snapshot`, for the browser tests.
fn write_snapshot(
    line: Res<StatusLine>,
    player: Res<Player>,
    url: Res<ServerUrl>,
    stats: Res<FrameStats>,
    session: Res<Session>,
    drawn: Res<Drawn>,
    scale: Res<ViewScale>,
) {
    let room = session.room();
    let mut snapshot = serde_json::json!({
        "state": line.state,
        "status": line.text,
        "name": player.name,
        "color": player.color,
        "url": url.0,
        "fps": stats.fps(),
        "frame_ms": stats.frame_ms,
        "ping_ms": room.and_then(|r| r.rtt().smoothed_ms()),
        "px_per_unit": scale.0,
    });
    if let (Some(room), Some(all)) = (room, snapshot.as_object_mut())
        && let serde_json::Value::Object(more) = room_snapshot(room, &drawn, now_secs())
    {
        all.extend(more);
    }
    if let Some(element) = document().and_then(|d| d.get_element_by_id("arena-snapshot")) {
        let _ = element.set_attribute("data-snapshot", &snapshot.to_string());
    }
}

fn room_snapshot(room: &Room, drawn: &Drawn, now: f64) -> serde_json::Value {
    let players: Vec<serde_json::Value> = room
        .roster()
        .iter()
        .map(|(&id, member)| {
            serde_json::json!({
                "id": id,
                "name": member.name,
                "color": member.color,
                "score": member.score,
                "life": format!("{:?}", member.life),
                "away": member.away,
                "bot": member.bot,
                "you": id == room.you(),
                "x": drawn.0.get(&id).map(|p| p.0),
                "y": drawn.0.get(&id).map(|p| p.1),
            })
        })
        .collect();
    let corrections = room.prediction().corrections;
    let (given, taken) = room.knockouts();
    serde_json::json!({
        "you": room.you(),
        "tick": room.tick(),
        "room": room.code(),
        "players_online": room.roster().len(),
        "platform_radius": room.platform().radius,
        "round": room.round().number,
        "podium": room.podium().map(|standings| standings.iter().map(|s| s.id).collect::<Vec<_>>()),
        "round_secs_left": room.round_secs_left(now),
        "score": room.me().map(|m| m.score),
        "rank": room.my_rank(),
        "life": format!("{:?}", room.my_life()),
        "dash_ready": room.dash_ready(),
        "feed": room.feed().iter().map(|line| line.text.clone()).collect::<Vec<_>>(),
        "knockouts_given": given,
        "knockouts_taken": taken,
        "interp_delay_ticks": room.clock().interp_delay_ticks(),
        "predicted": room.prediction().is_anchored().then(|| {
            let pos = room.prediction().body().pos;
            [pos.x as f64 / f64::from(FIXED_ONE), pos.y as f64 / f64::from(FIXED_ONE)]
        }),
        "audio": super::sound::snapshot(),
        "camera_on": room.camera_on(),
        // The leaderboard's first: whom a watcher's L follows.
        "leader": room.ranking().first().map(|(id, _)| *id),
        "watching": room.is_watching(),
        "watchers": room.watchers(),
        "host": room.hosting().host,
        "locked": room.hosting().locked,
        "rules": [room.hosting().rules.round_secs, room.hosting().rules.points_to_win],
        "replay": room.replay().map(arena_shared::protocol::replay_id_hex),
        // Who is predicted with you (the frame's near bodies), by id.
        "near": room.prediction().predicted_near().iter().map(|n| n.id).collect::<Vec<_>>(),
        "corrections": {
            "frames": corrections.frames,
            "corrected": corrections.corrected,
            "mean_units": corrections.mean_units(),
            "max_units": corrections.max_units,
            "alone_frames": corrections.alone_frames,
            "alone_corrected": corrections.alone_corrected,
        },
        "players": players,
    })
}
