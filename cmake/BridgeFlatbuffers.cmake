# Generates C++ from the Arrow IPC flatbuffers schemas in format/ with Debian's flatc.
# Target bridge_ipc_fbs: include "bridge/arrow/fb/Message_generated.h" etc. Private to
# src/bridge/arrow (no public header includes them).
find_program(FLATC_EXECUTABLE flatc REQUIRED)
find_package(FlatBuffers CONFIG REQUIRED)

set(_fbs_dir "${PROJECT_SOURCE_DIR}/format")
set(_fbs_out "${PROJECT_BINARY_DIR}/generated/bridge/arrow/fb")
set(_fbs_headers "")
foreach(name Schema Message File)
  list(APPEND _fbs_headers "${_fbs_out}/${name}_generated.h")
endforeach()
add_custom_command(
  OUTPUT ${_fbs_headers}
  COMMAND ${CMAKE_COMMAND} -E make_directory "${_fbs_out}"
  COMMAND ${FLATC_EXECUTABLE} --cpp --scoped-enums -o "${_fbs_out}"
          "${_fbs_dir}/Schema.fbs" "${_fbs_dir}/Message.fbs" "${_fbs_dir}/File.fbs"
  DEPENDS "${_fbs_dir}/Schema.fbs" "${_fbs_dir}/Message.fbs" "${_fbs_dir}/File.fbs"
  COMMENT "flatc: Arrow IPC schemas"
  VERBATIM)
add_custom_target(bridge_ipc_fbs_gen DEPENDS ${_fbs_headers})
add_library(bridge_ipc_fbs INTERFACE)
add_dependencies(bridge_ipc_fbs bridge_ipc_fbs_gen)
target_include_directories(bridge_ipc_fbs SYSTEM INTERFACE "${PROJECT_BINARY_DIR}/generated")
target_link_libraries(bridge_ipc_fbs INTERFACE flatbuffers::flatbuffers)
