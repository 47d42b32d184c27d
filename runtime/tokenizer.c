/* runtime/tokenizer.c — the tokenizer API (tfx/tokenizer.h): the piece
 * table, SentencePiece-style BPE (merge on scores) and rank BPE (merge on
 * merge ranks, Hugging Face), Unigram by Viterbi, byte fallback, decoding,
 * and the readers of llama2.c tokenizer.bin and SentencePiece .model
 * (protobuf). tokenizer_hf.c reads tokenizer.json. Knows nothing of the
 * compiler. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_internal.h"
#include "tfx/tfx.h"
#include "tokenizer_internal.h"

/* ---- the piece table ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

tfx_tokenizer *tok_alloc(int n) {
  tfx_tokenizer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->n = n;
  t->piece = calloc((size_t)n + 1, sizeof *t->piece);
  t->plen = calloc((size_t)n + 1, sizeof *t->plen);
  t->score = calloc((size_t)n + 1, sizeof *t->score);
  t->type = calloc((size_t)n + 1, 1);
  t->unk = t->bos = t->eos = -1;
  for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
  if (!t->piece || !t->plen || !t->score || !t->type) {
    tfx_tokenizer_close(t);
    return NULL;
  }
  return t;
}

int tok_set_piece(tfx_tokenizer *t, int id, const char *s, size_t len, float score, int type) {
  if (id < 0 || id >= t->n) return TFX_ERR_INVALID_ARGUMENT;
  char *p = malloc(len + 1);
  if (!p) return TFX_ERR_OUT_OF_MEMORY;
  memcpy(p, s, len);
  p[len] = 0;
  free(t->piece[id]);
  t->piece[id] = p;
  t->plen[id] = (int)len;
  t->score[id] = score;
  t->type[id] = (uint8_t)type;
  return 0;
}

static int is_byte_piece(const char *p, int len, int *byte) {
  static const char hex[] = "0123456789ABCDEF";
  if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return 0;
  const char *h = strchr(hex, p[3]), *l = strchr(hex, p[4]);
  if (!h || !l || !p[3] || !p[4]) return 0;
  *byte = (int)((h - hex) * 16 + (l - hex));
  return 1;
}

int tok_finish(tfx_tokenizer *t) {
  t->htcap = 64;
  while (t->htcap < (size_t)t->n * 2) t->htcap *= 2;
  t->ht = malloc(t->htcap * sizeof *t->ht);
  if (!t->ht) return TFX_ERR_OUT_OF_MEMORY;
  memset(t->ht, 0xff, t->htcap * sizeof *t->ht);
  t->min_score = 1e30f;
  t->max_score = -1e30f;
  for (int i = 0; i < t->n; i++) {
    if (!t->piece[i]) { /* a hole in the ids: an empty unused piece */
      if (tok_set_piece(t, i, "", 0, 0, TOK_UNUSED)) return TFX_ERR_OUT_OF_MEMORY;
    }
    int b;
    if (t->type[i] == TOK_BYTE && is_byte_piece(t->piece[i], t->plen[i], &b) && t->byte_id[b] < 0) t->byte_id[b] = i;
    if (t->type[i] == TOK_UNKNOWN && t->unk < 0) t->unk = i;
    if (t->plen[i] > t->max_plen) t->max_plen = t->plen[i];
    if (t->type[i] == TOK_NORMAL) {
      if (t->score[i] < t->min_score) t->min_score = t->score[i];
      if (t->score[i] > t->max_score) t->max_score = t->score[i];
    }
    /* the first id of a piece wins (SentencePiece refuses duplicates) */
    size_t h = hash_bytes(t->piece[i], (size_t)t->plen[i]) & (t->htcap - 1);
    for (;; h = (h + 1) & (t->htcap - 1)) {
      int32_t j = t->ht[h];
      if (j < 0) {
        t->ht[h] = i;
        break;
      }
      if (t->plen[j] == t->plen[i] && memcmp(t->piece[j], t->piece[i], (size_t)t->plen[i]) == 0) break;
    }
  }
  if (t->min_score > t->max_score) t->min_score = t->max_score = 0;
  return 0;
}

int32_t tok_lookup(const tfx_tokenizer *t, const char *s, size_t len) {
  if (!t->ht) return -1;
  size_t h = hash_bytes(s, len) & (t->htcap - 1);
  for (;; h = (h + 1) & (t->htcap - 1)) {
    int32_t j = t->ht[h];
    if (j < 0) return -1;
    if ((size_t)t->plen[j] == len && memcmp(t->piece[j], s, len) == 0) return j;
  }
}

static uint64_t merge_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t merge_slot(uint64_t k, size_t cap) { return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1); }

