// What does caching a result cost the response that writes it?
//
// A cacheable response is encoded once; each EncodedMessage goes to the socket and, through
// EntryWriter::Write, to the cache file (hashed with XXH3 on the way). This measures that
// tee next to the encoding alone, in the same process, over 1M rows of an int64 and a double
// column (16 MB of body) cut into batches of 2048 rows (DuckDB's chunk) and 65536 rows.
//   - Encode/R:          RecordBatchEncoder::Encode of every batch (the zero-copy encoder:
//                        metadata and segments only), the baseline.
//   - EncodeAndTee/R/S:  the same, plus BeginWrite, Write of every message and Commit (S=0:
//                        sync off, the file reaches the page cache; S=1: fsync of the file
//                        and the folder too). The entry is removed after each pass, outside
//                        the timing. Counters: "x_encode" = mean tee pass / best of 7 encode
//                        passes measured just before; "x_memcpy" = mean tee pass / best of 7
//                        memcpy passes over the same body bytes (what any copy of the result
//                        costs at least); bytes_per_second over the body bytes.
//   - VerifyAll/R:       Entry::VerifyAll with trust_after_first_verify off: the XXH3 pass a
//                        first serve of an entry pays, over the mapped file.
//
// Run: build/release/src/bridge/cache/cache_tee_bench --benchmark_counters_tabular=true
// (uses $TMPDIR or /tmp for the cache folder, removed at exit).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bridge/arrow/encoder.h"
#include "bridge/cache/cache.h"

namespace bridge::cache {
namespace {

constexpr int64_t kRows = 1 << 20;

[[noreturn]] void Die(const Status& status) {
  std::fprintf(stderr, "cache_tee_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

void NoReleaseArray(ArrowArray* a) { a->release = nullptr; }
void NoReleaseSchema(ArrowSchema* s) { s->release = nullptr; }

// Column data for all rows, made once.
const std::vector<int64_t>& Ids() {
  static const std::vector<int64_t>* ids = [] {
    auto* v = new std::vector<int64_t>(kRows);
    for (int64_t i = 0; i < kRows; ++i) (*v)[i] = i;
    return v;
  }();
  return *ids;
}
const std::vector<double>& Xs() {
  static const std::vector<double>* xs = [] {
    auto* v = new std::vector<double>(kRows);
    for (int64_t i = 0; i < kRows; ++i) (*v)[i] = static_cast<double>(i) * 0.5;
    return v;
  }();
  return *xs;
}

// Batches that are views into the column data and release nothing, so a batch can be
// encoded any number of times.
class BatchSet {
 public:
  explicit BatchSet(int64_t rows_per_batch) {
    const std::vector<int64_t>* ids = &Ids();
    const std::vector<double>* xs = &Xs();
    for (int64_t start = 0; start < kRows; start += rows_per_batch) {
      const int64_t n = std::min(rows_per_batch, kRows - start);
      auto b = std::make_unique<Batch>();
      b->buffers[0][1] = ids->data() + start;
      b->buffers[1][1] = xs->data() + start;
      for (int col = 0; col < 2; ++col) {
        ArrowArray& a = b->columns[col];
        a.length = n;
        a.n_buffers = 2;
        a.buffers = b->buffers[col];
        a.release = &NoReleaseArray;
        b->column_pointers[col] = &a;
      }
      b->top.length = n;
      b->top.n_buffers = 1;
      b->top.buffers = b->top_buffers;
      b->top.n_children = 2;
      b->top.children = b->column_pointers;
      b->top.release = &NoReleaseArray;
      batches_.push_back(std::move(b));
    }
  }
  size_t size() const { return batches_.size(); }
  ipc::OwnedArray Get(size_t i) const {
    ArrowArray copy = batches_[i]->top;
    return ipc::OwnedArray(&copy);
  }

 private:
  struct Batch {
    const void* buffers[2][2] = {};
    ArrowArray columns[2] = {};
    ArrowArray* column_pointers[2] = {};
    const void* top_buffers[1] = {nullptr};
    ArrowArray top = {};
  };
  std::vector<std::unique_ptr<Batch>> batches_;
};

// id int64, x double.
const ArrowSchema& TwoColumns() {
  static ArrowSchema* top = [] {
    static ArrowSchema fields[2] = {};
    static ArrowSchema* pointers[2];
    const char* formats[] = {"l", "g"};
    const char* names[] = {"id", "x"};
    for (int i = 0; i < 2; ++i) {
      fields[i].format = formats[i];
      fields[i].name = names[i];
      fields[i].flags = ARROW_FLAG_NULLABLE;
      fields[i].release = &NoReleaseSchema;
      pointers[i] = &fields[i];
    }
    auto* s = new ArrowSchema{};
    s->format = "+s";
    s->name = "";
    s->n_children = 2;
    s->children = pointers;
    s->release = &NoReleaseSchema;
    return s;
  }();
  return *top;
}

// The cache folder for the whole run, removed at exit.
const std::filesystem::path& Folder() {
  static const std::filesystem::path* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/cache_tee_bench.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) Die(IoError("mkdtemp ", pattern));
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Folder(), ec);
    });
    return new std::filesystem::path(pattern);
  }();
  return *dir;
}

