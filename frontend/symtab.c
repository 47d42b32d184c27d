/* frontend/symtab.c — open-addressing string hash table and the edit distance
 * used for "did you mean" suggestions. */
#include "symtab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

tfx_fe_sym *tfx_fe_sym_find(const tfx_fe_symtab *t, const char *key) {
  if (!t->cap || !key) return NULL;
  for (uint32_t i = hash(key) & (uint32_t)(t->cap - 1);; i = (i + 1) & (uint32_t)(t->cap - 1)) {
    tfx_fe_sym *s = &t->slots[i];
    if (!s->key) return NULL;
    if (!strcmp(s->key, key)) return s;
  }
}

static int grow(tfx_fe_symtab *t) {
  int cap = t->cap ? t->cap * 2 : 16;
  tfx_fe_sym *slots = calloc((size_t)cap, sizeof *slots);
  if (!slots) return -1;
  for (int i = 0; i < t->cap; i++) {
    if (!t->slots[i].key) continue;
    uint32_t j = hash(t->slots[i].key) & (uint32_t)(cap - 1);
    while (slots[j].key) j = (j + 1) & (uint32_t)(cap - 1);
    slots[j] = t->slots[i];
  }
  free(t->slots);
  t->slots = slots;
  t->cap = cap;
  return 0;
}

tfx_fe_sym *tfx_fe_sym_put(tfx_fe_symtab *t, const char *key, void *ptr, int num) {
  if (!key) return NULL;
  tfx_fe_sym *s = tfx_fe_sym_find(t, key);
  if (!s) {
    if ((t->n + 1) * 2 > t->cap && grow(t)) return NULL;
    uint32_t i = hash(key) & (uint32_t)(t->cap - 1);
    while (t->slots[i].key) i = (i + 1) & (uint32_t)(t->cap - 1);
    s = &t->slots[i];
    s->key = key;
    t->n++;
  }
  s->ptr = ptr;
  s->num = num;
  return s;
}

void tfx_fe_symtab_free(tfx_fe_symtab *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = t->n = 0;
}

int tfx_fe_edit_distance(const char *a, const char *b, int cap) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return cap;
  if ((la > lb ? la - lb : lb - la) >= (size_t)cap) return cap;
  int row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb] < cap ? row[lb] : cap;
}
