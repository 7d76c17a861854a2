//! `arena-client`: the browser build's entry point (built by trunk).

#[cfg(target_arch = "wasm32")]
fn main() {
    arena_client::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "arena-client is the browser client: build it with `trunk build` (see README) and open the page.\n\
         For native clients, run `arena-bots`."
    );
    std::process::exit(2);
}
