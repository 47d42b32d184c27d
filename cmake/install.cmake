# cmake/install.cmake — what `cmake --install` puts under the prefix: tfxc
# (bin/), the runtime archives libtfxrt.a and libtfxrt_min.a (lib/), the runtime's public headers
# (include/tfx/), the README and docs/ with the embedding example
# (share/doc/tfxc/), a pkg-config file (lib/pkgconfig/tfx.pc) and a CMake
# package (lib/cmake/tfx/: find_package(tfx) gives tfx::runtime and
# tfx::tfxc). Every path inside is relative to the prefix, so an installed
# prefix can be moved. Included from the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(TFX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tfx)
set_target_properties(tfxrt PROPERTIES EXPORT_NAME runtime)
set_target_properties(tfxrt_min PROPERTIES EXPORT_NAME runtime_min)
install(TARGETS tfxc tfxrt tfxrt_min EXPORT tfxTargets
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# tfx/jit.h is not installed: the JIT is the compiler's library, which is not
install(FILES ${CMAKE_SOURCE_DIR}/include/tfx/tfx.h ${CMAKE_SOURCE_DIR}/include/tfx/abi.h
              ${CMAKE_SOURCE_DIR}/include/tfx/checksum.h
              ${CMAKE_SOURCE_DIR}/include/tfx/seal.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tfx)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples/embed DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${CMAKE_SOURCE_DIR}/examples/llama/stories260k.tfx DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/llama)

# find_package(tfx): tfx::runtime (libtfxrt.a with libffi, pthreads, dl, m),
# tfx::runtime_min (libtfxrt_min.a: libc only) and tfx::tfxc (the compiler, for add_custom_command)
install(EXPORT tfxTargets NAMESPACE tfx:: FILE tfxTargets.cmake DESTINATION ${TFX_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/tfxConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/cmake/tfxConfig.cmake INSTALL_DESTINATION ${TFX_CMAKE_DIR})
# 0.x: a minor version may change the ABI (include/tfx/abi.h)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/tfxConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/tfxConfig.cmake ${CMAKE_BINARY_DIR}/cmake/tfxConfigVersion.cmake
        DESTINATION ${TFX_CMAKE_DIR})

# tfx.pc: the prefix is found from the .pc file's own folder (${pcfiledir}),
# so a moved prefix keeps working; link with `pkg-config --static --libs tfx`
# (libtfxrt is a static archive: its libffi, pthread, dl and m are private)
file(RELATIVE_PATH TFX_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" TFX_PC_TO_PREFIX "${TFX_PC_TO_PREFIX}")
set(TFX_PC_SANITIZE "")
if(TFX_SANITIZE) # the archive is instrumented: programs linking it need the sanitizer runtimes
  set(TFX_PC_SANITIZE " -fsanitize=address,undefined")
  target_link_options(tfxrt INTERFACE $<INSTALL_INTERFACE:-fsanitize=address,undefined>)
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/tfx.pc.in ${CMAKE_BINARY_DIR}/cmake/tfx.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/tfx.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
