/* tests/fuzz/fuzz_gguf.c — libFuzzer target for the GGUF loader: the input
 * is the file's bytes. It is written to an in-memory file, sniffed, opened
 * (magic, version, counts, metadata strings, arrays and value types,
 * alignment, tensor infos, extents validated) and bound against a fixed small
 * graph, once by plain names and once through renaming rules with
 * placeholders: binding keeps weight operands in their stored formats and
 * decodes the others (F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K) to f32. A table
 * that opens must keep every tensor inside the file. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "gguf.h"
#include "weights.h"

static const char small_source[] = "const d = 32, vocab = 16, max_seq = 4\n"
                                   "param emb : f32[vocab, d]\n"
                                   "param g : f32[d]\n"
                                   "param w : f32[4, d]\n"
                                   "param b : f32[4]\n"
                                   "forward(t : i32[T]) -> f32[T, 4] {\n"
                                   "  return linear(rmsnorm(embedding(emb, t), g), w, b)\n"
                                   "}\n";

static const tfx_wrename rules[] = {
    {"token_embd.weight", "emb"},
    {"blk.{i}.attn_norm.weight", "g"},
    {"output.{i}.{j}", "w"},
    {"ignored.{k}", ""},
};

static tfx_graph *graph;

/* 1 MiB: far above the seeds' sizes, small enough to keep the fuzzer fast */
#define MAX_INPUT (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_INPUT) return 0;
  if (!graph) graph = tfx_fuzz_graph(small_source);
  const char *path = tfx_fuzz_write_file(data, size);
  if (!path) return 0;
  (void)tfx_wfile_looks_gguf(path);
  char err[512];
  tfx_wfile f;
  if (tfx_wfile_open_gguf(path, &f, err, sizeof err) == 0) {
    /* the table the loader built stays inside the file */
    for (int i = 0; i < f.n_tensors; i++) {
      tfx_type t = f.tensors[i].type;
      t.dtype = f.tensors[i].storage;
      uint64_t bytes = f.tensors[i].dtype == TFX_WF_UNSUPPORTED ? 0 : (uint64_t)tfx_type_bytes(&t, 1);
      if (f.tensors[i].file_offset > f.file_size || bytes > f.file_size - f.tensors[i].file_offset) abort();
    }
    tfx_wfile_close(&f);
  }
  tfx_weights w = {0};
  tfx_weights_bind(graph, path, "gguf", &w, NULL, NULL);
  tfx_weights_free(&w);
  tfx_weights_bind_renamed(graph, path, NULL, rules, (int)(sizeof rules / sizeof rules[0]), &w, NULL, NULL);
  tfx_weights_free(&w);
  return 0;
}
