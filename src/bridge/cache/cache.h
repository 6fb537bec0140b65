// The result cache: query results kept as Arrow IPC files in a folder, served from the page
// cache without copies (sendfile of a byte range, grpc::Slice over a mapping), verified
// lazily with one XXH3-64 checksum per IPC message, evicted LRU under a byte budget.
//
// A file is written while the first response streams (EntryWriter::Write takes the same
// EncodedMessages the transport sends: no second encoding), committed atomically (temporary
// name, fsync, rename, fsync of the folder) and found again by a CacheKey. See README.md in
// this folder for the file layout, the header and what the transports must do.
//
// Only this module calls mmap; its public types expose plain spans and a file descriptor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/encoder.h"
#include "bridge/arrow/writer.h"
#include "bridge/common/status.h"

namespace bridge::cache {

// A table a query reads and the catalog version at which the caller saw it.
struct TableVersion {
  std::string name;
  uint64_t version = 0;
};

// What identifies a result. Two keys are equal when their normalized SQL, parameters, output
// options and table versions are; the order of `tables` does not matter.
struct CacheKey {
  std::string sql;                      // normalized with NormalizeSql
  std::vector<std::string> parameters;  // bound parameters, each encoded by the caller with
                                        // its type (e.g. "int64:5"): "5" and 5 must differ
  std::string output_options;           // e.g. "codec=zstd" (anything that changes the bytes)
  std::vector<TableVersion> tables;     // every table the query reads
};

// Returns `sql` with runs of whitespace and comments outside quoted text collapsed to one
// space, and leading/trailing whitespace removed. Quoted text ('...', E'...', "...",
// $tag$...$tag$) is kept byte for byte; an unterminated quote keeps the rest as is. Two
// queries with the same normalized text are the same query.
std::string NormalizeSql(std::string_view sql);

// The SHA-256 digests of a key (64 lowercase hex digits each). `query` covers SQL, parameters
// and output options; `full` adds the table versions.
struct KeyDigest {
  std::string query;
  std::string full;
};
KeyDigest DigestKey(const CacheKey& key);

struct CacheOptions {
  // The cache folder; created if missing. Must not be shared by two processes (Open takes
  // an exclusive lock on DIR/LOCK).
  std::filesystem::path dir;
  // Byte budget of all committed files; least recently used entries are evicted past it.
  int64_t max_bytes = int64_t{1} << 30;
  // Largest file one entry may reach; a write past it is abandoned (the lower of this and
  // max_bytes applies).
  int64_t max_entry_bytes = int64_t{2} << 30;
  // Entries older than this are misses (and deleted); zero keeps them until evicted.
  std::chrono::milliseconds ttl{0};
  // Verify each message (and VerifyAll the whole stream section) only once per entry and
  // process; when false, every call hashes again.
  bool trust_after_first_verify = true;
  // fsync the file and the folder at Commit (tests of large entries may turn it off).
  bool sync = true;
  // EntryWriter::Write queues the file write on the cache's writer thread and returns; the queued
  // messages pin their batches. Past this many queued bytes per writer, Write waits for the disk to
  // catch up.
  int64_t max_queued_bytes = int64_t{64} << 20;
  // The wall clock in milliseconds since the epoch (creation times are stored in the
  // files); tests replace it. Null means the system clock.
  std::function<int64_t()> clock;
};

// Counters since Open (bytes and entries are current values).
struct CacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t evictions = 0;  // entries removed: LRU, TTL, invalidation, replacement, corruption
  int64_t bytes = 0;      // size of the committed files in the index
  int64_t entries = 0;    // committed entries in the index
  int64_t writes_committed = 0;
  int64_t writes_abandoned = 0;  // by Abandon, a destructor, a size limit, a write error
                                 // or a BeginWrite that failed after reserving its key
  int64_t verify_failures = 0;   // checksum mismatches (the entry was evicted)
  int64_t bytes_verified = 0;    // bytes hashed by VerifyMessage / VerifyAll
};

// Where one IPC message of the stream section is in the file.
struct CachedMessage {
  ipc::MessageType type = ipc::MessageType::kSchema;
  int64_t offset = 0;           // of its continuation marker
  int64_t metadata_length = 0;  // continuation marker, length, flatbuffer and padding
  int64_t flatbuffer_length = 0;
  int64_t body_length = 0;
  uint64_t checksum = 0;  // XXH3-64 of the metadata_length + body_length bytes at offset

  int64_t total_length() const { return metadata_length + body_length; }
};

