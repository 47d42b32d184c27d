/* runtime/elf_check.c — what the runtime checks of a model file before and
 * right after dlopen, so that a truncated or corrupted .so is an error and
 * never a crash inside the dynamic loader or the runtime:
 *  - tfx_rt_open_model_file: the path names a regular file (opened without
 *    blocking, so a FIFO is an error, not a hang; a directory says so);
 *  - tfx_rt_check_seal: the trailer tfxc appends when it links a model
 *    (tfx/seal.h) matches the file, weights aside: any bit flipped or cut
 *    off outside the weights is an error here;
 *  - tfx_rt_check_elf: the ELF header, the program headers (every segment
 *    inside the file, PT_LOAD sorted, aligned and disjoint), and what the
 *    dynamic loader reads through them before any code runs (the dynamic
 *    section, string and symbol tables, hash tables, version tables and
 *    relocations: every table inside the file, every relocation target inside
 *    a writable segment, every index in range);
 *  - tfx_rt_check_loaded: every pointer of the loaded descriptor (name,
 *    entries, functions, argument kinds, weights blob) lies inside the
 *    segments of the library that was opened (code in executable ones).
 * The dynamic loader itself trusts its input; these checks are what makes a
 * mutated file (tests/fuzz/fuzz_model.c) safe to hand to it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_internal.h"
#include "tfx/seal.h"

/* the host's machine and its relative, indirect and absolute 64-bit relocations */
#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#define HOST_R_RELATIVE R_X86_64_RELATIVE
#define HOST_R_IRELATIVE R_X86_64_IRELATIVE
#define HOST_R_64 R_X86_64_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#define HOST_R_RELATIVE R_AARCH64_RELATIVE
#define HOST_R_IRELATIVE R_AARCH64_IRELATIVE
#define HOST_R_64 R_AARCH64_ABS64
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_MACHINE EM_RISCV
#define HOST_R_RELATIVE R_RISCV_RELATIVE
#define HOST_R_IRELATIVE 58 /* R_RISCV_IRELATIVE (newer elf.h) */
#define HOST_R_64 R_RISCV_64
#else
#define HOST_MACHINE EM_NONE /* not checked */
#endif

#define MAX_PHDRS 64
#define MAX_DYN 4096                 /* entries of the dynamic section */
#define MAX_SPAN ((uint64_t)1 << 40) /* the address span of all PT_LOAD */
#define MAX_VERSION_RECORDS ((uint64_t)4096)

int tfx_rt_open_model_file(const char *path, int *fd_out, uint64_t *size_out, char *errbuf, size_t errlen) {
  *fd_out = -1;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return tfx_rt_error(errbuf, errlen, TFX_ERR_OPEN, "cannot load '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return tfx_rt_error(errbuf, errlen, TFX_ERR_OPEN, "cannot load '%s': %s", path, strerror(e));
  }
  const char *what = NULL;
  if (S_ISDIR(st.st_mode))
    what = "is a directory";
  else if (S_ISFIFO(st.st_mode))
    what = "is a FIFO, not a regular file";
  else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    what = "is a device, not a regular file";
  else if (S_ISSOCK(st.st_mode))
    what = "is a socket, not a regular file";
  else if (!S_ISREG(st.st_mode))
    what = "is not a regular file";
  if (what) {
    close(fd);
    return tfx_rt_error(errbuf, errlen, TFX_ERR_OPEN, "cannot load '%s': %s", path, what);
  }
  *fd_out = fd;
  *size_out = (uint64_t)st.st_size;
  return TFX_OK;
}

/* ---- the file, read with pread ---- */

typedef struct elf_file {
  int fd;
  uint64_t size;
  const char *path;
  char *errbuf;
  size_t errlen;
  Elf64_Phdr ph[MAX_PHDRS];
  int n_ph;
  const Elf64_Phdr *load[MAX_PHDRS]; /* the PT_LOAD, by address */
  int n_load;
  uint64_t lo, hi; /* the address span of the PT_LOAD */
  Elf64_Shdr *sh;  /* the section headers (load_sections), or NULL */
  int n_sh;
  char *names; /* the section names */
  uint64_t names_size;
} elf_file;

