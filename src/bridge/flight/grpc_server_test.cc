// The Flight server in process, on 127.0.0.1 and an ephemeral port, driven by a client made
// from the generated stub and by a raw ByteBuffer client whose FlightData goes through our
// decoder and Bridge's IPC reader.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "Flight.grpc.pb.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/auth/auth.h"
#include "bridge/auth/password.h"
#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/flight_testing.h"
#include "bridge/flight/grpc_flight_data_internal.h"
#include "bridge/flight/server.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/registry.h"

namespace bridge::flight {
namespace {

using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using namespace ::bridge::flight::testing;  // NOLINT
using ::testing::HasSubstr;
namespace ta = ::bridge::ipc::test_arrays;

// ---- Listing and planning ----

TEST(FlightServerTest, ListFlightsGivesOneFlightInfoPerTable) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  grpc::Status status;
  std::vector<protocol::FlightInfo> all = ListFlights(*t, "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].flight_descriptor().path(0), "letters");
  EXPECT_EQ(all[0].total_records(), -1);  // CSV: unknown without reading
  EXPECT_EQ(all[1].flight_descriptor().path(0), "numbers");
  EXPECT_EQ(all[1].total_records(), kRows);
  EXPECT_EQ(all[1].total_bytes(), -1);
  ASSERT_GE(all[1].schema().size(), 8u);
  EXPECT_EQ(all[1].schema().substr(0, 4), std::string(4, '\xFF'));

  std::vector<protocol::FlightInfo> some = ListFlights(*t, "NUM", &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0].flight_descriptor().path(0), "numbers");
  EXPECT_TRUE(ListFlights(*t, "zzz", &status).empty());
}

TEST(FlightServerTest, GetFlightInfoOfATableHasASignedExpiringEndpoint) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  grpc::Status status = GetInfo(*t, Path({"numbers"}), &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.total_records(), kRows);
  EXPECT_EQ(info.flight_descriptor().path(0), "numbers");
  ASSERT_EQ(info.endpoint_size(), 1);
  EXPECT_EQ(info.endpoint(0).location_size(), 0);  // redeem on this connection
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  EXPECT_GT(info.endpoint(0).expiration_time().seconds(), now + 3000);
  EXPECT_LE(info.endpoint(0).expiration_time().seconds(), now + 3600);

  // The schema is an encapsulated IPC Schema message that Bridge's reader opens.
  std::string stream = info.schema() + std::string("\xFF\xFF\xFF\xFF\0\0\0\0", 8);
  ASSERT_OK_AND_ASSIGN(auto reader, ipc::OpenStreamReader(ipc::Buffer::FromString(stream)));
  ASSERT_EQ(reader->schema().n_children, 2);
  EXPECT_STREQ(reader->schema().children[0]->name, "id");
  EXPECT_STREQ(reader->schema().children[1]->name, "label");
}

TEST(FlightServerTest, GetSchemaPreparesWithoutRunning) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  grpc::ClientContext ctx;
  protocol::SchemaResult result;
  grpc::Status status =
      t->stub->GetSchema(&ctx, Sql("SELECT 1::INTEGER AS one, 'x' AS two"), &result);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::string stream = result.schema() + std::string("\xFF\xFF\xFF\xFF\0\0\0\0", 8);
  ASSERT_OK_AND_ASSIGN(auto reader, ipc::OpenStreamReader(ipc::Buffer::FromString(stream)));
  ASSERT_EQ(reader->schema().n_children, 2);
  EXPECT_STREQ(reader->schema().children[0]->name, "one");
  EXPECT_STREQ(reader->schema().children[0]->format, "i");
}

// ---- DoGet ----

