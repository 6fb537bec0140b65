// In-process tests of the HTTP server: a real server on 127.0.0.1 (port 0) over a DuckDB
// database of Parquet files made in the test, driven by libcurl and raw sockets.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "bridge/arrow/buffer.h"
#include "bridge/arrow/reader.h"
#include "bridge/auth/auth.h"
#include "bridge/auth/password.h"
#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/testing.h"
#include "bridge/engine/engine.h"
#include "bridge/http/metrics.h"
#include "bridge/http/server.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"

namespace bridge::http {
namespace {

using ::bridge::testing::ConnectLoopback;
using ::bridge::testing::EndsWithServerTimingTrailer;
using ::bridge::testing::ReadFile;
using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kNumbers = 300000;  // rows of the `numbers` table

// ---- libcurl client ----

struct Response {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  long connects = 0;                           // new connections this request made

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
  }
  return size * n;
}

// One libcurl easy handle: requests made through the same Client reuse its connection.
class Client {
 public:
  Client() : curl_(curl_easy_init()) {}
  ~Client() { curl_easy_cleanup(curl_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void set_ca_file(const std::string& path) { ca_file_ = path; }

  Response Do(const std::string& method, const std::string& url, const std::string& body = "",
              const std::vector<std::string>& headers = {}) {
    Response r;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    } else {
      curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method == "GET" ? nullptr : method.c_str());
    }
    // After HTTPGET, which turns NOBODY off: a HEAD response has no body to wait for.
    curl_easy_setopt(curl_, CURLOPT_NOBODY, method == "HEAD" ? 1L : 0L);
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 60L);
    if (!ca_file_.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, ca_file_.c_str());
    r.code = curl_easy_perform(curl_);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &r.connects);
    curl_slist_free_all(list);
    return r;
  }
  Response Get(const std::string& url, const std::vector<std::string>& headers = {}) {
    return Do("GET", url, "", headers);
  }
  Response Post(const std::string& url, const std::string& body,
                const std::vector<std::string>& headers = {}) {
    return Do("POST", url, body, headers);
  }

 private:
  CURL* curl_;
  std::string ca_file_;
};

std::string UrlEncode(const std::string& text) {
  char* escaped = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

// ---- Arrow decoding ----

struct Decoded {
  std::vector<std::string> formats;  // per column
  int64_t rows = 0;
  std::vector<std::vector<int64_t>> ints;  // per int64 column ("l"), else empty
};

Result<Decoded> DecodeArrow(const std::string& body) {
  BRIDGE_ASSIGN_OR_RETURN(auto reader, ipc::OpenStreamReader(ipc::Buffer::FromString(body)));
  Decoded d;
  const ArrowSchema& schema = reader->schema();
  for (int64_t i = 0; i < schema.n_children; ++i) d.formats.push_back(schema.children[i]->format);
  d.ints.resize(d.formats.size());
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, reader->Next());
    if (!batch.valid()) break;
    d.rows += batch->length;
    for (size_t c = 0; c < d.formats.size(); ++c) {
      if (d.formats[c] != "l") continue;
      const ArrowArray* child = batch->children[c];
      const auto* values = static_cast<const int64_t*>(child->buffers[1]) + child->offset;
      d.ints[c].insert(d.ints[c].end(), values, values + batch->length);
    }
  }
  return d;
}

// ---- Raw sockets ----

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads until the peer closes, `until` is found, or `timeout` passes.
std::string ReadFrom(int fd, std::chrono::milliseconds timeout, std::string_view until = {}) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (Clock::now() < deadline) {
    if (!until.empty() && out.find(until) != std::string::npos) break;
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int Count(const std::string& text, std::string_view what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// ---- The server under test ----

struct TestServer {
  TempDir dir;
  std::unique_ptr<engine::Database> db;
  std::unique_ptr<catalog::Catalog> catalog;
  prometheus::Registry registry;
  std::unique_ptr<auth::Authenticator> auth;
  std::unique_ptr<cache::Cache> cache;  // ServerSetup::with_cache
  std::unique_ptr<HttpServer> server;
  std::string base;

  std::string Url(const std::string& path_and_query) const { return base + path_and_query; }
  std::string QueryUrl(const std::string& sql, const std::string& extra = "") const {
    return base + "/query?sql=" + UrlEncode(sql) + extra;
  }
  int port() const { return server->port(); }

  // Returns the value of the metric line starting with `series` ("name{labels}"), -1 if none.
  double Metric(const std::string& series) {
    Client client;
    Response r = client.Get(Url("/metrics"), auth_header);
    std::string needle = "\n" + series + " ";
    std::string text = "\n" + r.body;
    size_t at = text.find(needle);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + needle.size()));
  }
  // Polls Metric(series) until it equals `value` or 20 s pass.
  bool WaitForMetric(const std::string& series, double value) {
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      if (Metric(series) == value) return true;
      std::this_thread::yield();
    }
    return false;
  }

  // Waits (up to 20 s) until the cache has committed `n` entries since it opened: a miss's
  // entry is committed on the pool after its response went out.
  bool WaitForCommits(int64_t n) {
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (cache->stats().writes_committed < n) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  std::vector<std::string> auth_header;  // sent by Metric() when auth is on
};

struct ServerSetup {
  ServerOptions options;
  bool with_cache = false;        // a result cache in dir/results
  int64_t cache_entry_bytes = 0;  // its max_entry_bytes (0: the default)
  auth::AuthOptions auth;
  // Runs before the server starts, e.g. to write a users file.
  std::function<void(const std::filesystem::path&, auth::AuthOptions&)> before_start;
};

std::unique_ptr<TestServer> StartServer(ServerSetup setup = {}) {
  auto t = std::make_unique<TestServer>();
  auto data = t->dir.path() / "data";
  std::filesystem::create_directories(data);
  engine::EngineOptions eo;
  eo.data_dir = data;
  eo.cache_dir = t->dir.path() / "cache";
  eo.threads = 2;
  eo.max_sessions = 8;
  auto db = engine::Database::Open(eo);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return nullptr;
  t->db = std::move(db).value();
  auto copy = [&](const std::string& select, const std::string& file) {
    Status st = t->db->ExecuteTrusted(StrCat("COPY (", select, ") TO ",
                                             engine::QuoteString((data / file).string()),
                                             " (FORMAT parquet)"));
    EXPECT_TRUE(st.ok()) << st;
  };
  copy(StrCat("SELECT range AS id, range * 2 AS twice, 'row ' || range::VARCHAR AS label "
              "FROM range(",
              kNumbers, ")"),
       "numbers.parquet");
  copy(
      "SELECT 7::INTEGER AS i, 2.5::DOUBLE AS d, 12.30::DECIMAL(5,2) AS dec, "
      "'he said \"hi\"\n' AS s, DATE '2024-01-02' AS day, "
      "TIMESTAMP '2024-01-02 03:04:05' AS ts, true AS b, NULL::INTEGER AS n, [1, 2] AS l, "
      "{'a': 1, 'b': 'x'} AS st",
      "types.parquet");
  catalog::CatalogOptions co;
  co.watch = false;
  auto catalog = catalog::Catalog::Open(*t->db, co);
  EXPECT_TRUE(catalog.ok()) << catalog.status();
  if (!catalog.ok()) return nullptr;
  t->catalog = std::move(catalog).value();
  if (setup.before_start) setup.before_start(t->dir.path(), setup.auth);
  auto authenticator = auth::Authenticator::Make(setup.auth);
  EXPECT_TRUE(authenticator.ok()) << authenticator.status();
  if (!authenticator.ok()) return nullptr;
  t->auth = std::move(authenticator).value();
  setup.options.host = "127.0.0.1";
  setup.options.port = 0;
  if (setup.with_cache) {
    cache::CacheOptions co;
    co.dir = t->dir.path() / "results";
    if (setup.cache_entry_bytes > 0) co.max_entry_bytes = setup.cache_entry_bytes;
    auto opened = cache::Cache::Open(co);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return nullptr;
    t->cache = std::move(opened).value();
  }
  Services services{t->db.get(), t->catalog.get(), t->auth.get(), &t->registry, t->cache.get()};
  auto server = HttpServer::Start(setup.options, services);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  t->server = std::move(server).value();
  t->base =
      StrCat(setup.options.tls_cert.empty() ? "http" : "https", "://127.0.0.1:", t->server->port());
  return t;
}

// ---- Formats ----

