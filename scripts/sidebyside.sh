#!/usr/bin/env bash
# Side by side, on this machine, in one run: what arena's server spends to
# deliver a frame, against a minimal full-state broadcast server
# (arena-hub: tokio-tungstenite, everyone gets everything every tick, in
# the style of a gorilla/websocket hub) and against the machine's floor
# (arena-floor: one non-blocking 100-byte write per socket per tick, from
# one thread, the receiving ends drained by another).
#
#   scripts/sidebyside.sh [PLAYERS] [SECONDS] [ROOM_SIZE]  (default 500 20 PLAYERS)
#
# arena and the hub each get PLAYERS light bots (arena-bots --light) at
# 30 Hz, arena's in rooms of ROOM_SIZE (one room by default; the hub has
# one room). The floor probe writes to PLAYERS sockets twice: read by a
# sweep a millisecond (the floor the issue names), and read by a task
# waiting on each socket that sends a 20-byte input back per frame, which
# the probe reads once a tick (the floor for a server with real clients:
# a frame out and an input in per player per tick). For each:
# the server's CPU over a steady window (from 6 s in to 2 s before the
# end), the frames the bots got a second, and µs of server CPU per
# delivered frame. The bots share the machine's two cores with the
# server. Prints one JSON summary. ARENA_SERVER_BIN runs another build of
# arena-server (an older commit's, to compare) in arena's place.
set -euo pipefail
cd "$(dirname "$0")/.."

players=${1:-500}
secs=${2:-20}
room_size=${3:-$players}
(( secs >= 12 )) || { echo "SECONDS must be at least 12" >&2; exit 2; }
(( room_size >= 1 && room_size <= 512 && players % room_size == 0 )) ||
  { echo "ROOM_SIZE must divide PLAYERS and be 1 to 512" >&2; exit 2; }
rooms=$(( players / room_size ))
window=$((secs - 8))
port=${ARENA_SIDEBYSIDE_PORT:-17790}

echo "==> building release binaries" >&2
cargo build --release --quiet -p arena-server -p arena-bots -p arena-baseline --bins

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME URL: PLAYERS bots against the server already started as $server;
# writes $work/NAME-bots.json (their report) and NAME-server.json (its CPU
# over the window).
run() {
  local name=$1 url=$2 before after started ended bots
  target/release/arena-bots --url "$url" --count "$players" --rooms "${3:-1}" --duration "$secs" \
    --behaviour wander --light --json --quiet >"$work/$name-bots.json" &
  bots=$!
  sleep 6
  before=$(cpu_ticks "$server")
  started=$(date +%s%N)
  sleep "$window"
  ended=$(date +%s%N)
  after=$(cpu_ticks "$server")
  wait "$bots" || true
  printf '{"cpu_ticks": %s, "wall_ns": %s, "clk": %s}\n' "$((after - before))" "$((ended - started))" "$clk" \
    >"$work/$name-server.json"
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}

wait_http() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1:" >&2
  cat "$work"/*.log >&2
  exit 1
}

echo "==> the floor: $players sockets, 100 bytes each, 30 times a second" >&2
target/release/arena-floor --sockets "$players" --bytes 100 --rate 30 --secs "$secs" >"$work/floor.json"
echo "==> the floor for clients: readers waiting on their sockets, a 20-byte input back per frame" >&2
target/release/arena-floor --sockets "$players" --bytes 100 --rate 30 --secs "$secs" \
  --receivers wait --input-bytes 20 >"$work/client-floor.json"

echo "==> arena-server: $players bots in $rooms room(s) for $secs s" >&2
RUST_LOG=warn "${ARENA_SERVER_BIN:-target/release/arena-server}" --bind "127.0.0.1:$port" --room-size "$room_size" \
  --max-rooms "$(( rooms * 4 / 3 + 2 ))" >"$work/arena.log" 2>&1 &
server=$!
wait_http "$port"
run arena "ws://127.0.0.1:$port/ws" "$rooms"

echo "==> arena-hub: $players bots for $secs s" >&2
target/release/arena-hub --bind "127.0.0.1:$port" --max-players "$players" >"$work/hub.log" 2>&1 &
server=$!
wait_http "$port"
run hub "ws://127.0.0.1:$port/ws"

python3 - "$work" "$players" <<'PY'
import json, sys
work, players = sys.argv[1], int(sys.argv[2])
load = lambda name: json.load(open(f"{work}/{name}"))
out = {"players": players}
for name in ("floor", "client-floor"):
    floor = load(f"{name}.json")
    out[name] = {
        "cpu_percent_of_one_core": floor["cpu_percent_of_one_core"],
        "busy_percent_of_one_core": floor["busy_percent_of_one_core"],
        "micros_per_delivered_frame": floor["micros_per_write"],
        "cpu_micros_per_delivered_frame": floor["cpu_micros_per_write"],
        "would_block": floor["would_block"],
    }
for name in ("arena", "hub"):
    bots, server = load(f"{name}-bots.json"), load(f"{name}-server.json")
    cpu_secs = server["cpu_ticks"] / server["clk"]
    wall = server["wall_ns"] / 1e9
    delivered = bots["frames_per_sec"] * bots["connected"] * wall
    out[name] = {
        "connected": bots["connected"],
        "failed": bots["failed"],
        "frames_per_sec_per_bot": round(bots["frames_per_sec"], 2),
        "tick_gaps": bots["tick_gaps"],
        "cpu_percent_of_one_core": round(100.0 * cpu_secs / wall, 1),
        "micros_per_delivered_frame": round(cpu_secs * 1e6 / max(delivered, 1), 2),
        "down_bytes_per_bot_per_sec": round(bots["down_bytes_per_sec"]),
    }
f = out["floor"]["micros_per_delivered_frame"]
c = out["client-floor"]["cpu_micros_per_delivered_frame"]
for name in ("arena", "hub"):
    out[name]["over_the_floor"] = round(out[name]["micros_per_delivered_frame"] / f, 2) if f else None
    out[name]["over_the_client_floor"] = round(out[name]["micros_per_delivered_frame"] / c, 2) if c else None
print(json.dumps(out, indent=2))
PY
