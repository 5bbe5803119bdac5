# nncConfig.cmake — what find_package(nnc) gives (configured at install time from
# cmake/NncConfig.cmake):
#   nnc::nnc        the compiler (imported executable); NNC_EXECUTABLE is its path
#   nnc::runtime    the runtime archive with its headers (<nnc/rt_program.h>, ...)
#   nnc_add_model() compile a .nn model into a library target at build time
#                   (see nnc_add_model.cmake)
@PACKAGE_INIT@

include(CMakeFindDependencyMacro)
find_dependency(Threads)

set_and_check(NNC_BIN_DIR "@PACKAGE_CMAKE_INSTALL_BINDIR@")
set_and_check(NNC_LIB_DIR "@PACKAGE_CMAKE_INSTALL_LIBDIR@")
set_and_check(NNC_INCLUDE_DIR "@PACKAGE_CMAKE_INSTALL_INCLUDEDIR@")
set_and_check(NNC_EXECUTABLE "${NNC_BIN_DIR}/nnc")
set_and_check(NNC_RUNTIME_LIBRARY "${NNC_LIB_DIR}/libnnc_runtime.a")
set(NNC_RUNTIME_LINK_OPTIONS "@NNC_RUNTIME_LINK_OPTIONS@")

if(NOT TARGET nnc::nnc)
  add_executable(nnc::nnc IMPORTED)
  set_target_properties(nnc::nnc PROPERTIES IMPORTED_LOCATION "${NNC_EXECUTABLE}")
endif()

if(NOT TARGET nnc::runtime)
  add_library(nnc::runtime STATIC IMPORTED)
  set_target_properties(nnc::runtime PROPERTIES
    IMPORTED_LOCATION "${NNC_RUNTIME_LIBRARY}"
    IMPORTED_LINK_INTERFACE_LANGUAGES C
    INTERFACE_INCLUDE_DIRECTORIES "${NNC_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "cjson;m;Threads::Threads"
    INTERFACE_LINK_OPTIONS "${NNC_RUNTIME_LINK_OPTIONS}")
endif()

include("${CMAKE_CURRENT_LIST_DIR}/nnc_add_model.cmake")
check_required_components(nnc)
