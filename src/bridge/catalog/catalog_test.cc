#include "bridge/catalog/catalog.h"

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "bridge/catalog/scan_internal.h"
#include "bridge/common/testing.h"

namespace bridge::catalog {
namespace {

namespace fs = std::filesystem;
using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using Rows = std::vector<std::vector<std::string>>;
using Clock = std::chrono::steady_clock;

// Polls `predicate` until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& predicate,
             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  Clock::time_point deadline = Clock::now() + timeout;
  while (!predicate()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Renders value `row` of a C Data Interface column as text ("NULL" for nulls).
std::string ValueAt(const ArrowSchema& schema, const ArrowArray& array, int64_t row) {
  int64_t i = array.offset + row;
  const auto* validity = static_cast<const uint8_t*>(array.buffers[0]);
  if (array.null_count != 0 && validity != nullptr && !((validity[i / 8] >> (i % 8)) & 1)) {
    return "NULL";
  }
  std::string_view format = schema.format;
  const void* values = array.n_buffers > 1 ? array.buffers[1] : nullptr;
  if (format == "l") return std::to_string(static_cast<const int64_t*>(values)[i]);
  if (format == "i") return std::to_string(static_cast<const int32_t*>(values)[i]);
  if (format == "g") return fmt::format("{}", static_cast<const double*>(values)[i]);
  if (format == "b")
    return ((static_cast<const uint8_t*>(values)[i / 8] >> (i % 8)) & 1) ? "true" : "false";
  if (format == "u") {
    const auto* offsets = static_cast<const int32_t*>(values);
    const char* data = static_cast<const char*>(array.buffers[2]);
    return std::string(data + offsets[i], offsets[i + 1] - offsets[i]);
  }
  return StrCat("<", format, ">");
}

// Runs `sql` in `session` (as a user query would) and returns every value as text.
Result<Rows> QueryRows(engine::Session& session, const std::string& sql) {
  BRIDGE_ASSIGN_OR_RETURN(auto stream, session.Query(sql));
  const ArrowSchema& schema = stream->schema();
  Rows rows;
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    for (int64_t r = 0; r < batch->length; ++r) {
      auto& row = rows.emplace_back();
      for (int64_t c = 0; c < schema.n_children; ++c) {
        row.push_back(ValueAt(*schema.children[c], *batch->children[c], r));
      }
    }
  }
  return rows;
}

// A data folder, the Database the catalog works on, and a second Database that writes
// test files (so writing never goes through the catalog's database).
class Harness {
 public:
  Harness() {
    engine::EngineOptions options;
    options.data_dir = temp_.path();
    options.threads = 2;
    options.max_sessions = 2;
    db_ = engine::Database::Open(options).value();
    writer_ = engine::Database::Open(options).value();
    session_ = db_->Connect().value();
  }

  const fs::path& dir() const { return db_->options().data_dir; }
  engine::Database& db() { return *db_; }
  engine::Session& session() { return *session_; }
  Catalog& catalog() { return *catalog_; }

  // Opens the catalog over the data folder (without watching unless asked).
  Status OpenCatalog(CatalogOptions options = {.watch = false}) {
    BRIDGE_ASSIGN_OR_RETURN(catalog_, Catalog::Open(*db_, options));
    return OkStatus();
  }
  void CloseCatalog() { catalog_.reset(); }

  // Writes the result of `select` as a Parquet file at `relative`, under a hidden name first
  // and renamed into place, as an ingest would.
  void WriteParquet(const std::string& relative, const std::string& select) {
    fs::path target = dir() / relative;
    fs::create_directories(target.parent_path());
    fs::path temp = target.parent_path() / StrCat(".", target.filename().string(), ".tmp");
    Status st = writer_->ExecuteTrusted(
        StrCat("COPY (", select, ") TO ", engine::QuoteString(temp.string()), " (FORMAT parquet)"));
    ASSERT_TRUE(st.ok()) << st;
    fs::rename(temp, target);
  }

  // Writes a text file at `relative`, atomically (hidden temporary name, then rename).
  void WriteText(const std::string& relative, std::string_view contents) {
    fs::path target = dir() / relative;
    fs::path temp = target.parent_path() / StrCat(".", target.filename().string(), ".tmp");
    WriteFile(temp, contents);
    fs::rename(temp, target);
  }

  // Runs `sql` through a user session.
  Result<Rows> Query(const std::string& sql) { return QueryRows(*session_, sql); }

  // Returns the text of the DuckDB view `name`, or "" if there is none.
  std::string ViewSql(const std::string& name) {
    auto result = db_->QueryTrusted("SELECT sql FROM duckdb_views() WHERE view_name = " +
                                    engine::QuoteString(name));
    if (!result.ok() || result->rows.empty() || !result->rows[0][0]) return "";
    return *result->rows[0][0];
  }

