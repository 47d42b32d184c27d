/* runtime/threadpool.c — a session's persistent thread pool, the
 * implementation of tfx_exec.parallel_for. Workers are created once per
 * session and joined when it is freed. A fork publishes the job and bumps a
 * generation counter; workers spin briefly on it, then sleep on a condition
 * variable, so the fork/join between consecutive kernels costs microseconds.
 * [0, n) is cut into one contiguous range per thread, which the thread
 * takes in chunks of a grain (about a quarter of its range) from the
 * range's atomic counter, in order: each thread's items, and so the weight
 * rows a decode kernel streams, stay one run through memory (a chunk's
 * software prefetch reaches into the thread's next chunk). A thread whose
 * range is done takes the chunks left in the others' ranges, so a thread
 * that is descheduled or slowed (a shared machine, memory contention) takes
 * fewer chunks instead of holding up the join, and a worker that wakes late
 * finds the work done. Results do not depend on the split: a kernel's items
 * write disjoint outputs, each computed entirely by one call. The calling
 * thread takes chunks too. */
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

/* Iterations a waiting thread spins before it sleeps (a pause each). */
#define TFX_RT_SPIN 4000

/* Every this many spins a waiting thread yields its core, so a pool with
 * more threads than free cores still makes progress. */
#define TFX_RT_YIELD_EVERY 64

/* Chunks a thread's range is cut into (the grain is n / (threads * this)).
 * TinyLlama-1.1B's q4_0 decode, 2 threads, mean job: with one atomic
 * counter over [0, n) (chunks taken alternately by the threads) 170 us at
 * 4 chunks per thread, 163 at 1, 176 at 8; with the ranges 166.6-166.8 at
 * 4, 166-168 at 2, 163-165 at 1. One chunk per thread cannot rebalance
 * items of uneven cost (a causal attention's), so 4. */
#define TFX_RT_CHUNKS_PER_THREAD 4

/* One step of a spin-wait: a pause, and now and then a sched_yield. */
static inline void spin_step(int spin) {
  if (spin % TFX_RT_YIELD_EVERY == TFX_RT_YIELD_EVERY - 1) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

/* One thread's range of the current job: its next item and its end. */
typedef struct tfx_rt_range {
  alignas(64) _Atomic int64_t next;
  int64_t end;
} tfx_rt_range;

typedef struct tfx_rt_worker {
  tfx_rt_pool *pool;
  int32_t index; /* 1 .. threads-1; the caller is thread 0 */
} tfx_rt_worker;

struct tfx_rt_pool {
  /* the job, written by the caller before it bumps the generation */
  tfx_kernel_fn fn;
  const void *args;
  int64_t grain;  /* items per chunk */
  int32_t active; /* threads that take chunks: min(threads, n) */
  int32_t threads;
  int32_t n_workers; /* workers started */
  atomic_bool stop;
  atomic_flag busy; /* set while a parallel_for runs (re-entrant calls run serially) */
  pthread_t *tids;
  tfx_rt_worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t work_cv;
  pthread_cond_t done_cv;
  alignas(64) _Atomic uint64_t generation;
  atomic_int sleepers;
  alignas(64) atomic_int remaining; /* workers that have not finished the current job */
  atomic_int caller_waiting;
  tfx_rt_range range[TFX_RT_MAX_THREADS]; /* [0, active): the threads' ranges, in order */
};

/* Takes chunks of range r of the current job until it is done. */
static void take_range(tfx_rt_pool *p, tfx_rt_range *r) {
  int64_t end = r->end, grain = p->grain;
  for (;;) {
    int64_t b = atomic_fetch_add_explicit(&r->next, grain, memory_order_relaxed);
    if (b >= end) return;
    p->fn(p->args, b, b + grain < end ? b + grain : end);
  }
}

/* Thread self's range, then what is left of the others' (the following
 * ones first, so two idle threads seldom take from the same range). */
static void take_chunks(tfx_rt_pool *p, int32_t self) {
  for (int32_t i = 0; i < p->active; i++) take_range(p, &p->range[(self + i) % p->active]);
}

static void *worker_main(void *arg) {
  tfx_rt_worker *w = arg;
  tfx_rt_pool *p = w->pool;
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = 0;
    int got = 0;
    for (int spin = 0; spin < TFX_RT_SPIN; spin++) {
      g = atomic_load_explicit(&p->generation, memory_order_acquire);
      if (g != seen) {
        got = 1;
        break;
      }
      spin_step(spin);
    }
    if (!got) {
      pthread_mutex_lock(&p->mu);
      atomic_fetch_add(&p->sleepers, 1);
      while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->work_cv, &p->mu);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->mu);
    }
    seen = g;
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
    if (w->index < p->active) take_chunks(p, w->index);
    if (atomic_fetch_sub(&p->remaining, 1) == 1 && atomic_load(&p->caller_waiting)) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done_cv);
      pthread_mutex_unlock(&p->mu);
    }
  }
  return NULL;
}

