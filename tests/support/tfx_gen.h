/* tests/support/tfx_gen.h — a generator of random valid .tfx models for
 * differential testing. From a seed, a small Transformer of one or two
 * distinct blocks (each called once or stacked with repeat, with its own
 * prefix), drawing per model: token or f32 input; no, learned
 * (`positions`) or sinusoidal absolute positions; a decoder (causal, with a
 * KV cache) or an encoder (mask = none); a static source with an encoder
 * (nothing, a linear, or an attention + layernorm over its rows) for
 * cross-attention; a tied or untied classifier with or without a bias, and
 * sometimes a softmax over it. Per block: RMSNorm or LayerNorm, pre-norm,
 * post-norm or a shared-norm residual; a token mixer that is `attention`
 * (heads, grouped KV, biases, RoPE interleaved/half/partial with a random
 * base, or ALiBi, and a sparse pattern: sliding, dilated (with or without a
 * window), strided, fixed, Longformer (count or listed global tokens,
 * dilation), BigBird (global and seeded random blocks), with positional or
 * named arguments, under the model's mask) or, in decoders, `mla_attention`
 * (direct or low-rank query with or without q_norm, with or without
 * kv_norm, both RoPE pairings, a sparse pattern) or `retention` (with or
 * without groupnorm and the swish gate) or `infini_attention`, sometimes plus a
 * standalone `rope(...)` of a projection or of the normed input; an optional
 * cross-attention to the static encoder output or to a T-row tensor of the
 * block (under the model's mask, RoPE or ALiBi where the language allows);
 * a channel mixer that is a hand-written GLU (act(x W1) * x W3), the `glu`
 * builtin (sigmoid, relu, gelu, gelu_tanh, silu, none), a plain MLP
 * (linear or matmul down projection) with ReLU / GELU (erf, tanh) / SiLU /
 * sigmoid, a `moe` (top-k, softmax_topk or softmax gate, SwiGLU-style or
 * plain experts, a capacity with token dropping, shared experts) or none;
 * biases as `+ b` or `linear(.., b)`, a layer scale `* g`, operand orders;
 * after the embedding and positions, a token-type row and a norm; and
 * sometimes schedule { unroll = on } (the fully unrolled decode linears);
 * in decoders sometimes a YOCO cross-decoder after the blocks (two causal
 * `attend`s of one global k and v, which share one KV cache); in encoders
 * sometimes packed sequences: a second input `seq : i32[T]` of sequence ids
 * passed to every block, and `segments = seq` on (most of) the attentions,
 * the learned positions and the rope op; in GLUs by hand sometimes w1 and
 * w3 fused into one linear split by column slices (x[:, a:b]), in MLPs
 * sometimes a down projection of concat(parts of the hidden, the input).
 * The same seed always gives the same text. */
#ifndef TFX_TEST_GEN_H
#define TFX_TEST_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct tfx_gen_info {
  int tokens;    /* 1: input i32[T] tokens in [0, vocab); 0: f32[T, width] */
  int vocab;     /* token models */
  int width;     /* f32 models: input columns */
  int out_width; /* output columns */
  int max_seq;
  int causal; /* some attention keeps a KV cache (decode continues a sequence) */
  /* what the model uses (for the generator's coverage test) */
  int n_blocks;
  int sparse_kinds; /* bit k: sparse pattern k (1 sliding … 6 bigbird) somewhere */
  int alibi, rope, rope_op, mla, moe, moe_capacity, moe_shared, cross_static, cross_trows;
  int retention, infini; /* the mixers with a recurrent state */
  int linformer;         /* attend over seq_project'ed keys and values (encoders) */
  int learned_pos, sinusoidal, glu_builtin, layernorm, post_norm, softmax_out, matmul;
  int emb_row, emb_norm; /* a row added after the positions, a norm of the sum */
  int unroll;            /* schedule { unroll = on }: the decode linears fully unrolled */
  int yoco;              /* decoders: two causal attends sharing one k, v (one KV cache) after the blocks */
  /* encoders: packed sequences, a second forward input `seq : i32[T]` of
   * sequence ids (tfx_forward_inputs: the input's name is "seq"); then
   * seg_attn: some attention has `segments = seq` (incl. a T-row
   * cross-attention), seg_pos: positions(..., segments = seq), seg_rope:
   * the rope op with segments = seq */
  int segments, seg_attn, seg_pos, seg_rope;
  /* drawn from a third stream (the other choices of a seed stay as they
   * were): col_slice, a GLU by hand whose w1 and w3 are one linear split by
   * x[:, a:b]; concat, an MLP whose down projection reads concat(mm[:, :c],
   * f, mm[:, c:]) */
  int col_slice, concat;
} tfx_gen_info;

/* Writes the model of `seed` into buf (NUL-terminated). 0, or -1 when buf is
 * too small. */
int tfx_gen_model(uint64_t seed, char *buf, size_t len, tfx_gen_info *info);

#endif
