// The Flight client against Bridge's Flight server in process on 127.0.0.1:0.
#include "bridge/flight/client/client.h"

#include <numeric>
#include <thread>

#include "bridge/arrow/test_arrays.h"
#include "bridge/flight/flight_testing.h"

namespace bridge::flight::client {
namespace {

using ::bridge::flight::testing::kRows;
using ::bridge::flight::testing::StartServer;
using ::bridge::flight::testing::TestServer;
using ::testing::HasSubstr;
namespace ta = ::bridge::ipc::test_arrays;

std::string UriOf(TestServer& t) { return StrCat("grpc://127.0.0.1:", t.server->port()); }

std::unique_ptr<Client> ConnectTo(TestServer& t, ClientOptions options = {}) {
  auto client = Client::Connect(UriOf(t), std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

// The int64 values of column `column` of every batch, in order.
std::vector<int64_t> Int64Column(const Table& table, int column = 0) {
  std::vector<int64_t> out;
  for (const ipc::OwnedArray& batch : table.batches) {
    const ArrowArray& c = *batch->children[column];
    for (int64_t i = 0; i < c.length; ++i) {
      out.push_back(ta::LoadAt<int64_t>(c.buffers[1], c.offset + i));
    }
  }
  return out;
}

int64_t Sum(const std::vector<int64_t>& values) {
  return std::accumulate(values.begin(), values.end(), int64_t{0});
}

constexpr int64_t kSumOfIds = kRows * (kRows - 1) / 2;

std::vector<std::string> FieldNames(const ArrowSchema& schema) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < schema.n_children; ++i) names.push_back(schema.children[i]->name);
  return names;
}

TEST(FlightClientTest, RefusesBadUris) {
  for (const char* uri : {"", "127.0.0.1:8815", "http://127.0.0.1:8815", "grpc://", "grpc://host",
                          "grpc://host:", "grpc://host:0", "grpc://host:70000", "grpc://host:12x",
                          "grpc://:8815", "grpc://host:8815/path", "grpc://[::1]8815"}) {
    EXPECT_STATUS(Client::Connect(uri), StatusCode::kInvalidArgument, "bad URI") << uri;
  }
  ClientOptions both;
  both.token = "t";
  both.user = "u";
  both.password = "p";
  EXPECT_STATUS(Client::Connect("grpc://127.0.0.1:1", both), StatusCode::kInvalidArgument,
                "not both");
  ClientOptions tls_plain;
  tls_plain.tls_root_ca_file = "/nope.pem";
  EXPECT_STATUS(Client::Connect("grpc://127.0.0.1:1", tls_plain), StatusCode::kInvalidArgument,
                "grpc+tls");
  EXPECT_STATUS(Client::Connect("grpc+tls://127.0.0.1:1", tls_plain), StatusCode::kNotFound,
                "/nope.pem");
  // Good URIs connect lazily.
  for (const char* uri : {"grpc://localhost:1", "grpc+tcp://127.0.0.1:1", "grpc://[::1]:1",
                          "grpc+tls://localhost:1/"}) {
    Result<std::unique_ptr<Client>> client = Client::Connect(uri);
    EXPECT_TRUE(client.ok()) << uri << ": " << client.status();
  }
}

TEST(FlightClientTest, UnreachableServerIsUnavailable) {
  int port = 0;
  {
    auto t = StartServer();
    ASSERT_NE(t, nullptr);
    port = t->server->port();
  }
  ASSERT_OK_AND_ASSIGN(auto client, Client::Connect(StrCat("grpc://127.0.0.1:", port)));
  EXPECT_STATUS(client->ListFlights(), StatusCode::kUnavailable,
                StrCat("grpc://127.0.0.1:", port, " unavailable (ListFlights)"));
}

TEST(FlightClientTest, ListFlightsWithPrefix) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(std::vector<FlightInfo> all, client->ListFlights());
  std::vector<std::string> names;
  for (const FlightInfo& info : all) {
    ASSERT_EQ(info.descriptor.type, Descriptor::Type::kPath);
    ASSERT_EQ(info.descriptor.path.size(), 1u);
    names.push_back(info.descriptor.path[0]);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"letters", "numbers"}));
  ASSERT_OK_AND_ASSIGN(std::vector<FlightInfo> some, client->ListFlights("NUM"));
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0].descriptor.path[0], "numbers");
  EXPECT_EQ(some[0].total_records, kRows);
}

