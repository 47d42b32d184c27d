/* tests/test_portability.c — portable models (docs/portability.md): the real
 * stories260K compiled for each x86-64 level (--mcpu x86-64, x86-64-v2, -v3,
 * -v4, and native) generates the same greedy ids as the host build and as
 * llama2.c (stories260K.greedy.ids); each descriptor records the CPU features
 * of its level (v2: SSE4.2 and no AVX, v3: AVX2/FMA and no AVX-512, v4:
 * AVX-512 F/BW/VL/DQ); with AVX-512 masked out of the detected CPU
 * (TFX_CPU_MASK=avx512f) the v4 model is refused with TFX_ERR_CPU naming
 * avx512f, in the API and by `tfxc run`, while the v3 model opens and runs;
 * masking avx2 refuses v3 and not v2; an unknown mask name is an error; and
 * the assembly of the x86-64 baseline holds no ymm or zmm register. The
 * runtime's CPU detection is checked against the compiler's
 * (__builtin_cpu_supports): each model opens exactly when the host has
 * every feature it records, so on a host without AVX-512 the v4 model is
 * refused unmasked and the parts that need a level the host lacks are not
 * run (this Zen 4 machine runs them all). */
#include <dlfcn.h>
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
static uint64_t host; /* TFX_CPU_* of this CPU, as the compiler's runtime detects them */

/* The independent oracle of the runtime's cpuid/xgetbv detection. */
static uint64_t host_features(void) {
  uint64_t f = 0;
  __builtin_cpu_init();
#define HAS(name, bit)                                                                                                 \
  if (__builtin_cpu_supports(name)) f |= (bit)
  HAS("sse3", TFX_CPU_SSE3);
  HAS("ssse3", TFX_CPU_SSSE3);
  HAS("sse4.1", TFX_CPU_SSE4_1);
  HAS("sse4.2", TFX_CPU_SSE4_2);
  HAS("popcnt", TFX_CPU_POPCNT);
  HAS("avx", TFX_CPU_AVX);
  HAS("avx2", TFX_CPU_AVX2);
  HAS("fma", TFX_CPU_FMA);
  HAS("bmi", TFX_CPU_BMI1);
  HAS("bmi2", TFX_CPU_BMI2);
  HAS("avx512f", TFX_CPU_AVX512F);
  HAS("avx512bw", TFX_CPU_AVX512BW);
  HAS("avx512vl", TFX_CPU_AVX512VL);
  HAS("avx512dq", TFX_CPU_AVX512DQ);
  HAS("avx512cd", TFX_CPU_AVX512CD);
  HAS("avx512vnni", TFX_CPU_AVX512VNNI);
  HAS("avx512bf16", TFX_CPU_AVX512BF16);
  HAS("avx512vbmi", TFX_CPU_AVX512VBMI);
  HAS("avx512vbmi2", TFX_CPU_AVX512VBMI2);
  HAS("avx512bitalg", TFX_CPU_AVX512BITALG);
  HAS("avx512vpopcntdq", TFX_CPU_AVX512VPOPCNTDQ);
  HAS("avx512ifma", TFX_CPU_AVX512IFMA);
  HAS("gfni", TFX_CPU_GFNI);
#if defined(__clang__)
  /* not every clang names these: take the runtime's word for them */
  f |= TFX_CPU_F16C | TFX_CPU_LZCNT | TFX_CPU_MOVBE | TFX_CPU_AVX512FP16 | TFX_CPU_AVXVNNI;
#else
  HAS("f16c", TFX_CPU_F16C);
  HAS("lzcnt", TFX_CPU_LZCNT);
  HAS("movbe", TFX_CPU_MOVBE);
  HAS("avx512fp16", TFX_CPU_AVX512FP16);
  HAS("avxvnni", TFX_CPU_AVXVNNI);
#endif
#undef HAS
  return f;
}

/* Whether this CPU has every feature of `need`. */
static int host_has(uint64_t need) { return (need & ~host) == 0; }

