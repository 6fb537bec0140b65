// The SQL engine: DuckDB behind its C API, locked down, with results that stream as Arrow.
//
// Only this module includes duckdb.h; nothing DuckDB-typed crosses this header. The
// objects nest: a Database outlives its Sessions, a Session outlives its
// PreparedStatements and BatchStreams. Unless a method says otherwise, an object is used
// by one thread at a time; Database is thread-safe, and Session::Cancel / Session::Progress
// may be called from any thread while another thread runs the session's query.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"

namespace bridge::engine {

struct EngineOptions {
  // Folder of the tables. Queries may read files below it and nowhere else (but the cache
  // folder). Must exist.
  std::filesystem::path data_dir;
  // Folder of the result cache and DuckDB's spill files; created if missing. Empty = no
  // cache folder (spilling to disk is then off).
  std::filesystem::path cache_dir;
  // DuckDB worker threads; 0 = one per core.
  int threads = 0;
  // DuckDB memory limit ("4GB", "80%"); empty = DuckDB's default (80% of RAM).
  std::string memory_limit;
  // Sessions that may exist at once (each is one DuckDB connection, made at Open).
  int max_sessions = 64;
  // Track the progress of running queries (DuckDB's enable_progress_bar, printing off), so
  // that Session::Progress reports it. Off, Progress reports nothing and a query runs ~3%
  // faster (DuckDB updates the progress after every task): `bridge query` turns it off.
  bool progress = true;
};

// A value bound to a statement parameter (`$1`, `?`).
struct Blob {
  std::string bytes;
};
using Value = std::variant<std::monostate, bool, int64_t, double, std::string, Blob>;

struct QueryOptions {
  // Wall-clock limit of the whole query, fetching included; zero = none. When it passes
  // the query is interrupted and fails with DeadlineExceeded.
  std::chrono::milliseconds timeout{0};
  // Batch size targets. Zero (the default) hands out one batch per DuckDB chunk (at most
  // 2048 rows) with no copy. A positive target coalesces consecutive chunks into one batch
  // until it holds at least `batch_rows` rows or `batch_bytes` bytes (or the result ends),
  // at the price of one copy of every byte (see bench/coalesce_bench.cc: about 12 ns per
  // row, 3-5% of the scan) and a later first batch.
  int64_t batch_rows = 0;
  int64_t batch_bytes = 0;
};

struct QueryProgress {
  double percentage = -1;  // 0..100, or -1 when DuckDB cannot tell
  uint64_t rows_processed = 0;
  uint64_t total_rows = 0;
};

// A query's result as a stream of Arrow record batches, pulled one at a time. Memory use is
// bounded by a few batches whatever the result size: DuckDB produces each batch when it is
// asked for. Destroying the stream before its end stops the query.
class BatchStream {
 public:
  virtual ~BatchStream() = default;

  // The result's schema: a struct ("+s") whose children are the columns. Valid for the
  // stream's lifetime.
  virtual const ArrowSchema& schema() const = 0;

  // Returns the next batch as a struct array (one child per column; one DuckDB chunk of at
  // most 2048 rows unless QueryOptions asked for coalescing), or an empty OwnedArray
  // (valid() == false) at the end. Errors (cancelled, deadline exceeded, runtime errors) end
  // the stream.
  virtual Result<ipc::OwnedArray> Next() = 0;
};

// Batches a caller feeds into a query as the table `input` (Session::QueryWithInput), such
// as an upload arriving from a client. Next() may block until the next batch arrives.
class InputStream : public BatchStream {
 public:
  // Makes a Next() that is blocked return soon, and every later call at once, with an error
  // (Cancelled). Called from any thread (by Session::Cancel and by the query's deadline) while
  // another thread may be inside Next(); must not block nor call back into the session.
  virtual void Abort() = 0;
};

class Session;

// A statement prepared once and executed any number of times with bound parameters.
class PreparedStatement {
 public:
  virtual ~PreparedStatement() = default;

  // Number of parameters the statement takes.
  virtual size_t parameter_count() const = 0;

  // The result schema, known from preparation alone (the query does not run).
  virtual Result<ipc::OwnedSchema> ResultSchema() const = 0;

  // The parameters as a schema ("+s"): one field per parameter, named "parameter_1", ...,
  // typed as DuckDB infers them (the null type "n" where DuckDB cannot tell, e.g. `SELECT ?`).
  virtual Result<ipc::OwnedSchema> ParameterSchema() const = 0;

  // Binds `params` (exactly parameter_count() values) and runs the statement. The stream
  // must be destroyed before the session runs anything else.
  virtual Result<std::unique_ptr<BatchStream>> Execute(std::span<const Value> params,
                                                       const QueryOptions& options = {}) = 0;
};

// One connection to the database: the unit that runs one query at a time.
class Session {
 public:
  virtual ~Session() = default;

  // Prepares one read-only statement. Returns InvalidArgument for parse/bind errors and for
  // text with more than one statement, PermissionDenied for statements that are not queries
  // (COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, EXPORT, CREATE, DROP, INSERT, ...) and for
  // file access outside the allowed folders, NotFound for unknown tables.
  virtual Result<std::unique_ptr<PreparedStatement>> Prepare(std::string_view sql) = 0;

  // Prepare + Execute.
  virtual Result<std::unique_ptr<BatchStream>> Query(std::string_view sql,
                                                     std::span<const Value> params = {},
                                                     const QueryOptions& options = {}) = 0;

