// Partitioned plans, PollFlightInfo, the actions, the DoGet message cap and the copy_body
// mode, against the server in process on 127.0.0.1:0.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/flight/flight_testing.h"
#include "gmock/gmock.h"

namespace bridge::flight {
namespace {

using ::bridge::flight::testing::Authorize;
using ::bridge::flight::testing::DecodeTable;
using ::bridge::flight::testing::GetInfo;
using ::bridge::flight::testing::kRows;
using ::bridge::flight::testing::Path;
using ::bridge::flight::testing::RawDoGet;
using ::bridge::flight::testing::Sql;
using ::bridge::flight::testing::StartServer;
using ::bridge::flight::testing::TestServer;
using ::testing::HasSubstr;
using Json = nlohmann::json;
namespace ta = ::bridge::ipc::test_arrays;
namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

// Writes `select` as a Parquet file at data/`relative` (folders created).
void WriteParquet(TestServer& t, const std::string& relative, const std::string& select,
                  int64_t row_group_size = 0) {
  fs::path path = t.dir.path() / "data" / relative;
  fs::create_directories(path.parent_path());
  std::string options = row_group_size > 0 ? StrCat(", ROW_GROUP_SIZE ", row_group_size) : "";
  ASSERT_OK(
      t.db->ExecuteTrusted(StrCat("COPY (", select, ") TO ", engine::QuoteString(path.string()),
                                  " (FORMAT parquet", options, ")")));
}

std::string Range(int64_t from, int64_t to, const std::string& extra = "") {
  return StrCat("SELECT range AS id, 'row ' || range::VARCHAR AS label", extra, " FROM range(",
                from, ", ", to, ")");
}

// The int64 first column of every batch of a DoGet, in order, and the column names.
struct Column {
  grpc::Status status;
  std::vector<int64_t> ids;
  std::vector<std::string> names;
};

Column IdsOf(TestServer& t, const std::string& ticket, const std::string& token = "") {
  testing::Fetched fetched = RawDoGet(t, ticket, token);
  Column out;
  out.status = fetched.status;
  ipc::StreamDecoder decoder;
  for (const DecodedFlightData& m : fetched.messages) {
    if (m.data_header.empty()) continue;
    std::span<const uint8_t> header(reinterpret_cast<const uint8_t*>(m.data_header.data()),
                                    m.data_header.size());
    Result<ipc::OwnedArray> batch = decoder.Consume(header, m.body);
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) break;
    if (out.names.empty() && decoder.has_schema()) {
      for (int64_t c = 0; c < decoder.schema().n_children; ++c) {
        out.names.push_back(decoder.schema().children[c]->name);
      }
    }
    if (!batch->valid()) continue;
    const ArrowArray& column = *(*batch)->children[0];
    for (int64_t i = 0; i < column.length; ++i) {
      out.ids.push_back(
          ta::LoadAt<int64_t>(column.buffers[1], (*batch)->offset + column.offset + i));
    }
  }
  return out;
}

// DoGets every endpoint of `info` at the same time (one thread each); returns their ids in
// endpoint order.
std::vector<Column> FetchAllInParallel(TestServer& t, const protocol::FlightInfo& info,
                                       const std::string& token = "") {
  std::vector<Column> out(static_cast<size_t>(info.endpoint_size()));
  std::vector<std::thread> threads;
  for (int i = 0; i < info.endpoint_size(); ++i) {
    threads.emplace_back([&, i] {
      out[static_cast<size_t>(i)] = IdsOf(t, info.endpoint(i).ticket().ticket(), token);
    });
  }
  for (auto& thread : threads) thread.join();
  return out;
}

std::vector<int64_t> Concatenated(const std::vector<Column>& columns) {
  std::vector<int64_t> all;
  for (const Column& c : columns) all.insert(all.end(), c.ids.begin(), c.ids.end());
  return all;
}

std::vector<int64_t> Iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

std::unique_ptr<TestServer> StartWith(const std::function<void(FlightServerOptions&)>& configure,
                                      bool with_users = false) {
  return StartServer(with_users, std::chrono::seconds(5), configure);
}

std::string Login(TestServer& t, const std::string& user) {
  grpc::ClientContext ctx;
  auto stream = t.stub->Handshake(&ctx);
  protocol::BasicAuth basic;
  basic.set_username(user);
  basic.set_password("secret");
  protocol::HandshakeRequest request;
  request.set_payload(basic.SerializeAsString());
  stream->Write(request);
  stream->WritesDone();
  protocol::HandshakeResponse response;
  std::string token;
  while (stream->Read(&response)) token = response.payload();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return token;
}

// Runs one action; returns its status and the body of its only result.
struct ActionResult {
  grpc::Status status;
  std::string body;
};
ActionResult DoAction(TestServer& t, const std::string& type, const std::string& body = "",
                      const std::string& token = "") {
  grpc::ClientContext ctx;
  Authorize(ctx, token);
  protocol::Action action;
  action.set_type(type);
  action.set_body(body);
  auto reader = t.stub->DoAction(&ctx, action);
  ActionResult out;
  protocol::Result result;
  int results = 0;
  while (reader->Read(&result)) {
    out.body = result.body();
    ++results;
  }
  out.status = reader->Finish();
  if (out.status.ok()) {
    EXPECT_EQ(results, 1);
  }
  return out;
}

// Polls `until` every few milliseconds for up to 30 s.
bool Eventually(const std::function<bool()>& until) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (until()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int RunningDoGets(TestServer& t) {
  ActionResult stats = DoAction(t, "stats");
  EXPECT_TRUE(stats.status.ok()) << stats.status.error_message();
  if (!stats.status.ok()) return -1;
  // The parsed document must outlive the loop (a range-for does not keep a temporary's
  // member alive).
  Json parsed = Json::parse(stats.body);
  int n = 0;
  for (const Json& q : parsed["running_queries"]) n += q["kind"] == "DoGet";
  return n;
}

// ---- Partitioned plans ----

TEST(PlanTest, FolderOfParquetFilesSplitsIntoEndpointsThatAddUpInOrder) {
  auto t = StartWith([](FlightServerOptions& o) { o.endpoints = 3; });
  ASSERT_NE(t, nullptr);
  // Hive folders, files of different sizes and columns (union_by_name), ids in file order.
  WriteParquet(*t, "trips/year=2023/a.parquet", Range(0, 1000));
  WriteParquet(*t, "trips/year=2024/b.parquet", Range(1000, 4000, ", range * 2 AS extra"));
  WriteParquet(*t, "trips/year=2024/c.parquet", Range(4000, 4500));
  WriteParquet(*t, "trips/year=2025/d.parquet", Range(4500, 7000));
  WriteParquet(*t, "trips/year=2025/e.parquet", Range(7000, 7100));
  ASSERT_OK(t->catalog->Refresh().status());

  protocol::FlightInfo info;
  grpc::Status status = GetInfo(*t, Path({"trips"}), &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(info.endpoint_size(), 3);
  EXPECT_TRUE(info.ordered());
  EXPECT_EQ(info.total_records(), 7100);
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  for (const auto& endpoint : info.endpoint()) {
    EXPECT_EQ(endpoint.location_size(), 0);  // = this connection
    EXPECT_NEAR(endpoint.expiration_time().seconds(), now + 3600, 5);
  }
  std::vector<Column> parts = FetchAllInParallel(*t, info);
  for (const Column& part : parts) {
    ASSERT_TRUE(part.status.ok()) << part.status.error_message();
    EXPECT_FALSE(part.ids.empty());
    EXPECT_EQ(part.names, (std::vector<std::string>{"id", "label", "extra", "year"}));
  }
  // Every row exactly once, and in order when the endpoints are read in order.
  EXPECT_EQ(Concatenated(parts), Iota(7100));
}

TEST(PlanTest, BigSingleFileSplitsByRowGroups) {
  auto t = StartWith([](FlightServerOptions& o) { o.endpoints = 4; });
  ASSERT_NE(t, nullptr);
  WriteParquet(*t, "big.parquet", Range(0, 100000), /*row_group_size=*/10240);
  ASSERT_OK(t->catalog->Refresh().status());
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"big"}), &info).ok());
  ASSERT_EQ(info.endpoint_size(), 4);
  EXPECT_TRUE(info.ordered());
  EXPECT_EQ(info.total_records(), 100000);
  std::vector<Column> parts = FetchAllInParallel(*t, info);
  for (const Column& part : parts) {
    ASSERT_TRUE(part.status.ok()) << part.status.error_message();
    // Row group boundaries: roughly a quarter each.
    EXPECT_GT(part.ids.size(), 15000u);
    EXPECT_LT(part.ids.size(), 35000u);
  }
  EXPECT_EQ(Concatenated(parts), Iota(100000));
}

