#include "bridge/app/cli.h"

#include <cstdio>

#include "CLI/CLI.hpp"
#include "bridge/common/logging.h"

namespace bridge::app {

int Fail(int code, const Status& status) {
  std::fprintf(stderr, "bridge: %s\n", std::string(status.message()).c_str());
  return code;
}

std::unique_ptr<CLI::App> MakeApp() {
  auto app = std::make_unique<CLI::App>(
      "Bridge: a zero-copy analytical gateway (DuckDB over files, served as Arrow)", "bridge");
  app->require_subcommand(1);
  return app;
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bridge: %s (see bridge --help)\n", e.what());
    return kExitUsage;
  }
  return std::nullopt;
}

void Overrides::AddCommon(CLI::App& cmd) {
  cmd.add_option("--config", config_file, "TOML configuration file");
  cmd.add_option("--data", data_dir, "folder of the data files (data_dir)");
  cmd.add_option("--threads", threads, "DuckDB threads, 0 = one per core (engine.threads)");
  cmd.add_option("--memory-limit", memory_limit,
                 "DuckDB memory limit, e.g. 4GB (engine.memory_limit)");
  cmd.add_option("--query-timeout-ms", query_timeout_ms,
                 "per-query timeout, 0 = none (engine.query_timeout_ms)");
  cmd.add_option("--batch-rows", batch_rows,
                 "coalesce DuckDB chunks into batches of this many rows, 0 = one batch per "
                 "chunk (engine.batch_rows)");
  cmd.add_option("--batch-bytes", batch_bytes,
                 "coalesce DuckDB chunks up to this many bytes, 0 = off (engine.batch_bytes)");
  cmd.add_option("--cache-dir", cache_dir, "result cache folder (cache.dir)");
  cmd.add_option("--cache-bytes", cache_bytes,
                 "result cache budget in bytes, 0 = no result cache (cache.bytes)");
  cmd.add_option("--cache-max-entry-bytes", cache_max_entry_bytes,
                 "larger results are not cached (cache.max_entry_bytes)");
  cmd.add_option("--cache-ttl-s", cache_ttl_s,
                 "cached results expire after this, 0 = never (cache.ttl_s)");
  cmd.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (log.level)");
  cmd.add_option("--log-format", log_format, "text|json (log.format)");
}

void Overrides::AddServer(CLI::App& cmd) {
  cmd.add_option("--http-host", http_host, "address of the front doors (server.http_host)");
  cmd.add_option("--http-port", http_port, "HTTP port, 0 = any free port (server.http_port)");
  cmd.add_option("--flight-port", flight_port,
                 "Flight port, 0 = any free port (server.flight_port)");
  cmd.add_option("--max-sessions", max_sessions,
                 "concurrent DuckDB sessions (engine.max_sessions)");
  cmd.add_option("--watch", watch, "refresh the catalog on file changes (catalog.watch)");
  cmd.add_option("--debounce-ms", debounce_ms, "quiet time before a refresh (catalog.debounce_ms)");
  cmd.add_option("--max-request-bytes", max_request_bytes,
                 "largest HTTP request body (http.max_request_bytes)");
  cmd.add_option("--max-header-bytes", max_header_bytes,
                 "largest HTTP request header (http.max_header_bytes)");
  cmd.add_option("--max-sql-length", max_sql_length, "longest SQL text (http.max_sql_length)");
  cmd.add_option("--max-concurrent-queries", max_concurrent_queries,
                 "HTTP queries running at once, <= max-sessions (http.max_concurrent_queries)");
  cmd.add_option("--max-queued-queries", max_queued_queries,
                 "HTTP queries waiting for a slot before 429 (http.max_queued_queries)");
  cmd.add_option("--max-result-bytes", max_result_bytes,
                 "bytes one HTTP response may send, 0 = no limit (http.max_result_bytes)");
  cmd.add_option("--idle-timeout-ms", idle_timeout_ms,
                 "idle keep-alive / slow request timeout (http.idle_timeout_ms)");
  cmd.add_option("--shutdown-grace-ms", shutdown_grace_ms,
                 "time running responses get on SIGTERM (http.shutdown_grace_ms)");
  cmd.add_option("--io-threads", io_threads, "HTTP socket threads (http.io_threads)");
  cmd.add_option("--flight-endpoints", flight_endpoints,
                 "endpoints a large Flight plan is split into; 0 = one per core "
                 "(flight.endpoints)");
  cmd.add_option("--flight-max-message-bytes", flight_max_message_bytes,
                 "largest FlightData message DoGet writes (flight.max_message_bytes)");
  cmd.add_option("--flight-keepalive-ms", flight_keepalive_ms,
                 "keep-alive interval of a quiet DoGet; 0 = off (flight.keepalive_ms)");
  cmd.add_option("--flight-ticket-ttl-s", flight_ticket_ttl_s,
                 "lifetime of Flight tickets (flight.ticket_ttl_s)");
  cmd.add_option("--flight-query-threads", flight_query_threads,
                 "threads that fetch and encode DoGet batches (flight.query_threads)");
  cmd.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve HTTPS (tls.cert)");
  cmd.add_option("--tls-key", tls_key, "PEM private key (tls.key)");
  cmd.add_option("--tls-client-ca", tls_client_ca,
                 "PEM CA certificates: Flight requires client certificates signed by them "
                 "(mutual TLS; tls.client_ca)");
  cmd.add_option("--cors-origin", cors_origins, "allowed CORS origin, repeatable (cors.origins)");
  cmd.add_option("--users-file", users_file,
                 "TOML users file: turns authentication on (auth.users_file)");
  cmd.add_option("--token-secret", token_secret,
                 "HMAC key of bearer tokens, >= 32 bytes (auth.token_secret)");
  cmd.add_option("--token-ttl-s", token_ttl_s, "bearer token lifetime (auth.token_ttl_s)");
}

