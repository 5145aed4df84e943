#!/usr/bin/env bash
# Install the build into a scratch DESTDIR and build a C++17 program with
# nothing but `pkg-config --cflags --libs evbus` (PKG_CONFIG_SYSROOT_DIR
# maps the installed .pc's paths into the DESTDIR), warnings as errors,
# then run it. Proves the header is installed beside evbus.h and that the
# .pc serves C++ as it is.
# Usage: test_pkgconfig.sh BUILD_DIR SOURCE_DIR LIBDIR CXX...
set -euo pipefail
build=$1 src=$2 libdir=$3
shift 3
tmp=$(mktemp -d /tmp/evbus-pc-XXXXXX)
bus=$(mktemp -d /dev/shm/evbus-pc-XXXXXX)
trap 'rm -rf "$tmp" "$bus"' EXIT
meson install -C "$build" --destdir "$tmp" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp" -name evbus.pc -path '*/pkgconfig/*')
[[ -n $pc ]] || { echo "no evbus.pc installed" >&2; exit 1; }
hpp=$(find "$tmp" -name evbus.hpp)
[[ $hpp == */include/evbus.hpp ]] || { echo "evbus.hpp not installed: $hpp" >&2; exit 1; }
export PKG_CONFIG_SYSROOT_DIR=$tmp PKG_CONFIG_PATH=${pc%/*}
flags=$(pkg-config --cflags --libs evbus)
echo "c++ -std=c++17 ... $flags"
"$@" -std=c++17 -Wall -Wextra -pedantic -Werror "$src/tests/cpp/pkgconfig_main.cpp" \
    -o "$tmp/app" $flags
LD_LIBRARY_PATH=$tmp$libdir "$tmp/app" "$bus"
echo "built with pkg-config and ran"
