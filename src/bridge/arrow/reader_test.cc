#include "bridge/arrow/reader.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bridge/arrow/compression.h"
#include "bridge/arrow/fb/File_generated.h"
#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/common/testing.h"

namespace bridge::ipc {
namespace {

using ::bridge::testing::ReadFile;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using KeyValues = std::vector<std::pair<std::string, std::string>>;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------
// Building IPC messages by hand (with the generated flatbuffers builders), so that tests
// control every field, valid or not.

using TypeMaker = std::function<Offset<void>(FlatBufferBuilder&)>;

struct TestField {
  std::string name;
  fb::Type type = fb::Type::NONE;
  TypeMaker make_type;
  std::vector<TestField> children;
  bool nullable = true;
  std::optional<int64_t> dictionary_id;
  int index_bits = 32;
  bool index_signed = true;
  bool ordered = false;
  KeyValues metadata;
};

TestField Field(std::string name, fb::Type type, TypeMaker make,
                std::vector<TestField> children = {}) {
  TestField f;
  f.name = std::move(name);
  f.type = type;
  f.make_type = std::move(make);
  f.children = std::move(children);
  return f;
}

TestField IntField(std::string name, int bits = 32, bool is_signed = true) {
  return Field(std::move(name), fb::Type::Int,
               [=](FlatBufferBuilder& b) { return fb::CreateInt(b, bits, is_signed).Union(); });
}
TestField Utf8Field(std::string name) {
  return Field(std::move(name), fb::Type::Utf8,
               [](FlatBufferBuilder& b) { return fb::CreateUtf8(b).Union(); });
}
TestField ListField(std::string name, TestField child) {
  return Field(std::move(name), fb::Type::List,
               [](FlatBufferBuilder& b) { return fb::CreateList(b).Union(); }, {std::move(child)});
}
TestField StructField(std::string name, std::vector<TestField> children) {
  return Field(
      std::move(name), fb::Type::Struct_,
      [](FlatBufferBuilder& b) { return fb::CreateStruct_(b).Union(); }, std::move(children));
}
TestField Dictionary(TestField values, int64_t id, int index_bits = 32, bool index_signed = true) {
  values.dictionary_id = id;
  values.index_bits = index_bits;
  values.index_signed = index_signed;
  return values;
}
TestField NotNull(TestField f) {
  f.nullable = false;
  return f;
}

Offset<flatbuffers::Vector<Offset<fb::KeyValue>>> BuildMetadata(FlatBufferBuilder& b,
                                                                const KeyValues& pairs) {
  if (pairs.empty()) return 0;
  std::vector<Offset<fb::KeyValue>> out;
  for (const auto& [key, value] : pairs) {
    out.push_back(fb::CreateKeyValue(b, b.CreateString(key), b.CreateString(value)));
  }
  return b.CreateVector(out);
}

Offset<fb::Field> BuildField(FlatBufferBuilder& b, const TestField& f) {
  std::vector<Offset<fb::Field>> children;
  for (const TestField& child : f.children) children.push_back(BuildField(b, child));
  auto children_vector = b.CreateVector(children);
  auto name = b.CreateString(f.name);
  Offset<void> type = f.make_type ? f.make_type(b) : Offset<void>();
  Offset<fb::DictionaryEncoding> dictionary = 0;
  if (f.dictionary_id.has_value()) {
    dictionary = fb::CreateDictionaryEncoding(
        b, *f.dictionary_id, fb::CreateInt(b, f.index_bits, f.index_signed), f.ordered);
  }
  auto metadata = BuildMetadata(b, f.metadata);
  return fb::CreateField(b, name, f.nullable, f.type, type, dictionary, children_vector, metadata);
}

Offset<fb::Schema> BuildSchema(FlatBufferBuilder& b, const std::vector<TestField>& fields,
                               const KeyValues& metadata) {
  std::vector<Offset<fb::Field>> built;
  for (const TestField& f : fields) built.push_back(BuildField(b, f));
  auto fields_vector = b.CreateVector(built);
  auto metadata_vector = BuildMetadata(b, metadata);
  return fb::CreateSchema(b, fb::Endianness::Little, fields_vector, metadata_vector);
}

std::string Int32Bytes(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string Int64Bytes(int64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

// One message: its flatbuffer (unframed) and its body.
struct Encoded {
  std::string flatbuffer;
  std::string body;
};

std::string Bytes(const FlatBufferBuilder& b) {
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

// The encapsulated form: continuation marker (unless legacy), padded length, flatbuffer,
// padding, body.
std::string Frame(const Encoded& m, bool legacy = false) {
  std::string metadata = m.flatbuffer;
  const size_t prefix = legacy ? 4 : 8;
  while ((prefix + metadata.size()) % 8 != 0) metadata.push_back('\0');
  std::string out;
  if (!legacy) out += Int32Bytes(-1);
  out += Int32Bytes(static_cast<int32_t>(metadata.size()));
  out += metadata;
  out += m.body;
  return out;
}

std::string Eos() { return Int32Bytes(-1) + Int32Bytes(0); }

Encoded SchemaEncoded(const std::vector<TestField>& fields, const KeyValues& metadata = {},
                      fb::MetadataVersion version = fb::MetadataVersion::V5) {
  FlatBufferBuilder b;
  auto schema = BuildSchema(b, fields, metadata);
  b.Finish(fb::CreateMessage(b, version, fb::MessageHeader::Schema, schema.Union(), 0));
  return {Bytes(b), ""};
}

std::string SchemaMessage(const std::vector<TestField>& fields, const KeyValues& metadata = {},
                          fb::MetadataVersion version = fb::MetadataVersion::V5,
                          bool legacy = false) {
  return Frame(SchemaEncoded(fields, metadata, version), legacy);
}

struct TestBatch {
  int64_t length = 0;
  std::vector<fb::FieldNode> nodes;
  std::vector<std::string> buffers;  // laid out 8-byte aligned in the body
  std::vector<int64_t> variadic_counts;
  std::optional<fb::CompressionType> codec;  // buffers then carry their own length prefix
  fb::MetadataVersion version = fb::MetadataVersion::V5;
  // When set: the body as is and the (offset, length) of each buffer in it.
  std::optional<std::string> raw_body;
  std::vector<fb::Buffer> raw_layout;
};

Offset<fb::RecordBatch> BuildRecordBatch(FlatBufferBuilder& b, const TestBatch& batch,
                                         std::string& body) {
  std::vector<fb::Buffer> layout;
  if (batch.raw_body.has_value()) {
    body = *batch.raw_body;
    layout = batch.raw_layout;
  } else {
    for (const std::string& buffer : batch.buffers) {
      layout.emplace_back(static_cast<int64_t>(body.size()), static_cast<int64_t>(buffer.size()));
      body += buffer;
      while (body.size() % 8 != 0) body.push_back('\0');
    }
  }
  auto nodes = b.CreateVectorOfStructs(batch.nodes);
  auto buffers = b.CreateVectorOfStructs(layout);
  Offset<fb::BodyCompression> compression = 0;
  if (batch.codec.has_value()) compression = fb::CreateBodyCompression(b, *batch.codec);
  Offset<flatbuffers::Vector<int64_t>> variadic = 0;
  if (!batch.variadic_counts.empty()) variadic = b.CreateVector(batch.variadic_counts);
  return fb::CreateRecordBatch(b, batch.length, nodes, buffers, compression, variadic);
}

Encoded BatchEncoded(const TestBatch& batch) {
  FlatBufferBuilder b;
  std::string body;
  auto record_batch = BuildRecordBatch(b, batch, body);
  b.Finish(fb::CreateMessage(b, batch.version, fb::MessageHeader::RecordBatch, record_batch.Union(),
                             static_cast<int64_t>(body.size())));
  return {Bytes(b), body};
}

std::string BatchMessage(const TestBatch& batch, bool legacy = false) {
  return Frame(BatchEncoded(batch), legacy);
}

std::string DictionaryMessage(int64_t id, const TestBatch& batch, bool delta = false) {
  FlatBufferBuilder b;
  std::string body;
  auto record_batch = BuildRecordBatch(b, batch, body);
  auto dictionary = fb::CreateDictionaryBatch(b, id, record_batch, delta);
  b.Finish(fb::CreateMessage(b, batch.version, fb::MessageHeader::DictionaryBatch,
                             dictionary.Union(), static_cast<int64_t>(body.size())));
  return Frame({Bytes(b), body});
}

template <typename T>
std::string Values(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

std::string Bits(std::initializer_list<int> bits) {
  std::string out((bits.size() + 7) / 8, '\0');
  size_t i = 0;
  for (int bit : bits) {
    if (bit != 0) out[i / 8] = static_cast<char>(out[i / 8] | (1 << (i % 8)));
    ++i;
  }
  return out;
}

// An IPC file: magic, the stream (schema, dictionaries, batches, EOS), footer, magic.
// `block_edit` may alter the footer blocks (to make them lie).
std::string MakeFile(const std::vector<TestField>& fields,
                     const std::vector<std::string>& dictionaries,
                     const std::vector<std::string>& batches,
                     const std::function<void(std::vector<fb::Block>&)>& block_edit = {}) {
  std::string out("ARROW1\0\0", 8);
  out += SchemaMessage(fields);
  auto add = [&](const std::string& message, std::vector<fb::Block>& blocks) {
    int32_t metadata_length;
    std::memcpy(&metadata_length, message.data() + 4, 4);
    const int64_t meta = 8 + metadata_length;
    blocks.emplace_back(static_cast<int64_t>(out.size()), static_cast<int32_t>(meta),
                        static_cast<int64_t>(message.size()) - meta);
    out += message;
  };
  std::vector<fb::Block> dictionary_blocks, batch_blocks;
  for (const auto& m : dictionaries) add(m, dictionary_blocks);
  for (const auto& m : batches) add(m, batch_blocks);
  out += Eos();
  if (block_edit) block_edit(batch_blocks);
  FlatBufferBuilder b;
  auto schema = BuildSchema(b, fields, {});
  auto d = b.CreateVectorOfStructs(dictionary_blocks);
  auto r = b.CreateVectorOfStructs(batch_blocks);
  b.Finish(fb::CreateFooter(b, fb::MetadataVersion::V5, schema, d, r));
  const std::string footer = Bytes(b);
  out += footer;
  out += Int32Bytes(static_cast<int32_t>(footer.size()));
  out += "ARROW1";
  return out;
}

// ---------------------------------------------------------------------------------------
// Reading helpers

std::span<const uint8_t> AsSpan(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Result<OwnedSchema> DecodeSchemaBytes(const std::string& message, ReadOptions options = {}) {
  return DecodeSchemaMessage(AsSpan(message), options);
}

std::filesystem::path SharedDir() {
  const char* shared = std::getenv("BRIDGE_SHARED_DIR");
  return std::filesystem::path(shared != nullptr ? shared : BRIDGE_DEFAULT_SHARED_DIR);
}

std::filesystem::path Golden(const std::string& relative) {
  return SharedDir() / "arrow-testing" / "integration" / relative;
}

struct StreamResult {
  Status status;  // of opening or of the first failing Next()
  std::vector<OwnedArray> batches;
  std::unique_ptr<RecordBatchReader> reader;
};

StreamResult Drain(Result<std::unique_ptr<RecordBatchReader>> opened) {
  StreamResult out;
  if (!opened.ok()) {
    out.status = opened.status();
    return out;
  }
  out.reader = std::move(opened).value();
  while (true) {
    Result<OwnedArray> batch = out.reader->Next();
    if (!batch.ok()) {
      out.status = batch.status();
      return out;
    }
    if (!batch->valid()) return out;
    out.batches.push_back(std::move(batch).value());
  }
}

StreamResult ReadStream(const std::string& bytes, ReadOptions options = {}) {
  return Drain(OpenStreamReader(Buffer::FromString(bytes), options));
}

// Hands out its bytes `chunk` at a time.
class ChunkedSource : public ByteSource {
 public:
  ChunkedSource(std::string bytes, size_t chunk) : bytes_(std::move(bytes)), chunk_(chunk) {}
  Result<size_t> Read(uint8_t* out, size_t max) override {
    const size_t n = std::min({max, bytes_.size() - position_, chunk_});
    std::copy_n(bytes_.data() + position_, n, out);
    position_ += n;
    return n;
  }

 private:
  std::string bytes_;
  size_t chunk_;
  size_t position_ = 0;
};

StreamResult ReadFromSource(const std::string& bytes, size_t chunk = 3, ReadOptions options = {}) {
  return Drain(OpenStreamReader(std::make_unique<ChunkedSource>(bytes, chunk), options));
}

template <typename T>
T ValueAt(const ArrowArray& array, int buffer, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(array.buffers[buffer]) + i * sizeof(T), sizeof(T));
  return v;
}

bool IsValid(const ArrowArray& array, int64_t i) {
  if (array.buffers[0] == nullptr) return true;
  const auto* bits = static_cast<const uint8_t*>(array.buffers[0]);
  return (bits[i / 8] >> (i % 8)) & 1;
}

// Value i of a utf8/binary array with 32-bit offsets.
std::string StringAt(const ArrowArray& array, int64_t i) {
  const int32_t begin = ValueAt<int32_t>(array, 1, array.offset + i);
  const int32_t end = ValueAt<int32_t>(array, 1, array.offset + i + 1);
  return std::string(static_cast<const char*>(array.buffers[2]) + begin, end - begin);
}

KeyValues ParseMetadata(const char* metadata) {
  KeyValues out;
  if (metadata == nullptr) return out;
  auto read_int = [&]() {
    int32_t v;
    std::memcpy(&v, metadata, 4);
    metadata += 4;
    return v;
  };
  const int32_t n = read_int();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t key_length = read_int();
    std::string key(metadata, key_length);
    metadata += key_length;
    const int32_t value_length = read_int();
    std::string value(metadata, value_length);
    metadata += value_length;
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Golden files written by other Arrow implementations

std::vector<std::filesystem::path> GoldenFiles(const std::string& extension) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator(Golden(""), ec)) {
    for (const auto& file : std::filesystem::directory_iterator(dir.path(), ec)) {
      if (file.path().extension() == extension) out.push_back(file.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ReaderGoldenTest, EveryStreamAndFileDecodes) {
  const auto streams = GoldenFiles(".stream");
  ASSERT_GE(streams.size(), 27u);
  for (const auto& path : streams) {
    SCOPED_TRACE(path.string());
    StreamResult stream = ReadStream(ReadFile(path));
    ASSERT_OK(stream.status);
    StreamResult from_source = ReadFromSource(ReadFile(path), 1000);
    ASSERT_OK(from_source.status);
    EXPECT_EQ(from_source.batches.size(), stream.batches.size());

    std::filesystem::path file_path = path;
    file_path.replace_extension(".arrow_file");
    const std::string file_bytes = ReadFile(file_path);
    ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(file_bytes)));
    ASSERT_EQ(file->num_batches(), static_cast<int64_t>(stream.batches.size()));
    for (int64_t i = file->num_batches() - 1; i >= 0; --i) {
      ASSERT_OK_AND_ASSIGN(OwnedArray batch, file->ReadBatch(i));
      EXPECT_EQ(batch->length, stream.batches[static_cast<size_t>(i)]->length);
      EXPECT_EQ(batch->n_children, stream.reader->schema().n_children);
    }
    EXPECT_EQ(file->schema().n_children, stream.reader->schema().n_children);
    // The stream section of the file is itself a stream with the same batches.
    auto [offset, length] = file->stream_section();
    EXPECT_EQ(offset, 8);
    StreamResult section = ReadStream(file_bytes.substr(offset, length));
    ASSERT_OK(section.status);
    EXPECT_EQ(section.batches.size(), stream.batches.size());
  }
}

TEST(ReaderGoldenTest, PrimitiveValues) {
  StreamResult r = ReadStream(ReadFile(Golden("1.0.0-littleendian/generated_primitive.stream")));
  ASSERT_OK(r.status);
  ASSERT_EQ(r.batches.size(), 2u);
  const ArrowSchema& schema = r.reader->schema();
  EXPECT_STREQ(schema.format, "+s");
  ASSERT_GE(schema.n_children, 12);
  EXPECT_STREQ(schema.children[0]->name, "bool_nullable");
  EXPECT_STREQ(schema.children[0]->format, "b");
  EXPECT_EQ(schema.children[0]->flags & ARROW_FLAG_NULLABLE, ARROW_FLAG_NULLABLE);
  EXPECT_EQ(schema.children[1]->flags & ARROW_FLAG_NULLABLE, 0);
  EXPECT_STREQ(schema.children[2]->format, "c");

  const ArrowArray& batch = *r.batches[0];
  EXPECT_STREQ(batch.n_buffers == 1 ? "ok" : "bad", "ok");
  ASSERT_EQ(batch.length, 17);
  // bool_nullable: VALIDITY 0,0,1,0,0,0,1,1,1,1,1,0,1,1,0,1,0 and in the valid slots
  // DATA T (2), F, F, T, F, T (6..10), F, T (12, 13), F (15).
  const ArrowArray& bools = *batch.children[0];
  const std::vector<int> validity = {0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0};
  const std::vector<std::pair<int, bool>> values = {{2, true},   {6, false}, {7, false},
                                                    {8, true},   {9, false}, {10, true},
                                                    {12, false}, {13, true}, {15, false}};
  EXPECT_EQ(bools.null_count, 8);
  for (int i = 0; i < 17; ++i) EXPECT_EQ(IsValid(bools, i), validity[i] == 1) << i;
  const auto* bool_bits = static_cast<const uint8_t*>(bools.buffers[1]);
  for (auto [i, value] : values) EXPECT_EQ(((bool_bits[i / 8] >> (i % 8)) & 1) == 1, value) << i;
  // int8_nullable: -128, 127, 27, -90, -40, 96
  const ArrowArray& int8s = *batch.children[2];
  EXPECT_EQ(ValueAt<int8_t>(int8s, 1, 0), -128);
  EXPECT_EQ(ValueAt<int8_t>(int8s, 1, 1), 127);
  EXPECT_EQ(ValueAt<int8_t>(int8s, 1, 3), -90);
  // int32_nonnullable: -2147483648, 2147483647, -523457287
  const ArrowArray& int32s = *batch.children[7];
  EXPECT_STREQ(schema.children[7]->name, "int32_nonnullable");
  EXPECT_EQ(ValueAt<int32_t>(int32s, 1, 2), -523457287);
  EXPECT_EQ(int32s.null_count, 0);
  EXPECT_EQ(int32s.buffers[0], nullptr);
  // utf8_nonnullable: "co矢2p矢m", "wÂ€acrd"
  for (int64_t i = 0; i < schema.n_children; ++i) {
    if (std::string(schema.children[i]->name) != "utf8_nonnullable") continue;
    const ArrowArray& strings = *batch.children[i];
    EXPECT_EQ(StringAt(strings, 0),
              "co\xE7\x9F\xA2"
              "2p\xE7\x9F\xA2m");
    EXPECT_EQ(StringAt(strings, 1),
              "w\xC3\x82\xE2\x82\xAC"
              "acrd");
  }
  EXPECT_EQ(r.reader->stats().batches, 2);
  EXPECT_EQ(r.reader->stats().bytes_copied, 0);
}

TEST(ReaderGoldenTest, DictionaryValues) {
  StreamResult r = ReadStream(ReadFile(Golden("1.0.0-littleendian/generated_dictionary.stream")));
  ASSERT_OK(r.status);
  const ArrowSchema& dict0 = *r.reader->schema().children[0];
  EXPECT_STREQ(dict0.format, "c");
  ASSERT_NE(dict0.dictionary, nullptr);
  EXPECT_STREQ(dict0.dictionary->format, "u");
  // dict0 batch 0: VALIDITY 1,0,1..., indices 2,7,3; dictionary 0 has 10 strings.
  const ArrowArray& column = *r.batches[0]->children[0];
  ASSERT_NE(column.dictionary, nullptr);
  EXPECT_EQ(column.dictionary->length, 10);
  EXPECT_EQ(ValueAt<int8_t>(column, 1, 0), 2);
  EXPECT_EQ(ValueAt<int8_t>(column, 1, 2), 3);
  EXPECT_EQ(StringAt(*column.dictionary, 2),
            "nwg\xE2\x82\xAC"
            "6d\xE2\x82\xAC");
  EXPECT_EQ(r.reader->stats().dictionary_batches, 3);
}

TEST(ReaderGoldenTest, SharedDictionary) {
  StreamResult r = ReadStream(ReadFile(Golden("4.0.0-shareddict/generated_shared_dict.stream")));
  ASSERT_OK(r.status);
  ASSERT_EQ(r.batches.size(), 1u);
  const ArrowArray& col1 = *r.batches[0]->children[0];
  const ArrowArray& col2 = *r.batches[0]->children[1];
  EXPECT_EQ(StringAt(*col1.dictionary, ValueAt<int16_t>(col1, 1, 1)), "bar");
  EXPECT_EQ(StringAt(*col2.dictionary, ValueAt<int16_t>(col2, 1, 1)), "baz");
  // One decoded dictionary, shared: both exports point at the same values.
  EXPECT_EQ(col1.dictionary->buffers[2], col2.dictionary->buffers[2]);
}

TEST(ReaderGoldenTest, CustomMetadata) {
  StreamResult r =
      ReadStream(ReadFile(Golden("1.0.0-littleendian/generated_custom_metadata.stream")));
  ASSERT_OK(r.status);
  const ArrowSchema& schema = r.reader->schema();
  EXPECT_EQ(ParseMetadata(schema.metadata),
            (KeyValues{{"schema_custom_0", "{}"}, {"schema_custom_1", "{}"}}));
  EXPECT_EQ(ParseMetadata(schema.children[0]->metadata), (KeyValues{{"pandas", "{}"}}));
  const KeyValues extension = ParseMetadata(schema.children[2]->metadata);
  ASSERT_FALSE(extension.empty());
  EXPECT_EQ(extension[0],
            (std::pair<std::string, std::string>{"ARROW:extension:name", "!nonexistent"}));
  EXPECT_EQ(ParseMetadata(schema.children[3]->children[0]->metadata),
            (KeyValues{{"odd_values", "{}"}}));
}

TEST(ReaderGoldenTest, CompressedBodies) {
  for (const char* name :
       {"2.0.0-compression/generated_lz4.stream", "2.0.0-compression/generated_zstd.stream"}) {
    SCOPED_TRACE(name);
    StreamResult r = ReadStream(ReadFile(Golden(name)));
    ASSERT_OK(r.status);
    ASSERT_FALSE(r.batches.empty());
    const ArrowArray& ints = *r.batches[0]->children[0];
    const ArrowArray& strs = *r.batches[0]->children[1];
    ASSERT_EQ(ints.length, 30);
    EXPECT_EQ(ValueAt<int64_t>(ints, 1, 0), 42);
    EXPECT_EQ(ValueAt<int64_t>(ints, 1, 5), 47);
    EXPECT_EQ(StringAt(strs, 1), "bar");
    EXPECT_FALSE(IsValid(strs, 2));
    EXPECT_GT(r.reader->stats().bytes_decompressed, 0);
  }
}

// ---------------------------------------------------------------------------------------
// Zero-copy

TEST(ReaderTest, FixedWidthBuffersAreViewsThatKeepTheInputAlive) {
  auto bytes = std::make_shared<std::string>(
      ReadFile(Golden("1.0.0-littleendian/generated_primitive.stream")));
  std::weak_ptr<std::string> watch = bytes;
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes->data());
  const auto* end = begin + bytes->size();
  OwnedArray batch;
  {
    Buffer input(begin, bytes->size(), bytes);
    bytes.reset();
    ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(std::move(input)));
    ASSERT_OK_AND_ASSIGN(batch, reader->Next());
  }  // reader and input gone
  ASSERT_FALSE(watch.expired());
  const auto* values = static_cast<const uint8_t*>(batch->children[7]->buffers[1]);
  EXPECT_GE(values, begin);
  EXPECT_LT(values, end);
  EXPECT_EQ(ValueAt<int32_t>(*batch->children[7], 1, 2), -523457287);
  // A child moved out of the batch keeps the input alive on its own.
  ArrowArray child = *batch->children[7];
  batch->children[7]->release = nullptr;
  batch.Reset();
  ASSERT_FALSE(watch.expired());
  child.release(&child);
  EXPECT_TRUE(watch.expired());
}

TEST(ReaderTest, MisalignedBufferIsCopiedAndCounted) {
  TestBatch batch;
  batch.length = 2;
  batch.nodes = {{2, 0}};
  batch.raw_body = std::string(1, '\0') + Values<int32_t>({11, 22}) + std::string(7, '\0');
  batch.raw_layout = {{0, 0}, {1, 8}};
  StreamResult r = ReadStream(SchemaMessage({IntField("n")}) + BatchMessage(batch) + Eos());
  ASSERT_OK(r.status);
  ASSERT_EQ(r.batches.size(), 1u);
  const ArrowArray& n = *r.batches[0]->children[0];
  EXPECT_EQ(reinterpret_cast<uintptr_t>(n.buffers[1]) % 4, 0u);
  EXPECT_EQ(ValueAt<int32_t>(n, 1, 1), 22);
  EXPECT_EQ(r.reader->stats().bytes_copied, 8);
}

// ---------------------------------------------------------------------------------------
// Types the golden files lack

TestBatch ListBatch() {
  // tags: [[1, 2], [], [3, 4, 5]]
  TestBatch batch;
  batch.length = 3;
  batch.nodes = {{3, 0}, {5, 0}};
  batch.buffers = {"", Values<int32_t>({0, 2, 2, 5}), "", Values<int32_t>({1, 2, 3, 4, 5})};
  return batch;
}

TEST(ReaderTest, ListOfInt32) {
  StreamResult r = ReadStream(SchemaMessage({ListField("tags", IntField("item"))}) +
                              BatchMessage(ListBatch()) + Eos());
  ASSERT_OK(r.status);
  ASSERT_EQ(r.batches.size(), 1u);
  const ArrowArray& tags = *r.batches[0]->children[0];
  EXPECT_EQ(tags.length, 3);
  EXPECT_EQ(ValueAt<int32_t>(tags, 1, 3), 5);
  EXPECT_EQ(tags.children[0]->length, 5);
  EXPECT_EQ(ValueAt<int32_t>(*tags.children[0], 1, 4), 5);
  EXPECT_STREQ(r.reader->schema().children[0]->format, "+l");
  EXPECT_STREQ(r.reader->schema().children[0]->children[0]->name, "item");
}

TEST(ReaderTest, LegacyFramingWithoutContinuationMarker) {
  StreamResult r = ReadStream(SchemaMessage({ListField("tags", IntField("item"))}, {},
                                            fb::MetadataVersion::V5, /*legacy=*/true) +
                              BatchMessage(ListBatch(), /*legacy=*/true) + Int32Bytes(0));
  ASSERT_OK(r.status);
  EXPECT_EQ(r.batches.size(), 1u);
}

TEST(ReaderTest, BinaryViewsGetTheVariadicSizesBuffer) {
  std::string views;
  auto inline_view = [&](std::string s) {
    views += Int32Bytes(static_cast<int32_t>(s.size())) + s + std::string(12 - s.size(), '\0');
  };
  inline_view("abc");
  views += Int32Bytes(20) + "0123" + Int32Bytes(0) + Int32Bytes(0);
  inline_view("hello");
  TestBatch batch;
  batch.length = 3;
  batch.nodes = {{3, 0}};
  batch.buffers = {"", views, "0123456789abcdefghij"};
  batch.variadic_counts = {1};
  const std::string schema =
      SchemaMessage({Field("v", fb::Type::Utf8View,
                           [](FlatBufferBuilder& b) { return fb::CreateUtf8View(b).Union(); })});
  StreamResult r = ReadStream(schema + BatchMessage(batch) + Eos());
  ASSERT_OK(r.status);
  const ArrowArray& v = *r.batches[0]->children[0];
  ASSERT_EQ(v.n_buffers, 4);
  EXPECT_EQ(ValueAt<int64_t>(v, 3, 0), 20);
  EXPECT_EQ(std::string(static_cast<const char*>(v.buffers[2]) + 0, 20), "0123456789abcdefghij");
  EXPECT_STREQ(r.reader->schema().children[0]->format, "vu");

  // A view into a variadic buffer that does not exist.
  std::string bad_views = views;
  const std::string index = Int32Bytes(1);
  bad_views.replace(16 + 8, 4, index);
  batch.buffers[1] = bad_views;
  r = ReadStream(schema + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument,
                "ipc: message 1, field 'v': view 1 refers to variadic buffer 1 of 1");
  // A view past the end of its buffer.
  bad_views = views;
  bad_views.replace(16 + 12, 4, Int32Bytes(5));
  batch.buffers[1] = bad_views;
  r = ReadStream(schema + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "outside variadic buffer 0 of 20 bytes");
  // No variadic count for the view field.
  batch.buffers[1] = views;
  batch.variadic_counts.clear();
  r = ReadStream(schema + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "no variadic buffer count");
}

TEST(ReaderTest, RunEndEncoded) {
  auto ree = Field("r", fb::Type::RunEndEncoded,
                   [](FlatBufferBuilder& b) { return fb::CreateRunEndEncoded(b).Union(); },
                   {NotNull(IntField("run_ends", 16)), IntField("values")});
  TestBatch batch;  // [7, 7, 7, 9, 9]
  batch.length = 5;
  batch.nodes = {{5, 0}, {2, 0}, {2, 0}};
  batch.buffers = {"", Values<int16_t>({3, 5}), "", Values<int32_t>({7, 9})};
  StreamResult r = ReadStream(SchemaMessage({ree}) + BatchMessage(batch) + Eos());
  ASSERT_OK(r.status);
  const ArrowArray& a = *r.batches[0]->children[0];
  EXPECT_EQ(a.n_buffers, 0);
  ASSERT_EQ(a.n_children, 2);
  EXPECT_EQ(ValueAt<int16_t>(*a.children[0], 1, 1), 5);
  EXPECT_STREQ(r.reader->schema().children[0]->format, "+r");

  batch.buffers[1] = Values<int16_t>({3, 3});
  r = ReadStream(SchemaMessage({ree}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "run end 3 at 1 is not greater");
  batch.buffers[1] = Values<int16_t>({3, 4});
  r = ReadStream(SchemaMessage({ree}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "last run end 4 < length 5");
}

TEST(ReaderTest, ListView) {
  auto lv =
      Field("lv", fb::Type::ListView,
            [](FlatBufferBuilder& b) { return fb::CreateListView(b).Union(); }, {IntField("item")});
  TestBatch batch;  // [[1, 2], [2, 3]] sharing values
  batch.length = 2;
  batch.nodes = {{2, 0}, {3, 0}};
  batch.buffers = {"", Values<int32_t>({0, 1}), Values<int32_t>({2, 2}), "",
                   Values<int32_t>({1, 2, 3})};
  StreamResult r = ReadStream(SchemaMessage({lv}) + BatchMessage(batch) + Eos());
  ASSERT_OK(r.status);
  const ArrowArray& a = *r.batches[0]->children[0];
  EXPECT_EQ(a.n_buffers, 3);
  EXPECT_EQ(ValueAt<int32_t>(a, 2, 1), 2);

  batch.buffers[2] = Values<int32_t>({2, 3});
  r = ReadStream(SchemaMessage({lv}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument,
                "list view 1 (offset 1, size 3) is outside the child's 3 values");
}

TestField DenseUnion() {
  return Field("u", fb::Type::Union,
               [](FlatBufferBuilder& b) {
                 return fb::CreateUnion(b, fb::UnionMode::Dense,
                                        b.CreateVector(std::vector<int32_t>{5, 7}))
                     .Union();
               },
               {IntField("a"), IntField("b")});
}

TEST(ReaderTest, DenseUnionTypeIdsAndOffsetsAreChecked) {
  TestBatch batch;  // a:10, b:20, a:11
  batch.length = 3;
  batch.nodes = {{3, 0}, {2, 0}, {1, 0}};
  batch.buffers = {
      Values<int8_t>({5, 7, 5}), Values<int32_t>({0, 0, 1}), "", Values<int32_t>({10, 11}), "",
      Values<int32_t>({20})};
  StreamResult r = ReadStream(SchemaMessage({DenseUnion()}) + BatchMessage(batch) + Eos());
  ASSERT_OK(r.status);
  const ArrowArray& u = *r.batches[0]->children[0];
  EXPECT_EQ(u.n_buffers, 2);
  EXPECT_EQ(u.null_count, 0);
  EXPECT_STREQ(r.reader->schema().children[0]->format, "+ud:5,7");

  batch.buffers[0] = Values<int8_t>({5, 6, 5});
  r = ReadStream(SchemaMessage({DenseUnion()}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "type id 6 at 1 is not the union's");
  batch.buffers[0] = Values<int8_t>({5, 7, 5});
  batch.buffers[1] = Values<int32_t>({0, 1, 1});
  r = ReadStream(SchemaMessage({DenseUnion()}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "offset 1 at 1 is outside child 1");
}

TEST(ReaderTest, V4SparseUnionSkipsItsValidityBitmap) {
  auto sparse =
      Field("u", fb::Type::Union,
            [](FlatBufferBuilder& b) { return fb::CreateUnion(b, fb::UnionMode::Sparse).Union(); },
            {IntField("a"), IntField("b")});
  TestBatch batch;
  batch.version = fb::MetadataVersion::V4;
  batch.length = 2;
  batch.nodes = {{2, 0}, {2, 0}, {2, 0}};
  batch.buffers = {"", Values<int8_t>({0, 1}), "", Values<int32_t>({1, 2}),
                   "", Values<int32_t>({3, 4})};
  StreamResult r = ReadStream(SchemaMessage({sparse}, {}, fb::MetadataVersion::V4) +
                              BatchMessage(batch) + Eos());
  ASSERT_OK(r.status);
  const ArrowArray& u = *r.batches[0]->children[0];
  EXPECT_EQ(u.n_buffers, 1);
  EXPECT_EQ(ValueAt<int8_t>(u, 0, 1), 1);
}

// ---------------------------------------------------------------------------------------
// Dictionaries

TestBatch StringsBatch(std::vector<std::string> strings) {
  TestBatch batch;
  batch.length = static_cast<int64_t>(strings.size());
  batch.nodes = {{batch.length, 0}};
  std::string offsets = Int32Bytes(0), data;
  for (const auto& s : strings) {
    data += s;
    offsets += Int32Bytes(static_cast<int32_t>(data.size()));
  }
  batch.buffers = {"", offsets, data};
  return batch;
}

TestBatch IndicesBatch(std::vector<int8_t> indices, std::string validity = "") {
  TestBatch batch;
  batch.length = static_cast<int64_t>(indices.size());
  int64_t nulls = 0;
  for (size_t i = 0; i < indices.size() && !validity.empty(); ++i) {
    if (((validity[i / 8] >> (i % 8)) & 1) == 0) ++nulls;
  }
  batch.nodes = {{batch.length, nulls}};
  batch.buffers = {validity, std::string(indices.begin(), indices.end())};
  return batch;
}

const std::vector<TestField>& DictionarySchema() {
  static const auto* fields = new std::vector<TestField>{Dictionary(Utf8Field("d"), 7, 8)};
  return *fields;
}

TEST(ReaderTest, DictionaryDeltaAppendsAndReplacementReplaces) {
  const std::string stream =
      SchemaMessage(DictionarySchema()) + DictionaryMessage(7, StringsBatch({"a", "b"})) +
      BatchMessage(IndicesBatch({1, 0})) +
      DictionaryMessage(7, StringsBatch({"c"}), /*delta=*/true) + BatchMessage(IndicesBatch({2})) +
      DictionaryMessage(7, StringsBatch({"x"})) + BatchMessage(IndicesBatch({0})) + Eos();
  for (bool from_source : {false, true}) {
    SCOPED_TRACE(from_source ? "byte source" : "buffer");
    StreamResult r = from_source ? ReadFromSource(stream, 5) : ReadStream(stream);
    ASSERT_OK(r.status);
    ASSERT_EQ(r.batches.size(), 3u);
    const ArrowArray& first = *r.batches[0]->children[0];
    const ArrowArray& second = *r.batches[1]->children[0];
    const ArrowArray& third = *r.batches[2]->children[0];
    EXPECT_EQ(first.dictionary->length, 2);  // unchanged by the later delta
    EXPECT_EQ(StringAt(*first.dictionary, ValueAt<int8_t>(first, 1, 0)), "b");
    EXPECT_EQ(second.dictionary->length, 3);
    EXPECT_EQ(StringAt(*second.dictionary, ValueAt<int8_t>(second, 1, 0)), "c");
    EXPECT_EQ(StringAt(*second.dictionary, 0), "a");
    EXPECT_EQ(third.dictionary->length, 1);
    EXPECT_EQ(StringAt(*third.dictionary, 0), "x");
    EXPECT_EQ(r.reader->stats().dictionary_batches, 3);
    EXPECT_EQ(r.reader->stats().dictionary_deltas, 1);
    EXPECT_EQ(r.reader->stats().messages, 7);
  }
}

TEST(ReaderTest, DictionaryIndexOutOfRangeIsAnErrorExceptInNullSlots) {
  StreamResult r = ReadStream(SchemaMessage(DictionarySchema()) +
                              DictionaryMessage(7, StringsBatch({"a", "b"})) +
                              BatchMessage(IndicesBatch({0, 5})) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument,
                "ipc: message 2, field 'd': dictionary index 5 at 1 is outside dictionary 7 of 2 "
                "values");
  r = ReadStream(SchemaMessage(DictionarySchema()) + DictionaryMessage(7, StringsBatch({"a"})) +
                 BatchMessage(IndicesBatch({-1})) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "dictionary index -1 at 0");
  r = ReadStream(SchemaMessage(DictionarySchema()) + DictionaryMessage(7, StringsBatch({"a"})) +
                 BatchMessage(IndicesBatch({0, 99}, Bits({1, 0}))) + Eos());
  ASSERT_OK(r.status);
  EXPECT_EQ(r.batches[0]->children[0]->null_count, 1);
}

TEST(ReaderTest, DictionaryMustComeBeforeItsUse) {
  StreamResult r =
      ReadStream(SchemaMessage(DictionarySchema()) + BatchMessage(IndicesBatch({0})) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument,
                "field 'd': dictionary 7 has not been sent before its use");
  r = ReadStream(SchemaMessage(DictionarySchema()) + DictionaryMessage(8, StringsBatch({"a"})) +
                 Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument,
                "ipc: message 1 (dictionary 8): the schema has no dictionary with this id");
}

TEST(ReaderTest, FieldsSharingADictionaryMustAgreeOnItsType) {
  EXPECT_STATUS(DecodeSchemaBytes(
                    SchemaMessage({Dictionary(Utf8Field("a"), 1), Dictionary(IntField("b"), 1)})),
                StatusCode::kInvalidArgument,
                "dictionary id 1 is shared with a field of a different");
  EXPECT_OK(DecodeSchemaBytes(
      SchemaMessage({Dictionary(Utf8Field("a"), 1), Dictionary(Utf8Field("b"), 1, 16)})));
}

// ---------------------------------------------------------------------------------------
// Compression and the allocation budget

std::string Compressed(Codec codec, const std::string& raw) {
  std::vector<uint8_t> frame;
  EXPECT_OK(Compress(
      codec, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()),
      &frame));
  return Int64Bytes(static_cast<int64_t>(raw.size())) + std::string(frame.begin(), frame.end());
}

TestBatch CompressedInts(int64_t n, Codec codec = Codec::kZstd) {
  std::string raw;
  for (int32_t i = 0; i < n; ++i) raw += Int32Bytes(i * 3);
  TestBatch batch;
  batch.length = n;
  batch.nodes = {{n, 0}};
  batch.codec = codec == Codec::kZstd ? fb::CompressionType::ZSTD : fb::CompressionType::LZ4_FRAME;
  batch.buffers = {"", Compressed(codec, raw)};
  return batch;
}

TEST(ReaderTest, CompressedBuffersAreDecompressed) {
  for (Codec codec : {Codec::kZstd, Codec::kLz4Frame}) {
    StreamResult r = ReadStream(SchemaMessage({IntField("n")}) +
                                BatchMessage(CompressedInts(1000, codec)) + Eos());
    ASSERT_OK(r.status);
    EXPECT_EQ(ValueAt<int32_t>(*r.batches[0]->children[0], 1, 999), 2997);
    EXPECT_EQ(r.reader->stats().bytes_decompressed, 4000);
  }
}

TEST(ReaderTest, UncompressedMarkerKeepsTheBufferAView) {
  TestBatch batch;
  batch.length = 2;
  batch.nodes = {{2, 0}};
  batch.codec = fb::CompressionType::LZ4_FRAME;
  batch.buffers = {"", Int64Bytes(-1) + Values<int32_t>({5, 6})};
  const std::string bytes = SchemaMessage({IntField("n")}) + BatchMessage(batch) + Eos();
  auto owned = std::make_shared<std::string>(bytes);
  Buffer input(reinterpret_cast<const uint8_t*>(owned->data()), owned->size(), owned);
  StreamResult r = Drain(OpenStreamReader(input));
  ASSERT_OK(r.status);
  const auto* values = static_cast<const uint8_t*>(r.batches[0]->children[0]->buffers[1]);
  EXPECT_GE(values, input.data());
  EXPECT_LT(values, input.data() + input.size());
  EXPECT_EQ(ValueAt<int32_t>(*r.batches[0]->children[0], 1, 1), 6);
  EXPECT_EQ(r.reader->stats().bytes_decompressed, 0);
  EXPECT_EQ(r.reader->stats().bytes_copied, 0);
}

TEST(ReaderTest, HugeUncompressedLengthIsRefusedBeforeAllocating) {
  TestBatch batch = CompressedInts(4);
  batch.buffers[1].replace(0, 8, Int64Bytes(int64_t{1} << 60));
  StreamResult r = ReadStream(SchemaMessage({IntField("n")}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kResourceExhausted,
                "ipc: message 1, field 'n': decompressing the values buffer needs");
  batch.buffers[1].replace(0, 8, Int64Bytes(-7));
  r = ReadStream(SchemaMessage({IntField("n")}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "announces uncompressed length -7");
  // A frame that does not decode to the announced length.
  batch = CompressedInts(4);
  batch.buffers[1].replace(0, 8, Int64Bytes(15));
  r = ReadStream(SchemaMessage({IntField("n")}) + BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "field 'n': values buffer: ");
}

TEST(ReaderTest, AllocationBudgetCountsWhatConsumersStillHold) {
  ReadOptions options;
  options.max_allocation_bytes = 6000;  // the schema and one 4000-byte buffer
  const std::string stream = SchemaMessage({IntField("n")}) + BatchMessage(CompressedInts(1000)) +
                             BatchMessage(CompressedInts(1000)) + Eos();
  {
    ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(Buffer::FromString(stream), options));
    ASSERT_OK_AND_ASSIGN(OwnedArray first, reader->Next());
    EXPECT_STATUS(reader->Next(), StatusCode::kResourceExhausted, "allocation limit");
  }
  {
    ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(Buffer::FromString(stream), options));
    ASSERT_OK_AND_ASSIGN(OwnedArray first, reader->Next());
    first.Reset();  // gives its memory back
    ASSERT_OK_AND_ASSIGN(OwnedArray second, reader->Next());
    EXPECT_TRUE(second.valid());
  }
}

TEST(ReaderTest, ByteSourceBodyLengthIsChargedBeforeReading) {
  TestBatch batch = ListBatch();
  Encoded encoded = BatchEncoded(batch);
  // Rewrite the announced body length: 2^40 bytes, far over the budget.
  FlatBufferBuilder b;
  std::string body;
  auto record_batch = BuildRecordBatch(b, batch, body);
  b.Finish(fb::CreateMessage(b, fb::MetadataVersion::V5, fb::MessageHeader::RecordBatch,
                             record_batch.Union(), int64_t{1} << 40));
  const std::string schema = SchemaMessage({ListField("tags", IntField("item"))});
  StreamResult r = ReadFromSource(schema + Frame({Bytes(b), body}));
  EXPECT_STATUS(r.status, StatusCode::kResourceExhausted, "the message body needs");
  // In memory the same message runs past the end of the input.
  r = ReadStream(schema + Frame({Bytes(b), body}));
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "runs past the end of the input");
  // Within the budget but not backed by the input: a clean error, memory grown only as
  // bytes arrive.
  FlatBufferBuilder b2;
  std::string body2;
  auto record_batch2 = BuildRecordBatch(b2, batch, body2);
  b2.Finish(fb::CreateMessage(b2, fb::MetadataVersion::V5, fb::MessageHeader::RecordBatch,
                              record_batch2.Union(), int64_t{1} << 30));
  r = ReadFromSource(schema + Frame({Bytes(b2), body2}));
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument, "the input ends inside the message body");
}

// ---------------------------------------------------------------------------------------
// Corrupt input

TEST(ReaderTest, OffsetPastDataNamesMessageAndField) {
  TestBatch batch;
  batch.length = 1;
  batch.nodes = {{1, 0}, {1, 0}};
  batch.buffers = {"", Values<int32_t>({0, 1}), "", Values<int32_t>({0, 70}), std::string(64, 'x')};
  StreamResult r = ReadStream(SchemaMessage({ListField("tags", Utf8Field("item"))}) +
                              BatchMessage(batch) + Eos());
  EXPECT_STATUS(r.status, StatusCode::kInvalidArgument,
                "ipc: message 1, field 'tags.item': offset 70 > data size 64");
}

TEST(ReaderTest, ListOffsetsMustBeMonotonicAndInsideTheChild) {
  TestBatch batch = ListBatch();
  batch.buffers[1] = Values<int32_t>({0, 3, 2, 5});
  const std::string schema = SchemaMessage({ListField("tags", IntField("item"))});
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "field 'tags': offset 2 at 2 is less than the one before (3)");
  batch.buffers[1] = Values<int32_t>({0, 2, 2, 6});
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "field 'tags': offset 6 > child length 5");
  batch.buffers[1] = Values<int32_t>({-1, 2, 2, 5});
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "first offset -1 is negative");
}

TEST(ReaderTest, NodeAndBufferCountsMustMatchTheSchema) {
  const std::string schema = SchemaMessage({ListField("tags", IntField("item"))});
  TestBatch batch = ListBatch();
  batch.nodes.pop_back();
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "field 'tags.item': the message has only 1 field nodes");
  batch = ListBatch();
  batch.nodes.push_back({1, 0});
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "the message has 3 field nodes but the schema describes 2");
  batch = ListBatch();
  batch.buffers.push_back("");
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "the message has 5 buffers but the schema uses 4");
}

