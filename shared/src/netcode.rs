//! Client-side netcode with no engine inside: prediction with
//! reconciliation, interpolation of remote players, and the clock and
//! round-trip estimates they need. The browser app and the bots both use it,
//! and it is tested here natively with simulated latency and jitter.
//!
//! Times are local seconds as `f64` (the browser's `performance.now()` or a
//! bot's monotonic clock); ticks are the server's.

use std::collections::VecDeque;

use crate::protocol::{PlayerId, PlayerState};
use crate::sim::{self, Body, FIXED_ONE, INPUT_DT_MICROS, Input};

/// Unacked inputs kept for replay; older ones are dropped (the server is
/// more than four seconds behind, and the state will snap anyway).
pub const MAX_PENDING_INPUTS: usize = 256;

// ---------------------------------------------------------------------------
// Prediction and reconciliation
// ---------------------------------------------------------------------------

/// Your own player, simulated ahead of the server with the same `sim::step`.
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
    }
}

impl Prediction {
    /// Records and applies one local input; returns the seq to send it with.
    pub fn apply_input(&mut self, input: Input) -> u32 {
        self.last_seq = self.last_seq.wrapping_add(1);
        if self.anchored {
            sim::step(&mut self.body, input, INPUT_DT_MICROS);
        }
        if self.pending.len() == MAX_PENDING_INPUTS {
            self.pending.pop_front();
        }
        self.pending.push_back((self.last_seq, input));
        self.last_seq
    }

    /// Resets to the server's state for this player, drops what it acked,
    /// and replays the rest. Returns how far the prediction moved.
    pub fn reconcile(&mut self, server: Body, ack_seq: u32) -> f64 {
        while self.pending.front().is_some_and(|&(seq, _)| seq <= ack_seq) {
            self.pending.pop_front();
        }
        let before = self.body;
        let mut body = server;
        for &(_, input) in &self.pending {
            sim::step(&mut body, input, INPUT_DT_MICROS);
        }
        self.body = body;
        if !self.anchored {
            self.anchored = true;
            return 0.0;
        }
        let moved = before.pos.distance(body.pos) as f64 / f64::from(FIXED_ONE);
        self.corrections.frames += 1;
        if moved > 0.0 {
            self.corrections.corrected += 1;
            self.corrections.total_units += moved;
            self.corrections.max_units = self.corrections.max_units.max(moved);
        }
        moved
    }

    pub fn body(&self) -> Body {
        self.body
    }

    /// Forgets the predicted body: the server moved the player in a way no
    /// input explains (it fell, respawned, a round began). The next
    /// `reconcile` anchors afresh, which is not counted as a correction.
    pub fn reanchor(&mut self) {
        self.anchored = false;
    }

    pub fn is_anchored(&self) -> bool {
        self.anchored
    }

    pub fn pending_inputs(&self) -> usize {
        self.pending.len()
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
    /// Smoothed lateness of frames versus that estimate, in ticks.
    jitter_ticks: f64,
}

impl ServerClock {
    pub fn new(tick_rate: u16) -> Self {
        ServerClock { tick_rate: f64::from(tick_rate.max(1)), offset: None, jitter_ticks: 0.0 }
    }

    pub fn on_frame(&mut self, tick: u32, local_secs: f64) {
        let sample = f64::from(tick) - local_secs * self.tick_rate;
        let offset = match self.offset {
            None => sample,
            Some(offset) => {
                // A frame later than expected is delayed: that is jitter.
                let late = (offset - sample).max(0.0);
                self.jitter_ticks += (late - self.jitter_ticks) * 0.1;
                // Snap forward to the fastest arrival; drift back slowly so a
                // clock that runs fast does not stay ahead for ever.
                if sample > offset { sample } else { offset - 0.002 }
            }
        };
        self.offset = Some(offset);
    }

    /// The server tick estimated for `local_secs`, if a frame has arrived.
    pub fn tick_at(&self, local_secs: f64) -> Option<f64> {
        self.offset.map(|offset| offset + local_secs * self.tick_rate)
    }

    pub fn jitter_ticks(&self) -> f64 {
        self.jitter_ticks
    }