TEST(FlightClientTest, GetFlightInfoAndSchema) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(Descriptor::Path("numbers")));
  EXPECT_EQ(info.total_records, kRows);
  EXPECT_EQ(info.descriptor.path, std::vector<std::string>{"numbers"});
  ASSERT_GE(info.endpoints.size(), 1u);
  for (const Endpoint& e : info.endpoints) {
    EXPECT_FALSE(e.ticket.empty());
    ASSERT_TRUE(e.expiration.has_value());
    EXPECT_GT(*e.expiration, std::chrono::system_clock::now());
  }
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema schema, info.Schema());
  EXPECT_EQ(FieldNames(*schema), (std::vector<std::string>{"id", "label"}));
  EXPECT_STREQ(schema->children[0]->format, "l");

  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema sql_schema,
                       client->GetSchema(Descriptor::Sql("select id * 2 as twice from numbers")));
  EXPECT_EQ(FieldNames(*sql_schema), std::vector<std::string>{"twice"});
  ASSERT_OK_AND_ASSIGN(FlightInfo sql_info,
                       client->GetFlightInfo(Descriptor::Sql("select 1 as one")));
  EXPECT_EQ(sql_info.descriptor.type, Descriptor::Type::kCmd);
  EXPECT_EQ(sql_info.descriptor.cmd, "select 1 as one");
}

TEST(FlightClientTest, DoGetReadsEveryEndpoint) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(Descriptor::Path("numbers")));
  int64_t rows = 0;
  int64_t sum = 0;
  int64_t body_bytes = 0;
  for (const Endpoint& e : info.endpoints) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader, client->DoGet(e.ticket));
    EXPECT_EQ(FieldNames(reader->schema()), (std::vector<std::string>{"id", "label"}));
    for (;;) {
      ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, reader->Next());
      if (!batch.valid()) break;
      rows += batch->length;
      const ArrowArray& ids = *batch->children[0];
      for (int64_t i = 0; i < ids.length; ++i) {
        sum += ta::LoadAt<int64_t>(ids.buffers[1], ids.offset + i);
      }
    }
    // The end is sticky.
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray after, reader->Next());
    EXPECT_FALSE(after.valid());
    body_bytes += reader->stats().body_bytes;
  }
  EXPECT_EQ(rows, kRows);
  EXPECT_EQ(sum, kSumOfIds);
  // The server's count of data_body bytes is what the client received.
  EXPECT_EQ(t->server->stats().body_bytes_sent, body_bytes);
  EXPECT_GT(body_bytes, kRows * 8);
}

TEST(FlightClientTest, FetchAllSequentialAndParallelAgree) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(
                                            Descriptor::Sql("select id from numbers order by id")));
  std::vector<int64_t> expected(kRows);
  std::iota(expected.begin(), expected.end(), 0);
  for (bool parallel : {false, true}) {
    FetchOptions options;
    options.parallel = parallel;
    ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(info, options));
    EXPECT_EQ(table.rows, kRows) << parallel;
    EXPECT_EQ(FieldNames(*table.schema), std::vector<std::string>{"id"});
    if (info.ordered) {
      EXPECT_EQ(Int64Column(table), expected) << parallel;
    } else {
      std::vector<int64_t> ids = Int64Column(table);
      std::sort(ids.begin(), ids.end());
      EXPECT_EQ(ids, expected) << parallel;
    }
  }
  FetchOptions counting;
  counting.keep_batches = false;
  ASSERT_OK_AND_ASSIGN(Table counted, client->FetchAll(info, counting));
  EXPECT_EQ(counted.rows, kRows);
  EXPECT_TRUE(counted.batches.empty());
  EXPECT_GT(counted.stats.body_bytes, 0);
}

