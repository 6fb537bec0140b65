#include "bridge/arrow/writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bridge/arrow/data_type.h"
#include "bridge/arrow/fb/File_generated.h"
#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"

namespace bridge::ipc {
namespace {

using test_arrays::Arrays;
using test_arrays::Batch;
using test_arrays::Bits;
using test_arrays::Bytes;
using test_arrays::Chars;
using test_arrays::Fields;
using test_arrays::MakeSchema;
using test_arrays::Rows;
using test_arrays::MaybeBuffer;
using test_arrays::Utf8;
using test_arrays::ValueAt;
using ::testing::ElementsAre;

// ---------------------------------------------------------------------------------------
// Arrays and schemas made by hand

// Returns an array owning `buffers` (nullopt = a null pointer) whose null_count is -1
// (unknown), as a producer may hand it over.
OwnedArray MakeArray(int64_t length, std::vector<MaybeBuffer> buffers,
                     std::vector<OwnedArray> children = {}, OwnedArray dictionary = {},
                     int64_t offset = 0) {
  return test_arrays::MakeArray(length, std::move(buffers), std::move(children),
                                std::move(dictionary), offset, /*null_count=*/-1);
}


OwnedSchema Columns(std::vector<OwnedSchema> fields) {
  return MakeSchema("+s", "", std::move(fields));
}

// ---------------------------------------------------------------------------------------
// Reading values back, independently of the encoder


// ---------------------------------------------------------------------------------------
// Walking written bytes

struct WireMessage {
  int64_t offset;           // of the continuation marker
  int32_t metadata_length;  // after the 8-byte prefix
  const fb::Message* message;
};

// Parses the stream in `bytes` from `offset`: every message, then the end-of-stream
// marker, which must end at `end` (the end of `bytes` by default).
std::vector<WireMessage> ParseStream(const std::string& bytes, int64_t offset = 0,
                                     int64_t end = -1) {
  if (end < 0) end = static_cast<int64_t>(bytes.size());
  std::vector<WireMessage> out;
  while (true) {
    EXPECT_EQ(offset % 8, 0);
    EXPECT_LE(offset + 8, end);
    if (offset + 8 > end) return out;
    uint32_t marker;
    int32_t length;
    std::memcpy(&marker, bytes.data() + offset, 4);
    std::memcpy(&length, bytes.data() + offset + 4, 4);
    EXPECT_EQ(marker, 0xFFFFFFFFu);
    if (length == 0) {
      EXPECT_EQ(offset + 8, end) << "bytes after the end-of-stream marker";
      return out;
    }
    EXPECT_EQ(length % 8, 0);
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data() + offset + 8);
    flatbuffers::Verifier verifier(data, length);
    EXPECT_TRUE(fb::VerifyMessageBuffer(verifier));
    const fb::Message* message = fb::GetMessage(data);
    EXPECT_EQ(message->version(), fb::MetadataVersion::V5);
    out.push_back({offset, length, message});
    offset += 8 + length + message->body_length();
  }
}

std::vector<fb::MessageHeader> Kinds(const std::vector<WireMessage>& messages) {
  std::vector<fb::MessageHeader> out;
  for (const auto& m : messages) out.push_back(m.message->header_type());
  return out;
}

// A schema with an int32, a utf8 and a dictionary-encoded utf8 column, and batches of it.
OwnedSchema SmallSchema() {
  return Columns(Fields(MakeSchema("i", "n"), MakeSchema("u", "s"),
                        MakeSchema("c", "d", {}, MakeSchema("u", ""))));
}

// Its dictionary column holds dictionary values 0, last, 0.
OwnedArray SmallBatch(int32_t first, std::vector<std::optional<std::string>> dictionary) {
  const auto last = static_cast<int8_t>(dictionary.size() - 1);
  return Batch(3, Arrays(MakeArray(3, {Bits("101"), Bytes<int32_t>({first, first + 1, first + 2})}),
                         Utf8({"a", std::nullopt, "ccc"}),
                         MakeArray(3, {std::nullopt, Bytes<int8_t>({0, last, 0})}, {},
                                   Utf8(std::move(dictionary)))));
}

// ---------------------------------------------------------------------------------------
// Stream and file layout

TEST(StreamWriterTest, MessagesAreFramedAlignedAndEndWithTheMarker) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, StreamWriter::Make(&sink, *SmallSchema()));
  EXPECT_EQ(writer->bytes_written(), static_cast<int64_t>(sink.data().size()));
  ASSERT_OK(writer->WriteBatch(SmallBatch(1, {"x", "y"})));
  ASSERT_OK(writer->WriteBatch(SmallBatch(4, {"x", "y", "z"})));
  ASSERT_OK(writer->Close());
  const std::string& bytes = sink.data();
  EXPECT_EQ(writer->bytes_written(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(bytes.substr(bytes.size() - 8), std::string("\xFF\xFF\xFF\xFF\0\0\0\0", 8));
  const auto messages = ParseStream(bytes);
  EXPECT_THAT(Kinds(messages),
              ElementsAre(fb::MessageHeader::Schema, fb::MessageHeader::DictionaryBatch,
                          fb::MessageHeader::RecordBatch, fb::MessageHeader::DictionaryBatch,
                          fb::MessageHeader::RecordBatch));
  EXPECT_TRUE(messages[3].message->header_as_DictionaryBatch()->is_delta());
  EXPECT_EQ(writer->stats().record_batches, 2);
  EXPECT_EQ(writer->stats().dictionary_deltas, 1);

  ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(Buffer::FromString(bytes)));
  std::vector<std::string> rows;
  while (true) {
    ASSERT_OK_AND_ASSIGN(OwnedArray batch, reader->Next());
    if (!batch.valid()) break;
    for (auto& row : Rows(reader->schema(), *batch)) rows.push_back(row);
  }
  EXPECT_THAT(rows, ElementsAre("1 | 'a' | 'x'", "null | null | 'y'", "3 | 'ccc' | 'x'",
                                "4 | 'a' | 'x'", "null | null | 'z'", "6 | 'ccc' | 'x'"));
}

