// Interop of the HTTP API with an independent Arrow implementation: a real `bridge serve` on
// 127.0.0.1 (port 0) answers one query covering every DuckDB type as format=arrow, which
// apache-arrow (npm, run in node) decodes, and as format=json; http_arrow.mjs compares the two
// value by value (the expected JSON form of each Arrow type is documented at its top).
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

std::string FindNode() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / "node";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

// Returns the base URL ("http://127.0.0.1:PORT") the server logged, or "".
std::string ListeningUrl(const std::string& output) {
  size_t at = output.find(kListening);
  if (at == std::string::npos) return "";
  size_t start = at + kListening.size();
  size_t end = output.find_first_of(" \r\n", start);
  return output.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(HttpInteropTest, ArrowDecodedByApacheArrowEqualsJsonForEveryType) {
  const std::string node = FindNode();
  ASSERT_FALSE(node.empty()) << "node is not on PATH; run scripts/bootstrap";
  ASSERT_TRUE(fs::exists(fs::path(BRIDGE_INTEROP_DIR) / "node_modules/apache-arrow/package.json"))
      << "apache-arrow is not installed in tests/interop: run scripts/bootstrap";

  TempDir data;
  ASSERT_OK_AND_ASSIGN(auto server,
                       ChildProcess::Start({BridgeBinary(), "serve", "--data", data.path().string(),
                                            "--http-port", "0", "--flight-port", "0", "--watch",
                                            "false"}));
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

}  // namespace
}  // namespace bridge
