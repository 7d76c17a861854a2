#!/usr/bin/env bash
# Attacks your own arena-server on loopback, the way issues #6 and #15 did,
# while 20 honest bots play, and prints one line per attack and the figures
# the server must hold: no ghost seats, bots at the tick rate, memory bounded
# and given back, attackers closed with a reason, SIGTERM prompt in every
# state; what one address gets by guessing codes, opening rooms and holding
# seats, and what newcomers see meanwhile; the tick during TLS handshake
# floods against RSA and ECDSA certificates; operators' orders with huge
# bodies, hosts ending rounds at will, and the replay store and folder;
# the cluster's public reads (/api/rooms, /api/cluster) and what they cost
# its Redis; a full room against the input log (what a tick's record
# and a room's log in Redis grow to); sockets that never read; clients
# that save up input time and burst it; players whose inputs do not
# compress, against the memory the rounds being recorded may hold.
#
#   scripts/attack.sh            release build; about five minutes
#   ARENA_ATTACKS="2 6" scripts/attack.sh   only those sections
#
# Only ever point this at a server you run yourself. It needs only loopback:
# attackers spread over 127.0.0.2 and up so the per-address cap (64) does
# not hide the total one.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${ARENA_ATTACK_PORT:-17778}
url="ws://127.0.0.1:$port/ws"
base="http://127.0.0.1:$port"

echo "building release binaries..." >&2
cargo build --release --quiet -p arena-server -p arena-bots -p arena-attack --bins
server_bin=target/release/arena-server
bots_bin=target/release/arena-bots
attack_bin=target/release/arena-attack

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  jobs -p | xargs -r kill 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  RUST_LOG=warn "$server_bin" --bind "127.0.0.1:$port" --limit-loopback "$@" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.05
  done
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
}

# Sends SIGTERM and prints a line: what was connected, how long the exit
# took, and its status. (Not in $(...): only this shell can wait for it.)
stop_server() {
  local started status
  started=$(date +%s%N)
  kill -TERM "$server"
  set +e
  wait "$server"
  status=$?
  set -e
  server=""
  printf 'sigterm      %s: exit %s after %.2fs\n' "$1" "$status" "$(( $(date +%s%N) - started ))e-9"
}

players() { curl -fsS "$base/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["players"])'; }
# The ticks' p99 since the server started, in µs (a histogram bucket's bound).
tick_p99() { curl -fsS "$base/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tick_micros_p99"])'; }
metric() { curl -fsS "$base/metrics" | awk -v name="$1" '$1 == name {print $2}'; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$server/status"; }
want() { [ -z "${ARENA_ATTACKS:-}" ] || [[ " $ARENA_ATTACKS " == *" $1 "* ]]; }
attack() { "$attack_bin" "$1" --url "$url" --quiet "${@:2}" || true; }

# Samples the server's RSS every 100 ms into $work/rss until stopped.
sample_rss() {
  : >"$work/rss"
  while kill -0 "$server" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$server/status" >>"$work/rss" 2>/dev/null || true
    sleep 0.1
  done
}

honest_bots() {
  "$bots_bin" --url "$url" --count 20 --duration "$1" --behaviour wander --name-prefix honest- --json --quiet \
    >"$work/honest.json" &
  honest=$!
  for _ in $(seq 100); do
    [ "$(players)" -ge 20 ] && return 0
    sleep 0.1
  done
}

# One line of what the honest bots (done) saw.
honest_line() {
  python3 - "$work/honest.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"honest bots  connected {r['connected']}/20, disconnected {r['disconnected']}, "
      f"{r['frames_per_sec']:.1f} frames/s each, tick gaps {r['tick_gaps']}")
PY
}

