#include "bridge/engine/engine.h"

#include <sys/resource.h>

#include <functional>
#include <thread>

#include "bridge/arrow/data_type.h"
#include "bridge/common/testing.h"

namespace bridge::engine {
namespace {

using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;

struct Fixture {
  TempDir data;
  TempDir cache;
  std::unique_ptr<Database> db;
  std::unique_ptr<Session> session;
};

std::unique_ptr<Fixture> Open(int threads = 2, bool progress = true) {
  auto f = std::make_unique<Fixture>();
  WriteFile(f->data.path() / "small.csv", "a,b\n1,x\n2,y\n3,z\n");
  EngineOptions options;
  options.data_dir = f->data.path();
  options.cache_dir = f->cache.path();
  options.threads = threads;
  options.progress = progress;
  auto db = Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  f->db = std::move(db).value();
  EXPECT_OK(f->db->ExecuteTrusted("CREATE VIEW small AS SELECT * FROM read_csv(" +
                                  QuoteString((f->data.path() / "small.csv").string()) + ")"));
  auto session = f->db->Connect();
  EXPECT_TRUE(session.ok()) << session.status();
  f->session = std::move(session).value();
  return f;
}

// Drains `stream`, returning the number of batches and rows.
std::pair<int64_t, int64_t> Drain(BatchStream& stream) {
  int64_t batches = 0;
  int64_t rows = 0;
  for (;;) {
    auto batch = stream.Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) break;
    ++batches;
    rows += (*batch)->length;
  }
  return {batches, rows};
}

// Reads int64 column `col` of a batch.
int64_t Int64At(const ipc::OwnedArray& batch, int col, int64_t row) {
  const ArrowArray* child = batch->children[col];
  return static_cast<const int64_t*>(child->buffers[1])[child->offset + row];
}

TEST(EngineTest, StreamsManyChunksAsArrowBatches) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(auto stream,
                       f->session->Query("SELECT range AS i, range * 2 AS j FROM range(10000)"));
  const ArrowSchema& schema = stream->schema();
  EXPECT_STREQ(schema.format, "+s");
  ASSERT_EQ(schema.n_children, 2);
  EXPECT_STREQ(schema.children[0]->name, "i");
  EXPECT_STREQ(schema.children[0]->format, "l");
  int64_t batches = 0;
  int64_t rows = 0;
  int64_t sum = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    ASSERT_EQ(batch->n_children, 2);
    EXPECT_LE(batch->length, 2048);
    for (int64_t r = 0; r < batch->length; ++r) {
      EXPECT_EQ(Int64At(batch, 1, r), 2 * Int64At(batch, 0, r));
      sum += Int64At(batch, 0, r);
    }
    ++batches;
    rows += batch->length;
  }
  EXPECT_EQ(rows, 10000);
  EXPECT_EQ(sum, 10000LL * 9999 / 2);
  EXPECT_EQ(batches, 5);  // 2048-row chunks
  // Reading past the end keeps saying "end".
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray after, stream->Next());
  EXPECT_FALSE(after.valid());
}

TEST(EngineTest, CoalescesChunksWhenAskedTo) {
  auto f = Open();
  QueryOptions options;
  options.batch_rows = 5000;
  ASSERT_OK_AND_ASSIGN(
      auto stream,
      f->session->Query("SELECT range AS i, 'v' || range AS s FROM range(12000)", {}, options));
  std::vector<int64_t> lengths;
  int64_t expected = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    lengths.push_back(batch->length);
    for (int64_t r = 0; r < batch->length; ++r) {
      ASSERT_EQ(Int64At(batch, 0, r), expected++);
    }
  }
  // 2048-row chunks gathered until >= 5000 rows: 3 chunks (6144), 3 (6144 -> end at 12000).
  EXPECT_EQ(lengths, (std::vector<int64_t>{6144, 5856}));

  options = QueryOptions();
  options.batch_bytes = 1;  // any chunk reaches it: one batch per chunk
  ASSERT_OK_AND_ASSIGN(stream, f->session->Query("SELECT * FROM range(5000)", {}, options));
  EXPECT_EQ(Drain(*stream), (std::pair<int64_t, int64_t>{3, 5000}));
}

TEST(EngineTest, EarlyStopLetsTheSessionRunTheNextQuery) {
  auto f = Open();
  {
    ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT * FROM range(100000000)"));
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray first, stream->Next());
    ASSERT_TRUE(first.valid());
    EXPECT_EQ(Int64At(first, 0, 0), 0);
  }  // dropped after one batch of 100M rows
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT count(*) AS n FROM small"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
  ASSERT_TRUE(batch.valid());
  EXPECT_EQ(Int64At(batch, 0, 0), 3);
}

