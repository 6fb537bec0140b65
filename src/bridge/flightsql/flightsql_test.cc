// Flight SQL over the Flight server in process (127.0.0.1:0): every command with its exact
// result schema and real values, prepared statements with parameters, updates refused,
// ingest, cancel, sessions, and bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "Flight.grpc.pb.h"
#include "FlightSql.pb.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/flight/client/client.h"
#include "bridge/flight/flight_testing.h"
#include "bridge/flightsql/columns_internal.h"
#include "bridge/flightsql/flight_sql.h"
#include "bridge/flightsql/flightsql_internal.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/stubs/logging.h"

namespace bridge::flightsql {
namespace {

namespace sql = arrow::flight::protocol::sql;
namespace protocol = arrow::flight::protocol;
namespace ta = ::bridge::ipc::test_arrays;
using ::bridge::flight::client::Client;
using ::bridge::flight::client::Descriptor;
using ::bridge::flight::testing::StartServer;
using ::bridge::flight::testing::TestServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Pack(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  any.PackFrom(message);
  return any.SerializeAsString();
}

// A server with the Flight SQL handler (with_users: alice read, bob nothing, carol read +
// ingest; password "secret").
std::unique_ptr<TestServer> StartSqlServer(
    bool with_users = false, const std::function<void(FlightSqlOptions&)>& tune = {},
    std::chrono::milliseconds keepalive = std::chrono::seconds(5), bool with_cache = false) {
  return StartServer(
      with_users, keepalive, {},
      [with_users, tune](TestServer& t) {
        FlightSqlOptions options;
        options.auth_enabled = with_users;
        if (tune) tune(options);
        auto handler = MakeFlightSqlHandler(*t.db, *t.catalog, options);
        EXPECT_TRUE(handler.ok()) << handler.status();
        return handler.ok() ? std::move(handler).value() : nullptr;
      },
      with_cache);
}

std::unique_ptr<Client> Connect(TestServer& t, const std::string& user = "") {
  flight::client::ClientOptions options;
  if (!user.empty()) {
    options.user = user;
    options.password = "secret";
  }
  auto client = Client::Connect(StrCat("grpc://127.0.0.1:", t.server->port()), options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(client).value() : nullptr;
}

// "name:format[!]" per field (! = not nullable), children in braces.
std::string SchemaText(const ArrowSchema& schema) {
  std::string out =
      StrCat(schema.name, ":", schema.format, (schema.flags & ARROW_FLAG_NULLABLE) != 0 ? "" : "!");
  if (schema.n_children > 0) {
    out += "{";
    for (int64_t i = 0; i < schema.n_children; ++i) {
      out += (i > 0 ? ", " : "") + SchemaText(*schema.children[i]);
    }
    out += "}";
  }
  return out;
}

std::vector<std::string> Fields(const ArrowSchema& schema) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < schema.n_children; ++i) out.push_back(SchemaText(*schema.children[i]));
  return out;
}

// Runs a command: GetFlightInfo, then every endpoint. Returns the rows as text.
struct Answer {
  std::vector<std::string> info_fields;  // from FlightInfo.schema
  std::vector<std::string> fields;       // from the DoGet stream
  std::vector<std::string> rows;
  size_t endpoints = 0;
};

Result<Answer> RunCommand(Client& client, const std::string& cmd) {
  BRIDGE_ASSIGN_OR_RETURN(flight::client::FlightInfo info,
                          client.GetFlightInfo(Descriptor::Sql(cmd)));
  Answer out;
  out.endpoints = info.endpoints.size();
  BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema schema, info.Schema());
  out.info_fields = Fields(*schema);
  BRIDGE_ASSIGN_OR_RETURN(flight::client::Table table, client.FetchAll(info));
  out.fields = Fields(*table.schema);
  for (const ipc::OwnedArray& batch : table.batches) {
    for (std::string& row : ta::Rows(*table.schema, *batch)) out.rows.push_back(std::move(row));
  }
  return out;
}

// Decodes an encapsulated IPC Schema message (FlightInfo.schema, dataset_schema, ...).
Result<ipc::OwnedSchema> DecodeSchema(const std::string& message) {
  flight::client::FlightInfo holder;
  holder.schema_message = message;
  return holder.Schema();
}

// GetFlightInfo of a Flight SQL command through the raw stub: the FlightInfo message as it
// travels (what CancelFlightInfo and RenewFlightEndpoint take back).
Result<protocol::FlightInfo> RawFlightInfo(TestServer& t, const std::string& cmd) {
  grpc::ClientContext ctx;
  protocol::FlightDescriptor descriptor;
  descriptor.set_type(protocol::FlightDescriptor::CMD);
  descriptor.set_cmd(cmd);
  protocol::FlightInfo info;
  grpc::Status status = t.stub->GetFlightInfo(&ctx, descriptor, &info);
  if (!status.ok()) return Internal("GetFlightInfo: ", status.error_message());
  return info;
}

// Runs CreatePreparedStatement for `query` and unpacks its result.
Result<sql::ActionCreatePreparedStatementResult> Prepare(Client& client, const std::string& query) {
  sql::ActionCreatePreparedStatementRequest create;
  create.set_query(query);
  BRIDGE_ASSIGN_OR_RETURN(auto results, client.DoAction("CreatePreparedStatement", Pack(create)));
  google::protobuf::Any any;
  sql::ActionCreatePreparedStatementResult created;
  if (results.size() != 1 || !any.ParseFromString(results[0]) || !any.UnpackTo(&created)) {
    return Internal("CreatePreparedStatement: not one ActionCreatePreparedStatementResult");
  }
  return created;
}

const std::vector<std::string> kForeignKeyFields = {
    "pk_catalog_name:u", "pk_db_schema_name:u", "pk_table_name:u!", "pk_column_name:u!",
    "fk_catalog_name:u", "fk_db_schema_name:u", "fk_table_name:u!", "fk_column_name:u!",
    "key_sequence:i!",   "fk_key_name:u",       "pk_key_name:u",    "update_rule:C!",
    "delete_rule:C!"};

