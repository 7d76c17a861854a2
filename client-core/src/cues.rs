//! What the game sounds like, decided without a speaker: which happenings
//! make a sound (a [`Cue`]), how loud, and each sound's recipe as a few
//! [`Tone`]s (a wave sweeping between two pitches under a short envelope).
//! The page plays them with the Web Audio API (`app::sound`); here they
//! are plain data, tested natively. No samples: nothing to download.

use arena_shared::protocol::{Life, PlayerId, RoundPhase};

use crate::session::Change;

/// A velocity change (world units/s) below this is no bump worth hearing:
/// running starts and stops change it by far less in a frame.
pub const BUMP_MIN_DV: f32 = 420.0;
/// A velocity change this large is a bump at full volume.
pub const BUMP_FULL_DV: f32 = 2000.0;
/// Bumps further than this from you (world units) are not heard.
pub const HEARING_UNITS: f32 = 900.0;

/// Something that makes a sound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cue {
    /// You dashed.
    Dash,
    /// Someone was bumped: `strength` 0..=1 from the impact's speed and
    /// how far from you it was.
    Bump { strength: f32 },
    /// A player left the platform (`yours`: you did).
    Fall { yours: bool },
    /// You knocked someone off.
    Scored,
    /// A round began.
    RoundStart,
    /// A round ended (the podium).
    RoundEnd,
}

/// The sound, if any, a change in the room makes for player `you`.
pub fn for_change(change: &Change, you: PlayerId) -> Option<Cue> {
    match change {
        Change::MyLife(Life::Falling) => Some(Cue::Fall { yours: true }),
        Change::KnockedOut(knockout) if knockout.victim != you => {
            Some(if knockout.by == Some(you) { Cue::Scored } else { Cue::Fall { yours: false } })
        }
        Change::Round(round) => Some(match round.phase {
            RoundPhase::Playing { .. } => Cue::RoundStart,
            RoundPhase::Podium { .. } => Cue::RoundEnd,
        }),
        Change::Joined(_) | Change::Left(_) | Change::KnockedOut(_) | Change::MyLife(_) => None,
    }
}

/// The bump a drawn player's sudden change of velocity `dv` (units/s),
/// `distance` units from you, makes: louder with the impact, quieter far
/// away, nothing below [`BUMP_MIN_DV`] or beyond [`HEARING_UNITS`].
pub fn bump(dv: f32, distance: f32) -> Option<Cue> {
    if dv.is_nan() || dv < BUMP_MIN_DV || distance.is_nan() || distance >= HEARING_UNITS {
        return None;
    }
    let impact = ((dv - BUMP_MIN_DV) / (BUMP_FULL_DV - BUMP_MIN_DV)).clamp(0.0, 1.0);
    let near = 1.0 - distance.max(0.0) / HEARING_UNITS;
    Some(Cue::Bump { strength: (0.25 + 0.75 * impact) * near })
}

/// An oscillator's wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    Sine,
    Triangle,
    Square,
    Sawtooth,
}

/// One oscillator: `wave` sweeping from `from_hz` to `to_hz`
/// (exponentially) over `secs`, starting `delay` seconds after the cue,
/// its volume rising to `gain` at once and falling away by the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    pub wave: Wave,
    pub from_hz: f32,
    pub to_hz: f32,
    pub delay: f32,
    pub secs: f32,
    pub gain: f32,
}

/// Loudest any tone is (the page's master volume is 1).
pub const MAX_GAIN: f32 = 0.3;