TEST(FlightServerTest, DoGetStreamsTheWholeTableWithoutCopyingTheBody) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info).ok());
  Fetched fetched = RawDoGet(*t, TicketOf(info));
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  ASSERT_GE(fetched.messages.size(), 3u);  // schema + several 2048-row batches
  EXPECT_TRUE(fetched.messages[0].body.size() == 0);
  Table table = DecodeTable(fetched.messages);
  EXPECT_EQ(table.rows, kRows);
  EXPECT_EQ(table.batches, static_cast<int64_t>(fetched.messages.size()) - 1);
  EXPECT_EQ(table.sum_of_first_column, kRows * (kRows - 1) / 2);
  EXPECT_EQ(table.column_names, (std::vector<std::string>{"id", "label"}));
  EXPECT_EQ(table.first_row, "0|'row 0'");

  FlightStats stats = t->server->stats();
  EXPECT_EQ(stats.flight_data_sent, static_cast<int64_t>(fetched.messages.size()));
  EXPECT_GT(stats.body_bytes_sent, kRows * 8);
  EXPECT_EQ(stats.body_bytes_copied, 0);
  EXPECT_EQ(t->Counter("bridge_flight_data_messages_total"),
            static_cast<double>(fetched.messages.size()));
  EXPECT_EQ(t->Counter("bridge_flight_body_bytes_total"),
            static_cast<double>(stats.body_bytes_sent));
  EXPECT_EQ(t->Counter("bridge_flight_body_bytes_copied_total"), 0);
}

// ---- Result cache ----

// The bytes of a fetched stream: each message's header and body.
std::vector<std::string> Bytes(const Fetched& fetched) {
  std::vector<std::string> out;
  for (const auto& m : fetched.messages) {
    out.push_back(m.data_header);
    out.push_back(std::string(reinterpret_cast<const char*>(m.body.data()),
                              static_cast<size_t>(m.body.size())));
  }
  return out;
}

