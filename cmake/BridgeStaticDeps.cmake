# Static linking of the dependencies that Debian ships as static archives (gRPC, protobuf,
# Abseil, re2, c-ares, argon2, zstd, lz4).
#
# Why: the dynamic loader resolves every symbol of every shared library at start-up by
# searching all loaded libraries in order. gRPC, protobuf and Abseil are ~50 shared
# libraries; with them `bridge` loaded 67 shared objects and `bridge version` spent 56M
# instructions in ld.so against 23M for a program that only links DuckDB, which made
# `bridge query` ~15 ms slower to start than the DuckDB C API (bench/run). Linked from
# their static archives they cost nothing at start-up. OFF links the shared libraries (e.g.
# for a distribution build).
option(BRIDGE_STATIC_DEPS
  "Link gRPC, protobuf, Abseil, re2, c-ares, argon2, zstd and lz4 from static archives" ON)

# Returns in `out` the static archive beside `library` (lib<name>.a next to
# lib<name>.so[.N], a full path) when it exists, else `library` unchanged.
function(_bridge_static_archive library out)
  set(result "${library}")
  if(library MATCHES "^(/.*)\\.so(\\.[0-9.]+)?$")
    # (${CMAKE_MATCH_1} in the same if() would be expanded before the match runs)
    if(EXISTS "${CMAKE_MATCH_1}.a")
      set(result "${CMAKE_MATCH_1}.a")
    endif()
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# bridge_link_statically(TARGET...): points each imported library target at its static
# archive when one exists: the IMPORTED_LOCATION(s) of library targets, and the .so paths
# or library names ("re2", "-lre2") listed by interface targets. The targets' interface link
# libraries stay as they are, so CMake still orders the archives after their users.
function(bridge_link_statically)
  if(NOT BRIDGE_STATIC_DEPS)
    return()
  endif()
  foreach(target IN LISTS ARGN)
    if(NOT TARGET ${target})
      continue()
    endif()
    get_target_property(imported ${target} IMPORTED)
    if(NOT imported)
      continue()
    endif()
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "INTERFACE_LIBRARY")
      get_target_property(links ${target} INTERFACE_LINK_LIBRARIES)
      if(NOT links)
        continue()
      endif()
      set(rewritten "")
      foreach(link IN LISTS links)
        # A plain name ("re2") or a linker flag ("-lre2", from pkg-config), but not libc's.
        if(link MATCHES "^(-l)?([A-Za-z0-9_+]+)$")
          set(name "${CMAKE_MATCH_2}")
          if(NOT name MATCHES "^(c|m|dl|rt|pthread)$")
            find_library(_bridge_archive_${name} NAMES lib${name}.a)
            if(_bridge_archive_${name})
              set(link "${_bridge_archive_${name}}")
            endif()
          endif()
        endif()
        _bridge_static_archive("${link}" link)
        list(APPEND rewritten "${link}")
      endforeach()
      set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${rewritten}")
      continue()
    endif()
    get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
    set(properties IMPORTED_LOCATION)
    if(configs)
      foreach(config IN LISTS configs)
        list(APPEND properties IMPORTED_LOCATION_${config})
      endforeach()
    endif()
    foreach(property IN LISTS properties)
      get_target_property(location ${target} ${property})
      if(location)
        _bridge_static_archive("${location}" archive)
        set_target_properties(${target} PROPERTIES ${property} "${archive}")
      endif()
    endforeach()
  endforeach()
endfunction()
