/* bench/bench.c — the C side of the benchmark (never built or run by the
 * tests). One measurement per process, printed as one JSON object on stdout:
 *
 *   bench blas  T N K THREADS REPS       OpenBLAS sgemm (T > 1) / sgemv (T = 1)
 *                                         computing y[T,N] = x[T,K] · W[N,K]^T
 *   bench gemm  MODEL.so T THREADS REPS  the same through a tfxc-compiled
 *                                         `linear(x, w)` model (tfx_forward_f32)
 *   bench model MODEL.so THREADS REPS PP TG
 *                                         llama-bench's ppPP (one call of PP
 *                                         tokens) and tgTG (TG one-token decodes
 *                                         from an empty cache), tokens/s; the
 *                                         session is reset before each; PP or
 *                                         TG 0 skips that test (for profiles)
 *   bench decode MODEL.so THREADS REPS KV TG
 *                                         one-token decodes at a long KV: the
 *                                         session is reset and prefilled with
 *                                         KV - TG tokens (not timed), then TG
 *                                         decodes (KV lengths KV-TG+1..KV) are
 *                                         timed; tokens/s
 *   bench batch MODEL.so THREADS REPS B TG
 *                                         batched decoding (tfx_batch_step):
 *                                         B sequences, each prefilled with one
 *                                         token, then TG steps of one token per
 *                                         sequence; aggregate tokens/s (B * TG
 *                                         per second of decode steps)
 *   bench triad THREADS REPS MIB          STREAM-like triad a = b + s·c (doubles,
 *                                         MIB MiB per array) and a read-only sum
 *   bench roofline MODEL.so THREADS REPS TG MIB
 *                                         pairs, REPS times: one triad and one
 *                                         read-only pass, then tgTG; every
 *                                         pair's figures (a machine whose
 *                                         bandwidth drifts from minute to
 *                                         minute is compared with itself)
 *
 * Every figure is the median of REPS repetitions after one warm-up; a
 * repetition of a short call loops it for at least MIN_REP_SECONDS. The
 * process measures one engine at one thread count, so OpenBLAS's spinning
 * workers never compete with tfxc's. */
#define _GNU_SOURCE
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tfx/tfx.h"

#define MIN_REP_SECONDS 0.25
#define MAX_REPS 101

void openblas_set_num_threads(int num_threads);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Deterministic values in [-1, 1). */
static void fill(float *p, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = (float)((double)(s >> 40) / (double)(1ull << 23) - 1.0);
  }
}

static void *xalloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    fprintf(stderr, "bench: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  memset(p, 0, bytes);
  return p;
}

static int parse_int(const char *s, int lo, int hi, const char *what) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "bench: bad %s '%s' (expected %d..%d)\n", what, s, lo, hi);
    exit(2);
  }
  return (int)v;
}

/* Times one repetition: calls fn(ctx) until MIN_REP_SECONDS have passed and
 * returns the seconds per call. */
typedef int (*call_fn)(void *ctx);
static double time_rep(call_fn fn, void *ctx) {
  int calls = 0;
  double t0 = now(), t;
  do {
    if (fn(ctx) != 0) return -1.0;
    calls++;
    t = now();
  } while (t - t0 < MIN_REP_SECONDS);
  return (t - t0) / calls;
}

static double median_per_call(call_fn fn, void *ctx, int reps) {
  double v[MAX_REPS];
  if (fn(ctx) != 0) return -1.0; /* warm-up */
  for (int r = 0; r < reps; r++) {
    v[r] = time_rep(fn, ctx);
    if (v[r] < 0) return -1.0;
  }
  return median(v, reps);
}

/* ---- OpenBLAS -------------------------------------------------------------- */
typedef struct {
  int T, N, K;
  float *x, *w, *y;
} blas_ctx;

static int blas_call(void *p) {
  blas_ctx *c = p;
  if (c->T == 1)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, c->N, c->K, 1.0f, c->w, c->K, c->x, 1, 0.0f, c->y, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->T, c->N, c->K, 1.0f, c->x, c->K, c->w, c->K, 0.0f, c->y,
                c->N);
  return 0;
}

