#!/usr/bin/env bash
# scripts/test.sh — installs the dependencies, builds, and runs the whole test
# suite (cmocka tests through CTest). The real model must be in
# ../shared/models (or $TFX_MODELS_DIR): the end-to-end tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
models="${TFX_MODELS_DIR:-$(pwd)/../shared/models}"
if [ ! -f "$models/stories260K.bin" ]; then
  echo "test: the reference model is missing: $models/stories260K.bin (set TFX_MODELS_DIR)" >&2
  exit 1
fi
./scripts/build.sh
ctest --test-dir build --output-on-failure -j"${TFX_JOBS:-2}"
