#!/usr/bin/env bash
# scripts/example.sh [--random] — installs the build dependencies only
# (scripts/install-deps.sh build: LLVM 19, libffi, flex, bison, cmake; no
# PyTorch, no clang), builds tfxc, compiles the stories260K example to a
# shared library and generates 64 tokens with it, then runs the same model
# through the JIT.
# The weights are llama2.c's stories260K.bin, read from $TFX_MODELS_DIR
# (default: ../shared/models beside the checkout; where it comes from:
# ../shared/models/README.md). When it is missing this is an error, unless
# --random is given: the same model with random weights (its tokens mean
# nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
random=0
case "${1:-}" in
  "") ;;
  --random) random=1 ;;
  *) echo "usage: $0 [--random]" >&2; exit 2 ;;
esac
models="${TFX_MODELS_DIR:-$(pwd)/../shared/models}"
weights="$models/stories260K.bin"
if [ "$random" = 1 ]; then
  echo "example: weights: random (--random): the model's shape with random weights; its tokens mean nothing"
  weights=random
elif [ -f "$weights" ]; then
  echo "example: weights: $weights (llama2.c's stories260K, trained on TinyStories; $models/README.md)"
else
  echo "example: the weights are missing: $weights" >&2
  echo "example: set TFX_MODELS_DIR to the folder holding stories260K.bin (llama2.c's stories260K)," >&2
  echo "example: or run $0 --random to use random weights" >&2
  exit 1
fi
./scripts/install-deps.sh build
./scripts/build.sh tfxc
set -x
./build/tfxc examples/llama/stories260k.tfx --weights "$weights" -O3 -o build/stories260k.so
./build/tfxc run build/stories260k.so -n 64 --temperature 0 --print-ids
./build/tfxc run examples/llama/stories260k.tfx --weights "$weights" -n 64 --temperature 0.8 --top-p 0.9 --seed 1
