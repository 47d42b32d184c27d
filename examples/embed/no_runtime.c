/* examples/embed/no_runtime.c — a model called without the runtime: only the
 * model's object and the typed entry points of its generated header
 * (stories260k_call), so the program links no libtfxrt.a, no libffi, no
 * pthreads and allocates nothing; buffers are static arrays sized by the
 * header's macros. It runs the model's "decode" entry once per token on the
 * calling thread, picks the argmax itself, and prints the 16 ids it
 * generates greedily from BOS (the same as main.c's):
 *
 *   tfxc examples/llama/stories260k.tfx -c -o stories260k.o --emit-header stories260k.h
 *   cc -I. -I<tfx include dir> examples/embed/no_runtime.c stories260k.o
 *
 * (the headers only: <tfx/tfx.h> for the types). docs/embedding.md. */
#include <stdio.h>

#include "stories260k.h"

static _Alignas(STORIES260K_BUFFER_ALIGN) unsigned char arena[STORIES260K_ACTIVATIONS_SIZE];
static _Alignas(STORIES260K_BUFFER_ALIGN) unsigned char kv[STORIES260K_KV_CACHE_SIZE]; /* zero: static storage */
static float logits[STORIES260K_OUTPUT_WIDTH];

int main(void) {
  int32_t token = 1; /* BOS */
  printf("generated:");
  for (int64_t pos = 0; pos < 16; pos++) {
    int rc = stories260k_call("decode", &token, 1, pos, logits, arena, kv);
    if (rc != TFX_OK) {
      printf("\n");
      fprintf(stderr, "error: stories260k_call returned %d\n", rc);
      return 1;
    }
    int32_t best = 0; /* argmax, lowest id on ties (tfx_sample's greedy rule) */
    for (int32_t i = 1; i < STORIES260K_OUTPUT_WIDTH; i++)
      if (logits[i] > logits[best]) best = i;
    token = best;
    printf(" %d", token);
  }
  printf("\n");
  return 0;
}
