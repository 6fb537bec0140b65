// One batch per DuckDB chunk, or coalesced batches? Measures what coalescing costs.
//
// DuckDB hands out results in chunks of at most 2048 rows. Handing each to the client as
// its own record batch costs nothing here but makes every downstream step pay per batch
// (IPC metadata, a write per batch, the client's per-batch overhead); coalescing chunks
// into bigger batches with ipc::Concatenate copies every byte once more. This benchmark
// runs the same 5M-row × 5-column query (BIGINT, DOUBLE, VARCHAR, TIMESTAMP, INTEGER) and
//   - OneBatchPerChunk:  pulls the chunks (the baseline: what streaming costs anyway),
//   - CoalesceRows/N:    pulls them and concatenates every N rows into one batch,
//   - CoalesceBytes/N:   the same with a byte target (ipc::EstimateBytes),
//   - ConcatenateOnly/N: concatenates chunks collected beforehand: the copy alone,
// reporting rows/s and bytes/s (items_per_second, bytes_per_second), the number of batches
// a client receives ("batches"), the time per row ("time_per_row") and, when coalescing, the
// thread CPU time spent inside Concatenate per row ("concat_cpu_ns_per_row": unlike wall
// time it does not move when other processes compete for the cores) and the share of the
// wall time spent there ("concat_pct").
//
// Run: build/release/bench/coalesce_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "bridge/arrow/concatenate.h"
#include "bridge/engine/engine.h"

