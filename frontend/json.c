/* frontend/json.c — the strict JSON parser of json.h: recursive descent over
 * a byte range, never reading past its end, with a depth limit, UTF-16
 * surrogate pairs decoded to UTF-8, and control characters and \u0000
 * rejected inside strings. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s;
  size_t len, pos;
  char *err;
  size_t errlen;
  int failed;
} parser;

static void jfail(parser *p, const char *fmt, ...) {
  if (p->failed) return;
  p->failed = 1;
  if (!p->err || !p->errlen) return;
  int k = snprintf(p->err, p->errlen, "at byte %zu: ", p->pos);
  if (k < 0 || (size_t)k >= p->errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
  va_end(ap);
}

static void oom(parser *p) {
  if (p->failed) return;
  p->failed = 1;
  if (p->err && p->errlen) snprintf(p->err, p->errlen, "out of memory");
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

/* a short description of the byte at pos for error messages */
static const char *what(const parser *p, char *buf, size_t len) {
  int c = peek(p);
  if (c < 0) return "the end of the header";
  if (c >= 0x20 && c < 0x7f)
    snprintf(buf, len, "'%c'", c);
  else
    snprintf(buf, len, "byte 0x%02X", c);
  return buf;
}

static void free_members(tfx_fe_json *v) {
  if (v->kind == TFX_FE_JSON_STRING) free(v->str);
  if (v->kind == TFX_FE_JSON_ARRAY || v->kind == TFX_FE_JSON_OBJECT) {
    for (int i = 0; i < v->n; i++) {
      free_members(&v->items[i]);
      if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
  }
}

void tfx_fe_json_free(tfx_fe_json *v) {
  if (!v) return;
  free_members(v);
  free(v);
}

static int hex4(parser *p, unsigned *out) {
  if (p->len - p->pos < 4) {
    jfail(p, "truncated \\u escape");
    return -1;
  }
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->pos + (size_t)i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (unsigned)(c - 'A' + 10);
    else {
      jfail(p, "bad \\u escape: expected 4 hex digits");
      return -1;
    }
    v = v << 4 | d;
  }
  p->pos += 4;
  *out = v;
  return 0;
}

