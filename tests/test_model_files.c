/* tests/test_model_files.c — hostile model files (issue #17, items 3, 4 and
 * 14): a compiled model .so truncated at every page and at the sizes of the
 * issue, its ELF headers and its descriptor patched, a weight byte flipped
 * (TFX_OPEN_VERIFY and `tfxc verify`), the seal tfxc appends (any change
 * outside the weights refused before the ELF checks; each damaged file is
 * also tried sealed anew, so that the ELF and descriptor checks behind the
 * seal are tested too), FIFOs, directories and devices given
 * as a model or a source, and a model name without '/' that must not be
 * looked up on LD_LIBRARY_PATH. Every open of a damaged file runs in a child
 * process (with an alarm), so a crash or a hang fails the test instead of
 * killing it; the expected offsets come from the test's own reading of the
 * ELF file (elf.h), not from the runtime. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/testutil.h"
#include "tfx/checksum.h"
#include "tfx/seal.h"
#include "tfx/tfx.h"

/* big enough that the weights (≈200 KB) span many pages of their segment */
static const char model_src[] = "model files_alpha\n"
                                "const dim = 64, vocab = 512, max_seq = 16, hidden = 128\n"
                                "param emb : f32[vocab, dim]\n"
                                "param norm : f32[dim]\n"
                                "param w1 : f32[hidden, dim]\n"
                                "param w2 : f32[dim, hidden]\n"
                                "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                                "  x = embedding(emb, tokens)\n"
                                "  h = x + linear(silu(linear(rmsnorm(x, norm), w1)), w2)\n"
                                "  return linear(rmsnorm(h, norm), emb)\n"
                                "}\n";

static char *dir;
static char so_path[4300];
static uint8_t *so_data;
static size_t so_size;
static uint64_t load_end;    /* the end of the last PT_LOAD's bytes in the file */
static uint64_t desc_off;    /* the descriptor's offset in the file */
static uint64_t weights_off; /* the weights blob's offset in the file */
static uint64_t weights_bytes;
static uint64_t elf_size;     /* so_size without the seal */
static float ref_logits[512]; /* the good model's last row for tokens {1, 7} */

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* The first n bytes of an ELF file (n <= elf_size), sealed as tfxc seals
 * (the weights skipped when they are all there). */
static void write_sealed(const char *path, const void *data, size_t n) {
  write_file(path, data, n);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  int whole = weights_off + weights_bytes <= n;
  assert_int_equal(tfx_seal_append(fd, n, whole ? weights_off : 0, whole ? weights_bytes : 0), 0);
  close(fd);
}

/* vaddr -> file offset through the PT_LOAD headers (the test's own reading) */
static uint64_t file_offset_of(uint64_t vaddr) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)so_data;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(so_data + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr && vaddr < ph[i].p_vaddr + ph[i].p_filesz)
      return ph[i].p_offset + (vaddr - ph[i].p_vaddr);
  fail_msg("address 0x%llx is not file-backed", (unsigned long long)vaddr);
  return 0;
}

static int forward_logits(tfx_model *m, float *out) {
  tfx_session *s = NULL;
  int rc = tfx_session_create(m, &(tfx_session_options){.threads = 1}, &s);
  if (rc == TFX_OK) rc = tfx_forward(s, (const int32_t[]){1, 7}, 2, out);
  tfx_session_free(s);
  return rc;
}

