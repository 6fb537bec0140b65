// Interop with an independent Arrow implementation: apache-arrow from npm, run in node.
//
// (a) DuckDB results of every type DuckDB exports go through our StreamWriter and FileWriter;
//     apache-arrow reads the bytes (read_arrow.mjs) and every value must be what DuckDB itself
//     says for the same query, rendered as text by DuckDB.
// (b) apache-arrow writes a stream (write_arrow.mjs); our reader must decode the known values
//     (kWrittenByNode below), and our writer's re-encoding of them must read back in
//     apache-arrow exactly like the original.
//
// node and tests/interop/node_modules are required: the tests fail (they never skip) when they
// are missing, telling to run scripts/bootstrap.

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bridge/arrow/buffer.h"
#include "bridge/arrow/integration_json.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/writer.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"
#include "nlohmann/json.hpp"

#ifndef BRIDGE_INTEROP_DIR
#error "BRIDGE_INTEROP_DIR must name tests/interop"
#endif

namespace bridge {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using ::bridge::testing::CommandResult;
using ::bridge::testing::ReadFile;
using ::bridge::testing::RunCommand;
using ::bridge::testing::TempDir;

// ---------------------------------------------------------------------------------------
// Running node

// Checks that node and the pinned apache-arrow are installed; returns the node binary.
::testing::AssertionResult NodeIsReady(std::string* node) {
  *node = ::bridge::testing::FindOnPath("node");
  if (node->empty()) {
    return ::testing::AssertionFailure()
           << "node is not on PATH; the interop tests need it: run scripts/bootstrap";
  }
  const fs::path arrow = fs::path(BRIDGE_INTEROP_DIR) / "node_modules/apache-arrow/package.json";
  if (!fs::exists(arrow)) {
    return ::testing::AssertionFailure()
           << arrow << " is missing: run scripts/bootstrap (or tests/interop/install.sh) to "
           << "install the pinned apache-arrow";
  }
  return ::testing::AssertionSuccess();
}

// Runs `node tests/interop/<script> args...`.
CommandResult RunScript(const std::string& node, const std::string& script,
                        std::vector<std::string> args) {
  std::vector<std::string> argv = {node, (fs::path(BRIDGE_INTEROP_DIR) / script).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, 60);
}

// Reads `file` with apache-arrow; returns read_arrow.mjs's document (null after a failure).
Json ReadWithApacheArrow(const std::string& node, const fs::path& file) {
  CommandResult r = RunScript(node, "read_arrow.mjs", {file.string()});
  EXPECT_EQ(r.exit_code, 0) << "apache-arrow could not read " << file << ":\n" << r.err;
  if (r.exit_code != 0) return nullptr;
  Json doc = Json::parse(r.out, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << "read_arrow.mjs printed no JSON:\n" << r.out.substr(0, 500);
  return doc.is_discarded() ? Json(nullptr) : doc;
}

void WriteBytes(const fs::path& path, const std::string& bytes) { testing::WriteFile(path, bytes); }

std::vector<const ArrowArray*> Pointers(const std::vector<ipc::OwnedArray>& arrays) {
  std::vector<const ArrowArray*> out;
  for (const auto& a : arrays) out.push_back(a.get());
  return out;
}

// ---------------------------------------------------------------------------------------
// (a) DuckDB -> our writers -> apache-arrow

// How a column's values are compared.
enum class Kind {
  kText,     // apache-arrow's canonical value as text == DuckDB's text
  kFloat32,  // both parsed, equal as float
  kFloat64,  // both parsed, equal as double
  kJson,     // DuckDB's text is JSON equal to the canonical value (numbers may be strings)
  kUnion,    // canonical {"type": tag, "value": v} as "tag=v" == DuckDB's text
};

struct ColumnSpec {
  const char* name;
  const char* value_sql;     // the column, over range(N) t(i)
  const char* expected_sql;  // DuckDB's rendering of it as VARCHAR, over the columns
  Kind kind;
  // apache-arrow's type string of what it read; a trailing '*' matches any rest (TIMESTAMPTZ
  // carries DuckDB's TimeZone setting, which follows the host).
  const char* arrow_type;
};

// Canonical forms (read_arrow.mjs): 64-bit integers and decimals are strings, dates
// "YYYY-MM-DD", times and timestamps the integer in their unit, blobs upper-case hex,
// intervals {"months", "days", "nanoseconds"}. The DuckDB side renders the same.
const ColumnSpec kColumns[] = {
    {"id", "i", "id::VARCHAR", Kind::kText, "Int64"},
    {"i8", "CASE WHEN i % 7 = 1 THEN NULL ELSE (i % 127)::TINYINT END", "i8::VARCHAR", Kind::kText,
     "Int8"},
    {"i16", "(i * 3 - 4000)::SMALLINT", "i16::VARCHAR", Kind::kText, "Int16"},
    {"i32", "CASE WHEN i % 7 = 3 THEN NULL ELSE (i * 100003 - 150000000)::INTEGER END",
     "i32::VARCHAR", Kind::kText, "Int32"},
    {"i64", "CASE WHEN i % 7 = 4 THEN NULL ELSE (i - 1500) * 3000000000007 END", "i64::VARCHAR",
     Kind::kText, "Int64"},
    {"u8", "(i % 200)::UTINYINT", "u8::VARCHAR", Kind::kText, "Uint8"},
    {"u16", "CASE WHEN i % 7 = 5 THEN NULL ELSE (i * 7)::USMALLINT END", "u16::VARCHAR",
     Kind::kText, "Uint16"},
    {"u32", "(i * 1000000)::UINTEGER", "u32::VARCHAR", Kind::kText, "Uint32"},
    {"u64", "CASE WHEN i % 7 = 6 THEN NULL ELSE i::UBIGINT * 6000000000000000 END", "u64::VARCHAR",
     Kind::kText, "Uint64"},
    {"huge", "CASE WHEN i % 5 = 4 THEN NULL ELSE i::HUGEINT * 100000000000000000000 - 5 END",
     "huge::VARCHAR", Kind::kText, "Decimal[38e0]"},
    {"f32", "CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 7.0)::FLOAT END", "f32::VARCHAR",
     Kind::kFloat32, "Float32"},
    {"f64", "CASE WHEN i % 5 = 1 THEN NULL ELSE i / 3.0 - 100 END", "f64::VARCHAR", Kind::kFloat64,
     "Float64"},
    {"d4", "CASE WHEN i % 5 = 2 THEN NULL ELSE ((i % 2000) / 10.0 - 99)::DECIMAL(4, 1) END",
     "d4::VARCHAR", Kind::kText, "Decimal[4e+1]"},
    {"d18", "CASE WHEN i % 5 = 3 THEN NULL ELSE (i * 1000.125 - 7)::DECIMAL(18, 3) END",
     "d18::VARCHAR", Kind::kText, "Decimal[18e+3]"},
    {"d38", "(i * 12345678901.5 - 1)::DECIMAL(38, 10)", "d38::VARCHAR", Kind::kText,
     "Decimal[38e+10]"},
    {"s", "CASE WHEN i % 13 = 0 THEN NULL ELSE 'str-' || i || repeat('é', (i % 20)::INTEGER) END",
     "s", Kind::kText, "Utf8"},
    {"bl", "CASE WHEN i % 13 = 1 THEN NULL ELSE ('\\x00\\xFF' || i)::BLOB END", "hex(bl)",
     Kind::kText, "Binary"},
    {"bo", "CASE WHEN i % 7 = 0 THEN NULL ELSE i % 3 = 0 END", "bo::VARCHAR", Kind::kText, "Bool"},
    {"dt", "CASE WHEN i % 11 = 0 THEN NULL ELSE DATE '2020-01-01' + (i - 1500)::INTEGER END",
     "dt::VARCHAR", Kind::kText, "Date32<DAY>"},
    {"tm",
     "CASE WHEN i % 11 = 1 THEN NULL ELSE TIME '00:00:00' + INTERVAL (i * 17) SECOND + "
     "INTERVAL (i) MICROSECOND END",
     "epoch_us(DATE '1970-01-01' + tm)::VARCHAR", Kind::kText, "Time64<MICROSECOND>"},
    {"ts",
     "CASE WHEN i % 11 = 2 THEN NULL ELSE TIMESTAMP '2020-01-01' + INTERVAL (i) MINUTE + "
     "INTERVAL (i) MICROSECOND END",
     "epoch_us(ts)::VARCHAR", Kind::kText, "Timestamp<MICROSECOND>"},
    {"ts_s", "(TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_S",
     "(epoch_us(ts_s::TIMESTAMP) // 1000000)::VARCHAR", Kind::kText, "Timestamp<SECOND>"},
    {"ts_ms", "(TIMESTAMP '2020-01-01' + INTERVAL (i * 7) MILLISECOND)::TIMESTAMP_MS",
     "epoch_ms(ts_ms::TIMESTAMP)::VARCHAR", Kind::kText, "Timestamp<MILLISECOND>"},
    {"ts_ns", "('2020-01-01 00:00:01.' || lpad(i::VARCHAR, 9, '0'))::TIMESTAMP_NS",
     "(1577836801000000000 + id)::VARCHAR", Kind::kText, "Timestamp<NANOSECOND>"},
    {"tstz",
     "CASE WHEN i % 11 = 3 THEN NULL ELSE TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) "
     "HOUR END",
     "epoch_us(tstz)::VARCHAR", Kind::kText, "Timestamp<MICROSECOND, *"},
    {"iv",
     "CASE WHEN i % 11 = 4 THEN NULL ELSE to_months((i % 5)::INTEGER) + to_days((i % 30)::INTEGER)"
     " + to_microseconds(i::BIGINT) END",
     "CASE WHEN iv IS NULL THEN NULL ELSE '{\"months\": ' || (id % 5) || ', \"days\": ' || "
     "(id % 30) || ', \"nanoseconds\": ' || (id * 1000) || '}' END",
     Kind::kJson, "Interval<MONTH_DAY_NANO>"},
    {"uid", "md5(i::VARCHAR)::UUID", "uid::VARCHAR", Kind::kText, "Utf8"},
    {"en",
     "CASE WHEN i % 7 = 5 THEN NULL ELSE (['red', 'green', 'blue'])[(i % 3) + 1]::ENUM('red', "
     "'green', 'blue') END",
     "en::VARCHAR", Kind::kText, "Dictionary<Uint8, Utf8>"},
    {"li",
     "CASE WHEN i % 9 = 0 THEN NULL ELSE list_transform(range(i % 5), x -> CASE WHEN x = 2 THEN "
     "NULL ELSE (x + i)::INTEGER END) END",
     "to_json(li)", Kind::kJson, "List<Int32>"},
    {"ls", "list_transform(range(i % 3), x -> 'v' || x || '-é' || i)", "to_json(ls)", Kind::kJson,
     "List<Utf8>"},
    {"arr",
     "CAST(CASE WHEN i % 6 = 0 THEN NULL ELSE [i::INTEGER, (i * 2)::INTEGER, NULL] END AS "
     "INTEGER[3])",
     "to_json(arr)", Kind::kJson, "FixedSizeList[3]<Int32>"},
    {"st",
     "CASE WHEN i % 8 = 0 THEN NULL ELSE {'a': i::INTEGER, 'b': CASE WHEN i % 3 = 0 THEN NULL "
     "ELSE 'n' || i END, 'c': [i::INTEGER, (i + 1)::INTEGER]} END",
     "to_json(st)", Kind::kJson, "Struct<{a:Int32, b:Utf8, c:List<Int32>}>"},
    {"mp",
     "CASE WHEN i % 10 = 0 THEN NULL ELSE MAP {'k' || (i % 3): i::INTEGER, 'z': (i + 1)::INTEGER} "
     "END",
     "to_json(map_entries(mp))", Kind::kJson, "Map<{key:Utf8, value:Int32}>"},
    {"un",
     "CASE WHEN i % 4 = 0 THEN NULL WHEN i % 4 = 1 THEN i::INTEGER::UNION(num INTEGER, str "
     "VARCHAR) ELSE ('u' || i)::UNION(num INTEGER, str VARCHAR) END",
     "CASE WHEN un IS NULL THEN NULL ELSE union_tag(un)::VARCHAR || '=' || un::VARCHAR END",
     Kind::kUnion, "Union<Int32 | Utf8>"},
    {"nested", "[{'x': i::INTEGER, 'y': [CASE WHEN i % 2 = 0 THEN NULL ELSE 'y' || i END]}]",
     "to_json(nested)", Kind::kJson, "List<Struct<{x:Int32, y:List<Utf8>}>>"},
    {"nothing", "NULL", "nothing::VARCHAR", Kind::kText, "Int32"},
};

constexpr int kRows = 3000;  // two DuckDB chunks

std::string ValueQuery() {
  std::string sql = "SELECT ";
  for (const auto& c : kColumns) {
    sql += StrCat(&c == &kColumns[0] ? "" : ", ", c.value_sql, " AS ", c.name);
  }
  return StrCat(sql, " FROM range(", kRows, ") t(i) ORDER BY i");
}

std::string ExpectedQuery() {
  std::string sql = "SELECT ";
  for (const auto& c : kColumns) {
    sql += StrCat(&c == &kColumns[0] ? "" : ", ", c.expected_sql, " AS ", c.name);
  }
  return StrCat(sql, " FROM (", ValueQuery(), ") v ORDER BY v.id");
}

// Text of a scalar canonical value (strings as is, numbers as JSON writes them).
std::string Text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// JSON equality where a number equals a string holding the same number.
bool LooseEqual(const Json& a, const Json& b) {
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !LooseEqual(it.value(), b.at(it.key()))) return false;
    }
    return true;
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!LooseEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if ((a.is_number() || a.is_string()) && (b.is_number() || b.is_string())) {
    return Text(a) == Text(b);
  }
  return a == b;
}

