/* tests/test_attention_variants.c — the attention family against the
 * reference interpreter, and the interpreter's rules against hand-computed
 * truth:
 *  - ALiBi slopes (powers of two and the paper's rule for other H, against
 *    the values of the ALiBi reference code), the mask predicate of every
 *    sparse pattern on small tables written out by hand, BigBird's random
 *    draw (xorshift64 values computed independently below);
 *  - interpreter vs JIT (-O0 and -O3, 2 threads, through the runtime API) for
 *    ALiBi (H a power of two and not, GQA), every sparse pattern causal and
 *    bidirectional, prefill + single-token decode + chunks through the KV
 *    cache, long contexts crossing the kernels' key blocks (with wholly
 *    masked blocks), cross-attention to a static memory and to another
 *    T-row tensor, an encoder over static rows, rows whose keys are all
 *    masked (exact zeros, no NaN), and MLA with and without kv_norm, with and
 *    without the decoupled RoPE key (both pair styles), with ALiBi and a
 *    sliding window;
 *  - MLA's KV cache holds r + dr floats per token (the latent), and the IR
 *    printer / verifier on the new attributes;
 *  - the block rule (tfx_attn_block_allowed) against the element rule on
 *    random blocks of every pattern, causal and not (exact but for
 *    Longformer's FULL, which must still be safe), producing NONE and FULL;
 *  - attention schedules: the schedule_attention pass's choice (flash, row
 *    for sparse patterns, dense and MLA), printed and verified, counted by
 *    --stats; forcing each applicable schedule on causal MHA / GQA, ALiBi
 *    (causal and not), cross-attention (static and T-row memory), an
 *    encoder over static rows and MLA gives the interpreter's results, and
 *    the schedules agree with each other, prefill and decode;
 *  - the block rule on every aligned tile (1..16 x 1..16 over 75 positions,
 *    the last tiles cut short) of every pattern, causal and not, against the
 *    element rule; the block-sparse schedule (the flash tiles over the
 *    table's non-empty key groups) against the interpreter and the row
 *    schedule for every pattern at tile sizes (windows under and over a
 *    tile, every column a summary), causal prefill + decode + chunks that
 *    start mid-tile, bidirectional T not a multiple of the tile, a
 *    cross-attention to a static memory; the module holds the block-sparse
 *    body and the decode entry's table;
 *  - the dilated patterns' gathered form (tfx_attn_gather) against the
 *    element rule on every pair; their gathered tiles and walks (k = 2, 3,
 *    5, windows 0 and not multiples of k, chunks starting at every residue,
 *    causal and bidirectional, ALiBi on some) against the interpreter and
 *    each other, the module's forward body and decode entry holding the
 *    gathered walk (gather_res) and the gathered table (tfx_bsg_); MLA's
 *    row walk gathered for its dilated patterns (test_mla).
 * Tolerance: max |jit - ref| <= 1e-4 * max(1, max |ref|), between two
 * schedules 2e-4 * max(1, max |ref|). */
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

/* ---- harness: interpreter vs JIT through the runtime (tests/support/jit_harness.c) ---- */

/* Optional inspection of every call's outputs (interpreter's and JIT's). */
static tfx_tg_row_check g_row_check;

static void check_levels(tfx_tg *t, const int *ns, int n_calls, const char *what) {
  tfx_tg_check_levels(t, ns, n_calls, &(tfx_tg_run_opts){.in_scale = 2.0f, .row_check = g_row_check}, what);
}

static const int k_decoder_calls[] = {7, 1, 1, 1, 5, 1, 2, 1};
#define N_DECODER (int)(sizeof k_decoder_calls / sizeof k_decoder_calls[0])
static const int k_encoder_calls[] = {7, 1, 16, 3};
#define N_ENCODER (int)(sizeof k_encoder_calls / sizeof k_encoder_calls[0])

static int linear(tfx_tg *t, int x, int64_t out, int64_t in, const char *wname, float scale) {
  return tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, wname, out, in, scale));
}

static void run_attn(int H, int G, int d, tfx_mask_kind mask, int alibi, const tfx_sparse *sp, const char *what) {
  tfx_tg *t = tfx_tg_attn_graph(H, G, d, mask, alibi, sp, 40, (uint64_t)(H * 131 + G * 17 + d + mask * 7 + alibi));
  char label[160];
  snprintf(label, sizeof label, "%s (%s)", what, mask == TFX_MASK_CAUSAL ? "causal" : "none");
  if (mask == TFX_MASK_CAUSAL)
    check_levels(t, k_decoder_calls, N_DECODER, label);
  else
    check_levels(t, k_encoder_calls, N_ENCODER, label);
  tfx_tg_free(t);
}

/* ---- the rules ---- */

static void test_alibi_slopes(void **state) {
  (void)state;
  /* the ALiBi reference code's get_slopes(): powers of two ... */
  for (int h = 0; h < 8; h++) assert_true(fabs(tfx_alibi_slope(h, 8) - pow(2.0, -(h + 1))) < 1e-15);
  for (int h = 0; h < 16; h++) assert_true(fabs(tfx_alibi_slope(h, 16) - pow(2.0, -0.5 * (h + 1))) < 1e-15);
  /* ... and H = 6: get_slopes(4) + get_slopes(8)[0::2][:2] */
  static const double h6[6] = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
  for (int h = 0; h < 6; h++) assert_true(fabs(tfx_alibi_slope(h, 6) - h6[h]) < 1e-15);
  /* H = 12: get_slopes(8) + get_slopes(16)[0::2][:4] */
  for (int h = 0; h < 8; h++) assert_true(fabs(tfx_alibi_slope(h, 12) - pow(2.0, -(h + 1))) < 1e-15);
  for (int k = 0; k < 4; k++) assert_true(fabs(tfx_alibi_slope(8 + k, 12) - pow(2.0, -0.5 * (2 * k + 1))) < 1e-15);
  /* H = 1 and H = 3 */
  assert_true(fabs(tfx_alibi_slope(0, 1) - pow(2.0, -8.0)) < 1e-15);
  assert_true(fabs(tfx_alibi_slope(0, 3) - pow(2.0, -4.0)) < 1e-15);
  assert_true(fabs(tfx_alibi_slope(1, 3) - pow(2.0, -8.0)) < 1e-15);
  assert_true(fabs(tfx_alibi_slope(2, 3) - pow(2.0, -2.0)) < 1e-15);
}

/* The 8x8 table of allowed (i, j) of a pattern, rows i, as strings of 0/1. */
static void check_table(tfx_mask_kind mask, tfx_sparse sp, const char *const rows[8], const char *what) {
  tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL);
  n.mask = mask;
  n.sparse = sp;
  char err[160];
  if (tfx_check_attention(&n, err, sizeof err)) fail_msg("%s: %s", what, err);
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++)
      if (tfx_attn_allowed(&n, i, j, 8) != (rows[i][j] == '1'))
        fail_msg("%s: (i = %d, j = %d) should be %c", what, i, j, rows[i][j]);
}

