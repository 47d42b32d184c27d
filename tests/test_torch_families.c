/* tests/test_torch_families.c — model families that need the language's
 * attention options and tensor expressions (issue #14), against PyTorch
 * models written from the math (tests/torch/<name>.py), compiled through the
 * JIT at -O0 and -O3 by tests/support/torch_case.c: prefill, and for the
 * decoders token-by-token decode and chunked prefill through the KV cache.
 *  - gemma:   examples/gemma/gemma.tfx: the embedding scaled by sqrt(dim),
 *             (1 + w) RMSNorm gains folded at compile time, GeGLU, MQA with
 *             half RoPE, scale = 1 / sqrt(query_pre_attn_scalar), tied
 *             classifier
 *  - qk_norm: per-head q/k RMSNorm (Qwen3) and whole-width q/k norm (OLMo 2)
 *             before RoPE, q/k LayerNorm with biases (Phi's qk_layernorm),
 *             scale = none and a scale expression, learned positions with
 *             an offset (RoBERTa/BART), `w * c + b`, `-x`, `x / c` and a
 *             [1, N] row broadcast
 *  - t5:      examples/t5/t5.tfx: T5's bucketed relative position bias
 *             (bidirectional encoder, causal decoder), no score scaling */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference; the bound: 1e-4 relative to the
 * output scale. */
#define TOL 1e-4

static void test_gemma(void **state) {
  (void)state;
  tfx_test_torch_case("gemma", "examples/gemma/gemma.tfx", TOL);
}

static void test_qk_norm(void **state) {
  (void)state;
  tfx_test_torch_case("qk_norm", "tests/torch/qk_norm.tfx", TOL);
}

static void test_t5(void **state) {
  (void)state;
  tfx_test_torch_case("t5", "examples/t5/t5.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemma),
      cmocka_unit_test(test_qk_norm),
      cmocka_unit_test(test_t5),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
