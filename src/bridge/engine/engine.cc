#include "bridge/engine/engine.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "bridge/arrow/concatenate.h"
#include "bridge/engine/duckdb_status_internal.h"
#include "bridge/engine/input_source_internal.h"
#include "bridge/engine/parquet_writer_internal.h"
#include "duckdb.h"
#include "spdlog/spdlog.h"

namespace bridge::engine {
namespace {

// Runs callbacks at deadlines on one background thread. A callback may ask to run again by
// returning its next time (it keeps its id). Cancel() returns only once the callback cannot
// run any more, so a callback may refer to objects the canceller owns. Callbacks run under
// the watch's lock: they must not call Schedule or Cancel.
class DeadlineWatch {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<std::optional<Clock::time_point>()>;

  DeadlineWatch() : thread_([this] { Run(); }) {}
  ~DeadlineWatch() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  uint64_t Schedule(Clock::time_point deadline, Callback callback) {
    std::lock_guard lock(mu_);
    uint64_t id = ++next_id_;
    entries_.emplace(std::make_pair(deadline, id), std::move(callback));
    cv_.notify_all();
    return id;
  }

  void Cancel(uint64_t id) {
    std::lock_guard lock(mu_);  // callbacks run under mu_, so none is running now
    std::erase_if(entries_, [id](const auto& e) { return e.first.second == id; });
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (entries_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = entries_.begin();
      // A copy: Cancel may erase the entry while this thread waits without the lock.
      const Clock::time_point when = first->first.first;
      if (Clock::now() < when) {
        cv_.wait_until(lock, when);
        continue;
      }
      auto node = entries_.extract(first);
      if (std::optional<Clock::time_point> next = node.mapped()()) {
        node.key().first = *next;
        entries_.insert(std::move(node));
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t next_id_ = 0;
  std::map<std::pair<Clock::time_point, uint64_t>, Callback> entries_;
  std::thread thread_;
};

enum class InterruptReason { kNone, kCancel, kDeadline };

std::string DirWithSlash(const std::filesystem::path& p) {
  std::string s = p.string();
  if (s.empty() || s.back() != '/') s += '/';
  return s;
}

// Column types and names for duckdb_to_arrow_schema. `owned_names` are names DuckDB
// allocated (duckdb_prepared_statement_column_name), freed with duckdb_free.
struct LogicalTypes {
  std::vector<duckdb_logical_type> types;
  std::vector<const char*> names;
  bool owned_names = false;
  ~LogicalTypes() {
    for (auto& t : types) duckdb_destroy_logical_type(&t);
    if (owned_names) {
      for (const char* n : names) duckdb_free(const_cast<char*>(n));
    }
  }
};

Result<ipc::OwnedSchema> MakeArrowSchema(duckdb_arrow_options options, LogicalTypes& columns) {
  ipc::OwnedSchema schema;
  duckdb_error_data error = duckdb_to_arrow_schema(
      options, columns.types.data(), columns.names.data(), columns.types.size(), schema.out());
  BRIDGE_RETURN_NOT_OK(internal::ConsumeErrorData(&error, "engine: result schema"));
  return schema;
}

class DatabaseImpl;
class SessionImpl;

class BatchStreamImpl final : public BatchStream {
 public:
  BatchStreamImpl(SessionImpl& session, duckdb_result result, uint64_t query_seq,
                  ipc::OwnedSchema schema)
      : session_(session),
        result_(result),
        query_seq_(query_seq),
        arrow_options_(duckdb_result_get_arrow_options(&result_)),
        schema_(std::move(schema)) {}
  ~BatchStreamImpl() override;

  const ArrowSchema& schema() const override { return *schema_; }
  Result<ipc::OwnedArray> Next() override;

 private:
  void Finish();

  SessionImpl& session_;
  duckdb_result result_;
  uint64_t query_seq_;
  duckdb_arrow_options arrow_options_;
  ipc::OwnedSchema schema_;
  bool finished_ = false;
};

// Coalesces the batches of another stream until a row or byte target is reached. The
// concatenation copies every byte once (the only copy on Bridge's side of the data path),
// which is why it is opt-in.
class CoalescingBatchStream final : public BatchStream {
 public:
  CoalescingBatchStream(std::unique_ptr<BatchStream> inner, int64_t target_rows,
                        int64_t target_bytes)
      : inner_(std::move(inner)), target_rows_(target_rows), target_bytes_(target_bytes) {}

  const ArrowSchema& schema() const override { return inner_->schema(); }

  Result<ipc::OwnedArray> Next() override {
    std::vector<ipc::OwnedArray> pending;
    int64_t rows = 0;
    int64_t bytes = 0;
    while ((target_rows_ <= 0 || rows < target_rows_) &&
           (target_bytes_ <= 0 || bytes < target_bytes_)) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray chunk, inner_->Next());
      if (!chunk.valid()) break;
      rows += chunk->length;
      if (target_bytes_ > 0) bytes += ipc::EstimateBytes(schema(), *chunk);
      pending.push_back(std::move(chunk));
    }
    if (pending.size() <= 1) {
      return pending.empty() ? ipc::OwnedArray() : std::move(pending.front());
    }
    std::vector<const ArrowArray*> inputs;
    inputs.reserve(pending.size());
    for (const auto& p : pending) inputs.push_back(p.get());
    return ipc::Concatenate(schema(), inputs);
  }

 private:
  std::unique_ptr<BatchStream> inner_;
  const int64_t target_rows_;
  const int64_t target_bytes_;
};

class PreparedStatementImpl final : public PreparedStatement {
 public:
  PreparedStatementImpl(SessionImpl& session, duckdb_prepared_statement stmt)
      : session_(session), stmt_(stmt) {}
  ~PreparedStatementImpl() override { duckdb_destroy_prepare(&stmt_); }

