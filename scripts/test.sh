#!/usr/bin/env bash
# Every check arena has: formatting, clippy (native and wasm32), and every
# test (unit, property, end-to-end against the real server, and the browser
# test in headless Chromium). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
started=$(date +%s)

step "setup"
scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown -p arena-shared -p arena-client --all-targets --locked -- -D warnings

step "build the browser client (dist/)"
scripts/build-client.sh

step "tests (unit, property, end-to-end, browser)"
cargo test --workspace --locked

step "all checks passed in $(( $(date +%s) - started ))s"
