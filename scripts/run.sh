#!/usr/bin/env bash
# Runs paydesk on 127.0.0.1:3000 with SQLite (./data/paydesk.db) and the built-in WeChat Pay
# simulator. On the first start it prints the admin password once and fills three weeks of
# demo history; demo shoppers keep paying while it runs (PAYDESK_DEMO_HISTORY=off,
# PAYDESK_DEMO_SHOPPERS=off turn them off). Installs what is missing
# and builds first; pass --release for an optimised build. Extra PAYDESK_* variables apply
# (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = "--release" ]; then profile=release; shift; fi
if [ "$profile" = release ]; then scripts/build.sh --release; else scripts/build.sh; fi
export PAYDESK_SITE_ROOT=${PAYDESK_SITE_ROOT:-target/site}
exec "target/$profile/paydesk" serve "$@"