// Returns why `actual` (apache-arrow's canonical value) differs from `expected` (DuckDB's
// text), or nullopt when they agree.
std::optional<std::string> Mismatch(Kind kind, Json actual,
                                    const std::optional<std::string>& expected) {
  // A null union is a null in a child: apache-arrow sees the tag, DuckDB a NULL.
  if (kind == Kind::kUnion && actual.is_object() && actual["value"].is_null()) actual = nullptr;
  if (actual.is_null() || !expected.has_value()) {
    if (actual.is_null() && !expected.has_value()) return std::nullopt;
    return StrCat("DuckDB says ", expected.value_or("NULL"), ", apache-arrow read ", actual.dump());
  }
  bool equal = false;
  switch (kind) {
    case Kind::kText:
      equal = Text(actual) == *expected;
      break;
    case Kind::kFloat32:
      equal = actual.is_number() &&
              static_cast<float>(actual.get<double>()) == std::strtof(expected->c_str(), nullptr);
      break;
    case Kind::kFloat64:
      equal = actual.is_number() && actual.get<double>() == std::strtod(expected->c_str(), nullptr);
      break;
    case Kind::kJson: {
      Json e = Json::parse(*expected, nullptr, false);
      equal = !e.is_discarded() && LooseEqual(actual, e);
      break;
    }
    case Kind::kUnion:
      equal = actual.is_object() && Text(actual["type"]) + "=" + Text(actual["value"]) == *expected;
      break;
  }
  if (equal) return std::nullopt;
  return StrCat("DuckDB says ", *expected, ", apache-arrow read ", actual.dump());
}

