/* tests/support/cli_cases.c — see cli_cases.h. */
#include "cli_cases.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

void tfx_cli_case_run(const tfx_cli_case *c, const char *tmpdir, const tfx_cli_alias *aliases) {
  char paths[TFX_CLI_MAX_ARGS][4200];
  char *argv[TFX_CLI_MAX_ARGS + 2];
  int n = 0;
  argv[n++] = TFXC_PATH;
  for (int i = 0; i < TFX_CLI_MAX_ARGS && c->argv[i]; i++) {
    const char *a = c->argv[i];
    snprintf(paths[i], sizeof paths[i], "%s", a);
    if (!strncmp(a, "@D/", 3)) snprintf(paths[i], sizeof paths[i], "%s/%s", tmpdir, a + 3);
    for (const tfx_cli_alias *al = aliases; al && al->alias; al++)
      if (!strcmp(a, al->alias)) snprintf(paths[i], sizeof paths[i], "%s/%s", tmpdir, al->path);
    argv[n++] = paths[i];
  }
  argv[n] = NULL;
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != c->status || (c->fragment && (!err || !strstr(err, c->fragment))))
    fail_msg("%s: exit %d (expected %d), stderr:\n%s\n(expected '%s')", c->name, rc, c->status, err ? err : "",
             c->fragment ? c->fragment : "");
  free(out);
  free(err);
}
