/* runtime/tokenizer_hf.c — Hugging Face tokenizer.json: a minimal JSON
 * reader (the runtime cannot use the frontend's), the BPE model (vocab,
 * merges by rank, byte fallback), added tokens matched literally, the
 * normalizers and pre-tokenizers of GPT-2 byte-level BPE (the byte-to-unicode
 * map and its regex split, by hand) and of Llama-style BPE (Prepend/Replace
 * of U+2581, Metaspace), and byte-level decoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "tfx/tfx.h"
#include "tokenizer_internal.h"

/* ---- JSON ---- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
  int type;
  double num;
  char *str; /* J_STR: unescaped bytes, NUL-terminated */
  size_t len;
  int n;            /* J_ARR, J_OBJ: items */
  struct jv *items; /* values */
  char **keys;      /* J_OBJ */
  size_t *klen;
} jv;

typedef struct {
  const char *p, *end;
  int depth;
  const char *err;
} jp;

static void jv_free(jv *v) {
  if (v->type == J_STR) free(v->str);
  if (v->type == J_ARR || v->type == J_OBJ) {
    for (int i = 0; i < v->n; i++) {
      jv_free(&v->items[i]);
      if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->klen);
  }
}

static void ws(jp *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

static void put_utf8(char *o, size_t *n, uint32_t c) {
  if (c < 0x80) {
    o[(*n)++] = (char)c;
  } else if (c < 0x800) {
    o[(*n)++] = (char)(0xC0 | c >> 6);
    o[(*n)++] = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    o[(*n)++] = (char)(0xE0 | c >> 12);
    o[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[(*n)++] = (char)(0x80 | (c & 0x3F));
  } else {
    o[(*n)++] = (char)(0xF0 | c >> 18);
    o[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[(*n)++] = (char)(0x80 | (c & 0x3F));
  }
}

static int hex4(const char *p, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    *v = *v * 16 + (uint32_t)d;
  }
  return 0;
}

static int jstring(jp *r, char **out, size_t *olen) {
  const char *s = ++r->p; /* after the quote */
  while (r->p < r->end && *r->p != '"') r->p += *r->p == '\\' ? 2 : 1;
  if (r->p >= r->end) return r->err = "unterminated string", -1;
  char *o = malloc((size_t)(r->p - s) + 1);
  if (!o) return r->err = "out of memory", -1;
  size_t n = 0;
  for (const char *q = s; q < r->p; q++) {
    if (*q != '\\') {
      o[n++] = *q;
      continue;
    }
    q++;
    switch (*q) {
    case 'n': o[n++] = '\n'; break;
    case 't': o[n++] = '\t'; break;
    case 'r': o[n++] = '\r'; break;
    case 'b': o[n++] = '\b'; break;
    case 'f': o[n++] = '\f'; break;
    case 'u': {
      uint32_t c, lo;
      if (r->p - q < 5 || hex4(q + 1, &c)) {
        free(o);
        return r->err = "bad \\u escape", -1;
      }
      q += 4;
      if (c >= 0xD800 && c < 0xDC00 && r->p - q >= 7 && q[1] == '\\' && q[2] == 'u' && !hex4(q + 3, &lo) &&
          lo >= 0xDC00 && lo < 0xE000) {
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
        q += 6;
      } else if (c >= 0xD800 && c < 0xE000) {
        c = 0xFFFD;
      }
      put_utf8(o, &n, c); /* at most 4 bytes for the 6 or 12 read */
      break;
    }
    default: o[n++] = *q; /* " \ / */
    }
  }
  o[n] = 0;
  r->p++;
  *out = o;
  *olen = n;
  return 0;
}

static int jvalue(jp *r, jv *v);

static int jitems(jp *r, jv *v, int obj) {
  char close = obj ? '}' : ']';
  int cap = 0;
  r->p++;
  ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return 0;
  }
  for (;;) {
    if (v->n == cap) {
      cap = cap ? cap * 2 : 8;
      jv *ni = realloc(v->items, (size_t)cap * sizeof *ni);
      if (ni) v->items = ni;
      if (obj) {
        char **nk = realloc(v->keys, (size_t)cap * sizeof *nk);
        if (nk) v->keys = nk;
        size_t *nl = realloc(v->klen, (size_t)cap * sizeof *nl);
        if (nl) v->klen = nl;
        if (!nk || !nl) ni = NULL;
      }
      if (!ni) return r->err = "out of memory", -1;
    }
    ws(r);
    if (obj) {
      if (r->p >= r->end || *r->p != '"') return r->err = "expected a key", -1;
      if (jstring(r, &v->keys[v->n], &v->klen[v->n])) return -1;
      ws(r);
      if (r->p >= r->end || *r->p != ':') {
        free(v->keys[v->n]);
        return r->err = "expected ':'", -1;
      }
      r->p++;
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (jvalue(r, &v->items[v->n])) {
      if (obj) free(v->keys[v->n]);
      jv_free(&v->items[v->n]);
      return -1;
    }
    v->n++;
    ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return 0;
    }
    return r->err = obj ? "expected ',' or '}'" : "expected ',' or ']'", -1;
  }
}

static int jvalue(jp *r, jv *v) {
  ws(r);
  memset(v, 0, sizeof *v);
  if (r->p >= r->end) return r->err = "unexpected end", -1;
  char c = *r->p;
  if (c == '"') {
    v->type = J_STR;
    return jstring(r, &v->str, &v->len);
  }
  if (c == '{' || c == '[') {
    if (++r->depth > 64) return r->err = "nested too deeply", -1;
    v->type = c == '{' ? J_OBJ : J_ARR;
    int rc = jitems(r, v, c == '{');
    r->depth--;
    return rc;
  }
  static const char *const words[] = {"null", "true", "false"};
  for (int i = 0; i < 3; i++) {
    size_t l = strlen(words[i]);
    if ((size_t)(r->end - r->p) >= l && memcmp(r->p, words[i], l) == 0) {
      r->p += l;
      v->type = i ? J_BOOL : J_NULL;
      v->num = i == 1;
      return 0;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    char buf[64];
    size_t k = 0;
    while (r->p < r->end && k < sizeof buf - 1 && strchr("+-.eE0123456789", *r->p)) buf[k++] = *r->p++;
    buf[k] = 0;
    char *e;
    v->type = J_NUM;
    v->num = strtod(buf, &e);
    if (*e) return r->err = "bad number", -1;
    return 0;
  }
  return r->err = "unexpected character", -1;
}

static const jv *jget(const jv *o, const char *key) {
  if (!o || o->type != J_OBJ) return NULL;
  for (int i = 0; i < o->n; i++)
    if (strcmp(o->keys[i], key) == 0) return &o->items[i];
  return NULL;
}

static const char *jstr(const jv *o, const char *key) {
  const jv *v = jget(o, key);
  return v && v->type == J_STR ? v->str : NULL;
}

static int jtrue(const jv *o, const char *key) {
  const jv *v = jget(o, key);
  return v && v->type == J_BOOL && v->num != 0;
}

/* ---- GPT-2's byte <-> unicode map ---- */

static uint32_t byte_to_cp(int b) {
  if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
  int k = 0; /* the k-th byte outside those ranges maps to 256 + k */
  for (int x = 0; x < b; x++)
    if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
  return 256u + (uint32_t)k;
}

static int cp_to_byte(uint32_t cp) {
  if (cp < 256) return byte_to_cp((int)cp) == cp ? (int)cp : -1;
  int k = (int)cp - 256;
  for (int x = 0; x < 256; x++)
    if (byte_to_cp(x) >= 256 && k-- == 0) return x;
  return -1;
}

/* standard base64 (padding optional); NULL on a bad character */
static unsigned char *base64(const char *s, size_t n, size_t *olen) {
  unsigned char *o = malloc(n / 4 * 3 + 4);
  uint32_t acc = 0;
  int bits = 0;
  size_t k = 0;
  for (size_t i = 0; o && i < n && s[i] != '='; i++) {
    const char *p = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", s[i]);
    if (!p || !s[i]) {
      free(o);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)(p - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[k++] = (unsigned char)(acc >> bits);
    }
  }
  *olen = k;
  return o;
}

/* ---- pre-tokenizers and normalizers we understand ---- */

enum { PRE_NONE, PRE_BYTELEVEL, PRE_METASPACE };

typedef struct {
  int pre, prefix_space, use_regex; /* ByteLevel */
  int split;                        /* a Split by Llama 3's (1) or Qwen2's (2) regex */
  int ws_split, collapse;           /* WhitespaceSplit; Replace(" {2,}", " ") */
  const jv *charsmap;               /* Precompiled: base64 */
  int meta_prepend;                 /* Metaspace: 0 never, 1 first, 2 always */
  int meta_split;
  int norm_prepend; /* normalizer Prepend("▁") */
  int norm_replace; /* normalizer Replace(" ", "▁") */
  int ignore_merges;
} hf_cfg;

static int parse_pre(const jv *p, hf_cfg *c, char *why, size_t wl) {
  if (!p || p->type == J_NULL) return 0;
  const char *ty = jstr(p, "type");
  if (!ty) return snprintf(why, wl, "a pre_tokenizer without a type"), -1;
  if (!strcmp(ty, "Sequence")) {
    const jv *a = jget(p, "pretokenizers");
    for (int i = 0; a && a->type == J_ARR && i < a->n; i++)
      if (parse_pre(&a->items[i], c, why, wl)) return -1;
    return 0;
  }
  if (!strcmp(ty, "Split")) {
    const char *re = jstr(jget(p, "pattern"), "Regex"), *behavior = jstr(p, "behavior");
    for (int k = 0; re && k < 2; k++)
      if (!strcmp(re, tok_split_regex[k]) && behavior && !strcmp(behavior, "Isolated") && !jtrue(p, "invert")) {
        c->split = k + 1;
        return 0;
      }
    return snprintf(why, wl, "a Split pre_tokenizer is supported only with Llama 3's or Qwen2's regex"), -1;
  }
  if (!strcmp(ty, "ByteLevel")) {
    c->pre = PRE_BYTELEVEL;
    c->prefix_space = jtrue(p, "add_prefix_space");
    const jv *u = jget(p, "use_regex");
    c->use_regex = !u || (u->type == J_BOOL && u->num != 0);
    return 0;
  }
  if (!strcmp(ty, "WhitespaceSplit")) {
    c->ws_split = 1;
    return 0;
  }
  if (!strcmp(ty, "Metaspace")) {
    const char *rep = jstr(p, "replacement");
    if (rep && strcmp(rep, "\xE2\x96\x81"))
      return snprintf(why, wl, "Metaspace with a replacement other than U+2581"), -1;
    c->pre = PRE_METASPACE;
    const char *ps = jstr(p, "prepend_scheme");
    c->meta_prepend = ps                             ? (!strcmp(ps, "always")  ? 2
                                                        : !strcmp(ps, "first") ? 1
                                                                               : 0)
                      : jtrue(p, "add_prefix_space") ? 2
                                                     : 0;
    const jv *sp = jget(p, "split");
    c->meta_split = !sp || (sp->type == J_BOOL && sp->num != 0);
    return 0;
  }
  return snprintf(why, wl, "the pre_tokenizer %s is not supported", ty), -1;
}

static int parse_norm(const jv *p, hf_cfg *c, char *why, size_t wl) {
  if (!p || p->type == J_NULL) return 0;
  const char *ty = jstr(p, "type");
  if (!ty) return snprintf(why, wl, "a normalizer without a type"), -1;
  if (!strcmp(ty, "Sequence")) {
    const jv *a = jget(p, "normalizers");
    for (int i = 0; a && a->type == J_ARR && i < a->n; i++)
      if (parse_norm(&a->items[i], c, why, wl)) return -1;
    return 0;
  }
  const char *pre = jstr(p, "prepend");
  if (!strcmp(ty, "Prepend") && pre && !strcmp(pre, "\xE2\x96\x81")) {
    c->norm_prepend = 1;
    return 0;
  }
  if (!strcmp(ty, "Precompiled") && jget(p, "precompiled_charsmap") && jget(p, "precompiled_charsmap")->type == J_STR) {
    c->charsmap = jget(p, "precompiled_charsmap");
    return 0;
  }
  if (!strcmp(ty, "Replace")) {
    const char *re = jstr(jget(p, "pattern"), "Regex"), *rc = jstr(p, "content");
    if (re && rc && !strcmp(re, " {2,}") && !strcmp(rc, " ")) {
      c->collapse = 1;
      return 0;
    }
    const char *pat = jstr(jget(p, "pattern"), "String"), *content = jstr(p, "content");
    if (pat && content && !strcmp(pat, " ") && !strcmp(content, "\xE2\x96\x81")) {
      c->norm_replace = 1;
      return 0;
    }
  }
  return snprintf(why, wl, "the normalizer %s is not supported (only Prepend/Replace of U+2581, Precompiled)", ty), -1;
}

/* what encoding needs of the config, as the tokenizer's hf_flags */
static void cfg_store(tfx_tokenizer *t, const hf_cfg *c) {
  t->byte_level = c->pre == PRE_BYTELEVEL;
  t->spm_space = !t->byte_level && (c->norm_replace || c->pre == PRE_METASPACE);
  t->add_dummy_prefix = c->norm_prepend || (c->pre == PRE_METASPACE && c->meta_prepend);
  t->hf_flags = (c->prefix_space ? 1 : 0) | (c->use_regex ? 2 : 0) | (c->meta_prepend == 1 ? 4 : 0) |
                (c->meta_prepend == 2 ? 8 : 0) | (c->meta_split ? 16 : 0) | (c->norm_prepend ? 32 : 0) |
                (c->norm_replace || c->pre == PRE_METASPACE ? 64 : 0) | (c->ignore_merges ? 128 : 0) | TOK_HF |
                (c->ws_split ? TOK_WS_SPLIT : 0) | (c->collapse ? TOK_COLLAPSE_SPACES : 0) |
                (c->split ? TOK_SPLIT_LLAMA3 << (c->split - 1) : 0);
}

int tok_hf_open(const char *path, const char *data, size_t size, tfx_tokenizer **out, char *err, size_t errlen) {
  jp r = {data, data + size, 0, NULL};
  jv root;
  if (jvalue(&r, &root)) {
    tfx_rt_error(err, errlen, 0, "%s: bad JSON at byte %zu: %s", path, (size_t)(r.p - data), r.err);
    jv_free(&root);
    return r.err && !strcmp(r.err, "out of memory") ? TFX_ERR_OUT_OF_MEMORY : TFX_ERR_TOKENIZER;
  }
  int rc = TFX_ERR_TOKENIZER;
  tfx_tokenizer *t = NULL;
  char why[256] = "";
  const jv *model = jget(&root, "model"), *vocab = jget(model, "vocab"), *merges = jget(model, "merges");
  const jv *added = jget(&root, "added_tokens");
  const char *mtype = jstr(model, "type");
  hf_cfg c = {0};
  if (!model || model->type != J_OBJ) {
    snprintf(why, sizeof why, "no \"model\" object (not a tokenizer.json?)");
    goto fail;
  }
  int unigram = mtype && !strcmp(mtype, "Unigram");
  if (mtype && strcmp(mtype, "BPE") && !unigram) {
    snprintf(why, sizeof why, "the model type %s is not supported (only BPE and Unigram)", mtype);
    goto fail;
  }
  if (!vocab || vocab->type != (unigram ? J_ARR : J_OBJ)) {
    snprintf(why, sizeof why, "model.vocab is not %s", unigram ? "an array" : "an object");
    goto fail;
  }
  const char *csp = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
  if ((csp && *csp) || (eow && *eow)) {
    snprintf(why, sizeof why, "BPE with continuing_subword_prefix or end_of_word_suffix is not supported");
    goto fail;
  }
  c.ignore_merges = jtrue(model, "ignore_merges");
  if (parse_pre(jget(&root, "pre_tokenizer"), &c, why, sizeof why) ||
      parse_norm(jget(&root, "normalizer"), &c, why, sizeof why))
    goto fail;
  int n = unigram ? vocab->n : 0;
  for (int i = 0; unigram && i < vocab->n; i++) {
    const jv *e = &vocab->items[i];
    if (e->type != J_ARR || e->n != 2 || e->items[0].type != J_STR || e->items[1].type != J_NUM) {
      snprintf(why, sizeof why, "model.vocab[%d] is not [piece, score]", i);
      goto fail;
    }
  }
  for (int i = 0; !unigram && i < vocab->n; i++) {
    const jv *id = &vocab->items[i];
    if (id->type != J_NUM || id->num < 0 || id->num > 1e8) {
      snprintf(why, sizeof why, "model.vocab[\"%s\"] is not an id", vocab->keys[i]);
      goto fail;
    }
    if ((int)id->num + 1 > n) n = (int)id->num + 1;
  }
  for (int i = 0; added && added->type == J_ARR && i < added->n; i++) {
    const jv *id = jget(&added->items[i], "id");
    if (!id || id->type != J_NUM || id->num < 0 || id->num > 1e8 || !jstr(&added->items[i], "content")) {
      snprintf(why, sizeof why, "added_tokens[%d] has no id or content", i);
      goto fail;
    }
    if ((int)id->num + 1 > n) n = (int)id->num + 1;
  }
  int entries = vocab->n + (added && added->type == J_ARR ? added->n : 0);
  if (n > 2 * entries + 1024) { /* a hole this large is a broken file, not a vocabulary */
    snprintf(why, sizeof why, "token ids up to %d for %d entries", n - 1, entries);
    goto fail;
  }
  rc = TFX_ERR_OUT_OF_MEMORY;
  if (!(t = tok_alloc(n))) goto fail;
  int byte_fallback = jtrue(model, "byte_fallback");
  for (int i = 0; i < vocab->n; i++) {
    const jv *e = &vocab->items[i];
    const char *ps = unigram ? e->items[0].str : vocab->keys[i];
    size_t pl = unigram ? e->items[0].len : vocab->klen[i];
    int id = unigram ? i : (int)e->num;
    int ty = byte_fallback && pl == 6 && !memcmp(ps, "<0x", 3) ? TOK_BYTE : TOK_NORMAL;
    if (tok_set_piece(t, id, ps, pl, unigram ? (float)e->items[1].num : 0, ty)) goto fail;
  }
  if (added && added->type == J_ARR && added->n) {
    if (!(t->added = malloc((size_t)added->n * sizeof *t->added))) goto fail;
    for (int i = 0; i < added->n; i++) {
      const jv *a = &added->items[i];
      const jv *content = jget(a, "content");
      int id = (int)jget(a, "id")->num;
      if (tok_set_piece(t, id, content->str, content->len, 0, jtrue(a, "special") ? TOK_CONTROL : TOK_USER)) goto fail;
      if (content->len) t->added[t->n_added++] = id;
    }
  }
  const char *unk = jstr(model, "unk_token");
  if (tok_finish(t)) goto fail;
  t->kind = unigram ? TOK_SPM_UNIGRAM : TOK_RANK_BPE;
  t->byte_fallback = byte_fallback;
  const jv *unk_id = jget(model, "unk_id");
  t->unk = unigram ? (unk_id && unk_id->type == J_NUM && unk_id->num >= 0 && unk_id->num < n ? (int)unk_id->num : -1)
           : unk   ? tok_lookup(t, unk, strlen(unk))
                   : -1;
  if (t->unk >= 0 && t->type[t->unk] == TOK_NORMAL) t->type[t->unk] = TOK_UNKNOWN;
  /* BOS: the special token the post-processor puts first, else <s>-like names */
  const jv *single = jget(jget(&root, "post_processor"), "single");
  if (single && single->type == J_ARR && single->n > 1) {
    const char *first = jstr(jget(&single->items[0], "SpecialToken"), "id");
    if (first) t->bos = tok_lookup(t, first, strlen(first));
  }
  static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<bos>"};
  static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"};
  for (int i = 0; i < 3 && t->bos < 0; i++) t->bos = tok_lookup(t, bos_names[i], strlen(bos_names[i]));
  for (int i = 0; i < 4 && t->eos < 0; i++) t->eos = tok_lookup(t, eos_names[i], strlen(eos_names[i]));
  for (int i = 0; merges && merges->type == J_ARR && i < merges->n; i++) {
    const jv *m = &merges->items[i];
    const char *a, *b;
    size_t al, bl;
    if (m->type == J_STR) {
      const char *sp = strchr(m->str, ' ');
      if (!sp) {
        snprintf(why, sizeof why, "merge %d \"%s\" is not \"left right\"", i, m->str);
        rc = TFX_ERR_TOKENIZER;
        goto fail;
      }
      a = m->str, al = (size_t)(sp - m->str), b = sp + 1, bl = m->len - al - 1;
    } else if (m->type == J_ARR && m->n == 2 && m->items[0].type == J_STR && m->items[1].type == J_STR) {
      a = m->items[0].str, al = m->items[0].len, b = m->items[1].str, bl = m->items[1].len;
    } else {
      snprintf(why, sizeof why, "merge %d is neither \"left right\" nor [left, right]", i);
      rc = TFX_ERR_TOKENIZER;
      goto fail;
    }
    char *cat = malloc(al + bl + 1);
    if (!cat) goto fail;
    memcpy(cat, a, al);
    memcpy(cat + al, b, bl);
    int32_t ia = tok_lookup(t, a, al), ib = tok_lookup(t, b, bl), im = tok_lookup(t, cat, al + bl);
    free(cat);
    if (ia < 0 || ib < 0 || im < 0) {
      snprintf(why, sizeof why, "merge %d names a piece that is not in the vocabulary", i);
      rc = TFX_ERR_TOKENIZER;
      goto fail;
    }
    if (tok_add_merge(t, ia, ib, i, im)) goto fail;
  }
  if (c.charsmap) {
    size_t bl = 0;
    unsigned char *bin = base64(c.charsmap->str, c.charsmap->len, &bl);
    if (!bin) {
      snprintf(why, sizeof why, "the Precompiled normalizer's charsmap is not base64");
      rc = TFX_ERR_TOKENIZER;
      goto fail;
    }
    rc = tok_set_charsmap(t, path, bin, bl, err, errlen);
    free(bin);
    if (rc) goto fail;
  }
  cfg_store(t, &c);
  jv_free(&root);
  *out = t;
  return 0;
fail:
  if (why[0]) tfx_rt_error(err, errlen, 0, "%s: %s", path, why);
  tfx_tokenizer_close(t);
  jv_free(&root);
  return rc;
}

/* ---- encoding ---- */

/* GPT-2's split: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * over code points cp[i..n); returns the end of the match at i */
static int gpt2_match(const uint32_t *cp, int i, int n) {
  if (cp[i] == '\'' && i + 1 < n) {
    uint32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  }
  int j = i + (cp[i] == ' ' && i + 1 < n);
  for (int cls = 0; cls < 3; cls++) {
    for (int start = j; start >= i; start--) { /* with the optional space, then without */
      int k = start;
      while (k < n && (cls == 0   ? tok_is_letter(cp[k])
                       : cls == 1 ? tok_is_number(cp[k])
                                  : !tok_is_space(cp[k]) && !tok_is_letter(cp[k]) && !tok_is_number(cp[k])))
        k++;
      if (k > start) return k;
      if (start == i) break;
    }
  }
  int k = i;
  while (k < n && tok_is_space(cp[k])) k++;
  if (k == n || k - 1 == i) return k;
  return k - 1; /* \s+(?!\S): leave the last space to the word after it */
}

/* the regexes of Llama 3 and Qwen2 (digits in runs of up to 3, or 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
const char *const tok_split_regex[2] = {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!"
                                        "\\S)|\\s+",
                                        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!"
                                        "\\S)|\\s+"};

static int is_nl(uint32_t c) { return c == '\r' || c == '\n'; }
static int is_other(uint32_t c) { return !tok_is_space(c) && !tok_is_letter(c) && !tok_is_number(c); }
static uint32_t lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int llama3_match(const uint32_t *cp, int i, int n, int max_digits) {
  if (cp[i] == '\'' && i + 1 < n) {
    uint32_t a = lower(cp[i + 1]), b = i + 2 < n ? lower(cp[i + 2]) : 0;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  }
  int j =
      i + (i + 1 < n && !is_nl(cp[i]) && !tok_is_letter(cp[i]) && !tok_is_number(cp[i]) && tok_is_letter(cp[i + 1]));
  if (tok_is_letter(cp[j])) {
    while (j < n && tok_is_letter(cp[j])) j++;
    return j;
  }
  if (tok_is_number(cp[i])) {
    int k = i;
    while (k < n && k - i < max_digits && tok_is_number(cp[k])) k++;
    return k;
  }
  j = i + (cp[i] == ' ' && i + 1 < n && is_other(cp[i + 1]));
  if (is_other(cp[j])) {
    while (j < n && is_other(cp[j])) j++;
    while (j < n && is_nl(cp[j])) j++;
    return j;
  }
  int k = i, last_nl = -1;
  while (k < n && tok_is_space(cp[k])) {
    if (is_nl(cp[k])) last_nl = k;
    k++;
  }
  if (last_nl >= 0) return last_nl + 1;
  if (k == n || k - 1 == i) return k;
  return k - 1;
}

static int encode_bytelevel(const tfx_tokenizer *t, const char *s, size_t len, int first, tok_sink *out) {
  (void)first;
  int pfx = (t->hf_flags & 1) && !(len && s[0] == ' ');
  size_t tl = len + (size_t)pfx;
  uint32_t *cp = malloc((tl + 1) * sizeof *cp);
  int *off = malloc((tl + 1) * sizeof *off);
  char *w = malloc(tl * 2 + 1);
  int rc = 0;
  if (!cp || !off || !w) {
    rc = TFX_ERR_OUT_OF_MEMORY;
    goto done;
  }
  int n = 0;
  if (pfx) cp[n] = ' ', off[n++] = -1;
  for (size_t i = 0; i < len;) {
    int l = tok_utf8((const unsigned char *)s + i, len - i, &cp[n]);
    off[n++] = (int)i;
    i += (size_t)l;
  }
  off[n] = (int)len;
  for (int i = 0; i < n && !rc;) {
    int e = (t->hf_flags & (TOK_SPLIT_LLAMA3 | TOK_SPLIT_QWEN2))
                ? llama3_match(cp, i, n, (t->hf_flags & TOK_SPLIT_LLAMA3) ? 3 : 1)
            : (t->hf_flags & 2) ? gpt2_match(cp, i, n)
                                : n;
    /* the bytes of cp[i..e) mapped to printable code points */
    size_t wl = 0;
    int b0 = off[i] < 0 ? 0 : off[i];
    if (off[i] < 0) put_utf8(w, &wl, byte_to_cp(' '));
    for (int b = b0; b < off[e]; b++) put_utf8(w, &wl, byte_to_cp((unsigned char)s[b]));
    int32_t id = (t->hf_flags & 128) ? tok_lookup(t, w, wl) : -1;
    if (id >= 0)
      tok_emit(out, id);
    else
      rc = tok_encode_word(t, w, wl, out);
    i = e;
  }
done:
  free(cp);
  free(off);
  free(w);
  return rc;
}

