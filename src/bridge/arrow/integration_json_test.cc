#include "bridge/arrow/integration_json.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/arrow/test_arrays.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"
#include "nlohmann/json.hpp"

namespace bridge::ipc {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;
using test_arrays::Batch;
using test_arrays::Bits;
using test_arrays::Bytes;
using test_arrays::Chars;
using test_arrays::Columns;
using test_arrays::Int32s;
using test_arrays::LargeUtf8;
using test_arrays::MakeArray;
using test_arrays::MakeSchema;
using test_arrays::MaybeBuffer;
using test_arrays::Utf8;

// ---------------------------------------------------------------------------------------
// Arrays and schemas made by hand

OwnedSchema Field(std::string format, std::string name, std::vector<OwnedSchema> children = {}) {
  return MakeSchema(std::move(format), std::move(name), std::move(children));
}

std::vector<const ArrowArray*> Pointers(const std::vector<OwnedArray>& arrays) {
  std::vector<const ArrowArray*> out;
  for (const auto& a : arrays) out.push_back(a.get());
  return out;
}

// ---------------------------------------------------------------------------------------
// A batch with one column of most types, 4 rows

struct Sample {
  OwnedSchema schema;
  std::vector<OwnedArray> batches;
};

Sample MakeSample() {
  Sample s;
  std::vector<OwnedSchema> fields;
  std::vector<OwnedArray> columns;
  const int64_t n = 4;

  fields.push_back(Field("i", "i32"));
  columns.push_back(Int32s({1, -2, 999, 4}, "1101"));

  fields.push_back(MakeSchema("l", "i64", {}, {}, 0, {{"unit", "cm"}}));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int64_t>({INT64_MIN, INT64_MAX, 0, -7})}));

  fields.push_back(Field("L", "u64"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<uint64_t>({UINT64_MAX, 0, 1, 2})}));

  fields.push_back(Field("b", "flag"));
  columns.push_back(MakeArray(n, {Bits("1011"), Bits("1001")}));

  fields.push_back(Field("f", "f32"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<float>({641.818f, -0.5f, 1e-7f, 3.25f})}));

  fields.push_back(Field("g", "f64"));
  columns.push_back(MakeArray(n, {Bits("1110"), Bytes<double>({0.1, -1e300, 2.5, 0})}));

  fields.push_back(Field("e", "f16"));
  // 1.0, -2.0, 0.099975586 (closest to 0.1), 65504
  columns.push_back(
      MakeArray(n, {MaybeBuffer(), Bytes<uint16_t>({0x3c00, 0xc000, 0x2e66, 0x7bff})}));

  fields.push_back(Field("u", "s"));
  columns.push_back(Utf8({"a", std::nullopt, "", "h\xc3\xa9llo \"q\""}));

  fields.push_back(Field("U", "ls"));
  columns.push_back(LargeUtf8({"x", "yy", std::nullopt, "zzz"}));

  fields.push_back(Field("z", "bin"));
  columns.push_back(Utf8({std::string("\x00\xff", 2), "\x0a", std::nullopt, ""}));

  fields.push_back(Field("w:3", "fsb"));
  columns.push_back(MakeArray(n, {Bits("1011"), Chars("abcXXXdefghi")}));

  fields.push_back(Field("d:9,2", "dec"));
  {
    // 128-bit little-endian: 12345, -1, -170141183460469231731687303715884105728, 0
    std::vector<uint8_t> v(64, 0);
    v[0] = 0x39;
    v[1] = 0x30;
    std::memset(v.data() + 16, 0xff, 16);
    v[47] = 0x80;
    columns.push_back(MakeArray(n, {MaybeBuffer(), v}));
  }

  fields.push_back(Field("d:40,5,256", "dec256"));
  {
    std::vector<uint8_t> v(128, 0);
    std::memset(v.data(), 0xff, 32);  // -1
    v[32 + 16] = 1;                   // 2^128
    v[64] = 7;                        // 7
    std::memset(v.data() + 96, 0xff, 31);
    v[96] = 0xfe;  // -2
    v[127] = 0xff;
    columns.push_back(MakeArray(n, {MaybeBuffer(), v}));
  }

  fields.push_back(Field("d:5,1,32", "dec32"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int32_t>({-12345, 0, 99999, 1})}));

  fields.push_back(Field("tdD", "date32"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int32_t>({0, 18262, -1, 2932896})}));

  fields.push_back(Field("tdm", "date64"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int64_t>({0, 86400000, -86400000, 1})}));

  fields.push_back(Field("ttm", "time32"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int32_t>({0, 1000, 86399999, 5})}));

  fields.push_back(Field("ttn", "time64"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int64_t>({0, 1, 86399999999999, 5})}));

  fields.push_back(Field("tsu:Europe/Paris", "ts"));
  columns.push_back(MakeArray(n, {Bits("0111"), Bytes<int64_t>({-1, 0, 1600000000000000, 3})}));

  fields.push_back(Field("tDs", "dur"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int64_t>({-5, 0, 5, INT64_MAX})}));

  fields.push_back(Field("tiM", "months"));
  columns.push_back(MakeArray(n, {MaybeBuffer(), Bytes<int32_t>({-12, 0, 12, 1200})}));

  fields.push_back(Field("tiD", "daytime"));
  columns.push_back(
      MakeArray(n, {MaybeBuffer(), Bytes<int32_t>({1, -2, 3, 4, 0, 0, -5, 86400000})}));

  fields.push_back(Field("tin", "mdn"));
  {
    std::vector<uint8_t> v;
    for (int i = 0; i < 4; ++i) {
      auto m = Bytes<int32_t>({i, -i * 10});
      auto ns = Bytes<int64_t>({i == 3 ? INT64_MIN : i * 1000000007LL});
      v.insert(v.end(), m.begin(), m.end());
      v.insert(v.end(), ns.begin(), ns.end());
    }
    columns.push_back(MakeArray(n, {MaybeBuffer(), v}));
  }

  fields.push_back(Field("n", "nothing"));
  columns.push_back(MakeArray(n, {}, {}, {}, 0, 0));
  columns.back()->null_count = n;

  // list<int32>: [1, 2], null, [], [3, null]
  {
    std::vector<OwnedSchema> item;
    item.push_back(Field("i", "item"));
    fields.push_back(Field("+l", "li", std::move(item)));
    std::vector<OwnedArray> child;
    child.push_back(Int32s({1, 2, 3, 0}, "1110"));
    columns.push_back(
        MakeArray(n, {Bits("1011"), Bytes<int32_t>({0, 2, 2, 2, 4})}, std::move(child)));
  }

  // large list of utf8: ["a"], [], ["b", "c"], null
  {
    std::vector<OwnedSchema> item;
    item.push_back(Field("u", "item"));
    fields.push_back(Field("+L", "ll", std::move(item)));
    std::vector<OwnedArray> child;
    child.push_back(Utf8({"a", "b", "c"}));
    columns.push_back(
        MakeArray(n, {Bits("1110"), Bytes<int64_t>({0, 1, 1, 3, 3})}, std::move(child)));
  }

  // fixed_size_list<int16>[2]
  {
    std::vector<OwnedSchema> item;
    item.push_back(Field("s", "item"));
    fields.push_back(Field("+w:2", "fl", std::move(item)));
    std::vector<OwnedArray> child;
    child.push_back(MakeArray(8, {Bits("11111101"), Bytes<int16_t>({1, 2, 3, 4, 5, 6, 7, 8})}));
    columns.push_back(MakeArray(n, {Bits("1101")}, std::move(child)));
  }

  // struct {a: int32, b: utf8}
  {
    std::vector<OwnedSchema> members;
    members.push_back(Field("i", "a"));
    members.push_back(Field("u", "b"));
    fields.push_back(Field("+s", "st", std::move(members)));
    std::vector<OwnedArray> children;
    children.push_back(Int32s({10, 20, 30, 40}));
    children.push_back(Utf8({"p", "q", std::nullopt, "s"}));
    columns.push_back(MakeArray(n, {Bits("1110")}, std::move(children)));
  }

  // map<utf8, int32>: {k1: 1}, {}, null, {k2: 2, k3: null}
  {
    std::vector<OwnedSchema> kv;
    kv.push_back(MakeSchema("u", "key", {}, {}, 0));
    kv.push_back(Field("i", "value"));
    std::vector<OwnedSchema> entries;
    entries.push_back(MakeSchema("+s", "entries", std::move(kv), {}, 0));
    fields.push_back(MakeSchema("+m", "mp", std::move(entries), {},
                                ARROW_FLAG_NULLABLE | ARROW_FLAG_MAP_KEYS_SORTED));
    std::vector<OwnedArray> kv_arrays;
    kv_arrays.push_back(Utf8({"k1", "k2", "k3"}));
    kv_arrays.push_back(Int32s({1, 2, 0}, "110"));
    std::vector<OwnedArray> entry_arrays;
    entry_arrays.push_back(MakeArray(3, {MaybeBuffer()}, std::move(kv_arrays)));
    columns.push_back(
        MakeArray(n, {Bits("1101"), Bytes<int32_t>({0, 1, 1, 1, 3})}, std::move(entry_arrays)));
  }

  // dense union<int32 (id 5), utf8 (id 9)>: 7, "x", null int, "y"
  {
    std::vector<OwnedSchema> members;
    members.push_back(Field("i", "n"));
    members.push_back(Field("u", "s"));
    fields.push_back(Field("+ud:5,9", "du", std::move(members)));
    std::vector<OwnedArray> children;
    children.push_back(Int32s({7, 0}, "10"));
    children.push_back(Utf8({"x", "y"}));
    columns.push_back(MakeArray(n, {Bytes<int8_t>({5, 9, 5, 9}), Bytes<int32_t>({0, 0, 1, 1})},
                                std::move(children)));
  }

  // sparse union<float64 (id 0), bool (id 1)>
  {
    std::vector<OwnedSchema> members;
    members.push_back(Field("g", "f"));
    members.push_back(Field("b", "b"));
    fields.push_back(Field("+us:0,1", "su", std::move(members)));
    std::vector<OwnedArray> children;
    children.push_back(MakeArray(n, {MaybeBuffer(), Bytes<double>({1.5, 0, 0, -2})}));
    children.push_back(MakeArray(n, {MaybeBuffer(), Bits("0100")}));
    columns.push_back(MakeArray(n, {Bytes<int8_t>({0, 1, 1, 0})}, std::move(children)));
  }

  // dictionary<int8 -> utf8>: "red", "blue", null, "red"
  {
    fields.push_back(MakeSchema("c", "dict", {}, Field("u", "")));
    columns.push_back(MakeArray(n, {Bits("1101"), Bytes<int8_t>({0, 2, 1, 0})}, {},
                                Utf8({"red", "green", "blue"})));
  }

  // utf8 view: "short", a long string in buffer 0, null, a long string in buffer 1
  {
    fields.push_back(Field("vu", "sv"));
    const std::string long0 = "a string longer than twelve";
    const std::string long1 = "another long string here";
    std::vector<uint8_t> views(64, 0);
    auto put_inline = [&](int row, std::string_view s) {
      int32_t size = static_cast<int32_t>(s.size());
      std::memcpy(views.data() + row * 16, &size, 4);
      std::memcpy(views.data() + row * 16 + 4, s.data(), s.size());
    };
    auto put_ref = [&](int row, std::string_view s, int32_t buffer, int32_t offset) {
      int32_t size = static_cast<int32_t>(s.size());
      std::memcpy(views.data() + row * 16, &size, 4);
      std::memcpy(views.data() + row * 16 + 4, s.data(), 4);
      std::memcpy(views.data() + row * 16 + 8, &buffer, 4);
      std::memcpy(views.data() + row * 16 + 12, &offset, 4);
    };
    put_inline(0, "short");
    put_ref(1, long0, 0, 2);
    put_ref(3, long1, 1, 0);
    columns.push_back(MakeArray(n, {Bits("1101"), views, Chars("xx" + long0), Chars(long1),
                                    Bytes<int64_t>({static_cast<int64_t>(long0.size() + 2),
                                                    static_cast<int64_t>(long1.size())})}));
  }

  // run-end encoded<int32 run ends, utf8 values>: "a", "a", "b", null
  {
    std::vector<OwnedSchema> members;
    members.push_back(MakeSchema("i", "run_ends", {}, {}, 0));
    members.push_back(Field("u", "values"));
    fields.push_back(Field("+r", "ree", std::move(members)));
    std::vector<OwnedArray> children;
    children.push_back(MakeArray(3, {MaybeBuffer(), Bytes<int32_t>({2, 3, 4})}));
    children.push_back(Utf8({"a", "b", std::nullopt}));
    columns.push_back(MakeArray(n, {}, std::move(children)));
  }

  s.schema = Columns(std::move(fields), {{"origin", "test"}});
  s.batches.push_back(Batch(n, std::move(columns)));
  return s;
}