TEST(ReaderTest, LengthsAndNullCountsAreChecked) {
  const std::string schema = SchemaMessage({IntField("n")});
  TestBatch batch;
  batch.length = 3;
  batch.nodes = {{3, 1}};
  batch.buffers = {Bits({1, 1, 1}), Values<int32_t>({1, 2, 3})};
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "null count 1 does not match the 0 nulls of the validity bitmap");
  batch.nodes = {{3, 4}};
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "null count 4 is not within 0..length (3)");
  batch.nodes = {{-3, 0}};
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "negative length -3");
  batch.nodes = {{4, 0}};  // 4 values, 12 bytes of data
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "values buffer of 12 bytes is too short for 4 values of 4 bytes");
  batch.nodes = {{3, 0}};
  batch.length = 5;
  EXPECT_STATUS(ReadStream(schema + BatchMessage(batch)).status, StatusCode::kInvalidArgument,
                "field 'n': has 3 values, fewer than the batch's 5");
}

TEST(ReaderTest, BuffersMustLieInsideTheBody) {
  TestBatch batch;
  batch.length = 2;
  batch.nodes = {{2, 0}};
  batch.raw_body = Values<int32_t>({1, 2});
  batch.raw_layout = {{0, 0}, {4, 8}};
  EXPECT_STATUS(ReadStream(SchemaMessage({IntField("n")}) + BatchMessage(batch)).status,
                StatusCode::kInvalidArgument,
                "values buffer at offset 4 of 8 bytes is outside the body of 8 bytes");
  batch.raw_layout = {{0, 0}, {-8, 8}};
  EXPECT_STATUS(ReadStream(SchemaMessage({IntField("n")}) + BatchMessage(batch)).status,
                StatusCode::kInvalidArgument, "is outside the body");
}

