// Private to bridge/cache: the entry header, the index and the shared state behind Cache,
// Entry and EntryWriter.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bridge/arrow/compression.h"
#include "bridge/arrow/writer.h"
#include "bridge/cache/cache.h"
#include "bridge/common/errno.h"
#include "bridge/common/status.h"

namespace bridge::cache::internal {

// Footer custom_metadata keys: the header (JSON) and the XXH3-64 of its bytes (16 hex).
inline constexpr std::string_view kHeaderKey = "bridge.cache.header";
inline constexpr std::string_view kHeaderChecksumKey = "bridge.cache.header.xxh3";
inline constexpr int kFormatVersion = 1;
// Header flags.
inline constexpr uint32_t kFlagUncompressed = 1;  // bodies are raw buffers, usable in place
inline constexpr uint32_t kFlagCompressed = 2;    // bodies are compressed with `codec`
// File names: ID.arrow for entries, ID.arrow.tmp while being written.
inline constexpr std::string_view kEntrySuffix = ".arrow";
inline constexpr std::string_view kTempSuffix = ".arrow.tmp";
inline constexpr std::string_view kLockName = "LOCK";

// Our header, stored in the footer's custom_metadata (see README.md).
struct EntryHeader {
  int format_version = kFormatVersion;
  uint32_t flags = kFlagUncompressed;
  ipc::Codec codec = ipc::Codec::kNone;
  std::string id;            // 32 hex digits, also the file name
  std::string key_digest;    // KeyDigest::full
  std::string query_digest;  // KeyDigest::query
  std::vector<TableVersion> tables;
  int64_t created_ms = 0;
  uint64_t schema_hash = 0;  // XXH3-64 of the schema message's flatbuffer
  ipc::ByteRange stream;     // schema message through end-of-stream marker
  std::vector<CachedMessage> messages;
};

// Returns the footer custom_metadata that carries `header`. InvalidArgument when a string
// of it (a table name) is not valid UTF-8, which JSON cannot hold.
Result<ipc::KeyValueMetadata> EncodeHeader(const EntryHeader& header);
// Returns the header of the entry file `file` (a mapping of the whole file), after checking
// that the footer verifies, the header's checksum matches and its message ranges tile the
// stream section and agree with the footer's Blocks. Reads the first and last pages only.
// InvalidArgument for anything torn or inconsistent.
Result<EntryHeader> ReadHeader(std::span<const uint8_t> file);

// XXH3-64 of `bytes`.
uint64_t Xxh3(std::span<const uint8_t> bytes);

// A read-only mapping of a whole file, unmapped and closed on destruction unless released
// (fd = -1, data = nullptr).
struct MappedFile {
  int fd = -1;
  const uint8_t* data = nullptr;
  size_t size = 0;

  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  std::span<const uint8_t> span() const { return {data, size}; }
};

// Maps `fd` (taken over) read-only. IoError when it cannot be stat'ed or mapped,
// InvalidArgument when it is empty.
Status MapDescriptor(int fd, const std::string& path, MappedFile& out);
std::string Hex64(uint64_t value);
// A new random entry id: 16 bytes from OpenSSL's RAND_bytes, in hex.
Result<std::string> NewEntryId();
bool IsEntryId(std::string_view text);

// One indexed entry: its header and its verification flags, shared by the index and every
// Entry object opened for it. Immutable but the flags, which are atomic (and mutable, since
// entries hold the record const).
struct EntryRecord {
  EntryHeader header;
  std::string path;
  int64_t file_size = 0;
  std::string etag;
  int64_t record_batches = 0;
  std::unique_ptr<std::atomic<bool>[]> verified;  // one per message
  mutable std::atomic<bool> all_verified{false};
  mutable std::atomic<bool> corrupt{false};