namespace internal {
class CacheState;
struct EntryRecord;
}  // namespace internal

// A committed entry, pinned: while any shared_ptr to it exists, its file descriptor stays
// open and its mapping valid, even after the cache has evicted it and unlinked the file.
// Thread-safe: everything is immutable but the verification flags, which are atomic.
class Entry {
 public:
  ~Entry();
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  // The opaque id clients may be given (32 lowercase hex digits, random; not the key).
  const std::string& id() const;
  // A strong ETag (with its quotes), derived from the content's checksums.
  const std::string& etag() const;
  // Read-only descriptor of the file, for sendfile(2). Owned by the entry; do not close.
  int fd() const { return fd_; }
  int64_t file_size() const { return static_cast<int64_t>(mapping_.size()); }
  // The whole file, mapped read-only.
  std::span<const uint8_t> mapping() const { return mapping_; }
  // The stream section (schema through end-of-stream marker): itself a valid IPC stream.
  ipc::ByteRange stream_range() const;
  // Every message of the stream section in order: the schema, then dictionary and record
  // batches as they were written (the end-of-stream marker is not a message).
  std::span<const CachedMessage> messages() const;
  // Bytes of message `i` in the mapping: the whole message, its flatbuffer alone (Flight's
  // data_header) and its body (Flight's data_body). Unverified: call VerifyMessage first.
  std::span<const uint8_t> MessageBytes(size_t i) const;
  std::span<const uint8_t> MessageFlatbuffer(size_t i) const;
  std::span<const uint8_t> MessageBody(size_t i) const;
  // Body codec of the record batches (kNone: buffers can be used in place from the mapping).
  ipc::Codec codec() const;
  int64_t record_batches() const;
  int64_t created_ms() const;

  // Checks message i's XXH3-64 against the header the first time in this process (then
  // remembers it, unless trust_after_first_verify is off). Returns OutOfRange for a bad
  // index; DataLoss on a mismatch, after evicting the entry from the cache (logged): the
  // caller must not serve it and runs the query instead.
  Status VerifyMessage(size_t i) const;
  // Whether message i was verified in this process (and VerifyMessage(i) will not hash it
  // again); false for a bad index or when trust_after_first_verify is off.
  bool IsVerified(size_t i) const;
  // Verifies every message not yet verified and the end-of-stream marker, in one streaming
  // pass over the stream section; at most once per entry and process with
  // trust_after_first_verify. For the sendfile path, before the first byte is sent. Errors
  // as VerifyMessage.
  Status VerifyAll() const;

 private:
  friend class internal::CacheState;
  Entry(std::shared_ptr<const internal::EntryRecord> record, int fd,
        std::span<const uint8_t> mapping, std::weak_ptr<internal::CacheState> cache);
  Status Mismatch(std::string_view what) const;

  std::shared_ptr<const internal::EntryRecord> record_;
  int fd_;
  std::span<const uint8_t> mapping_;
  std::weak_ptr<internal::CacheState> cache_;
};

// Message `i` of a pinned entry as an EncodedMessage, for transports that send messages
// one by one (Flight's FlightData): the metadata is copied (a few hundred bytes), the body
// points into the mapping and keep_alive pins the entry until the last holder lets go.
// Unverified: call VerifyMessage(i) first. An empty message (kSchema, no bytes) for a bad
// index.
ipc::EncodedMessage MessageOf(const std::shared_ptr<const Entry>& entry, size_t i);

class EntryWriter;

