#!/usr/bin/env bash
# Every check arena has: formatting, clippy (native, wasm32, and the server
# with the client built in; functions of at most 80 lines), cargo deny,
# cargo machete, and every test (unit, property,
# end-to-end against the real server, and the browser test in headless
# Chromium). Installs what it needs first. Ends with one line of totals;
# tests skipped (ARENA_SKIP_BROWSER=1) are counted as skipped, not passed.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
# Each step says when it starts, in seconds since the checks began.
step() { printf '\n\033[1m==> [%4ss] %s\033[0m\n' "$(( $(date +%s) - started ))" "$*" >&2; }

step "setup"
scripts/setup.sh

# The browser client and the one-file server build beside the checks below:
# their profiles (wasm-release, bundle) share nothing with the checks' and
# cargo locks each profile's folder apart, and their long single-threaded
# LTO ends fill the core the checks leave idle. Waited for before the
# checks that need dist/.
step "build the browser client (dist/) and the self-contained server (target/bundle/), in the background"
release_log=$(mktemp)
scripts/release.sh >"$release_log" 2>&1 &
release=$!
# A check that fails stops the build too (it and every process under it).
stop_tree() {
  local child
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do stop_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
trap 'stop_tree "$release"; rm -f "$release_log"' EXIT

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown -p arena-shared -p arena-client-core -p arena-client --all-targets --locked -- -D warnings

step "cargo deny: licences, bans, sources (deny.toml)"
cargo deny --locked check --hide-inclusion-graph bans licenses sources

step "cargo machete: no dependency that no code uses"
cargo machete

step "benchmarks, once each as tests (their setups assert what they time)"
cargo test --workspace --benches --locked --quiet

step "build the tests"
cargo test --workspace --locked --no-run

step "waiting for the browser client and the self-contained server"
if ! wait "$release"; then
  cat "$release_log"
  echo "scripts/release.sh failed (its log is above)" >&2
  exit 1
fi
grep '^==>' "$release_log"
rm -f "$release_log"
trap - EXIT

step "clippy (the server with the client built in: feature embed-client)"
cargo clippy -p arena-server --features embed-client --all-targets --locked -- -D warnings

step "tests (unit, property, end-to-end, browser; and the embed-client unit tests)"
log=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
set +e
ARENA_SKIP_LOG="$skips" cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
cargo test -p arena-server --features embed-client --lib --locked 2>&1 | tee -a "$log"
embedded=${PIPESTATUS[0]}
set -e
[ "$status" = 0 ] && status=$embedded
skipped=$(wc -l <"$skips")
if [ "$skipped" -gt 0 ]; then
  step "skipped tests"
  cat "$skips"
fi
# cargo's last summary is the (empty) doc-test run: say the real total. A
# skipped test returns early and cargo counts it passed; count it skipped.
totals=$(awk -v skipped="$skipped" '/^test result:/ {passed += $4; failed += $6}
  END {printf "%d passed, %d failed, %d skipped", passed - skipped, failed, skipped}' "$log")

step "checks took $(( $(date +%s) - started ))s"
echo "tests: $totals"
exit "$status"
