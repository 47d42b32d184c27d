/* ir/ir.h — the typed dataflow graph: dtypes, tensor types with the one dynamic
 * dimension T, ops with their attributes, the graph and its builder, type
 * inference, the verifier, the text printer and the reference interpreter.
 *
 * This layer knows nothing of LLVM, of the .tfx syntax or of the runtime. */
#ifndef TFX_IR_H
#define TFX_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TFX_MAX_RANK 4
#define TFX_MAX_INPUTS 8     /* FUSED_LINEAR and MOE_UP take up to 7 */
#define TFX_MAX_FWD_INPUTS 8 /* inputs of a forward: the first and up to 7 extra */
#define TFX_DIM_T (-1)       /* the dynamic token dimension, 1 <= T <= max_seq */
/* schedule.prefetch's two named values (positive values are bytes) */
#define TFX_PREFETCH_AUTO 0
#define TFX_PREFETCH_NONE (-1)
/* schedule.streams: 0 = auto (two for a model whose weights are at least
 * TFX_STREAMS_AUTO_BYTES, else one), 1 or 2 */
#define TFX_STREAMS_AUTO 0
#define TFX_STREAMS_AUTO_BYTES ((int64_t)128 << 20)
/* schedule.prefill_chunk's two named values (positive values are rows) */
#define TFX_PREFILL_CHUNK_AUTO 0
#define TFX_PREFILL_CHUNK_NONE (-1)
#define TFX_PREFILL_CHUNK_MAX_ROWS ((int64_t)1 << 24)

/* Element types and weight storage formats. Values (every node's result but
 * a weight's) are f32 or i32; the others are formats a weight (PARAM, and the
 * CONCAT / PACK that fold into one) may be stored in, with their sizes and
 * reference decoders in the format table of ir/dtype.c (tfx_dtype_info). */
typedef enum {
  TFX_DT_F32,
  TFX_DT_I32,
  TFX_DT_F16,  /* IEEE half */
  TFX_DT_BF16, /* bfloat16 */
  TFX_DT_I8,   /* int8 with a per-row f32 scale (per-channel int8) */
  TFX_DT_Q8_0, /* GGUF blocks of 32: f16 scale + 32 x i8 (34 bytes) */
  TFX_DT_Q4_0, /* GGUF blocks of 32: f16 scale + 16 bytes of nibbles (18 bytes) */
  TFX_DT_Q4_K, /* GGUF super-blocks of 256 (144 bytes) */
  TFX_DT_Q6_K, /* GGUF super-blocks of 256 (210 bytes) */
  TFX_DT_Q5_0, /* GGUF blocks of 32: f16 scale + 4 bytes of high bits + 16 bytes of nibbles (22 bytes) */
  /* a toy format for the weight-format seam's test (tests/test_weight_format.c):
   * f32 values stored divided by a per-row f32 scale; internal (the
   * frontend never makes it) */
  TFX_DT_F32_ROWSCALE,
  TFX_DT_TQ2_0,    /* GGUF (ggml's block_tq2_0) super-blocks of 256 ternary values: 64 bytes of 2-bit codes + f16
                      scale (66 bytes) */
  TFX_DT_S24_F32,  /* 2:4 sparse, blocks of 32: 16 kept f32 values + u32 of 2-bit positions (68 bytes) */
  TFX_DT_S24_Q8_0, /* 2:4 sparse, blocks of 32: f16 scale + u32 keep mask + 16 kept i8 (22 bytes) */
  /* ZeroQuant (quantize = zeroquant): group-wise asymmetric 8-bit, groups of
   * 64 / 128 along K: f16 scale s, i16 zero point z, then the group's u8
   * codes q; x = s * (q - z) (68 / 132 bytes; tfx_quantize_zq8_group) */
  TFX_DT_ZQ8_64,
  TFX_DT_ZQ8_128,
  /* zeroquant(bits = 4): the same with 4-bit codes, 16 bytes per 32 (q4_0's
   * nibble order: byte j of a 32 holds element j low, j + 16 high) */
  TFX_DT_ZQ4_64,
  TFX_DT_ZQ4_128,
  TFX_DT_Q3_K, /* GGUF (ggml's block_q3_K) super-blocks of 256: hmask[32], qs[64], 12 bytes of 16 6-bit scales, f16 d
                  (110 bytes) */
  /* BitNet b1.58's ternary weights (quantize = ternary): tq2_0's bytes with
   * one scale per tensor (the same f16 d in every block, so any block's d
   * is the row's); its linears quantize the activations per token
   * (tfx_node_act_quant: 2) and accumulate the whole row in i32
   * (backend/k_linear_q8.c, dzt_rows). --emit-gguf writes it as TQ2_0. */
  TFX_DT_TQ2_T,
  TFX_DT_COUNT
} tfx_dtype;

typedef struct {
  tfx_dtype dtype;
  int rank;
  int64_t dims[TFX_MAX_RANK]; /* a dim is > 0, or TFX_DIM_T */
} tfx_type;

/* The ops, defined once in ir/ops.h (name, arity, roles, traits, attributes,
 * interpreter and backend entries; tfx_op_info). Their semantics:
 * input:      the graph input: tokens i32[T] or activations f32[T, D]
 * param:      a weight tensor in the weights blob; name, weight_offset
 * embedding:  (table f32[V, D], ids i32[T] [, pos table, row, gain, norm bias]) -> f32[T, D]; the
 *   optional operands and fx attributes are the optimizer's (tfx_fused, fuse_embedding)
 * linear:     (x[M, K], w[N, K] [, b[N]]) -> [M, N] = x @ w^T + b
 * matmul:     (a[M, K], b[K, N]) -> [M, N]
 * seq_project: (e[k, n], x[T, C]) -> [k, C] = e[:, 0:T] @ x: Linformer's projection along the
 *             sequence (the first T columns of e; T <= max_seq <= n is checked by inference)
 * add:        (a[M, N], b[M, N], b[N] or b[1, N]) -> [M, N]; b[N] and b[1, N] broadcast over rows
 * sub:
 * mul:
 * rmsnorm:    (x[M, N], g[N]) eps -> x / sqrt(mean(x^2) + eps) * g; with heads = h > 0, g[N / h]
 *   and each row is h groups of N / h columns normalized on their own (per-head q/k norms)
 * layernorm:  (x[M, N], g[N], b[N]) eps -> (x - mean) / sqrt(var + eps) * g + b; heads as rmsnorm
 * silu:       x * sigmoid(x)
 * gelu:       gelu_tanh selects the tanh form, else the erf form
 * relu:
 * softmax:    over the last dimension
 * rope:       (x[T, heads * head_dim]) rotated by angle (pos + t) * theta^(-2i/rotary_dim)
 * attention:  (q[T, H*d], k[T, G*d], v[T, G*d] [, bias_table[B, H]]) -> [T, H*d]; without a mask
 *   q[M, H*d], k, v[S, G*d] -> [M, H*d] (cross-attention, static rows); see below
 * -- FFN variants, positions and mixture of experts (ir/interp_ffn.c):
 * sigmoid:     1 / (1 + exp(-x))
 * positions:   (table f32[P, D], x i32[T] or f32[T, ...]) -> f32[T, D]: rows pos+o..pos+o+T-1 of
 *   the table, o = pos_offset >= 0 (learned absolute positions); P >= max_seq + o; x only gives T
 *   (with pad_skip, x is the ids and pad tokens are not counted: see pad_skip below)
 * sinusoidal:  (x f32[T, D]) theta -> f32[T, D]: PE[p, 2i] = sin(p / theta^(2i/D)),
 *   PE[p, 2i+1] = cos(p / theta^(2i/D)) for p = pos + t; x only gives T and D
 * moe_route:   (logits f32[T, E]) top_k, moe_gate, capacity -> route f32[T, 2k]: see below; with
 *   fx.router (x f32[T, D], router f32[E, D] [, stats, gain [, norm bias]]): the logits are
 *   prologue(x) @ router^T, computed by the route itself
 * moe_up:      (x f32[T, K], route f32[T, 2k], w f32[E, N, K] [, w3] [, stats, gain [, norm bias]])
 *   -> f32[T, k*N]: slot s of row t is x[t] @ w[e_s]^T, zeros when slot s is empty; the
 *   optimizer's fx.norm (prologue), fx.act, fx.glu (act(x w^T) * (x w3^T)): tfx_fused
 * moe_down:    (h f32[T, k*K], route f32[T, 2k], w f32[E, N, K] [, residual f32[T, N]]) -> f32[T, N]:
 *   sum over the non-empty slots s of weight_s * (h[t, slot s] @ w[e_s]^T) [+ residual];
 *   fx.residual, fx.stats_out are the optimizer's
 * -- attention variants (ir/attention.c, ir/interp_attention.c):
 * mla_attention:  (q[T, H*(dn+dr)], ckv[T, r+dr], wkv_b[H*(dn+dv), r] [, kv_norm g[r]]) -> [T, H*dv]:
 *   DeepSeek-V2 multi-head latent attention, causal; see below
 * global_attention:  (y[T, H*d], qg[T, H*d], kg[T, G*d], vg[T, G*d] [, key_mask[T]]) sparse -> [T, H*d]:
 *   Longformer's separate global projections: y with the rows of the global tokens of `sparse`
 *   (a LONGFORMER pattern: tfx_attn_global_rows) replaced, row p head h by the dense attention
 *   softmax_j(scale * qg[p, h] . kg[j, g]) vg[j, g] over every key j of the call the key mask keeps
 *   (g = h / (H / G), scale tfx_attn_scale; no key: zeros); the other rows are y's (in place). With
 *   sparse.global_input the global rows are those where the last operand gmask i32[T] is nonzero
 * -- recurrent state instead of a KV cache (ir/recurrent.c, backend/k_recurrent.c; docs/language.md):
 * retention:  (q[T, H*dk], k[T, H*dk], v[T, H*dv]) -> [T, H*dv]: RetNet's multi-scale retention,
 *   head h decays by gamma_h = 1 - 2^(-5-h); see below
 * groupnorm:  (x[M, C], g[C], b[C]) heads = G groups, eps -> each group of C/G columns layer-
 *   normalized (biased variance), then * g + b (RetNet's per-head norm)
 * infini_attention:  (q[T, H*d], k[T, H*d], v[T, H*dv], beta[H]) segment = N -> [T, H*dv]:
 *   local causal attention within the segment plus a compressive memory; see below
 * -- made by the optimizer (ir/fused.c, passes/, docs/passes.md):
 * norm_stats:    (x f32[M, K]) fx.norm, eps -> f32[M, 2]: per row [mean, 1/sqrt(var + eps)] (LAYER) or
 *   [0, 1/sqrt(mean(x^2) + eps)] (RMS), the prologue statistics of FUSED_LINEAR
 * fused_linear:  (x, w, [bias], [stats, gain, [norm bias]], [residual]) fx -> f32[M, N]: a linear
 *   with a norm prologue and a bias/RoPE/activation/GLU/residual epilogue; see tfx_fused
 * slice:         (planar FUSED_LINEAR) fx.index -> f32[M, segs[index]]: a view of one segment
 * concat:        (a[R0, K], b[R1, K], ...) -> [R0 + R1 + ..., K] (or rank 1): weight rows joined;
 *   constant-folded into a PARAM
 * pack:          (w f32[R, K]) fx.panel, fx.kc, fx.segs -> f32[R, K] in the packed layout (see
 *   tfx_packed_index); constant-folded into a PARAM
 * softcap:       (x f32[...]) softcap -> c * tanh(x / c), c = softcap > 0 (Gemma 2's final logit
 *   soft-capping)
 * affine:        (x f32[...]) scale, shift -> x * scale + shift (the frontend's arithmetic with
 *   constants: `w * c + b`, `1 + w`, `x * sqrt(dim)`); constant-folded into a PARAM when x is an
 *   f32 PARAM (passes/fold_weights.c, by op: it has a kernel, so not TFX_TRAIT_FOLDED), else a kernel
 * -- parts of a value's rows (the language's x[:, a:b] and concat(a, b, ..); backend/k_columns.c):
 * col_slice:     (x f32[M, N]) col_lo, col_hi -> f32[M, hi - lo]: columns lo .. hi - 1 of every row,
 *   0 <= lo < hi <= N (a copy: row-wise, so decode and chunked calls need nothing more)
 * concat_cols:   (a f32[M, N0], b f32[M, N1], ...) -> f32[M, N0 + N1 + ...]: each row the operands'
 *   rows side by side (every operand has the same leading dims; a copy)
 */
