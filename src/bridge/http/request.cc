#include "bridge/http/request.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace bridge::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> Decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int high = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
      int low = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (high < 0 || low < 0) {
        return InvalidArgument("http: invalid percent escape '", text.substr(i, 3), "' at offset ",
                               i, " of the URL");
      }
      c = static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return InvalidArgument("http: NUL byte in the URL");
    out.push_back(c);
  }
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

struct FormatInfo {
  OutputFormat format;
  std::string_view name;
  std::string_view content_type;
  // Media types (lower case, no parameters) that name this format in Accept.
  std::array<std::string_view, 3> media_types;
};

// In the order a wildcard prefers them.
constexpr std::array<FormatInfo, 5> kFormats = {{
    {OutputFormat::kJson, "json", "application/json", {"application/json", "", ""}},
    {OutputFormat::kNdjson,
     "ndjson",
     "application/x-ndjson",
     {"application/x-ndjson", "application/ndjson", "application/jsonl"}},
    {OutputFormat::kCsv, "csv", "text/csv; charset=utf-8", {"text/csv", "", ""}},
    {OutputFormat::kArrow,
     "arrow",
     "application/vnd.apache.arrow.stream",
     {"application/vnd.apache.arrow.stream", "", ""}},
    {OutputFormat::kParquet,
     "parquet",
     "application/vnd.apache.parquet",
     {"application/vnd.apache.parquet", "application/x-parquet", ""}},
}};

const FormatInfo& InfoOf(OutputFormat f) {
  for (const FormatInfo& info : kFormats) {
    if (info.format == f) return info;
  }
  return kFormats[0];
}

struct MediaRange {
  std::string type;     // lower case, "*" allowed
  std::string subtype;  // lower case, "*" allowed
  int q = 1000;         // thousandths
  size_t position = 0;
};

// Parses a qvalue ("0", "0.5", "1.000"); -1 when malformed.
int ParseQ(std::string_view text) {
  if (text.empty() || text.size() > 5 || (text[0] != '0' && text[0] != '1')) return -1;
  int value = (text[0] - '0') * 1000;
  if (text.size() == 1) return value;
  if (text[1] != '.') return -1;
  int scale = 100;
  for (char c : text.substr(2)) {
    if (c < '0' || c > '9') return -1;
    value += (c - '0') * scale;
    scale /= 10;
  }
  return value > 1000 ? -1 : value;
}

// Parses an Accept header; malformed ranges are left out.
std::vector<MediaRange> ParseAccept(std::string_view accept) {
  std::vector<MediaRange> ranges;
  size_t position = 0;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semicolon = item.find(';');
    std::string_view media = Trim(item.substr(0, semicolon));
    size_t slash = media.find('/');
    if (media.empty() || slash == std::string_view::npos || slash == 0 ||
        slash + 1 == media.size()) {
      continue;
    }
    MediaRange range;
    range.type = Lower(Trim(media.substr(0, slash)));
    range.subtype = Lower(Trim(media.substr(slash + 1)));
    if (range.type == "*" && range.subtype != "*") continue;
    range.position = position++;
    bool ok = true;
    while (semicolon != std::string_view::npos) {
      item.remove_prefix(semicolon + 1);
      semicolon = item.find(';');
      std::string_view param = Trim(item.substr(0, semicolon));
      size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      if (Lower(Trim(param.substr(0, eq))) == "q") {
        range.q = ParseQ(Trim(param.substr(eq + 1)));
        ok = range.q >= 0;
        break;  // parameters after q are accept-extensions
      }
    }
    if (ok) ranges.push_back(std::move(range));
  }
  return ranges;
}

// 3 = exact, 2 = type/*, 1 = */*, 0 = no match.
int Specificity(const MediaRange& range, std::string_view media_type) {
  size_t slash = media_type.find('/');
  std::string_view type = media_type.substr(0, slash);
  std::string_view subtype = media_type.substr(slash + 1);
  if (range.type == "*") return 1;
  if (range.type != type) return 0;
  if (range.subtype == "*") return 2;
  return range.subtype == subtype ? 3 : 0;
}

}  // namespace

