// Private to engine/: the table function behind Session::QueryWithInput's `input` table.
//
// `__bridge_input(token)` is registered once per database (it is in the catalog, so any
// connection can name it). Its bind accepts only a token registered for the very connection
// that binds it, while that connection runs QueryWithInput; everywhere else it fails, so a
// user cannot reach another session's upload.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bridge/common/status.h"
#include "bridge/engine/arrow_scan_internal.h"
#include "bridge/engine/engine.h"
#include "duckdb.h"

namespace bridge::engine::internal {

inline constexpr const char* kInputFunctionName = "__bridge_input";

// One QueryWithInput in progress.
struct InputEntry {
  duckdb_connection conn = nullptr;  // the session's connection
  idx_t connection_id = 0;
  InputStream* stream = nullptr;
  ArrowChunkFeeder feeder;           // prepared with the stream's schema before registering
  std::atomic<bool> scanned{false};  // the stream may be scanned once
  Status error;                      // the stream's failure, if any (set by the scan)
};

// The registered inputs, keyed by random token. Thread-safe.
class InputRegistry {
 public:
  // Registers the table function through `internal`. The registry must outlive the database.
  static Result<std::unique_ptr<InputRegistry>> Create(duckdb_connection internal);

  // Makes `entry` reachable by its connection; returns its token. `entry` must stay alive
  // until Remove(token).
  std::string Add(InputEntry* entry);
  void Remove(const std::string& token);

  // The entry of `token` if it was registered for `connection_id`, else null.
  InputEntry* Find(const std::string& token, idx_t connection_id);

 private:
  std::mutex mu_;
  std::map<std::string, InputEntry*> entries_;
};

}  // namespace bridge::engine::internal