Json ParseDoc(const std::string& text) {
  Json doc = Json::parse(text, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << text;
  return doc;
}

Json& ColumnNamed(Json& doc, size_t batch, std::string_view name) {
  for (Json& c : doc["batches"][batch]["columns"]) {
    if (c["name"] == name) return c;
  }
  ADD_FAILURE() << "no column " << name;
  static Json none;
  return none;
}

Json& FieldNamed(Json& doc, std::string_view name) {
  for (Json& f : doc["schema"]["fields"]) {
    if (f["name"] == name) return f;
  }
  ADD_FAILURE() << "no field " << name;
  static Json none;
  return none;
}

// ---------------------------------------------------------------------------------------

TEST(IntegrationJsonTest, RoundTripOfEveryTypeMatches) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  ASSERT_OK_AND_ASSIGN(std::string json, ToIntegrationJson(*s.schema, batches));
  EXPECT_OK(CompareWithIntegrationJson(*s.schema, batches, json));
  EXPECT_OK(CompareIntegrationJsonDocuments(json, json));
}

TEST(IntegrationJsonTest, WritesValuesTheWayArrowDoes) {
  Sample s = MakeSample();
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*s.schema, Pointers(s.batches)));
  Json doc = ParseDoc(text);
  EXPECT_EQ(doc["schema"]["metadata"], Json::parse(R"([{"key": "origin", "value": "test"}])"));
  EXPECT_EQ(FieldNamed(doc, "i64"), Json::parse(R"({"name": "i64", "nullable": false,
                            "type": {"name": "int", "isSigned": true, "bitWidth": 64},
                            "children": [], "metadata": [{"key": "unit", "value": "cm"}]})"));
  EXPECT_EQ(FieldNamed(doc, "ts")["type"],
            Json::parse(R"({"name": "timestamp", "unit": "MICROSECOND",
                            "timezone": "Europe/Paris"})"));
  EXPECT_EQ(FieldNamed(doc, "dec256")["type"],
            Json::parse(R"({"name": "decimal", "precision": 40, "scale": 5, "bitWidth": 256})"));
  EXPECT_EQ(FieldNamed(doc, "mp")["type"], Json::parse(R"({"name": "map", "keysSorted": true})"));
  EXPECT_EQ(FieldNamed(doc, "du")["type"],
            Json::parse(R"({"name": "union", "mode": "DENSE", "typeIds": [5, 9]})"));
  EXPECT_EQ(FieldNamed(doc, "dict")["dictionary"],
            Json::parse(R"({"id": 0, "indexType": {"name": "int", "isSigned": true,
                            "bitWidth": 8}, "isOrdered": false})"));
  EXPECT_EQ(FieldNamed(doc, "dict")["type"], Json::parse(R"({"name": "utf8"})"));

  EXPECT_EQ(ColumnNamed(doc, 0, "i32")["VALIDITY"], Json::parse("[1, 1, 0, 1]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "i64")["DATA"],
            Json::parse(R"(["-9223372036854775808", "9223372036854775807", "0", "-7"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "u64")["DATA"][0], "18446744073709551615");
  EXPECT_EQ(ColumnNamed(doc, 0, "flag")["DATA"], Json::parse("[true, false, false, true]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "f32")["DATA"][0].dump(), "641.818");
  EXPECT_EQ(ColumnNamed(doc, 0, "f64")["DATA"][0].dump(), "0.1");
  EXPECT_EQ(ColumnNamed(doc, 0, "f16")["DATA"], Json::parse("[1.0, -2.0, 0.099975586, 65504.0]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "s")["DATA"][3], "h\xc3\xa9llo \"q\"");
  EXPECT_EQ(ColumnNamed(doc, 0, "s")["OFFSET"], Json::parse("[0, 1, 1, 1, 11]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "ls")["OFFSET"], Json::parse(R"(["0", "1", "3", "3", "6"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "bin")["DATA"], Json::parse(R"(["00FF", "0A", "", ""])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "fsb")["DATA"],
            Json::parse(R"(["616263", "585858", "646566", "676869"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "dec")["DATA"],
            Json::parse(R"(["12345", "-1", "-170141183460469231731687303715884105728", "0"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "dec256")["DATA"],
            Json::parse(R"(["-1", "340282366920938463463374607431768211456", "7", "-2"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "dec32")["DATA"], Json::parse(R"(["-12345", "0", "99999", "1"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "date32")["DATA"], Json::parse("[0, 18262, -1, 2932896]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "date64")["DATA"][1], "86400000");
  EXPECT_EQ(ColumnNamed(doc, 0, "time32")["DATA"][2], 86399999);
  EXPECT_EQ(ColumnNamed(doc, 0, "time64")["DATA"][2], "86399999999999");
  EXPECT_EQ(ColumnNamed(doc, 0, "daytime")["DATA"][1],
            Json::parse(R"({"days": 3, "milliseconds": 4})"));
  EXPECT_EQ(ColumnNamed(doc, 0, "mdn")["DATA"][3],
            Json::parse(R"({"months": 3, "days": -30, "nanoseconds": -9223372036854775808})"));
  EXPECT_EQ(ColumnNamed(doc, 0, "nothing"), Json::parse(R"({"name": "nothing", "count": 4})"));
  EXPECT_EQ(ColumnNamed(doc, 0, "li")["OFFSET"], Json::parse("[0, 2, 2, 2, 4]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "li")["children"][0]["DATA"], Json::parse("[1, 2, 3, 0]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "du")["TYPE_ID"], Json::parse("[5, 9, 5, 9]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "du")["OFFSET"], Json::parse("[0, 0, 1, 1]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "dict")["DATA"], Json::parse("[0, 2, 1, 0]"));
  EXPECT_EQ(doc["dictionaries"][0]["id"], 0);
  EXPECT_EQ(doc["dictionaries"][0]["data"]["columns"][0]["DATA"],
            Json::parse(R"(["red", "green", "blue"])"));
  const Json& views = ColumnNamed(doc, 0, "sv")["VIEWS"];
  EXPECT_EQ(views[0], Json::parse(R"({"SIZE": 5, "INLINED": "short"})"));
  EXPECT_EQ(views[1], Json::parse(R"({"SIZE": 27, "PREFIX_HEX": "61207374",
                                      "BUFFER_INDEX": 0, "OFFSET": 2})"));
  EXPECT_EQ(ColumnNamed(doc, 0, "ree")["children"][0]["DATA"], Json::parse("[2, 3, 4]"));
}

TEST(IntegrationJsonTest, ChangedValueIsReportedWithPathAndRow) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*s.schema, batches));

  Json doc = ParseDoc(text);
  ColumnNamed(doc, 0, "st")["children"][0]["DATA"][1] = 21;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "batch 0, column 'st.a', row 1: expected 21, got 20");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "li")["children"][0]["DATA"][1] = 5;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "batch 0, column 'li.item', row 0[1]: expected 5, got 2");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "s")["DATA"][3] = "hello";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 's', row 3: expected \"hello\", got \"h");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "i64")["DATA"][3] = -8;  // a number works as well as a string
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'i64', row 3: expected -8, got -7");

  doc = ParseDoc(text);
  doc["dictionaries"][0]["data"]["columns"][0]["DATA"][2] = "purple";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "column 'dict', row 1: expected \"purple\", got \"blue\"");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "f32")["DATA"][0] = 641.819;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'f32', row 0: expected 641.819, got 641.818");
  JsonCompareOptions loose;
  loose.float_tolerance = 0.01;
  EXPECT_OK(CompareWithIntegrationJson(*s.schema, batches, doc.dump(), loose));

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "bin")["DATA"][1] = "0B";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'bin', row 1: expected 0x0B, got 0x0A");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "du")["TYPE_ID"][1] = 5;
  ColumnNamed(doc, 0, "du")["OFFSET"][1] = 0;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'du', row 1: expected type id 5, got 9");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "sv")["VIEWS"][0]["INLINED"] = "shirt";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'sv', row 0: expected \"shirt\"");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "ree")["children"][1]["DATA"][0] = "z";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'ree.values', row 0: expected \"z\"");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "mdn")["DATA"][1]["days"] = 11;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'mdn', row 1: expected {\"months\": 1, ");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "li")["OFFSET"][1] = 1;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'li', row 0: expected 1 items, got 2");
}