Result<int64_t> ParseNonNegative(std::string_view key, std::string_view text) {
  int64_t value = 0;
  bool digits = !text.empty() &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (!digits || ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgument("http: ", key, " must be a non-negative integer, got '", text, "'");
  }
  return value;
}

namespace {

// Returns true if `text` is well-formed UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF).
bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra = 0;
    uint32_t code = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      code = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      code = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if ((extra == 2 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) ||
        (extra == 3 && (code < 0x10000 || code > 0x10FFFF))) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// SAX handler for {"sql": "...", "params": [...]}: rejects anything else as it arrives, so
// deep nesting never builds up and integers keep their exact text.
class QueryBodyHandler {
 public:
  using Json = nlohmann::json;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  bool null() { return Scalar(engine::Value(std::monostate{}), "null"); }
  bool boolean(bool value) { return Scalar(engine::Value(value), "a boolean"); }
  bool number_integer(int64_t value) { return Scalar(engine::Value(value), "a number"); }
  bool number_unsigned(uint64_t value) {
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Fail(StrCat("integer ", value, " is outside the int64 range"));
    }
    return Scalar(engine::Value(static_cast<int64_t>(value)), "a number");
  }
  bool number_float(double value, const string_t& text) {
    if (text.find_first_of(".eE") == string_t::npos) {
      return Fail(StrCat("integer ", text, " is outside the int64 range"));
    }
    if (!std::isfinite(value)) return Fail(StrCat("number ", text, " is out of range"));
    return Scalar(engine::Value(value), "a number");
  }
  bool string(string_t& value) {
    if (depth_ == 1 && key_ == "sql") {
      sql_ = std::move(value);
      has_sql_ = true;
      return true;
    }
    return Scalar(engine::Value(std::move(value)), "a string");
  }
  bool binary(binary_t&) { return Fail("unexpected binary value"); }
  bool start_object(size_t) {
    if (depth_ == 0) {
      depth_ = 1;
      return true;
    }
    return Nested("an object");
  }
  bool key(string_t& key) {
    if (key != "sql" && key != "params") {
      return Fail(StrCat("unknown key '", key, "' (sql, params)"));
    }
    if ((key == "sql" && seen_sql_key_) || (key == "params" && seen_params_key_)) {
      return Fail(StrCat("key '", key, "' appears twice"));
    }
    (key == "sql" ? seen_sql_key_ : seen_params_key_) = true;
    key_ = std::move(key);
    return true;
  }
  bool end_object() {
    depth_ = 0;
    return true;
  }
  bool start_array(size_t) {
    if (depth_ == 1 && key_ == "params") {
      depth_ = 2;
      return true;
    }
    return Nested("an array");
  }
  bool end_array() {
    depth_ = 1;
    return true;
  }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) {
    std::string_view what = e.what();
    size_t bracket = what.find("] ");
    if (what.substr(0, 1) == "[" && bracket != std::string_view::npos) {
      what.remove_prefix(bracket + 2);
    }
    return Fail(std::string(what));
  }

  Status status() const { return status_; }
  bool has_sql() const { return has_sql_; }
  std::string& sql() { return sql_; }
  std::vector<engine::Value>& params() { return params_; }

 private:
  bool Fail(std::string message) {
    if (status_.ok()) status_ = InvalidArgument("http: JSON body: ", message);
    return false;
  }
  bool Scalar(engine::Value value, std::string_view what) {
    if (depth_ == 2) {
      params_.push_back(std::move(value));
      return true;
    }
    if (depth_ == 1 && key_ == "params" && what == "null") return true;  // "params": null
    if (depth_ == 1 && key_ == "sql") return Fail(StrCat("sql must be a string, not ", what));
    if (depth_ == 1) return Fail(StrCat("params must be an array, not ", what));
    return Fail(StrCat("the body must be an object, not ", what));
  }
  bool Nested(std::string_view what) {
    if (depth_ == 2) {
      return Fail(StrCat("params[", params_.size(),
                         "] must be null, a boolean, a number or a string, not ", what));
    }
    if (depth_ == 0) return Fail(StrCat("the body must be an object, not ", what));
    if (key_ == "sql") return Fail(StrCat("sql must be a string, not ", what));
    return Fail(StrCat("params must be an array, not ", what));
  }

  int depth_ = 0;  // 0 top, 1 in the object, 2 in params
  std::string key_;
  bool seen_sql_key_ = false;
  bool seen_params_key_ = false;
  bool has_sql_ = false;
  std::string sql_;
  std::vector<engine::Value> params_;
  Status status_;
};

