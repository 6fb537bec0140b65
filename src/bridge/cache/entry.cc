// Entry: a pinned, mapped entry file and its lazy checksum verification.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "bridge/cache/cache.h"
#include "bridge/cache/cache_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::cache {
namespace internal {
namespace {

// A strong ETag over everything that identifies the content: the schema and every
// message's checksum (the ids of two entries with the same bytes differ; their ETags do not).
std::string MakeEtag(const EntryHeader& h) {
  std::string digests = Hex64(h.schema_hash);
  for (const CachedMessage& m : h.messages) digests += Hex64(m.checksum);
  return "\"" + Hex64(Xxh3({reinterpret_cast<const uint8_t*>(digests.data()), digests.size()})) +
         "\"";
}

}  // namespace

EntryRecord::EntryRecord(EntryHeader h, std::string file_path, int64_t size)
    : header(std::move(h)),
      path(std::move(file_path)),
      file_size(size),
      etag(MakeEtag(header)),
      verified(new std::atomic<bool>[header.messages.size()]) {
  for (size_t i = 0; i < header.messages.size(); ++i) verified[i].store(false);
  for (const CachedMessage& m : header.messages) {
    if (m.type == ipc::MessageType::kRecordBatch) ++record_batches;
  }
}

}  // namespace internal

Entry::Entry(std::shared_ptr<const internal::EntryRecord> record, int fd,
             std::span<const uint8_t> mapping, std::weak_ptr<internal::CacheState> cache)
    : record_(std::move(record)), fd_(fd), mapping_(mapping), cache_(std::move(cache)) {}

Entry::~Entry() {
  if (!mapping_.empty()) {
    ::munmap(const_cast<uint8_t*>(mapping_.data()), mapping_.size());
  }
  if (fd_ >= 0) ::close(fd_);
}

const std::string& Entry::id() const { return record_->header.id; }
const std::string& Entry::etag() const { return record_->etag; }
ipc::ByteRange Entry::stream_range() const { return record_->header.stream; }
std::span<const CachedMessage> Entry::messages() const { return record_->header.messages; }
ipc::Codec Entry::codec() const { return record_->header.codec; }
int64_t Entry::record_batches() const { return record_->record_batches; }
int64_t Entry::created_ms() const { return record_->header.created_ms; }

std::span<const uint8_t> Entry::MessageBytes(size_t i) const {
  if (i >= record_->header.messages.size()) return {};
  const CachedMessage& m = record_->header.messages[i];
  return mapping_.subspan(static_cast<size_t>(m.offset), static_cast<size_t>(m.total_length()));
}

std::span<const uint8_t> Entry::MessageFlatbuffer(size_t i) const {
  if (i >= record_->header.messages.size()) return {};
  const CachedMessage& m = record_->header.messages[i];
  return mapping_.subspan(static_cast<size_t>(m.offset) + 8,
                          static_cast<size_t>(m.flatbuffer_length));
}

std::span<const uint8_t> Entry::MessageBody(size_t i) const {
  if (i >= record_->header.messages.size()) return {};
  const CachedMessage& m = record_->header.messages[i];
  return mapping_.subspan(static_cast<size_t>(m.offset + m.metadata_length),
                          static_cast<size_t>(m.body_length));
}

Status Entry::Mismatch(std::string_view what) const {
  record_->corrupt.store(true);
  spdlog::error("cache: entry {}: {}; evicting it", record_->header.id, std::string(what));
  if (auto cache = cache_.lock()) cache->Corrupt(*record_);
  return absl::DataLossError(StrCat("cache: entry ", record_->header.id, ": ", what));
}

Status Entry::VerifyMessage(size_t i) const {
  const auto& messages = record_->header.messages;
  if (i >= messages.size()) {
    return absl::OutOfRangeError(
        StrCat("cache: entry ", id(), ": message ", i, " of ", messages.size()));
  }
  if (record_->corrupt.load()) {
    return absl::DataLossError(StrCat("cache: entry ", id(), " failed verification earlier"));
  }
  auto cache = cache_.lock();
  const bool trust = cache == nullptr || cache->options().trust_after_first_verify;
  if (trust && record_->verified[i].load(std::memory_order_acquire)) return OkStatus();
  const std::span<const uint8_t> bytes = MessageBytes(i);
  const uint64_t actual = internal::Xxh3(bytes);
  if (cache != nullptr) cache->bytes_verified += static_cast<int64_t>(bytes.size());
  if (actual != messages[i].checksum) {
    return Mismatch(StrCat("message ", i, " at offset ", messages[i].offset, " has XXH3 ",
                           internal::Hex64(actual), ", the header says ",
                           internal::Hex64(messages[i].checksum)));
  }
  record_->verified[i].store(true, std::memory_order_release);
  return OkStatus();
}

bool Entry::IsVerified(size_t i) const {
  if (i >= record_->header.messages.size() || record_->corrupt.load()) return false;
  auto cache = cache_.lock();
  const bool trust = cache == nullptr || cache->options().trust_after_first_verify;
  return trust && record_->verified[i].load(std::memory_order_acquire);
}

Status Entry::VerifyAll() const {
  if (record_->corrupt.load()) {
    return absl::DataLossError(StrCat("cache: entry ", id(), " failed verification earlier"));
  }
  auto cache = cache_.lock();
  const bool trust = cache == nullptr || cache->options().trust_after_first_verify;
  if (trust && record_->all_verified.load(std::memory_order_acquire)) return OkStatus();
  // Release the cache before VerifyMessage locks it again for each message.
  cache.reset();
  for (size_t i = 0; i < record_->header.messages.size(); ++i) {
    BRIDGE_RETURN_NOT_OK(VerifyMessage(i));
  }
  const ipc::ByteRange stream = record_->header.stream;
  static constexpr uint8_t kEndOfStream[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  if (std::memcmp(mapping_.data() + stream.offset + stream.length - 8, kEndOfStream, 8) != 0) {
    return Mismatch("the end-of-stream marker is damaged");
  }
  record_->all_verified.store(true, std::memory_order_release);
  return OkStatus();
}

}  // namespace bridge::cache

namespace bridge::cache {

ipc::EncodedMessage MessageOf(const std::shared_ptr<const Entry>& entry, size_t i) {
  ipc::EncodedMessage out;
  const std::span<const CachedMessage> messages = entry->messages();
  if (i >= messages.size()) return out;
  const CachedMessage& m = messages[i];
  const std::span<const uint8_t> bytes = entry->MessageBytes(i);
  out.type = m.type;
  out.metadata.assign(reinterpret_cast<const char*>(bytes.data()),
                      static_cast<size_t>(m.metadata_length));
  out.flatbuffer_size = static_cast<size_t>(m.flatbuffer_length);
  const std::span<const uint8_t> body = entry->MessageBody(i);
  if (!body.empty()) out.body.push_back({body.data(), body.size()});
  out.body_length = m.body_length;
  out.keep_alive = entry;
  return out;
}

}  // namespace bridge::cache
