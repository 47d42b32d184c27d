/* tests/test_run_inputs.c — `tfxc run` with a model's other forward inputs
 * (--input NAME=VALUES, issue #14): a decoder with per-token type ids and an
 * encoder-decoder with a source sentence generate through the CLI, and the
 * logits it dumps (--dump-logits with --dump-prompt: every fed row) equal
 * the reference interpreter's on the same sequence: the generated ids fed
 * back, the per-token input's rows as documented (the given rows, then the
 * last one repeated), the source unpadded (the program with nsrc = S).
 * Plus the CLI's errors for inputs that are missing, unknown, repeated or of
 * the wrong size. Tolerance: 1e-4 of the logits' scale (JIT at -O2 against
 * the interpreter). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "support/small_models.h"
#include "support/testutil.h"

#define TOL 1e-4
enum { V = 20, MAXR = 32 };

/* %d: the source's rows N */
static const char ed_fmt[] =
    "model ed\n"
    "const dim = 16, vocab = 20, max_seq = 24, heads = 2, nsrc = %d\n"
    "weights \"random:9\"\n"
    "param emb : f32[vocab, dim]\n"
    "param eq : f32[dim, dim]\n"
    "param ek : f32[dim, dim]\n"
    "param ev : f32[dim, dim]\n"
    "param eo : f32[dim, dim]\n"
    "param cq : f32[dim, dim]\n"
    "param ck : f32[dim, dim]\n"
    "param cv : f32[dim, dim]\n"
    "param co : f32[dim, dim]\n"
    "param g : f32[dim]\n"
    "forward(tokens : i32[T], src : i32[nsrc]) -> f32[T, vocab] {\n"
    "  e = embedding(emb, src)\n"
    "  e = e + attention(rmsnorm(e, g), eq, ek, ev, eo, heads = heads, mask = none)\n"
    "  x = embedding(emb, tokens)\n"
    "  x = x + attention(rmsnorm(x, g), cq, ck, cv, co, heads = heads, memory = e, mask = none)\n"
    "  return linear(rmsnorm(x, g), emb)\n"
    "}\n";

static char *dir;

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* runs tfxc with argv (NULL-terminated, argv[0] = TFXC_PATH); the exit code,
 * stdout and stderr */
static int run(char *const argv[], char **out, char **err) { return tfx_test_run(argv, out, err); }

/* The interpreter's logits of the first `rows` positions of the program src
 * with the forward's inputs in[0..n_in). */
static void interpret(const char *name, const char *src, const void *const *in, int n_in, int rows, float *out) {
  tfx_build b;
  tfx_build_options o = {.opt_level = 0};
  char err[512];
  if (tfx_build_source(name, src, &o, &b)) fail_msg("%s does not build", name);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  if (tfx_interp_forward_inputs(it, in, n_in, rows, out, err, sizeof err)) fail_msg("%s: %s", name, err);
  tfx_interp_free(it);
  tfx_build_free(&b);
}

static void compare(const char *what, const float *got, const float *want, size_t n) {
  double scale = 1;
  for (size_t i = 0; i < n; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
  double d = tfx_test_max_abs_diff(got, want, n);
  print_message("  %-40s max |diff| %.3g (scale %.3g)\n", what, d, scale);
  if (!(d <= TOL * scale)) fail_msg("%s: max |diff| %g > %g", what, d, TOL * scale);
}

/* Runs `tfxc run MODEL --temperature 0 --print-ids --dump-logits D
 * --dump-prompt` with the extra arguments; fills seq with the fed prompt
 * (BOS 1, then prompt) and the generated ids, and got with the dumped rows.
 * Returns the rows dumped. */
static int generate(const char *model, char *const extra[], const int32_t *prompt, int n_prompt, int32_t *seq,
                    float *got) {
  char dump[4096], ids[256] = "";
  snprintf(dump, sizeof dump, "%s/logits.bin", dir);
  for (int i = 0; i < n_prompt; i++)
    snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? " " : "", (int)prompt[i]);
  char *argv[32] = {TFXC_PATH,       "run", (char *)model,   "-n",           "6", "--temperature", "0", "--print-ids",
                    "--dump-logits", dump,  "--dump-prompt", "--prompt-ids", ids};
  int k = 13;
  for (int i = 0; extra[i]; i++) argv[k++] = extra[i];
  argv[k] = NULL;
  char *out = NULL, *err = NULL;
  int rc = run(argv, &out, &err);
  if (rc != 0) fail_msg("tfxc run %s: rc %d\n%s", model, rc, err);
  int n = 0;
  seq[n++] = 1; /* BOS: the model has no tokens { bos } */
  for (int i = 0; i < n_prompt; i++) seq[n++] = prompt[i];
  for (char *p = out, *end; n < MAXR; p = end) {
    long x = strtol(p, &end, 10);
    if (end == p) break;
    seq[n++] = (int32_t)x;
  }
  size_t size = 0;
  float *rows = (float *)tfx_test_read_file(dump, &size);
  assert_non_null(rows);
  int n_rows = (int)(size / (V * sizeof(float)));
  assert_true(n_rows >= n_prompt + 1 && n_rows <= n);
  memcpy(got, rows, (size_t)n_rows * V * sizeof(float));
  free(rows);
  free(out);
  free(err);
  return n_rows;
}

/* per-token type ids: the prompt's rows given, the generated rows repeat the
 * last; and one row given for every row */
