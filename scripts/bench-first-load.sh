#!/usr/bin/env bash
# What a browser downloads on its first visit to the dashboard, as the release build serves
# it (issue 18): builds with `scripts/build.sh --release`, starts the release binary in
# sandbox mode on a temp database (no demo), then
# 1. fetches /login and every /pkg file the page names (the shell's js, wasm and css, the
#    loader of the page chunks and the chunks the server asks the browser to preload) with
#    `Accept-Encoding: br, gzip` (what Chromium sends) and prints each transfer's size,
#    encoding and Cache-Control, and the total. A second visit downloads none of the /pkg
#    files again when their Cache-Control says immutable;
# 2. lets Chromium itself (playwright-core, scripts/first-load.mjs) open /login, sign in,
#    and open pages signed in with an empty cache, and prints what it transferred by its
#    own count, once the page is hydrated and the network idle.
# Usage: scripts/bench-first-load.sh [--no-build] [PATH...]   (default paths: / /orders)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--no-build" ]; then shift; else scripts/build.sh --release >&2; fi
[ $# -gt 0 ] || set -- / /orders
scripts/setup.sh playwright >&2

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PAYDESK_DATABASE_URL="sqlite://$work/paydesk.db" PAYDESK_LISTEN="127.0.0.1:$port" \
  PAYDESK_SITE_ROOT=target/site PAYDESK_DEMO_HISTORY=off PAYDESK_DEMO_SHOPPERS=off \
  PAYDESK_ADMIN_PASSWORD=first-load-bench-password RUST_LOG=warn \
  target/release/paydesk serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

fetch() { # path → "bytes encoding cache-control"
  curl -s -o /dev/null -D "$work/headers" -H 'Accept-Encoding: br, gzip' \
    -w '%{size_download}' "http://127.0.0.1:$port$1" >"$work/size"
  local enc cache
  enc=$(grep -i '^content-encoding:' "$work/headers" | tr -d '\r' | awk '{print $2}' || true)
  cache=$(grep -i '^cache-control:' "$work/headers" | tr -d '\r' | cut -d' ' -f2- || true)
  echo "$(cat "$work/size") ${enc:-identity} ${cache:--}"
}

curl -s -H 'Accept-Encoding: identity' "http://127.0.0.1:$port/login" >"$work/login.html"
paths=$(grep -o '/pkg/[^"]*\.\(js\|wasm\|css\)' "$work/login.html" | sort -u)
echo "curl, /login and the files it names:"
# The hydration script builds the wasm URL itself: the name is the preload link's.
echo "| resource | bytes sent | encoding | Cache-Control |"
echo "|---|---:|---|---|"
total=0
for path in /login $paths; do
  read -r bytes enc cache < <(fetch "$path")
  total=$((total + bytes))
  echo "| \`$path\` | $bytes | $enc | $cache |"
done
echo "| **first load** | **$total** | | |"

node scripts/first-load.mjs "http://127.0.0.1:$port" first-load-bench-password "$@"
