// Gateway overhead of Bridge's HTTP API: one query answered over HTTP (keep-alive, libcurl)
// vs the same query in-process through the engine and catalog, interleaved rep by rep so
// both see the same machine load.
//
//   http_latency --data DIR --url http://127.0.0.1:PORT --sql SQL [--reps N] [--warmup N]
//                [--format json|arrow ...]
//
// Prints one JSON object per line: {"what": "in-process ..."|"http format=json"|...,
// "p50_us", "p99_us", "mean_us", "reps", "rows" (in-process), "bytes" (HTTP body),
// "paired_overhead_p50_us" (HTTP: median over repetitions of HTTP time - in-process time),
// "server_engine_p50_us" (HTTP: the time DuckDB took in the server, from the response's
// Server-Timing trailer), "gateway_p50_us" (HTTP: median over repetitions of HTTP time - that
// engine time: what the gateway adds around the same engine in the same process)}.
// The in-process run opens the data folder like `bridge serve` (engine + catalog, same
// threads) and drains the result as Arrow batches; the HTTP run downloads the whole body.
// --url - measures in-process only.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bridge/catalog/catalog.h"
#include "bridge/engine/engine.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  std::string what;
  std::vector<double> us;
  int64_t rows = -1;                  // in-process: rows of the result
  int64_t bytes = -1;                 // HTTP: bytes of the response body
  double paired_overhead_p50_us = 0;  // HTTP: median of (HTTP - in-process) per repetition
  std::vector<double> engine_us;      // HTTP: DuckDB's time in the server (Server-Timing)
  std::vector<double> gateway_us;     // HTTP: HTTP time - the server's engine time
};

size_t Discard(char* /*data*/, size_t size, size_t n, void* total) {
  *static_cast<size_t*>(total) += size * n;
  return size * n;
}

// Keeps the dur= of a "Server-Timing: engine;dur=MS" header or trailer, in microseconds.
size_t OnHeader(char* data, size_t size, size_t n, void* engine_us) {
  std::string line(data, size * n);
  constexpr std::string_view kField = "server-timing: engine;dur=";
  if (line.size() > kField.size()) {
    std::string name = line.substr(0, kField.size());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == kField) {
      *static_cast<double*>(engine_us) = std::atof(line.c_str() + kField.size()) * 1000;
    }
  }
  return size * n;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Print(Stats& s) {
  std::sort(s.us.begin(), s.us.end());
  auto at = [&](double q) { return s.us[static_cast<size_t>(q * (s.us.size() - 1))]; };
  double sum = 0;
  for (double v : s.us) sum += v;
  std::printf(
      "{\"what\": \"%s\", \"p50_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f, \"reps\": %zu, "
      "\"rows\": %lld, \"bytes\": %lld, \"paired_overhead_p50_us\": %.1f, "
      "\"server_engine_p50_us\": %.1f, \"gateway_p50_us\": %.1f}\n",
      s.what.c_str(), at(0.5), at(0.99), sum / s.us.size(), s.us.size(),
      static_cast<long long>(s.rows), static_cast<long long>(s.bytes), s.paired_overhead_p50_us,
      Median(s.engine_us), Median(s.gateway_us));
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "http_latency: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data;
  std::string url;
  std::string sql;
  int reps = 500;
  int warmup = 20;
  std::vector<std::string> formats;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    std::string value = argv[i + 1];
    if (key == "--data") {
      data = value;
    } else if (key == "--url") {
      url = value;
    } else if (key == "--sql") {
      sql = value;
    } else if (key == "--reps") {
      reps = std::atoi(value.c_str());
    } else if (key == "--warmup") {
      warmup = std::atoi(value.c_str());
    } else if (key == "--format") {
      formats.push_back(value);
    } else {
      return Fail("unknown option " + key);
    }
  }
  if (data.empty() || url.empty() || sql.empty() || reps < 1) {
    return Fail("usage: http_latency --data DIR --url URL --sql SQL [--reps N] [--format F]");
  }
  if (formats.empty()) formats = {"json", "arrow"};
  if (url == "-") formats.clear();  // in-process only

  bridge::engine::EngineOptions options;
  options.data_dir = data;
  auto db = bridge::engine::Database::Open(options);
  if (!db.ok()) return Fail(db.status().ToString());
  bridge::catalog::CatalogOptions catalog_options;
  catalog_options.watch = false;
  auto catalog = bridge::catalog::Catalog::Open(**db, catalog_options);
  if (!catalog.ok()) return Fail(catalog.status().ToString());
  auto session = (*db)->Connect();
  if (!session.ok()) return Fail(session.status().ToString());

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* curl = curl_easy_init();
  char* escaped = curl_easy_escape(curl, sql.c_str(), static_cast<int>(sql.size()));
  std::vector<std::string> urls;
  // cache=off: the gateway overhead of a query that runs (a cached result would not run).
  for (const auto& f : formats) {
    urls.push_back(url + "/query?format=" + f + "&cache=off&sql=" + escaped);
  }
  curl_free(escaped);
  size_t body_bytes = 0;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_bytes);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  double engine_us = -1;
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &engine_us);

  Stats in_process{"in-process (engine + catalog)", {}};
  std::vector<Stats> http;
  for (const auto& f : formats) http.push_back({"http format=" + f, {}});

  for (int rep = -warmup; rep < reps; ++rep) {
    auto t0 = Clock::now();
    auto stream = (*session)->Query(sql);
    if (!stream.ok()) return Fail(stream.status().ToString());
    int64_t rows = 0;
    for (;;) {
      auto batch = (*stream)->Next();
      if (!batch.ok()) return Fail(batch.status().ToString());
      if (!batch->valid()) break;
      rows += (*batch)->length;
    }
    stream->reset();
    auto t1 = Clock::now();
    if (rep >= 0) {
      in_process.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      in_process.rows = rows;
    }
    // The formats take turns going first after the in-process run (whose DuckDB threads may
    // still be winding down), so that neither always pays for following it.
    for (size_t k = 0; k < urls.size(); ++k) {
      const size_t i = (k + static_cast<size_t>(rep + warmup)) % urls.size();
      curl_easy_setopt(curl, CURLOPT_URL, urls[i].c_str());
      body_bytes = 0;
      engine_us = -1;
      auto h0 = Clock::now();
      CURLcode rc = curl_easy_perform(curl);
      auto h1 = Clock::now();
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK || status != 200) {
        return Fail("GET " + urls[i] + ": " + curl_easy_strerror(rc) + ", status " +
                    std::to_string(status));
      }
      if (engine_us < 0) return Fail("GET " + urls[i] + ": no Server-Timing trailer");
      if (rep >= 0) {
        double us = std::chrono::duration<double, std::micro>(h1 - h0).count();
        http[i].us.push_back(us);
        http[i].bytes = static_cast<int64_t>(body_bytes);
        http[i].engine_us.push_back(engine_us);
        http[i].gateway_us.push_back(us - engine_us);
      }
    }
  }
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  // Paired differences (same repetition, back to back) cancel most of the machine's noise.
  for (auto& s : http) {
    std::vector<double> diff;
    for (size_t i = 0; i < s.us.size(); ++i) diff.push_back(s.us[i] - in_process.us[i]);
    s.paired_overhead_p50_us = Median(std::move(diff));
  }
  Print(in_process);
  for (auto& s : http) Print(s);
  return 0;
}
