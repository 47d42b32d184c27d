/* tests/test_encdec.c — a source input of its own rows (issue #14): an
 * encoder-decoder whose source sentence is a forward input `src : i32[N]`
 * given per call with 1..N rows (tfx_input.rows), padded to N by the caller
 * (the runtime, the interpreter) and hidden from attention past the call's
 * rows by the graph's row mask.
 *
 * The oracle: the same program compiled with N = S (no padding at all), run
 * by the reference interpreter; against it, the padded program's
 * interpreter and its JIT code at -O0 and -O3 for prefill (every row),
 * token-by-token decode (the source again with every call, the encoder
 * recomputed), chunked calls and the last row, for two source lengths; a
 * padded source with its own key mask (`key_mask = src_mask`); the
 * descriptor's input table, the header, and every error (frontend with
 * locations, runtime); a static session (tfx_session_create_static, the
 * padded sources in its arena) running the source-cache sequence, in
 * process and in a program linked with the minimal runtime
 * (libtfxrt_min.a, libc and libm) from the -c object and its header. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../include/tfx/tfx.h"
#include "support/frontend_capture.h"
#include "support/testutil.h"

#ifdef TFX_SANITIZE_FLAGS
#define SANITIZE_ARG TFX_SANITIZE_FLAGS,
#else
#define SANITIZE_ARG
#endif

#define TOL 1e-4
enum { V = 24, T = 7, NMAX = 9 };

/* A T5-style encoder-decoder (relative bias, no scaling, RMSNorm, ReLU FFN,
 * cross-attention); %d: the source's rows; %s: the source mask's input and
 * key_mask arguments (or ""). */
static const char fmt[] =
    "model ed\n"
    "const dim = 16, heads = 2, ff = 32, vocab = 24, max_seq = 16, nsrc = %d\n"
    "weights \"random:7\"\n"
    "param shared : f32[vocab, dim]\n"
    "param erel : f32[8, heads]\n"
    "param drel : f32[8, heads]\n"
    "param eq : f32[dim, dim]\n"
    "param ek : f32[dim, dim]\n"
    "param ev : f32[dim, dim]\n"
    "param eo : f32[dim, dim]\n"
    "param en : f32[dim]\n"
    "param wi : f32[ff, dim]\n"
    "param wo : f32[dim, ff]\n"
    "param sq : f32[dim, dim]\n"
    "param sk : f32[dim, dim]\n"
    "param sv : f32[dim, dim]\n"
    "param so : f32[dim, dim]\n"
    "param cq : f32[dim, dim]\n"
    "param ck : f32[dim, dim]\n"
    "param cv : f32[dim, dim]\n"
    "param co : f32[dim, dim]\n"
    "param dn : f32[dim]\n"
    "forward(tokens : i32[T], src : i32[nsrc]%s) -> f32[T, vocab] {\n"
    "  e = embedding(shared, src)\n"
    "  e = e + attention(rmsnorm(e, en), eq, ek, ev, eo, heads = heads, mask = none, scale = none%s,\n"
    "                    position = t5(erel, buckets = 8, max_distance = 12, bidirectional = true))\n"
    "  e = rmsnorm(e + linear(relu(linear(rmsnorm(e, en), wi)), wo), en)\n"
    "  x = embedding(shared, tokens)\n"
    "  x = x + attention(rmsnorm(x, dn), sq, sk, sv, so, heads = heads, mask = causal, scale = none,\n"
    "                    position = t5(drel, buckets = 8, max_distance = 12, bidirectional = false))\n"
    "  x = x + attention(rmsnorm(x, dn), cq, ck, cv, co, heads = heads, memory = e, mask = none%s)\n"
    "  return linear(rmsnorm(x, dn), shared)\n"
    "}\n";

static void build(int nsrc, int with_mask, int opt, tfx_build *b) {
  char src[4096];
  const char *km = with_mask ? ", key_mask = src_mask" : "";
  snprintf(src, sizeof src, fmt, nsrc, with_mask ? ", src_mask : i32[nsrc]" : "", km, km);
  tfx_build_options o = {.opt_level = opt};
  memset(b, 0, sizeof *b);
  if (tfx_build_source("ed.tfx", src, &o, b)) fail_msg("ed.tfx (nsrc %d) does not build at -O%d", nsrc, opt);
}