static void test_mask_tables(void **state) {
  (void)state;
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_SLIDING;
  sp.window = 3;
  check_table(TFX_MASK_CAUSAL, sp,
              (const char *const[8]){"10000000", "11000000", "11100000", "01110000", "00111000", "00011100", "00001110",
                                     "00000111"},
              "sliding(3) causal");
  check_table(TFX_MASK_NONE, sp,
              (const char *const[8]){"11100000", "11110000", "11111000", "01111100", "00111110", "00011111", "00001111",
                                     "00000111"},
              "sliding(3) symmetric");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_DILATED;
  sp.dilation = 3;
  check_table(TFX_MASK_CAUSAL, sp,
              (const char *const[8]){"10000000", "01000000", "00100000", "10010000", "01001000", "00100100", "10010010",
                                     "01001001"},
              "dilated(3) causal");
  sp.window = 4; /* d in {0, 3} */
  check_table(TFX_MASK_NONE, sp,
              (const char *const[8]){"10010000", "01001000", "00100100", "10010010", "01001001", "00100100", "00010010",
                                     "00001001"},
              "dilated(3, window = 4) symmetric");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_STRIDED;
  sp.stride = 3; /* d < 3 or d % 3 == 0 */
  check_table(TFX_MASK_CAUSAL, sp,
              (const char *const[8]){"10000000", "11000000", "11100000", "11110000", "01111000", "00111100", "10011110",
                                     "01001111"},
              "strided(3) causal");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_FIXED;
  sp.stride = 4;
  sp.summary = 1; /* same block of 4, or j = 3 (mod 4) */
  check_table(TFX_MASK_CAUSAL, sp,
              (const char *const[8]){"10000000", "11000000", "11100000", "11110000", "00011000", "00011100", "00011110",
                                     "00011111"},
              "fixed(4, 1) causal");
  check_table(TFX_MASK_NONE, sp,
              (const char *const[8]){"11110001", "11110001", "11110001", "11110001", "00011111", "00011111", "00011111",
                                     "00011111"},
              "fixed(4, 1) bidirectional");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_LONGFORMER;
  sp.window = 2;
  sp.dilation = 1;
  sp.n_global = 1; /* token 0 global */
  sp.n_global_list = 1;
  sp.global_list[0] = 5; /* and token 5 */
  check_table(TFX_MASK_NONE, sp,
              (const char *const[8]){"11111111", "11100100", "11110100", "10111100", "10011100", "11111111", "10000111",
                                     "10000111"},
              "longformer(2, global 0 and 5) bidirectional");
  check_table(TFX_MASK_CAUSAL, sp,
              (const char *const[8]){"10000000", "11000000", "11100000", "10110000", "10011000", "11111100", "10000110",
                                     "10000111"},
              "longformer(2, global 0 and 5) causal");
  memset(&sp, 0, sizeof sp);
  sp.kind = TFX_SPARSE_BIGBIRD; /* blocks of 2: qb, kb in 0..3; window |qb - kb| <= 1, block 0 global */
  sp.block = 2;
  sp.n_global = 1;
  check_table(TFX_MASK_NONE, sp,
              (const char *const[8]){"11111111", "11111111", "11111100", "11111100", "11111111", "11111111", "11001111",
                                     "11001111"},
              "bigbird(2, global 1, random 0) bidirectional");
}

/* xorshift64 of the documented rule, written out independently */
static void test_bigbird_random(void **state) {
  (void)state;
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_BIGBIRD;
  sp.block = 4;
  sp.random = 3;
  sp.seed = 42;
  int64_t got[3];
  for (int64_t qb = 0; qb < 10; qb++) {
    for (int causal = 0; causal < 2; causal++) {
      tfx_bigbird_random_blocks(&sp, causal, 64, qb, got); /* 16 blocks */
      uint64_t x = 42ull + 0x9E3779B97F4A7C15ull * (uint64_t)(qb + 1);
      for (int k = 0; k < 3; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t range = causal ? (uint64_t)qb + 1 : 16;
        assert_int_equal(got[k], (int64_t)(x % range));
      }
    }
  }
  /* a draw is allowed exactly when the predicate says so */
  tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL);
  n.mask = TFX_MASK_NONE;
  n.sparse = sp;
  tfx_bigbird_random_blocks(&sp, 0, 64, 9, got);
  for (int k = 0; k < 3; k++) assert_true(tfx_attn_allowed(&n, 9 * 4 + 1, got[k] * 4 + 2, 64));
  int far = 0;
  for (int64_t kb = 0; kb < 16; kb++) {
    int drawn = kb == got[0] || kb == got[1] || kb == got[2];
    int near = kb >= 8 && kb <= 10;
    if (!drawn && !near) {
      assert_false(tfx_attn_allowed(&n, 9 * 4, kb * 4 + 3, 64));
      far++;
    }
  }
  assert_true(far >= 10);
}

/* ---- interpreter vs JIT ---- */

static void test_alibi(void **state) {
  (void)state;
  run_attn(4, 4, 8, TFX_MASK_CAUSAL, 1, NULL, "alibi MHA H=4");
  run_attn(6, 2, 12, TFX_MASK_CAUSAL, 1, NULL, "alibi GQA H=6");
  run_attn(5, 1, 8, TFX_MASK_CAUSAL, 1, NULL, "alibi MQA H=5");
  run_attn(6, 3, 8, TFX_MASK_NONE, 1, NULL, "alibi bidirectional H=6");
}

static tfx_sparse pattern(int which) {
  tfx_sparse sp = {0};
  switch (which) {
  case 0: sp.kind = TFX_SPARSE_SLIDING, sp.window = 3; break;
  case 1: sp.kind = TFX_SPARSE_DILATED, sp.dilation = 2; break;
  case 2: sp.kind = TFX_SPARSE_DILATED, sp.dilation = 3, sp.window = 10; break;
  case 3: sp.kind = TFX_SPARSE_STRIDED, sp.stride = 3; break;
  case 4: sp.kind = TFX_SPARSE_FIXED, sp.stride = 4, sp.summary = 2; break;
  case 5: sp.kind = TFX_SPARSE_LONGFORMER, sp.window = 3, sp.dilation = 1, sp.n_global = 2; break;
  case 6:
    sp.kind = TFX_SPARSE_LONGFORMER, sp.window = 4, sp.dilation = 2, sp.n_global_list = 2;
    sp.global_list[0] = 3, sp.global_list[1] = 11;
    break;
  case 7: sp.kind = TFX_SPARSE_BIGBIRD, sp.block = 3, sp.n_global = 1, sp.random = 2, sp.seed = 7; break;
  /* 8..: at the sizes of the flash tiles (8 and 16 rows x 8 or 16 keys): windows smaller and larger than a
     tile, strides equal to it and not */
  case 8: sp.kind = TFX_SPARSE_SLIDING, sp.window = 5; break;
  case 9: sp.kind = TFX_SPARSE_SLIDING, sp.window = 21; break;
  case 10: sp.kind = TFX_SPARSE_DILATED, sp.dilation = 2, sp.window = 40; break;
  case 11: sp.kind = TFX_SPARSE_DILATED, sp.dilation = 3; break;
  case 12: sp.kind = TFX_SPARSE_STRIDED, sp.stride = 16; break;
  case 13: sp.kind = TFX_SPARSE_FIXED, sp.stride = 16, sp.summary = 3; break;
  case 14: sp.kind = TFX_SPARSE_FIXED, sp.stride = 24, sp.summary = 24; break; /* every column a summary */
  case 15:
    sp.kind = TFX_SPARSE_LONGFORMER, sp.window = 9, sp.dilation = 1, sp.n_global = 2, sp.n_global_list = 1;
    sp.global_list[0] = 50;
    break;
  case 16: sp.kind = TFX_SPARSE_BIGBIRD, sp.block = 16, sp.n_global = 1, sp.random = 2, sp.seed = 11; break;
  default: sp.kind = TFX_SPARSE_BIGBIRD, sp.block = 5, sp.n_global = 0, sp.random = 1, sp.seed = 3; break;
  }
  return sp;
}
#define N_PATTERNS 18
#define TILE_PATTERNS 8 /* the first at tile sizes */
static const char *const k_pattern_names[N_PATTERNS] = {"sliding(3)",
                                                        "dilated(2)",
                                                        "dilated(3, window 10)",
                                                        "strided(3)",
                                                        "fixed(4, 2)",
                                                        "longformer(3, global 2)",
                                                        "longformer(4, dil 2, tokens 3 11)",
                                                        "bigbird(3, 1, 2, seed 7)",
                                                        "sliding(5)",
                                                        "sliding(21)",
                                                        "dilated(2, window 40)",
                                                        "dilated(3)",
                                                        "strided(16)",
                                                        "fixed(16, 3)",
                                                        "fixed(24, 24)",
                                                        "longformer(9, global 2 + token 50)",
                                                        "bigbird(16, 1, 2)",
                                                        "bigbird(5, 0, 1)"};

static void test_sparse_causal(void **state) {
  (void)state;
  for (int p = 0; p < 8; p++) {
    tfx_sparse sp = pattern(p);
    run_attn(4, 2, 8, TFX_MASK_CAUSAL, p == 5, &sp, k_pattern_names[p]);
  }
}

