/* tests/test_weight_pages.c — where the runtime puts a model's weights
 * (runtime/weights_pages.c): a model .so's blob copied into memory advised
 * to 2 MiB pages (and, where the system has transparent huge pages, backed
 * by them: /proc/self/smaps), unless TFX_OPEN_MAP_WEIGHTS or
 * TFX_HUGE_PAGES=0 keeps it in the file's mapping; a blob under the 16 MiB
 * threshold left alone unless TFX_HUGE_PAGES=1; a descriptor in a loaded
 * object copied as an opened one; a JIT model's blob collapsed where it is
 * (MADV_COLLAPSE). Every placement computes the logits of the mapped
 * weights bit for bit, and closing the model unmaps its copy. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "support/testutil.h"
#include "tfx/jit.h"
#include "tfx/tfx.h"

/* 1024 x 1024 + 1024 x 256 f32: ≈ 5 MiB of weights, whole 2 MiB pages inside */
static const char model_src[] = "model pages\n"
                                "const dim = 256, vocab = 1024, hidden = 1024, max_seq = 16\n"
                                "param emb : f32[vocab, dim]\n"
                                "param norm : f32[dim]\n"
                                "param w1 : f32[hidden, dim]\n"
                                "param w2 : f32[dim, hidden]\n"
                                "param w3 : f32[hidden, hidden]\n"
                                "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                                "  x = embedding(emb, tokens)\n"
                                "  u = silu(linear(rmsnorm(x, norm), w1))\n"
                                "  h = x + linear(linear(u, w3), w2)\n"
                                "  return linear(rmsnorm(h, norm), emb)\n"
                                "}\n";

enum { VOCAB = 1024, NTOK = 3 };

static char *dir;
static char so_path[4300];

/* the system hands out transparent huge pages to advised memory */
static int system_has_huge_pages(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return 0;
  char buf[128] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n > 0 && !strstr(buf, "[never]");
}

/* the kernel collapses anonymous memory into huge pages on request (6.1+) */
static int kernel_collapses(void) {
  size_t len = (size_t)4 << 20;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  memset(p, 1, len);
  char *a = (char *)(((uintptr_t)p + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1));
  int ok = madvise(a, (size_t)2 << 20, 25 /* MADV_COLLAPSE */) == 0;
  munmap(p, len);
  return ok;
}

/* The line of /proc/self/smaps named key (e.g. "AnonHugePages:") of the
 * mapping holding p, in kB; -1 when no mapping holds p. */
static long smaps_kb(const void *p, const char *key) {
  FILE *f = fopen("/proc/self/smaps", "r");
  assert_non_null(f);
  char line[512];
  int in = 0;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
      if (in) kb = 0;
    } else if (in && !strncmp(line, key, strlen(key))) {
      kb = strtol(line + strlen(key), NULL, 10);
    }
  }
  fclose(f);
  return kb;
}

static int weights_pages_of(const tfx_model *m) {
  struct tfx_model_info info = {.struct_size = sizeof info};
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.reserved4, 0);
  return info.weights_pages;
}

/* the logits of a prefill of NTOK tokens and one decode step */
static void logits_of(const tfx_model *m, float *out) {
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), TFX_OK);
  assert_int_equal(tfx_forward_ex(s, (const int32_t[]){5, 900, 17}, NTOK, out, 0), TFX_OK);
  assert_int_equal(tfx_forward(s, (const int32_t[]){333}, 1, out + NTOK * VOCAB), TFX_OK);
  tfx_session_free(s);
}

static float mapped_logits[(NTOK + 1) * VOCAB];

static int setup(void **state) {
  (void)state;
  dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char src[4300];
  snprintf(src, sizeof src, "%s/pages.tfx", dir);
  FILE *f = fopen(src, "w");
  assert_non_null(f);
  fputs(model_src, f);
  fclose(f);
  snprintf(so_path, sizeof so_path, "%s/pages.so", dir);
  char *err = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, src, "--weights", "random:11", "-o", so_path, NULL}, NULL, &err);
  if (rc != 0) fail_msg("compiling the test model failed: %s", err ? err : "?");
  free(err);
  /* the reference: the weights in the library's own mapping */
  unsetenv("TFX_HUGE_PAGES");
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_open_flags(so_path, TFX_OPEN_MAP_WEIGHTS, &m, NULL, 0), TFX_OK);
  assert_int_equal(weights_pages_of(m), TFX_WEIGHTS_IN_PLACE);
  Dl_info where;
  assert_true(dladdr(tfx_model_descriptor(m)->weights, &where) != 0); /* inside the library */
  assert_true(tfx_model_descriptor(m)->weights_bytes > ((uint64_t)4 << 20));
  logits_of(m, mapped_logits);
  tfx_model_close(m);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unsetenv("TFX_HUGE_PAGES");
  tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

/* TFX_HUGE_PAGES=1: the opened model's weights are a copy in 2 MiB pages,
 * outside the library, read-only, the same logits; closing unmaps it */
