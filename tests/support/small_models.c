/* tests/support/small_models.c — the sources of small_models.h. */
#include "small_models.h"

const char tfx_test_typed_decoder[] =
    "model dec\n"
    "const dim = 16, vocab = 20, max_seq = 24, heads = 2\n"
    "weights \"random:5\"\n"
    "param emb : f32[vocab, dim]\n"
    "param temb : f32[3, dim]\n"
    "param wq : f32[dim, dim]\n"
    "param wk : f32[dim, dim]\n"
    "param wv : f32[dim, dim]\n"
    "param wo : f32[dim, dim]\n"
    "param g : f32[dim]\n"
    "param head : f32[vocab, dim]\n"
    "forward(tokens : i32[T], types : i32[T]) -> f32[T, vocab] {\n"
    "  x = embedding(emb, tokens) + embedding(temb, types)\n"
    "  x = x + attention(rmsnorm(x, g), wq, wk, wv, wo, heads = heads, mask = causal,\n"
    "                    position = rope(theta = 10000))\n"
    "  return linear(rmsnorm(x, g), head)\n"
    "}\n";
