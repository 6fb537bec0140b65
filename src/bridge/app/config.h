// Bridge's configuration: defaults, a TOML file, then command-line flags, each overriding
// the one before. Every key of the file has a flag (see README.md, "Configuration").
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bridge/common/status.h"

namespace bridge::app {

struct Config {
  std::filesystem::path data_dir;  // data_dir / --data

  // [server]
  std::string http_host = "127.0.0.1";
  int http_port = 8080;  // 0 = pick a free port
  int flight_port = 8815;

  // [http] limits of the HTTP front door
  int64_t max_request_bytes = int64_t{1} << 20;  // request body (413 beyond)
  int64_t max_header_bytes = int64_t{16} << 10;  // request header block (413 beyond)
  int64_t max_sql_length = int64_t{1} << 20;     // SQL text (413 beyond)
  int max_concurrent_queries = 8;                // running at once (<= engine.max_sessions)
  int max_queued_queries = 1024;                 // waiting for a slot; beyond: 429
  int64_t max_result_bytes = 0;                  // per response; 0 = no limit
  int64_t idle_timeout_ms = 30000;               // keep-alive idle time; 408 for slow requests
  int64_t shutdown_grace_ms = 10000;             // SIGTERM: time for running responses
  int io_threads = 2;                            // socket threads

  // [flight] the Flight front door
  int flight_endpoints = 0;                             // split plans; 0 = one per core
  int64_t flight_max_message_bytes = int64_t{4} << 20;  // largest FlightData written
  int64_t flight_keepalive_ms = 5000;                   // idle DoGet keep-alive; 0 = off
  int64_t flight_ticket_ttl_s = 3600;                   // tickets expire after this
  int flight_query_threads = 4;                         // threads fetching DoGet batches

  // [tls] both set = HTTPS and Flight over TLS
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  // PEM CA certificates: Flight then requires client certificates signed by them (mutual
  // TLS). Needs tls_cert and tls_key. HTTPS does not ask for client certificates.
  std::filesystem::path tls_client_ca;

  // [cors]
  std::vector<std::string> cors_origins;  // exact origins; empty = CORS off

  // [auth]
  std::filesystem::path users_file;  // "" = authentication off
  std::string token_secret;          // "" = random per process (>= 32 bytes otherwise)
  int64_t token_ttl_s = 3600;

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
  int64_t cache_bytes = int64_t{1} << 30;            // result cache budget; 0 = no result cache
  int64_t cache_max_entry_bytes = int64_t{2} << 30;  // larger results are not cached
  int64_t cache_ttl_s = 0;                           // 0 = entries live until evicted

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