  size_t parameter_count() const override { return duckdb_nparams(stmt_); }
  Result<ipc::OwnedSchema> ResultSchema() const override;
  Result<ipc::OwnedSchema> ParameterSchema() const override;
  Result<std::unique_ptr<BatchStream>> Execute(std::span<const Value> params,
                                               const QueryOptions& options) override;

 private:
  Status Bind(std::span<const Value> params);

  SessionImpl& session_;
  duckdb_prepared_statement stmt_;
};

class SessionImpl final : public Session {
 public:
  SessionImpl(DatabaseImpl& db, duckdb_connection conn) : db_(db), conn_(conn) {}
  ~SessionImpl() override;

  Result<std::unique_ptr<PreparedStatement>> Prepare(std::string_view sql) override;
  Result<std::unique_ptr<BatchStream>> Query(std::string_view sql, std::span<const Value> params,
                                             const QueryOptions& options) override {
    BRIDGE_ASSIGN_OR_RETURN(auto stmt, Prepare(sql));
    // The stream does not need the statement once execution has started.
    return stmt->Execute(params, options);
  }

  Result<std::unique_ptr<BatchStream>> QueryWithInput(std::string_view sql, InputStream& input,
                                                      const QueryOptions& options) override;

  // Ends QueryWithInput's registration: drops the view and forgets the input.
  void EndInput(const std::string& token);

  void Cancel() override {
    uint64_t seq;
    {
      // With no query running, the next one is cancelled as soon as it begins: a caller
      // may cancel while another thread is still preparing or binding.
      std::lock_guard lock(mu_);
      if (!query_active_) {
        cancel_pending_ = true;
        return;
      }
      seq = query_seq_;
    }
    if (!Interrupt(InterruptReason::kCancel, seq)) return;
    // DuckDB forgets an interrupt that lands in the instant its query starts, so the
    // interrupt is repeated until the query has ended.
    uint64_t id = db_deadlines().Schedule(DeadlineWatch::Clock::now() + kReinterruptEvery,
                                          [this, seq] { return Reinterrupt(seq); });
    bool stale;
    {
      std::lock_guard lock(mu_);
      stale = !query_active_ || query_seq_ != seq || reinterrupt_id_ != 0;
      if (!stale) reinterrupt_id_ = id;
    }
    if (stale) db_deadlines().Cancel(id);
  }

