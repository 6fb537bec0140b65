// FileWriter::WriteEncodedMessage, FileWriter::Close(KeyValueMetadata) and ReadFileFooter:
// messages encoded once for a stream are teed into an IPC file whose footer carries
// metadata known only at the end, and read back by FileReader and ReadFileFooter.
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/arrow/writer.h"
#include "bridge/common/testing.h"

namespace bridge::ipc {
namespace {

using test_arrays::Arrays;
using test_arrays::Batch;
using test_arrays::Bits;
using test_arrays::Bytes;
using test_arrays::MakeArray;
using test_arrays::Fields;
using test_arrays::MakeSchema;
using test_arrays::Rows;
using test_arrays::Utf8;
using test_arrays::ValueAt;
using ::testing::ElementsAre;


// An int32, a utf8 and a dictionary-encoded utf8 column.
OwnedSchema SmallSchema() {
  return MakeSchema("+s", "",
                    Fields(MakeSchema("i", "n"), MakeSchema("u", "s"),
                           MakeSchema("c", "d", {}, MakeSchema("u", ""))));
}

// Rows first, null, first + 2; the dictionary column holds values 0, last, 0.
OwnedArray SmallBatch(int32_t first, std::vector<std::optional<std::string>> dictionary) {
  const auto last = static_cast<int8_t>(dictionary.size() - 1);
  return Batch(3, Arrays(MakeArray(3, {Bits("101"), Bytes<int32_t>({first, first + 1, first + 2})}),
                         Utf8({"a", std::nullopt, "ccc"}),
                         MakeArray(3, {std::nullopt, Bytes<int8_t>({0, last, 0})}, {},
                                   Utf8(std::move(dictionary)))));
}


std::string Bytes(const EncodedMessage& m) {
  std::string out = m.metadata;
  for (const Segment& s : m.body) out.append(reinterpret_cast<const char*>(s.data), s.size);
  return out;
}

std::span<const uint8_t> Span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// What a stream encoder produced for two batches (the second extends the dictionary), and
// the stream it makes.
struct Encoded {
  std::vector<EncodedMessage> messages;  // dictionary, batch, delta, batch
  std::string stream;                    // schema, the messages, end-of-stream marker
};

Encoded EncodeTwoBatches(EncodeOptions options = {}) {
  Encoded out;
  auto encoder = RecordBatchEncoder::Make(*SmallSchema(), options);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  auto schema = (*encoder)->EncodeSchema();
  EXPECT_TRUE(schema.ok());
  out.stream = Bytes(*schema);
  for (int32_t first : {1, 4}) {
    std::vector<std::optional<std::string>> dictionary = {"x", "y"};
    if (first == 4) dictionary.push_back("z");
    auto messages = (*encoder)->Encode(SmallBatch(first, dictionary));
    EXPECT_TRUE(messages.ok()) << messages.status();
    for (EncodedMessage& m : *messages) {
      out.stream += Bytes(m);
      out.messages.push_back(std::move(m));
    }
  }
  out.stream += std::string("\xFF\xFF\xFF\xFF\0\0\0\0", 8);
  return out;
}

TEST(WriteEncodedMessageTest, TeedMessagesMakeAFileThatReadsBack) {
  const Encoded encoded = EncodeTwoBatches();
  ASSERT_EQ(encoded.messages.size(), 4u);
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer,
                       FileWriter::Make(&sink, *SmallSchema(), {}, {{"at-make", "dropped"}}));
  for (const EncodedMessage& m : encoded.messages) ASSERT_OK(writer->WriteEncodedMessage(m));
  ASSERT_OK(writer->Close({{"checksums", "abc"}, {"rows", "6"}}));
  const std::string& bytes = sink.data();
  EXPECT_EQ(writer->bytes_written(), static_cast<int64_t>(bytes.size()));

