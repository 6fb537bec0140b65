#include "bridge/catalog/catalog.h"

#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "bridge/catalog/inotify_watcher_internal.h"
#include "bridge/catalog/scan_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::catalog {
namespace {

namespace fs = std::filesystem;
using internal::TableSource;

// Returns DuckDB's message made fit for TableInfo::error: without the "LINE 1: <sql>" excerpt
// of the statement, and with paths relative to the data folder.
std::string CleanError(std::string_view message, const fs::path& data_dir) {
  std::string text(message);
  if (size_t line = text.find("\n\nLINE "); line != std::string::npos) text.resize(line);
  std::string prefix = data_dir.string() + "/";
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at)) {
    text.erase(at, prefix.size());
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

class CatalogImpl final : public Catalog {
 public:
  CatalogImpl(engine::Database& db, CatalogOptions options)
      : db_(db), options_(options), data_dir_(db.options().data_dir) {}

  ~CatalogImpl() override {
    stopping_.store(true);
    watcher_.reset();
  }

  Status StartWatcher() {
    auto refresh = [this] {
      auto changes = Refresh();
      if (!changes.ok()) spdlog::warn("{}", std::string(changes.status().message()));
    };
    BRIDGE_ASSIGN_OR_RETURN(
        watcher_, internal::DirectoryWatcher::Start(data_dir_, options_.debounce,
                                                    internal::IsIgnoredName, std::move(refresh)));
    return OkStatus();
  }

  std::vector<TableInfo> Tables() const override {
    std::shared_lock lock(mu_);
    std::vector<TableInfo> out;
    out.reserve(tables_.size());
    for (const auto& [key, info] : tables_) out.push_back(info);
    return out;
  }

  std::optional<TableInfo> Table(std::string_view name) const override {
    std::shared_lock lock(mu_);
    auto it = tables_.find(internal::FoldCase(name));
    if (it == tables_.end()) return std::nullopt;
    return it->second;
  }

  uint64_t version() const override {
    std::shared_lock lock(mu_);
    return version_;
  }

  Result<std::vector<TableChange>> Refresh() override;

  void SetListener(std::function<void(const std::vector<TableChange>&)> listener) override {
    std::lock_guard lock(listener_mu_);
    listener_ = std::move(listener);
  }

 private:
  // Creates the view of `source` (or drops it when the table is broken) and returns the
  // table's description, version not set.
  TableInfo Materialize(const TableSource& source);
  void DropView(const std::string& name);
  // Stores `info` under `key` as a new version and returns that version.
  uint64_t Publish(const std::string& key, TableInfo info);

  engine::Database& db_;
  const CatalogOptions options_;
  const fs::path data_dir_;
  std::atomic<bool> stopping_{false};

  std::mutex refresh_mu_;                       // serializes refreshes; guards sources_
  std::map<std::string, TableSource> sources_;  // by folded name: the last scan

  mutable std::shared_mutex mu_;             // guards tables_ and version_
  std::map<std::string, TableInfo> tables_;  // by folded name
  uint64_t version_ = 0;

  std::mutex listener_mu_;
  std::function<void(const std::vector<TableChange>&)> listener_;

  std::unique_ptr<internal::DirectoryWatcher> watcher_;
};

void CatalogImpl::DropView(const std::string& name) {
  Status st = db_.ExecuteTrusted("DROP VIEW IF EXISTS " + engine::QuoteIdentifier(name));
  if (!st.ok()) spdlog::warn("catalog: dropping view '{}': {}", name, std::string(st.message()));
}

namespace {

// FNV-1a, 64 bits.
void HashInto(uint64_t& h, const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= bytes[i];
    h *= 1099511628211ULL;
  }
}

uint64_t Fingerprint(const fs::path& data_dir, const TableSource& source) {
  uint64_t h = 14695981039346656037ULL;
  const std::string dir = data_dir.string();
  HashInto(h, dir.data(), dir.size() + 1);
  for (const auto& file : source.files) {
    HashInto(h, file.path.data(), file.path.size() + 1);
    HashInto(h, &file.size, sizeof(file.size));
    HashInto(h, &file.mtime_ns, sizeof(file.mtime_ns));
    HashInto(h, &file.inode, sizeof(file.inode));
  }
  return h;
}

}  // namespace

