/* examples/embed/static_session.c — an application that embeds a model and
 * gives it static memory: the model structure, the arena, the KV cache and
 * the session structure are the program's own arrays, sized by the
 * generated header's macros, and the runtime allocates nothing
 * (stories260k_open_static, tfx_session_create_static: one thread, no pool,
 * no libffi call). Build it as main.c beside it:
 *
 *   tfxc examples/llama/stories260k.tfx -c -o stories260k.o --emit-header stories260k.h
 *   cc -I. $(pkg-config --cflags tfx) examples/embed/static_session.c stories260k.o \
 *      $(pkg-config --static --libs tfx)
 *
 * or with the minimal runtime, which needs only libc and libm (no malloc,
 * pthreads, libffi or dlopen; docs/embedding.md):
 *
 *   cc -I. -I<prefix>/include examples/embed/static_session.c stories260k.o \
 *      <prefix>/lib/libtfxrt_min.a -lm
 *
 * It generates 16 tokens greedily from BOS and prints their ids (the same as
 * main.c's); docs/embedding.md. */
#include <stdio.h>

#include "stories260k.h"

static tfx_model_storage model_storage;
static tfx_session_storage storage;
static _Alignas(STORIES260K_BUFFER_ALIGN) unsigned char arena[STORIES260K_ARENA_BYTES];
static _Alignas(STORIES260K_BUFFER_ALIGN) unsigned char kv[STORIES260K_KV_BYTES];
static float logits[STORIES260K_OUTPUT_WIDTH];

int main(void) {
  tfx_model *model = NULL;
  tfx_session *session = NULL;
  char err[256] = "";
  int rc = stories260k_open_static(&model_storage, &model, err, sizeof err);
  if (rc == TFX_OK)
    rc = tfx_session_create_static(model, arena, sizeof arena, kv, sizeof kv, &storage, &session, err, sizeof err);
  if (rc != TFX_OK) {
    fprintf(stderr, "error: %s %s\n", tfx_error_message(rc), err);
    tfx_model_close(model);
    return 1;
  }
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
  if (rc != TFX_OK) fprintf(stderr, "error: %s: %s\n", tfx_error_message(rc), tfx_session_last_error(session));
  tfx_session_free(session); /* frees nothing: the memory is ours */
  tfx_model_close(model);    /* likewise */
  return rc == TFX_OK ? 0 : 1;
}
