// HTTP request parsing that does not depend on the server: query strings, content
// negotiation and the parameters of a /query request.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/arrow/compression.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace bridge::http {

using Params = std::vector<std::pair<std::string, std::string>>;  // in order, keys may repeat

// Decodes the part of a URL after '?': pairs split on '&', key and value on the first '=',
// percent escapes (RFC 3986) and '+' (space) decoded. Empty pieces ("a=1&&b=2") are
// skipped; a key without '=' has an empty value. InvalidArgument for a bad escape ("%4", "%zz")
// or a decoded NUL byte.
Result<Params> ParseQueryString(std::string_view query);

// Decodes percent escapes in a URL path segment ('+' stays '+'). Same errors.
Result<std::string> PercentDecode(std::string_view text);

// Returns the value of the first `key`, if any.
std::optional<std::string_view> FindParam(const Params& params, std::string_view key);

// Parses the value of parameter `key` as a non-negative int64 (digits only). InvalidArgument
// naming the key otherwise.
Result<int64_t> ParseNonNegative(std::string_view key, std::string_view text);

enum class OutputFormat { kArrow, kJson, kNdjson, kCsv, kParquet };

// arrow: "application/vnd.apache.arrow.stream", json: "application/json", ndjson:
// "application/x-ndjson", csv: "text/csv; charset=utf-8", parquet:
// "application/vnd.apache.parquet".
std::string_view ContentTypeOf(OutputFormat f);
// "arrow", "json", "ndjson", "csv", "parquet" (the format= names; metric labels).
std::string_view FormatName(OutputFormat f);
// Parses a format= name. InvalidArgument otherwise.
Result<OutputFormat> ParseFormatName(std::string_view name);

// format= param wins (arrow|json|ndjson|csv|parquet, else InvalidArgument); else the Accept
// header with q-values and wildcards (*/* or empty = JSON); FailedPrecondition when Accept
// names only types we cannot produce (the server answers 406). Among acceptable types the
// highest q wins, then the most specific match, then the first listed; a wildcard picks JSON
// (application/* too; text/* picks CSV). Media types understood: the ContentTypeOf ones plus
// "application/ndjson", "application/jsonl" (NDJSON), "application/x-parquet" (Parquet).
Result<OutputFormat> NegotiateFormat(const Params& params, std::string_view accept);

struct QueryRequest {
  std::string sql;
  std::vector<engine::Value> params;  // $1, $2, ... in order
  OutputFormat format = OutputFormat::kJson;
  ipc::Codec compression = ipc::Codec::kNone;  // compression=zstd|lz4 (arrow only, else 400)
  std::optional<int64_t> limit;                // limit=N, N >= 0
  std::string cache = "on";                    // cache=on|off|refresh (default "on"; issue 6)
};

struct RequestLimits {
  size_t max_sql_length = 1 << 20;
};

// GET: sql= from the URL. POST: body is the SQL text (text/plain or no type), or
// application/json {"sql": "...", "params": [null, true, 1, 2.5, "x"]} (json numbers: integer
// -> int64, else double; integers outside int64, objects/arrays as params ->
// InvalidArgument). URL params format, compression, limit, cache apply to both.
// InvalidArgument with a clear message for everything wrong (missing or empty sql, bad
// JSON, unknown JSON keys, unsupported content type, bad limit/compression/cache); sql
// longer than limits.max_sql_length -> ResourceExhausted ("sql is longer than ...");
// FailedPrecondition from NegotiateFormat. Other methods -> InvalidArgument.
Result<QueryRequest> ParseQueryRequest(std::string_view method, const Params& url_params,
                                       std::string_view content_type, std::string_view body,
                                       std::string_view accept, const RequestLimits& limits);

}  // namespace bridge::http