TEST(FlightClientTest, ManyEndpointsTogetherAreTheWholeTable) {
  auto t =
      StartServer(false, std::chrono::seconds(5), [](FlightServerOptions& o) { o.endpoints = 4; });
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(Descriptor::Path("numbers")));
  for (bool parallel : {false, true}) {
    FetchOptions options;
    options.parallel = parallel;
    options.max_threads = 2;
    ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(info, options));
    std::vector<int64_t> ids = Int64Column(table);
    EXPECT_EQ(table.rows, kRows);
    EXPECT_EQ(Sum(ids), kSumOfIds);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "a row came twice";
  }
  // Record the plan's shape for the report (H3's partitioned plans).
  RecordProperty("endpoints", static_cast<int>(info.endpoints.size()));
}

TEST(FlightClientTest, EndpointLocationsAreFollowed) {
  // Two servers that share the ticket key: a plan from `a` whose endpoints point at `b`.
  auto same_key = [](FlightServerOptions& o) { o.ticket_secret = std::string(32, 'k'); };
  auto a = StartServer(false, std::chrono::seconds(5), same_key);
  auto b = StartServer(false, std::chrono::seconds(5), same_key);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  int dead_port = 0;
  {
    auto dead = StartServer();
    ASSERT_NE(dead, nullptr);
    dead_port = dead->server->port();
  }
  auto client = ConnectTo(*a);
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(
                                            Descriptor::Sql("select id from numbers order by id")));
  for (Endpoint& e : info.endpoints) {
    // The first location cannot be reached; the second serves the ticket.
    e.locations = {StrCat("grpc://127.0.0.1:", dead_port), UriOf(*b)};
  }
  for (bool parallel : {false, true}) {
    FetchOptions options;
    options.parallel = parallel;
    ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(info, options));
    EXPECT_EQ(table.rows, kRows);
    EXPECT_EQ(Sum(Int64Column(table)), kSumOfIds);
  }
  EXPECT_EQ(a->server->stats().body_bytes_sent, 0);
  EXPECT_GT(b->server->stats().body_bytes_sent, 0);
  // The reuse-connection location (and the client's own URI) mean `a` itself.
  for (Endpoint& e : info.endpoints) e.locations = {std::string(kReuseConnection)};
  ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(info));
  EXPECT_EQ(table.rows, kRows);
  EXPECT_GT(a->server->stats().body_bytes_sent, 0);
  // Only unreachable locations: Unavailable.
  for (Endpoint& e : info.endpoints) e.locations = {StrCat("grpc://127.0.0.1:", dead_port)};
  EXPECT_STATUS(client->FetchAll(info), StatusCode::kUnavailable, "unavailable");
}

TEST(FlightClientTest, ServerErrorsKeepCodeAndMessage) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql("selec 1")), StatusCode::kInvalidArgument,
                "syntax error");
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Path("nope")), StatusCode::kNotFound,
                "no table 'nope'");
  EXPECT_STATUS(client->GetSchema(Descriptor::Sql("")), StatusCode::kInvalidArgument,
                "needs SQL text");
  EXPECT_STATUS(client->DoGet("forged"), StatusCode::kInvalidArgument, "invalid ticket");
  FlightInfo forged;
  forged.endpoints.push_back(Endpoint{"forged", {}, std::nullopt, ""});
  EXPECT_STATUS(client->FetchAll(forged), StatusCode::kInvalidArgument, "invalid ticket");
}

TEST(FlightClientTest, CancelStopsTheStream) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(
      FlightInfo info,
      client->GetFlightInfo(Descriptor::Sql("select range as n from range(1000000000)")));
  ASSERT_EQ(info.endpoints.size(), 1u);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                         client->DoGet(info.endpoints[0].ticket));
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray first, reader->Next());
    ASSERT_TRUE(first.valid());
    reader->Cancel();
    Status st;
    // Batches already received may still come; then the cancel.
    for (int i = 0; i < 100000 && st.ok(); ++i) {
      Result<ipc::OwnedArray> next = reader->Next();
      st = next.status();
      if (st.ok() && !next->valid()) break;
    }
    EXPECT_EQ(st.code(), StatusCode::kCancelled) << st;
  }
  // Destroying a reader in the middle of a stream cancels it too (no hang).
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                         client->DoGet(info.endpoints[0].ticket));
    ASSERT_OK(reader->Next());
  }
  // The server is still serving.
  ASSERT_OK_AND_ASSIGN(std::vector<FlightInfo> flights, client->ListFlights());
  EXPECT_EQ(flights.size(), 2u);
}

