// The `bridge` command: serve, query, gen-demo, ipc, hash-password, flight, sql, version.
//
// Exit codes: 0 success, 1 a query or runtime failure, 2 bad usage or configuration
// (missing data folder, bad port, unreadable config). Usage errors are one line on stderr;
// a failed query prints DuckDB's message as is (it may point at the error on more lines).
#include <signal.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "bridge/app/config.h"
#include "bridge/app/demo_data.h"
#include "bridge/app/flight_command.h"
#include "bridge/app/hash_password.h"
#include "bridge/app/ipc_commands.h"
#include "bridge/app/sql_command.h"
#include "bridge/auth/auth.h"
#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/logging.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/server.h"
#include "bridge/flightsql/flight_sql.h"
#include "bridge/format/row_writer.h"
#include "bridge/http/server.h"
#include "prometheus/registry.h"
#include "spdlog/spdlog.h"

namespace bridge::app {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr const char* kBridgeVersion = "0.1.0";

int Fail(int code, const Status& status) {
  std::fprintf(stderr, "bridge: %s\n", std::string(status.message()).c_str());
  return code;
}

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

  void AddCommon(CLI::App& cmd) {
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
  void AddServer(CLI::App& cmd) {
    cmd.add_option("--http-host", http_host, "address of the front doors (server.http_host)");
    cmd.add_option("--http-port", http_port, "HTTP port, 0 = any free port (server.http_port)");
    cmd.add_option("--flight-port", flight_port,
                   "Flight port, 0 = any free port (server.flight_port)");
    cmd.add_option("--max-sessions", max_sessions,
                   "concurrent DuckDB sessions (engine.max_sessions)");
    cmd.add_option("--watch", watch, "refresh the catalog on file changes (catalog.watch)");
    cmd.add_option("--debounce-ms", debounce_ms,
                   "quiet time before a refresh (catalog.debounce_ms)");
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

  // Returns the configuration: defaults (with logs at `default_log_level`), then the file,
  // then the flags.
  Result<Config> Resolve(const char* default_log_level = "info") const {
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
    if (c.data_dir.empty())
      return InvalidArgument("no data folder: pass --data DIR or set data_dir");
    BRIDGE_RETURN_NOT_OK(ConfigureLogging(
        c.log_format == "json" ? LogFormat::kJson : LogFormat::kText, c.log_level));
    return c;
  }
};

engine::EngineOptions EngineOptionsOf(const Config& c) {
  engine::EngineOptions o;
  o.data_dir = c.data_dir;
  o.cache_dir = ResolveCacheDir(c);
  o.threads = c.threads;
  o.memory_limit = c.memory_limit;
  o.max_sessions = c.max_sessions;
  return o;
}

// Opens the database and catalog; usage errors (missing folder, bad setting) exit 2.
struct Opened {
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<catalog::Catalog> catalog;
};

http::ServerOptions HttpOptionsOf(const Config& c) {
  http::ServerOptions o;
  o.host = c.http_host;
  o.port = c.http_port;
  o.io_threads = c.io_threads;
  o.max_request_bytes = static_cast<size_t>(c.max_request_bytes);
  o.max_header_bytes = static_cast<size_t>(c.max_header_bytes);
  o.max_sql_length = static_cast<size_t>(c.max_sql_length);
  o.max_concurrent_queries = c.max_concurrent_queries;
  o.max_queued_queries = c.max_queued_queries;
  o.max_result_bytes = c.max_result_bytes;
  o.idle_timeout = std::chrono::milliseconds(c.idle_timeout_ms);
  o.query_timeout = std::chrono::milliseconds(c.query_timeout_ms);
  o.batch_rows = c.batch_rows;
  o.batch_bytes = c.batch_bytes;
  o.tls_cert = c.tls_cert;
  o.tls_key = c.tls_key;
  o.cors_origins = c.cors_origins;
  return o;
}

Result<Opened> OpenDataFolder(const engine::EngineOptions& engine_options,
                              const catalog::CatalogOptions& catalog_options) {
  Opened opened;
  BRIDGE_ASSIGN_OR_RETURN(opened.db, engine::Database::Open(engine_options));
  BRIDGE_ASSIGN_OR_RETURN(opened.catalog, catalog::Catalog::Open(*opened.db, catalog_options));
  return opened;
}

// Returns the words of `sql` (runs of letters, digits and underscores), lower-cased.
std::set<std::string> WordsOf(std::string_view sql) {
  std::set<std::string> words;
  std::string word;
  for (char c : sql) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.insert(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.insert(std::move(word));
  return words;
}

int RunServe(const Overrides& flags) {
  auto config = flags.Resolve();
  if (!config.ok()) return Fail(kExitUsage, config.status());
  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A file-size limit (RLIMIT_FSIZE) must fail the write that passes it (EFBIG: the cache
  // abandons its entry, the query is answered), not kill the server.
  ::signal(SIGXFSZ, SIG_IGN);

  auth::AuthOptions auth_options;
  auth_options.users_file = config->users_file;
  auth_options.token_secret = config->token_secret;
  auth_options.token_ttl = std::chrono::seconds(config->token_ttl_s);
  auto authenticator = auth::Authenticator::Make(auth_options);
  if (!authenticator.ok()) return Fail(kExitUsage, authenticator.status());

  catalog::CatalogOptions catalog_options;
  catalog_options.watch = config->watch;
  catalog_options.debounce = std::chrono::milliseconds(config->debounce_ms);
  // Declared before the catalog, whose listener uses it, so that it is destroyed after it.
  std::unique_ptr<cache::Cache> result_cache;
  auto opened = OpenDataFolder(EngineOptionsOf(*config), catalog_options);
  if (!opened.ok()) return Fail(kExitUsage, opened.status());
  auto& catalog = *opened->catalog;
  // The result cache lives in cache_dir/results. A folder another process holds (another
  // `bridge serve` with the same cache folder) means serving without one, not failing.
  if (config->cache_bytes > 0) {
    cache::CacheOptions cache_options;
    cache_options.dir = opened->db->options().cache_dir / "results";
    cache_options.max_bytes = config->cache_bytes;
    cache_options.max_entry_bytes = config->cache_max_entry_bytes;
    cache_options.ttl = std::chrono::seconds(config->cache_ttl_s);
    auto opened_cache = cache::Cache::Open(cache_options);
    if (opened_cache.ok()) {
      result_cache = std::move(opened_cache).value();
      spdlog::info("result cache in {} ({} entries, {} bytes; budget {} bytes)",
                   cache_options.dir.string(), result_cache->stats().entries,
                   result_cache->stats().bytes, config->cache_bytes);
    } else {
      spdlog::warn("no result cache: {}", std::string(opened_cache.status().message()));
    }
  }
  catalog.SetListener(
      [cache = result_cache.get()](const std::vector<catalog::TableChange>& changes) {
        for (const auto& change : changes) {
          // Entries that read a changed table can never be hit again: free their space now.
          if (cache != nullptr) cache->Invalidate(change.name);
          const char* what = change.kind == catalog::ChangeKind::kAdded     ? "added"
                             : change.kind == catalog::ChangeKind::kRemoved ? "removed"
                                                                            : "changed";
          if (change.error.empty()) {
            spdlog::info("table '{}' {} (catalog version {})", change.name, what, change.version);
          } else {
            spdlog::warn("table '{}' {} but broken: {}", change.name, what, change.error);
          }
        }
      });
  auto tables = catalog.Tables();
  for (const auto& t : tables) {
    if (t.error.empty()) {
      spdlog::info("table '{}': {} columns, {} files, {} bytes", t.name, t.columns.size(),
                   t.file_count, t.bytes);
    } else {
      spdlog::warn("table '{}' is broken: {}", t.name, t.error);
    }
  }
  spdlog::info("bridge {} (DuckDB {}) serving {} tables from {}; watching: {}", kBridgeVersion,
               engine::DuckDBVersion(), tables.size(), opened->db->options().data_dir.string(),
               config->watch ? "yes" : "no");
  prometheus::Registry registry;
  http::Services services;
  services.db = opened->db.get();
  services.catalog = opened->catalog.get();
  services.auth = authenticator->get();
  services.registry = &registry;
  services.cache = result_cache.get();
  auto server = http::HttpServer::Start(HttpOptionsOf(*config), services);
  // Bad options, an address in use and unreadable TLS files are all configuration errors.
  if (!server.ok()) return Fail(kExitUsage, server.status());
  spdlog::info("HTTP listening on {}://{}:{} (authentication {})",
               config->tls_cert.empty() ? "http" : "https", config->http_host, (*server)->port(),
               (*authenticator)->enabled() ? "on" : "off");
  flight::FlightServerOptions flight_options;
  flight_options.host = config->http_host;
  flight_options.port = config->flight_port;
  flight_options.query_timeout = std::chrono::milliseconds(config->query_timeout_ms);
  flight_options.batch_rows = config->batch_rows;
  flight_options.batch_bytes = config->batch_bytes;
  flight_options.endpoints = config->flight_endpoints;
  flight_options.max_message_bytes = config->flight_max_message_bytes;
  flight_options.keepalive_interval = std::chrono::milliseconds(config->flight_keepalive_ms);
  flight_options.ticket_ttl = std::chrono::seconds(config->flight_ticket_ttl_s);
  flight_options.query_threads = config->flight_query_threads;
  flight::Services flight_services;
  flight_services.db = opened->db.get();
  flight_services.catalog = opened->catalog.get();
  flight_services.auth = (*authenticator)->enabled() ? authenticator->get() : nullptr;
  flight_services.registry = &registry;
  flight_services.cache = result_cache.get();
  // Flight uses the same certificate and key as HTTPS; with tls.client_ca it also requires
  // client certificates (mutual TLS).
  flight_options.tls_cert_file = config->tls_cert.string();
  flight_options.tls_key_file = config->tls_key.string();
  flight_options.tls_client_ca_file = config->tls_client_ca.string();
  if (!config->tls_client_ca.empty()) {
    spdlog::warn(
        "tls.client_ca: only Flight requires client certificates; HTTPS does not ask "
        "for them");
  }
  // Arrow Flight SQL rides on the Flight server (the handler outlives it: declared first).
  flightsql::FlightSqlOptions sql_options;
  sql_options.bridge_version = kBridgeVersion;
  sql_options.auth_enabled = (*authenticator)->enabled();
  auto flight_sql =
      flightsql::MakeFlightSqlHandler(*opened->db, *opened->catalog, std::move(sql_options));
  if (!flight_sql.ok()) return Fail(kExitUsage, flight_sql.status());
  flight_services.commands = flight_sql->get();
  auto started = flight::FlightServer::Start(flight_options, flight_services);
  if (!started.ok()) return Fail(kExitUsage, started.status());
  std::unique_ptr<flight::FlightServer> flight_server = std::move(started).value();
  spdlog::info("Flight listening on {}://{}:{} (authentication {}{}). Ctrl-C stops.",
               config->tls_cert.empty() ? "grpc" : "grpc+tls", config->http_host,
               flight_server->port(), (*authenticator)->enabled() ? "on" : "off",
               config->tls_client_ca.empty() ? "" : ", client certificates required");
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("stopping on signal {}: finishing running responses (up to {} ms)", sig,
               config->shutdown_grace_ms);
  // Both front doors stop accepting and drain at the same time.
  std::chrono::milliseconds grace(config->shutdown_grace_ms);
  std::thread flight_stop([&] {
    if (flight_server) flight_server->Shutdown(grace);
  });
  (*server)->Shutdown(grace);
  flight_stop.join();
  spdlog::info("stopped");
  return 0;
}

int RunQuery(const Overrides& flags, const std::string& format_name, const std::string& compression,
             const std::string& sql) {
  // The result goes to stdout; only warnings and errors go to stderr unless asked.
  auto config = flags.Resolve("warn");
  if (!config.ok()) return Fail(kExitUsage, config.status());
  bool arrow = format_name == "arrow";
  auto codec = ipc::ParseCodec(compression);
  if (!codec.ok()) return Fail(kExitUsage, codec.status());
  if (!arrow && *codec != ipc::Codec::kNone) {
    return Fail(kExitUsage, InvalidArgument("--compression applies to --format arrow only"));
  }
  auto format = arrow ? Result<format::TextFormat>(format::TextFormat::kTable)
                      : format::ParseTextFormat(format_name);
  if (!format.ok()) return Fail(kExitUsage, format.status());
  // One query, one session: only the tables the SQL mentions get a view, and none is
  // described (see the engine benchmark in README).
  engine::EngineOptions engine_options = EngineOptionsOf(*config);
  engine_options.max_sessions = 1;
  catalog::CatalogOptions catalog_options;
  catalog_options.watch = false;
  catalog_options.describe = false;
  // Table names are identifiers ([A-Za-z0-9_]), so a table is mentioned iff its lower-cased
  // name is one of the words (string literals included: query_table('trips') counts).
  catalog_options.include = [words = WordsOf(sql)](std::string_view name) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return words.contains(lower);
  };
  auto opened = OpenDataFolder(engine_options, catalog_options);
  if (!opened.ok()) return Fail(kExitUsage, opened.status());
  auto session = opened->db->Connect();
  if (!session.ok()) return Fail(kExitFailure, session.status());
  engine::QueryOptions options;
  options.timeout = std::chrono::milliseconds(config->query_timeout_ms);
  options.batch_rows = config->batch_rows;
  options.batch_bytes = config->batch_bytes;
  auto stream = (*session)->Query(sql, {}, options);
  if (!stream.ok()) return Fail(kExitFailure, stream.status());
  if (arrow) {
    Status st = WriteArrowStream(**stream, *codec);
    return st.ok() ? 0 : Fail(kExitFailure, st);
  }
  auto writer = format::RowWriter::Make(*format, (*stream)->schema());
  if (!writer.ok()) return Fail(kExitFailure, writer.status());
  std::string out;
  auto flush = [&out] {
    std::fwrite(out.data(), 1, out.size(), stdout);
    out.clear();
  };
  Status st = (*writer)->Begin(&out);
  while (st.ok()) {
    auto batch = (*stream)->Next();
    if (!batch.ok()) {
      st = batch.status();
      break;
    }
    if (!batch->valid()) {
      st = (*writer)->End(&out);
      break;
    }
    st = (*writer)->Write(**batch, &out);
    if (out.size() > (1 << 20)) flush();
  }
  flush();
  std::fflush(stdout);
  if (!st.ok()) return Fail(kExitFailure, st);
  return 0;
}

int RunGenDemo(const std::string& out, int64_t rows, uint64_t seed) {
  Status st = ConfigureLogging(LogFormat::kText, "info");
  if (!st.ok()) return Fail(kExitUsage, st);
  DemoOptions options;
  options.out_dir = out;
  options.rows = rows;
  options.seed = seed;
  st = GenerateDemoData(options);
  if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kAlreadyExists) {
    return Fail(kExitUsage, st);
  }
  if (!st.ok()) return Fail(kExitFailure, st);
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"Bridge: a zero-copy analytical gateway (DuckDB over files, served as Arrow)",
               "bridge"};
  app.require_subcommand(1);

  Overrides serve_flags;
  auto* serve = app.add_subcommand("serve", "serve the data folder");
  serve_flags.AddCommon(*serve);
  serve_flags.AddServer(*serve);

  Overrides query_flags;
  std::string format_name = "table";
  std::string sql;
  auto* query = app.add_subcommand("query", "run one query in-process and print the result");
  query_flags.AddCommon(*query);
  query->add_option("--format", format_name, "table|csv|json|ndjson|arrow")->capture_default_str();
  std::string compression = "none";
  query->add_option("--compression", compression, "Arrow body compression: none|zstd|lz4")
      ->capture_default_str();
  query->add_option("sql", sql, "the SQL query")->required();

  std::string demo_out;
  int64_t demo_rows = 5'000'000;
  uint64_t demo_seed = 42;
  auto* gen_demo = app.add_subcommand("gen-demo", "write the deterministic demo dataset");
  gen_demo->add_option("--out", demo_out, "output folder")->required();
  gen_demo->add_option("--rows", demo_rows, "number of trips")->capture_default_str();
  gen_demo->add_option("--seed", demo_seed, "seed of the generator")->capture_default_str();

  auto* ipc_cmd = app.add_subcommand("ipc", "inspect Arrow IPC streams and files");
  ipc_cmd->require_subcommand(1);
  std::string ipc_path;
  struct IpcSub {
    const char* name;
    const char* help;
    IpcCommand command;
  };
  std::vector<std::pair<CLI::App*, IpcCommand>> ipc_subs;
  for (const IpcSub& sub :
       {IpcSub{"cat", "print the schema and rows as a table", IpcCommand::kCat},
        IpcSub{"validate", "check every message; exit 0 if valid, 1 with the reason if not",
               IpcCommand::kValidate},
        IpcSub{"to-json", "print the Arrow integration-test JSON", IpcCommand::kToJson}}) {
    CLI::App* cmd = ipc_cmd->add_subcommand(sub.name, sub.help);
    cmd->add_option("file", ipc_path, "IPC stream or file, - for stdin")->required();
    ipc_subs.emplace_back(cmd, sub.command);
  }

  auto* hash_password = app.add_subcommand(
      "hash-password", "read a password on stdin, print its argon2id hash for a users file");

  std::unique_ptr<FlightCommand> flight_cmd = FlightCommand::Register(app);
  std::unique_ptr<SqlCommand> sql_cmd = SqlCommand::Register(app);

  auto* version = app.add_subcommand("version", "print Bridge's and DuckDB's versions");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bridge: %s (see bridge --help)\n", e.what());
    return kExitUsage;
  }
  if (serve->parsed()) return RunServe(serve_flags);
  if (query->parsed()) return RunQuery(query_flags, format_name, compression, sql);
  if (gen_demo->parsed()) return RunGenDemo(demo_out, demo_rows, demo_seed);
  for (const auto& [cmd, command] : ipc_subs) {
    if (cmd->parsed()) return RunIpcCommand(command, ipc_path);
  }
  if (hash_password->parsed()) return RunHashPassword(std::cin, std::cout, std::cerr);
  if (flight_cmd->parsed()) return flight_cmd->Run();
  if (sql_cmd->parsed()) return sql_cmd->Run();
  if (version->parsed()) {
    std::printf("bridge %s\nduckdb %s\n", kBridgeVersion, engine::DuckDBVersion().c_str());
    return 0;
  }
  return kExitUsage;
}

}  // namespace
}  // namespace bridge::app

int main(int argc, char** argv) { return bridge::app::Main(argc, argv); }