/* Parses a string at pos (which is '"'); returns a malloc'd UTF-8 copy. */
static char *parse_string(parser *p) {
  p->pos++; /* the opening quote */
  /* the decoded text is never longer than the source */
  size_t start = p->pos, cap = 1;
  for (size_t i = start; i < p->len && p->s[i] != '"'; i++) {
    cap++;
    if (p->s[i] == '\\') i++;
  }
  char *out = malloc(cap + 4);
  if (!out) {
    oom(p);
    return NULL;
  }
  size_t n = 0;
  for (;;) {
    if (p->pos >= p->len) {
      jfail(p, "unterminated string");
      break;
    }
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '"') {
      p->pos++;
      out[n] = 0;
      return out;
    }
    if (c < 0x20) {
      jfail(p, "control character 0x%02X in a string (escape it)", c);
      break;
    }
    if (c != '\\') {
      if (n + 1 >= cap + 4) { /* cannot happen: the bound above holds */
        jfail(p, "internal error: string buffer");
        break;
      }
      out[n++] = (char)c;
      p->pos++;
      continue;
    }
    p->pos++;
    if (p->pos >= p->len) {
      jfail(p, "unterminated string");
      break;
    }
    char e = p->s[p->pos++];
    switch (e) {
    case '"': out[n++] = '"'; continue;
    case '\\': out[n++] = '\\'; continue;
    case '/': out[n++] = '/'; continue;
    case 'b': out[n++] = '\b'; continue;
    case 'f': out[n++] = '\f'; continue;
    case 'n': out[n++] = '\n'; continue;
    case 'r': out[n++] = '\r'; continue;
    case 't': out[n++] = '\t'; continue;
    case 'u': break;
    default:
      p->pos--;
      jfail(p, "bad escape '\\%c' in a string", e >= 0x20 && e < 0x7f ? e : '?');
      free(out);
      return NULL;
    }
    unsigned u;
    if (hex4(p, &u)) break;
    if (u >= 0xD800 && u <= 0xDBFF) {
      unsigned lo;
      if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
        jfail(p, "unpaired UTF-16 surrogate \\u%04X", u);
        break;
      }
      p->pos += 2;
      if (hex4(p, &lo)) break;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        jfail(p, "unpaired UTF-16 surrogate \\u%04X", u);
        break;
      }
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
      jfail(p, "unpaired UTF-16 surrogate \\u%04X", u);
      break;
    }
    if (u == 0) {
      jfail(p, "\\u0000 in a string is not supported");
      break;
    }
    /* 6 source bytes (\uXXXX) give at most 3 UTF-8 bytes; 12 give 4 */
    if (u < 0x80) {
      out[n++] = (char)u;
    } else if (u < 0x800) {
      out[n++] = (char)(0xC0 | u >> 6);
      out[n++] = (char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      out[n++] = (char)(0xE0 | u >> 12);
      out[n++] = (char)(0x80 | (u >> 6 & 0x3F));
      out[n++] = (char)(0x80 | (u & 0x3F));
    } else {
      out[n++] = (char)(0xF0 | u >> 18);
      out[n++] = (char)(0x80 | (u >> 12 & 0x3F));
      out[n++] = (char)(0x80 | (u >> 6 & 0x3F));
      out[n++] = (char)(0x80 | (u & 0x3F));
    }
  }
  free(out);
  return NULL;
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static void parse_number(parser *p, tfx_fe_json *v) {
  size_t start = p->pos;
  int neg = 0, frac = 0;
  if (peek(p) == '-') {
    neg = 1;
    p->pos++;
  }
  if (!is_digit(peek(p))) {
    jfail(p, "bad number: expected a digit");
    return;
  }
  if (peek(p) == '0') {
    p->pos++;
    if (is_digit(peek(p))) {
      jfail(p, "bad number: leading zero");
      return;
    }
  } else {
    while (is_digit(peek(p))) p->pos++;
  }
  if (peek(p) == '.') {
    frac = 1;
    p->pos++;
    if (!is_digit(peek(p))) {
      jfail(p, "bad number: expected a digit after '.'");
      return;
    }
    while (is_digit(peek(p))) p->pos++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    frac = 1;
    p->pos++;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (!is_digit(peek(p))) {
      jfail(p, "bad number: expected a digit in the exponent");
      return;
    }
    while (is_digit(peek(p))) p->pos++;
  }
  size_t n = p->pos - start;
  char buf[64];
  if (n >= sizeof buf) {
    /* long literals: only the value's magnitude matters; keep it finite-safe */
    v->kind = TFX_FE_JSON_NUMBER;
    v->num = neg ? -1e308 : 1e308;
    v->is_uint = 0;
    return;
  }
  memcpy(buf, p->s + start, n);
  buf[n] = 0;
  v->kind = TFX_FE_JSON_NUMBER;
  v->num = strtod(buf, NULL);
  v->is_uint = 0;
  if (!neg && !frac) {
    uint64_t u = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
      uint64_t d = (uint64_t)(buf[i] - '0');
      if (u > (UINT64_MAX - d) / 10) {
        ok = 0;
        break;
      }
      u = u * 10 + d;
    }
    v->is_uint = ok;
    v->uval = ok ? u : 0;
  }
}

static int literal(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos >= n && memcmp(p->s + p->pos, word, n) == 0) {
    p->pos += n;
    return 1;
  }
  return 0;
}

static void parse_value(parser *p, tfx_fe_json *v, int depth);

/* appends a zeroed member; returns it or NULL */
static tfx_fe_json *push(parser *p, tfx_fe_json *v, int *cap, int with_key) {
  if (v->n == *cap) {
    int nc = *cap ? *cap * 2 : 4;
    if (nc > (1 << 26)) {
      jfail(p, "too many members");
      return NULL;
    }
    tfx_fe_json *ni = realloc(v->items, (size_t)nc * sizeof *ni);
    if (!ni) {
      oom(p);
      return NULL;
    }
    v->items = ni;
    if (with_key) {
      char **nk = realloc(v->keys, (size_t)nc * sizeof *nk);
      if (!nk) {
        oom(p);
        return NULL;
      }
      v->keys = nk;
    }
    *cap = nc;
  }
  tfx_fe_json *m = &v->items[v->n];
  memset(m, 0, sizeof *m);
  m->kind = TFX_FE_JSON_NULL;
  if (with_key) v->keys[v->n] = NULL;
  v->n++;
  return m;
}

