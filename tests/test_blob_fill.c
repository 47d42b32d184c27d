/* tests/test_blob_fill.c — the weights written once (#17, item 16): a blob
 * reservation (backend/elf_blob.c, SHT_NOBITS) linked by the system's tools
 * into a relocatable object (`ld -r`, as `tfxc -c`) and into a shared
 * library (`cc -shared`, as `tfxc -o m.so`), then filled in place
 * (backend/elf_fill.c): the library, loaded by the dynamic loader, holds
 * exactly the bytes given, and the headers describe the file as a loader and
 * readelf read it. A file of another shape is refused with a message (the
 * compiler then links the weights the ordinary way). */
#include <dlfcn.h>
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../backend/cg.h"
#include "support/testutil.h"

#define BLOB_BYTES ((size_t)3 * 4096 + 100) /* not a multiple of a page */

static char *dir;
static uint8_t blob[BLOB_BYTES];
static const tfx_cg_elf_id x86 = {.machine = EM_X86_64};

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

static int run(char *const argv[]) {
  char *err = NULL;
  int rc = tfx_test_run(argv, NULL, &err);
  if (rc != 0) print_error("%s: %s\n", argv[0], err ? err : "?");
  free(err);
  return rc;
}

/* user.o: `const void *blob_address(void)` returning the blob's symbol */
static void compile_user(char *obj, size_t len) {
  char src[4200];
  path_in(src, sizeof src, "user.c");
  path_in(obj, len, "user.o");
  FILE *f = fopen(src, "w");
  assert_non_null(f);
  fputs("extern const unsigned char m_weights_blob[];\n"
        "const void *blob_address(void) { return m_weights_blob; }\n",
        f);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(run((char *[]){"/usr/bin/cc", "-fPIC", "-c", src, "-o", obj, NULL}), 0);
}

/* dlopen so, and the blob's bytes through its own code equal blob[] */
static void assert_loaded_blob(const char *so) {
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) fail_msg("dlopen %s: %s", so, dlerror());
  const void *(*addr)(void) = (const void *(*)(void))dlsym(h, "blob_address");
  assert_non_null(addr);
  assert_memory_equal(addr(), blob, BLOB_BYTES);
  dlclose(h);
}

/* dir/name: a reservation of the blob's size for `what` */
static void reserve(const char *name, tfx_cg_reserve_for what, char *path, size_t len) {
  char err[512] = "";
  path_in(path, len, name);
  if (tfx_cg_write_blob_reservation(path, &x86, "m_weights_blob", BLOB_BYTES, what, err, sizeof err))
    fail_msg("reservation %s: %s", name, err);
}

static Elf64_Ehdr read_ehdr(const char *data) {
  Elf64_Ehdr eh;
  memcpy(&eh, data, sizeof eh);
  return eh;
}

static void test_shared_library(void **state) {
  (void)state;
  char err[512] = "", user[4200], res[4200], so[4200];
  compile_user(user, sizeof user);
  reserve("reserve_shared.o", TFX_CG_RESERVE_SHARED, res, sizeof res);
  path_in(so, sizeof so, "filled.so");
  /* the reservation has no bytes in its object */
  size_t size = 0;
  char *obj = tfx_test_read_file(res, &size);
  assert_non_null(obj);
  assert_true(size < 1024);
  free(obj);
  assert_int_equal(run((char *[]){"/usr/bin/cc", "-shared", "-o", so, user, res, NULL}), 0);
  assert_int_equal(tfx_cg_fill_blob(so, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), 0);

  /* every PT_LOAD is whole in the file, the last one holding the blob */
  char *lib = tfx_test_read_file(so, &size);
  assert_non_null(lib);
  Elf64_Ehdr eh = read_ehdr(lib);
  int loads = 0;
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr p;
    memcpy(&p, lib + eh.e_phoff + (size_t)i * sizeof p, sizeof p);
    if (p.p_type != PT_LOAD) continue;
    loads++;
    assert_true(p.p_offset + p.p_filesz <= size);
    assert_int_equal((p.p_vaddr - p.p_offset) % p.p_align, 0);
    assert_int_equal(p.p_filesz, p.p_memsz);
  }
  assert_true(loads >= 2);
  free(lib);
  assert_loaded_blob(so);

  /* a second fill finds no reservation left */
  assert_int_equal(tfx_cg_fill_blob(so, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), -1);
  assert_non_null(strstr(err, "no reservation m_weights_blob"));
}