  QueryProgress Progress() const override {
    std::lock_guard lock(mu_);
    QueryProgress progress;
    if (!query_active_) return progress;
    duckdb_query_progress_type p = duckdb_query_progress(conn_);
    progress.percentage = p.percentage;
    progress.rows_processed = p.rows_processed;
    progress.total_rows = p.total_rows_to_process;
    return progress;
  }

  duckdb_connection conn() const { return conn_; }

  // Marks a query as running (with a deadline if `timeout` > 0) and returns its number.
  uint64_t BeginQuery(std::chrono::milliseconds timeout);
  // Marks query `seq` as finished and drops its deadline.
  void EndQuery(uint64_t seq);
  // Maps a DuckDB error of query `seq`, telling cancellation from deadline.
  Status QueryError(duckdb_error_type type, std::string_view message) const {
    if (type == DUCKDB_ERROR_INTERRUPT) {
      return reason_.load() == InterruptReason::kDeadline
                 ? DeadlineExceeded("engine: query timed out")
                 : Cancelled("engine: query cancelled");
    }
    return internal::StatusFromDuckDB(type, message);
  }

  // The error of an interrupt that came before DuckDB started (or between two fetches):
  // DuckDB clears its interrupt flag when a query starts, so interrupts are remembered here
  // too and checked after starting and before every fetch. OK when none came.
  Status InterruptError() const {
    switch (reason_.load()) {
      case InterruptReason::kNone:
        return OkStatus();
      case InterruptReason::kDeadline:
        return DeadlineExceeded("engine: query timed out");
      case InterruptReason::kCancel:
        return Cancelled("engine: query cancelled");
    }
    return OkStatus();
  }

 private:
  static constexpr std::chrono::milliseconds kReinterruptEvery{20};

  DeadlineWatch& db_deadlines();

  // Interrupts query `seq` if it still runs; the first reason sticks. False when it has ended.
  bool Interrupt(InterruptReason reason, uint64_t seq) {
    std::lock_guard lock(mu_);
    if (!query_active_ || seq != query_seq_) return false;
    InterruptReason none = InterruptReason::kNone;
    reason_.compare_exchange_strong(none, reason);
    duckdb_interrupt(conn_);
    // DuckDB cannot interrupt a table function blocked in the input's Next().
    if (input_ != nullptr) input_->Abort();
    return true;
  }

  // A DeadlineWatch callback: interrupts query `seq` again, and again later while it runs.
  std::optional<DeadlineWatch::Clock::time_point> Reinterrupt(uint64_t seq) {
    if (!Interrupt(InterruptReason::kCancel, seq)) return std::nullopt;
    return DeadlineWatch::Clock::now() + kReinterruptEvery;
  }

  DatabaseImpl& db_;
  duckdb_connection conn_;
  mutable std::mutex mu_;  // guards the fields below and interrupt/progress calls
  bool query_active_ = false;
  uint64_t query_seq_ = 0;
  uint64_t deadline_id_ = 0;
  uint64_t reinterrupt_id_ = 0;
  bool cancel_pending_ = false;   // Cancel() came with no query running
  InputStream* input_ = nullptr;  // QueryWithInput's input while its query runs
  std::atomic<InterruptReason> reason_{InterruptReason::kNone};
};

class DatabaseImpl final : public Database {
 public:
  DatabaseImpl(EngineOptions options, duckdb_database db, duckdb_connection internal,
               std::vector<duckdb_connection> pool, std::unique_ptr<internal::InputRegistry> inputs)
      : options_(std::move(options)),
        db_(db),
        internal_(internal),
        inputs_(std::move(inputs)),
        free_(std::move(pool)) {}
  ~DatabaseImpl() override {
    for (auto& conn : free_) duckdb_disconnect(&conn);
    duckdb_disconnect(&internal_);
    duckdb_close(&db_);
  }

  Result<std::unique_ptr<Session>> Connect() override {
    std::lock_guard lock(pool_mu_);
    if (free_.empty()) {
      return ResourceExhausted("engine: all ", options_.max_sessions,
                               " sessions are in use; try again later");
    }
    duckdb_connection conn = free_.back();
    free_.pop_back();
    return std::unique_ptr<Session>(new SessionImpl(*this, conn));
  }

