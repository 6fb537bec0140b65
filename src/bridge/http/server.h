// The HTTP front door: a Boost.Beast server over the engine and the catalog.
//
// Routes: GET/POST /query, GET /tables, GET /tables/{name}, GET /tables/{name}/rows,
// GET /health, GET /metrics, POST /auth/token (see README.md for the wire contract).
// Query results stream as chunked responses, one chunk per batch; format=arrow writes each
// IPC message with one gather write over the batch's own buffers (no body byte is copied).
//
// Threads: `io_threads` threads run the sockets (one strand per connection); blocking
// DuckDB work (prepare, fetching batches, formatting text) runs on a separate pool of
// `max_concurrent_queries` threads, never on an I/O thread. The next batch of a response
// is fetched only when the previous one has been written, so one response holds at most
// one batch (plus the encoder's state) whatever the client's speed.
//
// Thread safety: Start, port and Shutdown may be called from any thread. Lifetime: the
// Services must outlive the server; the destructor shuts down (with no grace).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bridge/common/status.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace bridge::engine {
class Database;
}  // namespace bridge::engine

namespace bridge::catalog {
class Catalog;
}  // namespace bridge::catalog

namespace bridge::auth {
class Authenticator;
}  // namespace bridge::auth

namespace bridge::cache {
class Cache;
}  // namespace bridge::cache

namespace bridge::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (see HttpServer::port())
  int io_threads = 2;
  // Largest request body (413 beyond) and header block (413 beyond).
  size_t max_request_bytes = size_t{1} << 20;
  size_t max_header_bytes = size_t{16} << 10;
  size_t max_sql_length = size_t{1} << 20;
  // Queries running at once (each holds one engine session: must be <= the engine's
  // max_sessions), and queries waiting for a slot; beyond both, 429 at once.
  int max_concurrent_queries = 8;
  int max_queued_queries = 1024;
  // Bytes one response may send; 0 = no limit. A response that passes it is cut (the
  // client sees a truncated transfer).
  int64_t max_result_bytes = 0;
  // A connection waiting for a request is closed after this long (408 if a request had
  // started); also bounds each write of a response.
  std::chrono::milliseconds idle_timeout{30000};
  // Engine query timeout (504); zero = none.
  std::chrono::milliseconds query_timeout{0};
  // Batch coalescing targets passed to the engine (engine::QueryOptions).
  int64_t batch_rows = 0;
  int64_t batch_bytes = 0;
  // TLS: both set = HTTPS (PEM files); both empty = plain HTTP.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  // Origins allowed by CORS (exact match, e.g. "http://localhost:3000"); empty = CORS off.
  std::vector<std::string> cors_origins;
  // Folder for temporary Parquet results; empty = the engine's cache folder.
  std::filesystem::path temp_dir;
};

// What the server uses; none of it is owned.
struct Services {
  engine::Database* db = nullptr;             // required
  catalog::Catalog* catalog = nullptr;        // required
  const auth::Authenticator* auth = nullptr;  // null = authentication off
  prometheus::Registry* registry = nullptr;   // required; the server adds its families
  // The result cache for format=arrow (null = no caching). Borrowed, like the others.
  cache::Cache* cache = nullptr;
};

class HttpServer {
 public:
  // Binds host:port, starts the I/O threads and the query pool, and starts accepting.
  // Returns InvalidArgument for bad options (a missing service, max_concurrent_queries < 1,
  // only one of the TLS files), IoError when the address cannot be bound or the TLS files
  // cannot be loaded. Sets SIGPIPE to ignored, process-wide (sendfile cannot be told not to
  // raise it).
  static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options,
                                                   const Services& services);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const;

  // Stops accepting, lets responses in flight finish for up to `grace`, then cancels the
  // queries still running (counted as cancelled with reason "shutdown") and closes every
  // connection. Returns when every thread has stopped. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge::http
