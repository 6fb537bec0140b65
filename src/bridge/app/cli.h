// The command line shared by `bridge` and `bridge-server`: exit codes, the flags that
// override the configuration file, and opening the data folder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/app/config.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace CLI {
class App;
}  // namespace CLI

namespace bridge::app {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr const char* kBridgeVersion = "0.1.0";

// Prints "bridge: <message>" on stderr and returns `code`.
int Fail(int code, const Status& status);

// The top-level command line of both binaries: exactly one subcommand.
std::unique_ptr<CLI::App> MakeApp();

// Parses the command line into `app`. Returns the exit code when there is nothing to run
// (--help: 0; a usage error, reported on stderr: 2), nothing to go on.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv);

// Flags that override the configuration file; unset flags leave the file's values.
struct Overrides {
  std::optional<std::string> config_file;
  std::optional<std::string> data_dir;
  std::optional<std::string> http_host;
  std::optional<int> http_port;
  std::optional<int> flight_port;
  std::optional<int> threads;
  std::optional<std::string> memory_limit;
  std::optional<int> max_sessions;
  std::optional<int64_t> query_timeout_ms;
  std::optional<int64_t> batch_rows;
  std::optional<int64_t> batch_bytes;
  std::optional<bool> watch;
  std::optional<int64_t> debounce_ms;
  std::optional<std::string> cache_dir;
  std::optional<int64_t> cache_bytes;
  std::optional<int64_t> cache_max_entry_bytes;
  std::optional<int64_t> cache_ttl_s;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  // [http], [tls], [cors], [auth]
  std::optional<int64_t> max_request_bytes;
  std::optional<int64_t> max_header_bytes;
  std::optional<int64_t> max_sql_length;
  std::optional<int> max_concurrent_queries;
  std::optional<int> max_queued_queries;
  std::optional<int64_t> max_result_bytes;
  std::optional<int64_t> idle_timeout_ms;
  std::optional<int64_t> shutdown_grace_ms;
  std::optional<int> io_threads;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_client_ca;
  std::optional<int> flight_endpoints;
  std::optional<int64_t> flight_max_message_bytes;
  std::optional<int64_t> flight_keepalive_ms;
  std::optional<int64_t> flight_ticket_ttl_s;
  std::optional<int> flight_query_threads;
  std::vector<std::string> cors_origins;
  std::optional<std::string> users_file;
  std::optional<std::string> token_secret;
  std::optional<int64_t> token_ttl_s;

  // The flags of every command that opens the data folder (serve, query).
  void AddCommon(CLI::App& cmd);
  // The flags of `serve` only: front doors, limits, TLS, authentication.
  void AddServer(CLI::App& cmd);
  // Returns the configuration: defaults (with logs at `default_log_level`), then the file,
  // then the flags.
  Result<Config> Resolve(const char* default_log_level = "info") const;
};

engine::EngineOptions EngineOptionsOf(const Config& c);

// The database and catalog of the data folder.
struct Opened {
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<catalog::Catalog> catalog;
};

// Opens the database and catalog; its errors are usage errors (missing folder, bad setting:
// exit 2).
Result<Opened> OpenDataFolder(const engine::EngineOptions& engine_options,
                              const catalog::CatalogOptions& catalog_options);

}  // namespace bridge::app
