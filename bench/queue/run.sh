#!/usr/bin/env bash
# Reading-queue benchmark: 1,000,000 tasks in the embedded SQLite store, 64 concurrent
# readers looping claim-next -> final report; then how fast a newly complete study's task
# reaches the worklist. No peer: Orthanc and DCMTK have no reading worklist to compare with.
#
#   bench/queue/run.sh [--tasks 1000000] [--readers 64] [--claims 20000] [--build build]
set -euo pipefail
BUILD=build
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/$BUILD/bench/yilian_bench_queue"
[[ -x "$BIN" ]] || { echo "missing $BIN: run 'make build' first" >&2; exit 2; }
DIR=$(mktemp -d /tmp/yilian-bench-queue.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
"$BIN" --dir "$DIR/q" "${ARGS[@]}"
