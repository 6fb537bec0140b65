// Test helpers shared by every module's tests. Linked only into test binaries.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bridge/common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    const ::bridge::Status _st = ::bridge::internal::ToStatus((expr)); \
    ASSERT_TRUE(_st.ok()) << #expr << " failed: " << _st.ToString();   \
  } while (false)

#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    const ::bridge::Status _st = ::bridge::internal::ToStatus((expr)); \
    EXPECT_TRUE(_st.ok()) << #expr << " failed: " << _st.ToString();   \
  } while (false)

#define BRIDGE_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, rexpr)                    \
  auto tmp = (rexpr);                                                        \
  ASSERT_TRUE(tmp.ok()) << #rexpr << " failed: " << tmp.status().ToString(); \
  lhs = std::move(tmp).value()

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  BRIDGE_ASSERT_OK_AND_ASSIGN_IMPL(BRIDGE_CONCAT(_assert_result_, __LINE__), lhs, rexpr)

// Expects that `expr` (a Status or Result) failed with `status_code` and a message
// containing `substr`. More context can be streamed in with <<.
#define EXPECT_STATUS(expr, status_code, substr) \
  EXPECT_TRUE(                                   \
      ::bridge::testing::StatusIs(::bridge::internal::ToStatus((expr)), (status_code), (substr)))

namespace bridge::testing {

::testing::AssertionResult StatusIs(const Status& status, StatusCode code, std::string_view substr);

// A fresh folder under the system temp folder, removed with everything in it on
// destruction. Not thread-safe.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Writes `contents` to `path`, creating parent folders.
void WriteFile(const std::filesystem::path& path, std::string_view contents);

// The bytes of the file at `path`; empty if it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

// Flips the bits of one byte of `path` at `numerator / denominator` of its size (e.g. 1/2 =
// the middle), in place, as a failing disk would; returns that offset.
int64_t FlipByteAt(const std::filesystem::path& path, int64_t numerator, int64_t denominator);

// The only file with extension `ext` (".arrow") directly in `dir`; empty if none or several.
std::filesystem::path OnlyFileWithExtension(const std::filesystem::path& dir, std::string_view ext);

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is a path) with stdin from /dev/null and returns its exit code,
// stdout and stderr. Kills it after `timeout_seconds`.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_seconds = 120);

// A child process with stdout and stderr captured, for tests that run a server. Killed
// on destruction if still running. Not thread-safe.
class ChildProcess {
 public:
  // Starts `argv` (argv[0] is a path) with stdin from /dev/null.
  static Result<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv);
  ~ChildProcess();

  // Reads output until stderr+stdout contain `text` (returns true) or the process exits or
  // `timeout_seconds` pass (returns false).
  bool WaitForOutput(std::string_view text, int timeout_seconds = 30);
  // Sends `signal` to the process.
  void Signal(int signal);
  // Waits up to `timeout_seconds` for the exit; returns the exit code, -1 if killed by a
  // signal or still running (then it is killed).
  int Wait(int timeout_seconds = 30);
  // Everything read so far from stdout and stderr, interleaved.
  const std::string& output() const { return output_; }

 private:
  ChildProcess() = default;
  // Reads what is available within `timeout_ms`; returns false at end of output.
  bool Pump(int timeout_ms);

  int pid_ = -1;
  int fd_ = -1;
  std::string output_;
};

// Returns the path of the `bridge` binary under test (from $BRIDGE_BINARY).
std::string BridgeBinary();

// Returns the absolute path of the executable `name` on $PATH, or "" when there is none.
std::string FindOnPath(std::string_view name);

// Opens a TCP connection to 127.0.0.1:`port` (with SO_RCVBUF = `receive_buffer` when > 0,
// set before connecting); returns the socket, or -1 if the connection is refused.
int ConnectLoopback(int port, int receive_buffer = 0);

// Whether `reply` (raw HTTP) ends as a complete chunked query response of Bridge: the last
// chunk, the trailer "Server-Timing: engine;dur=<milliseconds with 3 decimals>", the empty
// line. A response cut short ends without them.
bool EndsWithServerTimingTrailer(std::string_view reply);

}  // namespace bridge::testing
