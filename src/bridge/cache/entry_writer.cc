// EntryWriter: tees encoded messages into a temporary IPC file and commits it atomically.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "bridge/cache/cache.h"
#include "bridge/cache/cache_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::cache {
namespace {

// XXH3-64 of each message's bytes in the file behind `fd` (metadata and body, as the
// message records place them), read through a mapping of the file: the bytes are in the
// page cache, and hashing them there copies nothing. Sets their checksums.
Status ChecksumMessages(int fd, const std::string& path, std::vector<CachedMessage>& messages) {
  internal::MappedFile file;
  BRIDGE_RETURN_NOT_OK(internal::MapDescriptor(::fcntl(fd, F_DUPFD_CLOEXEC, 0), path, file));
  for (CachedMessage& m : messages) {
    // A file shorter than what was written to it (truncated behind our back) is refused
    // here, not read past its end.
    if (m.offset < 0 || m.total_length() < 0 ||
        m.offset + m.total_length() > static_cast<int64_t>(file.size)) {
      return IoError("cache: ", path, " ends at ", file.size, ", before its message records");
    }
    m.checksum = internal::Xxh3(
        file.span().subspan(static_cast<size_t>(m.offset), static_cast<size_t>(m.total_length())));
  }
  return OkStatus();
}

// fsync of a folder, so that a rename in it is durable.
Status SyncFolder(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cache: opening ", dir.string(), ": ", ErrnoMessage(errno));
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) return IoError("cache: fsync of ", dir.string(), ": ", ErrnoMessage(error));
  return OkStatus();
}

}  // namespace

namespace internal {

void WriteQueue::Push(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
      jobs_.push_back(std::move(job));
      ready_.notify_one();
      return;
    }
  }
  job();
}

void WriteQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    ready_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void WriteQueue::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    ready_.wait(lock, [this] { return stopped_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopped, and everything ran
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // drops what the job holds before the lock is taken again
    lock.lock();
  }
}

}  // namespace internal

// The writer's state. The caller's thread owns the bookkeeping of what was accepted
// (`accepted_bytes`, `active`); the queued jobs own the file (`writer`, `header.messages`)
// until `pending` is back to zero, which Commit and Abandon wait for.
struct EntryWriter::State {
  std::weak_ptr<internal::CacheState> cache;
  internal::EntryHeader header;  // messages are appended by the queued writes
  std::filesystem::path dir;
  std::string temp_path;
  std::string final_path;
  int64_t limit = 0;  // largest file size
  bool sync = true;
  int fd = -1;
  std::unique_ptr<ipc::FileDescriptorSink> sink;
  std::unique_ptr<ipc::FileWriter> writer;
  bool active = true;
  int64_t accepted_bytes = 0;  // what the file holds once every queued write is done
  int64_t max_queued_bytes = 0;

  std::mutex mu;
  std::condition_variable changed;
  int pending = 0;           // queued writes not done yet
  int64_t queued_bytes = 0;  // their sizes
  // The first failed write, or the abandonment: queued writes are skipped from then on.
  Status error;

  ~State() {
    if (fd >= 0) ::close(fd);
  }

  // Appends `message` to the file and records where it is (its checksum is taken at
  // Commit); returns its offset. The caller owns the file: the queue's thread, or the
  // caller of Append once nothing is queued.
  Result<int64_t> AppendToFile(const ipc::EncodedMessage& message) {
    const int64_t offset = writer->bytes_written();
    BRIDGE_RETURN_NOT_OK(writer->WriteEncodedMessage(message));
    header.messages.push_back(
        CachedMessage{message.type, offset, static_cast<int64_t>(message.metadata.size()),
                      static_cast<int64_t>(message.flatbuffer_size), message.body_length, 0});
    return offset;
  }

  // Runs on the queue's thread: appends `message`.
  void WriteQueued(const ipc::EncodedMessage& message) {
    Status status;
    bool skip;
    {
      std::lock_guard lock(mu);
      skip = !error.ok();
    }
    if (!skip) status = AppendToFile(message).status();
    std::lock_guard lock(mu);
    if (!status.ok() && error.ok()) error = WithContext(status, StrCat("cache: entry ", header.id));
    --pending;
    queued_bytes -= message.total_size();
    changed.notify_all();
  }

  // Waits until every queued write is done; returns the first error of one.
  Status Drain() {
    std::unique_lock lock(mu);
    changed.wait(lock, [this] { return pending == 0; });
    return error;
  }
};

EntryWriter::EntryWriter(std::shared_ptr<State> state) : state_(std::move(state)) {}

EntryWriter::~EntryWriter() {
  if (state_->active) Abandon();
}

bool EntryWriter::active() const { return state_->active; }
int64_t EntryWriter::bytes_written() const { return state_->accepted_bytes; }
const std::string& EntryWriter::id() const { return state_->header.id; }
int EntryWriter::fd() const { return state_->active ? state_->fd : -1; }