static int setup(void **state) {
  (void)state;
  dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char src[4300];
  path_in(src, sizeof src, "alpha.tfx");
  write_file(src, model_src, strlen(model_src));
  path_in(so_path, sizeof so_path, "alpha.so");
  char *err = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, src, "--weights", "random:7", "-o", so_path, NULL}, NULL, &err);
  if (rc != 0) fail_msg("compiling the test model failed: %s", err ? err : "?");
  free(err);
  so_data = (uint8_t *)tfx_test_read_file(so_path, &so_size);
  assert_non_null(so_data);
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)so_data;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(so_data + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > load_end)
      load_end = ph[i].p_offset + ph[i].p_filesz;
  /* where the descriptor and the weights are in the file: from the loaded
   * library's addresses minus its base */
  void *h = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(h);
  const tfx_model_desc *d = dlsym(h, TFX_DESC_SYMBOL);
  assert_non_null(d);
  struct link_map *lm = NULL;
  assert_int_equal(dlinfo(h, RTLD_DI_LINKMAP, &lm), 0);
  desc_off = file_offset_of((uint64_t)((uintptr_t)d - lm->l_addr));
  weights_off = file_offset_of((uint64_t)((uintptr_t)d->weights - lm->l_addr));
  weights_bytes = d->weights_bytes;
  assert_true(weights_bytes > 150000);
  assert_memory_equal(so_data + desc_off, d, 8); /* magic and ABI version */
  dlclose(h);
  /* tfxc sealed it, the weights skipped */
  assert_true(so_size > TFX_SEAL_BYTES);
  elf_size = so_size - TFX_SEAL_BYTES;
  assert_memory_equal(so_data + elf_size, TFX_SEAL_MAGIC, 8);
  assert_true(tfx_ck_load64(so_data + elf_size + 8) == weights_off);
  assert_true(tfx_ck_load64(so_data + elf_size + 16) == weights_bytes);
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_open_ex(so_path, &m, NULL, 0), TFX_OK);
  assert_int_equal(forward_logits(m, ref_logits), TFX_OK);
  tfx_model_close(m);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(so_data);
  tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

/* ---- opening in a child ---- */

typedef struct child_result {
  int signaled;   /* the child died of a signal (a crash, or the alarm: a hang) */
  int rc;         /* tfx_model_open_flags's status */
  int forward_ok; /* opened, and the logits equal the good model's */
  char detail[512];
} child_result;

static child_result open_in_child(const char *path, unsigned flags) {
  child_result r;
  memset(&r, 0, sizeof r);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    alarm(30);
    child_result c;
    memset(&c, 0, sizeof c);
    tfx_model *m = NULL;
    c.rc = tfx_model_open_flags(path, flags, &m, c.detail, sizeof c.detail);
    if (c.rc == TFX_OK) {
      float logits[512];
      c.forward_ok = forward_logits(m, logits) == TFX_OK && memcmp(logits, ref_logits, sizeof logits) == 0;
      tfx_model_close(m);
    }
    ssize_t w = write(fds[1], &c, sizeof c);
    _exit(w == (ssize_t)sizeof c ? 0 : 3);
  }
  close(fds[1]);
  ssize_t got = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status) || got != (ssize_t)sizeof r) {
    memset(&r, 0, sizeof r);
    r.signaled = WIFSIGNALED(status) ? WTERMSIG(status) : -1;
  }
  return r;
}

/* ---- the checksum itself ---- */

