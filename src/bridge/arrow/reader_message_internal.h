// Framing of encapsulated IPC messages and verification of their flatbuffers. Private to
// src/bridge/arrow.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "bridge/arrow/buffer.h"
#include "bridge/arrow/fb/File_generated.h"
#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/reader_memory_internal.h"
#include "bridge/common/status.h"

namespace bridge::ipc::internal {

constexpr uint32_t kContinuation = 0xFFFFFFFFu;

// Reads a little-endian int32 / int64 at `p` (any alignment).
inline int32_t LoadInt32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline int64_t LoadInt64(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Element `i` of a flatbuffers vector of structs or 8-byte scalars. The verifier checks
// that such vectors are inside the buffer but not that their elements are aligned, so they
// are copied out rather than dereferenced in place.
template <typename T>
T LoadStruct(const flatbuffers::Vector<const T*>& vec, size_t i) {
  T out;
  std::memcpy(static_cast<void*>(&out), vec.Data() + i * sizeof(T), sizeof(T));
  return out;
}
inline int64_t LoadElement(const flatbuffers::Vector<int64_t>& vec, size_t i) {
  return LoadInt64(vec.Data() + i * sizeof(int64_t));
}

// A flatbuffer checked by the generated verifier. If the bytes were not 8-byte aligned they
// were copied into `aligned_copy`, which `root` then points into (moving a Verified keeps
// the pointer valid).
template <typename T>
struct Verified {
  const T* root = nullptr;
  std::vector<uint64_t> aligned_copy;
};

// Verifies `bytes` as a Message flatbuffer and checks its metadata version (V4 or V5) and
// body length (>= 0). `context` prefixes errors ("ipc: message 3").
Result<Verified<fb::Message>> VerifyMessage(std::span<const uint8_t> bytes,
                                            const ReadOptions& options, ReadStats& stats,
                                            std::string_view context);

// Verifies `bytes` as a file Footer flatbuffer and checks its metadata version.
Result<Verified<fb::Footer>> VerifyFooter(std::span<const uint8_t> bytes,
                                          const ReadOptions& options, ReadStats& stats,
                                          std::string_view context);

// Checks a metadata version: V4 and V5 are read.
Status CheckVersion(fb::MetadataVersion version, std::string_view context);

// One encapsulated message: its verified metadata and its body.
struct RawMessage {
  Verified<fb::Message> metadata;
  Buffer body;
  int64_t offset = -1;       // of its first byte in the input; -1 when unknown
  int64_t metadata_end = 0;  // offset just past prefix + metadata, when offset is known
};

// Reads the encapsulated message starting at `offset` of `data`, which must end by `end`
// (<= data.size()). Returns nullopt at an end-of-stream marker, or when `offset == end`
// (the end of the input on a message boundary). The body is a view into `data`.
Result<std::optional<RawMessage>> ReadMessageAt(const Buffer& data, int64_t offset, int64_t end,
                                                const ReadOptions& options, ReadStats& stats,
                                                std::string_view context);

// Produces the messages of a stream one by one.
class MessageSource {
 public:
  virtual ~MessageSource() = default;
  // Returns the next message, or nullopt at the end of the stream. `context` prefixes
  // errors.
  virtual Result<std::optional<RawMessage>> Next(std::string_view context) = 0;
};

// Messages of a stream held in `data`, whose bodies are views into it.
std::unique_ptr<MessageSource> MakeBufferMessageSource(Buffer data, const ReadOptions& options,
                                                       ReadStats& stats);

// Messages read from `source`; each body is read into memory charged to `budget` for as
// long as something uses it. `stats` must outlive the returned object.
std::unique_ptr<MessageSource> MakeByteMessageSource(std::unique_ptr<ByteSource> source,
                                                     const ReadOptions& options, ReadStats& stats,
                                                     std::shared_ptr<AllocationBudget> budget);

}  // namespace bridge::ipc::internal
