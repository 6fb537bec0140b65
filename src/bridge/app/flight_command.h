// `bridge flight`: a command-line Arrow Flight client (list, info, get, put, exchange,
// actions, action) on top of flight/client.
#pragma once

#include <memory>

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

}  // namespace bridge::app
