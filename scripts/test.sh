#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (wasm target,
# wasm-bindgen-cli, Chromium + ChromeDriver, PostgreSQL), checks formatting and lints,
# builds the app (wasm + server), starts a throwaway PostgreSQL, then runs every test:
# unit, repository (SQLite and PostgreSQL), HTTP, simulator, and the browser tests.
# Exits non-zero on any failure. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# A failing test's error (anyhow) prints its message without a 50-frame backtrace, which
# would push the message out of what CI keeps of the output; panics still honour
# RUST_BACKTRACE.
export RUST_LIB_BACKTRACE=${RUST_LIB_BACKTRACE:-0}
# A clean clone builds everything once: incremental caches (11 GB here) only fill the disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
# shellcheck source=scripts/release-env.sh
source scripts/release-env.sh
started=$(date +%s)
step() { echo; echo "==> $* ($(( $(date +%s) - started ))s)"; }
# What the build left on disk: CI's machine has a disk of unknown size.
disk() { echo "target/: $(du -sh target 2>/dev/null | cut -f1); free beside it: $(df -h --output=avail . | tail -1 | tr -d ' ')"; }

step "setup"
scripts/setup.sh test

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path tools/wasm-split/Cargo.toml -- --check

step "build (wasm front end + server)"
scripts/build.sh

disk

step "clippy"
cargo clippy --all-targets -- -D warnings
cargo clippy -p paydesk-e2e --all-targets -- -D warnings
cargo clippy -p frontend --lib --target wasm32-unknown-unknown --target-dir target/wasm -- -D warnings
# The build's wasm splitter, outside the workspace (its own lock file and target dir).
cargo clippy --manifest-path tools/wasm-split/Cargo.toml --locked --target-dir target/tools-build \
  -- -D warnings

step "throwaway PostgreSQL"
# shellcheck source=scripts/pg-temp.sh
source scripts/pg-temp.sh start
trap 'scripts/pg-temp.sh stop "$PAYDESK_PG_DIR"' EXIT
export PAYDESK_TEST_REQUIRE_POSTGRES=1
echo "PostgreSQL at ${PAYDESK_TEST_POSTGRES_URL}"

step "unit, repository, HTTP and simulator tests (SQLite + PostgreSQL)"
cargo test --no-fail-fast

step "browser tests (headless Chromium; the cluster of scripts/cluster.sh behind nginx)"
# The cluster test runs the standalone simulator beside three instances.
cargo build -p paydesk-sim --bin paydesk-sim
cargo test -p paydesk-e2e --no-fail-fast

step "all tests passed"
disk
