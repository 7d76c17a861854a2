//! The deterministic simulation: integer fixed-point maths only.
//!
//! State is in fixed-point world units ([`FIXED_ONE`] per unit), exactly what
//! travels in frames, so a client that resets to a frame and replays its
//! inputs computes the very bits the server computed. No floats, no hashing,
//! no iteration order that depends on anything but player ids.
//!
//! The world is a round platform centred on the origin (x right, y down)
//! over a void: nothing stops a body at the edge; [`Platform::is_off`] says
//! when it has left. The rules built on this (knockouts, respawns, rounds)
//! are in [`crate::game`].

use serde::{Deserialize, Serialize};

// Tuning, in world units (a unit is one CSS pixel at zoom 1) and seconds.

/// Inputs per second a client sends; each input is one [`step`] of
/// [`INPUT_DT_MICROS`].
pub const INPUT_RATE_HZ: u32 = 60;
/// Fixed-point scale: positions and velocities are in 1/256 world units.
pub const FIXED_ONE: i32 = 256;
/// Player circle radius, world units.
pub const PLAYER_RADIUS: i32 = 20;
/// Acceleration at full stick, world units / s².
pub const ACCELERATION: i32 = 2000;
/// Top running speed, world units / s. Dashes and bumps go faster and
/// friction brings them back down.
pub const MAX_SPEED: i32 = 320;
/// Speed a dash sets, world units / s.
pub const DASH_SPEED: i32 = 950;
/// Input steps between two dashes (1.5 s).
pub const DASH_COOLDOWN_STEPS: u8 = 90;
/// No body ever moves faster than this, world units / s.
pub const MAX_BODY_SPEED: i32 = 1600;
/// Bumps give back this share (per mille) of the speed two bodies meet at,
/// a little more than an elastic collision would, so hits feel punchy.
pub const BUMP_PER_MILLE: i64 = 1250;
/// A bump always pushes at least this fast, world units / s.
pub const BUMP_MIN_SPEED: i32 = 60;
/// Velocity lost per second to friction, as a fraction (per mille) of speed,
/// at running speed and below: stops feel crisp.
pub const FRICTION_PER_MILLE_PER_SEC: i64 = 5000;
/// The same above running speed: dashed and bumped bodies slide far, so a
/// good hit carries someone off the edge.
pub const SLIDE_FRICTION_PER_MILLE_PER_SEC: i64 = 1800;
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

    pub fn length_squared(self) -> i64 {
        let (x, y) = (i64::from(self.x), i64::from(self.y));
        x * x + y * y
    }

    /// Distance to `other` in fixed-point units (integer square root).
    pub fn distance(self, other: Vec2q) -> i64 {
        isqrt(Vec2q::new(other.x - self.x, other.y - self.y).length_squared())
    }
}

/// The integer square root of `v` (rounded down; 0 for negatives): the
/// float root, exact for every input below 2^52, then nudged to the exact
/// answer. IEEE 754 square roots are correctly rounded on every target
/// (wasm32 included), so this is as deterministic as `i64::isqrt`, which
/// it matches everywhere, and several times faster in the tick.
pub fn isqrt(v: i64) -> i64 {
    if v <= 0 {
        return 0;
    }
    let (v, mut root) = (i128::from(v), (v as f64).sqrt() as i128);
    while root * root > v {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= v {
        root += 1;
    }
    root as i64
}

/// A signed 24-bit integer in three bytes (little-endian): a coordinate
/// or velocity component, which varint would spend five bytes on.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct I24([u8; 3]);

impl I24 {
    pub const MAX: i32 = (1 << 23) - 1;

    /// `v` clamped to ±[`I24::MAX`].
    pub fn saturating(v: i32) -> Self {
        let [a, b, c, _] = v.clamp(-I24::MAX, I24::MAX).to_le_bytes();
        I24([a, b, c])
    }

    pub fn get(self) -> i32 {
        let [a, b, c] = self.0;
        // Shifted to the top and back, so that the sign is extended.
        i32::from_le_bytes([0, a, b, c]) >> 8
    }
}

/// Furthest a body gets from the origin on either axis, in fixed-point
/// units (about 32,767 world units, a hundred platforms away): [`step`]
/// stops it there, so that a position always fits its three bytes.
pub const MAX_COORD: i32 = I24::MAX;

/// A position on the wire and in saved rooms: three bytes an axis, exact
/// for every position [`step`] leaves.
mod three_byte_pos {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{I24, Vec2q};

    pub fn serialize<S: Serializer>(pos: &Vec2q, s: S) -> Result<S::Ok, S::Error> {
        [I24::saturating(pos.x), I24::saturating(pos.y)].serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec2q, D::Error> {
        let [x, y] = <[I24; 2]>::deserialize(d)?;
        Ok(Vec2q::new(x.get(), y.get()))
    }
}

/// A player's physical state: all the simulation knows about it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Body {
    #[serde(with = "three_byte_pos")]
    pub pos: Vec2q,
    /// Fixed-point world units per second.
    pub vel: Vec2q,
    /// Input steps until the next dash is allowed (0: ready).
    pub dash_cooldown: u8,
}

impl Body {
    pub const fn at(pos: Vec2q) -> Self {
        Body { pos, vel: Vec2q::new(0, 0), dash_cooldown: 0 }
    }
}

/// One sample of a player's controls: the stick, each axis in -127..=127
/// with y pointing down, and whether dash was pressed since the last sample.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Input {
    pub x: i8,
    pub y: i8,
    pub dash: bool,
}

