// Golden interop: every IPC stream and file under arrow-testing/integration (written by other
// Arrow implementations) decodes with our reader to exactly the values of the .json.gz beside
// it, and re-encoding those batches with our writer (stream and file, uncompressed, LZ4 and
// ZSTD) and decoding them again gives the same values.
//
// One test per golden file. A case that needs something the reader or writer lacks fails;
// each failure says which side broke ("reader", "writer", "round trip").

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bridge/arrow/integration_json.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/writer.h"
#include "bridge/common/testing.h"

#ifndef BRIDGE_DEFAULT_SHARED_DIR
#define BRIDGE_DEFAULT_SHARED_DIR "/work/shared"
#endif

namespace bridge::ipc {
namespace {

namespace fs = std::filesystem;

// The arrow-testing integration folder: $BRIDGE_SHARED_DIR (set by ctest), else the
// shared folder beside the source tree, else /work/shared. Empty when none has it.
fs::path IntegrationDir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("BRIDGE_SHARED_DIR"); env != nullptr) candidates.push_back(env);
  candidates.push_back(BRIDGE_DEFAULT_SHARED_DIR);
  candidates.push_back("/work/shared");
  for (const auto& c : candidates) {
    fs::path dir = fs::path(c) / "arrow-testing" / "integration";
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return dir;
  }
  return {};
}

struct GoldenCase {
  fs::path file;  // .stream or .arrow_file
  fs::path json;  // the .json.gz beside it
  bool file_format = false;
  std::string name;  // gtest-safe: v1_0_0_littleendian_decimal_stream
};

// Names the case in gtest's messages (instead of a dump of its bytes).
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.file.string(); }

std::vector<GoldenCase> ListCases() {
  std::vector<GoldenCase> cases;
  const fs::path root = IntegrationDir();
  if (root.empty()) return cases;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const fs::path& path = entry.path();
    const std::string extension = path.extension().string();
    if (extension != ".stream" && extension != ".arrow_file") continue;
    GoldenCase c;
    c.file = path;
    c.json = path;
    c.json.replace_extension(".json.gz");
    c.file_format = extension == ".arrow_file";
    std::string stem = path.stem().string();
    if (stem.starts_with("generated_")) stem = stem.substr(10);
    std::string name = "v" + path.parent_path().filename().string() + "_" + stem + "_" +
                       (c.file_format ? "file" : "stream");
    for (char& ch : name) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    }
    c.name = name;
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(),
            [](const GoldenCase& a, const GoldenCase& b) { return a.name < b.name; });
  return cases;
}

Result<Buffer> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open '", path.string(), "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return Buffer::FromString(std::move(bytes).str());
}

// The batches of one IPC stream or file, with the reader that owns their schema.
struct Decoded {
  std::unique_ptr<RecordBatchReader> stream;
  std::unique_ptr<FileReader> file;
  std::vector<OwnedArray> batches;

  const ArrowSchema& schema() const { return stream ? stream->schema() : file->schema(); }
  std::vector<const ArrowArray*> pointers() const {
    std::vector<const ArrowArray*> out;
    for (const auto& b : batches) out.push_back(b.get());
    return out;
  }
};

Result<Decoded> Decode(const Buffer& bytes, bool file_format) {
  Decoded out;
  if (file_format) {
    BRIDGE_ASSIGN_OR_RETURN(out.file, FileReader::Open(bytes));
    for (int64_t i = 0; i < out.file->num_batches(); ++i) {
      BRIDGE_ASSIGN_OR_RETURN(OwnedArray batch, out.file->ReadBatch(i));
      out.batches.push_back(std::move(batch));
    }
    return out;
  }
  BRIDGE_ASSIGN_OR_RETURN(out.stream, OpenStreamReader(bytes));
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(OwnedArray batch, out.stream->Next());
    if (!batch.valid()) break;
    out.batches.push_back(std::move(batch));
  }
  return out;
}

