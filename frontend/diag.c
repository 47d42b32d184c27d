/* frontend/diag.c — prints diagnostics with the quoted source line and a
 * caret, counts errors, drops duplicates and stops after max_errors. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tfx_fe_diag_init(tfx_fe_diag *d, FILE *out, const char *path, const char *src, size_t len, int max_errors) {
  memset(d, 0, sizeof *d);
  d->out = out ? out : stderr;
  d->path = path ? path : "<input>";
  d->src = src;
  d->len = len;
  d->max_errors = max_errors > 0 ? max_errors : 20;
}

void tfx_fe_diag_free(tfx_fe_diag *d) {
  for (int i = 0; i < d->n_seen; i++) free(d->seen[i]);
  free(d->seen);
  d->seen = NULL;
  d->n_seen = 0;
}

/* Quotes source line `line` and puts a caret under column `col`; tabs before
 * the column are repeated so the caret lines up on screen. */
static void quote(tfx_fe_diag *d, int line, int col) {
  if (!d->src || line <= 0) return;
  size_t i = 0;
  for (int l = 1; l < line && i < d->len; i++)
    if (d->src[i] == '\n') l++;
  if (i >= d->len) return; /* past the end (an error at end of file after a final newline) */
  size_t end = i;
  while (end < d->len && d->src[end] != '\n') end++;
  if (end > i && d->src[end - 1] == '\r') end--;
  fputs("  ", d->out);
  for (size_t k = i; k < end; k++) {
    unsigned char c = (unsigned char)d->src[k];
    fputc(c == 0 ? ' ' : c, d->out);
  }
  fputs("\n  ", d->out);
  for (int c = 1; c < col; c++) {
    size_t k = i + (size_t)(c - 1);
    fputc(k < end && d->src[k] == '\t' ? '\t' : ' ', d->out);
  }
  fputs("^\n", d->out);
}

static void emit(tfx_fe_diag *d, const char *kind, int line, int col, const char *msg) {
  if (line > 0)
    fprintf(d->out, "%s:%d:%d: %s: %s\n", d->path, line, col > 0 ? col : 1, kind, msg);
  else
    fprintf(d->out, "%s: %s: %s\n", d->path, kind, msg);
  quote(d, line, col > 0 ? col : 1);
}

void tfx_fe_error(tfx_fe_diag *d, int line, int col, const char *fmt, ...) {
  char msg[1024], key[1100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  d->stopped = d->errors >= d->max_errors;
  if (d->stopped) {
    d->seen_last = 0;
    return;
  }
  snprintf(key, sizeof key, "%d:%d:%s", line, col, msg);
  for (int i = 0; i < d->n_seen; i++)
    if (!strcmp(d->seen[i], key)) {
      d->seen_last = 0;
      return;
    }
  char **seen = realloc(d->seen, (size_t)(d->n_seen + 1) * sizeof *seen);
  if (seen) {
    d->seen = seen;
    char *k = strdup(key);
    if (k) d->seen[d->n_seen++] = k;
  }
  emit(d, "error", line, col, msg);
  d->errors++;
  d->seen_last = 1;
  if (d->errors >= d->max_errors) {
    d->stopped = 1;
    fprintf(d->out, "%s: note: too many errors, stopping after %d\n", d->path, d->errors);
  }
}

void tfx_fe_note(tfx_fe_diag *d, int line, int col, const char *fmt, ...) {
  if (!d->seen_last) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  emit(d, "note", line, col, msg);
}