typedef enum {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  TFX_OP_##NAME,
#include "ops.h"
#undef TFX_OP
  TFX_OP_COUNT
} tfx_op;

typedef enum { TFX_ROPE_INTERLEAVED, TFX_ROPE_HALF } tfx_rope_style;
typedef enum { TFX_MASK_NONE, TFX_MASK_CAUSAL } tfx_mask_kind;

/* Sparse attention patterns (ATTENTION, MLA_ATTENTION), ANDed with the mask.
 * i is the query's position, j the key's; d = i - j under a causal mask (which
 * already requires j <= i), |i - j| otherwise. Exact rules: ir/attention.c
 * (tfx_attn_allowed) and docs/language.md. */
typedef enum {
  TFX_SPARSE_NONE,       /* every key the mask allows */
  TFX_SPARSE_SLIDING,    /* d < window */
  TFX_SPARSE_DILATED,    /* d % dilation == 0 and (window == 0 or d < window) */
  TFX_SPARSE_STRIDED,    /* d < stride or d % stride == 0 (OpenAI strided) */
  TFX_SPARSE_FIXED,      /* i / stride == j / stride or j % stride >= stride - summary (OpenAI fixed) */
  TFX_SPARSE_LONGFORMER, /* (d < window and d % dilation == 0) or i global or j global */
  TFX_SPARSE_BIGBIRD     /* blocks qb = i / block, kb = j / block: |qb - kb| <= 1, or qb < n_global, or
                            kb < n_global, or kb one of the `random` blocks drawn for qb */
} tfx_sparse_kind;

/* How the backend computes an ATTENTION / MLA_ATTENTION node (the node's
 * attn_schedule, chosen by the schedule_attention pass; ir/attention.c).
 * The schedule never changes what is computed, only the loops (and the
 * rounding of the sums within the stated tolerance). UNSET (no pass ran,
 * -O0): the backend applies tfx_attn_schedule_auto. The schedule is the
 * forward (prefill) entry's; the decode entry (one query row) runs ROW. */
typedef enum {
  TFX_ATTN_SCHED_UNSET, /* not chosen: tfx_attn_schedule_auto decides */
  TFX_ATTN_SCHED_ROW,   /* an item per (query row, head) walks its keys in blocks with the online softmax */
  TFX_ATTN_SCHED_FLASH, /* tiles of query rows x key groups (FlashAttention); ATTENTION without a sparse pattern */
  TFX_ATTN_SCHED_BLOCK_SPARSE, /* the flash tiles, visiting only the key groups tfx_attn_block_allowed does not
                                  rule out (the element mask only on partial ones); ATTENTION with a pattern */
  /* the next ones (SPLIT_DECODE: the decode entry's keys split across threads) go here */
  TFX_ATTN_SCHED_COUNT
} tfx_attn_sched;

/* What a block of (query, key) pairs holds under a node's mask and sparse
 * pattern (tfx_attn_block_allowed): no allowed pair, some, or only allowed
 * pairs. */
typedef enum { TFX_ATTN_BLOCK_NONE, TFX_ATTN_BLOCK_PARTIAL, TFX_ATTN_BLOCK_FULL } tfx_attn_block;

#define TFX_MAX_GLOBAL_TOKENS 16
typedef struct tfx_sparse {
  tfx_sparse_kind kind;
  int window;        /* SLIDING, LONGFORMER (>= 1); DILATED (0 = unbounded) */
  int dilation;      /* DILATED, LONGFORMER (>= 1) */
  int stride;        /* STRIDED, FIXED: l */
  int summary;       /* FIXED: c, the last c columns of every stride-block are seen by all (1..stride) */
  int block;         /* BIGBIRD: block_size */
  int n_global;      /* LONGFORMER: tokens 0..n_global-1 are global; BIGBIRD: blocks 0..n_global-1 */
  int n_global_list; /* LONGFORMER: how many positions global_list holds (also global) */
  int global_list[TFX_MAX_GLOBAL_TOKENS];
  /* LONGFORMER: 1 = the global tokens are given per call: the node's last operand is i32[T], nonzero at the
   * global rows (Hugging Face's global_attention_mask; tfx_attn_global_operand); n_global and global_list are
   * then 0. ATTENTION and GLOBAL_ATTENTION only, mask NONE, dilation 1, q and k of the call's T rows. */
  int global_input;
  int random;    /* BIGBIRD: random blocks per query block (tfx_bigbird_random_blocks) */
  uint64_t seed; /* BIGBIRD */
} tfx_sparse;
/* MOE_ROUTE's expert weights: SOFTMAX_TOPK = softmax over the k chosen logits
 * (Mixtral; equal to softmax over all E renormalized over the chosen);
 * SOFTMAX = softmax over all E logits, the chosen probabilities as they are
 * (Switch, DeepSeek without normalization). */
typedef enum { TFX_MOE_GATE_SOFTMAX_TOPK, TFX_MOE_GATE_SOFTMAX } tfx_moe_gate;

/* Attributes of the optimizer's ops (NORM_STATS, FUSED_LINEAR, SLICE, PACK),
 * of the fused forms of EMBEDDING and the MoE ops, and of packed PARAMs;
 * exact semantics in ir/fused.c and docs/passes.md. */
typedef enum { TFX_NORM_NONE, TFX_NORM_RMS, TFX_NORM_LAYER } tfx_norm_kind;
typedef enum {
  TFX_ACT_NONE,
  TFX_ACT_SILU,
  TFX_ACT_GELU,
  TFX_ACT_GELU_TANH,
  TFX_ACT_RELU,
  TFX_ACT_SIGMOID
} tfx_act_kind;
#define TFX_MAX_SEGS 4
#define TFX_STATS_GROUP 32 /* output columns per partial statistic (NORM_STATS from an epilogue) */
typedef struct tfx_fused {
  /* FUSED_LINEAR y = epilogue(prologue(x) @ w^T). Operands in this order:
   * x[M, K], w[R, K], bias[R] (has_bias), stats[M, 2], gain[K] (norm != NONE),
   * norm bias[K] (norm == LAYER), residual[M, N] (residual), rstats[M, 2],
   * rgain[N] (rnorm != NONE), rnbias[N] (rnorm == LAYER). The weight rows
   * are n_segs segments of segs[s] rows (n_segs >= 1, sum = R). Prologue: x
   * normalized per row with the stats (NORM_STATS of x) and gain (and bias).
   * Epilogue, per output element: + bias; RoPE on segment s when bit s of
   * rope is set (head_dim, rotary_dim, theta, rope_style of the node; pairs
   * within each head_dim-wide head of the segment, position pos + row); act;
   * with glu (n_segs == 2, equal halves) y = act(gate) * up, N = R / 2; then
   * + residual (normalized first with rnorm). Without glu and n_segs > 1 the output is PLANAR: segment s is
   * a row-major [M, segs[s]] block at float offset M * (segs[0] + .. +
   * segs[s-1]); only SLICE nodes may read it. Otherwise y is [M, R]. */
  int norm;      /* tfx_norm_kind; NORM_STATS: which statistics */
  int has_bias;  /* FUSED_LINEAR */
  int act;       /* tfx_act_kind */
  int glu;       /* FUSED_LINEAR */
  int residual;  /* FUSED_LINEAR */
  unsigned rope; /* FUSED_LINEAR: bit s = RoPE on segment s */
  int n_segs;    /* FUSED_LINEAR, PACK, packed PARAM: row segments (0 means 1 segment of all rows) */
  int64_t segs[TFX_MAX_SEGS];
  int panel, kc; /* PACK, PARAM: packed layout (tfx_packed_index); panel 0 = row-major */
  /* PACK, packed PARAM: bit s = the rows of segment s are stored in the
   * pair order of half-split RoPE (per head of perm_hd rows, the first
   * perm_rd rows as 0, rd/2, 1, rd/2 + 1, ...), so a kernel computes each
   * rotated pair in adjacent columns; see tfx_packed_index */
  unsigned perm;
  int perm_hd, perm_rd;
  int index; /* SLICE: the segment; NORM_STATS: 1 = "from the epilogue" (below) */
  /* FUSED_LINEAR, EMBEDDING, MOE_DOWN: stats_out = RMS or LAYER: the kernel
   * also writes, per row and group of TFX_STATS_GROUP output columns,
   * partial statistics of its outputs (RMS: the sum of squares; LAYER: the
   * group's mean and sum of squared deviations) into the slot of the
   * NORM_STATS node with index 1 that reads it; that node launches no
   * kernel, and the kernels reading it combine the partials of a row in
   * their prologue (or residual norm). The values (and what the interpreter
   * computes) are those of a plain NORM_STATS. */
  int stats_out;
  /* FUSED_LINEAR with stats_out and a planar output: the segment whose
   * statistics it writes (the NORM_STATS reading them takes the planar node
   * itself as its operand; the values are those of the segment's slice). */
  int stats_seg;
  /* FUSED_LINEAR: rnorm = RMS or LAYER: the residual is normalized per row
   * before it is added, with operands rstats[M, 2] (a NORM_STATS of the
   * residual's value), rgain[N] (and rnbias[N] for LAYER) after the
   * residual: y = ... + (r - mean) * inv * rgain + rnbias (LAYER) or
   * r * inv * rgain (RMS). Never with a prologue (norm). The residual stream
   * of a post-norm block: the normalized tensor is never written. */
  int rnorm;
  /* EMBEDDING (tfx_emb_operand): y[t] = norm((table[ids[t]] + P[p]) + row)
   * for p = pos + t (pos as for POSITIONS/SINUSOIDAL: 0 in a graph without
   * a causal attention). pos_add = TABLE: P is the operand pos table
   * f32[P, D] (P >= max_seq); SINUSOIDAL: P is the sinusoidal table of
   * base theta (as SINUSOIDAL). has_bias: + the row operand f32[D] (every
   * row). norm = RMS or LAYER: the row normalized with eps, gain[D] (and
   * norm bias[D]). stats_out as for FUSED_LINEAR (groups of
   * TFX_STATS_GROUP columns of y). */
  int pos_add;
  /* MOE_ROUTE: the operands are x and the router weight (and the prologue's
   * stats, gain [, norm bias] when norm != NONE); the kernel computes the
   * logits. MOE_UP uses norm (prologue of x, operands after w / w3), act
   * and glu (operand w3); MOE_DOWN uses residual and stats_out. */
  int router;
} tfx_fused;
typedef enum { TFX_EMB_POS_NONE, TFX_EMB_POS_TABLE, TFX_EMB_POS_SINUSOIDAL } tfx_emb_pos;

