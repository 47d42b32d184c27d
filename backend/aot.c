/* backend/aot.c — ahead-of-time emission: the optimized PIC module as an
 * object, the weights blob as its own ELF object (elf_blob.c), both combined
 * into one relocatable object with `ld -r` (`-c`), or linked straight with the
 * runtime archive into a self-contained shared library with `cc -shared`
 * and sealed (seal.c). Both are linked with only a reservation for the
 * weights (elf_blob.c), which elf_fill.c then fills: the weights are written
 * once, never copied by the linker (they can be gigabytes). A shared library
 * for another machine than x86-64, or a linked file not of the expected
 * shape, is linked again with the weights in the blob object;
 * and the module printed as LLVM IR or assembly. Temporary files live in a
 * mkdtemp directory removed afterwards (announced to tfx_backend_set_hooks).
 * A path that begins with '-' reaches ld and cc as "./-...", never as an
 * option. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../include/tfx/checksum.h"
#include "cg.h"

#ifndef TFX_FFI_LDFLAGS
#define TFX_FFI_LDFLAGS "-lffi"
#endif

static double aot_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The blob's symbol: `<model>_weights_blob` (hidden), so that several
 * models' objects link into one program, each with its own weights. */
static void weights_symbol(const tfx_graph *g, char *buf, size_t len) {
  char ident[128];
  tfx_cg_c_identifier(g->symbol_name ? g->symbol_name : g->name ? g->name : "model", ident, sizeof ident);
  snprintf(buf, len, "%s_weights_blob", ident);
}

int tfx_cg_aot_build(const tfx_graph *g, const tfx_target_options *o, int variant, int n_variants, tfx_cg_aot *a,
                     char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  if (tfx_cg_target_resolve(o, &a->t, err, errlen)) return -1;
  a->t.variant = variant;
  a->t.n_variants = n_variants;
  a->tm = tfx_cg_target_machine(&a->t, 1, 0, err, errlen);
  if (!a->tm) goto fail;
  a->ctx = LLVMContextCreate();
  char wsym[160];
  weights_symbol(g, wsym, sizeof wsym);
  if (tfx_cg_build_module(g, &a->t, a->ctx, a->tm, wsym, &a->mod, err, errlen)) goto fail;
  if (tfx_cg_optimize(a->mod, a->tm, a->t.opt_level, err, errlen)) goto fail;
  return 0;
fail:
  tfx_cg_aot_free(a);
  return -1;
}

void tfx_cg_aot_free(tfx_cg_aot *a) {
  if (a->mod) LLVMDisposeModule(a->mod);
  if (a->ctx) LLVMContextDispose(a->ctx);
  if (a->tm) LLVMDisposeTargetMachine(a->tm);
  tfx_cg_target_free(&a->t);
  memset(a, 0, sizeof *a);
}

int tfx_backend_emit_text(const tfx_graph *g, const tfx_target_options *o, tfx_emit_kind kind, FILE *out, char *err,
                          size_t errlen) {
  if (!g || !out) return tfx_errf(err, errlen, "backend: tfx_backend_emit_text: NULL argument");
  tfx_cg_aot a;
  if (tfx_cg_aot_build(g, o, 0, 1, &a, err, errlen)) return -1;
  int rc = 0;
  if (kind == TFX_EMIT_LLVM_IR) {
    char *s = LLVMPrintModuleToString(a.mod);
    if (fputs(s, out) < 0) rc = tfx_errf(err, errlen, "backend: writing the LLVM IR failed");
    LLVMDisposeMessage(s);
  } else {
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(a.tm, a.mod, LLVMAssemblyFile, &msg, &buf)) {
      rc = tfx_errf(err, errlen, "backend: assembly emission failed: %s", msg ? msg : "?");
    } else {
      size_t n = LLVMGetBufferSize(buf);
      if (fwrite(LLVMGetBufferStart(buf), 1, n, out) != n) rc = tfx_errf(err, errlen, "backend: writing failed");
      LLVMDisposeMemoryBuffer(buf);
    }
    LLVMDisposeMessage(msg);
  }
  tfx_cg_aot_free(&a);
  return rc;
}