static void test_open_copies(void **state) {
  (void)state;
  setenv("TFX_HUGE_PAGES", "1", 1);
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_open_flags(so_path, 0, &m, NULL, 0), TFX_OK);
  const void *w = tfx_model_descriptor(m)->weights;
  if (!system_has_huge_pages()) {
    assert_int_equal(weights_pages_of(m), TFX_WEIGHTS_IN_PLACE);
    tfx_model_close(m);
    return;
  }
  assert_int_equal(weights_pages_of(m), TFX_WEIGHTS_HUGE_COPY);
  assert_int_equal((uintptr_t)w % ((uintptr_t)2 << 20), 0);
  Dl_info where;
  assert_int_equal(dladdr(w, &where), 0);
  /* the kernel backs it with huge pages (the copy spans at least two) */
  assert_true(smaps_kb(w, "AnonHugePages:") >= 2048);
  float got[(NTOK + 1) * VOCAB];
  logits_of(m, got);
  assert_memory_equal(got, mapped_logits, sizeof got);
  tfx_model_close(m);
  assert_int_equal(smaps_kb(w, "AnonHugePages:"), -1); /* unmapped */
}

/* TFX_HUGE_PAGES=0, and the automatic choice under its 16 MiB threshold,
 * leave the weights in the library */
static void test_left_in_place(void **state) {
  (void)state;
  const char *settings[2] = {"0", NULL};
  for (int i = 0; i < 2; i++) {
    if (settings[i])
      setenv("TFX_HUGE_PAGES", settings[i], 1);
    else
      unsetenv("TFX_HUGE_PAGES");
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_open_flags(so_path, 0, &m, NULL, 0), TFX_OK);
    assert_int_equal(weights_pages_of(m), TFX_WEIGHTS_IN_PLACE);
    Dl_info where;
    assert_true(dladdr(tfx_model_descriptor(m)->weights, &where) != 0);
    tfx_model_close(m);
  }
  /* the flag wins over TFX_HUGE_PAGES=1 */
  setenv("TFX_HUGE_PAGES", "1", 1);
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_open_flags(so_path, TFX_OPEN_MAP_WEIGHTS | TFX_OPEN_VERIFY, &m, NULL, 0), TFX_OK);
  assert_int_equal(weights_pages_of(m), TFX_WEIGHTS_IN_PLACE);
  tfx_model_close(m);
}

/* a descriptor in a loaded object (a program linked with model.o, here a
 * library opened by hand) is copied as an opened model's */
static void test_linked_descriptor_copies(void **state) {
  (void)state;
  setenv("TFX_HUGE_PAGES", "1", 1);
  void *h = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(h);
  const tfx_model_desc *d = dlsym(h, TFX_DESC_SYMBOL);
  assert_non_null(d);
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(d, NULL, NULL, NULL, &m), TFX_OK);
  int want = system_has_huge_pages() ? TFX_WEIGHTS_HUGE_COPY : TFX_WEIGHTS_IN_PLACE;
  assert_int_equal(weights_pages_of(m), want);
  assert_true(want == TFX_WEIGHTS_IN_PLACE || tfx_model_descriptor(m)->weights != d->weights);
  float got[(NTOK + 1) * VOCAB];
  logits_of(m, got);
  assert_memory_equal(got, mapped_logits, sizeof got);
  tfx_model_close(m);
  dlclose(h);
}

/* a JIT model's blob (the compiler's memory) is collapsed where it is */
static void test_jit_collapses_in_place(void **state) {
  (void)state;
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  o.weights = "random:11";
  float ref[(NTOK + 1) * VOCAB], got[(NTOK + 1) * VOCAB];
  setenv("TFX_HUGE_PAGES", "0", 1);
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("pages.tfx", model_src, &o, &m), TFX_OK);
  assert_int_equal(weights_pages_of(m), TFX_WEIGHTS_IN_PLACE);
  logits_of(m, ref);
  tfx_model_close(m);
  setenv("TFX_HUGE_PAGES", "1", 1);
  assert_int_equal(tfx_jit_compile_source("pages.tfx", model_src, &o, &m), TFX_OK);
  int want = system_has_huge_pages() && kernel_collapses() ? TFX_WEIGHTS_HUGE_IN_PLACE : TFX_WEIGHTS_IN_PLACE;
  assert_int_equal(weights_pages_of(m), want);
  const uint8_t *w = tfx_model_descriptor(m)->weights;
  if (want == TFX_WEIGHTS_HUGE_IN_PLACE) {
    const uint8_t *inner = (const uint8_t *)(((uintptr_t)w + ((uintptr_t)2 << 20) - 1) & ~(((uintptr_t)2 << 20) - 1));
    assert_true(smaps_kb(inner, "AnonHugePages:") >= 2048);
  }
  logits_of(m, got);
  assert_memory_equal(got, ref, sizeof got);
  tfx_model_close(m);
  unsetenv("TFX_HUGE_PAGES");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_copies),
      cmocka_unit_test(test_left_in_place),
      cmocka_unit_test(test_linked_descriptor_copies),
      cmocka_unit_test(test_jit_collapses_in_place),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
