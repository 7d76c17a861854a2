#!/usr/bin/env bash
# Capacity: ROOMS rooms of BOTS bots each against one release arena-server
# on loopback, at 30 Hz. Prints the bots' figures, every room's tick time
# (p50/p99, from the server's histogram) and the server's CPU and memory.
#
#   scripts/capacity.sh [ROOMS] [BOTS_PER_ROOM] [SECONDS]   (default 50 20 20: 1,000 players)
#   scripts/capacity.sh 1 300                                the largest single room
#
# The bots share the machine's two cores with the server, so the server's
# figures are upper bounds. They are light bots (arena-bots --light): the
# same messages as the page's, without the interpolation nobody draws.
# Memory: the server's RSS before the bots (idle), while they all play
# (steady, three quarters into the run) and at its peak, and per connection
# above idle; and, at the steady sample, what the rounds being recorded
# hold (from a pool of half of --replay-memory-mb, `/metrics`) and the
# steady figure per connection with that set aside. Targets live here and
# in the README, not in tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rooms=${1:-50}
per_room=${2:-20}
secs=${3:-20}
port=${ARENA_CAPACITY_PORT:-17779}
count=$(( rooms * per_room ))

echo "building release binaries..." >&2
cargo build --release --quiet -p arena-server -p arena-bots --bins

log=$(mktemp)
# Per-room tick figures are for operators: this run is one, with its own token.
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The bots open private rooms; a quarter of --max-rooms stays for public play.
RUST_LOG=warn ARENA_ADMIN_TOKEN="$token" target/release/arena-server --bind "127.0.0.1:$port" \
  --max-rooms "$(( rooms * 4 / 3 + 2 ))" --room-size "$(( per_room > 512 ? 512 : per_room ))" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done

clk=$(getconf CLK_TCK)
rss_now() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
idle_kb=$(rss_now)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
start_cpu=$(cpu_ticks)
start_ns=$(date +%s%N)
echo "running $count bots in $rooms rooms for ${secs}s..." >&2
steady_file=$(mktemp)
recording_file=$(mktemp)
( sleep "$(( secs * 3 / 4 + 2 ))"; rss_now >"$steady_file"
  curl -fsS "http://127.0.0.1:$port/metrics" |
    awk '$1 == "arena_replay_recording_bytes" {print $2}' >"$recording_file" ) &
sampler=$!
report=$(target/release/arena-bots --url "ws://127.0.0.1:$port/ws" --count "$count" --rooms "$rooms" \
  --duration "$secs" --behaviour wander --light --json --quiet) || status=$?
wait "$sampler"
steady_kb=$(cat "$steady_file"); rm -f "$steady_file"
recording_bytes=$(cat "$recording_file"); rm -f "$recording_file"
end_cpu=$(cpu_ticks)
end_ns=$(date +%s%N)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
# The rooms are still open (they close when idle): read their tick figures.
health=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/healthz")

python3 - "$report" "$health" "$start_cpu" "$end_cpu" "$clk" "$start_ns" "$end_ns" "$rss_kb" "$idle_kb" "$steady_kb" "${recording_bytes:-0}" <<'PY'
import json, sys
report, health = json.loads(sys.argv[1]), json.loads(sys.argv[2])
start_cpu, end_cpu, clk = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
wall = (int(sys.argv[7]) - int(sys.argv[6])) / 1e9
rooms = health["room_list"]
p99s = [r["tick_micros_p99"] for r in rooms if r["tick_micros_p99"] is not None]
p50s = [r["tick_micros_p50"] for r in rooms if r["tick_micros_p50"] is not None]
summary = {
    "rooms": len(rooms),
    "bots_connected": report["connected"],
    "bots_failed": report["failed"],
    "bot_rooms": report["rooms"],
    "frames_per_sec_per_bot": round(report["frames_per_sec"], 2),
    "tick_gaps": report["tick_gaps"],
    "rtt_ms": report["rtt_ms"],
    # Histogram bucket bounds: "p99 <= 4000" means the 99th percentile tick
    # took at most 4 ms (and more than the bucket below, 2 ms).
    "room_tick_p50_micros_at_most": max(p50s) if p50s else None,
    "room_tick_p99_micros_at_most_worst_room": max(p99s) if p99s else None,
    "rooms_with_p99_over_4ms": sum(1 for p in p99s if p > 4000),
    "server_cpu_percent_of_one_core": round(100.0 * (end_cpu - start_cpu) / clk / wall, 1),
    "server_idle_rss_mib": round(int(sys.argv[9]) / 1024, 1),
    "server_steady_rss_mib": round(int(sys.argv[10]) / 1024, 1),
    "server_peak_rss_mib": round(int(sys.argv[8]) / 1024, 1),
    "steady_kb_per_connection": round((int(sys.argv[10]) - int(sys.argv[9])) * 1.024 / max(report["connected"], 1), 1),
    "peak_kb_per_connection": round((int(sys.argv[8]) - int(sys.argv[9])) * 1.024 / max(report["connected"], 1), 1),
    "recording_kb_per_connection": round(int(sys.argv[11]) / 1000 / max(report["connected"], 1), 1),
    "steady_kb_per_connection_recordings_aside": round(
        ((int(sys.argv[10]) - int(sys.argv[9])) * 1024 - int(sys.argv[11])) / 1000 / max(report["connected"], 1), 1),
    "bots_cpu": report["cpu"],
}
print(json.dumps(summary, indent=2))
PY
exit "${status:-0}"