static void compare(const char *what, const float *got, const float *want, size_t n) {
  double scale = 1;
  for (size_t i = 0; i < n; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
  double d = tfx_test_max_abs_diff(got, want, n);
  print_message("  %-36s max |diff| %.3g (scale %.3g)\n", what, d, scale);
  if (!(d <= TOL * scale)) fail_msg("%s: max |diff| %g > %g", what, d, TOL * scale);
}

/* The oracle: the program with nsrc = S, interpreted (no padding, no row mask). */
static void oracle(const int32_t *ids, const int32_t *src, const int32_t *smask, int S, float *out) {
  tfx_build b;
  char err[512];
  build(S, smask != NULL, 0, &b);
  assert_int_equal(b.graph->rows_mask, smask ? 3 : 2);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  const void *in[3] = {ids, src, smask};
  if (tfx_interp_forward_inputs(it, in, smask ? 3 : 2, T, out, err, sizeof err)) fail_msg("oracle: %s", err);
  tfx_interp_free(it);
  tfx_build_free(&b);
}

static void run_case(int with_mask) {
  int32_t ids[T], src[NMAX], smask[NMAX];
  for (int t = 0; t < T; t++) ids[t] = (t * 5 + 2) % V;
  for (int j = 0; j < NMAX; j++) src[j] = (j * 7 + 1) % V, smask[j] = j != 2; /* a padding token in the middle */
  static const int lens[2] = {5, NMAX};
  float ref[2][T * V], got[T * V];
  char err[512], what[80];
  for (int c = 0; c < 2; c++) oracle(ids, src, with_mask ? smask : NULL, lens[c], ref[c]);
  /* the source's length shows in every row: the padding must be hidden */
  assert_true(tfx_test_max_abs_diff(ref[0], ref[1], T * V) > 1e-2);
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    build(NMAX, with_mask, opt, &b);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    for (int c = 0; c < 2; c++) {
      const void *in[3] = {ids, src, smask};
      int64_t rows[3] = {0, lens[c], lens[c]};
      if (tfx_interp_forward_rows(it, in, rows, with_mask ? 3 : 2, T, got, err, sizeof err)) fail_msg("%s", err);
      tfx_interp_reset(it);
      snprintf(what, sizeof what, "%sinterp -O%d S=%d", with_mask ? "mask " : "", opt, lens[c]);
      compare(what, got, ref[c], T * V);
    }
    tfx_interp_free(it);
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    int ni = with_mask ? 3 : 2;
    for (int c = 0; c < 2; c++) {
      int S = lens[c];
      tfx_input all[3] = {{"tokens", ids, 0}, {"src", src, S}, {"src_mask", smask, S}};
      assert_int_equal(tfx_forward_inputs(s, all, ni, T, got, 0), TFX_OK);
      snprintf(what, sizeof what, "%sJIT -O%d S=%d prefill", with_mask ? "mask " : "", opt, S);
      compare(what, got, ref[c], T * V);
      tfx_session_reset(s);
      for (int t = 0; t < T; t++) {
        tfx_input one[3] = {{"src", src, S}, {"tokens", ids + t, 0}, {"src_mask", smask, S}};
        if (tfx_forward_inputs(s, one, ni, 1, got + t * V, 0)) fail_msg("%s", tfx_session_last_error(s));
      }
      snprintf(what, sizeof what, "%sJIT -O%d S=%d decode", with_mask ? "mask " : "", opt, S);
      compare(what, got, ref[c], T * V);
      tfx_session_reset(s);
      tfx_input c1[3] = {{"tokens", ids, 0}, {"src", src, S}, {"src_mask", smask, S}};
      tfx_input c2[3] = {{"tokens", ids + 3, 0}, {"src", src, S}, {"src_mask", smask, S}};
      assert_int_equal(tfx_forward_inputs(s, c1, ni, 3, got, 0), TFX_OK);
      assert_int_equal(tfx_forward_inputs(s, c2, ni, T - 3, got + 3 * V, 0), TFX_OK);
      snprintf(what, sizeof what, "%sJIT -O%d S=%d chunks", with_mask ? "mask " : "", opt, S);
      compare(what, got, ref[c], T * V);
      tfx_session_reset(s);
      float last[V];
      assert_int_equal(tfx_forward_inputs(s, all, ni, T, last, 1), TFX_OK);
      compare("  last row", last, ref[c] + (T - 1) * V, V);
      tfx_session_reset(s);
    }
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_build_free(&b);
  }
}

