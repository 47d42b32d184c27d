/* runtime/forward.c — running a model: argument checks (input kind, token
 * range, context capacity), the choice of entry point (decode for n == 1;
 * else, when only the last row is wanted, a last-row entry admitting n, or
 * any entry writing every row; a KV-cache model is run in chunks when no
 * entry admits n at once), the call, position advance and the copy of the
 * last output row. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

/* decode when n == 1 and it exists; else (last_only) the first last-row
 * entry admitting n; else the first entry admitting n that writes every
 * row. */
static const tfx_rt_entry *pick_entry(const tfx_model *m, int64_t n, int last_only) {
  if (n == 1)
    for (int32_t i = 0; i < m->desc.n_entries; i++)
      if (m->entries[i].is_decode && !m->entries[i].batch) return &m->entries[i];
  for (int pass = last_only ? 0 : 1; pass < 2; pass++)
    for (int32_t i = 0; i < m->desc.n_entries; i++) {
      const tfx_entry_desc *d = m->entries[i].desc;
      if (m->entries[i].last_row != (pass == 0) || m->entries[i].batch) continue;
      if (n >= d->min_tokens && n <= d->max_tokens) return &m->entries[i];
    }
  return NULL;
}

/* The output row of a call of n rows that holds its last row. */
static size_t last_row_of(const tfx_rt_entry *e, int64_t n) { return e->last_row ? 0 : (size_t)(n - 1); }

/* Records the detail of a failure in the session and returns code. */
static int fail(tfx_session *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(tfx_session *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->error, sizeof s->error, fmt, ap);
  va_end(ap);
  return code;
}

/* Checks the position/capacity of a call of n rows. */
static int check_context(tfx_session *s, int32_t n) {
  const tfx_model_desc *d = &s->model->desc;
  if (d->has_kv_cache) {
    if ((int64_t)s->pos + (int64_t)n > (int64_t)d->max_seq)
      return fail(s, TFX_ERR_CONTEXT_FULL,
                  "%d tokens do not fit: the session is at position %d of max_seq = %d (%d left; "
                  "tfx_session_reset starts over)",
                  n, s->pos, d->max_seq, d->max_seq - s->pos);
  } else if (n > d->max_seq) {
    return fail(s, TFX_ERR_CONTEXT_FULL, "%d rows exceed max_seq = %d", n, d->max_seq);
  }
  return TFX_OK;
}

/* The failure of a call whose output rows have no room: a static session
 * keeps one row (the caller's arena); else the memory ran out. */
static int no_out_rows(tfx_session *s, int32_t rows, size_t width) {
  if (s->is_static)
    return fail(s, TFX_ERR_INVALID_ARGUMENT,
                "a static session keeps one output row and this call writes %d (the model has no last-row entry "
                "for it): pass an output of n rows with last_only = 0",
                rows);
  return fail(s, TFX_ERR_OUT_OF_MEMORY, "no memory for %d output rows of %zu values", rows, width);
}

/* The input argument of a chunk starting at row `done`: the one input
 * advanced by row_bytes per row, or (a model of several inputs: input is
 * the table of their pointers) a table in tab of each advanced by its own
 * row size. */
static const void *chunk_input(const tfx_model_desc *d, const void *input, size_t row_bytes, int32_t done,
                               const void **tab) {
  if (d->n_inputs < 2) return (const char *)input + (size_t)done * row_bytes;
  const void *const *in = input;
  for (int32_t i = 0; i < d->n_inputs; i++) /* a source and the row mask: whole with every chunk */
    tab[i] = (const char *)in[i] +
             (d->inputs[i].rows > 0 ? 0 : (size_t)done * (size_t)d->inputs[i].width * 4); /* int32, float: 4 bytes */
  return tab;
}

/* Runs n rows of input (row_bytes each) and writes the rows to `dst` (all
 * rows when !last_only, else the last row only; dst may be NULL). */
