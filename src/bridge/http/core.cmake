# Pure request/response pieces of the HTTP server (no Beast): request parsing, REST rows
# queries, error bodies, metrics.
bridge_add_library(bridge_http_core
  SOURCES request.cc rows_query.cc errors.cc metrics.cc files.cc
  DEPS bridge_cache bridge_cache_key bridge_engine bridge_catalog bridge_arrow bridge_common prometheus-cpp::core)
target_link_libraries(bridge_http_core PRIVATE nlohmann_json::nlohmann_json)
bridge_add_test(http_core_test
  SOURCES request_test.cc rows_query_test.cc errors_test.cc metrics_test.cc files_test.cc
  DEPS bridge_http_core bridge_catalog bridge_engine)