# Starts Debian's redis-server on port+1 (for the cluster sections):
# sets redis_port and redis_pid.
start_redis() {
  redis_port=$((port + 1))
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

if want 1; then
echo "== 1. ghost seats: 5,000 abrupt resets and 5,000 clean join/leave cycles"
# Dropped players' seats are held for --resume-secs; measure the guard itself.
start_server --resume-secs 0
honest_bots 600
attack reset --count 5000 --concurrency 50 --sources 20 --duration 20
attack churn --count 5000 --concurrency 50 --sources 20 --duration 20
started=$(date +%s%N)
until [ "$(players)" -eq 20 ]; do
  [ $(( $(date +%s%N) - started )) -gt 5000000000 ] && break
  sleep 0.02
done
printf 'ghosts       players %s (20 honest) after %.2fs; task panics %s\n' "$(players)" \
  "$(( $(date +%s%N) - started ))e-9" "$(metric arena_task_panics_total)"
kill "$honest" 2>/dev/null || true
wait "$honest" 2>/dev/null || true
stop_server "with 20 players"

fi

if want 2; then
echo
echo "== 2. all at once: 4 input flooders, 2 ping flooders, 2,000 idle and 2,000 slowloris sockets"
start_server
honest_bots 25
sleep 2
baseline=$(rss_mib)
sample_rss &
sampler=$!
attackers=()
attack input-flood --count 4 --duration 15 >"$work/a1" & attackers+=($!)
attack ping-flood --count 2 --duration 15 >"$work/a2" & attackers+=($!)
attack idle --count 2000 --sources 40 --first-source 2 --duration 15 >"$work/a3" & attackers+=($!)
attack slowloris --count 2000 --sources 40 --first-source 50 --duration 15 >"$work/a4" & attackers+=($!)
sleep 3
during_term_check=$(players)
wait "${attackers[@]}" 2>/dev/null || true
cat "$work/a1" "$work/a2" "$work/a3" "$work/a4"
wait "$honest" || true
python3 - "$work/honest.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"honest bots  connected {r['connected']}/20, disconnected {r['disconnected']}, "
      f"{r['frames_per_sec']:.1f} frames/s each, tick gaps {r['tick_gaps']}, "
      f"rtt p50/p99 {r['rtt_ms']['p50']:.1f}/{r['rtt_ms']['p99']:.1f} ms")
PY
sleep 10
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$work/rss" | tail -1 | awk '{printf "%.1f", $1 / 1024}')
printf 'memory       baseline %s MiB, peak %s MiB, 10 s after %s MiB\n' "$baseline" "$peak" "$(rss_mib)"
printf 'kicks        '
curl -fsS "$base/metrics" | awk '/^arena_kicks_total/ {sub(/arena_kicks_total\{reason="/, ""); sub(/"\}/, ""); printf "%s=%s ", $1, $2} END {print ""}'
stop_server "after the attacks ($during_term_check players during them)"

fi

if want 3; then
echo
echo "== 3. SIGTERM in every state"
start_server
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ' >&3
stop_server "one half-sent request"
exec 3>&-
start_server
attack no-hello --count 50 --duration 30 >"$work/a5" &
mute=$!
sleep 1
stop_server "50 upgraded sockets without Hello"
wait "$mute" 2>/dev/null || true
echo "             (the 50 sockets: $(cut -c1-80 "$work/a5"))"
start_server
honest_bots 30
attack input-flood --count 4 --duration 10 >/dev/null &
attack ping-flood --count 2 --duration 10 >/dev/null &
attack idle --count 2000 --sources 40 --first-source 2 --duration 10 >/dev/null &
attack slowloris --count 2000 --sources 40 --first-source 50 --duration 10 >/dev/null &
sleep 2
stop_server "under all the attacks at once, 20 players"

fi

