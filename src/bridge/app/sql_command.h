// `bridge sql`: a command-line Arrow Flight SQL client (queries, prepared statements with
// parameters, the tables listing) on top of flightsql::SqlClient, so that a user can try a
// Flight SQL server without installing a driver.
#pragma once

#include <memory>

namespace CLI {
class App;
}  // namespace CLI

namespace bridge::app {

// The `sql` subcommand. Register adds it to the command line; after parsing, Run executes it.
// Exit codes of Run: 0 success, 1 a runtime failure (the server's message on stderr), 2 bad
// usage.
class SqlCommand {
 public:
  static std::unique_ptr<SqlCommand> Register(CLI::App& app);
  virtual ~SqlCommand();

  // Whether `bridge sql ...` was on the command line.
  virtual bool parsed() const = 0;
  virtual int Run() = 0;
};

}  // namespace bridge::app
