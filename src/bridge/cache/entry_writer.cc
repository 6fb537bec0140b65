// EntryWriter: tees encoded messages into a temporary IPC file and commits it atomically.
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "bridge/cache/cache.h"
#include "bridge/cache/cache_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::cache {
namespace {

std::string ErrnoMessage(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// XXH3-64 of a message's metadata and body segments, as they lie one after the other.
uint64_t MessageChecksum(const ipc::EncodedMessage& message) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, message.metadata.data(), message.metadata.size());
  for (const ipc::Segment& s : message.body) XXH3_64bits_update(state, s.data, s.size);
  const uint64_t out = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return out;
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

struct EntryWriter::State {
  std::weak_ptr<internal::CacheState> cache;
  internal::EntryHeader header;  // filled as messages are written
  std::filesystem::path dir;
  std::string temp_path;
  std::string final_path;
  int64_t limit = 0;  // largest file size
  bool sync = true;
  int fd = -1;
  std::unique_ptr<ipc::FileDescriptorSink> sink;
  std::unique_ptr<ipc::FileWriter> writer;
  bool active = true;

  ~State() {
    if (fd >= 0) ::close(fd);
  }
};

EntryWriter::EntryWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}

EntryWriter::~EntryWriter() {
  if (state_->active) Abandon();
}

bool EntryWriter::active() const { return state_->active; }
int64_t EntryWriter::bytes_written() const {
  return state_->writer == nullptr ? 0 : state_->writer->bytes_written();
}
const std::string& EntryWriter::id() const { return state_->header.id; }

void EntryWriter::Abandon() {
  State& s = *state_;
  if (!s.active) return;
  s.active = false;
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

Status EntryWriter::Write(const ipc::EncodedMessage& message) {
  State& s = *state_;
  if (!s.active) return FailedPrecondition("cache: entry ", s.header.id, " is no longer written");
  if (message.type == ipc::MessageType::kSchema) return OkStatus();
  const int64_t offset = s.writer->bytes_written();
  // The end-of-stream marker (8 bytes) must fit too; the footer is checked at Commit.
  if (offset + message.total_size() + 8 > s.limit) {
    return Fail(
        ResourceExhausted("cache: entry ", s.header.id, " would exceed ", s.limit, " bytes"));
  }
  const uint64_t checksum = MessageChecksum(message);
  Status status = s.writer->WriteEncodedMessage(message);
  if (!status.ok()) return Fail(WithContext(status, StrCat("cache: entry ", s.header.id)));
  s.header.messages.push_back(
      CachedMessage{message.type, offset, static_cast<int64_t>(message.metadata.size()),
                    static_cast<int64_t>(message.flatbuffer_size), message.body_length, checksum});
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
  auto s = std::make_unique<EntryWriter::State>();
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
  // From here on, the writer's destructor (on any error return) removes the temporary file
  // and the reservation.
  std::unique_ptr<EntryWriter> writer(new EntryWriter(std::move(s)));
  EntryWriter::State& st = *writer->state_;
  st.fd = ::open(st.temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
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
  const std::string_view flatbuffer = schema_message.flatbuffer();
  st.header.schema_hash =
      internal::Xxh3({reinterpret_cast<const uint8_t*>(flatbuffer.data()), flatbuffer.size()});
  st.header.messages.push_back(CachedMessage{
      ipc::MessageType::kSchema, 8, static_cast<int64_t>(schema_message.metadata.size()),
      static_cast<int64_t>(schema_message.flatbuffer_size), 0, MessageChecksum(schema_message)});
  return writer;
}

}  // namespace bridge::cache
