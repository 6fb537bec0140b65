#include "bridge/auth/base64_internal.h"
#include "bridge/auth/token_internal.h"
#include "bridge/common/testing.h"

namespace bridge::auth::internal {
namespace {

const std::string kSecret(32, 'k');

TokenClaims Claims() {
  TokenClaims claims;
  claims.user = "alice.o'neil|x";
  claims.permissions = 5;
  claims.issued_at = 1000;
  claims.expires_at = 4600;
  return claims;
}

TEST(TokenTest, RoundTrip) {
  std::string token = SignToken(Claims(), kSecret);
  EXPECT_EQ(
      token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      std::string::npos)
      << token;
  ASSERT_OK_AND_ASSIGN(TokenClaims claims, VerifyToken(token, kSecret, 1000));
  EXPECT_EQ(claims.user, "alice.o'neil|x");
  EXPECT_EQ(claims.permissions, 5u);
  EXPECT_EQ(claims.issued_at, 1000);
  EXPECT_EQ(claims.expires_at, 4600);
  EXPECT_FALSE(claims.nonce.empty());
}

TEST(TokenTest, TwoTokensOfTheSameSecondDiffer) {
  EXPECT_NE(SignToken(Claims(), kSecret), SignToken(Claims(), kSecret));
}

TEST(TokenTest, Expired) {
  std::string token = SignToken(Claims(), kSecret);
  EXPECT_OK(VerifyToken(token, kSecret, 4599));
  EXPECT_STATUS(VerifyToken(token, kSecret, 4600), StatusCode::kUnauthenticated, "token expired");
}

TEST(TokenTest, OtherSecretOrTamperedPayloadIsABadSignature) {
  std::string token = SignToken(Claims(), kSecret);
  EXPECT_STATUS(VerifyToken(token, std::string(32, 'x'), 1000), StatusCode::kUnauthenticated,
                "invalid token signature");
  // Re-encode the payload with more permissions and keep the old signature.
  size_t dot = token.find('.');
  std::string payload = *Base64UrlDecode(token.substr(0, dot));
  payload[2] = '7';
  std::string forged = Base64UrlEncode(payload) + token.substr(dot);
  EXPECT_STATUS(VerifyToken(forged, kSecret, 1000), StatusCode::kUnauthenticated,
                "invalid token signature");
  // Flip one character of the signature.
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_STATUS(VerifyToken(flipped, kSecret, 1000), StatusCode::kUnauthenticated,
                "invalid token signature");
}

TEST(TokenTest, Malformed) {
  std::string token = SignToken(Claims(), kSecret);
  for (std::string bad : {std::string(), std::string("."), std::string("abc"), std::string(".abc"),
                          std::string("a b.c"), token + "=", token.substr(0, token.find('.')),
                          "%%%." + token, std::string(5000, 'A') + ".AAAA"}) {
    EXPECT_STATUS(VerifyToken(bad, kSecret, 1000), StatusCode::kUnauthenticated, "malformed token")
        << bad;
  }
}

TEST(TokenTest, SignedButUnparsablePayloadIsMalformed) {
  // A correctly signed token whose payload lacks a user is still refused.
  TokenClaims claims = Claims();
  claims.user = "";
  EXPECT_STATUS(VerifyToken(SignToken(claims, kSecret), kSecret, 1000),
                StatusCode::kUnauthenticated, "malformed token");
}

}  // namespace
}  // namespace bridge::auth::internal