TEST(PlanTest, FolderOfCsvFilesSplitsByFile) {
  auto t = StartWith([](FlightServerOptions& o) { o.endpoints = 8; });
  ASSERT_NE(t, nullptr);
  fs::create_directories(t->dir.path() / "data" / "events");
  int64_t id = 0;
  for (const char* name : {"1.csv", "2.csv", "3.csv"}) {
    std::string text = "id,name\n";
    for (int i = 0; i < 500; ++i, ++id) text += StrCat(id, ",n", id, "\n");
    bridge::testing::WriteFile(t->dir.path() / "data" / "events" / name, text);
  }
  ASSERT_OK(t->catalog->Refresh().status());
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"events"}), &info).ok());
  ASSERT_EQ(info.endpoint_size(), 3);  // at most one endpoint per file
  EXPECT_EQ(info.total_records(), -1);
  std::vector<Column> parts = FetchAllInParallel(*t, info);
  for (const Column& part : parts) {
    ASSERT_TRUE(part.status.ok()) << part.status.error_message();
    EXPECT_EQ(part.ids.size(), 500u);
  }
  EXPECT_EQ(Concatenated(parts), Iota(1500));
}

TEST(PlanTest, RowWiseSqlOverOneTableSplitsAndTheRestStaysOneEndpoint) {
  auto t = StartWith([](FlightServerOptions& o) { o.endpoints = 4; });
  ASSERT_NE(t, nullptr);
  WriteParquet(*t, "big.parquet", Range(0, 100000), 10240);
  ASSERT_OK(t->catalog->Refresh().status());

  protocol::FlightInfo info;
  grpc::Status status = GetInfo(
      *t, Sql("SELECT id * 2 AS twice, upper(label) AS l FROM BIG b WHERE id % 3 = 0"), &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(info.endpoint_size(), 4);
  EXPECT_TRUE(info.ordered());
  std::vector<int64_t> expected;
  for (int64_t i = 0; i < 100000; i += 3) expected.push_back(i * 2);
  std::vector<Column> parts = FetchAllInParallel(*t, info);
  for (const Column& part : parts) {
    ASSERT_TRUE(part.status.ok()) << part.status.error_message();
    EXPECT_EQ(part.names, (std::vector<std::string>{"twice", "l"}));
  }
  EXPECT_EQ(Concatenated(parts), expected);

  for (const char* sql : {
           "SELECT * FROM big ORDER BY id",
           "SELECT * FROM big LIMIT 10",
           "SELECT count(*) FROM big",
           "SELECT id % 2 AS k, count(*) FROM big GROUP BY 1",
           "SELECT DISTINCT id FROM big",
           "SELECT id, sum(id) OVER () FROM big",
           "SELECT * FROM big WHERE id > (SELECT avg(id) FROM big)",
           "SELECT * FROM big, letters",
           "WITH x AS (SELECT * FROM big) SELECT * FROM x",
           "SELECT * FROM big UNION ALL SELECT * FROM big",
           "SELECT * FROM main.big",
           "SELECT id, first(label) FROM big GROUP BY ALL",
       }) {
    protocol::FlightInfo one;
    grpc::Status st = GetInfo(*t, Sql(sql), &one);
    ASSERT_TRUE(st.ok()) << sql << ": " << st.error_message();
    EXPECT_EQ(one.endpoint_size(), 1) << sql;
    EXPECT_TRUE(one.ordered()) << sql;
  }
  // The split query still counts the same as the unsplit one.
  protocol::FlightInfo count;
  ASSERT_TRUE(GetInfo(*t, Sql("SELECT count(*) AS n FROM big WHERE id % 3 = 0"), &count).ok());
  EXPECT_EQ(IdsOf(*t, testing::TicketOf(count)).ids,
            (std::vector<int64_t>{static_cast<int64_t>(expected.size())}));
}

TEST(PlanTest, SmallTablesStayOneEndpointByDefault) {
  auto t = StartServer();  // endpoints = 0: one per core, at least 100000 rows each
  ASSERT_NE(t, nullptr);
  WriteParquet(*t, "parts/a.parquet", Range(0, 10));
  WriteParquet(*t, "parts/b.parquet", Range(10, 20));
  ASSERT_OK(t->catalog->Refresh().status());
  for (const char* table : {"numbers", "parts", "letters"}) {
    protocol::FlightInfo info;
    ASSERT_TRUE(GetInfo(*t, Path({table}), &info).ok());
    EXPECT_EQ(info.endpoint_size(), 1) << table;
    EXPECT_TRUE(info.ordered());
  }
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info).ok());
  EXPECT_EQ(DecodeTable(RawDoGet(*t, testing::TicketOf(info)).messages).rows, kRows);
}

