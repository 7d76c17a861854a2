#!/usr/bin/env bash
# Cluster drills on loopback with release nodes and real bots; each prints
# one JSON summary and exits non-zero if a bot failed or lost its player.
#
#   scripts/cluster-drill.sh crash [BOTS]      (default 120)
#     Redis and 3 nodes; BOTS bots in 6 private rooms, all opened on node 1
#     (which the bots also asked first); node 1 is killed (SIGKILL) and
#     started again 6 s later. Reports players and points lost, the most
#     ticks any room came back behind what its players had seen, the worst
#     reconnect gap, the longest any bot went without a frame, which nodes
#     restored the rooms and how many ticks they re-ran from the input log.
#
#   scripts/cluster-drill.sh sentinel [BOTS]
#     A Redis primary, two replicas and three Sentinels (down after 1 s);
#     3 nodes through the Sentinels; BOTS bots in 6 rooms; the primary is
#     killed (SIGKILL). Reports the same, the longest silence being the
#     longest any room paused.
#
# ARENA_LEASE_MS (default 3000) sets the nodes' --lease-ms, to show the
# trade: a longer lease rides out longer failovers, a shorter one brings a
# crashed node's rooms back sooner. ARENA_INPUT_LOG=false runs the nodes
# without the input log (checkpoints only), for the comparison. With the
# log, a point lost or a tick taken back fails the drill.
set -euo pipefail
cd "$(dirname "$0")/.."

drill=${1:-}
bots=${2:-120}
[[ "$drill" == crash || "$drill" == sentinel ]] || { echo "usage: scripts/cluster-drill.sh crash|sentinel [BOTS]" >&2; exit 2; }
(( bots % 6 == 0 )) || { echo "BOTS must be a multiple of 6 (six rooms)" >&2; exit 2; }
base=${ARENA_CLUSTER_PORT:-17850}
lease_ms=${ARENA_LEASE_MS:-3000}
secs=40

echo "==> building release binaries" >&2
cargo build --release --quiet -p arena-server -p arena-bots --bins

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$((base + 10))
sentinel_ports=($((base + 20)) $((base + 21)) $((base + 22)))
# redis I ARGS...: a redis-server on redis_port+I in its own folder.
redis() {
  local port=$((redis_port + $1)); shift
  mkdir -p "$work/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/redis-$port" \
    --repl-diskless-sync-delay 0 "$@" >"$work/redis-$port.log" 2>&1 &
  pids+=("$!")
  redis_pid[$port]=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server on $port did not start" >&2; exit 1
}
declare -A redis_pid
commands() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }

if [ "$drill" = crash ]; then
  redis 0
  cluster=(--redis-url "redis://127.0.0.1:$redis_port")
else
  redis 0
  redis 1 --replicaof 127.0.0.1 "$redis_port"
  redis 2 --replicaof 127.0.0.1 "$redis_port"
  for port in "${sentinel_ports[@]}"; do
    printf 'port %s\nbind 127.0.0.1\nsentinel monitor arena 127.0.0.1 %s 2\nsentinel down-after-milliseconds arena 1000\nsentinel failover-timeout arena 5000\n' \
      "$port" "$redis_port" >"$work/sentinel-$port.conf"
    redis-sentinel "$work/sentinel-$port.conf" >"$work/sentinel-$port.log" 2>&1 &
    pids+=("$!")
  done
  cluster=(--redis-master arena)
  for port in "${sentinel_ports[@]}"; do cluster+=(--redis-sentinel "127.0.0.1:$port"); done
  echo "==> waiting for the Sentinels to find each other and both replicas" >&2
  for _ in $(seq 300); do
    ready=0
    for port in "${sentinel_ports[@]}"; do
      redis-cli -p "$port" sentinel master arena 2>/dev/null | paste - - |
        awk '$1 == "num-slaves" && $2 == 2 {s=1} $1 == "num-other-sentinels" && $2 == 2 {o=1} END {exit !(s && o)}' &&
        ready=$((ready + 1))
    done
    [ "$ready" = 3 ] && break
    sleep 0.1
  done
fi

