/* tests/test_cross.c — cross-compilation (tfxc --target, docs/portability.md):
 * the real stories260K compiled on this host for aarch64-linux-gnu and
 * riscv64-linux-gnu (with the vector extension) and run under qemu-user,
 * with each machine's runtime archive, which the build makes with
 * cmake/toolchains/TRIPLE.cmake.
 *  - a -c object (a relocatable for the machine) linked into a static
 *    program (examples/embed/main.c) prints llama2.c's 16 greedy ids;
 *  - aarch64: a q8_0 object (no x86 int8 instructions: the generic kernels)
 *    prints the ids the host's q8_0 .so prints (`tfxc run`);
 *  - a .so (aarch64: --mcpu cortex-a72), linked by TRIPLE-gcc with the
 *    runtime tfxc finds in the build tree, is a shared object for the
 *    machine that the host refuses to open and that tests/cross/load_so.c
 *    opens with tfx_model_open under qemu, printing llama2.c's ids; the
 *    riscv64 one records V, and a qemu CPU without V refuses it (TFX_ERR_CPU);
 *  - a target or CPU tfxc cannot compile for is a clear error.
 * A machine's cases are skipped, with a message, when its cross compiler
 * (gcc-aarch64-linux-gnu + libc6-dev-arm64-cross, gcc-riscv64-linux-gnu +
 * libc6-dev-riscv64-cross) or qemu (qemu-user) was missing when CMake
 * configured the build. */
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

/* One machine tfxc cross-compiles for, and the tools that run its code. */
typedef struct {
  const char *arch, *triple, *cc, *runtime, *qemu;
  const char *qemu_cpu; /* qemu's -cpu, or NULL */
  const char *mcpu;     /* the .so's --mcpu, or NULL */
  unsigned machine;     /* e_machine */
  const char *loader;   /* the dynamic loader, under the sysroot's lib/ */
} machine;

#if defined(TFX_AARCH64_CC) && defined(TFX_AARCH64_RUNTIME) && defined(TFX_QEMU_AARCH64)
static const machine aarch64 = {"aarch64",           "aarch64-linux-gnu", TFX_AARCH64_CC,
                                TFX_AARCH64_RUNTIME, TFX_QEMU_AARCH64,    NULL,
                                "cortex-a72",        EM_AARCH64,          "ld-linux-aarch64.so.1"};
#define AARCH64 (&aarch64)
#else
#define AARCH64 NULL
#endif
#if defined(TFX_RISCV64_CC) && defined(TFX_RISCV64_RUNTIME) && defined(TFX_QEMU_RISCV64)
/* qemu-user's default riscv64 CPU has no V: turn it on (VLEN 128) */
static const machine riscv64 = {"riscv64",
                                "riscv64-linux-gnu",
                                TFX_RISCV64_CC,
                                TFX_RISCV64_RUNTIME,
                                TFX_QEMU_RISCV64,
                                "rv64,v=true,vlen=128,vext_spec=v1.0",
                                NULL,
                                EM_RISCV,
                                "ld-linux-riscv64-lp64d.so.1"};
#define RISCV64 (&riscv64)
#else
#define RISCV64 NULL
#endif

static int have(const machine *m, const char *arch) {
  if (m && access(m->cc, X_OK) == 0 && access(m->runtime, R_OK) == 0 && access(m->qemu, X_OK) == 0) return 1;
  fprintf(stderr,
          "test_cross: SKIPPED for %s: needs %s-linux-gnu-gcc (gcc-%s-linux-gnu and its libc6-dev cross "
          "package) and qemu-%s (qemu-user) when CMake configures the build\n",
          arch, arch, arch, arch);
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

/* what prog prints under qemu for m (-L root: the sysroot of a dynamic one) */
static char *qemu_run(const machine *m, const char *root, const char *prog, const char *arg) {
  char *argv[10];
  int n = 0;
  argv[n++] = (char *)m->qemu;
  if (m->qemu_cpu) {
    argv[n++] = "-cpu";
    argv[n++] = (char *)m->qemu_cpu;
  }
  if (root) {
    argv[n++] = "-L";
    argv[n++] = (char *)root;
  }
  argv[n++] = (char *)prog;
  if (arg) argv[n++] = (char *)arg;
  argv[n] = NULL;
  return run_ok(argv);
}

/* examples/embed/main.c with the object (and its header in dir), static, for
 * m; what it prints under qemu */
static char *static_app(const machine *m, const char *obj, const char *name) {
  char app[4300], inc[4200], incdir[4300], src[4200];
  snprintf(app, sizeof app, "%s/%s", dir, name);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(incdir, sizeof incdir, "-I%s", dir);
  snprintf(src, sizeof src, "%s/examples/embed/main.c", TFX_SOURCE_DIR);
  free(run_ok((char *[]){(char *)m->cc, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-static", inc, incdir, "-o",
                         app, src, (char *)obj, (char *)m->runtime, "-lpthread", "-lm", NULL}));
  return qemu_run(m, NULL, app, NULL);
}

static void static_program(const machine *m) {
  char obj[4300], hdr[4300], app[64];
  snprintf(obj, sizeof obj, "%s/stories260k.o", dir);
  snprintf(hdr, sizeof hdr, "%s/stories260k.h", dir);
  snprintf(app, sizeof app, "app_%s", m->arch);
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--target", (char *)m->triple, "-c", "-o", obj,
                         "--emit-header", hdr, NULL}));
  unsigned type;
  assert_int_equal(elf_machine(obj, &type), m->machine);
  assert_int_equal(type, ET_REL);
  char *got = static_app(m, obj, app);
  want_ids(got, ref);
  free(got);
}

