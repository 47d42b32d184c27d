/* tests/support/llama_src.h — the .tfx source of a Llama-architecture model of
 * a given shape (llama2.c's layout and names, interleaved RoPE, SwiGLU), for
 * tests that compile such models with random weights. */
#ifndef TFX_TEST_LLAMA_SRC_H
#define TFX_TEST_LLAMA_SRC_H

#include <stddef.h>

typedef struct tfx_llama_shape {
  const char *name; /* the model name */
  int dim, layers, heads, kv_heads, hidden, vocab;
  long long max_seq;
  int tied; /* the classifier is tok_embeddings (else a param `output`) */
} tfx_llama_shape;

/* Writes the source into buf; returns 0, or -1 when it does not fit. */
int tfx_test_llama_source(char *buf, size_t len, const tfx_llama_shape *s);

#endif
