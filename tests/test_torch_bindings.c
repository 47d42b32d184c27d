/* tests/test_torch_bindings.c — binding checkpoints as they are saved
 * (issue #14) and the computed-weight linear bug, against PyTorch (the
 * scripts of tests/torch/, compared by tests/support/torch_case.c):
 *  - computed_weight: linears whose weight is computed from params at run
 *    time, at every -O level (the fusion passes must leave them plain);
 *  - gpt2_hf: examples/gpt2/gpt2.tfx binding a GPT-2 checkpoint as Hugging
 *    Face stores it (Conv1D [in, out] transposed, c_attn's q, k, v and bias
 *    sliced, mask buffers ignored by a `*` pattern), and the same .tfx still
 *    binding a file of its own names (tests/test_torch_ffn.c's gpt2);
 *  - gpt2_fused: the same checkpoint bound with c_attn whole (only
 *    transposed), q, k and v taken as column slices of its output, the heads
 *    attended in two groups and concatenated into c_proj
 *    (tests/torch/gpt2_fused.tfx: x[:, a:b] and concat of values), and
 *    gpt2_qkv with q, k, v slices only (fuse_qkv makes them views at -O3);
 *  - bloom_hf: examples/bloom/alibi.tfx binding BLOOM's query_key_value
 *    ([heads, 3, head_dim] rows, weight and bias) through .view(...)[:, k];
 *  - falcon_grouped: a GQA model binding Falcon's grouped query_key_value
 *    ([kv_heads, q_per_kv + 2, head_dim] rows), and falcon_bias the same
 *    layout for a weight and its bias;
 *  - mixtral_hf: examples/mixtral/mixtral.tfx binding one tensor per expert
 *    stacked into its [experts, ...] params. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference: max abs error <= 1e-4 relative to the
 * output scale */
#define TOL 1e-4
#define ALL_LEVELS 0xfu

static void test_computed_weight_every_level(void **state) {
  (void)state;
  tfx_test_torch_case_levels("computed_weight", "tests/torch/computed_weight.tfx", TOL, ALL_LEVELS);
}

static void test_gpt2_as_saved(void **state) {
  (void)state;
  tfx_test_torch_case("gpt2_hf", "examples/gpt2/gpt2.tfx", TOL);
}

static void test_gpt2_fused_qkv_sliced(void **state) {
  (void)state;
  tfx_test_torch_case("gpt2_hf", "tests/torch/gpt2_fused.tfx", TOL);
}

static void test_gpt2_qkv_slices(void **state) {
  (void)state;
  tfx_test_torch_case("gpt2_hf", "tests/torch/gpt2_qkv.tfx", TOL);
}

static void test_bloom_interleaved_qkv(void **state) {
  (void)state;
  tfx_test_torch_case("bloom_hf", "examples/bloom/alibi.tfx", TOL);
}

static void test_falcon_grouped_qkv(void **state) {
  (void)state;
  tfx_test_torch_case("falcon_grouped", "tests/torch/falcon_grouped.tfx", TOL);
}

static void test_falcon_grouped_bias(void **state) {
  (void)state;
  tfx_test_torch_case("falcon_bias", "tests/torch/falcon_bias.tfx", TOL);
}

static void test_mixtral_experts_stacked(void **state) {
  (void)state;
  tfx_test_torch_case("mixtral_hf", "examples/mixtral/mixtral.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_computed_weight_every_level), cmocka_unit_test(test_gpt2_as_saved),
      cmocka_unit_test(test_gpt2_fused_qkv_sliced),       cmocka_unit_test(test_gpt2_qkv_slices),
      cmocka_unit_test(test_bloom_interleaved_qkv),       cmocka_unit_test(test_falcon_grouped_qkv),
      cmocka_unit_test(test_falcon_grouped_bias),         cmocka_unit_test(test_mixtral_experts_stacked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
