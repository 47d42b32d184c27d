/* tests/test_torch_retention.c — the architectures whose session state is
 * not a KV cache, against PyTorch models written from the papers' equations
 * (tests/torch/<name>.py), compiled through the JIT at -O0 and -O3 by
 * tests/support/torch_case.c: prefill, token-by-token decode through the
 * state, and a chunked prompt (3 rows, then the rest).
 *  - retnet: examples/retnet/retnet.tfx, RetNet (multi-scale retention with
 *            the paper's gammas, the Θ rotation, per-head group norm, the
 *            swish gate); 150 tokens, so the prefill runs tfxc's chunkwise
 *            form over three chunks, decode its recurrent form; the script
 *            checks that its parallel, recurrent and chunkwise forms agree
 *  - retnet_gamma: tests/torch/retnet_gamma.tfx, the same RetNet with the
 *            decays given in the program (`retention(..., gamma = g)`, a
 *            param per layer: 0.5 … 0.999)
 *  - infini: examples/infini/infini.tfx, Infini-attention (segments of 16,
 *            local causal attention + the compressive memory, the gate
 *            sigmoid(β)); 50 tokens, four segments
 *  - yoco:   examples/yoco/yoco.tfx, YOCO (a retention self-decoder, one
 *            global K and V read by every cross-decoder layer: the layers'
 *            attends share one KV cache); 70 tokens
 *  - linformer: examples/linformer/linformer.tfx, a Linformer encoder (keys
 *            and values projected along the sequence by E, F : [32, 128]);
 *            100 tokens, so the first 100 columns of E and F (prefill only:
 *            an encoder)
 * Not in the sanitizer build (named test_torch_*, as the other PyTorch
 * comparisons); test_retention runs the same kernels against the
 * interpreter there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/torch_case.h"

/* f32 kernels vs a float64 reference: 1e-4 relative to the output scale */
#define TOL 1e-4

static void test_retnet(void **state) {
  (void)state;
  tfx_test_torch_case("retnet", "examples/retnet/retnet.tfx", TOL);
}

/* retention(..., gamma = g): the decays per layer and head from the checkpoint */
static void test_retnet_gamma(void **state) {
  (void)state;
  tfx_test_torch_case("retnet_gamma", "tests/torch/retnet_gamma.tfx", TOL);
}

static void test_infini(void **state) {
  (void)state;
  tfx_test_torch_case("infini", "examples/infini/infini.tfx", TOL);
}

static void test_yoco(void **state) {
  (void)state;
  tfx_test_torch_case("yoco", "examples/yoco/yoco.tfx", TOL);
}

static void test_linformer(void **state) {
  (void)state;
  tfx_test_torch_case("linformer", "examples/linformer/linformer.tfx", TOL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retnet), cmocka_unit_test(test_retnet_gamma), cmocka_unit_test(test_infini),
      cmocka_unit_test(test_yoco),   cmocka_unit_test(test_linformer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
