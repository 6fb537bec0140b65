#include "bridge/arrow/encoder.h"

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "bridge/arrow/data_type.h"
#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"

namespace bridge::ipc {
namespace {

using test_arrays::Batch;
using test_arrays::Bits;
using test_arrays::Bytes;
using test_arrays::Chars;
using test_arrays::Columns;
using test_arrays::Int32s;
using test_arrays::MakeArray;
using test_arrays::MakeSchema;
using test_arrays::released_test_arrays;
using test_arrays::Utf8;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------
// Arrays and schemas made by hand

template <typename... Fields>
std::vector<OwnedSchema> List(Fields... fields) {
  std::vector<OwnedSchema> out;
  (out.push_back(std::move(fields)), ...);
  return out;
}

// ---------------------------------------------------------------------------------------
// Looking at encoded messages

const fb::Message* MessageOf(const EncodedMessage& m) {
  const std::string_view bytes = m.flatbuffer();
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  EXPECT_TRUE(fb::VerifyMessageBuffer(verifier));
  return fb::GetMessage(bytes.data());
}

const fb::RecordBatch* RecordBatchOf(const EncodedMessage& m) {
  const fb::Message* message = MessageOf(m);
  if (message->header_type() == fb::MessageHeader::DictionaryBatch) {
    return message->header_as_DictionaryBatch()->data();
  }
  EXPECT_EQ(message->header_type(), fb::MessageHeader::RecordBatch);
  return message->header_as_RecordBatch();
}

std::string BodyBytes(const EncodedMessage& m) {
  std::string out;
  for (const Segment& s : m.body) out.append(reinterpret_cast<const char*>(s.data), s.size);
  return out;
}

// Checks framing, alignment, the body's length and that padding is zeros.
void ExpectWellFormed(const EncodedMessage& m, int alignment = 8) {
  ASSERT_GE(m.metadata.size(), 8u);
  EXPECT_EQ(m.metadata.size() % alignment, 0u);
  uint32_t marker;
  int32_t length;
  std::memcpy(&marker, m.metadata.data(), 4);
  std::memcpy(&length, m.metadata.data() + 4, 4);
  EXPECT_EQ(marker, 0xFFFFFFFFu);
  EXPECT_EQ(length, static_cast<int32_t>(m.metadata.size() - 8));
  EXPECT_LE(m.flatbuffer_size + 8, m.metadata.size());
  EXPECT_LT(m.metadata.size() - 8 - m.flatbuffer_size, static_cast<size_t>(alignment));
  for (size_t i = 8 + m.flatbuffer_size; i < m.metadata.size(); ++i) EXPECT_EQ(m.metadata[i], 0);
  const fb::Message* message = MessageOf(m);
  EXPECT_EQ(message->version(), fb::MetadataVersion::V5);
  EXPECT_EQ(message->body_length(), m.body_length);
  int64_t sum = 0;
  for (const Segment& s : m.body) sum += static_cast<int64_t>(s.size);
  EXPECT_EQ(sum, m.body_length);
  EXPECT_EQ(m.body_length % alignment, 0);
  if (message->header_type() == fb::MessageHeader::Schema) return;
  const fb::RecordBatch* batch = RecordBatchOf(m);
  const std::string body = BodyBytes(m);
  int64_t end = 0;
  for (const fb::Buffer* b : *batch->buffers()) {
    EXPECT_EQ(b->offset() % alignment, 0) << "buffer at " << b->offset();
    EXPECT_GE(b->offset(), end);
    for (int64_t i = end; i < b->offset(); ++i) EXPECT_EQ(body[i], 0) << "padding at " << i;
    end = b->offset() + b->length();
    EXPECT_LE(end, m.body_length);
  }
  for (int64_t i = end; i < m.body_length; ++i) EXPECT_EQ(body[i], 0) << "padding at " << i;
}

// The address the body has at `offset` (the start of a segment), or null.
const void* AddressAt(const EncodedMessage& m, int64_t offset) {
  int64_t at = 0;
  for (const Segment& s : m.body) {
    if (at == offset && s.size > 0) return s.data;
    at += static_cast<int64_t>(s.size);
  }
  return nullptr;
}

// For each buffer of the message: its address (null when empty) and bytes.
struct BufferView {
  const void* address;
  std::string bytes;
};
std::vector<BufferView> Buffers(const EncodedMessage& m) {
  std::vector<BufferView> out;
  const std::string body = BodyBytes(m);
  for (const fb::Buffer* b : *RecordBatchOf(m)->buffers()) {
    out.push_back({b->length() > 0 ? AddressAt(m, b->offset()) : nullptr,
                   body.substr(b->offset(), b->length())});
  }
  return out;
}

struct Node {
  int64_t length;
  int64_t null_count;
  bool operator==(const Node&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Node& n) {
  return os << "{" << n.length << ", " << n.null_count << "}";
}
std::vector<Node> Nodes(const EncodedMessage& m) {
  std::vector<Node> out;
  for (const fb::FieldNode* n : *RecordBatchOf(m)->nodes())
    out.push_back({n->length(), n->null_count()});
  return out;
}

std::vector<int64_t> VariadicCounts(const EncodedMessage& m) {
  std::vector<int64_t> out;
  const auto* counts = RecordBatchOf(m)->variadic_buffer_counts();
  if (counts != nullptr) out.assign(counts->begin(), counts->end());
  return out;
}

template <typename T>
std::string AsBytes(std::initializer_list<T> values) {
  const auto b = Bytes(values);
  return std::string(b.begin(), b.end());
}

std::unique_ptr<RecordBatchEncoder> MakeEncoder(const OwnedSchema& schema,
                                                EncodeOptions options = {}) {
  auto encoder = RecordBatchEncoder::Make(*schema, options);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  return encoder.ok() ? std::move(encoder).value() : nullptr;
}

// Encodes one batch that needs no dictionaries and returns its record batch message.
EncodedMessage EncodeOne(RecordBatchEncoder& encoder, OwnedArray batch) {
  auto messages = encoder.Encode(std::move(batch));
  EXPECT_TRUE(messages.ok()) << messages.status();
  if (!messages.ok() || messages->size() != 1) {
    ADD_FAILURE() << "expected one message";
    return {};
  }
  ExpectWellFormed(messages->front(), encoder.options().alignment);
  return std::move(messages->front());
}

// ---------------------------------------------------------------------------------------
// Schemas

TEST(SchemaEncodingTest, SchemaMessageIsFramedAndVerifies) {
  auto schema = Columns(List(MakeSchema("i", "a"), MakeSchema("u", "b", {}, {}, 0)));
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedMessage m, encoder->EncodeSchema());
  ExpectWellFormed(m);
  EXPECT_EQ(m.type, MessageType::kSchema);
  EXPECT_TRUE(m.body.empty());
  EXPECT_EQ(m.keep_alive, nullptr);
  EXPECT_EQ(m.flatbuffer().data(), m.metadata.data() + 8);
  const fb::Schema* s = MessageOf(m)->header_as_Schema();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->endianness(), fb::Endianness::Little);
  ASSERT_EQ(s->fields()->size(), 2u);
  EXPECT_EQ(s->fields()->Get(0)->name()->str(), "a");
  EXPECT_TRUE(s->fields()->Get(0)->nullable());
  EXPECT_EQ(s->fields()->Get(0)->type_as_Int()->bit_width(), 32);
  EXPECT_TRUE(s->fields()->Get(0)->type_as_Int()->is_signed());
  EXPECT_NE(s->fields()->Get(0)->children(), nullptr);  // present even when empty
  EXPECT_EQ(s->fields()->Get(1)->name()->str(), "b");
  EXPECT_FALSE(s->fields()->Get(1)->nullable());
  EXPECT_EQ(s->fields()->Get(1)->type_type(), fb::Type::Utf8);