TEST(PlanTest, ASplitTableThatChangedIsRefusedUntilPlannedAgain) {
  auto t = StartWith([](FlightServerOptions& o) { o.endpoints = 2; });
  ASSERT_NE(t, nullptr);
  WriteParquet(*t, "parts/a.parquet", Range(0, 10));
  WriteParquet(*t, "parts/b.parquet", Range(10, 20));
  ASSERT_OK(t->catalog->Refresh().status());
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"parts"}), &info).ok());
  ASSERT_EQ(info.endpoint_size(), 2);
  WriteParquet(*t, "parts/a.parquet", Range(0, 15));
  ASSERT_OK(t->catalog->Refresh().status());
  Column stale = IdsOf(*t, info.endpoint(1).ticket().ticket());
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(stale.status.error_message(), HasSubstr("changed since the plan"));
  ASSERT_TRUE(GetInfo(*t, Path({"parts"}), &info).ok());
  std::vector<Column> parts = FetchAllInParallel(*t, info);
  std::vector<int64_t> expected = Iota(15);
  for (int64_t i = 10; i < 20; ++i) expected.push_back(i);
  EXPECT_EQ(Concatenated(parts), expected);
}

TEST(PlanTest, AlteredTicketOfASplitPlanIsRefused) {
  auto t = StartWith([](FlightServerOptions& o) { o.endpoints = 2; });
  ASSERT_NE(t, nullptr);
  WriteParquet(*t, "parts/a.parquet", Range(0, 10));
  WriteParquet(*t, "parts/b.parquet", Range(10, 20));
  ASSERT_OK(t->catalog->Refresh().status());
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"parts"}), &info).ok());
  ASSERT_EQ(info.endpoint_size(), 2);
  std::string ticket = info.endpoint(0).ticket().ticket();
  ticket[ticket.size() / 2] ^= 1;
  Column forged = IdsOf(*t, ticket);
  EXPECT_EQ(forged.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(forged.status.error_message(), HasSubstr("invalid ticket"));
}