if want 4; then
echo
echo "== 4. one address against everyone: guessing codes, opening rooms, holding seats"
# Seats are held for a minute here, so held seats pile up if nothing bounds them.
start_server --resume-secs 60
honest_bots 30
attack guess --count 4 --sources 1 --first-source 60 --duration 20 >"$work/g" &
guessing=$!
attack open-rooms --count 4 --sources 1 --first-source 61 --duration 20 >"$work/o" &
opening=$!
attack reset --count 3000 --concurrency 20 --sources 1 --first-source 62 --duration 20 >"$work/h" &
holding=$!
sleep 5
# Meanwhile, honest newcomers from other addresses: a quick-join and a new private room.
quick=$("$bots_bin" --url "$url" --count 5 --duration 2 --name-prefix quick- --json --quiet || true)
private=$("$bots_bin" --url "$url" --count 2 --rooms 1 --duration 2 --name-prefix friend- --json --quiet || true)
wait "$guessing" "$opening" "$holding" 2>/dev/null || true
# Seats are held for 60 s: what is left now beyond the 20 honest players is
# what the two attacking addresses hold (the room opener's dropped seats
# and the join+reset cycler's).
held=$(( $(players) - 20 ))
printf 'guesses      one address: %s\n' "$(cut -c1-220 "$work/g")"
printf 'rooms        one address: %s\n' "$(cut -c1-220 "$work/o")"
printf 'resets       one address: %s\n' "$(cut -c1-220 "$work/h")"
printf 'held seats   %s held by the two addresses (at most 8 each); without the bound, every reset cycle held one\n' "$held"
python3 - "$quick" "$private" <<'PY'
import json, sys
for label, raw in (("quick-join", sys.argv[1]), ("new private room", sys.argv[2])):
    try:
        r = json.loads(raw)
        print(f"newcomers    {label}: connected {r['connected']}/{r['count'] if 'count' in r else r['connected'] + r['failed']}, "
              f"failed {r['failed']}, {r['frames_per_sec']:.1f} frames/s")
    except (ValueError, KeyError) as e:
        print(f"newcomers    {label}: no report ({e}): {raw[:200]}")
PY
wait "$honest" || true
honest_line
printf 'refusals     code misses %s, guesses refused %s, rooms refused %s, holds refused %s\n' \
  "$(metric arena_room_code_misses_total)" "$(metric arena_guesses_limited_total)" \
  "$(metric arena_rooms_limited_total)" "$(metric arena_holds_refused_total)"
stop_server "after the one-address attacks"

fi

if want 5; then
echo
echo "== 5. TLS handshake floods (full handshakes, no resumption) while 20 players play over wss"
plain_url=$url
plain_base=$base
url="wss://127.0.0.1:$port/ws"
base="https://127.0.0.1:$port"
curl() { command curl -k "$@"; }
for key in rsa ecdsa; do
  if [ "$key" = rsa ]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); fi
  openssl req -x509 "${newkey[@]}" -nodes -days 2 -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -keyout "$work/$key.key" -out "$work/$key.pem" 2>/dev/null
  for sources in 1 32; do
    start_server --tls-cert "$work/$key.pem" --tls-key "$work/$key.key"
    "$bots_bin" --url "$url" --ca-cert "$work/$key.pem" --count 20 --duration 16 --behaviour wander \
      --name-prefix honest- --json --quiet >"$work/honest.json" &
    honest=$!
    sleep 3
    ticks_before=$(metric arena_ticks_total)
    cpu_before=$(awk '{print $14 + $15}' "/proc/$server/stat")
    started=$(date +%s%N)
    attack tls-flood --count 32 --sources "$sources" --first-source 80 --duration 10 >"$work/t" || true
    ticks_after=$(metric arena_ticks_total)
    cpu_after=$(awk '{print $14 + $15}' "/proc/$server/stat")
    elapsed_ns=$(( $(date +%s%N) - started ))
    wait "$honest" || true
    python3 - "$work/honest.json" "$key" "$sources" "$ticks_before" "$ticks_after" "$elapsed_ns" "$(cut -c1-220 "$work/t")" \
      "$(metric arena_tls_refused_total)" "$cpu_before" "$cpu_after" "$(getconf CLK_TCK)" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