/* One node = one op = one value (%id). Attributes are plain fields; an op reads
 * only those its comment in tfx_op names. */
typedef struct tfx_node {
  int id;
  tfx_op op;
  tfx_type type; /* the result type */
  int n_inputs;
  int inputs[TFX_MAX_INPUTS]; /* ids of earlier nodes */

  char *name; /* PARAM: binding name ("layers.0.wq"); INPUT: "tokens"/"x"; else NULL */

  /* attributes */
  double eps;     /* RMSNORM, LAYERNORM */
  int gelu_tanh;  /* GELU */
  int heads;      /* ROPE, ATTENTION: query heads H */
  int kv_heads;   /* ATTENTION: key/value heads G (H % G == 0) */
  int head_dim;   /* ROPE, ATTENTION: d */
  int rotary_dim; /* ROPE: dims of each head rotated (even, <= head_dim) */
  double theta;   /* ROPE, SINUSOIDAL: base */
  tfx_rope_style rope_style;
  tfx_mask_kind mask; /* ATTENTION */
  /* ATTENTION with mask CAUSAL keeps K and V in the session's KV cache: each
   * forward call stores its T rows at positions pos..pos+T-1 and query t
   * attends keys 0..pos+t. With mask NONE it attends the T keys of this call
   * and keeps nothing. Scale is 1/sqrt(head_dim); query head h uses KV head
   * h / (H / G). */
  /* ATTENTION, MLA_ATTENTION options (ir/attention.c). Positions: with a
   * causal mask i = pos + t and j is the key's absolute position; without,
   * i is the query's row and j the key's row in this call. ATTENTION without
   * a mask may take q with static rows and k, v with other rows (T or
   * static): cross-attention to a memory. A query row whose keys are all
   * masked outputs zeros. */
  int alibi; /* add -slope_h * |i - j| to the scaled scores (tfx_alibi_slope) */
  /* ATTENTION with a 4th operand bias_table f32[B, H] (T5's relative
   * position bias): add bias_table[tfx_t5_bucket(j - i, ...), h] to the
   * scaled scores, B buckets (half per direction when rel_bidirectional),
   * logarithmic up to rel_max_distance. Only the ROW schedule runs it. */
  int rel_max_distance, rel_bidirectional;
  /* ATTENTION with key_mask = 1: its last operand is a key mask f32[rows of k]
   * or i32[rows of k] (a forward input: 1 keeps key j, 0 drops it, as
   * Hugging Face's attention_mask); with mask CAUSAL the call's values are
   * kept after V in the node's KV storage (tfx_node_kv_bytes: 4 bytes per
   * position) and read from there for every key. The bias table, if any,
   * stays the 4th operand. */
  int key_mask;
  /* ATTENTION with segments = 1 (packed sequences): its last operand (after
   * the key mask) is i32[T], a segment id per row; query i attends only the
   * keys of its segment, the maximal run of consecutive rows with its id
   * (tfx_segment_bounds). Only with mask NONE and q, k of the call's T rows.
   * POSITIONS with a 3rd operand i32[T] counts positions from the first row
   * of each segment. */
  int segments;
  tfx_sparse sparse; /* the sparse pattern; kind NONE by default */
  int attn_schedule; /* ATTENTION, MLA_ATTENTION: tfx_attn_sched (schedule_attention); UNSET by default */
  int attn_split;    /* ATTENTION: the decode entry's schedule (schedule_attention, passes/attn_cost.c): 0 ROW,
                        N >= 2 split decode, the query's keys in N parts (tfx_attn_split_fits) */
  int rank;          /* MLA_ATTENTION: r, the latent's width */
  int rope_dim;      /* MLA_ATTENTION: dr, the decoupled RoPE dims (even, may be 0) */
  int v_dim;         /* MLA_ATTENTION: dv, value dims per head (head_dim is dn, the no-RoPE dims) */
  /* MLA_ATTENTION (mask CAUSAL): row t at p = pos + t has latent c = ckv[t, 0:r]
   * (RMS-normalized with eps and the gain g when the 4th operand is given)
   * and shared key kr = rope(ckv[t, r:r+dr], p) (theta, rope_style); the KV
   * cache holds [c | kr], r + dr floats per token. Head h: q_nope = its first
   * dn dims, q_pe = rope(its last dr dims, p); K_h = c W_uk_h^T (W_uk_h: rows
   * h(dn+dv) .. +dn of wkv_b), V_h = c W_uv_h^T (the next dv rows); score
   * (q_nope . K_h[j] + q_pe . kr[j]) / sqrt(dn + dr). */
  double scale, shift; /* AFFINE: y = x * scale + shift; ATTENTION: scale > 0 the score scale (tfx_attn_scale) */
  double softcap;      /* ATTENTION: > 0 caps the scaled scores, s -> softcap * tanh(s / softcap) before ALiBi,
                          the bias and the mask (Gemma 2), 0 none; SOFTCAP: the cap c > 0 */
  int pos_offset;      /* POSITIONS: the row of position 0 (RoBERTa/BART: padding_idx + 1) */
  /* POSITIONS with pad_skip = 1 (RoBERTa, transformers' position ids): x is
   * the ids i32[T]; a token whose id is pad_id is not counted and reads row
   * pos_offset - 1 (padding_idx), any other token t reads row pos_offset +
   * pos + (the tokens before t in the call that are not pad_id).
   * pos_offset >= 1, no segment ids; not row-wise. */
  int pad_skip, pad_id;
  int top_k;             /* MOE_ROUTE: experts per token, 1..E */
  tfx_moe_gate moe_gate; /* MOE_ROUTE */
  double capacity;       /* MOE_ROUTE: capacity factor C > 0, or 0 for no capacity limit */
  /* MOE_ROUTE: per row t, the k experts of the largest logits in decreasing
   * order (ties: the lowest expert index first) and their weights; the route
   * row is [e_0 .. e_{k-1}, w_0 .. w_{k-1}], expert indices stored as floats.
   * With a capacity C each expert accepts at most
   * cap = ceil(C * T * k / E) (evaluated in double, left to right) of this
   * call's tokens, in token order; a slot whose expert is full becomes empty:
   * index -1, weight 0 (the other weights are not renormalized). T is the
   * rows of this call, so capacity is per call (decode: T = 1, cap >= 1).
   * MOE_UP and MOE_DOWN treat a slot whose index is outside [0, E) as empty. */
  /* RETENTION (heads H, head_dim dk, v_dim dv): position p = pos + t, head h,
   * gamma = 1 - 2^(-5-h): o_p = sum_{m <= p} gamma^(p-m) (q_p . k_m / sqrt(dk)) v_m.
   * The session keeps the state S_h = sum_{m <= p} gamma^(p-m) k_m^T v_m
   * ([dk, dv] f32 per head) in the KV storage instead of K and V: a call
   * starting at pos 0 starts from S = 0 (so a reset clears it).
   * INFINI_ATTENTION (heads H, head_dim d, v_dim dv, segment N): position p
   * is in segment s = p / N; A_dot = softmax over the keys m of the segment
   * with m <= p of q.k_m / sqrt(d), times v; the memory of the earlier
   * segments M_h = sum_{m < sN} sig(k_m)^T v_m, z_h = sum_{m < sN} sig(k_m)
   * with sig(x) = elu(x) + 1; A_mem = sig(q) M / (sig(q) . z) (0 in segment
   * 0); o = sigmoid(beta_h) A_mem + (1 - sigmoid(beta_h)) A_dot. The session
   * keeps per head the segment's K [N, d] and V [N, dv], M [d, dv] and z [d]. */
  int segment;        /* INFINI_ATTENTION: N, the segment length */
  int col_lo, col_hi; /* COL_SLICE: the columns lo .. hi - 1 of each row, 0 <= lo < hi <= N */
  tfx_fused fx;       /* NORM_STATS, FUSED_LINEAR, SLICE, CONCAT, PACK; PARAM: its layout (fx.panel) */

  /* filled by binding and planning */
  int64_t weight_offset; /* PARAM: byte offset in the weights blob, -1 unbound */
  int64_t kv_offset;     /* ATTENTION (causal): byte offset of its K cache
                            [max_seq, G*d] f32; V cache follows at + kv_bytes/2
                            of this node, i.e. kv_offset + max_seq*G*d*4 */
  int64_t arena_offset;  /* intermediate values: byte offset in the arena, -1 unplanned */
  int64_t work_offset;   /* a linear with int8 activations (tfx_node_work_bytes): its quantized
                            rows' workspace in the arena, live while it runs; -1 none */
  /* planning (passes/cache_source.c, in a graph with a source): TFX_SRC_*.
   * A node computed only from params and the sources (the encoder, the
   * cross-attention K and V) is computed by the first call after the source
   * changed and skipped by the others; those read by other nodes keep their
   * value in the session's source cache (kv_offset, inside the KV storage)
   * instead of an arena slot */
  int src_cached;

  int line, col; /* source location that produced it, 0 if none */
} tfx_node;
enum { TFX_SRC_NONE = 0, TFX_SRC_INVARIANT = 1, TFX_SRC_KEPT = 2 };

