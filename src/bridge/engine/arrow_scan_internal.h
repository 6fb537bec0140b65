// Private to engine/: how DuckDB table functions read a BatchStream. Shared by
// Database::WriteParquet (`__bridge_parquet_source`) and Session::QueryWithInput
// (`__bridge_input`).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bridge/common/status.h"
#include "bridge/engine/engine.h"
#include "duckdb.h"

namespace bridge::engine::internal {

// How a column's nulls are known: from its validity bitmap, or by its type.
enum class ColumnNulls { kBitmap, kAll, kNone };

// Turns the batches of one BatchStream into DuckDB chunks for a table function. Batches are
// converted with duckdb_data_chunk_from_arrow and handed over by reference (no copy of
// fixed-width data); batches longer than one DuckDB vector (2048 rows) go in vector-sized
// slices that are views of the batch (DuckDB 1.4.4 writes past a vector-sized validity mask
// when it converts a longer dictionary column with nulls). Used by one scan at a time (not
// thread-safe).
class ArrowChunkFeeder {
 public:
  ArrowChunkFeeder() = default;
  ~ArrowChunkFeeder() { Reset(); }
  ArrowChunkFeeder(const ArrowChunkFeeder&) = delete;
  ArrowChunkFeeder& operator=(const ArrowChunkFeeder&) = delete;

  // Reads `schema` (a "+s" struct with at least one column) into DuckDB column names and
  // types. InvalidArgument for a schema that is not a struct, has no columns, or holds a type
  // DuckDB cannot read.
  Status Prepare(duckdb_connection conn, const ArrowSchema& schema);

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<duckdb_logical_type>& types() const { return types_; }

  // Fills `output` with the next rows of `stream` (size 0 at its end). Returns the stream's
  // own error as is, or InvalidArgument when a batch cannot be converted.
  Status Produce(duckdb_connection conn, BatchStream& stream, duckdb_data_chunk output);

  // Forgets the schema and any pending batch.
  void Reset();

 private:
  // Converts `array` (taken over) into `output`.
  Status Convert(duckdb_connection conn, ArrowArray* array, duckdb_data_chunk output);
  // Converts the next vector-sized slice of pending_ into `output`.
  Status EmitSlice(duckdb_connection conn, duckdb_data_chunk output);

  std::vector<std::string> names_;
  std::vector<duckdb_logical_type> types_;
  std::vector<ColumnNulls> nulls_;  // per column
  duckdb_arrow_converted_schema converted_ = nullptr;
  std::shared_ptr<ipc::OwnedArray> pending_;  // a long batch handed out in slices
  int64_t pending_offset_ = 0;
};

// Returns the id of `conn`'s client context (what a table function's bind can check).
idx_t ConnectionId(duckdb_connection conn);

// Returns the connection id of the query binding a table function.
idx_t BindConnectionId(duckdb_bind_info info);

// Returns the first (VARCHAR) parameter of a table function being bound, or "".
std::string BindTextParameter(duckdb_bind_info info);

// Returns 32 random hex digits (128 bits): tokens and temporary file names.
std::string RandomHex();

}  // namespace bridge::engine::internal
