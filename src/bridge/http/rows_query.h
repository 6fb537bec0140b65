// REST read of one table (GET /tables/{name}/rows): URL parameters -> one parameterized
// SQL query. No user text ever reaches the SQL text: identifiers must be columns of the
// table and are quoted, values are bound as parameters.
//
// Thread safety: free function without shared state.
#pragma once

#include <string>
#include <vector>

#include "bridge/catalog/catalog.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"
#include "bridge/http/request.h"

namespace bridge::http {

struct RowsQuery {
  std::string sql;
  std::vector<engine::Value> params;
};

// columns=a,b  filter=<col>.<op>.<value> (repeatable; op: eq neq lt lte gt gte like ilike
// is (value null|notnull|true|false) in (value a,b,c))  order=a.desc,b.asc,c (nullsfirst/
// nullslast optional third part)  limit=N offset=N. Identifiers must be columns of `table`
// (else InvalidArgument naming it) and are quoted with engine::QuoteIdentifier; values are
// bound as parameters and cast to the column type: `"fare" > CAST($1 AS DECIMAL(10,2))`.
// like/ilike only on VARCHAR columns. Other keys (format, compression, cache, sql) are
// ignored here. InvalidArgument for a broken table, unknown columns/operators, malformed
// filter/order/limit/offset values.
Result<RowsQuery> BuildRowsQuery(const catalog::TableInfo& table, const Params& params);

}  // namespace bridge::http