/* Llama-style: U+2581 for spaces, prepended per the normalizer/Metaspace */
static int encode_metaspace_word(const tfx_tokenizer *t, const char *s, size_t len, int first, tok_sink *out) {
  char *w = malloc(len * 3 + 4);
  if (!w) return TFX_ERR_OUT_OF_MEMORY;
  size_t n = 0;
  int prepend = (t->hf_flags & 32) || (t->hf_flags & 8) || ((t->hf_flags & 4) && first);
  if (prepend && len && !((t->hf_flags & (4 | 8)) && s[0] == ' ')) memcpy(w, "\xE2\x96\x81", 3), n = 3;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == ' ' && (t->hf_flags & 64))
      memcpy(w + n, "\xE2\x96\x81", 3), n += 3;
    else
      w[n++] = s[i];
  }
  int rc = 0;
  if (t->hf_flags & 16) { /* Metaspace split: words start at each U+2581 */
    size_t a = 0;
    for (size_t i = 1; i <= n && !rc; i++) {
      if (i == n || (i + 3 <= n && !memcmp(w + i, "\xE2\x96\x81", 3))) {
        rc = tok_encode_word(t, w + a, i - a, out);
        a = i;
      }
    }
  } else {
    rc = tok_encode_word(t, w, n, out);
  }
  free(w);
  return rc;
}