TEST(HttpServerTest, QueryInEveryTextFormat) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string sql = "SELECT id, label FROM numbers WHERE id < 3 ORDER BY id";

  Response json = c.Get(t->QueryUrl(sql));  // JSON is the default
  ASSERT_EQ(json.status, 200) << json.body;
  EXPECT_EQ(json.Header("content-type"), "application/json");
  EXPECT_EQ(json.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(Json::parse(json.body),
            Json::parse(R"([{"id":0,"label":"row 0"},{"id":1,"label":"row 1"},)"
                        R"({"id":2,"label":"row 2"}])"));

  Response ndjson = c.Get(t->QueryUrl(sql, "&format=ndjson"));
  ASSERT_EQ(ndjson.status, 200);
  EXPECT_EQ(ndjson.Header("content-type"), "application/x-ndjson");
  EXPECT_EQ(ndjson.body,
            "{\"id\":0,\"label\":\"row 0\"}\n{\"id\":1,\"label\":\"row 1\"}\n"
            "{\"id\":2,\"label\":\"row 2\"}\n");

  Response csv = c.Get(t->QueryUrl(sql), {"Accept: text/csv"});
  ASSERT_EQ(csv.status, 200);
  EXPECT_THAT(csv.Header("content-type"), HasSubstr("text/csv"));
  EXPECT_EQ(csv.body, "id,label\n0,row 0\n1,row 1\n2,row 2\n");

  Response types = c.Get(t->QueryUrl("SELECT * FROM types"));
  ASSERT_EQ(types.status, 200) << types.body;
  EXPECT_EQ(Json::parse(types.body),
            Json::parse(R"([{"i":7,"d":2.5,"dec":12.30,"s":"he said \"hi\"\n","day":"2024-01-02",)"
                        R"("ts":"2024-01-02T03:04:05","b":true,"n":null,"l":[1,2],)"
                        R"("st":{"a":1,"b":"x"}}])"));
  EXPECT_THAT(types.body, HasSubstr("12.30"));  // DECIMAL exact
}

// The time DuckDB took comes after the body, as a Server-Timing trailer of the chunked
// response: more than zero, and no more than the client waited for the whole response.
TEST(HttpServerTest, TheEngineTimeEndsTheResponseAsAServerTimingTrailer) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  const std::string sql = "SELECT count(*) AS n FROM range(3000000) r(i) WHERE i % 7 = 0";
  for (const char* format : {"&format=json", "&format=arrow&cache=off", "&format=csv"}) {
    auto started = Clock::now();
    Response r = c.Get(t->QueryUrl(sql, format));
    double waited_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    ASSERT_EQ(r.status, 200) << format << r.body;
    EXPECT_EQ(r.Header("trailer"), "Server-Timing") << format;
    std::string timing = r.Header("server-timing");  // libcurl hands trailers to OnHeader
    ASSERT_TRUE(timing.starts_with("engine;dur=")) << format << " '" << timing << "'";
    double engine_ms = std::stod(timing.substr(std::strlen("engine;dur=")));
    EXPECT_GT(engine_ms, 0) << format;
    EXPECT_LE(engine_ms, waited_ms) << format;
  }
  // On the wire: the last chunk, then the trailer, then the empty line.
  int fd = ConnectLoopback(t->port());
  SendAll(fd,
          "GET /query?sql=SELECT+1+AS+x&format=csv HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\n\r\n");
  std::string reply = ReadFrom(fd, std::chrono::seconds(20));
  ::close(fd);
  EXPECT_THAT(reply, HasSubstr("Trailer: Server-Timing\r\n"));
  EXPECT_TRUE(reply.find("\r\nx\n1\n\r\n0\r\n") != std::string::npos) << reply;
  EXPECT_TRUE(EndsWithServerTimingTrailer(reply)) << reply;
}

TEST(HttpServerTest, ArrowStreamsEveryRowWithoutCopying) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Response r = c.Get(t->QueryUrl("SELECT id, twice, label FROM numbers", "&format=arrow"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/vnd.apache.arrow.stream");
  EXPECT_EQ(r.Header("transfer-encoding"), "chunked");
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(r.body));
  EXPECT_EQ(d.formats, (std::vector<std::string>{"l", "l", "u"}));
  ASSERT_EQ(d.rows, kNumbers);
  int64_t sum = 0;
  for (size_t i = 0; i < d.ints[0].size(); ++i) {
    sum += d.ints[0][i];
    ASSERT_EQ(d.ints[1][i], 2 * d.ints[0][i]);
  }
  EXPECT_EQ(sum, kNumbers * (kNumbers - 1) / 2);
  EXPECT_EQ(t->Metric("bridge_http_arrow_bytes_copied_total"), 0);
  EXPECT_EQ(t->Metric("bridge_http_rows_total{format=\"arrow\"}"), kNumbers);
  EXPECT_EQ(t->Metric("bridge_http_response_bytes_total{format=\"arrow\"}"),
            static_cast<double>(r.body.size()));

  // The Accept header selects Arrow too.
  Response accepted =
      c.Get(t->QueryUrl("SELECT 1 AS x"), {"Accept: application/vnd.apache.arrow.stream"});
  ASSERT_EQ(accepted.status, 200);
  ASSERT_OK_AND_ASSIGN(Decoded one, DecodeArrow(accepted.body));
  EXPECT_EQ(one.rows, 1);
}

// Long Arrow streams with many partial writes, some into a small receive buffer: each
// reaches its end. (When pool threads began to send their steps themselves, a write's
// continuation could be queued with no I/O thread woken for it and the stream stalled until
// the idle timeout. That showed with 5M Parquet rows through curl, 2 runs in 3; this test
// did not catch it, but it guards the property.)
TEST(HttpServerTest, LongStreamsRunToTheEndWithoutStalling) {
  ServerSetup setup;
  setup.options.idle_timeout = std::chrono::seconds(4);
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  const std::string target =
      "/query?format=arrow&cache=off&sql=SELECT+range+AS+a,+'row+'+||+range+AS+s,+range*3+AS+c+"
      "FROM+"
      "range(2000000)";
  for (int i = 0; i < 6; ++i) {
    // A small receive buffer: the server's writes are partial, and finish from the reactor.
    int fd = ConnectLoopback(t->port(), i % 2 == 0 ? 32 << 10 : 0);
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string reply;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    ASSERT_TRUE(EndsWithServerTimingTrailer(reply))
        << "download " << i << " ended after " << reply.size() << " bytes";
    EXPECT_GT(reply.size(), 2000000u * 24);
  }
}

TEST(HttpServerTest, ArrowCompression) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string sql = "SELECT id, twice FROM numbers WHERE id < 50000 ORDER BY id";
  Response plain = c.Get(t->QueryUrl(sql, "&format=arrow"));
  ASSERT_EQ(plain.status, 200);
  for (const char* codec : {"zstd", "lz4"}) {
    Response r = c.Get(t->QueryUrl(sql, std::string("&format=arrow&compression=") + codec));
    ASSERT_EQ(r.status, 200) << codec << r.body;
    EXPECT_LT(r.body.size(), plain.body.size() * 3 / 4) << codec;
    ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(r.body));
    ASSERT_EQ(d.rows, 50000) << codec;
    EXPECT_EQ(d.ints[0][49999], 49999);
    EXPECT_EQ(d.ints[1][49999], 99998);
  }
  Response bad = c.Get(t->QueryUrl(sql, "&format=json&compression=zstd"));
  EXPECT_EQ(bad.status, 400);
}

TEST(HttpServerTest, LimitCutsTheLastBatch) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string sql = "SELECT id, label FROM numbers ORDER BY id";
  Response arrow = c.Get(t->QueryUrl(sql, "&format=arrow&limit=2500"));
  ASSERT_EQ(arrow.status, 200);
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(arrow.body));
  ASSERT_EQ(d.rows, 2500);
  EXPECT_EQ(d.ints[0].back(), 2499);
  Response json = c.Get(t->QueryUrl(sql, "&limit=2500"));
  ASSERT_EQ(json.status, 200);
  Json rows = Json::parse(json.body);
  ASSERT_EQ(rows.size(), 2500u);
  EXPECT_EQ(rows.back()["label"], "row 2499");
  Response csv = c.Get(t->QueryUrl(sql, "&format=csv&limit=0"));
  EXPECT_EQ(csv.body, "id,label\n");
}