static int bad(elf_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(elf_file *f, const char *fmt, ...) {
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return tfx_rt_error(f->errbuf, f->errlen, TFX_ERR_NOT_A_MODEL,
                      "'%s' is not a loadable model (truncated or corrupted?): %s", f->path, what);
}

static int read_at(elf_file *f, void *buf, uint64_t n, uint64_t off) {
  if (off > f->size || n > f->size - off) return -1;
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = pread(f->fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r, off += (uint64_t)r, n -= (uint64_t)r;
  }
  return 0;
}

/* The file offset of [vaddr, vaddr + n) when it is file-backed by one PT_LOAD;
 * -1 otherwise. */
static int64_t file_off(const elf_file *f, uint64_t vaddr, uint64_t n) {
  for (int i = 0; i < f->n_load; i++) {
    const Elf64_Phdr *p = f->load[i];
    if (vaddr >= p->p_vaddr && vaddr - p->p_vaddr <= p->p_filesz && n <= p->p_filesz - (vaddr - p->p_vaddr))
      return (int64_t)(p->p_offset + (vaddr - p->p_vaddr));
  }
  return -1;
}

/* The PT_LOAD whose memory holds [vaddr, vaddr + n), or NULL. */
static const Elf64_Phdr *load_of(const elf_file *f, uint64_t vaddr, uint64_t n) {
  for (int i = 0; i < f->n_load; i++) {
    const Elf64_Phdr *p = f->load[i];
    if (vaddr >= p->p_vaddr && vaddr - p->p_vaddr <= p->p_memsz && n <= p->p_memsz - (vaddr - p->p_vaddr)) return p;
  }
  return NULL;
}

/* Reads n bytes at vaddr (file-backed) into a malloc'd buffer. */
static void *read_vaddr(elf_file *f, uint64_t vaddr, uint64_t n) {
  int64_t off = file_off(f, vaddr, n);
  if (off < 0 || n > f->size) return NULL;
  void *buf = malloc(n ? n : 1);
  if (buf && read_at(f, buf, n, (uint64_t)off)) {
    free(buf);
    return NULL;
  }
  return buf;
}

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static int check_headers(elf_file *f) {
  Elf64_Ehdr eh;
  if (f->size < sizeof eh)
    return bad(f, "the file has %llu bytes, less than an ELF header", (unsigned long long)f->size);
  if (read_at(f, &eh, sizeof eh, 0)) return bad(f, "cannot read the ELF header");
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return bad(f, "not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return bad(f, "not a 64-bit ELF file");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return bad(f, "not a little-endian ELF file");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) return bad(f, "unknown ELF version");
  if (eh.e_type != ET_DYN) return bad(f, "not a shared library (ELF type %u)", (unsigned)eh.e_type);
  if (HOST_MACHINE != EM_NONE && eh.e_machine != HOST_MACHINE)
    return bad(f, "built for another machine (ELF machine %u, this one is %u)", (unsigned)eh.e_machine,
               (unsigned)HOST_MACHINE);
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return bad(f, "program header size %u", (unsigned)eh.e_phentsize);
  if (eh.e_phnum < 1 || eh.e_phnum > MAX_PHDRS) return bad(f, "%u program headers", (unsigned)eh.e_phnum);
  uint64_t ph_bytes = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
  if (eh.e_phoff > f->size || ph_bytes > f->size - eh.e_phoff)
    return bad(f, "the program headers (at %llu, %llu bytes) end beyond the file's %llu bytes",
               (unsigned long long)eh.e_phoff, (unsigned long long)ph_bytes, (unsigned long long)f->size);
  f->n_ph = eh.e_phnum;
  if (read_at(f, f->ph, ph_bytes, eh.e_phoff)) return bad(f, "cannot read the program headers");

  /* the loadable segments: inside the file, aligned, sorted, disjoint */
  const long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
  for (int i = 0; i < f->n_ph; i++) {
    const Elf64_Phdr *p = &f->ph[i];
    if (p->p_type != PT_LOAD) continue;
    if (p->p_offset > f->size || p->p_filesz > f->size - p->p_offset)
      return bad(f, "segment %d (bytes %llu..%llu of the file) ends beyond the file's %llu bytes", i,
                 (unsigned long long)p->p_offset, (unsigned long long)(p->p_offset + p->p_filesz),
                 (unsigned long long)f->size);
    if (p->p_filesz > p->p_memsz) return bad(f, "segment %d has more file bytes than memory", i);
    /* the loader reads the headers and the dynamic section through these
     * mappings: a segment it maps unreadable crashes it (glibc) */
    if (!(p->p_flags & PF_R) || (p->p_flags & ~(uint32_t)(PF_R | PF_W | PF_X)))
      return bad(f, "segment %d has the permissions 0x%x (not readable, or unknown bits)", i, (unsigned)p->p_flags);
    if (p->p_memsz > MAX_SPAN || p->p_vaddr > MAX_SPAN) return bad(f, "segment %d is too large", i);
    if (!is_pow2(p->p_align) || p->p_align % (uint64_t)page != 0 || (p->p_vaddr - p->p_offset) % p->p_align != 0)
      return bad(f, "segment %d is not aligned (align %llu)", i, (unsigned long long)p->p_align);
    if (f->n_load > 0) {
      const Elf64_Phdr *prev = f->load[f->n_load - 1];
      if (p->p_vaddr < prev->p_vaddr + prev->p_memsz) return bad(f, "segment %d overlaps or precedes another", i);
      if (p->p_offset < prev->p_offset + prev->p_filesz) return bad(f, "segment %d overlaps another in the file", i);
    }
    f->load[f->n_load++] = p;
  }
  if (f->n_load == 0) return bad(f, "no loadable segment");
  f->lo = f->load[0]->p_vaddr;
  f->hi = f->load[f->n_load - 1]->p_vaddr + f->load[f->n_load - 1]->p_memsz;
  if (f->hi - f->lo > MAX_SPAN) return bad(f, "the segments span too much memory");

  /* the other segments: their bytes in the file, their addresses loaded */
  for (int i = 0; i < f->n_ph; i++) {
    const Elf64_Phdr *p = &f->ph[i];
    if (p->p_type == PT_LOAD || p->p_type == PT_NULL || p->p_type == PT_GNU_STACK) continue;
    if (p->p_offset > f->size || p->p_filesz > f->size - p->p_offset)
      return bad(f, "segment %d (type 0x%x) ends beyond the file", i, (unsigned)p->p_type);
    /* RELRO may run to the end of its last page (lld); the loader only
     * mprotects it, and reports failure */
    uint64_t need = p->p_type == PT_GNU_RELRO ? 1 : p->p_memsz;
    if (p->p_memsz > 0 && !load_of(f, p->p_vaddr, need))
      return bad(f, "segment %d (type 0x%x) is not inside a loadable segment", i, (unsigned)p->p_type);
    /* a processor-specific segment the loader does not map (riscv64's
     * PT_RISCV_ATTRIBUTES: no memory, address 0) has only its file bytes */
    int file_only = p->p_type >= PT_LOPROC && p->p_type <= PT_HIPROC && p->p_memsz == 0;
    if (p->p_filesz > 0 && p->p_type != PT_TLS && p->p_type != PT_GNU_RELRO && !file_only &&
        file_off(f, p->p_vaddr, p->p_filesz) != (int64_t)p->p_offset)
      return bad(f, "segment %d (type 0x%x) is not where its loadable segment maps it", i, (unsigned)p->p_type);
  }
  return TFX_OK;
}

/* ---- the dynamic section and what it points to ---- */

typedef struct dyn_info {
  uint64_t val[DT_NUM];
  uint8_t has[DT_NUM];
  uint64_t gnu_hash, versym, verdef, verdefnum, verneed, verneednum, relacount;
  int has_gnu_hash, has_versym, has_verdef, has_verneed;
  uint64_t needed[64]; /* string offsets of DT_NEEDED, SONAME, RPATH, RUNPATH */
  int n_needed;
} dyn_info;

static int read_dynamic(elf_file *f, dyn_info *di) {
  memset(di, 0, sizeof *di);
  const Elf64_Phdr *dyn = NULL;
  for (int i = 0; i < f->n_ph; i++)
    if (f->ph[i].p_type == PT_DYNAMIC) {
      if (dyn) return bad(f, "two dynamic segments");
      dyn = &f->ph[i];
    }
  if (!dyn) return bad(f, "no dynamic segment");
  if (dyn->p_filesz < sizeof(Elf64_Dyn) || dyn->p_filesz % sizeof(Elf64_Dyn) || dyn->p_filesz > f->size)
    return bad(f, "a dynamic segment of %llu bytes", (unsigned long long)dyn->p_filesz);
  uint64_t n = dyn->p_filesz / sizeof(Elf64_Dyn);
  if (n > MAX_DYN) n = MAX_DYN;
  Elf64_Dyn *d = malloc(n * sizeof *d);
  if (!d) return tfx_rt_error(f->errbuf, f->errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory");
  if (read_at(f, d, n * sizeof *d, dyn->p_offset)) {
    free(d);
    return bad(f, "cannot read the dynamic section");
  }
  int ended = 0;
  for (uint64_t i = 0; i < n && !ended; i++) {
    int64_t tag = d[i].d_tag;
    uint64_t v = d[i].d_un.d_val;
    switch (tag) {
    case DT_NULL: ended = 1; break;
    case DT_NEEDED:
    case DT_SONAME:
    case DT_RPATH:
    case DT_RUNPATH:
      if (di->n_needed < 64)
        di->needed[di->n_needed++] = v;
      else {
        free(d);
        return bad(f, "too many DT_NEEDED entries");
      }
      break;
    case DT_GNU_HASH: di->gnu_hash = v, di->has_gnu_hash = 1; break;
    case DT_VERSYM: di->versym = v, di->has_versym = 1; break;
    case DT_VERDEF: di->verdef = v, di->has_verdef = 1; break;
    case DT_VERDEFNUM: di->verdefnum = v; break;
    case DT_VERNEED: di->verneed = v, di->has_verneed = 1; break;
    case DT_VERNEEDNUM: di->verneednum = v; break;
    case DT_RELACOUNT: di->relacount = v; break;
    default:
      if (tag >= 0 && tag < DT_NUM) {
        di->val[tag] = v;
        di->has[tag] = 1;
      }
    }
  }
  free(d);
  if (!ended) return bad(f, "the dynamic section has no end");
  return TFX_OK;
}

/* The GNU hash table: its size, and the number of symbols it covers. */
static int check_gnu_hash(elf_file *f, uint64_t addr, uint64_t *nsyms) {
  uint32_t h[4];
  int64_t off = file_off(f, addr, sizeof h);
  if (off < 0 || read_at(f, h, sizeof h, (uint64_t)off)) return bad(f, "the GNU hash table is outside the file");
  uint32_t nbuckets = h[0], symoffset = h[1], bloom = h[2], shift = h[3];
  if (nbuckets == 0 || !is_pow2(bloom) || shift >= 64 || nbuckets > (1u << 24) || bloom > (1u << 24))
    return bad(f, "a malformed GNU hash table");
  if (file_off(f, addr, 16 + (uint64_t)bloom * 8 + (uint64_t)nbuckets * 4) < 0)
    return bad(f, "the GNU hash table is outside the file");
  uint64_t buckets_addr = addr + 16 + (uint64_t)bloom * 8;
  uint32_t *b = read_vaddr(f, buckets_addr, (uint64_t)nbuckets * 4);
  if (!b) return bad(f, "the GNU hash table is outside the file");
  uint64_t top = 0; /* the largest symbol index a bucket starts at */
  for (uint32_t i = 0; i < nbuckets; i++) {
    if (b[i] && b[i] < symoffset) {
      free(b);
      return bad(f, "a GNU hash bucket below its first symbol");
    }
    if (b[i] > top) top = b[i];
  }
  free(b);
  uint64_t chain_addr = buckets_addr + (uint64_t)nbuckets * 4;
  uint64_t count = symoffset;
  if (top >= symoffset && top > 0) {
    /* the last chain ends at the last symbol */
    for (uint64_t i = top;; i++) {
      uint32_t c;
      int64_t co = file_off(f, chain_addr + (i - symoffset) * 4, 4);
      if (co < 0 || read_at(f, &c, 4, (uint64_t)co)) return bad(f, "a GNU hash chain runs outside the file");
      if (c & 1) {
        count = i + 1;
        break;
      }
      if (i - top > (1u << 24)) return bad(f, "a GNU hash chain without end");
    }
  }
  *nsyms = count;
  return TFX_OK;
}

static int check_strings(elf_file *f, const dyn_info *di, uint64_t strsz) {
  for (int i = 0; i < di->n_needed; i++)
    if (di->needed[i] >= strsz) return bad(f, "a library name outside the string table");
  return TFX_OK;
}

/* Version records: chains of fixed-size records, each with the offset of the
 * next (0 ends it), walked as the dynamic loader walks them. */
static int check_versions(elf_file *f, const dyn_info *di, uint64_t strsz, uint64_t nsyms, uint64_t *max_index) {
  *max_index = 0;
  if ((di->has_verneed || di->has_verdef) && !di->has_versym) return bad(f, "version records without symbol versions");
  if (di->has_verneed) {
    uint64_t a = di->verneed;
    for (uint64_t i = 0;; i++) {
      if (i >= MAX_VERSION_RECORDS) return bad(f, "too many version records");
      Elf64_Verneed vn;
      int64_t o = file_off(f, a, sizeof vn);
      if (o < 0 || read_at(f, &vn, sizeof vn, (uint64_t)o)) return bad(f, "a version record outside the file");
      if (vn.vn_file >= strsz) return bad(f, "a version name outside the string table");
      uint64_t x = a + vn.vn_aux;
      for (uint32_t j = 0; vn.vn_cnt > 0; j++) {
        if (j >= MAX_VERSION_RECORDS) return bad(f, "too many version records");
        Elf64_Vernaux ax;
        int64_t xo = file_off(f, x, sizeof ax);
        if (xo < 0 || read_at(f, &ax, sizeof ax, (uint64_t)xo)) return bad(f, "a version record outside the file");
        if (ax.vna_name >= strsz) return bad(f, "a version name outside the string table");
        if ((ax.vna_other & 0x7fffu) > *max_index) *max_index = ax.vna_other & 0x7fffu;
        if (ax.vna_next == 0) break;
        x += ax.vna_next;
      }
      if (vn.vn_next == 0) break;
      a += vn.vn_next;
    }
  }
  if (di->has_verdef) {
    uint64_t a = di->verdef;
    for (uint64_t i = 0;; i++) {
      if (i >= MAX_VERSION_RECORDS) return bad(f, "too many version records");
      Elf64_Verdef vd;
      int64_t o = file_off(f, a, sizeof vd);
      if (o < 0 || read_at(f, &vd, sizeof vd, (uint64_t)o)) return bad(f, "a version record outside the file");
      if ((vd.vd_ndx & 0x7fffu) > *max_index) *max_index = vd.vd_ndx & 0x7fffu;
      uint64_t x = a + vd.vd_aux;
      for (uint32_t j = 0;; j++) {
        if (j >= MAX_VERSION_RECORDS) return bad(f, "too many version records");
        Elf64_Verdaux ax;
        int64_t xo = file_off(f, x, sizeof ax);
        if (xo < 0 || read_at(f, &ax, sizeof ax, (uint64_t)xo)) return bad(f, "a version record outside the file");
        if (ax.vda_name >= strsz) return bad(f, "a version name outside the string table");
        if (ax.vda_next == 0 || j + 1 >= vd.vd_cnt) break;
        x += ax.vda_next;
      }
      if (vd.vd_next == 0) break;
      a += vd.vd_next;
    }
  }
  if (di->has_versym) {
    uint16_t *vs = read_vaddr(f, di->versym, nsyms * 2);
    if (!vs && nsyms) return bad(f, "the symbol versions are outside the file");
    uint64_t limit = *max_index > 1 ? *max_index : 1;
    for (uint64_t i = 0; i < nsyms; i++)
      if ((vs[i] & 0x7fffu) > limit) {
        unsigned v = vs[i] & 0x7fffu;
        free(vs);
        return bad(f, "symbol %llu has an undefined version index %u", (unsigned long long)i, v);
      }
    free(vs);
  }
  return TFX_OK;
}

static int is_exec(const Elf64_Phdr *p) { return p && (p->p_flags & PF_X); }

/* A relocation table: targets inside writable segments, symbols in range,
 * relative addends inside the object (and code for the init/fini arrays). */
static int check_relocs(elf_file *f, const dyn_info *di, uint64_t addr, uint64_t bytes, uint64_t nsyms,
                        uint64_t n_relative) {
  if (bytes % sizeof(Elf64_Rela)) return bad(f, "a relocation table of %llu bytes", (unsigned long long)bytes);
  if (bytes == 0) return TFX_OK;
  Elf64_Rela *r = read_vaddr(f, addr, bytes);
  if (!r) return bad(f, "a relocation table is outside the file");
  int rc = TFX_OK;
  uint64_t n = bytes / sizeof *r;
  for (uint64_t i = 0; i < n && rc == TFX_OK; i++) {
    const Elf64_Phdr *t = load_of(f, r[i].r_offset, 8);
    uint64_t sym = ELF64_R_SYM(r[i].r_info);
    if (!t || !(t->p_flags & PF_W))
      rc = bad(f, "relocation %llu writes outside the writable segments", (unsigned long long)i);
    else if (sym >= nsyms)
      rc = bad(f, "relocation %llu names symbol %llu of %llu", (unsigned long long)i, (unsigned long long)sym,
               (unsigned long long)nsyms);
#if defined(HOST_R_RELATIVE)
    /* the loader applies the first DT_RELACOUNT as relative ones, asserting their type */
    else if (i < n_relative && ELF64_R_TYPE(r[i].r_info) != HOST_R_RELATIVE)
      rc = bad(f, "relocation %llu is counted as relative but is not", (unsigned long long)i);
    else if (ELF64_R_TYPE(r[i].r_info) == HOST_R_RELATIVE || ELF64_R_TYPE(r[i].r_info) == HOST_R_IRELATIVE) {
      uint64_t a = (uint64_t)r[i].r_addend;
      int in_init = 0;
      static const int arrays[3][2] = {
          {DT_INIT_ARRAY, DT_INIT_ARRAYSZ}, {DT_FINI_ARRAY, DT_FINI_ARRAYSZ}, {DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ}};
      for (int k = 0; k < 3; k++)
        if (di->has[arrays[k][0]] && r[i].r_offset >= di->val[arrays[k][0]] &&
            r[i].r_offset - di->val[arrays[k][0]] < di->val[arrays[k][1]])
          in_init = 1;
      if (a < f->lo || a > f->hi)
        rc = bad(f, "relocation %llu points outside the library", (unsigned long long)i);
      else if ((in_init || ELF64_R_TYPE(r[i].r_info) == HOST_R_IRELATIVE) && !is_exec(load_of(f, a, 1)))
        rc = bad(f, "relocation %llu makes an initializer point at data", (unsigned long long)i);
    }
#else
    (void)di;
    (void)n_relative;
#endif
  }
  free(r);
  return rc;
}

/* One word a RELR relocation rebases: writable, and its implicit addend
 * (the word in the file) inside the library. */
static int relr_word_ok(elf_file *f, uint64_t w) {
  const Elf64_Phdr *t = load_of(f, w, 8);
  if (!t || !(t->p_flags & PF_W)) return 0;
  uint64_t v = 0;
  int64_t o = file_off(f, w, 8);
  if (o >= 0 && read_at(f, &v, 8, (uint64_t)o)) return 0;
  return v >= f->lo && v <= f->hi;
}

/* RELR relative relocations: an address, then bitmaps of the 63 words after
 * it; every word they name must be writable. */
static int check_relr(elf_file *f, uint64_t addr, uint64_t bytes) {
  if (bytes % 8) return bad(f, "a RELR table of %llu bytes", (unsigned long long)bytes);
  if (bytes == 0) return TFX_OK;
  uint64_t *r = read_vaddr(f, addr, bytes);
  if (!r) return bad(f, "a RELR table is outside the file");
  uint64_t where = 0;
  int rc = TFX_OK, have = 0;
  for (uint64_t i = 0; i < bytes / 8 && rc == TFX_OK; i++) {
    if (!(r[i] & 1)) {
      where = r[i];
      have = 1;
      if (!relr_word_ok(f, where)) rc = bad(f, "a RELR relocation outside the writable segments or the library");
      where += 8;
    } else {
      if (!have) rc = bad(f, "a RELR bitmap without an address");
      for (int b = 1; b < 64 && rc == TFX_OK; b++) {
        if (((r[i] >> b) & 1) && !relr_word_ok(f, where + (uint64_t)(b - 1) * 8))
          rc = bad(f, "a RELR relocation outside the writable segments or the library");
      }
      where += 63 * 8;
    }
  }
  free(r);
  return rc;
}

/* Whether the RELR table relocates the word at slot. */
static int relr_covers(elf_file *f, const dyn_info *di, uint64_t slot) {
  if (!di->has[DT_RELR] || di->val[DT_RELRSZ] % 8) return 0;
  uint64_t *r = read_vaddr(f, di->val[DT_RELR], di->val[DT_RELRSZ]);
  uint64_t where = 0;
  int found = 0;
  for (uint64_t i = 0; r && i < di->val[DT_RELRSZ] / 8 && !found; i++) {
    if (!(r[i] & 1)) {
      found = r[i] == slot;
      where = r[i] + 8;
    } else {
      for (int b = 1; b < 64 && !found; b++) found = ((r[i] >> b) & 1) && where + (uint64_t)(b - 1) * 8 == slot;
      where += 63 * 8;
    }
  }
  free(r);
  return found;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* PT_GNU_RELRO: the loader makes [page of its start, page of its end)
 * read-only after relocation. It must stay within its segment's last page
 * and protect none of the sections written later (.data*, .bss*,
 * .tm_clone_table; .data.rel.ro is relocated, then read-only). */
static int check_relro(elf_file *f) {
  const long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
  const uint64_t pg = (uint64_t)page;
  for (int i = 0; i < f->n_ph; i++) {
    const Elf64_Phdr *r = &f->ph[i];
    if (r->p_type != PT_GNU_RELRO || r->p_memsz == 0) continue;
    const Elf64_Phdr *p = load_of(f, r->p_vaddr, 1);
    if (!p) return bad(f, "the read-only-after-relocation range is not inside a loadable segment");
    uint64_t lo = r->p_vaddr / pg * pg, hi = (r->p_vaddr + r->p_memsz) / pg * pg;
    uint64_t seg_end = (p->p_vaddr + p->p_memsz + pg - 1) / pg * pg;
    if (r->p_vaddr + r->p_memsz < r->p_vaddr || r->p_vaddr + r->p_memsz > seg_end)
      return bad(f, "the read-only-after-relocation range runs past its segment");
    for (int k = 1; k < f->n_sh; k++) {
      const Elf64_Shdr *x = &f->sh[k];
      if ((x->sh_flags & (SHF_ALLOC | SHF_WRITE)) != (SHF_ALLOC | SHF_WRITE) || x->sh_size == 0) continue;
      const char *name = x->sh_name < f->names_size ? f->names + x->sh_name : "";
      int data = (starts_with(name, ".data") && !starts_with(name, ".data.rel.ro")) || starts_with(name, ".bss") ||
                 starts_with(name, ".tm_clone_table");
      if (!data) continue;
      if (x->sh_addr < hi && x->sh_addr + x->sh_size > lo)
        return bad(f, "the read-only-after-relocation range covers the writable section %s", name);
    }
  }
  return TFX_OK;
}

/* The section headers (a model is linked with them; the loader ignores them,
 * which is why they help): read and checked once, kept in f. */
static int load_sections(elf_file *f) {
  Elf64_Ehdr eh;
  if (read_at(f, &eh, sizeof eh, 0)) return bad(f, "cannot read the ELF header");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum < 1 || eh.e_shnum >= SHN_LORESERVE ||
      eh.e_shstrndx >= eh.e_shnum)
    return bad(f, "malformed section headers");
  uint64_t bytes = (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr);
  if (eh.e_shoff > f->size || bytes > f->size - eh.e_shoff) return bad(f, "the section headers end beyond the file");
  f->sh = malloc(bytes);
  if (!f->sh) return tfx_rt_error(f->errbuf, f->errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory");
  f->n_sh = eh.e_shnum;
  if (read_at(f, f->sh, bytes, eh.e_shoff)) return bad(f, "cannot read the section headers");
  const Elf64_Shdr *ns = &f->sh[eh.e_shstrndx];
  if (ns->sh_size == 0 || ns->sh_size > 1 << 20 || ns->sh_offset > f->size || ns->sh_size > f->size - ns->sh_offset)
    return bad(f, "the section names are outside the file");
  f->names_size = ns->sh_size;
  if (!(f->names = malloc(ns->sh_size)) || read_at(f, f->names, ns->sh_size, ns->sh_offset))
    return bad(f, "cannot read the section names");
  if (f->names[ns->sh_size - 1] != 0) return bad(f, "the section names are not terminated");
  /* every allocated section is where the segments map it (code in code) */
  for (int i = 1; i < f->n_sh; i++) {
    const Elf64_Shdr *x = &f->sh[i];
    if (!(x->sh_flags & SHF_ALLOC) || x->sh_size == 0) continue;
    const Elf64_Phdr *p = load_of(f, x->sh_addr, x->sh_size);
    if (!p || (x->sh_type != SHT_NOBITS && file_off(f, x->sh_addr, x->sh_size) != (int64_t)x->sh_offset))
      return bad(f, "section %d is not where the segments load it", i);
    if ((x->sh_flags & SHF_EXECINSTR) && !(p->p_flags & PF_X))
      return bad(f, "section %d holds code in a segment that is not executable", i);
  }
  return check_relro(f);
}

static const Elf64_Shdr *section_named(const elf_file *f, const char *name) {
  for (int i = 0; i < f->n_sh; i++)
    if (f->sh[i].sh_name < f->names_size && strcmp(f->names + f->sh[i].sh_name, name) == 0) return &f->sh[i];
  return NULL;
}

/* 1 when addr starts a function of the .eh_frame_hdr search table, 0 when it
 * does not, -1 when there is no table tfxc can read. */
static int in_unwind_table(elf_file *f, uint64_t addr) {
  const Elf64_Phdr *hp = NULL;
  for (int i = 0; i < f->n_ph; i++)
    if (f->ph[i].p_type == PT_GNU_EH_FRAME) hp = &f->ph[i];
  uint8_t h[12];
  int64_t o = hp ? file_off(f, hp->p_vaddr, sizeof h) : -1;
  if (o < 0 || read_at(f, h, sizeof h, (uint64_t)o)) return -1;
  /* version 1; eh_frame_ptr sdata4; fde_count udata4; table datarel sdata4 */
  if (h[0] != 1 || (h[1] & 0x0f) != 0x0b || h[2] != 0x03 || h[3] != 0x3b) return -1;
  uint32_t count;
  memcpy(&count, h + 8, 4);
  if (count > (1u << 22)) return -1;
  int32_t *t = read_vaddr(f, hp->p_vaddr + 12, (uint64_t)count * 8);
  if (!t) return -1;
  int found = 0;
  for (uint32_t i = 0; i < count && !found; i++) found = hp->p_vaddr + (uint64_t)(int64_t)t[2 * i] == addr;
  free(t);
  return found;
}

/* Code the loader calls: in an executable segment, and the start of a code
 * section or of a function the unwind table lists (when there is one). */
static int callable(elf_file *f, uint64_t addr) {
  if (!is_exec(load_of(f, addr, 1))) return 0;
  for (int i = 0; i < f->n_sh; i++)
    if ((f->sh[i].sh_flags & SHF_EXECINSTR) && f->sh[i].sh_addr == addr) return 1;
  return in_unwind_table(f, addr) != 0;
}

/* The number of dynamic symbols by the .dynsym section, or -1. */
static int64_t dynsym_count(const elf_file *f, uint64_t symtab) {
  for (int i = 0; i < f->n_sh; i++)
    if (f->sh[i].sh_type == SHT_DYNSYM && f->sh[i].sh_addr == symtab) return (int64_t)(f->sh[i].sh_size / 24);
  return -1;
}

/* Whether the slot at vaddr is set by a relocation to code: a
 * relative one of the RELA table, a RELR one (its implicit addend is the word
 * in the file), or an absolute one naming a symbol defined here. */
static int slot_relocated(elf_file *f, const dyn_info *di, uint64_t slot) {
  if (relr_covers(f, di, slot)) {
    uint64_t v;
    int64_t o = file_off(f, slot, 8);
    return o >= 0 && read_at(f, &v, 8, (uint64_t)o) == 0 && is_exec(load_of(f, v, 1));
  }
  if (!di->has[DT_RELA] || di->val[DT_RELASZ] % sizeof(Elf64_Rela)) return 0;
  Elf64_Rela *r = read_vaddr(f, di->val[DT_RELA], di->val[DT_RELASZ]);
  int found = 0;
  for (uint64_t i = 0; r && i < di->val[DT_RELASZ] / sizeof *r && !found; i++) {
    if (r[i].r_offset != slot) continue;
#if defined(HOST_R_RELATIVE)
    uint32_t type = (uint32_t)ELF64_R_TYPE(r[i].r_info);
    if (type == HOST_R_RELATIVE) {
      found = is_exec(load_of(f, (uint64_t)r[i].r_addend, 1));
    } else if (type == HOST_R_64) {
      Elf64_Sym sym;
      int64_t so = file_off(f, di->val[DT_SYMTAB] + ELF64_R_SYM(r[i].r_info) * sizeof sym, sizeof sym);
      found = so >= 0 && read_at(f, &sym, sizeof sym, (uint64_t)so) == 0 && sym.st_shndx != SHN_UNDEF &&
              is_exec(load_of(f, sym.st_value + (uint64_t)r[i].r_addend, 1));
    }
#else
    found = 1;
#endif
  }
  free(r);
  return found;
}

/* Where DT_INIT, DT_FINI and the initializer arrays point: code, and the
 * array sections the linker made, every slot set by a checked relocation. */
static int check_initializers(elf_file *f, const dyn_info *di) {
  if (di->has[DT_INIT] && !callable(f, di->val[DT_INIT])) return bad(f, "DT_INIT is not the start of code");
  if (di->has[DT_FINI] && !callable(f, di->val[DT_FINI])) return bad(f, "DT_FINI is not the start of code");
  static const struct {
    int tag, size_tag;
    const char *name;
  } want[] = {{DT_INIT_ARRAY, DT_INIT_ARRAYSZ, ".init_array"},
              {DT_FINI_ARRAY, DT_FINI_ARRAYSZ, ".fini_array"},
              {DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, ".preinit_array"}};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    if (!di->has[want[k].tag]) continue;
    const Elf64_Shdr *x = section_named(f, want[k].name);
    if (!x || x->sh_addr != di->val[want[k].tag] || x->sh_size != di->val[want[k].size_tag])
      return bad(f, "the dynamic section's %s is not the %s section", want[k].name + 1, want[k].name);
    for (uint64_t o = 0; o < di->val[want[k].size_tag]; o += 8)
      if (!slot_relocated(f, di, di->val[want[k].tag] + o)) return bad(f, "an initializer is not relocated to code");
  }
  return TFX_OK;
}

static int check_dynamic(elf_file *f) {
  dyn_info di;
  int rc = read_dynamic(f, &di);
  if (rc != TFX_OK) return rc;
  if ((rc = load_sections(f)) != TFX_OK) return rc;
  if (!di.has[DT_STRTAB] || !di.has[DT_SYMTAB] || !di.has[DT_STRSZ]) return bad(f, "no dynamic string or symbol table");
  if (!di.has[DT_HASH] && !di.has_gnu_hash) return bad(f, "no symbol hash table");
  if (di.has[DT_SYMENT] && di.val[DT_SYMENT] != sizeof(Elf64_Sym))
    return bad(f, "a symbol size of %llu", (unsigned long long)di.val[DT_SYMENT]);
  if (di.has[DT_REL] || di.has[DT_RELSZ] || di.has[DT_RELENT]) return bad(f, "REL relocations (expected RELA)");
  if (di.has[DT_RELA] && (!di.has[DT_RELAENT] || di.val[DT_RELAENT] != sizeof(Elf64_Rela)))
    return bad(f, "a relocation table without its entry size");
  if (di.has[DT_RELAENT] && di.val[DT_RELAENT] != sizeof(Elf64_Rela)) return bad(f, "a relocation size mismatch");
  if (di.has[DT_RELR] && (!di.has[DT_RELRSZ] || !di.has[DT_RELRENT] || di.val[DT_RELRENT] != 8))
    return bad(f, "a RELR relocation table without its sizes");
  if (di.has[DT_RELA] != di.has[DT_RELASZ]) return bad(f, "a relocation table without its size");
  if (di.has[DT_JMPREL] && (!di.has[DT_PLTRELSZ] || !di.has[DT_PLTREL] || di.val[DT_PLTREL] != DT_RELA))
    return bad(f, "a PLT relocation table without its size or kind");
  if (di.has[DT_PLTREL] && (!di.has[DT_JMPREL] || !di.has[DT_PLTRELSZ]))
    return bad(f, "a PLT relocation kind without its table");
  if (di.relacount && !di.has[DT_RELA]) return bad(f, "a relative relocation count without relocations");
  if (di.has[DT_PLTREL] && di.val[DT_PLTREL] != DT_RELA)
    return bad(f, "PLT relocations of kind %llu", (unsigned long long)di.val[DT_PLTREL]);
  if (di.has[DT_TEXTREL]) return bad(f, "text relocations");

  /* the string table, NUL-terminated */
  uint64_t strsz = di.val[DT_STRSZ];
  if (strsz == 0 || strsz > f->size) return bad(f, "a string table of %llu bytes", (unsigned long long)strsz);
  int64_t so = file_off(f, di.val[DT_STRTAB], strsz);
  char last = 1;
  if (so < 0 || read_at(f, &last, 1, (uint64_t)so + strsz - 1)) return bad(f, "the string table is outside the file");
  if (last != 0) return bad(f, "the string table is not terminated");
  if ((rc = check_strings(f, &di, strsz)) != TFX_OK) return rc;

  /* the number of symbols, from a hash table */
  uint64_t nsyms = 0;
  if (di.has_gnu_hash) {
    if ((rc = check_gnu_hash(f, di.gnu_hash, &nsyms)) != TFX_OK) return rc;
  }
  if (di.has[DT_HASH]) {
    uint32_t hh[2];
    int64_t ho = file_off(f, di.val[DT_HASH], sizeof hh);
    if (ho < 0 || read_at(f, hh, sizeof hh, (uint64_t)ho)) return bad(f, "the hash table is outside the file");
    if (hh[0] == 0 || file_off(f, di.val[DT_HASH], 8 + ((uint64_t)hh[0] + hh[1]) * 4) < 0)
      return bad(f, "a malformed hash table");
    if (di.has_gnu_hash && hh[1] != nsyms) return bad(f, "the two hash tables disagree on the symbols");
    nsyms = hh[1];
    uint32_t *t = read_vaddr(f, di.val[DT_HASH] + 8, ((uint64_t)hh[0] + hh[1]) * 4);
    if (!t) return bad(f, "the hash table is outside the file");
    for (uint64_t i = 0; i < (uint64_t)hh[0] + hh[1]; i++)
      if (t[i] >= hh[1]) {
        uint32_t named = t[i];
        free(t);
        return bad(f, "a hash chain names symbol %u of %u", named, hh[1]);
      }
    free(t);
  }
  /* the hash tables only bound the symbols they hash; .dynsym has them all */
  int64_t by_section = dynsym_count(f, di.val[DT_SYMTAB]);
  if (by_section >= 0) {
    if ((uint64_t)by_section < nsyms) return bad(f, "the hash table names more symbols than .dynsym holds");
    nsyms = (uint64_t)by_section;
  }
  if (nsyms > (1u << 24)) return bad(f, "%llu symbols", (unsigned long long)nsyms);
  Elf64_Sym *syms = read_vaddr(f, di.val[DT_SYMTAB], nsyms * sizeof(Elf64_Sym));
  if (!syms && nsyms) return bad(f, "the symbol table is outside the file");
  for (uint64_t i = 0; i < nsyms; i++) {
    const Elf64_Sym *s = &syms[i];
    if (s->st_name >= strsz)
      rc = bad(f, "symbol %llu has its name outside the string table", (unsigned long long)i);
    else if (s->st_shndx != SHN_UNDEF && s->st_shndx != SHN_ABS && ELF64_ST_TYPE(s->st_info) != STT_TLS &&
             (s->st_value < f->lo || s->st_value > f->hi))
      rc = bad(f, "symbol %llu is defined outside the library", (unsigned long long)i);
    else if (ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC && s->st_shndx != SHN_UNDEF &&
             !is_exec(load_of(f, s->st_value, 1)))
      rc = bad(f, "symbol %llu is an indirect function outside the code", (unsigned long long)i);
    if (rc != TFX_OK) break;
  }
  free(syms);
  if (rc != TFX_OK) return rc;

  uint64_t max_version;
  if ((rc = check_versions(f, &di, strsz, nsyms, &max_version)) != TFX_OK) return rc;

  /* code the loader calls, the arrays it walks, the tables it applies */
  static const int arrays[3][2] = {
      {DT_INIT_ARRAY, DT_INIT_ARRAYSZ}, {DT_FINI_ARRAY, DT_FINI_ARRAYSZ}, {DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ}};
  for (int k = 0; k < 3; k++) {
    if (di.has[arrays[k][0]] != di.has[arrays[k][1]] && di.has[arrays[k][0]])
      return bad(f, "an initializer array without its size");
    if (di.has[arrays[k][0]] && (di.val[arrays[k][1]] % 8 || !load_of(f, di.val[arrays[k][0]], di.val[arrays[k][1]])))
      return bad(f, "an initializer array outside the library");
  }
  if (di.has[DT_RELA] && (rc = check_relocs(f, &di, di.val[DT_RELA], di.val[DT_RELASZ], nsyms, di.relacount)) != TFX_OK)
    return rc;
  if (di.has[DT_JMPREL] && (rc = check_relocs(f, &di, di.val[DT_JMPREL], di.val[DT_PLTRELSZ], nsyms, 0)) != TFX_OK)
    return rc;
  if (di.has[DT_RELR] && (rc = check_relr(f, di.val[DT_RELR], di.val[DT_RELRSZ])) != TFX_OK) return rc;
  if (di.has[DT_PLTGOT] && !load_of(f, di.val[DT_PLTGOT], 24)) return bad(f, "the GOT is outside the library");
  return check_initializers(f, &di);
}

int tfx_rt_check_elf(int fd, uint64_t size, const char *path, char *errbuf, size_t errlen) {
  elf_file *f = calloc(1, sizeof *f);
  if (!f) return tfx_rt_error(errbuf, errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory");
  f->fd = fd;
  f->size = size;
  f->path = path;
  f->errbuf = errbuf;
  f->errlen = errlen;
  int rc = check_headers(f);
  if (rc == TFX_OK) rc = check_dynamic(f);
  free(f->sh);
  free(f->names);
  free(f);
  return rc;
}

/* The seal (tfx/seal.h): checked first, over everything but the weights, so
 * that the checks above and the dynamic loader only ever see the bytes tfxc
 * linked. The structural checks stay: they are what keeps the runtime safe
 * on a file sealed by something else (tests/fuzz/fuzz_model.c runs them on
 * every mutation, sealed or not). */
int tfx_rt_check_seal(int fd, uint64_t size, const char *path, char *errbuf, size_t errlen) {
  tfx_seal seal;
  if (tfx_seal_read(fd, size, &seal) != 0)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "'%s' is not a loadable model (truncated or corrupted?): no tfxc seal at its end (a model "
                        "tfxc did not link, or one cut short or changed since: `tfxc seal` seals a model linked "
                        "by other means)",
                        path);
  uint64_t sum = tfx_seal_checksum(fd, size, seal.skip_offset, seal.skip_bytes);
  if (sum != seal.checksum)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "'%s' is not a loadable model (truncated or corrupted?): its contents differ from its seal "
                        "(checksum %016llx, the seal records %016llx)",
                        path, (unsigned long long)sum, (unsigned long long)seal.checksum);
  return TFX_OK;
}

/* ---- the loaded library ---- */

typedef struct seg {
  uintptr_t lo, hi;
  int exec;
} seg;

typedef struct segs {
  uintptr_t base;
  seg s[MAX_PHDRS];
  int n, found;
} segs;

static int collect(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  segs *g = arg;
  if ((uintptr_t)info->dlpi_addr != g->base) return 0;
  for (int i = 0; i < info->dlpi_phnum && g->n < MAX_PHDRS; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    if (p->p_type != PT_LOAD) continue;
    g->s[g->n].lo = (uintptr_t)info->dlpi_addr + (uintptr_t)p->p_vaddr;
    g->s[g->n].hi = g->s[g->n].lo + (uintptr_t)p->p_memsz;
    g->s[g->n].exec = (p->p_flags & PF_X) != 0;
    g->n++;
  }
  g->found = 1;
  return 1;
}

/* [p, p + n) inside one segment (executable when exec). */
static int inside(const segs *g, const void *p, uint64_t n, int exec) {
  uintptr_t a = (uintptr_t)p;
  for (int i = 0; i < g->n; i++)
    if (a >= g->s[i].lo && a <= g->s[i].hi && n <= g->s[i].hi - a && (!exec || g->s[i].exec)) return 1;
  return 0;
}

/* A NUL-terminated string inside one segment. */
static int string_inside(const segs *g, const char *p) {
  uintptr_t a = (uintptr_t)p;
  for (int i = 0; i < g->n; i++)
    if (a >= g->s[i].lo && a < g->s[i].hi) return memchr(p, 0, g->s[i].hi - a) != NULL;
  return 0;
}

int tfx_rt_check_loaded(void *handle, const tfx_model_desc *d, const char *path, char *errbuf, size_t errlen) {
  struct link_map *lm = NULL;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INTERNAL, "cannot inspect the loaded '%s'", path);
  segs *g = calloc(1, sizeof *g);
  if (!g) return tfx_rt_error(errbuf, errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory");
  g->base = (uintptr_t)lm->l_addr;
  dl_iterate_phdr(collect, g);
  const char *what = NULL;
  if (!g->found)
    what = "the library's segments were not found";
  else if (!inside(g, d, sizeof *d, 0))
    what = "the descriptor is not inside the library";
  else if (d->magic != TFX_DESC_MAGIC || d->abi_version != TFX_ABI_VERSION)
    what = NULL; /* validate says which */
  else if (!string_inside(g, d->name))
    what = "the model name is not a string inside the library";
  else if (d->n_entries < 1 || d->n_entries > TFX_RT_MAX_ENTRIES)
    what = NULL; /* validate says so */
  else if (!inside(g, d->entries, (uint64_t)d->n_entries * sizeof *d->entries, 0))
    what = "the entry table is not inside the library";
  else if (d->weights_bytes > 0 && !inside(g, d->weights, d->weights_bytes, 0))
    what = "the weights blob is not inside the library";
  else if (d->abi_version == TFX_ABI_VERSION && d->tokenizer_bytes > 0 &&
           !inside(g, d->tokenizer, d->tokenizer_bytes, 0))
    what = "the embedded tokenizer is not inside the library";
  else if (d->abi_version == TFX_ABI_VERSION && d->n_inputs >= 2 && d->n_inputs <= TFX_MAX_MODEL_INPUTS &&
           !inside(g, d->inputs, (uint64_t)d->n_inputs * sizeof *d->inputs, 0))
    what = "the input table is not inside the library";
  for (int32_t i = 0; !what && d->magic == TFX_DESC_MAGIC && d->abi_version == TFX_ABI_VERSION && d->n_inputs >= 2 &&
                      d->n_inputs <= TFX_MAX_MODEL_INPUTS && i < d->n_inputs;
       i++)
    if (!string_inside(g, d->inputs[i].name)) what = "an input name is not a string inside the library";
  for (int32_t i = 0; !what && d->magic == TFX_DESC_MAGIC && d->abi_version == TFX_ABI_VERSION && d->n_entries >= 1 &&
                      d->n_entries <= TFX_RT_MAX_ENTRIES && i < d->n_entries;
       i++) {
    const tfx_entry_desc *e = &d->entries[i];
    if (!string_inside(g, e->name))
      what = "an entry name is not a string inside the library";
    else if (!inside(g, e->fn, 1, 1))
      what = "an entry function is not code of the library";
    else if (e->n_args < 1 || e->n_args > TFX_RT_MAX_ARGS)
      what = NULL; /* validate says so */
    else if (!inside(g, e->arg_kinds, (uint64_t)e->n_args * sizeof *e->arg_kinds, 0))
      what = "an entry's argument kinds are not inside the library";
  }
  free(g);
  if (what)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "'%s' has a malformed model descriptor: %s", path, what);
  return TFX_OK;
}
