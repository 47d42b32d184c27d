/* driver/outfile.c — tfxc's outputs and their temporaries: a registry of
 * temporary paths (the driver's and the backend's, through
 * tfx_backend_set_hooks) that a signal handler removes with async-signal-safe
 * calls before re-raising the signal, after killing the external tool running
 * then (its own process group); outputs written beside their destination and
 * renamed into place; same-file checks by device and inode; stdout's errors. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../backend/backend.h"

#define MAX_TEMPS 64
#define TEMP_PATH_MAX 4096

/* slot i holds a live path when state[i] is 1; the handler reads only those */
static char temp_path[MAX_TEMPS][TEMP_PATH_MAX];
static volatile sig_atomic_t temp_state[MAX_TEMPS];
static volatile sig_atomic_t tool_pid; /* the running ld/cc (its process group), 0 when none */
static mode_t saved_umask = 022;

static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

/* Signals wait while the registry and the file system disagree. */
static void block_signals(sigset_t *old) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, old);
}

static void restore_signals(const sigset_t *old) { sigprocmask(SIG_SETMASK, old, NULL); }

static int temp_add(const char *path) {
  size_t n = strlen(path);
  if (n >= TEMP_PATH_MAX) return -1;
  for (int i = 0; i < MAX_TEMPS; i++)
    if (!temp_state[i]) {
      memcpy(temp_path[i], path, n + 1);
      temp_state[i] = 1;
      return 0;
    }
  return -1;
}

static void temp_forget(const char *path) {
  for (int i = 0; i < MAX_TEMPS; i++)
    if (temp_state[i] && strcmp(temp_path[i], path) == 0) {
      temp_state[i] = 0;
      return;
    }
}

/* Files first, then the (backend's) directories they were in. Only
 * async-signal-safe calls. */
static void remove_all(void) {
  for (int i = 0; i < MAX_TEMPS; i++)
    if (temp_state[i] && unlink(temp_path[i]) == 0) temp_state[i] = 0;
  for (int i = 0; i < MAX_TEMPS; i++)
    if (temp_state[i]) {
      rmdir(temp_path[i]);
      temp_state[i] = 0;
    }
}

