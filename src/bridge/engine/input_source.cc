// The `__bridge_input(token)` table function (see input_source_internal.h).
#include <string>

#include "bridge/engine/input_source_internal.h"

namespace bridge::engine::internal {
namespace {

void InputBind(duckdb_bind_info info) {
  auto* registry = static_cast<InputRegistry*>(duckdb_bind_get_extra_info(info));
  InputEntry* entry = registry->Find(BindTextParameter(info), BindConnectionId(info));
  if (entry == nullptr) {
    duckdb_bind_set_error(info, "__bridge_input is internal to Bridge");
    return;
  }
  const auto& names = entry->feeder.names();
  const auto& types = entry->feeder.types();
  for (size_t i = 0; i < types.size(); ++i) {
    duckdb_bind_add_result_column(info, names[i].c_str(), types[i]);
  }
  duckdb_bind_set_bind_data(info, entry, nullptr);
}

void InputInit(duckdb_init_info info) {
  auto* entry = static_cast<InputEntry*>(duckdb_init_get_bind_data(info));
  if (entry->scanned.exchange(true)) {
    duckdb_init_set_error(info,
                          "engine: the table `input` may be read only once per query (the "
                          "upload streams through once); use a CTE with MATERIALIZED");
    return;
  }
  duckdb_init_set_max_threads(info, 1);
}

void InputProduce(duckdb_function_info info, duckdb_data_chunk output) {
  auto* entry = static_cast<InputEntry*>(duckdb_function_get_bind_data(info));
  Status st = entry->feeder.Produce(entry->conn, *entry->stream, output);
  if (!st.ok()) {
    entry->error = st;
    duckdb_function_set_error(info, std::string(st.message()).c_str());
  }
}

}  // namespace

Result<std::unique_ptr<InputRegistry>> InputRegistry::Create(duckdb_connection internal) {
  auto registry = std::make_unique<InputRegistry>();
  duckdb_table_function function = duckdb_create_table_function();
  duckdb_table_function_set_name(function, kInputFunctionName);
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_table_function_add_parameter(function, varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_table_function_set_extra_info(function, registry.get(), nullptr);
  duckdb_table_function_set_bind(function, InputBind);
  duckdb_table_function_set_init(function, InputInit);
  duckdb_table_function_set_function(function, InputProduce);
  duckdb_state state = duckdb_register_table_function(internal, function);
  duckdb_destroy_table_function(&function);
  if (state != DuckDBSuccess) {
    return Internal("engine: cannot register the input table function");
  }
  return registry;
}

std::string InputRegistry::Add(InputEntry* entry) {
  std::string token = RandomHex();
  std::lock_guard lock(mu_);
  entries_[token] = entry;
  return token;
}

void InputRegistry::Remove(const std::string& token) {
  std::lock_guard lock(mu_);
  entries_.erase(token);
}

InputEntry* InputRegistry::Find(const std::string& token, idx_t connection_id) {
  if (token.empty()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end() || it->second->connection_id != connection_id) return nullptr;
  return it->second;
}

}  // namespace bridge::engine::internal