/* The source cache (passes/cache_source.c, ABI 7): a session keeps the
 * encoder's output and the cross-attention K/V while the source stays the
 * same. A sequence of calls whose source changes without a reset (other
 * ids, then only another S) must match the interpreter, which recomputes
 * everything every call; the changed source's rows must differ from what
 * the stale cache would give; after a reset a new source gives the logits
 * of a fresh session. */
/* The source-cache sequence: calls (tokens from, n, source b or a, S); the
 * source changes at calls 3 and 5. */
enum { CALLS = 6 };
static const struct {
  int t0, n, b, S;
} seq[CALLS] = {{0, 3, 0, 5}, {3, 1, 0, 5}, {4, 1, 1, 5}, {5, 1, 1, 5}, {6, 1, 1, 7}, {0, 0, 0, 0}};

static void seq_inputs(int32_t *ids, int32_t *a, int32_t *bsrc) {
  for (int t = 0; t < T; t++) ids[t] = (t * 5 + 2) % V;
  for (int j = 0; j < NMAX; j++) a[j] = (j * 7 + 1) % V, bsrc[j] = (j * 11 + 3) % V;
}

static void test_source_cache(void **state) {
  (void)state;
  int32_t ids[T], a[NMAX], bsrc[NMAX];
  seq_inputs(ids, a, bsrc);
  float want[T * V], stale[T * V], got[T * V];
  char err[512], what[80];
  tfx_build b;
  build(NMAX, 0, 3, &b);
  assert_true(b.graph->src_cache_bytes > 64);
  assert_int_equal(b.graph->src_cache_bytes % 64, 0);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  for (int pass = 0; pass < 2; pass++) { /* 0: the sequence; 1: source a throughout (what a stale cache gives) */
    float *o = pass ? stale : want;
    tfx_interp_reset(it);
    for (int c = 0; c < CALLS && seq[c].n; c++) {
      const void *in[2] = {ids + seq[c].t0, pass || !seq[c].b ? a : bsrc};
      int64_t rows[2] = {0, pass ? 5 : seq[c].S};
      if (tfx_interp_forward_rows(it, in, rows, 2, seq[c].n, o + seq[c].t0 * V, err, sizeof err)) fail_msg("%s", err);
    }
  }
  /* the new source shows in the rows computed after it */
  assert_true(tfx_test_max_abs_diff(want + 4 * V, stale + 4 * V, 3 * V) > 1e-2);
  assert_true(tfx_test_max_abs_diff(want + 6 * V, stale + 6 * V, V) > 1e-2);
  tfx_model *m = NULL;
  if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(tfx_model_descriptor(m)->src_cache_bytes, (uint64_t)b.graph->src_cache_bytes);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  for (int round = 0; round < 2; round++) { /* twice: the reset forgets the cache */
    for (int c = 0; c < CALLS && seq[c].n; c++) {
      tfx_input in[2] = {{"tokens", ids + seq[c].t0, 0}, {"src", seq[c].b ? bsrc : a, seq[c].S}};
      if (tfx_forward_inputs(s, in, 2, seq[c].n, got + seq[c].t0 * V, 0)) fail_msg("%s", tfx_session_last_error(s));
    }
    snprintf(what, sizeof what, "source changed without reset (%d)", round);
    compare(what, got, want, T * V);
    tfx_session_reset(s);
  }
  /* after a reset, source b from the start: the logits of a fresh session */
  tfx_input pre_a[2] = {{"tokens", ids, 0}, {"src", a, 5}};
  assert_int_equal(tfx_forward_inputs(s, pre_a, 2, T, got, 0), TFX_OK);
  tfx_session_reset(s);
  tfx_input pre_b[2] = {{"tokens", ids, 0}, {"src", bsrc, 6}};
  assert_int_equal(tfx_forward_inputs(s, pre_b, 2, T, got, 0), TFX_OK);
  tfx_session *fresh = NULL;
  float ref[T * V];
  assert_int_equal(tfx_session_create(m, NULL, &fresh), TFX_OK);
  assert_int_equal(tfx_forward_inputs(fresh, pre_b, 2, T, ref, 0), TFX_OK);
  compare("new source after reset", got, ref, T * V);
  /* and token by token with the cache: the same as the prefill */
  tfx_session_reset(s);
  for (int t = 0; t < T; t++) {
    tfx_input one[2] = {{"tokens", ids + t, 0}, {"src", bsrc, 6}};
    assert_int_equal(tfx_forward_inputs(s, one, 2, 1, got + t * V, 0), TFX_OK);
  }
  compare("decode with the cache = prefill", got, ref, T * V);
  /* a static session (the caller's buffers; the padded sources in its
   * arena, after the output row): the same sequence, the same logits */
  size_t na = 0, nk = 0;
  assert_int_equal(tfx_session_static_sizes(m, &na, &nk), TFX_OK);
  void *arena = NULL, *kv = NULL;
  assert_int_equal(posix_memalign(&arena, TFX_BUFFER_ALIGN, na), 0);
  assert_int_equal(posix_memalign(&kv, TFX_BUFFER_ALIGN, nk), 0);
  memset(arena, 0x5a, na); /* no byte of the source buffer may be read before it is written */
  tfx_session_storage st;
  tfx_session *ss = NULL;
  assert_int_equal(tfx_session_create_static(m, arena, na, kv, nk, &st, &ss, err, sizeof err), TFX_OK);
  for (int round = 0; round < 2; round++) {
    for (int c = 0; c < CALLS && seq[c].n; c++) {
      tfx_input in[2] = {{"tokens", ids + seq[c].t0, 0}, {"src", seq[c].b ? bsrc : a, seq[c].S}};
      if (tfx_forward_inputs(ss, in, 2, seq[c].n, got + seq[c].t0 * V, 0))
        fail_msg("static: %s", tfx_session_last_error(ss));
    }
    snprintf(what, sizeof what, "static session, source changed without reset (%d)", round);
    compare(what, got, want, T * V);
    tfx_session_reset(ss);
  }
  tfx_session_free(ss);
  free(arena);
  free(kv);
  tfx_session_free(fresh);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_interp_free(it);
  tfx_build_free(&b);
}

