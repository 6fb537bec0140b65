// Bridge's configuration: defaults, a TOML file, then command-line flags, each overriding
// the one before. Every key of the file has a flag (see README.md, "Configuration").
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "bridge/common/status.h"

namespace bridge::app {

struct Config {
  std::filesystem::path data_dir;  // data_dir / --data

  // [server]
  std::string http_host = "127.0.0.1";
  int http_port = 8080;  // 0 = pick a free port
  int flight_port = 8815;

  // [engine]
  int threads = 0;           // 0 = one per core
  std::string memory_limit;  // "" = DuckDB's default
  int max_sessions = 64;
  int64_t query_timeout_ms = 0;  // 0 = none
  int64_t batch_rows = 0;        // 0 = one batch per DuckDB chunk (no copy)
  int64_t batch_bytes = 0;       // 0 = no byte target

  // [catalog]
  bool watch = true;
  int64_t debounce_ms = 200;

  // [cache]
  std::filesystem::path cache_dir;  // "" = $XDG_CACHE_HOME/bridge or ~/.cache/bridge

  // [log]
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
};

// Reads the TOML file at `path` over `config`. Returns InvalidArgument naming the key for
// unknown keys, wrong types and out-of-range values, and NotFound / InvalidArgument with the
// position for a missing or unparsable file.
Status LoadConfigFile(const std::filesystem::path& path, Config& config);

// Checks values that flags may have set (ranges, enumerations), naming the key at fault.
Status ValidateConfig(const Config& config);

// Returns the cache folder to use: config.cache_dir, else $XDG_CACHE_HOME/bridge, else
// $HOME/.cache/bridge.
std::filesystem::path ResolveCacheDir(const Config& config);

}  // namespace bridge::app
