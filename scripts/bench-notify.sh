#!/usr/bin/env bash
# The payment-notification benchmark (docs/benchmarks.md): builds release, runs the real
# `paydesk` binary on a temp SQLite file and then on a throwaway PostgreSQL, drives it with
# `notify-bench` (distinct, duplicate-heavy and fixed-rate scenarios), checks in the
# database that every order was applied exactly once, and prints a table.
#
#   scripts/bench-notify.sh                       # both databases, default scenarios
#   BENCH_DBS=sqlite scripts/bench-notify.sh      # only SQLite
#   scripts/bench-notify.sh --orders 20000 --connections 32   # extra notify-bench flags
#   BENCH_SERVER=/tmp/paydesk-old scripts/bench-notify.sh   # another paydesk binary
#   BENCH_AB=/tmp/paydesk-old ...   # with BENCH_SEED_ORDERS: each run also on this binary,
#                                   # alternating, on the same seeded data (an A/B)
#
# The production-shaped scenario (issue 18): BENCH_SEED_ORDERS=1000000 first fills the
# database with that many orders and their history (`paydesk seed`, another process), then
# creates the scenarios' orders and signed notifications (`notify-bench --prepare`), and
# only then starts paydesk, a fresh process, for each of BENCH_RUNS runs (each on its own
# copy of that database). Each run drives it with notify-bench (closed loop, duplicates,
# 1,000/s open loop) and with Debian's `wrk` (one thread, --connections keep-alive
# connections, scripts/wrk-notify.lua: one distinct notification per request), checks
# exactly-once in the database after each, and reports the server's CPU and RssAnon.
#
#   BENCH_SEED_ORDERS=1000000 BENCH_RUNS=3 scripts/bench-notify.sh --connections 32
#   BENCH_WRK_ORDERS=200000   # notifications wrk sends (default 200,000)
#   BENCH_SEEDED_DIR=/tmp/seeded-1m   # SQLite: keep the seeded database for the next call
#
# Several instances and merchant alerts (issue 20):
#   BENCH_INSTANCES=3   that many paydesk processes on the one database (PostgreSQL), behind
#                       Debian's nginx configured from deploy/nginx.conf.template; both
#                       clients go through nginx; the CPU figure sums the instances
#   BENCH_ALERTS=on     merchant alerts on, to a webhook that answers like a WeCom robot
#                       (an nginx of its own): each paid order's alert is queued in the
#                       payment's transaction and sent beside the benchmark, one message
#                       per turn of the robot (every 3 s) for all that are due
#   BENCH_ALERTS=json   the same webhook as a JSON webhook: one POST per paid order
#   PAYDESK_PG_DURABLE=on|off   PostgreSQL's commits (default: on with BENCH_SEED_ORDERS)
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
BENCH_SEED_ORDERS=${BENCH_SEED_ORDERS:-0}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_WRK_ORDERS=${BENCH_WRK_ORDERS:-200000}
BENCH_INSTANCES=${BENCH_INSTANCES:-1}
BENCH_ALERTS=${BENCH_ALERTS:-off}
if [ "$BENCH_INSTANCES" -gt 1 ] && [[ " $BENCH_DBS " == *" sqlite "* ]]; then
  echo "$NAME: BENCH_INSTANCES=$BENCH_INSTANCES needs BENCH_DBS=postgres (SQLite is one machine's file)" >&2
  exit 2
fi
if [ "$BENCH_SEED_ORDERS" -gt 0 ] && ! command -v wrk >/dev/null; then
  scripts/setup.sh wrk
fi

# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
cargo build --release -p server -p paydesk-bench
BIN=$CARGO_TARGET_DIR/release
SERVER=${BENCH_SERVER:-$BIN/paydesk}

# The binaries each seeded run goes through, as TAG=PATH (the tag shown only for an A/B).
SERVERS=("=$SERVER")
if [ -n "${BENCH_AB:-}" ]; then
  SERVERS=("this=$SERVER" "ab=$BENCH_AB")
fi
SERVER_TAG=""