/* WhitespaceSplit: each run of non-space characters is a word */
static int encode_metaspace(const tfx_tokenizer *t, const char *s, size_t len, int first, tok_sink *out) {
  if (!(t->hf_flags & TOK_WS_SPLIT)) return encode_metaspace_word(t, s, len, first, out);
  int rc = 0;
  for (size_t i = 0; i < len && !rc;) {
    uint32_t cp;
    int l = tok_utf8((const unsigned char *)s + i, len - i, &cp);
    if (tok_is_space(cp)) {
      i += (size_t)l;
      continue;
    }
    size_t a = i;
    while (i < len && !tok_is_space(cp)) {
      i += (size_t)l;
      if (i < len) l = tok_utf8((const unsigned char *)s + i, len - i, &cp);
    }
    rc = encode_metaspace_word(t, s + a, i - a, first, out);
    first = 0;
  }
  return rc;
}

/* the normalizers Precompiled (SentencePiece's character map) and
 * Replace(" {2,}", " "), into a new buffer */
static char *hf_normalize(const tfx_tokenizer *t, const char *s, size_t len, size_t *olen) {
  size_t cap = len * 2 + 16, n = 0;
  char *o = malloc(cap);
  for (size_t i = 0; o && i < len;) {
    const char *rep = NULL;
    size_t used = tok_charsmap_match(t, (const unsigned char *)s + i, len - i, &rep), rl;
    if (!used) {
      uint32_t cp;
      used = (size_t)tok_utf8((const unsigned char *)s + i, len - i, &cp);
      rep = s + i;
      rl = used;
    } else {
      rl = strlen(rep);
    }
    i += used;
    if (n + rl + 1 > cap) {
      char *no = realloc(o, cap = (n + rl + 1) * 2);
      if (!no) free(o);
      o = no;
      if (!o) break;
    }
    for (size_t k = 0; k < rl; k++)
      if (!((t->hf_flags & TOK_COLLAPSE_SPACES) && rep[k] == ' ' && n && o[n - 1] == ' ')) o[n++] = rep[k];
  }
  *olen = n;
  return o;
}

