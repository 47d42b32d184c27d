/* backend/runtime_path.c — where the runtime archive (libtfxrt.a) that a
 * model.so is linked with comes from: an explicit path (tfxc --runtime), else
 * $TFX_RUNTIME_ARCHIVE, else the archive beside the running program — the
 * installed layout, TFX_RUNTIME_FROM_BIN relative to the executable's folder
 * (/proc/self/exe), so a moved install prefix keeps working — and, for a
 * program inside the build tree (tfxc, the tests), the build's own archive.
 * No absolute path of the build is used outside the build tree. For another
 * machine (--target TRIPLE) the archive is TRIPLE/libtfxrt.a beside the
 * host's, or the build tree's runtime-TRIPLE/libtfxrt.a. `--runtime minimal`
 * is libtfxrt_min.a beside the archive found that way (a .so with the
 * static API only: no libffi, threads, malloc or dlopen). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

#ifndef TFX_RUNTIME_FROM_BIN
#define TFX_RUNTIME_FROM_BIN "../lib/libtfxrt.a"
#endif

/* path readable: 0; else -1 and "path (reason)" appended to tried */
static int try_path(const char *path, char *tried, size_t len) {
  if (access(path, R_OK) == 0) return 0;
  size_t used = strlen(tried);
  snprintf(tried + used, len - used, "%s%s (%s)", used ? ", " : "", path, strerror(errno));
  return -1;
}

/* the folder of the running executable (no trailing '/'); -1 when unknown */
static int exe_dir(char *buf, size_t len) {
  char exe[PATH_MAX];
  if (!realpath("/proc/self/exe", exe)) return -1;
  char *slash = strrchr(exe, '/');
  if (!slash || (size_t)(slash - exe) >= len) return -1;
  memcpy(buf, exe, (size_t)(slash - exe));
  buf[slash - exe] = 0;
  return 0;
}

/* dir is root, or inside root */
static int inside(const char *dir, const char *root) {
  char r[PATH_MAX];
  if (!root || !root[0] || !realpath(root, r)) return 0;
  size_t n = strlen(r);
  return strncmp(dir, r, n) == 0 && (dir[n] == 0 || dir[n] == '/');
}

static int found(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  if ((size_t)snprintf(out, outlen, "%s", path) >= outlen)
    return tfx_errf(err, errlen, "backend: the runtime archive's path is too long: %s", path);
  return 0;
}

/* Another machine's runtime archive: TRIPLE/libtfxrt.a beside the host's
 * (installed: lib/TRIPLE/libtfxrt.a), or the build tree's runtime-TRIPLE/
 * (tests/CMakeLists.txt builds it with cmake/toolchains/TRIPLE.cmake). */
static int find_cross(const char *triple, char *out, size_t outlen, char *err, size_t errlen) {
  char tried[4 * PATH_MAX + 64] = "", dir[PATH_MAX], cand[2 * PATH_MAX + 64];
  if (strchr(triple, '/') || strlen(triple) > 64)
    return tfx_errf(err, errlen, "backend: '%s' is not a target triple", triple);
  int have_dir = exe_dir(dir, sizeof dir) == 0;
  if (have_dir) {
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s", TFX_RUNTIME_FROM_BIN);
    char *slash = strrchr(rel, '/');
    if (slash) {
      *slash = 0;
      snprintf(cand, sizeof cand, "%s/%s/%s/%s", dir, rel, triple, slash + 1);
    } else {
      snprintf(cand, sizeof cand, "%s/%s/%s", dir, triple, rel);
    }
    if (try_path(cand, tried, sizeof tried) == 0) return found(cand, out, outlen, err, errlen);
  }
#if defined(TFX_BUILD_DIR)
  if (have_dir && inside(dir, TFX_BUILD_DIR)) {
    snprintf(cand, sizeof cand, "%s/runtime-%s/libtfxrt.a", TFX_BUILD_DIR, triple);
    if (try_path(cand, tried, sizeof tried) == 0) return found(cand, out, outlen, err, errlen);
  }
#endif
  return tfx_errf(err, errlen,
                  "backend: no runtime archive for %s to link the model with; tried: %s; build one with cmake "
                  "-DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/%s.cmake (docs/portability.md) and pass --runtime PATH",
                  triple, tried[0] ? tried : "nothing (the executable's folder is unknown)", triple);
}

int tfx_backend_find_runtime(const char *path, char *out, size_t outlen, char *err, size_t errlen) {
  return tfx_backend_find_runtime_for(path, NULL, out, outlen, err, errlen);
}

/* --runtime minimal: libtfxrt_min.a beside the archive found the usual way */
static int find_minimal(const char *triple, char *out, size_t outlen, char *err, size_t errlen) {
  char full[PATH_MAX + 64];
  if (tfx_backend_find_runtime_for(NULL, triple, full, sizeof full, err, errlen)) return -1;
  char *slash = strrchr(full, '/');
  size_t dir = slash ? (size_t)(slash - full) + 1 : 0;
  char cand[PATH_MAX + 96];
  snprintf(cand, sizeof cand, "%.*slibtfxrt_min.a", (int)dir, full);
  if (access(cand, R_OK))
    return tfx_errf(err, errlen, "backend: the minimal runtime %s (--runtime minimal) is not readable: %s", cand,
                    strerror(errno));
  return found(cand, out, outlen, err, errlen);
}

int tfx_backend_find_runtime_for(const char *path, const char *triple, char *out, size_t outlen, char *err,
                                 size_t errlen) {
  char tried[4 * PATH_MAX + 64] = "";
  if (path && !strcmp(path, "minimal")) return find_minimal(triple, out, outlen, err, errlen);
  if (path && path[0]) {
    if (access(path, R_OK))
      return tfx_errf(err, errlen, "backend: the runtime archive %s (--runtime) is not readable: %s", path,
                      strerror(errno));
    return found(path, out, outlen, err, errlen);
  }
  if (triple && triple[0]) return find_cross(triple, out, outlen, err, errlen);
  const char *env = getenv("TFX_RUNTIME_ARCHIVE");
  if (env && env[0]) {
    if (access(env, R_OK))
      return tfx_errf(err, errlen, "backend: the runtime archive %s is not readable: %s (set TFX_RUNTIME_ARCHIVE)", env,
                      strerror(errno));
    return found(env, out, outlen, err, errlen);
  }
  char dir[PATH_MAX], cand[PATH_MAX + 64];
  int have_dir = exe_dir(dir, sizeof dir) == 0;
  if (have_dir) {
    snprintf(cand, sizeof cand, "%s/%s", dir, TFX_RUNTIME_FROM_BIN);
    if (try_path(cand, tried, sizeof tried) == 0) return found(cand, out, outlen, err, errlen);
  }
#if defined(TFX_BUILD_DIR) && defined(TFX_RUNTIME_BUILD_ARCHIVE)
  if (have_dir && inside(dir, TFX_BUILD_DIR) && try_path(TFX_RUNTIME_BUILD_ARCHIVE, tried, sizeof tried) == 0)
    return found(TFX_RUNTIME_BUILD_ARCHIVE, out, outlen, err, errlen);
#else
  (void)inside;
#endif
  return tfx_errf(err, errlen,
                  "backend: no runtime archive (libtfxrt.a) to link the model with; tried: %s; pass "
                  "--runtime PATH or set TFX_RUNTIME_ARCHIVE",
                  tried[0] ? tried : "nothing (the executable's folder is unknown)");
}