  ASSERT_OK_AND_ASSIGN(EncodedMessage standalone, EncodeSchemaMessage(*schema));
  EXPECT_EQ(standalone.metadata, m.metadata);
}

TEST(SchemaEncodingTest, EveryTypeOfTheSpec) {
  auto entries = MakeSchema(
      "+s", "entries", List(MakeSchema("u", "key", {}, {}, 0), MakeSchema("i", "value")), {}, 0);
  auto schema = Columns(
      List(MakeSchema("n", "null"), MakeSchema("b", "bool"), MakeSchema("c", "i8"),
           MakeSchema("C", "u8"), MakeSchema("s", "i16"), MakeSchema("S", "u16"),
           MakeSchema("i", "i32"), MakeSchema("I", "u32"), MakeSchema("l", "i64"),
           MakeSchema("L", "u64"), MakeSchema("e", "f16"), MakeSchema("f", "f32"),
           MakeSchema("g", "f64"), MakeSchema("d:10,2", "dec128"), MakeSchema("d:5,1,32", "dec32"),
           MakeSchema("d:15,3,64", "dec64"), MakeSchema("d:60,4,256", "dec256"),
           MakeSchema("tdD", "date32"), MakeSchema("tdm", "date64"), MakeSchema("tts", "time_s"),
           MakeSchema("ttm", "time_ms"), MakeSchema("ttu", "time_us"), MakeSchema("ttn", "time_ns"),
           MakeSchema("tss:", "ts_s"), MakeSchema("tsm:UTC", "ts_ms_utc"),
           MakeSchema("tsu:Europe/Paris", "ts_us_paris"), MakeSchema("tsn:", "ts_ns"),
           MakeSchema("tDs", "dur_s"), MakeSchema("tDn", "dur_ns"), MakeSchema("tiM", "months"),
           MakeSchema("tiD", "day_time"), MakeSchema("tin", "mdn"), MakeSchema("z", "binary"),
           MakeSchema("Z", "large_binary"), MakeSchema("vz", "binary_view"),
           MakeSchema("u", "utf8"), MakeSchema("U", "large_utf8"), MakeSchema("vu", "utf8_view"),
           MakeSchema("w:16", "fixed16"), MakeSchema("+l", "list", List(MakeSchema("i", "item"))),
           MakeSchema("+L", "large_list", List(MakeSchema("i", "item"))),
           MakeSchema("+vl", "list_view", List(MakeSchema("i", "item"))),
           MakeSchema("+vL", "large_list_view", List(MakeSchema("i", "item"))),
           MakeSchema("+w:3", "fixed_list", List(MakeSchema("i", "item"))),
           MakeSchema("+s", "struct", List(MakeSchema("i", "a"), MakeSchema("u", "b"))),
           MakeSchema("+m", "map", List(std::move(entries)), {},
                      ARROW_FLAG_NULLABLE | ARROW_FLAG_MAP_KEYS_SORTED),
           MakeSchema("+ud:0,1", "dense", List(MakeSchema("i", "n"), MakeSchema("u", "s"))),
           MakeSchema("+us:5,7", "sparse", List(MakeSchema("i", "n"), MakeSchema("u", "s"))),
           MakeSchema("+r", "ree",
                      List(MakeSchema("i", "run_ends", {}, {}, 0), MakeSchema("u", "values"))),
           MakeSchema("c", "dict", {}, MakeSchema("u", "ignored"),
                      ARROW_FLAG_NULLABLE | ARROW_FLAG_DICTIONARY_ORDERED),
           MakeSchema("I", "udict", {}, MakeSchema("+l", "", List(MakeSchema("i", "item"))))));
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedMessage m, encoder->EncodeSchema());
  ExpectWellFormed(m);
  const auto* fields = MessageOf(m)->header_as_Schema()->fields();
  std::map<std::string, const fb::Field*> by_name;
  for (const fb::Field* f : *fields) by_name[f->name()->str()] = f;
  ASSERT_EQ(by_name.size(), 51u);
  auto type = [&](const char* name) { return by_name.at(name)->type_type(); };
  auto int_type = [&](const char* name) {
    const fb::Int* i = by_name.at(name)->type_as_Int();
    return std::make_pair(i->bit_width(), i->is_signed());
  };

  EXPECT_EQ(type("null"), fb::Type::Null);
  EXPECT_EQ(type("bool"), fb::Type::Bool);
  EXPECT_EQ(int_type("i8"), std::make_pair(8, true));
  EXPECT_EQ(int_type("u8"), std::make_pair(8, false));
  EXPECT_EQ(int_type("i16"), std::make_pair(16, true));
  EXPECT_EQ(int_type("u16"), std::make_pair(16, false));
  EXPECT_EQ(int_type("i32"), std::make_pair(32, true));
  EXPECT_EQ(int_type("u32"), std::make_pair(32, false));
  EXPECT_EQ(int_type("i64"), std::make_pair(64, true));
  EXPECT_EQ(int_type("u64"), std::make_pair(64, false));
  EXPECT_EQ(by_name["f16"]->type_as_FloatingPoint()->precision(), fb::Precision::HALF);
  EXPECT_EQ(by_name["f32"]->type_as_FloatingPoint()->precision(), fb::Precision::SINGLE);
  EXPECT_EQ(by_name["f64"]->type_as_FloatingPoint()->precision(), fb::Precision::DOUBLE);
  for (auto [name, p, s, w] : {std::tuple{"dec128", 10, 2, 128}, std::tuple{"dec32", 5, 1, 32},
                               std::tuple{"dec64", 15, 3, 64}, std::tuple{"dec256", 60, 4, 256}}) {
    const fb::Decimal* d = by_name.at(name)->type_as_Decimal();
    EXPECT_EQ(d->precision(), p) << name;
    EXPECT_EQ(d->scale(), s) << name;
    EXPECT_EQ(d->bit_width(), w) << name;
  }
  EXPECT_EQ(by_name["date32"]->type_as_Date()->unit(), fb::DateUnit::DAY);
  EXPECT_EQ(by_name["date64"]->type_as_Date()->unit(), fb::DateUnit::MILLISECOND);
  for (auto [name, unit, width] : {std::tuple{"time_s", fb::TimeUnit::SECOND, 32},
                                   std::tuple{"time_ms", fb::TimeUnit::MILLISECOND, 32},
                                   std::tuple{"time_us", fb::TimeUnit::MICROSECOND, 64},
                                   std::tuple{"time_ns", fb::TimeUnit::NANOSECOND, 64}}) {
    EXPECT_EQ(by_name.at(name)->type_as_Time()->unit(), unit) << name;
    EXPECT_EQ(by_name.at(name)->type_as_Time()->bit_width(), width) << name;
  }
  EXPECT_EQ(by_name["ts_s"]->type_as_Timestamp()->unit(), fb::TimeUnit::SECOND);
  EXPECT_EQ(by_name["ts_s"]->type_as_Timestamp()->timezone(), nullptr);
  EXPECT_EQ(by_name["ts_ms_utc"]->type_as_Timestamp()->unit(), fb::TimeUnit::MILLISECOND);
  EXPECT_EQ(by_name["ts_ms_utc"]->type_as_Timestamp()->timezone()->str(), "UTC");
  EXPECT_EQ(by_name["ts_us_paris"]->type_as_Timestamp()->timezone()->str(), "Europe/Paris");
  EXPECT_EQ(by_name["ts_ns"]->type_as_Timestamp()->unit(), fb::TimeUnit::NANOSECOND);
  EXPECT_EQ(by_name["dur_s"]->type_as_Duration()->unit(), fb::TimeUnit::SECOND);
  EXPECT_EQ(by_name["dur_ns"]->type_as_Duration()->unit(), fb::TimeUnit::NANOSECOND);
  EXPECT_EQ(by_name["months"]->type_as_Interval()->unit(), fb::IntervalUnit::YEAR_MONTH);
  EXPECT_EQ(by_name["day_time"]->type_as_Interval()->unit(), fb::IntervalUnit::DAY_TIME);
  EXPECT_EQ(by_name["mdn"]->type_as_Interval()->unit(), fb::IntervalUnit::MONTH_DAY_NANO);
  EXPECT_EQ(type("binary"), fb::Type::Binary);
  EXPECT_EQ(type("large_binary"), fb::Type::LargeBinary);
  EXPECT_EQ(type("binary_view"), fb::Type::BinaryView);
  EXPECT_EQ(type("utf8"), fb::Type::Utf8);
  EXPECT_EQ(type("large_utf8"), fb::Type::LargeUtf8);
  EXPECT_EQ(type("utf8_view"), fb::Type::Utf8View);
  EXPECT_EQ(by_name["fixed16"]->type_as_FixedSizeBinary()->byte_width(), 16);
  EXPECT_EQ(type("list"), fb::Type::List);
  EXPECT_EQ(type("large_list"), fb::Type::LargeList);
  EXPECT_EQ(type("list_view"), fb::Type::ListView);
  EXPECT_EQ(type("large_list_view"), fb::Type::LargeListView);
  EXPECT_EQ(by_name["fixed_list"]->type_as_FixedSizeList()->list_size(), 3);
  for (const char* name : {"list", "large_list", "list_view", "large_list_view", "fixed_list"}) {
    ASSERT_EQ(by_name.at(name)->children()->size(), 1u) << name;
    EXPECT_EQ(by_name.at(name)->children()->Get(0)->name()->str(), "item");
  }
  EXPECT_EQ(type("struct"), fb::Type::Struct_);
  ASSERT_EQ(by_name["struct"]->children()->size(), 2u);
  EXPECT_EQ(by_name["struct"]->children()->Get(1)->type_type(), fb::Type::Utf8);
  EXPECT_TRUE(by_name["map"]->type_as_Map()->keys_sorted());
  const fb::Field* map_entries = by_name["map"]->children()->Get(0);
  EXPECT_EQ(map_entries->name()->str(), "entries");
  EXPECT_FALSE(map_entries->nullable());
  EXPECT_EQ(map_entries->children()->Get(0)->name()->str(), "key");
  EXPECT_FALSE(map_entries->children()->Get(0)->nullable());
  EXPECT_EQ(by_name["dense"]->type_as_Union()->mode(), fb::UnionMode::Dense);
  EXPECT_THAT(std::vector<int>(by_name["dense"]->type_as_Union()->type_ids()->begin(),
                               by_name["dense"]->type_as_Union()->type_ids()->end()),
              ElementsAre(0, 1));
  EXPECT_EQ(by_name["sparse"]->type_as_Union()->mode(), fb::UnionMode::Sparse);
  EXPECT_THAT(std::vector<int>(by_name["sparse"]->type_as_Union()->type_ids()->begin(),
                               by_name["sparse"]->type_as_Union()->type_ids()->end()),
              ElementsAre(5, 7));
  EXPECT_EQ(type("ree"), fb::Type::RunEndEncoded);
  EXPECT_EQ(by_name["ree"]->children()->Get(0)->type_as_Int()->bit_width(), 32);