TEST(ReaderTest, FramingErrors) {
  const std::string schema = SchemaMessage({IntField("n")});
  EXPECT_STATUS(ReadStream("").status, StatusCode::kInvalidArgument,
                "ipc: message 0: the stream ends before its schema message");
  EXPECT_STATUS(ReadStream(Eos()).status, StatusCode::kInvalidArgument, "ends before its schema");
  EXPECT_STATUS(ReadStream(Int32Bytes(-1) + Int32Bytes(0x7FFFFFF0)).status,
                StatusCode::kInvalidArgument, "runs past the end of the input");
  EXPECT_STATUS(ReadFromSource(Int32Bytes(-1) + Int32Bytes(0x7FFFFFF0)).status,
                StatusCode::kInvalidArgument, "larger than the limit");
  EXPECT_STATUS(ReadStream(Int32Bytes(-1) + Int32Bytes(-5)).status, StatusCode::kInvalidArgument,
                "negative metadata length -5");
  EXPECT_STATUS(ReadStream(Int32Bytes(-1) + Int32Bytes(16) + std::string(16, '\x7f')).status,
                StatusCode::kInvalidArgument, "is not a valid flatbuffer");
  EXPECT_STATUS(ReadStream(schema + schema).status, StatusCode::kInvalidArgument,
                "ipc: message 1: a second schema message");
  EXPECT_STATUS(ReadStream(BatchMessage(ListBatch())).status, StatusCode::kInvalidArgument,
                "does not start with a schema message");
  EXPECT_STATUS(ReadStream(SchemaMessage({IntField("n")}, {}, fb::MetadataVersion::V3)).status,
                StatusCode::kInvalidArgument, "metadata version V3 is too old");
  // Trailing bytes after the end-of-stream marker are not read.
  EXPECT_OK(ReadStream(schema + Eos() + "garbage").status);
}

