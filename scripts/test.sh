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

step "build the browser client (dist/) and the self-contained server (target/bundle/)"
scripts/release.sh

step "benchmarks, once each as tests (their setups assert what they time)"
cargo test --workspace --benches --locked --quiet

step "tests (unit, property, end-to-end, browser)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo's last summary is the (empty) doc-test run: say the real total.
totals=$(awk '/^test result:/ {passed += $4; failed += $6} END {printf "%d passed, %d failed", passed, failed}' "$log")

step "checks took $(( $(date +%s) - started ))s"
echo "tests: $totals"
exit "$status"