/* What is asked of a weight's format (schedule { quantize = ... },
 * --quantize, a quantize { } rule): KEEP (`none`, and the default) leaves the
 * weight in the format it was bound in; FORMAT gives it `dtype` (after
 * tfx_quantize_fallback for its rows); Q4_K_M is llama.cpp's Q4_K_M mix
 * (passes/quantize_weights.c). */
/* TERNARY is BitNet b1.58's ternary weights (`ternary`): tq2_0 blocks whose
 * scale is the whole tensor's mean |w| (tfx_quantize_ternary_row). */
typedef enum { TFX_QUANT_KEEP, TFX_QUANT_FORMAT, TFX_QUANT_Q4_K_M, TFX_QUANT_TERNARY } tfx_quant_mode;
typedef struct tfx_quant_choice {
  tfx_quant_mode mode;
  tfx_dtype dtype; /* FORMAT: f16, bf16, q8_0, q4_0, q4_k, q6_k, or i8 (w8a8: per-token int8 activations) */
  int smooth_set;  /* w8a8(smooth = alpha): 1 asked (passes/smooth_quant.c), 2 once folded */
  float smooth;    /* alpha, its migration strength in [0, 1] */
  int llm_int8;    /* llm_int8(threshold = t): 1 asked (passes/llm_int8.c), 2 once split */
  float threshold; /* llm_int8: an input channel whose calibrated max|x| exceeds it stays f32 */
  /* gptq(bits = 4, group = G, damp = d, act_order = b): GPTQ (ir/gptq.c) into
   * dtype (q4_0) with the calibration's H = sum x x^T of each linear's input */
  int gptq;           /* 1 asked */
  int gptq_group;     /* 32, 64 or 128: columns sharing one scale */
  float gptq_damp;    /* H += damp * mean(diag H) * I */
  int gptq_act_order; /* quantize the columns by decreasing diag H (static group scales) */
  /* sparse24(FMT, permute = true): 1 asked (passes/permute_channels.c reorders the input channels of the
   * weight before it is pruned), 2 once done */
  int permute;
} tfx_quant_choice;
/* `"pattern" = fmt` of a quantize { } section: pattern is a param name where
 * '*' matches any run of characters (dots included). */
typedef struct tfx_quant_rule {
  char *pattern;
  tfx_quant_choice choice; /* KEEP or FORMAT */
  int line, col;           /* the pattern in the source, 0 if none */
} tfx_quant_rule;
/* A weight that could not take the format asked (set by quantize_weights,
 * shown by --stats): its rows of K elements do not divide into the format's
 * blocks, so it got tfx_quantize_fallback's format. */
typedef struct tfx_quant_fallback {
  char *name;
  tfx_dtype asked, got;
  int64_t K;
  int gptq_rtn; /* 1: asked gptq, got round-to-nearest `got` (no calibration H for this weight) */
} tfx_quant_fallback;
/* A weight whose input channels permute_channels reordered (shown by
 * --stats): the sum over rows of the 2 largest |w| of every group of 4
 * inputs (what 2:4 keeps), before and after. */
typedef struct tfx_channel_permute {
  char *name;
  double kept_before, kept_after;
} tfx_channel_permute;

/* schedule { attention = ... } */
typedef enum { TFX_SCHED_ATTN_AUTO, TFX_SCHED_ATTN_DENSE, TFX_SCHED_ATTN_FLASH } tfx_sched_attention;
/* schedule { decode = ... } (tfx_schedule.decode; N >= 2 is split(N)) */
enum { TFX_SCHED_DECODE_TINY = -2, TFX_SCHED_DECODE_SPLIT = -1, TFX_SCHED_DECODE_AUTO = 0, TFX_SCHED_DECODE_ROW = 1 };
/* schedule { unroll = ... } (tfx_schedule.unroll): the fully unrolled decode linears (tfx_fl_unrolled) */
enum { TFX_SCHED_UNROLL_OFF = -1, TFX_SCHED_UNROLL_AUTO = 0, TFX_SCHED_UNROLL_ON = 1 };

typedef struct tfx_schedule {
  int threads;   /* 0 = auto */
  int attention; /* tfx_sched_attention: AUTO and FLASH tile prefill attention without a sparse pattern
                    (tfx_attn_schedule_auto) */
  int decode;    /* schedule { decode }: TFX_SCHED_DECODE_AUTO (0: the cost model), _ROW (1), _SPLIT (-1: split
                    decode with the automatic part count), _TINY (-2: the tiny-head kernel where it
                    fits, row elsewhere), N >= 2: split(N) */
  int prefetch;  /* bytes the decode matrix-vector kernels prefetch ahead of their weight stream;
                    TFX_PREFETCH_AUTO (0, the default): the backend's choice per kernel, TFX_PREFETCH_NONE */
  int unroll;    /* schedule { unroll }: TFX_SCHED_UNROLL_AUTO (0: the cost model of tfx_fl_unrolled), _ON, _OFF */
  int streams;   /* schedule { streams }: weight rows the int8 decode kernels read at once, in two places of each
                    panel (1 or 2; TFX_STREAMS_AUTO: tfx_cg_decode_streams) */
  int64_t prefill_chunk; /* schedule { prefill_chunk }: TFX_PREFILL_CHUNK_AUTO (0: passes/prefill_chunk.c's size at
                            -O1 and above), TFX_PREFILL_CHUNK_NONE (-1: whole calls), N >= 1: runs of N rows */
  int act_f32;           /* 1: linears with int8-block weights dequantize them into f32 instead of quantizing their
                            activations for int8 dot products (tfx_node_act_quant) */
  /* the weight formats the quantize_weights pass gives (ir/quant_choice.c): the
   * default (schedule { quantize = ... } or --quantize) and the quantize { }
   * section's rules, in source order (the last matching one wins) */
  tfx_quant_choice quantize;
  int n_quant_rules;
  struct tfx_quant_rule *quant_rules; /* owned by the graph (tfx_graph_free) */
} tfx_schedule;

typedef struct tfx_graph {
  char *name;
  /* the exported symbols' prefix (`<it>_descriptor`, `<it>_weights_blob`;
   * tfxc --symbol-prefix), owned; NULL: the name's C identifier */
  char *symbol_name;
  int n_nodes, cap;
  tfx_node *nodes; /* topological order: inputs of node i are < i */
  int input;       /* id of the first INPUT node (tokens or activations), -1 if none yet */
  /* every INPUT node in the forward's order (fwd_inputs[0] == input): the
   * extra inputs of a forward with several (per-row ids i32[T], key masks
   * f32[T] / i32[T]) follow the first */
  int n_fwd_inputs;
  int fwd_inputs[TFX_MAX_FWD_INPUTS];
  /* a source (an extra input with static rows N, i32[N] / f32[N]: the call
   * gives 1..N rows of it, S; the rows past S are padding, zeros): rows_mask
   * is the index in fwd_inputs of the hidden row mask i32[N] (1 for the
   * rows < S, 0 past them) that the caller fills (the runtime, the
   * interpreter), always the last input, attached as the key mask of every
   * attention whose keys come from a source; 0 when the forward has no
   * source. */
  int rows_mask;
  int output;      /* id of the returned value, -1 if none yet */
  int64_t max_seq; /* upper bound of T */
  tfx_schedule schedule;
  /* the model's special token ids (tokens { } in .tfx), -1 when not given */
  int64_t bos_id, eos_id, pad_id;
  /* the source's tokenizer "FILE" (relative to the current directory),
   * owned; NULL: none */
  char *tokenizer_path;
  /* a tokenizer file's bytes, embedded in the descriptor (tfxc --tokenizer,
   * or the tokenizer statement; tfx_graph_set_tokenizer), owned; NULL: none */
  uint8_t *tokenizer;
  int64_t tokenizer_bytes;

  /* results of planning (passes/) */
  int64_t arena_bytes; /* 0 until planned */
  int64_t kv_bytes;    /* total KV cache bytes */
  /* the source cache (passes/cache_source.c): bytes at offset 0 of the KV
   * storage, a 64-byte header whose first int32 is 1 while the kept values
   * hold the current source's (the runtime zeroes it when the source
   * changes), then the TFX_SRC_KEPT values; 0: none */
  int64_t src_cache_bytes;
  /* rows per run of the forward entries' kernels (passes/prefill_chunk.c):
   * a call of more rows runs them in runs of this many, each run's
   * activations staying in the core's cache; the backend applies it only
   * where that computes the same rows (tfx_backend_prefill_chunk); 0: the
   * whole call at once */
  int64_t prefill_chunk;
  int64_t weights_bytes; /* size of the bound weights blob */
  /* the quantize_weights pass's fallbacks, in node order (owned) */
  int n_quant_fallbacks;
  tfx_quant_fallback *quant_fallbacks;
  /* the permute_channels pass's record, in node order (owned) */
  int n_permutes;
  tfx_channel_permute *permutes;
  /* calibration data for w8a8(smooth = alpha) (--calibration FILE; owned, freed by tfx_graph_free_quant) */
  struct tfx_calib *calib;
} tfx_graph;

/* ---- types and weight formats (ir/dtype.c) ---- */
/* One entry of the format table. A tensor of a format stores, row after row
 * of its last dimension (R rows of K elements: the leading dims flattened),
 * a values plane of numel / block blocks of block_bytes, then (row_bytes > 0)
 * a scale plane of R entries of row_bytes, entry i for the i-th STORED row
 * (tfx_packed_row: a packed layout permutes rows, and its scales with them).
 * A packed layout (fx.panel > 0) permutes the elements of the values plane as
 * tfx_packed_index does floats; only element formats (block 1) can be packed. */
