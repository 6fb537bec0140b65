#include "bridge/auth/auth.h"

#include <random>

#include "bridge/auth/base64_internal.h"
#include "bridge/auth/password.h"
#include "bridge/common/testing.h"

namespace bridge::auth {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;
using testing::TempDir;
using testing::WriteFile;

const std::string kSecret = "0123456789abcdef0123456789abcdef";

// Argon2 hashing is slow on purpose: hash each test password once per process.
const std::string& Hash(const std::string& password) {
  static auto* cache = new std::map<std::string, std::string>();
  auto it = cache->find(password);
  if (it == cache->end()) it = cache->emplace(password, *HashPassword(password)).first;
  return it->second;
}

std::string UsersToml() {
  return "[users.alice]\npassword = \"" + Hash("alice-pw") +
         "\"\npermissions = [\"read\", \"ingest\"]\n\n"
         "[users.root]\npassword = '" +
         Hash("root-pw") +
         "'\npermissions = [\"read\", \"ingest\", \"admin\"]\n\n"
         "[users.\"no perms\"]\npassword = '" +
         Hash("x") + "'\n";
}

std::unique_ptr<Authenticator> MakeAuth(const TempDir& dir, std::string secret = kSecret) {
  WriteFile(dir.path() / "users.toml", UsersToml());
  AuthOptions options;
  options.users_file = dir.path() / "users.toml";
  options.token_secret = std::move(secret);
  options.token_ttl = seconds(600);
  auto made = Authenticator::Make(options);
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? std::move(made).value() : nullptr;
}

std::string Basic(std::string_view user_password) {
  return "Basic " + internal::Base64Encode(user_password);
}

TEST(UsersFileTest, ParsesUsersAndPermissions) {
  ASSERT_OK_AND_ASSIGN(auto users, ParseUsers(UsersToml(), "users.toml"));
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users["alice"].permissions, kRead | kIngest);
  EXPECT_EQ(users["root"].permissions, kRead | kIngest | kAdmin);
  EXPECT_EQ(users["no perms"].permissions, 0u);
  EXPECT_EQ(users["alice"].password_hash, Hash("alice-pw"));
}

TEST(UsersFileTest, EmptyFileHasNoUsers) {
  ASSERT_OK_AND_ASSIGN(auto users, ParseUsers("", "users.toml"));
  EXPECT_TRUE(users.empty());
}

TEST(UsersFileTest, ErrorsNameTheUserAndKey) {
  const std::string hash = Hash("x");
  struct Case {
    std::string toml;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"[users.bob]\npermissions = [\"read\"]\n", "users.bob: missing password"},
           {"[users.bob]\npassword = \"plain\"\n", "users.bob.password must be an argon2id"},
           {"[users.bob]\npassword = 42\n", "users.bob.password must be an argon2id"},
           {"[users.bob]\npassword = \"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$"
            "aGFzaGhhc2hoYXNoaGFzaA\"\n",
            "users.bob.password must be an argon2id"},
           {"[users.bob]\npassword = \"" + hash + "\"\npermissions = [\"write\"]\n",
            "users.bob.permissions: unknown permission 'write'"},
           {"[users.bob]\npassword = \"" + hash + "\"\npermissions = \"read\"\n",
            "users.bob.permissions must be an array"},
           {"[users.bob]\npassword = \"" + hash + "\"\npermissions = [1]\n",
            "users.bob.permissions must be an array"},
           {"[users.bob]\npassword = \"" + hash + "\"\nrole = \"x\"\n",
            "users.bob: unknown key 'role'"},
           {"[groups.x]\n", "unknown key 'groups'"},
           {"users = 3\n", "users must be a table"},
           {"[users]\nbob = 3\n", "users.bob must be a table"},
           {"[users.\"a:b\"]\npassword = \"" + hash + "\"\n", "user name 'a:b'"},
           {"[users.bob\n", "users.toml:1"},
       }) {
    EXPECT_STATUS(ParseUsers(c.toml, "users.toml"), StatusCode::kInvalidArgument, c.message)
        << c.toml;
  }
}

TEST(UsersFileTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_STATUS(LoadUsersFile(dir.path() / "nope.toml"), StatusCode::kNotFound, "nope.toml");
  AuthOptions options;
  options.users_file = dir.path() / "nope.toml";
  EXPECT_STATUS(Authenticator::Make(options), StatusCode::kNotFound, "nope.toml");
}

TEST(AuthenticatorTest, ShortSecretOrBadTtlIsRefused) {
  AuthOptions options;
  options.token_secret = "short";
  EXPECT_STATUS(Authenticator::Make(options), StatusCode::kInvalidArgument, "at least 32 bytes");
  options.token_secret = "";
  options.token_ttl = seconds(0);
  EXPECT_STATUS(Authenticator::Make(options), StatusCode::kInvalidArgument, "token_ttl");
}

