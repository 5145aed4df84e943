#!/usr/bin/env bash
# The Python binding's tests: install bindings/python into a venv in the
# build directory (made once, with Debian's python3 and its numpy through
# --system-site-packages; no package index), then run test_python.py
# against this build's libevbus.so and perf/evb_feed (the C producer).
# usage: run_python.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2
# Debian's python3 (the one python3-numpy and python3-venv are for), not
# whatever python3 comes first in PATH (pyenv, a venv).
py=${EVBUS_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=$(command -v python3)
venv=$build/python-venv
if [ ! -x "$venv/bin/python" ]; then
    if ! "$py" -m venv --system-site-packages "$venv"; then
        echo "SKIP: $py cannot make a venv (tools/setup-debian.sh installs python3-venv)"
        rm -rf "$venv"
        exit 77
    fi
fi
if ! "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
    echo "SKIP: no numpy for $py (tools/setup-debian.sh installs python3-numpy)"
    exit 77
fi
# pip builds a local directory in place: build a copy, not the source tree.
rm -rf "$build/python-src"
mkdir -p "$build/python-src"
cp -r "$src/bindings/python/pyproject.toml" "$src/bindings/python/evbus" "$build/python-src/"
"$venv/bin/pip" install -q --no-index --no-build-isolation --no-deps --force-reinstall \
    "$build/python-src"
export EVBUS_LIB=$build/bus/libevbus.so EVB_FEED=$build/perf/evb_feed
export EVB_PY_SRC=$src/bindings/python
# Run from elsewhere, so `import evbus` finds the installed package.
cd "$build"
exec "$venv/bin/python" -m unittest -v "$@" test_python 2>&1
