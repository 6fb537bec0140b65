// Plans: what a descriptor means (ServerState::PlanDescriptor), the FlightInfo handed out
// for it (ServerState::MakeFlightInfo: one endpoint, or several that split a table scan
// exactly), and PollFlightInfo.
#include <openssl/rand.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "bridge/flight/server_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::flight {
namespace {

using Json = nlohmann::json;

// Without options.endpoints, a plan is split only into endpoints of at least this many
// rows (Parquet) or bytes (other formats).
constexpr int64_t kMinEndpointRows = 100'000;
constexpr int64_t kMinEndpointBytes = 16 << 20;
// A table of more files keeps its glob in the endpoints' SQL instead of the file list.
constexpr size_t kMaxListedFiles = 1000;
// How long a PollFlightInfo waits for its query before answering "still running".
constexpr std::chrono::milliseconds kFirstPollWait{200};
constexpr std::chrono::milliseconds kNextPollWait{100};
constexpr std::string_view kPollPrefix = "bridge:poll:";

uint64_t RandomId() {
  uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof(id)) != 1) {
    id = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  }
  return id == 0 ? 1 : id;
}

std::string RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    uint64_t fallback = RandomId();
    std::memcpy(raw.data(), &fallback, std::min<size_t>(raw.size(), sizeof(fallback)));
  }
  std::string out;
  char digits[3];
  for (unsigned char c : raw) {
    std::snprintf(digits, sizeof(digits), "%02x", c);
    out += digits;
  }
  return out;
}

int64_t UnixSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// How a table's rows are read: the view's reader call split around its path argument, and
// the files it reads in the order DuckDB reads them.
struct TableScan {
  std::string function;  // "read_parquet(" ... up to the path argument
  std::string options;   // ", union_by_name = ...)" after it
  std::string argument;  // the path argument as written in the view
  bool parquet = false;
  std::vector<std::string> files;
  std::vector<int64_t> weights;                        // rows (Parquet) or bytes per file
  std::vector<std::vector<int64_t>> row_group_starts;  // Parquet: first row of each group

  // The reader call with an explicit list of the planned files (so that files added later
  // neither join an endpoint nor change the columns), or the view's own argument for
  // tables of very many files.
  std::string Call() const {
    if (files.size() > kMaxListedFiles) return function + argument + options;
    std::string list = "[";
    for (size_t i = 0; i < files.size(); ++i) {
      list += (i == 0 ? "" : ", ") + engine::QuoteString(files[i]);
    }
    return function + list + "]" + options;
  }
};

