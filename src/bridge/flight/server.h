// The Arrow Flight front door: a gRPC server speaking arrow.flight.protocol.FlightService
// over the engine and the catalog, usable by any standard Flight client.
//
// RPCs served (see README.md for the wire contract): Handshake, ListFlights, GetFlightInfo
// (plans of several endpoints), PollFlightInfo, GetSchema, DoGet, DoPut (atomic ingest),
// DoExchange, DoAction, ListActions; over TLS or mutual TLS when configured. DoGet writes each IPC
// message as one hand-encoded FlightData whose data_body references the batch's own buffers (no
// body byte is copied); the next batch is fetched only when the previous message has been
// written, so a slow client holds back the query.
//
// Threads: gRPC's callback threads only start and finish operations; everything that blocks
// (sessions, prepares, fetching and encoding batches, argon2 password checks) runs on a pool
// of `query_threads` threads owned by the server. A DoGet occupies a pool thread only while
// it fetches a batch, not while the client reads it.
//
// Thread safety: Start, port and Shutdown may be called from any thread. Lifetime: the
// Services must outlive the server; the destructor shuts down with no grace.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

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

namespace bridge::flight {

class CommandHandler;  // command_handler.h

struct FlightServerOptions {
  std::string host = "127.0.0.1";
  int port = 8815;  // 0 = any free port (see FlightServer::port())
  // Threads that fetch and encode DoGet batches (each running DoGet holds one engine
  // session while it streams).
  int query_threads = 4;
  // Largest message the server accepts.
  int max_receive_message_bytes = 64 << 20;
  // Tickets expire this long after GetFlightInfo issued them.
  std::chrono::seconds ticket_ttl{3600};
  // HMAC key of the tickets (>= 32 bytes); empty = 32 random bytes per process.
  std::string ticket_secret;
  // Engine query timeout of a DoGet; zero = none.
  std::chrono::milliseconds query_timeout{0};
  // While a DoGet waits this long for its next batch (after the schema has been sent), it
  // writes a FlightData with only app_metadata "bridge:keepalive" so that proxies and load
  // balancers do not reset the idle stream; repeated every interval. Zero = off.
  std::chrono::milliseconds keepalive_interval{5000};
  // Batch coalescing targets passed to the engine (engine::QueryOptions).
  int64_t batch_rows = 0;
  int64_t batch_bytes = 0;

  // ---- Plans (plan.cc, do_get.cc) ----
  // Endpoints a large table or query result is split into, so that clients can DoGet them
  // in parallel; 0 = one per core.
  int endpoints = 0;
  // Largest FlightData message DoGet writes; a bigger record batch is sent as several
  // slices. gRPC clients refuse messages above 4 MiB unless configured otherwise.
  int64_t max_message_bytes = 4 << 20;
  // Benchmark switch: DoGet serializes each message through the generated protobuf
  // FlightData (data_body copied into a `bytes` field) instead of the zero-copy encoder.
  bool copy_body = false;

  // ---- TLS (security.cc) ----
  // PEM files; both set = TLS. With tls_client_ca_file, clients must present a certificate
  // signed by that CA (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

// What the server uses; none of it is owned.
struct Services {
  engine::Database* db = nullptr;             // required
  catalog::Catalog* catalog = nullptr;        // required
  const auth::Authenticator* auth = nullptr;  // null = authentication off
  prometheus::Registry* registry = nullptr;   // may be null = no metrics
  // The result cache (null = none): a DoGet whose query may be cached (cache/result_key.h)
  // is answered from its entry (FlightData bodies are slices of the file's mapping) or
  // writes one while it streams.
  cache::Cache* cache = nullptr;
  CommandHandler* commands = nullptr;  // may be null = Flight only (no Flight SQL)
};

// Counters of the zero-copy data path (also exported as Prometheus counters when a registry
// is given).
struct FlightStats {
  int64_t flight_data_sent = 0;    // FlightData messages written by DoGet
  int64_t body_bytes_sent = 0;     // data_body bytes written
  int64_t body_bytes_copied = 0;   // data_body bytes copied on the way (0 when uncompressed)
  int64_t keepalives_sent = 0;     // metadata-only FlightData written while a batch was slow
  int64_t results_from_cache = 0;  // DoGets answered from a result-cache entry
  int64_t results_cached = 0;      // DoGets whose result was committed to the cache
  // DoPut / DoExchange uploads.
  int64_t body_bytes_received = 0;         // data_body bytes received
  int64_t body_bytes_received_copied = 0;  // of which copied because gRPC split the message
  int64_t rows_ingested = 0;               // rows committed by DoPut
  int64_t uploads_running = 0;             // DoPut / DoExchange calls still working
};

class FlightServer {
 public:
  // Binds host:port and starts serving. Returns InvalidArgument for bad options (a missing
  // service, query_threads < 1, a short ticket secret), IoError when the address cannot be
  // bound.
  static Result<std::unique_ptr<FlightServer>> Start(const FlightServerOptions& options,
                                                     const Services& services);
  ~FlightServer();
  FlightServer(const FlightServer&) = delete;
  FlightServer& operator=(const FlightServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  int port() const;

  FlightStats stats() const;

  // Stops accepting calls, lets calls in flight finish for up to `grace`, then cancels the
  // rest (their queries are interrupted). Returns when every call and thread has ended.
  // Idempotent.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit FlightServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge::flight
