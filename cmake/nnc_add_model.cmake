# nnc_add_model.cmake — nnc_add_model(): compile a .nn model into a static library and a C
# header at build time, in the spirit of Halide's add_halide_library.
#
#   nnc_add_model(<target> <file.nn>
#                 [NAME <name>]            # library/header/function prefix (default: <target>)
#                 [MODEL <model>]          # the model to build when the file has several
#                 [DEFINES N=64 ...]       # dims fixed at build time (-D)
#                 [TARGET_CPU <cpu>]       # default: the build machine's CPU
#                 [OPT_LEVEL 0|1|2|3]      # default 2
#                 [NNC_ARGS ...])          # anything else for `nnc build`
#
# <target> is an INTERFACE library: linking it adds <name>.h's directory to the include path
# and links lib<name>.a (the model's code and the nnc runtime) with -lcjson -lm and threads.
# The library is rebuilt when the .nn file or the nnc executable changes.
#
#   nnc_add_model(mlp_model ${CMAKE_CURRENT_SOURCE_DIR}/mlp.nn NAME mlp DEFINES N=32)
#   add_executable(app main.c)                  # main.c: #include "mlp.h"
#   target_link_libraries(app PRIVATE mlp_model)
include_guard(GLOBAL)

function(nnc_add_model target nnfile)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "" "NAME;MODEL;TARGET_CPU;OPT_LEVEL"
                        "DEFINES;NNC_ARGS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nnc_add_model(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET nnc::nnc)
    message(FATAL_ERROR "nnc_add_model(${target}): nnc::nnc is not defined; call find_package(nnc) first")
  endif()
  set(name "${ARG_NAME}")
  if(NOT name)
    set(name "${target}")
  endif()
  string(MAKE_C_IDENTIFIER "${name}" cname)
  if(NOT cname STREQUAL name)
    message(FATAL_ERROR "nnc_add_model(${target}): NAME '${name}' is not a C identifier (the header's functions are named after it)")
  endif()
  get_filename_component(nnfile "${nnfile}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")

  set(outdir "${CMAKE_CURRENT_BINARY_DIR}/nnc_${target}")
  set(lib "${outdir}/lib${name}.a")
  set(hdr "${outdir}/${name}.h")
  file(MAKE_DIRECTORY "${outdir}")

  set(args "${nnfile}" --lib -o "${outdir}/${name}")
  foreach(d IN LISTS ARG_DEFINES)
    list(APPEND args -D "${d}")
  endforeach()
  if(ARG_MODEL)
    list(APPEND args --model "${ARG_MODEL}")
  endif()
  if(ARG_TARGET_CPU)
    list(APPEND args --target-cpu "${ARG_TARGET_CPU}")
  endif()
  if(NOT "${ARG_OPT_LEVEL}" STREQUAL "")
    list(APPEND args "-O${ARG_OPT_LEVEL}")
  endif()
  list(APPEND args ${ARG_NNC_ARGS})

  get_target_property(nnc_exe nnc::nnc IMPORTED_LOCATION)
  add_custom_command(
    OUTPUT "${lib}" "${hdr}"
    COMMAND nnc::nnc build ${args}
    DEPENDS "${nnfile}" "${nnc_exe}"
    COMMENT "nnc build --lib ${nnfile} -> lib${name}.a, ${name}.h"
    VERBATIM)
  add_custom_target(${target}_nnc_build DEPENDS "${lib}" "${hdr}")

  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_nnc_build)
  target_include_directories(${target} INTERFACE "${outdir}")
  target_link_libraries(${target} INTERFACE "${lib}" cjson m Threads::Threads)
  if(NNC_RUNTIME_LINK_OPTIONS)
    target_link_options(${target} INTERFACE ${NNC_RUNTIME_LINK_OPTIONS})
  endif()
  set_target_properties(${target} PROPERTIES NNC_LIBRARY "${lib}" NNC_HEADER "${hdr}")
endfunction()