static void test_sparse_bidirectional(void **state) {
  (void)state;
  for (int p = 0; p < 8; p++) {
    tfx_sparse sp = pattern(p);
    run_attn(4, 4, 8, TFX_MASK_NONE, p == 3, &sp, k_pattern_names[p]);
  }
}

/* More keys than one key block (128), with blocks entirely masked. */
static void test_sparse_long(void **state) {
  (void)state;
  static const int calls[] = {200, 1, 1, 60, 1};
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_BIGBIRD, sp.block = 16; /* window only: the first key blocks are all masked */
  tfx_tg *t = tfx_tg_attn_graph(4, 2, 16, TFX_MASK_CAUSAL, 0, &sp, 300, 901);
  check_levels(t, calls, 5, "bigbird window-only long causal");
  tfx_tg_free(t);
  sp = pattern(0);
  sp.window = 40;
  t = tfx_tg_attn_graph(2, 1, 16, TFX_MASK_CAUSAL, 1, &sp, 300, 902);
  check_levels(t, calls, 5, "sliding(40) + alibi long causal");
  tfx_tg_free(t);
  static const int calls2[] = {150, 150};
  sp = pattern(6);
  t = tfx_tg_attn_graph(2, 2, 16, TFX_MASK_NONE, 0, &sp, 150, 903);
  check_levels(t, calls2, 2, "longformer long bidirectional");
  tfx_tg_free(t);
}

/* Rows t >= S + w - 1 of a cross-attention with sliding(w) to a memory of S
 * rows have no key: exactly zero in both. */
static int g_zero_from;
static void zero_rows(const float *ref, const float *out, int n, int ow, int64_t pos) {
  (void)pos;
  for (int t = 0; t < n; t++)
    for (int c = 0; c < ow; c++) {
      float r = ref[(size_t)t * ow + c], o = out[(size_t)t * ow + c];
      if (t >= g_zero_from) {
        if (r != 0.0f || o != 0.0f) fail_msg("row %d col %d: expected 0, got ref %g jit %g", t, c, r, o);
      } else if (r == 0.0f && o == 0.0f && c == 0) {
        fail_msg("row %d: unexpectedly all zero", t);
      }
    }
}

/* q from x [T, 24]; k, v from a static memory [S, 16] (a linear of a param)
 * or from another linear of x (T rows). */
static tfx_tg *cross_graph(int64_t S, int alibi, const tfx_sparse *sp, uint64_t seed) {
  const int H = 4, G = 2, d = 8;
  tfx_tg *t = tfx_tg_new("cross", 32, seed);
  int x = tfx_tg_input_f32(t, 24);
  int mem;
  if (S > 0) {
    int src = tfx_tg_param2(t, "src", S, 16, 1.0f);
    mem = linear(t, src, 16, 16, "menc", 0.5f); /* an "encoder" over static rows */
  } else {
    mem = linear(t, x, 16, 24, "menc", 0.5f);
  }
  int q = linear(t, x, H * d, 24, "wq", 0.5f);
  int k = linear(t, mem, G * d, 16, "wk", 0.5f);
  int v = linear(t, mem, G * d, 16, "wv", 0.5f);
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = H;
  a.kv_heads = G;
  a.head_dim = d;
  a.mask = TFX_MASK_NONE;
  a.alibi = alibi;
  if (sp) a.sparse = *sp;
  t->g->output = tfx_tg_add(t, &a);
  assert_true(t->g->output >= 0);
  return t;
}

static void test_cross_attention(void **state) {
  (void)state;
  tfx_tg *t = cross_graph(5, 0, NULL, 71);
  check_levels(t, k_encoder_calls, N_ENCODER, "cross to static memory S=5");
  tfx_tg_free(t);
  t = cross_graph(13, 1, NULL, 72);
  check_levels(t, k_encoder_calls, N_ENCODER, "cross + alibi to static memory S=13");
  tfx_tg_free(t);
  t = cross_graph(0, 0, NULL, 73);
  check_levels(t, k_encoder_calls, N_ENCODER, "cross to a T-row memory");
  tfx_tg_free(t);
  tfx_sparse sp = pattern(7);
  t = cross_graph(9, 0, &sp, 74);
  check_levels(t, k_encoder_calls, N_ENCODER, "cross + bigbird to static memory S=9");
  tfx_tg_free(t);
  /* memory of 4 rows and sliding(2): query rows 5.. see no key */
  sp = pattern(0);
  sp.window = 2;
  t = cross_graph(4, 0, &sp, 75);
  g_zero_from = 5;
  g_row_check = zero_rows;
  static const int calls[] = {12, 3, 7};
  check_levels(t, calls, 3, "cross + sliding(2), fully masked rows");
  g_row_check = NULL;
  tfx_tg_free(t);
}

/* A bidirectional encoder over static rows feeding a causal decoder's
 * cross-attention: prefill and decode agree with the interpreter. */
static tfx_tg *encdec_graph(int64_t max_seq, uint64_t seed) {
  const int H = 2, d = 8, D = 16, S = 6;
  tfx_tg *t = tfx_tg_new("encdec", max_seq, seed);
  int x = tfx_tg_input_f32(t, D);
  int src = tfx_tg_param2(t, "src", S, D, 1.0f);
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3,
                              (int[]){linear(t, src, H * d, D, "eq", 0.5f), linear(t, src, H * d, D, "ek", 0.5f),
                                      linear(t, src, H * d, D, "ev", 0.5f)});
  a.heads = H, a.kv_heads = H, a.head_dim = d, a.mask = TFX_MASK_NONE;
  int enc = tfx_tg_add(t, &a); /* f32[6, 16] */
  assert_true(enc >= 0);
  enc = tfx_tg_op2(t, TFX_OP_ADD, src, linear(t, enc, D, H * d, "eo", 0.5f));
  tfx_node s = tfx_node_proto(TFX_OP_ATTENTION, 3,
                              (int[]){linear(t, x, H * d, D, "sq", 0.5f), linear(t, x, H * d, D, "sk", 0.5f),
                                      linear(t, x, H * d, D, "sv", 0.5f)});
  s.heads = H, s.kv_heads = H, s.head_dim = d, s.mask = TFX_MASK_CAUSAL, s.alibi = 1;
  int h = tfx_tg_op2(t, TFX_OP_ADD, x, linear(t, tfx_tg_add(t, &s), D, H * d, "so", 0.5f));
  tfx_node c = tfx_node_proto(TFX_OP_ATTENTION, 3,
                              (int[]){linear(t, h, H * d, D, "cq", 0.5f), linear(t, enc, H * d, D, "ck", 0.5f),
                                      linear(t, enc, H * d, D, "cv", 0.5f)});
  c.heads = H, c.kv_heads = H, c.head_dim = d, c.mask = TFX_MASK_NONE;
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, h, linear(t, tfx_tg_add(t, &c), D, H * d, "co", 0.5f));
  assert_true(t->g->output >= 0);
  return t;
}

static void test_encoder_decoder(void **state) {
  (void)state;
  tfx_tg *t = encdec_graph(32, 81);
  check_levels(t, k_decoder_calls, N_DECODER, "encoder-decoder");
  tfx_tg_free(t);
}

/* The LLVM IR text of t's module at -O0 into *ll (free it) */
static void llvm_text(tfx_tg *t, const char *label, char **ll, size_t *len) {
  char err[256];
  FILE *f = open_memstream(ll, len);
  tfx_target_options o = {.opt_level = 0};
  if (tfx_backend_emit_text(t->g, &o, TFX_EMIT_LLVM_IR, f, err, sizeof err)) fail_msg("%s: emit: %s", label, err);
  fclose(f);
}

/* ---- MLA ---- */

