#include <charconv>
#include <cstring>
#include <deque>
#include <fstream>

#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"
#include "bridge/format/column_internal.h"
#include "bridge/format/row_writer.h"

namespace bridge::format {
namespace {

using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------
// Helpers: DuckDB as the source of real Arrow batches.

struct Fixture {
  TempDir data;
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<engine::Session> session;
};

std::unique_ptr<Fixture> Open() {
  auto f = std::make_unique<Fixture>();
  engine::EngineOptions options;
  options.data_dir = f->data.path();
  options.threads = 1;  // rows in order
  auto db = engine::Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  f->db = std::move(db).value();
  auto session = f->db->Connect();
  EXPECT_TRUE(session.ok()) << session.status();
  f->session = std::move(session).value();
  return f;
}

// Runs `sql` and returns its result written in `format`.
Result<std::string> Render(engine::Session& session, std::string_view sql, TextFormat format,
                           TextOptions options = {}) {
  BRIDGE_ASSIGN_OR_RETURN(auto stream, session.Query(sql));
  BRIDGE_ASSIGN_OR_RETURN(auto writer, RowWriter::Make(format, stream->schema(), options));
  std::string out;
  BRIDGE_RETURN_NOT_OK(writer->Begin(&out));
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    BRIDGE_RETURN_NOT_OK(writer->Write(*batch, &out));
  }
  BRIDGE_RETURN_NOT_OK(writer->End(&out));
  return out;
}

std::string Ndjson(engine::Session& session, std::string_view sql) {
  auto out = Render(session, sql, TextFormat::kNdjson);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

std::string Csv(engine::Session& session, std::string_view sql, TextOptions options = {}) {
  auto out = Render(session, sql, TextFormat::kCsv, options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

std::string Table(engine::Session& session, std::string_view sql, TextOptions options = {}) {
  auto out = Render(session, sql, TextFormat::kTable, options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// Returns the plain text (CSV / table cell text, "NULL" for nulls) of column `column` of
// every row of `sql`.
std::vector<std::string> PlainTexts(engine::Session& session, std::string_view sql, int column,
                                    char datetime_separator = ' ') {
  std::vector<std::string> texts;
  auto stream = session.Query(sql);
  EXPECT_TRUE(stream.ok()) << stream.status();
  if (!stream.ok()) return texts;
  auto formatter = internal::Column::Make(*(*stream)->schema().children[column], "c");
  EXPECT_TRUE(formatter.ok()) << formatter.status();
  if (!formatter.ok()) return texts;
  internal::PlainStyle style{datetime_separator};
  for (;;) {
    auto batch = (*stream)->Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) break;
    EXPECT_OK((*formatter)->Bind(*(*batch)->children[column]));
    for (int64_t r = 0; r < (*batch)->length; ++r) {
      std::string text;
      if ((*formatter)->IsNull(r)) {
        text = "NULL";
      } else {
        (*formatter)->AppendPlain(r, style, &text);
      }
      texts.push_back(std::move(text));
    }
  }
  return texts;
}

// Expects that our text of column 0 of `sql` equals DuckDB's VARCHAR text in column 1.
void ExpectSameTextAsDuckDB(engine::Session& session, const std::string& sql,
                            std::string_view suffix = "") {
  const std::vector<std::string> ours = PlainTexts(session, sql, 0);
  const std::vector<std::string> duckdb = PlainTexts(session, sql, 1);
  ASSERT_EQ(ours.size(), duckdb.size()) << sql;
  ASSERT_GT(ours.size(), 0u) << sql;
  int mismatches = 0;
  for (size_t r = 0; r < ours.size() && mismatches < 5; ++r) {
    if (ours[r] != duckdb[r] + std::string(suffix)) {
      ADD_FAILURE() << "row " << r << ": ours '" << ours[r] << "', DuckDB '" << duckdb[r] << "'";
      ++mismatches;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Helpers: hand-built Arrow structures, for types and layouts DuckDB does not produce.

void NoReleaseSchema(ArrowSchema*) {}
void NoReleaseArray(ArrowArray*) {}

// Owns schemas, arrays and buffers built by a test. Pointers stay valid for its lifetime.
class Arrow {
 public:
  ArrowSchema* Schema(const std::string& format, const std::string& name,
                      std::vector<ArrowSchema*> children = {}, ArrowSchema* dictionary = nullptr,
                      std::string metadata = "") {
    ArrowSchema& s = schemas_.emplace_back();
    s.format = Keep(format).c_str();
    s.name = Keep(name).c_str();
    s.metadata = metadata.empty() ? nullptr : Keep(metadata).data();
    s.flags = ARROW_FLAG_NULLABLE;
    auto& list = schema_lists_.emplace_back(std::move(children));
    s.n_children = static_cast<int64_t>(list.size());
    s.children = list.data();
    s.dictionary = dictionary;
    s.release = NoReleaseSchema;
    s.private_data = nullptr;
    return &s;
  }

  ArrowArray* Array(int64_t length, std::vector<const void*> buffers,
                    std::vector<ArrowArray*> children = {}, int64_t offset = 0,
                    ArrowArray* dictionary = nullptr, int64_t null_count = -1) {
    ArrowArray& a = arrays_.emplace_back();
    a.length = length;
    a.null_count = null_count;
    a.offset = offset;
    auto& buffer_list = buffer_lists_.emplace_back(std::move(buffers));
    a.n_buffers = static_cast<int64_t>(buffer_list.size());
    a.buffers = buffer_list.data();
    auto& child_list = array_lists_.emplace_back(std::move(children));
    a.n_children = static_cast<int64_t>(child_list.size());
    a.children = child_list.data();
    a.dictionary = dictionary;
    a.release = NoReleaseArray;
    a.private_data = nullptr;
    return &a;
  }

  template <typename T>
  const void* Values(std::initializer_list<T> values) {
    std::string& bytes = Keep(std::string(values.size() * sizeof(T), '\0'));
    std::memcpy(bytes.data(), values.begin(), bytes.size());
    return bytes.data();
  }
  const void* Bytes(std::string_view bytes) { return Keep(std::string(bytes)).data(); }
  // A validity (or boolean) bitmap from '1' / '0' characters, slot 0 first.
  const void* Bits(std::string_view bits) {
    std::string& bytes = Keep(std::string((bits.size() + 7) / 8, '\0'));
    for (size_t k = 0; k < bits.size(); ++k) {
      if (bits[k] == '1') bytes[k / 8] = static_cast<char>(bytes[k / 8] | (1 << (k % 8)));
    }
    return bytes.data();
  }
  // A 16-byte string view: inline when <= 12 bytes, else prefix + buffer index + offset.
  std::string View(std::string_view text, int32_t buffer = 0, int32_t offset = 0) {
    std::string view(16, '\0');
    const int32_t size = static_cast<int32_t>(text.size());
    std::memcpy(view.data(), &size, 4);
    if (size <= 12) {
      std::memcpy(view.data() + 4, text.data(), text.size());
    } else {
      std::memcpy(view.data() + 4, text.data(), 4);
      std::memcpy(view.data() + 8, &buffer, 4);
      std::memcpy(view.data() + 12, &offset, 4);
    }
    return view;
  }

  // A one-column record batch schema / array.
  ArrowSchema* Batch(ArrowSchema* column) { return Schema("+s", "", {column}); }
  ArrowArray* Batch(ArrowArray* column, int64_t rows) { return Array(rows, {nullptr}, {column}); }

 private:
  std::string& Keep(std::string s) { return strings_.emplace_back(std::move(s)); }

  std::deque<ArrowSchema> schemas_;
  std::deque<ArrowArray> arrays_;
  std::deque<std::string> strings_;
  std::deque<std::vector<ArrowSchema*>> schema_lists_;
  std::deque<std::vector<ArrowArray*>> array_lists_;
  std::deque<std::vector<const void*>> buffer_lists_;
};

// Arrow C Data Interface metadata with the given key/value pairs.
std::string Metadata(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out;
  auto put = [&out](int32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  put(static_cast<int32_t>(pairs.size()));
  for (const auto& [key, value] : pairs) {
    put(static_cast<int32_t>(key.size()));
    out += key;
    put(static_cast<int32_t>(value.size()));
    out += value;
  }
  return out;
}

// Writes `batches` of `schema` in `format`.
Result<std::string> WriteBatches(TextFormat format, const ArrowSchema& schema,
                                 const std::vector<const ArrowArray*>& batches,
                                 TextOptions options = {}) {
  BRIDGE_ASSIGN_OR_RETURN(auto writer, RowWriter::Make(format, schema, options));
  std::string out;
  BRIDGE_RETURN_NOT_OK(writer->Begin(&out));
  for (const ArrowArray* batch : batches) BRIDGE_RETURN_NOT_OK(writer->Write(*batch, &out));
  BRIDGE_RETURN_NOT_OK(writer->End(&out));
  return out;
}

// NDJSON of a one-column batch.
std::string ColumnNdjson(Arrow& arrow, ArrowSchema* schema, ArrowArray* array, int64_t rows) {
  auto out = WriteBatches(TextFormat::kNdjson, *arrow.Batch(schema), {arrow.Batch(array, rows)});
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// The status of writing a one-column batch as NDJSON; also expects `out` untouched.
Status ColumnWriteStatus(Arrow& arrow, ArrowSchema* schema, ArrowArray* array, int64_t rows) {
  auto writer = RowWriter::Make(TextFormat::kNdjson, *arrow.Batch(schema));
  if (!writer.ok()) return writer.status();
  std::string out = "before";
  EXPECT_OK((*writer)->Begin(&out));
  Status status = (*writer)->Write(*arrow.Batch(array, rows), &out);
  EXPECT_EQ(out, "before") << "a failed Write appended output";
  return status;
}

// ---------------------------------------------------------------------------------------
// Every type DuckDB exports, written as JSON / CSV / table text.

TEST(FormatTest, IntegersOfEveryWidthAndBooleans) {
  auto f = Open();
  const std::string sql =
      "SELECT (-128)::TINYINT i8, 127::TINYINT i8b, 255::UTINYINT u8, (-32768)::SMALLINT i16, "
      "65535::USMALLINT u16, (-2147483648)::INTEGER i32, 4294967295::UINTEGER u32, "
      "(-9223372036854775808)::BIGINT i64, 18446744073709551615::UBIGINT u64, "
      "(-170141183460469231731687303715884105728)::HUGEINT i128, "
      "340282366920938463463374607431768211455::UHUGEINT u128, true t, false f";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"i8":-128,"i8b":127,"u8":255,"i16":-32768,"u16":65535,"i32":-2147483648,)"
            R"("u32":4294967295,"i64":-9223372036854775808,"u64":18446744073709551615,)"
            R"("i128":-170141183460469231731687303715884105728,)"
            R"("u128":340282366920938463463374607431768211455,"t":true,"f":false})"
            "\n");
  EXPECT_EQ(Csv(*f->session, sql),
            "i8,i8b,u8,i16,u16,i32,u32,i64,u64,i128,u128,t,f\n"
            "-128,127,255,-32768,65535,-2147483648,4294967295,-9223372036854775808,"
            "18446744073709551615,-170141183460469231731687303715884105728,"
            "340282366920938463463374607431768211455,true,false\n");
}

TEST(FormatTest, FloatsAreShortestAndNonFiniteIsNullInJson) {
  auto f = Open();
  const std::string sql =
      "SELECT 0.1::FLOAT f, 0.1::DOUBLE d, 1e300::DOUBLE big, 5e-324::DOUBLE tiny, "
      "'nan'::DOUBLE nan, 'inf'::FLOAT inf, '-inf'::DOUBLE ninf, 3.4028235e38::FLOAT fmax, "
      "100::DOUBLE hundred, 1.5e-7::DOUBLE small, (-2.5)::FLOAT neg";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"f":0.1,"d":0.1,"big":1e+300,"tiny":5e-324,"nan":null,"inf":null,"ninf":null,)"
            R"("fmax":3.4028235e+38,"hundred":100,"small":1.5e-07,"neg":-2.5})"
            "\n");
  EXPECT_EQ(Csv(*f->session, sql),
            "f,d,big,tiny,nan,inf,ninf,fmax,hundred,small,neg\n"
            "0.1,0.1,1e+300,5e-324,nan,inf,-inf,3.4028235e+38,100,1.5e-07,-2.5\n");
}

TEST(FormatTest, DoublesReadBackBitForBit) {
  auto f = Open();
  const std::string sql =
      "SELECT (hash(i)::DOUBLE / (hash(i + 1)::DOUBLE + 1)) * "
      "pow(10, (hash(i + 2) % 560)::INTEGER - 280) * (CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END) "
      "AS d, ((hash(i) % 1000000)::FLOAT / ((hash(i + 3) % 999983) + 1)::FLOAT * "
      "pow(10, (hash(i + 4) % 60)::INTEGER - 30)::FLOAT) AS f FROM range(3000) t(i)";
  for (int column : {0, 1}) {
    const std::vector<std::string> texts = PlainTexts(*f->session, sql, column);
    ASSERT_EQ(texts.size(), 3000u);
    auto values = f->session->Query(sql);
    ASSERT_OK(values);
    size_t row = 0;
    for (;;) {
      ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, (*values)->Next());
      if (!batch.valid()) break;
      for (int64_t r = 0; r < batch->length; ++r, ++row) {
        const std::string& text = texts[row];
        if (column == 0) {
          double expected;
          std::memcpy(&expected, static_cast<const char*>(batch->children[0]->buffers[1]) + 8 * r,
                      8);
          double back = 0;
          std::from_chars(text.data(), text.data() + text.size(), back);
          ASSERT_EQ(std::memcmp(&back, &expected, 8), 0) << text;
        } else {
          float expected;
          std::memcpy(&expected, static_cast<const char*>(batch->children[1]->buffers[1]) + 4 * r,
                      4);
          float back = 0;
          std::from_chars(text.data(), text.data() + text.size(), back);
          ASSERT_EQ(std::memcmp(&back, &expected, 4), 0) << text;
        }
      }
    }
  }
}

TEST(FormatTest, DecimalsAreExactWithTheirScale) {
  auto f = Open();
  const std::string sql =
      "SELECT '-999.9'::DECIMAL(4,1) a, '12.3'::DECIMAL(4,1) b, "
      "'-123456789012345.678'::DECIMAL(18,3) c, '0.001'::DECIMAL(18,3) d, "
      "'-9999999999999999999999999999.9999999999'::DECIMAL(38,10) e, "
      "'0.0000000001'::DECIMAL(38,10) f, '12.30'::DECIMAL(10,2) g, 0::DECIMAL(38,10) h, "
      "'-0.5'::DECIMAL(9,4) i, 123::DECIMAL(38,0) j";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"a":-999.9,"b":12.3,"c":-123456789012345.678,"d":0.001,)"
            R"("e":-9999999999999999999999999999.9999999999,"f":0.0000000001,"g":12.30,)"
            R"("h":0.0000000000,"i":-0.5000,"j":123})"
            "\n");
}

TEST(FormatTest, DecimalsMatchDuckDBsText) {
  auto f = Open();
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT v, v::VARCHAR FROM (SELECT (((hash(i) % 19999)::INTEGER - 9999) "
                         "/ 10)::DECIMAL(4,1) AS v FROM range(2000) t(i))");
  // DECIMAL(18,3) and (38,10) from digit strings, so every digit is random.
  ExpectSameTextAsDuckDB(
      *f->session,
      "SELECT v::DECIMAL(18,3), v::DECIMAL(18,3)::VARCHAR FROM (SELECT "
      "(CASE WHEN i % 2 = 0 THEN '-' ELSE '' END) || (hash(i) % 1000000000000000)::VARCHAR || '.' "
      "|| lpad((hash(i + 1) % 1000)::VARCHAR, 3, '0') AS v FROM range(2000) t(i))");
  ExpectSameTextAsDuckDB(
      *f->session,
      "SELECT v::DECIMAL(38,10), v::DECIMAL(38,10)::VARCHAR FROM (SELECT "
      "(CASE WHEN i % 2 = 0 THEN '-' ELSE '' END) || (hash(i) % 10000000000000000000)::VARCHAR || "
      "lpad((hash(i + 1) % 1000000000)::VARCHAR, 9, '0') || '.' || "
      "lpad((hash(i + 2) % 10000000000)::VARCHAR, 10, '0') AS v FROM range(2000) t(i))");
}

TEST(FormatTest, StringsAndBlobsAreEscaped) {
  auto f = Open();
  const std::string sql =
      "SELECT 'say \"hi\"' a, 'back\\slash' b, 'line1' || chr(10) || 'line2' || chr(13) || chr(9) "
      "c, chr(1) || chr(31) d, 'h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80' e, '' f, 'x,y' g, "
      "'\\x00\\xFF\\x41\\x5C'::BLOB h, ''::BLOB i";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"a":"say \"hi\"","b":"back\\slash","c":"line1\nline2\r\t","d":"\u0001\u001f",)"
            "\"e\":\"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80\","
            R"("f":"","g":"x,y","h":"AP9BXA==","i":""})"
            "\n");
  EXPECT_EQ(Csv(*f->session, sql),
            "a,b,c,d,e,f,g,h,i\n"
            "\"say \"\"hi\"\"\",back\\slash,\"line1\nline2\r\t\",\x01\x1f,"
            "h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80,\"\",\"x,y\",\\x00\\xFFA\\x5C,\"\"\n");
}

TEST(FormatTest, BlobTextMatchesDuckDBs) {
  auto f = Open();
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT b, b::VARCHAR FROM (SELECT unhex(md5(i::VARCHAR) || "
                         "md5((i * 7)::VARCHAR)) AS b FROM range(1000) t(i))");
}

TEST(FormatTest, DatesTimesAndTimestampsOfEveryUnit) {
  auto f = Open();
  const std::string sql =
      "SELECT DATE '2024-02-29' d1, DATE '1969-12-31' d2, DATE '0001-01-01' d3, "
      "DATE '0001-01-01' - 1 d4, 'infinity'::DATE d5, '-infinity'::DATE d6, "
      "TIME '00:00:00' t1, TIME '23:59:59.999999' t2, TIME '12:00:00.5' t3, "
      "TIMESTAMP_S '1969-12-31 23:59:59' s, TIMESTAMP_MS '1900-01-01 00:00:00.001' ms, "
      "TIMESTAMP '2024-01-02 03:04:05.123456' us, TIMESTAMP '1969-12-31 23:59:59.999999' us_neg, "
      "TIMESTAMP_NS '2200-01-01 00:00:00.000000001' ns, "
      "TIMESTAMP_NS '1900-06-15 12:30:00.123456789' ns_neg, "
      "TIMESTAMPTZ '2024-01-02 03:04:05.5+02' tz, TIMESTAMPTZ '1950-01-01 00:00:00+00' tz_neg, "
      "'infinity'::TIMESTAMP inf, '-infinity'::TIMESTAMP_S ninf";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"d1":"2024-02-29","d2":"1969-12-31","d3":"0001-01-01","d4":"0000-12-31",)"
            R"("d5":"infinity","d6":"-infinity","t1":"00:00:00","t2":"23:59:59.999999",)"
            R"("t3":"12:00:00.5","s":"1969-12-31T23:59:59","ms":"1900-01-01T00:00:00.001",)"
            R"("us":"2024-01-02T03:04:05.123456","us_neg":"1969-12-31T23:59:59.999999",)"
            R"("ns":"2200-01-01T00:00:00.000000001","ns_neg":"1900-06-15T12:30:00.123456789",)"
            R"("tz":"2024-01-02T01:04:05.5Z","tz_neg":"1950-01-01T00:00:00Z",)"
            R"("inf":"infinity","ninf":"-infinity"})"
            "\n");
  // CSV uses the same ISO 8601 text, unquoted.
  EXPECT_THAT(Csv(*f->session, sql), HasSubstr("\n2024-02-29,1969-12-31,0001-01-01,0000-12-31,"
                                               "infinity,-infinity,00:00:00,23:59:59.999999,"
                                               "12:00:00.5,1969-12-31T23:59:59,"));
}

TEST(FormatTest, TemporalTextMatchesDuckDBs) {
  auto f = Open();
  // Tables write timestamps with a space, as DuckDB does; years 1..9999.
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT v, v::VARCHAR FROM (SELECT DATE '0001-01-01' + "
                         "(hash(i) % 3652059)::INTEGER AS v FROM range(2000) t(i))");
  ExpectSameTextAsDuckDB(
      *f->session,
      "SELECT v, v::VARCHAR FROM (SELECT TIME '00:00:00' + "
      "to_microseconds((hash(i) % 86400000000)::BIGINT // (10 ^ (i % 7))::BIGINT "
      "* (10 ^ (i % 7))::BIGINT) AS v FROM range(2000) t(i))");
  const std::string timestamps =
      "(SELECT TIMESTAMP '0001-01-01' + to_microseconds((hash(i) % 315537897600000000)::BIGINT) "
      "AS v FROM range(2000) t(i))";
  ExpectSameTextAsDuckDB(*f->session, "SELECT v, v::VARCHAR FROM " + timestamps);
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT v::TIMESTAMP_S, v::TIMESTAMP_S::VARCHAR FROM " + timestamps);
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT v::TIMESTAMP_MS, v::TIMESTAMP_MS::VARCHAR FROM " + timestamps);
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT v, v::VARCHAR FROM (SELECT (TIMESTAMP '1700-01-01' + "
                         "to_microseconds((hash(i) % 15000000000000000)::BIGINT))::TIMESTAMP_NS "
                         "AS v FROM range(2000) t(i))");
  // TIMESTAMPTZ: UTC instants with a Z.
  ExpectSameTextAsDuckDB(*f->session,
                         "SELECT v::TIMESTAMPTZ, timezone('UTC', v::TIMESTAMPTZ)::VARCHAR FROM "
                         "(SELECT (v::VARCHAR || '+00') AS v FROM " +
                             timestamps + ")",
                         "Z");
}

TEST(FormatTest, IntervalsAreWrittenLikeDuckDB) {
  auto f = Open();
  EXPECT_EQ(Ndjson(*f->session,
                   "SELECT INTERVAL '1 year 2 months 3 days 04:05:06.789' a, "
                   "INTERVAL '-1 month' b, INTERVAL '0 seconds' c, INTERVAL '36 hours' d, "
                   "-INTERVAL '1 day 00:00:01' e"),
            R"({"a":"1 year 2 months 3 days 04:05:06.789","b":"-1 month","c":"00:00:00",)"
            R"("d":"36:00:00","e":"-1 day -00:00:01"})"
            "\n");
  ExpectSameTextAsDuckDB(
      *f->session,
      "SELECT v, v::VARCHAR FROM (SELECT "
      "(CASE WHEN i % 4 = 1 THEN INTERVAL 0 DAY ELSE to_months((hash(i) % 2001)::INTEGER - 1000) "
      "END) + "
      "(CASE WHEN i % 4 = 2 THEN INTERVAL 0 DAY ELSE to_days((hash(i + 1) % 200001)::INTEGER - "
      "100000) END) + "
      "(CASE WHEN i % 4 = 3 THEN INTERVAL 0 DAY ELSE "
      "to_microseconds((hash(i + 2) % 2000000000000000)::BIGINT - 1000000000000000) END) AS v "
      "FROM range(2000) t(i))");
}

TEST(FormatTest, UuidEnumAndJsonColumns) {
  auto f = Open();
  EXPECT_EQ(Ndjson(*f->session,
                   "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID u, "
                   "'sad'::ENUM('happy', 'sad') e, NULL::ENUM('x') en, "
                   "'{\"a\": [1, 2]}'::JSON j"),
            R"({"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","e":"sad","en":null,)"
            R"("j":"{\"a\": [1, 2]}"})"
            "\n");
}

TEST(FormatTest, WideEnumsUseWiderIndices) {
  auto f = Open();
  ASSERT_OK(f->db->ExecuteTrusted(
      "CREATE TYPE wide_enum AS ENUM (SELECT 'v' || range FROM range(70000))"));
  const std::string csv =
      Csv(*f->session, "SELECT ('v' || (i * 9973 % 70000))::wide_enum AS e FROM range(3) t(i)");
  EXPECT_EQ(csv, "e\nv0\nv9973\nv19946\n");
}

TEST(FormatTest, NestedTypes) {
  auto f = Open();
  const std::string sql =
      "SELECT [1, NULL, 3] l, NULL::INT[] ln, []::INT[] le, [[1], [], NULL, [2, 3]] ll, "
      "[1, 2, NULL]::INTEGER[3] arr, ['a', NULL, 'c']::VARCHAR[3] arrs, "
      "{'x': 1, 'y': 'two', 'z': NULL} st, NULL::STRUCT(x INT) stn, "
      "{'inner': {'v': [1, 2]}} st2, MAP {'k': 1, 'l': NULL} m, MAP {1: 'a', 2: NULL} mi, "
      "MAP(['a'], [[1, 2]]) ml, NULL::MAP(VARCHAR, INT) mn, "
      "union_value(n := 7)::UNION(n INT, s VARCHAR) u1, "
      "union_value(s := 'str')::UNION(n INT, s VARCHAR) u2, NULL::UNION(n INT, s VARCHAR) u3, "
      "[{'a': MAP {'k': [1]}, 'b': NULL}] combo";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"l":[1,null,3],"ln":null,"le":[],"ll":[[1],[],null,[2,3]],"arr":[1,2,null],)"
            R"("arrs":["a",null,"c"],"st":{"x":1,"y":"two","z":null},"stn":null,)"
            R"("st2":{"inner":{"v":[1,2]}},"m":{"k":1,"l":null},)"
            R"("mi":[{"key":1,"value":"a"},{"key":2,"value":null}],"ml":{"a":[1,2]},"mn":null,)"
            R"("u1":7,"u2":"str","u3":null,"combo":[{"a":{"k":[1]},"b":null}]})"
            "\n");
  // CSV: nested values are their JSON text, quoted.
  EXPECT_EQ(Csv(*f->session, "SELECT [1, 2] l, {'a': 'x,y'} s, [] e, NULL::INT[] n"),
            "l,s,e,n\n\"[1,2]\",\"{\"\"a\"\":\"\"x,y\"\"}\",[],\n");
}

