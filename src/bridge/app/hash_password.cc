#include "bridge/app/hash_password.h"

#include <istream>
#include <ostream>
#include <string>

#include "bridge/auth/password.h"

namespace bridge::app {

int RunHashPassword(std::istream& in, std::ostream& out, std::ostream& err) {
  std::string password;
  std::getline(in, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    err << "bridge hash-password: no password on stdin (type it and press Enter)\n";
    return 2;
  }
  Result<std::string> hash = auth::HashPassword(password);
  if (!hash.ok()) {
    err << "bridge hash-password: " << hash.status().message() << "\n";
    return 2;
  }
  out << *hash << "\n";
  return 0;
}

}  // namespace bridge::app
