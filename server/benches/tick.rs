//! One server tick of a room of 100 and of 500 players: drain inputs, step,
//! bump, then build and hand out every player's frame (interest, deltas,
//! budget), with every writer taking its frame as a connection would. The
//! room task does exactly this.

use std::hint::black_box;
use std::sync::Arc;

use arena_server::room::core::{Room, Seat};
use arena_server::room::input::QueuedInput;
use arena_server::room::links::Inbound;
use arena_server::room::world::{Newcomer, World};
use arena_server::telemetry::metrics::Metrics;
use arena_shared::sim::Input;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;

fn tick(c: &mut Criterion) {
    for players in [100u16, 500] {
        let world = World::new(30, 512);
        let mut room = Room::new(world, u32::MAX, Arc::new(Metrics::default()), "benchroom0".into());
        let mut seats: Vec<Seat> = Vec::new();
        for i in 0..players {
            let newcomer = Newcomer { name: format!("bot-{i}"), color: (i % 10) as u8, from: None };
            let mut token = [0u8; 16];
            token[..2].copy_from_slice(&i.to_le_bytes());
            seats.push(room.seat(newcomer, None, || Ok(token)).expect("room has space"));
            // The writers read as they go: each join is news to everyone, and
            // a player whose news piles up unread is dropped as too slow.
            for seat in &seats {
                while seat.ends.outbox.next().now_or_never().is_some_and(|batch| !batch.messages.is_empty()) {
                }
            }
        }
        assert_eq!(room.world.player_count(), usize::from(players), "everyone seated");
        let mut seq = 0u32;
        c.bench_function(&format!("tick{players}/inputs_step_bumps_frames"), |b| {
            b.iter(|| {
                // Two inputs per player per tick: 60 Hz inputs into a 30 Hz tick.
                for (i, seat) in seats.iter().enumerate() {
                    for k in 1..=2 {
                        // A new heading every 4 ticks: everyone keeps moving
                        // (and changing) but stays near its spawn point, so the
                        // room stays full instead of walking off the edge.
                        let angle = (seq / 8 + i as u32) as f32 * 2.1;
                        let input = Input {
                            x: (angle.cos() * 127.0) as i8,
                            y: (angle.sin() * 127.0) as i8,
                            dash: false,
                        };
                        let _ = seat.ends.inbound.push(Inbound::Input(QueuedInput { seq: seq + k, input }));
                    }
                }
                seq += 2;
                room.tick();
                // Every writer takes its frame.
                for seat in &seats {
                    black_box(seat.ends.outbox.next().now_or_never());
                }
                black_box(room.world.tick_number())
            })
        });
    }
}

criterion_group!(benches, tick);
criterion_main!(benches);