// Waits (up to 20 s) until the server has committed `n` results to the cache (a miss's entry
// is committed after its call finished).
bool WaitForCached(TestServer& t, int64_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (t.server->stats().results_cached < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

Fetched GetSql(TestServer& t, const std::string& sql) {
  protocol::FlightInfo info;
  grpc::Status status = GetInfo(t, Sql(sql), &info);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return RawDoGet(t, TicketOf(info));
}

TEST(FlightCacheTest, SecondDoGetIsServedFromTheCachedFileWithTheSameMessages) {
  auto t = StartServer(
      false, std::chrono::seconds(5), [](FlightServerOptions& o) { o.endpoints = 1; }, {}, true);
  ASSERT_NE(t, nullptr);
  const std::string sql = "SELECT id, label FROM numbers WHERE id % 3 = 0";
  Fetched first = GetSql(*t, sql);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_TRUE(WaitForCached(*t, 1));
  EXPECT_EQ(t->server->stats().results_from_cache, 0);
  EXPECT_EQ(t->cache->stats().entries, 1);

  const int64_t bytes_before = t->server->stats().body_bytes_sent;
  Fetched second = GetSql(*t, "SELECT id,  label FROM numbers -- same query\n WHERE id % 3 = 0");
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  FlightStats stats = t->server->stats();
  EXPECT_EQ(stats.results_from_cache, 1);
  EXPECT_EQ(stats.results_cached, 1);
  EXPECT_EQ(stats.body_bytes_copied, 0);  // bodies are slices of the mapping
  EXPECT_EQ(stats.body_bytes_sent - bytes_before, stats.body_bytes_sent / 2);
  EXPECT_TRUE(Bytes(second) == Bytes(first));
  Table table = DecodeTable(second.messages);
  EXPECT_EQ(table.rows, (kRows + 2) / 3);
  EXPECT_EQ(table.first_row, "0|'row 0'");
  // Each message was verified as it went out, once.
  EXPECT_EQ(t->cache->stats().verify_failures, 0);
  EXPECT_GT(t->cache->stats().bytes_verified, kRows / 3 * 8);

  // Uncacheable queries neither read nor write entries.
  Fetched random = GetSql(*t, "SELECT id, random() AS r FROM numbers");
  ASSERT_TRUE(random.status.ok());
  EXPECT_EQ(t->server->stats().results_cached, 1);
  EXPECT_EQ(t->cache->stats().entries, 1);
}

TEST(FlightCacheTest, ACorruptBatchEndsTheCallWithDataLossAndTheRetryRunsTheQuery) {
  auto t = StartServer(
      false, std::chrono::seconds(5), [](FlightServerOptions& o) { o.endpoints = 1; }, {}, true);
  ASSERT_NE(t, nullptr);
  const std::string sql = "SELECT id, label FROM numbers";
  Fetched first = GetSql(*t, sql);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_TRUE(WaitForCached(*t, 1));
  ASSERT_EQ(t->cache->stats().entries, 1);
  // Flip a byte near the end of the stream section (inside the last batch's body).
  std::filesystem::path file =
      ::bridge::testing::OnlyFileWithExtension(t->dir.path() / "results", ".arrow");
  ASSERT_FALSE(file.empty());
  ::bridge::testing::FlipByteAt(file, 3, 4);
  Fetched corrupt = GetSql(*t, sql);
  EXPECT_EQ(corrupt.status.error_code(), grpc::StatusCode::DATA_LOSS)
      << corrupt.status.error_message();
  EXPECT_LT(corrupt.messages.size(), first.messages.size());  // stopped before the bad batch
  EXPECT_EQ(t->cache->stats().verify_failures, 1);
  EXPECT_FALSE(std::filesystem::exists(file));
  Fetched retry = GetSql(*t, sql);
  ASSERT_TRUE(retry.status.ok()) << retry.status.error_message();
  EXPECT_TRUE(Bytes(retry) == Bytes(first));
  EXPECT_EQ(t->server->stats().results_from_cache, 1);
  EXPECT_TRUE(WaitForCached(*t, 2));
}

TEST(FlightServerTest, DoGetOfSqlParsesWithTheGeneratedFlightData) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  grpc::Status status = GetInfo(*t, Sql("SELECT 42::BIGINT AS answer, 'forty-two' AS name"), &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.total_records(), -1);
  grpc::ClientContext ctx;
  protocol::Ticket ticket;
  ticket.set_ticket(TicketOf(info));
  auto reader = t->stub->DoGet(&ctx, ticket);
  std::vector<DecodedFlightData> messages;
  protocol::FlightData data;
  while (reader->Read(&data)) {  // the generated parser reads our hand-written FlightData
    DecodedFlightData m;
    m.data_header = data.data_header();
    m.body = ipc::Buffer::FromString(data.data_body());
    messages.push_back(std::move(m));
  }
  status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  Table table = DecodeTable(messages);
  EXPECT_EQ(table.rows, 1);
  EXPECT_EQ(table.sum_of_first_column, 42);
  EXPECT_EQ(table.first_row, "42|'forty-two'");
}

TEST(FlightServerTest, ClientCancelStopsTheQueryAndTheServerGoesOn) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Sql("SELECT range AS i FROM range(1000000000)"), &info).ok());
  Fetched partial = RawDoGet(*t, TicketOf(info), "", 3);
  EXPECT_EQ(partial.messages.size(), 3u);
  EXPECT_EQ(partial.status.error_code(), grpc::StatusCode::CANCELLED);
  // The cancelled query released its session: more calls than max_sessions still work.
  for (int i = 0; i < 10; ++i) {
    protocol::FlightInfo again;
    ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &again).ok()) << i;
  }
  protocol::FlightInfo numbers;
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &numbers).ok());
  Fetched table = RawDoGet(*t, TicketOf(numbers));
  ASSERT_TRUE(table.status.ok()) << table.status.error_message();
  EXPECT_EQ(DecodeTable(table.messages).rows, kRows);
}