// Returns the end of the SQL string literal or list starting at `text[begin]`, or npos.
size_t EndOfArgument(std::string_view text, size_t begin) {
  int depth = 0;
  bool quoted = false;
  for (size_t i = begin; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\'') {
        if (i + 1 < text.size() && text[i + 1] == '\'') {
          ++i;
        } else {
          quoted = false;
          if (depth == 0) return i + 1;
        }
      }
      continue;
    }
    if (c == '\'') {
      quoted = true;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']') {
      if (--depth == 0) return i + 1;
    } else if (depth == 0) {
      return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

// Reads the view of `table` back from DuckDB ("CREATE VIEW t AS SELECT * FROM read_x(arg,
// options);") and lists its files with their row groups (Parquet) or sizes.
Result<TableScan> ScanTable(engine::Database& db, const catalog::TableInfo& table) {
  BRIDGE_ASSIGN_OR_RETURN(
      engine::TextTable views,
      db.QueryTrusted(StrCat("SELECT sql FROM duckdb_views() WHERE view_name = ",
                             engine::QuoteString(table.name))));
  if (views.rows.size() != 1 || views.rows[0].empty() || !views.rows[0][0]) {
    return NotFound("flight: no view for table '", table.name, "'");
  }
  std::string_view sql = *views.rows[0][0];
  constexpr std::string_view kSelect = " AS SELECT * FROM ";
  size_t at = sql.find(kSelect);
  if (at == std::string_view::npos) return Unimplemented("flight: unexpected view shape");
  std::string_view call = sql.substr(at + kSelect.size());
  while (!call.empty() && (call.back() == ';' || call.back() == ' ' || call.back() == '\n')) {
    call.remove_suffix(1);
  }
  TableScan scan;
  size_t open = call.find('(');
  if (open == std::string_view::npos || call.back() != ')') {
    return Unimplemented("flight: unexpected reader call");
  }
  std::string_view name = call.substr(0, open);
  if (name != "read_parquet" && name != "read_csv" && name != "read_json") {
    return Unimplemented("flight: unexpected reader ", name);
  }
  scan.parquet = name == "read_parquet";
  size_t end = EndOfArgument(call, open + 1);
  if (end == std::string_view::npos) return Unimplemented("flight: unexpected reader argument");
  scan.function = std::string(call.substr(0, open + 1));
  scan.argument = std::string(call.substr(open + 1, end - open - 1));
  scan.options = std::string(call.substr(end));

  if (scan.parquet) {
    // One row per column chunk; column 0 exists in every row group. The table function
    // reports files in the order the reader reads them.
    BRIDGE_ASSIGN_OR_RETURN(
        engine::TextTable groups,
        db.QueryTrusted(StrCat("SELECT file_name, row_group_num_rows FROM parquet_metadata(",
                               scan.argument, ") WHERE column_id = 0")));
    for (const auto& row : groups.rows) {
      if (row.size() != 2 || !row[0] || !row[1]) return Internal("flight: bad parquet metadata");
      if (scan.files.empty() || scan.files.back() != *row[0]) {
        scan.files.push_back(*row[0]);
        scan.weights.push_back(0);
        scan.row_group_starts.emplace_back();
      }
      scan.row_group_starts.back().push_back(scan.weights.back());
      scan.weights.back() += std::stoll(*row[1]);
    }
  } else {
    // read_blob reads no content when only its name and size are asked for.
    BRIDGE_ASSIGN_OR_RETURN(
        engine::TextTable files,
        db.QueryTrusted(StrCat("SELECT filename, size FROM read_blob(", scan.argument, ")")));
    for (const auto& row : files.rows) {
      if (row.size() != 2 || !row[0] || !row[1]) return Internal("flight: bad file list");
      scan.files.push_back(*row[0]);
      scan.weights.push_back(std::stoll(*row[1]));
    }
  }
  return scan;
}

// Splits `scan` into at most about `n` predicates over the reader's `filename` and
// `file_row_number` virtual columns that together select every row exactly once:
// with at least n files, contiguous groups of whole files (`filename IN (...)`); with
// fewer, each file gets endpoints in proportion to its weight, each a contiguous range of
// its row groups (`filename = f AND file_row_number >= a AND file_row_number < b`; the first
// range has no lower and the last no upper bound). Both shapes are pushed into the scan by
// DuckDB (files and row groups outside the predicate are skipped). The predicates are in
// file order, each a contiguous run of it.
std::vector<std::string> SplitScan(const TableScan& scan, int n) {
  std::vector<std::string> out;
  const size_t files = scan.files.size();
  int64_t total = 0;
  for (int64_t w : scan.weights) total += w;
  if (files == 0 || n < 2) return out;
  auto quoted = [&](size_t f) { return engine::QuoteString(scan.files[f]); };
  if (files >= static_cast<size_t>(n)) {
    std::vector<std::vector<size_t>> groups(static_cast<size_t>(n));
    int64_t before = 0;
    for (size_t f = 0; f < files; ++f) {
      // The group of a file is where its middle falls; an empty weight counts as one.
      int64_t middle = total > 0 ? before + scan.weights[f] / 2 : static_cast<int64_t>(f);
      int64_t of = total > 0 ? total : static_cast<int64_t>(files);
      size_t g =
          static_cast<size_t>(std::min<int64_t>(n - 1, middle * n / std::max<int64_t>(of, 1)));
      groups[g].push_back(f);
      before += scan.weights[f];
    }
    for (const auto& group : groups) {
      if (group.empty()) continue;
      std::string list;
      for (size_t f : group) list += (list.empty() ? "" : ", ") + quoted(f);
      out.push_back(group.size() == 1 ? StrCat("filename = ", list)
                                      : StrCat("filename IN (", list, ")"));
    }
    return out;
  }
  for (size_t f = 0; f < files; ++f) {
    int64_t share = total > 0 ? (scan.weights[f] * n + total / 2) / total : 1;
    size_t groups = scan.parquet ? scan.row_group_starts[f].size() : 1;
    size_t k = static_cast<size_t>(std::clamp<int64_t>(share, 1, static_cast<int64_t>(groups)));
    if (k <= 1) {
      out.push_back(StrCat("filename = ", quoted(f)));
      continue;
    }
    // Range j starts at the first row group whose start reaches j/k of the file's rows.
    const std::vector<int64_t>& starts = scan.row_group_starts[f];
    std::vector<int64_t> cuts;  // first row of ranges 1..k-1
    size_t next_group = 1;
    for (size_t j = 1; j < k; ++j) {
      int64_t target = scan.weights[f] * static_cast<int64_t>(j) / static_cast<int64_t>(k);
      while (next_group < starts.size() && starts[next_group] < target) ++next_group;
      if (next_group >= starts.size()) break;
      if (cuts.empty() || cuts.back() < starts[next_group]) cuts.push_back(starts[next_group]);
    }
    for (size_t j = 0; j <= cuts.size(); ++j) {
      std::string range = StrCat("filename = ", quoted(f));
      if (j > 0) range += StrCat(" AND file_row_number >= ", cuts[j - 1]);
      if (j < cuts.size()) range += StrCat(" AND file_row_number < ", cuts[j]);
      out.push_back(std::move(range));
    }
  }
  return out;
}

// Returns true when every expression in `node` is row-wise: column references, constants,
// operators, casts, CASE, lambdas and scalar functions — no aggregates, windows or
// subqueries.
bool RowWise(const Json& node, const std::vector<std::string>& scalar_functions) {
  if (node.is_array()) {
    for (const Json& item : node) {
      if (!RowWise(item, scalar_functions)) return false;
    }
    return true;
  }
  if (!node.is_object()) return true;
  auto cls = node.find("class");
  if (cls != node.end()) {
    static const std::vector<std::string> kAllowed = {
        "BETWEEN",     "CASE",     "CAST",     "COLLATE", "COLUMN_REF", "COMPARISON",
        "CONJUNCTION", "CONSTANT", "FUNCTION", "LAMBDA",  "OPERATOR",   "STAR"};
    if (!cls->is_string() ||
        std::find(kAllowed.begin(), kAllowed.end(), cls->get<std::string>()) == kAllowed.end()) {
      return false;
    }
    if (cls->get<std::string>() == "FUNCTION") {
      const Json& name = node.value("function_name", Json());
      if (!name.is_string() || !node.value("schema", std::string()).empty() ||
          !node.value("catalog", std::string()).empty() ||
          !std::binary_search(scalar_functions.begin(), scalar_functions.end(),
                              name.get<std::string>())) {
        return false;
      }
    }
  }
  for (const auto& [key, value] : node.items()) {
    if (!RowWise(value, scalar_functions)) return false;
  }
  return true;
}

bool IsEmpty(const Json& node, const char* key) {
  auto it = node.find(key);
  return it == node.end() || it->is_null() || (it->is_array() && it->empty()) ||
         (it->is_object() && it->empty());
}

// Returns the table name (as written) when `sql` is one SELECT over one catalog table whose
// rows map to result rows one by one: no CTE, join, GROUP BY, HAVING, QUALIFY, window,
// aggregate, subquery, DISTINCT, ORDER BY, LIMIT or SAMPLE. Such a query over a split of
// the table's rows returns a split of its result. nullopt otherwise.
std::optional<std::string> SplittableTable(engine::Session& session, const std::string& sql,
                                           const std::vector<std::string>& scalar_functions) {
  engine::Value text = sql;
  Result<std::unique_ptr<engine::BatchStream>> stream =
      session.Query("SELECT json_serialize_sql($1::VARCHAR)::VARCHAR", std::span(&text, 1));
  if (!stream.ok()) return std::nullopt;
  Result<ipc::OwnedArray> batch = (*stream)->Next();
  if (!batch.ok() || !batch->valid() || (*batch)->length != 1) return std::nullopt;
  const ArrowArray& column = *(*batch)->children[0];
  if (std::string_view((*stream)->schema().children[0]->format) != "u" || column.null_count != 0) {
    return std::nullopt;
  }
  const auto* offsets = static_cast<const int32_t*>(column.buffers[1]);
  const char* data = static_cast<const char*>(column.buffers[2]);
  int64_t row = column.offset;
  std::string serialized(data + offsets[row], static_cast<size_t>(offsets[row + 1] - offsets[row]));
  Json parsed = Json::parse(serialized, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || parsed.value("error", true)) return std::nullopt;
  const Json& statements = parsed["statements"];
  if (!statements.is_array() || statements.size() != 1) return std::nullopt;
  const Json& node = statements[0].value("node", Json());
  if (!node.is_object() || node.value("type", "") != "SELECT_NODE") return std::nullopt;
  if (!IsEmpty(node, "modifiers") || !IsEmpty(node, "group_expressions") ||
      !IsEmpty(node, "group_sets") || !IsEmpty(node, "having") || !IsEmpty(node, "qualify") ||
      !IsEmpty(node, "sample") || node.value("aggregate_handling", "") != "STANDARD_HANDLING" ||
      !IsEmpty(statements[0], "named_param_map")) {
    return std::nullopt;
  }
  const Json& ctes = node.value("cte_map", Json());
  if (!ctes.is_object() || !IsEmpty(ctes, "map")) return std::nullopt;
  const Json& from = node.value("from_table", Json());
  if (!from.is_object() || from.value("type", "") != "BASE_TABLE" ||
      !from.value("schema_name", std::string()).empty() ||
      !from.value("catalog_name", std::string()).empty() || !IsEmpty(from, "at_clause") ||
      !IsEmpty(from, "sample") || !from["table_name"].is_string()) {
    return std::nullopt;
  }
  if (!RowWise(node.value("select_list", Json()), scalar_functions) ||
      !RowWise(node.value("where_clause", Json()), scalar_functions)) {
    return std::nullopt;
  }
  return from["table_name"].get<std::string>();
}

bool HasVirtualColumnName(const catalog::TableInfo& table) {
  for (const catalog::ColumnInfo& column : table.columns) {
    if (StartsWithNoCase(column.name, "filename") && column.name.size() == 8) return true;
    if (StartsWithNoCase(column.name, "file_row_number") && column.name.size() == 15) return true;
  }
  return false;
}

// A split of one plan: the SQL of each endpoint and the table it partitions.
struct Split {
  std::vector<std::string> sql;
  std::string table;
  uint64_t table_version = 0;
};

}  // namespace