WORK=$(mktemp -d "/tmp/paydesk-$NAME.XXXXXX")
# nginx's workers run as nobody when started as root: they must reach their folders.
chmod 711 "$WORK"
SERVER_PID=""
# Every instance's pid (SERVER_PID is the first), and the nginx processes (proxy, webhook).
SERVER_PIDS=()
NGINX_PIDS=()
PROXY_PID=""
PG_DIR=""
cleanup() {
  local rc=$?
  stop_server
  local p
  for p in "${NGINX_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$PG_DIR" ]; then scripts/pg-temp.sh stop "$PG_DIR" || true; fi
  rm -rf "$WORK"
  exit $rc
}
stop_server() {
  local p
  for p in "${SERVER_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  if [ -n "$PROXY_PID" ]; then kill "$PROXY_PID" 2>/dev/null || true; PROXY_PID=""; fi
  SERVER_PID=""
  SERVER_PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/bench-env.sh
source scripts/bench-env.sh

# start_nginx DIR PORT: nginx -p DIR -c DIR/nginx.conf in the background, until PORT
# answers; its pid in NGINX_PID.
start_nginx() {
  local dir=$1 port=$2
  nginx -q -t -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" || { cat "$dir/error.log" >&2; return 1; }
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' >"$dir/output.log" 2>&1 &
  NGINX_PID=$!
  NGINX_PIDS+=("$NGINX_PID")
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.05
  done
  echo "$NAME: nginx in $dir did not start" >&2
  return 1
}

# BENCH_ALERTS=on: a webhook that answers every POST as a WeCom robot does, and the
# setting that sends each paid order's alert to it.
if [ "$BENCH_ALERTS" = on ] || [ "$BENCH_ALERTS" = json ]; then
  command -v nginx >/dev/null || scripts/setup.sh test
  sink=$WORK/webhook
  mkdir -p "$sink"
  chmod 755 "$sink"
  sink_port=$(free_port)
  printf '%s\n' \
    'worker_processes 1;' \
    "pid $sink/nginx.pid;" \
    'events { worker_connections 4096; }' \
    'http {' \
    '  access_log off;' \
    "  client_body_temp_path $sink/body; proxy_temp_path $sink/proxy;" \
    "  fastcgi_temp_path $sink/fastcgi; uwsgi_temp_path $sink/uwsgi; scgi_temp_path $sink/scgi;" \
    "  server { listen 127.0.0.1:$sink_port;" \
    "    location / { default_type application/json; return 200 '{\"errcode\":0,\"errmsg\":\"ok\"}'; } }" \
    '}' >"$sink/nginx.conf"
  start_nginx "$sink" "$sink_port"
  export PAYDESK_ALERTS__WEBHOOK_URL="http://127.0.0.1:$sink_port/cgi-bin/webhook/send?key=bench-not-secret"
  if [ "$BENCH_ALERTS" = json ]; then export PAYDESK_ALERTS__FORMAT=json; fi
  echo "$NAME: merchant alerts to a webhook on 127.0.0.1:$sink_port" >&2
fi

# start_server LABEL DATABASE_URL: fresh paydesk processes (BENCH_INSTANCES of them, behind
# nginx when more than one); sets PORT (where the clients go), LOG and SERVER_PID (the
# first instance's), SERVER_PIDS.
start_server() {
  local label=$1 url=$2 n port upstreams=()
  SERVER_PIDS=()
  for n in $(seq 1 "$BENCH_INSTANCES"); do
    port=$(free_port)
    LOG=$WORK/server-$label-$n.log
    PAYDESK_DATABASE_URL=$url PAYDESK_LISTEN=127.0.0.1:$port "$SERVER" >"$LOG" 2>&1 &
    SERVER_PIDS+=($!)
    wait_listening "$LOG" "$!" || { echo "$NAME: $label: no server" >&2; return 1; }
    upstreams+=("127.0.0.1:$port")
  done
  SERVER_PID=${SERVER_PIDS[0]}
  LOG=$WORK/server-$label-1.log
  PORT=$port
  if [ "$BENCH_INSTANCES" -gt 1 ]; then
    local dir=$WORK/proxy-$label
    mkdir -p "$dir"
    chmod 755 "$dir"
    PORT=$(free_port)
    scripts/nginx-conf.py "$dir/nginx.conf" "$dir" "127.0.0.1:$PORT" 127.0.0.1 "${upstreams[@]}"
    start_nginx "$dir" "$PORT"
    PROXY_PID=$NGINX_PID
  fi
  echo "$NAME: $label: paydesk x$BENCH_INSTANCES (${upstreams[*]}; pids ${SERVER_PIDS[*]}), clients to 127.0.0.1:$PORT; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
}

server_failed() {
  echo "$NAME: $1 failed; the server's errors:" >&2
  grep -i '"level":"error"' "$LOG" | head -n 5 >&2 || true
  return 1
}

# The servers' CPU time so far, in clock ticks (user + system, every instance), and the
# first one's RssAnon in KiB.
cpu_ticks() {
  local p t=0
  for p in "${SERVER_PIDS[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
rss_anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$SERVER_PID/status"; }
# The whole machine's idle share between two /proc/stat samples (percent).
machine_idle() { # BEFORE_LINE AFTER_LINE
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); total = 0
    for (i = 2; i <= n; i++) total += y[i] - x[i]
    printf "%.0f", 100 * ((y[5] - x[5]) + (y[6] - x[6])) / total }'
}

