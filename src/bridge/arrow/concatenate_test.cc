#include "bridge/arrow/concatenate.h"

#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bridge/arrow/data_type.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"

namespace bridge::ipc {
namespace {

using test_arrays::BitAt;
using test_arrays::Bits;
using test_arrays::Bytes;
using test_arrays::Chars;
using test_arrays::HasValidityBitmap;
using test_arrays::Int32s;
using test_arrays::LargeUtf8;
using test_arrays::LoadAt;
using test_arrays::MakeArray;
using test_arrays::MakeSchema;
using test_arrays::MaybeBuffer;
using test_arrays::released_test_arrays;
using test_arrays::TypeOf;
using test_arrays::Utf8;
using test_arrays::View;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------
// Reading arrays back, independently of the code under test

// Returns row `row` of `array` as text, a dictionary-encoded value marked "dict:".
std::string ValueAt(const ArrowSchema& schema, const ArrowArray& array, int64_t row) {
  return test_arrays::ValueAt(schema, array, row, "dict:");
}

// Every row of `array` as text; for a struct, one entry per column and row.
std::vector<std::string> Rows(const ArrowSchema& schema, const ArrowArray& array) {
  std::vector<std::string> rows;
  for (int64_t r = 0; r < array.length; ++r) rows.push_back(ValueAt(schema, array, r));
  return rows;
}

// Checks what Concatenate promises of its result, recursively: offset 0, 64-byte aligned
// buffers, exact null_count, no validity bitmap without nulls, owned children.
void ExpectNormalized(const ArrowSchema& schema, const ArrowArray& array,
                      const std::string& path = "<root>") {
  SCOPED_TRACE(path);
  const DataType t = TypeOf(schema);
  EXPECT_EQ(array.offset, 0);
  EXPECT_NE(array.release, nullptr);
  for (int64_t i = 0; i < array.n_buffers; ++i) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(array.buffers[i]) % 64, 0u) << "buffer " << i;
  }
  if (t.id == TypeId::kNull) {
    EXPECT_EQ(array.null_count, array.length);
  } else if (!HasValidityBitmap(schema, t)) {
    EXPECT_EQ(array.null_count, 0);
  } else if (array.buffers[0] == nullptr) {
    EXPECT_EQ(array.null_count, 0);
  } else {
    int64_t nulls = 0;
    for (int64_t i = 0; i < array.length; ++i) nulls += BitAt(array.buffers[0], i) ? 0 : 1;
    EXPECT_EQ(array.null_count, nulls);
    EXPECT_GT(nulls, 0) << "a validity bitmap without nulls";
  }
  ASSERT_EQ(array.n_children, schema.n_children);
  for (int64_t j = 0; j < array.n_children; ++j) {
    ExpectNormalized(*schema.children[j], *array.children[j],
                     path + "." + schema.children[j]->name);
  }
  ASSERT_EQ(array.dictionary != nullptr, schema.dictionary != nullptr);
  if (schema.dictionary != nullptr) {
    ExpectNormalized(*schema.dictionary, *array.dictionary, path + ".<dictionary>");
  }
}

// Concatenates `inputs` and checks the result row by row (column by column for structs)
// against the inputs. Returns the result.
OwnedArray ExpectConcatenates(const ArrowSchema& schema, std::vector<const ArrowArray*> inputs) {
  auto result = Concatenate(schema, inputs);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  const ArrowArray& out = **result;
  ExpectNormalized(schema, out);
  int64_t total = 0;
  for (const ArrowArray* in : inputs) total += in->length;
  EXPECT_EQ(out.length, total);
  const bool by_column = std::string_view(schema.format) == "+s";
  for (int64_t c = 0; c < (by_column ? schema.n_children : 1); ++c) {
    std::vector<std::string> expected;
    for (const ArrowArray* in : inputs) {
      for (int64_t r = 0; r < in->length; ++r) {
        expected.push_back(by_column
                               ? ValueAt(*schema.children[c], *in->children[c], in->offset + r)
                               : ValueAt(schema, *in, r));
      }
    }
    std::vector<std::string> actual;
    for (int64_t r = 0; r < out.length; ++r) {
      actual.push_back(by_column ? ValueAt(*schema.children[c], *out.children[c], r)
                                 : ValueAt(schema, out, r));
    }
    const std::string name = by_column ? schema.children[c]->name : "<array>";
    EXPECT_EQ(actual.size(), expected.size()) << name;
    if (actual.size() != expected.size()) continue;
    int failures = 0;
    for (size_t r = 0; r < actual.size() && failures < 5; ++r) {
      if (actual[r] != expected[r]) {
        ++failures;
        ADD_FAILURE() << "column " << name << ", row " << r << ": " << actual[r]
                      << " != " << expected[r];
      }
    }
  }
  return std::move(result).value();
}

