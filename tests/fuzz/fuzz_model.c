/* tests/fuzz/fuzz_model.c — libFuzzer target for the model loader
 * (tfx_model_open_flags on damaged model .so files). The input is not a file
 * but a list of mutations of a fixed, valid model: its first byte chooses
 * TFX_OPEN_VERIFY (bit 0), a truncation (bit 1, the size in the next four
 * bytes) and a forward pass after a successful open (bit 2); then groups of
 * four bytes each set or flip one byte (b0 bit 7: xor) at an offset (b1, b2)
 * of a region chosen by b0: the ELF header and program headers, the model
 * descriptor, the dynamic section or the section headers.
 *
 * The checks that run before dlopen (runtime/elf_check.c) run in this
 * process, so libFuzzer sees their coverage: the ELF checks on every mutated
 * file (they must refuse it cleanly or accept it, never crash, whatever the
 * seal says), then the seal (tfx/seal.h), which tfx_model_open checks first.
 * A file both accept is then opened (and run) in a forked child with an
 * alarm: a child killed by a signal, hung, or exiting other than normally is
 * a finding (abort() here, so libFuzzer keeps the input).
 *
 * The model: TFX_FUZZ_MODEL (tests/fuzz/run.sh sets it to a model compiled by
 * build/tfxc when there is one), else a small model with the same ABI (a
 * descriptor with forward, decode and forward_last entries, a 64 KB weights
 * blob, checksums and seal filled in here) built once with the system `cc`. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../runtime/rt_internal.h"
#include "tfx/checksum.h"
#include "tfx/seal.h"

#ifndef TFX_FUZZ_INCLUDE
#define TFX_FUZZ_INCLUDE "include"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char model_c[] =
    "#include \"tfx/abi.h\"\n"
    "#define NW 16384\n"
    "#define W 8\n"
    "#define F(i) ((float)((i) % 251) * 0.01f)\n"
    "#define F4(i) F(i), F(i + 1), F(i + 2), F(i + 3)\n"
    "#define F16(i) F4(i), F4(i + 4), F4(i + 8), F4(i + 12)\n"
    "#define F64(i) F16(i), F16(i + 16), F16(i + 32), F16(i + 48)\n"
    "__attribute__((aligned(64))) static const float weights[NW] = {F64(0), F64(64), F64(128), 1.0f};\n"
    "static void fwd(const void *in, int64_t n, int64_t pos, void *out, void *arena, void *kv, const void *w,\n"
    "                tfx_exec *exec) {\n"
    "  (void)in, (void)pos, (void)arena, (void)exec;\n"
    "  float *o = out;\n"
    "  for (int64_t i = 0; i < n * W; i++) o[i] = ((const float *)w)[i % NW] + ((float *)kv)[0];\n"
    "}\n"
    "static void last(const void *in, int64_t n, int64_t pos, void *out, void *arena, void *kv, const void *w,\n"
    "                 tfx_exec *exec) {\n"
    "  (void)in, (void)n, (void)pos, (void)arena, (void)kv, (void)exec;\n"
    "  for (int i = 0; i < W; i++) ((float *)out)[i] = ((const float *)w)[i];\n"
    "}\n"
    "static const int32_t kinds[8] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,\n"
    "                                 TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};\n"
    "static const tfx_entry_desc entries[3] = {{\"forward\", (void *)fwd, 1, 16, 8, kinds, 0, 0},\n"
    "                                          {\"decode\", (void *)fwd, 1, 1, 8, kinds, 0, 0},\n"
    "                                          {\"forward_last\", (void *)last, 1, 16, 8, kinds, 1, 0}};\n"
    "const tfx_model_desc tfx_model_descriptor_data = {TFX_DESC_MAGIC, TFX_ABI_VERSION, \"fuzz\", "
    "TFX_INPUT_TOKENS, 1, W, 32, 16, 1, 1024, 4096, sizeof weights, weights, 3, 0, entries, 0, 0};\n";

static uint8_t *base;
static size_t base_size;
static uint64_t regions[4][2]; /* [begin, end) in the file */
static char dir[64];
static char path[128];

static uint8_t *slurp(const char *p, size_t *n) {
  FILE *f = fopen(p, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = len > 0 ? malloc((size_t)len) : NULL;
  if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *n = b ? (size_t)len : 0;
  return b;
}

static uint64_t offset_of(uint64_t vaddr) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr && vaddr < ph[i].p_vaddr + ph[i].p_filesz)
      return ph[i].p_offset + (vaddr - ph[i].p_vaddr);
  fprintf(stderr, "fuzz_model: the base model's address 0x%llx is not in its file\n", (unsigned long long)vaddr);
  abort();
}

static void die(const char *what) {
  fprintf(stderr, "fuzz_model: %s\n", what);
  abort();
}

/* Removes the temporary directory when the fuzzer exits (only the parent). */
static pid_t owner;
static void cleanup(void) {
  if (getpid() != owner) return;
  static const char *files[] = {"m.so", "base.c", "base.so"};
  char p[160];
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
}