TEST(FormatTest, NullsOfEveryTypeAndInEveryPosition) {
  auto f = Open();
  const std::string sql =
      "SELECT i, CASE WHEN i % 2 = 0 THEN NULL ELSE i END::TINYINT a, "
      "CASE WHEN i % 3 = 0 THEN NULL ELSE i / 2 END::DOUBLE b, "
      "CASE WHEN i % 2 = 1 THEN NULL ELSE i END::DECIMAL(38,10) c, "
      "CASE WHEN i % 3 = 1 THEN NULL ELSE 's' || i END d, "
      "CASE WHEN i % 2 = 0 THEN NULL ELSE DATE '2024-01-01' + i::INTEGER END e, "
      "CASE WHEN i % 3 = 2 THEN NULL ELSE TIMESTAMPTZ '2024-01-01 00:00:00+00' END f, "
      "CASE WHEN i % 2 = 0 THEN NULL ELSE INTERVAL 1 DAY END g, "
      "CASE WHEN i % 3 = 0 THEN NULL ELSE [i, NULL] END h, "
      "CASE WHEN i % 2 = 1 THEN NULL ELSE {'k': CASE WHEN i = 0 THEN NULL ELSE i END} END k, "
      "NULL::BLOB z FROM range(4) t(i)";
  EXPECT_EQ(Ndjson(*f->session, sql),
            R"({"i":0,"a":null,"b":null,"c":0.0000000000,"d":"s0","e":null,)"
            R"("f":"2024-01-01T00:00:00Z","g":null,"h":null,"k":{"k":null},"z":null})"
            "\n"
            R"({"i":1,"a":1,"b":0.5,"c":null,"d":null,"e":"2024-01-02","f":"2024-01-01T00:00:00Z",)"
            R"("g":"1 day","h":[1,null],"k":null,"z":null})"
            "\n"
            R"({"i":2,"a":null,"b":1,"c":2.0000000000,"d":"s2","e":null,"f":null,"g":null,)"
            R"("h":[2,null],"k":{"k":2},"z":null})"
            "\n"
            R"({"i":3,"a":3,"b":null,"c":null,"d":"s3","e":"2024-01-04",)"
            R"("f":"2024-01-01T00:00:00Z","g":"1 day","h":null,"k":null,"z":null})"
            "\n");
  EXPECT_EQ(Csv(*f->session, sql),
            "i,a,b,c,d,e,f,g,h,k,z\n"
            "0,,,0.0000000000,s0,,2024-01-01T00:00:00Z,,,\"{\"\"k\"\":null}\",\n"
            "1,1,0.5,,,2024-01-02,2024-01-01T00:00:00Z,1 day,\"[1,null]\",,\n"
            "2,,1,2.0000000000,s2,,,,\"[2,null]\",\"{\"\"k\"\":2}\",\n"
            "3,3,,,s3,2024-01-04,2024-01-01T00:00:00Z,1 day,,,\n");
}

