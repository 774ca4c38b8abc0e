#!/usr/bin/env bash
# Soak: mixed load on one node for a long time, sampled every minute, to find growth (memory,
# file descriptors, threads, WAL) and latency drift that short benchmarks do not show.
#
#   bench/soak/run.sh [--minutes 30] [--warmup 5] [--connections 2000] [--rate 200]
#                     [--senders 4] [--readers 50] [--build build]
#
# Load: --senders DICOM senders (storescu, fresh 20-slice CT studies one after the other),
# --readers readers claiming and signing (half radiologists, half ECG readers), four township
# doctors searching (QIDO-RS), opening metadata and rendered frames, an HL7 aECG upload every
# 3 s, a login and logout every second, one user bursting 12 parallel STOW-RS uploads every
# minute (the per-user upload limit refuses part of each burst), and --connections WebSocket
# clients in consult rooms of four chatting at --rate messages a second in all
# (bench/ws/loadgen). Every minute: the hub's RSS, open file descriptors, threads, WAL sizes and
# each kind of request's p50/p99 and errors (bench/soak/drive.py). The verdict at the end: RSS
# within 10 % of its value after the warm-up, no error, p99 stable. The whole record is kept in
# BUILD/soak-last-run.json.
set -euo pipefail

MINUTES=30 WARMUP=5 CONNECTIONS=2000 RATE=200 SENDERS=4 READERS=50 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --senders) SENDERS=$2; shift 2 ;;
    --readers) READERS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
LOADGEN="$ROOT/$BUILD/bench/yilian_ws_loadgen"
GEN="$ROOT/$BUILD/bench/yilian_gen_ct"
AECG="$ROOT/../shared/data/aecg/hl7-aecg-example.xml"
source "$ROOT/bench/lib.sh" soak
require "run 'make build' first" "$YILIAN" "$LOADGEN" "$GEN"
require "make deps" storescu curl python3 "$AECG"
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > CONNECTIONS + 500 )) || { echo "open-file limit $(ulimit -n) is too low" >&2; exit 2; }

ADMIN_PW=soak-admin-password
printf '%s\n' "$ADMIN_PW" >"$WORK/admin.pw"
# The consortium of the tests; the WebSocket clients are two users from one address, so the
# per-user and per-address connection limits are raised for them (the limits themselves are
# exercised by the upload burst and tested in the suite).
cat >"$WORK/yilian.toml" <<TOML
[dicom]
reject_unknown_ae = true

[auth]
admin_password_file = "$WORK/admin.pw"

[limits]
ws_connections_per_user = $(( CONNECTIONS + 100 ))
ws_connections_per_address = $(( CONNECTIONS + 500 ))

[queue]
stable_seconds = 2

[[institutions]]
code = "lead"
name = "Lead Hospital"
level = "lead"

[[institutions]]
code = "ta"
name = "Township A Health Centre"
level = "township"
parent = "lead"
ae_titles = ["TA_CT", "TA_ECG"]

[[reading_services]]
provider = "lead"
service = "imaging"
clients = ["ta"]

[[reading_services]]
provider = "lead"
service = "ecg"
clients = ["ta"]
TOML

HPORT=$(free_port) DPORT=$(free_port)
"$YILIAN" serve --data "$WORK/data" --config "$WORK/yilian.toml" --dicom-port "$DPORT" \
  --http-port "$HPORT" >>"$WORK/yilian.log" 2>&1 &
YPID=$!
PIDS+=("$YPID")
for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$HPORT/healthz" && break; sleep 0.1; done

# The room users of bench/ws/rooms.py, then the rooms.
python3 - "$HPORT" "$ADMIN_PW" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
def call(method, path, body, token=None):
    h = {"Content-Type": "application/json"}
    if token: h["Authorization"] = "Bearer " + token
    c.request(method, path, json.dumps(body), h)
    r = c.getresponse(); data = r.read()
    if r.status not in (200, 201): sys.exit(f"{path}: {r.status} {data[:200]!r}")
    return json.loads(data)
admin = call("POST", "/api/auth/login", {"username": "admin", "password": sys.argv[2]})["token"]
for name, role, inst in (("doctor", "township_doctor", "ta"), ("cardio", "cardiologist", "lead")):
    call("POST", "/api/admin/users", {"username": name, "password": "bench-password",
                                      "institution": inst, "roles": [role]}, admin)
PY
python3 "$ROOT/bench/ws/rooms.py" "$HPORT" $(( (CONNECTIONS + 3) / 4 )) >"$WORK/rooms.txt"

SECONDS_TOTAL=$(python3 -c "print(int($MINUTES * 60))")
echo "soak: $MINUTES min; $CONNECTIONS WebSocket clients at $RATE messages/s, $SENDERS DICOM senders, $READERS readers"
"$LOADGEN" --port "$HPORT" --connections "$CONNECTIONS" --rate "$RATE" --seconds "$SECONDS_TOTAL" \
  --rooms-file "$WORK/rooms.txt" --label ws >"$WORK/ws.json" 2>"$WORK/ws.log" &
LPID=$!
PIDS+=("$LPID")
python3 "$ROOT/bench/soak/drive.py" --port "$HPORT" --dicom-port "$DPORT" --pid "$YPID" \
  --data "$WORK/data" --gen-ct "$GEN" --aecg "$AECG" --minutes "$MINUTES" --warmup "$WARMUP" \
  --senders "$SENDERS" --readers "$READERS" --admin-password "$ADMIN_PW" --out "$WORK/drive.json"
wait "$LPID" || true

# The WebSocket clients' fan-out latency per minute (the load generator reports each second),
# and the whole record.
python3 - "$WORK/drive.json" "$WORK/ws.json" "$WORK/ws.log" "$ROOT/$BUILD/soak-last-run.json" <<'PY'
import json, re, statistics, sys
drive = json.load(open(sys.argv[1]))
try:
    ws = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
except (IndexError, ValueError):
    ws = {"error": "the load generator reported nothing"}
per_minute = {}
for line in open(sys.argv[3]):
    m = re.match(r"ws second (\d+): (\d+) receipts, p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+) ms", line)
    if m:
        per_minute.setdefault(int(m.group(1)) // 60 + 1, []).append(float(m.group(4)))
rows = [{"minute": k, "p99MedianOfSeconds": round(statistics.median(v), 2),
         "p99WorstSecond": round(max(v), 2)} for k, v in sorted(per_minute.items())]
print("\nWebSocket fan-out, per minute (p99 of each second: median, worst):")
for r in rows:
    print(f"  {r['minute']:>3}  {r['p99MedianOfSeconds']:>8} ms  {r['p99WorstSecond']:>8} ms")
print("WebSocket totals:", json.dumps({k: ws.get(k) for k in
      ("connections", "held", "heldAtEnd", "sent", "received", "expected", "errors", "p50_ms",
       "p99_ms", "max_ms")}))
json.dump({"drive": drive, "ws": ws, "wsPerMinute": rows}, open(sys.argv[4], "w"), indent=1)
PY
grep -ciE "\] \[(error|critical)\]" "$WORK/yilian.log" | sed 's/^/hub log errors: /' || true