static void parse_container(parser *p, tfx_fe_json *v, int depth, int object) {
  char b[32];
  v->kind = object ? TFX_FE_JSON_OBJECT : TFX_FE_JSON_ARRAY;
  int cap = 0;
  char close = object ? '}' : ']';
  p->pos++;
  skip_ws(p);
  if (peek(p) == close) {
    p->pos++;
    return;
  }
  for (;;) {
    skip_ws(p);
    char *key = NULL;
    if (object) {
      if (peek(p) != '"') {
        jfail(p, "expected a string (a member name), got %s", what(p, b, sizeof b));
        return;
      }
      key = parse_string(p);
      if (!key) return;
      skip_ws(p);
      if (peek(p) != ':') {
        free(key);
        jfail(p, "expected ':' after a member name, got %s", what(p, b, sizeof b));
        return;
      }
      p->pos++;
    }
    tfx_fe_json *m = push(p, v, &cap, object);
    if (!m) {
      free(key);
      return;
    }
    if (object) v->keys[v->n - 1] = key;
    parse_value(p, m, depth + 1);
    if (p->failed) return;
    skip_ws(p);
    int c = peek(p);
    if (c == ',') {
      p->pos++;
      continue;
    }
    if (c == close) {
      p->pos++;
      return;
    }
    jfail(p, "expected ',' or '%c', got %s", close, what(p, b, sizeof b));
    return;
  }
}

static void parse_value(parser *p, tfx_fe_json *v, int depth) {
  char b[32];
  skip_ws(p);
  if (depth > TFX_FE_JSON_MAX_DEPTH) {
    jfail(p, "nested more than %d levels deep", TFX_FE_JSON_MAX_DEPTH);
    return;
  }
  int c = peek(p);
  switch (c) {
  case '{': parse_container(p, v, depth, 1); return;
  case '[': parse_container(p, v, depth, 0); return;
  case '"':
    v->str = parse_string(p);
    if (v->str) v->kind = TFX_FE_JSON_STRING;
    return;
  default: break;
  }
  if (c == '-' || is_digit(c)) {
    parse_number(p, v);
    return;
  }
  if (literal(p, "true"))
    v->kind = TFX_FE_JSON_TRUE;
  else if (literal(p, "false"))
    v->kind = TFX_FE_JSON_FALSE;
  else if (literal(p, "null"))
    v->kind = TFX_FE_JSON_NULL;
  else
    jfail(p, "expected a JSON value, got %s", what(p, b, sizeof b));
}

tfx_fe_json *tfx_fe_json_parse(const char *text, size_t len, char *err, size_t errlen) {
  parser p = {text, len, 0, err, errlen, 0};
  if (err && errlen) err[0] = 0;
  tfx_fe_json *v = calloc(1, sizeof *v);
  if (!v) {
    oom(&p);
    return NULL;
  }
  if (!text) len = p.len = 0;
  parse_value(&p, v, 0);
  if (!p.failed) {
    skip_ws(&p);
    if (p.pos < p.len) jfail(&p, "unexpected data after the JSON value");
  }
  if (p.failed) {
    tfx_fe_json_free(v);
    return NULL;
  }
  return v;
}

const tfx_fe_json *tfx_fe_json_get(const tfx_fe_json *obj, const char *key) {
  if (!obj || obj->kind != TFX_FE_JSON_OBJECT) return NULL;
  for (int i = 0; i < obj->n; i++)
    if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
  return NULL;
}

const char *tfx_fe_json_kind_name(tfx_fe_json_kind k) {
  switch (k) {
  case TFX_FE_JSON_NULL: return "null";
  case TFX_FE_JSON_FALSE:
  case TFX_FE_JSON_TRUE: return "a boolean";
  case TFX_FE_JSON_NUMBER: return "a number";
  case TFX_FE_JSON_STRING: return "a string";
  case TFX_FE_JSON_ARRAY: return "an array";
  case TFX_FE_JSON_OBJECT: return "an object";
  }
  return "?";
}