static void on_signal(int sig) {
  pid_t tool = (pid_t)tool_pid;
  if (tool > 0) { /* the tool and what it started (collect2, ld) would write after we removed their output */
    kill(-tool, SIGKILL);
    while (waitpid(tool, NULL, 0) < 0 && errno == EINTR) {
    }
    for (int i = 0; i < 100 && kill(-tool, 0) == 0; i++) { /* the rest of the group, up to 0.2 s */
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
  }
  remove_all();
  struct sigaction sa;
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
  raise(sig); /* pending while this handler runs; delivered when unblocked */
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
}

static void hook_temp(const char *path, int created) {
  sigset_t old;
  block_signals(&old);
  if (created)
    temp_add(path);
  else
    temp_forget(path);
  restore_signals(&old);
}

static void hook_tool(long pid) { tool_pid = (sig_atomic_t)pid; }

static void at_exit(void) { remove_all(); }

void tfx_drv_outfile_init(void) {
  saved_umask = umask(0);
  umask(saved_umask);
  for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++) {
    struct sigaction old;
    if (sigaction(handled[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue; /* nohup, a shell's & */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask); /* one handler at a time, nothing in between */
    sigaction(handled[i], &sa, NULL);
  }
  static const tfx_backend_hooks hooks = {hook_temp, hook_tool};
  tfx_backend_set_hooks(&hooks);
  atexit(at_exit);
}

/* dir and base of path ("." for a name without '/'; "/" for "/x"). */
static int split_path(const char *path, char *dir, size_t dlen, const char **base) {
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  int n =
      !slash ? snprintf(dir, dlen, ".") : snprintf(dir, dlen, "%.*s", (int)(slash == path ? 1 : slash - path), path);
  return n < 0 || (size_t)n >= dlen ? -1 : 0;
}

/* Creates and registers "DIR/.BASE.tmp-XXXXXX" + suffix beside `beside`;
 * malloc'd path in *out. On failure errno is set and -1 returned. */
static int create_temp(const char *beside, const char *suffix, char **out) {
  char dir[TEMP_PATH_MAX];
  const char *base;
  if (split_path(beside, dir, sizeof dir, &base)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  size_t len = strlen(dir) + strlen(base) + strlen(suffix) + 32;
  char *p = malloc(len);
  if (!p) return -1;
  snprintf(p, len, "%s/.%.64s.tmp-XXXXXX%s", dir, base, suffix);
  sigset_t old;
  block_signals(&old);
  int fd = mkstemps(p, (int)strlen(suffix));
  int e = errno;
  if (fd >= 0 && temp_add(p)) {
    unlink(p);
    close(fd);
    fd = -1;
    e = ENAMETOOLONG;
  }
  restore_signals(&old);
  if (fd < 0) {
    free(p);
    errno = e;
    return -1;
  }
  close(fd);
  *out = p;
  return 0;
}

void tfx_drv_temp_remove(char *path) {
  if (!path) return;
  sigset_t old;
  block_signals(&old);
  unlink(path);
  temp_forget(path);
  restore_signals(&old);
  free(path);
}

int tfx_drv_output_begin(tfx_drv_output *o, const char *dest, const char *suffix, int exec, char *err, size_t errlen) {
  memset(o, 0, sizeof *o);
  o->dest = dest;
  o->exec = exec;
  struct stat st, lst;
  int exists = stat(dest, &st) == 0, e = errno;
  if (exists && S_ISDIR(st.st_mode)) return snprintf(err, errlen, "cannot write '%s': Is a directory", dest), -1;
  if (!exists && e != ENOENT) return snprintf(err, errlen, "cannot write '%s': %s", dest, strerror(e)), -1;
  int is_link = lstat(dest, &lst) == 0 && S_ISLNK(lst.st_mode);
  /* a device (/dev/null), a FIFO, /dev/stdout, a dangling symlink: written in
   * place as before, never replaced by a regular file */
  int special_dir = (!strncmp(dest, "/dev/", 5) && strncmp(dest, "/dev/shm/", 9)) || !strncmp(dest, "/proc/", 6);
  if ((exists && !S_ISREG(st.st_mode)) || (!exists && is_link) || special_dir) {
    o->direct = 1;
    o->tmp = strdup(dest);
    if (!o->tmp) return snprintf(err, errlen, "out of memory"), -1;
    return 0;
  }
  /* a symlink to a regular file: the file it points at is replaced, the link stays */
  o->target = is_link ? realpath(dest, NULL) : strdup(dest);
  if (!o->target) return snprintf(err, errlen, "cannot write '%s': %s", dest, strerror(errno)), -1;
  if (create_temp(o->target, suffix, &o->tmp)) {
    e = errno;
    char dir[TEMP_PATH_MAX];
    const char *base;
    if (split_path(o->target, dir, sizeof dir, &base)) snprintf(dir, sizeof dir, "its directory");
    snprintf(err, errlen, "cannot write '%s': cannot create a file in '%s': %s", dest, dir, strerror(e));
    free(o->target);
    o->target = NULL;
    return -1;
  }
  return 0;
}

int tfx_drv_output_commit(tfx_drv_output *o, char *err, size_t errlen) {
  if (o->direct) return 0;
  if (chmod(o->tmp, (o->exec ? 0777 : 0666) & ~saved_umask) != 0 || rename(o->tmp, o->target) != 0)
    return snprintf(err, errlen, "cannot write '%s': %s", o->dest, strerror(errno)), -1;
  sigset_t old;
  block_signals(&old);
  temp_forget(o->tmp);
  restore_signals(&old);
  free(o->tmp);
  o->tmp = NULL;
  return 0;
}

void tfx_drv_output_discard(tfx_drv_output *o) {
  if (o->tmp && !o->direct) {
    tfx_drv_temp_remove(o->tmp);
    o->tmp = NULL;
  }
  free(o->tmp);
  free(o->target);
  memset(o, 0, sizeof *o);
}

typedef struct file_id {
  dev_t dev;
  ino_t ino;
  const char *name; /* "" for an existing file; a missing file's name in its directory */
} file_id;

static int file_id_of(const char *path, file_id *id) {
  struct stat st;
  if (stat(path, &st) == 0) {
    *id = (file_id){st.st_dev, st.st_ino, ""};
    return 0;
  }
  char dir[TEMP_PATH_MAX];
  const char *base;
  if (errno != ENOENT || split_path(path, dir, sizeof dir, &base) || !base[0] || stat(dir, &st) != 0) return -1;
  *id = (file_id){st.st_dev, st.st_ino, base};
  return 0;
}

int tfx_drv_same_file(const char *a, const char *b) {
  file_id x, y;
  if (!a || !b || file_id_of(a, &x) || file_id_of(b, &y)) return 0;
  return x.dev == y.dev && x.ino == y.ino && strcmp(x.name, y.name) == 0;
}

int tfx_drv_finish_stdout(void) {
  int bad = ferror(stdout);
  errno = 0;
  if (fflush(stdout) != 0) bad = 1;
  int e = errno;
  if (!bad) return 0;
  if (!e) { /* the error happened earlier: write nothing to learn it again */
    errno = 0;
    e = write(STDOUT_FILENO, "", 0) < 0 ? errno : EIO;
  }
  fprintf(stderr, "tfxc: error: error writing to stdout: %s\n", strerror(e ? e : EIO));
  return 1;
}
