#!/usr/bin/env bash
# The callback flood (issue 15, docs/benchmarks.md): builds release, runs the real `paydesk`
# binary on a temp SQLite file (and then a throwaway PostgreSQL with BENCH_DBS), and drives
# it with `notify-bench --abuse`: junk posted to /wxpay/notify/payment as fast as the server
# answers for 60 s while signed notifications for real orders arrive at 200/s. Prints a
# table: valid ones applied (exactly once, checked in the database) and their latency, the
# rows, bytes and counts the junk left in the database, the database files' growth and the
# server's resident memory; and the machine's load before and after.
#
#   scripts/abuse.sh                                  # SQLite
#   BENCH_DBS="sqlite postgres" scripts/abuse.sh      # both
#   scripts/abuse.sh --abuse-seconds 20 --junk-connections 64   # extra notify-bench flags
#
# Leaves nothing behind: the server, PostgreSQL and the temp dirs go on exit. Exits non-zero
# if a valid notification was not applied exactly once.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BENCH_DBS=${BENCH_DBS:-sqlite}

cargo build --release -p server -p paydesk-bench
BIN=$CARGO_TARGET_DIR/release
SERVER=${BENCH_SERVER:-$BIN/paydesk}

WORK=$(mktemp -d /tmp/paydesk-abuse.XXXXXX)
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
# The flood's refusals are logged at info when stored; keep the server's log to warnings so
# that the log file is not what the benchmark measures.
export RUST_LOG=${RUST_LOG:-warn}

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
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "abuse: paydesk exited" >&2; return 1; }
    sleep 0.1
  done
  grep -q 'paydesk: listening on' "$log" || { tail -n 20 "$log" >&2; echo "abuse: paydesk did not start" >&2; return 1; }
  echo "abuse: $label: paydesk on 127.0.0.1:$port (pid $SERVER_PID); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  PAYDESK_DATABASE_URL=$url "$BIN/notify-bench" --abuse --rate 200 --rate-connections 8 \
    --url "http://127.0.0.1:$port" --label "$label" --server-pid "$SERVER_PID" "$@" \
    | tee -a "$WORK/rows.md" || {
    echo "abuse: $label failed; the server's errors:" >&2
    grep -i '"level":"error"' "$log" | head -n 5 >&2 || true
    return 1
  }
  echo "abuse: $label: done; load: $(cut -d' ' -f1-3 /proc/loadavg); server log $(wc -c <"$log") bytes" >&2
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
      "$psql" -q -d "$PAYDESK_TEST_POSTGRES_URL" -c 'create database paydesk_abuse' >/dev/null
      run postgres "${PAYDESK_TEST_POSTGRES_URL%/*}/paydesk_abuse" "$@"
      scripts/pg-temp.sh stop "$PG_DIR"
      PG_DIR=""
      ;;
    *) echo "abuse: unknown database $db (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load now $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| db | seconds | junk answered | junk/s | valid SUCCESS / sent | valid p50 ms | valid p99 ms | valid max ms | junk rows stored | junk MiB stored | junk counted | db files +MiB | server RSS start → max MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
cat "$WORK/rows.md"