  // Dictionary-encoded: the value type describes the field, the index type the encoding.
  const fb::Field* dict = by_name["dict"];
  EXPECT_EQ(dict->type_type(), fb::Type::Utf8);
  ASSERT_NE(dict->dictionary(), nullptr);
  EXPECT_EQ(dict->dictionary()->id(), 0);
  EXPECT_TRUE(dict->dictionary()->is_ordered());
  EXPECT_EQ(dict->dictionary()->index_type()->bit_width(), 8);
  EXPECT_TRUE(dict->dictionary()->index_type()->is_signed());
  const fb::Field* udict = by_name["udict"];
  EXPECT_EQ(udict->type_type(), fb::Type::List);
  ASSERT_EQ(udict->children()->size(), 1u);
  EXPECT_EQ(udict->children()->Get(0)->type_type(), fb::Type::Int);
  EXPECT_EQ(udict->dictionary()->id(), 1);
  EXPECT_FALSE(udict->dictionary()->is_ordered());
  EXPECT_EQ(udict->dictionary()->index_type()->bit_width(), 32);
  EXPECT_FALSE(udict->dictionary()->index_type()->is_signed());
  EXPECT_EQ(by_name["i32"]->dictionary(), nullptr);
}

TEST(SchemaEncodingTest, CustomMetadataAtSchemaAndFieldLevel) {
  const KeyValueMetadata field_metadata = {{"ARROW:extension:name", "arrow.uuid"},
                                           {"ARROW:extension:metadata", ""},
                                           {"k", std::string("v\0w", 3)}};
  auto schema = Columns(List(MakeSchema("w:16", "id", {}, {}, ARROW_FLAG_NULLABLE, field_metadata),
                             MakeSchema("i", "plain")),
                        {{"origin", "bridge"}, {"empty", ""}});
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedMessage m, encoder->EncodeSchema());
  const fb::Schema* s = MessageOf(m)->header_as_Schema();
  ASSERT_NE(s->custom_metadata(), nullptr);
  ASSERT_EQ(s->custom_metadata()->size(), 2u);
  EXPECT_EQ(s->custom_metadata()->Get(0)->key()->str(), "origin");
  EXPECT_EQ(s->custom_metadata()->Get(0)->value()->str(), "bridge");
  EXPECT_EQ(s->custom_metadata()->Get(1)->value()->str(), "");
  const auto* md = s->fields()->Get(0)->custom_metadata();
  ASSERT_NE(md, nullptr);
  ASSERT_EQ(md->size(), 3u);
  EXPECT_EQ(md->Get(0)->key()->str(), "ARROW:extension:name");
  EXPECT_EQ(md->Get(0)->value()->str(), "arrow.uuid");
  EXPECT_EQ(md->Get(1)->key()->str(), "ARROW:extension:metadata");
  EXPECT_EQ(md->Get(2)->value()->str(), std::string("v\0w", 3));
  EXPECT_EQ(s->fields()->Get(1)->custom_metadata(), nullptr);
}

// Field 0: dictionary (id 0) whose values are lists of a dictionary-encoded utf8 (id 1);
// field 1: a struct holding a dictionary-encoded field (id 2).
OwnedSchema NestedDictionarySchema() {
  auto inner = MakeSchema("c", "item", {}, MakeSchema("u", ""));
  auto outer_values = MakeSchema("+l", "", List(std::move(inner)));
  return Columns(List(MakeSchema("i", "outer", {}, std::move(outer_values)),
                      MakeSchema("+s", "st", List(MakeSchema("s", "d", {}, MakeSchema("u", ""))))));
}

TEST(SchemaEncodingTest, DictionaryIdsAreDepthFirst) {
  auto schema = NestedDictionarySchema();
  auto encoder = MakeEncoder(schema);
  ASSERT_OK_AND_ASSIGN(EncodedMessage m, encoder->EncodeSchema());
  const auto* fields = MessageOf(m)->header_as_Schema()->fields();
  const fb::Field* outer = fields->Get(0);
  EXPECT_EQ(outer->dictionary()->id(), 0);
  EXPECT_EQ(outer->type_type(), fb::Type::List);
  const fb::Field* inner = outer->children()->Get(0);
  EXPECT_EQ(inner->name()->str(), "item");
  EXPECT_EQ(inner->type_type(), fb::Type::Utf8);
  EXPECT_EQ(inner->dictionary()->id(), 1);
  EXPECT_EQ(fields->Get(1)->children()->Get(0)->dictionary()->id(), 2);
}

TEST(SchemaEncodingTest, SchemasIpcCannotDescribeAreRejected) {
  EXPECT_STATUS(RecordBatchEncoder::Make(*MakeSchema("i", "x")), StatusCode::kInvalidArgument,
                "struct");
  EXPECT_STATUS(RecordBatchEncoder::Make(*Columns(List(MakeSchema("q", "bad")))),
                StatusCode::kInvalidArgument, "'bad'");
  EXPECT_STATUS(RecordBatchEncoder::Make(*Columns(List(MakeSchema("+l", "l")))),
                StatusCode::kInvalidArgument, "needs 1 child");
  EXPECT_STATUS(RecordBatchEncoder::Make(
                    *Columns(List(MakeSchema("+ud:0,1", "u", List(MakeSchema("i", "a")))))),
                StatusCode::kInvalidArgument, "type codes");
  EXPECT_STATUS(RecordBatchEncoder::Make(*Columns(
                    List(MakeSchema("+r", "r", List(MakeSchema("u", "e"), MakeSchema("i", "v")))))),
                StatusCode::kInvalidArgument, "run ends");
  EXPECT_STATUS(
      RecordBatchEncoder::Make(*Columns(List(MakeSchema("+m", "m", List(MakeSchema("i", "e")))))),
      StatusCode::kInvalidArgument, "map");
  EXPECT_STATUS(
      RecordBatchEncoder::Make(*Columns(List(MakeSchema("u", "d", {}, MakeSchema("u", ""))))),
      StatusCode::kInvalidArgument, "integers");
  EXPECT_STATUS(RecordBatchEncoder::Make(*Columns(
                    List(MakeSchema("i", "dd", {}, MakeSchema("i", "", {}, MakeSchema("u", "")))))),
                StatusCode::kUnimplemented, "dd");
  auto released = Columns({});
  ArrowSchema copy = *released;
  copy.release = nullptr;
  EXPECT_STATUS(RecordBatchEncoder::Make(copy), StatusCode::kInvalidArgument, "released");
  // Nesting deeper than 64 levels.
  OwnedSchema deep = MakeSchema("i", "item");
  for (int i = 0; i < 70; ++i) deep = MakeSchema("+l", "l", List(std::move(deep)));
  EXPECT_STATUS(RecordBatchEncoder::Make(*Columns(List(std::move(deep)))),
                StatusCode::kInvalidArgument, "deeper");
  EncodeOptions bad_alignment;
  bad_alignment.alignment = 12;
  EXPECT_STATUS(RecordBatchEncoder::Make(*Columns({}), bad_alignment), StatusCode::kInvalidArgument,
                "alignment");
}

// ---------------------------------------------------------------------------------------
// Record batches

TEST(EncoderTest, FixedWidthColumnsPointIntoTheSourceBuffers) {
  auto schema = Columns(List(MakeSchema("i", "a"), MakeSchema("l", "b")));
  auto encoder = MakeEncoder(schema);
  auto a = Int32s({1, 2, 3, 4, 5}, "10111");
  auto b = MakeArray(5, {std::nullopt, Bytes<int64_t>({10, 20, 30, 40, 50})});
  const void* a_validity = a->buffers[0];
  const void* a_values = a->buffers[1];
  const void* b_values = b->buffers[1];
  std::vector<OwnedArray> columns;
  columns.push_back(std::move(a));
  columns.push_back(std::move(b));
  EncodedMessage m = EncodeOne(*encoder, Batch(5, std::move(columns)));
  EXPECT_EQ(m.type, MessageType::kRecordBatch);
  EXPECT_EQ(RecordBatchOf(m)->length(), 5);
  EXPECT_EQ(RecordBatchOf(m)->compression(), nullptr);
  EXPECT_THAT(Nodes(m), ElementsAre(Node{5, 1}, Node{5, 0}));
  const auto buffers = Buffers(m);
  ASSERT_EQ(buffers.size(), 4u);
  EXPECT_EQ(buffers[0].address, a_validity);
  EXPECT_EQ(buffers[0].bytes.size(), 1u);
  EXPECT_EQ(buffers[1].address, a_values);
  EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({1, 2, 3, 4, 5}));
  EXPECT_EQ(buffers[2].address, nullptr);  // no nulls: no validity buffer
  EXPECT_EQ(buffers[2].bytes, "");
  EXPECT_EQ(buffers[3].address, b_values);
  EXPECT_EQ(m.copied_bytes, 0);
  // Offsets in the flatbuffer: 0 (1 byte + 7 padding), 8 (20 bytes + 4), 32 (empty), 32.
  const auto* fb_buffers = RecordBatchOf(m)->buffers();
  EXPECT_EQ(fb_buffers->Get(0)->offset(), 0);
  EXPECT_EQ(fb_buffers->Get(1)->offset(), 8);
  EXPECT_EQ(fb_buffers->Get(1)->length(), 20);
  EXPECT_EQ(fb_buffers->Get(2)->offset(), 32);
  EXPECT_EQ(fb_buffers->Get(3)->offset(), 32);
  EXPECT_EQ(fb_buffers->Get(3)->length(), 40);
  EXPECT_EQ(m.body_length, 72);
}