int tok_add_merge(tfx_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
  if (!t->mkey) {
    t->mcap = 1024;
    t->mkey = malloc(t->mcap * sizeof *t->mkey);
    t->mrank = malloc(t->mcap * sizeof *t->mrank);
    t->mid = malloc(t->mcap * sizeof *t->mid);
    if (!t->mkey || !t->mrank || !t->mid) return TFX_ERR_OUT_OF_MEMORY;
    memset(t->mkey, 0xff, t->mcap * sizeof *t->mkey);
  }
  static const uint64_t EMPTY = ~0ull;
  if (t->mcount * 2 >= t->mcap) {
    size_t ncap = t->mcap * 2;
    uint64_t *nk = malloc(ncap * sizeof *nk);
    int32_t *nr = malloc(ncap * sizeof *nr), *ni = malloc(ncap * sizeof *ni);
    if (!nk || !nr || !ni) {
      free(nk);
      free(nr);
      free(ni);
      return TFX_ERR_OUT_OF_MEMORY;
    }
    memset(nk, 0xff, ncap * sizeof *nk);
    for (size_t i = 0; i < t->mcap; i++) {
      if (t->mkey[i] == EMPTY) continue;
      size_t h = merge_slot(t->mkey[i], ncap);
      while (nk[h] != EMPTY) h = (h + 1) & (ncap - 1);
      nk[h] = t->mkey[i];
      nr[h] = t->mrank[i];
      ni[h] = t->mid[i];
    }
    free(t->mkey);
    free(t->mrank);
    free(t->mid);
    t->mkey = nk;
    t->mrank = nr;
    t->mid = ni;
    t->mcap = ncap;
  }
  uint64_t k = merge_key(a, b);
  size_t h = merge_slot(k, t->mcap);
  while (t->mkey[h] != EMPTY && t->mkey[h] != k) h = (h + 1) & (t->mcap - 1);
  if (t->mkey[h] == k) return 0; /* the first (lowest) rank of a repeated merge wins */
  t->mkey[h] = k;
  t->mcount++;
  t->mrank[h] = rank;
  t->mid[h] = merged;
  return 0;
}

static int merge_find(const tfx_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
  if (!t->mkey || a < 0 || b < 0) return 0;
  uint64_t k = merge_key(a, b);
  size_t h = merge_slot(k, t->mcap);
  while (t->mkey[h] != ~0ull) {
    if (t->mkey[h] == k) {
      *rank = t->mrank[h];
      *merged = t->mid[h];
      return 1;
    }
    h = (h + 1) & (t->mcap - 1);
  }
  return 0;
}

void tfx_tokenizer_close(tfx_tokenizer *t) {
  if (!t) return;
  if (t->piece)
    for (int i = 0; i < t->n; i++) free(t->piece[i]);
  free(t->piece);
  free(t->plen);
  free(t->score);
  free(t->type);
  free(t->ht);
  free(t->mkey);
  free(t->mrank);
  free(t->mid);
  free(t->added);
  free(t->cm_trie);
  free(t->cm_norm);
  free(t);
}

int tfx_tokenizer_vocab_size(const tfx_tokenizer *t) { return t ? t->n : TFX_ERR_INVALID_ARGUMENT; }
int tfx_tokenizer_bos(const tfx_tokenizer *t) { return t ? t->bos : TFX_ERR_INVALID_ARGUMENT; }
int tfx_tokenizer_eos(const tfx_tokenizer *t) { return t ? t->eos : TFX_ERR_INVALID_ARGUMENT; }

int tok_utf8(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned c = s[0];
  int len;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    v = c & 0x07;
  } else {
    *cp = 0xFFFD;
    return 1;
  }
  if ((size_t)len > n) {
    *cp = 0xFFFD;
    return 1;
  }
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) {
      *cp = 0xFFFD;
      return 1;
    }
    v = (v << 6) | (s[i] & 0x3F);
  }
  static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    *cp = 0xFFFD;
    return 1;
  }
  *cp = v;
  return len;
}

/* An id into the output; a negative one (a piece the vocabulary has no
 * token for, and no unknown token to stand for it) is dropped, as Hugging
 * Face's tokenizers and llama.cpp drop it: encode never returns an id
 * outside [0, vocab). */
void tok_emit(tok_sink *s, int32_t id) {
  if (id < 0) return;
  if (s->n < s->max) s->ids[s->n] = id;
  s->n++;
}

/* an id as the model's output: unknown pieces become their bytes when the
 * tokenizer falls back to bytes */
static void emit_piece(const tfx_tokenizer *t, const char *w, size_t len, int32_t id, tok_sink *out) {
  if ((id < 0 || t->type[id] == TOK_UNKNOWN) && t->byte_fallback) {
    for (size_t i = 0; i < len; i++) {
      int32_t b = t->byte_id[(unsigned char)w[i]];
      tok_emit(out, b >= 0 ? b : t->unk);
    }
    return;
  }
  tok_emit(out, id >= 0 ? id : t->unk);
}

/* ---- BPE: SentencePiece (scores) and Hugging Face (ranks) ---- */

typedef struct {
  int start, len, prev, next;
  int32_t id; /* rank BPE: the symbol's id */
} sym;

