/* runtime/weights_pages.c — where a model's weights live in memory. Decoding
 * streams every weight once per token; over 4 KiB pages a large model's
 * stream misses the TLB every 4 KiB and loses 10-20% of the memory bandwidth
 * (docs/embedding.md, "Where the weights live"). So a model opened from a
 * .so, or linked into the program, gets its weights copied once into an
 * anonymous mapping advised to 2 MiB pages (transparent huge pages,
 * MADV_HUGEPAGE), read-only like the file's; the file's pages of the blob are
 * dropped from the process. Weights in the caller's memory (a JIT model's
 * blob) are collapsed into 2 MiB pages where they are (MADV_COLLAPSE), never
 * copied. The choice: TFX_HUGE_PAGES=0 never, =1 always, otherwise for
 * blobs of TFX_RT_HUGE_MIN_BYTES or more when the system has transparent
 * huge pages; TFX_OPEN_MAP_WEIGHTS keeps one .so's weights in its mapping.
 * Every failure leaves the weights where they were: this is a speed-up,
 * never an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; glibc 2.36's headers lack it */
#endif
#endif

#define HUGE_PAGE ((uintptr_t)2 << 20)
#define COPY_CHUNK ((uint64_t)32 << 20)

/* TFX_HUGE_PAGES: 0 never, 1 always, -1 (unset or anything else) automatic */
static int huge_pages_setting(void) {
  const char *env = getenv("TFX_HUGE_PAGES");
  if (env && !strcmp(env, "0")) return 0;
  if (env && !strcmp(env, "1")) return 1;
  return -1;
}

#if defined(__linux__) && defined(MADV_HUGEPAGE)
/* The system hands out transparent huge pages to memory advised to them
 * ("always" or "madvise" in sysfs; not "never", nor a kernel without them). */
static int system_has_huge_pages(void) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f) return 0;
  char buf[128];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n > 0 && strstr(buf, "[never]") == NULL;
}

/* The whole 2 MiB pages inside [p, p + n): their start and length (0: none). */
static size_t huge_interior(const void *p, uint64_t n, uintptr_t *lo) {
  uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t e = ((uintptr_t)p + (uintptr_t)n) & ~(HUGE_PAGE - 1);
  *lo = a;
  return e > a ? (size_t)(e - a) : 0;
}

/* A copy of the weights in an anonymous mapping aligned to 2 MiB and advised
 * to huge pages, then made read-only. The copy goes COPY_CHUNK bytes at a
 * time, each chunk's whole source pages dropped from the process after it
 * (they are the file's: a later read maps them again), so that the process
 * never holds both whole blobs. */
static int copy_to_huge_pages(tfx_model *m) {
  uint64_t bytes = m->desc.weights_bytes;
  size_t len = (size_t)((bytes + HUGE_PAGE - 1) & ~(uint64_t)(HUGE_PAGE - 1));
  size_t map = len + HUGE_PAGE; /* room to align the start */
  char *base = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return 0;
  char *p = (char *)(((uintptr_t)base + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
  if (p > base) munmap(base, (size_t)(p - base));
  if (p + len < base + map) munmap(p + len, (size_t)(base + map - (p + len)));
  if (madvise(p, len, MADV_HUGEPAGE) != 0) {
    munmap(p, len);
    return 0;
  }
  const char *src = m->desc.weights;
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t mask = page > 0 ? (uintptr_t)page - 1 : 0;
  uintptr_t dropped = ((uintptr_t)src + mask) & ~mask; /* source pages below this are dropped */
  for (uint64_t off = 0; off < bytes; off += COPY_CHUNK) {
    size_t n = (size_t)(bytes - off < COPY_CHUNK ? bytes - off : COPY_CHUNK);
    memcpy(p + off, src + off, n);
    uintptr_t done = ((uintptr_t)src + (uintptr_t)(off + n)) & ~mask;
    if (page > 0 && done > dropped) {
      madvise((void *)dropped, (size_t)(done - dropped), MADV_DONTNEED);
      dropped = done;
    }
  }
  mprotect(p, len, PROT_READ);
  m->weights_copy = p;
  m->weights_copy_bytes = len;
  m->desc.weights = p;
  m->weights_pages = TFX_WEIGHTS_HUGE_COPY;
  return 1;
}

/* The caller's memory, collapsed into huge pages where it is: its whole
 * 2 MiB pages (MADV_COLLAPSE copies them into huge pages, the contents
 * unchanged; anonymous memory only). */
static void collapse_in_place(tfx_model *m) {
  uintptr_t lo;
  size_t len = huge_interior(m->desc.weights, m->desc.weights_bytes, &lo);
  if (len > 0 && madvise((void *)lo, len, MADV_COLLAPSE) == 0) m->weights_pages = TFX_WEIGHTS_HUGE_IN_PLACE;
}
#endif

void tfx_rt_place_weights(tfx_model *m, int from_file) {
  m->weights_pages = TFX_WEIGHTS_IN_PLACE;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  int setting = huge_pages_setting();
  if (!m->desc.weights || m->desc.weights_bytes == 0 || setting == 0) return;
  if (setting < 0 && m->desc.weights_bytes < TFX_RT_HUGE_MIN_BYTES) return;
  if (!system_has_huge_pages()) return;
  if (from_file)
    copy_to_huge_pages(m);
  else
    collapse_in_place(m);
#else
  (void)from_file;
  (void)huge_pages_setting;
#endif
}

void tfx_rt_free_weights_copy(tfx_model *m) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (m->weights_copy) munmap(m->weights_copy, m->weights_copy_bytes);
#endif
  m->weights_copy = NULL;
  m->weights_copy_bytes = 0;
}
