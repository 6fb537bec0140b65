// Status and Result<T>: the error currency of Bridge.
//
// No exception crosses a module boundary; functions that can fail return a Status or a
// Result<T>. They are aliases of absl::Status / absl::StatusOr<T> (abseil comes with gRPC),
// so the gRPC and HTTP layers map them to wire codes in exactly one place each.
#pragma once

#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"

namespace bridge {

using Status = absl::Status;
template <typename T>
using Result = absl::StatusOr<T>;
using StatusCode = absl::StatusCode;

inline Status OkStatus() { return absl::OkStatus(); }

namespace internal {
inline void AppendPiece(std::string& out, std::string_view piece) { out.append(piece); }
inline void AppendPiece(std::string& out, const char* piece) { out.append(piece); }
inline void AppendPiece(std::string& out, const std::string& piece) { out.append(piece); }
inline void AppendPiece(std::string& out, char c) { out.push_back(c); }
// Status::message() is an absl::string_view, a type of its own in Debian's abseil.
inline void AppendPiece(std::string& out, absl::string_view piece) {
  out.append(piece.data(), piece.size());
}
template <typename T>
void AppendPiece(std::string& out, const T& value) {
  fmt::format_to(std::back_inserter(out), "{}", value);
}
}  // namespace internal

// Concatenates strings, numbers and anything fmt can print. (Debian's abseil is built
// without std::string_view support, so StrCat does not take std::string_view.)
template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (internal::AppendPiece(out, args), ...);
  return out;
}

// Error constructors: each takes the message pieces, already starting with context
// ("engine: ...", "catalog: table 'trips': ...").
template <typename... Args>
Status InvalidArgument(const Args&... args) {
  return absl::InvalidArgumentError(StrCat(args...));
}
template <typename... Args>
Status PermissionDenied(const Args&... args) {
  return absl::PermissionDeniedError(StrCat(args...));
}
template <typename... Args>
Status NotFound(const Args&... args) {
  return absl::NotFoundError(StrCat(args...));
}
template <typename... Args>
Status AlreadyExists(const Args&... args) {
  return absl::AlreadyExistsError(StrCat(args...));
}
template <typename... Args>
Status ResourceExhausted(const Args&... args) {
  return absl::ResourceExhaustedError(StrCat(args...));
}
template <typename... Args>
Status Cancelled(const Args&... args) {
  return absl::CancelledError(StrCat(args...));
}
template <typename... Args>
Status DeadlineExceeded(const Args&... args) {
  return absl::DeadlineExceededError(StrCat(args...));
}
template <typename... Args>
Status FailedPrecondition(const Args&... args) {
  return absl::FailedPreconditionError(StrCat(args...));
}
template <typename... Args>
Status Unimplemented(const Args&... args) {
  return absl::UnimplementedError(StrCat(args...));
}
template <typename... Args>
Status OutOfRange(const Args&... args) {
  return absl::OutOfRangeError(StrCat(args...));
}
template <typename... Args>
Status IoError(const Args&... args) {
  return absl::UnavailableError(StrCat(args...));
}
template <typename... Args>
Status Internal(const Args&... args) {
  return absl::InternalError(StrCat(args...));
}

// Returns a copy of `status` whose message is prefixed with `context` and ": ".
Status WithContext(const Status& status, std::string_view context);

namespace internal {
// Returns the status of a Status or Result by value, so a temporary argument is safe.
inline Status ToStatus(const Status& s) { return s; }
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace bridge

#define BRIDGE_CONCAT_INNER(a, b) a##b
#define BRIDGE_CONCAT(a, b) BRIDGE_CONCAT_INNER(a, b)

// Returns from the calling function if `expr` (a Status or Result) is not OK.
#define BRIDGE_RETURN_NOT_OK(expr)                                          \
  do {                                                                      \
    ::bridge::Status _bridge_status = ::bridge::internal::ToStatus((expr)); \
    if (!_bridge_status.ok()) return _bridge_status;                        \
  } while (false)

#define BRIDGE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

// Evaluates `rexpr` (a Result<T>); on error returns its status, otherwise moves the value
// into `lhs` (which may be a declaration: `BRIDGE_ASSIGN_OR_RETURN(auto x, F());`).
#define BRIDGE_ASSIGN_OR_RETURN(lhs, rexpr) \
  BRIDGE_ASSIGN_OR_RETURN_IMPL(BRIDGE_CONCAT(_bridge_result_, __LINE__), lhs, rexpr)

// Checks an invariant of our own code (never bytes from the network or disk).
#ifdef NDEBUG
#define BRIDGE_DCHECK(cond) \
  do {                      \
  } while (false && (cond))
#else
#include <cstdio>
#include <cstdlib>
#define BRIDGE_DCHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: BRIDGE_DCHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (false)
#endif
