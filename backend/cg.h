/* backend/cg.h — the backend's internal interface: the code generation
 * context (LLVM context, module, builder, vector width, the kernel being
 * emitted), the IR-building helpers every kernel emitter shares (loops,
 * vector loads and stores with tails, reductions, intrinsics), the vector math
 * (exp, sigmoid, erf, sin/cos), the per-op kernel emitters, target selection,
 * module construction and the subprocess/ELF helpers of AOT emission.
 * Private to backend/. */
#ifndef TFX_CG_H
#define TFX_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define TFX_CG_MAX_KERNELS_GROW 64

/* Fields of the argument block every entry point builds for its kernels (the
 * eight entry arguments, in entry order). */
enum {
  TFX_CG_ARG_INPUT = 0,
  TFX_CG_ARG_N,
  TFX_CG_ARG_POS,
  TFX_CG_ARG_OUTPUT,
  TFX_CG_ARG_ARENA,
  TFX_CG_ARG_KV,
  TFX_CG_ARG_WEIGHTS,
  TFX_CG_ARG_EXEC,
  TFX_CG_ARG_COUNT
};

/* A kernel and the size of its work range: items = per_t * T + fixed. */
typedef struct tfx_cg_kernel {
  LLVMValueRef fn;
  int64_t per_t, fixed;
  int64_t work; /* static cost estimate: elements touched at T = 1 (the inline-or-fork grain) */
  int one_row;  /* the last-row entry's kernel of a tail node: its range is sized for T = 1 */
  int src;      /* a source-invariant node's (passes/cache_source.c): skipped while the source cache is valid */
} tfx_cg_kernel;

/* A launch whose estimated work (tfx_cg_kernel.work x T) is below this many
 * elements runs inline on the calling thread: the fork/join would cost more. */
#define TFX_CG_INLINE_WORK ((int64_t)1 << 17)

/* int8 dot-product instructions (tfx_cg_target.i8dot, a bit set) */
enum {
  TFX_CG_I8_MADDUBS = 1, /* x86 pmaddubsw at the vector width (SSSE3 xmm, AVX2 ymm, AVX512BW zmm) */
  TFX_CG_I8_AVXVNNI = 2, /* x86 AVX-VNNI vpdpbusd ymm */
  TFX_CG_I8_VNNI512 = 4, /* x86 AVX512_VNNI vpdpbusd zmm */
  TFX_CG_I8_SDOT = 8     /* AArch64 sdot/udot (dotprod) */
};
/* A register tile of the micro-kernel (tfx_cg_target.mk). */
typedef struct tfx_cg_tile {
  int mr, mr_rem; /* rows of x of the main tile and of the remainder tile */
  int cols;       /* output columns of a tile (a multiple of the width) */
} tfx_cg_tile;
/* The ELF identity of the objects LLVM writes for a target, read from an
 * object LLVM emits (never written by hand); machine 0: LLVM's objects for
 * the target are not 64-bit little-endian ELF. */
typedef struct tfx_cg_elf_id {
  uint16_t machine; /* e_machine: EM_X86_64, EM_AARCH64, ... */
  uint32_t flags;   /* e_flags (the ABI bits of RISC-V, MIPS, ...) */
  uint8_t osabi;    /* e_ident[EI_OSABI] */
} tfx_cg_elf_id;
/* The target description (target.c): the triple, cpu and LLVM feature
 * string compiled for, and everything the kernels and the object writer
 * assume about the machine, derived once from them. Kernels read it here
 * instead of guessing from the vector width. */
typedef struct tfx_cg_target {
  char *triple, *cpu, *features; /* malloc'd */
  const char *arch;              /* LLVM's target name: "x86-64", "aarch64" */
  int width;                     /* floats per vector: 16, 8 or 4 */
  int vregs;                     /* vector registers of that width */
  int has_fma;
  unsigned i8dot; /* TFX_CG_I8_* */
  int has_bf16;   /* bf16 dot products: x86 AVX512_BF16 (vdpbf16ps), AArch64 BF16 (bfdot) */
  /* the micro-kernel's register tiles (k_microkernel.c): [0] plain, [1] GLU
   * (gate and up accumulators per column) */
  tfx_cg_tile mk[2];
  /* the flash attention's tile (k_flash_attention.c): query rows (the
   * vector width: the kernel vectorizes across them), keys per group (its
   * score accumulators), head-dimension chunk */
  struct {
    int rows, keys, dims;
  } flash;
  tfx_pack_layout pack; /* the packed weight layout the linear kernels read */
  tfx_cg_elf_id elf;    /* the objects' machine (elf_blob.c writes the weights with it) */
  int opt_level;
  uint32_t cpu_arch;     /* enum tfx_cpu_arch: the descriptor's cpu_arch */
  uint64_t cpu_features; /* TFX_CPU_* the code may use: the descriptor's cpu_features */
  /* this module's place among the model's code variants (--mcpu=A,B):
   * variant 0 is the descriptor TFX_DESC_SYMBOL, variant i > 0 the hidden
   * `<name>_variant_<i>`; each points at the next (variant_next) */
  int variant, n_variants;
} tfx_cg_target;

typedef struct tfx_cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  const tfx_graph *g;
  const tfx_cg_target *tgt;
  int W; /* vector width in floats */

  LLVMTypeRef t_void, t_i1, t_i32, t_i64, t_f32, t_f64, t_ptr;
  LLVMTypeRef t_vf, t_vi, t_vm; /* <W x float>, <W x i32>, <W x i1> */
  LLVMTypeRef t_kernel, t_args; /* void(ptr, i64, i64); the argument block */
  LLVMAttributeRef fn_attrs[6];
  int n_fn_attrs;

  /* the kernel or body being emitted */
  LLVMValueRef fn, args, kbegin, kend, T, pos;
  LLVMBasicBlockRef entry_bb;
  int decode;        /* T is the constant 1 */
  const char *mode;  /* "fwd" / "dec": the bodies' key prefix */
  const char *kmode; /* the per-node kernels' name prefix ("fwd", "dec", "lst") */
  /* the last-row entry (module.c): tail[i] = node i is computed for the last
   * row only; one_row = the node being emitted is such a node (decode
   * bodies; operands written in full are read at row n - 1, pos + n - 1) */
  const char *tail;
  int one_row;
  int src_node; /* the node being emitted is source-invariant (tfx_node.src_cached) */
  /* the batch entry (module.c, k_paged.c): every row has its own position
   * and KV block table (the body's pos argument is the tfx_kv_row array),
   * causal attention reads and writes the block pool; kv_block_bytes is
   * the bytes of one block */
  int batch;
  int64_t kv_block_bytes;

  /* kernels of the entry point being built, in order */
  tfx_cg_kernel *kernels;
  int n_kernels, cap_kernels;

  /* shared kernel bodies by key (one per distinct shape/attributes/mode) */
  char **body_keys;
  LLVMValueRef *body_fns;
  int n_bodies, cap_bodies;
  LLVMValueRef body;    /* the body the next tfx_cg_kernel_call calls */
  LLVMValueRef mk_abuf; /* the body's micro-kernel x buffer (k_microkernel.c), NULL until used */
  LLVMTypeRef t_body;

  char *err;
  size_t errlen;
  int failed;
} tfx_cg;