impl Input {
    /// The input for held direction keys.
    pub fn from_keys(left: bool, right: bool, up: bool, down: bool) -> Self {
        let axis = |neg: bool, pos: bool| match (neg, pos) {
            (true, false) => -127,
            (false, true) => 127,
            _ => 0,
        };
        Input { x: axis(left, right), y: axis(up, down), dash: false }
    }

    pub const fn stick(x: i8, y: i8) -> Self {
        Input { x, y, dash: false }
    }

    pub const fn with_dash(self, dash: bool) -> Self {
        Input { dash, ..self }
    }
}

/// The round platform players stand on, centred on the origin.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Platform {
    /// World units.
    pub radius: u32,
}

impl Platform {
    /// Smallest and largest platforms, world units.
    pub const MIN_RADIUS: u32 = 200;
    pub const MAX_RADIUS: u32 = 4000;

    /// A platform that suits a room of `capacity` players: the area per
    /// player shrinks as rooms grow, so 8 and 200 players both meet often.
    pub fn for_capacity(capacity: u16) -> Self {
        let radius = 250 + 50 * u32::from(capacity).isqrt();
        Platform { radius: radius.clamp(Self::MIN_RADIUS, Self::MAX_RADIUS) }
    }

    /// Whether a body's centre has left the platform: it falls.
    pub fn is_off(self, pos: Vec2q) -> bool {
        let r = i64::from(self.radius) * i64::from(FIXED_ONE);
        pos.length_squared() > r * r
    }

    /// How far inside the edge `pos` is, world units (negative: off).
    pub fn margin_units(self, pos: Vec2q) -> i64 {
        i64::from(self.radius) - isqrt(pos.length_squared()) / i64::from(FIXED_ONE)
    }

    /// Where a player (re)spawns: of a fixed set of candidate points (the
    /// centre and two rings), the one farthest from every body in
    /// `others`; ties go to the earlier candidate.
    pub fn spawn_point(self, others: impl Iterator<Item = Vec2q> + Clone) -> Vec2q {
        let r = i64::from(self.radius);
        let mut candidates = vec![Vec2q::default()];
        for (ring_per_mille, count) in [(300i64, 8usize), (600, 16)] {
            for k in 0..count {
                let (sin, cos) = UNIT_CIRCLE[(k * UNIT_CIRCLE.len() / count) % UNIT_CIRCLE.len()];
                let x = r * ring_per_mille * i64::from(cos) / (1000 * 1000);
                let y = r * ring_per_mille * i64::from(sin) / (1000 * 1000);
                candidates.push(Vec2q::from_units(x as i32, y as i32));
            }
        }
        let clearance = |p: Vec2q| others.clone().map(|o| p.distance(o)).min().unwrap_or(i64::MAX);
        let mut best = (candidates[0], clearance(candidates[0]));
        for &candidate in &candidates[1..] {
            let c = clearance(candidate);
            if c > best.1 {
                best = (candidate, c);
            }
        }
        best.0
    }
}

/// (sin, cos) × 1000 at every 22.5°: enough directions for spawn rings
/// without floats.
const UNIT_CIRCLE: [(i32, i32); 16] = [
    (0, 1000),
    (383, 924),
    (707, 707),
    (924, 383),
    (1000, 0),
    (924, -383),
    (707, -707),
    (383, -924),
    (0, -1000),
    (-383, -924),
    (-707, -707),
    (-924, -383),
    (-1000, 0),
    (-924, 383),
    (-707, 707),
    (-383, 924),
];

