/* runtime/tokenizer_gguf.c — the vocabulary embedded in a GGUF file
 * (llama.cpp's tokenizer.ggml.* metadata): "llama" (SentencePiece BPE with
 * scores, token types and byte fallback) and "gpt2" (byte-level BPE with
 * merges). Reads only the metadata, never the tensors; the runtime's own
 * reader, since the frontend's GGUF reader is not the runtime's to use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "tfx/tfx.h"
#include "tokenizer_internal.h"

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 };

typedef struct {
  const unsigned char *p, *end;
  int bad;
} gr;

static uint64_t rd(gr *r, int n) {
  if (r->bad || r->end - r->p < n) {
    r->bad = 1;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
  r->p += n;
  return v;
}

static const int scalar_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* skips one value of type ty (arrays of arrays included, to a fixed depth) */
static void skip_value(gr *r, uint32_t ty, int depth) {
  if (ty == G_STR) {
    uint64_t l = rd(r, 8);
    if (l > (uint64_t)(r->end - r->p))
      r->bad = 1;
    else
      r->p += l;
  } else if (ty == G_ARR) {
    uint32_t et = (uint32_t)rd(r, 4);
    uint64_t n = rd(r, 8);
    if (depth > 4 || et > G_F64) r->bad = 1;
    for (uint64_t i = 0; i < n && !r->bad; i++) skip_value(r, et, depth + 1);
  } else if (ty <= G_F64) {
    rd(r, scalar_size[ty]);
  } else {
    r->bad = 1;
  }
}

typedef struct {
  const unsigned char *at; /* the array's first item */
  uint32_t type;
  uint64_t n;
} garr;

typedef struct {
  char model[32], pre[32];
  garr tokens, scores, types, merges;
  int64_t bos, eos, unk;
  int add_space_prefix;
} gmeta;

static int key_is(const unsigned char *k, uint64_t kl, const char *name) {
  return kl == strlen(name) && memcmp(k, name, kl) == 0;
}

