#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdint>
#include <cstring>

#include "bridge/flight/ticket_internal.h"

namespace bridge::flight {
namespace {

constexpr std::string_view kMagic = "BT2";
constexpr size_t kMacSize = 32;
// magic, expiry, plan id, endpoint, table version, table length, SQL length
constexpr size_t kFixedSize = 3 + 8 + 8 + 4 + 8 + 4 + 4;

std::string Mac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &out_size);
  return std::string(reinterpret_cast<const char*>(out), out_size);
}

void PutLE(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint64_t GetLE(std::string_view in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return value;
}

}  // namespace

Result<TicketSigner> TicketSigner::Make(std::string_view secret) {
  if (secret.empty()) {
    std::string key(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 32) != 1) {
      return Internal("flight: cannot generate a ticket key");
    }
    return TicketSigner(std::move(key));
  }
  if (secret.size() < 32) {
    return InvalidArgument("flight: the ticket secret must be at least 32 bytes (got ",
                           secret.size(), ")");
  }
  return TicketSigner(std::string(secret));
}

std::string TicketSigner::Sign(const TicketContents& contents) const {
  std::string out(kMagic);
  int64_t expiry =
      std::chrono::duration_cast<std::chrono::seconds>(contents.expires.time_since_epoch()).count();
  PutLE(out, static_cast<uint64_t>(expiry), 8);
  PutLE(out, contents.plan_id, 8);
  PutLE(out, contents.endpoint, 4);
  PutLE(out, contents.table_version, 8);
  PutLE(out, contents.table.size(), 4);
  out.append(contents.table);
  PutLE(out, contents.sql.size(), 4);
  out.append(contents.sql);
  out.append(Mac(key_, out));
  return out;
}

Result<TicketContents> TicketSigner::Verify(std::string_view ticket,
                                            std::chrono::system_clock::time_point now) const {
  if (ticket.size() < kFixedSize + kMacSize || ticket.substr(0, 3) != kMagic) {
    return InvalidArgument("flight: invalid ticket: not a ticket of this server");
  }
  std::string_view signed_part = ticket.substr(0, ticket.size() - kMacSize);
  std::string_view mac = ticket.substr(ticket.size() - kMacSize);
  std::string expected = Mac(key_, signed_part);
  if (CRYPTO_memcmp(expected.data(), mac.data(), kMacSize) != 0) {
    return InvalidArgument("flight: invalid ticket: bad signature");
  }
  TicketContents out;
  std::string_view rest = signed_part.substr(3);
  int64_t expiry = static_cast<int64_t>(GetLE(rest, 8));
  out.plan_id = GetLE(rest.substr(8), 8);
  out.endpoint = static_cast<uint32_t>(GetLE(rest.substr(16), 4));
  out.table_version = GetLE(rest.substr(20), 8);
  uint64_t table_length = GetLE(rest.substr(28), 4);
  rest = rest.substr(32);
  // kFixedSize counted the SQL length field, still ahead.
  if (table_length > rest.size() - 4) return InvalidArgument("flight: invalid ticket: bad length");
  out.table = std::string(rest.substr(0, table_length));
  rest = rest.substr(table_length);
  uint64_t sql_length = GetLE(rest, 4);
  if (sql_length != rest.size() - 4) return InvalidArgument("flight: invalid ticket: bad length");
  out.sql = std::string(rest.substr(4));
  out.expires = std::chrono::system_clock::time_point(std::chrono::seconds(expiry));
  if (now >= out.expires) return InvalidArgument("flight: ticket expired");
  return out;
}

}  // namespace bridge::flight