TEST(FileWriterTest, MagicFooterAndBlocks) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer,
                       FileWriter::Make(&sink, *SmallSchema(), {}, {{"written-by", "bridge"}}));
  ASSERT_OK(writer->WriteBatch(SmallBatch(1, {"x", "y"})));
  ASSERT_OK(writer->WriteBatch(SmallBatch(4, {"x", "y", "z"})));
  ASSERT_OK(writer->WriteBatch(SmallBatch(7, {"x", "y", "z"})));
  ASSERT_OK(writer->Close());
  const std::string& bytes = sink.data();
  ASSERT_GT(bytes.size(), 20u);
  EXPECT_EQ(writer->bytes_written(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(bytes.substr(0, 8), std::string("ARROW1\0\0", 8));
  EXPECT_EQ(bytes.substr(bytes.size() - 6), "ARROW1");
  int32_t footer_length;
  std::memcpy(&footer_length, bytes.data() + bytes.size() - 10, 4);
  const int64_t footer_start = static_cast<int64_t>(bytes.size()) - 10 - footer_length;
  ASSERT_GT(footer_start, 8);

  // The stream section: schema through the end-of-stream marker, right before the footer.
  const ByteRange stream = writer->stream_range();
  EXPECT_EQ(stream.offset, 8);
  EXPECT_EQ(stream.offset + stream.length, footer_start);
  const auto messages = ParseStream(bytes, stream.offset, stream.offset + stream.length);
  ASSERT_EQ(messages.size(), 1u + 1 + 1 + 1 + 1 + 1);  // schema, dict, batch, delta, batch, batch

  std::string footer_bytes = bytes.substr(footer_start, footer_length);
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(footer_bytes.data()),
                                 footer_bytes.size());
  ASSERT_TRUE(fb::VerifyFooterBuffer(verifier));
  const fb::Footer* footer = fb::GetFooter(footer_bytes.data());
  EXPECT_EQ(footer->version(), fb::MetadataVersion::V5);
  ASSERT_EQ(footer->schema()->fields()->size(), 3u);
  EXPECT_EQ(footer->schema()->fields()->Get(2)->dictionary()->id(), 0);
  ASSERT_NE(footer->custom_metadata(), nullptr);
  EXPECT_EQ(footer->custom_metadata()->Get(0)->key()->str(), "written-by");
  EXPECT_EQ(footer->custom_metadata()->Get(0)->value()->str(), "bridge");

  // Blocks point at the continuation markers, count the prefix in the metadata length.
  std::vector<const fb::Block*> expected_dictionaries;
  std::vector<const fb::Block*> expected_batches;
  auto check_block = [&](const fb::Block* block, const WireMessage& m) {
    EXPECT_EQ(block->offset(), m.offset);
    EXPECT_EQ(block->meta_data_length(), 8 + m.metadata_length);
    EXPECT_EQ(block->body_length(), m.message->body_length());
  };
  ASSERT_EQ(footer->dictionaries()->size(), 2u);
  ASSERT_EQ(footer->record_batches()->size(), 3u);
  check_block(footer->dictionaries()->Get(0), messages[1]);
  check_block(footer->record_batches()->Get(0), messages[2]);
  check_block(footer->dictionaries()->Get(1), messages[3]);
  check_block(footer->record_batches()->Get(1), messages[4]);
  check_block(footer->record_batches()->Get(2), messages[5]);

  // Read back by the file reader, and the stream section by the stream reader.
  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(bytes)));
  ASSERT_EQ(file->num_batches(), 3);
  EXPECT_EQ(file->stream_section().first, stream.offset);
  ASSERT_OK_AND_ASSIGN(OwnedArray last, file->ReadBatch(2));
  EXPECT_THAT(Rows(file->schema(), *last),
              ElementsAre("7 | 'a' | 'x'", "null | null | 'z'", "9 | 'ccc' | 'x'"));
  ASSERT_OK_AND_ASSIGN(
      auto reader,
      OpenStreamReader(Buffer::FromString(bytes.substr(stream.offset, stream.length))));
  int batches = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(OwnedArray batch, reader->Next());
    if (!batch.valid()) break;
    ++batches;
  }
  EXPECT_EQ(batches, 3);
}