/// Advances one body by one input over `dt_micros`: dash if asked and
/// ready, else accelerate along the stick; apply friction; cap the speed;
/// move. Nothing stops a body at the platform's edge.
pub fn step(body: &mut Body, input: Input, dt_micros: u32) {
    let dt = i64::from(dt_micros);
    let stick = clamp_length(Vec2q::new(i32::from(input.x), i32::from(input.y)), i64::from(STICK_MAX));
    let fixed = i64::from(FIXED_ONE);
    body.dash_cooldown = body.dash_cooldown.saturating_sub(1);
    if input.dash && body.dash_cooldown == 0 {
        // Along the stick, or straight on when the stick is centred.
        let aim = if stick != Vec2q::default() { stick } else { body.vel };
        if aim != Vec2q::default() {
            body.vel = set_length(aim, i64::from(DASH_SPEED) * fixed);
            body.dash_cooldown = DASH_COOLDOWN_STEPS;
        }
    }
    // Friction first, rounding away from zero so a released player comes to rest.
    let denom = 1000 * MICROS_PER_SEC;
    let sliding = body.vel.length_squared() > (i64::from(MAX_SPEED) * fixed).pow(2);
    let friction = if sliding { SLIDE_FRICTION_PER_MILLE_PER_SEC } else { FRICTION_PER_MILLE_PER_SEC };
    let mut vel = [i64::from(body.vel.x), i64::from(body.vel.y)];
    for v in &mut vel {
        let loss = (v.abs() * friction * dt + denom - 1) / denom;
        *v -= v.signum() * loss.min(v.abs());
    }
    let coasting = isqrt(Vec2q::new(vel[0] as i32, vel[1] as i32).length_squared());
    let accel = i64::from(ACCELERATION) * fixed;
    for (v, s) in vel.iter_mut().zip([stick.x, stick.y]) {
        *v += accel * i64::from(s) * dt / (i64::from(STICK_MAX) * MICROS_PER_SEC);
    }
    // Running tops out at MAX_SPEED; faster (a dash, a bump) only decays.
    let cap = (i64::from(MAX_SPEED) * fixed).max(coasting).min(i64::from(MAX_BODY_SPEED) * fixed);
    let vel = clamp_length(Vec2q::new(vel[0] as i32, vel[1] as i32), cap);
    body.vel = vel;
    let moved =
        |at: i32, v: i32| (at + (i64::from(v) * dt / MICROS_PER_SEC) as i32).clamp(-MAX_COORD, MAX_COORD);
    body.pos = Vec2q::new(moved(body.pos.x, vel.x), moved(body.pos.y, vel.y));
}

/// Two bodies that overlap are pushed apart (half the overlap each) and,
/// if they were closing in, bumped: each gets an impulse along the line
/// between them from the speed they met at. Returns whether they touched.
pub fn bump(a: &mut Body, b: &mut Body) -> bool {
    let min_dist = i64::from(2 * PLAYER_RADIUS * FIXED_ONE);
    let (dx, dy) = (i64::from(b.pos.x - a.pos.x), i64::from(b.pos.y - a.pos.y));
    if dx.abs() >= min_dist || dy.abs() >= min_dist {
        return false;
    }
    let dist_sq = dx * dx + dy * dy;
    if dist_sq >= min_dist * min_dist {
        return false;
    }
    // Exactly on top of each other: separate along x, `a` to the left.
    let (nx, ny, dist) = match isqrt(dist_sq) {
        0 => (1, 0, 1),
        dist => (dx, dy, dist),
    };
    let push = (min_dist - dist + 1) / 2;
    let (px, py) = ((nx * push / dist) as i32, (ny * push / dist) as i32);
    a.pos.x -= px;
    a.pos.y -= py;
    b.pos.x += px;
    b.pos.y += py;
    // How fast `a` closes on `b` along the normal.
    let closing = (i64::from(a.vel.x - b.vel.x) * nx + i64::from(a.vel.y - b.vel.y) * ny) / dist;
    if closing > 0 {
        let impulse = closing * BUMP_PER_MILLE / 1000 + i64::from(BUMP_MIN_SPEED * FIXED_ONE);
        let (ix, iy) = ((impulse * nx / dist) as i32, (impulse * ny / dist) as i32);
        a.vel.x -= ix;
        a.vel.y -= iy;
        b.vel.x += ix;
        b.vel.y += iy;
        let cap = i64::from(MAX_BODY_SPEED) * i64::from(FIXED_ONE);
        a.vel = clamp_length(a.vel, cap);
        b.vel = clamp_length(b.vel, cap);
    }
    true
}

