/* examples/embed/two_models.c — two models compiled by tfxc in one program:
 * each object (`tfxc -c`) defines its own `<name>_descriptor` and
 * `<name>_weights_blob`, so both link together with one runtime:
 *
 *   tfxc examples/llama/stories260k.tfx -c -o stories260k.o --emit-header stories260k.h
 *   tfxc examples/llama/tiny.tfx --weights random -c -o tiny_llama.o --emit-header tiny_llama.h
 *   cc -Iinclude -I. examples/embed/two_models.c stories260k.o tiny_llama.o build/libtfxrt.a \
 *      -lffi -lpthread -ldl -lm
 *
 * It generates 16 tokens greedily from BOS with each model, one step of one
 * then one of the other, and prints each model's ids on its own line.
 * Built with -DONLY_STORIES or -DONLY_TINY it runs that model alone. */
#include <stdio.h>

#include <tfx/tfx.h>

#ifndef ONLY_TINY
#include "stories260k.h"
#endif
#ifndef ONLY_STORIES
#include "tiny_llama.h"
#endif

#define STEPS 16

typedef struct {
  const char *name;
  tfx_model *model;
  tfx_session *session;
  float *logits;
  int32_t width, token, ids[STEPS];
} runner;

static int start(runner *r, const char *name, int (*open)(tfx_model **), float *logits) {
  r->name = name;
  r->logits = logits;
  r->token = 1; /* BOS */
  int rc = open(&r->model);
  if (rc == TFX_OK) rc = tfx_session_create(r->model, NULL, &r->session);
  if (rc == TFX_OK) r->width = tfx_model_descriptor(r->model)->output_width;
  return rc;
}

static int step(runner *r, int i) {
  tfx_sampler greedy;
  tfx_sampler_init(&greedy, 0.0f, 1.0f, 0);
  int rc = tfx_forward(r->session, &r->token, 1, r->logits);
  if (rc != TFX_OK) return rc;
  r->token = tfx_sample(&greedy, r->logits, r->width);
  if (r->token < 0) return r->token;
  r->ids[i] = r->token;
  return TFX_OK;
}

static void finish(runner *r) {
  tfx_session_free(r->session);
  tfx_model_close(r->model);
}

int main(void) {
  runner rs[2] = {{0}};
  int n = 0, rc = TFX_OK;
#ifndef ONLY_TINY
  static float logits_a[STORIES260K_OUTPUT_WIDTH];
  if (rc == TFX_OK) rc = start(&rs[n++], "stories260k", stories260k_open, logits_a);
#endif
#ifndef ONLY_STORIES
  static float logits_b[TINY_LLAMA_OUTPUT_WIDTH];
  if (rc == TFX_OK) rc = start(&rs[n++], "tiny_llama", tiny_llama_open, logits_b);
#endif
  for (int i = 0; i < STEPS && rc == TFX_OK; i++)
    for (int m = 0; m < n && rc == TFX_OK; m++) rc = step(&rs[m], i);
  for (int m = 0; m < n && rc == TFX_OK; m++) {
    printf("%s:", rs[m].name);
    for (int i = 0; i < STEPS; i++) printf(" %d", rs[m].ids[i]);
    printf("\n");
  }
  if (rc != TFX_OK) fprintf(stderr, "error: %s\n", tfx_error_message(rc));
  for (int m = 0; m < n; m++) finish(&rs[m]);
  return rc == TFX_OK ? 0 : 1;
}
