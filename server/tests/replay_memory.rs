//! What keeping rounds really costs: the replay store's count against
//! `--replay-memory-mb` is held to the heap jemalloc reports, with the
//! server's own allocator. A store that counted only the compressed
//! bytes kept ten times its cap in tiny rounds.

#![cfg(unix)]

use arena_server::room::replays::{ROUND_OVERHEAD_BYTES, ReplayStore};
use arena_shared::game::{Match, MatchSettings};
use arena_shared::replay::{Recorder, Replay};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