# run LABEL DATABASE_URL [notify-bench flags...]
run() {
  local label=$1 url=$2
  shift 2
  start_server "$label" "$url"
  PAYDESK_DATABASE_URL=$url "$BIN/notify-bench" --url "http://127.0.0.1:$PORT" --label "$label" \
    --server-pid "$SERVER_PID" "$@" \
    | tee -a "$WORK/rows.md" || server_failed "$label"
  echo "$NAME: $label: done; load: $(cut -d' ' -f1-3 /proc/loadavg); server log $(wc -c <"$LOG") bytes" >&2
  stop_server
}

# The SQLite committer's counters from /metrics: "commits written read" (empty on
# PostgreSQL).
committer_counters() {
  curl -fsS -H "Authorization: Bearer $PAYDESK_METRICS_TOKEN" "http://127.0.0.1:$PORT/metrics" 2>/dev/null |
    awk '$1 == "paydesk_sqlite_committer_commits_total" {c = $2}
         $1 == "paydesk_sqlite_committer_pages_written_total" {w = $2}
         $1 == "paydesk_sqlite_committer_pages_read_total" {r = $2}
         END {if (c != "") print c, w, r}'
}
# pages_per_notification BEFORE AFTER N: "written / read per notification / per commit".
pages_per_notification() {
  if [ -z "$1" ] || [ -z "$2" ]; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {
    split(a, x, " "); split(b, y, " "); c = y[1] - x[1]; if (c < 1) c = 1
    printf "%.1f / %.2f / %.1f", (y[2] - x[2]) / n, (y[3] - x[3]) / n, n / c }'
}

# Samples the server's RssAnon every 0.2 s into $WORK/rss until the server ends.
sample_rss() {
  local pid=$SERVER_PID
  : >"$WORK/rss"
  ( while kill -0 "$pid" 2>/dev/null; do
      awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null >>"$WORK/rss" || true
      sleep 0.2
    done ) &
}

