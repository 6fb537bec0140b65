// End-to-end tests of `bridge serve`'s HTTP front door: a real process on 127.0.0.1 with
// port 0, driven by libcurl and raw sockets; graceful shutdown on SIGTERM.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "bridge/common/testing.h"

namespace bridge {
namespace {

using ::bridge::testing::BridgeBinary;
using ::bridge::testing::ChildProcess;
using ::bridge::testing::ConnectLoopback;
using ::bridge::testing::EndsWithServerTimingTrailer;
using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kListening = "HTTP listening on http://127.0.0.1:";

size_t Append(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// GET `url`; returns the status and fills `body`.
long Get(const std::string& url, std::string* body) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_easy_cleanup(curl);
  return status;
}

// Starts `bridge serve` over `data` with `extra` flags (the command run through `wrapper`,
// e.g. prlimit, when given); returns the process and its port.
std::unique_ptr<ChildProcess> Serve(const std::filesystem::path& data, int* port,
                                    std::vector<std::string> extra = {},
                                    std::vector<std::string> wrapper = {}) {
  std::vector<std::string> argv = std::move(wrapper);
  for (std::string arg :
       {BridgeBinary(), std::string("serve"), std::string("--data"), data.string(),
        std::string("--http-port"), std::string("0"), std::string("--flight-port"),
        std::string("0"), std::string("--watch"), std::string("false")}) {
    argv.push_back(std::move(arg));
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = ChildProcess::Start(argv);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return nullptr;
  auto server = std::move(child).value();
  EXPECT_TRUE(server->WaitForOutput(kListening)) << server->output();
  EXPECT_TRUE(server->WaitForOutput("Ctrl-C")) << server->output();
  const std::string& out = server->output();
  size_t at = out.find(kListening);
  *port = at == std::string::npos ? -1 : std::atoi(out.c_str() + at + kListening.size());
  return server;
}

// Reads until the peer closes, `until` appears or `timeout` passes.
std::string ReadFrom(int fd, std::chrono::seconds timeout, std::string_view until = {}) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (Clock::now() < deadline) {
    if (!until.empty() && out.find(until) != std::string::npos) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void Request(int fd, const std::string& sql, const std::string& format) {
  char* escaped = curl_easy_escape(nullptr, sql.c_str(), static_cast<int>(sql.size()));
  std::string request = std::string("GET /query?format=") + format + "&sql=" + escaped +
                        " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  curl_free(escaped);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
}

TEST(HttpTest, ServeAnswersQueriesAndStopsOnSigterm) {
  TempDir dir;
  WriteFile(dir.path() / "people.csv", "id,name\n1,Ann\n2,Bo\n");
  int port = 0;
  auto server = Serve(dir.path(), &port);
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  std::string health;
  EXPECT_EQ(Get(base + "/health", &health), 200);
  EXPECT_THAT(health, HasSubstr("\"tables\":1"));
  std::string csv;
  EXPECT_EQ(Get(base + "/query?format=csv&sql=SELECT+name+FROM+people+ORDER+BY+id", &csv), 200);
  EXPECT_EQ(csv, "name\nAnn\nBo\n");
  std::string missing;
  EXPECT_EQ(Get(base + "/tables/nope", &missing), 404);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->output();
}

TEST(HttpTest, BadHttpConfigurationExitsTwo) {
  TempDir dir;
  std::string data = dir.path().string();
  int busy_port = 0;
  auto first = Serve(dir.path(), &busy_port);
  ASSERT_NE(first, nullptr);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"--users-file", (dir.path() / "nope.toml").string()}, "nope.toml"},
      {{"--tls-cert", (dir.path() / "c.pem").string(), "--tls-key",
        (dir.path() / "k.pem").string()},
       "c.pem' does not exist"},
      {{"--tls-cert", (dir.path() / "c.pem").string()}, "tls.cert and tls.key"},
      {{"--max-concurrent-queries", "9", "--max-sessions", "8"},
       "http.max_concurrent_queries = 9 must be <= engine.max_sessions = 8"},
      {{"--http-port", std::to_string(busy_port)}, "cannot listen"},
  };
  for (const auto& c : cases) {
    // Every case fails before binding (the last one: binding the port already taken).
    std::vector<std::string> argv = {BridgeBinary(),  "serve", "--data",  data,
                                     "--flight-port", "0",     "--watch", "false"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = ::bridge::testing::RunCommand(argv, 60);
    EXPECT_EQ(r.exit_code, 2) << c.message << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
  }
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(), 0);
}

TEST(HttpTest, SigtermLetsARunningStreamFinish) {
  TempDir dir;
  WriteFile(dir.path() / "x.csv", "x\n1\n");
  int port = 0;
  auto server = Serve(dir.path(), &port, {"--shutdown-grace-ms", "20000"});
  ASSERT_NE(server, nullptr);
  int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  Request(fd, "SELECT range AS a, range AS b FROM range(2000000)", "arrow");
  std::string reply = ReadFrom(fd, std::chrono::seconds(20), "\r\n\r\n");
  ASSERT_THAT(reply, HasSubstr("HTTP/1.1 200"));
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForOutput("stopping on signal")) << server->output();
  reply += ReadFrom(fd, std::chrono::seconds(60));
  ::close(fd);
  EXPECT_TRUE(EndsWithServerTimingTrailer(reply)) << reply.size();  // complete, not cut
  EXPECT_GT(reply.size(), 2000000u * 16);
  EXPECT_EQ(server->Wait(), 0) << server->output();
  EXPECT_THAT(server->output(), ::testing::Not(HasSubstr("grace period over")));
}

