#include "bridge/http/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <initializer_list>
#include <utility>
#include <vector>

namespace bridge::http {
namespace {

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

const std::vector<double>& HttpMetrics::LatencyBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return *buckets;
}

HttpMetrics::HttpMetrics(prometheus::Registry& registry)
    : requests_(CounterFamily(registry, "bridge_http_requests_total",
                              "HTTP requests answered, by route pattern and status code.")),
      durations_(prometheus::BuildHistogram()
                     .Name("bridge_http_request_duration_seconds")
                     .Help("Time from request read to response end, by route pattern.")
                     .Register(registry)),
      bytes_out_(CounterFamily(registry, "bridge_http_response_bytes_total",
                               "Response body bytes of query results, by output format.")),
      rows_out_(
          CounterFamily(registry, "bridge_http_rows_total", "Result rows sent, by output format.")),
      arrow_bytes_copied_(CounterFamily(registry, "bridge_http_arrow_bytes_copied_total",
                                        "Bytes of Arrow data copied instead of sent in place.")
                              .Add({})),
      arrow_sendfile_bytes_(
          CounterFamily(registry, "bridge_http_arrow_sendfile_bytes_total",
                        "format=arrow bytes sent from a file by sendfile(2): cache hits, and "
                        "misses sent from the entry being written.")
              .Add({})),
      cancelled_(CounterFamily(registry, "bridge_http_queries_cancelled_total",
                               "Queries stopped early, by reason "
                               "(disconnect, timeout, shutdown).")),
      cache_lookups_(CounterFamily(registry, "bridge_http_cache_lookups_total",
                                   "format=arrow queries by result cache outcome "
                                   "(hit, miss, refresh, uncacheable).")),
      active_queries_(
          GaugeFamily(registry, "bridge_http_active_queries", "Queries running now.").Add({})),
      queued_queries_(
          GaugeFamily(registry, "bridge_http_queued_queries", "Queries waiting for a session.")
              .Add({})) {}

void HttpMetrics::Request(std::string_view route, int status, double seconds) {
  requests_.Add({{"route", std::string(route)}, {"status", std::to_string(status)}}).Increment();
  durations_.Add({{"route", std::string(route)}}, LatencyBuckets()).Observe(seconds);
}

void HttpMetrics::BytesOut(OutputFormat f, uint64_t bytes) { BytesOut(FormatName(f), bytes); }

void HttpMetrics::BytesOut(std::string_view format_label, uint64_t bytes) {
  bytes_out_.Add({{"format", std::string(format_label)}}).Increment(static_cast<double>(bytes));
}

void HttpMetrics::RowsOut(OutputFormat f, uint64_t rows) {
  rows_out_.Add({{"format", std::string(FormatName(f))}}).Increment(static_cast<double>(rows));
}

void HttpMetrics::ArrowBytesCopied(uint64_t bytes) {
  arrow_bytes_copied_.Increment(static_cast<double>(bytes));
}

void HttpMetrics::ArrowSendfileBytes(uint64_t bytes) {
  arrow_sendfile_bytes_.Increment(static_cast<double>(bytes));
}

void HttpMetrics::QueryCancelled(std::string_view reason) {
  cancelled_.Add({{"reason", std::string(reason)}}).Increment();
}

void HttpMetrics::CacheLookup(std::string_view result) {
  cache_lookups_.Add({{"result", std::string(result)}}).Increment();
}

prometheus::Gauge& HttpMetrics::active_queries() { return active_queries_; }
prometheus::Gauge& HttpMetrics::queued_queries() { return queued_queries_; }

namespace {

// Appends the family `name` with one metric per `values` entry: {label value, value}; an
// empty label value means no label.
void AddFamily(std::vector<prometheus::MetricFamily>& out, std::string name, std::string help,
               prometheus::MetricType type,
               std::initializer_list<std::pair<const char*, int64_t>> values,
               const char* label = "result") {
  prometheus::MetricFamily family{std::move(name), std::move(help), type, {}};
  for (const auto& [label_value, value] : values) {
    prometheus::ClientMetric metric;
    if (*label_value != '\0') metric.label.push_back({label, label_value});
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = static_cast<double>(value);
    } else {
      metric.gauge.value = static_cast<double>(value);
    }
    family.metric.push_back(std::move(metric));
  }
  out.push_back(std::move(family));
}

void AddCacheFamilies(const cache::Cache& cache, std::vector<prometheus::MetricFamily>& out) {
  using prometheus::MetricType;
  const cache::CacheStats s = cache.stats();
  AddFamily(out, "bridge_cache_lookups_total", "Result-cache lookups by result (HTTP and Flight)",
            MetricType::Counter, {{"hit", s.hits}, {"miss", s.misses}});
  AddFamily(out, "bridge_cache_evictions_total", "Result-cache entries removed",
            MetricType::Counter, {{"", s.evictions}});
  AddFamily(out, "bridge_cache_writes_total", "Result-cache entries written", MetricType::Counter,
            {{"committed", s.writes_committed}, {"abandoned", s.writes_abandoned}});
  AddFamily(out, "bridge_cache_verify_failures_total",
            "Cached entries whose checksums did not match", MetricType::Counter,
            {{"", s.verify_failures}});
  AddFamily(out, "bridge_cache_verified_bytes_total",
            "Bytes of cached entries hashed to verify them", MetricType::Counter,
            {{"", s.bytes_verified}});
  AddFamily(out, "bridge_cache_entries", "Committed result-cache entries", MetricType::Gauge,
            {{"", s.entries}});
  AddFamily(out, "bridge_cache_bytes", "Size of the result cache's files", MetricType::Gauge,
            {{"", s.bytes}});
  AddFamily(out, "bridge_cache_capacity_bytes", "The result cache's byte budget", MetricType::Gauge,
            {{"", cache.options().max_bytes}});
}

}  // namespace

std::string SerializeMetrics(const prometheus::Registry& registry, const cache::Cache* cache) {
  std::vector<prometheus::MetricFamily> families = registry.Collect();
  if (cache != nullptr) AddCacheFamilies(*cache, families);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace bridge::http
