//! One server tick with 100 players: drain inputs, step, resolve overlaps,
//! encode and hand out 100 frames. The room task does exactly this.

use std::hint::black_box;
use std::sync::Arc;

use arena_server::metrics::Metrics;
use arena_server::room::{Room, Seat};
use arena_server::world::{Newcomer, QueuedInput, World};
use arena_shared::sim::Input;
use criterion::{Criterion, criterion_group, criterion_main};

fn tick_100_players(c: &mut Criterion) {
    let world = World::new(30, 256);
    let mut room = Room::new(world, u32::MAX, Arc::new(Metrics::default()), "benchroom0".into());
    let seats: Vec<Seat> = (0..100)
        .map(|i| {
            let newcomer = Newcomer { name: format!("bot-{i}"), color: (i % 10) as u8 };
            room.seat(newcomer, None, || Ok([i as u8; 16])).expect("room has space")
        })
        .collect();
    let mut seq = 0u32;
    c.bench_function("tick100/inputs_step_overlaps_frames", |b| {
        b.iter(|| {
            // Two inputs per player per tick: 60 Hz inputs into a 30 Hz tick.
            for (i, seat) in seats.iter().enumerate() {
                for k in 1..=2 {
                    let input = Input { x: (i as i8).wrapping_mul(13), y: 90, dash: seq.is_multiple_of(120) };
                    let _ = seat.ends.inputs.try_send(QueuedInput { seq: seq + k, input });
                }
            }
            seq += 2;
            room.tick();
            black_box(room.world.tick_number())
        })
    });
}

criterion_group!(benches, tick_100_players);
criterion_main!(benches);
