/* tests/test_split_decode.c — split decode (flash-decoding, the decode
 * entry's attn_split parts, backend/k_split_decode.c) and the attention cost
 * model (passes/attn_cost.c):
 *  - the JIT (-O0 and -O3, through the runtime) against the reference
 *    interpreter: causal MHA, GQA and MQA, head dims 4..64 (tiny heads
 *    included), ALiBi, sliding and strided (the block-sparse runs of the
 *    decode entry) patterns, 2..16 parts (not powers of two too), KV
 *    lengths crossing the row kernel's key blocks (128) and shorter than
 *    the part count (empty parts), on 1, 2 and 3 threads;
 *  - split decode agrees with row decode on the same graph;
 *  - tfx_attn_split_fits: the partials must fit in the output slot, the
 *    graph output and non-causal attention never split; the verifier
 *    rejects a bad attn_split;
 *  - the pass: schedule { decode = row | split | split(N) } and the cost
 *    model's choice (split for few heads over a long forked KV, row for many
 *    heads or a short KV), printed by --emit=ir and --stats;
 *  - the prefill cost model: flash / block_sparse at every max_seq that
 *    fills a tile, row at a tiny max_seq or a narrow window over a short
 *    one, its estimates' formula, schedule { attention = dense | flash };
 *  - the tiny-head decode kernel (backend/k_tiny_heads.c, d <= 16,
 *    schedule { decode = tiny }): d 4, 8, 16 (packed body), 12 (gather body), MHA / GQA / MQA, every KV length 1..300
 * (blocks of W keys, partial last blocks) against the interpreter, and when tfx_attn_tiny_fits chooses it. Tolerance:
 * the harness's max |jit - ref| <= 1e-4 * max(1, max |ref|) (tests/support/jit_harness.h); split against row 2e-4 *
 * max(1, max |ref|). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/backend.h"
#include "../driver/compile.h"
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/jit_harness.h"
#include "support/testutil.h"
#include "tfx/tfx.h"

/* prefill, decodes, a chunk, decodes: the decodes at KV lengths 41..44, 101..103, 231, 232 */
static const int k_calls[] = {40, 1, 1, 1, 1, 56, 1, 1, 1, 125, 1, 1};
#define N_CALLS (int)(sizeof k_calls / sizeof k_calls[0])
/* short: decodes from KV length 1 (fewer keys than parts) */
static const int k_short[] = {1, 1, 1, 2, 1, 3, 1};
#define N_SHORT (int)(sizeof k_short / sizeof k_short[0])

/* tfx_tg_attn_graph with y = attention + attention as the output (the
 * attention's slot holds the partials; the graph's output is the caller's
 * buffer, where split decode never runs) and the decode entry's parts */
static tfx_tg *split_graph(int H, int G, int d, int alibi, const tfx_sparse *sp, int64_t max_seq, int splits,
                           uint64_t seed) {
  tfx_tg *t = tfx_tg_attn_graph(H, G, d, TFX_MASK_CAUSAL, alibi, sp, max_seq, seed);
  assert_non_null(t);
  int a = t->g->output;
  assert_true(a >= 0);
  t->g->nodes[a].attn_split = splits;
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, a, a);
  assert_true(t->g->output >= 0);
  return t;
}

static void run_split(int H, int G, int d, int alibi, const tfx_sparse *sp, int splits, int threads, const int *calls,
                      int n_calls, const char *what) {
  tfx_tg *t = split_graph(H, G, d, alibi, sp, 256, splits, (uint64_t)(H * 131 + G * 17 + d * 3 + splits));
  char err[256], label[192];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
  assert_true(tfx_attn_split_fits(t->g, &t->g->nodes[t->g->nodes[t->g->output].inputs[0]], splits));
  snprintf(label, sizeof label, "%s (H %d, G %d, d %d, split(%d), %d threads)", what, H, G, d, splits, threads);
  tfx_tg_check_levels(t, calls, n_calls, &(tfx_tg_run_opts){.in_scale = 2.0f, .threads = threads}, label);
  tfx_tg_free(t);
}

