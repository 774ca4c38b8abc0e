#!/usr/bin/env bash
# End-to-end STEMI alert time (issue: "from the last byte of an ECG to the STEMI alert on a
# cardiologist's open WebSocket"), on one hub with the embedded store, in two phases of the
# same run:
#   idle — ECGs posted at the rate with nothing else connected;
#   load — the same while yilian_ws_loadgen holds N more /ws connections (rooms of 4, two
#          township doctors and two cardiologists each, chatting at --chat-rate messages/s).
# ECGs: DICOM 12-leads posted by the township doctor (POST /api/ecg), one in --stemi-every
# with anterior ST elevation; the on-call cardiologist of the lead hospital (put on the roster)
# holds one /ws connection and acknowledges each alert. Latency per STEMI: last byte of the
# upload handed to the kernel → `alert` notification read from the socket (yilian_ecg_alert).
#
#   bench/ecg/alert.sh [--per-minute 50] [--seconds 60] [--stemi-every 2] [--connections 2000]
#                      [--chat-rate 100] [--build build]
set -euo pipefail
PER_MINUTE=50 SECONDS_=60 STEMI_EVERY=2 CONNECTIONS=2000 CHAT_RATE=100 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --per-minute) PER_MINUTE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --stemi-every) STEMI_EVERY=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --chat-rate) CHAT_RATE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
ALERT="$ROOT/$BUILD/bench/yilian_ecg_alert"
LOADGEN="$ROOT/$BUILD/bench/yilian_ws_loadgen"
source "$ROOT/bench/lib.sh" ecg-alert
require "run 'make build' first" "$YILIAN" "$ALERT" "$LOADGEN"
require "apt-get install curl python3" curl python3
ulimit -n "$(ulimit -Hn)"

# The load generator's sockets all come from 127.0.0.1 and belong to two users: the per-user
# and per-address /ws limits (16, 1000) are lifted for the run.
rooms_config "$WORK/yilian.toml"
cat >>"$WORK/yilian.toml" <<TOML
[limits]
ws_connections_per_user = 0
ws_connections_per_address = 0
TOML
PORT=""
start_yilian() {
  PORT=$(free_port)
  "$YILIAN" serve --data "$WORK/yilian" --config "$WORK/yilian.toml" --dicom-port "$(free_port)" \
    --http-port "$PORT" >>"$WORK/yilian.log" 2>&1 &
  YPID=$!
  PIDS+=("$YPID")
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    sleep 0.1
  done
  echo "no hub on $PORT" >&2; exit 1
}
start_yilian
kill "$YPID"; wait "$YPID" 2>/dev/null || true
add_user() {  # name role institution
  printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/yilian" --role "$2" \
    --institution "$3" "$1" >/dev/null
}
add_user doctor township_doctor ta
add_user cardio cardiologist lead
add_user oncall cardiologist lead
add_user chief admin lead
start_yilian

run_alert() {  # label prefix
  "$ALERT" --port "$PORT" --password bench-password --seconds "$SECONDS_" \
    --per-minute "$PER_MINUTE" --stemi-every "$STEMI_EVERY" --label "$1" --prefix "$2"
}
echo "idle: $PER_MINUTE ECGs/min for $SECONDS_ s..." >&2
run_alert idle IDLE >"$WORK/idle.json"

echo "load: $CONNECTIONS /ws connections, $CHAT_RATE chat messages/s..." >&2
python3 "$ROOT/bench/ws/rooms.py" "$PORT" $(( (CONNECTIONS + 3) / 4 )) >"$WORK/rooms.txt"
# The load runs a little longer than the uploads; the uploads start once it holds its sockets.
"$LOADGEN" --port "$PORT" --connections "$CONNECTIONS" --rate "$CHAT_RATE" \
  --seconds $(( SECONDS_ + 15 )) --rooms-file "$WORK/rooms.txt" --server-pid "$YPID" \
  --label load >"$WORK/loadgen.json" 2>"$WORK/loadgen.err" &
LPID=$!
PIDS+=("$LPID")
for _ in $(seq 1 1200); do grep -q measuring "$WORK/loadgen.err" && break; sleep 0.1; done
grep -q measuring "$WORK/loadgen.err" || { echo "the load generator did not connect" >&2; exit 1; }
echo "load: $PER_MINUTE ECGs/min for $SECONDS_ s..." >&2
run_alert load LOAD >"$WORK/load.json"
wait "$LPID" || true

python3 - "$WORK/idle.json" "$WORK/load.json" "$WORK/loadgen.json" <<'PY'
import json, sys
idle, load, gen = (json.load(open(f)) for f in sys.argv[1:4])
print("| phase | /ws connections held | ECG uploads (per min) | STEMI alerts | missed | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|---|")
for r, held in ((idle, 1), (load, f"{gen['held'] + 1} (chat p99 {gen['p99_ms']:.1f} ms)")):
    print(f"| {r['label']} | {held} | {r['uploads']} ({r['perMinute']}) | {r['alerts']}/{r['stemi']} | "
          f"{r['missed']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
ratio = lambda a, b: a / b if b else float('nan')
print(f"\nload / idle: p50 {ratio(load['p50_ms'], idle['p50_ms']):.2f}x, "
      f"p99 {ratio(load['p99_ms'], idle['p99_ms']):.2f}x")
PY