TEST(FileWriterTest, DictionaryReplacementIsAnErrorButTheFileStaysUsable) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, FileWriter::Make(&sink, *SmallSchema()));
  ASSERT_OK(writer->WriteBatch(SmallBatch(1, {"x", "y"})));
  EXPECT_STATUS(writer->WriteBatch(SmallBatch(4, {"y", "x"})), StatusCode::kInvalidArgument,
                "cannot replace");
  ASSERT_OK(writer->WriteBatch(SmallBatch(7, {"x", "y"})));
  ASSERT_OK(writer->Close());
  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(sink.data())));
  EXPECT_EQ(file->num_batches(), 2);

  // A stream may replace.
  StringSink stream_sink;
  ASSERT_OK_AND_ASSIGN(auto stream, StreamWriter::Make(&stream_sink, *SmallSchema()));
  ASSERT_OK(stream->WriteBatch(SmallBatch(1, {"x", "y"})));
  ASSERT_OK(stream->WriteBatch(SmallBatch(4, {"y", "x"})));
  EXPECT_EQ(stream->stats().dictionary_replacements, 1);
}

TEST(FileWriterTest, EmptyFileHasASchemaAndNoBlocks) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, FileWriter::Make(&sink, *SmallSchema()));
  ASSERT_OK(writer->Close());
  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(sink.data())));
  EXPECT_EQ(file->num_batches(), 0);
  EXPECT_EQ(file->schema().n_children, 3);
}

// ---------------------------------------------------------------------------------------
// Writer states and sinks

class FailingSink : public ByteSink {
 public:
  Status Write(std::span<const Segment> segments) override {
    if (--writes_left_ < 0) return IoError("test: disk full");
    return inner_.Write(segments);
  }
  int writes_left_ = 0;
  StringSink inner_;
};

