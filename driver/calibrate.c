/* driver/calibrate.c — `tfxc calibrate FILE.tfx [--weights W] --tokens
 * FILE... -o OUT.calib`: runs the model in the reference interpreter on
 * calibration token sequences (each file one sequence of whitespace-separated
 * ids, fed after BOS: the model's tokens { bos }, else 1, as `run --eval-ids`) and records, for every linear
 * whose weight is a named param, the largest |x| of each input channel and
 * GPTQ's H = sum x x^T of its input rows (in f64; one H per value that
 * linears read: Q, K and V of a norm share it) (ir/calib.c writes the
 * "TFXCALIB v2" file; docs/quantization.md,
 * "Calibration"). The model is taken as bound, unquantized (--quantize none;
 * its quantize { } rules still apply) and unoptimized (-O0), so the names are
 * the source's params, which passes/smooth_quant.c looks up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"

#define EXIT_USAGE 2
#define EXIT_FAIL 1

static int usage(const char *msg) {
  fprintf(stderr,
          "tfxc calibrate: error: %s\nusage: tfxc calibrate FILE.tfx [--weights PATH] --tokens FILE... -o OUT.calib\n",
          msg);
  return EXIT_USAGE;
}

typedef struct {
  tfx_calib *cal;
  int oom;
  int *h_of;    /* per node id of a linear input: the entry holding its H, or -1 */
  char *summed; /* per node id: its rows already added to H in this forward */
} observe_ctx;

/* After each node: a linear's input rows raise its weight's channel maxima. */
static void observe(void *user, const tfx_graph *g, const tfx_node *nd, const void *const *vals, int64_t n) {
  observe_ctx *o = user;
  if (nd->op != TFX_OP_LINEAR && nd->op != TFX_OP_FUSED_LINEAR) return;
  const tfx_node *w = &g->nodes[nd->inputs[1]], *xn = &g->nodes[nd->inputs[0]];
  if (w->op != TFX_OP_PARAM || !w->name || xn->type.dtype != TFX_DT_F32) return;
  int64_t K = tfx_node_cols(xn), M = tfx_node_rows(xn, n);
  tfx_calib_entry *e = tfx_calib_entry_get(o->cal, w->name, K);
  if (!e) {
    o->oom = 1;
    return;
  }
  const float *x = vals[nd->inputs[0]];
  for (int64_t m = 0; m < M; m++)
    for (int64_t k = 0; k < K; k++) {
      float a = x[m * K + k] < 0 ? -x[m * K + k] : x[m * K + k];
      if (a > e->absmax[k]) e->absmax[k] = a; /* NaN never raises it */
    }
  /* H: one per input value; a weight read by linears of several inputs sums them all */
  int xid = nd->inputs[0], ei = (int)(e - o->cal->e);
  const tfx_calib_entry *share = o->h_of[xid] >= 0 ? &o->cal->e[o->h_of[xid]] : NULL;
  if (!e->H && tfx_calib_entry_hessian(e, share && share->K == K ? share : NULL)) {
    o->oom = 1;
    return;
  }
  if (o->h_of[xid] < 0) o->h_of[xid] = ei;
  if ((o->h_of[xid] == ei || e->h_owned) && !o->summed[xid]) {
    o->summed[xid] = 1;
    double *H = e->H;
    for (int64_t m = 0; m < M; m++) {
      const float *r = x + m * K;
      for (int64_t a = 0; a < K; a++) {
        double xa = r[a];
        if (xa == 0.0) continue;
        double *h = H + a * K;
        for (int64_t b = 0; b < K; b++) h[b] += xa * r[b];
      }
    }
  }
}

/* The ids of a tokens file after bos: *ids (malloc'd), *n; 0 or -1 printed. */
static int read_ids(const char *path, int64_t vocab, int64_t max_seq, int32_t bos, int32_t **ids, int64_t *n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "tfxc calibrate: error: %s: cannot open the tokens file\n", path);
    return -1;
  }
  int64_t cap = 256, len = 1;
  int32_t *v = malloc((size_t)cap * sizeof *v);
  int rc = v ? 0 : -1;
  if (v) v[0] = bos;
  long long id;
  int got;
  while (rc == 0 && (got = fscanf(f, "%lld", &id)) == 1) {
    if (id < 0 || id >= vocab) {
      fprintf(stderr, "tfxc calibrate: error: %s: token id %lld is outside the vocabulary (0 .. %lld)\n", path, id,
              (long long)vocab - 1);
      rc = -1;
      break;
    }
    if (len == max_seq) {
      fprintf(stderr, "tfxc calibrate: error: %s: more than %lld tokens with BOS (the model's max_seq)\n", path,
              (long long)max_seq);
      rc = -1;
      break;
    }
    if (len == cap) {
      int32_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
      if (!nv) {
        rc = -1;
        break;
      }
      v = nv;
    }
    v[len++] = (int32_t)id;
  }
  if (rc == 0 && !feof(f)) {
    fprintf(stderr, "tfxc calibrate: error: %s: not a list of integer token ids\n", path);
    rc = -1;
  }
  if (rc == 0 && len < 2) {
    fprintf(stderr, "tfxc calibrate: error: %s: no token ids\n", path);
    rc = -1;
  }
  fclose(f);
  if (rc) {
    free(v);
    return -1;
  }
  *ids = v;
  *n = len;
  return 0;
}

