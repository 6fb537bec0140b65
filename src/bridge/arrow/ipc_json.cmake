# The Arrow integration-test JSON format (bridge_arrow_json) and the tests that prove Bridge's
# IPC reader and writer agree with other Arrow implementations. Included from
# src/bridge/arrow/CMakeLists.txt.
find_package(nlohmann_json CONFIG REQUIRED)
find_package(ZLIB REQUIRED)

bridge_add_library(bridge_arrow_json
  SOURCES integration_json.cc
  DEPS bridge_arrow bridge_common)
# nlohmann-json and zlib stay behind integration_json.h.
target_link_libraries(bridge_arrow_json PRIVATE nlohmann_json::nlohmann_json ZLIB::ZLIB)

bridge_add_test(integration_json_test
  SOURCES integration_json_test.cc
  DEPS bridge_arrow_json bridge_arrow_testing bridge_engine)
if(BRIDGE_BUILD_TESTS)
  target_link_libraries(integration_json_test PRIVATE nlohmann_json::nlohmann_json)
endif()

# One test per golden file of ../shared/arrow-testing/integration (listed when the binary
# starts; ctest's discovery runs it without BRIDGE_SHARED_DIR, hence the default).
bridge_add_test(golden_test
  SOURCES golden_test.cc
  DEPS bridge_arrow_json bridge_arrow)
if(BRIDGE_BUILD_TESTS)
  target_compile_definitions(golden_test PRIVATE
    BRIDGE_DEFAULT_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
endif()
