#!/usr/bin/env bash
# Whole-slide tile benchmark: one large synthetic slide (Aperio layout, textured JPEG tiles),
# converted to DICOM by Orthanc's WSI dicomizer, sent by C-STORE to Yilian and to Orthanc with
# its WSI plugin (Debian orthanc-wsi) in the same run; then random 256x256 tiles across all
# levels, the same tiles in the same order from each, by one client over a kept-alive loopback
# connection. Also: the conversion time of `yilian pathology import` beside the dicomizer's,
# and Yilian's peak memory while it received the slide.
#
#   bench/wsi/run.sh [--width 40000] [--height 30000] [--requests 2000] [--noise 24]
#                    [--build build]
#
# Needs the Debian packages orthanc and orthanc-wsi (`make deps` installs them).
set -euo pipefail

WIDTH=40000 HEIGHT=30000 REQUESTS=2000 NOISE=24 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --width) WIDTH=$2; shift 2 ;;
    --height) HEIGHT=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --noise) NOISE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
GEN="$ROOT/$BUILD/bench/yilian_gen_slide"
PLUGIN=/usr/share/orthanc/plugins/libOrthancWSI.so
source "$ROOT/bench/lib.sh" wsi
require "run 'make build' first" "$YILIAN" "$GEN"
require "make deps" curl python3 storescu dcmdump Orthanc OrthancWSIDicomizer "$PLUGIN"

wait_http() {  # url
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "no HTTP server at $1" >&2; return 1
}
seconds() { python3 -c 'import time; print("%.3f" % time.time())'; }
elapsed() { python3 -c "print('%.1f' % ($(seconds) - $1))"; }

echo "writing a ${WIDTH}x${HEIGHT} slide..."
"$GEN" --out "$WORK/slide.svs" --width "$WIDTH" --height "$HEIGHT" --levels 6 \
  --noise "$NOISE" --quality 90 >/dev/null
SLIDE_MB=$(( $(stat -c %s "$WORK/slide.svs") / 1048576 ))
echo "  $SLIDE_MB MiB"

echo "converting: yilian pathology import --out, and OrthancWSIDicomizer..."
t=$(seconds)
"$YILIAN" pathology import "$WORK/slide.svs" --out "$WORK/yilian-dcm" --patient-id BENCH-WSI \
  >"$WORK/convert-yilian.log" 2>&1
Y_CONVERT=$(elapsed "$t")
t=$(seconds)
mkdir -p "$WORK/orthanc-dcm"
OrthancWSIDicomizer --threads 2 --folder="$WORK/orthanc-dcm" "$WORK/slide.svs" \
  >"$WORK/convert-orthanc.log" 2>&1
O_CONVERT=$(elapsed "$t")
echo "  yilian ${Y_CONVERT} s, OrthancWSIDicomizer ${O_CONVERT} s"

echo "starting Yilian and Orthanc (WSI plugin)..."
printf 'bench-password\n' | "$YILIAN" user add --data "$WORK/yilian" \
  --role township_doctor --institution unknown bench >/dev/null 2>&1
YPORT=$(free_port) YDICOM=$(free_port)
"$YILIAN" serve --data "$WORK/yilian" --dicom-port "$YDICOM" --http-port "$YPORT" \
  --mllp-port 0 >"$WORK/yilian.log" 2>&1 &
YPID=$!
PIDS+=($YPID)
OPORT=$(free_port) ODICOM=$(free_port)
mkdir -p "$WORK/orthanc"
cat >"$WORK/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$WORK/orthanc/storage", "IndexDirectory": "$WORK/orthanc/index",
  "DicomAet": "TARGET", "DicomPort": $ODICOM, "HttpPort": $OPORT, "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false, "DicomCheckCalledAet": false, "DicomAlwaysAllowStore": true,
  "Plugins": ["$PLUGIN"] }
JSON
Orthanc "$WORK/orthanc.json" >"$WORK/orthanc.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$YPORT/healthz"
wait_http "http://127.0.0.1:$OPORT/system"