TEST(FlightClientTest, DeadlineExceeded) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(300);
  auto client = ConnectTo(*t, options);
  ASSERT_OK_AND_ASSIGN(
      FlightInfo info,
      client->GetFlightInfo(Descriptor::Sql("select count(*) from range(10000000000) a")));
  FetchOptions fetch;
  EXPECT_STATUS(client->FetchAll(info, fetch), StatusCode::kDeadlineExceeded, "");
}

TEST(FlightClientTest, BasicHandshakeAndTokens) {
  auto t = StartServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  // No credentials.
  auto anonymous = ConnectTo(*t);
  EXPECT_STATUS(anonymous->ListFlights(), StatusCode::kUnauthenticated, "");
  // Bad password: the handshake in Connect fails.
  ClientOptions wrong;
  wrong.user = "alice";
  wrong.password = "nope";
  EXPECT_STATUS(Client::Connect(UriOf(*t), wrong), StatusCode::kUnauthenticated, "");
  // alice reads.
  ClientOptions alice;
  alice.user = "alice";
  alice.password = "secret";
  auto client = ConnectTo(*t, alice);
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->token().empty());
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(Descriptor::Path("numbers")));
  ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(info));
  EXPECT_EQ(table.rows, kRows);
  // Her token works on its own, and a forged one does not.
  ClientOptions with_token;
  with_token.token = client->token();
  auto by_token = ConnectTo(*t, with_token);
  ASSERT_OK(by_token->ListFlights());
  with_token.token = client->token() + "x";
  auto forged = ConnectTo(*t, with_token);
  EXPECT_STATUS(forged->ListFlights(), StatusCode::kUnauthenticated, "");
  // bob has no permission.
  ClientOptions bob;
  bob.user = "bob";
  bob.password = "secret";
  auto bobs = ConnectTo(*t, bob);
  ASSERT_NE(bobs, nullptr);
  EXPECT_STATUS(bobs->ListFlights(), StatusCode::kPermissionDenied, "bob");
}

// ---- RPCs that other helpers implement in this round (DoPut, DoExchange, actions, poll) ----

TEST(FlightClientTest, PutThenGetRoundTrip) {
  auto t = StartServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  ClientOptions carol;
  carol.user = "carol";
  carol.password = "secret";
  auto client = ConnectTo(*t, carol);
  ASSERT_NE(client, nullptr);
  ASSERT_OK_AND_ASSIGN(
      FlightInfo source,
      client->GetFlightInfo(Descriptor::Sql("select id, label from numbers order by id")));
  auto upload = [&](PutMode mode) -> Result<PutOutcome> {
    BRIDGE_ASSIGN_OR_RETURN(Table table, client->FetchAll(source));
    return client->Put(Descriptor::Path("copy"), *table.schema, std::move(table.batches), mode);
  };
  auto copied_rows = [&]() -> Result<std::pair<int64_t, int64_t>> {
    BRIDGE_ASSIGN_OR_RETURN(FlightInfo info, client->GetFlightInfo(Descriptor::Path("copy")));
    BRIDGE_ASSIGN_OR_RETURN(Table table, client->FetchAll(info));
    return std::make_pair(table.rows, Sum(Int64Column(table)));
  };
  ASSERT_OK_AND_ASSIGN(PutOutcome created, upload(PutMode::kCreate));
  EXPECT_GE(created.acks, 1);
  EXPECT_GT(created.batches_sent, 0);
  EXPECT_GT(created.body_bytes_sent, kRows * 8);
  if (created.rows >= 0) {
    EXPECT_EQ(created.rows, kRows);
  }
  ASSERT_OK_AND_ASSIGN(auto rows, copied_rows());
  EXPECT_EQ(rows, std::make_pair(kRows, kSumOfIds));
  EXPECT_STATUS(upload(PutMode::kCreate), StatusCode::kAlreadyExists, "copy");
  ASSERT_OK(upload(PutMode::kAppend));
  ASSERT_OK_AND_ASSIGN(rows, copied_rows());
  EXPECT_EQ(rows, std::make_pair(2 * kRows, 2 * kSumOfIds));
  ASSERT_OK(upload(PutMode::kReplace));
  ASSERT_OK_AND_ASSIGN(rows, copied_rows());
  EXPECT_EQ(rows, std::make_pair(kRows, kSumOfIds));

  // alice may read but not ingest.
  ClientOptions alice;
  alice.user = "alice";
  alice.password = "secret";
  auto reader = ConnectTo(*t, alice);
  ASSERT_NE(reader, nullptr);
  ASSERT_OK_AND_ASSIGN(Table table, reader->FetchAll(source));
  EXPECT_STATUS(reader->Put(Descriptor::Path("other"), *table.schema, std::move(table.batches)),
                StatusCode::kPermissionDenied, "alice");
}

