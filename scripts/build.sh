#!/usr/bin/env bash
# scripts/build.sh [TARGET...] — configures and builds tfxc into ./build (2
# parallel jobs): every target, or only the ones named (e.g. tfxc).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${TFX_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"${TFX_JOBS:-2}" ${1:+--target "$@"}
