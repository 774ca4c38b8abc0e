#!/usr/bin/env bash
# A CT from a modality at a township clinic to "readable at the hub", through a simulated link
# (default 10 Mb/s, 40 ms each way), once clean and once with a cut in the middle (default
# 30 s), three ways:
#   (a) yilian edge at the clinic (resumable, compressed, STAT first);
#   (b) storescu straight to the hub (today); after a cut the whole send is repeated, as a
#       person would;
#   (c) Orthanc at the clinic forwarding the study to the hub by C-STORE (its store job to a
#       modality), resubmitted after a cut.
# The CT: 400 slices of 512x512, 16 bit, a head phantom with 12 HU noise (yilian_gen_ct
# --noise 12). Also: a STAT ECG sent to the edge while the CT is in transfer, time until it is
# readable at the hub. Reports time to the first image and to the whole study at the hub
# (polled in its index every 50 ms), bytes on the wire (the link's count, both ways), and
# ratios. Settings: EDGE_COUNT, EDGE_SIZE, EDGE_MBPS, EDGE_DELAY_MS, EDGE_CUT_S, EDGE_RUNS
# (default "a b c").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh" edge
BUILD=${BUILD:-$ROOT/build}
Y=$BUILD/yilian
COUNT=${EDGE_COUNT:-400}
SIZE=${EDGE_SIZE:-512}
MBPS=${EDGE_MBPS:-10}
DELAY=${EDGE_DELAY_MS:-40}
CUT=${EDGE_CUT_S:-30}
RUNS=${EDGE_RUNS:-"a b c"}
require "run 'make build'" "$Y" "$BUILD/bench/yilian_link" "$BUILD/bench/yilian_gen_ct"
require "run 'make bench' (installs orthanc)" storescu dcmdump Orthanc curl python3 sqlite3

now() { date +%s.%N; }
since() { python3 -c "print('%.2f' % ($(now) - $1))"; }

STUDY=$("$BUILD/bench/yilian_gen_ct" --out "$WORK/ct" --count "$COUNT" --size "$SIZE" --noise 12 \
  --stemi-ecg "$WORK/stemi.dcm")
