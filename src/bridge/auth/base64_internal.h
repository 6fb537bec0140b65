// Base64 codecs (RFC 4648) over OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock. Private to
// auth/.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bridge::auth::internal {

// Standard alphabet with '=' padding.
std::string Base64Encode(std::string_view bytes);
// Standard alphabet; padding required (length a multiple of 4). nullopt for anything else
// (bad characters, whitespace, misplaced '=').
std::optional<std::string> Base64Decode(std::string_view text);

// URL-safe alphabet ('-', '_'), no padding.
std::string Base64UrlEncode(std::string_view bytes);
// URL-safe alphabet without padding. nullopt for bad characters, '=' or an impossible length.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace bridge::auth::internal