echo "sending the dicomizer's instances to both by C-STORE..."
t=$(seconds)
storescu -R -xy -aet BENCH -aec YILIAN 127.0.0.1 "$YDICOM" "$WORK"/orthanc-dcm/*.dcm
Y_STORE=$(elapsed "$t")
Y_PEAK_MB=$(( $(awk '/VmHWM/ {print $2}' "/proc/$YPID/status") / 1024 ))
# Yilian's own conversion: one instance per level, the full-resolution one the largest.
LARGEST_MB=$(( $(ls -S "$WORK"/yilian-dcm/*.dcm | head -1 | xargs stat -c %s) / 1048576 ))
t=$(seconds)
storescu -R -xy -aet BENCH -aec YILIAN 127.0.0.1 "$YDICOM" "$WORK"/yilian-dcm/*.dcm
Y_STORE_OWN=$(elapsed "$t")
Y_PEAK_OWN_MB=$(( $(awk '/VmHWM/ {print $2}' "/proc/$YPID/status") / 1024 ))
t=$(seconds)
storescu -R -xy -aet BENCH -aec TARGET 127.0.0.1 "$ODICOM" "$WORK"/orthanc-dcm/*.dcm
O_STORE=$(elapsed "$t")
INSTANCES=$(ls "$WORK"/orthanc-dcm/*.dcm | wc -l)
echo "  $INSTANCES instances: yilian ${Y_STORE} s, orthanc ${O_STORE} s"

TOKEN=$(curl -s -d '{"username":"bench","password":"bench-password"}' \
  "http://127.0.0.1:$YPORT/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
auth=(-H "Authorization: Bearer $TOKEN")
# The dicomizer's study (the one Orthanc has too), not Yilian's own conversion.
STUDY=$(curl -s "${auth[@]}" "http://127.0.0.1:$YPORT/dicom-web/studies?StudyInstanceUID=$(
  dcmdump +P 0020,000d "$(ls "$WORK"/orthanc-dcm/*.dcm | head -1)" | sed 's/.*\[\(.*\)\].*/\1/')" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["0020000D"]["Value"][0])')
SERIES=$(curl -s "${auth[@]}" "http://127.0.0.1:$YPORT/api/studies/$STUDY" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["series"][0]["seriesInstanceUid"])')
Y_TILES=$(curl -s "${auth[@]}" "http://127.0.0.1:$YPORT/api/slides/$STUDY/$SERIES" |
  python3 -c 'import json,sys; print(json.dumps([[l["tilesAcross"], l["tilesDown"]] for l in json.load(sys.stdin)["levels"]]))')
OSERIES=$(curl -s "http://127.0.0.1:$OPORT/series" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0])')
O_TILES=$(curl -s "http://127.0.0.1:$OPORT/wsi/pyramids/$OSERIES" |
  python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["TilesCount"]))')
[[ "$Y_TILES" == "$O_TILES" ]] || { echo "pyramids differ: yilian $Y_TILES, orthanc $O_TILES" >&2; exit 1; }

echo "measuring $REQUESTS random tiles on each (levels $Y_TILES)..."
# A first pass warms both (file cache, Yilian's frame indexes, Orthanc's pyramid cache).
python3 "$ROOT/bench/wsi/latency.py" --port "$YPORT" --token "$TOKEN" --tiles "$Y_TILES" \
  --path "/api/slides/$STUDY/$SERIES/tiles/{level}/{x}/{y}" --requests 300 --seed 1 >/dev/null
python3 "$ROOT/bench/wsi/latency.py" --port "$OPORT" --tiles "$O_TILES" \
  --path "/wsi/tiles/$OSERIES/{level}/{x}/{y}" --requests 300 --seed 1 >/dev/null
Y=$(python3 "$ROOT/bench/wsi/latency.py" --port "$YPORT" --token "$TOKEN" --tiles "$Y_TILES" \
  --path "/api/slides/$STUDY/$SERIES/tiles/{level}/{x}/{y}" --requests "$REQUESTS")
O=$(python3 "$ROOT/bench/wsi/latency.py" --port "$OPORT" --tiles "$O_TILES" \
  --path "/wsi/tiles/$OSERIES/{level}/{x}/{y}" --requests "$REQUESTS")

python3 - "$Y" "$O" <<PY
import json, sys
y, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print()
print("Whole-slide tiles: ${WIDTH}x${HEIGHT} slide (${SLIDE_MB} MiB SVS, ${INSTANCES} DICOM instances),")
print("%d random 256x256 tiles across all levels, one client, loopback (ms)" % y["requests"])
print("%-10s %8s %8s %8s %10s %7s" % ("server", "p50", "p99", "mean", "bytes/tile", "failed"))
for name, r in (("yilian", y), ("orthanc", o)):
    print("%-10s %8.2f %8.2f %8.2f %10.0f %7d" % (name, r["p50"], r["p99"], r["mean"], r["bytes"], r["failed"]))
print("orthanc/yilian: p50 %.1fx, p99 %.1fx" % (o["p50"] / y["p50"], o["p99"] / y["p99"]))
print()
print("conversion: yilian pathology import ${Y_CONVERT} s, OrthancWSIDicomizer --threads 2 ${O_CONVERT} s")
print("C-STORE of the slide: yilian ${Y_STORE} s (peak RSS ${Y_PEAK_MB} MiB), orthanc ${O_STORE} s")
print("C-STORE of yilian's own conversion (largest instance ${LARGEST_MB} MiB): ${Y_STORE_OWN} s, "
      "yilian's peak RSS ${Y_PEAK_OWN_MB} MiB")
PY
