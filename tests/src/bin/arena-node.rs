//! `arena-node`: `arena-server` exactly (`arena_server::cli::main`), built
//! as this crate's binary so the multi-process tests find it where cargo
//! says (`CARGO_BIN_EXE_arena-node`) instead of building it themselves.

#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    arena_server::cli::main()
}