TEST(IntegrationJsonTest, ChangedNullIsReported) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*s.schema, batches));

  Json doc = ParseDoc(text);
  ColumnNamed(doc, 0, "i32")["VALIDITY"][0] = 0;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "batch 0, column 'i32', row 0: expected null, got a value");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "st")["children"][1]["VALIDITY"][2] = 1;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'st.b', row 2: expected a value, got null");

  doc = ParseDoc(text);
  ColumnNamed(doc, 0, "dict")["VALIDITY"][2] = 1;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "column 'dict', row 2: expected a value, got null");
}

TEST(IntegrationJsonTest, ChangedSchemaIsReportedByField) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*s.schema, batches));

  Json doc = ParseDoc(text);
  FieldNamed(doc, "i32")["type"]["bitWidth"] = 64;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "schema: field 'i32': expected type int64, got int32");

  doc = ParseDoc(text);
  FieldNamed(doc, "ts")["type"]["timezone"] = "UTC";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "field 'ts': expected type timestamp[MICROSECOND, tz=UTC], got "
                "timestamp[MICROSECOND, tz=Europe/Paris]");

  doc = ParseDoc(text);
  FieldNamed(doc, "st")["children"][1]["name"] = "c";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "field 'st.c': expected name 'c', got 'b'");

  doc = ParseDoc(text);
  FieldNamed(doc, "i64")["nullable"] = true;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "field 'i64': expected nullable=true, got false");

  doc = ParseDoc(text);
  FieldNamed(doc, "i64")["metadata"][0]["value"] = "mm";
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "field 'i64': expected metadata {unit=mm}, got {unit=cm}");

  doc = ParseDoc(text);
  doc["schema"].erase("metadata");
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "schema: expected metadata {}, got {origin=test}");

  doc = ParseDoc(text);
  FieldNamed(doc, "dict")["dictionary"]["indexType"]["bitWidth"] = 16;
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "field 'dict': expected dictionary index int16 unordered, got int8 unordered");

  doc = ParseDoc(text);
  FieldNamed(doc, "dict").erase("dictionary");
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument,
                "field 'dict': expected plain, got dictionary-encoded");

  // The names of a map's entries, key and value fields do not count (Arrow C++ ignores them).
  doc = ParseDoc(text);
  FieldNamed(doc, "mp")["children"][0]["name"] = "some_entries";
  FieldNamed(doc, "mp")["children"][0]["children"][1]["name"] = "some_value";
  EXPECT_OK(CompareWithIntegrationJson(*s.schema, batches, doc.dump()));

  doc = ParseDoc(text);
  doc["batches"].push_back(doc["batches"][0]);
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, doc.dump()),
                StatusCode::kInvalidArgument, "expected 2 batches, got 1");
}