Result<Plan> ServerState::PlanDescriptor(const protocol::FlightDescriptor& descriptor,
                                         engine::Session& session) const {
  Plan plan;
  switch (descriptor.type()) {
    case protocol::FlightDescriptor::PATH: {
      if (descriptor.path_size() != 1) {
        return InvalidArgument("flight: a PATH descriptor names one table, got ",
                               descriptor.path_size(), " path elements");
      }
      const std::string& name = descriptor.path(0);
      std::optional<catalog::TableInfo> table = services.catalog->Table(name);
      if (!table) return NotFound("flight: no table '", name, "'");
      if (!table->error.empty()) {
        return FailedPrecondition("flight: table '", table->name, "' is broken: ", table->error);
      }
      plan.sql = StrCat("SELECT * FROM ", engine::QuoteIdentifier(table->name));
      if (table->format == "parquet" && table->rows) plan.total_records = *table->rows;
      break;
    }
    case protocol::FlightDescriptor::CMD:
      plan.sql = descriptor.cmd();
      if (plan.sql.empty()) return InvalidArgument("flight: a CMD descriptor needs SQL text");
      if (plan.sql.starts_with(kPollPrefix)) {
        return InvalidArgument("flight: a poll descriptor is only valid for PollFlightInfo");
      }
      if (HandlerOf(*this, descriptor) != nullptr) {
        // GetFlightInfo and GetSchema hand these to the handler; the other RPCs do not take them.
        return InvalidArgument(
            "flight: this command (a Flight SQL message) is for GetFlightInfo, "
            "GetSchema and DoPut");
      }
      break;
    default:
      return InvalidArgument("flight: descriptor type must be PATH or CMD");
  }
  BRIDGE_ASSIGN_OR_RETURN(auto prepared, session.Prepare(plan.sql));
  if (prepared->parameter_count() != 0) {
    return InvalidArgument("flight: the query takes ", prepared->parameter_count(),
                           " parameters; Flight commands cannot bind parameters");
  }
  BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema schema, prepared->ResultSchema());
  BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage message, ipc::EncodeSchemaMessage(*schema));
  plan.schema_message = std::move(message.metadata);
  return plan;
}