typedef struct {
  float score; /* higher merges first */
  int left, right, llen, rlen;
  int32_t merged;
} cand;

static int cand_before(const cand *a, const cand *b) {
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
  cand *v;
  int n, cap;
} heap;

static int heap_push(heap *h, cand c) {
  if (h->n == h->cap) {
    int ncap = h->cap ? h->cap * 2 : 64;
    cand *nv = realloc(h->v, (size_t)ncap * sizeof *nv);
    if (!nv) return TFX_ERR_OUT_OF_MEMORY;
    h->v = nv;
    h->cap = ncap;
  }
  int i = h->n++;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!cand_before(&c, &h->v[p])) break;
    h->v[i] = h->v[p];
    i = p;
  }
  h->v[i] = c;
  return 0;
}

static cand heap_pop(heap *h) {
  cand top = h->v[0], last = h->v[--h->n];
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    const cand *best = &last;
    if (l < h->n && cand_before(&h->v[l], best)) m = l, best = &h->v[l];
    if (r < h->n && cand_before(&h->v[r], best)) m = r;
    if (m == i) break;
    h->v[i] = h->v[m];
    i = m;
  }
  if (h->n) h->v[i] = last;
  return top;
}

static int try_pair(const tfx_tokenizer *t, const char *w, const sym *s, int l, heap *h) {
  if (l < 0) return 0;
  int r = s[l].next;
  if (r < 0) return 0;
  cand c = {0, l, r, s[l].len, s[r].len, -1};
  if (t->kind == TOK_RANK_BPE) {
    int32_t rank;
    if (!merge_find(t, s[l].id, s[r].id, &rank, &c.merged)) return 0;
    c.score = -(float)rank;
  } else {
    int32_t id = tok_lookup(t, w + s[l].start, (size_t)(s[l].len + s[r].len));
    if (id < 0 || (t->type[id] != TOK_NORMAL && t->type[id] != TOK_USER && t->type[id] != TOK_UNUSED)) return 0;
    c.score = t->score[id];
    c.merged = id;
  }
  return heap_push(h, c);
}

static int encode_bpe(const tfx_tokenizer *t, const char *w, size_t len, tok_sink *out) {
  sym *s = malloc((len + 1) * sizeof *s);
  heap h = {0};
  if (!s) return TFX_ERR_OUT_OF_MEMORY;
  int n = 0, rc = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int cl = tok_utf8((const unsigned char *)w + i, len - i, &cp);
    int32_t id = -1;
    if (t->kind == TOK_RANK_BPE) {
      id = tok_lookup(t, w + i, (size_t)cl);
      if (id < 0 && t->byte_fallback) {
        int ok = 1;
        for (int k = 0; k < cl; k++) ok &= t->byte_id[(unsigned char)w[i + k]] >= 0;
        if (ok) {
          for (int k = 0; k < cl; k++)
            s[n] = (sym){(int)i + k, 1, n - 1, n + 1, t->byte_id[(unsigned char)w[i + k]]}, n++;
          i += (size_t)cl;
          continue;
        }
      }
      if (id < 0) id = t->unk;
    }
    s[n] = (sym){(int)i, cl, n - 1, n + 1, id};
    n++;
    i += (size_t)cl;
  }
  if (n) s[n - 1].next = -1;
  for (int i = 0; i + 1 < n && !rc; i++) rc = try_pair(t, w, s, i, &h);
  while (h.n && !rc) {
    cand c = heap_pop(&h);
    sym *a = &s[c.left], *b = &s[c.right];
    if (a->len == 0 || b->len == 0 || a->next != c.right || a->len != c.llen || b->len != c.rlen) continue;
    a->len += b->len;
    a->id = c.merged;
    a->next = b->next;
    if (b->next >= 0) s[b->next].prev = c.left;
    b->len = 0;
    rc = try_pair(t, w, s, a->prev, &h);
    if (!rc) rc = try_pair(t, w, s, c.left, &h);
  }
  for (int i = 0; n && i >= 0 && !rc; i = s[i].next) {
    if (t->kind == TOK_RANK_BPE) {
      tok_emit(out, s[i].id);
    } else {
      const char *p = w + s[i].start;
      emit_piece(t, p, (size_t)s[i].len, tok_lookup(t, p, (size_t)s[i].len), out);
    }
  }
  free(s);
  free(h.v);
  return rc;
}

/* ---- Unigram: the segmentation of highest total score (Viterbi) ---- */

/* Ties between segmentations are common (")))" as ")" "))" or "))" ")")
 * and rounding decides them, so the arithmetic follows each reference.
 * Hugging Face's tokenizers add and compare in double. SentencePiece's
 * optimized encoder (the default since 0.1.9x; one lattice over the whole
 * text, so the sums grow large and float rounding matters) keeps each
 * position's best path score as a float, but forms a candidate as a double
 * (a float score plus the float best: exact) and compares that double with
 * the stored float before rounding it into the slot; a user-defined piece's
 * score is length * max_score - 0.1 in double; the unknown candidate is a
 * float sum. Among equal scores the first candidate found (the earliest
 * start) stays, in both. (Two doc edits changed the test's trained model so
 * that a near-tie fell the other way: under double sums, then under float
 * sums rounded before the comparison.) */
