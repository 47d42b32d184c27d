/* tests/test_two_models.c — two models in one program: the real stories260K
 * and tiny_llama (random weights) compiled to objects (`tfxc -c`) with their
 * headers define distinct symbols (`<name>_descriptor`,
 * `<name>_weights_blob`; the common `tfx_model_descriptor_data` is weak) and
 * link into examples/embed/two_models.c with one runtime; the program, which
 * steps both models in turn, prints for each the same 16 greedy ids as the
 * program built with that model's object alone, stories260K's are llama2.c's
 * (stories260K.greedy.ids) and tiny_llama's are those `tfxc run` generates
 * from its .so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/testutil.h"

#ifdef TFX_SANITIZE_FLAGS
#define SANITIZE_ARG TFX_SANITIZE_FLAGS,
#else
#define SANITIZE_ARG
#endif

static char *dir;
static char inc[4200], incdir[4200], src[4200], rt[4200], obj_a[4200], obj_b[4200];

static char *stdout_of(char *const argv[]) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != 0) fail_msg("%s exited with %d: %s", argv[0], rc, err ? err : "");
  free(err);
  return out;
}

/* Builds the example with the given objects and -D flag (NULL: none) and
 * returns what it prints. */
static char *build_and_run(const char *name, const char *define, const char *o1, const char *o2) {
  char app[4300];
  snprintf(app, sizeof app, "%s/%s", dir, name);
  char *argv[32];
  int n = 0;
  char *fixed[] = {"/usr/bin/cc",    "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror",
                   SANITIZE_ARG inc, incdir,     "-o",  app,     src};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = fixed[i];
  if (define) argv[n++] = (char *)define;
  argv[n++] = (char *)o1;
  if (o2) argv[n++] = (char *)o2;
  char *libs[] = {rt, "-lffi", "-lpthread", "-ldl", "-lm", NULL};
  for (int i = 0; libs[i]; i++) argv[n++] = libs[i];
  argv[n] = NULL;
  free(stdout_of(argv));
  return stdout_of((char *[]){app, NULL});
}

static void test_two_models_in_one_program(void **state) {
  (void)state;
  char model_bin[4096], tiny_tfx[4200], stories_tfx[4200], hdr_a[4300], hdr_b[4300], so_b[4300];
  int32_t ref[16];
  if (tfx_test_stories260k("test_two_models", model_bin, sizeof model_bin, stories_tfx, sizeof stories_tfx, ref, 16))
    fail();
  dir = tfx_test_tmpdir();
  assert_non_null(dir);
  snprintf(tiny_tfx, sizeof tiny_tfx, "%s/examples/llama/tiny.tfx", TFX_SOURCE_DIR);
  snprintf(src, sizeof src, "%s/examples/embed/two_models.c", TFX_SOURCE_DIR);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(incdir, sizeof incdir, "-I%s", dir);
  snprintf(rt, sizeof rt, "%s/libtfxrt.a", TFX_BINARY_DIR);
  snprintf(obj_a, sizeof obj_a, "%s/stories260k.o", dir);
  snprintf(obj_b, sizeof obj_b, "%s/tiny_llama.o", dir);
  snprintf(hdr_a, sizeof hdr_a, "%s/stories260k.h", dir);
  snprintf(hdr_b, sizeof hdr_b, "%s/tiny_llama.h", dir);
  snprintf(so_b, sizeof so_b, "%s/tiny_llama.so", dir);
  free(stdout_of(
      (char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "-c", "-o", obj_a, "--emit-header", hdr_a, NULL}));
  free(stdout_of(
      (char *[]){TFXC_PATH, tiny_tfx, "--weights", "random", "-c", "-o", obj_b, "--emit-header", hdr_b, NULL}));
  free(stdout_of((char *[]){TFXC_PATH, tiny_tfx, "--weights", "random", "-o", so_b, NULL}));

  char *both = build_and_run("both", NULL, obj_a, obj_b);
  char *alone_a = build_and_run("alone_a", "-DONLY_STORIES", obj_a, NULL);
  char *alone_b = build_and_run("alone_b", "-DONLY_TINY", obj_b, NULL);
  char want_a[512] = "stories260k:";
  for (int i = 0; i < 16; i++) snprintf(want_a + strlen(want_a), sizeof want_a - strlen(want_a), " %d", ref[i]);
  strcat(want_a, "\n");
  assert_string_equal(alone_a, want_a);
  /* tiny_llama's ids from its .so, through tfxc run */
  char *ids = stdout_of((char *[]){TFXC_PATH, "run", so_b, "-n", "16", "--temperature", "0", "--print-ids", NULL});
  char want_b[512];
  snprintf(want_b, sizeof want_b, "tiny_llama: %s", ids);
  free(ids);
  assert_string_equal(alone_b, want_b);
  char want_both[1024];
  snprintf(want_both, sizeof want_both, "%s%s", alone_a, alone_b);
  assert_string_equal(both, want_both);
  free(both);
  free(alone_a);
  free(alone_b);
  tfx_test_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_models_in_one_program)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
