// Small helpers the benchmark programs share: failing loudly on an error.
#pragma once

#include <errno.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "bridge/common/status.h"

namespace bridge::bench {

// Prints "<program>: <status>" to stderr and exits with 1.
[[noreturn]] inline void Die(const Status& status) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, status.ToString().c_str());
  std::exit(1);
}

// The value of `r`, or Die.
template <typename T>
T Check(Result<T> r) {
  if (!r.ok()) Die(r.status());
  return std::move(r).value();
}

}  // namespace bridge::bench
