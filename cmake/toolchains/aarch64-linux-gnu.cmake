# cmake/toolchains/aarch64-linux-gnu.cmake — cross-builds tfxc's runtime
# archive (libtfxrt.a) for 64-bit Arm Linux with Debian's
# gcc-aarch64-linux-gnu (docs/portability.md):
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64
# The build is runtime-only and without libffi (TFX_RUNTIME_ONLY,
# TFX_RUNTIME_FFI in CMakeLists.txt). TFX_CROSS_CC overrides the compiler.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(NOT TFX_CROSS_CC)
  set(TFX_CROSS_CC aarch64-linux-gnu-gcc)
endif()
set(CMAKE_C_COMPILER ${TFX_CROSS_CC})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
