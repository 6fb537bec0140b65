// End-to-end tests of `bridge flight` against a real `bridge serve` on 127.0.0.1 (ports 0):
// list, info, get (printed, and --out checked with `bridge ipc`), put + get round trips,
// exchange, actions, bad URIs, bad credentials.
#include <signal.h>

#include <string>
#include <vector>

#include "bridge/auth/password.h"
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
using ::testing::Not;

constexpr std::string_view kFlightListening = "Flight listening on ";

// A `bridge serve` over `data`; `uri` is its Flight address.
struct Server {
  std::unique_ptr<ChildProcess> process;
  std::string uri;
};

Server Serve(const std::filesystem::path& data, std::vector<std::string> extra = {}) {
  Server server;
  std::vector<std::string> argv = {BridgeBinary(), "serve", "--data",        data.string(),
                                   "--http-port",  "0",     "--flight-port", "0",
                                   "--watch",      "false"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = ChildProcess::Start(argv);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return server;
  server.process = std::move(child).value();
  EXPECT_TRUE(server.process->WaitForOutput("Ctrl-C")) << server.process->output();
  // "Flight listening on grpc://127.0.0.1:PORT ..."
  const std::string& out = server.process->output();
  size_t at = out.find(kFlightListening);
  EXPECT_NE(at, std::string::npos) << out;
  if (at == std::string::npos) return server;
  size_t scheme = out.find("://", at);
  size_t colon = out.find(':', scheme + 3);
  int port = std::atoi(out.c_str() + colon + 1);
  EXPECT_GT(port, 0) << out;
  server.uri = StrCat("grpc://127.0.0.1:", port);
  return server;
}

CommandResult Flight(const Server& server, std::vector<std::string> args) {
  std::vector<std::string> argv = {BridgeBinary(), "flight", "--uri", server.uri};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

CommandResult Bridge(std::vector<std::string> args) {
  args.insert(args.begin(), BridgeBinary());
  return RunCommand(args);
}

int Lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(FlightCliTest, ListInfoGet) {
  TempDir dir;
  WriteFile(dir.path() / "people.csv", "id,name\n1,Ann\n2,Bo\n3,Cy\n");
  WriteFile(dir.path() / "pets.csv", "pet\ncat\n");
  Server server = Serve(dir.path());
  ASSERT_FALSE(server.uri.empty());

  CommandResult list = Flight(server, {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("name\trecords\tbytes\tendpoints\n"));
  EXPECT_THAT(list.out, HasSubstr("people\t"));
  EXPECT_THAT(list.out, HasSubstr("pets\t"));
  CommandResult some = Flight(server, {"list", "peo"});
  EXPECT_EQ(some.exit_code, 0) << some.err;
  EXPECT_EQ(Lines(some.out), 2) << some.out;

  CommandResult info = Flight(server, {"info", "--path", "people"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("  id: int64"));
  EXPECT_THAT(info.out, HasSubstr("  name: utf8"));
  EXPECT_THAT(info.out, HasSubstr("endpoints: "));
  EXPECT_THAT(info.out, HasSubstr("0: ticket "));

  CommandResult csv =
      Flight(server, {"get", "--sql", "select * from people order by id", "--format", "csv"});
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "id,name\n1,Ann\n2,Bo\n3,Cy\n");
  EXPECT_THAT(csv.err, HasSubstr("get: 3 rows, "));
  EXPECT_THAT(csv.err, HasSubstr("MB/s"));

  // Parallel endpoints; flags may also come after the subcommand.
  CommandResult parallel = RunCommand({BridgeBinary(), "flight", "get", "--path", "people",
                                       "--parallel", "--format", "csv", "--uri", server.uri});
  EXPECT_EQ(parallel.exit_code, 0) << parallel.err;
  EXPECT_EQ(Lines(parallel.out), 4);
  EXPECT_THAT(parallel.err, HasSubstr("in parallel"));

  // --out writes an Arrow IPC file that Bridge's own reader validates.
  std::string file = (dir.path() / "people.arrow").string();
  CommandResult out =
      Flight(server, {"get", "--sql", "select * from people order by id", "--out", file});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "");
  CommandResult validate = Bridge({"ipc", "validate", file});
  EXPECT_EQ(validate.exit_code, 0) << validate.err << validate.out;
  CommandResult json = Bridge({"ipc", "to-json", file});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"Ann\""));
  EXPECT_THAT(json.out, HasSubstr("\"Cy\""));

  // A runtime error: the server's message as is (DuckDB's points at the error), exit 1.
  CommandResult bad_sql = Flight(server, {"get", "--sql", "selec 1"});
  EXPECT_EQ(bad_sql.exit_code, 1);
  EXPECT_THAT(bad_sql.err, HasSubstr("bridge: Parser Error: syntax error"));
  EXPECT_THAT(bad_sql.err, HasSubstr("LINE 1: selec 1"));
  CommandResult missing = Flight(server, {"info", "--path", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no table 'nope'"));

  server.process->Signal(SIGTERM);
  EXPECT_EQ(server.process->Wait(), 0) << server.process->output();
}

TEST(FlightCliTest, BadUsageExitsTwo) {
  TempDir dir;
  WriteFile(dir.path() / "t.csv", "a\n1\n");
  Server server = Serve(dir.path());
  ASSERT_FALSE(server.uri.empty());
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::string bridge = BridgeBinary();
  std::vector<Case> cases = {
      {{"flight", "--uri", "http://127.0.0.1:1", "list"}, "bad URI"},
      {{"flight", "--uri", "grpc://127.0.0.1", "list"}, "no port"},
      {{"flight", "list"}, "--uri"},
      {{"flight", "--uri", server.uri}, "subcommand"},
      {{"flight", "--uri", server.uri, "get"}, "--sql SQL or --path TABLE"},
      {{"flight", "--uri", server.uri, "get", "--sql", "select 1", "--path", "t"},
       "--sql SQL or --path TABLE"},
      {{"flight", "--uri", server.uri, "--user", "alice", "list"}, "--password"},
      {{"flight", "--uri", server.uri, "put", "--path", "x", (dir.path() / "none.arrow").string()},
       "cannot read"},
      {{"flight", "--uri", server.uri, "put", "--path", "x", (dir.path() / "t.csv").string()},
       "t.csv"},
      {{"flight", "--uri", server.uri, "put", "--path", "x", "--mode", "merge",
        (dir.path() / "t.csv").string()},
       "--mode"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {bridge};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << c.message << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_EQ(Lines(r.err), 1) << r.err;
  }
  // Nobody listening: a runtime error.
  CommandResult down = RunCommand({bridge, "flight", "--uri", "grpc://127.0.0.1:1", "list"});
  EXPECT_EQ(down.exit_code, 1) << down.err;
  EXPECT_THAT(down.err, HasSubstr("unavailable"));
}

TEST(FlightCliTest, BadCredentialsExitOne) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  WriteFile(dir.path() / "data" / "t.csv", "a\n1\n");
  auto hash = auth::HashPassword("secret");
  ASSERT_TRUE(hash.ok()) << hash.status();
  WriteFile(dir.path() / "users.toml",
            StrCat("[users.alice]\npassword = \"", *hash, "\"\npermissions = [\"read\"]\n"));
  Server server =
      Serve(dir.path() / "data", {"--users-file", (dir.path() / "users.toml").string()});
  ASSERT_FALSE(server.uri.empty());
  CommandResult none = Flight(server, {"list"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_EQ(Lines(none.err), 1) << none.err;
  CommandResult wrong = Flight(server, {"--user", "alice", "--password", "nope", "list"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("bridge: "));
  CommandResult forged = Flight(server, {"--token", "abc", "list"});
  EXPECT_EQ(forged.exit_code, 1);
  CommandResult ok = Flight(
      server, {"--user", "alice", "--password", "secret", "get", "--path", "t", "--format", "csv"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "a\n1\n");
  // alice may not ingest.
  std::string file = (dir.path() / "t.arrow").string();
  ASSERT_EQ(Flight(server,
                   {"--user", "alice", "--password", "secret", "get", "--path", "t", "--out", file})
                .exit_code,
            0);
  CommandResult put =
      Flight(server, {"--user", "alice", "--password", "secret", "put", "--path", "u", file});
  EXPECT_EQ(put.exit_code, 1);
  EXPECT_THAT(put.err, Not(HasSubstr("put: ")));
}

// ---- DoPut / DoExchange / actions: served once the other helpers' work lands ----

TEST(FlightCliTest, PutGetRoundTrip) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  WriteFile(dir.path() / "data" / "people.csv", "id,name\n1,Ann\n2,Bo\n3,Cy\n");
  Server server = Serve(dir.path() / "data");
  ASSERT_FALSE(server.uri.empty());
  std::string file = (dir.path() / "people.arrow").string();
  ASSERT_EQ(
      Flight(server, {"get", "--sql", "select * from people order by id", "--out", file}).exit_code,
      0);
  CommandResult put = Flight(server, {"put", "--path", "copy", file});
  EXPECT_EQ(put.exit_code, 0) << put.err;
  EXPECT_THAT(put.err, HasSubstr("put: 3 rows"));
  auto count = [&] {
    CommandResult r =
        Flight(server,
               {"get", "--sql", "select count(*) as n, sum(id) as s from copy", "--format", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(count(), "n,s\n3,6\n");
  CommandResult again = Flight(server, {"put", "--path", "copy", file});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("copy"));
  EXPECT_EQ(count(), "n,s\n3,6\n");
  ASSERT_EQ(Flight(server, {"put", "--path", "copy", "--mode", "append", file}).exit_code, 0);
  EXPECT_EQ(count(), "n,s\n6,12\n");
  ASSERT_EQ(Flight(server, {"put", "--path", "copy", "--mode", "replace", file}).exit_code, 0);
  EXPECT_EQ(count(), "n,s\n3,6\n");
  // An Arrow *stream* file is accepted too.
  CommandResult stream = Bridge({"query", "--data", (dir.path() / "data").string(), "--format",
                                 "arrow", "select 7::BIGINT as id, 'Di' as name"});
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  WriteFile(dir.path() / "one.arrows", stream.out);
  ASSERT_EQ(Flight(server, {"put", "--path", "copy", "--mode", "append",
                            (dir.path() / "one.arrows").string()})
                .exit_code,
            0);
  EXPECT_EQ(count(), "n,s\n4,13\n");
}

TEST(FlightCliTest, Exchange) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  WriteFile(dir.path() / "data" / "cities.csv", "city_id,city\n1,Oslo\n2,Lima\n");
  WriteFile(dir.path() / "data" / "people.csv", "id,city_id\n10,1\n11,2\n12,2\n");
  Server server = Serve(dir.path() / "data");
  ASSERT_FALSE(server.uri.empty());
  std::string file = (dir.path() / "people.arrow").string();
  ASSERT_EQ(Flight(server, {"get", "--path", "people", "--out", file}).exit_code, 0);
  CommandResult r =
      Flight(server, {"exchange", "--sql",
                      "select c.city, count(*) as n from input i join cities c using (city_id) "
                      "group by c.city order by c.city",
                      file, "--format", "csv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "city,n\nLima,2\nOslo,1\n");
}

TEST(FlightCliTest, Actions) {
  TempDir dir;
  WriteFile(dir.path() / "t.csv", "a\n1\n");
  Server server = Serve(dir.path());
  ASSERT_FALSE(server.uri.empty());
  CommandResult actions = Flight(server, {"actions"});
  EXPECT_EQ(actions.exit_code, 0) << actions.err;
  EXPECT_THAT(actions.out, HasSubstr("health\t"));
  EXPECT_THAT(actions.out, HasSubstr("refresh\t"));
  CommandResult health = Flight(server, {"action", "health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_FALSE(health.out.empty());
  CommandResult unknown = Flight(server, {"action", "no-such-action"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no-such-action"));
}

}  // namespace
}  // namespace bridge