TEST(FlightSqlTest, PatternsMatchLikeSql) {
  EXPECT_TRUE(MatchesPattern("numbers", "num%"));
  EXPECT_TRUE(MatchesPattern("numbers", "%"));
  EXPECT_TRUE(MatchesPattern("numbers", "n_mbers"));
  EXPECT_TRUE(MatchesPattern("a_b", "a\\_b"));
  EXPECT_FALSE(MatchesPattern("axb", "a\\_b"));
  EXPECT_FALSE(MatchesPattern("numbers", "num"));
  EXPECT_TRUE(MatchesPattern("", "%"));
  EXPECT_TRUE(MatchesPattern("letters", "%t%s"));
}

TEST(FlightSqlTest, ParameterRowsConvertEachColumnType) {
  auto schema = ta::Columns(ta::Fields(ta::MakeSchema("i", "a"), ta::MakeSchema("u", "b"),
                                       ta::MakeSchema("g", "c"), ta::MakeSchema("b", "d"),
                                       ta::MakeSchema("z", "e"), ta::MakeSchema("n", "f")));
  auto batch =
      ta::Batch(2, ta::Arrays(ta::Int32s({7, 0}, "10"), ta::Utf8({"x", std::nullopt}),
                              ta::MakeArray(2, {std::nullopt, ta::Bytes<double>({1.5, -2})}),
                              ta::MakeArray(2, {std::nullopt, ta::Bits("01")}),
                              ta::Utf8({"\x01", ""}), ta::MakeArray(2, {})));
  ASSERT_OK_AND_ASSIGN(auto rows, ParameterRows(*schema, *batch));
  ASSERT_EQ(rows.size(), 2u);
  auto is_null = [](const engine::Value& v) { return std::holds_alternative<std::monostate>(v); };
  EXPECT_EQ(std::get<int64_t>(rows[0][0]), 7);
  EXPECT_TRUE(is_null(rows[1][0]));
  EXPECT_EQ(std::get<std::string>(rows[0][1]), "x");
  EXPECT_TRUE(is_null(rows[1][1]));
  EXPECT_EQ(std::get<double>(rows[1][2]), -2.0);
  EXPECT_FALSE(std::get<bool>(rows[0][3]));
  EXPECT_TRUE(std::get<bool>(rows[1][3]));
  EXPECT_EQ(std::get<engine::Blob>(rows[0][4]).bytes, "\x01");
  EXPECT_TRUE(is_null(rows[0][5]));
  auto list = ta::Columns(ta::Fields(ta::MakeSchema("+l", "l", ta::Fields(ta::MakeSchema("i")))));
  auto lists = ta::Batch(1, ta::Arrays(ta::MakeArray(1, {std::nullopt, ta::Bytes<int32_t>({0, 1})},
                                                     ta::Arrays(ta::Int32s({5})))));
  EXPECT_STATUS(ParameterRows(*list, *lists), StatusCode::kInvalidArgument, "Arrow type '+l'");
}

TEST(FlightSqlTest, GetSqlInfoHasTheSpecSchemaAndDuckDBFacts) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  sql::CommandGetSqlInfo command;
  for (uint32_t id : {0u, 3u, 8u, 503u, 504u, 508u, 999u}) command.add_info(id);
  ASSERT_OK_AND_ASSIGN(Answer a, RunCommand(*client, Pack(command)));
  const std::vector<std::string> fields = {
      "info_name:I!",
      "value:+ud:0,1,2,3,4,5!{string_value:u!, bool_value:b!, bigint_value:l!, int32_bitmask:i!, "
      "string_list:+l!{item:u}, int32_to_int32_list_map:+m!{entries:+s!{key:i!, "
      "value:+l{item:i}}}}"};
  EXPECT_EQ(a.info_fields, fields);
  EXPECT_EQ(a.fields, fields);
  ASSERT_EQ(a.rows.size(), 6u) << "999 is unknown and left out";
  EXPECT_EQ(a.rows[0], "0 | <0: 'Bridge'>");
  EXPECT_EQ(a.rows[1], "3 | <1: true>");  // SQL cannot change data
  EXPECT_EQ(a.rows[2], "8 | <3: 0>");     // transactions: none
  EXPECT_EQ(a.rows[3], "503 | <3: 1>");   // case-insensitive identifiers
  EXPECT_EQ(a.rows[4], "504 | <0: '\"'>");
  EXPECT_THAT(a.rows[5], HasSubstr("'SELECT'"));  // DuckDB's keywords
  // Everything, in id order.
  ASSERT_OK_AND_ASSIGN(Answer all, RunCommand(*client, Pack(sql::CommandGetSqlInfo())));
  EXPECT_GT(all.rows.size(), 40u);
  EXPECT_THAT(all.rows[1], HasSubstr("DuckDB v"));
}

