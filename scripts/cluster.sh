#!/usr/bin/env bash
# A local demonstration of a several-node hub from Debian packages: a PostgreSQL server made
# with initdb in a folder, two `yilian serve` nodes sharing it and one blob directory, and
# HAProxy in front (HTTP and DICOM). Ctrl-C stops everything; the folder stays for the next
# run unless --fresh is given.
#
#   scripts/cluster.sh [--dir /tmp/yilian-cluster] [--http 8080] [--dicom 11112] [--fresh]
#                      [--build build]
#
# Needs: make build; apt-get install postgresql haproxy. PostgreSQL refuses to run as root: as
# root, the server runs as the `postgres` user.
set -euo pipefail

DIR=/tmp/yilian-cluster HTTP=8080 DICOM=11112 FRESH=0 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --http) HTTP=$2; shift 2 ;;
    --dicom) DICOM=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
YILIAN="$ROOT/$BUILD/yilian"
[[ -x "$YILIAN" ]] || { echo "run 'make build' first" >&2; exit 2; }
command -v haproxy >/dev/null || { echo "apt-get install haproxy" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n "$PGBIN" ]] || { echo "apt-get install postgresql" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

[[ $FRESH -eq 1 ]] && rm -rf "$DIR"
mkdir -p "$DIR"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# 1. PostgreSQL in $DIR/pg on a free port.
PGPORT=$(free_port)
if [[ ! -d "$DIR/pg" ]]; then
  mkdir -p "$DIR/pg"
  [[ $(id -u) -eq 0 ]] && chown postgres "$DIR" "$DIR/pg"
  as_pg "$PGBIN/initdb" -D "$DIR/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
fi
[[ $(id -u) -eq 0 ]] && chown postgres "$DIR"
as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w \
  -o "-p $PGPORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -tc \
  "SELECT 1 FROM pg_database WHERE datname = 'yilian'" | grep -q 1 ||
  "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE yilian"
URL="postgresql://postgres@127.0.0.1:$PGPORT/yilian"
echo "PostgreSQL: $URL"

# 2. Two nodes: each its own data directory, one blob directory shared.
mkdir -p "$DIR/blobs"
if [[ ! -f "$DIR/admin-password" ]]; then
  python3 -c 'import secrets; print(secrets.token_urlsafe(12))' >"$DIR/admin-password"
  "$YILIAN" user add --data "$DIR/node1" --database "$URL" --role admin \
    --institution consortium admin <"$DIR/admin-password" >/dev/null
fi
declare -a NODE_HTTP NODE_DICOM
for n in 1 2; do
  NODE_HTTP[$n]=$(free_port)
  NODE_DICOM[$n]=$(free_port)
  "$YILIAN" serve --data "$DIR/node$n" --database "$URL" --blobs "$DIR/blobs" \
    --http-port "${NODE_HTTP[$n]}" --dicom-port "${NODE_DICOM[$n]}" \
    --node-address "127.0.0.1:${NODE_HTTP[$n]}" >"$DIR/node$n.log" 2>&1 &
  PIDS+=($!)
done
for n in 1 2; do
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:${NODE_HTTP[$n]}/healthz" && break
    sleep 0.1
  done
done

# 3. HAProxy in front: deploy/haproxy.cfg with these nodes' ports.
sed -e "s/bind :8080/bind 127.0.0.1:$HTTP/; s/bind :11112/bind 127.0.0.1:$DICOM/" \
  -e "s/^  maxconn .*/  maxconn 4000/" -e "/^  server node[0-9]/d" "$ROOT/deploy/haproxy.cfg" |
  awk -v h1="${NODE_HTTP[1]}" -v h2="${NODE_HTTP[2]}" -v d1="${NODE_DICOM[1]}" -v d2="${NODE_DICOM[2]}" '
    { print }
    /^backend yilian_http_nodes/ { http = 1; dicom = 0 }
    /^backend yilian_dicom_nodes/ { dicom = 1; http = 0 }
    /default-server check inter/ && http {
      print "  server node1 127.0.0.1:" h1; print "  server node2 127.0.0.1:" h2 }
    /default-server check port/ && dicom {
      print "  server node1 127.0.0.1:" d1 " check port " h1
      print "  server node2 127.0.0.1:" d2 " check port " h2 }' |
  sed -e "s/default-server check port 8080 /default-server /" >"$DIR/haproxy.cfg"
haproxy -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
PIDS+=($!)

cat <<EOF

Yilian cluster running (logs in $DIR):
  web, REST, DICOMweb, /ws   http://127.0.0.1:$HTTP/        (HAProxy -> nodes on ${NODE_HTTP[1]}, ${NODE_HTTP[2]})
  DICOM                      AE YILIAN at 127.0.0.1:$DICOM   (HAProxy -> nodes on ${NODE_DICOM[1]}, ${NODE_DICOM[2]})
  administrator              admin / $(cat "$DIR/admin-password")
  health                     curl http://127.0.0.1:${NODE_HTTP[1]}/healthz
Stop a node (kill the yilian process) to see HAProxy send everyone to the other.
Ctrl-C stops everything.
EOF
wait