  // The stream section is byte for byte the stream the encoder's messages make.
  const ByteRange stream = writer->stream_range();
  EXPECT_EQ(stream.offset, 8);
  EXPECT_EQ(bytes.substr(stream.offset, stream.length), encoded.stream);

  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(bytes)));
  ASSERT_EQ(file->num_batches(), 2);
  ASSERT_OK_AND_ASSIGN(OwnedArray first, file->ReadBatch(0));
  EXPECT_THAT(Rows(file->schema(), *first),
              ElementsAre("1 | 'a' | 'x'", "null | null | 'y'", "3 | 'ccc' | 'x'"));
  ASSERT_OK_AND_ASSIGN(OwnedArray second, file->ReadBatch(1));
  EXPECT_THAT(Rows(file->schema(), *second),
              ElementsAre("4 | 'a' | 'x'", "null | null | 'z'", "6 | 'ccc' | 'x'"));

  ASSERT_OK_AND_ASSIGN(FileFooter footer, ReadFileFooter(Span(bytes)));
  EXPECT_EQ(footer.footer_offset, stream.offset + stream.length);
  EXPECT_THAT(footer.custom_metadata,
              ElementsAre(std::pair<std::string, std::string>("checksums", "abc"),
                          std::pair<std::string, std::string>("rows", "6")));
  // Blocks: the dictionary and its delta, the two batches, at their messages' offsets.
  std::vector<int64_t> offsets;  // of each encoded message in the file
  int64_t at = stream.offset;
  {
    // Skip the schema message: its length prefix says where it ends.
    int32_t length;
    std::memcpy(&length, bytes.data() + at + 4, 4);
    at += 8 + length;
  }
  for (const EncodedMessage& m : encoded.messages) {
    offsets.push_back(at);
    at += m.total_size();
  }
  EXPECT_EQ(at + 8, stream.offset + stream.length);
  ASSERT_EQ(footer.dictionaries.size(), 2u);
  ASSERT_EQ(footer.record_batches.size(), 2u);
  EXPECT_EQ(footer.dictionaries[0].offset, offsets[0]);
  EXPECT_EQ(footer.record_batches[0].offset, offsets[1]);
  EXPECT_EQ(footer.dictionaries[1].offset, offsets[2]);
  EXPECT_EQ(footer.record_batches[1].offset, offsets[3]);
  EXPECT_EQ(footer.record_batches[1].metadata_length,
            static_cast<int32_t>(encoded.messages[3].metadata.size()));
  EXPECT_EQ(footer.record_batches[1].body_length, encoded.messages[3].body_length);
}

TEST(WriteEncodedMessageTest, CloseWithoutMetadataKeepsTheOneGivenAtMake) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer,
                       FileWriter::Make(&sink, *SmallSchema(), {}, {{"written-by", "bridge"}}));
  ASSERT_OK(writer->Close());
  ASSERT_OK_AND_ASSIGN(FileFooter footer, ReadFileFooter(Span(sink.data())));
  EXPECT_THAT(footer.custom_metadata,
              ElementsAre(std::pair<std::string, std::string>("written-by", "bridge")));
  EXPECT_TRUE(footer.dictionaries.empty());
  EXPECT_TRUE(footer.record_batches.empty());
  EXPECT_STATUS(writer->Close({{"a", "b"}}), StatusCode::kFailedPrecondition, "closed");
}

TEST(WriteEncodedMessageTest, RefusedMessagesWriteNothing) {
  const Encoded encoded = EncodeTwoBatches();
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, FileWriter::Make(&sink, *SmallSchema()));
  const int64_t after_schema = writer->bytes_written();

  ASSERT_OK_AND_ASSIGN(EncodedMessage schema, EncodeSchemaMessage(*SmallSchema()));
  EXPECT_STATUS(writer->WriteEncodedMessage(schema), StatusCode::kInvalidArgument,
                "schema message");
  // A delta before its dictionary.
  EXPECT_STATUS(writer->WriteEncodedMessage(encoded.messages[2]), StatusCode::kInvalidArgument,
                "before the dictionary");
  // Broken framing: a wrong continuation marker, a type that disagrees with the flatbuffer,
  // a body shorter than bodyLength.
  EncodedMessage bad_marker = encoded.messages[1];
  bad_marker.metadata[0] = 0;
  EXPECT_STATUS(writer->WriteEncodedMessage(bad_marker), StatusCode::kInvalidArgument, "prefix");
  EncodedMessage wrong_type = encoded.messages[1];
  wrong_type.type = MessageType::kDictionaryBatch;
  EXPECT_STATUS(writer->WriteEncodedMessage(wrong_type), StatusCode::kInvalidArgument, "disagrees");
  EncodedMessage short_body = encoded.messages[1];
  ASSERT_FALSE(short_body.body.empty());
  short_body.body.pop_back();
  EXPECT_STATUS(writer->WriteEncodedMessage(short_body), StatusCode::kInvalidArgument, "body");
  EncodedMessage garbage = encoded.messages[1];
  std::memset(garbage.metadata.data() + 8, 0x5A, garbage.metadata.size() - 8);
  EXPECT_STATUS(writer->WriteEncodedMessage(garbage), StatusCode::kInvalidArgument, "");
  EXPECT_EQ(writer->bytes_written(), after_schema);

  // The file goes on: the dictionary, then a replacement of it (refused), then a batch.
  ASSERT_OK(writer->WriteEncodedMessage(encoded.messages[0]));
  EXPECT_STATUS(writer->WriteEncodedMessage(encoded.messages[0]), StatusCode::kInvalidArgument,
                "cannot replace");
  ASSERT_OK(writer->WriteEncodedMessage(encoded.messages[1]));
  ASSERT_OK(writer->Close());
  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(sink.data())));
  ASSERT_EQ(file->num_batches(), 1);
  ASSERT_OK_AND_ASSIGN(OwnedArray batch, file->ReadBatch(0));
  EXPECT_THAT(Rows(file->schema(), *batch),
              ElementsAre("1 | 'a' | 'x'", "null | null | 'y'", "3 | 'ccc' | 'x'"));
  EXPECT_STATUS(writer->WriteEncodedMessage(encoded.messages[1]), StatusCode::kFailedPrecondition,
                "closed");
}