  void ReturnConnection(duckdb_connection conn) {
    std::lock_guard lock(pool_mu_);
    free_.push_back(conn);
  }

  Status ExecuteTrusted(std::string_view sql) override {
    BRIDGE_ASSIGN_OR_RETURN(TextTable ignored, QueryTrusted(sql));
    return OkStatus();
  }

  Result<TextTable> QueryTrusted(std::string_view sql) override {
    std::lock_guard lock(internal_mu_);
    return internal::RunTextQuery(internal_, sql);
  }

  Status WriteParquet(BatchStream& source, const std::filesystem::path& path,
                      const ParquetOptions& parquet) override {
    std::lock_guard lock(internal_mu_);
    return internal::WriteParquetLocked(internal_, options_, parquet_source_, source, path,
                                        parquet);
  }

  Result<std::vector<ColumnType>> DescribeSchema(const ArrowSchema& schema) override {
    std::lock_guard lock(internal_mu_);
    return internal::DescribeSchemaLocked(internal_, parquet_source_, schema);
  }

  const EngineOptions& options() const override { return options_; }
  DeadlineWatch& deadlines() { return deadlines_; }
  internal::InputRegistry& inputs() { return *inputs_; }

 private:
  EngineOptions options_;
  duckdb_database db_;
  std::mutex internal_mu_;
  duckdb_connection internal_;
  // State of WriteParquet's table function; outlives db_ (closed in the destructor body).
  internal::ParquetSourceHandle parquet_source_;
  // QueryWithInput's table function state; outlives db_ too.
  std::unique_ptr<internal::InputRegistry> inputs_;
  // Connections are made before the configuration is locked, because per-connection
  // settings (progress reporting) cannot be set afterwards.
  std::mutex pool_mu_;
  std::vector<duckdb_connection> free_;
  DeadlineWatch deadlines_;
};

SessionImpl::~SessionImpl() { db_.ReturnConnection(conn_); }

// QueryWithInput's result: the query's stream, which on its way out aborts the input (a
// DuckDB thread may be blocked in its Next), ends the query, then drops the `input` view.
class InputQueryStream final : public BatchStream {
 public:
  InputQueryStream(SessionImpl& session, std::unique_ptr<internal::InputEntry> entry,
                   std::string token, std::unique_ptr<BatchStream> inner)
      : session_(session),
        entry_(std::move(entry)),
        token_(std::move(token)),
        inner_(std::move(inner)) {}
  ~InputQueryStream() override {
    entry_->stream->Abort();
    inner_.reset();
    session_.EndInput(token_);
  }

  const ArrowSchema& schema() const override { return inner_->schema(); }

  Result<ipc::OwnedArray> Next() override {
    Result<ipc::OwnedArray> next = inner_->Next();
    if (next.ok()) return next;
    // A cancel or deadline also fails the input; report the reason, else the input's error.
    if (Status st = session_.InterruptError(); !st.ok()) return st;
    if (!entry_->error.ok()) return entry_->error;
    return next;
  }

