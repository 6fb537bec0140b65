// Cache keys: SQL normalization, SHA-256 digests of keys, random entry ids.
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/cache/cache.h"
#include "bridge/cache/cache_internal.h"

namespace bridge::cache {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Returns the end of the quoted text that starts at `begin` (sql[begin] is the quote), just
// past the closing quote, or npos when it is not closed. A doubled quote is part of the
// text; with `backslash_escapes` (E'...') so is a quote after a backslash.
size_t QuotedEnd(std::string_view sql, size_t begin, bool backslash_escapes) {
  const char quote = sql[begin];
  size_t i = begin + 1;
  while (i < sql.size()) {
    const char c = sql[i];
    if (backslash_escapes && c == '\\') {
      i += 2;
    } else if (c == quote) {
      if (i + 1 < sql.size() && sql[i + 1] == quote) {
        i += 2;
      } else {
        return i + 1;
      }
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

// Returns the length of a dollar-quote tag ("$$", "$tag$") at `begin`, or 0 if there is
// none (e.g. a parameter "$1").
size_t DollarTagLength(std::string_view sql, size_t begin) {
  size_t i = begin + 1;
  if (i < sql.size() && sql[i] >= '0' && sql[i] <= '9') return 0;
  while (i < sql.size() && IsIdentifierChar(sql[i]) && sql[i] != '$') ++i;
  if (i < sql.size() && sql[i] == '$') return i + 1 - begin;
  return 0;
}

// Returns the end of a block comment starting at `begin` ("/*"), nested as in PostgreSQL,
// or npos when it is not closed.
size_t BlockCommentEnd(std::string_view sql, size_t begin) {
  int depth = 0;
  size_t i = begin;
  while (i + 1 < sql.size()) {
    if (sql[i] == '/' && sql[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (sql[i] == '*' && sql[i + 1] == '/') {
      --depth;
      i += 2;
      if (depth == 0) return i;
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

// Appends `piece` as one length-prefixed field, so that no two sequences of fields hash
// alike.
void AddField(EVP_MD_CTX* ctx, std::string_view piece) {
  uint8_t length[8];
  uint64_t n = piece.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  EVP_DigestUpdate(ctx, length, sizeof(length));
  EVP_DigestUpdate(ctx, piece.data(), piece.size());
}

std::string ToHex(const uint8_t* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

// SHA-256 of the fields, in hex. EVP calls fail only on allocation failure, which aborts
// elsewhere too.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Add(std::string_view piece) { AddField(ctx_, piece); }
  std::string HexDigest() {
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_, digest, &size);
    return ToHex(digest, size);
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

std::string NormalizeSql(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  bool pending_space = false;
  auto emit = [&](std::string_view piece) {
    if (pending_space && !out.empty()) out.push_back(' ');
    pending_space = false;
    out.append(piece.data(), piece.size());
  };
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
    if (IsSpace(c)) {
      pending_space = true;
      ++i;
    } else if (c == '-' && next == '-') {
      const size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? sql.size() : end + 1;
      pending_space = true;
    } else if (c == '/' && next == '*') {
      const size_t end = BlockCommentEnd(sql, i);
      if (end == std::string_view::npos) {
        emit(sql.substr(i));  // not closed: keep it all, byte for byte
        break;
      }
      i = end;
      pending_space = true;
    } else if (c == '\'' || c == '"') {
      // E'...' (backslash escapes): the E must touch the quote and start a word.
      const bool escapes = c == '\'' && !pending_space && !out.empty() &&
                           (out.back() == 'E' || out.back() == 'e') &&
                           (out.size() == 1 || !IsIdentifierChar(out[out.size() - 2]));
      const size_t end = QuotedEnd(sql, i, escapes);
      if (end == std::string_view::npos) {
        emit(sql.substr(i));
        break;
      }
      emit(sql.substr(i, end - i));
      i = end;
    } else if (c == '$' && (pending_space || out.empty() ||
                            (!IsIdentifierChar(out.back()) && out.back() != '$'))) {
      const size_t tag_length = DollarTagLength(sql, i);
      if (tag_length == 0) {
        emit(sql.substr(i, 1));
        ++i;
        continue;
      }
      const std::string_view tag = sql.substr(i, tag_length);
      const size_t close = sql.find(tag, i + tag_length);
      if (close == std::string_view::npos) {
        emit(sql.substr(i));
        break;
      }
      const size_t end = close + tag_length;
      emit(sql.substr(i, end - i));
      i = end;
    } else {
      emit(sql.substr(i, 1));
      ++i;
    }
  }
  return out;
}

KeyDigest DigestKey(const CacheKey& key) {
  KeyDigest out;
  {
    Sha256 query;
    query.Add("bridge.cache.key.v1");
    query.Add(NormalizeSql(key.sql));
    query.Add(std::to_string(key.parameters.size()));
    for (const std::string& p : key.parameters) query.Add(p);
    query.Add(key.output_options);
    out.query = query.HexDigest();
  }
  std::vector<const TableVersion*> tables;
  tables.reserve(key.tables.size());
  for (const TableVersion& t : key.tables) tables.push_back(&t);
  std::sort(tables.begin(), tables.end(), [](const TableVersion* a, const TableVersion* b) {
    return a->name != b->name ? a->name < b->name : a->version < b->version;
  });
  Sha256 full;
  full.Add(out.query);
  full.Add(std::to_string(tables.size()));
  for (const TableVersion* t : tables) {
    full.Add(t->name);
    full.Add(std::to_string(t->version));
  }
  out.full = full.HexDigest();
  return out;
}

namespace internal {

Result<std::string> NewEntryId() {
  uint8_t bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return Internal("cache: no random bytes for an entry id (OpenSSL RAND_bytes failed)");
  }
  return ToHex(bytes, sizeof(bytes));
}

bool IsEntryId(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string Hex64(uint64_t value) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * (7 - i)));
  return ToHex(bytes, sizeof(bytes));
}

}  // namespace internal
}  // namespace bridge::cache
