// Cache and CacheState: the folder, its lock, the index, LRU, TTL and invalidation.
#include "bridge/cache/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>
#include <utility>

#include "bridge/cache/cache_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::cache {
namespace internal {
namespace {

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

Status MapPath(const std::string& path, MappedFile& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cache: opening ", path, ": ", ErrnoMessage(errno));
  return MapDescriptor(fd, path, out);
}

void RemoveFile(const std::string& path, std::string_view why) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("cache: removing {} ({}): {}", path, std::string(why), ErrnoMessage(errno));
  }
}

}  // namespace

MappedFile::~MappedFile() {
  if (data != nullptr) ::munmap(const_cast<uint8_t*>(data), size);
  if (fd >= 0) ::close(fd);
}

Status MapDescriptor(int fd, const std::string& path, MappedFile& out) {
  out.fd = fd;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return IoError("cache: stat of ", path, ": ", ErrnoMessage(errno));
  }
  if (st.st_size <= 0) return InvalidArgument("cache: ", path, " is empty");
  void* data = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    return IoError("cache: mapping ", path, ": ", ErrnoMessage(errno));
  }
  out.data = static_cast<const uint8_t*>(data);
  out.size = static_cast<size_t>(st.st_size);
  return OkStatus();
}

// Holds mu_; on release drops what the locked code left in dead_entries_ and dead_files_,
// after unlocking.
class CacheState::Locked {
 public:
  explicit Locked(CacheState& state) : state_(state), lock_(state.mu_) {}
  ~Locked() {
    std::vector<std::shared_ptr<const Entry>> entries;
    std::vector<std::pair<std::string, std::string>> files;
    entries.swap(state_.dead_entries_);
    files.swap(state_.dead_files_);
    lock_.unlock();
    entries.clear();
    for (const auto& [path, why] : files) RemoveFile(path, why);
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;

 private:
  CacheState& state_;
  std::unique_lock<std::mutex> lock_;
};

CacheState::CacheState(CacheOptions options, int lock_fd)
    : options_(std::move(options)), lock_fd_(lock_fd) {}

CacheState::~CacheState() {
  write_queue_.Stop();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

int64_t CacheState::NowMs() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status CacheState::Scan() {
  std::error_code ec;
  std::vector<std::shared_ptr<EntryRecord>> found;
  for (auto it = std::filesystem::directory_iterator(options_.dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string path = it->path().string();
    if (EndsWith(name, kTempSuffix)) {
      spdlog::info("cache: removing unfinished {}", path);
      RemoveFile(path, "unfinished");
      continue;
    }
    if (!EndsWith(name, kEntrySuffix)) continue;
    const std::string_view stem =
        std::string_view(name).substr(0, name.size() - kEntrySuffix.size());
    MappedFile file;
    Status status = IsEntryId(stem) ? MapPath(path, file)
                                    : InvalidArgument("cache: '", name, "' is not an entry name");
    Result<EntryHeader> header =
        status.ok() ? ReadHeader(file.span()) : Result<EntryHeader>(status);
    if (header.ok() && header->id != stem) {
      header = InvalidArgument("cache: header id ", header->id, " is not the file name");
    }
    if (!header.ok()) {
      if (absl::IsUnavailable(header.status())) return header.status();
      spdlog::warn("cache: removing {}: {}", path, std::string(header.status().message()));
      RemoveFile(path, "torn or foreign");
      continue;
    }
    found.push_back(
        std::make_shared<EntryRecord>(std::move(*header), path, static_cast<int64_t>(file.size)));
  }
  if (ec) return IoError("cache: listing ", options_.dir.string(), ": ", ec.message());

  // Oldest first, so that the newest ends up most recently used and wins over an older
  // entry of the same query.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a->header.created_ms < b->header.created_ms;
  });
  Locked lock(*this);
  for (auto& record : found) {
    if (ExpiredLocked(*record)) {
      spdlog::info("cache: removing expired {}", record->path);
      dead_files_.emplace_back(record->path, "expired");
      ++stats_.evictions;
      continue;
    }
    if (auto old = by_query_.find(record->header.query_digest); old != by_query_.end()) {
      EvictLocked(std::string(old->second), "replaced by a newer entry");
    }
    InsertLocked(std::move(record));
  }
  EvictForBudgetLocked();
  return OkStatus();
}

void CacheState::InsertLocked(std::shared_ptr<EntryRecord> record) {
  const std::string id = record->header.id;
  by_query_[record->header.query_digest] = id;
  lru_.push_front(id);
  stats_.bytes += record->file_size;
  ++stats_.entries;
  by_id_[id] = Slot{std::move(record), {}, lru_.begin()};
}

void CacheState::EvictLocked(const std::string& id, std::string_view reason) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  const std::shared_ptr<EntryRecord> record = it->second.record;
  spdlog::debug("cache: evicting {} ({})", id, std::string(reason));
  if (auto q = by_query_.find(record->header.query_digest);
      q != by_query_.end() && q->second == id) {
    by_query_.erase(q);
  }
  lru_.erase(it->second.lru);
  by_id_.erase(it);
  for (auto w = warm_.begin(); w != warm_.end();) {
    if ((*w)->id() == id) {
      dead_entries_.push_back(std::move(*w));
      w = warm_.erase(w);
    } else {
      ++w;
    }
  }
  stats_.bytes -= record->file_size;
  --stats_.entries;
  ++stats_.evictions;
  // An entry still pinned keeps its descriptor and mapping: unlinking only drops the name.
  dead_files_.emplace_back(record->path, reason);
}

