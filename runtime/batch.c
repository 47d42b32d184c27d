/* runtime/batch.c — batched decoding of many sequences over a paged KV
 * cache (tfx_batch_* of tfx/tfx.h): the block pool and its free list, each
 * sequence's block table and position, and the step that gathers the rows
 * of several sequences (tokens, per-row position and block table:
 * tfx_kv_row of tfx/abi.h) into calls of the model's batch entry. A
 * sequence that cannot run (no free block, context full, a bad token) is
 * refused before anything is written, so the others run and it stays as it
 * was. Prefix sharing: tfx_batch_fork gives a new sequence the blocks of
 * another (reference counts), and the partly filled last block is copied
 * when either writes it. Everything is allocated at creation; a step
 * allocates nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#define BLK TFX_KV_BLOCK_TOKENS

typedef struct {
  int32_t alive;
  int32_t pos;     /* tokens appended */
  int32_t nblocks; /* blocks held: table[0..nblocks) */
  uint32_t stamp;  /* the step that last listed it (a second listing is refused) */
  int32_t *table;  /* [max_blocks] */
} batch_seq;

struct tfx_batch {
  const tfx_model *model;
  const tfx_rt_entry *entry;
  tfx_session *s; /* arena, output rows, thread pool (no KV of its own) */
  void *pool;     /* kv_blocks * block_bytes */
  size_t pool_map;
  int64_t block_bytes;
  int32_t max_seqs, max_blocks, kv_blocks, max_step, chunk;
  batch_seq *seqs;
  int32_t *tables;           /* max_seqs * max_blocks */
  int32_t *free_list, nfree; /* a stack of free block ids */
  int32_t *refs;             /* [kv_blocks]: the sequences holding each block (> 1: shared by tfx_batch_fork) */
  uint32_t step_no;          /* wraps */
  tfx_kv_row *rows;          /* [max_step] */
  int32_t *toks;             /* [max_step] */
  int32_t *last;             /* [max_step]: the output row of each listed sequence, -1 when refused */
  atomic_flag busy;
  char error[256];
};

static int fail(tfx_batch *b, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(tfx_batch *b, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->error, sizeof b->error, fmt, ap);
  va_end(ap);
  return code;
}

void tfx_batch_free(tfx_batch *b) {
  if (!b) return;
  tfx_session_free(b->s);
  if (b->pool) tfx_rt_free_kv(b->pool, b->pool_map);
  free(b->seqs);
  free(b->tables);
  free(b->free_list);
  free(b->refs);
  free(b->rows);
  free(b->toks);
  free(b->last);
  free(b);
}