TEST(WriterStateTest, ClosedAndFailedWritersRefuseMore) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, StreamWriter::Make(&sink, *SmallSchema()));
  ASSERT_OK(writer->Close());
  EXPECT_STATUS(writer->Close(), StatusCode::kFailedPrecondition, "closed");
  EXPECT_STATUS(writer->WriteBatch(SmallBatch(1, {"x"})), StatusCode::kFailedPrecondition,
                "closed");

  FailingSink failing;
  failing.writes_left_ = 2;  // schema, dictionary
  ASSERT_OK_AND_ASSIGN(auto broken, StreamWriter::Make(&failing, *SmallSchema()));
  EXPECT_STATUS(broken->WriteBatch(SmallBatch(1, {"x"})), StatusCode::kUnavailable, "disk full");
  EXPECT_STATUS(broken->WriteBatch(SmallBatch(1, {"x"})), StatusCode::kFailedPrecondition,
                "disk full");
  EXPECT_STATUS(broken->Close(), StatusCode::kFailedPrecondition, "failed earlier");

  FailingSink failing_file;
  failing_file.writes_left_ = 0;
  EXPECT_STATUS(FileWriter::Make(&failing_file, *SmallSchema()), StatusCode::kUnavailable,
                "disk full");
  EXPECT_STATUS(StreamWriter::Make(nullptr, *SmallSchema()), StatusCode::kInvalidArgument, "sink");
}

TEST(WriterStateTest, ABadBatchWritesNothingAndTheStreamGoesOn) {
  StringSink sink;
  ASSERT_OK_AND_ASSIGN(auto writer, StreamWriter::Make(&sink, *SmallSchema()));
  ASSERT_OK(writer->WriteBatch(SmallBatch(1, {"x"})));
  const size_t before = sink.data().size();
  EXPECT_STATUS(writer->WriteBatch(Batch(3, Arrays(MakeArray(3, {std::nullopt, std::nullopt})))),
                StatusCode::kInvalidArgument, "batch 1");
  EXPECT_EQ(sink.data().size(), before);
  ASSERT_OK(writer->WriteBatch(SmallBatch(4, {"x"})));
  ASSERT_OK(writer->Close());
  EXPECT_EQ(ParseStream(sink.data()).size(), 4u);
}

// Reads everything from `fd` until end of file, on its own thread.
class DrainingThread {
 public:
  explicit DrainingThread(int fd, bool slow = false)
      : thread_([this, fd, slow] {
          char buffer[4096];
          while (true) {
            const ssize_t n = ::read(fd, buffer, slow ? 512 : sizeof(buffer));
            if (n > 0) {
              data_.append(buffer, static_cast<size_t>(n));
            } else if (n == 0 || errno != EINTR) {
              break;
            }
          }
        }) {}
  std::string Join() {
    thread_.join();
    return std::move(data_);
  }

 private:
  std::string data_;
  std::thread thread_;
};

// Segments over a buffer: more of them than IOV_MAX, of uneven sizes, some empty.
std::vector<Segment> ManySegments(const std::string& data) {
  std::vector<Segment> segments;
  size_t at = 0;
  for (size_t i = 0; at < data.size(); ++i) {
    const size_t size = std::min(data.size() - at, (i * 37) % 500);
    segments.push_back({reinterpret_cast<const uint8_t*>(data.data()) + at, size});
    at += size;
  }
  return segments;
}

std::string PatternBytes(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 131) >> 3);
  return out;
}

TEST(FileDescriptorSinkTest, PartialWritesAndMoreSegmentsThanIovMax) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096);  // small pipe: writev returns partial counts
  const std::string data = PatternBytes(1 << 20);
  const auto segments = ManySegments(data);
  ASSERT_GT(segments.size(), 2u * IOV_MAX);
  DrainingThread reader(fds[0]);
  FileDescriptorSink sink(fds[1]);
  ASSERT_OK(sink.Write(segments));
  EXPECT_EQ(sink.bytes_written(), static_cast<int64_t>(data.size()));
  ::close(fds[1]);
  EXPECT_EQ(reader.Join(), data);
  ::close(fds[0]);
}

TEST(FileDescriptorSinkTest, NonBlockingSocketWaitsForRoom) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  const int size = 4096;
  ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  const std::string data = PatternBytes(300000);
  DrainingThread reader(fds[0], /*slow=*/true);
  FileDescriptorSink sink(fds[1]);
  ASSERT_OK(sink.Write(ManySegments(data)));
  ::shutdown(fds[1], SHUT_WR);
  EXPECT_EQ(reader.Join(), data);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(FileDescriptorSinkTest, ClosedPipeIsAnIoError) {
  ::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  FileDescriptorSink sink(fds[1]);
  const std::string data = "hello";
  const Segment segment{reinterpret_cast<const uint8_t*>(data.data()), data.size()};
  EXPECT_STATUS(sink.Write(std::span<const Segment>(&segment, 1)), StatusCode::kUnavailable,
                "Broken pipe");
  ::close(fds[1]);
  FileDescriptorSink bad(-1);
  EXPECT_STATUS(bad.Write(std::span<const Segment>(&segment, 1)), StatusCode::kUnavailable,
                "fd -1");
}