static int encode_unigram(const tfx_tokenizer *t, const char *w, size_t len, tok_sink *out) {
  const float unk_penalty = 10.0f;
  const int hf = (t->hf_flags & TOK_HF) != 0;
  double *best = malloc((len + 1) * sizeof *best);
  int *from = malloc((len + 1) * sizeof *from);
  int32_t *bid = malloc((len + 1) * sizeof *bid);
  if (!best || !from || !bid) {
    free(best);
    free(from);
    free(bid);
    return TFX_ERR_OUT_OF_MEMORY;
  }
  for (size_t i = 0; i <= len; i++) from[i] = -1;
  best[0] = 0;
  from[0] = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int cl = tok_utf8((const unsigned char *)w + i, len - i, &cp);
    if (from[i] < 0) { /* not reachable: cannot happen, every char has a node */
      i += (size_t)cl;
      continue;
    }
    int single = 0;
    for (size_t j = i; j < len && (int)(j - i) < t->max_plen;) {
      uint32_t c2;
      j += (size_t)tok_utf8((const unsigned char *)w + j, len - j, &c2);
      int32_t id = tok_lookup(t, w + i, j - i);
      /* Hugging Face's lattice has every piece of the vocabulary, <unk> included */
      if (id < 0 || (t->type[id] != TOK_NORMAL && t->type[id] != TOK_USER &&
                     !(t->type[id] == TOK_UNKNOWN && (t->hf_flags & TOK_HF))))
        continue;
      int user = t->type[id] == TOK_USER;
      float len_score = (float)(j - i) * t->max_score;
      double sc = user ? (hf ? (double)(len_score - 0.1f) : (double)len_score - 0.1) : (double)t->score[id];
      double cs = best[i] + sc; /* SentencePiece: best[i] is a float, the sum exact in double */
      if (from[j] < 0 || cs > best[j]) best[j] = hf ? cs : (double)(float)cs, from[j] = (int)i, bid[j] = id;
      if (j - i == (size_t)cl) single = 1;
    }
    if (!single) {
      size_t j = i + (size_t)cl;
      double cs = hf ? best[i] + t->min_score - unk_penalty : (double)((float)best[i] + (t->min_score - unk_penalty));
      /* (SentencePiece: a float sum, already rounded) */
      if (from[j] < 0 || cs > best[j]) best[j] = cs, from[j] = (int)i, bid[j] = -1;
    }
    i += (size_t)cl;
  }
  /* backtrack into a reversed list, then emit forward */
  int m = 0;
  for (size_t j = len; j > 0; j = (size_t)from[j]) m++;
  int *pos = malloc((size_t)(m + 1) * sizeof *pos);
  if (!pos) {
    free(best);
    free(from);
    free(bid);
    return TFX_ERR_OUT_OF_MEMORY;
  }
  int k = m;
  pos[k] = (int)len;
  for (size_t j = len; j > 0; j = (size_t)from[j]) pos[--k] = from[j];
  for (int i = 0; i < m; i++) {
    /* Hugging Face fuses a run of unknown characters into one <unk> */
    int fuse = (t->hf_flags & TOK_HF) && !t->byte_fallback && i && bid[pos[i]] < 0 && bid[pos[i + 1]] < 0;
    if (!fuse) emit_piece(t, w + pos[i], (size_t)(pos[i + 1] - pos[i]), bid[pos[i + 1]], out);
  }
  free(pos);
  free(best);
  free(from);
  free(bid);
  return 0;
}

int tok_encode_word(const tfx_tokenizer *t, const char *w, size_t len, tok_sink *out) {
  if (!len) return 0;
  return t->kind == TOK_SPM_UNIGRAM ? encode_unigram(t, w, len, out) : encode_bpe(t, w, len, out);
}

/* SentencePiece's precompiled character map: the longest prefix of s (at
 * most n bytes) in its double-array trie (Darts); returns the match's length
 * and its replacement, or 0 */
size_t tok_charsmap_match(const tfx_tokenizer *t, const unsigned char *s, size_t n, const char **rep) {
  const uint32_t *a = t->cm_trie;
  size_t na = t->cm_trie_n, best = 0;
  if (!na) return 0;
  uint32_t pos = (a[0] >> 10) << ((a[0] & (1u << 9)) >> 6);
  for (size_t i = 0; i < n; i++) {
    pos ^= s[i];
    if (pos >= na) break;
    uint32_t u = a[pos];
    if ((u & ((1u << 31) | 0xFF)) != s[i]) break;
    pos ^= (u >> 10) << ((u & (1u << 9)) >> 6);
    if (pos >= na) break;
    if ((u >> 8) & 1) {
      uint32_t v = a[pos] & 0x7FFFFFFFu;
      if (v < t->cm_norm_n) {
        best = i + 1;
        *rep = t->cm_norm + v;
      }
    }
  }
  return best;
}

