/* backend/elf_blob.c — a minimal writer of relocatable ELF64 little-endian
 * objects for the target description's machine (tfx_cg_elf_id: e_machine,
 * e_flags and OS ABI as LLVM writes them for the target) holding one blob of
 * data: section .rodata.tfx_weights (SHT_PROGBITS,
 * SHF_ALLOC, 64-byte aligned), an empty .note.GNU-stack (non-executable
 * stack), and a global hidden STT_OBJECT symbol naming the blob. The data is
 * streamed to the file, never copied or handed to LLVM. On x86-64 a blob of
 * 1 GiB or more is a large section instead (.lrodata.tfx_weights,
 * SHF_X86_64_LARGE): the linker places it after .data and .bss, so the
 * 32-bit PC-relative references between code and data (crt files, the
 * runtime) do not span the weights (a 4.4 GB TinyLlama failed to link with
 * "relocation truncated to fit"); the code reaches the blob only through the
 * descriptor's 64-bit pointer.
 *
 * It also writes the blob's reservation: the same symbol and section as
 * SHT_NOBITS, with no data, which elf_fill.c fills once `ld -r` has
 * combined the objects; or, for a shared library, in a large section (x86-64
 * only), which the linker places at the end of the last segment. Either way
 * the weights are written once, never copied by the linker (#17: ld copying a
 * 4.4 GB section was half of the TinyLlama compile). */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cg.h"

enum { SEC_NULL, SEC_DATA, SEC_STACK, SEC_SYMTAB, SEC_STRTAB, SEC_SHSTRTAB, SEC_COUNT };

#define LARGE_BLOB ((size_t)1 << 30) /* from this size on, an x86-64 large section */
#ifndef SHF_X86_64_LARGE
#define SHF_X86_64_LARGE 0x10000000
#endif

static int write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1; }

static int pad_to(FILE *f, uint64_t *off, uint64_t align) {
  static const char zeros[64];
  uint64_t pad = (align - *off % align) % align;
  if (write_all(f, zeros, (size_t)pad)) return -1;
  *off += pad;
  return 0;
}