TEST(ReaderTest, ErrorsAreSticky) {
  TestBatch bad = ListBatch();
  bad.buffers[1] = Values<int32_t>({0, 9, 9, 9});
  ASSERT_OK_AND_ASSIGN(
      auto reader,
      OpenStreamReader(Buffer::FromString(SchemaMessage({ListField("tags", IntField("item"))}) +
                                          BatchMessage(bad) + BatchMessage(ListBatch()) + Eos())));
  const Status first = reader->Next().status();
  EXPECT_FALSE(first.ok());
  EXPECT_EQ(reader->Next().status(), first);
}

// A small stream using a dictionary, a list and a struct, for the exhaustive corruption
// tests; `boundaries` receives the offset at which each message ends.
std::string SmallStream(std::vector<size_t>* boundaries = nullptr) {
  std::vector<std::string> messages = {
      SchemaMessage({Dictionary(Utf8Field("d"), 7, 8), ListField("tags", IntField("item")),
                     StructField("s", {IntField("x"), Utf8Field("y")})},
                    {{"k", "v"}}),
      DictionaryMessage(7, StringsBatch({"a", "bc"})),
  };
  TestBatch batch;
  batch.length = 3;
  batch.nodes = {{3, 1}, {3, 0}, {5, 0}, {3, 0}, {3, 0}, {3, 0}};
  batch.buffers = {Bits({1, 0, 1}),
                   Values<int8_t>({1, 0, 0}),
                   "",
                   Values<int32_t>({0, 2, 2, 5}),
                   "",
                   Values<int32_t>({1, 2, 3, 4, 5}),
                   "",
                   "",
                   Values<int32_t>({7, 8, 9}),
                   "",
                   Values<int32_t>({0, 1, 3, 6}),
                   "abbccc"};
  messages.push_back(BatchMessage(batch));
  messages.push_back(Eos());
  std::string out;
  for (const auto& m : messages) {
    out += m;
    if (boundaries != nullptr) boundaries->push_back(out.size());
  }
  return out;
}