// Writes `decoded`'s batches (handing them over) as a stream or a file with `codec`.
Result<std::string> Encode(Decoded decoded, bool file_format, Codec codec) {
  StringSink sink;
  EncodeOptions options;
  options.codec = codec;
  if (file_format) {
    BRIDGE_ASSIGN_OR_RETURN(auto writer, FileWriter::Make(&sink, decoded.schema(), options));
    for (auto& batch : decoded.batches) BRIDGE_RETURN_NOT_OK(writer->WriteBatch(std::move(batch)));
    BRIDGE_RETURN_NOT_OK(writer->Close());
  } else {
    BRIDGE_ASSIGN_OR_RETURN(auto writer, StreamWriter::Make(&sink, decoded.schema(), options));
    for (auto& batch : decoded.batches) BRIDGE_RETURN_NOT_OK(writer->WriteBatch(std::move(batch)));
    BRIDGE_RETURN_NOT_OK(writer->Close());
  }
  return sink.Take();
}

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, DecodesToTheJsonValuesAndRoundTrips) {
  const GoldenCase& c = GetParam();
  ASSERT_OK_AND_ASSIGN(std::string golden, ReadGzipFile(c.json));
  ASSERT_OK_AND_ASSIGN(Buffer bytes, ReadWholeFile(c.file));

  // 1. Our reader against the golden values.
  {
    auto decoded = Decode(bytes, c.file_format);
    ASSERT_TRUE(decoded.ok()) << "reader: " << decoded.status();
    const Status st = CompareWithIntegrationJson(decoded->schema(), decoded->pointers(), golden);
    ASSERT_TRUE(st.ok()) << "reader: decoded values differ from " << c.json.filename() << ":\n"
                         << st.message();
    // What `bridge ipc to-json` prints for it is a document equal to the golden one.
    auto json = ToIntegrationJson(decoded->schema(), decoded->pointers());
    ASSERT_TRUE(json.ok()) << "ToIntegrationJson: " << json.status();
    const Status same = CompareIntegrationJsonDocuments(golden, *json);
    EXPECT_TRUE(same.ok()) << "ToIntegrationJson's document differs:\n" << same.message();
  }

  // 2. The stream section of a file is a stream of the same values.
  if (c.file_format) {
    ASSERT_OK_AND_ASSIGN(Decoded decoded, Decode(bytes, true));
    const auto [offset, length] = decoded.file->stream_section();
    auto as_stream = Decode(bytes.Slice(offset, length), false);
    ASSERT_TRUE(as_stream.ok()) << "reader: stream section of the file: " << as_stream.status();
    const Status st =
        CompareWithIntegrationJson(as_stream->schema(), as_stream->pointers(), golden);
    EXPECT_TRUE(st.ok()) << "reader: stream section of the file:\n" << st.message();
  }

  // 3. decode -> our writer -> our reader gives the same values, in both formats and with
  // every codec.
  for (bool file_format : {false, true}) {
    for (Codec codec : {Codec::kNone, Codec::kLz4Frame, Codec::kZstd}) {
      const std::string variant = StrCat(file_format ? "file" : "stream", ", ", CodecName(codec));
      SCOPED_TRACE(variant);
      ASSERT_OK_AND_ASSIGN(Decoded fresh, Decode(bytes, c.file_format));
      auto encoded = Encode(std::move(fresh), file_format, codec);
      if (!encoded.ok()) {
        ADD_FAILURE() << "writer (" << variant << "): " << encoded.status();
        continue;
      }
      auto again = Decode(Buffer::FromString(std::move(encoded).value()), file_format);
      if (!again.ok()) {
        ADD_FAILURE() << "reader of our writer's output (" << variant << "): " << again.status();
        continue;
      }
      const Status st = CompareWithIntegrationJson(again->schema(), again->pointers(), golden);
      EXPECT_TRUE(st.ok()) << "round trip (" << variant << "): values differ:\n" << st.message();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ArrowTesting, GoldenTest, ::testing::ValuesIn(ListCases()),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) {
                           return info.param.name;
                         });

// The golden files are there: a missing checkout must fail, not pass with zero cases.
TEST(GoldenFilesTest, EveryGoldenFileHasItsJson) {
  const fs::path root = IntegrationDir();
  ASSERT_FALSE(root.empty()) << "arrow-testing/integration not found under $BRIDGE_SHARED_DIR, "
                             << BRIDGE_DEFAULT_SHARED_DIR << " or /work/shared";
  const auto cases = ListCases();
  EXPECT_GE(cases.size(), 54u);
  for (const auto& c : cases) EXPECT_TRUE(fs::exists(c.json)) << c.json;
}

}  // namespace
}  // namespace bridge::ipc
