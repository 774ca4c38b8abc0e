#!/usr/bin/env bash
# Ingest benchmark: one synthetic CT series sent with DCMTK storescu over 1 and 4
# associations to (a) Yilian, (b) Orthanc with its default SQLite index, (c) DCMTK storescp
# writing plain files with no index. Prints instances/s and MB/s and the ratios.
#
#   bench/ingest/run.sh [--count 400] [--size 512] [--build build] [--runs 1]
#
# Every server runs on loopback with TCP_NODELAY=1 and a 128 KiB max PDU. Each run starts
# from an empty data directory; the number of instances each server holds afterwards is
# checked against the number sent.
set -euo pipefail

COUNT=400 SIZE=512 BUILD=build RUNS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
GEN="$ROOT/$BUILD/bench/yilian_gen_ct"
source "$ROOT/bench/lib.sh" ingest
require "run 'make build' first" "$YILIAN" "$GEN"
require "run 'make bench' (installs orthanc)" storescu storescp Orthanc curl python3

wait_dicom() {  # port
  for _ in $(seq 1 200); do
    if echoscu -to 2 127.0.0.1 "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2; return 1
}

echo "generating $COUNT synthetic CT instances (${SIZE}x${SIZE}, 16-bit)..."
"$GEN" --out "$WORK/ct" --count "$COUNT" --size "$SIZE" >/dev/null
mapfile -t FILES < <(find "$WORK/ct" -name '*.dcm' | sort)
BYTES=$(du -cb "${FILES[@]}" | tail -1 | cut -f1)
MB=$(python3 -c "print($BYTES/1e6)")

send() {  # port associations -> prints seconds
  local port=$1 assocs=$2
  local n=${#FILES[@]} per=$(( (${#FILES[@]} + $2 - 1) / $2 ))
  local start end pids=()
  start=$(date +%s.%N)
  for ((a = 0; a < assocs; a++)); do
    local part=("${FILES[@]:$((a * per)):$per}")
    [[ ${#part[@]} -eq 0 ]] && continue
    storescu --max-pdu 131072 -aet BENCH -aec TARGET 127.0.0.1 "$port" "${part[@]}" &
    pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  end=$(date +%s.%N)
  [[ $rc -eq 0 ]] || { echo "storescu failed" >&2; return 1; }
  python3 -c "print($end - $start)"
  : "$n"
}

start_yilian() {  # dir dicom_port -> pid
  local http; http=$(free_port)
  # A reader of the "unknown" institution (the benchmark's sender is not configured).
  printf 'bench-password\n' | "$YILIAN" user add --data "$1" --role township_doctor \
    --institution unknown bench >/dev/null 2>&1
  "$YILIAN" serve --data "$1" --dicom-port "$2" --http-port "$http" --max-associations 8 \
    >"$1.log" 2>&1 &
  echo "$! $http"
}
count_yilian() {  # http_port
  local token
  token=$(curl -s -d '{"username":"bench","password":"bench-password"}' \
    "http://127.0.0.1:$1/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$1/api/studies" | python3 -c \
    'import json,sys; print(sum(s["numberOfInstances"] for s in json.load(sys.stdin)["studies"]))'
}

start_orthanc() {  # dir dicom_port -> pid http
  local http; http=$(free_port)
  mkdir -p "$1"
  cat >"$1.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$1/storage", "IndexDirectory": "$1/index",
  "DicomAet": "TARGET", "DicomPort": $2, "HttpPort": $http, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true,
  "ConcurrentJobs": 2, "Plugins": [] }
JSON
  Orthanc "$1.json" >"$1.log" 2>&1 &
  echo "$! $http"
}
count_orthanc() {  # http_port
  curl -s "http://127.0.0.1:$1/statistics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])'
}

start_storescp() {  # dir dicom_port -> pid
  mkdir -p "$1"
  storescp --fork --max-pdu 131072 -aet TARGET -od "$1" "$2" >"$1.log" 2>&1 &
  echo "$! 0"
}
count_storescp() { find "$1" -type f -name '*.*' | wc -l; }

declare -A RESULT
run_one() {  # target assocs run
  local target=$1 assocs=$2 run=$3 dir="$WORK/$1-$2-$3" port info pid http secs held
  port=$(free_port)
  info=$(start_"$target" "$dir" "$port"); pid=${info%% *}; http=${info##* }
  PIDS+=("$pid")
  wait_dicom "$port"
  secs=$(send "$port" "$assocs")
  case "$target" in
    yilian) held=$(count_yilian "$http") ;;
    orthanc) held=$(count_orthanc "$http") ;;
    storescp) held=$(count_storescp "$dir") ;;
  esac
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  if [[ "$held" -ne ${#FILES[@]} ]]; then
    echo "$target holds $held of ${#FILES[@]} instances after the run" >&2; exit 1
  fi
  # Keep the best of the runs.
  local key="$target/$assocs"
  if [[ -z "${RESULT[$key]:-}" ]] || python3 -c "import sys; sys.exit(0 if $secs < ${RESULT[$key]} else 1)"; then
    RESULT[$key]=$secs
  fi
}

for run in $(seq 1 "$RUNS"); do
  for assocs in 1 4; do
    for target in yilian orthanc storescp; do
      run_one "$target" "$assocs" "$run"
    done
  done
done

echo
echo "Ingest: ${#FILES[@]} CT instances, $MB MB, storescu over loopback (best of $RUNS)"
printf '%-10s %6s %9s %12s %9s\n' target assocs seconds instances/s MB/s
for assocs in 1 4; do
  for target in yilian orthanc storescp; do
    s=${RESULT[$target/$assocs]}
    python3 -c "print('%-10s %6d %9.2f %12.1f %9.1f' % ('$target', $assocs, $s, ${#FILES[@]}/$s, $MB/$s))"
  done
done
echo
for assocs in 1 4; do
  python3 -c "
y=${RESULT[yilian/$assocs]}; o=${RESULT[orthanc/$assocs]}; s=${RESULT[storescp/$assocs]}
print('%d assoc: Yilian/Orthanc = %.2fx   Yilian/storescp = %.0f%%' % ($assocs, o/y, 100*s/y))"
done
