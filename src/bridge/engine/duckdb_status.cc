#include <cctype>
#include <string>

#include "bridge/engine/duckdb_status_internal.h"

namespace bridge::engine::internal {
namespace {

struct NamedType {
  std::string_view name;  // as DuckDB prints it before " Error: "
  duckdb_error_type type;
};

constexpr NamedType kNamedTypes[] = {
    {"Out of Range", DUCKDB_ERROR_OUT_OF_RANGE},
    {"Conversion", DUCKDB_ERROR_CONVERSION},
    {"Unknown Type", DUCKDB_ERROR_UNKNOWN_TYPE},
    {"Decimal", DUCKDB_ERROR_DECIMAL},
    {"Mismatch Type", DUCKDB_ERROR_MISMATCH_TYPE},
    {"Divide by Zero", DUCKDB_ERROR_DIVIDE_BY_ZERO},
    {"Invalid type", DUCKDB_ERROR_INVALID_TYPE},
    {"Not implemented", DUCKDB_ERROR_NOT_IMPLEMENTED},
    {"Expression", DUCKDB_ERROR_EXPRESSION},
    {"Catalog", DUCKDB_ERROR_CATALOG},
    {"Parser", DUCKDB_ERROR_PARSER},
    {"Planner", DUCKDB_ERROR_PLANNER},
    {"Constraint", DUCKDB_ERROR_CONSTRAINT},
    {"Syntax", DUCKDB_ERROR_SYNTAX},
    {"Binder", DUCKDB_ERROR_BINDER},
    {"IO", DUCKDB_ERROR_IO},
    {"INTERRUPT", DUCKDB_ERROR_INTERRUPT},
    {"Invalid Input", DUCKDB_ERROR_INVALID_INPUT},
    {"Out of Memory", DUCKDB_ERROR_OUT_OF_MEMORY},
    {"Permission", DUCKDB_ERROR_PERMISSION},
    {"Parameter Not Resolved", DUCKDB_ERROR_PARAMETER_NOT_RESOLVED},
    {"Parameter Not Allowed", DUCKDB_ERROR_PARAMETER_NOT_ALLOWED},
    {"Dependency", DUCKDB_ERROR_DEPENDENCY},
    {"Missing Extension", DUCKDB_ERROR_MISSING_EXTENSION},
    {"Extension Autoloading", DUCKDB_ERROR_AUTOLOAD},
    {"Internal", DUCKDB_ERROR_INTERNAL},
    {"FATAL", DUCKDB_ERROR_FATAL},
};

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Skips whitespace, comments and opening parentheses; returns the rest.
std::string_view SkipNoise(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(') {
      ++i;
    } else if (sql.substr(i, 2) == "--") {
      size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (sql.substr(i, 2) == "/*") {
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else {
      break;
    }
  }
  return sql.substr(i);
}

// Splits off the leading keyword of `sql` (letters and underscores), upper-cased.
std::string TakeKeyword(std::string_view& sql) {
  sql = SkipNoise(sql);
  std::string word;
  size_t i = 0;
  while (i < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[i])) || sql[i] == '_')) {
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
    ++i;
  }
  sql = sql.substr(i);
  return word;
}

}  // namespace