namespace {

// Returns the split of `plan` into endpoints, or an empty split (one endpoint) when the
// plan is small, cannot be split exactly, or anything on the way fails.
Split SplitPlan(const ServerState& state, const protocol::FlightDescriptor& descriptor,
                const Plan& plan) {
  Split split;
  int n = state.options.endpoints;
  const bool explicit_count = n > 0;
  if (n == 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n < 2) return split;

  Result<std::unique_ptr<engine::Session>> session = state.services.db->Connect();
  if (!session.ok()) return split;
  std::string table_name;  // as the query writes it
  if (descriptor.type() == protocol::FlightDescriptor::PATH) {
    table_name = descriptor.path(0);
  } else {
    std::vector<std::string> functions;
    {
      std::lock_guard<std::mutex> lock(state.functions_mu);
      if (!state.scalar_functions) {
        Result<engine::TextTable> names = state.services.db->QueryTrusted(
            "SELECT function_name FROM duckdb_functions() GROUP BY function_name "
            "HAVING bool_and(function_type = 'scalar') ORDER BY function_name COLLATE C");
        if (!names.ok()) return split;
        std::vector<std::string> list;
        for (const auto& row : names->rows) {
          if (!row.empty() && row[0]) list.push_back(*row[0]);
        }
        std::sort(list.begin(), list.end());
        state.scalar_functions = std::move(list);
      }
      functions = *state.scalar_functions;
    }
    std::optional<std::string> name = SplittableTable(**session, plan.sql, functions);
    if (!name) return split;
    table_name = *name;
  }
  std::optional<catalog::TableInfo> table = state.services.catalog->Table(table_name);
  if (!table || !table->error.empty() || table->columns.empty() || HasVirtualColumnName(*table)) {
    return split;
  }
  Result<TableScan> scan = ScanTable(*state.services.db, *table);
  if (!scan.ok()) {
    spdlog::debug("flight: table '{}' is not split: {}", table->name,
                  std::string(scan.status().message()));
    return split;
  }
  if (!explicit_count) {
    int64_t total = 0;
    for (int64_t w : scan->weights) total += w;
    int64_t most = total / (scan->parquet ? kMinEndpointRows : kMinEndpointBytes);
    n = static_cast<int>(std::min<int64_t>(n, most));
  }
  std::vector<std::string> predicates = SplitScan(*scan, n);
  if (predicates.size() < 2) return split;

  std::string call = scan->Call();
  for (const std::string& predicate : predicates) {
    std::string part = StrCat("SELECT * FROM ", call, " WHERE ", predicate);
    if (descriptor.type() == protocol::FlightDescriptor::PATH) {
      split.sql.push_back(std::move(part));
    } else {
      // The CTE shadows the table's view for this query only.
      split.sql.push_back(StrCat("WITH ", engine::QuoteIdentifier(table_name),
                                 " AS NOT MATERIALIZED (", part, ") ", plan.sql));
    }
  }
  // Every endpoint reads the same files with the same options, so one check of the schema
  // covers them all: it must be the plan's.
  Result<std::unique_ptr<engine::PreparedStatement>> prepared = (*session)->Prepare(split.sql[0]);
  Result<ipc::OwnedSchema> schema =
      prepared.ok() ? (*prepared)->ResultSchema() : Result<ipc::OwnedSchema>(prepared.status());
  Result<ipc::EncodedMessage> message = schema.ok() ? ipc::EncodeSchemaMessage(**schema)
                                                    : Result<ipc::EncodedMessage>(schema.status());
  if (!message.ok() || message->metadata != plan.schema_message) {
    spdlog::debug("flight: plan of '{}' is not split: the endpoint schema differs ({})",
                  table->name,
                  message.ok() ? "other columns" : std::string(message.status().message()));
    split.sql.clear();
    return split;
  }
  split.table = table->name;
  split.table_version = table->version;
  return split;
}

}  // namespace

