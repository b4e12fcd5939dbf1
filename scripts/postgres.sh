#!/usr/bin/env bash
# A local PostgreSQL cluster for the demo and `make up` (tests start their own per test).
# initdb refuses to run as root, so the server runs as the `postgres` user (../shared/TOOLCHAIN.md).
#
#   scripts/postgres.sh start DIR PORT    # idempotent; data in DIR/data, socket in DIR
#   scripts/postgres.sh stop DIR
set -euo pipefail
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
cmd="${1:-}"; dir="${2:?directory}"; port="${3:-5432}"
mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"   # the server needs an absolute socket directory
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$dir" && chmod 700 "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    fi
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      echo "postgres already running on port $port"
    else
      as_pg "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/postgres.log" \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
      echo "postgres up: postgres://postgres@127.0.0.1:$port/postgres"
    fi ;;
  stop)
    if [[ -f "$dir/data/PG_VERSION" ]] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null && echo "postgres stopped"
    else
      echo "postgres not running"
    fi ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
