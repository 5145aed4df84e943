#!/usr/bin/env bash
# Cross-build evbus (library, tools, tests, benchmarks) for aarch64 with
# warnings as errors, check the ring's 16-byte CAS is inline, and run what
# qemu-user can run faithfully (see the last step). Debian 12, as root;
# .ci/run calls it after the native suites, and it is safe to rerun (it
# reuses build-aarch64/ and the sysroot when nothing changed).
#
# The toolchain and qemu are ordinary amd64 packages. The arm64 libraries
# are not installed with dpkg multiarch: libcriterion-dev and
# libjemalloc-dev are not co-installable across architectures (their
# :arm64 packages remove the amd64 ones the native build needs), and the
# others pull amd64 upgrades of unrelated system packages along. Instead
# their .debs are unpacked into a private sysroot, build-aarch64-sysroot/,
# which needs nothing from dpkg but arm64 package indices.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
top=$PWD
sysroot=$top/build-aarch64-sysroot
build=$top/build-aarch64
t0=$SECONDS

echo "== aarch64: toolchain and qemu"
missing=()
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-cache show liburing-dev:arm64 >/dev/null 2>&1 || apt-get update

echo "== aarch64: sysroot"
dev=(liburing-dev libhwloc-dev libxxhash-dev libjansson-dev libjemalloc-dev libcriterion-dev)
# Every library package they depend on, recursively: the linker follows
# each .so's DT_NEEDED, and pkg-config reads the .pc files named in
# criterion.pc's Requires.private (boxfort, libgit2, nanomsg, ...) and in
# theirs. Less what the cross toolchain already ships (libc and its
# headers, libgcc, libstdc++), so its own copies stay the only ones.
mapfile -t libs < <(apt-cache depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances "${dev[@]/%/:arm64}" |
    sed -n 's/^\(z\{0,1\}lib[^ ]*\):arm64$/\1/p' |
    grep -vxE 'libc6|libc6-dev|libc-dev-bin|libcrypt1|libcrypt-dev|libnsl-dev|libtirpc-dev|libgcc-s1|libstdc\+\+6' |
    sort -u)
# --print-uris gives one line per package, 'URI' FILE SIZE HASH, for the
# files not already in the current directory (hence the empty one). The
# file names carry versions, so the list tells whether the sysroot is
# current. apt's download sandbox user cannot write here: stay root.
aptdl=(apt-get -o APT::Sandbox::User=root download)
mkdir -p "$sysroot/debs" "$sysroot/empty"
(cd "$sysroot/empty" && "${aptdl[@]}" --print-uris "${dev[@]/%/:arm64}" "${libs[@]/%/:arm64}" |
    awk '{print $2}' | sort) >"$sysroot/want.new"
[[ -s $sysroot/want.new ]] || { echo "aarch64: no arm64 packages found" >&2; exit 1; }
if ! cmp -s "$sysroot/want.new" "$sysroot/want"; then
    rm -rf "$sysroot/root"
    (cd "$sysroot/debs" && "${aptdl[@]}" "${dev[@]/%/:arm64}" "${libs[@]/%/:arm64}")
    mkdir -p "$sysroot/root"
    while read -r deb; do
        dpkg-deb -x "$sysroot/debs/$deb" "$sysroot/root"
    done <"$sysroot/want.new"
    mv "$sysroot/want.new" "$sysroot/want"
    # Drop the .debs of versions no longer wanted.
    for f in "$sysroot"/debs/*.deb; do
        grep -qxF "${f##*/}" "$sysroot/want" || rm -f "$f"
    done
else
    rm -f "$sysroot/want.new"
fi
root=$sysroot/root
multi=aarch64-linux-gnu

# The second machine file: where the sysroot is, and how to run a test.
# The sysroot holds no libc, so the compiler keeps its own (-isystem and
# -L add to its paths rather than replace them as --sysroot would); qemu
# finds the dynamic loader under the cross toolchain's prefix and the
# sysroot's libraries through the guest's LD_LIBRARY_PATH.
# Rewritten only when it changes, so a rerun does not reconfigure.
cat >"$sysroot/paths.ini.new" <<EOF
[constants]
root = '$root'
libs = '$root/usr/lib/$multi:$root/lib/$multi'

[properties]
sys_root = root
pkg_config_libdir = [root + '/usr/lib/$multi/pkgconfig', root + '/usr/share/pkgconfig']