// ---------------------------------------------------------------------------------------
// DuckDB as the source of real batches

struct DuckDB {
  testing::TempDir data;
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<engine::Session> session;
};

std::unique_ptr<DuckDB> OpenDuckDB() {
  auto f = std::make_unique<DuckDB>();
  engine::EngineOptions options;
  options.data_dir = f->data.path();
  options.threads = 2;
  auto db = engine::Database::Open(options);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return nullptr;
  f->db = std::move(db).value();
  auto session = f->db->Connect();
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return nullptr;
  f->session = std::move(session).value();
  return f;
}

struct Batches {
  std::unique_ptr<engine::BatchStream> stream;  // owns the schema
  std::vector<OwnedArray> arrays;

  const ArrowSchema& schema() const { return stream->schema(); }
  std::vector<const ArrowArray*> pointers() const {
    std::vector<const ArrowArray*> out;
    for (const auto& a : arrays) out.push_back(a.get());
    return out;
  }
};

Batches RunQuery(engine::Session& session, const std::string& sql) {
  Batches batches;
  auto stream = session.Query(sql);
  EXPECT_TRUE(stream.ok()) << stream.status();
  if (!stream.ok()) return batches;
  batches.stream = std::move(stream).value();
  for (;;) {
    auto batch = batches.stream->Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) break;
    batches.arrays.push_back(std::move(batch).value());
  }
  return batches;
}

// 5000 rows with a column of every type DuckDB exports, NULLs sprinkled in most. (A NULL
// literal comes out as an all-null int32 column; the null type is tested by hand.)
constexpr char kEveryTypeQuery[] = R"sql(
SELECT
  i AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i % 3 = 0 END AS b,
  CASE WHEN i % 7 = 1 THEN NULL ELSE (i % 127)::TINYINT END AS i8,
  CASE WHEN i % 7 = 2 THEN NULL ELSE (i * 3)::SMALLINT END AS i16,
  CASE WHEN i % 7 = 3 THEN NULL ELSE (i * 100003)::INTEGER END AS i32,
  CASE WHEN i % 7 = 4 THEN NULL ELSE i * 1000000007 END AS i64,
  (i % 200)::UTINYINT AS u8,
  CASE WHEN i % 7 = 5 THEN NULL ELSE (i * 7)::USMALLINT END AS u16,
  (i * 1000)::UINTEGER AS u32,
  CASE WHEN i % 7 = 6 THEN NULL ELSE (i * 3000000000000)::UBIGINT END AS u64,
  CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 7.0)::FLOAT END AS f32,
  CASE WHEN i % 5 = 1 THEN NULL ELSE (i / 3.0)::DOUBLE END AS f64,
  CASE WHEN i % 5 = 2 THEN NULL ELSE (i / 10.0)::DECIMAL(4, 1) END AS d4,
  (i * 1.25)::DECIMAL(9, 2) AS d9,
  CASE WHEN i % 5 = 3 THEN NULL ELSE (i * 1000.125)::DECIMAL(18, 3) END AS d18,
  (i * 12345678901.5)::DECIMAL(38, 10) AS d38,
  CASE WHEN i % 5 = 4 THEN NULL ELSE i::HUGEINT * 1000000000000000000000 END AS huge,
  CASE WHEN i % 11 = 0 THEN NULL ELSE DATE '2020-01-01' + i::INTEGER END AS dt,
  CASE WHEN i % 11 = 1 THEN NULL ELSE TIME '00:00:00' + INTERVAL (i) SECOND END AS tm,
  CASE WHEN i % 11 = 2 THEN NULL ELSE TIMESTAMP '2020-01-01' + INTERVAL (i) MINUTE END AS ts,
  (TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_S AS ts_s,
  (TIMESTAMP '2020-01-01' + INTERVAL (i) MILLISECOND)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP '2020-01-01' + INTERVAL (i) MICROSECOND)::TIMESTAMP_NS AS ts_ns,
  CASE WHEN i % 11 = 3 THEN NULL ELSE TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) HOUR END AS tstz,
  CASE WHEN i % 11 = 4 THEN NULL ELSE INTERVAL (i % 30) DAY + INTERVAL (i) MICROSECOND + INTERVAL (i % 5) MONTH END AS iv,
  CASE WHEN i % 13 = 0 THEN NULL ELSE 'str-' || i || repeat('x', (i % 20)::INTEGER) END AS s,
  CASE WHEN i % 13 = 1 THEN NULL ELSE ('blob' || i)::BLOB END AS bl,
  md5(i::VARCHAR)::UUID AS uid,
  CASE WHEN i % 13 = 2 THEN NULL ELSE (i % 256)::BIT END AS bits,
  NULL AS nothing,
  CASE WHEN i % 9 = 0 THEN NULL
       ELSE list_transform(range(i % 5), x -> CASE WHEN x = 2 THEN NULL ELSE x + i END) END AS li,
  list_transform(range(i % 3), x -> 'v' || x || '-' || i) AS ls,
  CAST(CASE WHEN i % 6 = 0 THEN NULL ELSE [i::INTEGER, (i * 2)::INTEGER, NULL] END AS INTEGER[3]) AS arr,
  CASE WHEN i % 8 = 0 THEN NULL
       ELSE {'a': i, 'b': CASE WHEN i % 3 = 0 THEN NULL ELSE 'n' || i END, 'c': [i, i + 1]} END AS st,
  CASE WHEN i % 10 = 0 THEN NULL ELSE MAP {'k' || (i % 3): i, 'z': i + 1} END AS mp,
  CASE WHEN i % 4 = 0 THEN NULL
       WHEN i % 4 = 1 THEN i::UNION(num BIGINT, str VARCHAR)
       ELSE ('u' || i)::UNION(num BIGINT, str VARCHAR) END AS un,
  CASE WHEN i % 7 = 5 THEN NULL
       ELSE (['red', 'green', 'blue'])[(i % 3) + 1]::ENUM('red', 'green', 'blue') END AS en,
  [{'x': i, 'y': [CASE WHEN i % 2 = 0 THEN NULL ELSE 'y' || i END]}] AS nested
