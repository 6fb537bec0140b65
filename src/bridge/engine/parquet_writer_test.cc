#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"

namespace bridge::engine {
namespace {

namespace fs = std::filesystem;
using ::bridge::testing::TempDir;
using ::testing::HasSubstr;

struct Fixture {
  TempDir data;
  TempDir cache;
  std::unique_ptr<Database> db;
  std::unique_ptr<Session> session;
};

std::unique_ptr<Fixture> Open(int threads = 2) {
  auto f = std::make_unique<Fixture>();
  EngineOptions options;
  options.data_dir = f->data.path();
  options.cache_dir = f->cache.path();
  options.threads = threads;
  auto db = Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  f->db = std::move(db).value();
  auto session = f->db->Connect();
  EXPECT_TRUE(session.ok()) << session.status();
  f->session = std::move(session).value();
  return f;
}

// Every value of `sql` (run on the internal connection) as text, rows in order. (Casts to
// VARCHAR in SQL: QueryTrusted's text rendering crashes on nested values.)
std::vector<std::vector<std::optional<std::string>>> Rows(Database& db, const std::string& sql) {
  auto table = db.QueryTrusted(StrCat("SELECT COLUMNS(*)::VARCHAR FROM (", sql, ")"));
  EXPECT_TRUE(table.ok()) << table.status() << " for " << sql;
  return table.ok() ? table->rows : std::vector<std::vector<std::optional<std::string>>>{};
}

std::string ReadBack(const fs::path& path, std::string_view order_by = "id") {
  return StrCat("SELECT * FROM read_parquet(", QuoteString(path.string()), ") ORDER BY ",
                std::string(order_by));
}

// Names of the entries of `dir`.
std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A stream that fails with `error` after `good` batches of `inner`.
class FailingStream final : public BatchStream {
 public:
  FailingStream(std::unique_ptr<BatchStream> inner, int good, Status error)
      : inner_(std::move(inner)), good_(good), error_(std::move(error)) {}
  const ArrowSchema& schema() const override { return inner_->schema(); }
  Result<ipc::OwnedArray> Next() override {
    if (good_-- <= 0) return error_;
    return inner_->Next();
  }

 private:
  std::unique_ptr<BatchStream> inner_;
  int good_;
  Status error_;
};

// Covers the types DuckDB exports to Arrow, with NULLs in every column.
constexpr const char* kManyTypes = R"sql(
SELECT i AS id,
  (i % 100 - 50)::TINYINT AS i8, (i * 7 - 17000)::SMALLINT AS i16, (i * 1000)::INTEGER AS i32,
  (i * 1000000007)::BIGINT AS i64, (i % 200)::UTINYINT AS u8, (i * 13)::USMALLINT AS u16,
  i::UINTEGER AS u32, (i * 99991)::UBIGINT AS u64, (i::HUGEINT * 1000000000000) AS huge,
  (i / 3.0)::FLOAT AS f32, i / 7.0 AS f64,
  ((i % 70) * 1.25 - 40)::DECIMAL(4,2) AS dec4, (i * 12.345)::DECIMAL(9,3) AS dec9,
  (i * 123456.789)::DECIMAL(18,3) AS dec18, (i * 1234567890.123456789)::DECIMAL(38,9) AS dec38,
  'row ' || i || ' ünï "q"' AS text, ('\x00\x01' || i::VARCHAR)::BLOB AS bin,
  i % 2 = 0 AS flag, DATE '2024-01-01' + i::INTEGER AS d, TIME '12:00:00' + INTERVAL (i) SECOND AS t,
  TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) MINUTE AS ts,
  (TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) SECOND)::TIMESTAMP_S AS ts_s,
  (TIMESTAMP '2024-01-01 00:00:00.123' + INTERVAL (i) SECOND)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP '2024-01-01 00:00:00.123456' + INTERVAL (i) SECOND)::TIMESTAMP_NS AS ts_ns,
  (TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) HOUR) AS tstz,
  INTERVAL (i) DAY + INTERVAL (i % 5) MONTH AS iv,
  ('00000000-0000-0000-0000-' || lpad(i::VARCHAR, 12, '0'))::UUID AS uid,
  (['a', 'b', 'c'])[i % 3 + 1]::ENUM('a', 'b', 'c') AS mood,
  [i, i + 1, NULL] AS list, {'x': i, 'y': 'v' || i, 'z': [i]} AS rec,
  MAP {'k' || i: i} AS m, [{'a': i}, NULL] AS nested
FROM range(5000) r(i)
)sql";