static void test_checksum64(void **state) {
  (void)state;
  uint8_t buf[1000];
  for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 37 + 11);
  uint64_t whole = tfx_checksum64(buf, sizeof buf);
  assert_true(whole != 0);
  assert_true(tfx_checksum64(NULL, 0) != 0);
  /* in pieces, as a writer streaming a blob would compute it */
  for (size_t a = 0; a <= 1000; a += 7)
    for (size_t b = a; b <= 1000; b += 131) {
      tfx_ck_state s;
      tfx_ck_init(&s);
      tfx_ck_update(&s, buf, a);
      tfx_ck_update(&s, buf + a, b - a);
      tfx_ck_update(&s, buf + b, 1000 - b);
      assert_true(tfx_ck_final(&s) == whole);
    }
  /* every single-bit flip and every truncation changes it */
  for (int i = 0; i < 1000 * 8; i++) {
    buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_true(tfx_checksum64(buf, sizeof buf) != whole);
    buf[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  for (size_t n = 0; n < 1000; n++) assert_true(tfx_checksum64(buf, n) != whole);
  /* zeros of different lengths differ (the length is hashed) */
  uint8_t z[64] = {0};
  for (size_t n = 1; n < 64; n++) assert_true(tfx_checksum64(z, n) != tfx_checksum64(z, n + 1));
}

/* ---- a good file ---- */

static void test_good_model(void **state) {
  (void)state;
  char detail[512];
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_open_flags(so_path, TFX_OPEN_VERIFY, &m, detail, sizeof detail), TFX_OK);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  assert_int_equal(d->abi_version, TFX_ABI_VERSION);
  assert_true(d->desc_checksum != 0);
  assert_int_equal(d->weights_bytes, weights_bytes);
  /* the recorded weights checksum is that of the file's bytes */
  assert_true(d->weights_checksum == tfx_checksum64(so_data + weights_off, weights_bytes));
  assert_true(d->desc_checksum == tfx_desc_checksum(d));
  tfx_model_close(m);
  /* unknown flags */
  assert_int_equal(tfx_model_open_flags(so_path, 4, &m, detail, sizeof detail), TFX_ERR_INVALID_ARGUMENT);
  assert_null(m);
  assert_non_null(strstr(detail, "unknown flags"));
  char *out = NULL, *err = NULL;
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "verify", so_path, NULL}, &out, &err), 0);
  assert_non_null(strstr(out, ": ok (model 'files_alpha'"));
  free(out);
  free(err);
}

/* ---- truncated files ---- */

/* A cut loses the seal; the same cut sealed anew meets the ELF checks. */
static void check_cut(size_t cut) {
  char path[4300];
  path_in(path, sizeof path, "cut.so");
  write_file(path, so_data, cut);
  child_result r = open_in_child(path, 0);
  if (r.signaled) fail_msg("a file cut to %zu of %zu bytes killed the opener (signal %d)", cut, so_size, r.signaled);
  if (r.rc != TFX_ERR_NOT_A_MODEL || !strstr(r.detail, "seal"))
    fail_msg("cut to %zu bytes of %zu: rc %d, '%s' (expected the seal's refusal)", cut, so_size, r.rc, r.detail);
  if (cut > elf_size) cut = elf_size;
  write_sealed(path, so_data, cut);
  r = open_in_child(path, 0);
  if (r.signaled)
    fail_msg("a file cut to %zu of %zu bytes and sealed killed the opener (signal %d)", cut, so_size, r.signaled);
  if (cut < load_end) {
    if (r.rc != TFX_ERR_NOT_A_MODEL || !strstr(r.detail, "truncated or corrupted"))
      fail_msg("cut to %zu bytes (segments end at %llu): rc %d, '%s'", cut, (unsigned long long)load_end, r.rc,
               r.detail);
  } else if (r.rc == TFX_OK) {
    /* only what the loader never reads is missing: the model is whole */
    if (!r.forward_ok) fail_msg("cut to %zu bytes: opened but computes other logits", cut);
  } else if (r.rc != TFX_ERR_NOT_A_MODEL) {
    fail_msg("cut to %zu bytes: rc %d, '%s'", cut, r.rc, r.detail);
  }
}

static void test_truncated(void **state) {
  (void)state;
  assert_true(load_end > 0 && load_end <= so_size);
  static const size_t small[] = {0, 1, 16, 63, 64, 100, 500, 4096, 70000, 120000};
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
    if (small[i] < so_size) check_cut(small[i]);
  static const size_t short_by[] = {200000, 120000, 70000, 4096, 100, 1};
  for (size_t i = 0; i < sizeof short_by / sizeof short_by[0]; i++)
    if (short_by[i] < so_size) check_cut(so_size - short_by[i]);
  for (size_t cut = 4096; cut < so_size; cut += 4096) check_cut(cut);
  check_cut((size_t)load_end - 1);
  check_cut((size_t)load_end);

  /* the command line says so and exits 1 */
  char path[4300];
  path_in(path, sizeof path, "cut.so");
  write_file(path, so_data, so_size - 70000);
  char *err = NULL;
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "run", path, "-n", "2", NULL}, NULL, &err), 1);
  assert_non_null(strstr(err, "is not a loadable model (truncated or corrupted?)"));
  free(err);
}

