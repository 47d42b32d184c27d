/* tests/test_outputs.c — what tfxc writes (issue #17, items 1, 2, 7, 11, 12):
 * an output that is the same file as an input (or another output) is a usage
 * error and the file is untouched (names, symlinks, hard links, the weights
 * statement's file); a symlink output replaces its file, a device is written in
 * place; outputs are renamed into place only when all are
 * complete, so a failed link, a failed run, SIGINT or SIGTERM during the link
 * leave the previous outputs intact and no temporaries (a fake `cc`/`ld` on
 * PATH that sleeps holds the link; the test kills tfxc then); names beginning
 * with '-' are produced as files; an output directory tfxc cannot create a
 * file in is an error naming the output (as root too); a failed write to
 * stdout is exit 1 with the reason. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "support/testutil.h"

static char example_tfx[4096];

static void expect(char *const argv[], int code, const char *in_stderr) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != code || (in_stderr && !strstr(err, in_stderr)))
    fprintf(stderr, "%s %s: rc %d (expected %d)\nstdout: %s\nstderr: %s\n", argv[1], argv[2] ? argv[2] : "", rc, code,
            out, err);
  assert_int_equal(rc, code);
  if (in_stderr) assert_non_null(strstr(err, in_stderr));
  free(out);
  free(err);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to) {
  size_t n = 0;
  char *data = tfx_test_read_file(from, &n);
  assert_non_null(data);
  FILE *f = fopen(to, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
  free(data);
}

/* The file holds exactly want (n bytes). */
static void assert_file_is(const char *path, const char *want, size_t n) {
  size_t got = 0;
  char *data = tfx_test_read_file(path, &got);
  if (!data || got != n || memcmp(data, want, n))
    fprintf(stderr, "%s: changed (%zu bytes, expected %zu)\n", path, data ? got : 0, n);
  assert_non_null(data);
  assert_int_equal(got, n);
  assert_memory_equal(data, want, n);
  free(data);
}

/* The directory holds exactly the names of want (NULL-terminated), in any order. */
static void assert_dir_holds(const char *dir, const char *const *want) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0, n_want = 0;
  while (want[n_want]) n_want++;
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    int known = 0;
    for (int i = 0; i < n_want && !known; i++) known = !strcmp(e->d_name, want[i]);
    if (!known) fprintf(stderr, "%s: unexpected entry '%s'\n", dir, e->d_name);
    assert_true(known);
    n++;
  }
  closedir(d);
  assert_int_equal(n, n_want);
}

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* A .tfx of stories260K whose weights statement names "w.bin" (beside it). */
static void write_model_with_weights_statement(const char *path) {
  char *src = tfx_test_read_file(example_tfx, NULL);
  assert_non_null(src);
  char *w = strstr(src, "\nweights \"");
  assert_non_null(w);
  char *end = strchr(w + 1, '\n');
  assert_non_null(end);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "%.*s\nweights \"w.bin\" format llama2c%s", (int)(w - src), src, end);
  assert_int_equal(fclose(f), 0);
  free(src);
}

/* Item 1: every way of naming an input as an output is a usage error naming
 * both, and the input is unchanged. */
