/* tests/test_batch.c — batched decoding over the paged KV cache (tfx_batch_*
 * of tfx/tfx.h, the model's batch entry) against one tfx_session per
 * sequence (the oracle: the single-sequence path, itself checked against
 * llama2.c, PyTorch and the interpreter by the other tests). Every step's
 * logits of every sequence must equal its session's within LOGIT_TOL and
 * both must pick the same greedy id (or two ids whose logits tie within the
 * tolerance; both then continue with the batch's), while sequences of
 * different prompt lengths join (prefill chunks in the same step as other
 * sequences' decode tokens), leave and have their ids and blocks reused; a
 * pool that runs out refuses exactly the sequence that asked
 * (TFX_ERR_KV_FULL, its position unchanged) and the others go on
 * unchanged; forks share a prefix's blocks copy-on-write; a step of more
 * rows than max_seq runs in several calls. Models: the real stories260K
 * (../shared/models), and on random weights a GQA LLaMA, GPT-2 (learned
 * positions), BLOOM (ALiBi) and a sliding-window model; at -O0 and -O3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../include/tfx/jit.h"
#include "support/testutil.h"

/* max |batch - session| <= LOGIT_TOL * max(1, max |session|) over a row: the
 * batch entry runs the prefill kernels over rows a session runs with its
 * decode kernels (other summation orders in the GEMM). */
#define LOGIT_TOL 1e-5
/* quantized weights: the batch entry's int8 tiles and the session's decode
 * kernels add the same integer dot products in another f32 order, and an
 * activation differing in its last bit may quantize to the neighbouring
 * int8 code in the next linear (one step of its block's scale) */
#define LOGIT_TOL_Q8 2e-3
/* many_rows' steps of 5 and more rows (the repacked tiles, whose sums run in
 * another order than the session's one-row decode kernel): an activation one
 * last bit apart can quantize to the neighbouring int8 code and move that row
 * by more (seen: 0.6-0.9% of its largest logit, an isolated row, the next
 * steps back within LOGIT_TOL_Q8); there at most one row in 32 (at least one)
 * may lie between LOGIT_TOL_Q8 and LOGIT_FLIP_Q8. Every other step, the 2-4
 * row passes of the decode kernels included (the same sums as a session's
 * row), keeps LOGIT_TOL_Q8; a kernel error moves every row. */
#define LOGIT_FLIP_Q8 2e-2
static int allow_flips, flip_rows, checked_rows;
static double logit_tol = LOGIT_TOL;
#define MAXSEQ 16 /* sequences of a scenario */
#define TFX_RT_TEST_ARGS 32

static tfx_model *compile_q(const char *path, const char *weights, int opt, const char *quantize) {
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  o.opt_level = opt;
  o.weights = weights;
  o.quantize = quantize;
  tfx_model *m = NULL;
  int rc = tfx_jit_compile_file(path, &o, &m);
  if (rc != TFX_OK) fprintf(stderr, "compile %s: %s\n", path, tfx_error_message(rc));
  assert_int_equal(rc, TFX_OK);
  return m;
}

static tfx_model *compile(const char *path, const char *weights, int opt) {
  return compile_q(path, weights, opt, NULL);
}

static tfx_batch *new_batch(tfx_model *m, tfx_batch_options o) {
  tfx_batch *b = NULL;
  assert_int_equal(tfx_batch_create(m, &o, &b), TFX_OK);
  return b;
}

/* One sequence of a scenario and its oracle session. */
typedef struct {
  int32_t id; /* in the batch; -1 when not in it */
  tfx_session *s;
  int32_t next;     /* the token to feed next step (greedy id) */
  int steps;        /* tokens generated */
  int32_t hist[32]; /* forks(): the tokens fed after the prompt */
} seq_ref;

static uint64_t rng = 88172645463325252ull;
static int32_t rnd(int32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (int32_t)(rng % (uint64_t)n);
}

