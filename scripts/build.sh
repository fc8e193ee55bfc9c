#!/usr/bin/env bash
# Builds paydesk: the wasm front end and the server in parallel, then the site folder
# (docs/build.md "The build pipeline"). Usage: scripts/build.sh [--release]
# Installs what it needs (wasm target, wasm-bindgen-cli at the pinned version) first.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
cargo_profile=()
# The wasm crate's release profile is `wasm-release` (Cargo.toml: opt-level z, LTO, one
# codegen unit): size decides how soon the dashboard is interactive.
wasm_profile=()
wasm_dir=debug
if [ "${1:-}" = "--release" ]; then
  profile=release; cargo_profile=(--release); wasm_profile=(--profile wasm-release); wasm_dir=wasm-release
fi

scripts/setup.sh build

site=target/site
pkg=$site/pkg
mkdir -p "$pkg"

# 1 ∥ 4: the wasm crate in its own target dir so both cargo builds run at once.
wasm_log=$(mktemp)
# `--cfg erase_components` (type-erased views) comes from .cargo/config.toml for every build;
# server and browser must agree on it. A RUSTFLAGS in the environment would replace it:
# release-env.sh puts it back.
# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
(
  cargo build -p frontend --lib --target wasm32-unknown-unknown --target-dir target/wasm \
    ${wasm_profile[@]+"${wasm_profile[@]}"} >"$wasm_log" 2>&1
) &
wasm_pid=$!
cargo build -p server --bin paydesk ${cargo_profile[@]+"${cargo_profile[@]}"}
if ! wait "$wasm_pid"; then
  cat "$wasm_log" >&2; rm -f "$wasm_log"
  echo "build: the wasm build failed" >&2; exit 1
fi
rm -f "$wasm_log"

# 2: wasm-bindgen, renamed to the output name the server was compiled with.
wasm="target/wasm/wasm32-unknown-unknown/$wasm_dir/frontend.wasm"
# New files, never writes into old ones: a target/ copied with hard links (`cp -al`, as
# worktrees are seeded) shares these inodes with other checkouts, which a write in place
# would change too.
rm -f "$pkg/paydesk.js" "$pkg/paydesk.css" "$pkg/paydesk.wasm"
wasm-bindgen --target web --no-typescript --out-dir "$pkg" --out-name paydesk "$wasm"
mv -f "$pkg/paydesk_bg.wasm" "$pkg/paydesk.wasm"

# 3: release only: shrink with binaryen from npm (Debian's binaryen breaks hydration).
if [ "$profile" = release ]; then
  scripts/setup.sh wasm-opt
  target/tools/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types \
    --enable-multivalue --enable-sign-ext --enable-mutable-globals "$pkg/paydesk.wasm" -o "$pkg/paydesk.wasm"
fi

# 5: stylesheet and static files.
cp style/main.css "$pkg/paydesk.css"
if [ -d public ] && [ -n "$(ls -A public 2>/dev/null)" ]; then cp -r public/. "$site/"; fi

# 6: release only: names that say what is inside, so browsers cache them for good, and
# precompressed copies the server sends as they are (server/src/routes/assets.rs). Leptos
# reads the hashes from hash.txt beside the binary; a debug build has none and serves
# paydesk.{js,wasm,css}, revalidated on every use.
hashes="target/$profile/hash.txt"
if [ "$profile" = release ]; then
  scripts/setup.sh compressors
  rm -f "$pkg"/paydesk.*.js* "$pkg"/paydesk.*.wasm* "$pkg"/paydesk.*.css*
  : >"$hashes.tmp"
  for ext in js wasm css; do
    hash=$(sha256sum "$pkg/paydesk.$ext" | cut -c1-20)
    named="$pkg/paydesk.$hash.$ext"
    cp "$pkg/paydesk.$ext" "$named"
    gzip -9 -k -f "$named"
    brotli -q 11 -k -f "$named"
    echo "$ext: $hash" >>"$hashes.tmp"
  done
  mv -f "$hashes.tmp" "$hashes"
fi

echo "build: target/$profile/paydesk and $site ($(du -h "$pkg/paydesk.wasm" | cut -f1) wasm)"
