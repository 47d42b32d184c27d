/* backend/backend.h — LLVM code generation for a planned graph: the kernels of
 * every op, the entry points and the model descriptor (tfx/abi.h), then AOT
 * emission (object file, shared library) or in-process ORC JIT. */
#ifndef TFX_BACKEND_H
#define TFX_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../include/tfx/abi.h"
#include "../ir/ir.h"

typedef struct tfx_target_options {
  int opt_level;         /* 0..3: LLVM pipeline default<O0..O3> and codegen level */
  const char *cpu;       /* NULL: LLVMGetHostCPUName() */
  const char *features;  /* NULL: LLVMGetHostCPUFeatures() when cpu is NULL, else "" */
  const char *runtime;   /* the runtime archive a .so is linked with; NULL: tfx_backend_find_runtime's search */
  const char *triple;    /* the target triple (tfxc --target), e.g. aarch64-linux-gnu; NULL: the host's */
  const char *cc;        /* the C compiler that links a .so (and combines a -c object for another target);
                          * NULL: cc for the host, TRIPLE-gcc for another target */
  const char *sysroot;   /* --sysroot for that link; NULL: none */
  double *phase_seconds; /* when set, tfx_backend_write_object/_shared add their code generation's seconds to
                          * [0] and their linking's to [1] (tfxc -v) */
} tfx_target_options;

/* Does o compile for the host (1), for another machine (0, o->triple,
 * tfxc --target), or name a target tfxc does not support (-1 with a
 * message)? */
int tfx_backend_target_is_host(const tfx_target_options *o, char *err, size_t errlen);

typedef enum { TFX_EMIT_LLVM_IR, TFX_EMIT_ASM } tfx_emit_kind;

/* The packed weight layout the target's kernels read (its target
 * description's, backend/target.c): what the passes must pack weights in
 * (tfx_pass_options.pack) for a graph compiled for o. */
int tfx_backend_pack_layout(const tfx_target_options *o, tfx_pack_layout *out, char *err, size_t errlen);
/* One line describing the target o resolves to (triple, cpu, vector width and
 * registers, FMA, int8 dot-product and bf16 instructions, tiles, packed
 * layout, object machine), for `tfxc --stats`. */
int tfx_backend_target_summary(const tfx_target_options *o, char *buf, size_t len, char *err, size_t errlen);

/* Prints the optimized module as LLVM IR or assembly. */
int tfx_backend_emit_text(const tfx_graph *g, const tfx_target_options *o, tfx_emit_kind kind, FILE *out, char *err,
                          size_t errlen);

/* Writes a relocatable object holding the code, the descriptor and the weights
 * blob (the blob is written as its own read-only section, never as LLVM
 * constants) to obj_path. The descriptor's `weights` points at the blob. */
int tfx_backend_write_object(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes,
                             const tfx_target_options *o, const char *obj_path, char *err, size_t errlen);

/* The runtime archive (libtfxrt.a) to link a shared library with
 * (backend/runtime_path.c): path when given (tfxc --runtime), else
 * $TFX_RUNTIME_ARCHIVE, else the installed archive relative to the running
 * executable (../lib/libtfxrt.a from its bin/), else, for a program inside
 * the build tree, the build's archive. Copied to out; -1 with a message
 * naming the paths tried when none is readable. */
int tfx_backend_find_runtime(const char *path, char *out, size_t outlen, char *err, size_t errlen);
/* The same for the machine triple names (--target; NULL: the host): path when
 * given, else lib/TRIPLE/libtfxrt.a beside the installed host archive, else
 * the build tree's runtime-TRIPLE/libtfxrt.a ($TFX_RUNTIME_ARCHIVE is the
 * host's and not used). */
int tfx_backend_find_runtime_for(const char *path, const char *triple, char *out, size_t outlen, char *err,
                                 size_t errlen);

/* Links an object from tfx_backend_write_object with the runtime archive into
 * a self-contained shared library. */
int tfx_backend_link_shared(const char *obj_path, const char *so_path, char *err, size_t errlen);

/* Seals a linked model .so (tfx/seal.h, backend/seal.c): appends the trailer
 * tfx_model_open checks, replacing one the file had. Both links above seal
 * what they write; `tfxc seal` calls it on a file linked by other means.
 * 0, or -1 with a message. */
int tfx_backend_seal(const char *so_path, char *err, size_t errlen);

/* The two above in one step, without the combined object: the code and the
 * blob objects linked straight into so_path, sealed. On x86-64 the weights
 * (which can be gigabytes) are written once, into the library itself after
 * the link (backend/elf_fill.c). 0; -1 when writing the objects failed; -2
 * when the link failed; a message in err. */
int tfx_backend_write_shared(const tfx_graph *g, const uint8_t *weights, size_t weights_bytes,
                             const tfx_target_options *o, const char *so_path, char *err, size_t errlen);

/* Hooks for a program that removes temporaries when a signal ends it
 * (tfxc's driver/outfile.c). temp(path, 1) when the backend creates a
 * temporary file or directory, temp(path, 0) once it is gone; tool(pid) when
 * an external tool (ld, cc) starts, then in a process group of its own (pid
 * names it) so a handler can end it with everything it started, tool(0) when
 * it has exited. NULL (the default) or a NULL member: none; the tools then stay
 * in the caller's process group. */
typedef struct tfx_backend_hooks {
  void (*temp)(const char *path, int created);
  void (*tool)(long pid);
} tfx_backend_hooks;
void tfx_backend_set_hooks(const tfx_backend_hooks *h);

/* In-process compilation. The descriptor stays valid until the module is
 * freed; its `weights` is NULL (the caller supplies the blob). */
typedef struct tfx_jit_module tfx_jit_module;
int tfx_backend_jit(const tfx_graph *g, const tfx_target_options *o, tfx_jit_module **out, const tfx_model_desc **desc,
                    char *err, size_t errlen);
void tfx_backend_jit_free(tfx_jit_module *m);

/* Kernels launched by one call of the `forward` and `decode` entries of the
 * module built for g (backend/kernel_count.c). */
int tfx_backend_kernel_counts(const tfx_graph *g, const tfx_target_options *o, int *forward, int *decode, char *err,
                              size_t errlen);

/* The rows per run of the `forward` and `forward_last` entries of the
 * module built for g (backend/module.c): g->prefill_chunk when runs of that
 * many rows compute what the whole call does, i.e. g has a KV cache, one
 * input, no source, and every live node but those reading earlier rows
 * through a KV cache or recurrent state (as decode does) is row-wise; else
 * 0 (the whole call at once; also when g->prefill_chunk is 0 or >=
 * max_seq). The descriptor is the same either way. */
int64_t tfx_backend_prefill_chunk(const tfx_graph *g);

/* The descriptor's input table of g (ABI 6): *n_inputs = 0 for a forward
 * of one input, else one entry per forward input in order (names point
 * into the graph). A token or i32 input that an embedding reads gets the
 * smallest table's rows as its vocab. 0, or -1 with a message. */
int tfx_backend_model_inputs(const tfx_graph *g, tfx_input_desc out[TFX_MAX_MODEL_INPUTS], int32_t *n_inputs, char *err,
                             size_t errlen);

#endif