TEST(EncoderTest, NullCountIsCountedWhenUnknownAndBitmapDroppedWhenZero) {
  auto schema = Columns(List(MakeSchema("i", "unknown"), MakeSchema("i", "zero")));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> columns;
  columns.push_back(
      MakeArray(6, {Bits("110100"), Bytes<int32_t>({1, 2, 3, 4, 5, 6})}, {}, {}, 0, -1));
  // null_count 0 with a bitmap whose bits say otherwise: the count is trusted.
  columns.push_back(
      MakeArray(6, {Bits("000000"), Bytes<int32_t>({1, 2, 3, 4, 5, 6})}, {}, {}, 0, 0));
  EncodedMessage m = EncodeOne(*encoder, Batch(6, std::move(columns)));
  EXPECT_THAT(Nodes(m), ElementsAre(Node{6, 3}, Node{6, 0}));
  EXPECT_EQ(Buffers(m)[2].bytes, "");
}

TEST(EncoderTest, NullTypeHasNoBuffers) {
  auto schema = Columns(List(MakeSchema("n", "nothing"), MakeSchema("n", "legacy")));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> columns;
  columns.push_back(MakeArray(4, {}, {}, {}, 0, 4));
  columns.push_back(MakeArray(4, {std::nullopt}, {}, {}, 0, 4));  // an old-style validity slot
  EncodedMessage m = EncodeOne(*encoder, Batch(4, std::move(columns)));
  EXPECT_THAT(Nodes(m), ElementsAre(Node{4, 4}, Node{4, 4}));
  EXPECT_EQ(RecordBatchOf(m)->buffers()->size(), 0u);
  EXPECT_EQ(m.body_length, 0);
}

TEST(EncoderTest, SlicedFixedWidthIsASubRangeAndOddBitmapsAreShifted) {
  auto schema = Columns(List(MakeSchema("i", "a")));
  for (int64_t offset : {0, 1, 3, 7, 8, 9, 16}) {
    SCOPED_TRACE(offset);
    auto encoder = MakeEncoder(schema);
    std::vector<int32_t> values(40);
    std::string validity;
    for (int i = 0; i < 40; ++i) {
      values[i] = i * 10;
      validity += (i % 3 == 0) ? '0' : '1';
    }
    std::vector<uint8_t> value_bytes(values.size() * 4);
    std::memcpy(value_bytes.data(), values.data(), value_bytes.size());
    auto column = MakeArray(20, {Bits(validity), value_bytes}, {}, {}, offset);
    const auto* bits = static_cast<const uint8_t*>(column->buffers[0]);
    const auto* data = static_cast<const uint8_t*>(column->buffers[1]);
    std::vector<OwnedArray> columns;
    columns.push_back(std::move(column));
    EncodedMessage m = EncodeOne(*encoder, Batch(20, std::move(columns)));
    const auto buffers = Buffers(m);
    ASSERT_EQ(buffers.size(), 2u);
    EXPECT_EQ(buffers[1].address, data + offset * 4);
    EXPECT_EQ(buffers[1].bytes.size(), 80u);
    ASSERT_EQ(buffers[0].bytes.size(), 3u);
    for (int i = 0; i < 20; ++i) {
      const bool bit = (static_cast<uint8_t>(buffers[0].bytes[i / 8]) >> (i % 8)) & 1;
      EXPECT_EQ(bit, validity[offset + i] == '1') << "row " << i;
    }
    if (offset % 8 == 0) {
      EXPECT_EQ(buffers[0].address, bits + offset / 8);
      EXPECT_EQ(m.copied_bytes, 0);
    } else {
      EXPECT_EQ(m.copied_bytes, 3);  // the one copy: a shifted bitmap
      EXPECT_EQ(static_cast<uint8_t>(buffers[0].bytes[2]) >> 4, 0) << "unused bits are zero";
    }
    int64_t nulls = 0;
    for (int i = 0; i < 20; ++i) nulls += validity[offset + i] == '0';
    EXPECT_THAT(Nodes(m), ElementsAre(Node{20, nulls}));
  }
}

TEST(EncoderTest, BoolsAtEveryBitOffset) {
  auto schema = Columns(List(MakeSchema("b", "flag")));
  const std::string pattern = "1101001110001011110000011";
  for (int64_t offset = 0; offset < 16; ++offset) {
    auto encoder = MakeEncoder(schema);
    const int64_t length = static_cast<int64_t>(pattern.size()) - offset;
    std::vector<OwnedArray> columns;
    columns.push_back(MakeArray(length, {std::nullopt, Bits(pattern)}, {}, {}, offset, 0));
    EncodedMessage m = EncodeOne(*encoder, Batch(length, std::move(columns)));
    const std::string values = Buffers(m)[1].bytes;
    ASSERT_EQ(static_cast<int64_t>(values.size()), (length + 7) / 8);
    for (int64_t i = 0; i < length; ++i) {
      EXPECT_EQ((static_cast<uint8_t>(values[i / 8]) >> (i % 8)) & 1, pattern[offset + i] == '1')
          << "offset " << offset << " row " << i;
    }
  }
}

TEST(EncoderTest, Utf8OffsetsAreRebasedWhenSliced) {
  auto schema = Columns(List(MakeSchema("u", "s")));
  {
    auto encoder = MakeEncoder(schema);
    auto column = Utf8({"ab", "cde", std::nullopt, "f"});
    const void* offsets = column->buffers[1];
    const void* data = column->buffers[2];
    std::vector<OwnedArray> columns;
    columns.push_back(std::move(column));
    EncodedMessage m = EncodeOne(*encoder, Batch(4, std::move(columns)));
    const auto buffers = Buffers(m);
    EXPECT_EQ(buffers[1].address, offsets);
    EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({0, 2, 5, 5, 6}));
    EXPECT_EQ(buffers[2].address, data);
    EXPECT_EQ(buffers[2].bytes, "abcdef");
    EXPECT_EQ(m.copied_bytes, 0);
  }
  {
    auto encoder = MakeEncoder(schema);
    auto column = Utf8({"ab", "cde", std::nullopt, "f", "ghij"}, /*offset=*/1);
    const auto* data = static_cast<const uint8_t*>(column->buffers[2]);
    std::vector<OwnedArray> columns;
    columns.push_back(std::move(column));
    // The column starts at row 1: "cde", null, "f" (and "ghij", beyond the batch's length).
    EncodedMessage m = EncodeOne(*encoder, Batch(3, std::move(columns)));
    const auto buffers = Buffers(m);
    EXPECT_THAT(Nodes(m), ElementsAre(Node{3, 1}));
    EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({0, 3, 3, 4}));
    EXPECT_EQ(buffers[2].address, data + 2);
    EXPECT_EQ(buffers[2].bytes, "cdef");
    EXPECT_EQ(m.copied_bytes, 16 + 1);  // rebased offsets, shifted validity
  }
}

TEST(EncoderTest, EmptyVariableLengthArraysHaveOneZeroOffset) {
  auto schema =
      Columns(List(MakeSchema("u", "s"), MakeSchema("+L", "l", List(MakeSchema("i", "item")))));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> columns;
  columns.push_back(MakeArray(0, {std::nullopt, std::nullopt, std::nullopt}));
  std::vector<OwnedArray> items;
  items.push_back(MakeArray(0, {std::nullopt, std::nullopt}));
  columns.push_back(MakeArray(0, {std::nullopt, std::nullopt}, std::move(items)));
  EncodedMessage m = EncodeOne(*encoder, Batch(0, std::move(columns)));
  const auto buffers = Buffers(m);
  ASSERT_EQ(buffers.size(), 7u);
  EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({0}));
  EXPECT_EQ(buffers[2].bytes, "");
  EXPECT_EQ(buffers[4].bytes, AsBytes<int64_t>({0}));
  EXPECT_THAT(Nodes(m), ElementsAre(Node{0, 0}, Node{0, 0}, Node{0, 0}));
}

TEST(EncoderTest, SlicedListSendsOnlyTheReferencedChildRows) {
  auto schema = Columns(List(MakeSchema("+l", "l", List(MakeSchema("i", "item")))));
  auto encoder = MakeEncoder(schema);
  // [[1, 2], [3], [], [4, 5, 6], null]; child itself sliced by 1 (a leading 0 unused).
  std::vector<OwnedArray> items;
  items.push_back(MakeArray(6, {std::nullopt, Bytes<int32_t>({0, 1, 2, 3, 4, 5, 6})}, {}, {}, 1));
  auto list = MakeArray(4, {Bits("11110"), Bytes<int32_t>({0, 2, 3, 3, 6, 6})}, std::move(items),
                        {}, /*offset=*/1);
  const auto* child_values = static_cast<const uint8_t*>(list->children[0]->buffers[1]);
  std::vector<OwnedArray> columns;
  columns.push_back(std::move(list));
  // The list is sliced at 1 (rows [3], [], [4, 5, 6], null).
  EncodedMessage m = EncodeOne(*encoder, Batch(4, std::move(columns)));
  EXPECT_THAT(Nodes(m), ElementsAre(Node{4, 1}, Node{4, 0}));
  const auto buffers = Buffers(m);
  EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({0, 1, 1, 4, 4}));
  // Child rows 2..5 of the child (its offset 1 + list offset 2): values 3, 4, 5, 6.
  EXPECT_EQ(buffers[3].address, child_values + 3 * 4);
  EXPECT_EQ(buffers[3].bytes, AsBytes<int32_t>({3, 4, 5, 6}));
}

