// Session::QueryWithInput (the `input` table), Database::DescribeSchema and WriteParquet's
// prefix_files (append).
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge/arrow/test_arrays.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"

namespace bridge::engine {
namespace {

namespace fs = std::filesystem;
using ::bridge::testing::TempDir;
using ::testing::HasSubstr;

struct Fixture {
  TempDir data;
  std::unique_ptr<Database> db;
  std::unique_ptr<Session> session;  // runs QueryWithInput
  std::unique_ptr<Session> feeder;   // produces the input batches
};

std::unique_ptr<Fixture> Open() {
  auto f = std::make_unique<Fixture>();
  EngineOptions options;
  options.data_dir = f->data.path();
  options.threads = 2;
  options.max_sessions = 4;
  auto db = Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  f->db = std::move(db).value();
  f->session = f->db->Connect().value();
  f->feeder = f->db->Connect().value();
  return f;
}

// An input whose batches come from another session's query.
class QueryInput final : public InputStream {
 public:
  explicit QueryInput(std::unique_ptr<BatchStream> inner) : inner_(std::move(inner)) {}
  const ArrowSchema& schema() const override { return inner_->schema(); }
  Result<ipc::OwnedArray> Next() override {
    if (aborted_.load()) return Cancelled("test: input aborted");
    ++nexts_;
    return inner_->Next();
  }
  void Abort() override { aborted_.store(true); }
  int nexts() const { return nexts_.load(); }

 private:
  std::unique_ptr<BatchStream> inner_;
  std::atomic<bool> aborted_{false};
  std::atomic<int> nexts_{0};
};

// An input that hands out `batches` batches of `inner`, then blocks (as an upload waiting
// for the client) until Abort, or fails with `error` when one is given.
class BlockingInput final : public InputStream {
 public:
  BlockingInput(std::unique_ptr<BatchStream> inner, int batches, Status error = OkStatus())
      : inner_(std::move(inner)), batches_(batches), error_(std::move(error)) {}
  const ArrowSchema& schema() const override { return inner_->schema(); }
  Result<ipc::OwnedArray> Next() override {
    if (batches_-- > 0) return inner_->Next();
    if (!error_.ok()) return error_;
    std::unique_lock lock(mu_);
    blocked_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return aborted_; });
    return Cancelled("test: upload aborted");
  }
  void Abort() override {
    std::lock_guard lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }
  // Waits (up to 30 s) until a Next() blocks.
  bool WaitBlocked() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [this] { return blocked_; });
  }

 private:
  std::unique_ptr<BatchStream> inner_;
  int batches_;
  Status error_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false;
  bool aborted_ = false;
};

std::unique_ptr<BatchStream> Numbers(Session& session, int64_t rows) {
  auto stream = session.Query(
      StrCat("SELECT range AS id, 'v' || range::VARCHAR AS label FROM range(", rows, ")"));
  EXPECT_TRUE(stream.ok()) << stream.status();
  return stream.ok() ? std::move(stream).value() : nullptr;
}

// Every row of `stream` as "v1|v2|..." (int64 and utf8 columns only), in order.
Result<std::vector<std::string>> Collect(BatchStream& stream) {
  std::vector<std::string> rows;
  const ArrowSchema& schema = stream.schema();
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream.Next());
    if (!batch.valid()) return rows;
    for (int64_t r = 0; r < batch->length; ++r) {
      std::string row;
      for (int64_t c = 0; c < batch->n_children; ++c) {
        const ArrowArray* col = batch->children[c];
        std::string_view format = schema.children[c]->format;
        int64_t i = r + col->offset;
        if (c > 0) row += "|";
        const auto* validity = static_cast<const uint8_t*>(col->buffers[0]);
        if (validity != nullptr && !(validity[i / 8] & (1 << (i % 8)))) {
          row += "null";
        } else if (format == "l") {
          row += std::to_string(static_cast<const int64_t*>(col->buffers[1])[i]);
        } else if (format == "u") {
          const auto* offsets = static_cast<const int32_t*>(col->buffers[1]);
          const char* chars = static_cast<const char*>(col->buffers[2]);
          row.append(chars + offsets[i], offsets[i + 1] - offsets[i]);
        } else {
          return InvalidArgument("test: unsupported format ", std::string(format));
        }
      }
      rows.push_back(std::move(row));
    }
  }
}

