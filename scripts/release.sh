#!/usr/bin/env bash
# Builds the one file a host needs: the browser client (trunk, into dist/)
# and then an arena-server that carries dist/ inside it (cargo feature
# embed-client). Copy target/bundle/arena-server anywhere and run it.
set -euo pipefail
cd "$(dirname "$0")/.."

ARENA_SKIP_BROWSER=1 ARENA_SKIP_DENY=1 scripts/setup.sh
scripts/build-client.sh
# Profile `bundle` (Cargo.toml): release with fat LTO and no symbols; its
# output is target/bundle/arena-server.
echo "==> cargo build --profile bundle -p arena-server --features embed-client" >&2
cargo build --profile bundle --locked -p arena-server --features embed-client
size=$(stat -c %s target/bundle/arena-server)
awk -v size="$size" 'BEGIN { printf "==> target/bundle/arena-server: %d bytes (%.1f MiB), the game inside; run it from anywhere\n", size, size / 1048576 }' >&2
