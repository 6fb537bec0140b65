// `bridge hash-password`: reads one password line from stdin and prints its argon2id PHC
// string, for the users file (see src/bridge/auth/README.md).
#pragma once

#include <iosfwd>

namespace bridge::app {

// Reads one line from `in` (trailing "\n" or "\r\n" stripped), writes the PHC string and a
// newline to `out`. Returns 0 on success, 2 (message on `err`) for an empty password or a
// hashing failure.
int RunHashPassword(std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace bridge::app
