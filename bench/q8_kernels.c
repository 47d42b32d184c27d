/* bench/q8_kernels.c — the kernel rows of the int8 linears (issue #11): one
 * LINEAR y = x @ w^T JIT-compiled per weight format (f32, q8_0, q4_0, q4_k,
 * q6_k, q3_k) for the stories110M shapes (K = 768 -> N = 768, 2048, 32000;
 * K = 2048 -> N = 768), timed at M = 1 (GEMV: GB/s of weight bytes) and
 * M = 128 (GEMM: GFLOP/s), 1 and 2 threads, medians of repeated calls, with
 * each format's speedup over f32 (time ratio) measured in the same run. Built by CMake as
 * bench_q8 (not part of `all`): cmake --build build --target bench_q8;
 * ./build/bench_q8 [REPS] [cpu|wall] [KxN,KxN..] [FMT,FMT..] (cpu: one thread, timed by its CPU time;
 * the shapes replace stories110M's, e.g. 64x512 for stories260K's classifier;
 * the formats replace the list above after f32, e.g. q8_0,s24_q8_0 for the 2:4
 * int8 kernel against dense q8_0; "-" keeps the default shapes) [CPU] (compile for
 * an LLVM CPU such as haswell, as tfxc --mcpu; default the host). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backend/backend.h"
#include "../passes/passes.h"
#include "tfx/tfx.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cpu_clock;
static const char *target_cpu;
    /* argv[5]: NULL for the host */ /* "cpu": the calling thread's CPU time (1 thread only) */