Status CheckReadOnlyText(std::string_view sql) {
  static constexpr std::string_view kQueryWords[] = {
      "SELECT", "WITH",      "FROM",  "VALUES",  "TABLE",       "DESCRIBE",
      "SHOW",   "SUMMARIZE", "PIVOT", "UNPIVOT", "PIVOT_WIDER", "PIVOT_LONGER"};
  std::string_view rest = sql;
  std::string word = TakeKeyword(rest);
  if (word == "EXPLAIN") {
    std::string_view after = rest;
    if (TakeKeyword(after) == "ANALYZE") {
      return PermissionDenied("engine: EXPLAIN ANALYZE is not allowed (it runs the statement)");
    }
    word = TakeKeyword(rest);
  }
  for (std::string_view allowed : kQueryWords) {
    if (word == allowed) return OkStatus();
  }
  // Words that start no statement are left to DuckDB's parser, which reports them; every
  // prepared statement's type is checked again after preparing.
  static constexpr std::string_view kStatementWords[] = {
      "COPY",       "EXPORT", "IMPORT",     "ATTACH",   "DETACH",  "INSTALL", "LOAD",    "FORCE",
      "SET",        "RESET",  "PRAGMA",     "CALL",     "CREATE",  "DROP",    "ALTER",   "INSERT",
      "UPDATE",     "DELETE", "MERGE",      "TRUNCATE", "BEGIN",   "START",   "COMMIT",  "ROLLBACK",
      "ABORT",      "END",    "CHECKPOINT", "VACUUM",   "ANALYZE", "USE",     "PREPARE", "EXECUTE",
      "DEALLOCATE", "UPDATE", "COMMENT",    "REPLACE",  "UPSERT"};
  bool is_statement = false;
  for (std::string_view denied : kStatementWords) is_statement |= word == denied;
  if (!is_statement) return OkStatus();
  return PermissionDenied("engine: only read-only queries may run; ",
                          word.empty() ? std::string("this") : word, " statements are not allowed");
}

Status StatusFromDuckDB(duckdb_error_type type, std::string_view message) {
  std::string text(message);
  switch (type) {
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_SYNTAX:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_OUT_OF_RANGE:
    case DUCKDB_ERROR_DECIMAL:
    case DUCKDB_ERROR_MISMATCH_TYPE:
    case DUCKDB_ERROR_DIVIDE_BY_ZERO:
    case DUCKDB_ERROR_INVALID_TYPE:
    case DUCKDB_ERROR_UNKNOWN_TYPE:
    case DUCKDB_ERROR_EXPRESSION:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_PARAMETER_NOT_RESOLVED:
    case DUCKDB_ERROR_PARAMETER_NOT_ALLOWED:
    case DUCKDB_ERROR_NOT_IMPLEMENTED:
    case DUCKDB_ERROR_CONSTRAINT:
    case DUCKDB_ERROR_PLANNER:
      return absl::InvalidArgumentError(text);
    case DUCKDB_ERROR_CATALOG:
      if (Contains(text, "does not exist")) return absl::NotFoundError(text);
      return absl::InvalidArgumentError(text);
    case DUCKDB_ERROR_PERMISSION:
    case DUCKDB_ERROR_MISSING_EXTENSION:
    case DUCKDB_ERROR_AUTOLOAD:
      return absl::PermissionDeniedError(text);
    case DUCKDB_ERROR_INTERRUPT:
      return absl::CancelledError(text);
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(text);
    case DUCKDB_ERROR_IO:
      if (Contains(text, "No files found") || Contains(text, "does not exist")) {
        return absl::NotFoundError(text);
      }
      return absl::UnavailableError(text);
    default:
      return absl::InternalError(text);
  }
}

Status StatusFromDuckDBMessage(std::string_view message) {
  if (message.empty()) return absl::InternalError("engine: DuckDB failed without a message");
  size_t colon = message.find(" Error: ");
  if (colon != std::string_view::npos) {
    std::string_view name = message.substr(0, colon);
    for (const auto& named : kNamedTypes) {
      if (named.name == name) return StatusFromDuckDB(named.type, message);
    }
  }
  return StatusFromDuckDB(DUCKDB_ERROR_INVALID, message);
}

Status ConsumeErrorData(duckdb_error_data* error, std::string_view context) {
  if (*error == nullptr) return OkStatus();
  Status st = OkStatus();
  if (duckdb_error_data_has_error(*error)) {
    st = WithContext(
        StatusFromDuckDB(duckdb_error_data_error_type(*error), duckdb_error_data_message(*error)),
        context);
  }
  duckdb_destroy_error_data(error);
  return st;
}

