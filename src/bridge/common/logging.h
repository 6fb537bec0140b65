// Process-wide logging set-up (spdlog). Modules log through spdlog's default logger;
// this file only decides where it goes and in which format.
#pragma once

#include <string_view>

#include "bridge/common/status.h"

namespace bridge {

enum class LogFormat { kText, kJson };

// Configures the default logger to write to stderr in `format` at `level` (one of trace,
// debug, info, warn, error, critical, off). Returns InvalidArgument for an unknown level.
// Not thread-safe: call once at start-up, before other threads log.
Status ConfigureLogging(LogFormat format, std::string_view level);

// Returns `text` escaped for use inside a JSON string literal (quotes, backslashes,
// control characters; bytes >= 0x80 are passed through).
std::string JsonEscape(std::string_view text);

}  // namespace bridge