/* Loads (or builds) the base model and finds its regions. */
static void init(void) {
  snprintf(dir, sizeof dir, "/tmp/tfx-fuzz-model-XXXXXX");
  if (!mkdtemp(dir)) die("cannot create a temporary directory");
  owner = getpid();
  atexit(cleanup);
  snprintf(path, sizeof path, "%s/m.so", dir);
  const char *given = getenv("TFX_FUZZ_MODEL");
  char base_path[160];
  if (given && given[0]) {
    snprintf(base_path, sizeof base_path, "%s", given);
  } else {
    char src[128], cmd[1024];
    snprintf(src, sizeof src, "%s/base.c", dir);
    snprintf(base_path, sizeof base_path, "%s/base.so", dir);
    FILE *f = fopen(src, "w");
    if (!f || fputs(model_c, f) < 0 || fclose(f) != 0) die("cannot write the base model's source");
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -I'%s' -o '%s' '%s'", TFX_FUZZ_INCLUDE, base_path, src);
    if (system(cmd) != 0) die("cannot build the base model with cc");
  }
  base = slurp(base_path, &base_size);
  if (!base || base_size < sizeof(Elf64_Ehdr)) die("cannot read the base model");
  /* the descriptor's place, from the loaded (trusted) base */
  void *h = dlopen(base_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) die(dlerror());
  const tfx_model_desc *d = dlsym(h, TFX_DESC_SYMBOL);
  struct link_map *lm = NULL;
  if (!d || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0) die("the base model has no descriptor");
  uint64_t desc_off = offset_of((uint64_t)((uintptr_t)d - lm->l_addr));
  if (!given || !given[0]) { /* the checksums and the seal the compiler would have written */
    uint64_t ds = tfx_desc_checksum(d), ws = tfx_checksum64(d->weights, (size_t)d->weights_bytes);
    memcpy(base + desc_off + offsetof(tfx_model_desc, desc_checksum), &ds, 8);
    memcpy(base + desc_off + offsetof(tfx_model_desc, weights_checksum), &ws, 8);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, base, base_size) != (ssize_t)base_size || tfx_seal_append(fd, base_size, 0, 0) != 0 ||
        close(fd) != 0)
      die("cannot seal the base model");
    free(base);
    if (!(base = slurp(path, &base_size))) die("cannot read the sealed base model");
  }
  dlclose(h);
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
  regions[0][0] = 0;
  regions[0][1] = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
  regions[1][0] = desc_off;
  regions[1][1] = desc_off + sizeof(tfx_model_desc);
  regions[2][0] = regions[2][1] = 0;
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_DYNAMIC) regions[2][0] = ph[i].p_offset, regions[2][1] = ph[i].p_offset + ph[i].p_filesz;
  regions[3][0] = eh->e_shoff;
  regions[3][1] = eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr);
  for (int r = 0; r < 4; r++)
    if (regions[r][1] <= regions[r][0] || regions[r][1] > base_size) die("the base model's regions are not in it");
  /* the base itself must open, verify and run */
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(base, 1, base_size, f) != base_size || fclose(f) != 0) die("cannot write the model");
  tfx_model *m = NULL;
  char err[512];
  if (tfx_model_open_flags(path, TFX_OPEN_VERIFY, &m, err, sizeof err) != TFX_OK) die(err);
  tfx_model_close(m);
}

/* Opens the file (and runs it) in a child; exits 0 when every call returned. */
static void child(unsigned flags, int run) {
  alarm(10);
  tfx_model *m = NULL;
  char err[512];
  if (tfx_model_open_flags(path, flags, &m, err, sizeof err) == TFX_OK && run) {
    const tfx_model_desc *d = tfx_model_descriptor(m);
    tfx_session *s = NULL;
    if (tfx_session_create(m, &(tfx_session_options){.threads = 1}, &s) == TFX_OK) {
      float *out = malloc((size_t)d->output_width * sizeof(float));
      if (out && d->input_kind == TFX_INPUT_TOKENS) tfx_forward(s, (const int32_t[]){0}, 1, out);
      free(out);
      tfx_session_free(s);
    }
  }
  tfx_model_close(m);
  _exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!base) init();
  if (size < 1 || size > 4096) return 0;
  unsigned flags = (data[0] & 1) ? TFX_OPEN_VERIFY : 0;
  int run = (data[0] & 4) != 0;
  size_t pos = 1, len = base_size;
  if (data[0] & 2) {
    if (size < 5) return 0;
    uint32_t v;
    memcpy(&v, data + 1, 4);
    len = v % (base_size + 1);
    pos = 5;
  }
  static uint8_t *file; /* one buffer for every input */
  if (!file && !(file = malloc(base_size))) die("out of memory");
  memcpy(file, base, base_size);
  for (; pos + 4 <= size; pos += 4) {
    int r = (data[pos] & 0x7f) % 4;
    uint64_t span = regions[r][1] - regions[r][0];
    uint64_t at = regions[r][0] + ((uint64_t)data[pos + 1] | (uint64_t)data[pos + 2] << 8) % span;
    file[at] = (data[pos] & 0x80) ? (uint8_t)(file[at] ^ data[pos + 3]) : data[pos + 3];
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die("cannot write the model");
  size_t done = 0;
  while (done < len) {
    ssize_t k = write(fd, file + done, len - done);
    if (k <= 0) die("cannot write the model");
    done += (size_t)k;
  }
  close(fd);

  /* the checks before dlopen, here */
  int rfd = -1;
  uint64_t fsize = 0;
  char err[512];
  if (tfx_rt_open_model_file(path, &rfd, &fsize, err, sizeof err) != TFX_OK) die(err);
  int rc = tfx_rt_check_elf(rfd, fsize, path, err, sizeof err);
  if (rc == TFX_OK) rc = tfx_rt_check_seal(rfd, fsize, path, err, sizeof err);
  close(rfd);
  if (rc != TFX_OK) {
    if (rc != TFX_ERR_NOT_A_MODEL || !strstr(err, "truncated or corrupted")) die(err);
    return 0;
  }
  /* the loader, in a child */
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) child(flags, run);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "fuzz_model: opening the mutated model %s (status 0x%x)\n",
            WIFSIGNALED(status) ? "crashed or hung" : "failed", (unsigned)status);
    abort();
  }
  return 0;
}
