#!/usr/bin/env bash
# Install what evbus needs to build, test and benchmark on Debian 12 (as root);
# gnuplot-nox draws `evbus bench --plot` (its test skips the plot without it);
# valgrind counts instructions per event for the hot-path guard (perf/insn_guard.sh).
set -euo pipefail
# python3-venv, -setuptools, -wheel and -numpy: the Python binding's test
# installs bindings/python into a venv with no package index (README, "Python").
pkgs=(build-essential meson ninja-build pkg-config python3 clang
      liburing-dev libhwloc-dev libjemalloc-dev libcriterion-dev libxxhash-dev
      libjansson-dev strace fio gnuplot-nox valgrind
      python3-venv python3-setuptools python3-wheel python3-numpy
      prometheus  # promtool: tests/cli/test_cli_stat.sh checks evbus stat --prometheus
      # losetup and mkfs.ext4: tests/durable/test_power_loss.sh's disks
      # (priority required, but not in every minimal image)
      mount e2fsprogs
      # perf/compare's peers (optional: the harness leaves out what is missing;
      # no test needs them); iceoryx brings RouDi, which perf/compare/run.sh starts
      libzmq3-dev libnng-dev libiceoryx-binding-c-dev iceoryx)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