static int run(tfx_session *s, const void *input, size_t row_bytes, int32_t n, float *dst, int last_only) {
  const tfx_model *m = s->model;
  const tfx_model_desc *d = &m->desc;
  size_t width = (size_t)d->output_width;
  float *all = (!last_only && dst) ? dst : NULL;

  const tfx_rt_entry *e = pick_entry(m, n, !all);
  if (e) {
    float *out = all ? all : tfx_rt_session_out(s, e->last_row ? 1 : n);
    if (!out) return no_out_rows(s, e->last_row ? 1 : n, width);
    tfx_rt_call_entry(s, e, input, n, d->has_kv_cache ? s->pos : 0, out);
    if (d->has_kv_cache) s->pos += n;
    if (!all && dst) memcpy(dst, out + last_row_of(e, n) * width, width * sizeof(float));
    return TFX_OK;
  }
  /* No entry takes n rows at once: a KV-cache model appends them in chunks
   * (the same computation); other models cannot be split. */
  if (!d->has_kv_cache || m->max_entry_tokens < 1)
    return fail(s, TFX_ERR_INVALID_ARGUMENT, "no entry point of the model accepts n = %d", n);
  int32_t chunk_max = m->max_entry_tokens;
  /* Every chunk size used below must have an entry (and, when the caller
   * does not take every row, room for its output rows). */
  for (int32_t done = 0; done < n;) {
    int32_t c = n - done < chunk_max ? n - done : chunk_max;
    const tfx_rt_entry *ce = pick_entry(m, c, !all);
    if (!ce) return fail(s, TFX_ERR_INVALID_ARGUMENT, "no entry point of the model accepts a chunk of %d rows", c);
    if (!all && !tfx_rt_session_out(s, ce->last_row ? 1 : c)) return no_out_rows(s, ce->last_row ? 1 : c, width);
    done += c;
  }
  const float *last = NULL;
  for (int32_t done = 0; done < n;) {
    int32_t c = n - done < chunk_max ? n - done : chunk_max;
    const tfx_rt_entry *ce = pick_entry(m, c, !all);
    float *out = all ? all + (size_t)done * width : tfx_rt_session_out(s, ce->last_row ? 1 : c);
    if (!out) return no_out_rows(s, ce->last_row ? 1 : c, width);
    const void *tab[TFX_MAX_MODEL_INPUTS];
    tfx_rt_call_entry(s, ce, chunk_input(d, input, row_bytes, done, tab), c, s->pos, out);
    s->pos += c;
    done += c;
    last = out + last_row_of(ce, c) * width;
  }
  if (!all && dst) memcpy(dst, last, width * sizeof(float));
  return TFX_OK;
}

/* Calls on one session must not overlap; the flag refuses a second one. */
static int enter(tfx_session *s) { return tfx_rt_enter(&s->busy, s->error); }

static int leave(tfx_session *s, int rc) { return tfx_rt_leave(&s->busy, rc); }

/* The message of a refused overlapping call (not stored: the session's
 * buffer belongs to the call that runs). */
#define BUSY TFX_ERR_INVALID_ARGUMENT

/* tfx_forward / tfx_forward_f32 on a model of several inputs: which ones
 * they cannot pass. */
static int needs_inputs(tfx_session *s, const char *call) {
  const tfx_model_desc *d = &s->model->desc;
  char names[256] = "";
  size_t used = 0;
  for (int32_t i = 1; i < tfx_rt_caller_inputs(d) && used < sizeof names; i++)
    used += (size_t)snprintf(names + used, sizeof names - used, "%s'%s'", i > 1 ? ", " : "", d->inputs[i].name);
  return fail(s, TFX_ERR_WRONG_INPUT,
              "model '%s' takes %d inputs and %s passes only '%s' (missing %s): use tfx_forward_inputs", d->name,
              tfx_rt_caller_inputs(d), call, d->inputs[0].name, names);
}

static int forward_tokens(tfx_session *s, const int32_t *tokens, int32_t n, float *logits, int last_only) {
  const tfx_model_desc *d = &s->model->desc;
  if (d->n_inputs >= 2) return needs_inputs(s, "tfx_forward");
  if (!tokens) return fail(s, TFX_ERR_INVALID_ARGUMENT, "tokens is NULL");
  if (n < 1) return fail(s, TFX_ERR_INVALID_ARGUMENT, "n = %d: a call needs at least one token", n);
  if (d->input_kind != TFX_INPUT_TOKENS)
    return fail(s, TFX_ERR_WRONG_INPUT, "model '%s' takes f32 activations [n, %d], not tokens: use tfx_forward_f32",
                d->name, d->input_width);
  /* the room first: a wrong n is reported before tokens[0..n) is read */
  int rc = check_context(s, n);
  if (rc != TFX_OK) return rc;
  for (int32_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= d->vocab)
      return fail(s, TFX_ERR_TOKEN_RANGE, "token %d (at index %d) is outside the vocabulary [0, %d)", tokens[i], i,
                  d->vocab);
  return run(s, tokens, sizeof(int32_t), n, logits, last_only);
}

