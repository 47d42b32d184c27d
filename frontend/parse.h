/* frontend/parse.h — the entry point of the lexer + parser pair and the state
 * they share (the scanner's extra data and the parser's parameter). */
#ifndef TFX_FE_PARSE_H
#define TFX_FE_PARSE_H

#include <stddef.h>

#include "ast.h"
#include "diag.h"

typedef struct tfx_fe_parse_state {
  tfx_fe_arena *arena;
  tfx_fe_diag *diag;
  tfx_fe_program *program;
  /* lexer */
  int line, col;      /* position of the next character */
  int depth;          /* open ( and [: newlines inside them are not statement ends */
  int last;           /* the last token returned (0 at the start) */
  int eof_nl_done;    /* the newline synthesized before the end of file */
  int lex_error_line; /* line of the last lexical error: no syntax error is added there */
  char last_text[48]; /* text of the last token, for syntax errors */
} tfx_fe_parse_state;

/* Parses src[0..len) into *out (allocated in `arena`). Returns the number of
 * errors reported to `diag` by the lexer and the parser. */
int tfx_fe_parse(const char *src, size_t len, tfx_fe_arena *arena, tfx_fe_diag *diag, tfx_fe_program **out);

#endif
