# cuda.cmake — the CUDA backend's generators (plain C11, no toolkit needed), its tests on the
# CPU through the emulation header (needs a C++ compiler), and, where the CUDA toolkit is
# found, NVRTC compilation with ptxas resource checks. Everything else builds and tests the
# same without the toolkit.
file(GLOB NNC_CUDA_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda/*.c)
add_library(nnc_cuda STATIC ${NNC_CUDA_SRC})
target_include_directories(nnc_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda)
target_link_libraries(nnc_cuda PUBLIC nnc_plan nnc_passes nnc_ir)

add_executable(test_cuda_gen tests/cuda/test_cuda_gen.c)
target_link_libraries(test_cuda_gen PRIVATE nnc_cuda PkgConfig::CHECK)
add_test(NAME cuda/gen COMMAND test_cuda_gen)

# the kernels of a model's matmuls, for tests/cuda/run_cuda_tiles.sh
add_executable(cuda_model_kernels tests/cuda/model_kernels.c)
target_include_directories(cuda_model_kernels PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
target_link_libraries(cuda_model_kernels PRIVATE nnc_cuda nnc_frontend nnc_passes)

# the driver loader: fails cleanly without a driver (here) or a device (a fake driver)
add_library(nnc_fake_libcuda SHARED tests/cuda/fake_libcuda.c)
# the same with one device whose launches do nothing and whose calls are logged
add_library(nnc_fake_libcuda_dev SHARED tests/cuda/fake_libcuda.c)
target_compile_definitions(nnc_fake_libcuda_dev PRIVATE FAKE_CUDA_DEVICE)
add_executable(test_rt_cuda tests/cuda/test_rt_cuda.c)
target_link_libraries(test_rt_cuda PRIVATE nnc_runtime PkgConfig::CHECK ${CMAKE_DL_LIBS})
target_compile_definitions(test_rt_cuda PRIVATE NNC_FAKE_LIBCUDA="$<TARGET_FILE:nnc_fake_libcuda>"
                           NNC_FAKE_LIBCUDA_DEV="$<TARGET_FILE:nnc_fake_libcuda_dev>")
add_dependencies(test_rt_cuda nnc_fake_libcuda nnc_fake_libcuda_dev)
add_test(NAME cuda/rt_cuda COMMAND test_rt_cuda)

option(NNC_CUDA_TESTS "Build the CUDA backend's emulation and NVRTC tests" ON)
include(CheckLanguage)
check_language(CXX)
if(NNC_CUDA_TESTS AND CMAKE_CXX_COMPILER)
  enable_language(CXX)
  set(NNC_CUDA_GEN ${CMAKE_CURRENT_BINARY_DIR}/cuda_gen)
  file(MAKE_DIRECTORY ${NNC_CUDA_GEN})
  add_executable(cuda_gen_cases tests/cuda/gen_cases.c)
  target_link_libraries(cuda_gen_cases PRIVATE nnc_cuda nnc_runtime)
  add_custom_command(OUTPUT ${NNC_CUDA_GEN}/cuda_cases.cu ${NNC_CUDA_GEN}/cuda_cases_launch.h
    COMMAND cuda_gen_cases ${NNC_CUDA_GEN}/cuda_cases.cu ${NNC_CUDA_GEN}/cuda_cases_launch.h
    DEPENDS cuda_gen_cases)
  set_source_files_properties(${NNC_CUDA_GEN}/cuda_cases.cu PROPERTIES HEADER_FILE_ONLY ON)
  add_executable(test_cuda_emu tests/cuda/test_cuda_emu.cpp ${NNC_CUDA_GEN}/cuda_cases.cu
                 ${NNC_CUDA_GEN}/cuda_cases_launch.h)
  set_target_properties(test_cuda_emu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_include_directories(test_cuda_emu PRIVATE ${NNC_CUDA_GEN} codegen/cuda tests/cuda)
  target_link_libraries(test_cuda_emu PRIVATE nnc_runtime)
  add_test(NAME cuda/emu COMMAND test_cuda_emu)
  # every example's CUDA code (forward and one training step) on the CPU against the
  # interpreter; the generated source is compiled by this C++ compiler at test time
  add_executable(test_cuda_model tests/cuda/test_cuda_model.c)
  target_link_libraries(test_cuda_model PRIVATE nnc_cuda nnc_frontend nnc_passes nnc_runtime ${CMAKE_DL_LIBS})
  set_target_properties(test_cuda_model PROPERTIES ENABLE_EXPORTS ON)
  set(NNC_CUDA_MODEL_DIR ${CMAKE_CURRENT_BINARY_DIR}/cuda_model)
  file(MAKE_DIRECTORY ${NNC_CUDA_MODEL_DIR})
  # (inception_a, resnet18 and the others pass too but take minutes: run test_cuda_model by hand)
  # --bf16/--f16: forward and one training step at that precision, against the interpreter in
  # double and with the GEMM inputs rounded as the tensor cores round them; --mutant: the
  # emulation rounds toward zero instead of to nearest, and the test passes only if that is
  # caught; --loss-scale-check: f16 dynamic loss scaling skips an overflowing step, halves,
  # resumes and doubles (test_cuda_model.c)
  foreach(spec "linreg:N=16:D=7" "mlp:N=4" "lenet:N=2" "gpt2_block:N=2:T=8:H=2:K=8"
               "char_lm:N=2:T=8:H=2:K=8" "lenet:N=2:--tf32" "mlp:N=4:--tf32"
               "mlp:N=4:--bf16" "mlp:N=4:--f16" "lenet:N=2:--bf16" "lenet:N=2:--f16"
               "char_lm:N=2:T=8:H=2:K=8:--bf16" "char_lm:N=2:T=8:H=2:K=8:--f16"
               "mlp:N=4:--bf16:--mutant" "lenet:N=2:--f16:--mutant" "linreg:N=16:D=7:--loss-scale-check")
    string(REPLACE ":" ";" ex "${spec}")
    list(GET ex 0 name)
    list(SUBLIST ex 1 -1 defs)
    set(dargs)
    set(tname cuda/model_${name})
    foreach(def IN LISTS defs)
      if(def MATCHES "^--([a-z0-9-]+)$")
        list(APPEND dargs ${def})
        set(tname ${tname}_${CMAKE_MATCH_1})
      else()
        list(APPEND dargs -D ${def})
      endif()
    endforeach()
    add_test(NAME ${tname} COMMAND test_cuda_model ${CMAKE_CURRENT_SOURCE_DIR}/examples/${name}.nn
             ${CMAKE_CXX_COMPILER} ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda ${NNC_CUDA_MODEL_DIR} ${dargs})
  endforeach()
  # dropout's mask in the training step: the interpreter's (and so the CPU backend's) bits
  add_test(NAME cuda/model_dropout COMMAND test_cuda_model ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/dropout.nn
           ${CMAKE_CXX_COMPILER} ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda ${NNC_CUDA_MODEL_DIR})
  # every convolution form (strides, padding, 1x1..7x7, dilation, grouped, depthwise), forward
  # and one training step (a large learning rate, so that the step's update, and with it every
  # backward convolution, shows in the parameters), at f32
  add_test(NAME cuda/model_conv_cases COMMAND test_cuda_model
           ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/models/conv_cases.nn ${CMAKE_CXX_COMPILER}
           ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda ${NNC_CUDA_MODEL_DIR})
  # ... and at bf16/f16 (16-bit tensor cores forward, backward-data and backward-filter,
  # grouped included; f16 with loss scaling), with a rounding mutant that must be caught
  foreach(prec tf32 bf16 f16 bf16:--mutant)
    string(REPLACE ":" ";" pargs "--${prec}")
    string(REPLACE ":--" "_" pname "${prec}")
    add_test(NAME cuda/model_conv_cases_${pname} COMMAND test_cuda_model
             ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/models/conv_cases.nn ${CMAKE_CXX_COMPILER}
             ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda ${NNC_CUDA_MODEL_DIR} ${pargs})
  endforeach()
  # every block reduction (norms, softmax, reductions over axes, cross entropy), forward and
  # one training step
  add_test(NAME cuda/model_reductions COMMAND test_cuda_model
           ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/models/reductions.nn ${CMAKE_CXX_COMPILER}
           ${CMAKE_CURRENT_SOURCE_DIR}/codegen/cuda ${NNC_CUDA_MODEL_DIR})
endif()

# NVRTC from the toolkit at /usr/local/cuda (or CUDAToolkit_ROOT); optional
if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
find_package(CUDAToolkit QUIET)
# libnvrtc itself: the imported CUDA::nvrtc also links the driver stub, and a binary that needs
# libcuda.so.1 at load time would not start without a driver
if(CUDAToolkit_FOUND)
  find_library(NNC_NVRTC_LIB nvrtc HINTS ${CUDAToolkit_LIBRARY_DIR} NO_DEFAULT_PATH)
endif()
if(NNC_CUDA_TESTS AND CUDAToolkit_FOUND AND NNC_NVRTC_LIB)
  find_program(NNC_PTXAS ptxas HINTS ${CUDAToolkit_BIN_DIR} NO_DEFAULT_PATH)
  add_library(nnc_cuda_nvrtc STATIC codegen/cuda/nvrtc/cuda_nvrtc.c)
  target_include_directories(nnc_cuda_nvrtc SYSTEM PUBLIC ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(nnc_cuda_nvrtc PUBLIC ${NNC_NVRTC_LIB})
  add_executable(test_cuda_nvrtc tests/cuda/test_cuda_nvrtc.c)
  target_link_libraries(test_cuda_nvrtc PRIVATE nnc_cuda nnc_cuda_nvrtc)
  target_compile_definitions(test_cuda_nvrtc PRIVATE NNC_PTXAS="${NNC_PTXAS}")
  add_test(NAME cuda/nvrtc COMMAND test_cuda_nvrtc)
  # libnvrtc loads libnvrtc-builtins by name at run time: found through the loader's cache
  # where the toolkit is registered with ldconfig, and through this path everywhere else
  set_tests_properties(cuda/nvrtc PROPERTIES ENVIRONMENT "LD_LIBRARY_PATH=${CUDAToolkit_LIBRARY_DIR}")
  # the GPU machine's benchmark (tests/gpu/run.sh); here it must refuse cleanly
  add_executable(gpu_gemm tests/gpu/gpu_gemm.c)
  target_link_libraries(gpu_gemm PRIVATE nnc_cuda nnc_cuda_nvrtc nnc_runtime)
  add_test(NAME cuda/gpu_script COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/gpu/selfcheck.sh $<TARGET_FILE:gpu_gemm>)
  set_tests_properties(cuda/gpu_script PROPERTIES ENVIRONMENT "LD_LIBRARY_PATH=${CUDAToolkit_LIBRARY_DIR}")
  # NVRTC + ptxas -v over examples' forward and training-step sources (all examples:
  # tests/cuda/ptx_check.sh without model names; minutes)
  foreach(arch sm_80 sm_90)
    add_test(NAME cuda/ptx_${arch} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/ptx_check.sh
             $<TARGET_FILE:nnc> ${NNC_PTXAS} ${arch} mlp lenet gpt2_block tests/cuda/models/conv_cases.nn)
    set_tests_properties(cuda/ptx_${arch} PROPERTIES ENVIRONMENT "LD_LIBRARY_PATH=${CUDAToolkit_LIBRARY_DIR}")
    # 16-bit tensor cores (GEMM operands rounded on load): one precision per arch here, both
    # by hand (ptx_check.sh NNC PTXAS ARCH --precision bf16|f16)
    if(arch STREQUAL "sm_80")
      set(prec bf16)
    else()
      set(prec f16)
    endif()
    add_test(NAME cuda/ptx_${arch}_${prec} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/ptx_check.sh
             $<TARGET_FILE:nnc> ${NNC_PTXAS} ${arch} --precision ${prec} mlp lenet tests/cuda/models/conv_cases.nn)
    set_tests_properties(cuda/ptx_${arch}_${prec} PROPERTIES ENVIRONMENT "LD_LIBRARY_PATH=${CUDAToolkit_LIBRARY_DIR}")
  endforeach()
  message(STATUS "CUDA toolkit ${CUDAToolkit_VERSION}: NVRTC tests enabled")
else()
  message(STATUS "CUDA toolkit not found: NVRTC tests disabled")
endif()

# the driver's CUDA backend (nnc emit --emit=cuda|ptx); PTX where NVRTC is found
target_link_libraries(nnc PRIVATE nnc_cuda)
if(TARGET nnc_cuda_nvrtc)
  target_link_libraries(nnc PRIVATE nnc_cuda_nvrtc)
  target_compile_definitions(nnc PRIVATE NNC_HAVE_NVRTC=1)
  # the installed nnc finds libnvrtc where the build found it (the toolkit's lib64 is not
  # usually in the loader's path), as the build tree's nnc does
  set_target_properties(nnc PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
endif()

# nnc cost --precision: a CUDA build's GEMMs at the precision's tensor-core peak
add_test(NAME cuda/cost_precision COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/cost_precision.sh
         $<TARGET_FILE:nnc>)

# programs built with --target cuda-emu (and cuda, which must refuse cleanly without a GPU)
if(NNC_CUDA_TESTS AND CMAKE_CXX_COMPILER)
  add_test(NAME cuda/program COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/program_check.sh
           $<TARGET_FILE:nnc>)
  # nnc cost --target h100|a100 over the CUDA launch table; `info` of a CUDA program
  add_test(NAME cuda/cost COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/cost_gpu_check.sh
           $<TARGET_FILE:nnc>)
  # f16 loss scaling's state in checkpoints: a resumed run continues with the same scale
  add_test(NAME cuda/resume_f16 COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/resume_check.sh
           $<TARGET_FILE:nnc>)
  # bench --profile of a cuda-emu program: per launch of the launch table, with its estimate
  add_test(NAME cuda/profile COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/profile_check.sh
           $<TARGET_FILE:nnc>)
  # nnc build --lib --target cuda-emu: the CPU library's API, and the device entry points
  add_test(NAME cuda/lib COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/lib_check.sh
           $<TARGET_FILE:nnc> ${CMAKE_CURRENT_BINARY_DIR})
  if(TARGET nnc_cuda_nvrtc)
    set_tests_properties(cuda/program PROPERTIES ENVIRONMENT "LD_LIBRARY_PATH=${CUDAToolkit_LIBRARY_DIR}")
  endif()
endif()
