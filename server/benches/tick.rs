//! One server tick of a room of 100 and of 500 players: drain inputs, step,
//! bump, then build and hand out every player's frame (interest, deltas,
//! budget), with every writer taking its frame as a connection would. The
//! room task does exactly this. Then the 500-player tick by stage: the game
//! (`Room::play`: inputs, step, bumps) and the frames (`Room::publish`:
//! each player's interest pass, its frame encoded and queued), each timed
//! alone within whole ticks.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_server::room::core::{Room, Seat};
use arena_server::room::input::QueuedInput;
use arena_server::room::links::Inbound;
use arena_server::room::world::{Newcomer, World};
use arena_server::telemetry::metrics::Metrics;
use arena_shared::sim::Input;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;

/// A room of `players`, every one seated and its news read.
fn full_room(players: u16) -> (Room, Vec<Seat>) {
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
            while seat.ends.outbox.next().now_or_never().is_some_and(|batch| !batch.messages.is_empty()) {}
        }
    }
    assert_eq!(room.world.player_count(), usize::from(players), "everyone seated");
    (room, seats)
}

/// Two inputs per player per tick: 60 Hz inputs into a 30 Hz tick.
fn send_inputs(seats: &[Seat], seq: &mut u32) {
    for (i, seat) in seats.iter().enumerate() {
        for k in 1..=2 {
            // A new heading every 4 ticks: everyone keeps moving (and
            // changing) but stays near its spawn point, so the room stays
            // full instead of walking off the edge.
            let angle = (*seq / 8 + i as u32) as f32 * 2.1;
            let input = Input { x: (angle.cos() * 127.0) as i8, y: (angle.sin() * 127.0) as i8, dash: false };
            let _ = seat.ends.inbound.push(Inbound::Input(QueuedInput { seq: *seq + k, input }));
        }
    }
    *seq += 2;
}

/// Every writer takes its frame.
fn take_frames(seats: &[Seat]) {
    for seat in seats {
        black_box(seat.ends.outbox.next().now_or_never());
    }
}

fn tick(c: &mut Criterion) {
    for players in [100u16, 500] {
        let (mut room, seats) = full_room(players);
        let mut seq = 0u32;
        c.bench_function(&format!("tick{players}/inputs_step_bumps_frames"), |b| {
            b.iter(|| {
                send_inputs(&seats, &mut seq);
                room.tick();
                take_frames(&seats);
                black_box(room.world.tick_number())
            })
        });
    }
}

/// The 500-player tick's two stages, each timed alone.
fn stages(c: &mut Criterion) {
    let (mut room, seats) = full_room(500);
    let mut seq = 0u32;
    let mut stage = |name: &str, publish_only: bool| {
        c.bench_function(&format!("tick500/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    send_inputs(&seats, &mut seq);
                    let started = Instant::now();
                    let frames = room.play();
                    let played = started.elapsed();
                    let publishing = Instant::now();
                    room.publish(frames);
                    spent += if publish_only { publishing.elapsed() } else { played };
                    take_frames(&seats);
                }
                spent
            })
        });
    };
    stage("play: inputs_step_bumps", false);
    stage("publish: interest_encode_queue", true);
}

criterion_group!(benches, tick, stages);
criterion_main!(benches);
