/* tests/test_cli.c — the tfxc command-line contract: --help and --version
 * exit 0, usage errors exit 2 with a message, compile errors exit 1 with a
 * `file:line:col: error:` diagnostic, --emit=ir prints the graph, -O2 and -O3
 * run LLVM at different levels, and the real stories260K compiles to a .so,
 * a .o and a header that a C program links against, both generating
 * llama2.c's greedy ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/testutil.h"

static char example_tfx[4096];

static int run(char *const argv[], char **out, char **err) {
  int rc = tfx_test_run(argv, out, err);
  return rc;
}

static void expect(char *const argv[], int code, const char *in_stdout, const char *in_stderr) {
  char *out = NULL, *err = NULL;
  int rc = run(argv, &out, &err);
  if (rc != code || (in_stdout && !strstr(out, in_stdout)) || (in_stderr && !strstr(err, in_stderr)))
    fprintf(stderr, "argv[1]=%s: rc %d (expected %d)\nstdout: %s\nstderr: %s\n", argv[1], rc, code, out, err);
  assert_int_equal(rc, code);
  if (in_stdout) assert_non_null(strstr(out, in_stdout));
  if (in_stderr) assert_non_null(strstr(err, in_stderr));
  free(out);
  free(err);
}

static void test_help_and_version(void **state) {
  (void)state;
  expect((char *[]){TFXC_PATH, "--help", NULL}, 0, "usage: tfxc", NULL);
  expect((char *[]){TFXC_PATH, "--version", NULL}, 0, "tfxc ", NULL);
}

static void test_usage_errors_exit_2(void **state) {
  (void)state;
  expect((char *[]){TFXC_PATH, NULL}, 2, NULL, "usage:");
  expect((char *[]){TFXC_PATH, "--bogus", NULL}, 2, NULL, "unknown option '--bogus'");
  expect((char *[]){TFXC_PATH, example_tfx, "-o", NULL}, 2, NULL, "-o needs a file name");
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=bytecode", NULL}, 2, NULL, "unknown --emit kind 'bytecode'");
  expect((char *[]){TFXC_PATH, "model.txt", NULL}, 2, NULL, "is not a .tfx file");
  expect((char *[]){TFXC_PATH, example_tfx, "--passes=bogus", NULL}, 2, NULL, "--passes: unknown pass 'bogus'");
  expect((char *[]){TFXC_PATH, example_tfx, "--print-after=cse,bogus", NULL}, 2, NULL,
         "--print-after: unknown pass 'bogus'");
  expect((char *[]){TFXC_PATH, "run", NULL}, 2, NULL, "run needs a model");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "-n", "many", NULL}, 2, NULL, "-n needs a number");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--top-p", "1.5", NULL}, 2, NULL,
         "--top-p needs a number in (0, 1]");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--temperature", "-1", NULL}, 2, NULL, "--temperature needs");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--prompt-ids", "1 x 3", NULL}, 2, NULL, "bad --prompt-ids");
  expect((char *[]){TFXC_PATH, "run", "m.so", "--weights", "random", NULL}, 2, NULL, "carries its weights");
  expect(
      (char *[]){TFXC_PATH, example_tfx, "--quantize", "q5_k", NULL}, 2, NULL,
      "unknown --quantize format 'q5_k' (expected f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, w8a8, llm_int8, gptq, "
      "zeroquant, "
      "tq2_0, "
      "ternary, "
      "sparse24(f32), sparse24(q8_0), q4_k_m or none)");
  expect((char *[]){TFXC_PATH, example_tfx, "--quantize", NULL}, 2, NULL, "--quantize needs a format");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--quantize=int8", NULL}, 2, NULL, "unknown --quantize format");
  expect((char *[]){TFXC_PATH, "run", "m.so", "--quantize", "q8_0", NULL}, 2, NULL, "carries its weights");
}

/* --quantize: the formats in --emit=ir and --print-after=quantize_weights,
 * the weights section of --stats with its fallbacks */