TEST(ReaderTest, SmallStreamDecodes) {
  StreamResult r = ReadStream(SmallStream());
  ASSERT_OK(r.status);
  ASSERT_EQ(r.batches.size(), 1u);
  const ArrowArray& s = *r.batches[0]->children[2];
  EXPECT_EQ(StringAt(*s.children[1], 2), "ccc");
  EXPECT_EQ(ParseMetadata(r.reader->schema().metadata), (KeyValues{{"k", "v"}}));
}

TEST(ReaderTest, TruncatedAtEveryByteEndsCleanly) {
  std::vector<size_t> boundaries;
  const std::string stream = SmallStream(&boundaries);
  // boundaries: schema, dictionary, batch, end-of-stream.
  for (size_t n = 0; n < stream.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string prefix = stream.substr(0, n);
    for (bool from_source : {false, true}) {
      StreamResult r = from_source ? ReadFromSource(prefix, 7) : ReadStream(prefix);
      if (n == boundaries[0] || n == boundaries[1]) {
        EXPECT_OK(r.status);
        EXPECT_EQ(r.batches.size(), 0u);
      } else if (n == boundaries[2]) {
        EXPECT_OK(r.status);
        EXPECT_EQ(r.batches.size(), 1u);
      } else {
        EXPECT_FALSE(r.status.ok());
        EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << r.status;
        EXPECT_THAT(std::string(r.status.message()), HasSubstr("ipc: message "));
      }
    }
  }
}