TEST(EngineTest, PreparedStatementBindsParameters) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(
      auto stmt,
      f->session->Prepare("SELECT a, b FROM small WHERE a >= $1 AND b <> $2 ORDER BY a"));
  EXPECT_EQ(stmt->parameter_count(), 2u);
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema schema, stmt->ResultSchema());
  ASSERT_EQ(schema->n_children, 2);
  EXPECT_STREQ(schema->children[1]->format, "u");

  std::vector<Value> params = {int64_t{2}, std::string("z")};
  ASSERT_OK_AND_ASSIGN(auto stream, stmt->Execute(params));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
  ASSERT_TRUE(batch.valid());
  ASSERT_EQ(batch->length, 1);
  EXPECT_EQ(Int64At(batch, 0, 0), 2);
  stream.reset();

  // The same statement runs again with other values.
  params = {int64_t{1}, std::string("nothing")};
  ASSERT_OK_AND_ASSIGN(stream, stmt->Execute(params));
  EXPECT_EQ(Drain(*stream).second, 3);

  std::vector<Value> too_few = {int64_t{1}};
  EXPECT_STATUS(stmt->Execute(too_few), StatusCode::kInvalidArgument,
                "takes 2 parameter(s), got 1");
}

TEST(EngineTest, ErrorsCarryAKindAndDuckDBsMessage) {
  auto f = Open();
  EXPECT_STATUS(f->session->Query("SELEC 1"), StatusCode::kInvalidArgument, "Parser Error");
  EXPECT_STATUS(f->session->Query("SELECT nope FROM small"), StatusCode::kInvalidArgument,
                "Binder Error");
  EXPECT_STATUS(f->session->Query("SELECT * FROM missing_table"), StatusCode::kNotFound,
                "missing_table");
  EXPECT_STATUS(f->session->Query("SELECT 1; SELECT 2"), StatusCode::kInvalidArgument,
                "expected one SQL statement, got 2");
  EXPECT_STATUS(f->session->Query("  "), StatusCode::kInvalidArgument, "no statement");
  // A runtime error surfaces from the stream, not from Query.
  auto stream = f->session->Query("SELECT CAST('abc' || range AS INTEGER) FROM range(10)");
  if (stream.ok()) {
    EXPECT_STATUS((*stream)->Next(), StatusCode::kInvalidArgument, "Conversion Error");
  } else {
    EXPECT_STATUS(stream, StatusCode::kInvalidArgument, "Conversion Error");
  }
}

