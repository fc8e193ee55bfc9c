#!/usr/bin/env bash
# Reconciliation at a million orders (docs/benchmarks.md, issue 19): `paydesk reconcile
# --day` on a seeded database, the release binary as its own process, timed with GNU time
# (wall clock, maximum resident set size). The database is seeded first by another process
# (`paydesk seed`, BENCH_ORDERS orders over BENCH_DAYS days: 1,000,000 over 10 days puts
# about 100,000 payments on a day) into a temp SQLite file, or copied from BENCH_DB (never
# changed). reconcile-bench tells a WeChat Pay simulator every trade of yesterday, so its
# bill has a row for each; the day must reconcile ✓, twice (the re-run over what the first
# stored).
#
#   scripts/bench-reconcile.sh                               # 1,000,000 orders over 10 days
#   BENCH_ORDERS=100000 BENCH_DAYS=2 scripts/bench-reconcile.sh
#
# Leaves nothing behind. Exits non-zero if the day does not reconcile ✓.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BENCH_ORDERS=${BENCH_ORDERS:-1000000}
BENCH_DAYS=${BENCH_DAYS:-10}

command -v /usr/bin/time >/dev/null || { echo "bench-reconcile: needs GNU time (apt-get install time)" >&2; exit 1; }
# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
cargo build --release -p server -p paydesk-bench
BIN=$CARGO_TARGET_DIR/release

WORK=$(mktemp -d /tmp/paydesk-reconcile.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DB=$WORK/paydesk.db
if [ -n "${BENCH_DB:-}" ]; then
  cp "$BENCH_DB" "$DB"
  echo "reconcile: copied $BENCH_DB" >&2
else
  started=$(date +%s)
  PAYDESK_DATABASE_URL=sqlite://$DB "$BIN/paydesk" seed --orders "$BENCH_ORDERS" --days "$BENCH_DAYS" >&2
  echo "reconcile: seeded $BENCH_ORDERS orders over $BENCH_DAYS days in $(( $(date +%s) - started )) s" >&2
fi
sync
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%F)"
"$BIN/reconcile-bench" --database-url "sqlite://$DB" --paydesk "$BIN/paydesk"
