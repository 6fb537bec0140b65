#include "bridge/http/files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <iterator>
#include <system_error>

#include "bridge/http/request.h"
#include "fmt/format.h"

namespace bridge::http {
namespace {

Status Refused(std::string_view why) { return NotFound("http: no such file (", why, ")"); }

// Whether `path` is strictly below `dir` (both canonical).
bool IsBelow(const std::filesystem::path& path, const std::filesystem::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *d) return false;
  }
  return p != path.end();
}

// Opens `relative` (no "." or ".." parts) beneath `dir_fd` without following any symbolic
// link. On kernels without openat2 (before 5.6) the same is done one component at a time,
// each opened with O_NOFOLLOW relative to the one before.
int OpenBeneath(int dir_fd, const std::filesystem::path& relative) {
  constexpr uint64_t kFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  open_how how{};
  how.flags = kFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dir_fd, relative.c_str(), &how, sizeof(how));
  if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
  FileHandle at(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  for (auto part = relative.begin(); part != relative.end() && at.get() >= 0; ++part) {
    const bool last = std::next(part) == relative.end();
    const int flags = last ? static_cast<int>(kFlags) | O_NOFOLLOW
                           : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    at = FileHandle(::openat(at.get(), part->c_str(), flags));
  }
  return at.release();
}

// The data formats /files serves (optionally compressed): never the configuration, keys or
// other files an operator may keep beside the tables.
bool IsDataFile(const std::filesystem::path& path) {
  std::string name = path.filename().string();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view compressed : {".gz", ".zst", ".bz2", ".lz4"}) {
    if (name.ends_with(compressed)) {
      name.resize(name.size() - compressed.size());
      break;
    }
  }
  for (std::string_view ext : {".parquet", ".csv", ".tsv", ".json", ".ndjson", ".jsonl", ".arrow",
                               ".arrows", ".feather", ".ipc"}) {
    if (name.ends_with(ext) && name.size() > ext.size()) return true;
  }
  return false;
}

std::optional<uint64_t> ParseDigits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

