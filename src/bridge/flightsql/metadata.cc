// The metadata commands' results (flightsql_internal.h): GetSqlInfo, GetCatalogs,
// GetDbSchemas, GetTables, GetTableTypes, the key commands and GetXdbcTypeInfo.
#include <algorithm>
#include <cctype>
#include <variant>

#include "bridge/arrow/encoder.h"
#include "bridge/flightsql/flightsql_internal.h"

namespace bridge::flightsql {
namespace {

namespace sql = arrow::flight::protocol::sql;

ColumnBuilder Utf8(std::string name, bool nullable) {
  return ColumnBuilder("u", std::move(name), nullable);
}

// A GetSqlInfo value, by the union member that carries it.
struct Bitmask {
  int32_t bits;
};
using InfoValue = std::variant<std::string, bool, int64_t, Bitmask, std::vector<std::string>>;

int32_t Bits(std::initializer_list<int> positions) {
  int32_t out = 0;
  for (int p : positions) out |= 1 << p;
  return out;
}

// Every fact Bridge reports, by id (ascending). Only facts that hold for Bridge's DuckDB.
std::vector<std::pair<uint32_t, InfoValue>> Facts(const ServerFacts& f) {
  using S = std::string;
  return {
      {sql::FLIGHT_SQL_SERVER_NAME, S(f.server_name)},
      {sql::FLIGHT_SQL_SERVER_VERSION, S(f.server_version)},
      // The Arrow columnar format version spoken (IPC metadata V5).
      {sql::FLIGHT_SQL_SERVER_ARROW_VERSION, S("1.5.0")},
      // SQL cannot change data (updates are refused); uploads go through bulk ingestion.
      {sql::FLIGHT_SQL_SERVER_READ_ONLY, true},
      {sql::FLIGHT_SQL_SERVER_SQL, true},
      {sql::FLIGHT_SQL_SERVER_SUBSTRAIT, false},
      {sql::FLIGHT_SQL_SERVER_TRANSACTION, Bitmask{sql::SQL_SUPPORTED_TRANSACTION_NONE}},
      {sql::FLIGHT_SQL_SERVER_CANCEL, true},
      {sql::FLIGHT_SQL_SERVER_BULK_INGESTION, true},
      {sql::FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED, false},
      // Prepared statements live until closed (or the server stops).
      {sql::FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT, Bitmask{0}},
      {sql::FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT, Bitmask{0}},
      {sql::SQL_DDL_CATALOG, false},
      {sql::SQL_DDL_SCHEMA, false},
      {sql::SQL_DDL_TABLE, false},
      // DuckDB matches identifiers case-insensitively, quoted or not, and keeps their case.
      {sql::SQL_IDENTIFIER_CASE, Bitmask{sql::SQL_CASE_SENSITIVITY_CASE_INSENSITIVE}},
      {sql::SQL_IDENTIFIER_QUOTE_CHAR, S("\"")},
      {sql::SQL_QUOTED_IDENTIFIER_CASE, Bitmask{sql::SQL_CASE_SENSITIVITY_CASE_INSENSITIVE}},
      {sql::SQL_ALL_TABLES_ARE_SELECTABLE, true},
      {sql::SQL_NULL_ORDERING, Bitmask{f.null_ordering}},
      {sql::SQL_KEYWORDS, f.keywords},
      {sql::SQL_SEARCH_STRING_ESCAPE, S("\\")},
      {sql::SQL_EXTRA_NAME_CHARACTERS, S("")},
      {sql::SQL_SUPPORTS_COLUMN_ALIASING, true},
      {sql::SQL_NULL_PLUS_NULL_IS_NULL, true},
      {sql::SQL_SUPPORTS_TABLE_CORRELATION_NAMES, true},
      {sql::SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES, false},
      {sql::SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY, true},
      {sql::SQL_SUPPORTS_ORDER_BY_UNRELATED, true},
      {sql::SQL_SUPPORTED_GROUP_BY,
       Bitmask{Bits({sql::SQL_GROUP_BY_UNRELATED, sql::SQL_GROUP_BY_BEYOND_SELECT})}},
      {sql::SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE, true},
      {sql::SQL_SUPPORTS_NON_NULLABLE_COLUMNS, true},
      {sql::SQL_SUPPORTED_GRAMMAR,
       Bitmask{Bits({sql::SQL_MINIMUM_GRAMMAR, sql::SQL_CORE_GRAMMAR, sql::SQL_EXTENDED_GRAMMAR})}},
      {sql::SQL_ANSI92_SUPPORTED_LEVEL,
       Bitmask{Bits({sql::ANSI92_ENTRY_SQL, sql::ANSI92_INTERMEDIATE_SQL})}},
      {sql::SQL_OUTER_JOINS_SUPPORT_LEVEL, Bitmask{sql::SQL_FULL_OUTER_JOINS}},
      {sql::SQL_SCHEMA_TERM, S("schema")},
      {sql::SQL_CATALOG_TERM, S("catalog")},
      {sql::SQL_CATALOG_AT_START, true},
      {sql::SQL_SELECT_FOR_UPDATE_SUPPORTED, false},
      {sql::SQL_STORED_PROCEDURES_SUPPORTED, false},
      {sql::SQL_SUPPORTED_SUBQUERIES,
       Bitmask{Bits({sql::SQL_SUBQUERIES_IN_COMPARISONS, sql::SQL_SUBQUERIES_IN_EXISTS,
                     sql::SQL_SUBQUERIES_IN_INS, sql::SQL_SUBQUERIES_IN_QUANTIFIEDS})}},
      {sql::SQL_CORRELATED_SUBQUERIES_SUPPORTED, true},
      {sql::SQL_SUPPORTED_UNIONS, Bitmask{Bits({sql::SQL_UNION, sql::SQL_UNION_ALL})}},
      {sql::SQL_MAX_CONNECTIONS, f.max_connections},
      {sql::SQL_MAX_STATEMENT_LENGTH, int64_t{0}},  // no limit
      {sql::SQL_DEFAULT_TRANSACTION_ISOLATION, Bitmask{sql::SQL_TRANSACTION_NONE}},
      {sql::SQL_TRANSACTIONS_SUPPORTED, false},
      {sql::SQL_SUPPORTED_RESULT_SET_TYPES, Bitmask{Bits({sql::SQL_RESULT_SET_TYPE_FORWARD_ONLY})}},
      {sql::SQL_BATCH_UPDATES_SUPPORTED, false},
      {sql::SQL_SAVEPOINTS_SUPPORTED, false},
      {sql::SQL_NAMED_PARAMETERS_SUPPORTED, false},
  };
}

// The `value` column of GetSqlInfo: dense_union<string_value utf8, bool_value bool,
// bigint_value int64, int32_bitmask int32, string_list list<utf8>,
// int32_to_int32_list_map map<int32, list<int32>>>, not null, members not null.
ColumnBuilder SqlInfoValueColumn() {
  std::vector<ColumnBuilder> entries;
  entries.emplace_back("i", "key", false);
  entries.emplace_back("+l", "value", true,
                       std::vector<ColumnBuilder>{ColumnBuilder("i", "item", true)});
  std::vector<ColumnBuilder> members;
  members.emplace_back("u", "string_value", false);
  members.emplace_back("b", "bool_value", false);
  members.emplace_back("l", "bigint_value", false);
  members.emplace_back("i", "int32_bitmask", false);
  members.emplace_back("+l", "string_list", false,
                       std::vector<ColumnBuilder>{ColumnBuilder("u", "item", true)});
  members.emplace_back(
      "+m", "int32_to_int32_list_map", false,
      std::vector<ColumnBuilder>{ColumnBuilder("+s", "entries", false, std::move(entries))});
  return ColumnBuilder("+ud:0,1,2,3,4,5", "value", false, std::move(members));
}

void AppendInfo(ColumnBuilder& value, const InfoValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    value.child(0).Bytes(*s);
    value.EndUnion(0);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    value.child(1).Value(*b);
    value.EndUnion(1);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    value.child(2).Value(*i);
    value.EndUnion(2);
  } else if (const auto* m = std::get_if<Bitmask>(&v)) {
    value.child(3).Value(m->bits);
    value.EndUnion(3);
  } else {
    ColumnBuilder& list = value.child(4);
    for (const std::string& item : std::get<std::vector<std::string>>(v)) {
      list.child(0).Bytes(item);
    }
    list.EndList();
    value.EndUnion(4);
  }
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Whether the catalog and schema filters of `command` (GetDbSchemas, GetTables) admit the one
// schema there is.
template <typename Command>
bool AdmitsSchema(const ServerFacts& facts, const Command& command) {
  if (command.has_catalog() && command.catalog() != facts.catalog) return false;
  return !command.has_db_schema_filter_pattern() ||
         MatchesPattern(facts.schema, command.db_schema_filter_pattern());
}

// Bridge's tables are read-only DuckDB views over the data folder's files; clients see them
// as tables.
constexpr std::string_view kTableType = "TABLE";

// One row of GetXdbcTypeInfo (nullopt / nullptr = NULL).
struct XdbcType {
  const char* name;
  int32_t data_type;
  std::optional<int32_t> column_size;
  const char* prefix;
  const char* suffix;
  std::vector<const char*> create_params;  // empty = NULL
  bool case_sensitive;
  int32_t searchable;
  std::optional<bool> unsigned_attribute;
  std::optional<int32_t> minimum_scale;
  std::optional<int32_t> maximum_scale;
  int32_t sql_data_type;
  std::optional<int32_t> datetime_subcode;
  std::optional<int32_t> num_prec_radix;
};

// DuckDB's main types, ordered by data_type then type_name.
const std::vector<XdbcType>& XdbcTypes() {
  // clang-format off
  // name, data_type, column_size, prefix, suffix, create_params, case_sensitive, searchable,
  // unsigned, minimum_scale, maximum_scale, sql_data_type, datetime_subcode, num_prec_radix
  constexpr auto kNone = std::nullopt;
  static const std::vector<XdbcType> kTypes = {
      {"BOOLEAN", sql::XDBC_BIT, 1, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       kNone, kNone, kNone, sql::XDBC_BIT, kNone, kNone},
      {"TINYINT", sql::XDBC_TINYINT, 3, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       false, 0, 0, sql::XDBC_TINYINT, kNone, 10},
      {"BIGINT", sql::XDBC_BIGINT, 19, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       false, 0, 0, sql::XDBC_BIGINT, kNone, 10},
      {"BLOB", sql::XDBC_VARBINARY, kNone, "'", "'::BLOB", {}, false, sql::SEARCHABLE_BASIC,
       kNone, kNone, kNone, sql::XDBC_VARBINARY, kNone, kNone},
      {"DECIMAL", sql::XDBC_DECIMAL, 38, nullptr, nullptr, {"precision", "scale"}, false,
       sql::SEARCHABLE_BASIC, false, 0, 38, sql::XDBC_DECIMAL, kNone, 10},
      {"INTEGER", sql::XDBC_INTEGER, 10, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       false, 0, 0, sql::XDBC_INTEGER, kNone, 10},
      {"SMALLINT", sql::XDBC_SMALLINT, 5, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       false, 0, 0, sql::XDBC_SMALLINT, kNone, 10},
      {"FLOAT", sql::XDBC_REAL, 24, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       false, kNone, kNone, sql::XDBC_REAL, kNone, 2},
      {"DOUBLE", sql::XDBC_DOUBLE, 53, nullptr, nullptr, {}, false, sql::SEARCHABLE_BASIC,
       false, kNone, kNone, sql::XDBC_DOUBLE, kNone, 2},
      {"VARCHAR", sql::XDBC_VARCHAR, kNone, "'", "'", {}, true, sql::SEARCHABLE_FULL,
       kNone, kNone, kNone, sql::XDBC_VARCHAR, kNone, kNone},
      {"DATE", sql::XDBC_DATE, 10, "DATE '", "'", {}, false, sql::SEARCHABLE_BASIC,
       kNone, kNone, kNone, sql::XDBC_DATETIME, sql::XDBC_SUBCODE_DATE, kNone},
      {"TIME", sql::XDBC_TIME, 15, "TIME '", "'", {}, false, sql::SEARCHABLE_BASIC,
       kNone, kNone, kNone, sql::XDBC_DATETIME, sql::XDBC_SUBCODE_TIME, kNone},
      {"TIMESTAMP", sql::XDBC_TIMESTAMP, 26, "TIMESTAMP '", "'", {}, false, sql::SEARCHABLE_BASIC,
       kNone, kNone, kNone, sql::XDBC_DATETIME, sql::XDBC_SUBCODE_TIMESTAMP, kNone},
      {"TIMESTAMP WITH TIME ZONE", sql::XDBC_TIMESTAMP, 32, "TIMESTAMPTZ '", "'", {}, false,
       sql::SEARCHABLE_BASIC, kNone, kNone, kNone, sql::XDBC_DATETIME,
       sql::XDBC_SUBCODE_TIMESTAMP_WITH_TIMEZONE, kNone},
  };
  // clang-format on
  return kTypes;
}

template <typename T>
void AppendOptional(ColumnBuilder& column, const std::optional<T>& value) {
  if (value) {
    column.Value(*value);
  } else {
    column.Null();
  }
}

void AppendText(ColumnBuilder& column, const char* text) {
  if (text != nullptr) {
    column.Bytes(text);
  } else {
    column.Null();
  }
}

}  // namespace

Result<ServerFacts> ReadServerFacts(engine::Database& db, std::string bridge_version) {
  ServerFacts facts;
  facts.server_version = StrCat(bridge_version, " (DuckDB ", engine::DuckDBVersion(), ")");
  BRIDGE_ASSIGN_OR_RETURN(engine::TextTable where,
                          db.QueryTrusted("SELECT current_database(), current_schema(), "
                                          "current_setting('default_null_order')"));
  if (where.rows.size() != 1 || where.rows[0].size() != 3 || !where.rows[0][0] ||
      !where.rows[0][1] || !where.rows[0][2]) {
    return Internal("flightsql: cannot read DuckDB's current catalog and schema");
  }
  facts.catalog = *where.rows[0][0];
  facts.schema = *where.rows[0][1];
  // DuckDB's default_null_order: nulls_last (default), nulls_first, nulls_first_on_asc_...
  const std::string& order = *where.rows[0][2];
  if (EqualsNoCase(order, "nulls_first") ||
      EqualsNoCase(order, "nulls_first_on_asc_last_on_desc")) {
    facts.null_ordering = EqualsNoCase(order, "nulls_first") ? sql::SQL_NULLS_SORTED_AT_START
                                                             : sql::SQL_NULLS_SORTED_LOW;
  } else if (EqualsNoCase(order, "nulls_last_on_asc_first_on_desc")) {
    facts.null_ordering = sql::SQL_NULLS_SORTED_HIGH;
  } else {
    facts.null_ordering = sql::SQL_NULLS_SORTED_AT_END;
  }
  BRIDGE_ASSIGN_OR_RETURN(
      engine::TextTable keywords,
      db.QueryTrusted("SELECT upper(keyword_name) FROM duckdb_keywords() ORDER BY 1"));
  for (const auto& row : keywords.rows) {
    if (!row.empty() && row[0]) facts.keywords.push_back(*row[0]);
  }
  facts.max_connections = db.options().max_sessions;
  return facts;
}

bool MatchesPattern(std::string_view text, std::string_view pattern) {
  // Iterative matching with backtracking to the last '%'.
  size_t t = 0, p = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '%') {
      star_p = p++;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
      char want = escaped ? pattern[p + 1] : pattern[p];
      if ((!escaped && want == '_') || want == text[t]) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '%') ++p;
  return p == pattern.size();
}