static tfx_tg *mla_graph(int H, int dn, int dr, int dv, int r, int norm, tfx_rope_style style, int alibi,
                         const tfx_sparse *sp, int64_t max_seq, uint64_t seed) {
  const int64_t D = 24;
  tfx_tg *t = tfx_tg_new("mla", max_seq, seed);
  int x = tfx_tg_input_f32(t, D);
  int q = linear(t, x, (int64_t)H * (dn + dr), D, "wq", 0.5f);
  int ckv = linear(t, x, r + dr, D, "wkv_a", 0.5f);
  int wkv_b = tfx_tg_param2(t, "wkv_b", (int64_t)H * (dn + dv), r, 0.5f);
  int in[4] = {q, ckv, wkv_b, norm ? tfx_tg_param1(t, "kv_norm", r, 0.3f, 1.0f) : -1};
  tfx_node a = tfx_node_proto(TFX_OP_MLA_ATTENTION, norm ? 4 : 3, in);
  a.heads = H, a.head_dim = dn, a.rope_dim = dr, a.v_dim = dv, a.rank = r;
  a.theta = 10000.0, a.rope_style = style, a.eps = 1e-6;
  a.mask = TFX_MASK_CAUSAL;
  a.alibi = alibi;
  if (sp) a.sparse = *sp;
  t->g->output = tfx_tg_add(t, &a);
  assert_true(t->g->output >= 0);
  return t;
}

static void test_mla(void **state) {
  (void)state;
  tfx_tg *t = mla_graph(4, 8, 4, 6, 12, 1, TFX_ROPE_INTERLEAVED, 0, NULL, 40, 91);
  check_levels(t, k_decoder_calls, N_DECODER, "mla kv_norm rope interleaved");
  /* the KV cache holds the latent: r + dr floats per token */
  assert_int_equal(t->g->kv_bytes, 40 * (12 + 4) * 4);
  tfx_tg_free(t);
  t = mla_graph(3, 5, 6, 7, 19, 0, TFX_ROPE_HALF, 0, NULL, 40, 92);
  check_levels(t, k_decoder_calls, N_DECODER, "mla rope half, odd sizes");
  tfx_tg_free(t);
  t = mla_graph(2, 8, 0, 8, 16, 1, TFX_ROPE_INTERLEAVED, 1, NULL, 40, 93);
  check_levels(t, k_decoder_calls, N_DECODER, "mla without rope key, alibi");
  tfx_tg_free(t);
  tfx_sparse sp = pattern(0);
  t = mla_graph(4, 8, 8, 8, 16, 1, TFX_ROPE_INTERLEAVED, 0, &sp, 40, 94);
  check_levels(t, k_decoder_calls, N_DECODER, "mla + sliding(3)");
  tfx_tg_free(t);
  static const int calls[] = {150, 1, 1, 40, 1};
  t = mla_graph(2, 16, 8, 16, 32, 1, TFX_ROPE_HALF, 0, NULL, 200, 95);
  check_levels(t, calls, 5, "mla long context");
  tfx_tg_free(t);
  /* every other pattern walks the block-sparse table's runs (k_mla.c), in prefill and decode: the small
   * patterns over 40 positions, those at tile sizes over 200 (calls crossing tiles mid-way) */
  for (int k = 1; k < N_PATTERNS; k++) {
    if (k == 8 || k == 9) continue; /* sliding: an exact key range, no table */
    sp = pattern(k);
    char label[96];
    snprintf(label, sizeof label, "mla + %s", k_pattern_names[k]);
    t = mla_graph(2, 8, 4, 8, 12, 1, TFX_ROPE_INTERLEAVED, k == 3, &sp, k < TILE_PATTERNS ? 40 : 200,
                  (uint64_t)(96 + k));
    if (k < TILE_PATTERNS)
      check_levels(t, k_decoder_calls, N_DECODER, label);
    else
      check_levels(t, calls, 5, label);
    /* a dilated pattern is gathered (the query's residue class, k_mla.c), the others are not */
    char *ll = NULL;
    size_t len = 0;
    llvm_text(t, label, &ll, &len);
    if ((strstr(ll, "%gather_res") != NULL) != (sp.kind == TFX_SPARSE_DILATED))
      fail_msg("%s: the module %s a gathered walk", label, sp.kind == TFX_SPARSE_DILATED ? "lacks" : "has");
    free(ll);
    tfx_tg_free(t);
  }
}

/* ---- IR: printer and verifier ---- */

static void test_ir_text_and_checks(void **state) {
  (void)state;
  tfx_sparse sp = pattern(6);
  tfx_tg *t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, 1, &sp, 16, 5);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tfx_print_graph(t->g, f);
  fclose(f);
  assert_non_null(strstr(buf,
                         "%7 = attention(%2, %4, %6) {heads = 4, kv_heads = 2, head_dim = 8, mask = causal, "
                         "position = alibi, sparse = longformer(window = 4, dilation = 2, global = tokens(3, 11))}"));
  free(buf);
  char err[256];
  assert_int_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  t->g->nodes[t->g->output].sparse.window = 0;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "longformer window 0 must be >= 1"));
  tfx_tg_free(t);

  t = mla_graph(4, 8, 4, 6, 12, 1, TFX_ROPE_INTERLEAVED, 0, NULL, 40, 91);
  f = open_memstream(&buf, &len);
  tfx_print_graph(t->g, f);
  fclose(f);
  assert_non_null(strstr(buf, "%7 = mla_attention(%2, %4, %5, %6) {heads = 4, head_dim = 8, rope_dim = 4, v_dim = 6, "
                              "rank = 12, theta = 10000, style = interleaved, eps = 1e-06, mask = causal} "
                              ": f32[T, 24]"));
  free(buf);
  /* MLA needs the causal mask; the verifier says so */
  t->g->nodes[t->g->output].mask = TFX_MASK_NONE;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "mla_attention needs mask = causal"));
  tfx_tg_free(t);

  /* a static-row q with a causal mask is rejected by type inference */
  t = tfx_tg_new("bad", 16, 3);
  tfx_tg_input_f32(t, 8);
  int src = tfx_tg_param2(t, "src", 5, 8, 1.0f);
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){src, src, src});
  a.heads = 2, a.kv_heads = 2, a.head_dim = 4, a.mask = TFX_MASK_CAUSAL;
  assert_int_equal(tfx_graph_add(t->g, &a, err, sizeof err), -1);
  assert_non_null(strstr(err, "attention: q is f32[5, 8], expected f32[T, 8]"));
  a.mask = TFX_MASK_NONE;
  assert_true(tfx_graph_add(t->g, &a, err, sizeof err) >= 0);
  tfx_tg_free(t);
}

/* ---- the block rule ---- */

/* brute force over the block: NONE, FULL or PARTIAL */
static tfx_attn_block block_truth(const tfx_node *n, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t S) {
  int any = 0, all = 1;
  for (int64_t i = i0; i < i1; i++)
    for (int64_t j = j0; j < j1; j++) {
      int a = tfx_attn_allowed(n, i, j, S);
      any |= a;
      all &= a;
    }
  if (i0 >= i1 || j0 >= j1 || !any) return TFX_ATTN_BLOCK_NONE;
  return all ? TFX_ATTN_BLOCK_FULL : TFX_ATTN_BLOCK_PARTIAL;
}

