/* tests/test_mcpu.c — code generation options: `tfxc --mcpu NAME`, the
 * documented spelling of the target CPU; the vector features follow the named
 * CPU, not the host (x86-64-v2: SSE only, x86-64-v3: AVX2 ymm, no zmm;
 * x86-64-v4: zmm), and an unknown name is a clear error; `schedule {
 * prefetch = N }` emits prefetches in the decode kernels (by default
 * only for int8 and 2-byte weights, none with `none`); `schedule { attention = dense }` replaces the tiled (flash)
 * prefill attention by the per-row kernel, with the same greedy tokens after a 40-token prompt. Also checks that 1 and
 * 2 threads give the same greedy tokens (the inline-or-fork grain decision must not change results). The greedy tokens
 * of both comparisons are also checked against the reference interpreter on the same weights, so a result wrong in both
 * configurations fails too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "support/testutil.h"

static char model[4096];

/* Checks the ids `tfxc run --temperature 0 --print-ids` printed for the
 * model at path (weights, prompt: as given to tfxc; up to `steps` ids)
 * against the reference interpreter on the -O0 graph of the same weights:
 * each id must be the interpreter's argmax after BOS, the prompt and the
 * ids before it (or within 1e-4 of its maximum: a near tie may round either
 * way), and a run stopping early must stop where BOS (id 1) is the argmax. */
static void check_ids_with_interpreter(const char *path, const char *weights, const char *prompt, const char *ids,
                                       int steps) {
  tfx_build_options bo = {.weights = weights, .opt_level = 0};
  tfx_build b;
  assert_int_equal(tfx_build_source(path, NULL, &bo, &b), 0);
  int64_t vocab = tfx_node_cols(&b.graph->nodes[b.graph->output]), max_seq = b.graph->max_seq;
  int32_t *tok = calloc((size_t)max_seq, sizeof *tok);
  float *logits = malloc((size_t)(max_seq * vocab) * sizeof *logits);
  assert_true(tok && logits);
  int n = 0;
  tok[n++] = 1; /* BOS */
  for (const char *p = prompt; p && *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) break;
    tok[n++] = (int32_t)v;
    p = end;
  }
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  assert_non_null(it);
  char err[512];
  int64_t rows = n, done = 0;
  const char *p = ids;
  for (;;) {
    if (tfx_interp_forward(it, tok + n - rows, rows, logits, err, sizeof err)) fail_msg("interpreter: %s", err);
    const float *last = logits + (rows - 1) * vocab;
    int best = tfx_test_argmax(last, (int)vocab);
    char *end;
    long id = strtol(p, &end, 10);
    if (end == p) { /* no more ids: the run generated all it was asked, or stopped at BOS */
      if (done < steps && n < max_seq) assert_int_equal(best, 1);
      break;
    }
    p = end;
    assert_true(id >= 0 && id < vocab && id != 1);
    if (id != best && last[id] < last[best] - 1e-4f)
      fail_msg("id %lld of %s: %ld, the interpreter's argmax is %d (%g vs %g)", (long long)done, path, id, best,
               (double)last[id], (double)last[best]);
    done++;
    if (done == steps || n == max_seq) break;
    tok[n++] = (int32_t)id;
    rows = 1;
  }
  assert_true(done > 0);
  tfx_interp_free(it);
  free(tok);
  free(logits);
  tfx_build_free(&b);
}

static char *asm_for(const char *flag, int *rc) {
  char *out = NULL, *err = NULL;
  *rc = tfx_test_run((char *[]){TFXC_PATH, model, "--weights", "random", (char *)flag, "--emit=asm", NULL}, &out, &err);
  free(err);
  return out;
}

static void test_mcpu_levels(void **state) {
  (void)state;
  int rc;
  char *v2 = asm_for("--mcpu=x86-64-v2", &rc);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(v2, "xmm"));
  assert_null(strstr(v2, "ymm"));
  assert_null(strstr(v2, "zmm"));
  free(v2);
  char *v3 = asm_for("--mcpu=x86-64-v3", &rc);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(v3, "ymm"));
  assert_null(strstr(v3, "zmm"));
  free(v3);
  char *v4 = asm_for("--mcpu=x86-64-v4", &rc);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(v4, "zmm"));
  free(v4);
}

