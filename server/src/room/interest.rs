//! What each player is sent every tick: the others within its view (with
//! hysteresis, so players at the edge do not flicker), as changes since the
//! last frame written to its connection, under a byte budget that sends
//! nearer and longer-waiting changes first.
//!
//! Why the written frame is the baseline: a WebSocket is one ordered TCP
//! stream, so a frame written (by the tick, or the connection's writer)
//! reaches the client, in order, or the connection dies. The only frames
//! that are lost are the ones the outbox replaced before they were
//! written, and the room knows those. So the
//! baseline needs no acknowledgement round trip (which would resend every
//! change for a whole RTT). A client that ever lacks a baseline (it cannot:
//! it keeps the last views) asks for a full view with `Resync`.

use arena_shared::protocol::{
    Frame, Life, MAX_NEAR, NEAR_RADIUS, NearBody, OtherUpdate, PlayerId, PlayerState, Seen, View,
    apply_view_into, near_updates,
};
use arena_shared::sim::{FIXED_ONE, Input};

/// Others within this distance (world units) enter a player's view. The
/// page shows at least 720 units across its shorter side; this covers a
/// wide window's corners.
pub const VIEW_RADIUS: i32 = 900;
/// Others already in view leave it only past this distance.
pub const VIEW_KEEP_RADIUS: i32 = 1000;
/// Bytes per frame for the others' changes (the frame's header and your own
/// state come on top, about 30 bytes): about 1.7 KB/s at 30 Hz, however
/// full the room.
pub const OTHERS_BUDGET_BYTES: usize = 56;

/// One tick's players, sorted by id, with each one's quantised form.
///
/// Each client's frame is one pass over this list in id order, merged with
/// the client's baseline view (also by id): no sorting and no lookups per
/// player. Rooms hold at most 512 players, and in a full one each player
/// sees about 210 others (`server/benches/tick.rs`), so gathering
/// neighbours from a grid, which then need sorting, would skip little.
pub struct Scene {
    states: Vec<PlayerState>,
    /// Each player's id and position, packed: all that deciding who is in
    /// a view reads, for every player, for every player.
    spots: Vec<Spot>,
    seen: Vec<Seen>,
    /// Each player's last input (what its neighbours extrapolate).
    inputs: Vec<Input>,
}

impl Scene {
    /// A tick's players, each with its last input (`inputs` in the same
    /// order; missing ones are a centred stick).
    pub fn new(states: Vec<PlayerState>, mut inputs: Vec<Input>) -> Self {
        let seen = states.iter().map(Seen::of).collect();
        let spots = states.iter().map(|s| Spot { x: s.body.pos.x, y: s.body.pos.y, id: s.id }).collect();
        inputs.resize(states.len(), Input::default());
        Scene { states, spots, seen, inputs }
    }

    /// Whether player `id` is in the scene.
    pub fn contains(&self, id: PlayerId) -> bool {
        self.get(id).is_some()
    }

    fn get(&self, id: PlayerId) -> Option<&PlayerState> {
        self.states.binary_search_by_key(&id, |s| s.id).ok().map(|i| &self.states[i])
    }
}

/// A player's id and position in a [`Scene`].
#[derive(Debug, Clone, Copy)]
struct Spot {
    x: i32,
    y: i32,
    id: PlayerId,
}

/// Changes considered for one frame: the most urgent ones only. The budget
/// fits at most 14 (an update takes 4 bytes or more); the rest are spares
/// for when a large change does not fit and a smaller one does.
const CANDIDATES: usize = 20;

/// A change considered for a frame: how urgent it is, where the player is
/// in the scene, and where in the baseline view (`NEW`: not in it).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    rank: Rank,
    scene: u32,
    base: u32,
}

const NEW: u32 = u32::MAX;

/// A candidate's place in the order it is chosen in, as one integer that
/// sorts descending: most urgent first, equal scores by id (scene order),
/// so the choice never depends on how the candidates were gathered. A
/// score is positive (at least 1), and positive floats' bits order as
/// the floats do: the score's bits above the scene place's complement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank(u64);

impl Rank {
    fn new(score: f32, scene: u32) -> Self {
        debug_assert!(score > 0.0, "scores are positive");
        Rank(u64::from(score.to_bits()) << 32 | u64::from(!scene))
    }
}