typedef struct tfx_dtype_info {
  const char *name; /* as printed: "f32", "q4_0", ... */
  int block;        /* elements per block along the last dimension (1: an element format) */
  int block_bytes;  /* bytes of one block */
  int row_bytes;    /* bytes of a row's entry in the scale plane (0: none) */
  int storage;      /* 1: a weight storage format (never a value's type) */
  /* Row r (K elements, in order) of an [R, K] tensor in this format stored at
   * data with the packed layout (NULL or panel 0: row-major), as f32 into
   * out; NULL when the format has no reference decoder yet. */
  void (*dequant_row)(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out);
} tfx_dtype_info;
/* The format table's entry of dt (NULL when dt is out of range). */
const tfx_dtype_info *tfx_dtype_info_of(tfx_dtype dt);
const char *tfx_dtype_name(tfx_dtype dt);
/* An IEEE half (binary16) as f32, exactly (subnormals, inf and NaN included). */
float tfx_f16_to_f32(uint16_t h);
/* Bytes per element of an element format (block 1) without a scale plane
 * counted; 0 for block formats (use tfx_type_bytes). */
int64_t tfx_dtype_size(tfx_dtype dt);
/* 1 when a weight operand (linear / fused_linear w, matmul b, embedding
 * table, MoE and router weights, MLA's wkv_b, concat, pack) may have this
 * type: f32 or a storage format. */
int tfx_dtype_weight_ok(tfx_dtype dt);
/* The stored row position of row r of an [R, K] weight in layout fx (r when
 * fx is NULL or row-major): where its scale-plane entry lives. */
int64_t tfx_packed_row(const tfx_fused *fx, int64_t R, int64_t r);
/* Byte offset of a format's scale plane in a tensor of numel elements. */
int64_t tfx_type_values_bytes(const tfx_type *t, int64_t t_value);
/* Row r of weight node w (a PARAM, or a PACK/CONCAT folded into one) stored
 * at data, decoded into out[0 .. last dim): 0, or -1 when its format has no
 * reference decoder. */
int tfx_weight_dequant_row(const tfx_node *w, const uint8_t *data, int64_t r, float *out);
/* Q4_K's 6-bit scale and min of sub-block j (0..7) from the block's 12 scale
 * bytes (ggml's get_scale_min_k4). */
void tfx_q4_k_scale_min(const uint8_t *scales, int j, int *sc, int *m);
/* Q3_K's 6-bit scale of group j (0..15) from the block's 12 scale bytes, as
 * stored (0..63; the value's factor is the result - 32). */
int tfx_q3_k_scale(const uint8_t *scales, int j);
/* Q3_K's scale bytes and d of a super-block (blk: 110 bytes) from its 16
 * group scales sc and the one of largest magnitude max_scale, as ggml's
 * quantize_row_q3_K_ref stores them (d = f16(max_scale / -32), 6-bit
 * clamp(nearest_int(-32 sc / max_scale), -32, 31) + 32; all zero when
 * max_scale is 0). */
void tfx_q3_k_put_scales(const float *sc, float max_scale, uint8_t *blk);
/* Q3_K's hmask and qs of a super-block (blk) from its 256 codes L (0..7,
 * the value (L - 4) times the group's scale). */
void tfx_q3_k_pack(const int8_t *L, uint8_t *blk);
/* Q3_K's 16 group fits of 256 values (ggml's make_q3_quants: the scale of
 * each group of 16, signed), and the one of largest magnitude. */
void tfx_q3_k_fit_scales(const float *x, float *sc, float *max_scale);
/* 1 when operand i of node n is read as a weight, so it may be stored in a
 * storage format (tfx_dtype_weight_ok; the operands type inference accepts
 * them in): linear / fused_linear w, matmul b, the embedding table, MoE
 * router and expert weights, MLA's wkv_b, concat and pack operands. Binding
 * keeps a file's format and quantize_weights quantizes only params read so
 * (ir/ops.c). */
int tfx_node_weight_operand(const tfx_node *n, int i);
/* ---- quantization (ir/quantize.c) ---- */
/* Quantizes x[0 .. K) into dst in format dt, bytes identical to ggml's
 * reference quantizers (quantize_row_*_ref) and the gguf package: q8_0,
 * q4_0, q5_0, q3_k, q4_k, q6_k; f16 and bf16 round to nearest even (bf16 keeps NaN a
 * quiet NaN). K must be a multiple of the format's block. Returns the bytes
 * written (K / block * block_bytes), or -1 when dt has no quantizer or K
 * does not divide into its blocks. */
int64_t tfx_quantize_row(tfx_dtype dt, const float *x, int64_t K, uint8_t *dst);
/* 1 when tfx_quantize_row can produce dt. */
int tfx_quantize_supported(tfx_dtype dt);
/* BitNet b1.58's ternary quantization of a row into tq2_0 blocks: with s =
 * max(mean_abs, 1e-5) (mean_abs: the mean |w| of the whole tensor), q =
 * clamp(rint(x / s), -1, 1) (rint: ties to even, as torch.round), every
 * block's d = f16(s). Returns the bytes written, or -1 when 256 does not
 * divide K. */
int64_t tfx_quantize_ternary_row(const float *x, int64_t K, float mean_abs, uint8_t *dst);
/* The format a weight whose rows hold K elements gets when dt is asked:
 * dt when K divides into its blocks, else llama.cpp's fallback (a K-quant
 * with K % 256 != 0 falls to a 32-block format: q4_k to q5_0, q6_k to q8_0,
 * q3_k to q4_0; a 32-block format with K % 32 != 0 to f16). */
tfx_dtype tfx_quantize_fallback(tfx_dtype dt, int64_t K);

/* Converts the data of param n (src, in n's format and layout: f32 or a
 * stored format) to format dt into dst (tfx_type_bytes of n's shape in dt):
 * each row decoded (tfx_weight_dequant_row), checked finite and quantized
 * (tfx_quantize_row; i8: the values plane, then the scale plane; tq2_t,
 * `ternary`: tq2_0's bytes with the whole tensor's mean |w|). quantize_weights converts a slot
 * with it, binding a tensor as it reads it (frontend/weights.c). 0, or -1
 * with a message naming the param. */
int tfx_quantize_param(const tfx_node *n, const uint8_t *src, tfx_dtype dt, uint8_t *dst, char *err, size_t errlen);
/* The format a param gets before it is bound (tfx_quantize_plan in
 * passes/quantize_weights.c, one per node): binding quantizes the tensor
 * into a slot of that format as it reads it, so the whole blob is never held
 * in its bound format. */
typedef struct tfx_quant_target {
  tfx_dtype dtype;
} tfx_quant_target;

/* The activations of a linear whose weight is an int8-block format
 * (tfx_node_act_quant) are quantized at run time, per row, in blocks of
 * TFX_ACT_QBLOCK along K, before the int8 dot products: amax = max |x_i|,
 * d = amax / 127 (f32), id = d != 0 ? 1 / d : 0, q_i = rint(x_i * id) (f32
 * arithmetic, round to nearest even). The kernels do exactly this; the
 * interpreter emulates it (the block's values become q_i * d). */
#define TFX_ACT_QBLOCK 32
/* One block of TFX_ACT_QBLOCK values: q and the scale d. */
void tfx_act_quant_block(const float *x, int8_t *q, float *d);
/* 1 when LINEAR / FUSED_LINEAR node n runs int8 dot products on quantized
 * activations: its weight is q8_0, q4_0, q5_0, q3_k, q4_k, q6_k or tq2_0 and the schedule does
 * not ask for f32 activations (g->schedule.act_f32); 2 for an i8 weight
 * (w8a8, K a multiple of TFX_ACT_QBLOCK), a zq* (ZeroQuant) or a tq2_t
 * (`ternary`) weight: the activations are quantized per token, one scale
 * for the whole row (tfx_act_quant_token). */
int tfx_node_act_quant(const tfx_graph *g, const tfx_node *n);
/* The arena workspace of such a linear at T = t (plan_memory reserves it, live
 * only while the node runs): its rows of x quantized once per call by a kernel
 * of their own, which every panel of the GEMM then reads (the backend's
 * k_linear_q8.c lays it out: the codes, a scale per block and per-sub-block
 * sums, at most TFX_ACT_WORK_ROW_BYTES(K) per row plus 64-byte alignment
 * of four arrays). 0 for other nodes and for fewer than TFX_ACT_WORK_MIN_ROWS
 * rows (those quantize into the kernel's own stack). */
#define TFX_ACT_WORK_ROW_BYTES(K) ((K) + (K) / 8 + (K))
#define TFX_ACT_WORK_MIN_ROWS 4
int64_t tfx_node_work_bytes(const tfx_graph *g, const tfx_node *n, int64_t t);
/* Per-token quantization of a row of K values (w8a8): amax over the row,
 * then d, id and q as tfx_act_quant_block. */
void tfx_act_quant_token(const float *x, int64_t K, int8_t *q, float *d);
/* w8a8's weights: per output channel, s = amax / 127, q = round(x / s)
 * (roundf, ties away from zero), id = s ? 1 / s : 0. */
void tfx_quantize_i8_row(const float *x, int64_t K, int8_t *q, float *scale);
/* ZeroQuant's group of n values (zq8_64 / zq8_128 blocks, n = 64 / 128; the 8-bit case of tfx_quantize_zq_group)
 * into its block: lo = min x, hi = max x, s = (hi - lo) / 255, raised to
 * max(|lo|, |hi|) / 32000 when smaller (so z fits an i16: a constant group
 * c gets s = |c| / 32000, z = -+32000 and decodes to c); d = f16(s) rounded
 * up (the smallest f16 >= s, so the codes reach hi; at most 65504), ds = d
 * as f32; ds == 0 (an all-zero group): z = 0, q = 0; else z =
 * roundf(-lo / ds), q_i = clamp(roundf(x_i / ds) + z, 0, 255) (roundf: ties
 * away from zero; f32 division). Bytes: d (f16), z (i16, little-endian), the
 * n codes. Decoded: ds * (float)(q - z). */
void tfx_quantize_zq8_group(const float *x, int n, uint8_t *blk);
/* The same for bits = 4 or 8: 2^bits - 1 levels (15: s = (hi - lo) / 15,
 * q clamped to 0 .. 15), the zero point's limit 32000 as above; 4-bit codes
 * packed by 32: byte j holds element j (low nibble) and j + 16 (high). */