static void test_mcpu_errors(void **state) {
  (void)state;
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, model, "--weights", "random", "--mcpu", "bogus", "--emit=asm", NULL},
                        &out, &err);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(err, "unknown CPU 'bogus'"));
  free(out);
  free(err);
  out = err = NULL;
  rc = tfx_test_run((char *[]){TFXC_PATH, model, "--mcpu", NULL}, &out, &err);
  assert_int_equal(rc, 2);
  assert_non_null(strstr(err, "--mcpu needs a value"));
  free(out);
  free(err);
}

static void test_threads_same_tokens(void **state) {
  (void)state;
  char *o1 = NULL, *o2 = NULL, *e = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, "run", model, "--weights", "random:7", "-n", "24", "--temperature", "0",
                                   "--threads", "1", "--print-ids", NULL},
                        &o1, &e);
  free(e);
  e = NULL;
  assert_int_equal(rc, 0);
  rc = tfx_test_run((char *[]){TFXC_PATH, "run", model, "--weights", "random:7", "-n", "24", "--temperature", "0",
                               "--threads", "2", "--print-ids", NULL},
                    &o2, &e);
  free(e);
  assert_int_equal(rc, 0);
  assert_true(strlen(o1) > 0);
  assert_string_equal(o1, o2);
  check_ids_with_interpreter(model, "random:7", NULL, o1, 24);
  free(o1);
  free(o2);
}

/* The assembly `tfxc --emit=asm -O2` gives for linear(x, w) of a [256,
 * 1024] weight with the schedule text appended, --quantize quantize and
 * --mcpu cpu (the model written as dir/lin<k>.tfx); fails the test if tfxc
 * does. The caller frees it. */
static char *linear_asm(const char *dir, int k, const char *schedule, const char *quantize, const char *cpu) {
  char path[4096];
  snprintf(path, sizeof path, "%s/lin%d.tfx", dir, k);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "model lin\nconst max_seq = 8\nparam w : f32[256, 1024]\n"
          "forward(x : f32[T, 1024]) -> f32[T, 256] { return linear(x, w) }\n%s",
          schedule);
  fclose(f);
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, path, "--weights", "random", "-O2", "--mcpu", (char *)cpu, "--quantize",
                                   (char *)quantize, "--emit=asm", NULL},
                        &out, &err);
  assert_int_equal(rc, 0);
  free(err);
  return out;
}

static void test_prefetch_schedule(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  /* f32 weights: none by default, with prefetch = N; q8_0 weights (the int8
   * decode kernel, AVX-512 VNNI; K = 1024: above tiny_rows' K <= 512, which
   * does not prefetch) and bf16 / f16 weights (the packed tile of one row):
   * by default (auto), none with `none`; on haswell (AVX2) the int8
   * row-major decode tiles of q8_0 and sparse24(q8_0) the same */
  static const struct {
    const char *schedule, *quantize, *cpu;
    int expect;
  } cases[] = {{"", "none", "sapphirerapids", 0},
               {"schedule { prefetch = 4096 }\n", "none", "sapphirerapids", 1},
               {"", "q8_0", "sapphirerapids", 1},
               {"schedule { prefetch = none }\n", "q8_0", "sapphirerapids", 0},
               {"", "bf16", "sapphirerapids", 1},
               {"", "f16", "sapphirerapids", 1},
               {"schedule { prefetch = none }\n", "bf16", "sapphirerapids", 0},
               {"", "q8_0", "haswell", 1},
               {"", "sparse24(q8_0)", "haswell", 1},
               {"schedule { prefetch = none }\n", "sparse24(q8_0)", "haswell", 0}};
  for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
    char *out = linear_asm(dir, k, cases[k].schedule, cases[k].quantize, cases[k].cpu);
    /* x86's prefetcht0 (locality 3) */
    if (cases[k].expect)
      assert_non_null(strstr(out, "prefetcht0"));
    else
      assert_null(strstr(out, "prefetch"));
    free(out);
  }
  tfx_test_rmdir(dir);
  free(dir);
}

