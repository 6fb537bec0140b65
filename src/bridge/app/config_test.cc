#include "bridge/app/config.h"

#include "bridge/common/testing.h"

namespace bridge::app {
namespace {

using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;

TEST(ConfigTest, FileValuesOverrideDefaults) {
  TempDir dir;
  WriteFile(dir.path() / "bridge.toml", R"(
data_dir = "data"
[server]
http_port = 0
flight_port = 9000
[engine]
threads = 3
memory_limit = "2GB"
query_timeout_ms = 1500
[catalog]
watch = false
[flight]
endpoints = 3
max_message_bytes = 1048576
keepalive_ms = 0
ticket_ttl_s = 60
query_threads = 2
[log]
format = "json"
)");
  Config c;
  ASSERT_OK(LoadConfigFile(dir.path() / "bridge.toml", c));
  EXPECT_EQ(c.data_dir, dir.path() / "data");  // relative to the file
  EXPECT_EQ(c.http_port, 0);
  EXPECT_EQ(c.flight_port, 9000);
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.memory_limit, "2GB");
  EXPECT_EQ(c.query_timeout_ms, 1500);
  EXPECT_FALSE(c.watch);
  EXPECT_EQ(c.flight_endpoints, 3);
  EXPECT_EQ(c.flight_max_message_bytes, 1048576);
  EXPECT_EQ(c.flight_keepalive_ms, 0);
  EXPECT_EQ(c.flight_ticket_ttl_s, 60);
  EXPECT_EQ(c.flight_query_threads, 2);
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.http_host, "127.0.0.1");  // untouched default
  EXPECT_OK(ValidateConfig(c));
}

TEST(ConfigTest, ErrorsNameTheKey) {
  TempDir dir;
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"[server]\nhttp_prot = 1\n", "unknown key 'server.http_prot'"},
           Case{"colour = 'red'\n", "unknown key 'colour'"},
           Case{"[server]\nhttp_port = 70000\n", "'server.http_port' = 70000 is out of range"},
           Case{"[server]\nhttp_port = \"80\"\n", "'server.http_port' must be an integer"},
           Case{"[catalog]\nwatch = 1\n", "'catalog.watch' must be true or false"},
           Case{"[engine]\nthreads = -1\n", "'engine.threads' = -1 is out of range"},
           Case{"[flight]\nmax_message_bytes = 100\n",
                "'flight.max_message_bytes' = 100 is out of range"},
           Case{"[server\n", "bridge.toml:1"},
       }) {
    WriteFile(dir.path() / "bridge.toml", c.text);
    Config config;
    Status st = LoadConfigFile(dir.path() / "bridge.toml", config);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.text << st;
    EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(c.message)) << c.text;
  }
  Config config;
  EXPECT_STATUS(LoadConfigFile(dir.path() / "missing.toml", config), StatusCode::kNotFound,
                "cannot read");
}

TEST(ConfigTest, ValidateChecksFlagValues) {
  Config c;
  c.http_port = -5;
  EXPECT_STATUS(ValidateConfig(c), StatusCode::kInvalidArgument, "server.http_port = -5");
  c = Config();
  c.log_format = "xml";
  EXPECT_STATUS(ValidateConfig(c), StatusCode::kInvalidArgument, "log.format");
}

TEST(ConfigTest, HttpTlsCorsAndAuthKeys) {
  TempDir dir;
  WriteFile(dir.path() / "bridge.toml", R"(
[http]
max_request_bytes = 2048
max_header_bytes = 4096
max_sql_length = 1000
max_concurrent_queries = 4
max_queued_queries = 10
max_result_bytes = 1000000
idle_timeout_ms = 5000
shutdown_grace_ms = 700
io_threads = 3
[tls]
cert = "cert.pem"
key = "/abs/key.pem"
[cors]
origins = ["http://a.example", "https://b.example"]
[auth]
users_file = "users.toml"
token_secret = "0123456789abcdef0123456789abcdef"
token_ttl_s = 60
)");
  Config c;
  ASSERT_OK(LoadConfigFile(dir.path() / "bridge.toml", c));
  EXPECT_EQ(c.max_request_bytes, 2048);
  EXPECT_EQ(c.max_header_bytes, 4096);
  EXPECT_EQ(c.max_sql_length, 1000);
  EXPECT_EQ(c.max_concurrent_queries, 4);
  EXPECT_EQ(c.max_queued_queries, 10);
  EXPECT_EQ(c.max_result_bytes, 1000000);
  EXPECT_EQ(c.idle_timeout_ms, 5000);
  EXPECT_EQ(c.shutdown_grace_ms, 700);
  EXPECT_EQ(c.io_threads, 3);
  EXPECT_EQ(c.tls_cert, dir.path() / "cert.pem");  // relative to the file
  EXPECT_EQ(c.tls_key, "/abs/key.pem");
  EXPECT_EQ(c.cors_origins, (std::vector<std::string>{"http://a.example", "https://b.example"}));
  EXPECT_EQ(c.users_file, dir.path() / "users.toml");
  EXPECT_EQ(c.token_secret, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c.token_ttl_s, 60);
  EXPECT_OK(ValidateConfig(c));

  for (const char* bad : {"[cors]\norigins = \"x\"\n", "[cors]\norigins = [1]\n"}) {
    WriteFile(dir.path() / "bad.toml", bad);
    Config b;
    EXPECT_STATUS(LoadConfigFile(dir.path() / "bad.toml", b), StatusCode::kInvalidArgument,
                  "'cors.origins' must be an array of strings");
  }
  WriteFile(dir.path() / "bad.toml", "[http]\nio_threads = 0\n");
  Config b;
  EXPECT_STATUS(LoadConfigFile(dir.path() / "bad.toml", b), StatusCode::kInvalidArgument,
                "'http.io_threads' = 0 is out of range");
}

TEST(ConfigTest, ValidateChecksHttpLimits) {
  Config c;
  c.max_concurrent_queries = 100;
  c.max_sessions = 10;
  EXPECT_STATUS(ValidateConfig(c), StatusCode::kInvalidArgument,
                "http.max_concurrent_queries = 100 must be <= engine.max_sessions = 10");
  c = Config();
  c.tls_cert = "cert.pem";
  EXPECT_STATUS(ValidateConfig(c), StatusCode::kInvalidArgument, "tls.cert and tls.key");
  c = Config();
  c.idle_timeout_ms = 0;
  EXPECT_STATUS(ValidateConfig(c), StatusCode::kInvalidArgument, "http.idle_timeout_ms");
}

TEST(ConfigTest, CacheDirFollowsXdg) {
  Config c;
  c.cache_dir = "/somewhere";
  EXPECT_EQ(ResolveCacheDir(c), "/somewhere");
  c.cache_dir.clear();
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(ResolveCacheDir(c), "/xdg/bridge");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(ResolveCacheDir(c), "/home/u/.cache/bridge");
}

}  // namespace
}  // namespace bridge::app
