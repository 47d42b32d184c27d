/* tests/test_cross.c — cross-compilation (tfxc --target aarch64-linux-gnu,
 * docs/portability.md): the real stories260K compiled for aarch64 on this
 * host and run under qemu-user (qemu-aarch64), with the aarch64 runtime
 * archive the build makes with cmake/toolchains/aarch64-linux-gnu.cmake.
 *  - a -c object (an aarch64 relocatable) linked into a static aarch64
 *    program (examples/embed/main.c) prints llama2.c's 16 greedy ids;
 *  - a q8_0 object (no x86 int8 instructions: the generic kernels) prints
 *    the ids the host's q8_0 .so prints (`tfxc run`);
 *  - a .so for --mcpu cortex-a72, linked by aarch64-linux-gnu-gcc with the
 *    runtime tfxc finds in the build tree, is an aarch64 shared object that
 *    the host refuses to open and that tests/cross/load_so.c opens with
 *    tfx_model_open under qemu, printing llama2.c's ids;
 *  - a target or CPU tfxc cannot compile for is a clear error.
 * The qemu parts are skipped, with a message, when aarch64-linux-gnu-gcc
 * (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross) or qemu-aarch64 (qemu-user)
 * is missing. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/testutil.h"
#include "tfx/tfx.h"

static char *dir;
static char model_bin[4096], stories_tfx[4200];
static int32_t ref[16];

static char *run_ok(char *const argv[]) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != 0) fail_msg("%s exited with %d: %s", argv[0], rc, err ? err : "");
  free(err);
  return out;
}

/* tfxc's exit status and stderr for argv */
static int run_fails(char *const argv[], char **err) {
  char *out = NULL;
  int rc = tfx_test_run(argv, &out, err);
  free(out);
  return rc;
}

static int have_cross(void) {
#if defined(TFX_AARCH64_CC) && defined(TFX_AARCH64_RUNTIME) && defined(TFX_QEMU_AARCH64)
  if (access(TFX_AARCH64_CC, X_OK) == 0 && access(TFX_AARCH64_RUNTIME, R_OK) == 0 &&
      access(TFX_QEMU_AARCH64, X_OK) == 0)
    return 1;
#endif
  fprintf(stderr, "test_cross: SKIPPED: needs aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu, "
                  "libc6-dev-arm64-cross) and qemu-aarch64 (qemu-user) when CMake configures the build\n");
  return 0;
}

static unsigned elf_machine(const char *path, unsigned *type) {
  Elf64_Ehdr eh;
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fread(&eh, 1, sizeof eh, f), sizeof eh);
  fclose(f);
  *type = eh.e_type;
  return eh.e_machine;
}

static void want_ids(const char *got, const int32_t *ids) {
  char want[512] = "generated:";
  for (int i = 0; i < 16; i++) snprintf(want + strlen(want), sizeof want - strlen(want), " %d", ids[i]);
  strcat(want, "\n");
  assert_string_equal(got, want);
}

#if defined(TFX_AARCH64_CC) && defined(TFX_AARCH64_RUNTIME) && defined(TFX_QEMU_AARCH64)
/* examples/embed/main.c with the object (and its header in dir), static, for
 * aarch64; what it prints under qemu */
static char *static_app(const char *obj, const char *name) {
  char app[4300], inc[4200], incdir[4300], src[4200];
  snprintf(app, sizeof app, "%s/%s", dir, name);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(incdir, sizeof incdir, "-I%s", dir);
  snprintf(src, sizeof src, "%s/examples/embed/main.c", TFX_SOURCE_DIR);
  free(run_ok((char *[]){TFX_AARCH64_CC, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-static", inc, incdir, "-o",
                         app, src, (char *)obj, TFX_AARCH64_RUNTIME, "-lpthread", "-lm", NULL}));
  return run_ok((char *[]){TFX_QEMU_AARCH64, app, NULL});
}
#endif

static void test_static_program(void **state) {
  (void)state;
  if (!have_cross()) skip();
#if defined(TFX_AARCH64_CC) && defined(TFX_AARCH64_RUNTIME) && defined(TFX_QEMU_AARCH64)
  char obj[4300], hdr[4300];
  snprintf(obj, sizeof obj, "%s/stories260k.o", dir);
  snprintf(hdr, sizeof hdr, "%s/stories260k.h", dir);
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--target", "aarch64-linux-gnu", "-c", "-o",
                         obj, "--emit-header", hdr, NULL}));
  unsigned type;
  assert_int_equal(elf_machine(obj, &type), EM_AARCH64);
  assert_int_equal(type, ET_REL);
  char *got = static_app(obj, "app_f32");
  want_ids(got, ref);
  free(got);
#endif
}

