//! Encode + decode of a 100-player frame (the server's tick is benched in
//! `server/benches/tick.rs`). Native only.

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

// The wasm build only type-checks; criterion does not run there.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use arena_shared::codec::{EncodedPlayers, decode_server, encode_frame, encode_server};
    use arena_shared::protocol::{Frame, Life, PlayerState, ServerMsg};
    use arena_shared::sim::{Body, Vec2q};
    use criterion::{Criterion, criterion_group};

    fn players(n: u16) -> Vec<PlayerState> {
        (0..n)
            .map(|id| PlayerState {
                id,
                body: Body {
                    pos: Vec2q::from_units(i32::from(id % 20) * 50 - 500, i32::from(id / 20) * 50 - 250),
                    vel: Vec2q::from_units(120, -80),
                    dash_cooldown: (id % 90) as u8,
                },
                life: Life::Alive,
            })
            .collect()
    }

    fn frame_codec(c: &mut Criterion) {
        let players = players(100);
        let msg = ServerMsg::Frame(Frame { tick: 123_456, ack_seq: 9_999, players: players.clone() });
        let bytes = encode_server(&msg);
        println!("100-player frame: {} bytes", bytes.len());
        c.bench_function("frame100/encode", |b| b.iter(|| encode_server(black_box(&msg))));
        c.bench_function("frame100/decode", |b| {
            b.iter(|| decode_server(black_box(&bytes)).expect("valid frame"))
        });
        c.bench_function("frame100/encode_shared_for_100_recipients", |b| {
            b.iter(|| {
                let shared = EncodedPlayers::new(black_box(&players));
                (0..100u32).map(|ack| encode_frame(123_456, ack, &shared).len()).sum::<usize>()
            })
        });
    }

    criterion_group!(benches, frame_codec);
}