TEST(FlightSqlTest, CatalogsSchemasTablesAndTypes) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  ASSERT_OK_AND_ASSIGN(Answer catalogs, RunCommand(*client, Pack(sql::CommandGetCatalogs())));
  EXPECT_THAT(catalogs.fields, ElementsAre("catalog_name:u!"));
  EXPECT_THAT(catalogs.rows, ElementsAre("'memory'"));

  sql::CommandGetDbSchemas schemas;
  schemas.set_db_schema_filter_pattern("ma%");
  ASSERT_OK_AND_ASSIGN(Answer s, RunCommand(*client, Pack(schemas)));
  EXPECT_THAT(s.fields, ElementsAre("catalog_name:u", "db_schema_name:u!"));
  EXPECT_THAT(s.rows, ElementsAre("'memory' | 'main'"));
  schemas.set_catalog("elsewhere");
  ASSERT_OK_AND_ASSIGN(s, RunCommand(*client, Pack(schemas)));
  EXPECT_TRUE(s.rows.empty());

  sql::CommandGetTables tables;
  ASSERT_OK_AND_ASSIGN(Answer all, RunCommand(*client, Pack(tables)));
  EXPECT_THAT(all.fields,
              ElementsAre("catalog_name:u", "db_schema_name:u", "table_name:u!", "table_type:u!"));
  EXPECT_THAT(all.rows, ElementsAre("'memory' | 'main' | 'letters' | 'TABLE'",
                                    "'memory' | 'main' | 'numbers' | 'TABLE'"));
  tables.set_table_name_filter_pattern("num%");
  tables.set_include_schema(true);
  {
    auto info = client->GetFlightInfo(Descriptor::Sql(Pack(tables)));
    ASSERT_OK(info.status());
    ASSERT_OK_AND_ASSIGN(auto table, client->FetchAll(*info));
    EXPECT_THAT(Fields(*table.schema),
                ElementsAre("catalog_name:u", "db_schema_name:u", "table_name:u!", "table_type:u!",
                            "table_schema:z!"));
    ASSERT_EQ(table.rows, 1);
    // The table_schema column holds numbers' encapsulated IPC Schema message.
    const ArrowArray& column = *table.batches[0]->children[4];
    const auto* offsets = static_cast<const int32_t*>(column.buffers[1]);
    std::string message(static_cast<const char*>(column.buffers[2]) + offsets[0],
                        offsets[1] - offsets[0]);
    ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema schema, DecodeSchema(message));
    EXPECT_THAT(Fields(*schema), ElementsAre("id:l", "label:u"));
  }
  tables.set_include_schema(false);
  tables.add_table_types("VIEW");
  ASSERT_OK_AND_ASSIGN(Answer none, RunCommand(*client, Pack(tables)));
  EXPECT_TRUE(none.rows.empty());

  // GetSchema of a metadata command: its result schema, nothing run.
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema described,
                       client->GetSchema(Descriptor::Sql(Pack(tables))));
  EXPECT_EQ(Fields(*described).size(), 4u);

  ASSERT_OK_AND_ASSIGN(Answer types, RunCommand(*client, Pack(sql::CommandGetTableTypes())));
  EXPECT_THAT(types.fields, ElementsAre("table_type:u!"));
  EXPECT_THAT(types.rows, ElementsAre("'TABLE'"));
}

TEST(FlightSqlTest, KeyCommandsAreEmptyWithTheSpecSchemas) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  sql::CommandGetPrimaryKeys primary;
  primary.set_table("numbers");
  ASSERT_OK_AND_ASSIGN(Answer p, RunCommand(*client, Pack(primary)));
  EXPECT_THAT(p.fields, ElementsAre("catalog_name:u", "db_schema_name:u", "table_name:u!",
                                    "column_name:u!", "key_name:u", "key_sequence:i!"));
  EXPECT_TRUE(p.rows.empty());
  sql::CommandGetExportedKeys exported;
  exported.set_table("numbers");
  sql::CommandGetImportedKeys imported;
  imported.set_table("numbers");
  sql::CommandGetCrossReference cross;
  cross.set_pk_table("numbers");
  cross.set_fk_table("letters");
  for (const std::string& cmd : {Pack(exported), Pack(imported), Pack(cross)}) {
    ASSERT_OK_AND_ASSIGN(Answer k, RunCommand(*client, cmd));
    EXPECT_EQ(k.info_fields, kForeignKeyFields);
    EXPECT_EQ(k.fields, kForeignKeyFields);
    EXPECT_TRUE(k.rows.empty());
  }
}

TEST(FlightSqlTest, XdbcTypeInfoListsDuckDBTypesInOrder) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  ASSERT_OK_AND_ASSIGN(Answer all, RunCommand(*client, Pack(sql::CommandGetXdbcTypeInfo())));
  EXPECT_THAT(all.fields,
              ElementsAre("type_name:u!", "data_type:i!", "column_size:i", "literal_prefix:u",
                          "literal_suffix:u", "create_params:+l{item:u!}", "nullable:i!",
                          "case_sensitive:b!", "searchable:i!", "unsigned_attribute:b",
                          "fixed_prec_scale:b!", "auto_increment:b", "local_type_name:u",
                          "minimum_scale:i", "maximum_scale:i", "sql_data_type:i!",
                          "datetime_subcode:i", "num_prec_radix:i", "interval_precision:i"));
  ASSERT_EQ(all.rows.size(), 14u);
  EXPECT_THAT(all.rows[0], ::testing::StartsWith("'BOOLEAN' | -7 |"));
  EXPECT_THAT(all.rows[13], ::testing::StartsWith("'TIMESTAMP WITH TIME ZONE' | 93 |"));
  sql::CommandGetXdbcTypeInfo decimal;
  decimal.set_data_type(sql::XDBC_DECIMAL);
  ASSERT_OK_AND_ASSIGN(Answer d, RunCommand(*client, Pack(decimal)));
  ASSERT_EQ(d.rows.size(), 1u);
  EXPECT_EQ(d.rows[0],
            "'DECIMAL' | 3 | 38 | null | null | ['precision', 'scale'] | 1 | false | 2 | false | "
            "false | false | 'DECIMAL' | 0 | 38 | 3 | null | 10 | null");
}