static int setup(void **state) {
  (void)state;
  if (tfx_test_stories260k("test_portability", model_bin, sizeof model_bin, example_tfx, sizeof example_tfx, ref_ids,
                           STEPS))
    return -1;
  host = host_features();
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

/* The descriptor's cpu_arch and cpu_features, read with dlopen alone (no
 * CPU check). */
static uint64_t features_of(const char *path) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) fail_msg("dlopen %s: %s", path, dlerror());
  const tfx_model_desc *d = dlsym(h, TFX_DESC_SYMBOL);
  assert_non_null(d);
  assert_int_equal(d->abi_version, TFX_ABI_VERSION);
  assert_int_equal(d->cpu_arch, TFX_CPU_ARCH_X86_64);
  uint64_t f = d->cpu_features;
  dlclose(h);
  return f;
}

/* Opens path with TFX_CPU_MASK=mask (NULL: unset); returns the status,
 * detail in err. With check_argmax, a model that opens runs one token, whose
 * argmax must be llama2.c's. */
static int open_masked(const char *path, const char *mask, int check_argmax, char *err, size_t len) {
  if (mask)
    assert_int_equal(setenv("TFX_CPU_MASK", mask, 1), 0);
  else
    unsetenv("TFX_CPU_MASK");
  tfx_model *m = NULL;
  int rc = tfx_model_open_ex(path, &m, err, len);
  if (rc == TFX_OK && check_argmax) {
    tfx_session *s = NULL;
    float logits[512];
    int32_t bos = 1;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    assert_int_equal(tfx_forward(s, &bos, 1, logits), TFX_OK);
    assert_int_equal(tfx_test_argmax(logits, tfx_model_descriptor(m)->output_width), ref_ids[0]);
    tfx_session_free(s);
  }
  if (rc != TFX_OK) assert_null(m);
  tfx_model_close(m);
  unsetenv("TFX_CPU_MASK");
  return rc;
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
  int ran = 0;
  for (int l = BASE; l < N_LEVELS; l++) {
    if (!host_has(features_of(so[l]))) continue; /* test_open_by_host checks its refusal */
    char *ids = run_ids(so[l], &rc, NULL);
    assert_int_equal(rc, 0);
    if (strcmp(ids, native) != 0) fail_msg("--mcpu=%s ids:\n%s\nnative:\n%s", levels[l], ids, native);
    free(ids);
    ran++;
  }
  assert_true(ran >= 2); /* x86-64 and x86-64-v2 run on any CPU of the last 15 years */
  free(native);
}