# run_seeded LABEL DATABASE_URL RUN [notify-bench flags...]: a fresh server on a database
# seeded and prepared beforehand (BENCH_SEED_ORDERS); notify-bench's scenarios, then wrk.
run_seeded() {
  local label=$1 url=$2 k=$3 answered failed before after ticks0 ticks1 wrk_out counters0
  shift 3
  local shown=$label${SERVER_TAG:+ [$SERVER_TAG]}
  start_server "$label-$k" "$url"
  sample_rss
  PAYDESK_DATABASE_URL=$url "$BIN/notify-bench" --url "http://127.0.0.1:$PORT" \
    --label "$shown ($BENCH_SEED_ORDERS orders), run $k" --prepared "$WORK/prep-$label" \
    --server-pid "$SERVER_PID" "$@" \
    | tee -a "$WORK/rows.md" || server_failed "$label run $k"
  # wrk: one thread, the same connections, one distinct notification per request.
  local connections=64
  local args=("$@") i
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[$i]} in
      --connections) connections=${args[$((i + 1))]} ;;
      --connections=*) connections=${args[$i]#*=} ;;
    esac
  done
  wrk_out=$WORK/wrk-$label-$k.txt
  # The script stops wrk's thread after BENCH_WRK_ORDERS answers and writes $done; wrk's
  # main thread sleeps out -d unless interrupted, so interrupt it then (it prints its
  # results on SIGINT).
  local done=$WORK/wrk-done wrk_pid
  rm -f "$done" "$done.started"
  wrk -t1 -c"$connections" -d600s --latency -s scripts/wrk-notify.lua "http://127.0.0.1:$PORT" \
    -- "$WORK/prep-$label/K.bodies" "$BENCH_WRK_ORDERS" "$done" >"$wrk_out" 2>&1 &
  wrk_pid=$!
  while kill -0 "$wrk_pid" 2>/dev/null && [ ! -e "$done.started" ]; do sleep 0.01; done
  counters0=$(committer_counters)
  before=$(head -n 1 /proc/stat)
  ticks0=$(cpu_ticks)
  while kill -0 "$wrk_pid" 2>/dev/null && [ ! -s "$done" ]; do sleep 0.05; done
  ticks1=$(cpu_ticks)
  after=$(head -n 1 /proc/stat)
  kill -INT "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" || { cat "$wrk_out" >&2; return 1; }
  answered=$(awk '/^wrk-notify: answered/ {print $3+0}' "$wrk_out")
  failed=$(awk '/^wrk-notify: answered/ {print $6+0}' "$wrk_out")
  grep -E '^(Running|  [0-9]+ threads|wrk-notify|Requests/sec|Socket errors|Non-2xx)' "$wrk_out" >&2 || true
  [ "$failed" = 0 ] || { echo "$NAME: FAILED: $failed wrk replies were not SUCCESS" >&2; return 1; }
  PAYDESK_DATABASE_URL=$url "$BIN/notify-bench" --prepared "$WORK/prep-$label" \
    --check-wrk "$answered" --connections "$connections"
  local seconds rps pages
  seconds=$(awk '/^wrk-notify: [0-9]+ requests/ {print $5}' "$wrk_out")
  rps=$(awk '/^wrk-notify: [0-9]+ requests/ {print $2}' "$wrk_out")
  pages=$(pages_per_notification "$counters0" "$(committer_counters)" "$answered")
  printf '| %s (%s orders), run %s | wrk distinct, C=%s (server CPU %s %%, machine idle %s %%) | %s | %s | %s | %s | %s | – | – | %s |\n' \
    "$shown" "$BENCH_SEED_ORDERS" "$k" "$connections" \
    "$(awk -v t=$(( (ticks1 - ticks0) * 100 )) -v s="$seconds" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", t / hz / s}')" \
    "$(machine_idle "$before" "$after")" "$answered" "$rps" \
    "$(awk '/^wrk-notify: p50 / {print $3}' "$wrk_out")" \
    "$(awk '/^wrk-notify: p90 / {print $3}' "$wrk_out")" \
    "$(awk '/^wrk-notify: p99 / {print $3}' "$wrk_out")" \
    "$pages" | tee -a "$WORK/rows.md"
  echo "$NAME: $shown run $k: server RssAnon max $(sort -n "$WORK/rss" | tail -n 1) KiB; WAL $(du -h "${url#sqlite://}-wal" 2>/dev/null | cut -f1)" >&2
  echo "| $shown ($BENCH_SEED_ORDERS orders), run $k | server RssAnon, max | $(sort -n "$WORK/rss" | tail -n 1) KiB | | | | | | |" >>"$WORK/rows.md"
  stop_server
}

# seed_and_prepare LABEL DATABASE_URL [notify-bench flags...]: BENCH_SEED_ORDERS orders of
# history, then the scenarios' orders and notifications, all before any server starts.
seed_and_prepare() {
  local label=$1 url=$2 started
  shift 2
  started=$(date +%s)
  PAYDESK_DATABASE_URL=$url "$SERVER" seed --orders "$BENCH_SEED_ORDERS" --days 90 \
    --yes-this-is-not-production >&2
  # Preparing needs no durable commits (nothing runs yet; a crash means starting over).
  local prep_url=$url
  case $url in postgres*) prep_url="$url?options[synchronous_commit]=off" ;; esac
  PAYDESK_DATABASE_URL=$prep_url "$BIN/notify-bench" --prepare "$WORK/prep-$label" \
    --wrk-orders "$BENCH_WRK_ORDERS" "$@"
  echo "$NAME: $label: seeded and prepared in $(( $(date +%s) - started )) s" >&2
}

