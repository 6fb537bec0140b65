#include "bridge/http/request.h"

#include <random>

#include "bridge/common/testing.h"

namespace bridge::engine {
// engine::Value holds a Blob, which has no ==; the tests compare Values.
inline bool operator==(const Blob& a, const Blob& b) { return a.bytes == b.bytes; }
}  // namespace bridge::engine

namespace bridge::http {
namespace {

using engine::Value;

Params P(std::initializer_list<std::pair<std::string, std::string>> pairs) { return Params(pairs); }

TEST(ParseQueryStringTest, DecodesPercentAndPlus) {
  ASSERT_OK_AND_ASSIGN(
      Params params,
      ParseQueryString("sql=select+1%2B2%20as%20%22x%22&format=csv&&flag&a=1&a=2&e="));
  EXPECT_EQ(params, P({{"sql", "select 1+2 as \"x\""},
                       {"format", "csv"},
                       {"flag", ""},
                       {"a", "1"},
                       {"a", "2"},
                       {"e", ""}}));
  EXPECT_EQ(FindParam(params, "a"), "1");
  EXPECT_EQ(FindParam(params, "flag"), "");
  EXPECT_EQ(FindParam(params, "missing"), std::nullopt);
}

TEST(ParseQueryStringTest, ValueMayHoldEqualsAndUtf8) {
  ASSERT_OK_AND_ASSIGN(Params params, ParseQueryString("filter=a.eq.x%3Dy=z&k%C3%A9=%E2%82%AC"));
  EXPECT_EQ(params, P({{"filter", "a.eq.x=y=z"}, {"ké", "€"}}));
  ASSERT_OK_AND_ASSIGN(params, ParseQueryString(""));
  EXPECT_TRUE(params.empty());
}

TEST(ParseQueryStringTest, RejectsBadEscapesAndNul) {
  for (std::string_view bad :
       {"a=%", "a=%4", "a=%zz", "a=%g1", "%=1", "a=1&b=%0", "a=%00", "k%00=1"}) {
    EXPECT_STATUS(ParseQueryString(bad), StatusCode::kInvalidArgument, "") << bad;
  }
  EXPECT_STATUS(ParseQueryString("a=%zz"), StatusCode::kInvalidArgument, "percent escape '%zz'");
  EXPECT_STATUS(ParseQueryString("a=%00"), StatusCode::kInvalidArgument, "NUL");
}

TEST(PercentDecodeTest, PlusStaysPlusInPaths) {
  ASSERT_OK_AND_ASSIGN(std::string decoded, PercentDecode("my+table%20x"));
  EXPECT_EQ(decoded, "my+table x");
  EXPECT_STATUS(PercentDecode("a%2"), StatusCode::kInvalidArgument, "escape");
}

TEST(NegotiateFormatTest, FormatParamWins) {
  ASSERT_OK_AND_ASSIGN(OutputFormat f, NegotiateFormat(P({{"format", "parquet"}}), "text/csv"));
  EXPECT_EQ(f, OutputFormat::kParquet);
  ASSERT_OK_AND_ASSIGN(f, NegotiateFormat(P({{"format", "ndjson"}}), ""));
  EXPECT_EQ(f, OutputFormat::kNdjson);
  EXPECT_STATUS(NegotiateFormat(P({{"format", "xml"}}), ""), StatusCode::kInvalidArgument,
                "format must be one of");
  EXPECT_STATUS(NegotiateFormat(P({{"format", "JSON"}}), ""), StatusCode::kInvalidArgument,
                "'JSON'");
}

TEST(NegotiateFormatTest, AcceptHeader) {
  struct Case {
    std::string accept;
    OutputFormat expected;
  };
  for (const Case& c : std::vector<Case>{
           {"", OutputFormat::kJson},
           {"*/*", OutputFormat::kJson},
           {"application/*", OutputFormat::kJson},
           {"text/*", OutputFormat::kCsv},
           {"text/csv", OutputFormat::kCsv},
           {"TEXT/CSV; charset=utf-8", OutputFormat::kCsv},
           {"application/vnd.apache.arrow.stream", OutputFormat::kArrow},
           {"application/x-ndjson", OutputFormat::kNdjson},
           {"application/jsonl", OutputFormat::kNdjson},
           {"application/vnd.apache.parquet", OutputFormat::kParquet},
           {"application/x-parquet", OutputFormat::kParquet},
           // Highest q wins.
           {"application/json;q=0.5, text/csv;q=0.9", OutputFormat::kCsv},
           {"text/csv;q=0.1,application/vnd.apache.arrow.stream", OutputFormat::kArrow},
           // Same q: the first listed.
           {"text/csv, application/json", OutputFormat::kCsv},
           // Browsers: html is not ours, */* with a lower q gives JSON.
           {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", OutputFormat::kJson},
           // q=0 excludes: JSON is refused, the wildcard gives the next format.
           {"application/json;q=0, */*", OutputFormat::kNdjson},
           {"application/*;q=0, */*;q=0.5", OutputFormat::kCsv},
           // A more specific range decides over a wildcard for its type.
           {"*/*;q=0.1, text/csv;q=0.5", OutputFormat::kCsv},
           // Malformed ranges are ignored.
           {"garbage, text/csv;q=2, application/vnd.apache.arrow.stream;q=0.3",
            OutputFormat::kArrow},
           {"garbage", OutputFormat::kJson},
       }) {
    ASSERT_OK_AND_ASSIGN(OutputFormat f, NegotiateFormat({}, c.accept));
    EXPECT_EQ(f, c.expected) << c.accept;
  }
}

TEST(NegotiateFormatTest, NothingWeProduceIsFailedPrecondition) {
  for (std::string_view accept : {"text/html", "image/png, text/html;q=0.9", "application/json;q=0",
                                  "*/*;q=0", "application/vnd.apache.arrow.file"}) {
    EXPECT_STATUS(NegotiateFormat({}, accept), StatusCode::kFailedPrecondition, "not acceptable")
        << accept;
  }
}

TEST(ContentTypeTest, OfEveryFormat) {
  EXPECT_EQ(ContentTypeOf(OutputFormat::kArrow), "application/vnd.apache.arrow.stream");
  EXPECT_EQ(ContentTypeOf(OutputFormat::kJson), "application/json");
  EXPECT_EQ(ContentTypeOf(OutputFormat::kNdjson), "application/x-ndjson");
  EXPECT_EQ(ContentTypeOf(OutputFormat::kCsv), "text/csv; charset=utf-8");
  EXPECT_EQ(ContentTypeOf(OutputFormat::kParquet), "application/vnd.apache.parquet");
  for (OutputFormat f : {OutputFormat::kArrow, OutputFormat::kJson, OutputFormat::kNdjson,
                         OutputFormat::kCsv, OutputFormat::kParquet}) {
    ASSERT_OK_AND_ASSIGN(OutputFormat parsed, ParseFormatName(FormatName(f)));
    EXPECT_EQ(parsed, f);
  }
}

Result<QueryRequest> Parse(std::string_view method, const Params& url,
                           std::string_view content_type = "", std::string_view body = "",
                           std::string_view accept = "") {
  return ParseQueryRequest(method, url, content_type, body, accept, RequestLimits{});
}

TEST(ParseQueryRequestTest, GetTakesSqlFromTheUrl) {
  ASSERT_OK_AND_ASSIGN(QueryRequest r, Parse("GET", P({{"sql", "select 1"}})));
  EXPECT_EQ(r.sql, "select 1");
  EXPECT_TRUE(r.params.empty());
  EXPECT_EQ(r.format, OutputFormat::kJson);
  EXPECT_EQ(r.compression, ipc::Codec::kNone);
  EXPECT_EQ(r.limit, std::nullopt);
  EXPECT_EQ(r.cache, "on");
  EXPECT_STATUS(Parse("GET", {}), StatusCode::kInvalidArgument, "missing sql");
  EXPECT_STATUS(Parse("GET", P({{"sql", "  ; "}})), StatusCode::kInvalidArgument, "empty");
}

TEST(ParseQueryRequestTest, PostTextBody) {
  for (std::string_view type : {"", "text/plain", "text/plain; charset=utf-8", "Text/Plain"}) {
    ASSERT_OK_AND_ASSIGN(QueryRequest r, Parse("POST", {}, type, "select 2"));
    EXPECT_EQ(r.sql, "select 2") << type;
  }
  // curl -d sends raw SQL as a form.
  ASSERT_OK_AND_ASSIGN(QueryRequest r, Parse("POST", {}, "application/x-www-form-urlencoded",
                                             "select '%' || 1 as a"));
  EXPECT_EQ(r.sql, "select '%' || 1 as a");
  ASSERT_OK_AND_ASSIGN(r,
                       Parse("POST", {}, "application/x-www-form-urlencoded", "sql=select+3&x=1"));
  EXPECT_EQ(r.sql, "select 3");
  // Empty body: the URL's sql.
  ASSERT_OK_AND_ASSIGN(r, Parse("POST", P({{"sql", "select 4"}}), "text/plain", ""));
  EXPECT_EQ(r.sql, "select 4");
  EXPECT_STATUS(Parse("POST", P({{"sql", "select 4"}}), "text/plain", "select 5"),
                StatusCode::kInvalidArgument, "both");
  EXPECT_STATUS(Parse("POST", {}, "text/plain", ""), StatusCode::kInvalidArgument, "missing sql");
  EXPECT_STATUS(Parse("POST", {}, "image/png", "select 1"), StatusCode::kInvalidArgument,
                "unsupported content type 'image/png'");
  EXPECT_STATUS(Parse("PUT", P({{"sql", "select 1"}})), StatusCode::kInvalidArgument, "method PUT");
}

TEST(ParseQueryRequestTest, PostJsonBodyWithParams) {
  ASSERT_OK_AND_ASSIGN(
      QueryRequest r,
      Parse(
          "POST", {}, "application/json; charset=utf-8",
          R"({"sql": "select $1, $2, $3, $4, $5, $6", "params": [null, true, 1, 2.5, "x", -9223372036854775808]})"));
  EXPECT_EQ(r.sql, "select $1, $2, $3, $4, $5, $6");
  ASSERT_EQ(r.params.size(), 6u);
  EXPECT_EQ(r.params[0], Value(std::monostate{}));
  EXPECT_EQ(r.params[1], Value(true));
  EXPECT_EQ(r.params[2], Value(int64_t{1}));
  EXPECT_EQ(r.params[3], Value(2.5));
  EXPECT_EQ(r.params[4], Value(std::string("x")));
  EXPECT_EQ(r.params[5], Value(std::numeric_limits<int64_t>::min()));

  ASSERT_OK_AND_ASSIGN(r, Parse("POST", {}, "application/json",
                                R"({"params": [9223372036854775807, 1e3], "sql": "s"})"));
  EXPECT_EQ(r.params[0], Value(std::numeric_limits<int64_t>::max()));
  EXPECT_EQ(r.params[1], Value(1000.0));
  ASSERT_OK_AND_ASSIGN(r, Parse("POST", {}, "application/json", R"({"sql":"s","params":null})"));
  EXPECT_TRUE(r.params.empty());
}

TEST(ParseQueryRequestTest, BadJsonBodies) {
  struct Case {
    std::string body;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"{", "JSON body"},
           {"{\"sql\": \"x\"} trailing", "JSON body"},
           {"[1]", "must be an object"},
           {"\"select 1\"", "must be an object"},
           {"{}", "no \"sql\""},
           {"{\"params\": []}", "no \"sql\""},
           {"{\"sql\": 1}", "sql must be a string"},
           {"{\"sql\": [\"x\"]}", "sql must be a string"},
           {"{\"sql\": \"x\", \"params\": 1}", "params must be an array"},
           {"{\"sql\": \"x\", \"params\": {}}", "params must be an array"},
           {"{\"sql\": \"x\", \"params\": [1, [2]]}", "params[1] must be null"},
           {"{\"sql\": \"x\", \"params\": [{}]}", "params[0] must be null"},
           {"{\"sql\": \"x\", \"params\": [9223372036854775808]}", "outside the int64 range"},
           {"{\"sql\": \"x\", \"params\": [-9223372036854775809]}", "outside the int64 range"},
           {"{\"sql\": \"x\", \"params\": [123456789012345678901234567890]}", "outside the int64"},
           {"{\"sql\": \"x\", \"params\": [1e999]}", "1e999"},
           {"{\"sql\": \"x\", \"limit\": 3}", "unknown key 'limit'"},
           {"{\"sql\": \"x\", \"sql\": \"y\"}", "appears twice"},
           {"{\"sql\": \"\\u0000\"}", "NUL"},
           {"{\"sql\": \"\xff\"}", "JSON body"},
           {std::string(100000, '['), "must be an object"},
           {"{\"sql\": \"x\", \"params\": [" + std::string(100000, '[') + "]}", "params[0]"},
       }) {
    EXPECT_STATUS(Parse("POST", {}, "application/json", c.body), StatusCode::kInvalidArgument,
                  c.message)
        << c.body.substr(0, 80);
  }
}

TEST(ParseQueryRequestTest, UrlOptionsApplyToGetAndPost) {
  ASSERT_OK_AND_ASSIGN(QueryRequest r, Parse("GET", P({{"sql", "s"},
                                                       {"format", "arrow"},
                                                       {"compression", "zstd"},
                                                       {"limit", "10"},
                                                       {"cache", "refresh"}})));
  EXPECT_EQ(r.format, OutputFormat::kArrow);
  EXPECT_EQ(r.compression, ipc::Codec::kZstd);
  EXPECT_EQ(r.limit, 10);
  EXPECT_EQ(r.cache, "refresh");
  ASSERT_OK_AND_ASSIGN(r, Parse("POST", P({{"compression", "lz4"}, {"limit", "0"}}), "", "s",
                                "application/vnd.apache.arrow.stream"));
  EXPECT_EQ(r.format, OutputFormat::kArrow);
  EXPECT_EQ(r.compression, ipc::Codec::kLz4Frame);
  EXPECT_EQ(r.limit, 0);
  ASSERT_OK_AND_ASSIGN(
      r, Parse("GET", P({{"sql", "s"}, {"compression", "none"}}), "", "", "text/csv"));
  EXPECT_EQ(r.format, OutputFormat::kCsv);
}

TEST(ParseQueryRequestTest, BadUrlOptions) {
  EXPECT_STATUS(Parse("GET", P({{"sql", "s"}, {"compression", "zstd"}})),
                StatusCode::kInvalidArgument, "only to format=arrow");
  EXPECT_STATUS(Parse("GET", P({{"sql", "s"}, {"format", "arrow"}, {"compression", "gzip"}})),
                StatusCode::kInvalidArgument, "compression must be");
  for (std::string_view limit :
       {"-1", "", "1.5", "+3", " 3", "1e3", "99999999999999999999", "0x10"}) {
    EXPECT_STATUS(Parse("GET", P({{"sql", "s"}, {"limit", std::string(limit)}})),
                  StatusCode::kInvalidArgument, "limit must be a non-negative integer")
        << limit;
  }
  EXPECT_STATUS(Parse("GET", P({{"sql", "s"}, {"cache", "maybe"}})), StatusCode::kInvalidArgument,
                "cache must be");
  EXPECT_STATUS(Parse("GET", P({{"sql", "s"}, {"format", "yaml"}})), StatusCode::kInvalidArgument,
                "format must be");
  EXPECT_STATUS(Parse("GET", P({{"sql", "s"}}), "", "", "text/html"),
                StatusCode::kFailedPrecondition, "not acceptable");
}

TEST(ParseQueryRequestTest, SqlLimitsAndEncoding) {
  RequestLimits limits;
  limits.max_sql_length = 10;
  EXPECT_OK(ParseQueryRequest("POST", {}, "", "select 1", "", limits));
  EXPECT_STATUS(ParseQueryRequest("POST", {}, "", "select 12345", "", limits),
                StatusCode::kResourceExhausted, "sql is longer than 10 bytes");
  EXPECT_STATUS(Parse("POST", {}, "text/plain", std::string_view("select\0 1", 9)),
                StatusCode::kInvalidArgument, "NUL");
  EXPECT_STATUS(Parse("POST", {}, "text/plain", "select '\xff'"), StatusCode::kInvalidArgument,
                "UTF-8");
  EXPECT_STATUS(Parse("POST", {}, "text/plain", "select '\xed\xa0\x80'"),  // surrogate
                StatusCode::kInvalidArgument, "UTF-8");
  EXPECT_STATUS(Parse("POST", {}, "text/plain", "select '\xc0\xaf'"),  // overlong
                StatusCode::kInvalidArgument, "UTF-8");
  EXPECT_STATUS(Parse("POST", {}, "text/plain", "select '\xe2\x82"),  // truncated
                StatusCode::kInvalidArgument, "UTF-8");
  EXPECT_OK(Parse("POST", {}, "text/plain", "select 'é€😀'"));
}

TEST(RequestFuzzTest, RandomInputNeverCrashes) {
  std::mt19937 rng(42);
  const std::string alphabet = "%+=&;,/*.qQ0123456789abfxyz {}[]\":-\\\x00\xff\xc3";
  for (int i = 0; i < 20000; ++i) {
    std::string text(rng() % 40, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    (void)ParseQueryString(text);
    (void)NegotiateFormat({}, text);
    (void)Parse("POST", {}, "application/json", text);
    (void)Parse("POST", P({{"limit", text}}), "application/x-www-form-urlencoded", text);
  }
}

}  // namespace
}  // namespace bridge::http