 private:
  TempDir temp_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<engine::Database> writer_;
  std::unique_ptr<engine::Session> session_;
  std::unique_ptr<Catalog> catalog_;
};

// Returns table `name`, or an empty TableInfo (and a test failure) if there is none.
TableInfo Get(const Catalog& catalog, std::string_view name) {
  std::optional<TableInfo> table = catalog.Table(name);
  if (!table) {
    ADD_FAILURE() << "no table '" << name << "'";
    return {};
  }
  return *table;
}

// Matches an OK Result<Rows> whose rows match `matcher`.
MATCHER_P(HasRows, matcher, "") {
  if (!arg.ok()) {
    *result_listener << "failed: " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

std::vector<std::string> Names(const std::vector<TableInfo>& tables) {
  std::vector<std::string> names;
  for (const auto& t : tables) names.push_back(t.name);
  return names;
}

TEST(NamingTest, SanitizeKeepsCaseAndReplacesEverythingElse) {
  using internal::SanitizeName;
  using internal::TableNameFor;
  EXPECT_EQ(SanitizeName("trips"), "trips");
  EXPECT_EQ(SanitizeName("Trips_2024"), "Trips_2024");
  EXPECT_EQ(SanitizeName("a-b c.d"), "a_b_c_d");
  EXPECT_EQ(SanitizeName("2024"), "_2024");
  EXPECT_EQ(SanitizeName(""), "_");
  EXPECT_EQ(SanitizeName("caf\xc3\xa9"), "caf__");  // each non-ASCII byte
  EXPECT_EQ(SanitizeName("x\"; DROP"), "x___DROP");
  EXPECT_EQ(TableNameFor("trips.parquet"), "trips");
  EXPECT_EQ(TableNameFor("Trips.PARQUET"), "Trips");
  EXPECT_EQ(TableNameFor("sales.2024.csv"), "sales_2024");
  EXPECT_EQ(TableNameFor("events"), "events");  // a folder
  EXPECT_EQ(internal::FoldCase("My_Table"), "my_table");
}

TEST(NamingTest, IgnoredNamesAndExtensions) {
  using internal::IsIgnoredName;
  using internal::Reader;
  using internal::ReaderForFile;
  for (const char* name :
       {".hidden.csv", "_SUCCESS", "_temporary", "part.parquet.tmp", "x.TMP", "notes.csv~"}) {
    EXPECT_TRUE(IsIgnoredName(name)) << name;
  }
  for (const char* name : {"trips.csv", "year=2024", "a_b.csv"}) {
    EXPECT_FALSE(IsIgnoredName(name)) << name;
  }
  EXPECT_EQ(ReaderForFile("a.parquet"), Reader::kParquet);
  EXPECT_EQ(ReaderForFile("a.CSV"), Reader::kCsv);
  EXPECT_EQ(ReaderForFile("a.tsv"), Reader::kTsv);
  EXPECT_EQ(ReaderForFile("a.json"), Reader::kJson);
  EXPECT_EQ(ReaderForFile("a.ndjson"), Reader::kNdjson);
  EXPECT_EQ(ReaderForFile("a.jsonl"), Reader::kNdjson);
  EXPECT_EQ(ReaderForFile("a.txt"), std::nullopt);
  EXPECT_EQ(ReaderForFile("parquet"), std::nullopt);
}

TEST(CatalogTest, EachFileOfEachFormatBecomesAView) {
  Harness h;
  h.WriteParquet("sales.parquet",
                 "SELECT range AS id, (range * 1.5)::DOUBLE AS amount FROM range(5)");
  WriteFile(h.dir() / "people.csv", "id,name\n1,ann\n2,bob\n");
  WriteFile(h.dir() / "scores.tsv", "id\tscore\n1\t9.5\n2\t7.25\n");
  WriteFile(h.dir() / "events.json", R"([{"id": 1, "kind": "click"}, {"id": 2, "kind": "view"}])");
  WriteFile(h.dir() / "logs.ndjson", "{\"id\": 1, \"ok\": true}\n{\"id\": 2, \"ok\": false}\n");
  WriteFile(h.dir() / "more.jsonl", "{\"n\": 7}\n");
  // Not tables: no data extension, hidden, private, temporary, backup.
  WriteFile(h.dir() / "README.md", "# data\n");
  WriteFile(h.dir() / ".hidden.csv", "a\n1\n");
  WriteFile(h.dir() / "_SUCCESS", "");
  WriteFile(h.dir() / "draft.csv.tmp", "a\n1\n");
  WriteFile(h.dir() / "people.csv~", "a\n1\n");
  ASSERT_OK(h.OpenCatalog());

  std::vector<TableInfo> tables = h.catalog().Tables();
  ASSERT_THAT(Names(tables), ElementsAre("events", "logs", "more", "people", "sales", "scores"));
  for (const TableInfo& t : tables) {
    EXPECT_EQ(t.error, "") << t.name;
    EXPECT_EQ(t.file_count, 1) << t.name;
    EXPECT_EQ(t.bytes, static_cast<int64_t>(fs::file_size(h.dir() / t.path))) << t.name;
    EXPECT_GT(t.bytes, 0) << t.name;
    EXPECT_EQ(t.rows.has_value(), t.name == "sales") << t.name;
  }
  EXPECT_EQ(h.catalog().version(), 6u);

  TableInfo sales = Get(h.catalog(), "sales");
  EXPECT_EQ(sales.path, fs::path("sales.parquet"));
  EXPECT_EQ(sales.format, "parquet");
  EXPECT_THAT(sales.columns,
              ElementsAre(ColumnInfo{"id", "BIGINT"}, ColumnInfo{"amount", "DOUBLE"}));
  EXPECT_EQ(sales.rows, 5);

  TableInfo people = Get(h.catalog(), "people");
  EXPECT_EQ(people.format, "csv");
  EXPECT_THAT(people.columns,
              ElementsAre(ColumnInfo{"id", "BIGINT"}, ColumnInfo{"name", "VARCHAR"}));
  TableInfo scores = Get(h.catalog(), "scores");
  EXPECT_EQ(scores.format, "csv");
  EXPECT_THAT(scores.columns,
              ElementsAre(ColumnInfo{"id", "BIGINT"}, ColumnInfo{"score", "DOUBLE"}));
  TableInfo events = Get(h.catalog(), "events");
  EXPECT_EQ(events.format, "json");
  EXPECT_THAT(events.columns,
              ElementsAre(ColumnInfo{"id", "BIGINT"}, ColumnInfo{"kind", "VARCHAR"}));
  TableInfo logs = Get(h.catalog(), "logs");
  EXPECT_EQ(logs.format, "json");
  EXPECT_THAT(logs.columns, ElementsAre(ColumnInfo{"id", "BIGINT"}, ColumnInfo{"ok", "BOOLEAN"}));

  // Every view answers user queries.
  EXPECT_THAT(h.Query("SELECT sum(id)::BIGINT, sum(amount) FROM sales"),
              HasRows(ElementsAre(ElementsAre("10", "15"))));
  EXPECT_THAT(h.Query("SELECT name FROM people ORDER BY id"),
              HasRows(ElementsAre(ElementsAre("ann"), ElementsAre("bob"))));
  EXPECT_THAT(h.Query("SELECT score FROM scores WHERE id = 2"),
              HasRows(ElementsAre(ElementsAre("7.25"))));
  EXPECT_THAT(h.Query("SELECT kind FROM events ORDER BY id"),
              HasRows(ElementsAre(ElementsAre("click"), ElementsAre("view"))));
  EXPECT_THAT(h.Query("SELECT ok FROM logs ORDER BY id"),
              HasRows(ElementsAre(ElementsAre("true"), ElementsAre("false"))));
  EXPECT_THAT(h.Query("SELECT n FROM more"), HasRows(ElementsAre(ElementsAre("7"))));
}

TEST(CatalogTest, IncludeFilterAndDescribeOffServeOnlyWhatAQueryNeeds) {
  Harness h;
  h.WriteParquet("sales.parquet", "SELECT range AS id FROM range(5)");
  WriteFile(h.dir() / "people.csv", "id,name\n1,ann\n");
  CatalogOptions options{.watch = false};
  options.include = [](std::string_view name) { return name == "sales"; };
  options.describe = false;
  ASSERT_OK(h.OpenCatalog(options));
  std::vector<TableInfo> tables = h.catalog().Tables();
  ASSERT_THAT(Names(tables), ElementsAre("sales"));
  EXPECT_TRUE(tables[0].columns.empty());
  EXPECT_FALSE(tables[0].rows.has_value());
  EXPECT_EQ(tables[0].file_count, 1);
  EXPECT_THAT(h.Query("SELECT sum(id)::VARCHAR FROM sales"),
              HasRows(ElementsAre(ElementsAre("10"))));
  EXPECT_STATUS(h.Query("SELECT * FROM people"), StatusCode::kNotFound, "people");
}

TEST(CatalogTest, FolderIsOneViewOverAllItsFilesRecursively) {
  Harness h;
  WriteFile(h.dir() / "trips" / "a.csv", "id,v\n1,10\n");
  WriteFile(h.dir() / "trips" / "b.csv", "id,v\n2,20\n");
  WriteFile(h.dir() / "trips" / "old" / "c.csv", "id,v\n3,30\n4,40\n");
  WriteFile(h.dir() / "trips" / "notes.txt", "not data");
  WriteFile(h.dir() / "empty" / "notes.txt", "a folder without data files is no table");
  ASSERT_OK(h.OpenCatalog());

  EXPECT_THAT(Names(h.catalog().Tables()), ElementsAre("trips"));
  TableInfo trips = Get(h.catalog(), "trips");
  EXPECT_EQ(trips.error, "");
  EXPECT_EQ(trips.path, fs::path("trips"));
  EXPECT_EQ(trips.format, "csv");
  EXPECT_EQ(trips.file_count, 3);
  EXPECT_EQ(trips.bytes, static_cast<int64_t>(fs::file_size(h.dir() / "trips/a.csv") +
                                              fs::file_size(h.dir() / "trips/b.csv") +
                                              fs::file_size(h.dir() / "trips/old/c.csv")));
  EXPECT_THAT(trips.columns, ElementsAre(ColumnInfo{"id", "BIGINT"}, ColumnInfo{"v", "BIGINT"}));
  EXPECT_EQ(trips.rows, std::nullopt);
  EXPECT_THAT(h.Query("SELECT count(*)::BIGINT, sum(v)::BIGINT FROM trips"),
              HasRows(ElementsAre(ElementsAre("4", "100"))));
  // The view reads a recursive glob, so files DuckDB finds at query time are included.
  EXPECT_THAT(h.ViewSql("trips"),
              AllOf(HasSubstr((h.dir() / "trips/**/*.csv").string()), HasSubstr("union_by_name")));
}

TEST(CatalogTest, IgnoredFilesInsideAFolderAreNotRead) {
  Harness h;
  WriteFile(h.dir() / "trips" / "a.csv", "id,v\n1,10\n");
  WriteFile(h.dir() / "trips" / "sub" / "b.csv", "id,v\n2,20\n");
  WriteFile(h.dir() / "trips" / ".hidden.csv", "id,v\n100,1000\n");
  WriteFile(h.dir() / "trips" / "_temporary" / "0" / "c.csv", "id,v\n200,2000\n");
  WriteFile(h.dir() / "trips" / "d.csv.tmp", "id,v\n300,3000\n");
  ASSERT_OK(h.OpenCatalog());

  TableInfo trips = Get(h.catalog(), "trips");
  EXPECT_EQ(trips.error, "");
  EXPECT_EQ(trips.file_count, 2);
  EXPECT_THAT(h.Query("SELECT sum(v)::BIGINT FROM trips"), HasRows(ElementsAre(ElementsAre("30"))));
  // A glob would read the hidden files too, so the view lists the files instead.
  EXPECT_THAT(h.ViewSql("trips"), AllOf(HasSubstr("sub/b.csv"), Not(HasSubstr("**"))));

  // A new visible file is listed after the next refresh.
  WriteFile(h.dir() / "trips" / "e.csv", "id,v\n5,50\n");
  ASSERT_OK_AND_ASSIGN(auto changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, ChangeKind::kChanged);
  EXPECT_THAT(h.Query("SELECT sum(v)::BIGINT FROM trips"), HasRows(ElementsAre(ElementsAre("80"))));
}

TEST(CatalogTest, HivePartitionFoldersBecomeColumns) {
  Harness h;
  h.WriteParquet("sales/year=2024/month=1/x.parquet", "SELECT 10 AS amount");
  h.WriteParquet("sales/year=2024/month=2/x.parquet", "SELECT 20 AS amount UNION ALL SELECT 5");
  h.WriteParquet("sales/year=2023/month=12/x.parquet", "SELECT 30 AS amount");
  ASSERT_OK(h.OpenCatalog());

  TableInfo sales = Get(h.catalog(), "sales");
  EXPECT_EQ(sales.error, "");
  EXPECT_EQ(sales.format, "parquet");
  EXPECT_EQ(sales.file_count, 3);
  EXPECT_EQ(sales.rows, 4);
  EXPECT_THAT(sales.columns,
              UnorderedElementsAre(ColumnInfo{"amount", "INTEGER"}, ColumnInfo{"year", "BIGINT"},
                                   ColumnInfo{"month", "BIGINT"}));
  EXPECT_THAT(
      h.Query("SELECT year, month, sum(amount)::BIGINT FROM sales GROUP BY ALL ORDER BY ALL"),
      HasRows(ElementsAre(ElementsAre("2023", "12", "30"), ElementsAre("2024", "1", "10"),
                          ElementsAre("2024", "2", "25"))));
  EXPECT_THAT(h.Query("SELECT sum(amount)::BIGINT FROM sales WHERE year = 2024"),
              HasRows(ElementsAre(ElementsAre("35"))));
}

TEST(CatalogTest, FilesWithDifferentColumnsAreUnionedByName) {
  Harness h;
  h.WriteParquet("people/p1.parquet", "SELECT 1 AS id, 'ann' AS name");
  h.WriteParquet("people/p2.parquet", "SELECT 2 AS id, 2.5::DOUBLE AS score");
  ASSERT_OK(h.OpenCatalog());

  TableInfo people = Get(h.catalog(), "people");
  EXPECT_EQ(people.error, "");
  EXPECT_EQ(people.rows, 2);
  EXPECT_THAT(people.columns,
              ElementsAre(ColumnInfo{"id", "INTEGER"}, ColumnInfo{"name", "VARCHAR"},
                          ColumnInfo{"score", "DOUBLE"}));
  EXPECT_THAT(
      h.Query("SELECT id, name, score FROM people ORDER BY id"),
      HasRows(ElementsAre(ElementsAre("1", "ann", "NULL"), ElementsAre("2", "NULL", "2.5"))));
}

TEST(CatalogTest, NamesAreSanitizedAndCollisionsReported) {
  Harness h;
  WriteFile(h.dir() / "trips.csv", "a\n1\n");
  h.WriteParquet("trips.parquet", "SELECT 1 AS a");
  WriteFile(h.dir() / "a-b.csv", "a\n1\n");
  WriteFile(h.dir() / "a_b.csv", "a\n2\n");
  WriteFile(h.dir() / "Upper.csv", "a\n1\n");
  WriteFile(h.dir() / "upper.json", R"({"a": 1})");
  WriteFile(h.dir() / "2024 sales.csv", "total\n42\n");
  WriteFile(h.dir() / "My-Data.v2.csv", "x\n9\n");
  h.WriteParquet("spark.parquet/part-00000.parquet", "SELECT 3 AS s");  // Spark's layout
  WriteFile(h.dir() / "g[1]" / "x.csv", "g\n11\n");                     // glob characters
  ASSERT_OK(h.OpenCatalog());

  EXPECT_THAT(Names(h.catalog().Tables()),
              ElementsAre("_2024_sales", "a_b", "g_1_", "My_Data_v2", "spark", "trips", "Upper"));

  // Colliding entries stay listed, broken, naming every file; none of them gets the view.
  TableInfo trips = Get(h.catalog(), "trips");
  EXPECT_THAT(trips.error, AllOf(HasSubstr("name collision"), HasSubstr("trips.csv"),
                                 HasSubstr("trips.parquet")));
  EXPECT_EQ(trips.format, "");
  EXPECT_TRUE(trips.columns.empty());
  EXPECT_EQ(trips.file_count, 2);
  EXPECT_STATUS(h.Query("SELECT * FROM trips"), StatusCode::kNotFound, "trips");
  EXPECT_THAT(Get(h.catalog(), "a_b").error, AllOf(HasSubstr("a-b.csv"), HasSubstr("a_b.csv")));
  EXPECT_STATUS(h.Query("SELECT * FROM a_b"), StatusCode::kNotFound, "a_b");
  // DuckDB matches names case-insensitively, so Upper.csv and upper.json collide too.
  EXPECT_THAT(Get(h.catalog(), "upper").error,
              AllOf(HasSubstr("Upper.csv"), HasSubstr("upper.json")));

  EXPECT_THAT(h.Query("SELECT total FROM _2024_sales"), HasRows(ElementsAre(ElementsAre("42"))));
  // Case is kept, lookups ignore it (as SQL does).
  ASSERT_TRUE(h.catalog().Table("my_data_v2").has_value());
  EXPECT_EQ(Get(h.catalog(), "my_data_v2").name, "My_Data_v2");
  EXPECT_EQ(Get(h.catalog(), "my_data_v2").path, fs::path("My-Data.v2.csv"));
  EXPECT_THAT(h.Query("SELECT x FROM my_data_v2"), HasRows(ElementsAre(ElementsAre("9"))));
  TableInfo spark = Get(h.catalog(), "spark");
  EXPECT_EQ(spark.path, fs::path("spark.parquet"));
  EXPECT_EQ(spark.format, "parquet");
  EXPECT_THAT(h.Query("SELECT s FROM spark"), HasRows(ElementsAre(ElementsAre("3"))));
  EXPECT_EQ(Get(h.catalog(), "g_1_").error, "");
  EXPECT_THAT(h.Query("SELECT g FROM g_1_"), HasRows(ElementsAre(ElementsAre("11"))));

  // Removing one of the colliding files resolves the collision.
  fs::remove(h.dir() / "trips.csv");
  ASSERT_OK_AND_ASSIGN(auto changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, ChangeKind::kChanged);
  EXPECT_EQ(changes[0].error, "");
  EXPECT_EQ(Get(h.catalog(), "trips").format, "parquet");
  EXPECT_THAT(h.Query("SELECT a FROM trips"), HasRows(ElementsAre(ElementsAre("1"))));
}

TEST(CatalogTest, FolderMixingFormatsIsBroken) {
  Harness h;
  WriteFile(h.dir() / "mixed" / "a.csv", "a\n1\n");
  h.WriteParquet("mixed/b.parquet", "SELECT 1 AS a");
  WriteFile(h.dir() / "fine.csv", "a\n1\n");
  ASSERT_OK(h.OpenCatalog());

  TableInfo mixed = Get(h.catalog(), "mixed");
  EXPECT_THAT(mixed.error, AllOf(HasSubstr("mixes formats"), HasSubstr("mixed/a.csv"),
                                 HasSubstr("mixed/b.parquet")));
  EXPECT_EQ(mixed.format, "");
  EXPECT_EQ(mixed.file_count, 2);
  EXPECT_STATUS(h.Query("SELECT * FROM mixed"), StatusCode::kNotFound, "mixed");
  EXPECT_THAT(h.Query("SELECT a FROM fine"), HasRows(ElementsAre(ElementsAre("1"))));
}

TEST(CatalogTest, CorruptFileBreaksOnlyItsOwnTable) {
  Harness h;
  WriteFile(h.dir() / "bad.parquet", std::string(300, 'x'));
  h.WriteParquet("good.parquet", "SELECT 7 AS g");
  h.WriteParquet("parts/p1.parquet", "SELECT 1 AS p");
  ASSERT_OK(h.OpenCatalog());

  TableInfo bad = Get(h.catalog(), "bad");
  EXPECT_THAT(bad.error, AllOf(HasSubstr("magic bytes"), HasSubstr("'bad.parquet'"),
                               Not(HasSubstr(h.dir().string())), Not(HasSubstr("LINE 1"))));
  EXPECT_TRUE(bad.columns.empty());
  EXPECT_EQ(bad.format, "parquet");
  EXPECT_EQ(bad.bytes, 300);
  EXPECT_STATUS(h.Query("SELECT * FROM bad"), StatusCode::kNotFound, "bad");
  EXPECT_THAT(h.Query("SELECT g FROM good"), HasRows(ElementsAre(ElementsAre("7"))));
  EXPECT_THAT(h.Query("SELECT p FROM parts"), HasRows(ElementsAre(ElementsAre("1"))));

  // A table that worked and then gets a corrupt file loses its view; the others keep theirs.
  WriteFile(h.dir() / "parts" / "p2.parquet", "garbage");
  ASSERT_OK_AND_ASSIGN(auto changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].name, "parts");
  EXPECT_EQ(changes[0].kind, ChangeKind::kChanged);
  EXPECT_THAT(changes[0].error, HasSubstr("parts/p2.parquet"));
  EXPECT_STATUS(h.Query("SELECT * FROM parts"), StatusCode::kNotFound, "parts");
  EXPECT_THAT(h.Query("SELECT g FROM good"), HasRows(ElementsAre(ElementsAre("7"))));

  // Repairing the file brings the table back.
  h.WriteParquet("bad.parquet", "SELECT 8 AS b");
  ASSERT_OK_AND_ASSIGN(changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].name, "bad");
  EXPECT_EQ(changes[0].error, "");
  EXPECT_EQ(Get(h.catalog(), "bad").rows, 1);
  EXPECT_THAT(h.Query("SELECT b FROM bad"), HasRows(ElementsAre(ElementsAre("8"))));
  // Refreshing again retries the broken folder, which still fails the same way: no change.
  ASSERT_OK_AND_ASSIGN(changes, h.catalog().Refresh());
  EXPECT_TRUE(changes.empty());
}

TEST(CatalogTest, RefreshRecreatesOnlyChangedTablesAndBumpsVersions) {
  Harness h;
  WriteFile(h.dir() / "a.csv", "x\n1\n");
  WriteFile(h.dir() / "b.csv", "y\n2\n");
  ASSERT_OK(h.OpenCatalog());
  EXPECT_EQ(h.catalog().version(), 2u);
  EXPECT_EQ(Get(h.catalog(), "a").version, 1u);
  EXPECT_EQ(Get(h.catalog(), "b").version, 2u);
  auto view_oid = [&](const std::string& name) {
    auto r = h.db().QueryTrusted("SELECT view_oid FROM duckdb_views() WHERE view_name = " +
                                 engine::QuoteString(name));
    return r.ok() && !r->rows.empty() ? r->rows[0][0].value_or("") : std::string();
  };
  std::string a_oid = view_oid("a");
  ASSERT_NE(a_oid, "");

  // Nothing changed: nothing happens.
  ASSERT_OK_AND_ASSIGN(auto changes, h.catalog().Refresh());
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(h.catalog().version(), 2u);

  // b gets a new column: only b changes.
  WriteFile(h.dir() / "b.csv", "y,z\n2,hello\n");
  ASSERT_OK_AND_ASSIGN(changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, ChangeKind::kChanged);
  EXPECT_EQ(changes[0].name, "b");
  EXPECT_EQ(changes[0].version, 3u);
  EXPECT_EQ(h.catalog().version(), 3u);
  EXPECT_EQ(Get(h.catalog(), "b").version, 3u);
  EXPECT_EQ(Get(h.catalog(), "a").version, 1u);
  EXPECT_EQ(view_oid("a"), a_oid);  // a's view was left alone
  EXPECT_THAT(Get(h.catalog(), "b").columns,
              ElementsAre(ColumnInfo{"y", "BIGINT"}, ColumnInfo{"z", "VARCHAR"}));
  EXPECT_THAT(h.Query("SELECT z FROM b"), HasRows(ElementsAre(ElementsAre("hello"))));

  // New rows with the same columns are a change too (results cached by version go stale).
  WriteFile(h.dir() / "a.csv", "x\n1\n2\n");
  ASSERT_OK_AND_ASSIGN(changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].name, "a");
  EXPECT_EQ(changes[0].version, 4u);

