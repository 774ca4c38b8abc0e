#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for FUZZ_SECONDS (default 60)
# on a corpus seeded from pydicom's test files, ../shared/data and a few hand-made inputs.
# Findings (crash-*, leak-*, timeout-*) are left in build-fuzz/findings/<target>/; each one
# belongs in a regression test. Prints executions per target.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"dicom_ingest multipart qido json_body wfdb aecg ws_message config tus_header queue_setting hl7 fhir slide scanner_file"}
SHARED=${YILIAN_SHARED_DATA:-$ROOT/../shared/data}
PYDICOM=/usr/lib/python3/dist-packages/pydicom/data/test_files

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DYILIAN_FUZZ=ON >/dev/null
for t in $TARGETS; do cmake --build "$BUILD" -j "$(nproc)" --target "${t}_fuzz" >/dev/null; done

seed() {  # seed TARGET: fills $BUILD/corpus/TARGET once
  local dir="$BUILD/corpus/$1"
  [[ -d $dir ]] && return
  mkdir -p "$dir"
  case $1 in
    dicom_ingest)
      find "$PYDICOM" -maxdepth 1 -type f -size -256k -name '*.dcm' -exec cp {} "$dir/" \; ;;
    slide)
      for f in SC_rgb_rle_2frame.dcm SC_rgb_jpeg_dcmtk.dcm emri_small_jpeg_2k_lossless.dcm; do
        [[ -f $PYDICOM/$f ]] && cp "$PYDICOM/$f" "$dir/"
      done
      # A whole slide's smallest level, when a build has the converter and a slide to convert.
      if [[ -x $ROOT/build/yilian && -x $ROOT/build/bench/yilian_gen_slide ]]; then
        "$ROOT/build/bench/yilian_gen_slide" --out "$dir/../slide.svs" --width 512 --height 384 \
          --levels 2 >/dev/null &&
          "$ROOT/build/yilian" pathology import "$dir/../slide.svs" --out "$dir/../slide-dcm" \
            --patient-id FUZZ >/dev/null 2>&1 &&
          cp "$dir/../slide-dcm/slide-002.dcm" "$dir/wsi.dcm" || true
      fi ;;
    scanner_file)
      # A small Aperio SVS (JPEG tiles, a label and a thumbnail) from the slide generator.
      if [[ -x $ROOT/build/bench/yilian_gen_slide ]]; then
        "$ROOT/build/bench/yilian_gen_slide" --out "$dir/small.svs" --width 300 --height 200 \
          --levels 2 >/dev/null || true
      fi ;;
    multipart)
      printf 'multipart/related; type="application/dicom"; boundary=b\n--b\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--b\r\n\r\nno headers\r\n--b--\r\n' >"$dir/related"
      printf 'multipart/form-data; boundary=x\n--x\r\nContent-Disposition: form-data; name="file"; filename="100.hea"\r\n\r\n100 2 360 650000\r\n--x--\r\n' >"$dir/form" ;;
    qido)
      printf 'PatientName=ZHANG*\nStudyDate=20260101-20261231\nlimit=10\noffset=5\nModalitiesInStudy=CT\nincludefield=all\n00100020=P1\n' >"$dir/q1"
      printf 'multipart/related; type="application/dicom"; transfer-syntax=*, application/json;q=0.5\nbytes=0-99\n' >"$dir/q2" ;;
    json_body)
      printf '{"username":"a","password":"b"}' >"$dir/login"
      printf '{"kind":"final","findings":"\\u5f20","impression":"x","critical":false,"n":[1,2.5e3,null,true]}' >"$dir/report" ;;
    wfdb)
      for r in 100 101; do
        [[ -f $SHARED/mitdb/$r.hea ]] || continue
        { cat "$SHARED/mitdb/$r.hea"; printf '\0'; head -c 3000 "$SHARED/mitdb/$r.dat"; } >"$dir/$r"
      done ;;
    aecg)
      [[ -f $SHARED/aecg/minimum-aecg.xml ]] && cp "$SHARED/aecg/minimum-aecg.xml" "$dir/" ;;
    ws_message)
      printf '{"type":"hello","token":"abc"}' >"$dir/hello"
      printf '{"v":1,"type":"chat","consult":1,"clientId":"c1","text":"\\u5f20"}' >"$dir/chat"
      printf '{"type":"view","consult":2,"state":{"series":"1.2","frame":3}}' >"$dir/view"
      printf '{"type":"case.join","case":4,"ref":"r"}' >"$dir/case" ;;
    config)
      printf '[dicom]\nreject_unknown_ae = true\ndefault_charset = "GB18030"\n[[dicom.senders]]\nae_title = "TA_US"\ncharset = "GBK"\n[[institutions]]\ncode = "ta"\nname = "A"\nae_titles = ["TA_CT"]\n[[reading_services]]\nprovider = "lead"\nservice = "imaging"\nclients = ["ta"]\n[queue]\nstable_seconds = 10\n' >"$dir/toml" ;;
    tus_header)
      printf 'content-type bXVsdGlwYXJ0L3JlbGF0ZWQ7IGJvdW5kYXJ5PXg=,study MS4yLjM=,flag' >"$dir/meta"
      printf '262144' >"$dir/size" ;;
    fhir)
      printf '{"resourceType":"Bundle","type":"transaction","identifier":{"system":"urn:lis","value":"B1"},"entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"identifier":{"value":"P1"}},"effectiveDateTime":"2026-12-05T08:30:00+08:00","valueQuantity":{"value":96,"unit":"g/L"},"referenceRange":[{"low":{"value":115},"high":{"value":150}}],"interpretation":[{"coding":[{"code":"L"}]}]}}]}' >"$dir/bundle" ;;
    hl7)
      printf '\x0bMSH|^~\\&|LIS|ta|YILIAN|HUB|20261205100000||ORU^R01^ORU_R01|C1|P|2.5.1||||||GB 18030-2000\rPID|1||TA-7^^^ta^MR||Li^Na\rOBR|1|O1|F1|CBC^Blood count^L|||202612050830+0800\rOBX|1|NM|718-7^Hemoglobin^LN^HGB^Hb^L||96|g/L|115-150|L~A|||F|||20261205091500\rOBX|2|SN|2345-7^Glucose^LN||>^20|mmol/L||H|||C\rOBX|3|ST|8251-1^Comment^LN||a \\T\\ b\\.br\\c||||||P\r\x1c\r' >"$dir/oru" ;;
  esac
  # libFuzzer needs at least one input.
  [[ -n $(ls -A "$dir") ]] || printf 'x' >"$dir/empty"
}

printf '%-14s %12s %8s %s\n' target executions seconds result
status=0
for t in $TARGETS; do
  seed "$t"
  findings="$BUILD/findings/$t"
  mkdir -p "$findings"
  log="$BUILD/findings/$t.log"
  set +e
  "$BUILD/fuzz/${t}_fuzz" "$BUILD/corpus/$t" -max_total_time="$SECONDS_EACH" -max_len=262144 \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  secs=$(grep -E '^stat::' "$log" >/dev/null && grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}')
  result=clean
  if [[ $rc -ne 0 ]]; then result="FINDING (see $log)"; status=1; fi
  printf '%-14s %12s %8s %s\n' "$t" "${runs:-?}" "${secs:-$SECONDS_EACH}" "$result"
done
exit $status
