#!/usr/bin/env bash
# DICOMweb benchmark: the same synthetic archive (100,000 single-instance studies and a
# 512x512 CT series) in Yilian and in Orthanc with its DICOMweb plugin; QIDO-RS study search
# latency (PatientID exact, PatientName wildcard, StudyDate range; limit=100) and rendered
# frame latency, measured by one client over a kept-alive loopback connection.
#
#   bench/dicomweb/run.sh [--studies 100000] [--queries 300] [--postgres] [--build build]
#
# Yilian gets the archive with `yilian import`, Orthanc over DICOM (storescu, 4 associations);
# how the data arrived does not affect the queries. Needs the Debian packages orthanc and
# orthanc-dicomweb (`YILIAN_BENCH_DEPS=1 make deps`). --postgres: both keep their index in a
# PostgreSQL server of the benchmark's own (Orthanc through the orthanc-postgresql plugin).
set -euo pipefail

STUDIES=100000 QUERIES=300 BUILD=build POSTGRES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1; shift ;;
    --studies) STUDIES=$2; shift 2 ;;
    --queries) QUERIES=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
GEN="$ROOT/$BUILD/bench/yilian_gen_studies"
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
source "$ROOT/bench/lib.sh" dicomweb
require "run 'make build' first" "$YILIAN" "$GEN"
require "YILIAN_BENCH_DEPS=1 make deps" storescu Orthanc curl python3 "$PLUGIN"
PLUGINS="\"$PLUGIN\"" ORTHANC_PG="" Y_DB=() BACKEND="embedded (SQLite)"
if [[ $POSTGRES -eq 1 ]]; then
  PG_PLUGIN=/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so
  require "apt-get install orthanc-postgresql" "$PG_PLUGIN"
  start_postgres
  for db in yilian orthanc; do psql_ -c "CREATE DATABASE $db"; done
  Y_DB=(--database "postgresql://postgres@127.0.0.1:$PGPORT/yilian")
  PLUGINS="$PLUGINS, \"$PG_PLUGIN\""
  ORTHANC_PG=", \"PostgreSQL\": { \"EnableIndex\": true, \"EnableStorage\": false,
    \"Host\": \"127.0.0.1\", \"Port\": $PGPORT, \"Database\": \"orthanc\",
    \"Username\": \"postgres\", \"Password\": \"\", \"EnableSsl\": false }"
  BACKEND="PostgreSQL"
fi

wait_http() {  # url
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "no HTTP server at $1" >&2; return 1
}

echo "generating $STUDIES studies and a 512x512 CT series..."
read -r CT_STUDY CT_SERIES < <("$GEN" --out "$WORK/archive" --studies "$STUDIES")

echo "loading Yilian (yilian import)..."
# The data directory remembers the database named here (user add runs first for that).
printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/yilian" "${Y_DB[@]}" \
  --role township_doctor --institution unknown bench >/dev/null 2>&1
start=$(date +%s)
"$YILIAN" import --data "$WORK/yilian" --institution unknown "$WORK/archive" >"$WORK/import.log" 2>&1
echo "  $(( $(date +%s) - start )) s"
YPORT=$(free_port)
"$YILIAN" serve --data "$WORK/yilian" --dicom-port "$(free_port)" --http-port "$YPORT" \
  >"$WORK/yilian.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$YPORT/healthz"
TOKEN=$(curl -s -d '{"username":"bench","password":"bench-password"}' \
  "http://127.0.0.1:$YPORT/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

echo "loading Orthanc (storescu, 4 associations)..."
OPORT=$(free_port) ODICOM=$(free_port)
mkdir -p "$WORK/orthanc"
cat >"$WORK/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$WORK/orthanc/storage", "IndexDirectory": "$WORK/orthanc/index",
  "DicomAet": "TARGET", "DicomPort": $ODICOM, "HttpPort": $OPORT, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true,
  "Plugins": [$PLUGINS], "DicomWeb": { "Enable": true, "Root": "/dicom-web/" }$ORTHANC_PG }
JSON
Orthanc "$WORK/orthanc.json" >"$WORK/orthanc.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$OPORT/system"
start=$(date +%s)
senders=()
for dir in "$WORK"/archive/f* "$WORK/archive/ct512"; do
  storescu +sd +r --max-pdu 131072 -aet BENCH -aec TARGET 127.0.0.1 "$ODICOM" "$dir" &
  senders+=($!)
done
for p in "${senders[@]}"; do wait "$p"; done
echo "  $(( $(date +%s) - start )) s"
HELD=$(curl -s "http://127.0.0.1:$OPORT/statistics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["CountStudies"])')
[[ "$HELD" -eq $((STUDIES + 1)) ]] || { echo "Orthanc holds $HELD studies, expected $((STUDIES + 1))" >&2; exit 1; }

echo "measuring ($QUERIES queries of each kind)..."
ARGS=(--studies "$STUDIES" --study "$CT_STUDY" --series "$CT_SERIES" --queries "$QUERIES")
Y=$(python3 "$ROOT/bench/dicomweb/latency.py" --port "$YPORT" --token "$TOKEN" "${ARGS[@]}")
O=$(python3 "$ROOT/bench/dicomweb/latency.py" --port "$OPORT" "${ARGS[@]}")
python3 - "$Y" "$O" "$STUDIES" "$BACKEND" <<'PY'
import json, sys
y, o, n, backend = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
print()
print("DICOMweb latency, %s studies, index on %s, one client, loopback (ms)" % (n, backend))
print("%-16s %9s %9s %9s %9s %11s %9s" % ("query", "Y p50", "Y p99", "O p50", "O p99", "O/Y p99", "matches"))
for k in ["patient_id", "name_wildcard", "date_range", "rendered_first", "rendered_again"]:
    print("%-16s %9.2f %9.2f %9.2f %9.2f %10.1fx %9s" % (
        k, y[k]["p50"], y[k]["p99"], o[k]["p50"], o[k]["p99"], o[k]["p99"] / y[k]["p99"],
        "%.0f" % y[k]["mean_matches"] if "mean_matches" in y[k] else "-"))
PY
