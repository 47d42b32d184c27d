/* tests/support/testutil.c — see testutil.h. */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tfx_test_models_dir(void) {
  const char *env = getenv("TFX_MODELS_DIR");
  return env && *env ? env : TFX_MODELS_DIR_DEFAULT;
}

/* the sanitizer build (tests/CMakeLists.txt defines TFX_SANITIZE_FLAGS there) */
#ifdef TFX_SANITIZE_FLAGS
#define LLVM_MAX_DEFAULT 0
#else
#define LLVM_MAX_DEFAULT 3
#endif

int tfx_test_llvm_level(int level) {
  const char *env = getenv("TFX_TEST_LLVM_MAX");
  int cap = env && *env ? atoi(env) : LLVM_MAX_DEFAULT;
  return level < cap ? level : cap;
}

char *tfx_test_model_path(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", tfx_test_models_dir(), name);
  return buf;
}

int tfx_test_stories260k(const char *who, char *bin, size_t binlen, char *tfx, size_t tfxlen, int32_t *ids, int n_ids) {
  char path[4096];
  tfx_test_model_path("stories260K.bin", bin, binlen);
  snprintf(tfx, tfxlen, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  if (access(bin, R_OK) != 0) {
    fprintf(stderr, "%s: the real model is missing: %s (set TFX_MODELS_DIR)\n", who, bin);
    return -1;
  }
  if (tfx_test_read_ids(tfx_test_model_path("stories260K.greedy.ids", path, sizeof path), ids, n_ids) != n_ids) {
    fprintf(stderr, "%s: cannot read %d reference ids from %s\n", who, n_ids, path);
    return -1;
  }
  return 0;
}

char *tfx_test_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = 0;
    if (size) *size = (size_t)n;
  }
  return buf;
}

int tfx_test_read_ids(const char *path, int32_t *ids, int max) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0;
  while (n < max && fscanf(f, "%d", &ids[n]) == 1) n++;
  fclose(f);
  return n;
}

char *tfx_test_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/tfxtest-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpl)) return NULL;
  return strdup(tmpl);
}

void tfx_test_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static char *slurp_fd(int fd) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  for (;;) {
    if (len + 1 >= cap) {
      char *b = realloc(buf, cap *= 2);
      if (!b) break;
      buf = b;
    }
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r <= 0) break;
    len += (size_t)r;
  }
  buf[len] = 0;
  return buf;
}

int tfx_test_run(char *const argv[], char **out, char **err) {
  char tmpl_out[] = "/tmp/tfxrun-out-XXXXXX", tmpl_err[] = "/tmp/tfxrun-err-XXXXXX";
  int fo = mkstemp(tmpl_out), fe = mkstemp(tmpl_err);
  if (fo < 0 || fe < 0) return -1;
  unlink(tmpl_out);
  unlink(tmpl_err);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(fo, 1);
    dup2(fe, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  lseek(fo, 0, SEEK_SET);
  lseek(fe, 0, SEEK_SET);
  if (out) *out = slurp_fd(fo);
  if (err) *err = slurp_fd(fe);
  close(fo);
  close(fe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tfx_test_argmax(const float *v, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

double tfx_test_max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > m || d != d) m = d != d ? INFINITY : d;
  }
  return m;
}

int tfx_test_run_oracle(char *const argv[], const char *setup) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc) fprintf(stderr, "%s failed (%d): is %s run?\n%s%s\n", argv[0], rc, setup, out ? out : "", err ? err : "");
  free(out);
  free(err);
  return rc ? -1 : 0;
}

char *tfx_test_hf_oracle_dir(const char *python, const char *script) {
  char *workdir = tfx_test_tmpdir();
  if (!workdir) return NULL;
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/hf/%s", TFX_SOURCE_DIR, script);
  char *argv[] = {(char *)python, path, workdir, NULL};
  if (tfx_test_run_oracle(argv, "scripts/hfenv.sh")) {
    tfx_test_hf_oracle_dir_free(workdir);
    return NULL;
  }
  return workdir;
}

void *tfx_test_hf_oracle_read(const char *workdir, const char *name, size_t *size) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  return tfx_test_read_file(path, size);
}

void tfx_test_hf_oracle_dir_free(char *workdir) {
  if (!workdir) return;
  if (getenv("TFX_TORCH_KEEP"))
    fprintf(stderr, "kept %s\n", workdir);
  else
    tfx_test_rmdir(workdir);
  free(workdir);
}

int tfx_test_compile_text(const char *src, char **err) {
  char path[] = "/tmp/tfx_src_XXXXXX.tfx";
  int fd = mkstemps(path, 4);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    *err = strdup("cannot write a temporary .tfx");
    return -1;
  }
  fputs(src, f);
  fclose(f);
  char *out = NULL;
  int rc = tfx_test_run((char *[]){TFXC_PATH, path, "--weights", "random", "--emit=ir", NULL}, &out, err);
  remove(path);
  free(out);
  return rc;
}

char *tfx_test_hf_families(const char *python, const char *script, const char *const *families, int n) {
  char *workdir = tfx_test_tmpdir();
  if (!workdir) return NULL;
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/hf/%s", TFX_SOURCE_DIR, script);
  char **argv = calloc((size_t)n + 4, sizeof *argv);
  if (!argv) {
    free(workdir);
    return NULL;
  }
  argv[0] = (char *)python;
  argv[1] = path;
  argv[2] = workdir;
  for (int i = 0; i < n; i++) argv[3 + i] = (char *)families[i];
  int rc = tfx_test_run_oracle(argv, "scripts/hfenv.sh");
  free(argv);
  if (rc) {
    tfx_test_hf_families_free(workdir, families, n);
    return NULL;
  }
  return workdir;
}

void tfx_test_hf_families_free(char *workdir, const char *const *families, int n) {
  if (!workdir) return;
  if (getenv("TFX_TORCH_KEEP")) {
    fprintf(stderr, "kept %s\n", workdir);
  } else {
    for (int i = 0; i < n; i++) {
      char d[1024];
      snprintf(d, sizeof d, "%s/%s", workdir, families[i]);
      tfx_test_rmdir(d);
    }
    tfx_test_rmdir(workdir);
  }
  free(workdir);
}
