// Authentication shared by the HTTP and Flight servers: users from a TOML file with
// argon2id password hashes, and signed, expiring bearer tokens.
//
// The Authenticator is transport-neutral: it takes the value of an `Authorization` header
// ("Basic ..." / "Bearer ...", scheme case-insensitive) or a bare token, and returns a
// Principal or an Unauthenticated status. Tokens are
//   base64url(payload) "." base64url(HMAC-SHA256(secret, base64url(payload)))
// with a versioned payload naming the user, permissions, issue and expiry times and a
// random nonce, so the same token works on every transport of one process (or of several
// processes sharing `token_secret`).
//
// Thread safety: an Authenticator is immutable after Make; every method may be called
// from any thread at the same time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace bridge::auth {

enum Permission : uint32_t { kRead = 1u << 0, kIngest = 1u << 1, kAdmin = 1u << 2 };
inline constexpr uint32_t kAllPermissions = kRead | kIngest | kAdmin;

// Parses "read" | "ingest" | "admin". InvalidArgument otherwise.
Result<Permission> ParsePermission(std::string_view name);
// Returns the names of the bits set in `permissions`, comma-separated ("read,ingest").
std::string PermissionNames(uint32_t permissions);

struct Principal {
  std::string user;                                 // "" = anonymous (auth disabled)
  uint32_t permissions = 0;                         // bit set of Permission
  std::chrono::system_clock::time_point expires{};  // token expiry (max() for anonymous)
  bool Has(Permission p) const { return (permissions & p) != 0; }
};

struct AuthOptions {
  std::filesystem::path users_file;  // TOML users file; empty = auth disabled
  // HMAC key (>= 32 bytes); empty = 32 random bytes per process, so tokens then stop
  // working when the process restarts.
  std::string token_secret;
  std::chrono::seconds token_ttl{3600};
};

// One user of the users file.
struct UserRecord {
  std::string password_hash;  // argon2id PHC string
  uint32_t permissions = 0;
};

// Loads a users file:
//   [users.alice]
//   password = "$argon2id$v=19$m=19456,t=2,p=1$..."
//   permissions = ["read", "ingest"]   # read | ingest | admin
// Returns NotFound if the file does not exist, InvalidArgument (naming the file, user and
// key) for TOML syntax errors, unknown keys, bad permission names, a missing password or a
// password that is not an argon2id PHC string.
Result<std::map<std::string, UserRecord, std::less<>>> LoadUsersFile(
    const std::filesystem::path& path);
// Same for TOML text already in memory; `source` names it in messages.
Result<std::map<std::string, UserRecord, std::less<>>> ParseUsers(std::string_view toml,
                                                                  std::string_view source);

class Authenticator {  // thread-safe, immutable after Make
 public:
  // Loads options.users_file (if set) and checks the options. InvalidArgument for a
  // token_secret shorter than 32 bytes or a non-positive token_ttl, and the errors of
  // LoadUsersFile.
  static Result<std::unique_ptr<Authenticator>> Make(const AuthOptions& options);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // True when a users file was given (requests must then authenticate).
  bool enabled() const;

  // Checks user + password against the users file (argon2id). Unauthenticated on failure
  // (same message for unknown user and wrong password). When !enabled(): Unauthenticated
  // ("authentication is disabled").
  Result<Principal> Login(std::string_view user, std::string_view password) const;

  // Parses an `Authorization: Basic base64(user:password)` header value, then Login.
  // Unauthenticated for a missing or malformed value.
  Result<Principal> LoginBasic(std::string_view authorization) const;

  // Signed bearer token for `principal` expiring at now + token_ttl (sets
  // principal.expires, rounded down to whole seconds).
  std::string IssueToken(Principal& principal, std::chrono::system_clock::time_point now =
                                                   std::chrono::system_clock::now()) const;

  // Verifies an `Authorization: Bearer <token>` header value (or the bare token).
  // Unauthenticated for missing/malformed/forged/expired tokens, with a message saying which
  // ("missing bearer token", "malformed token", "invalid token signature", "token expired").
  // When !enabled(): returns the anonymous principal with every permission, whatever the
  // input.
  Result<Principal> VerifyBearer(
      std::string_view authorization,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  // Either kind of `Authorization` value: "Basic ..." -> LoginBasic (the principal then
  // has no expiry set), anything else -> VerifyBearer. When !enabled(): the anonymous
  // principal. Basic costs one argon2id verify (tens of ms, ~19 MiB) per call, so clients
  // should trade it for a token once.
  Result<Principal> Authenticate(
      std::string_view authorization,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  std::chrono::seconds token_ttl() const;

 private:
  struct State;
  explicit Authenticator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The anonymous principal of a server without authentication: every permission, never
// expires.
Principal AnonymousPrincipal();

}  // namespace bridge::auth
