// `bridge`: runs the local commands (query, gen-demo, ipc, version) itself and hands every
// other command line, as it is, to `bridge-server` next to this binary (exec: same process,
// same pid). This binary links neither gRPC, protobuf, OpenSSL nor the HTTP server, whose
// loading and static initialisation cost ~14 ms of every start: `bridge query` is measured
// against DuckDB called directly (see the engine benchmark in README.md).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "bridge/app/cli.h"
#include "bridge/app/local_commands.h"

namespace bridge::app {
namespace {

// Replaces this process with bridge-server and the same arguments; returns only on failure.
int ExecServer(char** argv) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Fail(kExitFailure, IoError("cannot find this binary: " + ec.message()));
  std::filesystem::path server = self.parent_path() / "bridge-server";
  ::execv(server.c_str(), argv);
  return Fail(kExitFailure, IoError("cannot run " + server.string() + ": " + std::strerror(errno)));
}

int Main(int argc, char** argv) {
  if (argc < 2 || !LocalCommands::Handles(argv[1])) return ExecServer(argv);
  std::unique_ptr<CLI::App> app = MakeApp();
  std::unique_ptr<LocalCommands> local = LocalCommands::Register(*app);
  if (std::optional<int> code = ParseCommandLine(*app, argc, argv)) return *code;
  return local->Run();
}

}  // namespace
}  // namespace bridge::app

int main(int argc, char** argv) { return bridge::app::Main(argc, argv); }
