// The result cache: entries written from real encoded batches, read back through the IPC
// readers, found, evicted, invalidated, reopened and verified.
#include "bridge/cache/cache.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/arrow/writer.h"
#include "bridge/cache/cache_internal.h"
#include "bridge/common/testing.h"

namespace bridge::cache {
namespace {

using ::bridge::testing::ReadFile;
using ipc::Buffer;
using ipc::EncodedMessage;
using ipc::MessageType;
using ipc::OwnedArray;
using ipc::OwnedSchema;
using ipc::test_arrays::Arrays;
using ipc::test_arrays::Batch;
using ipc::test_arrays::Bits;
using ipc::test_arrays::Bytes;
using ipc::test_arrays::Fields;
using ipc::test_arrays::MakeArray;
using ipc::test_arrays::MakeSchema;
using ipc::test_arrays::Utf8;
using ipc::test_arrays::ValueAt;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// ---------------------------------------------------------------------------------------
// Batches and their values

// An int32, a utf8 and a dictionary-encoded utf8 column.
OwnedSchema SmallSchema() {
  return MakeSchema("+s", "",
                    Fields(MakeSchema("i", "n"), MakeSchema("u", "s"),
                           MakeSchema("c", "d", {}, MakeSchema("u", ""))));
}

// Batch `i` of a result: rows 3i+1, null, 3i+3.
OwnedArray SmallBatch(int32_t i) {
  const int32_t first = 3 * i + 1;
  return Batch(
      3, Arrays(MakeArray(3, {Bits("101"), Bytes<int32_t>({first, first + 1, first + 2})}),
                Utf8({"a", std::nullopt, "ccc"}),
                MakeArray(3, {std::nullopt, Bytes<int8_t>({0, 1, 0})}, {}, Utf8({"x", "y"}))));
}

std::vector<std::string> ExpectedRows(int batches) {
  std::vector<std::string> rows;
  for (int i = 0; i < batches; ++i) {
    rows.push_back(std::to_string(3 * i + 1) + " | 'a' | 'x'");
    rows.push_back("null | null | 'y'");
    rows.push_back(std::to_string(3 * i + 3) + " | 'ccc' | 'x'");
  }
  return rows;
}

void AppendRows(const ArrowSchema& schema, const ArrowArray& batch,
                std::vector<std::string>& rows) {
  for (std::string& row : ipc::test_arrays::Rows(schema, batch)) rows.push_back(std::move(row));
}

// Every row of the entry's stream section, decoded by the IPC stream reader straight from
// the mapping (the entry is the buffer's owner).
std::vector<std::string> StreamRows(const std::shared_ptr<const Entry>& entry) {
  const ipc::ByteRange range = entry->stream_range();
  Buffer stream(entry->mapping().data() + range.offset, static_cast<size_t>(range.length), entry);
  auto reader = ipc::OpenStreamReader(stream);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return {};
  std::vector<std::string> rows;
  while (true) {
    auto batch = (*reader)->Next();
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) break;
    AppendRows((*reader)->schema(), **batch, rows);
  }
  return rows;
}

// Every row of the entry's file, read by the IPC file reader through the footer.
std::vector<std::string> FileRows(const std::shared_ptr<const Entry>& entry) {
  auto file =
      ipc::FileReader::Open(Buffer(entry->mapping().data(), entry->mapping().size(), entry));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return {};
  std::vector<std::string> rows;
  for (int64_t i = 0; i < (*file)->num_batches(); ++i) {
    auto batch = (*file)->ReadBatch(i);
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (batch.ok()) AppendRows((*file)->schema(), **batch, rows);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Writing entries as a transport would: encode once, tee each message to the cache

// The messages of `n` small batches, encoded once (for tests whose threads write entries:
// the test arrays' release counter is not thread-safe; the messages keep the batches alive).
Result<std::vector<EncodedMessage>> EncodeSmallBatches(const ArrowSchema& schema, int n) {
  BRIDGE_ASSIGN_OR_RETURN(auto encoder, ipc::RecordBatchEncoder::Make(schema));
  std::vector<EncodedMessage> messages;
  for (int i = 0; i < n; ++i) {
    BRIDGE_ASSIGN_OR_RETURN(auto batch_messages, encoder->Encode(SmallBatch(i)));
    for (auto& m : batch_messages) messages.push_back(std::move(m));
  }
  return messages;
}

CacheKey Key(std::string sql = "SELECT * FROM trips WHERE n > ?", uint64_t version = 7,
             std::string table = "trips") {
  return CacheKey{std::move(sql), {"int64:0"}, "codec=none", {{std::move(table), version}}};
}

Result<std::shared_ptr<const Entry>> WriteEntry(Cache& cache, const CacheKey& key, int batches,
                                                ipc::EncodeOptions options = {}) {
  OwnedSchema schema = SmallSchema();
  BRIDGE_ASSIGN_OR_RETURN(auto encoder, ipc::RecordBatchEncoder::Make(*schema, options));
  BRIDGE_ASSIGN_OR_RETURN(auto writer, cache.BeginWrite(key, *schema, options));
  BRIDGE_ASSIGN_OR_RETURN(EncodedMessage schema_message, encoder->EncodeSchema());
  BRIDGE_RETURN_NOT_OK(writer->Write(schema_message));  // skipped: written at BeginWrite
  for (int i = 0; i < batches; ++i) {
    BRIDGE_ASSIGN_OR_RETURN(std::vector<EncodedMessage> messages, encoder->Encode(SmallBatch(i)));
    for (const EncodedMessage& m : messages) BRIDGE_RETURN_NOT_OK(writer->Write(m));
  }
  return writer->Commit();
}

CacheOptions Options(const std::filesystem::path& dir) {
  CacheOptions options;
  options.dir = dir;
  return options;
}

// The names of the files in `dir`.
std::set<std::string> Files(const std::filesystem::path& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.insert(e.path().filename().string());
  }
  return names;
}

std::string EntryFile(const std::string& id) { return id + ".arrow"; }

// Overwrites one byte of a file in place (a mapping of it sees the change).
void FlipByte(const std::filesystem::path& path, int64_t offset) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t byte = 0;
  ASSERT_EQ(::pread(fd, &byte, 1, offset), 1);
  byte ^= 0x5A;
  ASSERT_EQ(::pwrite(fd, &byte, 1, offset), 1);
  ::close(fd);
}

// Index of the first record batch message with a body.
size_t FirstBatch(const Entry& entry) {
  for (size_t i = 0; i < entry.messages().size(); ++i) {
    if (entry.messages()[i].type == MessageType::kRecordBatch &&
        entry.messages()[i].body_length > 0) {
      return i;
    }
  }
  ADD_FAILURE() << "no record batch";
  return 0;
}

// ---------------------------------------------------------------------------------------
// Round trip

TEST(CacheTest, CommittedEntryIsFoundAndDecodesToTheSameValues) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path() / "cache")));
  ASSERT_OK_AND_ASSIGN(auto written, WriteEntry(*cache, Key(), 2));
  EXPECT_EQ(cache->Lookup(Key("SELECT * FROM trips WHERE n >= ?")), nullptr);

  // Whitespace and comments do not change the key.
  auto entry = cache->Lookup(Key("SELECT *\n  FROM trips -- all of them\n WHERE n > ?"));
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry.get(), written.get());  // one mapping while someone holds it
  EXPECT_TRUE(internal::IsEntryId(entry->id()));
  EXPECT_EQ(Files(dir.path() / "cache"), (std::set<std::string>{EntryFile(entry->id()), "LOCK"}));

  EXPECT_THAT(StreamRows(entry),
              ElementsAre("1 | 'a' | 'x'", "null | null | 'y'", "3 | 'ccc' | 'x'", "4 | 'a' | 'x'",
                          "null | null | 'y'", "6 | 'ccc' | 'x'"));
  EXPECT_EQ(FileRows(entry), ExpectedRows(2));

  // Layout: magic, stream section (schema, dictionary, two batches, end marker), footer.
  const auto messages = entry->messages();
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].type, MessageType::kSchema);
  EXPECT_EQ(messages[1].type, MessageType::kDictionaryBatch);
  EXPECT_EQ(messages[2].type, MessageType::kRecordBatch);
  EXPECT_EQ(messages[3].type, MessageType::kRecordBatch);
  EXPECT_EQ(entry->record_batches(), 2);
  EXPECT_EQ(entry->codec(), ipc::Codec::kNone);
  const ipc::ByteRange stream = entry->stream_range();
  EXPECT_EQ(stream.offset, 8);
  EXPECT_EQ(messages[0].offset, 8);
  EXPECT_EQ(messages[3].offset + messages[3].total_length() + 8, stream.offset + stream.length);
  const std::string bytes = ReadFile(dir.path() / "cache" / EntryFile(entry->id()));
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), entry->file_size());
  EXPECT_EQ(bytes.substr(0, 8), std::string("ARROW1\0\0", 8));
  EXPECT_EQ(bytes.substr(stream.offset + stream.length - 8, 8),
            std::string("\xFF\xFF\xFF\xFF\0\0\0\0", 8));
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(entry->mapping().data()), entry->mapping().size()),
      bytes);

  // Flight's pieces: the flatbuffer alone and the body.
  EXPECT_EQ(entry->MessageFlatbuffer(2).size(), static_cast<size_t>(messages[2].flatbuffer_length));
  EXPECT_EQ(entry->MessageFlatbuffer(2).data(), entry->mapping().data() + messages[2].offset + 8);
  EXPECT_EQ(entry->MessageBody(2).size(), static_cast<size_t>(messages[2].body_length));
  EXPECT_EQ(entry->MessageBytes(2).size(), static_cast<size_t>(messages[2].total_length()));
  EXPECT_TRUE(entry->MessageBody(99).empty());

  // The descriptor is the file, for sendfile.
  struct stat st;
  ASSERT_EQ(::fstat(entry->fd(), &st), 0);
  EXPECT_EQ(st.st_size, entry->file_size());

  ASSERT_OK(entry->VerifyAll());
  EXPECT_EQ(entry->etag().front(), '"');
  EXPECT_EQ(entry->etag().size(), 18u);
  const CacheStats stats = cache->stats();
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.misses, 1);
  EXPECT_EQ(stats.entries, 1);
  EXPECT_EQ(stats.bytes, entry->file_size());
  EXPECT_EQ(stats.writes_committed, 1);
  EXPECT_EQ(stats.bytes_verified, stream.length - 8);

  EXPECT_EQ(cache->FindById(entry->id()), entry);
  EXPECT_EQ(cache->FindById("not an id"), nullptr);
  EXPECT_EQ(cache->FindById(std::string(32, '0')), nullptr);
  EXPECT_EQ(cache->stats().hits, 1);  // FindById counts neither hits nor misses
}