TEST(FlightServerTest, ShutdownCancelsRunningStreams) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Sql("SELECT range AS i FROM range(1000000000)"), &info).ok());
  grpc::ClientContext ctx;
  protocol::Ticket ticket;
  ticket.set_ticket(TicketOf(info));
  auto reader = t->stub->DoGet(&ctx, ticket);
  protocol::FlightData data;
  ASSERT_TRUE(reader->Read(&data));  // the stream is running (and then held by flow control)
  auto started = std::chrono::steady_clock::now();
  t->server->Shutdown(std::chrono::milliseconds(100));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  int64_t more = 0;
  while (reader->Read(&data)) ++more;
  EXPECT_LT(more, 1000000000 / 2048);
  EXPECT_FALSE(reader->Finish().ok());
}

TEST(FlightServerTest, SlowFirstBatchSendsKeepAlives) {
  auto t = StartServer(false, std::chrono::milliseconds(10));
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t,
                      Sql("SELECT count(*) FILTER (WHERE range % 7 = 3) AS n "
                          "FROM range(100000000)"),
                      &info)
                  .ok());
  Fetched fetched = RawDoGet(*t, TicketOf(info));
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  ASSERT_GE(fetched.messages.size(), 3u);
  EXPECT_FALSE(fetched.messages.front().data_header.empty());  // the schema comes first
  int keepalives = 0;
  for (const DecodedFlightData& m : fetched.messages) {
    if (!m.data_header.empty()) continue;
    ++keepalives;
    EXPECT_EQ(m.app_metadata, "bridge:keepalive");
    EXPECT_EQ(m.body.size(), 0u);
  }
  EXPECT_GE(keepalives, 1);
  EXPECT_EQ(t->server->stats().keepalives_sent, keepalives);
  Table table = DecodeTable(fetched.messages);
  EXPECT_EQ(table.rows, 1);
  EXPECT_EQ(table.sum_of_first_column, 14285714);
}

// ---- Errors ----

