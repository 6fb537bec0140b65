#include "bridge/auth/password.h"

#include <argon2.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <string>

namespace bridge::auth {
namespace {

constexpr uint32_t kMemoryKiB = 19456;
constexpr uint32_t kIterations = 2;
constexpr uint32_t kLanes = 1;
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

// Bounds for hashes read from a users file: anything above would let a crafted hash make
// every login allocate gigabytes or spin for seconds.
constexpr uint64_t kMaxMemoryKiB = 1u << 20;  // 1 GiB
constexpr uint64_t kMaxIterations = 16;
constexpr uint64_t kMaxLanes = 16;
constexpr size_t kMaxPasswordBytes = 4096;

bool IsBase64NoPad(std::string_view text) {
  if (text.empty() || text.size() % 4 == 1) return false;
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

// Parses "<name>=<decimal>" at the front of `text`, advancing it.
bool ParseParam(std::string_view& text, std::string_view name, uint64_t max, uint64_t* value) {
  if (text.substr(0, name.size()) != name || text.size() <= name.size() ||
      text[name.size()] != '=') {
    return false;
  }
  text.remove_prefix(name.size() + 1);
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin == end || *begin < '0' || *begin > '9') return false;
  auto [ptr, ec] = std::from_chars(begin, end, *value);
  if (ec != std::errc() || *value == 0 || *value > max) return false;
  text.remove_prefix(static_cast<size_t>(ptr - begin));
  return true;
}

}  // namespace

bool IsArgon2idHash(std::string_view phc) {
  constexpr std::string_view kPrefix = "$argon2id$v=19$";
  if (phc.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = phc.substr(kPrefix.size());
  uint64_t m = 0, t = 0, p = 0;
  if (!ParseParam(rest, "m", kMaxMemoryKiB, &m) || rest.empty() || rest[0] != ',') return false;
  rest.remove_prefix(1);
  if (!ParseParam(rest, "t", kMaxIterations, &t) || rest.empty() || rest[0] != ',') return false;
  rest.remove_prefix(1);
  if (!ParseParam(rest, "p", kMaxLanes, &p) || rest.empty() || rest[0] != '$') return false;
  rest.remove_prefix(1);
  if (m < 8 * p) return false;  // argon2's own minimum
  size_t dollar = rest.find('$');
  if (dollar == std::string_view::npos) return false;
  std::string_view salt = rest.substr(0, dollar);
  std::string_view hash = rest.substr(dollar + 1);
  // Salt >= 8 bytes (11 chars), hash 4..64 bytes.
  return IsBase64NoPad(salt) && salt.size() >= 11 && salt.size() <= 128 && IsBase64NoPad(hash) &&
         hash.size() >= 6 && hash.size() <= 86;
}

Result<std::string> HashPassword(std::string_view password) {
  if (password.empty()) return InvalidArgument("auth: the password is empty");
  if (password.size() > kMaxPasswordBytes) {
    return InvalidArgument("auth: the password is longer than ", kMaxPasswordBytes, " bytes");
  }
  std::array<uint8_t, kSaltBytes> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    return absl::InternalError("auth: RAND_bytes failed");
  }
  size_t length =
      argon2_encodedlen(kIterations, kMemoryKiB, kLanes, kSaltBytes, kHashBytes, Argon2_id);
  std::string encoded(length, '\0');
  int rc =
      argon2id_hash_encoded(kIterations, kMemoryKiB, kLanes, password.data(), password.size(),
                            salt.data(), salt.size(), kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    return absl::InternalError(StrCat("auth: argon2id failed: ", argon2_error_message(rc)));
  }
  encoded.resize(encoded.find('\0'));
  return encoded;
}

bool VerifyPassword(std::string_view phc_hash, std::string_view password) {
  if (!IsArgon2idHash(phc_hash) || password.size() > kMaxPasswordBytes) return false;
  const std::string encoded(phc_hash);  // argon2 wants a NUL-terminated string
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

}  // namespace bridge::auth