TEST(HttpServerTest, PostBindsParametersAsLiterals) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Json request = {{"sql",
                   "SELECT $1::VARCHAR AS s, $2 + 1 AS n, count(*) AS c FROM numbers "
                   "WHERE label = $1"},
                  {"params", {"'; drop table x; --", 41}}};
  Response r = c.Post(t->Url("/query"), request.dump(), {"Content-Type: application/json"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body), Json::parse(R"([{"s":"'; drop table x; --","n":42,"c":0}])"));
  // Plain SQL body.
  Response text =
      c.Post(t->Url("/query?format=csv"), "SELECT 6 * 7 AS answer", {"Content-Type: text/plain"});
  ASSERT_EQ(text.status, 200) << text.body;
  EXPECT_EQ(text.body, "answer\n42\n");
  // Tables are still there.
  Response count = c.Get(t->QueryUrl("SELECT count(*) AS n FROM numbers"));
  EXPECT_EQ(Json::parse(count.body)[0]["n"], kNumbers);
}

TEST(HttpServerTest, ParquetIsWrittenByDuckDBAndSentWhole) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Response r =
      c.Get(t->QueryUrl("SELECT id, label FROM numbers WHERE id % 3 = 0", "&format=parquet"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/vnd.apache.parquet");
  EXPECT_EQ(r.Header("content-length"), std::to_string(r.body.size()));
  ASSERT_GT(r.body.size(), 8u);
  EXPECT_EQ(r.body.substr(0, 4), "PAR1");
  EXPECT_EQ(r.body.substr(r.body.size() - 4), "PAR1");
  // Read it back with DuckDB.
  auto copy = t->dir.path() / "data" / "back.parquet";
  WriteFile(copy, r.body);
  ASSERT_OK_AND_ASSIGN(auto table, t->db->QueryTrusted(StrCat("SELECT count(*), sum(id) FROM ",
                                                              engine::QuoteString(copy.string()))));
  ASSERT_EQ(table.rows.size(), 1u);
  EXPECT_EQ(table.rows[0][0], "100000");
  EXPECT_EQ(table.rows[0][1], "14999850000");
  // The temporary file is gone.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(t->dir.path() / "cache")) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr("http-result")));
  }
  // Errors before the file is sent are clean.
  EXPECT_EQ(c.Get(t->QueryUrl("SELEC 1", "&format=parquet")).status, 400);
}

// ---- Tables, health, metrics ----

TEST(HttpServerTest, TablesTableAndRows) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Response list = c.Get(t->Url("/tables"));
  ASSERT_EQ(list.status, 200);
  Json tables = Json::parse(list.body)["tables"];
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0]["name"], "numbers");
  EXPECT_EQ(tables[0]["rows"], kNumbers);
  EXPECT_EQ(tables[0]["files"], 1);
  EXPECT_GT(tables[0]["bytes"].get<int64_t>(), 0);
  EXPECT_EQ(tables[0]["columns"][0], Json::parse(R"({"name":"id","type":"BIGINT"})"));
  EXPECT_EQ(tables[0]["error"], nullptr);

  Response one = c.Get(t->Url("/tables/types"));
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(Json::parse(one.body)["columns"].size(), 10u);
  EXPECT_EQ(c.Get(t->Url("/tables/nope")).status, 404);
  EXPECT_EQ(c.Get(t->Url("/tables/nope/rows")).status, 404);

  Response rows =
      c.Get(t->Url("/tables/numbers/rows?columns=id,label&filter=id.lt.5&"
                   "filter=label.neq.row%201&order=id.desc&limit=2"));
  ASSERT_EQ(rows.status, 200) << rows.body;
  EXPECT_EQ(Json::parse(rows.body),
            Json::parse(R"([{"id":4,"label":"row 4"},{"id":3,"label":"row 3"}])"));
  Response arrow =
      c.Get(t->Url("/tables/numbers/rows?columns=twice&filter=id.gte.299990&"
                   "format=arrow"));
  ASSERT_EQ(arrow.status, 200);
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(arrow.body));
  EXPECT_EQ(d.rows, 10);
  // A value is bound, never pasted into SQL.
  Response hostile =
      c.Get(t->Url("/tables/numbers/rows?filter=label.eq." + UrlEncode("x' OR '1'='1")));
  ASSERT_EQ(hostile.status, 200) << hostile.body;
  EXPECT_EQ(hostile.body, "[]\n");
  Response bad = c.Get(t->Url("/tables/numbers/rows?columns=nope"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("nope"));
}

TEST(HttpServerTest, HealthAndMetrics) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Response health = c.Get(t->Url("/health"));
  ASSERT_EQ(health.status, 200);
  Json h = Json::parse(health.body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["tables"], 2);
  EXPECT_EQ(h["catalog_version"], t->catalog->version());
  c.Get(t->QueryUrl("SELECT 1", "&format=csv"));
  Response metrics = c.Get(t->Url("/metrics"));
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.Header("content-type"), HasSubstr("text/plain"));
  EXPECT_THAT(metrics.body,
              HasSubstr("bridge_http_requests_total{route=\"/query\",status=\"200\"} 1"));
  EXPECT_THAT(metrics.body,
              HasSubstr("bridge_http_requests_total{route=\"/health\",status=\"200\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("bridge_http_request_duration_seconds_bucket"));
  EXPECT_THAT(metrics.body, HasSubstr("bridge_http_active_queries 0"));
  EXPECT_THAT(metrics.body, HasSubstr("bridge_http_rows_total{format=\"csv\"} 1"));
}

// ---- Errors ----

TEST(HttpServerTest, ErrorStatuses) {
  ServerSetup setup;
  setup.options.max_request_bytes = 1000;
  setup.options.max_header_bytes = 2048;
  setup.options.max_sql_length = 500;
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  auto expect = [](const Response& r, long status, const std::string& code,
                   const std::string& message) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    Json body = Json::parse(r.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.body;
    EXPECT_EQ(body["error"]["code"], code) << r.body;
    EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr(message)) << r.body;
  };
  expect(c.Get(t->QueryUrl("SELEC 1")), 400, "invalid_argument", "syntax error");
  expect(c.Get(t->QueryUrl("SELECT nope FROM numbers")), 400, "invalid_argument", "nope");
  expect(c.Get(t->Url("/query")), 400, "invalid_argument", "sql");
  expect(c.Get(t->QueryUrl("SELECT * FROM read_csv('/etc/passwd')")), 403, "permission_denied", "");
  expect(c.Get(t->QueryUrl("COPY numbers TO 'x.csv'")), 403, "permission_denied", "");
  expect(c.Get(t->QueryUrl("SELECT * FROM missing_table")), 404, "not_found", "missing_table");
  expect(c.Get(t->Url("/nope")), 404, "not_found", "/nope");
  Response del = c.Do("DELETE", t->Url("/query"));
  expect(del, 405, "method_not_allowed", "DELETE");
  EXPECT_EQ(del.Header("allow"), "GET, POST, OPTIONS");
  expect(c.Get(t->QueryUrl("SELECT 1"), {"Accept: image/png"}), 406, "not_acceptable", "");
  expect(c.Get(t->QueryUrl("SELECT 1", "&format=xml")), 400, "invalid_argument", "xml");
  expect(c.Post(t->Url("/query"), std::string(2000, ' ') + "SELECT 1", {"Expect:"}), 413,
         "request_too_large", "1000");
  expect(c.Post(t->Url("/query"), "SELECT '" + std::string(600, 'x') + "'"), 413,
         "resource_exhausted", "");
  expect(c.Get(t->QueryUrl("SELECT 1"), {"X-Big: " + std::string(3000, 'b')}), 413,
         "request_too_large", "header");
  // The server is still fine.
  EXPECT_EQ(c.Get(t->Url("/health")).status, 200);
}

TEST(HttpServerTest, MalformedRequestsGet400AndTheServerStaysUp) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  for (std::string garbage :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET /health HTTP/9.9\r\n\r\n"),
        std::string("GET /health HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("POST /query HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    int fd = ConnectLoopback(t->port());
    ASSERT_GE(fd, 0);
    SendAll(fd, garbage);
    std::string reply = ReadFrom(fd, std::chrono::seconds(10));
    ::close(fd);
    EXPECT_THAT(reply, HasSubstr("HTTP/1.1 400")) << garbage;
  }
  Client c;
  EXPECT_EQ(c.Get(t->Url("/health")).status, 200);
}

TEST(HttpServerTest, SlowRequestGets408) {
  ServerSetup setup;
  setup.options.idle_timeout = std::chrono::milliseconds(300);
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  int fd = ConnectLoopback(t->port());
  SendAll(fd, "GET /health HTTP/1.1\r\nHo");
  std::string reply = ReadFrom(fd, std::chrono::seconds(10));
  ::close(fd);
  EXPECT_THAT(reply, HasSubstr("HTTP/1.1 408"));
  // An idle keep-alive connection is closed without a response.
  int idle = ConnectLoopback(t->port());
  EXPECT_EQ(ReadFrom(idle, std::chrono::seconds(10)), "");
  ::close(idle);
}

TEST(HttpServerTest, QueryTimeoutGets504) {
  ServerSetup setup;
  setup.options.query_timeout = std::chrono::milliseconds(200);
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  Response r = c.Get(t->QueryUrl("SELECT count(*) FROM range(100000000000)"));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_THAT(r.body, HasSubstr("deadline_exceeded"));
  EXPECT_EQ(t->Metric("bridge_http_queries_cancelled_total{reason=\"timeout\"}"), 1);
}

// Starts a query that runs until cancelled, on a raw connection; returns the socket.
int StartEndlessQuery(TestServer& t) {
  int fd = ConnectLoopback(t.port());
  SendAll(fd, "GET /query?sql=" + UrlEncode("SELECT count(*) FROM range(100000000000)") +
                  " HTTP/1.1\r\nHost: x\r\n\r\n");
  return fd;
}

