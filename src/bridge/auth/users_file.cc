#include <toml++/toml.h>

#include <fstream>
#include <sstream>
#include <system_error>

#include "bridge/auth/auth.h"
#include "bridge/auth/password.h"

namespace bridge::auth {
namespace {

Status CheckUserName(std::string_view source, std::string_view user) {
  if (user.empty()) return InvalidArgument("auth: ", source, ": empty user name");
  for (unsigned char c : user) {
    if (c < 0x20 || c == 0x7f || c == ':') {
      return InvalidArgument("auth: ", source, ": user name '", user,
                             "' holds ':' or a control character");
    }
  }
  return OkStatus();
}

Result<UserRecord> ParseUser(std::string_view source, std::string_view user,
                             const toml::node& node) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    return InvalidArgument("auth: ", source, ": users.", user, " must be a table");
  }
  UserRecord record;
  bool has_password = false;
  for (auto&& [key, value] : *table) {
    std::string_view name = key.str();
    if (name == "password") {
      const auto* text = value.as_string();
      if (text == nullptr || !IsArgon2idHash(text->get())) {
        return InvalidArgument("auth: ", source, ": users.", user,
                               ".password must be an argon2id PHC string "
                               "(make one with `bridge hash-password`)");
      }
      record.password_hash = text->get();
      has_password = true;
    } else if (name == "permissions") {
      const toml::array* array = value.as_array();
      if (array == nullptr) {
        return InvalidArgument("auth: ", source, ": users.", user,
                               ".permissions must be an array of strings");
      }
      for (const toml::node& item : *array) {
        const auto* text = item.as_string();
        if (text == nullptr) {
          return InvalidArgument("auth: ", source, ": users.", user,
                                 ".permissions must be an array of strings");
        }
        Result<Permission> permission = ParsePermission(text->get());
        if (!permission.ok()) {
          return InvalidArgument("auth: ", source, ": users.", user,
                                 ".permissions: unknown "
                                 "permission '",
                                 text->get(), "' (read, ingest, admin)");
        }
        record.permissions |= *permission;
      }
    } else {
      return InvalidArgument("auth: ", source, ": users.", user, ": unknown key '", name,
                             "' (password, permissions)");
    }
  }
  if (!has_password) {
    return InvalidArgument("auth: ", source, ": users.", user, ": missing password");
  }
  return record;
}

}  // namespace

Result<std::map<std::string, UserRecord, std::less<>>> ParseUsers(std::string_view text,
                                                                  std::string_view source) {
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("auth: ", source, ":", e.source().begin.line, ": ", e.description());
  }
#else
  toml::parse_result parsed = toml::parse(text, source);
  if (!parsed) {
    return InvalidArgument("auth: ", source, ":", parsed.error().source().begin.line, ": ",
                           parsed.error().description());
  }
  root = std::move(parsed).table();
#endif
  std::map<std::string, UserRecord, std::less<>> users;
  for (auto&& [key, value] : root) {
    if (key.str() != "users") {
      return InvalidArgument("auth: ", source, ": unknown key '", key.str(), "' (users)");
    }
    const toml::table* table = value.as_table();
    if (table == nullptr) return InvalidArgument("auth: ", source, ": users must be a table");
    for (auto&& [user_key, user_value] : *table) {
      std::string_view user = user_key.str();
      BRIDGE_RETURN_NOT_OK(CheckUserName(source, user));
      BRIDGE_ASSIGN_OR_RETURN(UserRecord record, ParseUser(source, user, user_value));
      users.emplace(std::string(user), std::move(record));
    }
  }
  return users;
}

Result<std::map<std::string, UserRecord, std::less<>>> LoadUsersFile(
    const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound("auth: users file ", path.string(), " does not exist or is not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return InvalidArgument("auth: cannot open users file ", path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return ParseUsers(contents.str(), path.string());
}

}  // namespace bridge::auth