    /// How far behind the estimated tick to draw remote players: about two
    /// frame intervals, plus enough to cover the measured jitter.
    pub fn interp_delay_ticks(&self) -> f64 {
        (MIN_INTERP_DELAY_TICKS + 3.0 * self.jitter_ticks)
            .clamp(MIN_INTERP_DELAY_TICKS, MAX_INTERP_DELAY_TICKS)
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
// Interpolation
// ---------------------------------------------------------------------------

/// Frames kept for interpolation (over a second at 30 Hz).
const INTERP_FRAMES: usize = 48;

/// Received frames, for drawing other players between two of them.
#[derive(Debug, Clone, Default)]
pub struct Interpolator {
    frames: VecDeque<(u32, Vec<PlayerState>)>,
}

impl Interpolator {
    pub fn push(&mut self, tick: u32, players: Vec<PlayerState>) {
        if self.frames.back().is_some_and(|(last, _)| *last >= tick) {
            return;
        }
        if self.frames.len() == INTERP_FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back((tick, players));
    }

    pub fn newest_tick(&self) -> Option<u32> {
        self.frames.back().map(|(tick, _)| *tick)
    }

    /// Positions (world units) of every player at `render_tick`, between the
    /// two frames around it. Before the oldest frame, or past the newest,
    /// positions hold at that frame: never extrapolated.
    pub fn sample(&self, render_tick: f64) -> Vec<(PlayerId, (f32, f32))> {
        let Some(newer_index) = self.frames.iter().position(|(tick, _)| f64::from(*tick) >= render_tick)
        else {
            return self.frames.back().map(|(_, players)| at_rest(players)).unwrap_or_default();
        };
        if newer_index == 0 {
            return at_rest(&self.frames[0].1);
        }
        let (older_tick, older) = &self.frames[newer_index - 1];
        let (newer_tick, newer) = &self.frames[newer_index];
        let span = f64::from(newer_tick - older_tick);
        let t = ((render_tick - f64::from(*older_tick)) / span).clamp(0.0, 1.0) as f32;
        newer
            .iter()
            .map(|player| {
                let to = player.body.pos.to_units();
                let from =
                    older.iter().find(|p| p.id == player.id).map(|p| p.body.pos.to_units()).unwrap_or(to);
                (player.id, (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t))
            })
            .collect()
    }
}

fn at_rest(players: &[PlayerState]) -> Vec<(PlayerId, (f32, f32))> {
    players.iter().map(|p| (p.id, p.body.pos.to_units())).collect()
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
    use crate::protocol::Life;
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

    #[test]
    fn a_server_side_push_shows_up_as_one_correction() {
        let prediction = run_with_latency(6, Some(300));
        let stats = prediction.corrections;
        assert_eq!(stats.corrected, 1, "one unpredictable push should cause one correction: {stats:?}");
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
                let body = Body::at(Vec2q::from_units(3 * tick as i32, 10));
                interp.push(tick, vec![PlayerState { id: 9, body, life: Life::Alive }]);
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
        let at = |x| vec![PlayerState { id: 1, body: Body::at(Vec2q::from_units(x, 0)), life: Life::Alive }];
        interp.push(10, at(0));
        interp.push(12, at(100));
        interp.push(11, at(999));
        assert_eq!(interp.sample(11.0), vec![(1, (50.0, 0.0))], "halfway, ignoring an out-of-order frame");
        assert_eq!(interp.sample(5.0), vec![(1, (0.0, 0.0))], "before the oldest: hold");
        assert_eq!(interp.sample(20.0), vec![(1, (100.0, 0.0))], "past the newest: hold, no extrapolation");
    }

    #[test]
    fn correction_stats_merge_sums_and_keeps_the_max() {
        let mut all = CorrectionStats { frames: 10, corrected: 2, total_units: 6.0, max_units: 4.0 };
        all.merge(&CorrectionStats { frames: 30, corrected: 2, total_units: 2.0, max_units: 1.5 });
        assert_eq!(all, CorrectionStats { frames: 40, corrected: 4, total_units: 8.0, max_units: 4.0 });
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
