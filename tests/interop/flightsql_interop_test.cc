// Flight SQL interop: a real `bridge serve` on 127.0.0.1 (port 0) driven by
// flightsql_interop.mjs, which connects like a Flight SQL driver with @grpc/grpc-js,
// protobufjs (our FlightSql.proto) and apache-arrow: GetSqlInfo, GetCatalogs, GetDbSchemas,
// GetTables with schemas, a query, a prepared statement with a parameter, close, an update.
//
// node and tests/interop/node_modules are required: the test fails (never skips) when they are
// missing, telling to run scripts/bootstrap.
#include <csignal>
#include <filesystem>
#include <string>

#include "bridge/common/testing.h"
#include "nlohmann/json.hpp"

namespace bridge {
namespace {

namespace fs = std::filesystem;
using ::bridge::testing::BridgeBinary;
using ::bridge::testing::ChildProcess;
using ::bridge::testing::CommandResult;
using ::bridge::testing::RunCommand;
using ::bridge::testing::TempDir;
using Json = nlohmann::json;

// "127.0.0.1:PORT" from the server's "Flight listening on grpc://..." line, or "".
std::string FlightAddress(const std::string& log) {
  constexpr std::string_view kLine = "Flight listening on grpc://";
  size_t at = log.find(kLine);
  if (at == std::string::npos) return "";
  std::string rest = log.substr(at + kLine.size());
  return rest.substr(0, rest.find_first_of(" \r\n"));
}

TEST(FlightSqlInteropTest, DriverConnectSequenceAndBridgeSqlAgainstBridgeServe) {
  const std::string node = ::bridge::testing::FindOnPath("node");
  ASSERT_FALSE(node.empty()) << "node is not on PATH; run scripts/bootstrap";
  ASSERT_TRUE(fs::exists(fs::path(BRIDGE_INTEROP_DIR) / "node_modules/protobufjs/package.json"))
      << "protobufjs is not installed in tests/interop: run scripts/bootstrap";

  TempDir data;
  ::bridge::testing::WriteFile(data.path() / "people.csv",
                               "id,name,score\n1,Ann,9.5\n2,Bo,7.25\n3,Cy,8\n");
  ASSERT_OK_AND_ASSIGN(
      auto server,
      ChildProcess::Start({BridgeBinary(), "serve", "--data", data.path().string(), "--http-port",
                           "0", "--flight-port", "0", "--watch", "false"}));
  ASSERT_TRUE(server->WaitForOutput("Ctrl-C stops", 60)) << server->output();
  const std::string address = FlightAddress(server->output());
  ASSERT_TRUE(address.rfind("127.0.0.1:", 0) == 0) << server->output();

  CommandResult r =
      RunCommand({node, (fs::path(BRIDGE_INTEROP_DIR) / "flightsql_interop.mjs").string(), address,
                  BRIDGE_PROTO_DIR},
                 120);
  ASSERT_EQ(r.exit_code, 0) << "flightsql_interop.mjs against " << address << ":\n"
                            << r.err << r.out << "\nserver log:\n"
                            << server->output();
  Json s = Json::parse(r.out, nullptr, false);
  ASSERT_FALSE(s.is_discarded()) << r.out;
  EXPECT_EQ(s["sql_info_schema"],
            Json::parse(R"(["info_name:Uint32!", "value:DenseUnion<Utf8 | Bool | Int64 | Int32 | )"
                        R"(List<Utf8> | Map<{key:Int32, value:List<Int32>}>>!"])"))
      << r.out;
  EXPECT_EQ(s["sql_info"], Json::parse(R"([[0, "Bridge"], [3, true], [8, 0]])"));
  EXPECT_EQ(s["catalogs"], Json::parse(R"(["memory"])"));
  EXPECT_EQ(s["db_schemas"], Json::parse(R"([["memory", "main"]])"));
  EXPECT_EQ(s["tables_schema"],
            Json::parse(R"(["catalog_name:Utf8", "db_schema_name:Utf8", "table_name:Utf8!",
                            "table_type:Utf8!", "table_schema:Binary!"])"));
  EXPECT_EQ(s["tables"], Json::parse(R"([["people", "TABLE",
                                          ["id:Int64", "name:Utf8", "score:Float64"]]])"));
  EXPECT_EQ(s["table_types"], Json::parse(R"(["TABLE"])"));
  EXPECT_EQ(s["primary_keys"],
            Json::parse(R"([["catalog_name:Utf8", "db_schema_name:Utf8", "table_name:Utf8!",
                             "column_name:Utf8!", "key_name:Utf8", "key_sequence:Int32!"], 0])"));
  EXPECT_EQ(s["xdbc_schema_width"], 19);
  EXPECT_EQ(s["xdbc_decimal"], Json::parse(R"([["DECIMAL", 38, ["precision", "scale"]]])"));
  EXPECT_EQ(s["query"], Json::parse(R"([[1, "Ann"], [2, "Bo"], [3, "Cy"]])"));
  EXPECT_EQ(s["prepared_dataset_schema"], Json::parse(R"(["name:Utf8", "score:Float64"])"));
  EXPECT_EQ(s["prepared_parameter_schema"], Json::parse(R"(["parameter_1:Int64"])"));
  EXPECT_EQ(s["bind_handle_same"], true);
  EXPECT_EQ(s["prepared"], Json::parse(R"([["Bo", 7.25]])"));
  EXPECT_EQ(s["close_results"], 0);
  EXPECT_EQ(s["after_close"].get<std::string>().rfind("NOT_FOUND: ", 0), 0u) << s["after_close"];
  EXPECT_EQ(s["update"].get<std::string>().rfind("PERMISSION_DENIED: ", 0), 0u) << s["update"];

  // `bridge sql`, the command-line client, against the same server.
  const std::string uri = "grpc://" + address;
  CommandResult query = RunCommand({BridgeBinary(), "sql", "--uri", uri, "--format", "csv",
                                    "SELECT id, name FROM people WHERE score > 7.5 ORDER BY id"},
                                   60);
  EXPECT_EQ(query.exit_code, 0) << query.err;
  EXPECT_EQ(query.out, "id,name\n1,Ann\n3,Cy\n");
  CommandResult prepared =
      RunCommand({BridgeBinary(), "sql", "--uri", uri, "--format", "csv", "--param", "2",
                  "SELECT name, score FROM people WHERE id = ?"},
                 60);
  EXPECT_EQ(prepared.exit_code, 0) << prepared.err;
  EXPECT_EQ(prepared.out, "name,score\nBo,7.25\n");
  CommandResult tables =
      RunCommand({BridgeBinary(), "sql", "--uri", uri, "--format", "csv", "--tables", "peo%"}, 60);
  EXPECT_EQ(tables.exit_code, 0) << tables.err;
  EXPECT_EQ(tables.out,
            "catalog_name,db_schema_name,table_name,table_type\nmemory,main,people,TABLE\n");
  CommandResult bad = RunCommand({BridgeBinary(), "sql", "--uri", uri, "SELEC 1"}, 60);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("syntax error"), std::string::npos) << bad.err;

  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(30), 0) << server->output();
}

}  // namespace
}  // namespace bridge
