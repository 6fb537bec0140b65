#include <cstdio>

#include "bridge/engine/engine.h"

int main() {
  std::printf("bridge (DuckDB %s)\n", bridge::engine::DuckDBVersion().c_str());
  return 0;
}
