#include "bridge/http/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "boost/asio.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl.hpp"
#include "bridge/arrow/encoder.h"
#include "bridge/auth/auth.h"
#include "bridge/cache/cache.h"
#include "bridge/cache/result_key.h"
#include "bridge/catalog/catalog.h"
#include "bridge/engine/engine.h"
#include "bridge/format/row_writer.h"
#include "bridge/http/errors.h"
#include "bridge/http/files.h"
#include "bridge/http/metrics.h"
#include "bridge/http/request.h"
#include "bridge/http/rows_query.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace bridge::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// Text output is sent as a chunk once it passes this size (or when the result ends).
constexpr size_t kTextFlushBytes = size_t{256} << 10;
// Arrow output gathers the messages of several batches into one write (one writev, one trip
// through the socket's strand) until they pass this size, the result ends, or gathering
// took kArrowFlushAfter (a slow query's first rows are not held back).
constexpr int64_t kArrowFlushBytes = int64_t{1} << 20;
constexpr auto kArrowFlushAfter = std::chrono::milliseconds(20);
// End-of-stream marker of the Arrow IPC stream format.
constexpr uint8_t kEndOfStream[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
constexpr std::string_view kCrlf = "\r\n";

std::string DumpJson(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

// ISO-8601 UTC time with seconds ("2026-11-21T19:30:58Z").
std::string IsoTime(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string ResponseHead(int status, std::string_view content_type,
                         std::optional<uint64_t> content_length, bool chunked, bool keep_alive,
                         std::string_view extra_headers) {
  std::string head =
      StrCat("HTTP/1.1 ", status, " ",
             std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(status))), "\r\n");
  if (!content_type.empty()) head += StrCat("Content-Type: ", std::string(content_type), "\r\n");
  if (content_length) {
    head += StrCat("Content-Length: ", *content_length, "\r\n");
  } else if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  }
  if (!keep_alive) head += "Connection: close\r\n";
  head.append(extra_headers);
  head += "\r\n";
  return head;
}

std::string ChunkLine(uint64_t size) { return fmt::format("{:x}\r\n", size); }

format::TextFormat TextFormatOf(OutputFormat f) {
  switch (f) {
    case OutputFormat::kNdjson:
      return format::TextFormat::kNdjson;
    case OutputFormat::kCsv:
      return format::TextFormat::kCsv;
    default:
      return format::TextFormat::kJson;
  }
}

// At most `max_active` queries run; up to `max_queued` wait for a slot in order. Thread-safe.
class QueryGate {
 public:
  QueryGate(int max_active, int max_queued, HttpMetrics& metrics)
      : max_active_(max_active), max_queued_(max_queued), metrics_(metrics) {}

  // Runs `start` now if a slot is free, or later (on the thread that frees a slot) if the
  // queue has room. Returns false, without running it, when both are full.
  bool Acquire(std::function<void()> start) {
    {
      std::lock_guard lock(mu_);
      if (active_ >= max_active_) {
        if (static_cast<int>(waiting_.size()) >= max_queued_) return false;
        waiting_.push_back(std::move(start));
        metrics_.queued_queries().Set(static_cast<double>(waiting_.size()));
        return true;
      }
      ++active_;
      metrics_.active_queries().Set(active_);
    }
    start();
    return true;
  }

  // Frees a slot taken by Acquire, handing it to the first waiting query if any.
  void Release() {
    std::function<void()> next;
    {
      std::lock_guard lock(mu_);
      if (!waiting_.empty()) {
        next = std::move(waiting_.front());
        waiting_.pop_front();
        metrics_.queued_queries().Set(static_cast<double>(waiting_.size()));
      } else {
        --active_;
        metrics_.active_queries().Set(active_);
      }
    }
    if (next) next();
  }

  std::pair<int, int> Counts() const {
    std::lock_guard lock(mu_);
    return {active_, static_cast<int>(waiting_.size())};
  }

 private:
  const int max_active_;
  const int max_queued_;
  HttpMetrics& metrics_;
  mutable std::mutex mu_;
  int active_ = 0;
  std::deque<std::function<void()>> waiting_;
};

// One /query (or /tables/{name}/rows) response. The worker pool and the connection's strand
// take turns on it (fetch, then write, then fetch ...), so apart from `mu` (cancellation)
// nothing is touched by two threads at once.
struct QueryJob {
  QueryRequest request;
  Clock::time_point started;

  // Worker side.
  std::unique_ptr<engine::BatchStream> stream;
  std::unique_ptr<ipc::RecordBatchEncoder> encoder;
  std::unique_ptr<format::RowWriter> writer;
  bool set_up = false;
  bool released = false;  // session and slot given back (set on the pool, read after the hand-off)
  // Time spent in DuckDB (preparing, executing, fetching batches) on the pool's threads; the
  // response ends with it in a Server-Timing trailer.
  Clock::duration engine_time{};
  std::optional<int64_t> rows_left;

  // What the last step produced, taken by the strand when it sends the step.
  std::vector<ipc::EncodedMessage> messages;  // format=arrow
  std::string text;                           // json / ndjson / csv (reused)
  bool done = false;                          // the result ended with this step
  uint64_t step_rows = 0;
  int64_t step_copied = 0;
  // Held for a whole step and by the release: the next step runs while the strand writes
  // the last one, so a release (the client went away) must wait for the step under way.
  std::mutex produce_mu;

  // Parquet: the finished file.
  std::filesystem::path parquet_path;

  // Result cache (format=arrow): the key when the result may be cached, the entry being
  // written while the result streams (a miss), or the entry served instead (a hit).
  std::optional<cache::CacheKey> cache_key;
  std::unique_ptr<cache::EntryWriter> cache_writer;
  // Write-through (plain TCP): the pool appends each message of a step to the entry's file
  // as it encodes it, and the strand sends the step's messages from the file (sendfile)
  // rather than from memory, so the body is copied once (into the page cache) instead of
  // twice (socket and file). Messages [file_from, end) of the step just produced lie at
  // `file_part` of the file; an empty part (the cache gave up) sends the step from memory.
  // Otherwise (TLS) the pool queues the messages on the cache's writer thread.
  bool write_through = false;
  size_t file_from = 0;
  ipc::ByteRange file_part;
  std::shared_ptr<const cache::Entry> cached;
  std::string cache_header;  // "X-Bridge-Cache: ...\r\n" or ""

  // Strand side. The step being written (moved out of messages/text, so the pool can
  // produce the next one meanwhile), whether a write is in flight, and whether a produced
  // step waits for it to complete.
  std::vector<ipc::EncodedMessage> sending;
  std::string sending_text;
  bool sending_done = false;
  bool writing = false;
  bool step_waiting = false;
  std::string head;
  std::string chunk_line;
  std::string last_chunk;
  bool header_sent = false;
  bool ended = false;
  uint64_t bytes_sent = 0;
  uint64_t rows_sent = 0;
  int file_fd = -1;
  uint64_t file_start = 0;        // where the bytes to send begin in the file
  uint64_t file_size = 0;         // where they end
  uint64_t file_offset = 0;       // the next byte to send
  std::vector<char> file_buffer;  // TLS: sendfile cannot encrypt
  // A step sent partly from the file (write-through): what follows the file's bytes.
  std::vector<asio::const_buffer> after_file;
  std::string bytes_label;  // metrics' format label of a file response ("" = a query's)

  // Any thread.
  std::mutex mu;
  std::unique_ptr<engine::Session> session;  // guarded by mu (Cancel may race with set-up)
  bool cancelled = false;                    // guarded by mu
  std::string cancel_reason;                 // guarded by mu

  ~QueryJob() {
    if (file_fd >= 0) ::close(file_fd);
  }

  // Records why the query is being cancelled; true the first time only (count it then).
  bool MarkCancelled(std::string_view reason) {
    std::lock_guard lock(mu);
    if (!cancel_reason.empty()) return false;
    cancel_reason = std::string(reason);
    return true;
  }
  void Cancel() {
    std::lock_guard lock(mu);
    cancelled = true;
    if (session) session->Cancel();
  }
  bool IsCancelled() {
    std::lock_guard lock(mu);
    return cancelled;
  }
};