TEST(CacheTest, CompressedEntryKeepsItsCodec) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 3, {.codec = ipc::Codec::kZstd}));
  EXPECT_EQ(entry->codec(), ipc::Codec::kZstd);
  EXPECT_EQ(StreamRows(entry), ExpectedRows(3));
  EXPECT_EQ(FileRows(entry), ExpectedRows(3));
}

TEST(CacheTest, OtherTableVersionsAndParametersMiss) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 1));
  const std::string id = entry->id();
  entry.reset();
  CacheKey other_parameter = Key();
  other_parameter.parameters = {"int64:1"};
  EXPECT_EQ(cache->Lookup(other_parameter), nullptr);
  EXPECT_NE(cache->Lookup(Key()), nullptr);
  // A newer table version: a miss, and the stale entry is deleted.
  EXPECT_EQ(cache->Lookup(Key("SELECT * FROM trips WHERE n > ?", 8)), nullptr);
  EXPECT_EQ(cache->Lookup(Key()), nullptr);
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(cache->stats().evictions, 1);
  EXPECT_EQ(cache->stats().entries, 0);
}

TEST(CacheTest, CommittingTheSameKeyAgainReplacesTheEntry) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  ASSERT_OK_AND_ASSIGN(auto first, WriteEntry(*cache, Key(), 1));
  ASSERT_OK_AND_ASSIGN(auto second, WriteEntry(*cache, Key(), 2));
  EXPECT_NE(first->id(), second->id());
  EXPECT_EQ(cache->Lookup(Key()), second);
  EXPECT_EQ(cache->FindById(first->id()), nullptr);
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{EntryFile(second->id()), "LOCK"}));
  // The replaced entry is still pinned and readable.
  EXPECT_EQ(StreamRows(first), ExpectedRows(1));
  EXPECT_EQ(cache->stats().entries, 1);
}

