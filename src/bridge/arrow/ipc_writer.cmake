# Arrow IPC writer: schema encoding, message encoder, stream/file writers, body compression.
# Included from CMakeLists.txt of this folder.
find_package(zstd CONFIG REQUIRED)
# liblz4 ships no CMake package; Debian's liblz4-dev has the library and lz4frame.h.
find_library(BRIDGE_LZ4_LIBRARY NAMES lz4 REQUIRED)
find_path(BRIDGE_LZ4_INCLUDE_DIR lz4frame.h REQUIRED)
bridge_link_statically(zstd::libzstd_shared)
if(BRIDGE_STATIC_DEPS)
  _bridge_static_archive("${BRIDGE_LZ4_LIBRARY}" BRIDGE_LZ4_LIBRARY)
endif()

target_sources(bridge_arrow PRIVATE
  compression.cc
  schema_encode_internal.cc
  encoder.cc
  writer.cc)
target_include_directories(bridge_arrow SYSTEM PRIVATE "${BRIDGE_LZ4_INCLUDE_DIR}")
target_link_libraries(bridge_arrow PRIVATE bridge_ipc_fbs zstd::libzstd_shared ${BRIDGE_LZ4_LIBRARY})

bridge_add_test(compression_test SOURCES compression_test.cc DEPS bridge_arrow)
bridge_add_test(encoder_test SOURCES encoder_test.cc DEPS bridge_arrow bridge_arrow_testing bridge_ipc_fbs bridge_engine)
bridge_add_test(writer_test SOURCES writer_test.cc DEPS bridge_arrow bridge_arrow_testing bridge_ipc_fbs bridge_engine)
