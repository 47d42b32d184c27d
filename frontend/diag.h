/* frontend/diag.h — compiler diagnostics: `file:line:col: error: message`,
 * the source line and a caret under the column; notes in the same form. */
#ifndef TFX_FE_DIAG_H
#define TFX_FE_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef struct tfx_fe_diag {
  FILE *out;
  const char *path; /* names the file in messages */
  const char *src;  /* the source text (for the quoted line), may be NULL */
  size_t len;
  int errors;     /* errors printed so far */
  int max_errors; /* stop after this many */
  int stopped;    /* max_errors reached: callers should stop */
  /* errors already printed, to print each (location, message) once */
  char **seen;
  int n_seen;
  int seen_last; /* the last error was printed: its notes are too */
} tfx_fe_diag;

void tfx_fe_diag_init(tfx_fe_diag *d, FILE *out, const char *path, const char *src, size_t len, int max_errors);
void tfx_fe_diag_free(tfx_fe_diag *d);

/* line 0: no location (`file: error: message`). Repeats of an error already
 * printed at the same place are dropped; after max_errors, errors are dropped
 * and d->stopped is set. */
void tfx_fe_error(tfx_fe_diag *d, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A note attached to the last error (printed only if that error was). */
void tfx_fe_note(tfx_fe_diag *d, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
