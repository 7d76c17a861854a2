//! Client-side netcode with no engine inside: prediction with
//! reconciliation, interpolation of remote players, and the clock and
//! round-trip estimates they need. The browser app and the bots both use it,
//! and it is tested here natively with simulated latency and jitter.
//!
//! Times are local seconds as `f64` (the browser's `performance.now()` or a
//! bot's monotonic clock); ticks are the server's.

use std::collections::VecDeque;

use crate::protocol::{Frame, NearBody, PlayerId, Seen, View, apply_view};
use crate::sim::{self, Body, FIXED_ONE, INPUT_DT_MICROS, Input};

/// Unacked inputs kept for replay; older ones are dropped (the server is
/// more than four seconds behind, and the state will snap anyway).
pub const MAX_PENDING_INPUTS: usize = 256;

// ---------------------------------------------------------------------------
// Prediction and reconciliation
// ---------------------------------------------------------------------------

/// Your own player, simulated ahead of the server with the same `sim`, and
/// with it the players near you (the frame's [`NearBody`]s, each holding
/// its last input), so that a bump between you and them happens in your
/// timeline rather than a round trip late.
///
/// Every prediction is re-run from the newest frame: your body and theirs
/// as the server had them, then your unacked inputs grouped as the server
/// applies them (`steps_per_tick` per tick, each player's steps, then the
/// bumps), the neighbours stepping alongside with their input held (a dash
/// is not repeated). With nobody near this is exactly your inputs replayed.
#[derive(Debug, Clone, Default)]
pub struct Prediction {
    /// The predicted body: server state plus every unacked input.
    body: Body,
    /// Inputs sent and not yet acked, oldest first.
    pending: VecDeque<(u32, Input)>,
    last_seq: u32,
    /// Whether a server state has been seen yet (before it, nothing to predict from).
    anchored: bool,
    pub corrections: CorrectionStats,
    /// The newest frame's state to predict from: you, and who stood near.
    anchor: Body,
    near: Vec<NearBody>,
    /// Your id and whether you collide (standing, not protected).
    you: PlayerId,
    solid: bool,
    /// The neighbours as predicted alongside `body`.
    predicted_near: Vec<NearBody>,
    /// Input steps the server applies per tick before it bumps (0: not
    /// told, taken as at 30 Hz).
    steps_per_tick: usize,
}

/// How far reconciliation moved the predicted player: zero when the
/// prediction was exact.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CorrectionStats {
    /// Frames reconciled.
    pub frames: u64,
    /// Of those, frames where the prediction had to move.
    pub corrected: u64,
    /// Sum and maximum of the distance moved, in world units.
    pub total_units: f64,
    pub max_units: f64,
    /// Frames reconciled with nobody near (no near bodies in the frame),
    /// and of those the ones that moved. With nobody within the near
    /// radius nothing pushes the player between frames, so such a
    /// correction is a push from outside it (a body faster than the near
    /// radius allows, a server-side change) or the simulation or input
    /// stream gone wrong (an input the server never applied), never a
    /// neighbour predicted a little wrong.
    pub alone_frames: u64,
    pub alone_corrected: u64,
}

impl CorrectionStats {
    pub fn mean_units(&self) -> f64 {
        if self.corrected == 0 { 0.0 } else { self.total_units / self.corrected as f64 }
    }

    /// Share of reconciled frames that needed a correction.
    pub fn rate(&self) -> f64 {
        if self.frames == 0 { 0.0 } else { self.corrected as f64 / self.frames as f64 }
    }

    /// Adds another client's stats to these (for totals over many bots).
    pub fn merge(&mut self, other: &CorrectionStats) {
        self.frames += other.frames;
        self.corrected += other.corrected;
        self.total_units += other.total_units;
        self.max_units = self.max_units.max(other.max_units);
        self.alone_frames += other.alone_frames;
        self.alone_corrected += other.alone_corrected;
    }
}

impl Prediction {
    /// The seq of the newest input recorded (0: none yet).
    pub fn last_seq(&self) -> u32 {
        self.last_seq
    }

    /// Records and applies one local input; returns the seq to send it with.
    pub fn apply_input(&mut self, input: Input) -> u32 {
        self.last_seq = self.last_seq.wrapping_add(1);
        if self.pending.len() == MAX_PENDING_INPUTS {
            self.pending.pop_front();
        }
        self.pending.push_back((self.last_seq, input));
        if self.anchored {
            if self.near.is_empty() {
                // Nobody near: one more step is the whole re-run.
                sim::step(&mut self.body, input, INPUT_DT_MICROS);
            } else {
                self.resimulate();
            }
        }
        self.last_seq
    }

    /// Resets to the server's state for this player (`you`, `solid`: it
    /// stands and can be bumped), drops what it acked, and replays the rest
    /// with the players `near` it. Returns how far the prediction moved.
    pub fn reconcile(&mut self, server: Body, ack_seq: u32) -> f64 {
        self.reconcile_near(server, ack_seq, (0, false), &[])
    }