TEST(HttpServerTest, TooManyQueriesQueueThenGet429) {
  ServerSetup setup;
  setup.options.max_concurrent_queries = 1;
  setup.options.max_queued_queries = 1;
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  int running = StartEndlessQuery(*t);
  ASSERT_TRUE(t->WaitForMetric("bridge_http_active_queries", 1));
  int queued = ConnectLoopback(t->port());
  SendAll(queued,
          "GET /query?sql=SELECT+42+AS+x&format=csv HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\n\r\n");
  ASSERT_TRUE(t->WaitForMetric("bridge_http_queued_queries", 1));
  Client c;
  Response rejected = c.Get(t->QueryUrl("SELECT 1"));
  EXPECT_EQ(rejected.status, 429) << rejected.body;
  EXPECT_THAT(rejected.body, HasSubstr("too many queries"));
  ::close(running);  // cancels the endless query; the queued one runs
  std::string reply = ReadFrom(queued, std::chrono::seconds(20));
  ::close(queued);
  EXPECT_THAT(reply, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(reply, HasSubstr("x\n42\n"));
  EXPECT_TRUE(t->WaitForMetric("bridge_http_active_queries", 0));
  EXPECT_EQ(t->Metric("bridge_http_queued_queries"), 0);
}

TEST(HttpServerTest, ErrorAfterTheStreamBeganTruncatesTheResponse) {
  ServerSetup setup;
  // Above the first write (Arrow output gathers about 1 MiB of batches per write), below
  // the whole result (300000 rows of two int64 columns, 4.8 MB).
  setup.options.max_result_bytes = 2000000;
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  Response r = c.Get(t->QueryUrl("SELECT id, twice FROM numbers", "&format=arrow"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.code, CURLE_OK);  // no terminating chunk: curl reports the truncation
  EXPECT_GT(r.body.size(), 1000000u);
  EXPECT_LE(r.body.size(), 2000000u);
  EXPECT_FALSE(DecodeArrow(r.body).ok() && DecodeArrow(r.body)->rows == 300000);
  // A limit that the first write already passes is a clean 413; a small result passes.
  ServerSetup tight;
  tight.options.max_result_bytes = 200000;
  auto u = StartServer(tight);
  ASSERT_NE(u, nullptr);
  for (const char* format : {"&format=csv", "&format=arrow"}) {
    Response first = c.Get(u->QueryUrl("SELECT * FROM numbers", format));
    EXPECT_EQ(first.status, 413) << format;
    EXPECT_THAT(first.body, HasSubstr("max_result_bytes"));
  }
  Response small = c.Get(u->QueryUrl("SELECT 1 AS x", "&format=csv"));
  EXPECT_EQ(small.body, "x\n1\n");
}

// ---- Connections ----

TEST(HttpServerTest, KeepAliveReusesTheConnection) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Response first = c.Get(t->QueryUrl("SELECT 1 AS x", "&format=csv"));
  Response second = c.Get(t->QueryUrl("SELECT 2 AS x", "&format=arrow"));
  Response third = c.Get(t->Url("/health"));
  EXPECT_EQ(first.connects, 1);
  EXPECT_EQ(second.connects, 0);
  EXPECT_EQ(third.connects, 0);
  EXPECT_EQ(first.body, "x\n1\n");
  EXPECT_EQ(third.status, 200);
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  int fd = ConnectLoopback(t->port());
  SendAll(fd,
          "GET /query?sql=SELECT+1+AS+first&format=csv HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /query?sql=SELECT+3+AS+third&format=csv HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\n\r\n");
  std::string reply = ReadFrom(fd, std::chrono::seconds(20));
  ::close(fd);
  EXPECT_EQ(Count(reply, "HTTP/1.1 200"), 3) << reply;
  size_t first = reply.find("first\n1\n");
  size_t health = reply.find("\"status\":\"ok\"");
  size_t third = reply.find("third\n3\n");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(health, std::string::npos);
  ASSERT_NE(third, std::string::npos);
  EXPECT_LT(first, health);
  EXPECT_LT(health, third);
}

TEST(HttpServerTest, Http10ClientsGetAnUnchunkedBodyAndAClose) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  int fd = ConnectLoopback(t->port());
  SendAll(fd, "GET /query?sql=SELECT+1+AS+x&format=csv HTTP/1.0\r\n\r\n");
  std::string reply = ReadFrom(fd, std::chrono::seconds(20));
  ::close(fd);
  EXPECT_THAT(reply, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(reply, ::testing::Not(HasSubstr("chunked")));
  EXPECT_TRUE(reply.ends_with("\r\n\r\nx\n1\n")) << reply;
}

TEST(HttpServerTest, DisconnectBeforeTheFirstBatchCancelsTheQuery) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  int fd = StartEndlessQuery(*t);
  ASSERT_TRUE(t->WaitForMetric("bridge_http_active_queries", 1));
  ::close(fd);
  EXPECT_TRUE(t->WaitForMetric("bridge_http_queries_cancelled_total{reason=\"disconnect\"}", 1));
  EXPECT_TRUE(t->WaitForMetric("bridge_http_active_queries", 0));  // the session is free
}

TEST(HttpServerTest, DisconnectMidStreamCancelsTheQuery) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  int fd = ConnectLoopback(t->port(), 16384);
  SendAll(fd, "GET /query?sql=" + UrlEncode("SELECT range AS a FROM range(10000000000)") +
                  "&format=arrow HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string start = ReadFrom(fd, std::chrono::seconds(20), "\r\n\r\n");
  EXPECT_THAT(start, HasSubstr("HTTP/1.1 200"));
  ::close(fd);
  EXPECT_TRUE(t->WaitForMetric("bridge_http_queries_cancelled_total{reason=\"disconnect\"}", 1));
  EXPECT_TRUE(t->WaitForMetric("bridge_http_active_queries", 0));
}

int64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// A client that reads slowly: the server writes a batch only when the previous one left,
// so its memory does not grow with the result (see README.md, "Backpressure").
TEST(HttpServerTest, SlowReaderKeepsServerMemoryBounded) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  std::string sql =
      "SELECT range AS a, range + 1 AS b, range + 2 AS c, range + 3 AS d FROM range(3000000)";
  {  // warm up DuckDB and the allocator with the same query shape
    Client c;
    ASSERT_EQ(c.Get(t->QueryUrl(sql, "&format=arrow&limit=100000")).status, 200);
  }
  int64_t baseline = ResidentBytes();
  int fd = ConnectLoopback(t->port(), 65536);
  SendAll(fd, "GET /query?sql=" + UrlEncode(sql) +
                  "&format=arrow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  int64_t peak = baseline;
  int64_t total = 0;
  std::vector<char> buf(65536);
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    total += n;
    if ((total >> 20) != ((total - n) >> 20)) peak = std::max(peak, ResidentBytes());
    // The pace of a slow reader (about 100 MB/s at most), not synchronisation.
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  ::close(fd);
  constexpr int64_t kResultBytes = 3000000LL * 4 * 8;
  EXPECT_GT(total, kResultBytes);
  std::printf("slow reader: %lld bytes read, server RSS grew by %lld bytes\n",
              static_cast<long long>(total), static_cast<long long>(peak - baseline));
#if defined(__SANITIZE_ADDRESS__)
  // ASan's quarantine keeps freed batches resident, so RSS says nothing here.
#else
  EXPECT_LT(peak - baseline, 32LL << 20) << "baseline " << baseline << " peak " << peak;
#endif
}

// ---- Auth ----

