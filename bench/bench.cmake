# bench/bench.cmake — benchmark executables (not tests). Included from the top-level
# CMakeLists.txt with include(bench/bench.cmake); built only when asked for by name
# (EXCLUDE_FROM_ALL), so a missing OpenBLAS never breaks the normal build.
find_library(NNC_OPENBLAS_LIB NAMES openblas)
if(NNC_OPENBLAS_LIB)
  add_executable(bench_gemm EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_gemm.c)
  target_link_libraries(bench_gemm PRIVATE nnc_codegen nnc_runtime ${NNC_OPENBLAS_LIB} m)
else()
  message(STATUS "OpenBLAS not found: bench_gemm is not available")
endif()