/* Publishes the job fields already written: bumps the generation and wakes
 * sleeping workers. */
static void publish(tfx_rt_pool *p) {
  atomic_store(&p->remaining, p->n_workers);
  atomic_fetch_add(&p->generation, 1);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
  }
}

static void wait_done(tfx_rt_pool *p) {
  for (int spin = 0; spin < TFX_RT_SPIN; spin++) {
    if (atomic_load_explicit(&p->remaining, memory_order_acquire) == 0) return;
    spin_step(spin);
  }
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->caller_waiting, 1);
  while (atomic_load(&p->remaining) != 0) pthread_cond_wait(&p->done_cv, &p->mu);
  atomic_store(&p->caller_waiting, 0);
  pthread_mutex_unlock(&p->mu);
}

static void stop_workers(tfx_rt_pool *p) {
  if (p->n_workers == 0) return;
  atomic_store(&p->stop, 1);
  p->fn = NULL;
  p->active = 0;
  publish(p);
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->work_cv);
  pthread_mutex_unlock(&p->mu);
  for (int32_t i = 0; i < p->n_workers; i++) pthread_join(p->tids[i], NULL);
  p->n_workers = 0;
}

tfx_rt_pool *tfx_rt_pool_create(int32_t threads) {
  if (threads < 1) threads = 1;
  if (threads > TFX_RT_MAX_THREADS) threads = TFX_RT_MAX_THREADS;
  size_t size = (sizeof(tfx_rt_pool) + 63) & ~(size_t)63;
  tfx_rt_pool *p = aligned_alloc(64, size);
  if (!p) return NULL;
  memset(p, 0, sizeof *p);
  p->threads = threads;
  atomic_init(&p->stop, 0);
  atomic_flag_clear(&p->busy);
  atomic_init(&p->generation, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->remaining, 0);
  atomic_init(&p->caller_waiting, 0);
  for (int32_t i = 0; i < TFX_RT_MAX_THREADS; i++) atomic_init(&p->range[i].next, 0);
  if (pthread_mutex_init(&p->mu, NULL) != 0) goto fail_mu;
  if (pthread_cond_init(&p->work_cv, NULL) != 0) goto fail_work;
  if (pthread_cond_init(&p->done_cv, NULL) != 0) goto fail_done;
  if (threads > 1) {
    p->tids = calloc((size_t)threads - 1, sizeof *p->tids);
    p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
    if (!p->tids || !p->workers) goto fail_threads;
    for (int32_t i = 0; i < threads - 1; i++) {
      p->workers[i].pool = p;
      p->workers[i].index = i + 1;
      if (pthread_create(&p->tids[i], NULL, worker_main, &p->workers[i]) != 0) goto fail_threads;
      p->n_workers++;
    }
  }
  return p;
fail_threads:
  stop_workers(p);
  free(p->tids);
  free(p->workers);
  pthread_cond_destroy(&p->done_cv);
fail_done:
  pthread_cond_destroy(&p->work_cv);
fail_work:
  pthread_mutex_destroy(&p->mu);
fail_mu:
  free(p);
  return NULL;
}

void tfx_rt_pool_destroy(tfx_rt_pool *p) {
  if (!p) return;
  stop_workers(p);
  free(p->tids);
  free(p->workers);
  pthread_cond_destroy(&p->done_cv);
  pthread_cond_destroy(&p->work_cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

void tfx_rt_pool_parallel_for(tfx_exec *self, tfx_kernel_fn fn, const void *args, int64_t n_items) {
  if (!self || !fn || n_items <= 0) return;
  tfx_rt_pool *p = self->impl;
  if (!p || p->n_workers == 0 || n_items == 1) {
    fn(args, 0, n_items);
    return;
  }
  /* A nested or concurrent call on the same pool cannot wait for busy
   * workers without deadlocking: it runs on the calling thread. */
  if (atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire)) {
    fn(args, 0, n_items);
    return;
  }
  int32_t active = p->n_workers + 1;
  if (n_items < active) active = (int32_t)n_items;
  int64_t grain = n_items / ((int64_t)active * TFX_RT_CHUNKS_PER_THREAD);
  p->fn = fn;
  p->args = args;
  p->grain = grain > 1 ? grain : 1;
  p->active = active;
  for (int32_t t = 0; t < active; t++) {
    atomic_store_explicit(&p->range[t].next, n_items * t / active, memory_order_relaxed);
    p->range[t].end = n_items * (t + 1) / active;
  }
  publish(p); /* its release orders the job fields and ranges before the workers' acquire */
  take_chunks(p, 0);
  wait_done(p);
  atomic_flag_clear_explicit(&p->busy, memory_order_release);
}
