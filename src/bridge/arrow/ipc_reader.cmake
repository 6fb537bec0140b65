# The Arrow IPC reader (stream, file, schema messages), its tests and fuzz targets.
# Included from src/bridge/arrow/CMakeLists.txt after bridge_arrow is defined.

target_sources(bridge_arrow PRIVATE
  reader.cc
  reader_array_internal.cc
  reader_memory_internal.cc
  reader_message_internal.cc
  schema_decode_internal.cc)
target_link_libraries(bridge_arrow PRIVATE bridge_ipc_fbs)

bridge_add_test(reader_test SOURCES reader_test.cc DEPS bridge_arrow bridge_ipc_fbs)
bridge_add_test(bad_input_test SOURCES bad_input_test.cc DEPS bridge_arrow)
if(BRIDGE_BUILD_TESTS)
  # Where the golden files are when $BRIDGE_SHARED_DIR is not set (plain ctest, no preset).
  foreach(test reader_test bad_input_test)
    target_compile_definitions(${test} PRIVATE
      BRIDGE_DEFAULT_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
  endforeach()
endif()

# Fuzz targets (libFuzzer): -DBRIDGE_FUZZ=ON with clang. Combine with -DBRIDGE_SANITIZE=ON
# so that the library is instrumented too.
option(BRIDGE_FUZZ "Build the libFuzzer fuzz targets (clang only)" OFF)
if(BRIDGE_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "BRIDGE_FUZZ needs clang (libFuzzer); configure with CXX=clang++-14")
endif()

# bridge_add_fuzz(NAME SOURCES ... DEPS ...): a libFuzzer binary built with ASan and UBSan.
if(NOT COMMAND bridge_add_fuzz)
  function(bridge_add_fuzz name)
    if(NOT BRIDGE_FUZZ)
      return()
    endif()
    cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
    add_executable(${name} ${ARG_SOURCES})
    target_compile_options(${name} PRIVATE ${BRIDGE_WARNINGS}
      -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  endfunction()
endif()

if(BRIDGE_FUZZ)
  # Coverage instrumentation for the code under test, so libFuzzer can steer by it.
  target_compile_options(bridge_arrow PRIVATE -fsanitize=fuzzer-no-link)
endif()

bridge_add_fuzz(reader_fuzz SOURCES reader_fuzz.cc DEPS bridge_arrow)
bridge_add_fuzz(file_reader_fuzz SOURCES file_reader_fuzz.cc DEPS bridge_arrow)
