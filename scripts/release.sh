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

# Before saying so, check the file we made serves the game: start it on a
# free loopback port, fetch the page and the wasm it names, compare with dist/.
echo "==> checking target/bundle/arena-server serves the page and the wasm" >&2
log=$(mktemp)
target/bundle/arena-server --bind 127.0.0.1:0 --replay-memory-mb 0 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT
base=""
for _ in $(seq 100); do
  base=$(sed -n 's/^arena-server listening on \(http[^ ]*\)$/\1/p' "$log")
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
fail() { echo "error: target/bundle/arena-server $*" >&2; cat "$log" >&2; exit 1; }
[ -n "$base" ] || fail "did not start"
page=$(curl -sf "$base/") || fail "answers no page at / ($base/)"
grep -q 'arena-canvas' <<<"$page" || fail "serves a page at / that is not the game's"
wasm=$(grep -o '[A-Za-z0-9_.-]*_bg\.wasm' <<<"$page" | head -1)
[ -n "$wasm" ] || fail "serves a page that names no wasm"
served=$(curl -sf -H 'accept-encoding: br' "$base/$wasm" | wc -c) || fail "does not serve /$wasm"
[ "$served" = "$(stat -c %s "dist/$wasm.br")" ] || fail "serves /$wasm as $served bytes, not dist/'s $(stat -c %s "dist/$wasm.br")"

size=$(stat -c %s target/bundle/arena-server)
awk -v size="$size" -v wasm="$wasm" 'BEGIN { printf "==> target/bundle/arena-server: %d bytes (%.1f MiB), the game inside (its page and %s checked); run it from anywhere\n", size, size / 1048576, wasm }' >&2