struct DuckDB {
  TempDir data;
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<engine::Session> session;
};

std::unique_ptr<DuckDB> OpenDuckDB() {
  auto duck = std::make_unique<DuckDB>();
  engine::EngineOptions options;
  options.data_dir = duck->data.path();
  options.threads = 2;
  auto db = engine::Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return nullptr;
  duck->db = std::move(db).value();
  auto session = duck->db->Connect();
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return nullptr;
  duck->session = std::move(session).value();
  return duck;
}

// Runs the value query and writes its batches with our stream or file writer.
Result<std::string> WriteQuery(engine::Session& session, bool file_format) {
  BRIDGE_ASSIGN_OR_RETURN(auto stream, session.Query(ValueQuery()));
  ipc::StringSink sink;
  std::unique_ptr<ipc::StreamWriter> stream_writer;
  std::unique_ptr<ipc::FileWriter> file_writer;
  if (file_format) {
    BRIDGE_ASSIGN_OR_RETURN(file_writer, ipc::FileWriter::Make(&sink, stream->schema()));
  } else {
    BRIDGE_ASSIGN_OR_RETURN(stream_writer, ipc::StreamWriter::Make(&sink, stream->schema()));
  }
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    BRIDGE_RETURN_NOT_OK(file_format ? file_writer->WriteBatch(std::move(batch))
                                     : stream_writer->WriteBatch(std::move(batch)));
  }
  BRIDGE_RETURN_NOT_OK(file_format ? file_writer->Close() : stream_writer->Close());
  return sink.Take();
}