ResultTable SqlInfoResult(const ServerFacts& facts, const std::vector<uint32_t>& ids) {
  ResultTable table;
  table.columns.emplace_back("I", "info_name", false);
  table.columns.push_back(SqlInfoValueColumn());
  std::vector<std::pair<uint32_t, InfoValue>> all = Facts(facts);
  auto append = [&](const std::pair<uint32_t, InfoValue>& fact) {
    table.columns[0].Value(fact.first);
    AppendInfo(table.columns[1], fact.second);
  };
  if (ids.empty()) {
    for (const auto& fact : all) append(fact);
    return table;
  }
  for (uint32_t id : ids) {
    auto it = std::find_if(all.begin(), all.end(), [id](const auto& f) { return f.first == id; });
    if (it != all.end()) append(*it);
  }
  return table;
}

ResultTable CatalogsResult(const ServerFacts& facts) {
  ResultTable table;
  table.columns.push_back(Utf8("catalog_name", false));
  table.columns[0].Bytes(facts.catalog);
  return table;
}

ResultTable DbSchemasResult(const ServerFacts& facts, const sql::CommandGetDbSchemas& command) {
  ResultTable table;
  table.columns.push_back(Utf8("catalog_name", true));
  table.columns.push_back(Utf8("db_schema_name", false));
  if (!AdmitsSchema(facts, command)) return table;
  table.columns[0].Bytes(facts.catalog);
  table.columns[1].Bytes(facts.schema);
  return table;
}

