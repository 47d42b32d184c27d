/* tests/test_import_encdec.c — `tfxc import` of encoder-decoders (T5 v1.0
 * and v1.1, BART) against Hugging Face `transformers` (4.44.2, eager
 * attention, f32): tests/hf/encdec.py makes a tiny random
 * T5ForConditionalGeneration / BartForConditionalGeneration with every
 * parameter randomized (norm gains, biases, BART's final_logits_bias) and
 * saves it with save_pretrained; `tfxc import DIR -o DIR/model.tfx
 * --max-seq 16` writes its .tfx, whose source input `src : i32[max_src]`
 * (max_src 16) takes the oracle's 7 source ids per call; JIT-compiled at
 * -O0 and -O3 and compared with model(input_ids=src,
 * decoder_input_ids=tgt).logits: prefill (every row), token-by-token decode
 * (the source again with every call) and two chunks, within 1e-4 relative
 * to the logits' scale. The oracle's python is TFX_HF_PYTHON
 * (scripts/hfenv.sh); without it the test fails. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../include/tfx/jit.h"
#include "../include/tfx/tfx.h"
#include "support/testutil.h"

#define TOL 1e-4

static const char *const families[] = {"t5", "t5_v11", "bart"};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

static char *workdir;

static int setup(void **state) {
  (void)state;
  workdir = tfx_test_hf_families(TFX_HF_PYTHON, "encdec.py", families, N_FAMILIES);
  return workdir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_hf_families_free(workdir, families, N_FAMILIES);
  return 0;
}

static void compare(const char *what, const float *got, const float *want, size_t n, double scale) {
  double d = tfx_test_max_abs_diff(got, want, n);
  print_message("  %-28s max |diff| %.3g (scale %.3g)\n", what, d, scale);
  if (!(d <= TOL * scale)) fail_msg("%s: max |diff| %g > %g", what, d, TOL * scale);
}

static void check_family(const char *fam) {
  char dir[1024], tfx[1100], path[1100];
  snprintf(dir, sizeof dir, "%s/%s", workdir, fam);
  snprintf(tfx, sizeof tfx, "%s/model.tfx", dir);
  char *out = NULL, *err = NULL;
  char *argv[] = {TFXC_PATH, "import", dir, "-o", tfx, "--max-seq", "16", NULL};
  int rc = tfx_test_run(argv, &out, &err);
  if (rc) fail_msg("%s: tfxc import failed (%d):\n%s", fam, rc, err);
  free(out);
  free(err);

  size_t n_in = 0, n_src = 0, n_exp = 0;
  snprintf(path, sizeof path, "%s/input.bin", dir);
  int32_t *ids = (int32_t *)tfx_test_read_file(path, &n_in);
  snprintf(path, sizeof path, "%s/src.bin", dir);
  int32_t *src = (int32_t *)tfx_test_read_file(path, &n_src);
  snprintf(path, sizeof path, "%s/expected.bin", dir);
  float *want = (float *)tfx_test_read_file(path, &n_exp);
  assert_non_null(ids);
  assert_non_null(src);
  assert_non_null(want);
  int T = (int)(n_in / sizeof(int32_t)), S = (int)(n_src / sizeof(int32_t));
  size_t total = n_exp / sizeof(float);
  int width = (int)(total / (size_t)T);
  double scale = 1;
  for (size_t i = 0; i < total; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;

  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_compile_options co;
    tfx_compile_options_init(&co);
    co.opt_level = opt;
    tfx_model *m = NULL;
    rc = tfx_jit_compile_file(tfx, &co, &m);
    if (rc != TFX_OK) {
      char *text = tfx_test_read_file(tfx, NULL);
      fail_msg("%s: -O%d: the imported .tfx does not compile (%d):\n%s", fam, opt, rc, text ? text : "");
    }
    assert_int_equal(tfx_model_descriptor(m)->output_width, width);
    tfx_input_info ii;
    assert_int_equal(tfx_model_input(m, 1, &ii), TFX_OK);
    assert_string_equal(ii.name, "src");
    assert_int_equal(ii.rows, 16);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    float *got = calloc(total, sizeof *got);
    char what[64];
    tfx_input all[2] = {{"tokens", ids, 0}, {"src", src, S}};
    assert_int_equal(tfx_forward_inputs(s, all, 2, T, got, 0), TFX_OK);
    snprintf(what, sizeof what, "%s -O%d prefill", fam, opt);
    compare(what, got, want, total, scale);
    tfx_session_reset(s);
    for (int t = 0; t < T; t++) {
      tfx_input one[2] = {{"tokens", ids + t, 0}, {"src", src, S}};
      assert_int_equal(tfx_forward_inputs(s, one, 2, 1, got + (size_t)t * width, 0), TFX_OK);
    }
    snprintf(what, sizeof what, "%s -O%d decode", fam, opt);
    compare(what, got, want, total, scale);
    tfx_session_reset(s);
    tfx_input c2[2] = {{"tokens", ids + 4, 0}, {"src", src, S}};
    assert_int_equal(tfx_forward_inputs(s, all, 2, 4, got, 0), TFX_OK);
    assert_int_equal(tfx_forward_inputs(s, c2, 2, T - 4, got + (size_t)4 * width, 0), TFX_OK);
    snprintf(what, sizeof what, "%s -O%d chunks", fam, opt);
    compare(what, got, want, total, scale);
    free(got);
    tfx_session_free(s);
    tfx_model_close(m);
  }
  free(ids);
  free(src);
  free(want);
}

#define FAMILY_TEST(name)                                                                                              \
  static void test_##name(void **state) {                                                                              \
    (void)state;                                                                                                       \
    check_family(#name);                                                                                               \
  }
FAMILY_TEST(t5)
FAMILY_TEST(t5_v11)
FAMILY_TEST(bart)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_t5),
      cmocka_unit_test(test_t5_v11),
      cmocka_unit_test(test_bart),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
