#!/usr/bin/env bash
# The orders page over HTTP at a million orders (docs/benchmarks.md, issue 18): the release
# `paydesk` binary, a fresh process, server-side rendering, driven by curl with a signed-in
# session (what a browser's first request for the page costs, without the browser). The
# database is seeded first by another process (`paydesk seed`, BENCH_ORDERS orders over 90
# days) into a temp SQLite file, or copied from BENCH_DB (never changed). Prints, per filter
# (a URL query of /orders), p50 / p95 / max over BENCH_REQUESTS requests.
#
#   scripts/bench-orders-page.sh                           # 1,000,000 orders, the filters below
#   BENCH_DB=/path/paydesk.db scripts/bench-orders-page.sh 'min=100&max=150' 'status=PAID'
#   BENCH_SERVER=/tmp/paydesk-old scripts/bench-orders-page.sh   # another binary, not built (A/B)
#
# Leaves nothing behind: the server and the temp dir go on exit, whatever happens. Exits
# non-zero if a page does not answer 200.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BENCH_ORDERS=${BENCH_ORDERS:-1000000}
BENCH_REQUESTS=${BENCH_REQUESTS:-40}

# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
if [ -z "${BENCH_SERVER:-}" ]; then cargo build --release -p server; fi
SERVER=${BENCH_SERVER:-$CARGO_TARGET_DIR/release/paydesk}

WORK=$(mktemp -d /tmp/paydesk-orders-page.XXXXXX)
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Merchant mode, no simulator, no sync job; the admin password the seeded database gets.
# shellcheck source=scripts/bench-env.sh
source scripts/bench-env.sh
PASSWORD=${BENCH_ADMIN_PASSWORD:-$PAYDESK_ADMIN_PASSWORD}

DB=$WORK/paydesk.db
if [ -n "${BENCH_DB:-}" ]; then
  cp "$BENCH_DB" "$DB"
  echo "orders-page: copied $BENCH_DB" >&2
else
  started=$(date +%s)
  PAYDESK_DATABASE_URL=sqlite://$DB "$SERVER" seed --orders "$BENCH_ORDERS" --days 90 \
    --yes-this-is-not-production >&2
  echo "orders-page: seeded $BENCH_ORDERS orders in $(( $(date +%s) - started )) s" >&2
fi
# The seeding's dirty pages on disk before the server starts.
sync

PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
PAYDESK_DATABASE_URL=sqlite://$DB PAYDESK_LISTEN=127.0.0.1:$PORT "$SERVER" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_listening "$WORK/server.log" "$SERVER_PID"

JAR=$WORK/cookies
status=$(curl -sS -c "$JAR" -b "$JAR" -H "Origin: $BASE" -o /dev/null -w '%{http_code}' \
  --data-urlencode username=admin --data-urlencode "password=$PASSWORD" "$BASE/api/auth/login")
[ "$status" = 200 ] || { echo "orders-page: sign-in answered $status" >&2; exit 1; }

# The last seven days as the page's default view names them (Asia/Shanghai).
FROM=$(TZ=Asia/Shanghai date -d '6 days ago' +%F)
if [ $# -eq 0 ]; then
  set -- "from=$FROM" "from=$FROM&min=100&max=150" "min=100&max=150" "from=$FROM&min=100.5&max=150" \
    "min=500" "status=PAID&min=600" "status=PAID&min=1000&max=2000" "from=$FROM&min=700"
fi

echo
echo "| filter (/orders?…) | orders on the page | requests | p50 ms | p95 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|"
for query in "$@"; do
  : >"$WORK/times"
  for _ in $(seq 1 "$BENCH_REQUESTS"); do
    curl -sS -b "$JAR" -o "$WORK/page.html" -w '%{http_code} %{time_total}\n' "$BASE/orders?$query" >>"$WORK/times"
  done
  bad=$(awk '$1 != 200' "$WORK/times" | head -n 1)
  [ -z "$bad" ] || { echo "orders-page: $query answered ${bad%% *}" >&2; exit 1; }
  # Rows on the last page served: each order links to its timeline.
  rows=$({ grep -o 'href="/orders/[A-Za-z0-9_-]*"' "$WORK/page.html" || true; } | sort -u | wc -l)
  awk '{ print $2 * 1000 }' "$WORK/times" | sort -n | awk -v q="$query" -v rows="$rows" '
    { t[NR] = $1 }
    END { p95 = int(NR * 0.95); if (p95 < NR * 0.95) p95++
          printf "| `%s` | %d | %d | %.1f | %.1f | %.1f |\n", q, rows, NR, t[int((NR + 1) / 2)], t[p95], t[NR] }'
done
