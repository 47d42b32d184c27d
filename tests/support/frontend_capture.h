/* tests/support/frontend_capture.h — compiling a source through the frontend
 * with its diagnostics captured as text, for the tests that check messages
 * (test_errors, test_input_checks). */
#ifndef TFX_TEST_FRONTEND_CAPTURE_H
#define TFX_TEST_FRONTEND_CAPTURE_H

#include "frontend.h"

/* Compiles src (as file `path`; read from path when src is NULL) with the
 * options `o` (NULL: defaults; its diag is replaced) and returns the
 * diagnostics (malloc'd, "" when none); *errors is the error count. When
 * keep_g and keep_w are both non-NULL the graph and weights are handed to the
 * caller, else freed. A failed compile never returns a graph (asserted). */
char *tfx_test_compile_capture(const char *path, const char *src, const tfx_frontend_options *o, int *errors,
                               tfx_graph **keep_g, tfx_weights *keep_w);

/* Fails the test unless `tfxc --emit=ir` on src (tfx_test_compile_text)
 * fails with a message containing both `where` (e.g. ":5:37:") and `msg`. */
void tfx_test_expect_compile_error(const char *src, const char *where, const char *msg);

#endif