static void test_recorded_features(void **state) {
  (void)state;
  uint64_t base = features_of(so[BASE]), v2 = features_of(so[V2]), v3 = features_of(so[V3]), v4 = features_of(so[V4]);
  assert_true(base == 0); /* SSE2 only: nothing beyond x86-64 itself */
  /* spelled out here, not TFX_CPU_LEVEL_*: the levels as x86-64 psABI defines them */
  uint64_t want_v2 = TFX_CPU_SSE3 | TFX_CPU_SSSE3 | TFX_CPU_SSE4_1 | TFX_CPU_SSE4_2 | TFX_CPU_POPCNT;
  uint64_t want_v3 = want_v2 | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_FMA | TFX_CPU_F16C | TFX_CPU_BMI1 | TFX_CPU_BMI2 |
                     TFX_CPU_LZCNT | TFX_CPU_MOVBE;
  uint64_t want_v4 =
      want_v3 | TFX_CPU_AVX512F | TFX_CPU_AVX512BW | TFX_CPU_AVX512VL | TFX_CPU_AVX512DQ | TFX_CPU_AVX512CD;
  assert_true(want_v2 == TFX_CPU_LEVEL_V2 && want_v3 == TFX_CPU_LEVEL_V3 && want_v4 == TFX_CPU_LEVEL_V4);
  assert_true(v2 == want_v2);
  assert_true(v3 == want_v3);
  assert_true(v4 == want_v4);
  /* the host build records what LLVM sees of the host, all of which the
   * host has (and at least SSE4.2 on any machine this runs on) */
  uint64_t native = features_of(so[NATIVE]);
  assert_true(host_has(native));
  assert_true((native & TFX_CPU_SSE4_2) != 0);
  /* a named cpu records its extensions beyond the levels: LLVM shifts bytes
   * with GFNI (the int8 and 4-bit kernels), which Skylake-X lacks */
  char icl[4400], err[512];
  snprintf(icl, sizeof icl, "%s/icl.so", dir);
  assert_int_equal(
      tfx_test_run((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--mcpu=icelake-server", "-o", icl, NULL},
                   NULL, NULL),
      0);
  uint64_t f = features_of(icl);
  assert_true((f & want_v4) == want_v4);
  assert_true((f & (TFX_CPU_GFNI | TFX_CPU_AVX512VBMI | TFX_CPU_AVX512VNNI)) ==
              (TFX_CPU_GFNI | TFX_CPU_AVX512VBMI | TFX_CPU_AVX512VNNI));
  assert_true((f & (TFX_CPU_AVX512BF16 | TFX_CPU_AVX512FP16 | TFX_CPU_AVXVNNI)) == 0);
  assert_int_equal(open_masked(icl, NULL, 0, err, sizeof err), host_has(f) ? TFX_OK : TFX_ERR_CPU);
  assert_int_equal(open_masked(icl, "gfni", 0, err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "gfni"));
  unlink(icl);
}

/* Unmasked, each model opens exactly when the host has what it records:
 * the runtime's detection agrees with the compiler's. */
static void test_open_by_host(void **state) {
  (void)state;
  char err[512];
  for (int l = 0; l < N_LEVELS; l++) {
    int want = host_has(features_of(so[l])) ? TFX_OK : TFX_ERR_CPU;
    int rc = open_masked(so[l], NULL, 1, err, sizeof err);
    if (rc != want) fail_msg("--mcpu=%s: open %d (%s), expected %d", levels[l], rc, err, want);
  }
}

static void test_refusal(void **state) {
  (void)state;
  char err[512];
  if (host_has(features_of(so[V4]))) { /* the masked CPU is this one without AVX-512 */
    assert_int_equal(open_masked(so[V4], "avx512f", 1, err, sizeof err), TFX_ERR_CPU);
    assert_non_null(strstr(err, "needs CPU features this CPU does not have: avx512f, avx512bw, avx512vl"));
  }
  if (host_has(features_of(so[V3]))) {
    assert_int_equal(open_masked(so[V3], "avx512f", 1, err, sizeof err), TFX_OK);
    /* without avx2 (and so without AVX-512): v3 and v4 are refused, v2 opens */
    assert_int_equal(open_masked(so[V3], "avx2", 1, err, sizeof err), TFX_ERR_CPU);
    assert_non_null(strstr(err, ": avx2"));
    assert_null(strstr(err, "fma"));
  }
  assert_int_equal(open_masked(so[V4], "avx2", 1, err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "avx512f"));
  assert_int_equal(open_masked(so[V2], "avx2,avx", 1, err, sizeof err), TFX_OK);
  assert_int_equal(open_masked(so[BASE], "sse3,popcnt", 1, err, sizeof err), TFX_OK);
  assert_int_equal(open_masked(so[V2], "sse4.2", 1, err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "sse4.2"));
  /* an unknown name is an error, not a silently ignored mask */
  assert_int_equal(open_masked(so[V2], "avx512", 1, err, sizeof err), TFX_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "TFX_CPU_MASK: unknown CPU feature 'avx512'"));
  assert_string_equal(tfx_error_message(TFX_ERR_CPU), "the model needs CPU features this CPU does not have");

  /* tfxc run: a clean error, no crash (SIGILL would be 132 in a shell) */
  assert_int_equal(setenv("TFX_CPU_MASK", "avx512f", 1), 0);
  int rc;
  char *errtext = NULL;
  char *out = run_ids(so[V4], &rc, &errtext);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(errtext, "tfxc: error: "));
  assert_non_null(strstr(errtext, "avx512f"));
  free(out);
  free(errtext);
  errtext = NULL;
  if (host_has(features_of(so[V3]))) {
    out = run_ids(so[V3], &rc, &errtext);
    assert_int_equal(rc, 0);
    free(out);
  }
  free(errtext);
  unsetenv("TFX_CPU_MASK");
}