// ---- DoGet message cap and copy_body ----

// Upper bound of a received FlightData's size (what the server compares with the cap).
int64_t MessageSize(const DecodedFlightData& m) {
  return static_cast<int64_t>(m.data_header.size() + m.app_metadata.size()) +
         static_cast<int64_t>(m.body.size()) + 16;
}

TEST(DoGetCapTest, BatchesAboveTheCapArriveAsSeveralSmallerMessages) {
  constexpr int64_t kCap = 4096;
  auto t = StartWith([](FlightServerOptions& o) { o.max_message_bytes = kCap; });
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t,
                      Sql("SELECT id, label, CASE WHEN id % 7 = 0 THEN NULL ELSE id END AS n "
                          "FROM numbers"),
                      &info)
                  .ok());
  testing::Fetched fetched = RawDoGet(*t, testing::TicketOf(info));
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  int64_t record_batches = 0;
  for (const DecodedFlightData& m : fetched.messages) {
    EXPECT_LE(MessageSize(m), kCap);
    record_batches += m.body.size() > 0;
  }
  testing::Table table = DecodeTable(fetched.messages);
  EXPECT_EQ(table.rows, kRows);
  EXPECT_EQ(table.sum_of_first_column, kRows * (kRows - 1) / 2);
  EXPECT_EQ(table.first_row, "0|'row 0'|null");
  EXPECT_GT(record_batches, 10);  // 5000 rows of ~20 bytes do not fit in 4 KiB messages
  ActionResult stats = DoAction(*t, "stats");
  ASSERT_TRUE(stats.status.ok());
  EXPECT_GT(Json::parse(stats.body)["batches_sliced"].get<int64_t>(), 0);
  EXPECT_EQ(Json::parse(stats.body)["oversize_messages"].get<int64_t>(), 0);

  // Every value survives the slicing: the same rows as without a cap.
  auto plain = StartWith([](FlightServerOptions& o) { o.max_message_bytes = 0; });
  ASSERT_NE(plain, nullptr);
  std::string sql =
      "SELECT id, label, CASE WHEN id % 7 = 0 THEN NULL ELSE id END AS n FROM numbers";
  protocol::FlightInfo plain_info;
  ASSERT_TRUE(GetInfo(*plain, Sql(sql), &plain_info).ok());
  auto render = [](const std::vector<DecodedFlightData>& messages) {
    std::vector<std::string> rows;
    ipc::StreamDecoder decoder;
    for (const DecodedFlightData& m : messages) {
      if (m.data_header.empty()) continue;
      std::span<const uint8_t> header(reinterpret_cast<const uint8_t*>(m.data_header.data()),
                                      m.data_header.size());
      Result<ipc::OwnedArray> batch = decoder.Consume(header, m.body);
      EXPECT_TRUE(batch.ok());
      if (!batch.ok() || !batch->valid()) continue;
      for (int64_t r = 0; r < (*batch)->length; ++r) {
        std::string row;
        for (int64_t c = 0; c < (*batch)->n_children; ++c) {
          row += ta::ValueAt(*decoder.schema().children[c], *(*batch)->children[c], r) + "|";
        }
        rows.push_back(row);
      }
    }
    return rows;
  };
  std::vector<std::string> capped_rows = render(fetched.messages);
  std::vector<std::string> plain_rows =
      render(RawDoGet(*plain, testing::TicketOf(plain_info)).messages);
  EXPECT_EQ(capped_rows.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(capped_rows, plain_rows);
}

