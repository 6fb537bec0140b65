// End-to-end tests of the `bridge` command line: exit codes, output, the demo data.
#include <signal.h>

#include "bridge/common/testing.h"

namespace bridge {
namespace {

using ::bridge::testing::BridgeBinary;
using ::bridge::testing::ChildProcess;
using ::bridge::testing::CommandResult;
using ::bridge::testing::RunCommand;
using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;

CommandResult Bridge(std::vector<std::string> args) {
  args.insert(args.begin(), BridgeBinary());
  return RunCommand(args);
}

// Returns the number of lines of `text`.
int Lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(CliTest, VersionPrintsBridgeAndDuckDB) {
  CommandResult r = Bridge({"version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("bridge 0.1.0"));
  EXPECT_THAT(r.out, HasSubstr("duckdb v1.4.4"));
}

TEST(CliTest, BadUsageExitsTwoWithOneLine) {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  WriteFile(dir.path() / "bad.toml", "[server]\nhttp_port = 'eighty'\n");
  std::vector<Case> cases = {
      {{"query", "--data", (dir.path() / "missing").string(), "SELECT 1"}, "does not exist"},
      {{"serve", "--data", dir.path().string(), "--http-port", "99999"},
       "server.http_port = 99999"},
      {{"serve", "--data", dir.path().string(), "--flight-port", "-1"}, "server.flight_port = -1"},
      {{"serve", "--config", (dir.path() / "nope.toml").string()}, "cannot read"},
      {{"serve", "--config", (dir.path() / "bad.toml").string()}, "'server.http_port' must be"},
      {{"serve"}, "no data folder"},
      {{"query", "--data", dir.path().string(), "--format", "xml", "SELECT 1"}, "xml"},
      {{"frobnicate"}, "bridge:"},
      {{"gen-demo", "--out", dir.path().string(), "--rows", "0"}, "--rows must be >= 1"},
  };
  for (const auto& c : cases) {
    CommandResult r = Bridge(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << " " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args[0];
    EXPECT_EQ(Lines(r.err), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("bridge:"));
  }
}

TEST(CliTest, QueryPrintsCsvJsonAndTable) {
  TempDir dir;
  WriteFile(dir.path() / "people.csv", "id,name,score\n1,Ann,9.5\n2,\"Bo, Jr.\",\n3,Cy,7\n");
  std::string data = dir.path().string();
  CommandResult csv = Bridge({"query", "--data", data, "--format", "csv",
                              "SELECT id, name, score FROM people ORDER BY id"});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "id,name,score\n1,Ann,9.5\n2,\"Bo, Jr.\",\n3,Cy,7\n");

  CommandResult json = Bridge({"query", "--data", data, "--format", "json",
                               "SELECT id, name FROM people WHERE id < 3 ORDER BY id"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr(R"({"id":1,"name":"Ann"})"));
  EXPECT_THAT(json.out, HasSubstr(R"({"id":2,"name":"Bo, Jr."})"));

  CommandResult table = Bridge({"query", "--data", data, "SELECT count(*) AS n FROM people"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("n"));
  EXPECT_THAT(table.out, HasSubstr("3"));
}

TEST(CliTest, QueryErrorsExitOneWithDuckDBsMessage) {
  TempDir dir;
  std::string data = dir.path().string();
  CommandResult parse = Bridge({"query", "--data", data, "SELEC 1"});
  EXPECT_EQ(parse.exit_code, 1);
  EXPECT_THAT(parse.err, HasSubstr("Parser Error"));
  CommandResult locked = Bridge({"query", "--data", data, "SELECT * FROM read_csv('/etc/passwd')"});
  EXPECT_EQ(locked.exit_code, 1);
  EXPECT_THAT(locked.err, HasSubstr("Permission Error"));
  EXPECT_EQ(locked.out, "");
  CommandResult copy = Bridge({"query", "--data", data, "COPY (SELECT 1) TO 'x.csv'"});
  EXPECT_EQ(copy.exit_code, 1);
  EXPECT_THAT(copy.err, HasSubstr("COPY statements are not allowed"));
  CommandResult timeout = Bridge({"query", "--data", data, "--query-timeout-ms", "100",
                                  "SELECT count(*) FROM range(2000000000) a, range(1000) b "
                                  "WHERE a.range + b.range = -1"});
  EXPECT_EQ(timeout.exit_code, 1);
  EXPECT_THAT(timeout.err, HasSubstr("timed out"));
}

TEST(CliTest, GenDemoIsDeterministicAndQueryable) {
  TempDir a;
  TempDir b;
  for (const TempDir* dir : {&a, &b}) {
    CommandResult r = Bridge({"gen-demo", "--out", dir->path().string(), "--rows", "20000"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_TRUE(std::filesystem::is_directory(a.path() / "trips" / "year=2024"));
  // The same seed gives the same values.
  std::string digest_sql =
      "SELECT count(*) AS n, count(DISTINCT payment) AS payments, sum(fare) AS fares, "
      "bit_xor(hash(id, pickup_at, dropoff_at, passengers, distance, tip, payment, city_id, "
      "notes)) "
      "AS digest, count(notes) AS notes, min(year) AS y FROM trips";
  CommandResult da = Bridge({"query", "--data", a.path().string(), "--format", "csv", digest_sql});
  CommandResult db = Bridge({"query", "--data", b.path().string(), "--format", "csv", digest_sql});
  ASSERT_EQ(da.exit_code, 0) << da.err;
  EXPECT_EQ(da.out, db.out);
  EXPECT_THAT(da.out, HasSubstr("\n20000,5,"));
  // Every table is there with the types the issue names.
  CommandResult types = Bridge({"query", "--data", a.path().string(), "--format", "csv",
                                "SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name IN ('trips', 'events') ORDER BY table_name, "
                                "column_name"});
  ASSERT_EQ(types.exit_code, 0) << types.err;
  for (const char* line :
       {"fare,\"DECIMAL(10,2)\"", "pickup_at,TIMESTAMP", "id,BIGINT", "passengers,INTEGER",
        "payment,VARCHAR", "tags,VARCHAR[]", "user,\"STRUCT("}) {
    EXPECT_THAT(types.out, HasSubstr(line));
  }
  CommandResult cities = Bridge({"query", "--data", a.path().string(), "--format", "csv",
                                 "SELECT count(*), count(DISTINCT t.city_id) <= 50 FROM trips t "
                                 "JOIN cities c USING (city_id)"});
  EXPECT_EQ(cities.out, "count_star(),(count(DISTINCT t.city_id) <= 50)\n20000,true\n");
  // Refuses to overwrite.
  CommandResult again = Bridge({"gen-demo", "--out", a.path().string(), "--rows", "10"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
}

TEST(CliTest, ServeWatchesTheFolderAndStopsOnSigterm) {
  TempDir dir;
  WriteFile(dir.path() / "first.csv", "x\n1\n");
  ASSERT_OK_AND_ASSIGN(
      auto server,
      ChildProcess::Start({BridgeBinary(), "serve", "--data", dir.path().string(), "--http-port",
                           "0", "--flight-port", "0", "--debounce-ms", "50"}));
  ASSERT_TRUE(server->WaitForOutput("serving 1 tables")) << server->output();
  WriteFile(dir.path() / "second.csv", "y\n2\n");
  EXPECT_TRUE(server->WaitForOutput("table 'second' added")) << server->output();
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(), 0) << server->output();
}

}  // namespace
}  // namespace bridge
