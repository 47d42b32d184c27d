/* tests/support/testutil.h — helpers shared by the tests: where the real
 * model lives, reading reference files, temporary directories, running the
 * tfxc command and capturing its output. */
#ifndef TFX_TESTUTIL_H
#define TFX_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* TFX_MODELS_DIR from the environment, else ../shared/models beside the checkout. */
const char *tfx_test_models_dir(void);
/* models_dir + "/" + name in a static buffer per call site (copy it if kept). */
char *tfx_test_model_path(const char *name, char *buf, size_t len);
/* The real stories260K: its weights' path into bin, examples/llama/stories260k.tfx
 * into tfx, llama2.c's first n_ids greedy ids from BOS into ids; -1 (with a
 * message naming `who`) when the model or the ids are missing. */
int tfx_test_stories260k(const char *who, char *bin, size_t binlen, char *tfx, size_t tfxlen, int32_t *ids, int n_ids);
/* Reads a whole file; returns a malloc'd buffer (NUL-terminated) and its size, or NULL. */
char *tfx_test_read_file(const char *path, size_t *size);
/* Reads up to max whitespace-separated integers; returns how many. */
int tfx_test_read_ids(const char *path, int32_t *ids, int max);
/* Creates a fresh temporary directory; returns a malloc'd path. */
char *tfx_test_tmpdir(void);
/* Removes a directory and the files directly inside it. */
void tfx_test_rmdir(const char *dir);
/* Runs argv (argv[0] a path), stdout captured into a malloc'd string when out
 * is non-NULL, stderr into err likewise. Returns the exit status, or -1. */
int tfx_test_run(char *const argv[], char **out, char **err);
/* Runs a Python oracle script (argv[0] the interpreter of a venv that
 * scripts/NAME.sh makes): 0 when it exited 0; else -1, with its output and
 * the hint to run `setup` (e.g. "scripts/hfenv.sh") on stderr. */
int tfx_test_run_oracle(char *const argv[], const char *setup);
/* The transformers oracles of tests/hf/ (test_import_families,
 * test_import_encdec): a fresh work directory (returned, malloc'd; NULL on
 * failure) in which `python SOURCE/tests/hf/SCRIPT WORKDIR FAMILY...` wrote
 * one folder per family; and its removal (kept with TFX_TORCH_KEEP set). */
char *tfx_test_hf_families(const char *python, const char *script, const char *const *families, int n);
void tfx_test_hf_families_free(char *workdir, const char *const *families, int n);
/* A transformers oracle that writes its cases into one directory (test_inputs,
 * test_longformer_global): a fresh work directory (returned, malloc'd; NULL on
 * failure) in which `python SOURCE/tests/hf/SCRIPT WORKDIR` ran; a file of it
 * read whole (NULL when missing); and its removal (kept, and its path printed,
 * with TFX_TORCH_KEEP set). */
char *tfx_test_hf_oracle_dir(const char *python, const char *script);
void *tfx_test_hf_oracle_read(const char *workdir, const char *name, size_t *size);
void tfx_test_hf_oracle_dir_free(char *workdir);
/* Writes src to a temporary .tfx and runs `tfxc FILE --weights random
 * --emit=ir` on it: tfxc's exit status, its stderr in *err (malloc'd). */
int tfx_test_compile_text(const char *src, char **err);
/* Index of the largest value, lowest on ties. */
int tfx_test_argmax(const float *v, int n);
/* max |a - b| over n floats. */
double tfx_test_max_abs_diff(const float *a, const float *b, size_t n);
/* The LLVM optimization level a test's JIT or object compile should use
 * for `level`: at most TFX_TEST_LLVM_MAX (environment; default 3, and 0 in
 * the sanitizer build). Only LLVM's pipeline and code generation level
 * depend on it (backend/module.c, backend/target.c): the IR tfxc emits, the
 * graph passes, the runtime and the interpreter are the same at every level.
 * In the sanitizer build LLVM and the JIT-compiled kernels are not
 * instrumented, so its -O3 pipeline costs most of a JIT test's time there
 * and checks nothing the sanitizers see; the main suite runs every level. */
int tfx_test_llvm_level(int level);

#endif
