//! The deterministic simulation: integer fixed-point maths only.
//!
//! State is in fixed-point world units ([`FIXED_ONE`] per unit), exactly what
//! travels in frames, so a client that resets to a frame and replays its
//! inputs computes the very bits the server computed. No floats, no hashing,
//! no iteration order that depends on anything but player ids.

use serde::{Deserialize, Serialize};

use crate::protocol::INPUT_RATE_HZ;

// Tuning, in world units (a unit is one CSS pixel at zoom 1) and seconds.

/// Fixed-point scale: positions and velocities are in 1/256 world units.
pub const FIXED_ONE: i32 = 256;
/// Arena size, world units. Walls sit on its edges.
pub const ARENA_WIDTH: i32 = 1600;
pub const ARENA_HEIGHT: i32 = 1000;
/// Player circle radius, world units.
pub const PLAYER_RADIUS: i32 = 20;
/// Acceleration at full stick, world units / s².
pub const ACCELERATION: i32 = 2000;
/// Top speed, world units / s.
pub const MAX_SPEED: i32 = 320;
/// Velocity lost per second to friction, as a fraction (per mille) of speed.
pub const FRICTION_PER_MILLE_PER_SEC: i64 = 5000;
/// Length of one input's simulation step.
pub const INPUT_DT_MICROS: u32 = 1_000_000 / INPUT_RATE_HZ;

const MICROS_PER_SEC: i64 = 1_000_000;
/// Largest stick component; a diagonal is scaled back to this length.
pub const STICK_MAX: i32 = 127;

/// A vector in fixed-point world units.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Vec2q {
    pub x: i32,
    pub y: i32,
}

impl Vec2q {
    pub const fn new(x: i32, y: i32) -> Self {
        Vec2q { x, y }
    }

    /// From world units.
    pub const fn from_units(x: i32, y: i32) -> Self {
        Vec2q { x: x * FIXED_ONE, y: y * FIXED_ONE }
    }

    /// To world units as floats, for drawing only (never fed back into `step`).
    pub fn to_units(self) -> (f32, f32) {
        (self.x as f32 / FIXED_ONE as f32, self.y as f32 / FIXED_ONE as f32)
    }

    fn length_squared(self) -> i64 {
        let (x, y) = (i64::from(self.x), i64::from(self.y));
        x * x + y * y
    }

    /// Distance to `other` in fixed-point units (integer square root).
    pub fn distance(self, other: Vec2q) -> i64 {
        Vec2q::new(other.x - self.x, other.y - self.y).length_squared().isqrt()
    }
}

/// A player's physical state: all the simulation knows about it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Body {
    pub pos: Vec2q,
    /// Fixed-point world units per second.
    pub vel: Vec2q,
}

/// One sample of a player's stick: each axis in -127..=127, y pointing down.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Input {
    pub x: i8,
    pub y: i8,
}

impl Input {
    /// The input for held direction keys.
    pub fn from_keys(left: bool, right: bool, up: bool, down: bool) -> Self {
        let axis = |neg: bool, pos: bool| match (neg, pos) {
            (true, false) => -127,
            (false, true) => 127,
            _ => 0,
        };
        Input { x: axis(left, right), y: axis(up, down) }
    }
}

/// Where the `index`-th player to join spawns: spread on a grid so that a
/// fresh room does not start as one pile.
pub fn spawn_point(index: u32) -> Vec2q {
    const COLS: u32 = 12;
    const ROWS: u32 = 8;
    let slot = index % (COLS * ROWS);
    let (col, row) = (slot % COLS, slot / COLS);
    let x = (ARENA_WIDTH as u32 * (2 * col + 1)) / (2 * COLS);
    let y = (ARENA_HEIGHT as u32 * (2 * row + 1)) / (2 * ROWS);
    Vec2q::from_units(x as i32, y as i32)
}