TEST(CacheTest, InvalidateRemoveAndClear) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  ASSERT_OK(WriteEntry(*cache, Key("SELECT 1"), 1));
  ASSERT_OK(WriteEntry(*cache, Key("SELECT 2"), 1));
  ASSERT_OK_AND_ASSIGN(auto zones, WriteEntry(*cache, Key("SELECT 3", 1, "zones"), 1));
  EXPECT_EQ(cache->Invalidate("trips"), 2);
  EXPECT_EQ(cache->Invalidate("trips"), 0);
  EXPECT_EQ(cache->Lookup(Key("SELECT 1")), nullptr);
  EXPECT_EQ(cache->Lookup(Key("SELECT 2")), nullptr);
  EXPECT_EQ(cache->Lookup(Key("SELECT 3", 1, "zones")), zones);
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{EntryFile(zones->id()), "LOCK"}));

  EXPECT_TRUE(cache->Remove(zones->id()));
  EXPECT_FALSE(cache->Remove(zones->id()));
  EXPECT_EQ(cache->Lookup(Key("SELECT 3", 1, "zones")), nullptr);

  ASSERT_OK(WriteEntry(*cache, Key("SELECT 4"), 1));
  ASSERT_OK(WriteEntry(*cache, Key("SELECT 5"), 1));
  EXPECT_EQ(cache->Clear(), 2);
  EXPECT_EQ(cache->stats().entries, 0);
  EXPECT_EQ(cache->stats().bytes, 0);
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(cache->Clear(), 0);
}

// ---------------------------------------------------------------------------------------
// Budget, limits, abandoned writes

TEST(CacheTest, LeastRecentlyUsedEntriesAreEvictedAndPinnedOnesStayReadable) {
  testing::TempDir dir;
  int64_t size = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto probe, Cache::Open(Options(dir.path() / "probe")));
    ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*probe, Key("SELECT 0"), 2));
    size = entry->file_size();
  }
  CacheOptions options = Options(dir.path() / "cache");
  options.max_bytes = size * 5 / 2;  // room for two entries
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
  ASSERT_OK_AND_ASSIGN(auto a, WriteEntry(*cache, Key("SELECT 1"), 2));
  ASSERT_OK_AND_ASSIGN(auto b, WriteEntry(*cache, Key("SELECT 2"), 2));
  EXPECT_EQ(a->file_size(), size);
  ASSERT_EQ(cache->Lookup(Key("SELECT 1")), a);  // a is now the most recently used
  ASSERT_OK_AND_ASSIGN(auto c, WriteEntry(*cache, Key("SELECT 3"), 2));
  EXPECT_EQ(cache->Lookup(Key("SELECT 2")), nullptr);
  EXPECT_EQ(cache->Lookup(Key("SELECT 1")), a);
  EXPECT_EQ(cache->Lookup(Key("SELECT 3")), c);
  EXPECT_EQ(Files(dir.path() / "cache"),
            (std::set<std::string>{EntryFile(a->id()), EntryFile(c->id()), "LOCK"}));
  // b was evicted and its file unlinked, but the pinned entry still reads and verifies.
  EXPECT_EQ(StreamRows(b), ExpectedRows(2));
  EXPECT_EQ(FileRows(b), ExpectedRows(2));
  ASSERT_OK(b->VerifyAll());
  const CacheStats stats = cache->stats();
  EXPECT_EQ(stats.evictions, 1);
  EXPECT_EQ(stats.entries, 2);
  EXPECT_EQ(stats.bytes, a->file_size() + c->file_size());
  EXPECT_LE(stats.bytes, options.max_bytes);
}