// ---------------------------------------------------------------------------------------
// Output framing: JSON arrays, NDJSON lines, CSV rules, tables.

TEST(FormatTest, JsonArrayAndNdjsonSpanBatchBoundaries) {
  auto f = Open();
  const std::string sql = "SELECT range AS i, 'r' || range AS s FROM range(5000)";
  std::string json = "[";
  std::string ndjson;
  std::string csv = "i,s\n";
  for (int i = 0; i < 5000; ++i) {
    const std::string row = StrCat("{\"i\":", i, ",\"s\":\"r", i, "\"}");
    json += StrCat(i ? "," : "", row);
    ndjson += StrCat(row, "\n");
    csv += StrCat(i, ",r", i, "\n");
  }
  json += "]\n";
  ASSERT_OK_AND_ASSIGN(std::string json_out, Render(*f->session, sql, TextFormat::kJson));
  EXPECT_EQ(json_out, json);
  EXPECT_EQ(Ndjson(*f->session, sql), ndjson);
  EXPECT_EQ(Csv(*f->session, sql), csv);

  // Written batch by batch into a reused buffer, as a transport would.
  ASSERT_OK_AND_ASSIGN(auto stream, f->session->Query(sql));
  ASSERT_OK_AND_ASSIGN(auto writer, RowWriter::Make(TextFormat::kJson, stream->schema()));
  std::string buffer;
  std::string sent;
  ASSERT_OK(writer->Begin(&buffer));
  int batches = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    ++batches;
    ASSERT_OK(writer->Write(*batch, &buffer));
    sent += buffer;
    buffer.clear();
  }
  ASSERT_OK(writer->End(&buffer));
  sent += buffer;
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(writer->rows(), 5000);
  EXPECT_EQ(sent, json);
}