static void check_row(const float *ref, const float *got, int w, const char *what, int step, int seq) {
  double maxref = 1, maxd = 0;
  for (int i = 0; i < w; i++) {
    double a = ref[i] < 0 ? -ref[i] : ref[i], d = ref[i] - got[i];
    if (a > maxref) maxref = a;
    if (d < 0) d = -d;
    if (!(d <= maxd)) maxd = d; /* NaN propagates */
  }
  checked_rows++;
  double tol = logit_tol;
  if (allow_flips && !(maxd <= logit_tol * maxref) && maxd <= LOGIT_FLIP_Q8 * maxref) {
    tol = LOGIT_FLIP_Q8;
    if (++flip_rows > (checked_rows / 32 > 1 ? checked_rows / 32 : 1))
      fail_msg("%s: step %d, sequence %d: max |batch - session| = %g > %g, %d such rows of %d", what, step, seq, maxd,
               logit_tol * maxref, flip_rows, checked_rows);
  }
  if (!(maxd <= tol * maxref))
    fail_msg("%s: step %d, sequence %d: max |batch - session| = %g > %g", what, step, seq, maxd, logit_tol * maxref);
  /* the same greedy id, unless the two top logits tie within the tolerance */
  int ia = tfx_test_argmax(ref, w), ib = tfx_test_argmax(got, w);
  if (ia != ib && !(ref[ia] - ref[ib] <= 2 * tol * maxref))
    fail_msg("%s: step %d, sequence %d: greedy id %d (batch) vs %d (session), logits %g vs %g", what, step, seq, ib, ia,
             (double)ref[ib], (double)ref[ia]);
}

/* Runs a step of the listed refs (prompt tokens for those with next < 0 and
 * plen > 0), checks each against its session. */
static void run_step(tfx_batch *b, tfx_model *m, seq_ref *r, const int *which, int k, const int *plen, const char *what,
                     int step) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  int w = d->output_width;
  int32_t seqs[MAXSEQ], ntok[MAXSEQ], toks[256], status[MAXSEQ];
  float *lg = malloc((size_t)k * (size_t)w * sizeof(float)), *ref = malloc((size_t)w * sizeof(float));
  assert_non_null(lg);
  assert_non_null(ref);
  int nt = 0;
  for (int i = 0; i < k; i++) {
    seq_ref *q = &r[which[i]];
    seqs[i] = q->id;
    if (plen && plen[i] > 0) { /* a prompt */
      ntok[i] = plen[i];
      for (int t = 0; t < plen[i]; t++) toks[nt++] = rnd(d->vocab);
    } else {
      ntok[i] = 1;
      toks[nt++] = q->next;
    }
  }
  int rc = tfx_batch_step(b, k, seqs, ntok, toks, lg, status);
  if (rc != TFX_OK) fail_msg("%s: step %d: %s (%s)", what, step, tfx_error_message(rc), tfx_batch_last_error(b));
  nt = 0;
  for (int i = 0; i < k; i++) {
    seq_ref *q = &r[which[i]];
    assert_int_equal(status[i], TFX_OK);
    assert_int_equal(tfx_forward(q->s, toks + nt, ntok[i], ref), TFX_OK);
    nt += ntok[i];
    check_row(ref, lg + (size_t)i * (size_t)w, w, what, step, which[i]);
    assert_int_equal(tfx_batch_position(b, q->id), tfx_session_position(q->s));
    q->next = tfx_test_argmax(lg + (size_t)i * (size_t)w, w);
    q->steps++;
  }
  free(lg);
  free(ref);
}

static void join(tfx_batch *b, tfx_model *m, seq_ref *q) {
  assert_int_equal(tfx_batch_add(b, &q->id), TFX_OK);
  tfx_session_options so = {1};
  assert_int_equal(tfx_session_create(m, &so, &q->s), TFX_OK);
  q->steps = 0;
}

static void leave_seq(tfx_batch *b, seq_ref *q) {
  assert_int_equal(tfx_batch_remove(b, q->id), TFX_OK);
  assert_int_equal(tfx_batch_position(b, q->id), -1);
  tfx_session_free(q->s);
  q->s = NULL;
  q->id = -1;
}

/* Continuous batching: 3 sequences join with prompts of 1, 3 and 17 tokens
 * in one step, decode; a 4th joins mid-run (prefill beside the others'
 * decode tokens), the first leaves and a 5th takes its id and its blocks,
 * each sequence crossing block boundaries (16 positions). */
