// ArrowChunkFeeder: BatchStream batches as DuckDB chunks (see arrow_scan_internal.h).
#include <algorithm>
#include <random>
#include <string_view>

#include "bridge/arrow/concatenate.h"
#include "bridge/engine/arrow_scan_internal.h"
#include "bridge/engine/duckdb_status_internal.h"

namespace bridge::engine::internal {

std::string RandomHex() {
  std::random_device rd;
  std::string out;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 0; i < 4; ++i) {
    uint32_t word = rd();
    for (int j = 0; j < 8; ++j) {
      out += kDigits[word & 0xF];
      word >>= 4;
    }
  }
  return out;
}

idx_t ConnectionId(duckdb_connection conn) {
  duckdb_client_context context = nullptr;
  duckdb_connection_get_client_context(conn, &context);
  idx_t id = duckdb_client_context_get_connection_id(context);
  duckdb_destroy_client_context(&context);
  return id;
}

idx_t BindConnectionId(duckdb_bind_info info) {
  duckdb_client_context context = nullptr;
  duckdb_table_function_get_client_context(info, &context);
  idx_t id = duckdb_client_context_get_connection_id(context);
  duckdb_destroy_client_context(&context);
  return id;
}

std::string BindTextParameter(duckdb_bind_info info) {
  std::string text;
  duckdb_value param = duckdb_bind_get_parameter(info, 0);
  if (param != nullptr && !duckdb_is_null_value(param)) {
    char* value = duckdb_get_varchar(param);
    if (value != nullptr) text = value;
    duckdb_free(value);
  }
  duckdb_destroy_value(&param);
  return text;
}

void ArrowChunkFeeder::Reset() {
  names_.clear();
  for (auto& t : types_) duckdb_destroy_logical_type(&t);
  types_.clear();
  if (converted_ != nullptr) duckdb_destroy_arrow_converted_schema(&converted_);
  converted_ = nullptr;
  if (pending_ != nullptr) duckdb_destroy_data_chunk(&pending_);
  pending_ = nullptr;
  pending_offset_ = 0;
  if (identity_ != nullptr) duckdb_destroy_selection_vector(identity_);
  identity_ = nullptr;
  identity_size_ = 0;
}

Status ArrowChunkFeeder::Prepare(duckdb_connection conn, const ArrowSchema& schema) {
  Reset();
  if (schema.format == nullptr || std::string_view(schema.format) != "+s") {
    return InvalidArgument("engine: the stream's schema is not a struct");
  }
  if (schema.n_children == 0) return InvalidArgument("engine: the stream has no columns");
  duckdb_error_data error =
      duckdb_schema_from_arrow(conn, const_cast<ArrowSchema*>(&schema), &converted_);
  BRIDGE_RETURN_NOT_OK(ConsumeErrorData(&error, "engine: reading the stream's schema"));
  // The C API exposes the converted types only on a chunk, so convert an empty batch.
  BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray empty, ipc::Concatenate(schema, {}));
  duckdb_data_chunk chunk = nullptr;
  error = duckdb_data_chunk_from_arrow(conn, empty.get(), converted_, &chunk);
  BRIDGE_RETURN_NOT_OK(ConsumeErrorData(&error, "engine: reading the stream's schema"));
  idx_t columns = duckdb_data_chunk_get_column_count(chunk);
  for (idx_t c = 0; c < columns; ++c) {
    types_.push_back(duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, c)));
    const char* name = schema.children[c]->name;
    names_.emplace_back(name != nullptr ? name : "");
  }
  duckdb_destroy_data_chunk(&chunk);
  return OkStatus();
}

void ArrowChunkFeeder::EmitSlice(duckdb_data_chunk output) {
  idx_t rows = duckdb_data_chunk_get_size(pending_);
  idx_t n = std::min<idx_t>(rows - pending_offset_, duckdb_vector_size());
  if (identity_size_ < rows) {
    if (identity_ != nullptr) duckdb_destroy_selection_vector(identity_);
    identity_ = duckdb_create_selection_vector(rows);
    identity_size_ = rows;
    sel_t* data = duckdb_selection_vector_get_data_ptr(identity_);
    for (idx_t i = 0; i < rows; ++i) data[i] = static_cast<sel_t>(i);
  }
  idx_t columns = duckdb_data_chunk_get_column_count(pending_);
  for (idx_t c = 0; c < columns; ++c) {
    duckdb_vector_copy_sel(duckdb_data_chunk_get_vector(pending_, c),
                           duckdb_data_chunk_get_vector(output, c), identity_, pending_offset_ + n,
                           pending_offset_, 0);
  }
  duckdb_data_chunk_set_size(output, n);
  pending_offset_ += n;
  if (pending_offset_ >= rows) {
    duckdb_destroy_data_chunk(&pending_);
    pending_ = nullptr;
    pending_offset_ = 0;
  }
}

Status ArrowChunkFeeder::Produce(duckdb_connection conn, BatchStream& stream,
                                 duckdb_data_chunk output) {
  if (pending_ != nullptr) {
    EmitSlice(output);
    return OkStatus();
  }
  while (true) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray array, stream.Next());
    if (!array.valid()) {
      duckdb_data_chunk_set_size(output, 0);
      return OkStatus();
    }
    if (array->length == 0) continue;
    duckdb_data_chunk chunk = nullptr;
    duckdb_error_data error = duckdb_data_chunk_from_arrow(conn, array.get(), converted_, &chunk);
    BRIDGE_RETURN_NOT_OK(ConsumeErrorData(&error, "engine: converting a batch from Arrow"));
    idx_t rows = duckdb_data_chunk_get_size(chunk);
    if (rows <= duckdb_vector_size()) {
      // The output shares the vectors' buffers, which stay alive after the chunk is gone.
      idx_t columns = duckdb_data_chunk_get_column_count(chunk);
      for (idx_t c = 0; c < columns; ++c) {
        duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, c),
                                       duckdb_data_chunk_get_vector(chunk, c));
      }
      duckdb_data_chunk_set_size(output, rows);
      duckdb_destroy_data_chunk(&chunk);
      return OkStatus();
    }
    // One copy: the batch is longer than a DuckDB vector (a coalesced stream).
    pending_ = chunk;
    pending_offset_ = 0;
    EmitSlice(output);
    return OkStatus();
  }
}

}  // namespace bridge::engine::internal
