/* tests/support/tfx_gen.h — a generator of random valid .tfx models for
 * differential testing: from a seed, a small Transformer with random depth,
 * dimensions, norms (RMSNorm/LayerNorm, pre- or post-norm), attention (heads,
 * grouped KV, causal or no mask, RoPE interleaved/half/partial or none,
 * biases), feed-forward (GLU with a random activation, plain MLP, or none),
 * residual forms, biases added as `+ b`, a tied or untied classifier over
 * token or f32 input, the embedding's learned or sinusoidal positions,
 * token-type row and norm, and mixtures of experts (top-k, gates, GLU or
 * plain experts with any activation, shared experts) in place of the dense
 * FFN. The same seed always gives the same text. */
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
} tfx_gen_info;

/* Writes the model of `seed` into buf (NUL-terminated). 0, or -1 when buf is
 * too small. */
int tfx_gen_model(uint64_t seed, char *buf, size_t len, tfx_gen_info *info);

#endif