TEST(HttpServerTest, BearerTokens) {
  ServerSetup setup;
  setup.auth.token_secret = std::string(32, 's');
  setup.before_start = [](const std::filesystem::path& dir, auth::AuthOptions& options) {
    auto hash = auth::HashPassword("secret");
    ASSERT_TRUE(hash.ok());
    WriteFile(dir / "users.toml", StrCat("[users.alice]\npassword = \"", *hash,
                                         "\"\npermissions = [\"read\"]\n[users.bob]\n"
                                         "password = \"",
                                         *hash, "\"\npermissions = []\n"));
    options.users_file = dir / "users.toml";
  };
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  std::string url = t->QueryUrl("SELECT 42 AS x", "&format=csv");

  Response none = c.Get(url);
  EXPECT_EQ(none.status, 401);
  EXPECT_THAT(none.Header("www-authenticate"), HasSubstr("Bearer"));
  EXPECT_THAT(none.body, HasSubstr("unauthenticated"));
  EXPECT_EQ(c.Get(url, {"Authorization: Bearer nonsense"}).status, 401);
  EXPECT_EQ(c.Get(t->Url("/tables")).status, 401);
  EXPECT_EQ(c.Get(t->Url("/metrics")).status, 401);
  EXPECT_EQ(c.Get(t->Url("/health")).status, 200);  // no auth

  // Login.
  Response wrong = c.Post(t->Url("/auth/token"), "", {"Authorization: Basic YWxpY2U6bm9wZQ=="});
  EXPECT_EQ(wrong.status, 401);
  Response login =
      c.Post(t->Url("/auth/token"), "", {"Authorization: Basic YWxpY2U6c2VjcmV0"});  // alice:secret
  ASSERT_EQ(login.status, 200) << login.body;
  Json token = Json::parse(login.body);
  EXPECT_EQ(token["token_type"], "Bearer");
  EXPECT_THAT(token["expires_at"].get<std::string>(), HasSubstr("T"));
  std::string bearer = "Authorization: Bearer " + token["token"].get<std::string>();
  Response good = c.Get(url, {bearer});
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(good.body, "x\n42\n");
  EXPECT_EQ(c.Get(t->Url("/metrics"), {bearer}).status, 200);

  // Tampered and expired tokens.
  std::string tampered = bearer;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(c.Get(url, {tampered}).status, 401);
  auth::Principal alice{"alice", auth::kRead, {}};
  std::string expired =
      t->auth->IssueToken(alice, std::chrono::system_clock::now() - std::chrono::hours(2));
  Response old = c.Get(url, {"Authorization: Bearer " + expired});
  EXPECT_EQ(old.status, 401);
  EXPECT_THAT(old.body, HasSubstr("expired"));

  // bob may log in but not read.
  Response bob = c.Post(t->Url("/auth/token"), "", {"Authorization: Basic Ym9iOnNlY3JldA=="});
  ASSERT_EQ(bob.status, 200);
  Response denied =
      c.Get(url, {"Authorization: Bearer " + Json::parse(bob.body)["token"].get<std::string>()});
  EXPECT_EQ(denied.status, 403);
  // Raw files and cached results need the same read permission.
  EXPECT_EQ(c.Get(t->Url("/files/numbers.parquet")).status, 401);
  EXPECT_EQ(c.Get(t->Url("/files/numbers.parquet"), {bearer}).status, 200);
  EXPECT_EQ(c.Get(t->Url("/files/numbers.parquet"),
                  {"Authorization: Bearer " + Json::parse(bob.body)["token"].get<std::string>()})
                .status,
            403);
  EXPECT_EQ(c.Get(t->Url("/results/00000000000000000000000000000000")).status, 401);
}

// ---- TLS and CORS ----

TEST(HttpServerTest, ServesHttpsWithASelfSignedCertificate) {
  TempDir certs;
  std::string cert = (certs.path() / "cert.pem").string();
  std::string key = (certs.path() / "key.pem").string();
  auto made = ::bridge::testing::RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
       cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ServerSetup setup;
  setup.options.tls_cert = cert;
  setup.options.tls_key = key;
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  c.set_ca_file(cert);
  Response json = c.Get(t->QueryUrl("SELECT id FROM numbers WHERE id < 2 ORDER BY id"));
  ASSERT_EQ(json.code, CURLE_OK) << curl_easy_strerror(json.code);
  EXPECT_EQ(json.body, "[{\"id\":0},{\"id\":1}]\n");
  Response arrow = c.Get(t->QueryUrl("SELECT id FROM numbers", "&format=arrow"));
  ASSERT_EQ(arrow.status, 200);
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(arrow.body));
  EXPECT_EQ(d.rows, kNumbers);
  EXPECT_EQ(arrow.connects, 0);  // keep-alive over TLS
  Response parquet = c.Get(t->QueryUrl("SELECT id FROM numbers", "&format=parquet"));
  ASSERT_EQ(parquet.status, 200) << parquet.body;
  EXPECT_EQ(parquet.Header("content-length"), std::to_string(parquet.body.size()));
  EXPECT_EQ(parquet.body.substr(0, 4), "PAR1");
  EXPECT_EQ(parquet.body.substr(parquet.body.size() - 4), "PAR1");
  // Plain HTTP to the TLS port is refused, and the server stays up.
  Client plain;
  Response refused = plain.Get("http://127.0.0.1:" + std::to_string(t->port()) + "/health");
  EXPECT_NE(refused.status, 200);
  EXPECT_EQ(c.Get(t->Url("/health")).status, 200);
}

TEST(HttpServerTest, CorsOnlyForConfiguredOrigins) {
  ServerSetup setup;
  setup.options.cors_origins = {"http://app.example"};
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  Response allowed = c.Get(t->QueryUrl("SELECT 1"), {"Origin: http://app.example"});
  EXPECT_EQ(allowed.Header("access-control-allow-origin"), "http://app.example");
  Response other = c.Get(t->QueryUrl("SELECT 1"), {"Origin: http://evil.example"});
  EXPECT_EQ(other.Header("access-control-allow-origin"), "");
  Response preflight = c.Do("OPTIONS", t->Url("/query"), "",
                            {"Origin: http://app.example", "Access-Control-Request-Method: POST",
                             "Access-Control-Request-Headers: content-type"});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.Header("access-control-allow-origin"), "http://app.example");
  EXPECT_THAT(preflight.Header("access-control-allow-methods"), HasSubstr("POST"));
  EXPECT_THAT(preflight.Header("access-control-allow-headers"), HasSubstr("Content-Type"));
}

TEST(HttpServerTest, CorsIsOffByDefault) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  Client c;
  Response r = c.Get(t->Url("/health"), {"Origin: http://app.example"});
  EXPECT_EQ(r.Header("access-control-allow-origin"), "");
}

// ---- Shutdown ----

TEST(HttpServerTest, ShutdownCancelsWhatOutlivesTheGracePeriod) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  int fd = StartEndlessQuery(*t);
  ASSERT_TRUE(t->WaitForMetric("bridge_http_active_queries", 1));
  auto start = Clock::now();
  t->server->Shutdown(std::chrono::milliseconds(200));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(15));
  std::string reply = ReadFrom(fd, std::chrono::seconds(5));
  ::close(fd);
  EXPECT_THAT(reply, ::testing::Not(HasSubstr("HTTP/1.1 200")));
  auto text = SerializeMetrics(t->registry);
  EXPECT_THAT(text, HasSubstr("bridge_http_queries_cancelled_total{reason=\"shutdown\"} 1"));
  EXPECT_LT(ConnectLoopback(t->port()), 0);  // no longer accepting
}

}  // namespace
}  // namespace bridge::http

namespace bridge::http {
namespace {

// ---- Result cache (format=arrow) ----

// A server with a result cache and `options` (host and port are set by StartServer).
std::unique_ptr<TestServer> StartServerWithCache(ServerOptions options = {}) {
  ServerSetup setup;
  setup.options = std::move(options);
  setup.with_cache = true;
  return StartServer(setup);
}

TEST(HttpCacheTest, SecondArrowQueryIsServedFromTheCachedFileWithTheSameBytes) {
  auto t = StartServerWithCache();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string url =
      t->QueryUrl("SELECT id, label FROM numbers WHERE id < 5000 ORDER BY id", "&format=arrow");
  Response miss = c.Get(url);
  ASSERT_EQ(miss.status, 200) << miss.body;
  EXPECT_EQ(miss.Header("x-bridge-cache"), "miss");
  EXPECT_EQ(miss.Header("transfer-encoding"), "chunked");
  // Regression: the stream ended without its end-of-stream marker (the encoder was released
  // with the query before the last write looked for it).
  ASSERT_GE(miss.body.size(), 8u);
  EXPECT_EQ(miss.body.substr(miss.body.size() - 8), std::string("\xff\xff\xff\xff\0\0\0\0", 8));
  ASSERT_TRUE(t->WaitForCommits(1));
  EXPECT_EQ(t->cache->stats().entries, 1);
  Response hit = c.Get(url);
  ASSERT_EQ(hit.status, 200) << hit.body;
  EXPECT_EQ(hit.Header("x-bridge-cache"), "hit");
  EXPECT_EQ(hit.Header("content-type"), "application/vnd.apache.arrow.stream");
  EXPECT_EQ(hit.Header("content-length"), std::to_string(miss.body.size()));
  // The file's stream section is the streamed response, byte for byte.
  size_t differs = 0;
  while (differs < std::min(hit.body.size(), miss.body.size()) &&
         hit.body[differs] == miss.body[differs]) {
    ++differs;
  }
  EXPECT_TRUE(hit.body == miss.body) << "sizes " << hit.body.size() << " and " << miss.body.size()
                                     << ", first difference at " << differs;
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(hit.body));
  EXPECT_EQ(d.rows, 5000);
  EXPECT_EQ(d.ints[0].back(), 4999);
  EXPECT_EQ(t->cache->stats().hits, 1);
  EXPECT_EQ(t->Metric("bridge_http_cache_lookups_total{result=\"hit\"}"), 1);
  EXPECT_EQ(t->Metric("bridge_http_cache_lookups_total{result=\"miss\"}"), 1);
  // Other output options are other results.
  Response limited = c.Get(url + "&limit=10");
  EXPECT_EQ(limited.Header("x-bridge-cache"), "miss");
  ASSERT_OK_AND_ASSIGN(Decoded l, DecodeArrow(limited.body));
  EXPECT_EQ(l.rows, 10);
  // Text formats are not cached.
  Response json = c.Get(t->QueryUrl("SELECT id FROM numbers WHERE id < 3"));
  EXPECT_EQ(json.Header("x-bridge-cache"), "");
}

// A miss is written through: each step's batches are appended to the entry's file and sent
// from it with sendfile. What the client gets must be the uncached result, byte for byte,
// also when the entry is given up halfway and the rest comes from memory.
TEST(HttpCacheTest, AMissIsSentFromTheEntryFileAndIsTheUncachedResult) {
  ServerSetup setup;
  setup.with_cache = true;
  setup.cache_entry_bytes = int64_t{4} << 20;  // the whole table (~9 MB) does not fit
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  Client c;
  const std::string fits = t->QueryUrl(
      StrCat("SELECT * FROM numbers WHERE id < ", kNumbers / 3, " ORDER BY id"), "&format=arrow");
  Response uncached = c.Get(fits + "&cache=off");
  ASSERT_EQ(uncached.status, 200) << uncached.body;
  ASSERT_GT(uncached.body.size(), size_t{2} << 20);  // several steps of ~1 MiB
  Response miss = c.Get(fits);
  EXPECT_EQ(miss.Header("x-bridge-cache"), "miss");
  EXPECT_TRUE(miss.body == uncached.body) << miss.body.size() << " vs " << uncached.body.size();
  // Everything but the schema message (and the framing) went out by sendfile.
  const double sent_from_file = t->Metric("bridge_http_arrow_sendfile_bytes_total");
  EXPECT_GT(sent_from_file, 0.99 * static_cast<double>(miss.body.size()));
  EXPECT_LT(sent_from_file, static_cast<double>(miss.body.size()));
  EXPECT_EQ(t->Metric("bridge_http_arrow_bytes_copied_total"), 0);
  ASSERT_TRUE(t->WaitForCommits(1));
  Response hit = c.Get(fits);
  EXPECT_EQ(hit.Header("x-bridge-cache"), "hit");
  EXPECT_TRUE(hit.body == uncached.body);
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(hit.body));
  EXPECT_EQ(d.rows, kNumbers / 3);
  EXPECT_EQ(d.ints[0].back(), kNumbers / 3 - 1);

