//! The browser face: a Bevy app drawing into `#arena-canvas`.
//!
//! - [`net::NetPlugin`]: the gloo-net WebSocket task, handshake, reconnect
//!   with backoff, and applying server messages to [`net::Game`].
//! - [`input::InputPlugin`]: samples WASD / arrows at the protocol's input
//!   rate, predicts, and sends.
//! - [`render::RenderPlugin`]: walls, one circle and name per player, camera
//!   on your own player; others interpolated.
//! - [`hud::HudPlugin`]: the page's status line, and a JSON snapshot of the
//!   client's view on a DOM attribute for tests.

mod hud;
mod input;
mod net;
mod render;

use bevy::prelude::*;
use bevy::window::WindowPlugin;

/// Starts the app; returns once Bevy has handed control to the browser.
pub fn run() {
    App::new()
        .insert_resource(ClearColor(Color::srgb(0.06, 0.07, 0.09)))
        .add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "arena".into(),
                canvas: Some("#arena-canvas".into()),
                fit_canvas_to_parent: true,
                // Keeps arrow keys from scrolling the page.
                prevent_default_event_handling: true,
                ..default()
            }),
            ..default()
        }))
        .add_plugins((net::NetPlugin, input::InputPlugin, render::RenderPlugin, hud::HudPlugin))
        .run();
}

/// Seconds on the page's monotonic clock (`performance.now()`), the one
/// timebase for frame arrivals, pings and rendering.
pub fn now_secs() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now() / 1000.0).unwrap_or_default()
}
