#include "bridge/arrow/reader_message_internal.h"

#include <algorithm>
#include <utility>

namespace bridge::ipc::internal {
namespace {

// Verifies `bytes` as a flatbuffer whose root is checked by `verify`, copying it to 8-byte
// aligned memory first if needed (flatbuffers reads scalars in place).
template <typename T>
Result<Verified<T>> VerifyRoot(std::span<const uint8_t> bytes, const ReadOptions& options,
                               ReadStats& stats, std::string_view context, std::string_view what,
                               bool (*verify)(flatbuffers::Verifier&)) {
  const int64_t limit =
      std::min<int64_t>(options.max_metadata_bytes, FLATBUFFERS_MAX_BUFFER_SIZE - 1);
  if (static_cast<int64_t>(bytes.size()) > limit) {
    return InvalidArgument(context, ": ", what, " of ", bytes.size(),
                           " bytes is larger than the limit of ", limit, " bytes");
  }
  if (bytes.size() < 8) {
    return InvalidArgument(context, ": ", what, " of ", bytes.size(),
                           " bytes is too short to be a flatbuffer");
  }
  Verified<T> out;
  const uint8_t* data = bytes.data();
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    // Copy: flatbuffers reads scalars in place, so the metadata must be aligned.
    out.aligned_copy.resize((bytes.size() + 7) / 8);
    std::memcpy(out.aligned_copy.data(), bytes.data(), bytes.size());
    data = reinterpret_cast<const uint8_t*>(out.aligned_copy.data());
    stats.metadata_bytes_copied += static_cast<int64_t>(bytes.size());
  }
  flatbuffers::Verifier::Options verifier_options;
  // Fields nest through a few tables per level (field, type, dictionary encoding); the
  // schema decoder enforces the real depth limit with a clearer message.
  const int64_t depth = std::clamp<int64_t>(int64_t{options.max_nesting_depth} * 2 + 16, 16, 4096);
  verifier_options.max_depth = static_cast<flatbuffers::uoffset_t>(depth);
  // Each table takes at least 4 bytes, so more table visits than that means shared
  // sub-tables fanning out (a small buffer describing a huge tree).
  verifier_options.max_tables = static_cast<flatbuffers::uoffset_t>(bytes.size() / 4 + 64);
  verifier_options.check_alignment = true;
  flatbuffers::Verifier verifier(data, bytes.size(), verifier_options);
  if (!verify(verifier)) {
    return InvalidArgument(context, ": ", what, " is not a valid flatbuffer");
  }
  out.root = flatbuffers::GetRoot<T>(data);
  return out;
}

bool VerifyMessageRoot(flatbuffers::Verifier& verifier) {
  return fb::VerifyMessageBuffer(verifier);
}
bool VerifyFooterRoot(flatbuffers::Verifier& verifier) { return fb::VerifyFooterBuffer(verifier); }

class BufferMessageSource : public MessageSource {
 public:
  BufferMessageSource(Buffer data, const ReadOptions& options, ReadStats& stats)
      : data_(std::move(data)), options_(options), stats_(stats) {}

  Result<std::optional<RawMessage>> Next(std::string_view context) override {
    if (done_) return std::nullopt;
    BRIDGE_ASSIGN_OR_RETURN(
        auto message, ReadMessageAt(data_, position_, static_cast<int64_t>(data_.size()), options_,
                                    stats_, context));
    if (!message.has_value()) {
      done_ = true;
      return std::nullopt;
    }
    position_ = message->metadata_end + static_cast<int64_t>(message->body.size());
    return message;
  }

 private:
  Buffer data_;
  const ReadOptions& options_;
  ReadStats& stats_;
  int64_t position_ = 0;
  bool done_ = false;
};

// The memory of a message body read from a ByteSource, charged to the reader's budget.
struct ReceivedBody {
  std::vector<uint8_t> bytes;
  Charge charge;
};

class ByteMessageSource : public MessageSource {
 public:
  ByteMessageSource(std::unique_ptr<ByteSource> source, const ReadOptions& options,
                    ReadStats& stats, std::shared_ptr<AllocationBudget> budget)
      : source_(std::move(source)), options_(options), stats_(stats), budget_(std::move(budget)) {}

