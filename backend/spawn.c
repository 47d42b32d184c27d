/* backend/spawn.c — runs an external tool (ld, cc) with posix_spawnp, never
 * system(): captures its stdout/stderr through a pipe, waits for it and
 * reports a non-zero exit status or a signal with the captured text. Owns the
 * hooks of tfx_backend_set_hooks (temporaries and running tools, for a
 * program's signal handler). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cg.h"

extern char **environ;

#define SPAWN_CAPTURE 2048

static tfx_backend_hooks hooks;

void tfx_backend_set_hooks(const tfx_backend_hooks *h) {
  if (h)
    hooks = *h;
  else
    memset(&hooks, 0, sizeof hooks);
}

void tfx_cg_temp_event(const char *path, int created) {
  if (hooks.temp && path) hooks.temp(path, created);
}

int tfx_cg_run(char *const argv[], char *err, size_t errlen) {
  int fds[2];
  if (pipe(fds)) return tfx_errf(err, errlen, "backend: cannot run %s: pipe: %s", argv[0], strerror(errno));
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  /* with a tool hook, the tool gets a process group of its own: a signal
   * handler ends it and whatever it started (cc's collect2 and ld) at once */
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t all, old;
  if (hooks.tool) { /* signals wait until the hook knows the tool; the tool gets the caller's mask */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &old);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (hooks.tool) {
    if (!rc) hooks.tool((long)pid);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  close(fds[1]);
  if (rc) {
    close(fds[0]);
    return tfx_errf(err, errlen, "backend: cannot run %s: %s", argv[0], strerror(rc));
  }
  char text[SPAWN_CAPTURE];
  size_t used = 0;
  for (;;) {
    char chunk[1024];
    ssize_t got = read(fds[0], chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    size_t take = (size_t)got < sizeof text - 1 - used ? (size_t)got : sizeof text - 1 - used;
    memcpy(text + used, chunk, take);
    used += take;
  }
  text[used] = 0;
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      if (hooks.tool) hooks.tool(0);
      return tfx_errf(err, errlen, "backend: waiting for %s: %s", argv[0], strerror(errno));
    }
  }
  if (hooks.tool) hooks.tool(0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  while (used > 0 && (text[used - 1] == '\n' || text[used - 1] == ' ')) text[--used] = 0;
  if (WIFSIGNALED(status))
    return tfx_errf(err, errlen, "backend: %s killed by signal %d: %s", argv[0], WTERMSIG(status), text);
  return tfx_errf(err, errlen, "backend: %s failed (exit status %d): %s", argv[0], WEXITSTATUS(status), text);
}