TEST(DoGetCapTest, ARowAboveTheCapIsSentWhole) {
  auto t = StartWith([](FlightServerOptions& o) { o.max_message_bytes = 1000; });
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(
      GetInfo(*t, Sql("SELECT range AS id, repeat('x', 5000) AS big FROM range(3)"), &info).ok());
  testing::Fetched fetched = RawDoGet(*t, testing::TicketOf(info));
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  EXPECT_EQ(DecodeTable(fetched.messages).rows, 3);
  ActionResult stats = DoAction(*t, "stats");
  EXPECT_EQ(Json::parse(stats.body)["oversize_messages"].get<int64_t>(), 3);
}

TEST(DoGetCopyBodyTest, ProtobufPathGivesTheSameDataAndCountsItsCopies) {
  auto zero = StartServer();
  auto copying = StartWith([](FlightServerOptions& o) { o.copy_body = true; });
  ASSERT_NE(zero, nullptr);
  ASSERT_NE(copying, nullptr);
  std::vector<std::vector<DecodedFlightData>> results;
  for (TestServer* t : {zero.get(), copying.get()}) {
    protocol::FlightInfo info;
    ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info).ok());
    testing::Fetched fetched = RawDoGet(*t, testing::TicketOf(info));
    ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
    results.push_back(std::move(fetched.messages));
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_EQ(results[0][i].data_header, results[1][i].data_header);
    ASSERT_EQ(results[0][i].body.size(), results[1][i].body.size());
    EXPECT_EQ(0, std::memcmp(results[0][i].body.data(), results[1][i].body.data(),
                             results[0][i].body.size()));
  }
  EXPECT_EQ(DecodeTable(results[1]).sum_of_first_column, kRows * (kRows - 1) / 2);
  FlightStats z = zero->server->stats();
  FlightStats c = copying->server->stats();
  EXPECT_EQ(z.body_bytes_sent, c.body_bytes_sent);
  EXPECT_GT(z.body_bytes_sent, 0);
  EXPECT_EQ(z.body_bytes_copied, 0);
  EXPECT_EQ(c.body_bytes_copied, 2 * c.body_bytes_sent);
}

// ---- PollFlightInfo ----

grpc::Status PollOnce(TestServer& t, const protocol::FlightDescriptor& d, protocol::PollInfo* info,
                      const std::string& token = "") {
  grpc::ClientContext ctx;
  Authorize(ctx, token);
  return t.stub->PollFlightInfo(&ctx, d, info);
}

TEST(PollTest, QuickQueryCompletesInTheFirstPoll) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::PollInfo poll;
  grpc::Status status = PollOnce(*t, Sql("SELECT 42::BIGINT AS answer"), &poll);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(poll.has_flight_descriptor());
  EXPECT_EQ(poll.progress(), 1.0);
  ASSERT_EQ(poll.info().endpoint_size(), 1);
  EXPECT_EQ(poll.info().total_records(), 1);
  EXPECT_EQ(IdsOf(*t, poll.info().endpoint(0).ticket().ticket()).ids, std::vector<int64_t>{42});
  // Errors of the query are the poll's errors.
  EXPECT_EQ(PollOnce(*t, Sql("SELECT nope"), &poll).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(PollOnce(*t, Sql("bridge:poll:0123"), &poll).error_code(), grpc::StatusCode::NOT_FOUND);
}

constexpr const char* kSlowSql = "SELECT max(md5(range::VARCHAR)) AS m FROM range(3000000000)";
// About a second over a Parquet scan (DuckDB reports progress for scans of files, not for
// range()).
constexpr const char* kMediumSql =
    "SELECT count(*) AS n FROM big WHERE md5(md5(md5(md5(md5(md5(label)))))) < '8'";