static int cmd_blas(int argc, char **argv) {
  if (argc != 7) return 2;
  blas_ctx c;
  c.T = parse_int(argv[2], 1, 1 << 16, "T");
  c.N = parse_int(argv[3], 1, 1 << 20, "N");
  c.K = parse_int(argv[4], 1, 1 << 20, "K");
  int threads = parse_int(argv[5], 1, 256, "threads");
  int reps = parse_int(argv[6], 1, MAX_REPS, "reps");
  openblas_set_num_threads(threads);
  c.x = xalloc((size_t)c.T * c.K * sizeof(float));
  c.w = xalloc((size_t)c.N * c.K * sizeof(float));
  c.y = xalloc((size_t)c.T * c.N * sizeof(float));
  fill(c.x, (size_t)c.T * c.K, 1);
  fill(c.w, (size_t)c.N * c.K, 2);
  double s = median_per_call(blas_call, &c, reps);
  double flops = 2.0 * c.T * c.N * c.K;
  printf("{\"engine\":\"openblas\",\"T\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"reps\":%d,"
         "\"seconds\":%.9g,\"gflops\":%.6g}\n",
         c.T, c.N, c.K, threads, reps, s, flops / s * 1e-9);
  return 0;
}

/* ---- tfxc models ----------------------------------------------------------- */
static tfx_model *open_model(const char *path) {
  tfx_model *m = NULL;
  char err[512] = "";
  int rc = tfx_model_open_ex(path, &m, err, sizeof err);
  if (rc != TFX_OK) {
    fprintf(stderr, "bench: %s: %s (%s)\n", path, tfx_error_message(rc), err);
    exit(1);
  }
  return m;
}

static tfx_session *open_session(tfx_model *m, int threads) {
  tfx_session_options o = {threads};
  tfx_session *s = NULL;
  int rc = tfx_session_create(m, &o, &s);
  if (rc != TFX_OK) {
    fprintf(stderr, "bench: session: %s\n", tfx_error_message(rc));
    exit(1);
  }
  return s;
}

typedef struct {
  tfx_session *s;
  int T;
  float *x, *y;
} gemm_ctx;

static int gemm_call(void *p) {
  gemm_ctx *c = p;
  int rc = tfx_forward_f32(c->s, c->x, c->T, c->y);
  if (rc != TFX_OK) fprintf(stderr, "bench: tfx_forward_f32: %s\n", tfx_error_message(rc));
  return rc;
}

static int cmd_gemm(int argc, char **argv) {
  if (argc != 6) return 2;
  tfx_model *m = open_model(argv[2]);
  gemm_ctx c;
  c.T = parse_int(argv[3], 1, 1 << 16, "T");
  int threads = parse_int(argv[4], 1, 256, "threads");
  int reps = parse_int(argv[5], 1, MAX_REPS, "reps");
  const tfx_model_desc *d = tfx_model_descriptor(m);
  int K = (int)d->input_width, N = (int)d->output_width;
  c.s = open_session(m, threads);
  c.x = xalloc((size_t)c.T * K * sizeof(float));
  c.y = xalloc((size_t)c.T * N * sizeof(float));
  fill(c.x, (size_t)c.T * K, 1);
  double s = median_per_call(gemm_call, &c, reps);
  if (s < 0) return 1;
  double flops = 2.0 * c.T * N * K;
  printf("{\"engine\":\"tfxc\",\"T\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"reps\":%d,"
         "\"seconds\":%.9g,\"gflops\":%.6g}\n",
         c.T, N, K, threads, reps, s, flops / s * 1e-9);
  tfx_session_free(c.s);
  tfx_model_close(m);
  return 0;
}

/* The same token ids as bench/peers.py: (7919·i + 13) mod vocab, never BOS. */
static int32_t token_at(int i, int32_t vocab) {
  int32_t t = (int32_t)(((int64_t)7919 * i + 13) % vocab);
  return t == 1 ? 2 : t;
}