Result<ResultTable> TablesResult(const ServerFacts& facts, const catalog::Catalog& catalog,
                                 engine::Session* session, const sql::CommandGetTables& command) {
  ResultTable table;
  table.columns.push_back(Utf8("catalog_name", true));
  table.columns.push_back(Utf8("db_schema_name", true));
  table.columns.push_back(Utf8("table_name", false));
  table.columns.push_back(Utf8("table_type", false));
  if (command.include_schema()) table.columns.emplace_back("z", "table_schema", false);
  if (session == nullptr || !AdmitsSchema(facts, command)) return table;
  if (command.table_types_size() > 0 &&
      std::none_of(command.table_types().begin(), command.table_types().end(),
                   [](const std::string& type) { return EqualsNoCase(type, kTableType); })) {
    return table;
  }
  std::vector<catalog::TableInfo> tables = catalog.Tables();
  std::sort(tables.begin(), tables.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const catalog::TableInfo& info : tables) {
    if (!info.error.empty()) continue;  // broken tables have no view
    if (command.has_table_name_filter_pattern() &&
        !MatchesPattern(info.name, command.table_name_filter_pattern())) {
      continue;
    }
    std::string schema_message;
    if (command.include_schema()) {
      BRIDGE_ASSIGN_OR_RETURN(
          auto prepared,
          session->Prepare(StrCat("SELECT * FROM ", engine::QuoteIdentifier(info.name))));
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema schema, prepared->ResultSchema());
      BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage message, ipc::EncodeSchemaMessage(*schema));
      schema_message = std::move(message.metadata);
    }
    table.columns[0].Bytes(facts.catalog);
    table.columns[1].Bytes(facts.schema);
    table.columns[2].Bytes(info.name);
    table.columns[3].Bytes(kTableType);
    if (command.include_schema()) table.columns[4].Bytes(schema_message);
  }
  return table;
}