/* ---- patched files ---- */

typedef struct patch {
  const char *what;
  uint64_t offset; /* in the file */
  uint64_t value;
  int width; /* bytes written, little-endian */
  int rc;
  const char *detail;
} patch;

/* The patch under the old seal (outside the weights: refused by the seal),
 * then sealed anew (the expected status). */
static void apply_and_check(const patch *p, unsigned flags) {
  uint8_t *d = malloc(so_size);
  assert_non_null(d);
  memcpy(d, so_data, so_size);
  for (int i = 0; i < p->width; i++) d[p->offset + (uint64_t)i] = (uint8_t)(p->value >> (8 * i));
  char path[4300];
  path_in(path, sizeof path, "patched.so");
  int in_weights = p->offset >= weights_off && p->offset + (uint64_t)p->width <= weights_off + weights_bytes;
  child_result r;
  if (!in_weights && memcmp(d, so_data, so_size) != 0) {
    write_file(path, d, so_size);
    r = open_in_child(path, flags);
    if (r.signaled) fail_msg("%s (unsealed): killed the opener (signal %d)", p->what, r.signaled);
    if (r.rc != TFX_ERR_NOT_A_MODEL || !strstr(r.detail, "differ from its seal"))
      fail_msg("%s (unsealed): rc %d '%s', expected the seal's refusal", p->what, r.rc, r.detail);
  }
  write_sealed(path, d, elf_size);
  free(d);
  r = open_in_child(path, flags);
  if (r.signaled) fail_msg("%s: killed the opener (signal %d)", p->what, r.signaled);
  if (r.rc != p->rc || !strstr(r.detail, p->detail))
    fail_msg("%s: rc %d '%s', expected %d '%s'", p->what, r.rc, r.detail, p->rc, p->detail);
}

static uint64_t read_u64(uint64_t off) {
  uint64_t v;
  memcpy(&v, so_data + off, 8);
  return v;
}