FROM range(5000) t(i)
)sql";

TEST(ConcatenateTest, DuckDBBatchesOfEveryTypeConcatenateRowByRow) {
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  Batches batches = RunQuery(*duck->session, kEveryTypeQuery);
  ASSERT_GE(batches.arrays.size(), 3u);
  const ArrowSchema& schema = batches.schema();
  // The query covers the formats DuckDB exports.
  std::set<std::string> formats;
  for (int64_t c = 0; c < schema.n_children; ++c) formats.insert(schema.children[c]->format);
  for (const char* f : {"l",   "b",    "c",    "s",    "i",      "C",           "S",
                        "I",   "L",    "f",    "g",    "d:38,0", "d:4,1,128",   "tdD",
                        "ttu", "tsu:", "tss:", "tsm:", "tsn:",   "tsu:Etc/UTC", "tin",
                        "u",   "z",    "+l",   "+w:3", "+s",     "+m",          "+us:0,1"}) {
    EXPECT_TRUE(formats.count(f)) << "no column of format " << f;
  }
  OwnedArray out = ExpectConcatenates(schema, batches.pointers());
  ASSERT_TRUE(out.valid());
  EXPECT_EQ(out->length, 5000);
  // The ENUM's dictionaries are equal in every batch, so the result keeps one.
  int64_t enum_column = -1;
  for (int64_t c = 0; c < schema.n_children; ++c) {
    if (std::string_view(schema.children[c]->name) == "en") enum_column = c;
  }
  ASSERT_GE(enum_column, 0);
  ASSERT_NE(out->children[enum_column]->dictionary, nullptr);
  EXPECT_EQ(out->children[enum_column]->dictionary->length, 3);
  // The NULL column is all nulls; the id column has no validity bitmap.
  EXPECT_EQ(out->children[0]->buffers[0], nullptr);
  EXPECT_EQ(out->children[0]->null_count, 0);
}

TEST(ConcatenateTest, SlicedDuckDBBatchesKeepTheirOffsets) {
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  Batches batches = RunQuery(*duck->session, kEveryTypeQuery);
  ASSERT_GE(batches.arrays.size(), 3u);
  const auto& a = batches.arrays;
  // Odd starts put validity and bool bits at bit offsets that are not byte-aligned, both
  // in the inputs and in the result.
  std::vector<OwnedArray> views;
  views.push_back(View(*a[0], 3, 1000));
  views.push_back(View(*a[1], 1001, 1));
  views.push_back(View(*a[1], 13, 0));
  views.push_back(View(*a[2], 5, a[2]->length - 5 - 2));
  views.push_back(View(*a[0], 0, 2048));
  views.push_back(View(*a[1], 77, 301, /*push_down=*/true));  // offsets in the columns
  views.push_back(View(*a[2], 1, 9, /*push_down=*/true));
  std::vector<const ArrowArray*> inputs;
  for (const auto& v : views) inputs.push_back(v.get());
  OwnedArray out = ExpectConcatenates(batches.schema(), inputs);
  ASSERT_TRUE(out.valid());
  // A result is itself a valid input.
  OwnedArray slice_of_result = View(*out, 17, 999, /*push_down=*/true);
  ExpectConcatenates(batches.schema(), {slice_of_result.get(), out.get()});
}

