#!/usr/bin/env bash
# A first visit's timeline in headless Chromium, median of RUNS (default 5):
# navigation → HTML → game started → join screen, and → playing. Builds the
# client and a release server, serves dist/ on loopback, measures, stops.
#
#   scripts/first-load.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
ARENA_SKIP_DENY=1 scripts/setup.sh
scripts/build-client.sh
echo "==> cargo build --release (server, and the measuring example)" >&2
cargo build --release --quiet -p arena-server --bin arena-server
cargo build --release --quiet -p arena-tests --example first_load

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn target/release/arena-server --bind "127.0.0.1:$port" --web-dir dist >/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "==> $runs first visits (a new browser each, nothing cached)" >&2
target/release/examples/first_load "http://127.0.0.1:$port" "$runs"
