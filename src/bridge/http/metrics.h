// Prometheus metrics of the HTTP server. The families live in a registry the app owns
// (the Flight server adds its own families to the same registry); GET /metrics serializes
// it with SerializeMetrics.
//
// Thread safety: every method may be called from any thread at the same time. Lifetime: the
// registry must outlive the HttpMetrics.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/cache/cache.h"
#include "bridge/http/request.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace bridge::http {

class HttpMetrics {  // thread-safe
 public:
  // Registers the families:
  //   bridge_http_requests_total{route,status}             counter
  //   bridge_http_request_duration_seconds{route}          histogram (0.0005 .. 30 s)
  //   bridge_http_response_bytes_total{format}             counter
  //   bridge_http_rows_total{format}                       counter
  //   bridge_http_arrow_bytes_copied_total                 counter
  //   bridge_http_arrow_sendfile_bytes_total               counter
  //   bridge_http_queries_cancelled_total{reason}          counter
  //   bridge_http_active_queries                           gauge
  //   bridge_http_queued_queries                           gauge
  explicit HttpMetrics(prometheus::Registry& registry);
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;

  // Counts one request of `route` (a pattern such as "/tables/{name}/rows", not the raw
  // path) answered with `status` after `seconds`.
  void Request(std::string_view route, int status, double seconds);  // counter + histogram
  void BytesOut(OutputFormat f, uint64_t bytes);  // bridge_http_response_bytes_total{format}
  void BytesOut(std::string_view format_label, uint64_t bytes);  // "file" for /files
  void RowsOut(OutputFormat f, uint64_t rows);                   // bridge_http_rows_total{format}
  void ArrowBytesCopied(uint64_t bytes);  // bridge_http_arrow_bytes_copied_total
  // bridge_http_arrow_sendfile_bytes_total: format=arrow bytes sent by sendfile(2) from a
  // file (a cache hit, or a miss written through its entry's file).
  void ArrowSendfileBytes(uint64_t bytes);
  // bridge_http_cache_lookups_total{result}: hit, miss, refresh, uncacheable.
  void CacheLookup(std::string_view result);
  // bridge_http_queries_cancelled_total{reason="disconnect|timeout|shutdown"}
  void QueryCancelled(std::string_view reason);
  prometheus::Gauge& active_queries();  // bridge_http_active_queries
  prometheus::Gauge& queued_queries();  // bridge_http_queued_queries

  // Latency histogram bucket bounds, in seconds.
  static const std::vector<double>& LatencyBuckets();

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& bytes_out_;
  prometheus::Family<prometheus::Counter>& rows_out_;
  prometheus::Counter& arrow_bytes_copied_;
  prometheus::Counter& arrow_sendfile_bytes_;
  prometheus::Family<prometheus::Counter>& cancelled_;
  prometheus::Family<prometheus::Counter>& cache_lookups_;
  prometheus::Gauge& active_queries_;
  prometheus::Gauge& queued_queries_;
};

// The registry's metrics in the Prometheus text format (version 0.0.4), and with a result
// cache its counters, read at this moment (the cache is shared by HTTP and Flight):
//   bridge_cache_lookups_total{result}       counter  hit, miss
//   bridge_cache_evictions_total             counter  LRU, TTL, other table versions,
//                                                     invalidation, replacement, corruption,
//                                                     unopenable file, DELETE, cache-clear
//   bridge_cache_writes_total{result}        counter  committed, abandoned
//   bridge_cache_verify_failures_total       counter  checksum mismatches
//   bridge_cache_verified_bytes_total        counter  bytes hashed to verify entries
//   bridge_cache_entries                     gauge    committed entries
//   bridge_cache_bytes                       gauge    their files' size
//   bridge_cache_capacity_bytes              gauge    the byte budget (--cache-bytes)
std::string SerializeMetrics(const prometheus::Registry& registry,
                             const cache::Cache* cache = nullptr);

}  // namespace bridge::http
