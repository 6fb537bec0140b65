// Status -> HTTP status code and JSON error body. The one place that maps Bridge errors to
// HTTP.
//
// Thread safety: free functions without shared state.
#pragma once

#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace bridge::http {

// InvalidArgument 400, Unauthenticated 401, PermissionDenied 403, NotFound 404,
// DeadlineExceeded 504, ResourceExhausted 429, Cancelled 503, Unimplemented 501,
// FailedPrecondition 400, AlreadyExists 409, everything else 500 (OK -> 200).
// (The server maps 405, 406, 408, 413 itself where it knows the cause.)
int HttpStatusOf(const Status& status);

// Lower snake case name of a status code: "invalid_argument", "unauthenticated", ...
std::string_view ErrorCodeName(StatusCode code);

// {"error":{"code":"invalid_argument","message":"..."}}\n — always valid JSON, whatever
// bytes the message holds (invalid UTF-8 is replaced by U+FFFD).
std::string ErrorBody(const Status& status);
std::string ErrorBody(std::string_view code, std::string_view message);

}  // namespace bridge::http