// Gives the messages of SmallBatch(0), SmallBatch(1), ... to `write` until it fails (at
// most 100 batches); returns the failure (an encoding error too, should there be one) and
// how many messages it took before.
std::pair<Status, int> FeedUntilFailure(ipc::RecordBatchEncoder& encoder,
                                        const std::function<Status(const EncodedMessage&)>& write) {
  int taken = 0;
  for (int i = 0; i < 100; ++i) {
    Result<std::vector<EncodedMessage>> messages = encoder.Encode(SmallBatch(i));
    if (!messages.ok()) return {messages.status(), taken};
    for (const EncodedMessage& m : *messages) {
      Status status = write(m);
      if (!status.ok()) return {status, taken};
      ++taken;
    }
  }
  return {OkStatus(), taken};
}

// A fresh cache whose entries may take 2000 bytes, an encoder of SmallSchema, and the writer
// of one entry (destroyed first: it abandons the entry if still active).
struct LimitedEntry {
  testing::TempDir dir;
  std::unique_ptr<Cache> cache;
  OwnedSchema schema = SmallSchema();
  std::unique_ptr<ipc::RecordBatchEncoder> encoder;
  std::unique_ptr<EntryWriter> writer;
};

void OpenLimitedEntry(LimitedEntry& e) {
  CacheOptions options = Options(e.dir.path());
  options.max_entry_bytes = 2000;
  ASSERT_OK_AND_ASSIGN(e.cache, Cache::Open(options));
  ASSERT_OK_AND_ASSIGN(e.encoder, ipc::RecordBatchEncoder::Make(*e.schema));
  ASSERT_OK_AND_ASSIGN(e.writer, e.cache->BeginWrite(Key(), *e.schema));
}

TEST(CacheTest, WriteOverTheEntryLimitIsAbandonedAndLeavesNoFile) {
  LimitedEntry e;
  ASSERT_NO_FATAL_FAILURE(OpenLimitedEntry(e));
  EXPECT_EQ(Files(e.dir.path()), (std::set<std::string>{"LOCK", e.writer->id() + ".arrow.tmp"}));
  auto [status, written] =
      FeedUntilFailure(*e.encoder, [&](const EncodedMessage& m) { return e.writer->Write(m); });
  EXPECT_STATUS(status, StatusCode::kResourceExhausted, "exceed 2000 bytes");
  EXPECT_GT(written, 3);
  EXPECT_LE(e.writer->bytes_written(), 2000);
  EXPECT_FALSE(e.writer->active());
  EXPECT_EQ(Files(e.dir.path()), std::set<std::string>{"LOCK"});
  ASSERT_OK_AND_ASSIGN(auto more, e.encoder->Encode(SmallBatch(0)));
  EXPECT_STATUS(e.writer->Write(more.back()), StatusCode::kFailedPrecondition, "no longer");
  EXPECT_STATUS(e.writer->Commit(), StatusCode::kFailedPrecondition, "no longer");
  EXPECT_EQ(e.cache->stats().writes_abandoned, 1);
  EXPECT_EQ(e.cache->Lookup(Key()), nullptr);
  // The key is free to be written again.
  ASSERT_OK(WriteEntry(*e.cache, Key(), 1));
}

// The bytes a message takes in a stream: metadata, then body.
std::string BytesOf(const EncodedMessage& m) {
  std::string bytes = m.metadata;
  for (const auto& segment : m.body) {
    bytes.append(reinterpret_cast<const char*>(segment.data), segment.size);
  }
  return bytes;
}

std::string ReadRange(int fd, ipc::ByteRange range) {
  std::string bytes(static_cast<size_t>(range.length), '\0');
  const ssize_t got = ::pread(fd, bytes.data(), bytes.size(), range.offset);
  bytes.resize(got < 0 ? 0 : static_cast<size_t>(got));
  return bytes;
}