/* A fresh directory under $TMPDIR (or /tmp); malloc'd path. */
static char *make_tmpdir(char *err, size_t errlen) {
  const char *base = getenv("TMPDIR");
  if (!base || !base[0]) base = "/tmp";
  size_t len = strlen(base) + 32;
  char *dir = malloc(len);
  if (!dir) {
    tfx_errf(err, errlen, "backend: out of memory");
    return NULL;
  }
  snprintf(dir, len, "%s/tfxc-XXXXXX", base);
  if (!mkdtemp(dir)) {
    tfx_errf(err, errlen, "backend: cannot create a temporary directory in %s: %s", base, strerror(errno));
    free(dir);
    return NULL;
  }
  tfx_cg_temp_event(dir, 1);
  return dir;
}

/* path, or "./" + path when it begins with '-' (a file, not an option, for ld
 * and cc); *owned is what to free. NULL when out of memory. */
static char *tool_path(const char *path, char **owned) {
  *owned = NULL;
  if (path[0] != '-') return (char *)path;
  size_t n = strlen(path);
  char *p = malloc(n + 3);
  if (!p) return NULL;
  memcpy(p, "./", 2);
  memcpy(p + 2, path, n + 1);
  return *owned = p;
}

static void remove_temp(const char *path, int dir) {
  if (!path) return;
  if (dir)
    rmdir(path);
  else
    unlink(path);
  tfx_cg_temp_event(path, 0);
}

/* The code (one object per code variant) and the weights blob in a fresh
 * temporary directory: t->code[0..n_code), t->blob (malloc'd paths,
 * announced as temporaries). */
typedef struct {
  char *dir, *code[TFX_CG_MAX_VARIANTS], *blob;
  int n_code;
} aot_objects;

static void aot_objects_remove(aot_objects *t) {
  for (int i = 0; i < t->n_code; i++) {
    remove_temp(t->code[i], 0);
    free(t->code[i]);
  }
  remove_temp(t->blob, 0);
  remove_temp(t->dir, 1);
  free(t->blob);
  free(t->dir);
}

/* One variant's code object at path: its module for o, with the weights'
 * checksum recorded; *elf is its machine. */
static int write_code(const tfx_graph *g, const uint8_t *weights, const tfx_target_options *o, int variant,
                      int n_variants, const char *path, tfx_cg_elf_id *elf, tfx_pack_layout *pack, char *err,
                      size_t errlen) {
  tfx_cg_aot a;
  if (tfx_cg_aot_build(g, o, variant, n_variants, &a, err, errlen)) return -1;
  int rc = -1;
  char *msg = NULL;
  /* the weights checksum of the descriptor (tfx/checksum.h, TFX_OPEN_VERIFY) */
  if (tfx_cg_set_weights_checksum(a.mod, &a.t, g->symbol_name ? g->symbol_name : g->name,
                                  tfx_checksum64(weights, (size_t)g->weights_bytes), err, errlen))
    goto done;
  if (LLVMTargetMachineEmitToFile(a.tm, a.mod, (char *)path, LLVMObjectFile, &msg)) {
    tfx_errf(err, errlen, "backend: object emission failed: %s", msg ? msg : "?");
    goto done;
  }
  *elf = a.t.elf;
  *pack = a.t.pack;
  rc = 0;
done:
  LLVMDisposeMessage(msg);
  tfx_cg_aot_free(&a);
  return rc;
}

/* The code objects, and the blob object with the weights (*reserve 0) or
 * their reservation for *reserve (tfx_cg_reserve_for; where it cannot be
 * made, *reserve becomes 0 and the blob holds the weights). */
