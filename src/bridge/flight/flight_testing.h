// Test helpers of the Flight server tests: a server in process over a small data folder on
// 127.0.0.1:0 with a generated-stub client, and helpers that drive and decode the RPCs.
// Test-only (target bridge_flight_testing).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "Flight.grpc.pb.h"
#include "bridge/auth/auth.h"
#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/command_handler.h"
#include "bridge/flight/grpc_flight_data_internal.h"
#include "bridge/flight/server.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/registry.h"

namespace bridge::flight::testing {

// Rows of numbers.parquet.
inline constexpr int64_t kRows = 5000;

struct TestServer {
  bridge::testing::TempDir dir;  // dir/data is the data folder
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<catalog::Catalog> catalog;
  std::unique_ptr<auth::Authenticator> auth;
  std::unique_ptr<CommandHandler> commands;  // Services::commands, when made
  prometheus::Registry registry;
  std::unique_ptr<cache::Cache> cache;  // with_cache: a result cache in dir/results
  std::unique_ptr<FlightServer> server;

  // Returns the value of the counter family `name` (-1 if absent).
  double Counter(const std::string& name);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<protocol::FlightService::Stub> stub;
};

// Starts a server over a data folder with numbers.parquet (kRows rows: id BIGINT, label
// VARCHAR) and letters.csv (letter, n: a,1 / b,2); the catalog does not watch (call
// catalog->Refresh()). With `with_users`: alice (read), bob (no permissions), carol (read,
// ingest), dave (read, admin), all with password "secret". `configure` may change the server
// options before the start; `make_commands` may make the server's CommandHandler (e.g. Flight SQL)
// over the test's database and catalog. Returns null (after a failed EXPECT) when something cannot
// start.
std::unique_ptr<TestServer> StartServer(
    bool with_users = false, std::chrono::milliseconds keepalive = std::chrono::seconds(5),
    const std::function<void(FlightServerOptions&)>& configure = {},
    const std::function<std::unique_ptr<CommandHandler>(TestServer&)>& make_commands = {},
    bool with_cache = false);

protocol::FlightDescriptor Path(std::vector<std::string> path);
protocol::FlightDescriptor Sql(const std::string& sql);

// Adds `authorization: Bearer <token>` (nothing for an empty token).
void Authorize(grpc::ClientContext& ctx, const std::string& token);

// A whole DoGet stream read back.
struct Fetched {
  grpc::Status status;
  std::vector<DecodedFlightData> messages;
};

// DoGet through a generic (ByteBuffer) call: every FlightData goes through DecodeFlightData.
// With max_messages >= 0 the call is cancelled after that many messages.
Fetched RawDoGet(TestServer& t, const std::string& ticket, const std::string& token = "",
                 int max_messages = -1);

// A DoGet result decoded with Bridge's IPC reader.
struct Table {
  int64_t rows = 0;
  int64_t batches = 0;
  int64_t sum_of_first_column = 0;  // when it is an int64 column
  std::vector<std::string> column_names;
  std::string first_row;  // "v1|v2|..." of the first row
};
Table DecodeTable(const std::vector<DecodedFlightData>& messages);

// The ticket of the only endpoint (EXPECTs exactly one).
std::string TicketOf(const protocol::FlightInfo& info);

grpc::Status GetInfo(TestServer& t, const protocol::FlightDescriptor& d, protocol::FlightInfo* info,
                     const std::string& token = "");

std::vector<protocol::FlightInfo> ListFlights(TestServer& t, const std::string& prefix,
                                              grpc::Status* status, const std::string& token = "");

}  // namespace bridge::flight::testing