TEST(AuthenticatorTest, DisabledAuthIsAnonymousWithEveryPermission) {
  ASSERT_OK_AND_ASSIGN(auto auth, Authenticator::Make({}));
  EXPECT_FALSE(auth->enabled());
  for (std::string_view header : {"", "Bearer garbage", "Basic Zm9v"}) {
    ASSERT_OK_AND_ASSIGN(Principal p, auth->VerifyBearer(header));
    EXPECT_EQ(p.user, "");
    EXPECT_TRUE(p.Has(kRead) && p.Has(kIngest) && p.Has(kAdmin));
    EXPECT_EQ(p.expires, system_clock::time_point::max());
  }
  EXPECT_STATUS(auth->Login("alice", "alice-pw"), StatusCode::kUnauthenticated, "disabled");
}

TEST(AuthenticatorTest, LoginChecksThePassword) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(auth->enabled());
  ASSERT_OK_AND_ASSIGN(Principal p, auth->Login("alice", "alice-pw"));
  EXPECT_EQ(p.user, "alice");
  EXPECT_TRUE(p.Has(kRead));
  EXPECT_TRUE(p.Has(kIngest));
  EXPECT_FALSE(p.Has(kAdmin));

  Status wrong = auth->Login("alice", "root-pw").status();
  Status unknown = auth->Login("mallory", "alice-pw").status();
  EXPECT_EQ(wrong.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong, unknown);  // same code and message: no user enumeration
  EXPECT_STATUS(auth->Login("", ""), StatusCode::kUnauthenticated, "invalid user name or password");
}

TEST(AuthenticatorTest, LoginBasicParsesTheHeader) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  ASSERT_OK_AND_ASSIGN(Principal p, auth->LoginBasic(Basic("root:root-pw")));
  EXPECT_EQ(p.user, "root");
  EXPECT_TRUE(p.Has(kAdmin));
  ASSERT_OK_AND_ASSIGN(
      p, auth->LoginBasic("  bAsIc    " + internal::Base64Encode("alice:alice-pw") + " "));
  EXPECT_EQ(p.user, "alice");
  // The password may hold ':'.
  EXPECT_STATUS(auth->LoginBasic(Basic("alice:alice-pw:")), StatusCode::kUnauthenticated,
                "invalid user name or password");
  EXPECT_STATUS(auth->LoginBasic(""), StatusCode::kUnauthenticated, "missing");
  EXPECT_STATUS(auth->LoginBasic("Basic"), StatusCode::kUnauthenticated, "missing");
  EXPECT_STATUS(auth->LoginBasic("Bearer abc"), StatusCode::kUnauthenticated, "scheme Basic");
  EXPECT_STATUS(auth->LoginBasic("Basic !!!!"), StatusCode::kUnauthenticated, "malformed");
  EXPECT_STATUS(auth->LoginBasic(Basic("no-colon")), StatusCode::kUnauthenticated, "malformed");
}

