/* frontend/weights_rename.c — the renaming rules of the `weights` statement
 * (`rename { "model.layers.{i}.mlp.up_proj.weight" = "layers.{i}.w3" }`):
 * checking a rule, and mapping a file tensor's name through the first rule
 * that matches all of it. `{x}` matches 1 to 9 decimal digits, `*` any run
 * of characters (at most MAX_STARS per rule). Binding rules (a view or a
 * stack, weights_view.c) are matched one by one (tfx_wrename_match). */
#include <stdio.h>
#include <string.h>

#include "weights.h"

#define MAX_CAPTURES 4 /* with MAX_DIGITS, bounds the backtracking to 9^4 steps */
#define MAX_DIGITS 9
#define MAX_PLACEHOLDER 32
#define MAX_STARS 2

typedef struct {
  int n;
  char name[MAX_CAPTURES][MAX_PLACEHOLDER];
  const char *at[MAX_CAPTURES];
  size_t len[MAX_CAPTURES];
} captures;

static int is_id_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_id_char(char c) { return is_id_start(c) || (c >= '0' && c <= '9'); }

/* At p == '{': the length of the placeholder name and the total length of
 * `{name}`, or 0 when it is not a well-formed placeholder. */
static size_t placeholder(const char *p, size_t *name_len) {
  size_t i = 1;
  if (!is_id_start(p[i])) return 0;
  while (is_id_char(p[i])) i++;
  if (p[i] != '}' || i - 1 >= MAX_PLACEHOLDER) return 0;
  *name_len = i - 1;
  return i + 1;
}

static int check_side(const char *s, const char *side, captures *c, int is_from, char *err, size_t errlen) {
  int stars = 0;
  for (const char *p = s; *p; p++) {
    if (*p == '*') {
      if (!is_from) {
        snprintf(err, errlen, "'*' in the param name \"%s\": only a file name may have wildcards", s);
        return -1;
      }
      if (++stars > MAX_STARS) {
        snprintf(err, errlen, "too many '*' in \"%s\" (at most %d)", s, MAX_STARS);
        return -1;
      }
      continue;
    }
    if (*p == '}') {
      snprintf(err, errlen, "unmatched '}' in the %s name \"%s\"", side, s);
      return -1;
    }
    if (*p != '{') continue;
    size_t nl, total = placeholder(p, &nl);
    if (!total) {
      snprintf(err, errlen,
               "bad placeholder in the %s name \"%s\": expected {name} with a name of letters, digits and _ (at most "
               "%d characters)",
               side, s, MAX_PLACEHOLDER - 1);
      return -1;
    }
    int k = 0;
    while (k < c->n && !(strlen(c->name[k]) == nl && strncmp(c->name[k], p + 1, nl) == 0)) k++;
    if (is_from) {
      if (k < c->n) {
        snprintf(err, errlen, "placeholder {%.*s} appears twice in \"%s\"", (int)nl, p + 1, s);
        return -1;
      }
      if (c->n == MAX_CAPTURES) {
        snprintf(err, errlen, "too many placeholders in \"%s\" (at most %d)", s, MAX_CAPTURES);
        return -1;
      }
      if (p > s && p[-1] == '}') {
        snprintf(err, errlen, "two placeholders in a row in \"%s\" cannot be told apart", s);
        return -1;
      }
      memcpy(c->name[c->n], p + 1, nl);
      c->name[c->n][nl] = 0;
      c->n++;
    } else if (k == c->n) {
      snprintf(err, errlen, "placeholder {%.*s} of \"%s\" does not appear in the file name", (int)nl, p + 1, s);
      return -1;
    }
    p += total - 1;
  }
  return 0;
}

int tfx_wrename_check(const tfx_wrename *rule, char *err, size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  if (!rule || !rule->from || !rule->to) {
    snprintf(err, errlen, "incomplete rename rule");
    return -1;
  }
  if (!rule->from[0]) {
    snprintf(err, errlen, "the file name of a rename rule is empty");
    return -1;
  }
  captures c = {0};
  if (check_side(rule->from, "file", &c, 1, err, errlen)) return -1;
  return check_side(rule->to, "param", &c, 0, err, errlen) ? -2 : 0;
}

/* Matches pattern p against all of s, filling captures; backtracks over the
 * number of digits each placeholder takes. */
static int match(const char *p, const char *s, captures *c) {
  while (*p && *p != '{' && *p != '*') {
    if (*p != *s) return 0;
    p++;
    s++;
  }
  if (!*p) return *s == 0;
  if (*p == '*') {
    for (size_t len = 0;; len++) {
      if (match(p + 1, s + len, c)) return 1;
      if (!s[len]) return 0;
    }
  }
  size_t nl, total = placeholder(p, &nl);
  if (!total || c->n == MAX_CAPTURES) return 0;
  size_t digits = 0;
  while (digits < MAX_DIGITS && s[digits] >= '0' && s[digits] <= '9') digits++;
  int k = c->n++;
  memcpy(c->name[k], p + 1, nl);
  c->name[k][nl] = 0;
  c->at[k] = s;
  for (size_t len = 1; len <= digits; len++) {
    c->len[k] = len;
    if (match(p + total, s + len, c)) return 1;
  }
  c->n = k;
  return 0;
}

static int substitute(const char *to, const captures *c, char *out, size_t outlen) {
  size_t n = 0;
  for (const char *p = to; *p;) {
    size_t nl, total = *p == '{' ? placeholder(p, &nl) : 0;
    const char *piece = p;
    size_t len = 1;
    if (total) {
      int k = 0;
      while (k < c->n && !(strlen(c->name[k]) == nl && strncmp(c->name[k], p + 1, nl) == 0)) k++;
      if (k < c->n) {
        piece = c->at[k];
        len = c->len[k];
      } else {
        len = total; /* not captured (an unchecked rule): copy it literally */
      }
      p += total;
    } else {
      p++;
    }
    if (n + len >= outlen) return -1;
    memcpy(out + n, piece, len);
    n += len;
  }
  out[n] = 0;
  return 1;
}

int tfx_wview_binds(const tfx_wview *v) { return v && (v->n_ops > 0 || v->stack); }

int tfx_wrename_match(const tfx_wrename *rule, const char *stack, const char *name, char *out, size_t outlen,
                      int64_t *index) {
  captures c = {0};
  if (index) *index = -1;
  if (!out || !outlen || !rule->from || !rule->to || !match(rule->from, name, &c)) return 0;
  for (int k = 0; k < c.n && stack && index; k++)
    if (strcmp(c.name[k], stack) == 0) {
      int64_t v = 0;
      for (size_t i = 0; i < c.len[k]; i++) v = v * 10 + (c.at[k][i] - '0');
      *index = v;
    }
  return substitute(rule->to, &c, out, outlen);
}

int tfx_wrename_apply(const tfx_wrename *rules, int n_rules, const char *name, char *out, size_t outlen) {
  if (!out || !outlen) return -1;
  for (int i = 0; i < n_rules; i++) {
    int m = tfx_wrename_match(&rules[i], NULL, name, out, outlen, NULL);
    if (m) return m;
  }
  size_t n = strlen(name);
  if (n >= outlen) return -1;
  memcpy(out, name, n + 1);
  return 0;
}