TEST(HttpTest, SigtermCancelsAStreamThatOutlivesTheGracePeriod) {
  TempDir dir;
  WriteFile(dir.path() / "x.csv", "x\n1\n");
  int port = 0;
  auto server = Serve(dir.path(), &port, {"--shutdown-grace-ms", "300"});
  ASSERT_NE(server, nullptr);
  int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  // An endless stream the client does not read: the server blocks on the socket.
  Request(fd, "SELECT range AS a FROM range(100000000000)", "arrow");
  std::string reply = ReadFrom(fd, std::chrono::seconds(20), "\r\n\r\n");
  ASSERT_THAT(reply, HasSubstr("HTTP/1.1 200"));
  auto start = Clock::now();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(30), 0) << server->output();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
  EXPECT_THAT(server->output(), HasSubstr("grace period over"));
  reply += ReadFrom(fd, std::chrono::seconds(10));
  ::close(fd);
  EXPECT_FALSE(EndsWithServerTimingTrailer(reply));  // cut: the client sees a truncated transfer
}

}  // namespace
}  // namespace bridge

namespace bridge {
namespace {

// Returns the value of the Prometheus line starting with `series`, or -1.
double MetricOf(const std::string& base, const std::string& series) {
  std::string text;
  if (Get(base + "/metrics", &text) != 200) return -1;
  text = "\n" + text;
  size_t at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

TEST(HttpTest, CachedArrowResultsSurviveARestartAndFollowTheFiles) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  WriteFile(dir.path() / "data" / "people.csv", "id,name\n1,Ann\n2,Bo\n");
  const std::vector<std::string> flags = {"--cache-dir", (dir.path() / "cache").string()};
  const std::string query = "/query?format=arrow&sql=SELECT+name+FROM+people+ORDER+BY+id";
  std::string first;
  {
    int port = 0;
    auto server = Serve(dir.path() / "data", &port, flags);
    ASSERT_NE(server, nullptr);
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    ASSERT_EQ(Get(base + query, &first), 200);
    EXPECT_EQ(MetricOf(base, "bridge_http_cache_lookups_total{result=\"miss\"}"), 1);
    server->Signal(SIGTERM);
    EXPECT_EQ(server->Wait(), 0) << server->output();
  }
  {
    int port = 0;
    auto server = Serve(dir.path() / "data", &port, flags);
    ASSERT_NE(server, nullptr);
    EXPECT_THAT(server->output(), HasSubstr("(1 entries"));
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    std::string again;
    ASSERT_EQ(Get(base + query, &again), 200);
    EXPECT_EQ(again, first);
    EXPECT_EQ(MetricOf(base, "bridge_http_cache_lookups_total{result=\"hit\"}"), 1);
    server->Signal(SIGTERM);
    EXPECT_EQ(server->Wait(), 0) << server->output();
  }
  // The file changed while no server ran: the old result is not served.
  WriteFile(dir.path() / "data" / "people.csv", "id,name\n1,Ann\n2,Bo\n3,Cy\n");
  {
    int port = 0;
    auto server = Serve(dir.path() / "data", &port, flags);
    ASSERT_NE(server, nullptr);
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    std::string changed;
    ASSERT_EQ(Get(base + query, &changed), 200);
    EXPECT_NE(changed, first);
    EXPECT_NE(changed.find("Cy"), std::string::npos);
    EXPECT_EQ(MetricOf(base, "bridge_http_cache_lookups_total{result=\"miss\"}"), 1);
    server->Signal(SIGTERM);
    EXPECT_EQ(server->Wait(), 0) << server->output();
  }
}

// A CSV of `rows` rows (id, label): a result of a few bytes per row.
void WriteNumbers(const std::filesystem::path& path, int rows) {
  std::string csv = "id,label\n";
  for (int i = 0; i < rows; ++i) csv += std::to_string(i) + ",row " + std::to_string(i) + "\n";
  WriteFile(path, csv);
}

std::vector<std::string> FilesIn(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Waits until the server's cache holds `n` committed entries (its file is renamed into
// place a moment before the entry is in the index: the folder's fsync comes between).
bool WaitForEntries(const std::string& base, double n) {
  for (auto deadline = Clock::now() + std::chrono::seconds(20); Clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(5))) {
    if (MetricOf(base, "bridge_cache_entries") == n) return true;
  }
  return false;
}

TEST(HttpTest, AFullCacheDiskStillAnswersEveryQueryAndLogsIt) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  WriteNumbers(dir.path() / "data" / "numbers.csv", 200000);
  const std::filesystem::path results = dir.path() / "cache" / "results";
  std::filesystem::create_directories(results);
  // A 512 KiB tmpfs under the cache when this machine lets us mount one (root), else a 512
  // KiB file-size limit on the server: either way the entry's writes fail midway.
  const std::string mount = ::bridge::testing::FindOnPath("mount");
  const bool mounted =
      !mount.empty() && ::bridge::testing::RunCommand(
                            {mount, "-t", "tmpfs", "-o", "size=512k", "tmpfs", results.string()})
                                .exit_code == 0;
  struct Unmount {
    bool mounted;
    std::filesystem::path at;
    ~Unmount() {
      if (mounted) {
        ::bridge::testing::RunCommand({::bridge::testing::FindOnPath("umount"), at.string()});
      }
    }
  } unmount{mounted, results};
  std::vector<std::string> wrapper;
  if (!mounted) {
    const std::string prlimit = ::bridge::testing::FindOnPath("prlimit");
    ASSERT_FALSE(prlimit.empty()) << "neither mount nor prlimit is available";
    wrapper = {prlimit, "--fsize=524288", "--"};
  }
  int port = 0;
  auto server =
      Serve(dir.path() / "data", &port, {"--cache-dir", (dir.path() / "cache").string()}, wrapper);
  ASSERT_NE(server, nullptr);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const std::string big = "/query?format=arrow&sql=SELECT+*+FROM+numbers+ORDER+BY+id";
  std::string uncached;
  std::string answered;
  ASSERT_EQ(Get(base + big + "&cache=off", &uncached), 200);
  ASSERT_GT(uncached.size(), size_t{1} << 20);  // more than the disk holds
  ASSERT_EQ(Get(base + big, &answered), 200);
  EXPECT_TRUE(answered == uncached) << answered.size() << " vs " << uncached.size();
  EXPECT_TRUE(server->WaitForOutput("cache: abandoning entry", 10)) << server->output();
  EXPECT_THAT(server->output(), HasSubstr(mounted ? "No space left on device" : "File too large"));
  EXPECT_EQ(FilesIn(results), std::vector<std::string>{"LOCK"});  // nothing half-written
  // The cache goes on working for results that fit.
  const std::string small = "/query?format=arrow&sql=SELECT+count(*)+FROM+numbers";
  std::string first;
  std::string second;
  ASSERT_EQ(Get(base + small, &first), 200);
  ASSERT_TRUE(WaitForEntries(base, 1));
  ASSERT_EQ(Get(base + small, &second), 200);
  EXPECT_EQ(first, second);
  EXPECT_EQ(MetricOf(base, "bridge_http_cache_lookups_total{result=\"hit\"}"), 1);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->output();
}

TEST(HttpTest, KillDuringACacheWriteServesNothingCorruptAfterTheRestart) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  WriteNumbers(dir.path() / "data" / "numbers.csv", 1000000);
  const std::filesystem::path results = dir.path() / "cache" / "results";
  const std::vector<std::string> flags = {"--cache-dir", (dir.path() / "cache").string()};
  const std::string sql = "SELECT * FROM numbers ORDER BY id";
  {
    int port = 0;
    auto server = Serve(dir.path() / "data", &port, flags);
    ASSERT_NE(server, nullptr);
    // A client that reads the head and then nothing: the server blocks mid-result with the
    // entry's temporary file open.
    int fd = ConnectLoopback(port, 4096);
    Request(fd, sql, "arrow");
    EXPECT_THAT(ReadFrom(fd, std::chrono::seconds(20), "\r\n\r\n"), HasSubstr("miss"));
    bool writing = false;
    for (auto deadline = Clock::now() + std::chrono::seconds(20);
         !writing && Clock::now() < deadline;
         std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
      for (const std::string& name : FilesIn(results)) {
        writing = writing || name.ends_with(".arrow.tmp");
      }
    }
    ASSERT_TRUE(writing) << server->output();
    server->Signal(SIGKILL);
    EXPECT_EQ(server->Wait(), -1);
    ::close(fd);
  }
  int port = 0;
  auto server = Serve(dir.path() / "data", &port, flags);
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->output(), HasSubstr("removing unfinished"));
  EXPECT_THAT(server->output(), HasSubstr("(0 entries"));
  EXPECT_EQ(FilesIn(results), std::vector<std::string>{"LOCK"});
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  char* escaped = curl_easy_escape(nullptr, sql.c_str(), static_cast<int>(sql.size()));
  const std::string query = base + "/query?format=arrow&sql=" + escaped;
  curl_free(escaped);
  std::string uncached;
  std::string miss;
  std::string hit;
  ASSERT_EQ(Get(query + "&cache=off", &uncached), 200);
  ASSERT_EQ(Get(query, &miss), 200);
  ASSERT_TRUE(WaitForEntries(base, 1));
  ASSERT_EQ(Get(query, &hit), 200);
  EXPECT_TRUE(miss == uncached);
  EXPECT_TRUE(hit == uncached);
  EXPECT_EQ(MetricOf(base, "bridge_http_cache_lookups_total{result=\"miss\"}"), 1);
  EXPECT_EQ(MetricOf(base, "bridge_http_cache_lookups_total{result=\"hit\"}"), 1);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->output();
}

}  // namespace
}  // namespace bridge