Result<TextTable> RunTextQuery(duckdb_connection conn, std::string_view sql) {
  std::string text(sql);
  duckdb_result result;
  if (duckdb_query(conn, text.c_str(), &result) != DuckDBSuccess) {
    Status st = StatusFromDuckDB(duckdb_result_error_type(&result), duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    return st;
  }
  TextTable table;
  idx_t columns = duckdb_column_count(&result);
  idx_t rows = duckdb_row_count(&result);
  for (idx_t c = 0; c < columns; ++c) {
    table.columns.emplace_back(duckdb_column_name(&result, c));
    // duckdb_value_varchar crashes on nested values: such columns must be cast to VARCHAR.
    switch (duckdb_column_type(&result, c)) {
      case DUCKDB_TYPE_LIST:
      case DUCKDB_TYPE_STRUCT:
      case DUCKDB_TYPE_MAP:
      case DUCKDB_TYPE_ARRAY:
      case DUCKDB_TYPE_UNION:
        duckdb_destroy_result(&result);
        return InvalidArgument("engine: column '", table.columns.back(),
                               "' of a text query has a nested type; cast it to VARCHAR");
      default:
        break;
    }
  }
  table.rows.reserve(rows);
  for (idx_t r = 0; r < rows; ++r) {
    auto& row = table.rows.emplace_back();
    for (idx_t c = 0; c < columns; ++c) {
      if (duckdb_value_is_null(&result, c, r)) {
        row.emplace_back(std::nullopt);
        continue;
      }
      char* value = duckdb_value_varchar(&result, c, r);
      row.emplace_back(value != nullptr ? std::string(value) : std::string());
      duckdb_free(value);
    }
  }
  duckdb_destroy_result(&result);
  return table;
}

std::string_view StatementTypeName(duckdb_statement_type type) {
  switch (type) {
    case DUCKDB_STATEMENT_TYPE_SELECT:
      return "SELECT";
    case DUCKDB_STATEMENT_TYPE_INSERT:
      return "INSERT";
    case DUCKDB_STATEMENT_TYPE_UPDATE:
      return "UPDATE";
    case DUCKDB_STATEMENT_TYPE_EXPLAIN:
      return "EXPLAIN";
    case DUCKDB_STATEMENT_TYPE_DELETE:
      return "DELETE";
    case DUCKDB_STATEMENT_TYPE_PREPARE:
      return "PREPARE";
    case DUCKDB_STATEMENT_TYPE_CREATE:
      return "CREATE";
    case DUCKDB_STATEMENT_TYPE_EXECUTE:
      return "EXECUTE";
    case DUCKDB_STATEMENT_TYPE_ALTER:
      return "ALTER";
    case DUCKDB_STATEMENT_TYPE_TRANSACTION:
      return "transaction";
    case DUCKDB_STATEMENT_TYPE_COPY:
      return "COPY";
    case DUCKDB_STATEMENT_TYPE_ANALYZE:
      return "ANALYZE";
    case DUCKDB_STATEMENT_TYPE_VARIABLE_SET:
      return "SET VARIABLE";
    case DUCKDB_STATEMENT_TYPE_CREATE_FUNC:
      return "CREATE FUNCTION";
    case DUCKDB_STATEMENT_TYPE_DROP:
      return "DROP";
    case DUCKDB_STATEMENT_TYPE_EXPORT:
      return "EXPORT";
    case DUCKDB_STATEMENT_TYPE_PRAGMA:
      return "PRAGMA";
    case DUCKDB_STATEMENT_TYPE_VACUUM:
      return "VACUUM";
    case DUCKDB_STATEMENT_TYPE_CALL:
      return "CALL";
    case DUCKDB_STATEMENT_TYPE_SET:
      return "SET";
    case DUCKDB_STATEMENT_TYPE_LOAD:
      return "LOAD/INSTALL";
    case DUCKDB_STATEMENT_TYPE_ATTACH:
      return "ATTACH";
    case DUCKDB_STATEMENT_TYPE_DETACH:
      return "DETACH";
    default:
      return "this kind of";
  }
}

}  // namespace bridge::engine::internal