int tfx_drv_calibrate_main(int argc, char **argv) {
  const char *model = NULL, *weights = NULL, *out = NULL;
  const char **tokens = calloc((size_t)(argc > 0 ? argc : 1), sizeof *tokens);
  int ntok = 0;
  if (!tokens) return EXIT_FAIL;
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--weights") || !strcmp(a, "-o")) {
      if (i + 1 >= argc) {
        rc = usage(!strcmp(a, "-o") ? "-o needs a file" : "--weights needs a path");
        break;
      }
      if (!strcmp(a, "-o"))
        out = argv[++i];
      else
        weights = argv[++i];
    } else if (!strcmp(a, "--tokens")) {
      int before = ntok;
      while (i + 1 < argc && argv[i + 1][0] != '-') tokens[ntok++] = argv[++i];
      if (ntok == before) rc = usage("--tokens needs at least one file");
    } else if (a[0] == '-') {
      fprintf(stderr, "tfxc calibrate: error: unknown option '%s'\n", a);
      rc = EXIT_USAGE;
    } else if (!model) {
      model = a;
    } else {
      fprintf(stderr, "tfxc calibrate: error: a second model '%s'\n", a);
      rc = EXIT_USAGE;
    }
  }
  if (rc == 0 && !model) rc = usage("no FILE.tfx");
  if (rc == 0 && !ntok) rc = usage("no --tokens FILE");
  if (rc == 0 && !out) rc = usage("no -o OUT.calib");
  if (rc) {
    free(tokens);
    return rc;
  }
  tfx_build_options bo = {.weights = weights, .opt_level = 0, .quantize = "none"};
  tfx_build b;
  if (tfx_build_source(model, NULL, &bo, &b)) {
    free(tokens);
    return EXIT_FAIL;
  }
  tfx_graph *g = b.graph;
  tfx_calib cal = {0};
  observe_ctx oc = {&cal, 0, NULL, NULL};
  tfx_interp *it = NULL;
  float *logits = NULL;
  char err[512];
  const tfx_node *in = &g->nodes[g->input];
  int64_t vocab = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_EMBEDDING && g->nodes[i].inputs[1] == g->input)
      vocab = g->nodes[i].type.rank ? g->nodes[g->nodes[i].inputs[0]].type.dims[0] : 0;
  if (in->type.dtype != TFX_DT_I32 || vocab <= 0) {
    fprintf(stderr, "tfxc calibrate: error: %s: the model's input is not token ids into an embedding\n", model);
    rc = EXIT_FAIL;
    goto done;
  }
  if (!(it = tfx_interp_new(g, b.weights.data))) {
    fprintf(stderr, "tfxc calibrate: error: out of memory\n");
    rc = EXIT_FAIL;
    goto done;
  }
  oc.h_of = malloc((size_t)g->n_nodes * sizeof *oc.h_of);
  oc.summed = calloc((size_t)g->n_nodes, 1);
  if (!oc.h_of || !oc.summed) {
    rc = EXIT_FAIL;
    goto done;
  }
  for (int i = 0; i < g->n_nodes; i++) oc.h_of[i] = -1;
  tfx_interp_set_observer(it, observe, &oc);
  logits = malloc((size_t)tfx_type_bytes(&g->nodes[g->output].type, g->max_seq));
  if (!logits) {
    rc = EXIT_FAIL;
    goto done;
  }
  int64_t total = 0;
  for (int t = 0; t < ntok && rc == 0; t++) {
    int32_t *ids = NULL;
    int64_t n = 0;
    int32_t bos = g->bos_id >= 0 && g->bos_id < vocab ? (int32_t)g->bos_id : 1; /* tokens { bos }, else llama2.c's 1 */
    if (read_ids(tokens[t], vocab, g->max_seq, bos, &ids, &n)) {
      rc = EXIT_FAIL;
      break;
    }
    tfx_interp_reset(it);
    memset(oc.summed, 0, (size_t)g->n_nodes);
    if (tfx_interp_forward(it, ids, n, logits, err, sizeof err)) {
      fprintf(stderr, "tfxc calibrate: error: %s: %s\n", tokens[t], err);
      rc = EXIT_FAIL;
    }
    total += n;
    free(ids);
    if (oc.oom) {
      fprintf(stderr, "tfxc calibrate: error: out of memory\n");
      rc = EXIT_FAIL;
    }
  }
  if (rc == 0 && cal.n == 0) {
    fprintf(stderr, "tfxc calibrate: error: %s: no linear reads a named weight: nothing to calibrate\n", model);
    rc = EXIT_FAIL;
  }
  if (rc == 0 && tfx_calib_save(&cal, out, err, sizeof err)) {
    fprintf(stderr, "tfxc calibrate: error: %s\n", err);
    rc = EXIT_FAIL;
  }
  if (rc == 0)
    fprintf(stderr, "tfxc calibrate: %d linears over %d sequences (%lld tokens) -> %s\n", cal.n, ntok, (long long)total,
            out);
done:
  free(oc.h_of);
  free(oc.summed);
  free(logits);
  if (it) tfx_interp_free(it);
  tfx_calib_free(&cal);
  tfx_build_free(&b);
  free(tokens);
  return rc;
}