TEST(IntegrationJsonTest, GarbageUnderNullsIsIgnored) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*s.schema, batches));
  Json doc = ParseDoc(text);
  ColumnNamed(doc, 0, "i32")["DATA"][2] = 12345;
  ColumnNamed(doc, 0, "s")["DATA"][1] = "garbage";
  ColumnNamed(doc, 0, "dict")["DATA"][2] = 77;               // out of the dictionary, but null
  ColumnNamed(doc, 0, "st")["children"][0]["DATA"][3] = -1;  // under a null struct
  EXPECT_OK(CompareWithIntegrationJson(*s.schema, batches, doc.dump()));
}

TEST(IntegrationJsonTest, RenumberedAndReorderedDictionariesStillMatch) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*s.schema, batches));
  Json doc = ParseDoc(text);
  FieldNamed(doc, "dict")["dictionary"]["id"] = 42;
  doc["dictionaries"][0]["id"] = 42;
  doc["dictionaries"][0]["data"]["columns"][0]["DATA"] = Json::parse(R"(["blue", "red", "x"])");
  ColumnNamed(doc, 0, "dict")["DATA"] = Json::parse("[1, 0, 2, 1]");
  EXPECT_OK(CompareWithIntegrationJson(*s.schema, batches, doc.dump()));
  // Between two documents, each side resolves its own ids.
  EXPECT_OK(CompareIntegrationJsonDocuments(doc.dump(), text));
  EXPECT_OK(CompareIntegrationJsonDocuments(text, doc.dump()));
}