TEST(PollTest, SlowQueryReportsProgressThenTheFinalInfo) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  WriteParquet(*t, "big.parquet", Range(0, 1000000), 20480);
  ASSERT_OK(t->catalog->Refresh().status());
  protocol::PollInfo poll;
  grpc::Status status = PollOnce(*t, Sql(kMediumSql), &poll);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(poll.has_flight_descriptor()) << "the query finished within the first poll";
  EXPECT_THAT(poll.flight_descriptor().cmd(), ::testing::StartsWith("bridge:poll:"));
  EXPECT_EQ(poll.info().endpoint_size(), 0);
  EXPECT_FALSE(poll.info().schema().empty());
  EXPECT_GT(poll.expiration_time().seconds(), 0);
  protocol::FlightDescriptor next = poll.flight_descriptor();
  std::vector<double> progress;
  if (poll.has_progress()) progress.push_back(poll.progress());
  ASSERT_TRUE(Eventually([&] {
    protocol::PollInfo p;
    grpc::Status s = PollOnce(*t, next, &p);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) return true;
    if (p.has_progress()) progress.push_back(p.progress());
    poll = p;
    return !p.has_flight_descriptor();
  }));
  ASSERT_FALSE(poll.has_flight_descriptor());
  EXPECT_EQ(poll.progress(), 1.0);
  ASSERT_GE(progress.size(), 2u);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_TRUE(std::any_of(progress.begin(), progress.end(), [](double p) {
    return p > 0 && p < 1;
  })) << "no progress between 0 and 1 was reported";
  ASSERT_EQ(poll.info().endpoint_size(), 1);
  EXPECT_EQ(poll.info().total_records(), 1);
  Column n = IdsOf(*t, poll.info().endpoint(0).ticket().ticket());
  ASSERT_TRUE(n.status.ok()) << n.status.error_message();
  ASSERT_EQ(n.ids.size(), 1u);
  EXPECT_GT(n.ids[0], 0);
  // Polling a finished query again gives the same answer; another user cannot poll it.
  protocol::PollInfo again;
  ASSERT_TRUE(PollOnce(*t, next, &again).ok());
  EXPECT_EQ(again.info().total_records(), 1);
}

TEST(PollTest, CancelFlightInfoStopsARunningPoll) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::PollInfo poll;
  ASSERT_TRUE(PollOnce(*t, Sql(kSlowSql), &poll).ok());
  ASSERT_TRUE(poll.has_flight_descriptor());
  protocol::CancelFlightInfoRequest request;
  *request.mutable_info()->mutable_flight_descriptor() = poll.flight_descriptor();
  ActionResult cancelled = DoAction(*t, "CancelFlightInfo", request.SerializeAsString());
  ASSERT_TRUE(cancelled.status.ok()) << cancelled.status.error_message();
  protocol::CancelFlightInfoResult result;
  ASSERT_TRUE(result.ParseFromString(cancelled.body));
  EXPECT_EQ(result.status(), protocol::CANCEL_STATUS_CANCELLED);
  grpc::Status last;
  ASSERT_TRUE(Eventually([&] {
    protocol::PollInfo p;
    last = PollOnce(*t, poll.flight_descriptor(), &p);
    return !last.ok();
  }));
  EXPECT_EQ(last.error_code(), grpc::StatusCode::CANCELLED);
}