/// One connection's side of the view: what its client has, and what waits.
#[derive(Debug, Default)]
pub struct ClientView {
    /// The view after the frame the writer last took: the baseline.
    taken: (u32, View),
    /// The view after the frame now waiting in the outbox.
    waiting: Option<(u32, View)>,
    /// Changed players not sent yet, by id: how long they waited, weighted
    /// by nearness. Sent ones start again from 0, so nobody starves.
    priority: Vec<(PlayerId, f32)>,
}

/// Memory a room's frames work in, kept between frames so that a frame
/// allocates only what it sends. A room builds one frame at a time, so one
/// set serves all its clients (a set for each client was 1.6 KB more per
/// connection).
#[derive(Debug, Default)]
pub struct FrameScratch {
    priority: Vec<(PlayerId, f32)>,
    in_view: Vec<InView>,
    candidates: Vec<Candidate>,
    /// The players near you: squared distance and place in the scene, in
    /// scene (id) order.
    near: Vec<(i64, u32)>,
    /// A view's memory, freed by one client's baseline and reused for the
    /// next client's waiting view.
    view: View,
}

/// A player in view: where it is in the scene and in the baseline (`NEW`:
/// not in it), and its squared distance from you.
#[derive(Debug, Clone, Copy)]
struct InView {
    scene: u32,
    base: u32,
    dist_sq: i64,
}

impl ClientView {
    /// The next frame is a full view (a new connection, or `Resync`).
    pub fn resync(&mut self) {
        self.taken = (0, Vec::new());
        self.waiting = None;
    }

    /// Builds player `me`'s frame for `tick`. `previous_taken`: whether the
    /// writer took the last frame (if not, it is about to be replaced and
    /// is no baseline). `None`: `me` is not in the scene.
    ///
    /// Five passes: who is in view (and who left it), who of them is near,
    /// which changes are worth sending (scored; the near ones first), which
    /// of those fit the byte budget, and the frame they make.
    pub fn frame(
        &mut self,
        scratch: &mut FrameScratch,
        scene: &Scene,
        me: PlayerId,
        (tick, ack_seq): (u32, u32),
        previous_taken: bool,
    ) -> Option<Frame> {
        self.settle_baseline(scratch, previous_taken);
        let you = *scene.get(me)?;
        let gone = in_view(scene, &you, &self.taken.1, &mut scratch.in_view);
        nearest(scene, &scratch.in_view, &mut scratch.near);
        self.score_changes(scratch, scene);
        let chosen = pick_within_budget(scene, &self.taken.1, &mut scratch.candidates);
        let others = self.encode(&chosen);
        let baseline_age = if self.taken.0 == 0 { 0 } else { tick - self.taken.0 };
        let mut frame = Frame { tick, ack_seq, baseline_age, you, others, gone, near: Vec::new() };
        self.remember(scratch, &frame);
        // The near bodies build on the view this frame makes.
        if let Some((_, view)) = &self.waiting {
            let bodies = scratch.near.iter().map(|&(_, at)| {
                let state = &scene.states[at as usize];
                NearBody { id: state.id, body: state.body, input: scene.inputs[at as usize] }
            });
            frame.near = near_updates(view, bodies);
        }
        Some(frame)
    }

    /// The last frame built was written: it is the baseline from now on
    /// (the next frame would find the same; this frees the older view for
    /// `scratch` at once).
    pub fn settle(&mut self, scratch: &mut FrameScratch) {
        self.settle_baseline(scratch, true);
    }

    /// Views kept between frames: the baseline, and the one the last frame
    /// makes while the writer has not taken it.
    #[cfg(test)]
    pub fn views_kept(&self) -> usize {
        1 + usize::from(self.waiting.is_some())
    }

    /// The last frame built becomes the baseline if the writer took it;
    /// otherwise it is forgotten (it is about to be replaced).
    fn settle_baseline(&mut self, scratch: &mut FrameScratch, previous_taken: bool) {
        if let Some(waiting) = self.waiting.take() {
            // The older view's memory is reused for the next one.
            scratch.view =
                if previous_taken { std::mem::replace(&mut self.taken, waiting).1 } else { waiting.1 };
        }
    }