static void test_output_same_as_input_is_refused(void **state) {
  (void)state;
  char model_bin[4096];
  tfx_test_model_path("stories260K.bin", model_bin, sizeof model_bin);
  if (access(model_bin, R_OK) != 0) fail_msg("the real model is missing: %s (set TFX_MODELS_DIR)", model_bin);
  char *dir = tfx_test_tmpdir();
  char *x = path_in(dir, "x.tfx"), *y = path_in(dir, "y.tfx"), *w = path_in(dir, "w.bin"), *so = path_in(dir, "m.so");
  char *sym = path_in(dir, "link.so"), *hard = path_in(dir, "hard.h"), *ids = path_in(dir, "ids.txt");
  char *dot_so = path_in(dir, "./m.so");
  copy_file(example_tfx, x);
  copy_file(model_bin, w);
  write_model_with_weights_statement(y);
  write_file(ids, "5 6 7\n");
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-O0", "-o", so, NULL}, 0, NULL);
  assert_int_equal(symlink("x.tfx", sym), 0);
  assert_int_equal(link(x, hard), 0);
  size_t nx = 0, nw = 0, nso = 0, nids = 0;
  char *bx = tfx_test_read_file(x, &nx), *bw = tfx_test_read_file(w, &nw), *bso = tfx_test_read_file(so, &nso);
  char *bids = tfx_test_read_file(ids, &nids);
  const char *src = "is the same file as the input";
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-o", x, NULL}, 2, src);
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "--emit-header", x, NULL}, 2, src);
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "--emit-gguf", x, NULL}, 2, src);
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-c", "-o", hard, NULL}, 2, "(the source)");
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-o", sym, NULL}, 2, "(-o) is the same file as the input");
  expect((char *[]){TFXC_PATH, x, "--weights", w, "-o", w, NULL}, 2, "(--weights)");
  expect((char *[]){TFXC_PATH, x, "--weights", w, "--emit-gguf", w, NULL}, 2, "(--emit-gguf)");
  expect((char *[]){TFXC_PATH, y, "-o", w, NULL}, 2, "(-o) is the same file as the input");
  expect((char *[]){TFXC_PATH, y, "--emit-header", w, NULL}, 2, "(the weights)");
  expect((char *[]){TFXC_PATH, "run", x, "--weights", "random", "--dump-logits", hard, NULL}, 2, "(the model)");
  expect((char *[]){TFXC_PATH, "run", so, "-n", "2", "--dump-logits", so, NULL}, 2, "(--dump-logits)");
  expect((char *[]){TFXC_PATH, "run", so, "-n", "2", "--dump-logits", dot_so, NULL}, 2, "(the model)");
  expect((char *[]){TFXC_PATH, "run", y, "-n", "2", "--dump-logits", w, NULL}, 2, "(the weights)");
  expect((char *[]){TFXC_PATH, "run", x, "--weights", w, "-n", "2", "--dump-logits", w, NULL}, 2, "(--weights)");
  expect((char *[]){TFXC_PATH, "run", so, "--eval-ids", ids, "--dump-logits", ids, NULL}, 2, "(--eval-ids)");
  /* two outputs that are one file */
  char *a = path_in(dir, "a.out");
  char *a_dot = path_in(dir, "./a.out");
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-o", a, "--emit-gguf", a_dot, NULL}, 2,
         "(--emit-gguf) is the same file as the output");
  assert_file_is(x, bx, nx);
  assert_file_is(w, bw, nw);
  assert_file_is(so, bso, nso);
  assert_file_is(ids, bids, nids);
  assert_file_is(hard, bx, nx);
  /* the refused output names both files */
  char want[9000];
  snprintf(want, sizeof want, "tfxc: error: the output '%s' (-o) is the same file as the input '%s' (the source)", sym,
           x);
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-o", sym, NULL}, 2, want);
  free(bx);
  free(bw);
  free(bso);
  free(bids);
  unlink(sym);
  free(x);
  free(y);
  free(w);
  free(so);
  free(sym);
  free(hard);
  free(ids);
  free(dot_so);
  free(a);
  free(a_dot);
  tfx_test_rmdir(dir);
  free(dir);
}

/* Items 2 and 11: a failed link names the output and the linker's reason, and
 * writes nothing: the previous .so, header and GGUF stay as they were, none is
 * created, and no temporary is left (beside the outputs or in TMPDIR). */
