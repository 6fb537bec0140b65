// The catalog: the tables of the data folder, as DuckDB views kept in step with the files.
//
// Each data file at the top of the data folder and each sub-folder of data files becomes one
// view (see README.md for the naming and refresh rules). A refresh compares every table's
// files (paths, sizes, modification times) with the last scan and re-creates only the views
// of tables that changed; every change bumps the catalog version. An optional inotify watcher
// refreshes by itself shortly after the folder changes, so a new, removed or rewritten file
// is visible to the next query without a restart.
//
// Thread safety: all methods may be called from any thread at the same time; refreshes are
// serialized. Lifetime: the Database given to Open must outlive the Catalog.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace bridge::catalog {

struct ColumnInfo {
  std::string name;
  std::string type;  // DuckDB type name ("BIGINT", "VARCHAR", "DECIMAL(2,1)", ...)

  bool operator==(const ColumnInfo&) const = default;
};

struct TableInfo {
  // SQL identifier of the view (sanitized from the file or folder name).
  std::string name;
  // File or folder the table reads, relative to the data folder. For a name collision, the
  // first of the colliding paths (all of them are named in `error`).
  std::filesystem::path path;
  // "parquet", "csv" (also .tsv) or "json" (also .ndjson / .jsonl); empty when the table has
  // no single format (a collision or a folder mixing formats).
  std::string format;
  // Columns of the view, in order; empty when the table is broken.
  std::vector<ColumnInfo> columns;
  int64_t file_count = 0;
  int64_t bytes = 0;  // sum of the files' sizes
  // Number of rows, for Parquet tables (from the files' metadata, without reading data).
  std::optional<int64_t> rows;
  // Catalog version at which this table last changed (counts from 1 in each process).
  uint64_t version = 0;
  // A 64-bit hash of what the table reads: the data folder's path and each file's path,
  // size, modification time and inode. Equal fingerprints mean the same data, also across
  // restarts (what the result cache keys on).
  uint64_t fingerprint = 0;
  // Non-empty when the table is broken: the reason (DuckDB's message for a file it cannot
  // read, or a naming/format problem). A broken table has no view.
  std::string error;

  bool operator==(const TableInfo&) const = default;
};

enum class ChangeKind { kAdded, kChanged, kRemoved };

struct TableChange {
  ChangeKind kind;
  std::string name;
  uint64_t version = 0;  // catalog version of this change
  std::string error;     // the table's error after the change (kAdded / kChanged)
};

struct CatalogOptions {
  // Watch the data folder with inotify and refresh after changes.
  bool watch = true;
  // The watcher refreshes once the folder has been quiet for this long after a change (and
  // at the latest 10 times this long after the first change, for files that keep growing).
  std::chrono::milliseconds debounce{200};
  // Tables to serve; null = all. A one-shot client (`bridge query`) passes the names its
  // SQL mentions, so views it cannot use cost nothing (binding a CSV or JSON view samples
  // the file). Filtered-out tables are not listed.
  std::function<bool(std::string_view name)> include;
  // Fill in TableInfo::columns and ::rows (a DESCRIBE and, for Parquet, a footer read per
  // table). Off for one-shot clients that only query.
  bool describe = true;
};

// The tables of one data folder. Create with Open.
class Catalog {
 public:
  virtual ~Catalog() = default;

  // Scans the data folder of `db` (db.options().data_dir) once, creates a view per table
  // and, with options.watch, starts the watcher thread. Broken tables do not fail Open (see
  // TableInfo::error). Returns IoError (kUnavailable) if the data folder cannot be listed
  // or watched, InvalidArgument for a negative debounce.
  static Result<std::unique_ptr<Catalog>> Open(engine::Database& db, CatalogOptions options = {});

  // Returns every table, broken ones included, sorted by name (case-insensitively).
  virtual std::vector<TableInfo> Tables() const = 0;

  // Returns the table called `name` (matched case-insensitively, as SQL does), if any.
  virtual std::optional<TableInfo> Table(std::string_view name) const = 0;

  // Returns the catalog version: 0 for an empty folder, plus one for every table change
  // since Open (the initial tables count as added).
  virtual uint64_t version() const = 0;

  // Rescans the data folder now, re-creates the views of changed tables, drops the views of
  // removed ones, and returns the changes (empty if nothing changed). Tables that were broken
  // when DuckDB read them are retried. Returns IoError if the data folder cannot be listed
  // (the catalog then keeps its previous state).
  virtual Result<std::vector<TableChange>> Refresh() = 0;

  // Sets the function called with the changes of every refresh that changed something, on
  // the thread that ran the refresh (the watcher thread, or the caller of Refresh). It may
  // call Tables(), Table(), version() and SetListener(), but not Refresh(). An empty
  // function removes the listener.
  virtual void SetListener(std::function<void(const std::vector<TableChange>&)> listener) = 0;
};

// Returns "added", "changed" or "removed".
std::string_view ChangeKindName(ChangeKind kind);

}  // namespace bridge::catalog
