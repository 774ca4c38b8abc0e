#!/usr/bin/env bash
# ECG throughput: the MIT-BIH pipeline (read a 30-minute two-lead record, filter, detect the
# beats) on four records, detection alone, and detection on a 10 s 12-lead excerpt; then the
# EC57 accuracy of the same detector on the whole database; a record detected and its beats
# classified, and the classification's EC57 accuracy cross-validated by record. No peer is
# named for this one. Last, the end-to-end STEMI alert time idle and under load (alert.sh).
#
#   bench/ecg/run.sh [--build build] [--data ../shared/data]
set -euo pipefail
BUILD=build
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA="$ROOT/../shared/data"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
BIN="$ROOT/$BUILD/bench/yilian_bench_ecg"
[[ -x "$BIN" ]] || { echo "missing $BIN: run 'make build' first" >&2; exit 2; }
[[ -d "$DATA/mitdb" ]] || { echo "no MIT-BIH records under $DATA/mitdb" >&2; exit 2; }
taskset -c 0 "$BIN" --data="$DATA" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
echo
"$ROOT/$BUILD/yilian" ecg eval --db "$DATA/mitdb" | tail -1
echo
# Beat classification, cross-validated by record on the development set (about a minute).
"$ROOT/$BUILD/yilian" ecg eval --classes --db "$DATA/mitdb" | tail -9
echo
# The end-to-end STEMI alert time, idle and under load (about three minutes; bench/ecg/alert.sh).
"$ROOT/bench/ecg/alert.sh" --build "$BUILD"
