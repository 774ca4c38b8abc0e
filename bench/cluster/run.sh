#!/usr/bin/env bash
# Several nodes on one PostgreSQL: ingest of one synthetic CT series over 4 associations
# spread over 2 Yilian nodes (one shared blob directory), against 2 Orthanc 1.10 nodes on the
# same PostgreSQL with the Debian orthanc-postgresql index plugin (one shared storage
# directory); live rooms over WebSocket with the members of every room split over the 2 nodes
# (every message stored once, relayed to the other node); then claim-next with readers spread
# over 2 nodes on PostgreSQL, twice: cycles started on a fixed schedule (--claim-rate per
# second in all; the latency a reader sees) and as fast as the readers can (the capacity).
#
#   bench/cluster/run.sh [--count 400] [--size 512] [--connections 10000] [--rate 2000]
#                        [--tasks 100000] [--readers 64] [--claims 4000] [--claim-rate 100]
#                        [--only ingest,rooms,claims] [--build build]
#
# A PostgreSQL server is made with initdb in the scratch directory (as the postgres user when
# run as root) and removed afterwards. Every instance each side holds afterwards is counted.
set -euo pipefail

COUNT=400 SIZE=512 TASKS=100000 READERS=64 CLAIMS=4000 BUILD=build CONNECTIONS=10000 RATE=2000
CLAIM_RATE=100 ONLY=ingest,rooms,claims
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --readers) READERS=$2; shift 2 ;;
    --claims) CLAIMS=$2; shift 2 ;;
    --claim-rate) CLAIM_RATE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

part() { [[ ",$ONLY," == *",$1,"* ]]; }

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
GEN="$ROOT/$BUILD/bench/yilian_gen_ct"
QUEUE="$ROOT/$BUILD/bench/yilian_bench_queue"
LOADGEN="$ROOT/$BUILD/bench/yilian_ws_loadgen"
source "$ROOT/bench/lib.sh" cluster
require "run 'make build' first" "$YILIAN" "$GEN" "$QUEUE" "$LOADGEN"
require "run 'make bench' (installs orthanc, orthanc-postgresql)" storescu echoscu Orthanc curl python3
PLUGIN=/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so
require "apt-get install orthanc-postgresql" "$PLUGIN"

# PostgreSQL for both sides, in the scratch directory.
start_postgres
for db in yilian orthanc queue queue2; do psql_ -c "CREATE DATABASE $db"; done

wait_dicom() {
  for _ in $(seq 1 300); do echoscu -to 2 127.0.0.1 "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no DICOM server on $1" >&2; return 1
}

if part ingest; then
echo "generating $COUNT synthetic CT instances (${SIZE}x${SIZE}, 16-bit)..."
"$GEN" --out "$WORK/ct" --count "$COUNT" --size "$SIZE" >/dev/null
mapfile -t FILES < <(find "$WORK/ct" -name '*.dcm' | sort)
BYTES=$(du -cb "${FILES[@]}" | tail -1 | cut -f1)
MB=$(python3 -c "print($BYTES/1e6)")