Status ParseJsonBody(std::string_view body, QueryRequest* request) {
  QueryBodyHandler handler;
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(body, &handler);
  } catch (const std::exception& e) {
    return InvalidArgument("http: JSON body: ", e.what());
  }
  if (!ok) {
    Status status = handler.status();
    return status.ok() ? InvalidArgument("http: JSON body: malformed") : status;
  }
  if (!handler.has_sql()) return InvalidArgument("http: JSON body has no \"sql\"");
  request->sql = std::move(handler.sql());
  request->params = std::move(handler.params());
  return OkStatus();
}

}  // namespace

Result<std::string> PercentDecode(std::string_view text) { return Decode(text, false); }

Result<Params> ParseQueryString(std::string_view query) {
  Params params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    BRIDGE_ASSIGN_OR_RETURN(std::string key, Decode(piece.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      BRIDGE_ASSIGN_OR_RETURN(value, Decode(piece.substr(eq + 1), true));
    }
    params.emplace_back(std::move(key), std::move(value));
  }
  return params;
}

std::optional<std::string_view> FindParam(const Params& params, std::string_view key) {
  for (const auto& [name, value] : params) {
    if (name == key) return std::string_view(value);
  }
  return std::nullopt;
}

std::string_view ContentTypeOf(OutputFormat f) { return InfoOf(f).content_type; }

std::string_view FormatName(OutputFormat f) { return InfoOf(f).name; }

Result<OutputFormat> ParseFormatName(std::string_view name) {
  for (const FormatInfo& info : kFormats) {
    if (info.name == name) return info.format;
  }
  return InvalidArgument("http: format must be one of arrow, json, ndjson, csv, parquet; got '",
                         name, "'");
}

Result<OutputFormat> NegotiateFormat(const Params& params, std::string_view accept) {
  if (std::optional<std::string_view> format = FindParam(params, "format")) {
    return ParseFormatName(*format);
  }
  std::vector<MediaRange> ranges = ParseAccept(accept);
  if (ranges.empty()) return OutputFormat::kJson;  // no (usable) Accept: anything goes

  struct Candidate {
    int q = -1;
    int specificity = 0;
    size_t position = 0;
  };
  std::optional<OutputFormat> best;
  Candidate best_score;
  for (const FormatInfo& info : kFormats) {
    Candidate score;
    for (std::string_view media_type : info.media_types) {
      if (media_type.empty()) continue;
      // The most specific range matching this media type decides its q.
      const MediaRange* match = nullptr;
      int match_specificity = 0;
      for (const MediaRange& range : ranges) {
        int s = Specificity(range, media_type);
        if (s > match_specificity) {
          match = &range;
          match_specificity = s;
        }
      }
      if (match == nullptr) continue;
      if (match->q > score.q || (match->q == score.q && match_specificity > score.specificity)) {
        score = {match->q, match_specificity, match->position};
      }
    }
    if (score.q <= 0) continue;
    bool better = !best || score.q > best_score.q ||
                  (score.q == best_score.q && score.specificity > best_score.specificity) ||
                  (score.q == best_score.q && score.specificity == best_score.specificity &&
                   score.position < best_score.position);
    if (better) {
      best = info.format;
      best_score = score;
    }
  }
  if (!best) {
    return absl::FailedPreconditionError(
        StrCat("http: not acceptable: Accept '", accept,
               "' names no format Bridge produces (application/json, application/x-ndjson, "
               "text/csv, application/vnd.apache.arrow.stream, "
               "application/vnd.apache.parquet)"));
  }
  return *best;
}

