/* backend/spawn.c — runs an external tool (ld, cc) with posix_spawnp, never
 * system(): captures its stdout/stderr through a pipe, waits for it and
 * reports a non-zero exit status or a signal with the captured text. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cg.h"

extern char **environ;

#define SPAWN_CAPTURE 2048

int tfx_cg_run(char *const argv[], char *err, size_t errlen) {
  int fds[2];
  if (pipe(fds)) return tfx_errf(err, errlen, "backend: cannot run %s: pipe: %s", argv[0], strerror(errno));
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
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
    if (errno != EINTR) return tfx_errf(err, errlen, "backend: waiting for %s: %s", argv[0], strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  while (used > 0 && (text[used - 1] == '\n' || text[used - 1] == ' ')) text[--used] = 0;
  if (WIFSIGNALED(status))
    return tfx_errf(err, errlen, "backend: %s killed by signal %d: %s", argv[0], WTERMSIG(status), text);
  return tfx_errf(err, errlen, "backend: %s failed (exit status %d): %s", argv[0], WEXITSTATUS(status), text);
}
