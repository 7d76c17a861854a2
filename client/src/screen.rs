//! Where the page is ([`Screen`]) and the order of each frame's work
//! ([`ArenaSet`]).

use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` and `bevy_state` when `bevy` is a
// target-specific dependency.
use bevy::ecs as bevy_ecs;
use bevy::state as bevy_state;

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