static void test_failed_link_leaves_everything_as_it_was(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir(), *tmp = tfx_test_tmpdir();
  char *x = path_in(dir, "x.tfx"), *so = path_in(dir, "out.so"), *h = path_in(dir, "out.h");
  char *gguf = path_in(dir, "out.gguf"), *bad = path_in(dir, "bad.a"), *so2 = path_in(dir, "new.so");
  copy_file(example_tfx, x);
  write_file(so, "previous so");
  write_file(h, "previous header");
  write_file(bad, "not an archive\n");
  setenv("TFX_RUNTIME_ARCHIVE", bad, 1);
  setenv("TMPDIR", tmp, 1);
  char want[9000];
  snprintf(want, sizeof want, "tfxc: error: cannot link '%s': ", so);
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(
      (char *[]){TFXC_PATH, x, "--weights", "random", "-O0", "-o", so, "--emit-header", h, "--emit-gguf", gguf, NULL},
      &out, &err);
  if (rc != 1 || !strstr(err, want) || !strstr(err, "file format not recognized") || strstr(err, ".tmp-"))
    fprintf(stderr, "rc %d\nstderr: %s\n", rc, err);
  assert_int_equal(rc, 1);
  assert_non_null(strstr(err, want));
  assert_non_null(strstr(err, "file format not recognized")); /* the reason, from ld */
  assert_null(strstr(err, ".tmp-"));                          /* no temporary's name */
  free(out);
  free(err);
  expect((char *[]){TFXC_PATH, x, "--weights", "random", "-O0", "-o", so2, NULL}, 1, "cannot link");
  unsetenv("TFX_RUNTIME_ARCHIVE");
  unsetenv("TMPDIR");
  assert_file_is(so, "previous so", 11);
  assert_file_is(h, "previous header", 15);
  assert_dir_holds(dir, (const char *[]){"x.tfx", "out.so", "out.h", "bad.a", NULL});
  assert_dir_holds(tmp, (const char *[]){NULL});
  /* the same outputs, written: each is complete, and the .so runs */
  expect(
      (char *[]){TFXC_PATH, x, "--weights", "random", "-O0", "-o", so, "--emit-header", h, "--emit-gguf", gguf, NULL},
      0, NULL);
  assert_dir_holds(dir, (const char *[]){"x.tfx", "out.so", "out.h", "out.gguf", "bad.a", NULL});
  char *hdr = tfx_test_read_file(h, NULL);
  assert_non_null(strstr(hdr, "#define STORIES260K_VOCAB 512"));
  free(hdr);
  struct stat st;
  assert_int_equal(stat(so, &st), 0);
  assert_true(st.st_mode & S_IXUSR); /* a shared library's mode, not mkstemp's 0600 */
  assert_int_equal(stat(h, &st), 0);
  assert_true(st.st_mode & S_IRUSR);
  expect((char *[]){TFXC_PATH, "run", so, "-n", "3", NULL}, 0, NULL);
  free(x);
  free(so);
  free(h);
  free(gguf);
  free(bad);
  free(so2);
  tfx_test_rmdir(dir);
  tfx_test_rmdir(tmp);
  free(dir);
  free(tmp);
}

/* Item 2: a failed run leaves an existing --dump-logits as it was and creates
 * none; a successful one replaces it whole. */
static void test_failed_run_keeps_the_dump(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char *dump = path_in(dir, "d.bin"), *fresh = path_in(dir, "fresh.bin"), *ids = path_in(dir, "ids.txt");
  write_file(dump, "previous dump");
  write_file(ids, "5 600\n");
  char *w[] = {"--weights", "random:3"};
  /* a prompt that does not fit max_seq = 512 */
  char prompt[4096] = "";
  for (int i = 0; i < 520; i++) strcat(prompt, "5 ");
  expect(
      (char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "-O0", "--prompt-ids", prompt, "--dump-logits", dump, NULL},
      1, "does not fit max_seq");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "-O0", "--eval-ids", ids, "--dump-logits", dump, NULL},
         1, "is not below the vocabulary size");
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "-O0", "--prompt-ids", prompt, "--dump-logits", fresh,
                    NULL},
         1, NULL);
  assert_file_is(dump, "previous dump", 13);
  assert_dir_holds(dir, (const char *[]){"d.bin", "ids.txt", NULL});
  expect((char *[]){TFXC_PATH, "run", example_tfx, w[0], w[1], "-O0", "-n", "2", "--temperature", "0", "--dump-logits",
                    dump, NULL},
         0, NULL);
  size_t n = 0;
  char *data = tfx_test_read_file(dump, &n);
  assert_non_null(data);
  assert_int_equal(n, 2 * 512 * sizeof(float));
  free(data);
  assert_dir_holds(dir, (const char *[]){"d.bin", "ids.txt", NULL});
  free(dump);
  free(fresh);
  free(ids);
  tfx_test_rmdir(dir);
  free(dir);
}

/* Outputs that are not plain files: a symlink to a file keeps the link and
 * replaces the file it points at; a device is written in place and stays a
 * device (never replaced by a regular file). */
