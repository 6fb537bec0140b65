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
  nulls_.clear();
  for (auto& t : types_) duckdb_destroy_logical_type(&t);
  types_.clear();
  if (converted_ != nullptr) duckdb_destroy_arrow_converted_schema(&converted_);
  converted_ = nullptr;
  pending_.reset();
  pending_offset_ = 0;
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
    // Null type: every row; unions and run-end encoded: no validity bitmap of their own.
    std::string_view format = schema.children[c]->format;
    nulls_.push_back(format == "n"                                          ? ColumnNulls::kAll
                     : format.starts_with("+u") || format.starts_with("+r") ? ColumnNulls::kNone
                                                                            : ColumnNulls::kBitmap);
  }
  duckdb_destroy_data_chunk(&chunk);
  return OkStatus();
}

namespace {

// What a slice of a batch holds: the whole batch (shared by its slices) and the column views.
struct SliceData {
  std::shared_ptr<ipc::OwnedArray> batch;
  std::vector<ArrowArray> columns;
  std::vector<ArrowArray*> column_pointers;
};

void ReleaseSlice(ArrowArray* array) {
  delete static_cast<SliceData*>(array->private_data);
  array->release = nullptr;
}

// Column views are released with their slice; this only marks them released.
void ReleaseColumnView(ArrowArray* array) { array->release = nullptr; }

// Returns the nulls among bits [offset, offset + length) of a validity bitmap.
int64_t CountNulls(const void* bitmap, int64_t offset, int64_t length) {
  const auto* bits = static_cast<const uint8_t*>(bitmap);
  int64_t valid = 0;
  for (int64_t i = offset; i < offset + length; ++i) valid += (bits[i >> 3] >> (i & 7)) & 1;
  return length - valid;
}

// Returns rows [start, start + length) of the struct batch `batch` without copying: each
// column is a view with its offset moved (the columns' own children and dictionaries are
// shared) and its exact null count (DuckDB reads the validity of a dictionary column only
// when null_count > 0), and the slice keeps the batch alive until it is released.
ArrowArray SliceBatch(std::shared_ptr<ipc::OwnedArray> batch, int64_t start, int64_t length,
                      const std::vector<ColumnNulls>& nulls) {
  const ArrowArray& whole = **batch;
  auto data = std::make_unique<SliceData>();
  data->columns.resize(static_cast<size_t>(whole.n_children));
  for (int64_t c = 0; c < whole.n_children; ++c) {
    ArrowArray column = *whole.children[c];
    column.offset += whole.offset + start;
    column.length = length;
    switch (nulls[c]) {
      case ColumnNulls::kBitmap:
        if (column.null_count != 0) {
          column.null_count = column.n_buffers > 0 && column.buffers[0] != nullptr
                                  ? CountNulls(column.buffers[0], column.offset, length)
                                  : 0;
        }
        break;
      case ColumnNulls::kAll:
        column.null_count = length;
        break;
      case ColumnNulls::kNone:
        column.null_count = 0;
        break;
    }
    column.release = &ReleaseColumnView;
    column.private_data = nullptr;
    data->columns[c] = column;
  }
  for (ArrowArray& column : data->columns) data->column_pointers.push_back(&column);
  ArrowArray slice = whole;
  slice.offset = 0;
  slice.length = length;
  slice.null_count = 0;
  slice.buffers = nullptr;  // a record batch has no nulls of its own
  slice.n_buffers = 0;
  slice.children = data->column_pointers.data();
  slice.release = &ReleaseSlice;
  data->batch = std::move(batch);
  slice.private_data = data.release();
  return slice;
}

}  // namespace

Status ArrowChunkFeeder::Convert(duckdb_connection conn, ArrowArray* array,
                                 duckdb_data_chunk output) {
  duckdb_data_chunk chunk = nullptr;
  duckdb_error_data error = duckdb_data_chunk_from_arrow(conn, array, converted_, &chunk);
  if (array->release != nullptr) array->release(array);  // DuckDB did not take it over
  BRIDGE_RETURN_NOT_OK(ConsumeErrorData(&error, "engine: converting a batch from Arrow"));
  // The output shares the vectors' buffers, which stay alive after the chunk is gone.
  idx_t columns = duckdb_data_chunk_get_column_count(chunk);
  for (idx_t c = 0; c < columns; ++c) {
    duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(output, c),
                                   duckdb_data_chunk_get_vector(chunk, c));
  }
  duckdb_data_chunk_set_size(output, duckdb_data_chunk_get_size(chunk));
  duckdb_destroy_data_chunk(&chunk);
  return OkStatus();
}

Status ArrowChunkFeeder::EmitSlice(duckdb_connection conn, duckdb_data_chunk output) {
  const int64_t rows = (*pending_)->length;
  const int64_t n = std::min<int64_t>(rows - pending_offset_, duckdb_vector_size());
  ArrowArray slice = SliceBatch(pending_, pending_offset_, n, nulls_);
  pending_offset_ += n;
  if (pending_offset_ >= rows) {
    pending_.reset();
    pending_offset_ = 0;
  }
  return Convert(conn, &slice, output);
}

Status ArrowChunkFeeder::Produce(duckdb_connection conn, BatchStream& stream,
                                 duckdb_data_chunk output) {
  if (pending_ != nullptr) return EmitSlice(conn, output);
  while (true) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray array, stream.Next());
    if (!array.valid()) {
      duckdb_data_chunk_set_size(output, 0);
      return OkStatus();
    }
    if (array->length == 0) continue;
    if (array->length <= static_cast<int64_t>(duckdb_vector_size())) {
      return Convert(conn, array.get(), output);
    }
    // Longer than a DuckDB vector (a coalesced stream, or a client's big batch): DuckDB's
    // conversion writes past a vector-sized validity mask for such dictionary columns, so
    // the batch goes in vector-sized slices (views, no copy).
    pending_ = std::make_shared<ipc::OwnedArray>(std::move(array));
    pending_offset_ = 0;
    return EmitSlice(conn, output);
  }
}

}  // namespace bridge::engine::internal