void tfx_quantize_zq_group(const float *x, int n, int bits, uint8_t *blk);
/* ---- calibration data (ir/calib.c; docs/quantization.md, "Calibration") ----
 * Per linear, keyed by its weight param's name: the largest |x| of each of
 * its K input channels over the calibration tokens. */
typedef struct tfx_calib_entry {
  char *name;
  int64_t K;
  float *absmax; /* [K], finite, >= 0 */
  /* GPTQ's H = sum over the calibration rows of x x^T ([K, K] row-major, f64;
   * "TFXCALIB v2"), NULL when not recorded. Linears reading one value (Q, K,
   * V; w1, w3) share one H: h_owned is 1 on the entry that frees it. */
  double *H;
  int h_owned;
} tfx_calib_entry;
typedef struct tfx_calib {
  int n;
  tfx_calib_entry *e;
} tfx_calib;
/* The entry of name, or NULL. */
const tfx_calib_entry *tfx_calib_find(const tfx_calib *c, const char *name);
/* Adds (or returns) the entry of name with K channels, absmax zero; NULL out of memory or K mismatch.
 * Adding may move every entry (one array): earlier pointers are stale. */
tfx_calib_entry *tfx_calib_entry_get(tfx_calib *c, const char *name, int64_t K);
/* Gives entry e (of c) the H of value: shared with the entry `share`
 * (another entry of c whose H it is, same K) or a new zeroed one when share
 * is NULL. 0, or -1 out of memory or K mismatch. */
int tfx_calib_entry_hessian(tfx_calib_entry *e, const tfx_calib_entry *share);
/* Writes "TFXCALIB v2" (v1's fields, then each entry's H: none, its own, or
 * an earlier entry's); 0 or -1 with a message. */
int tfx_calib_save(const tfx_calib *c, const char *path, char *err, size_t errlen);
/* Reads and validates a file, v1 or v2 (magic, version, counts, names, sizes,
 * finite values, H's references); 0 or -1 with a message naming the file. */
int tfx_calib_load(const char *path, tfx_calib *out, char *err, size_t errlen);
/* The same from bytes in memory (what tfx_calib_load validates). */
int tfx_calib_parse(const uint8_t *data, size_t size, const char *what, tfx_calib *out, char *err, size_t errlen);
void tfx_calib_free(tfx_calib *c);

/* ---- GPTQ (ir/gptq.c; docs/quantization.md, "GPTQ") ----
 * Quantizes W [N, K] (f32, row-major) into q4_0 blocks (dst: N rows of K / 32
 * blocks; K % 32 == 0; groups of `group` columns from column 0, the last
 * one shorter when group does not divide K) with
 * GPTQ's column-by-column quantization and inverse-Hessian error
 * compensation: H [K, K] (sum x x^T, f64), H += damp * mean(diag H) * I,
 * U = chol(H^-1) upper (LAPACK dpotrf / dpotri), blocks of 128 columns with
 * lazy batch updates. A group's scale is q4_0's (d = max / -8, stored as f16)
 * from its columns' current values when its first column is reached (with
 * act_order: from the original weights, GPTQ's static groups); a group of 64
 * or 128 repeats its scale in each of its q4_0 blocks. 0, or -1 with a
 * message (a bad size, H not positive definite after dampening, a
 * non-finite value). */
int tfx_gptq_q4_0(const float *W, int64_t N, int64_t K, const double *H, int group, double damp, int act_order,
                  uint8_t *dst, char *err, size_t errlen);
/* GPTQ to 3 bits: the same into q3_k super-blocks (dst: N rows of K / 256
 * blocks of 110 bytes; K % 256 == 0). A row's super-block gets the scales
 * round-to-nearest q3_k would give its columns' current values when its
 * first column is reached (with act_order: its original values); each
 * column's code L = clamp(rint(w / s), -4, 3) + 4 against its group's stored
 * scale s = d (sc - 32) (s = 0: 4), the error of s (L - 4) compensated. */
int tfx_gptq_q3_k(const float *W, int64_t N, int64_t K, const double *H, double damp, int act_order, uint8_t *dst,
                  char *err, size_t errlen);

/* ---- choosing formats (ir/quant_choice.c) ---- */
/* A choice's spelling: NAME or NAME(key = value, ...) (a value a number or a
 * name; a positional argument has key ""). */
#define TFX_QUANT_MAX_ARGS 4
typedef struct tfx_quant_spec {
  char name[32];
  int n_args;
  struct {
    char key[32];
    char value[32];
  } args[TFX_QUANT_MAX_ARGS];
} tfx_quant_spec;
/* Parses text (blanks allowed around the tokens); 0, or -1 with a message. */
int tfx_quant_spec_parse(const char *text, tfx_quant_spec *out, char *msg, size_t msglen);
/* The choice text stands for: f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k (FORMAT),
 * w8a8, w8a8(smooth = alpha) and llm_int8(threshold = t) (FORMAT i8), none (KEEP), q4_k_m (Q4_K_M,
 * only when allow_preset; smooth and llm_int8 likewise: whole-model options). 0, or
 * -1 with a message naming the valid choices. */
int tfx_quant_choice_parse_msg(const char *text, int allow_preset, tfx_quant_choice *out, char *msg, size_t msglen);
/* tfx_quant_choice_parse_msg without the message. */
int tfx_quant_choice_parse(const char *name, int allow_preset, tfx_quant_choice *out);
/* "q8_0", "none", "q4_k_m" */
const char *tfx_quant_choice_name(tfx_quant_choice c);
/* The names tfx_quant_choice_parse knows, for messages: "f16, bf16, ..., none". */
const char *tfx_quant_choice_names(int allow_preset);
/* 1 when name matches pattern ('*': any run of characters, dots included). */
int tfx_quant_pattern_match(const char *pattern, const char *name);
/* Adds a rule to g->schedule (the pattern copied); 0, or -1 out of memory. */
int tfx_graph_add_quant_rule(tfx_graph *g, const char *pattern, tfx_quant_choice c, int line, int col);
/* Records a fallback in g; 0, or -1 out of memory. */
int tfx_graph_add_quant_fallback(tfx_graph *g, const char *name, tfx_dtype asked, tfx_dtype got, int64_t K);
/* 1 when g asks for any format change (a default other than KEEP, or a rule). */
int tfx_graph_asks_quant(const tfx_graph *g);
/* The choice for the param named name: the schedule's default, then the
 * last quantize { } rule matching the name (name NULL: the default). */
tfx_quant_choice tfx_graph_param_choice(const tfx_graph *g, const char *name);
/* 1 when the default or a rule asks sparse24(..., permute = true) not yet
 * done; tfx_graph_permute_done marks them done (permute = 2). */
int tfx_graph_asks_permute(const tfx_graph *g);
void tfx_graph_permute_done(tfx_graph *g);
/* Records a permuted weight in g; 0, or -1 out of memory. */
int tfx_graph_add_permute(tfx_graph *g, const char *name, double kept_before, double kept_after);
/* Frees g's rules and fallbacks (tfx_graph_free calls it). */
void tfx_graph_free_quant(tfx_graph *g);
tfx_type tfx_type_make(tfx_dtype dt, int rank, const int64_t *dims);
int tfx_type_equal(const tfx_type *a, const tfx_type *b);
int tfx_type_has_t(const tfx_type *t);
/* number of elements / bytes with T bound to `t_value` (bytes: the format's
 * values and scale planes) */
int64_t tfx_type_numel(const tfx_type *t, int64_t t_value);
int64_t tfx_type_bytes(const tfx_type *t, int64_t t_value);
/* "f32[T, 64]"; returns buf */
char *tfx_type_str(const tfx_type *t, char *buf, size_t len);

/* Writes a printf-style message to err (when non-NULL) and returns -1: the
 * error convention of every function taking (char *err, size_t errlen). */
int tfx_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the op table (ir/ops.h, ir/ops.c) ---- */
/* Traits of an op (the TFX_OP rows of ir/ops.h). */
enum {
  TFX_TRAIT_ROW_WISE = 1 << 0,    /* row t of the value depends only on row t of its operands with T rows */
  TFX_TRAIT_ROW_WISE_IF = 1 << 1, /* row-wise unless its attributes or operands say otherwise (tfx_node_row_wise) */
  TFX_TRAIT_CSE = 1 << 2,         /* pure: equal operands and attributes give the same value (passes/cse.c) */
  TFX_TRAIT_KV_CACHE = 1 << 3,    /* may own a KV cache slot (tfx_node_kv_bytes) */
  TFX_TRAIT_NO_KERNEL = 1 << 4,   /* launches no kernel: a source, a view, or folded into a PARAM */
  TFX_TRAIT_SOURCE = 1 << 5,      /* INPUT / PARAM: has a value without being computed */
  TFX_TRAIT_FOLDED = 1 << 6,      /* a weight transform constant-folded into a PARAM (passes/fold_weights.c) */
  TFX_TRAIT_VIEW = 1 << 7,        /* its value is a view into operand 0's slot (no slot, no kernel of its own) */
  TFX_TRAIT_STATE = 1 << 8,       /* keeps a recurrent state in the session's KV storage (tfx_node_kv_bytes) */
};
/* The operand whose arena slot the result may take (passes/plan_memory.c). */
typedef enum {
  TFX_INPLACE_NONE,
  TFX_INPLACE_FIRST,   /* operand 0 (same type) */
  TFX_INPLACE_EITHER,  /* operand 0, or operand 1 when it has the result's type */
  TFX_INPLACE_RESIDUAL /* the residual operand when present (tfx_residual_operand) */
} tfx_inplace;
/* The node attributes (TFX_ATTR rows of ir/ops.h). */
typedef enum {
#define TFX_ATTR(ID, name, field, kind, pname, values) TFX_ATTR_##ID,
#include "ops.h"
#undef TFX_ATTR
  TFX_ATTR_COUNT
} tfx_attr_id;
#define TFX_A(ID) (UINT64_C(1) << TFX_ATTR_##ID)
typedef enum { TFX_ATTR_KIND_INT, TFX_ATTR_KIND_UINT, TFX_ATTR_KIND_DOUBLE, TFX_ATTR_KIND_BYTES } tfx_attr_kind;
typedef struct {
  const char *name; /* "eps" */
  size_t offset;    /* in tfx_node */
  size_t size;      /* bytes of the field */
  tfx_attr_kind kind;
  const char *print;         /* the name the IR's text prints ("approximate") */
  const char *const *values; /* the printed names of its values, NULL-terminated; NULL: the number */
} tfx_attr_desc;
typedef struct {
  const char *name; /* the text name ("rmsnorm") */
  int min_inputs, max_inputs;
  const char *roles; /* the operands' roles ("x,gain"); see ir/ops.h */
  unsigned traits;   /* TFX_TRAIT_* */
  tfx_inplace inplace;
  uint64_t attrs;     /* TFX_A(...) of the attributes it reads */
  const char *interp; /* the interpreter entry's token ("rmsnorm": tfx_interp_op_rmsnorm) */
  const char *emit;   /* the backend emitter's token ("rmsnorm": tfx_cg_emit_rmsnorm) */
  const char *infer;  /* type inference's token ("norm": tfx_infer_norm) */
  const char *check;  /* the verifier's attribute check ("norm": tfx_check_norm; "none") */
  const char *print;  /* the printer's token ("attrs": the generic tfx_print_attrs) */
  const char *cost;   /* passes/stats.c's cost token ("reduce_row") */
} tfx_op_desc;
/* The row of op in ir/ops.h (a row of "?" with nothing set for a bad op). */
const tfx_op_desc *tfx_op_info(tfx_op op);
int tfx_op_has(tfx_op op, unsigned trait);
const tfx_attr_desc *tfx_attr_info(tfx_attr_id id);
/* 1 when a and b (same op) have equal values of every attribute their op reads. */
int tfx_node_attrs_equal(const tfx_node *a, const tfx_node *b);
/* Writes "name=value;..." for every attribute n's op reads, in table order
 * (doubles exactly, %a; structs and arrays as a 64-bit hash), into buf.
 * Returns the length it needed (as snprintf): a result >= len means buf was
 * too small. */
