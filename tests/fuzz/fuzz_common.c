/* tests/fuzz/fuzz_common.c — see fuzz_common.h. */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

FILE *tfx_fuzz_null_stream(void) {
  static FILE *null;
  if (!null) null = fopen("/dev/null", "w");
  return null;
}

const char *tfx_fuzz_write_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("tfx-fuzz", 0);
    if (fd < 0) return NULL;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0) return NULL;
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
    if (k <= 0) return NULL;
    done += (size_t)k;
  }
  return path;
}

tfx_graph *tfx_fuzz_graph(const char *source) {
  tfx_frontend_options o = {0};
  o.no_weights = 1;
  o.diag = stderr;
  tfx_graph *g = NULL;
  if (tfx_frontend_compile("fixed.tfx", source, &o, &g, NULL) != 0 || !g) {
    fprintf(stderr, "fuzz: the fixed graph does not compile\n");
    abort();
  }
  return g;
}