class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  // Shutdown began: close if idle, else close after the response in flight.
  virtual void OnShutdown() = 0;
  // The grace period is over: cancel the query, close the socket.
  virtual void OnForceClose() = 0;
};

// Everything the connections share. Outlives every connection (Shutdown waits for them).
class ServerCore {
  // Declared first so that they outlive everything below that may hold a connection.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, std::weak_ptr<ConnectionBase>> connections_;
  uint64_t next_id_ = 0;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;

 public:
  ServerCore(const ServerOptions& options, const Services& services)
      : options(options),
        services(services),
        metrics(*services.registry),
        gate(options.max_concurrent_queries, options.max_queued_queries, metrics),
        // Pool threads run handlers too (Produce's poll_one).
        ioc(options.io_threads + options.max_concurrent_queries),
        acceptor(asio::make_strand(ioc)),
        pool(static_cast<size_t>(options.max_concurrent_queries)) {}

  const ServerOptions options;
  const Services services;
  HttpMetrics metrics;
  QueryGate gate;
  asio::io_context ioc;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor;
  asio::thread_pool pool;
  std::vector<std::thread> io_threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> temp_files{0};

  uint64_t Add(std::weak_ptr<ConnectionBase> connection) {
    std::lock_guard lock(mu_);
    uint64_t id = ++next_id_;
    connections_.emplace(id, std::move(connection));
    return id;
  }
  void Remove(uint64_t id) {
    std::lock_guard lock(mu_);
    connections_.erase(id);
    cv_.notify_all();
  }
  void ForEach(void (ConnectionBase::*method)()) {
    std::vector<std::shared_ptr<ConnectionBase>> live;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, weak] : connections_) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) ((*c).*method)();
  }
  // Waits until no connection is left or `deadline` passes; true if none is left.
  bool WaitForNoConnections(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return connections_.empty(); });
  }

  void Accept();
  void Shutdown(std::chrono::milliseconds grace);
};

enum class Route {
  kQuery,
  kTables,
  kTable,
  kRows,
  kHealth,
  kMetrics,
  kToken,
  kFiles,
  kResults,
  kResultsAll,
  kNone
};

struct RouteInfo {
  Route route = Route::kNone;
  std::string label = "other";  // metric label: the pattern, never the raw path
  std::string table;            // {name}; /files/{path}: the encoded path; /results/{id}
  const char* allow = "";
};

Result<RouteInfo> MatchRoute(std::string_view path) {
  RouteInfo info;
  if (path == "/query") {
    info = {Route::kQuery, "/query", "", "GET, POST, OPTIONS"};
  } else if (path == "/tables") {
    info = {Route::kTables, "/tables", "", "GET, OPTIONS"};
  } else if (path == "/health") {
    info = {Route::kHealth, "/health", "", "GET, OPTIONS"};
  } else if (path == "/metrics") {
    info = {Route::kMetrics, "/metrics", "", "GET, OPTIONS"};
  } else if (path == "/auth/token") {
    info = {Route::kToken, "/auth/token", "", "POST, OPTIONS"};
  } else if (path.starts_with("/files/")) {
    // Decoded and checked by OpenDataFile (which tells a bad escape from a missing file).
    info = {Route::kFiles, "/files/{path}", std::string(path.substr(7)), "GET, HEAD, OPTIONS"};
  } else if (path == "/results") {
    info = {Route::kResultsAll, "/results", "", "DELETE, OPTIONS"};
  } else if (path.starts_with("/results/")) {
    std::string_view id = path.substr(9);
    if (id.empty() || id.find('/') != std::string_view::npos) return info;
    info = {Route::kResults, "/results/{id}", std::string(id), "GET, HEAD, DELETE, OPTIONS"};
  } else if (path.starts_with("/tables/")) {
    std::string_view rest = path.substr(8);
    bool rows = false;
    if (rest.ends_with("/rows")) {
      rest.remove_suffix(5);
      rows = true;
    }
    if (rest.empty() || rest.find('/') != std::string_view::npos) return info;
    BRIDGE_ASSIGN_OR_RETURN(std::string name, PercentDecode(rest));
    if (rows) {
      info = {Route::kRows, "/tables/{name}/rows", std::move(name), "GET, OPTIONS"};
    } else {
      info = {Route::kTable, "/tables/{name}", std::move(name), "GET, OPTIONS"};
    }
  }
  return info;
}

bool MethodAllowed(Route route, bhttp::verb method) {
  switch (route) {
    case Route::kQuery:
      return method == bhttp::verb::get || method == bhttp::verb::post;
    case Route::kToken:
      return method == bhttp::verb::post;
    case Route::kFiles:
      return method == bhttp::verb::get || method == bhttp::verb::head;
    case Route::kResults:
      return method == bhttp::verb::get || method == bhttp::verb::head ||
             method == bhttp::verb::delete_;
    case Route::kResultsAll:
      return method == bhttp::verb::delete_;
    default:
      return method == bhttp::verb::get;
  }
}

Json TableJson(const catalog::TableInfo& t) {
  Json columns = Json::array();
  for (const auto& c : t.columns) columns.push_back({{"name", c.name}, {"type", c.type}});
  Json j = {{"name", t.name},        {"path", t.path.generic_string()},
            {"format", t.format},    {"columns", std::move(columns)},
            {"files", t.file_count}, {"bytes", t.bytes},
            {"version", t.version}};
  j["rows"] = t.rows ? Json(*t.rows) : Json(nullptr);
  j["error"] = t.error.empty() ? Json(nullptr) : Json(t.error);
  return j;
}