TEST(FileDescriptorSinkTest, StreamWriterToAFile) {
  testing::TempDir dir;
  const auto path = dir.path() / "out.arrows";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  FileDescriptorSink sink(fd);
  ASSERT_OK_AND_ASSIGN(auto writer, StreamWriter::Make(&sink, *SmallSchema()));
  ASSERT_OK(writer->WriteBatch(SmallBatch(1, {"x"})));
  ASSERT_OK(writer->Close());
  ::close(fd);
  EXPECT_EQ(sink.bytes_written(), writer->bytes_written());
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(path)), writer->bytes_written());
}

// ---------------------------------------------------------------------------------------
// Round trips through the reader

// Hand-built columns of every layout, most of them sliced (offsets in the column, in its
// children and in the batch).
struct HandBuilt {
  OwnedSchema schema;
  OwnedArray batch;
};

HandBuilt MakeHandBuilt() {
  HandBuilt h;
  auto entries =
      MakeSchema("+s", "entries", Fields(MakeSchema("u", "key"), MakeSchema("i", "value")));
  h.schema = Columns(Fields(
      MakeSchema("i", "i32"), MakeSchema("b", "flag"), MakeSchema("u", "s"),
      MakeSchema("U", "large"), MakeSchema("+l", "list", Fields(MakeSchema("s", "item"))),
      MakeSchema("+w:2", "pair", Fields(MakeSchema("c", "item"))),
      MakeSchema("+s", "st", Fields(MakeSchema("i", "a"), MakeSchema("u", "b"))),
      MakeSchema("+us:0,1", "sparse", Fields(MakeSchema("i", "n"), MakeSchema("u", "t"))),
      MakeSchema("+ud:0,1", "dense", Fields(MakeSchema("i", "n"), MakeSchema("u", "t"))),
      MakeSchema("+r", "ree", Fields(MakeSchema("s", "run_ends"), MakeSchema("u", "values"))),
      MakeSchema("vu", "view"), MakeSchema("n", "nothing"),
      MakeSchema("C", "dict", {}, MakeSchema("u", "")),
      MakeSchema("+m", "map", Fields(std::move(entries))),
      MakeSchema("+vl", "lv", Fields(MakeSchema("i", "item"))), MakeSchema("w:3", "fsb"),
      MakeSchema("d:20,2", "dec"), MakeSchema("tin", "interval")));

  // 12 physical rows; the batch shows rows 3..10 (offset 3, length 8) and some columns
  // carry offsets of their own on top.
  constexpr int64_t kRows = 12;
  std::vector<OwnedArray> c;
  c.push_back(
      MakeArray(kRows - 1,
                {Bits("1101101110111"), Bytes<int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})},
                {}, {}, 1));
  c.push_back(MakeArray(kRows, {Bits("111011110111"), Bits("101100111000")}));
  c.push_back(Utf8(
      {"a", "bb", std::nullopt, "ccc", "", "dddd", "e", "ff", std::nullopt, "g", "hh", "iii", "j"},
      1));
  c.push_back(
      MakeArray(kRows, {std::nullopt, Bytes<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
                        Chars("ABCDEFGHIJKL")}));
  {
    std::vector<int32_t> offsets = {0};
    for (int i = 0; i < kRows; ++i) offsets.push_back(offsets.back() + i % 3);
    std::vector<uint8_t> offset_bytes(offsets.size() * 4);
    std::memcpy(offset_bytes.data(), offsets.data(), offset_bytes.size());
    std::vector<uint8_t> items(40 * 2);
    for (int i = 0; i < 40; ++i) items[i * 2] = static_cast<uint8_t>(i);
    c.push_back(MakeArray(
        kRows, {Bits("111111011111"), offset_bytes},
        Arrays(MakeArray(30, {Bits("1111011111111111111111111111111111"), items}, {}, {}, 2))));
  }
  {
    std::vector<uint8_t> items(2 * kRows);
    for (int i = 0; i < 2 * kRows; ++i) items[i] = static_cast<uint8_t>(100 + i);
    c.push_back(MakeArray(kRows, {Bits("011111111110")},
                          Arrays(MakeArray(2 * kRows, {std::nullopt, items}))));
  }
  c.push_back(MakeArray(
      kRows, {Bits("111101111111")},
      Arrays(MakeArray(kRows,
                       {std::nullopt,
                        Bytes<int32_t>({-1, -2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21})},
                       {}, {}, 2),
             Utf8({"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"}))));
  c.push_back(MakeArray(
      kRows, {Bytes<int8_t>({0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0})},
      Arrays(
          MakeArray(kRows, {std::nullopt, Bytes<int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})}),
          Utf8({"", "u1", "", "u3", "u4", "", "", "u7", "", "u9", "", ""}))));
  c.push_back(
      MakeArray(kRows,
                {Bytes<int8_t>({0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}),
                 Bytes<int32_t>({0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6})},
                Arrays(MakeArray(7, {std::nullopt, Bytes<int32_t>({50, 51, 52, 53, 54, 55, 56})}),
                       Utf8({"d0", "d1", "d2", "d3", "d4"}))));
  {
    auto ree = MakeArray(kRows - 1, {},
                         Arrays(MakeArray(4, {std::nullopt, Bytes<int16_t>({2, 5, 9, 12})}),
                                Utf8({"r0", "r1", std::nullopt, "r3"})),
                         {}, 1);
    ree->null_count = 0;
    c.push_back(std::move(ree));
  }
  {
    // Views: rows alternate inline and out-of-line strings in two data buffers.
    std::vector<uint8_t> views(kRows * 16, 0);
    std::string data0;
    std::string data1;
    for (int i = 0; i < kRows; ++i) {
      uint8_t* v = views.data() + i * 16;
      std::string text =
          i % 2 == 0 ? "in" + std::to_string(i) : "out-of-line-string-" + std::to_string(i);
      const int32_t size = static_cast<int32_t>(text.size());
      std::memcpy(v, &size, 4);
      if (size <= 12) {
        std::memcpy(v + 4, text.data(), text.size());
      } else {
        std::string& data = i % 4 == 1 ? data0 : data1;
        const int32_t buffer = i % 4 == 1 ? 0 : 1;
        const int32_t offset = static_cast<int32_t>(data.size());
        data += text;
        std::memcpy(v + 4, text.data(), 4);
        std::memcpy(v + 8, &buffer, 4);
        std::memcpy(v + 12, &offset, 4);
      }
    }
    c.push_back(MakeArray(kRows, {Bits("111111111101"), views, Chars(data0), Chars(data1),
                                  Bytes<int64_t>({static_cast<int64_t>(data0.size()),
                                                  static_cast<int64_t>(data1.size())})}));
  }
  {
    auto nothing = MakeArray(kRows, {});
    nothing->null_count = kRows;
    c.push_back(std::move(nothing));
  }
  c.push_back(
      MakeArray(kRows, {Bits("110111111111"), Bytes<uint8_t>({2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1, 2})},
                {}, Utf8({"zero", "one", "two"})));
  {
    std::vector<int32_t> offsets = {0};
    for (int i = 0; i < kRows; ++i) offsets.push_back(offsets.back() + (i % 2 == 0 ? 1 : 2));
    const int32_t total = offsets.back();
    std::vector<std::optional<std::string>> keys;
    std::vector<uint8_t> values;
    for (int i = 0; i < total; ++i) {
      keys.push_back("k" + std::to_string(i));
      const int32_t v = i * 10;
      values.insert(values.end(), reinterpret_cast<const uint8_t*>(&v),
                    reinterpret_cast<const uint8_t*>(&v) + 4);
    }
    std::vector<uint8_t> offset_bytes(offsets.size() * 4);
    std::memcpy(offset_bytes.data(), offsets.data(), offset_bytes.size());
    c.push_back(
        MakeArray(kRows, {Bits("111111101111"), offset_bytes},
                  Arrays(MakeArray(total, {std::nullopt},
                                   Arrays(Utf8(keys), MakeArray(total, {std::nullopt, values}))))));
  }
  c.push_back(MakeArray(
      kRows,
      {std::nullopt, Bytes<int32_t>({5, 0, 3, 1, 0, 2, 4, 0, 6, 1, 2, 3}),
       Bytes<int32_t>({2, 1, 3, 0, 4, 2, 1, 3, 1, 2, 2, 1})},
      Arrays(MakeArray(8, {std::nullopt, Bytes<int32_t>({70, 71, 72, 73, 74, 75, 76, 77})}))));
  c.push_back(MakeArray(kRows, {std::nullopt, Chars("aaabbbcccdddeeefffggghhhiiijjjkkklll")}));
  {
    std::vector<uint8_t> decimals(kRows * 16, 0);
    for (int i = 0; i < kRows; ++i) decimals[i * 16] = static_cast<uint8_t>(i * 3);
    c.push_back(MakeArray(kRows, {Bits("111111111110"), decimals}));
  }
  {
    std::vector<uint8_t> intervals(kRows * 16, 0);
    for (int i = 0; i < kRows; ++i) intervals[i * 16 + 4] = static_cast<uint8_t>(i);
    c.push_back(MakeArray(kRows, {std::nullopt, intervals}));
  }
  h.batch = Batch(8, std::move(c), /*offset=*/3);
  return h;
}

