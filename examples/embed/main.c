/* examples/embed/main.c — an application that embeds a model compiled by
 * tfxc. Build it against the model's object and header and the runtime:
 *
 *   tfxc examples/llama/stories260k.tfx -c -o stories260k.o --emit-header stories260k.h
 *   cc -I. $(pkg-config --cflags tfx) examples/embed/main.c stories260k.o $(pkg-config --static --libs tfx)
 *
 * (an installed tfx; from the build tree: -Iinclude ... build/libtfxrt.a -lffi
 * -lpthread -ldl -lm). Makefile (pkg-config) and CMakeLists.txt
 * (find_package(tfx)) beside this file do the same; docs/embedding.md.
 *
 * It generates 16 tokens greedily from BOS and prints their ids. */
#include <stdio.h>

#include "stories260k.h"

int main(void) {
  tfx_model *model = NULL;
  tfx_session *session = NULL;
  int rc = stories260k_open(&model);
  if (rc == TFX_OK) rc = tfx_session_create(model, NULL, &session);
  if (rc != TFX_OK) {
    fprintf(stderr, "error: %s\n", tfx_error_message(rc));
    tfx_model_close(model);
    return 1;
  }
  static float logits[STORIES260K_OUTPUT_WIDTH];
  tfx_sampler greedy;
  tfx_sampler_init(&greedy, 0.0f, 1.0f, 0);
  int32_t token = 1; /* BOS */
  printf("generated:");
  for (int i = 0; i < 16 && rc == TFX_OK; i++) {
    rc = tfx_forward(session, &token, 1, logits);
    if (rc == TFX_OK) token = tfx_sample(&greedy, logits, STORIES260K_OUTPUT_WIDTH);
    if (token < 0) rc = token;
    if (rc == TFX_OK) printf(" %d", token);
  }
  printf("\n");
  if (rc != TFX_OK) fprintf(stderr, "error: %s\n", tfx_error_message(rc));
  tfx_session_free(session);
  tfx_model_close(model);
  return rc == TFX_OK ? 0 : 1;
}