static void test_static_program_aarch64(void **state) {
  (void)state;
  if (!have(AARCH64, "aarch64")) skip();
  static_program(AARCH64);
}

static void test_static_program_riscv64(void **state) {
  (void)state;
  if (!have(RISCV64, "riscv64")) skip();
  static_program(RISCV64);
}

static void test_quantized_aarch64(void **state) {
  (void)state;
  if (!have(AARCH64, "aarch64")) skip();
  char obj[4300], hdr[4300], so[4300];
  snprintf(obj, sizeof obj, "%s/stories260k.o", dir);
  snprintf(hdr, sizeof hdr, "%s/stories260k.h", dir);
  snprintf(so, sizeof so, "%s/host_q8.so", dir);
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--quantize", "q8_0", "--target",
                         "aarch64-linux-gnu", "-c", "-o", obj, "--emit-header", hdr, NULL}));
  char *got = static_app(AARCH64, obj, "app_q8");
  /* the host's q8_0 model: the same ids */
  free(run_ok((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "--quantize", "q8_0", "-o", so, NULL}));
  char *host = run_ok((char *[]){TFXC_PATH, "run", so, "-n", "16", "--temperature", "0", "--print-ids", NULL});
  char want[512];
  snprintf(want, sizeof want, "generated: %s", host);
  assert_string_equal(got, want);
  free(host);
  free(got);
}

static void shared_library(const machine *m) {
  char so[4300], loader[4300], inc[4200], src[4200], print[128];
  snprintf(so, sizeof so, "%s/stories260k_%s.so", dir, m->arch);
  snprintf(loader, sizeof loader, "%s/load_so_%s", dir, m->arch);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(src, sizeof src, "%s/tests/cross/load_so.c", TFX_SOURCE_DIR);
  /* the runtime archive: the build tree's runtime-TRIPLE/ */
  char *argv[16] = {TFXC_PATH, stories_tfx, "--weights", model_bin, "--target", (char *)m->triple, "-o", so};
  int n = 8;
  if (m->mcpu) {
    argv[n++] = "--mcpu";
    argv[n++] = (char *)m->mcpu;
  }
  argv[n] = NULL;
  free(run_ok(argv));
  unsigned type;
  assert_int_equal(elf_machine(so, &type), m->machine);
  assert_int_equal(type, ET_DYN);
  /* this host refuses it, naming the machine */
  tfx_model *model = NULL;
  char err[512] = "";
  assert_int_equal(tfx_model_open_ex(so, &model, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_null(model);
  assert_non_null(strstr(err, "another machine"));
  /* a dynamic program for m opens it under qemu, with the cross
   * toolchain's libraries (its loader's folder is the sysroot's lib/) */
  free(run_ok((char *[]){(char *)m->cc, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", inc, "-o", loader, src,
                         (char *)m->runtime, "-lpthread", "-ldl", "-lm", NULL}));
  snprintf(print, sizeof print, "-print-file-name=%s", m->loader);
  char *ld = run_ok((char *[]){(char *)m->cc, print, NULL});
  char root[4096], tail[128];
  snprintf(root, sizeof root, "%s", ld);
  free(ld);
  size_t cut = strcspn(root, "\n");
  root[cut] = 0;
  snprintf(tail, sizeof tail, "/lib/%s", m->loader);
  if (cut <= strlen(tail) || strcmp(root + cut - strlen(tail), tail))
    fail_msg("the cross compiler does not know its dynamic loader: %s", root);
  root[cut - strlen(tail)] = 0;
  char *got = qemu_run(m, root, loader, so);
  want_ids(got, ref);
  free(got);
  if (m->machine == EM_RISCV) {
    /* the model records V (tfx_model_cpu_features): a CPU without it is
     * refused with TFX_ERR_CPU naming it, before any vector code runs */
    char *why = NULL;
    int rc = run_fails((char *[]){(char *)m->qemu, "-cpu", "rv64,v=false", "-L", root, loader, so, NULL}, &why);
    if (rc != 1 || !strstr(why, "needs CPU features this CPU does not have: v "))
      fail_msg("riscv64 without V: exit %d, %s", rc, why ? why : "");
    free(why);
  }
}

static void test_shared_library_aarch64(void **state) {
  (void)state;
  if (!have(AARCH64, "aarch64")) skip();
  shared_library(AARCH64);
}

static void test_shared_library_riscv64(void **state) {
  (void)state;
  if (!have(RISCV64, "riscv64")) skip();
  shared_library(RISCV64);
}

/* what tfxc cannot compile for: errors naming it (these need no cross tools) */
static void test_errors(void **state) {
  (void)state;
  char *err = NULL, out[4300];
  snprintf(out, sizeof out, "%s/never.o", dir);
  assert_int_equal(run_fails((char *[]){TFXC_PATH, stories_tfx, "--weights", "random", "--target",
                                        "powerpc64le-linux-gnu", "-c", "-o", out, NULL},
                             &err),
                   1);
  assert_non_null(strstr(err, "--target 'powerpc64le-linux-gnu' is not supported"));
  free(err);
  assert_int_equal(run_fails((char *[]){TFXC_PATH, stories_tfx, "--weights", "random", "--target",
                                        "aarch64-apple-darwin", "-c", "-o", out, NULL},
                             &err),
                   1);
  assert_non_null(strstr(err, "cross-compiles for aarch64-linux-gnu and riscv64-linux-gnu"));
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
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_errors),
                                     cmocka_unit_test(test_static_program_aarch64),
                                     cmocka_unit_test(test_quantized_aarch64),
                                     cmocka_unit_test(test_shared_library_aarch64),
                                     cmocka_unit_test(test_static_program_riscv64),
                                     cmocka_unit_test(test_shared_library_riscv64)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