// The cache. Thread-safe: every method may be called from any thread; entries and writers
// it returns may outlive it (an entry stays readable; a writer's Commit then fails).
class Cache {
 public:
  // Creates `options.dir` if needed, locks it, deletes temporary files and torn or foreign
  // .arrow files (logged) and indexes the complete entries, reading only each file's
  // header and footer. Entries past the byte budget or the TTL are evicted. Returns
  // InvalidArgument for bad options, FailedPrecondition when another process holds the
  // folder, IoError when it cannot be created or read.
  static Result<std::unique_ptr<Cache>> Open(CacheOptions options);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Returns the entry for `key`, or null on a miss: no entry, one past its TTL (deleted
  // then), one written at other table versions (deleted then), or one whose file cannot be
  // opened. A hit makes the entry the most recently used.
  std::shared_ptr<const Entry> Lookup(const CacheKey& key);
  // Returns the entry with this id (as Lookup, without counting a hit or miss), or null.
  // Anything that is not 32 lowercase hex digits is simply not found.
  std::shared_ptr<const Entry> FindById(std::string_view id);

  // Starts writing the entry for `key`, whose messages are encoded for `schema` (not kept)
  // with `options` (the codec and alignment of the caller's encoder). The file's magic and
  // schema message are written here. Returns AlreadyExists when an entry for the same key
  // is already being written (the caller just serves without caching), InvalidArgument for
  // a bad schema or options, IoError when the temporary file cannot be created.
  Result<std::unique_ptr<EntryWriter>> BeginWrite(const CacheKey& key, const ArrowSchema& schema,
                                                  ipc::EncodeOptions options = {});

  // Deletes every entry that reads `table`; returns how many.
  int64_t Invalidate(std::string_view table);
  // Deletes the entry with this id; returns whether there was one.
  bool Remove(std::string_view id);
  // Deletes every entry (not one being written); returns how many.
  int64_t Clear();

  CacheStats stats() const;
  const CacheOptions& options() const;

 private:
  explicit Cache(std::shared_ptr<internal::CacheState> state);
  std::shared_ptr<internal::CacheState> state_;
};

// Writes one entry: a temporary file in the cache folder that becomes visible at Commit.
// Not thread-safe (one writer per response). Destroying it without Commit abandons it.
class EntryWriter {
 public:
  ~EntryWriter();
  EntryWriter(const EntryWriter&) = delete;
  EntryWriter& operator=(const EntryWriter&) = delete;

  // Appends `message` (a dictionary or record batch from the caller's encoder; a Schema
  // message is skipped, the schema was written at BeginWrite): the write runs on the cache's
  // writer thread (the checksums are taken at Commit, from the file), with a copy of the message
  // that shares its body (keep_alive), so the caller may drop its own at once. Never touches the
  // message: the caller serves it regardless. On any error the entry is abandoned (temporary file
  // removed, logged) and the caller should stop calling: ResourceExhausted when the file
  // would exceed the entry limit; the error of an earlier queued write that failed: IoError
  // (e.g. a full disk) or InvalidArgument for a message the file cannot hold (e.g. a
  // dictionary replacement) — a queued write's error shows at the next Write or at Commit;
  // FailedPrecondition once abandoned or committed or when the cache is gone.
  // Waits while more than max_queued_bytes of this writer's messages are queued.
  Status Write(const ipc::EncodedMessage& message);

  // Appends `message` now, on the caller's thread, and returns where its bytes (metadata and
  // body) are in the file. A transport may then send that range from fd() with sendfile(2)
  // instead of from memory (write-through): the body is copied once, into the page cache, and
  // not a second time into the socket. A Schema message is not written again (its bytes were
  // written by BeginWrite and may differ in a file-format detail): the range is empty. Waits
  // for queued Writes first. Errors and abandonment as Write; a failure may have written
  // part of the message, so nothing of it may be sent from the file.
  Result<ipc::ByteRange> Append(const ipc::EncodedMessage& message);

  // Waits for the queued writes, then writes the end-of-stream marker, the header and the
  // footer, syncs, renames the file to
  // its final name and syncs the folder; the entry becomes visible to Lookup (replacing an
  // older entry of the same key) and LRU eviction runs. Returns the pinned entry. On error
  // (IoError; ResourceExhausted when the footer takes the file past the entry limit;
  // InvalidArgument when a table name is not valid UTF-8; FailedPrecondition when abandoned
  // or the cache is gone) the entry is abandoned and nothing is left.
  Result<std::shared_ptr<const Entry>> Commit();

  // Removes the temporary file; later calls return FailedPrecondition. Idempotent.
  void Abandon();

  // Whether the writer can still take messages (not abandoned, not committed).
  bool active() const;
  // Bytes the file holds once the queued writes are done.
  int64_t bytes_written() const;
  // The id the entry will have.
  const std::string& id() const;
  // The temporary file's descriptor (read and write) while the writer is active, else -1.
  // Commit and Abandon close it: a transport that sends ranges from it keeps its own
  // duplicate (F_DUPFD_CLOEXEC), which stays valid after the file is renamed or removed.
  int fd() const;

 private:
  friend class Cache;
  struct State;
  explicit EntryWriter(std::shared_ptr<State> state);
  Status Fail(Status status);
  // Fails the entry unless `size` more bytes fit and the cache is open (the writer is active).
  Status CheckRoom(int64_t size);
  std::shared_ptr<State> state_;  // shared with its queued writes
};

}  // namespace bridge::cache