int tok_gguf_open(const char *path, const unsigned char *d, size_t size, tfx_tokenizer **out, char *err,
                  size_t errlen) {
  gr r = {d + 4, d + size, 0};
  uint32_t version = (uint32_t)rd(&r, 4);
  rd(&r, 8); /* tensors */
  uint64_t n_kv = rd(&r, 8);
  if (r.bad || (version != 2 && version != 3)) {
    tfx_rt_error(err, errlen, 0, "%s: GGUF version %u is not supported (2 or 3)", path, version);
    return TFX_ERR_TOKENIZER;
  }
  gmeta m = {.bos = -1, .eos = -1, .unk = -1, .add_space_prefix = 1};
  for (uint64_t i = 0; i < n_kv && !r.bad; i++) {
    uint64_t kl = rd(&r, 8);
    if (r.bad || kl > (uint64_t)(r.end - r.p)) {
      r.bad = 1;
      break;
    }
    const unsigned char *k = r.p;
    r.p += kl;
    uint32_t ty = (uint32_t)rd(&r, 4);
    const unsigned char *v = r.p;
    garr *arr = key_is(k, kl, "tokenizer.ggml.tokens")       ? &m.tokens
                : key_is(k, kl, "tokenizer.ggml.scores")     ? &m.scores
                : key_is(k, kl, "tokenizer.ggml.token_type") ? &m.types
                : key_is(k, kl, "tokenizer.ggml.merges")     ? &m.merges
                                                             : NULL;
    int64_t *id = key_is(k, kl, "tokenizer.ggml.bos_token_id")       ? &m.bos
                  : key_is(k, kl, "tokenizer.ggml.eos_token_id")     ? &m.eos
                  : key_is(k, kl, "tokenizer.ggml.unknown_token_id") ? &m.unk
                                                                     : NULL;
    if (arr && ty == G_ARR) {
      arr->type = (uint32_t)rd(&r, 4);
      arr->n = rd(&r, 8);
      arr->at = r.p;
      r.p = v;
    } else if (id && (ty == G_U32 || ty == G_I32)) {
      *id = ty == G_U32 ? (int64_t)(uint32_t)rd(&r, 4) : (int64_t)(int32_t)rd(&r, 4);
      r.p = v;
    } else if (key_is(k, kl, "tokenizer.ggml.add_space_prefix") && ty == G_BOOL) {
      m.add_space_prefix = (int)rd(&r, 1);
      r.p = v;
    } else if ((key_is(k, kl, "tokenizer.ggml.model") || key_is(k, kl, "tokenizer.ggml.pre")) && ty == G_STR) {
      char *dst = k[kl - 1] == 'l' ? m.model : m.pre;
      uint64_t l = rd(&r, 8);
      if (!r.bad && l < sizeof m.model && l <= (uint64_t)(r.end - r.p))
        memcpy(dst, r.p, l);
      else if (!r.bad)
        memcpy(dst, "?", 2);
      r.p = v;
    }
    skip_value(&r, ty, 0);
  }
  if (r.bad) {
    tfx_rt_error(err, errlen, 0, "%s: truncated or malformed GGUF metadata", path);
    return TFX_ERR_TOKENIZER;
  }
  int spm = !strcmp(m.model, "llama"), gpt2 = !strcmp(m.model, "gpt2");
  if (!spm && !gpt2) {
    tfx_rt_error(err, errlen, 0, "%s: %s", path,
                 m.model[0] ? "the GGUF tokenizer model is not supported (only llama and gpt2)"
                            : "the GGUF file has no vocabulary (no tokenizer.ggml.model)");
    return TFX_ERR_TOKENIZER;
  }
  /* llama.cpp's pre-tokenizer names for the regexes implemented here */
  int split = !m.pre[0] || !strcmp(m.pre, "default") || !strcmp(m.pre, "gpt-2") ? 0
              : !strcmp(m.pre, "llama-bpe") || !strcmp(m.pre, "llama3")         ? TOK_SPLIT_LLAMA3
              : !strcmp(m.pre, "qwen2")                                         ? TOK_SPLIT_QWEN2
                                                                                : -1;
  if (gpt2 && split < 0) {
    tfx_rt_error(err, errlen, 0, "%s: the GGUF pre-tokenizer '%s' is not supported (default/gpt-2, llama-bpe, qwen2)",
                 path, m.pre);
    return TFX_ERR_TOKENIZER;
  }
  if (m.tokens.type != G_STR || m.tokens.n == 0 || m.tokens.n > (1u << 24) || m.tokens.n > size / 8 ||
      (m.scores.at && (m.scores.type != G_F32 || m.scores.n != m.tokens.n)) ||
      (m.types.at && (m.types.type != G_I32 || m.types.n != m.tokens.n)) || (m.merges.at && m.merges.type != G_STR)) {
    tfx_rt_error(err, errlen, 0, "%s: the GGUF vocabulary arrays (tokens, scores, token_type, merges) are malformed",
                 path);
    return TFX_ERR_TOKENIZER;
  }
  int n = (int)m.tokens.n;
  tfx_tokenizer *t = tok_alloc(n);
  if (!t) return TFX_ERR_OUT_OF_MEMORY;
  gr tr = {m.tokens.at, d + size, 0}, sr = {m.scores.at, d + size, 0}, yr = {m.types.at, d + size, 0};
  int n_added = 0, rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    uint64_t l = rd(&tr, 8);
    if (tr.bad || l > (uint64_t)(tr.end - tr.p)) {
      rc = TFX_ERR_TOKENIZER;
      break;
    }
    const char *s = (const char *)tr.p;
    tr.p += l;
    uint32_t sc = m.scores.at ? (uint32_t)rd(&sr, 4) : 0;
    float score;
    memcpy(&score, &sc, 4);
    int ty = m.types.at ? (int)(int32_t)rd(&yr, 4) : TOK_NORMAL;
    if (ty < TOK_NORMAL || ty > TOK_BYTE) ty = TOK_NORMAL;
    if (gpt2 && ty == TOK_BYTE) ty = TOK_NORMAL;
    n_added += gpt2 && (ty == TOK_CONTROL || ty == TOK_USER) && l;
    if (tok_set_piece(t, i, s, (size_t)l, score, ty)) rc = TFX_ERR_OUT_OF_MEMORY;
  }
  if (!rc && (tr.bad || sr.bad || yr.bad)) rc = TFX_ERR_TOKENIZER;
  if (!rc && tok_finish(t)) rc = TFX_ERR_OUT_OF_MEMORY;
  if (!rc && n_added) {
    if (!(t->added = malloc((size_t)n_added * sizeof *t->added))) rc = TFX_ERR_OUT_OF_MEMORY;
    for (int i = 0; !rc && i < n; i++)
      if ((t->type[i] == TOK_CONTROL || t->type[i] == TOK_USER) && t->plen[i]) t->added[t->n_added++] = i;
  }
  gr mr = {m.merges.at, d + size, 0};
  for (uint64_t i = 0; !rc && gpt2 && m.merges.at && i < m.merges.n; i++) {
    uint64_t l = rd(&mr, 8);
    if (mr.bad || l > (uint64_t)(mr.end - mr.p)) {
      rc = TFX_ERR_TOKENIZER;
      break;
    }
    const char *s = (const char *)mr.p, *sp = memchr(s, ' ', (size_t)l);
    mr.p += l;
    int32_t a = sp ? tok_lookup(t, s, (size_t)(sp - s)) : -1;
    int32_t b = sp ? tok_lookup(t, sp + 1, (size_t)(l - (uint64_t)(sp - s) - 1)) : -1;
    char *cat = malloc((size_t)l);
    if (!cat) {
      rc = TFX_ERR_OUT_OF_MEMORY;
      break;
    }
    int32_t c = -1;
    if (sp) {
      size_t al = (size_t)(sp - s);
      memcpy(cat, s, al);
      memcpy(cat + al, sp + 1, (size_t)l - al - 1);
      c = tok_lookup(t, cat, (size_t)l - 1);
    }
    free(cat);
    if (a < 0 || b < 0 || c < 0) {
      tfx_rt_error(err, errlen, 0, "%s: GGUF merge %llu is not two pieces of the vocabulary", path,
                   (unsigned long long)i);
      rc = TFX_ERR_TOKENIZER;
    } else if (tok_add_merge(t, a, b, (int32_t)i, c)) {
      rc = TFX_ERR_OUT_OF_MEMORY;
    }
  }
  if (rc) {
    if (rc == TFX_ERR_TOKENIZER && err && errlen && !err[0])
      tfx_rt_error(err, errlen, 0, "%s: truncated GGUF vocabulary", path);
    tfx_tokenizer_close(t);
    return rc;
  }
  if (spm) {
    t->kind = TOK_SPM_BPE;
    t->spm_space = 1;
    t->add_dummy_prefix = m.add_space_prefix;
    for (int b = 0; b < 256; b++) t->byte_fallback |= t->byte_id[b] >= 0;
  } else {
    t->kind = TOK_RANK_BPE;
    t->byte_level = 1;
    t->hf_flags = split > 0 ? split : 2; /* the Llama 3 / Qwen2 split, or GPT-2's regex */
  }
  if (m.unk >= 0 && m.unk < n) t->unk = (int)m.unk;
  t->bos = m.bos >= 0 && m.bos < n ? (int)m.bos : -1;
  t->eos = m.eos >= 0 && m.eos < n ? (int)m.eos : -1;
  *out = t;
  return 0;
}