static void test_types(void **state) {
  (void)state;
  char model[4096];
  snprintf(model, sizeof model, "%s/dec.tfx", dir);
  write_text(model, tfx_test_typed_decoder);
  const int32_t prompt[3] = {3, 4, 5};
  int32_t seq[MAXR], types[MAXR];
  float got[MAXR * V], want[MAXR * V];

  int n = generate(model, (char *[]){"--input", "types=0,1,2,1", NULL}, prompt, 3, seq, got);
  const int32_t given[4] = {0, 1, 2, 1};
  for (int i = 0; i < n; i++) types[i] = given[i < 4 ? i : 3];
  interpret("dec.tfx", tfx_test_typed_decoder, (const void *[]){seq, types}, 2, n, want);
  compare("types per fed row, then the last", got, want, (size_t)n * V);

  n = generate(model, (char *[]){"--input", "types=2", NULL}, prompt, 3, seq, got);
  for (int i = 0; i < n; i++) types[i] = 2;
  interpret("dec.tfx", tfx_test_typed_decoder, (const void *[]){seq, types}, 2, n, want);
  compare("one type row for every row", got, want, (size_t)n * V);
  /* the input matters: type 0 everywhere gives other logits */
  for (int i = 0; i < n; i++) types[i] = 0;
  interpret("dec.tfx", tfx_test_typed_decoder, (const void *[]){seq, types}, 2, n, want);
  assert_true(tfx_test_max_abs_diff(got, want, (size_t)n * V) > 1e-2);
}

/* a source of S = 3 ids in nsrc = 8 rows, given as --input src=... and as
 * @FILE, against the program with nsrc = 3 */
static void test_source(void **state) {
  (void)state;
  char model[4096], text[4096], ids_file[4096], arg[4200];
  snprintf(model, sizeof model, "%s/ed.tfx", dir);
  snprintf(text, sizeof text, ed_fmt, 8);
  write_text(model, text);
  const int32_t prompt[2] = {6, 7}, src[3] = {11, 2, 15};
  int32_t seq[MAXR];
  float got[MAXR * V], want[MAXR * V];
  char exact[4096];
  snprintf(exact, sizeof exact, ed_fmt, 3);

  int n = generate(model, (char *[]){"--input", "src=11 2 15", NULL}, prompt, 2, seq, got);
  interpret("ed3.tfx", exact, (const void *[]){seq, src}, 2, n, want);
  compare("source of 3 in 8 rows", got, want, (size_t)n * V);

  snprintf(ids_file, sizeof ids_file, "%s/src.txt", dir);
  write_text(ids_file, "11\n2\n15\n");
  snprintf(arg, sizeof arg, "src=@%s", ids_file);
  float again[MAXR * V];
  int n2 = generate(model, (char *[]){"--input", arg, NULL}, prompt, 2, seq, again);
  assert_int_equal(n2, n);
  assert_memory_equal(again, got, (size_t)n * V * sizeof(float));

  const int32_t other[3] = {11, 2, 16}; /* another source: other logits */
  interpret("ed3.tfx", exact, (const void *[]){seq, other}, 2, n, want);
  assert_true(tfx_test_max_abs_diff(got, want, (size_t)n * V) > 1e-2);
}

static void expect_error(char *const argv[], int code, const char *in_stderr) {
  char *out = NULL, *err = NULL;
  int rc = run(argv, &out, &err);
  if (rc != code || !strstr(err, in_stderr))
    fprintf(stderr, "rc %d (expected %d)\nstderr: %s\n(expected to contain: %s)\n", rc, code, err, in_stderr);
  assert_int_equal(rc, code);
  assert_non_null(strstr(err, in_stderr));
  free(out);
  free(err);
}

static void test_errors(void **state) {
  (void)state;
  char ed[4096], dec[4096], text[4096];
  snprintf(ed, sizeof ed, "%s/ed.tfx", dir);
  snprintf(text, sizeof text, ed_fmt, 8);
  write_text(ed, text);
  snprintf(dec, sizeof dec, "%s/dec.tfx", dir);
  write_text(dec, tfx_test_typed_decoder);
  expect_error((char *[]){TFXC_PATH, "run", ed, NULL}, 2,
               "takes the source 'src' (1 to 8 ids): give it with --input src=VALUES or --source TEXT");
  expect_error((char *[]){TFXC_PATH, "run", dec, NULL}, 2,
               "takes the input 'types' (one id per token): give it with --input types=VALUES");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "srcs=1", NULL}, 2, "--input srcs: '");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "src=1", "--input", "src=2", NULL}, 2,
               "--input src is given twice");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "src=1 2 3 4 5 6 7 8 9", NULL}, 1,
               "--input src: 9 values, but the source holds at most 8");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "src=1 20", NULL}, 1,
               "--input src: id 20 (value 2) is not in [0, 20)");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "src=1 x", NULL}, 1, "--input src: 'x' is not an integer");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "src", NULL}, 2, "expected NAME=VALUES");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--input", "tokens=1", NULL}, 2, "the token ids are the prompt's");
  expect_error((char *[]){TFXC_PATH, "run", ed, "--source", "hello", NULL}, 2, "--source needs --tokenizer PATH");
  expect_error((char *[]){TFXC_PATH, "run", dec, "--prompt-ids", "3 4", "--input", "types=0 1", NULL}, 1,
               "give one row of 1 (used for every row) or a row for each of the 3 fed tokens");
  expect_error((char *[]){TFXC_PATH, "run", dec, "--input", "types=0 1 @", NULL}, 1,
               "--input types: '@' is not an integer");
}

static int setup(void **state) {
  (void)state;
  dir = tfx_test_tmpdir();
  return dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_types),
      cmocka_unit_test(test_source),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