/* The source-cache sequence in a program of its own: the model compiled
 * with -c and --emit-header, a static session in the program's arrays sized
 * by the header (the padded sources included), linked with libtfxrt_min.a
 * and libm alone; its logits (printed as hex floats) against the
 * interpreter's. */
static void test_minimal_runtime_program(void **state) {
  (void)state;
  int32_t ids[T], a[NMAX], bsrc[NMAX];
  seq_inputs(ids, a, bsrc);
  float want[T * V], got[T * V];
  char err[512];
  tfx_build b;
  build(NMAX, 0, 0, &b);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  for (int c = 0; c < CALLS && seq[c].n; c++) {
    const void *in[2] = {ids + seq[c].t0, seq[c].b ? bsrc : a};
    int64_t rows[2] = {0, seq[c].S};
    if (tfx_interp_forward_rows(it, in, rows, 2, seq[c].n, want + seq[c].t0 * V, err, sizeof err)) fail_msg("%s", err);
  }
  tfx_interp_free(it);
  tfx_build_free(&b);

  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char tfx[4200], obj[4200], hdr[4200], prog[4200], app[4200], inc[4200], incdir[4200], rt[4200];
  snprintf(tfx, sizeof tfx, "%s/ed.tfx", dir);
  snprintf(obj, sizeof obj, "%s/ed.o", dir);
  snprintf(hdr, sizeof hdr, "%s/ed.h", dir);
  snprintf(prog, sizeof prog, "%s/ed_min.c", dir);
  snprintf(app, sizeof app, "%s/ed_min", dir);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(incdir, sizeof incdir, "-I%s", dir);
  snprintf(rt, sizeof rt, "%s/libtfxrt_min.a", TFX_BINARY_DIR);
  FILE *f = fopen(tfx, "w");
  assert_non_null(f);
  fprintf(f, fmt, NMAX, "", "", "");
  fclose(f);
  f = fopen(prog, "w");
  assert_non_null(f);
  fprintf(f,
          "#include <stdio.h>\n#include \"ed.h\"\n"
          "static tfx_model_storage ms;\nstatic tfx_session_storage ss;\n"
          "static _Alignas(ED_BUFFER_ALIGN) unsigned char arena[ED_ARENA_BYTES];\n"
          "static _Alignas(ED_BUFFER_ALIGN) unsigned char kv[ED_KV_BYTES];\n"
          "static float out[%d * ED_OUTPUT_WIDTH];\n",
          T);
  fprintf(f, "static const int32_t ids[] = {");
  for (int t = 0; t < T; t++) fprintf(f, "%d, ", ids[t]);
  fprintf(f, "}, a[] = {");
  for (int j = 0; j < NMAX; j++) fprintf(f, "%d, ", a[j]);
  fprintf(f, "}, bsrc[] = {");
  for (int j = 0; j < NMAX; j++) fprintf(f, "%d, ", bsrc[j]);
  fprintf(f, "};\nstatic const int seq[][4] = {");
  for (int c = 0; c < CALLS && seq[c].n; c++) fprintf(f, "{%d, %d, %d, %d}, ", seq[c].t0, seq[c].n, seq[c].b, seq[c].S);
  fprintf(f,
          "};\n"
          "int main(void) {\n"
          "  tfx_model *m = NULL;\n  tfx_session *s = NULL;\n  char err[256] = \"\";\n"
          "  int rc = ed_open_static(&ms, &m, err, sizeof err);\n"
          "  if (rc == TFX_OK) rc = tfx_session_create_static(m, arena, sizeof arena, kv, sizeof kv, &ss, &s, err, "
          "sizeof err);\n"
          "  for (unsigned c = 0; rc == TFX_OK && c < sizeof seq / sizeof seq[0]; c++) {\n"
          "    tfx_input in[2] = {{\"tokens\", ids + seq[c][0], 0}, {\"src\", seq[c][2] ? bsrc : a, seq[c][3]}};\n"
          "    rc = tfx_forward_inputs(s, in, 2, seq[c][1], out + seq[c][0] * ED_OUTPUT_WIDTH, 0);\n"
          "    if (rc != TFX_OK) snprintf(err, sizeof err, \"%%s\", tfx_session_last_error(s));\n"
          "  }\n"
          "  if (rc != TFX_OK) {\n    fprintf(stderr, \"error: %%s: %%s\\n\", tfx_error_message(rc), err);\n"
          "    return 1;\n  }\n"
          "  for (int i = 0; i < %d * ED_OUTPUT_WIDTH; i++) printf(\"%%a\\n\", out[i]);\n"
          "  tfx_session_free(s);\n  tfx_model_close(m);\n  return 0;\n}\n",
          T);
  fclose(f);
  char *out = NULL, *errs = NULL;
  if (tfx_test_run((char *[]){TFXC_PATH, tfx, "-c", "-o", obj, "--emit-header", hdr, NULL}, &out, &errs))
    fail_msg("tfxc -c: %s", errs ? errs : "?");
  free(out), free(errs), out = errs = NULL;
  char *header = tfx_test_read_file(hdr, NULL);
  assert_non_null(header);
  assert_non_null(strstr(header, "#define ED_SOURCE_ROWS 9"));
  free(header);
  if (tfx_test_run((char *[]){"/usr/bin/cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", SANITIZE_ARG inc, incdir,
                              "-o", app, prog, obj, rt, "-lm", NULL},
                   &out, &errs))
    fail_msg("cc: %s", errs ? errs : "?");
  free(out), free(errs), out = errs = NULL;
  if (tfx_test_run((char *[]){app, NULL}, &out, &errs)) fail_msg("ed_min: %s", errs ? errs : "?");
  char *p = out;
  for (int i = 0; i < T * V; i++) {
    char *end = NULL;
    got[i] = strtof(p, &end);
    if (end == p) fail_msg("ed_min printed %d values, expected %d", i, T * V);
    p = end;
  }
  compare("minimal runtime program, source-cache sequence", got, want, T * V);
  free(out), free(errs);
  tfx_test_rmdir(dir);
  free(dir);
}