static int write_objects(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes, const tfx_target_options *o,
                         int *reserve, aot_objects *t, char *err, size_t errlen) {
  *t = (aot_objects){0};
  if ((uint64_t)weights_bytes < (uint64_t)g->weights_bytes || (weights_bytes > 0 && !weights))
    return tfx_errf(err, errlen, "backend: the weights blob has %zu bytes, the model needs %lld", weights_bytes,
                    (long long)g->weights_bytes);
  char cpus[512];
  tfx_target_options v[TFX_CG_MAX_VARIANTS];
  int n = tfx_cg_split_cpus(o, v, cpus, sizeof cpus, err, errlen);
  if (n < 0) return -1;
  t->dir = make_tmpdir(err, errlen);
  if (!t->dir) return -1;
  size_t plen = strlen(t->dir) + 32;
  t->blob = malloc(plen);
  if (!t->blob) goto oom;
  snprintf(t->blob, plen, "%s/weights.o", t->dir);
  tfx_cg_elf_id elf = {0}, elf0 = {0};
  tfx_pack_layout pack, pack0 = {0};
  double t0 = aot_seconds();
  for (int i = 0; i < n; i++) {
    t->code[i] = malloc(plen);
    if (!t->code[i]) goto oom;
    t->n_code = i + 1;
    snprintf(t->code[i], plen, "%s/code%d.o", t->dir, i);
    tfx_cg_temp_event(t->code[i], 1);
    if (write_code(g, weights, &v[i], i, n, t->code[i], &elf, &pack, err, errlen)) goto fail;
    if (i == 0) {
      elf0 = elf;
      pack0 = pack;
    } else if (memcmp(&pack, &pack0, sizeof pack) || elf.machine != elf0.machine) {
      tfx_errf(err, errlen, "backend: --mcpu %s and %s need different weight layouts; a model's variants share one",
               v[0].cpu, v[i].cpu);
      goto fail;
    }
  }
  tfx_cg_temp_event(t->blob, 1);
  /* the blob's object is for the code's machine */
  char wsym[160];
  weights_symbol(g, wsym, sizeof wsym);
  if (weights_bytes == 0 || (*reserve == TFX_CG_RESERVE_SHARED && elf0.machine != EM_X86_64)) *reserve = 0;
  if (*reserve ? tfx_cg_write_blob_reservation(t->blob, &elf0, wsym, weights_bytes, *reserve, err, errlen)
               : tfx_cg_write_blob_object(t->blob, &elf0, wsym, weights, weights_bytes, err, errlen))
    goto fail;
  if (o && o->phase_seconds) o->phase_seconds[0] += aot_seconds() - t0;
  return 0;
oom:
  tfx_errf(err, errlen, "backend: out of memory");
fail:
  aot_objects_remove(t);
  return -1;
}

/* The C compiler that links for o: o->cc, else cc for the host, else
 * TRIPLE-gcc (as given to --target: aarch64-linux-gnu-gcc, Debian's
 * gcc-aarch64-linux-gnu). */
static int default_cc(const tfx_target_options *o, char *buf, size_t len, char *err, size_t errlen) {
  int host = tfx_backend_target_is_host(o, err, errlen);
  if (host < 0) return -1;
  const char *cc = o && o->cc && o->cc[0] ? o->cc : NULL;
  int w = cc ? snprintf(buf, len, "%s", cc) : host ? snprintf(buf, len, "cc") : snprintf(buf, len, "%s-gcc", o->triple);
  if (w < 0 || (size_t)w >= len) return tfx_errf(err, errlen, "backend: the C compiler's name is too long");
  return 0;
}

/* "--sysroot=DIR" for o->sysroot ("" when none) */
static int sysroot_option(const tfx_target_options *o, char *buf, size_t len, char *err, size_t errlen) {
  buf[0] = 0;
  if (!o || !o->sysroot || !o->sysroot[0]) return 0;
  if ((size_t)snprintf(buf, len, "--sysroot=%s", o->sysroot) >= len)
    return tfx_errf(err, errlen, "backend: the --sysroot path is too long");
  return 0;
}

/* The code objects and the blob (its reservation when reserve) combined by
 * `ld -r` into obj_path, the reservation filled: 0; 1 when it could not be
 * filled (the caller combines again with the data); -1 on an error. */
