/* tests/support/frontend_capture.c — tfx_test_compile_capture: the frontend
 * with its diagnostics in a string; tfx_test_expect_compile_error: tfxc's
 * message for a bad source (frontend_capture.h). */
#include "frontend_capture.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

char *tfx_test_compile_capture(const char *path, const char *src, const tfx_frontend_options *o, int *errors,
                               tfx_graph **keep_g, tfx_weights *keep_w) {
  char *diag = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&diag, &len);
  assert_non_null(f);
  tfx_frontend_options opts = {0};
  if (o) opts = *o;
  opts.diag = f;
  tfx_graph *g = NULL;
  tfx_weights w = {0};
  *errors = tfx_frontend_compile(path, src, &opts, &g, &w);
  fclose(f);
  if (*errors) assert_null(g);
  if (keep_g && keep_w) {
    *keep_g = g;
    *keep_w = w;
  } else {
    tfx_graph_free(g);
    tfx_weights_free(&w);
  }
  return diag;
}

void tfx_test_expect_compile_error(const char *src, const char *where, const char *msg) {
  char *err = NULL;
  int rc = tfx_test_compile_text(src, &err);
  if (rc == 0 || !err || !strstr(err, where) || !strstr(err, msg))
    fail_msg("expected '%s' at %s, got (rc %d):\n%s", msg, where, rc, err ? err : "");
  free(err);
}
