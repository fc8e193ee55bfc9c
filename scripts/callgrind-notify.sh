#!/usr/bin/env bash
# CPU per payment notification, as instructions counted by valgrind's callgrind: a figure
# that does not move with the machine's load (docs/benchmarks.md, round 3), for A/B of two
# builds on a busy machine. SQLite only.
#
#   scripts/callgrind-notify.sh                      # target/release/paydesk
#   BENCH_SERVER=/tmp/paydesk-old scripts/callgrind-notify.sh
#   CALLGRIND_ORDERS=2000 CALLGRIND_CONNECTIONS=8 scripts/callgrind-notify.sh
#
# Runs `paydesk` under callgrind on a temp SQLite file, sends 300 notifications to warm it
# up, zeroes the counters, sends CALLGRIND_ORDERS distinct notifications with notify-bench
# (closed loop, CALLGRIND_CONNECTIONS connections), dumps, and prints instructions per
# notification (every thread of the server: HTTP, verification, SQLite, logging). Keeps the
# dump in $CALLGRIND_OUT (default /tmp/callgrind-notify.out) for callgrind_annotate.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release
SERVER=${BENCH_SERVER:-$BIN/paydesk}
ORDERS=${CALLGRIND_ORDERS:-2000}
CONNECTIONS=${CALLGRIND_CONNECTIONS:-16}
OUT=${CALLGRIND_OUT:-/tmp/callgrind-notify.out}

WORK=$(mktemp -d /tmp/paydesk-callgrind.XXXXXX)
VG_PID=""
cleanup() {
  local rc=$?
  if [ -n "$VG_PID" ] && kill -0 "$VG_PID" 2>/dev/null; then
    kill "$VG_PID" 2>/dev/null || true
    wait "$VG_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/bench-env.sh
source scripts/bench-env.sh
export PAYDESK_DATABASE_URL=sqlite://$WORK/paydesk.db
port=$(free_port)

PAYDESK_LISTEN=127.0.0.1:$port valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
  "$SERVER" >"$WORK/server.log" 2>&1 &
VG_PID=$!
wait_listening "$WORK/server.log" "$VG_PID" 0.2

bench() {
  "$BIN/notify-bench" --url "http://127.0.0.1:$port" --label callgrind --warmup 0 \
    --dup-orders 0 --rate-seconds 0 --connections "$CONNECTIONS" --orders "$1" >/dev/null
}
bench 300
callgrind_control -z "$VG_PID" >/dev/null
bench "$ORDERS"
callgrind_control -d "$VG_PID" >/dev/null
sleep 1
dump=$(ls -t "$WORK"/cg.* | head -n 1)
cp "$dump" "$OUT"
total=$(grep -h '^summary:' "$OUT" | awk '{print $2}')
echo "server: $SERVER"
echo "instructions: $total for $ORDERS notifications = $((total / ORDERS)) per notification"
echo "dump: $OUT (callgrind_annotate $OUT | head -n 40)"
