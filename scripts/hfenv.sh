#!/usr/bin/env bash
# scripts/hfenv.sh — the Python environment of the import tests
# (tests/test_import_families.c): a venv made from Debian's python3 with
# --system-site-packages (so PyTorch and NumPy are Debian's) holding
# `transformers` 4.44.2 from PyPI, the oracle of `tfxc import`. Idempotent;
# prints nothing when already set up. A venv that cannot import Debian's
# torch (made from another python3) is made again.
#   scripts/hfenv.sh            creates or checks $TFX_HFENV (default ~/.cache/tfxc/hfenv)
# Tests find its python as $TFX_HFENV/bin/python3 (CMake passes the path as TFX_HF_PYTHON).
set -euo pipefail
venv="${TFX_HFENV:-$HOME/.cache/tfxc/hfenv}"
packages=("transformers==4.44.2")
check='import torch, safetensors, transformers; assert transformers.__version__ == "4.44.2"'
if [ -x "$venv/bin/python3" ] && "$venv/bin/python3" -c "$check" 2>/dev/null; then
  exit 0
fi
echo "hfenv: creating $venv with ${packages[*]}"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv --clear --system-site-packages "$venv"
"$venv/bin/python3" -m pip install -q --disable-pip-version-check "${packages[@]}"
"$venv/bin/python3" -c "$check"
