#include "bridge/auth/password.h"

#include <sstream>

#include "bridge/app/hash_password.h"
#include "bridge/auth/base64_internal.h"
#include "bridge/common/testing.h"

namespace bridge::auth {
namespace {

using internal::Base64Decode;
using internal::Base64Encode;
using internal::Base64UrlDecode;
using internal::Base64UrlEncode;

TEST(PasswordTest, HashHasTheAgreedParametersAndVerifies) {
  ASSERT_OK_AND_ASSIGN(std::string hash, HashPassword("correct horse"));
  EXPECT_THAT(hash, ::testing::StartsWith("$argon2id$v=19$m=19456,t=2,p=1$"));
  EXPECT_TRUE(IsArgon2idHash(hash));
  EXPECT_TRUE(VerifyPassword(hash, "correct horse"));
  EXPECT_FALSE(VerifyPassword(hash, "correct horsE"));
  EXPECT_FALSE(VerifyPassword(hash, ""));
}

TEST(PasswordTest, SaltIsRandom) {
  ASSERT_OK_AND_ASSIGN(std::string a, HashPassword("pw"));
  ASSERT_OK_AND_ASSIGN(std::string b, HashPassword("pw"));
  EXPECT_NE(a, b);
  EXPECT_TRUE(VerifyPassword(b, "pw"));
}

TEST(PasswordTest, EmptyPasswordIsRefused) {
  EXPECT_STATUS(HashPassword(""), StatusCode::kInvalidArgument, "empty");
}

TEST(PasswordTest, GarbageHashesVerifyFalse) {
  ASSERT_OK_AND_ASSIGN(std::string good, HashPassword("pw"));
  for (std::string bad : {std::string(), std::string("x"), std::string("$argon2id$"),
                          std::string("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
                          std::string("$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0$"
                                      "aGFzaGhhc2hoYXNoaGFzaA"),
                          std::string("$argon2id$v=19$m=19456,t=99999999,p=1$c2FsdHNhbHRzYWx0$"
                                      "aGFzaGhhc2hoYXNoaGFzaA"),
                          std::string("$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$"
                                      "aGFzaGhhc2hoYXNoaGFzaA"),
                          std::string("$argon2id$v=19$m=19456,t=2,p=1$!!!$???"),
                          std::string("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0"),
                          good.substr(0, good.size() - 5), good + "A", good + std::string(1, '\0'),
                          std::string(10000, '$')}) {
    EXPECT_FALSE(VerifyPassword(bad, "pw")) << bad;
  }
}

TEST(PasswordTest, ParametersOutsideTheBoundsAreNotArgon2idHashes) {
  EXPECT_TRUE(
      IsArgon2idHash("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$"
                     "aGFzaGhhc2hoYXNoaGFzaA"));
  EXPECT_FALSE(
      IsArgon2idHash("$argon2id$v=19$m=4194304,t=3,p=4$c2FsdHNhbHRzYWx0$"
                     "aGFzaGhhc2hoYXNoaGFzaA"));
  EXPECT_FALSE(
      IsArgon2idHash("$argon2id$v=16$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$"
                     "aGFzaGhhc2hoYXNoaGFzaA"));
}

TEST(Base64Test, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes) << n;
    std::string url = Base64UrlEncode(bytes);
    EXPECT_EQ(url.find_first_of("+/="), std::string::npos) << url;
    EXPECT_EQ(Base64UrlDecode(url), bytes) << n;
    bytes.push_back(static_cast<char>(n * 37 + 250));
  }
}

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(Base64Decode("YWxpY2U6c2VjcmV0"), "alice:secret");
}

TEST(Base64Test, RejectsBadInput) {
  for (std::string_view bad :
       {"Zm8", "Zm8=A===", "Z===", "Zm 9v", "Zm9v\n", "Zm9-", "Zm9_", "=Zm9", "Zm=v", "é123"}) {
    EXPECT_EQ(Base64Decode(bad), std::nullopt) << bad;
  }
  const std::vector<std::string_view> bad_url = {
      "Zm8=", "A", "Zm9+", "Zm9/", "Zm 9", "AAAAA", std::string_view("Zm9\0v", 5)};
  for (std::string_view bad : bad_url) {
    EXPECT_EQ(Base64UrlDecode(bad), std::nullopt) << bad;
  }
}

TEST(HashPasswordCommandTest, PrintsAVerifyingHash) {
  std::istringstream in("s3cret pass\r\n");
  std::ostringstream out, err;
  EXPECT_EQ(app::RunHashPassword(in, out, err), 0) << err.str();
  std::string line = out.str();
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  line.pop_back();
  EXPECT_TRUE(VerifyPassword(line, "s3cret pass")) << line;
  EXPECT_EQ(err.str(), "");
}

TEST(HashPasswordCommandTest, WithoutTrailingNewline) {
  std::istringstream in("pw");
  std::ostringstream out, err;
  EXPECT_EQ(app::RunHashPassword(in, out, err), 0);
  EXPECT_TRUE(VerifyPassword(out.str().substr(0, out.str().size() - 1), "pw"));
}

TEST(HashPasswordCommandTest, RefusesAnEmptyPassword) {
  for (std::string input : {"", "\n", "\r\n"}) {
    std::istringstream in(input);
    std::ostringstream out, err;
    EXPECT_EQ(app::RunHashPassword(in, out, err), 2);
    EXPECT_EQ(out.str(), "");
    EXPECT_THAT(err.str(), ::testing::HasSubstr("no password"));
  }
}

}  // namespace
}  // namespace bridge::auth