Result<Config> Overrides::Resolve(const char* default_log_level) const {
  Config c;
  c.log_level = default_log_level;
  if (config_file) BRIDGE_RETURN_NOT_OK(LoadConfigFile(*config_file, c));
  if (data_dir) c.data_dir = *data_dir;
  if (http_host) c.http_host = *http_host;
  if (http_port) c.http_port = *http_port;
  if (flight_port) c.flight_port = *flight_port;
  if (threads) c.threads = *threads;
  if (memory_limit) c.memory_limit = *memory_limit;
  if (max_sessions) c.max_sessions = *max_sessions;
  if (query_timeout_ms) c.query_timeout_ms = *query_timeout_ms;
  if (batch_rows) c.batch_rows = *batch_rows;
  if (batch_bytes) c.batch_bytes = *batch_bytes;
  if (watch) c.watch = *watch;
  if (debounce_ms) c.debounce_ms = *debounce_ms;
  if (cache_dir) c.cache_dir = *cache_dir;
  if (cache_bytes) c.cache_bytes = *cache_bytes;
  if (cache_max_entry_bytes) c.cache_max_entry_bytes = *cache_max_entry_bytes;
  if (cache_ttl_s) c.cache_ttl_s = *cache_ttl_s;
  if (log_level) c.log_level = *log_level;
  if (log_format) c.log_format = *log_format;
  if (max_request_bytes) c.max_request_bytes = *max_request_bytes;
  if (max_header_bytes) c.max_header_bytes = *max_header_bytes;
  if (max_sql_length) c.max_sql_length = *max_sql_length;
  if (max_concurrent_queries) c.max_concurrent_queries = *max_concurrent_queries;
  if (max_queued_queries) c.max_queued_queries = *max_queued_queries;
  if (max_result_bytes) c.max_result_bytes = *max_result_bytes;
  if (idle_timeout_ms) c.idle_timeout_ms = *idle_timeout_ms;
  if (shutdown_grace_ms) c.shutdown_grace_ms = *shutdown_grace_ms;
  if (io_threads) c.io_threads = *io_threads;
  if (tls_cert) c.tls_cert = *tls_cert;
  if (tls_key) c.tls_key = *tls_key;
  if (tls_client_ca) c.tls_client_ca = *tls_client_ca;
  if (flight_endpoints) c.flight_endpoints = *flight_endpoints;
  if (flight_max_message_bytes) c.flight_max_message_bytes = *flight_max_message_bytes;
  if (flight_keepalive_ms) c.flight_keepalive_ms = *flight_keepalive_ms;
  if (flight_ticket_ttl_s) c.flight_ticket_ttl_s = *flight_ticket_ttl_s;
  if (flight_query_threads) c.flight_query_threads = *flight_query_threads;
  if (!cors_origins.empty()) c.cors_origins = cors_origins;
  if (users_file) c.users_file = *users_file;
  if (token_secret) c.token_secret = *token_secret;
  if (token_ttl_s) c.token_ttl_s = *token_ttl_s;
  BRIDGE_RETURN_NOT_OK(ValidateConfig(c));
  if (c.data_dir.empty()) return InvalidArgument("no data folder: pass --data DIR or set data_dir");
  BRIDGE_RETURN_NOT_OK(
      ConfigureLogging(c.log_format == "json" ? LogFormat::kJson : LogFormat::kText, c.log_level));
  return c;
}

engine::EngineOptions EngineOptionsOf(const Config& c) {
  engine::EngineOptions o;
  o.data_dir = c.data_dir;
  o.cache_dir = ResolveCacheDir(c);
  o.threads = c.threads;
  o.memory_limit = c.memory_limit;
  o.max_sessions = c.max_sessions;
  return o;
}

Result<Opened> OpenDataFolder(const engine::EngineOptions& engine_options,
                              const catalog::CatalogOptions& catalog_options) {
  Opened opened;
  BRIDGE_ASSIGN_OR_RETURN(opened.db, engine::Database::Open(engine_options));
  BRIDGE_ASSIGN_OR_RETURN(opened.catalog, catalog::Catalog::Open(*opened.db, catalog_options));
  return opened;
}

}  // namespace bridge::app