protocol::FlightInfo ServerState::MakeFlightInfo(const protocol::FlightDescriptor& descriptor,
                                                 Plan plan) const {
  Split split = SplitPlan(*this, descriptor, plan);
  protocol::FlightInfo info;
  info.set_schema(std::move(plan.schema_message));
  *info.mutable_flight_descriptor() = descriptor;
  int64_t expiry_seconds = UnixSeconds(Clock::now() + options.ticket_ttl);
  TicketContents ticket;
  ticket.expires = Clock::time_point(std::chrono::seconds(expiry_seconds));
  ticket.plan_id = RandomId();
  if (split.sql.empty()) split.sql.push_back(std::move(plan.sql));
  if (split.sql.size() > 1) {
    plans_split.fetch_add(1, std::memory_order_relaxed);
    ticket.table = split.table;
    ticket.table_version = split.table_version;
  }
  for (size_t i = 0; i < split.sql.size(); ++i) {
    ticket.sql = std::move(split.sql[i]);
    ticket.endpoint = static_cast<uint32_t>(i);
    protocol::FlightEndpoint* endpoint = info.add_endpoint();
    endpoint->mutable_ticket()->set_ticket(signer.Sign(ticket));
    endpoint->mutable_expiration_time()->set_seconds(expiry_seconds);
  }
  info.set_total_records(plan.total_records);
  info.set_total_bytes(-1);
  // Endpoints are contiguous runs of the scan in file order and each keeps that order, so
  // reading them in order gives the rows in the order of the unsplit query.
  info.set_ordered(true);
  return info;
}

