// A small Arrow Flight client: connects to any Flight server (Bridge's or another one) over
// gRPC, plain or TLS, and speaks arrow.flight.protocol.FlightService with Arrow data as C
// Data Interface arrays decoded by Bridge's own IPC reader.
//
// Data path: DoGet decodes each FlightData by hand (flight/grpc_flight_data_internal.h) and
// feeds data_header + data_body to ipc::StreamDecoder, so the arrays are views into the
// received gRPC slices (gRPC hands over a large message as several slices; the message is
// then joined once, counted in StreamStats::body_bytes_copied). DoPut and DoExchange send
// each batch as FlightData whose data_body references the batch's own buffers.
//
// No gRPC or protobuf type appears in this header.
//
// Thread safety: a Client may be used from several threads at once (its channel is shared;
// the token is fixed after Connect). Readers and writers it returns are not thread-safe, and
// each must be finished or destroyed before its Client. Arrays returned are independent of
// the reader and may outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"

namespace bridge::flight::client {

struct ClientOptions {
  // Basic credentials: Connect runs the Handshake and keeps the bearer token it returns.
  std::string user;
  std::string password;
  // A bearer token to send as is (instead of user/password).
  std::string token;
  // TLS (grpc+tls:// URIs): PEM file of the root certificates that sign the server's
  // certificate; empty = the system's roots.
  std::string tls_root_ca_file;
  // PEM certificate chain and private key presented to the server (mutual TLS); both or none.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Name checked against the server's certificate instead of the URI's host (e.g.
  // "localhost" when connecting to 127.0.0.1).
  std::string tls_server_name;
  // Largest message the client accepts; -1 = no limit.
  int64_t max_message_bytes = 64 << 20;
  // Deadline of each call (a whole DoGet stream included); zero = none.
  std::chrono::milliseconds timeout{0};
};

// What a FlightDescriptor names: a table (PATH) or a command (CMD, SQL text for Bridge).
struct Descriptor {
  enum class Type { kPath, kCmd };
  Type type = Type::kPath;
  std::vector<std::string> path;
  std::string cmd;

  static Descriptor Path(std::string table);
  static Descriptor Sql(std::string sql);
};

// The special location that means "the connection the FlightInfo came from".
inline constexpr std::string_view kReuseConnection = "arrow-flight-reuse-connection://?";

// One part of a plan: a ticket and where it can be redeemed.
struct Endpoint {
  std::string ticket;
  // URIs of servers that serve the ticket; empty (or kReuseConnection) = the same connection.
  std::vector<std::string> locations;
  // When the ticket stops being valid, if the server said.
  std::optional<std::chrono::system_clock::time_point> expiration;
  std::string app_metadata;
};

struct FlightInfo {
  Descriptor descriptor;
  // Encapsulated IPC Schema message (may be empty if the server did not send one).
  std::string schema_message;
  std::vector<Endpoint> endpoints;
  int64_t total_records = -1;
  int64_t total_bytes = -1;
  // The endpoints' data in endpoint order is the ordered result.
  bool ordered = false;
  std::string app_metadata;

  // Returns the decoded schema ("+s"); InvalidArgument when it is missing or malformed.
  Result<ipc::OwnedSchema> Schema() const;
};

// PollFlightInfo's answer.
struct PollInfo {
  std::optional<FlightInfo> info;  // what is known so far (complete when !next)
  std::optional<Descriptor> next;  // poll again with this; absent = done
  std::optional<double> progress;  // 0..1 when the server knows
  std::optional<std::chrono::system_clock::time_point> expiration;
};

// Counters of one stream (or of a whole FetchAll).
struct StreamStats {
  int64_t messages = 0;           // FlightData received (metadata-only ones included)
  int64_t metadata_messages = 0;  // FlightData with no IPC message (keep-alives)
  int64_t batches = 0;            // record batches decoded
  int64_t rows = 0;
  int64_t body_bytes = 0;            // data_body bytes received (Arrow body bytes)
  int64_t body_bytes_copied = 0;     // of which copied because gRPC split the message
  int64_t body_bytes_realigned = 0;  // copied by the IPC reader to align buffers
  int64_t header_bytes = 0;          // data_header bytes received

