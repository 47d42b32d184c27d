#!/usr/bin/env bash
# scripts/install-deps.sh — installs every Debian package tfxc needs to build
# and test (LLVM 19, libffi, flex, bison, cmocka, cmake, PyTorch and NumPy for
# the numeric tests, clang-14 with its sanitizer and libFuzzer runtimes for the
# fuzz targets). Does nothing when they are all present.
set -euo pipefail
packages=(llvm-19-dev libffi-dev flex bison libcmocka-dev cmake pkg-config gcc make binutils
          python3-torch python3-numpy python3-venv
          clang-14 libclang-rt-14-dev llvm-14)  # libFuzzer, ASan/UBSan runtimes, llvm-symbolizer
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
