# Finds every third-party dependency once, as imported targets.
include(BridgeStaticDeps)
find_package(Threads REQUIRED)
find_package(absl CONFIG REQUIRED)
get_directory_property(_imported IMPORTED_TARGETS)
list(FILTER _imported INCLUDE REGEX "^absl::")
bridge_link_statically(${_imported})
find_package(spdlog CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(tomlplusplus CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)

# DuckDB: libduckdb.so + duckdb.h, either from an official release folder or from the
# npm pin installed by scripts/bootstrap.
if(BRIDGE_DUCKDB_ROOT)
  set(_duckdb_lib_dir "${BRIDGE_DUCKDB_ROOT}")
  set(_duckdb_include_dir "${BRIDGE_DUCKDB_ROOT}")
else()
  set(_duckdb_modules "${PROJECT_SOURCE_DIR}/third_party/duckdb/node_modules")
  set(_duckdb_lib_dir "${_duckdb_modules}/@duckdb/node-bindings-linux-x64")
  set(_duckdb_include_dir "${_duckdb_modules}/duckdb/src/duckdb/src/include")
endif()
find_library(DUCKDB_LIBRARY NAMES duckdb PATHS "${_duckdb_lib_dir}" NO_DEFAULT_PATH)
find_path(DUCKDB_INCLUDE_DIR duckdb.h PATHS "${_duckdb_include_dir}" NO_DEFAULT_PATH)
if(NOT DUCKDB_LIBRARY OR NOT DUCKDB_INCLUDE_DIR)
  message(FATAL_ERROR
    "DuckDB not found in '${_duckdb_lib_dir}' / '${_duckdb_include_dir}'. "
    "Run scripts/bootstrap, or pass -DBRIDGE_DUCKDB_ROOT=<folder with libduckdb.so and duckdb.h>.")
endif()
add_library(duckdb_c SHARED IMPORTED GLOBAL)
set_target_properties(duckdb_c PROPERTIES
  IMPORTED_LOCATION "${DUCKDB_LIBRARY}"
  IMPORTED_NO_SONAME OFF)
# duckdb.h is a third-party header: include it as a system header so -Werror stays ours.
target_include_directories(duckdb_c SYSTEM INTERFACE "${DUCKDB_INCLUDE_DIR}")
get_filename_component(DUCKDB_LIBRARY_DIR "${DUCKDB_LIBRARY}" DIRECTORY)
# The binaries find libduckdb.so through their RPATH, so no LD_LIBRARY_PATH is needed.
set(CMAKE_BUILD_RPATH "${DUCKDB_LIBRARY_DIR}")
set(CMAKE_INSTALL_RPATH "${DUCKDB_LIBRARY_DIR}")
message(STATUS "DuckDB: ${DUCKDB_LIBRARY}")

if(BRIDGE_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  include(GoogleTest)
endif()
if(BRIDGE_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)
endif()

# Front doors (HTTP, auth, metrics).
find_package(Boost 1.74 REQUIRED)  # header-only: Beast, Asio
find_package(OpenSSL REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ARGON2 REQUIRED IMPORTED_TARGET libargon2)
bridge_link_statically(PkgConfig::ARGON2)

# Flight: gRPC and protobuf (src/bridge/flight generates code with them). Found here, at the
# top, so that their targets (and re2, c-ares) are switched to static archives for every
# binary that links them.
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
bridge_link_statically(gRPC::grpc++ gRPC::grpc gRPC::gpr gRPC::upb gRPC::address_sorting
  protobuf::libprotobuf re2::re2 c-ares::cares)
if(BRIDGE_BUILD_TESTS)
  find_package(CURL REQUIRED)
endif()
