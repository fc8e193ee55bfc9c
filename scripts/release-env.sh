# shellcheck shell=bash
# The flags of every release build (sourced by build.sh --release and the benchmark
# scripts), so they share target/release instead of rebuilding it for each other:
# `--cfg erase_components` type-erases the dashboard's views (a quarter off the wasm; the
# server must agree with the wasm on it, docs/build.md).
case " ${RUSTFLAGS:-} " in
  *" --cfg erase_components "*) ;;
  *) export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg erase_components" ;;
esac