/* all_allowed: the pattern allows every pair (a mask none then gives only FULL blocks) */
static void check_blocks(const tfx_node *n, int64_t S, uint64_t seed, int all_allowed, const char *what) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  int counts[3] = {0, 0, 0}, truth[3] = {0, 0, 0};
  for (int trial = 0; trial < 6000; trial++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int64_t i0, i1, j0, j1;
    if (trial % 3 == 2) { /* aligned tiles, as a tiled schedule asks */
      static const int64_t tq[3] = {4, 8, 16}, tk[3] = {4, 8, 16};
      int64_t qt = tq[x % 3], kt = tk[(x >> 4) % 3];
      i0 = (int64_t)((x >> 8) % (uint64_t)(S / qt)) * qt, j0 = (int64_t)((x >> 24) % (uint64_t)(S / kt)) * kt;
      i1 = i0 + qt, j1 = j0 + kt;
    } else { /* any block, mostly small (1 x 1 included) */
      int64_t lq = 1 + (int64_t)((x >> 8) % (trial % 3 ? 24u : 4u)),
              lk = 1 + (int64_t)((x >> 16) % (trial % 3 ? 24u : 4u));
      i0 = (int64_t)((x >> 24) % (uint64_t)(S - lq + 1)), j0 = (int64_t)((x >> 40) % (uint64_t)(S - lk + 1));
      i1 = i0 + lq, j1 = j0 + lk;
    }
    tfx_attn_block got = tfx_attn_block_allowed(n, i0, i1, j0, j1, S), want = block_truth(n, i0, i1, j0, j1, S);
    counts[got]++;
    truth[want]++;
    int ok = got == want;
    /* Longformer may say PARTIAL for a FULL block (the window and the globals together) */
    if (!ok && n->sparse.kind == TFX_SPARSE_LONGFORMER)
      ok = got == TFX_ATTN_BLOCK_PARTIAL && want == TFX_ATTN_BLOCK_FULL;
    if (!ok)
      fail_msg("%s: block [%lld, %lld) x [%lld, %lld): rule %d, truth %d", what, (long long)i0, (long long)i1,
               (long long)j0, (long long)j1, (int)got, (int)want);
  }
  /* the rule is not trivially PARTIAL: it rules out and in what the truth does */
  if ((truth[TFX_ATTN_BLOCK_NONE] && !counts[TFX_ATTN_BLOCK_NONE]) ||
      (truth[TFX_ATTN_BLOCK_FULL] && !counts[TFX_ATTN_BLOCK_FULL]))
    fail_msg("%s: none %d, partial %d, full %d (truth %d, %d, %d)", what, counts[0], counts[1], counts[2], truth[0],
             truth[1], truth[2]);
  /* and the random blocks exercise it: every kind of block occurs where the pattern has it */
  if (!(n->mask == TFX_MASK_NONE && (n->sparse.kind == TFX_SPARSE_NONE || all_allowed)))
    if (!truth[TFX_ATTN_BLOCK_NONE] || !truth[TFX_ATTN_BLOCK_PARTIAL] || !truth[TFX_ATTN_BLOCK_FULL])
      fail_msg("%s: the random blocks give none %d, partial %d, full %d", what, truth[0], truth[1], truth[2]);
  /* an empty block holds no pair */
  assert_int_equal(tfx_attn_block_allowed(n, 5, 5, 0, 9, S), TFX_ATTN_BLOCK_NONE);
  assert_int_equal(tfx_attn_block_allowed(n, 0, 9, 7, 7, S), TFX_ATTN_BLOCK_NONE);
}

static void test_block_rule(void **state) {
  (void)state;
  const int64_t S = 96;
  char what[128];
  for (int p = -1; p < 12; p++) {
    tfx_sparse sp = {0};
    if (p >= 0 && p < 8) sp = pattern(p);
    if (p == 8) sp.kind = TFX_SPARSE_FIXED, sp.stride = 5, sp.summary = 5; /* every column a summary */
    if (p == 9) sp.kind = TFX_SPARSE_STRIDED, sp.stride = 1;
    if (p == 10) /* globals listed inside and beyond the leading ones, twice */
      sp.kind = TFX_SPARSE_LONGFORMER, sp.window = 2, sp.dilation = 3, sp.n_global = 3, sp.n_global_list = 4,
      sp.global_list[0] = 1, sp.global_list[1] = 40, sp.global_list[2] = 41, sp.global_list[3] = 40;
    if (p == 11) sp.kind = TFX_SPARSE_BIGBIRD, sp.block = 7, sp.n_global = 0, sp.random = 3, sp.seed = 12345;
    for (int causal = 0; causal < 2; causal++) {
      tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL);
      n.heads = n.kv_heads = 1, n.head_dim = 4;
      n.mask = causal ? TFX_MASK_CAUSAL : TFX_MASK_NONE;
      n.sparse = sp;
      snprintf(what, sizeof what, "%s (%s)",
               p < 0   ? "no pattern"
               : p < 8 ? k_pattern_names[p]
                       : "extra",
               causal ? "causal" : "none");
      check_blocks(&n, S, (uint64_t)(p + 2) * 2 + (uint64_t)causal, p == 8 || p == 9, what);
    }
  }
  /* MLA (always causal) with a sliding window */
  tfx_node m = tfx_node_proto(TFX_OP_MLA_ATTENTION, 0, NULL);
  m.mask = TFX_MASK_CAUSAL;
  m.sparse = pattern(0);
  check_blocks(&m, S, 77, 0, "mla sliding(3)");
  /* exact answers on a causal tile: the diagonal tile is partial, below it full, above it none */
  tfx_node c = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL);
  c.mask = TFX_MASK_CAUSAL;
  assert_int_equal(tfx_attn_block_allowed(&c, 16, 32, 16, 32, S), TFX_ATTN_BLOCK_PARTIAL);
  assert_int_equal(tfx_attn_block_allowed(&c, 16, 32, 0, 16, S), TFX_ATTN_BLOCK_FULL);
  assert_int_equal(tfx_attn_block_allowed(&c, 16, 32, 32, 48, S), TFX_ATTN_BLOCK_NONE);
  c.sparse = pattern(0); /* sliding(3): a tile two tiles back sees nothing */
  assert_int_equal(tfx_attn_block_allowed(&c, 32, 48, 0, 16, S), TFX_ATTN_BLOCK_NONE);
}

/* ---- schedules ---- */

static char *print_to_string(const tfx_graph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tfx_print_graph(g, f);
  fclose(f);
  return buf;
}

static void run_schedule_pass(tfx_graph *g) {
  tfx_pass_options o;
  tfx_pass_options_init(&o, 2);
  o.passes = "schedule_attention";
  o.verify_each = 1;
  char err[256];
  if (tfx_run_passes(g, &o, err, sizeof err)) fail_msg("schedule_attention: %s", err);
}

