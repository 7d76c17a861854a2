#!/usr/bin/env bash
# Cluster load test: Redis and 3 release arena-server nodes on loopback,
# BOTS bots in rooms of 20 spread over the nodes, then a rolling drain of
# every node (SIGTERM, restart on the same port) while they play. First,
# the same bots on one plain node, for the CPU a player costs there.
#
#   scripts/cluster.sh [BOTS] [SECONDS]     (default 600 100)
#
# Reports per node: players, the bots' frames per second, tick p99 and
# CPU over a steady window; Redis commands per second (those its Lua
# scripts run included), the script calls among them, and Redis's own CPU;
# and, from the bots, players lost, points lost and the worst reconnect gap
# over the drains. Exits non-zero if any bot failed, lost its player or
# lost points. ARENA_INPUT_LOG=false runs the nodes without the input log
# (checkpoints only), for its cost.
set -euo pipefail
cd "$(dirname "$0")/.."

bots=${1:-600}
secs=${2:-100}
nodes=3
room=20
base=${ARENA_CLUSTER_PORT:-17800}
redis_port=$((base + 9))
warmup=15
window=20
(( bots % (nodes * room) == 0 )) || { echo "BOTS must be a multiple of $((nodes * room))" >&2; exit 2; }
(( secs >= warmup + window + 45 )) || { echo "SECONDS must be at least $((warmup + window + 45))" >&2; exit 2; }

echo "==> building release binaries" >&2
cargo build --release --quiet -p arena-server -p arena-bots --bins

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
healthz() { curl -fsS "http://127.0.0.1:$1/healthz" 2>/dev/null || echo '{}'; }
node_pid=()

# start_node I [--redis]: a node on port base+I, logging to $work/node-I.log.
start_node() {
  local i=$1 port=$((base + $1)) cluster=()
  if [ "${2:-}" = --redis ]; then
    cluster=(--redis-url "redis://127.0.0.1:$redis_port" --node-url "http://127.0.0.1:$port"
      --lease-ms 3000 --checkpoint-ms 2000 --drain-secs 15)
  fi
  RUST_LOG=info target/release/arena-server --bind "127.0.0.1:$port" --max-players 64 "${cluster[@]}" \
    >>"$work/node-$i.log" 2>&1 &
  node_pid[i]=$!
  pids+=("$!")
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $i did not start:" >&2
  tail -20 "$work/node-$i.log" >&2
  exit 1
}

# measure PIDS...: each process's CPU over the window, in clock ticks.
measure() {
  local before=() after=() i
  for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
  sleep "$window"
  for pid in "$@"; do after+=("$(cpu_ticks "$pid")"); done
  for i in "${!before[@]}"; do echo $(( after[i] - before[i] )); done
}

echo "==> one plain node: $bots bots in rooms of $room for $((warmup + window)) s" >&2
start_node 0
target/release/arena-bots --url "ws://127.0.0.1:$base/ws" --count "$bots" --rooms $((bots / room)) \
  --duration $((warmup + window + 5)) --quiet --json >"$work/single.json" &
single_bots=$!
sleep "$warmup"
single_health=$(healthz "$base")
single_cpu=$(measure "${node_pid[0]}")
wait "$single_bots" || true
kill -TERM "${node_pid[0]}"; wait "${node_pid[0]}" 2>/dev/null || true

echo "==> redis-server on $redis_port and $nodes cluster nodes" >&2
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
redis=$!
pids+=("$redis")
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
for i in $(seq 1 $nodes); do start_node "$i" --redis; done
# redis_counts: total commands, script calls (EVALSHA and EVAL) and CPU
# seconds (user + system), on one line.
redis_counts() {
  redis-cli -p "$redis_port" info all | tr -d '\r' | awk -F'[:=,]' '
    /^total_commands_processed:/ {total = $2}
    /^cmdstat_evalsha:/ || /^cmdstat_eval:/ {calls += $3}
    /^used_cpu_sys:/ || /^used_cpu_user:/ {cpu += $2}
    END {printf "%d %d %.3f\n", total, calls, cpu}'
}
live_nodes() { curl -fsS "http://127.0.0.1:$((base + 1))/api/cluster" 2>/dev/null |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0; }
for _ in $(seq 50); do [ "$(live_nodes)" = "$nodes" ] && break; sleep 0.2; done

echo "==> $bots bots, $((bots / nodes)) per node in rooms of $room, for $secs s" >&2
bot_pids=()
for i in $(seq 1 $nodes); do
  target/release/arena-bots --url "ws://127.0.0.1:$((base + i))/ws" --count $((bots / nodes)) \
    --rooms $((bots / nodes / room)) --duration "$secs" --reconnect-secs 30 --name-prefix "n$i-" \
    --quiet --json >"$work/bots-$i.json" &
  bot_pids+=("$!")
  pids+=("$!")
