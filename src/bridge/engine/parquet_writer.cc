// Database::WriteParquet: DuckDB's Parquet writer fed from a BatchStream.
//
// The stream reaches DuckDB through a table function registered once per database
// (`__bridge_parquet_source(token)`). It is in the catalog, so any connection can name it,
// but its bind refuses every connection but the internal one and every token but the one of
// the write in progress; the internal connection runs only Bridge's own SQL. The function
// converts each Arrow batch with duckdb_data_chunk_from_arrow (no copy of fixed-width data)
// and hands DuckDB the chunk's vectors by reference; batches longer than one DuckDB vector
// (coalesced streams) are copied out in vector-sized slices.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bridge/arrow/concatenate.h"
#include "bridge/engine/duckdb_status_internal.h"
#include "bridge/engine/parquet_writer_internal.h"

namespace bridge::engine::internal {

namespace fs = std::filesystem;

constexpr const char* kFunctionName = "__bridge_parquet_source";

struct ParquetSource {
  // Fixed at creation.
  duckdb_connection internal = nullptr;
  idx_t internal_connection_id = 0;

  // The write in progress. `mu` guards `token` and `stream` against binds from other
  // connections (which only read them to refuse); the rest is touched by the internal
  // connection's query alone, under the caller's lock.
  std::mutex mu;
  std::string token;
  BatchStream* stream = nullptr;

  std::vector<std::string> names;
  std::vector<duckdb_logical_type> types;
  duckdb_arrow_converted_schema converted = nullptr;
  Status error;                         // the stream's failure, if any
  duckdb_data_chunk pending = nullptr;  // a long batch being copied out in slices
  idx_t pending_offset = 0;
  duckdb_selection_vector identity = nullptr;
  idx_t identity_size = 0;

  void ResetWrite() {
    {
      std::lock_guard lock(mu);
      token.clear();
      stream = nullptr;
    }
    names.clear();
    for (auto& t : types) duckdb_destroy_logical_type(&t);
    types.clear();
    if (converted != nullptr) duckdb_destroy_arrow_converted_schema(&converted);
    converted = nullptr;
    if (pending != nullptr) duckdb_destroy_data_chunk(&pending);
    pending = nullptr;
    pending_offset = 0;
    error = OkStatus();
  }