: >"$WORK/rows.md"
for db in $BENCH_DBS; do
  case $db in
    sqlite)
      if [ "$BENCH_SEED_ORDERS" -gt 0 ]; then
        # BENCH_SEEDED_DIR keeps the seeded and prepared database (and the notifications)
        # for the next invocation with the same sizes and flags: seeding a million orders
        # takes minutes. Each run still works on a copy.
        seeded=${BENCH_SEEDED_DIR:-$WORK/seeded}
        if [ -s "$seeded/paydesk.db" ] && [ -d "$seeded/prep-sqlite" ]; then
          echo "$NAME: sqlite: reusing the seeded database in $seeded" >&2
        else
          rm -rf "$seeded"
          mkdir -p "$seeded"
          seed_and_prepare sqlite "sqlite://$seeded/paydesk.db" "$@"
          mv "$WORK/prep-sqlite" "$seeded/prep-sqlite"
          sqlite3 "$seeded/paydesk.db" 'pragma wal_checkpoint(truncate)' >/dev/null
        fi
        rm -rf "$WORK/prep-sqlite"
        ln -s "$seeded/prep-sqlite" "$WORK/prep-sqlite"
        for k in $(seq 1 "$BENCH_RUNS"); do
          for SERVER_TAG in "${SERVERS[@]}"; do
            SERVER=${SERVER_TAG#*=} SERVER_TAG=${SERVER_TAG%%=*}
            rm -rf "$WORK/sqlite"
            mkdir -p "$WORK/sqlite"
            cp "$seeded/paydesk.db" "$WORK/sqlite/paydesk.db"
            # The copy's dirty pages on disk before the server starts, so that their
            # writeback does not compete with the measured commits' fsyncs.
            sync
            run_seeded sqlite "sqlite://$WORK/sqlite/paydesk.db" "$k" "$@"
          done
        done
        rm -rf "$WORK/sqlite" "$WORK/seeded"
      else
        run sqlite "sqlite://$WORK/sqlite/paydesk.db" "$@"
      fi
      ;;
    postgres)
      # shellcheck source=/dev/null
      PAYDESK_PG_DURABLE=${PAYDESK_PG_DURABLE:-$([ "$BENCH_SEED_ORDERS" -gt 0 ] && echo on || echo off)} \
        source scripts/pg-temp.sh start
      PG_DIR=$PAYDESK_PG_DIR
      psql=$PAYDESK_PG_BIN/psql
      [ -x "$psql" ] || psql=psql
      "$psql" -q -d "$PAYDESK_TEST_POSTGRES_URL" -c "create database paydesk_$NAME" >/dev/null
      if [ "$BENCH_SEED_ORDERS" -gt 0 ]; then
        seed_and_prepare postgres "${PAYDESK_TEST_POSTGRES_URL%/*}/paydesk_$NAME" "$@"
        for k in $(seq 1 "$BENCH_RUNS"); do
          for SERVER_TAG in "${SERVERS[@]}"; do
            SERVER=${SERVER_TAG#*=} SERVER_TAG=${SERVER_TAG%%=*}
            "$psql" -q -d "$PAYDESK_TEST_POSTGRES_URL" \
              -c "drop database if exists paydesk_${NAME}_run" \
              -c "create database paydesk_${NAME}_run template paydesk_$NAME" >/dev/null
            run_seeded postgres "${PAYDESK_TEST_POSTGRES_URL%/*}/paydesk_${NAME}_run" "$k" "$@"
          done
        done
      else
        run postgres "${PAYDESK_TEST_POSTGRES_URL%/*}/paydesk_$NAME" "$@"
      fi
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
  echo "| db | scenario | notifications | per second | p50 ms | p90 ms | p99 ms | max ms | sent late p50 / p99 ms | log pages written / file pages read per notification, notifications per commit |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
fi
cat "$WORK/rows.md"
