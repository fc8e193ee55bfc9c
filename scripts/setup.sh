#!/usr/bin/env bash
# Installs what paydesk's scripts need, idempotently and quietly when already present.
#   scripts/setup.sh build     wasm target + wasm-bindgen-cli (pinned to the crate version)
#                              + tools/wasm-split (the splitter, into target/tools)
#   scripts/setup.sh test      build + Chromium/ChromeDriver + PostgreSQL server binaries
#                              + nginx (the cluster test's proxy, scripts/cluster.sh)
#   scripts/setup.sh wasm-opt  binaryen 132 from npm into target/tools (release builds)
#   scripts/setup.sh compressors  gzip and brotli (release builds precompress the front end)
#   scripts/setup.sh playwright   Chromium + playwright-core (npm) into target/tools (first-load bench)
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen = "=…"` pin in Cargo.toml

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]} (apt)"
  local sudo=""
  [ "$(id -u)" != 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_build() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown >/dev/null
  fi
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
    # Without --locked: with it, a locked dependency is missing from the registry (docs/build.md).
    cargo install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  setup_wasm_split
}

# The wasm splitter and content namer of scripts/build.sh (tools/wasm-split, outside the
# workspace), rebuilt when its source is newer than the installed binary.
setup_wasm_split() {
  local bin=target/tools/bin/paydesk-wasm-split
  if [ ! -x "$bin" ] || [ -n "$(find tools/wasm-split -path tools/wasm-split/target -prune -o -newer "$bin" -type f -print -quit)" ]; then
    echo "setup: building tools/wasm-split into target/tools"
    cargo install --quiet --locked --force --path tools/wasm-split --root target/tools \
      --target-dir target/tools-build
  fi
}

setup_test() {
  setup_build
  command -v chromium >/dev/null && command -v chromedriver >/dev/null || apt_install chromium chromium-driver
  # Fonts so screenshots of the Chinese UI show characters, not boxes.
  apt_install fonts-noto-cjk
  if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
  fi
  # Debian's nginx in front of the cluster test's instances (deploy/nginx.conf.template).
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx-light
}

setup_wasm_opt() {
  if [ ! -x target/tools/node_modules/.bin/wasm-opt ]; then
    echo "setup: installing binaryen 132 (npm) into target/tools"
    mkdir -p target/tools
    npm install --silent --prefix target/tools binaryen@132 >/dev/null
  fi
}

setup_compressors() {
  command -v gzip >/dev/null && command -v brotli >/dev/null || apt_install gzip brotli
}

setup_playwright() {
  command -v chromium >/dev/null || apt_install chromium
  apt_install fonts-noto-cjk
  if [ ! -d target/tools/node_modules/playwright-core ]; then
    echo "setup: installing playwright-core (npm) into target/tools"
    mkdir -p target/tools
    npm install --silent --prefix target/tools playwright-core@1 >/dev/null
  fi
}

setup_wrk() {
  command -v wrk >/dev/null || apt_install wrk
}

case "${1:-build}" in
  build) setup_build ;;
  test) setup_test ;;
  wasm-opt) setup_wasm_opt ;;
  compressors) setup_compressors ;;
  wrk) setup_wrk ;;
  playwright) setup_playwright ;;
  *) echo "usage: scripts/setup.sh build|test|wasm-opt|compressors|wrk|playwright" >&2; exit 2 ;;
esac