// Checks apache-arrow's reading of our bytes against DuckDB's own text of every value.
void ExpectMatchesDuckDB(const Json& doc, const engine::TextTable& expected,
                         const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(doc.is_object());
  const size_t n_columns = std::size(kColumns);
  ASSERT_EQ(doc["columns"].size(), n_columns);
  const Json& fields = doc["schema"]["fields"];
  for (size_t c = 0; c < n_columns; ++c) {
    EXPECT_EQ(doc["columns"][c], kColumns[c].name);
    std::string_view want = kColumns[c].arrow_type;
    const std::string got = fields[c]["type"].get<std::string>();
    if (want.ends_with('*')) {
      EXPECT_TRUE(got.starts_with(want.substr(0, want.size() - 1)))
          << "column " << kColumns[c].name << ": " << got;
    } else {
      EXPECT_EQ(got, want) << "column " << kColumns[c].name;
    }
  }
  int64_t total = 0;
  for (const Json& b : doc["batches"]) total += b.get<int64_t>();
  EXPECT_EQ(total, kRows);
  EXPECT_GE(doc["batches"].size(), 2u);
  ASSERT_EQ(doc["rows"].size(), expected.rows.size());
  int failures = 0;
  for (size_t c = 0; c < n_columns; ++c) {
    for (size_t r = 0; r < expected.rows.size(); ++r) {
      auto why = Mismatch(kColumns[c].kind, doc["rows"][r][c], expected.rows[r][c]);
      if (why.has_value()) {
        ADD_FAILURE() << what << ": column '" << kColumns[c].name << "', row " << r << ": " << *why;
        if (++failures >= 20) return;
        break;  // one report per column
      }
    }
  }
}

