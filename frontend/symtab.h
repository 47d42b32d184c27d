/* frontend/symtab.h — a small string-keyed hash table for the frontend's
 * scopes: constants, params, blocks, variables and param nodes. Keys are not
 * copied (they live in the AST arena); each entry holds a pointer and an int. */
#ifndef TFX_FE_SYMTAB_H
#define TFX_FE_SYMTAB_H

typedef struct tfx_fe_sym {
  const char *key; /* NULL: empty slot */
  void *ptr;
  int num;
} tfx_fe_sym;

typedef struct tfx_fe_symtab {
  tfx_fe_sym *slots;
  int cap, n;
} tfx_fe_symtab;

/* The entry of key, or NULL. */
tfx_fe_sym *tfx_fe_sym_find(const tfx_fe_symtab *t, const char *key);
/* Sets key's entry (adding it if new); NULL when out of memory. */
tfx_fe_sym *tfx_fe_sym_put(tfx_fe_symtab *t, const char *key, void *ptr, int num);
void tfx_fe_symtab_free(tfx_fe_symtab *t);

/* Levenshtein distance of a and b, capped at `cap` (for "did you mean"). */
int tfx_fe_edit_distance(const char *a, const char *b, int cap);

#endif
