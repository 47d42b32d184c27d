/* tfx/seal.h — the seal at the end of every model .so tfxc links: a 32-byte
 * trailer (after the ELF file's last byte; the dynamic loader never reads it)
 * holding a checksum of the whole file but the weights blob. tfx_model_open
 * checks it before anything else reads the file, so a truncated or corrupted
 * model (a bit flipped in its ELF headers, dynamic section, descriptor or
 * code) is an error before the dynamic loader, which trusts its input, runs.
 *
 *   bytes 0..7    TFX_SEAL_MAGIC ("TFXSEAL" and the format version, 1)
 *   bytes 8..15   skip_offset: where the weights blob starts in the file
 *   bytes 16..23  skip_bytes: its size (0 when nothing is skipped)
 *   bytes 24..31  the checksum (tfx/checksum.h) of the file's bytes before
 *                 skip_offset, then after skip_offset + skip_bytes, up to and
 *                 including bytes 0..23 of the trailer
 * (little-endian). The weights are left out so that opening a large model
 * does not read all of it; TFX_OPEN_VERIFY checks them against their own
 * checksum in the descriptor.
 *
 * Header-only (POSIX pread/pwrite) so that the compiler (backend/aot.c
 * writes it after linking; `tfxc seal` rewrites it), the runtime
 * (runtime/elf_check.c verifies it) and tests that build model files of
 * their own compute exactly the same bytes. Like the checksums, it detects
 * corruption, not tampering: a .so is code, and loading one runs it. */
#ifndef TFX_SEAL_H
#define TFX_SEAL_H

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "checksum.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFX_SEAL_MAGIC "TFXSEAL\x01"
#define TFX_SEAL_BYTES 32

typedef struct tfx_seal {
  uint64_t skip_offset, skip_bytes, checksum;
} tfx_seal;

/* Feeds bytes [from, to) of fd to the checksum; 0, or -1 on a read error. */
static inline int tfx_seal_feed(tfx_ck_state *s, int fd, uint64_t from, uint64_t to) {
  uint8_t buf[1 << 14];
  while (from < to) {
    size_t want = to - from < sizeof buf ? (size_t)(to - from) : sizeof buf;
    ssize_t got = pread(fd, buf, want, (off_t)from);
    if (got <= 0) return -1;
    tfx_ck_update(s, buf, (size_t)got);
    from += (uint64_t)got;
  }
  return 0;
}

/* The checksum of a file of `size` bytes whose trailer (its last
 * TFX_SEAL_BYTES) records skip_offset and skip_bytes; 0 on a read error or a
 * skipped range that is not inside the bytes before the trailer. */
static inline uint64_t tfx_seal_checksum(int fd, uint64_t size, uint64_t skip_offset, uint64_t skip_bytes) {
  if (size < TFX_SEAL_BYTES) return 0;
  uint64_t body = size - TFX_SEAL_BYTES;
  if (skip_offset > body || skip_bytes > body - skip_offset) return 0;
  tfx_ck_state s;
  tfx_ck_init(&s);
  if (tfx_seal_feed(&s, fd, 0, skip_offset) || tfx_seal_feed(&s, fd, skip_offset + skip_bytes, size - 8)) return 0;
  return tfx_ck_final(&s);
}

/* Reads the trailer of a file of `size` bytes: 0, or -1 when it has none. */
static inline int tfx_seal_read(int fd, uint64_t size, tfx_seal *out) {
  uint8_t t[TFX_SEAL_BYTES];
  if (size < TFX_SEAL_BYTES || pread(fd, t, sizeof t, (off_t)(size - TFX_SEAL_BYTES)) != (ssize_t)sizeof t ||
      memcmp(t, TFX_SEAL_MAGIC, 8) != 0)
    return -1;
  out->skip_offset = tfx_ck_load64(t + 8);
  out->skip_bytes = tfx_ck_load64(t + 16);
  out->checksum = tfx_ck_load64(t + 24);
  return 0;
}

/* Appends a trailer to a file of `size` bytes open for reading and writing
 * (at byte `size`, which is where the ELF file ends). 0, or -1 on an I/O
 * error or a skipped range outside the file. */
static inline int tfx_seal_append(int fd, uint64_t size, uint64_t skip_offset, uint64_t skip_bytes) {
  if (skip_offset > size || skip_bytes > size - skip_offset) return -1;
  uint8_t t[TFX_SEAL_BYTES];
  memcpy(t, TFX_SEAL_MAGIC, 8);
  for (int i = 0; i < 8; i++) {
    t[8 + i] = (uint8_t)(skip_offset >> (8 * i));
    t[16 + i] = (uint8_t)(skip_bytes >> (8 * i));
    t[24 + i] = 0;
  }
  if (pwrite(fd, t, sizeof t, (off_t)size) != (ssize_t)sizeof t) return -1;
  uint64_t sum = tfx_seal_checksum(fd, size + TFX_SEAL_BYTES, skip_offset, skip_bytes);
  if (!sum) return -1;
  for (int i = 0; i < 8; i++) t[24 + i] = (uint8_t)(sum >> (8 * i));
  return pwrite(fd, t + 24, 8, (off_t)(size + 24)) == 8 ? 0 : -1;
}

#ifdef __cplusplus
}
#endif

#endif