TEST(AuthenticatorTest, IssuedTokensVerify) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  ASSERT_OK_AND_ASSIGN(Principal p, auth->Login("alice", "alice-pw"));
  const auto now = system_clock::time_point(seconds(1'800'000'000));
  std::string token = auth->IssueToken(p, now);
  EXPECT_EQ(p.expires, now + seconds(600));
  for (std::string header :
       {"Bearer " + token, "bearer   " + token + "  ", token, "BEARER\t" + token}) {
    ASSERT_OK_AND_ASSIGN(Principal verified, auth->VerifyBearer(header, now + seconds(10)));
    EXPECT_EQ(verified.user, "alice");
    EXPECT_EQ(verified.permissions, kRead | kIngest);
    EXPECT_EQ(verified.expires, now + seconds(600));
  }
  EXPECT_STATUS(auth->VerifyBearer("Bearer " + token, now + seconds(600)),
                StatusCode::kUnauthenticated, "token expired");
}

TEST(AuthenticatorTest, BearerErrorsSayWhich) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  ASSERT_OK_AND_ASSIGN(Principal p, auth->Login("alice", "alice-pw"));
  std::string token = auth->IssueToken(p);
  EXPECT_STATUS(auth->VerifyBearer(""), StatusCode::kUnauthenticated, "missing bearer token");
  EXPECT_STATUS(auth->VerifyBearer("Bearer "), StatusCode::kUnauthenticated,
                "missing bearer token");
  EXPECT_STATUS(auth->VerifyBearer("Bearer YWJj.YWJj"), StatusCode::kUnauthenticated,
                "invalid token signature");
  EXPECT_STATUS(auth->VerifyBearer("Bearer %%%"), StatusCode::kUnauthenticated, "malformed token");
  EXPECT_STATUS(auth->VerifyBearer(Basic("alice:alice-pw")), StatusCode::kUnauthenticated,
                "scheme Bearer");
  std::string forged = token;
  forged[forged.size() / 3] = forged[forged.size() / 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(auth->VerifyBearer(forged).status().code(), StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, TokensOfAnotherSecretAreRejected) {
  TempDir dir;
  auto a = MakeAuth(dir);
  auto b = MakeAuth(dir, std::string(40, 'z'));
  auto same = MakeAuth(dir);
  ASSERT_TRUE(a && b && same);
  ASSERT_OK_AND_ASSIGN(Principal p, a->Login("root", "root-pw"));
  std::string token = a->IssueToken(p);
  EXPECT_STATUS(b->VerifyBearer(token), StatusCode::kUnauthenticated, "invalid token signature");
  // Another process with the same secret (e.g. the Flight server) accepts it.
  ASSERT_OK_AND_ASSIGN(Principal verified, same->VerifyBearer(token));
  EXPECT_EQ(verified.user, "root");
}

TEST(AuthenticatorTest, RandomSecretsDifferPerAuthenticator) {
  TempDir dir;
  WriteFile(dir.path() / "users.toml", UsersToml());
  AuthOptions options;
  options.users_file = dir.path() / "users.toml";
  ASSERT_OK_AND_ASSIGN(auto a, Authenticator::Make(options));
  ASSERT_OK_AND_ASSIGN(auto b, Authenticator::Make(options));
  ASSERT_OK_AND_ASSIGN(Principal p, a->Login("alice", "alice-pw"));
  std::string token = a->IssueToken(p);
  EXPECT_OK(a->VerifyBearer(token));
  EXPECT_STATUS(b->VerifyBearer(token), StatusCode::kUnauthenticated, "invalid token signature");
}

TEST(AuthenticatorTest, TokenPermissionsAreCappedByTheUsersFile) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  Principal elevated{"alice", kAllPermissions, {}};
  ASSERT_OK_AND_ASSIGN(Principal p, auth->VerifyBearer(auth->IssueToken(elevated)));
  EXPECT_EQ(p.permissions, kRead | kIngest);
  Principal ghost{"ghost", kRead, {}};
  EXPECT_STATUS(auth->VerifyBearer(auth->IssueToken(ghost)), StatusCode::kUnauthenticated,
                "unknown user");
}

TEST(AuthenticatorTest, AuthenticateTakesBasicOrBearer) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  ASSERT_OK_AND_ASSIGN(Principal p, auth->Authenticate(Basic("root:root-pw")));
  EXPECT_EQ(p.user, "root");
  std::string token = auth->IssueToken(p);
  ASSERT_OK_AND_ASSIGN(p, auth->Authenticate("Bearer " + token));
  EXPECT_EQ(p.user, "root");
  EXPECT_STATUS(auth->Authenticate(Basic("root:nope")), StatusCode::kUnauthenticated,
                "invalid user name or password");
  EXPECT_STATUS(auth->Authenticate(""), StatusCode::kUnauthenticated, "missing bearer token");
  EXPECT_STATUS(auth->Authenticate("Digest x"), StatusCode::kUnauthenticated, "scheme Bearer");
  ASSERT_OK_AND_ASSIGN(auto disabled, Authenticator::Make({}));
  ASSERT_OK_AND_ASSIGN(p, disabled->Authenticate(Basic("root:nope")));
  EXPECT_EQ(p.permissions, kAllPermissions);
}

TEST(AuthenticatorTest, RandomBearerValuesAreRejected) {
  TempDir dir;
  auto auth = MakeAuth(dir);
  ASSERT_NE(auth, nullptr);
  Principal p{"alice", kRead, {}};
  const std::string token = auth->IssueToken(p);
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) {
    std::string value = "Bearer " + token;
    for (int n = 1 + rng() % 3; n > 0; --n) {
      value[rng() % value.size()] = static_cast<char>(rng() % 256);
    }
    Result<Principal> verified = auth->VerifyBearer(value);
    if (verified.ok()) {
      // Only changes outside the token itself (the scheme's case, spaces) may pass.
      EXPECT_EQ(verified->user, "alice") << value;
    }
  }
}

TEST(PermissionTest, NamesRoundTrip) {
  EXPECT_EQ(PermissionNames(kRead | kAdmin), "read,admin");
  EXPECT_EQ(PermissionNames(0), "");
  ASSERT_OK_AND_ASSIGN(Permission p, ParsePermission("ingest"));
  EXPECT_EQ(p, kIngest);
  EXPECT_STATUS(ParsePermission("Read"), StatusCode::kInvalidArgument, "unknown permission");
}

}  // namespace
}  // namespace bridge::auth