// One HTTP/1.1 connection over `Stream` (beast::tcp_stream or an ssl_stream over one).
// Every handler runs on the connection's strand.
template <typename Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(ServerCore& core, Stream stream)
      : core_(core),
        stream_(std::move(stream)),
        timer_(stream_.get_executor()),
        send_timer_(stream_.get_executor()) {}
  ~Connection() override {
    if (id_ != 0) core_.Remove(id_);
  }

  void Start() {
    id_ = core_.Add(this->weak_from_this());
    if (core_.stopping) return;  // Shutdown may have missed us: drop the connection
    if constexpr (kTls) {
      Lowest().expires_after(core_.options.idle_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->CloseNow();
                                self->ReadRequest();
                              });
    } else {
      ReadRequest();
    }
  }

  void OnShutdown() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (!self->busy_) self->CloseNow();
    });
  }

  void OnForceClose() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (self->job_) {
        if (self->job_->MarkCancelled("shutdown")) self->core_.metrics.QueryCancelled("shutdown");
        self->job_->Cancel();
      }
      self->CloseNow();
    });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // ---- Reading requests ----

  void ReadRequest() {
    busy_ = false;
    if (closing_ || !Lowest().socket().is_open()) return CloseNow();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(core_.options.max_header_bytes));
    parser_->body_limit(core_.options.max_request_bytes);
    Lowest().expires_never();
    timed_out_ = false;
    uint64_t generation = ++read_generation_;
    timer_.expires_after(core_.options.idle_timeout);
    timer_.async_wait([self = this->shared_from_this(), generation](beast::error_code ec) {
      if (ec || generation != self->read_generation_ || self->busy_) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->Lowest().socket().cancel(ignored);
    });
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    if (!parser_->is_done()) {
      if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
        continue_line_ = "HTTP/1.1 100 Continue\r\n\r\n";
        asio::async_write(stream_, asio::buffer(continue_line_),
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return self->CloseNow();
                            self->ReadBody();
                          });
        return;
      }
      return ReadBody();
    }
    OnRequest();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->OnRequest();
                      });
  }

  void OnReadError(beast::error_code ec) {
    ++read_generation_;
    timer_.cancel();
    route_label_ = "other";
    started_ = Clock::now();
    keep_alive_ = false;
    extra_headers_.clear();
    bool got_some = (parser_ && parser_->got_some()) || buffer_.size() > 0;
    if (timed_out_ && got_some) {
      busy_ = true;
      return SendError(408, StatusCode::kDeadlineExceeded, "request_timeout",
                       "http: the request was not received in time");
    }
    if (ec == bhttp::error::body_limit) {
      busy_ = true;
      return SendError(413, StatusCode::kResourceExhausted, "request_too_large",
                       StrCat("http: the request body is larger than ",
                              core_.options.max_request_bytes, " bytes"));
    }
    if (ec == bhttp::error::header_limit) {
      busy_ = true;
      return SendError(413, StatusCode::kResourceExhausted, "request_too_large",
                       StrCat("http: the request header is larger than ",
                              core_.options.max_header_bytes, " bytes"));
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      busy_ = true;
      return SendError(400, StatusCode::kInvalidArgument, "invalid_argument",
                       StrCat("http: malformed request: ", ec.message()));
    }
    CloseNow();
  }

  // ---- Routing ----

  void OnRequest() {
    ++read_generation_;
    timer_.cancel();
    busy_ = true;
    started_ = Clock::now();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive() && !closing_;
    http10_ = req.version() < 11;
    extra_headers_.clear();
    route_label_ = "other";

    std::string_view target(req.target().data(), req.target().size());
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);

    // CORS: only configured origins, matched exactly.
    std::string_view origin(req[bhttp::field::origin].data(), req[bhttp::field::origin].size());
    bool cors = false;
    if (!origin.empty()) {
      for (const auto& allowed : core_.options.cors_origins) {
        if (allowed == origin) cors = true;
      }
    }
    if (cors) {
      extra_headers_ +=
          StrCat("Access-Control-Allow-Origin: ", std::string(origin), "\r\nVary: Origin\r\n");
    }

    auto matched = MatchRoute(path);
    if (!matched.ok()) return SendStatus(400, matched.status());
    RouteInfo info = std::move(matched).value();
    route_label_ = info.label;
    if (info.route == Route::kNone) {
      return SendError(404, StatusCode::kNotFound, "not_found",
                       StrCat("http: no route ", std::string(path)));
    }
    if (req.method() == bhttp::verb::options) {
      extra_headers_ += StrCat("Allow: ", info.allow, "\r\n");
      if (cors) {
        extra_headers_ +=
            StrCat("Access-Control-Allow-Methods: ", info.allow,
                   "\r\nAccess-Control-Allow-Headers: Authorization, Content-Type, Accept\r\n"
                   "Access-Control-Max-Age: 600\r\n");
      }
      return SendBody(204, "", "");
    }
    if (!MethodAllowed(info.route, req.method())) {
      extra_headers_ += StrCat("Allow: ", info.allow, "\r\n");
      return SendError(405, StatusCode::kInvalidArgument, "method_not_allowed",
                       StrCat("http: ", std::string(req.method_string()), " is not allowed on ",
                              info.label, " (allowed: ", info.allow, ")"));
    }
    auto params = ParseQueryString(query);
    if (!params.ok()) return SendStatus(400, params.status());

    if (info.route == Route::kHealth) return Health();
    if (info.route == Route::kToken) return IssueToken();

    // Everything else needs a principal when authentication is on.
    auth::Principal principal = auth::AnonymousPrincipal();
    const auth::Authenticator* authenticator = core_.services.auth;
    if (authenticator != nullptr && authenticator->enabled()) {
      auto verified = authenticator->VerifyBearer(std::string_view(
          req[bhttp::field::authorization].data(), req[bhttp::field::authorization].size()));
      if (!verified.ok()) {
        extra_headers_ += "WWW-Authenticate: Bearer realm=\"bridge\"\r\n";
        return SendStatus(401, verified.status());
      }
      principal = std::move(verified).value();
    }
    if (info.route == Route::kMetrics) {
      return SendBody(200, "text/plain; version=0.0.4; charset=utf-8",
                      SerializeMetrics(*core_.services.registry, core_.services.cache));
    }
    if (!principal.Has(auth::kRead)) {
      return SendStatus(403, PermissionDenied("http: user '", principal.user,
                                              "' may not read (permission 'read' missing)"));
    }
    if (req.method() == bhttp::verb::delete_ &&
        (info.route == Route::kResults || info.route == Route::kResultsAll)) {
      if (!principal.Has(auth::kAdmin)) {
        return SendStatus(403, PermissionDenied("http: user '", principal.user,
                                                "' may not delete cached results (permission "
                                                "'admin' missing)"));
      }
      return DeleteResults(info.route == Route::kResults ? info.table : std::string(),
                           principal.user);
    }
    switch (info.route) {
      case Route::kTables:
        return Tables();
      case Route::kTable:
        return Table(info.table);
      case Route::kRows:
        return Rows(info.table, *params);
      case Route::kQuery:
        return Query(*params);
      case Route::kFiles:
        return ServeDataFile(info.table);
      case Route::kResults:
        return ServeResult(info.table);
      default:
        return SendError(404, StatusCode::kNotFound, "not_found", "http: no route");
    }
  }

  std::string_view Header(bhttp::field field) {
    auto v = parser_->get()[field];
    return std::string_view(v.data(), v.size());
  }

  void Health() {
    auto tables = core_.services.catalog->Tables();
    int64_t broken = 0;
    for (const auto& t : tables) broken += t.error.empty() ? 0 : 1;
    auto [active, queued] = core_.gate.Counts();
    bool stopping = core_.stopping;
    Json j = {{"status", stopping ? "stopping" : "ok"},
              {"tables", tables.size()},
              {"broken_tables", broken},
              {"catalog_version", core_.services.catalog->version()},
              {"active_queries", active},
              {"queued_queries", queued},
              {"duckdb", engine::DuckDBVersion()}};
    SendBody(stopping ? 503 : 200, "application/json", DumpJson(j));
  }

  void Tables() {
    Json list = Json::array();
    for (const auto& t : core_.services.catalog->Tables()) list.push_back(TableJson(t));
    Json j = {{"catalog_version", core_.services.catalog->version()}, {"tables", std::move(list)}};
    SendBody(200, "application/json", DumpJson(j));
  }

  void Table(const std::string& name) {
    auto table = core_.services.catalog->Table(name);
    if (!table) {
      return SendStatus(404, NotFound("http: no table '", name, "'"));
    }
    SendBody(200, "application/json", DumpJson(TableJson(*table)));
  }

  void IssueToken() {
    const auth::Authenticator* authenticator = core_.services.auth;
    if (authenticator == nullptr || !authenticator->enabled()) {
      return SendStatus(404, NotFound("http: authentication is not enabled on this server"));
    }
    // argon2 takes tens of milliseconds: verify on the pool, not on an I/O thread.
    std::string authorization(Header(bhttp::field::authorization));
    asio::post(core_.pool, [self = this->shared_from_this(), authenticator,
                            authorization = std::move(authorization)] {
      auto principal = authenticator->LoginBasic(authorization);
      std::string body;
      Status status;
      if (principal.ok()) {
        std::string token = authenticator->IssueToken(*principal);
        body = DumpJson({{"token", token},
                         {"token_type", "Bearer"},
                         {"expires_at", IsoTime(principal->expires)},
                         {"expires_in", authenticator->token_ttl().count()},
                         {"user", principal->user},
                         {"permissions", auth::PermissionNames(principal->permissions)}});
      } else {
        status = principal.status();
      }
      asio::post(self->stream_.get_executor(), [self, body = std::move(body), status] {
        if (!status.ok()) {
          self->extra_headers_ += "WWW-Authenticate: Basic realm=\"bridge\"\r\n";
          return self->SendStatus(401, status);
        }
        self->extra_headers_ += "Cache-Control: no-store\r\n";
        self->SendBody(200, "application/json", body);
      });
    });
  }

  // Maps a request-parsing error: 406 for an unacceptable Accept, 413 for a too long SQL.
  void SendParseError(const Status& st) {
    if (st.code() == StatusCode::kFailedPrecondition) {
      return SendError(406, st.code(), "not_acceptable", std::string(st.message()));
    }
    if (st.code() == StatusCode::kResourceExhausted) return SendStatus(413, st);
    SendStatus(HttpStatusOf(st), st);
  }

  void Query(const Params& params) {
    auto& req = parser_->get();
    RequestLimits limits;
    limits.max_sql_length = core_.options.max_sql_length;
    std::string_view method = req.method() == bhttp::verb::post ? "POST" : "GET";
    auto request = ParseQueryRequest(method, params, Header(bhttp::field::content_type), req.body(),
                                     Header(bhttp::field::accept), limits);
    if (!request.ok()) return SendParseError(request.status());
    StartQuery(std::move(request).value());
  }

  void Rows(const std::string& name, const Params& params) {
    auto table = core_.services.catalog->Table(name);
    if (!table) return SendStatus(404, NotFound("http: no table '", name, "'"));
    auto rows = BuildRowsQuery(*table, params);
    if (!rows.ok()) return SendStatus(HttpStatusOf(rows.status()), rows.status());
    // format / compression / cache come from the same parser as /query; limit= is already
    // part of the SQL.
    Params query_params;
    query_params.emplace_back("sql", rows->sql);
    for (const auto& [key, value] : params) {
      if (key == "format" || key == "compression" || key == "cache") {
        query_params.emplace_back(key, value);
      }
    }
    RequestLimits limits;
    limits.max_sql_length = std::max(core_.options.max_sql_length, rows->sql.size());
    auto request =
        ParseQueryRequest("GET", query_params, "", "", Header(bhttp::field::accept), limits);
    if (!request.ok()) return SendParseError(request.status());
    request->params = std::move(rows->params);
    StartQuery(std::move(request).value());
  }

  // ---- Simple responses ----

  void SendStatus(int status, const Status& st) {
    out_ = ErrorBody(st);
    SendBody(status, "application/json", std::move(out_));
  }

  void SendError(int status, StatusCode, std::string_view code, std::string_view message) {
    SendBody(status, "application/json", ErrorBody(code, message));
  }

  void SendBody(int status, std::string_view content_type, std::string body) {
    status_ = status;
    out_ = ResponseHead(
        status, content_type,
        status == 204 || status == 304 ? std::nullopt : std::optional<uint64_t>(body.size()), false,
        keep_alive_, extra_headers_);
    // A HEAD response (errors too) has the headers a GET would have and no body: bytes after
    // them would be read as the next response on a kept-alive connection.
    const bool head =
        parser_ && parser_->is_header_done() && parser_->get().method() == bhttp::verb::head;
    if (!head) out_ += body;
    Lowest().expires_after(core_.options.idle_timeout);
    asio::async_write(stream_, asio::buffer(out_),
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        self->FinishRequest(!ec);
                      });
  }

  // The response is complete (ok) or could not be sent.
  void FinishRequest(bool ok) {
    double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    core_.metrics.Request(route_label_, status_, seconds);
    if (!ok || !keep_alive_ || closing_) return CloseGracefully();
    ReadRequest();
  }

  void CloseGracefully() {
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    CloseNow();
  }

  void CloseNow() {
    ++read_generation_;
    timer_.cancel();
    StopWatchingFileSend();
    beast::error_code ec;
    Lowest().socket().close(ec);
  }

  // ---- Queries ----

  void StartQuery(QueryRequest request) {
    auto job = std::make_shared<QueryJob>();
    job->request = std::move(request);
    job->started = started_;
    job->rows_left = job->request.limit;
    status_ = 200;
    job_ = job;
    auto self = this->shared_from_this();
    bool admitted = core_.gate.Acquire(
        [self, job] { asio::post(self->core_.pool, [self, job] { self->Produce(job); }); });
    if (!admitted) {
      job_.reset();
      auto [active, queued] = core_.gate.Counts();
      return SendStatus(429, ResourceExhausted("http: too many queries (", active, " running, ",
                                               queued, " waiting); try again later"));
    }
    WatchForDisconnect(job);
  }

  // While the query runs, a readable socket with nothing to read means the peer closed.
  void WatchForDisconnect(const std::shared_ptr<QueryJob>& job) {
    Lowest().socket().async_wait(
        tcp::socket::wait_read, [self = this->shared_from_this(), job](beast::error_code ec) {
          if (ec || self->job_ != job || job->ended) return;
          char byte;
          ssize_t n =
              ::recv(self->Lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n > 0) return;  // pipelined bytes: the next request; write errors still tell
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return self->WatchForDisconnect(job);
          }
          self->PeerGone(job);
        });
  }

  void PeerGone(const std::shared_ptr<QueryJob>& job) {
    peer_gone_ = true;
    if (job->MarkCancelled("disconnect")) {
      core_.metrics.QueryCancelled("disconnect");
      spdlog::info("http: client of connection {} went away; query cancelled", id_);
    }
    job->Cancel();
  }

  // Runs on the pool: sets the query up on the first call, then produces the next piece of
  // output (about kArrowFlushBytes of Arrow batches, up to kTextFlushBytes of text), then
  // hands it to the strand. The strand posts the next call as soon as it starts writing.
  void Produce(std::shared_ptr<QueryJob> job) {
    Status st;
    {
      std::lock_guard step(job->produce_mu);
      st = job->released ? Cancelled("http: query cancelled") : ProduceStep(*job);
      // At the end (or on error) free the session and the slot before the last bytes go
      // out, so a client that sends its next query right after this one finds them free.
      if (!st.ok() || job->done) ReleaseQuery(*job, core_);
    }
    asio::post(stream_.get_executor(), [self = this->shared_from_this(), job = std::move(job), st] {
      self->OnProduced(job, st);
    });
    RunReadyHandlers();
  }

  // Sends the step just posted from this pool thread, which is awake, unless an I/O thread
  // took it first: waking an I/O thread that slept through the query costs 0.1-0.25 ms on a
  // virtual machine, and the client waits for it. Runs ready handlers of the io_context
  // (this one, the write's completion, or other connections' short ones) until none is
  // left, at most kMaxPolled: what a handler run by poll_one queues as a continuation (the
  // next write of a long async_write) reaches the shared queue without waking a thread, so
  // this thread must run it, or wake one when it stops early (a stream stalled until the
  // idle timeout without that). The io_context's concurrency hint counts these threads.
  void RunReadyHandlers() {
    constexpr int kMaxPolled = 16;
    int polled = 0;
    while (polled < kMaxPolled && core_.ioc.poll_one() > 0) ++polled;
    if (polled == kMaxPolled) asio::post(core_.ioc, [] {});
  }

  // For format=arrow with a cache: computes the key of a cacheable result and looks it up
  // (unless cache=refresh). Returns true on a hit whose checksums hold (job.cached is set).
  bool LookUpCache(QueryJob& job, engine::Session& session) {
    if (job.request.format != OutputFormat::kArrow || core_.services.cache == nullptr) {
      return false;
    }
    if (job.request.cache == "off") {
      job.cache_header = "X-Bridge-Cache: off\r\n";
      return false;
    }
    const QueryRequest& r = job.request;
    Result<std::optional<cache::CacheKey>> key =
        cache::ResultKey(session, *core_.services.catalog, r.sql, r.params,
                         StrCat("format=arrow;codec=", static_cast<int>(r.compression),
                                ";limit=", r.limit ? StrCat(*r.limit) : "none"));
    if (!key.ok() || !*key) {
      job.cache_header = "X-Bridge-Cache: uncacheable\r\n";
      core_.metrics.CacheLookup("uncacheable");
      return false;
    }
    job.cache_key = std::move(**key);
    if (job.request.cache != "refresh") {
      std::shared_ptr<const cache::Entry> entry = core_.services.cache->Lookup(*job.cache_key);
      if (entry != nullptr) {
        // sendfile sends the bytes as they are on disk: check them first (once per entry).
        Status verified = entry->VerifyAll();
        if (verified.ok()) {
          job.cache_header =
              StrCat("X-Bridge-Cache: hit\r\nX-Bridge-Result-Id: ", entry->id(), "\r\n");
          job.cached = std::move(entry);
          core_.metrics.CacheLookup("hit");
          return true;
        }
        spdlog::warn("http: cached result {} is corrupt ({}); running the query", entry->id(),
                     std::string(verified.message()));
      }
    }
    job.cache_header =
        job.request.cache == "refresh" ? "X-Bridge-Cache: refresh\r\n" : "X-Bridge-Cache: miss\r\n";
    core_.metrics.CacheLookup(job.request.cache == "refresh" ? "refresh" : "miss");
    return false;
  }

  Status SetUp(QueryJob& job) {
    job.set_up = true;
    BRIDGE_ASSIGN_OR_RETURN(auto session, core_.services.db->Connect());
    engine::Session* raw = session.get();
    {
      std::lock_guard lock(job.mu);
      job.session = std::move(session);
      if (job.cancelled) return Cancelled("http: query cancelled");
    }
    if (LookUpCache(job, *raw)) {
      job.done = true;  // a hit: the cached file is sent instead of running the query
      return OkStatus();
    }
    engine::QueryOptions options;
    options.timeout = core_.options.query_timeout;
    options.batch_rows = core_.options.batch_rows;
    options.batch_bytes = core_.options.batch_bytes;
    // A cancel that comes while the statement is prepared cancels the query as it starts.
    const auto query_started = Clock::now();
    auto stream = raw->Query(job.request.sql, job.request.params, options);
    job.engine_time += Clock::now() - query_started;
    BRIDGE_ASSIGN_OR_RETURN(job.stream, std::move(stream));
    switch (job.request.format) {
      case OutputFormat::kArrow: {
        ipc::EncodeOptions encode;
        encode.codec = job.request.compression;
        BRIDGE_ASSIGN_OR_RETURN(job.encoder,
                                ipc::RecordBatchEncoder::Make(job.stream->schema(), encode));
        BRIDGE_ASSIGN_OR_RETURN(auto schema, job.encoder->EncodeSchema());
        job.messages.push_back(std::move(schema));
        if (job.cache_key) {
          // A miss: the same messages also go to a new cache entry (the tee).
          auto writer =
              core_.services.cache->BeginWrite(*job.cache_key, job.stream->schema(), encode);
          if (writer.ok()) {
            job.cache_writer = std::move(writer).value();
            if constexpr (!kTls) {
              // The strand's own descriptor: the writer closes its one at Commit or Abandon.
              job.file_fd = ::fcntl(job.cache_writer->fd(), F_DUPFD_CLOEXEC, 0);
              job.write_through = job.file_fd >= 0;
            }
            // The id names the file once the response is complete (404 before, or if the
            // entry is abandoned).
            job.cache_header += StrCat("X-Bridge-Result-Id: ", job.cache_writer->id(), "\r\n");
          } else if (writer.status().code() != StatusCode::kAlreadyExists) {
            spdlog::warn("http: not caching a result: {}", std::string(writer.status().message()));
          }
        }
        break;
      }
      case OutputFormat::kParquet: {
        std::filesystem::path dir = core_.options.temp_dir.empty()
                                        ? core_.services.db->options().cache_dir
                                        : core_.options.temp_dir;
        if (dir.empty()) {
          return FailedPrecondition("http: format=parquet needs a cache folder");
        }
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        job.parquet_path =
            dir / fmt::format("http-result-{}-{}.parquet", ::getpid(), ++core_.temp_files);
        Status written = core_.services.db->WriteParquet(*job.stream, job.parquet_path);
        job.stream.reset();
        if (!written.ok()) {
          std::filesystem::remove(job.parquet_path, ec);
          return written;
        }
        job.done = true;
        return OkStatus();
      }
      default: {
        BRIDGE_ASSIGN_OR_RETURN(
            job.writer,
            format::RowWriter::Make(TextFormatOf(job.request.format), job.stream->schema()));
        BRIDGE_RETURN_NOT_OK(job.writer->Begin(&job.text));
        break;
      }
    }
    return OkStatus();
  }

  // Returns the next batch cut to the rows `limit=` still allows, or an invalid array at the
  // end (of the result or of the limit).
  Result<ipc::OwnedArray> NextBatch(QueryJob& job) {
    if (job.rows_left && *job.rows_left <= 0) return ipc::OwnedArray();
    const auto fetch_started = Clock::now();
    auto next = job.stream->Next();
    job.engine_time += Clock::now() - fetch_started;
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, std::move(next));
    if (batch.valid() && job.rows_left) {
      if (batch->length > *job.rows_left) batch->length = *job.rows_left;
      *job.rows_left -= batch->length;
    }
    return batch;
  }

  Status ProduceStep(QueryJob& job) {
    job.step_rows = 0;
    job.step_copied = 0;
    if (job.IsCancelled()) return Cancelled("http: query cancelled");
    if (!job.set_up) {
      BRIDGE_RETURN_NOT_OK(SetUp(job));
      if (job.done) return OkStatus();
    }
    if (job.encoder) {
      const auto started = Clock::now();
      int64_t gathered = 0;
      while (gathered < kArrowFlushBytes &&
             (gathered == 0 || Clock::now() - started < kArrowFlushAfter)) {
        BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, NextBatch(job));
        if (!batch.valid()) {
          job.done = true;  // the entry is committed once the response is out (OnWritten)
          return OkStatus();
        }
        job.step_rows += static_cast<uint64_t>(batch->length);
        BRIDGE_ASSIGN_OR_RETURN(auto messages, job.encoder->Encode(std::move(batch)));
        for (auto& m : messages) {
          job.step_copied += m.copied_bytes;
          gathered += m.total_size();
          if (job.cache_writer) TeeMessage(job, m);
          job.messages.push_back(std::move(m));
        }
        if (job.IsCancelled()) return Cancelled("http: query cancelled");
      }
      return OkStatus();
    }
    while (job.text.size() < kTextFlushBytes) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, NextBatch(job));
      if (!batch.valid()) {
        job.done = true;
        return job.writer->End(&job.text);
      }
      job.step_rows += static_cast<uint64_t>(batch->length);
      BRIDGE_RETURN_NOT_OK(job.writer->Write(*batch, &job.text));
    }
    return OkStatus();
  }

  // Hands `m`, the next message of the step, to the entry being written. On failure (too
  // big, disk full) the writer abandons the entry and the response goes on from memory.
  static void TeeMessage(QueryJob& job, const ipc::EncodedMessage& m) {
    if (!job.write_through) {
      if (!job.cache_writer->Write(m).ok()) job.cache_writer.reset();
      return;
    }
    Result<ipc::ByteRange> range = job.cache_writer->Append(m);
    // (An empty range is a schema message, which BeginWrite wrote: never teed here.)
    if (!range.ok() || range->length == 0) {
      // Part of the message may be in the file: this step goes out from memory.
      job.cache_writer.reset();
      job.file_part = {};
      return;
    }
    if (job.file_part.length == 0) {
      job.file_from = job.messages.size();
      job.file_part.offset = range->offset;
    }
    job.file_part.length += range->length;
  }

  // The whole result went through the writer and out to the client: make the entry visible.
  // On the pool, after the response, so the client does not wait for fsync.
  static void CommitCacheEntry(QueryJob& job) {
    if (!job.cache_writer) return;
    auto committed = job.cache_writer->Commit();
    if (!committed.ok()) {
      spdlog::warn("http: caching a result failed: {}", std::string(committed.status().message()));
    }
    job.cache_writer.reset();
  }

  void OnProduced(const std::shared_ptr<QueryJob>& job, const Status& st) {
    if (job->ended) return;
    if (peer_gone_ || !Lowest().socket().is_open()) {
      EndQuery(job);
      return CloseNow();
    }
    if (!st.ok()) return QueryFailed(job, st);
    if (job->request.format == OutputFormat::kParquet) return SendParquet(job);
    if (job->cached) return SendCached(job);
    if (job->writing) {
      job->step_waiting = true;  // sent when the write in flight completes (OnWritten)
      return;
    }
    SendStep(job);
  }

  // Writes the step the pool produced (no step is being produced now) and, unless it ends
  // the result, has the pool produce the next one while this one is written.
  void SendStep(const std::shared_ptr<QueryJob>& job) {
    job->sending.swap(job->messages);  // both empty but for the step: OnWritten cleared it
    job->sending_text.swap(job->text);
    job->sending_done = job->done;
    const uint64_t step_rows = job->step_rows;  // the pool's next step resets them
    const int64_t step_copied = job->step_copied;
    // Messages [from_file, end) go out from the entry's file (write-through), the rest from
    // memory.
    const bool file_part = job->file_part.length > 0;
    const size_t from_file = file_part ? job->file_from : job->sending.size();
    job->file_offset = static_cast<uint64_t>(job->file_part.offset);
    job->file_size = static_cast<uint64_t>(job->file_part.offset + job->file_part.length);
    job->file_part = {};
    const bool chunked = !http10_;
    // What is written first; with a file part, what follows it goes to job->after_file.
    std::vector<asio::const_buffer> buffers;
    std::vector<asio::const_buffer>* out = &buffers;
    job->after_file.clear();
    uint64_t payload = 0;
    for (const auto& m : job->sending) payload += static_cast<uint64_t>(m.total_size());
    // The encoder may already be released with the query: ask the format.
    const bool end_of_stream = job->request.format == OutputFormat::kArrow && job->sending_done;
    if (end_of_stream) payload += sizeof(kEndOfStream);
    payload += job->sending_text.size();

    if (core_.options.max_result_bytes > 0 &&
        job->bytes_sent + payload > static_cast<uint64_t>(core_.options.max_result_bytes)) {
      return QueryFailed(
          job,
          ResourceExhausted("http: the result is larger than ", core_.options.max_result_bytes,
                            " bytes (max_result_bytes)"),
          413);
    }
    // DuckDB and the socket work at the same time: at most one step ahead.
    if (!job->sending_done) {
      asio::post(core_.pool, [self = this->shared_from_this(), job] { self->Produce(job); });
    }
    if (!job->header_sent) {
      if (http10_) keep_alive_ = false;
      job->head = ResponseHead(
          200, ContentTypeOf(job->request.format), std::nullopt, chunked, keep_alive_,
          StrCat(extra_headers_, job->cache_header, chunked ? "Trailer: Server-Timing\r\n" : ""));
      buffers.push_back(asio::buffer(job->head));
      job->header_sent = true;
    }
    if (payload > 0) {
      if (chunked) {
        job->chunk_line = ChunkLine(payload);
        buffers.push_back(asio::buffer(job->chunk_line));
      }
      for (size_t i = 0; i < from_file; ++i) {
        const ipc::EncodedMessage& m = job->sending[i];
        buffers.push_back(asio::buffer(m.metadata));
        for (const auto& segment : m.body) {
          if (segment.size > 0) buffers.push_back(asio::buffer(segment.data, segment.size));
        }
      }
      // The file's bytes (messages [from_file, end)) go between `buffers` and the rest.
      if (file_part) out = &job->after_file;
      if (end_of_stream) out->push_back(asio::buffer(kEndOfStream));
      if (!job->sending_text.empty()) out->push_back(asio::buffer(job->sending_text));
      if (chunked) out->push_back(asio::buffer(kCrlf.data(), kCrlf.size()));
    }
    if (job->sending_done && chunked) {
      // The time DuckDB took, in milliseconds (W3C Server-Timing), after the last chunk.
      job->last_chunk =
          fmt::format("0\r\nServer-Timing: engine;dur={:.3f}\r\n\r\n",
                      std::chrono::duration<double, std::milli>(job->engine_time).count());
      out->push_back(asio::buffer(job->last_chunk));
    }

    job->bytes_sent += payload;
    job->rows_sent += step_rows;

    Lowest().expires_after(core_.options.idle_timeout);
    job->writing = true;
    if (file_part) {
      // Memory, then the file's range, then memory again (end of chunk, last chunk).
      asio::async_write(stream_, buffers,
                        [self = this->shared_from_this(), job](beast::error_code ec, size_t) {
                          if (ec) return self->OnWritten(job, ec);
                          self->SendFileBytes(job, [self, job] { self->SendAfterFile(job); });
                        });
    } else {
      asio::async_write(stream_, buffers,
                        [self = this->shared_from_this(), job](beast::error_code ec, size_t) {
                          self->OnWritten(job, ec);
                        });
    }
    // After the write started (its first bytes are already in the socket): the client does
    // not wait for the bookkeeping (~12 us with cold caches after a 30 ms query).
    core_.metrics.BytesOut(job->request.format, payload);
    core_.metrics.RowsOut(job->request.format, step_rows);
    if (job->request.format == OutputFormat::kArrow) {
      core_.metrics.ArrowBytesCopied(static_cast<uint64_t>(step_copied));
    }
  }

  // The rest of a step after its bytes from the file.
  void SendAfterFile(const std::shared_ptr<QueryJob>& job) {
    if (job->after_file.empty()) return OnWritten(job, {});
    Lowest().expires_after(core_.options.idle_timeout);
    asio::async_write(stream_, job->after_file,
                      [self = this->shared_from_this(), job](beast::error_code ec, size_t) {
                        self->OnWritten(job, ec);
                      });
  }

  void OnWritten(const std::shared_ptr<QueryJob>& job, beast::error_code ec) {
    job->writing = false;
    job->sending.clear();  // releases the batches
    job->sending_text.clear();
    if (ec) {
      if (!job->ended && job->MarkCancelled("disconnect")) {
        core_.metrics.QueryCancelled("disconnect");
        spdlog::info("http: write to connection {} failed ({}); query cancelled", id_,
                     ec.message());
      }
      job->Cancel();
      EndQuery(job);
      return CloseNow();
    }
    if (job->sending_done) {
      if (job->cache_writer) asio::post(core_.pool, [job] { CommitCacheEntry(*job); });
      EndQuery(job);
      return FinishRequest(true);
    }
    if (job->step_waiting) {
      job->step_waiting = false;
      OnProduced(job, OkStatus());
    }
  }

  // `http_status` overrides HttpStatusOf(st) for an error before the stream began.
  void QueryFailed(const std::shared_ptr<QueryJob>& job, const Status& st, int http_status = 0) {
    if (st.code() == StatusCode::kDeadlineExceeded && job->MarkCancelled("timeout")) {
      core_.metrics.QueryCancelled("timeout");
    }
    EndQuery(job);
    if (!job->header_sent) {
      if (st.code() == StatusCode::kCancelled && closing_) {
        keep_alive_ = false;
        return SendStatus(503, Cancelled("http: the server is shutting down"));
      }
      return SendStatus(http_status != 0 ? http_status : HttpStatusOf(st), st);
    }
    // The stream began: end it without the last chunk so the client sees a truncated
    // transfer, never a short result.
    spdlog::warn("http: response on connection {} cut after {} bytes: {}", id_, job->bytes_sent,
                 std::string(st.message()));
    core_.metrics.Request(route_label_, status_,
                          std::chrono::duration<double>(Clock::now() - started_).count());
    CloseNow();
  }

  // Drops the stream (which stops the query) and the session, and frees the slot. Runs on
  // the pool, once per query.
  static void ReleaseQuery(QueryJob& job, ServerCore& core) {
    if (job.released) return;
    job.released = true;
    job.stream.reset();
    job.encoder.reset();
    job.writer.reset();
    {
      std::lock_guard lock(job.mu);
      job.session.reset();
    }
    core.gate.Release();
  }

  // The response is over (complete, failed or abandoned): frees what the query still holds.
  void EndQuery(const std::shared_ptr<QueryJob>& job) {
    if (job->ended) return;
    job->ended = true;
    if (job_ == job) job_.reset();
    // A complete response released its query in its last step: nothing is left to free.
    if (job->sending_done && job->released) return;
    // Always through the pool (a step may be under way there): ReleaseQuery is idempotent.
    ServerCore& core = core_;
    asio::post(core.pool, [job, &core] {
      std::lock_guard step(job->produce_mu);
      job->messages.clear();
      ReleaseQuery(*job, core);
    });
  }

  // ---- Parquet: a finished file, sent with sendfile (plain) or read + write (TLS) ----

  void SendParquet(const std::shared_ptr<QueryJob>& job) {
    job->file_fd = ::open(job->parquet_path.c_str(), O_RDONLY | O_CLOEXEC);
    std::error_code ignored;
    std::filesystem::remove(job->parquet_path, ignored);  // the descriptor keeps the data
    struct stat info {};
    if (job->file_fd < 0 || ::fstat(job->file_fd, &info) != 0) {
      return QueryFailed(job,
                         Internal("http: cannot open the Parquet result: ", std::strerror(errno)));
    }
    job->file_start = 0;
    job->file_size = static_cast<uint64_t>(info.st_size);
    SendQueryFile(job, "");
  }

  // ---- A cached Arrow result: the stream section of its file, with sendfile ----

  void SendCached(const std::shared_ptr<QueryJob>& job) {
    job->file_fd = ::fcntl(job->cached->fd(), F_DUPFD_CLOEXEC, 0);
    if (job->file_fd < 0) {
      return QueryFailed(job,
                         Internal("http: cannot use the cached result: ", std::strerror(errno)));
    }
    ipc::ByteRange range = job->cached->stream_range();
    job->file_start = static_cast<uint64_t>(range.offset);
    job->file_size = static_cast<uint64_t>(range.offset + range.length);
    SendQueryFile(job, job->cache_header);
  }

  // A query result in a file (Parquet, a cached Arrow stream): 200 with the whole range.
  void SendQueryFile(const std::shared_ptr<QueryJob>& job, std::string_view headers) {
    const uint64_t length = job->file_size - job->file_start;
    if (core_.options.max_result_bytes > 0 &&
        length > static_cast<uint64_t>(core_.options.max_result_bytes)) {
      return QueryFailed(
          job,
          ResourceExhausted("http: the result is larger than ", core_.options.max_result_bytes,
                            " bytes (max_result_bytes)"),
          413);
    }
    SendFileRange(job, 200, ContentTypeOf(job->request.format), headers);
  }

  // ---- Whole files: /files/{path} (the data folder), /results/{id} (cached results) ----

  void ServeDataFile(const std::string& encoded) {
    auto file = OpenDataFile(core_.services.db->options().data_dir, encoded);
    if (!file.ok()) return SendStatus(HttpStatusOf(file.status()), file.status());
    SendFileResponse(std::move(file->fd), static_cast<uint64_t>(file->info.st_size),
                     FileETag(file->info), ContentTypeOfFile(file->relative), "file", "");
  }

  // DELETE /results/{id} (`id` non-empty): 204, or 404 when there is no such entry (yet: a
  // miss's entry is committed just after its response); DELETE /results: every entry, 200
  // with {"removed": N}. A reader that has the file open finishes with it; an entry still
  // being written appears when its response ends. `user` is logged.
  void DeleteResults(const std::string& id, const std::string& user) {
    if (core_.services.cache == nullptr) {
      return SendStatus(404, NotFound("http: the result cache is off on this server"));
    }
    // Removing files: on the pool, not on an I/O thread.
    asio::post(core_.pool, [self = this->shared_from_this(), id, user] {
      cache::Cache& cache = *self->core_.services.cache;
      const int64_t removed = id.empty() ? cache.Clear() : (cache.Remove(id) ? 1 : 0);
      if (id.empty()) {
        spdlog::info("http: {} cached results deleted on request of '{}'", removed, user);
      } else if (removed != 0) {
        spdlog::info("http: cached result {} deleted on request of '{}'", id, user);
      }
      asio::post(self->stream_.get_executor(), [self, id, removed] {
        if (id.empty()) {
          return self->SendBody(200, "application/json", DumpJson(Json{{"removed", removed}}));
        }
        if (removed == 0) {
          return self->SendStatus(404, NotFound("http: no cached result '", id, "'"));
        }
        self->SendBody(204, "", "");
      });
    });
  }

  void ServeResult(const std::string& id) {
    if (core_.services.cache == nullptr) {
      return SendStatus(404, NotFound("http: the result cache is off on this server"));
    }
    // Verifying hashes the file once per process: on the pool, not on an I/O thread.
    asio::post(core_.pool, [self = this->shared_from_this(), id] {
      std::shared_ptr<const cache::Entry> entry = self->core_.services.cache->FindById(id);
      Status verified = entry != nullptr ? entry->VerifyAll() : OkStatus();
      if (!verified.ok()) {
        spdlog::warn("http: cached result {} is corrupt ({}); evicted", id,
                     std::string(verified.message()));
        entry.reset();
      }
      asio::post(self->stream_.get_executor(), [self, id, entry = std::move(entry)] {
        if (entry == nullptr) {
          return self->SendStatus(
              404, NotFound("http: no cached result '", id, "' (evicted, expired or never made)"));
        }
        FileHandle fd(::fcntl(entry->fd(), F_DUPFD_CLOEXEC, 0));
        if (fd.get() < 0) {
          return self->SendStatus(
              500, Internal("http: cannot use the cached result: ", std::strerror(errno)));
        }
        self->SendFileResponse(
            std::move(fd), static_cast<uint64_t>(entry->file_size()), entry->etag(),
            "application/vnd.apache.arrow.file", "arrow",
            StrCat("Content-Disposition: attachment; filename=\"", id,
                   ".arrow\"\r\nCache-Control: private, max-age=31536000, immutable\r\n"));
      });
    });
  }

  // Answers GET/HEAD of a whole file with its ETag, If-None-Match (304) and one Range (206,
  // or 416), sending the bytes with sendfile. `label` is the metrics' format label.
  void SendFileResponse(FileHandle fd, uint64_t size, const std::string& etag,
                        std::string_view content_type, std::string_view label,
                        std::string_view headers) {
    FileRequest conditions{Header(bhttp::field::range), Header(bhttp::field::if_range),
                           Header(bhttp::field::if_none_match)};
    FilePlan plan = PlanFileResponse(conditions, size, etag);
    extra_headers_ += plan.headers;
    extra_headers_ += headers;
    if (plan.status == 304) return SendBody(304, "", "");
    if (plan.status == 416) {
      return SendStatus(416, OutOfRange("http: the range is outside the file (", size, " bytes)"));
    }
    if (parser_->get().method() == bhttp::verb::head) {
      status_ = plan.status;
      out_ = ResponseHead(plan.status, content_type, plan.span.end - plan.span.begin, false,
                          keep_alive_, extra_headers_);
      Lowest().expires_after(core_.options.idle_timeout);
      return asio::async_write(stream_, asio::buffer(out_),
                               [self = this->shared_from_this()](beast::error_code ec, size_t) {
                                 self->FinishRequest(!ec);
                               });
    }
    auto job = std::make_shared<QueryJob>();
    job->released = true;  // no query, no slot
    job->done = true;
    job->started = started_;
    job->file_fd = fd.release();
    job->file_start = plan.span.begin;
    job->file_size = plan.span.end;
    job->bytes_label = std::string(label);
    job_ = job;
    SendFileRange(job, plan.status, content_type, "");
  }

  // Sends bytes [file_start, file_size) of job->file_fd as the whole response body, with a
  // Content-Length.
  void SendFileRange(const std::shared_ptr<QueryJob>& job, int status,
                     std::string_view content_type, std::string_view headers) {
    job->sending_done = true;  // the whole response: OnWritten ends it
    job->file_offset = job->file_start;
    const uint64_t length = job->file_size - job->file_start;
    status_ = status;
    job->head = ResponseHead(status, content_type, length, false, keep_alive_,
                             extra_headers_ + std::string(headers));
    job->header_sent = true;
    Lowest().expires_after(core_.options.idle_timeout);
    asio::async_write(stream_, asio::buffer(job->head),
                      [self = this->shared_from_this(), job](beast::error_code ec, size_t) {
                        if (ec) return self->OnWritten(job, ec);
                        self->SendFilePart(job);
                      });
  }

  void SendFilePart(const std::shared_ptr<QueryJob>& job) {
    SendFileBytes(job, [self = this->shared_from_this(), job] {
      if (job->bytes_label.empty()) {
        self->core_.metrics.BytesOut(job->request.format, job->file_size - job->file_start);
      } else {
        self->core_.metrics.BytesOut(job->bytes_label, job->file_size - job->file_start);
      }
      job->bytes_sent = job->file_size - job->file_start;
      self->OnWritten(job, {});
    });
  }

  // Sends bytes [file_offset, file_size) of job->file_fd, then calls `then()`; a failed
  // write goes to OnWritten with its error instead, a file that cannot be read to
  // QueryFailed. A client that reads nothing for idle_timeout is cut off.
  template <class Then>
  void SendFileBytes(const std::shared_ptr<QueryJob>& job, Then then) {
    if (job->file_offset >= job->file_size) return then();
    WatchFileSend(send_progress_);
    SendFileRest(job, [self = this->shared_from_this(), then = std::move(then)]() mutable {
      self->StopWatchingFileSend();
      then();
    });
  }

  void StopWatchingFileSend() {
    ++send_watch_;
    send_timer_.cancel();
  }

  // Every idle_timeout while a file is being sent: cancels the socket's operations (the wait
  // ends with an error, and OnWritten ends the response) unless bytes went out since.
  void WatchFileSend(uint64_t seen) {
    const uint64_t watch = ++send_watch_;
    send_timer_.expires_after(core_.options.idle_timeout);
    send_timer_.async_wait([self = this->shared_from_this(), seen, watch](beast::error_code ec) {
      // Cancelled, or a handler that was already queued when its watch ended.
      if (ec || watch != self->send_watch_) return;
      if (self->send_progress_ != seen) return self->WatchFileSend(self->send_progress_);
      spdlog::info("http: connection {} read nothing for {} ms; closing it", self->id_,
                   self->core_.options.idle_timeout.count());
      beast::error_code ignored;
      self->Lowest().socket().cancel(ignored);
    });
  }

  template <class Then>
  void SendFileRest(const std::shared_ptr<QueryJob>& job, Then then) {
    if (job->file_offset >= job->file_size) return then();
    uint64_t left = job->file_size - job->file_offset;
    if constexpr (kTls) {
      job->file_buffer.resize(std::min<uint64_t>(left, kTextFlushBytes));
      ssize_t n = ::pread(job->file_fd, job->file_buffer.data(), job->file_buffer.size(),
                          static_cast<off_t>(job->file_offset));
      if (n <= 0) return QueryFailed(job, Internal("http: reading the result file failed"));
      job->file_offset += static_cast<uint64_t>(n);
      Lowest().expires_after(core_.options.idle_timeout);
      asio::async_write(stream_, asio::buffer(job->file_buffer.data(), static_cast<size_t>(n)),
                        [self = this->shared_from_this(), job, then = std::move(then)](
                            beast::error_code ec, size_t) {
                          if (ec) return self->OnWritten(job, ec);
                          self->SendFileRest(job, then);
                        });
    } else {
      auto& socket = Lowest().socket();
      beast::error_code ec;
      socket.native_non_blocking(true, ec);
      off_t offset = static_cast<off_t>(job->file_offset);
      const size_t want = static_cast<size_t>(std::min<uint64_t>(left, 0x7ffff000));
      ssize_t n = ::sendfile(socket.native_handle(), job->file_fd, &offset, want);
      if (n > 0) {
        send_progress_ += static_cast<uint64_t>(n);
        if (job->bytes_label.empty() && job->request.format == OutputFormat::kArrow) {
          core_.metrics.ArrowSendfileBytes(static_cast<uint64_t>(n));
        }
      }
      if (n > 0 && static_cast<size_t>(n) == want) {
        job->file_offset += static_cast<uint64_t>(n);
        return SendFileRest(job, std::move(then));  // done: calls `then`
      }
      if (n > 0) {
        // The socket buffer is full: wait until it drains (other connections of this
        // thread run meanwhile) rather than retry into EAGAIN.
        job->file_offset += static_cast<uint64_t>(n);
      }
      if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
        return socket.async_wait(
            tcp::socket::wait_write,
            [self = this->shared_from_this(), job, then = std::move(then)](beast::error_code ec) {
              if (ec) return self->OnWritten(job, ec);
              self->SendFileRest(job, then);
            });
      }
      if (n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)) {
        return OnWritten(job, asio::error::connection_reset);  // the client went away
      }
      // The file, not the client: a read error, or a file shorter than its range.
      QueryFailed(job, Internal("http: sending the file failed: ",
                                n == 0 ? "it ends before its range" : std::strerror(errno)));
    }
  }

  ServerCore& core_;
  Stream stream_;
  asio::steady_timer timer_;
  // Watches sendfile's waits for a writable socket (Beast's timeouts only cover writes made
  // through stream_): a client that stops reading for idle_timeout is cut off.
  asio::steady_timer send_timer_;
  uint64_t send_progress_ = 0;  // bytes sendfile has sent on this connection
  uint64_t send_watch_ = 0;     // the watch in force (a stopped one is ignored)
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  uint64_t id_ = 0;
  uint64_t read_generation_ = 0;
  bool timed_out_ = false;
  bool closing_ = false;  // shutting down: no more requests
  bool busy_ = false;     // a request is being answered
  bool keep_alive_ = true;
  bool http10_ = false;
  bool peer_gone_ = false;
  int status_ = 200;
  std::string route_label_ = "other";
  std::string extra_headers_;
  std::string continue_line_;
  std::string out_;
  Clock::time_point started_;
  std::shared_ptr<QueryJob> job_;
};

