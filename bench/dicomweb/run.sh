#!/usr/bin/env bash
# DICOMweb benchmark: the same synthetic archive (100,000 single-instance studies and a
# 512x512 CT series) in Yilian and in Orthanc with its DICOMweb plugin; QIDO-RS study search
# latency (PatientID exact, PatientName wildcard, StudyDate range; limit=100) and rendered
# frame latency, measured by one client over a kept-alive loopback connection.
#
#   bench/dicomweb/run.sh [--studies 100000] [--queries 300] [--postgres] [--build build]
#                         [--replicate N] [--yilian-only] [--rounds N]
#
# Yilian gets the archive with `yilian import`, Orthanc over DICOM (storescu, 4 associations);
# how the data arrived does not affect the queries. Needs the Debian packages orthanc and
# orthanc-dicomweb (`YILIAN_BENCH_DEPS=1 make deps`). --postgres: both keep their index in a
# PostgreSQL server of the benchmark's own (Orthanc through the orthanc-postgresql plugin).
# --replicate N (with --postgres): after the import, Yilian's index is copied inside PostgreSQL
# to N times its studies (bench/dicomweb/replicate.sql), for 1,000,000 studies without hours of
# loading. --yilian-only: Orthanc is neither loaded nor measured. --rounds N: N rounds of
# queries, each with queries of its own (the first on a cold server).
set -euo pipefail

STUDIES=100000 QUERIES=300 BUILD=build POSTGRES=0 REPLICATE=1 ORTHANC=1 ROUNDS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --postgres) POSTGRES=1; shift ;;
    --replicate) REPLICATE=$2; shift 2 ;;
    --yilian-only) ORTHANC=0; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --studies) STUDIES=$2; shift 2 ;;
    --queries) QUERIES=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ $REPLICATE -gt 1 && $POSTGRES -eq 0 ]]; then
  echo "--replicate needs --postgres" >&2; exit 2
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
GEN="$ROOT/$BUILD/bench/yilian_gen_studies"
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
source "$ROOT/bench/lib.sh" dicomweb
require "run 'make build' first" "$YILIAN" "$GEN"
require "YILIAN_BENCH_DEPS=1 make deps" curl python3
if [[ $ORTHANC -eq 1 ]]; then require "YILIAN_BENCH_DEPS=1 make deps" storescu Orthanc "$PLUGIN"; fi
PLUGINS="\"$PLUGIN\"" ORTHANC_PG="" Y_DB=() BACKEND="embedded (SQLite)"
if [[ $POSTGRES -eq 1 ]]; then
  PG_PLUGIN=/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so
  if [[ $ORTHANC -eq 1 ]]; then require "apt-get install orthanc-postgresql" "$PG_PLUGIN"; fi
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
HELD=$((STUDIES + 1))
if [[ $REPLICATE -gt 1 ]]; then
  # The hub routes the studies an import left without a reading task when it starts; copies of
  # routed studies come with their tasks, so the measured hub has no backlog to work through.
  echo "routing the imported studies (yilian serve until every study has its reading task)..."
  start=$(date +%s)
  "$YILIAN" serve --data "$WORK/yilian" --dicom-port "$(free_port)" --http-port "$(free_port)" \
    >"$WORK/routing.log" 2>&1 &
  ROUTER=$!
  PIDS+=($ROUTER)
  waiting=-1
  for _ in $(seq 1 1800); do
    waiting=$(psql_ -d yilian -At -c "SELECT count(*) FROM studies s
      WHERE NOT EXISTS (SELECT 1 FROM reading_tasks t WHERE t.study_pk = s.id)")
    [[ $waiting -eq 0 ]] && break
    sleep 2
  done
  kill "$ROUTER"; wait "$ROUTER" || true
  [[ $waiting -eq 0 ]] || { echo "$waiting studies still without a task" >&2; exit 1; }
  echo "  $(( $(date +%s) - start )) s"
  echo "copying Yilian's index to $REPLICATE times its studies (replicate.sql)..."
  start=$(date +%s)
  psql_ -d yilian -v copies="$REPLICATE" -f "$ROOT/bench/dicomweb/replicate.sql" >/dev/null
  HELD=$(psql_ -d yilian -At -c "SELECT count(*) FROM studies")
  echo "  $HELD studies, $(( $(date +%s) - start )) s"
fi
YPORT=$(free_port)
"$YILIAN" serve --data "$WORK/yilian" --dicom-port "$(free_port)" --http-port "$YPORT" \
  >"$WORK/yilian.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$YPORT/healthz"
TOKEN=$(curl -s -d '{"username":"bench","password":"bench-password"}' \
  "http://127.0.0.1:$YPORT/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

if [[ $ORTHANC -eq 1 ]]; then
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
  OHELD=$(curl -s "http://127.0.0.1:$OPORT/statistics" | python3 -c 'import json,sys; print(json.load(sys.stdin)["CountStudies"])')
  [[ "$OHELD" -eq $((STUDIES + 1)) ]] || { echo "Orthanc holds $OHELD studies, expected $((STUDIES + 1))" >&2; exit 1; }
fi

ARGS=(--studies "$STUDIES" --study "$CT_STUDY" --series "$CT_SERIES" --queries "$QUERIES")
for round in $(seq 1 "$ROUNDS"); do
  echo "measuring ($QUERIES queries of each kind, round $round of $ROUNDS)..."
  Y=$(python3 "$ROOT/bench/dicomweb/latency.py" --port "$YPORT" --token "$TOKEN" "${ARGS[@]}" \
    --seed $((6 + round)))
  O=null
  if [[ $ORTHANC -eq 1 ]]; then
    O=$(python3 "$ROOT/bench/dicomweb/latency.py" --port "$OPORT" "${ARGS[@]}" --seed $((6 + round)))
  fi
  python3 - "$Y" "$O" "$HELD" "$BACKEND" "$round" <<'PY'
import json, sys
y, o, n, backend = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
print()
print("DICOMweb latency, %s studies, index on %s, one client, loopback (ms), round %s" % (
    n, backend, sys.argv[5]))
if o is None:
    print("%-16s %9s %9s %9s" % ("query", "Y p50", "Y p99", "matches"))
else:
    print("%-16s %9s %9s %9s %9s %11s %9s" % ("query", "Y p50", "Y p99", "O p50", "O p99", "O/Y p99", "matches"))
for k in ["patient_id", "name_wildcard", "date_range", "rendered_first", "rendered_again"]:
    matches = "%.0f" % y[k]["mean_matches"] if "mean_matches" in y[k] else "-"
    if o is None:
        print("%-16s %9.2f %9.2f %9s" % (k, y[k]["p50"], y[k]["p99"], matches))
    else:
        print("%-16s %9.2f %9.2f %9.2f %9.2f %10.1fx %9s" % (
            k, y[k]["p50"], y[k]["p99"], o[k]["p50"], o[k]["p99"], o[k]["p99"] / y[k]["p99"], matches))
PY
done