int tfx_node_attr_key(const tfx_node *n, char *buf, size_t len);
/* Row-wise (TFX_TRAIT_ROW_WISE, or ROW_WISE_IF and its condition): row t of
 * n depends only on row t of its operands with T rows. */
int tfx_node_row_wise(const tfx_graph *g, const tfx_node *n);
/* The index of n's residual operand (TFX_INPLACE_RESIDUAL ops), -1 if none. */
int tfx_residual_operand(const tfx_node *n);

/* ---- graph and builder ---- */
tfx_graph *tfx_graph_new(const char *name, int64_t max_seq);
void tfx_graph_free(tfx_graph *g);
/* Gives g a copy of a tokenizer file's bytes (replacing any; bytes 0: none):
 * 0, or -1 on bad arguments or out of memory. */
int tfx_graph_set_tokenizer(tfx_graph *g, const void *data, int64_t bytes);
const char *tfx_op_name(tfx_op op);
/* Appends a node with its attributes taken from *proto (op, inputs, attrs;
 * id/type are ignored), infers the result type and returns the new id. On a
 * type error returns -1 and writes a message naming both shapes to err. */
int tfx_graph_add(tfx_graph *g, const tfx_node *proto, char *err, size_t errlen);
int tfx_graph_add_input(tfx_graph *g, const char *name, tfx_type type);
int tfx_graph_add_param(tfx_graph *g, const char *name, tfx_type type);
tfx_node tfx_node_proto(tfx_op op, int n_inputs, const int *inputs);
/* Infers node->type from its inputs; 0 on success, -1 with a message. */
int tfx_infer_type(const tfx_graph *g, const tfx_node *n, tfx_type *out, char *err, size_t errlen);
/* Number of floats of one row of a value (its last dim) and number of rows
 * with T bound to t_value. */
int64_t tfx_node_cols(const tfx_node *n);
int64_t tfx_node_rows(const tfx_node *n, int64_t t_value);

/* ---- verifier (ir/verify.c) ---- */
/* 0 if g is well formed (topological order, input arity, types equal the
 * inferred ones, attributes in range, params bound when require_bound);
 * otherwise -1 and a message "%id (op): what is wrong". */
int tfx_verify(const tfx_graph *g, int require_bound, char *err, size_t errlen);

/* ---- the optimizer's ops (ir/fused.c) ---- */
/* Operand index of a FUSED_LINEAR role, or -1 when the node has none. */
typedef enum {
  TFX_FL_X,
  TFX_FL_W,
  TFX_FL_BIAS,
  TFX_FL_STATS,
  TFX_FL_GAIN,
  TFX_FL_NBIAS,
  TFX_FL_RESIDUAL,
  TFX_FL_RSTATS, /* rnorm: the residual's normalization */
  TFX_FL_RGAIN,
  TFX_FL_RNBIAS
} tfx_fl_role;
int tfx_fl_operand(const tfx_node *n, tfx_fl_role role);
/* Operand index of an EMBEDDING role (-1 when absent). */
typedef enum { TFX_EMB_TABLE, TFX_EMB_IDS, TFX_EMB_POS, TFX_EMB_ROW, TFX_EMB_GAIN, TFX_EMB_NBIAS } tfx_emb_role;
int tfx_emb_operand(const tfx_node *n, tfx_emb_role role);
int tfx_emb_n_operands(const tfx_fused *fx);
/* Operand index of a MOE_UP / MOE_ROUTE (router) role (-1 when absent):
 * x, route (MOE_UP) or router weight (MOE_ROUTE), w1, w3, stats, gain, nbias. */
typedef enum { TFX_MOE_X, TFX_MOE_W1, TFX_MOE_W3, TFX_MOE_STATS, TFX_MOE_GAIN, TFX_MOE_NBIAS } tfx_moe_role;
int tfx_moe_operand(const tfx_node *n, tfx_moe_role role);
/* The statistics a node's kernel writes for a NORM_STATS from the epilogue
 * (fx.stats_out of a FUSED_LINEAR, EMBEDDING or MOE_DOWN), TFX_NORM_NONE
 * otherwise; and the number of columns they cover (the segment stats_seg
 * of a planar fused linear, else the node's columns). */
int tfx_stats_writer(const tfx_node *n);
int64_t tfx_stats_cols(const tfx_node *n);
int tfx_fl_n_operands(const tfx_fused *fx); /* operands a FUSED_LINEAR with these attributes takes */
int tfx_fl_planar(const tfx_node *n);       /* FUSED_LINEAR whose output is planar */
/* Arena bytes of a value's slot with T = t: its type's, except a NORM_STATS
 * from an epilogue, which holds 2 floats per row and group of
 * TFX_STATS_GROUP columns of its input. */
int64_t tfx_node_slot_bytes(const tfx_graph *g, const tfx_node *n, int64_t t);
/* The NORM_STATS (index 1) a node with stats_out (tfx_stats_writer) writes, or -1. */
int tfx_fl_stats_node(const tfx_graph *g, int id);
unsigned tfx_fl_perm(const tfx_node *n); /* segments with half-split RoPE (kernels compute them in pair order) */
/* The fully unrolled decode kernel of a FUSED_LINEAR (issue 16, "small
 * models fully unrolled"; backend/k_linear.c): 1 when its one-row (decode)
 * product runs as one work item of straight-line code: packed f32 weights
 * (k-major panels, kc = 1), x one row per token, K <= TFX_UNROLL_MAX_K and
 * the weights at most TFX_UNROLL_MAX_BYTES (the code grows with them: one
 * FMA per k and W weights), under schedule { unroll = on }. The cost
 * model (unroll = auto, the default) does not choose it: measured 0.91x on
 * stories260K and 0.96-0.98x on models whose weights fit L1
 * (docs/performance.md, issue 16); never with unroll = off. */
#define TFX_UNROLL_MAX_K 256
#define TFX_UNROLL_MAX_BYTES (256 * 1024)
int tfx_fl_unrolled(const tfx_graph *g, const tfx_node *n);
/* Float index of element (r, k) of a [R, K] weight in the packed layout of
 * fx (panel > 0): each row segment is cut into panels of `panel` rows (the
 * last may be shorter, p rows); inside a panel, K is cut into chunks of kc
 * floats, chunk-major, each chunk holding its p rows of kc floats; the last
 * K % kc columns follow as p rows of K % kc floats. Segments with a bit in
 * fx->perm store their rows in half-RoPE pair order (tfx_pair_pos). */
int64_t tfx_packed_index(const tfx_fused *fx, int64_t R, int64_t K, int64_t r, int64_t k);
/* The packed layout pack_weights gives weights (fx.panel, fx.kc above). It
 * belongs to the target: the backend's target description says which layout
 * its kernels read (tfx_backend_pack_layout) and the driver hands it to the
 * passes (tfx_pass_options.pack). Pipelines run without a target use
 * tfx_pass_options_init's default, the layout of every current target. */
typedef struct tfx_pack_layout {
  int panel; /* weight rows (output columns) per panel */
  int kc;    /* floats per chunk of K inside a panel (1: for each k the panel's rows are contiguous) */
} tfx_pack_layout;
/* Half-split RoPE pair order of a head of hd rows, rd rotated: the stored
 * position of row i, and the row stored at position q. */
int64_t tfx_pair_pos(int64_t i, int hd, int rd);
int64_t tfx_pair_row(int64_t q, int hd, int rd);
/* RoPE's inverse frequency of pair k of rd rotated dims: theta^(-2k/rd) (the
 * angle of position p is p times it; the interpreter and the kernels' tables
 * both take it from here). */
double tfx_rope_inv_freq(double theta, int64_t k, int64_t rd);
/* Rotates x[0..rd) in place by position p, in double: pairs (2k, 2k+1)
 * (interleaved) or (k, k + rd/2) (half), angle p * tfx_rope_inv_freq(theta,
 * k, rd). The interpreter's one RoPE (ROPE, the fused epilogue, MLA). */
void tfx_rope_rotate(double *x, int64_t rd, double p, double theta, tfx_rope_style style);
const char *tfx_act_name(int act);

/* ---- printer (ir/print.c) ---- */
void tfx_print_graph(const tfx_graph *g, FILE *out);

/* ---- reference interpreter (ir/interp.c) ---- */
typedef struct tfx_interp tfx_interp;
/* weights: the bound blob (param data at node->weight_offset). */
tfx_interp *tfx_interp_new(const tfx_graph *g, const uint8_t *weights);
/* Runs one forward over n tokens (or n rows of f32 input) at the session's
 * position, appending to its KV cache; out receives [n, out_cols] floats. */
int tfx_interp_forward(tfx_interp *it, const void *input, int64_t n, float *out, char *err, size_t errlen);
/* The same for a forward with several inputs: inputs[i] is the value of
 * g->fwd_inputs[i] ([n] int32 ids or masks, [n] floats, or the first input as
 * above); n_inputs must be g->n_fwd_inputs. Ids read by an embedding are
 * checked against its table's rows. */