TEST(FormatTest, EmptyResults) {
  auto f = Open();
  const std::string sql = "SELECT 1 AS a, 'x' AS b WHERE false";
  ASSERT_OK_AND_ASSIGN(std::string json, Render(*f->session, sql, TextFormat::kJson));
  EXPECT_EQ(json, "[]\n");
  EXPECT_EQ(Ndjson(*f->session, sql), "");
  EXPECT_EQ(Csv(*f->session, sql), "a,b\n");
  EXPECT_EQ(Table(*f->session, sql), " a | b\n---+---\n(0 rows)\n");
}

TEST(FormatTest, CsvQuotesOnlyWhatItMustAndHonoursOptions) {
  auto f = Open();
  const std::string sql =
      "SELECT 'plain' AS \"a b\", 'has,comma' AS \"c,d\", 'has\"quote' AS \"e\"\"f\", "
      "'cr' || chr(13) AS g, 'lf' || chr(10) AS h, ' spaced ' AS i, 'semi;colon' AS j, "
      "NULL::VARCHAR AS k, '' AS l";
  EXPECT_EQ(Csv(*f->session, sql),
            "a b,\"c,d\",\"e\"\"f\",g,h,i,j,k,l\n"
            "plain,\"has,comma\",\"has\"\"quote\",\"cr\r\",\"lf\n\", spaced ,semi;colon,,\"\"\n");
  TextOptions options;
  options.csv_delimiter = ';';
  options.csv_header = false;
  EXPECT_EQ(Csv(*f->session, sql, options),
            "plain;has,comma;\"has\"\"quote\";\"cr\r\";\"lf\n\"; spaced ;\"semi;colon\";;\"\"\n");
  options.csv_delimiter = '\t';
  EXPECT_EQ(Csv(*f->session, "SELECT 'a' || chr(9) || 'b' x, 2 y", options), "\"a\tb\"\t2\n");
}

TEST(FormatTest, TableAlignsColumnsAndCountsRows) {
  auto f = Open();
  EXPECT_EQ(Table(*f->session,
                  "SELECT * FROM (VALUES (1, 'a', 1.5::DOUBLE), (NULL, 'h\xC3\xA9llo', NULL), "
                  "(-10, NULL, 2.25)) t(id, name, x)"),
            "  id  | name  |  x\n"
            "------+-------+------\n"
            "    1 | a     |  1.5\n"
            " NULL | h\xC3\xA9llo | NULL\n"
            "  -10 | NULL  | 2.25\n"
            "(3 rows)\n");
  // East Asian characters take two columns; control characters are escaped.
  EXPECT_EQ(Table(*f->session,
                  "SELECT * FROM (VALUES ('\xE6\x97\xA5\xE6\x9C\xAC', [1]), "
                  "('a' || chr(10) || 'b', NULL)) t(s, l)"),
            "  s   |  l\n"
            "------+------\n"
            " \xE6\x97\xA5\xE6\x9C\xAC | [1]\n"
            " a\\nb | NULL\n"
            "(2 rows)\n");
  EXPECT_EQ(Table(*f->session, "SELECT 42 AS answer"), " answer\n--------\n     42\n(1 row)\n");
}

TEST(FormatTest, TableShowsTheFirstRowsAndCountsAll) {
  auto f = Open();
  TextOptions options;
  options.table_max_rows = 2;
  EXPECT_EQ(Table(*f->session, "SELECT range AS n FROM range(5000)", options),
            " n\n---\n 0\n 1\n(5000 rows, 2 shown)\n");
  options.table_max_rows = 0;
  EXPECT_EQ(Table(*f->session, "SELECT range AS n FROM range(3)", options),
            " n\n---\n(3 rows, 0 shown)\n");
}

// ---------------------------------------------------------------------------------------
// Round trips through DuckDB's own JSON and CSV readers.

