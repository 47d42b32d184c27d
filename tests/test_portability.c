/* tests/test_portability.c — portable models (docs/portability.md): the real
 * stories260K compiled for each x86-64 level (--mcpu x86-64, x86-64-v2, -v3,
 * -v4, and native) generates the same greedy ids as the host build and as
 * llama2.c (stories260K.greedy.ids); each descriptor records the CPU features
 * of its level (v2: SSE4.2 and no AVX, v3: AVX2/FMA and no AVX-512, v4:
 * AVX-512 F/BW/VL/DQ); with AVX-512 masked out of the detected CPU
 * (TFX_CPU_MASK=avx512f) the v4 model is refused with TFX_ERR_CPU naming
 * avx512f, in the API and by `tfxc run`, while the v3 model opens and runs;
 * masking avx2 refuses v3 and not v2; an unknown mask name is an error; and
 * the assembly of the x86-64 baseline holds no ymm or zmm register. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/testutil.h"
#include "tfx/cpu_features.h"
#include "tfx/tfx.h"

#define STEPS 64

static const char *const levels[] = {"native", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
enum { NATIVE, BASE, V2, V3, V4, N_LEVELS };

static char model_bin[4096], example_tfx[4096];
static char *dir;
static char so[N_LEVELS][4300];
static int32_t ref_ids[STEPS];

static int setup(void **state) {
  (void)state;
  char path[4096];
  tfx_test_model_path("stories260K.bin", model_bin, sizeof model_bin);
  snprintf(example_tfx, sizeof example_tfx, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  if (access(model_bin, R_OK) != 0) {
    fprintf(stderr, "test_portability: the real model is missing: %s (set TFX_MODELS_DIR)\n", model_bin);
    return -1;
  }
  if (tfx_test_read_ids(tfx_test_model_path("stories260K.greedy.ids", path, sizeof path), ref_ids, STEPS) != STEPS)
    return -1;
  dir = tfx_test_tmpdir();
  if (!dir) return -1;
  for (int l = 0; l < N_LEVELS; l++) {
    char mcpu[64];
    snprintf(so[l], sizeof so[l], "%s/%s.so", dir, levels[l]);
    snprintf(mcpu, sizeof mcpu, "--mcpu=%s", levels[l]);
    char *err = NULL;
    int rc =
        tfx_test_run((char *[]){TFXC_PATH, example_tfx, "--weights", model_bin, mcpu, "-o", so[l], NULL}, NULL, &err);
    if (rc != 0) {
      fprintf(stderr, "test_portability: compiling for %s failed (%d): %s\n", levels[l], rc, err ? err : "");
      free(err);
      return -1;
    }
    free(err);
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unsetenv("TFX_CPU_MASK");
  if (dir) tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

/* `tfxc run so` greedy ids (stdout), exit status in *rc. */
static char *run_ids(const char *path, int *rc, char **err) {
  char *out = NULL;
  *rc = tfx_test_run((char *[]){TFXC_PATH, "run", (char *)path, "-n", "64", "--temperature", "0", "--print-ids", NULL},
                     &out, err);
  return out;
}

static void test_same_ids_at_every_level(void **state) {
  (void)state;
  int rc;
  char *native = run_ids(so[NATIVE], &rc, NULL);
  assert_int_equal(rc, 0);
  /* the host build against llama2.c */
  const char *p = native;
  for (int i = 0; i < STEPS; i++) {
    char *end;
    long id = strtol(p, &end, 10);
    assert_true(end != p);
    if (id != ref_ids[i]) fail_msg("native id %d: %ld, llama2.c's is %d", i, id, ref_ids[i]);
    p = end;
  }
  for (int l = BASE; l < N_LEVELS; l++) {
    char *ids = run_ids(so[l], &rc, NULL);
    assert_int_equal(rc, 0);
    if (strcmp(ids, native) != 0) fail_msg("--mcpu=%s ids:\n%s\nnative:\n%s", levels[l], ids, native);
    free(ids);
  }
  free(native);
}

static uint64_t features_of(const char *path) {
  tfx_model *m = NULL;
  char err[512];
  int rc = tfx_model_open_ex(path, &m, err, sizeof err);
  if (rc != TFX_OK) fail_msg("%s: %s", path, err);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  assert_int_equal(d->cpu_arch, TFX_CPU_ARCH_X86_64);
  uint64_t f = d->cpu_features;
  tfx_model_close(m);
  return f;
}

