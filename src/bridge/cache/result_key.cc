#include "bridge/cache/result_key.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>
#include <unordered_map>

#include "nlohmann/json.hpp"

namespace bridge::cache {
namespace {

using Json = nlohmann::json;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Returns every value of the first column (VARCHAR, no nulls) of `stream`, in order.
Result<std::vector<std::string>> TextColumn(engine::BatchStream& stream) {
  std::vector<std::string> out;
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream.Next());
    if (!batch.valid()) return out;
    const ArrowArray& column = *batch->children[0];
    const auto* offsets = static_cast<const int32_t*>(column.buffers[1]);
    const char* chars = static_cast<const char*>(column.buffers[2]);
    for (int64_t i = column.offset; i < column.offset + column.length; ++i) {
      out.emplace_back(chars + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
    }
  }
}

// Names of the functions whose result may differ between two runs of the same query, read
// once from DuckDB (its function list is fixed: extensions cannot be loaded). The set lives
// as long as the process.
Result<const std::set<std::string>*> VolatileFunctions(engine::Session& session) {
  static std::mutex mu;
  static std::optional<std::set<std::string>> names;
  std::lock_guard lock(mu);
  if (names) return &*names;
  BRIDGE_ASSIGN_OR_RETURN(
      auto stream, session.Query("SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                                 "WHERE stability IS DISTINCT FROM 'CONSISTENT'"));
  BRIDGE_ASSIGN_OR_RETURN(std::vector<std::string> list, TextColumn(*stream));
  names.emplace(list.begin(), list.end());
  return &*names;
}

// What the walk over the parse tree found.
struct References {
  std::set<std::string> tables;  // lower-case BASE_TABLE names
  std::set<std::string> ctes;    // lower-case CTE names
  bool cacheable = true;
};

void Walk(const Json& node, const std::set<std::string>& volatile_functions, References& refs) {
  if (!refs.cacheable) return;
  if (node.is_array()) {
    for (const Json& child : node) Walk(child, volatile_functions, refs);
    return;
  }
  if (!node.is_object()) return;
  auto type = node.find("type");
  if (type != node.end() && type->is_string()) {
    const std::string& t = type->get_ref<const std::string&>();
    if (t == "TABLE_FUNCTION") {
      refs.cacheable = false;
      return;
    }
    if (t == "BASE_TABLE") {
      auto catalog = node.find("catalog_name");
      auto schema = node.find("schema_name");
      bool plain = (catalog == node.end() || *catalog == "") &&
                   (schema == node.end() || *schema == "" || *schema == "main");
      auto name = node.find("table_name");
      if (!plain || name == node.end() || !name->is_string()) {
        refs.cacheable = false;
        return;
      }
      refs.tables.insert(Lower(name->get_ref<const std::string&>()));
    }
  }
  auto cls = node.find("class");
  if (cls != node.end() && *cls == "FUNCTION") {
    auto name = node.find("function_name");
    if (name != node.end() && name->is_string() &&
        volatile_functions.count(Lower(name->get_ref<const std::string&>())) > 0) {
      refs.cacheable = false;
      return;
    }
  }
  auto cte_map = node.find("cte_map");
  if (cte_map != node.end() && cte_map->is_object()) {
    auto map = cte_map->find("map");
    if (map != cte_map->end() && map->is_array()) {
      for (const Json& entry : *map) {
        auto key = entry.find("key");
        if (key != entry.end() && key->is_string()) {
          refs.ctes.insert(Lower(key->get_ref<const std::string&>()));
        }
      }
    }
  }
  for (const auto& [key, child] : node.items()) {
    if (child.is_structured()) Walk(child, volatile_functions, refs);
  }
}

// What DuckDB's parse tree of `sql` says (one json_serialize_sql query).
Result<References> ParseReferences(engine::Session& session, std::string_view sql) {
  BRIDGE_ASSIGN_OR_RETURN(const std::set<std::string>* volatile_functions,
                          VolatileFunctions(session));
  engine::Value text = std::string(sql);
  BRIDGE_ASSIGN_OR_RETURN(
      auto stream, session.Query("SELECT json_serialize_sql($1::VARCHAR)", std::span(&text, 1)));
  BRIDGE_ASSIGN_OR_RETURN(std::vector<std::string> rows, TextColumn(*stream));
  References refs;
  refs.cacheable = false;
  if (rows.size() != 1) return refs;
  Json tree = Json::parse(rows[0], nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded() || tree.value("error", true)) return refs;
  auto statements = tree.find("statements");
  if (statements == tree.end() || !statements->is_array() || statements->size() != 1) {
    return refs;
  }
  refs.cacheable = true;
  Walk(*statements, *volatile_functions, refs);
  return refs;
}

// The parse of a SQL text never changes (which names are catalog tables is decided against
// the catalog at each lookup), so it is remembered: a cache hit then runs no query at all.
// Bounded: the memo is emptied when it holds kMemoEntries texts.
constexpr size_t kMemoEntries = 4096;
constexpr size_t kMemoTextBytes = 16 << 10;  // longer texts are parsed every time

Result<References> MemoizedReferences(engine::Session& session, std::string_view sql) {
  if (sql.size() > kMemoTextBytes) return ParseReferences(session, sql);
  static std::mutex mu;
  static std::unordered_map<std::string, References> memo;
  {
    std::lock_guard lock(mu);
    auto it = memo.find(std::string(sql));
    if (it != memo.end()) return it->second;
  }
  BRIDGE_ASSIGN_OR_RETURN(References refs, ParseReferences(session, sql));
  std::lock_guard lock(mu);
  if (memo.size() >= kMemoEntries) memo.clear();
  memo.emplace(std::string(sql), refs);
  return refs;
}

}  // namespace

std::string EncodeParameter(const engine::Value& value) {
  struct Visitor {
    std::string operator()(std::monostate) const { return "null"; }
    std::string operator()(bool b) const { return b ? "bool:true" : "bool:false"; }
    std::string operator()(int64_t i) const { return StrCat("int64:", i); }
    std::string operator()(double d) const {
      char text[64];
      std::snprintf(text, sizeof(text), "double:%.17g", d);
      return text;
    }
    std::string operator()(const std::string& s) const { return "text:" + s; }
    std::string operator()(const engine::Blob& b) const { return "blob:" + b.bytes; }
  };
  return std::visit(Visitor{}, value);
}

Result<std::optional<CacheKey>> ResultKey(engine::Session& session, const catalog::Catalog& catalog,
                                          std::string_view sql,
                                          std::span<const engine::Value> params,
                                          std::string output_options) {
  BRIDGE_ASSIGN_OR_RETURN(References refs, MemoizedReferences(session, sql));
  if (!refs.cacheable) return std::nullopt;
  CacheKey key;
  key.sql = NormalizeSql(sql);
  for (const engine::Value& p : params) key.parameters.push_back(EncodeParameter(p));
  key.output_options = std::move(output_options);
  for (const std::string& name : refs.tables) {
    if (refs.ctes.count(name) > 0) continue;
    std::optional<catalog::TableInfo> table = catalog.Table(name);
    if (!table || !table->error.empty()) return std::nullopt;
    // The fingerprint, not the catalog version: versions restart with the process, and
    // entries outlive it.
    key.tables.push_back({table->name, table->fingerprint});
  }
  return key;
}

}  // namespace bridge::cache
