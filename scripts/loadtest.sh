#!/usr/bin/env bash
# Load test: a release arena-server on loopback, N release bots against it.
# Prints the bots' JSON report plus the server's CPU, memory and tick times.
#
#   scripts/loadtest.sh [BOTS] [SECONDS] [BEHAVIOUR]     (default 200 20 wander)
#
# Targets live here, not in tests: see README "Performance".
set -euo pipefail
cd "$(dirname "$0")/.."

bots=${1:-200}
secs=${2:-20}
behaviour=${3:-wander}
port=${ARENA_LOADTEST_PORT:-17777}
tick_rate=${ARENA_TICK_RATE:-30}

echo "building release binaries..." >&2
cargo build --release --quiet -p arena-server -p arena-bots --bins

server_log=$(mktemp)
RUST_LOG=warn target/release/arena-server --bind "127.0.0.1:$port" --max-players 512 \
  --tick-rate "$tick_rate" >"$server_log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$server_log"' EXIT

for _ in $(seq 50); do
  grep -q "listening on" "$server_log" && break
  sleep 0.1
done
kill -0 "$server" 2>/dev/null || { cat "$server_log" >&2; exit 1; }

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
start_cpu=$(cpu_ticks)
start_ns=$(date +%s%N)

report=$(target/release/arena-bots --url "ws://127.0.0.1:$port/ws" --count "$bots" --duration "$secs" \
  --behaviour "$behaviour" --json) || status=$?

end_cpu=$(cpu_ticks)
end_ns=$(date +%s%N)
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
metric() { awk -v name="$1" '$1 == name {print $2}' <<<"$metrics"; }
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")

python3 - "$report" "$start_cpu" "$end_cpu" "$clk" "$start_ns" "$end_ns" "$rss_kb" \
  "$(metric arena_ticks_total)" "$(metric arena_tick_micros_total)" "$(metric arena_tick_micros_max)" \
  "$(metric arena_frames_dropped_total)" <<'PY'
import json, sys
report = json.loads(sys.argv[1])
start_cpu, end_cpu, clk = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wall = (int(sys.argv[6]) - int(sys.argv[5])) / 1e9
ticks = int(sys.argv[8] or 0)
report["server"] = {
    "cpu_percent_of_one_core": round(100.0 * (end_cpu - start_cpu) / clk / wall, 1),
    "peak_rss_mib": round(int(sys.argv[7]) / 1024, 1),
    "ticks": ticks,
    "mean_tick_micros": round(int(sys.argv[9] or 0) / ticks, 1) if ticks else None,
    "max_tick_micros": int(sys.argv[10] or 0),
    "frames_dropped": int(sys.argv[11] or 0),
}
print(json.dumps(report, indent=2))
PY
exit "${status:-0}"
