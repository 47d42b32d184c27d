#!/usr/bin/env bash
# scripts/example.sh [stories260k [--random]] — installs the build
# dependencies only (scripts/install-deps.sh build: LLVM 19, libffi, flex,
# bison, cmake; no PyTorch, no clang), builds tfxc and runs an example model.
#
# Default: the repository's own demo model, examples/fortune (a small Llama
# trained by examples/fortune/train.py on Debian's fortunes; its weights and
# tokenizer are committed): compiled to a shared library with its tokenizer
# inside (fortune.tfx's tokenizer statement), then asked to continue a prompt, printing text as it is generated.
#
# `stories260k`: llama2.c's stories260K.bin, read from $TFX_MODELS_DIR
# (default: ../shared/models beside the checkout; its origin is in that
# folder's README), compiled and run greedily (its ids are llama2.c's; its
# tokenizer is not available, so it prints ids). When the file is missing
# this is an error, unless --random is given: the same model with random
# weights (its tokens mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
model=fortune
random=0
for arg in "$@"; do
  case "$arg" in
    fortune | stories260k) model="$arg" ;;
    --random) random=1 ;;
    *) echo "usage: $0 [fortune | stories260k [--random]]" >&2; exit 2 ;;
  esac
done
if [ "$model" = fortune ]; then
  [ "$random" = 0 ] || { echo "example: --random goes with stories260k" >&2; exit 2; }
  echo "example: examples/fortune (the project's demo model: weights and tokenizer in the repository)"
  ./scripts/install-deps.sh build
  ./scripts/build.sh tfxc
  set -x
  ./build/tfxc examples/fortune/fortune.tfx -O3 -o build/fortune.so
  ./build/tfxc run build/fortune.so -p "A computer" -n 60 \
    --temperature 0.7 --top-p 0.9 --seed 7
  exit 0
fi
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
  echo "example: or run $0 stories260k --random to use random weights" >&2
  exit 1
fi
./scripts/install-deps.sh build
./scripts/build.sh tfxc
set -x
./build/tfxc examples/llama/stories260k.tfx --weights "$weights" -O3 -o build/stories260k.so
./build/tfxc run build/stories260k.so -n 64 --temperature 0 --print-ids
./build/tfxc run examples/llama/stories260k.tfx --weights "$weights" -n 64 --temperature 0.8 --top-p 0.9 --seed 1
