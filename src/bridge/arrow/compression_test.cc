#include "bridge/arrow/compression.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bridge/common/testing.h"

namespace bridge::ipc {
namespace {

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

std::vector<uint8_t> RepetitiveBytes(size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>("abcabcabd"[i % 9]);
  return out;
}

// Little integers as int64: what a typical column of ids looks like.
std::vector<uint8_t> SmallInt64s(size_t count) {
  std::vector<uint8_t> out(count * 8, 0);
  for (size_t i = 0; i < count; ++i) out[i * 8] = static_cast<uint8_t>(i % 100);
  return out;
}

class CodecTest : public ::testing::TestWithParam<Codec> {};

TEST_P(CodecTest, RoundTripsBuffersOfEverySize) {
  const Codec codec = GetParam();
  std::vector<std::vector<uint8_t>> inputs = {{},
                                              {42},
                                              RandomBytes(7, 1),
                                              RandomBytes(1000, 2),
                                              RandomBytes(300000, 3),
                                              RepetitiveBytes(1),
                                              RepetitiveBytes(100),
                                              RepetitiveBytes(1 << 20),
                                              SmallInt64s(65536)};
  for (const auto& input : inputs) {
    for (int level : {0, 1, 5}) {
      SCOPED_TRACE(::testing::Message() << "size " << input.size() << " level " << level);
      std::vector<uint8_t> frame = {0xAA, 0xBB};  // Compress appends
      ASSERT_OK(Compress(codec, input, &frame, level));
      ASSERT_GT(frame.size(), 2u);
      EXPECT_EQ(frame[0], 0xAA);
      std::vector<uint8_t> out(input.size(), 0xCD);
      ASSERT_OK(Decompress(codec, std::span<const uint8_t>(frame).subspan(2), out));
      EXPECT_EQ(out, input);
    }
  }
}

TEST_P(CodecTest, CompressesRepetitiveData) {
  const auto input = RepetitiveBytes(1 << 20);
  std::vector<uint8_t> frame;
  ASSERT_OK(Compress(GetParam(), input, &frame));
  EXPECT_LT(frame.size(), input.size() / 20);
}

TEST_P(CodecTest, WrongAnnouncedLengthIsAnError) {
  const Codec codec = GetParam();
  const auto input = RepetitiveBytes(5000);
  std::vector<uint8_t> frame;
  ASSERT_OK(Compress(codec, input, &frame));
  std::vector<uint8_t> too_small(4999);
  EXPECT_STATUS(Decompress(codec, frame, too_small), StatusCode::kInvalidArgument, "");
  std::vector<uint8_t> too_big(5001);
  EXPECT_STATUS(Decompress(codec, frame, too_big), StatusCode::kInvalidArgument, "5001");
  std::vector<uint8_t> nothing;
  EXPECT_STATUS(Decompress(codec, frame, nothing), StatusCode::kInvalidArgument, "");
}

TEST_P(CodecTest, MalformedFramesAreCleanErrors) {
  const Codec codec = GetParam();
  const auto input = RandomBytes(4096, 9);
  std::vector<uint8_t> frame;
  ASSERT_OK(Compress(codec, input, &frame));
  std::vector<uint8_t> out(input.size());

  EXPECT_STATUS(Decompress(codec, {}, out), StatusCode::kInvalidArgument, "empty");
  // Truncated at every length (a frame cut short never decodes).
  for (size_t cut = 1; cut < frame.size(); cut += std::max<size_t>(1, frame.size() / 97)) {
    EXPECT_FALSE(Decompress(codec, std::span<const uint8_t>(frame).first(cut), out).ok())
        << "cut at " << cut;
  }
  // Garbage.
  const auto garbage = RandomBytes(300, 11);
  EXPECT_STATUS(Decompress(codec, garbage, out), StatusCode::kInvalidArgument, "");
  // Bad magic.
  auto bad_magic = frame;
  bad_magic[0] ^= 0xFF;
  EXPECT_STATUS(Decompress(codec, bad_magic, out), StatusCode::kInvalidArgument, "");
  // Trailing garbage after a valid frame.
  auto trailing = frame;
  trailing.insert(trailing.end(), {1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_STATUS(Decompress(codec, trailing, out), StatusCode::kInvalidArgument, "");
}

TEST_P(CodecTest, CorruptedPayloadNeverCrashes) {
  const Codec codec = GetParam();
  const auto input = RepetitiveBytes(20000);
  std::vector<uint8_t> frame;
  ASSERT_OK(Compress(codec, input, &frame));
  std::mt19937 rng(5);
  std::vector<uint8_t> out(input.size());
  for (int round = 0; round < 300; ++round) {
    auto corrupted = frame;
    for (int flips = 0; flips < 3; ++flips) {
      corrupted[rng() % corrupted.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    // Either an error or (if the flips hit something unchecked) exactly out.size() bytes.
    (void)Decompress(codec, corrupted, out);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values(Codec::kLz4Frame, Codec::kZstd),
                         [](const auto& info) { return std::string(CodecName(info.param)); });

TEST(CompressionTest, ParsesAndNamesCodecs) {
  ASSERT_OK_AND_ASSIGN(Codec lz4, ParseCodec("lz4"));
  EXPECT_EQ(lz4, Codec::kLz4Frame);
  ASSERT_OK_AND_ASSIGN(Codec lz4_frame, ParseCodec("lz4_frame"));
  EXPECT_EQ(lz4_frame, Codec::kLz4Frame);
  ASSERT_OK_AND_ASSIGN(Codec zstd, ParseCodec("zstd"));
  EXPECT_EQ(zstd, Codec::kZstd);
  ASSERT_OK_AND_ASSIGN(Codec none, ParseCodec("none"));
  EXPECT_EQ(none, Codec::kNone);
  EXPECT_STATUS(ParseCodec("gzip"), StatusCode::kInvalidArgument, "gzip");
  EXPECT_EQ(CodecName(Codec::kZstd), "zstd");
  EXPECT_EQ(CodecName(Codec::kLz4Frame), "lz4_frame");
  EXPECT_EQ(CodecName(Codec::kNone), "none");
}

TEST(CompressionTest, NoneIsNotACodec) {
  std::vector<uint8_t> out;
  EXPECT_STATUS(Compress(Codec::kNone, RepetitiveBytes(10), &out), StatusCode::kInvalidArgument,
                "");
  std::vector<uint8_t> buffer(10);
  EXPECT_STATUS(Decompress(Codec::kNone, RepetitiveBytes(10), buffer), StatusCode::kInvalidArgument,
                "");
}

}  // namespace
}  // namespace bridge::ipc