static int cmd_model(int argc, char **argv) {
  if (argc != 7) return 2;
  tfx_model *m = open_model(argv[2]);
  int threads = parse_int(argv[3], 1, 256, "threads");
  int reps = parse_int(argv[4], 1, MAX_REPS, "reps");
  int pp = parse_int(argv[5], 0, 1 << 20, "pp"); /* 0: skip (for profiles) */
  int tg = parse_int(argv[6], 0, 1 << 20, "tg");
  if (pp + tg == 0) return 2;
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_session *s = open_session(m, threads);
  int32_t vocab = (int32_t)d->vocab;
  int32_t *toks = xalloc((size_t)(pp > tg ? pp : tg) * sizeof(int32_t));
  for (int i = 0; i < (pp > tg ? pp : tg); i++) toks[i] = token_at(i, vocab);
  float *logits = xalloc((size_t)d->output_width * sizeof(float));
  double vpp[MAX_REPS], vtg[MAX_REPS];
  /* A repetition runs ppPP (then tgTG) from an empty cache as many times as
   * fit in MIN_REP_SECONDS (at least once) and counts tokens per second. */
  for (int r = -1; r < reps; r++) { /* r = -1 is the warm-up */
    int rc = TFX_OK, n_pp = 0, n_tg = 0;
    double t0 = now(), t1;
    do {
      tfx_session_reset(s);
      if (pp) rc = tfx_forward_ex(s, toks, pp, logits, 1);
      n_pp++;
      t1 = now();
    } while (pp && rc == TFX_OK && t1 - t0 < MIN_REP_SECONDS);
    double t2;
    do {
      tfx_session_reset(s);
      for (int i = 0; i < tg && rc == TFX_OK; i++) rc = tfx_forward(s, &toks[i], 1, logits);
      n_tg++;
      t2 = now();
    } while (tg && rc == TFX_OK && t2 - t1 < MIN_REP_SECONDS);
    if (rc != TFX_OK) {
      fprintf(stderr, "bench: tfx_forward: %s\n", tfx_error_message(rc));
      return 1;
    }
    if (r >= 0) {
      vpp[r] = pp ? (double)pp * n_pp / (t1 - t0) : 0.0;
      vtg[r] = tg ? (double)tg * n_tg / (t2 - t1) : 0.0;
    }
  }
  printf("{\"engine\":\"tfxc\",\"threads\":%d,\"reps\":%d,\"pp\":%d,\"tg\":%d,"
         "\"pp_tps\":%.6g,\"tg_tps\":%.6g}\n",
         threads, reps, pp, tg, median(vpp, reps), median(vtg, reps));
  tfx_session_free(s);
  tfx_model_close(m);
  return 0;
}

static int cmd_decode(int argc, char **argv) {
  if (argc != 7) return 2;
  tfx_model *m = open_model(argv[2]);
  int threads = parse_int(argv[3], 1, 256, "threads");
  int reps = parse_int(argv[4], 1, MAX_REPS, "reps");
  int kv = parse_int(argv[5], 2, 1 << 20, "kv");
  int tg = parse_int(argv[6], 1, kv - 1, "tg");
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_session *s = open_session(m, threads);
  int32_t *toks = xalloc((size_t)kv * sizeof(int32_t));
  for (int i = 0; i < kv; i++) toks[i] = token_at(i, (int32_t)d->vocab);
  float *logits = xalloc((size_t)kv * (size_t)d->output_width * sizeof(float));
  double v[MAX_REPS];
  for (int r = -1; r < reps; r++) { /* r = -1 is the warm-up */
    int rc = TFX_OK, n = 0;
    double spent = 0;
    do {
      tfx_session_reset(s);
      rc = tfx_forward_ex(s, toks, kv - tg, logits, 1);
      double t0 = now();
      for (int i = kv - tg; i < kv && rc == TFX_OK; i++) rc = tfx_forward(s, &toks[i], 1, logits);
      spent += now() - t0;
      n++;
    } while (rc == TFX_OK && spent < MIN_REP_SECONDS);
    if (rc != TFX_OK) {
      fprintf(stderr, "bench: tfx_forward: %s\n", tfx_error_message(rc));
      return 1;
    }
    if (r >= 0) v[r] = (double)tg * n / spent;
  }
  printf("{\"engine\":\"tfxc\",\"threads\":%d,\"reps\":%d,\"kv\":%d,\"tg\":%d,\"tg_tps\":%.6g}\n", threads, reps, kv,
         tg, median(v, reps));
  free(toks);
  free(logits);
  tfx_session_free(s);
  tfx_model_close(m);
  return 0;
}

