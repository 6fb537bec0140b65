// Signed bearer tokens. Private to auth/ (the Authenticator is the public face).
//
//   token   = base64url(payload) "." base64url(HMAC-SHA256(secret, base64url(payload)))
//   payload = "1" "." permissions "." issued_at "." expires_at "." nonce "." user
// (decimal numbers, times in Unix seconds, nonce = base64url of 12 random bytes; the user
// comes last so it may hold any byte).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace bridge::auth::internal {

struct TokenClaims {
  std::string user;
  uint32_t permissions = 0;
  int64_t issued_at = 0;   // Unix seconds
  int64_t expires_at = 0;  // Unix seconds
  std::string nonce;       // filled by SignToken when empty

  bool operator==(const TokenClaims&) const = default;
};

// Returns the signed token of `claims` (a fresh random nonce when claims.nonce is empty).
std::string SignToken(const TokenClaims& claims, std::string_view secret);

// Checks the signature (constant-time) and expiry of `token` at `now` (Unix seconds).
// Unauthenticated: "malformed token", "invalid token signature", "token expired".
Result<TokenClaims> VerifyToken(std::string_view token, std::string_view secret, int64_t now);

// Upper bound on the length of a token that VerifyToken even looks at.
inline constexpr size_t kMaxTokenLength = 4096;

}  // namespace bridge::auth::internal
