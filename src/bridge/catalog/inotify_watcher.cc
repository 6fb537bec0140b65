#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "bridge/catalog/inotify_watcher_internal.h"
#include "bridge/common/errno.h"
#include "spdlog/spdlog.h"

namespace bridge::catalog::internal {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kMaxDepth = 64;
constexpr uint32_t kWatchMask = IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;

}  // namespace

Result<std::unique_ptr<DirectoryWatcher>> DirectoryWatcher::Start(
    const fs::path& root, std::chrono::milliseconds debounce, IgnorePredicate ignore,
    std::function<void()> on_change) {
  int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) {
    return IoError("catalog: inotify_init1: ", ErrnoMessage(errno));
  }
  int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd < 0) {
    int err = errno;
    close(inotify_fd);
    return IoError("catalog: eventfd: ", ErrnoMessage(err));
  }
  std::unique_ptr<DirectoryWatcher> watcher(new DirectoryWatcher(
      root, debounce, std::move(ignore), std::move(on_change), inotify_fd, stop_fd));
  BRIDGE_RETURN_NOT_OK(watcher->SyncWatches());
  watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  return watcher;
}

DirectoryWatcher::DirectoryWatcher(fs::path root, std::chrono::milliseconds debounce,
                                   IgnorePredicate ignore, std::function<void()> on_change,
                                   int inotify_fd, int stop_fd)
    : root_(std::move(root)),
      debounce_(debounce),
      ignore_(std::move(ignore)),
      on_change_(std::move(on_change)),
      inotify_fd_(inotify_fd),
      stop_fd_(stop_fd) {}

DirectoryWatcher::~DirectoryWatcher() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    // An eventfd write of 1 only fails if the counter would overflow: it is already set.
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof(one));
    thread_.join();
  }
  close(inotify_fd_);
  close(stop_fd_);
}

Status DirectoryWatcher::SyncWatches() {
  std::unordered_set<int> seen;
  int wd = inotify_add_watch(inotify_fd_, root_.c_str(), kWatchMask);
  if (wd < 0) {
    return IoError("catalog: cannot watch '", root_.string(), "': ", ErrnoMessage(errno));
  }
  seen.insert(wd);
  AddWatches(root_, seen, 0);
  // Folders moved out of the tree (or renamed to ignored names) keep their watch otherwise.
  for (int old : watches_) {
    if (!seen.contains(old)) inotify_rm_watch(inotify_fd_, old);
  }
  watches_ = std::move(seen);
  return OkStatus();
}

void DirectoryWatcher::AddWatches(const fs::path& dir, std::unordered_set<int>& seen, int depth) {
  if (depth > kMaxDepth) return;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (ignore_(name)) continue;
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || it->is_symlink(type_ec)) continue;
    int wd = inotify_add_watch(inotify_fd_, it->path().c_str(), kWatchMask);
    if (wd < 0) {
      int err = errno;
      if (err == ENOSPC && !limit_logged_) {
        limit_logged_ = true;
        spdlog::warn(
            "catalog: inotify watch limit reached at '{}'; changes below it are seen only by "
            "explicit refreshes (raise fs.inotify.max_user_watches)",
            it->path().string());
      } else if (err != ENOENT && err != ENOTDIR) {
        spdlog::warn("catalog: cannot watch '{}': {}", it->path().string(), ErrnoMessage(err));
      }
      continue;
    }
    seen.insert(wd);
    AddWatches(it->path(), seen, depth + 1);
  }
}

bool DirectoryWatcher::ReadEvents(bool& resync) {
  alignas(inotify_event) char buffer[64 * 1024];
  bool relevant = false;
  for (;;) {
    ssize_t n = read(inotify_fd_, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) spdlog::warn("catalog: reading inotify events: {}", ErrnoMessage(errno));
      return relevant;
    }
    if (n == 0) return relevant;
    for (ssize_t offset = 0; offset + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      inotify_event event;
      std::memcpy(&event, buffer + offset, sizeof(event));
      std::string_view name;
      if (event.len > 0) {
        const char* start = buffer + offset + sizeof(inotify_event);
        name = std::string_view(start, strnlen(start, event.len));
      }
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event.len);

      if (event.mask & IN_Q_OVERFLOW) {
        relevant = true;
        resync = true;
        continue;
      }
      if (event.mask & IN_IGNORED) {
        watches_.erase(event.wd);
        continue;
      }
      if (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        // The watched folder itself went away; its parent's event covers the change, unless
        // it is the root.
        relevant = true;
        resync = true;
        continue;
      }
      if (!name.empty() && ignore_(name)) continue;
      relevant = true;
      if ((event.mask & IN_ISDIR) && (event.mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM))) {
        resync = true;
      }
    }
  }
}

void DirectoryWatcher::Run() {
  pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  const auto max_delay = debounce_ * 10;
  bool pending = false;
  Clock::time_point first_event;
  Clock::time_point last_event;
  for (;;) {
    int timeout_ms = -1;
    if (pending) {
      Clock::time_point due = std::min(last_event + debounce_, first_event + max_delay);
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, wait.count()));
    }
    int ready = poll(fds, 2, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      spdlog::error("catalog: watcher stopped: poll: {}", ErrnoMessage(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents & POLLIN) {
      bool resync = false;
      if (ReadEvents(resync)) {
        Clock::time_point now = Clock::now();
        if (!pending) first_event = now;
        pending = true;
        last_event = now;
      }
      if (resync) {
        // Watch new folders at once, so files written into them right away are seen.
        Status st = SyncWatches();
        if (!st.ok()) spdlog::warn("{}", std::string(st.message()));
      }
    }
    if (pending) {
      Clock::time_point now = Clock::now();
      if (now >= last_event + debounce_ || now >= first_event + max_delay) {
        pending = false;
        on_change_();
      }
    }
  }
}

}  // namespace bridge::catalog::internal