done
started=$(date +%s)
sleep "$warmup"
for i in $(seq 1 $nodes); do healthz $((base + i)) >"$work/health-$i.json"; done
commands_before=$(redis_counts)
mapfile -t cluster_cpu < <(measure "${node_pid[@]:1}")
commands_after=$(redis_counts)
for i in $(seq 1 $nodes); do healthz $((base + i)) >"$work/health-after-$i.json"; done

for i in $(seq 1 $nodes); do
  echo "==> draining node $i (SIGTERM), then starting it again on its port" >&2
  drained_at=$(date +%s%N)
  kill -TERM "${node_pid[i]}"
  wait "${node_pid[i]}" 2>/dev/null || true
  echo "    node $i stopped after $(( ($(date +%s%N) - drained_at) / 1000000 )) ms" >&2
  start_node "$i" --redis
  for _ in $(seq 100); do [ "$(live_nodes)" = "$nodes" ] && break; sleep 0.1; done
  sleep 5
done
left=$(( secs - ($(date +%s) - started) ))
echo "==> drains done; the bots play on for ${left} s more" >&2
status=0
for pid in "${bot_pids[@]}"; do wait "$pid" || status=1; done

python3 - "$work" "$nodes" "$clk" "$window" "$bots" "$single_health" "$single_cpu" \
  "${cluster_cpu[*]}" "$commands_before" "$commands_after" "${ARENA_INPUT_LOG:-true}" <<'PY' || status=1
import json, sys
work, nodes, clk, window, bots = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
single_health, single_cpu = json.loads(sys.argv[6]), int(sys.argv[7])
cluster_cpu = [int(x) for x in sys.argv[8].split()]
(total0, calls0, cpu0), (total1, calls1, cpu1) = [[float(x) for x in sys.argv[i].split()] for i in (9, 10)]
load = lambda path: json.load(open(path))
single = load(f"{work}/single.json")
cpu_pct = lambda ticks: 100.0 * ticks / clk / window
per_node = []
for i in range(1, nodes + 1):
    health, bots_report = load(f"{work}/health-{i}.json"), load(f"{work}/bots-{i}.json")
    per_node.append({
        "node": i,
        "players": health.get("players"),
        "rooms": health.get("rooms"),
        "bots_frames_per_sec": round(bots_report["frames_per_sec"], 1),
        "tick_p99_micros": load(f"{work}/health-after-{i}.json").get("tick_micros_p99"),
        "cpu_percent_of_one_core": round(cpu_pct(cluster_cpu[i - 1]), 1),
    })
reports = [load(f"{work}/bots-{i}.json") for i in range(1, nodes + 1)]
players = sum(n["players"] or 0 for n in per_node)
cluster_per_player = sum(cpu_pct(t) for t in cluster_cpu) / max(players, 1)
single_players = single_health.get("players") or 0
single_per_player = cpu_pct(single_cpu) / max(single_players, 1)
summary = {
    "single_node": {
        "players": single_players,
        "cpu_percent_of_one_core": round(cpu_pct(single_cpu), 1),
        "tick_p99_micros": single_health.get("tick_micros_p99"),
        "bots_frames_per_sec": round(single["frames_per_sec"], 1),
    },
    "nodes": per_node,
    "input_log": sys.argv[11] != "false",
    "redis_commands_per_sec": round((total1 - total0) / window, 1),
    "redis_script_calls_per_sec": round((calls1 - calls0) / window, 1),
    "redis_cpu_percent_of_one_core": round(100.0 * (cpu1 - cpu0) / window, 1),
    "cpu_per_player": {
        "single_node_percent": round(single_per_player, 4),
        "cluster_percent": round(cluster_per_player, 4),
        "cluster_over_single": round(cluster_per_player / single_per_player, 3) if single_per_player else None,
    },
    "bots": {
        "connected": sum(r["connected"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
        "protocol_errors": sum(r["protocol_errors"] for r in reports),
        "disconnected": sum(r["disconnected"] for r in reports),
        "reconnects": sum(r["reconnects"]["count"] for r in reports),
        "players_lost": sum(r["reconnects"]["players_lost"] for r in reports),
        "points_lost": sum(r["reconnects"]["points_lost"] for r in reports),
        "worst_gap_ms": round(max(r["reconnects"]["worst_gap_ms"] for r in reports), 1),
        "errors": sorted({e for r in reports for e in r["errors"]})[:5],
    },
}
print(json.dumps(summary, indent=2))
b = summary["bots"]
bad = b["failed"] or b["protocol_errors"] or b["disconnected"] or b["players_lost"] or b["points_lost"]
sys.exit(1 if bad else 0)
PY
exit "$status"