ECG_STUDY=$(dcmdump -s +P 0020,000d "$WORK/stemi.dcm" | sed -E 's/.*\[([^]]*)\].*/\1/')
CT_BYTES=$(du -sb "$WORK/ct" | cut -f1)
FILES=("$WORK"/ct/series1/*.dcm)
echo "CT: $COUNT slices ${SIZE}x${SIZE}, $((CT_BYTES / 1000000)) MB; link ${MBPS} Mb/s, ${DELAY} ms each way; cut ${CUT} s"

wait_file() { for _ in $(seq 600); do [[ -s $1 ]] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }
port_of() { python3 -c "import json; print(json.load(open('$1'))['$2'])"; }

start_hub() {  # name: sets HUB_DIR HUB_PID HUB_DICOM HUB_HTTP
  HUB_DIR=$WORK/hub-$1
  "$Y" institution add --data "$HUB_DIR" --name "Township A" --level township ta >/dev/null
  "$Y" edge-credential issue --data "$HUB_DIR" --name "edge-$1" --institution ta >"$WORK/token-$1"
  "$Y" serve --data "$HUB_DIR" --dicom-port 0 --http-port 0 --port-file "$HUB_DIR.ports" \
    >"$HUB_DIR.log" 2>&1 &
  HUB_PID=$!
  PIDS+=("$HUB_PID")
  wait_file "$HUB_DIR.ports"
  HUB_DICOM=$(port_of "$HUB_DIR.ports" dicom)
  HUB_HTTP=$(port_of "$HUB_DIR.ports" http)
}
stop_hub() { kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; }

start_link() {  # target port: sets LINK_PID LINK_PORT
  rm -f "$WORK/link.port"
  "$BUILD/bench/yilian_link" --target "$1" --mbps "$MBPS" --delay-ms "$DELAY" \
    --port-file "$WORK/link.port" >"$WORK/link.out" &
  LINK_PID=$!
  PIDS+=("$LINK_PID")
  wait_file "$WORK/link.port"
  LINK_PORT=$(cat "$WORK/link.port")
}
stop_link() {  # -> WIRE (bytes both ways)
  kill "$LINK_PID"
  wait "$LINK_PID" 2>/dev/null || true
  WIRE=$(python3 -c "import json; d=json.load(open('$WORK/link.out')); print(d['up'] + d['down'])")
}

hub_count() {  # study uid
  sqlite3 "$HUB_DIR/index.sqlite" "SELECT COUNT(*) FROM instances i JOIN series s ON s.id = i.series_pk JOIN studies t ON t.id = s.study_pk WHERE t.study_uid = '$1'" 2>/dev/null || echo 0
}

# Waits for the study at the hub: FIRST and ALL in seconds since $1. With "cut", the link is
# cut once half the study is there and restored CUT seconds later ($WORK/restored appears).
watch_hub() {  # t0 cut|clean
  local cut=$2 n half=$((COUNT / 2)) cut_at=""
  FIRST=""
  rm -f "$WORK/restored"
  for _ in $(seq 144000); do  # at most 2 hours
    n=$(hub_count "$STUDY")
    [[ -z $FIRST && $n -ge 1 ]] && FIRST=$(since "$1")
    if [[ $cut == cut && -z $cut_at && $n -ge $half ]]; then
      kill -USR1 "$LINK_PID"
      cut_at=$(now)
    fi
    if [[ -n $cut_at && ! -e $WORK/restored ]] &&
      python3 -c "import sys; sys.exit(0 if $(now) - $cut_at >= $CUT else 1)"; then
      kill -USR2 "$LINK_PID"
      touch "$WORK/restored"
    fi
    if [[ $n -ge $COUNT ]]; then
      ALL=$(since "$1")
      return
    fi
    sleep 0.05
  done
  echo "the study never arrived" >&2
  exit 1
}

declare -A R

run_edge() {  # clean|cut
  start_hub "a-$1"
  start_link "$HUB_HTTP"
  local dir=$WORK/edge-$1
  "$Y" edge --data "$dir" --hub "http://127.0.0.1:$LINK_PORT" --credential-file "$WORK/token-a-$1" \
    --dicom-port 0 --http-port 0 --port-file "$dir.ports" >"$dir.log" 2>&1 &
  local edge_pid=$!
  PIDS+=("$edge_pid")
  wait_file "$dir.ports"
  local edge_dicom; edge_dicom=$(port_of "$dir.ports" dicom)
  local t0; t0=$(now)
  storescu -aet CT1 -aec YILIAN 127.0.0.1 "$edge_dicom" "${FILES[@]}" &
  local ecg_pid=""
  if [[ $1 == clean ]]; then
    (  # the STAT ECG, once a quarter of the CT is at the hub
      while [[ $(hub_count "$STUDY") -lt $((COUNT / 4)) ]]; do sleep 0.05; done
      storescu -aet ECG1 -aec YILIAN 127.0.0.1 "$edge_dicom" "$WORK/stemi.dcm"
      t=$(now)
      while [[ $(hub_count "$ECG_STUDY") -lt 1 ]]; do sleep 0.02; done
      since "$t" >"$WORK/ecg-latency"
      hub_count "$STUDY" >"$WORK/ecg-ct-count"
    ) &
    ecg_pid=$!
  fi
  watch_hub "$t0" "$1"
  [[ -n $ecg_pid ]] && wait "$ecg_pid"
  wait %storescu 2>/dev/null || true
  local bundles; bundles=$(sqlite3 "$dir/index.sqlite" "SELECT SUM(length) FROM edge_bundles")
  local resumes; resumes=$(curl -s "http://127.0.0.1:$(port_of "$dir.ports" http)/edge/status" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["resumes"])')
  kill "$edge_pid"; wait "$edge_pid" 2>/dev/null || true
  stop_link
  stop_hub
  R[a-$1]="$FIRST $ALL $WIRE"
  echo "(a) edge, $1: first image ${FIRST} s, whole study ${ALL} s, $((WIRE / 1000000)) MB on the wire (bundles $((bundles / 1000000)) MB, resumed ${resumes}x)"
  if [[ $1 == clean ]]; then
    echo "    STAT ECG sent while the CT was in transfer: readable at the hub $(cat "$WORK/ecg-latency") s after the edge took it ($(cat "$WORK/ecg-ct-count")/$COUNT CT slices there then)"
  fi
}

run_storescu() {  # clean|cut
  start_hub "b-$1"
  start_link "$HUB_DICOM"
  local t0; t0=$(now)
  (
    until storescu -aet CT1 -aec YILIAN 127.0.0.1 "$LINK_PORT" "${FILES[@]}" 2>/dev/null; do
      # The association broke with the link: once it is back, everything again.
      while [[ ! -e $WORK/restored ]]; do sleep 0.1; done
    done
  ) &
  local sender=$!
  watch_hub "$t0" "$1"
  wait "$sender" || true
  stop_link
  stop_hub
  R[b-$1]="$FIRST $ALL $WIRE"
  echo "(b) storescu, $1: first image ${FIRST} s, whole study ${ALL} s, $((WIRE / 1000000)) MB on the wire"
}

run_orthanc() {  # clean|cut
  start_hub "c-$1"
  start_link "$HUB_DICOM"
  local dir=$WORK/orthanc-$1 http dicom
  http=$(free_port)
  dicom=$(free_port)
  mkdir -p "$dir"
  cat >"$dir.json" <<JSON
{ "Name": "clinic", "StorageDirectory": "$dir/storage", "IndexDirectory": "$dir/index",
  "DicomAet": "CLINIC", "DicomPort": $dicom, "HttpPort": $http, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true,
  "DicomModalities": { "hub": [ "YILIAN", "127.0.0.1", $LINK_PORT ] },
  "DicomScuTimeout": 30, "Plugins": [] }
JSON
  Orthanc "$dir.json" >"$dir.log" 2>&1 &
  local orthanc_pid=$!
  PIDS+=("$orthanc_pid")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$http/system" >/dev/null && break; sleep 0.1; done
  local t0; t0=$(now)
  (
    storescu -aet CT1 -aec CLINIC 127.0.0.1 "$dicom" "${FILES[@]}"
    id=$(curl -s "http://127.0.0.1:$http/studies" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])')
    job=$(curl -s -X POST "http://127.0.0.1:$http/modalities/hub/store" \
      -d "{\"Resources\": [\"$id\"], \"Asynchronous\": true}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')
    while true; do
      state=$(curl -s "http://127.0.0.1:$http/jobs/$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["State"])')
      case $state in
        Success) break ;;
        Failure)  # as a person would: resubmit once the link is back
          while [[ ! -e $WORK/restored ]]; do sleep 0.1; done
          curl -s -X POST "http://127.0.0.1:$http/jobs/$job/resubmit" -d '' >/dev/null ;;
      esac
      sleep 0.2
    done
  ) >"$dir.sender.log" 2>&1 &
  local sender=$!
  watch_hub "$t0" "$1"
  wait "$sender" || true
  kill "$orthanc_pid"; wait "$orthanc_pid" 2>/dev/null || true
  stop_link
  stop_hub
  R[c-$1]="$FIRST $ALL $WIRE"
  echo "(c) Orthanc forwarding, $1: first image ${FIRST} s, whole study ${ALL} s, $((WIRE / 1000000)) MB on the wire"
}

for run in $RUNS; do
  for mode in clean cut; do
    case $run in
      a) run_edge "$mode" ;;
      b) run_storescu "$mode" ;;
      c) run_orthanc "$mode" ;;
    esac
  done
done

# Ratios: (b) and (c) against (a).
for mode in clean cut; do
  [[ -n ${R[a-$mode]:-} ]] || continue
  read -r _ a_all a_wire <<<"${R[a-$mode]}"
  for peer in b c; do
    [[ -n ${R[$peer-$mode]:-} ]] || continue
    read -r _ p_all p_wire <<<"${R[$peer-$mode]}"
    python3 -c "print('$mode: whole study (%s)/(a) = %.2fx, bytes (%s)/(a) = %.2fx' % ('$peer', $p_all / $a_all, '$peer', $p_wire / $a_wire))"
  done
done