typedef struct {
  char *p;
  size_t n, cap;
} obuf;

static int oput(obuf *o, const char *s, size_t n) {
  if (o->n + n + 1 > o->cap) {
    size_t cap = (o->n + n + 1) * 2;
    char *np = realloc(o->p, cap);
    if (!np) return -1;
    o->p = np;
    o->cap = cap;
  }
  memcpy(o->p + o->n, s, n);
  o->n += n;
  return 0;
}

/* SentencePiece's normalizer: each prefix to its character-map replacement
 * (or the character itself; invalid UTF-8 to U+FFFD), optional removal of
 * extra spaces, the dummy prefix, spaces to the space piece (U+2581, or ' '
 * in llama2.c's files) */
static char *spm_normalize(const tfx_tokenizer *t, const char *text, size_t len, size_t *olen) {
  const char *ws = t->spm_space ? "\xE2\x96\x81" : " ";
  size_t wl = strlen(ws), i = 0;
  obuf o = {0};
  int prev_space = t->remove_extra_ws, started = 0, err = oput(&o, "", 0);
  while (i < len && !err) {
    const char *piece = NULL;
    size_t consumed = tok_charsmap_match(t, (const unsigned char *)text + i, len - i, &piece), pl;
    if (consumed) {
      pl = strlen(piece);
    } else {
      uint32_t cp;
      int cl = tok_utf8((const unsigned char *)text + i, len - i, &cp);
      consumed = (size_t)cl;
      piece = cp == 0xFFFD && cl == 1 ? "\xEF\xBF\xBD" : text + i;
      pl = cp == 0xFFFD && cl == 1 ? 3 : (size_t)cl;
    }
    i += consumed;
    if (prev_space)
      while (pl && piece[0] == ' ') piece++, pl--;
    if (!pl) continue;
    if (!started && t->add_dummy_prefix) err |= oput(&o, ws, wl);
    started = 1;
    for (size_t k = 0; k < pl && !err; k++) {
      if (piece[k] == ' ') {
        err |= oput(&o, ws, wl);
      } else if (!t->spm_space && pl - k >= 3 && !memcmp(piece + k, "\xE2\x96\x81", 3)) {
        err |= oput(&o, " ", 1); /* U+2581 in the text is a space piece, as llama2.c's files write it */
        k += 2;
      } else {
        err |= oput(&o, piece + k, 1);
      }
    }
    prev_space = t->remove_extra_ws && piece[pl - 1] == ' ';
  }
  if (t->remove_extra_ws)
    while (o.n >= wl && memcmp(o.p + o.n - wl, ws, wl) == 0) o.n -= wl;
  if (err) {
    free(o.p);
    return NULL;
  }
  *olen = o.n;
  return o.p;
}

int tfx_tokenizer_encode(const tfx_tokenizer *t, const char *text, size_t len, int flags, int32_t *ids, int max_ids) {
  if (!t || (!text && len) || max_ids < 0 || (!ids && max_ids)) return TFX_ERR_INVALID_ARGUMENT;
  if (len > TFX_TOKENIZE_MAX_BYTES) return TFX_ERR_INVALID_ARGUMENT; /* the count must fit an int */
  tok_sink out = {ids, max_ids, 0};
  if ((flags & TFX_TOKENIZE_BOS) && t->bos >= 0) tok_emit(&out, t->bos);
  int rc;
  if (t->added || t->byte_level || t->kind == TOK_RANK_BPE || (t->hf_flags & TOK_HF)) {
    rc = tok_hf_encode(t, text, len, &out);
  } else {
    size_t nl;
    char *norm = spm_normalize(t, text ? text : "", len, &nl);
    if (!norm) return TFX_ERR_OUT_OF_MEMORY;
    rc = tok_encode_word(t, norm, nl, &out);
    free(norm);
  }
  if (rc) return rc;
  return out.n < 0 ? TFX_ERR_INTERNAL : out.n;
}

/* ---- decoding ---- */

static size_t put(char *buf, size_t cap, size_t n, const char *s, size_t len) {
  if (n < cap) memcpy(buf + n, s, len < cap - n ? len : cap - n);
  return n + len;
}

