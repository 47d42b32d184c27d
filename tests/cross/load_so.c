/* tests/cross/load_so.c — a program for the target machine (test_cross
 * builds it with the cross compiler) that opens a model .so with
 * tfx_model_open and prints the 16 ids it generates greedily from BOS, as
 * examples/embed/main.c does for a linked-in model. */
#include <stdio.h>
#include <stdlib.h>

#include "tfx/tfx.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.so\n", argv[0]);
    return 2;
  }
  tfx_model *model = NULL;
  tfx_session *session = NULL;
  char err[512] = "";
  int rc = tfx_model_open_ex(argv[1], &model, err, sizeof err);
  if (rc == TFX_OK) rc = tfx_session_create(model, NULL, &session);
  if (rc != TFX_OK) {
    fprintf(stderr, "error: %s %s\n", tfx_error_message(rc), err);
    tfx_model_close(model);
    return 1;
  }
  int64_t width = tfx_model_descriptor(model)->output_width;
  float *logits = malloc((size_t)width * sizeof *logits);
  tfx_sampler greedy;
  tfx_sampler_init(&greedy, 0.0f, 1.0f, 0);
  int32_t token = 1; /* BOS */
  printf("generated:");
  for (int i = 0; i < 16 && rc == TFX_OK && logits; i++) {
    rc = tfx_forward(session, &token, 1, logits);
    if (rc == TFX_OK) token = tfx_sample(&greedy, logits, width);
    if (token < 0) rc = token;
    if (rc == TFX_OK) printf(" %d", token);
  }
  printf("\n");
  if (rc != TFX_OK) fprintf(stderr, "error: %s\n", tfx_error_message(rc));
  free(logits);
  tfx_session_free(session);
  tfx_model_close(model);
  return rc == TFX_OK && logits ? 0 : 1;
}
