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