static void test_symlink_and_device_outputs(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char *real = path_in(dir, "real.h"), *link_h = path_in(dir, "link.h"), *so = path_in(dir, "m.so");
  write_file(real, "previous header");
  assert_int_equal(symlink("real.h", link_h), 0);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-O0", "-o", so, "--emit-header", link_h, NULL}, 0,
         NULL);
  struct stat st;
  assert_int_equal(lstat(link_h, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  char *h = tfx_test_read_file(real, NULL);
  assert_non_null(h);
  assert_non_null(strstr(h, "#define STORIES260K_VOCAB 512"));
  free(h);
  assert_dir_holds(dir, (const char *[]){"real.h", "link.h", "m.so", NULL});
  expect((char *[]){TFXC_PATH, "run", so, "-n", "2", "--dump-logits", "/dev/null", NULL}, 0, NULL);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-O0", "--emit-header", "/dev/null", NULL}, 0, NULL);
  assert_int_equal(stat("/dev/null", &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  free(real);
  free(link_h);
  free(so);
  tfx_test_rmdir(dir);
  free(dir);
}

/* Item 7: output names beginning with '-' are files, not options of cc or
 * ld; the library made runs like one with an ordinary name. */
static void test_dash_names_are_files(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  char *w[] = {"--weights", "random:5"};
  expect((char *[]){TFXC_PATH, example_tfx, w[0], w[1], "-O0", "-o", "-x.so", NULL}, 0, NULL);
  expect((char *[]){TFXC_PATH, example_tfx, w[0], w[1], "-O0", "-o", "-Wl,--help.so", "--emit-header", "-h.h", NULL}, 0,
         NULL);
  expect((char *[]){TFXC_PATH, example_tfx, w[0], w[1], "-O0", "-c", "-o", "-r.o", NULL}, 0, NULL);
  expect((char *[]){TFXC_PATH, example_tfx, w[0], w[1], "-O0", "-o", "plain.so", NULL}, 0, NULL);
  assert_dir_holds(".", (const char *[]){"-x.so", "-Wl,--help.so", "-h.h", "-r.o", "plain.so", NULL});
  const char *elf[] = {"-x.so", "-Wl,--help.so", "-r.o"};
  for (int i = 0; i < 3; i++) {
    char *data = tfx_test_read_file(elf[i], NULL);
    assert_non_null(data);
    assert_memory_equal(data, "\177ELF", 4);
    free(data);
  }
  char *out[3], *err = NULL;
  const char *so[] = {"./plain.so", "./-x.so", "./-Wl,--help.so"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        tfx_test_run((char *[]){TFXC_PATH, "run", (char *)so[i], "-n", "8", "--temperature", "0", NULL}, &out[i], &err),
        0);
    free(err);
  }
  assert_non_null(strstr(out[0], "generated 8 tokens:"));
  assert_string_equal(out[1], out[0]);
  assert_string_equal(out[2], out[0]);
  for (int i = 0; i < 3; i++) free(out[i]);
  assert_int_equal(chdir(cwd), 0);
  tfx_test_rmdir(dir);
  free(dir);
}

/* Item 7 in the backend's API: an object and a library named "-..." (relative
 * to the cwd) are files for ld and cc, not options. */
static void test_backend_dash_paths(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  tfx_target_options t = {.opt_level = 0};
  tfx_build_options bo = {.weights = "random:2", .opt_level = 0, .target = &t};
  tfx_build b;
  assert_int_equal(tfx_build_source(example_tfx, NULL, &bo, &b), 0);
  assert_int_equal(chdir(dir), 0);
  char err[2048] = "";
  int rc = tfx_backend_write_object(b.graph, b.weights.data, b.weights.size, &t, "-api.o", err, sizeof err);
  if (rc == 0) rc = tfx_backend_link_shared("-api.o", "-api.so", err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  assert_dir_holds(".", (const char *[]){"-api.o", "-api.so", NULL});
  char *out = NULL, *e = NULL;
  assert_int_equal(tfx_test_run((char *[]){TFXC_PATH, "run", "./-api.so", "-n", "2", NULL}, &out, &e), 0);
  assert_non_null(strstr(out, "generated 2 tokens:"));
  free(out);
  free(e);
  assert_int_equal(chdir(cwd), 0);
  tfx_build_free(&b);
  tfx_test_rmdir(dir);
  free(dir);
}

/* Item 11: where tfxc cannot create a file (as root too, where access(W_OK)
 * says yes to almost everything), the error names the output and the reason,
 * before any compiling. */
static void test_unwritable_output_directory(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  char *file = path_in(dir, "f"), *in_file = path_in(dir, "f/x.so"), *missing = path_in(dir, "no/x.so");
  write_file(file, "a file");
  char want[9000];
  snprintf(want, sizeof want, "tfxc: error: cannot write '%s': Not a directory", in_file);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-o", in_file, NULL}, 1, want);
  snprintf(want, sizeof want, "tfxc: error: cannot write '%s': cannot create a file in '%s/no': No such file", missing,
           dir);
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--emit-header", missing, NULL}, 1, want);
  /* sysfs takes no new files, whoever asks (root included) */
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-o", "/sys/tfxc-test.so", NULL}, 1,
         "tfxc: error: cannot write '/sys/tfxc-test.so': cannot create a file in '/sys': ");
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "--emit-gguf", "/sys/tfxc-test.gguf", NULL}, 1,
         "cannot create a file in '/sys'");
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-o", dir, NULL}, 1, "Is a directory");
  /* a read-only directory: an error for a user; root may write there */
  char *ro = path_in(dir, "ro"), *ro_out = path_in(dir, "ro/x.so");
  assert_int_equal(mkdir(ro, 0555), 0);
  if (geteuid() != 0) {
    snprintf(want, sizeof want, "tfxc: error: cannot write '%s': cannot create a file in '%s': Permission denied",
             ro_out, ro);
    expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-O0", "-o", ro_out, NULL}, 1, want);
  } else {
    expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-O0", "-o", ro_out, NULL}, 0, NULL);
    unlink(ro_out);
  }
  assert_dir_holds(ro, (const char *[]){NULL});
  rmdir(ro);
  free(ro);
  free(ro_out);
  free(file);
  free(in_file);
  free(missing);
  tfx_test_rmdir(dir);
  free(dir);
}

