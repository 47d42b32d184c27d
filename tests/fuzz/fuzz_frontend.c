/* tests/fuzz/fuzz_frontend.c — libFuzzer target for the frontend: the input
 * is .tfx source text. It is parsed, checked and lowered without weights
 * (diagnostics to a null stream); an accepted program then goes through the
 * -O pipeline of `tfxc --emit=ir` (opt level = input size mod 4, the IR
 * verifier after every pass), the verifier and the printer. Any crash,
 * sanitizer report, leak or graph that does not verify is a finding; errors
 * are the expected outcome for most inputs. */
#include <stdlib.h>
#include <string.h>

#include "../../passes/passes.h"
#include "fuzz_common.h"

/* Larger inputs only slow the fuzzer down without reaching new code. */
#define MAX_INPUT (64 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the IR verifier runs after every pass of the pipeline */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setenv("TFX_VERIFY_PASSES", "1", 1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_INPUT) return 0;
  char *src = malloc(size + 1);
  if (!src) return 0;
  memcpy(src, data, size);
  src[size] = 0;
  FILE *null = tfx_fuzz_null_stream();
  tfx_frontend_options o = {0};
  o.no_weights = 1;
  o.diag = null;
  tfx_graph *g = NULL;
  int errors = tfx_frontend_compile("fuzz.tfx", src, &o, &g, NULL);
  if (errors == 0 && g) {
    char err[512];
    if (tfx_run_pipeline(g, (int)(size % 4), err, sizeof err) == 0) {
      if (tfx_verify(g, 0, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_frontend: the planned graph does not verify: %s\n", err);
        abort();
      }
      tfx_print_graph(g, null);
    } else if (!strncmp(err, "internal error", 14) || !strncmp(err, "invalid graph", 13)) {
      /* a pass broke the graph, or the frontend made one that does not verify */
      fprintf(stderr, "fuzz_frontend: %s\n", err);
      abort();
    }
  }
  tfx_graph_free(g);
  free(src);
  return 0;
}