TEST(FlightSqlTest, StatementQueryStreamsThroughFlightTickets) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  sql::CommandStatementQuery query;
  query.set_query("SELECT sum(id)::BIGINT AS total, count(*) AS n FROM numbers");
  ASSERT_OK_AND_ASSIGN(Answer a, RunCommand(*client, Pack(query)));
  EXPECT_THAT(a.info_fields, ElementsAre("total:l", "n:l"));
  EXPECT_THAT(a.rows, ElementsAre("12497500 | 5000"));
  // The endpoint's ticket is a TicketStatementQuery.
  ASSERT_OK_AND_ASSIGN(auto info, client->GetFlightInfo(Descriptor::Sql(Pack(query))));
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(info.endpoints.at(0).ticket));
  EXPECT_EQ(any.type_url(), "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery");
  // RenewFlightEndpoint renews the signed ticket inside its TicketStatementQuery.
  {
    ASSERT_OK_AND_ASSIGN(protocol::FlightInfo raw_info, RawFlightInfo(*t, Pack(query)));
    protocol::RenewFlightEndpointRequest renew;
    *renew.mutable_endpoint() = raw_info.endpoint(0);
    ASSERT_OK_AND_ASSIGN(auto results,
                         client->DoAction("RenewFlightEndpoint", renew.SerializeAsString()));
    protocol::FlightEndpoint renewed;
    ASSERT_TRUE(renewed.ParseFromString(results.at(0)));
    google::protobuf::Any wrapped;
    ASSERT_TRUE(wrapped.ParseFromString(renewed.ticket().ticket()));
    EXPECT_EQ(wrapped.type_url(),
              "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery");
    EXPECT_GE(renewed.expiration_time().seconds(),
              raw_info.endpoint(0).expiration_time().seconds());
    auto fetched = flight::testing::RawDoGet(*t, renewed.ticket().ticket());
    EXPECT_TRUE(fetched.status.ok()) << fetched.status.error_message();
    EXPECT_EQ(fetched.messages.size(), 2u);  // schema + the one-row batch
  }
  // GetSchema.
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema schema, client->GetSchema(Descriptor::Sql(Pack(query))));
  EXPECT_THAT(Fields(*schema), ElementsAre("total:l", "n:l"));
  // Bad SQL.
  query.set_query("SELEC 1");
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(Pack(query))), StatusCode::kInvalidArgument,
                "syntax error");
}

TEST(FlightSqlTest, PreparedStatementWithParametersRunsOncePerRow) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  ASSERT_OK_AND_ASSIGN(auto created, Prepare(*client, "SELECT label FROM numbers WHERE id = ?"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema dataset, DecodeSchema(created.dataset_schema()));
  EXPECT_THAT(Fields(*dataset), ElementsAre("label:u"));
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema parameters, DecodeSchema(created.parameter_schema()));
  EXPECT_THAT(Fields(*parameters), ElementsAre("parameter_1:l"));

  sql::CommandPreparedStatementQuery command;
  command.set_prepared_statement_handle(created.prepared_statement_handle());
  // GetSchema works before binding.
  ASSERT_OK_AND_ASSIGN(ipc::OwnedSchema described,
                       client->GetSchema(Descriptor::Sql(Pack(command))));
  EXPECT_THAT(Fields(*described), ElementsAre("label:u"));
  // Not bound yet.
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(Pack(command))), StatusCode::kInvalidArgument,
                "bind them with DoPut");
  // Bind two rows: two executions.
  auto schema = ta::Columns(ta::Fields(ta::MakeSchema("l", "id")));
  std::vector<ipc::OwnedArray> batches;
  batches.push_back(
      ta::Batch(2, ta::Arrays(ta::MakeArray(2, {std::nullopt, ta::Bytes<int64_t>({3, 4242})}))));
  ASSERT_OK_AND_ASSIGN(auto put,
                       client->Put(Descriptor::Sql(Pack(command)), *schema, std::move(batches)));
  sql::DoPutPreparedStatementResult bound;
  ASSERT_TRUE(bound.ParseFromString(put.last_app_metadata));
  EXPECT_EQ(bound.prepared_statement_handle(), created.prepared_statement_handle());
  ASSERT_OK_AND_ASSIGN(Answer a, RunCommand(*client, Pack(command)));
  EXPECT_EQ(a.endpoints, 2u);
  EXPECT_THAT(a.info_fields, ElementsAre("label:u"));
  EXPECT_THAT(a.rows, ElementsAre("'row 3'", "'row 4242'"));
  // A rebind: tickets planned for the old parameters are refused, never run with new ones.
  ASSERT_OK_AND_ASSIGN(auto old_info, client->GetFlightInfo(Descriptor::Sql(Pack(command))));
  std::vector<ipc::OwnedArray> rebind;
  rebind.push_back(
      ta::Batch(2, ta::Arrays(ta::MakeArray(2, {std::nullopt, ta::Bytes<int64_t>({7, 8})}))));
  ASSERT_OK(client->Put(Descriptor::Sql(Pack(command)), *schema, std::move(rebind)).status());
  auto stale = flight::testing::RawDoGet(*t, old_info.endpoints.at(0).ticket);
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << stale.status.error_message();
  ASSERT_OK_AND_ASSIGN(Answer rebound, RunCommand(*client, Pack(command)));
  EXPECT_THAT(rebound.rows, ElementsAre("'row 7'", "'row 8'"));

  // A wrong number of parameter columns.
  auto two = ta::Columns(ta::Fields(ta::MakeSchema("l", "a"), ta::MakeSchema("l", "b")));
  std::vector<ipc::OwnedArray> wrong;
  wrong.push_back(
      ta::Batch(1, ta::Arrays(ta::MakeArray(1, {std::nullopt, ta::Bytes<int64_t>({1})}),
                              ta::MakeArray(1, {std::nullopt, ta::Bytes<int64_t>({2})}))));
  EXPECT_STATUS(client->Put(Descriptor::Sql(Pack(command)), *two, std::move(wrong)),
                StatusCode::kInvalidArgument, "takes 1 parameter");

  // Close: the handle is gone.
  sql::ActionClosePreparedStatementRequest close;
  close.set_prepared_statement_handle(created.prepared_statement_handle());
  ASSERT_OK_AND_ASSIGN(auto closed, client->DoAction("ClosePreparedStatement", Pack(close)));
  EXPECT_TRUE(closed.empty());
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(Pack(command))), StatusCode::kNotFound,
                "no prepared statement");
  EXPECT_STATUS(client->DoAction("ClosePreparedStatement", Pack(close)), StatusCode::kNotFound,
                "no prepared statement");
}

