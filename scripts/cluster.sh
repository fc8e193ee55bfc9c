#!/usr/bin/env bash
# Several paydesk instances on PostgreSQL behind nginx, all on loopback (issue 20;
# README, "Several instances"). Starts a throwaway PostgreSQL (scripts/pg-temp.sh), the standalone
# WeChat Pay simulator, three paydesk instances configured from deploy/paydesk.service and
# Debian's nginx in front (deploy/nginx.conf.template), prints the URL and the admin
# password, and stops everything on exit (Ctrl-C), removing its temp dir.
#
#   scripts/cluster.sh [--release] [--state FILE] [--instances N] [up]
#   scripts/cluster.sh [--state FILE] kill N | stop-instance N | start-instance N | restart N
#   scripts/cluster.sh [--state FILE] stop
#
# up (the default)   start everything, then wait in the foreground until Ctrl-C / SIGTERM
# kill N             SIGKILL instance N (1-based)
# stop-instance N    the unit's KillSignal (SIGTERM), wait for the exit as systemd would
#                    (TimeoutStopSec from the unit, then SIGKILL: exit status 3)
# start-instance N   start instance N again (same port, same settings), wait for /readyz
# restart N          stop-instance N, then start-instance N
# stop               end a running `up` (SIGTERM to it) and wait until it has cleaned up
#                    (a shell that starts `up` in the background without job control makes
#                    it ignore SIGINT: stop it with SIGTERM or this command)
#
# The instances' settings are the unit's Environment= lines as they are, except the values
# that name hosts, files and URLs of its example (listen address, trusted proxy, public
# and notify URLs, site root, certificate paths), which are replaced by this cluster's own.
# The unit's EnvironmentFile= (deploy/paydesk.env.example) is written here with the
# simulator's merchant credentials (a fresh random API key and AppSecret per run) and the
# database. The simulator stands in for WeChat Pay, which adds PAYDESK_WXPAY__BASE_URL,
# __REFUND_BASE_URL, __CA_PEM, PAYDESK_MP__LOGIN_BASE_URL and
# PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS=on (its callbacks go to http://127.0.0.1).
# nginx connects to the instances from 127.0.0.2 (proxy_bind), the only trusted proxy, so
# a client on 127.0.0.1 is told apart from the proxy.
#
# State file (--state FILE or PAYDESK_CLUSTER_STATE; default target/cluster.state): written
# by `up`, read by the other commands; shell lines KEY='value' (single quotes, ' as '\''):
#   CLUSTER_DIR UP_PID PROXY_URL PROXY_PID PROXY_SOURCE PROXY_ACCESS_LOG PROXY_ERROR_LOG
#   SIM_URL SIM_TLS_URL SIM_PID SIM_LOG SIM_CERT_DIR DATABASE_URL PG_DIR ADMIN_PASSWORD
#   WXPAY_APPID WXPAY_MCH_ID WXPAY_API_KEY MP_APP_SECRET METRICS_TOKEN INSTANCES
#   INSTANCE_<n>_URL INSTANCE_<n>_PORT INSTANCE_<n>_PID (empty while stopped)
#   INSTANCE_<n>_LOG (every start of instance n appended) INSTANCE_<n>_ENV
#   BIN SIM_BIN STOP_SIGNAL STOP_TIMEOUT, and CLUSTER_READY=1 once everything answers.
# `up` removes it on exit.
#
# Environment:
#   PAYDESK_BIN, PAYDESK_SIM_BIN   binaries (default target/debug or, with --release,
#                                  target/release paydesk and paydesk-sim; not built here:
#                                  scripts/build.sh [--release] and
#                                  cargo build [--release] -p paydesk-sim first)
#   PAYDESK_ADMIN_PASSWORD         the first admin's password (otherwise instance 1 prints one)
#   PAYDESK_CLUSTER_ENV_FILE       KEY=value lines added to every instance after the unit's
#                                  (a test's faster job ticks, …; not what an operator copies)
#   PAYDESK_CLUSTER_KEEP=1         keep the temp dir (logs, nginx.conf) after exit
#   PAYDESK_SIM_*                  passed to the simulator (e.g. PAYDESK_SIM_TIME_SCALE=1000)
#   PAYDESK_PG_DURABLE=on          PostgreSQL with durable commits (scripts/pg-temp.sh)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
UNIT=$repo/deploy/paydesk.service
ENV_EXAMPLE=$repo/deploy/paydesk.env.example