TEST(ConcatenateTest, SingleAndEmptyInputs) {
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  Batches batches = RunQuery(*duck->session, kEveryTypeQuery);
  ASSERT_FALSE(batches.arrays.empty());
  const ArrowSchema& schema = batches.schema();
  ExpectConcatenates(schema, {batches.arrays[0].get()});

  // No inputs: a length-0 array of the type, with every column.
  ASSERT_OK_AND_ASSIGN(OwnedArray none, Concatenate(schema, {}));
  ExpectNormalized(schema, *none);
  EXPECT_EQ(none->length, 0);
  EXPECT_EQ(none->n_children, schema.n_children);

  // Only empty inputs.
  OwnedArray empty1 = View(*batches.arrays[0], 10, 0);
  OwnedArray empty2 = View(*batches.arrays[0], 2048, 0, /*push_down=*/true);
  ASSERT_OK_AND_ASSIGN(OwnedArray empties, Concatenate(schema, {{empty1.get(), empty2.get()}}));
  ExpectNormalized(schema, *empties);
  EXPECT_EQ(empties->length, 0);
}

TEST(ConcatenateTest, DictionariesThatDifferAreConcatenatedAndIndicesShifted) {
  OwnedSchema schema = MakeSchema("C", "e", {}, MakeSchema("u"));
  OwnedArray a =
      MakeArray(4, {Bits("1101"), Bytes<uint8_t>({1, 0, 9, 1})}, {}, Utf8({"red", "green"}));
  OwnedArray b =
      MakeArray(3, {std::nullopt, Bytes<uint8_t>({2, 0, 1})}, {}, Utf8({"x", "y", std::nullopt}));
  OwnedArray same_as_a =
      MakeArray(2, {std::nullopt, Bytes<uint8_t>({0, 1})}, {}, Utf8({"red", "green"}));
  OwnedArray out = ExpectConcatenates(*schema, {a.get(), b.get()});
  ASSERT_TRUE(out.valid());
  EXPECT_EQ(out->dictionary->length, 5);
  EXPECT_THAT(Rows(*schema, *out),
              ::testing::ElementsAre("dict:'green'", "dict:'red'", "null", "dict:'green'",
                                     "dict:null", "dict:'x'", "dict:'y'"));
  // Equal contents in different memory: one dictionary, indices unchanged.
  out = ExpectConcatenates(*schema, {a.get(), same_as_a.get(), a.get()});
  ASSERT_TRUE(out.valid());
  EXPECT_EQ(out->dictionary->length, 2);
  // Sliced dictionaries compare by their rows.
  OwnedArray blue_red_green = Utf8({"blue", "red", "green"});
  OwnedArray red_green =
      MakeArray(2, {std::nullopt, Bytes<uint8_t>({1, 0})}, {}, View(*blue_red_green, 1, 2));
  out = ExpectConcatenates(*schema, {a.get(), red_green.get()});
  ASSERT_TRUE(out.valid());
  EXPECT_EQ(out->dictionary->length, 2);
}

TEST(ConcatenateTest, DictionaryErrors) {
  OwnedSchema schema = MakeSchema("c", "e", {}, MakeSchema("u"));
  std::vector<std::optional<std::string>> hundred;
  for (int i = 0; i < 100; ++i) hundred.push_back(std::to_string(i));
  OwnedArray a = MakeArray(1, {std::nullopt, Bytes<int8_t>({99})}, {}, Utf8(hundred));
  hundred[0] = "other";
  OwnedArray b = MakeArray(1, {std::nullopt, Bytes<int8_t>({99})}, {}, Utf8(hundred));
  EXPECT_STATUS(Concatenate(*schema, {{a.get(), b.get()}}), StatusCode::kResourceExhausted,
                "do not fit the index type int8");
  // An index past its dictionary cannot be shifted.
  OwnedArray bad = MakeArray(1, {std::nullopt, Bytes<int8_t>({100})}, {}, Utf8({"a"}));
  EXPECT_STATUS(Concatenate(*schema, {{bad.get(), b.get()}}), StatusCode::kInvalidArgument,
                "input 0: row 0: dictionary index 100 is outside the dictionary");
  OwnedSchema ordered = MakeSchema("c", "e", {}, MakeSchema("u"), ARROW_FLAG_DICTIONARY_ORDERED);
  EXPECT_STATUS(Concatenate(*ordered, {{a.get(), b.get()}}), StatusCode::kUnimplemented,
                "ordered dictionaries");
  EXPECT_OK(Concatenate(*ordered, {{a.get(), a.get()}}));
  OwnedArray no_dictionary = Int32s({1});
  EXPECT_STATUS(Concatenate(*schema, {{a.get(), no_dictionary.get()}}),
                StatusCode::kInvalidArgument, "input 1: array has no dictionary");
}