static void test_split_vs_interpreter(void **state) {
  (void)state;
  for (int threads = 1; threads <= 3; threads++) {
    run_split(4, 4, 16, 0, NULL, 4, threads, k_calls, N_CALLS, "MHA");
    run_split(4, 2, 8, 0, NULL, 3, threads, k_calls, N_CALLS, "GQA");
    run_split(2, 1, 16, 0, NULL, 8, threads, k_calls, N_CALLS, "MQA");
  }
  run_split(1, 1, 64, 0, NULL, 5, 2, k_calls, N_CALLS, "one head, d 64");
  run_split(3, 1, 4, 1, NULL, 16, 2, k_calls, N_CALLS, "tiny heads, ALiBi");
  run_split(4, 2, 8, 0, NULL, 16, 2, k_short, N_SHORT, "short KV, empty parts");
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_SLIDING;
  sp.window = 50;
  run_split(4, 2, 8, 0, &sp, 4, 2, k_calls, N_CALLS, "sliding(50)");
  sp.window = 3;
  run_split(2, 2, 8, 0, &sp, 8, 3, k_calls, N_CALLS, "sliding(3), fewer keys than parts");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_STRIDED;
  sp.stride = 20;
  run_split(4, 2, 8, 1, &sp, 6, 2, k_calls, N_CALLS, "strided(20), ALiBi");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_BIGBIRD;
  sp.block = 16;
  sp.n_global = 1;
  sp.random = 2;
  sp.seed = 7;
  run_split(2, 1, 8, 0, &sp, 4, 2, k_calls, N_CALLS, "bigbird(16, 1, 2)");
}

/* decodes at every KV length 1..300 after a prefill of 1, with a chunk in the middle */
static int k_every[300];

static void test_tiny_heads_vs_interpreter(void **state) {
  (void)state;
  int n = 294; /* 293 single rows and a chunk of 7 (KV lengths 1..150, 157..300) */
  for (int i = 0; i < n; i++) k_every[i] = i == 150 ? 7 : 1;
  static const int shapes[][2] = {{4, 4}, {4, 2}, {3, 1}};
  static const char *const names[] = {"MHA", "GQA", "MQA"};
  for (int dk = 0; dk < 4; dk++) /* d 4, 8, 16: the packed body; 12 (GQA only): the gather body */
    for (int sh = dk == 3 ? 1 : 0; sh < (dk == 3 ? 2 : 3); sh++) {
      int d = dk == 3 ? 12 : 4 << dk, H = shapes[sh][0], G = shapes[sh][1];
      tfx_tg *t = split_graph(H, G, d, 0, NULL, 320, 0, (uint64_t)(H * 7 + G + d));
      t->g->schedule.decode = TFX_SCHED_DECODE_TINY;
      char err[256], label[128];
      if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("plan: %s", err);
      const tfx_node *a = &t->g->nodes[t->g->nodes[t->g->output].inputs[0]];
      assert_true(tfx_attn_tiny_chosen(t->g, a)); /* the decode entry's kernel: k_tiny_heads.c */
      assert_int_equal(a->attn_split, 0);
      snprintf(label, sizeof label, "tiny heads %s (H %d, G %d, d %d)", names[sh], H, G, d);
      tfx_tg_check_levels(t, k_every, n, &(tfx_tg_run_opts){.in_scale = 2.0f, .threads = 1 + dk % 2}, label);
      tfx_tg_free(t);
    }
}

static void test_tiny_heads_fits(void **state) {
  (void)state;
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_SLIDING;
  sp.window = 8;
  struct {
    int d, alibi;
    const tfx_sparse *sp;
    int want;
  } cases[] = {{8, 0, NULL, 1}, {16, 0, NULL, 1}, {32, 0, NULL, 0}, {8, 1, NULL, 0}, {8, 0, &sp, 0}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    tfx_tg *t = tfx_tg_attn_graph(2, 1, cases[k].d, TFX_MASK_CAUSAL, cases[k].alibi, cases[k].sp, 64, 5);
    assert_non_null(t);
    assert_int_equal(tfx_attn_tiny_fits(t->g, &t->g->nodes[t->g->output]), cases[k].want);
    /* auto: the cost model's rule (fits, d a power of two <= 16) */
    assert_int_equal(tfx_attn_tiny_chosen(t->g, &t->g->nodes[t->g->output]), cases[k].want);
    assert_int_equal(tfx_attn_tiny_auto(t->g, &t->g->nodes[t->g->output]), cases[k].want);
    t->g->schedule.decode = TFX_SCHED_DECODE_ROW;
    assert_int_equal(tfx_attn_tiny_chosen(t->g, &t->g->nodes[t->g->output]), 0);
    t->g->schedule.decode = TFX_SCHED_DECODE_TINY;
    assert_int_equal(tfx_attn_tiny_chosen(t->g, &t->g->nodes[t->g->output]), cases[k].want);
    tfx_tg_free(t);
  }
  tfx_tg *t = tfx_tg_attn_graph(2, 1, 8, TFX_MASK_NONE, 0, NULL, 64, 5); /* bidirectional: no decode entry */
  assert_non_null(t);
  assert_int_equal(tfx_attn_tiny_fits(t->g, &t->g->nodes[t->g->output]), 0);
  tfx_tg_free(t);
}