static void test_schedule_pass(void **state) {
  (void)state;
  char err[256];
  /* causal attention without a pattern: flash, printed among the attributes */
  tfx_tg *t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, 1, NULL, 16, 5);
  tfx_node *a = &t->g->nodes[t->g->output];
  assert_int_equal(a->attn_schedule, TFX_ATTN_SCHED_UNSET);
  assert_int_equal(tfx_attn_schedule_of(t->g, a, 0), TFX_ATTN_SCHED_FLASH); /* -O0: the same rule */
  char *txt = print_to_string(t->g);
  assert_null(strstr(txt, "schedule ="));
  free(txt);
  run_schedule_pass(t->g);
  a = &t->g->nodes[t->g->output];
  assert_int_equal(a->attn_schedule, TFX_ATTN_SCHED_FLASH);
  assert_int_equal(tfx_attn_schedule_of(t->g, a, 1), TFX_ATTN_SCHED_ROW); /* decode: one query row */
  txt = print_to_string(t->g);
  assert_non_null(strstr(txt, "{heads = 4, kv_heads = 2, head_dim = 8, mask = causal, position = alibi, "
                              "schedule = flash}"));
  free(txt);
  tfx_graph_stats gs;
  tfx_pass_graph_stats(t->g, &gs);
  assert_int_equal(gs.attn_nodes, 1);
  assert_int_equal(gs.attn_schedules[TFX_ATTN_SCHED_FLASH], 1);
  assert_int_equal(gs.attn_schedules[TFX_ATTN_SCHED_ROW], 0);
  /* a forced schedule stays; one that does not apply is refused */
  a->attn_schedule = TFX_ATTN_SCHED_ROW;
  run_schedule_pass(t->g);
  assert_int_equal(t->g->nodes[t->g->output].attn_schedule, TFX_ATTN_SCHED_ROW);
  t->g->nodes[t->g->output].attn_schedule = TFX_ATTN_SCHED_COUNT;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  tfx_tg_free(t);
  /* schedule { attention = dense }: row */
  t = tfx_tg_attn_graph(4, 4, 8, TFX_MASK_NONE, 0, NULL, 16, 6);
  t->g->schedule.attention = TFX_SCHED_ATTN_DENSE;
  run_schedule_pass(t->g);
  assert_int_equal(t->g->nodes[t->g->output].attn_schedule, TFX_ATTN_SCHED_ROW);
  tfx_tg_free(t);
  /* a sparse pattern: block_sparse, even with attention = flash; flash is refused; attention = dense: row */
  tfx_sparse sp = pattern(4);
  t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, 0, &sp, 16, 7);
  t->g->schedule.attention = TFX_SCHED_ATTN_FLASH;
  run_schedule_pass(t->g);
  assert_int_equal(t->g->nodes[t->g->output].attn_schedule, TFX_ATTN_SCHED_BLOCK_SPARSE);
  assert_int_equal(tfx_attn_schedule_of(t->g, &t->g->nodes[t->g->output], 1), TFX_ATTN_SCHED_ROW);
  txt = print_to_string(t->g);
  assert_non_null(strstr(txt, "sparse = fixed(stride = 4, summary = 2), schedule = block_sparse}"));
  free(txt);
  t->g->nodes[t->g->output].attn_schedule = TFX_ATTN_SCHED_FLASH;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "schedule flash (2) does not apply"));
  t->g->nodes[t->g->output].attn_schedule = TFX_ATTN_SCHED_UNSET;
  t->g->schedule.attention = TFX_SCHED_ATTN_DENSE;
  run_schedule_pass(t->g);
  assert_int_equal(t->g->nodes[t->g->output].attn_schedule, TFX_ATTN_SCHED_ROW);
  tfx_tg_free(t);
  /* block_sparse needs a pattern: refused on attention without one */
  t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, 0, NULL, 16, 8);
  t->g->nodes[t->g->output].attn_schedule = TFX_ATTN_SCHED_BLOCK_SPARSE;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "schedule block_sparse (3) does not apply"));
  tfx_tg_free(t);
  /* MLA: row; flash is refused */
  t = mla_graph(4, 8, 4, 6, 12, 1, TFX_ROPE_INTERLEAVED, 0, NULL, 40, 91);
  run_schedule_pass(t->g);
  assert_int_equal(t->g->nodes[t->g->output].attn_schedule, TFX_ATTN_SCHED_ROW);
  tfx_pass_graph_stats(t->g, &gs);
  assert_int_equal(gs.attn_schedules[TFX_ATTN_SCHED_ROW], 1);
  t->g->nodes[t->g->output].attn_schedule = TFX_ATTN_SCHED_FLASH;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  t->g->nodes[t->g->output].attn_schedule = TFX_ATTN_SCHED_BLOCK_SPARSE;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  tfx_tg_free(t);

  /* from the source: schedule { attention = ... } through the -O2 pipeline, and -O0 (no pass) */
  static const char *const sched_src[3] = {"", "schedule {\n  attention = dense\n}\n",
                                           "schedule {\n  attention = flash\n}\n"};
  static const int sched_want[3] = {TFX_ATTN_SCHED_FLASH, TFX_ATTN_SCHED_ROW, TFX_ATTN_SCHED_FLASH};
  for (int k = 0; k < 3; k++)
    for (int level = 0; level <= 2; level += 2) {
      char src[1024];
      snprintf(src, sizeof src,
               "model s\nconst max_seq = 16\n"
               "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
               "  param wq : f32[8, 8]\n  param wk : f32[8, 8]\n  param wv : f32[8, 8]\n  param wo : f32[8, 8]\n"
               "  return x + attention(x, wq, wk, wv, wo, heads = 2, mask = causal)\n"
               "}\n%s",
               sched_src[k]);
      tfx_build_options bo = {.weights = "random", .opt_level = level};
      tfx_build b;
      assert_int_equal(tfx_build_source("s.tfx", src, &bo, &b), 0);
      int found = 0;
      for (int i = 0; i < b.graph->n_nodes; i++) {
        const tfx_node *n = &b.graph->nodes[i];
        if (n->op != TFX_OP_ATTENTION) continue;
        found++;
        assert_int_equal(n->attn_schedule, level ? sched_want[k] : TFX_ATTN_SCHED_UNSET);
        assert_int_equal(tfx_attn_schedule_of(b.graph, n, 0), sched_want[k]);
      }
      assert_int_equal(found, 1);
      tfx_build_free(&b);
    }

  /* tfxc: --emit=ir shows every node's schedule, --stats counts them (5 layers of stories260k) */
  char ex[4096];
  snprintf(ex, sizeof ex, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  char *out = NULL, *errs = NULL;
  char *ir[] = {TFXC_PATH, ex, "--emit=ir", NULL};
  assert_int_equal(tfx_test_run(ir, &out, &errs), 0);
  int n_flash = 0;
  for (const char *p = out; (p = strstr(p, "mask = causal, schedule = flash}")); p++) n_flash++;
  assert_int_equal(n_flash, 5);
  free(out);
  free(errs);
  char *st[] = {TFXC_PATH, ex, "--stats", NULL};
  assert_int_equal(tfx_test_run(st, &out, &errs), 0);
  assert_non_null(strstr(out, "attention:         5 nodes, schedules row 0, flash 5, block_sparse 0 (prefill)"));
  free(out);
  free(errs);
  snprintf(ex, sizeof ex, "%s/examples/sparse/masks.tfx", TFX_SOURCE_DIR);
  char *st0[] = {TFXC_PATH, ex, "-O0", "--stats", "--weights", "random", NULL};
  assert_int_equal(tfx_test_run(st0, &out, &errs), 0);
  /* -O0 runs no pass: the backend's rule (the same function) gives every sparse layer block_sparse */
  assert_non_null(strstr(out, "attention:         4 nodes, schedules row 0, flash 0, block_sparse 4 (prefill)"));
  free(out);
  free(errs);
}

/* Every call's JIT output, appended (g_row_check), per schedule. */
static float *g_capture;
static size_t g_capture_n, g_capture_cap;
static void capture_rows(const float *ref, const float *out, int n, int ow, int64_t pos) {
  (void)ref, (void)pos;
  size_t add = (size_t)n * (size_t)ow;
  if (g_capture_n + add > g_capture_cap) {
    g_capture_cap = (g_capture_n + add) * 2;
    g_capture = realloc(g_capture, g_capture_cap * sizeof(float));
    assert_non_null(g_capture);
  }
  memcpy(g_capture + g_capture_n, out, add * sizeof(float));
  g_capture_n += add;
}

/* 1 when some function of ll whose name starts with `fn` holds `needle` */
static int body_has(const char *ll, const char *fn, const char *needle) {
  char def[160];
  snprintf(def, sizeof def, "define internal void @%s", fn);
  for (const char *p = strstr(ll, def); p; p = strstr(p + 1, def)) {
    const char *end = strstr(p, "\n}\n");
    const char *hit = strstr(p, needle);
    if (hit && (!end || hit < end)) return 1;
  }
  return 0;
}

/* Forces each schedule of `scheds` on every attention node of t and checks
 * it against the interpreter (-O0 and -O3, check_levels), then the
 * schedules' outputs against each other. */
