// Private to engine/: the one place DuckDB errors become Status values.
#pragma once

#include <string_view>

#include "bridge/common/status.h"
#include "bridge/engine/engine.h"
#include "duckdb.h"

namespace bridge::engine::internal {

// Maps a DuckDB error type and message to a Status kind, keeping DuckDB's message.
Status StatusFromDuckDB(duckdb_error_type type, std::string_view message);

// Maps an error known only by its message ("Binder Error: ..."), as prepare errors are.
Status StatusFromDuckDBMessage(std::string_view message);

// Returns OK if `error` holds no error, else its Status prefixed with `context`; destroys
// `error` in both cases.
Status ConsumeErrorData(duckdb_error_data* error, std::string_view context);

// Runs `sql` on `conn` (materialized) and renders every value as text.
Result<TextTable> RunTextQuery(duckdb_connection conn, std::string_view sql);

// Returns OK if the first keyword of `sql` (after comments and parentheses) starts a
// read-only query (SELECT, WITH, FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE, PIVOT,
// UNPIVOT, or EXPLAIN of one of those; not EXPLAIN ANALYZE, which runs its statement), else
// PermissionDenied naming the keyword. Empty text is OK (DuckDB reports it).
Status CheckReadOnlyText(std::string_view sql);

// Returns the SQL keyword of a statement type ("COPY", "ATTACH", ...).
std::string_view StatementTypeName(duckdb_statement_type type);

}  // namespace bridge::engine::internal