/* With two weight streams (`schedule { streams = 2 }`), the int8 decode
 * kernel pairs rows j and j + 16 of each 32-row panel; a prefetch that
 * would land past its stream's 16 rows goes on to the same stream's rows of
 * the next panel: 16 rows further (q8_0, K = 1024: 16 x 1088 = 17408
 * bytes), and the distance under `prefetch = auto` is 3072 bytes (4096
 * with one stream, which has no such jump). */
static void test_prefetch_streams(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  for (int streams = 1; streams <= 2; streams++) {
    char *out = linear_asm(dir, streams, streams == 2 ? "schedule { streams = 2 }\n" : "schedule { streams = 1 }\n",
                           "q8_0", "sapphirerapids");
    if (streams == 2) { /* 3072 ahead, or 3072 + 17408 */
      assert_non_null(strstr(out, "prefetcht0\t3072("));
      assert_non_null(strstr(out, "prefetcht0\t20480("));
      assert_null(strstr(out, "prefetcht0\t4096("));
    } else {
      assert_non_null(strstr(out, "prefetcht0\t4096("));
      assert_null(strstr(out, "prefetcht0\t3072("));
      assert_null(strstr(out, "prefetcht0\t20480("));
    }
    free(out);
  }
  tfx_test_rmdir(dir);
  free(dir);
}

/* stories260k.tfx with its schedule's `attention = auto` set to `value`,
 * written to dir/name (path). */
static void with_attention(const char *dir, const char *name, const char *value, char *path, size_t len) {
  size_t size = 0;
  char *src = tfx_test_read_file(model, &size);
  assert_non_null(src);
  char *at = strstr(src, "attention = auto");
  assert_non_null(at);
  snprintf(path, len, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fwrite(src, 1, (size_t)(at - src), f);
  fprintf(f, "attention = %s", value);
  fputs(at + strlen("attention = auto"), f);
  fclose(f);
  free(src);
}

static void test_attention_schedule(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  static const char *prompt = "5 9 2 33 7 100 12 4 8 61 7 2 90 3 3 17 40 2 11 5 6 7 8 9 10 200 300 1 4 2 8 16 32 "
                              "64 128 256 3 5 7 9";
  char paths[2][4096];
  with_attention(dir, "flash.tfx", "flash", paths[0], sizeof paths[0]);
  with_attention(dir, "dense.tfx", "dense", paths[1], sizeof paths[1]);
  char *ids[2];
  for (int k = 0; k < 2; k++) {
    char *out = NULL, *err = NULL;
    int rc = tfx_test_run((char *[]){TFXC_PATH, paths[k], "--weights", "random:3", "--emit=asm", NULL}, &out, &err);
    assert_int_equal(rc, 0);
    if (k == 0)
      assert_non_null(strstr(out, "tfx_body_fwd_flash_attention"));
    else
      assert_null(strstr(out, "flash_attention"));
    /* decode: the tiny-head kernel (head_dim 8: the cost model's small-model rule) either way */
    assert_non_null(strstr(out, "tfx_body_dec_tinydecp"));
    free(out);
    free(err);
    out = err = NULL;
    rc = tfx_test_run((char *[]){TFXC_PATH, "run", paths[k], "--weights", "random:3", "-n", "24", "--temperature", "0",
                                 "--prompt-ids", (char *)prompt, "--print-ids", NULL},
                      &ids[k], &err);
    free(err);
    assert_int_equal(rc, 0);
  }
  assert_true(strlen(ids[0]) > 0);
  assert_string_equal(ids[0], ids[1]);
  check_ids_with_interpreter(paths[0], "random:3", prompt, ids[0], 24);
  free(ids[0]);
  free(ids[1]);
  tfx_test_rmdir(dir);
  free(dir);
}

int main(void) {
  snprintf(model, sizeof model, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mcpu_levels),         cmocka_unit_test(test_mcpu_errors),
      cmocka_unit_test(test_threads_same_tokens), cmocka_unit_test(test_prefetch_schedule),
      cmocka_unit_test(test_prefetch_streams),    cmocka_unit_test(test_attention_schedule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
