/* tests/test_torch_attention_options.c — the attention options that
 * test_torch_attention's examples leave out, against PyTorch models written
 * from the math (tests/torch/<name>.py with attn_common.py), compiled through
 * the JIT at -O0 and -O3 by tests/support/torch_case.c: prefill, and for the
 * decoders token-by-token decode and chunked prefill through the KV cache.
 *  - alibi_pow2:         ALiBi with H = 8 (slopes 2^(-8h/H)), GQA 8/2, causal
 *  - alibi_bidir:        ALiBi with H = 16, MQA, mask = none (-m_h |i - j|)
 *  - longformer_dilated: Longformer with dilation 2 and 3 and `global = 2`,
 *                        bidirectional
 *  - sparse_causal:      Longformer (count and listed global tokens, dilated)
 *                        and BigBird (with and without global blocks) under a
 *                        causal mask
 *  - rope_op:            the standalone rope(x, ...) op: both pairings,
 *                        partial rotary dims, bases 50 … 1e6, after a linear
 *                        (fused at -O3, with a bias) and on a norm's output
 *  - mla_plain:          mla_attention with the query straight from wq, with
 *                        and without kv_norm, the low-rank query without
 *                        q_norm, half-split RoPE, a sliding window
 *  - cross_trows:        a causal decoder cross-attending a causal encoder's
 *                        output (a memory of T rows, mask = causal, cached),
 *                        with RoPE, and with ALiBi + sliding window
 *  - cross_trows_bidir:  cross-attention to a T-row memory with mask = none,
 *                        plain and with RoPE + sliding window (f32 input)
 *  - softcap:            Gemma 2's soft-capping of the attention scores
 *                        (attention and attend, dense and sliding) and of
 *                        the final logits, under the default schedules
 *                        (flash / block-sparse prefill), dense prefill with
 *                        split decode, and the tiny-head decode kernel */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference; the bound: 1e-4 relative to the
 * output scale. */
#define TOL 1e-4

static void test_alibi_pow2(void **state) {
  (void)state;
  tfx_test_torch_case("alibi_pow2", "tests/torch/alibi_pow2.tfx", TOL);
}

static void test_alibi_bidir(void **state) {
  (void)state;
  tfx_test_torch_case("alibi_bidir", "tests/torch/alibi_bidir.tfx", TOL);
}

static void test_longformer_dilated(void **state) {
  (void)state;
  tfx_test_torch_case("longformer_dilated", "tests/torch/longformer_dilated.tfx", TOL);
}

static void test_sparse_causal(void **state) {
  (void)state;
  tfx_test_torch_case("sparse_causal", "tests/torch/sparse_causal.tfx", TOL);
}

static void test_rope_op(void **state) {
  (void)state;
  tfx_test_torch_case("rope_op", "tests/torch/rope_op.tfx", TOL);
}

static void test_mla_plain(void **state) {
  (void)state;
  tfx_test_torch_case("mla_plain", "tests/torch/mla_plain.tfx", TOL);
}

static void test_cross_trows(void **state) {
  (void)state;
  tfx_test_torch_case("cross_trows", "tests/torch/cross_trows.tfx", TOL);
}

static void test_cross_trows_bidir(void **state) {
  (void)state;
  tfx_test_torch_case("cross_trows_bidir", "tests/torch/cross_trows_bidir.tfx", TOL);
}

static void test_softcap(void **state) {
  (void)state;
  tfx_test_torch_case("softcap", "tests/torch/softcap.tfx", TOL);
  tfx_test_torch_case("softcap", "tests/torch/softcap_split.tfx", TOL);
  tfx_test_torch_case("softcap", "tests/torch/softcap_tiny.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alibi_pow2),
      cmocka_unit_test(test_alibi_bidir),
      cmocka_unit_test(test_longformer_dilated),
      cmocka_unit_test(test_sparse_causal),
      cmocka_unit_test(test_rope_op),
      cmocka_unit_test(test_mla_plain),
      cmocka_unit_test(test_cross_trows),
      cmocka_unit_test(test_cross_trows_bidir),
      cmocka_unit_test(test_softcap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