// Fixed-width types DuckDB does not export, at unaligned bit offsets.
TEST(ConcatenateTest, FixedWidthTypesOfEveryWidth) {
  struct Case {
    std::string format;
    int width;
  };
  for (const Case& c : std::vector<Case>{{"e", 2},
                                         {"tdm", 8},
                                         {"tts", 4},
                                         {"ttm", 4},
                                         {"ttn", 8},
                                         {"tDs", 8},
                                         {"tDn", 8},
                                         {"tiM", 4},
                                         {"tiD", 8},
                                         {"d:5,2,32", 4},
                                         {"d:12,2,64", 8},
                                         {"d:40,2,256", 32},
                                         {"w:3", 3},
                                         {"w:0", 0},
                                         {"tsn:Europe/Paris", 8}}) {
    SCOPED_TRACE(c.format);
    OwnedSchema schema = MakeSchema(c.format);
    std::vector<OwnedArray> arrays;
    for (int k = 0; k < 3; ++k) {
      const int64_t n = 37 + k * 11;
      std::vector<uint8_t> values(n * c.width);
      for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i * 7 + k);
      std::string validity;
      for (int64_t i = 0; i < n; ++i) validity += (i + k) % 5 == 0 ? '0' : '1';
      arrays.push_back(MakeArray(n, {k == 1 ? MaybeBuffer() : Bits(validity), values}));
    }
    OwnedArray s0 = View(*arrays[0], 3, 30);
    OwnedArray s2 = View(*arrays[2], 1, 0);
    OwnedArray out =
        ExpectConcatenates(*schema, {s0.get(), arrays[1].get(), arrays[2].get(), s2.get()});
    ASSERT_TRUE(out.valid());
    EXPECT_EQ(out->length, 30 + 48 + 59);
  }
}

TEST(ConcatenateTest, NullType) {
  OwnedSchema schema = MakeSchema("n");
  OwnedArray a = MakeArray(5, {}, {}, {}, 0, 5);
  OwnedArray b = MakeArray(3, {}, {}, {}, 0, 3);
  OwnedArray b_tail = View(*b, 1, 2);
  OwnedArray out = ExpectConcatenates(*schema, {a.get(), b_tail.get()});
  ASSERT_TRUE(out.valid());
  EXPECT_EQ(out->length, 7);
  EXPECT_EQ(out->n_buffers, 0);
  EXPECT_EQ(EstimateBytes(*schema, *out), 0);
}

TEST(ConcatenateTest, BoolsAtEveryBitOffset) {
  OwnedSchema schema = MakeSchema("b");
  std::string bits;
  std::string validity;
  for (int i = 0; i < 200; ++i) {
    bits += (i * 37) % 3 == 0 ? '1' : '0';
    validity += i % 7 == 3 ? '0' : '1';
  }
  OwnedArray base = MakeArray(200, {Bits(validity), Bits(bits)});
  for (int start = 0; start < 9; ++start) {
    for (int length : {0, 1, 7, 8, 9, 63, 64, 65, 150}) {
      OwnedArray first = View(*base, start, length);
      OwnedArray second = View(*base, 8 - start % 8, 17 + start);
      ExpectConcatenates(*schema, {first.get(), second.get(), first.get()});
    }
  }
}

TEST(ConcatenateTest, LargeAndViewBinaryTypes) {
  for (const char* format : {"U", "Z"}) {
    OwnedSchema schema = MakeSchema(format);
    OwnedArray a = LargeUtf8({"alpha", std::nullopt, "", "gamma"});
    OwnedArray b = LargeUtf8({"delta"});
    OwnedArray a_tail = View(*a, 1, 3);
    ExpectConcatenates(*schema, {a_tail.get(), b.get(), a.get()});
  }
  // Views: inline (<= 12 bytes) and long strings in two data buffers.
  auto view = [](std::string_view s, int32_t buffer, int32_t offset) {
    std::vector<uint8_t> v(16, 0);
    const int32_t length = static_cast<int32_t>(s.size());
    std::memcpy(v.data(), &length, 4);
    if (length <= 12) {
      std::memcpy(v.data() + 4, s.data(), s.size());
    } else {
      std::memcpy(v.data() + 4, s.data(), 4);
      std::memcpy(v.data() + 8, &buffer, 4);
      std::memcpy(v.data() + 12, &offset, 4);
    }
    return v;
  };
  std::string data0 = "xxthis string is long enough";
  std::string data1 = "another long string value!";
  std::vector<uint8_t> views;
  for (auto v : {view("short", 0, 0), view(data0.substr(2), 0, 2), view("", 0, 0),
                 view(data1, 1, 0), view("garbage", 7, 1000)}) {
    views.insert(views.end(), v.begin(), v.end());
  }
  for (const char* format : {"vu", "vz"}) {
    OwnedSchema schema = MakeSchema(format);
    OwnedArray a = MakeArray(
        5,
        {Bits("11110"), views, Chars(data0), Chars(data1),
         Bytes<int64_t>({static_cast<int64_t>(data0.size()), static_cast<int64_t>(data1.size())})});
    OwnedArray no_data = MakeArray(1, {std::nullopt, view("tiny", 0, 0), Bytes<int64_t>({})});
    OwnedArray tail = View(*a, 1, 3);
    OwnedArray out = ExpectConcatenates(*schema, {a.get(), no_data.get(), tail.get()});
    ASSERT_TRUE(out.valid());
    EXPECT_EQ(out->n_buffers, 4);  // validity, views, one compacted data buffer, sizes
    EXPECT_EQ(EstimateBytes(*schema, *no_data), 16);

    OwnedArray bad = MakeArray(1, {std::nullopt, view(data1, 2, 0), Chars(data1),
                                   Bytes<int64_t>({static_cast<int64_t>(data1.size())})});
    EXPECT_STATUS(Concatenate(*schema, {{a.get(), bad.get()}}), StatusCode::kInvalidArgument,
                  "input 1: row 0: view refers to data buffer 2 of 1");
  }
}