  // Added and removed in one refresh.
  WriteFile(h.dir() / "c.csv", "w\n3\n");
  fs::remove(h.dir() / "a.csv");
  ASSERT_OK_AND_ASSIGN(changes, h.catalog().Refresh());
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, ChangeKind::kRemoved);
  EXPECT_EQ(changes[0].name, "a");
  EXPECT_EQ(changes[1].kind, ChangeKind::kAdded);
  EXPECT_EQ(changes[1].name, "c");
  EXPECT_EQ(h.catalog().version(), 6u);
  EXPECT_EQ(h.catalog().Table("a"), std::nullopt);
  EXPECT_THAT(Names(h.catalog().Tables()), ElementsAre("b", "c"));
  EXPECT_STATUS(h.Query("SELECT * FROM a"), StatusCode::kNotFound, "a");
  EXPECT_THAT(h.Query("SELECT w FROM c"), HasRows(ElementsAre(ElementsAre("3"))));
}

// Collects the changes the listener is given.
class ChangeLog {
 public:
  std::function<void(const std::vector<TableChange>&)> Listener() {
    return [this](const std::vector<TableChange>& changes) {
      std::lock_guard lock(mu_);
      ++batches_;
      for (const auto& c : changes) changes_.push_back(c);
    };
  }
  int batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::vector<TableChange> changes() const {
    std::lock_guard lock(mu_);
    return changes_;
  }
  bool Has(ChangeKind kind, const std::string& name) const {
    std::lock_guard lock(mu_);
    for (const auto& c : changes_) {
      if (c.kind == kind && c.name == name) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  int batches_ = 0;
  std::vector<TableChange> changes_;
};

TEST(CatalogTest, WatcherMakesNewChangedAndRemovedFilesVisibleWithoutRestart) {
  ChangeLog log;  // outlives the catalog, which calls it
  Harness h;
  WriteFile(h.dir() / "base.csv", "id,v\n1,10\n");
  ASSERT_OK(h.OpenCatalog({.watch = true, .debounce = std::chrono::milliseconds(30)}));
  h.catalog().SetListener(log.Listener());
  uint64_t version = h.catalog().version();
  EXPECT_EQ(version, 1u);

  // A new file.
  h.WriteParquet("fresh.parquet", "SELECT range AS n FROM range(4)");
  ASSERT_TRUE(WaitFor([&] { return h.catalog().Table("fresh").has_value(); }));
  EXPECT_EQ(Get(h.catalog(), "fresh").rows, 4);
  EXPECT_THAT(h.Query("SELECT sum(n)::BIGINT FROM fresh"), HasRows(ElementsAre(ElementsAre("6"))));
  EXPECT_GT(h.catalog().version(), version);
  version = h.catalog().version();

  // A new column in an existing file.
  h.WriteText("base.csv", "id,v,label\n1,10,one\n2,20,two\n");
  ASSERT_TRUE(WaitFor([&] {
    auto t = h.catalog().Table("base");
    return t && t->columns.size() == 3;
  }));
  EXPECT_THAT(h.Query("SELECT label FROM base ORDER BY id"),
              HasRows(ElementsAre(ElementsAre("one"), ElementsAre("two"))));
  EXPECT_GT(h.catalog().version(), version);
  version = h.catalog().version();

  // A new folder, then a new partition folder inside it.
  fs::create_directories(h.dir() / "logs" / "day=1");
  h.WriteText("logs/day=1/a.ndjson", "{\"msg\": \"hi\"}\n");
  ASSERT_TRUE(WaitFor([&] {
    auto t = h.catalog().Table("logs");
    return t && t->file_count == 1;
  }));
  fs::create_directories(h.dir() / "logs" / "day=2");
  h.WriteText("logs/day=2/b.ndjson", "{\"msg\": \"there\"}\n{\"msg\": \"again\"}\n");
  ASSERT_TRUE(WaitFor([&] {
    auto t = h.catalog().Table("logs");
    return t && t->file_count == 2;
  }));
  EXPECT_THAT(h.Query("SELECT day, count(*)::BIGINT FROM logs GROUP BY day ORDER BY day"),
              HasRows(ElementsAre(ElementsAre("1", "1"), ElementsAre("2", "2"))));
  EXPECT_GT(h.catalog().version(), version);
  version = h.catalog().version();

  // A removed file.
  fs::remove(h.dir() / "fresh.parquet");
  ASSERT_TRUE(WaitFor([&] { return !h.catalog().Table("fresh").has_value(); }));
  EXPECT_STATUS(h.Query("SELECT * FROM fresh"), StatusCode::kNotFound, "fresh");
  EXPECT_GT(h.catalog().version(), version);

  // The listener heard every change, with increasing versions.
  ASSERT_TRUE(WaitFor([&] { return log.Has(ChangeKind::kRemoved, "fresh"); }));
  EXPECT_TRUE(log.Has(ChangeKind::kAdded, "fresh"));
  EXPECT_TRUE(log.Has(ChangeKind::kChanged, "base"));
  EXPECT_TRUE(log.Has(ChangeKind::kAdded, "logs"));
  EXPECT_TRUE(log.Has(ChangeKind::kChanged, "logs"));
  std::vector<TableChange> heard = log.changes();
  for (size_t i = 1; i < heard.size(); ++i) {
    EXPECT_GT(heard[i].version, heard[i - 1].version);
  }
  EXPECT_EQ(heard.back().version, h.catalog().version());
}

TEST(CatalogTest, WatcherCoalescesABurstOfChangesIntoOneRefresh) {
  ChangeLog log;
  Harness h;
  ASSERT_OK(h.OpenCatalog({.watch = true, .debounce = std::chrono::milliseconds(500)}));
  h.catalog().SetListener(log.Listener());
  for (const char* name : {"a.csv", "b.csv", "c.csv"}) h.WriteText(name, "n\n1\n");
  ASSERT_TRUE(WaitFor([&] { return h.catalog().Tables().size() == 3; }));
  ASSERT_TRUE(WaitFor([&] { return log.changes().size() == 3; }));
  EXPECT_EQ(log.batches(), 1);
  EXPECT_EQ(h.catalog().version(), 3u);
}

TEST(CatalogTest, WatcherFollowsFoldersMovedIntoTheDataFolder) {
  Harness h;
  ASSERT_OK(h.OpenCatalog({.watch = true, .debounce = std::chrono::milliseconds(30)}));
  EXPECT_TRUE(h.catalog().Tables().empty());
  EXPECT_EQ(h.catalog().version(), 0u);

  // Built under a hidden name (ignored), then moved into place in one step.
  WriteFile(h.dir() / ".staging" / "sub" / "a.csv", "n\n1\n");
  ASSERT_TRUE(WaitFor([&] { return h.catalog().Tables().empty(); }));
  fs::rename(h.dir() / ".staging", h.dir() / "moved");
  ASSERT_TRUE(WaitFor([&] { return h.catalog().Table("moved").has_value(); }));
  EXPECT_THAT(h.Query("SELECT sum(n)::BIGINT FROM moved"), HasRows(ElementsAre(ElementsAre("1"))));

  // The moved folder's sub-folder is watched too.
  h.WriteText("moved/sub/b.csv", "n\n2\n");
  ASSERT_TRUE(WaitFor([&] {
    auto t = h.catalog().Table("moved");
    return t && t->file_count == 2;
  }));
  EXPECT_THAT(h.Query("SELECT sum(n)::BIGINT FROM moved"), HasRows(ElementsAre(ElementsAre("3"))));
}

TEST(CatalogTest, ReadersSeeConsistentTablesWhileRefreshing) {
  Harness h;
  WriteFile(h.dir() / "t.csv", "a\n0\n");
  ASSERT_OK(h.OpenCatalog());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<bool> monotonic{true};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!stop.load()) {
      uint64_t v = h.catalog().version();
      if (v < last) monotonic = false;
      last = v;
      auto t = h.catalog().Table("t");
      if (!t || t->version > h.catalog().version() || t->columns.size() != 1) monotonic = false;
      if (h.catalog().Tables().size() != 1) monotonic = false;
      ++reads;
    }
  });
  for (int i = 1; i <= 20; ++i) {
    WriteFile(h.dir() / "t.csv", StrCat("a\n", i, "\n", i, "\n"));
    ASSERT_OK_AND_ASSIGN(auto changes, h.catalog().Refresh());
    EXPECT_EQ(changes.size(), 1u);
  }
  ASSERT_TRUE(WaitFor([&] { return reads.load() > 0; }));
  stop = true;
  reader.join();
  EXPECT_TRUE(monotonic.load());
  EXPECT_EQ(h.catalog().version(), 21u);
}

TEST(CatalogTest, DestructionStopsTheWatcherPromptly) {
  Harness h;
  WriteFile(h.dir() / "t.csv", "a\n1\n");
  // A long debounce: the watcher sits in poll() with a refresh pending when it is stopped.
  ASSERT_OK(h.OpenCatalog({.watch = true, .debounce = std::chrono::seconds(30)}));
  WriteFile(h.dir() / "u.csv", "a\n2\n");
  Clock::time_point start = Clock::now();
  h.CloseCatalog();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(CatalogTest, OpenRejectsANegativeDebounce) {
  Harness h;
  EXPECT_STATUS(Catalog::Open(h.db(), {.watch = true, .debounce = std::chrono::milliseconds(-1)}),
                StatusCode::kInvalidArgument, "debounce");
}

}  // namespace
}  // namespace bridge::catalog