TEST(EncoderTest, StructOffsetAppliesToChildren) {
  auto schema =
      Columns(List(MakeSchema("+s", "st", List(MakeSchema("i", "a"), MakeSchema("u", "b")))));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> fields;
  fields.push_back(Int32s({1, 2, 3, 4, 5}));
  fields.push_back(Utf8({"v", "w", "x", "y", "z"}));
  auto st = MakeArray(2, {Bits("01110")}, std::move(fields), {}, /*offset=*/2);
  std::vector<OwnedArray> columns;
  columns.push_back(std::move(st));
  // And the batch is sliced by 1 on top: struct rows 3..4.
  EncodedMessage m = EncodeOne(*encoder, Batch(1, std::move(columns), /*offset=*/1));
  EXPECT_THAT(Nodes(m), ElementsAre(Node{1, 0}, Node{1, 0}, Node{1, 0}));
  const auto buffers = Buffers(m);
  EXPECT_EQ(buffers[2].bytes, AsBytes<int32_t>({4}));
  EXPECT_EQ(buffers[5].bytes, "y");
}

TEST(EncoderTest, FixedSizeListFixedSizeBinaryAndDecimalsSliced) {
  auto schema = Columns(List(MakeSchema("+w:2", "pairs", List(MakeSchema("s", "item"))),
                             MakeSchema("w:3", "fsb"), MakeSchema("d:38,2", "dec")));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> items;
  items.push_back(MakeArray(8, {std::nullopt, Bytes<int16_t>({1, 2, 3, 4, 5, 6, 7, 8})}));
  std::vector<OwnedArray> columns;
  columns.push_back(MakeArray(2, {std::nullopt}, std::move(items), {}, 1));
  columns.push_back(MakeArray(2, {std::nullopt, Chars("aaabbbccc")}, {}, {}, 1));
  std::vector<uint8_t> decimals(3 * 16);
  for (int i = 0; i < 3; ++i) decimals[i * 16] = static_cast<uint8_t>(i + 1);
  columns.push_back(MakeArray(2, {std::nullopt, decimals}, {}, {}, 1));
  EncodedMessage m = EncodeOne(*encoder, Batch(2, std::move(columns)));
  const auto buffers = Buffers(m);
  EXPECT_THAT(Nodes(m), ElementsAre(Node{2, 0}, Node{4, 0}, Node{2, 0}, Node{2, 0}));
  EXPECT_EQ(buffers[2].bytes, AsBytes<int16_t>({3, 4, 5, 6}));
  EXPECT_EQ(buffers[4].bytes, "bbbccc");
  ASSERT_EQ(buffers[6].bytes.size(), 32u);
  EXPECT_EQ(buffers[6].bytes[0], 2);
  EXPECT_EQ(buffers[6].bytes[16], 3);
}

TEST(EncoderTest, ViewsRecordVariadicCountsAndDropTheSizesBuffer) {
  auto schema = Columns(List(MakeSchema("vu", "v"), MakeSchema("vz", "none")));
  auto encoder = MakeEncoder(schema);
  // Views: "short" inline; a 20-byte string in buffer 1 at offset 4.
  std::vector<uint8_t> views(2 * 16, 0);
  const int32_t short_len = 5;
  std::memcpy(views.data(), &short_len, 4);
  std::memcpy(views.data() + 4, "short", 5);
  const int32_t long_len = 20;
  const int32_t buffer_index = 1;
  const int32_t buffer_offset = 4;
  std::memcpy(views.data() + 16, &long_len, 4);
  std::memcpy(views.data() + 20, "xxxx", 4);
  std::memcpy(views.data() + 24, &buffer_index, 4);
  std::memcpy(views.data() + 28, &buffer_offset, 4);
  auto column = MakeArray(2, {std::nullopt, views, Chars("unused"),
                              Chars("....xxxxyyyyzzzzwwwwvvvv"), Bytes<int64_t>({6, 24})});
  const void* views_address = column->buffers[1];
  const void* data0 = column->buffers[2];
  const void* data1 = column->buffers[3];
  std::vector<OwnedArray> columns;
  columns.push_back(std::move(column));
  columns.push_back(MakeArray(2, {std::nullopt, std::vector<uint8_t>(32, 0), Bytes<int64_t>({})}));
  EncodedMessage m = EncodeOne(*encoder, Batch(2, std::move(columns)));
  EXPECT_THAT(VariadicCounts(m), ElementsAre(2, 0));
  const auto buffers = Buffers(m);
  ASSERT_EQ(buffers.size(), 4u + 2u);  // validity, views, data0, data1; validity, views
  EXPECT_EQ(buffers[1].address, views_address);
  EXPECT_EQ(buffers[2].address, data0);
  EXPECT_EQ(buffers[2].bytes, "unused");
  EXPECT_EQ(buffers[3].address, data1);
  EXPECT_EQ(buffers[3].bytes.size(), 24u);
}

TEST(EncoderTest, UnionsHaveNoValidityBuffer) {
  auto schema = Columns(
      List(MakeSchema("+us:3,7", "sparse", List(MakeSchema("i", "n"), MakeSchema("u", "s"))),
           MakeSchema("+ud:3,7", "dense", List(MakeSchema("i", "n"), MakeSchema("u", "s")))));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> sparse_children;
  sparse_children.push_back(Int32s({1, 0, 3}));
  sparse_children.push_back(Utf8({"", "b", ""}));
  std::vector<OwnedArray> dense_children;
  dense_children.push_back(Int32s({1, 3}));
  dense_children.push_back(Utf8({"b"}));
  std::vector<OwnedArray> columns;
  columns.push_back(MakeArray(3, {Bytes<int8_t>({3, 7, 3})}, std::move(sparse_children)));
  columns.push_back(MakeArray(3, {Bytes<int8_t>({3, 7, 3}), Bytes<int32_t>({0, 0, 1})},
                              std::move(dense_children)));
  EncodedMessage m = EncodeOne(*encoder, Batch(3, std::move(columns)));
  EXPECT_THAT(Nodes(m),
              ElementsAre(Node{3, 0}, Node{3, 0}, Node{3, 0}, Node{3, 0}, Node{2, 0}, Node{1, 0}));
  const auto buffers = Buffers(m);
  ASSERT_EQ(buffers.size(), 1u + 2u + 3u + 2u + 2u + 3u);
  EXPECT_EQ(buffers[0].bytes, AsBytes<int8_t>({3, 7, 3}));
  EXPECT_EQ(buffers[6].bytes, AsBytes<int8_t>({3, 7, 3}));
  EXPECT_EQ(buffers[7].bytes, AsBytes<int32_t>({0, 0, 1}));
}

TEST(EncoderTest, RunEndEncodedWholeAndSliced) {
  auto schema = Columns(List(MakeSchema(
      "+r", "r", List(MakeSchema("i", "run_ends", {}, {}, 0), MakeSchema("u", "values")))));
  auto make = [](int64_t length, int64_t offset) {
    std::vector<OwnedArray> children;
    children.push_back(MakeArray(3, {std::nullopt, Bytes<int32_t>({2, 5, 9})}));
    children.push_back(Utf8({"a", "b", "c"}));
    return MakeArray(length, {}, std::move(children), {}, offset, 0);
  };
  {
    auto encoder = MakeEncoder(schema);
    auto column = make(9, 0);
    const void* ends = column->children[0]->buffers[1];
    std::vector<OwnedArray> columns;
    columns.push_back(std::move(column));
    EncodedMessage m = EncodeOne(*encoder, Batch(9, std::move(columns)));
    EXPECT_THAT(Nodes(m), ElementsAre(Node{9, 0}, Node{3, 0}, Node{3, 0}));
    EXPECT_EQ(Buffers(m)[1].address, ends);
    EXPECT_EQ(m.copied_bytes, 0);
  }
  {
    auto encoder = MakeEncoder(schema);
    std::vector<OwnedArray> columns;
    columns.push_back(make(4, 3));  // logical rows 3..6: "b" x2, "c" x2
    EncodedMessage m = EncodeOne(*encoder, Batch(4, std::move(columns)));
    EXPECT_THAT(Nodes(m), ElementsAre(Node{4, 0}, Node{2, 0}, Node{2, 0}));
    const auto buffers = Buffers(m);
    EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({2, 4}));
    EXPECT_EQ(buffers[4].bytes, "bc");
    EXPECT_EQ(m.copied_bytes, 8 + 12);  // run ends; the values' rebased offsets
  }
}

TEST(EncoderTest, ListViewsAndMapsAndLargeTypes) {
  auto entries = MakeSchema(
      "+s", "entries", List(MakeSchema("u", "key", {}, {}, 0), MakeSchema("i", "value")), {}, 0);
  auto schema = Columns(List(MakeSchema("+vl", "lv", List(MakeSchema("i", "item"))),
                             MakeSchema("+m", "m", List(std::move(entries))),
                             MakeSchema("U", "big"), MakeSchema("Z", "bigbin")));
  auto encoder = MakeEncoder(schema);
  std::vector<OwnedArray> lv_items;
  lv_items.push_back(Int32s({9, 8, 7, 6}));
  std::vector<OwnedArray> entry_fields;
  entry_fields.push_back(Utf8({"k1", "k2", "k3"}));
  entry_fields.push_back(Int32s({1, 2, 3}));
  std::vector<OwnedArray> entry_struct;
  entry_struct.push_back(MakeArray(3, {std::nullopt}, std::move(entry_fields)));
  std::vector<OwnedArray> columns;
  columns.push_back(MakeArray(2, {std::nullopt, Bytes<int32_t>({2, 0}), Bytes<int32_t>({2, 1})},
                              std::move(lv_items)));
  columns.push_back(
      MakeArray(2, {std::nullopt, Bytes<int32_t>({0, 1, 3})}, std::move(entry_struct)));
  columns.push_back(MakeArray(2, {std::nullopt, Bytes<int64_t>({0, 3, 5}), Chars("abcde")}));
  columns.push_back(MakeArray(2, {std::nullopt, Bytes<int64_t>({0, 0, 1}), Chars("z")}));
  EncodedMessage m = EncodeOne(*encoder, Batch(2, std::move(columns)));
  EXPECT_THAT(Nodes(m), ElementsAre(Node{2, 0}, Node{4, 0}, Node{2, 0}, Node{3, 0}, Node{3, 0},
                                    Node{3, 0}, Node{2, 0}, Node{2, 0}));
  const auto buffers = Buffers(m);
  EXPECT_EQ(buffers[1].bytes, AsBytes<int32_t>({2, 0}));
  EXPECT_EQ(buffers[2].bytes, AsBytes<int32_t>({2, 1}));
  EXPECT_EQ(buffers[4].bytes, AsBytes<int32_t>({9, 8, 7, 6}));
  EXPECT_EQ(buffers[6].bytes, AsBytes<int32_t>({0, 1, 3}));
  EXPECT_EQ(buffers[14].bytes, AsBytes<int64_t>({0, 3, 5}));
  EXPECT_EQ(buffers[15].bytes, "abcde");
  EXPECT_EQ(buffers[17].bytes, AsBytes<int64_t>({0, 0, 1}));
}