namespace bridge {
namespace {

constexpr int64_t kRows = 5'000'000;

std::string Query() {
  return StrCat(
      "SELECT range AS id, range * 0.5 AS x, 'item-' || (range % 100000) AS name, "
      "TIMESTAMP '2024-01-01' + to_microseconds(range) AS ts, (range % 1000)::INTEGER AS k "
      "FROM range(",
      kRows, ")");
}

using bench::Die;

// The database and session every benchmark shares (opened once, never closed).
engine::Session& SharedSession() {
  static engine::Session* session = [] {
    engine::EngineOptions options;
    options.data_dir = std::filesystem::temp_directory_path();
    auto db = engine::Database::Open(options);
    if (!db.ok()) Die(db.status());
    auto s = (*db)->Connect();
    if (!s.ok()) Die(s.status());
    (void)db->release();  // lives as long as the process
    return s->release();
  }();
  return *session;
}

std::unique_ptr<engine::BatchStream> RunQuery() {
  auto stream = SharedSession().Query(Query());
  if (!stream.ok()) Die(stream.status());
  return std::move(stream).value();
}

struct Totals {
  int64_t rows = 0;
  int64_t bytes = 0;
  int64_t batches = 0;             // batches handed to the client
  double concat_cpu_seconds = -1;  // thread CPU time inside Concatenate; < 0 = not measured
  double concat_wall_seconds = 0;
  double wall_seconds = 0;  // of the whole runs
};

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Report(benchmark::State& state, const Totals& t) {
  const auto iterations = static_cast<double>(state.iterations());
  state.SetItemsProcessed(t.rows);
  state.SetBytesProcessed(t.bytes);
  state.counters["batches"] = static_cast<double>(t.batches) / iterations;
  state.counters["rows_per_batch"] = t.batches > 0 ? static_cast<double>(t.rows) / t.batches : 0;
  state.counters["time_per_row"] = benchmark::Counter(
      static_cast<double>(t.rows), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if (t.concat_cpu_seconds >= 0 && t.rows > 0 && t.wall_seconds > 0) {
    state.counters["concat_cpu_ns_per_row"] = t.concat_cpu_seconds * 1e9 / t.rows;
    state.counters["concat_pct"] = 100 * t.concat_wall_seconds / t.wall_seconds;
  }
}

// Coalesces pending chunks once they reach a row or byte target.
class Coalescer {
 public:
  Coalescer(const ArrowSchema& schema, int64_t target_rows, int64_t target_bytes)
      : schema_(schema), target_rows_(target_rows), target_bytes_(target_bytes) {}

  // Takes `chunk`; returns a coalesced batch when a target is reached, else an empty one.
  ipc::OwnedArray Add(ipc::OwnedArray chunk) {
    rows_ += chunk->length;
    if (target_bytes_ > 0) bytes_ += ipc::EstimateBytes(schema_, *chunk);
    pending_.push_back(std::move(chunk));
    if ((target_rows_ > 0 && rows_ >= target_rows_) ||
        (target_bytes_ > 0 && bytes_ >= target_bytes_)) {
      return Flush();
    }
    return {};
  }

  // Returns the pending chunks as one batch (empty if none are pending).
  ipc::OwnedArray Flush() {
    if (pending_.empty()) return {};
    const double cpu_start = ThreadCpuSeconds();
    const double wall_start = WallSeconds();
    std::vector<const ArrowArray*> inputs;
    for (const auto& p : pending_) inputs.push_back(p.get());
    auto batch = ipc::Concatenate(schema_, inputs);
    if (!batch.ok()) Die(batch.status());
    cpu_seconds_ += ThreadCpuSeconds() - cpu_start;
    wall_seconds_ += WallSeconds() - wall_start;
    pending_.clear();  // releasing the chunks is paid one batch per chunk too: not counted
    rows_ = bytes_ = 0;
    return std::move(batch).value();
  }

  // Time spent in Flush: thread CPU and wall seconds.
  double cpu_seconds() const { return cpu_seconds_; }
  double wall_seconds() const { return wall_seconds_; }

 private:
  const ArrowSchema& schema_;
  const int64_t target_rows_;
  const int64_t target_bytes_;
  std::vector<ipc::OwnedArray> pending_;
  int64_t rows_ = 0;
  int64_t bytes_ = 0;
  double cpu_seconds_ = 0;
  double wall_seconds_ = 0;
};

void BM_OneBatchPerChunk(benchmark::State& state) {
  Totals t;
  for (auto _ : state) {
    auto stream = RunQuery();
    for (;;) {
      auto chunk = stream->Next();
      if (!chunk.ok()) Die(chunk.status());
      if (!chunk->valid()) break;
      t.rows += (*chunk)->length;
      t.bytes += ipc::EstimateBytes(stream->schema(), **chunk);
      ++t.batches;
      benchmark::DoNotOptimize((*chunk)->buffers);
    }
  }
  Report(state, t);
}

void RunCoalesced(benchmark::State& state, int64_t target_rows, int64_t target_bytes) {
  Totals t;
  t.concat_cpu_seconds = 0;
  auto count = [&](const ArrowSchema& schema, const ipc::OwnedArray& batch) {
    if (!batch.valid()) return;
    t.rows += batch->length;
    t.bytes += ipc::EstimateBytes(schema, *batch);
    ++t.batches;
    benchmark::DoNotOptimize(batch->buffers);
  };
  for (auto _ : state) {
    const double start = WallSeconds();
    auto stream = RunQuery();
    Coalescer coalescer(stream->schema(), target_rows, target_bytes);
    for (;;) {
      auto chunk = stream->Next();
      if (!chunk.ok()) Die(chunk.status());
      if (!chunk->valid()) break;
      count(stream->schema(), coalescer.Add(std::move(chunk).value()));
    }
    count(stream->schema(), coalescer.Flush());
    t.concat_cpu_seconds += coalescer.cpu_seconds();
    t.concat_wall_seconds += coalescer.wall_seconds();
    t.wall_seconds += WallSeconds() - start;
  }
  Report(state, t);
}

void BM_CoalesceRows(benchmark::State& state) { RunCoalesced(state, state.range(0), 0); }
void BM_CoalesceBytes(benchmark::State& state) { RunCoalesced(state, 0, state.range(0)); }

// The chunks of one run of the query, kept in memory.
struct Collected {
  std::unique_ptr<engine::BatchStream> stream;  // owns the schema
  std::vector<ipc::OwnedArray> chunks;
};

const Collected& CollectedChunks() {
  static Collected* collected = [] {
    auto* c = new Collected;
    c->stream = RunQuery();
    for (;;) {
      auto chunk = c->stream->Next();
      if (!chunk.ok()) Die(chunk.status());
      if (!chunk->valid()) break;
      c->chunks.push_back(std::move(chunk).value());
    }
    return c;
  }();
  return *collected;
}

void BM_ConcatenateOnly(benchmark::State& state) {
  const Collected& c = CollectedChunks();
  const ArrowSchema& schema = c.stream->schema();
  const int64_t target_rows = state.range(0);
  Totals t;
  t.concat_cpu_seconds = 0;
  std::vector<const ArrowArray*> group;
  auto flush = [&] {
    const double cpu_start = ThreadCpuSeconds();
    const double wall_start = WallSeconds();
    auto batch = ipc::Concatenate(schema, group);
    if (!batch.ok()) Die(batch.status());
    t.concat_cpu_seconds += ThreadCpuSeconds() - cpu_start;
    t.concat_wall_seconds += WallSeconds() - wall_start;
    t.rows += (*batch)->length;
    t.bytes += ipc::EstimateBytes(schema, **batch);
    ++t.batches;
    group.clear();
  };
  for (auto _ : state) {
    const double start = WallSeconds();
    int64_t rows = 0;
    for (const auto& chunk : c.chunks) {
      group.push_back(chunk.get());
      rows += chunk->length;
      if (rows >= target_rows) {
        flush();
        rows = 0;
      }
    }
    if (!group.empty()) flush();
    t.wall_seconds += WallSeconds() - start;
  }
  Report(state, t);
}

BENCHMARK(BM_OneBatchPerChunk)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_CoalesceRows)
    ->Arg(8192)
    ->Arg(65536)
    ->Arg(262144)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3);
BENCHMARK(BM_CoalesceBytes)->Arg(4 << 20)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_ConcatenateOnly)
    ->Arg(8192)
    ->Arg(65536)
    ->Arg(262144)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);

}  // namespace
}  // namespace bridge

BENCHMARK_MAIN();