std::vector<std::string> ReadAllRows(RecordBatchReader& reader) {
  std::vector<std::string> rows;
  while (true) {
    auto batch = reader.Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) break;
    for (auto& row : Rows(reader.schema(), **batch)) rows.push_back(std::move(row));
  }
  return rows;
}

class RoundTripTest : public ::testing::TestWithParam<Codec> {};

TEST_P(RoundTripTest, HandBuiltSlicedColumnsOfEveryLayout) {
  HandBuilt h = MakeHandBuilt();
  const std::vector<std::string> expected = Rows(*h.schema, *h.batch);
  ASSERT_EQ(expected.size(), 8u);
  EncodeOptions options;
  options.codec = GetParam();
  StringSink stream_sink;
  StringSink file_sink;
  ASSERT_OK_AND_ASSIGN(auto stream, StreamWriter::Make(&stream_sink, *h.schema, options));
  ASSERT_OK_AND_ASSIGN(auto file, FileWriter::Make(&file_sink, *h.schema, options));
  ASSERT_OK(stream->WriteBatch(std::move(h.batch)));
  ASSERT_OK(file->WriteBatch(MakeHandBuilt().batch));
  ASSERT_OK(stream->Close());
  ASSERT_OK(file->Close());
  if (options.codec == Codec::kNone) {
    EXPECT_GT(stream->stats().copied_bytes, 0);  // sliced bitmaps and offsets
  }

  ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(Buffer::FromString(stream_sink.data())));
  EXPECT_EQ(ReadAllRows(*reader), expected);
  ASSERT_OK_AND_ASSIGN(auto file_reader, FileReader::Open(Buffer::FromString(file_sink.data())));
  ASSERT_EQ(file_reader->num_batches(), 1);
  ASSERT_OK_AND_ASSIGN(OwnedArray batch, file_reader->ReadBatch(0));
  EXPECT_EQ(Rows(file_reader->schema(), *batch), expected);
}

