// The pure parts of serving whole files over HTTP — `GET /files/{path}` (raw files of the
// data folder) and `GET /results/{id}` (cached results as Arrow IPC files): opening a
// request path safely inside the data folder, and deciding status, byte range and headers
// from Range / If-Range / If-None-Match. The server sends the chosen range with sendfile.
//
// Thread safety: free functions without shared state; OpenDataFile reads the file system.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace bridge::http {

// An open, read-only file descriptor; closed by the destructor. Move-only.
class FileHandle {
 public:
  FileHandle() = default;
  explicit FileHandle(int fd) : fd_(fd) {}
  FileHandle(FileHandle&& other) noexcept : fd_(other.release()) {}
  FileHandle& operator=(FileHandle&& other) noexcept;
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle();

  int get() const { return fd_; }
  // Gives up ownership.
  int release();

 private:
  int fd_ = -1;
};

struct DataFile {
  FileHandle fd;
  struct stat info {};
  std::filesystem::path relative;  // the decoded path inside the data folder
};

// Opens `encoded` (the request path after "/files/", still percent-encoded) as a regular
// file inside `data_dir`. The decoded path must be relative and '/'-separated, without
// empty, "." or ".." segments, backslashes or hidden (dot) names, and name a data file
// (.parquet, .csv, .tsv, .json, .ndjson, .jsonl, .arrow, .arrows, .feather, .ipc, each also
// with .gz/.zst/.bz2/.lz4): never a users file, a key or anything else kept there. Symbolic links
// are followed only while they stay inside the folder: the path is resolved, checked to lie under
// the folder, and the resolved path is then opened beneath the folder's descriptor with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (before Linux 5.6: one component at a time with
// O_NOFOLLOW), so a link swapped in between the check and the open is refused rather than followed.
// InvalidArgument (400) for a bad escape or a NUL byte; NotFound (404) for everything else
// that is refused (missing, outside, not a regular file, unreadable), so that probing learns
// nothing about files outside the folder.
Result<DataFile> OpenDataFile(const std::filesystem::path& data_dir, std::string_view encoded);

// A byte range [begin, end) of a file.
struct ByteSpan {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool operator==(const ByteSpan&) const = default;
};

// Parses a Range header (RFC 9110 14.2: "bytes=a-b", "bytes=a-", "bytes=-n") against a file
// of `size` bytes. nullopt = serve the whole file: no header, another unit, several ranges
// (a server may ignore them), or a syntax error (ignored, as the RFC asks). OutOfRange
// (416) when the one range is not satisfiable (starts at or past the end; a suffix of 0).
Result<std::optional<ByteSpan>> ParseRange(std::string_view header, uint64_t size);

// The request headers that make a file response conditional or partial.
struct FileRequest {
  std::string_view range;          // Range
  std::string_view if_range;       // If-Range (an ETag; a date never matches: we have none)
  std::string_view if_none_match;  // If-None-Match ("*" or a list of ETags, weak or strong)
};

// What to answer: 200 (whole), 206 (span), 304 (not modified: no body) or 416 (no body).
// `headers` are the lines to add (ETag, Accept-Ranges, Content-Range), each ending in CRLF.
struct FilePlan {
  int status = 200;
  ByteSpan span;
  std::string headers;
};
FilePlan PlanFileResponse(const FileRequest& request, uint64_t size, std::string_view etag);

// "Content-Type" of a data file by its extension (.parquet, .csv, .tsv, .json, .ndjson,
// .jsonl, .arrow, .arrows, .feather); application/octet-stream otherwise.
std::string_view ContentTypeOfFile(const std::filesystem::path& path);

// A strong ETag ("\"<size>-<mtime ns>-<inode>\"" in hex, with its quotes) of a file's
// current version.
std::string FileETag(const struct stat& info);

}  // namespace bridge::http
