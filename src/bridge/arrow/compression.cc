#include "bridge/arrow/compression.h"

#include <lz4frame.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <memory>

namespace bridge::ipc {
namespace {

// One compression / decompression context per thread, reused across calls: ZSTD contexts
// allocate hundreds of kilobytes, too much to pay per buffer. Each thread only touches its
// own contexts, so this is thread-safe.
struct ZstdContexts {
  ZSTD_CCtx* cctx = nullptr;
  ZSTD_DCtx* dctx = nullptr;
  ~ZstdContexts() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }
};

ZstdContexts& ThreadZstdContexts() {
  thread_local ZstdContexts contexts;
  return contexts;
}

struct Lz4DecompressionContextDeleter {
  void operator()(LZ4F_dctx* dctx) const { LZ4F_freeDecompressionContext(dctx); }
};

Status CompressLz4(std::span<const uint8_t> input, std::vector<uint8_t>* out, int level) {
  LZ4F_preferences_t prefs = LZ4F_INIT_PREFERENCES;
  prefs.compressionLevel = level;
  // The content size lets readers check the frame against the announced length.
  prefs.frameInfo.contentSize = input.size();
  const size_t bound = LZ4F_compressFrameBound(input.size(), &prefs);
  const size_t start = out->size();
  out->resize(start + bound);
  const size_t written =
      LZ4F_compressFrame(out->data() + start, bound, input.data(), input.size(), &prefs);
  if (LZ4F_isError(written)) {
    out->resize(start);
    return Internal("ipc: lz4 compression failed: ", LZ4F_getErrorName(written));
  }
  out->resize(start + written);
  return OkStatus();
}

Status CompressZstd(std::span<const uint8_t> input, std::vector<uint8_t>* out, int level) {
  ZstdContexts& contexts = ThreadZstdContexts();
  if (contexts.cctx == nullptr) contexts.cctx = ZSTD_createCCtx();
  if (contexts.cctx == nullptr) return ResourceExhausted("ipc: cannot allocate a zstd context");
  const size_t bound = ZSTD_compressBound(input.size());
  const size_t start = out->size();
  out->resize(start + bound);
  const size_t written = ZSTD_compressCCtx(contexts.cctx, out->data() + start, bound, input.data(),
                                           input.size(), level);
  if (ZSTD_isError(written)) {
    out->resize(start);
    return Internal("ipc: zstd compression failed: ", ZSTD_getErrorName(written));
  }
  out->resize(start + written);
  return OkStatus();
}

// Decodes LZ4 frames (normally one) from `input` into exactly `out`.
Status DecompressLz4(std::span<const uint8_t> input, std::span<uint8_t> out) {
  LZ4F_dctx* raw = nullptr;
  const LZ4F_errorCode_t created = LZ4F_createDecompressionContext(&raw, LZ4F_VERSION);
  std::unique_ptr<LZ4F_dctx, Lz4DecompressionContextDeleter> dctx(raw);
  if (LZ4F_isError(created)) {
    return ResourceExhausted("ipc: cannot allocate an lz4 context: ", LZ4F_getErrorName(created));
  }
  if (input.empty()) return InvalidArgument("ipc: lz4: empty input, expected a frame");
  uint8_t unused = 0;  // LZ4F wants a valid pointer even for zero capacity
  size_t in_pos = 0;
  size_t out_pos = 0;
  while (in_pos < input.size()) {
    size_t dst_size = out.size() - out_pos;
    size_t src_size = input.size() - in_pos;
    uint8_t* dst = out.empty() ? &unused : out.data() + out_pos;
    const size_t hint = LZ4F_decompress(dctx.get(), dst, &dst_size, input.data() + in_pos,
                                        &src_size, /*dOptPtr=*/nullptr);
    if (LZ4F_isError(hint)) {
      return InvalidArgument("ipc: lz4: malformed frame at byte ", in_pos, ": ",
                             LZ4F_getErrorName(hint));
    }
    in_pos += src_size;
    out_pos += dst_size;
    if (hint == 0) continue;  // a frame ended; another may follow
    if (src_size == 0 && dst_size == 0) {
      return InvalidArgument("ipc: lz4: frame decodes to more than the announced ", out.size(),
                             " bytes");
    }
    if (in_pos == input.size()) {
      return InvalidArgument("ipc: lz4: truncated frame (", input.size(), " bytes)");
    }
  }
  if (out_pos != out.size()) {
    return InvalidArgument("ipc: lz4: frame decodes to ", out_pos, " bytes, ", out.size(),
                           " were announced");
  }
  return OkStatus();
}

Status DecompressZstd(std::span<const uint8_t> input, std::span<uint8_t> out) {
  ZstdContexts& contexts = ThreadZstdContexts();
  if (contexts.dctx == nullptr) contexts.dctx = ZSTD_createDCtx();
  if (contexts.dctx == nullptr) return ResourceExhausted("ipc: cannot allocate a zstd context");
  if (input.empty()) return InvalidArgument("ipc: zstd: empty input, expected a frame");
  uint8_t unused = 0;
  const size_t decoded = ZSTD_decompressDCtx(contexts.dctx, out.empty() ? &unused : out.data(),
                                             out.size(), input.data(), input.size());
  if (ZSTD_isError(decoded)) {
    if (ZSTD_getErrorCode(decoded) == ZSTD_error_dstSize_tooSmall) {
      return InvalidArgument("ipc: zstd: frame decodes to more than the announced ", out.size(),
                             " bytes");
    }
    return InvalidArgument("ipc: zstd: malformed frame: ", ZSTD_getErrorName(decoded));
  }
  if (decoded != out.size()) {
    return InvalidArgument("ipc: zstd: frame decodes to ", decoded, " bytes, ", out.size(),
                           " were announced");
  }
  return OkStatus();
}

}  // namespace

Result<Codec> ParseCodec(std::string_view name) {
  if (name == "none" || name.empty()) return Codec::kNone;
  if (name == "lz4" || name == "lz4_frame") return Codec::kLz4Frame;
  if (name == "zstd") return Codec::kZstd;
  return InvalidArgument("ipc: unknown compression codec '", name,
                         "' (expected none, lz4 or zstd)");
}

std::string_view CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kLz4Frame:
      return "lz4_frame";
    case Codec::kZstd:
      return "zstd";
  }
  return "unknown";
}

Status Compress(Codec codec, std::span<const uint8_t> input, std::vector<uint8_t>* out, int level) {
  switch (codec) {
    case Codec::kLz4Frame:
      return CompressLz4(input, out, level);
    case Codec::kZstd:
      return CompressZstd(input, out, level);
    case Codec::kNone:
      break;
  }
  return InvalidArgument("ipc: Compress called without a codec");
}

Status Decompress(Codec codec, std::span<const uint8_t> input, std::span<uint8_t> out) {
  switch (codec) {
    case Codec::kLz4Frame:
      return DecompressLz4(input, out);
    case Codec::kZstd:
      return DecompressZstd(input, out);
    case Codec::kNone:
      break;
  }
  return InvalidArgument("ipc: Decompress called without a codec");
}

}  // namespace bridge::ipc
