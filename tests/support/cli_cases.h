/* tests/support/cli_cases.h — table-driven tfxc command-line cases: run tfxc
 * with arguments in which "@X" aliases and "@D/name" stand for files in the
 * test's temporary folder, and check the exit status and a stderr fragment. */
#ifndef TFX_TEST_CLI_CASES_H
#define TFX_TEST_CLI_CASES_H

#define TFX_CLI_MAX_ARGS 14

typedef struct tfx_cli_case {
  const char *name;
  const char *argv[TFX_CLI_MAX_ARGS]; /* after tfxc itself, NULL-terminated */
  int status;                         /* expected exit status */
  const char *fragment;               /* expected in stderr (NULL: not checked) */
} tfx_cli_case;

/* An alias: the argument `alias` ("@T") is replaced by tmpdir/path. */
typedef struct tfx_cli_alias {
  const char *alias, *path;
} tfx_cli_alias;

/* Runs case c (the cmocka test fails with the command's stderr on a
 * mismatch). aliases ends with {NULL, NULL}; "@D/x" is always tmpdir/x. */
void tfx_cli_case_run(const tfx_cli_case *c, const char *tmpdir, const tfx_cli_alias *aliases);

#endif