static int cmd_batch(int argc, char **argv) {
  if (argc != 7) return 2;
  tfx_model *m = open_model(argv[2]);
  int threads = parse_int(argv[3], 1, 256, "threads");
  int reps = parse_int(argv[4], 1, MAX_REPS, "reps");
  int nb = parse_int(argv[5], 1, 4096, "batch");
  int tg = parse_int(argv[6], 1, 1 << 20, "tg");
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_batch_options o = {threads, nb, 0, nb};
  tfx_batch *b = NULL;
  int rc = tfx_batch_create(m, &o, &b);
  if (rc != TFX_OK) {
    fprintf(stderr, "bench: tfx_batch_create: %s\n", tfx_error_message(rc));
    return 1;
  }
  int32_t *seqs = xalloc((size_t)nb * sizeof(int32_t)), *ones = xalloc((size_t)nb * sizeof(int32_t));
  int32_t *toks = xalloc((size_t)nb * sizeof(int32_t));
  float *logits = xalloc((size_t)nb * (size_t)d->output_width * sizeof(float));
  for (int i = 0; i < nb; i++) ones[i] = 1;
  double v[MAX_REPS];
  for (int r = -1; r < reps; r++) { /* r = -1 is the warm-up */
    int n_rounds = 0;
    double spent = 0;
    do {
      for (int i = 0; i < nb; i++) {
        if (tfx_batch_add(b, &seqs[i]) != TFX_OK) return 1;
        toks[i] = token_at(i, d->vocab);
      }
      rc = tfx_batch_step(b, nb, seqs, ones, toks, logits, NULL); /* the one-token prompts */
      double t0 = now();
      for (int k = 0; k < tg && rc == TFX_OK; k++) {
        for (int i = 0; i < nb; i++) toks[i] = token_at(k * nb + i + 1, d->vocab);
        rc = tfx_batch_step(b, nb, seqs, ones, toks, logits, NULL);
      }
      spent += now() - t0;
      for (int i = 0; i < nb; i++) tfx_batch_remove(b, seqs[i]);
      n_rounds++;
    } while (rc == TFX_OK && spent < MIN_REP_SECONDS);
    if (rc != TFX_OK) {
      fprintf(stderr, "bench: tfx_batch_step: %s (%s)\n", tfx_error_message(rc), tfx_batch_last_error(b));
      return 1;
    }
    if (r >= 0) v[r] = (double)nb * tg * n_rounds / spent;
  }
  printf("{\"engine\":\"tfxc\",\"threads\":%d,\"reps\":%d,\"batch\":%d,\"tg\":%d,\"tg_tps\":%.6g}\n", threads, reps, nb,
         tg, median(v, reps));
  tfx_batch_free(b);
  tfx_model_close(m);
  return 0;
}

/* ---- memory bandwidth -------------------------------------------------------- */
typedef double v8d __attribute__((vector_size(64)));

typedef struct {
  double *a, *b, *c;
  size_t lo, hi; /* in doubles, multiples of 32 */
  int op;        /* 0 triad, 1 read-only sum */
  double sum;
  pthread_barrier_t *bar;
  int reps;
  double *times; /* written by thread 0 */
} bw_arg;

static void bw_once(bw_arg *w) {
  if (w->op == 0) {
    const double s = 3.0;
    for (size_t i = w->lo; i < w->hi; i++) w->a[i] = w->b[i] + s * w->c[i];
  } else {
    v8d s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    const v8d *p = (const v8d *)(w->b + w->lo);
    size_t n = (w->hi - w->lo) / 8;
    for (size_t i = 0; i < n; i += 4) {
      s0 += p[i];
      s1 += p[i + 1];
      s2 += p[i + 2];
      s3 += p[i + 3];
    }
    v8d t = s0 + s1 + s2 + s3;
    for (int k = 0; k < 8; k++) w->sum += t[k];
  }
}