TEST(QueryWithInput, JoinsTheInputWithATable) {
  auto f = Open();
  ASSERT_OK(f->db->ExecuteTrusted(
      "CREATE VIEW labels AS SELECT range * 1000 AS id, 'L' || range::VARCHAR AS name "
      "FROM range(100)"));
  QueryInput input(Numbers(*f->feeder, 5000));
  ASSERT_OK_AND_ASSIGN(
      auto stream,
      f->session->QueryWithInput(
          "SELECT i.id, l.name FROM input i JOIN labels l USING (id) ORDER BY id", input));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
  EXPECT_EQ(rows, (std::vector<std::string>{"0|L0", "1000|L1", "2000|L2", "3000|L3", "4000|L4"}));
  EXPECT_GE(input.nexts(), 3);  // 5000 rows come in several batches
}

TEST(QueryWithInput, AggregatesEveryInputRow) {
  auto f = Open();
  QueryInput input(Numbers(*f->feeder, 10000));
  ASSERT_OK_AND_ASSIGN(auto stream,
                       f->session->QueryWithInput("SELECT count(*)::BIGINT, sum(id)::BIGINT, "
                                                  "max(label) FROM input",
                                                  input));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
  EXPECT_EQ(rows, (std::vector<std::string>{"10000|49995000|v9999"}));
}

TEST(QueryWithInput, ShadowsACatalogTableNamedInputOnThisSessionOnly) {
  auto f = Open();
  ASSERT_OK(f->db->ExecuteTrusted("CREATE VIEW input AS SELECT 42::BIGINT AS id"));
  QueryInput input(Numbers(*f->feeder, 3));
  {
    ASSERT_OK_AND_ASSIGN(
        auto stream,
        f->session->QueryWithInput("SELECT (SELECT count(*) FROM input)::BIGINT AS uploaded, "
                                   "(SELECT id FROM memory.main.input) AS catalog",
                                   input));
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
    EXPECT_EQ(rows, (std::vector<std::string>{"3|42"}));
  }
  // Afterwards `input` is the catalog's again, on this session too.
  ASSERT_OK_AND_ASSIGN(auto after, f->session->Query("SELECT id FROM input"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*after));
  EXPECT_EQ(rows, (std::vector<std::string>{"42"}));
}

TEST(QueryWithInput, LeavesNoInputTableBehind) {
  auto f = Open();
  {
    QueryInput input(Numbers(*f->feeder, 3));
    ASSERT_OK_AND_ASSIGN(auto stream, f->session->QueryWithInput("SELECT * FROM input", input));
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
    EXPECT_EQ(rows.size(), 3u);
  }
  EXPECT_STATUS(f->session->Query("SELECT * FROM input").status(), StatusCode::kNotFound, "input");
}

TEST(QueryWithInput, TheTableFunctionIsUnreachableFromUserSql) {
  auto f = Open();
  QueryInput input(Numbers(*f->feeder, 3));
  // While another session's input is registered, guessing at the function gets nothing.
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->QueryWithInput("SELECT * FROM input", input));
  auto other = f->db->Connect();
  ASSERT_OK(other.status());
  auto guessed = (*other)->Query("SELECT * FROM __bridge_input('0123456789abcdef')");
  ASSERT_FALSE(guessed.ok());
  EXPECT_THAT(std::string(guessed.status().message()), HasSubstr("internal to Bridge"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
  EXPECT_EQ(rows.size(), 3u);
}

TEST(QueryWithInput, RefusesWritesAndSecondScans) {
  auto f = Open();
  {
    QueryInput input(Numbers(*f->feeder, 3));
    EXPECT_STATUS(
        f->session->QueryWithInput("CREATE TABLE t AS SELECT * FROM input", input).status(),
        StatusCode::kPermissionDenied, "CREATE");
  }
  {
    QueryInput input(Numbers(*f->feeder, 3));
    auto stream =
        f->session->QueryWithInput("SELECT * FROM input a JOIN input b USING (id)", input);
    Status st = stream.ok() ? Collect(**stream).status() : stream.status();
    EXPECT_STATUS(st, StatusCode::kInvalidArgument, "read only once");
  }
  // The session still works.
  QueryInput input(Numbers(*f->feeder, 4));
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->QueryWithInput("SELECT * FROM input", input));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
  EXPECT_EQ(rows.size(), 4u);
}