  void Add(const StreamStats& other);
};

// The record batches of a DoGet, one at a time.
class StreamReader {
 public:
  virtual ~StreamReader();
  // The stream's schema ("+s"), decoded from its first message. Valid as long as the reader.
  virtual const ArrowSchema& schema() const = 0;
  // Returns the next batch, or an invalid OwnedArray at the end of the stream. Errors: the
  // server's status (its code and message), InvalidArgument for a malformed message.
  virtual Result<ipc::OwnedArray> Next() = 0;
  // Stops the stream early (the server cancels its query). Next then returns Cancelled.
  virtual void Cancel() = 0;
  virtual const StreamStats& stats() const = 0;
};

// A whole result: its schema and every batch, in order.
struct Table {
  ipc::OwnedSchema schema;
  std::vector<ipc::OwnedArray> batches;
  int64_t rows = 0;
  StreamStats stats;
};

struct FetchOptions {
  // Read the endpoints in parallel threads (one per endpoint, at most max_threads).
  bool parallel = false;
  int max_threads = 0;  // 0 = one per endpoint
  // false: count the batches (Table::rows, stats) but drop them as they arrive.
  bool keep_batches = true;
};

enum class PutMode { kCreate, kAppend, kReplace };

// Returns "create", "append" or "replace"; ParsePutMode is the inverse (InvalidArgument).
std::string_view PutModeName(PutMode mode);
Result<PutMode> ParsePutMode(std::string_view name);

// What the server acknowledged of an upload.
struct PutOutcome {
  int64_t acks = 0;               // PutResult messages received
  std::string last_app_metadata;  // app_metadata of the last PutResult
  int64_t rows = -1;              // "rows" of the last acknowledgement's JSON, if any
  int64_t batches_sent = 0;
  int64_t body_bytes_sent = 0;
};

// An upload in progress (DoPut). Not thread-safe.
class PutWriter {
 public:
  virtual ~PutWriter();
  // Sends `batch` (a struct array of the writer's schema). Returns the server's error when
  // it has already ended the call, InvalidArgument for a batch that does not fit the schema.
  virtual Status Write(ipc::OwnedArray batch) = 0;
  // Ends the upload and waits for the server's answer. Returns the acknowledgements, or the
  // server's status. Destroying a writer without Close cancels the upload.
  virtual Result<PutOutcome> Close() = 0;
};

struct ActionType {
  std::string type;
  std::string description;
};

class Client {
 public:
  // Parses `uri` ("grpc://host:port", "grpc+tcp://host:port", "grpc+tls://host:port"; IPv6
  // hosts in brackets), opens a channel and, with user/password, runs the Basic Handshake.
  // Errors: InvalidArgument for a bad URI or options, NotFound for unreadable TLS files, the
  // handshake's status (Unauthenticated for bad credentials, Unavailable when the server
  // cannot be reached).
  static Result<std::unique_ptr<Client>> Connect(std::string_view uri, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& uri() const;
  // The bearer token the calls carry (from the options or the handshake; may be empty).
  const std::string& token() const;

  // Runs the Basic handshake and returns the bearer token (the client does not keep it).
  Result<std::string> Handshake(std::string_view user, std::string_view password);

  // One FlightInfo per flight the server lists; `prefix` is the Criteria expression.
  Result<std::vector<FlightInfo>> ListFlights(std::string_view prefix = {});
  Result<FlightInfo> GetFlightInfo(const Descriptor& descriptor);
  Result<PollInfo> PollFlightInfo(const Descriptor& descriptor);
  // The schema of `descriptor` ("+s").
  Result<ipc::OwnedSchema> GetSchema(const Descriptor& descriptor);

  // Opens the stream of `ticket` on this connection and reads its schema.
  Result<std::unique_ptr<StreamReader>> DoGet(std::string_view ticket);
  // Reads every endpoint of `info` and returns the batches in endpoint order. An endpoint
  // without locations (or with kReuseConnection) is read here; otherwise from its locations,
  // tried in order, with this client's options and token.
  Result<Table> FetchAll(const FlightInfo& info, FetchOptions options = {});

  // Starts an upload of `schema`'s batches into `descriptor` (PATH [table] for Bridge);
  // `mode` goes in the first message's app_metadata as {"mode": "..."}.
  Result<std::unique_ptr<PutWriter>> DoPut(const Descriptor& descriptor, const ArrowSchema& schema,
                                           PutMode mode = PutMode::kCreate);
  // Uploads `batches` and returns the acknowledgements.
  Result<PutOutcome> Put(const Descriptor& descriptor, const ArrowSchema& schema,
                         std::vector<ipc::OwnedArray> batches, PutMode mode = PutMode::kCreate);
  // DoExchange with a CMD descriptor of `sql`: streams `batches` up while reading the
  // result back.
  Result<Table> Exchange(std::string_view sql, const ArrowSchema& schema,
                         std::vector<ipc::OwnedArray> batches);

  Result<std::vector<ActionType>> ListActions();
  // Runs action `type` with `body`; returns the bodies of its results.
  Result<std::vector<std::string>> DoAction(std::string_view type, std::string_view body = {});

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge::flight::client