int tfx_interp_forward_inputs(tfx_interp *it, const void *const *inputs, int n_inputs, int64_t n, float *out, char *err,
                              size_t errlen);
/* The same with the rows of each input: rows[i] is the call's rows S of a
 * source input (an extra input with static rows N: 1 <= S <= N; the
 * interpreter pads it to N rows with zeros and fills the row mask), ignored
 * (0 or n) for the others; rows NULL: every source has N rows. n_inputs is
 * the caller's inputs (g->n_fwd_inputs without the hidden row mask). */
int tfx_interp_forward_rows(tfx_interp *it, const void *const *inputs, const int64_t *rows, int n_inputs, int64_t n,
                            float *out, char *err, size_t errlen);
/* The number of inputs a caller passes: g->n_fwd_inputs without the hidden
 * row mask of the sources. */
int tfx_graph_caller_inputs(const tfx_graph *g);
/* 1 when forward input k (index in g->fwd_inputs) is a source: an extra
 * input of static rows (not the hidden row mask). */
int tfx_graph_input_is_source(const tfx_graph *g, int k);
void tfx_interp_reset(tfx_interp *it);
void tfx_interp_free(tfx_interp *it);
/* Called after each computed node of tfx_interp_forward with the values of
 * the call (vals[id]: f32 or i32, n rows; a node's operands are still
 * there): what `tfxc calibrate` records. */
typedef void (*tfx_interp_observer)(void *user, const tfx_graph *g, const tfx_node *nd, const void *const *vals,
                                    int64_t n);
void tfx_interp_set_observer(tfx_interp *it, tfx_interp_observer fn, void *user);

/* ---- attention variants (ir/attention.c) ---- */
/* (their type inference, tfx_infer_attention / tfx_infer_mla: ir/op_fns.h) */
/* ALiBi slope of query head h (0-based) of `heads`: 2^(-8(h+1)/H) when H is a
 * power of two; otherwise, with n the largest power of two < H, heads
 * 0..n-1 take n's slopes and head n+k takes 2^(-8(2k+1)/(2n)) (the odd terms
 * of 2n's sequence), as in the ALiBi paper and BLOOM. */
double tfx_alibi_slope(int h, int heads);
/* ATTENTION's score scale: the node's scale when > 0 (`scale = ..`, T5's
 * none is 1), else 1/sqrt(head_dim). */
double tfx_attn_scale(const tfx_node *n);
/* T5's relative position bucket of rel = j - i (key minus query position):
 * with bidirectional, buckets/2 per direction (keys after the query in the
 * upper half), else only rel <= 0 counts (rel > 0 is bucket 0); per
 * direction, distances below half its buckets are exact, the rest
 * logarithmic up to max_distance (computed in f32 as Hugging Face's
 * _relative_position_bucket), capped at the last bucket. */
int tfx_t5_bucket(int64_t rel, int bidirectional, int buckets, int max_distance);
/* Number of BigBird blocks for max_seq: ceil(max_seq / block). */
int64_t tfx_bigbird_blocks(const tfx_sparse *s, int64_t max_seq);
/* The `random` blocks drawn for query block qb (out[0..random-1]):
 * x = seed + 0x9E3779B97F4A7C15 * (qb + 1) (mod 2^64; if 0, 0x9E3779B97F4A7C15);
 * per draw: x ^= x << 13; x ^= x >> 7; x ^= x << 17 (xorshift64, mod 2^64);
 * block = x % range, range = qb + 1 when causal, else tfx_bigbird_blocks. */
void tfx_bigbird_random_blocks(const tfx_sparse *s, int causal, int64_t max_seq, int64_t qb, int64_t *out);
/* 1 when query position i may attend key position j under n's mask and
 * sparse pattern (ATTENTION, MLA_ATTENTION). */
int tfx_attn_allowed(const tfx_node *n, int64_t i, int64_t j, int64_t max_seq);
/* The block rule of the same predicate: over query positions [i0, i1) and
 * key positions [j0, j1), NONE when tfx_attn_allowed holds for no pair,
 * FULL when it holds for every pair, PARTIAL otherwise (an empty block is
 * NONE). Exact for every mask and pattern except Longformer's FULL (a block
 * whose pairs are allowed partly by the window and partly by global tokens
 * may answer PARTIAL); PARTIAL is always a safe answer. The cost is O(1)
 * per pattern, BigBird's O(random) per query block of the range. */
tfx_attn_block tfx_attn_block_allowed(const tfx_node *n, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                      int64_t max_seq);
/* The gathered form of a pattern whose allowed pairs lie within residue
 * classes mod k (dilated(k >= 2, window w)): returns k and sets *sub to a copy
 * of n whose pattern is what each class sees on its own compressed indices:
 * for every residue c, tfx_attn_allowed(n, c + a k, c + b k) ==
 * tfx_attn_allowed(sub, a, b), and keys of another class are never allowed
 * (sub: sliding(ceil(w / k)), or none when w = 0). 0 for every other pattern
 * (Longformer's global tokens break the classes; dilation 1 is sliding). The
 * block-sparse schedule and the row walks visit one class with a stride of k
 * (k_flash_attention.c, k_attn_softmax.c). */
int tfx_attn_gather(const tfx_node *n, tfx_node *sub);
/* The schedule of today's automatic rule: FLASH for an ATTENTION without a
 * sparse pattern unless the graph's schedule says attention = dense, else
 * ROW. The pass writes it; the backend applies it to an UNSET node. */
tfx_attn_sched tfx_attn_schedule_auto(const tfx_graph *g, const tfx_node *n);
/* 1 when node n can run schedule s (ROW: always; FLASH: ATTENTION without
 * a sparse pattern). */
int tfx_attn_schedule_applicable(const tfx_node *n, int s);
/* The schedule an entry runs: the decode entry (one query row) ROW; the
 * forward entry the node's attn_schedule, or tfx_attn_schedule_auto when
 * UNSET. */
tfx_attn_sched tfx_attn_schedule_of(const tfx_graph *g, const tfx_node *n, int decode);
const char *tfx_attn_schedule_name(int s); /* "row", "flash"; "unset" */
/* Split decode (the decode entry of a causal ATTENTION with q, k, v: the
 * query's keys in `splits` parts, each part's (max, sum, output) written to
 * the rows 1.. of the node's own output slot, then merged): 1 when the node
 * can run it with that many parts: the partials, splits * (d + 2) floats a
 * head, fit in max_seq - 1 rows of H * d, and the node is not the graph's
 * output (whose buffer is the caller's). */
#define TFX_ATTN_MAX_SPLITS 64
int tfx_attn_split_fits(const tfx_graph *g, const tfx_node *n, int splits);
/* The tiny-head decode kernel (backend/k_tiny_heads.c) applies: a causal dense ATTENTION (no pattern, ALiBi or
 * relative bias) with head_dim <= TFX_ATTN_TINY_D. */
#define TFX_ATTN_TINY_D 16
int tfx_attn_tiny_fits(const tfx_graph *g, const tfx_node *n);
/* The cost model's rule for it (schedule { decode = auto }): it fits and head_dim is a power of two
 * <= TFX_ATTN_TINY_AUTO_D (the backend's packed body, measured faster than the row kernel on
 * stories260K, docs/performance.md "Small models"). */
#define TFX_ATTN_TINY_AUTO_D 16
int tfx_attn_tiny_auto(const tfx_graph *g, const tfx_node *n);
/* The decode entry runs node n with it: the node not split, it fits, and schedule { decode = tiny } or
 * schedule { decode = auto } with tfx_attn_tiny_auto. */
int tfx_attn_tiny_chosen(const tfx_graph *g, const tfx_node *n);
/* Checks the mask, alibi, sparse and schedule attributes; 0 or -1 with a
 * message (the check column of ATTENTION and MLA_ATTENTION). */
int tfx_check_attention(const tfx_node *n, char *err, size_t errlen);
/* ATTENTION's operand index of T5's relative bias table (3) and of its key
 * mask (the last, with key_mask = 1), -1 when it has none. */
int tfx_attn_bias_operand(const tfx_node *n);
int tfx_attn_key_mask_operand(const tfx_node *n);
/* Longformer's global positions, ascending and distinct, below `rows`: 0 .. n_global - 1 (at most
 * rows of them) then the listed positions not among those. Writes up to max of them to out (may be
 * NULL) and returns how many there are. */
int64_t tfx_attn_global_rows(const tfx_sparse *s, int64_t rows, int64_t *out, int64_t max);
/* GLOBAL_ATTENTION's key mask operand (4, with key_mask = 1), -1 when none. */
int tfx_global_attn_key_mask_operand(const tfx_node *n);
/* ATTENTION's or GLOBAL_ATTENTION's per-call global tokens (sparse.global_input: the last operand, i32[T],
 * nonzero = global), -1 when none. */
int tfx_attn_global_operand(const tfx_node *n);
/* ATTENTION's segment ids operand (the last, with segments = 1), -1 when none. */
int tfx_attn_segments_operand(const tfx_node *n);
/* The segment of row i among rows 0..n-1 of seg: the maximal run [*lo, *hi)
 * of consecutive rows with seg[i]'s id. */
void tfx_segment_bounds(const int32_t *seg, int64_t n, int64_t i, int64_t *lo, int64_t *hi);
/* Bytes of the node's KV cache slot (0 when it keeps nothing): causal
 * ATTENTION 2 * max_seq * G * d * 4 (K then V), MLA_ATTENTION
 * max_seq * (r + dr) * 4. */
int64_t tfx_node_kv_bytes(const tfx_node *n, int64_t max_seq);
/* The node whose KV cache slot a causal ATTENTION reads: the first causal
 * ATTENTION (lowest id) with the same k and v operands, kv_heads and
 * head_dim. Those nodes share one slot (YOCO's cross-decoder: one global
 * K and V read by every layer); the owner stores the call's rows, the
 * others only read. n->id when n owns its slot; -1 when n keeps no KV
 * cache (not a causal ATTENTION). */
int tfx_attn_kv_owner(const tfx_graph *g, const tfx_node *n);
/* ir/recurrent.c: RETENTION's decay of head h, 1 - 2^(-5-h) (RetNet); the
 * state bytes of a TFX_TRAIT_STATE node (RETENTION, INFINI_ATTENTION) */
double tfx_retention_gamma(int h);
int64_t tfx_recurrent_state_bytes(const tfx_node *n);

#endif
