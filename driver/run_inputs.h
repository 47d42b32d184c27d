/* driver/run_inputs.h — the extra forward inputs of `tfxc run` (--input
 * NAME=VALUES, --source TEXT): what the user gave, checked against the
 * model's input table, and the forward calls that pass them. */
#ifndef TFX_DRIVER_RUN_INPUTS_H
#define TFX_DRIVER_RUN_INPUTS_H

#include <stdint.h>

#include "../include/tfx/tfx.h"

#define TFX_DRV_MAX_RUN_INPUTS 8

/* one --input NAME=VALUES as typed */
typedef struct tfx_drv_input_arg {
  const char *text; /* "NAME=VALUES" (VALUES: numbers separated by blanks or commas, or @FILE) */
} tfx_drv_input_arg;

/* The inputs of a model's forward as the run feeds them; NULL when the model
 * has only its token input (then the plain tfx_forward_ex calls serve). */
typedef struct tfx_drv_inputs tfx_drv_inputs;

/* Reads a whole text file (a regular file: a FIFO or a directory is an error,
 * never a hang) into *text (NUL-terminated, newlines turned into blanks).
 * 0, or -1 after printing "tfxc: error: WHAT: ..." on stderr. */
int tfx_drv_read_text_file(const char *what, const char *path, char **text);

/* Checks the --input arguments and the --source ids (source_ids NULL: none)
 * against the model's inputs and builds *out (NULL for a model of one input
 * given nothing). n_fed is the rows the first call feeds (the prompt, BOS
 * included): a per-token input gives one row (for every row) or n_fed rows
 * (the generated rows repeat the last). 0, or the exit status after printing
 * the error. */
int tfx_drv_inputs_plan(const tfx_model *model, const char *model_name, const tfx_drv_input_arg *args, int n_args,
                        const int32_t *source_ids, int n_source, int n_fed, tfx_drv_inputs **out);

/* One forward call of the rows tokens[0..n) of the fed sequence starting at
 * row first (0 for the prompt): tfx_forward_ex when p is NULL, else
 * tfx_forward_inputs with each extra input's rows (p keeps a scratch buffer
 * for them). A TFX_ status. */
int tfx_drv_inputs_forward(tfx_drv_inputs *p, tfx_session *s, const int32_t *tokens, int32_t n, int64_t first,
                           float *out, int last_only);

void tfx_drv_inputs_free(tfx_drv_inputs *p);

#endif
