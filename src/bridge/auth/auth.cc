#include "bridge/auth/auth.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>

#include "bridge/auth/base64_internal.h"
#include "bridge/auth/password.h"
#include "bridge/auth/token_internal.h"

namespace bridge::auth {
namespace {

using Clock = std::chrono::system_clock;

constexpr size_t kMinSecretBytes = 32;
constexpr char kBadCredentials[] = "auth: invalid user name or password";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Splits "<scheme> <credentials>" (any number of spaces/tabs). The scheme is empty when
// the value is one word.
std::pair<std::string_view, std::string_view> SplitScheme(std::string_view value) {
  value = Trim(value);
  size_t space = value.find_first_of(" \t");
  if (space == std::string_view::npos) return {{}, value};
  return {value.substr(0, space), Trim(value.substr(space))};
}

int64_t ToUnixSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

Result<Permission> ParsePermission(std::string_view name) {
  if (name == "read") return kRead;
  if (name == "ingest") return kIngest;
  if (name == "admin") return kAdmin;
  return InvalidArgument("auth: unknown permission '", name, "' (read, ingest, admin)");
}

std::string PermissionNames(uint32_t permissions) {
  std::string out;
  for (auto [bit, name] :
       {std::pair{kRead, "read"}, std::pair{kIngest, "ingest"}, std::pair{kAdmin, "admin"}}) {
    if ((permissions & bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

Principal AnonymousPrincipal() { return Principal{"", kAllPermissions, Clock::time_point::max()}; }

struct Authenticator::State {
  bool enabled = false;
  std::string secret;
  std::chrono::seconds token_ttl{3600};
  std::map<std::string, UserRecord, std::less<>> users;
  // Verified against for unknown users, so a login takes as long whether or not the user
  // exists.
  std::string dummy_hash;
};

Authenticator::Authenticator(std::unique_ptr<State> state) : state_(std::move(state)) {}
Authenticator::~Authenticator() = default;

Result<std::unique_ptr<Authenticator>> Authenticator::Make(const AuthOptions& options) {
  auto state = std::make_unique<State>();
  if (options.token_ttl.count() <= 0) {
    return InvalidArgument("auth: token_ttl must be positive, got ", options.token_ttl.count(),
                           " s");
  }
  state->token_ttl = options.token_ttl;
  if (options.token_secret.empty()) {
    state->secret.resize(kMinSecretBytes);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(state->secret.data()),
                   static_cast<int>(state->secret.size())) != 1) {
      return absl::InternalError("auth: RAND_bytes failed");
    }
  } else if (options.token_secret.size() < kMinSecretBytes) {
    return InvalidArgument("auth: token_secret must be at least ", kMinSecretBytes, " bytes, got ",
                           options.token_secret.size());
  } else {
    state->secret = options.token_secret;
  }
  if (!options.users_file.empty()) {
    BRIDGE_ASSIGN_OR_RETURN(state->users, LoadUsersFile(options.users_file));
    state->enabled = true;
    std::string random(16, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(random.data()),
                   static_cast<int>(random.size())) != 1) {
      return absl::InternalError("auth: RAND_bytes failed");
    }
    BRIDGE_ASSIGN_OR_RETURN(state->dummy_hash, HashPassword(internal::Base64Encode(random)));
  }
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(state)));
}

bool Authenticator::enabled() const { return state_->enabled; }

std::chrono::seconds Authenticator::token_ttl() const { return state_->token_ttl; }

Result<Principal> Authenticator::Login(std::string_view user, std::string_view password) const {
  if (!state_->enabled) return absl::UnauthenticatedError("auth: authentication is disabled");
  auto it = state_->users.find(user);
  if (it == state_->users.end()) {
    VerifyPassword(state_->dummy_hash, password);
    return absl::UnauthenticatedError(kBadCredentials);
  }
  if (!VerifyPassword(it->second.password_hash, password)) {
    return absl::UnauthenticatedError(kBadCredentials);
  }
  return Principal{it->first, it->second.permissions, {}};
}

Result<Principal> Authenticator::LoginBasic(std::string_view authorization) const {
  auto [scheme, credentials] = SplitScheme(authorization);
  if (credentials.empty() || (scheme.empty() && EqualsIgnoreCase(credentials, "basic"))) {
    return absl::UnauthenticatedError("auth: missing Basic credentials");
  }
  if (!EqualsIgnoreCase(scheme, "basic")) {
    return absl::UnauthenticatedError("auth: expected an Authorization header of scheme Basic");
  }
  std::optional<std::string> decoded = internal::Base64Decode(credentials);
  size_t colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) {
    return absl::UnauthenticatedError(
        "auth: malformed Basic credentials (expected base64 of user:password)");
  }
  return Login(std::string_view(*decoded).substr(0, colon),
               std::string_view(*decoded).substr(colon + 1));
}

Result<Principal> Authenticator::Authenticate(std::string_view authorization,
                                              Clock::time_point now) const {
  if (!state_->enabled) return AnonymousPrincipal();
  auto [scheme, credentials] = SplitScheme(authorization);
  if (EqualsIgnoreCase(scheme, "basic")) return LoginBasic(authorization);
  return VerifyBearer(authorization, now);
}

std::string Authenticator::IssueToken(Principal& principal, Clock::time_point now) const {
  internal::TokenClaims claims;
  claims.user = principal.user;
  claims.permissions = principal.permissions;
  claims.issued_at = ToUnixSeconds(now);
  claims.expires_at = claims.issued_at + state_->token_ttl.count();
  principal.expires = Clock::time_point(std::chrono::seconds(claims.expires_at));
  return internal::SignToken(claims, state_->secret);
}

Result<Principal> Authenticator::VerifyBearer(std::string_view authorization,
                                              Clock::time_point now) const {
  if (!state_->enabled) return AnonymousPrincipal();
  auto [scheme, token] = SplitScheme(authorization);
  if (!scheme.empty() && !EqualsIgnoreCase(scheme, "bearer")) {
    return absl::UnauthenticatedError("auth: expected an Authorization header of scheme Bearer");
  }
  if (token.empty() || (scheme.empty() && EqualsIgnoreCase(token, "bearer"))) {
    return absl::UnauthenticatedError("auth: missing bearer token");
  }
  BRIDGE_ASSIGN_OR_RETURN(internal::TokenClaims claims,
                          internal::VerifyToken(token, state_->secret, ToUnixSeconds(now)));
  // A token outlives neither its user nor the permissions the users file still grants.
  auto it = state_->users.find(claims.user);
  if (it == state_->users.end()) {
    return absl::UnauthenticatedError("auth: token of an unknown user");
  }
  return Principal{it->first, claims.permissions & it->second.permissions,
                   Clock::time_point(std::chrono::seconds(claims.expires_at))};
}

}  // namespace bridge::auth
