// Every malformed stream and file found by Arrow's fuzzers (arrow-testing's bad-input
// folder) read fully, as a stream, as a file and through a byte source: each ends in a
// clean error or a clean end, never a crash, a hang or a sanitizer report.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bridge/arrow/reader.h"
#include "bridge/common/testing.h"

namespace bridge::ipc {
namespace {

using ::bridge::testing::ReadFile;

std::filesystem::path BadInputDir() {
  const char* shared = std::getenv("BRIDGE_SHARED_DIR");
  return std::filesystem::path(shared != nullptr ? shared : BRIDGE_DEFAULT_SHARED_DIR) /
         "arrow-testing" / "bad-input";
}

std::vector<std::filesystem::path> BadInputs() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(BadInputDir(), ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Limits low enough that a hostile allocation would show, high enough for the inputs.
ReadOptions Options() {
  ReadOptions options;
  options.max_allocation_bytes = 64 << 20;
  return options;
}

// Touches every exported child and buffer pointer, so that ASan sees a bad export.
void Walk(const ArrowArray& array, int depth = 0) {
  ASSERT_LT(depth, 200);
  ASSERT_NE(array.release, nullptr);
  for (int64_t i = 0; i < array.n_buffers; ++i) (void)array.buffers[i];
  for (int64_t i = 0; i < array.n_children; ++i) Walk(*array.children[i], depth + 1);
  if (array.dictionary != nullptr) Walk(*array.dictionary, depth + 1);
}

// Reads every batch; returns the final status (OK for a clean end).
Status DrainStream(RecordBatchReader& reader) {
  for (int i = 0; i < 100000; ++i) {
    BRIDGE_ASSIGN_OR_RETURN(OwnedArray batch, reader.Next());
    if (!batch.valid()) return OkStatus();
    Walk(*batch);
  }
  return Internal("too many batches");
}

Status ReadAsStream(const std::string& bytes) {
  BRIDGE_ASSIGN_OR_RETURN(auto reader, OpenStreamReader(Buffer::FromString(bytes), Options()));
  return DrainStream(*reader);
}

class ChunkedSource : public ByteSource {
 public:
  explicit ChunkedSource(std::string bytes) : bytes_(std::move(bytes)) {}
  Result<size_t> Read(uint8_t* out, size_t max) override {
    const size_t n = std::min({max, bytes_.size() - position_, size_t{13}});
    std::copy_n(bytes_.data() + position_, n, out);
    position_ += n;
    return n;
  }

 private:
  std::string bytes_;
  size_t position_ = 0;
};

Status ReadFromSource(const std::string& bytes) {
  BRIDGE_ASSIGN_OR_RETURN(auto reader,
                          OpenStreamReader(std::make_unique<ChunkedSource>(bytes), Options()));
  return DrainStream(*reader);
}

Status ReadAsFile(const std::string& bytes) {
  BRIDGE_ASSIGN_OR_RETURN(auto reader, FileReader::Open(Buffer::FromString(bytes), Options()));
  Status last;
  for (int64_t i = 0; i < reader->num_batches() && i < 100000; ++i) {
    Result<OwnedArray> batch = reader->ReadBatch(i);
    if (!batch.ok()) {
      last = batch.status();
      continue;
    }
    Walk(**batch);
  }
  // The stream section must read like a stream too (or fail cleanly).
  auto [offset, length] = reader->stream_section();
  Status section =
      ReadAsStream(bytes.substr(static_cast<size_t>(offset), static_cast<size_t>(length)));
  return last.ok() ? section : last;
}

// A clean error: one of the codes the reader documents, with an "ipc:" context.
void ExpectClean(const Status& status, const std::string& what) {
  if (status.ok()) return;
  EXPECT_TRUE(status.code() == StatusCode::kInvalidArgument ||
              status.code() == StatusCode::kResourceExhausted ||
              status.code() == StatusCode::kUnimplemented)
      << what << ": " << status;
  EXPECT_NE(status.message().find("ipc"), std::string::npos) << what << ": " << status;
}

TEST(BadInputTest, FolderIsThere) { EXPECT_GE(BadInputs().size(), 60u) << BadInputDir(); }

TEST(BadInputTest, EveryFileEndsCleanlyInEveryFormat) {
  int errors = 0;
  for (const auto& path : BadInputs()) {
    SCOPED_TRACE(path.filename().string());
    const std::string bytes = ReadFile(path);
    const bool is_file = path.filename().string().starts_with("file-");
    const Status as_stream = ReadAsStream(bytes);
    const Status from_source = ReadFromSource(bytes);
    const Status as_file = ReadAsFile(bytes);
    ExpectClean(as_stream, "as stream");
    ExpectClean(from_source, "from a byte source");
    ExpectClean(as_file, "as file");
    // The buffer and byte-source readers apply the same checks.
    EXPECT_EQ(as_stream.ok(), from_source.ok()) << as_stream << " vs " << from_source;
    const Status& native = is_file ? as_file : as_stream;
    if (!native.ok()) ++errors;
  }
  // Nearly all of them are rejected in their own format (a few only break Arrow C++'s
  // later validation and are harmless here).
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace bridge::ipc
