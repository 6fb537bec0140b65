// A small Flight SQL client on top of the Flight client library: queries, prepared statements
// with parameters and the tables listing, against any Flight SQL server. No protobuf type
// appears here. What `bridge sql` uses.
//
// Thread safety: like flight::client::Client (the borrowed client must outlive this object).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/flight/client/client.h"

namespace bridge::flightsql {

class SqlClient {
 public:
  explicit SqlClient(flight::client::Client& flight) : flight_(flight) {}

  // Runs `sql` (CommandStatementQuery) and returns every endpoint's batches in order.
  Result<flight::client::Table> Query(std::string_view sql);

  // Prepares `sql` (CreatePreparedStatement), binds one row of `parameters` (sent as UTF-8
  // strings, which the server casts to the parameters' types), runs it, closes it.
  // InvalidArgument when the count differs from the statement's parameters.
  Result<flight::client::Table> QueryPrepared(std::string_view sql,
                                              const std::vector<std::string>& parameters);

  // GetTables: catalog_name, db_schema_name, table_name, table_type of the tables whose name
  // matches `pattern` (% and _ wildcards; empty = all).
  Result<flight::client::Table> Tables(std::string_view pattern);

  // Returns the Any bytes of CommandStatementQuery `sql` (what a FlightDescriptor.cmd carries).
  static std::string StatementQueryCommand(std::string_view sql);

 private:
  flight::client::Client& flight_;
};

}  // namespace bridge::flightsql