static void test_source_rows(void **state) {
  (void)state;
  run_case(0);
}

static void test_source_key_mask(void **state) {
  (void)state;
  run_case(1);
}

/* ---- the descriptor, the header, the runtime's errors ---- */

static void test_descriptor_and_errors(void **state) {
  (void)state;
  tfx_build b;
  char err[512];
  build(NMAX, 0, 3, &b);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(tfx_write_header(b.graph, "ed.tfx", f), 0);
  fclose(f);
  assert_non_null(strstr(text, "#define ED_N_INPUTS 3"));
  assert_non_null(strstr(text, "#define ED_INPUT_SRC_INDEX 1"));
  assert_non_null(strstr(text, "#define ED_INPUT_SRC_ROWS 9"));
  assert_non_null(strstr(text, "#define ED_INPUT_TOKENS_ROWS 0"));
  assert_non_null(strstr(text, "#define ED_ROWS_MASK_INDEX 2"));
  assert_non_null(strstr(text, "#define ED_SOURCE_ROWS 9"));
  assert_non_null(strstr(text, "#define ED_SRC_CACHE_BYTES "));
  const char *ab = strstr(text, "#define ED_ARENA_BYTES ");
  assert_non_null(ab);
  long long header_arena = atoll(ab + strlen("#define ED_ARENA_BYTES "));
  free(text);
  /* the source cache in the printed IR: the encoder computed once, its output and the cross K/V kept */
  f = open_memstream(&text, &len);
  tfx_print_graph(b.graph, f);
  fclose(f);
  assert_non_null(strstr(text, " ; source, kept"));
  assert_non_null(strstr(text, " ; source\n"));
  free(text);
  tfx_model *m = NULL;
  if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("%s", err);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  size_t static_arena = 0;
  assert_int_equal(tfx_session_static_sizes(m, &static_arena, NULL), TFX_OK);
  assert_int_equal((long long)static_arena, header_arena); /* the padded sources included in both */
  assert_true(static_arena >= TFX_SOURCE_BUFFER_BYTES(3, NMAX));
  assert_int_equal(d->n_inputs, 3);
  assert_int_equal(d->inputs[1].rows, NMAX);
  assert_int_equal(d->inputs[1].vocab, V);
  assert_int_equal(d->inputs[2].kind, TFX_INPUT_ROWS_MASK);
  assert_int_equal(d->inputs[2].rows, NMAX);
  struct tfx_model_info info = {.struct_size = sizeof info};
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.n_inputs, 2); /* the row mask is the runtime's */
  tfx_input_info ii;
  assert_int_equal(tfx_model_input(m, 1, &ii), TFX_OK);
  assert_string_equal(ii.name, "src");
  assert_int_equal(ii.rows, NMAX);
  assert_int_equal(tfx_model_input(m, 2, &ii), TFX_ERR_INVALID_ARGUMENT);

  /* copies of the descriptor, each input table broken once */
  tfx_model_desc c = *d;
  tfx_input_desc tab[3];
  memcpy(tab, d->inputs, sizeof tab);
  c.inputs = tab;
  c.desc_checksum = 0;
  c.variant_next = NULL;
  tfx_model *m2 = NULL;
  assert_int_equal(tfx_model_from_descriptor(&c, d->weights, NULL, NULL, &m2), TFX_OK); /* the copy as it is */
  tfx_model_close(m2);
  for (int k = 0; k < 4; k++) {
    tfx_input_desc t2[3];
    memcpy(t2, tab, sizeof t2);
    tfx_model_desc b2 = c;
    b2.inputs = t2;
    if (k == 0) t2[1].rows = NMAX - 1;            /* a source of other rows than the mask's */
    if (k == 1) t2[1].rows = 0;                   /* a row mask without a source */
    if (k == 2) t2[1].kind = TFX_INPUT_ROWS_MASK; /* the mask not last */
    if (k == 3) t2[2].vocab = 5;                  /* a mask with ids */
    m2 = NULL;
    int rc = tfx_model_from_descriptor(&b2, d->weights, NULL, NULL, &m2);
    if (rc != TFX_ERR_NOT_A_MODEL) fail_msg("broken input table %d: rc %d, expected TFX_ERR_NOT_A_MODEL", k, rc);
    assert_null(m2);
  }
  for (int k = 0; k < 2; k++) { /* a source cache larger than the KV storage, or not a multiple of 64 */
    tfx_model_desc b2 = c;
    b2.src_cache_bytes = k ? c.kv_bytes + 64 : c.src_cache_bytes + 4;
    m2 = NULL;
    assert_int_equal(tfx_model_from_descriptor(&b2, d->weights, NULL, NULL, &m2), TFX_ERR_NOT_A_MODEL);
    assert_null(m2);
  }

  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  int32_t ids[T] = {1, 2, 3, 4, 5, 6, 7}, src[NMAX + 1] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  float out[T * V];
  struct {
    int32_t rows, code;
    const char *msg;
  } bad[] = {
      {0, TFX_ERR_INVALID_ARGUMENT,
       "input 'src' is a source of 1 to 9 rows given per call (tfx_input.rows), got rows = 0"},
      {NMAX + 1, TFX_ERR_INVALID_ARGUMENT, "got rows = 10"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tfx_input in[2] = {{"tokens", ids, 0}, {"src", src, bad[i].rows}};
    assert_int_equal(tfx_forward_inputs(s, in, 2, T, out, 0), bad[i].code);
    if (!strstr(tfx_session_last_error(s), bad[i].msg)) fail_msg("got '%s'", tfx_session_last_error(s));
  }
  tfx_input wrong_t[2] = {{"tokens", ids, 3}, {"src", src, 4}};
  assert_int_equal(tfx_forward_inputs(s, wrong_t, 2, T, out, 0), TFX_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(tfx_session_last_error(s), "input 'tokens' has the call's rows (n = 7), not 3"));
  src[2] = V; /* outside the vocabulary, inside the source's rows */
  tfx_input range[2] = {{"tokens", ids, 0}, {"src", src, 4}};
  assert_int_equal(tfx_forward_inputs(s, range, 2, T, out, 0), TFX_ERR_TOKEN_RANGE);
  assert_non_null(strstr(tfx_session_last_error(s), "input 'src': id 24 (at index 2)"));
  tfx_input fine[2] = {{"tokens", ids, 0}, {"src", src, 2}}; /* the bad id is past the call's rows */
  assert_int_equal(tfx_forward_inputs(s, fine, 2, T, out, 0), TFX_OK);
  tfx_input three[3] = {{"tokens", ids, 0}, {"src", src, 2}, {"#rows", src, 2}};
  assert_int_equal(tfx_forward_inputs(s, three, 3, T, out, 0), TFX_ERR_WRONG_INPUT);
  assert_int_equal(tfx_forward(s, ids, 1, out), TFX_ERR_WRONG_INPUT);
  assert_non_null(
      strstr(tfx_session_last_error(s), "takes 2 inputs and tfx_forward passes only 'tokens' (missing 'src')"));
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_build_free(&b);

  /* the interpreter's */
  build(NMAX, 0, 0, &b);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  const void *in[2] = {ids, src};
  int64_t rows[2] = {0, NMAX + 1};
  assert_int_not_equal(tfx_interp_forward_rows(it, in, rows, 2, T, out, err, sizeof err), 0);
  assert_non_null(strstr(err, "source 'src' has 10 rows (1 to 9)"));
  tfx_interp_free(it);
  tfx_build_free(&b);
}