int tfx_batch_create(const tfx_model *model, const tfx_batch_options *opts, tfx_batch **out) {
  if (out) *out = NULL;
  if (!model || !out) return TFX_ERR_INVALID_ARGUMENT;
  if (opts && (opts->threads < 0 || opts->max_seqs < 0 || opts->kv_blocks < 0 || opts->max_step < 0))
    return TFX_ERR_INVALID_ARGUMENT;
  const tfx_model_desc *d = &model->desc;
  const tfx_rt_entry *e = NULL;
  for (int32_t i = 0; i < d->n_entries && !e; i++)
    if (model->entries[i].batch) e = &model->entries[i];
  if (!e || d->input_kind != TFX_INPUT_TOKENS || d->n_inputs >= 2) return TFX_ERR_NO_BATCH;
  int64_t max_seqs = opts && opts->max_seqs ? opts->max_seqs : 16;
  int64_t max_blocks = ((int64_t)d->max_seq + BLK - 1) / BLK;
  int64_t kv_blocks = opts && opts->kv_blocks ? opts->kv_blocks : max_seqs * max_blocks;
  int64_t max_step = opts && opts->max_step ? opts->max_step : d->max_seq;
  if (kv_blocks > INT32_MAX || max_seqs * max_blocks > INT32_MAX) return TFX_ERR_INVALID_ARGUMENT;

  tfx_batch *b = calloc(1, sizeof *b);
  if (!b) return TFX_ERR_OUT_OF_MEMORY;
  atomic_flag_clear(&b->busy);
  b->model = model;
  b->entry = e;
  b->block_bytes = e->desc->kv_block_bytes;
  b->max_seqs = (int32_t)max_seqs;
  b->max_blocks = (int32_t)max_blocks;
  b->kv_blocks = (int32_t)kv_blocks;
  b->max_step = (int32_t)max_step;
  b->chunk = max_step < e->desc->max_tokens ? (int32_t)max_step : e->desc->max_tokens;
  tfx_session_options so = {opts ? opts->threads : 0};
  int rc = tfx_rt_session_new(model, &so, 0, &b->s);
  if (rc != TFX_OK) {
    tfx_batch_free(b);
    return rc;
  }
  /* the output rows of a call of the batch entry, sized now: a step allocates nothing */
  if (!tfx_rt_session_out(b->s, b->chunk)) {
    tfx_batch_free(b);
    return TFX_ERR_OUT_OF_MEMORY;
  }
  b->pool = tfx_rt_alloc_kv((uint64_t)kv_blocks * (uint64_t)b->block_bytes, &b->pool_map);
  b->seqs = calloc((size_t)max_seqs, sizeof *b->seqs);
  b->tables = calloc((size_t)(max_seqs * max_blocks), sizeof *b->tables);
  b->free_list = malloc((size_t)kv_blocks * sizeof *b->free_list);
  b->refs = calloc((size_t)kv_blocks, sizeof *b->refs);
  b->rows = malloc((size_t)max_step * sizeof *b->rows);
  b->toks = malloc((size_t)max_step * sizeof *b->toks);
  b->last = malloc((size_t)max_step * sizeof *b->last);
  if (!b->pool || !b->seqs || !b->tables || !b->free_list || !b->refs || !b->rows || !b->toks || !b->last) {
    tfx_batch_free(b);
    return TFX_ERR_OUT_OF_MEMORY;
  }
  for (int32_t i = 0; i < b->max_seqs; i++) b->seqs[i].table = b->tables + (size_t)i * (size_t)max_blocks;
  /* block 0 on top of the stack */
  for (int32_t i = 0; i < b->kv_blocks; i++) b->free_list[i] = b->kv_blocks - 1 - i;
  b->nfree = b->kv_blocks;
  *out = b;
  return TFX_OK;
}

static int enter(tfx_batch *b) { return tfx_rt_enter(&b->busy, b->error); }

static int leave(tfx_batch *b, int rc) { return tfx_rt_leave(&b->busy, rc); }

static batch_seq *seq_of(tfx_batch *b, int32_t seq) {
  if (seq < 0 || seq >= b->max_seqs || !b->seqs[seq].alive) return NULL;
  return &b->seqs[seq];
}

/* A block back to the pool when its last holder lets it go. */
static void unref(tfx_batch *b, int32_t blk) {
  if (--b->refs[blk] == 0) b->free_list[b->nfree++] = blk;
}

static int32_t take_block(tfx_batch *b) {
  int32_t blk = b->free_list[--b->nfree];
  b->refs[blk] = 1;
  return blk;
}

static void release_blocks(tfx_batch *b, batch_seq *q) {
  while (q->nblocks > 0) unref(b, q->table[--q->nblocks]);
  q->pos = 0;
}

/* A free id, or -1. */
static int32_t free_id(tfx_batch *b) {
  for (int32_t i = 0; i < b->max_seqs; i++)
    if (!b->seqs[i].alive) return i;
  return -1;
}

int tfx_batch_add(tfx_batch *b, int32_t *seq) {
  if (!b || !seq) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(b)) return TFX_ERR_INVALID_ARGUMENT;
  *seq = free_id(b);
  if (*seq < 0)
    return leave(b,
                 fail(b, TFX_ERR_INVALID_ARGUMENT, "all %d sequences of the batch are in use (max_seqs)", b->max_seqs));
  b->seqs[*seq].alive = 1;
  b->seqs[*seq].pos = b->seqs[*seq].nblocks = 0;
  return leave(b, TFX_OK);
}

