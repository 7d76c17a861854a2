//! Samples the controls at the protocol's input rate, predicts, and sends:
//! WASD / arrows or the page's touch stick to move, Space or the touch
//! button to dash. A dash pressed between two samples is kept for the next.

use arena_shared::protocol::INPUT_RATE_HZ;
use arena_shared::sim::Input;
use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::Session;
use super::page::body_attr;
use super::screen::{ArenaSet, Screen};

pub struct InputPlugin;

impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        // One FixedUpdate step is one input is one `sim::step` on both sides.
        app.insert_resource(Time::<Fixed>::from_hz(f64::from(INPUT_RATE_HZ)))
            .init_resource::<DashPress>()
            .add_systems(Update, latch_dash.in_set(ArenaSet::Network).run_if(in_state(Screen::Playing)))
            .add_systems(FixedUpdate, send_input.run_if(in_state(Screen::Playing)));
    }
}

/// A dash asked for and not yet sent; and the page's count of touch-button
/// presses last seen.
#[derive(Resource, Default)]
struct DashPress {
    pending: bool,
    touch_presses: u64,
}

fn latch_dash(keys: Res<ButtonInput<KeyCode>>, mut dash: ResMut<DashPress>) {
    let presses = body_attr("data-dashes").and_then(|n| n.parse().ok()).unwrap_or(0);
    if keys.just_pressed(KeyCode::Space) || presses > dash.touch_presses {
        dash.pending = true;
    }
    dash.touch_presses = presses;
}

/// One sample into the session, which predicts it and batches it; the
/// network systems send it.
fn send_input(keys: Res<ButtonInput<KeyCode>>, mut session: ResMut<Session>, mut dash: ResMut<DashPress>) {
    let Some(playing) = session.0.as_mut() else { return };
    let held = |a: KeyCode, b: KeyCode| keys.pressed(a) || keys.pressed(b);
    let keyed = Input::from_keys(
        held(KeyCode::KeyA, KeyCode::ArrowLeft),
        held(KeyCode::KeyD, KeyCode::ArrowRight),
        held(KeyCode::KeyW, KeyCode::ArrowUp),
        held(KeyCode::KeyS, KeyCode::ArrowDown),
    );
    let stick = if keyed == Input::default() { touch_stick() } else { keyed };
    let input = stick.with_dash(std::mem::take(&mut dash.pending));
    playing.input(input);
}

/// The page's virtual stick (`data-stick="x,y"`).
fn touch_stick() -> Input {
    let Some(value) = body_attr("data-stick") else { return Input::default() };
    let mut axes = value.split(',').map(|v| v.trim().parse::<i32>().unwrap_or(0).clamp(-127, 127) as i8);
    Input::stick(axes.next().unwrap_or(0), axes.next().unwrap_or(0))
}