static void test_patched_headers(void **state) {
  (void)state;
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)so_data;
  const uint64_t ph = eh->e_phoff;
  int last_load = -1, first_load = -1, dyn = -1, relro = -1;
  const Elf64_Phdr *p = (const Elf64_Phdr *)(so_data + ph);
  for (int i = 0; i < eh->e_phnum; i++) {
    if (p[i].p_type == PT_LOAD && first_load < 0) first_load = i;
    if (p[i].p_type == PT_LOAD) last_load = i;
    if (p[i].p_type == PT_DYNAMIC) dyn = i;
    if (p[i].p_type == PT_GNU_RELRO) relro = i;
  }
  assert_true(first_load >= 0 && last_load > first_load && dyn >= 0);
  const uint64_t last = ph + (uint64_t)last_load * sizeof(Elf64_Phdr);
  const uint64_t dynh = ph + (uint64_t)dyn * sizeof(Elf64_Phdr);
  /* the model's link has -z relro (ld's default); without it there is nothing to patch */
  const uint64_t relroh = ph + (uint64_t)(relro >= 0 ? relro : dyn) * sizeof(Elf64_Phdr);
  assert_true(relro >= 0);
  const int E = TFX_ERR_NOT_A_MODEL;
  const patch cases[] = {
      {"ELF magic", 1, 'X', 1, E, "not an ELF file"},
      {"32-bit class", EI_CLASS, ELFCLASS32, 1, E, "not a 64-bit ELF file"},
      {"big-endian", EI_DATA, ELFDATA2MSB, 1, E, "not a little-endian"},
      {"an executable", offsetof(Elf64_Ehdr, e_type), ET_EXEC, 2, E, "not a shared library"},
      {"another machine", offsetof(Elf64_Ehdr, e_machine), EM_RISCV, 2, E, "built for another machine"},
      {"program headers beyond the file", offsetof(Elf64_Ehdr, e_phoff), so_size - 8, 8, E, "the program headers (at"},
      {"no program headers", offsetof(Elf64_Ehdr, e_phnum), 0, 2, E, "0 program headers"},
      {"phentsize", offsetof(Elf64_Ehdr, e_phentsize), 32, 2, E, "program header size 32"},
      /* the fuzz_model finding: glibc's loader crashed on an unreadable first segment */
      {"an unreadable first segment", ph + (uint64_t)first_load * sizeof(Elf64_Phdr) + offsetof(Elf64_Phdr, p_flags),
       0x88, 4, E, "has the permissions 0x88"},
      {"unknown segment permission bits", last + offsetof(Elf64_Phdr, p_flags), PF_R | PF_W | 0x100, 4, E,
       "has the permissions 0x106"},
      {"a segment beyond the file", last + offsetof(Elf64_Phdr, p_filesz),
       read_u64(last + offsetof(Elf64_Phdr, p_filesz)) + so_size, 8, E, "ends beyond the file's"},
      {"a segment's offset beyond the file", last + offsetof(Elf64_Phdr, p_offset), so_size + 4096 * 16, 8, E,
       "ends beyond the file's"},
      {"a misaligned segment", last + offsetof(Elf64_Phdr, p_offset),
       read_u64(last + offsetof(Elf64_Phdr, p_offset)) - 8, 8, E, "is not aligned"},
      {"a segment moved in the file", last + offsetof(Elf64_Phdr, p_offset),
       read_u64(last + offsetof(Elf64_Phdr, p_offset)) - 4096, 8, E, "truncated or corrupted"},
      {"the dynamic section moved", dynh + offsetof(Elf64_Phdr, p_vaddr),
       read_u64(dynh + offsetof(Elf64_Phdr, p_vaddr)) + 0x10000000, 8, E, "is not inside a loadable segment"},
      {"no dynamic section", dynh + offsetof(Elf64_Phdr, p_type), PT_NOTE, 4, E, "truncated or corrupted"},
      /* read-only after relocation: .data and .bss must stay writable */
      {"RELRO over .data", relroh + offsetof(Elf64_Phdr, p_memsz),
       read_u64(relroh + offsetof(Elf64_Phdr, p_memsz)) + 4096, 8, E, "truncated or corrupted"},
      {"RELRO past its segment", relroh + offsetof(Elf64_Phdr, p_memsz), 1 << 24, 8, E,
       "the read-only-after-relocation range runs past its segment"},
      {"section headers beyond the file", offsetof(Elf64_Ehdr, e_shoff), so_size, 8, E,
       "the section headers end beyond the file"},
      /* the descriptor (include/tfx/abi.h's layout, checked by test_backend_ops) */
      {"descriptor magic", desc_off + offsetof(tfx_model_desc, magic), 0x12345678, 4, E, "bad descriptor magic"},
      {"descriptor ABI", desc_off + offsetof(tfx_model_desc, abi_version), 2, 4, TFX_ERR_ABI_VERSION, "ABI version 2"},
      {"input width of a token model", desc_off + offsetof(tfx_model_desc, input_width), 5, 4, E, "input_width 5"},
      {"output width", desc_off + offsetof(tfx_model_desc, output_width), 0, 4, E, "output_width < 1"},
      {"max_seq", desc_off + offsetof(tfx_model_desc, max_seq), 0, 4, E, "max_seq < 1"},
      {"entries beyond max_seq", desc_off + offsetof(tfx_model_desc, max_seq), 4, 4, E, "more than max_seq = 4"},
      {"KV flag", desc_off + offsetof(tfx_model_desc, has_kv_cache), 2, 4, E, "has_kv_cache"},
      {"a huge arena", desc_off + offsetof(tfx_model_desc, arena_bytes), UINT64_MAX / 2, 8, E,
       "a memory size is too large"},
      {"weights beyond the library", desc_off + offsetof(tfx_model_desc, weights_bytes), weights_bytes + (1 << 24), 8,
       E, "the weights blob is not inside the library"},
      {"too many entries", desc_off + offsetof(tfx_model_desc, n_entries), 1000, 4, E, "1000 entry points"},
      {"entries past their table", desc_off + offsetof(tfx_model_desc, n_entries), 12, 4, E,
       "has a malformed model descriptor"},
      {"no entries", desc_off + offsetof(tfx_model_desc, n_entries), 0, 4, E, "no entry points"},
      {"threads", desc_off + offsetof(tfx_model_desc, threads), (uint64_t)-1, 4, E, "threads < 0"},
      {"CPU architecture", desc_off + offsetof(tfx_model_desc, cpu_arch), 7, 4, E, "unknown CPU architecture"},
      {"CPU feature bits", desc_off + offsetof(tfx_model_desc, cpu_features), 1ull << 40, 8, E,
       "unknown CPU feature bits"},
      /* a feature bit set is a corruption (the descriptor's checksum), never a CPU refusal */
      {"a CPU feature", desc_off + offsetof(tfx_model_desc, cpu_features),
       read_u64(desc_off + offsetof(tfx_model_desc, cpu_features)) ^ TFX_CPU_AVX512BF16, 8, TFX_ERR_CHECKSUM,
       "the descriptor's checksum"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) apply_and_check(&cases[i], 0);
}