TEST(CacheTest, AppendWritesAtOnceAndSaysWhereTheMessageIs) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(auto encoder, ipc::RecordBatchEncoder::Make(*schema));
  ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(Key(), *schema));
  ASSERT_GE(writer->fd(), 0);
  const int fd = ::fcntl(writer->fd(), F_DUPFD_CLOEXEC, 0);  // as a transport keeps it
  ASSERT_GE(fd, 0);
  ASSERT_OK_AND_ASSIGN(EncodedMessage schema_message, encoder->EncodeSchema());
  ASSERT_OK_AND_ASSIGN(ipc::ByteRange schema_range, writer->Append(schema_message));
  EXPECT_EQ(schema_range.length, 0);  // written by BeginWrite
  // A queued Write first: Append waits for it, so the file keeps the order of the calls.
  ASSERT_OK_AND_ASSIGN(auto first, encoder->Encode(SmallBatch(0)));
  for (const EncodedMessage& m : first) ASSERT_OK(writer->Write(m));
  std::vector<ipc::ByteRange> ranges;
  std::vector<std::string> expected;
  for (int i = 1; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(SmallBatch(i)));
    for (const EncodedMessage& m : messages) {
      ASSERT_OK_AND_ASSIGN(ipc::ByteRange range, writer->Append(m));
      EXPECT_EQ(range.length, m.total_size());
      EXPECT_EQ(range.offset + range.length, writer->bytes_written());
      // In the file as soon as Append returns.
      EXPECT_TRUE(ReadRange(fd, range) == BytesOf(m));
      ranges.push_back(range);
      expected.push_back(BytesOf(m));
    }
  }
  ASSERT_OK_AND_ASSIGN(auto entry, writer->Commit());
  EXPECT_EQ(writer->fd(), -1);
  EXPECT_EQ(FileRows(entry), ExpectedRows(4));
  ASSERT_OK(entry->VerifyAll());
  const auto messages = entry->messages();
  ASSERT_EQ(messages.size(), 1 + first.size() + ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const CachedMessage& m = messages[1 + first.size() + i];
    EXPECT_EQ(m.offset, ranges[i].offset);
    EXPECT_EQ(m.total_length(), ranges[i].length);
    // The transport's descriptor still reads the renamed file.
    EXPECT_TRUE(ReadRange(fd, ranges[i]) == expected[i]);
  }
  ::close(fd);
}

TEST(CacheTest, AppendOverTheEntryLimitAbandonsTheEntry) {
  LimitedEntry e;
  ASSERT_NO_FATAL_FAILURE(OpenLimitedEntry(e));
  auto [status, appended] = FeedUntilFailure(
      *e.encoder, [&](const EncodedMessage& m) { return e.writer->Append(m).status(); });
  EXPECT_STATUS(status, StatusCode::kResourceExhausted, "exceed 2000 bytes");
  EXPECT_GT(appended, 3);
  EXPECT_FALSE(e.writer->active());
  EXPECT_EQ(e.writer->fd(), -1);
  EXPECT_EQ(Files(e.dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(e.cache->stats().writes_abandoned, 1);
}

TEST(CacheTest, QueuedWritesOutliveTheCallersMessagesAndKeepTheirOrder) {
  testing::TempDir dir;
  CacheOptions options = Options(dir.path());
  options.max_queued_bytes = 1;  // every Write waits for the one before it
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(auto encoder, ipc::RecordBatchEncoder::Make(*schema));
  ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(Key(), *schema));
  constexpr int kBatches = 200;
  for (int i = 0; i < kBatches; ++i) {
    // The messages, and with them the caller's hold on the batch, go at the end of the turn.
    ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(SmallBatch(i)));
    for (const EncodedMessage& m : messages) ASSERT_OK(writer->Write(m));
  }
  const int64_t accepted = writer->bytes_written();
  ASSERT_OK_AND_ASSIGN(auto entry, writer->Commit());
  EXPECT_EQ(entry->messages().back().offset + entry->messages().back().total_length(), accepted);
  EXPECT_EQ(entry->record_batches(), kBatches);
  EXPECT_EQ(FileRows(entry), ExpectedRows(kBatches));
  ASSERT_OK(entry->VerifyAll());

  EXPECT_STATUS(Cache::Open([&] {
                  CacheOptions bad = Options(dir.path() / "other");
                  bad.max_queued_bytes = -1;
                  return bad;
                }()),
                StatusCode::kInvalidArgument, "max_queued_bytes");
}

TEST(CacheTest, AWriteThatFailsOnTheWriterThreadAbandonsTheEntry) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(auto encoder, ipc::RecordBatchEncoder::Make(*schema));
  ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(Key(), *schema));
  // A file-size limit makes the writer thread's writes fail (EFBIG) past 4 KiB, as a full
  // disk would; SIGXFSZ is ignored so that it is an error, not the end of the process.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status status;
  for (int i = 0; i < 1000 && status.ok(); ++i) {
    ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(SmallBatch(i)));
    for (const EncodedMessage& m : messages) {
      status = writer->Write(m);
      if (!status.ok()) break;
    }
  }
  // The failure shows at a later Write, or at the latest at Commit.
  if (status.ok()) status = writer->Commit().status();
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_STATUS(status, StatusCode::kUnavailable, "File too large");  // IoError
  EXPECT_FALSE(writer->active());
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(cache->stats().writes_abandoned, 1);
  EXPECT_EQ(cache->Lookup(Key()), nullptr);
  ASSERT_OK(WriteEntry(*cache, Key(), 1));  // the key is free again
}

