#!/usr/bin/env bash
# scripts/test.sh — the README's test command, run by CI: installs the
# dependencies, then
#   1. builds into build/ and runs the whole test suite (CTest);
#   2. builds the suite with AddressSanitizer + UndefinedBehaviorSanitizer
#      (LeakSanitizer on) into build-asan/ and runs it, except the PyTorch
#      comparisons (see below);
#   3. builds the libFuzzer targets with clang-14 into build-fuzz/ and runs
#      each for 30 seconds, two at a time (tests/fuzz/run.sh).
# The real model must be in ../shared/models (or $TFX_MODELS_DIR): the
# end-to-end tests need it. TFX_TEST_SANITIZE=0 / TFX_TEST_FUZZ=0 skip steps
# 2 / 3 (for a quick local run); TFX_FUZZ_SECONDS changes the 30 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh all
models="${TFX_MODELS_DIR:-$(pwd)/../shared/models}"
if [ ! -f "$models/stories260K.bin" ]; then
  echo "test: the reference model is missing: $models/stories260K.bin (set TFX_MODELS_DIR)" >&2
  exit 1
fi
jobs="${TFX_JOBS:-2}"
start=$SECONDS
./scripts/build.sh
./scripts/pyenv.sh
./scripts/hfenv.sh
ctest --test-dir build --output-on-failure -j"$jobs"
echo "test: suite passed ($((SECONDS - start)) s so far)"

if [ "${TFX_TEST_SANITIZE:-1}" != 0 ]; then
  # The sanitizer suite, a documented subset to stay well inside CI's time:
  # - the tests/test_torch_* comparisons are left out: they check numerics of
  #   JIT-compiled kernels, which the sanitizers do not instrument, and the
  #   compiler code they run (sema, lowering, passes and code generation of
  #   every op) runs under the sanitizers in test_attention_variants,
  #   test_ffn_variants, test_backend_ops, test_ops_jit_api and the others;
  # - test_quant_quality, test_python and test_install are not registered
  #   there (tests/CMakeLists.txt says why);
  # - test_differential runs 20 random models instead of 100 (TFX_DIFF_SEEDS);
  # - the JIT harnesses compile at LLVM -O0 only (tfx_test_llvm_level in
  #   tests/support/testutil.h): LLVM's optimizer and the kernels it makes
  #   are not instrumented, and the IR tfxc emits, the graph passes and the
  #   runtime do not depend on LLVM's level; the main suite runs -O3;
  # - test_cross is left out, and the runtimes for other machines are not
  #   built: what it runs is target code under qemu, which the sanitizers do
  #   not instrument (the compiler's part, --target, is test_target's and
  #   test_portability's); the sanitizer build does not build it nor the
  #   test_torch_* programs (the -E below is for older build-asan trees).
  # No suppressions are needed: LLVM's JIT and libffi report nothing.
  cmake -S . -B build-asan -DTFX_SANITIZE=ON -DTFX_CROSS_RUNTIMES=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" TFX_DIFF_SEEDS="${TFX_DIFF_SEEDS:-20}" \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -E '^test_torch_|^test_cross$'
  echo "test: sanitizer suite passed ($((SECONDS - start)) s so far)"
fi

if [ "${TFX_TEST_FUZZ:-1}" != 0 ]; then
  tests/fuzz/run.sh "${TFX_FUZZ_SECONDS:-30}"
  echo "test: fuzz smoke runs passed ($((SECONDS - start)) s in all)"
fi
