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

# A PostgreSQL server of the benchmark's own in $WORK/pg (initdb, default settings, fsync on;
# as the postgres user when run as root, which PostgreSQL refuses), on a free port: sets
# PGBIN and PGPORT, defines psql_; on exit the servers in PIDS stop before the database does
# (their last batches are not failures).
start_postgres() {
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  chmod 755 "$WORK"
  mkdir -p "$WORK/pg" && [[ $(id -u) -eq 0 ]] && chown postgres "$WORK/pg"
  as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  PGPORT=$(free_port)
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w \
    -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  stop_pg() { as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true; }
  psql_() { "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"; }
  stop_all() {
    for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    stop_pg
    cleanup
  }
  trap stop_all EXIT
}

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