    /// [`Prediction::reconcile`] with the neighbours of this frame.
    pub fn reconcile_near(
        &mut self,
        server: Body,
        ack_seq: u32,
        (you, solid): (PlayerId, bool),
        near: &[NearBody],
    ) -> f64 {
        while self.pending.front().is_some_and(|&(seq, _)| seq <= ack_seq) {
            self.pending.pop_front();
        }
        let before = self.body;
        self.anchor = server;
        self.near.clear();
        self.near.extend(
            near.iter()
                .filter(|n| n.id != you)
                .map(|n| NearBody { input: Input { dash: false, ..n.input }, ..*n }),
        );
        (self.you, self.solid) = (you, solid);
        self.resimulate();
        let body = self.body;
        if !self.anchored {
            self.anchored = true;
            return 0.0;
        }
        let moved = before.pos.distance(body.pos) as f64 / f64::from(FIXED_ONE);
        let alone = self.near.is_empty();
        self.corrections.frames += 1;
        self.corrections.alone_frames += u64::from(alone);
        if moved > 0.0 {
            self.corrections.corrected += 1;
            self.corrections.alone_corrected += u64::from(alone);
            self.corrections.total_units += moved;
            self.corrections.max_units = self.corrections.max_units.max(moved);
        }
        moved
    }

    pub fn body(&self) -> Body {
        self.body
    }

    /// The players near you as predicted alongside you (empty: nobody near).
    pub fn predicted_near(&self) -> &[NearBody] {
        &self.predicted_near
    }

    /// The server's tick rate, from its `Welcome`: how many input steps it
    /// applies per tick before it bumps.
    pub fn set_tick_rate(&mut self, tick_rate: u16) {
        self.steps_per_tick = (sim::INPUT_RATE_HZ / u32::from(tick_rate.max(1))).max(1) as usize;
    }

    /// Re-runs the prediction from the anchor: see [`Prediction`].
    fn resimulate(&mut self) {
        let per_tick = if self.steps_per_tick == 0 { 2 } else { self.steps_per_tick };
        let mut me = self.anchor;
        let mut near = std::mem::take(&mut self.predicted_near);
        near.clear();
        near.extend_from_slice(&self.near);
        let inputs = self.pending.iter().map(|&(_, input)| input);
        let mut steps = 0;
        for input in inputs {
            sim::step(&mut me, input, INPUT_DT_MICROS);
            steps += 1;
            if steps == per_tick && !near.is_empty() {
                step_near(&mut near, steps);
                if self.solid {
                    bump_in_id_order(self.you, &mut me, &mut near);
                }
                steps = 0;
            }
        }
        // Inputs past the last whole tick: the neighbours take as many
        // steps, to be drawn as far along as you (the bumps come with the
        // tick).
        step_near(&mut near, steps);
        self.body = me;
        self.predicted_near = near;
    }

    /// Forgets the predicted body: the server moved the player in a way no
    /// input explains (it fell, respawned, a round began). The next
    /// `reconcile` anchors afresh, which is not counted as a correction.
    pub fn reanchor(&mut self) {
        self.anchored = false;
        self.near.clear();
        self.predicted_near.clear();
    }

    pub fn is_anchored(&self) -> bool {
        self.anchored
    }

    pub fn pending_inputs(&self) -> usize {
        self.pending.len()
    }
}

/// Moves each neighbour `steps` input steps on, its input held.
fn step_near(near: &mut [NearBody], steps: usize) {
    for other in near {
        for _ in 0..steps {
            sim::step(&mut other.body, other.input, INPUT_DT_MICROS);
        }
    }
}

/// Bumps you and your neighbours as the server does: every standing body
/// by id, through [`sim::collide`].
fn bump_in_id_order(you: PlayerId, me: &mut Body, near: &mut [NearBody]) {
    let at = near.partition_point(|n| n.id < you);
    let mut bodies: Vec<Body> = Vec::with_capacity(near.len() + 1);
    bodies.extend(near[..at].iter().map(|n| n.body));
    bodies.push(*me);
    bodies.extend(near[at..].iter().map(|n| n.body));
    sim::collide(&mut bodies, |_, _| {});
    *me = bodies[at];
    for (i, other) in near.iter_mut().enumerate() {
        other.body = bodies[if i < at { i } else { i + 1 }];
    }
}

// ---------------------------------------------------------------------------
// Server clock and interpolation delay
// ---------------------------------------------------------------------------

/// Fewest frame intervals remote players are drawn behind the newest frame.
pub const MIN_INTERP_DELAY_TICKS: f64 = 2.0;
/// Most frame intervals of delay, however bad the jitter.
pub const MAX_INTERP_DELAY_TICKS: f64 = 12.0;

/// Estimates which server tick it is now, from when frames arrive, and how
/// much their arrival jitters.
#[derive(Debug, Clone)]
pub struct ServerClock {
    tick_rate: f64,
    /// `tick - local_secs * tick_rate` for the least-delayed frames seen.
    offset: Option<f64>,
    /// How late the recent frames were versus that estimate, in ticks.
    lateness: VecDeque<f64>,
    /// The 95th percentile of `lateness`: the jitter to cover.
    jitter_ticks: f64,
    /// The same values as `lateness`, kept in order (`f64::total_cmp`),
    /// so the percentile is read, not searched for, on every frame.
    sorted: Vec<f64>,
}

