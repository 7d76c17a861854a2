//! With the `embed-client` feature the binary carries trunk's `dist/`: a
//! build without a built page in it would serve 404 at `/`, so it stops
//! here with what to do instead.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-env-changed=CARGO_FEATURE_EMBED_CLIENT");
    if std::env::var_os("CARGO_FEATURE_EMBED_CLIENT").is_none() {
        return;
    }
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    println!("cargo::rerun-if-changed={}", dist.display());
    let page = dist.join("index.html.br");
    let wasm = std::fs::read_dir(&dist)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_str().is_some_and(|name| name.ends_with(".wasm.br")));
    if !page.is_file() || !wasm {
        eprintln!(
            "error: the embed-client feature needs the built client in dist/ (index.html.br and the \
             wasm's .br), and {} holds {}. Build it with scripts/build-client.sh, or the whole \
             one-file server with scripts/release.sh.",
            dist.display(),
            if page.is_file() { "no compressed wasm" } else { "no compressed page" },
        );
        std::process::exit(1);
    }
}