/* the decode outputs of a graph (one session, 2 threads): prefill 200, then 8 decodes */
static void decode_outputs(tfx_tg *t, float *out) {
  tfx_model *m = tfx_tg_jit_model(t, 2);
  assert_non_null(m);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), TFX_OK);
  uint64_t rng = 99;
  float *x = malloc(200 * 24 * sizeof(float)), *y = malloc(200 * 32 * sizeof(float));
  assert_true(x && y);
  for (int i = 0; i < 200 * 24; i++)
    x[i] = (float)((double)((rng = rng * 6364136223846793005ull + 1) >> 40) / (1 << 24) * 2 - 1);
  assert_int_equal(tfx_forward_f32(s, x, 200, y), TFX_OK);
  for (int c = 0; c < 8; c++) assert_int_equal(tfx_forward_f32(s, x + c * 24, 1, out + c * 32), TFX_OK);
  free(x);
  free(y);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_split_vs_row(void **state) {
  (void)state;
  float row[8 * 32], split[8 * 32];
  for (int k = 0; k < 2; k++) {
    tfx_tg *t = split_graph(4, 2, 8, 0, NULL, 256, k ? 7 : 0, 11);
    char err[256];
    assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
    decode_outputs(t, k ? split : row);
    tfx_tg_free(t);
  }
  double maxref = 1, diff = 0;
  for (int i = 0; i < 8 * 32; i++) {
    maxref = fmax(maxref, fabs(row[i]));
    diff = fmax(diff, fabs((double)row[i] - split[i]));
  }
  if (!(diff <= 2e-4 * maxref)) fail_msg("split vs row: max |err| %g", diff);
}

static void test_split_fits(void **state) {
  (void)state;
  char err[256];
  /* max_seq 16, d 8: (16 - 1) * 8 = 120 floats a head hold 12 records of 10 */
  tfx_tg *t = split_graph(4, 2, 8, 0, NULL, 16, 0, 3);
  const tfx_node *a = &t->g->nodes[t->g->nodes[t->g->output].inputs[0]];
  assert_true(tfx_attn_split_fits(t->g, a, 2));
  assert_true(tfx_attn_split_fits(t->g, a, 12));
  assert_false(tfx_attn_split_fits(t->g, a, 13));
  assert_false(tfx_attn_split_fits(t->g, a, 1));
  assert_false(tfx_attn_split_fits(t->g, a, TFX_ATTN_MAX_SPLITS + 1));
  /* the verifier: 1 part, too many, on a non-causal node */
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  assert_int_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  t->g->nodes[a->id].attn_split = 1;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  t->g->nodes[a->id].attn_split = TFX_ATTN_MAX_SPLITS + 1;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  t->g->nodes[a->id].attn_split = 4;
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  assert_int_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  tfx_tg_free(t);
  /* the graph's output: never */
  t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, 0, NULL, 64, 4);
  assert_false(tfx_attn_split_fits(t->g, &t->g->nodes[t->g->output], 2));
  tfx_tg_free(t);
  /* bidirectional: never (and the verifier says so) */
  t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_NONE, 0, NULL, 64, 5);
  int id = t->g->output;
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, id, id);
  assert_false(tfx_attn_split_fits(t->g, &t->g->nodes[id], 2));
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  t->g->nodes[id].attn_split = 2;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "split"));
  tfx_tg_free(t);
}

/* the pass's choice on a graph of H heads of d at max_seq, with a sparse pattern sp (or none) and the
   graph's schedule { decode = ... } */
