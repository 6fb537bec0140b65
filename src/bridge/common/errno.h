// The text of an errno value, for error messages.
#pragma once

#include <string>
#include <system_error>

namespace bridge {

// "No such file or directory" for ENOENT; thread-safe (unlike strerror).
inline std::string ErrnoMessage(int error) {
  return std::error_code(error, std::generic_category()).message();
}

}  // namespace bridge
