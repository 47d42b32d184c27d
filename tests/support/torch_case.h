/* tests/support/torch_case.h — checks a .tfx model against a PyTorch
 * reference script of tests/torch/ (see tests/torch/common.py for the case
 * format). */
#ifndef TFX_TORCH_CASE_H
#define TFX_TORCH_CASE_H

/* Runs `/usr/bin/python3 tests/torch/<script>.py OUTDIR` into a fresh temp
 * dir (the test fails with the script's stderr if it fails), then for -O0 and
 * -O3 compiles `tfx` (a path relative to the source dir) through the JIT with
 * `--weights OUTDIR/weights.safetensors` and compares with expected.bin:
 *  - prefill: the whole input in one call, every row;
 *  - if the case is causal: token by token through the KV cache (decode),
 *    then in two chunks (3 rows, then the rest), every row.
 * Passes when max |got - expected| <= tol * max(1, max |expected|) in every
 * mode; prints the measured error of each. Removes the temp dir (unless
 * TFX_TORCH_KEEP is set in the environment, then it prints where it is). */
void tfx_test_torch_case(const char *script, const char *tfx, double tol);
/* The same at the -O levels whose bits are set in levels (bit n: -On). */
void tfx_test_torch_case_levels(const char *script, const char *tfx, double tol, unsigned levels);

#endif
