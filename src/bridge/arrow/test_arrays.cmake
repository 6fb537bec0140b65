# bridge_arrow_testing: test-only builders of C Data Interface arrays and schemas, and a
# value reader, shared by this folder's tests. Included from CMakeLists.txt of this folder
# before the files whose tests link it.
if(BRIDGE_BUILD_TESTS)
  bridge_add_library(bridge_arrow_testing
    SOURCES test_arrays.cc
    DEPS bridge_arrow bridge_testing)
endif()