void ServerCore::Accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      spdlog::warn("http: accept failed: {}", ec.message());
      return Accept();
    }
    if (stopping) return;
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (tls) {
      std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(
          *this, beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls))
          ->Start();
    } else {
      std::make_shared<Connection<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)))
          ->Start();
    }
    Accept();
  });
}

void ServerCore::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  stopping = true;
  asio::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
  });
  ForEach(&ConnectionBase::OnShutdown);
  if (!WaitForNoConnections(Clock::now() + grace)) {
    spdlog::info("http: grace period over; cancelling the responses still running");
    ForEach(&ConnectionBase::OnForceClose);
    if (!WaitForNoConnections(Clock::now() + std::chrono::seconds(30))) {
      spdlog::warn("http: connections still open 30 s after cancelling; stopping anyway");
    }
  }
  work.reset();
  ioc.stop();
  for (auto& t : io_threads) {
    if (t.joinable()) t.join();
  }
  pool.join();
}

}  // namespace

struct HttpServer::Impl {
  std::unique_ptr<ServerCore> core;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Shutdown(std::chrono::milliseconds(0)); }

int HttpServer::port() const { return impl_->core->port; }

void HttpServer::Shutdown(std::chrono::milliseconds grace) { impl_->core->Shutdown(grace); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options,
                                                      const Services& services) {
  if (services.db == nullptr || services.catalog == nullptr || services.registry == nullptr) {
    return InvalidArgument("http: the server needs a database, a catalog and a metrics registry");
  }
  if (options.io_threads < 1) return InvalidArgument("http: io_threads must be >= 1");
  // sendfile(2) has no MSG_NOSIGNAL: a client that goes away mid-file must be an EPIPE, not
  // a signal that ends the process.
  ::signal(SIGPIPE, SIG_IGN);
  if (options.max_concurrent_queries < 1) {
    return InvalidArgument("http: max_concurrent_queries must be >= 1");
  }
  if (options.max_concurrent_queries > services.db->options().max_sessions) {
    return InvalidArgument("http: max_concurrent_queries (", options.max_concurrent_queries,
                           ") must be <= the engine's max_sessions (",
                           services.db->options().max_sessions, ")");
  }
  if (options.max_queued_queries < 0) return InvalidArgument("http: max_queued_queries < 0");
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("http: port ", options.port, " is not a port (0..65535)");
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return InvalidArgument("http: TLS needs both a certificate and a key file");
  }
  auto impl = std::make_unique<Impl>();
  impl->core = std::make_unique<ServerCore>(options, services);
  ServerCore& core = *impl->core;

  for (const auto& file : {options.tls_cert, options.tls_key}) {
    std::error_code exists_ec;
    if (!file.empty() && !std::filesystem::is_regular_file(file, exists_ec)) {
      return IoError("http: TLS file '", file.string(), "' does not exist");
    }
  }
  if (!options.tls_cert.empty()) {
    core.tls.emplace(ssl::context::tls_server);
    auto& ctx = *core.tls;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    ctx.use_certificate_chain_file(options.tls_cert.string(), ec);
    if (ec) {
      return IoError("http: cannot load the TLS certificate '", options.tls_cert.string(),
                     "': ", ec.message());
    }
    ctx.use_private_key_file(options.tls_key.string(), ssl::context::pem, ec);
    if (ec) {
      return IoError("http: cannot load the TLS key '", options.tls_key.string(),
                     "': ", ec.message());
    }
  }

  beast::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return InvalidArgument("http: bad host address '", options.host, "': ", ec.message());
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  core.acceptor.open(endpoint.protocol(), ec);
  if (!ec) core.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) core.acceptor.bind(endpoint, ec);
  if (!ec) core.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return IoError("http: cannot listen on ", options.host, ":", options.port, ": ", ec.message());
  }
  core.port = core.acceptor.local_endpoint(ec).port();
  core.work.emplace(core.ioc.get_executor());
  core.Accept();
  for (int i = 0; i < options.io_threads; ++i) {
    core.io_threads.emplace_back([&core] {
      for (;;) {
        try {
          core.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: I/O thread caught an exception: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

}  // namespace bridge::http