TEST(CacheTest, AbandonAndDestructorLeaveNoFile) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(Key(), *schema));
  EXPECT_TRUE(writer->active());
  EXPECT_GT(writer->bytes_written(), 8);
  // One writer per key at a time.
  EXPECT_STATUS(cache->BeginWrite(Key(), *schema), StatusCode::kAlreadyExists, "being written");
  writer->Abandon();
  writer->Abandon();
  EXPECT_FALSE(writer->active());
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_STATUS(writer->Commit(), StatusCode::kFailedPrecondition, "no longer");

  ASSERT_OK_AND_ASSIGN(auto dropped, cache->BeginWrite(Key(), *schema));
  EXPECT_EQ(Files(dir.path()).size(), 2u);
  dropped.reset();
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(cache->stats().writes_abandoned, 2);
  EXPECT_EQ(cache->stats().writes_committed, 0);
}

TEST(CacheTest, CommitAfterTheCacheIsGoneFailsAndLeavesNoFile) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(Key(), *schema));
  cache.reset();
  EXPECT_STATUS(writer->Commit(), StatusCode::kFailedPrecondition, "cache was closed");
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
}

TEST(CacheTest, BadSchemaIsInvalidArgumentAndLeavesNoFile) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  OwnedSchema bad = MakeSchema("+s", "", Fields(MakeSchema("not a format", "x")));
  EXPECT_STATUS(cache->BeginWrite(Key(), *bad), StatusCode::kInvalidArgument, "");
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  ASSERT_OK(WriteEntry(*cache, Key(), 1));  // the key's reservation was released
}

TEST(CacheTest, TableNameThatIsNotUtf8IsRefusedAtCommit) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  EXPECT_STATUS(WriteEntry(*cache, Key("SELECT 1", 1, "bad\xff"), 1), StatusCode::kInvalidArgument,
                "header");
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(cache->stats().writes_abandoned, 1);
}

TEST(CacheTest, ConcurrentWritersAndReaders) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  constexpr int kThreads = 4;
  constexpr int kRounds = 25;
  // Encoded once here: the test arrays' release counter is not thread-safe, and the
  // messages keep the batches alive until the end of the test.
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(std::vector<EncodedMessage> messages, EncodeSmallBatches(*schema, 2));
  auto write = [&](const CacheKey& key) -> Status {
    BRIDGE_ASSIGN_OR_RETURN(auto writer, cache->BeginWrite(key, *schema));
    for (const EncodedMessage& m : messages) BRIDGE_RETURN_NOT_OK(writer->Write(m));
    return writer->Commit().status();
  };
  std::atomic<int> committed{0};
  std::atomic<int> busy{0};
  std::atomic<int> bad_reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const CacheKey key = Key("SELECT " + std::to_string((t + r) % 3));
        if (auto entry = cache->Lookup(key)) {
          if (!entry->VerifyAll().ok() || StreamRows(entry) != ExpectedRows(2)) ++bad_reads;
          continue;
        }
        const Status written = write(key);
        if (written.ok()) {
          ++committed;
        } else if (absl::IsAlreadyExists(written)) {
          ++busy;
        } else {
          ++bad_reads;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(bad_reads.load(), 0);
  const CacheStats stats = cache->stats();
  EXPECT_EQ(stats.writes_committed, committed.load());
  EXPECT_EQ(stats.hits + stats.misses, kThreads * kRounds);
  EXPECT_EQ(stats.misses, committed.load() + busy.load());
  EXPECT_EQ(stats.entries, 3);
  EXPECT_EQ(stats.evictions, committed.load() - 3);  // replacements
  EXPECT_EQ(Files(dir.path()).size(), 4u);
}

TEST(CacheTest, ReadersOfAnEntryThatIsEvictedUnderThemReadItWhole) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  OwnedSchema schema = SmallSchema();
  ASSERT_OK_AND_ASSIGN(std::vector<EncodedMessage> messages, EncodeSmallBatches(*schema, 2));
  const CacheKey key = Key("SELECT 1");
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad_reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        std::shared_ptr<const Entry> entry = cache->Lookup(key);
        if (entry == nullptr) continue;
        // Hold it while the evictor removes and rewrites it: every byte stays readable.
        std::this_thread::yield();
        bool ok = entry->VerifyAll().ok() && StreamRows(entry) == ExpectedRows(2);
        for (size_t i = 0; ok && i < entry->messages().size(); ++i) {
          EncodedMessage m = MessageOf(entry, i);
          ok =
              entry->VerifyMessage(i).ok() && m.total_size() == entry->messages()[i].total_length();
        }
        ++reads;
        if (!ok) ++bad_reads;
      }
    });
  }
  int evictions = 0;
  for (int round = 0; round < 60; ++round) {
    ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(key, *schema));
    for (const EncodedMessage& m : messages) ASSERT_OK(writer->Write(m));
    ASSERT_OK_AND_ASSIGN(auto entry, writer->Commit());
    const std::string id = entry->id();
    entry.reset();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    switch (round % 3) {  // every way an entry leaves the cache
      case 0:
        evictions += cache->Remove(id) ? 1 : 0;
        break;
      case 1:
        evictions += static_cast<int>(cache->Invalidate("trips"));
        break;
      default:
        evictions += static_cast<int>(cache->Clear());
        break;
    }
  }
  done = true;
  for (auto& thread : readers) thread.join();
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(evictions, 60);
  EXPECT_EQ(cache->stats().entries, 0);
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});  // every file unlinked
}

