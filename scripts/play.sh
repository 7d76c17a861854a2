#!/usr/bin/env bash
# Builds arena in release (server, bots, and the browser client into dist/)
# and starts the server serving the game. A public room with fewer than 4
# people is topped up with the server's own bots (--fill-bots 4), which
# leave as people come. Ctrl-C stops everything.
#
#   scripts/play.sh                   flags after it go to arena-server, e.g. --tick-rate 60
#   ARENA_BOTS=0 scripts/play.sh      no fill bots
#   ARENA_BOTS=8 scripts/play.sh      rooms topped up to 8
set -euo pipefail
cd "$(dirname "$0")/.."

ARENA_SKIP_BROWSER=1 ARENA_SKIP_DENY=1 scripts/setup.sh
scripts/build-client.sh
cargo build --release -p arena-server -p arena-bots --bins

bots=${ARENA_BOTS:-4}
exec target/release/arena-server --web-dir dist --fill-bots "$bots" "$@"
