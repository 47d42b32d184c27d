/* tests/test_target.c — the target description (backend/target.c,
 * tfx_cg_target): the host's and the --mcpu levels' vector width, registers,
 * FMA, int8 dot-product and bf16 instructions, micro-kernel and flash tiles
 * and packed layout; the object machine taken from LLVM (x86-64 and, with
 * LLVM's AArch64 target, aarch64), with clear errors for triples LLVM or tfxc
 * does not know; the weights object written for that machine; and the packed
 * layout flowing from the description through the passes to the kernels
 * (another layout is honoured by pack_weights and the interpreter, and
 * refused by the backend). */
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
#include <llvm-c/Target.h>

#include "../backend/cg.h"
#include "../driver/compile.h"
#include "../passes/passes.h"
#include "support/testutil.h"

static tfx_cg_target resolve(const char *cpu, const char *features) {
  tfx_target_options o = {.opt_level = 2, .cpu = cpu, .features = features};
  tfx_cg_target t;
  char err[512] = "";
  if (tfx_cg_target_resolve(&o, &t, err, sizeof err)) fail_msg("resolve %s: %s", cpu ? cpu : "host", err);
  return t;
}

static void assert_tile(const tfx_cg_tile *t, int mr, int mr_rem, int cols) {
  assert_int_equal(t->mr, mr);
  assert_int_equal(t->mr_rem, mr_rem);
  assert_int_equal(t->cols, cols);
}

/* What every x86-64 description of a width has in common. */
static void assert_x86_shape(const tfx_cg_target *t, int width) {
  assert_string_equal(t->arch, "x86-64");
  assert_int_equal(t->width, width);
  assert_int_equal(t->elf.machine, EM_X86_64);
  assert_int_equal(t->pack.panel, 32);
  assert_int_equal(t->pack.kc, 1);
  assert_int_equal(t->flash.rows, width);
  if (width == 16) {
    assert_int_equal(t->vregs, 32);
    assert_true(t->has_fma);
    assert_tile(&t->mk[0], 12, 4, 32);
    assert_tile(&t->mk[1], 6, 2, 32);
    assert_int_equal(t->flash.keys, 16);
    assert_int_equal(t->flash.dims, 8);
  } else {
    assert_int_equal(t->vregs, 16);
    assert_tile(&t->mk[0], 6, 2, 2 * width);
    assert_tile(&t->mk[1], 6, 2, width);
    assert_int_equal(t->flash.keys, 8);
    assert_int_equal(t->flash.dims, 4);
  }
}

static int has_feature(const char *features, const char *name) {
  char want[64];
  snprintf(want, sizeof want, "+%s", name);
  for (const char *p = features; (p = strstr(p, want)); p += strlen(want))
    if ((p == features || p[-1] == ',') && (p[strlen(want)] == ',' || !p[strlen(want)])) return 1;
  return 0;
}

static void test_host(void **state) {
  (void)state;
  tfx_cg_target t = resolve(NULL, NULL);
  char *feat = LLVMGetHostCPUFeatures();
  int avx512 = has_feature(feat, "avx512f"), avx = has_feature(feat, "avx"), avx2 = has_feature(feat, "avx2");
  assert_string_equal(t.features, feat);
  assert_x86_shape(&t, avx512 ? 16 : avx ? 8 : 4);
  assert_int_equal(t.has_fma, has_feature(feat, "fma"));
  assert_int_equal(!!(t.i8dot & TFX_CG_I8_VNNI512), avx512 && has_feature(feat, "avx512vnni"));
  assert_int_equal(!!(t.i8dot & TFX_CG_I8_AVXVNNI), avx2 && has_feature(feat, "avxvnni"));
  assert_int_equal(!!(t.i8dot & TFX_CG_I8_MADDUBS), avx512 ? has_feature(feat, "avx512bw")
                                                    : avx  ? avx2
                                                           : has_feature(feat, "ssse3"));
  assert_int_equal(t.has_bf16, avx512 && has_feature(feat, "avx512bf16"));
  assert_int_equal(t.i8dot & TFX_CG_I8_SDOT, 0);
  LLVMDisposeMessage(feat);
  tfx_cg_target_free(&t);
  /* the packed layout the driver hands to the passes */
  tfx_pack_layout lay = {0, 0};
  char err[256];
  assert_int_equal(tfx_backend_pack_layout(NULL, &lay, err, sizeof err), 0);
  assert_int_equal(lay.panel, 32);
  assert_int_equal(lay.kc, 1);
}