TEST(WriteEncodedMessageTest, BodyCodecMustBeTheFiles) {
  const Encoded compressed = EncodeTwoBatches({.codec = Codec::kZstd});
  StringSink plain_sink;
  ASSERT_OK_AND_ASSIGN(auto plain, FileWriter::Make(&plain_sink, *SmallSchema()));
  EXPECT_STATUS(plain->WriteEncodedMessage(compressed.messages[1]), StatusCode::kInvalidArgument,
                "codec");

  StringSink zstd_sink;
  ASSERT_OK_AND_ASSIGN(auto zstd,
                       FileWriter::Make(&zstd_sink, *SmallSchema(), {.codec = Codec::kZstd}));
  for (const EncodedMessage& m : compressed.messages) ASSERT_OK(zstd->WriteEncodedMessage(m));
  ASSERT_OK(zstd->Close());
  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(zstd_sink.data())));
  ASSERT_EQ(file->num_batches(), 2);
  ASSERT_OK_AND_ASSIGN(OwnedArray second, file->ReadBatch(1));
  EXPECT_THAT(Rows(file->schema(), *second),
              ElementsAre("4 | 'a' | 'x'", "null | null | 'z'", "6 | 'ccc' | 'x'"));
}

// ---------------------------------------------------------------------------------------
// ReadFileFooter on bad files

std::string SmallFile() {
  StringSink sink;
  auto writer = FileWriter::Make(&sink, *SmallSchema(), {}, {{"k", "v"}});
  EXPECT_TRUE(writer.ok());
  EXPECT_TRUE((*writer)->WriteBatch(SmallBatch(1, {"x", "y"})).ok());
  EXPECT_TRUE((*writer)->Close().ok());
  return sink.Take();
}

TEST(ReadFileFooterTest, EveryTruncationIsInvalidArgument) {
  const std::string bytes = SmallFile();
  ASSERT_OK(ReadFileFooter(Span(bytes)));
  for (size_t size = 0; size < bytes.size(); ++size) {
    const std::string torn = bytes.substr(0, size);
    EXPECT_STATUS(ReadFileFooter(Span(torn)), StatusCode::kInvalidArgument, "ipc: ")
        << "truncated to " << size << " of " << bytes.size() << " bytes";
  }
}

TEST(ReadFileFooterTest, BadMagicLengthOrFooterIsInvalidArgument) {
  const std::string bytes = SmallFile();
  const size_t length_at = bytes.size() - 10;

  std::string bad_start = bytes;
  bad_start[0] = 'X';
  EXPECT_STATUS(ReadFileFooter(Span(bad_start)), StatusCode::kInvalidArgument, "magic");
  std::string bad_end = bytes;
  bad_end.back() = 'X';
  EXPECT_STATUS(ReadFileFooter(Span(bad_end)), StatusCode::kInvalidArgument, "magic");

  for (int32_t length : {0, -1, static_cast<int32_t>(bytes.size()), 0x7FFFFFFF}) {
    std::string bad_length = bytes;
    std::memcpy(bad_length.data() + length_at, &length, 4);
    EXPECT_STATUS(ReadFileFooter(Span(bad_length)), StatusCode::kInvalidArgument, "footer length")
        << length;
  }

  // A footer whose flatbuffer is garbage.
  int32_t footer_length;
  std::memcpy(&footer_length, bytes.data() + length_at, 4);
  std::string bad_footer = bytes;
  std::memset(bad_footer.data() + length_at - footer_length, 0xEE, footer_length);
  EXPECT_STATUS(ReadFileFooter(Span(bad_footer)), StatusCode::kInvalidArgument, "footer");

  // A limit below the footer's size.
  EXPECT_STATUS(ReadFileFooter(Span(bytes), footer_length - 1), StatusCode::kInvalidArgument,
                "footer length");

  const std::string garbage(4096, 'A');
  EXPECT_STATUS(ReadFileFooter(Span(garbage)), StatusCode::kInvalidArgument, "magic");
}

}  // namespace
}  // namespace bridge::ipc