TEST(QueryWithInput, BadSqlIsInvalidArgumentWithDuckDBsMessage) {
  auto f = Open();
  QueryInput input(Numbers(*f->feeder, 3));
  EXPECT_STATUS(f->session->QueryWithInput("SELECT nope FROM input", input).status(),
                StatusCode::kInvalidArgument, "nope");
}

TEST(QueryWithInput, TheInputsErrorIsReturnedAsIs) {
  auto f = Open();
  BlockingInput input(Numbers(*f->feeder, 5000), 1,
                      InvalidArgument("flight: FlightData: bad upload"));
  auto stream = f->session->QueryWithInput("SELECT count(*) FROM input", input);
  Status st = stream.ok() ? Collect(**stream).status() : stream.status();
  EXPECT_STATUS(st, StatusCode::kInvalidArgument, "bad upload");
}

// Regression guard for the contract that a Next() blocked on the client does not hang a
// cancelled query.
TEST(QueryWithInput, CancelWakesABlockedInput) {
  auto f = Open();
  BlockingInput input(Numbers(*f->feeder, 5000), 1);
  Status result;
  std::thread runner([&] {
    auto stream = f->session->QueryWithInput("SELECT count(*) FROM input", input);
    result = stream.ok() ? Collect(**stream).status() : stream.status();
  });
  ASSERT_TRUE(input.WaitBlocked());
  f->session->Cancel();
  runner.join();
  EXPECT_STATUS(result, StatusCode::kCancelled, "");
  // The session is usable again.
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query("SELECT 7::BIGINT"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*stream));
  EXPECT_EQ(rows, (std::vector<std::string>{"7"}));
}

TEST(QueryWithInput, DeadlineWakesABlockedInput) {
  auto f = Open();
  BlockingInput input(Numbers(*f->feeder, 5000), 1);
  QueryOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto stream = f->session->QueryWithInput("SELECT count(*) FROM input", input, options);
  Status st = stream.ok() ? Collect(**stream).status() : stream.status();
  EXPECT_STATUS(st, StatusCode::kDeadlineExceeded, "timed out");
}

TEST(QueryWithInput, DroppingTheStreamEarlyEndsTheQuery) {
  auto f = Open();
  QueryInput input(Numbers(*f->feeder, 100000));
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->QueryWithInput("SELECT * FROM input", input));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray first, stream->Next());
  ASSERT_TRUE(first.valid());
  EXPECT_GT(first->length, 0);
  stream.reset();
  EXPECT_LT(input.nexts(), 100000 / 2048);  // the rest was never read
  ASSERT_OK_AND_ASSIGN(auto again, f->session->Query("SELECT 1::BIGINT"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> rows, Collect(*again));
  EXPECT_EQ(rows, (std::vector<std::string>{"1"}));
}

TEST(DescribeSchema, NamesDuckDBTypes) {
  auto f = Open();
  auto stream = Numbers(*f->feeder, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<ColumnType> columns, f->db->DescribeSchema(stream->schema()));
  EXPECT_EQ(columns, (std::vector<ColumnType>{{"id", "BIGINT"}, {"label", "VARCHAR"}}));
}

TEST(WriteParquetPrefix, AppendsToTheExistingFile) {
  auto f = Open();
  fs::path file = f->data.path() / "t.parquet";
  {
    auto first = Numbers(*f->feeder, 3);
    ASSERT_OK(f->db->WriteParquet(*first, file));
  }
  {
    auto more = f->feeder->Query("SELECT range + 10 AS id, 'w' AS label FROM range(2)");
    ASSERT_OK(more.status());
    ParquetOptions options;
    options.prefix_files = {file};
    ASSERT_OK(f->db->WriteParquet(**more, file, options));
  }
  ASSERT_OK_AND_ASSIGN(TextTable table,
                       f->db->QueryTrusted(StrCat("SELECT id::VARCHAR || '|' || label FROM "
                                                  "read_parquet(",
                                                  QuoteString(file.string()), ") ORDER BY id")));
  std::vector<std::string> rows;
  for (const auto& row : table.rows) rows.push_back(row[0].value_or("null"));
  EXPECT_EQ(rows, (std::vector<std::string>{"0|v0", "1|v1", "2|v2", "10|w", "11|w"}));
}

