# shellcheck shell=bash
# The server settings the notification benchmarks run paydesk with (sourced by
# bench-notify.sh and callgrind-notify.sh): known merchant credentials — notify-bench signs
# with the same key — merchant mode (no simulator, no sync job), JSON logs.
export PAYDESK_SIMULATOR=off
export PAYDESK_WXPAY__APPID=wx2421b1c4370ec43b
export PAYDESK_WXPAY__MCH_ID=10000100
export PAYDESK_WXPAY__API_KEY=192006250b4c09247ec02edce69f6a2d
export PAYDESK_SYNC__ENABLED=off
# Merchant mode needs public notify URLs; the benchmark posts its notifications itself and
# never calls WeChat Pay, so nothing is sent to them.
export PAYDESK_WXPAY__NOTIFY_URL=https://pay.example.com/wxpay/notify/payment
export PAYDESK_WXPAY__REFUND_NOTIFY_URL=https://pay.example.com/wxpay/notify/refund
export PAYDESK_ADMIN_PASSWORD=bench-admin-password-not-secret
export PAYDESK_LOG_FORMAT=json
# notify-bench reads the SQLite committer's page counters from /metrics with it.
export PAYDESK_METRICS_TOKEN=bench-metrics-token-not-secret

# A free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_listening LOG PID [PAUSE]: waits until the paydesk process PID has logged to LOG that
# it listens (600 looks, PAUSE seconds apart, default 0.1); fails with its log if it exits
# first or never does.
wait_listening() {
  local log=$1 pid=$2 pause=${3:-0.1}
  for _ in $(seq 1 600); do
    grep -q 'paydesk: listening on' "$log" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "paydesk exited before listening" >&2; return 1; }
    sleep "$pause"
  done
  tail -n 20 "$log" >&2
  echo "paydesk did not start listening" >&2
  return 1
}
