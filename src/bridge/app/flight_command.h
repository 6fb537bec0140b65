// `bridge flight`: a command-line Arrow Flight client (list, info, get, put, exchange,
// actions, action) on top of flight/client.
#pragma once

#include <memory>
#include <string>

#include "bridge/common/status.h"
#include "bridge/flight/client/client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace bridge::app {

// The `flight` subcommand with its flags and subcommands. Register adds it to the command
// line; after parsing, Run executes the subcommand that was given.
//
// Exit codes of Run: 0 success, 1 a runtime failure (the server's message on stderr), 2 bad
// usage (a bad URI, missing or conflicting flags, an unreadable input file).
class FlightCommand {
 public:
  static std::unique_ptr<FlightCommand> Register(CLI::App& app);
  virtual ~FlightCommand();

  // Whether `bridge flight ...` was on the command line.
  virtual bool parsed() const = 0;
  virtual int Run() = 0;
};

// Prints `table` to stdout as text: `format` is table|csv|json|ndjson, or "none" (nothing).
// InvalidArgument for another format or a column type the format cannot write.
Status PrintTable(const std::string& format, const flight::client::Table& table);

// Writes `table` (its batches are consumed) as an Arrow IPC file at `path`. IoError when the
// file cannot be written.
Status WriteArrowFile(const std::string& path, flight::client::Table& table);

}  // namespace bridge::app