TEST(InteropTest, ApacheArrowReadsDuckDBResultsWrittenByBridge) {
  std::string node;
  ASSERT_TRUE(NodeIsReady(&node));
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  ASSERT_OK_AND_ASSIGN(engine::TextTable expected, duck->db->QueryTrusted(ExpectedQuery()));
  ASSERT_EQ(expected.rows.size(), static_cast<size_t>(kRows));

  TempDir dir;
  for (bool file_format : {false, true}) {
    const std::string what = file_format ? "IPC file" : "IPC stream";
    auto bytes = WriteQuery(*duck->session, file_format);
    ASSERT_TRUE(bytes.ok()) << "our " << what << " writer: " << bytes.status();
    const fs::path path = dir.path() / (file_format ? "duck.arrow" : "duck.arrows");
    WriteBytes(path, *bytes);
    Json doc = ReadWithApacheArrow(node, path);
    ASSERT_FALSE(doc.is_null());
    EXPECT_EQ(doc["format"], file_format ? "file" : "stream");
    ExpectMatchesDuckDB(doc, expected, what);
  }
}

// ---------------------------------------------------------------------------------------
// (b) apache-arrow -> our reader (and our writer -> apache-arrow again)

// The values write_arrow.mjs writes (see the table in it), as integration JSON.
constexpr char kWrittenByNode[] = R"json({
 "schema": {"fields": [
  {"name": "i8", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 8}},
  {"name": "i16", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 16}},
  {"name": "i32", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 32}},
  {"name": "i64", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 64}},
  {"name": "u8", "nullable": true, "type": {"name": "int", "isSigned": false, "bitWidth": 8}},
  {"name": "u16", "nullable": true, "type": {"name": "int", "isSigned": false, "bitWidth": 16}},
  {"name": "u32", "nullable": true, "type": {"name": "int", "isSigned": false, "bitWidth": 32}},
  {"name": "u64", "nullable": true, "type": {"name": "int", "isSigned": false, "bitWidth": 64}},
  {"name": "f32", "nullable": true, "type": {"name": "floatingpoint", "precision": "SINGLE"}},
  {"name": "f64", "nullable": true, "type": {"name": "floatingpoint", "precision": "DOUBLE"}},
  {"name": "s", "nullable": true, "type": {"name": "utf8"}},
  {"name": "b", "nullable": true, "type": {"name": "bool"}},
  {"name": "d", "nullable": true, "type": {"name": "utf8"},
   "dictionary": {"id": 0, "indexType": {"name": "int", "isSigned": true, "bitWidth": 8},
                  "isOrdered": false}},
  {"name": "li", "nullable": true, "type": {"name": "list"}, "children": [
    {"name": "item", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 32}}]},
  {"name": "st", "nullable": true, "type": {"name": "struct"}, "children": [
    {"name": "a", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 32}},
    {"name": "b", "nullable": true, "type": {"name": "utf8"}}]},
  {"name": "ts_ms", "nullable": true, "type": {"name": "timestamp", "unit": "MILLISECOND"}},
  {"name": "ts_us", "nullable": true,
   "type": {"name": "timestamp", "unit": "MICROSECOND", "timezone": "UTC"}},
  {"name": "dt", "nullable": true, "type": {"name": "date", "unit": "DAY"}},
  {"name": "nul", "nullable": false, "type": {"name": "null"}},
  {"name": "bin", "nullable": true, "type": {"name": "binary"}}]},
 "dictionaries": [{"id": 0, "data": {"count": 3, "columns": [
  {"name": "d", "count": 3, "VALIDITY": [1, 1, 1], "OFFSET": [0, 3, 8, 12],
   "DATA": ["red", "green", "blue"]}]}}],
 "batches": [
  {"count": 3, "columns": [
   {"name": "i8", "count": 3, "VALIDITY": [1, 1, 1], "DATA": [-128, 0, 127]},
   {"name": "i16", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [-32768, 1, 0]},
   {"name": "i32", "count": 3, "VALIDITY": [0, 1, 1], "DATA": [0, -2147483648, 2147483647]},
   {"name": "i64", "count": 3, "VALIDITY": [1, 1, 0],
    "DATA": ["-9223372036854775808", "9007199254740993", "0"]},
   {"name": "u8", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [0, 255, 0]},
   {"name": "u16", "count": 3, "VALIDITY": [1, 1, 1], "DATA": [65535, 0, 1]},
   {"name": "u32", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [4294967295, 0, 0]},
   {"name": "u64", "count": 3, "VALIDITY": [1, 1, 0], "DATA": ["18446744073709551615", "0", "0"]},
   {"name": "f32", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [1.5, -0.25, 0]},
   {"name": "f64", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [0.1, -1e300, 0]},
   {"name": "s", "count": 3, "VALIDITY": [1, 1, 0], "OFFSET": [0, 6, 6, 6],
    "DATA": ["h\u00e9llo", "", ""]},
   {"name": "b", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [true, false, false]},
   {"name": "d", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [0, 1, 0]},
   {"name": "li", "count": 3, "VALIDITY": [1, 1, 0], "OFFSET": [0, 2, 2, 2], "children": [
     {"name": "item", "count": 2, "VALIDITY": [1, 1], "DATA": [1, 2]}]},
   {"name": "st", "count": 3, "VALIDITY": [1, 0, 1], "children": [
     {"name": "a", "count": 3, "VALIDITY": [1, 0, 0], "DATA": [1, 0, 0]},
     {"name": "b", "count": 3, "VALIDITY": [1, 0, 1], "OFFSET": [0, 1, 1, 2],
      "DATA": ["x", "", "z"]}]},
   {"name": "ts_ms", "count": 3, "VALIDITY": [1, 1, 0], "DATA": ["0", "1600000000123", "0"]},
   {"name": "ts_us", "count": 3, "VALIDITY": [1, 0, 1], "DATA": ["1600000000123456", "0", "0"]},
   {"name": "dt", "count": 3, "VALIDITY": [1, 1, 0], "DATA": [0, 18262, 0]},
   {"name": "nul", "count": 3},
   {"name": "bin", "count": 3, "VALIDITY": [1, 1, 0], "OFFSET": [0, 2, 2, 2],
    "DATA": ["00FF", "", ""]}]},
  {"count": 2, "columns": [
   {"name": "i8", "count": 2, "VALIDITY": [0, 1], "DATA": [0, 5]},
   {"name": "i16", "count": 2, "VALIDITY": [1, 1], "DATA": [32767, -2]},
   {"name": "i32", "count": 2, "VALIDITY": [1, 1], "DATA": [0, 42]},
   {"name": "i64", "count": 2, "VALIDITY": [1, 1], "DATA": ["9223372036854775807", "-1"]},
   {"name": "u8", "count": 2, "VALIDITY": [1, 1], "DATA": [1, 2]},
   {"name": "u16", "count": 2, "VALIDITY": [0, 1], "DATA": [0, 3]},
   {"name": "u32", "count": 2, "VALIDITY": [1, 1], "DATA": [7, 8]},
   {"name": "u64", "count": 2, "VALIDITY": [1, 0], "DATA": ["1", "0"]},
   {"name": "f32", "count": 2, "VALIDITY": [1, 1], "DATA": [3.4028234663852886e38, 0.1]},
   {"name": "f64", "count": 2, "VALIDITY": [1, 1], "DATA": [2.5, 5e-324]},
   {"name": "s", "count": 2, "VALIDITY": [1, 1], "OFFSET": [0, 6, 7],
    "DATA": ["\u65e5\u672c", "x"]},
   {"name": "b", "count": 2, "VALIDITY": [1, 1], "DATA": [false, true]},
   {"name": "d", "count": 2, "VALIDITY": [1, 1], "DATA": [2, 0]},
   {"name": "li", "count": 2, "VALIDITY": [1, 1], "OFFSET": [0, 2, 3], "children": [
     {"name": "item", "count": 3, "VALIDITY": [0, 1, 1], "DATA": [0, 3, 4]}]},
   {"name": "st", "count": 2, "VALIDITY": [1, 1], "children": [
     {"name": "a", "count": 2, "VALIDITY": [1, 1], "DATA": [4, 5]},
     {"name": "b", "count": 2, "VALIDITY": [0, 1], "OFFSET": [0, 0, 1], "DATA": ["", "w"]}]},
   {"name": "ts_ms", "count": 2, "VALIDITY": [1, 1], "DATA": ["-1", "86400000"]},
   {"name": "ts_us", "count": 2, "VALIDITY": [1, 1], "DATA": ["-1", "1"]},
   {"name": "dt", "count": 2, "VALIDITY": [1, 1], "DATA": [-1, 1]},
   {"name": "nul", "count": 2},
   {"name": "bin", "count": 2, "VALIDITY": [1, 1], "OFFSET": [0, 1, 4],
    "DATA": ["41", "010203"]}]}]})json";