// ---- PollFlightInfo ----

// A query run in the background for PollFlightInfo: it runs to its end once (rows counted,
// batches dropped) while polls report its progress; the final FlightInfo's tickets run it
// again on DoGet.
struct ServerState::PollJob final : ServerState::Cancellable {
  std::string id;    // the poll descriptor's cmd
  std::string user;  // only this principal may poll it
  protocol::FlightDescriptor descriptor;
  Plan plan;
  Clock::time_point expires;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;
  int64_t rows = 0;
  std::optional<protocol::FlightInfo> info;  // the final info, once done
  std::unique_ptr<engine::Session> session;  // while running (guarded by mu)
  bool cancelled = false;

  void CancelQuery() override {
    std::lock_guard<std::mutex> lock(mu);
    cancelled = true;
    if (session) session->Cancel();
  }

  // 0..1 while running (below 1 until done), nullopt when DuckDB cannot tell.
  std::optional<double> Progress() const {
    std::lock_guard<std::mutex> lock(mu);
    if (done) return 1.0;
    if (!session) return 0.0;
    engine::QueryProgress p = session->Progress();
    if (p.percentage < 0) return std::nullopt;
    return std::clamp(p.percentage / 100.0, 0.0, 0.99);
  }
};

namespace {

// On the pool: runs the job's query to its end and makes the final FlightInfo.
void RunPollJob(ServerState& state, const std::shared_ptr<ServerState::PollJob>& job) {
  uint64_t registered = state.RegisterQuery(
      {0, job.get(), "PollFlightInfo", job->user, job->plan.sql, 0, 0, Clock::now()});
  auto run = [&]() -> Status {
    BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<engine::Session> session, state.services.db->Connect());
    engine::Session* raw = session.get();
    {
      std::lock_guard<std::mutex> lock(job->mu);
      if (job->cancelled) return Cancelled("flight: PollFlightInfo cancelled");
      job->session = std::move(session);
    }
    BRIDGE_ASSIGN_OR_RETURN(auto prepared, raw->Prepare(job->plan.sql));
    engine::QueryOptions query_options;
    query_options.timeout = state.options.query_timeout;
    BRIDGE_ASSIGN_OR_RETURN(auto stream, prepared->Execute({}, query_options));
    int64_t rows = 0;
    for (;;) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream->Next());
      if (!batch.valid()) break;
      rows += batch->length;
    }
    stream.reset();
    prepared.reset();
    Plan plan = job->plan;
    plan.total_records = rows;
    protocol::FlightInfo info = state.MakeFlightInfo(job->descriptor, std::move(plan));
    std::lock_guard<std::mutex> lock(job->mu);
    job->rows = rows;
    job->info = std::move(info);
    return OkStatus();
  };
  Status status = run();
  state.UnregisterQuery(registered);
  std::unique_ptr<engine::Session> session;
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->status = status;
    job->done = true;
    session = std::move(job->session);
  }
  job->cv.notify_all();
}