profile=debug
state_file=${PAYDESK_CLUSTER_STATE:-$repo/target/cluster.state}
instances=3
command=up
while [ $# -gt 0 ]; do
  case $1 in
    --release) profile=release; shift ;;
    --state) state_file=${2:?--state FILE}; shift 2 ;;
    --state=*) state_file=${1#--state=}; shift ;;
    --instances) instances=${2:?--instances N}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "cluster.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    *) command=$1; shift; break ;;
  esac
done
case $state_file in /*) ;; *) state_file=$PWD/$state_file ;; esac

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- state file ------------------------------------------------------------------------

quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# state_set KEY VALUE [KEY VALUE …]: replaces those lines, atomically, under a lock (another
# command may restart an instance meanwhile).
state_set() {
  (
    flock 9
    local tmp
    tmp=$(mktemp "$state_file.XXXXXX")
    [ -f "$state_file" ] && cp "$state_file" "$tmp"
    while [ $# -gt 0 ]; do
      grep -v "^$1=" "$tmp" >"$tmp.new" || true
      printf '%s=%s\n' "$1" "$(quote "$2")" >>"$tmp.new"
      mv "$tmp.new" "$tmp"
      shift 2
    done
    chmod 600 "$tmp"
    mv "$tmp" "$state_file"
  ) 9>"$state_file.lock"
}

load_state() {
  [ -f "$state_file" ] || die "no cluster state at $state_file (is \`scripts/cluster.sh up\` running? --state FILE)"
  # shellcheck disable=SC1090
  source "$state_file"
}

# ---- processes -------------------------------------------------------------------------

# alive PID [BINARY]: the process exists, is not a zombie, and (when given) runs BINARY —
# a recorded pid is never signalled once it belongs to something else.
alive() {
  local pid=$1 bin=${2:-} stat
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ] || return 1
  if [ -n "$bin" ]; then
    local exe
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$(readlink -f "$bin")" ] || return 1
  fi
}

# wait_gone PID SECONDS: 0 once the process is gone, 1 if it still runs after SECONDS.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while alive "$pid"; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# wait_ready URL PID WHAT SECONDS: until URL answers 200, failing early if PID exits.
wait_ready() {
  local url=$1 pid=$2 what=$3 deadline=$((SECONDS + $4))
  until curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; do
    alive "$pid" || { say "$what exited before it was ready"; return 1; }
    [ $SECONDS -lt "$deadline" ] || { say "$what not ready after $4 s ($url)"; return 1; }
    sleep 0.2
  done
}

loopback_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
random_hex32() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# ---- instances -------------------------------------------------------------------------

check_n() {
  if ! [[ ${1:-} =~ ^[1-9][0-9]*$ ]] || [ "$1" -gt "${INSTANCES:-$instances}" ]; then
    die "no instance ${1:-?} (1 to ${INSTANCES:-$instances})"
  fi
}

start_instance() {
  local n=$1 pid_var=INSTANCE_$1_PID url_var=INSTANCE_$1_URL log_var=INSTANCE_$1_LOG env_var=INSTANCE_$1_ENV
  local pid=${!pid_var:-} url=${!url_var} log=${!log_var} envfile=${!env_var}
  if alive "$pid" "$BIN"; then die "instance $n already runs (pid $pid)"; fi
  echo "=== cluster.sh: instance $n starting at $(date -Is) ===" >>"$log"
  # A clean environment, as systemd gives a service: the unit's settings and nothing else,
  # read from the 0600 file (not passed as arguments: `ps` would show the secrets).
  # shellcheck disable=SC2016
  setsid env -i PATH=/usr/bin:/bin bash -c \
    'while IFS= read -r kv; do [ -n "$kv" ] && export "$kv"; done <"$0"; exec "$1" serve' \
    "$envfile" "$BIN" >>"$log" 2>&1 </dev/null &
  pid=$!
  # Killed or restarted by another command later: no job report from this shell.
  disown "$pid"
  state_set "$pid_var" "$pid"
  if ! wait_ready "$url/readyz" "$pid" "instance $n" 120; then
    tail -n 30 "$log" >&2
    return 1
  fi
  say "instance $n ready at $url (pid $pid)"
}

# stop_instance N SIGNAL: returns 3 when the instance had to be killed after STOP_TIMEOUT.
stop_instance() {
  local n=$1 signal=$2 pid_var=INSTANCE_$1_PID
  local pid=${!pid_var:-} started=$SECONDS rc=0
  if ! alive "$pid" "$BIN"; then
    say "instance $n is not running"
    state_set "$pid_var" ""
    return 0
  fi
  kill "-$signal" "$pid"
  if [ "$signal" = KILL ]; then
    wait_gone "$pid" 10 || die "instance $n (pid $pid) survived SIGKILL"
    say "instance $n killed (pid $pid)"
  elif wait_gone "$pid" "$STOP_TIMEOUT"; then
    say "instance $n stopped after SIG$signal in $((SECONDS - started)) s (pid $pid)"
  else
    say "instance $n still ran ${STOP_TIMEOUT} s after SIG$signal (TimeoutStopSec): SIGKILL, as systemd would"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || true
    rc=3
  fi
  state_set "$pid_var" ""
  return $rc
}

case $command in
  kill|stop-instance|start-instance|restart)
    load_state
    n=${1:-}
    check_n "$n"
    case $command in
      kill) stop_instance "$n" KILL ;;
      stop-instance) stop_instance "$n" "$STOP_SIGNAL" ;;
      start-instance) start_instance "$n" ;;
      restart)
        rc=0
        stop_instance "$n" "$STOP_SIGNAL" || rc=$?
        [ $rc -eq 0 ] || [ $rc -eq 3 ] || exit $rc
        start_instance "$n"
        exit $rc
        ;;
    esac
    exit 0
    ;;
  stop)
    load_state
    alive "$UP_PID" || die "the cluster's \`up\` (pid $UP_PID) is not running"
    kill -TERM "$UP_PID"
    wait_gone "$UP_PID" $((STOP_TIMEOUT + 60)) || die "\`up\` (pid $UP_PID) did not finish"
    exit 0
    ;;
  up) ;;
  *) die "unknown command $command (--help)" ;;
esac

# ---- up --------------------------------------------------------------------------------

[[ $instances =~ ^[1-9][0-9]*$ ]] || die "--instances needs a positive number"
BIN=${PAYDESK_BIN:-$repo/target/$profile/paydesk}
SIM_BIN=${PAYDESK_SIM_BIN:-$repo/target/$profile/paydesk-sim}
for b in "$BIN" "$SIM_BIN"; do
  [ -x "$b" ] || die "$b is missing: build first (scripts/build.sh$([ $profile = release ] && echo ' --release') && cargo build$([ $profile = release ] && echo ' --release') -p paydesk-sim)"
done
BIN=$(readlink -f "$BIN")
SIM_BIN=$(readlink -f "$SIM_BIN")
site_root=${PAYDESK_SITE_ROOT:-$repo/target/site}
[ -d "$site_root/pkg" ] || say "warning: $site_root/pkg is missing: pages render, but without their scripts and styles (scripts/build.sh)"

if [ -f "$state_file" ]; then
  old_up=$(sed -n "s/^UP_PID='\([0-9]*\)'$/\1/p" "$state_file")
  if alive "$old_up"; then die "a cluster already runs with state $state_file (pid $old_up): scripts/cluster.sh stop"; fi
  rm -f "$state_file"
fi
mkdir -p "$(dirname "$state_file")"

# Tools: Debian's nginx (installed quietly when missing), curl, python3, flock.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  say "installing nginx (Debian package nginx-light)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq nginx-light >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; } \
      || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }; } \
    || die "could not install nginx (apt-get install nginx-light)"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in curl python3 flock setsid; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

# ---- what the unit says ----------------------------------------------------------------

# unit_env: the unit's Environment= assignments as KEY=value lines. One assignment per line,
# optionally in double quotes; anything else is refused rather than half understood.
unit_env() {
  local line a
  while IFS= read -r line; do
    case $line in Environment=*) ;; *) continue ;; esac
    a=${line#Environment=}
    if [[ $a == \"*\" ]]; then
      a=${a:1:${#a}-2}
      [[ $a != *\"* ]] || die "$UNIT: cannot read: $line"
    elif [[ $a == *[[:space:]\"\']* ]]; then
      die "$UNIT: one assignment per Environment= line, please (or the whole of it in double quotes): $line"
    fi
    [[ $a =~ ^[A-Z_][A-Z0-9_]*= ]] || die "$UNIT: not KEY=value: $line"
    echo "$a"
  done <"$UNIT"
}

unit_setting() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }

STOP_SIGNAL=$(unit_setting KillSignal); STOP_SIGNAL=${STOP_SIGNAL:-SIGTERM}; STOP_SIGNAL=${STOP_SIGNAL#SIG}
timeout=$(unit_setting TimeoutStopSec)
if [[ $timeout =~ ^([0-9]+)s?$ ]]; then
  STOP_TIMEOUT=${BASH_REMATCH[1]}
elif [[ $timeout =~ ^([0-9]+)min$ ]]; then
  STOP_TIMEOUT=$((BASH_REMATCH[1] * 60))
else
  die "$UNIT: TimeoutStopSec=$timeout: cluster.sh reads N, Ns or Nmin"
fi

declare -A unit_values=()
unit_keys=()
while IFS= read -r a; do
  k=${a%%=*}
  [ -n "${unit_values[$k]+set}" ] || unit_keys+=("$k")
  unit_values[$k]=${a#*=}
done < <(unit_env)

# The values this cluster replaces: the unit must still set each of them, so an operator
# copying it is asked for every one.
replaced=(PAYDESK_LISTEN PAYDESK_TRUSTED_PROXIES PAYDESK_PUBLIC_URL PAYDESK_WXPAY__NOTIFY_URL
  PAYDESK_WXPAY__REFUND_NOTIFY_URL PAYDESK_SITE_ROOT PAYDESK_WXPAY__CERT_PEM PAYDESK_WXPAY__KEY_PEM)
for k in "${replaced[@]}"; do
  [ -n "${unit_values[$k]+set}" ] || die "$UNIT no longer sets $k (cluster.sh replaces its value with the cluster's own)"
done
[ "${unit_values[PAYDESK_SIMULATOR]:-}" = off ] || die "$UNIT must set PAYDESK_SIMULATOR=off (merchant mode)"
for k in "${unit_keys[@]}"; do
  if [[ " ${replaced[*]} " != *" $k "* && ${unit_values[$k]} == *%* ]]; then
    die "$UNIT: $k=${unit_values[$k]}: cluster.sh does not expand systemd specifiers (%…)"
  fi
done

# ---- start -----------------------------------------------------------------------------

# Logs hold the printed admin password: nothing this script writes is for other users
# (nginx's folder is opened up below, for its workers).
umask 077
dir=$(mktemp -d "${TMPDIR:-/tmp}/paydesk-cluster.XXXXXX")
# nginx's workers run as `nobody` when it starts as root: they must reach their temp paths.
chmod 711 "$dir"
pg_dir=""
cleaned=0

stop_pid() { # PID BINARY SIGNAL SECONDS WHAT
  local pid=$1
  alive "$pid" "$2" || return 0
  kill "-$3" "$pid" 2>/dev/null || return 0
  wait_gone "$pid" "$4" || { say "$5 did not stop within $4 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
}

cleanup() {
  [ $cleaned = 0 ] || return 0
  cleaned=1
  trap - INT TERM
  say "stopping"
  # Pids as the state file has them now: an instance may have been restarted by another
  # command since.
  if [ -f "$state_file" ]; then
    # shellcheck disable=SC1090
    source "$state_file" || true
  fi
  # nginx first, fast (SIGTERM): a graceful SIGQUIT would wait for the open event streams.
  stop_pid "${PROXY_PID:-}" "$NGINX" TERM 10 nginx
  local n pid_var pids=()
  for n in $(seq 1 "$instances"); do
    pid_var=INSTANCE_${n}_PID
    if alive "${!pid_var:-}" "$BIN"; then
      kill "-$STOP_SIGNAL" "${!pid_var}" 2>/dev/null || true
      pids+=("$n:${!pid_var}")
    fi
  done
  local entry
  for entry in "${pids[@]}"; do
    wait_gone "${entry#*:}" "$STOP_TIMEOUT" \
      || { say "instance ${entry%%:*} did not stop within $STOP_TIMEOUT s: SIGKILL"; kill -KILL "${entry#*:}" 2>/dev/null || true; }
  done
  stop_pid "${SIM_PID:-}" "$SIM_BIN" TERM 10 "the simulator"
  if [ -n "$pg_dir" ]; then "$repo/scripts/pg-temp.sh" stop "$pg_dir" || true; fi
  rm -f "$state_file" "$state_file.lock"
  if [ "${PAYDESK_CLUSTER_KEEP:-}" = 1 ]; then
    say "kept $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

state_set CLUSTER_DIR "$dir" UP_PID $$ BIN "$BIN" SIM_BIN "$SIM_BIN" INSTANCES "$instances" \
  STOP_SIGNAL "$STOP_SIGNAL" STOP_TIMEOUT "$STOP_TIMEOUT"

# PostgreSQL, with a database of its own.
say "starting PostgreSQL"
# shellcheck source=scripts/pg-temp.sh
source "$repo/scripts/pg-temp.sh" start
set -euo pipefail
pg_dir=$PAYDESK_PG_DIR
pg_base=${PAYDESK_TEST_POSTGRES_URL%/*}
psql -q -X -v ON_ERROR_STOP=1 "$PAYDESK_TEST_POSTGRES_URL" -c 'create database paydesk' >/dev/null
DATABASE_URL=$pg_base/paydesk
state_set PG_DIR "$pg_dir" DATABASE_URL "$DATABASE_URL"

# Addresses. nginx connects to the instances from 127.0.0.2 where the loopback allows it,
# so the instances can tell the proxy from a client on 127.0.0.1.
proxy_port=$(loopback_port)
PROXY_URL=http://127.0.0.1:$proxy_port
if python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); s.close()' 2>/dev/null; then
  PROXY_SOURCE=127.0.0.2
else
  PROXY_SOURCE=127.0.0.1
  say "warning: cannot bind 127.0.0.2; nginx connects from 127.0.0.1, like every local client"
fi
sim_port=$(loopback_port)
sim_tls_port=$(loopback_port)
SIM_URL=http://127.0.0.1:$sim_port
SIM_TLS_URL=https://127.0.0.1:$sim_tls_port
ports=()
for n in $(seq 1 "$instances"); do ports+=("$(loopback_port)"); done

# The simulator: the merchant every instance shares, with a fresh key per run.
WXPAY_APPID=wx2421b1c4370ec43b
WXPAY_MCH_ID=10000100
WXPAY_API_KEY=$(random_hex32)
MP_APP_SECRET=$(random_hex32)
METRICS_TOKEN=$(random_hex32)
SIM_CERT_DIR=$dir/sim-certs
SIM_LOG=$dir/sim.log
say "starting the simulator"
PAYDESK_SIM_APPID=$WXPAY_APPID PAYDESK_SIM_MCH_ID=$WXPAY_MCH_ID PAYDESK_SIM_API_KEY=$WXPAY_API_KEY \
  PAYDESK_SIM_APP_SECRET=$MP_APP_SECRET \
  setsid "$SIM_BIN" --listen "127.0.0.1:$sim_port" --tls-listen "127.0.0.1:$sim_tls_port" \
  --cert-dir "$SIM_CERT_DIR" --allow-insecure-notify-urls >"$SIM_LOG" 2>&1 </dev/null &
SIM_PID=$!
disown "$SIM_PID"
state_set SIM_PID "$SIM_PID" SIM_URL "$SIM_URL" SIM_TLS_URL "$SIM_TLS_URL" SIM_LOG "$SIM_LOG" \
  SIM_CERT_DIR "$SIM_CERT_DIR" WXPAY_APPID "$WXPAY_APPID" WXPAY_MCH_ID "$WXPAY_MCH_ID" \
  WXPAY_API_KEY "$WXPAY_API_KEY" MP_APP_SECRET "$MP_APP_SECRET" METRICS_TOKEN "$METRICS_TOKEN"
wait_ready "$SIM_URL/sim/hosts" "$SIM_PID" "the simulator" 60 || { cat "$SIM_LOG" >&2; exit 1; }
for f in ca.pem apiclient_cert.pem apiclient_key.pem; do
  [ -s "$SIM_CERT_DIR/$f" ] || die "the simulator wrote no $SIM_CERT_DIR/$f"
done

# Each instance's environment: the unit's Environment= lines, this cluster's values for the
# replaced ones, the EnvironmentFile's keys, then PAYDESK_CLUSTER_ENV_FILE.
declare -A secrets=(
  [PAYDESK_DATABASE_URL]=$DATABASE_URL
  [PAYDESK_WXPAY__APPID]=$WXPAY_APPID
  [PAYDESK_WXPAY__MCH_ID]=$WXPAY_MCH_ID
  [PAYDESK_WXPAY__API_KEY]=$WXPAY_API_KEY
  [PAYDESK_MP__APP_SECRET]=$MP_APP_SECRET
  [PAYDESK_METRICS_TOKEN]=$METRICS_TOKEN
)
while IFS= read -r k; do
  [ -n "${secrets[$k]+set}" ] || die "$ENV_EXAMPLE names $k, which cluster.sh does not fill"
done < <(sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' "$ENV_EXAMPLE")
[ -z "${PAYDESK_ADMIN_PASSWORD:-}" ] || secrets[PAYDESK_ADMIN_PASSWORD]=$PAYDESK_ADMIN_PASSWORD

instance_env() { # N
  local n=$1 k
  for k in "${unit_keys[@]}"; do
    case $k in
      PAYDESK_LISTEN) echo "$k=127.0.0.1:${ports[n - 1]}" ;;
      PAYDESK_TRUSTED_PROXIES) echo "$k=$PROXY_SOURCE" ;;
      PAYDESK_PUBLIC_URL) echo "$k=$PROXY_URL" ;;
      PAYDESK_WXPAY__NOTIFY_URL) echo "$k=$PROXY_URL/wxpay/notify/payment" ;;
      PAYDESK_WXPAY__REFUND_NOTIFY_URL) echo "$k=$PROXY_URL/wxpay/notify/refund" ;;
      PAYDESK_SITE_ROOT) echo "$k=$site_root" ;;
      PAYDESK_WXPAY__CERT_PEM) echo "$k=$SIM_CERT_DIR/apiclient_cert.pem" ;;
      PAYDESK_WXPAY__KEY_PEM) echo "$k=$SIM_CERT_DIR/apiclient_key.pem" ;;
      *) echo "$k=${unit_values[$k]}" ;;
    esac
  done
  for k in "${!secrets[@]}"; do echo "$k=${secrets[$k]}"; done
  echo "PAYDESK_WXPAY__BASE_URL=$SIM_URL"
  echo "PAYDESK_WXPAY__REFUND_BASE_URL=$SIM_TLS_URL"
  echo "PAYDESK_WXPAY__CA_PEM=$SIM_CERT_DIR/ca.pem"
  echo "PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS=on"
  echo "PAYDESK_MP__LOGIN_BASE_URL=$SIM_URL"
  if [ -n "${PAYDESK_CLUSTER_ENV_FILE:-}" ]; then
    grep -E '^[A-Z_][A-Z0-9_]*=' "$PAYDESK_CLUSTER_ENV_FILE" || true
  fi
}

for n in $(seq 1 "$instances"); do
  envfile=$dir/instance-$n.env
  (umask 077; instance_env "$n" >"$envfile")
  state_set "INSTANCE_${n}_URL" "http://127.0.0.1:${ports[n - 1]}" "INSTANCE_${n}_PORT" "${ports[n - 1]}" \
    "INSTANCE_${n}_PID" "" "INSTANCE_${n}_LOG" "$dir/instance-$n.log" "INSTANCE_${n}_ENV" "$envfile"
done

# nginx, from the template.
upstreams=()
for n in $(seq 1 "$instances"); do upstreams+=("127.0.0.1:${ports[n - 1]}"); done
mkdir -p "$dir/nginx"
chmod 755 "$dir/nginx"
nginx_conf=$dir/nginx/nginx.conf
"$repo/scripts/nginx-conf.py" "$nginx_conf" "$dir/nginx" "127.0.0.1:$proxy_port" "$PROXY_SOURCE" "${upstreams[@]}"
"$NGINX" -q -t -p "$dir/nginx/" -c "$nginx_conf" -e "$dir/nginx/error.log" \
  || { cat "$dir/nginx/error.log" >&2 2>/dev/null; die "nginx refuses $nginx_conf"; }
say "starting nginx on $PROXY_URL"
setsid "$NGINX" -p "$dir/nginx/" -c "$nginx_conf" -e "$dir/nginx/error.log" -g 'daemon off;' \
  >"$dir/nginx/output.log" 2>&1 </dev/null &
PROXY_PID=$!
disown "$PROXY_PID"
state_set PROXY_PID "$PROXY_PID" PROXY_URL "$PROXY_URL" PROXY_SOURCE "$PROXY_SOURCE" \
  PROXY_ACCESS_LOG "$dir/nginx/access.log" PROXY_ERROR_LOG "$dir/nginx/error.log"

# The instances: the first alone (it migrates the empty database and creates the admin),
# then the others together.
# shellcheck disable=SC1090
source "$state_file"
start_instance 1
for n in $(seq 2 "$instances"); do start_instance "$n" & done
for n in $(seq 2 "$instances"); do wait -n || die "an instance did not start"; done
# shellcheck disable=SC1090
source "$state_file"

ADMIN_PASSWORD=${PAYDESK_ADMIN_PASSWORD:-$(sed -n 's/^   password: //p' "$INSTANCE_1_LOG" | head -n 1)}
[ -n "$ADMIN_PASSWORD" ] || say "warning: instance 1 printed no admin password (the database was not empty?)"
wait_ready "$PROXY_URL/readyz" "$PROXY_PID" nginx 30 || { cat "$dir/nginx/error.log" >&2; exit 1; }
state_set ADMIN_PASSWORD "$ADMIN_PASSWORD" CLUSTER_READY 1

cat <<EOF

paydesk cluster ready: $PROXY_URL
  sign in as admin with: $ADMIN_PASSWORD
  instances:  $(for n in $(seq 1 "$instances"); do u=INSTANCE_${n}_URL; printf '%s ' "${!u}"; done)
  simulator:  $SIM_URL   database: $DATABASE_URL
  state:      $state_file   logs: $dir
  Ctrl-C stops everything.
EOF

# Wait until Ctrl-C / SIGTERM; the instances may be killed and restarted by other commands
# meanwhile, but nginx, the simulator and PostgreSQL are this cluster's to keep.
while :; do
  alive "$PROXY_PID" "$NGINX" || die "nginx exited (see $dir/nginx/error.log)"
  alive "$SIM_PID" "$SIM_BIN" || die "the simulator exited (see $SIM_LOG)"
  sleep 1 &
  wait $! || true
done