/// Every pair of `bodies` that overlaps, bumped once per call, in a
/// deterministic order (by the lower index, then the neighbouring cells in
/// a fixed order). Calls `touched` with the indices of each pair that
/// touched. A [`Grid`] of cells one player wide finds the pairs, so the
/// cost grows with the bodies, not with their pairs.
pub fn collide(bodies: &mut [Body], mut touched: impl FnMut(usize, usize)) {
    let grid = Grid::new(2 * PLAYER_RADIUS, bodies.iter().map(|b| b.pos));
    // Cells as filed: bumps move bodies, the pairs stay the ones found.
    let keys: Vec<(i32, i32)> = bodies.iter().map(|b| grid.key(b.pos)).collect();
    for (i, &(cx, cy)) in keys.iter().enumerate() {
        // This cell (later indices only) and the four cells "after" it, so
        // each pair of neighbouring cells is looked at once.
        for (dx, dy) in [(0, 0), (1, -1), (1, 0), (1, 1), (0, 1)] {
            for &j in grid.cell((cx + dx, cy + dy)) {
                if (dx, dy) == (0, 0) && j <= i {
                    continue;
                }
                debug_assert_ne!(i, j, "a body is filed under one cell");
                let (lo, hi) = (i.min(j), i.max(j));
                let (left, right) = bodies.split_at_mut(hi);
                if bump(&mut left[lo], &mut right[0]) {
                    touched(lo, hi);
                }
            }
        }
    }
}

/// A uniform grid of square cells over a set of positions: which of them
/// share a cell (or a neighbouring one), without looking at the others.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Cell side, fixed-point units.
    cell: i64,
    cells: std::collections::HashMap<(i32, i32), Vec<usize>>,
}

impl Grid {
    /// Files each position (by its index) under its cell of `cell_units`
    /// world units.
    pub fn new(cell_units: i32, positions: impl Iterator<Item = Vec2q>) -> Self {
        let cell = i64::from(cell_units.max(1)) * i64::from(FIXED_ONE);
        let mut grid = Grid { cell, cells: std::collections::HashMap::new() };
        for (index, pos) in positions.enumerate() {
            let key = grid.key(pos);
            grid.cells.entry(key).or_default().push(index);
        }
        grid
    }

    /// The cell a position falls in.
    pub fn key(&self, pos: Vec2q) -> (i32, i32) {
        let at = |v: i32| i64::from(v).div_euclid(self.cell) as i32;
        (at(pos.x), at(pos.y))
    }

    /// The indices filed under one cell, in index order.
    pub fn cell(&self, key: (i32, i32)) -> &[usize] {
        self.cells.get(&key).map_or(&[], Vec::as_slice)
    }
}

fn clamp_length(v: Vec2q, max: i64) -> Vec2q {
    let len_sq = v.length_squared();
    if len_sq <= max * max {
        return v;
    }
    set_length(v, max)
}

fn set_length(v: Vec2q, length: i64) -> Vec2q {
    let len = isqrt(v.length_squared()).max(1);
    Vec2q::new((i64::from(v.x) * length / len) as i32, (i64::from(v.y) * length / len) as i32)
}

#[cfg(test)]
mod tests {
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn i24_keeps_every_velocity_a_body_can_have() {
        for v in [0, 1, -1, 255, -256, 65_535, -65_536, 409_600, -409_600, I24::MAX, -I24::MAX] {
            assert_eq!(I24::saturating(v).get(), v);
        }
        assert_eq!(I24::saturating(i32::MAX).get(), I24::MAX);
        assert_eq!(I24::saturating(i32::MIN).get(), -I24::MAX);
    }