static void test_quantize(void **state) {
  (void)state;
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", "-O0", "--quantize", "q8_0", NULL}, 0,
         "param \"layers.0.w2\" : f16[64, 172]", NULL);
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", "-O0", "--quantize=q8_0", NULL}, 0,
         "param \"layers.4.wq\" : q8_0[64, 64]", NULL);
  expect(
      (char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "q4_k_m", "--print-after=quantize_weights", NULL},
      0, NULL, "; ---- IR after quantize_weights ----\ngraph stories260k");
  expect(
      (char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "q4_k_m", "--print-after=quantize_weights", NULL},
      0, NULL, "param \"tok_embeddings\" : q8_0[512, 64]");
  char *out = NULL, *err = NULL;
  int rc =
      run((char *[]){TFXC_PATH, example_tfx, "--stats", "--weights", "random", "--quantize", "q8_0", NULL}, &out, &err);
  if (rc) fprintf(stderr, "%s\n%s\n", out, err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "weights by format: f32 "));
  assert_non_null(strstr(out, "f16 "));
  assert_non_null(strstr(out, "q8_0 "));
  assert_non_null(strstr(out, "bits per weight:"));
  assert_non_null(strstr(out, "read per token:"));
  assert_non_null(strstr(out, "quantize:          q8_0, 5 fallbacks"));
  assert_non_null(strstr(out, "    layers.3.w2: q8_0 -> f16: rows of 172 are not a multiple of 32\n"));
  free(out);
  free(err);
}

static void test_compile_errors_exit_1(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char bad[4096];
  snprintf(bad, sizeof bad, "%s/bad.tfx", dir);
  FILE *f = fopen(bad, "w");
  assert_non_null(f);
  fputs("model bad\nconst max_seq = 8\nforward(tokens : i32[T]) -> f32[T, 4] {\n  return nosuch(tokens)\n}\n", f);
  fclose(f);
  char where[4200];
  snprintf(where, sizeof where, "%s:4:", bad);
  expect((char *[]){TFXC_PATH, bad, "--weights", "random", "-o", "x.so", NULL}, 1, NULL, where);
  expect((char *[]){TFXC_PATH, "/nonexistent/model.tfx", NULL}, 1, NULL, "cannot read");
  expect((char *[]){TFXC_PATH, "run", "/nonexistent/model.so", NULL}, 1, NULL, "cannot open");
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "/nonexistent/w.bin", "--emit=llvm", NULL}, 1, NULL,
         "/nonexistent/w.bin");
  tfx_test_rmdir(dir);
  free(dir);
}

static void test_emit_ir_prints_the_graph(void **state) {
  (void)state;
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", NULL}, 0, "attention(", NULL);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--emit=llvm", NULL}, 0, "tfx_model_descriptor",
         NULL);
}

/* -O2 and -O3 run the same graph pipeline (the same --emit=ir) and LLVM at
 * different levels (default<O2> / default<O3>, codegen Default /
 * Aggressive), which gives different code (docs/passes.md). */
static void test_O2_and_O3_differ_in_llvm_only(void **state) {
  (void)state;
  char *ir[2], *ll[2], *err = NULL;
  for (int i = 0; i < 2; i++) {
    char *level = i ? "-O3" : "-O2";
    assert_int_equal(run((char *[]){TFXC_PATH, example_tfx, level, "--emit=ir", NULL}, &ir[i], &err), 0);
    free(err);
    assert_int_equal(
        run((char *[]){TFXC_PATH, example_tfx, "--weights", "random", level, "--emit=llvm", NULL}, &ll[i], &err), 0);
    free(err);
  }
  assert_string_equal(ir[0], ir[1]);
  assert_true(strlen(ll[0]) > 1000 && strcmp(ll[0], ll[1]) != 0);
  for (int i = 0; i < 2; i++) {
    free(ir[i]);
    free(ll[i]);
  }
}

/* "generated" + sep + the first n reference greedy ids of stories260K
 * (llama2.c's, tests/test_e2e.c) + "\n". */
