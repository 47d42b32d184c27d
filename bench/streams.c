/* bench/streams.c — throughput of the weight streams (backend/weight_stream.c)
 * per weight format on the stories110M shapes (never built or run by the
 * tests). The model is L blocks of two linears, x[768] -> w1[2048, 768] ->
 * w2[768, 2048] (+ the residual), then the classifier [32000, 768]: the
 * decode GEMVs of stories110M's FFN and classifier, whose weights (~250 MB
 * in f32) stream from memory. Each format's weights are tfx_quantize_row of
 * the same random f32 rows; block formats run with f32 activations
 * (schedule.act_f32: the dequantizing path). Printed per format: decode
 * (one row) time per call and weight GB/s, and prefill of PP rows in rows/s.
 *
 * Build (after the main build in build/):
 *   cc -O2 -Iinclude -Iir bench/streams.c -o build/bench_streams build/libtfx_compiler.a \
 *      build/libtfx_passes.a build/libtfx_backend.a build/libtfx_ir.a build/libtfxrt.a \
 *      /usr/lib/llvm-19/lib/libLLVM.so.1 -lffi -ldl -lm -lpthread -Wl,-rpath,/usr/lib/llvm-19/lib
 * Run: build/bench_streams [THREADS] [L] [PP] [fmt ...] (default 2 12 128: f32 f16 bf16 q8_0 q4_0);
 * STREAMS_EMIT_ASM=DIR also writes each format's assembly to DIR/FORMAT.s. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backend/backend.h"
#include "../passes/passes.h"
#include "tfx/tfx.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct {
  tfx_graph *g;
  uint8_t *blob;
  size_t size, cap;
} model;

static void reserve(model *m, size_t need) {
  if (need <= m->cap) return;
  size_t cap = m->cap ? m->cap : 1 << 20;
  while (cap < need) cap *= 2;
  void *p = NULL;
  if (posix_memalign(&p, 64, cap)) abort();
  if (m->size) memcpy(p, m->blob, m->size);
  free(m->blob);
  m->blob = p;
  m->cap = cap;
}

static int weight(model *m, tfx_dtype dt, const char *name, int64_t N, int64_t K) {
  tfx_type ty = tfx_type_make(dt, 2, (int64_t[]){N, K});
  int id = tfx_graph_add_param(m->g, name, ty);
  int64_t bytes = tfx_type_bytes(&ty, 1), rb = bytes / N;
  size_t off = (m->size + 63) / 64 * 64;
  reserve(m, off + (size_t)bytes);
  float *x = malloc((size_t)K * 4);
  float sc = 1.0f / (float)K;
  for (int64_t r = 0; r < N; r++) {
    for (int64_t k = 0; k < K; k++) x[k] = sc * urand();
    if (dt == TFX_DT_F32)
      memcpy(m->blob + off + r * rb, x, (size_t)K * 4);
    else if (tfx_quantize_row(dt, x, K, m->blob + off + r * rb) < 0) {
      fprintf(stderr, "no quantizer for %s\n", tfx_dtype_name(dt));
      exit(1);
    }
  }
  free(x);
  m->g->nodes[id].weight_offset = (int64_t)off;
  m->size = off + (size_t)bytes;
  m->g->weights_bytes = (int64_t)m->size;
  return id;
}

static int add(model *m, tfx_op op, int a, int b) {
  tfx_node n = tfx_node_proto(op, 2, (int[]){a, b});
  char err[256];
  int id = tfx_graph_add(m->g, &n, err, sizeof err);
  if (id < 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return id;
}

static void release_jit(void *p) { tfx_backend_jit_free(p); }

static double time_calls(tfx_session *s, const float *x, int T, float *out, double min_s) {
  tfx_forward_f32(s, x, T, out); /* warm-up */
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    int n = 0;
    double t0 = now(), t1;
    do {
      tfx_forward_f32(s, x, T, out);
      n++;
      t1 = now();
    } while (t1 - t0 < min_s);
    double per = (t1 - t0) / n;
    if (per < best) best = per;
  }
  return best;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2, L = argc > 2 ? atoi(argv[2]) : 12, PP = argc > 3 ? atoi(argv[3]) : 128;
  const char *all[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
  const char **names = argc > 4 ? (const char **)argv + 4 : all;
  int nf = argc > 4 ? argc - 4 : 5;
  const int64_t D = 768, H = 2048, V = 32000;
  for (int f = 0; f < nf; f++) {
    tfx_dtype dt = TFX_DT_COUNT;
    for (int d = 0; d < TFX_DT_COUNT; d++)
      if (!strcmp(tfx_dtype_name((tfx_dtype)d), names[f])) dt = (tfx_dtype)d;
    if (dt == TFX_DT_COUNT) {
      fprintf(stderr, "unknown format %s\n", names[f]);
      return 1;
    }
    rng = 0x9e3779b97f4a7c15ull;
    model m = {tfx_graph_new("streams", PP), NULL, 0, 0};
    m.g->schedule.act_f32 = 1;
    int x = tfx_graph_add_input(m.g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, D}));
    for (int l = 0; l < L; l++) {
      char n1[32], n2[32];
      snprintf(n1, sizeof n1, "l%d.w1", l);
      snprintf(n2, sizeof n2, "l%d.w2", l);
      int h = add(&m, TFX_OP_LINEAR, x, weight(&m, dt, n1, H, D));
      x = add(&m, TFX_OP_ADD, x, add(&m, TFX_OP_LINEAR, h, weight(&m, dt, n2, D, H)));
    }
    m.g->output = add(&m, TFX_OP_LINEAR, x, weight(&m, dt, "cls", V, D));
    int64_t wbytes = (int64_t)m.size;
    tfx_pass_options po;
    tfx_pass_options_init(&po, 2);
    tfx_target_options to = {.opt_level = 2};
    char err[512];
    if (tfx_backend_pack_layout(&to, &po.pack, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
    po.weights = &m.blob;
    po.weights_size = &m.size;
    if (tfx_run_passes(m.g, &po, err, sizeof err)) return fprintf(stderr, "passes: %s\n", err), 1;
    const char *emit = getenv("STREAMS_EMIT_ASM"); /* a directory: FORMAT.s, the module's assembly */
    if (emit) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s.s", emit, names[f]);
      FILE *fa = fopen(path, "w");
      if (!fa || tfx_backend_emit_text(m.g, &to, TFX_EMIT_ASM, fa, err, sizeof err))
        return fprintf(stderr, "%s\n", err), 1;
      fclose(fa);
    }
    tfx_jit_module *jm = NULL;
    const tfx_model_desc *desc = NULL;
    if (tfx_backend_jit(m.g, &to, &jm, &desc, err, sizeof err)) return fprintf(stderr, "JIT: %s\n", err), 1;
    tfx_model *mod = NULL;
    if (tfx_model_from_descriptor(desc, m.blob, release_jit, jm, &mod) != TFX_OK) return 1;
    tfx_session *s = NULL;
    tfx_session_options so = {.threads = threads};
    if (tfx_session_create(mod, &so, &s) != TFX_OK) return 1;
    float *xin = malloc((size_t)PP * D * 4), *out = malloc((size_t)PP * V * 4);
    for (int64_t i = 0; i < PP * D; i++) xin[i] = urand();
    double tg = time_calls(s, xin, 1, out, 0.5), pp = time_calls(s, xin, PP, out, 1.0);
    printf("{\"format\": \"%s\", \"threads\": %d, \"weight_mb\": %.1f, \"decode_ms\": %.3f, \"decode_gbs\": %.1f, "
           "\"pp%d_rows_s\": %.1f}\n",
           names[f], threads, wbytes / 1e6, tg * 1e3, wbytes / tg / 1e9, PP, PP / pp);
    fflush(stdout);
    free(xin);
    free(out);
    tfx_session_free(s);
    tfx_model_close(mod);
    tfx_graph_free(m.g);
    free(m.blob);
  }
  return 0;
}