TEST(ConcatenateTest, NestedTypesMadeByHand) {
  // large_list<int32>, rows: [1, 2], null, [], [3]
  OwnedSchema large_list = MakeSchema("+L", "x", [] {
    std::vector<OwnedSchema> c;
    c.push_back(MakeSchema("i", "item"));
    return c;
  }());
  auto make_list = [] {
    std::vector<OwnedArray> children;
    children.push_back(Int32s({9, 1, 2, 3}, "1111"));
    return MakeArray(4, {Bits("1011"), Bytes<int64_t>({1, 3, 3, 3, 4})}, std::move(children));
  };
  OwnedArray l1 = make_list();
  OwnedArray l2 = make_list();
  OwnedArray l2_tail = View(*l2, 2, 2);
  ExpectConcatenates(*large_list, {l1.get(), l2_tail.get()});

  // Dense union <5: int32, 9: utf8>, children referred to out of order and partly.
  std::vector<OwnedSchema> union_children;
  union_children.push_back(MakeSchema("i", "n"));
  union_children.push_back(MakeSchema("u", "s"));
  OwnedSchema dense = MakeSchema("+ud:5,9", "x", std::move(union_children));
  auto make_dense = [] {
    std::vector<OwnedArray> children;
    children.push_back(Int32s({10, 11, 12, 13}, "1101"));
    children.push_back(Utf8({"a", "bb", std::nullopt}));
    return MakeArray(5, {Bytes<int8_t>({5, 9, 5, 9, 5}), Bytes<int32_t>({3, 1, 0, 2, 3})},
                     std::move(children));
  };
  OwnedArray d1 = make_dense();
  OwnedArray d2 = make_dense();
  OwnedArray d2_mid = View(*d2, 1, 3);
  OwnedArray out = ExpectConcatenates(*dense, {d1.get(), d2_mid.get(), d1.get()});
  ASSERT_TRUE(out.valid());
  // Only the referred-to child ranges are copied: d1 uses n[0..3], s[1..2]; d2_mid n[0], s[1..2].
  EXPECT_EQ(out->children[0]->length, 4 + 1 + 4);
  EXPECT_EQ(out->children[1]->length, 2 + 2 + 2);

  // Sparse union with type codes that are not child indices.
  std::vector<OwnedSchema> sparse_children;
  sparse_children.push_back(MakeSchema("i", "n"));
  sparse_children.push_back(MakeSchema("u", "s"));
  OwnedSchema sparse = MakeSchema("+us:3,1", "x", std::move(sparse_children));
  std::vector<OwnedArray> sc;
  sc.push_back(Int32s({1, 2, 3}));
  sc.push_back(Utf8({"x", "y", "z"}));
  OwnedArray s1 = MakeArray(3, {Bytes<int8_t>({3, 1, 3})}, std::move(sc));
  OwnedArray s1_tail = View(*s1, 1, 2);
  ExpectConcatenates(*sparse, {s1.get(), s1_tail.get()});
  OwnedArray bad_code = MakeArray(1, {Bytes<int8_t>({2})}, [] {
    std::vector<OwnedArray> c;
    c.push_back(Int32s({1}));
    c.push_back(Utf8({"x"}));
    return c;
  }());
  EXPECT_STATUS(Concatenate(*sparse, {{s1.get(), bad_code.get()}}), StatusCode::kInvalidArgument,
                "input 1: type id that is not one of the union's type codes");
}