static int combine_objects(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes,
                           const tfx_target_options *o, int reserve, const char *obj_path, char *err, size_t errlen) {
  aot_objects t;
  if (write_objects(g, weights, weights_bytes, o, &reserve, &t, err, errlen)) return -1;
  char *owned, *out = tool_path(obj_path, &owned);
  /* for another machine, the target's C compiler combines (the host's ld
   * may not read its objects) */
  int host = tfx_backend_target_is_host(o, err, errlen);
  char cross_cc[256], sysroot_arg[4200];
  if (host == 0 && (default_cc(o, cross_cc, sizeof cross_cc, err, errlen) ||
                    sysroot_option(o, sysroot_arg, sizeof sysroot_arg, err, errlen)))
    host = -1;
  if (host < 0) {
    free(owned);
    aot_objects_remove(&t);
    return -1;
  }
  char *argv[TFX_CG_MAX_VARIANTS + 10] = {"ld", "-r", "-o", out};
  int n = 4;
  if (!host) {
    n = 0;
    argv[n++] = cross_cc;
    argv[n++] = "-r";
    argv[n++] = "-nostdlib";
    if (o->sysroot && o->sysroot[0]) argv[n++] = sysroot_arg;
    argv[n++] = "-o";
    argv[n++] = out;
  }
  for (int i = 0; i < t.n_code; i++) argv[n++] = t.code[i];
  argv[n++] = t.blob;
  argv[n] = NULL;
  double t0 = aot_seconds();
  int rc = out ? tfx_cg_run(argv, err, errlen) : tfx_errf(err, errlen, "backend: out of memory");
  if (rc == 0 && reserve) {
    char wsym[160];
    weights_symbol(g, wsym, sizeof wsym);
    if (tfx_cg_fill_blob(obj_path, wsym, weights, weights_bytes, err, errlen)) rc = 1;
  }
  if (o && o->phase_seconds) o->phase_seconds[1] += aot_seconds() - t0;
  free(owned);
  aot_objects_remove(&t);
  return rc;
}

int tfx_backend_write_object(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes,
                             const tfx_target_options *o, const char *obj_path, char *err, size_t errlen) {
  if (!g || !obj_path || !obj_path[0]) return tfx_errf(err, errlen, "backend: tfx_backend_write_object: NULL argument");
  int rc = combine_objects(g, weights, weights_bytes, o, TFX_CG_RESERVE_OBJECT, obj_path, err, errlen);
  if (rc == 1) rc = combine_objects(g, weights, weights_bytes, o, 0, obj_path, err, errlen); /* ld copies them */
  return rc;
}

/* cc -shared of the objects with the runtime archive (o->runtime, or the
 * one tfx_backend_find_runtime_for finds) into so_path, unsealed. For another
 * machine (o->triple), its C compiler (o->cc, TRIPLE-gcc) and o->sysroot
 * link with its runtime archive, built without libffi (CMakeLists.txt,
 * TFX_RUNTIME_FFI). */
