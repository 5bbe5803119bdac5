# install.cmake — `cmake --install`: the nnc driver, the runtime archive that `nnc build` links
# into programs and libraries, the runtime headers, and the CMake package (find_package(nnc)
# with nnc_add_model()). Included at the end of the top-level CMakeLists.txt.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# nnc build looks for the runtime archive in <prefix>/<libdir> relative to its own location
target_compile_definitions(nnc PRIVATE NNC_INSTALL_LIBDIR="${CMAKE_INSTALL_LIBDIR}")

install(TARGETS nnc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS nnc_runtime ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/nn_dtype.h
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/rt_model.h
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/rt_program.h
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/rt_io.h
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/rt_tensor.h
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/rt_threads.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nnc)

set(NNC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nnc)
# the package needs to know whether the runtime was built with sanitizers (then programs that
# link it must be as well)
if(NNC_SANITIZE)
  set(NNC_RUNTIME_LINK_OPTIONS "-fsanitize=address,undefined")
else()
  set(NNC_RUNTIME_LINK_OPTIONS "")
endif()
configure_package_config_file(
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/NncConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/nncConfig.cmake
  INSTALL_DESTINATION ${NNC_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/nncConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/nncConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/nncConfigVersion.cmake
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/nnc_add_model.cmake
  DESTINATION ${NNC_CMAKE_DIR})

# pkg-config: `pkg-config --cflags --libs nnc-runtime`; relocatable (paths relative to the
# .pc file), so `cmake --install --prefix P` works for any P
file(RELATIVE_PATH NNC_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
string(REGEX REPLACE "/$" "" NNC_PC_TO_PREFIX "${NNC_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/nnc-runtime.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/nnc-runtime.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/nnc-runtime.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