  // Past 4 MB the entry is abandoned: that step and the rest are sent from memory.
  const std::string too_big = t->QueryUrl("SELECT * FROM numbers ORDER BY id", "&format=arrow");
  Response whole_uncached = c.Get(too_big + "&cache=off");
  ASSERT_EQ(whole_uncached.status, 200);
  Response whole = c.Get(too_big);
  EXPECT_EQ(whole.Header("x-bridge-cache"), "miss");
  EXPECT_TRUE(whole.body == whole_uncached.body)
      << whole.body.size() << " vs " << whole_uncached.body.size();
  EXPECT_EQ(t->cache->stats().writes_abandoned, 1);
  EXPECT_EQ(t->cache->stats().entries, 1);

  // HTTP/1.0: no chunks around the file's bytes, the same body.
  const std::string tenth =
      StrCat("/query?format=arrow&sql=SELECT+*+FROM+numbers+WHERE+id+%3C+", kNumbers / 10);
  Response tenth_uncached = c.Get(t->Url(tenth + "&cache=off"));
  ASSERT_EQ(tenth_uncached.status, 200);
  int fd = ConnectLoopback(t->port());
  SendAll(fd, StrCat("GET ", tenth, " HTTP/1.0\r\n\r\n"));
  std::string reply = ReadFrom(fd, std::chrono::seconds(20));
  ::close(fd);
  EXPECT_THAT(reply, HasSubstr("X-Bridge-Cache: miss"));
  EXPECT_TRUE(reply.ends_with("\r\n\r\n" + tenth_uncached.body)) << reply.size();
}

// The file part of a written-through step waits for the socket outside Beast's timeouts:
// a client that stops reading must still be cut off after idle_timeout, freeing its query.
TEST(HttpCacheTest, AClientThatStopsReadingAMissIsCutOffAfterTheIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(500);
  auto t = StartServerWithCache(options);
  ASSERT_NE(t, nullptr);
  const int fd = ConnectLoopback(t->port(), 4096);
  SendAll(fd,
          "GET /query?format=arrow&sql=SELECT+*+FROM+numbers+ORDER+BY+id HTTP/1.1\r\n"
          "Host: x\r\n\r\n");
  ASSERT_TRUE(t->WaitForMetric("bridge_http_active_queries", 1));
  // Never read: the socket buffers fill up with the first step or two of ~9 MB.
  EXPECT_TRUE(t->WaitForMetric("bridge_http_queries_cancelled_total{reason=\"disconnect\"}", 1));
  EXPECT_TRUE(t->WaitForMetric("bridge_http_active_queries", 0));
  EXPECT_GT(t->Metric("bridge_http_arrow_sendfile_bytes_total"), 0);
  ::close(fd);
  EXPECT_TRUE(t->WaitForMetric("bridge_http_cache_lookups_total{result=\"miss\"}", 1));
  EXPECT_EQ(t->cache->stats().entries, 0);  // abandoned, nothing left
}

