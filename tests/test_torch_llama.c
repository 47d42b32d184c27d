/* tests/test_torch_llama.c — the tiny LLaMA examples against PyTorch models
 * written from the math (tests/torch/llama.py, llama_neox.py): prefill,
 * token-by-token decode and chunked prefill at -O0 and -O3. Both RoPE
 * pairings: interleaved (tiny.tfx) and half-split with partial rotary dims
 * (tiny_neox.tfx); weights saved as F16/BF16 (llama_halfprec.py); Hugging
 * Face tensor names bound through a rename table (tiny_hf.tfx). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference: logits are O(1..10); observed error is
 * ~1e-6 relative; the bound is 1e-4 relative to the output scale. */
#define TOL 1e-4

static void test_llama_interleaved_rope(void **state) {
  (void)state;
  tfx_test_torch_case("llama", "examples/llama/tiny.tfx", TOL);
}

static void test_llama_half_partial_rope(void **state) {
  (void)state;
  tfx_test_torch_case("llama_neox", "examples/llama/tiny_neox.tfx", TOL);
}

/* F16 and BF16 weights written by tests/torch/common.py, converted at compile time */
static void test_llama_half_precision_weights(void **state) {
  (void)state;
  tfx_test_torch_case("llama_halfprec", "examples/llama/tiny.tfx", TOL);
}

/* Hugging Face tensor names bound through the weights statement's rename table */
static void test_llama_hf_names(void **state) {
  (void)state;
  tfx_test_torch_case("llama_hf", "examples/llama/tiny_hf.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama_interleaved_rope),
      cmocka_unit_test(test_llama_half_partial_rope),
      cmocka_unit_test(test_llama_half_precision_weights),
      cmocka_unit_test(test_llama_hf_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
