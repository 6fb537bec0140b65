// End-to-end tests of the `bridge` command line: exit codes, output, the demo data.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "bridge/common/testing.h"

namespace bridge {
namespace {

using ::bridge::testing::BridgeBinary;
using ::bridge::testing::ChildProcess;
using ::bridge::testing::CommandResult;
using ::bridge::testing::ReadFile;
using ::bridge::testing::RunCommand;
using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;

CommandResult Bridge(std::vector<std::string> args) {
  args.insert(args.begin(), BridgeBinary());
  return RunCommand(args);
}

// Returns the first `n` bytes of the file at `path`.
std::string arrow_prefix(const std::filesystem::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
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

TEST(CliTest, QueryWritesArrowThatIpcCommandsRead) {
  TempDir dir;
  WriteFile(dir.path() / "t.csv", "id,name\n1,a\n2,\n3,c\n");
  std::string data = dir.path().string();
  for (const char* codec : {"none", "zstd", "lz4"}) {
    CommandResult arrow =
        Bridge({"query", "--data", data, "--format", "arrow", "--compression", codec,
                "SELECT id, name, range AS r FROM t, range(3000) ORDER BY r, id"});
    ASSERT_EQ(arrow.exit_code, 0) << arrow.err;
    EXPECT_EQ(arrow.out.substr(0, 4), "\xff\xff\xff\xff");  // continuation marker
    EXPECT_EQ(arrow.out.substr(arrow.out.size() - 8), std::string("\xff\xff\xff\xff\0\0\0\0", 8));
    std::filesystem::path file = dir.path() / (std::string("out-") + codec + ".arrows");
    WriteFile(file, arrow.out);
    CommandResult valid = Bridge({"ipc", "validate", file.string()});
    EXPECT_EQ(valid.exit_code, 0) << valid.err;
    EXPECT_EQ(valid.out, "valid: IPC stream, 3 columns, 5 batches, 9000 rows\n") << codec;
  }
  CommandResult cat = Bridge({"ipc", "cat", (dir.path() / "out-none.arrows").string()});
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_THAT(cat.out, HasSubstr("schema:\n  id: int64\n  name: utf8\n  r: int64\n"));
  EXPECT_THAT(cat.out, HasSubstr("(9000 rows)"));
  CommandResult json = Bridge({"ipc", "to-json", (dir.path() / "out-zstd.arrows").string()});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(
      json.out,
      HasSubstr(
          R"("name":"id","nullable":true,"type":{"name":"int","isSigned":true,"bitWidth":64})"));

  // A truncated stream is invalid, with the reason; a missing file cannot be read.
  std::string cut = arrow_prefix(dir.path() / "out-none.arrows", 700);
  WriteFile(dir.path() / "cut.arrows", cut);
  CommandResult invalid = Bridge({"ipc", "validate", (dir.path() / "cut.arrows").string()});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_THAT(invalid.err, HasSubstr("invalid: ipc: message 1"));
  CommandResult missing = Bridge({"ipc", "validate", (dir.path() / "nope").string()});
  EXPECT_EQ(missing.exit_code, 2);
  CommandResult bad_codec =
      Bridge({"query", "--data", data, "--format", "arrow", "--compression", "gzip", "SELECT 1"});
  EXPECT_EQ(bad_codec.exit_code, 2);
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

TEST(CliTest, BridgeRunsLocalCommandsItselfAndHandsTheRestToBridgeServer) {
  std::filesystem::path bridge = BridgeBinary();
  std::filesystem::path server = bridge.parent_path() / "bridge-server";
  // `bridge` loads neither OpenSSL nor gRPC (its start-up is measured against DuckDB alone);
  // bridge-server does (TLS, Flight).
  std::string lite = ReadFile(bridge);
  std::string full = ReadFile(server);
  ASSERT_FALSE(lite.empty());
  EXPECT_EQ(lite.find("libssl.so"), std::string::npos);
  EXPECT_EQ(lite.find("grpc_init"), std::string::npos);
  EXPECT_NE(full.find("libssl.so"), std::string::npos);
  EXPECT_NE(full.find("grpc_init"), std::string::npos);

  // The full help comes from bridge-server.
  CommandResult help = Bridge({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  for (const char* command :
       {"serve", "query", "gen-demo", "ipc", "version", "hash-password", "flight", "sql"}) {
    EXPECT_THAT(help.out, HasSubstr(std::string("\n  ") + command + " ")) << help.out;
  }

  // Alone in a folder, `bridge` still runs its own commands and says what is missing for
  // the others.
  TempDir dir;
  WriteFile(dir.path() / "data" / "t.csv", "x\n7\n");
  std::filesystem::path alone = dir.path() / "bridge";
  std::filesystem::copy_file(bridge, alone);
  CommandResult query =
      RunCommand({alone.string(), "query", "--data", (dir.path() / "data").string(), "--format",
                  "csv", "SELECT x * 6 AS y FROM t"});
  EXPECT_EQ(query.exit_code, 0) << query.err;
  EXPECT_EQ(query.out, "y\n42\n");
  CommandResult serve =
      RunCommand({alone.string(), "serve", "--data", (dir.path() / "data").string()});
  EXPECT_EQ(serve.exit_code, 1);
  EXPECT_THAT(serve.err, HasSubstr("cannot run " + (dir.path() / "bridge-server").string() +
                                   ": No such file or directory"));
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