TEST(ConcatenateTest, Utf8PastTwoGigabytesIsResourceExhausted) {
  // Offsets claim 1.5 GB each; the limit is checked before any data byte is read, so the
  // data buffers can be tiny.
  OwnedSchema schema = MakeSchema("u");
  const int32_t big = 1500 * 1000 * 1000;
  OwnedArray a = MakeArray(1, {std::nullopt, Bytes<int32_t>({0, big}), Chars("x")});
  OwnedArray b = MakeArray(1, {std::nullopt, Bytes<int32_t>({0, big}), Chars("x")});
  EXPECT_STATUS(Concatenate(*schema, {{a.get(), b.get()}}), StatusCode::kResourceExhausted,
                "input 1: concatenated bytes exceed 2147483647");
}

TEST(ConcatenateTest, InvalidInputsAreRejected) {
  OwnedSchema utf8 = MakeSchema("u");
  OwnedArray good = Utf8({"a", "b"});
  struct Case {
    std::string name;
    OwnedArray array;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({"decreasing offsets",
                   MakeArray(2, {std::nullopt, Bytes<int32_t>({0, 3, 2}), Chars("abc")}),
                   "input 1: offsets are not increasing"});
  cases.push_back({"negative first offset",
                   MakeArray(1, {std::nullopt, Bytes<int32_t>({-1, 2}), Chars("abc")}),
                   "offsets [-1, 2] of rows [0, 1) are not increasing"});
  cases.push_back({"negative length", MakeArray(-1, {std::nullopt, Bytes<int32_t>({0})}),
                   "negative length -1"});
  cases.push_back({"too few buffers", MakeArray(1, {std::nullopt, Bytes<int32_t>({0, 1})}),
                   "array has 2 buffers, type utf8 has 3"});
  cases.push_back({"nulls without bitmap",
                   MakeArray(1, {std::nullopt, Bytes<int32_t>({0, 1}), Chars("a")}, {}, {}, 0, 1),
                   "null_count is 1 but there is no validity bitmap"});
  cases.push_back({"null offsets", MakeArray(1, {std::nullopt, std::nullopt, Chars("a")}),
                   "offsets buffer is null"});
  cases.push_back({"child where none belongs",
                   MakeArray(1, {std::nullopt, Bytes<int32_t>({0, 1}), Chars("a")},
                             [] {
                               std::vector<OwnedArray> c;
                               c.push_back(Int32s({1}));
                               return c;
                             }()),
                   "array has 1 children, the schema has 0"});
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(Concatenate(*utf8, {{good.get(), c.array.get()}}), StatusCode::kInvalidArgument,
                  c.message);
  }
  EXPECT_STATUS(Concatenate(*utf8, {{good.get(), nullptr}}), StatusCode::kInvalidArgument,
                "input 1 is null");
  ArrowArray released = *good;
  released.release = nullptr;
  EXPECT_STATUS(Concatenate(*utf8, {{&released}}), StatusCode::kInvalidArgument,
                "input 0: array is released");

  // List offsets beyond the child's length.
  OwnedSchema list = MakeSchema("+l", "x", [] {
    std::vector<OwnedSchema> c;
    c.push_back(MakeSchema("i", "item"));
    return c;
  }());
  std::vector<OwnedArray> child;
  child.push_back(Int32s({1, 2}));
  OwnedArray long_list = MakeArray(1, {std::nullopt, Bytes<int32_t>({0, 3})}, std::move(child));
  EXPECT_STATUS(Concatenate(*list, {{long_list.get()}}), StatusCode::kInvalidArgument,
                "input 0, field 'item': rows [0, 3) are outside the array's length 2");

  // A batch of another query does not match the schema.
  OwnedSchema two_columns = MakeSchema("+s", "x", [] {
    std::vector<OwnedSchema> c;
    c.push_back(MakeSchema("i", "a"));
    c.push_back(MakeSchema("u", "b"));
    return c;
  }());
  std::vector<OwnedArray> one_column;
  one_column.push_back(Int32s({1}));
  OwnedArray struct_of_one = MakeArray(1, {std::nullopt}, std::move(one_column));
  EXPECT_STATUS(Concatenate(*two_columns, {{struct_of_one.get()}}), StatusCode::kInvalidArgument,
                "input 0: array has 1 children, the schema has 2");
  std::vector<OwnedArray> wrong_types;
  wrong_types.push_back(Int32s({1}));
  wrong_types.push_back(Int32s({2}));
  OwnedArray struct_of_ints = MakeArray(1, {std::nullopt}, std::move(wrong_types));
  EXPECT_STATUS(Concatenate(*two_columns, {{struct_of_ints.get()}}), StatusCode::kInvalidArgument,
                "input 0, field 'b': array has 2 buffers");

  EXPECT_STATUS(Concatenate(*MakeSchema("+r", "x",
                                        [] {
                                          std::vector<OwnedSchema> c;
                                          c.push_back(MakeSchema("i", "run_ends"));
                                          c.push_back(MakeSchema("u", "values"));
                                          return c;
                                        }()),
                            {}),
                StatusCode::kUnimplemented, "run_end_encoded arrays are not supported");
  EXPECT_STATUS(Concatenate(*MakeSchema("+vl", "x",
                                        [] {
                                          std::vector<OwnedSchema> c;
                                          c.push_back(MakeSchema("i", "item"));
                                          return c;
                                        }()),
                            {}),
                StatusCode::kUnimplemented, "list_view arrays are not supported");
  EXPECT_STATUS(Concatenate(*MakeSchema("?"), {}), StatusCode::kInvalidArgument,
                "unsupported format string '?'");
}

