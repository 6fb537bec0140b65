#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <vector>

#include "bridge/auth/base64_internal.h"
#include "bridge/auth/token_internal.h"

namespace bridge::auth::internal {
namespace {

constexpr std::string_view kVersion = "1";

std::string Signature(std::string_view signed_text, std::string_view secret) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac.data(),
       &mac_length);
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac_length));
}

template <typename Int>
bool ParseDecimal(std::string_view text, Int* value) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

Status Malformed() { return absl::UnauthenticatedError("auth: malformed token"); }

}  // namespace

std::string SignToken(const TokenClaims& claims, std::string_view secret) {
  std::string nonce = claims.nonce;
  if (nonce.empty()) {
    std::array<unsigned char, 12> random{};
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      // Tokens stay unique through issued_at and stay unforgeable through the HMAC; the
      // nonce only makes two tokens of one second differ.
      random.fill(0);
    }
    nonce = Base64UrlEncode(
        std::string_view(reinterpret_cast<const char*>(random.data()), random.size()));
  }
  std::string payload = StrCat(kVersion, ".", claims.permissions, ".", claims.issued_at, ".",
                               claims.expires_at, ".", nonce, ".", claims.user);
  std::string encoded = Base64UrlEncode(payload);
  std::string signature = Signature(encoded, secret);
  return StrCat(encoded, ".", signature);
}

Result<TokenClaims> VerifyToken(std::string_view token, std::string_view secret, int64_t now) {
  if (token.empty() || token.size() > kMaxTokenLength) return Malformed();
  size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0) return Malformed();
  std::string_view encoded = token.substr(0, dot);
  std::string_view signature = token.substr(dot + 1);
  std::optional<std::string> payload = Base64UrlDecode(encoded);
  if (!payload || !Base64UrlDecode(signature)) return Malformed();

  // Compare the encodings: one canonical string per MAC, so no second spelling verifies.
  std::string expected = Signature(encoded, secret);
  if (signature.size() != expected.size() ||
      CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0) {
    return absl::UnauthenticatedError("auth: invalid token signature");
  }

  // Signed by us, so well-formed unless the secret is shared with another version.
  std::vector<std::string_view> parts;
  std::string_view rest = *payload;
  for (int i = 0; i < 5; ++i) {
    size_t sep = rest.find('.');
    if (sep == std::string_view::npos) return Malformed();
    parts.push_back(rest.substr(0, sep));
    rest.remove_prefix(sep + 1);
  }
  TokenClaims claims;
  claims.user = std::string(rest);
  if (parts[0] != kVersion || !ParseDecimal(parts[1], &claims.permissions) ||
      !ParseDecimal(parts[2], &claims.issued_at) || !ParseDecimal(parts[3], &claims.expires_at) ||
      parts[4].empty() || claims.user.empty()) {
    return Malformed();
  }
  claims.nonce = std::string(parts[4]);
  if (now >= claims.expires_at) return absl::UnauthenticatedError("auth: token expired");
  return claims;
}

}  // namespace bridge::auth::internal
