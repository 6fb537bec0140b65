#include "bridge/http/rows_query.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>

namespace bridge::http {
namespace {

constexpr size_t kMaxInValues = 1000;
constexpr size_t kMaxFilters = 100;

const catalog::ColumnInfo* FindColumn(const catalog::TableInfo& table, std::string_view name) {
  for (const catalog::ColumnInfo& column : table.columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

Result<const catalog::ColumnInfo*> RequireColumn(const catalog::TableInfo& table,
                                                 std::string_view name, std::string_view key) {
  const catalog::ColumnInfo* column = FindColumn(table, name);
  if (column == nullptr) {
    return InvalidArgument("http: ", key, ": table '", table.name, "' has no column '", name, "'");
  }
  return column;
}

// DuckDB type names that are safe to splice into CAST(... AS <type>): upper-case words with
// an optional (precision[,scale]). Nested types (STRUCT(...), MAP(...), lists, ENUM('...'))
// carry names of their own and are refused.
bool IsSimpleType(std::string_view type) {
  if (type.empty() || type.size() >= 64) return false;
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t paren = type.find('(');
  std::string_view words = type.substr(0, paren);
  // Words: [A-Z][A-Z0-9_]* separated by single spaces.
  bool word_start = true;
  for (char c : words) {
    if (word_start) {
      if (!upper(c)) return false;
      word_start = false;
    } else if (c == ' ') {
      word_start = true;
    } else if (!upper(c) && !digit(c) && c != '_') {
      return false;
    }
  }
  if (word_start) return false;  // empty or trailing space
  if (paren == std::string_view::npos) return true;
  // "(p)" or "(p,s)" / "(p, s)".
  std::string_view args = type.substr(paren);
  if (args.size() < 3 || args.back() != ')') return false;
  args = args.substr(1, args.size() - 2);
  size_t comma = args.find(',');
  std::string_view first = args.substr(0, comma);
  std::string_view second;
  if (comma != std::string_view::npos) {
    second = args.substr(comma + 1);
    if (!second.empty() && second.front() == ' ') second.remove_prefix(1);
    if (second.empty()) return false;
  }
  return !first.empty() && std::all_of(first.begin(), first.end(), digit) &&
         std::all_of(second.begin(), second.end(), digit);
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t pos = text.find(separator);
    parts.push_back(text.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    text.remove_prefix(pos + 1);
  }
}

enum class Op { kEq, kNeq, kLt, kLte, kGt, kGte, kLike, kIlike, kIs, kIn };

std::optional<Op> ParseOp(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, Op>, 10> kOps = {{
      {"eq", Op::kEq},
      {"neq", Op::kNeq},
      {"lt", Op::kLt},
      {"lte", Op::kLte},
      {"gt", Op::kGt},
      {"gte", Op::kGte},
      {"like", Op::kLike},
      {"ilike", Op::kIlike},
      {"is", Op::kIs},
      {"in", Op::kIn},
  }};
  for (const auto& [op_name, op] : kOps) {
    if (op_name == name) return op;
  }
  return std::nullopt;
}

std::string_view ComparisonSql(Op op) {
  switch (op) {
    case Op::kEq:
      return "=";
    case Op::kNeq:
      return "<>";
    case Op::kLt:
      return "<";
    case Op::kLte:
      return "<=";
    case Op::kGt:
      return ">";
    default:
      return ">=";
  }
}

class Builder {
 public:
  explicit Builder(const catalog::TableInfo& table) : table_(table) {}

  // Returns "$n" for a new parameter holding `value`.
  std::string Bind(engine::Value value) {
    params_.push_back(std::move(value));
    return StrCat("$", params_.size());
  }

  Result<std::string> CastParam(const catalog::ColumnInfo& column, std::string_view value) {
    if (!IsSimpleType(column.type)) {
      return InvalidArgument("http: filter: cannot compare column '", column.name, "' of type ",
                             column.type);
    }
    return StrCat("CAST(", Bind(std::string(value)), " AS ", column.type, ")");
  }

  // filter=<col>.<op>.<value>; the column name may itself hold dots.
  Result<std::string> Filter(std::string_view filter) {
    const catalog::ColumnInfo* column = nullptr;
    std::optional<Op> op;
    std::string_view value;
    bool found = false;
    for (size_t dot = filter.find('.'); dot != std::string_view::npos;
         dot = filter.find('.', dot + 1)) {
      std::string_view rest = filter.substr(dot + 1);
      size_t op_end = rest.find('.');
      if (op_end == std::string_view::npos) break;
      column = FindColumn(table_, filter.substr(0, dot));
      op = ParseOp(rest.substr(0, op_end));
      if (column != nullptr && op) {
        value = rest.substr(op_end + 1);
        found = true;
        break;
      }
    }
    if (!found) return FilterError(filter);

    std::string lhs = engine::QuoteIdentifier(column->name);
    switch (*op) {
      case Op::kEq:
      case Op::kNeq:
      case Op::kLt:
      case Op::kLte:
      case Op::kGt:
      case Op::kGte: {
        BRIDGE_ASSIGN_OR_RETURN(std::string rhs, CastParam(*column, value));
        return StrCat(lhs, " ", ComparisonSql(*op), " ", rhs);
      }
      case Op::kLike:
      case Op::kIlike:
        if (column->type != "VARCHAR") {
          return InvalidArgument("http: filter: ", *op == Op::kLike ? "like" : "ilike",
                                 " needs a VARCHAR column; '", column->name, "' is ", column->type);
        }
        return StrCat(lhs, *op == Op::kLike ? " LIKE " : " ILIKE ", Bind(std::string(value)));
      case Op::kIs:
        if (value == "null") return StrCat(lhs, " IS NULL");
        if (value == "notnull") return StrCat(lhs, " IS NOT NULL");
        if (value == "true" || value == "false") {
          if (column->type != "BOOLEAN") {
            return InvalidArgument("http: filter: is.", value, " needs a BOOLEAN column; '",
                                   column->name, "' is ", column->type);
          }
          return StrCat(lhs, value == "true" ? " IS TRUE" : " IS FALSE");
        }
        return InvalidArgument("http: filter: is takes null, notnull, true or false; got '", value,
                               "'");
      case Op::kIn: {
        std::string_view list = value;
        if (list.size() >= 2 && list.front() == '(' && list.back() == ')') {
          list = list.substr(1, list.size() - 2);
        }
        if (list.empty()) return InvalidArgument("http: filter: in needs at least one value");
        std::vector<std::string_view> items = Split(list, ',');
        if (items.size() > kMaxInValues) {
          return InvalidArgument("http: filter: in takes at most ", kMaxInValues, " values");
        }
        std::string sql = StrCat(lhs, " IN (");
        for (size_t i = 0; i < items.size(); ++i) {
          BRIDGE_ASSIGN_OR_RETURN(std::string rhs, CastParam(*column, items[i]));
          sql += (i == 0 ? "" : ", ") + rhs;
        }
        return sql + ")";
      }
    }
    return FilterError(filter);
  }

  // One element of order=: <col>[.asc|.desc][.nullsfirst|.nullslast].
  Result<std::string> OrderItem(std::string_view item) {
    if (const catalog::ColumnInfo* column = FindColumn(table_, item)) {
      return engine::QuoteIdentifier(column->name);
    }
    std::vector<std::string_view> parts = Split(item, '.');
    // Try one then two modifiers at the end.
    for (size_t modifiers = 1; modifiers <= 2 && modifiers < parts.size(); ++modifiers) {
      size_t name_parts = parts.size() - modifiers;
      size_t name_length =
          parts[name_parts - 1].data() + parts[name_parts - 1].size() - item.data();
      const catalog::ColumnInfo* column = FindColumn(table_, item.substr(0, name_length));
      if (column == nullptr) continue;
      std::string direction, nulls;
      bool ok = true;
      for (size_t i = name_parts; i < parts.size() && ok; ++i) {
        if ((parts[i] == "asc" || parts[i] == "desc") && direction.empty() && nulls.empty()) {
          direction = parts[i] == "asc" ? " ASC" : " DESC";
        } else if ((parts[i] == "nullsfirst" || parts[i] == "nullslast") && nulls.empty()) {
          nulls = parts[i] == "nullsfirst" ? " NULLS FIRST" : " NULLS LAST";
        } else {
          ok = false;
        }
      }
      if (ok) return StrCat(engine::QuoteIdentifier(column->name), direction, nulls);
    }
    return InvalidArgument("http: order: '", item,
                           "' is not <column>[.asc|.desc]"
                           "[.nullsfirst|.nullslast] for a column of table '",
                           table_.name, "'");
  }

  std::vector<engine::Value> TakeParams() { return std::move(params_); }

 private:
  Status FilterError(std::string_view filter) {
    size_t dot = filter.find('.');
    if (dot != std::string_view::npos && filter.find('.', dot + 1) != std::string_view::npos &&
        !FindColumn(table_, filter.substr(0, dot))) {
      // The common case: a plain column name that does not exist.
      bool any_column = false;
      for (size_t d = dot; d != std::string_view::npos; d = filter.find('.', d + 1)) {
        any_column = any_column || FindColumn(table_, filter.substr(0, d)) != nullptr;
      }
      if (!any_column) {
        return InvalidArgument("http: filter: table '", table_.name, "' has no column '",
                               filter.substr(0, dot), "'");
      }
    }
    return InvalidArgument("http: filter: '", filter,
                           "' is not <column>.<op>.<value> with op "
                           "eq, neq, lt, lte, gt, gte, like, ilike, is or in");
  }

  const catalog::TableInfo& table_;
  std::vector<engine::Value> params_;
};

Result<std::optional<std::string_view>> Single(const Params& params, std::string_view key) {
  std::optional<std::string_view> found;
  for (const auto& [name, value] : params) {
    if (name != key) continue;
    if (found) return InvalidArgument("http: ", key, " appears more than once");
    found = value;
  }
  return found;
}

}  // namespace

Result<RowsQuery> BuildRowsQuery(const catalog::TableInfo& table, const Params& params) {
  if (!table.error.empty() || table.columns.empty()) {
    return InvalidArgument("http: table '", table.name, "' cannot be read: ",
                           table.error.empty() ? "it has no columns" : table.error);
  }
  Builder builder(table);

  std::string select = "*";
  BRIDGE_ASSIGN_OR_RETURN(std::optional<std::string_view> columns, Single(params, "columns"));
  if (columns) {
    select.clear();
    for (std::string_view name : Split(*columns, ',')) {
      BRIDGE_ASSIGN_OR_RETURN(const catalog::ColumnInfo* column,
                              RequireColumn(table, name, "columns"));
      if (!select.empty()) select += ", ";
      select += engine::QuoteIdentifier(column->name);
    }
  }

  std::string where;
  size_t filters = 0;
  for (const auto& [name, value] : params) {
    if (name != "filter") continue;
    if (++filters > kMaxFilters) {
      return InvalidArgument("http: at most ", kMaxFilters, " filters");
    }
    BRIDGE_ASSIGN_OR_RETURN(std::string condition, builder.Filter(value));
    where += where.empty() ? " WHERE " : " AND ";
    where += condition;
  }

  std::string order_by;
  BRIDGE_ASSIGN_OR_RETURN(std::optional<std::string_view> order, Single(params, "order"));
  if (order) {
    for (std::string_view item : Split(*order, ',')) {
      BRIDGE_ASSIGN_OR_RETURN(std::string sql, builder.OrderItem(item));
      order_by += order_by.empty() ? " ORDER BY " : ", ";
      order_by += sql;
    }
  }

  std::string tail;
  BRIDGE_ASSIGN_OR_RETURN(std::optional<std::string_view> limit, Single(params, "limit"));
  if (limit) {
    BRIDGE_ASSIGN_OR_RETURN(int64_t n, ParseNonNegative("limit", *limit));
    tail += StrCat(" LIMIT ", builder.Bind(n));
  }
  BRIDGE_ASSIGN_OR_RETURN(std::optional<std::string_view> offset, Single(params, "offset"));
  if (offset) {
    BRIDGE_ASSIGN_OR_RETURN(int64_t n, ParseNonNegative("offset", *offset));
    tail += StrCat(" OFFSET ", builder.Bind(n));
  }

  RowsQuery query;
  query.sql = StrCat("SELECT ", select, " FROM ", engine::QuoteIdentifier(table.name), where,
                     order_by, tail);
  query.params = builder.TakeParams();
  return query;
}

}  // namespace bridge::http