    #[test]
    fn a_body_stops_at_the_edge_of_what_three_bytes_hold_and_travels_exactly() {
        let mut body = Body {
            pos: Vec2q::new(MAX_COORD - 10, -MAX_COORD + 10),
            vel: Vec2q::new(409_600, -409_600),
            dash_cooldown: 0,
        };
        step(&mut body, Input::default(), INPUT_DT_MICROS);
        assert_eq!(body.pos, Vec2q::new(MAX_COORD, -MAX_COORD));
        let bytes = crate::codec::encode_state(&body);
        assert_eq!(bytes.len(), 3 + 3 + 5 + 5 + 1, "position 3 + 3, velocity as varints, cooldown");
        assert_eq!(crate::codec::decode_state::<Body>(&bytes, 64), Ok(body));
    }

    fn still(x: i32, y: i32) -> Body {
        Body::at(Vec2q::from_units(x, y))
    }

    fn speed_units(body: &Body) -> i64 {
        isqrt(body.vel.length_squared()) / i64::from(FIXED_ONE)
    }

    #[test]
    fn holding_right_accelerates_up_to_max_speed() {
        let mut body = still(0, 0);
        let right = Input::from_keys(false, true, false, false);
        step(&mut body, right, INPUT_DT_MICROS);
        assert!(body.vel.x > 0 && body.pos.x > 0, "should move right: {body:?}");
        for _ in 0..120 {
            step(&mut body, right, INPUT_DT_MICROS);
        }
        assert!(body.vel.x <= MAX_SPEED * FIXED_ONE, "should cap speed: {body:?}");
        assert_eq!(body.vel.y, 0, "should not drift vertically");
    }

    #[test]
    fn friction_brings_a_released_player_to_rest() {
        let mut body = Body { vel: Vec2q::from_units(300, -200), ..still(0, 0) };
        for _ in 0..240 {
            step(&mut body, Input::default(), INPUT_DT_MICROS);
        }
        assert_eq!(body.vel, Vec2q::default(), "should stop within four seconds");
    }

    #[test]
    fn diagonal_is_no_faster_than_straight() {
        let (mut diag, mut straight) = (still(0, 0), still(0, 0));
        for _ in 0..300 {
            step(&mut diag, Input::stick(127, 127), INPUT_DT_MICROS);
            step(&mut straight, Input::stick(127, 0), INPUT_DT_MICROS);
        }
        let speed = |b: Body| b.vel.length_squared();
        assert!(speed(diag) <= speed(straight) + 4 * i64::from(FIXED_ONE), "diagonal should not be faster");
    }

    #[test]
    fn a_dash_bursts_along_the_stick_then_cools_down() {
        let mut body = still(0, 0);
        step(&mut body, Input::stick(0, -127).with_dash(true), INPUT_DT_MICROS);
        assert!(speed_units(&body) > i64::from(MAX_SPEED) * 2, "a dash is far faster than running: {body:?}");
        assert!(body.vel.y < 0 && body.vel.x == 0, "along the stick (up): {body:?}");
        assert_eq!(body.dash_cooldown, DASH_COOLDOWN_STEPS);
        // Pressing again during the cooldown does nothing.
        let before = body;
        step(&mut body, Input::stick(127, 0).with_dash(true), INPUT_DT_MICROS);
        assert!(body.vel.y < 0 && body.vel.x < 40 * FIXED_ONE, "no second dash: {before:?} -> {body:?}");
        for _ in 0..DASH_COOLDOWN_STEPS - 2 {
            step(&mut body, Input::default(), INPUT_DT_MICROS);
        }
        assert_eq!(body.dash_cooldown, 1, "one step left");
        step(&mut body, Input::stick(127, 0).with_dash(true), INPUT_DT_MICROS);
        assert_eq!(body.dash_cooldown, DASH_COOLDOWN_STEPS, "ready again after the cooldown");
        assert!(body.vel.x > MAX_SPEED * FIXED_ONE, "second dash to the right");
    }

    #[test]
    fn a_dash_with_the_stick_centred_goes_straight_on_and_needs_motion() {
        let mut resting = still(0, 0);
        step(&mut resting, Input::default().with_dash(true), INPUT_DT_MICROS);
        assert_eq!(
            (resting.vel, resting.dash_cooldown),
            (Vec2q::default(), 0),
            "nowhere to go: no dash spent"
        );
        let mut moving = Body { vel: Vec2q::from_units(-100, 0), ..still(0, 0) };
        step(&mut moving, Input::default().with_dash(true), INPUT_DT_MICROS);
        assert!(moving.vel.x < -(MAX_SPEED * FIXED_ONE), "dashes the way it was going: {moving:?}");
    }

