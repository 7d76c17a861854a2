//! arena in the browser: a Bevy app drawing into `#arena-canvas`, built
//! for wasm32 by trunk (`web/index.html`); on other targets this crate is
//! empty and its binary says where the native clients are (`arena-bots`).
//! The protocol, reconnects, controls and sounds' recipes are
//! `arena-client-core`'s; this crate is the engine and the page around it.
//!
//! # Layout
//! The page moves through [`screen::Screen`] states: the join screen,
//! connecting, playing, waiting to retry, and "this room is gone". Each
//! frame runs three system sets in order ([`screen::ArenaSet`]):
//! - `Network` ([`net::NetPlugin`]): when to connect ([`arena_client_core::reconnect`]),
//!   the socket task ([`socket`]), and the [`arena_client_core::session::ClientSession`]
//!   between them; what the session reports is written as
//!   [`net::SessionChange`] messages.
//! - `Render` ([`render::RenderPlugin`]): the platform, one entity per
//!   player spawned and despawned from those messages, trails, bump
//!   flashes, falls, and a camera easing after you.
//! - `Hud`: each player's name, a `<span>` the page moves over its circle
//!   every frame ([`names::NamesPlugin`]), and ([`hud::HudPlugin`]) one
//!   small system per element of the page
//!   (status, score, timer, leaderboard, kill feed, dash meter, overlays)
//!   and a JSON snapshot for tests.
//!
//! Inputs ([`input::InputPlugin`]) run in `FixedUpdate` at the protocol's
//! input rate: keys, the page's touch stick and dash button, a gamepad.
//! Sounds ([`sound::SoundPlugin`]) are synthesised at the end of each
//! frame from what the input, the renderer and the room asked for. [`page`]
//! holds what the browser gives (clock, URL, `<body>` attributes, storage);
//! [`console`] puts Bevy's warnings and errors on the browser's console.
//! A private room's host gets a panel ([`host`]); a watcher's keys and
//! clicks choose whom the camera follows ([`watch`]); `/replay/<id>`
//! plays a recorded round with no server ([`replay`]).

#![cfg(target_arch = "wasm32")]

mod console;
mod host;
mod hud;
mod input;
mod names;
mod net;
mod page;
mod render;
mod replay;
mod screen;
mod socket;
mod sound;
mod watch;

use bevy::prelude::*;
use bevy::window::WindowPlugin;

/// Starts the app; returns once Bevy has handed control to the browser.
pub fn run() {
    console::install();
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
        .init_state::<screen::Screen>()
        .configure_sets(
            Update,
            (screen::ArenaSet::Network, screen::ArenaSet::Render, screen::ArenaSet::Hud).chain(),
        )
        .add_plugins((
            net::NetPlugin,
            input::InputPlugin,
            render::RenderPlugin,
            names::NamesPlugin,
            hud::HudPlugin,
            sound::SoundPlugin,
            watch::WatchPlugin,
            host::HostPlugin,
            replay::ReplayPlugin,
        ))
        .run();
}
