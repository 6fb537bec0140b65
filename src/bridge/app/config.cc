#include "bridge/app/config.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "toml++/toml.h"

namespace bridge::app {
namespace {

using Setter = std::function<Status(const toml::node&, const std::string& key)>;

Status WrongType(const std::string& key, const char* expected) {
  return InvalidArgument("config: key '", key, "' must be ", expected);
}

Setter Int(int& target, int64_t lo, int64_t hi) {
  return [&target, lo, hi](const toml::node& node, const std::string& key) -> Status {
    auto v = node.value<int64_t>();
    if (!node.is_integer() || !v) return WrongType(key, "an integer");
    if (*v < lo || *v > hi) {
      return InvalidArgument("config: key '", key, "' = ", *v, " is out of range ", lo, "..", hi);
    }
    target = static_cast<int>(*v);
    return OkStatus();
  };
}

Setter Int64(int64_t& target, int64_t lo, int64_t hi) {
  return [&target, lo, hi](const toml::node& node, const std::string& key) -> Status {
    auto v = node.value<int64_t>();
    if (!node.is_integer() || !v) return WrongType(key, "an integer");
    if (*v < lo || *v > hi) {
      return InvalidArgument("config: key '", key, "' = ", *v, " is out of range ", lo, "..", hi);
    }
    target = *v;
    return OkStatus();
  };
}

Setter Bool(bool& target) {
  return [&target](const toml::node& node, const std::string& key) -> Status {
    if (!node.is_boolean()) return WrongType(key, "true or false");
    target = *node.value<bool>();
    return OkStatus();
  };
}

template <typename T>
Setter Text(T& target) {
  return [&target](const toml::node& node, const std::string& key) -> Status {
    if (!node.is_string()) return WrongType(key, "a string");
    target = T(*node.value<std::string>());
    return OkStatus();
  };
}

Setter TextList(std::vector<std::string>& target) {
  return [&target](const toml::node& node, const std::string& key) -> Status {
    const toml::array* array = node.as_array();
    if (array == nullptr) return WrongType(key, "an array of strings");
    std::vector<std::string> values;
    for (const auto& item : *array) {
      if (!item.is_string()) return WrongType(key, "an array of strings");
      values.push_back(*item.value<std::string>());
    }
    target = std::move(values);
    return OkStatus();
  };
}

std::map<std::string, Setter> Setters(Config& c) {
  return {
      {"data_dir", Text(c.data_dir)},
      {"server.http_host", Text(c.http_host)},
      {"server.http_port", Int(c.http_port, 0, 65535)},
      {"server.flight_port", Int(c.flight_port, 0, 65535)},
      {"http.max_request_bytes", Int64(c.max_request_bytes, 1, int64_t{1} << 40)},
      {"http.max_header_bytes", Int64(c.max_header_bytes, 256, int64_t{1} << 30)},
      {"http.max_sql_length", Int64(c.max_sql_length, 1, int64_t{1} << 40)},
      {"http.max_concurrent_queries", Int(c.max_concurrent_queries, 1, 10000)},
      {"http.max_queued_queries", Int(c.max_queued_queries, 0, 1000000)},
      {"http.max_result_bytes", Int64(c.max_result_bytes, 0, int64_t{1} << 50)},
      {"http.idle_timeout_ms", Int64(c.idle_timeout_ms, 1, int64_t{1} << 40)},
      {"http.shutdown_grace_ms", Int64(c.shutdown_grace_ms, 0, int64_t{1} << 40)},
      {"http.io_threads", Int(c.io_threads, 1, 256)},
      {"flight.endpoints", Int(c.flight_endpoints, 0, 4096)},
      {"flight.max_message_bytes", Int64(c.flight_max_message_bytes, 64 << 10, int64_t{2} << 30)},
      {"flight.keepalive_ms", Int64(c.flight_keepalive_ms, 0, int64_t{1} << 40)},
      {"flight.ticket_ttl_s", Int64(c.flight_ticket_ttl_s, 1, int64_t{1} << 31)},
      {"flight.query_threads", Int(c.flight_query_threads, 1, 1024)},
      {"tls.cert", Text(c.tls_cert)},
      {"tls.key", Text(c.tls_key)},
      {"tls.client_ca", Text(c.tls_client_ca)},
      {"cors.origins", TextList(c.cors_origins)},
      {"auth.users_file", Text(c.users_file)},
      {"auth.token_secret", Text(c.token_secret)},
      {"auth.token_ttl_s", Int64(c.token_ttl_s, 1, int64_t{1} << 31)},
      {"engine.threads", Int(c.threads, 0, 1024)},
      {"engine.memory_limit", Text(c.memory_limit)},
      {"engine.max_sessions", Int(c.max_sessions, 1, 10000)},
      {"engine.query_timeout_ms", Int64(c.query_timeout_ms, 0, int64_t{1} << 40)},
      {"engine.batch_rows", Int64(c.batch_rows, 0, int64_t{1} << 31)},
      {"engine.batch_bytes", Int64(c.batch_bytes, 0, int64_t{1} << 40)},
      {"catalog.watch", Bool(c.watch)},
      {"catalog.debounce_ms", Int64(c.debounce_ms, 0, 600000)},
      {"cache.dir", Text(c.cache_dir)},
      {"cache.bytes", Int64(c.cache_bytes, 0, int64_t{1} << 50)},
      {"cache.max_entry_bytes", Int64(c.cache_max_entry_bytes, 1, int64_t{1} << 50)},
      {"cache.ttl_s", Int64(c.cache_ttl_s, 0, int64_t{1} << 40)},
      {"log.level", Text(c.log_level)},
      {"log.format", Text(c.log_format)},
  };
}

Status Apply(const toml::table& table, const std::string& prefix,
             std::map<std::string, Setter>& setters) {
  for (const auto& [name, node] : table) {
    std::string key =
        prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
    if (const toml::table* sub = node.as_table()) {
      BRIDGE_RETURN_NOT_OK(Apply(*sub, key, setters));
      continue;
    }
    auto it = setters.find(key);
    if (it == setters.end()) return InvalidArgument("config: unknown key '", key, "'");
    BRIDGE_RETURN_NOT_OK(it->second(node, key));
  }
  return OkStatus();
}

}  // namespace

Status LoadConfigFile(const std::filesystem::path& path, Config& config) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound("config: cannot read '", path.string(), "'");
  }
  toml::table table;
  try {
    table = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return InvalidArgument("config: ", path.string(), ":", where.line, ":", where.column, ": ",
                           std::string(e.description()));
  }
  Config updated = config;
  auto setters = Setters(updated);
  BRIDGE_RETURN_NOT_OK(Apply(table, "", setters));
  // Relative paths in the file are relative to the file's folder.
  auto base = path.parent_path();
  if (!updated.data_dir.empty() && updated.data_dir.is_relative()) {
    updated.data_dir = base / updated.data_dir;
  }
  for (std::filesystem::path* p : {&updated.cache_dir, &updated.tls_cert, &updated.tls_key,
                                   &updated.tls_client_ca, &updated.users_file}) {
    if (!p->empty() && p->is_relative()) *p = base / *p;
  }
  config = std::move(updated);
  return OkStatus();
}