/* Runs argv with stdout on stdout_path (e.g. /dev/full) and stderr captured
 * into *err; returns the exit status (-1 when it did not exit). */
static int run_to(char *const argv[], const char *stdout_path, char **err) {
  char tmpl[] = "/tmp/tfx-outputs-err-XXXXXX";
  int fe = mkstemp(tmpl);
  assert_true(fe >= 0);
  unlink(tmpl);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fo = open(stdout_path, O_WRONLY);
    if (fo < 0) _exit(126);
    dup2(fo, 1);
    dup2(fe, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  off_t n = lseek(fe, 0, SEEK_END);
  *err = calloc(1, (size_t)n + 1);
  assert_true(pread(fe, *err, (size_t)n, 0) == n);
  close(fe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Item 12: stdout on a full device is exit 1 with the reason. */
static void test_stdout_errors(void **state) {
  (void)state;
  if (access("/dev/full", W_OK) != 0) fail_msg("/dev/full is needed");
  char *dir = tfx_test_tmpdir();
  char *so = path_in(dir, "m.so");
  expect((char *[]){TFXC_PATH, example_tfx, "--weights", "random", "-O0", "-o", so, NULL}, 0, NULL);
  char *const cases[][12] = {
      {TFXC_PATH, example_tfx, "--emit=ir", NULL},
      {TFXC_PATH, example_tfx, "--weights", "random", "--stats", NULL},
      {TFXC_PATH, example_tfx, "--weights", "random", "-O0", "--emit=llvm", NULL},
      {TFXC_PATH, "run", so, "-n", "3", NULL},
      {TFXC_PATH, "run", so, "-n", "3", "--print-ids", NULL},
      {TFXC_PATH, "--help", NULL},
      {TFXC_PATH, "--version", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *err = NULL;
    int rc = run_to(cases[i], "/dev/full", &err);
    if (rc != 1 || !strstr(err, "tfxc: error: error writing to stdout: No space left on device"))
      fprintf(stderr, "case %zu (%s): rc %d\nstderr: %s\n", i, cases[i][1], rc, err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "tfxc: error: error writing to stdout: No space left on device"));
    free(err);
    rc = run_to(cases[i], "/dev/null", &err); /* the same commands with room: fine */
    assert_int_equal(rc, 0);
    free(err);
  }
  free(so);
  tfx_test_rmdir(dir);
  free(dir);
}

/* A process that exists and is not a zombie. */
static int alive(long pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Item 2: tfxc killed by sig while `tool` (cc for a .so, ld for -c) runs. A
 * fake tool first on PATH writes its pid to a mark file and sleeps (it would
 * then run the real one). The previous outputs must be intact, no temporary
 * left beside them or in TMPDIR, and the tool (with its sleep) gone. */
static void interrupt_during(const char *tool, int sig, int object) {
  char *dir = tfx_test_tmpdir(), *fake = tfx_test_tmpdir(), *tmp = tfx_test_tmpdir();
  char *x = path_in(dir, "x.tfx"), *out = path_in(dir, object ? "good.o" : "good.so"), *h = path_in(dir, "good.h");
  char *mark = path_in(fake, "mark"), *script = path_in(fake, tool);
  copy_file(example_tfx, x);
  write_file(out, "previous good output");
  write_file(h, "previous header");
  FILE *f = fopen(script, "w");
  assert_non_null(f);
  fprintf(f, "#!/bin/sh\necho $$ > '%s.tmp' && mv '%s.tmp' '%s'\nsleep 60\nexec /usr/bin/%s \"$@\"\n", mark, mark, mark,
          tool);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(script, 0755), 0);
  const char *path = getenv("PATH");
  size_t plen = strlen(fake) + strlen(path ? path : "/usr/bin") + 8;
  char *newpath = malloc(plen);
  snprintf(newpath, plen, "PATH=%s:%s", fake, path ? path : "/usr/bin");
  size_t tlen = strlen(tmp) + 8;
  char *tmpdir = malloc(tlen);
  snprintf(tmpdir, tlen, "TMPDIR=%s", tmp);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    putenv(newpath);
    putenv(tmpdir);
    signal(sig, SIG_DFL);
    char *so_argv[] = {TFXC_PATH, x, "--weights", "random", "-O0", "-o", out, "--emit-header", h, NULL};
    char *obj_argv[] = {TFXC_PATH, x, "--weights", "random", "-O0", "-c", "-o", out, "--emit-header", h, NULL};
    execv(TFXC_PATH, object ? obj_argv : so_argv);
    _exit(127);
  }
  /* the fake tool marks its start: compiling comes first (slow when busy) */
  int waited = 0;
  while (access(mark, F_OK) != 0 && waited < 300000) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) fail_msg("tfxc exited (status %d) before the %s started", status, tool);
    sleep_ms(20);
    waited += 20;
  }
  assert_int_equal(access(mark, F_OK), 0);
  char *m = tfx_test_read_file(mark, NULL);
  long tool_pid = atol(m);
  free(m);
  assert_true(tool_pid > 0 && alive(tool_pid));
  assert_int_equal(kill(pid, sig), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != sig)
    fprintf(stderr, "tfxc: status %#x, expected death by signal %d\n", status, sig);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), sig); /* re-raised: the shell sees the interrupt */
  for (int i = 0; i < 100 && alive(tool_pid); i++) sleep_ms(20);
  assert_false(alive(tool_pid)); /* the tool was ended, it will not write later */
  assert_file_is(out, "previous good output", 20);
  assert_file_is(h, "previous header", 15);
  assert_dir_holds(dir, (const char *[]){"x.tfx", object ? "good.o" : "good.so", "good.h", NULL});
  assert_dir_holds(tmp, (const char *[]){NULL}); /* the backend's code.o and weights.o too */
  unlink(mark);
  unlink(script);
  free(x);
  free(out);
  free(h);
  free(mark);
  free(script);
  free(newpath);
  free(tmpdir);
  tfx_test_rmdir(dir);
  tfx_test_rmdir(fake);
  tfx_test_rmdir(tmp);
  free(dir);
  free(fake);
  free(tmp);
}

static void test_sigint_during_link(void **state) {
  (void)state;
  interrupt_during("cc", SIGINT, 0);
}

static void test_sigterm_during_link(void **state) {
  (void)state;
  interrupt_during("cc", SIGTERM, 0);
}

static void test_sigterm_during_object(void **state) {
  (void)state;
  interrupt_during("ld", SIGTERM, 1);
}

int main(void) {
  snprintf(example_tfx, sizeof example_tfx, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_output_same_as_input_is_refused),
      cmocka_unit_test(test_failed_link_leaves_everything_as_it_was),
      cmocka_unit_test(test_failed_run_keeps_the_dump),
      cmocka_unit_test(test_symlink_and_device_outputs),
      cmocka_unit_test(test_dash_names_are_files),
      cmocka_unit_test(test_backend_dash_paths),
      cmocka_unit_test(test_unwritable_output_directory),
      cmocka_unit_test(test_stdout_errors),
      cmocka_unit_test(test_sigint_during_link),
      cmocka_unit_test(test_sigterm_during_link),
      cmocka_unit_test(test_sigterm_during_object),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