void CacheState::EvictForBudgetLocked() {
  while (stats_.bytes > options_.max_bytes && !lru_.empty()) {
    EvictLocked(std::string(lru_.back()), "over the byte budget");
  }
}

bool CacheState::ExpiredLocked(const EntryRecord& record) const {
  return options_.ttl.count() > 0 && NowMs() - record.header.created_ms >= options_.ttl.count();
}

void CacheState::TouchLocked(Slot& slot) { lru_.splice(lru_.begin(), lru_, slot.lru); }

void CacheState::KeepWarmLocked(const std::shared_ptr<const Entry>& entry) {
  auto it = std::find(warm_.begin(), warm_.end(), entry);
  if (it != warm_.end()) {
    warm_.splice(warm_.begin(), warm_, it);
    return;
  }
  warm_.push_front(entry);
  if (warm_.size() > kWarmEntries) {
    dead_entries_.push_back(std::move(warm_.back()));
    warm_.pop_back();
  }
}

std::shared_ptr<const Entry> CacheState::MakeEntry(std::shared_ptr<EntryRecord> record, int fd,
                                                   const uint8_t* data, size_t size) {
  return std::shared_ptr<const Entry>(
      new Entry(std::move(record), fd, std::span<const uint8_t>(data, size), weak_from_this()));
}

std::shared_ptr<const Entry> CacheState::PinLocked(Slot& slot) {
  if (auto entry = slot.open.lock()) return entry;
  MappedFile file;
  Status status = MapPath(slot.record->path, file);
  if (status.ok() && static_cast<int64_t>(file.size) != slot.record->file_size) {
    status = InvalidArgument("cache: ", slot.record->path, " changed size from ",
                             slot.record->file_size, " to ", file.size);
  }
  if (!status.ok()) {
    spdlog::warn("{}", std::string(status.message()));
    return nullptr;
  }
  auto entry = MakeEntry(slot.record, file.fd, file.data, file.size);
  file.fd = -1;  // owned by the entry now
  file.data = nullptr;
  slot.open = entry;
  KeepWarmLocked(entry);
  return entry;
}