TEST(FormatTest, NdjsonAndCsvReadBackIntoDuckDBUnchanged) {
  auto f = Open();
  const std::string source =
      "SELECT i, "
      "'q\"\\' || chr(1 + (i % 31)::INTEGER) || chr(128 + (hash(i) % 50000)::INTEGER) || "
      "chr(128512 + (i % 80)::INTEGER) || ',' || chr(10) || chr(13) AS s, "
      "(((hash(i) % 2000000000000)::BIGINT - 1000000000000)::VARCHAR || '.' || "
      "lpad((hash(i + 5) % 1000)::VARCHAR, 3, '0'))::DECIMAL(38,3) AS d, "
      "TIMESTAMP '1900-01-01' + to_microseconds((hash(i) % 7000000000000000)::BIGINT) AS ts, "
      "unhex(md5(i::VARCHAR)) AS b, "
      "[i::INTEGER, NULL, 7] AS l, {'a': i::INTEGER, 'b': 'x' || i} AS st, "
      "to_days((i % 40)::INTEGER) + to_microseconds(i * 1000001) AS iv "
      "FROM range(3000) t(i)";
  const std::string columns =
      "{i: 'BIGINT', s: 'VARCHAR', d: 'DECIMAL(38,3)', ts: 'TIMESTAMP', b: 'VARCHAR', "
      "l: 'INTEGER[]', st: 'STRUCT(a INTEGER, b VARCHAR)', iv: 'INTERVAL'}";
  const std::string differences =
      " r JOIN (" + source +
      ") o USING (i) WHERE r.s IS DISTINCT FROM o.s OR r.d IS DISTINCT FROM o.d "
      "OR r.ts IS DISTINCT FROM o.ts OR r.l IS DISTINCT FROM o.l OR r.st IS DISTINCT FROM o.st "
      "OR r.iv IS DISTINCT FROM o.iv";

  ASSERT_OK_AND_ASSIGN(std::string ndjson, Render(*f->session, source, TextFormat::kNdjson));
  const std::string ndjson_path = (f->data.path() / "out.ndjson").string();
  WriteFile(ndjson_path, ndjson);
  EXPECT_EQ(Csv(*f->session, "SELECT count(*) AS n FROM read_ndjson(" +
                                 engine::QuoteString(ndjson_path) + ", columns = " + columns + ")"),
            "n\n3000\n");
  EXPECT_EQ(Csv(*f->session, "SELECT count(*) AS n FROM read_ndjson(" +
                                 engine::QuoteString(ndjson_path) + ", columns = " + columns + ")" +
                                 differences + " OR from_base64(r.b) <> o.b"),
            "n\n0\n");

  ASSERT_OK_AND_ASSIGN(std::string csv, Render(*f->session, source, TextFormat::kCsv));
  const std::string csv_path = (f->data.path() / "out.csv").string();
  WriteFile(csv_path, csv);
  // The CSV has \x escapes for blobs (DuckDB's BLOB text) and JSON text for nested values.
  const std::string csv_columns =
      "{i: 'BIGINT', s: 'VARCHAR', d: 'DECIMAL(38,3)', ts: 'TIMESTAMP', b: 'BLOB', "
      "l: 'VARCHAR', st: 'VARCHAR', iv: 'INTERVAL'}";
  EXPECT_EQ(Csv(*f->session, "SELECT count(*) AS n FROM read_csv(" + engine::QuoteString(csv_path) +
                                 ", header = true, delim = ',', quote = '\"', escape = '\"', "
                                 "allow_quoted_nulls = false, columns = " +
                                 csv_columns + ") r JOIN (" + source +
                                 ") o USING (i) WHERE r.s IS DISTINCT FROM o.s OR "
                                 "r.d IS DISTINCT FROM o.d OR r.ts IS DISTINCT FROM o.ts OR "
                                 "r.b IS DISTINCT FROM o.b OR r.iv IS DISTINCT FROM o.iv OR "
                                 "r.l::JSON::INTEGER[] IS DISTINCT FROM o.l OR "
                                 "json_extract_string(r.st, '$.b') IS DISTINCT FROM o.st.b"),
            "n\n0\n");
}

// ---------------------------------------------------------------------------------------
// Offsets: sliced batches and children.

TEST(FormatTest, SlicedDuckDBBatchesRespectEveryOffset) {
  auto f = Open();
  ASSERT_OK_AND_ASSIGN(
      auto stream,
      f->session->Query("SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'v' || i END AS s, "
                        "CASE WHEN i % 4 = 0 THEN NULL ELSE [i, i + 1] END AS l, "
                        "CASE WHEN i % 5 = 0 THEN NULL ELSE {'a': i} END AS st "
                        "FROM range(20) t(i)"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedArray batch, stream->Next());
  ASSERT_EQ(batch->length, 20);
  auto expected_rows = [](int from, int to) {
    std::string out;
    for (int i = from; i < to; ++i) {
      out +=
          StrCat("{\"i\":", i, ",\"s\":", i % 3 == 0 ? std::string("null") : StrCat("\"v", i, "\""),
                 ",\"l\":", i % 4 == 0 ? std::string("null") : StrCat("[", i, ",", i + 1, "]"),
                 ",\"st\":", i % 5 == 0 ? std::string("null") : StrCat("{\"a\":", i, "}"), "}\n");
    }
    return out;
  };

  // The batch itself sliced: offset 5, 10 rows.
  ArrowArray sliced = *batch;
  sliced.offset = 5;
  sliced.length = 10;
  sliced.release = NoReleaseArray;
  ASSERT_OK_AND_ASSIGN(std::string out,
                       WriteBatches(TextFormat::kNdjson, stream->schema(), {&sliced}));
  EXPECT_EQ(out, expected_rows(5, 15));

  // Each column sliced by 3 and the batch by 2: rows start at 5 again.
  std::vector<ArrowArray> columns(batch->n_children);
  std::vector<ArrowArray*> column_pointers;
  for (int64_t k = 0; k < batch->n_children; ++k) {
    columns[k] = *batch->children[k];
    columns[k].offset += 3;
    columns[k].length -= 3;
    columns[k].release = NoReleaseArray;
    column_pointers.push_back(&columns[k]);
  }
  ArrowArray both = *batch;
  both.children = column_pointers.data();
  both.offset = 2;
  both.length = 13;
  both.release = NoReleaseArray;
  ASSERT_OK_AND_ASSIGN(out, WriteBatches(TextFormat::kNdjson, stream->schema(), {&both}));
  EXPECT_EQ(out, expected_rows(5, 18));

  // A batch longer than its sliced children is refused.
  both.length = 16;
  EXPECT_STATUS(WriteBatches(TextFormat::kNdjson, stream->schema(), {&both}),
                StatusCode::kInvalidArgument, "needs 18");
}

TEST(FormatTest, HandBuiltSlicesWithValidityBitmaps) {
  Arrow arrow;
  // int32 values 10..19, slots 4 and 7 null; the column starts at 3, the batch at 1.
  ArrowArray* ints = arrow.Array(
      7,
      {arrow.Bits("1111011011"), arrow.Values<int32_t>({10, 11, 12, 13, 14, 15, 16, 17, 18, 19})},
      {}, 3);
  ArrowArray* batch = arrow.Array(4, {nullptr}, {ints}, 1);
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      WriteBatches(TextFormat::kNdjson, *arrow.Batch(arrow.Schema("i", "x")), {batch}));
  EXPECT_EQ(out, "{\"x\":null}\n{\"x\":15}\n{\"x\":16}\n{\"x\":null}\n");

  // Booleans read bits at an offset too.
  ArrowArray* bools = arrow.Array(4, {arrow.Bits("111110111"), arrow.Bits("000001101")}, {}, 5);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("b", "b"), bools, 4),
            "{\"b\":null}\n{\"b\":true}\n{\"b\":false}\n{\"b\":true}\n");

  // A null struct is null whatever its children hold.
  ArrowArray* child = arrow.Array(3, {nullptr, arrow.Values<int64_t>({1, 2, 3})});
  ArrowArray* structs = arrow.Array(3, {arrow.Bits("101")}, {child});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("+s", "s", {arrow.Schema("l", "a")}), structs, 3),
            "{\"s\":{\"a\":1}}\n{\"s\":null}\n{\"s\":{\"a\":3}}\n");
  // A record batch with a null row writes every column as null.
  ArrowArray* null_row_batch = arrow.Array(2, {arrow.Bits("01")}, {child});
  ASSERT_OK_AND_ASSIGN(out, WriteBatches(TextFormat::kNdjson, *arrow.Batch(arrow.Schema("l", "a")),
                                         {null_row_batch}));
  EXPECT_EQ(out, "{\"a\":null}\n{\"a\":2}\n");
}

// ---------------------------------------------------------------------------------------
// Types and layouts DuckDB does not export by default.