Result<QueryRequest> ParseQueryRequest(std::string_view method, const Params& url_params,
                                       std::string_view content_type, std::string_view body,
                                       std::string_view accept, const RequestLimits& limits) {
  QueryRequest request;
  std::optional<std::string_view> url_sql = FindParam(url_params, "sql");
  if (method == "GET") {
    if (!url_sql) return InvalidArgument("http: missing sql parameter (GET /query?sql=...)");
    request.sql = std::string(*url_sql);
  } else if (method == "POST") {
    std::string media = Lower(Trim(content_type.substr(0, content_type.find(';'))));
    if (body.empty()) {
      if (!url_sql) {
        return InvalidArgument(
            "http: missing sql (POST the SQL text as the body, or JSON "
            "{\"sql\": ...})");
      }
      request.sql = std::string(*url_sql);
    } else if (url_sql) {
      return InvalidArgument("http: sql given both in the URL and in the body");
    } else if (media.empty() || media == "text/plain" || media == "application/sql") {
      request.sql = std::string(body);
    } else if (media == "application/json") {
      BRIDGE_RETURN_NOT_OK(ParseJsonBody(body, &request));
    } else if (media == "application/x-www-form-urlencoded") {
      // `curl -d 'select 1'` sends raw SQL with this type: use the sql field of a real form,
      // else the body as it is.
      Result<Params> form = ParseQueryString(body);
      std::optional<std::string_view> form_sql;
      if (form.ok()) form_sql = FindParam(*form, "sql");
      request.sql = form_sql ? std::string(*form_sql) : std::string(body);
    } else {
      return InvalidArgument("http: unsupported content type '", content_type,
                             "' (text/plain, application/json, "
                             "application/x-www-form-urlencoded)");
    }
  } else {
    return InvalidArgument("http: method ", method, " not allowed (GET, POST)");
  }

  if (request.sql.size() > limits.max_sql_length) {
    return ResourceExhausted("http: sql is longer than ", limits.max_sql_length, " bytes (",
                             request.sql.size(), ")");
  }
  if (Trim(request.sql).find_first_not_of("\r\n\t ;") == std::string_view::npos) {
    return InvalidArgument("http: sql is empty");
  }
  if (request.sql.find('\0') != std::string::npos) {
    return InvalidArgument("http: sql holds a NUL byte");
  }
  if (!IsValidUtf8(request.sql)) return InvalidArgument("http: sql is not valid UTF-8");

  BRIDGE_ASSIGN_OR_RETURN(request.format, NegotiateFormat(url_params, accept));
  if (std::optional<std::string_view> compression = FindParam(url_params, "compression")) {
    Result<ipc::Codec> codec = ipc::ParseCodec(*compression);
    if (!codec.ok()) {
      return InvalidArgument("http: compression must be none, zstd or lz4; got '", *compression,
                             "'");
    }
    if (*codec != ipc::Codec::kNone && request.format != OutputFormat::kArrow) {
      return InvalidArgument("http: compression=", *compression, " applies only to format=arrow");
    }
    request.compression = *codec;
  }
  if (std::optional<std::string_view> limit = FindParam(url_params, "limit")) {
    BRIDGE_ASSIGN_OR_RETURN(request.limit, ParseNonNegative("limit", *limit));
  }
  if (std::optional<std::string_view> cache = FindParam(url_params, "cache")) {
    if (*cache != "on" && *cache != "off" && *cache != "refresh") {
      return InvalidArgument("http: cache must be on, off or refresh; got '", *cache, "'");
    }
    request.cache = std::string(*cache);
  }
  return request;
}

}  // namespace bridge::http
