//! What predicting the neighbourhood costs a client per frame: one
//! reconciliation (the re-run from the frame) with 12 unacked inputs (a
//! 200 ms round trip at 60 Hz) and 0, 6 (the most a frame carries) or 20
//! players near, all running into each other. Native only.

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

// The wasm build only type-checks; criterion does not run there.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use arena_shared::netcode::Prediction;
    use arena_shared::protocol::NearBody;
    use arena_shared::sim::{Body, Input, Vec2q};
    use criterion::{Criterion, criterion_group};

    fn reconcile(c: &mut Criterion) {
        for neighbours in [0u16, 6, 20] {
            let near: Vec<NearBody> = (0..neighbours)
                .map(|i| {
                    let angle = f32::from(i) * std::f32::consts::TAU / f32::from(neighbours.max(1));
                    let at = Vec2q::from_units((angle.cos() * 60.0) as i32, (angle.sin() * 60.0) as i32);
                    let toward = Input::stick((-angle.cos() * 127.0) as i8, (-angle.sin() * 127.0) as i8);
                    NearBody { id: i + 1, body: Body::at(at), input: toward }
                })
                .collect();
            let mut prediction = Prediction::default();
            prediction.set_tick_rate(30);
            prediction.reconcile_near(Body::default(), 0, (100, true), &near);
            for _ in 0..12 {
                prediction.apply_input(Input::stick(127, 0));
            }
            c.bench_function(&format!("reconcile with 12 inputs and {neighbours} near"), |b| {
                b.iter(|| {
                    prediction.reconcile_near(black_box(Body::default()), 0, (100, true), black_box(&near))
                })
            });
        }
    }

    criterion_group!(benches, reconcile);
}