/// Frames whose lateness the jitter estimate looks at (about 4 s at 30 Hz).
const JITTER_WINDOW: usize = 128;

impl ServerClock {
    pub fn new(tick_rate: u16) -> Self {
        ServerClock {
            tick_rate: f64::from(tick_rate.max(1)),
            offset: None,
            lateness: VecDeque::with_capacity(JITTER_WINDOW),
            jitter_ticks: 0.0,
            sorted: Vec::with_capacity(JITTER_WINDOW),
        }
    }

    pub fn on_frame(&mut self, tick: u32, local_secs: f64) {
        let sample = f64::from(tick) - local_secs * self.tick_rate;
        let offset = match self.offset {
            None => sample,
            Some(offset) => {
                // A frame later than expected is delayed: that is jitter.
                let late = (offset - sample).max(0.0);
                if self.lateness.len() == JITTER_WINDOW
                    && let Some(oldest) = self.lateness.pop_front()
                {
                    // Its very bits are in the sorted copy: found exactly.
                    if let Ok(at) = self.sorted.binary_search_by(|v| v.total_cmp(&oldest)) {
                        self.sorted.remove(at);
                    }
                }
                self.lateness.push_back(late);
                let at = self.sorted.partition_point(|v| v.total_cmp(&late).is_lt());
                self.sorted.insert(at, late);
                self.jitter_ticks = self.lateness_p95();
                // Snap forward to the fastest arrival; drift back slowly so a
                // clock that runs fast does not stay ahead for ever.
                if sample > offset { sample } else { offset - 0.002 }
            }
        };
        self.offset = Some(offset);
    }

    /// The 95th percentile of the lateness window: the value at its place
    /// in the sorted copy (a window of 128 moves about 1 KB to keep it in
    /// order, cheaper than selecting it afresh on every frame).
    fn lateness_p95(&self) -> f64 {
        let at = (self.sorted.len() * 95 / 100).min(self.sorted.len().saturating_sub(1));
        self.sorted.get(at).copied().unwrap_or(0.0)
    }

    /// The server tick estimated for `local_secs`, if a frame has arrived.
    pub fn tick_at(&self, local_secs: f64) -> Option<f64> {
        self.offset.map(|offset| offset + local_secs * self.tick_rate)
    }

    pub fn jitter_ticks(&self) -> f64 {
        self.jitter_ticks
    }

    /// How far behind the estimated tick to draw remote players: two frame
    /// intervals, plus the 95th percentile of how late frames arrive (a
    /// stall, rarer than that, is the playout's to absorb).
    pub fn interp_delay_ticks(&self) -> f64 {
        (MIN_INTERP_DELAY_TICKS + self.jitter_ticks).clamp(MIN_INTERP_DELAY_TICKS, MAX_INTERP_DELAY_TICKS)
    }

    /// The tick to draw remote players at.
    pub fn render_tick(&self, local_secs: f64) -> Option<f64> {
        self.tick_at(local_secs).map(|tick| tick - self.interp_delay_ticks())
    }

    pub fn tick_rate(&self) -> f64 {
        self.tick_rate
    }
}

// ---------------------------------------------------------------------------
// Playout: where remote players are drawn
// ---------------------------------------------------------------------------

/// Frames in hand (ticks past the drawn one) below which the playout
/// slows, reaching a standstill at the newest frame.
pub const PLAYOUT_LOW_BUFFER_TICKS: f64 = 2.0;
/// Behind the target by more than this (ticks), the playout jumps to it.
const PLAYOUT_SNAP_TICKS: f64 = 15.0;

/// The server tick remote players are drawn at. It follows the clock's
/// target (the newest tick minus the interpolation delay) at the server's
/// pace, but slows down as the frames it has run low (a TCP stall: nothing
/// arrives for a while, then everything at once) and catches up gently
/// afterwards (at most 25 % fast), so a stall shows as players easing to a
/// halt and moving on, never a jump, and the delay needs no room for stalls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Playout {
    at: Option<f64>,
    last_secs: f64,
}

impl Playout {
    /// Moves the playout to local time `now`, given the newest frame's
    /// tick; returns the tick to draw at.
    pub fn advance(&mut self, clock: &ServerClock, newest: Option<u32>, now: f64) -> Option<f64> {
        let target = clock.render_tick(now)?;
        let newest = f64::from(newest?);
        let at = match self.at {
            Some(at) if (target - at).abs() <= PLAYOUT_SNAP_TICKS => {
                let elapsed = (now - self.last_secs).max(0.0) * clock.tick_rate();
                // Drift toward the target: up to 25 % faster, 10 % slower.
                let mut rate = 1.0 + ((target - at) * 0.1).clamp(-0.1, 0.25);
                // Nearly out of frames: slow down, easing to a stop at the
                // newest one (the players ease to a halt, then move on).
                let buffer = newest - at;
                if buffer < PLAYOUT_LOW_BUFFER_TICKS {
                    rate = rate.min((buffer / PLAYOUT_LOW_BUFFER_TICKS).max(0.0));
                }
                at + elapsed * rate
            }
            _ => target,
        };
        self.at = Some(at);
        self.last_secs = now;
        Some(at)
    }