/* ---- checksums on request ---- */

static void test_verify(void **state) {
  (void)state;
  const patch weight = {"a flipped weight byte",
                        weights_off + weights_bytes / 2,
                        so_data[weights_off + weights_bytes / 2] ^ 0x10,
                        1,
                        TFX_OK,
                        ""};
  /* the lazy default does not read the weights: the file opens */
  apply_and_check(&weight, 0);
  patch verified = weight;
  verified.rc = TFX_ERR_CHECKSUM;
  verified.detail = "the weights' checksum";
  apply_and_check(&verified, TFX_OPEN_VERIFY);
  char path[4300];
  path_in(path, sizeof path, "patched.so");
  char *out = NULL, *err = NULL;
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "verify", path, NULL}, &out, &err), 1);
  assert_non_null(strstr(err, "the weights' checksum"));
  assert_null(strstr(out, "ok"));
  free(out);
  free(err);

  /* a descriptor field the validation accepts, changed: its checksum is
   * checked on every open (a few hundred bytes), not only on request */
  const patch threads = {
      "the threads field",        desc_off + offsetof(tfx_model_desc, threads), 3, 4, TFX_ERR_CHECKSUM,
      "the descriptor's checksum"};
  apply_and_check(&threads, 0);
  apply_and_check(&threads, TFX_OPEN_VERIFY);
  const patch width = {
      "a smaller output width",   desc_off + offsetof(tfx_model_desc, output_width), 500, 4, TFX_ERR_CHECKSUM,
      "the descriptor's checksum"};
  apply_and_check(&width, 0);
  /* the recorded checksums themselves */
  const patch sum = {"the weights checksum",
                     desc_off + offsetof(tfx_model_desc, weights_checksum),
                     12345,
                     8,
                     TFX_ERR_CHECKSUM,
                     "the descriptor records 0000000000003039"};
  apply_and_check(&sum, TFX_OPEN_VERIFY);
  /* 0 is "not recorded" (a descriptor tfxc did not write): accepted, but
   * not when verification is asked for */
  const patch none = {"no checksums", desc_off + offsetof(tfx_model_desc, desc_checksum), 0, 8, TFX_OK, ""};
  apply_and_check(&none, 0);
  patch none_v = none;
  none_v.rc = TFX_ERR_CHECKSUM;
  none_v.detail = "records no checksums";
  apply_and_check(&none_v, TFX_OPEN_VERIFY);

  /* usage */
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "verify", NULL}, NULL, NULL), 2);
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "verify", so_path, so_path, NULL}, NULL, NULL), 2);
}