send() {  # port1 port2 -> seconds; associations 0 and 2 to the first node, 1 and 3 to the second
  local per=$(( (${#FILES[@]} + 3) / 4 )) start end pids=() rc=0
  start=$(date +%s.%N)
  for a in 0 1 2 3; do
    local part=("${FILES[@]:$((a * per)):$per}") port=$1
    (( a % 2 == 1 )) && port=$2
    storescu --max-pdu 131072 -aet BENCH -aec TARGET 127.0.0.1 "$port" "${part[@]}" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  end=$(date +%s.%N)
  [[ $rc -eq 0 ]] || { echo "storescu failed" >&2; return 1; }
  python3 -c "print($end - $start)"
}
fi

if part ingest || part rooms; then
# Yilian: 2 nodes, one database, one blob directory; the institutions of a township and the
# lead hospital for the live rooms.
URL="postgresql://postgres@127.0.0.1:$PGPORT/yilian"
rooms_config "$WORK/yilian.toml"
printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/y1" --database "$URL" \
  --role township_doctor --institution unknown bench >/dev/null 2>&1
declare -a YD YH YPID
for n in 1 2; do
  YD[$n]=$(free_port); YH[$n]=$(free_port)
  "$YILIAN" serve --data "$WORK/y$n" --database "$URL" --blobs "$WORK/yblobs" \
    --config "$WORK/yilian.toml" --dicom-port "${YD[$n]}" --http-port "${YH[$n]}" \
    --max-associations 8 >"$WORK/y$n.log" 2>&1 &
  YPID[$n]=$!
  PIDS+=($!)
  wait_dicom "${YD[$n]}"  # one at a time: the first files the institutions
done
fi

if part ingest; then
Y_SECS=$(send "${YD[1]}" "${YD[2]}")
TOKEN=$(curl -s -d '{"username":"bench","password":"bench-password"}' \
  "http://127.0.0.1:${YH[2]}/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
Y_HELD=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${YH[2]}/api/studies" |
  python3 -c 'import json,sys; print(sum(s["numberOfInstances"] for s in json.load(sys.stdin)["studies"]))')

# Orthanc: 2 nodes, the PostgreSQL index plugin on one database (no lock: several writers),
# one storage directory.
declare -a OD OH
for n in 1 2; do
  OD[$n]=$(free_port); OH[$n]=$(free_port)
  cat >"$WORK/o$n.json" <<JSON
{ "Name": "bench$n", "StorageDirectory": "$WORK/ostorage", "IndexDirectory": "$WORK/o$n",
  "DicomAet": "TARGET", "DicomPort": ${OD[$n]}, "HttpPort": ${OH[$n]}, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true,
  "ConcurrentJobs": 2, "Plugins": ["$PLUGIN"],
  "PostgreSQL": { "EnableIndex": true, "EnableStorage": false, "Host": "127.0.0.1",
    "Port": $PGPORT, "Database": "orthanc", "Username": "postgres", "Password": "",
    "Lock": false, "EnableSsl": false } }
JSON
  Orthanc "$WORK/o$n.json" >"$WORK/o$n.log" 2>&1 &
  PIDS+=($!)
  wait_dicom "${OD[$n]}"  # one at a time: the first creates the schema
done
O_SECS=$(send "${OD[1]}" "${OD[2]}")
O_HELD=$(curl -s "http://127.0.0.1:${OH[2]}/statistics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])')

for pair in "Yilian $Y_HELD" "Orthanc $O_HELD"; do
  set -- $pair
  [[ "$2" -eq ${#FILES[@]} ]] || { echo "$1 holds $2 of ${#FILES[@]} instances" >&2; exit 1; }
done

echo
echo "Ingest through 2 nodes on one PostgreSQL: ${#FILES[@]} CT instances, $MB MB, 4 associations"
printf '%-8s %9s %12s %9s\n' target seconds instances/s MB/s
for t in Yilian Orthanc; do
  s=$([[ $t == Yilian ]] && echo "$Y_SECS" || echo "$O_SECS")
  python3 -c "print('%-8s %9.2f %12.1f %9.1f' % ('$t', $s, ${#FILES[@]}/$s, $MB/$s))"
done
python3 -c "print('Yilian/Orthanc = %.2fx' % ($O_SECS/$Y_SECS))"
fi

if part rooms; then
# Live rooms: users made in the shared database (from a data directory of their own: the
# nodes' are locked while they run), consults filed through node 1, every other connection
# of the load generator on node 2.
for u in "township_doctor ta doctor" "cardiologist lead cardio"; do
  set -- $u
  printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/setup" --database "$URL" \
    --role "$1" --institution "$2" "$3" >/dev/null
done
ulimit -n "$(ulimit -Hn)"
ROOMS=$(( (CONNECTIONS + 3) / 4 ))
python3 "$ROOT/bench/ws/rooms.py" "${YH[1]}" "$ROOMS" >"$WORK/rooms.txt"
"$LOADGEN" --port "${YH[1]}" --port2 "${YH[2]}" --connections "$CONNECTIONS" --rate "$RATE" \
  --seconds 20 --rooms-file "$WORK/rooms.txt" --server-pid "${YPID[1]}" --label yilian-2-nodes \
  >"$WORK/ws.json" || true
echo
python3 - "$WORK/ws.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"WebSocket, rooms of 4 split over 2 nodes: {r['held']}/{r['connections']} connections held, "
      f"{r['sent']} sent, {r['received']}/{r['expected']} received, "
      f"fan-out p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms max {r['max_ms']:.1f} ms")
PY
for n in 1 2; do curl -s "http://127.0.0.1:${YH[$n]}/healthz" >"$WORK/health$n.json"; done
python3 - "$WORK/health1.json" "$WORK/health2.json" <<'PY'
import json, sys
for n, f in enumerate(sys.argv[1:], 1):
    w = json.load(open(f)).get("websocket", {})
    print(f"node {n}: chat stored {w.get('chatMessages')}, batches {w.get('batches')}, "
          f"put off a turn {w.get('deferred')}, commit failures {w.get('commitFailures')}")
PY
fi

if part claims; then
echo
echo "Claim-next on PostgreSQL, $READERS readers over 2 nodes, $TASKS tasks, $CLAIM_RATE cycles/s:"
"$QUEUE" --tasks "$TASKS" --readers "$READERS" --claims "$CLAIMS" --nodes 2 --rate "$CLAIM_RATE" \
  --database "postgresql://postgres@127.0.0.1:$PGPORT/queue" --dir "$WORK/queue" | tail -3
echo
echo "The same as fast as the readers can:"
"$QUEUE" --tasks "$TASKS" --readers "$READERS" --claims "$CLAIMS" --nodes 2 \
  --database "postgresql://postgres@127.0.0.1:$PGPORT/queue2" --dir "$WORK/queue2" | tail -3
fi
