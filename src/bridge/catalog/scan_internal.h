// Private to catalog/: the file-system scan that turns the data folder into table sources,
// the naming rules, and the DuckDB table-function call that reads each source.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"

namespace bridge::catalog::internal {

// How DuckDB reads a file, chosen by its extension.
enum class Reader {
  kParquet,  // .parquet
  kCsv,      // .csv
  kTsv,      // .tsv (CSV with tab delimiter)
  kJson,     // .json (format auto-detected: array or newline-delimited)
  kNdjson,   // .ndjson, .jsonl
};

// Returns the reader for a file called `file_name` (by its last extension, compared
// case-insensitively), or nullopt when it is not a data file.
std::optional<Reader> ReaderForFile(std::string_view file_name);

// Returns the TableInfo format of a reader: "parquet", "csv" or "json".
std::string_view FormatName(Reader reader);

// Returns the reader's own name: "parquet", "csv", "tsv", "json" or "ndjson".
std::string_view ReaderName(Reader reader);

// Returns true for names the catalog never reads nor watches: hidden (".x"), private or
// in-progress ("_x", like Spark's _SUCCESS and _temporary), temporary ("x.tmp") and editor
// backups ("x~").
bool IsIgnoredName(std::string_view name);

// Returns `stem` as an SQL identifier: every byte that is not [A-Za-z0-9_] becomes '_', a
// leading digit gets a '_' prefix, the empty string becomes "_". Case is kept.
std::string SanitizeName(std::string_view stem);

// Returns the table name of a top-level entry: its name without a data-file extension
// ("trips.parquet" and the folder "trips.parquet/" both give "trips"), sanitized.
std::string TableNameFor(std::string_view entry_name);

// Returns `name` with ASCII letters lower-cased: the key under which names collide, since
// DuckDB matches identifiers case-insensitively.
std::string FoldCase(std::string_view name);

// One data file, as the fingerprint of its table sees it.
struct FileStat {
  std::string path;  // relative to the data folder, '/'-separated
  int64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t inode = 0;

  bool operator==(const FileStat&) const = default;
};

// One table as found on disk. Two scans giving equal sources mean the table did not change.
struct TableSource {
  std::string name;                // sanitized SQL name
  std::vector<std::string> paths;  // top-level entries mapping to `name`; several = collision
  bool folder = false;
  std::optional<Reader> reader;  // unset for a collision or a folder mixing formats
  std::vector<FileStat> files;   // sorted by path
  // A glob over the folder would read files the scan skipped (hidden ones, symbolic links),
  // or the folder's path holds glob characters: the view lists the files instead.
  bool list_files = false;
  std::string error;  // a problem found by the scan (collision, mixed formats, unreadable)

  bool operator==(const TableSource&) const = default;
};

// Scans the top level of `data_dir` (absolute) and every sub-folder of table folders.
// Returns the sources keyed by FoldCase(name). Symbolic links, ignored names, files with no
// data extension and folders without data files are skipped. Returns IoError if `data_dir`
// itself cannot be listed; problems below it go to the affected table's error.
Result<std::map<std::string, TableSource>> ScanDataFolder(const std::filesystem::path& data_dir);

// Returns the DuckDB table-function call that reads `source` (which must have a reader),
// with absolute paths below `data_dir`: e.g.
// read_parquet('/data/trips/**/*.parquet', union_by_name=true, hive_partitioning=true).
std::string ReaderCall(const std::filesystem::path& data_dir, const TableSource& source);

// Returns the path argument of ReaderCall alone (one quoted path or glob, or a list).
std::string SourceArgument(const std::filesystem::path& data_dir, const TableSource& source);

}  // namespace bridge::catalog::internal