  // Prepares and runs one read-only query in which the table name `input` means the batches
  // of `input` (a temporary view on this session only, shadowing a catalog table of that
  // name; `memory.main.input` still names the catalog's). The user's SQL gains nothing else.
  // The input is pulled once, as the query needs it, on the thread DuckDB runs the scan on
  // (often the one calling the result's Next()), so a result batch may wait for the next
  // input batch; a query that names `input` twice fails with InvalidArgument. `input` must
  // outlive the returned stream. Cancel(), the timeout and dropping the stream call
  // input.Abort(), so a Next() blocked on a client wakes up. Errors: those of Query,
  // InvalidArgument for an input schema DuckDB cannot read, Cancelled / DeadlineExceeded
  // after a cancel / the timeout, and the input's own error when its Next() fails (as is).
  virtual Result<std::unique_ptr<BatchStream>> QueryWithInput(std::string_view sql,
                                                              InputStream& input,
                                                              const QueryOptions& options = {}) = 0;

  // Interrupts the running query; its stream then fails with Cancelled. With no query
  // running, the session's next query fails with Cancelled as soon as it starts (a caller
  // may cancel while another thread is still preparing). Thread-safe.
  virtual void Cancel() = 0;

  // Progress of the running query (nothing unless EngineOptions::progress). Thread-safe.
  virtual QueryProgress Progress() const = 0;
};

// Rows of a trusted query, every value rendered as text (nullopt = NULL). For small
// internal results (catalog metadata), not for user data.
struct TextTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// A column as DuckDB's DESCRIBE names it.
struct ColumnType {
  std::string name;
  std::string type;  // "BIGINT", "VARCHAR", "DECIMAL(10,2)", "STRUCT(a INTEGER)", ...

  bool operator==(const ColumnType&) const = default;
};

// How Database::WriteParquet encodes a file.
struct ParquetOptions {
  // Parquet files (inside the data or cache folder) whose rows are written before the
  // stream's: appending to a table rewrites its file as old rows + new rows. Their columns
  // (names and DuckDB types, in order) must equal the stream's, else InvalidArgument
  // "... differs ..." and nothing is written. A prefix file may be `path` itself.
  std::vector<std::filesystem::path> prefix_files;
  // Column compression: "zstd" (default), "snappy", "gzip", "lz4", "brotli" or "uncompressed".
  std::string compression = "zstd";
  // Rows per row group; 0 = DuckDB's default (122880).
  int64_t row_group_size = 0;
};

// The database: an in-memory DuckDB instance, locked down at Open.
class Database {
 public:
  virtual ~Database() = default;

  // Opens the database with external access limited to options.data_dir and
  // options.cache_dir, extension installing and auto-loading off, threads and memory limit
  // from `options`, progress reporting on, and the configuration locked. Returns NotFound if
  // data_dir does not exist, InvalidArgument for a bad setting.
  static Result<std::unique_ptr<Database>> Open(const EngineOptions& options);

  // Opens a new session. Returns ResourceExhausted when max_sessions sessions exist.
  // Thread-safe.
  virtual Result<std::unique_ptr<Session>> Connect() = 0;

  // Runs trusted SQL of Bridge's own (catalog views, demo data generation) on an internal
  // connection that may create objects and write inside the allowed folders. Never pass text
  // from a user. Thread-safe (calls are serialized).
  virtual Status ExecuteTrusted(std::string_view sql) = 0;
  virtual Result<TextTable> QueryTrusted(std::string_view sql) = 0;

  // Writes every batch of `source` to a Parquet file at `path` with DuckDB's writer, on the
  // internal connection (user SQL never reaches the source). `path` must lie inside the data
  // or cache folder and its parent folder must exist. The file appears complete or not at
  // all: it is written to a temporary name beside it, fsync'd, renamed over `path` (an
  // existing file is replaced atomically) and the folder fsync'd; on any error nothing is
  // left behind. Consumes `source` (it is at its end, or failed, afterwards); its Next() is
  // called from a DuckDB thread while this call blocks, so cancelling the source's session
  // stops the write. Thread-safe; writes are serialized with ExecuteTrusted/QueryTrusted.
  // Errors: PermissionDenied for a path outside the allowed folders, NotFound for a missing
  // parent folder, InvalidArgument for bad options or a schema DuckDB cannot read, the
  // source's own error if it fails (Cancelled, DeadlineExceeded, ...), IoError for file
  // system failures.
  virtual Status WriteParquet(BatchStream& source, const std::filesystem::path& path,
                              const ParquetOptions& parquet = {}) = 0;

  // Returns the columns (names and DuckDB types, as DESCRIBE and the catalog name them) of a
  // stream with `schema` read as a table. InvalidArgument for a schema DuckDB cannot read.
  // Thread-safe; serialized like WriteParquet.
  virtual Result<std::vector<ColumnType>> DescribeSchema(const ArrowSchema& schema) = 0;

  virtual const EngineOptions& options() const = 0;
};

// Returns DuckDB's library version ("v1.4.4").
std::string DuckDBVersion();

// Returns `name` quoted as an SQL identifier ("a""b").
std::string QuoteIdentifier(std::string_view name);
// Returns `text` quoted as an SQL string literal ('it''s').
std::string QuoteString(std::string_view text);

}  // namespace bridge::engine