/* ---- tfxc seal ---- */

static void test_seal_command(void **state) {
  (void)state;
  char path[4300];
  path_in(path, sizeof path, "unsealed.so");
  write_file(path, so_data, elf_size); /* as `strip` or a hand link leaves it */
  child_result r = open_in_child(path, TFX_OPEN_VERIFY);
  assert_int_equal(r.signaled, 0);
  assert_int_equal(r.rc, TFX_ERR_NOT_A_MODEL);
  assert_non_null(strstr(r.detail, "no tfxc seal"));
  /* sealed: the same bytes as tfxc's own link (the weights found by their
   * symbol), twice (a seal replaces the one there) */
  for (int k = 0; k < 2; k++) {
    assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "seal", path, NULL}, NULL, NULL), 0);
    size_t n = 0;
    uint8_t *sealed = (uint8_t *)tfx_test_read_file(path, &n);
    assert_non_null(sealed);
    assert_int_equal(n, so_size);
    assert_memory_equal(sealed, so_data, so_size);
    free(sealed);
  }
  r = open_in_child(path, TFX_OPEN_VERIFY);
  assert_int_equal(r.rc, TFX_OK);
  assert_true(r.forward_ok);
  /* not an ELF file, a missing file, usage */
  char *err = NULL;
  path_in(path, sizeof path, "text.so");
  write_file(path, "not a model\n", 12);
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "seal", path, NULL}, NULL, &err), 1);
  assert_non_null(strstr(err, "not an ELF file"));
  free(err);
  path_in(path, sizeof path, "missing.so");
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "seal", path, NULL}, NULL, NULL), 1);
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "seal", NULL}, NULL, NULL), 2);
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "seal", so_path, so_path, NULL}, NULL, NULL), 2);
}

/* ---- FIFOs, directories, devices ---- */

static void test_special_files(void **state) {
  (void)state;
  char fifo[4300], d[4300], fifo_tfx[4300], dir_tfx[4300];
  path_in(fifo, sizeof fifo, "fifo.so");
  path_in(d, sizeof d, "dir.so");
  path_in(fifo_tfx, sizeof fifo_tfx, "fifo.tfx");
  path_in(dir_tfx, sizeof dir_tfx, "dir.tfx");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(mkfifo(fifo_tfx, 0600), 0);
  assert_int_equal(mkdir(d, 0700), 0);
  assert_int_equal(mkdir(dir_tfx, 0700), 0);

  child_result r = open_in_child(fifo, 0);
  assert_int_equal(r.signaled, 0); /* SIGALRM: it hung */
  assert_int_equal(r.rc, TFX_ERR_OPEN);
  assert_non_null(strstr(r.detail, "is a FIFO"));
  r = open_in_child(d, 0);
  assert_int_equal(r.signaled, 0);
  assert_int_equal(r.rc, TFX_ERR_OPEN);
  assert_non_null(strstr(r.detail, "is a directory"));
  r = open_in_child("/dev/null", 0);
  assert_int_equal(r.signaled, 0);
  assert_int_equal(r.rc, TFX_ERR_OPEN);
  assert_non_null(strstr(r.detail, "is a device"));

  /* the command line, under timeout(1): 124 would be a hang */
  struct {
    char *argv[8];
    const char *message;
  } runs[] = {
      {{"/usr/bin/timeout", "60", TFXC_PATH, "run", fifo, NULL}, "is a FIFO"},
      {{"/usr/bin/timeout", "60", TFXC_PATH, "run", d, NULL}, "is a directory"},
      {{"/usr/bin/timeout", "60", TFXC_PATH, "verify", fifo, NULL}, "is a FIFO"},
      {{"/usr/bin/timeout", "60", TFXC_PATH, fifo_tfx, "--emit=ir", NULL},
       "fifo.tfx: error: cannot read the file: is a FIFO"},
      {{"/usr/bin/timeout", "60", TFXC_PATH, dir_tfx, "--emit=ir", NULL},
       "dir.tfx: error: cannot read the file: is a directory"},
      {{"/usr/bin/timeout", "60", TFXC_PATH, "run", fifo_tfx, NULL}, "cannot read the file: is a FIFO"},
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char *err = NULL;
    int rc = tfx_test_run(runs[i].argv, NULL, &err);
    if (rc != 1 || !strstr(err, runs[i].message))
      fail_msg("%s %s: exit %d, '%s' (expected 1, '%s')", runs[i].argv[3], runs[i].argv[4] ? runs[i].argv[4] : "", rc,
               err ? err : "", runs[i].message);
    free(err);
  }
  unlink(fifo);
  unlink(fifo_tfx);
  rmdir(d);
  rmdir(dir_tfx);
}

