#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] — builds the libFuzzer targets with clang-14
# (ASan + UBSan + libFuzzer, CMake option TFX_FUZZ) into build-fuzz/ and runs
# each for SECONDS (default 30) on its corpus: build-fuzz/corpus/<target>,
# seeded by gen_seeds.py (the examples, tiny weight files) and kept between
# runs so that longer runs build on earlier ones. A finding (crash, sanitizer
# report, leak, timeout, out-of-memory) stops that target and fails the
# script; its input is saved under build-fuzz/findings/<target>/.
# Environment: TFX_FUZZ_BUILD (build directory), TFX_FUZZ_TARGETS (a subset,
# space-separated), TFX_FUZZ_CC (default clang-14), TFX_JOBS (default 2:
# the build's jobs, and how many targets run at once).
set -euo pipefail
secs="${1:-30}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${TFX_FUZZ_BUILD:-$root/build-fuzz}"
cc="${TFX_FUZZ_CC:-clang-14}"
command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DTFX_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${TFX_JOBS:-2}" --target fuzz >/dev/null

targets="${TFX_FUZZ_TARGETS:-fuzz_frontend fuzz_llama2c fuzz_safetensors fuzz_gguf fuzz_model}"
seeds="$build/seeds"
rm -rf "$seeds"
python3 "$root/tests/fuzz/gen_seeds.py" "$seeds"

# fuzz_model mutates a model compiled by the regular build's tfxc when there
# is one (the real layout: runtime, libffi, relocations), else a small model it
# builds itself with cc.
if [ -z "${TFX_FUZZ_MODEL:-}" ] && [ -x "$root/build/tfxc" ] &&
  "$root/build/tfxc" "$root/examples/llama/tiny.tfx" --weights random -o "$build/fuzz_model_base.so" 2>/dev/null; then
  export TFX_FUZZ_MODEL="$build/fuzz_model_base.so"
fi

# ASan/UBSan: report leaks and stop on the first error with a symbolized trace.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# run_target T: one target for SECONDS; its exit status goes to $build/T.status.
run_target() {
  local t="$1" name="${1#fuzz_}" dict=()
  local corpus="$build/corpus/$t" findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  case "$name" in
  frontend) dict=(-dict="$root/tests/fuzz/tfx.dict") ;;
  safetensors) dict=(-dict="$root/tests/fuzz/safetensors.dict") ;;
  gguf) dict=(-dict="$root/tests/fuzz/gguf.dict") ;;
  esac
  # -timeout: one input taking more than 10 s is a hang; -rss_limit_mb: a
  # loader that allocates what the file claims instead of what it has is a
  # finding.
  local rc=0
  "$build/tests/fuzz/$t" "$corpus" "$seeds/$name" "${dict[@]}" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" >"$build/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$build/$t.status"
}

# The targets run TFX_JOBS at a time (each is one process); the results are
# reported in the order of the list once all have finished.
ran=()
for t in $targets; do
  if [ ! -x "$build/tests/fuzz/$t" ]; then
    echo "fuzz: $t was not built (its loader is not in the tree yet): skipped"
    continue
  fi
  while [ "$(jobs -rp | wc -l)" -ge "${TFX_JOBS:-2}" ]; do wait -n || true; done
  echo "fuzz: $t for ${secs}s (corpus $build/corpus/$t, log $build/$t.log)"
  rm -f "$build/$t.status"
  run_target "$t" &
  ran+=("$t")
done
wait

status=0
for t in "${ran[@]}"; do
  log="$build/$t.log"
  if [ "$(cat "$build/$t.status" 2>/dev/null)" = 0 ]; then
    grep -E "^stat::number_of_executed_units|^stat::new_units_added|^stat::peak_rss_mb" "$log" | sed "s/^/fuzz: $t: /"
  else
    status=1
    echo "fuzz: $t FOUND A PROBLEM (input saved in $build/findings/$t/):" >&2
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==|#[0-9]+ 0x" "$log" | head -40 >&2 || tail -20 "$log" >&2
  fi
done
exit $status