TEST(PollTest, PollNeedsAuth) {
  auto t = StartServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  protocol::PollInfo poll;
  EXPECT_EQ(PollOnce(*t, Sql("SELECT 1"), &poll).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(PollOnce(*t, Sql("SELECT 1"), &poll, Login(*t, "bob")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  WriteParquet(*t, "big.parquet", Range(0, 1000000), 20480);
  ASSERT_OK(t->catalog->Refresh().status());
  std::string alice = Login(*t, "alice");
  ASSERT_TRUE(PollOnce(*t, Sql(kMediumSql), &poll, alice).ok());
  if (poll.has_flight_descriptor()) {
    // Another user's poll descriptor is unknown to carol.
    protocol::PollInfo other;
    EXPECT_EQ(PollOnce(*t, poll.flight_descriptor(), &other, Login(*t, "carol")).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

// ---- Actions ----

TEST(ActionsTest, ListActionsDescribesEveryAction) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  grpc::ClientContext ctx;
  auto reader = t->stub->ListActions(&ctx, protocol::Empty());
  std::vector<std::string> types;
  protocol::ActionType type;
  while (reader->Read(&type)) {
    types.push_back(type.type());
    EXPECT_FALSE(type.description().empty()) << type.type();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(types,
            (std::vector<std::string>{"refresh", "cancel", "CancelFlightInfo",
                                      "RenewFlightEndpoint", "health", "stats", "cache-clear"}));
}

TEST(ActionsTest, HealthStatsAndUnknownActions) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  ActionResult health = DoAction(*t, "health");
  ASSERT_TRUE(health.status.ok()) << health.status.error_message();
  Json h = Json::parse(health.body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["tables"], 2);
  EXPECT_EQ(h["broken_tables"], 0);
  EXPECT_THAT(h["duckdb"].get<std::string>(), HasSubstr("v1.4"));

  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info).ok());
  ASSERT_TRUE(RawDoGet(*t, testing::TicketOf(info)).status.ok());
  ActionResult stats = DoAction(*t, "stats");
  ASSERT_TRUE(stats.status.ok());
  Json s = Json::parse(stats.body);
  EXPECT_EQ(s["flight_data_sent"].get<int64_t>(), t->server->stats().flight_data_sent);
  EXPECT_GT(s["body_bytes_sent"].get<int64_t>(), 0);
  EXPECT_EQ(s["running_queries"].size(), 0u);

  ActionResult unknown = DoAction(*t, "frobnicate");
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(unknown.status.error_message(), "flight: unknown action 'frobnicate'; see ListActions");
}

TEST(ActionsTest, RefreshReportsChangesAndNeedsIngestOrAdmin) {
  auto t = StartServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  bridge::testing::WriteFile(t->dir.path() / "data" / "more.csv", "x\n1\n");
  EXPECT_EQ(DoAction(*t, "refresh").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(DoAction(*t, "refresh", "", Login(*t, "alice")).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ActionResult refreshed = DoAction(*t, "refresh", "", Login(*t, "carol"));
  ASSERT_TRUE(refreshed.status.ok()) << refreshed.status.error_message();
  Json r = Json::parse(refreshed.body);
  ASSERT_EQ(r["changes"].size(), 1u);
  EXPECT_EQ(r["changes"][0]["kind"], "added");
  EXPECT_EQ(r["changes"][0]["table"], "more");
  EXPECT_EQ(r["version"].get<uint64_t>(), t->catalog->version());
  // Nothing changed since: no changes.
  EXPECT_EQ(Json::parse(DoAction(*t, "refresh", "", Login(*t, "carol")).body)["changes"].size(),
            0u);
  // Every action needs a token, and ListActions too.
  EXPECT_EQ(DoAction(*t, "health").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(DoAction(*t, "health", "", Login(*t, "bob")).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(DoAction(*t, "health", "", Login(*t, "alice")).status.ok());
  grpc::ClientContext ctx;
  auto reader = t->stub->ListActions(&ctx, protocol::Empty());
  protocol::ActionType type;
  while (reader->Read(&type)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(ActionsTest, CacheClearDeletesEveryCachedResultAndNeedsAdmin) {
  auto t = StartServer(false, std::chrono::seconds(5), {}, {}, /*with_cache=*/true);
  ASSERT_NE(t, nullptr);
  auto get = [&] {
    protocol::FlightInfo info;
    EXPECT_TRUE(GetInfo(*t, Sql("SELECT id FROM numbers WHERE id < 10"), &info).ok());
    EXPECT_TRUE(RawDoGet(*t, testing::TicketOf(info)).status.ok());
  };
  auto wait_for_entries = [&](int64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (t->cache->stats().entries != n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  };
  get();
  ASSERT_TRUE(wait_for_entries(1));
  get();
  EXPECT_EQ(t->server->stats().results_from_cache, 1);

  ActionResult cleared = DoAction(*t, "cache-clear");
  ASSERT_TRUE(cleared.status.ok()) << cleared.status.error_message();
  EXPECT_EQ(Json::parse(cleared.body)["removed"], 1);
  EXPECT_EQ(t->cache->stats().entries, 0);
  get();  // runs the query again, and caches it again
  EXPECT_EQ(t->server->stats().results_from_cache, 1);
  ASSERT_TRUE(wait_for_entries(1));
  EXPECT_EQ(Json::parse(DoAction(*t, "cache-clear").body)["removed"], 1);
  EXPECT_EQ(Json::parse(DoAction(*t, "cache-clear").body)["removed"], 0);

  auto no_cache = StartServer();
  ASSERT_NE(no_cache, nullptr);
  EXPECT_EQ(DoAction(*no_cache, "cache-clear").status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  auto secured = StartServer(/*with_users=*/true, std::chrono::seconds(5), {}, {}, true);
  ASSERT_NE(secured, nullptr);
  EXPECT_EQ(DoAction(*secured, "cache-clear").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(DoAction(*secured, "cache-clear", "", Login(*secured, "carol")).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ActionResult by_admin = DoAction(*secured, "cache-clear", "", Login(*secured, "dave"));
  ASSERT_TRUE(by_admin.status.ok()) << by_admin.status.error_message();
  EXPECT_EQ(Json::parse(by_admin.body)["removed"], 0);
}

// Starts a DoGet of a slow query in a thread; Wait() returns its status.
// If the test fails before Wait, the destructor shuts the server down to end the call.
struct SlowDoGet {
  TestServer* server = nullptr;
  std::thread thread;
  grpc::Status status;
  void Start(TestServer& t, const std::string& ticket) {
    server = &t;
    thread = std::thread([this, &t, ticket] { status = RawDoGet(t, ticket).status; });
  }
  grpc::Status Wait() {
    thread.join();
    return status;
  }
  ~SlowDoGet() {
    if (thread.joinable()) {
      server->server->Shutdown(std::chrono::milliseconds(0));
      thread.join();
    }
  }
};

TEST(ActionsTest, CancelInterruptsTheRunningDoGetsOfATicket) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Sql(kSlowSql), &info).ok());
  std::string ticket = testing::TicketOf(info);
  SlowDoGet get;
  get.Start(*t, ticket);
  ASSERT_TRUE(Eventually([&] { return RunningDoGets(*t) == 1; }));
  ActionResult cancelled = DoAction(*t, "cancel", ticket);
  ASSERT_TRUE(cancelled.status.ok()) << cancelled.status.error_message();
  EXPECT_EQ(Json::parse(cancelled.body)["cancelled"], 1);
  grpc::Status status = get.Wait();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << status.error_message();
  EXPECT_EQ(RunningDoGets(*t), 0);
  // A ticket of nothing running cancels nothing; a forged one is refused.
  EXPECT_EQ(Json::parse(DoAction(*t, "cancel", ticket).body)["cancelled"], 0);
  EXPECT_EQ(DoAction(*t, "cancel", "garbage").status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ActionsTest, CancelFlightInfoInterruptsAndRefusesLaterDoGets) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Sql(kSlowSql), &info).ok());
  SlowDoGet get;
  get.Start(*t, testing::TicketOf(info));
  ASSERT_TRUE(Eventually([&] { return RunningDoGets(*t) == 1; }));
  protocol::CancelFlightInfoRequest request;
  *request.mutable_info() = info;
  ActionResult cancelled = DoAction(*t, "CancelFlightInfo", request.SerializeAsString());
  ASSERT_TRUE(cancelled.status.ok()) << cancelled.status.error_message();
  protocol::CancelFlightInfoResult result;
  ASSERT_TRUE(result.ParseFromString(cancelled.body));
  EXPECT_EQ(result.status(), protocol::CANCEL_STATUS_CANCELLED);
  EXPECT_EQ(get.Wait().error_code(), grpc::StatusCode::CANCELLED);
  Column later = IdsOf(*t, testing::TicketOf(info));
  EXPECT_EQ(later.status.error_code(), grpc::StatusCode::CANCELLED);
  protocol::RenewFlightEndpointRequest renew;
  *renew.mutable_endpoint() = info.endpoint(0);
  EXPECT_EQ(DoAction(*t, "RenewFlightEndpoint", renew.SerializeAsString()).status.error_code(),
            grpc::StatusCode::CANCELLED);
  EXPECT_EQ(DoAction(*t, "CancelFlightInfo", "\xff\xff").status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ActionsTest, RenewFlightEndpointResignsWithANewExpiration) {
  auto t = StartWith([](FlightServerOptions& o) { o.ticket_ttl = std::chrono::seconds(600); });
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info).ok());
  protocol::RenewFlightEndpointRequest request;
  *request.mutable_endpoint() = info.endpoint(0);
  ActionResult renewed = DoAction(*t, "RenewFlightEndpoint", request.SerializeAsString());
  ASSERT_TRUE(renewed.status.ok()) << renewed.status.error_message();
  protocol::FlightEndpoint endpoint;
  ASSERT_TRUE(endpoint.ParseFromString(renewed.body));
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  EXPECT_GE(endpoint.expiration_time().seconds(), info.endpoint(0).expiration_time().seconds());
  EXPECT_NEAR(endpoint.expiration_time().seconds(), now + 600, 5);
  EXPECT_EQ(DecodeTable(RawDoGet(*t, endpoint.ticket().ticket()).messages).rows, kRows);
  // A forged endpoint is not renewed.
  request.mutable_endpoint()->mutable_ticket()->mutable_ticket()->back() ^= 1;
  EXPECT_EQ(DoAction(*t, "RenewFlightEndpoint", request.SerializeAsString()).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace bridge::flight