int tfx_forward_ex(tfx_session *s, const int32_t *tokens, int32_t n, float *logits, int last_only) {
  if (!s) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(s)) return BUSY;
  return leave(s, forward_tokens(s, tokens, n, logits, last_only));
}

int tfx_forward(tfx_session *s, const int32_t *tokens, int32_t n, float *logits) {
  return tfx_forward_ex(s, tokens, n, logits, 1);
}

static int forward_f32(tfx_session *s, const float *x, int32_t n, float *out, int last_only) {
  const tfx_model_desc *d = &s->model->desc;
  if (d->n_inputs >= 2) return needs_inputs(s, "tfx_forward_f32");
  if (!x) return fail(s, TFX_ERR_INVALID_ARGUMENT, "x is NULL");
  if (n < 1) return fail(s, TFX_ERR_INVALID_ARGUMENT, "n = %d: a call needs at least one row", n);
  if (d->input_kind != TFX_INPUT_F32)
    return fail(s, TFX_ERR_WRONG_INPUT, "model '%s' takes token ids, not f32 activations: use tfx_forward", d->name);
  int rc = check_context(s, n);
  if (rc != TFX_OK) return rc;
  return run(s, x, (size_t)d->input_width * sizeof(float), n, out, last_only);
}

int tfx_forward_f32_ex(tfx_session *s, const float *x, int32_t n, float *out, int last_only) {
  if (!s) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(s)) return BUSY;
  return leave(s, forward_f32(s, x, n, out, last_only));
}

int tfx_forward_f32(tfx_session *s, const float *x, int32_t n, float *out) {
  return tfx_forward_f32_ex(s, x, n, out, 0);
}

/* Matches the caller's inputs to the model's (by name, or by position when
 * the name is NULL), then checks the ids of each input an embedding reads. */