static int chosen_with(int H, int G, int d, const tfx_sparse *sp, int64_t max_seq, int decode, uint64_t seed) {
  tfx_tg *t = split_graph(H, G, d, 0, sp, max_seq, 0, seed);
  t->g->schedule.decode = decode;
  char err[256];
  tfx_pass_ctx c = {.g = t->g, .err = err, .errlen = sizeof err};
  assert_int_equal(tfx_pass_schedule_attention(&c), 0);
  int s = t->g->nodes[t->g->nodes[t->g->output].inputs[0]].attn_split;
  tfx_tg_free(t);
  return s;
}

static int chosen(int H, int G, int d, int64_t max_seq, int decode) {
  return chosen_with(H, G, d, NULL, max_seq, decode, 21);
}

static void test_cost_model(void **state) {
  (void)state;
  /* one head of 64 over 4096 keys: the launch forks, parts pay */
  int s = chosen(1, 1, 64, 4096, TFX_SCHED_DECODE_AUTO);
  assert_true(s >= 2);
  /* 16 heads: the heads fill the threads; a short KV runs inline: row */
  assert_int_equal(chosen(16, 16, 64, 4096, TFX_SCHED_DECODE_AUTO), 0);
  assert_int_equal(chosen(1, 1, 64, 256, TFX_SCHED_DECODE_AUTO), 0);
  /* the overrides */
  assert_int_equal(chosen(1, 1, 64, 4096, TFX_SCHED_DECODE_ROW), 0);
  assert_int_equal(chosen(16, 16, 64, 4096, 5), 5);
  assert_int_equal(chosen(1, 1, 64, 256, TFX_SCHED_DECODE_SPLIT), 8);
  assert_int_equal(chosen(4, 2, 8, 4, 8), 0); /* does not fit: row */
  /* a pattern: the estimate counts the keys the row visits, not max_seq. One head over 4096 positions under
     sliding(256) visits 256 keys (row; the same head without the window splits, above); dilated(4) a
     quarter of them; strided(64) its window's 4 groups and one 16-key group in 4 elsewhere */
  tfx_sparse sw = {.kind = TFX_SPARSE_SLIDING, .window = 256};
  assert_int_equal(chosen_with(1, 1, 64, &sw, 4096, TFX_SCHED_DECODE_AUTO, 25), 0);
  tfx_sparse dil = {.kind = TFX_SPARSE_DILATED, .dilation = 4};
  tfx_sparse st = {.kind = TFX_SPARSE_STRIDED, .stride = 64};
  const tfx_sparse *pats[3] = {&sw, &dil, &st};
  const double keys[3] = {256, 1024, 64 + 16 * 63};
  for (int k = 0; k < 3; k++) {
    tfx_attn_cost pc;
    tfx_tg *pt = split_graph(1, 1, 64, 0, pats[k], 4096, 0, 24);
    tfx_attn_cost_eval(pt->g, &pt->g->nodes[pt->g->nodes[pt->g->output].inputs[0]], &pc);
    assert_true(fabs(pc.decode_keys - keys[k]) <= 16);
    assert_true(fabs(pc.row_units - (pc.decode_keys + (pc.forks ? 400 : 0))) < 1e-9);
    tfx_tg_free(pt);
  }
  tfx_attn_cost c;
  tfx_tg *t = split_graph(1, 1, 64, 0, NULL, 4096, 0, 22);
  tfx_attn_cost_eval(t->g, &t->g->nodes[t->g->nodes[t->g->output].inputs[0]], &c);
  assert_int_equal(c.split, s);
  assert_true(c.split_units < 0.9 * c.row_units);
  assert_int_equal(c.forward, TFX_ATTN_SCHED_FLASH);
  assert_true(fabs(c.kept - 0.5) < 0.01); /* causal: about half the pairs */
  assert_true(fabs(c.decode_kv_bytes - 2.0 * 4096 * 64 * 4) < 1);
  /* prefill: the tiles cost less per unit, and a max_seq prefill pads little */
  assert_true(c.prefill_tiled_ns > 0 && c.prefill_tiled_ns < 0.5 * c.prefill_row_ns);
  assert_true(c.prefill_ns == c.prefill_tiled_ns);
  tfx_tg_free(t);
}