int tfx_tokenizer_decode_piece(const tfx_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap) {
  if (!t || (!buf && cap)) return TFX_ERR_INVALID_ARGUMENT;
  if (id < 0 || id >= t->n) return TFX_ERR_TOKEN_RANGE;
  if (t->byte_level) return tok_hf_decode_piece(t, id, buf, cap);
  int ty = t->type[id];
  if (ty == TOK_CONTROL) return 0;
  if (ty == TOK_BYTE) {
    int b;
    if (!is_byte_piece(t->piece[id], t->plen[id], &b)) return 0;
    char c = (char)b;
    return (int)put(buf, cap, 0, &c, 1);
  }
  if (ty == TOK_UNKNOWN && !(t->hf_flags & TOK_HF)) return (int)put(buf, cap, 0, " \xE2\x81\x87 ", 5);
  const char *p = t->piece[id];
  size_t len = (size_t)t->plen[id], n = 0;
  int at_start = prev < 0 || (prev < t->n && (t->type[prev] == TOK_CONTROL) && prev == t->bos);
  size_t i = 0;
  if (t->spm_space && len >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0 && at_start && t->add_dummy_prefix)
    i = 3;
  else if (!t->spm_space && len >= 1 && p[0] == ' ' && at_start && t->add_dummy_prefix)
    i = 1;
  while (i < len) {
    if (t->spm_space && i + 3 <= len && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
      n = put(buf, cap, n, " ", 1);
      i += 3;
    } else {
      n = put(buf, cap, n, p + i, 1);
      i++;
    }
  }
  return (int)n;
}

int tfx_tokenizer_decode(const tfx_tokenizer *t, const int32_t *ids, int n, char *buf, size_t cap) {
  if (!t || n < 0 || (!ids && n) || (!buf && cap)) return TFX_ERR_INVALID_ARGUMENT;
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    int r = tfx_tokenizer_decode_piece(t, i ? ids[i - 1] : -1, ids[i], buf ? buf + (total < cap ? total : cap) : NULL,
                                       total < cap ? cap - total : 0);
    if (r < 0) return r;
    total += (size_t)r;
  }
  if (total > (size_t)0x7fffffff) return TFX_ERR_OUT_OF_MEMORY;
  if (total < cap) buf[total] = 0;
  return (int)total;
}

/* ---- llama2.c tokenizer.bin ---- */

static uint32_t rd_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int32_t rd_i32(const unsigned char *p) { return (int32_t)rd_u32(p); }

static int open_bin(const char *path, const unsigned char *d, size_t size, tfx_tokenizer **out, char *err,
                    size_t errlen) {
  if (size < 4) {
    tfx_rt_error(err, errlen, 0, "%s: not a tokenizer (too short for llama2.c's tokenizer.bin)", path);
    return TFX_ERR_TOKENIZER;
  }
  int32_t maxlen = rd_i32(d);
  if (maxlen <= 0 || maxlen > 1 << 20) {
    tfx_rt_error(err, errlen, 0, "%s: not a tokenizer (llama2.c tokenizer.bin: max_token_length %d)", path, maxlen);
    return TFX_ERR_TOKENIZER;
  }
  int n = 0;
  for (size_t o = 4; o < size; n++) {
    if (size - o < 8) {
      tfx_rt_error(err, errlen, 0, "%s: truncated llama2.c tokenizer.bin (piece %d at byte %zu)", path, n, o);
      return TFX_ERR_TOKENIZER;
    }
    int32_t l = rd_i32(d + o + 4);
    if (l < 0 || l > maxlen || (size_t)l > size - o - 8) {
      tfx_rt_error(err, errlen, 0,
                   "%s: bad llama2.c tokenizer.bin: piece %d has length %d (max_token_length %d, %zu bytes left)", path,
                   n, l, maxlen, size - o - 8);
      return TFX_ERR_TOKENIZER;
    }
    o += 8 + (size_t)l;
  }
  if (n < 3) {
    tfx_rt_error(err, errlen, 0, "%s: llama2.c tokenizer.bin with %d pieces (needs <unk>, BOS, EOS)", path, n);
    return TFX_ERR_TOKENIZER;
  }
  tfx_tokenizer *t = tok_alloc(n);
  if (!t) return TFX_ERR_OUT_OF_MEMORY;
  size_t o = 4;
  int nbytes = 0;
  for (int i = 0; i < n; i++) {
    float sc;
    memcpy(&sc, d + o, 4);
    int32_t l = rd_i32(d + o + 4);
    const char *p = (const char *)d + o + 8;
    int b, ty = TOK_NORMAL;
    if (i == 0)
      ty = TOK_UNKNOWN;
    else if (i <= 2)
      ty = TOK_CONTROL;
    else if (is_byte_piece(p, l, &b))
      ty = TOK_BYTE, nbytes++;
    if (tok_set_piece(t, i, p, (size_t)l, sc, ty)) {
      tfx_tokenizer_close(t);
      return TFX_ERR_OUT_OF_MEMORY;
    }
    o += 8 + (size_t)l;
  }
  t->kind = TOK_SPM_BPE;
  t->bos = 1;
  t->eos = 2;
  t->add_dummy_prefix = 1;
  t->byte_fallback = nbytes > 0;
  t->spm_space = 0; /* llama2.c's export wrote U+2581 as ' ' */
  if (tok_finish(t)) {
    tfx_tokenizer_close(t);
    return TFX_ERR_OUT_OF_MEMORY;
  }
  *out = t;
  return 0;
}