  Result<std::optional<RawMessage>> Next(std::string_view context) override {
    if (done_) return std::nullopt;
    uint8_t prefix[8];
    BRIDGE_ASSIGN_OR_RETURN(size_t got, ReadFully(prefix, 4));
    if (got == 0) {
      done_ = true;
      return std::nullopt;
    }
    if (got < 4) return InvalidArgument(context, ": the input ends inside a message prefix");
    int64_t prefix_size = 4;
    int32_t length = LoadInt32(prefix);
    if (static_cast<uint32_t>(length) == kContinuation) {
      BRIDGE_ASSIGN_OR_RETURN(got, ReadFully(prefix + 4, 4));
      if (got < 4) return InvalidArgument(context, ": the input ends inside a message prefix");
      length = LoadInt32(prefix + 4);
      prefix_size = 8;
    }
    stats_.bytes_read += prefix_size;
    if (length == 0) {
      done_ = true;
      return std::nullopt;
    }
    if (length < 0) return InvalidArgument(context, ": negative metadata length ", length);
    if (length > options_.max_metadata_bytes) {
      return InvalidArgument(context, ": metadata of ", length,
                             " bytes is larger than the limit of ", options_.max_metadata_bytes,
                             " bytes");
    }
    std::vector<uint64_t> metadata((static_cast<size_t>(length) + 7) / 8);
    auto* metadata_bytes = reinterpret_cast<uint8_t*>(metadata.data());
    BRIDGE_ASSIGN_OR_RETURN(got, ReadFully(metadata_bytes, static_cast<size_t>(length)));
    if (got < static_cast<size_t>(length)) {
      return InvalidArgument(context, ": the input ends inside the message metadata (", got, " of ",
                             length, " bytes)");
    }
    stats_.bytes_read += length;
    BRIDGE_ASSIGN_OR_RETURN(
        Verified<fb::Message> verified,
        VerifyMessage(std::span<const uint8_t>(metadata_bytes, static_cast<size_t>(length)),
                      options_, stats_, context));
    if (verified.aligned_copy.empty()) verified.aligned_copy = std::move(metadata);

    RawMessage message;
    message.metadata = std::move(verified);
    const int64_t body_length = message.metadata.root->body_length();
    if (body_length > 0) {
      auto body = std::make_shared<ReceivedBody>();
      BRIDGE_ASSIGN_OR_RETURN(body->charge,
                              Charge::Make(budget_, body_length, context, "the message body"));
      // Grown as bytes arrive, so a body length the input does not back costs nothing.
      size_t have = 0;
      const auto want = static_cast<size_t>(body_length);
      while (have < want) {
        const size_t chunk = std::min(want - have, std::max<size_t>(have, size_t{1} << 20));
        body->bytes.resize(have + chunk);
        BRIDGE_ASSIGN_OR_RETURN(got, ReadFully(body->bytes.data() + have, chunk));
        have += got;
        if (got < chunk) {
          return InvalidArgument(context, ": the input ends inside the message body (", have,
                                 " of ", body_length, " bytes)");
        }
      }
      stats_.bytes_read += body_length;
      const uint8_t* data = body->bytes.data();
      message.body = Buffer(data, want, std::move(body));
    }
    return message;
  }

 private:
  // Reads until `n` bytes or the end of the input; returns how many were read.
  Result<size_t> ReadFully(uint8_t* out, size_t n) {
    size_t have = 0;
    while (have < n) {
      BRIDGE_ASSIGN_OR_RETURN(size_t got, source_->Read(out + have, n - have));
      if (got == 0) break;
      if (got > n - have) return Internal("ipc: ByteSource::Read returned more than asked");
      have += got;
    }
    return have;
  }

  std::unique_ptr<ByteSource> source_;
  const ReadOptions& options_;
  ReadStats& stats_;
  std::shared_ptr<AllocationBudget> budget_;
  bool done_ = false;
};

}  // namespace

Status CheckVersion(fb::MetadataVersion version, std::string_view context) {
  if (version == fb::MetadataVersion::V4 || version == fb::MetadataVersion::V5) {
    return OkStatus();
  }
  if (version < fb::MetadataVersion::V4) {
    return InvalidArgument(context, ": metadata version V", static_cast<int>(version) + 1,
                           " is too old (V4 and V5 are read)");
  }
  return InvalidArgument(context, ": unknown metadata version ", static_cast<int>(version) + 1);
}

