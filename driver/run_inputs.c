/* driver/run_inputs.c — the extra forward inputs of `tfxc run`: parses
 * --input NAME=VALUES (and the ids of --source), checks each against the
 * model's input table (tfx_model_input: name, kind, width, per-token rows or
 * a source's 1..N rows) and feeds them to every forward call of the run
 * (tfx_forward_inputs). Per-token inputs are given for the fed prompt, or as
 * one row for every row; generated rows repeat the last given row. */
#include "run_inputs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../frontend/weights.h"

typedef struct run_input {
  tfx_input_info info;
  int given;     /* 1 once an --input (or --source) named it */
  int64_t count; /* values given */
  void *values;  /* int32_t or float [count] */
} run_input;

struct tfx_drv_inputs {
  int n;      /* the model's inputs */
  int tokens; /* the index of the token input fed the ids */
  run_input in[TFX_DRV_MAX_RUN_INPUTS];
  void *scratch; /* one call's rows of every per-token input */
  int64_t scratch_bytes;
};

int tfx_drv_read_text_file(const char *what, const char *path, char **text_out) {
  char oerr[512];
  uint64_t fsize;
  *text_out = NULL;
  FILE *f = tfx_wfile_fopen(path, &fsize, oerr, sizeof oerr);
  if (!f) {
    fprintf(stderr, "tfxc: error: %s: %s\n", what, oerr);
    return -1;
  }
  size_t cap = 4096, len = 0;
  char *text = malloc(cap);
  for (size_t got; text && (got = fread(text + len, 1, cap - 1 - len, f)) > 0;) {
    len += got;
    if (len + 1 == cap) {
      char *t = realloc(text, cap *= 2);
      if (!t) free(text);
      text = t;
    }
  }
  int bad_read = ferror(f);
  fclose(f);
  if (!text || bad_read) {
    fprintf(stderr, "tfxc: error: %s: cannot read '%s'\n", what, path);
    free(text);
    return -1;
  }
  text[len] = 0;
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\n' || text[i] == '\r') text[i] = ' ';
  *text_out = text;
  return 0;
}

/* ids: the values of an input are ids into a vocabulary (an embedding's) */
static int is_ids(const tfx_input_info *ii) {
  return ii->kind == TFX_INPUT_TOKENS || (ii->kind == TFX_INPUT_I32 && ii->vocab > 0);
}

/* "ids", "i32 values", "f32 values" (one: "id", ...) */
static const char *kind_name(const tfx_input_info *ii, int64_t n) {
  if (ii->kind == TFX_INPUT_F32) return n == 1 ? "f32 value" : "f32 values";
  if (is_ids(ii)) return n == 1 ? "id" : "ids";
  return n == 1 ? "i32 value" : "i32 values";
}

/* "I J K" / "1.5,2": every number of text into in->values; 0, or -1 with
 * the offending word in *bad. */
static int parse_values(run_input *in, const char *text, const char **bad) {
  size_t cap = strlen(text) / 2 + 2;
  int is_f32 = in->info.kind == TFX_INPUT_F32;
  void *v = malloc(cap * (is_f32 ? sizeof(float) : sizeof(int32_t)));
  if (!v) return -1;
  int64_t n = 0;
  for (const char *p = text; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!*p) break;
    char *end;
    errno = 0;
    int ok;
    if (is_f32) {
      float x = strtof(p, &end);
      ok = end != p && !errno && isfinite(x);
      if (ok) ((float *)v)[n] = x;
    } else {
      long x = strtol(p, &end, 10);
      ok = end != p && !errno && x >= INT32_MIN && x <= INT32_MAX;
      if (ok) ((int32_t *)v)[n] = (int32_t)x;
    }
    if (!ok || (*end && *end != ' ' && *end != '\t' && *end != ',')) {
      *bad = p;
      free(v);
      return -1;
    }
    n++;
    p = end;
  }
  in->values = v;
  in->count = n;
  return 0;
}

/* The values of one --input NAME=VALUES (or @FILE) into in: 0 or -1 after
 * the error. */
static int take_values(run_input *in, const char *name, const char *values) {
  char *file_text = NULL;
  if (values[0] == '@') {
    char what[160];
    snprintf(what, sizeof what, "--input %s=@FILE", name);
    if (tfx_drv_read_text_file(what, values + 1, &file_text)) return -1;
    values = file_text;
  }
  const char *bad = NULL;
  int rc = parse_values(in, values, &bad);
  if (rc) {
    if (bad) {
      int w = 0;
      while (bad[w] && bad[w] != ' ' && bad[w] != '\t' && bad[w] != ',' && w < 40) w++;
      fprintf(stderr, "tfxc: error: --input %s: '%.*s' is not %s (numbers separated by blanks or commas)\n", name, w,
              bad, in->info.kind == TFX_INPUT_F32 ? "a finite number" : "an integer");
    } else {
      fprintf(stderr, "tfxc: error: out of memory\n");
    }
  } else if (in->count == 0) {
    fprintf(stderr, "tfxc: error: --input %s: no values\n", name);
    rc = -1;
  }
  free(file_text);
  return rc;
}

