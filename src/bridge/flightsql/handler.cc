// The Flight SQL handler: commands, tickets, DoPut plans and actions (flight_sql.h).
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "Flight.pb.h"
#include "bridge/arrow/encoder.h"
#include "bridge/flightsql/flight_sql.h"
#include "bridge/flightsql/flightsql_internal.h"
#include "google/protobuf/any.pb.h"

namespace bridge::flightsql {
namespace {

namespace sql = arrow::flight::protocol::sql;
namespace protocol = arrow::flight::protocol;
using google::protobuf::Any;

constexpr std::string_view kTypePrefix = "type.googleapis.com/arrow.flight.protocol.sql.";
constexpr std::string_view kSessionCookie = "arrow_flight_session_id";

// Statement handles inside TicketStatementQuery: a signed Flight ticket of planned SQL, one
// execution (parameter row) of a prepared statement, or a metadata command to answer.
constexpr char kFlightTicket = 'Q';
constexpr char kPreparedRow = 'P';
constexpr char kMetadata = 'M';

// Each bound parameter row is one endpoint of the statement's FlightInfo.
constexpr int64_t kMaxParameterRows = 10000;

std::string RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) return "";
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// Whether `bytes` start as a serialized Any whose type_url (field 1, length-delimited: tag
// 0x0A, a varint length) begins with kTypePrefix. Other commands (SQL text, signed tickets)
// are not handed to the parser, which logs an error for each string that is not UTF-8.
bool StartsAsFlightSqlAny(std::string_view bytes) {
  if (bytes.size() < 2 || bytes[0] != 0x0A) return false;
  size_t at = 1;
  while (at < bytes.size() && at < 6 && (static_cast<uint8_t>(bytes[at]) & 0x80) != 0) ++at;
  return bytes.substr(std::min(at + 1, bytes.size())).starts_with(kTypePrefix);
}

// Returns the Flight SQL message name of an Any ("" when `bytes` is not a Flight SQL Any).
std::string MessageName(std::string_view bytes, Any* any) {
  if (!StartsAsFlightSqlAny(bytes) ||
      !any->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      !std::string_view(any->type_url()).starts_with(kTypePrefix)) {
    return "";
  }
  return any->type_url().substr(kTypePrefix.size());
}

template <typename T>
Result<T> Unpack(const Any& any) {
  T message;
  if (!any.UnpackTo(&message)) {
    return InvalidArgument("flightsql: malformed ", T::descriptor()->name(), " in ",
                           any.type_url());
  }
  return message;
}

std::string Pack(const google::protobuf::Message& message) {
  Any any;
  any.PackFrom(message);
  return any.SerializeAsString();
}

std::string TicketFor(char kind, std::string_view handle) {
  sql::TicketStatementQuery ticket;
  ticket.set_statement_handle(std::string(1, kind) + std::string(handle));
  return Pack(ticket);
}

Status NoTransactions() {
  return Unimplemented(
      "flightsql: transactions are not supported (GetSqlInfo FLIGHT_SQL_SERVER_TRANSACTION = "
      "NONE); every statement runs on its own");
}

// A prepared statement's parameter row as its ticket names it:
// kPreparedRow + id + "\n" + bind generation + "\n" + row + "\n" + nonce (16 hex digits,
// one per FlightInfo; never zero once parsed).
struct PreparedRowTicket {
  std::string id;
  uint64_t generation = 0;
  size_t row = 0;
  uint64_t nonce = 0;
};

Result<PreparedRowTicket> ParsePreparedRow(std::string_view handle) {
  std::vector<std::string_view> parts;
  for (std::string_view rest = handle.substr(1);;) {
    const size_t end = rest.find('\n');
    parts.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  PreparedRowTicket out;
  auto number = [](std::string_view text, int base, auto* value) {
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value, base);
    return error == std::errc() && end == text.data() + text.size() && !text.empty();
  };
  if (parts.size() != 4 || parts[0].empty() || !number(parts[1], 10, &out.generation) ||
      !number(parts[2], 10, &out.row) || parts[3].size() != 16 ||
      !number(parts[3], 16, &out.nonce) || out.nonce == 0) {
    return InvalidArgument("flightsql: bad statement handle");
  }
  out.id = std::string(parts[0]);
  return out;
}

struct PreparedStatement {
  std::string user;
  std::string sql;
  size_t parameter_count = 0;
  std::string dataset_schema;
  std::string parameter_schema;
  std::vector<std::vector<engine::Value>> rows;  // bound by DoPut; guarded by the handler's mu_
  // Counts the binds (guarded by mu_): a ticket names the bind it was planned for, so a
  // rebind never makes an old ticket run other parameters.
  uint64_t generation = 0;
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
};

struct SessionOptions {
  std::string user;
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  std::map<std::string, std::string> values;  // set options (others have their defaults)
};

const std::pair<const char*, const char*> kActionTypes[] = {
    {"CreatePreparedStatement",
     "Flight SQL: prepares a query. Body: Any(ActionCreatePreparedStatementRequest). Result: "
     "Any(ActionCreatePreparedStatementResult) with the dataset and parameter schemas."},
    {"ClosePreparedStatement",
     "Flight SQL: drops a prepared statement. Body: Any(ActionClosePreparedStatementRequest)."},
    {"CreatePreparedSubstraitPlan", "Flight SQL: not supported (no Substrait)."},
    {"BeginTransaction", "Flight SQL: not supported (no transactions)."},
    {"EndTransaction", "Flight SQL: not supported (no transactions)."},
    {"BeginSavepoint", "Flight SQL: not supported (no transactions)."},
    {"EndSavepoint", "Flight SQL: not supported (no transactions)."},
    {"CancelQuery", "Flight SQL (deprecated): use CancelFlightInfo."},
    {"SetSessionOptions",
     "Sets session options (\"catalog\", \"schema\"); the session is the "
     "arrow_flight_session_id cookie (set on first use). Body: SetSessionOptionsRequest."},
    {"GetSessionOptions", "Returns the session's options. Body: GetSessionOptionsRequest."},
    {"CloseSession", "Ends the session. Body: CloseSessionRequest."},
};

class FlightSqlHandler final : public flight::CommandHandler {
 public:
  FlightSqlHandler(engine::Database& db, catalog::Catalog& catalog, FlightSqlOptions options,
                   ServerFacts facts)
      : db_(db), catalog_(catalog), options_(std::move(options)), facts_(std::move(facts)) {}