/* ---- a name without '/' is the file in the working directory ---- */

static void test_exact_path(void **state) {
  (void)state;
  /* lib/m.so is another model (beta); here/ has alpha as m.so; empty/ has none */
  char lib[4300], here[4300], empty[4300], beta_src[4300], m_lib[4400], m_here[4400];
  path_in(lib, sizeof lib, "lib");
  path_in(here, sizeof here, "here");
  path_in(empty, sizeof empty, "empty");
  assert_int_equal(mkdir(lib, 0700), 0);
  assert_int_equal(mkdir(here, 0700), 0);
  assert_int_equal(mkdir(empty, 0700), 0);
  path_in(beta_src, sizeof beta_src, "beta.tfx");
  char *src = malloc(sizeof model_src + 8);
  assert_non_null(src);
  snprintf(src, sizeof model_src + 8, "model files_beta%s", model_src + strlen("model files_alpha"));
  write_file(beta_src, src, strlen(src));
  free(src);
  snprintf(m_lib, sizeof m_lib, "%s/m.so", lib);
  snprintf(m_here, sizeof m_here, "%s/m.so", here);
  assert_int_equal(
      tfx_test_run((char *[]){TFXC_PATH, beta_src, "--weights", "random:3", "-o", m_lib, NULL}, NULL, NULL), 0);
  write_file(m_here, so_data, so_size);

  char cmd[16000];
  char *out = NULL, *err = NULL;
  snprintf(cmd, sizeof cmd, "cd '%s' && LD_LIBRARY_PATH='%s' exec '%s' verify m.so", here, lib, TFXC_PATH);
  assert_int_equal(tfx_test_run((char *[]){"/bin/sh", "-c", cmd, NULL}, &out, &err), 0);
  assert_non_null(strstr(out, "model 'files_alpha'")); /* not lib/m.so's beta */
  free(out);
  free(err);
  snprintf(cmd, sizeof cmd, "cd '%s' && LD_LIBRARY_PATH='%s' exec '%s' run m.so -n 2", empty, lib, TFXC_PATH);
  assert_int_equal(tfx_test_run((char *[]){"/bin/sh", "-c", cmd, NULL}, &out, &err), 1);
  assert_non_null(strstr(err, "cannot load 'm.so': No such file or directory"));
  free(out);
  free(err);
  unlink(m_lib);
  unlink(m_here);
  unlink(beta_src);
  rmdir(lib);
  rmdir(here);
  rmdir(empty);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checksum64),      cmocka_unit_test(test_good_model), cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_patched_headers), cmocka_unit_test(test_verify),     cmocka_unit_test(test_seal_command),
      cmocka_unit_test(test_special_files),   cmocka_unit_test(test_exact_path),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