TEST(EncoderTest, Alignment64PadsMetadataAndEveryBuffer) {
  auto schema = Columns(List(MakeSchema("i", "a"), MakeSchema("u", "s")));
  EncodeOptions options;
  options.alignment = 64;
  auto encoder = MakeEncoder(schema, options);
  ASSERT_OK_AND_ASSIGN(EncodedMessage schema_message, encoder->EncodeSchema());
  ExpectWellFormed(schema_message, 64);
  std::vector<OwnedArray> columns;
  columns.push_back(Int32s({1, 2, 3}, "101"));
  columns.push_back(Utf8({"a", "bc", "d"}));
  EncodedMessage m = EncodeOne(*encoder, Batch(3, std::move(columns)));
  ExpectWellFormed(m, 64);
  EXPECT_EQ(m.body_length, 4 * 64);
}

TEST(EncoderTest, BatchIsReleasedWhenTheLastMessageIsDropped) {
  auto schema = Columns(List(MakeSchema("i", "a")));
  auto encoder = MakeEncoder(schema);
  const int before = released_test_arrays;
  std::vector<OwnedArray> columns;
  columns.push_back(Int32s({1, 2}));
  ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(Batch(2, std::move(columns))));
  EXPECT_EQ(released_test_arrays, before);
  EncodedMessage copy = messages[0];
  messages.clear();
  EXPECT_EQ(released_test_arrays, before);
  EXPECT_EQ(Buffers(copy)[1].bytes, AsBytes<int32_t>({1, 2}));  // still readable
  copy = EncodedMessage();
  EXPECT_EQ(released_test_arrays, before + 2);  // the batch and its column
}

// ---------------------------------------------------------------------------------------
// Compression

class CompressionEncodeTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CompressionEncodeTest, EachBufferIsPrefixedAndIncompressibleOnesStayZeroCopy) {
  const Codec codec = GetParam();
  auto schema = Columns(List(MakeSchema("l", "compressible"), MakeSchema("c", "random")));
  EncodeOptions options;
  options.codec = codec;
  auto encoder = MakeEncoder(schema, options);
  std::vector<uint8_t> zeros(8 * 1000, 0);
  for (size_t i = 0; i < zeros.size(); i += 8) zeros[i] = static_cast<uint8_t>(i % 7);
  std::vector<uint8_t> random(1000);
  std::mt19937 rng(7);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  std::vector<OwnedArray> columns;
  columns.push_back(MakeArray(1000, {std::nullopt, zeros}));
  columns.push_back(MakeArray(1000, {std::nullopt, random}, {}, {}, 0, 0));
  const void* random_address = columns[1]->buffers[1];
  EncodedMessage m = EncodeOne(*encoder, Batch(1000, std::move(columns)));
  const fb::BodyCompression* compression = RecordBatchOf(m)->compression();
  ASSERT_NE(compression, nullptr);
  EXPECT_EQ(compression->codec(),
            codec == Codec::kZstd ? fb::CompressionType::ZSTD : fb::CompressionType::LZ4_FRAME);
  EXPECT_EQ(compression->method(), fb::BodyCompressionMethod::BUFFER);
  const auto buffers = Buffers(m);
  ASSERT_EQ(buffers.size(), 4u);
  EXPECT_EQ(buffers[0].bytes, "");  // empty buffers stay empty, without a prefix
  int64_t prefix;
  std::memcpy(&prefix, buffers[1].bytes.data(), 8);
  EXPECT_EQ(prefix, 8000);
  EXPECT_LT(buffers[1].bytes.size(), 8000u / 4);
  std::vector<uint8_t> decompressed(8000);
  ASSERT_OK(Decompress(
      codec,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buffers[1].bytes.data()) + 8,
                               buffers[1].bytes.size() - 8),
      decompressed));
  EXPECT_EQ(decompressed, zeros);
  // Random bytes do not compress: -1 and the raw bytes, which point into the column.
  ASSERT_EQ(buffers[3].bytes.size(), 8u + 1000u);
  std::memcpy(&prefix, buffers[3].bytes.data(), 8);
  EXPECT_EQ(prefix, -1);
  EXPECT_EQ(buffers[3].bytes.substr(8), std::string(random.begin(), random.end()));
  const auto* fb_buffer = RecordBatchOf(m)->buffers()->Get(3);
  EXPECT_EQ(AddressAt(m, fb_buffer->offset() + 8), random_address);
}

INSTANTIATE_TEST_SUITE_P(Codecs, CompressionEncodeTest,
                         ::testing::Values(Codec::kLz4Frame, Codec::kZstd),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

// ---------------------------------------------------------------------------------------
// Dictionaries

OwnedArray DictionaryColumn(std::vector<std::optional<std::string>> dictionary,
                            std::initializer_list<int8_t> indices) {
  return MakeArray(static_cast<int64_t>(indices.size()), {std::nullopt, Bytes(indices)}, {},
                   Utf8(std::move(dictionary)));
}

OwnedArray DictionaryBatch(std::vector<std::optional<std::string>> dictionary,
                           std::initializer_list<int8_t> indices) {
  std::vector<OwnedArray> columns;
  columns.push_back(DictionaryColumn(std::move(dictionary), indices));
  return Batch(static_cast<int64_t>(indices.size()), std::move(columns));
}

const fb::DictionaryBatch* DictionaryOf(const EncodedMessage& m) {
  EXPECT_EQ(m.type, MessageType::kDictionaryBatch);
  return MessageOf(m)->header_as_DictionaryBatch();
}

TEST(DictionaryTest, SentOnceThenDeltasThenReplacements) {
  auto schema = Columns(List(MakeSchema("c", "color", {}, MakeSchema("u", ""))));
  auto encoder = MakeEncoder(schema);

  ASSERT_OK_AND_ASSIGN(auto first, encoder->Encode(DictionaryBatch({"red", "green"}, {0, 1, 0})));
  ASSERT_EQ(first.size(), 2u);
  ExpectWellFormed(first[0]);
  EXPECT_EQ(DictionaryOf(first[0])->id(), 0);
  EXPECT_FALSE(DictionaryOf(first[0])->is_delta());
  EXPECT_EQ(DictionaryOf(first[0])->data()->length(), 2);
  EXPECT_EQ(Buffers(first[0])[2].bytes, "redgreen");
  EXPECT_EQ(Buffers(first[1])[1].bytes, AsBytes<int8_t>({0, 1, 0}));

  // Same contents in fresh memory: nothing to send.
  ASSERT_OK_AND_ASSIGN(auto same, encoder->Encode(DictionaryBatch({"red", "green"}, {1})));
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].type, MessageType::kRecordBatch);

  // Extended: a delta with just the new values, pointing into the new dictionary.
  auto batch = DictionaryBatch({"red", "green", "blue", "cyan"}, {2, 3});
  const auto* dictionary_data =
      static_cast<const uint8_t*>(batch->children[0]->dictionary->buffers[2]);
  ASSERT_OK_AND_ASSIGN(auto extended, encoder->Encode(std::move(batch)));
  ASSERT_EQ(extended.size(), 2u);
  ExpectWellFormed(extended[0]);
  EXPECT_TRUE(DictionaryOf(extended[0])->is_delta());
  EXPECT_EQ(DictionaryOf(extended[0])->data()->length(), 2);
  const auto delta = Buffers(extended[0]);
  EXPECT_EQ(delta[1].bytes, AsBytes<int32_t>({0, 4, 8}));
  EXPECT_EQ(delta[2].address, dictionary_data + 8);
  EXPECT_EQ(delta[2].bytes, "bluecyan");

  // Changed: a replacement in a stream.
  ASSERT_OK_AND_ASSIGN(auto changed, encoder->Encode(DictionaryBatch({"x", "green"}, {0})));
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_FALSE(DictionaryOf(changed[0])->is_delta());
  EXPECT_EQ(DictionaryOf(changed[0])->data()->length(), 2);

  // A null in the dictionary makes it differ from one without.
  ASSERT_OK_AND_ASSIGN(auto with_null,
                       encoder->Encode(DictionaryBatch({std::nullopt, "green"}, {1})));
  EXPECT_EQ(with_null.size(), 2u);

  const EncodeStats& stats = encoder->stats();
  EXPECT_EQ(stats.record_batches, 5);
  EXPECT_EQ(stats.dictionary_batches, 4);
  EXPECT_EQ(stats.dictionary_deltas, 1);
  EXPECT_EQ(stats.dictionary_replacements, 2);
}