std::unique_ptr<Cache> OpenCache(const std::string& name, bool sync, bool trust = true) {
  CacheOptions options;
  options.dir = Folder() / name;
  options.sync = sync;
  options.trust_after_first_verify = trust;
  options.max_bytes = int64_t{4} << 30;
  auto cache = Cache::Open(options);
  if (!cache.ok()) Die(cache.status());
  return std::move(cache).value();
}

// One pass of encoding (and teeing when `cache` is set); returns the body bytes.
int64_t Pass(const BatchSet& batches, Cache* cache) {
  auto encoder = ipc::RecordBatchEncoder::Make(TwoColumns());
  if (!encoder.ok()) Die(encoder.status());
  std::unique_ptr<EntryWriter> writer;
  if (cache != nullptr) {
    auto w = cache->BeginWrite(CacheKey{"SELECT id, x FROM t", {}, "", {{"t", 1}}}, TwoColumns());
    if (!w.ok()) Die(w.status());
    writer = std::move(w).value();
  }
  int64_t bytes = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    auto messages = (*encoder)->Encode(batches.Get(i));
    if (!messages.ok()) Die(messages.status());
    for (const ipc::EncodedMessage& m : *messages) {
      bytes += m.body_length;
      if (writer != nullptr) {
        if (Status s = writer->Write(m); !s.ok()) Die(s);
      }
      benchmark::DoNotOptimize(m.metadata.data());
    }
  }
  if (writer != nullptr) {
    auto entry = writer->Commit();
    if (!entry.ok()) Die(entry.status());
  }
  return bytes;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of 7 encode-only passes, in seconds.
double BestEncodePass(const BatchSet& batches) {
  double best = 1e9;
  for (int i = 0; i < 7; ++i) {
    const auto start = std::chrono::steady_clock::now();
    Pass(batches, nullptr);
    best = std::min(best, Seconds(start));
  }
  return best;
}

// Best of 7 memcpy passes over the body bytes, in seconds.
double BestMemcpyPass(int64_t bytes) {
  std::vector<uint8_t> dest(static_cast<size_t>(bytes));
  double best = 1e9;
  for (int i = 0; i < 7; ++i) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(dest.data(), Ids().data(), static_cast<size_t>(kRows) * 8);
    std::memcpy(dest.data() + kRows * 8, Xs().data(), static_cast<size_t>(kRows) * 8);
    benchmark::DoNotOptimize(dest.data());
    best = std::min(best, Seconds(start));
  }
  return best;
}

void BM_Encode(benchmark::State& state) {
  const BatchSet batches(state.range(0));
  int64_t bytes = 0;
  for (auto _ : state) bytes += Pass(batches, nullptr);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Encode)->Arg(2048)->Arg(65536)->Unit(benchmark::kMillisecond);

void BM_EncodeAndTee(benchmark::State& state) {
  const BatchSet batches(state.range(0));
  const bool sync = state.range(1) != 0;
  auto cache =
      OpenCache("tee-" + std::to_string(state.range(0)) + "-" + std::to_string(sync), sync);
  const double encode = BestEncodePass(batches);
  const double memcpy_pass = BestMemcpyPass(kRows * 16);
  int64_t bytes = 0;
  double total = 0;
  int64_t passes = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    bytes += Pass(batches, cache.get());
    total += Seconds(start);
    ++passes;
    state.PauseTiming();
    cache->Clear();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(bytes);
  state.counters["x_encode"] = total / static_cast<double>(passes) / encode;
  state.counters["x_memcpy"] = total / static_cast<double>(passes) / memcpy_pass;
}
BENCHMARK(BM_EncodeAndTee)
    ->Args({2048, 0})
    ->Args({65536, 0})
    ->Args({65536, 1})
    ->Unit(benchmark::kMillisecond);

void BM_VerifyAll(benchmark::State& state) {
  const BatchSet batches(state.range(0));
  auto cache = OpenCache("verify-" + std::to_string(state.range(0)), /*sync=*/false,
                         /*trust=*/false);
  Pass(batches, cache.get());
  auto entry = cache->Lookup(CacheKey{"SELECT id, x FROM t", {}, "", {{"t", 1}}});
  if (entry == nullptr) Die(Internal("the entry just written is not found"));
  for (auto _ : state) {
    if (Status s = entry->VerifyAll(); !s.ok()) Die(s);
  }
  state.SetBytesProcessed(state.iterations() * entry->stream_range().length);
}
BENCHMARK(BM_VerifyAll)->Arg(2048)->Arg(65536)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bridge::cache

BENCHMARK_MAIN();
