#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server in a temp dir on a free loopback port.
#   source scripts/pg-temp.sh start   -> exports PAYDESK_TEST_POSTGRES_URL, PAYDESK_PG_DIR
#   scripts/pg-temp.sh stop DIR       -> stops it and removes DIR
# The tests' server skips fsync (fsync=off, synchronous_commit=off): nothing in it must
# survive a power cut. PAYDESK_PG_DURABLE=on starts it as production runs, every commit on
# disk before it returns (the benchmarks, scripts/bench-notify.sh).
# Installs Debian's postgresql package when initdb/pg_ctl are missing. initdb refuses to run
# as root, so as root the server runs as the unprivileged `postgres` user (created by the
# package) and the data dir is handed to it.
set -euo pipefail

pg_bin_dir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  echo "paydesk: installing PostgreSQL (Debian package postgresql)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >/dev/null
  ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local bin dir port
  bin=$(pg_bin_dir)
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  dir=$(mktemp -d /tmp/paydesk-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(free_port)
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  if [ "${PAYDESK_PG_DURABLE:-off}" = on ]; then
    durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  fi
  as_pg_user "$bin/initdb" -D "$dir/data" -U paydesk --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  export PAYDESK_PG_DIR="$dir" PAYDESK_PG_BIN="$bin"
  export PAYDESK_TEST_POSTGRES_URL="postgres://paydesk@127.0.0.1:$port/postgres"
}

pg_stop() {
  local dir=$1 bin
  bin=${PAYDESK_PG_BIN:-$(pg_bin_dir)}
  if [ -d "$dir/data" ]; then as_pg_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) pg_start ;;
  stop) pg_stop "${2:?data dir}" ;;
  *) echo "usage: source scripts/pg-temp.sh start | scripts/pg-temp.sh stop DIR" >&2; exit 2 ;;
esac