/* the prefill schedule the pass writes on a graph of H heads of d at max_seq, with schedule { attention = ... } */
static int prefill_chosen(int H, int d, int64_t max_seq, const tfx_sparse *sp, int attention, tfx_attn_cost *c) {
  tfx_tg *t = split_graph(H, H, d, 0, sp, max_seq, 0, 23);
  t->g->schedule.attention = attention;
  char err[256];
  tfx_pass_ctx ctx = {.g = t->g, .err = err, .errlen = sizeof err};
  assert_int_equal(tfx_pass_schedule_attention(&ctx), 0);
  const tfx_node *n = &t->g->nodes[t->g->nodes[t->g->output].inputs[0]];
  tfx_attn_cost_eval(t->g, n, c);
  int s = n->attn_schedule;
  assert_int_equal(s, c->forward);
  tfx_tg_free(t);
  return s;
}

static void test_prefill_cost_model(void **state) {
  (void)state;
  tfx_attn_cost c;
  /* flash for any prefill long enough to fill a 16 x 16 tile; row where the tile is mostly padding */
  assert_int_equal(prefill_chosen(4, 64, 1024, NULL, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_FLASH);
  assert_true(c.prefill_tiled_ns < c.prefill_row_ns);
  assert_int_equal(prefill_chosen(4, 8, 16, NULL, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_FLASH);
  assert_int_equal(prefill_chosen(4, 64, 6, NULL, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_ROW);
  assert_true(c.prefill_row_ns < c.prefill_tiled_ns);
  assert_true(c.prefill_ns == c.prefill_row_ns);
  /* row's estimate: H (T (T + 1) / 2 pairs at a + b d, T rows at c d); flash's: one 16 x 16 tile per head */
  assert_true(fabs(c.prefill_row_ns - 4 * (21 * (4.51 + 0.094 * 64) + 6 * 5.5 * 64)) < 1e-6 * c.prefill_row_ns);
  assert_true(fabs(c.prefill_tiled_ns - 4 * (256 * (0.56 + 0.045 * 64) + 63. * 64)) < 1e-6 * c.prefill_tiled_ns);
  /* the overrides: attention = dense always row, attention = flash the tiles where they apply */
  assert_int_equal(prefill_chosen(4, 64, 1024, NULL, TFX_SCHED_ATTN_DENSE, &c), TFX_ATTN_SCHED_ROW);
  assert_int_equal(prefill_chosen(4, 64, 6, NULL, TFX_SCHED_ATTN_FLASH, &c), TFX_ATTN_SCHED_FLASH);
  /* a pattern: block_sparse over the kept tiles; a window of 2 in max_seq 24 keeps row (few pairs, whole tiles) */
  tfx_sparse sp = {.kind = TFX_SPARSE_SLIDING, .window = 64};
  assert_int_equal(prefill_chosen(2, 64, 1024, &sp, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_BLOCK_SPARSE);
  assert_true(c.kept < 0.15);
  sp.window = 2;
  assert_int_equal(prefill_chosen(2, 64, 24, &sp, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_ROW);
  /* dilated(2, window 128) is gathered: 2 classes of 512 positions under sliding(64), about the tiles and
     the row pairs of sliding(64) over 1,024 (not sliding(128)'s, which the element mask would visit) */
  sp = (tfx_sparse){.kind = TFX_SPARSE_SLIDING, .window = 64};
  prefill_chosen(2, 64, 1024, &sp, TFX_SCHED_ATTN_AUTO, &c);
  tfx_attn_cost sl = c;
  sp = (tfx_sparse){.kind = TFX_SPARSE_DILATED, .dilation = 2, .window = 128};
  assert_int_equal(prefill_chosen(2, 64, 1024, &sp, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_BLOCK_SPARSE);
  assert_true(fabs(c.kept - sl.kept) < 0.1 * sl.kept);
  assert_true(fabs(c.prefill_tiled_ns - sl.prefill_tiled_ns) < 0.1 * sl.prefill_tiled_ns);
  assert_true(fabs(c.prefill_row_ns - sl.prefill_row_ns) < 0.1 * sl.prefill_row_ns);
  sp = (tfx_sparse){.kind = TFX_SPARSE_STRIDED, .stride = 64};
  assert_int_equal(prefill_chosen(2, 64, 1024, &sp, TFX_SCHED_ATTN_AUTO, &c), TFX_ATTN_SCHED_BLOCK_SPARSE);
  assert_int_equal(prefill_chosen(2, 64, 1024, &sp, TFX_SCHED_ATTN_DENSE, &c), TFX_ATTN_SCHED_ROW);
}

static void test_schedule_source(void **state) {
  (void)state;
  static const char *const sched_src[5] = {"", "schedule {\n  decode = row\n}\n",
                                           "schedule {\n  decode = split(6)\n}\n", "schedule {\n  decode = split\n}\n",
                                           "schedule {\n  decode = tiny\n}\n"};
  static const int want[5] = {0, 0, 6, 8, 0};
  for (int k = 0; k < 5; k++) {
    char src[1024];
    snprintf(src, sizeof src,
             "model s\nconst max_seq = 64\n"
             "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
             "  param wq : f32[8, 8]\n  param wk : f32[8, 8]\n  param wv : f32[8, 8]\n  param wo : f32[8, 8]\n"
             "  return x + attention(x, wq, wk, wv, wo, heads = 2, mask = causal)\n"
             "}\n%s",
             sched_src[k]);
    tfx_build_options bo = {.weights = "random", .opt_level = 2};
    tfx_build b;
    assert_int_equal(tfx_build_source("s.tfx", src, &bo, &b), 0);
    int found = 0;
    for (int i = 0; i < b.graph->n_nodes; i++)
      if (b.graph->nodes[i].op == TFX_OP_ATTENTION) {
        found++;
        assert_int_equal(b.graph->nodes[i].attn_split, want[k]);
        assert_int_equal(tfx_attn_tiny_chosen(b.graph, &b.graph->nodes[i]), k == 0 || k == 4); /* d = 4: auto too */
      }
    assert_int_equal(found, 1);
    tfx_build_free(&b);
  }
  /* bad values: a clear error */
  static const char *const bad[3] = {"split(1)", "split(65)", "columns"};
  for (int k = 0; k < 3; k++) {
    char src[1024];
    snprintf(src, sizeof src,
             "model s\nconst max_seq = 64\nforward(x : f32[T, 8]) -> f32[T, 8] {\n  return x\n}\n"
             "schedule {\n  decode = %s\n}\n",
             bad[k]);
    tfx_build_options bo = {.weights = "random", .opt_level = 2};
    tfx_build b;
    assert_int_not_equal(tfx_build_source("s.tfx", src, &bo, &b), 0);
    tfx_build_free(&b);
  }
}

/* ---- prefill runs (passes/prefill_chunk.c, backend/module.c's run loop) ---- */

/* A model m's last-row output of calls ns[c] (tfx_forward_f32_ex with
 * last_only: the forward_last entry, its tail run in the last run only)
 * against the interpreter's last row. */
static void check_last_rows(tfx_tg *t, tfx_model *m, const int *ns, int n_calls, const char *what) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  for (int c = 0; c < n_calls; c++) {
    int n = ns[c];
    size_t ow = (size_t)d->output_width;
    float *ref = calloc((size_t)n * ow, sizeof(float)), *out = calloc(ow, sizeof(float));
    float *x = calloc((size_t)n * (size_t)d->input_width, sizeof(float));
    assert_true(ref && out && x);
    for (int i = 0; i < n * d->input_width; i++) x[i] = 2.0f * tfx_tg_rand(t);
    char err[256], label[256];
    if (tfx_interp_forward(it, x, n, ref, err, sizeof err)) fail_msg("%s: interpreter: %s", what, err);
    assert_int_equal(tfx_forward_f32_ex(s, x, n, out, 1), TFX_OK);
    snprintf(label, sizeof label, "%s, last row (n = %d)", what, n);
    tfx_tg_check_close(ref + (size_t)(n - 1) * ow, out, ow, ow, label, c);
    free(ref);
    free(out);
    free(x);
  }
  tfx_session_free(s);
  tfx_interp_free(it);
}

/* split_graph without parts (y = a + a: a tail, so a forward_last entry),
 * planned, its forward entries in runs of `chunk` rows */
static void run_chunked(int H, int G, int d, const tfx_sparse *sp, int64_t chunk, const char *what) {
  static const int calls[] = {40, 1, 56, 125, 1, 33}; /* runs of 16: 3, 1, 4, 8 (one of 13 rows), 1, 3 */
  tfx_tg *t = split_graph(H, G, d, 0, sp, 256, 0, (uint64_t)(H * 7 + d + chunk));
  char err[256], label[192];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
  t->g->prefill_chunk = chunk;
  assert_int_equal(tfx_backend_prefill_chunk(t->g), chunk);
  snprintf(label, sizeof label, "%s (H %d, G %d, d %d, runs of %lld rows)", what, H, G, d, (long long)chunk);
  tfx_tg_check_levels(t, calls, 6, &(tfx_tg_run_opts){.in_scale = 2.0f, .threads = 2}, label);
  tfx_model *m = tfx_tg_jit_model(t, 0);
  assert_non_null(m);
  const tfx_model_desc *desc = tfx_model_descriptor(m);
  for (int i = 0; i < desc->n_entries; i++) /* the contract is unchanged: any n up to max_seq */
    if (!(desc->entries[i].flags & TFX_ENTRY_BATCH) && strcmp(desc->entries[i].name, "decode"))
      assert_int_equal(desc->entries[i].max_tokens, 256);
  check_last_rows(t, m, calls, 6, label);
  tfx_model_close(m);
  tfx_tg_free(t);
}

static void test_prefill_runs(void **state) {
  (void)state;
  /* the rule: 2^k rows of activations within 1 MiB, >= 256, < max_seq; none when the arena fits */
  tfx_graph g;
  memset(&g, 0, sizeof g);
  g.max_seq = 4096;
  g.kv_bytes = 1 << 20;
  g.arena_bytes = 5308416; /* issue #12's small model: 1,296 bytes per row */
  assert_int_equal(tfx_prefill_chunk_rows(&g), 512);
  g.arena_bytes = 62914560; /* the stories110M shape: 15,360 */
  assert_int_equal(tfx_prefill_chunk_rows(&g), 256);
  g.arena_bytes = 1 << 20; /* fits */
  assert_int_equal(tfx_prefill_chunk_rows(&g), 0);
  g.arena_bytes = 3 << 20;
  g.kv_bytes = 0; /* no KV cache: rows never split */
  assert_int_equal(tfx_prefill_chunk_rows(&g), 0);
  g.kv_bytes = 1 << 20;
  g.max_seq = 256;
  assert_int_equal(tfx_prefill_chunk_rows(&g), 0);
  g.max_seq = 300;
  assert_int_equal(tfx_prefill_chunk_rows(&g), 256);

  /* the runs against the interpreter: tile-sized, odd and one-row runs; patterns whose tiles cross runs */
  run_chunked(4, 2, 8, NULL, 16, "causal");
  run_chunked(2, 1, 16, NULL, 7, "causal, MQA");
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_SLIDING;
  sp.window = 20;
  run_chunked(4, 4, 8, &sp, 16, "sliding(20)");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_BIGBIRD;
  sp.block = 16;
  sp.n_global = 1;
  sp.random = 2;
  sp.seed = 7;
  run_chunked(2, 1, 8, &sp, 24, "bigbird(16, 1, 2)");
  run_chunked(2, 2, 8, NULL, 1, "causal, one-row runs");

  /* never where rows of a call see each other outside the cache: bidirectional attention, no KV */
  tfx_tg *t = tfx_tg_attn_graph(2, 2, 8, TFX_MASK_NONE, 0, NULL, 256, 3);
  char err[256];
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  t->g->prefill_chunk = 16;
  assert_int_equal(tfx_backend_prefill_chunk(t->g), 0);
  tfx_tg_free(t);
  t = split_graph(2, 2, 8, 0, NULL, 256, 0, 3);
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  t->g->prefill_chunk = 256; /* not below max_seq */
  assert_int_equal(tfx_backend_prefill_chunk(t->g), 0);
  tfx_tg_free(t);

  /* the pipeline sets it from -O1 on (a token model of 1.4 KB of activations per row at max_seq 1,024: runs
   * of 512), -O0 never; schedule { prefill_chunk } overrides it at every level; all compute the same logits */
  static const struct {
    const char *schedule;
    int opt, runs, run; /* run: compute and compare the logits (else check the plan only) */
  } cases[] = {
      {"", 0, 0, 1},                                     /* the reference: whole calls */
      {"", 2, 512, 1},                                   /* auto */
      {"schedule { prefill_chunk = 100 }\n", 0, 100, 1}, /* asked, at -O0 */
      {"schedule { prefill_chunk = 3 * 64 }\n", 2, 192, 0},
      {"schedule { prefill_chunk = none }\n", 2, 0, 0},
      {"schedule { prefill_chunk = 1024 }\n", 2, 0, 0}, /* not below max_seq: whole calls */
  };
  enum { N = 1000, NC = sizeof cases / sizeof cases[0] };
  float *logits[NC], *last[NC];
  int32_t *tok = malloc(N * sizeof(int32_t));
  assert_non_null(tok);
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 5) % 96);
  for (int k = 0; k < NC; k++) {
    char src[2048];
    snprintf(src, sizeof src,
             "model runs\nconst dim = 64, max_seq = 1024\n%sparam emb : f32[96, dim]\n"
             "forward(tokens : i32[T]) -> f32[T, 96] {\n"
             "  param wq : f32[dim, dim]\n  param wk : f32[dim, dim]\n  param wv : f32[dim, dim]\n"
             "  param wo : f32[dim, dim]\n  param w1 : f32[4 * dim, dim]\n  param w2 : f32[dim, 4 * dim]\n"
             "  param g1 : f32[dim]\n  param g2 : f32[dim]\n"
             "  x = embedding(emb, tokens)\n"
             "  h = x + attention(rmsnorm(x, g1), wq, wk, wv, wo, heads = 4, position = rope(theta = 10000),\n"
             "                    mask = causal, sparse = sliding(window = 100))\n"
             "  return linear(h + linear(gelu(linear(rmsnorm(h, g2), w1)), w2), emb)\n"
             "}\n",
             cases[k].schedule);
    tfx_build_options bo = {.weights = "random:3", .opt_level = cases[k].opt};
    tfx_build b;
    assert_int_equal(tfx_build_source("runs.tfx", src, &bo, &b), 0);
    assert_int_equal(b.graph->prefill_chunk, cases[k].runs);
    assert_int_equal(tfx_backend_prefill_chunk(b.graph), cases[k].runs);
    logits[k] = last[k] = NULL;
    if (!cases[k].run) {
      tfx_build_free(&b);
      continue;
    }
    tfx_model *m = NULL;
    assert_int_equal(tfx_build_jit(&b, NULL, &m, err, sizeof err), 0);
    tfx_build_free(&b);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), TFX_OK);
    logits[k] = malloc((size_t)N * 96 * sizeof(float));
    last[k] = malloc(96 * sizeof(float));
    assert_true(logits[k] && last[k]);
    assert_int_equal(tfx_forward_ex(s, tok, N, logits[k], 0), TFX_OK);
    tfx_session_reset(s);
    assert_int_equal(tfx_forward_ex(s, tok, N - 1, last[k], 1), TFX_OK); /* then one decode past a run */
    assert_int_equal(tfx_forward_ex(s, tok + N - 1, 1, last[k], 1), TFX_OK);
    tfx_session_free(s);
    tfx_model_close(m);
    if (k) {
      char label[160];
      snprintf(label, sizeof label, "-O%d %s(runs of %d) vs -O0 (whole)", cases[k].opt, cases[k].schedule,
               cases[k].runs);
      tfx_tg_check_close(logits[0], logits[k], (size_t)N * 96, 96, label, k);
      tfx_tg_check_close(logits[0] + (size_t)(N - 1) * 96, last[k], 96, 96, label, k);
    }
  }
  for (int k = 0; k < NC; k++) free(logits[k]), free(last[k]);
  free(tok);

  /* a model whose runs would not compute its rows: the asked size is not honoured */
  static const char bidir[] = "model bidir\nconst dim = 32, max_seq = 512\nschedule { prefill_chunk = 64 }\n"
                              "forward(x : f32[T, dim]) -> f32[T, dim] {\n"
                              "  param wq : f32[dim, dim]\n  param wk : f32[dim, dim]\n  param wv : f32[dim, dim]\n"
                              "  param wo : f32[dim, dim]\n"
                              "  return x + attention(x, wq, wk, wv, wo, heads = 2, mask = none)\n"
                              "}\n";
  tfx_build_options bo = {.weights = "random:3", .opt_level = 2};
  tfx_build b;
  assert_int_equal(tfx_build_source("bidir.tfx", bidir, &bo, &b), 0);
  assert_int_equal(b.graph->prefill_chunk, 64);
  assert_int_equal(tfx_backend_prefill_chunk(b.graph), 0);
  tfx_build_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_fits),         cmocka_unit_test(test_cost_model),
      cmocka_unit_test(test_prefill_cost_model), cmocka_unit_test(test_schedule_source),
      cmocka_unit_test(test_split_vs_row),       cmocka_unit_test(test_split_vs_interpreter),
      cmocka_unit_test(test_tiny_heads_fits),    cmocka_unit_test(test_tiny_heads_vs_interpreter),
      cmocka_unit_test(test_prefill_runs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
