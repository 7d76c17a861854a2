//! `arena-server`: the game server (see `arena_server::cli`).

// jemalloc with its background thread returns freed memory to the OS within
// seconds, so RSS falls back after a connection flood.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    arena_server::cli::main()
}