    #[test]
    fn dash_speed_decays_back_to_running_speed() {
        let mut body = still(0, 0);
        step(&mut body, Input::stick(127, 0).with_dash(true), INPUT_DT_MICROS);
        for _ in 0..60 {
            step(&mut body, Input::stick(127, 0), INPUT_DT_MICROS);
        }
        assert!(speed_units(&body) <= i64::from(MAX_SPEED), "holding the stick cannot keep a dash: {body:?}");
    }

    #[test]
    fn a_dash_into_a_still_player_sends_it_flying_and_stops_the_dasher() {
        let mut dasher = Body { vel: Vec2q::from_units(DASH_SPEED, 0), ..still(0, 0) };
        let mut target = still(2 * PLAYER_RADIUS - 4, 0);
        assert!(bump(&mut dasher, &mut target), "they overlap");
        assert!(speed_units(&target) > i64::from(DASH_SPEED), "the target flies off: {target:?}");
        assert!(target.vel.x > 0 && dasher.vel.x < 0, "pushed apart along the line between them");
        assert!(dasher.pos.distance(target.pos) >= i64::from(2 * PLAYER_RADIUS * FIXED_ONE) - 2, "separated");
    }

    #[test]
    fn players_resting_together_are_separated_without_a_kick() {
        let mut a = still(0, 0);
        let mut b = still(10, 0);
        assert!(bump(&mut a, &mut b));
        assert_eq!((a.vel, b.vel), (Vec2q::default(), Vec2q::default()), "no closing speed, no bump");
        let mut c = still(5, 5);
        let mut d = still(5, 5);
        bump(&mut c, &mut d);
        assert!(c.pos.x < d.pos.x, "on top of each other: split along x");
        assert!(!bump(&mut still(0, 0), &mut still(100, 0)), "far apart: no touch");
    }

    #[test]
    fn collide_reports_each_touching_pair_once() {
        let mut bodies = [still(0, 0), still(500, 0), still(30, 0), still(-1000, 0)];
        let mut pairs = Vec::new();
        collide(&mut bodies, |i, j| pairs.push((i, j)));
        assert_eq!(pairs, [(0, 2)]);
    }

    #[test]
    fn the_grid_files_neighbours_together_and_collide_finds_every_touching_pair() {
        let points = [Vec2q::from_units(0, 0), Vec2q::from_units(39, 0), Vec2q::from_units(-500, 700)];
        let grid = Grid::new(100, points.iter().copied());
        assert_eq!(grid.cell(grid.key(Vec2q::from_units(10, 10))), [0, 1], "the far point is not filed here");
        assert_eq!(grid.cell(grid.key(points[2])), [2]);
        // A crowd on a line and in a clump: the grid finds the same pairs as
        // comparing every pair would.
        let mut bodies: Vec<Body> = (0..60).map(|i| still((i % 12) * 33 - 200, (i / 12) * 35 - 80)).collect();
        let mut expected = Vec::new();
        for i in 0..bodies.len() {
            for j in i + 1..bodies.len() {
                if bodies[i].pos.distance(bodies[j].pos) < i64::from(2 * PLAYER_RADIUS * FIXED_ONE) {
                    expected.push((i, j));
                }
            }
        }
        let mut found = Vec::new();
        collide(&mut bodies, |i, j| found.push((i, j)));
        found.sort_unstable();
        assert!(expected.iter().all(|pair| found.contains(pair)), "missed pairs: {expected:?} vs {found:?}");
    }

    #[test]
    fn the_platform_edge_is_its_radius_and_grows_with_the_room() {
        let platform = Platform { radius: 400 };
        assert!(!platform.is_off(Vec2q::from_units(400, 0)), "on the edge is still on");
        assert!(platform.is_off(Vec2q::from_units(283, 283)), "past the edge diagonally");
        assert!(!platform.is_off(Vec2q::from_units(-282, -282)));
        let (small, big) = (Platform::for_capacity(8), Platform::for_capacity(200));
        assert!(small.radius < big.radius, "{small:?} {big:?}");
        let area_per_player = |p: Platform, n: u32| p.radius * p.radius / n;
        assert!(area_per_player(small, 8) > area_per_player(big, 200), "crowding grows with the room");
    }