INSTANTIATE_TEST_SUITE_P(Codecs, RoundTripTest,
                         ::testing::Values(Codec::kNone, Codec::kLz4Frame, Codec::kZstd),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

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
  options.threads = 1;
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

constexpr char kEveryTypeQuery[] = R"sql(
SELECT
  i AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i % 3 = 0 END AS b,
  (i % 127)::TINYINT AS i8, (i * 3)::SMALLINT AS i16,
  CASE WHEN i % 7 = 3 THEN NULL ELSE (i * 100003)::INTEGER END AS i32,
  i * 1000000007 AS i64, (i % 200)::UTINYINT AS u8, (i * 7)::USMALLINT AS u16,
  (i * 1000)::UINTEGER AS u32, (i * 3000000000000)::UBIGINT AS u64,
  CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 7.0)::FLOAT END AS f32, (i / 3.0)::DOUBLE AS f64,
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
  ('blob' || i)::BLOB AS bl, md5(i::VARCHAR)::UUID AS uid, NULL AS nothing,
  CASE WHEN i % 9 = 0 THEN NULL
       ELSE list_transform(range(i % 5), x -> CASE WHEN x = 2 THEN NULL ELSE x + i END) END AS li,
  CAST([i::INTEGER, (i * 2)::INTEGER, NULL] AS INTEGER[3]) AS arr,
  CASE WHEN i % 8 = 0 THEN NULL ELSE {'a': i, 'b': 'n' || i, 'c': [i, i + 1]} END AS st,
  CASE WHEN i % 10 = 0 THEN NULL ELSE MAP {'k' || (i % 3): i, 'z': i + 1} END AS mp,
  CASE WHEN i % 4 = 1 THEN i::UNION(num BIGINT, str VARCHAR)
       ELSE ('u' || i)::UNION(num BIGINT, str VARCHAR) END AS un,
  CASE WHEN i % 7 = 5 THEN NULL
       ELSE (['red', 'green', 'blue'])[(i % 3) + 1]::ENUM('red', 'green', 'blue') END AS en