    /// The tick drawn at the last `advance`.
    pub fn at(&self) -> Option<f64> {
        self.at
    }
}

// ---------------------------------------------------------------------------
// Views of the others
// ---------------------------------------------------------------------------

/// Views kept by frame tick: a frame builds on one of the last few.
pub const VIEWS_KEPT: usize = 8;

/// The views of the others after each of the last frames, newest last:
/// what a frame's `baseline` refers to.
#[derive(Debug, Clone, Default)]
pub struct ViewHistory {
    views: VecDeque<(u32, View)>,
}

impl ViewHistory {
    /// Applies `frame` to the view it builds on and keeps the result.
    /// `None`: that view is not kept, or the frame does not fit it; the
    /// client should ask for a full view (`ClientMsg::Resync`).
    pub fn apply(&mut self, frame: &Frame) -> Option<&View> {
        let view = match (frame.baseline_age, frame.baseline_tick()) {
            (0, _) => apply_view(&[], frame),
            (_, Some(tick)) => apply_view(&self.views.iter().find(|(t, _)| *t == tick)?.1, frame),
            (_, None) => None,
        }?;
        if self.views.len() == VIEWS_KEPT {
            self.views.pop_front();
        }
        self.views.push_back((frame.tick, view));
        self.views.back().map(|(_, view)| view)
    }

    /// The view after the newest frame, by id.
    pub fn latest(&self) -> &[(PlayerId, Seen)] {
        self.views.back().map_or(&[], |(_, view)| view.as_slice())
    }
}

// ---------------------------------------------------------------------------
// Interpolation
// ---------------------------------------------------------------------------

/// Samples kept per player (half a second or more at 30 Hz).
const TRACK_SAMPLES: usize = 16;
/// Longest sample interval the delay adapts to, in ticks.
const MAX_TRACK_INTERVAL: f64 = 12.0;

/// Where each other player was at the ticks its view changed, for drawing
/// it between two of them. Frames update only what changed (and, under the
/// server's byte budget, far players less often), so each player has its own
/// track, and a player updated every few ticks is drawn that much later so
/// that it still moves smoothly.
#[derive(Debug, Clone, Default)]
pub struct Interpolator {
    tracks: std::collections::BTreeMap<PlayerId, Track>,
}

#[derive(Debug, Clone, Default)]
struct Track {
    samples: VecDeque<(u32, (f32, f32))>,
}

impl Track {
    /// Ticks between this player's recent updates (quiet spells left out),
    /// rounded down to 1 when it is updated about every tick.
    fn interval(&self) -> f64 {
        let recent = self.samples.iter().rev().take(8).map(|(tick, _)| *tick);
        let (mut sum, mut count) = (0u32, 0u32);
        for (newer, older) in recent.clone().zip(recent.skip(1)) {
            let gap = newer - older;
            if f64::from(gap) <= MAX_TRACK_INTERVAL {
                sum += gap;
                count += 1;
            }
        }
        if count == 0 {
            return 1.0;
        }
        let mean = f64::from(sum) / f64::from(count);
        if mean < 1.5 { 1.0 } else { mean }
    }
}

impl Interpolator {
    /// Records that player `id` was at `pos` (world units) at `tick`.
    pub fn push(&mut self, id: PlayerId, tick: u32, pos: (f32, f32)) {
        let track = self.tracks.entry(id).or_default();
        if let Some(&(last_tick, last_pos)) = track.samples.back() {
            if last_tick >= tick {
                // Late (a reordering link): slot it in where it belongs.
                if let Err(at) = track.samples.binary_search_by_key(&tick, |(t, _)| *t)
                    && at > 0
                {
                    track.samples.insert(at, (tick, pos));
                }
                return;
            }
            if f64::from(tick - last_tick) > (3.0 * track.interval()).max(4.0) {
                // It stood still until just now: hold, then move.
                track.samples.push_back((tick - 1, last_pos));
            }
        }
        while track.samples.len() >= TRACK_SAMPLES {
            track.samples.pop_front();
        }
        track.samples.push_back((tick, pos));
    }

    /// Forgets a player that left the view.
    pub fn remove(&mut self, id: PlayerId) {
        self.tracks.remove(&id);
    }

    pub fn clear(&mut self) {
        self.tracks.clear();
    }

    /// How many ticks later than `render_tick` player `id` is drawn (its
    /// updates' spacing beyond one tick).
    pub fn extra_delay(&self, id: PlayerId) -> f64 {
        self.tracks.get(&id).map_or(0.0, |t| t.interval() - 1.0)
    }