static void scenario(tfx_model *m, const char *what) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  int S = d->max_seq;
  int long_prompt = S >= 64 ? 33 : 17;
  int steps = S - long_prompt - 4; /* every sequence stays within max_seq */
  if (steps > 40) steps = 40;
  tfx_batch *b = new_batch(m, (tfx_batch_options){2, 4, 0, 0});
  int total = tfx_batch_total_blocks(b);
  assert_int_equal(total, 4 * ((S + 15) / 16));
  seq_ref r[5];
  memset(r, 0, sizeof r);
  for (int i = 0; i < 5; i++) r[i].id = -1;
  for (int i = 0; i < 3; i++) join(b, m, &r[i]);
  run_step(b, m, r, (int[]){0, 1, 2}, 3, (int[]){1, 3, 17}, what, 0);
  for (int step = 1; step <= steps; step++) {
    int which[4], plen[4] = {0, 0, 0, 0}, k = 0;
    if (step == 5) { /* a 4th joins with a long prompt beside the decoding ones */
      join(b, m, &r[3]);
      plen[k] = long_prompt;
      which[k++] = 3;
    } else if (r[3].s) {
      which[k++] = 3;
    }
    if (step == 12) leave_seq(b, &r[0]);
    if (step == 14) { /* a 5th takes the freed id and blocks */
      join(b, m, &r[4]);
      assert_int_equal(r[4].id, 0);
      plen[k] = 2;
      which[k++] = 4;
    } else if (r[4].s) {
      which[k++] = 4;
    }
    for (int i = 0; i < 3; i++)
      if (r[i].s && !(i == 1 && step % 3 == 0)) which[k++] = i; /* sequence 1 skips some steps */
    run_step(b, m, r, which, k, plen, what, step);
  }
  int held = 0;
  for (int i = 0; i < 5; i++)
    if (r[i].s) held += (tfx_batch_position(b, r[i].id) + 15) / 16;
  assert_int_equal(tfx_batch_free_blocks(b), total - held); /* a sequence holds the blocks of its tokens only */
  for (int i = 0; i < 5; i++)
    if (r[i].s) leave_seq(b, &r[i]);
  assert_int_equal(tfx_batch_free_blocks(b), total);
  tfx_batch_free(b);
}

/* A pool of 5 blocks (80 positions) for two sequences (prompts of 30 and 10
 * tokens, then decoding): the first whose step needs a block when none is
 * free gets TFX_ERR_KV_FULL and stays as it was (position, logits row), while
 * the other runs in the same step and matches its session; after the other
 * leaves, the refused one continues and still matches its session. */
static void pool_runs_out(tfx_model *m, const char *what) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  if (d->max_seq < 64) return;
  int w = d->output_width;
  tfx_batch *b = new_batch(m, (tfx_batch_options){1, 2, 5, 0});
  seq_ref r[2];
  memset(r, 0, sizeof r);
  join(b, m, &r[0]);
  join(b, m, &r[1]);
  run_step(b, m, r, (int[]){0, 1}, 2, (int[]){30, 10}, what, 0); /* 2 + 1 blocks */
  float *lg = malloc(2 * (size_t)w * sizeof(float)), *ref = malloc((size_t)w * sizeof(float));
  assert_non_null(lg);
  assert_non_null(ref);
  int refused = -1;
  for (int step = 1; step < 40 && refused < 0; step++) {
    int32_t seqs[2] = {r[0].id, r[1].id}, ntok[2] = {1, 1}, toks[2] = {r[0].next, r[1].next}, st[2];
    const float keep[4] = {1, 2, 3, 4};
    memcpy(lg, keep, sizeof keep);
    memcpy(lg + w, keep, sizeof keep);
    int rc = tfx_batch_step(b, 2, seqs, ntok, toks, lg, st);
    for (int i = 0; i < 2; i++) {
      float *row = lg + (size_t)i * (size_t)w;
      if (st[i] == TFX_ERR_KV_FULL) {
        assert_int_equal(rc, TFX_ERR_KV_FULL);
        assert_true(refused < 0); /* one sequence at a time here */
        refused = i;
        assert_non_null(strstr(tfx_batch_last_error(b), "KV blocks"));
        assert_int_equal(tfx_batch_position(b, r[i].id), tfx_session_position(r[i].s)); /* not advanced */
        assert_int_equal(tfx_session_position(r[i].s) % 16, 0);                         /* its blocks are full */
        assert_memory_equal(row, keep, sizeof keep);                                    /* its row untouched */
        assert_int_equal(tfx_batch_free_blocks(b), 0);
      } else {
        assert_int_equal(st[i], TFX_OK);
        assert_int_equal(tfx_forward(r[i].s, &toks[i], 1, ref), TFX_OK);
        check_row(ref, row, w, what, step, i);
        r[i].next = tfx_test_argmax(row, w);
      }
    }
  }
  assert_true(refused >= 0);
  leave_seq(b, &r[1 - refused]);
  assert_true(tfx_batch_free_blocks(b) > 0);
  for (int step = 0; step < 10; step++) run_step(b, m, r, (int[]){refused}, 1, NULL, what, 100 + step);
  free(lg);
  free(ref);
  leave_seq(b, &r[refused]);
  tfx_batch_free(b);
}

