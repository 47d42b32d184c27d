/* frontend/json.h — a small strict JSON parser (RFC 8259) for the headers of
 * weights files: objects, arrays, strings with every escape, numbers, true,
 * false, null. No extensions (no comments, no trailing commas, no NaN); a
 * nesting limit keeps malicious input from exhausting the stack. */
#ifndef TFX_FE_JSON_H
#define TFX_FE_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  TFX_FE_JSON_NULL,
  TFX_FE_JSON_FALSE,
  TFX_FE_JSON_TRUE,
  TFX_FE_JSON_NUMBER,
  TFX_FE_JSON_STRING,
  TFX_FE_JSON_ARRAY,
  TFX_FE_JSON_OBJECT
} tfx_fe_json_kind;

typedef struct tfx_fe_json {
  tfx_fe_json_kind kind;
  double num;                /* NUMBER */
  int is_uint;               /* NUMBER: a non-negative integer literal (no fraction or exponent) that fits uint64 */
  uint64_t uval;             /* its value when is_uint */
  char *str;                 /* STRING: the decoded UTF-8 text (never contains NUL) */
  int n;                     /* ARRAY, OBJECT: number of members */
  char **keys;               /* OBJECT: member names, in order (duplicates are kept) */
  struct tfx_fe_json *items; /* ARRAY, OBJECT: member values */
} tfx_fe_json;

#define TFX_FE_JSON_MAX_DEPTH 64

/* Parses text[0..len) (surrounding whitespace allowed). Returns a malloc'd
 * tree, or NULL with "at byte N: …" in err (or "out of memory"). */
tfx_fe_json *tfx_fe_json_parse(const char *text, size_t len, char *err, size_t errlen);
void tfx_fe_json_free(tfx_fe_json *v);
/* The first member named key of an object, or NULL. */
const tfx_fe_json *tfx_fe_json_get(const tfx_fe_json *obj, const char *key);
/* "object", "array", "string", … */
const char *tfx_fe_json_kind_name(tfx_fe_json_kind k);

#endif