int tfx_batch_fork(tfx_batch *b, int32_t src, int32_t *seq) {
  if (!b || !seq) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(b)) return TFX_ERR_INVALID_ARGUMENT;
  *seq = -1;
  batch_seq *from = seq_of(b, src);
  if (!from) return leave(b, fail(b, TFX_ERR_INVALID_ARGUMENT, "sequence %d is not in the batch", src));
  int32_t id = free_id(b);
  if (id < 0)
    return leave(b,
                 fail(b, TFX_ERR_INVALID_ARGUMENT, "all %d sequences of the batch are in use (max_seqs)", b->max_seqs));
  batch_seq *q = &b->seqs[id];
  q->alive = 1;
  q->pos = from->pos;
  q->nblocks = from->nblocks;
  for (int32_t i = 0; i < from->nblocks; i++) {
    q->table[i] = from->table[i];
    b->refs[q->table[i]]++;
  }
  *seq = id;
  return leave(b, TFX_OK);
}

static int drop(tfx_batch *b, int32_t seq, int remove) {
  if (!b) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(b)) return TFX_ERR_INVALID_ARGUMENT;
  batch_seq *q = seq_of(b, seq);
  if (!q) return leave(b, fail(b, TFX_ERR_INVALID_ARGUMENT, "sequence %d is not in the batch", seq));
  release_blocks(b, q);
  if (remove) q->alive = 0;
  return leave(b, TFX_OK);
}

int tfx_batch_remove(tfx_batch *b, int32_t seq) { return drop(b, seq, 1); }

int tfx_batch_reset_seq(tfx_batch *b, int32_t seq) { return drop(b, seq, 0); }

int32_t tfx_batch_position(const tfx_batch *b, int32_t seq) {
  if (!b || seq < 0 || seq >= b->max_seqs || !b->seqs[seq].alive) return -1;
  return b->seqs[seq].pos;
}

int32_t tfx_batch_free_blocks(const tfx_batch *b) { return b ? b->nfree : 0; }

int32_t tfx_batch_total_blocks(const tfx_batch *b) { return b ? b->kv_blocks : 0; }

const char *tfx_batch_last_error(const tfx_batch *b) { return b ? b->error : "no batch (NULL)"; }

/* Checks sequence i of a step and takes the blocks its n new positions
 * need; TFX_OK or the status that refuses it (nothing taken). */
static int admit(tfx_batch *b, int32_t i, int32_t seq, const int32_t *tok, int32_t n) {
  const tfx_model_desc *d = &b->model->desc;
  batch_seq *q = seq_of(b, seq);
  if (!q) return fail(b, TFX_ERR_INVALID_ARGUMENT, "seqs[%d] = %d is not a sequence of the batch", i, seq);
  if (q->stamp == b->step_no)
    return fail(b, TFX_ERR_INVALID_ARGUMENT, "seqs[%d] = %d is listed twice in one step", i, seq);
  q->stamp = b->step_no;
  if (n < 1) return fail(b, TFX_ERR_INVALID_ARGUMENT, "n_tokens[%d] = %d: a sequence needs at least one token", i, n);
  if ((int64_t)q->pos + n > d->max_seq)
    return fail(b, TFX_ERR_CONTEXT_FULL, "sequence %d: %d tokens do not fit at position %d of max_seq = %d", seq, n,
                q->pos, d->max_seq);
  for (int32_t t = 0; t < n; t++)
    if (tok[t] < 0 || tok[t] >= d->vocab)
      return fail(b, TFX_ERR_TOKEN_RANGE, "sequence %d: token %d (its index %d) is outside the vocabulary [0, %d)", seq,
                  tok[t], t, d->vocab);
  int32_t need = (q->pos + n + BLK - 1) / BLK - q->nblocks;
  /* the partly filled last block, when shared with a fork, is copied first
   * (full blocks are never written again) */
  int cow = q->pos % BLK != 0 && b->refs[q->table[q->nblocks - 1]] > 1;
  need += cow;
  if (need > b->nfree)
    return fail(b, TFX_ERR_KV_FULL,
                "sequence %d needs %d more KV blocks for positions %d..%d; the pool has %d free of %d (tokens of "
                "other sequences hold them: tfx_batch_remove frees a sequence's blocks)",
                seq, need, q->pos, q->pos + n - 1, b->nfree, b->kv_blocks);
  if (cow) {
    int32_t old = q->table[q->nblocks - 1], nb = take_block(b);
    memcpy((char *)b->pool + (size_t)nb * (size_t)b->block_bytes,
           (const char *)b->pool + (size_t)old * (size_t)b->block_bytes, (size_t)b->block_bytes);
    unref(b, old);
    q->table[q->nblocks - 1] = nb;
    need--;
  }
  while (need-- > 0) q->table[q->nblocks++] = take_block(b);
  return TFX_OK;
}

