#!/usr/bin/env bash
# WebSocket fan-out benchmark: N connections in rooms of 4 sending chat at a set total rate,
# against Yilian's /ws (every message stored before it is broadcast) and against two room
# relays on the npm `ws` package (bench/ws/peer): one that stores nothing, and one that stores
# every message in SQLite (better-sqlite3, WAL, synchronous=FULL, one transaction per
# event-loop turn) before broadcasting it — the fair peer. Same rooms and rate for all three.
# Reports connections held, server memory per connection, fan-out latency p50/p99 (send to
# every receipt, measured in the load generator) and the ratios.
#
#   bench/ws/run.sh [--connections 10000] [--rate 2000] [--seconds 20] [--build build]
set -euo pipefail

CONNECTIONS=10000 RATE=2000 SECONDS_=20 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
LOADGEN="$ROOT/$BUILD/bench/yilian_ws_loadgen"
source "$ROOT/bench/lib.sh" ws
require "run 'make build' first" "$YILIAN" "$LOADGEN"
require "apt-get install nodejs npm" node npm curl python3
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > CONNECTIONS + 100 )) || { echo "open-file limit $(ulimit -n) is too low" >&2; exit 2; }

wait_http() {  # url
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "no server at $1" >&2; return 1
}

ROOMS=$(( (CONNECTIONS + 3) / 4 ))
echo "Yilian: $ROOMS consults..."
rooms_config "$WORK/yilian.toml"
start_yilian() {
  YPORT=$(free_port)
  "$YILIAN" serve --data "$WORK/yilian" --config "$WORK/yilian.toml" --dicom-port "$(free_port)" \
    --http-port "$YPORT" >>"$WORK/yilian.log" 2>&1 &
  YPID=$!
  PIDS+=("$YPID")
  wait_http "http://127.0.0.1:$YPORT/healthz"
}
# The first start files the institutions of the config; users are added while it is stopped
# (the data directory is locked while a hub runs).
start_yilian
kill "$YPID"; wait "$YPID" 2>/dev/null || true
printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/yilian" --role township_doctor \
  --institution ta doctor >/dev/null
printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/yilian" --role cardiologist \
  --institution lead cardio >/dev/null
start_yilian
python3 "$ROOT/bench/ws/rooms.py" "$YPORT" "$ROOMS" >"$WORK/rooms.txt"

echo "Yilian: $CONNECTIONS connections, $RATE messages/s for $SECONDS_ s..."
"$LOADGEN" --port "$YPORT" --connections "$CONNECTIONS" --rate "$RATE" --seconds "$SECONDS_" \
  --rooms-file "$WORK/rooms.txt" --server-pid "$YPID" --label yilian >"$WORK/yilian.json" || true
curl -s "http://127.0.0.1:$YPORT/healthz" >"$WORK/health.json"
kill "$YPID"; wait "$YPID" 2>/dev/null || true

echo "ws peers: installing..."
# better-sqlite3 is compiled against the installed Node's headers (no prebuilt binary is
# fetched); the modules are reinstalled only when the lock file changed.
PEER="$ROOT/bench/ws/peer"
if [[ ! -f "$PEER/node_modules/.package-lock.json" ||
      "$PEER/package-lock.json" -nt "$PEER/node_modules/.package-lock.json" ]]; then
  (cd "$PEER" && npm ci --no-audit --no-fund --silent --nodedir=/usr)
fi
run_peer() {  # label script [args...]
  local label=$1 script=$2; shift 2
  local port; port=$(free_port)
  : >"$WORK/$label.log"
  node "$PEER/$script" "$port" "$@" >"$WORK/$label.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do grep -q listening "$WORK/$label.log" && break; sleep 0.1; done
  echo "$label: $CONNECTIONS connections, $RATE messages/s for $SECONDS_ s..."
  "$LOADGEN" --port "$port" --connections "$CONNECTIONS" --rate "$RATE" --seconds "$SECONDS_" \
    --server-pid "$pid" --label "$label" >"$WORK/$label.json" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run_peer ws-peer relay.js
run_peer ws-peer-persisting relay-persist.js "$WORK/peer-chat.db"
echo "ws-peer-persisting stored $(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from chat").fetchone()[0])' "$WORK/peer-chat.db") messages"

python3 - "$WORK/yilian.json" "$WORK/ws-peer.json" "$WORK/ws-peer-persisting.json" \
  "$WORK/health.json" <<'PY'
import json, sys
y, p, q, h = (json.load(open(f)) for f in sys.argv[1:5])
def row(r):
    return (f"| {r['label']} | {r['held']}/{r['connections']} | {r['heldAtEnd']} | "
            f"{r['serverKiBPerConnection']:.1f} | {r['sent']} | {r['received']}/{r['expected']} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} |")
print("| server | held | held at end | KiB/conn | sent | received | p50 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|---|---|")
print(row(y)); print(row(p)); print(row(q))
def ratio(a, b):
    return a / b if b else float('nan')
print()
for peer in (p, q):
    print(f"{peer['label']} / Yilian: p99 {ratio(peer['p99_ms'], y['p99_ms']):.2f}x, "
          f"p50 {ratio(peer['p50_ms'], y['p50_ms']):.2f}x")
w = h.get("websocket", {})
print(f"Yilian counters: chat stored {w.get('chatMessages')}, batches {w.get('batches')}, "
      f"slow clients dropped {w.get('slowDropped')}, deepest queue {w.get('queuedPeak')}")
PY
