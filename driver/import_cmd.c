/* driver/import_cmd.c — the `tfxc import` subcommand: its options, where
 * the .tfx goes (atomically, as every tfxc output), which weights path it
 * names (the file's name when the .tfx is written beside it, else its
 * absolute path) and the folder's tokenizer it names (one the runtime
 * reads). The .tfx itself is written by frontend/import.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../frontend/import.h"
#include "../include/tfx/tokenizer.h"
#include "import_cmd.h"
#include "outfile.h"

enum { IMPORT_EXIT_ERROR = 1, IMPORT_EXIT_USAGE = 2 };

const char *const tfx_drv_import_usage =
    "usage: tfxc import (DIR|FILE.gguf) [-o OUT.tfx] [--max-seq N] [--name NAME]\n";

static const char *const import_help =
    "Writes a .tfx for a checkpoint as it is saved: a Hugging Face folder (config.json and\n"
    "model.safetensors, or a sharded model.safetensors.index.json) or a llama GGUF file.\n"
    "  -o OUT.tfx        where to write it (default: the checkpoint's name + .tfx here)\n"
    "  --max-seq N       the model's max_seq (default: its context, at most 4096)\n"
    "  --name NAME       the model's name (default: the checkpoint's folder or file name)\n"
    "Families: llama, mistral, qwen2, mixtral, phi, phi3, gpt2, gpt_neox, bloom, falcon,\n"
    "bert; GGUF: llama. Others are refused with the reason (docs/import.md).\n";

static int usage(const char *fmt, const char *arg) {
  fprintf(stderr, "tfxc import: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", tfx_drv_import_usage);
  return IMPORT_EXIT_USAGE;
}

static const char *value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') return argv[*i] + n + 1;
  if (!strcmp(argv[*i], name) && *i + 1 < argc) return argv[++*i];
  return NULL;
}

static int is_opt(const char *a, const char *name) {
  size_t n = strlen(name);
  return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

/* The directory of a path, resolved (the path itself need not exist). */
static char *real_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy) return NULL;
  char *r = realpath(dirname(copy), NULL);
  free(copy);
  return r;
}

/* The tokenizer of a Hugging Face folder (tokenizer.json, else
 * tokenizer.model) when the runtime reads it, as the .tfx in out_dir names
 * it (its file name when in the same folder, else its absolute path);
 * NULL when there is none or it cannot be read (with a note on stderr). A
 * GGUF file's vocabulary is not taken: the statement would embed the whole
 * file. */
static char *find_tokenizer(const char *in, const char *out_dir) {
  static const char *const names[] = {"tokenizer.json", "tokenizer.model"};
  struct stat st;
  if (stat(in, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[4096], why[1024] = "";
    snprintf(path, sizeof path, "%s/%s", in, names[i]);
    if (stat(path, &st) != 0) continue;
    tfx_tokenizer *t = NULL;
    if (tfx_tokenizer_open(path, &t, why, sizeof why) != 0) {
      fprintf(stderr, "tfxc import: note: no tokenizer statement for %s\n", why[0] ? why : path);
      continue;
    }
    tfx_tokenizer_close(t);
    char *abs = realpath(path, NULL), *dir = abs ? real_dir(abs) : NULL;
    char *named = abs && dir && out_dir && !strcmp(dir, out_dir) ? strdup(names[i]) : abs ? strdup(abs) : NULL;
    free(abs);
    free(dir);
    return named;
  }
  return NULL;
}

int tfx_drv_import_main(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *name = NULL;
  tfx_import_options o = {0};
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("%s\n%s", tfx_drv_import_usage, import_help);
      return 0;
    } else if (!strcmp(a, "-o")) {
      if (i + 1 >= argc || !argv[i + 1][0]) return usage("%s needs a file name", "-o");
      out = argv[++i];
    } else if (is_opt(a, "--max-seq")) {
      if (!(v = value(argc, argv, &i, "--max-seq"))) return usage("%s needs a number", "--max-seq");
      char *end;
      errno = 0;
      long n = strtol(v, &end, 10);
      if (end == v || *end || errno || n < 1 || n > (1L << 24))
        return usage("--max-seq needs a number from 1 to 16777216, not '%s'", v);
      o.max_seq = n;
    } else if (is_opt(a, "--name")) {
      if (!(name = value(argc, argv, &i, "--name")) || !name[0]) return usage("%s needs a name", "--name");
    } else if (a[0] == '-' && a[1]) {
      return usage("unknown option '%s'", a);
    } else if (in) {
      return usage("more than one checkpoint ('%s')", a);
    } else {
      in = a;
    }
  }
  if (!in) return usage("%s", "import needs a checkpoint (a Hugging Face folder or a .gguf file)");
  char err[2048] = "", wpath[4096], def_out[512];
  if (tfx_import_weights_path(in, wpath, sizeof wpath, err, sizeof err)) {
    fprintf(stderr, "tfxc import: error: %s\n", err);
    return IMPORT_EXIT_ERROR;
  }
  if (!out) { /* the checkpoint's name + .tfx, in the working directory */
    char *copy = strdup(in);
    size_t n = copy ? strlen(copy) : 0;
    while (n > 1 && copy[n - 1] == '/') copy[--n] = 0;
    const char *base = copy ? basename(copy) : "model";
    const char *dot = strrchr(base, '.');
    int len = dot && dot != base && !strcmp(dot, ".gguf") ? (int)(dot - base) : (int)strlen(base);
    snprintf(def_out, sizeof def_out, "%.*s.tfx", len > 400 ? 400 : len, base);
    free(copy);
    out = def_out;
  }
  /* the weights path as the .tfx names it: relative to the .tfx's folder */
  char *wdir = real_dir(wpath), *odir = real_dir(out), *wcopy = strdup(wpath);
  if (wdir && odir && wcopy && !strcmp(wdir, odir)) o.weights = basename(wcopy);
  /* a folder's tokenizer the runtime reads: the .tfx's tokenizer statement */
  char *tok = find_tokenizer(in, odir);
  o.tokenizer = tok;
  o.name = name;
  char *text = NULL;
  int rc = tfx_import(in, &o, &text, err, sizeof err);
  free(wdir);
  free(odir);
  free(tok);
  if (rc) {
    free(wcopy);
    fprintf(stderr, "tfxc import: error: %s\n", err);
    return IMPORT_EXIT_ERROR;
  }
  tfx_drv_output dest = {0};
  size_t len = strlen(text);
  if (tfx_drv_output_begin(&dest, out, ".tfx", 0, err, sizeof err)) {
    fprintf(stderr, "tfxc import: error: %s\n", err);
    rc = IMPORT_EXIT_ERROR;
  } else {
    FILE *f = fopen(dest.tmp, "wb");
    int bad = !f || fwrite(text, 1, len, f) != len;
    if ((f && fclose(f) != 0) || bad) {
      fprintf(stderr, "tfxc import: error: cannot write '%s'\n", out);
      rc = IMPORT_EXIT_ERROR;
    } else if (tfx_drv_output_commit(&dest, err, sizeof err)) {
      fprintf(stderr, "tfxc import: error: %s\n", err);
      rc = IMPORT_EXIT_ERROR;
    }
    tfx_drv_output_discard(&dest);
  }
  free(text);
  free(wcopy);
  return rc;
}
