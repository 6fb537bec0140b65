// Password hashing: argon2id (m=19456 KiB, t=2, p=1, 16-byte random salt, 32-byte hash),
// stored as PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>").
//
// Thread safety: both functions may be called from any thread. Each hash or verify takes
// about 19 MiB of memory and tens of milliseconds of CPU.
#pragma once

#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace bridge::auth {

// Returns the argon2id PHC string of `password` with a fresh random salt. InvalidArgument
// for an empty password; Internal if the random generator or argon2 fails.
Result<std::string> HashPassword(std::string_view password);

// Returns true if `password` matches `phc_hash`. False (never a crash) for anything that is
// not a valid argon2id PHC string.
bool VerifyPassword(std::string_view phc_hash, std::string_view password);

// Returns true if `phc_hash` has the shape of an argon2id PHC string with sane parameters.
bool IsArgon2idHash(std::string_view phc_hash);

}  // namespace bridge::auth
