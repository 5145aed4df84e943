#!/usr/bin/env bash
# Install dependencies, build, and run the whole test suite (plain build,
# full event counts). CI runs this, then the sanitizer builds (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build
meson test -C build --print-errorlogs --num-processes 1 "$@"
