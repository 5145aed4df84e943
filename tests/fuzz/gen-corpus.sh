#!/usr/bin/env bash
# Regenerate the seed corpus of the fuzz targets (tests/fuzz/corpus/*/seed-*)
# from files the current build's bus writes; run after a format change.
# Hand-made edge cases (edge-*) and crash reproducers (crash-*) are kept.
# usage: tests/fuzz/gen-corpus.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
ninja -C "$build" tests/fuzz/gen_corpus >/dev/null
rm -f tests/fuzz/corpus/*/seed-*
"$build"/tests/fuzz/gen_corpus tests/fuzz/corpus
ls tests/fuzz/corpus/*/ | head -100