static int link_objects(const char *const *objs, int n_objs, const tfx_target_options *o, const char *so_path,
                        char *err, size_t errlen) {
  int host = tfx_backend_target_is_host(o, err, errlen);
  if (host < 0) return -1;
  char archive[4096], cc[256], sysroot[4200];
  if (tfx_backend_find_runtime_for(o ? o->runtime : NULL, host ? NULL : o->triple, archive, sizeof archive, err,
                                   errlen) ||
      default_cc(o, cc, sizeof cc, err, errlen) || sysroot_option(o, sysroot, sizeof sysroot, err, errlen))
    return -1;
  for (int i = 0; i < n_objs; i++)
    if (access(objs[i], R_OK)) return tfx_errf(err, errlen, "backend: %s: %s", objs[i], strerror(errno));
  char ffi[1024];
  snprintf(ffi, sizeof ffi, "%s", host ? TFX_FFI_LDFLAGS : "");
  if (n_objs > TFX_CG_MAX_VARIANTS + 1) return tfx_errf(err, errlen, "backend: too many objects to link");
  char *owned[TFX_CG_MAX_VARIANTS + 3] = {NULL}, *so = tool_path(so_path, &owned[0]),
                                    *ar = tool_path(archive, &owned[1]);
  char *argv[64];
  int n = 0, ok = so && ar;
  argv[n++] = cc;
  if (sysroot[0]) argv[n++] = sysroot;
  argv[n++] = "-shared";
  argv[n++] = "-o";
  argv[n++] = so;
  for (int i = 0; i < n_objs; i++) {
    argv[n] = tool_path(objs[i], &owned[2 + i]);
    ok = ok && argv[n++];
  }
  argv[n++] = "-Wl,--whole-archive";
  argv[n++] = ar;
  argv[n++] = "-Wl,--no-whole-archive";
  for (char *save = NULL, *tok = strtok_r(ffi, "; \t", &save); tok && n < 56; tok = strtok_r(NULL, "; \t", &save))
    argv[n++] = tok;
  argv[n++] = "-lpthread";
  argv[n++] = "-ldl";
  argv[n++] = "-lm";
  argv[n++] = "-Wl,-z,noexecstack";
#ifdef TFX_RUNTIME_SANITIZE_FLAGS
  if (host) argv[n++] = TFX_RUNTIME_SANITIZE_FLAGS; /* the sanitizer build's runtime archive is instrumented */
#endif
  argv[n++] = "-Wl,--no-undefined";
  argv[n] = NULL;
  int rc = ok ? tfx_cg_run(argv, err, errlen) : tfx_errf(err, errlen, "backend: out of memory");
  for (int i = 0; i < n_objs + 2; i++) free(owned[i]);
  return rc;
}

int tfx_backend_link_shared(const char *obj_path, const char *so_path, char *err, size_t errlen) {
  if (!obj_path || !so_path || !obj_path[0] || !so_path[0])
    return tfx_errf(err, errlen, "backend: tfx_backend_link_shared: NULL argument");
  if (link_objects(&obj_path, 1, NULL, so_path, err, errlen)) return -1;
  return tfx_backend_seal(so_path, err, errlen); /* what tfx_model_open checks first */
}

/* The code objects and the blob (its reservation when reserve) linked into
 * so_path, the reservation filled: 0; 1 when a reservation could not be
 * filled (the caller links again with the data); -1 when writing the
 * objects failed, -2 when linking did. */
static int link_shared(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes, const tfx_target_options *o,
                       int reserve, const char *so_path, char *err, size_t errlen) {
  aot_objects t;
  if (write_objects(g, weights, weights_bytes, o, &reserve, &t, err, errlen)) return -1;
  const char *objs[TFX_CG_MAX_VARIANTS + 1];
  for (int i = 0; i < t.n_code; i++) objs[i] = t.code[i];
  objs[t.n_code] = t.blob;
  double t0 = aot_seconds();
  int rc = link_objects(objs, t.n_code + 1, o, so_path, err, errlen) ? -2 : 0;
  if (rc == 0 && reserve) {
    char wsym[160];
    weights_symbol(g, wsym, sizeof wsym);
    if (tfx_cg_fill_blob(so_path, wsym, weights, weights_bytes, err, errlen)) rc = 1;
  }
  if (o && o->phase_seconds) o->phase_seconds[1] += aot_seconds() - t0;
  aot_objects_remove(&t);
  return rc;
}

int tfx_backend_write_shared(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes,
                             const tfx_target_options *o, const char *so_path, char *err, size_t errlen) {
  if (!g || !so_path || !so_path[0]) return tfx_errf(err, errlen, "backend: tfx_backend_write_shared: NULL argument");
  int rc = link_shared(g, weights, weights_bytes, o, TFX_CG_RESERVE_SHARED, so_path, err, errlen);
  if (rc == 1) rc = link_shared(g, weights, weights_bytes, o, 0, so_path, err, errlen); /* the linker copies */
  if (rc == 0 && tfx_backend_seal(so_path, err, errlen)) rc = -2; /* what tfx_model_open checks first */
  return rc;
}