TEST(DictionaryTest, FileFormatRejectsReplacementButAllowsDeltas) {
  auto schema = Columns(List(MakeSchema("c", "color", {}, MakeSchema("u", ""))));
  EncodeOptions options;
  options.file_format = true;
  auto encoder = MakeEncoder(schema, options);
  ASSERT_OK(encoder->Encode(DictionaryBatch({"red"}, {0})));
  ASSERT_OK_AND_ASSIGN(auto delta, encoder->Encode(DictionaryBatch({"red", "blue"}, {1})));
  EXPECT_TRUE(DictionaryOf(delta[0])->is_delta());
  EXPECT_STATUS(encoder->Encode(DictionaryBatch({"blue", "red"}, {1})),
                StatusCode::kInvalidArgument, "cannot replace");
  // The failed batch changed nothing: the same dictionary still needs nothing sent.
  ASSERT_OK_AND_ASSIGN(auto again, encoder->Encode(DictionaryBatch({"red", "blue"}, {0})));
  EXPECT_EQ(again.size(), 1u);
}

TEST(DictionaryTest, NestedDictionariesComeFirstAndAreNotSentAsDeltas) {
  auto schema = NestedDictionarySchema();
  auto encoder = MakeEncoder(schema);
  auto make_batch = [](std::vector<std::optional<std::string>> inner_values) {
    // outer dictionary: 2 lists of inner indices; inner dictionary: `inner_values`.
    std::vector<OwnedArray> items;
    items.push_back(
        MakeArray(3, {std::nullopt, Bytes<int8_t>({0, 1, 0})}, {}, Utf8(std::move(inner_values))));
    auto outer_dictionary =
        MakeArray(2, {std::nullopt, Bytes<int32_t>({0, 2, 3})}, std::move(items));
    std::vector<OwnedArray> st_fields;
    st_fields.push_back(MakeArray(1, {std::nullopt, Bytes<int16_t>({0})}, {}, Utf8({"s"})));
    std::vector<OwnedArray> columns;
    columns.push_back(
        MakeArray(2, {std::nullopt, Bytes<int32_t>({1, 0})}, {}, std::move(outer_dictionary)));
    columns.push_back(MakeArray(1, {std::nullopt}, std::move(st_fields)));
    return Batch(1, std::move(columns));
  };
  ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(make_batch({"a", "b"})));
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(DictionaryOf(messages[0])->id(), 1);  // inner before outer
  EXPECT_EQ(DictionaryOf(messages[1])->id(), 0);
  EXPECT_EQ(DictionaryOf(messages[2])->id(), 2);
  EXPECT_EQ(messages[3].type, MessageType::kRecordBatch);
  // The outer dictionary batch: list node, then the item indices (no dictionary inside).
  EXPECT_THAT(Nodes(messages[1]), ElementsAre(Node{2, 0}, Node{3, 0}));

  // The inner dictionary grows: a delta for it; the outer one is unchanged.
  ASSERT_OK_AND_ASSIGN(auto grown, encoder->Encode(make_batch({"a", "b", "c"})));
  ASSERT_EQ(grown.size(), 2u);
  EXPECT_EQ(DictionaryOf(grown[0])->id(), 1);
  EXPECT_TRUE(DictionaryOf(grown[0])->is_delta());
  // The inner dictionary changes: the outer one (whose values decode differently now) too.
  ASSERT_OK_AND_ASSIGN(auto changed, encoder->Encode(make_batch({"b", "a", "c"})));
  ASSERT_EQ(changed.size(), 3u);
  EXPECT_EQ(DictionaryOf(changed[0])->id(), 1);
  EXPECT_EQ(DictionaryOf(changed[1])->id(), 0);
  EXPECT_FALSE(DictionaryOf(changed[1])->is_delta());
}

TEST(DictionaryTest, DictionaryValuesOfNestedTypesCompareByValue) {
  // Dictionary of structs {a: int32, b: utf8}; second batch extends it.
  auto schema = Columns(List(MakeSchema(
      "i", "d", {}, MakeSchema("+s", "", List(MakeSchema("i", "a"), MakeSchema("u", "b"))))));
  auto encoder = MakeEncoder(schema);
  auto make_batch = [](std::initializer_list<int32_t> a,
                       std::vector<std::optional<std::string>> b) {
    const int64_t n = static_cast<int64_t>(a.size());
    std::vector<OwnedArray> fields;
    fields.push_back(Int32s(a));
    fields.push_back(Utf8(std::move(b)));
    std::vector<OwnedArray> columns;
    columns.push_back(MakeArray(1, {std::nullopt, Bytes<int32_t>({0})}, {},
                                MakeArray(n, {std::nullopt}, std::move(fields))));
    return Batch(1, std::move(columns));
  };
  ASSERT_OK_AND_ASSIGN(auto first, encoder->Encode(make_batch({1, 2}, {"x", "y"})));
  EXPECT_EQ(first.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto same, encoder->Encode(make_batch({1, 2}, {"x", "y"})));
  EXPECT_EQ(same.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto delta, encoder->Encode(make_batch({1, 2, 3}, {"x", "y", "z"})));
  ASSERT_EQ(delta.size(), 2u);
  EXPECT_TRUE(DictionaryOf(delta[0])->is_delta());
  EXPECT_THAT(Nodes(delta[0]), ElementsAre(Node{1, 0}, Node{1, 0}, Node{1, 0}));
  ASSERT_OK_AND_ASSIGN(auto changed, encoder->Encode(make_batch({1, 5, 3}, {"x", "y", "z"})));
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_FALSE(DictionaryOf(changed[0])->is_delta());
}

// ---------------------------------------------------------------------------------------
// Invalid input

TEST(EncoderTest, InvalidBatchesAreRejectedWithContext) {
  auto schema =
      Columns(List(MakeSchema("i", "a"), MakeSchema("+l", "l", List(MakeSchema("u", "item")))));
  auto encoder = MakeEncoder(schema);
  auto good_list = [] {
    std::vector<OwnedArray> items;
    items.push_back(Utf8({"p", "q"}));
    return MakeArray(2, {std::nullopt, Bytes<int32_t>({0, 1, 2})}, std::move(items));
  };
  auto batch = [](OwnedArray a, OwnedArray l, int64_t length = 2) {
    std::vector<OwnedArray> columns;
    columns.push_back(std::move(a));
    columns.push_back(std::move(l));
    return Batch(length, std::move(columns));
  };

  EXPECT_STATUS(encoder->Encode(OwnedArray()), StatusCode::kInvalidArgument, "released");
  {
    std::vector<OwnedArray> one;
    one.push_back(Int32s({1, 2}));
    EXPECT_STATUS(encoder->Encode(Batch(2, std::move(one))), StatusCode::kInvalidArgument,
                  "1 columns, the schema has 2");
  }
  EXPECT_STATUS(encoder->Encode(batch(Int32s({1, 2}), good_list(), -1)),
                StatusCode::kInvalidArgument, "bad length");
  EXPECT_STATUS(encoder->Encode(batch(Int32s({1, 2}), good_list(), 3)),
                StatusCode::kInvalidArgument, "field 'a': rows [0, 3) are outside");
  EXPECT_STATUS(encoder->Encode(batch(MakeArray(2, {std::nullopt, std::nullopt}), good_list())),
                StatusCode::kInvalidArgument, "field 'a': a data buffer is null");
  EXPECT_STATUS(
      encoder->Encode(
          batch(MakeArray(2, {std::nullopt, Bytes<int32_t>({1, 2})}, {}, {}, 0, 3), good_list())),
      StatusCode::kInvalidArgument, "null_count 3");
  EXPECT_STATUS(
      encoder->Encode(
          batch(MakeArray(2, {std::nullopt, Bytes<int32_t>({1, 2})}, {}, {}, 0, 1), good_list())),
      StatusCode::kInvalidArgument, "no validity bitmap");
  EXPECT_STATUS(encoder->Encode(batch(MakeArray(2, {Bytes<int32_t>({1, 2})}), good_list())),
                StatusCode::kInvalidArgument, "1 buffers");
  EXPECT_STATUS(
      encoder->Encode(batch(MakeArray(2, {std::nullopt, Bytes<int32_t>({1, 2})}, {}, Utf8({"x"})),
                            good_list())),
      StatusCode::kInvalidArgument, "has a dictionary");
  {
    std::vector<OwnedArray> items;
    items.push_back(Utf8({"p", "q"}));
    auto list = MakeArray(2, {std::nullopt, Bytes<int32_t>({2, 1, 0})}, std::move(items));
    EXPECT_STATUS(encoder->Encode(batch(Int32s({1, 2}), std::move(list))),
                  StatusCode::kInvalidArgument,
                  "field 'l': offsets of rows [0, 2) run from 2 to 0");
  }
  {
    std::vector<OwnedArray> items;
    items.push_back(Utf8({"p", "q"}));
    auto list = MakeArray(2, {std::nullopt, Bytes<int32_t>({0, 1, 5})}, std::move(items));
    EXPECT_STATUS(encoder->Encode(batch(Int32s({1, 2}), std::move(list))),
                  StatusCode::kInvalidArgument, "field 'l.item': rows [0, 5) are outside");
  }
  {
    auto list = MakeArray(2, {std::nullopt, Bytes<int32_t>({0, 1, 2})});
    EXPECT_STATUS(encoder->Encode(batch(Int32s({1, 2}), std::move(list))),
                  StatusCode::kInvalidArgument, "0 children, the schema has 1");
  }
  {
    auto l = good_list();
    // A released child; its storage is freed by hand once the batch is gone.
    void* child_storage = l->children[0]->private_data;
    l->children[0]->release = nullptr;
    EXPECT_STATUS(encoder->Encode(batch(Int32s({1, 2}), std::move(l))),
                  StatusCode::kInvalidArgument, "field 'l.item': array is released");
    test_arrays::FreeTestArrayData(child_storage);
  }
  {
    std::vector<uint8_t> bits = Bits("10");
    std::vector<OwnedArray> columns;
    columns.push_back(Int32s({1, 2}));
    columns.push_back(good_list());
    auto b = MakeArray(2, {bits}, std::move(columns), {}, 0, -1);
    EXPECT_STATUS(encoder->Encode(std::move(b)), StatusCode::kInvalidArgument, "null rows");
  }
  // The encoder still works.
  ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(batch(Int32s({7, 8}), good_list())));
  EXPECT_EQ(messages.size(), 1u);
  EXPECT_EQ(encoder->stats().record_batches, 1);
}

