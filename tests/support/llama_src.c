/* tests/support/llama_src.c — see llama_src.h. */
#include "llama_src.h"

#include <stdio.h>

int tfx_test_llama_source(char *buf, size_t len, const tfx_llama_shape *s) {
  int n = snprintf(buf, len,
                   "model %s\n"
                   "const dim = %d, layers = %d, heads = %d, kv_heads = %d, hidden = %d\n"
                   "const vocab = %d, max_seq = %lld, head_dim = dim / heads\n"
                   "param tok_embeddings : f32[vocab, dim]\n"
                   "param norm : f32[dim]\n"
                   "%s"
                   "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
                   "  param attention_norm : f32[dim]\n"
                   "  param wq : f32[heads * head_dim, dim]\n"
                   "  param wk : f32[kv_heads * head_dim, dim]\n"
                   "  param wv : f32[kv_heads * head_dim, dim]\n"
                   "  param wo : f32[dim, heads * head_dim]\n"
                   "  param ffn_norm : f32[dim]\n"
                   "  param w1 : f32[hidden, dim]\n"
                   "  param w2 : f32[dim, hidden]\n"
                   "  param w3 : f32[hidden, dim]\n"
                   "  a = rmsnorm(x, attention_norm, eps = 1e-5)\n"
                   "  h = x + attention(a, wq, wk, wv, wo, heads = heads, kv_heads = kv_heads,\n"
                   "                    position = rope(theta = 10000, style = interleaved), mask = causal)\n"
                   "  f = rmsnorm(h, ffn_norm, eps = 1e-5)\n"
                   "  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)\n"
                   "}\n"
                   "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                   "  x = embedding(tok_embeddings, tokens)\n"
                   "  x = repeat(layers) layer(x)\n"
                   "  return linear(rmsnorm(x, norm, eps = 1e-5), %s)\n"
                   "}\n",
                   s->name, s->dim, s->layers, s->heads, s->kv_heads, s->hidden, s->vocab, s->max_seq,
                   s->tied ? "" : "param output : f32[vocab, dim]\n", s->tied ? "tok_embeddings" : "output");
  return n < 0 || (size_t)n >= len ? -1 : 0;
}
