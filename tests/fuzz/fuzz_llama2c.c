/* tests/fuzz/fuzz_llama2c.c — libFuzzer target for the llama2.c checkpoint
 * loader: the input is the file's bytes. It is written to an in-memory file,
 * opened (header, sizes and offsets validated) and bound against a fixed tiny
 * LLaMA graph (dim 8, hidden 4, 1 layer, 2 heads, vocab 4, seq_len 4), which
 * reads every tensor when the header matches and reports missing, mis-shaped
 * and unused tensors when it does not. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "weights.h"

static const char tiny_source[] =
    "const dim = 8, hidden = 4, vocab = 4, max_seq = 4\n"
    "param tok_embeddings : f32[vocab, dim]\nparam norm : f32[dim]\n"
    "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
    "  param attention_norm : f32[dim]\n"
    "  param wq : f32[dim, dim]; param wk : f32[dim, dim]; param wv : f32[dim, dim]; param wo : f32[dim, dim]\n"
    "  param ffn_norm : f32[dim]\n"
    "  param w1 : f32[hidden, dim]\n  param w2 : f32[dim, hidden]\n  param w3 : f32[hidden, dim]\n"
    "  h = x + attention(rmsnorm(x, attention_norm), wq, wk, wv, wo, heads = 2, mask = causal, position = rope())\n"
    "  f = rmsnorm(h, ffn_norm)\n"
    "  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)\n"
    "}\n"
    "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
    "  return linear(rmsnorm(repeat(1) layer(embedding(tok_embeddings, tokens)), norm), tok_embeddings)\n"
    "}\n";

static tfx_graph *graph;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 MiB: far above the seeds' 1.8 KB, small enough to keep the fuzzer fast */
#define MAX_INPUT (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_INPUT) return 0;
  if (!graph) graph = tfx_fuzz_graph(tiny_source);
  const char *path = tfx_fuzz_write_file(data, size);
  if (!path) return 0;
  char err[512];
  tfx_wfile f;
  if (tfx_wfile_open_llama2c(path, &f, err, sizeof err) == 0) {
    /* the table the loader built stays inside the file */
    for (int i = 0; i < f.n_tensors; i++)
      if (f.tensors[i].file_offset + (uint64_t)tfx_type_bytes(&f.tensors[i].type, 1) > f.file_size) abort();
    tfx_wfile_close(&f);
  }
  tfx_weights w = {0};
  tfx_weights_bind(graph, path, "llama2c", &w, NULL, NULL);
  tfx_weights_free(&w);
  return 0;
}
