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

# bf16 against f32 GEMM kernels, each blocked by the tiles pass (no OpenBLAS needed)
add_executable(bench_bf16 EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bench_bf16.c)
target_link_libraries(bench_bf16 PRIVATE nnc_codegen nnc_passes nnc_runtime m)
# the accuracy cost of --precision bf16 on every example model's outputs
add_executable(bf16_accuracy EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/bf16_accuracy.c)
target_link_libraries(bf16_accuracy PRIVATE nnc_frontend nnc_codegen nnc_plan nnc_passes nnc_ir nnc_runtime m)
target_compile_definitions(bf16_accuracy PRIVATE NNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