#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 8, max_seq = 16\n"                                                                                      \
  "param emb : f32[10, dim]\n"                                                                                         \
  "param w : f32[dim, dim]\n"

static void test_frontend_errors(void **state) {
  (void)state;
  tfx_test_expect_compile_error(
      HDR "forward(t : i32[T], a : i32[6], b : f32[5]) -> f32[T, dim] { return embedding(emb, t) }\n",
      ":5:37:", "forward input 'b' is a source of 5 rows and an earlier one has 6");
  tfx_test_expect_compile_error(HDR "forward(t : i32[T], a : i32[6, 2]) -> f32[T, dim] { return embedding(emb, t) }\n",
                                ":5:25:", "or a source i32[N] / f32[N] of up to N rows per call, got i32[6, 2]");
  tfx_test_expect_compile_error(
      HDR "forward(a : i32[T], b : i32[T], c : i32[T], d : i32[T], e : i32[T], f : i32[T], g : i32[T], "
          "h : i32[5]) -> f32[T, dim] { return embedding(emb, a) }\n",
      ":5:1:", "forward takes at most 7 inputs with a source (its row mask is one more), got 8");
  /* a causal attention over a source's keys */
  tfx_test_expect_compile_error(
      HDR "forward(t : i32[T], s : i32[6]) -> f32[T, dim] {\n"
          "  e = embedding(emb, s)\n"
          "  e = attention(e, w, w, w, w, heads = 2, mask = causal)\n"
          "  return embedding(emb, t) + attention(embedding(emb, t), w, w, w, w, heads = 2, memory = e, mask = "
          "none)\n"
          "}\n",
      ":7:7:", "attention: the keys come from a source input (its rows are given per call): use mask = none");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_source_rows),     cmocka_unit_test(test_source_key_mask),
      cmocka_unit_test(test_source_cache),    cmocka_unit_test(test_descriptor_and_errors),
      cmocka_unit_test(test_frontend_errors), cmocka_unit_test(test_minimal_runtime_program),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