TEST(EngineTest, LockdownRefusesEverythingButReadingTheAllowedFolders) {
  auto f = Open();
  struct Case {
    std::string sql;
    std::string message;
  };
  std::string outside = "/etc/passwd";
  std::vector<Case> cases = {
      {"SELECT * FROM read_csv('/etc/passwd')", "Permission Error"},
      {"SELECT * FROM read_text('/etc/hostname')", "Permission Error"},
      {"SELECT * FROM glob('/etc/*')", "Permission Error"},
      {"SELECT * FROM read_csv('" + f->data.path().string() + "/../../etc/passwd')",
       "Permission Error"},
      {"COPY (SELECT 1) TO '" + f->data.path().string() + "/out.csv'", "COPY statements"},
      {"ATTACH '" + f->data.path().string() + "/x.db' AS x", "ATTACH"},
      {"INSTALL httpfs", "not allowed"},
      {"LOAD httpfs", "not allowed"},
      {"SET threads = 1", "SET statements"},
      {"SET enable_external_access = true", "SET statements"},
      {"PRAGMA threads = 1", "not allowed"},
      {"EXPORT DATABASE '" + f->data.path().string() + "/export'", "EXPORT statements"},
      {"CREATE TABLE t AS SELECT 1", "CREATE statements"},
      {"CREATE VIEW v AS SELECT 1", "CREATE statements"},
      {"DROP VIEW IF EXISTS small", "DROP statements"},
      {"CALL pragma_version()", "CALL statements"},
      {"BEGIN TRANSACTION", "not allowed"},
      {"EXPLAIN ANALYZE COPY (SELECT 1) TO '" + f->data.path().string() + "/x.csv'",
       "EXPLAIN ANALYZE"},
      {"/* hidden */ (COPY (SELECT 1) TO '" + f->data.path().string() + "/y.csv')", "COPY"},
      {"EXPLAIN EXPORT DATABASE '" + f->data.path().string() + "/export'", "EXPORT"},
  };
  for (const auto& c : cases) {
    auto stream = f->session->Query(c.sql);
    Status st = stream.ok() ? (*stream)->Next().status() : stream.status();
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << c.sql << " -> " << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message)) << c.sql;
  }
  EXPECT_FALSE(std::filesystem::exists(f->data.path() / "out.csv"));
  EXPECT_FALSE(std::filesystem::exists(f->data.path() / "export"));
  EXPECT_FALSE(std::filesystem::exists(f->data.path() / "x.csv"));
  // Queries written in other shapes than a plain SELECT are still queries.
  for (const char* sql :
       {"WITH t AS (SELECT 1 AS a) SELECT * FROM t", "FROM small", "-- comment\n(SELECT 1)",
        "DESCRIBE small", "EXPLAIN SELECT 1", "VALUES (1), (2)"}) {
    auto stream = f->session->Query(sql);
    EXPECT_TRUE(stream.ok()) << sql << ": " << stream.status();
  }
  // Settings stay locked even for Bridge's own connection.
  EXPECT_STATUS(f->db->ExecuteTrusted("SET enable_external_access = true"),
                StatusCode::kInvalidArgument, "locked");
  // Reading inside the data folder works.
  ASSERT_OK_AND_ASSIGN(
      auto stream, f->session->Query("SELECT sum(a) AS s FROM read_csv(" +
                                     QuoteString((f->data.path() / "small.csv").string()) + ")"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
  EXPECT_EQ(Int64At(batch, 0, 0), 6);
}

constexpr char kSlowQuery[] =
    "SELECT count(*) FROM range(2000000000) a, range(1000) b WHERE a.range + b.range = -1";

// Calls `action` every few milliseconds on another thread until destroyed.
class Repeater {
 public:
  explicit Repeater(std::function<void()> action)
      : thread_([this, action = std::move(action)] {
          while (!stop_.load()) {
            action();
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
        }) {}
  ~Repeater() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs `sql` to its first batch (or error): aggregates do their work here.
Status RunToFirstBatch(Session& session, const std::string& sql, const QueryOptions& options = {}) {
  auto stream = session.Query(sql, {}, options);
  if (!stream.ok()) return stream.status();
  return (*stream)->Next().status();
}

TEST(EngineTest, CancelFromAnotherThreadStopsTheQuery) {
  auto f = Open();
  auto start = std::chrono::steady_clock::now();
  {
    // One Cancel() from another thread, whenever it lands: before the query starts (then it
    // waits for it), while it is prepared, or while it runs.
    std::thread canceller([&] { f->session->Cancel(); });
    EXPECT_STATUS(RunToFirstBatch(*f->session, kSlowQuery), StatusCode::kCancelled, "cancelled");
    canceller.join();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));
  // A cancelled session runs the next query normally.
  ASSERT_OK_AND_ASSIGN(auto ok_stream, f->session->Query("SELECT 42::BIGINT AS x"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, ok_stream->Next());
  EXPECT_EQ(Int64At(batch, 0, 0), 42);
}

TEST(EngineTest, CancelLandingWhileTheQueryStartsIsNotLost) {
  // DuckDB clears its interrupt flag as a query starts; a cancel in that instant must still
  // stop the query. Sweep the cancel over the start of the query.
  auto f = Open();
  for (int delay_us = 0; delay_us < 600; delay_us += 2) {
    auto start = std::chrono::steady_clock::now();
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      f->session->Cancel();
    });
    EXPECT_STATUS(RunToFirstBatch(*f->session, kSlowQuery), StatusCode::kCancelled, "cancelled");
    canceller.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10))
        << "delay " << delay_us << " us";
  }
}

TEST(EngineTest, CancelWithNoQueryRunningCancelsExactlyTheNextQuery) {
  auto f = Open();
  f->session->Cancel();
  f->session->Cancel();  // still one pending cancel, not two
  EXPECT_STATUS(RunToFirstBatch(*f->session, "SELECT 1::BIGINT AS x"), StatusCode::kCancelled,
                "cancelled");
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT 5::BIGINT AS x"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
  EXPECT_EQ(Int64At(batch, 0, 0), 5);
}

TEST(EngineTest, TimeoutInterruptsALongQuery) {
  auto f = Open();
  QueryOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  EXPECT_STATUS(RunToFirstBatch(*f->session, kSlowQuery, options), StatusCode::kDeadlineExceeded,
                "timed out");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  // The session is usable afterwards and a fast query with a timeout is not interrupted.
  ASSERT_OK_AND_ASSIGN(auto next, f->session->Query("SELECT 7::BIGINT AS x", {}, options));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, next->Next());
  EXPECT_EQ(Int64At(batch, 0, 0), 7);
}

