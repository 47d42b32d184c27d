/* backend/elf_fill.c — fills the weights reservation (elf_blob.c's
 * SHT_NOBITS blob) of a freshly linked file, so that the weights are written
 * once, straight into the output, and the linker never copies them.
 * - In a relocatable object (`-c`, after `ld -r`) the section gets its bytes
 *   at the end of the file.
 * - In a model .so the linker puts the reservation at the end of the last
 *   segment (the writable data: .data, .bss, then the reservation), past
 *   the segment's file bytes. That segment moves to the end of the file (at
 *   an offset congruent to its address, as the loader maps it): its data
 *   copied, its .bss and the reservation given file bytes (zeros, and the
 *   weights written there), its sections made SHT_PROGBITS; the program
 *   headers inside it (PT_DYNAMIC, PT_GNU_RELRO) follow, and the program and
 *   section headers are rewritten in place. The old copy of its data (a few
 *   KB) stays behind, unreferenced.
 * The file is tfxc's own link output, read defensively all the same: any
 * other shape is an error, and the caller links the weights the ordinary
 * way. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cg.h"

/* The file bytes of the last segment (the runtime's and the model's data,
 * kilobytes) that move with it. */
#define SEGMENT_DATA_MAX ((uint64_t)64 << 20)
#define MAX_PHDRS 256

static int read_at(int fd, void *buf, uint64_t n, uint64_t off, uint64_t size) {
  if (off > size || n > size - off) return -1;
  return pread(fd, buf, (size_t)n, (off_t)off) == (ssize_t)n ? 0 : -1;
}

static int write_at(int fd, const void *buf, uint64_t n, uint64_t off) {
  const uint8_t *p = buf;
  while (n > 0) {
    size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)n;
    ssize_t w = pwrite(fd, p, chunk, (off_t)off);
    if (w <= 0) return -1;
    p += w;
    off += (uint64_t)w;
    n -= (uint64_t)w;
  }
  return 0;
}

/* The value and section of `symbol` in the file's .symtab; -1 if absent. */
static int find_symbol(int fd, uint64_t size, const Elf64_Ehdr *eh, const Elf64_Shdr *sh, const char *symbol,
                       Elf64_Sym *out) {
  int found = -1;
  for (int s = 0; s < eh->e_shnum && found < 0; s++) {
    if (sh[s].sh_type != SHT_SYMTAB || sh[s].sh_entsize != sizeof(Elf64_Sym) || sh[s].sh_link >= eh->e_shnum) continue;
    const Elf64_Shdr *str = &sh[sh[s].sh_link];
    uint64_t n = sh[s].sh_size / sizeof(Elf64_Sym);
    Elf64_Sym *sym = n && n < (1u << 24) ? malloc(n * sizeof *sym) : NULL;
    char *names = str->sh_size && str->sh_size < (1u << 28) ? malloc(str->sh_size) : NULL;
    if (sym && names && !read_at(fd, sym, n * sizeof *sym, sh[s].sh_offset, size) &&
        !read_at(fd, names, str->sh_size, str->sh_offset, size) && names[str->sh_size - 1] == 0)
      for (uint64_t i = 0; i < n && found < 0; i++)
        if (sym[i].st_name < str->sh_size && !strcmp(names + sym[i].st_name, symbol)) {
          *out = sym[i];
          found = 0;
        }
    free(sym);
    free(names);
  }
  return found;
}

/* A relocatable object: the reservation's section gets file bytes at the
 * end of the file, aligned as the section is. */
static int fill_relocatable(int fd, uint64_t size, const char *path, const Elf64_Ehdr *eh, Elf64_Shdr *sh,
                            const Elf64_Sym *sym, const uint8_t *data, size_t bytes, char *err, size_t errlen) {
  Elf64_Shdr *x = &sh[sym->st_shndx];
  uint64_t align = x->sh_addralign ? x->sh_addralign : 1;
  if ((align & (align - 1)) || sym->st_value > x->sh_size || bytes > x->sh_size - sym->st_value)
    return tfx_errf(err, errlen, "backend: %s: the weights reservation is not the expected section", path);
  uint64_t off = (size + align - 1) & ~(align - 1);
  x->sh_type = SHT_PROGBITS;
  x->sh_offset = off;
  errno = 0;
  if (ftruncate(fd, (off_t)(off + x->sh_size)) || write_at(fd, data, bytes, off + sym->st_value) ||
      write_at(fd, sh, (uint64_t)eh->e_shnum * sizeof *sh, eh->e_shoff))
    return tfx_errf(err, errlen, "backend: writing the weights into %s failed: %s", path,
                    errno ? strerror(errno) : "short write");
  return 0;
}

/* A shared library: the reservation's segment (the last, the blob past its
 * file bytes) moves to the end of the file with its data, and the blob is
 * written there. */