TEST(FlightServerTest, ErrorsMapToGrpcCodes) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  grpc::Status status = GetInfo(*t, Path({"nope"}), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no table 'nope'"));
  status = GetInfo(*t, Sql("SELEC 1"), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("syntax error"));
  status = GetInfo(*t, Path({"numbers", "more"}), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = GetInfo(*t, protocol::FlightDescriptor(), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = GetInfo(*t, Sql("SELECT $1::INTEGER"), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  status = GetInfo(*t, Sql("COPY (SELECT 1) TO '/tmp/x.csv'"), &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext ctx;
  protocol::SchemaResult schema;
  EXPECT_EQ(t->stub->GetSchema(&ctx, Path({"nope"}), &schema).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext unimplemented;
  protocol::Action action;
  action.set_type("no-such-action");
  auto reader = t->stub->DoAction(&unimplemented, action);
  protocol::Result result;
  while (reader->Read(&result)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST(FlightServerTest, ForgedAlteredAndGarbageTicketsAreRefused) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Sql("SELECT 1 AS x"), &info).ok());
  std::string ticket = TicketOf(info);
  // Swap the SQL for another query of the same length: the signature no longer matches.
  std::string altered = ticket;
  size_t at = altered.find("SELECT 1 AS x");
  ASSERT_NE(at, std::string::npos);
  altered.replace(at, 13, "SELECT 2 AS x");
  for (const std::string& bad : {altered, std::string("garbage"), std::string()}) {
    Fetched fetched = RawDoGet(*t, bad);
    EXPECT_EQ(fetched.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(fetched.status.error_message(), HasSubstr("invalid ticket"));
    EXPECT_TRUE(fetched.messages.empty());
  }
  // A ticket of another server (another key) is refused too.
  auto other = StartServer();
  ASSERT_NE(other, nullptr);
  Fetched foreign = RawDoGet(*other, ticket);
  EXPECT_EQ(foreign.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The genuine one works.
  Fetched good = RawDoGet(*t, ticket);
  ASSERT_TRUE(good.status.ok()) << good.status.error_message();
  EXPECT_EQ(DecodeTable(good.messages).rows, 1);
}

// ---- Authentication ----

// Runs a Handshake with an optional authorization header and optional BasicAuth payload;
// returns the status, the response payload and the authorization response header.
struct HandshakeResult {
  grpc::Status status;
  std::string payload;
  std::string header;
};

HandshakeResult Handshake(TestServer& t, const std::string& authorization,
                          const protocol::BasicAuth* basic) {
  HandshakeResult out;
  grpc::ClientContext ctx;
  if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
  auto stream = t.stub->Handshake(&ctx);
  if (basic != nullptr) {
    protocol::HandshakeRequest request;
    request.set_payload(basic->SerializeAsString());
    stream->Write(request);
  }
  stream->WritesDone();
  protocol::HandshakeResponse response;
  while (stream->Read(&response)) out.payload = response.payload();
  out.status = stream->Finish();
  auto it = ctx.GetServerInitialMetadata().find("authorization");
  if (it != ctx.GetServerInitialMetadata().end()) {
    out.header = std::string(it->second.data(), it->second.size());
  }
  return out;
}

TEST(FlightServerTest, HandshakeWithoutAuthReturnsAnEmptyToken) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  HandshakeResult r = Handshake(*t, "", nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.payload, "");
  EXPECT_EQ(r.header, "");
}

TEST(FlightServerTest, BearerTokensFromHandshakeAreRequired) {
  auto t = StartServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  // No credentials, wrong password.
  EXPECT_EQ(Handshake(*t, "", nullptr).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Handshake(*t, "Basic YWxpY2U6bm9wZQ==", nullptr).status.error_code(),  // alice:nope
            grpc::StatusCode::UNAUTHENTICATED);
  protocol::BasicAuth wrong;
  wrong.set_username("alice");
  wrong.set_password("nope");
  EXPECT_EQ(Handshake(*t, "", &wrong).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // Basic header -> bearer token in the response header and payload.
  HandshakeResult by_header = Handshake(*t, "Basic YWxpY2U6c2VjcmV0", nullptr);  // alice:secret
  ASSERT_TRUE(by_header.status.ok()) << by_header.status.error_message();
  ASSERT_FALSE(by_header.payload.empty());
  EXPECT_EQ(by_header.header, "Bearer " + by_header.payload);
  // BasicAuth payload -> token.
  protocol::BasicAuth right;
  right.set_username("alice");
  right.set_password("secret");
  HandshakeResult by_payload = Handshake(*t, "", &right);
  ASSERT_TRUE(by_payload.status.ok()) << by_payload.status.error_message();
  ASSERT_FALSE(by_payload.payload.empty());
  std::string token = by_payload.payload;

  // Every other call needs the token.
  grpc::Status status;
  ListFlights(*t, "", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ListFlights(*t, "", &status, "not-a-token");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ListFlights(*t, "", &status, token).size(), 2u);
  EXPECT_TRUE(status.ok()) << status.error_message();

  protocol::FlightInfo info;
  EXPECT_EQ(GetInfo(*t, Path({"numbers"}), &info).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info, token).ok());
  EXPECT_EQ(RawDoGet(*t, TicketOf(info)).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  Fetched fetched = RawDoGet(*t, TicketOf(info), token);
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  EXPECT_EQ(DecodeTable(fetched.messages).rows, kRows);

  // bob has no read permission.
  HandshakeResult bob = Handshake(*t, "Basic Ym9iOnNlY3JldA==", nullptr);  // bob:secret
  ASSERT_TRUE(bob.status.ok());
  EXPECT_EQ(GetInfo(*t, Path({"numbers"}), &info, bob.payload).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST(FlightServerTest, StartRefusesBadOptions) {
  FlightServerOptions options;
  options.port = 0;
  EXPECT_STATUS(FlightServer::Start(options, Services{}), StatusCode::kInvalidArgument,
                "database and a catalog");
}

}  // namespace
}  // namespace bridge::flight
