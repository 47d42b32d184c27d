/* tests/fuzz/fuzz_safetensors.c — libFuzzer target for the safetensors
 * loader: the input is the file's bytes. It is written to an in-memory file,
 * sniffed, opened (header length, JSON, dtypes, shapes and data_offsets
 * validated) and bound against a fixed small graph, once by plain names and
 * once through renaming rules with placeholders, which converts F16/BF16 data
 * and reports missing, mis-shaped and unused tensors. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "weights.h"

static const char small_source[] = "const d = 8, vocab = 16, max_seq = 4\n"
                                   "param emb : f32[vocab, d]\n"
                                   "param g : f32[d]\n"
                                   "param w : f32[4, d]\n"
                                   "param b : f32[4]\n"
                                   "forward(t : i32[T]) -> f32[T, 4] {\n"
                                   "  return linear(rmsnorm(embedding(emb, t), g), w, b)\n"
                                   "}\n";

static const tfx_wrename rules[] = {
    {"model.embed_tokens.weight", "emb"},
    {"model.layers.{i}.norm.weight", "g"},
    {"lm_head.{i}.{j}", "w"},
    {"ignored.{k}", ""},
};

static tfx_graph *graph;

/* 1 MiB: far above the seeds' sizes, small enough to keep the fuzzer fast */
#define MAX_INPUT (1 << 20)

static uint64_t stored_bytes(const tfx_wfile_tensor *t) {
  uint64_t n = (uint64_t)tfx_type_numel(&t->type, 1);
  switch (t->dtype) {
  case TFX_WF_F32: return 4 * n;
  case TFX_WF_F16:
  case TFX_WF_BF16: return 2 * n;
  default: return 0; /* not bound: only its range was checked */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_INPUT) return 0;
  if (!graph) graph = tfx_fuzz_graph(small_source);
  const char *path = tfx_fuzz_write_file(data, size);
  if (!path) return 0;
  (void)tfx_wfile_looks_safetensors(path);
  char err[512];
  tfx_wfile f;
  if (tfx_wfile_open_safetensors(path, &f, err, sizeof err) == 0) {
    /* the table the loader built stays inside the file */
    for (int i = 0; i < f.n_tensors; i++)
      if (f.tensors[i].file_offset > f.file_size ||
          stored_bytes(&f.tensors[i]) > f.file_size - f.tensors[i].file_offset)
        abort();
    tfx_wfile_close(&f);
  }
  tfx_weights w = {0};
  tfx_weights_bind(graph, path, "safetensors", &w, NULL, NULL);
  tfx_weights_free(&w);
  tfx_weights_bind_renamed(graph, path, NULL, rules, (int)(sizeof rules / sizeof rules[0]), &w, NULL, NULL);
  tfx_weights_free(&w);
  return 0;
}
