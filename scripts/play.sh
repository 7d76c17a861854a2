#!/usr/bin/env bash
# Builds arena in release and starts the server, with a few bots to play
# against. Ctrl-C stops everything.
#
#   scripts/play.sh            (flags after it go to arena-server, e.g. --tick-rate 60)
#   ARENA_BOTS=0 scripts/play.sh   for no bots
set -euo pipefail
cd "$(dirname "$0")/.."

bots=${ARENA_BOTS:-4}
cargo build --release -p arena-server -p arena-client --bins

target/release/arena-server "$@" &
server=$!
trap 'kill $bots_pid 2>/dev/null || true; kill $server 2>/dev/null || true; wait' EXIT INT TERM
sleep 1
bind=${ARENA_BIND:-0.0.0.0:7777}
port=${bind##*:}
bots_pid=""
if [ "$bots" -gt 0 ]; then
  target/release/arena-bots --url "ws://127.0.0.1:$port/ws" --count "$bots" --duration 86400 \
    --behaviour wander --name-prefix "bot-" --quiet >/dev/null &
  bots_pid=$!
fi
wait "$server"