// ---------------------------------------------------------------------------------------
// DuckDB output

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

// Every type DuckDB exports, NULLs in most columns; 5000 rows = 3 batches of up to 2048.
constexpr char kEveryTypeQuery[] = R"sql(
SELECT
  i AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i % 3 = 0 END AS b,
  (i % 127)::TINYINT AS i8, (i * 3)::SMALLINT AS i16,
  CASE WHEN i % 7 = 3 THEN NULL ELSE (i * 100003)::INTEGER END AS i32,
  i * 1000000007 AS i64, (i % 200)::UTINYINT AS u8, (i * 7)::USMALLINT AS u16,
  (i * 1000)::UINTEGER AS u32, (i * 3000000000000)::UBIGINT AS u64,
  CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 7.0)::FLOAT END AS f32,
  (i / 3.0)::DOUBLE AS f64,
  (i / 10.0)::DECIMAL(4, 1) AS d4, (i * 1.25)::DECIMAL(9, 2) AS d9,
  (i * 1000.125)::DECIMAL(18, 3) AS d18, (i * 12345678901.5)::DECIMAL(38, 10) AS d38,
  i::HUGEINT * 1000000000000000000000 AS huge,
  CASE WHEN i % 11 = 0 THEN NULL ELSE DATE '2020-01-01' + i::INTEGER END AS dt,
  TIME '00:00:00' + INTERVAL (i) SECOND AS tm,
  TIMESTAMP '2020-01-01' + INTERVAL (i) MINUTE AS ts,
  (TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_S AS ts_s,
  (TIMESTAMP '2020-01-01' + INTERVAL (i) MILLISECOND)::TIMESTAMP_MS AS ts_ms,
  (TIMESTAMP '2020-01-01' + INTERVAL (i) MICROSECOND)::TIMESTAMP_NS AS ts_ns,
  TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) HOUR AS tstz,
  INTERVAL (i % 30) DAY + INTERVAL (i) MICROSECOND + INTERVAL (i % 5) MONTH AS iv,
  CASE WHEN i % 13 = 0 THEN NULL ELSE 'str-' || i || repeat('x', (i % 20)::INTEGER) END AS s,
  ('blob' || i)::BLOB AS bl,
  md5(i::VARCHAR)::UUID AS uid,
  NULL AS nothing,
  CASE WHEN i % 9 = 0 THEN NULL
       ELSE list_transform(range(i % 5), x -> CASE WHEN x = 2 THEN NULL ELSE x + i END) END AS li,
  CAST([i::INTEGER, (i * 2)::INTEGER, NULL] AS INTEGER[3]) AS arr,
  CASE WHEN i % 8 = 0 THEN NULL ELSE {'a': i, 'b': 'n' || i, 'c': [i, i + 1]} END AS st,
  CASE WHEN i % 10 = 0 THEN NULL ELSE MAP {'k' || (i % 3): i, 'z': i + 1} END AS mp,
  CASE WHEN i % 4 = 1 THEN i::UNION(num BIGINT, str VARCHAR)
       ELSE ('u' || i)::UNION(num BIGINT, str VARCHAR) END AS un,
  CASE WHEN i % 7 = 5 THEN NULL
       ELSE (['red', 'green', 'blue'])[(i % 3) + 1]::ENUM('red', 'green', 'blue') END AS en
FROM range(5000) t(i)
)sql";

bool TestBit(const void* bits, int64_t i) {
  return (static_cast<const uint8_t*>(bits)[i / 8] >> (i % 8)) & 1;
}

// The addresses the IPC buffers of an unsliced array (offset 0 everywhere, offsets starting
// at 0, as DuckDB makes them) must have, in the spec's depth-first order; null for a buffer
// that must be empty. Written from the columnar format spec, independently of the encoder.
void ExpectedAddresses(const ArrowSchema& schema, const ArrowArray& array,
                       std::vector<const void*>* out) {
  ASSERT_EQ(array.offset, 0);
  const DataType t = ParseFormat(schema.format).value();
  const bool dictionary = schema.dictionary != nullptr;
  const bool has_validity =
      dictionary || (t.id != TypeId::kNull && t.id != TypeId::kDenseUnion &&
                     t.id != TypeId::kSparseUnion && t.id != TypeId::kRunEndEncoded);
  if (has_validity) {
    int64_t nulls = 0;
    if (array.buffers[0] != nullptr) {
      for (int64_t i = 0; i < array.length; ++i) nulls += !TestBit(array.buffers[0], i);
    }
    out->push_back(nulls > 0 ? array.buffers[0] : nullptr);
  }
  auto nonempty = [&](int k) { return array.length > 0 ? array.buffers[k] : nullptr; };
  if (dictionary) {
    out->push_back(nonempty(1));
    return;
  }
  switch (t.id) {
    case TypeId::kNull:
      break;
    case TypeId::kBinary:
    case TypeId::kUtf8: {
      out->push_back(array.buffers[1]);
      const int32_t size = static_cast<const int32_t*>(array.buffers[1])[array.length];
      out->push_back(size > 0 ? array.buffers[2] : nullptr);
      break;
    }
    case TypeId::kList:
    case TypeId::kMap:
      out->push_back(array.buffers[1]);
      ExpectedAddresses(*schema.children[0], *array.children[0], out);
      break;
    case TypeId::kFixedSizeList:
    case TypeId::kStruct:
      for (int64_t i = 0; i < array.n_children; ++i) {
        ExpectedAddresses(*schema.children[i], *array.children[i], out);
      }
      break;
    case TypeId::kSparseUnion:
      out->push_back(nonempty(0));
      for (int64_t i = 0; i < array.n_children; ++i) {
        ExpectedAddresses(*schema.children[i], *array.children[i], out);
      }
      break;
    default:
      ASSERT_GT(t.FixedBitWidth(), 0) << schema.format << " is not covered by this test";
      out->push_back(nonempty(1));
  }
}

TEST(EncoderDuckDBTest, EveryTypeIsEncodedWithoutCopying) {
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  ASSERT_OK_AND_ASSIGN(auto stream, duck->session->Query(kEveryTypeQuery));
  const ArrowSchema& schema = stream->schema();
  ASSERT_OK_AND_ASSIGN(auto encoder, RecordBatchEncoder::Make(schema));
  ASSERT_OK_AND_ASSIGN(EncodedMessage schema_message, encoder->EncodeSchema());
  ExpectWellFormed(schema_message);
  const auto* fields = MessageOf(schema_message)->header_as_Schema()->fields();
  ASSERT_EQ(static_cast<int64_t>(fields->size()), schema.n_children);
  int64_t enum_column = -1;
  for (int64_t i = 0; i < schema.n_children; ++i) {
    EXPECT_EQ(fields->Get(i)->name()->str(), schema.children[i]->name);
    if (schema.children[i]->dictionary != nullptr) enum_column = i;
  }
  ASSERT_GE(enum_column, 0);
  EXPECT_EQ(fields->Get(enum_column)->dictionary()->id(), 0);
  EXPECT_FALSE(fields->Get(enum_column)->dictionary()->index_type()->is_signed());

  int64_t rows = 0;
  int batches = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(OwnedArray batch, stream->Next());
    if (!batch.valid()) break;
    std::vector<const void*> expected;
    for (int64_t i = 0; i < schema.n_children; ++i) {
      ExpectedAddresses(*schema.children[i], *batch->children[i], &expected);
    }
    const void* enum_values = batch->children[enum_column]->dictionary->buffers[2];
    const int64_t length = batch->length;
    ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(std::move(batch)));
    // The ENUM's dictionary goes out with the first batch only.
    ASSERT_EQ(messages.size(), batches == 0 ? 2u : 1u);
    if (batches == 0) {
      ExpectWellFormed(messages[0]);
      EXPECT_EQ(DictionaryOf(messages[0])->id(), 0);
      EXPECT_EQ(Buffers(messages[0])[2].address, enum_values);
      EXPECT_EQ(Buffers(messages[0])[2].bytes, "redgreenblue");
    }
    const EncodedMessage& m = messages.back();
    ExpectWellFormed(m);
    EXPECT_EQ(RecordBatchOf(m)->length(), length);
    EXPECT_EQ(m.copied_bytes, 0);
    std::vector<const void*> actual;
    for (const BufferView& b : Buffers(m)) actual.push_back(b.address);
    EXPECT_EQ(actual, expected);
    EXPECT_EQ(Nodes(m)[0], (Node{length, 0}));
    rows += length;
    ++batches;
  }
  EXPECT_EQ(rows, 5000);
  EXPECT_GE(batches, 3);
  EXPECT_EQ(encoder->stats().copied_bytes, 0);
}

}  // namespace
}  // namespace bridge::ipc
