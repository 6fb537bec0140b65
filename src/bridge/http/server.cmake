# The Beast HTTP server (routing, streaming responses, TLS) on top of bridge_http_core.
bridge_add_library(bridge_http
  SOURCES server.cc
  DEPS bridge_http_core bridge_cache bridge_auth bridge_format bridge_catalog bridge_engine bridge_arrow
       Boost::headers OpenSSL::SSL Threads::Threads)
target_link_libraries(bridge_http PRIVATE nlohmann_json::nlohmann_json)
bridge_add_test(http_server_test
  SOURCES http_server_test.cc
  DEPS bridge_http bridge_cache bridge_auth CURL::libcurl nlohmann_json::nlohmann_json)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 at -O2 with sanitizers reports boost::optional inside Beast's parser as maybe
  # uninitialized (a false positive in a third-party header).
  target_compile_options(bridge_http PRIVATE -Wno-maybe-uninitialized)
endif()