static void check_schedules(tfx_tg *t, const int *scheds, int n_scheds, const int *ns, int n_calls, const char *what) {
  float *outs[TFX_ATTN_SCHED_COUNT] = {0};
  size_t lens[TFX_ATTN_SCHED_COUNT] = {0};
  uint64_t rng = t->rng; /* every schedule gets the same inputs */
  for (int k = 0; k < n_scheds; k++) {
    t->rng = rng;
    int forced = 0;
    for (int i = 0; i < t->g->n_nodes; i++) {
      tfx_node *n = &t->g->nodes[i];
      if (n->op != TFX_OP_ATTENTION && n->op != TFX_OP_MLA_ATTENTION) continue;
      n->attn_schedule = scheds[k];
      forced++;
    }
    assert_true(forced > 0);
    char label[192];
    snprintf(label, sizeof label, "%s, schedule %s", what, tfx_attn_schedule_name(scheds[k]));
    g_capture = NULL, g_capture_n = g_capture_cap = 0;
    g_row_check = capture_rows;
    check_levels(t, ns, n_calls, label);
    g_row_check = NULL;
    outs[scheds[k]] = g_capture, lens[scheds[k]] = g_capture_n;
    /* the backend ran the forced schedule: the forward entry's body is the schedule's */
    char *ll = NULL;
    size_t len = 0;
    llvm_text(t, label, &ll, &len);
    int flash = strstr(ll, "@tfx_body_fwd_flash_attention_") != NULL;
    if (flash != (scheds[k] == TFX_ATTN_SCHED_FLASH))
      fail_msg("%s: the module %s a flash body", label, flash ? "has" : "lacks");
    int bsparse = strstr(ll, "@tfx_body_fwd_bsparse_attention_") != NULL;
    if (bsparse != (scheds[k] == TFX_ATTN_SCHED_BLOCK_SPARSE))
      fail_msg("%s: the module %s a block-sparse body", label, bsparse ? "has" : "lacks");
    /* the decode entry walks the block-sparse table of a pattern the key range leaves inexact; a dilated
       pattern (k >= 2) is gathered instead: the forward body (its tiles, or the row walk) and the decode
       entry's walk visit one residue class (gather_res), block-sparse with the gathered table */
    int gathered = 0;
    for (int i = 0; i < t->g->n_nodes; i++) {
      const tfx_node *n = &t->g->nodes[i];
      tfx_node sub;
      int gk = n->op == TFX_OP_ATTENTION ? tfx_attn_gather(n, &sub) : 0;
      int want = n->op == TFX_OP_ATTENTION && n->mask == TFX_MASK_CAUSAL && n->sparse.kind != TFX_SPARSE_NONE &&
                 n->sparse.kind != TFX_SPARSE_SLIDING && gk < 2;
      if (want && !strstr(ll, "@tfx_bs_")) fail_msg("%s: no block-sparse table in the module", label);
      if (gk < 2) continue;
      gathered = 1;
      int bs = scheds[k] == TFX_ATTN_SCHED_BLOCK_SPARSE;
      if (!body_has(ll, bs ? "tfx_body_fwd_bsparse_attention_" : "tfx_body_fwd_attention_", "%gather_res"))
        fail_msg("%s: the forward body does not gather", label);
      if (bs && !strstr(ll, "@tfx_bsg_")) fail_msg("%s: no gathered block-sparse table", label);
      if (n->mask == TFX_MASK_CAUSAL && !body_has(ll, "tfx_body_dec_attention_", "%gather_res"))
        fail_msg("%s: the decode entry does not gather", label);
    }
    if (!gathered && strstr(ll, "%gather_res")) fail_msg("%s: a gathered walk without a dilated pattern", label);
    free(ll);
  }
  /* the schedules agree (each level's outputs, -O0 then -O3) */
  for (int k = 1; k < n_scheds; k++) {
    const float *a = outs[scheds[0]], *b = outs[scheds[k]];
    assert_int_equal(lens[scheds[0]], lens[scheds[k]]);
    double maxref = 1.0, diff = 0.0;
    for (size_t i = 0; i < lens[scheds[0]]; i++) {
      if (fabs(a[i]) > maxref) maxref = fabs(a[i]);
      if (fabs((double)a[i] - b[i]) > diff) diff = fabs((double)a[i] - b[i]);
    }
    if (!(diff <= 2 * TFX_TG_TOL * maxref))
      fail_msg("%s: schedules %s and %s differ by %g", what, tfx_attn_schedule_name(scheds[0]),
               tfx_attn_schedule_name(scheds[k]), diff);
  }
  for (int s = 0; s < TFX_ATTN_SCHED_COUNT; s++) free(outs[s]);
}

static const int k_both[2] = {TFX_ATTN_SCHED_ROW, TFX_ATTN_SCHED_FLASH};
static const int k_row[1] = {TFX_ATTN_SCHED_ROW};

static void test_schedules_agree(void **state) {
  (void)state;
  /* prefills longer than a flash tile (W rows) and a key group, then decode steps and chunks */
  static const int dec[] = {37, 1, 1, 19, 1, 2, 1};
  static const int enc[] = {37, 1, 16, 3}, cross[] = {29, 1, 16, 3}; /* cross_graph: max_seq 32 */
  const int nd = (int)(sizeof dec / sizeof dec[0]), ne = (int)(sizeof enc / sizeof enc[0]);
  tfx_tg *t = tfx_tg_attn_graph(4, 4, 8, TFX_MASK_CAUSAL, 0, NULL, 80, 301);
  check_schedules(t, k_both, 2, dec, nd, "causal MHA");
  tfx_tg_free(t);
  t = tfx_tg_attn_graph(6, 2, 12, TFX_MASK_CAUSAL, 0, NULL, 80, 302);
  check_schedules(t, k_both, 2, dec, nd, "causal GQA d=12");
  tfx_tg_free(t);
  t = tfx_tg_attn_graph(5, 1, 8, TFX_MASK_CAUSAL, 1, NULL, 80, 303);
  check_schedules(t, k_both, 2, dec, nd, "alibi MQA H=5");
  tfx_tg_free(t);
  t = tfx_tg_attn_graph(6, 3, 8, TFX_MASK_NONE, 1, NULL, 80, 304);
  check_schedules(t, k_both, 2, enc, ne, "alibi bidirectional");
  tfx_tg_free(t);
  t = cross_graph(13, 1, NULL, 305);
  check_schedules(t, k_both, 2, cross, ne, "cross + alibi to static memory S=13");
  tfx_tg_free(t);
  t = cross_graph(0, 0, NULL, 306);
  check_schedules(t, k_both, 2, cross, ne, "cross to a T-row memory");
  tfx_tg_free(t);
  t = encdec_graph(80, 307); /* an encoder over static rows, a causal decoder, cross-attention */
  check_schedules(t, k_both, 2, dec, nd, "encoder-decoder");
  tfx_tg_free(t);
  /* sparse patterns and MLA have one schedule: row (forced explicitly) */
  for (int p = 0; p < 8; p += 3) {
    tfx_sparse sp = pattern(p);
    t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, 0, &sp, 80, 310 + (uint64_t)p);
    check_schedules(t, k_row, 1, dec, nd, k_pattern_names[p]);
    tfx_tg_free(t);
  }
  t = mla_graph(4, 8, 4, 6, 12, 1, TFX_ROPE_INTERLEAVED, 1, NULL, 80, 320);
  check_schedules(t, k_row, 1, dec, nd, "mla + alibi");
  tfx_tg_free(t);
}

/* ---- the block-sparse schedule ---- */

/* The block rule on every aligned tile of [0, S) x [0, S) (the last ones cut
 * short: S is not a multiple of the tile), exactly as the table asks it,
 * against the element rule; returns the count of NONE and FULL tiles. */
static void check_tiles_exhaustive(const tfx_node *n, int64_t S, int64_t qt, int64_t kt, int *nones, int *fulls,
                                   const char *what) {
  for (int64_t i0 = 0; i0 < S; i0 += qt)
    for (int64_t j0 = 0; j0 < S; j0 += kt) {
      int64_t i1 = i0 + qt < S ? i0 + qt : S, j1 = j0 + kt < S ? j0 + kt : S;
      tfx_attn_block got = tfx_attn_block_allowed(n, i0, i1, j0, j1, S), want = block_truth(n, i0, i1, j0, j1, S);
      int ok = got == want || (n->sparse.kind == TFX_SPARSE_LONGFORMER && got == TFX_ATTN_BLOCK_PARTIAL &&
                               want == TFX_ATTN_BLOCK_FULL);
      if (!ok)
        fail_msg("%s: tile %lldx%lld [%lld, %lld) x [%lld, %lld): rule %d, truth %d", what, (long long)qt,
                 (long long)kt, (long long)i0, (long long)i1, (long long)j0, (long long)j1, (int)got, (int)want);
      *nones += got == TFX_ATTN_BLOCK_NONE;
      *fulls += got == TFX_ATTN_BLOCK_FULL;
    }
}