  ~ParquetSource() {
    ResetWrite();
    if (identity != nullptr) duckdb_destroy_selection_vector(identity);
  }
};

void ParquetSourceDeleter::operator()(ParquetSource* source) const { delete source; }

namespace {

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

void SourceBind(duckdb_bind_info info) {
  auto* source = static_cast<ParquetSource*>(duckdb_bind_get_extra_info(info));
  duckdb_client_context context = nullptr;
  duckdb_table_function_get_client_context(info, &context);
  idx_t connection_id = duckdb_client_context_get_connection_id(context);
  duckdb_destroy_client_context(&context);

  std::string token;
  duckdb_value param = duckdb_bind_get_parameter(info, 0);
  if (param != nullptr && !duckdb_is_null_value(param)) {
    char* text = duckdb_get_varchar(param);
    if (text != nullptr) token = text;
    duckdb_free(text);
  }
  duckdb_destroy_value(&param);

  bool ours = false;
  if (connection_id == source->internal_connection_id) {
    std::lock_guard lock(source->mu);
    ours = source->stream != nullptr && !token.empty() && token == source->token;
  }
  if (!ours) {
    duckdb_bind_set_error(info, "__bridge_parquet_source is internal to Bridge");
    return;
  }
  for (size_t i = 0; i < source->types.size(); ++i) {
    duckdb_bind_add_result_column(info, source->names[i].c_str(), source->types[i]);
  }
}

void SourceInit(duckdb_init_info info) { duckdb_init_set_max_threads(info, 1); }

// Copies the next slice of source->pending into `output`; drops pending when it is done.
void EmitSlice(ParquetSource& source, duckdb_data_chunk output) {
  idx_t rows = duckdb_data_chunk_get_size(source.pending);
  idx_t n = std::min<idx_t>(rows - source.pending_offset, duckdb_vector_size());
  if (source.identity_size < rows) {
    if (source.identity != nullptr) duckdb_destroy_selection_vector(source.identity);
    source.identity = duckdb_create_selection_vector(rows);
    source.identity_size = rows;
    sel_t* data = duckdb_selection_vector_get_data_ptr(source.identity);
    for (idx_t i = 0; i < rows; ++i) data[i] = static_cast<sel_t>(i);
  }
  idx_t columns = duckdb_data_chunk_get_column_count(source.pending);
  for (idx_t c = 0; c < columns; ++c) {
    duckdb_vector_copy_sel(duckdb_data_chunk_get_vector(source.pending, c),
                           duckdb_data_chunk_get_vector(output, c), source.identity,
                           source.pending_offset + n, source.pending_offset, 0);
  }
  duckdb_data_chunk_set_size(output, n);
  source.pending_offset += n;
  if (source.pending_offset >= rows) {
    duckdb_destroy_data_chunk(&source.pending);
    source.pending = nullptr;
    source.pending_offset = 0;
  }
}

void SourceProduce(duckdb_function_info info, duckdb_data_chunk output) {
  auto* source = static_cast<ParquetSource*>(duckdb_function_get_extra_info(info));
  if (source->pending != nullptr) {
    EmitSlice(*source, output);
    return;
  }
  while (true) {
    Result<ipc::OwnedArray> next = source->stream->Next();
    if (!next.ok()) {
      source->error = next.status();
      duckdb_function_set_error(info, std::string(next.status().message()).c_str());
      return;
    }
    ipc::OwnedArray array = std::move(next).value();
    if (!array.valid()) {
      duckdb_data_chunk_set_size(output, 0);
      return;
    }
    if (array->length == 0) continue;
    duckdb_data_chunk chunk = nullptr;
    duckdb_error_data error =
        duckdb_data_chunk_from_arrow(source->internal, array.get(), source->converted, &chunk);
    Status st = ConsumeErrorData(&error, "engine: parquet: converting a batch from Arrow");
    if (!st.ok()) {
      source->error = st;
      duckdb_function_set_error(info, std::string(st.message()).c_str());
      return;
    }
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
      return;
    }
    // One copy: the batch is longer than a DuckDB vector (a coalesced stream).
    source->pending = chunk;
    source->pending_offset = 0;
    EmitSlice(*source, output);
    return;
  }
}

Status RegisterSourceFunction(duckdb_connection internal, ParquetSource* source) {
  duckdb_table_function function = duckdb_create_table_function();
  duckdb_table_function_set_name(function, kFunctionName);
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_table_function_add_parameter(function, varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_table_function_set_extra_info(function, source, nullptr);
  duckdb_table_function_set_bind(function, SourceBind);
  duckdb_table_function_set_init(function, SourceInit);
  duckdb_table_function_set_function(function, SourceProduce);
  duckdb_state state = duckdb_register_table_function(internal, function);
  duckdb_destroy_table_function(&function);
  if (state != DuckDBSuccess) {
    return Internal("engine: parquet: cannot register the source function");
  }
  return OkStatus();
}

bool Inside(const fs::path& target, const fs::path& dir) {
  if (dir.empty()) return false;
  fs::path rel = target.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != ".." && *rel.begin() != ".";
}

// Returns the canonical target path if it lies inside the data or cache folder.
Result<fs::path> CheckTarget(const EngineOptions& options, const fs::path& path) {
  if (path.empty()) return InvalidArgument("engine: parquet: empty path");
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec).lexically_normal();
  if (ec) return InvalidArgument("engine: parquet: bad path '", path.string(), "'");
  fs::path name = absolute.filename();
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgument("engine: parquet: '", path.string(), "' does not name a file");
  }
  fs::path parent = fs::canonical(absolute.parent_path(), ec);
  if (ec) {
    return NotFound("engine: parquet: folder '", absolute.parent_path().string(),
                    "' does not exist");
  }
  fs::path target = parent / name;
  if (!Inside(target, options.data_dir) && !Inside(target, options.cache_dir)) {
    return PermissionDenied("engine: parquet: '", path.string(),
                            "' is outside the data and cache folders");
  }
  if (fs::is_directory(target, ec)) {
    return InvalidArgument("engine: parquet: '", path.string(), "' is a folder");
  }
  return target;
}

Status CheckOptions(const ParquetOptions& parquet) {
  static constexpr std::array<std::string_view, 6> kCodecs = {"zstd", "snappy", "gzip",
                                                              "lz4",  "brotli", "uncompressed"};
  if (std::find(kCodecs.begin(), kCodecs.end(), parquet.compression) == kCodecs.end()) {
    return InvalidArgument("engine: parquet: unknown compression '", parquet.compression,
                           "' (zstd, snappy, gzip, lz4, brotli, uncompressed)");
  }
  if (parquet.row_group_size < 0) {
    return InvalidArgument("engine: parquet: row_group_size must be >= 0, got ",
                           parquet.row_group_size);
  }
  return OkStatus();
}