// Runs a slow scan (md5 of every row of a Parquet file) while another thread watches
// Progress; cancels it once progress shows, else the query times out after `timeout`.
// Returns the best percentage seen and how the query ended.
std::pair<double, Status> WatchProgress(Fixture& f, std::chrono::milliseconds timeout) {
  std::string file = (f.data.path() / "big.parquet").string();
  Status copied =
      f.db->ExecuteTrusted("COPY (SELECT range AS i FROM range(20000000)) TO " + QuoteString(file));
  if (!copied.ok()) return {-1, copied};
  std::atomic<double> best{-1};
  Status st;
  {
    Repeater watcher([&] {
      double p = f.session->Progress().percentage;
      if (p > best.load()) best.store(p);
      if (p > 0) f.session->Cancel();  // progress seen: no need to finish
    });
    QueryOptions options;
    options.timeout = timeout;
    st = RunToFirstBatch(*f.session,
                         "SELECT max(md5(i::VARCHAR)) FROM read_parquet(" + QuoteString(file) + ")",
                         options);
  }
  return {best.load(), st};
}

TEST(EngineTest, ProgressIsReportedWhileAQueryRuns) {
  auto f = Open();
  EXPECT_EQ(f->session->Progress().percentage, -1);  // nothing runs
  auto [best, st] = WatchProgress(*f, std::chrono::seconds(60));
  EXPECT_EQ(st.code(), StatusCode::kCancelled) << st;
  EXPECT_GT(best, 0.0);
  EXPECT_LE(best, 100.0);
}

TEST(EngineTest, WithoutProgressTrackingNoProgressIsReported) {
  auto f = Open(2, /*progress=*/false);
  auto [best, st] = WatchProgress(*f, std::chrono::milliseconds(1500));
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st;  // ran on, never cancelled
  EXPECT_LE(best, 0.0);
}

TEST(EngineTest, EnumComesOutAsDictionaryWithUnsignedIndices) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(
      auto stream,
      f->session->Query("SELECT 'b'::ENUM('a', 'b', 'c') AS e, DATE '2024-01-02' AS d, "
                        "TIME '01:02:03' AS t, TIMESTAMP '2024-01-02 03:04:05' AS ts, "
                        "INTERVAL 1 DAY AS iv, 12345678901234567890::HUGEINT AS h"));
  const ArrowSchema& schema = stream->schema();
  ASSERT_EQ(schema.n_children, 6);
  const ArrowSchema* e = schema.children[0];
  ASSERT_NE(e->dictionary, nullptr);
  EXPECT_STREQ(e->dictionary->format, "u");
  ASSERT_OK_AND_ASSIGN(ipc::DataType index_type, ipc::ParseFormat(e->format));
  EXPECT_TRUE(index_type.id == ipc::TypeId::kUInt8 || index_type.id == ipc::TypeId::kUInt16 ||
              index_type.id == ipc::TypeId::kUInt32)
      << e->format;
  EXPECT_STREQ(schema.children[1]->format, "tdD");
  EXPECT_STREQ(schema.children[2]->format, "ttu");
  EXPECT_STREQ(schema.children[3]->format, "tsu:");
  EXPECT_STREQ(schema.children[4]->format, "tin");
  EXPECT_STREQ(schema.children[5]->format, "d:38,0");
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
  ASSERT_TRUE(batch.valid());
  const ArrowArray* dict_indices = batch->children[0];
  EXPECT_EQ(static_cast<const uint8_t*>(dict_indices->buffers[1])[0], 1);  // 'b'
}

int64_t PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(EngineTest, HundredMillionRowScanStreamsInBoundedMemory) {
  auto f = Open();
  int64_t before = PeakRssKb();
  ASSERT_OK_AND_ASSIGN(
      auto stream,
      f->session->Query("SELECT range AS id, range * 0.5 AS half FROM range(100000000)"));
  auto [batches, rows] = Drain(*stream);
  EXPECT_EQ(rows, 100000000);
  EXPECT_GE(batches, 100000000 / 2048);
  // 100M rows of two 8-byte columns are 1.6 GB; streaming keeps the peak far below that.
  int64_t grown_mb = (PeakRssKb() - before) / 1024;
  EXPECT_LT(grown_mb, 200) << "peak RSS grew by " << grown_mb << " MB";
}

}  // namespace
}  // namespace bridge::engine