TableInfo CatalogImpl::Materialize(const TableSource& source) {
  TableInfo info;
  info.fingerprint = Fingerprint(data_dir_, source);
  info.name = source.name;
  info.path = source.paths.front();
  if (source.reader) info.format = std::string(internal::FormatName(*source.reader));
  info.file_count = static_cast<int64_t>(source.files.size());
  for (const auto& file : source.files) info.bytes += file.size;
  if (!source.error.empty() || !source.reader) {
    info.error = source.error.empty() ? "no format" : source.error;
    DropView(source.name);
    return info;
  }
  auto fail = [&](const Status& st) {
    info.error = CleanError(std::string(st.message()), data_dir_);
    info.columns.clear();
    DropView(source.name);
    return info;
  };
  std::string view = engine::QuoteIdentifier(source.name);
  Status created = db_.ExecuteTrusted(StrCat("CREATE OR REPLACE VIEW ", view, " AS SELECT * FROM ",
                                             internal::ReaderCall(data_dir_, source)));
  if (!created.ok()) return fail(created);
  if (!options_.describe) return info;
  auto described = db_.QueryTrusted("DESCRIBE " + view);
  if (!described.ok()) return fail(described.status());
  for (const auto& row : described->rows) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    info.columns.push_back({*row[0], *row[1]});
  }
  if (*source.reader == internal::Reader::kParquet) {
    auto counted =
        db_.QueryTrusted(StrCat("SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(",
                                internal::SourceArgument(data_dir_, source), ")"));
    if (counted.ok() && counted->rows.size() == 1 && !counted->rows[0].empty() &&
        counted->rows[0][0]) {
      info.rows = std::stoll(*counted->rows[0][0]);
    } else if (!counted.ok()) {
      spdlog::debug("catalog: table '{}': no row count: {}", source.name,
                    std::string(counted.status().message()));
    }
  }
  return info;
}

uint64_t CatalogImpl::Publish(const std::string& key, TableInfo info) {
  std::unique_lock lock(mu_);
  info.version = ++version_;
  tables_[key] = std::move(info);
  return version_;
}

Result<std::vector<TableChange>> CatalogImpl::Refresh() {
  std::lock_guard refresh_lock(refresh_mu_);
  BRIDGE_ASSIGN_OR_RETURN(auto scanned, internal::ScanDataFolder(data_dir_));
  if (options_.include) {
    std::erase_if(scanned,
                  [this](const auto& entry) { return !options_.include(entry.second.name); });
  }
  std::vector<TableChange> changes;

  for (auto it = sources_.begin(); it != sources_.end() && !stopping_.load();) {
    if (scanned.contains(it->first)) {
      ++it;
      continue;
    }
    std::string name = it->second.name;
    DropView(name);
    uint64_t version;
    {
      std::unique_lock lock(mu_);
      tables_.erase(it->first);
      version = ++version_;
    }
    spdlog::info("catalog: table '{}' removed", name);
    changes.push_back({ChangeKind::kRemoved, name, version, ""});
    it = sources_.erase(it);
  }

  for (auto& [key, source] : scanned) {
    if (stopping_.load()) break;
    auto known = sources_.find(key);
    bool is_new = known == sources_.end();
    std::optional<TableInfo> before;
    if (!is_new) {
      before = Table(key);
      // Same files: nothing to do, unless DuckDB failed to read them last time (retried, as
      // the failure may have been transient, e.g. a file caught half-written).
      bool failed_in_duckdb = before && !before->error.empty() && source.error.empty();
      if (known->second == source && !failed_in_duckdb) continue;
    }
    bool files_changed = is_new || !(known->second == source);
    TableInfo info = Materialize(source);
    sources_[key] = source;
    if (!files_changed && before) {
      TableInfo previous = *before;
      previous.version = 0;
      if (previous == info) continue;  // retried, and still failing the same way
    }
    uint64_t version = Publish(key, info);
    ChangeKind kind = is_new ? ChangeKind::kAdded : ChangeKind::kChanged;
    if (info.error.empty()) {
      spdlog::info("catalog: table '{}' {} ({} columns, {} files)", info.name, ChangeKindName(kind),
                   info.columns.size(), info.file_count);
    } else {
      spdlog::warn("catalog: table '{}' {}, broken: {}", info.name, ChangeKindName(kind),
                   info.error);
    }
    changes.push_back({kind, info.name, version, info.error});
  }

  if (!changes.empty()) {
    std::function<void(const std::vector<TableChange>&)> listener;
    {
      std::lock_guard lock(listener_mu_);
      listener = listener_;
    }
    if (listener) listener(changes);
  }
  return changes;
}

}  // namespace

std::string_view ChangeKindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kChanged:
      return "changed";
    case ChangeKind::kRemoved:
      return "removed";
  }
  return "unknown";
}

Result<std::unique_ptr<Catalog>> Catalog::Open(engine::Database& db, CatalogOptions options) {
  if (options.debounce.count() < 0) {
    return InvalidArgument("catalog: debounce must be >= 0, got ", options.debounce.count(), " ms");
  }
  auto catalog = std::make_unique<CatalogImpl>(db, options);
  // The watcher starts first so that nothing written during the first scan is missed.
  if (options.watch) BRIDGE_RETURN_NOT_OK(catalog->StartWatcher());
  BRIDGE_RETURN_NOT_OK(catalog->Refresh());
  std::vector<TableInfo> tables = catalog->Tables();
  size_t broken = 0;
  for (const auto& table : tables) broken += table.error.empty() ? 0 : 1;
  spdlog::info("catalog: {} tables ({} broken) in {}{}", tables.size(), broken,
               db.options().data_dir.string(), options.watch ? ", watching for changes" : "");
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace bridge::catalog