static void test_quantized(void **state) {
  (void)state;
  if (!have_cross()) skip();
#if defined(TFX_AARCH64_CC) && defined(TFX_AARCH64_RUNTIME) && defined(TFX_QEMU_AARCH64)
  char obj[4300], hdr[4300], so[4300];
  snprintf(obj, sizeof obj, "%s/stories260k.o", dir);
  snprintf(hdr, sizeof hdr, "%s/stories260k.h", dir);
  snprintf(so, sizeof so, "%s/host_q8.so", dir);
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--quantize", "q8_0", "--target",
                         "aarch64-linux-gnu", "-c", "-o", obj, "--emit-header", hdr, NULL}));
  char *got = static_app(obj, "app_q8");
  /* the host's q8_0 model: the same ids */
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--quantize", "q8_0", "-o", so, NULL}));
  char *host = run_ok((char *[]){TFXC_PATH, "run", so, "-n", "16", "--temperature", "0", "--print-ids", NULL});
  char want[512];
  snprintf(want, sizeof want, "generated: %s", host);
  assert_string_equal(got, want);
  free(host);
  free(got);
#endif
}

static void test_shared_library(void **state) {
  (void)state;
  if (!have_cross()) skip();
#if defined(TFX_AARCH64_CC) && defined(TFX_AARCH64_RUNTIME) && defined(TFX_QEMU_AARCH64)
  char so[4300], loader[4300], inc[4200], src[4200];
  snprintf(so, sizeof so, "%s/stories260k_a72.so", dir);
  snprintf(loader, sizeof loader, "%s/load_so", dir);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(src, sizeof src, "%s/tests/cross/load_so.c", TFX_SOURCE_DIR);
  /* the runtime archive: the build tree's runtime-aarch64-linux-gnu/ */
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--target", "aarch64-linux-gnu", "--mcpu",
                         "cortex-a72", "-o", so, NULL}));
  unsigned type;
  assert_int_equal(elf_machine(so, &type), EM_AARCH64);
  assert_int_equal(type, ET_DYN);
  /* this host refuses it, naming the machine */
  tfx_model *m = NULL;
  char err[512] = "";
  assert_int_equal(tfx_model_open_ex(so, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_null(m);
  assert_non_null(strstr(err, "another machine"));
  /* a dynamic aarch64 program opens it under qemu, with the cross
   * toolchain's libraries (its loader's folder is the sysroot's lib/) */
  free(run_ok((char *[]){TFX_AARCH64_CC, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", inc, "-o", loader, src,
                         TFX_AARCH64_RUNTIME, "-lpthread", "-ldl", "-lm", NULL}));
  char *ld = run_ok((char *[]){TFX_AARCH64_CC, "-print-file-name=ld-linux-aarch64.so.1", NULL});
  char root[4096];
  snprintf(root, sizeof root, "%s", ld);
  free(ld);
  size_t cut = strcspn(root, "\n");
  root[cut] = 0;
  const char *tail = "/lib/ld-linux-aarch64.so.1";
  if (cut <= strlen(tail) || strcmp(root + cut - strlen(tail), tail))
    fail_msg("the cross compiler does not know its dynamic loader: %s", root);
  root[cut - strlen(tail)] = 0;
  char *got = run_ok((char *[]){TFX_QEMU_AARCH64, "-L", root, loader, so, NULL});
  want_ids(got, ref);
  free(got);
#endif
}

/* what tfxc cannot compile for: errors naming it (these need no cross tools) */
static void test_errors(void **state) {
  (void)state;
  char *err = NULL, out[4300];
  snprintf(out, sizeof out, "%s/never.o", dir);
  assert_int_equal(run_fails((char *[]){TFXC_PATH, stories_tfx, "--weights", "random", "--target", "riscv64-linux-gnu",
                                        "-c", "-o", out, NULL},
                             &err),
                   1);
  assert_non_null(strstr(err, "--target 'riscv64-linux-gnu' is not supported"));
  free(err);
  assert_int_equal(run_fails((char *[]){TFXC_PATH, stories_tfx, "--weights", "random", "--target", "aarch64-linux-gnu",
                                        "--mcpu", "native", "-c", "-o", out, NULL},
                             &err),
                   1);
  assert_non_null(strstr(err, "--mcpu native names the host's CPU"));
  free(err);
  assert_int_equal(run_fails((char *[]){TFXC_PATH, stories_tfx, "--weights", "random", "--target", "aarch64-linux-gnu",
                                        "--mcpu", "skylake", "-c", "-o", out, NULL},
                             &err),
                   1);
  assert_non_null(strstr(err, "unknown CPU 'skylake'"));
  free(err);
  /* --cc without a file to link */
  assert_int_equal(run_fails((char *[]){TFXC_PATH, stories_tfx, "--cc", "gcc", "--stats", NULL}, &err), 2);
  assert_non_null(strstr(err, "--cc and --sysroot apply to"));
  free(err);
  assert_int_equal(access(out, F_OK), -1);
}

static int setup(void **state) {
  (void)state;
  if (tfx_test_stories260k("test_cross", model_bin, sizeof model_bin, stories_tfx, sizeof stories_tfx, ref, 16))
    return -1;
  dir = tfx_test_tmpdir();
  return dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_errors), cmocka_unit_test(test_static_program),
                                     cmocka_unit_test(test_quantized), cmocka_unit_test(test_shared_library)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
