#!/usr/bin/env bash
# Install what evbus needs to build, test and benchmark on Debian 12 (as root).
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config python3 clang
      liburing-dev libhwloc-dev libjemalloc-dev libcriterion-dev libxxhash-dev
      libjansson-dev strace fio)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