TEST(FormatTest, StringLayouts) {
  Arrow arrow;
  // large_utf8 with an offset.
  ArrowArray* large =
      arrow.Array(2, {nullptr, arrow.Values<int64_t>({0, 1, 3, 6}), arrow.Bytes("abbccc")}, {}, 1);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("U", "s"), large, 2),
            "{\"s\":\"bb\"}\n{\"s\":\"ccc\"}\n");
  // utf8_view: inline (<= 12 bytes) and in two variadic buffers, one slot null.
  const std::string long1 = "a string longer than twelve";
  const std::string long2 = "another long \"quoted\" string";
  const std::string buffer0 = "xx" + long1;
  const std::string views = arrow.View("short") + arrow.View(long1, 0, 2) + arrow.View("") +
                            arrow.View(long2, 1, 0) + arrow.View("exactly12chr");
  const std::vector<int64_t> sizes = {static_cast<int64_t>(buffer0.size()),
                                      static_cast<int64_t>(long2.size())};
  ArrowArray* utf8_views = arrow.Array(
      5, {arrow.Bits("11011"), arrow.Bytes(views), arrow.Bytes(buffer0), arrow.Bytes(long2),
          arrow.Bytes(std::string_view(reinterpret_cast<const char*>(sizes.data()), 16))});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("vu", "v"), utf8_views, 5),
            "{\"v\":\"short\"}\n{\"v\":\"a string longer than twelve\"}\n{\"v\":null}\n"
            "{\"v\":\"another long \\\"quoted\\\" string\"}\n{\"v\":\"exactly12chr\"}\n");
  // binary_view with no variadic buffers (only the sizes buffer), offset 1.
  const std::string binary_views = arrow.View("skip") + arrow.View(std::string("\x00\xff", 2));
  ArrowArray* bin_views = arrow.Array(
      1, {nullptr, arrow.Bytes(binary_views), arrow.Bytes(std::string(8, '\0'))}, {}, 1);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("vz", "b"), bin_views, 1), "{\"b\":\"AP8=\"}\n");
  // large_binary; fixed_size_binary.
  ArrowArray* large_binary =
      arrow.Array(1, {nullptr, arrow.Values<int64_t>({0, 3}), arrow.Bytes("abc")});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("Z", "b"), large_binary, 1), "{\"b\":\"YWJj\"}\n");
  ArrowArray* fixed = arrow.Array(2, {nullptr, arrow.Bytes("abcdef")}, {}, 1);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("w:2", "f"), fixed, 2),
            "{\"f\":\"Y2Q=\"}\n{\"f\":\"ZWY=\"}\n");
  // Invalid UTF-8 in a utf8 array is repaired.
  ArrowArray* bad = arrow.Array(1, {nullptr, arrow.Values<int32_t>({0, 3}),
                                    arrow.Bytes("a\xff"
                                                "b")});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("u", "s"), bad, 1),
            "{\"s\":\"a\xEF\xBF\xBD"
            "b\"}\n");
}

TEST(FormatTest, ListLayouts) {
  Arrow arrow;
  // The child (int16, offset 2) holds 0..7 from its slot 0; list offsets index the child.
  auto child = [&] {
    return arrow.Array(8, {nullptr, arrow.Values<int16_t>({-1, -1, 0, 1, 2, 3, 4, 5, 6, 7})}, {},
                       2);
  };
  ArrowSchema* item = arrow.Schema("s", "item");
  // list with offset 1: lists [1,2], [], null, [3..5].
  ArrowArray* list = arrow.Array(
      4, {arrow.Bits("11101"), arrow.Values<int32_t>({0, 1, 3, 3, 3, 6})}, {child()}, 1);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("+l", "l", {item}), list, 4),
            "{\"l\":[1,2]}\n{\"l\":[]}\n{\"l\":null}\n{\"l\":[3,4,5]}\n");
  ArrowArray* large_list = arrow.Array(1, {nullptr, arrow.Values<int64_t>({6, 8})}, {child()});
  EXPECT_EQ(
      ColumnNdjson(arrow, arrow.Schema("+L", "l", {arrow.Schema("s", "item")}), large_list, 1),
      "{\"l\":[6,7]}\n");
  // list_view: out of order and overlapping.
  ArrowArray* list_view = arrow.Array(
      3, {nullptr, arrow.Values<int32_t>({5, 0, 1}), arrow.Values<int32_t>({3, 2, 0})}, {child()});
  EXPECT_EQ(
      ColumnNdjson(arrow, arrow.Schema("+vl", "l", {arrow.Schema("s", "item")}), list_view, 3),
      "{\"l\":[5,6,7]}\n{\"l\":[0,1]}\n{\"l\":[]}\n");
  ArrowArray* large_list_view =
      arrow.Array(1, {nullptr, arrow.Values<int64_t>({2}), arrow.Values<int64_t>({2})}, {child()});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("+vL", "l", {arrow.Schema("s", "item")}),
                         large_list_view, 1),
            "{\"l\":[2,3]}\n");
  // fixed_size_list of 3 with offset 1: child slots 3..5.
  ArrowArray* fixed = arrow.Array(1, {nullptr}, {child()}, 1);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("+w:3", "l", {arrow.Schema("s", "item")}), fixed, 1),
            "{\"l\":[3,4,5]}\n");
}

TEST(FormatTest, NumbersDuckDBDoesNotExport) {
  Arrow arrow;
  // float16: 1, -2, 0.1, NaN, inf.
  ArrowArray* halves =
      arrow.Array(5, {nullptr, arrow.Values<uint16_t>({0x3c00, 0xc000, 0x2e66, 0x7e00, 0x7c00})});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("e", "h"), halves, 5),
            "{\"h\":1}\n{\"h\":-2}\n{\"h\":0.1}\n{\"h\":null}\n{\"h\":null}\n");
  // decimal32 / decimal64 / decimal256.
  ArrowArray* d32 = arrow.Array(2, {nullptr, arrow.Values<int32_t>({-12345, 5})});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("d:9,3,32", "d"), d32, 2),
            "{\"d\":-12.345}\n{\"d\":0.005}\n");
  ArrowArray* d64 = arrow.Array(1, {nullptr, arrow.Values<int64_t>({-1})});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("d:18,2,64", "d"), d64, 1), "{\"d\":-0.01}\n");
  // 10^40 + 1 as decimal256 with scale 5.
  const uint64_t limbs[4] = {0xb9f5610000000001ULL, 0x6329f1c35ca4bfabULL, 0x1dULL, 0};
  ArrowArray* d256 = arrow.Array(
      1, {nullptr, arrow.Bytes(std::string_view(reinterpret_cast<const char*>(limbs), 32))});
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("d:76,5,256", "d"), d256, 1),
            "{\"d\":100000000000000000000000000000000000.00001}\n");
  // A DuckDB UHUGEINT (opaque extension) and a UUID (arrow.uuid extension).
  std::string bytes(16, '\xff');
  ArrowArray* uhuge = arrow.Array(1, {nullptr, arrow.Bytes(bytes)});
  EXPECT_EQ(
      ColumnNdjson(arrow,
                   arrow.Schema("w:16", "u", {}, nullptr,
                                Metadata({{"ARROW:extension:name", "arrow.opaque"},
                                          {"ARROW:extension:metadata",
                                           R"({"type_name":"uhugeint","vendor_name":"DuckDB"})"}})),
                   uhuge, 1),
      "{\"u\":340282366920938463463374607431768211455}\n");
  const std::string uuid_bytes("\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11",
                               16);
  ArrowArray* uuid = arrow.Array(1, {nullptr, arrow.Bytes(uuid_bytes)});
  EXPECT_EQ(ColumnNdjson(arrow,
                         arrow.Schema("w:16", "u", {}, nullptr,
                                      Metadata({{"ARROW:extension:name", "arrow.uuid"}})),
                         uuid, 1),
            "{\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}\n");
}

TEST(FormatTest, TemporalTypesDuckDBDoesNotExport) {
  Arrow arrow;
  auto one = [&](const char* format, const void* values) {
    return ColumnNdjson(arrow, arrow.Schema(format, "v"), arrow.Array(1, {nullptr, values}), 1);
  };
  EXPECT_EQ(one("tdm", arrow.Values<int64_t>({-86400000})), "{\"v\":\"1969-12-31\"}\n");
  EXPECT_EQ(one("tts", arrow.Values<int32_t>({3723})), "{\"v\":\"01:02:03\"}\n");
  EXPECT_EQ(one("ttm", arrow.Values<int32_t>({3723004})), "{\"v\":\"01:02:03.004\"}\n");
  EXPECT_EQ(one("ttn", arrow.Values<int64_t>({3723000000001})), "{\"v\":\"01:02:03.000000001\"}\n");
  EXPECT_EQ(one("tsn:+01:00", arrow.Values<int64_t>({-1})),
            "{\"v\":\"1969-12-31T23:59:59.999999999Z\"}\n");
  EXPECT_EQ(one("tDs", arrow.Values<int64_t>({-90061})), "{\"v\":\"-25:01:01\"}\n");
  EXPECT_EQ(one("tDm", arrow.Values<int64_t>({1500})), "{\"v\":\"00:00:01.5\"}\n");
  EXPECT_EQ(one("tDu", arrow.Values<int64_t>({1})), "{\"v\":\"00:00:00.000001\"}\n");
  EXPECT_EQ(one("tDn", arrow.Values<int64_t>({0})), "{\"v\":\"00:00:00\"}\n");
  EXPECT_EQ(one("tiM", arrow.Values<int32_t>({-13})), "{\"v\":\"-1 year -1 month\"}\n");
  EXPECT_EQ(one("tiD", arrow.Values<int32_t>({2, 3000})), "{\"v\":\"2 days 00:00:03\"}\n");
}

