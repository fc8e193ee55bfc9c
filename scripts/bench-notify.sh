#!/usr/bin/env bash
# The payment-notification benchmark (docs/benchmarks.md): builds release, runs the real
# `paydesk` binary on a temp SQLite file and then on a throwaway PostgreSQL, drives it with
# `notify-bench` (distinct, duplicate-heavy and fixed-rate scenarios), checks in the
# database that every order was applied exactly once, and prints a table.
#
#   scripts/bench-notify.sh                       # both databases, default scenarios
#   BENCH_DBS=sqlite scripts/bench-notify.sh      # only SQLite
#   scripts/bench-notify.sh --orders 20000 --connections 32   # extra notify-bench flags
#   BENCH_SERVER=/tmp/paydesk-old scripts/bench-notify.sh   # another paydesk binary (A/B)
#
# scripts/abuse.sh runs the callback flood through this script: BENCH_NAME names the run
# (messages, temp dir, PostgreSQL database) and BENCH_TABLE_HEADER replaces the table's
# header for notify-bench's other rows.
#
# Leaves nothing behind: the server, PostgreSQL and the temp dirs go on exit, whatever
# happens. Exits non-zero if a reply was not SUCCESS or a database check failed.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BENCH_DBS=${BENCH_DBS:-sqlite postgres}
NAME=${BENCH_NAME:-bench}

# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
cargo build --release -p server -p paydesk-bench
BIN=$CARGO_TARGET_DIR/release
SERVER=${BENCH_SERVER:-$BIN/paydesk}

WORK=$(mktemp -d "/tmp/paydesk-$NAME.XXXXXX")
SERVER_PID=""
PG_DIR=""
cleanup() {
  local rc=$?
  stop_server
  if [ -n "$PG_DIR" ]; then scripts/pg-temp.sh stop "$PG_DIR" || true; fi
  rm -rf "$WORK"
  exit $rc
}
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# shellcheck source=scripts/bench-env.sh
source scripts/bench-env.sh

# run LABEL DATABASE_URL [notify-bench flags...]
run() {
  local label=$1 url=$2 port log
  shift 2
  port=$(free_port)
  log=$WORK/server-$label.log
  PAYDESK_DATABASE_URL=$url PAYDESK_LISTEN=127.0.0.1:$port "$SERVER" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    grep -q 'paydesk: listening on' "$log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "$NAME: paydesk exited" >&2; return 1; }
    sleep 0.1
  done
  grep -q 'paydesk: listening on' "$log" || { tail -n 20 "$log" >&2; echo "$NAME: paydesk did not start" >&2; return 1; }
  echo "$NAME: $label: paydesk on 127.0.0.1:$port (pid $SERVER_PID); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  PAYDESK_DATABASE_URL=$url "$BIN/notify-bench" --url "http://127.0.0.1:$port" --label "$label" \
    --server-pid "$SERVER_PID" "$@" \
    | tee -a "$WORK/rows.md" || {
    echo "$NAME: $label failed; the server's errors:" >&2
    grep -i '"level":"error"' "$log" | head -n 5 >&2 || true
    return 1
  }
  echo "$NAME: $label: done; load: $(cut -d' ' -f1-3 /proc/loadavg); server log $(wc -c <"$log") bytes" >&2
  stop_server
}

: >"$WORK/rows.md"
for db in $BENCH_DBS; do
  case $db in
    sqlite)
      run sqlite "sqlite://$WORK/sqlite/paydesk.db" "$@"
      ;;
    postgres)
      # shellcheck source=/dev/null
      source scripts/pg-temp.sh start
      PG_DIR=$PAYDESK_PG_DIR
      psql=$PAYDESK_PG_BIN/psql
      [ -x "$psql" ] || psql=psql
      "$psql" -q -d "$PAYDESK_TEST_POSTGRES_URL" -c "create database paydesk_$NAME" >/dev/null
      run postgres "${PAYDESK_TEST_POSTGRES_URL%/*}/paydesk_$NAME" "$@"
      scripts/pg-temp.sh stop "$PG_DIR"
      PG_DIR=""
      ;;
    *) echo "$NAME: unknown database $db (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load now $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if [ -n "${BENCH_TABLE_HEADER:-}" ]; then
  printf '%s\n' "$BENCH_TABLE_HEADER"
else
  echo "| db | scenario | notifications | per second | p50 ms | p90 ms | p99 ms | max ms | sent late p50 / p99 ms |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
fi
cat "$WORK/rows.md"