static void *bw_thread(void *p) {
  bw_arg *w = p;
  for (int r = -1; r < w->reps; r++) {
    pthread_barrier_wait(w->bar);
    double t0 = now();
    bw_once(w);
    pthread_barrier_wait(w->bar);
    if (w->times && r >= 0) w->times[r] = now() - t0;
  }
  return NULL;
}

static double bw_run(int op, int threads, int reps, double *a, double *b, double *c, size_t n, double *sum) {
  pthread_t tid[256];
  bw_arg args[256];
  double times[MAX_REPS];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)threads);
  size_t per = (n / threads) & ~(size_t)31;
  for (int t = 0; t < threads; t++) {
    args[t] =
        (bw_arg){a, b, c, per * t, t == threads - 1 ? n : per * (t + 1), op, 0.0, &bar, reps, t == 0 ? times : NULL};
    if (t > 0) pthread_create(&tid[t], NULL, bw_thread, &args[t]);
  }
  bw_thread(&args[0]);
  for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
  pthread_barrier_destroy(&bar);
  for (int t = 0; t < threads; t++) *sum += args[t].sum;
  return median(times, reps);
}

/* bytes in memory placed as the runtime places a large model's weights
 * (runtime/weights_pages.c): 2 MiB-aligned, advised to 2 MiB pages, so that
 * the roofline is the machine's bandwidth over the same pages, not over
 * 4 KiB ones (a few % lower); posix_memalign where that fails. */
static void *huge_alloc(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  size_t len = (bytes + huge - 1) & ~(huge - 1);
  char *base = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return xalloc(bytes);
  char *p = (char *)(((uintptr_t)base + huge - 1) & ~(uintptr_t)(huge - 1));
  madvise(p, len, MADV_HUGEPAGE);
  return p; /* the process exits without unmapping it */
}

/* The three arrays of MIB MiB each the bandwidth loops read and write (a
 * multiple of 32 doubles per thread), touched once; returns their length. */
static size_t bw_arrays(int mib, int threads, double **a, double **b, double **c) {
  size_t n = ((size_t)mib << 20) / sizeof(double);
  n &= ~(size_t)(32 * threads - 1);
  *a = huge_alloc(n * sizeof(double));
  *b = huge_alloc(n * sizeof(double));
  *c = huge_alloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    (*a)[i] = 0.0;
    (*b)[i] = 1.0;
    (*c)[i] = 2.0;
  }
  return n;
}

/* Decodes tg tokens from an empty cache as many times as fit in
 * MIN_REP_SECONDS (at least once); tokens/s, or a negative value on failure. */
static double tg_rate(tfx_session *s, const int32_t *toks, int tg, float *logits) {
  int n = 0, rc = TFX_OK;
  double t0 = now(), t1;
  do {
    tfx_session_reset(s);
    for (int i = 0; i < tg && rc == TFX_OK; i++) rc = tfx_forward(s, &toks[i], 1, logits);
    n++;
    t1 = now();
  } while (rc == TFX_OK && t1 - t0 < MIN_REP_SECONDS);
  if (rc != TFX_OK) {
    fprintf(stderr, "bench: tfx_forward: %s\n", tfx_error_message(rc));
    return -1.0;
  }
  return (double)tg * n / (t1 - t0);
}

static void print_array(const char *name, const double *v, int n) {
  printf(",\"%s\":[", name);
  for (int i = 0; i < n; i++) printf("%s%.6g", i ? "," : "", v[i]);
  printf("]");
}

