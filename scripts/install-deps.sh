#!/usr/bin/env bash
# scripts/install-deps.sh [build|test|all|cross] — installs the Debian packages tfxc
# needs, as root or through sudo; does nothing when they are all present.
#   build  what building tfxc and compiling and running models needs: LLVM 19,
#          libffi, LAPACKE (GPTQ), flex, bison, cmake, pkg-config, a C compiler and binutils
#          (scripts/example.sh installs only these)
#   test   what only the test suite needs: cmocka, PyTorch and NumPy (the
#          numeric oracles), python3-venv (scripts/pyenv.sh), clang-14 with its
#          sanitizer and libFuzzer runtimes and llvm-symbolizer (the fuzz
#          targets), and Debian's `fortunes` (test_fortune: the demo model's
#          training corpus, for the tokenizer's round trip)
#   cross  the cross toolchains and qemu-user that test_cross runs
#          stories260K with (tfxc --target, docs/portability.md; test_cross
#          skips the machines whose tools are missing)
#   all    the three (the default; scripts/test.sh, CI)
set -euo pipefail
what="${1:-all}"
build=(llvm-19-dev libffi-dev liblapacke-dev flex bison cmake pkg-config gcc make binutils)
test=(libcmocka-dev python3-torch python3-numpy python3-venv
      clang-14 libclang-rt-14-dev llvm-14  # libFuzzer, ASan/UBSan runtimes, llvm-symbolizer
      fortunes)
cross=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross)
case "$what" in
  build) packages=("${build[@]}") ;;
  test) packages=("${test[@]}") ;;
  all) packages=("${build[@]}" "${test[@]}" "${cross[@]}") ;;
  cross) packages=("${cross[@]}") ;;
  *) echo "usage: $0 [build|test|all|cross]" >&2; exit 2 ;;
esac
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
