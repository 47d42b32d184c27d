/* tests/test_torch_ffn.c — the FFN, norm, position and mixture-of-experts
 * models against PyTorch models written from the math (the scripts of tests/torch/):
 * each script builds its model with random weights and writes the expected
 * outputs; tests/support/torch_case.c compiles the .tfx with those weights at
 * -O0 and -O3 and compares the prefill (and, for decoders, token-by-token
 * decode and chunked prefill through the KV cache).
 *  - examples: GPT-2 (learned positions, pre-norm LayerNorm, GELU tanh,
 *    biases, tied classifier), BERT (learned positions, post-norm,
 *    bidirectional, GELU erf), the original Transformer's decoder stack
 *    (sinusoidal positions, post-norm, ReLU), Mixtral (RMSNorm, RoPE, GQA,
 *    MoE top-2 of 8);
 *  - option families: every activation and gated FFN (GLU, ReGLU, GeGLU with
 *    both GELUs, SwiGLU, bilinear, with and without biases) with pre- and
 *    post-norm blocks; MoE with a capacity and shared experts; Switch-style
 *    top-1 with capacity; DeepSeekMoE-style fine-grained experts with the
 *    unnormalized softmax gate and shared experts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference; the bound: max abs error
 * <= 1e-4 relative to the output scale. */
#define TOL 1e-4

static void test_gpt2(void **state) {
  (void)state;
  tfx_test_torch_case("gpt2", "examples/gpt2/gpt2.tfx", TOL);
}

static void test_bert(void **state) {
  (void)state;
  tfx_test_torch_case("bert", "examples/bert/bert.tfx", TOL);
}

static void test_transformer_sinusoidal(void **state) {
  (void)state;
  tfx_test_torch_case("transformer", "examples/transformer/transformer.tfx", TOL);
}

static void test_mixtral(void **state) {
  (void)state;
  tfx_test_torch_case("mixtral", "examples/mixtral/mixtral.tfx", TOL);
}

static void test_activations_and_glus(void **state) {
  (void)state;
  tfx_test_torch_case("ffn_glu", "tests/torch/ffn_glu.tfx", TOL);
}

static void test_moe_capacity_shared(void **state) {
  (void)state;
  tfx_test_torch_case("moe_capacity", "tests/torch/moe_capacity.tfx", TOL);
}

static void test_moe_switch(void **state) {
  (void)state;
  tfx_test_torch_case("moe_switch", "tests/torch/moe_switch.tfx", TOL);
}

static void test_moe_deepseek(void **state) {
  (void)state;
  tfx_test_torch_case("moe_deepseek", "tests/torch/moe_deepseek.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gpt2),
      cmocka_unit_test(test_bert),
      cmocka_unit_test(test_transformer_sinusoidal),
      cmocka_unit_test(test_mixtral),
      cmocka_unit_test(test_activations_and_glus),
      cmocka_unit_test(test_moe_capacity_shared),
      cmocka_unit_test(test_moe_switch),
      cmocka_unit_test(test_moe_deepseek),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