// If-None-Match uses the weak comparison: "W/" prefixes are ignored on both sides.
bool NoneMatchHits(std::string_view header, std::string_view etag) {
  auto opaque = [](std::string_view tag) {
    tag = Trim(tag);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    return tag;
  };
  header = Trim(header);
  if (header == "*") return true;
  while (!header.empty()) {
    size_t comma = header.find(',');
    if (opaque(header.substr(0, comma)) == opaque(etag)) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

FileHandle& FileHandle::operator=(FileHandle&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

FileHandle::~FileHandle() {
  if (fd_ >= 0) ::close(fd_);
}

int FileHandle::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

Result<DataFile> OpenDataFile(const std::filesystem::path& data_dir, std::string_view encoded) {
  BRIDGE_ASSIGN_OR_RETURN(std::string decoded, PercentDecode(encoded));
  if (decoded.find('\0') != std::string::npos) {
    return InvalidArgument("http: a file path may not contain a NUL byte");
  }
  if (decoded.empty()) return Refused("empty path");
  if (decoded.find('\\') != std::string::npos) return Refused("backslash");
  std::filesystem::path relative;
  size_t start = 0;
  while (start <= decoded.size()) {
    size_t slash = decoded.find('/', start);
    if (slash == std::string::npos) slash = decoded.size();
    std::string_view segment(decoded.data() + start, slash - start);
    if (segment.empty()) return Refused("empty segment");
    if (segment.front() == '.') return Refused("dot segment or hidden name");
    relative /= std::string(segment);
    start = slash + 1;
  }
  std::error_code ec;
  std::filesystem::path root = std::filesystem::canonical(data_dir, ec);
  if (ec) return IoError("http: the data folder cannot be resolved: ", ec.message());
  // Links inside the folder are allowed: resolve them, then check where they led.
  std::filesystem::path resolved = std::filesystem::canonical(root / relative, ec);
  if (ec) return Refused("missing");
  if (!IsBelow(resolved, root)) return Refused("outside the data folder");
  std::filesystem::path inside = resolved.lexically_relative(root);
  for (const auto& part : inside) {
    if (!part.empty() && part.native().front() == '.') return Refused("hidden name");
  }
  if (!IsDataFile(inside)) return Refused("not a data file");

  FileHandle dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return IoError("http: the data folder cannot be opened: ", strerror(errno));
  DataFile file;
  file.fd = FileHandle(OpenBeneath(dir.get(), inside));
  if (file.fd.get() < 0) return Refused("changed while opening, or unreadable");
  if (::fstat(file.fd.get(), &file.info) != 0 || !S_ISREG(file.info.st_mode)) {
    return Refused("not a regular file");
  }
  int flags = ::fcntl(file.fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(file.fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  file.relative = std::move(inside);
  return file;
}

Result<std::optional<ByteSpan>> ParseRange(std::string_view header, uint64_t size) {
  header = Trim(header);
  if (!StartsWithNoCase(header, "bytes=")) return std::optional<ByteSpan>();
  std::string_view spec = Trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return std::optional<ByteSpan>();
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::optional<ByteSpan>();
  std::string_view first = Trim(spec.substr(0, dash));
  std::string_view last = Trim(spec.substr(dash + 1));
  auto unsatisfiable = [&] {
    return OutOfRange("http: range ", spec, " is outside the file (", size, " bytes)");
  };
  if (first.empty()) {  // a suffix: the last n bytes
    std::optional<uint64_t> n = ParseDigits(last);
    if (!n) return std::optional<ByteSpan>();
    if (*n == 0 || size == 0) return unsatisfiable();
    return std::optional<ByteSpan>(ByteSpan{size - std::min(*n, size), size});
  }
  std::optional<uint64_t> begin = ParseDigits(first);
  if (!begin) return std::optional<ByteSpan>();
  uint64_t end = size;
  if (!last.empty()) {
    std::optional<uint64_t> inclusive = ParseDigits(last);
    if (!inclusive || *inclusive < *begin) return std::optional<ByteSpan>();
    end = *inclusive >= size ? size : *inclusive + 1;
  }
  if (*begin >= size) return unsatisfiable();
  return std::optional<ByteSpan>(ByteSpan{*begin, end});
}

FilePlan PlanFileResponse(const FileRequest& request, uint64_t size, std::string_view etag) {
  FilePlan plan;
  plan.span = {0, size};
  plan.headers = fmt::format("ETag: {}\r\nAccept-Ranges: bytes\r\n", etag);
  if (!request.if_none_match.empty() && NoneMatchHits(request.if_none_match, etag)) {
    plan.status = 304;
    plan.span = {0, 0};
    return plan;
  }
  // If-Range: the range applies only to this exact version (strong comparison; a date,
  // or a weak tag, never matches, so the whole file is sent).
  if (request.range.empty() || (!request.if_range.empty() && Trim(request.if_range) != etag)) {
    return plan;
  }
  Result<std::optional<ByteSpan>> range = ParseRange(request.range, size);
  if (!range.ok()) {
    plan.status = 416;
    plan.span = {0, 0};
    plan.headers += fmt::format("Content-Range: bytes */{}\r\n", size);
    return plan;
  }
  if (*range) {
    plan.status = 206;
    plan.span = **range;
    plan.headers +=
        fmt::format("Content-Range: bytes {}-{}/{}\r\n", plan.span.begin, plan.span.end - 1, size);
  }
  return plan;
}

std::string_view ContentTypeOfFile(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".parquet") return "application/vnd.apache.parquet";
  if (ext == ".csv") return "text/csv";
  if (ext == ".tsv") return "text/tab-separated-values";
  if (ext == ".json") return "application/json";
  if (ext == ".ndjson" || ext == ".jsonl") return "application/x-ndjson";
  if (ext == ".arrow" || ext == ".feather") return "application/vnd.apache.arrow.file";
  if (ext == ".arrows") return "application/vnd.apache.arrow.stream";
  return "application/octet-stream";
}

std::string FileETag(const struct stat& info) {
  uint64_t mtime_ns = static_cast<uint64_t>(info.st_mtim.tv_sec) * 1000000000ull +
                      static_cast<uint64_t>(info.st_mtim.tv_nsec);
  return fmt::format("\"{:x}-{:x}-{:x}\"", static_cast<uint64_t>(info.st_size), mtime_ns,
                     static_cast<uint64_t>(info.st_ino));
}

}  // namespace bridge::http
