// Which query results the transports (HTTP format=arrow, Flight DoGet) keep in the result
// cache, and under what key.
//
// A result is cached only when it depends on nothing but the catalog's tables: the SQL is
// one statement whose table references (read from DuckDB's own parse tree,
// json_serialize_sql) are all catalog tables (or its own CTEs), with no table function
// (read_parquet('...'), range(), query(), ...: files outside the catalog or generated rows)
// and no function DuckDB marks volatile or consistent only within a query (random(), now(),
// current_date, ...). The key is the normalized SQL, the bound parameters with their types,
// the output options (codec, limit) and the fingerprint of each table read (its data folder,
// files, sizes and modification times: TableInfo::fingerprint), so a table that changes
// invalidates exactly the results that read it, also across restarts and data folders.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace bridge::cache {

// Returns the cache key of the result of `sql` with `params`, encoded as `output_options`
// describes (the transport's own string: everything that changes the bytes), or nullopt
// when the result must not be cached (see above; also when the SQL does not parse: running
// it reports the error). Runs one small query on `session`. Thread-safe.
Result<std::optional<CacheKey>> ResultKey(engine::Session& session, const catalog::Catalog& catalog,
                                          std::string_view sql,
                                          std::span<const engine::Value> params,
                                          std::string output_options);

// Returns the parameter as the key stores it: its type and value ("int64:5", "text:5").
std::string EncodeParameter(const engine::Value& value);

}  // namespace bridge::cache