static int fill_shared(int fd, uint64_t size, const char *path, const Elf64_Ehdr *eh, Elf64_Phdr *ph, Elf64_Shdr *sh,
                       const Elf64_Sym *sym, const uint8_t *data, size_t bytes, char *err, size_t errlen) {
  Elf64_Phdr *seg = NULL, *last = NULL;
  for (int i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (!last || ph[i].p_vaddr > last->p_vaddr) last = &ph[i];
    if (sym->st_value >= ph[i].p_vaddr && sym->st_value - ph[i].p_vaddr <= ph[i].p_memsz &&
        bytes <= ph[i].p_memsz - (sym->st_value - ph[i].p_vaddr))
      seg = &ph[i];
  }
  if (!seg || seg != last || sym->st_value - seg->p_vaddr < seg->p_filesz || seg->p_filesz > SEGMENT_DATA_MAX ||
      seg->p_align == 0 || (seg->p_align & (seg->p_align - 1)) || seg->p_offset > size ||
      seg->p_filesz > size - seg->p_offset)
    return tfx_errf(err, errlen, "backend: %s: the weights reservation is not at the end of the last segment", path);
  /* the first offset at or after the end of the file congruent to its address */
  uint64_t off = size + ((seg->p_vaddr - size) & (seg->p_align - 1));
  uint8_t *old = malloc(seg->p_filesz ? (size_t)seg->p_filesz : 1); /* its file bytes, which move */
  if (!old || read_at(fd, old, seg->p_filesz, seg->p_offset, size)) {
    free(old);
    return tfx_errf(err, errlen, "backend: %s: cannot read its last segment", path);
  }
  uint64_t lo = seg->p_vaddr, hi = seg->p_vaddr + seg->p_memsz;
  for (int s = 0; s < eh->e_shnum; s++) { /* its sections, now all with file bytes (.tbss takes none) */
    Elf64_Shdr *x = &sh[s];
    if (!(x->sh_flags & SHF_ALLOC) || x->sh_addr < lo || x->sh_addr >= hi) continue;
    if (x->sh_type == SHT_NOBITS && (x->sh_flags & SHF_TLS)) continue;
    if (x->sh_type == SHT_NOBITS) x->sh_type = SHT_PROGBITS;
    x->sh_offset = off + (x->sh_addr - lo);
  }
  for (int i = 0; i < eh->e_phnum; i++) /* and what lies in it: PT_DYNAMIC, PT_GNU_RELRO, PT_TLS */
    if (&ph[i] != seg && ph[i].p_type != PT_LOAD && ph[i].p_vaddr >= lo && ph[i].p_vaddr < hi)
      ph[i].p_offset = off + (ph[i].p_vaddr - lo);
  uint64_t filesz = seg->p_filesz;
  seg->p_offset = off;
  seg->p_filesz = seg->p_memsz;
  errno = 0;
  int rc = 0;
  if (ftruncate(fd, (off_t)(off + seg->p_memsz)) || write_at(fd, old, filesz, off) ||
      write_at(fd, data, bytes, off + (sym->st_value - lo)) ||
      write_at(fd, ph, (uint64_t)eh->e_phnum * sizeof *ph, eh->e_phoff) ||
      write_at(fd, sh, (uint64_t)eh->e_shnum * sizeof *sh, eh->e_shoff))
    rc = tfx_errf(err, errlen, "backend: writing the weights into %s failed: %s", path,
                  errno ? strerror(errno) : "short write");
  free(old);
  return rc;
}

/* Reads the headers, finds the reservation, and fills it; fd is open for
 * reading and writing. */
static int fill(int fd, const char *path, const char *symbol, const uint8_t *data, size_t bytes, char *err,
                size_t errlen) {
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) return tfx_errf(err, errlen, "backend: %s: not a regular file", path);
  uint64_t size = (uint64_t)st.st_size;
  Elf64_Ehdr eh;
  if (read_at(fd, &eh, sizeof eh, 0, size) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
      (eh.e_type != ET_DYN && eh.e_type != ET_REL) || eh.e_shentsize != sizeof(Elf64_Shdr) ||
      (eh.e_type == ET_DYN && (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS)) ||
      eh.e_shnum == 0 || eh.e_shnum >= SHN_LORESERVE)
    return tfx_errf(err, errlen, "backend: %s: not the ELF64 object or shared library expected", path);
  Elf64_Phdr ph[MAX_PHDRS];
  Elf64_Shdr *sh = malloc((size_t)eh.e_shnum * sizeof *sh);
  Elf64_Sym sym;
  int rc = -1;
  if (!sh)
    tfx_errf(err, errlen, "backend: out of memory");
  else if ((eh.e_type == ET_DYN && read_at(fd, ph, (uint64_t)eh.e_phnum * sizeof *ph, eh.e_phoff, size)) ||
           read_at(fd, sh, (uint64_t)eh.e_shnum * sizeof *sh, eh.e_shoff, size))
    tfx_errf(err, errlen, "backend: %s: its headers are cut", path);
  else if (find_symbol(fd, size, &eh, sh, symbol, &sym) || sym.st_size != bytes || sym.st_shndx == SHN_UNDEF ||
           sym.st_shndx >= eh.e_shnum || sh[sym.st_shndx].sh_type != SHT_NOBITS)
    tfx_errf(err, errlen, "backend: %s: no reservation %s of %zu bytes", path, symbol, bytes);
  else if (eh.e_type == ET_REL)
    rc = fill_relocatable(fd, size, path, &eh, sh, &sym, data, bytes, err, errlen);
  else
    rc = fill_shared(fd, size, path, &eh, ph, sh, &sym, data, bytes, err, errlen);
  free(sh);
  return rc;
}

int tfx_cg_fill_blob(const char *path, const char *symbol, const uint8_t *data, size_t bytes, char *err,
                     size_t errlen) {
  if (!path || !symbol || (bytes && !data)) return tfx_errf(err, errlen, "backend: tfx_cg_fill_blob: NULL argument");
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return tfx_errf(err, errlen, "backend: cannot open %s: %s", path, strerror(errno));
  int rc = fill(fd, path, symbol, data, bytes, err, errlen);
  if (close(fd) != 0 && rc == 0) rc = tfx_errf(err, errlen, "backend: writing %s failed: %s", path, strerror(errno));
  return rc;
}
