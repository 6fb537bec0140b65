#include "bridge/http/metrics.h"

#include "bridge/common/testing.h"

namespace bridge::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(HttpMetricsTest, SerializesTheSamples) {
  prometheus::Registry registry;
  HttpMetrics metrics(registry);
  metrics.Request("/query", 200, 0.003);
  metrics.Request("/query", 200, 0.2);
  metrics.Request("/tables/{name}/rows", 404, 0.0001);
  metrics.BytesOut(OutputFormat::kArrow, 1000);
  metrics.BytesOut(OutputFormat::kArrow, 24);
  metrics.BytesOut(OutputFormat::kCsv, 7);
  metrics.RowsOut(OutputFormat::kJson, 42);
  metrics.ArrowBytesCopied(512);
  metrics.QueryCancelled("disconnect");
  metrics.QueryCancelled("disconnect");
  metrics.QueryCancelled("timeout");
  metrics.active_queries().Increment();
  metrics.active_queries().Increment();
  metrics.active_queries().Decrement();
  metrics.queued_queries().Set(3);

  std::string text = SerializeMetrics(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE bridge_http_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_requests_total{route=\"/query\",status=\"200\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("bridge_http_requests_total{route=\"/tables/{name}/rows\",status=\"404\"} "
                        "1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE bridge_http_request_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_request_duration_seconds_count{route=\"/query\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_request_duration_seconds_sum{route=\"/query\"} 0.203"));
  EXPECT_THAT(
      text, HasSubstr("bridge_http_request_duration_seconds_bucket{route=\"/query\",le=\"0.005\"} "
                      "1\n"));
  EXPECT_THAT(text,
              HasSubstr("bridge_http_request_duration_seconds_bucket{route=\"/query\",le=\"0.25\"} "
                        "2\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_request_duration_seconds_bucket{route=\"/tables/{name}/"
                              "rows\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_request_duration_seconds_bucket{route=\"/query\",le="
                              "\"30\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_response_bytes_total{format=\"arrow\"} 1024\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_response_bytes_total{format=\"csv\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_rows_total{format=\"json\"} 42\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_arrow_bytes_copied_total 512\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_queries_cancelled_total{reason=\"disconnect\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_queries_cancelled_total{reason=\"timeout\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_active_queries 1\n"));
  EXPECT_THAT(text, HasSubstr("bridge_http_queued_queries 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("reason=\"shutdown\"")));
}

TEST(HttpMetricsTest, BucketsGrowFromHalfAMillisecondToThirtySeconds) {
  const std::vector<double>& buckets = HttpMetrics::LatencyBuckets();
  ASSERT_GE(buckets.size(), 10u);
  EXPECT_EQ(buckets.front(), 0.0005);
  EXPECT_EQ(buckets.back(), 30);
  EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end()));
}

TEST(HttpMetricsTest, EmptyRegistrySerializesToNothingMuch) {
  prometheus::Registry registry;
  EXPECT_EQ(SerializeMetrics(registry), "");
}

}  // namespace
}  // namespace bridge::http