  explicit EntryRecord(EntryHeader h, std::string file_path, int64_t size);
};

// One background thread that runs the file writes (and checksums) of every EntryWriter in
// the order they were pushed, so a response that tees into the cache does not pay for the
// page-cache copy on its own thread. The thread starts at the first Push. Stop (and the
// destructor) runs what is queued, then joins; a Push after Stop runs the job inline.
class WriteQueue {
 public:
  WriteQueue() = default;
  ~WriteQueue() { Stop(); }
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  void Push(std::function<void()> job);
  void Stop();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopped_ = false;
  std::thread thread_;
};

// The index and everything Cache, Entry and EntryWriter share. Thread-safe: `mu` guards
// the index and the counters but the atomic ones.
class CacheState : public std::enable_shared_from_this<CacheState> {
 public:
  CacheState(CacheOptions options, int lock_fd);
  ~CacheState();

  const CacheOptions& options() const { return options_; }
  int64_t NowMs() const;

  // Indexes the files of the folder (at Open).
  Status Scan();

  std::shared_ptr<const Entry> Lookup(const CacheKey& key);
  std::shared_ptr<const Entry> FindById(std::string_view id);
  int64_t Invalidate(std::string_view table);
  bool Remove(std::string_view id);
  int64_t Clear();
  CacheStats stats() const;

  // Reserves `key_digest` for a writer; false if one is writing it already.
  bool BeginWriting(const std::string& key_digest);
  // Forgets the reservation of an abandoned writer.
  void Abandoned(const std::string& key_digest);
  // Indexes a committed file whose descriptor is `fd` (taken over) and returns it pinned.
  Result<std::shared_ptr<const Entry>> Committed(EntryHeader header, std::string path, int fd,
                                                 int64_t file_size);
  // Evicts the entry of `record` if it is still indexed (checksum mismatch).
  void Corrupt(const EntryRecord& record);

  std::atomic<int64_t> bytes_verified{0};
  WriteQueue& write_queue() { return write_queue_; }

 private:
  struct Slot {
    std::shared_ptr<EntryRecord> record;
    std::weak_ptr<const Entry> open;  // the pinned entry, while someone holds it
    std::list<std::string>::iterator lru;
  };

  // Returns the pinned entry of `slot`, opening and mapping its file if nobody holds it.
  std::shared_ptr<const Entry> PinLocked(Slot& slot);
  std::shared_ptr<const Entry> MakeEntry(std::shared_ptr<EntryRecord> record, int fd,
                                         const uint8_t* data, size_t size);
  void InsertLocked(std::shared_ptr<EntryRecord> record);
  void EvictLocked(const std::string& id, std::string_view reason);
  void EvictForBudgetLocked();
  bool ExpiredLocked(const EntryRecord& record) const;
  void TouchLocked(Slot& slot);
  // Keeps `entry` pinned among the kWarmEntries most recently used, so a hit does not map
  // (and fault in) the file again.
  void KeepWarmLocked(const std::shared_ptr<const Entry>& entry);

  CacheOptions options_;
  int lock_fd_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Slot> by_id_;
  std::unordered_map<std::string, std::string> by_query_;  // query digest -> id
  std::list<std::string> lru_;                             // ids, most recently used first
  std::unordered_set<std::string> writing_;                // key digests being written
  // The most recently used entries, pinned (mapped) even while no reader holds them.
  static constexpr size_t kWarmEntries = 16;
  std::list<std::shared_ptr<const Entry>> warm_;
  // What the locked code dropped, let go of by Locked once mu_ is released: warm entries'
  // pins (the last one unmaps and closes) and files to delete (unlinking a large file that
  // nothing holds frees its pages, which takes a while), so that no other caller waits on
  // the lock for either.
  class Locked;
  std::vector<std::shared_ptr<const Entry>> dead_entries_;
  std::vector<std::pair<std::string, std::string>> dead_files_;  // path, why
  CacheStats stats_;
  // Last, so it is stopped (its jobs run) before anything else goes; ~CacheState also stops
  // it first thing, before it releases the folder's lock.
  WriteQueue write_queue_;
};

}  // namespace bridge::cache::internal