    /// Scores the changed players in view, merged by id with the
    /// priorities they had waited to, into the candidates for this frame.
    fn score_changes(&mut self, scratch: &mut FrameScratch, scene: &Scene) {
        let per_enter_sq = 1.0 / enter_radius_sq() as f32;
        let baseline = &self.taken.1;
        let earlier = std::mem::take(&mut self.priority);
        let mut priority = std::mem::take(&mut scratch.priority);
        priority.clear();
        // Exact: each client keeps its list between frames.
        priority.reserve_exact(scratch.in_view.len());
        let candidates = &mut scratch.candidates;
        candidates.clear();
        // Both lists are by id, as in_view is: one cursor each.
        let (mut p, mut n) = (0, 0);
        for &InView { scene: at, base, dist_sq } in &scratch.in_view {
            let (id, seen) = (scene.spots[at as usize].id, scene.seen[at as usize]);
            let old = baseline.get(base as usize).map(|&(_, old)| old);
            while p < earlier.len() && earlier[p].0 < id {
                p += 1;
            }
            let waited = if p < earlier.len() && earlier[p].0 == id { earlier[p].1 } else { 0.0 };
            if old == Some(seen) {
                // Nothing to send now, but a wait is kept: a player that
                // keeps passing through the spot the client has (pacing,
                // circling) would otherwise start from 0 again and again.
                if waited > 0.0 {
                    priority.push((id, waited));
                }
                continue;
            }
            // Everyone changed waits a little longer; the nearest, the new
            // and the ones whose life changed wait least.
            let nearness = 1.0 - (dist_sq as f32 * per_enter_sq).min(1.0);
            let urgency = match old {
                None => 20.0,
                Some(old) if old.life != seen.life => 10.0,
                Some(_) => 0.0,
            };
            let score = waited + 1.0 + 3.0 * nearness + urgency;
            priority.push((id, score));
            // The players near you go first, every frame: their near bodies
            // are sent as remainders from the view (a byte an axis when it is
            // current).
            while n < scratch.near.len() && scratch.near[n].1 < at {
                n += 1;
            }
            let near = if n < scratch.near.len() && scratch.near[n].1 == at { NEAR_FIRST } else { 0.0 };
            candidates.push(Candidate { rank: Rank::new(score + near, at), scene: at, base });
        }
        self.priority = priority;
        scratch.priority = earlier;
    }

    /// The chosen changes as the frame's updates (by id); the players sent
    /// start waiting again from 0.
    fn encode(&mut self, chosen: &[(PlayerId, Seen, (i16, i16))]) -> Vec<OtherUpdate> {
        let mut others = Vec::with_capacity(chosen.len());
        let mut last_id = 0;
        for &(id, seen, (dx, dy)) in chosen {
            others.push(OtherUpdate { id_gap: id - last_id, dx, dy, life: seen.life });
            last_id = id;
            if let Ok(at) = self.priority.binary_search_by_key(&id, |&(id, _)| id) {
                self.priority[at].1 = 0.0;
            }
        }
        self.priority.retain(|&(_, waiting)| waiting > 0.0);
        others
    }

    /// The view `frame` makes, by the rule the client applies, kept until
    /// the writer takes the frame. The frame is built to fit (rising ids,
    /// sorted departures); if it ever did not, the next frame starts again
    /// from a full view.
    fn remember(&mut self, scratch: &mut FrameScratch, frame: &Frame) {
        let mut view = std::mem::take(&mut scratch.view);
        if apply_view_into(&self.taken.1, frame, &mut view) {
            self.waiting = Some((frame.tick, view));
        } else {
            self.resync();
        }
    }
}

/// Added to a near player's score: above any wait (nobody waits 20 frames,
/// and a frame adds at most 24).
const NEAR_FIRST: f32 = 1000.0;

/// Into `near`: the players in view standing within [`NEAR_RADIUS`], the
/// nearest [`MAX_NEAR`] of them, as (squared distance, place in the scene),
/// by id.
fn nearest(scene: &Scene, in_view: &[InView], near: &mut Vec<(i64, u32)>) {
    let near_sq = (i64::from(NEAR_RADIUS) * i64::from(FIXED_ONE)).pow(2);
    let standing = |v: &&InView| v.dist_sq <= near_sq && scene.states[v.scene as usize].life == Life::Alive;
    near.clear();
    near.extend(in_view.iter().filter(standing).map(|v| (v.dist_sq, v.scene)));
    if near.len() > MAX_NEAR {
        near.select_nth_unstable(MAX_NEAR);
        near.truncate(MAX_NEAR);
        near.sort_unstable_by_key(|&(_, at)| at);
    }
}