/* Prefix sharing: a prompt of 21 tokens (one full block, one partly
 * filled), two forks of it and one fork at a block boundary share its
 * blocks (no block taken); each then decodes its own tokens, matching a
 * session fed the same prefix, and the first write of each sharer to the
 * shared partial block copies it (one block each); the shared full block
 * returns to the pool only when its last holder leaves. */
static void forks(tfx_model *m, const char *what) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  if (d->max_seq < 64) return;
  int w = d->output_width;
  tfx_batch *b = new_batch(m, (tfx_batch_options){2, 5, 0, 0});
  int total = tfx_batch_total_blocks(b);
  seq_ref r[4];
  memset(r, 0, sizeof r);
  int32_t prompt[32];
  for (int t = 0; t < 32; t++) prompt[t] = rnd(d->vocab);
  join(b, m, &r[0]);
  float *lg = malloc(4 * (size_t)w * sizeof(float)), *ref = malloc((size_t)w * sizeof(float));
  assert_non_null(lg);
  assert_non_null(ref);
  assert_int_equal(tfx_batch_step(b, 1, &r[0].id, (int32_t[]){21}, prompt, lg, NULL), TFX_OK);
  assert_int_equal(tfx_forward(r[0].s, prompt, 21, ref), TFX_OK);
  check_row(ref, lg, w, what, 0, 0);
  r[0].next = tfx_test_argmax(lg, w);
  assert_int_equal(tfx_batch_free_blocks(b), total - 2);
  tfx_session_options so = {1};
  for (int i = 1; i < 3; i++) {
    assert_int_equal(tfx_batch_fork(b, r[0].id, &r[i].id), TFX_OK);
    assert_int_equal(tfx_batch_position(b, r[i].id), 21);
    assert_int_equal(tfx_session_create(m, &so, &r[i].s), TFX_OK);
    assert_int_equal(tfx_forward(r[i].s, prompt, 21, ref), TFX_OK);
    r[i].next = rnd(d->vocab); /* each its own continuation */
  }
  assert_int_equal(tfx_batch_free_blocks(b), total - 2); /* forks take no block */
  for (int step = 1; step <= 24; step++) {
    int k = step >= 12 ? 4 : 3;
    if (step == 12) { /* a fork of fork 1 at position 32: a block boundary, nothing to copy */
      assert_int_equal(tfx_batch_position(b, r[1].id), 32);
      int before = tfx_batch_free_blocks(b);
      assert_int_equal(tfx_batch_fork(b, r[1].id, &r[3].id), TFX_OK);
      assert_int_equal(tfx_batch_free_blocks(b), before);
      assert_int_equal(tfx_session_create(m, &so, &r[3].s), TFX_OK);
      /* the session replays fork 1's tokens: its prompt, then its decode ids */
      assert_int_equal(tfx_forward(r[3].s, prompt, 21, ref), TFX_OK);
      for (int t = 0; t < 11; t++) assert_int_equal(tfx_forward(r[3].s, &r[1].hist[t], 1, ref), TFX_OK);
      r[3].next = rnd(d->vocab);
    }
    int32_t seqs[4], ntok[4] = {1, 1, 1, 1}, toks[4], st[4];
    for (int i = 0; i < k; i++) {
      seqs[i] = r[i].id;
      toks[i] = r[i].next;
    }
    int rc = tfx_batch_step(b, k, seqs, ntok, toks, lg, st);
    if (rc != TFX_OK) fail_msg("%s: fork step %d: %s", what, step, tfx_batch_last_error(b));
    for (int i = 0; i < k; i++) {
      assert_int_equal(tfx_forward(r[i].s, &toks[i], 1, ref), TFX_OK);
      check_row(ref, lg + (size_t)i * (size_t)w, w, what, 200 + step, i);
      if (r[i].steps < 32) r[i].hist[r[i].steps++] = toks[i];
      r[i].next = tfx_test_argmax(lg + (size_t)i * (size_t)w, w);
    }
    if (step == 1) /* each of the three wrote the shared partial block: two copies, the last keeps it */
      assert_int_equal(tfx_batch_free_blocks(b), total - 4);
  }
  for (int i = 0; i < 4; i++) leave_seq(b, &r[i]);
  assert_int_equal(tfx_batch_free_blocks(b), total);
  free(lg);
  free(ref);
  tfx_batch_free(b);
}