static int forward_inputs(tfx_session *s, const tfx_input *inputs, int32_t n_inputs, int32_t n, float *out,
                          int last_only) {
  const tfx_model_desc *d = &s->model->desc;
  if (!inputs) return fail(s, TFX_ERR_INVALID_ARGUMENT, "inputs is NULL");
  if (n < 1) return fail(s, TFX_ERR_INVALID_ARGUMENT, "n = %d: a call needs at least one row", n);
  int32_t want = tfx_rt_caller_inputs(d);
  if (n_inputs != want)
    return fail(s, TFX_ERR_WRONG_INPUT, "model '%s' takes %d input%s, %d given", d->name, want, want == 1 ? "" : "s",
                n_inputs);
  if (want == 1) { /* a model of one input: its kind decides the call */
    if (!inputs[0].data) return fail(s, TFX_ERR_INVALID_ARGUMENT, "input 0 has no data (NULL)");
    return d->input_kind == TFX_INPUT_TOKENS ? forward_tokens(s, inputs[0].data, n, out, last_only)
                                             : forward_f32(s, inputs[0].data, n, out, last_only);
  }
  const void *tab[TFX_MAX_MODEL_INPUTS] = {NULL};
  int32_t rows[TFX_MAX_MODEL_INPUTS] = {0};
  for (int32_t k = 0; k < n_inputs; k++) {
    int32_t i = k;
    if (inputs[k].name) {
      for (i = 0; i < want && strcmp(d->inputs[i].name, inputs[k].name); i++) continue;
      if (i == want) return fail(s, TFX_ERR_WRONG_INPUT, "model '%s' has no input '%s'", d->name, inputs[k].name);
    }
    if (tab[i]) return fail(s, TFX_ERR_WRONG_INPUT, "input '%s' is given twice", d->inputs[i].name);
    if (!inputs[k].data) return fail(s, TFX_ERR_INVALID_ARGUMENT, "input '%s' has no data (NULL)", d->inputs[i].name);
    tab[i] = inputs[k].data;
    rows[i] = inputs[k].rows;
  }
  int rc = check_context(s, n);
  if (rc != TFX_OK) return rc;
  /* the sources: S rows each (the same S), padded to N with zeros into the
   * session's buffer, then the row mask */
  int32_t S = 0, N = want < d->n_inputs ? d->inputs[d->n_inputs - 1].rows : 0;
  for (int32_t i = 0; i < want; i++) {
    const tfx_input_desc *in = &d->inputs[i];
    if (in->rows <= 0) {
      if (rows[i] != 0 && rows[i] != n)
        return fail(s, TFX_ERR_INVALID_ARGUMENT, "input '%s' has the call's rows (n = %d), not %d (rows: 0 or n)",
                    in->name, n, rows[i]);
      continue;
    }
    if (rows[i] < 1 || rows[i] > in->rows)
      return fail(s, TFX_ERR_INVALID_ARGUMENT,
                  "input '%s' is a source of 1 to %d rows given per call (tfx_input.rows), got rows = %d", in->name,
                  in->rows, rows[i]);
    if (S && rows[i] != S)
      return fail(s, TFX_ERR_INVALID_ARGUMENT, "source '%s' has %d rows and another source %d: they share their rows",
                  in->name, rows[i], S);
    S = rows[i];
  }
  if (N > 0) {
    /* the padded sources and row mask, then (a source cache) the previous
     * call's: a static session's are in its arena (tfx_session_create_static) */
#ifndef TFX_RT_MINIMAL /* no allocator there: every session is static */
    if (!s->src && !(s->src = calloc((size_t)d->n_inputs * 2, (size_t)N * sizeof(int32_t))))
      return fail(s, TFX_ERR_OUT_OF_MEMORY, "no memory for the source's %d rows", N);
#endif
    if (!s->src) return fail(s, TFX_ERR_INVALID_ARGUMENT, "model '%s': the session has no source buffer", d->name);
    for (int32_t i = 0; i < want; i++) {
      if (d->inputs[i].rows <= 0) continue;
      int32_t *p = s->src + (size_t)i * (size_t)N;
      memcpy(p, tab[i], (size_t)S * 4); /* int32 and float: 4 bytes (0 bits: 0.0f) */
      memset(p + S, 0, (size_t)(N - S) * 4);
      tab[i] = p;
    }
    int32_t *mask = s->src + (size_t)want * (size_t)N;
    for (int32_t j = 0; j < N; j++) mask[j] = j < S;
    tab[want] = mask;
  }
  for (int32_t i = 0; i < want; i++) {
    const tfx_input_desc *in = &d->inputs[i];
    if (in->vocab <= 0 || in->kind == TFX_INPUT_F32) continue;
    const int32_t *ids = tab[i];
    int32_t nr = in->rows > 0 ? S : n;
    for (int32_t t = 0; t < nr; t++)
      if (ids[t] < 0 || ids[t] >= in->vocab)
        return fail(s, TFX_ERR_TOKEN_RANGE, "input '%s': id %d (at index %d) is outside [0, %d)", in->name, ids[t], t,
                    in->vocab);
  }
  if (N > 0 && d->src_cache_bytes > 0 && s->kv) {
    /* the source cache (tfx/abi.h): its values are the previous call's
     * source's; another source (rows, ids, values or S) recomputes them */
    size_t bytes = (size_t)d->n_inputs * (size_t)N * sizeof(int32_t);
    int32_t *prev = s->src + (size_t)d->n_inputs * (size_t)N;
    if (memcmp(prev, s->src, bytes) != 0) {
      memcpy(prev, s->src, bytes);
      *(volatile int32_t *)s->kv = 0;
    }
  }
  return run(s, tab, 0, n, out, last_only);
}

int tfx_forward_inputs(tfx_session *s, const tfx_input *inputs, int32_t n_inputs, int32_t n, float *out,
                       int last_only) {
  if (!s) return TFX_ERR_INVALID_ARGUMENT;
  if (enter(s)) return BUSY;
  return leave(s, forward_inputs(s, inputs, n_inputs, n, out, last_only));
}

const char *tfx_session_last_error(const tfx_session *s) {
  if (!s) return "no session (NULL)";
  return s->error;
}