key, sources, t0, t1, ns, line, refused, c0, c1, clk = sys.argv[2:12]
secs = int(ns) / 1e9
ticks_per_sec = (int(t1) - int(t0)) / secs
cpu = (int(c1) - int(c0)) / int(clk)
done = int(re.search(r"done (\d+)", line).group(1))
print(f"tls {key:<5}    from {sources:>2} address(es): room ticks {ticks_per_sec:.1f}/s during the flood; "
      f"honest {r['connected']}/20 connected, {r['frames_per_sec']:.1f} frames/s, tick gaps {r['tick_gaps']}; "
      f"server refused {refused}")
print(f"             {done} handshakes ({done / secs:.0f}/s); server CPU {100 * cpu / secs:.0f} % of a core, "
      f"{1e6 * cpu / max(done, 1):.0f} µs per handshake (the game included)")
PY
    stop_server "after the $key flood from $sources address(es)"
  done
done
unset -f curl
url=$plain_url
base=$plain_base

fi

if want 6; then
echo
echo "== 6. the newer doors: operators' orders with a 2 MB body, hosts ending rounds at will, the replay folder"
replays="$work/replays"
start_server --admin-token "attack-$(date +%s%N)" --replay-memory-mb 1 --replay-dir "$replays" --replay-dir-mb 1
honest_bots 25
sleep 2
before=$(rss_mib)
sample_rss &
sampler=$!
attack admin-body --count 100 --sources 10 --first-source 100 --duration 20 >"$work/b" &
bodies=$!
attack next-rounds --count 40 --sources 10 --first-source 120 --duration 20 >"$work/n"
wait "$bodies" 2>/dev/null || true
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$work/rss" | tail -1 | awk '{printf "%.1f", $1 / 1024}')
printf 'admin body   %s\n' "$(cut -c1-200 "$work/b")"
printf 'next rounds  40 hosts: %s\n' "$(cut -c1-200 "$work/n")"
printf 'replays      kept %s rounds, %s bytes counted (cap 512 KiB: the half of 1 MiB for rounds kept); folder %s files, %s bytes counted, %s bytes of disk blocks (du, folders included; cap 1 MiB)\n' \
  "$(metric arena_replays_kept)" "$(metric arena_replay_bytes)" "$(metric arena_replay_files)" \
  "$(metric arena_replay_file_bytes)" "$(du -sB1 "$replays" | cut -f1)"
printf 'memory       before %s MiB, peak %s MiB, after %s MiB; tick p99 %s µs over the run\n' "$before" "$peak" "$(rss_mib)" "$(tick_p99)"
wait "$honest" || true
honest_line
stop_server "after the newer doors' attacks"
fi