static int step(tfx_batch *b, int32_t n_seqs, const int32_t *seqs, const int32_t *n_tokens, const int32_t *tokens,
                float *logits, int32_t *status) {
  if (!seqs || !n_tokens || !tokens || n_seqs < 1)
    return fail(b, TFX_ERR_INVALID_ARGUMENT, "tfx_batch_step: NULL arrays or n_seqs = %d < 1", n_seqs);
  int64_t total = 0;
  for (int32_t i = 0; i < n_seqs; i++) total += n_tokens[i] > 0 ? n_tokens[i] : 0;
  if (n_seqs > b->max_step || total > b->max_step)
    return fail(b, TFX_ERR_INVALID_ARGUMENT, "a step of %d sequences and %lld tokens exceeds max_step = %d", n_seqs,
                (long long)total, b->max_step);
  b->step_no++;
  /* admit each sequence and lay out its rows */
  int first = TFX_OK;
  char first_msg[sizeof b->error];
  int32_t rows = 0;
  const int32_t *tok = tokens;
  for (int32_t i = 0; i < n_seqs; i++) {
    int32_t n = n_tokens[i] > 0 ? n_tokens[i] : 0;
    int rc = admit(b, i, seqs[i], tok, n_tokens[i]);
    if (status) status[i] = rc;
    b->last[i] = -1;
    if (rc != TFX_OK) {
      if (first == TFX_OK) { /* the first failure's detail is the one kept */
        first = rc;
        memcpy(first_msg, b->error, sizeof first_msg);
      }
      tok += n;
      continue;
    }
    batch_seq *q = &b->seqs[seqs[i]];
    for (int32_t t = 0; t < n; t++) {
      b->rows[rows] = (tfx_kv_row){q->pos + t, 0, q->table};
      b->toks[rows++] = tok[t];
    }
    q->pos += n;
    b->last[i] = rows - 1;
    tok += n;
  }
  /* run the rows in calls of at most chunk rows; copy each sequence's last row */
  const tfx_model_desc *d = &b->model->desc;
  size_t width = (size_t)d->output_width;
  for (int32_t off = 0; off < rows; off += b->chunk) {
    int32_t c = rows - off < b->chunk ? rows - off : b->chunk;
    tfx_rt_call_entry_kv(b->s, b->entry, b->toks + off, c, 0, b->rows + off, b->pool, b->s->out);
    if (!logits) continue;
    for (int32_t i = 0; i < n_seqs; i++)
      if (b->last[i] >= off && b->last[i] < off + c)
        memcpy(logits + (size_t)i * width, b->s->out + (size_t)(b->last[i] - off) * width, width * sizeof(float));
  }
  if (first != TFX_OK)
    memcpy(b->error, first_msg, sizeof b->error);
  else
    b->error[0] = 0;
  return first;
}

int tfx_batch_step(tfx_batch *b, int32_t n_seqs, const int32_t *seqs, const int32_t *n_tokens, const int32_t *tokens,
                   float *logits, int32_t *status) {
  if (!b) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(b)) return TFX_ERR_INVALID_ARGUMENT;
  return leave(b, step(b, n_seqs, seqs, n_tokens, tokens, logits, status));
}