TEST(IntegrationJsonTest, SlicedArraysAreWrittenNormalized) {
  // Rows 1..3 of a batch of a list, a string and a struct column, as offsets on the batch and
  // the columns.
  auto make_schema = [] {
    std::vector<OwnedSchema> fields;
    std::vector<OwnedSchema> item;
    item.push_back(Field("i", "item"));
    fields.push_back(Field("+l", "li", std::move(item)));
    fields.push_back(Field("u", "s"));
    std::vector<OwnedSchema> members;
    members.push_back(Field("i", "a"));
    fields.push_back(Field("+s", "st", std::move(members)));
    return Columns(std::move(fields));
  };
  OwnedSchema schema = make_schema();
  auto make_columns = [](int64_t column_offset) {
    std::vector<OwnedArray> columns;
    std::vector<OwnedArray> child;
    child.push_back(Int32s({1, 2, 3, 4, 5, 6}));
    columns.push_back(MakeArray(4, {Bits("1111"), Bytes<int32_t>({0, 1, 3, 3, 6})},
                                std::move(child), {}, column_offset));
    columns.push_back(Utf8({"a", "bb", std::nullopt, "dddd"}));
    columns.back()->offset = column_offset;
    columns.back()->length -= column_offset;
    columns.back()->null_count = -1;
    std::vector<OwnedArray> members;
    members.push_back(Int32s({10, 20, 30, 40}, "1011"));
    columns.push_back(MakeArray(4, {MaybeBuffer()}, std::move(members)));
    return columns;
  };
  std::vector<OwnedArray> batches;
  batches.push_back(Batch(3, make_columns(0), /*offset=*/1));
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*schema, Pointers(batches)));
  Json doc = ParseDoc(text);
  EXPECT_EQ(ColumnNamed(doc, 0, "li")["OFFSET"], Json::parse("[0, 2, 2, 5]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "li")["children"][0]["DATA"], Json::parse("[2, 3, 4, 5, 6]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "s")["DATA"], Json::parse(R"(["bb", "", "dddd"])"));
  EXPECT_EQ(ColumnNamed(doc, 0, "s")["OFFSET"], Json::parse("[0, 2, 2, 6]"));
  EXPECT_EQ(ColumnNamed(doc, 0, "st")["children"][0]["VALIDITY"], Json::parse("[0, 1, 1]"));

  const char* expected = R"({"schema": {"fields": [
      {"name": "li", "nullable": true, "type": {"name": "list"}, "children": [
        {"name": "item", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 32}}]},
      {"name": "s", "nullable": true, "type": {"name": "utf8"}},
      {"name": "st", "nullable": true, "type": {"name": "struct"}, "children": [
        {"name": "a", "nullable": true, "type": {"name": "int", "isSigned": true, "bitWidth": 32}}]}]},
    "batches": [{"count": 3, "columns": [
      {"name": "li", "count": 3, "VALIDITY": [1, 1, 1], "OFFSET": [7, 9, 9, 12], "children": [
        {"name": "item", "count": 13, "VALIDITY": [1,1,1,1,1,1,1,1,1,1,1,1,1],
         "DATA": [0,0,0,0,0,0,0,2,3,4,5,6,0]}]},
      {"name": "s", "count": 3, "VALIDITY": [1, 0, 1], "OFFSET": [0, 2, 2, 6], "DATA": ["bb", "", "dddd"]},
      {"name": "st", "count": 3, "VALIDITY": [1, 1, 1], "children": [
        {"name": "a", "count": 3, "VALIDITY": [0, 1, 1], "DATA": [0, 30, 40]}]}]}]})";
  EXPECT_OK(CompareWithIntegrationJson(*schema, Pointers(batches), expected));
}

