//! The game's sounds, synthesised with the Web Audio API: each
//! [`Cue`] is a few oscillators under short envelopes ([`Cue::tones`]), so
//! there is nothing to download. Nothing plays before the page has had a
//! user gesture (browsers refuse, and the first gesture is what creates
//! the `AudioContext`), nor while muted (the page's mute button or M key,
//! remembered in `localStorage`, sets `data-muted` on `<body>`).

use std::cell::RefCell;

use bevy::prelude::*;
// Bevy's derives look for `bevy_ecs` when `bevy` is a target-specific dependency.
use bevy::ecs as bevy_ecs;
use web_sys::{AudioContext, AudioContextState, OscillatorType};

use super::net::{Session, SessionChange};
use super::page::body_attr;
use super::screen::ArenaSet;
use arena_client_core::cues::{self, Cue, Wave};

pub struct SoundPlugin;

impl Plugin for SoundPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Cues>().add_systems(Update, (cue_changes, play).chain().in_set(ArenaSet::Hud));
    }
}

/// Sounds asked for this frame (by the input, the renderer and the
/// room's news), played at the end of it.
#[derive(Resource, Default)]
pub struct Cues(pub Vec<Cue>);

impl Cues {
    /// A drawn player's velocity jumped by `dv` units/s, `distance` units
    /// from you: a bump, if it is worth hearing.
    pub fn bump(&mut self, dv: f32, distance: f32) {
        self.0.extend(cues::bump(dv, distance));
    }
}

/// The page's audio, kept on its one thread (a browser object is not
/// `Send`, so it cannot be a resource): the context once a gesture allowed
/// it, and how many sounds were scheduled (the test snapshot reports both).
#[derive(Default)]
struct Audio {
    context: Option<AudioContext>,
    played: u64,
}

thread_local! {
    static AUDIO: RefCell<Audio> = RefCell::new(Audio::default());
}

/// What the test snapshot says of the audio: the context's state (`none`
/// before a gesture), whether muted, and how many sounds were scheduled.
pub fn snapshot() -> serde_json::Value {
    AUDIO.with_borrow(|audio| {
        let state = match audio.context.as_ref().map(AudioContext::state) {
            None => "none",
            Some(AudioContextState::Running) => "running",
            Some(AudioContextState::Suspended) => "suspended",
            Some(_) => "closed",
        };
        serde_json::json!({ "state": state, "muted": muted(), "played": audio.played })
    })
}

fn muted() -> bool {
    body_attr("data-muted").as_deref() == Some("1")
}

/// The room's news as sounds.
fn cue_changes(session: Res<Session>, mut changes: MessageReader<SessionChange>, mut cues: ResMut<Cues>) {
    let Some(room) = session.room() else {
        changes.clear();
        return;
    };
    for SessionChange(change) in changes.read() {
        cues.0.extend(cues::for_change(change, room.you()));
    }
}

/// Schedules this frame's sounds, if the page may play them.
fn play(mut cues: ResMut<Cues>) {
    if cues.0.is_empty() {
        return;
    }
    let cues = std::mem::take(&mut cues.0);
    if muted() {
        return;
    }
    AUDIO.with_borrow_mut(|audio| {
        let Some(context) = audio.context() else { return };
        let played = cues.into_iter().filter(|&cue| schedule(context, cue).is_ok()).count();
        audio.played += played as u64;
    });
}

impl Audio {
    /// The context, created on the first call after a user gesture and
    /// resumed if the browser suspended it.
    fn context(&mut self) -> Option<&AudioContext> {
        if self.context.is_none() {
            let navigator = web_sys::window()?.navigator();
            if !navigator.user_activation().has_been_active() {
                return None;
            }
            self.context = AudioContext::new().ok();
        }
        let context = self.context.as_ref()?;
        if context.state() == AudioContextState::Suspended {
            // The promise settles by itself; sounds scheduled meanwhile
            // play once it runs.
            let _ = context.resume();
        }
        Some(context)
    }
}

/// One cue's oscillators, each through its own envelope to the speakers.
fn schedule(context: &AudioContext, cue: Cue) -> Result<(), web_sys::wasm_bindgen::JsValue> {
    let now = context.current_time();
    for tone in cue.tones() {
        let start = now + f64::from(tone.delay);
        let end = start + f64::from(tone.secs);
        let oscillator = context.create_oscillator()?;
        oscillator.set_type(match tone.wave {
            Wave::Sine => OscillatorType::Sine,
            Wave::Triangle => OscillatorType::Triangle,
            Wave::Square => OscillatorType::Square,
            Wave::Sawtooth => OscillatorType::Sawtooth,
        });
        let pitch = oscillator.frequency();
        pitch.set_value_at_time(tone.from_hz, start)?;
        pitch.exponential_ramp_to_value_at_time(tone.to_hz, end)?;
        let envelope = context.create_gain()?;
        let gain = envelope.gain();
        gain.set_value_at_time(0.0001, start)?;
        gain.exponential_ramp_to_value_at_time(tone.gain.max(0.0001), start + 0.005)?;
        gain.exponential_ramp_to_value_at_time(0.0001, end)?;
        oscillator.connect_with_audio_node(&envelope)?;
        envelope.connect_with_audio_node(&context.destination())?;
        oscillator.start_with_when(start)?;
        oscillator.stop_with_when(end + 0.02)?;
    }
    Ok(())
}