// ---------------------------------------------------------------------------------------
// Reopening the folder

TEST(CacheTest, ReopenFindsCommittedEntriesAndDeletesTempAndTornFiles) {
  testing::TempDir dir;
  std::string id;
  std::string bytes;
  {
    ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
    EXPECT_STATUS(Cache::Open(Options(dir.path())), StatusCode::kFailedPrecondition, "in use");
    ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 3));
    id = entry->id();
    bytes = ReadFile(dir.path() / EntryFile(id));
  }
  // A torn copy (truncated before the footer's end), garbage, a foreign .arrow name, an
  // unfinished write, and a file the cache does not own.
  const std::string torn_id(32, 'a');
  const std::string garbage_id(32, 'b');
  testing::WriteFile(dir.path() / EntryFile(torn_id), bytes.substr(0, bytes.size() - 100));
  testing::WriteFile(dir.path() / EntryFile(garbage_id), std::string(5000, 'g'));
  testing::WriteFile(dir.path() / "notes.arrow", bytes);
  testing::WriteFile(dir.path() / (std::string(32, 'c') + ".arrow.tmp"), bytes.substr(0, 300));
  testing::WriteFile(dir.path() / "README", "mine");
  // A complete copy under another id: the name and the header's id disagree.
  testing::WriteFile(dir.path() / EntryFile(std::string(32, 'd')), bytes);
  // A copy whose header was altered after its checksum was taken.
  std::string altered = bytes;
  const size_t created = altered.find("\"created_ms\":");
  ASSERT_NE(created, std::string::npos);
  altered[created + 13] = altered[created + 13] == '1' ? '2' : '1';
  testing::WriteFile(dir.path() / EntryFile(std::string(32, 'e')), altered);
  // A valid IPC file without our header.
  {
    ipc::StringSink sink;
    ASSERT_OK_AND_ASSIGN(auto writer, ipc::FileWriter::Make(&sink, *SmallSchema()));
    ASSERT_OK(writer->WriteBatch(SmallBatch(0)));
    ASSERT_OK(writer->Close());
    testing::WriteFile(dir.path() / EntryFile(std::string(32, 'f')), sink.data());
  }

  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{EntryFile(id), "LOCK", "README"}));
  EXPECT_EQ(cache->stats().entries, 1);
  EXPECT_EQ(cache->stats().bytes, static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(cache->stats().bytes_verified, 0);  // nothing hashed at open
  auto entry = cache->Lookup(Key());
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->id(), id);
  EXPECT_EQ(StreamRows(entry), ExpectedRows(3));
  ASSERT_OK(entry->VerifyAll());
  EXPECT_EQ(cache->FindById(id), entry);
}

TEST(CacheTest, ReopenWithASmallerBudgetEvictsTheOldest) {
  testing::TempDir dir;
  int64_t now = 1000;
  CacheOptions options = Options(dir.path());
  options.clock = [&now] { return now; };
  std::string newest;
  {
    ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
    for (int i = 0; i < 3; ++i) {
      ++now;
      ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key("SELECT " + std::to_string(i)), 1));
      options.max_bytes = entry->file_size() * 3 / 2;
      newest = entry->id();
    }
  }
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
  EXPECT_EQ(cache->stats().entries, 1);
  EXPECT_EQ(Files(dir.path()), (std::set<std::string>{EntryFile(newest), "LOCK"}));
  EXPECT_NE(cache->Lookup(Key("SELECT 2")), nullptr);
}

// ---------------------------------------------------------------------------------------
// Checksums

TEST(CacheTest, CorruptBodyIsDataLossAndEvictsTheEntry) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 2));
  const size_t batch = FirstBatch(*entry);
  const CachedMessage m = entry->messages()[batch];
  FlipByte(dir.path() / EntryFile(entry->id()), m.offset + m.metadata_length + 2);

  ASSERT_OK(entry->VerifyMessage(0));
  EXPECT_STATUS(entry->VerifyMessage(batch), StatusCode::kDataLoss,
                "message " + std::to_string(batch));
  EXPECT_STATUS(entry->VerifyMessage(99), StatusCode::kOutOfRange, "message 99");
  EXPECT_STATUS(entry->VerifyAll(), StatusCode::kDataLoss, "");
  EXPECT_EQ(cache->Lookup(Key()), nullptr);
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(cache->stats().verify_failures, 1);
  EXPECT_EQ(cache->stats().evictions, 1);
}

TEST(CacheTest, CorruptionIsFoundLazilyAfterReopen) {
  testing::TempDir dir;
  std::string id;
  size_t batch = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
    ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 2));
    id = entry->id();
    batch = FirstBatch(*entry) + 1;  // the second batch
    const CachedMessage m = entry->messages()[batch];
    FlipByte(dir.path() / EntryFile(id), m.offset + m.metadata_length);
  }
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(Options(dir.path())));
  auto entry = cache->Lookup(Key());
  ASSERT_NE(entry, nullptr);  // open does not hash bodies
  ASSERT_OK(entry->VerifyMessage(batch - 1));
  EXPECT_STATUS(entry->VerifyAll(), StatusCode::kDataLoss, "message " + std::to_string(batch));
  EXPECT_EQ(cache->FindById(id), nullptr);
}