static double now(void) {
  struct timespec ts;
  clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void release(void *m) { tfx_backend_jit_free(m); }

/* seconds per call (median of reps) of a LINEAR [N, K] in format dt on M rows */
static double time_linear(tfx_dtype dt, int64_t K, int64_t N, int M, int threads, int reps, int64_t *wbytes) {
  tfx_graph *g = tfx_graph_new("q8bench", 128);
  int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, K}));
  tfx_type ty = tfx_type_make(dt, 2, (int64_t[]){N, K});
  int w = tfx_graph_add_param(g, "w", ty);
  int64_t bytes = tfx_type_bytes(&ty, 1), rb = bytes / N;
  uint8_t *blob = NULL;
  if (posix_memalign((void **)&blob, 64, (size_t)bytes + 64)) return -1;
  float *row = malloc((size_t)K * sizeof *row);
  for (int64_t r = 0; r < N; r++) {
    for (int64_t k = 0; k < K; k++) row[k] = 0.1f * frand();
    if (dt == TFX_DT_F32)
      memcpy(blob + r * rb, row, (size_t)rb);
    else if (tfx_quantize_supported(dt))
      tfx_quantize_row(dt, row, K, blob + r * rb);
    else
      for (int64_t i = 0; i < rb; i++) blob[r * rb + i] = (uint8_t)(frand() * 127.0f); /* (scales: any) */
  }
  free(row);
  g->nodes[w].weight_offset = 0;
  g->weights_bytes = bytes;
  tfx_node n = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){x, w});
  char err[512];
  g->output = tfx_graph_add(g, &n, err, sizeof err);
  *wbytes = bytes;
  tfx_pass_options po;
  tfx_pass_options_init(&po, 2);
  po.weights = &blob;
  size_t bsz = (size_t)bytes;
  po.weights_size = &bsz;
  if (g->output < 0 || tfx_run_passes(g, &po, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  tfx_target_options o = {.opt_level = 2, .cpu = target_cpu};
  tfx_jit_module *jm = NULL;
  const tfx_model_desc *desc = NULL;
  if (tfx_backend_jit(g, &o, &jm, &desc, err, sizeof err)) {
    fprintf(stderr, "jit: %s\n", err);
    return -1;
  }
  tfx_model *m = NULL;
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = threads};
  if (tfx_model_from_descriptor(desc, blob, release, jm, &m) || tfx_session_create(m, &so, &s)) return -1;
  float *xin = malloc((size_t)(M * K) * sizeof *xin), *y = malloc((size_t)M * (size_t)N * sizeof *y);
  for (int64_t i = 0; i < M * K; i++) xin[i] = frand();
  double *t = malloc((size_t)reps * sizeof *t);
  for (int i = 0; i < 3; i++) tfx_forward_f32(s, xin, M, y);
  for (int i = 0; i < reps; i++) {
    double t0 = now();
    tfx_forward_f32(s, xin, M, y);
    t[i] = now() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp);
  double med = t[reps / 2];
  free(t);
  free(xin);
  free(y);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_graph_free(g);
  free(blob);
  return med;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 50;
  /* argv[2] = "cpu": one thread, timed by its CPU time (a loaded machine
   * takes the core away, not the cycles: steadier than wall-clock time) */
  cpu_clock = argc > 2 && !strcmp(argv[2], "cpu");
  target_cpu = argc > 5 ? argv[5] : NULL;
  /* argv[3]: the shapes as K x N, comma-separated (e.g. 64x512,128x512), else stories110M's */
  int64_t shapes[16][2] = {{768, 768}, {768, 2048}, {768, 32000}, {2048, 768}};
  int nsh = 4;
  if (argc > 3 && strcmp(argv[3], "-")) {
    nsh = 0;
    for (const char *q = argv[3]; *q;) {
      long long k = 0, n = 0;
      int used = 0;
      if (nsh == 16 || sscanf(q, "%lldx%lld%n", &k, &n, &used) != 2 || k <= 0 || n <= 0) {
        fprintf(stderr, "bench_q8: bad shapes '%s' (K x N, comma-separated, at most 16)\n", argv[3]);
        return 2;
      }
      shapes[nsh][0] = k, shapes[nsh][1] = n, nsh++;
      q += used;
      if (*q == ',') q++;
    }
  }
  tfx_dtype fmts[16] = {TFX_DT_F32, TFX_DT_Q8_0, TFX_DT_Q4_0, TFX_DT_Q4_K, TFX_DT_Q6_K, TFX_DT_Q3_K};
  int nf = 6;
  if (argc > 4) { /* argv[4]: the formats after f32, by name, comma-separated */
    nf = 1;
    char names[256];
    snprintf(names, sizeof names, "%s", argv[4]);
    for (char *save = NULL, *tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      int found = -1;
      for (int d = 0; d < TFX_DT_COUNT && found < 0; d++)
        if (tfx_dtype_info_of((tfx_dtype)d) && !strcmp(tfx_dtype_name((tfx_dtype)d), tok)) found = d;
      if (found < 0 || nf == 16) {
        fprintf(stderr, "bench_q8: unknown format '%s' (or more than 15)\n", tok);
        return 2;
      }
      fmts[nf++] = (tfx_dtype)found;
    }
  }
  printf("%-6s %-12s %3s %10s %8s %10s %8s\n", "format", "K->N", "thr", "GEMV GB/s", "speedup", "GEMM GF/s", "speedup");
  for (int sh = 0; sh < nsh; sh++)
    for (int th = 1; th <= (cpu_clock ? 1 : 2); th++) {
      double f32_t1 = 0, f32_tm = 0;
      for (int f = 0; f < nf; f++) {
        int64_t K = shapes[sh][0], N = shapes[sh][1], wb = 0;
        if (K % tfx_dtype_info_of(fmts[f])->block) continue; /* (a K-quant at K < 256) */
        double t1 = time_linear(fmts[f], K, N, 1, th, reps, &wb);
        double tm = time_linear(fmts[f], K, N, 128, th, reps / 5 + 3, &wb);
        if (t1 < 0 || tm < 0) return 1;
        double gbs = (double)wb / t1 * 1e-9, gf = 2.0 * 128 * (double)K * (double)N / tm * 1e-9;
        if (f == 0) f32_t1 = t1, f32_tm = tm;
        char shape[32];
        snprintf(shape, sizeof shape, "%lld->%lld", (long long)K, (long long)N);
        printf("%-6s %-12s %3d %10.1f %8.2f %10.1f %8.2f\n", tfx_dtype_name(fmts[f]), shape, th, gbs, f32_t1 / t1, gf,
               f32_tm / tm);
        fflush(stdout);
      }
    }
  return 0;
}
