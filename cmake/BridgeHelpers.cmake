# Project-wide compile flags and one-line helpers for libraries, tests and benchmarks.

set(BRIDGE_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports std::string concatenation at -O3 as overlapping memcpy (GCC bug 105329).
  list(APPEND BRIDGE_WARNINGS -Wno-restrict)
endif()
if(BRIDGE_SANITIZE)
  set(BRIDGE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
endif()

# bridge_add_library(NAME SOURCES ... DEPS ...): one library per module, bridge_<module>.
function(bridge_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}/src")
  target_compile_options(${name} PRIVATE ${BRIDGE_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  bridge_sanitize(${name})
endfunction()

function(bridge_sanitize target)
  if(BRIDGE_SANITIZE)
    target_compile_options(${target} PRIVATE ${BRIDGE_SANITIZER_FLAGS})
    target_link_options(${target} PRIVATE ${BRIDGE_SANITIZER_FLAGS})
  endif()
endfunction()

# bridge_add_test(NAME SOURCES ... DEPS ...): a GoogleTest binary whose tests ctest runs
# one by one. The test presets (CMakePresets.json) set $BRIDGE_BINARY (the `bridge`
# binary: a test that runs it must add_dependencies on it), $BRIDGE_SOURCE_DIR and
# $BRIDGE_SHARED_DIR (../shared: golden files).
function(bridge_add_test name)
  if(NOT BRIDGE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${BRIDGE_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} bridge_testing GTest::gmock_main)
  bridge_sanitize(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60)
endfunction()

# bridge_add_bench(NAME SOURCES ... DEPS ...): a Google Benchmark binary.
function(bridge_add_bench name)
  if(NOT BRIDGE_BUILD_BENCH)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${BRIDGE_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()
