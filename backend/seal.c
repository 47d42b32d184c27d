/* backend/seal.c — seals a linked model .so (tfx/seal.h): appends the
 * trailer whose checksum covers the whole file but the weights blob, so
 * that the runtime refuses a truncated or corrupted copy before the dynamic
 * loader reads it. The blob is found by its symbol in the file's own symbol
 * table (the one symbol whose name ends in "_weights_blob", as aot.c names
 * it); without one (a stripped file, several models in one library) nothing
 * is skipped and opening the model checksums every byte. A file sealed
 * already is sealed anew (`tfxc seal` after strip or objcopy). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/tfx/seal.h"
#include "backend.h"

static int read_exact(int fd, void *buf, uint64_t n, uint64_t off, uint64_t size) {
  if (off > size || n > size - off) return -1;
  return pread(fd, buf, (size_t)n, (off_t)off) == (ssize_t)n ? 0 : -1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* The file range of the weights blob: [*off, *off + *len), or 0 bytes when
 * there is no single blob symbol to go by. The file is tfxc's own link
 * output, but it is read defensively all the same (`tfxc seal` takes any
 * file). */
static void find_blob(int fd, uint64_t size, uint64_t *off, uint64_t *len) {
  *off = *len = 0;
  Elf64_Ehdr eh;
  if (read_exact(fd, &eh, sizeof eh, 0, size) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
      eh.e_shnum >= SHN_LORESERVE)
    return;
  Elf64_Shdr *sh = malloc((size_t)eh.e_shnum * sizeof *sh);
  if (!sh || read_exact(fd, sh, (uint64_t)eh.e_shnum * sizeof *sh, eh.e_shoff, size)) {
    free(sh);
    return;
  }
  int found = 0;
  for (int s = 0; s < eh.e_shnum && found >= 0; s++) {
    if (sh[s].sh_type != SHT_SYMTAB || sh[s].sh_entsize != sizeof(Elf64_Sym) || sh[s].sh_link >= eh.e_shnum) continue;
    const Elf64_Shdr *str = &sh[sh[s].sh_link];
    uint64_t n = sh[s].sh_size / sizeof(Elf64_Sym);
    Elf64_Sym *sym = n && n < (1u << 24) ? malloc(n * sizeof *sym) : NULL;
    char *names = str->sh_size && str->sh_size < (1u << 28) ? malloc(str->sh_size) : NULL;
    if (sym && names && !read_exact(fd, sym, n * sizeof *sym, sh[s].sh_offset, size) &&
        !read_exact(fd, names, str->sh_size, str->sh_offset, size) && names[str->sh_size - 1] == 0) {
      for (uint64_t i = 0; i < n && found >= 0; i++) {
        if (ELF64_ST_TYPE(sym[i].st_info) != STT_OBJECT || sym[i].st_size == 0 || sym[i].st_name >= str->sh_size ||
            !ends_with(names + sym[i].st_name, "_weights_blob") || sym[i].st_shndx >= eh.e_shnum)
          continue;
        const Elf64_Shdr *at = &sh[sym[i].st_shndx];
        uint64_t rel = sym[i].st_value - at->sh_addr;
        if (found || at->sh_type == SHT_NOBITS || sym[i].st_value < at->sh_addr || rel > at->sh_size ||
            sym[i].st_size > at->sh_size - rel || at->sh_offset + rel > size ||
            sym[i].st_size > size - (at->sh_offset + rel)) {
          found = -1; /* a second blob, or one that is not in the file: skip nothing */
          continue;
        }
        *off = at->sh_offset + rel;
        *len = sym[i].st_size;
        found = 1;
      }
    }
    free(sym);
    free(names);
  }
  free(sh);
  if (found != 1) *off = *len = 0;
}

int tfx_backend_seal(const char *so_path, char *err, size_t errlen) {
  if (!so_path || !so_path[0]) return tfx_errf(err, errlen, "backend: tfx_backend_seal: NULL path");
  int fd = open(so_path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return tfx_errf(err, errlen, "cannot seal '%s': %s", so_path, strerror(errno));
  struct stat st;
  uint8_t ident[SELFMAG];
  int rc = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = tfx_errf(err, errlen, "cannot seal '%s': not a regular file", so_path);
  } else if (read_exact(fd, ident, SELFMAG, 0, (uint64_t)st.st_size) || memcmp(ident, ELFMAG, SELFMAG)) {
    rc = tfx_errf(err, errlen, "cannot seal '%s': not an ELF file", so_path);
  } else {
    uint64_t size = (uint64_t)st.st_size;
    tfx_seal old;
    if (tfx_seal_read(fd, size, &old) == 0) { /* sealed before: the ELF file ends before its trailer */
      size -= TFX_SEAL_BYTES;
      if (ftruncate(fd, (off_t)size) != 0) rc = tfx_errf(err, errlen, "cannot seal '%s': %s", so_path, strerror(errno));
    }
    uint64_t off, len;
    find_blob(fd, size, &off, &len);
    errno = 0;
    if (!rc && tfx_seal_append(fd, size, off, len) != 0)
      rc = tfx_errf(err, errlen, "cannot seal '%s': %s", so_path, errno ? strerror(errno) : "write failed");
  }
  if (close(fd) != 0 && !rc) rc = tfx_errf(err, errlen, "cannot seal '%s': %s", so_path, strerror(errno));
  return rc;
}