/// Advances one body by one input over `dt_micros`: accelerate along the
/// stick, apply friction, cap the speed, move, and stop at the walls.
pub fn step(body: &mut Body, input: Input, dt_micros: u32) {
    let dt = i64::from(dt_micros);
    let stick = clamp_length(Vec2q::new(i32::from(input.x), i32::from(input.y)), i64::from(STICK_MAX));
    let accel = i64::from(ACCELERATION) * i64::from(FIXED_ONE);
    let mut vel = [i64::from(body.vel.x), i64::from(body.vel.y)];
    for (v, s) in vel.iter_mut().zip([stick.x, stick.y]) {
        *v += accel * i64::from(s) * dt / (i64::from(STICK_MAX) * MICROS_PER_SEC);
        // Friction rounds away from zero so a released player comes to rest.
        let denom = 1000 * MICROS_PER_SEC;
        let loss = (v.abs() * FRICTION_PER_MILLE_PER_SEC * dt + denom - 1) / denom;
        *v -= v.signum() * loss.min(v.abs());
    }
    let vel =
        clamp_length(Vec2q::new(vel[0] as i32, vel[1] as i32), i64::from(MAX_SPEED) * i64::from(FIXED_ONE));
    body.vel = vel;
    body.pos.x += (i64::from(vel.x) * dt / MICROS_PER_SEC) as i32;
    body.pos.y += (i64::from(vel.y) * dt / MICROS_PER_SEC) as i32;
    keep_inside_walls(body);
}

/// Pushes overlapping players apart, half the overlap each, in id order.
/// `bodies` must be sorted by the caller's stable order (the server's is id).
pub fn resolve_overlaps(bodies: &mut [Body]) {
    let min_dist = i64::from(2 * PLAYER_RADIUS * FIXED_ONE);
    for i in 0..bodies.len() {
        for j in (i + 1)..bodies.len() {
            let (a, b) = (bodies[i].pos, bodies[j].pos);
            let (dx, dy) = (i64::from(b.x - a.x), i64::from(b.y - a.y));
            let dist_sq = dx * dx + dy * dy;
            if dist_sq >= min_dist * min_dist {
                continue;
            }
            let dist = dist_sq.isqrt();
            // Exactly on top of each other: separate along x, lower id left.
            let (nx, ny, dist) = if dist == 0 { (1, 0, 0) } else { (dx, dy, dist) };
            let norm = dist.max(1);
            let push = (min_dist - dist + 1) / 2;
            let (px, py) = ((nx * push / norm) as i32, (ny * push / norm) as i32);
            let (px, py) = if dist == 0 { (push as i32, 0) } else { (px, py) };
            bodies[i].pos.x -= px;
            bodies[i].pos.y -= py;
            bodies[j].pos.x += px;
            bodies[j].pos.y += py;
        }
    }
    bodies.iter_mut().for_each(keep_inside_walls);
}

fn clamp_length(v: Vec2q, max: i64) -> Vec2q {
    let len_sq = v.length_squared();
    if len_sq <= max * max {
        return v;
    }
    let len = len_sq.isqrt().max(1);
    Vec2q::new((i64::from(v.x) * max / len) as i32, (i64::from(v.y) * max / len) as i32)
}