impl Cue {
    /// The sound's recipe.
    pub fn tones(self) -> Vec<Tone> {
        let tone = |wave, from_hz, to_hz, delay, secs, gain| Tone { wave, from_hz, to_hz, delay, secs, gain };
        match self {
            Cue::Dash => vec![tone(Wave::Sawtooth, 220.0, 880.0, 0.0, 0.12, 0.08)],
            Cue::Bump { strength } => {
                let strength = strength.clamp(0.0, 1.0);
                vec![
                    tone(Wave::Sine, 140.0, 55.0, 0.0, 0.14, MAX_GAIN * strength),
                    tone(Wave::Square, 900.0, 300.0, 0.0, 0.03, 0.05 * strength),
                ]
            }
            Cue::Fall { yours } => {
                let gain = if yours { 0.2 } else { 0.07 };
                vec![tone(Wave::Triangle, 700.0, 90.0, 0.0, 0.6, gain)]
            }
            Cue::Scored => vec![
                tone(Wave::Square, 523.0, 523.0, 0.0, 0.09, 0.06),
                tone(Wave::Square, 784.0, 784.0, 0.08, 0.16, 0.06),
            ],
            Cue::RoundStart => vec![
                tone(Wave::Triangle, 440.0, 440.0, 0.0, 0.12, 0.12),
                tone(Wave::Triangle, 880.0, 880.0, 0.18, 0.2, 0.12),
            ],
            Cue::RoundEnd => [523.0, 659.0, 784.0, 1047.0]
                .iter()
                .enumerate()
                .map(|(i, &hz)| tone(Wave::Triangle, hz, hz, i as f32 * 0.12, 0.3, 0.1))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use arena_shared::protocol::{Knockout, RoundInfo, Standing};

    use super::*;

    #[test]
    fn the_room_s_news_makes_the_sounds_named() {
        let knockout = |victim, by| Change::KnockedOut(Knockout { victim, victim_score: 0, by, by_score: 1 });
        let round = |phase| Change::Round(RoundInfo { number: 2, phase });
        let cases = [
            (Change::MyLife(Life::Falling), Some(Cue::Fall { yours: true })),
            (Change::MyLife(Life::Protected), None),
            (knockout(3, Some(1)), Some(Cue::Scored)),
            (knockout(3, Some(2)), Some(Cue::Fall { yours: false })),
            (knockout(3, None), Some(Cue::Fall { yours: false })),
            // Your own knockout sounded as you fell; not twice.
            (knockout(1, Some(3)), None),
            (round(RoundPhase::Playing { ends_at: 900 }), Some(Cue::RoundStart)),
            (
                round(RoundPhase::Podium {
                    standings: vec![Standing { id: 1, score: 2, knockouts: 2 }],
                    next_at: 9,
                }),
                Some(Cue::RoundEnd),
            ),
            (Change::Joined(4), None),
            (Change::Left(4), None),
        ];
        for (change, want) in cases {
            assert_eq!(for_change(&change, 1), want, "{change:?}");
        }
    }

    #[test]
    fn bumps_are_louder_when_harder_and_nearer_and_unheard_when_soft_or_far() {
        let strength = |dv, distance| match bump(dv, distance) {
            Some(Cue::Bump { strength }) => strength,
            other => panic!("a bump, not {other:?}"),
        };
        assert_eq!(bump(BUMP_MIN_DV - 1.0, 0.0), None, "a run's change of speed");
        assert_eq!(bump(f32::NAN, 0.0), None);
        assert_eq!(bump(1500.0, HEARING_UNITS), None, "too far away");
        assert!(strength(1500.0, 0.0) > strength(600.0, 0.0), "harder is louder");
        assert!(strength(1500.0, 50.0) > strength(1500.0, 600.0), "nearer is louder");
        assert!((strength(BUMP_FULL_DV * 3.0, 0.0) - 1.0).abs() < 1e-6, "full volume at most");
    }

    #[test]
    fn every_sound_is_short_quiet_enough_and_audible() {
        let cues = [
            Cue::Dash,
            Cue::Bump { strength: 1.0 },
            Cue::Bump { strength: 7.0 },
            Cue::Fall { yours: true },
            Cue::Fall { yours: false },
            Cue::Scored,
            Cue::RoundStart,
            Cue::RoundEnd,
        ];
        for cue in cues {
            let tones = cue.tones();
            assert!(!tones.is_empty(), "{cue:?}");
            for tone in &tones {
                assert!(tone.gain > 0.0 && tone.gain <= MAX_GAIN, "{cue:?}: {tone:?}");
                assert!(tone.delay + tone.secs <= 1.0, "{cue:?} lasts under a second: {tone:?}");
                assert!((20.0..=20_000.0).contains(&tone.from_hz) && (20.0..=20_000.0).contains(&tone.to_hz));
            }
        }
    }
}