TEST(ReaderTest, FlippedBytesNeverCrash) {
  const std::string stream = SmallStream();
  int errors = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    for (uint8_t mask : {0xFF, 0x80, 0x01, 0x10}) {
      std::string corrupt = stream;
      corrupt[i] = static_cast<char>(corrupt[i] ^ mask);
      StreamResult r = ReadStream(corrupt);
      for (const OwnedArray& batch : r.batches) EXPECT_EQ(batch->n_children, 3);
      if (!r.status.ok()) {
        ++errors;
        EXPECT_THAT(std::string(r.status.message()), HasSubstr("ipc: "));
      }
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(ReaderTest, NestingDeeperThanTheLimitIsRefused) {
  TestField field = IntField("leaf");
  for (int i = 0; i < 80; ++i) field = ListField(StrCat("l", i), std::move(field));
  EXPECT_STATUS(DecodeSchemaBytes(SchemaMessage({field})), StatusCode::kInvalidArgument,
                "nesting deeper than the limit of 64");
  ReadOptions options;
  options.max_nesting_depth = 100;
  EXPECT_OK(DecodeSchemaBytes(SchemaMessage({field}), options));
}

// ---------------------------------------------------------------------------------------
// Schemas

TEST(ReaderSchemaTest, EveryTypeMapsToItsFormatString) {
  auto type = [](fb::Type t, TypeMaker make) { return Field("f", t, std::move(make)); };
  struct Case {
    TestField field;
    const char* format;
  };
  std::vector<Case> cases = {
      {type(fb::Type::Null, [](auto& b) { return fb::CreateNull(b).Union(); }), "n"},
      {type(fb::Type::Bool, [](auto& b) { return fb::CreateBool(b).Union(); }), "b"},
      {IntField("f", 8, false), "C"},
      {IntField("f", 64, true), "l"},
      {type(fb::Type::FloatingPoint,
            [](auto& b) { return fb::CreateFloatingPoint(b, fb::Precision::HALF).Union(); }),
       "e"},
      {type(fb::Type::FloatingPoint,
            [](auto& b) { return fb::CreateFloatingPoint(b, fb::Precision::DOUBLE).Union(); }),
       "g"},
      {type(fb::Type::Decimal, [](auto& b) { return fb::CreateDecimal(b, 38, 0, 128).Union(); }),
       "d:38,0"},
      {type(fb::Type::Decimal, [](auto& b) { return fb::CreateDecimal(b, 10, 2, 256).Union(); }),
       "d:10,2,256"},
      {type(fb::Type::Decimal, [](auto& b) { return fb::CreateDecimal(b, 9, 3, 32).Union(); }),
       "d:9,3,32"},
      {type(fb::Type::Date, [](auto& b) { return fb::CreateDate(b, fb::DateUnit::DAY).Union(); }),
       "tdD"},
      {type(fb::Type::Date, [](auto& b) { return fb::CreateDate(b).Union(); }), "tdm"},
      {type(fb::Type::Time,
            [](auto& b) { return fb::CreateTime(b, fb::TimeUnit::MILLISECOND, 32).Union(); }),
       "ttm"},
      {type(fb::Type::Time,
            [](auto& b) { return fb::CreateTime(b, fb::TimeUnit::NANOSECOND, 64).Union(); }),
       "ttn"},
      {type(fb::Type::Timestamp,
            [](auto& b) {
              return fb::CreateTimestamp(b, fb::TimeUnit::MICROSECOND, b.CreateString("UTC"))
                  .Union();
            }),
       "tsu:UTC"},
      {type(fb::Type::Timestamp,
            [](auto& b) { return fb::CreateTimestamp(b, fb::TimeUnit::SECOND).Union(); }),
       "tss:"},
      {type(fb::Type::Duration,
            [](auto& b) { return fb::CreateDuration(b, fb::TimeUnit::NANOSECOND).Union(); }),
       "tDn"},
      {type(fb::Type::Interval,
            [](auto& b) { return fb::CreateInterval(b, fb::IntervalUnit::YEAR_MONTH).Union(); }),
       "tiM"},
      {type(fb::Type::Interval,
            [](auto& b) { return fb::CreateInterval(b, fb::IntervalUnit::DAY_TIME).Union(); }),
       "tiD"},
      {type(
           fb::Type::Interval,
           [](auto& b) { return fb::CreateInterval(b, fb::IntervalUnit::MONTH_DAY_NANO).Union(); }),
       "tin"},
      {type(fb::Type::Binary, [](auto& b) { return fb::CreateBinary(b).Union(); }), "z"},
      {type(fb::Type::LargeBinary, [](auto& b) { return fb::CreateLargeBinary(b).Union(); }), "Z"},
      {type(fb::Type::LargeUtf8, [](auto& b) { return fb::CreateLargeUtf8(b).Union(); }), "U"},
      {type(fb::Type::BinaryView, [](auto& b) { return fb::CreateBinaryView(b).Union(); }), "vz"},
      {type(fb::Type::FixedSizeBinary,
            [](auto& b) { return fb::CreateFixedSizeBinary(b, 16).Union(); }),
       "w:16"},
  };
  auto with_child = [](fb::Type t, TypeMaker make) {
    return Field("f", t, std::move(make), {IntField("item")});
  };
  cases.push_back(
      {with_child(fb::Type::LargeList, [](auto& b) { return fb::CreateLargeList(b).Union(); }),
       "+L"});
  cases.push_back({with_child(fb::Type::LargeListView,
                              [](auto& b) { return fb::CreateLargeListView(b).Union(); }),
                   "+vL"});
  cases.push_back({with_child(fb::Type::FixedSizeList,
                              [](auto& b) { return fb::CreateFixedSizeList(b, 3).Union(); }),
                   "+w:3"});
  cases.push_back({Field("f", fb::Type::Union,
                         [](auto& b) { return fb::CreateUnion(b, fb::UnionMode::Sparse).Union(); },
                         {IntField("a"), IntField("b")}),
                   "+us:0,1"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format);
    ASSERT_OK_AND_ASSIGN(OwnedSchema schema, DecodeSchemaBytes(SchemaMessage({c.field})));
    ASSERT_EQ(schema->n_children, 1);
    EXPECT_STREQ(schema->children[0]->format, c.format);
    EXPECT_STREQ(schema->children[0]->name, "f");
  }
}

TEST(ReaderSchemaTest, FlagsMapsAndDictionaries) {
  TestField map =
      Field("m", fb::Type::Map, [](auto& b) { return fb::CreateMap(b, true).Union(); },
            {NotNull(StructField("entries", {NotNull(Utf8Field("key")), IntField("value")}))});
  TestField ordered = Dictionary(Utf8Field("o"), 3, 16, false);
  ordered.ordered = true;
  ordered.metadata = {{"ARROW:extension:name", "my.ext"}};
  ASSERT_OK_AND_ASSIGN(OwnedSchema schema,
                       DecodeSchemaBytes(SchemaMessage({map, ordered}, {{"a", "b"}})));
  EXPECT_EQ(ParseMetadata(schema->metadata), (KeyValues{{"a", "b"}}));
  const ArrowSchema& m = *schema->children[0];
  EXPECT_STREQ(m.format, "+m");
  EXPECT_EQ(m.flags, ARROW_FLAG_NULLABLE | ARROW_FLAG_MAP_KEYS_SORTED);
  EXPECT_STREQ(m.children[0]->name, "entries");
  EXPECT_EQ(m.children[0]->flags, 0);
  EXPECT_STREQ(m.children[0]->children[0]->format, "u");
  const ArrowSchema& o = *schema->children[1];
  EXPECT_STREQ(o.format, "S");
  EXPECT_EQ(o.flags, ARROW_FLAG_NULLABLE | ARROW_FLAG_DICTIONARY_ORDERED);
  ASSERT_NE(o.dictionary, nullptr);
  EXPECT_STREQ(o.dictionary->format, "u");
  EXPECT_EQ(ParseMetadata(o.metadata), (KeyValues{{"ARROW:extension:name", "my.ext"}}));
}

TEST(ReaderSchemaTest, InvalidTypesAreRefused) {
  auto refuse = [](TestField field, const char* message) {
    SCOPED_TRACE(message);
    EXPECT_STATUS(DecodeSchemaBytes(SchemaMessage({field})), StatusCode::kInvalidArgument, message);
  };
  refuse(IntField("i", 12), "field 'i': integer bit width 12");
  // Regression (fuzzer): a width whose bit count overflows int32.
  refuse(Field("w", fb::Type::FixedSizeBinary,
               [](auto& b) { return fb::CreateFixedSizeBinary(b, 1073741840).Union(); }),
         "fixed_size_binary width 1073741840 is not within 0..268435455");
  refuse(Field("t", fb::Type::Time,
               [](auto& b) { return fb::CreateTime(b, fb::TimeUnit::SECOND, 64).Union(); }),
         "time bit width 64 does not match its unit");
  refuse(Field("u", fb::Type::Union,
               [](auto& b) {
                 return fb::CreateUnion(b, fb::UnionMode::Dense,
                                        b.CreateVector(std::vector<int32_t>{1, 1}))
                     .Union();
               },
               {IntField("a"), IntField("b")}),
         "union type id 1 appears twice");
  refuse(Field("u", fb::Type::Union,
               [](auto& b) {
                 return fb::CreateUnion(b, fb::UnionMode::Dense,
                                        b.CreateVector(std::vector<int32_t>{200}))
                     .Union();
               },
               {IntField("a")}),
         "union type id 200");
  refuse(
      Field("m", fb::Type::Map, [](auto& b) { return fb::CreateMap(b).Union(); }, {IntField("x")}),
      "a map's child must be a struct");
  refuse(Field("l", fb::Type::List, [](auto& b) { return fb::CreateList(b).Union(); }),
         "field 'l': a list must have 1 child field, not 0");
  refuse(Field("r", fb::Type::RunEndEncoded,
               [](auto& b) { return fb::CreateRunEndEncoded(b).Union(); },
               {Utf8Field("ends"), IntField("values")}),
         "run ends must be int16, int32 or int64");
  refuse(Field("x", fb::Type::NONE, {}), "field 'x': field has no type");
  refuse(Field("x", fb::Type::Int, {}), "without its table");
  TestField dictionary = Dictionary(Utf8Field("d"), 1);
  dictionary.index_bits = 7;
  refuse(dictionary, "index type: integer bit width 7");
}

TEST(ReaderSchemaTest, DecodeSchemaMetadataReadsABareFlatbuffer) {
  const Encoded encoded = SchemaEncoded({IntField("a"), Utf8Field("b")});
  ASSERT_OK_AND_ASSIGN(
      OwnedSchema schema,
      DecodeSchemaMetadata(std::span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(encoded.flatbuffer.data()), encoded.flatbuffer.size())));
  ASSERT_EQ(schema->n_children, 2);
  EXPECT_STREQ(schema->children[1]->format, "u");
  EXPECT_STATUS(DecodeSchemaBytes(BatchMessage(ListBatch())), StatusCode::kInvalidArgument,
                "not a schema message");
}

// ---------------------------------------------------------------------------------------
// StreamDecoder (Flight's message-at-a-time delivery)

TEST(StreamDecoderTest, DecodesMessagesDeliveredOneByOne) {
  StreamDecoder decoder;
  EXPECT_FALSE(decoder.has_schema());
  const Encoded schema = SchemaEncoded({ListField("tags", IntField("item"))});
  ASSERT_OK_AND_ASSIGN(OwnedArray none, decoder.Consume(AsSpan(schema.flatbuffer), Buffer()));
  EXPECT_FALSE(none.valid());
  ASSERT_TRUE(decoder.has_schema());
  EXPECT_STREQ(decoder.schema().children[0]->name, "tags");
  const Encoded batch = BatchEncoded(ListBatch());
  // The body as Flight hands it over, with the metadata at an odd address.
  const std::string odd_metadata = " " + batch.flatbuffer;
  ASSERT_OK_AND_ASSIGN(OwnedArray array, decoder.Consume(AsSpan(odd_metadata).subspan(1),
                                                         Buffer::FromString(batch.body)));
  ASSERT_TRUE(array.valid());
  EXPECT_EQ(ValueAt<int32_t>(*array->children[0]->children[0], 1, 2), 3);
  EXPECT_EQ(decoder.stats().metadata_bytes_copied, static_cast<int64_t>(batch.flatbuffer.size()));
  EXPECT_STATUS(decoder.Consume(AsSpan(batch.flatbuffer), Buffer::FromString("short")),
                StatusCode::kInvalidArgument, "ipc: message 2: body of 5 bytes is shorter");
}

// ---------------------------------------------------------------------------------------
// Files

TEST(FileReaderTest, RandomAccessAndStreamSection) {
  const std::vector<TestField> fields = DictionarySchema();
  const std::string file =
      MakeFile(fields, {DictionaryMessage(7, StringsBatch({"a", "b", "c"}))},
               {BatchMessage(IndicesBatch({0})), BatchMessage(IndicesBatch({1, 2}))});
  ASSERT_OK_AND_ASSIGN(auto reader, FileReader::Open(Buffer::FromString(file)));
  ASSERT_EQ(reader->num_batches(), 2);
  ASSERT_OK_AND_ASSIGN(OwnedArray second, reader->ReadBatch(1));
  ASSERT_OK_AND_ASSIGN(OwnedArray first, reader->ReadBatch(0));
  EXPECT_EQ(second->length, 2);
  EXPECT_EQ(StringAt(*second->children[0]->dictionary, ValueAt<int8_t>(*second->children[0], 1, 1)),
            "c");
  EXPECT_EQ(first->length, 1);
  EXPECT_STATUS(reader->ReadBatch(2), StatusCode::kInvalidArgument,
                "ipc: record batch 2 does not exist (the file has 2)");
  auto [offset, length] = reader->stream_section();
  StreamResult section = ReadStream(file.substr(offset, length));
  ASSERT_OK(section.status);
  EXPECT_EQ(section.batches.size(), 2u);
  EXPECT_EQ(
      static_cast<size_t>(offset + length), file.size() - 10 - [&] {
        int32_t n;
        std::memcpy(&n, file.data() + file.size() - 10, 4);
        return static_cast<size_t>(n);
      }());
}

TEST(FileReaderTest, DictionaryReplacementIsRefusedButDeltasAreApplied) {
  const std::vector<TestField> fields = DictionarySchema();
  EXPECT_STATUS(
      FileReader::Open(Buffer::FromString(MakeFile(
          fields,
          {DictionaryMessage(7, StringsBatch({"a"})), DictionaryMessage(7, StringsBatch({"b"}))},
          {BatchMessage(IndicesBatch({0}))}))),
      StatusCode::kInvalidArgument, "a file may not replace a dictionary");
  ASSERT_OK_AND_ASSIGN(auto reader, FileReader::Open(Buffer::FromString(
                                        MakeFile(fields,
                                                 {DictionaryMessage(7, StringsBatch({"a"})),
                                                  DictionaryMessage(7, StringsBatch({"b"}), true)},
                                                 {BatchMessage(IndicesBatch({1}))}))));
  ASSERT_OK_AND_ASSIGN(OwnedArray batch, reader->ReadBatch(0));
  EXPECT_EQ(StringAt(*batch->children[0]->dictionary, 1), "b");
}

TEST(FileReaderTest, CorruptFilesAreRefused) {
  const std::vector<TestField> fields = {IntField("n")};
  TestBatch batch;
  batch.length = 1;
  batch.nodes = {{1, 0}};
  batch.buffers = {"", Values<int32_t>({1})};
  const std::string good = MakeFile(fields, {}, {BatchMessage(batch)});
  ASSERT_OK(FileReader::Open(Buffer::FromString(good)).status());
  EXPECT_STATUS(FileReader::Open(Buffer::FromString("ARROW1")), StatusCode::kInvalidArgument,
                "is too short");
  EXPECT_STATUS(FileReader::Open(Buffer::FromString("X" + good.substr(1))),
                StatusCode::kInvalidArgument, "does not start with ARROW1");
  std::string bad_length = good;
  bad_length.replace(bad_length.size() - 10, 4, Int32Bytes(1 << 30));
  EXPECT_STATUS(FileReader::Open(Buffer::FromString(bad_length)), StatusCode::kInvalidArgument,
                "footer length 1073741824");
  const std::string lying = MakeFile(fields, {}, {BatchMessage(batch)}, [](auto& blocks) {
    blocks[0] =
        fb::Block(blocks[0].offset(), blocks[0].meta_data_length() + 8, blocks[0].body_length());
  });
  ASSERT_OK_AND_ASSIGN(auto reader, FileReader::Open(Buffer::FromString(lying)));
  EXPECT_STATUS(reader->ReadBatch(0), StatusCode::kInvalidArgument, "does not match the message's");
  const std::string outside = MakeFile(fields, {}, {BatchMessage(batch)}, [](auto& blocks) {
    blocks[0] = fb::Block(int64_t{1} << 40, blocks[0].meta_data_length(), blocks[0].body_length());
  });
  ASSERT_OK_AND_ASSIGN(reader, FileReader::Open(Buffer::FromString(outside)));
  EXPECT_STATUS(reader->ReadBatch(0), StatusCode::kInvalidArgument,
                "is outside the stream section");
  // Every truncation of a file is refused or read cleanly.
  for (size_t n = 0; n < good.size(); ++n) {
    auto truncated = FileReader::Open(Buffer::FromString(good.substr(0, n)));
    EXPECT_FALSE(truncated.ok()) << n;
  }
}

TEST(FileReaderTest, FlippedBytesNeverCrash) {
  const std::string file =
      MakeFile(DictionarySchema(), {DictionaryMessage(7, StringsBatch({"a", "b", "c"}))},
               {BatchMessage(IndicesBatch({0, 2}))});
  for (size_t i = 0; i < file.size(); ++i) {
    std::string corrupt = file;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x41);
    auto reader = FileReader::Open(Buffer::FromString(corrupt));
    if (!reader.ok()) continue;
    for (int64_t b = 0; b < (*reader)->num_batches(); ++b) (void)(*reader)->ReadBatch(b);
  }
}