fn keep_inside_walls(body: &mut Body) {
    let r = PLAYER_RADIUS * FIXED_ONE;
    let (max_x, max_y) = (ARENA_WIDTH * FIXED_ONE - r, ARENA_HEIGHT * FIXED_ONE - r);
    for (pos, vel, max) in
        [(&mut body.pos.x, &mut body.vel.x, max_x), (&mut body.pos.y, &mut body.vel.y, max_y)]
    {
        if *pos < r {
            *pos = r;
            *vel = (*vel).max(0);
        } else if *pos > max {
            *pos = max;
            *vel = (*vel).min(0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    use super::*;

    fn center() -> Body {
        Body { pos: Vec2q::from_units(ARENA_WIDTH / 2, ARENA_HEIGHT / 2), vel: Vec2q::default() }
    }

    fn inside(body: &Body) -> bool {
        let r = PLAYER_RADIUS * FIXED_ONE;
        (r..=ARENA_WIDTH * FIXED_ONE - r).contains(&body.pos.x)
            && (r..=ARENA_HEIGHT * FIXED_ONE - r).contains(&body.pos.y)
    }

    #[test]
    fn holding_right_accelerates_up_to_max_speed() {
        let mut body = center();
        let right = Input::from_keys(false, true, false, false);
        step(&mut body, right, INPUT_DT_MICROS);
        assert!(body.vel.x > 0 && body.pos.x > center().pos.x, "should move right: {body:?}");
        for _ in 0..120 {
            step(&mut body, right, INPUT_DT_MICROS);
        }
        assert!(body.vel.x <= MAX_SPEED * FIXED_ONE, "should cap speed: {body:?}");
        assert_eq!(body.vel.y, 0, "should not drift vertically");
    }

    #[test]
    fn friction_brings_a_released_player_to_rest() {
        let mut body = Body { pos: center().pos, vel: Vec2q::from_units(300, -200) };
        for _ in 0..240 {
            step(&mut body, Input::default(), INPUT_DT_MICROS);
        }
        assert_eq!(body.vel, Vec2q::default(), "should stop within four seconds");
    }

    #[test]
    fn diagonal_is_no_faster_than_straight() {
        let (mut diag, mut straight) = (center(), center());
        for _ in 0..300 {
            step(&mut diag, Input { x: 127, y: 127 }, INPUT_DT_MICROS);
            step(&mut straight, Input { x: 127, y: 0 }, INPUT_DT_MICROS);
        }
        let speed = |b: Body| b.vel.length_squared();
        assert!(speed(diag) <= speed(straight) + 4 * i64::from(FIXED_ONE), "diagonal should not be faster");
    }

    #[test]
    fn walls_stop_players() {
        let mut body = center();
        for _ in 0..600 {
            step(&mut body, Input { x: -127, y: -127 }, INPUT_DT_MICROS);
        }
        let r = PLAYER_RADIUS * FIXED_ONE;
        assert_eq!(body.pos, Vec2q::new(r, r), "should rest in the top-left corner");
        assert_eq!(body.vel, Vec2q::default());
    }

    #[test]
    fn overlapping_players_are_pushed_apart() {
        let mut bodies = [center(), center(), center()];
        bodies[1].pos.x += 5 * FIXED_ONE;
        for _ in 0..10 {
            resolve_overlaps(&mut bodies);
        }
        let min = i64::from(2 * PLAYER_RADIUS * FIXED_ONE);
        for i in 0..3 {
            for j in i + 1..3 {
                assert!(
                    bodies[i].pos.distance(bodies[j].pos) >= min - 2,
                    "should separate {i} and {j}: {bodies:?}"
                );
            }
        }
    }

    #[test]
    fn spawn_points_are_inside_and_distinct() {
        let points: Vec<Vec2q> = (0..96).map(spawn_point).collect();
        for (i, p) in points.iter().enumerate() {
            assert!(inside(&Body { pos: *p, vel: Vec2q::default() }), "spawn {i} should be inside");
            assert!(!points[..i].contains(p), "spawn {i} should be unique");
        }
    }

    /// Pinned output: if this changes, the simulation changed and
    /// PROTOCOL_VERSION must be bumped (old clients would mispredict).
    #[test]
    fn simulation_output_is_pinned() {
        let mut bodies = [center(), Body { pos: spawn_point(5), vel: Vec2q::default() }];
        for i in 0..500u32 {
            let input = Input { x: (i % 255) as i8, y: ((i * 7) % 255) as i8 };
            step(&mut bodies[0], input, INPUT_DT_MICROS);
            step(&mut bodies[1], Input { x: input.y.saturating_neg(), y: input.x }, INPUT_DT_MICROS);
            resolve_overlaps(&mut bodies);
        }
        assert_eq!(
            (bodies[0], bodies[1]),
            PINNED,
            "simulation output changed: update PINNED and bump PROTOCOL_VERSION"
        );
    }

    const PINNED: (Body, Body) = (
        Body { pos: Vec2q { x: 205_725, y: 133_139 }, vel: Vec2q { x: -16_926, y: -15_995 } },
        Body { pos: Vec2q { x: 182_509, y: 16_797 }, vel: Vec2q { x: 15_995, y: -16_926 } },
    );

    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn any_inputs_keep_players_inside(inputs in proptest::collection::vec((any::<i8>(), any::<i8>()), 1..400)) {
            let mut bodies = [center(), center()];
            for (x, y) in inputs {
                step(&mut bodies[0], Input { x, y }, INPUT_DT_MICROS);
                step(&mut bodies[1], Input { x: y, y: x }, INPUT_DT_MICROS);
                resolve_overlaps(&mut bodies);
                prop_assert!(bodies.iter().all(inside), "should stay inside: {:?}", bodies);
                prop_assert!(bodies.iter().all(|b| b.vel.length_squared() <= i64::from(MAX_SPEED * FIXED_ONE).pow(2)));
            }
        }

        #[test]
        fn step_is_a_pure_function(x in any::<i8>(), y in any::<i8>(), px in 0i32..409_600, vx in -80_000i32..80_000) {
            let start = Body { pos: Vec2q::new(px, px / 2), vel: Vec2q::new(vx, -vx) };
            let (mut a, mut b) = (start, start);
            step(&mut a, Input { x, y }, INPUT_DT_MICROS);
            step(&mut b, Input { x, y }, INPUT_DT_MICROS);
            prop_assert_eq!(a, b);
        }
    }
}
