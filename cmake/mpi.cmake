# mpi.cmake — data-parallel programs (`nnc build --mpi`, docs/distributed.md): where CMake
# finds MPI for C, the MPI main (runtime/rt_mpi.c) becomes libnnc_runtime_mpi.a beside the
# runtime archive, and nnc learns the libraries a program links it with (FindMPI's, the
# ones mpicc adds). Without MPI everything else builds and tests the same, and `nnc build
# --mpi` says that this nnc was built without it.
find_package(MPI COMPONENTS C QUIET)
if(MPI_C_FOUND)
  add_library(nnc_runtime_mpi STATIC ${CMAKE_CURRENT_SOURCE_DIR}/runtime/rt_mpi.c)
  set_target_properties(nnc_runtime_mpi PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(nnc_runtime_mpi PUBLIC nnc_runtime MPI::MPI_C)
  # what `cc` needs to link a program with MPI: its link flags, then its libraries, as one
  # string with '|' between the arguments
  set(NNC_MPI_LINK ${MPI_C_LINK_FLAGS} ${MPI_C_LIBRARIES})
  string(REPLACE ";" "|" NNC_MPI_LINK_DEF "${NNC_MPI_LINK}")
  target_compile_definitions(nnc PRIVATE "NNC_MPI_LINK=\"${NNC_MPI_LINK_DEF}\"")
  add_dependencies(nnc nnc_runtime_mpi)
  install(TARGETS nnc_runtime_mpi ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  message(STATUS "MPI for C found: nnc build --mpi links ${NNC_MPI_LINK}")
else()
  message(STATUS "MPI for C not found: nnc build --mpi is not available")
endif()