/* The object; with reserve, the section is SHT_NOBITS (no data written). */
static int write_blob(const char *path, const tfx_cg_elf_id *elf, const char *symbol, const uint8_t *data, size_t bytes,
                      int reserve, char *err, size_t errlen) {
  if (bytes > 0 && !data && !reserve) return tfx_errf(err, errlen, "backend: no weights data to write");
  if (!elf || elf->machine == EM_NONE)
    return tfx_errf(err, errlen,
                    "backend: the target's objects are not 64-bit little-endian ELF; tfxc writes the weights "
                    "only into such objects");
  /* string tables */
  char strtab[256];
  size_t sym_len = strlen(symbol);
  if (sym_len + 2 > sizeof strtab) return tfx_errf(err, errlen, "backend: symbol name too long");
  strtab[0] = 0;
  memcpy(strtab + 1, symbol, sym_len + 1);
  size_t strtab_size = sym_len + 2;
  static const char shstrtab[] =
      "\0.rodata.tfx_weights\0.note.GNU-stack\0.symtab\0.strtab\0.shstrtab\0.lrodata.tfx_weights";
  const uint32_t n_stack = 21, n_symtab = 37, n_strtab = 45, n_shstrtab = 53;
  if (reserve == TFX_CG_RESERVE_SHARED && elf->machine != EM_X86_64)
    return tfx_errf(err, errlen, "backend: a weights reservation in a shared library needs x86-64's large sections");
  int large = elf->machine == EM_X86_64 && (bytes >= LARGE_BLOB || reserve == TFX_CG_RESERVE_SHARED);
  const uint32_t n_data = large ? 63 : 1;

  Elf64_Sym syms[3];
  memset(syms, 0, sizeof syms);
  syms[1].st_info = ELF64_ST_INFO(STB_LOCAL, STT_SECTION);
  syms[1].st_shndx = SEC_DATA;
  syms[2].st_name = 1;
  syms[2].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
  syms[2].st_other = STV_HIDDEN;
  syms[2].st_shndx = SEC_DATA;
  syms[2].st_value = 0;
  syms[2].st_size = bytes;

  /* layout */
  uint64_t off_data = sizeof(Elf64_Ehdr); /* 64: already 64-aligned */
  uint64_t file_bytes = reserve ? 0 : bytes;
  uint64_t off_symtab = (off_data + file_bytes + 7) / 8 * 8;
  uint64_t off_strtab = off_symtab + sizeof syms;
  uint64_t off_shstrtab = off_strtab + strtab_size;
  uint64_t off_sh = (off_shstrtab + sizeof shstrtab + 7) / 8 * 8;

  Elf64_Ehdr eh;
  memset(&eh, 0, sizeof eh);
  memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_ident[EI_OSABI] = elf->osabi;
  eh.e_type = ET_REL;
  eh.e_machine = elf->machine;
  eh.e_flags = elf->flags;
  eh.e_version = EV_CURRENT;
  eh.e_shoff = off_sh;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = SEC_COUNT;
  eh.e_shstrndx = SEC_SHSTRTAB;

  Elf64_Shdr sh[SEC_COUNT];
  memset(sh, 0, sizeof sh);
  sh[SEC_DATA] = (Elf64_Shdr){.sh_name = n_data,
                              .sh_type = reserve ? SHT_NOBITS : SHT_PROGBITS,
                              .sh_flags = SHF_ALLOC | (large ? SHF_X86_64_LARGE : 0),
                              .sh_offset = off_data,
                              .sh_size = bytes,
                              .sh_addralign = 64};
  sh[SEC_STACK] = (Elf64_Shdr){.sh_name = n_stack, .sh_type = SHT_PROGBITS, .sh_offset = off_data, .sh_addralign = 1};
  sh[SEC_SYMTAB] = (Elf64_Shdr){.sh_name = n_symtab,
                                .sh_type = SHT_SYMTAB,
                                .sh_offset = off_symtab,
                                .sh_size = sizeof syms,
                                .sh_link = SEC_STRTAB,
                                .sh_info = 2, /* first global */
                                .sh_addralign = 8,
                                .sh_entsize = sizeof(Elf64_Sym)};
  sh[SEC_STRTAB] = (Elf64_Shdr){
      .sh_name = n_strtab, .sh_type = SHT_STRTAB, .sh_offset = off_strtab, .sh_size = strtab_size, .sh_addralign = 1};
  sh[SEC_SHSTRTAB] = (Elf64_Shdr){.sh_name = n_shstrtab,
                                  .sh_type = SHT_STRTAB,
                                  .sh_offset = off_shstrtab,
                                  .sh_size = sizeof shstrtab,
                                  .sh_addralign = 1};

  FILE *f = fopen(path, "wb");
  if (!f) return tfx_errf(err, errlen, "backend: cannot create %s: %s", path, strerror(errno));
  uint64_t off = off_data;
  int bad = write_all(f, &eh, sizeof eh) || write_all(f, data, (size_t)file_bytes);
  off += file_bytes;
  bad = bad || pad_to(f, &off, 8) || write_all(f, syms, sizeof syms) || write_all(f, strtab, strtab_size) ||
        write_all(f, shstrtab, sizeof shstrtab);
  off = off_shstrtab + sizeof shstrtab;
  bad = bad || pad_to(f, &off, 8) || write_all(f, sh, sizeof sh);
  if (fclose(f) || bad) return tfx_errf(err, errlen, "backend: writing %s failed: %s", path, strerror(errno));
  return 0;
}

int tfx_cg_write_blob_object(const char *path, const tfx_cg_elf_id *elf, const char *symbol, const uint8_t *data,
                             size_t bytes, char *err, size_t errlen) {
  return write_blob(path, elf, symbol, data, bytes, 0, err, errlen);
}

int tfx_cg_write_blob_reservation(const char *path, const tfx_cg_elf_id *elf, const char *symbol, size_t bytes,
                                  tfx_cg_reserve_for what, char *err, size_t errlen) {
  return write_blob(path, elf, symbol, NULL, bytes, what, err, errlen);
}