declare -A node_pid
start_node() {
  local i=$1 port=$((base + $1))
  RUST_LOG=info target/release/arena-server --bind "127.0.0.1:$port" --max-players 64 "${cluster[@]}" \
    --node-url "http://127.0.0.1:$port" --lease-ms "$lease_ms" --checkpoint-ms 2000 >>"$work/node-$i.log" 2>&1 &
  node_pid[$i]=$!
  pids+=("$!")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "node $i did not start:" >&2; tail -20 "$work/node-$i.log" >&2; exit 1
}
for i in 1 2 3; do start_node "$i"; done
live_nodes() { curl -fsS "http://127.0.0.1:$((base + 1))/api/cluster" 2>/dev/null |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0; }
for _ in $(seq 100); do [ "$(live_nodes)" = 3 ] && break; sleep 0.1; done
metric() { curl -fsS "http://127.0.0.1:$((base + $1))/metrics" 2>/dev/null | awk -v name="$2" '$1 == name {print $2+0}'; }

echo "==> $bots bots in 6 rooms through node 1, for $secs s" >&2
target/release/arena-bots --url "ws://127.0.0.1:$((base + 1))/ws" --count "$bots" --rooms 6 --duration "$secs" \
  --reconnect-secs 30 --quiet --json >"$work/bots.json" &
swarm=$!
pids+=("$swarm")
sleep 12
rooms_before=$(curl -fsS "http://127.0.0.1:$((base + 1))/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rooms"])')
primary=$redis_port
before=$(commands "$primary")
sleep 5
after=$(commands "$primary")
idle_rate=$(( (after - before) / 5 ))
if [ "$drill" = crash ]; then
  echo "==> kill -9 of node 1 ($rooms_before rooms), started again 6 s later" >&2
  kill -9 "${node_pid[1]}"
  sleep 6
  start_node 1
else
  echo "==> kill -9 of the Redis primary" >&2
  kill -9 "${redis_pid[$redis_port]}"
  for _ in $(seq 300); do
    primary=$(redis-cli -p "${sentinel_ports[0]}" sentinel get-master-addr-by-name arena 2>/dev/null | sed -n 2p)
    [ -n "$primary" ] && [ "$primary" != "$redis_port" ] && break
    sleep 0.1
  done
  echo "    the Sentinels promoted 127.0.0.1:$primary" >&2
fi
status=0
wait "$swarm" || status=1
restores=()
reruns=()
log_ticks=0
log_bytes=0
for i in 1 2 3; do
  restores+=("$(metric "$i" arena_restores_total)")
  reruns+=("$(metric "$i" arena_log_rerun_ticks_total)")
  log_ticks=$((log_ticks + $(metric "$i" arena_log_ticks_total)))
  log_bytes=$((log_bytes + $(metric "$i" arena_log_bytes_total)))
done

python3 - "$work/bots.json" "$drill" "$rooms_before" "$idle_rate" "${restores[*]}" "$lease_ms" "${reruns[*]}" \
  "${ARENA_INPUT_LOG:-true}" "$log_ticks" "$log_bytes" <<'PY' || status=1
import json, sys
report, drill, rooms, idle_rate, restores = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
input_log = sys.argv[8] != "false"
r = report["reconnects"]
summary = {
    "drill": drill,
    "lease_ms": int(sys.argv[6]),
    "input_log": input_log,
    "bots": {"connected": report["connected"], "failed": report["failed"], "protocol_errors": report["protocol_errors"],
             "disconnected": report["disconnected"], "frames_per_sec": round(report["frames_per_sec"], 1)},
    "rooms_on_node_1_before": rooms,
    "reconnects": r["count"],
    "players_lost": r["players_lost"],
    "points_lost": r["points_lost"],
    "most_ticks_taken_back": r["ticks_taken_back"],
    "worst_reconnect_gap_ms": round(r["worst_gap_ms"]),
    "longest_without_a_frame_ms": round(r["longest_silence_ms"]),
    "restores_by_node": [int(x or 0) for x in restores.split()],
    "log_ticks_rerun_by_node": [int(x or 0) for x in sys.argv[7].split()],
    "log_bytes_per_room_tick": round(int(sys.argv[10]) / max(int(sys.argv[9]), 1)),
    "redis_commands_per_sec_before": idle_rate,
}
print(json.dumps(summary, indent=2))
b = summary["bots"]
lost = summary["players_lost"] or (input_log and (summary["points_lost"] or summary["most_ticks_taken_back"]))
sys.exit(1 if b["failed"] or b["protocol_errors"] or b["disconnected"] or lost else 0)
PY
exit "$status"
