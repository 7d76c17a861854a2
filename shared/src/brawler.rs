//! How a bot plays the brawler, from positions alone: back to the middle
//! when near the edge, else at the nearest player standing on the
//! platform, dashing when close; with nobody to chase, a slow wander.
//! Engine-free and deterministic per seed, so the server's fill bots
//! (`--fill-bots`, stepped inside the room's tick) and `arena-bots`
//! (stepped from what a client sees) play alike.

use crate::protocol::INPUT_RATE_HZ;
use crate::sim::Input;

/// Past this share of the platform's radius, a brawler heads back in.
const EDGE_SHARE: f32 = 0.72;
/// A brawler dashes at a target nearer than this, world units.
const DASH_REACH: f32 = 180.0;

/// One brawler's steering state.
#[derive(Debug, Clone)]
pub struct Brawler {
    rng: u64,
    current: Input,
    steps_left: u32,
}

/// What a brawler sees at one input step, world units.
#[derive(Debug, Clone, Copy)]
pub struct Sight<'a> {
    pub me: (f32, f32),
    /// Players standing on the platform it may chase (not itself).
    pub targets: &'a [(f32, f32)],
    pub platform_radius: f32,
    /// Its dash is ready.
    pub dash_ready: bool,
}

impl Brawler {
    pub fn new(seed: u64) -> Self {
        Brawler {
            rng: 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03),
            current: Input::default(),
            steps_left: 0,
        }
    }

    /// xorshift64*: fast and plenty for steering.
    pub fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next input sample.
    pub fn steer(&mut self, sight: Sight) -> Input {
        let me = sight.me;
        let toward = |to: (f32, f32)| {
            let (dx, dy) = (to.0 - me.0, to.1 - me.1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-3);
            (Input::stick((dx / len * 127.0) as i8, (dy / len * 127.0) as i8), len)
        };
        if (me.0 * me.0 + me.1 * me.1).sqrt() > sight.platform_radius * EDGE_SHARE {
            return toward((0.0, 0.0)).0;
        }
        let target = sight.targets.iter().map(|&at| toward(at)).min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((stick, distance)) = target else {
            return self.wander_slowly();
        };
        // Some hesitation so that bots do not all dash on the same step.
        let eager = self.next_random().is_multiple_of(4);
        stick.with_dash(distance < DASH_REACH && sight.dash_ready && eager)
    }

    fn wander_slowly(&mut self) -> Input {
        if self.steps_left == 0 {
            let r = self.next_random();
            self.current = Input::stick((r & 0x7f) as i8 - 64, ((r >> 8) & 0x7f) as i8 - 64);
            self.steps_left = INPUT_RATE_HZ;
        }
        self.steps_left -= 1;
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sight(me: (f32, f32), targets: &[(f32, f32)]) -> Sight<'_> {
        Sight { me, targets, platform_radius: 500.0, dash_ready: true }
    }

    #[test]
    fn a_brawler_chases_the_nearest_dashes_when_close_and_keeps_off_the_edge() {
        let mut brawler = Brawler::new(1);
        let chase = brawler.steer(sight((0.0, 0.0), &[(300.0, 0.0), (-100.0, 0.0)]));
        assert!(chase.x < -100 && chase.y == 0, "at the nearest: {chase:?}");
        let dashes = (0..200).filter(|_| brawler.steer(sight((0.0, 0.0), &[(100.0, 0.0)])).dash).count();
        assert!((20..=100).contains(&dashes), "dashes now and then when close: {dashes}");
        assert!((0..200).all(|_| !brawler.steer(sight((0.0, 0.0), &[(400.0, 0.0)])).dash), "not from afar");
        let home = brawler.steer(sight((450.0, 0.0), &[(480.0, 0.0)]));
        assert!(home.x < -100, "back to the middle near the edge: {home:?}");
        let alone: Vec<Input> = (0..120).map(|_| brawler.steer(sight((0.0, 0.0), &[]))).collect();
        assert!(alone.iter().any(|i| (i.x, i.y) != (0, 0)), "wanders with nobody to chase");
        assert_eq!(
            Brawler::new(7).steer(sight((0.0, 0.0), &[])),
            Brawler::new(7).steer(sight((0.0, 0.0), &[]))
        );
    }
}