TEST(IntegrationJsonTest, GrowingDictionariesAreWrittenOnceAndReplacedOnesRefused) {
  auto schema = [] {
    std::vector<OwnedSchema> fields;
    fields.push_back(MakeSchema("C", "en", {}, Field("u", "")));
    return Columns(std::move(fields));
  }();
  auto batch = [](std::vector<std::optional<std::string>> dictionary,
                  std::initializer_list<uint8_t> indices) {
    std::vector<OwnedArray> columns;
    columns.push_back(MakeArray(static_cast<int64_t>(indices.size()),
                                {MaybeBuffer(), Bytes<uint8_t>(indices)}, {}, Utf8(dictionary)));
    return Batch(static_cast<int64_t>(indices.size()), std::move(columns));
  };
  std::vector<OwnedArray> growing;
  growing.push_back(batch({"a", "b"}, {0, 1}));
  growing.push_back(batch({"a", "b", "c"}, {2, 0}));
  ASSERT_OK_AND_ASSIGN(std::string text, ToIntegrationJson(*schema, Pointers(growing)));
  Json doc = ParseDoc(text);
  ASSERT_EQ(doc["dictionaries"].size(), 1u);
  EXPECT_EQ(doc["dictionaries"][0]["data"]["columns"][0]["DATA"],
            Json::parse(R"(["a", "b", "c"])"));
  EXPECT_OK(CompareWithIntegrationJson(*schema, Pointers(growing), text));

  std::vector<OwnedArray> replaced;
  replaced.push_back(batch({"a", "b"}, {0, 1}));
  replaced.push_back(batch({"x", "b"}, {0, 1}));
  EXPECT_STATUS(ToIntegrationJson(*schema, Pointers(replaced)), StatusCode::kUnimplemented,
                "batch 1, column 'en': the dictionary was replaced");
  // Comparing does not need one dictionary per id: each batch resolves its own.
  const char* golden = R"({"schema": {"fields": [{"name": "en", "nullable": true,
      "type": {"name": "utf8"}, "dictionary": {"id": 0, "indexType": {"name": "int",
      "isSigned": false, "bitWidth": 8}, "isOrdered": false}}]},
    "dictionaries": [{"id": 0, "data": {"count": 4, "columns": [{"name": "d", "count": 4,
      "VALIDITY": [1, 1, 1, 1], "OFFSET": [0, 1, 2, 3, 4], "DATA": ["a", "b", "x", "b"]}]}}],
    "batches": [{"count": 2, "columns": [{"name": "en", "count": 2, "VALIDITY": [1, 1], "DATA": [0, 1]}]},
                {"count": 2, "columns": [{"name": "en", "count": 2, "VALIDITY": [1, 1], "DATA": [2, 3]}]}]})";
  EXPECT_OK(CompareWithIntegrationJson(*schema, Pointers(replaced), golden));
}

