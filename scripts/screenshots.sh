#!/usr/bin/env bash
# Refreshes the README's screenshots: builds paydesk (wasm + server), then runs the browser
# tests (headless Chromium) with PAYDESK_SCREENSHOTS=1, so each test saves the pages it
# visits as docs/screenshots/<name>.png. An ordinary test run (scripts/test.sh) saves none:
# these files are tracked, and only a deliberate refresh should change them.
# Usage: scripts/screenshots.sh [FILTER]   (FILTER: only the browser tests whose name matches)
# Then look at `git status docs/screenshots` and commit what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build.sh
PAYDESK_SCREENSHOTS=1 cargo test -p paydesk-e2e --no-fail-fast -- "$@"
git status --short docs/screenshots