static void reference_line(const char *sep, int n, char *buf, size_t len) {
  char path[4096];
  int32_t ids[256];
  assert_int_equal(tfx_test_read_ids(tfx_test_model_path("stories260K.greedy.ids", path, sizeof path), ids, 256), 256);
  size_t used = (size_t)snprintf(buf, len, "generated%s", sep);
  for (int i = 0; i < n; i++) used += (size_t)snprintf(buf + used, len - used, " %d", ids[i]);
  snprintf(buf + used, len - used, "\n");
}

/* Runs argv and returns its stdout (exit status 0 asserted). */
static char *stdout_of(char *const argv[]) {
  char *out = NULL, *err = NULL;
  int rc = run(argv, &out, &err);
  if (rc != 0) fprintf(stderr, "%s: rc %d\nstdout: %s\nstderr: %s\n", argv[0], rc, out, err);
  assert_int_equal(rc, 0);
  free(err);
  return out;
}

/* Compile the real stories260K to a .so, an object and a header, and build
 * the embedding example against the header: the program it makes runs the
 * model and prints the 16 ids it generated greedily, which must be
 * llama2.c's; so must `tfxc run`'s greedy ids from the .so, and its sampled
 * ids (temperature 1, top-p 0.9, seed 9) must be the same on a second run. */
static void test_header_and_object_link_into_an_app(void **state) {
  (void)state;
  char model_bin[4096], want[4096];
  tfx_test_model_path("stories260K.bin", model_bin, sizeof model_bin);
  if (access(model_bin, R_OK) != 0) fail_msg("the real model is missing: %s (set TFX_MODELS_DIR)", model_bin);
  char *dir = tfx_test_tmpdir();
  char so[4096], obj[4096], hdr[4096], app[4096], inc[4200], app_src[4200], rt[4200];
  snprintf(so, sizeof so, "%s/m.so", dir);
  snprintf(obj, sizeof obj, "%s/m.o", dir);
  snprintf(hdr, sizeof hdr, "%s/stories260k.h", dir);
  snprintf(app, sizeof app, "%s/app", dir);
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(app_src, sizeof app_src, "%s/examples/embed/main.c", TFX_SOURCE_DIR);
  snprintf(rt, sizeof rt, "%s/libtfxrt.a", TFX_BINARY_DIR);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", model_bin, "-c", "-o", obj, "--emit-header", hdr, NULL}, 0,
         NULL, NULL);
  char *h = tfx_test_read_file(hdr, NULL);
  assert_non_null(h);
  assert_non_null(strstr(h, "#define STORIES260K_VOCAB 512"));
  assert_non_null(strstr(h, "extern const tfx_model_desc stories260k_descriptor;"));
  free(h);
  char incdir[4200];
  snprintf(incdir, sizeof incdir, "-I%s", dir);
#ifdef TFX_SANITIZE_FLAGS
#define SANITIZE_ARG TFX_SANITIZE_FLAGS,
#else
#define SANITIZE_ARG
#endif
  expect((char *[]){"/usr/bin/cc", "-std=c11", "-O1", SANITIZE_ARG inc, incdir, "-o", app, app_src, obj, rt, "-lffi",
                    "-lpthread", "-ldl", "-lm", NULL},
         0, NULL, NULL);
  char *out = stdout_of((char *[]){app, NULL});
  reference_line(":", 16, want, sizeof want);
  assert_string_equal(out, want);
  free(out);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", model_bin, "-o", so, NULL}, 0, NULL, NULL);
  out = stdout_of((char *[]){TFXC_PATH, "run", so, "-n", "5", "--temperature", "0", NULL});
  reference_line(" 5 tokens:", 5, want, sizeof want);
  assert_string_equal(out, want);
  free(out);
  char *sampled = stdout_of((char *[]){TFXC_PATH, "run", so, "-n", "5", "--seed", "9", NULL});
  int ids[5];
  assert_int_equal(sscanf(sampled, "generated 5 tokens: %d %d %d %d %d", &ids[0], &ids[1], &ids[2], &ids[3], &ids[4]),
                   5);
  for (int i = 0; i < 5; i++) assert_true(ids[i] >= 0 && ids[i] < 512);
  out = stdout_of((char *[]){TFXC_PATH, "run", so, "-n", "5", "--seed", "9", NULL});
  assert_string_equal(out, sampled);
  free(out);
  free(sampled);
  tfx_test_rmdir(dir);
  free(dir);
}

