// Private to src/bridge/flightsql: the metadata results (metadata.cc) and the conversion of
// bound parameters (parameters.cc) that the handler (handler.cc) uses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "FlightSql.pb.h"
#include "bridge/catalog/catalog.h"
#include "bridge/engine/engine.h"
#include "bridge/flightsql/columns_internal.h"

namespace bridge::flightsql {

// Facts about the server and its DuckDB, read once at start (GetSqlInfo and the catalogs).
struct ServerFacts {
  std::string server_name = "Bridge";
  std::string server_version;         // Bridge's version and DuckDB's
  std::string catalog;                // DuckDB's current database ("memory")
  std::string schema;                 // DuckDB's current schema ("main")
  std::vector<std::string> keywords;  // duckdb_keywords()
  int32_t null_ordering = 0;          // SqlNullOrdering of DuckDB's default_null_order
  int64_t max_connections = 0;        // engine sessions
};

// Returns the facts, asking DuckDB (trusted, internal queries).
Result<ServerFacts> ReadServerFacts(engine::Database& db, std::string bridge_version);

// Returns whether `text` matches a Flight SQL filter pattern: '%' = any run of characters,
// '_' = one character, '\' escapes the next character.
bool MatchesPattern(std::string_view text, std::string_view pattern);

// The answers of the metadata commands; each has exactly the schema the protocol defines.
// `ids` empty = every fact; unknown ids are left out.
ResultTable SqlInfoResult(const ServerFacts& facts, const std::vector<uint32_t>& ids);
ResultTable CatalogsResult(const ServerFacts& facts);
ResultTable DbSchemasResult(const ServerFacts& facts,
                            const arrow::flight::protocol::sql::CommandGetDbSchemas& command);
// With include_schema, each table's schema is read by preparing `SELECT *` in `session`
// (null = no rows, for the schema alone).
Result<ResultTable> TablesResult(const ServerFacts& facts, const catalog::Catalog& catalog,
                                 engine::Session* session,
                                 const arrow::flight::protocol::sql::CommandGetTables& command);
ResultTable TableTypesResult();
ResultTable PrimaryKeysResult();
// Exported keys, imported keys and cross references share one schema.
ResultTable ForeignKeysResult();
ResultTable XdbcTypeInfoResult(std::optional<int32_t> data_type);

// Returns the rows of an uploaded parameter batch (a struct array of `schema`) as engine
// values, one vector per row. InvalidArgument for a column type that cannot be bound.
Result<std::vector<std::vector<engine::Value>>> ParameterRows(const ArrowSchema& schema,
                                                              const ArrowArray& batch);

}  // namespace bridge::flightsql
