// Interop of the front doors with independent implementations, against a real `bridge serve`
// on 127.0.0.1 (port 0):
// - HTTP: one query covering every DuckDB type as format=arrow, which apache-arrow (npm, run
//   in node) decodes, and as format=json; http_arrow.mjs compares the two value by value (the
//   expected JSON form of each Arrow type is documented at its top).
// - Flight: @grpc/grpc-js + @grpc/proto-loader (loading proto/Flight.proto) and apache-arrow
//   call ListFlights, GetFlightInfo (a split plan), DoGet, GetSchema, DoPut and DoExchange
//   (flight_interop.mjs).
//
// node and tests/interop/node_modules are required: the test fails (never skips) when they are
// missing, telling to run scripts/bootstrap.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

#include "bridge/common/testing.h"
#include "nlohmann/json.hpp"

#ifndef BRIDGE_INTEROP_DIR
#error "BRIDGE_INTEROP_DIR must name tests/interop"
#endif

namespace bridge {
namespace {

namespace fs = std::filesystem;
using ::bridge::testing::BridgeBinary;
using ::bridge::testing::ChildProcess;
using ::bridge::testing::CommandResult;
using ::bridge::testing::RunCommand;
using ::bridge::testing::TempDir;

constexpr std::string_view kListening = "HTTP listening on ";
constexpr std::string_view kFlightListening = "Flight listening on grpc://";

// Returns what the server logged after `prefix` up to the next space (the base URL
// "http://127.0.0.1:PORT" after kListening, "127.0.0.1:PORT" after kFlightListening), or "".
std::string ListeningUrl(const std::string& output, std::string_view prefix = kListening) {
  size_t at = output.find(prefix);
  if (at == std::string::npos) return "";
  size_t start = at + prefix.size();
  size_t end = output.find_first_of(" \r\n", start);
  return output.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(HttpInteropTest, ArrowDecodedByApacheArrowEqualsJsonForEveryType) {
  const std::string node = ::bridge::testing::FindOnPath("node");
  ASSERT_FALSE(node.empty()) << "node is not on PATH; run scripts/bootstrap";
  ASSERT_TRUE(fs::exists(fs::path(BRIDGE_INTEROP_DIR) / "node_modules/apache-arrow/package.json"))
      << "apache-arrow is not installed in tests/interop: run scripts/bootstrap";

  TempDir data;
  ASSERT_OK_AND_ASSIGN(
      auto server,
      ChildProcess::Start({BridgeBinary(), "serve", "--data", data.path().string(), "--http-port",
                           "0", "--flight-port", "0", "--watch", "false"}));
  ASSERT_TRUE(server->WaitForOutput(kListening, 60)) << server->output();
  ASSERT_TRUE(server->WaitForOutput("Ctrl-C", 30)) << server->output();  // the line is whole
  const std::string url = ListeningUrl(server->output());
  ASSERT_TRUE(url.rfind("http://127.0.0.1:", 0) == 0) << server->output();

  CommandResult r =
      RunCommand({node, (fs::path(BRIDGE_INTEROP_DIR) / "http_arrow.mjs").string(), url}, 120);
  ASSERT_EQ(r.exit_code, 0) << "http_arrow.mjs against " << url << ":\n"
                            << r.err << r.out << "\nserver log:\n"
                            << server->output();
  nlohmann::json summary = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(summary.is_discarded()) << r.out;
  EXPECT_EQ(summary["rows"], 3000);
  EXPECT_EQ(summary["columns"], 38);
  EXPECT_GT(summary["values"].get<int64_t>(), 100000);  // nested values count one by one
  EXPECT_EQ(summary["batches"], 2);                     // one per DuckDB chunk

  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(30), 0) << server->output();
}

TEST(FlightInteropTest, GrpcJsAndApacheArrowSpeakFlightWithBridge) {
  const std::string node = ::bridge::testing::FindOnPath("node");
  ASSERT_FALSE(node.empty()) << "node is not on PATH; run scripts/bootstrap";
  ASSERT_TRUE(fs::exists(fs::path(BRIDGE_INTEROP_DIR) / "node_modules/@grpc/grpc-js/package.json"))
      << "@grpc/grpc-js is not installed in tests/interop: run scripts/bootstrap";

  TempDir data;
  ::bridge::testing::WriteFile(data.path() / "people.csv",
                               "id,name,score\n1,Ann,9.5\n2,Bo,7.25\n3,Cy,8\n");
  fs::create_directories(data.path() / "parts");
  for (int part = 0; part < 3; ++part) {
    std::string csv = "id,v\n";
    for (int i = part * 1000; i < (part + 1) * 1000; ++i) {
      csv += std::to_string(i) + "," + std::to_string(i % 7) + "\n";
    }
    ::bridge::testing::WriteFile(data.path() / "parts" / ("p" + std::to_string(part) + ".csv"),
                                 csv);
  }
  ASSERT_OK_AND_ASSIGN(auto server,
                       ChildProcess::Start({BridgeBinary(), "serve", "--data", data.path().string(),
                                            "--http-port", "0", "--flight-port", "0", "--watch",
                                            "false", "--flight-endpoints", "3"}));
  ASSERT_TRUE(server->WaitForOutput("Ctrl-C stops", 60)) << server->output();
  ASSERT_TRUE(server->WaitForOutput(kFlightListening, 30)) << server->output();
  const std::string address = ListeningUrl(server->output(), kFlightListening);
  ASSERT_TRUE(address.rfind("127.0.0.1:", 0) == 0) << server->output();

  CommandResult r =
      RunCommand({node, (fs::path(BRIDGE_INTEROP_DIR) / "flight_interop.mjs").string(), address,
                  BRIDGE_PROTO_DIR},
                 120);
  ASSERT_EQ(r.exit_code, 0) << "flight_interop.mjs against " << address << ":\n"
                            << r.err << r.out << "\nserver log:\n"
                            << server->output();
  nlohmann::json s = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(s.is_discarded()) << r.out;
  EXPECT_EQ(s["tables"], nlohmann::json::parse(R"(["parts", "people"])"));
  EXPECT_EQ(s["parts_schema"], nlohmann::json::parse(R"(["id:Int64", "v:Int64"])"));
  EXPECT_EQ(s["parts_endpoints"], 3);
  EXPECT_EQ(s["parts_rows"], 3000);
  EXPECT_EQ(s["parts_sum"], "4498500");
  EXPECT_EQ(s["parts_distinct"], 3000);
  EXPECT_EQ(s["people"],
            nlohmann::json::parse(R"([[1, "Ann", 9.5], [2, "Bo", 7.25], [3, "Cy", 8]])"));
  EXPECT_EQ(s["get_schema"], nlohmann::json::parse(R"(["answer:Int32"])"));
  EXPECT_GE(s["put_acks"].get<int>(), 1);
  EXPECT_EQ(s["put_last"]["rows"], 5000);
  EXPECT_EQ(s["put_last"]["committed"], true);
  EXPECT_EQ(s["put_roundtrip_equal"], true);
  // 5000 rows, sum of 3 * (0..4999), 4500 non-null strings.
  EXPECT_EQ(s["exchange"], nlohmann::json::parse(R"(["5000", "37492500", "4500"])"));
  EXPECT_EQ(s["bad_sql"], "INVALID_ARGUMENT: Parser Error: syntax error at or near \"selec\"");

  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(30), 0) << server->output();
}

}  // namespace
}  // namespace bridge
