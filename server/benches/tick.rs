//! One server tick of a room of 100 and of 500 players: drain inputs, step,
//! bump, then build and hand out every player's frame (interest, deltas,
//! budget), with every writer taking its frame as a connection would. The
//! room task does exactly this. Then the 500-player tick by stage: the game
//! (`Room::play`: inputs, step, bumps) and the frames (`Room::publish`:
//! each player's interest pass, its frame encoded and queued), each timed
//! alone within whole ticks. Then a frame by stage (`frames20/*`,
//! `frames500/*`): interest, encoding, framing, and the write syscall.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use arena_server::room::core::{Room, Seat};
use arena_server::room::input::QueuedInput;
use arena_server::room::interest::{ClientView, FrameScratch, Scene};
use arena_server::room::links::Inbound;
use arena_server::room::wire::frame_binary;
use arena_server::room::world::{Newcomer, World};
use arena_server::telemetry::metrics::Metrics;
use arena_shared::codec::encode_server;
use arena_shared::protocol::{Frame, ServerMsg};
use arena_shared::sim::Input;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use tokio_tungstenite::tungstenite;

/// A room of `players` (its platform sized for `capacity`), every one
/// seated and its news read.
fn full_room(players: u16, capacity: u16) -> (Room, Vec<Seat>) {
    let world = World::new(30, capacity);
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
        let (mut room, seats) = full_room(players, 512);
        let mut seq = 0u32;
        c.bench_function(&format!("tick{players}/inputs_step_bumps_frames"), |b| {
            b.iter(|| {
                send_inputs(&seats, &mut seq);
                room.tick(1);
                take_frames(&seats);
                black_box(room.world.tick_number())
            })
        });
    }
}

/// The 500-player tick's two stages, each timed alone.
fn stages(c: &mut Criterion) {
    let (mut room, seats) = full_room(500, 512);
    let mut seq = 0u32;
    let mut stage = |name: &str, publish_only: bool| {
        c.bench_function(&format!("tick500/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    send_inputs(&seats, &mut seq);
                    let started = Instant::now();
                    let frames = room.play(1);
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

/// What a player's frame costs, stage by stage, in a room of `players`:
/// the interest pass, encoding, WebSocket framing (arena's, and
/// tungstenite's for comparison) and the write to a real loopback socket
/// (non-blocking, its far end drained by another thread). Each stage is
/// timed alone within whole ticks of a real room; criterion's figure is
/// per tick, for every player of the room.
fn frame_stages(c: &mut Criterion) {
    const STAGES: [&str; 5] = ["interest", "encode", "framing", "framing_tungstenite", "write"];
    for players in [20u16, 500] {
        let (mut room, seats) = full_room(players, players);
        let mut seq = 0u32;
        let mut views: Vec<ClientView> = (0..players).map(|_| ClientView::default()).collect();
        let mut scratch = FrameScratch::default();
        let (mut sockets, drain) = loopback_sockets(usize::from(players));
        let mut tick = |spent: &mut [Duration; 5]| {
            send_inputs(&seats, &mut seq);
            let frames = room.play(1);
            let scene = Scene::new(frames.states.clone(), frames.inputs.clone());
            let now = Instant::now();
            let built: Vec<Frame> = (frames.acks.iter().zip(&mut views))
                .filter_map(|(&(id, ack), view)| {
                    view.frame(&mut scratch, &scene, id, (frames.tick, ack), true)
                })
                .collect();
            spent[0] += now.elapsed();
            let now = Instant::now();
            let encoded: Vec<Vec<u8>> =
                built.into_iter().map(|f| encode_server(&ServerMsg::Frame(f))).collect();
            spent[1] += now.elapsed();
            let mut framed = vec![Vec::with_capacity(512); encoded.len()];
            let now = Instant::now();
            for (out, payload) in framed.iter_mut().zip(&encoded) {
                frame_binary(out, payload);
            }
            spent[2] += now.elapsed();
            let now = Instant::now();
            for payload in &encoded {
                let frame = tungstenite::protocol::frame::Frame::message(
                    payload.clone(),
                    tungstenite::protocol::frame::coding::OpCode::Data(
                        tungstenite::protocol::frame::coding::Data::Binary,
                    ),
                    true,
                );
                let mut out = Vec::with_capacity(512);
                black_box(frame.format(&mut out).is_ok());
                black_box(out);
            }
            spent[3] += now.elapsed();
            let now = Instant::now();
            for (socket, bytes) in sockets.iter_mut().zip(&framed) {
                black_box(socket.write(bytes).is_ok());
            }
            spent[4] += now.elapsed();
            room.publish(frames);
            take_frames(&seats);
        };
        for (k, name) in STAGES.iter().enumerate() {
            c.bench_function(&format!("frames{players}/{name}"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = [Duration::ZERO; 5];
                    for _ in 0..iters {
                        tick(&mut spent);
                    }
                    spent[k]
                })
            });
        }
        drain.stop();
    }
}

/// `n` connected loopback sockets, non-blocking, whose far ends a thread
/// reads a sweep a millisecond until stopped.
fn loopback_sockets(n: usize) -> (Vec<std::net::TcpStream>, Drain) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("bound");
    let (mut near, mut far) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let end = std::net::TcpStream::connect(addr).expect("connects");
        let (socket, _) = listener.accept().expect("accepts");
        socket.set_nonblocking(true).expect("non-blocking");
        socket.set_nodelay(true).expect("nodelay");
        end.set_nonblocking(true).expect("non-blocking");
        near.push(socket);
        far.push(end);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut buffer = vec![0u8; 64 << 10];
            while !stop.load(Relaxed) {
                for end in &mut far {
                    while let Ok(1..) = end.read(&mut buffer) {}
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    (near, Drain { stop, thread })
}

struct Drain {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Drain {
    fn stop(self) {
        self.stop.store(true, Relaxed);
        self.thread.join().expect("the drain ends");
    }
}

criterion_group!(benches, tick, stages, frame_stages);
criterion_main!(benches);
