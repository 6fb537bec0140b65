// `bridge-server`: every command of Bridge, the servers and network clients included
// (serve, flight, sql, hash-password, and the local commands). The `bridge` command runs
// the local commands itself and hands the others to this binary (see bridge_main.cc).
//
// Exit codes: 0 success, 1 a query or runtime failure, 2 bad usage or configuration
// (missing data folder, bad port, unreadable config). Usage errors are one line on stderr;
// a failed query prints DuckDB's message as is (it may point at the error on more lines).
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "bridge/app/cli.h"
#include "bridge/app/flight_command.h"
#include "bridge/app/hash_password.h"
#include "bridge/app/local_commands.h"
#include "bridge/app/sql_command.h"
#include "bridge/auth/auth.h"
#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/logging.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/server.h"
#include "bridge/flightsql/flight_sql.h"
#include "bridge/http/server.h"
#include "prometheus/registry.h"
#include "spdlog/spdlog.h"

namespace bridge::app {
namespace {

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

int Main(int argc, char** argv) {
  std::unique_ptr<CLI::App> app = MakeApp();

  Overrides serve_flags;
  auto* serve = app->add_subcommand("serve", "serve the data folder");
  serve_flags.AddCommon(*serve);
  serve_flags.AddServer(*serve);

  std::unique_ptr<LocalCommands> local = LocalCommands::Register(*app);

  auto* hash_password = app->add_subcommand(
      "hash-password", "read a password on stdin, print its argon2id hash for a users file");

  std::unique_ptr<FlightCommand> flight_cmd = FlightCommand::Register(*app);
  std::unique_ptr<SqlCommand> sql_cmd = SqlCommand::Register(*app);

  if (std::optional<int> code = ParseCommandLine(*app, argc, argv)) return *code;
  if (serve->parsed()) return RunServe(serve_flags);
  if (local->parsed()) return local->Run();
  if (hash_password->parsed()) return RunHashPassword(std::cin, std::cout, std::cerr);
  if (flight_cmd->parsed()) return flight_cmd->Run();
  if (sql_cmd->parsed()) return sql_cmd->Run();
  return kExitUsage;
}

}  // namespace
}  // namespace bridge::app

int main(int argc, char** argv) { return bridge::app::Main(argc, argv); }