/* ---- errors ---- */
int tfx_cg_fail(tfx_cg *cg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- target.c ---- */
/* One-time, thread-safe initialization of LLVM's native target. */
int tfx_cg_init_llvm(char *err, size_t errlen);
/* The description of the host (or o->cpu / o->features on the host's
 * triple), or of o->triple when it names another machine (--target; its cpu
 * defaults to generic). */
int tfx_cg_target_resolve(const tfx_target_options *o, tfx_cg_target *t, char *err, size_t errlen);
/* The code variants of o (--mcpu=A,B,...: one per CPU, in order; o itself
 * when its cpu names one or none): fills v[0..n) with o's options and each
 * CPU (pointing into buf) and returns n, or -1 (too many, an empty name). */
#define TFX_CG_MAX_VARIANTS 8
int tfx_cg_split_cpus(const tfx_target_options *o, tfx_target_options *v, char *buf, size_t buflen, char *err,
                      size_t errlen);
/* The description of any triple LLVM has a target for (its target must be
 * initialized: the native one is by tfx_cg_init_llvm): copies triple, cpu and
 * features (NULL: "") into t and derives the rest; -1 with a message when
 * LLVM has no such target or tfxc cannot describe its architecture. */
int tfx_cg_target_describe(tfx_cg_target *t, const char *triple, const char *cpu, const char *features, int opt_level,
                           char *err, size_t errlen);
void tfx_cg_target_free(tfx_cg_target *t);
/* A target machine for t; pic selects position-independent code, jit the
 * JIT code model. */
LLVMTargetMachineRef tfx_cg_target_machine(const tfx_cg_target *t, int pic, int jit, char *err, size_t errlen);

/* ---- module.c ---- */
/* Builds the whole module (kernels, entries, descriptor) for a planned graph
 * into a new module of ctx. weights_symbol: the AOT blob symbol to reference,
 * or NULL (JIT: descriptor weights NULL). */
/* descriptor.c: the C identifier of a model name, as the generated header
 * spells it (non-alphanumerics become '_', a leading digit gets a '_'
 * prefix): `<ident>_descriptor` and the blob `<ident>_weights_blob`. */
void tfx_cg_c_identifier(const char *name, char *buf, size_t len);
int tfx_cg_build_module(const tfx_graph *g, const tfx_cg_target *t, LLVMContextRef ctx, LLVMTargetMachineRef tm,
                        const char *weights_symbol, LLVMModuleRef *out, char *err, size_t errlen);
/* Runs default<O%d> over the module. */
int tfx_cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level, char *err, size_t errlen);

/* ---- descriptor.c ---- */
typedef struct tfx_cg_entry_fns {
  LLVMValueRef forward, decode, last; /* last: NULL when the model has no last-row entry */
  LLVMValueRef batch;                 /* NULL when the model cannot run batched (cg->kv_block_bytes: its block) */
} tfx_cg_entry_fns;
int tfx_cg_emit_descriptor(tfx_cg *cg, const tfx_cg_entry_fns *e, const char *weights_symbol);
/* Records the weights blob's tfx_checksum64 in the descriptor of an emitted
 * module (AOT: the blob is known when the object is written). */
int tfx_cg_set_weights_checksum(LLVMModuleRef mod, const tfx_cg_target *t, const char *model_name, uint64_t sum,
                                char *err, size_t errlen);
/* The descriptor fields the graph determines. */
int tfx_cg_model_shape(const tfx_graph *g, int32_t *input_kind, int32_t *input_width, int32_t *output_width,
                       int32_t *vocab, int32_t *has_kv, char *err, size_t errlen);
/* Marks in live[n_nodes] the nodes the output depends on; -1 when an
 * operand is not an earlier node (nothing else may be trusted then). */
int tfx_cg_mark_live(const tfx_graph *g, char *live, char *err, size_t errlen);