fn enter_radius_sq() -> i64 {
    (i64::from(VIEW_RADIUS) * i64::from(FIXED_ONE)).pow(2)
}

/// Who is in `you`'s view, by one merge of the scene with the baseline (both
/// by id), into `in_view`; returns who left the view (or the room). Players
/// in view stay until past the keep radius, so the edge does not flicker.
fn in_view(scene: &Scene, you: &PlayerState, baseline: &View, in_view: &mut Vec<InView>) -> Vec<PlayerId> {
    let keep_sq = (i64::from(VIEW_KEEP_RADIUS) * i64::from(FIXED_ONE)).pow(2);
    let enter_sq = enter_radius_sq();
    let mut gone = Vec::new();
    // Every player is written to the next place and kept by moving past
    // it only if it is in view: no branch on who is in view, which no
    // predictor can guess (it was a third of the pass).
    in_view.clear();
    in_view.resize(scene.states.len(), InView { scene: 0, base: NEW, dist_sq: 0 });
    let mut kept = 0;
    let mut b = 0;
    let (you_x, you_y) = (you.body.pos.x, you.body.pos.y);
    for (at, &Spot { x, y, id }) in scene.spots.iter().enumerate() {
        // Players that left the room.
        while b < baseline.len() && baseline[b].0 < id {
            gone.push(baseline[b].0);
            b += 1;
        }
        let known = b < baseline.len() && baseline[b].0 == id;
        let base = if known { b as u32 } else { NEW };
        b += usize::from(known);
        let (dx, dy) = (i64::from(x - you_x), i64::from(y - you_y));
        let dist_sq = dx * dx + dy * dy;
        let visible = (id != you.id) & ((dist_sq <= enter_sq) | (known & (dist_sq <= keep_sq)));
        in_view[kept] = InView { scene: at as u32, base, dist_sq };
        kept += usize::from(visible);
        // One test, of what rarely happens (a branch on `visible` alone
        // would be guessed wrong as often as not).
        let walked_out = known & !visible;
        if walked_out {
            gone.push(id);
        }
    }
    in_view.truncate(kept);
    gone.extend(baseline[b..].iter().map(|(id, _)| *id));
    gone
}

/// The most urgent candidates whose changes fit the byte budget (at least
/// one), by id, each with its delta from the baseline.
fn pick_within_budget(
    scene: &Scene,
    baseline: &View,
    candidates: &mut Vec<Candidate>,
) -> Vec<(PlayerId, Seen, (i16, i16))> {
    if candidates.len() > CANDIDATES {
        candidates.select_nth_unstable_by_key(CANDIDATES - 1, |c| std::cmp::Reverse(c.rank));
        candidates.truncate(CANDIDATES);
    }
    candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.rank));
    let mut bytes = 0;
    let mut chosen: Vec<(PlayerId, Seen, (i16, i16))> = Vec::with_capacity(candidates.len());
    for candidate in candidates.iter() {
        let at = candidate.scene as usize;
        let (state, seen) = (&scene.states[at], scene.seen[at]);
        let old = baseline.get(candidate.base as usize).map(|&(_, old)| old);
        let (dx, dy) = delta(seen, old);
        let size = 2 + varint_len(zigzag(dx)) + varint_len(zigzag(dy));
        if bytes + size > OTHERS_BUDGET_BYTES && !chosen.is_empty() {
            continue;
        }
        bytes += size;
        chosen.push((state.id, seen, (dx, dy)));
    }
    chosen.sort_unstable_by_key(|&(id, ..)| id);
    chosen
}

/// The change from `old` to `seen` in quanta (from 0 for a newcomer).
fn delta(seen: Seen, old: Option<Seen>) -> (i16, i16) {
    let old = old.unwrap_or_default();
    (seen.x.wrapping_sub(old.x), seen.y.wrapping_sub(old.y))
}

fn zigzag(v: i16) -> u16 {
    ((v << 1) ^ (v >> 15)) as u16
}