/* A step of more rows than max_seq runs in several calls of the batch
 * entry (the arena holds max_seq rows): two prompts of 3/4 max_seq and a
 * decode token, the second prompt straddling the calls; its later rows read
 * the keys the first call stored. */
static void long_step(tfx_model *m, const char *what) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  int S = d->max_seq, p = S * 3 / 4;
  tfx_batch *b = new_batch(m, (tfx_batch_options){2, 3, 0, 2 * S});
  seq_ref r[3];
  memset(r, 0, sizeof r);
  for (int i = 0; i < 3; i++) join(b, m, &r[i]);
  run_step(b, m, r, (int[]){2}, 1, (int[]){5}, what, 0);
  run_step(b, m, r, (int[]){0, 1, 2}, 3, (int[]){p, p, 0}, what, 1); /* 2p + 1 > S rows */
  run_step(b, m, r, (int[]){0, 1, 2}, 3, NULL, what, 2);
  for (int i = 0; i < 3; i++) leave_seq(b, &r[i]);
  tfx_batch_free(b);
}

/* Refusals that run nothing or refuse one sequence only. */
static void bad_calls(tfx_model *m) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_batch *b = new_batch(m, (tfx_batch_options){1, 2, 0, 8});
  int32_t a, c, st[2];
  assert_int_equal(tfx_batch_add(b, &a), TFX_OK);
  assert_int_equal(tfx_batch_add(b, &c), TFX_OK);
  int32_t x;
  assert_int_equal(tfx_batch_add(b, &x), TFX_ERR_INVALID_ARGUMENT); /* max_seqs = 2 */
  int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  /* too many rows for max_step: nothing runs */
  assert_int_equal(tfx_batch_step(b, 2, (int32_t[]){a, c}, (int32_t[]){5, 4}, toks, NULL, NULL),
                   TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_batch_position(b, a), 0);
  /* the same id twice: the second is refused, the first runs */
  assert_int_equal(tfx_batch_step(b, 2, (int32_t[]){a, a}, (int32_t[]){1, 1}, toks, NULL, st),
                   TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(st[0], TFX_OK);
  assert_int_equal(st[1], TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_batch_position(b, a), 1);
  /* a token out of range refuses its sequence only */
  int32_t bad[2] = {d->vocab, 3};
  assert_int_equal(tfx_batch_step(b, 2, (int32_t[]){c, a}, (int32_t[]){1, 1}, bad, NULL, st), TFX_ERR_TOKEN_RANGE);
  assert_int_equal(st[0], TFX_ERR_TOKEN_RANGE);
  assert_int_equal(st[1], TFX_OK);
  assert_int_equal(tfx_batch_position(b, c), 0);
  assert_int_equal(tfx_batch_position(b, a), 2);
  /* unknown ids, n < 1 */
  assert_int_equal(tfx_batch_step(b, 1, (int32_t[]){7}, (int32_t[]){1}, toks, NULL, st), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_batch_step(b, 1, (int32_t[]){c}, (int32_t[]){0}, toks, NULL, st), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_batch_remove(b, 7), TFX_ERR_INVALID_ARGUMENT);
  /* context full: a sequence at max_seq - 1 takes one more token, not two */
  assert_int_equal(tfx_batch_reset_seq(b, a), TFX_OK);
  for (int32_t p = 0; p < d->max_seq - 1; p += 8) {
    int32_t n = d->max_seq - 1 - p < 8 ? d->max_seq - 1 - p : 8;
    assert_int_equal(tfx_batch_step(b, 1, &a, &n, toks, NULL, NULL), TFX_OK);
  }
  assert_int_equal(tfx_batch_step(b, 1, &a, (int32_t[]){2}, toks, NULL, st), TFX_ERR_CONTEXT_FULL);
  assert_int_equal(tfx_batch_step(b, 1, &a, (int32_t[]){1}, toks, NULL, st), TFX_OK);
  assert_int_equal(tfx_batch_position(b, a), d->max_seq);
  assert_int_equal(tfx_batch_step(b, 1, NULL, (int32_t[]){1}, toks, NULL, st), TFX_ERR_INVALID_ARGUMENT);
  tfx_batch_free(b);
}