/* --emit-gguf alone writes only the GGUF (no .so); `tfxc run` with
 * --weights of that file generates llama2.c's greedy ids. */
static void test_emit_gguf_then_run_it(void **state) {
  (void)state;
  char model_bin[4096], want[4096];
  tfx_test_model_path("stories260K.bin", model_bin, sizeof model_bin);
  char *dir = tfx_test_tmpdir();
  char gguf[4096], so[4096];
  snprintf(gguf, sizeof gguf, "%s/m.gguf", dir);
  snprintf(so, sizeof so, "%s/m.so", dir);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", model_bin, "--emit-gguf", gguf, "--stats", NULL}, 2, NULL,
         "--emit-gguf writes a file; it does not combine with --emit or --stats");
  expect((char *[]){TFXC_PATH, example_tfx, "--emit-gguf", NULL}, 2, NULL, "--emit-gguf needs a file name");
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", model_bin, "--emit-gguf", gguf, NULL}, 0, NULL, NULL);
  char *data = tfx_test_read_file(gguf, NULL);
  assert_non_null(data);
  assert_memory_equal(data, "GGUF\3\0\0\0", 8);
  free(data);
  assert_int_equal(access(so, F_OK), -1);
  char *out =
      stdout_of((char *[]){TFXC_PATH, "run", example_tfx, "--weights", gguf, "-n", "16", "--temperature", "0", NULL});
  reference_line(" 16 tokens:", 16, want, sizeof want);
  assert_string_equal(out, want);
  free(out);
  tfx_test_rmdir(dir);
  free(dir);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* --eval-ids: errors, and the logits of every position, whose last row is the
 * one generation computes after the same prompt. */
static void test_eval_ids(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char ids[4096], bad[4096], empty[4096], big[4096], all[4096], last[4096], prm[4096];
  snprintf(ids, sizeof ids, "%s/ids.txt", dir);
  snprintf(bad, sizeof bad, "%s/bad.txt", dir);
  snprintf(empty, sizeof empty, "%s/empty.txt", dir);
  snprintf(big, sizeof big, "%s/big.txt", dir);
  snprintf(all, sizeof all, "%s/all.bin", dir);
  snprintf(last, sizeof last, "%s/last.bin", dir);
  snprintf(prm, sizeof prm, "%s/prompt.bin", dir);
  write_text(ids, "5 6,\n7\n");
  write_text(bad, "5 x 7\n");
  write_text(empty, " \n");
  write_text(big, "5 512\n");
  char *w[] = {"--weights", "random:3"};
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--eval-ids", ids, "--prompt-ids", "3", NULL}, 2, NULL,
         "do not combine");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--eval-ids", NULL}, 2, NULL, "--eval-ids needs a file name");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", "/nonexistent/ids", NULL}, 1, NULL,
         "--eval-ids: /nonexistent/ids: cannot open");
  /* a FIFO or a directory is an error, never a hang (timeout(1) exits 124) */
  char fifo[4096];
  snprintf(fifo, sizeof fifo, "%s/ids.fifo", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  expect((char *[]){"/usr/bin/timeout", "60", TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", fifo, NULL}, 1,
         NULL, "ids.fifo: not a regular file");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", dir, NULL}, 1, NULL, "is a directory");
  unlink(fifo);
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", bad, NULL}, 1, NULL,
         "not a list of token ids");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", empty, NULL}, 1, NULL, "no token ids");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", big, NULL}, 1, NULL,
         "id 512 (number 2) is not below the vocabulary size 512");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--eval-ids", ids, "--dump-logits", all, NULL}, 0,
         "evaluated 3 tokens: mean nll ", NULL);
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--prompt-ids", "5 6 7", "-n", "1", "--temperature", "0",
                    "--dump-logits", last, NULL},
         0, NULL, NULL);
  /* --dump-prompt: the prompt's rows but the last (BOS, 5, 6), then the 2 steps' rows */
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--prompt-ids", "5 6 7", "-n", "2", "--temperature", "0",
                    "--dump-logits", prm, "--dump-prompt", NULL},
         0, NULL, NULL);
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "--prompt-ids", "5", "--dump-prompt", NULL}, 2, NULL,
         "--dump-prompt needs --dump-logits FILE");
  size_t n_all = 0, n_last = 0, n_prm = 0;
  float *a = (float *)tfx_test_read_file(all, &n_all), *l = (float *)tfx_test_read_file(last, &n_last);
  float *pr = (float *)tfx_test_read_file(prm, &n_prm);
  assert_non_null(a);
  assert_non_null(l);
  assert_non_null(pr);
  assert_int_equal(n_all, 4 * 512 * sizeof(float)); /* BOS + 3 ids, vocab 512 */
  assert_int_equal(n_last, 512 * sizeof(float));
  assert_int_equal(n_prm, 5 * 512 * sizeof(float)); /* 4 - 1 prompt rows + 2 steps */
  double diff = tfx_test_max_abs_diff(a + 3 * 512, l, 512);
  if (diff > 1e-4) fprintf(stderr, "last row differs from generation's by %g\n", diff);
  assert_true(diff <= 1e-4);
  diff = tfx_test_max_abs_diff(a, pr, 4 * 512); /* the prompt's rows and the first step's: --eval-ids' */
  if (diff > 1e-4) fprintf(stderr, "--dump-prompt's rows differ from --eval-ids' by %g\n", diff);
  assert_true(diff <= 1e-4);
  free(a);
  free(l);
  free(pr);
  tfx_test_rmdir(dir);
  free(dir);
}