// With a result cache, each parameter row's result is cached under its own parameters.
TEST(FlightSqlTest, PreparedStatementRowsAreCachedUnderTheirParameters) {
  auto t = StartSqlServer(false, {}, std::chrono::seconds(5), /*with_cache=*/true);
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  ASSERT_OK_AND_ASSIGN(auto created, Prepare(*client, "SELECT label FROM numbers WHERE id = ?"));
  sql::CommandPreparedStatementQuery command;
  command.set_prepared_statement_handle(created.prepared_statement_handle());
  auto schema = ta::Columns(ta::Fields(ta::MakeSchema("l", "id")));
  auto bind = [&](std::initializer_list<int64_t> ids) {
    std::vector<ipc::OwnedArray> batches;
    const int64_t n = static_cast<int64_t>(ids.size());
    batches.push_back(
        ta::Batch(n, ta::Arrays(ta::MakeArray(n, {std::nullopt, ta::Bytes<int64_t>(ids)}))));
    return client->Put(Descriptor::Sql(Pack(command)), *schema, std::move(batches)).status();
  };
  ASSERT_OK(bind({3, 5}));
  ASSERT_OK_AND_ASSIGN(Answer first, RunCommand(*client, Pack(command)));
  EXPECT_THAT(first.rows, ElementsAre("'row 3'", "'row 5'"));
  EXPECT_EQ(t->server->stats().results_from_cache, 0);
  // Entries are committed just after their call ends.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (t->server->stats().results_cached < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(t->server->stats().results_cached, 2);
  // The same parameters again (in another order): both rows from the cache.
  ASSERT_OK(bind({5, 3}));
  ASSERT_OK_AND_ASSIGN(Answer again, RunCommand(*client, Pack(command)));
  EXPECT_THAT(again.rows, ElementsAre("'row 5'", "'row 3'"));
  EXPECT_EQ(t->server->stats().results_from_cache, 2);
  // Other parameters run.
  ASSERT_OK(bind({7}));
  ASSERT_OK_AND_ASSIGN(Answer other, RunCommand(*client, Pack(command)));
  EXPECT_THAT(other.rows, ElementsAre("'row 7'"));
  EXPECT_EQ(t->server->stats().results_from_cache, 2);
}

TEST(FlightSqlTest, OneUserCannotHoldEveryPreparedStatementAndIdleOnesExpire) {
  {
    auto t = StartSqlServer(true, [](FlightSqlOptions& o) {
      o.max_prepared_statements_per_user = 2;
      o.max_sessions_per_user = 1;
    });
    ASSERT_NE(t, nullptr);
    auto alice = Connect(*t, "alice");
    auto carol = Connect(*t, "carol");
    ASSERT_OK(Prepare(*alice, "SELECT 1").status());
    ASSERT_OK(Prepare(*alice, "SELECT 2").status());
    EXPECT_STATUS(Prepare(*alice, "SELECT 3"), StatusCode::kResourceExhausted, "user 'alice'");
    ASSERT_OK(Prepare(*carol, "SELECT 4").status());  // others are not locked out
    // Sessions: a client that ignores its cookie gets a new session each time, up to its cap.
    protocol::SetSessionOptionsRequest set;
    (*set.mutable_session_options())["schema"].set_string_value("main");
    ASSERT_OK(alice->DoAction("SetSessionOptions", set.SerializeAsString()).status());
    EXPECT_STATUS(alice->DoAction("SetSessionOptions", set.SerializeAsString()),
                  StatusCode::kResourceExhausted, "sessions");
    ASSERT_OK(carol->DoAction("SetSessionOptions", set.SerializeAsString()).status());
  }
  {
    auto t = StartSqlServer(false,
                            [](FlightSqlOptions& o) { o.idle_timeout = std::chrono::seconds(0); });
    ASSERT_NE(t, nullptr);
    auto client = Connect(*t);
    ASSERT_OK_AND_ASSIGN(auto first, Prepare(*client, "SELECT 1 AS one"));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_OK(Prepare(*client, "SELECT 2 AS two").status());  // sweeps the idle first one
    sql::CommandPreparedStatementQuery command;
    command.set_prepared_statement_handle(first.prepared_statement_handle());
    EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(Pack(command))), StatusCode::kNotFound,
                  "idle too long");
  }
}

TEST(FlightSqlTest, PreparedStatementWithoutParametersAndOtherUsersHandles) {
  auto t = StartSqlServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  auto alice = Connect(*t, "alice");
  auto carol = Connect(*t, "carol");
  ASSERT_OK_AND_ASSIGN(auto created, Prepare(*alice, "SELECT count(*) AS n FROM letters"));
  sql::CommandPreparedStatementQuery command;
  command.set_prepared_statement_handle(created.prepared_statement_handle());
  ASSERT_OK_AND_ASSIGN(Answer a, RunCommand(*alice, Pack(command)));
  EXPECT_THAT(a.rows, ElementsAre("2"));
  // Another user cannot use it.
  EXPECT_STATUS(carol->GetFlightInfo(Descriptor::Sql(Pack(command))), StatusCode::kNotFound,
                "no prepared statement");
  // Statements that are not queries cannot be prepared.
  EXPECT_STATUS(Prepare(*alice, "DELETE FROM numbers"), StatusCode::kPermissionDenied, "read-only");
}