FROM range(5000) t(i) ORDER BY i
)sql";

// Writes the query's result with `write` and returns the rows DuckDB produced.
template <typename Writer>
std::vector<std::string> WriteQuery(engine::Session& session, ByteSink& sink,
                                    EncodeOptions options) {
  std::vector<std::string> rows;
  auto stream = session.Query(kEveryTypeQuery);
  EXPECT_TRUE(stream.ok()) << stream.status();
  if (!stream.ok()) return rows;
  auto writer = Writer::Make(&sink, (*stream)->schema(), options);
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return rows;
  while (true) {
    auto batch = (*stream)->Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) break;
    for (auto& row : Rows((*stream)->schema(), **batch)) rows.push_back(std::move(row));
    EXPECT_OK((*writer)->WriteBatch(*std::move(batch)));
  }
  EXPECT_OK((*writer)->Close());
  EXPECT_EQ((*writer)->stats().copied_bytes, 0);
  return rows;
}

TEST(DuckDBRoundTripTest, EveryTypeThroughStreamAndFileReaders) {
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  StringSink stream_sink;
  const auto expected = WriteQuery<StreamWriter>(*duck->session, stream_sink, {});
  ASSERT_EQ(expected.size(), 5000u);

  ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(Buffer::FromString(stream_sink.data())));
  EXPECT_EQ(ReadAllRows(*reader), expected);
  EXPECT_EQ(reader->stats().bytes_copied, 0);  // every buffer arrived aligned
  EXPECT_EQ(reader->stats().dictionary_batches, 1);

  StringSink file_sink;
  EXPECT_EQ(WriteQuery<FileWriter>(*duck->session, file_sink, {}), expected);
  ASSERT_OK_AND_ASSIGN(auto file, FileReader::Open(Buffer::FromString(file_sink.data())));
  std::vector<std::string> rows;
  for (int64_t i = 0; i < file->num_batches(); ++i) {
    ASSERT_OK_AND_ASSIGN(OwnedArray batch, file->ReadBatch(i));
    for (auto& row : Rows(file->schema(), *batch)) rows.push_back(std::move(row));
  }
  EXPECT_EQ(rows, expected);
  // The file's stream section is a stream of the same rows. (Not byte for byte the stream
  // written before: DuckDB leaves garbage in the value slots of nulls.)
  const auto [offset, length] = file->stream_section();
  ASSERT_OK_AND_ASSIGN(
      auto section_reader,
      OpenStreamReader(Buffer::FromString(file_sink.data().substr(offset, length))));
  EXPECT_EQ(ReadAllRows(*section_reader), expected);
}

TEST(DuckDBRoundTripTest, CompressedStreams) {
  auto duck = OpenDuckDB();
  ASSERT_NE(duck, nullptr);
  for (Codec codec : {Codec::kLz4Frame, Codec::kZstd}) {
    SCOPED_TRACE(CodecName(codec));
    StringSink sink;
    EncodeOptions options;
    options.codec = codec;
    const auto expected = WriteQuery<StreamWriter>(*duck->session, sink, options);
    ASSERT_OK_AND_ASSIGN(auto reader, OpenStreamReader(Buffer::FromString(sink.data())));
    EXPECT_EQ(ReadAllRows(*reader), expected);
    EXPECT_GT(reader->stats().bytes_decompressed, 0);
  }
}

}  // namespace
}  // namespace bridge::ipc
