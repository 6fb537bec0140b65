// DoPut: an uploaded Arrow stream ingested into a table (atomic Parquet in the data folder).
//
// The first FlightData carries the descriptor PATH [table], the Schema message and, in
// app_metadata, {"mode": "create" | "append" | "replace"} (default create). The batches are
// written with Database::WriteParquet (temporary hidden name, fsync, rename, fsync of the
// folder), then the catalog is refreshed, so the table is complete and visible when the call
// returns OK, and absent or unchanged when it fails.
#include <filesystem>

#include "bridge/flight/ingest_internal.h"
#include "nlohmann/json.hpp"

namespace bridge::flight {
namespace {

namespace fs = std::filesystem;

std::string FoldCase(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Holds the upload's table name so that a second upload of the same table is refused while
// this one runs.
class TableClaim {
 public:
  static Result<TableClaim> Make(ServerState& state, std::string_view name) {
    std::string key = FoldCase(name);
    std::lock_guard lock(state.ingest_tables_mu);
    auto& tables = state.ingest_tables;
    if (std::find(tables.begin(), tables.end(), key) != tables.end()) {
      return FailedPrecondition("flight: DoPut: table '", std::string(name),
                                "' is being written by another upload; try again later");
    }
    tables.push_back(key);
    return TableClaim(state, std::move(key));
  }
  TableClaim(TableClaim&& other) noexcept : state_(other.state_), key_(std::move(other.key_)) {
    other.state_ = nullptr;
  }
  TableClaim& operator=(TableClaim&&) = delete;
  ~TableClaim() {
    if (state_ == nullptr) return;
    std::lock_guard lock(state_->ingest_tables_mu);
    std::erase(state_->ingest_tables, key_);
  }

 private:
  TableClaim(ServerState& state, std::string key) : state_(&state), key_(std::move(key)) {}
  ServerState* state_;
  std::string key_;
};

std::string_view ModeName(PutMode mode) {
  switch (mode) {
    case PutMode::kCreate:
      return "create";
    case PutMode::kAppend:
      return "append";
    case PutMode::kReplace:
      return "replace";
  }
  return "create";
}

bool IsParquetFile(const fs::path& path) {
  std::error_code ec;
  std::string ext = FoldCase(path.extension().string());
  return ext == ".parquet" && fs::symlink_status(path, ec).type() == fs::file_type::regular;
}

// "name TYPE, name TYPE, ..." of catalog::ColumnInfo or engine::ColumnType columns.
template <typename Column>
std::string ColumnsText(const std::vector<Column>& columns) {
  std::string out;
  for (const auto& c : columns) out += StrCat(out.empty() ? "" : ", ", c.name, " ", c.type);
  return out;
}

// Where and how an upload is written.
struct PutTarget {
  fs::path path;
  engine::ParquetOptions parquet;
};

// Decides the file an upload of `name` in `mode` writes, or why it may not.
Result<PutTarget> ResolveTarget(ServerState& state, const std::string& name, PutMode mode,
                                UploadStream& upload) {
  const fs::path& data_dir = state.services.db->options().data_dir;
  std::optional<catalog::TableInfo> table = state.services.catalog->Table(name);
  PutTarget target;
  target.path = data_dir / (name + ".parquet");
  std::error_code ec;
  switch (mode) {
    case PutMode::kCreate:
      if (table || fs::exists(fs::symlink_status(target.path, ec))) {
        return AlreadyExists("flight: DoPut: table '", name,
                             "' already exists (use {\"mode\": \"append\"} or \"replace\")");
      }
      return target;
    case PutMode::kReplace:
      if (!table) return target;
      if (table->format != "parquet" || table->file_count != 1 ||
          !IsParquetFile(data_dir / table->path)) {
        return FailedPrecondition("flight: DoPut: table '", table->name,
                                  "' is not a single Parquet file (", table->path.string(),
                                  "); only such tables can be replaced");
      }
      target.path = data_dir / table->path;
      return target;
    case PutMode::kAppend: {
      if (!table) return NotFound("flight: DoPut: table '", name, "' does not exist");
      if (!table->error.empty()) {
        return FailedPrecondition("flight: DoPut: table '", table->name,
                                  "' is broken: ", table->error);
      }
      BRIDGE_ASSIGN_OR_RETURN(std::vector<engine::ColumnType> uploaded,
                              state.services.db->DescribeSchema(upload.schema()));
      bool same = uploaded.size() == table->columns.size();
      for (size_t i = 0; same && i < uploaded.size(); ++i) {
        same = uploaded[i].name == table->columns[i].name &&
               uploaded[i].type == table->columns[i].type;
      }
      if (!same) {
        return InvalidArgument("flight: DoPut: the uploaded schema (", ColumnsText(uploaded),
                               ") differs from table '", table->name, "' (",
                               ColumnsText(table->columns), ")");
      }
      fs::path existing = data_dir / table->path;
      if (table->format == "parquet" && table->file_count == 1 && IsParquetFile(existing)) {
        // Old rows + new rows into a new file that replaces the old one.
        target.path = existing;
        target.parquet.prefix_files = {existing};
        return target;
      }
      if (table->format == "parquet" &&
          fs::symlink_status(existing, ec).type() == fs::file_type::directory) {
        // A folder table gains a part file.
        std::string id = StrCat(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
                .count());
        target.path =
            existing / StrCat("part-", id, "-", state.ingest_part_counter.fetch_add(1), ".parquet");
        return target;
      }
      return FailedPrecondition("flight: DoPut: table '", table->name, "' (", table->path.string(),
                                ") is not Parquet; only Parquet tables can be appended to");
    }
  }
  return Internal("flight: DoPut: unknown mode");
}

// A CommandHandler's upload that it reads itself (e.g. bound parameters): one PutResult.
Status ConsumeUpload(ServerState& state, UploadCall& call, DecodedFlightData first,
                     const PutPlan& plan) {
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<UploadStream> upload,
                          UploadStream::Open(state, call, std::move(first)));
  upload->set_confirm_end(true);
  BRIDGE_ASSIGN_OR_RETURN(std::string metadata, plan.consume(*upload));
  return call.Write(MakePutResult(metadata));
}

PutMode ModeOf(PutPlan::Mode mode) {
  switch (mode) {
    case PutPlan::Mode::kAppend:
      return PutMode::kAppend;
    case PutPlan::Mode::kReplace:
      return PutMode::kReplace;
    case PutPlan::Mode::kCreate:
      break;
  }
  return PutMode::kCreate;
}

Status RunDoPut(ServerState& state, UploadCall& call, const auth::Principal& principal) {
  BRIDGE_ASSIGN_OR_RETURN(std::optional<grpc::ByteBuffer> first_buffer, call.Read());
  if (!first_buffer) return InvalidArgument("flight: DoPut: the client sent no FlightData");
  BRIDGE_ASSIGN_OR_RETURN(DecodedFlightData first, DecodeFlightData(*first_buffer));
  first_buffer.reset();
  state.body_bytes_received.fetch_add(static_cast<int64_t>(first.body.size()),
                                      std::memory_order_relaxed);
  state.body_bytes_received_copied.fetch_add(first.body_bytes_copied, std::memory_order_relaxed);
  std::string name;
  PutMode mode = PutMode::kCreate;
  std::function<std::string(int64_t)> ingested;  // a command's final PutResult
  if (CommandHandler* handler = first.descriptor ? HandlerOf(state, *first.descriptor) : nullptr) {
    BRIDGE_ASSIGN_OR_RETURN(
        PutPlan plan,
        handler->PlanPut(first.descriptor->cmd(), MakeCommandCall(&call.context(), principal)));
    if (plan.kind == PutPlan::Kind::kConsume) {
      return ConsumeUpload(state, call, std::move(first), plan);
    }
    name = plan.table;
    mode = ModeOf(plan.mode);
    ingested = std::move(plan.ingested);
  } else {
    if (!first.descriptor || first.descriptor->type() != protocol::FlightDescriptor::PATH ||
        first.descriptor->path_size() != 1) {
      return InvalidArgument("flight: DoPut: the first FlightData needs a descriptor PATH [table]");
    }
    name = first.descriptor->path(0);
    BRIDGE_ASSIGN_OR_RETURN(mode, ParsePutMode(first.app_metadata));
  }
  BRIDGE_RETURN_NOT_OK(state.Authorize(call.context(), auth::kIngest).status());
  BRIDGE_RETURN_NOT_OK(ValidateTableName(name));
  BRIDGE_ASSIGN_OR_RETURN(TableClaim claim, TableClaim::Make(state, name));
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<UploadStream> upload,
                          UploadStream::Open(state, call, std::move(first)));
  upload->set_confirm_end(true);  // a cancel must never commit what arrived before it
  BRIDGE_ASSIGN_OR_RETURN(PutTarget target, ResolveTarget(state, name, mode, *upload));
  upload->set_on_consumed([&call](int64_t rows) {
    call.TryWrite(MakePutResult(nlohmann::json{{"rows", rows}}.dump()));
  });
  BRIDGE_RETURN_NOT_OK(state.services.db->WriteParquet(*upload, target.path, target.parquet));
  state.rows_ingested.fetch_add(upload->rows(), std::memory_order_relaxed);
  BRIDGE_RETURN_NOT_OK(state.services.catalog->Refresh().status());
  if (ingested) return call.Write(MakePutResult(ingested(upload->rows())));
  nlohmann::json done = {{"rows", upload->rows()},
                         {"table", name},
                         {"mode", std::string(ModeName(mode))},
                         {"committed", true}};
  return call.Write(MakePutResult(done.dump()));
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewDoPut(
    ServerState& state, grpc::CallbackServerContext* ctx) {
  // Reading is checked here; writing a table (ingest) once the descriptor says what the upload
  // is (a Flight SQL command may only bind parameters).
  Result<auth::Principal> principal = state.Authorize(*ctx);
  if (!principal.ok()) {
    return new FailedBidi<grpc::ByteBuffer, grpc::ByteBuffer>(ToGrpcStatus(principal.status()));
  }
  return UploadCall::Start(state, ctx, [&state, principal = *principal](UploadCall& call) {
    return RunDoPut(state, call, principal);
  });
}

}  // namespace bridge::flight