[built-in options]
c_args = ['-isystem', root + '/usr/include', '-isystem', root + '/usr/include/$multi']
c_link_args = ['-L' + root + '/usr/lib/$multi', '-Wl,-rpath-link,' + libs]

[binaries]
exe_wrapper = ['qemu-aarch64', '-L', '/usr/$multi', '-E', 'LD_LIBRARY_PATH=' + libs]
EOF
if cmp -s "$sysroot/paths.ini.new" "$sysroot/paths.ini"; then
    rm "$sysroot/paths.ini.new"
else
    mv "$sysroot/paths.ini.new" "$sysroot/paths.ini"
fi

echo "== aarch64: build (-Dwerror=true)"
if [[ ! -f $build/build.ninja ]]; then
    meson setup "$build" --cross-file tools/cross/aarch64-linux-gnu.ini \
        --cross-file "$sysroot/paths.ini" --buildtype=release -Dwerror=true >/dev/null
fi
ninja -C "$build"

# The tail CAS must be inline (shm/arch.h): no outline-atomics helper from
# libgcc, no libatomic call, and an exclusive pair or caspal in the code.
# Outputs are captured first: a grep -q that closes the pipe early would
# fail the pipeline under pipefail.
lib=$(readlink -f "$build/bus/libevbus.so")
syms=$(aarch64-linux-gnu-nm "$lib")
if grep -E '__aarch64_(cas|swp|ld)|__atomic_|__sync_' <<<"$syms"; then
    echo "aarch64: libevbus calls out for atomics (see shm/arch.h)" >&2
    exit 1
fi
if aarch64-linux-gnu-readelf -d "$lib" | grep 'libatomic'; then
    echo "aarch64: libevbus links libatomic" >&2
    exit 1
fi
code=$(aarch64-linux-gnu-objdump -d "$lib")
if ! grep -qE $'\t(ldaxp|ldxp|casp[al]*)\t' <<<"$code"; then
    echo "aarch64: no inline 16-byte CAS found in libevbus" >&2
    exit 1
fi
echo "aarch64: build and atomics check passed ($((SECONDS - t0)) s so far)"

# Tests under qemu-user: only what qemu 7.2 can run faithfully. The
# Criterion suites cannot start (BoxFort fails to spawn its test
# processes under qemu), the durable paths need io_uring (qemu-user has no
# io_uring_setup: ENOSYS), and concurrent processes are not trustworthy:
# qemu answers a process's reads of its own /proc/<pid>/stat with a made-up
# line whose start time can differ by a tick from the real one other
# processes read, so live owners look dead (shm/proc.c). What remains, and
# is run: the command-line tool, one process at a time, through the claim
# CAS, commits, batching, keyed and round-robin partitioning and reads.
# The program is started through the arm64 loader, not with -L: qemu's -L
# serves every absolute path that exists under its prefix from there ("/"
# included), so the library's no-symlink walk from "/" (shm/safe_open.c,
# used when openat2 is missing, as it is under qemu 7.2) would start in
# /usr/$multi.
echo "== aarch64: command-line smoke test under qemu-aarch64"
run=(qemu-aarch64 "/usr/$multi/lib/ld-linux-aarch64.so.1"
     --library-path "/usr/$multi/lib:$root/usr/lib/$multi:$root/lib/$multi")
smoke=$(mktemp -d /dev/shm/evbus-aarch64.XXXXXX)
trap 'rm -rf "$smoke"' EXIT
evb() { "${run[@]}" "$build/tools/evbus" "$1" --bus "$smoke/bus" "${@:2}"; }
evb create t --partitions 4 --ring-bytes 4M  # 10000 keyed events in one partition: 128-byte frames
seq 1 20000 | evb pub t
seq 20001 30000 | evb pub t --key k
evb tail t >"$smoke/out"
# Every value once, and in each partition offsets 0, 1, 2, ... in order.
awk '{print $2}' "$smoke/out" | sort -n | cmp - <(seq 1 30000)
awk -F'[: ]' '$2 != n[$1]++ { print "partition " $1 ": offset " $2; bad = 1 }
    END { exit bad }' "$smoke/out"
echo "aarch64: 30000 events published and read back under qemu"
echo "aarch64: done in $((SECONDS - t0)) s"