TEST(WriteParquetPrefix, ADifferentSchemaWritesNothing) {
  auto f = Open();
  fs::path file = f->data.path() / "t.parquet";
  auto first = Numbers(*f->feeder, 3);
  ASSERT_OK(f->db->WriteParquet(*first, file));
  first.reset();
  auto size = fs::file_size(file);
  auto time = fs::last_write_time(file);
  auto other = f->feeder->Query("SELECT 1.5::DOUBLE AS id, 'x' AS label");
  ASSERT_OK(other.status());
  ParquetOptions options;
  options.prefix_files = {file};
  EXPECT_STATUS(f->db->WriteParquet(**other, file, options), StatusCode::kInvalidArgument,
                "differs");
  EXPECT_EQ(fs::file_size(file), size);
  EXPECT_EQ(fs::last_write_time(file), time);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(f->data.path())) ++entries;
  EXPECT_EQ(entries, 1);  // no temporary file left
}

// Hands out the batches it was given, once.
class BatchesInput final : public InputStream {
 public:
  BatchesInput(ipc::OwnedSchema schema, std::vector<ipc::OwnedArray> batches)
      : schema_(std::move(schema)), batches_(std::move(batches)) {}
  const ArrowSchema& schema() const override { return *schema_; }
  Result<ipc::OwnedArray> Next() override {
    if (next_ >= batches_.size()) return ipc::OwnedArray();
    return std::move(batches_[next_++]);
  }
  void Abort() override {}

 private:
  ipc::OwnedSchema schema_;
  std::vector<ipc::OwnedArray> batches_;
  size_t next_ = 0;
};

// Regression: a client's 5000-row batch with a dictionary column with nulls (apache-arrow
// writes strings so) made DuckDB write past a 2048-row validity mask, corrupting the heap.
TEST(WriteParquetLongBatches, DictionaryColumnWithNullsLongerThanAVector) {
  namespace ta = ::bridge::ipc::test_arrays;
  auto f = Open();
  constexpr int kRows = 5000;
  std::vector<int32_t> k(kRows), indices(kRows);
  std::vector<uint8_t> validity((kRows + 7) / 8, 0);
  for (int i = 0; i < kRows; ++i) {
    k[i] = i * 3;
    indices[i] = i % 100;
    if (i % 10 != 0) validity[i / 8] |= static_cast<uint8_t>(1 << (i % 8));
  }
  auto bytes = [](const std::vector<int32_t>& v) {
    std::vector<uint8_t> out(v.size() * sizeof(int32_t));
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  };
  std::vector<std::optional<std::string>> words;
  for (int i = 0; i < 100; ++i) words.push_back(StrCat("s", i));
  std::vector<ipc::OwnedArray> columns;
  columns.push_back(ta::MakeArray(kRows, {std::nullopt, bytes(k)}));
  columns.push_back(ta::MakeArray(kRows, {validity, bytes(indices)}, {}, ta::Utf8(words)));
  std::vector<ipc::OwnedArray> batches;
  batches.push_back(ta::Batch(kRows, std::move(columns)));
  std::vector<ipc::OwnedSchema> fields;
  fields.push_back(ta::MakeSchema("i", "k"));
  fields.push_back(ta::MakeSchema("i", "s", {}, ta::MakeSchema("u", "")));
  BatchesInput input(ta::Columns(std::move(fields)), std::move(batches));
  fs::path file = f->data.path() / "long.parquet";
  ASSERT_OK(f->db->WriteParquet(input, file));
  ASSERT_OK_AND_ASSIGN(
      TextTable table,
      f->db->QueryTrusted(StrCat("SELECT count(*), count(s), sum(k), min(s), max(s) FROM "
                                 "read_parquet(",
                                 QuoteString(file.string()), ")")));
  ASSERT_EQ(table.rows.size(), 1u);
  EXPECT_EQ(table.rows[0],
            (std::vector<std::optional<std::string>>{
                "5000", "4500", std::to_string(3 * (kRows - 1) * kRows / 2), "s1", "s99"}));
}

}  // namespace
}  // namespace bridge::engine
