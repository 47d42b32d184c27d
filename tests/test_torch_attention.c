/* tests/test_torch_attention.c — the attention-family examples against
 * PyTorch models written from the math (tests/torch/<name>.py with
 * attn_common.py), compiled through the JIT at -O0 and -O3 by
 * tests/support/torch_case.c: prefill, and for the decoders token-by-token
 * decode and chunked prefill through the KV cache.
 *  - alibi:      examples/bloom/alibi.tfx (ALiBi, H = 6: the non-power-of-two slopes)
 *  - longformer: examples/longformer/longformer.tfx (window + global tokens, bidirectional)
 *  - bigbird:    examples/bigbird/bigbird.tfx (block window, global and seeded random blocks)
 *  - mla:        examples/deepseek/mla.tfx (DeepSeek-V2 MLA, low-rank q, latent KV cache)
 *  - encdec:     examples/encdec/encdec.tfx (encoder over a static source, cross-attention)
 *  - masks:      examples/sparse/masks.tfx (sliding, dilated, strided, fixed: one per
 *                layer, causal, with decode through the cache) and masks_bidir.tfx
 *                (the same, bidirectional) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference; the bound: 1e-4 relative to the
 * output scale. */
#define TOL 1e-4

static void test_alibi(void **state) {
  (void)state;
  tfx_test_torch_case("alibi", "examples/bloom/alibi.tfx", TOL);
}

static void test_longformer(void **state) {
  (void)state;
  tfx_test_torch_case("longformer", "examples/longformer/longformer.tfx", TOL);
}

static void test_bigbird(void **state) {
  (void)state;
  tfx_test_torch_case("bigbird", "examples/bigbird/bigbird.tfx", TOL);
}

static void test_mla(void **state) {
  (void)state;
  tfx_test_torch_case("mla", "examples/deepseek/mla.tfx", TOL);
}

static void test_encdec(void **state) {
  (void)state;
  tfx_test_torch_case("encdec", "examples/encdec/encdec.tfx", TOL);
}

static void test_masks_causal(void **state) {
  (void)state;
  tfx_test_torch_case("masks", "examples/sparse/masks.tfx", TOL);
}

static void test_masks_bidirectional(void **state) {
  (void)state;
  tfx_test_torch_case("masks_bidir", "examples/sparse/masks_bidir.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alibi),
      cmocka_unit_test(test_longformer),
      cmocka_unit_test(test_bigbird),
      cmocka_unit_test(test_mla),
      cmocka_unit_test(test_encdec),
      cmocka_unit_test(test_masks_causal),
      cmocka_unit_test(test_masks_bidirectional),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