/* The model's input names, for the errors ("'tokens', 'src'"). */
static void list_names(const tfx_drv_inputs *p, char *buf, size_t len) {
  buf[0] = 0;
  for (int i = 0; i < p->n; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s'%s'", i ? ", " : "", p->in[i].info.name);
  }
}

/* The rows of a given input: a source's values are its rows S; a per-token
 * input must give one row or the fed prompt's rows. 0 or -1 after the error. */
static int check_rows(const run_input *in, int n_fed, int32_t vocab) {
  const tfx_input_info *ii = &in->info;
  int64_t w = ii->width > 0 ? ii->width : 1;
  if (ii->rows > 0) {
    if (in->count > ii->rows) {
      fprintf(stderr, "tfxc: error: --input %s: %lld values, but the source holds at most %d\n", ii->name,
              (long long)in->count, (int)ii->rows);
      return -1;
    }
  } else if (in->count % w || (in->count / w != 1 && in->count / w != n_fed)) {
    fprintf(stderr,
            "tfxc: error: --input %s: %lld values: give one row of %lld (used for every row) or a row for each of "
            "the %d fed tokens (BOS included when fed): %lld values\n",
            ii->name, (long long)in->count, (long long)w, n_fed, (long long)(w * n_fed));
    return -1;
  }
  if (ii->kind != TFX_INPUT_F32 && vocab > 0)
    for (int64_t i = 0; i < in->count; i++) {
      int32_t x = ((const int32_t *)in->values)[i];
      if (x < 0 || x >= vocab) {
        fprintf(stderr, "tfxc: error: --input %s: id %d (value %lld) is not in [0, %d)\n", ii->name, (int)x,
                (long long)i + 1, (int)vocab);
        return -1;
      }
    }
  return 0;
}

