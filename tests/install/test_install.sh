#!/bin/sh
# tests/install/test_install.sh — the installed package, used from a moved
# prefix (issue #15): `cmake --install` into a scratch prefix, the prefix
# moved, then with nothing of the build tree:
#   1. the installed tfxc compiles stories260K to a .so (-o: it finds
#      lib/libtfxrt.a relative to itself) whose greedy ids are llama2.c's;
#   2. the .so needs no libffi.so at run time when libffi is linked
#      statically (STATIC_FFI = 1);
#   3. without lib/libtfxrt.a, -o fails before compiling with an error naming
#      the path tried; --runtime PATH links with an archive elsewhere; a
#      missing --runtime is an error, --runtime with -c a usage error;
#   4. examples/embed (installed in share/doc/tfxc: embed, static_session,
#      no_runtime) builds with pkg-config
#      (its Makefile) and with find_package(tfx) (its CMakeLists.txt); all
#      six programs print llama2.c's 16 greedy ids;
#   5. with the aarch64 runtime installed, --target aarch64-linux-gnu -o
#      links an AArch64 .so with it (test_cross runs such models).
# usage: test_install.sh CMAKE BUILD_DIR MODELS_DIR STATIC_FFI
set -eu
cmake=$1 build=$2 models=${TFX_MODELS_DIR:-$3} static_ffi=$4
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
weights="$models/stories260K.bin"
[ -f "$weights" ] || fail "the real model is missing: $weights (set TFX_MODELS_DIR)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tfx-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset TFX_RUNTIME_ARCHIVE
want="generated: $(tr -s ' \n' '  ' <"$models/stories260K.greedy.ids" | cut -d' ' -f1-16)"

"$cmake" --install "$build" --prefix "$tmp/first" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
mv "$tmp/first" "$tmp/moved"
p="$tmp/moved"
for f in bin/tfxc lib/libtfxrt.a include/tfx/tfx.h include/tfx/abi.h lib/pkgconfig/tfx.pc \
         lib/cmake/tfx/tfxConfig.cmake lib/cmake/tfx/tfxTargets.cmake share/doc/tfxc/README.md \
         share/doc/tfxc/docs/embedding.md share/doc/tfxc/examples/embed/main.c; do
  [ -f "$p/$f" ] || fail "not installed: $f"
done
model="$p/share/doc/tfxc/examples/llama/stories260k.tfx"

# 1. -o from the moved prefix
"$p/bin/tfxc" "$model" --weights "$weights" -o "$tmp/m.so" || fail "installed tfxc -o"
ids=$("$p/bin/tfxc" run "$tmp/m.so" -n 16 --temperature 0 --print-ids 2>/dev/null)
[ "generated: $ids" = "$want" ] || fail "the .so's greedy ids: '$ids', want '$want'"
# 2. no libffi.so needed
needed=$(readelf -d "$tmp/m.so" | grep NEEDED || true)
if [ "$static_ffi" = 1 ]; then
  echo "$needed" | grep -q libffi && fail "the .so needs libffi although it is linked statically: $needed"
  nm -D --defined-only "$tmp/m.so" | grep -q ' ffi_' && fail "the .so exports libffi's symbols"
fi
# 3. a missing runtime: an error naming the path tried; --runtime
mkdir "$tmp/elsewhere"
mv "$p/lib/libtfxrt.a" "$tmp/elsewhere/"
if "$p/bin/tfxc" "$model" --weights random -o "$tmp/x.so" 2>"$tmp/err"; then fail "-o without a runtime succeeded"; fi
grep -q "tried: $p/bin/../lib/libtfxrt.a (No such file or directory)" "$tmp/err" ||
  fail "the error does not name the path tried: $(cat "$tmp/err")"
grep -q -- "--runtime PATH" "$tmp/err" || fail "the error does not name --runtime: $(cat "$tmp/err")"
[ ! -e "$tmp/x.so" ] || fail "a failed -o left $tmp/x.so"
"$p/bin/tfxc" "$model" --weights "$weights" --runtime "$tmp/elsewhere/libtfxrt.a" -o "$tmp/r.so" || fail "--runtime"
ids=$("$p/bin/tfxc" run "$tmp/r.so" -n 16 --temperature 0 --print-ids 2>/dev/null)
[ "generated: $ids" = "$want" ] || fail "--runtime: the .so's greedy ids: '$ids'"
"$p/bin/tfxc" "$model" --weights random --runtime "$tmp/none.a" -o "$tmp/x.so" 2>"$tmp/err" && fail "--runtime none.a"
grep -q "the runtime archive $tmp/none.a (--runtime) is not readable" "$tmp/err" || fail "--runtime none.a: $(cat "$tmp/err")"
rc=0
"$p/bin/tfxc" "$model" --weights random -c -o "$tmp/x.o" --runtime "$tmp/none.a" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "--runtime with -c: exit $rc, want 2 (usage)"
mv "$tmp/elsewhere/libtfxrt.a" "$p/lib/"

# 4. the embedding example, with pkg-config ...
mkdir "$tmp/mk"
(cd "$tmp/mk" && PKG_CONFIG_PATH="$p/lib/pkgconfig" make -s -f "$p/share/doc/tfxc/examples/embed/Makefile" \
  WEIGHTS="$weights") >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "make (pkg-config)"; }
for app in embed static_session no_runtime; do
  out=$("$tmp/mk/$app") || fail "the pkg-config build's $app failed"
  [ "$out" = "$want" ] || fail "the pkg-config build's $app printed '$out', want '$want'"
done
# ... and with find_package(tfx)
"$cmake" -S "$p/share/doc/tfxc/examples/embed" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$p" -DTFX_WEIGHTS="$weights" \
  -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake configure (find_package)"; }
"$cmake" --build "$tmp/cm" >>"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "cmake --build (find_package)"; }
for app in embed static_session no_runtime; do
  out=$("$tmp/cm/$app") || fail "the find_package build's $app failed"
  [ "$out" = "$want" ] || fail "the find_package build's $app printed '$out', want '$want'"
done
# 5. the aarch64 runtime (installed when the build made one): the moved
#    tfxc finds lib/aarch64-linux-gnu/libtfxrt.a for --target
if [ -f "$p/lib/aarch64-linux-gnu/libtfxrt.a" ] && command -v aarch64-linux-gnu-gcc >/dev/null; then
  "$p/bin/tfxc" "$model" --weights random --target aarch64-linux-gnu -o "$tmp/a64.so" ||
    fail "installed tfxc --target aarch64-linux-gnu -o"
  readelf -h "$tmp/a64.so" | grep -q AArch64 || fail "the --target aarch64-linux-gnu .so is not for AArch64"
fi
echo "test_install: ok ($p)"
