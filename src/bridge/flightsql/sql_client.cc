// SqlClient (sql_client.h).
#include "bridge/flightsql/sql_client.h"

#include "FlightSql.pb.h"
#include "bridge/flightsql/columns_internal.h"
#include "google/protobuf/any.pb.h"

namespace bridge::flightsql {
namespace {

namespace sql = arrow::flight::protocol::sql;
namespace fc = flight::client;

std::string Pack(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  any.PackFrom(message);
  return any.SerializeAsString();
}

Result<fc::Table> Fetch(fc::Client& client, const std::string& cmd) {
  BRIDGE_ASSIGN_OR_RETURN(fc::FlightInfo info, client.GetFlightInfo(fc::Descriptor::Sql(cmd)));
  return client.FetchAll(info);
}

}  // namespace

std::string SqlClient::StatementQueryCommand(std::string_view text) {
  sql::CommandStatementQuery command;
  command.set_query(std::string(text));
  return Pack(command);
}

Result<fc::Table> SqlClient::Query(std::string_view text) {
  return Fetch(flight_, StatementQueryCommand(text));
}

Result<fc::Table> SqlClient::QueryPrepared(std::string_view text,
                                           const std::vector<std::string>& parameters) {
  sql::ActionCreatePreparedStatementRequest create;
  create.set_query(std::string(text));
  BRIDGE_ASSIGN_OR_RETURN(std::vector<std::string> results,
                          flight_.DoAction("CreatePreparedStatement", Pack(create)));
  google::protobuf::Any any;
  sql::ActionCreatePreparedStatementResult created;
  if (results.size() != 1 || !any.ParseFromString(results[0]) || !any.UnpackTo(&created)) {
    return InvalidArgument(
        "flightsql client: CreatePreparedStatement answered no "
        "ActionCreatePreparedStatementResult");
  }
  sql::CommandPreparedStatementQuery command;
  command.set_prepared_statement_handle(created.prepared_statement_handle());
  const std::string cmd = Pack(command);
  Result<fc::Table> table = [&]() -> Result<fc::Table> {
    fc::FlightInfo holder;
    holder.schema_message = created.parameter_schema();
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema expected, holder.Schema());
    if (static_cast<size_t>(expected->n_children) != parameters.size()) {
      return InvalidArgument("flightsql client: the statement takes ", expected->n_children,
                             " parameter(s), got ", parameters.size());
    }
    if (!parameters.empty()) {
      ResultTable row;
      for (size_t i = 0; i < parameters.size(); ++i) {
        row.columns.emplace_back("u", StrCat("parameter_", i + 1), true);
        row.columns.back().Bytes(parameters[i]);
      }
      std::unique_ptr<engine::BatchStream> stream = row.ToStream();
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream->Next());
      std::vector<ipc::OwnedArray> batches;
      batches.push_back(std::move(batch));
      BRIDGE_RETURN_NOT_OK(
          flight_.Put(fc::Descriptor::Sql(cmd), stream->schema(), std::move(batches)).status());
    }
    return Fetch(flight_, cmd);
  }();
  sql::ActionClosePreparedStatementRequest close;
  close.set_prepared_statement_handle(created.prepared_statement_handle());
  Status closed = flight_.DoAction("ClosePreparedStatement", Pack(close)).status();
  if (table.ok() && !closed.ok()) return closed;
  return table;
}

Result<fc::Table> SqlClient::Tables(std::string_view pattern) {
  sql::CommandGetTables command;
  if (!pattern.empty()) command.set_table_name_filter_pattern(std::string(pattern));
  return Fetch(flight_, Pack(command));
}

}  // namespace bridge::flightsql