ResultTable TableTypesResult() {
  ResultTable table;
  table.columns.push_back(Utf8("table_type", false));
  table.columns[0].Bytes(kTableType);
  return table;
}

ResultTable PrimaryKeysResult() {
  // Files have no keys; the result is empty, with the protocol's columns in its order.
  ResultTable table;
  table.columns.push_back(Utf8("catalog_name", true));
  table.columns.push_back(Utf8("db_schema_name", true));
  table.columns.push_back(Utf8("table_name", false));
  table.columns.push_back(Utf8("column_name", false));
  table.columns.push_back(Utf8("key_name", true));
  table.columns.emplace_back("i", "key_sequence", false);
  return table;
}

ResultTable ForeignKeysResult() {
  ResultTable table;
  for (const char* side : {"pk", "fk"}) {
    table.columns.push_back(Utf8(StrCat(side, "_catalog_name"), true));
    table.columns.push_back(Utf8(StrCat(side, "_db_schema_name"), true));
    table.columns.push_back(Utf8(StrCat(side, "_table_name"), false));
    table.columns.push_back(Utf8(StrCat(side, "_column_name"), false));
  }
  table.columns.emplace_back("i", "key_sequence", false);
  table.columns.push_back(Utf8("fk_key_name", true));
  table.columns.push_back(Utf8("pk_key_name", true));
  table.columns.emplace_back("C", "update_rule", false);
  table.columns.emplace_back("C", "delete_rule", false);
  return table;
}

