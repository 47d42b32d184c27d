# cmake/runtime_min.cmake — the minimal runtime, libtfxrt_min.a: models and
# sessions in the caller's memory only (runtime/model_static.c,
# runtime/session_static.c), entries called directly; no malloc, pthreads,
# libffi, dlopen or tokenizers, for small devices (docs/embedding.md, "The
# minimal runtime"). Included by the full build and by the runtime-only
# (cross) build.
set(TFX_RUNTIME_MIN_SOURCES errors.c cpu.c validate.c ffi_call.c forward.c info.c sampler.c model_static.c
                            session_static.c)
list(TRANSFORM TFX_RUNTIME_MIN_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/runtime/)
add_library(tfxrt_min STATIC ${TFX_RUNTIME_MIN_SOURCES})
target_include_directories(tfxrt_min PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                                            $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_options(tfxrt_min PRIVATE ${TFX_WARNINGS} -fvisibility=default -Os)
target_compile_definitions(tfxrt_min PRIVATE TFX_RT_MINIMAL TFX_RT_NO_FFI)

