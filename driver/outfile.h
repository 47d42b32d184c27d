/* driver/outfile.h — how tfxc writes its outputs: each to a temporary file
 * beside it, renamed into place only when every output is complete; the
 * temporaries (and the backend's, and a running ld/cc) removed on an error, at
 * exit and on SIGINT/SIGTERM/SIGHUP/SIGPIPE; an output that is the same file
 * as an input refused; stdout's write errors reported. */
#ifndef TFX_DRIVER_OUTFILE_H
#define TFX_DRIVER_OUTFILE_H

#include <stddef.h>

typedef struct tfx_drv_output {
  const char *dest; /* the name the user gave (messages name it) */
  char *target;     /* what the temporary is renamed to: dest, or the file a symlink dest points at */
  char *tmp;        /* the file to write: a registered temporary beside target, or dest itself when direct */
  int direct;       /* dest is not a regular file (a device, a FIFO) or lies under /dev or /proc: written in
                       place, never renamed over */
  int exec;         /* the final mode is 0777 & ~umask (a shared library), else 0666 & ~umask */
} tfx_drv_output;

/* Installs the signal handlers (not for a signal the parent ignores), the
 * backend's hooks (its temporaries and tools) and an atexit cleanup. */
void tfx_drv_outfile_init(void);

/* Creates o's temporary file (".NAME.tmp-XXXXXX" + suffix beside the target):
 * this is also the check that the output can be written (as root too). 0, or
 * -1 with "cannot write 'DEST': ..." in err. */
int tfx_drv_output_begin(tfx_drv_output *o, const char *dest, const char *suffix, int exec, char *err, size_t errlen);
/* Gives the temporary its final mode and renames it over the target. */
int tfx_drv_output_commit(tfx_drv_output *o, char *err, size_t errlen);
/* Removes the temporary (never a direct output's file) and frees o. */
void tfx_drv_output_discard(tfx_drv_output *o);
/* Unlinks a registered temporary, forgets it and frees path. */
void tfx_drv_temp_remove(char *path);

/* 1 when a and b name the same file: the same device and inode (through
 * symlinks and hard links); a missing file is its directory's device and
 * inode and its name, so two outputs not yet written compare too. */
int tfx_drv_same_file(const char *a, const char *b);

/* Flushes stdout; on a write error (now or earlier) prints "tfxc: error:
 * error writing to stdout: REASON" and returns 1. */
int tfx_drv_finish_stdout(void);

#endif
