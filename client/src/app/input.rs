//! Samples the keyboard at the protocol's input rate, predicts, and sends.

use arena_shared::protocol::{ClientMsg, INPUT_RATE_HZ};
use arena_shared::sim::Input;
use bevy::prelude::*;

use super::net::{ConnState, Game, Net};

pub struct InputPlugin;

impl Plugin for InputPlugin {
    fn build(&self, app: &mut App) {
        // One FixedUpdate step is one input is one `sim::step` on both sides.
        app.insert_resource(Time::<Fixed>::from_hz(f64::from(INPUT_RATE_HZ)))
            .add_systems(FixedUpdate, send_input);
    }
}

fn send_input(keys: Res<ButtonInput<KeyCode>>, net: Res<Net>, mut game: ResMut<Game>) {
    if net.state != ConnState::Connected || game.you.is_none() {
        return;
    }
    let held = |a: KeyCode, b: KeyCode| keys.pressed(a) || keys.pressed(b);
    let input = Input::from_keys(
        held(KeyCode::KeyA, KeyCode::ArrowLeft),
        held(KeyCode::KeyD, KeyCode::ArrowRight),
        held(KeyCode::KeyW, KeyCode::ArrowUp),
        held(KeyCode::KeyS, KeyCode::ArrowDown),
    );
    let seq = game.prediction.apply_input(input);
    net.send(ClientMsg::Input { seq, input });
}