TEST(CacheTest, VerifiedMessagesAreHashedOnceUnlessTrustIsOff) {
  for (bool trust : {true, false}) {
    testing::TempDir dir;
    CacheOptions options = Options(dir.path());
    options.trust_after_first_verify = trust;
    ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
    ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 1));
    const int64_t size = entry->messages()[1].total_length();
    ASSERT_OK(entry->VerifyMessage(1));
    ASSERT_OK(entry->VerifyMessage(1));
    EXPECT_EQ(cache->stats().bytes_verified, trust ? size : 2 * size) << trust;
  }
}

// ---------------------------------------------------------------------------------------
// TTL

TEST(CacheTest, EntriesExpireAfterTheirTtl) {
  testing::TempDir dir;
  int64_t now = 1'000'000;
  CacheOptions options = Options(dir.path());
  options.ttl = std::chrono::milliseconds(1000);
  options.clock = [&now] { return now; };
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
  ASSERT_OK_AND_ASSIGN(auto entry, WriteEntry(*cache, Key(), 1));
  EXPECT_EQ(entry->created_ms(), 1'000'000);
  const std::string id = entry->id();
  now += 999;
  EXPECT_EQ(cache->Lookup(Key()), entry);
  EXPECT_EQ(cache->FindById(id), entry);
  now += 1;
  EXPECT_EQ(cache->FindById(id), nullptr);
  EXPECT_EQ(cache->Lookup(Key()), nullptr);
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
  EXPECT_EQ(StreamRows(entry), ExpectedRows(1));  // still pinned

  // Expired entries are deleted when the folder is reopened too.
  ASSERT_OK(WriteEntry(*cache, Key("SELECT 2"), 1));
  cache.reset();
  now += 5000;
  ASSERT_OK_AND_ASSIGN(cache, Cache::Open(options));
  EXPECT_EQ(cache->stats().entries, 0);
  EXPECT_EQ(Files(dir.path()), std::set<std::string>{"LOCK"});
}

// ---------------------------------------------------------------------------------------
// Large entries

TEST(CacheTest, EntryOf300MegabytesWorks) {
  testing::TempDir dir;
  CacheOptions options = Options(dir.path());
  options.sync = false;
  ASSERT_OK_AND_ASSIGN(auto cache, Cache::Open(options));
  OwnedSchema schema = MakeSchema("+s", "", Fields(MakeSchema("l", "v", {}, {}, 0)));
  ASSERT_OK_AND_ASSIGN(auto encoder, ipc::RecordBatchEncoder::Make(*schema));
  ASSERT_OK_AND_ASSIGN(auto writer, cache->BeginWrite(Key(), *schema));
  constexpr int kBatches = 10;
  constexpr int64_t kRows = 30 * 1000 * 1000 / 8 + 1;  // ~30 MB of int64 per batch
  for (int b = 0; b < kBatches; ++b) {
    std::vector<uint8_t> values(kRows * 8);
    for (int64_t r = 0; r < kRows; ++r) {
      const int64_t v = b * kRows + r;
      std::memcpy(values.data() + r * 8, &v, 8);
    }
    OwnedArray column = MakeArray(kRows, {std::nullopt, std::move(values)});
    ASSERT_OK_AND_ASSIGN(auto messages, encoder->Encode(Batch(kRows, Arrays(std::move(column)))));
    for (const EncodedMessage& m : messages) ASSERT_OK(writer->Write(m));
  }
  ASSERT_OK_AND_ASSIGN(auto committed, writer->Commit());
  committed.reset();
  auto entry = cache->Lookup(Key());
  ASSERT_NE(entry, nullptr);
  EXPECT_GT(entry->file_size(), int64_t{300} * 1000 * 1000);
  EXPECT_EQ(entry->record_batches(), kBatches);
  ASSERT_OK(entry->VerifyAll());
  EXPECT_GE(cache->stats().bytes_verified, kBatches * kRows * 8);
  ASSERT_OK_AND_ASSIGN(auto file, ipc::FileReader::Open(Buffer(entry->mapping().data(),
                                                               entry->mapping().size(), entry)));
  ASSERT_EQ(file->num_batches(), kBatches);
  ASSERT_OK_AND_ASSIGN(OwnedArray last, file->ReadBatch(kBatches - 1));
  ASSERT_EQ(last->length, kRows);
  const auto* values = static_cast<const uint8_t*>(last->children[0]->buffers[1]);
  EXPECT_EQ(ipc::test_arrays::LoadAt<int64_t>(values, 0), (kBatches - 1) * kRows);
  EXPECT_EQ(ipc::test_arrays::LoadAt<int64_t>(values, kRows - 1), kBatches * kRows - 1);
  // Zero copy: the decoded values are the mapping's pages.
  EXPECT_GE(values, entry->mapping().data());
  EXPECT_LT(values, entry->mapping().data() + entry->mapping().size());
}

}  // namespace
}  // namespace bridge::cache