struct Read {
  std::unique_ptr<ipc::RecordBatchReader> reader;
  std::vector<ipc::OwnedArray> batches;
};

Result<Read> ReadStream(const std::string& bytes) {
  Read out;
  BRIDGE_ASSIGN_OR_RETURN(out.reader, ipc::OpenStreamReader(ipc::Buffer::FromString(bytes)));
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, out.reader->Next());
    if (!batch.valid()) break;
    out.batches.push_back(std::move(batch));
  }
  return out;
}

TEST(InteropTest, BridgeReadsWhatApacheArrowWrites) {
  std::string node;
  ASSERT_TRUE(NodeIsReady(&node));
  TempDir dir;
  const fs::path written = dir.path() / "node.arrows";
  CommandResult r = RunScript(node, "write_arrow.mjs", {written.string()});
  ASSERT_EQ(r.exit_code, 0) << "write_arrow.mjs failed:\n" << r.err;
  const std::string bytes = ReadFile(written);

  // Our reader decodes the known values.
  auto read = ReadStream(bytes);
  ASSERT_TRUE(read.ok()) << "our reader: " << read.status();
  ASSERT_EQ(read->batches.size(), 2u);
  EXPECT_OK(ipc::CompareWithIntegrationJson(read->reader->schema(), Pointers(read->batches),
                                            kWrittenByNode));

  // Our writer's re-encoding reads back in apache-arrow like the original.
  Json original = ReadWithApacheArrow(node, written);
  ASSERT_FALSE(original.is_null());
  {
    ASSERT_OK_AND_ASSIGN(Read fresh, ReadStream(bytes));
    ipc::StringSink sink;
    ASSERT_OK_AND_ASSIGN(auto writer, ipc::StreamWriter::Make(&sink, fresh.reader->schema()));
    for (auto& b : fresh.batches) ASSERT_OK(writer->WriteBatch(std::move(b)));
    ASSERT_OK(writer->Close());
    EXPECT_EQ(writer->stats().dictionary_replacements, 1);
    const fs::path ours = dir.path() / "ours.arrows";
    WriteBytes(ours, sink.data());
    Json again = ReadWithApacheArrow(node, ours);
    ASSERT_FALSE(again.is_null());
    EXPECT_EQ(again["format"], "stream");
    EXPECT_EQ(again["schema"], original["schema"]);
    EXPECT_EQ(again["batches"], original["batches"]);
    EXPECT_EQ(again["columns"], original["columns"]);
    EXPECT_EQ(again["rows"], original["rows"]);
  }
  // apache-arrow built one dictionary per batch for `d`, so the stream replaces it; the IPC
  // file format cannot, and our file writer says so for the second batch.
  {
    ASSERT_OK_AND_ASSIGN(Read fresh, ReadStream(bytes));
    ipc::StringSink sink;
    ASSERT_OK_AND_ASSIGN(auto writer, ipc::FileWriter::Make(&sink, fresh.reader->schema()));
    ASSERT_OK(writer->WriteBatch(std::move(fresh.batches[0])));
    EXPECT_STATUS(writer->WriteBatch(std::move(fresh.batches[1])), StatusCode::kInvalidArgument,
                  "cannot replace a dictionary");
  }
}

// The interop tests must not pass quietly without node: their precondition is checked
// against the real environment.
TEST(InteropTest, NodeAndApacheArrowAreInstalled) {
  std::string node;
  EXPECT_TRUE(NodeIsReady(&node));
}

}  // namespace
}  // namespace bridge