std::shared_ptr<const Entry> CacheState::Lookup(const CacheKey& key) {
  const KeyDigest digest = DigestKey(key);
  Locked lock(*this);
  auto q = by_query_.find(digest.query);
  if (q == by_query_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  const std::string id = q->second;
  Slot& slot = by_id_.at(id);
  std::shared_ptr<const Entry> entry;
  if (slot.record->header.key_digest != digest.full) {
    EvictLocked(id, "written at other table versions");
  } else if (ExpiredLocked(*slot.record)) {
    EvictLocked(id, "expired");
  } else if (entry = PinLocked(slot); entry == nullptr) {
    EvictLocked(id, "cannot be opened");
  }
  if (entry == nullptr) {
    ++stats_.misses;
    return nullptr;
  }
  ++stats_.hits;
  TouchLocked(slot);
  KeepWarmLocked(entry);
  return entry;
}

std::shared_ptr<const Entry> CacheState::FindById(std::string_view id) {
  if (!IsEntryId(id)) return nullptr;
  Locked lock(*this);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return nullptr;
  if (ExpiredLocked(*it->second.record)) {
    EvictLocked(std::string(id), "expired");
    return nullptr;
  }
  auto entry = PinLocked(it->second);
  if (entry == nullptr) {
    EvictLocked(std::string(id), "cannot be opened");
    return nullptr;
  }
  TouchLocked(it->second);
  return entry;
}

int64_t CacheState::Invalidate(std::string_view table) {
  Locked lock(*this);
  std::vector<std::string> ids;
  for (const auto& [id, slot] : by_id_) {
    for (const TableVersion& t : slot.record->header.tables) {
      if (t.name == table) {
        ids.push_back(id);
        break;
      }
    }
  }
  for (const std::string& id : ids) EvictLocked(id, "invalidated");
  return static_cast<int64_t>(ids.size());
}

bool CacheState::Remove(std::string_view id) {
  Locked lock(*this);
  if (by_id_.count(std::string(id)) == 0) return false;
  EvictLocked(std::string(id), "removed");
  return true;
}

int64_t CacheState::Clear() {
  Locked lock(*this);
  int64_t removed = 0;
  for (; !lru_.empty(); ++removed) EvictLocked(std::string(lru_.back()), "cleared");
  return removed;
}

CacheStats CacheState::stats() const {
  std::lock_guard lock(mu_);
  CacheStats out = stats_;
  out.bytes_verified = bytes_verified.load();
  return out;
}

bool CacheState::BeginWriting(const std::string& key_digest) {
  Locked lock(*this);
  return writing_.insert(key_digest).second;
}

void CacheState::Abandoned(const std::string& key_digest) {
  Locked lock(*this);
  writing_.erase(key_digest);
  ++stats_.writes_abandoned;
}

Result<std::shared_ptr<const Entry>> CacheState::Committed(EntryHeader header, std::string path,
                                                           int fd, int64_t file_size) {
  MappedFile file;
  Status status = MapDescriptor(fd, path, file);
  Locked lock(*this);
  writing_.erase(header.key_digest);
  if (!status.ok()) {
    ++stats_.writes_abandoned;
    dead_files_.emplace_back(path, "cannot be mapped");
    return status;
  }
  ++stats_.writes_committed;
  if (auto old = by_query_.find(header.query_digest); old != by_query_.end()) {
    EvictLocked(std::string(old->second), "replaced by a newer entry");
  }
  auto record = std::make_shared<EntryRecord>(std::move(header), std::move(path), file_size);
  const std::string id = record->header.id;
  InsertLocked(record);
  auto entry = MakeEntry(std::move(record), file.fd, file.data, file.size);
  file.fd = -1;
  file.data = nullptr;
  by_id_.at(id).open = entry;
  KeepWarmLocked(entry);
  EvictForBudgetLocked();
  return entry;
}

void CacheState::Corrupt(const EntryRecord& record) {
  Locked lock(*this);
  ++stats_.verify_failures;
  auto it = by_id_.find(record.header.id);
  if (it != by_id_.end() && it->second.record.get() == &record) {
    EvictLocked(record.header.id, "checksum mismatch");
  }
}

}  // namespace internal

// ---------------------------------------------------------------------------------------
// Cache

Result<std::unique_ptr<Cache>> Cache::Open(CacheOptions options) {
  if (options.dir.empty()) return InvalidArgument("cache: no folder given");
  if (options.max_bytes <= 0 || options.max_entry_bytes <= 0) {
    return InvalidArgument("cache: max_bytes and max_entry_bytes must be positive");
  }
  if (options.ttl.count() < 0) return InvalidArgument("cache: negative ttl");
  if (options.max_queued_bytes < 0) return InvalidArgument("cache: negative max_queued_bytes");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return IoError("cache: creating ", options.dir.string(), ": ", ec.message());
  const std::string lock_path = (options.dir / std::string(internal::kLockName)).string();
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    return IoError("cache: opening ", lock_path, ": ", ErrnoMessage(errno));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd);
    if (error == EWOULDBLOCK) {
      return FailedPrecondition("cache: ", options.dir.string(), " is in use (", lock_path,
                                " is locked)");
    }
    return IoError("cache: locking ", lock_path, ": ", ErrnoMessage(error));
  }
  auto state = std::make_shared<internal::CacheState>(std::move(options), lock_fd);
  BRIDGE_RETURN_NOT_OK(state->Scan());
  return std::unique_ptr<Cache>(new Cache(std::move(state)));
}

Cache::Cache(std::shared_ptr<internal::CacheState> state) : state_(std::move(state)) {}
Cache::~Cache() = default;

std::shared_ptr<const Entry> Cache::Lookup(const CacheKey& key) { return state_->Lookup(key); }
std::shared_ptr<const Entry> Cache::FindById(std::string_view id) { return state_->FindById(id); }
int64_t Cache::Invalidate(std::string_view table) { return state_->Invalidate(table); }
bool Cache::Remove(std::string_view id) { return state_->Remove(id); }
int64_t Cache::Clear() { return state_->Clear(); }
CacheStats Cache::stats() const { return state_->stats(); }
const CacheOptions& Cache::options() const { return state_->options(); }

}  // namespace bridge::cache