void EntryWriter::Abandon() {
  State& s = *state_;
  if (!s.active) return;
  s.active = false;
  {
    std::lock_guard lock(s.mu);
    if (s.error.ok()) s.error = FailedPrecondition("cache: entry ", s.header.id, " abandoned");
  }
  (void)s.Drain();  // no queued write may touch the file once it is closed
  s.writer.reset();
  if (s.fd >= 0) {
    ::close(s.fd);
    s.fd = -1;
  }
  if (::unlink(s.temp_path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("cache: removing {}: {}", s.temp_path, ErrnoMessage(errno));
  }
  if (auto cache = s.cache.lock()) cache->Abandoned(s.header.key_digest);
}

Status EntryWriter::Fail(Status status) {
  // A failing disk is worth a warning; an entry over its size limit is routine.
  if (status.code() == StatusCode::kResourceExhausted) {
    spdlog::info("cache: abandoning entry {}: {}", state_->header.id,
                 std::string(status.message()));
  } else {
    spdlog::warn("cache: abandoning entry {}: {}", state_->header.id,
                 std::string(status.message()));
  }
  Abandon();
  return status;
}

Status EntryWriter::CheckRoom(int64_t size) {
  State& s = *state_;
  // The end-of-stream marker (8 bytes) must fit too; the footer is checked at Commit.
  if (s.accepted_bytes + size + 8 > s.limit) {
    return Fail(
        ResourceExhausted("cache: entry ", s.header.id, " would exceed ", s.limit, " bytes"));
  }
  if (s.cache.expired()) {
    return Fail(FailedPrecondition("cache: entry ", s.header.id, ": the cache was closed"));
  }
  return OkStatus();
}

Result<ipc::ByteRange> EntryWriter::Append(const ipc::EncodedMessage& message) {
  State& s = *state_;
  if (!s.active) return FailedPrecondition("cache: entry ", s.header.id, " is no longer written");
  if (message.type == ipc::MessageType::kSchema) return ipc::ByteRange{};
  const int64_t size = message.total_size();
  BRIDGE_RETURN_NOT_OK(CheckRoom(size));
  if (Status queued = s.Drain(); !queued.ok()) return Fail(std::move(queued));
  // Nothing is queued: the caller's thread owns the file now.
  Result<int64_t> offset = s.AppendToFile(message);
  if (!offset.ok()) return Fail(WithContext(offset.status(), StrCat("cache: entry ", s.header.id)));
  s.accepted_bytes += size;
  return ipc::ByteRange{*offset, size};
}

Status EntryWriter::Write(const ipc::EncodedMessage& message) {
  State& s = *state_;
  if (!s.active) return FailedPrecondition("cache: entry ", s.header.id, " is no longer written");
  if (message.type == ipc::MessageType::kSchema) return OkStatus();
  const int64_t size = message.total_size();
  BRIDGE_RETURN_NOT_OK(CheckRoom(size));
  auto cache = s.cache.lock();
  if (cache == nullptr) {
    return Fail(FailedPrecondition("cache: entry ", s.header.id, ": the cache was closed"));
  }
  {
    // A write that failed stops the entry here; a slow disk makes the caller wait rather
    // than pin more than max_queued_bytes of its batches.
    std::unique_lock lock(s.mu);
    s.changed.wait(lock, [&] {
      return !s.error.ok() || s.queued_bytes == 0 || s.queued_bytes + size <= s.max_queued_bytes;
    });
    if (!s.error.ok()) {
      Status error = s.error;
      lock.unlock();
      return Fail(std::move(error));
    }
    ++s.pending;
    s.queued_bytes += size;
  }
  s.accepted_bytes += size;
  // The copy shares the body's buffers (keep_alive pins them); only the metadata is copied.
  cache->write_queue().Push([state = state_, queued = message] { state->WriteQueued(queued); });
  return OkStatus();
}

Result<std::shared_ptr<const Entry>> EntryWriter::Commit() {
  State& s = *state_;
  if (!s.active) return FailedPrecondition("cache: entry ", s.header.id, " is no longer written");
  auto cache = s.cache.lock();
  if (cache == nullptr) {
    Abandon();
    return FailedPrecondition("cache: entry ", s.header.id, ": the cache was closed");
  }
  if (Status written = s.Drain(); !written.ok()) return Fail(std::move(written));
  // The checksums are taken from the file now, not while the result streamed: Commit runs
  // after the response, and hashing beside it slowed the first client by ~0.15 s per GB on
  // a machine whose cores the query, the encoder and the client already use.
  if (Status summed = ChecksumMessages(s.fd, s.temp_path, s.header.messages); !summed.ok()) {
    return Fail(std::move(summed));
  }
  const int64_t end_of_messages = s.writer->bytes_written();
  // The stream section: after the 8-byte magic, through the end-of-stream marker (8 bytes).
  s.header.stream = ipc::ByteRange{8, end_of_messages - 8 + 8};
  s.header.created_ms = cache->NowMs();
  Result<ipc::KeyValueMetadata> metadata = internal::EncodeHeader(s.header);
  if (!metadata.ok()) return Fail(metadata.status());
  Status status = s.writer->Close(std::move(*metadata));
  if (!status.ok()) return Fail(WithContext(status, StrCat("cache: entry ", s.header.id)));
  const ipc::ByteRange written = s.writer->stream_range();
  if (written.offset != s.header.stream.offset || written.length != s.header.stream.length) {
    return Fail(Internal("cache: entry ", s.header.id, ": stream section ", written.offset, "+",
                         written.length, " is not where the header says"));
  }
  const int64_t file_size = s.writer->bytes_written();
  if (file_size > s.limit) {
    return Fail(ResourceExhausted("cache: entry ", s.header.id, " of ", file_size,
                                  " bytes exceeds ", s.limit));
  }
  if (s.sync && ::fsync(s.fd) != 0) {
    return Fail(IoError("cache: fsync of ", s.temp_path, ": ", ErrnoMessage(errno)));
  }
  // The entry keeps a read-only descriptor; the writable one is closed.
  const int read_fd = ::open(s.temp_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (read_fd < 0) {
    return Fail(IoError("cache: reopening ", s.temp_path, ": ", ErrnoMessage(errno)));
  }
  if (::rename(s.temp_path.c_str(), s.final_path.c_str()) != 0) {
    const int error = errno;
    ::close(read_fd);
    return Fail(IoError("cache: renaming ", s.temp_path, ": ", ErrnoMessage(error)));
  }
  s.active = false;
  s.writer.reset();
  ::close(s.fd);
  s.fd = -1;
  if (s.sync) {
    if (Status synced = SyncFolder(s.dir); !synced.ok()) {
      ::close(read_fd);
      ::unlink(s.final_path.c_str());
      cache->Abandoned(s.header.key_digest);
      return synced;
    }
  }
  return cache->Committed(std::move(s.header), s.final_path, read_fd, file_size);
}

// ---------------------------------------------------------------------------------------
// Cache::BeginWrite

Result<std::unique_ptr<EntryWriter>> Cache::BeginWrite(const CacheKey& key,
                                                       const ArrowSchema& schema,
                                                       ipc::EncodeOptions options) {
  const KeyDigest digest = DigestKey(key);
  BRIDGE_ASSIGN_OR_RETURN(std::string id, internal::NewEntryId());
  if (!state_->BeginWriting(digest.full)) {
    return AlreadyExists("cache: an entry for this key is already being written");
  }
  auto s = std::make_shared<EntryWriter::State>();
  s->cache = state_;
  s->header.id = id;
  s->header.key_digest = digest.full;
  s->header.query_digest = digest.query;
  s->header.tables = key.tables;
  s->header.codec = options.codec;
  s->header.flags =
      options.codec == ipc::Codec::kNone ? internal::kFlagUncompressed : internal::kFlagCompressed;
  const CacheOptions& cache_options = state_->options();
  s->dir = cache_options.dir;
  s->temp_path = (cache_options.dir / (id + std::string(internal::kTempSuffix))).string();
  s->final_path = (cache_options.dir / (id + std::string(internal::kEntrySuffix))).string();
  s->limit = std::min(cache_options.max_bytes, cache_options.max_entry_bytes);
  s->sync = cache_options.sync;
  s->max_queued_bytes = cache_options.max_queued_bytes;
  // From here on, the writer's destructor (on any error return) removes the temporary file
  // and the reservation.
  std::unique_ptr<EntryWriter> writer(new EntryWriter(std::move(s)));
  EntryWriter::State& st = *writer->state_;
  // Read and write: Commit reads the messages back for their checksums.
  st.fd = ::open(st.temp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (st.fd < 0) {
    return IoError("cache: creating ", st.temp_path, ": ", ErrnoMessage(errno));
  }
  st.sink = std::make_unique<ipc::FileDescriptorSink>(st.fd);
  options.file_format = true;
  BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage schema_message,
                          ipc::EncodeSchemaMessage(schema, options));
  BRIDGE_ASSIGN_OR_RETURN(st.writer, ipc::FileWriter::Make(st.sink.get(), schema, options));
  // The writer wrote the magic (8 bytes) and the same schema message.
  if (st.writer->bytes_written() != 8 + schema_message.total_size()) {
    return Internal("cache: the file writer's schema message is not the encoder's");
  }
  st.accepted_bytes = st.writer->bytes_written();
  const std::string_view flatbuffer = schema_message.flatbuffer();
  st.header.schema_hash =
      internal::Xxh3({reinterpret_cast<const uint8_t*>(flatbuffer.data()), flatbuffer.size()});
  st.header.messages.push_back(CachedMessage{
      ipc::MessageType::kSchema, 8, static_cast<int64_t>(schema_message.metadata.size()),
      static_cast<int64_t>(schema_message.flatbuffer_size), 0, 0});  // summed at Commit
  return writer;
}

}  // namespace bridge::cache
