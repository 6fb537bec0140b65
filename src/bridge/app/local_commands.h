// The commands that need neither a network nor OpenSSL: query, gen-demo, ipc, version.
// Both binaries register them: `bridge` runs them itself (it links no gRPC, protobuf,
// OpenSSL or HTTP code, so it starts faster) and hands every other command to
// `bridge-server`.
#pragma once

#include <memory>
#include <string_view>

namespace CLI {
class App;
}  // namespace CLI

namespace bridge::app {

class LocalCommands {
 public:
  // Whether `name` is one of the subcommands this class registers.
  static bool Handles(std::string_view name);

  // Adds query, gen-demo, ipc and version to `app`.
  static std::unique_ptr<LocalCommands> Register(CLI::App& app);
  virtual ~LocalCommands();

  // Whether one of them was on the command line.
  virtual bool parsed() const = 0;
  // Runs the one that was given and returns the exit code (0, 1 failure, 2 usage).
  virtual int Run() = 0;
};

}  // namespace bridge::app