/* ---- cg_ir.c: IR helpers ---- */
LLVMValueRef tfx_cg_i64(tfx_cg *cg, int64_t v);
LLVMValueRef tfx_cg_i32(tfx_cg *cg, int32_t v);
/* A float constant of type ty (f32, f64 or a vector of f32: splat). */
LLVMValueRef tfx_cg_fconst(tfx_cg *cg, LLVMTypeRef ty, double v);
LLVMValueRef tfx_cg_splat(tfx_cg *cg, LLVMValueRef scalar);
/* An alloca in the function's entry block (so SROA promotes it). */
LLVMValueRef tfx_cg_alloca(tfx_cg *cg, LLVMTypeRef ty, const char *name);
LLVMValueRef tfx_cg_alloca_array(tfx_cg *cg, LLVMTypeRef elem, int64_t count, const char *name);
/* Index arithmetic (nsw). */
LLVMValueRef tfx_cg_add(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef tfx_cg_sub(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef tfx_cg_mul(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef tfx_cg_addc(tfx_cg *cg, LLVMValueRef a, int64_t c);
LLVMValueRef tfx_cg_mulc(tfx_cg *cg, LLVMValueRef a, int64_t c);
LLVMValueRef tfx_cg_smin(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b);
/* &base[idx] for float/int32 elements (idx i64). */
LLVMValueRef tfx_cg_fptr(tfx_cg *cg, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef tfx_cg_fptrc(tfx_cg *cg, LLVMValueRef base, int64_t idx);
LLVMValueRef tfx_cg_byteptr(tfx_cg *cg, LLVMValueRef base, int64_t bytes);
/* A read prefetch (llvm.prefetch, into all cache levels) of the line at
 * base + bytes; the address may lie past base's object (no inbounds GEP). */
void tfx_cg_prefetch(tfx_cg *cg, LLVMValueRef base, int64_t bytes);
/* How far ahead the int8 decode kernels (k_linear_q8.c) prefetch their
 * weight rows: schedule { prefetch = N } bytes, none for `none`, and under
 * `auto` (the default) TFX_CG_INT8_PREFETCH, or TFX_CG_INT8_PREFETCH_DRAM
 * where the decode reads two streams per core (tfx_cg_decode_streams: the
 * weights come from DRAM). Measured, 2 threads, alternated runs, tg64 t/s:
 * the TinyLlama-1.1B shape (two streams), 4096 / 3072 / 2048 bytes: q4_0
 * 46-50 / 52.5-53.0 / 52.3-52.8, q8_0 29.2-29.6 / 30.0-30.3 / 28.6-29.2,
 * q4_k_m 47.5-48.8 / 49.7-50.0 / 49.7-51.1; the stories110M shape (one
 * stream, its weights in the host's L3), 4096 / 3072: q8_0 268-301 /
 * 244-268, q4_0 578-602 / 546-597, q4_k_m 463-471 / 457-462. */
#define TFX_CG_INT8_PREFETCH 4096
#define TFX_CG_INT8_PREFETCH_DRAM 3072
int64_t tfx_cg_decode_prefetch(const tfx_cg *cg);
/* The weight streams (1 or 2) the decode kernels (the int8 tiles of
 * k_linear_q8.c, the packed one-row tile of k_microkernel.c) read per core:
 * schedule { streams }, or for auto two when the model's weights are at
 * least TFX_STREAMS_AUTO_BYTES (they come from DRAM, not a cache). */
int tfx_cg_decode_streams(const tfx_cg *cg);
/* How far ahead (bytes) the packed GEMM tile of one row (k_microkernel.c)
 * prefetches its panel of elem_bytes-wide weights: N with
 * schedule { prefetch = N }, none for `none`; under `auto`,
 * TFX_CG_HALF_PREFETCH for 2-byte weights (f16, bf16) and none for f32. */
#define TFX_CG_HALF_PREFETCH 2048
int64_t tfx_cg_panel_prefetch(const tfx_cg *cg, int64_t elem_bytes);
LLVMValueRef tfx_cg_loadf(tfx_cg *cg, LLVMValueRef ptr);
void tfx_cg_storef(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptr);
/* A private constant global `name` (unnamed_addr) holding init, aligned to
 * align bytes (0: the type's). A global of that name with the same
 * initializer is returned instead (constants are uniqued, so pointer equality
 * is content equality); another one keeps its name and the new global gets a
 * suffix from LLVM. */
LLVMValueRef tfx_cg_const_global(tfx_cg *cg, const char *name, LLVMValueRef init, unsigned align);

/* Loops: for (iv = start; iv < end; iv += step). */
typedef struct tfx_cg_loop {
  LLVMValueRef iv;
  LLVMBasicBlockRef header, exit;
  int64_t step;
} tfx_cg_loop;
void tfx_cg_for(tfx_cg *cg, tfx_cg_loop *l, LLVMValueRef start, LLVMValueRef end, int64_t step, const char *name);
void tfx_cg_for_end(tfx_cg *cg, tfx_cg_loop *l);
/* if (cond) { ... } : tfx_cg_if opens the then-block, tfx_cg_else switches to
 * the else-block (optional), tfx_cg_endif closes. */
typedef struct tfx_cg_if {
  LLVMBasicBlockRef then_bb, else_bb, merge;
  int has_else;
} tfx_cg_if;
void tfx_cg_if_begin(tfx_cg *cg, tfx_cg_if *c, LLVMValueRef cond, const char *name);
void tfx_cg_if_else(tfx_cg *cg, tfx_cg_if *c);
void tfx_cg_if_end(tfx_cg *cg, tfx_cg_if *c);

/* Vector memory: nvalid (compile time, 1..W) lanes starting at ptr; lanes
 * beyond read as 0 and are not written. */
LLVMValueRef tfx_cg_vload(tfx_cg *cg, LLVMValueRef ptr, int nvalid);
void tfx_cg_vstore(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptr, int nvalid);
/* Constant mask of the first nvalid lanes; dynamic mask of lanes < n (i64). */
LLVMValueRef tfx_cg_mask_const(tfx_cg *cg, int nvalid);
LLVMValueRef tfx_cg_mask_dyn(tfx_cg *cg, LLVMValueRef n);
LLVMValueRef tfx_cg_vload_masked(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef mask);
void tfx_cg_vstore_masked(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask);

/* Calls an intrinsic by name, overloaded on the given types. */
LLVMValueRef tfx_cg_intrinsic(tfx_cg *cg, const char *name, LLVMTypeRef *over, int n_over, LLVMValueRef *args,
                              int n_args);
/* a * b + c: llvm.fma when the target has FMA, else llvm.fmuladd. */
LLVMValueRef tfx_cg_fma(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
LLVMValueRef tfx_cg_hsum(tfx_cg *cg, LLVMValueRef v); /* reassociating reduction */
LLVMValueRef tfx_cg_hmax(tfx_cg *cg, LLVMValueRef v);
LLVMValueRef tfx_cg_fmax(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b); /* maxnum */
LLVMValueRef tfx_cg_sqrt(tfx_cg *cg, LLVMValueRef v);

/* Chunks over n (static) floats: fn(col, nvalid) for col = 0, W, 2W, ...
 * with a loop over the full chunks and one tail call with nvalid < W. */
typedef void (*tfx_cg_chunk_fn)(tfx_cg *cg, void *ctx, LLVMValueRef col, int nvalid);
void tfx_cg_chunks(tfx_cg *cg, int64_t n, tfx_cg_chunk_fn fn, void *ctx);

/* ---- kernels (kernel.c) ----
 * A kernel is split in two: a shared *body*
 *   void body(ptr p0, ptr p1, ptr p2, ptr p3, i64 T, i64 pos, i64 begin, i64 end)
 * holding the loops, generated once per distinct key (op, shapes, attributes,
 * mode: all nodes of the same shape share it, which keeps compile time low),
 * and a per-node kernel `void k(const void *args, i64 begin, i64 end)` that
 * computes the node's pointers from the argument block and compile-time
 * offsets and calls the body. In a decode body T is the constant 1. */
typedef enum { TFX_CG_PTR_NONE, TFX_CG_PTR_VALUE, TFX_CG_PTR_KV, TFX_CG_PTR_OUTPUT, TFX_CG_PTR_ARENA } tfx_cg_ptr_kind;
typedef struct tfx_cg_ptr {
  tfx_cg_ptr_kind kind;
  int node;       /* VALUE: the node whose value it addresses */
  int64_t offset; /* KV: byte offset in the KV cache; ARENA: in the arena */
} tfx_cg_ptr;
#define TFX_CG_VAL(id) ((tfx_cg_ptr){TFX_CG_PTR_VALUE, (id), 0})
#define TFX_CG_KVAT(off) ((tfx_cg_ptr){TFX_CG_PTR_KV, -1, (off)})
#define TFX_CG_OUT ((tfx_cg_ptr){TFX_CG_PTR_OUTPUT, -1, 0})
#define TFX_CG_ARENAAT(off) ((tfx_cg_ptr){TFX_CG_PTR_ARENA, -1, (off)})
#define TFX_CG_NONE ((tfx_cg_ptr){TFX_CG_PTR_NONE, -1, 0})
/* Selects the body of `key` (the current mode is added to it) for the next
 * tfx_cg_kernel_call. Returns 1 when the body is new: the builder is then
 * inside it (cg->fn, kbegin, kend, T, pos set; tfx_cg_body_ptr gives the
 * pointers) and the caller emits it and calls tfx_cg_body_end. Returns 0 when
 * it already exists, -1 on failure. */
int tfx_cg_body_begin(tfx_cg *cg, const char *key);
/* The same for the body of node n's kernel: the key is `key` (the kernel's
 * kind and shapes, and what it derives from other nodes) followed by n's
 * attribute key (tfx_node_attr_key: every attribute its op reads, from
 * ir/ops.h), so two nodes differing in any attribute never share a body. A
 * body keyed by its own parameters only (a helper such as the KV store, the
 * output copy) uses tfx_cg_body_begin. */
int tfx_cg_body_begin_node(tfx_cg *cg, const tfx_node *n, const char *key);
LLVMValueRef tfx_cg_body_ptr(tfx_cg *cg, int i);
void tfx_cg_body_end(tfx_cg *cg);
/* Emits the node's kernel: work range per_t * T + fixed items, calling the
 * selected body with the four pointers. */
void tfx_cg_kernel_call(tfx_cg *cg, const tfx_node *n, const char *what, int64_t per_t, int64_t fixed,
                        const tfx_cg_ptr ptrs[4]);
/* The same with up to TFX_CG_BODY_PTRS pointers (a body has that many
 * pointer parameters; tfx_cg_body_ptr(cg, i) for i < TFX_CG_BODY_PTRS). */
#define TFX_CG_BODY_PTRS 10
void tfx_cg_kernel_call_n(tfx_cg *cg, const tfx_node *n, const char *what, int64_t per_t, int64_t fixed,
                          const tfx_cg_ptr *ptrs, int n_ptrs);
void tfx_cg_bodies_free(tfx_cg *cg);
/* Loads a field of the argument block. */
LLVMValueRef tfx_cg_arg(tfx_cg *cg, int field);
/* The address of a node's value: INPUT, OUTPUT, a param or its arena slot
 * (in a one-row kernel, the last row of a value written in full). */
LLVMValueRef tfx_cg_value_ptr(tfx_cg *cg, int node_id);
/* The same from the value's first row, in every kernel. */
LLVMValueRef tfx_cg_value_base(tfx_cg *cg, int node_id);
/* The address of a SLICE view: its producer's value + M * (columns before the segment). */
LLVMValueRef tfx_cg_slice_ptr(tfx_cg *cg, const tfx_node *n);
/* 1 when the kernel being emitted computes one row and node_id's storage
 * holds all n rows (written by a full kernel of the last-row entry). */
int tfx_cg_stored_full(const tfx_cg *cg, int node_id);
/* Rows of a value (last dim = columns) with the current T; and as per_t/fixed. */
LLVMValueRef tfx_cg_rows(tfx_cg *cg, const tfx_node *n);
void tfx_cg_rows_split(const tfx_node *n, int64_t *per_t, int64_t *fixed);
void tfx_cg_set_fn_attrs(tfx_cg *cg, LLVMValueRef fn);

/* ---- k_paged.c: per-row positions and the paged KV cache (batch entry) ---- */
/* The nodes whose batch-entry bodies differ from forward's (they read
 * positions or the paged cache): bodies keyed "bat"; the others (the GEMMs
 * without a RoPE epilogue, norms, activations) share forward's bodies. */
int tfx_cg_batch_positional(const tfx_node *n);
/* The position of row `row` (i64) of the body being emitted: pos + row, or
 * in the batch entry the row's own tfx_kv_row.pos. */
LLVMValueRef tfx_cg_row_pos(tfx_cg *cg, LLVMValueRef row);
/* The batch entry: row's block table (tfx_kv_row.blocks). */
LLVMValueRef tfx_cg_row_blocks(tfx_cg *cg, LLVMValueRef row);
/* The batch entry: &pool_part[position p] where pool_part is a node's K or V
 * rows inside block 0 of the pool (rows of row_bytes): pool_part +
 * blocks[p / B] * kv_block_bytes + (p % B) * row_bytes. */
LLVMValueRef tfx_cg_paged_row(tfx_cg *cg, LLVMValueRef pool_part, LLVMValueRef blocks, LLVMValueRef p,
                              int64_t row_bytes);
/* The byte offset of node n's K rows inside a block (V follows after B rows). */
int64_t tfx_cg_kv_block_offset(const tfx_graph *g, const tfx_node *n);
/* Whether the live graph can run as a batch entry (every node with T
 * row-wise or a causal / static-memory attention the ROW schedule runs, token
 * input); *block_bytes gets a KV block's size. 0 when it cannot. */
int tfx_cg_batch_supported(const tfx_graph *g, const char *live, int (*row_wise)(const tfx_graph *, const tfx_node *),
                           int64_t *block_bytes);

/* ---- cg_math.c: inline vector math (any f32 scalar or vector type) ---- */
LLVMValueRef tfx_cg_exp(tfx_cg *cg, LLVMValueRef x);
LLVMValueRef tfx_cg_sigmoid(tfx_cg *cg, LLVMValueRef x);
LLVMValueRef tfx_cg_erf(tfx_cg *cg, LLVMValueRef x);
LLVMValueRef tfx_cg_gelu_erf(tfx_cg *cg, LLVMValueRef x);
LLVMValueRef tfx_cg_gelu_tanh(tfx_cg *cg, LLVMValueRef x);
LLVMValueRef tfx_cg_tanh(tfx_cg *cg, LLVMValueRef x);
/* cap * tanh(x / cap) (Gemma 2's soft-capping); x itself when cap <= 0 */
LLVMValueRef tfx_cg_softcap(tfx_cg *cg, LLVMValueRef x, double cap);
/* A fused epilogue's activation (tfx_act_kind) of v; v itself for none. */
LLVMValueRef tfx_cg_act(tfx_cg *cg, int act, LLVMValueRef v);
/* sin and cos of a scalar double (inline polynomial, no libm). */
void tfx_cg_sincos_f64(tfx_cg *cg, LLVMValueRef x, LLVMValueRef *s, LLVMValueRef *c);

/* ---- the per-op kernel emitters: each adds its kernels to cg->kernels ---- */
/* the emit column of ir/ops.h: tfx_cg_emit_<token> of every op, defined in
 * backend/k_*.c (source, view and folded in backend/module.c) */
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  int tfx_cg_emit_##emit(tfx_cg *cg, const tfx_node *n);
#include "../ir/ops.h"
#undef TFX_OP
int tfx_cg_emit_copy(tfx_cg *cg, const tfx_node *n, int src_id);
/* Copies node src's value into n's own value (same shape; k_elementwise.c). */
int tfx_cg_emit_value_copy(tfx_cg *cg, const tfx_node *n, int src_id);
/* k_norm.c: one row of `cols` floats x normalized into y (may be x), gain g,
 * bias (layer), as the norm kernels do. */
void tfx_cg_norm_row(tfx_cg *cg, LLVMValueRef x, LLVMValueRef y, LLVMValueRef g, LLVMValueRef bias, int64_t cols,
                     double eps, int layer);
/* k_rope.c, the RoPE of every rotating kernel: the inverse frequencies
 * tfx_rope_inv_freq(theta, k, rd), k < rd/2, as a constant f64 array (NULL
 * and cg failed when out of memory); sin and cos (f32) of the angle
 * p * table[k] (p: the position as f64, k: i64); and a loop over the pairs
 * k < half calling fn with each pair's sin and cos. */
LLVMValueRef tfx_cg_rope_table(tfx_cg *cg, double theta, int64_t rd);
void tfx_cg_rope_sincos(tfx_cg *cg, LLVMValueRef table, LLVMValueRef p, LLVMValueRef k, LLVMValueRef *s,
                        LLVMValueRef *c);
typedef void (*tfx_cg_rope_fn)(tfx_cg *cg, void *ctx, LLVMValueRef k, LLVMValueRef s, LLVMValueRef c);
void tfx_cg_rope_pairs(tfx_cg *cg, LLVMValueRef table, LLVMValueRef p, int64_t half, tfx_cg_rope_fn fn, void *ctx);
/* ATTENTION's body emitters, one per schedule (tfx_attn_sched; the
 * schedule an entry runs is tfx_attn_schedule_of): pointers q, keys, values
 * (the cache when causal), y; items (row, head) pairs of q; q and k rows
 * TFX_DIM_T or static. 0, or -1 after tfx_cg_fail.
 *  - k_attention.c: ROW, one query row and head per item;
 *  - k_flash_attention.c: FLASH, tiles of W query rows (forward entry, no
 *    sparse pattern). */
int tfx_cg_emit_row_attention_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows);
int tfx_cg_emit_flash_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows);
/* BLOCK_SPARSE: the flash tiles over the key groups of tfx_cg_bs_table (k_flash_attention.c) */
int tfx_cg_emit_block_sparse_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows);
/* ---- k_tiny_heads.c: the tiny-head decode kernel (d <= TFX_ATTN_TINY_D, vectorized across keys) ---- */
/* 1 when node n's attention in the entry being emitted is the tiny-head kernel */
int tfx_cg_tiny_heads_chosen(const tfx_cg *cg, const tfx_node *n);
int tfx_cg_emit_tiny_heads(tfx_cg *cg, const tfx_node *n, tfx_cg_ptr keys, tfx_cg_ptr vals);
/* ---- k_split_decode.c: split decode (flash-decoding) in the decode entry ---- */
/* The parts of node n's split decode in the entry being emitted (its
 * attn_split in the decode entry, when tfx_attn_split_fits), 0: ROW. */
int tfx_cg_split_decode_parts(const tfx_cg *cg, const tfx_node *n);
/* [*jlo, *jhi) narrowed to part `part` (i64) of `splits` equal parts. */
void tfx_cg_split_range(tfx_cg *cg, int splits, LLVMValueRef part, LLVMValueRef *jlo, LLVMValueRef *jhi);
/* &record of (head h, part) in the scratch rows of y: m, l, then d floats of o. */
LLVMValueRef tfx_cg_split_record(tfx_cg *cg, const tfx_node *n, LLVMValueRef y, LLVMValueRef h, LLVMValueRef part,
                                 int splits);
/* The partials' body (k_attention.c: the ROW body with items (head, part)). */
int tfx_cg_emit_split_partials_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, int splits);
/* The node's two kernels: the partials over (head, part), the merge over heads. */
int tfx_cg_emit_split_decode(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, tfx_cg_ptr keys,
                             tfx_cg_ptr vals);

/* ---- k_attn_softmax.c: the online softmax of every attention schedule ---- */
typedef struct tfx_cg_osm {
  LLVMTypeRef ty;    /* t_f32: one query (row schedules); t_vf: W queries lane-wise (flash) */
  LLVMValueRef m, l; /* allocas of ty: the running max and sum */
} tfx_cg_osm;
/* One step's work besides the max, sum and rescale factor the step computes. */
typedef struct tfx_cg_osm_block {
  LLVMValueRef bmax; /* the block's max score (ty; -inf when all its keys are masked) */
  /* p_j = e^(s_j - m_use) of the block's keys, kept for accumulate; returns lsum + sum_j p_j */
  LLVMValueRef (*probs)(tfx_cg *cg, void *ctx, LLVMValueRef m_use, LLVMValueRef lsum);
  /* o *= corr (NULL: accumulate applies corr itself), then o += sum_j p_j v_j */
  void (*rescale)(tfx_cg *cg, void *ctx, LLVMValueRef corr);
  void (*accumulate)(tfx_cg *cg, void *ctx, LLVMValueRef corr);
  void *ctx;
} tfx_cg_osm_block;
void tfx_cg_osm_init(tfx_cg *cg, tfx_cg_osm *s, LLVMTypeRef ty); /* the allocas */
void tfx_cg_osm_reset(tfx_cg *cg, const tfx_cg_osm *s);          /* m = -inf, l = 0: a new query */
void tfx_cg_osm_step(tfx_cg *cg, const tfx_cg_osm *s, const tfx_cg_osm_block *blk);
/* After the last step: *any = l > 0 (per lane), returns l where any, else 1
 * (y = any ? o / l : 0). */
LLVMValueRef tfx_cg_osm_denominator(tfx_cg *cg, const tfx_cg_osm *s, LLVMValueRef *any);
/* The row schedules' key walk for one query at position qi over keys
 * [jlo, jhi) in blocks of kb: scores to a stack buffer (ALiBi and the mask
 * applied), the online-softmax step, o += p_j v_j. The caller zeroes o. */
typedef struct tfx_cg_attn_row {
  const tfx_node *n;
  /* the scaled score of key j (f32); o *= corr (f32); o += p_j v_j (pj f32) */
  LLVMValueRef (*score)(tfx_cg *cg, void *ctx, LLVMValueRef j);
  void (*rescale)(tfx_cg *cg, void *ctx, LLVMValueRef corr);
  void (*accumulate)(tfx_cg *cg, void *ctx, LLVMValueRef j, LLVMValueRef pj);
  void *ctx;
  /* T5's relative bias (a 4th ATTENTION operand), else NULL: relb points at
   * the head's column of the table [B, H] (stride H), buckets at the i32
   * table of tfx_cg_attn_t5_buckets (entry j - i + rel_span - 1) */
  LLVMValueRef relb, buckets;
  int64_t rel_span, rel_stride;
  /* a key mask (ATTENTION's key_mask operand: one f32 or i32 per key, 0
   * drops the key), else NULL */
  LLVMValueRef kmask;
  int kmask_i32;
  /* a gathered walk (a dilated pattern, tfx_attn_gather): kstride >= 2, the
   * walk's range [jlo, jhi) holds indices m of the keys kres + m * kstride
   * (kres: i64, the query's residue class), which the pattern allows but
   * for the window (left to the range): no mask; 0 or 1: keys j themselves */
  int64_t kstride;
  LLVMValueRef kres;
  /* set by tfx_cg_attn_row_init */
  tfx_cg_osm sm;
  int64_t kb;
  LLVMValueRef bmax, lsum, buf;
} tfx_cg_attn_row;
void tfx_cg_attn_row_init(tfx_cg *cg, tfx_cg_attn_row *r, int64_t kb); /* the allocas */
void tfx_cg_attn_row_walk(tfx_cg *cg, const tfx_cg_attn_row *r, LLVMValueRef qi, LLVMValueRef jlo, LLVMValueRef jhi,
                          LLVMValueRef slope);
/* the same without resetting the softmax state first: several key ranges of one row */
void tfx_cg_attn_row_walk_more(tfx_cg *cg, const tfx_cg_attn_row *r, LLVMValueRef qi, LLVMValueRef jlo,
                               LLVMValueRef jhi, LLVMValueRef slope);
/* A gathered walk (a dilated pattern, gather = k >= 2): sets r's kstride and
 * kres = qi mod k and turns the key range [*jlo, *jhi) into the range of
 * indices m of the keys kres + m * k inside it. */
void tfx_cg_attn_row_gather(tfx_cg *cg, tfx_cg_attn_row *r, int64_t gather, LLVMValueRef qi, LLVMValueRef *jlo,
                            LLVMValueRef *jhi);

/* ---- k_attn_mask.c: the options of ATTENTION / MLA_ATTENTION in IR ---- */
/* T5's buckets of rel = j - i for |rel| < *span (ATTENTION with a bias
 * table): a constant [2 * span - 1] i32 table, entry rel + span - 1. */
LLVMValueRef tfx_cg_attn_t5_buckets(tfx_cg *cg, const tfx_node *n, int64_t *span);
/* A body-key fragment naming the node's alibi and sparse options. */
void tfx_cg_attn_key(const tfx_node *n, int64_t max_seq, char *buf, size_t len);
/* Packed sequences (k_segments.c): the segment [lo, hi) of row `row` among
 * rows 0..n-1 of the i32 segment ids seg, the run of rows with its id. */
void tfx_cg_segment_bounds(tfx_cg *cg, LLVMValueRef seg, LLVMValueRef row, LLVMValueRef n, LLVMValueRef *lo,
                           LLVMValueRef *hi);
/* The keys [lo, hi) query position i must visit among 0..nkeys (narrowed for
 * windowed patterns; hi may be <= lo). */
void tfx_cg_attn_key_range(tfx_cg *cg, const tfx_node *n, LLVMValueRef i, LLVMValueRef nkeys, LLVMValueRef *lo,
                           LLVMValueRef *hi);
/* i1: key j allowed for query i by the sparse pattern (j within the key
 * range); NULL when the range alone is exact. */
LLVMValueRef tfx_cg_attn_allowed(tfx_cg *cg, const tfx_node *n, LLVMValueRef i, LLVMValueRef j);
/* BigBird's random-block table ([*nb blocks x random] i32 constants, row qb
 * the draws of query block qb), shared by the row and block-sparse masks. */
LLVMValueRef tfx_cg_attn_bigbird_table(tfx_cg *cg, const tfx_node *n, int64_t *nb);

/* ---- k_block_sparse.c: the block-sparse schedule's table and lane-wise mask ---- */
/* i1 x W: key j (scalar i64) allowed for the W query positions qi_v (<W x i32>)
 * by the pattern, window included; NULL without a pattern. */
LLVMValueRef tfx_cg_attn_allowed_v(tfx_cg *cg, const tfx_node *n, LLVMValueRef qi_v, LLVMValueRef j);
/* The runs of non-empty key groups per aligned query tile (k_block_sparse.c). */
typedef struct tfx_cg_bs_table {
  LLVMValueRef off, lo, hi; /* i32 globals */
  int64_t nqb;              /* query tiles */
  int qt, kg;               /* query positions per tile, keys per group */
} tfx_cg_bs_table;
int tfx_cg_bs_table_get(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, tfx_cg_bs_table *t);
/* The row schedules' key walk of one query at position qi over the runs the
 * table keeps for its tile, each clipped to [jlo, jhi) (the softmax state
 * reset first, as tfx_cg_attn_row_walk). */
void tfx_cg_bs_row_walk(tfx_cg *cg, const tfx_cg_bs_table *t, const tfx_cg_attn_row *walk, LLVMValueRef qi,
                        LLVMValueRef jlo, LLVMValueRef jhi, LLVMValueRef slope);
/* The table of the gathered form of a dilated pattern (tfx_attn_gather; k >= 2): over the compressed
 * positions of one residue class (i / k), the same for every class. */
int tfx_cg_bs_table_gathered(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, tfx_cg_bs_table *t);
/* the runs [rbeg, rend) of the tile holding query position qpos */
void tfx_cg_bs_runs(tfx_cg *cg, const tfx_cg_bs_table *t, LLVMValueRef qpos, LLVMValueRef *rbeg, LLVMValueRef *rend);
/* run r: its keys [jlo, jhi) (jhi not clamped to the keys present) and whether every group is full */
void tfx_cg_bs_run(tfx_cg *cg, const tfx_cg_bs_table *t, LLVMValueRef r, LLVMValueRef *jlo, LLVMValueRef *jhi,
                   LLVMValueRef *full);
/* The ALiBi slope (f32) of head h (i64), NULL without ALiBi. */
LLVMValueRef tfx_cg_attn_slope(tfx_cg *cg, const tfx_node *n, LLVMValueRef h);
/* A scalar score s of query i and key j with ALiBi (slope, may be NULL:
 * - slope * |i - j|) and the sparse mask (-inf when not allowed) applied. */
/* s with ALiBi alone (- slope * |i - j|; slope may be NULL: s). */
LLVMValueRef tfx_cg_attn_alibi(tfx_cg *cg, const tfx_node *n, LLVMValueRef s, LLVMValueRef i, LLVMValueRef j,
                               LLVMValueRef slope);
LLVMValueRef tfx_cg_attn_score_adjust(tfx_cg *cg, const tfx_node *n, LLVMValueRef s, LLVMValueRef i, LLVMValueRef j,
                                      LLVMValueRef slope);
/* k_positions.c: POSITIONS, SINUSOIDAL; k_moe.c: MOE_ROUTE, MOE_UP, MOE_DOWN */
/* Writes (add = 0) or adds (add = 1) the sinusoidal table's row at position p
 * (f64) into yrow[0, D): sin / cos of p * base^(-2i/D), rounded to f32. */
int tfx_cg_sinusoidal_row(tfx_cg *cg, double base, int64_t D, LLVMValueRef p, LLVMValueRef yrow, int add);

/* ---- weight_stream.c: how kernels read weights ----
 * Every weight operand a kernel reads (linear / fused-linear w, MoE up/down
 * and router weights, MATMUL's b, MLA's wkv_b, embedding tables) is read
 * through a stream made from its node: its format (ir/dtype.c) and layout
 * (row-major, or k-major panels of fx.panel rows: pack_weights) are the
 * stream's business, and the kernel gets <W x float> vectors already decoded
 * and scaled. A new weight format is an entry of the format table, its
 * packing (passes/fold_weights.c) and one tfx_cg_wformat below.
 * Row-major access goes through row cursors (row r, a few rows further, an
 * offset along the row); packed access through panel cursors (the panel of
 * pr stored rows from a first row, then (k, j) positions in it). For f32
 * every call emits exactly the address arithmetic and load the kernels
 * always had. */
typedef struct tfx_cg_wformat tfx_cg_wformat;
typedef struct tfx_cg_wstream {
  const tfx_node *w; /* the weight's node (a PARAM, or an f32 value: MATMUL's b) */
  const tfx_cg_wformat *fmt;
  LLVMValueRef base; /* its body pointer */
  int64_t R, K;      /* rows (leading dims flattened) and their length (the last dim) */
  int panel;         /* fx.panel of a packed weight: rows per panel (0: row-major) */
  int block;         /* a block format's elements per block (0: an element format) */
  int64_t block_bytes;
} tfx_cg_wstream;
typedef struct tfx_cg_wrow {
  LLVMValueRef ptr;   /* the row's element 0 (or the element the cursor was moved to) */
  LLVMValueRef row;   /* its stored row (i64), kept only by formats with per-row state */
  LLVMValueRef state; /* the format's per-row state (a scale), or NULL */
  int64_t k0;         /* block formats: elements skipped (tfx_cg_ws_row_skip; ptr stays at the row) */
} tfx_cg_wrow;
typedef struct tfx_cg_wpanel {
  LLVMValueRef ptr;   /* the panel's element (0, 0): element (k, j) is at k * pr + j */
  LLVMValueRef state; /* the format's per-column state (the rows' scales), or NULL */
  int pr;             /* rows of the panel (its k-stride) */
} tfx_cg_wpanel;
typedef struct tfx_cg_wpos {
  LLVMValueRef off; /* k * pr + j */
  int64_t j;
} tfx_cg_wpos;
/* 0 when the backend can read weight w (its format has a stream); -1 with
 * a message naming the param and its format. */
int tfx_cg_ws_check(const tfx_node *w, char *err, size_t errlen);
/* "" for f32, else a body-key fragment naming w's format (bodies differ). */
const char *tfx_cg_ws_key(const tfx_node *w);
/* The stream of weight w read at body pointer base. */
void tfx_cg_ws_init(tfx_cg *cg, tfx_cg_wstream *s, const tfx_node *w, LLVMValueRef base);
/* The cursor of row r (i64) of a row-major weight; the one j rows further;
 * the one kf elements along the row (kf a multiple of the format's block). */
tfx_cg_wrow tfx_cg_ws_row(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r);
tfx_cg_wrow tfx_cg_ws_row_next(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, int64_t j);
tfx_cg_wrow tfx_cg_ws_row_skip(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, int64_t kf);
/* The cursor j (i64) rows further. */
tfx_cg_wrow tfx_cg_ws_row_nextv(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, LLVMValueRef j);
/* Elements c .. c + nvalid - 1 (c i64) of the cursor's row, decoded and
 * scaled (lanes past nvalid are 0). For a block format, c (plus the
 * cursor's skip) must be a multiple of W: every kernel reads rows in
 * vectors from multiples of W (tfx_cg_chunks, the GEMM's K steps). */
LLVMValueRef tfx_cg_ws_row_vec(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, LLVMValueRef c, int nvalid);
/* Elements c .. of row r: tfx_cg_ws_row_vec of tfx_cg_ws_row(r) in one step. */
LLVMValueRef tfx_cg_ws_vec(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r, LLVMValueRef c, int nvalid);
/* Panel p (i64) of the segment whose first stored row is sb, pr rows; the
 * panel width is the weight's fx.panel. */
tfx_cg_wpanel tfx_cg_ws_panel(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef p, int64_t sb, int pr);
/* Position (k, j) of a panel (j static); the vector of columns j + dj ..
 * j + dj + nvalid - 1 at that k, decoded and scaled. */
tfx_cg_wpos tfx_cg_ws_panel_at(tfx_cg *cg, const tfx_cg_wpanel *p, LLVMValueRef k, int64_t j);
LLVMValueRef tfx_cg_ws_panel_vec(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wpanel *p, const tfx_cg_wpos *at,
                                 int64_t dj, int nvalid);
/* The address of element off (i64) of a panel (prefetching). */
LLVMValueRef tfx_cg_ws_panel_ptr(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wpanel *p, LLVMValueRef off);
/* One scalar of a packed weight: element off (i64) of panel p, which
 * belongs to the panel's row jj (i64), decoded and scaled. */
LLVMValueRef tfx_cg_ws_panel_scalar(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wpanel *p, LLVMValueRef jj,
                                    LLVMValueRef off);

/* ---- k_linear.c: the GEMM y = x @ w^T every linear kernel runs ----
 * Work items are panels of TFX_CG_LIN_NB weight rows (output columns) of
 * one segment; an item walks the rows of x in blocks. Packed weights
 * (pack_weights: k-major panels of TFX_CG_LIN_NB rows, tfx_packed_index with
 * kc = 1) run the register-blocked micro-kernel of k_microkernel.c; row-major
 * weights (a weight shared with an embedding, or -O1 pipelines) run dot-product
 * tiles along K (blocks of TFX_CG_LIN_MR rows, then one row at a time). The
 * hooks wrap the inner product: the prologue transforms each x vector as it is
 * loaded; the epilogue receives each finished row of the panel (emitted once
 * per site, in a loop over the block's rows). Either kind reads the weights
 * through their stream (G->ws, weight_stream.c), whatever their format. */
#define TFX_CG_LIN_NB TFX_STATS_GROUP /* 32: the target description's pack.panel */
#define TFX_CG_LIN_MR 4
#define TFX_CG_GEMM_MAX_MR 16 /* rows of the largest micro-kernel tile */
typedef struct tfx_cg_row {
  int seg, nb, ngrp;               /* segment, panel columns, groups of W columns (static) */
  LLVMValueRef row;                /* the row of x / y (i64) */
  LLVMValueRef i;                  /* its index in the block of rows */
  LLVMValueRef col;                /* the panel's first output column within the segment (i64) */
  LLVMValueRef acc[TFX_CG_LIN_NB]; /* dot products of columns g*W.. as <W x float>; GLU: the gate */
  LLVMValueRef up[TFX_CG_LIN_NB];  /* GLU: the up projection */
  LLVMValueRef y;                  /* the output row (segment base + row * stride) */
} tfx_cg_row;
/* Lanes of group g of a row of nb columns. */
int tfx_cg_row_lanes(const tfx_cg *cg, const tfx_cg_row *r, int g);
typedef struct tfx_cg_gemm tfx_cg_gemm;
typedef struct tfx_cg_gemm_hooks {
  /* once per block of rows m .. m + mr - 1 (the rows past M are clamped to
   * M - 1), before its tiles: per-row state (the norm's statistics) */
  void (*block_begin)(tfx_cg *cg, const tfx_cg_gemm *G, LLVMValueRef m, int mr);
  /* once per tile row i (row index `row`), before its dot products */
  void (*row_begin)(tfx_cg *cg, const tfx_cg_gemm *G, int i, LLVMValueRef row);
  /* the x vector of tile row i at reduction index k (nvalid lanes) as loaded */
  LLVMValueRef (*x_load)(tfx_cg *cg, const tfx_cg_gemm *G, int i, LLVMValueRef xv, LLVMValueRef k, int nvalid);
  /* a finished output row of the panel: compute and store */
  void (*epilogue)(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_row *r);
} tfx_cg_gemm_hooks;
struct tfx_cg_gemm {
  const tfx_node *n;
  LLVMValueRef x, w, bias, y; /* body pointers (bias may be NULL) */
  LLVMValueRef M;             /* rows of x (i64) */
  int64_t K, R;               /* reduction length, weight rows */
  int packed, kc;             /* packed weights (k-major panels); kc: the row-major tiles' chunk */
  int prologue;               /* x_load transforms x (a norm prologue) */
  int glu;                    /* output column c of the item reads weight rows c and N + c */
  int planar;                 /* segment s is stored at y + M * (rows before s), row stride its rows */
  int n_segs;
  int64_t segs[TFX_MAX_SEGS]; /* weight rows per segment */
  unsigned perm;              /* segments computed in half-RoPE pair order (tfx_pair_row) */
  int perm_hd, perm_rd;
  const tfx_cg_gemm_hooks *hooks; /* NULL members use the defaults: none, none, + bias and store */
  void *ctx;                      /* the hooks' state */
  const tfx_cg_wstream *ws;       /* the weight's stream: set by tfx_cg_gemm_emit from n's operand 1 and w */
  int aq;   /* int8 dot products on quantized activations (tfx_node_act_quant: k_linear_q8.c; no stream) */
  void *q8; /* the int8 path's state (k_linear_q8.c) */
  /* TFX_CG_Q8_*: the int8 path in two kernels (tfx_cg_q8_staged): its rows
   * quantized into the node's workspace `work` (a body pointer), then the
   * GEMM reading them */
  int q8_stage;
  LLVMValueRef work;
  int unroll; /* one row (M = 1), fully unrolled: one work item of straight-line code (tfx_fl_unrolled) */
};
/* Emits the item loop of G into the current body; the number of work items
 * is tfx_cg_gemm_items(G). */
void tfx_cg_gemm_emit(tfx_cg *cg, const tfx_cg_gemm *G);
int64_t tfx_cg_gemm_items(const tfx_cg_gemm *G);
/* The kernel of G's node at int8 stage `stage` (TFX_CG_Q8_*, the current
 * body): a work item per row of x for TFX_CG_Q8_QUANT, else per panel. */
void tfx_cg_gemm_kernel_call(tfx_cg *cg, const tfx_cg_gemm *G, int stage, const tfx_cg_ptr *ptrs);
/* The row (column) of a segment computed at position q (i64) of a segment
 * in half-RoPE pair order: tfx_pair_row of ir.h, in IR. */
LLVMValueRef tfx_cg_pair_row(tfx_cg *cg, LLVMValueRef q, int hd, int rd);
/* The default epilogue: + bias (when G->bias), store. */
void tfx_cg_gemm_store(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_row *r);
/* The panel an item computes: segment, its rows (static), the panel index
 * within the segment (i64), rows of x, the segment's output base and row
 * stride, the block buffers ([TFX_CG_GEMM_MAX_MR][TFX_CG_LIN_NB] floats: the
 * finished dot products of a block of rows; GLU: gate and up). */
typedef struct tfx_cg_panel {
  int seg, nb;
  LLVMValueRef p, M, y;
  int64_t ld;
  LLVMValueRef blk, blku;
} tfx_cg_panel;
/* The epilogue of rows m .. m + rows - 1 of the block buffers (rows NULL:
 * the single row m). */
void tfx_cg_gemm_rows(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_panel *P, LLVMValueRef m, LLVMValueRef rows);

/* ---- k_linear_q8.c: the int8 dot-product panels (G->aq) ----
 * The current chunk of quantized rows of x (activations quantized per
 * TFX_ACT_QBLOCK, tfx_act_quant_block) against one row-major panel of a
 * q8_0 / q4_0 / q5_0 / q3_k / q4_k / q6_k / tq2_0 / i8 / zq weight: integer dot products per block, f32
 * accumulation, the block buffers filled for tfx_cg_gemm_rows. */
void tfx_cg_q8_panel(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_panel *P);
/* The whole GEMM of an int8 linear (G->aq): the rows of x quantized once per
 * call (in chunks), then tfx_cg_gemm_items_emit, whose panels are
 * tfx_cg_q8_panel. In two kernels (G->q8_stage): TFX_CG_Q8_QUANT, the work
 * items are rows of x, each quantized into the workspace G->work;
 * TFX_CG_Q8_GEMM, the panels read every row from there (each panel decoded
 * once per call, not once per chunk). */
enum { TFX_CG_Q8_ONE = 0, TFX_CG_Q8_QUANT = 1, TFX_CG_Q8_GEMM = 2 };
void tfx_cg_q8_emit(tfx_cg *cg, const tfx_cg_gemm *G);
/* 1 when node n's int8 linear runs in two kernels: it has a workspace
 * (tfx_node.work_offset, planned by plan_memory) and its rows of x in the
 * kernel being emitted are not known to be few (x: n's first operand). */
int tfx_cg_q8_staged(const tfx_cg *cg, const tfx_node *n);
/* The item loop of G (kbegin .. kend: segment and panel of each item). */
void tfx_cg_gemm_items_emit(tfx_cg *cg, const tfx_cg_gemm *G);
/* The int8 dot products without a GEMM (k_moe.c's experts): up to
 * tfx_cg_q8rows_slots rows of activations quantized into stack slots as the
 * int8 linears quantize theirs (per TFX_ACT_QBLOCK; row `row` of x : f32[.,
 * K] through hooks->x_load, called with a tfx_cg_gemm whose ctx is ctx),
 * then nx slots dotted with nw <= 8 consecutive rows row0 .. of a stored
 * row-major block weight at w (f32 sums[i * nw + k] for slot i and weight
 * row k) by the linears' decode kernels (dz on AVX512-VNNI when K / 32 is
 * even, else the one-row tiles): up to tfx_cg_q8rows_batch slots per call
 * (QFX for dz_rows' formats, each weight pair decoded once for them and
 * every slot's sums those it has alone; 1 otherwise).
 * tfx_cg_q8rows_reads: the formats with per-block activations
 * (q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, tq2_0) and K a multiple of the block.
 * new: the slots (at most `rows`, fewer when they would exceed the stack
 * budget of the linears' chunks, a multiple of `unit`, at least one unit),
 * allocated in the entry block; NULL after tfx_cg_fail. */
typedef struct tfx_cg_q8rows tfx_cg_q8rows;
int tfx_cg_q8rows_reads(tfx_dtype dt, int64_t K);
tfx_cg_q8rows *tfx_cg_q8rows_new(tfx_cg *cg, const tfx_node *w, int64_t K, int64_t rows, int64_t unit, LLVMValueRef x,
                                 const tfx_cg_gemm_hooks *hooks, void *ctx);
int64_t tfx_cg_q8rows_slots(const tfx_cg_q8rows *q);
int tfx_cg_q8rows_batch(const tfx_cg_q8rows *q);
void tfx_cg_q8rows_quant(tfx_cg *cg, tfx_cg_q8rows *q, LLVMValueRef slot, LLVMValueRef row);
void tfx_cg_q8rows_dots(tfx_cg *cg, tfx_cg_q8rows *q, const LLVMValueRef *slots, int nx, LLVMValueRef w,
                        LLVMValueRef row0, int nw, LLVMValueRef *sums);
void tfx_cg_q8rows_free(tfx_cg_q8rows *q);

/* ---- k_linear_s24.c: the 2:4 sparse weights ----
 * Whether the row-major tiles read stream s with the gathering kernel
 * (s24_f32 rows of whole blocks); then acc[i * nw + j] (allocas of <W x
 * float>) += x row i (xrow[i], through G's x_load hook) . weight row j
 * (cursors at their rows' starts) over all of K. */
int tfx_cg_s24_gathers(const tfx_cg *cg, const tfx_cg_wstream *s);
/* n (<= 32) lanes of an s24_q8_0 block, lane i kept when bit i of mask
 * (i32) is set, from v (<n / 2 x T>: the kept values of those lanes in
 * order, two per group of 4): lane i takes v[2 (i / 4)] when it is its
 * group's first kept lane, v[2 (i / 4) + 1] its second, else 0 (vector
 * selects under the mask's bits, or for 32 bytes without AVX-512BW's mask
 * registers, byte compares and and / or; vpexpandb's result on a valid
 * mask). */
LLVMValueRef tfx_cg_s24_expand(tfx_cg *cg, LLVMValueRef mask, LLVMValueRef v, int n);
/* The 32 signed codes (<32 x i8>) of the s24_q8_0 block at blk (22 bytes:
 * f16 d, u32 keep mask, 16 kept bytes) without vpexpandb: with AVX2 a
 * vpermd table lookup and one vpshufb (expand_permd), else
 * tfx_cg_s24_expand. */
LLVMValueRef tfx_cg_s24_codes(tfx_cg *cg, LLVMValueRef blk);
void tfx_cg_s24_dots(tfx_cg *cg, const tfx_cg_gemm *G, int mr, LLVMValueRef *xrow, int nw, const tfx_cg_wrow *wrow,
                     LLVMValueRef *acc);

/* ---- k_microkernel.c: the register-blocked tile on packed panels ----
 * A packed panel of pr weight rows (output columns) stores, for each k, the
 * pr weights w[c][k] contiguously. A tile of mr rows x nc columns keeps
 * mr x ceil(nc / W) vector accumulators (twice for GLU: gate and up) in
 * registers: for every k, the tile's weight vectors are loaded once and each
 * row's x[k] is broadcast into FMAs (outer products, no reductions). x goes
 * through a small stack buffer in chunks of TFX_CG_MK_KC (the prologue
 * applied there once per element, rows at a stride that avoids 4 KiB
 * aliasing). The finished tile is stored to blk / blku ([mr][TFX_CG_LIN_NB]),
 * which the epilogue reads by rows. */
#define TFX_CG_MK_KC 256
typedef struct tfx_cg_mk_shape {
  int mr, mr_rem; /* rows of the main tile and of the remainder tile */
  int cols;       /* columns of one tile (a panel is cut into tiles of this many) */
} tfx_cg_mk_shape;
tfx_cg_mk_shape tfx_cg_mk_shape_for(const tfx_cg *cg, int glu);
typedef struct tfx_cg_mk_tile {
  tfx_cg_wpanel gate, up; /* the panel's packed weights (up: GLU only) */
  int pr;                 /* rows of the panel (its k-stride in floats) */
  LLVMValueRef m;         /* first row of x */
  int mr;                 /* rows (static) */
  int clamp;              /* rows past M - 1 reread row M - 1 (their results are not stored) */
  int c0, nc;             /* the tile's columns within the panel (static) */
  LLVMValueRef blk, blku;
  /* the fully unrolled decode (G->unroll): x already through the prologue
   * in xbuf (one row of up to TFX_CG_MK_KC floats), every k step emitted
   * with constant offsets (no loop), and the finished sums returned in
   * out[h * nvec + v] (h: gate, up; v: vector of W columns) instead of
   * stored to blk / blku */
  LLVMValueRef xbuf;
  int unroll;
  LLVMValueRef *out;
} tfx_cg_mk_tile;
void tfx_cg_mk_emit_tile(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_mk_tile *t);

/* ---- k_fused_linear.c: FUSED_LINEAR (hooks above), NORM_STATS, the norm helpers ---- */
/* Row statistics for the kernels that read a NORM_STATS (fused linear,
 * embedding, MoE): *mean and *inv (f32) of `row` of the value of `len`
 * columns the stats describe, loaded from stats [M, 2] (parts = 0) or
 * combined from the parts an epilogue wrote (parts groups of
 * TFX_STATS_GROUP per row; layer: the merged centred form; eps added). */
void tfx_cg_norm_row_stats(tfx_cg *cg, LLVMValueRef stats, LLVMValueRef row, int64_t parts, int64_t len, int layer,
                           double eps, LLVMValueRef *mean, LLVMValueRef *inv);
/* The norm prologue (tfx_norm_kind norm) of an x vector as loaded at column
 * col (nvalid lanes): xv itself for none; x * gain for RMS (its 1/rms is
 * applied to the finished dot product); (x - mean) * inv * gain + bias for
 * LayerNorm (mean, inv: the row's, splatted). Lanes past nvalid stay 0. */
LLVMValueRef tfx_cg_norm_x_load(tfx_cg *cg, int norm, LLVMValueRef xv, LLVMValueRef col, int nvalid, LLVMValueRef gain,
                                LLVMValueRef bias, LLVMValueRef mean, LLVMValueRef inv);
/* The partial statistics of `cols` (static) floats at src into dst[0..1]
 * (layer: their mean and sum of squared deviations; rms: the sum of
 * squares, 0): what a stats_out kernel writes per row and group. */
void tfx_cg_stats_part(tfx_cg *cg, LLVMValueRef src, int64_t cols, int layer, LLVMValueRef dst);

/* ---- aot.c ---- */
/* An optimized module for AOT emission (PIC, descriptor weights pointing at
 * the blob symbol `<model>_weights_blob`). */
typedef struct tfx_cg_aot {
  tfx_cg_target t;
  LLVMTargetMachineRef tm;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
} tfx_cg_aot;
/* variant of n_variants: the module's place among the model's code
 * variants (0 of 1 without --mcpu=A,B). */
int tfx_cg_aot_build(const tfx_graph *g, const tfx_target_options *o, int variant, int n_variants, tfx_cg_aot *a,
                     char *err, size_t errlen);
void tfx_cg_aot_free(tfx_cg_aot *a);

/* ---- spawn.c ---- */
/* Runs argv (argv[0] looked up in PATH), waits, and returns 0 when it exited
 * with status 0; otherwise -1 with its stderr (or the failure) in err. */
int tfx_cg_run(char *const argv[], char *err, size_t errlen);
/* The hooks of tfx_backend_set_hooks: a temporary created (1) or gone (0). */
void tfx_cg_temp_event(const char *path, int created);

/* ---- elf_blob.c ---- */
/* Writes a relocatable ELF64 little-endian object for the machine `elf`
 * (the target description's) holding `bytes` of data in one SHF_ALLOC
 * section aligned 64 and a global (hidden) STT_OBJECT `symbol`. */
int tfx_cg_write_blob_object(const char *path, const tfx_cg_elf_id *elf, const char *symbol, const uint8_t *data,
                             size_t bytes, char *err, size_t errlen);
/* What a reservation is for: an object combined by `ld -r` (the section of
 * tfx_cg_write_blob_object, as SHT_NOBITS), or a shared library (a large
 * SHT_NOBITS section, which the linker places at the end of the last
 * segment; x86-64 only, else an error). */
typedef enum { TFX_CG_RESERVE_OBJECT = 1, TFX_CG_RESERVE_SHARED = 2 } tfx_cg_reserve_for;
/* The blob object's symbol of `bytes`, without the data: the reservation
 * tfx_cg_fill_blob fills once linked. */
int tfx_cg_write_blob_reservation(const char *path, const tfx_cg_elf_id *elf, const char *symbol, size_t bytes,
                                  tfx_cg_reserve_for what, char *err, size_t errlen);

/* ---- elf_fill.c ---- */
/* Writes data[0..bytes) into the linked file path (a relocatable object or
 * a shared library) as the contents of `symbol`, a reservation of
 * tfx_cg_write_blob_reservation: the data goes at the end of the file, and
 * the headers say so. -1 with a message when the file does not have that
 * shape (the caller then links with the data instead). */
int tfx_cg_fill_blob(const char *path, const char *symbol, const uint8_t *data, size_t bytes, char *err, size_t errlen);

#endif