TEST(ParquetWriterTest, RoundTripsManyTypesWithNulls) {
  auto f = Open();
  std::string sql =
      StrCat("SELECT id, CASE WHEN id % 5 = 0 THEN NULL ELSE COLUMNS(* EXCLUDE (id)) END FROM (",
             kManyTypes, ")");
  // Compares through the internal connection's text rendering of the original query.
  auto expected = Rows(*f->db, sql + " ORDER BY id");
  ASSERT_EQ(expected.size(), 5000u);
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query(sql));
  fs::path out = f->cache.path() / "many.parquet";
  ASSERT_OK(f->db->WriteParquet(*stream, out));
  auto actual = Rows(*f->db, ReadBack(out));
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t r = 0; r < expected.size(); ++r) {
    ASSERT_EQ(actual[r], expected[r]) << "row " << r;
  }
  EXPECT_EQ(actual[5][1], std::nullopt);                       // row 5 is all NULLs but id
  EXPECT_EQ(actual[6][1], std::optional<std::string>("-44"));  // i8 = 6 % 100 - 50
  // The file is zstd-compressed Parquet.
  auto codecs = Rows(*f->db, StrCat("SELECT DISTINCT compression FROM parquet_metadata(",
                                    QuoteString(out.string()), ")"));
  ASSERT_EQ(codecs.size(), 1u);
  EXPECT_EQ(codecs[0][0], std::optional<std::string>("ZSTD"));
  EXPECT_EQ(Listing(f->cache.path()), (std::vector<std::string>{"many.parquet"}));
}

TEST(ParquetWriterTest, WritesCoalescedBatchesLongerThanOneVector) {
  auto f = Open();
  QueryOptions options;
  options.batch_rows = 10000;
  ASSERT_OK_AND_ASSIGN(auto stream,
                       f->session->Query("SELECT range AS id, 'v' || range AS s, [range] AS l "
                                         "FROM range(25000)",
                                         {}, options));
  fs::path out = f->data.path() / "big.parquet";
  ParquetOptions parquet;
  parquet.compression = "snappy";
  ASSERT_OK(f->db->WriteParquet(*stream, out, parquet));
  auto rows = Rows(*f->db, StrCat("SELECT count(*), sum(id), count(DISTINCT s), sum(l[1]) FROM ",
                                  "read_parquet(", QuoteString(out.string()), ")"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], std::optional<std::string>("25000"));
  EXPECT_EQ(rows[0][1], std::optional<std::string>("312487500"));
  EXPECT_EQ(rows[0][2], std::optional<std::string>("25000"));
  EXPECT_EQ(rows[0][3], std::optional<std::string>("312487500"));
}

TEST(ParquetWriterTest, WritesAnEmptyResult) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(auto stream,
                       f->session->Query("SELECT 1::INTEGER AS id, 'x' AS s WHERE false"));
  fs::path out = f->cache.path() / "empty.parquet";
  ASSERT_OK(f->db->WriteParquet(*stream, out));
  auto schema =
      Rows(*f->db, StrCat("DESCRIBE SELECT * FROM read_parquet(", QuoteString(out.string()), ")"));
  ASSERT_EQ(schema.size(), 2u);
  EXPECT_EQ(schema[0][0], std::optional<std::string>("id"));
  EXPECT_EQ(schema[0][1], std::optional<std::string>("INTEGER"));
  EXPECT_EQ(schema[1][1], std::optional<std::string>("VARCHAR"));
  EXPECT_EQ(Rows(*f->db, ReadBack(out)).size(), 0u);
}

TEST(ParquetWriterTest, StreamFailingMidwayLeavesNothingBehind) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(auto inner, f->session->Query("SELECT range AS id FROM range(100000)"));
  FailingStream stream(std::move(inner), 10, Cancelled("test: client went away"));
  fs::path out = f->cache.path() / "broken.parquet";
  Status st = f->db->WriteParquet(stream, out);
  EXPECT_STATUS(st, StatusCode::kCancelled, "client went away");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(Listing(f->cache.path()), std::vector<std::string>{});
  // The database still works, and so does the next write.
  ASSERT_OK_AND_ASSIGN(auto again, f->session->Query("SELECT 42 AS id"));
  ASSERT_OK(f->db->WriteParquet(*again, out));
  EXPECT_EQ(Rows(*f->db, ReadBack(out))[0][0], std::optional<std::string>("42"));
}

