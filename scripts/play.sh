#!/usr/bin/env bash
# Builds arena in release (server, bots, and the browser client into dist/)
# and starts the server serving the game, with a few bots to play against.
# Ctrl-C stops everything.
#
#   scripts/play.sh                   flags after it go to arena-server, e.g. --tick-rate 60
#   ARENA_BOTS=0 scripts/play.sh      no bots
set -euo pipefail
cd "$(dirname "$0")/.."

ARENA_SKIP_BROWSER=1 ARENA_SKIP_DENY=1 scripts/setup.sh
scripts/build-client.sh
cargo build --release -p arena-server -p arena-client --bins

bots=${ARENA_BOTS:-4}
log=$(mktemp)
target/release/arena-server --web-dir dist "$@" > >(tee "$log") &
server=$!
bots_pid=""
trap 'kill $bots_pid $server 2>/dev/null || true; wait 2>/dev/null; rm -f "$log"' EXIT INT TERM

# The bots connect wherever the server says it listens.
for _ in $(seq 100); do
  url=$(sed -n 's/^  websocket: //p' "$log" | head -1)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 0.1
done
if [ "$bots" -gt 0 ] && [ -n "$url" ]; then
  target/release/arena-bots --url "$url" --count "$bots" --duration 86400 --behaviour brawler \
    --name-prefix "bot-" --quiet >/dev/null &
  bots_pid=$!
fi
wait "$server"
