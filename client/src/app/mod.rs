//! The browser face: a Bevy app drawing into `#arena-canvas`.
//!
//! The page moves through [`Screen`] states: the join screen, connecting,
//! playing, waiting to retry, and "this room is gone". Each frame runs
//! three system sets in order ([`ArenaSet`]):
//! - `Network` ([`net::NetPlugin`]): the gloo-net WebSocket task, handshake,
//!   reconnect with backoff; every server message goes through the
//!   [`crate::session::ClientSession`] and what it changed is written as a
//!   [`net::SessionChange`] message.
//! - `Render` ([`render::RenderPlugin`]): the platform, one entity per
//!   player spawned and despawned from those messages, trails, bump
//!   flashes, falls, and a camera easing after you.
//! - `Hud` ([`hud::HudPlugin`]): the page's DOM (status, score, timer,
//!   leaderboard, kill feed, dash meter, overlays) and a JSON snapshot for
//!   tests.
//!
//! Inputs ([`input::InputPlugin`]) run in `FixedUpdate` at the protocol's
//! input rate: keys, the page's touch stick and the dash button.

mod hud;
mod input;
mod net;
mod render;

use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` and `bevy_state` when `bevy` is a
// target-specific dependency.
use bevy::ecs as bevy_ecs;
use bevy::state as bevy_state;
use bevy::window::WindowPlugin;

/// Where the page is.
#[derive(States, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Screen {
    /// The join screen: name, colour, Play.
    #[default]
    Join,
    Connecting,
    Playing,
    /// Rejected or disconnected; retrying when due (or never).
    Waiting,
    /// The invite link's room is gone; the page offers a new room.
    RoomGone,
}

/// The order of each frame's work.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArenaSet {
    Network,
    Render,
    Hud,
}

/// Starts the app; returns once Bevy has handed control to the browser.
pub fn run() {
    App::new()
        .insert_resource(ClearColor(Color::srgb(0.03, 0.035, 0.05)))
        .add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "arena".into(),
                canvas: Some("#arena-canvas".into()),
                fit_canvas_to_parent: true,
                // Keeps arrow keys and Space from scrolling the page.
                prevent_default_event_handling: true,
                ..default()
            }),
            ..default()
        }))
        .init_state::<Screen>()
        .configure_sets(Update, (ArenaSet::Network, ArenaSet::Render, ArenaSet::Hud).chain())
        .add_plugins((net::NetPlugin, input::InputPlugin, render::RenderPlugin, hud::HudPlugin))
        .run();
}

/// Seconds on the page's monotonic clock (`performance.now()`), the one
/// timebase for frame arrivals, pings and rendering.
pub fn now_secs() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now() / 1000.0).unwrap_or_default()
}

/// An attribute of the page's `<body>` (the page's script writes the join
/// screen's choices and the touch controls there).
pub fn body_attr(name: &str) -> Option<String> {
    web_sys::window()?.document()?.body()?.get_attribute(name)
}