TEST(FormatTest, UnionsDictionariesRunEndsAndNullColumns) {
  Arrow arrow;
  // Dense union with type codes 5 (int32) and 7 (utf8); offset 1.
  ArrowArray* ints = arrow.Array(2, {arrow.Bits("10"), arrow.Values<int32_t>({42, 0})});
  ArrowArray* strs = arrow.Array(1, {nullptr, arrow.Values<int32_t>({0, 2}), arrow.Bytes("hi")});
  ArrowArray* dense =
      arrow.Array(3, {arrow.Values<int8_t>({7, 5, 7, 5}), arrow.Values<int32_t>({0, 0, 0, 1})},
                  {ints, strs}, 1);
  EXPECT_EQ(
      ColumnNdjson(arrow,
                   arrow.Schema("+ud:5,7", "u", {arrow.Schema("i", "n"), arrow.Schema("u", "s")}),
                   dense, 3),
      "{\"u\":42}\n{\"u\":\"hi\"}\n{\"u\":null}\n");
  // Sparse union, offset 1: members are read at the union's slot.
  ArrowArray* sparse_ints = arrow.Array(3, {nullptr, arrow.Values<int32_t>({1, 2, 3})});
  ArrowArray* sparse_bools = arrow.Array(3, {nullptr, arrow.Bits("101")});
  ArrowArray* sparse =
      arrow.Array(2, {arrow.Values<int8_t>({0, 1, 0})}, {sparse_ints, sparse_bools}, 1);
  EXPECT_EQ(
      ColumnNdjson(arrow,
                   arrow.Schema("+us:0,1", "u", {arrow.Schema("i", "a"), arrow.Schema("b", "b")}),
                   sparse, 2),
      "{\"u\":false}\n{\"u\":3}\n");
  // Dictionary with signed int8 indices, a null index and an offset.
  ArrowArray* dictionary =
      arrow.Array(3, {nullptr, arrow.Values<int32_t>({0, 3, 6, 9}), arrow.Bytes("redgreblu")});
  ArrowArray* indices =
      arrow.Array(3, {arrow.Bits("1101"), arrow.Values<int8_t>({0, 2, 1, 0})}, {}, 1, dictionary);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("c", "color", {}, arrow.Schema("u", "")), indices, 3),
            "{\"color\":\"blu\"}\n{\"color\":null}\n{\"color\":\"red\"}\n");
  // Run-end encoded: runs end at 2, 3, 6; the array starts at logical slot 1.
  ArrowArray* run_ends = arrow.Array(3, {nullptr, arrow.Values<int32_t>({2, 3, 6})});
  ArrowArray* run_values = arrow.Array(3, {arrow.Bits("101"), arrow.Values<int64_t>({7, 8, 9})});
  ArrowArray* ree = arrow.Array(4, {}, {run_ends, run_values}, 1);
  EXPECT_EQ(ColumnNdjson(arrow,
                         arrow.Schema("+r", "r",
                                      {arrow.Schema("i", "run_ends"), arrow.Schema("l", "values")}),
                         ree, 4),
            "{\"r\":7}\n{\"r\":null}\n{\"r\":9}\n{\"r\":9}\n");
  // The null type.
  ArrowArray* nulls = arrow.Array(2, {}, {}, 0, nullptr, 2);
  EXPECT_EQ(ColumnNdjson(arrow, arrow.Schema("n", "z"), nulls, 2), "{\"z\":null}\n{\"z\":null}\n");
  auto csv =
      WriteBatches(TextFormat::kCsv, *arrow.Batch(arrow.Schema("n", "z")), {arrow.Batch(nulls, 2)});
  ASSERT_OK(csv);
  EXPECT_EQ(*csv, "z\n\n\n");
}

// ---------------------------------------------------------------------------------------
// Errors: bad schemas, malformed arrays, misuse.

TEST(FormatTest, UnsupportedSchemasAreClearErrors) {
  Arrow arrow;
  auto make = [&](ArrowSchema* column) {
    return RowWriter::Make(TextFormat::kJson, *arrow.Batch(column)).status();
  };
  EXPECT_STATUS(make(arrow.Schema("+q", "x")), StatusCode::kInvalidArgument,
                "format: column 'x': unsupported type '+q'");
  EXPECT_STATUS(make(arrow.Schema("w:abc", "x")), StatusCode::kInvalidArgument,
                "column 'x': unsupported type 'w:abc'");
  EXPECT_STATUS(
      make(arrow.Schema("+s", "outer", {arrow.Schema("+l", "inner", {arrow.Schema("?", "item")})})),
      StatusCode::kInvalidArgument, "column 'outer.inner[]': unsupported type '?'");
  EXPECT_STATUS(make(arrow.Schema("+l", "x")), StatusCode::kInvalidArgument,
                "list needs 1 child field(s), the schema has 0");
  EXPECT_STATUS(make(arrow.Schema("g", "x", {}, arrow.Schema("u", ""))),
                StatusCode::kInvalidArgument, "dictionary indices must be integers");
  EXPECT_STATUS(make(arrow.Schema("+m", "x", {arrow.Schema("i", "entries")})),
                StatusCode::kInvalidArgument, "map entries must be a struct");
  EXPECT_STATUS(
      make(arrow.Schema("+ud:1,1", "x", {arrow.Schema("i", "a"), arrow.Schema("i", "b")})),
      StatusCode::kInvalidArgument, "type code 1 repeats");
  EXPECT_STATUS(make(arrow.Schema("+r", "x", {arrow.Schema("g", "e"), arrow.Schema("i", "v")})),
                StatusCode::kInvalidArgument, "run ends must be");
  EXPECT_STATUS(make(arrow.Schema("i", "x", {arrow.Schema("i", "y")})),
                StatusCode::kInvalidArgument, "needs 0 child field(s)");
  EXPECT_STATUS(RowWriter::Make(TextFormat::kJson, *arrow.Schema("i", "x")),
                StatusCode::kInvalidArgument, "struct ('+s') of columns");
  ArrowSchema* deep = arrow.Schema("i", "leaf");
  for (int k = 0; k < 100; ++k) deep = arrow.Schema("+l", "l", {deep});
  EXPECT_STATUS(make(deep), StatusCode::kInvalidArgument, "nested deeper");
  // Options.
  TextOptions options;
  options.csv_delimiter = '"';
  EXPECT_STATUS(RowWriter::Make(TextFormat::kCsv, *arrow.Batch(arrow.Schema("i", "x")), options),
                StatusCode::kInvalidArgument, "CSV delimiter");
  options = {};
  options.table_max_rows = -1;
  EXPECT_STATUS(RowWriter::Make(TextFormat::kTable, *arrow.Batch(arrow.Schema("i", "x")), options),
                StatusCode::kInvalidArgument, "table_max_rows");
}

