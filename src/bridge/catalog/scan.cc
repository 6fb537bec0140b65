#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <system_error>

#include "bridge/catalog/scan_internal.h"
#include "bridge/engine/engine.h"
#include "spdlog/spdlog.h"

namespace bridge::catalog::internal {
namespace {

namespace fs = std::filesystem;

// Folders nested deeper than this below a table folder are not read (a guard, not a limit
// anyone should meet: the scan never follows symbolic links, so it cannot loop).
constexpr int kMaxDepth = 64;

struct Extension {
  std::string_view suffix;
  Reader reader;
};
constexpr Extension kExtensions[] = {
    {".parquet", Reader::kParquet}, {".csv", Reader::kCsv},       {".tsv", Reader::kTsv},
    {".json", Reader::kJson},       {".ndjson", Reader::kNdjson}, {".jsonl", Reader::kNdjson},
};

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EndsWithNoCase(std::string_view text, std::string_view suffix) {
  if (text.size() < suffix.size()) return false;
  std::string_view tail = text.substr(text.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(),
                    [](char a, char b) { return Lower(a) == Lower(b); });
}

// Returns the data extension `name` ends with, as written in the name (".PARQUET").
std::string_view DataExtension(std::string_view name) {
  for (const Extension& ext : kExtensions) {
    if (name.size() > ext.suffix.size() && EndsWithNoCase(name, ext.suffix)) {
      return name.substr(name.size() - ext.suffix.size());
    }
  }
  return {};
}

// Returns the stat of a regular file, or nullopt if it is gone or not a regular file.
std::optional<FileStat> StatFile(const fs::path& absolute, std::string relative) {
  struct stat st {};
  if (::lstat(absolute.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  FileStat file;
  file.path = std::move(relative);
  file.size = static_cast<int64_t>(st.st_size);
  file.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  file.inode = static_cast<uint64_t>(st.st_ino);
  return file;
}

// Returns the names in `dir`, sorted, or the error that prevented listing it.
Result<std::vector<std::string>> ListNames(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  std::vector<std::string> names;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return IoError(ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// What the walk of one table folder found.
struct FolderWalk {
  std::vector<FileStat> files;
  std::map<Reader, std::string> first_file_of;  // an example file per reader seen
  bool skipped_glob_matches = false;  // skipped entries that a glob of the folder could match
  std::string error;
};

void WalkFolder(const fs::path& data_dir, const std::string& relative, int depth,
                FolderWalk& walk) {
  if (depth > kMaxDepth) {
    if (walk.error.empty()) walk.error = StrCat("folders nested deeper than ", kMaxDepth);
    return;
  }
  fs::path absolute = data_dir / relative;
  auto names = ListNames(absolute);
  if (!names.ok()) {
    // A folder removed while we scan is simply gone; anything else breaks the table.
    std::error_code ec;
    if (fs::exists(absolute, ec) && walk.error.empty()) {
      walk.error = StrCat("cannot list '", relative, "': ", std::string(names.status().message()));
    }
    return;
  }
  for (const std::string& name : *names) {
    std::string child = StrCat(relative, "/", name);
    fs::path child_abs = data_dir / child;
    struct stat st {};
    if (::lstat(child_abs.c_str(), &st) != 0) continue;  // removed meanwhile
    bool is_dir = S_ISDIR(st.st_mode);
    if (IsIgnoredName(name) || S_ISLNK(st.st_mode)) {
      // DuckDB's glob lists hidden files and follows links, so a glob over this folder
      // would read what we skip.
      if (is_dir || S_ISLNK(st.st_mode) || !DataExtension(name).empty()) {
        walk.skipped_glob_matches = true;
      }
      continue;
    }
    if (is_dir) {
      WalkFolder(data_dir, child, depth + 1, walk);
      continue;
    }
    if (!S_ISREG(st.st_mode)) continue;  // fifos, sockets, devices
    std::optional<Reader> reader = ReaderForFile(name);
    if (!reader) continue;
    std::optional<FileStat> file = StatFile(child_abs, child);
    if (!file) continue;
    walk.files.push_back(std::move(*file));
    walk.first_file_of.emplace(*reader, child);
  }
}

bool HasGlobCharacters(std::string_view path) {
  return path.find_first_of("*?[]{}\\") != std::string_view::npos;
}

std::optional<TableSource> ScanFolder(const fs::path& data_dir, const std::string& name) {
  FolderWalk walk;
  WalkFolder(data_dir, name, 0, walk);
  if (walk.files.empty() && walk.error.empty()) return std::nullopt;  // not a table (yet)
  TableSource source;
  source.name = TableNameFor(name);
  source.paths = {name};
  source.folder = true;
  std::sort(walk.files.begin(), walk.files.end(),
            [](const FileStat& a, const FileStat& b) { return a.path < b.path; });
  source.files = std::move(walk.files);
  source.list_files = walk.skipped_glob_matches || HasGlobCharacters((data_dir / name).string());
  source.error = std::move(walk.error);
  if (walk.first_file_of.size() == 1) {
    source.reader = walk.first_file_of.begin()->first;
  } else if (walk.first_file_of.size() > 1 && source.error.empty()) {
    std::string kinds;
    for (const auto& [reader, example] : walk.first_file_of) {
      kinds += StrCat(kinds.empty() ? "" : ", ", ReaderName(reader), " (", example, ")");
    }
    source.error = StrCat("folder '", name, "' mixes formats: ", kinds,
                          "; a table folder must hold one format");
  }
  return source;
}

std::string JoinPaths(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += StrCat(out.empty() ? "" : ", ", p);
  return out;
}

}  // namespace

std::optional<Reader> ReaderForFile(std::string_view file_name) {
  for (const Extension& ext : kExtensions) {
    if (file_name.size() > ext.suffix.size() && EndsWithNoCase(file_name, ext.suffix)) {
      return ext.reader;
    }
  }
  return std::nullopt;
}

std::string_view FormatName(Reader reader) {
  switch (reader) {
    case Reader::kParquet:
      return "parquet";
    case Reader::kCsv:
    case Reader::kTsv:
      return "csv";
    case Reader::kJson:
    case Reader::kNdjson:
      return "json";
  }
  return "unknown";
}

std::string_view ReaderName(Reader reader) {
  switch (reader) {
    case Reader::kParquet:
      return "parquet";
    case Reader::kCsv:
      return "csv";
    case Reader::kTsv:
      return "tsv";
    case Reader::kJson:
      return "json";
    case Reader::kNdjson:
      return "ndjson";
  }
  return "unknown";
}

bool IsIgnoredName(std::string_view name) {
  return name.empty() || name[0] == '.' || name[0] == '_' || name.back() == '~' ||
         EndsWithNoCase(name, ".tmp");
}

std::string SanitizeName(std::string_view stem) {
  std::string out;
  out.reserve(stem.size() + 1);
  for (char c : stem) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

std::string TableNameFor(std::string_view entry_name) {
  std::string_view ext = DataExtension(entry_name);
  return SanitizeName(entry_name.substr(0, entry_name.size() - ext.size()));
}

std::string FoldCase(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = Lower(c);
  return out;
}

Result<std::map<std::string, TableSource>> ScanDataFolder(const fs::path& data_dir) {
  auto names = ListNames(data_dir);
  if (!names.ok()) {
    return IoError("catalog: cannot list the data folder '", data_dir.string(),
                   "': ", std::string(names.status().message()));
  }
  // Every candidate per folded name; more than one is a collision.
  std::map<std::string, std::vector<TableSource>> candidates;
  for (const std::string& name : *names) {
    if (IsIgnoredName(name)) continue;
    fs::path absolute = data_dir / name;
    struct stat st {};
    if (::lstat(absolute.c_str(), &st) != 0) continue;  // removed meanwhile
    std::optional<TableSource> source;
    if (S_ISDIR(st.st_mode)) {
      source = ScanFolder(data_dir, name);
    } else if (S_ISREG(st.st_mode)) {
      std::optional<Reader> reader = ReaderForFile(name);
      if (!reader) continue;
      std::optional<FileStat> file = StatFile(absolute, name);
      if (!file) continue;
      source.emplace();
      source->name = TableNameFor(name);
      source->paths = {name};
      source->reader = reader;
      source->files = {std::move(*file)};
    } else if (S_ISLNK(st.st_mode)) {
      spdlog::debug("catalog: skipping symbolic link '{}'", name);
    }
    if (source) candidates[FoldCase(source->name)].push_back(std::move(*source));
  }

  std::map<std::string, TableSource> sources;
  for (auto& [key, group] : candidates) {
    if (group.size() == 1) {
      sources.emplace(key, std::move(group.front()));
      continue;
    }
    TableSource collision;
    collision.name = group.front().name;
    for (TableSource& s : group) {
      collision.paths.push_back(s.paths.front());
      for (FileStat& f : s.files) collision.files.push_back(std::move(f));
    }
    collision.error =
        StrCat("name collision: ", JoinPaths(collision.paths), " all map to table name '",
               collision.name, "' (names are compared case-insensitively); rename all but one");
    sources.emplace(key, std::move(collision));
  }
  return sources;
}

std::string SourceArgument(const fs::path& data_dir, const TableSource& source) {
  std::vector<std::string> paths;
  if (!source.folder) {
    paths.push_back((data_dir / source.paths.front()).string());
  } else if (source.list_files) {
    for (const FileStat& f : source.files) paths.push_back((data_dir / f.path).string());
  } else {
    // One recursive glob per extension spelling present (DuckDB fails on a glob without
    // matches, and globs are case-sensitive).
    std::set<std::string> extensions;
    for (const FileStat& f : source.files) extensions.emplace(DataExtension(f.path));
    for (const std::string& ext : extensions) {
      paths.push_back((data_dir / source.paths.front() / "**" / StrCat("*", ext)).string());
    }
  }
  if (paths.size() == 1) return engine::QuoteString(paths.front());
  std::string out = "[";
  for (size_t i = 0; i < paths.size(); ++i) {
    out += StrCat(i == 0 ? "" : ", ", engine::QuoteString(paths[i]));
  }
  return out + "]";
}

std::string ReaderCall(const fs::path& data_dir, const TableSource& source) {
  BRIDGE_DCHECK(source.reader.has_value());
  std::string function;
  std::string options;
  switch (source.reader.value_or(Reader::kCsv)) {
    case Reader::kParquet:
      function = "read_parquet";
      break;
    case Reader::kCsv:
      function = "read_csv";
      break;
    case Reader::kTsv:
      function = "read_csv";
      options = ", delim = '\\t'";
      break;
    case Reader::kJson:
      function = "read_json";
      options = ", format = 'auto'";
      break;
    case Reader::kNdjson:
      function = "read_json";
      options = ", format = 'newline_delimited'";
      break;
  }
  // A single file never takes columns from key=value folders above it (the data folder's
  // own path may contain such names).
  options += source.folder ? ", union_by_name = true, hive_partitioning = true"
                           : ", hive_partitioning = false";
  return StrCat(function, "(", SourceArgument(data_dir, source), options, ")");
}

}  // namespace bridge::catalog::internal
