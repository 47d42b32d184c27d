/* backend/elf_fill.c — fills the weights reservation of a freshly linked
 * model .so (elf_blob.c's SHT_NOBITS blob). The linker puts it at the end
 * of the last segment (the writable data: .data, .bss, then the
 * reservation), past the segment's file bytes. That segment moves to the
 * end of the file (at an offset congruent to its address, as the loader
 * maps it), its data copied, its .bss and the reservation given file
 * bytes (zeros, and the weights written there), its sections made
 * SHT_PROGBITS; the program headers inside it (PT_DYNAMIC, PT_GNU_RELRO)
 * follow, and the program and section headers are rewritten in place. The
 * old copy of its data stays behind, unreferenced. The weights are written once, straight
 * into the output; the linker never copies them. The file is tfxc's own link
 * output, read defensively all the same: any other shape is an error and the
 * caller links the weights in the ordinary way. */
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

/* Moves the reservation's segment to the end of the file and writes data
 * into it; fd is open for reading and writing. */
static int fill(int fd, const char *so_path, const char *symbol, const uint8_t *data, size_t bytes, char *err,
                size_t errlen) {
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) return tfx_errf(err, errlen, "backend: %s: not a regular file", so_path);
  uint64_t size = (uint64_t)st.st_size;
  Elf64_Ehdr eh;
  if (read_at(fd, &eh, sizeof eh, 0, size) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_phnum == 0 ||
      eh.e_phnum >= 256 || eh.e_shnum == 0 || eh.e_shnum >= SHN_LORESERVE)
    return tfx_errf(err, errlen, "backend: %s: not the ELF64 shared library expected", so_path);
  Elf64_Phdr ph[256];
  Elf64_Shdr *sh = malloc((size_t)eh.e_shnum * sizeof *sh);
  int rc = -1;
  Elf64_Sym sym;
  uint8_t *old = NULL; /* the last segment's file bytes */
  if (!sh) {
    tfx_errf(err, errlen, "backend: out of memory");
    goto done;
  }
  if (read_at(fd, ph, (uint64_t)eh.e_phnum * sizeof *ph, eh.e_phoff, size) ||
      read_at(fd, sh, (uint64_t)eh.e_shnum * sizeof *sh, eh.e_shoff, size)) {
    tfx_errf(err, errlen, "backend: %s: its headers are cut", so_path);
    goto done;
  }
  if (find_symbol(fd, size, &eh, sh, symbol, &sym) || sym.st_size != bytes || sym.st_shndx == SHN_UNDEF ||
      sym.st_shndx >= eh.e_shnum || sh[sym.st_shndx].sh_type != SHT_NOBITS) {
    tfx_errf(err, errlen, "backend: %s: no reservation %s of %zu bytes", so_path, symbol, bytes);
    goto done;
  }
  /* its PT_LOAD: the last one by address, the blob past its file bytes */
  Elf64_Phdr *seg = NULL, *last = NULL;
  for (int i = 0; i < eh.e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (!last || ph[i].p_vaddr > last->p_vaddr) last = &ph[i];
    if (sym.st_value >= ph[i].p_vaddr && sym.st_value - ph[i].p_vaddr <= ph[i].p_memsz &&
        bytes <= ph[i].p_memsz - (sym.st_value - ph[i].p_vaddr))
      seg = &ph[i];
  }
  if (!seg || seg != last || sym.st_value - seg->p_vaddr < seg->p_filesz || seg->p_filesz > SEGMENT_DATA_MAX ||
      seg->p_align == 0 || (seg->p_align & (seg->p_align - 1)) || seg->p_offset > size ||
      seg->p_filesz > size - seg->p_offset) {
    tfx_errf(err, errlen, "backend: %s: the weights reservation is not at the end of the last segment", so_path);
    goto done;
  }
  /* the segment moves to the first offset at or after the end of the file
   * that is congruent to its address */
  uint64_t off = size + ((seg->p_vaddr - size) & (seg->p_align - 1));
  old = malloc(seg->p_filesz ? (size_t)seg->p_filesz : 1);
  if (!old || read_at(fd, old, seg->p_filesz, seg->p_offset, size)) {
    tfx_errf(err, errlen, "backend: %s: cannot read its last segment", so_path);
    goto done;
  }
  uint64_t lo = seg->p_vaddr, hi = seg->p_vaddr + seg->p_memsz;
  for (int s = 0; s < eh.e_shnum; s++) { /* its sections, now all with file bytes (.tbss takes none) */
    Elf64_Shdr *x = &sh[s];
    if (!(x->sh_flags & SHF_ALLOC) || x->sh_addr < lo || x->sh_addr >= hi) continue;
    if (x->sh_type == SHT_NOBITS && (x->sh_flags & SHF_TLS)) continue;
    if (x->sh_type == SHT_NOBITS) x->sh_type = SHT_PROGBITS;
    x->sh_offset = off + (x->sh_addr - lo);
  }
  for (int i = 0; i < eh.e_phnum; i++) /* and what lies in it: PT_DYNAMIC, PT_GNU_RELRO, PT_TLS */
    if (&ph[i] != seg && ph[i].p_type != PT_LOAD && ph[i].p_vaddr >= lo && ph[i].p_vaddr < hi)
      ph[i].p_offset = off + (ph[i].p_vaddr - lo);
  uint64_t filesz = seg->p_filesz;
  seg->p_offset = off;
  seg->p_filesz = seg->p_memsz;
  errno = 0;
  if (ftruncate(fd, (off_t)(off + seg->p_memsz)) || write_at(fd, old, filesz, off) ||
      write_at(fd, data, bytes, off + (sym.st_value - lo)) ||
      write_at(fd, ph, (uint64_t)eh.e_phnum * sizeof *ph, eh.e_phoff) ||
      write_at(fd, sh, (uint64_t)eh.e_shnum * sizeof *sh, eh.e_shoff)) {
    tfx_errf(err, errlen, "backend: writing the weights into %s failed: %s", so_path,
             errno ? strerror(errno) : "short write");
    goto done;
  }
  rc = 0;
done:
  free(old);
  free(sh);
  return rc;
}

int tfx_cg_fill_blob(const char *so_path, const char *symbol, const uint8_t *data, size_t bytes, char *err,
                     size_t errlen) {
  if (!so_path || !symbol || (bytes && !data)) return tfx_errf(err, errlen, "backend: tfx_cg_fill_blob: NULL argument");
  int fd = open(so_path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return tfx_errf(err, errlen, "backend: cannot open %s: %s", so_path, strerror(errno));
  int rc = fill(fd, so_path, symbol, data, bytes, err, errlen);
  if (close(fd) != 0 && rc == 0) rc = tfx_errf(err, errlen, "backend: writing %s failed: %s", so_path, strerror(errno));
  return rc;
}
