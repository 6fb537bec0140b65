// Gateway overhead of Bridge's HTTP API: one query answered over HTTP (keep-alive) vs the
// same query in-process through the engine and catalog, interleaved rep by rep so all see
// the same machine load. Each format is fetched twice per rep: by libcurl (what an
// application would use) and by a minimal raw-socket client (one write, reads until the
// chunked body and its trailer end), whose own cost is closer to nothing: after a 30 ms
// query, libcurl alone adds ~0.4 ms on the development VM. A floor row shows what any
// server costs on this machine: a thread in this process that answers each request after
// sleeping as long as the in-process query took in the same rep (read by the raw client).
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
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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

// ---- A minimal HTTP/1.1 client on one keep-alive connection ----

int ConnectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Sends `request` and reads one chunked response to its end; returns false on a connection
// error or a response that is not a chunked 200. Sets the body's size and the trailer's
// engine time (microseconds; -1 if none).
bool RawGet(int fd, const std::string& request, std::string& buffer, int64_t& body_bytes,
            double& engine_us) {
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return false;
  }
  buffer.clear();
  size_t pos = 0;
  // Makes sure buffer[pos, pos + n) is there.
  auto need = [&](size_t n) {
    char chunk[65536];
    while (buffer.size() < pos + n) {
      const ssize_t got = ::recv(fd, chunk, sizeof(chunk), 0);
      if (got <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(got));
    }
    return true;
  };
  // The next CRLF-terminated line from pos (without the CRLF).
  auto line = [&](std::string& out) {
    for (;;) {
      const size_t end = buffer.find("\r\n", pos);
      if (end != std::string::npos) {
        out.assign(buffer, pos, end - pos);
        pos = end + 2;
        return true;
      }
      if (!need(buffer.size() - pos + 1)) return false;
    }
  };
  std::string text;
  if (!line(text) || text.rfind("HTTP/1.1 200", 0) != 0) return false;
  bool chunked = false;
  while (line(text) && !text.empty()) {
    if (text == "Transfer-Encoding: chunked") chunked = true;
  }
  if (!chunked) return false;
  body_bytes = 0;
  for (;;) {
    if (!line(text)) return false;
    const int64_t size = std::strtoll(text.c_str(), nullptr, 16);
    if (size == 0) break;
    if (!need(static_cast<size_t>(size) + 2)) return false;
    pos += static_cast<size_t>(size) + 2;
    body_bytes += size;
  }
  engine_us = -1;
  constexpr std::string_view kTrailer = "Server-Timing: engine;dur=";
  while (line(text) && !text.empty()) {
    if (text.rfind(kTrailer, 0) == 0) engine_us = std::atof(text.c_str() + kTrailer.size()) * 1000;
  }
  return true;
}

// ---- The floor: a server that does nothing but wait as long as the query ----

class FloorServer {
 public:
  FloorServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FloorServer() {
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  int port() const { return port_; }
  // How long the next request waits before its answer.
  void set_wait(Clock::duration wait) { wait_ns_ = wait.count(); }

 private:
  void Serve() {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string request;
    char chunk[4096];
    for (;;) {
      const ssize_t got = ::recv(fd, chunk, sizeof(chunk), 0);
      if (got <= 0) break;
      request.append(chunk, static_cast<size_t>(got));
      if (request.find("\r\n\r\n") == std::string::npos) continue;
      request.clear();
      // The trailer says how long the sleep really took (it overshoots by the timer's
      // slack), as Bridge's says how long DuckDB took.
      const auto slept_from = Clock::now();
      std::this_thread::sleep_for(Clock::duration(wait_ns_.load()));
      const Clock::duration wait = Clock::now() - slept_from;
      char reply[256];
      const int n =
          std::snprintf(reply, sizeof(reply),
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfloor\r\n"
                        "0\r\nServer-Timing: engine;dur=%.3f\r\n\r\n",
                        std::chrono::duration<double, std::milli>(wait).count());
      if (::send(fd, reply, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    ::close(fd);
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<Clock::rep> wait_ns_{0};
};

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
  // The raw client's connection to the server, and the floor server with its own.
  std::vector<Stats> raw;
  std::vector<std::string> raw_requests;
  int raw_fd = -1;
  std::optional<FloorServer> floor;
  int floor_fd = -1;
  Stats floor_stats{"floor: a server that sleeps the in-process time, then answers (raw client)",
                    {}};
  if (!formats.empty()) {
    const size_t colon = url.rfind(':');
    const int port = colon == std::string::npos ? 0 : std::atoi(url.c_str() + colon + 1);
    raw_fd = ConnectTo(port);
    if (raw_fd < 0) return Fail("cannot connect to " + url);
    for (size_t i = 0; i < formats.size(); ++i) {
      raw.push_back({"http format=" + formats[i] + " (raw socket client)", {}});
      raw_requests.push_back("GET " + urls[i].substr(urls[i].find('/', url.find("//") + 2)) +
                             " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    }
    floor.emplace();
    floor_fd = ConnectTo(floor->port());
    if (floor_fd < 0) return Fail("cannot connect to the floor server");
  }
  std::string raw_buffer;
  // One raw GET; false (with a message printed) on failure.
  auto raw_get = [&](int fd, const std::string& request, Stats& stats, bool keep) {
    int64_t bytes = 0;
    double engine = -1;
    const auto r0 = Clock::now();
    const bool ok = RawGet(fd, request, raw_buffer, bytes, engine);
    const auto r1 = Clock::now();
    if (!ok || engine < 0) {
      Fail(stats.what + ": the response was not a chunked 200 with a Server-Timing trailer");
      return false;
    }
    if (keep) {
      const double us = std::chrono::duration<double, std::micro>(r1 - r0).count();
      stats.us.push_back(us);
      stats.bytes = bytes;
      stats.engine_us.push_back(engine);
      stats.gateway_us.push_back(us - engine);
    }
    return true;
  };

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
    if (floor) {
      floor->set_wait(t1 - t0);
      if (!raw_get(floor_fd, "GET / HTTP/1.1\r\n\r\n", floor_stats, rep >= 0)) return 1;
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
      if (!raw_get(raw_fd, raw_requests[i], raw[i], rep >= 0)) return 1;
    }
  }
  if (raw_fd >= 0) ::close(raw_fd);
  if (floor_fd >= 0) ::close(floor_fd);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  // Paired differences (same repetition, back to back) cancel most of the machine's noise.
  for (std::vector<Stats>* client : {&http, &raw}) {
    for (auto& s : *client) {
      std::vector<double> diff;
      for (size_t i = 0; i < s.us.size(); ++i) diff.push_back(s.us[i] - in_process.us[i]);
      s.paired_overhead_p50_us = Median(std::move(diff));
    }
  }
  Print(in_process);
  for (auto& s : http) Print(s);
  for (auto& s : raw) Print(s);
  if (floor) Print(floor_stats);
  return 0;
}