TEST(FlightSqlTest, UpdatesAreRefused) {
  auto t = StartSqlServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  auto alice = Connect(*t, "alice");
  auto carol = Connect(*t, "carol");
  auto schema = ta::Columns(ta::Fields(ta::MakeSchema("l", "x")));
  sql::CommandStatementUpdate update;
  update.set_query("INSERT INTO numbers VALUES (1, 'one')");
  EXPECT_STATUS(alice->Put(Descriptor::Sql(Pack(update)), *schema, {}),
                StatusCode::kPermissionDenied, "user 'alice' is read-only");
  // Even with the ingest permission, SQL stays read-only (the engine refuses it).
  EXPECT_STATUS(carol->Put(Descriptor::Sql(Pack(update)), *schema, {}),
                StatusCode::kPermissionDenied, "INSERT");
  update.set_query("SELECT 1");
  EXPECT_STATUS(carol->Put(Descriptor::Sql(Pack(update)), *schema, {}),
                StatusCode::kInvalidArgument, "got a query");
  // GetFlightInfo of an update.
  EXPECT_STATUS(carol->GetFlightInfo(Descriptor::Sql(Pack(update))), StatusCode::kInvalidArgument,
                "runs with DoPut");
}

TEST(FlightSqlTest, IngestCreatesAppendsAndRefusesAtomically) {
  auto t = StartSqlServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  auto alice = Connect(*t, "alice");
  auto carol = Connect(*t, "carol");
  auto schema = ta::Columns(ta::Fields(ta::MakeSchema("l", "v")));
  auto batches = [] {
    std::vector<ipc::OwnedArray> out;
    out.push_back(ta::Batch(
        3, ta::Arrays(ta::MakeArray(3, {std::nullopt, ta::Bytes<int64_t>({10, 20, 30})}))));
    return out;
  };
  sql::CommandStatementIngest ingest;
  ingest.set_table("fresh");
  EXPECT_STATUS(alice->Put(Descriptor::Sql(Pack(ingest)), *schema, batches()),
                StatusCode::kPermissionDenied, "ingest permission");
  ASSERT_OK_AND_ASSIGN(auto put, carol->Put(Descriptor::Sql(Pack(ingest)), *schema, batches()));
  sql::DoPutUpdateResult result;
  ASSERT_TRUE(result.ParseFromString(put.last_app_metadata));
  EXPECT_EQ(result.record_count(), 3);
  sql::CommandStatementQuery count;
  count.set_query("SELECT count(*), sum(v)::BIGINT FROM fresh");
  ASSERT_OK_AND_ASSIGN(Answer a, RunCommand(*carol, Pack(count)));
  EXPECT_THAT(a.rows, ElementsAre("3 | 60"));
  // Exists: fails by default, nothing changes.
  EXPECT_STATUS(carol->Put(Descriptor::Sql(Pack(ingest)), *schema, batches()),
                StatusCode::kAlreadyExists, "already exists");
  // Append.
  auto* options = ingest.mutable_table_definition_options();
  options->set_if_not_exist(
      sql::CommandStatementIngest::TableDefinitionOptions::TABLE_NOT_EXIST_OPTION_FAIL);
  options->set_if_exists(
      sql::CommandStatementIngest::TableDefinitionOptions::TABLE_EXISTS_OPTION_APPEND);
  ASSERT_OK(carol->Put(Descriptor::Sql(Pack(ingest)), *schema, batches()).status());
  ASSERT_OK_AND_ASSIGN(a, RunCommand(*carol, Pack(count)));
  EXPECT_THAT(a.rows, ElementsAre("6 | 120"));
  // An append of other columns fails and leaves the table as it was.
  auto other = ta::Columns(ta::Fields(ta::MakeSchema("u", "w")));
  std::vector<ipc::OwnedArray> strings;
  strings.push_back(ta::Batch(1, ta::Arrays(ta::Utf8({"x"}))));
  EXPECT_STATUS(carol->Put(Descriptor::Sql(Pack(ingest)), *other, std::move(strings)),
                StatusCode::kInvalidArgument, "differs");
  ASSERT_OK_AND_ASSIGN(a, RunCommand(*carol, Pack(count)));
  EXPECT_THAT(a.rows, ElementsAre("6 | 120"));
  // A missing table with if_not_exist = FAIL.
  ingest.set_table("missing");
  EXPECT_STATUS(carol->Put(Descriptor::Sql(Pack(ingest)), *schema, batches()),
                StatusCode::kNotFound, "does not exist");
  ingest.set_temporary(true);
  EXPECT_STATUS(carol->Put(Descriptor::Sql(Pack(ingest)), *schema, batches()),
                StatusCode::kInvalidArgument, "temporary");
}

// Starts the DoGet of `info`'s one endpoint, waits until `stats` lists a query containing
// `marker`, cancels it with CancelFlightInfo and returns what the DoGet received; a later
// DoGet of the same ticket is refused with CANCELLED.
flight::testing::Fetched CancelWhileRunning(TestServer& t, Client& client,
                                            const protocol::FlightInfo& info,
                                            std::chrono::milliseconds run_for) {
  EXPECT_EQ(info.endpoint_size(), 1);
  const std::string ticket = info.endpoint(0).ticket().ticket();
  flight::testing::Fetched fetched;
  std::thread reader([&] { fetched = flight::testing::RawDoGet(t, ticket); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    auto stats = client.DoAction("stats");
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (!stats.ok() || stats->at(0).find("range(1000000000)") != std::string::npos) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the query never started";
      break;
    }
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(run_for);
  protocol::CancelFlightInfoRequest request;
  *request.mutable_info() = info;
  auto results = client.DoAction("CancelFlightInfo", request.SerializeAsString());
  EXPECT_TRUE(results.ok()) << results.status();
  protocol::CancelFlightInfoResult cancelled;
  EXPECT_TRUE(results.ok() && cancelled.ParseFromString(results->at(0)));
  EXPECT_EQ(cancelled.status(), protocol::CANCEL_STATUS_CANCELLED);
  reader.join();
  EXPECT_EQ(fetched.status.error_code(), grpc::StatusCode::CANCELLED)
      << fetched.status.error_message();
  // Its tickets are refused from then on.
  auto again = flight::testing::RawDoGet(t, ticket);
  EXPECT_EQ(again.status.error_code(), grpc::StatusCode::CANCELLED) << again.status.error_message();
  return fetched;
}

TEST(FlightSqlTest, CancelFlightInfoCancelsAStatementQuery) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  sql::CommandStatementQuery query;
  query.set_query("SELECT count(*) FROM range(1000000000) a, range(1000) b");
  ASSERT_OK_AND_ASSIGN(protocol::FlightInfo info, RawFlightInfo(*t, Pack(query)));
  CancelWhileRunning(*t, *client, info, std::chrono::milliseconds(0));
}