Status ValidateConfig(const Config& c) {
  auto port = [](const char* key, int value) -> Status {
    if (value < 0 || value > 65535) {
      return InvalidArgument("config: ", key, " = ", value, " is not a port (0..65535)");
    }
    return OkStatus();
  };
  BRIDGE_RETURN_NOT_OK(port("server.http_port", c.http_port));
  BRIDGE_RETURN_NOT_OK(port("server.flight_port", c.flight_port));
  if (c.threads < 0) return InvalidArgument("config: engine.threads must be >= 0");
  if (c.max_sessions < 1) return InvalidArgument("config: engine.max_sessions must be >= 1");
  if (c.query_timeout_ms < 0) {
    return InvalidArgument("config: engine.query_timeout_ms must be >= 0");
  }
  if (c.batch_rows < 0) return InvalidArgument("config: engine.batch_rows must be >= 0");
  if (c.batch_bytes < 0) return InvalidArgument("config: engine.batch_bytes must be >= 0");
  if (c.debounce_ms < 0) return InvalidArgument("config: catalog.debounce_ms must be >= 0");
  auto positive = [](const char* key, int64_t value, int64_t lo) -> Status {
    if (value < lo) return InvalidArgument("config: ", key, " = ", value, " must be >= ", lo);
    return OkStatus();
  };
  BRIDGE_RETURN_NOT_OK(positive("http.max_request_bytes", c.max_request_bytes, 1));
  BRIDGE_RETURN_NOT_OK(positive("http.max_header_bytes", c.max_header_bytes, 256));
  BRIDGE_RETURN_NOT_OK(positive("http.max_sql_length", c.max_sql_length, 1));
  BRIDGE_RETURN_NOT_OK(positive("http.max_concurrent_queries", c.max_concurrent_queries, 1));
  BRIDGE_RETURN_NOT_OK(positive("http.max_queued_queries", c.max_queued_queries, 0));
  BRIDGE_RETURN_NOT_OK(positive("http.max_result_bytes", c.max_result_bytes, 0));
  BRIDGE_RETURN_NOT_OK(positive("http.idle_timeout_ms", c.idle_timeout_ms, 1));
  BRIDGE_RETURN_NOT_OK(positive("http.shutdown_grace_ms", c.shutdown_grace_ms, 0));
  BRIDGE_RETURN_NOT_OK(positive("http.io_threads", c.io_threads, 1));
  BRIDGE_RETURN_NOT_OK(positive("auth.token_ttl_s", c.token_ttl_s, 1));
  BRIDGE_RETURN_NOT_OK(positive("cache.bytes", c.cache_bytes, 0));
  BRIDGE_RETURN_NOT_OK(positive("cache.max_entry_bytes", c.cache_max_entry_bytes, 1));
  BRIDGE_RETURN_NOT_OK(positive("cache.ttl_s", c.cache_ttl_s, 0));
  BRIDGE_RETURN_NOT_OK(positive("flight.endpoints", c.flight_endpoints, 0));
  BRIDGE_RETURN_NOT_OK(positive("flight.max_message_bytes", c.flight_max_message_bytes, 64 << 10));
  BRIDGE_RETURN_NOT_OK(positive("flight.keepalive_ms", c.flight_keepalive_ms, 0));
  BRIDGE_RETURN_NOT_OK(positive("flight.ticket_ttl_s", c.flight_ticket_ttl_s, 1));
  BRIDGE_RETURN_NOT_OK(positive("flight.query_threads", c.flight_query_threads, 1));
  if (c.max_concurrent_queries > c.max_sessions) {
    return InvalidArgument("config: http.max_concurrent_queries = ", c.max_concurrent_queries,
                           " must be <= engine.max_sessions = ", c.max_sessions);
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return InvalidArgument("config: tls.cert and tls.key must be set together");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    return InvalidArgument("config: tls.client_ca needs tls.cert and tls.key");
  }
  if (c.log_format != "text" && c.log_format != "json") {
    return InvalidArgument("config: log.format must be 'text' or 'json', got '", c.log_format, "'");
  }
  return OkStatus();
}

std::filesystem::path ResolveCacheDir(const Config& config) {
  if (!config.cache_dir.empty()) return config.cache_dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "bridge";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".cache" / "bridge";
  }
  return std::filesystem::temp_directory_path() / "bridge-cache";
}

}  // namespace bridge::app