/* added tokens are matched in the text first (longest at the leftmost
 * position); the text between them goes through the pre-tokenizer */
int tok_hf_encode(const tfx_tokenizer *t, const char *text, size_t len, tok_sink *out) {
  size_t a = 0;
  int first = 1;
  for (size_t i = 0; i <= len;) {
    int best = -1;
    size_t bl = 0;
    for (int k = 0; i < len && k < t->n_added; k++) {
      int id = t->added[k];
      size_t l = (size_t)t->plen[id];
      if (l > bl && l <= len - i && !memcmp(text + i, t->piece[id], l)) best = id, bl = l;
    }
    if (best < 0 && i < len) {
      i++;
      continue;
    }
    if (i > a) {
      const char *seg = text + a;
      size_t sl = i - a;
      char *norm = NULL;
      if (t->cm_trie_n || (t->hf_flags & TOK_COLLAPSE_SPACES)) {
        if (!(norm = hf_normalize(t, seg, sl, &sl))) return TFX_ERR_OUT_OF_MEMORY;
        seg = norm;
      }
      int rc = t->byte_level ? encode_bytelevel(t, seg, sl, first, out) : encode_metaspace(t, seg, sl, first, out);
      free(norm);
      if (rc) return rc;
    }
    first = 0;
    if (best < 0) break;
    tok_emit(out, best);
    i += bl;
    a = i;
  }
  return 0;
}

/* ---- decoding (byte level) ---- */

int tok_hf_decode_piece(const tfx_tokenizer *t, int32_t id, char *buf, size_t cap) {
  if (t->type[id] == TOK_CONTROL) return 0;
  const unsigned char *p = (const unsigned char *)t->piece[id];
  size_t len = (size_t)t->plen[id], n = 0;
  int raw = t->type[id] == TOK_USER; /* an added token is its text */
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    int l = tok_utf8(p + i, len - i, &cp);
    int b = raw ? -1 : cp_to_byte(cp);
    for (int k = 0; k < (b < 0 ? l : 1); k++) {
      if (n < cap) buf[n] = b < 0 ? (char)p[i + k] : (char)b;
      n++;
    }
    i += (size_t)l;
  }
  return (int)n;
}