TEST(FormatTest, MalformedArraysAreRefusedBeforeAnythingIsWritten) {
  Arrow arrow;
  ArrowSchema* utf8 = arrow.Schema("u", "s");
  // Decreasing string offsets.
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, utf8,
          arrow.Array(2, {nullptr, arrow.Values<int32_t>({0, 5, 2}), arrow.Bytes("hello")}), 2),
      StatusCode::kInvalidArgument, "column 's': offset 2 at slot 2 < previous offset 5");
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, utf8,
          arrow.Array(1, {nullptr, arrow.Values<int32_t>({-1, 2}), arrow.Bytes("hello")}), 1),
      StatusCode::kInvalidArgument, "negative");
  // Strings with bytes but no data buffer.
  EXPECT_STATUS(
      ColumnWriteStatus(arrow, utf8,
                        arrow.Array(1, {nullptr, arrow.Values<int32_t>({0, 2}), nullptr}), 1),
      StatusCode::kInvalidArgument, "data buffer is null");
  // List offsets past the child's end.
  ArrowSchema* list = arrow.Schema("+l", "l", {arrow.Schema("i", "item")});
  ArrowArray* child = arrow.Array(2, {nullptr, arrow.Values<int32_t>({1, 2})});
  EXPECT_STATUS(
      ColumnWriteStatus(arrow, list,
                        arrow.Array(1, {nullptr, arrow.Values<int32_t>({0, 70})}, {child}), 1),
      StatusCode::kInvalidArgument, "column 'l': offset 70 at slot 1");
  // List views past the child's end.
  ArrowSchema* list_view = arrow.Schema("+vl", "l", {arrow.Schema("i", "item")});
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, list_view,
          arrow.Array(1, {nullptr, arrow.Values<int32_t>({1}), arrow.Values<int32_t>({2})},
                      {child}),
          1),
      StatusCode::kInvalidArgument, "outside the child's 2 slots");
  // Fixed-size lists needing more child slots than there are.
  EXPECT_STATUS(ColumnWriteStatus(arrow, arrow.Schema("+w:3", "l", {arrow.Schema("i", "item")}),
                                  arrow.Array(1, {nullptr}, {child}), 1),
                StatusCode::kInvalidArgument, "needs 1 lists of 3");
  // Dictionary index out of range.
  ArrowArray* dictionary =
      arrow.Array(1, {nullptr, arrow.Values<int32_t>({0, 1}), arrow.Bytes("a")});
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, arrow.Schema("C", "e", {}, arrow.Schema("u", "")),
          arrow.Array(2, {nullptr, arrow.Values<uint8_t>({0, 200})}, {}, 0, dictionary), 2),
      StatusCode::kInvalidArgument, "dictionary index 200 at slot 1");
  EXPECT_STATUS(ColumnWriteStatus(arrow, arrow.Schema("C", "e", {}, arrow.Schema("u", "")),
                                  arrow.Array(1, {nullptr, arrow.Values<uint8_t>({0})}), 1),
                StatusCode::kInvalidArgument, "has no dictionary");
  // Views pointing at a missing buffer or past a buffer's end.
  ArrowSchema* view = arrow.Schema("vu", "v");
  const std::string long_text = "more than twelve bytes";
  const int64_t size = static_cast<int64_t>(long_text.size());
  EXPECT_STATUS(
      ColumnWriteStatus(arrow, view,
                        arrow.Array(1, {nullptr, arrow.Bytes(arrow.View(long_text, 1, 0)),
                                        arrow.Bytes(long_text), arrow.Values<int64_t>({size})}),
                        1),
      StatusCode::kInvalidArgument, "refers to data buffer 1 of 1");
  EXPECT_STATUS(
      ColumnWriteStatus(arrow, view,
                        arrow.Array(1, {nullptr, arrow.Bytes(arrow.View(long_text, 0, 5)),
                                        arrow.Bytes(long_text), arrow.Values<int64_t>({size})}),
                        1),
      StatusCode::kInvalidArgument, "is outside data buffer 0 of 22 bytes");
  // Unions: unknown type id, dense offset past the member's end.
  ArrowSchema* dense = arrow.Schema("+ud:0", "u", {arrow.Schema("i", "a")});
  ArrowArray* member = arrow.Array(1, {nullptr, arrow.Values<int32_t>({1})});
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, dense,
          arrow.Array(1, {arrow.Values<int8_t>({3}), arrow.Values<int32_t>({0})}, {member}), 1),
      StatusCode::kInvalidArgument, "unknown type id 3");
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, dense,
          arrow.Array(1, {arrow.Values<int8_t>({0}), arrow.Values<int32_t>({1})}, {member}), 1),
      StatusCode::kInvalidArgument, "offset 1 at slot 0 is outside member 'a'");
  // Run ends that do not increase or do not cover the array.
  ArrowSchema* ree = arrow.Schema("+r", "r", {arrow.Schema("i", "e"), arrow.Schema("i", "v")});
  ArrowArray* values = arrow.Array(2, {nullptr, arrow.Values<int32_t>({1, 2})});
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, ree,
          arrow.Array(2, {}, {arrow.Array(2, {nullptr, arrow.Values<int32_t>({2, 2})}), values}),
          2),
      StatusCode::kInvalidArgument, "does not increase");
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, ree,
          arrow.Array(5, {}, {arrow.Array(2, {nullptr, arrow.Values<int32_t>({1, 4})}), values}),
          5),
      StatusCode::kInvalidArgument, "runs cover 4 slots");
  // Structural faults.
  ArrowSchema* ints = arrow.Schema("i", "x");
  EXPECT_STATUS(ColumnWriteStatus(arrow, ints, arrow.Array(1, {nullptr}), 1),
                StatusCode::kInvalidArgument, "array has 1 buffers, int32 has 2");
  EXPECT_STATUS(ColumnWriteStatus(arrow, ints, arrow.Array(1, {nullptr, nullptr}), 1),
                StatusCode::kInvalidArgument, "buffer 1 is null");
  EXPECT_STATUS(
      ColumnWriteStatus(
          arrow, ints, arrow.Array(1, {nullptr, arrow.Values<int32_t>({1})}, {}, 0, nullptr, 1), 1),
      StatusCode::kInvalidArgument, "null count 1 but no validity bitmap");
  EXPECT_STATUS(ColumnWriteStatus(arrow, ints,
                                  arrow.Array(1, {nullptr, arrow.Values<int32_t>({1})}, {}, -1), 1),
                StatusCode::kInvalidArgument, "bad length");
  EXPECT_STATUS(
      ColumnWriteStatus(arrow, ints, arrow.Array(1, {nullptr, arrow.Values<int32_t>({1})}), 2),
      StatusCode::kInvalidArgument, "record batch: child 'x' has 1 slots, needs 2");
  ArrowArray* released = arrow.Array(1, {nullptr, arrow.Values<int32_t>({1})});
  released->release = nullptr;
  EXPECT_STATUS(ColumnWriteStatus(arrow, ints, released, 1), StatusCode::kInvalidArgument,
                "released");
  // A batch with the wrong number of columns.
  auto writer = RowWriter::Make(TextFormat::kCsv, *arrow.Batch(ints));
  ASSERT_OK(writer);
  std::string out;
  ASSERT_OK((*writer)->Begin(&out));
  EXPECT_STATUS((*writer)->Write(*arrow.Array(0, {nullptr}), &out), StatusCode::kInvalidArgument,
                "array has 0 children, the schema 1");
  // The writer goes on after an error.
  ASSERT_OK((*writer)->Write(*arrow.Batch(arrow.Array(1, {nullptr, arrow.Values<int32_t>({5})}), 1),
                             &out));
  ASSERT_OK((*writer)->End(&out));
  EXPECT_EQ(out, "x\n5\n");
}

TEST(FormatTest, CallsOutOfOrderFail) {
  Arrow arrow;
  ASSERT_OK_AND_ASSIGN(auto writer,
                       RowWriter::Make(TextFormat::kJson, *arrow.Batch(arrow.Schema("i", "x"))));
  std::string out;
  ArrowArray* batch = arrow.Batch(arrow.Array(0, {nullptr, nullptr}), 0);
  EXPECT_STATUS(writer->Write(*batch, &out), StatusCode::kFailedPrecondition, "before Begin");
  EXPECT_STATUS(writer->End(&out), StatusCode::kFailedPrecondition, "before Begin");
  ASSERT_OK(writer->Begin(&out));
  EXPECT_STATUS(writer->Begin(&out), StatusCode::kFailedPrecondition, "twice");
  ASSERT_OK(writer->Write(*batch, &out));
  ASSERT_OK(writer->End(&out));
  EXPECT_STATUS(writer->Write(*batch, &out), StatusCode::kFailedPrecondition, "after End");
  EXPECT_EQ(out, "[]\n");
}

TEST(FormatTest, ParsesFormatNames) {
  ASSERT_OK_AND_ASSIGN(TextFormat json, ParseTextFormat("json"));
  EXPECT_EQ(json, TextFormat::kJson);
  ASSERT_OK_AND_ASSIGN(TextFormat ndjson, ParseTextFormat("NDJSON"));
  EXPECT_EQ(ndjson, TextFormat::kNdjson);
  ASSERT_OK_AND_ASSIGN(TextFormat jsonl, ParseTextFormat("jsonl"));
  EXPECT_EQ(jsonl, TextFormat::kNdjson);
  ASSERT_OK_AND_ASSIGN(TextFormat csv, ParseTextFormat("Csv"));
  EXPECT_EQ(csv, TextFormat::kCsv);
  ASSERT_OK_AND_ASSIGN(TextFormat table, ParseTextFormat("table"));
  EXPECT_EQ(table, TextFormat::kTable);
  EXPECT_STATUS(ParseTextFormat("xml"), StatusCode::kInvalidArgument,
                "unknown output format 'xml'");
  EXPECT_STATUS(ParseTextFormat(""), StatusCode::kInvalidArgument, "unknown output format");
  EXPECT_EQ(TextFormatName(TextFormat::kNdjson), "ndjson");
  EXPECT_EQ(ContentType(TextFormat::kJson), "application/json");
  EXPECT_EQ(ContentType(TextFormat::kNdjson), "application/x-ndjson");
  EXPECT_EQ(ContentType(TextFormat::kCsv), "text/csv; charset=utf-8");
}

}  // namespace
}  // namespace bridge::format
