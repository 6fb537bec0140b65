// The deterministic demo dataset behind `bridge gen-demo` and `make run`.
#pragma once

#include <cstdint>
#include <filesystem>

#include "bridge/common/status.h"

namespace bridge::app {

struct DemoOptions {
  std::filesystem::path out_dir;
  int64_t rows = 5'000'000;  // trips
  uint64_t seed = 42;
};

// Writes into options.out_dir (created if missing):
//   trips/year=YYYY/month=M/*.parquet  `rows` trips, Hive-partitioned Parquet
//   cities.csv                           50 cities (the trips' city_id dimension)
//   events.ndjson                        app events with nested STRUCT and LIST fields
// Every value derives from (seed, row number) only, so the same options give the same
// data. Returns AlreadyExists if any of the three is there already (nothing is
// overwritten), InvalidArgument for rows < 1.
Status GenerateDemoData(const DemoOptions& options);

}  // namespace bridge::app