ResultTable XdbcTypeInfoResult(std::optional<int32_t> data_type) {
  ResultTable table;
  auto& c = table.columns;
  c.push_back(Utf8("type_name", false));
  c.emplace_back("i", "data_type", false);
  c.emplace_back("i", "column_size", true);
  c.push_back(Utf8("literal_prefix", true));
  c.push_back(Utf8("literal_suffix", true));
  c.emplace_back("+l", "create_params", true,
                 std::vector<ColumnBuilder>{ColumnBuilder("u", "item", false)});
  c.emplace_back("i", "nullable", false);
  c.emplace_back("b", "case_sensitive", false);
  c.emplace_back("i", "searchable", false);
  c.emplace_back("b", "unsigned_attribute", true);
  c.emplace_back("b", "fixed_prec_scale", false);
  c.emplace_back("b", "auto_increment", true);
  c.push_back(Utf8("local_type_name", true));
  c.emplace_back("i", "minimum_scale", true);
  c.emplace_back("i", "maximum_scale", true);
  c.emplace_back("i", "sql_data_type", false);
  c.emplace_back("i", "datetime_subcode", true);
  c.emplace_back("i", "num_prec_radix", true);
  c.emplace_back("i", "interval_precision", true);
  for (const XdbcType& t : XdbcTypes()) {
    if (data_type && *data_type != t.data_type) continue;
    c[0].Bytes(t.name);
    c[1].Value(t.data_type);
    AppendOptional(c[2], t.column_size);
    AppendText(c[3], t.prefix);
    AppendText(c[4], t.suffix);
    if (t.create_params.empty()) {
      c[5].Null();
    } else {
      for (const char* p : t.create_params) c[5].child(0).Bytes(p);
      c[5].EndList();
    }
    c[6].Value(int32_t{sql::NULLABILITY_NULLABLE});
    c[7].Value(t.case_sensitive);
    c[8].Value(t.searchable);
    AppendOptional(c[9], t.unsigned_attribute);
    c[10].Value(false);
    AppendOptional(c[11], t.num_prec_radix ? std::optional<bool>(false) : std::nullopt);
    c[12].Bytes(t.name);
    AppendOptional(c[13], t.minimum_scale);
    AppendOptional(c[14], t.maximum_scale);
    c[15].Value(t.sql_data_type);
    AppendOptional(c[16], t.datetime_subcode);
    AppendOptional(c[17], t.num_prec_radix);
    c[18].Null();
  }
  return table;
}

}  // namespace bridge::flightsql