Status FsyncPath(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return IoError("engine: parquet: open '", path.string(), "': ", strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) return IoError("engine: parquet: fsync '", path.string(), "': ", strerror(saved));
  return OkStatus();
}

// Fills the column names and DuckDB types of source.stream's schema.
Status PrepareSchema(duckdb_connection internal, ParquetSource& source) {
  const ArrowSchema& schema = source.stream->schema();
  if (schema.format == nullptr || std::string_view(schema.format) != "+s") {
    return InvalidArgument("engine: parquet: the stream's schema is not a struct");
  }
  if (schema.n_children == 0) {
    return InvalidArgument("engine: parquet: the stream has no columns");
  }
  duckdb_error_data error =
      duckdb_schema_from_arrow(internal, const_cast<ArrowSchema*>(&schema), &source.converted);
  BRIDGE_RETURN_NOT_OK(ConsumeErrorData(&error, "engine: parquet: reading the schema"));
  // The C API exposes the converted types only on a chunk, so convert an empty batch.
  BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray empty, ipc::Concatenate(schema, {}));
  duckdb_data_chunk chunk = nullptr;
  error = duckdb_data_chunk_from_arrow(internal, empty.get(), source.converted, &chunk);
  BRIDGE_RETURN_NOT_OK(ConsumeErrorData(&error, "engine: parquet: reading the schema"));
  idx_t columns = duckdb_data_chunk_get_column_count(chunk);
  for (idx_t c = 0; c < columns; ++c) {
    source.types.push_back(duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, c)));
    const char* name = schema.children[c]->name;
    source.names.emplace_back(name != nullptr ? name : "");
  }
  duckdb_destroy_data_chunk(&chunk);
  return OkStatus();
}

}  // namespace

Status WriteParquetLocked(duckdb_connection internal, const EngineOptions& options,
                          ParquetSourceHandle& source_state, BatchStream& stream,
                          const fs::path& path, const ParquetOptions& parquet) {
  BRIDGE_RETURN_NOT_OK(CheckOptions(parquet));
  BRIDGE_ASSIGN_OR_RETURN(fs::path target, CheckTarget(options, path));
  if (source_state == nullptr) {
    ParquetSourceHandle created(new ParquetSource);
    created->internal = internal;
    created->internal_connection_id = ConnectionId(internal);
    BRIDGE_RETURN_NOT_OK(RegisterSourceFunction(internal, created.get()));
    source_state = std::move(created);
  }
  ParquetSource& source = *source_state;
  source.ResetWrite();
  struct ResetGuard {
    ParquetSource& s;
    ~ResetGuard() { s.ResetWrite(); }
  } reset_guard{source};
  std::string token = RandomHex();
  {
    std::lock_guard lock(source.mu);
    source.token = token;
    source.stream = &stream;
  }
  BRIDGE_RETURN_NOT_OK(PrepareSchema(internal, source));

  fs::path temp = target.parent_path() /
                  StrCat(".", target.filename().string(), ".tmp-", RandomHex().substr(0, 12));
  std::string sql =
      StrCat("COPY (SELECT * FROM ", kFunctionName, "(", QuoteString(token), ")) TO ",
             QuoteString(temp.string()), " (FORMAT parquet, COMPRESSION ", parquet.compression);
  if (parquet.row_group_size > 0) sql += StrCat(", ROW_GROUP_SIZE ", parquet.row_group_size);
  sql += ")";

  auto remove_temp = [&] {
    std::error_code ec;
    fs::remove(temp, ec);
  };
  duckdb_result result;
  duckdb_state state = duckdb_query(internal, sql.c_str(), &result);
  if (state != DuckDBSuccess) {
    Status st = source.error.ok() ? WithContext(StatusFromDuckDB(duckdb_result_error_type(&result),
                                                                 duckdb_result_error(&result)),
                                                "engine: parquet: writing '" + path.string() + "'")
                                  : source.error;
    duckdb_destroy_result(&result);
    remove_temp();
    return st;
  }
  duckdb_destroy_result(&result);
  if (!source.error.ok()) {  // never expected: DuckDB reports the function's error
    remove_temp();
    return source.error;
  }
  Status st = FsyncPath(temp, false);
  if (st.ok()) {
    std::error_code ec;
    fs::rename(temp, target, ec);
    if (ec) {
      st = IoError("engine: parquet: rename to '", target.string(), "': ", ec.message());
    }
  }
  if (!st.ok()) {
    remove_temp();
    return st;
  }
  return FsyncPath(target.parent_path(), true);
}

}  // namespace bridge::engine::internal