static void test_block_rule_exhaustive(void **state) {
  (void)state;
  static const int64_t sizes[] = {1, 2, 3, 4, 5, 8, 16};
  const int ns = (int)(sizeof sizes / sizeof sizes[0]);
  char what[160];
  for (int p = 0; p < N_PATTERNS; p++) {
    for (int causal = 0; causal < 2; causal++) {
      tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL);
      n.heads = n.kv_heads = 1, n.head_dim = 4;
      n.mask = causal ? TFX_MASK_CAUSAL : TFX_MASK_NONE;
      n.sparse = pattern(p);
      snprintf(what, sizeof what, "%s (%s)", k_pattern_names[p], causal ? "causal" : "none");
      int nones = 0, fulls = 0;
      for (int a = 0; a < ns; a++)
        for (int c = 0; c < ns; c++) check_tiles_exhaustive(&n, 75, sizes[a], sizes[c], &nones, &fulls, what);
      /* the 16 x 16 tiles of the patterns at tile sizes have tiles to skip */
      if (p >= TILE_PATTERNS && p != 14 && causal) {
        int n16 = 0, f16 = 0;
        check_tiles_exhaustive(&n, 75, 16, 16, &n16, &f16, what);
        if (!n16) fail_msg("%s: 16x16 tiles: none empty", what);
      }
      if (!nones && !(p == 14 && !causal)) fail_msg("%s: no empty tile", what);
      if (!fulls) fail_msg("%s: no full tile", what);
    }
  }
}

/* tfx_attn_gather: a dilated pattern's pairs are one residue class's pairs of the gathered pattern on
 * compressed indices, exactly (every pair of [0, 40)^2, both masks); other patterns have no gathered form. */
static void test_gather_rule(void **state) {
  (void)state;
  static const int ks[] = {2, 3, 5}, ws[] = {0, 1, 4, 7, 10, 13};
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 6; b++)
      for (int causal = 0; causal < 2; causal++) {
        tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL), sub;
        n.heads = n.kv_heads = 1, n.head_dim = 4;
        n.mask = causal ? TFX_MASK_CAUSAL : TFX_MASK_NONE;
        n.sparse = (tfx_sparse){.kind = TFX_SPARSE_DILATED, .dilation = ks[a], .window = ws[b]};
        int k = tfx_attn_gather(&n, &sub);
        assert_int_equal(k, ks[a]);
        assert_int_equal(sub.mask, n.mask);
        assert_int_equal(sub.sparse.kind, ws[b] ? TFX_SPARSE_SLIDING : TFX_SPARSE_NONE);
        for (int64_t i = 0; i < 40; i++)
          for (int64_t j = 0; j < 40; j++) {
            int want = tfx_attn_allowed(&n, i, j, 40);
            int got = i % k == j % k && tfx_attn_allowed(&sub, i / k, j / k, 40);
            if (got != want)
              fail_msg("dilated(%d, window %d) %s: (%lld, %lld) gathered %d, rule %d", k, ws[b],
                       causal ? "causal" : "none", (long long)i, (long long)j, got, want);
          }
      }
  for (int p = 0; p < N_PATTERNS; p++) { /* dilation 1 (a sliding window), Longformer's dilated window: none */
    tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL), sub;
    n.sparse = pattern(p);
    if (tfx_attn_gather(&n, &sub) != (n.sparse.kind == TFX_SPARSE_DILATED ? n.sparse.dilation : 0))
      fail_msg("%s: gathered form %d", k_pattern_names[p], tfx_attn_gather(&n, &sub));
  }
  tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 0, NULL), sub;
  n.sparse = (tfx_sparse){.kind = TFX_SPARSE_DILATED, .dilation = 1, .window = 5};
  assert_int_equal(tfx_attn_gather(&n, &sub), 0);
}

/* The block-sparse schedule against the interpreter (and the row schedule)
 * for every pattern at tile sizes, causal (a prefill crossing tiles, decode
 * steps, chunks starting mid-tile) and bidirectional (T not a multiple of
 * the tile), with ALiBi on some. */
static const int k_bs[2] = {TFX_ATTN_SCHED_ROW, TFX_ATTN_SCHED_BLOCK_SPARSE};

static void test_block_sparse_schedule(void **state) {
  (void)state;
  static const int dec[] = {70, 1, 1, 33, 1, 16, 2, 17, 1};
  static const int enc[] = {75, 1, 16, 33};
  const int nd = (int)(sizeof dec / sizeof dec[0]), ne = (int)(sizeof enc / sizeof enc[0]);
  char what[160];
  for (int p = TILE_PATTERNS; p < N_PATTERNS; p++) {
    tfx_sparse sp = pattern(p);
    snprintf(what, sizeof what, "block-sparse %s", k_pattern_names[p]);
    tfx_tg *t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, p % 3 == 1, &sp, 160, 500 + (uint64_t)p);
    check_schedules(t, k_bs, 2, dec, nd, what);
    tfx_tg_free(t);
    t = tfx_tg_attn_graph(2, 1, 12, TFX_MASK_NONE, p % 3 == 2, &sp, 80, 520 + (uint64_t)p);
    check_schedules(t, k_bs, 2, enc, ne, what);
    tfx_tg_free(t);
  }
  /* the small patterns of the other tests (windows and blocks under a tile) */
  for (int p = 1; p < 8; p += 3) {
    tfx_sparse sp = pattern(p);
    snprintf(what, sizeof what, "block-sparse %s", k_pattern_names[p]);
    tfx_tg *t = tfx_tg_attn_graph(4, 4, 8, TFX_MASK_CAUSAL, 0, &sp, 160, 540 + (uint64_t)p);
    check_schedules(t, k_bs, 2, dec, nd, what);
    tfx_tg_free(t);
  }
  /* dilated patterns, gathered (k = 2, 3, 5; windows 0, not multiples of k, under k (the diagonal alone),
     under and over a tile of compressed positions); causal chunks start at positions of every residue (70,
     71, 105, 106, 122, 124) */
  static const int dil[][4] = {/* k, window, ALiBi (1 causal, 2 bidirectional), bidirectional too */
                               {2, 0, 1, 1},  {3, 10, 0, 0}, {5, 13, 2, 1}, {2, 7, 0, 0},
                               {3, 61, 1, 0}, {3, 2, 0, 0},  {5, 0, 0, 1}};
  for (int e = 0; e < (int)(sizeof dil / sizeof dil[0]); e++) {
    tfx_sparse dp = {.kind = TFX_SPARSE_DILATED, .dilation = dil[e][0], .window = dil[e][1]};
    snprintf(what, sizeof what, "block-sparse dilated(%d, window %d)%s", dil[e][0], dil[e][1],
             dil[e][2] ? " + alibi" : "");
    tfx_tg *t = tfx_tg_attn_graph(4, 2, 8, TFX_MASK_CAUSAL, dil[e][2] == 1, &dp, 160, 600 + (uint64_t)e);
    check_schedules(t, k_bs, 2, dec, nd, what);
    tfx_tg_free(t);
    if (!dil[e][3]) continue; /* bidirectional: T = 75 and 33, not multiples of k or the tile */
    t = tfx_tg_attn_graph(2, 1, 12, TFX_MASK_NONE, dil[e][2] == 2, &dp, 80, 620 + (uint64_t)e);
    check_schedules(t, k_bs, 2, enc, ne, what);
    tfx_tg_free(t);
  }
  /* cross-attention with a pattern to a static memory */
  tfx_sparse sp = pattern(9);
  tfx_tg *t = cross_graph(37, 1, &sp, 560);
  static const int cross[] = {29, 1, 16, 3};
  check_schedules(t, k_bs, 2, cross, 4, "block-sparse cross sliding(21), S = 37");
  tfx_tg_free(t);
}

int main(int argc, char **argv) {
  if (argc > 1) cmocka_set_test_filter(argv[1]); /* one test by name */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alibi_slopes),
      cmocka_unit_test(test_mask_tables),
      cmocka_unit_test(test_bigbird_random),
      cmocka_unit_test(test_ir_text_and_checks),
      cmocka_unit_test(test_alibi),
      cmocka_unit_test(test_sparse_causal),
      cmocka_unit_test(test_sparse_bidirectional),
      cmocka_unit_test(test_sparse_long),
      cmocka_unit_test(test_cross_attention),
      cmocka_unit_test(test_encoder_decoder),
      cmocka_unit_test(test_mla),
      cmocka_unit_test(test_block_rule),
      cmocka_unit_test(test_schedule_pass),
      cmocka_unit_test(test_schedules_agree),
      cmocka_unit_test(test_block_rule_exhaustive),
      cmocka_unit_test(test_gather_rule),
      cmocka_unit_test(test_block_sparse_schedule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