    /// Positions (world units) of every tracked player at `render_tick`
    /// (later for sparsely updated ones), between the two samples around
    /// it. Before the oldest sample, or past the newest, a player holds
    /// there: never extrapolated.
    pub fn sample(&self, render_tick: f64) -> Vec<(PlayerId, (f32, f32))> {
        self.tracks
            .iter()
            .filter_map(|(&id, track)| {
                let at = render_tick - (track.interval() - 1.0);
                let samples = &track.samples;
                let newer = samples.iter().position(|(tick, _)| f64::from(*tick) >= at);
                let pos = match newer {
                    None => samples.back()?.1,
                    Some(0) => samples[0].1,
                    Some(i) => {
                        let ((t0, p0), (t1, p1)) = (samples[i - 1], samples[i]);
                        let t = ((at - f64::from(t0)) / f64::from(t1 - t0)).clamp(0.0, 1.0) as f32;
                        (p0.0 + (p1.0 - p0.0) * t, p0.1 + (p1.1 - p0.1) * t)
                    }
                };
                Some((id, pos))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Smoothing corrections
// ---------------------------------------------------------------------------

/// How long a visible correction takes to fade (the error decays with this
/// time constant instead of snapping).
pub const SMOOTHING_SECS: f64 = 0.1;
/// A correction bigger than this (world units) is a teleport: snap.
pub const SNAP_UNITS: f32 = 120.0;

/// An offset drawn on top of your predicted player after a correction,
/// decaying to nothing, so that reconciliation never makes it jump.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smoother {
    offset: (f32, f32),
    since: f64,
}

impl Smoother {
    /// The prediction moved by `moved` (new minus old, world units) at
    /// `now`: keep drawing the player where it was, and fade from there.
    pub fn correct(&mut self, moved: (f32, f32), now: f64) {
        let current = self.offset(now);
        let offset = (current.0 - moved.0, current.1 - moved.1);
        let size = (offset.0 * offset.0 + offset.1 * offset.1).sqrt();
        self.offset = if size > SNAP_UNITS { (0.0, 0.0) } else { offset };
        self.since = now;
    }

    /// What to add to the predicted position when drawing at `now`.
    pub fn offset(&self, now: f64) -> (f32, f32) {
        let fade = (-(now - self.since).max(0.0) / SMOOTHING_SECS).exp() as f32;
        (self.offset.0 * fade, self.offset.1 * fade)
    }

    pub fn reset(&mut self) {
        self.offset = (0.0, 0.0);
    }
}

// ---------------------------------------------------------------------------
// Round-trip time
// ---------------------------------------------------------------------------

/// Round-trip estimate from ping/pong pairs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RttEstimate {
    /// Exponentially smoothed RTT, ms.
    smoothed: Option<f64>,
    pub last_ms: f64,
}

impl RttEstimate {
    pub fn on_pong(&mut self, sent_secs: f64, now_secs: f64) {
        let rtt = ((now_secs - sent_secs) * 1000.0).max(0.0);
        self.last_ms = rtt;
        self.smoothed = Some(match self.smoothed {
            None => rtt,
            Some(s) => s + (rtt - s) * 0.2,
        });
    }

    pub fn smoothed_ms(&self) -> Option<f64> {
        self.smoothed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Vec2q, bump};

    /// A tiny deterministic RNG for delays.
    struct Lcg(u64);
    impl Lcg {
        fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn start() -> Body {
        Body::at(Vec2q::from_units(400, 400))
    }

    /// Client and server stepped with manual time: the client sends an input
    /// every 1/60 s that arrives `latency` later; the server applies inputs at
    /// 30 Hz as the room does and sends frames back with the same latency.
    fn run_with_latency(latency_inputs: usize, push_at: Option<usize>) -> Prediction {
        let mut prediction = Prediction::default();
        prediction.reconcile(start(), 0);
        let mut server = start();
        let mut in_flight: VecDeque<(usize, u32, Input)> = VecDeque::new();
        let mut frames: VecDeque<(usize, Body, u32)> = VecDeque::new();
        let mut acked = 0;
        for step in 0..600 {
            let input =
                Input { x: if (step / 90) % 2 == 0 { 127 } else { -90 }, y: 60, dash: step % 100 == 7 };
            let seq = prediction.apply_input(input);
            in_flight.push_back((step + latency_inputs, seq, input));
            while in_flight.front().is_some_and(|(due, _, _)| *due <= step) {
                let (_, seq, input) = in_flight.pop_front().expect("checked");
                sim::step(&mut server, input, INPUT_DT_MICROS);
                acked = seq;
            }
            if push_at == Some(step) {
                // Someone bumps into us on the server: the client cannot know.
                let mut other = Body::at(server.pos);
                bump(&mut server, &mut other);
            }
            if step % 2 == 1 {
                frames.push_back((step + latency_inputs, server, acked));
            }
            while frames.front().is_some_and(|(due, _, _)| *due <= step) {
                let (_, body, ack) = frames.pop_front().expect("checked");
                prediction.reconcile(body, ack);
            }
        }
        prediction
    }

    #[test]
    fn prediction_matches_the_server_exactly_under_latency() {
        for latency in [0, 3, 6, 15] {
            let prediction = run_with_latency(latency, None);
            let stats = prediction.corrections;
            assert!(stats.frames > 250, "should reconcile every frame ({latency} steps latency)");
            assert_eq!(
                stats.corrected, 0,
                "same sim, same inputs: no corrections at {latency} steps latency"
            );
            // Unacked: a round trip (two latencies) plus up to one frame interval.
            assert!(prediction.pending_inputs() <= 2 * latency + 2, "acked inputs should be dropped");
        }
    }

    /// A scripted bump at `latency_inputs` steps each way (3: 100 ms round
    /// trip): you stand still, player 1 runs into you from 150 units. The
    /// server ticks at 30 Hz (two input steps, then bumps) and sends you and,
    /// with `near`, the players near you. Returns how reconciliation moved
    /// you.
    fn bump_at_latency(latency_inputs: usize, near: bool) -> CorrectionStats {
        let runner = Input::stick(-127, 0);
        let (mut me, mut other) = (Body::at(Vec2q::from_units(0, 0)), Body::at(Vec2q::from_units(150, 0)));
        let neighbours =
            |other: Body| if near { vec![NearBody { id: 1, body: other, input: runner }] } else { vec![] };
        let mut prediction = Prediction::default();
        prediction.set_tick_rate(30);
        prediction.reconcile_near(me, 0, (2, true), &neighbours(other));
        let mut in_flight: VecDeque<(usize, u32, Input)> = VecDeque::new();
        let mut arrived: VecDeque<(u32, Input)> = VecDeque::new();
        let mut frames: VecDeque<(usize, Body, u32, Body)> = VecDeque::new();
        let mut acked = 0;
        for step in 0..120 {
            let seq = prediction.apply_input(Input::default());
            in_flight.push_back((step + latency_inputs, seq, Input::default()));
            while in_flight.front().is_some_and(|(due, _, _)| *due <= step) {
                let (_, seq, input) = in_flight.pop_front().expect("checked");
                arrived.push_back((seq, input));
            }
            if step % 2 == 1 {
                // A server tick: your arrived inputs (two at most), the
                // runner's two steps, then the bumps, by id.
                for (seq, input) in arrived.drain(..arrived.len().min(2)) {
                    sim::step(&mut me, input, INPUT_DT_MICROS);
                    acked = seq;
                }
                for _ in 0..2 {
                    sim::step(&mut other, runner, INPUT_DT_MICROS);
                }
                let mut bodies = [other, me];
                sim::collide(&mut bodies, |_, _| {});
                [other, me] = bodies;
                frames.push_back((step + latency_inputs, me, acked, other));
            }
            while frames.front().is_some_and(|(due, ..)| *due <= step) {
                let (_, body, ack, other) = frames.pop_front().expect("checked");
                prediction.reconcile_near(body, ack, (2, true), &neighbours(other));
            }
        }
        prediction.corrections
    }

    #[test]
    fn predicting_the_neighbours_feels_a_bump_in_time() {
        for latency in [3, 6] {
            let alone = bump_at_latency(latency, false);
            let together = bump_at_latency(latency, true);
            assert!(alone.total_units > 20.0, "predicting only yourself, the bump comes late: {alone:?}");
            assert!(
                together.total_units * 4.0 < alone.total_units,
                "with the runner predicted the bump happens in your timeline ({latency} steps each way): \
                 {together:?} against {alone:?}"
            );
        }
        assert_eq!(bump_at_latency(0, true).corrected, 0, "with no latency the prediction is the server's");
    }

    #[test]
    fn a_server_side_push_shows_up_as_one_correction() {
        let prediction = run_with_latency(6, Some(300));
        let stats = prediction.corrections;
        assert_eq!(stats.corrected, 1, "one unpredictable push should cause one correction: {stats:?}");
        assert_eq!(
            (stats.alone_frames, stats.alone_corrected),
            (stats.frames, 1),
            "nobody was near: every frame was reconciled alone, the push among them"
        );
        assert!(stats.max_units > 5.0, "the push moves us by up to a player diameter: {stats:?}");
    }

    #[test]
    fn inputs_before_the_first_frame_are_replayed_from_it() {
        let mut prediction = Prediction::default();
        for _ in 0..3 {
            prediction.apply_input(Input::stick(127, 0));
        }
        assert_eq!(prediction.reconcile(start(), 0), 0.0, "the first frame anchors; it is not a correction");
        let mut expected = start();
        for _ in 0..3 {
            sim::step(&mut expected, Input::stick(127, 0), INPUT_DT_MICROS);
        }
        assert_eq!(prediction.body(), expected, "unacked inputs should be replayed on the first state");
    }

    /// Frames of one player moving right at a constant 3 units per tick,
    /// delivered with latency and jitter; the client draws at 60 fps.
    #[test]
    fn the_jitter_percentile_kept_in_order_is_the_one_selected_afresh() {
        let mut clock = ServerClock::new(30);
        let mut rng = 0x2545_F491_4F6C_DD1D_u64;
        for tick in 0..2_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // On time, a little late, or (one in eight) very late; ties too.
            let late = match rng % 8 {
                0 => (rng >> 8) as f64 % 500.0 / 1000.0,
                1 => 0.05,
                _ => (rng >> 8) as f64 % 20.0 / 1000.0,
            };
            clock.on_frame(tick, f64::from(tick) / 30.0 + late);
            let mut window: Vec<f64> = clock.lateness.iter().copied().collect();
            if window.is_empty() {
                continue;
            }
            let at = (window.len() * 95 / 100).min(window.len() - 1);
            let selected = *window.select_nth_unstable_by(at, f64::total_cmp).1;
            assert_eq!(clock.jitter_ticks().to_bits(), selected.to_bits(), "tick {tick}");
            assert_eq!(clock.sorted.len(), clock.lateness.len());
        }
    }

    fn interpolate_with_jitter(jitter_secs: f64) -> (Vec<f32>, ServerClock) {
        let tick_rate = 30;
        let mut rng = Lcg(7);
        let mut arrivals: Vec<(f64, u32)> = (1..=300u32)
            .map(|tick| (f64::from(tick) / 30.0 + 0.05 + rng.next_f64() * jitter_secs, tick))
            .collect();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut clock = ServerClock::new(tick_rate);
        let mut interp = Interpolator::default();
        let mut drawn = Vec::new();
        let mut next = 0;
        for frame in 0..560 {
            let now = 0.2 + f64::from(frame) / 60.0;
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (at, tick) = arrivals[next];
                clock.on_frame(tick, at);
                interp.push(9, tick, (3.0 * tick as f32, 10.0));
                next += 1;
            }
            if let Some(render) = clock.render_tick(now) {
                let sample = interp.sample(render);
                drawn.push(
                    sample.iter().find(|(id, _)| *id == 9).map(|(_, p)| p.0).expect("player 9 present"),
                );
            }
        }
        (drawn, clock)
    }

    #[test]
    fn interpolation_is_smooth_and_never_goes_back_under_jitter() {
        for jitter in [0.0, 0.02, 0.06] {
            let (xs, _) = interpolate_with_jitter(jitter);
            let steps: Vec<f32> = xs.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(steps.iter().all(|d| *d >= -1e-3), "should never move backwards at jitter {jitter}");
            // True speed is 1.5 units per 60 Hz frame; allow catch-up, not teleports.
            let settled = &steps[60..];
            assert!(settled.iter().all(|d| *d <= 6.0), "should not jump at jitter {jitter}: {settled:?}");
            let holds = settled.iter().filter(|d| **d == 0.0).count();
            assert!(
                holds <= settled.len() / 10,
                "should rarely run out of frames at jitter {jitter}: {holds} holds"
            );
        }
    }

    #[test]
    fn interpolation_delay_grows_with_jitter() {
        let (_, calm) = interpolate_with_jitter(0.0);
        let (_, rough) = interpolate_with_jitter(0.06);
        assert!(
            (calm.interp_delay_ticks() - MIN_INTERP_DELAY_TICKS).abs() < 0.5,
            "calm: about two intervals"
        );
        assert!(rough.interp_delay_ticks() > calm.interp_delay_ticks() + 1.0, "jitter should add delay");
        assert!(rough.interp_delay_ticks() <= MAX_INTERP_DELAY_TICKS);
    }

    #[test]
    fn interpolator_holds_past_the_ends_and_lerps_between() {
        let mut interp = Interpolator::default();
        interp.push(1, 10, (0.0, 0.0));
        interp.push(1, 11, (50.0, 0.0));
        interp.push(1, 11, (999.0, 0.0));
        assert_eq!(interp.sample(10.5), vec![(1, (25.0, 0.0))], "halfway, ignoring a repeated tick");
        assert_eq!(interp.sample(5.0), vec![(1, (0.0, 0.0))], "before the oldest: hold");
        assert_eq!(interp.sample(20.0), vec![(1, (50.0, 0.0))], "past the newest: hold, no extrapolation");
        interp.push(1, 13, (150.0, 0.0));
        interp.push(1, 12, (100.0, 0.0));
        assert_eq!(interp.sample(12.0), vec![(1, (100.0, 0.0))], "a late sample slots in");
        interp.remove(1);
        assert!(interp.sample(10.5).is_empty(), "a player that left the view is not drawn");
    }

    #[test]
    fn a_player_updated_every_third_tick_is_drawn_later_and_still_moves_every_frame() {
        let mut interp = Interpolator::default();
        // Moving right 3 units a tick, sampled every third tick.
        for tick in (3..=90u32).step_by(3) {
            interp.push(4, tick, (3.0 * tick as f32, 0.0));
        }
        assert!(
            (interp.extra_delay(4) - 2.0).abs() < 0.2,
            "about two ticks later: {}",
            interp.extra_delay(4)
        );
        let xs: Vec<f32> = (0..60).map(|i| interp.sample(70.0 + f64::from(i) / 4.0)[0].1.0).collect();
        assert!(xs.windows(2).all(|w| w[1] > w[0]), "moves on every frame between sparse updates: {xs:?}");
    }

    #[test]
    fn a_player_that_stood_still_starts_moving_without_a_slow_glide() {
        let mut interp = Interpolator::default();
        interp.push(2, 1, (0.0, 0.0));
        // Nothing for 60 ticks (it stood still), then it moves.
        interp.push(2, 61, (3.0, 0.0));
        interp.push(2, 62, (6.0, 0.0));
        assert_eq!(interp.sample(30.0), vec![(2, (0.0, 0.0))], "still in the middle of the quiet spell");
        assert_eq!(interp.sample(60.0), vec![(2, (0.0, 0.0))], "still until just before it moved");
    }

    /// Frames at 30 Hz with 60 ms of latency, and a 200 ms stall every
    /// 5 s (nothing, then everything at once); drawn at 60 fps. Returns the
    /// share of drawn frames past the newest frame, and the smallest step.
    fn playout_through_stalls(use_playout: bool) -> (f64, f64) {
        let mut clock = ServerClock::new(30);
        let mut playout = Playout::default();
        let arrival = |tick: u32| {
            let sent = f64::from(tick) / 30.0;
            let stall_start = (sent / 5.0).floor() * 5.0 + 2.0;
            let held = sent >= stall_start && sent < stall_start + 0.2;
            (if held { stall_start + 0.2 } else { sent }) + 0.06
        };
        let (mut newest, mut next, mut underruns, mut renders, mut last, mut min_step) =
            (None, 1u32, 0, 0, None::<f64>, f64::MAX);
        for frame in 0..1200 {
            let now = f64::from(frame) / 60.0 + 0.1;
            while arrival(next) <= now {
                clock.on_frame(next, arrival(next));
                newest = Some(next);
                next += 1;
            }
            let at = if use_playout { playout.advance(&clock, newest, now) } else { clock.render_tick(now) };
            if let (Some(at), Some(newest)) = (at, newest) {
                renders += 1;
                if at > f64::from(newest) {
                    underruns += 1;
                }
                if let Some(last) = last {
                    min_step = min_step.min(at - last);
                }
                last = Some(at);
            }
        }
        (f64::from(underruns) / f64::from(renders), min_step)
    }

    #[test]
    fn the_playout_slows_through_a_stall_instead_of_running_out() {
        let (plain, _) = playout_through_stalls(false);
        let (slowed, min_step) = playout_through_stalls(true);
        assert!(plain > 0.02, "a fixed delay runs out in every stall: {plain}");
        assert!(slowed <= 0.01, "slowing down keeps underruns at or under 1 %: {slowed}");
        assert!(min_step >= 0.0, "never backwards: {min_step}");
    }

    #[test]
    fn a_correction_fades_over_about_a_hundred_milliseconds() {
        let mut smoother = Smoother::default();
        smoother.correct((10.0, 0.0), 1.0);
        assert_eq!(smoother.offset(1.0), (-10.0, 0.0), "drawn where it was at first");
        let later = smoother.offset(1.0 + SMOOTHING_SECS).0;
        assert!(
            (later + 10.0 / std::f32::consts::E).abs() < 0.01,
            "a time constant later, 1/e left: {later}"
        );
        assert!(smoother.offset(1.5).0.abs() < 0.1, "gone within half a second");
        smoother.correct((500.0, 0.0), 2.0);
        assert_eq!(smoother.offset(2.0), (0.0, 0.0), "a teleport snaps");
    }

    #[test]
    fn correction_stats_merge_sums_and_keeps_the_max() {
        let stats = |frames, corrected, total_units, max_units, alone_frames, alone_corrected| {
            CorrectionStats { frames, corrected, total_units, max_units, alone_frames, alone_corrected }
        };
        let mut all = stats(10, 2, 6.0, 4.0, 8, 1);
        all.merge(&stats(30, 2, 2.0, 1.5, 0, 0));
        assert_eq!(all, stats(40, 4, 8.0, 4.0, 8, 1));
        assert_eq!(all.rate(), 0.1);
        assert_eq!(all.mean_units(), 2.0);
        assert_eq!(CorrectionStats::default().rate(), 0.0, "no frames should give a zero rate");
    }

    #[test]
    fn rtt_is_smoothed() {
        let mut rtt = RttEstimate::default();
        rtt.on_pong(1.0, 1.1);
        assert!((rtt.smoothed_ms().expect("one sample") - 100.0).abs() < 1e-6);
        rtt.on_pong(2.0, 2.2);
        let smoothed = rtt.smoothed_ms().expect("two samples");
        assert!(smoothed > 100.0 && smoothed < 200.0, "should move toward 200 ms, not jump: {smoothed}");
        assert!((rtt.last_ms - 200.0).abs() < 1e-6);
    }
}
