#!/usr/bin/env bash
# Builds the one file a host needs: the browser client (trunk, into dist/)
# and then an arena-server that carries dist/ inside it (cargo feature
# embed-client). Copy target/bundle/arena-server anywhere and run it.
set -euo pipefail
cd "$(dirname "$0")/.."

ARENA_SKIP_BROWSER=1 ARENA_SKIP_DENY=1 scripts/setup.sh
scripts/build-client.sh
echo "==> cargo build --release -p arena-server --features embed-client" >&2
cargo build --release --locked -p arena-server --features embed-client
mkdir -p target/bundle
cp target/release/arena-server target/bundle/arena-server
size=$(stat -c %s target/bundle/arena-server)
awk -v size="$size" 'BEGIN { printf "==> target/bundle/arena-server: %d bytes (%.1f MiB), the game inside; run it from anywhere\n", size, size / 1048576 }' >&2
