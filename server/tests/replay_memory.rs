//! What keeping rounds really costs: the replay store's count against
//! `--replay-memory-mb` is held to the heap jemalloc reports, with the
//! server's own allocator. A store that counted only the compressed
//! bytes kept ten times its cap in tiny rounds.

#![cfg(unix)]

use arena_server::room::replays::{ROUND_OVERHEAD_BYTES, ReplayStore};
use arena_shared::game::{Match, MatchSettings};
use arena_shared::replay::{Recorder, Replay};
use arena_shared::sim::Input;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The heap is the process's: one test measures it at a time.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Bytes the process has allocated now.
fn allocated() -> usize {
    tikv_jemalloc_ctl::epoch::advance().expect("jemalloc's statistics");
    tikv_jemalloc_ctl::stats::allocated::read().expect("jemalloc's statistics")
}

/// The smallest round there is: one player, one tick (what a host ending
/// rounds at will leaves).
fn tiny_round() -> Replay {
    let mut game = Match::new(MatchSettings::new(30, 60, 5, 8));
    game.spawn(1);
    let mut recorder = Recorder::new(&game, Vec::new(), 30);
    game.advance();
    recorder.end_tick(&game);
    recorder.finish()
}

#[test]
fn a_store_full_of_tiny_rounds_holds_no_more_heap_than_its_cap() {
    const CAP: usize = 1 << 20;
    let _alone = MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let round = tiny_round();
    let encoded = round.encode().len();
    let before = allocated();
    let store = ReplayStore::new(CAP, None);
    // 40 private rooms and 10 public ones, far more rounds than fit.
    for n in 0..20_000u32 {
        let room = format!("room{:06}", n % 50);
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        store.keep(id, &room, n % 50 < 40, &round).expect("a tiny round fits");
    }
    let held = allocated().saturating_sub(before);
    let rounds = store.rounds();
    println!(
        "{rounds} rounds of {encoded} bytes kept: {held} bytes of heap ({} a round), {} counted",
        held / rounds.max(1),
        store.used()
    );
    assert!(store.used() <= CAP, "the count stays under the cap");
    assert!(held <= CAP, "the heap the store holds ({held} bytes) stays under its cap ({CAP})");
    assert!(
        held / rounds <= encoded + ROUND_OVERHEAD_BYTES,
        "a round costs at most its bytes and the overhead counted for it"
    );
    drop(store);
    let after = allocated().saturating_sub(before);
    assert!(after < 64 * 1024, "all of it is freed with the store: {after} bytes left");
}

/// Bytes this thread has allocated and not freed since it started, in
/// jemalloc's size classes: exact, where the process-wide count also holds
/// the blocks a thread's cache keeps.
fn held_by_this_thread() -> i64 {
    let read = |counter: u64| i64::try_from(counter).expect("a count of bytes");
    let allocated = tikv_jemalloc_ctl::thread::allocatedp::read().expect("jemalloc's statistics").get();
    let freed = tikv_jemalloc_ctl::thread::deallocatedp::read().expect("jemalloc's statistics").get();
    read(allocated) - read(freed)
}

/// The heap a round of `players` wandering players grows by in `secs`,
/// recorded (`Some`: the recorder, still held) or not.
fn play_wanderers(players: u16, secs: u32, record: bool) -> (Option<Recorder>, usize) {
    let mut game = Match::new(MatchSettings::new(30, 600, 5, 64));
    for id in 1..=players {
        game.spawn(id);
    }
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut stick = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 255) as i8
    };
    let before = held_by_this_thread();
    let mut recorder = record.then(|| Recorder::new(&game, Vec::new(), 30));
    for tick in 0..secs * 30 {
        for id in 1..=players {
            for _ in 0..2 {
                // A wanderer turns now and then, and dashes rarely.
                let turn = tick % 20 == u32::from(id) % 20;
                let input = if turn {
                    Input { x: stick(), y: stick(), dash: tick % 90 == 0 }
                } else {
                    Input::default()
                };
                game.apply_input(id, input);
                if let Some(recorder) = &mut recorder {
                    recorder.input(id, input);
                }
            }
        }
        game.advance();
        if let Some(recorder) = &mut recorder {
            recorder.end_tick(&game);
        }
    }
    let grown = usize::try_from(held_by_this_thread() - before).unwrap_or(0);
    (recorder, grown)
}

#[test]
fn a_round_being_recorded_counts_the_heap_it_holds() {
    let _alone = MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (players, secs) in [(1, 1), (20, 10), (20, 60), (60, 30)] {
        let (_, game) = play_wanderers(players, secs, false);
        let (recorder, grown) = play_wanderers(players, secs, true);
        let (held, counted) = (grown.saturating_sub(game), recorder.expect("recorded").held_bytes());
        println!("{players} players, {secs} s: the recording holds {held} bytes of heap, {counted} counted");
        assert!(counted >= held * 9 / 10, "{players} × {secs} s: counted {counted}, held {held}");
        assert!(counted <= held * 5 / 4 + 2048, "{players} × {secs} s: counted {counted}, held {held}");
    }
}