static void test_recorded_features(void **state) {
  (void)state;
  uint64_t base = features_of(so[BASE]), v2 = features_of(so[V2]), v3 = features_of(so[V3]), v4 = features_of(so[V4]);
  assert_true(base == 0); /* SSE2 only: nothing beyond x86-64 itself */
  uint64_t want_v2 = TFX_CPU_SSE3 | TFX_CPU_SSSE3 | TFX_CPU_SSE4_1 | TFX_CPU_SSE4_2 | TFX_CPU_POPCNT;
  uint64_t want_v3 = want_v2 | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_FMA | TFX_CPU_F16C | TFX_CPU_BMI1 | TFX_CPU_BMI2 |
                     TFX_CPU_LZCNT | TFX_CPU_MOVBE;
  uint64_t want_v4 =
      want_v3 | TFX_CPU_AVX512F | TFX_CPU_AVX512BW | TFX_CPU_AVX512VL | TFX_CPU_AVX512DQ | TFX_CPU_AVX512CD;
  assert_true(v2 == want_v2);
  assert_true(v3 == want_v3);
  assert_true(v4 == want_v4);
  /* the host build records at least what it runs with; it opened above, so
   * the host has it all */
  uint64_t native = features_of(so[NATIVE]);
  assert_true((native & TFX_CPU_SSE4_2) != 0);
}

/* Opens path with TFX_CPU_MASK=mask; returns the status, detail in err. */
static int open_masked(const char *path, const char *mask, char *err, size_t len) {
  assert_int_equal(setenv("TFX_CPU_MASK", mask, 1), 0);
  tfx_model *m = NULL;
  int rc = tfx_model_open_ex(path, &m, err, len);
  if (rc == TFX_OK) {
    tfx_session *s = NULL;
    float logits[512];
    int32_t bos = 1;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    assert_int_equal(tfx_forward(s, &bos, 1, logits), TFX_OK);
    assert_int_equal(tfx_test_argmax(logits, tfx_model_descriptor(m)->output_width), ref_ids[0]);
    tfx_session_free(s);
    tfx_model_close(m);
  } else {
    assert_null(m);
  }
  unsetenv("TFX_CPU_MASK");
  return rc;
}

static void test_refusal(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(open_masked(so[V4], "avx512f", err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "needs CPU features this CPU does not have: avx512f, avx512bw, avx512vl"));
  assert_int_equal(open_masked(so[V3], "avx512f", err, sizeof err), TFX_OK);
  /* without avx2 (and so without AVX-512): v3 and v4 are refused, v2 opens */
  assert_int_equal(open_masked(so[V3], "avx2", err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, ": avx2"));
  assert_null(strstr(err, "fma"));
  assert_int_equal(open_masked(so[V4], "avx2", err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "avx512f"));
  assert_int_equal(open_masked(so[V2], "avx2,avx", err, sizeof err), TFX_OK);
  assert_int_equal(open_masked(so[BASE], "sse3,popcnt", err, sizeof err), TFX_OK);
  assert_int_equal(open_masked(so[V2], "sse4.2", err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "sse4.2"));
  /* an unknown name is an error, not a silently ignored mask */
  assert_int_equal(open_masked(so[V4], "avx512", err, sizeof err), TFX_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "TFX_CPU_MASK: unknown CPU feature 'avx512'"));
  assert_string_equal(tfx_error_message(TFX_ERR_CPU), "the model needs CPU features this CPU does not have");

  /* tfxc run: a clean error, no crash (SIGILL would be 132 in a shell) */
  assert_int_equal(setenv("TFX_CPU_MASK", "avx512f", 1), 0);
  int rc;
  char *errtext = NULL;
  char *out = run_ids(so[V4], &rc, &errtext);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(errtext, "error: "));
  assert_non_null(strstr(errtext, "avx512f"));
  free(out);
  free(errtext);
  errtext = NULL;
  out = run_ids(so[V3], &rc, &errtext);
  assert_int_equal(rc, 0);
  free(out);
  free(errtext);
  unsetenv("TFX_CPU_MASK");
}

static void test_baseline_asm(void **state) {
  (void)state;
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--mcpu=x86-64", "--emit=asm", NULL},
                        &out, &err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "xmm"));
  assert_null(strstr(out, "ymm"));
  assert_null(strstr(out, "zmm"));
  free(out);
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_ids_at_every_level),
      cmocka_unit_test(test_recorded_features),
      cmocka_unit_test(test_refusal),
      cmocka_unit_test(test_baseline_asm),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