/* The command table (driver/cli.c): every command's help from its option
 * table (tfxc CMD --help, tfxc help CMD, the same text), the overview lists
 * the commands; unknown and abbreviated options are refused with a hint. */
static void test_command_help(void **state) {
  (void)state;
  const char *cmds[] = {"compile", "run", "bench", "verify", "help"};
  for (int i = 0; i < 5; i++) {
    char *a = NULL, *b = NULL, *e = NULL;
    assert_int_equal(run((char *[]){TFXC_PATH, (char *)cmds[i], "--help", NULL}, &a, &e), 0);
    free(e);
    assert_int_equal(run((char *[]){TFXC_PATH, "help", (char *)cmds[i], NULL}, &b, &e), 0);
    free(e);
    assert_string_equal(a, b);
    char head[64];
    snprintf(head, sizeof head, "tfxc %s — ", cmds[i]);
    assert_non_null(strstr(a, head));
    assert_non_null(strstr(a, "  -h, --help"));
    free(a);
    free(b);
  }
  expect((char *[]){TFXC_PATH, "run", "-h", NULL}, 0, "  -n, --steps N", NULL);
  expect((char *[]){TFXC_PATH, "run", "--help", NULL}, 0, "  --top-p P", NULL);
  expect((char *[]){TFXC_PATH, "bench", "--help", NULL}, 0, "  -r, --repetitions N", NULL);
  expect((char *[]){TFXC_PATH, "--help", NULL}, 0, "  bench       measure", NULL);
  expect((char *[]){TFXC_PATH, "--help", NULL}, 0, "  --symbol-prefix P", NULL);
  expect((char *[]){TFXC_PATH, "help", "nosuch", NULL}, 2, NULL, "unknown command 'nosuch'");
  /* a command parsing its own arguments (import): its own help, both ways */
  expect((char *[]){TFXC_PATH, "help", "import", NULL}, 0, "usage: tfxc import", NULL);
  expect((char *[]){TFXC_PATH, "import", "--help", NULL}, 0, "usage: tfxc import", NULL);
  expect((char *[]){TFXC_PATH, "calibrate", "--help", NULL}, 0, "usage: tfxc calibrate FILE.tfx", NULL);
  expect((char *[]){TFXC_PATH, "help", "calibrate", NULL}, 0, "--calibration reads", NULL);
  expect((char *[]){TFXC_PATH, "--help", NULL}, 0, "  import      write a .tfx", NULL);
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--temp", "0", NULL}, 2, NULL,
         "unknown option '--temp' (did you mean --temperature?)");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--print", NULL}, 2, NULL,
         "unknown option '--print' (did you mean --print-ids?)");
  expect((char *[]){TFXC_PATH, example_tfx, "--print", NULL}, 2, NULL,
         "(did you mean --print-after, --print-after-all?)");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--print-ids=1", NULL}, 2, NULL, "--print-ids takes no value");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--stats", NULL}, 2, NULL, "unknown option '--stats'");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--bogus", NULL}, 2, NULL, "(tfxc run --help: its options)");
  expect((char *[]){TFXC_PATH, "verify", NULL}, 2, NULL, "verify needs one model file");
  expect((char *[]){TFXC_PATH, "bench", NULL}, 2, NULL, "bench needs a model");
  expect((char *[]){TFXC_PATH, "bench", "m.so", "-r", "0", NULL}, 2, NULL, "-r needs a number from 1 to 1000");
  expect((char *[]){TFXC_PATH, "bench", "m.so", "--weights", "random", NULL}, 2, NULL, "carries its weights");
  /* `--` ends the options: what follows is an operand */
  expect((char *[]){TFXC_PATH, "run", "--", "-n", NULL}, 2, NULL, "the model '-n' is neither a .tfx nor a .so");
}