// A hit goes out by sendfile alone: a client that stalls longer than idle_timeout gets a cut
// body (and an end of stream), not the rest of the file whenever it reads again.
TEST(HttpCacheTest, AClientThatStopsReadingAHitIsCutOffAfterTheIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(300);
  auto t = StartServerWithCache(options);
  ASSERT_NE(t, nullptr);
  const std::string target = "/query?format=arrow&sql=SELECT+*+FROM+numbers+ORDER+BY+id";
  Client c;
  Response miss = c.Get(t->Url(target));
  ASSERT_EQ(miss.status, 200);
  ASSERT_TRUE(t->WaitForCommits(1));
  const int fd = ConnectLoopback(t->port(), 4096);
  SendAll(fd, StrCat("GET ", target, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(t->WaitForMetric("bridge_http_cache_lookups_total{result=\"hit\"}", 1));
  // The stall itself (what is tested), several idle timeouts long.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Whatever was in flight arrives, then the end: no more of the file follows.
  const std::string reply = ReadFrom(fd, std::chrono::seconds(20));
  ::close(fd);
  ASSERT_NE(reply.find("X-Bridge-Cache: hit"), std::string::npos) << reply.substr(0, 300);
  const size_t body = reply.size() - (reply.find("\r\n\r\n") + 4);
  EXPECT_LT(body, miss.body.size());
  EXPECT_GT(body, 0u);
}

TEST(HttpCacheTest, OffRefreshAndResultsThatMustNotBeCached) {
  auto t = StartServerWithCache();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string sql = "SELECT count(*) AS n FROM numbers";
  EXPECT_EQ(c.Get(t->QueryUrl(sql, "&format=arrow&cache=off")).Header("x-bridge-cache"), "off");
  EXPECT_EQ(t->cache->stats().entries, 0);
  EXPECT_EQ(c.Get(t->QueryUrl(sql, "&format=arrow&cache=refresh")).Header("x-bridge-cache"),
            "refresh");
  ASSERT_TRUE(t->WaitForCommits(1));
  EXPECT_EQ(t->cache->stats().entries, 1);
  EXPECT_EQ(c.Get(t->QueryUrl(sql, "&format=arrow")).Header("x-bridge-cache"), "hit");
  // Same query with other whitespace and a comment: the same result.
  EXPECT_EQ(c.Get(t->QueryUrl("SELECT   count(*) AS n\n FROM numbers -- again", "&format=arrow"))
                .Header("x-bridge-cache"),
            "hit");
  for (const std::string& uncacheable :
       {std::string("SELECT random() AS r"), std::string("SELECT now() AS t"),
        std::string("SELECT count(*) FROM range(10)"),
        StrCat("SELECT count(*) FROM read_parquet(",
               engine::QuoteString((t->dir.path() / "data" / "numbers.parquet").string()), ")"),
        std::string("SELECT count(*) FROM numbers WHERE id < random() * 10")}) {
    Response r = c.Get(t->QueryUrl(uncacheable, "&format=arrow"));
    EXPECT_EQ(r.status, 200) << uncacheable << r.body;
    EXPECT_EQ(r.Header("x-bridge-cache"), "uncacheable") << uncacheable;
  }
  EXPECT_EQ(t->cache->stats().entries, 1);
  // Bound parameters are part of the key, with their types.
  auto post = [&](const std::string& params) {
    return c.Post(
        t->Url("/query?format=arrow"),
        R"({"sql": "SELECT count(*) FROM numbers WHERE id < $1", "params": )" + params + "}",
        {"Content-Type: application/json"});
  };
  EXPECT_EQ(post("[10]").Header("x-bridge-cache"), "miss");
  ASSERT_TRUE(t->WaitForCommits(2));
  EXPECT_EQ(post("[10]").Header("x-bridge-cache"), "hit");
  EXPECT_EQ(post("[20]").Header("x-bridge-cache"), "miss");
  EXPECT_EQ(post("[10.0]").Header("x-bridge-cache"), "miss");
}

TEST(HttpCacheTest, AChangedTableIsAMissWithTheNewRows) {
  auto t = StartServerWithCache();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string url = t->QueryUrl("SELECT max(id) AS m FROM numbers", "&format=arrow");
  EXPECT_EQ(c.Get(url).Header("x-bridge-cache"), "miss");
  ASSERT_TRUE(t->WaitForCommits(1));
  Response hit = c.Get(url);
  EXPECT_EQ(hit.Header("x-bridge-cache"), "hit");
  ASSERT_OK_AND_ASSIGN(Decoded before, DecodeArrow(hit.body));
  EXPECT_EQ(before.ints[0], std::vector<int64_t>{kNumbers - 1});
  ASSERT_OK(t->db->ExecuteTrusted(
      StrCat("COPY (SELECT range AS id, range * 2 AS twice, 'row ' || range::VARCHAR AS label FROM "
             "range(10)) TO ",
             engine::QuoteString((t->dir.path() / "data" / "numbers.parquet").string()),
             " (FORMAT parquet)")));
  ASSERT_OK(t->catalog->Refresh().status());
  Response after = c.Get(url);
  EXPECT_EQ(after.Header("x-bridge-cache"), "miss");
  ASSERT_OK_AND_ASSIGN(Decoded d, DecodeArrow(after.body));
  EXPECT_EQ(d.ints[0], std::vector<int64_t>{9});
  ASSERT_TRUE(t->WaitForCommits(2));
  EXPECT_EQ(c.Get(url).Header("x-bridge-cache"), "hit");
}

TEST(HttpCacheTest, ACorruptEntryIsNeverServed) {
  auto t = StartServerWithCache();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string url = t->QueryUrl("SELECT id, twice FROM numbers WHERE id < 50000", "&format=arrow");
  Response miss = c.Get(url);
  ASSERT_EQ(miss.Header("x-bridge-cache"), "miss");
  ASSERT_TRUE(t->WaitForCommits(1));
  // Flip one byte in the middle of the entry's file (inside a batch body).
  std::filesystem::path file =
      ::bridge::testing::OnlyFileWithExtension(t->dir.path() / "results", ".arrow");
  ASSERT_FALSE(file.empty());
  ::bridge::testing::FlipByteAt(file, 1, 2);
  Response again = c.Get(url);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.Header("x-bridge-cache"), "miss");
  EXPECT_TRUE(again.body == miss.body);
  ASSERT_TRUE(t->WaitForCommits(2));
  EXPECT_EQ(t->cache->stats().verify_failures, 1);
  EXPECT_EQ(c.Get(url).Header("x-bridge-cache"), "hit");  // the re-run was cached again
}

// ---- /results/{id} and /files/{path}: whole files with sendfile, ranges, ETags ----

// Sends one raw request line (curl would normalize the path) and returns the status code.
int RawStatus(int port, const std::string& target) {
  int fd = ::bridge::testing::ConnectLoopback(port);
  SendAll(fd, StrCat("GET ", target, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string reply = ReadFrom(fd, std::chrono::seconds(10));
  ::close(fd);
  return reply.size() >= 12 ? std::atoi(reply.substr(9, 3).c_str()) : -1;
}

TEST(HttpCacheTest, ResultsByIdAreTheWholeArrowFileWithRangesAndETags) {
  auto t = StartServerWithCache();
  ASSERT_NE(t, nullptr);
  Client c;
  std::string url = t->QueryUrl("SELECT id, label FROM numbers WHERE id < 20000", "&format=arrow");
  Response miss = c.Get(url);
  ASSERT_EQ(miss.status, 200) << miss.body;
  std::string id = miss.Header("x-bridge-result-id");
  ASSERT_EQ(id.size(), 32u);
  ASSERT_TRUE(t->WaitForCommits(1));
  EXPECT_EQ(c.Get(url).Header("x-bridge-result-id"), id);  // the hit names the same file

  Response file = c.Get(t->Url("/results/" + id));
  ASSERT_EQ(file.status, 200) << file.body;
  EXPECT_EQ(file.Header("content-type"), "application/vnd.apache.arrow.file");
  EXPECT_EQ(file.Header("content-length"), std::to_string(file.body.size()));
  EXPECT_EQ(file.Header("accept-ranges"), "bytes");
  EXPECT_THAT(file.Header("content-disposition"), HasSubstr(id + ".arrow"));
  // An IPC file whose stream section is the streamed response, byte for byte.
  ASSERT_GT(file.body.size(), miss.body.size() + 16);
  EXPECT_EQ(file.body.substr(0, 8), std::string("ARROW1\0\0", 8));
  EXPECT_EQ(file.body.substr(file.body.size() - 6), "ARROW1");
  EXPECT_TRUE(file.body.substr(8, miss.body.size()) == miss.body);
  std::string etag = file.Header("etag");
  ASSERT_FALSE(etag.empty());

  Response head = c.Do("HEAD", t->Url("/results/" + id));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-length"), std::to_string(file.body.size()));
  EXPECT_TRUE(head.body.empty());
  Response part = c.Get(t->Url("/results/" + id), {"Range: bytes=8-"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.Header("content-range"),
            StrCat("bytes 8-", file.body.size() - 1, "/", file.body.size()));
  EXPECT_TRUE(part.body == file.body.substr(8));
  Response tail = c.Get(t->Url("/results/" + id), {"Range: bytes=-6"});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, "ARROW1");
  Response same = c.Get(t->Url("/results/" + id), {"If-None-Match: " + etag});
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  Response outside = c.Get(t->Url("/results/" + id), {"Range: bytes=999999999-"});
  EXPECT_EQ(outside.status, 416);
  EXPECT_EQ(outside.Header("content-range"), StrCat("bytes */", file.body.size()));
  EXPECT_DOUBLE_EQ(t->Metric("bridge_http_response_bytes_total{format=\"arrow\"}"),
                   static_cast<double>(2 * miss.body.size() + file.body.size() + part.body.size() +
                                       tail.body.size()));

  EXPECT_EQ(c.Get(t->Url("/results/00000000000000000000000000000000")).status, 404);
  EXPECT_EQ(c.Get(t->Url("/results/not-an-id")).status, 404);
  EXPECT_EQ(RawStatus(t->port(), "/results/../query"), 404);

  // A corrupt file is detected (once per process, before the first byte), evicted, never
  // sent. The entry above was verified when it was hit: make a fresh one.
  ASSERT_TRUE(t->cache->Remove(id));
  Response rerun = c.Get(url);
  ASSERT_EQ(rerun.Header("x-bridge-cache"), "miss");
  std::string id2 = rerun.Header("x-bridge-result-id");
  ASSERT_NE(id2, id);
  ASSERT_TRUE(t->WaitForCommits(2));
  std::filesystem::path path2 = t->dir.path() / "results" / (id2 + ".arrow");
  ASSERT_EQ(std::filesystem::file_size(path2), file.body.size());
  ::bridge::testing::FlipByteAt(path2, 1, 2);
  Response corrupt = c.Get(t->Url("/results/" + id2));
  EXPECT_EQ(corrupt.status, 404) << corrupt.body.size();
  EXPECT_EQ(t->cache->stats().verify_failures, 1);
  EXPECT_FALSE(std::filesystem::exists(path2));
}

TEST(HttpCacheTest, DeleteRemovesOneCachedResultOrAllOfThemAndNeedsAdmin) {
  ServerSetup setup;
  setup.with_cache = true;
  setup.auth.token_secret = std::string(32, 's');
  setup.before_start = [](const std::filesystem::path& dir, auth::AuthOptions& options) {
    auto hash = auth::HashPassword("secret");
    ASSERT_TRUE(hash.ok());
    WriteFile(dir / "users.toml",
              StrCat("[users.alice]\npassword = \"", *hash,
                     "\"\npermissions = [\"read\"]\n[users.root]\npassword = \"", *hash,
                     "\"\npermissions = [\"read\", \"admin\"]\n"));
    options.users_file = dir / "users.toml";
  };
  auto t = StartServer(setup);
  ASSERT_NE(t, nullptr);
  const auto tomorrow = std::chrono::system_clock::now() + std::chrono::hours(24);
  auth::Principal alice{"alice", auth::kRead, {}};
  auth::Principal root{"root", auth::kRead | auth::kAdmin, {}};
  const std::string reader = "Authorization: Bearer " + t->auth->IssueToken(alice, tomorrow);
  const std::string admin = "Authorization: Bearer " + t->auth->IssueToken(root, tomorrow);
  t->auth_header = {admin};
  Client c;
  const std::string small = t->QueryUrl("SELECT id FROM numbers WHERE id < 100", "&format=arrow");
  const std::string big = t->QueryUrl("SELECT id FROM numbers WHERE id < 200", "&format=arrow");
  Response first = c.Get(small, {reader});
  ASSERT_EQ(first.status, 200) << first.body;
  ASSERT_EQ(c.Get(big, {reader}).status, 200);
  ASSERT_TRUE(t->WaitForCommits(2));
  const std::string id = first.Header("x-bridge-result-id");
  ASSERT_EQ(c.Get(small, {reader}).Header("x-bridge-cache"), "hit");

  // Reading does not allow deleting; no token at all is refused before that.
  EXPECT_EQ(c.Do("DELETE", t->Url("/results/" + id), "", {reader}).status, 403);
  EXPECT_EQ(c.Do("DELETE", t->Url("/results")).status, 401);
  EXPECT_EQ(c.Get(t->Url("/results/" + id), {reader}).status, 200);
  Response get_all = c.Get(t->Url("/results"), {reader});
  EXPECT_EQ(get_all.status, 405);
  EXPECT_EQ(get_all.Header("allow"), "DELETE, OPTIONS");

  // One entry: gone from /results/{id} and from the cache (the query runs again).
  Response removed = c.Do("DELETE", t->Url("/results/" + id), "", {admin});
  EXPECT_EQ(removed.status, 204) << removed.body;
  EXPECT_TRUE(removed.body.empty());
  EXPECT_EQ(t->cache->stats().entries, 1);
  EXPECT_EQ(c.Get(t->Url("/results/" + id), {reader}).status, 404);
  EXPECT_EQ(c.Do("DELETE", t->Url("/results/" + id), "", {admin}).status, 404);
  Response again = c.Get(small, {reader});
  EXPECT_EQ(again.Header("x-bridge-cache"), "miss");
  EXPECT_TRUE(again.body == first.body);
  ASSERT_TRUE(t->WaitForCommits(3));

  // All of them.
  Response cleared = c.Do("DELETE", t->Url("/results"), "", {admin});
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(Json::parse(cleared.body)["removed"], 2);
  EXPECT_EQ(t->cache->stats().entries, 0);
  // The cache's own counters are in /metrics (HTTP and Flight lookups alike).
  EXPECT_EQ(t->Metric("bridge_cache_entries"), 0);
  EXPECT_EQ(t->Metric("bridge_cache_evictions_total"), 3);
  EXPECT_EQ(t->Metric("bridge_cache_writes_total{result=\"committed\"}"), 3);
  EXPECT_EQ(t->Metric("bridge_cache_lookups_total{result=\"hit\"}"), 1);
  EXPECT_EQ(t->Metric("bridge_cache_lookups_total{result=\"miss\"}"), 3);
  EXPECT_EQ(t->Metric("bridge_cache_capacity_bytes"), t->cache->options().max_bytes);
  EXPECT_EQ(c.Get(big, {reader}).Header("x-bridge-cache"), "miss");
  ASSERT_TRUE(t->WaitForCommits(4));
  EXPECT_EQ(t->Metric("bridge_cache_entries"), 1);
  EXPECT_EQ(t->Metric("bridge_cache_bytes"), t->cache->stats().bytes);
  EXPECT_GT(t->cache->stats().bytes, 0);
  EXPECT_EQ(Json::parse(c.Do("DELETE", t->Url("/results"), "", {admin}).body)["removed"], 1);
}

TEST(HttpCacheTest, DeleteRoutesWithoutAuthOrWithoutACache) {
  auto t = StartServerWithCache();
  ASSERT_NE(t, nullptr);
  Client c;
  Response options = c.Do("OPTIONS", t->Url("/results/0123"));
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.Header("allow"), "GET, HEAD, DELETE, OPTIONS");
  EXPECT_EQ(c.Do("OPTIONS", t->Url("/results")).Header("allow"), "DELETE, OPTIONS");
  EXPECT_EQ(c.Do("HEAD", t->Url("/results")).status, 405);
  EXPECT_EQ(c.Do("DELETE", t->Url("/query")).status, 405);  // DELETE is for results only
  // Authentication off: anybody may delete.
  const std::string url = t->QueryUrl("SELECT id FROM numbers WHERE id < 100", "&format=arrow");
  ASSERT_EQ(c.Get(url).status, 200);
  ASSERT_TRUE(t->WaitForCommits(1));
  Response cleared = c.Do("DELETE", t->Url("/results"));
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(Json::parse(cleared.body)["removed"], 1);

  auto plain = StartServer();  // no cache
  ASSERT_NE(plain, nullptr);
  Response off = c.Do("DELETE", plain->Url("/results"));
  EXPECT_EQ(off.status, 404);
  EXPECT_THAT(off.body, HasSubstr("cache is off"));
  EXPECT_EQ(c.Do("DELETE", plain->Url("/results/0123")).status, 404);
}

TEST(HttpFilesTest, ServesDataFilesWithRangesAndRefusesPathsOutOfTheFolder) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  std::filesystem::path data = t->dir.path() / "data";
  WriteFile(t->dir.path() / "secret.txt", "outside\n");
  std::filesystem::create_symlink(t->dir.path() / "secret.txt", data / "link_out.csv");
  std::filesystem::create_symlink(t->dir.path(), data / "up");
  std::filesystem::create_directories(data / "sub dir");
  WriteFile(data / "sub dir" / "a b.csv", "x\n1\n");
  std::string parquet = ReadFile(data / "numbers.parquet");

  Client c;
  Response whole = c.Get(t->Url("/files/numbers.parquet"));
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_EQ(whole.Header("content-type"), "application/vnd.apache.parquet");
  EXPECT_TRUE(whole.body == parquet);
  std::string etag = whole.Header("etag");
  EXPECT_FALSE(etag.empty());
  Response csv = c.Get(t->Url("/files/sub%20dir/a%20b.csv"));
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body, "x\n1\n");
  EXPECT_EQ(csv.Header("content-type"), "text/csv");

  Response magic = c.Get(t->Url("/files/numbers.parquet"), {"Range: bytes=-4"});
  EXPECT_EQ(magic.status, 206);
  EXPECT_EQ(magic.body, "PAR1");
  Response middle = c.Get(t->Url("/files/numbers.parquet"), {"Range: bytes=100-1123"});
  EXPECT_EQ(middle.status, 206);
  EXPECT_TRUE(middle.body == parquet.substr(100, 1024));
  Response stale =
      c.Get(t->Url("/files/numbers.parquet"), {"Range: bytes=0-3", "If-Range: \"old\""});
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body.size(), parquet.size());
  EXPECT_EQ(c.Get(t->Url("/files/numbers.parquet"), {"If-None-Match: " + etag}).status, 304);
  EXPECT_EQ(c.Do("HEAD", t->Url("/files/numbers.parquet")).Header("content-length"),
            std::to_string(parquet.size()));
  EXPECT_EQ(c.Post(t->Url("/files/numbers.parquet"), "x").status, 405);
  // HEAD of an error has headers only, so the next response on the connection reads right.
  {
    int fd = ::bridge::testing::ConnectLoopback(t->port());
    SendAll(fd,
            "HEAD /files/missing.parquet HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /files/sub%20dir/a%20b.csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string reply = ReadFrom(fd, std::chrono::seconds(10));
    ::close(fd);
    EXPECT_EQ(reply.find("HTTP/1.1 404"), 0u) << reply;
    EXPECT_NE(reply.find("Content-Length: "), std::string::npos);
    EXPECT_EQ(reply.find("HTTP/1.1 200"), reply.find("\r\n\r\n") + 4) << reply;
    EXPECT_TRUE(reply.ends_with("\r\n\r\nx\n1\n")) << reply;
  }

  // Traversal in every spelling, links out, hidden names, folders, NUL bytes.
  for (const char* target :
       {"/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/%2E%2E%2Fsecret.txt",
        "/files/sub%20dir/../../secret.txt", "/files//etc/passwd", "/files/%2Fetc%2Fpasswd",
        "/files/link_out.csv", "/files/up/secret.txt", "/files/sub%20dir", "/files/",
        "/files/missing.parquet", "/files/..%5csecret.txt"}) {
    EXPECT_EQ(RawStatus(t->port(), target), 404) << target;
  }
  EXPECT_EQ(RawStatus(t->port(), "/files/numbers.parquet%00.txt"), 400);
  EXPECT_EQ(RawStatus(t->port(), "/files/%zz"), 400);
  EXPECT_EQ(RawStatus(t->port(), "/files/up/data/numbers.parquet"), 200);  // out and back in
  EXPECT_DOUBLE_EQ(
      t->Metric("bridge_http_response_bytes_total{format=\"file\"}"),
      static_cast<double>(2 * parquet.size() + 2 * csv.body.size() + 4 + 1024 + parquet.size()));
}

}  // namespace
}  // namespace bridge::http
