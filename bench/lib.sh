# Shared by the benchmark scripts (sourced): checks that tools exist, a scratch directory that
# is removed on exit together with the servers started from it, free loopback ports.
#
#   source "$ROOT/bench/lib.sh" NAME     # NAME: the benchmark, for the scratch directory

require() {  # hint tool... : exits 2 naming the first missing tool
  local hint=$1; shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || [[ -e "$tool" ]] ||
      { echo "missing $tool: $hint" >&2; exit 2; }
  done
}

WORK=$(mktemp -d "/tmp/yilian-bench-$1.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # YILIAN_BENCH_KEEP=1 keeps the scratch directory (servers' logs) for a look afterwards.
  if [[ "${YILIAN_BENCH_KEEP:-0}" == "1" ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
export TCP_NODELAY=1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The consortium the live-room benchmarks use: a township and the lead hospital that reads its
# ECGs (consults from the township's doctor to the lead's cardiologist).
rooms_config() {  # file
  cat >"$1" <<TOML
[[institutions]]
code = "ta"
name = "Township A"
level = "township"
parent = "lead"
[[institutions]]
code = "lead"
name = "Lead Hospital"
level = "lead"
[[reading_services]]
provider = "lead"
service = "ecg"
clients = ["ta"]
TOML
}