/* examples/llama/tiny.tfx: 4 query heads over 2 KV heads (head_dim 16), max_seq 64 */
static tfx_model *gqa_model(int opt) {
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/llama/tiny.tfx", TFX_SOURCE_DIR);
  return compile(path, "random:11", opt);
}

static void test_gqa_random(void **state) {
  (void)state;
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_model *m = gqa_model(opt);
    scenario(m, opt ? "gqa -O3" : "gqa -O0");
    pool_runs_out(m, opt ? "gqa pool -O3" : "gqa pool -O0");
    forks(m, opt ? "gqa forks -O3" : "gqa forks -O0");
    long_step(m, opt ? "gqa long step -O3" : "gqa long step -O0");
    bad_calls(m);
    tfx_model_close(m);
  }
}

static void test_stories260k(void **state) {
  (void)state;
  char bin[4096], tfx[4096];
  tfx_test_model_path("stories260K.bin", bin, sizeof bin);
  snprintf(tfx, sizeof tfx, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  if (access(bin, R_OK) != 0) fail_msg("the real model is missing: %s (set TFX_MODELS_DIR)", bin);
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_model *m = compile(tfx, bin, opt);
    scenario(m, opt ? "stories260K -O3" : "stories260K -O0");
    pool_runs_out(m, opt ? "stories260K pool -O3" : "stories260K pool -O0");
    forks(m, opt ? "stories260K forks -O3" : "stories260K forks -O0");
    tfx_model_close(m);
  }
}

/* Steps of every row count 1 .. 17 (the int8 linears: at most 4 rows the
 * decode kernels, one pass of up to 4 rows of x; more the repacked tiles): 16
 * sequences join in one step of 16 one-token prompts; then steps of the
 * first k sequences' decode tokens, k = 1 .. 16; then prompt-like chunks
 * beside decode tokens (5 + 6 + 1 = 12 rows, 7 + 10 = 17). */
static void many_rows(tfx_model *m, const char *what) {
  tfx_batch *b = new_batch(m, (tfx_batch_options){2, 16, 0, 0});
  seq_ref r[16];
  memset(r, 0, sizeof r);
  int all[16], plen[16];
  for (int i = 0; i < 16; i++) {
    join(b, m, &r[i]);
    all[i] = i;
    plen[i] = 1;
  }
  allow_flips = 1;
  run_step(b, m, r, all, 16, plen, what, 100);
  allow_flips = 0;
  for (int k = 1; k <= 16; k++) {
    allow_flips = k > 4;
    run_step(b, m, r, all, k, NULL, what, 100 + k);
  }
  allow_flips = 1;
  run_step(b, m, r, (int[]){3, 4, 5}, 3, (int[]){5, 6, 0}, what, 117);
  run_step(b, m, r, (int[]){6, 7}, 2, (int[]){7, 10}, what, 118);
  allow_flips = 0;
  for (int i = 0; i < 16; i++) leave_seq(b, &r[i]);
  tfx_batch_free(b);
}

/* q8_0 and q4_0 weights (int8 dot products): the scenario's steps of 1 to 4
 * rows and prompts of up to 17, and many_rows' steps of every row count 1 ..
 * 17, so the batch entry's linears take both their few-rows branch (at most
 * 4 rows: the decode kernels, up to 4 rows of x per pass of the weights)
 * and their many-rows one (rows quantized into the workspace by a kernel of
 * their own, the repacked tiles), against sessions decoding through the
 * decode kernels one row at a time (their prompts: the same branch). */
static void test_quantized(void **state) {
  (void)state;
  static const char *const formats[] = {"q8_0", "q4_0"};
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/llama/tiny.tfx", TFX_SOURCE_DIR);
  logit_tol = LOGIT_TOL_Q8;
  for (size_t f = 0; f < sizeof formats / sizeof *formats; f++) {
    tfx_model *m = compile_q(path, "random:11", 3, formats[f]);
    char what[64];
    snprintf(what, sizeof what, "tiny %s -O3", formats[f]);
    flip_rows = checked_rows = 0;
    scenario(m, what);
    many_rows(m, what);
    tfx_model_close(m);
  }
  logit_tol = LOGIT_TOL;
}

