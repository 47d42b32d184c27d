#!/usr/bin/env bash
# scripts/build.sh — configures and builds tfxc into ./build (2 parallel jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE="${TFX_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"${TFX_JOBS:-2}"
