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

# 1 ∥ 5: the wasm crate in its own target dir so both cargo builds run at once.
wasm_log=$(mktemp)
# `--cfg erase_components` (type-erased views) comes from .cargo/config.toml for every build;
# server and browser must agree on it. A RUSTFLAGS in the environment would replace it:
# release-env.sh puts it back.
# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
(
  # .cargo/config.toml adds `--emit-relocs` for the wasm target (the splitter needs it);
  # a RUSTFLAGS in the environment replaces that list, so add it back.
  if [ -n "${RUSTFLAGS:-}" ]; then export RUSTFLAGS="$RUSTFLAGS -C link-args=--emit-relocs"; fi
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

# 2: cut the wasm at the pages' split points (`#[lazy_route]`, app/src/lib.rs): the main
# module (router, shell, what every page uses) and one chunk per page, plus chunks of what pages share,
# the loader `__wasm_split.______________________.js` and the manifest Leptos reads to
# preload a page's chunks (tools/wasm-split, docs/build.md "Split wasm").
wasm="target/wasm/wasm32-unknown-unknown/$wasm_dir/frontend.wasm"
# New files, never writes into old ones: a target/ copied with hard links (`cp -al`, as
# worktrees are seeded) shares these inodes with other checkouts, which a write in place
# would change too. Every plain-named file is generated again (old chunks go with them);
# the content-named files of earlier release builds stay 30 days, so a browser still
# running a page of the previous deploy can load that page's chunks (docs/build.md "Split
# wasm").
# The 30 days count from when a build stopped being the current one: its files are
# touched now.
if [ -f "target/$profile/hash.txt" ]; then
  for h in $(awk '{print $2}' "target/$profile/hash.txt" | sort -u); do
    touch -c "$pkg"/*."$h".*
  done
fi
find "$pkg" -maxdepth 1 -type f -regextype posix-extended \
  ! -regex '.*\.[0-9a-f]{20,22}\.[a-z]+(\.br|\.gz)?' -delete
find "$pkg" -maxdepth 1 -type f -mtime +30 -delete
split_main="target/wasm/wasm32-unknown-unknown/$wasm_dir/frontend_split.wasm"
rm -f "$split_main"
target/tools/bin/paydesk-wasm-split split "$wasm" "$pkg" "$split_main" paydesk

# 3: wasm-bindgen on the main module, keeping the exports the chunks link against.
wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle \
  --out-dir "$pkg" --out-name paydesk "$split_main"
mv -f "$pkg/paydesk_bg.wasm" "$pkg/paydesk.wasm"

# 4: release only: shrink every module with binaryen from npm (Debian's binaryen breaks
# hydration).
if [ "$profile" = release ]; then
  scripts/setup.sh wasm-opt
  # Every module in parallel, one process per core; quiet unless one fails: wasm-opt warns
  # about every chunk's name section ("unknown name subsection with id 3"), which it drops.
  optimize() {
    if ! out=$(target/tools/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory \
        --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
        --enable-sign-ext --enable-mutable-globals "$1" -o "$1.opt" 2>&1); then
      echo "$out" >&2; echo "build: wasm-opt failed on $1" >&2; return 1
    fi
    mv -f "$1.opt" "$1"
  }
  export -f optimize
  find "$pkg" -maxdepth 1 -name '*.wasm' -regextype posix-extended \
    ! -regex '.*\.[0-9a-f]{20,22}\.wasm' -print0 |
    xargs -0 -r -n 1 -P "$(nproc)" bash -c 'optimize "$0"'
fi

# 6: stylesheet and static files.
cp style/main.css "$pkg/paydesk.css"
if [ -d public ] && [ -n "$(ls -A public 2>/dev/null)" ]; then cp -r public/. "$site/"; fi

# 7: release only: names that say what is inside, so browsers cache them for good
# (tools/wasm-split `name`: one hash for the files that name each other, one for the
# stylesheet), and precompressed copies the server sends as they are
# (server/src/routes/assets.rs). Leptos reads the hashes from hash.txt beside the binary; a
# debug build has none and serves the plain names, revalidated on every use.
hashes="target/$profile/hash.txt"
if [ "$profile" = release ]; then
  scripts/setup.sh compressors
  target/tools/bin/paydesk-wasm-split name "$pkg" paydesk "$hashes.tmp"
  hash=$(awk '$1 == "wasm:" {print $2}' "$hashes.tmp")
  css_hash=$(awk '$1 == "css:" {print $2}' "$hashes.tmp")
  for named in "$pkg"/*."$hash".* "$pkg"/*."$css_hash".css; do
    case "$named" in *.br|*.gz) continue ;; esac
    gzip -9 -k -f "$named"
    brotli -q 11 -k -f "$named"
  done
  mv -f "$hashes.tmp" "$hashes"
fi

echo "build: target/$profile/paydesk and $site ($(du -h "$pkg/paydesk.wasm" | cut -f1) main wasm, $(find "$pkg" -maxdepth 1 -name '*.wasm' ! -name 'paydesk*' ! -name '*.*.wasm' | wc -l) chunks)"
