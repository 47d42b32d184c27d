#!/usr/bin/env bash
# scripts/pyenv.sh — the Python environment of the tests that need packages
# Debian does not ship: a venv made from Debian's python3 with
# --system-site-packages (so PyTorch and NumPy are Debian's) holding the
# `gguf` package from PyPI (the oracle of the GGUF format and ggml's
# quantizers) and `sentencepiece` and `tokenizers` (the oracles of the
# tokenizers, tests/tokenizer/oracle.py). Idempotent. Prints nothing on success when already set up.
#   scripts/pyenv.sh            creates or checks $TFX_PYENV (default ~/.cache/tfxc/pyenv)
# Tests find its python as $TFX_PYENV/bin/python3 (CMake passes the path).
set -euo pipefail
venv="${TFX_PYENV:-$HOME/.cache/tfxc/pyenv}"
packages=("gguf==0.19.0" "sentencepiece==0.2.3" "tokenizers==0.23.3")
if [ -x "$venv/bin/python3" ] && "$venv/bin/python3" -c "import gguf, numpy, sentencepiece, tokenizers" 2>/dev/null; then
  exit 0
fi
echo "pyenv: creating $venv with ${packages[*]}"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python3" -m pip install -q --disable-pip-version-check "${packages[@]}"
"$venv/bin/python3" -c "import gguf, numpy, sentencepiece, tokenizers"
