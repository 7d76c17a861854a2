//! How the page's controls become one input: keys, the touch stick and a
//! gamepad can be mixed, and each is read the same way on every sample.
//! Engine-free, so it is tested natively; `app::input` reads the devices.

use arena_shared::protocol::{HostCommand, Rules};
use arena_shared::sim::{Input, STICK_MAX};

/// A gamepad stick nearer the centre than this (of its full reach) reads
/// as centred: worn sticks rest a little off it.
pub const DEAD_ZONE: f64 = 0.2;

/// Standard-mapping buttons (the Gamepad API's "standard" layout).
pub const BUTTON_A: u32 = 0;
pub const BUTTON_START: u32 = 9;

/// A gamepad's left stick (`x`, `y` each -1..=1, y down, as the Gamepad
/// API gives them) as a stick input: nothing inside the dead zone, full
/// reach at the rim, scaled smoothly in between.
pub fn pad_stick(x: f64, y: f64) -> Input {
    let (x, y) = (if x.is_finite() { x } else { 0.0 }, if y.is_finite() { y } else { 0.0 });
    let length = x.hypot(y);
    if length <= DEAD_ZONE {
        return Input::default();
    }
    let reach = ((length - DEAD_ZONE) / (1.0 - DEAD_ZONE)).min(1.0);
    let scale = reach * f64::from(STICK_MAX) / length;
    let axis = |v: f64| (v * scale).round().clamp(-f64::from(STICK_MAX), f64::from(STICK_MAX)) as i8;
    Input::stick(axis(x), axis(y))
}

/// The stick to send: keys if any are held, else the touch stick if it is
/// off centre, else the gamepad's.
pub fn mix(keys: Input, touch: Input, pad: Input) -> Input {
    [keys, touch, pad].into_iter().find(|i| (i.x, i.y) != (0, 0)).unwrap_or_default()
}

/// A button's press, once: `true` when it is held now and was not at the
/// last sample (`was` is updated).
pub fn pressed_now(held: bool, was: &mut bool) -> bool {
    let now = held && !*was;
    *was = held;
    now
}

/// The player drawn under `point` (world units), if one is within `reach`
/// of it: the nearest. What a watcher's click or tap follows.
pub fn player_at(
    drawn: impl IntoIterator<Item = (u16, (f32, f32))>,
    point: (f32, f32),
    reach: f32,
) -> Option<u16> {
    drawn
        .into_iter()
        .map(|(id, (x, y))| (id, (x - point.0).hypot(y - point.1)))
        .filter(|&(_, distance)| distance <= reach)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id)
}

/// One of the host panel's choices as the page queues it
/// (`data-host-commands`): `rules:SECS:POINTS`, `lock:1` or `lock:0`,
/// `next`, `kick:ID`, `watch:ID`. `None`: not one of those. The server
/// checks the values; the page only spells them.
pub fn host_command(word: &str) -> Option<HostCommand> {
    let mut parts = word.split(':');
    let command = match (parts.next()?, parts.next(), parts.next()) {
        ("rules", Some(secs), Some(points)) => HostCommand::SetRules(Rules {
            round_secs: secs.parse().ok()?,
            points_to_win: points.parse().ok()?,
        }),
        ("lock", Some(on), None) => HostCommand::Lock(on == "1"),
        ("next", None, None) => HostCommand::NextRound,
        ("kick", Some(id), None) => HostCommand::Kick { id: id.parse().ok()? },
        ("watch", Some(id), None) => HostCommand::ToWatchers { id: id.parse().ok()? },
        _ => return None,
    };
    parts.next().is_none().then_some(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gamepad_stick_has_a_dead_zone_and_full_reach() {
        assert_eq!(pad_stick(0.15, -0.1), Input::default(), "resting off centre");
        assert_eq!(pad_stick(f64::NAN, 1.0), Input::stick(0, 127), "a broken axis reads centred");
        assert_eq!(pad_stick(1.0, 0.0), Input::stick(127, 0));
        assert_eq!(pad_stick(0.0, -1.0), Input::stick(0, -127));
        let diagonal = pad_stick(0.9, 0.9);
        assert!(diagonal.x == diagonal.y && i32::from(diagonal.x) * 1414 / 1000 <= 128, "{diagonal:?}");
        let half = pad_stick(0.6, 0.0);
        assert!((60..=66).contains(&half.x), "halfway between the dead zone and the rim: {half:?}");
    }

    #[test]
    fn keys_then_touch_then_gamepad() {
        let (keys, touch, pad) = (Input::stick(-127, 0), Input::stick(0, 90), Input::stick(50, 50));
        assert_eq!(mix(keys, touch, pad), keys);
        assert_eq!(mix(Input::default(), touch, pad), touch);
        assert_eq!(mix(Input::default(), Input::default(), pad), pad);
        assert_eq!(mix(Input::default(), Input::default(), Input::default()), Input::default());
    }

    #[test]
    fn a_held_button_presses_once() {
        let mut was = false;
        let presses: Vec<bool> =
            [false, true, true, true, false, true].iter().map(|&h| pressed_now(h, &mut was)).collect();
        assert_eq!(presses, [false, true, false, false, false, true]);
    }

    #[test]
    fn the_host_panel_s_words_spell_host_commands() {
        let rules = HostCommand::SetRules(Rules { round_secs: 120, points_to_win: 5 });
        assert_eq!(host_command("rules:120:5"), Some(rules));
        assert_eq!(host_command("lock:1"), Some(HostCommand::Lock(true)));
        assert_eq!(host_command("lock:0"), Some(HostCommand::Lock(false)));
        assert_eq!(host_command("next"), Some(HostCommand::NextRound));
        assert_eq!(host_command("kick:7"), Some(HostCommand::Kick { id: 7 }));
        assert_eq!(host_command("watch:9"), Some(HostCommand::ToWatchers { id: 9 }));
        for bad in
            ["", "kick", "kick:x", "kick:7:8", "rules:120", "rules:-1:5", "next:1", "ban:3", "watch:70000"]
        {
            assert_eq!(host_command(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_click_picks_the_nearest_player_within_reach() {
        let drawn = [(1, (0.0, 0.0)), (2, (50.0, 0.0)), (3, (400.0, 0.0))];
        assert_eq!(player_at(drawn, (30.0, 5.0), 40.0), Some(2));
        assert_eq!(player_at(drawn, (-20.0, 0.0), 40.0), Some(1));
        assert_eq!(player_at(drawn, (200.0, 0.0), 40.0), None, "nobody there");
        assert_eq!(player_at([], (0.0, 0.0), 40.0), None);
    }
}