/// Bytes bincode's varint takes for a `u16`.
fn varint_len(v: u16) -> usize {
    if v < 251 { 1 } else { 3 }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arena_shared::codec::{decode_server, encode_server, encoded_len};
    use arena_shared::netcode::ViewHistory;
    use arena_shared::protocol::{Life, ServerMsg, near_bodies};

    use arena_shared::sim::{Body, Vec2q};

    use super::*;

    fn at(id: PlayerId, x: i32, y: i32) -> PlayerState {
        PlayerState { id, body: Body::at(Vec2q::from_units(x, y)), life: Life::Alive }
    }

    /// The client's side: applies frames, through the wire, to the views
    /// it keeps.
    #[derive(Default)]
    struct Client {
        views: ViewHistory,
    }

    impl Client {
        fn apply(&mut self, frame: &Frame) -> View {
            let wire = encode_server(&ServerMsg::Frame(frame.clone()));
            let Ok(ServerMsg::Frame(frame)) = decode_server(&wire) else { panic!("frames decode") };
            self.views.apply(&frame).expect("frame fits its kept baseline").clone()
        }

        /// Applies `frame` and decodes its near bodies on the view it made.
        fn near(&mut self, frame: &Frame) -> Vec<NearBody> {
            let view = self.apply(frame);
            let mut near = Vec::new();
            assert!(near_bodies(&view, &frame.near, &mut near), "near bodies fit the view");
            near
        }
    }

    /// A busy room for many ticks, every client's frames hashed: the
    /// interest pass may change how it works, never the bytes it sends.
    #[test]
    fn a_busy_rooms_frames_are_pinned_byte_for_byte() {
        const PLAYERS: u16 = 300;
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: u32| {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((rng >> 33) % u64::from(n)) as i32
        };
        let lives = [Life::Alive, Life::Alive, Life::Alive, Life::Protected, Life::Falling, Life::Out];
        let mut players: Vec<PlayerState> = (1..=PLAYERS)
            .map(|id| {
                let mut state = at(id, next(4000) - 2000, next(4000) - 2000);
                state.body.vel = Vec2q { x: next(4000) - 2000, y: next(4000) - 2000 };
                state
            })
            .collect();
        let mut views: Vec<ClientView> = (0..PLAYERS).map(|_| ClientView::default()).collect();
        let mut scratch = FrameScratch::default();
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        for tick in 1..=60u32 {
            for state in &mut players {
                state.body.pos.x += next(41 * FIXED_ONE as u32) - 20 * FIXED_ONE;
                state.body.pos.y += next(41 * FIXED_ONE as u32) - 20 * FIXED_ONE;
                if next(10) == 0 {
                    state.life = lives[next(lives.len() as u32) as usize];
                }
            }
            // Some are away this tick (left, or not yet back).
            let here: Vec<PlayerState> =
                players.iter().filter(|s| !(u32::from(s.id) + tick).is_multiple_of(13)).copied().collect();
            let inputs = here
                .iter()
                .map(|_| Input { x: next(255) as i8, y: next(255) as i8, dash: next(2) == 0 })
                .collect();
            let scene = Scene::new(here, inputs);
            for (i, view) in views.iter_mut().enumerate() {
                let me = i as PlayerId + 1;
                // Now and then a frame was not taken before the next.
                let taken = next(7) != 0;
                if let Some(frame) = view.frame(&mut scratch, &scene, me, (tick, tick * 3), taken) {
                    for byte in encode_server(&ServerMsg::Frame(frame)) {
                        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                    }
                }
            }
        }
        assert_eq!(hash, 0x1f10_2ef1_afa3_54d4, "should send exactly the bytes it sent before: {hash:#x}");
    }

    #[test]
    fn only_players_in_view_are_sent_with_hysteresis_at_the_edge() {
        let (mut view, mut scratch) = (ClientView::default(), FrameScratch::default());
        let mut client = Client::default();
        let scene = Scene::new(vec![at(1, 0, 0), at(2, 500, 0), at(3, 950, 0), at(4, 3000, 0)], Vec::new());
        let first = view.frame(&mut scratch, &scene, 1, (1, 0), true).expect("in the scene");
        assert_eq!(first.baseline_age, 0, "the first frame is a full view");
        let seen: Vec<PlayerId> = client.apply(&first).iter().map(|(id, _)| *id).collect();
        assert_eq!(seen, [2], "3 is past the view radius, 4 far away");
        // 3 comes within the radius: it enters; then drifts to 950 again: it stays.
        let scene = Scene::new(vec![at(1, 0, 0), at(2, 500, 0), at(3, 850, 0), at(4, 3000, 0)], Vec::new());
        let frame = view.frame(&mut scratch, &scene, 1, (2, 0), true).expect("in the scene");
        assert_eq!(frame.baseline_tick(), Some(1));
        assert_eq!(client.apply(&frame).iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2, 3]);
        let scene = Scene::new(vec![at(1, 0, 0), at(2, 500, 0), at(3, 950, 0), at(4, 3000, 0)], Vec::new());
        let frame = view.frame(&mut scratch, &scene, 1, (3, 0), true).expect("in the scene");
        assert!(frame.gone.is_empty(), "within the keep radius, 3 stays in view");
        client.apply(&frame);
        // Past the keep radius it leaves, and the client drops it.
        let scene = Scene::new(vec![at(1, 0, 0), at(2, 500, 0), at(3, 1050, 0)], Vec::new());
        let frame = view.frame(&mut scratch, &scene, 1, (4, 0), true).expect("in the scene");
        assert_eq!(frame.gone, [3]);
        assert_eq!(client.apply(&frame).iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn unchanged_players_cost_nothing_and_changes_are_exact() {
        let (mut view, mut scratch) = (ClientView::default(), FrameScratch::default());
        let mut client = Client::default();
        let still = Scene::new(vec![at(1, 0, 0), at(2, 100, 0), at(3, -100, 40)], Vec::new());
        client.apply(&view.frame(&mut scratch, &still, 1, (1, 0), true).expect("in the scene"));
        let frame = view.frame(&mut scratch, &still, 1, (2, 0), true).expect("in the scene");
        assert!(frame.others.is_empty() && frame.gone.is_empty(), "nothing moved, nothing sent");
        client.apply(&frame);
        let moved = Scene::new(vec![at(1, 0, 0), at(2, 103, 1), at(3, -100, 40)], Vec::new());
        let frame = view.frame(&mut scratch, &moved, 1, (3, 0), true).expect("in the scene");
        assert_eq!(frame.others.len(), 1);
        let known = client.apply(&frame);
        assert_eq!(known[0], (2, Seen::of(&at(2, 103, 1))), "the client's view is the server's, quantised");
    }

    #[test]
    fn a_frame_the_writer_did_not_take_is_no_baseline() {
        let (mut view, mut scratch) = (ClientView::default(), FrameScratch::default());
        let mut client = Client::default();
        client.apply(
            &view
                .frame(
                    &mut scratch,
                    &Scene::new(vec![at(1, 0, 0), at(2, 10, 0)], Vec::new()),
                    1,
                    (1, 0),
                    true,
                )
                .expect("ok"),
        );
        // Frame 2 is built but replaced before the writer takes it.
        let _lost = view
            .frame(&mut scratch, &Scene::new(vec![at(1, 0, 0), at(2, 20, 0)], Vec::new()), 1, (2, 0), true)
            .expect("ok");
        let frame = view
            .frame(&mut scratch, &Scene::new(vec![at(1, 0, 0), at(2, 30, 0)], Vec::new()), 1, (3, 0), false)
            .expect("ok");
        assert_eq!(frame.baseline_tick(), Some(1), "built on the last frame the writer took");
        assert_eq!(client.apply(&frame)[0].1, Seen::of(&at(2, 30, 0)));
    }

    #[test]
    fn the_players_near_you_are_sent_exactly_with_their_last_input() {
        let (mut view, mut scratch) = (ClientView::default(), FrameScratch::default());
        let falling = PlayerState { life: Life::Falling, ..at(3, 0, 200) };
        let states = vec![at(1, 0, 0), at(2, 100, 0), falling, at(4, 300, 0)];
        let inputs =
            vec![Input::default(), Input::stick(-127, 0), Input::stick(0, 127), Input::stick(127, 0)];
        let frame =
            view.frame(&mut scratch, &Scene::new(states.clone(), inputs), 1, (1, 0), true).expect("in");
        let near = Client::default().near(&frame);
        assert_eq!(
            near,
            [NearBody { id: 2, body: states[1].body, input: Input::stick(-127, 0) }],
            "within {NEAR_RADIUS} units and standing: exact body and input; the faller and the far one are not"
        );
    }

    #[test]
    fn a_crowd_stays_within_the_budget_and_nobody_starves() {
        let (mut view, mut scratch) = (ClientView::default(), FrameScratch::default());
        let mut client = Client::default();
        let crowd = |t: i32| -> Scene {
            Scene::new(
                (1..=80u16)
                    .map(|id| at(id, (i32::from(id) % 10) * 60 - 300 + t, (i32::from(id) / 10) * 60 - 240))
                    .collect(),
                Vec::new(),
            )
        };
        let mut last_sent: BTreeMap<PlayerId, u32> = BTreeMap::new();
        let mut longest_wait = 0;
        for tick in 1..=120u32 {
            let frame =
                view.frame(&mut scratch, &crowd(tick as i32 * 5), 1, (tick, 0), true).expect("in the scene");
            // The near bodies are a bounded cost of their own (below).
            let others_bytes =
                encode_server(&ServerMsg::Frame(Frame { near: Vec::new(), ..frame.clone() })).len();
            if tick > 1 {
                assert!(others_bytes <= 120, "frame {tick} is {others_bytes} bytes");
            }
            assert_eq!(frame.near.len(), MAX_NEAR, "a crowd this dense has its nearest sent exactly");
            // The near players' view is kept current, so each costs its
            // 11 bytes and no more, and decodes to exactly where it is.
            assert!(frame.near.iter().all(|n| encoded_len(n) == 11), "{:?}", frame.near);
            let known = client.apply(&frame);
            let mut near = Vec::new();
            assert!(near_bodies(&known, &frame.near, &mut near));
            let scene = crowd(tick as i32 * 5);
            assert!(near.iter().all(|n| scene.get(n.id).is_some_and(|s| s.body == n.body)));
            let mut id = 0;
            for update in &frame.others {
                id += update.id_gap;
                if let Some(previous) = last_sent.insert(id, tick) {
                    longest_wait = longest_wait.max(tick - previous);
                }
            }
            if tick > 30 {
                assert_eq!(known.len(), 79, "by a second in, everyone in the crowd is in view");
            }
        }
        assert_eq!(last_sent.len(), 79, "everyone was updated");
        // The six near you take a share of the budget every frame (their
        // near bodies build on the view); the other 73 share the rest.
        assert!(longest_wait <= 24, "nobody waits more than 24 ticks (0.8 s): {longest_wait}");
    }

    #[test]
    fn a_player_pacing_through_the_spot_the_client_has_is_not_starved() {
        // 80 players moving every tick compete for the budget. Player 200
        // stands at (100, 0) long enough to be sent there (the 80 fill the
        // view in about 18 ticks), then paces: one
        // tick back at (100, 0), four at (160, 0). Each return to the spot
        // the client has is "unchanged"; that must not wipe out its wait.
        let (mut view, mut scratch) = (ClientView::default(), FrameScratch::default());
        let mut client = Client::default();
        let pacer =
            |tick: u32| if tick <= 20 || tick.is_multiple_of(5) { at(200, 100, 0) } else { at(200, 160, 0) };
        let mut seen_at_160 = None;
        for tick in 1..=60u32 {
            let mut states: Vec<PlayerState> = (1..=80u16)
                .map(|id| {
                    at(id, (i32::from(id) % 10) * 60 - 300 + tick as i32 * 5, (i32::from(id) / 10) * 60 - 240)
                })
                .collect();
            states.push(pacer(tick));
            let frame = view
                .frame(&mut scratch, &Scene::new(states, Vec::new()), 1, (tick, 0), true)
                .expect("in the scene");
            let known = client.apply(&frame);
            let pacer_seen = known.iter().find(|(id, _)| *id == 200).map(|(_, seen)| *seen);
            if tick == 20 {
                assert_eq!(pacer_seen, Some(Seen::of(&at(200, 100, 0))), "sent while it stood still");
            }
            if tick > 20 && pacer_seen == Some(Seen::of(&at(200, 160, 0))) {
                seen_at_160.get_or_insert(tick);
            }
        }
        let first = seen_at_160.expect("the pacer's other spot reached the client");
        assert!(first <= 20 + 20, "within 20 ticks of pacing, not {}", first - 20);
    }
}