/* ---- SentencePiece .model (protobuf ModelProto) ---- */

typedef struct {
  const unsigned char *p, *end;
  int bad;
} pb;

static uint64_t pb_varint(pb *r) {
  uint64_t v = 0;
  for (int s = 0; s < 64; s += 7) {
    if (r->p >= r->end) break;
    unsigned c = *r->p++;
    v |= (uint64_t)(c & 0x7f) << s;
    if (!(c & 0x80)) return v;
  }
  r->bad = 1;
  return 0;
}

/* reads a field's key and, for length-delimited ones, its bytes; skips others into *v */
static int pb_field(pb *r, int *field, int *wire, uint64_t *v, pb *sub) {
  if (r->p >= r->end || r->bad) return 0;
  uint64_t key = pb_varint(r);
  *field = (int)(key >> 3);
  *wire = (int)(key & 7);
  switch (*wire) {
  case 0: *v = pb_varint(r); break;
  case 1:
    if (r->end - r->p < 8)
      r->bad = 1;
    else {
      memcpy(v, r->p, 8);
      r->p += 8;
    }
    break;
  case 5:
    if (r->end - r->p < 4)
      r->bad = 1;
    else {
      uint32_t x;
      memcpy(&x, r->p, 4);
      *v = x;
      r->p += 4;
    }
    break;
  case 2: {
    uint64_t l = pb_varint(r);
    if (r->bad || l > (uint64_t)(r->end - r->p))
      r->bad = 1;
    else {
      sub->p = r->p;
      sub->end = r->p + l;
      sub->bad = 0;
      r->p += l;
    }
    break;
  }
  default: r->bad = 1;
  }
  return !r->bad;
}

/* the normalizer's precompiled_charsmap: u32 trie size, the trie (u32
 * units), then the NUL-terminated replacements */
int tok_set_charsmap(tfx_tokenizer *t, const char *path, const unsigned char *p, size_t n, char *err, size_t errlen) {
  uint32_t tsize = n >= 4 ? rd_u32(p) : 0;
  if (n < 4 || tsize % 4 || tsize < 4 || tsize > n - 4) {
    tfx_rt_error(err, errlen, 0, "%s: malformed precompiled_charsmap in the SentencePiece normalizer", path);
    return TFX_ERR_TOKENIZER;
  }
  free(t->cm_trie);
  free(t->cm_norm);
  t->cm_trie = malloc(tsize);
  t->cm_norm = malloc(n - 4 - tsize + 1);
  if (!t->cm_trie || !t->cm_norm) return TFX_ERR_OUT_OF_MEMORY;
  t->cm_trie_n = tsize / 4;
  for (size_t i = 0; i < t->cm_trie_n; i++) t->cm_trie[i] = rd_u32(p + 4 + 4 * i);
  t->cm_norm_n = n - 4 - tsize;
  memcpy(t->cm_norm, p + 4 + tsize, t->cm_norm_n);
  t->cm_norm[t->cm_norm_n] = 0; /* a replacement running off the end stops here */
  return 0;
}