/* -v prints the phases with their times; bench prints a table with a prefill
 * and a decode row, and refuses more positions than max_seq. */
static void test_verbose_and_bench(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char so[4200];
  snprintf(so, sizeof so, "%s/m.so", dir);
  char *out = NULL, *err = NULL;
  assert_int_equal(
      run((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-O1", "-v", "-o", so, NULL}, &out, &err), 0);
  const char *phases[] = {"tfxc: parse ", "tfxc: passes ", "tfxc: codegen ", "tfxc: link "};
  for (int i = 0; i < 4; i++) {
    if (!strstr(err, phases[i])) fprintf(stderr, "no '%s' in:\n%s", phases[i], err);
    assert_non_null(strstr(err, phases[i]));
  }
  free(out);
  free(err);
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--weights", "random", "-n", "2", "-v", NULL}, 0, NULL,
         "tfxc: codegen ");
  assert_int_equal(
      run((char *[]){TFXC_PATH, "bench", so, "-p", "16", "-n", "8", "-r", "2", "--threads", "1", NULL}, &out, &err), 0);
  assert_non_null(strstr(out, "| model "));
  assert_non_null(strstr(out, "| stories260k "));
  assert_non_null(strstr(out, "| pp16 "));
  assert_non_null(strstr(out, "| tg8 "));
  assert_non_null(strstr(out, " ± "));
  free(out);
  free(err);
  expect((char *[]){TFXC_PATH, "bench", so, "-p", "0", "-n", "4", "-r", "1", NULL}, 0, "| tg4 ", NULL);
  expect((char *[]){TFXC_PATH, "bench", so, "-p", "500", "-n", "64", NULL}, 1, NULL,
         "-p 500 and -n 64 need 564 positions; the model has max_seq = 512");
  expect(
      (char *[]){TFXC_PATH, "bench", example_tfx, "--weights", "random", "-O0", "-p", "4", "-n", "2", "-r", "1", NULL},
      0, "| pp4 ", NULL);
  tfx_test_rmdir(dir);
  free(dir);
}

/* tfxc calibrate and --calibration (w8a8(smooth = alpha), issue #13) */
static void test_calibrate(void **state) {
  (void)state;
  char dir[] = "/tmp/tfx_cli_calib_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char tok[4200], bad[4200], oov[4200], out[4200], junk[4200];
  snprintf(tok, sizeof tok, "%s/tok.txt", dir);
  snprintf(bad, sizeof bad, "%s/bad.txt", dir);
  snprintf(oov, sizeof oov, "%s/oov.txt", dir);
  snprintf(out, sizeof out, "%s/m.calib", dir);
  snprintf(junk, sizeof junk, "%s/junk.calib", dir);
  write_text(tok, "5 6 7 8 9 10 300 301\n");
  write_text(bad, "5 x 7\n");
  write_text(oov, "5 99999\n");
  write_text(junk, "TFXCALIX");
  expect((char *[]){TFXC_PATH, "calibrate", example_tfx, "--tokens", tok, NULL}, 2, NULL, "no -o");
  expect((char *[]){TFXC_PATH, "calibrate", example_tfx, "-o", out, NULL}, 2, NULL, "no --tokens");
  expect((char *[]){TFXC_PATH, "calibrate", example_tfx, "--tokens", bad, "-o", out, NULL}, 1, NULL,
         "not a list of integer token ids");
  expect((char *[]){TFXC_PATH, "calibrate", example_tfx, "--tokens", oov, "-o", out, NULL}, 1, NULL,
         "outside the vocabulary");
  expect((char *[]){TFXC_PATH, "calibrate", example_tfx, "--tokens", tok, tok, "-o", out, NULL}, 0, NULL,
         "36 linears over 2 sequences");
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "w8a8(smooth = 0.5)", NULL}, 1, NULL,
         "--calibration");
  expect(
      (char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "w8a8(smooth = 0.5)", "--calibration", junk, NULL},
      1, NULL, "not a calibration file");
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "w8a8(smooth = 0.5)", "--calibration", out,
                    "--print-after=smooth_quant", NULL},
         0, NULL, "IR after smooth_quant");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--quantize", "w8a8(smooth = 0.5)", "--calibration", out, "-n", "3",
                    NULL},
         0, "generated 3 tokens", NULL);
  expect((char *[]){TFXC_PATH, example_tfx, "--quantize", "w8a8(alpha = 1)", NULL}, 2, NULL,
         "w8a8 takes smooth = ALPHA");
  /* llm_int8(threshold = t): needs the calibration, a threshold > 0 */
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "llm_int8", NULL}, 1, NULL,
         "pass llm_int8: llm_int8(threshold = 6) needs calibration data: --calibration FILE");
  expect((char *[]){TFXC_PATH, example_tfx, "--quantize", "llm_int8(threshold = -2)", NULL}, 2, NULL,
         "--quantize 'llm_int8(threshold = -2)': llm_int8(threshold = -2): threshold is a number > 0");
  expect((char *[]){TFXC_PATH, example_tfx, "--quantize", "llm_int8(threshold = 1", NULL}, 2, NULL,
         "expected ',' or ')'");
  expect((char *[]){TFXC_PATH, example_tfx, "--emit=ir", "--quantize", "llm_int8(threshold = 3)", "--calibration", out,
                    "--print-after=llm_int8", NULL},
         0, NULL, "IR after llm_int8");
  expect((char *[]){TFXC_PATH, "run", example_tfx, "--quantize", "llm_int8(threshold = 3)", "--calibration", out, "-n",
                    "3", NULL},
         0, "generated 3 tokens", NULL);
  unlink(tok);
  unlink(bad);
  unlink(oov);
  unlink(out);
  unlink(junk);
  rmdir(dir);
}

int main(void) {
  snprintf(example_tfx, sizeof example_tfx, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_version),
      cmocka_unit_test(test_usage_errors_exit_2),
      cmocka_unit_test(test_quantize),
      cmocka_unit_test(test_compile_errors_exit_1),
      cmocka_unit_test(test_emit_ir_prints_the_graph),
      cmocka_unit_test(test_O2_and_O3_differ_in_llvm_only),
      cmocka_unit_test(test_header_and_object_link_into_an_app),
      cmocka_unit_test(test_emit_gguf_then_run_it),
      cmocka_unit_test(test_eval_ids),
      cmocka_unit_test(test_command_help),
      cmocka_unit_test(test_verbose_and_bench),
      cmocka_unit_test(test_calibrate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
