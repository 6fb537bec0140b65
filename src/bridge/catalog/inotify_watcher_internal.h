// Private to catalog/: a Linux inotify watch over a folder tree that calls back, debounced,
// after something in it changed.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "bridge/common/status.h"

namespace bridge::catalog::internal {

// Watches a folder and all its sub-folders (adding watches for folders created later) on one
// background thread. After an event it waits until the tree has been quiet for `debounce`
// (at most 10 * debounce after the first event) and then calls `on_change` on that thread.
// Which files changed is not reported: the callback rescans.
//
// Thread safety: the object is created and destroyed by one thread; `on_change` runs only on
// the watcher thread, never twice at once. Destruction wakes the thread, waits for a running
// `on_change` to return and joins; no callback starts afterwards.
class DirectoryWatcher {
 public:
  // Returns true for names not to watch nor react to (files and folders).
  using IgnorePredicate = std::function<bool(std::string_view name)>;

  // Starts watching `root`. Returns IoError if inotify is unavailable or `root` cannot be
  // watched. Sub-folders that cannot be watched (watch limit reached) are logged and skipped.
  static Result<std::unique_ptr<DirectoryWatcher>> Start(const std::filesystem::path& root,
                                                         std::chrono::milliseconds debounce,
                                                         IgnorePredicate ignore,
                                                         std::function<void()> on_change);
  ~DirectoryWatcher();

  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

 private:
  DirectoryWatcher(std::filesystem::path root, std::chrono::milliseconds debounce,
                   IgnorePredicate ignore, std::function<void()> on_change, int inotify_fd,
                   int stop_fd);

  void Run();
  // Reads the queued events; returns whether any is relevant, and sets `resync` when the set
  // of folders may have changed.
  bool ReadEvents(bool& resync);
  // Walks the tree and makes the set of watches match its folders.
  Status SyncWatches();
  void AddWatches(const std::filesystem::path& dir, std::unordered_set<int>& seen, int depth);

  const std::filesystem::path root_;
  const std::chrono::milliseconds debounce_;
  const IgnorePredicate ignore_;
  const std::function<void()> on_change_;
  const int inotify_fd_;
  const int stop_fd_;                // eventfd written by the destructor
  std::unordered_set<int> watches_;  // watch descriptors; used by the watcher thread only
  bool limit_logged_ = false;
  std::thread thread_;
};

}  // namespace bridge::catalog::internal