// A parameter row runs like a planned query: its schema comes at once and keep-alives follow
// while DuckDB executes, and CancelFlightInfo stops it.
TEST(FlightSqlTest, CancelFlightInfoCancelsAPreparedStatementsParameterRow) {
  auto t = StartSqlServer(false, {}, std::chrono::milliseconds(50));
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  ASSERT_OK_AND_ASSIGN(auto created,
                       Prepare(*client,
                               "SELECT count(*) AS n FROM range(1000000000) a, range(1000) b "
                               "WHERE a.range > ?"));
  sql::CommandPreparedStatementQuery command;
  command.set_prepared_statement_handle(created.prepared_statement_handle());
  auto schema = ta::Columns(ta::Fields(ta::MakeSchema("l", "floor")));
  std::vector<ipc::OwnedArray> batches;
  batches.push_back(
      ta::Batch(1, ta::Arrays(ta::MakeArray(1, {std::nullopt, ta::Bytes<int64_t>({-1})}))));
  ASSERT_OK(client->Put(Descriptor::Sql(Pack(command)), *schema, std::move(batches)).status());
  ASSERT_OK_AND_ASSIGN(protocol::FlightInfo info, RawFlightInfo(*t, Pack(command)));

  auto fetched = CancelWhileRunning(*t, *client, info, std::chrono::milliseconds(300));
  ASSERT_GE(fetched.messages.size(), 2u);
  // FlightData carries the bare flatbuffer Message: Flight's own decoder reads it.
  const std::string& header = fetched.messages[0].data_header;
  ipc::StreamDecoder decoder;
  ASSERT_OK(decoder
                .Consume({reinterpret_cast<const uint8_t*>(header.data()), header.size()},
                         fetched.messages[0].body)
                .status());
  ASSERT_TRUE(decoder.has_schema());
  EXPECT_THAT(Fields(decoder.schema()), ElementsAre("n:l"));
  for (size_t i = 1; i < fetched.messages.size(); ++i) {
    EXPECT_EQ(fetched.messages[i].app_metadata, "bridge:keepalive");
  }

  // Another GetFlightInfo is another plan: its ticket is not the cancelled one, and runs.
  ASSERT_OK_AND_ASSIGN(protocol::FlightInfo again, RawFlightInfo(*t, Pack(command)));
  ASSERT_EQ(again.endpoint_size(), 1);
  EXPECT_NE(again.endpoint(0).ticket().ticket(), info.endpoint(0).ticket().ticket());
  // (The reader cancels the call after the schema.)
  auto first = flight::testing::RawDoGet(*t, again.endpoint(0).ticket().ticket(), "", 1);
  ASSERT_EQ(first.messages.size(), 1u) << first.status.error_message();
  EXPECT_EQ(first.messages[0].data_header, fetched.messages[0].data_header);
}

TEST(FlightSqlTest, SessionOptionsLiveInACookie) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto action = [&](const std::string& type, const std::string& body, const std::string& cookie,
                    std::string* set_cookie) -> Result<std::string> {
    grpc::ClientContext ctx;
    // One `cookie` header per line of `cookie` (clients may send each cookie apart).
    for (size_t start = 0; start < cookie.size();) {
      size_t end = std::min(cookie.find('\n', start), cookie.size());
      ctx.AddMetadata("cookie", cookie.substr(start, end - start));
      start = end + 1;
    }
    protocol::Action a;
    a.set_type(type);
    a.set_body(body);
    auto reader = t->stub->DoAction(&ctx, a);
    protocol::Result result;
    std::string out;
    while (reader->Read(&result)) out = result.body();
    grpc::Status status = reader->Finish();
    if (!status.ok())
      return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
    if (set_cookie != nullptr) {
      auto it = ctx.GetServerInitialMetadata().find("set-cookie");
      if (it != ctx.GetServerInitialMetadata().end()) {
        *set_cookie = std::string(it->second.data(), it->second.size());
      }
    }
    return out;
  };
  protocol::SetSessionOptionsRequest set;
  (*set.mutable_session_options())["schema"].set_string_value("main");
  (*set.mutable_session_options())["catalog"].set_string_value("elsewhere");
  (*set.mutable_session_options())["colour"].set_string_value("blue");
  std::string cookie;
  ASSERT_OK_AND_ASSIGN(std::string body,
                       action("SetSessionOptions", set.SerializeAsString(), "", &cookie));
  ASSERT_THAT(cookie, ::testing::StartsWith("arrow_flight_session_id="));
  protocol::SetSessionOptionsResult set_result;
  ASSERT_TRUE(set_result.ParseFromString(body));
  ASSERT_EQ(set_result.errors_size(), 2);
  EXPECT_EQ(set_result.errors().at("catalog").value(),
            protocol::SetSessionOptionsResult::INVALID_VALUE);
  EXPECT_EQ(set_result.errors().at("colour").value(),
            protocol::SetSessionOptionsResult::INVALID_NAME);

  ASSERT_OK_AND_ASSIGN(body, action("GetSessionOptions", "", "a=b; " + cookie, nullptr));
  protocol::GetSessionOptionsResult got;
  ASSERT_TRUE(got.ParseFromString(body));
  EXPECT_EQ(got.session_options().at("schema").string_value(), "main");
  EXPECT_EQ(got.session_options().at("catalog").string_value(), "memory");
  // The session cookie in a second `cookie` header.
  ASSERT_OK_AND_ASSIGN(body, action("GetSessionOptions", "", "a=b\n" + cookie, nullptr));
  ASSERT_TRUE(got.ParseFromString(body));
  EXPECT_EQ(got.session_options().at("schema").string_value(), "main");

  ASSERT_OK_AND_ASSIGN(body, action("CloseSession", "", cookie, nullptr));
  protocol::CloseSessionResult closed;
  ASSERT_TRUE(closed.ParseFromString(body));
  EXPECT_EQ(closed.status(), protocol::CloseSessionResult::CLOSED);
  EXPECT_STATUS(action("GetSessionOptions", "", cookie, nullptr), StatusCode::kNotFound,
                "no session");
}