static int open_model(const char *path, const unsigned char *d, size_t size, tfx_tokenizer **out, char *err,
                      size_t errlen) {
  pb r = {d, d + size, 0}, sub;
  int f, w, n = 0;
  uint64_t v;
  while (pb_field(&r, &f, &w, &v, &sub))
    if (f == 1 && w == 2) n++;
  if (r.bad || n == 0) {
    tfx_rt_error(err, errlen, 0, "%s: not a SentencePiece model (malformed protobuf%s)", path, n ? "" : ", no pieces");
    return TFX_ERR_TOKENIZER;
  }
  tfx_tokenizer *t = tok_alloc(n);
  if (!t) return TFX_ERR_OUT_OF_MEMORY;
  int model_type = 1, byte_fallback = 0, unk = 0, bos = 1, eos = 2, dummy = 1, extra_ws = 1;
  int i = 0, rc = 0;
  r = (pb){d, d + size, 0};
  while (!rc && pb_field(&r, &f, &w, &v, &sub)) {
    if (f == 1 && w == 2) {
      const char *s = "";
      size_t sl = 0;
      float sc = 0;
      int ty = TOK_NORMAL;
      pb q;
      while (pb_field(&sub, &f, &w, &v, &q)) {
        if (f == 1 && w == 2)
          s = (const char *)q.p, sl = (size_t)(q.end - q.p);
        else if (f == 2 && w == 5) {
          uint32_t x = (uint32_t)v;
          memcpy(&sc, &x, 4);
        } else if (f == 3 && w == 0)
          ty = (int)v;
      }
      if (sub.bad || ty < 1 || ty > 6) {
        tfx_rt_error(err, errlen, 0, "%s: bad SentencePiece piece %d (%s)", path, i,
                     sub.bad ? "malformed" : "unknown type");
        rc = TFX_ERR_TOKENIZER;
      } else if (tok_set_piece(t, i++, s, sl, sc, ty))
        rc = TFX_ERR_OUT_OF_MEMORY;
    } else if ((f == 2 || f == 3) && w == 2) {
      int spec = f;
      pb q;
      while (pb_field(&sub, &f, &w, &v, &q)) {
        if (spec == 2 && w == 0) {
          if (f == 3)
            model_type = (int)v;
          else if (f == 35)
            byte_fallback = v != 0;
          else if (f == 40)
            unk = (int)(int32_t)v;
          else if (f == 41)
            bos = (int)(int32_t)v;
          else if (f == 42)
            eos = (int)(int32_t)v;
          else if (f == 24 && v) {
            tfx_rt_error(err, errlen, 0, "%s: treat_whitespace_as_suffix is not supported", path);
            rc = TFX_ERR_TOKENIZER;
          }
        } else if (spec == 3) {
          if (f == 3 && w == 0)
            dummy = v != 0;
          else if (f == 4 && w == 0)
            extra_ws = v != 0;
          else if (f == 2 && w == 2 && q.end > q.p && !rc)
            rc = tok_set_charsmap(t, path, q.p, (size_t)(q.end - q.p), err, errlen);
        }
      }
      if (sub.bad && !rc) {
        tfx_rt_error(err, errlen, 0, "%s: malformed SentencePiece %s spec", path, spec == 2 ? "trainer" : "normalizer");
        rc = TFX_ERR_TOKENIZER;
      }
    }
  }
  if (!rc && model_type != 1 && model_type != 2) {
    tfx_rt_error(err, errlen, 0, "%s: SentencePiece model type %d is not supported (only UNIGRAM 1 and BPE 2)", path,
                 model_type);
    rc = TFX_ERR_TOKENIZER;
  }
  if (!rc && (rc = tok_finish(t)) != 0) rc = TFX_ERR_OUT_OF_MEMORY;
  if (rc) {
    tfx_tokenizer_close(t);
    return rc;
  }
  t->kind = model_type == 2 ? TOK_SPM_BPE : TOK_SPM_UNIGRAM;
  t->byte_fallback = byte_fallback;
  t->unk = unk >= 0 && unk < n ? unk : t->unk;
  t->bos = bos >= 0 && bos < n ? bos : -1;
  t->eos = eos >= 0 && eos < n ? eos : -1;
  t->add_dummy_prefix = dummy;
  t->remove_extra_ws = extra_ws;
  t->spm_space = 1;
  *out = t;
  return 0;
}

int tfx_tokenizer_open_memory(const void *data, size_t size, const char *name, tfx_tokenizer **out, char *err,
                              size_t errlen) {
  if (err && errlen) err[0] = 0;
  if ((!data && size) || !out) return TFX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  const unsigned char *d = data;
  const char *path = name ? name : "(memory)";
  size_t k = 0;
  while (k < size && (d[k] == ' ' || d[k] == '\n' || d[k] == '\r' || d[k] == '\t')) k++;
  int rc;
  if (size >= 4 && memcmp(d, "GGUF", 4) == 0) {
    rc = tok_gguf_open(path, d, size, out, err, errlen);
  } else if (k < size && d[k] == '{') {
    rc = tok_hf_open(path, (const char *)d, size, out, err, errlen);
  } else if (size && d[0] == 0x0A) {
    rc = open_model(path, d, size, out, err, errlen);
    if (rc == TFX_ERR_TOKENIZER) { /* a tokenizer.bin whose max_token_length is 10? */
      char e2[8];
      if (open_bin(path, d, size, out, e2, sizeof e2) == 0) rc = 0;
    }
  } else {
    rc = open_bin(path, d, size, out, err, errlen);
  }
  return rc;
}

/* The file is mapped, not read: of a GGUF model only the pages of its
 * metadata are touched. */
int tfx_tokenizer_open(const char *path, tfx_tokenizer **out, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!path || !out) return TFX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    tfx_rt_error(err, errlen, 0, "%s: cannot open: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return TFX_ERR_OPEN;
  }
  if (!S_ISREG(st.st_mode) || st.st_size == 0) {
    tfx_rt_error(err, errlen, 0, "%s: cannot read: %s", path,
                 S_ISREG(st.st_mode) ? "the file is empty" : "not a regular file (a directory, a FIFO or a device?)");
    close(fd);
    return S_ISREG(st.st_mode) ? TFX_ERR_TOKENIZER : TFX_ERR_OPEN;
  }
  size_t size = (size_t)st.st_size;
  void *d = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (d == MAP_FAILED) {
    tfx_rt_error(err, errlen, 0, "%s: cannot map: %s", path, strerror(errno));
    return TFX_ERR_OPEN;
  }
  int rc = tfx_tokenizer_open_memory(d, size, path, out, err, errlen);
  munmap(d, size);
  return rc;
}
