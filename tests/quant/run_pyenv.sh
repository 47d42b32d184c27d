#!/bin/sh
# tests/quant/run_pyenv.sh PYTHON SCRIPT ARGS... — runs a test script with the
# python of scripts/pyenv.sh (CMake's TFX_PYENV_PYTHON), failing with a clear
# message (not skipping) when that python is missing.
py="$1"
shift
if [ ! -x "$py" ]; then
  echo "$py is missing: run scripts/pyenv.sh (the tests' venv with numpy and the gguf package)" \
    "or configure with -DTFX_PYENV_PYTHON=/path/to/python3" >&2
  exit 1
fi
exec "$py" "$@"