static void test_relocatable_object(void **state) {
  (void)state;
  char err[512] = "", user[4200], res[4200], combined[4200], so[4200];
  compile_user(user, sizeof user);
  reserve("reserve_object.o", TFX_CG_RESERVE_OBJECT, res, sizeof res);
  path_in(combined, sizeof combined, "combined.o");
  path_in(so, sizeof so, "from_object.so");
  assert_int_equal(run((char *[]){"/usr/bin/ld", "-r", "-o", combined, user, res, NULL}), 0);
  assert_int_equal(tfx_cg_fill_blob(combined, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), 0);
  /* the section is an ordinary one with the bytes, where the object's own
   * blob would be (.rodata.tfx_weights, not a large section) */
  size_t size = 0;
  char *o = tfx_test_read_file(combined, &size);
  assert_non_null(o);
  Elf64_Ehdr eh = read_ehdr(o);
  Elf64_Shdr names;
  memcpy(&names, o + eh.e_shoff + (size_t)eh.e_shstrndx * sizeof names, sizeof names);
  int found = 0;
  for (int i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr s;
    memcpy(&s, o + eh.e_shoff + (size_t)i * sizeof s, sizeof s);
    if (strcmp(o + names.sh_offset + s.sh_name, ".rodata.tfx_weights")) continue;
    found = 1;
    assert_int_equal(s.sh_type, SHT_PROGBITS);
    assert_int_equal(s.sh_offset % 64, 0);
    assert_true(s.sh_offset + BLOB_BYTES <= size);
    assert_memory_equal(o + s.sh_offset, blob, BLOB_BYTES);
  }
  assert_true(found);
  free(o);
  /* and it links like any object */
  assert_int_equal(run((char *[]){"/usr/bin/cc", "-shared", "-o", so, combined, NULL}), 0);
  assert_loaded_blob(so);
}

static void test_other_shapes_refused(void **state) {
  (void)state;
  char err[512] = "", user[4200], data_obj[4200], so[4200], text[4200];
  compile_user(user, sizeof user);
  /* the blob linked with its data: nothing to fill */
  path_in(data_obj, sizeof data_obj, "data.o");
  path_in(so, sizeof so, "with_data.so");
  assert_int_equal(tfx_cg_write_blob_object(data_obj, &x86, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), 0);
  assert_int_equal(run((char *[]){"/usr/bin/cc", "-shared", "-o", so, user, data_obj, NULL}), 0);
  assert_int_equal(tfx_cg_fill_blob(so, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), -1);
  assert_non_null(strstr(err, "no reservation"));
  /* another size than reserved */
  char res[4200], res_so[4200];
  reserve("reserve.o", TFX_CG_RESERVE_SHARED, res, sizeof res);
  path_in(res_so, sizeof res_so, "reserved.so");
  assert_int_equal(run((char *[]){"/usr/bin/cc", "-shared", "-o", res_so, user, res, NULL}), 0);
  assert_int_equal(tfx_cg_fill_blob(res_so, "m_weights_blob", blob, BLOB_BYTES - 1, err, sizeof err), -1);
  assert_non_null(strstr(err, "no reservation m_weights_blob of"));
  /* not ELF, and no file */
  path_in(text, sizeof text, "user.c");
  assert_int_equal(tfx_cg_fill_blob(text, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), -1);
  assert_non_null(strstr(err, "not the ELF64 object or shared library expected"));
  path_in(text, sizeof text, "missing.so");
  assert_int_equal(tfx_cg_fill_blob(text, "m_weights_blob", blob, BLOB_BYTES, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot open"));
  /* a shared library's reservation needs x86-64's large sections */
  const tfx_cg_elf_id a64 = {.machine = EM_AARCH64};
  assert_int_equal(
      tfx_cg_write_blob_reservation(res, &a64, "m_weights_blob", BLOB_BYTES, TFX_CG_RESERVE_SHARED, err, sizeof err),
      -1);
  assert_non_null(strstr(err, "large sections"));
}

int main(void) {
  dir = tfx_test_tmpdir();
  if (!dir) return 1;
  for (size_t i = 0; i < BLOB_BYTES; i++) blob[i] = (uint8_t)(i * 131 + 7);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_library),
      cmocka_unit_test(test_relocatable_object),
      cmocka_unit_test(test_other_shapes_refused),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  tfx_test_rmdir(dir);
  free(dir);
  return rc;
}