  bool HandlesCommand(std::string_view cmd) const override {
    Any any;
    return !MessageName(cmd, &any).empty();
  }

  bool HandlesTicket(std::string_view ticket) const override {
    Any any;
    return MessageName(ticket, &any) == "TicketStatementQuery";
  }

  bool HandlesAction(std::string_view type) const override {
    return std::any_of(std::begin(kActionTypes), std::end(kActionTypes),
                       [type](const auto& a) { return type == a.first; });
  }

  std::vector<std::pair<std::string, std::string>> ActionTypes() const override {
    return {std::begin(kActionTypes), std::end(kActionTypes)};
  }

  std::string WrapTicket(std::string_view flight_ticket) const override {
    return TicketFor(kFlightTicket, flight_ticket);
  }

  std::optional<std::string> UnwrapTicket(std::string_view ticket) const override {
    Result<std::string> handle = StatementHandle(ticket);
    if (!handle.ok() || handle->empty() || (*handle)[0] != kFlightTicket) return std::nullopt;
    return handle->substr(1);
  }

  Result<flight::CommandPlan> Plan(std::string_view cmd, const flight::CommandCall& call) override {
    Any any;
    const std::string name = MessageName(cmd, &any);
    flight::CommandPlan plan;
    if (name == "CommandStatementQuery") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandStatementQuery>(any));
      if (command.has_transaction_id()) return NoTransactions();
      if (command.query().empty()) return InvalidArgument("flightsql: empty query");
      plan.sql = command.query();
      return plan;
    }
    if (name == "CommandPreparedStatementQuery") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandPreparedStatementQuery>(any));
      const std::string& handle = command.prepared_statement_handle();
      std::lock_guard<std::mutex> lock(mu_);
      BRIDGE_ASSIGN_OR_RETURN(PreparedStatement * prepared, Find(handle, call));
      if (prepared->parameter_count == 0) {
        plan.sql = prepared->sql;
        return plan;
      }
      if (prepared->rows.empty() && !call.schema_only) {
        return InvalidArgument("flightsql: the prepared statement takes ",
                               prepared->parameter_count,
                               " parameter(s); bind them with DoPut first");
      }
      plan.schema_message = prepared->dataset_schema;
      // One execution per bound parameter row, each its own endpoint; the FlightInfo's
      // random nonce is what CancelFlightInfo cancels (CancelKey).
      const std::string nonce = RandomHex(8);
      if (nonce.empty()) return Internal("flightsql: no randomness for a ticket");
      for (size_t i = 0; i < prepared->rows.size(); ++i) {
        plan.tickets.push_back(TicketFor(
            kPreparedRow, StrCat(handle, "\n", prepared->generation, "\n", i, "\n", nonce)));
      }
      return plan;
    }
    if (name == "CommandStatementUpdate" || name == "CommandPreparedStatementUpdate" ||
        name == "CommandStatementIngest") {
      return InvalidArgument("flightsql: ", name, " runs with DoPut, not GetFlightInfo");
    }
    if (name == "CommandStatementSubstraitPlan") {
      return Unimplemented("flightsql: Substrait plans are not supported");
    }
    BRIDGE_ASSIGN_OR_RETURN(ResultTable result, Metadata(name, any, nullptr));
    BRIDGE_ASSIGN_OR_RETURN(plan.schema_message, result.SchemaMessage());
    plan.tickets.push_back(TicketFor(kMetadata, cmd));
    return plan;
  }

  Result<flight::CommandTicket> ResolveTicket(std::string_view ticket,
                                              const flight::CommandCall& call) override {
    BRIDGE_ASSIGN_OR_RETURN(std::string handle, StatementHandle(ticket));
    if (handle.empty()) return InvalidArgument("flightsql: empty statement handle");
    flight::CommandTicket out;
    if (handle[0] == kPreparedRow) {
      BRIDGE_ASSIGN_OR_RETURN(PreparedRowTicket parsed, ParsePreparedRow(handle));
      std::lock_guard<std::mutex> lock(mu_);
      BRIDGE_ASSIGN_OR_RETURN(PreparedStatement * prepared, Find(parsed.id, call));
      if (parsed.generation != prepared->generation || parsed.row >= prepared->rows.size()) {
        return FailedPrecondition(
            "flightsql: the prepared statement's parameters changed since GetFlightInfo; "
            "call it again");
      }
      // The server runs it like a planned query: schema first, keep-alives while it
      // executes, the result cache with the parameters in the key.
      out.sql = prepared->sql;
      out.params = prepared->rows[parsed.row];
      out.cancel_key = parsed.nonce;
      return out;
    }
    if (handle[0] == kMetadata) {
      Any any;
      std::string name = MessageName(std::string_view(handle).substr(1), &any);
      out.description = StrCat("flightsql: ", name);
      out.open = [this, name, any](
                     engine::Session& session,
                     const engine::QueryOptions&) -> Result<std::unique_ptr<engine::BatchStream>> {
        BRIDGE_ASSIGN_OR_RETURN(ResultTable result, Metadata(name, any, &session));
        return result.ToStream();
      };
      return out;
    }
    return InvalidArgument("flightsql: unknown statement handle");
  }

  uint64_t CancelKey(std::string_view ticket) const override {
    Result<std::string> handle = StatementHandle(ticket);
    if (!handle.ok() || handle->empty() || (*handle)[0] != kPreparedRow) return 0;
    Result<PreparedRowTicket> parsed = ParsePreparedRow(*handle);
    return parsed.ok() ? parsed->nonce : 0;
  }

  Result<flight::PutPlan> PlanPut(std::string_view cmd, const flight::CommandCall& call) override {
    Any any;
    const std::string name = MessageName(cmd, &any);
    flight::PutPlan plan;
    if (name == "CommandPreparedStatementQuery") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandPreparedStatementQuery>(any));
      const std::string handle = command.prepared_statement_handle();
      size_t count = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        BRIDGE_ASSIGN_OR_RETURN(PreparedStatement * prepared, Find(handle, call));
        count = prepared->parameter_count;
      }
      plan.kind = flight::PutPlan::Kind::kConsume;
      plan.consume = [this, handle, count,
                      call](engine::BatchStream& upload) -> Result<std::string> {
        return BindParameters(handle, count, upload, call);
      };
      return plan;
    }
    if (name == "CommandStatementUpdate" || name == "CommandPreparedStatementUpdate") {
      BRIDGE_RETURN_NOT_OK(NeedIngest(call, name));
      std::string statement;
      if (name == "CommandStatementUpdate") {
        BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandStatementUpdate>(any));
        if (command.has_transaction_id()) return NoTransactions();
        statement = command.query();
      } else {
        BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandPreparedStatementUpdate>(any));
        std::lock_guard<std::mutex> lock(mu_);
        BRIDGE_ASSIGN_OR_RETURN(PreparedStatement * prepared,
                                Find(command.prepared_statement_handle(), call));
        statement = prepared->sql;
      }
      // The engine decides: it refuses every statement that changes data (PERMISSION_DENIED),
      // and reports bad SQL as such.
      BRIDGE_ASSIGN_OR_RETURN(auto session, db_.Connect());
      BRIDGE_RETURN_NOT_OK(session->Prepare(statement).status());
      return InvalidArgument("flightsql: ", name,
                             " got a query; run queries with CommandStatementQuery or "
                             "CommandPreparedStatementQuery");
    }
    if (name == "CommandStatementIngest") {
      BRIDGE_RETURN_NOT_OK(NeedIngest(call, name));
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandStatementIngest>(any));
      return PlanIngest(command);
    }
    return InvalidArgument("flightsql: DoPut does not take ", name.empty() ? "this command" : name);
  }

  Result<std::optional<std::string>> DoAction(std::string_view type, std::string_view body,
                                              const flight::CommandCall& call) override {
    if (type == "CreatePreparedStatement") return CreatePrepared(body, call);
    if (type == "ClosePreparedStatement") {
      Any any;
      if (MessageName(body, &any) != "ActionClosePreparedStatementRequest") {
        return InvalidArgument(
            "flightsql: ClosePreparedStatement needs an Any(ActionClosePreparedStatementRequest)");
      }
      BRIDGE_ASSIGN_OR_RETURN(auto request, Unpack<sql::ActionClosePreparedStatementRequest>(any));
      std::lock_guard<std::mutex> lock(mu_);
      BRIDGE_RETURN_NOT_OK(Find(request.prepared_statement_handle(), call).status());
      prepared_.erase(request.prepared_statement_handle());
      return std::optional<std::string>();
    }
    if (type == "SetSessionOptions") return SetSessionOptions(body, call);
    if (type == "GetSessionOptions") return GetSessionOptions(call);
    if (type == "CloseSession") return CloseSession(call);
    if (type == "CreatePreparedSubstraitPlan") {
      return Unimplemented("flightsql: Substrait plans are not supported");
    }
    if (type == "CancelQuery") {
      return Unimplemented("flightsql: CancelQuery is deprecated; use the CancelFlightInfo action");
    }
    return NoTransactions();
  }

 private:
  // Returns the statement_handle of a TicketStatementQuery ticket.
  static Result<std::string> StatementHandle(std::string_view ticket) {
    Any any;
    if (MessageName(ticket, &any) != "TicketStatementQuery") {
      return InvalidArgument("flightsql: the ticket is not a TicketStatementQuery");
    }
    BRIDGE_ASSIGN_OR_RETURN(auto message, Unpack<sql::TicketStatementQuery>(any));
    return message.statement_handle();
  }

  // The prepared statement `handle` of the caller. Call under mu_.
  Result<PreparedStatement*> Find(const std::string& handle, const flight::CommandCall& call) {
    auto it = prepared_.find(handle);
    if (it == prepared_.end() || it->second.user != call.principal.user) {
      return NotFound(
          "flightsql: no prepared statement with this handle (closed, idle too long, or never "
          "made)");
    }
    it->second.last_used = std::chrono::steady_clock::now();
    return &it->second;
  }

  // Drops the prepared statements and sessions idle past options_.idle_timeout, then checks
  // that `user` may open one more of `table` (the total and the per-user limit). Under mu_.
  template <typename Table>
  Status MakeRoomLocked(Table& table, size_t max_total, size_t max_per_user,
                        const std::string& user, std::string_view what) {
    const auto now = std::chrono::steady_clock::now();
    size_t mine = 0;
    for (auto it = table.begin(); it != table.end();) {
      if (now - it->second.last_used > options_.idle_timeout) {
        it = table.erase(it);
        continue;
      }
      mine += it->second.user == user ? 1 : 0;
      ++it;
    }
    if (table.size() >= max_total) {
      return ResourceExhausted("flightsql: ", table.size(), " ", what,
                               " are open; close some first");
    }
    if (mine >= max_per_user) {
      return ResourceExhausted("flightsql: user '", user, "' has ", mine, " ", what,
                               " open; close some first");
    }
    return OkStatus();
  }

  Status NeedIngest(const flight::CommandCall& call, std::string_view what) const {
    if (options_.auth_enabled && !call.principal.Has(auth::kIngest)) {
      return PermissionDenied("flightsql: user '", call.principal.user, "' is read-only; ", what,
                              " needs the ingest permission");
    }
    return OkStatus();
  }

  Result<std::optional<std::string>> CreatePrepared(std::string_view body,
                                                    const flight::CommandCall& call) {
    Any any;
    if (MessageName(body, &any) != "ActionCreatePreparedStatementRequest") {
      return InvalidArgument(
          "flightsql: CreatePreparedStatement needs an Any(ActionCreatePreparedStatementRequest)");
    }
    BRIDGE_ASSIGN_OR_RETURN(auto request, Unpack<sql::ActionCreatePreparedStatementRequest>(any));
    if (request.has_transaction_id()) return NoTransactions();
    BRIDGE_ASSIGN_OR_RETURN(auto session, db_.Connect());
    BRIDGE_ASSIGN_OR_RETURN(auto statement, session->Prepare(request.query()));
    PreparedStatement prepared;
    prepared.user = call.principal.user;
    prepared.sql = request.query();
    prepared.parameter_count = statement->parameter_count();
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema dataset, statement->ResultSchema());
    BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage dataset_message,
                            ipc::EncodeSchemaMessage(*dataset));
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema parameters, statement->ParameterSchema());
    BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage parameter_message,
                            ipc::EncodeSchemaMessage(*parameters));
    prepared.dataset_schema = std::move(dataset_message.metadata);
    prepared.parameter_schema = std::move(parameter_message.metadata);
    sql::ActionCreatePreparedStatementResult result;
    result.set_dataset_schema(prepared.dataset_schema);
    result.set_parameter_schema(prepared.parameter_schema);
    std::string handle = StrCat("ps-", RandomHex(16));
    if (handle.size() < 10) return Internal("flightsql: no randomness for a handle");
    result.set_prepared_statement_handle(handle);
    {
      std::lock_guard<std::mutex> lock(mu_);
      BRIDGE_RETURN_NOT_OK(MakeRoomLocked(prepared_, options_.max_prepared_statements,
                                          options_.max_prepared_statements_per_user,
                                          call.principal.user, "prepared statements"));
      prepared_.emplace(handle, std::move(prepared));
    }
    return std::optional<std::string>(Pack(result));
  }

  Result<std::string> BindParameters(const std::string& handle, size_t count,
                                     engine::BatchStream& upload, const flight::CommandCall& call) {
    const ArrowSchema& schema = upload.schema();
    if (static_cast<size_t>(schema.n_children) != count) {
      return InvalidArgument("flightsql: the prepared statement takes ", count,
                             " parameter(s); the upload has ", schema.n_children, " column(s)");
    }
    std::vector<std::vector<engine::Value>> rows;
    for (;;) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, upload.Next());
      if (!batch.valid()) break;
      if (static_cast<int64_t>(rows.size()) + batch->length > kMaxParameterRows) {
        return InvalidArgument("flightsql: at most ", kMaxParameterRows,
                               " parameter rows (executions) per prepared statement");
      }
      BRIDGE_ASSIGN_OR_RETURN(auto batch_rows, ParameterRows(schema, *batch));
      for (auto& row : batch_rows) rows.push_back(std::move(row));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      BRIDGE_ASSIGN_OR_RETURN(PreparedStatement * prepared, Find(handle, call));
      prepared->rows = std::move(rows);
      ++prepared->generation;
    }
    sql::DoPutPreparedStatementResult result;
    result.set_prepared_statement_handle(handle);
    return result.SerializeAsString();
  }

  Result<flight::PutPlan> PlanIngest(const sql::CommandStatementIngest& command) {
    using Options = sql::CommandStatementIngest::TableDefinitionOptions;
    if (command.has_transaction_id()) return NoTransactions();
    if (command.temporary()) {
      return InvalidArgument(
          "flightsql: temporary tables are not supported; ingest writes a "
          "table into the data folder");
    }
    if (command.has_catalog() && command.catalog() != facts_.catalog) {
      return NotFound("flightsql: no catalog '", command.catalog(), "' (the only one is '",
                      facts_.catalog, "')");
    }
    if (command.has_schema() && command.schema() != facts_.schema) {
      return NotFound("flightsql: no schema '", command.schema(), "' (the only one is '",
                      facts_.schema, "')");
    }
    Options::TableNotExistOption if_not_exist = Options::TABLE_NOT_EXIST_OPTION_CREATE;
    Options::TableExistsOption if_exists = Options::TABLE_EXISTS_OPTION_FAIL;
    if (command.has_table_definition_options()) {
      if_not_exist = command.table_definition_options().if_not_exist();
      if_exists = command.table_definition_options().if_exists();
      if (if_not_exist == Options::TABLE_NOT_EXIST_OPTION_UNSPECIFIED ||
          if_exists == Options::TABLE_EXISTS_OPTION_UNSPECIFIED) {
        return InvalidArgument(
            "flightsql: CommandStatementIngest's table_definition_options must set if_not_exist "
            "and if_exists");
      }
    }
    flight::PutPlan plan;
    plan.kind = flight::PutPlan::Kind::kIngest;
    plan.table = command.table();
    if (catalog_.Table(command.table())) {
      switch (if_exists) {
        case Options::TABLE_EXISTS_OPTION_APPEND:
          plan.mode = flight::PutPlan::Mode::kAppend;
          break;
        case Options::TABLE_EXISTS_OPTION_REPLACE:
          plan.mode = flight::PutPlan::Mode::kReplace;
          break;
        default:
          return AlreadyExists("flightsql: table '", command.table(), "' already exists");
      }
    } else {
      if (if_not_exist != Options::TABLE_NOT_EXIST_OPTION_CREATE) {
        return NotFound("flightsql: table '", command.table(), "' does not exist");
      }
      plan.mode = flight::PutPlan::Mode::kCreate;
    }
    plan.ingested = [](int64_t rows) {
      sql::DoPutUpdateResult result;
      result.set_record_count(rows);
      return result.SerializeAsString();
    };
    return plan;
  }

  // The result of metadata command `name` (schema only, no rows, when `session` is null for
  // GetTables).
  Result<ResultTable> Metadata(const std::string& name, const Any& any, engine::Session* session) {
    if (name == "CommandGetSqlInfo") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandGetSqlInfo>(any));
      return SqlInfoResult(facts_, {command.info().begin(), command.info().end()});
    }
    if (name == "CommandGetCatalogs") return CatalogsResult(facts_);
    if (name == "CommandGetDbSchemas") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandGetDbSchemas>(any));
      return DbSchemasResult(facts_, command);
    }
    if (name == "CommandGetTables") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandGetTables>(any));
      return TablesResult(facts_, catalog_, session, command);
    }
    if (name == "CommandGetTableTypes") return TableTypesResult();
    if (name == "CommandGetPrimaryKeys") {
      BRIDGE_RETURN_NOT_OK(Unpack<sql::CommandGetPrimaryKeys>(any).status());
      return PrimaryKeysResult();
    }
    if (name == "CommandGetExportedKeys") {
      BRIDGE_RETURN_NOT_OK(Unpack<sql::CommandGetExportedKeys>(any).status());
      return ForeignKeysResult();
    }
    if (name == "CommandGetImportedKeys") {
      BRIDGE_RETURN_NOT_OK(Unpack<sql::CommandGetImportedKeys>(any).status());
      return ForeignKeysResult();
    }
    if (name == "CommandGetCrossReference") {
      BRIDGE_RETURN_NOT_OK(Unpack<sql::CommandGetCrossReference>(any).status());
      return ForeignKeysResult();
    }
    if (name == "CommandGetXdbcTypeInfo") {
      BRIDGE_ASSIGN_OR_RETURN(auto command, Unpack<sql::CommandGetXdbcTypeInfo>(any));
      return XdbcTypeInfoResult(
          command.has_data_type() ? std::optional<int32_t>(command.data_type()) : std::nullopt);
    }
    return InvalidArgument("flightsql: unknown command type '", std::string(kTypePrefix), name,
                           "'");
  }

  // ---- Sessions ----

  // The session id in the request's cookie, or "".
  static std::string SessionId(const flight::CommandCall& call) {
    std::string_view cookies = call.cookie;
    while (!cookies.empty()) {
      size_t end = cookies.find(';');
      std::string_view pair = cookies.substr(0, end);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      if (pair.starts_with(kSessionCookie) && pair.size() > kSessionCookie.size() &&
          pair[kSessionCookie.size()] == '=') {
        return std::string(pair.substr(kSessionCookie.size() + 1));
      }
      if (end == std::string_view::npos) break;
      cookies.remove_prefix(end + 1);
    }
    return "";
  }

  // The caller's session. Call under mu_.
  Result<SessionOptions*> FindSession(const flight::CommandCall& call) {
    std::string id = SessionId(call);
    auto it = sessions_.find(id);
    if (id.empty() || it == sessions_.end() || it->second.user != call.principal.user) {
      return NotFound("flightsql: no session; SetSessionOptions starts one (cookie ",
                      std::string(kSessionCookie), ")");
    }
    it->second.last_used = std::chrono::steady_clock::now();
    return &it->second;
  }

  Result<std::optional<std::string>> SetSessionOptions(std::string_view body,
                                                       const flight::CommandCall& call) {
    protocol::SetSessionOptionsRequest request;
    if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return InvalidArgument("flightsql: SetSessionOptions body is not a SetSessionOptionsRequest");
    }
    std::lock_guard<std::mutex> lock(mu_);
    Result<SessionOptions*> found = FindSession(call);
    SessionOptions* session = found.ok() ? *found : nullptr;
    if (session == nullptr) {
      BRIDGE_RETURN_NOT_OK(MakeRoomLocked(sessions_, options_.max_sessions,
                                          options_.max_sessions_per_user, call.principal.user,
                                          "sessions"));
      std::string id = RandomHex(16);
      if (id.empty()) return Internal("flightsql: no randomness for a session id");
      session = &sessions_[id];
      session->user = call.principal.user;
      call.add_header("set-cookie", StrCat(kSessionCookie, "=", id));
    }
    protocol::SetSessionOptionsResult result;
    for (const auto& [name, value] : request.session_options()) {
      const std::string* allowed = name == "catalog"  ? &facts_.catalog
                                   : name == "schema" ? &facts_.schema
                                                      : nullptr;
      auto& error = *result.mutable_errors();
      if (allowed == nullptr) {
        error[name].set_value(protocol::SetSessionOptionsResult::INVALID_NAME);
      } else if (value.option_value_case() == protocol::SessionOptionValue::OPTION_VALUE_NOT_SET) {
        session->values.erase(name);
      } else if (value.option_value_case() != protocol::SessionOptionValue::kStringValue ||
                 value.string_value() != *allowed) {
        // The data folder is one catalog with one schema.
        error[name].set_value(protocol::SetSessionOptionsResult::INVALID_VALUE);
      } else {
        session->values[name] = value.string_value();
      }
    }
    return std::optional<std::string>(result.SerializeAsString());
  }

  Result<std::optional<std::string>> GetSessionOptions(const flight::CommandCall& call) {
    std::lock_guard<std::mutex> lock(mu_);
    BRIDGE_ASSIGN_OR_RETURN(SessionOptions * session, FindSession(call));
    protocol::GetSessionOptionsResult result;
    auto& options = *result.mutable_session_options();
    auto value = [&](const std::string& name, const std::string& fallback) {
      auto it = session->values.find(name);
      options[name].set_string_value(it == session->values.end() ? fallback : it->second);
    };
    value("catalog", facts_.catalog);
    value("schema", facts_.schema);
    return std::optional<std::string>(result.SerializeAsString());
  }

  Result<std::optional<std::string>> CloseSession(const flight::CommandCall& call) {
    std::lock_guard<std::mutex> lock(mu_);
    BRIDGE_RETURN_NOT_OK(FindSession(call).status());
    sessions_.erase(SessionId(call));
    protocol::CloseSessionResult result;
    result.set_status(protocol::CloseSessionResult::CLOSED);
    return std::optional<std::string>(result.SerializeAsString());
  }

  engine::Database& db_;
  catalog::Catalog& catalog_;
  const FlightSqlOptions options_;
  const ServerFacts facts_;

  std::mutex mu_;
  std::unordered_map<std::string, PreparedStatement> prepared_;
  std::unordered_map<std::string, SessionOptions> sessions_;
};

}  // namespace

Result<std::unique_ptr<flight::CommandHandler>> MakeFlightSqlHandler(engine::Database& db,
                                                                     catalog::Catalog& catalog,
                                                                     FlightSqlOptions options) {
  BRIDGE_ASSIGN_OR_RETURN(ServerFacts facts, ReadServerFacts(db, options.bridge_version));
  return std::unique_ptr<flight::CommandHandler>(
      new FlightSqlHandler(db, catalog, std::move(options), std::move(facts)));
}

}  // namespace bridge::flightsql