// Commands that are not a Flight SQL Any (SQL text, binary) go to plain Flight without the
// protobuf parser logging an error for a string field that is not UTF-8.
std::vector<std::string>* protobuf_log = nullptr;
void KeepProtobufLog(google::protobuf::LogLevel, const char*, int, const std::string& message) {
  if (protobuf_log != nullptr) protobuf_log->push_back(message);
}

TEST(FlightSqlTest, CommandsThatAreNotFlightSqlAreNotParsedAsOne) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  std::vector<std::string> log;
  protobuf_log = &log;
  google::protobuf::LogHandler* previous = google::protobuf::SetLogHandler(KeepProtobufLog);
  // Field 1 (type_url) of an Any, 3 bytes that are not UTF-8.
  auto info = RawFlightInfo(*t, std::string("\x0a\x03\xff\xfe\xfd", 5));
  auto text = RawFlightInfo(*t, "SELECT 41 + 1 AS answer");
  google::protobuf::SetLogHandler(previous);
  protobuf_log = nullptr;
  EXPECT_FALSE(info.ok());  // taken as SQL: not valid SQL
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_GT(text->endpoint_size(), 0);
  EXPECT_THAT(log, ::testing::IsEmpty());
}

TEST(FlightSqlTest, BadInputGetsClearErrors) {
  auto t = StartSqlServer();
  ASSERT_NE(t, nullptr);
  auto client = Connect(*t);
  // An Any of an unknown Flight SQL type.
  google::protobuf::Any unknown;
  unknown.set_type_url("type.googleapis.com/arrow.flight.protocol.sql.CommandNope");
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(unknown.SerializeAsString())),
                StatusCode::kInvalidArgument, "unknown command type");
  // A known type whose value is garbage.
  google::protobuf::Any garbage;
  garbage.set_type_url("type.googleapis.com/arrow.flight.protocol.sql.CommandGetTables");
  garbage.set_value("\xff\xff\xff");
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(garbage.SerializeAsString())),
                StatusCode::kInvalidArgument, "malformed");
  // Bytes that are no Any at all are SQL text for plain Flight.
  EXPECT_STATUS(client->GetFlightInfo(Descriptor::Sql(std::string("\x0a\x03\xff\xfe\x01", 5))),
                StatusCode::kInvalidArgument, "");
  // Tickets: a statement handle that is nothing of ours, an unknown prepared statement.
  sql::TicketStatementQuery ticket;
  ticket.set_statement_handle("Zzz");
  auto fetched = flight::testing::RawDoGet(*t, Pack(ticket));
  EXPECT_EQ(fetched.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // id, bind generation, row, nonce
  ticket.set_statement_handle("Pps-nothing\n0\n0\n00000000000000a1");
  fetched = flight::testing::RawDoGet(*t, Pack(ticket));
  EXPECT_EQ(fetched.status.error_code(), grpc::StatusCode::NOT_FOUND);
  for (const char* bad :
       {"Pps-nothing\n0\n0", "Pps\nx\n0\n00000000000000a1", "Pps\n0\n-\n00000000000000a1",
        "Pps\n0\n0\n0000000000000000", "Pps\n0\n0\n00000000000000a1\n", "P\n0\n0\n00000000000000a1",
        "Pps\n0\n0\n00000000000000g1", "Pps\n0\n0\n1"}) {
    ticket.set_statement_handle(bad);
    fetched = flight::testing::RawDoGet(*t, Pack(ticket));
    EXPECT_EQ(fetched.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  ticket.set_statement_handle("Qforged");
  fetched = flight::testing::RawDoGet(*t, Pack(ticket));
  EXPECT_EQ(fetched.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Actions.
  EXPECT_STATUS(client->DoAction("CreatePreparedStatement", "garbage"),
                StatusCode::kInvalidArgument, "needs an Any");
  EXPECT_STATUS(client->DoAction("BeginTransaction", Pack(sql::ActionBeginTransactionRequest())),
                StatusCode::kUnimplemented, "transactions are not supported");
  ASSERT_OK_AND_ASSIGN(auto actions, client->ListActions());
  bool listed = false;
  for (const auto& a : actions) listed |= a.type == "CreatePreparedStatement";
  EXPECT_TRUE(listed);
  // A Flight SQL command where plain Flight expects SQL text.
  ASSERT_OK_AND_ASSIGN(auto poll_client,
                       Client::Connect(StrCat("grpc://127.0.0.1:", t->server->port())));
  EXPECT_STATUS(poll_client->PollFlightInfo(Descriptor::Sql(Pack(sql::CommandGetCatalogs()))),
                StatusCode::kInvalidArgument, "is for GetFlightInfo");
  // The plain Flight server still works beside Flight SQL.
  ASSERT_OK_AND_ASSIGN(auto info, client->GetFlightInfo(Descriptor::Sql("SELECT 41 + 1 AS x")));
  ASSERT_OK_AND_ASSIGN(auto table, client->FetchAll(info));
  EXPECT_EQ(table.rows, 1);
}

}  // namespace
}  // namespace bridge::flightsql
