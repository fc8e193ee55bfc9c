#!/usr/bin/env bash
# The dashboard-query benchmark (docs/benchmarks.md, "Dashboard queries at 1,000,000
# orders"): builds release, seeds a temp SQLite file and then a throwaway PostgreSQL with
# `paydesk seed`, and times the orders page's queries with `dashboard-bench` (the data
# layer's server time: no HTTP, no rendering). Prints one markdown table.
#
#   scripts/bench-dashboard.sh                        # both databases, 1,000,000 orders
#   BENCH_DBS=sqlite BENCH_ORDERS=100000 scripts/bench-dashboard.sh
#   scripts/bench-dashboard.sh --runs 100 --id-runs 1000   # extra dashboard-bench flags
#
# Leaves nothing behind: PostgreSQL and the temp dirs (the seeded databases) go on exit,
# whatever happens.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BENCH_DBS=${BENCH_DBS:-sqlite postgres}
BENCH_ORDERS=${BENCH_ORDERS:-1000000}
BENCH_DAYS=${BENCH_DAYS:-90}

# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
cargo build --release -p server -p paydesk-bench
BIN=$CARGO_TARGET_DIR/release

WORK=$(mktemp -d /tmp/paydesk-dashboard-bench.XXXXXX)
PG_DIR=""
cleanup() {
  local rc=$?
  if [ -n "$PG_DIR" ]; then scripts/pg-temp.sh stop "$PG_DIR" || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A merchant configuration, so `seed` needs (and gets) the explicit flag, and nothing here
# could reach WeChat Pay: the seed never calls it.
export PAYDESK_SIMULATOR=off
export PAYDESK_WXPAY__APPID=wx2421b1c4370ec43b
export PAYDESK_WXPAY__MCH_ID=10000100
export PAYDESK_WXPAY__API_KEY=192006250b4c09247ec02edce69f6a2d
export PAYDESK_WXPAY__NOTIFY_URL=https://pay.example.com/wxpay/notify/payment
export PAYDESK_WXPAY__REFUND_NOTIFY_URL=https://pay.example.com/wxpay/notify/refund
export PAYDESK_LOG_FORMAT=json

# run LABEL DATABASE_URL [dashboard-bench flags...]
run() {
  local label=$1 url=$2 started
  shift 2
  started=$(date +%s)
  PAYDESK_DATABASE_URL=$url "$BIN/paydesk" seed --orders "$BENCH_ORDERS" --days "$BENCH_DAYS" \
    --yes-this-is-not-production 2>"$WORK/seed-$label.log" | tee "$WORK/seed-$label.out" >&2
  echo "bench: $label: seeded in $(( $(date +%s) - started )) s" >&2
  PAYDESK_DATABASE_URL=$url "$BIN/dashboard-bench" --label "$label" "$@" >"$WORK/rows-$label.md"
  tail -n +3 "$WORK/rows-$label.md" >>"$WORK/rows.md"
  head -n 2 "$WORK/rows-$label.md" >"$WORK/head.md"
}

: >"$WORK/rows.md"
for db in $BENCH_DBS; do
  case $db in
    sqlite)
      run sqlite "sqlite://$WORK/sqlite/paydesk.db" "$@"
      du -sh "$WORK/sqlite" >&2
      rm -rf "$WORK/sqlite"
      ;;
    postgres)
      # shellcheck source=/dev/null
      source scripts/pg-temp.sh start
      PG_DIR=$PAYDESK_PG_DIR
      psql=$PAYDESK_PG_BIN/psql
      [ -x "$psql" ] || psql=psql
      "$psql" -q -d "$PAYDESK_TEST_POSTGRES_URL" -c 'create database paydesk_bench' >/dev/null
      run postgres "${PAYDESK_TEST_POSTGRES_URL%/*}/paydesk_bench" "$@"
      scripts/pg-temp.sh stop "$PG_DIR"
      PG_DIR=""
      ;;
    *) echo "bench: unknown database $db (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

echo
cat "$WORK/head.md" "$WORK/rows.md"
