// Arrow Flight SQL on Bridge's Flight server: the database front door for ADBC, JDBC and ODBC
// drivers (see README.md for the commands and what each answers).
//
// The layer is a flight::CommandHandler: set it as flight::Services::commands and the Flight
// server routes Flight SQL commands (google.protobuf.Any in FlightDescriptor.cmd, tickets and
// action bodies) to it, while authentication, TLS, middleware, signed tickets, the zero-copy
// DoGet and the atomic ingest stay the server's.
//
// State: prepared statements (until ClosePreparedStatement or the end of the process) and
// session options (until CloseSession), each owned by the user that made it. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "bridge/common/status.h"
#include "bridge/flight/command_handler.h"

namespace bridge::catalog {
class Catalog;
}  // namespace bridge::catalog

namespace bridge::flightsql {

struct FlightSqlOptions {
  // Reported by GetSqlInfo (FLIGHT_SQL_SERVER_VERSION, with DuckDB's version).
  std::string bridge_version = "0.1.0";
  // Open prepared statements and sessions the server keeps at most (RESOURCE_EXHAUSTED
  // beyond).
  size_t max_prepared_statements = 1024;
  size_t max_sessions = 4096;
  // ... and per user, so that one client that never closes cannot lock the others out.
  size_t max_prepared_statements_per_user = 128;
  size_t max_sessions_per_user = 128;
  // Prepared statements and sessions unused this long are dropped (a client that crashed
  // never closes them).
  std::chrono::seconds idle_timeout{1800};
  // Whether authentication is on: then CommandStatementUpdate and ingest need the ingest
  // permission (PERMISSION_DENIED otherwise).
  bool auth_enabled = false;
};

// Returns the Flight SQL handler over `db` and `catalog` (borrowed; they must outlive it).
// Errors: those of reading DuckDB's facts for GetSqlInfo.
Result<std::unique_ptr<flight::CommandHandler>> MakeFlightSqlHandler(engine::Database& db,
                                                                     catalog::Catalog& catalog,
                                                                     FlightSqlOptions options = {});

}  // namespace bridge::flightsql
