//! Samples the controls at the protocol's input rate, predicts, and sends:
//! WASD / arrows, the page's touch stick or a gamepad's left stick to move
//! (mixed as [`arena_client_core::controls::mix`] says), Space, the touch button or
//! A / Cross to dash; a gamepad's Start opens the page's menu. A dash
//! pressed between two samples is kept for the next.

use arena_shared::protocol::INPUT_RATE_HZ;
use arena_shared::sim::Input;
use bevy::prelude::*;
use web_sys::wasm_bindgen::JsCast;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;

use super::net::Session;
use super::page::{body_attr, set_body_attr};
use super::screen::{ArenaSet, Screen};
use super::sound::Cues;
use arena_client_core::controls::{self, BUTTON_A, BUTTON_START};
use arena_client_core::cues::Cue;
use arena_client_core::session::Room;

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

/// A dash asked for and not yet sent; the page's count of touch-button
/// presses last seen; the gamepad's stick as last read, and whether its A
/// and Start were held (the pad is read once a frame, here).
#[derive(Resource, Default)]
struct DashPress {
    pending: bool,
    touch_presses: u64,
    pad_stick: Input,
    pad_a: bool,
    pad_start: bool,
}

fn latch_dash(keys: Res<ButtonInput<KeyCode>>, mut dash: ResMut<DashPress>) {
    let presses = body_attr("data-dashes").and_then(|n| n.parse().ok()).unwrap_or(0);
    let pad = gamepad();
    dash.pad_stick = pad.as_ref().map_or_else(Input::default, |p| p.stick);
    let pad_a = controls::pressed_now(pad.as_ref().is_some_and(|p| p.held(BUTTON_A)), &mut dash.pad_a);
    if keys.just_pressed(KeyCode::Space) || presses > dash.touch_presses || pad_a {
        dash.pending = true;
    }
    dash.touch_presses = presses;
    if controls::pressed_now(pad.as_ref().is_some_and(|p| p.held(BUTTON_START)), &mut dash.pad_start) {
        let open = body_attr("data-menu").as_deref() == Some("1");
        set_body_attr("data-menu", if open { "0" } else { "1" });
    }
}

/// One sample into the session, which predicts it and batches it; the
/// network systems send it.
fn send_input(
    keys: Res<ButtonInput<KeyCode>>,
    mut session: ResMut<Session>,
    mut dash: ResMut<DashPress>,
    mut cues: ResMut<Cues>,
) {
    let Some(playing) = session.0.as_mut() else { return };
    // A watcher's keys point the camera (`super::watch`).
    if playing.room().is_some_and(Room::is_watching) {
        return;
    }
    let held = |a: KeyCode, b: KeyCode| keys.pressed(a) || keys.pressed(b);
    let keyed = Input::from_keys(
        held(KeyCode::KeyA, KeyCode::ArrowLeft),
        held(KeyCode::KeyD, KeyCode::ArrowRight),
        held(KeyCode::KeyW, KeyCode::ArrowUp),
        held(KeyCode::KeyS, KeyCode::ArrowDown),
    );
    let stick = controls::mix(keyed, touch_stick(), dash.pad_stick);
    let dashing = std::mem::take(&mut dash.pending);
    if dashing && playing.room().is_some_and(|room| room.dash_ready() >= 1.0) {
        cues.0.push(Cue::Dash);
    }
    playing.input(stick.with_dash(dashing));
}

/// The page's virtual stick (`data-stick="x,y"`).
fn touch_stick() -> Input {
    let Some(value) = body_attr("data-stick") else { return Input::default() };
    let mut axes = value.split(',').map(|v| v.trim().parse::<i32>().unwrap_or(0).clamp(-127, 127) as i8);
    Input::stick(axes.next().unwrap_or(0), axes.next().unwrap_or(0))
}

/// The first connected gamepad, as read this sample.
struct Pad {
    stick: Input,
    buttons: web_sys::js_sys::Array,
}

impl Pad {
    fn held(&self, button: u32) -> bool {
        let button = self.buttons.get(button);
        !button.is_undefined() && button.unchecked_into::<web_sys::GamepadButton>().pressed()
    }
}

/// The browser's first connected gamepad (`navigator.getGamepads()`), if
/// any: its left stick and its buttons.
fn gamepad() -> Option<Pad> {
    let pads = web_sys::window()?.navigator().get_gamepads().ok()?;
    let pad = pads
        .iter()
        .filter(|pad| pad.is_object())
        .map(|pad| pad.unchecked_into::<web_sys::Gamepad>())
        .find(web_sys::Gamepad::connected)?;
    let axes = pad.axes();
    let axis = |i| axes.get(i).as_f64().unwrap_or(0.0);
    Some(Pad { stick: controls::pad_stick(axis(0), axis(1)), buttons: pad.buttons() })
}