static int cmd_roofline(int argc, char **argv) {
  if (argc != 7) return 2;
  tfx_model *m = open_model(argv[2]);
  int threads = parse_int(argv[3], 1, 256, "threads");
  int reps = parse_int(argv[4], 1, MAX_REPS, "reps");
  int tg = parse_int(argv[5], 1, 1 << 20, "tg");
  int mib = parse_int(argv[6], 1, 1 << 16, "MiB");
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_session *s = open_session(m, threads);
  int32_t *toks = xalloc((size_t)tg * sizeof(int32_t));
  for (int i = 0; i < tg; i++) toks[i] = token_at(i, (int32_t)d->vocab);
  float *logits = xalloc((size_t)d->output_width * sizeof(float));
  double *a, *b, *c;
  size_t n = bw_arrays(mib, threads, &a, &b, &c);
  double triad[MAX_REPS], readbw[MAX_REPS], tps[MAX_REPS], sum = 0.0;
  for (int r = -1; r < reps; r++) { /* r = -1 is the warm-up */
    double t_triad = bw_run(0, threads, 1, a, b, c, n, &sum);
    double t_read = bw_run(1, threads, 1, a, b, c, n, &sum);
    double rate = tg_rate(s, toks, tg, logits);
    if (rate < 0) return 1;
    if (r < 0) continue;
    triad[r] = 3.0 * n * sizeof(double) / t_triad * 1e-9;
    readbw[r] = n * sizeof(double) / t_read * 1e-9;
    tps[r] = rate;
  }
  printf("{\"engine\":\"tfxc\",\"threads\":%d,\"reps\":%d,\"tg\":%d,\"array_mib\":%d", threads, reps, tg, mib);
  print_array("tg_tps", tps, reps);
  print_array("triad_gbs", triad, reps);
  print_array("read_gbs", readbw, reps);
  printf(",\"check\":%.3g}\n", sum + a[n / 2]);
  tfx_session_free(s);
  tfx_model_close(m);
  return 0;
}

static int cmd_triad(int argc, char **argv) {
  if (argc != 5) return 2;
  int threads = parse_int(argv[2], 1, 256, "threads");
  int reps = parse_int(argv[3], 1, MAX_REPS, "reps");
  int mib = parse_int(argv[4], 1, 1 << 16, "MiB");
  double *a, *b, *c;
  size_t n = bw_arrays(mib, threads, &a, &b, &c);
  double sum = 0.0;
  double t_triad = bw_run(0, threads, reps, a, b, c, n, &sum);
  double t_read = bw_run(1, threads, reps, a, b, c, n, &sum);
  /* STREAM's convention: triad moves 3 arrays (2 read, 1 written; the
   * write-allocate read is not counted). */
  printf("{\"threads\":%d,\"reps\":%d,\"array_mib\":%d,\"triad_gbs\":%.6g,\"read_gbs\":%.6g,"
         "\"check\":%.3g}\n",
         threads, reps, mib, 3.0 * n * sizeof(double) / t_triad * 1e-9, n * sizeof(double) / t_read * 1e-9,
         sum + a[n / 2]);
  return 0;
}

int main(int argc, char **argv) {
  int rc = 2;
  if (argc >= 2 && !strcmp(argv[1], "blas"))
    rc = cmd_blas(argc, argv);
  else if (argc >= 2 && !strcmp(argv[1], "gemm"))
    rc = cmd_gemm(argc, argv);
  else if (argc >= 2 && !strcmp(argv[1], "decode"))
    rc = cmd_decode(argc, argv);
  else if (argc >= 2 && !strcmp(argv[1], "model"))
    rc = cmd_model(argc, argv);
  else if (argc >= 2 && !strcmp(argv[1], "batch"))
    rc = cmd_batch(argc, argv);
  else if (argc >= 2 && !strcmp(argv[1], "triad"))
    rc = cmd_triad(argc, argv);
  else if (argc >= 2 && !strcmp(argv[1], "roofline"))
    rc = cmd_roofline(argc, argv);
  if (rc == 2)
    fprintf(stderr, "usage: bench blas T N K THREADS REPS | gemm MODEL.so T THREADS REPS |\n"
                    "       model MODEL.so THREADS REPS PP TG | batch MODEL.so THREADS REPS B TG |\n"
                    "       decode MODEL.so THREADS REPS KV TG |\n"
                    "       triad THREADS REPS MIB |\n"
                    "       roofline MODEL.so THREADS REPS TG MIB\n");
  return rc;
}