TEST(ConcatenateTest, ReleasesOnlyWhatItOwns) {
  OwnedSchema schema = MakeSchema("+s", "x", [] {
    std::vector<OwnedSchema> c;
    c.push_back(MakeSchema("i", "a"));
    c.push_back(MakeSchema("C", "e", {}, MakeSchema("u")));
    return c;
  }());
  auto make = [] {
    std::vector<OwnedArray> c;
    c.push_back(Int32s({1, 2, 3}, "101"));
    c.push_back(MakeArray(3, {std::nullopt, Bytes<uint8_t>({0, 1, 0})}, {}, Utf8({"p", "q"})));
    return MakeArray(3, {std::nullopt}, std::move(c));
  };
  released_test_arrays = 0;
  {
    OwnedArray a = make();
    OwnedArray b = make();
    ASSERT_OK_AND_ASSIGN(OwnedArray out, Concatenate(*schema, {{a.get(), b.get()}}));
    EXPECT_EQ(released_test_arrays, 0);  // inputs are only read
    a.Reset();
    b.Reset();
    EXPECT_EQ(released_test_arrays, 2 * 4);  // root, two columns, dictionary
    // A consumer may move a child out and release it after the parent.
    ArrowArray moved = *out->children[1];
    out->children[1]->release = nullptr;
    out.Reset();
    OwnedArray column(&moved);
    EXPECT_EQ(column->length, 6);
    EXPECT_EQ(ValueAt(*schema->children[1], *column, 5), "dict:'p'");
    EXPECT_EQ(ValueAt(*schema->children[1], *column, 4), "dict:'q'");
  }
  // A failed concatenation releases what it had built (checked by ASan's leak checker).
  OwnedArray good = make();
  std::vector<OwnedArray> c;
  c.push_back(Int32s({1, 2}));
  c.push_back(MakeArray(1, {std::nullopt, Bytes<uint8_t>({0})}, {}, Utf8({"p"})));
  OwnedArray bad_length = MakeArray(2, {std::nullopt}, std::move(c));
  EXPECT_STATUS(Concatenate(*schema, {{good.get(), bad_length.get()}}),
                StatusCode::kInvalidArgument,
                "input 1, field 'e': rows [0, 2) are outside the array's length 1");
}

TEST(ConcatenateTest, EstimateBytesCountsUsedBuffers) {
  OwnedSchema utf8 = MakeSchema("u");
  OwnedArray a = Utf8({"abc", std::nullopt, "de", "f"});  // 1 null
  EXPECT_EQ(EstimateBytes(*utf8, *a), 1 + 5 * 4 + 6);
  OwnedArray tail = View(*a, 2, 2);  // null_count unknown: the bitmap counts
  EXPECT_EQ(EstimateBytes(*utf8, *tail), 1 + 3 * 4 + 3);
  OwnedSchema ints = MakeSchema("l");
  OwnedArray no_nulls = MakeArray(10, {std::nullopt, std::vector<uint8_t>(80)});
  EXPECT_EQ(EstimateBytes(*ints, *no_nulls), 80);
  OwnedArray invalid = MakeArray(10, {std::nullopt});
  EXPECT_EQ(EstimateBytes(*ints, *invalid), 0);

  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  Batches batches =
      RunQuery(*duck->session, "SELECT range AS i, range::VARCHAR AS s FROM range(5000)");
  int64_t sum = 0;
  for (const auto& b : batches.arrays) sum += EstimateBytes(batches.schema(), *b);
  ASSERT_OK_AND_ASSIGN(OwnedArray out, Concatenate(batches.schema(), batches.pointers()));
  // 5000 int64 + 5001 int32 offsets + the digits of 0..4999; bitmaps only where nulls may be.
  const int64_t digits = 10 * 1 + 90 * 2 + 900 * 3 + 4000 * 4;
  EXPECT_EQ(EstimateBytes(batches.schema(), *out), 5000 * 8 + 5001 * 4 + digits);
  EXPECT_LE(std::abs(sum - EstimateBytes(batches.schema(), *out)), 3 * (4 + 2 * 256 + 4));
}

}  // namespace
}  // namespace bridge::ipc