/* --mcpu=x86-64-v3,x86-64-v4: one file, two code variants; the open picks
 * v4 on an AVX-512 CPU, v3 with AVX-512 masked (the same ids), and refuses
 * the model with avx2 masked, naming what the v3 variant lacks. */
static void test_variants(void **state) {
  (void)state;
  char var[4400], err[512];
  snprintf(var, sizeof var, "%s/var.so", dir);
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, example_tfx, "--weights", model_bin, "--mcpu=x86-64-v3,x86-64-v4",
                                           "-o", var, NULL},
                                NULL, NULL),
                   0);
  /* the first variant is the descriptor dlsym finds; the second follows */
  void *h = dlopen(var, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(h);
  const tfx_model_desc *d = dlsym(h, TFX_DESC_SYMBOL);
  assert_non_null(d);
  assert_true(d->cpu_features == TFX_CPU_LEVEL_V3);
  assert_non_null(d->variant_next);
  assert_true(d->variant_next->cpu_features == TFX_CPU_LEVEL_V4);
  assert_null(d->variant_next->variant_next);
  assert_true(d->variant_next->weights == d->weights);
  dlclose(h);
  const char *masks[] = {NULL, "avx512f"};
  for (int i = 0; i < 2; i++) {
    if (masks[i])
      assert_int_equal(setenv("TFX_CPU_MASK", masks[i], 1), 0);
    else
      unsetenv("TFX_CPU_MASK");
    tfx_model *m = NULL;
    int rc = tfx_model_open_ex(var, &m, err, sizeof err);
    uint64_t want = masks[i] || !host_has(TFX_CPU_LEVEL_V4) ? TFX_CPU_LEVEL_V3 : TFX_CPU_LEVEL_V4;
    if (!host_has(TFX_CPU_LEVEL_V3)) {
      assert_int_equal(rc, TFX_ERR_CPU);
      continue;
    }
    assert_int_equal(rc, TFX_OK);
    assert_true(tfx_model_descriptor(m)->cpu_features == want);
    tfx_model_close(m);
    int run_rc;
    char *ids = run_ids(var, &run_rc, NULL), *alone = run_ids(so[want == TFX_CPU_LEVEL_V4 ? V4 : V3], &run_rc, NULL);
    assert_int_equal(run_rc, 0);
    assert_string_equal(ids, alone);
    free(ids);
    free(alone);
  }
  assert_int_equal(open_masked(var, "avx2", 0, err, sizeof err), TFX_ERR_CPU);
  assert_non_null(strstr(err, "does not have: avx2 ("));
  assert_non_null(strstr(err, "--mcpu=x86-64-v2)"));
  /* the checksums cover both variants */
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "verify", var, NULL}, NULL, NULL), 0);
  unsetenv("TFX_CPU_MASK");
  /* several CPUs make files only; an empty name is an error */
  char *out = NULL, *e = NULL;
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--mcpu=x86-64-v3,x86-64-v4",
                                           "--emit=asm", NULL},
                                &out, &e),
                   1);
  assert_non_null(strstr(e, "names several CPUs, which make code variants of a model: only for -o and -c"));
  free(out);
  free(e);
  out = e = NULL;
  assert_int_equal(
      tfx_test_run((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--mcpu=x86-64-v3,", "-o", var, NULL},
                   &out, &e),
      1);
  assert_non_null(strstr(e, "has an empty CPU name"));
  free(out);
  free(e);
  unlink(var);
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
      cmocka_unit_test(test_open_by_host),
      cmocka_unit_test(test_refusal),
      cmocka_unit_test(test_variants),
      cmocka_unit_test(test_baseline_asm),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
