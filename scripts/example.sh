#!/usr/bin/env bash
# scripts/example.sh — installs the dependencies, builds tfxc, compiles the
# stories260K example to a shared library and generates 64 tokens with it,
# then runs the same model through the JIT. Uses the real weights from
# ../shared/models when they are there, otherwise random weights.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
weights="${TFX_MODELS_DIR:-$(pwd)/../shared/models}/stories260K.bin"
[ -f "$weights" ] || { echo "example: $weights not found: using random weights"; weights=random; }
set -x
./build/tfxc examples/llama/stories260k.tfx --weights "$weights" -O3 -o build/stories260k.so
./build/tfxc run build/stories260k.so -n 64 --temperature 0 --print-ids
./build/tfxc run examples/llama/stories260k.tfx --weights "$weights" -n 64 --temperature 0.8 --top-p 0.9 --seed 1