TEST(IntegrationJsonTest, MalformedInputsAreErrors) {
  Sample s = MakeSample();
  auto batches = Pointers(s.batches);
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, "{not json"),
                StatusCode::kInvalidArgument, "not valid JSON");
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches, R"({"batches": []})"),
                StatusCode::kInvalidArgument, "no 'schema'");
  EXPECT_STATUS(CompareWithIntegrationJson(*s.schema, batches,
                                           R"({"schema": {"fields": [{"name": "a",
                                              "type": {"name": "wat"}}]}, "batches": []})"),
                StatusCode::kInvalidArgument, "unknown type 'wat'");
  OwnedSchema not_struct = Field("i", "x");
  EXPECT_STATUS(ToIntegrationJson(*not_struct, batches), StatusCode::kInvalidArgument,
                "not a struct");
  // A list whose offsets point past its child.
  std::vector<OwnedSchema> fields;
  std::vector<OwnedSchema> item;
  item.push_back(Field("i", "item"));
  fields.push_back(Field("+l", "li", std::move(item)));
  OwnedSchema schema = Columns(std::move(fields));
  std::vector<OwnedArray> columns;
  std::vector<OwnedArray> child;
  child.push_back(Int32s({1}));
  columns.push_back(MakeArray(1, {MaybeBuffer(), Bytes<int32_t>({0, 5})}, std::move(child)));
  std::vector<OwnedArray> bad;
  bad.push_back(Batch(1, std::move(columns)));
  EXPECT_STATUS(ToIntegrationJson(*schema, Pointers(bad)), StatusCode::kInvalidArgument,
                "batch 0: column 'li': offset 5 past the child's length 1");
}

