#!/usr/bin/env bash
# Install dependencies, build (release), run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-debian.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build
exec build/tools/evbus-demo "$@"
