//! Watching a room (`/r/<code>?watch`): the watcher's keys and clicks point
//! the camera. → or E follows the next player, ← or Q the one before, L the
//! leader; a click or tap on a player follows that player. The session
//! sends each choice as a `Follow`; frames then carry whom the camera is on.

use bevy::prelude::*;

use super::net::Session;
use super::render::{Drawn, css_to_scene, world_to_scene};
use super::screen::{ArenaSet, Screen};
use arena_client_core::controls::player_at;

/// How far from a player's centre a click still picks it, world units.
const PICK_REACH: f32 = 60.0;

pub struct WatchPlugin;

impl Plugin for WatchPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, point_the_camera.in_set(ArenaSet::Network).run_if(in_state(Screen::Playing)));
    }
}

fn point_the_camera(
    keys: Res<ButtonInput<KeyCode>>,
    mouse: Res<ButtonInput<MouseButton>>,
    touches: Res<Touches>,
    window: Query<&Window>,
    camera: Query<(&Camera, &GlobalTransform)>,
    drawn: Res<Drawn>,
    mut session: ResMut<Session>,
) {
    let Some(room) = session.room().filter(|room| room.is_watching()) else { return };
    let on = room.camera_on();
    let pressed = |a, b| keys.just_pressed(a) || keys.just_pressed(b);
    let step = if pressed(KeyCode::ArrowRight, KeyCode::KeyE) {
        Some(1)
    } else if pressed(KeyCode::ArrowLeft, KeyCode::KeyQ) {
        Some(-1)
    } else {
        None
    };
    let mut choice = step.and_then(|step| room.next_player(on, step));
    if keys.just_pressed(KeyCode::KeyL) {
        choice = Some(0);
    }
    let tapped = touches.iter_just_pressed().next().map(|touch| touch.position());
    let clicked = window
        .single()
        .ok()
        .and_then(Window::cursor_position)
        .filter(|_| mouse.just_pressed(MouseButton::Left));
    // Bevy's cursor and touch positions are the page's CSS pixels.
    if let (Some(at), Ok((camera, transform))) = (clicked.or(tapped), camera.single())
        && let Some(scene) = css_to_scene(camera, transform, at)
    {
        // Scene coordinates back to world units (y down).
        let point = world_to_scene(scene.x, scene.y);
        choice =
            player_at(drawn.0.iter().map(|(&id, &at)| (id, at)), (point.x, point.y), PICK_REACH).or(choice);
    }
    if let Some(id) = choice.filter(|&id| id != on)
        && let Some(playing) = session.0.as_mut()
    {
        playing.follow(id);
    }
}
