/* tests/test_symbol_prefix.c — tfxc --symbol-prefix: the same model (tiny.tfx,
 * one name) compiled twice with different random weights and the prefixes m1
 * and m2 links into one program through m1.h / m2.h (`m1_descriptor`,
 * `m1_weights_blob`, ...); the program's greedy ids for each are those
 * `tfxc run` generates from a .so built with the same weights, and they
 * differ (each model reads its own weights). Without the prefixes the two
 * objects do not link (the same `<name>_descriptor`); a prefix that is not a
 * C identifier is a usage error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/testutil.h"

#ifdef TFX_SANITIZE_FLAGS
#define SANITIZE_ARG TFX_SANITIZE_FLAGS,
#else
#define SANITIZE_ARG
#endif

static const char program[] = "#include <stdio.h>\n"
                              "#include <tfx/tfx.h>\n"
                              "#include \"m1.h\"\n"
                              "#include \"m2.h\"\n"
                              "static int greedy(int (*open)(tfx_model **), const char *label) {\n"
                              "  tfx_model *m; tfx_session *s; float logits[M1_OUTPUT_WIDTH];\n"
                              "  if (open(&m) || tfx_session_create(m, NULL, &s)) return 1;\n"
                              "  int32_t tok = 1;\n"
                              "  printf(\"%s:\", label);\n"
                              "  for (int i = 0; i < 12; i++) {\n"
                              "    if (tfx_forward(s, &tok, 1, logits)) return 1;\n"
                              "    int best = 0;\n"
                              "    for (int j = 1; j < M1_OUTPUT_WIDTH; j++) if (logits[j] > logits[best]) best = j;\n"
                              "    if (best == 1) break;\n"
                              "    tok = best;\n"
                              "    printf(\" %d\", best);\n"
                              "  }\n"
                              "  printf(\"\\n\");\n"
                              "  tfx_session_free(s);\n"
                              "  tfx_model_close(m);\n"
                              "  return 0;\n"
                              "}\n"
                              "int main(void) { return greedy(m1_open, \"m1\") || greedy(m2_open, \"m2\"); }\n";

static char *dir;

static char *path_in(const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

static char *run_ok(char *const argv[]) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != 0) fail_msg("%s %s exited with %d: %s", argv[0], argv[1], rc, err ? err : "");
  free(err);
  return out;
}

static void test_two_prefixes_in_one_program(void **state) {
  (void)state;
  dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char tiny[4200], inc[4200], incdir[4200], rt[4200];
  snprintf(tiny, sizeof tiny, "%s/examples/llama/tiny.tfx", TFX_SOURCE_DIR);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(incdir, sizeof incdir, "-I%s", dir);
  snprintf(rt, sizeof rt, "%s/libtfxrt.a", TFX_BINARY_DIR);
  char *src = path_in("main.c"), *app = path_in("app"), *o[2], *h[2], *so[2], *plain[2];
  FILE *f = fopen(src, "w");
  assert_non_null(f);
  fputs(program, f);
  fclose(f);
  char *want[2];
  for (int i = 0; i < 2; i++) {
    char name[32], seed[32], prefix[8];
    snprintf(prefix, sizeof prefix, "m%d", i + 1);
    snprintf(seed, sizeof seed, "random:%d", i + 11);
    snprintf(name, sizeof name, "m%d.o", i + 1);
    o[i] = path_in(name);
    snprintf(name, sizeof name, "m%d.h", i + 1);
    h[i] = path_in(name);
    snprintf(name, sizeof name, "m%d.so", i + 1);
    so[i] = path_in(name);
    snprintf(name, sizeof name, "plain%d.o", i + 1);
    plain[i] = path_in(name);
    free(run_ok((char *[]){TFXC_PATH, tiny, "--weights", seed, "-O1", "-c", "-o", o[i], "--emit-header", h[i],
                           "--symbol-prefix", prefix, NULL}));
    free(run_ok((char *[]){TFXC_PATH, tiny, "--weights", seed, "-O1", "-o", so[i], "--symbol-prefix", prefix, NULL}));
    free(run_ok((char *[]){TFXC_PATH, tiny, "--weights", seed, "-O1", "-c", "-o", plain[i], NULL}));
    char *ids = run_ok((char *[]){TFXC_PATH, "run", so[i], "-n", "12", "--temperature", "0", "--print-ids", NULL});
    want[i] = malloc(strlen(ids) + 16);
    sprintf(want[i], "%s:%s%s", prefix, ids[0] == '\n' ? "" : " ", ids);
    free(ids);
    /* the header names the prefix, not the model */
    char *text = tfx_test_read_file(h[i], NULL);
    assert_non_null(text);
    char decl[64];
    snprintf(decl, sizeof decl, "extern const tfx_model_desc %s_descriptor;", prefix);
    assert_non_null(strstr(text, decl));
    free(text);
  }
  assert_string_not_equal(want[0], want[1]); /* different weights, different ids */
  free(run_ok((char *[]){"/usr/bin/cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", SANITIZE_ARG inc, incdir,
                         "-o", app, src, o[0], o[1], rt, "-lffi", "-lpthread", "-ldl", "-lm", NULL}));
  char *got = run_ok((char *[]){app, NULL});
  char both[1024];
  snprintf(both, sizeof both, "%s%s", want[0], want[1]);
  assert_string_equal(got, both);
  free(got);
  /* the same objects without prefixes: one name twice */
  char *out = NULL, *err = NULL;
  char *shared = path_in("shared.c");
  f = fopen(shared, "w");
  assert_non_null(f);
  fputs("int main(void) { return 0; }\n", f);
  fclose(f);
  int rc = tfx_test_run((char *[]){"/usr/bin/cc", SANITIZE_ARG "-o", app, shared, plain[0], plain[1], rt, "-lffi",
                                   "-lpthread", "-ldl", "-lm", NULL},
                        &out, &err);
  assert_int_not_equal(rc, 0);
  assert_non_null(strstr(err, "multiple definition"));
  free(out);
  free(err);
  for (int i = 0; i < 2; i++) {
    free(o[i]);
    free(h[i]);
    free(so[i]);
    free(plain[i]);
    free(want[i]);
  }
  free(shared);
  free(src);
  free(app);
  tfx_test_rmdir(dir);
  free(dir);
}

static void test_bad_prefix_is_a_usage_error(void **state) {
  (void)state;
  char tiny[4200];
  snprintf(tiny, sizeof tiny, "%s/examples/llama/tiny.tfx", TFX_SOURCE_DIR);
  const char *bad[] = {"9lives", "a-b", "", "tfx_model"};
  for (int i = 0; i < 4; i++) {
    char *out = NULL, *err = NULL;
    int rc = tfx_test_run((char *[]){TFXC_PATH, tiny, "--symbol-prefix", (char *)bad[i], "-c", NULL}, &out, &err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "--symbol-prefix needs a C identifier"));
    free(out);
    free(err);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_prefixes_in_one_program),
                                     cmocka_unit_test(test_bad_prefix_is_a_usage_error)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
