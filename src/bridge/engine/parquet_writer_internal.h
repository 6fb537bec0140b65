// Private to engine/: Database::WriteParquet, kept out of engine.cc.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/engine/engine.h"
#include "duckdb.h"

namespace bridge::engine::internal {

// The table function through which DuckDB pulls the batches of the stream being written. It
// is registered on first use and lives as long as the database; its state must therefore
// outlive the duckdb_database (DatabaseImpl closes the database before its members die).
struct ParquetSource;
struct ParquetSourceDeleter {
  void operator()(ParquetSource* source) const;
};
using ParquetSourceHandle = std::unique_ptr<ParquetSource, ParquetSourceDeleter>;

// Registers the source table function on first use.
Status EnsureSourceFunction(duckdb_connection internal, ParquetSourceHandle& source_state);

// Database::DescribeSchema. The caller holds the lock of `internal`.
Result<std::vector<ColumnType>> DescribeSchemaLocked(duckdb_connection internal,
                                                     ParquetSourceHandle& source_state,
                                                     const ArrowSchema& schema);

// Returns the columns of `DESCRIBE <select>` run on `conn`.
Result<std::vector<ColumnType>> DescribeLocked(duckdb_connection conn, std::string_view select);

// Returns "a BIGINT, b VARCHAR".
std::string ColumnsText(const std::vector<ColumnType>& columns);

// Database::WriteParquet. The caller holds the lock of `internal` for the whole call.
// `options` is the database's (canonical folders); `source_state` is created on first use.
Status WriteParquetLocked(duckdb_connection internal, const EngineOptions& options,
                          ParquetSourceHandle& source_state, BatchStream& source,
                          const std::filesystem::path& path, const ParquetOptions& parquet);

}  // namespace bridge::engine::internal
