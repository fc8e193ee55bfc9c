# shellcheck shell=bash
# Sourced by build.sh and the benchmark scripts. `.cargo/config.toml` builds everything with
# `--cfg erase_components` (type-erased views, which server and wasm must agree on), but a
# RUSTFLAGS in the environment (a profiler's `-C force-frame-pointers=yes`, say) replaces
# that list instead of adding to it: put the flag back so such a build still hydrates. With
# RUSTFLAGS unset nothing is exported, so every build shares the one cache.
if [ -n "${RUSTFLAGS:-}" ]; then
  case " ${RUSTFLAGS} " in
    *" --cfg erase_components "*) ;;
    *) export RUSTFLAGS="${RUSTFLAGS} --cfg erase_components" ;;
  esac
fi