 private:
  SessionImpl& session_;
  std::unique_ptr<internal::InputEntry> entry_;
  const std::string token_;
  std::unique_ptr<BatchStream> inner_;
};

Result<std::unique_ptr<BatchStream>> SessionImpl::QueryWithInput(std::string_view sql,
                                                                 InputStream& input,
                                                                 const QueryOptions& options) {
  BRIDGE_RETURN_NOT_OK(internal::CheckReadOnlyText(sql));
  auto entry = std::make_unique<internal::InputEntry>();
  entry->conn = conn_;
  entry->connection_id = internal::ConnectionId(conn_);
  entry->stream = &input;
  BRIDGE_RETURN_NOT_OK(entry->feeder.Prepare(conn_, input.schema()));
  std::string token = db_.inputs().Add(entry.get());
  // A temporary view: found before the catalog's tables, and only on this connection.
  auto created = internal::RunTextQuery(
      conn_, StrCat("CREATE OR REPLACE TEMP VIEW input AS SELECT * FROM ",
                    internal::kInputFunctionName, "(", QuoteString(token), ")"));
  if (!created.ok()) {
    EndInput(token);
    return WithContext(created.status(), "engine: creating the input view");
  }
  {
    std::lock_guard lock(mu_);
    input_ = &input;
  }
  Result<std::unique_ptr<BatchStream>> stream = Query(sql, {}, options);
  if (!stream.ok()) {
    input.Abort();
    // As in InputQueryStream::Next: the interrupt's reason first, then the input's error.
    Status st = InterruptError();
    if (st.ok()) st = entry->error.ok() ? stream.status() : entry->error;
    EndInput(token);
    return st;
  }
  return std::unique_ptr<BatchStream>(
      new InputQueryStream(*this, std::move(entry), std::move(token), std::move(stream).value()));
}

void SessionImpl::EndInput(const std::string& token) {
  {
    std::lock_guard lock(mu_);
    input_ = nullptr;
  }
  auto dropped = internal::RunTextQuery(conn_, "DROP VIEW IF EXISTS temp.input");
  if (!dropped.ok())
    spdlog::warn("engine: dropping the input view: {}", std::string(dropped.status().message()));
  db_.inputs().Remove(token);
}

DeadlineWatch& SessionImpl::db_deadlines() { return db_.deadlines(); }

uint64_t SessionImpl::BeginQuery(std::chrono::milliseconds timeout) {
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = ++query_seq_;
    query_active_ = true;
    reason_.store(std::exchange(cancel_pending_, false) ? InterruptReason::kCancel
                                                        : InterruptReason::kNone);
  }
  if (timeout.count() > 0) {
    // Repeats like Cancel's interrupt until the query has ended.
    uint64_t id =
        db_.deadlines().Schedule(DeadlineWatch::Clock::now() + timeout,
                                 [this, seq]() -> std::optional<DeadlineWatch::Clock::time_point> {
                                   if (!Interrupt(InterruptReason::kDeadline, seq))
                                     return std::nullopt;
                                   return DeadlineWatch::Clock::now() + kReinterruptEvery;
                                 });
    std::lock_guard lock(mu_);
    deadline_id_ = id;
  }
  return seq;
}

void SessionImpl::EndQuery(uint64_t seq) {
  uint64_t deadline_id = 0;
  uint64_t reinterrupt_id = 0;
  {
    std::lock_guard lock(mu_);
    if (seq != query_seq_ || !query_active_) return;
    query_active_ = false;
    deadline_id = std::exchange(deadline_id_, 0);
    reinterrupt_id = std::exchange(reinterrupt_id_, 0);
  }
  if (deadline_id != 0) db_.deadlines().Cancel(deadline_id);
  if (reinterrupt_id != 0) db_.deadlines().Cancel(reinterrupt_id);
}

Result<std::unique_ptr<PreparedStatement>> SessionImpl::Prepare(std::string_view sql) {
  // Checked before DuckDB sees the text: preparing some statements already has effects
  // (EXPORT DATABASE creates its folder while binding).
  BRIDGE_RETURN_NOT_OK(internal::CheckReadOnlyText(sql));
  std::string text(sql);
  duckdb_extracted_statements extracted = nullptr;
  idx_t count = duckdb_extract_statements(conn_, text.c_str(), &extracted);
  struct ExtractedGuard {
    duckdb_extracted_statements* s;
    ~ExtractedGuard() { duckdb_destroy_extracted(s); }
  } guard{&extracted};
  if (count == 0) {
    const char* error = duckdb_extract_statements_error(extracted);
    if (error != nullptr) return internal::StatusFromDuckDBMessage(error);
    return InvalidArgument("engine: the SQL text holds no statement");
  }
  if (count > 1) {
    return InvalidArgument("engine: expected one SQL statement, got ", count);
  }
  duckdb_prepared_statement stmt = nullptr;
  if (duckdb_prepare_extracted_statement(conn_, extracted, 0, &stmt) != DuckDBSuccess) {
    Status st = internal::StatusFromDuckDBMessage(duckdb_prepare_error(stmt));
    duckdb_destroy_prepare(&stmt);
    return st;
  }
  duckdb_statement_type type = duckdb_prepared_statement_type(stmt);
  if (type != DUCKDB_STATEMENT_TYPE_SELECT && type != DUCKDB_STATEMENT_TYPE_EXPLAIN) {
    duckdb_destroy_prepare(&stmt);
    return PermissionDenied("engine: only read-only queries may run; ",
                            internal::StatementTypeName(type), " statements are not allowed");
  }
  return std::unique_ptr<PreparedStatement>(new PreparedStatementImpl(*this, stmt));
}

Result<ipc::OwnedSchema> PreparedStatementImpl::ResultSchema() const {
  LogicalTypes columns;
  columns.owned_names = true;
  idx_t n = duckdb_prepared_statement_column_count(stmt_);
  for (idx_t i = 0; i < n; ++i) {
    columns.types.push_back(duckdb_prepared_statement_column_logical_type(stmt_, i));
    columns.names.push_back(duckdb_prepared_statement_column_name(stmt_, i));
  }
  duckdb_arrow_options options = nullptr;
  duckdb_connection_get_arrow_options(session_.conn(), &options);
  auto schema = MakeArrowSchema(options, columns);
  duckdb_destroy_arrow_options(&options);
  return schema;
}

Result<ipc::OwnedSchema> PreparedStatementImpl::ParameterSchema() const {
  LogicalTypes parameters;
  std::vector<std::string> names;
  const idx_t n = duckdb_nparams(stmt_);
  for (idx_t i = 1; i <= n; ++i) {
    duckdb_type id = duckdb_param_type(stmt_, i);
    parameters.types.push_back(id == DUCKDB_TYPE_INVALID || id == DUCKDB_TYPE_ANY
                                   ? duckdb_create_logical_type(DUCKDB_TYPE_SQLNULL)
                                   : duckdb_param_logical_type(stmt_, i));
    names.push_back(StrCat("parameter_", i));
  }
  for (const std::string& name : names) parameters.names.push_back(name.c_str());
  if (n == 0) {
    // duckdb_to_arrow_schema refuses zero columns: an empty struct, made here.
    ipc::OwnedSchema empty;
    ArrowSchema* out = empty.out();
    *out = ArrowSchema{};
    out->format = "+s";
    out->name = "";
    out->release = [](ArrowSchema* self) { self->release = nullptr; };
    return empty;
  }
  duckdb_arrow_options options = nullptr;
  duckdb_connection_get_arrow_options(session_.conn(), &options);
  auto schema = MakeArrowSchema(options, parameters);
  duckdb_destroy_arrow_options(&options);
  return schema;
}

Status PreparedStatementImpl::Bind(std::span<const Value> params) {
  size_t expected = parameter_count();
  if (params.size() != expected) {
    return InvalidArgument("engine: the statement takes ", expected, " parameter(s), got ",
                           params.size());
  }
  duckdb_clear_bindings(stmt_);
  for (size_t i = 0; i < params.size(); ++i) {
    idx_t index = i + 1;
    const Value& v = params[i];
    duckdb_state state = std::visit(
        [&](const auto& x) -> duckdb_state {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::monostate>) {
            return duckdb_bind_null(stmt_, index);
          } else if constexpr (std::is_same_v<T, bool>) {
            return duckdb_bind_boolean(stmt_, index, x);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            return duckdb_bind_int64(stmt_, index, x);
          } else if constexpr (std::is_same_v<T, double>) {
            return duckdb_bind_double(stmt_, index, x);
          } else if constexpr (std::is_same_v<T, std::string>) {
            return duckdb_bind_varchar_length(stmt_, index, x.data(), x.size());
          } else {
            return duckdb_bind_blob(stmt_, index, x.bytes.data(), x.bytes.size());
          }
        },
        v);
    if (state != DuckDBSuccess) {
      const char* error = duckdb_prepare_error(stmt_);
      return InvalidArgument("engine: cannot bind parameter ", index,
                             error != nullptr ? StrCat(": ", error) : std::string());
    }
  }
  return OkStatus();
}

Result<std::unique_ptr<BatchStream>> PreparedStatementImpl::Execute(std::span<const Value> params,
                                                                    const QueryOptions& options) {
  BRIDGE_RETURN_NOT_OK(Bind(params));
  uint64_t seq = session_.BeginQuery(options.timeout);
  // A Cancel() that came before the query began (it is pending): DuckDB never saw it.
  if (Status st = session_.InterruptError(); !st.ok()) {
    session_.EndQuery(seq);
    return st;
  }
  duckdb_result result;
  if (duckdb_execute_prepared_streaming(stmt_, &result) != DuckDBSuccess) {
    Status st =
        session_.QueryError(duckdb_result_error_type(&result), duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    session_.EndQuery(seq);
    return st;
  }
  if (Status st = session_.InterruptError(); !st.ok()) {
    duckdb_destroy_result(&result);
    session_.EndQuery(seq);
    return st;
  }
  LogicalTypes columns;
  idx_t n = duckdb_column_count(&result);
  for (idx_t i = 0; i < n; ++i) {
    columns.types.push_back(duckdb_column_logical_type(&result, i));
    columns.names.push_back(duckdb_column_name(&result, i));
  }
  duckdb_arrow_options arrow_options = duckdb_result_get_arrow_options(&result);
  auto schema = MakeArrowSchema(arrow_options, columns);
  duckdb_destroy_arrow_options(&arrow_options);
  if (!schema.ok()) {
    duckdb_destroy_result(&result);
    session_.EndQuery(seq);
    return schema.status();
  }
  std::unique_ptr<BatchStream> stream(
      new BatchStreamImpl(session_, result, seq, std::move(schema).value()));
  if (options.batch_rows > 0 || options.batch_bytes > 0) {
    stream = std::make_unique<CoalescingBatchStream>(std::move(stream), options.batch_rows,
                                                     options.batch_bytes);
  }
  return stream;
}

BatchStreamImpl::~BatchStreamImpl() {
  duckdb_destroy_arrow_options(&arrow_options_);
  duckdb_destroy_result(&result_);
  session_.EndQuery(query_seq_);
}

void BatchStreamImpl::Finish() {
  finished_ = true;
  session_.EndQuery(query_seq_);
}

Result<ipc::OwnedArray> BatchStreamImpl::Next() {
  while (!finished_) {
    if (Status st = session_.InterruptError(); !st.ok()) {
      Finish();
      return st;
    }
    duckdb_data_chunk chunk = duckdb_fetch_chunk(result_);
    if (chunk == nullptr) {
      const char* error = duckdb_result_error(&result_);
      if (error != nullptr) {
        Status st = session_.QueryError(duckdb_result_error_type(&result_), error);
        Finish();
        return st;
      }
      Finish();
      break;
    }
    if (duckdb_data_chunk_get_size(chunk) == 0) {
      duckdb_destroy_data_chunk(&chunk);
      continue;
    }
    ipc::OwnedArray array;
    duckdb_error_data error = duckdb_data_chunk_to_arrow(arrow_options_, chunk, array.out());
    duckdb_destroy_data_chunk(&chunk);
    Status st = internal::ConsumeErrorData(&error, "engine: converting a chunk to Arrow");
    if (!st.ok()) {
      Finish();
      return st;
    }
    return array;
  }
  return ipc::OwnedArray();
}

Status SetTrusted(duckdb_connection conn, const std::string& sql) {
  auto result = internal::RunTextQuery(conn, sql);
  return result.ok() ? OkStatus() : result.status();
}

}  // namespace

Result<std::unique_ptr<Database>> Database::Open(const EngineOptions& given) {
  EngineOptions options = given;
  std::error_code ec;
  if (!std::filesystem::is_directory(options.data_dir, ec)) {
    return NotFound("engine: data folder '", options.data_dir.string(), "' does not exist");
  }
  options.data_dir = std::filesystem::canonical(options.data_dir, ec);
  if (ec) return IoError("engine: data folder '", given.data_dir.string(), "': ", ec.message());
  if (!options.cache_dir.empty()) {
    std::filesystem::create_directories(options.cache_dir, ec);
    options.cache_dir = std::filesystem::canonical(options.cache_dir, ec);
    if (ec) {
      return IoError("engine: cache folder '", given.cache_dir.string(), "': ", ec.message());
    }
  }
  if (options.threads < 0) {
    return InvalidArgument("engine: threads must be >= 0, got ", options.threads);
  }
  if (options.max_sessions < 1 || options.max_sessions > 10000) {
    return InvalidArgument("engine: max_sessions must be in 1..10000, got ", options.max_sessions);
  }

  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) != DuckDBSuccess) {
    return Internal("engine: cannot create a DuckDB configuration");
  }
  std::vector<std::pair<std::string, std::string>> settings = {
      {"autoinstall_known_extensions", "false"},
      {"autoload_known_extensions", "false"},
      {"allow_community_extensions", "false"},
      {"allow_unsigned_extensions", "false"},
  };
  if (options.threads > 0) settings.emplace_back("threads", std::to_string(options.threads));
  if (!options.memory_limit.empty()) settings.emplace_back("memory_limit", options.memory_limit);
  for (const auto& [name, value] : settings) {
    if (duckdb_set_config(config, name.c_str(), value.c_str()) != DuckDBSuccess) {
      duckdb_destroy_config(&config);
      return InvalidArgument("engine: bad setting ", name, " = '", value, "'");
    }
  }
  duckdb_database db = nullptr;
  char* open_error = nullptr;
  duckdb_state state = duckdb_open_ext(nullptr, &db, config, &open_error);
  duckdb_destroy_config(&config);
  if (state != DuckDBSuccess) {
    Status st = InvalidArgument("engine: cannot open DuckDB: ",
                                open_error != nullptr ? open_error : "unknown error");
    duckdb_free(open_error);
    return st;
  }
  duckdb_connection internal = nullptr;
  if (duckdb_connect(db, &internal) != DuckDBSuccess) {
    duckdb_close(&db);
    return Internal("engine: cannot open the internal connection");
  }

  // Order matters: the allow-list is set while external access is still on, external
  // access is switched off after it, and the configuration is locked last.
  std::string allowed = "[" + QuoteString(DirWithSlash(options.data_dir));
  if (!options.cache_dir.empty()) allowed += ", " + QuoteString(DirWithSlash(options.cache_dir));
  allowed += "]";
  std::vector<std::string> statements = {};
  if (!options.cache_dir.empty()) {
    statements.push_back("SET GLOBAL temp_directory = " +
                         QuoteString((options.cache_dir / "duckdb-tmp").string()));
  }
  statements.push_back("SET GLOBAL allowed_directories = " + allowed);
  statements.push_back("SET GLOBAL enable_external_access = false");
  statements.push_back("SET GLOBAL lock_configuration = true");
  std::vector<duckdb_connection> pool;
  auto fail = [&](const Status& st) {
    for (auto& conn : pool) duckdb_disconnect(&conn);
    duckdb_disconnect(&internal);
    duckdb_close(&db);
    return WithContext(st, "engine: locking down the database");
  };
  for (int i = 0; i < options.max_sessions; ++i) {
    duckdb_connection conn = nullptr;
    if (duckdb_connect(db, &conn) != DuckDBSuccess) {
      return fail(Internal("cannot open connection ", i));
    }
    pool.push_back(conn);
    // One call per connection and one for the globals below, in order: every duckdb_query
    // costs ~0.5 ms here, and `bridge query` counts each (see the engine benchmark).
    if (options.progress) {
      Status st =
          SetTrusted(conn, "SET enable_progress_bar = true; SET enable_progress_bar_print = false");
      if (!st.ok()) return fail(st);
    }
  }
  std::string globals;
  for (const auto& sql : statements) globals += sql + ";\n";
  if (Status st = SetTrusted(internal, globals); !st.ok()) return fail(st);
  auto inputs = internal::InputRegistry::Create(internal);
  if (!inputs.ok()) return fail(inputs.status());
  spdlog::debug("engine: DuckDB {} open over {}", DuckDBVersion(), options.data_dir.string());
  return std::unique_ptr<Database>(new DatabaseImpl(std::move(options), db, internal,
                                                    std::move(pool), std::move(inputs).value()));
}

std::string DuckDBVersion() { return duckdb_library_version(); }

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string QuoteString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace bridge::engine
