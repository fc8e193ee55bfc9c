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

# The flood's refusals are logged at info when stored; keep the server's log to warnings so
# that the log file is not what the benchmark measures.
export RUST_LOG=${RUST_LOG:-warn}
export BENCH_NAME=abuse
export BENCH_DBS=${BENCH_DBS:-sqlite}
export BENCH_TABLE_HEADER="\
| db | seconds | junk answered | junk/s | valid SUCCESS / sent | valid p50 ms | valid p99 ms | valid max ms | junk rows stored | junk MiB stored | junk counted | db files +MiB | server RSS start → max MiB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
exec scripts/bench-notify.sh --abuse --rate 200 --rate-connections 8 "$@"