Result<Verified<fb::Message>> VerifyMessage(std::span<const uint8_t> bytes,
                                            const ReadOptions& options, ReadStats& stats,
                                            std::string_view context) {
  BRIDGE_ASSIGN_OR_RETURN(
      auto verified, VerifyRoot<fb::Message>(bytes, options, stats, context, "message metadata",
                                             &VerifyMessageRoot));
  BRIDGE_RETURN_NOT_OK(CheckVersion(verified.root->version(), context));
  if (verified.root->body_length() < 0) {
    return InvalidArgument(context, ": negative body length ", verified.root->body_length());
  }
  return verified;
}

Result<Verified<fb::Footer>> VerifyFooter(std::span<const uint8_t> bytes,
                                          const ReadOptions& options, ReadStats& stats,
                                          std::string_view context) {
  BRIDGE_ASSIGN_OR_RETURN(auto verified, VerifyRoot<fb::Footer>(bytes, options, stats, context,
                                                                "footer", &VerifyFooterRoot));
  BRIDGE_RETURN_NOT_OK(CheckVersion(verified.root->version(), context));
  return verified;
}

Result<std::optional<RawMessage>> ReadMessageAt(const Buffer& data, int64_t offset, int64_t end,
                                                const ReadOptions& options, ReadStats& stats,
                                                std::string_view context) {
  if (offset == end) return std::nullopt;
  if (offset < 0 || offset > end || end > static_cast<int64_t>(data.size())) {
    return InvalidArgument(context, ": message offset ", offset, " is outside the input of ", end,
                           " bytes");
  }
  const int64_t available = end - offset;
  const uint8_t* p = data.data() + offset;
  if (available < 4) {
    return InvalidArgument(context, ": the input ends inside a message prefix (", available,
                           " bytes left at offset ", offset, ")");
  }
  int64_t prefix_size = 4;
  int32_t length = LoadInt32(p);
  if (static_cast<uint32_t>(length) == kContinuation) {
    if (available < 8) {
      return InvalidArgument(context, ": the input ends inside a message prefix (", available,
                             " bytes left at offset ", offset, ")");
    }
    length = LoadInt32(p + 4);
    prefix_size = 8;
  }
  if (length == 0) {
    stats.bytes_read += prefix_size;
    return std::nullopt;
  }
  if (length < 0) return InvalidArgument(context, ": negative metadata length ", length);
  if (length > available - prefix_size) {
    return InvalidArgument(context, ": metadata length ", length, " at offset ", offset,
                           " runs past the end of the input (", available - prefix_size,
                           " bytes left)");
  }
  BRIDGE_ASSIGN_OR_RETURN(
      auto verified,
      VerifyMessage(std::span<const uint8_t>(p + prefix_size, static_cast<size_t>(length)), options,
                    stats, context));
  const int64_t body_start = offset + prefix_size + length;
  const int64_t body_length = verified.root->body_length();
  if (body_length > end - body_start) {
    return InvalidArgument(context, ": body length ", body_length, " at offset ", body_start,
                           " runs past the end of the input (", end - body_start, " bytes left)");
  }
  stats.bytes_read += prefix_size + length + body_length;
  RawMessage message;
  message.metadata = std::move(verified);
  message.body = data.Slice(static_cast<size_t>(body_start), static_cast<size_t>(body_length));
  message.offset = offset;
  message.metadata_end = body_start;
  return message;
}

std::unique_ptr<MessageSource> MakeBufferMessageSource(Buffer data, const ReadOptions& options,
                                                       ReadStats& stats) {
  return std::make_unique<BufferMessageSource>(std::move(data), options, stats);
}

std::unique_ptr<MessageSource> MakeByteMessageSource(std::unique_ptr<ByteSource> source,
                                                     const ReadOptions& options, ReadStats& stats,
                                                     std::shared_ptr<AllocationBudget> budget) {
  return std::make_unique<ByteMessageSource>(std::move(source), options, stats, std::move(budget));
}

}  // namespace bridge::ipc::internal
