#!/usr/bin/env bash
# bench/setup_peers.sh — installs the benchmark's peers OUTSIDE the repo and
# outside CI: a venv (Debian python3 with --system-site-packages, so PyTorch is
# Debian's python3-torch) holding llama-cpp-python (llama.cpp built natively
# from source), gguf, onnx and onnxruntime; plus Debian's OpenBLAS via apt.
# Idempotent: each step is skipped when already done. Never run by tests.
set -euo pipefail

BENCH_HOME="${TFXC_BENCH_HOME:-$HOME/.cache/tfxc-bench}"
VENV="$BENCH_HOME/venv"
JOBS="${TFXC_BENCH_JOBS:-2}"
mkdir -p "$BENCH_HOME"

log() { echo "[setup_peers] $*" >&2; }

# --- OpenBLAS (Debian) -------------------------------------------------------
if ! ls /usr/include/*/openblas-pthread/cblas.h /usr/lib/*/openblas-pthread/libopenblas.so \
     >/dev/null 2>&1; then
  log "installing libopenblas-dev with apt"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev
fi

# --- PyTorch from Debian -------------------------------------------------------
if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  log "installing python3-torch with apt"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-numpy python3-venv
fi

# --- venv --------------------------------------------------------------------
if ! [ -x "$VENV/bin/python" ]; then
  log "creating venv $VENV (system site packages: Debian torch, numpy)"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c 'import gguf, onnx, onnxruntime' >/dev/null 2>&1; then
  log "pip install gguf onnx onnxruntime"
  # numpy stays Debian's (torch 1.13 is built against it).
  "$PY" -m pip install -q gguf onnx onnxruntime "numpy<2"
fi

if ! "$PY" -c 'import llama_cpp' >/dev/null 2>&1; then
  log "pip install llama-cpp-python (builds llama.cpp natively with $JOBS jobs; slow)"
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DLLAMA_CURL=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" FORCE_CMAKE=1 \
    nice -n 19 "$PY" -m pip install -v --no-cache-dir llama-cpp-python \
      >"$BENCH_HOME/llama-cpp-build.log" 2>&1 ||
    { log "llama-cpp-python build failed, see $BENCH_HOME/llama-cpp-build.log"; exit 1; }
fi
log "peers ready in $VENV"