TEST(FlightClientTest, PutWithAWrongSchemaOnAppendFails) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ipc::OwnedSchema schema = ta::Columns([] {
    std::vector<ipc::OwnedSchema> fields;
    fields.push_back(ta::MakeSchema("i", "x"));
    return fields;
  }());
  std::vector<ipc::OwnedArray> batches;
  batches.push_back(ta::Batch(3, [] {
    std::vector<ipc::OwnedArray> columns;
    columns.push_back(ta::Int32s({1, 2, 3}));
    return columns;
  }()));
  // numbers has (id BIGINT, label VARCHAR): appending (x INT) is refused, nothing written.
  Result<PutOutcome> appended =
      client->Put(Descriptor::Path("numbers"), *schema, std::move(batches), PutMode::kAppend);
  EXPECT_FALSE(appended.ok());
  EXPECT_NE(appended.status().code(), StatusCode::kUnimplemented) << appended.status();
  ASSERT_OK_AND_ASSIGN(FlightInfo info, client->GetFlightInfo(Descriptor::Path("numbers")));
  ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(info));
  EXPECT_EQ(table.rows, kRows);
}

TEST(FlightClientTest, ExchangeRunsSqlOverTheUpload) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(FlightInfo source, client->GetFlightInfo(Descriptor::Path("numbers")));
  ASSERT_OK_AND_ASSIGN(Table input, client->FetchAll(source));
  ASSERT_OK_AND_ASSIGN(
      Table result,
      client->Exchange("select count(*)::BIGINT as n, sum(i.id)::BIGINT as s from input i "
                       "join numbers n using (id) where n.id < 100",
                       *input.schema, std::move(input.batches)));
  EXPECT_EQ(FieldNames(*result.schema), (std::vector<std::string>{"n", "s"}));
  ASSERT_EQ(result.rows, 1);
  EXPECT_EQ(Int64Column(result, 0), std::vector<int64_t>{100});
  EXPECT_EQ(Int64Column(result, 1), std::vector<int64_t>{4950});
}

TEST(FlightClientTest, Actions) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  ASSERT_OK_AND_ASSIGN(std::vector<ActionType> actions, client->ListActions());
  std::vector<std::string> names;
  for (const ActionType& a : actions) {
    names.push_back(a.type);
    EXPECT_FALSE(a.description.empty()) << a.type;
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"refresh", "health", "stats", "cancel",
                                              "CancelFlightInfo", "RenewFlightEndpoint"}));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> health, client->DoAction("health"));
  ASSERT_FALSE(health.empty());
  ASSERT_OK(client->DoAction("refresh"));
  EXPECT_STATUS(client->DoAction("no-such-action"), StatusCode::kUnimplemented, "no-such-action");
}

TEST(FlightClientTest, PollFlightInfo) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto client = ConnectTo(*t);
  Descriptor d = Descriptor::Sql("select sum(id)::BIGINT as s from numbers");
  ASSERT_OK_AND_ASSIGN(PollInfo poll, client->PollFlightInfo(d));
  // Poll until the server says it is done (no next descriptor), with a deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (poll.next && std::chrono::steady_clock::now() < deadline) {
    ASSERT_OK_AND_ASSIGN(poll, client->PollFlightInfo(*poll.next));
  }
  EXPECT_FALSE(poll.next.has_value());
  ASSERT_TRUE(poll.info.has_value());
  ASSERT_OK_AND_ASSIGN(Table table, client->FetchAll(*poll.info));
  EXPECT_EQ(Int64Column(table), std::vector<int64_t>{kSumOfIds});
}

}  // namespace
}  // namespace bridge::flight::client
