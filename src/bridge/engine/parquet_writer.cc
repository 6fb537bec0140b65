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

#include "bridge/engine/arrow_scan_internal.h"
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

  ArrowChunkFeeder feeder;
  Status error;  // the stream's failure, if any

  void ResetWrite() {
    {
      std::lock_guard lock(mu);
      token.clear();
      stream = nullptr;
    }
    feeder.Reset();
    error = OkStatus();
  }

  ~ParquetSource() { ResetWrite(); }
};

void ParquetSourceDeleter::operator()(ParquetSource* source) const { delete source; }

// Binds `stream` to the source function under a new token for one statement, with the
// stream's schema prepared; the source is reset on the way in and out.
class SourceBinding {
 public:
  SourceBinding(ParquetSource& source, BatchStream& stream) : source_(source), token_(RandomHex()) {
    source_.ResetWrite();
    std::lock_guard lock(source_.mu);
    source_.token = token_;
    source_.stream = &stream;
  }
  ~SourceBinding() { source_.ResetWrite(); }
  SourceBinding(const SourceBinding&) = delete;
  SourceBinding& operator=(const SourceBinding&) = delete;

  // Prepares the feeder for `schema` (the stream's).
  Status Prepare(const ArrowSchema& schema) {
    return source_.feeder.Prepare(source_.internal, schema);
  }
  // `SELECT * FROM` the source function reading the bound stream.
  std::string Select() const {
    return StrCat("SELECT * FROM ", kFunctionName, "(", QuoteString(token_), ")");
  }

 private:
  ParquetSource& source_;
  const std::string token_;
};

namespace {

void SourceBind(duckdb_bind_info info) {
  auto* source = static_cast<ParquetSource*>(duckdb_bind_get_extra_info(info));
  idx_t connection_id = BindConnectionId(info);
  std::string token = BindTextParameter(info);
  bool ours = false;
  if (connection_id == source->internal_connection_id) {
    std::lock_guard lock(source->mu);
    ours = source->stream != nullptr && !token.empty() && token == source->token;
  }
  if (!ours) {
    duckdb_bind_set_error(info, "__bridge_parquet_source is internal to Bridge");
    return;
  }
  const auto& names = source->feeder.names();
  const auto& types = source->feeder.types();
  for (size_t i = 0; i < types.size(); ++i) {
    duckdb_bind_add_result_column(info, names[i].c_str(), types[i]);
  }
}

void SourceInit(duckdb_init_info info) { duckdb_init_set_max_threads(info, 1); }

void SourceProduce(duckdb_function_info info, duckdb_data_chunk output) {
  auto* source = static_cast<ParquetSource*>(duckdb_function_get_extra_info(info));
  Status st = source->feeder.Produce(source->internal, *source->stream, output);
  if (!st.ok()) {
    source->error = st;
    duckdb_function_set_error(info, std::string(st.message()).c_str());
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

// Returns the canonical path of an existing file to read before the stream.
Result<fs::path> CheckPrefixFile(const EngineOptions& options, const fs::path& path) {
  std::error_code ec;
  fs::path canonical = fs::canonical(path, ec);
  if (ec || !fs::is_regular_file(canonical, ec)) {
    return NotFound("engine: parquet: file '", path.string(), "' does not exist");
  }
  if (!Inside(canonical, options.data_dir) && !Inside(canonical, options.cache_dir)) {
    return PermissionDenied("engine: parquet: '", path.string(),
                            "' is outside the data and cache folders");
  }
  return canonical;
}

}  // namespace

Result<std::vector<ColumnType>> DescribeLocked(duckdb_connection internal,
                                               std::string_view select) {
  BRIDGE_ASSIGN_OR_RETURN(TextTable table, RunTextQuery(internal, StrCat("DESCRIBE ", select)));
  std::vector<ColumnType> columns;
  for (const auto& row : table.rows) {
    if (row.size() < 2 || !row[0] || !row[1]) return Internal("engine: unexpected DESCRIBE row");
    columns.push_back(ColumnType{*row[0], *row[1]});
  }
  return columns;
}

std::string ColumnsText(const std::vector<ColumnType>& columns) {
  std::string out;
  for (const ColumnType& c : columns) out += StrCat(out.empty() ? "" : ", ", c.name, " ", c.type);
  return out;
}

Result<std::vector<ColumnType>> DescribeSchemaLocked(duckdb_connection internal,
                                                     ParquetSourceHandle& source_state,
                                                     const ArrowSchema& schema) {
  // A stream that only has a schema: DESCRIBE binds the source, it never reads it.
  class SchemaOnly final : public BatchStream {
   public:
    explicit SchemaOnly(const ArrowSchema& schema) : schema_(schema) {}
    const ArrowSchema& schema() const override { return schema_; }
    Result<ipc::OwnedArray> Next() override { return Internal("engine: schema-only stream"); }

   private:
    const ArrowSchema& schema_;
  } stream(schema);
  BRIDGE_RETURN_NOT_OK(EnsureSourceFunction(internal, source_state));
  SourceBinding binding(*source_state, stream);
  BRIDGE_RETURN_NOT_OK(binding.Prepare(schema));
  return DescribeLocked(internal, binding.Select());
}

Status EnsureSourceFunction(duckdb_connection internal, ParquetSourceHandle& source_state) {
  if (source_state != nullptr) return OkStatus();
  ParquetSourceHandle created(new ParquetSource);
  created->internal = internal;
  created->internal_connection_id = ConnectionId(internal);
  BRIDGE_RETURN_NOT_OK(RegisterSourceFunction(internal, created.get()));
  source_state = std::move(created);
  return OkStatus();
}

Status WriteParquetLocked(duckdb_connection internal, const EngineOptions& options,
                          ParquetSourceHandle& source_state, BatchStream& stream,
                          const fs::path& path, const ParquetOptions& parquet) {
  BRIDGE_RETURN_NOT_OK(CheckOptions(parquet));
  BRIDGE_ASSIGN_OR_RETURN(fs::path target, CheckTarget(options, path));
  BRIDGE_RETURN_NOT_OK(EnsureSourceFunction(internal, source_state));
  ParquetSource& source = *source_state;
  SourceBinding binding(source, stream);
  BRIDGE_RETURN_NOT_OK(binding.Prepare(stream.schema()));
  std::string select = binding.Select();
  if (!parquet.prefix_files.empty()) {
    std::string files;
    for (const fs::path& file : parquet.prefix_files) {
      BRIDGE_ASSIGN_OR_RETURN(fs::path canonical, CheckPrefixFile(options, file));
      files += StrCat(files.empty() ? "" : ", ", QuoteString(canonical.string()));
    }
    std::string prefix = StrCat("SELECT * FROM read_parquet([", files, "])");
    BRIDGE_ASSIGN_OR_RETURN(std::vector<ColumnType> old_columns, DescribeLocked(internal, prefix));
    BRIDGE_ASSIGN_OR_RETURN(std::vector<ColumnType> new_columns, DescribeLocked(internal, select));
    if (old_columns != new_columns) {
      return InvalidArgument("engine: parquet: the stream's schema (", ColumnsText(new_columns),
                             ") differs from the existing file's (", ColumnsText(old_columns), ")");
    }
    select = StrCat(prefix, " UNION ALL ", select);
  }

  fs::path temp = target.parent_path() /
                  StrCat(".", target.filename().string(), ".tmp-", RandomHex().substr(0, 12));
  std::string sql = StrCat("COPY (", select, ") TO ", QuoteString(temp.string()),
                           " (FORMAT parquet, COMPRESSION ", parquet.compression);
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