    #[test]
    fn spawns_pick_the_point_farthest_from_everyone() {
        let platform = Platform { radius: 500 };
        assert_eq!(platform.spawn_point(std::iter::empty()), Vec2q::default(), "an empty room: the centre");
        let crowd = [Vec2q::default(), Vec2q::from_units(100, 0)];
        let spot = platform.spawn_point(crowd.iter().copied());
        assert!(!platform.is_off(spot));
        let clearance = crowd.iter().map(|c| c.distance(spot)).min().expect("two");
        assert!(clearance > i64::from(250 * FIXED_ONE), "far from the crowd: {spot:?}");
    }

    /// Pinned output: if this changes, the simulation changed and
    /// PROTOCOL_VERSION must be bumped (old clients would mispredict).
    #[test]
    fn simulation_output_is_pinned() {
        let mut bodies = [still(0, 0), still(60, 40)];
        for i in 0..500u32 {
            let input = Input { x: (i % 255) as i8, y: ((i * 7) % 255) as i8, dash: i % 97 == 0 };
            step(&mut bodies[0], input, INPUT_DT_MICROS);
            step(
                &mut bodies[1],
                Input { x: input.y.saturating_neg(), y: input.x, dash: i % 89 == 0 },
                INPUT_DT_MICROS,
            );
            collide(&mut bodies, |_, _| {});
        }
        assert_eq!(
            (bodies[0], bodies[1]),
            PINNED,
            "simulation output changed: update PINNED and bump PROTOCOL_VERSION"
        );
    }

    const PINNED: (Body, Body) = (
        Body {
            pos: Vec2q { x: -16_718, y: 14_600 },
            vel: Vec2q { x: -52_189, y: 98_518 },
            dash_cooldown: 76,
        },
        Body {
            pos: Vec2q { x: -125_962, y: 7_291 },
            vel: Vec2q { x: 13_564, y: -26_483 },
            dash_cooldown: 36,
        },
    );

    #[test]
    fn isqrt_matches_the_exact_one_at_the_edges() {
        for v in [0i64, 1, 2, 3, 4, 15, 16, 17, (1 << 52) - 1, 1 << 52, (1 << 53) + 1, i64::MAX, i64::MAX - 1]
        {
            assert_eq!(isqrt(v), v.isqrt(), "isqrt({v})");
        }
        for root in [3_037_000_499i64, 94_906_265, 67_108_864] {
            for v in [root * root - 1, root * root, root * root + 1] {
                assert_eq!(isqrt(v), v.isqrt(), "isqrt({v})");
            }
        }
        assert_eq!(isqrt(-5), 0);
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn isqrt_matches_the_exact_one(v in 0i64..) {
            prop_assert_eq!(isqrt(v), v.isqrt());
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn no_inputs_make_a_body_faster_than_the_cap(inputs in proptest::collection::vec((any::<i8>(), any::<i8>(), any::<bool>()), 1..400)) {
            let mut bodies = [still(0, 0), still(30, 0)];
            let cap = i64::from(MAX_BODY_SPEED * FIXED_ONE);
            for (x, y, dash) in inputs {
                step(&mut bodies[0], Input { x, y, dash }, INPUT_DT_MICROS);
                step(&mut bodies[1], Input { x: y, y: x, dash: !dash }, INPUT_DT_MICROS);
                collide(&mut bodies, |_, _| {});
                prop_assert!(bodies.iter().all(|b| b.vel.length_squared() <= cap * cap), "{:?}", bodies);
            }
        }

        /// What the client replays is what the server stepped: a body that
        /// crossed the wire (as in `Frame::you`) steps bit for bit as the
        /// server's own, for any state and input.
        #[test]
        fn a_body_that_crossed_the_wire_steps_exactly_as_the_original(x in any::<i8>(), y in any::<i8>(), dash in any::<bool>(), px in -409_600i32..409_600, vx in -80_000i32..80_000, cd in any::<u8>()) {
            let start = Body { pos: Vec2q::new(px, px / 2), vel: Vec2q::new(vx, -vx), dash_cooldown: cd };
            let wire = bincode::serde::encode_to_vec(start, crate::codec::CONFIG).expect("a body encodes");
            let (received, _): (Body, usize) = bincode::serde::decode_from_slice(&wire, crate::codec::CONFIG).expect("and decodes");
            let (mut server, mut client) = (start, received);
            for _ in 0..3 {
                step(&mut server, Input { x, y, dash }, INPUT_DT_MICROS);
                step(&mut client, Input { x, y, dash }, INPUT_DT_MICROS);
            }
            prop_assert_eq!(server, client);
        }
    }
}
