//! Encode + decode of frames: a full view of 100 players (a join) and a
//! typical delta (15 changes). The server's tick, with interest and deltas
//! for 100 players, is benched in `server/benches/tick.rs`. Native only.

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

// The wasm build only type-checks; criterion does not run there.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use arena_shared::codec::{decode_server, encode_server};
    use arena_shared::protocol::{Frame, Life, OtherUpdate, PlayerState, ServerMsg, apply_view};
    use arena_shared::sim::{Body, Vec2q};
    use criterion::{Criterion, criterion_group};

    fn frame(updates: u16, baseline: u32) -> ServerMsg {
        let you = PlayerState {
            id: 1,
            body: Body {
                pos: Vec2q::new(-51_234, 20_000),
                vel: Vec2q::from_units(120, -80),
                dash_cooldown: 40,
            },
            life: Life::Alive,
        };
        let others = (0..updates)
            .map(|i| OtherUpdate {
                id_gap: 1 + i % 3,
                dx: if baseline == 0 { (i as i16) * 120 - 3000 } else { (i as i16 % 40) - 20 },
                dy: if baseline == 0 { 1500 - (i as i16) * 40 } else { 7 },
                life: Life::Alive,
            })
            .collect();
        ServerMsg::Frame(Frame {
            tick: 123_456,
            ack_seq: 9_999,
            baseline_age: baseline,
            you,
            others,
            gone: vec![3, 77],
            near: Vec::new(),
        })
    }

    fn frame_codec(c: &mut Criterion) {
        for (name, msg) in [("full100", frame(100, 0)), ("delta15", frame(15, 123_455))] {
            let bytes = encode_server(&msg);
            println!("{name} frame: {} bytes", bytes.len());
            c.bench_function(&format!("frame_{name}/encode"), |b| b.iter(|| encode_server(black_box(&msg))));
            c.bench_function(&format!("frame_{name}/decode"), |b| {
                b.iter(|| decode_server(black_box(&bytes)).expect("valid frame"))
            });
        }
        let ServerMsg::Frame(full) = frame(100, 0) else { unreachable!() };
        let view = apply_view(&[], &full).expect("a full view");
        let ServerMsg::Frame(delta) = frame(15, 123_455) else { unreachable!() };
        c.bench_function("view100/apply_delta15", |b| {
            b.iter(|| apply_view(black_box(&view), black_box(&delta)).expect("fits"))
        });
    }

    criterion_group!(benches, frame_codec);
}