static void test_mcpu_levels(void **state) {
  (void)state;
  tfx_cg_target t = resolve("x86-64-v3", NULL);
  assert_x86_shape(&t, 8);
  assert_true(t.has_fma);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS); /* AVX2 vpmaddubsw, no VNNI */
  assert_false(t.has_bf16);
  tfx_cg_target_free(&t);

  t = resolve("x86-64-v2", NULL);
  assert_x86_shape(&t, 4);
  assert_false(t.has_fma);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS); /* SSSE3 pmaddubsw */
  assert_false(t.has_bf16);
  tfx_cg_target_free(&t);

  t = resolve("x86-64", NULL);
  assert_x86_shape(&t, 4);
  assert_false(t.has_fma);
  assert_int_equal(t.i8dot, 0); /* SSE2 only */
  tfx_cg_target_free(&t);

  t = resolve("x86-64-v4", NULL);
  assert_x86_shape(&t, 16);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS); /* AVX512BW, no VNNI */
  assert_false(t.has_bf16);
  tfx_cg_target_free(&t);

  t = resolve("cascadelake", NULL);
  assert_x86_shape(&t, 16);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS | TFX_CG_I8_VNNI512);
  assert_false(t.has_bf16);
  tfx_cg_target_free(&t);

  t = resolve("sapphirerapids", NULL);
  assert_x86_shape(&t, 16);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS | TFX_CG_I8_VNNI512 | TFX_CG_I8_AVXVNNI);
  assert_true(t.has_bf16);
  tfx_cg_target_free(&t);

  t = resolve("alderlake", NULL);
  assert_x86_shape(&t, 8);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS | TFX_CG_I8_AVXVNNI);
  assert_false(t.has_bf16);
  tfx_cg_target_free(&t);

  t = resolve("bdver2", NULL); /* AVX and FMA3 without AVX2: 8 floats, no 256-bit maddubs */
  assert_x86_shape(&t, 8);
  assert_true(t.has_fma);
  assert_int_equal(t.i8dot, 0);
  tfx_cg_target_free(&t);

  /* the feature string given with the cpu wins over what the name implies */
  t = resolve("x86-64-v4", "-avx512f");
  assert_x86_shape(&t, 8);
  tfx_cg_target_free(&t);
  t = resolve("x86-64-v4", "+avx512vnni,+avx512bf16");
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS | TFX_CG_I8_VNNI512);
  assert_true(t.has_bf16);
  tfx_cg_target_free(&t);
  t = resolve("x86-64-v2", "+avx512vnni"); /* VNNI needs AVX-512 */
  assert_x86_shape(&t, 4);
  assert_int_equal(t.i8dot, TFX_CG_I8_MADDUBS);
  tfx_cg_target_free(&t);

  /* every level packs weights the same way */
  static const char *cpus[] = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"};
  for (int i = 0; i < 4; i++) {
    tfx_target_options o = {.opt_level = 2, .cpu = cpus[i]};
    tfx_pack_layout lay = {0, 0};
    char err[256];
    assert_int_equal(tfx_backend_pack_layout(&o, &lay, err, sizeof err), 0);
    assert_int_equal(lay.panel, 32);
    assert_int_equal(lay.kc, 1);
  }
  /* --stats prints the description */
  char *out = NULL, *serr = NULL;
  char model[4096];
  snprintf(model, sizeof model, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  assert_int_equal(
      tfx_test_run((char *[]){TFXC_PATH, model, "--weights", "random", "--mcpu", "x86-64-v3", "--stats", NULL}, &out,
                   &serr),
      0);
  assert_non_null(strstr(out, "  target:            x86_64"));
  assert_non_null(strstr(out, " x86-64-v3: 8 floats x 16 vector registers, fma yes, int8 dot maddubs, bf16 no; "
                              "micro-kernel 6x16 (glu 6x8), flash 8 rows x 8 keys, panel 32x1, ELF machine 62\n"));
  free(out);
  free(serr);
  tfx_target_options bad = {.opt_level = 2, .cpu = "bogus"};
  tfx_pack_layout lay;
  char err[512];
  assert_int_equal(tfx_backend_pack_layout(&bad, &lay, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown CPU 'bogus'"));
}

/* The ELF machine comes from LLVM's object for the triple. */
static void test_object_machine(void **state) {
  (void)state;
  char err[512] = "";
  tfx_cg_target t;
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
  assert_int_equal(
      tfx_cg_target_describe(&t, "aarch64-unknown-linux-gnu", "generic", "+neon,+dotprod,+bf16", 2, err, sizeof err),
      0);
  assert_string_equal(t.arch, "aarch64");
  assert_int_equal(t.elf.machine, EM_AARCH64);
  assert_int_equal(t.width, 4);
  assert_int_equal(t.vregs, 32);
  assert_true(t.has_fma);
  assert_int_equal(t.i8dot, TFX_CG_I8_SDOT);
  assert_true(t.has_bf16);
  assert_tile(&t.mk[0], 12, 4, 8);
  assert_int_equal(t.flash.keys, 16);
  assert_int_equal(t.pack.panel, 32);

  /* the weights object is written for that machine */
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char path[4096];
  snprintf(path, sizeof path, "%s/w.o", dir);
  static const uint8_t data[100] = {1, 2, 3};
  assert_int_equal(tfx_cg_write_blob_object(path, &t.elf, "blob", data, sizeof data, err, sizeof err), 0);
  size_t size = 0;
  char *obj = tfx_test_read_file(path, &size);
  assert_non_null(obj);
  Elf64_Ehdr eh;
  assert_true(size > sizeof eh);
  memcpy(&eh, obj, sizeof eh);
  assert_int_equal(eh.e_machine, EM_AARCH64);
  assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
  free(obj);
  tfx_cg_target_free(&t);

  /* and for the host's */
  t = resolve(NULL, NULL);
  assert_int_equal(tfx_cg_write_blob_object(path, &t.elf, "blob", data, sizeof data, err, sizeof err), 0);
  obj = tfx_test_read_file(path, &size);
  assert_non_null(obj);
  memcpy(&eh, obj, sizeof eh);
  assert_int_equal(eh.e_machine, EM_X86_64);
  free(obj);
  tfx_cg_target_free(&t);

  /* Mach-O: described, but no ELF identity, so no weights object */
  assert_int_equal(tfx_cg_target_describe(&t, "x86_64-apple-darwin", "x86-64-v3", "", 2, err, sizeof err), 0);
  assert_int_equal(t.elf.machine, EM_NONE);
  assert_int_equal(tfx_cg_write_blob_object(path, &t.elf, "blob", data, sizeof data, err, sizeof err), -1);
  assert_non_null(strstr(err, "not 64-bit little-endian ELF"));
  tfx_cg_target_free(&t);
  unlink(path);
  tfx_test_rmdir(dir);
  free(dir);

  /* triples LLVM does not know, and LLVM targets tfxc does not describe */
  assert_int_equal(tfx_cg_target_describe(&t, "bogus-unknown-none", "generic", "", 2, err, sizeof err), -1);
  assert_non_null(strstr(err, "LLVM has no target for 'bogus-unknown-none'"));
  assert_int_equal(tfx_cg_target_describe(&t, "i686-pc-linux-gnu", "generic", "", 2, err, sizeof err), -1);
  assert_non_null(strstr(err, "no target description for 'i686-pc-linux-gnu'"));
  assert_int_equal(tfx_cg_target_describe(&t, "x86_64-pc-linux-gnu", "generic", "", 9, err, sizeof err), -1);
  assert_non_null(strstr(err, "optimization level 9"));
}

/* The packed layout flows from the passes' options into PACK nodes; the
 * interpreter reads any layout; the backend takes only its target's. */
static void test_layout_is_data(void **state) {
  (void)state;
  static const char *src = "model lay\n"
                           "const max_seq = 8\n"
                           "param w1 : f32[40, 24]\n"
                           "param w2 : f32[24, 40]\n"
                           "forward(x : f32[T, 24]) -> f32[T, 24] {\n"
                           "  return linear(gelu(linear(x, w1)), w2)\n"
                           "}\n";
  float in[3 * 24], ref[3 * 24], out[3 * 24];
  for (int i = 0; i < 3 * 24; i++) in[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
  for (int k = 0; k < 2; k++) {
    tfx_frontend_options fo = {.weights = "random:5"};
    tfx_graph *g = NULL;
    tfx_weights w;
    assert_int_equal(tfx_frontend_compile("lay.tfx", src, &fo, &g, &w), 0);
    tfx_pass_options po;
    tfx_pass_options_init(&po, k ? 2 : 0);
    po.weights = &w.data;
    po.weights_size = &w.size;
    if (k) po.pack = (tfx_pack_layout){.panel = 16, .kc = 4};
    char err[512] = "";
    assert_int_equal(tfx_run_passes(g, &po, err, sizeof err), 0);
    int packed = 0;
    for (int i = 0; i < g->n_nodes; i++)
      if (g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].fx.panel) {
        assert_int_equal(g->nodes[i].fx.panel, 16);
        assert_int_equal(g->nodes[i].fx.kc, 4);
        packed++;
      }
    assert_int_equal(packed, k ? 2 : 0);
    tfx_interp *it = tfx_interp_new(g, w.data);
    assert_non_null(it);
    assert_int_equal(tfx_interp_forward(it, in, 3, k ? out : ref, err, sizeof err), 0);
    tfx_interp_free(it);
    if (k) {
      assert_true(tfx_test_max_abs_diff(ref, out, 3 * 24) < 1e-4);
      /* the host's kernels read panels of 32 x 1: a clear error, not wrong numbers */
      tfx_target_options o = {.opt_level = 2};
      tfx_jit_module *jm = NULL;
      const tfx_model_desc *d = NULL;
      assert_int_equal(tfx_backend_jit(g, &o, &jm, &d, err, sizeof err), -1);
      assert_non_null(strstr(err, "is not the target's (panel32x1"));
      assert_null(jm);
    }
    tfx_graph_free(g);
    tfx_weights_free(&w);
  }
  { /* a layout without rows is refused */
    tfx_pass_options po;
    tfx_pass_options_init(&po, 2);
    po.pack.panel = 0;
    tfx_graph *g = NULL;
    tfx_weights w;
    tfx_frontend_options fo = {.weights = "random:5"};
    assert_int_equal(tfx_frontend_compile("lay.tfx", src, &fo, &g, &w), 0);
    char err[512] = "";
    assert_int_equal(tfx_run_passes(g, &po, err, sizeof err), -1);
    assert_non_null(strstr(err, "packed layout"));
    tfx_graph_free(g);
    tfx_weights_free(&w);
  }
  /* the driver asks the target: an unknown cpu fails the build */
  tfx_target_options bad = {.opt_level = 2, .cpu = "bogus"};
  FILE *diag = tmpfile();
  tfx_build_options bo = {.weights = "random:5", .opt_level = 2, .diag = diag, .target = &bad};
  tfx_build b;
  assert_int_not_equal(tfx_build_source("lay.tfx", src, &bo, &b), 0);
  fclose(diag);
}

/* The unoptimized LLVM IR of g's module built for description t. */
static char *module_ir(const tfx_graph *g, const tfx_cg_target *t) {
  char err[512] = "";
  LLVMTargetMachineRef tm = tfx_cg_target_machine(t, 0, 1, err, sizeof err);
  assert_non_null(tm);
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = NULL;
  if (tfx_cg_build_module(g, t, ctx, tm, NULL, &mod, err, sizeof err)) fail_msg("build_module: %s", err);
  char *ir = LLVMPrintModuleToString(mod), *copy = strdup(ir);
  LLVMDisposeMessage(ir);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return copy;
}

/* The kernels take their tiles from the description, not from the width:
 * changing only the description's micro-kernel tile or flash key group
 * changes the module. */
static void test_kernels_read_description(void **state) {
  (void)state;
  static const char *src = "model kd\n"
                           "const max_seq = 16\n"
                           "param wq : f32[32, 32]\nparam wk : f32[32, 32]\nparam wv : f32[32, 32]\n"
                           "param wo : f32[32, 32]\nparam w1 : f32[64, 32]\n"
                           "forward(x : f32[T, 32]) -> f32[T, 64] {\n"
                           "  h = x + attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n"
                           "  return linear(h, w1)\n"
                           "}\n";
  tfx_build_options bo = {.weights = "random:1", .opt_level = 2};
  tfx_build b;
  assert_int_equal(tfx_build_source("kd.tfx", src, &bo, &b), 0);
  tfx_cg_target t = resolve("x86-64-v3", NULL);
  char *base = module_ir(b.graph, &t);
  assert_non_null(strstr(base, "flash_attention"));
  tfx_cg_target_free(&t);
  t = resolve("x86-64-v3", NULL);
  t.mk[0] = (tfx_cg_tile){3, 1, 8}; /* narrower, shorter tiles */
  char *mk = module_ir(b.graph, &t);
  assert_true(strcmp(base, mk) != 0);
  tfx_cg_target_free(&t);
  t = resolve("x86-64-v3", NULL);
  t.flash.keys = 4;
  char *fa = module_ir(b.graph, &t);
  assert_true(strcmp(base, fa) != 0);
  tfx_cg_target_free(&t);
  t = resolve("x86-64-v3", NULL); /* the same description gives the same module */
  char *again = module_ir(b.graph, &t);
  assert_true(strcmp(base, again) == 0);
  tfx_cg_target_free(&t);
  free(base);
  free(mk);
  free(fa);
  free(again);
  tfx_build_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host),
      cmocka_unit_test(test_mcpu_levels),
      cmocka_unit_test(test_object_machine),
      cmocka_unit_test(test_layout_is_data),
      cmocka_unit_test(test_kernels_read_description),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
