#include "bridge/common/status.h"

namespace bridge {

Status WithContext(const Status& status, std::string_view context) {
  if (status.ok()) return status;
  return Status(status.code(), StrCat(context, ": ", std::string(status.message())));
}

}  // namespace bridge