TEST(ParquetWriterTest, ReplacesAnExistingFileAtomically) {
  auto f = Open();
  fs::path out = f->data.path() / "t.parquet";
  ASSERT_OK_AND_ASSIGN(auto first, f->session->Query("SELECT 1 AS id, 'old' AS v"));
  ASSERT_OK(f->db->WriteParquet(*first, out));
  // A failed write keeps the old file whole.
  ASSERT_OK_AND_ASSIGN(auto inner, f->session->Query("SELECT range AS id, 'new' AS v "
                                                     "FROM range(10000)"));
  FailingStream failing(std::move(inner), 2, Internal("test: boom"));
  EXPECT_STATUS(f->db->WriteParquet(failing, out), StatusCode::kInternal, "boom");
  auto rows = Rows(*f->db, ReadBack(out));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][1], std::optional<std::string>("old"));
  // A good write replaces it.
  ASSERT_OK_AND_ASSIGN(auto second, f->session->Query("SELECT 2 AS id, 'new' AS v"));
  ASSERT_OK(f->db->WriteParquet(*second, out));
  rows = Rows(*f->db, ReadBack(out));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], std::optional<std::string>("2"));
  EXPECT_EQ(rows[0][1], std::optional<std::string>("new"));
  EXPECT_EQ(Listing(f->data.path()), (std::vector<std::string>{"t.parquet"}));
}

TEST(ParquetWriterTest, RefusesPathsOutsideTheAllowedFolders) {
  auto f = Open();
  TempDir elsewhere;
  for (const fs::path& bad :
       {elsewhere.path() / "x.parquet", f->data.path() / ".." / "escape.parquet",
        fs::path("/etc/x.parquet")}) {
    ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT 1 AS id"));
    EXPECT_STATUS(f->db->WriteParquet(*stream, bad), StatusCode::kPermissionDenied,
                  "outside the data and cache folders")
        << bad;
    EXPECT_FALSE(fs::exists(bad));
  }
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT 1 AS id"));
  EXPECT_STATUS(f->db->WriteParquet(*stream, f->data.path() / "no-such-dir" / "x.parquet"),
                StatusCode::kNotFound, "does not exist");
  fs::create_directory(f->data.path() / "sub");
  EXPECT_STATUS(f->db->WriteParquet(*stream, f->data.path() / "sub"), StatusCode::kInvalidArgument,
                "is a folder");
  ParquetOptions parquet;
  parquet.compression = "zstd) TO '/tmp/x' (FORMAT csv";
  EXPECT_STATUS(f->db->WriteParquet(*stream, f->data.path() / "x.parquet", parquet),
                StatusCode::kInvalidArgument, "unknown compression");
}

TEST(ParquetWriterTest, WritesWithOneDuckDBThreadAndFromConcurrentCallers) {
  // The source is another connection's streaming result, pulled inside the COPY.
  auto f = Open(/*threads=*/1);
  std::vector<std::thread> writers;
  std::vector<Status> results(4);
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&f, &results, w] {
      auto session = f->db->Connect();
      if (!session.ok()) {
        results[w] = session.status();
        return;
      }
      auto stream = (*session)->Query(StrCat("SELECT range AS id, ", w, " AS w FROM range(20000)"));
      if (!stream.ok()) {
        results[w] = stream.status();
        return;
      }
      results[w] = f->db->WriteParquet(**stream, f->cache.path() / StrCat("w", w, ".parquet"));
    });
  }
  for (auto& t : writers) t.join();
  for (int w = 0; w < 4; ++w) {
    ASSERT_OK(results[w]);
    auto rows = Rows(
        *f->db, StrCat("SELECT count(*), sum(id), min(w), max(w) FROM read_parquet(",
                       QuoteString((f->cache.path() / StrCat("w", w, ".parquet")).string()), ")"));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0], std::optional<std::string>("20000"));
    EXPECT_EQ(rows[0][1], std::optional<std::string>("199990000"));
    EXPECT_EQ(rows[0][2], std::optional<std::string>(std::to_string(w)));
    EXPECT_EQ(rows[0][3], std::optional<std::string>(std::to_string(w)));
  }
}

TEST(ParquetWriterTest, UserSqlCannotReachTheSourceFunction) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT 1 AS id"));
  ASSERT_OK(f->db->WriteParquet(*stream, f->cache.path() / "a.parquet"));  // registers it
  ASSERT_OK_AND_ASSIGN(auto other, f->db->Connect());
  auto result = other->Query("SELECT * FROM __bridge_parquet_source('guess')");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("internal to Bridge"));
}

}  // namespace
}  // namespace bridge::engine
