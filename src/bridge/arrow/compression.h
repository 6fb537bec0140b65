// IPC body compression codecs (Arrow's BodyCompression, method BUFFER): LZ4 frame and
// ZSTD, one compressed frame per buffer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"

namespace bridge::ipc {

enum class Codec { kNone, kLz4Frame, kZstd };

// Parses "none", "lz4" / "lz4_frame", "zstd".
Result<Codec> ParseCodec(std::string_view name);
std::string_view CodecName(Codec codec);

// Appends the compressed form of `input` (one LZ4 frame or one ZSTD frame) to `out`.
// `level` 0 = the codec's default.
Status Compress(Codec codec, std::span<const uint8_t> input, std::vector<uint8_t>* out,
                int level = 0);

// Decompresses one frame into exactly `out.size()` bytes (the length the IPC prefix
// announced). Returns InvalidArgument if the frame is malformed or does not decode to
// exactly that many bytes.
Status Decompress(Codec codec, std::span<const uint8_t> input, std::span<uint8_t> out);

}  // namespace bridge::ipc