// Not a test: writes hand-made streams and files covering the types the golden files lack
// (views, run-end encoded, list views, unions, deltas, compression) into
// $BRIDGE_FUZZ_SEED_DIR/{stream,file}, as seeds for reader_fuzz and file_reader_fuzz. Run with
// --gtest_also_run_disabled_tests --gtest_filter='*WriteFuzzSeeds'.
TEST(ReaderFuzzSeeds, DISABLED_WriteFuzzSeeds) {
  const char* dir = std::getenv("BRIDGE_FUZZ_SEED_DIR");
  ASSERT_NE(dir, nullptr) << "set BRIDGE_FUZZ_SEED_DIR";
  std::string views;
  views += Int32Bytes(3) + "abc" + std::string(9, '\0');
  views += Int32Bytes(20) + "0123" + Int32Bytes(0) + Int32Bytes(0);
  TestBatch view_batch;
  view_batch.length = 2;
  view_batch.nodes = {{2, 0}};
  view_batch.buffers = {"", views, "0123456789abcdefghij"};
  view_batch.variadic_counts = {1};
  TestBatch ree_batch;
  ree_batch.length = 5;
  ree_batch.nodes = {{5, 0}, {2, 0}, {2, 0}};
  ree_batch.buffers = {"", Values<int16_t>({3, 5}), "", Values<int32_t>({7, 9})};
  TestBatch union_batch;
  union_batch.length = 3;
  union_batch.nodes = {{3, 0}, {2, 0}, {1, 0}};
  union_batch.buffers = {
      Values<int8_t>({5, 7, 5}), Values<int32_t>({0, 0, 1}), "", Values<int32_t>({10, 11}), "",
      Values<int32_t>({20})};
  TestBatch list_view_batch;
  list_view_batch.length = 2;
  list_view_batch.nodes = {{2, 0}, {3, 0}};
  list_view_batch.buffers = {"", Values<int32_t>({0, 1}), Values<int32_t>({2, 2}), "",
                             Values<int32_t>({1, 2, 3})};
  const std::vector<std::pair<std::string, std::string>> streams = {
      {"small", SmallStream()},
      {"views", SchemaMessage(
                    {Field("v", fb::Type::BinaryView,
                           [](FlatBufferBuilder& b) { return fb::CreateBinaryView(b).Union(); })}) +
                    BatchMessage(view_batch) + Eos()},
      {"ree",
       SchemaMessage({Field("r", fb::Type::RunEndEncoded,
                            [](FlatBufferBuilder& b) { return fb::CreateRunEndEncoded(b).Union(); },
                            {NotNull(IntField("run_ends", 16)), IntField("values")})}) +
           BatchMessage(ree_batch) + Eos()},
      {"union", SchemaMessage({DenseUnion()}) + BatchMessage(union_batch) + Eos()},
      {"list_view",
       SchemaMessage({Field("lv", fb::Type::ListView,
                            [](FlatBufferBuilder& b) { return fb::CreateListView(b).Union(); },
                            {IntField("item")})}) +
           BatchMessage(list_view_batch) + Eos()},
      {"deltas",
       SchemaMessage(DictionarySchema()) + DictionaryMessage(7, StringsBatch({"a", "b"})) +
           BatchMessage(IndicesBatch({1, 0})) + DictionaryMessage(7, StringsBatch({"c"}), true) +
           BatchMessage(IndicesBatch({2})) + Eos()},
      {"zstd", SchemaMessage({IntField("n")}) + BatchMessage(CompressedInts(100)) + Eos()},
      {"lz4", SchemaMessage({IntField("n")}) + BatchMessage(CompressedInts(100, Codec::kLz4Frame)) +
                  Eos()},
  };
  for (const auto& [name, bytes] : streams) {
    testing::WriteFile(std::filesystem::path(dir) / "stream" / name, bytes);
  }
  testing::WriteFile(
      std::filesystem::path(dir) / "file" / "deltas",
      MakeFile(DictionarySchema(),
               {DictionaryMessage(7, StringsBatch({"a"})),
                DictionaryMessage(7, StringsBatch({"b"}), true)},
               {BatchMessage(IndicesBatch({1})), BatchMessage(IndicesBatch({0, 1}))}));
}

}  // namespace
}  // namespace bridge::ipc