/* Learned positions (GPT-2), ALiBi (BLOOM) and a sliding-window mask: the
 * position-dependent kernels with per-row positions. */
static void test_other_families(void **state) {
  (void)state;
  static const char *const files[] = {"examples/gpt2/gpt2.tfx", "examples/bloom/alibi.tfx",
                                      "examples/sparse/masks.tfx"};
  for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", TFX_SOURCE_DIR, files[f]);
    for (int opt = 0; opt <= 3; opt += 3) {
      tfx_model *m = compile(path, "random:5", opt);
      char what[128];
      snprintf(what, sizeof what, "%s -O%d", files[f], opt);
      scenario(m, what);
      tfx_model_close(m);
    }
  }
}

/* A model whose rows meet outside a causal attention (an encoder) or whose
 * cache is not paged (MLA) has no batch entry: a clear status. */
static void test_no_batch_entry(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/bert/bert.tfx", TFX_SOURCE_DIR);
  tfx_model *m = compile(path, "random:3", 0);
  tfx_batch *b = (tfx_batch *)1;
  assert_int_equal(tfx_batch_create(m, NULL, &b), TFX_ERR_NO_BATCH);
  assert_null(b);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  for (int32_t i = 0; i < d->n_entries; i++) assert_int_equal(d->entries[i].flags & TFX_ENTRY_BATCH, 0);
  tfx_model_close(m);
  /* MLA: a causal decoder whose latent cache is not paged */
  snprintf(path, sizeof path, "%s/examples/deepseek/mla.tfx", TFX_SOURCE_DIR);
  m = compile(path, "random:3", 0);
  assert_int_equal(tfx_batch_create(m, NULL, &b), TFX_ERR_NO_BATCH);
  tfx_model_close(m);
  assert_string_not_equal(tfx_error_message(TFX_ERR_KV_FULL), tfx_error_message(12345));
}

/* The runtime refuses a malformed batch entry (TFX_ERR_NOT_A_MODEL) and
 * accepts the compiled one. */
static void test_malformed_batch_entry(void **state) {
  (void)state;
  tfx_model *m = gqa_model(0);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  int bi = -1;
  for (int32_t i = 0; i < d->n_entries; i++)
    if (d->entries[i].flags & TFX_ENTRY_BATCH) bi = i;
  assert_true(bi >= 0);
  assert_string_equal(d->entries[bi].name, "batch");
  assert_int_equal(d->entries[bi].kv_block_bytes,
                   2 * 2 * TFX_KV_BLOCK_TOKENS * 2 * 16 * 4); /* 2 layers, K+V, G 2 x 16 */
  tfx_entry_desc ents[8];
  int32_t kinds[TFX_RT_TEST_ARGS];
  for (int c = 0; c < 6; c++) {
    tfx_model_desc copy = *d;
    memcpy(ents, d->entries, (size_t)d->n_entries * sizeof *ents);
    memcpy(kinds, d->entries[bi].arg_kinds, (size_t)d->entries[bi].n_args * sizeof(int32_t));
    ents[bi].arg_kinds = kinds;
    copy.entries = ents;
    switch (c) {
    case 0: break;                                       /* as compiled: accepted */
    case 1: ents[bi].kv_block_bytes = 0; break;          /* no block size */
    case 2: ents[bi].flags |= TFX_ENTRY_LAST_ROW; break; /* both flags */
    case 3: kinds[2] = TFX_ARG_POS; break;               /* a position in a batch entry */
    case 4: ents[0].kv_block_bytes = 64; break;          /* a block size on another entry */
    case 5: copy.has_kv_cache = 0; break;                /* a batch entry without a KV cache */
    }
    tfx_model *x = NULL;
    int rc = tfx_model_from_descriptor(&copy, NULL, NULL, NULL, &x);
    assert_int_equal(rc, c == 0 ? TFX_OK : TFX_ERR_NOT_A_MODEL);
    tfx_model_close(x);
  }
  tfx_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gqa_random),     cmocka_unit_test(test_stories260k),
      cmocka_unit_test(test_quantized),      cmocka_unit_test(test_other_families),
      cmocka_unit_test(test_no_batch_entry), cmocka_unit_test(test_malformed_batch_entry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
