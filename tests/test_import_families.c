/* tests/test_import_families.c — `tfxc import` against Hugging Face
 * `transformers` (4.44.2, eager attention, f32): for each family,
 * tests/hf/families.py makes a tiny random model with every parameter
 * randomized (norm gains and biases included) and saves it with
 * save_pretrained (llama in shards: model.safetensors.index.json);
 * `tfxc import DIR -o DIR/model.tfx` writes its .tfx, which
 * is JIT-compiled at -O0 and -O3 and compared with transformers' output of
 * the same tokens: prefill (every row), token-by-token decode and two chunks
 * (decoders), within 1e-4 relative to the output's scale; the encoders
 * (BERT, RoBERTa, XLM-R) with their token type ids and an attention mask with
 * dropped keys (tfx_forward_inputs, the inputs the import writes). The oracle's
 * python is TFX_HF_PYTHON (scripts/hfenv.sh); without it the test fails. */
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

static const char *const families[] = {"llama",  "mistral",    "qwen2", "qwen3",    "mixtral",    "gemma", "gemma2",
                                       "olmo2",  "phi3",       "phi",   "phi_qkln", "gpt2",       "bloom", "gpt_neox",
                                       "falcon", "falcon_new", "bert",  "roberta",  "xlm_roberta"};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

static char *workdir;

static int setup(void **state) {
  (void)state;
  workdir = tfx_test_hf_families(TFX_HF_PYTHON, "families.py", families, N_FAMILIES);
  return workdir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_hf_families_free(workdir, families, N_FAMILIES);
  return 0;
}

static double max_abs(const float *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
  return m;
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
  char *argv[] = {TFXC_PATH, "import", dir, "-o", tfx, "--max-seq", "32", NULL};
  int rc = tfx_test_run(argv, &out, &err);
  if (rc) fail_msg("%s: tfxc import failed (%d):\n%s", fam, rc, err);
  free(out);
  free(err);

  size_t n_in = 0, n_exp = 0;
  snprintf(path, sizeof path, "%s/input.bin", dir);
  int32_t *ids = (int32_t *)tfx_test_read_file(path, &n_in);
  snprintf(path, sizeof path, "%s/expected.bin", dir);
  float *want = (float *)tfx_test_read_file(path, &n_exp);
  snprintf(path, sizeof path, "%s/types.bin", dir); /* the encoders' extra inputs, when written */
  int32_t *types = (int32_t *)tfx_test_read_file(path, NULL);
  snprintf(path, sizeof path, "%s/mask.bin", dir);
  int32_t *mask = (int32_t *)tfx_test_read_file(path, NULL);
  tfx_input in[3] = {{"tokens", ids, 0}, {"types", types, 0}, {"mask", mask, 0}};
  int n_inputs = 1;
  if (types) in[n_inputs++] = (tfx_input){"types", types, 0};
  if (mask) in[n_inputs++] = (tfx_input){"mask", mask, 0};
  snprintf(path, sizeof path, "%s/meta.json", dir);
  char *meta = tfx_test_read_file(path, NULL);
  assert_non_null(ids);
  assert_non_null(want);
  assert_non_null(meta);
  int T = (int)(n_in / sizeof(int32_t));
  int causal = strstr(meta, "\"causal\": true") != NULL;
  size_t total = n_exp / sizeof(float);
  int width = (int)(total / (size_t)T);
  double scale = max_abs(want, total);
  scale = scale > 1 ? scale : 1;

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
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    float *got = calloc(total, sizeof *got);
    char what[64];
    struct tfx_model_info info = {.struct_size = sizeof info};
    assert_int_equal(tfx_model_info(m, &info), TFX_OK);
    assert_int_equal(info.n_inputs, n_inputs);
    if (n_inputs > 1)
      assert_int_equal(tfx_forward_inputs(s, in, n_inputs, T, got, 0), TFX_OK);
    else
      assert_int_equal(tfx_forward_ex(s, ids, T, got, 0), TFX_OK);
    snprintf(what, sizeof what, "%s -O%d prefill", fam, opt);
    compare(what, got, want, total, scale);
    if (causal) {
      tfx_session_reset(s);
      for (int t = 0; t < T; t++) assert_int_equal(tfx_forward_ex(s, ids + t, 1, got + (size_t)t * width, 0), TFX_OK);
      snprintf(what, sizeof what, "%s -O%d decode", fam, opt);
      compare(what, got, want, total, scale);
      tfx_session_reset(s);
      assert_int_equal(tfx_forward_ex(s, ids, 5, got, 0), TFX_OK);
      assert_int_equal(tfx_forward_ex(s, ids + 5, T - 5, got + (size_t)5 * width, 0), TFX_OK);
      snprintf(what, sizeof what, "%s -O%d chunks", fam, opt);
      compare(what, got, want, total, scale);
    }
    free(got);
    tfx_session_free(s);
    tfx_model_close(m);
  }
  free(ids);
  free(types);
  free(mask);
  free(want);
  free(meta);
}

#define FAMILY_TEST(name)                                                                                              \
  static void test_##name(void **state) {                                                                              \
    (void)state;                                                                                                       \
    check_family(#name);                                                                                               \
  }
FAMILY_TEST(llama)
FAMILY_TEST(mistral)
FAMILY_TEST(qwen2)
FAMILY_TEST(mixtral)
FAMILY_TEST(phi3)
FAMILY_TEST(phi)
FAMILY_TEST(gpt2)
FAMILY_TEST(bloom)
FAMILY_TEST(gpt_neox)
FAMILY_TEST(falcon)
FAMILY_TEST(falcon_new)
FAMILY_TEST(bert)
FAMILY_TEST(qwen3)
FAMILY_TEST(gemma)
FAMILY_TEST(gemma2)
FAMILY_TEST(olmo2)
FAMILY_TEST(roberta)
FAMILY_TEST(xlm_roberta)
FAMILY_TEST(phi_qkln)

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama),   cmocka_unit_test(test_mistral),     cmocka_unit_test(test_qwen2),
      cmocka_unit_test(test_mixtral), cmocka_unit_test(test_phi3),        cmocka_unit_test(test_phi),
      cmocka_unit_test(test_gpt2),    cmocka_unit_test(test_bloom),       cmocka_unit_test(test_gpt_neox),
      cmocka_unit_test(test_falcon),  cmocka_unit_test(test_falcon_new),  cmocka_unit_test(test_bert),
      cmocka_unit_test(test_qwen3),   cmocka_unit_test(test_gemma),       cmocka_unit_test(test_olmo2),
      cmocka_unit_test(test_roberta), cmocka_unit_test(test_xlm_roberta), cmocka_unit_test(test_phi_qkln),
      cmocka_unit_test(test_gemma2),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