if want 7; then
echo
echo "== 7. the cluster's public reads: /api/rooms and /api/cluster as fast as 40 clients ask, against what Redis does"
start_redis
redis_commands() { redis-cli -p "$redis_port" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
start_server --redis-url "redis://127.0.0.1:$redis_port" --lease-ms 3000
honest_bots 25
sleep 3
idle_before=$(redis_commands)
sleep 5
idle_after=$(redis_commands)
flood_before=$(redis_commands)
rss_before=$(rss_mib)
sample_rss &
sampler=$!
cpu_before=$(awk '{print $14 + $15}' "/proc/$server/stat")
attack public-reads --count 40 --sources 10 --first-source 140 --duration 10 >"$work/p"
cpu_after=$(awk '{print $14 + $15}' "/proc/$server/stat")
flood_after=$(redis_commands)
kill "$sampler" 2>/dev/null || true
rss_peak=$(sort -n "$work/rss" | tail -1 | awk '{printf "%.1f", $1 / 1024}')
printf 'public reads %s\n' "$(cut -c1-200 "$work/p")"
printf 'server       %s %% of a core while answering; memory before %s MiB, peak %s MiB, after %s MiB\n' \
  "$(( 100 * (cpu_after - cpu_before) / $(getconf CLK_TCK) / 10 ))" "$rss_before" "$rss_peak" "$(rss_mib)"
printf 'redis        %s commands/s with 20 players and nobody asking; %s commands/s during the reads (the listing is read at most 4 times a second)\n' \
  "$(( (idle_after - idle_before) / 5 ))" "$(( (flood_after - flood_before) / 10 ))"
printf 'tick         p99 %s µs over the run\n' "$(tick_p99)"
wait "$honest" || true
honest_line
stop_server "after the public reads"
kill "$redis_pid" 2>/dev/null || true
wait "$redis_pid" 2>/dev/null || true
fi

if want 8; then
echo
echo "== 8. the input log: a full room of 60 (20 honest players, 40 brawlers dashing at the input rate), in cluster mode"
start_redis
redis_memory() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {printf "%.1f", $2 / 1048576}'; }
# The largest room log in Redis now, in bytes (MEMORY USAGE counts what it really costs).
largest_log() {
  redis-cli -p "$redis_port" --scan --pattern 'arena:log:*' | while read -r key; do
    redis-cli -p "$redis_port" memory usage "$key" samples 0
  done | sort -n | tail -1
}
start_server --redis-url "redis://127.0.0.1:$redis_port" --lease-ms 3000 --checkpoint-ms 2000 --max-players 60
honest_bots 25
sleep 3
memory_before=$(redis_memory)
ticks_before=$(metric arena_log_ticks_total); bytes_before=$(metric arena_log_bytes_total)
# Inputs are applied at most two a tick (a burst of six after a pause)
# whatever a client sends: a full room of players steering and dashing is
# the biggest record there is (clients sending faster are closed with
# 4006 before they add anything: section 2).
"$bots_bin" --url "$url" --count 40 --duration 12 --behaviour brawler --name-prefix full- --json --quiet \
  >"$work/full.json" &
full=$!
peak_log=0
for _ in $(seq 20); do
  sleep 0.5
  now=$(largest_log); now=${now:-0}
  [ "$now" -gt "$peak_log" ] && peak_log=$now
done
ticks_after=$(metric arena_log_ticks_total); bytes_after=$(metric arena_log_bytes_total)
memory_during=$(redis_memory)
wait "$full" || true
python3 - "$ticks_before" "$ticks_after" "$bytes_before" "$bytes_after" "$peak_log" <<'PY'
import sys
t0, t1, b0, b1, peak = (float(x or 0) for x in sys.argv[1:6])
print(f"input log    {(b1 - b0) / max(t1 - t0, 1):.0f} bytes a tick's record on average in the full room "
      f"({t1 - t0:.0f} ticks logged); the largest room log in Redis peaked at {peak / 1024:.1f} KiB "
      f"(it restarts at each 2 s checkpoint)")
PY
printf 'redis        used memory %s MiB before, %s MiB with the full room; log failures %s\n' \
  "$memory_before" "$memory_during" "$(metric arena_log_failures_total)"
wait "$honest" || true
honest_line
stop_server "after the full room"
kill "$redis_pid" 2>/dev/null || true
wait "$redis_pid" 2>/dev/null || true
fi

if want 9; then
echo
echo "== 9. sockets the tick writes to that never read: one address's 64 connections (its cap) join and stop reading"
# The room writes each player's frame to its socket from the tick; a socket
# that is not read fills, its frame waits in the outbox (only the newest),
# and what the socket took in part waits on the wire (bounded, 512 KiB).
# Pinging every 20 ms keeps each one talking (inside the rate budget), so
# only the unanswered server pings (4004) end it.
start_server
honest_bots 30
sleep 2
baseline=$(rss_mib)
sample_rss &
sampler=$!
writer_before=$(metric arena_writes_by_writer_total)
attack no-read --count 64 --sources 1 --first-source 2 --duration 25 >"$work/a1"
cat "$work/a1"
writer_after=$(metric arena_writes_by_writer_total)
wait "$honest" || true
honest_line
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$work/rss" | tail -1 | awk '{printf "%.1f", $1 / 1024}')
python3 - "$baseline" "$peak" "$(rss_mib)" "$writer_before" "$writer_after" <<'PY'
import sys
base, peak, after, w0, w1 = (float(x or 0) for x in sys.argv[1:6])
print(f"memory       before {base:.1f} MiB, peak {peak:.1f} MiB ({(peak - base) * 1024 / 64:.0f} KiB a non-reader), "
      f"after {after:.1f} MiB; writes left to the writer tasks meanwhile {w1 - w0:.0f}")
PY
printf 'kicks        '
curl -fsS "$base/metrics" | awk '/^arena_kicks_total/ {sub(/arena_kicks_total\{reason="/, ""); sub(/"\}/, ""); printf "%s=%s ", $1, $2} END {print ""}'
stop_server "after the non-readers"
fi

if want 10; then
echo
echo "== 10. clients saving up input time: one address's 32 connections, each silent for half a second, then a second's worth of inputs at once"
# The room applies two inputs a tick interval on its own clock; a player
# may hold half a second of that time (30 inputs) and spend six a tick.
# Bursting gets a client no further than real time allows (60 a second,
# plus the half second once): the rest waits in its queue of 32, and what
# does not fit is dropped and counted.
start_server
honest_bots 30
sleep 2
before_dropped=$(metric arena_inputs_dropped_total)
attack burst --count 32 --sources 1 --first-source 2 --duration 20 >"$work/a1"
cat "$work/a1"
after_dropped=$(metric arena_inputs_dropped_total)
python3 - "$work/a1" "$before_dropped" "$after_dropped" <<'PY'
import re, sys
line = open(sys.argv[1]).read()
sent = int(re.search(r"done (\d+)", line).group(1))
secs = float(re.search(r"\(([\d.]+)s\)", line).group(1))
dropped = float(sys.argv[3] or 0) - float(sys.argv[2] or 0)
# Applied: what was not dropped, less at most a queue (32) each still waiting.
most, least = (sent - dropped) / 32 / secs, (sent - dropped - 32 * 32) / 32 / secs
print(f"inputs       sent {sent / 32 / secs:.0f} a second per burster, applied {least:.1f}–{most:.1f} "
      f"(real time: 60, and half a second once); {dropped:.0f} dropped from full queues")
PY
printf 'tick         p99 %s µs over the run\n' "$(tick_p99)"
wait "$honest" || true
honest_line
stop_server "after the bursters"
fi

if want 11; then
echo
echo "== 11. rounds being recorded: 160 players from 8 addresses steering and dashing at random at the input rate, --replay-memory-mb 1"
# Each round being recorded holds what its inputs deflate to (random
# sticks barely do: about 3 bytes an input); all of them together may
# hold half of --replay-memory-mb (512 KiB here), granted as they grow.
# A round the pool cannot take more of stops being recorded; the next
# round is recorded from its start.
start_server --replay-memory-mb 1
honest_bots 25
sleep 2
before=$(rss_mib)
sample_rss &
sampler=$!
attack noise --count 160 --sources 8 --first-source 140 --duration 20 >"$work/noise" &
noise=$!
peak_pool=0
for _ in $(seq 44); do
  sleep 0.5
  now=$(metric arena_replay_recording_bytes); now=${now:-0}
  [ "$now" -gt "$peak_pool" ] && peak_pool=$now
done
wait "$noise" 2>/dev/null || true
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$work/rss" | tail -1 | awk '{printf "%.1f", $1 / 1024}')
printf 'noise        %s\n' "$(cut -c1-200 "$work/noise")"
printf 'recording    the pool lent at most %s bytes (cap 524288); %s rounds cut\n' \
  "$peak_pool" "$(metric arena_replay_recordings_cut_total)"
printf 'memory       before %s MiB, peak %s MiB, after %s MiB; tick p99 %s µs over the run\n' "$before" "$peak" "$(rss_mib)" "$(tick_p99)"
wait "$honest" || true
honest_line
stop_server "after the noise"
fi