int tfx_drv_inputs_plan(const tfx_model *model, const char *model_name, const tfx_drv_input_arg *args, int n_args,
                        const int32_t *source_ids, int n_source, int n_fed, tfx_drv_inputs **out) {
  *out = NULL;
  struct tfx_model_info mi = {.struct_size = sizeof mi};
  if (tfx_model_info(model, &mi) != TFX_OK) return 1;
  if (mi.n_inputs <= 1 && n_args == 0 && !source_ids) return 0;
  tfx_drv_inputs *p = calloc(1, sizeof *p);
  if (!p) {
    fprintf(stderr, "tfxc: error: out of memory\n");
    return 1;
  }
  p->n = mi.n_inputs < 1 ? 1 : mi.n_inputs > TFX_DRV_MAX_RUN_INPUTS ? TFX_DRV_MAX_RUN_INPUTS : mi.n_inputs;
  p->tokens = -1;
  for (int i = 0; i < p->n; i++) {
    tfx_model_input(model, i, &p->in[i].info);
    if (p->tokens < 0 && p->in[i].info.kind == TFX_INPUT_TOKENS && p->in[i].info.rows == 0) p->tokens = i;
  }
  char names[512];
  list_names(p, names, sizeof names);
  int rc = 0;
  if (p->tokens < 0) {
    fprintf(stderr, "tfxc: error: '%s' has no per-token ids input to generate with (its inputs: %s)\n", model_name,
            names);
    rc = 1;
  }
  for (int a = 0; !rc && a < n_args; a++) {
    const char *eq = strchr(args[a].text, '=');
    int len = eq ? (int)(eq - args[a].text) : 0;
    if (!eq || len == 0) {
      fprintf(stderr, "tfxc: error: --input '%s': expected NAME=VALUES (the model's inputs: %s)\n", args[a].text,
              names);
      rc = 2;
      break;
    }
    int k = -1;
    for (int i = 0; i < p->n; i++)
      if ((int)strlen(p->in[i].info.name) == len && !strncmp(p->in[i].info.name, args[a].text, (size_t)len)) k = i;
    if (k < 0) {
      fprintf(stderr, "tfxc: error: --input %.*s: '%s' has no input of that name (its inputs: %s)\n", len, args[a].text,
              model_name, names);
      rc = 2;
    } else if (k == p->tokens) {
      fprintf(stderr, "tfxc: error: --input %s: the token ids are the prompt's (--prompt-ids, -p)\n",
              p->in[k].info.name);
      rc = 2;
    } else if (p->in[k].given) {
      fprintf(stderr, "tfxc: error: --input %s is given twice\n", p->in[k].info.name);
      rc = 2;
    } else if (take_values(&p->in[k], p->in[k].info.name, eq + 1) ||
               check_rows(&p->in[k], n_fed, p->in[k].info.vocab)) {
      rc = 1;
    } else {
      p->in[k].given = 1;
    }
  }
  if (!rc && source_ids) { /* --source: the model's one source of ids */
    int k = -1, sources = 0;
    for (int i = 0; i < p->n; i++)
      if (p->in[i].info.rows > 0 && is_ids(&p->in[i].info)) k = i, sources++;
    if (sources != 1) {
      fprintf(stderr, "tfxc: error: --source: '%s' has %s source of token ids (its inputs: %s); use --input NAME=IDS\n",
              model_name, sources ? "more than one" : "no", names);
      rc = 2;
    } else if (p->in[k].given) {
      fprintf(stderr, "tfxc: error: --source and --input %s both give the source\n", p->in[k].info.name);
      rc = 2;
    } else if (!(p->in[k].values = malloc((size_t)(n_source > 0 ? n_source : 1) * sizeof(int32_t)))) {
      fprintf(stderr, "tfxc: error: out of memory\n");
      rc = 1;
    } else {
      memcpy(p->in[k].values, source_ids, (size_t)n_source * sizeof(int32_t));
      p->in[k].count = n_source;
      if (n_source == 0) {
        fprintf(stderr, "tfxc: error: --source: the text encodes to no ids\n");
        rc = 1;
      } else if (check_rows(&p->in[k], n_fed, p->in[k].info.vocab)) {
        rc = 1;
      }
      p->in[k].given = !rc;
    }
  }
  /* every input but the token ids must be given; the sources agree on S */
  int64_t s_rows = -1;
  for (int i = 0; !rc && i < p->n; i++) {
    const run_input *in = &p->in[i];
    if (i == p->tokens) continue;
    if (!in->given) {
      char width_text[16] = "one";
      if (in->info.width != 1) snprintf(width_text, sizeof width_text, "%d", (int)in->info.width);
      if (in->info.rows > 0)
        fprintf(stderr, "tfxc: error: '%s' takes the source '%s' (1 to %d %s): give it with --input %s=VALUES%s\n",
                model_name, in->info.name, (int)in->info.rows, kind_name(&in->info, 2), in->info.name,
                is_ids(&in->info) ? " or --source TEXT" : "");
      else
        fprintf(stderr, "tfxc: error: '%s' takes the input '%s' (%s %s per token): give it with --input %s=VALUES\n",
                model_name, in->info.name, width_text, kind_name(&in->info, in->info.width), in->info.name);
      rc = 2;
    } else if (in->info.rows > 0) {
      if (s_rows >= 0 && in->count != s_rows) {
        fprintf(stderr,
                "tfxc: error: --input %s: %lld rows, but the other source has %lld (a call's sources share S)\n",
                in->info.name, (long long)in->count, (long long)s_rows);
        rc = 2;
      }
      s_rows = in->count;
    }
  }
  if (rc) {
    tfx_drv_inputs_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

int tfx_drv_inputs_forward(tfx_drv_inputs *p, tfx_session *s, const int32_t *tokens, int32_t n, int64_t first,
                           float *out, int last_only) {
  if (!p) return tfx_forward_ex(s, tokens, n, out, last_only);
  int64_t need = 0;
  for (int i = 0; i < p->n; i++)
    if (i != p->tokens && p->in[i].info.rows == 0)
      need += (int64_t)n * (p->in[i].info.width > 0 ? p->in[i].info.width : 1) * 4;
  if (need > p->scratch_bytes) {
    void *b = realloc(p->scratch, (size_t)need);
    if (!b) return TFX_ERR_OUT_OF_MEMORY;
    p->scratch = b;
    p->scratch_bytes = need;
  }
  tfx_input in[TFX_DRV_MAX_RUN_INPUTS];
  char *at = p->scratch;
  for (int i = 0; i < p->n; i++) {
    const run_input *r = &p->in[i];
    in[i].name = r->info.name;
    in[i].rows = 0;
    if (i == p->tokens) {
      in[i].data = tokens;
    } else if (r->info.rows > 0) { /* a source: all of it, every call */
      in[i].data = r->values;
      in[i].rows = (int32_t)r->count;
    } else { /* rows first .. first + n: the given rows, then the last one repeated */
      int64_t w = r->info.width > 0 ? r->info.width : 1, given = r->count / w;
      for (int32_t t = 0; t < n; t++) {
        int64_t row = first + t < given ? first + t : given - 1;
        memcpy(at + (size_t)t * (size_t)w * 4, (const char *)r->values + (size_t)row * (size_t)w * 4, (size_t)w * 4);
      }
      in[i].data = at;
      at += (size_t)n * (size_t)w * 4;
    }
  }
  return tfx_forward_inputs(s, in, p->n, n, out, last_only);
}

void tfx_drv_inputs_free(tfx_drv_inputs *p) {
  if (!p) return;
  for (int i = 0; i < p->n; i++) free(p->in[i].values);
  free(p->scratch);
  free(p);
}