// Fills `out` from the job's state after waiting up to `wait` for it to finish. The job's
// error is the poll's error.
Status AnswerPoll(ServerState::PollJob& job, std::chrono::milliseconds wait,
                  protocol::PollInfo* out) {
  {
    std::unique_lock<std::mutex> lock(job.mu);
    job.cv.wait_for(lock, wait, [&] { return job.done; });
    if (job.done) {
      if (!job.status.ok()) return job.status;
      *out->mutable_info() = *job.info;
      out->set_progress(1.0);
      out->mutable_expiration_time()->set_seconds(UnixSeconds(job.expires));
      return OkStatus();
    }
  }
  protocol::FlightInfo* info = out->mutable_info();  // partial: the schema, no endpoints yet
  info->set_schema(job.plan.schema_message);
  *info->mutable_flight_descriptor() = job.descriptor;
  info->set_total_records(-1);
  info->set_total_bytes(-1);
  out->mutable_flight_descriptor()->set_type(protocol::FlightDescriptor::CMD);
  out->mutable_flight_descriptor()->set_cmd(job.id);
  if (std::optional<double> progress = job.Progress()) out->set_progress(*progress);
  out->mutable_expiration_time()->set_seconds(UnixSeconds(job.expires));
  return OkStatus();
}

Status Poll(ServerState& state, const grpc::CallbackServerContext& ctx,
            const protocol::FlightDescriptor& descriptor, protocol::PollInfo* out) {
  BRIDGE_ASSIGN_OR_RETURN(auth::Principal principal, state.Authorize(ctx));
  auto now = Clock::now();
  if (descriptor.type() == protocol::FlightDescriptor::CMD &&
      descriptor.cmd().starts_with(kPollPrefix)) {
    std::shared_ptr<ServerState::PollJob> job;
    {
      std::lock_guard<std::mutex> lock(state.poll_mu);
      for (const auto& j : state.poll_jobs) {
        if (j->id == descriptor.cmd() && j->user == principal.user && j->expires > now) job = j;
      }
    }
    if (!job) return NotFound("flight: unknown or expired poll descriptor");
    return AnswerPoll(*job, kNextPollWait, out);
  }

  auto job = std::make_shared<ServerState::PollJob>();
  {
    BRIDGE_ASSIGN_OR_RETURN(auto session, state.services.db->Connect());
    BRIDGE_ASSIGN_OR_RETURN(job->plan, state.PlanDescriptor(descriptor, *session));
  }
  job->id = StrCat(kPollPrefix, RandomHex(16));
  job->user = principal.user;
  job->descriptor = descriptor;
  job->expires = now + state.options.ticket_ttl;
  {
    std::lock_guard<std::mutex> lock(state.poll_mu);
    // Expired jobs go first; a finished one may still be polled until it expires.
    std::erase_if(state.poll_jobs, [&](const auto& j) {
      std::lock_guard<std::mutex> job_lock(j->mu);
      return j->done && j->expires <= now;
    });
    if (state.poll_jobs.size() >= ServerState::kMaxPollJobs) {
      // Make room by forgetting the oldest finished job.
      auto finished =
          std::find_if(state.poll_jobs.begin(), state.poll_jobs.end(), [](const auto& j) {
            std::lock_guard<std::mutex> job_lock(j->mu);
            return j->done;
          });
      if (finished == state.poll_jobs.end()) {
        return ResourceExhausted("flight: too many PollFlightInfo queries running (",
                                 ServerState::kMaxPollJobs, ")");
      }
      state.poll_jobs.erase(finished);
    }
    state.poll_jobs.push_back(job);
  }
  state.pool.Post([&state, job] { RunPollJob(state, job); });
  return AnswerPoll(*job, kFirstPollWait, out);
}

}  // namespace

bool CancelPollJob(ServerState& state, std::string_view cmd, const std::string& user) {
  if (!cmd.starts_with(kPollPrefix)) return false;
  std::lock_guard<std::mutex> lock(state.poll_mu);
  for (const auto& job : state.poll_jobs) {
    if (job->id == cmd && job->user == user) {
      job->CancelQuery();
      return true;
    }
  }
  return false;
}

grpc::ServerUnaryReactor* NewPollFlightInfo(ServerState& state, grpc::CallbackServerContext* ctx,
                                            const protocol::FlightDescriptor* descriptor,
                                            protocol::PollInfo* info) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  state.pool.Post([&state, ctx, descriptor, info, reactor] {
    reactor->Finish(ToGrpcStatus(Poll(state, *ctx, *descriptor, info)));
  });
  return reactor;
}

}  // namespace bridge::flight