TEST(IntegrationJsonTest, ReadGzipFileReadsCompressedAndPlainFiles) {
  testing::TempDir dir;
  EXPECT_STATUS(ReadGzipFile(dir.path() / "missing.json.gz"), StatusCode::kNotFound, "missing");
  testing::WriteFile(dir.path() / "plain.json", "{\"a\": 1}");
  ASSERT_OK_AND_ASSIGN(std::string plain, ReadGzipFile(dir.path() / "plain.json"));
  EXPECT_EQ(plain, "{\"a\": 1}");
  // "hello\n" gzipped.
  const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                              0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xe7, 0x02, 0x00,
                              0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00};
  testing::WriteFile(dir.path() / "hello.gz",
                     std::string_view(reinterpret_cast<const char*>(gz), sizeof(gz)));
  ASSERT_OK_AND_ASSIGN(std::string hello, ReadGzipFile(dir.path() / "hello.gz"));
  EXPECT_EQ(hello, "hello\n");
}

// Every golden document of arrow-testing parses and matches itself (the comparison
// understands every construct the real files use).
TEST(IntegrationJsonTest, GoldenDocumentsMatchThemselves) {
  std::filesystem::path root;
  for (const char* candidate :
       std::initializer_list<const char*>{std::getenv("BRIDGE_SHARED_DIR"), "/work/shared"}) {
    if (candidate != nullptr && std::filesystem::is_directory(std::filesystem::path(candidate) /
                                                              "arrow-testing/integration")) {
      root = std::filesystem::path(candidate) / "arrow-testing/integration";
      break;
    }
  }
  ASSERT_FALSE(root.empty()) << "arrow-testing not found (set BRIDGE_SHARED_DIR)";
  int documents = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".gz") continue;
    SCOPED_TRACE(entry.path().string());
    ASSERT_OK_AND_ASSIGN(std::string json, ReadGzipFile(entry.path()));
    EXPECT_OK(CompareIntegrationJsonDocuments(json, json));
    ++documents;
  }
  EXPECT_GE(documents, 27);
}

// DuckDB batches of every type it exports survive ToIntegrationJson -> compare.
TEST(IntegrationJsonTest, DuckDBBatchesRoundTrip) {
  testing::TempDir data;
  engine::EngineOptions options;
  options.data_dir = data.path();
  options.threads = 2;
  ASSERT_OK_AND_ASSIGN(auto db, engine::Database::Open(options));
  ASSERT_OK_AND_ASSIGN(auto session, db->Connect());
  ASSERT_OK_AND_ASSIGN(auto stream, session->Query(R"sql(
    SELECT i, (i % 100)::TINYINT AS i8, (i * 1000000007)::BIGINT AS i64, (i / 7)::FLOAT AS f,
           CASE WHEN i % 3 = 0 THEN NULL ELSE 'v' || i END AS s, (i * 1.5)::DECIMAL(18, 3) AS d,
           (i::HUGEINT * 100000000000000000000) AS h, DATE '2020-01-01' + i::INTEGER AS dt,
           TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) SECOND AS ts,
           INTERVAL (i) DAY + INTERVAL (i) MICROSECOND AS iv, md5(i::VARCHAR)::UUID AS u,
           [i, NULL, i + 1] AS l, {'a': i, 'b': [i::VARCHAR]} AS st, MAP {'k': i} AS m,
           (['x', 'y'])[(i % 2) + 1]::ENUM('x', 'y') AS e,
           CASE WHEN i % 2 = 0 THEN i::UNION(n BIGINT, s VARCHAR)
                ELSE ('u' || i)::UNION(n BIGINT, s VARCHAR) END AS un
    FROM range(3000) t(i))sql"));
  std::vector<OwnedArray> batches;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    batches.push_back(std::move(batch));
  }
  ASSERT_GE(batches.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string json, ToIntegrationJson(stream->schema(), Pointers(batches)));
  EXPECT_OK(CompareWithIntegrationJson(stream->schema(), Pointers(batches), json));
  Json doc = ParseDoc(json);
  EXPECT_EQ(ColumnNamed(doc, 0, "d")["DATA"][3], "4500");
  EXPECT_EQ(ColumnNamed(doc, 0, "h")["DATA"][3], "300000000000000000000");
  doc["batches"][1]["columns"][4]["DATA"][2] = "nope";
  EXPECT_STATUS(CompareWithIntegrationJson(stream->schema(), Pointers(batches), doc.dump()),
                StatusCode::kInvalidArgument, "batch 1, column 's', row 2: expected \"nope\"");
}

}  // namespace
}  // namespace bridge::ipc
