// What does IPC encoding cost next to moving the bytes it describes?
//
// The IPC encoder turns a record batch into a small metadata block plus body segments that
// point into the batch's buffers, so its cost should not grow with the data: it is compared
// with a memcpy of the same body bytes (the least a copying encoder would pay). Data: 1M
// rows × 5 columns (int64 id, double x, utf8 name 'item-N', timestamp[us] ts, int32 k with
// nulls), cut into batches of 2048 rows (DuckDB's chunk), 65536 rows and 1M rows.
//   - Encode/R:          RecordBatchEncoder::Encode of every batch (segments and metadata),
//                        bytes_per_second over the body bytes; counter "pct_of_memcpy" is the
//                        encode time as a percentage of MemcpyBody's, measured in the same
//                        process just before (target: < 2),
//   - MemcpyBody/R:      memcpy of the exact body bytes the encoder references,
//   - EncodeCompressed/codec: Encode with LZ4_FRAME / ZSTD (65536-row batches), MB/s of
//                        uncompressed body; counter "ratio" = compressed / uncompressed,
//   - RawCodec/codec:    LZ4F_compressFrame / ZSTD_compressCCtx (a reused context: the
//                        codec at its best) on the same buffers, one call per buffer as the
//                        encoder does: the codec's own cost, beside which the encoder's
//                        overhead shows.
//
// Run: build/release/bench/ipc_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <lz4frame.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/encoder.h"

namespace bridge::ipc {
namespace {

constexpr int64_t kRows = 1 << 20;

[[noreturn]] void Die(const Status& status) {
  std::fprintf(stderr, "ipc_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

// The column data for all rows, made once. Batches are views into it.
struct Columns {
  std::vector<int64_t> id;
  std::vector<double> x;
  std::vector<int32_t> name_offsets;
  std::string name_chars;
  std::vector<int64_t> ts;
  std::vector<int32_t> k;
  std::vector<uint8_t> k_validity;
};

const Columns& Data() {
  static const Columns* data = [] {
    auto* c = new Columns;
    c->id.resize(kRows);
    c->x.resize(kRows);
    c->ts.resize(kRows);
    c->k.resize(kRows);
    c->k_validity.assign((kRows + 7) / 8, 0);
    c->name_offsets.push_back(0);
    for (int64_t i = 0; i < kRows; ++i) {
      c->id[i] = i;
      c->x[i] = static_cast<double>(i) * 0.5;
      c->ts[i] = 1704067200000000 + i;
      c->k[i] = static_cast<int32_t>(i % 1000);
      if (i % 10 != 0) c->k_validity[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      c->name_chars += "item-" + std::to_string(i % 100000);
      c->name_offsets.push_back(static_cast<int32_t>(c->name_chars.size()));
    }
    return c;
  }();
  return *data;
}

// ArrowArrays over Data() that release nothing: a batch can be handed to the encoder any
// number of times. Each batch has its own utf8 offsets starting at 0 (made here, outside the
// measurement), as DuckDB's batches do, so that encoding them copies nothing.
class BatchSet {
 public:
  explicit BatchSet(int64_t rows_per_batch) {
    const Columns& c = Data();
    for (int64_t start = 0; start < kRows; start += rows_per_batch) {
      const int64_t n = std::min(rows_per_batch, kRows - start);
      auto b = std::make_unique<Batch>();
      b->offsets.resize(n + 1);
      const int32_t base = c.name_offsets[start];
      for (int64_t i = 0; i <= n; ++i) b->offsets[i] = c.name_offsets[start + i] - base;
      // k's validity: start is a multiple of 8 for every batch size used here.
      b->buffers = {{nullptr, c.id.data() + start},
                    {nullptr, c.x.data() + start},
                    {nullptr, b->offsets.data(), c.name_chars.data() + base},
                    {nullptr, c.ts.data() + start},
                    {c.k_validity.data() + start / 8, c.k.data() + start}};
      const int64_t buffer_counts[] = {2, 2, 3, 2, 2};
      for (int col = 0; col < 5; ++col) {
        ArrowArray& a = b->columns[col];
        a = ArrowArray{};
        a.length = n;
        a.null_count = col == 4 ? -1 : 0;
        a.n_buffers = buffer_counts[col];
        a.buffers = b->buffers[col].data();
        a.release = &NoRelease;
        b->column_pointers[col] = &a;
      }
      b->top_buffers[0] = nullptr;
      b->top = ArrowArray{};
      b->top.length = n;
      b->top.n_buffers = 1;
      b->top.buffers = b->top_buffers;
      b->top.n_children = 5;
      b->top.children = b->column_pointers;
      b->top.release = &NoRelease;
      batches_.push_back(std::move(b));
    }
  }

  size_t size() const { return batches_.size(); }
  // An owner of batch `i` whose release does nothing.
  OwnedArray Get(size_t i) const {
    ArrowArray copy = batches_[i]->top;
    return OwnedArray(&copy);
  }

 private:
  static void NoRelease(ArrowArray* a) { a->release = nullptr; }
  struct Batch {
    std::vector<int32_t> offsets;
    std::vector<std::vector<const void*>> buffers;
    ArrowArray columns[5];
    ArrowArray* column_pointers[5];
    const void* top_buffers[1];
    ArrowArray top;
  };
  std::vector<std::unique_ptr<Batch>> batches_;
};

// Owns the schema: id int64, x double, name utf8, ts timestamp[us], k int32 (nullable).
struct Schema {
  ArrowSchema top{};
  ArrowSchema fields[5]{};
  ArrowSchema* pointers[5];
  Schema() {
    const char* formats[] = {"l", "g", "u", "tsu:", "i"};
    const char* names[] = {"id", "x", "name", "ts", "k"};
    for (int i = 0; i < 5; ++i) {
      fields[i].format = formats[i];
      fields[i].name = names[i];
      fields[i].flags = ARROW_FLAG_NULLABLE;
      fields[i].release = &NoRelease;
      pointers[i] = &fields[i];
    }
    top.format = "+s";
    top.name = "";
    top.n_children = 5;
    top.children = pointers;
    top.release = &NoRelease;
  }
  static void NoRelease(ArrowSchema* s) { s->release = nullptr; }
};

std::unique_ptr<RecordBatchEncoder> MakeEncoder(EncodeOptions options = {}) {
  static const Schema schema;
  auto encoder = RecordBatchEncoder::Make(schema.top, options);
  if (!encoder.ok()) Die(encoder.status());
  return std::move(encoder).value();
}

// The body segments of every batch, as the encoder produces them (kept alive by `messages`).
struct Bodies {
  std::vector<EncodedMessage> messages;
  int64_t bytes = 0;
};

Bodies EncodeAll(const BatchSet& batches, EncodeOptions options = {}) {
  auto encoder = MakeEncoder(options);
  Bodies out;
  for (size_t i = 0; i < batches.size(); ++i) {
    auto messages = encoder->Encode(batches.Get(i));
    if (!messages.ok()) Die(messages.status());
    for (auto& m : *messages) {
      out.bytes += m.body_length;
      out.messages.push_back(std::move(m));
    }
  }
  return out;
}

// Copies every body segment into `dest` (sized for them); returns bytes copied.
int64_t CopyBodies(const Bodies& bodies, uint8_t* dest) {
  int64_t at = 0;
  for (const auto& m : bodies.messages) {
    for (const Segment& s : m.body) {
      std::memcpy(dest + at, s.data, s.size);
      at += static_cast<int64_t>(s.size);
    }
  }
  return at;
}

// Nanoseconds one CopyBodies pass takes (best of several), for the ratio counter.
double MemcpyNanos(const Bodies& bodies, uint8_t* dest) {
  double best = 1e300;
  for (int rep = 0; rep < 7; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(CopyBodies(bodies, dest));
    benchmark::ClobberMemory();
    const auto end = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::nano>(end - start).count());
  }
  return best;
}

void BM_Encode(benchmark::State& state) {
  const BatchSet batches(state.range(0));
  const Bodies bodies = EncodeAll(batches);
  std::vector<uint8_t> dest(static_cast<size_t>(bodies.bytes));
  const double memcpy_ns = MemcpyNanos(bodies, dest.data());
  auto encoder = MakeEncoder();
  int64_t segments = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    for (size_t i = 0; i < batches.size(); ++i) {
      auto messages = encoder->Encode(batches.Get(i));
      if (!messages.ok()) Die(messages.status());
      segments += static_cast<int64_t>(messages->back().body.size());
      benchmark::DoNotOptimize(messages->back().metadata.data());
    }
  }
  const auto end = std::chrono::steady_clock::now();
  const double encode_ns =
      std::chrono::duration<double, std::nano>(end - start).count() / state.iterations();
  state.SetBytesProcessed(state.iterations() * bodies.bytes);
  state.counters["batches"] = static_cast<double>(batches.size());
  state.counters["segments_per_batch"] =
      static_cast<double>(segments) / static_cast<double>(state.iterations() * batches.size());
  state.counters["pct_of_memcpy"] = 100.0 * encode_ns / memcpy_ns;
}
BENCHMARK(BM_Encode)->Arg(2048)->Arg(65536)->Arg(kRows)->Unit(benchmark::kMicrosecond);

void BM_MemcpyBody(benchmark::State& state) {
  const BatchSet batches(state.range(0));
  const Bodies bodies = EncodeAll(batches);
  std::vector<uint8_t> dest(static_cast<size_t>(bodies.bytes));
  for (auto _ : state) {
    benchmark::DoNotOptimize(CopyBodies(bodies, dest.data()));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * bodies.bytes);
}
BENCHMARK(BM_MemcpyBody)->Arg(2048)->Arg(65536)->Arg(kRows)->Unit(benchmark::kMicrosecond);

constexpr int64_t kCompressedBatchRows = 65536;

void BM_EncodeCompressed(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const BatchSet batches(kCompressedBatchRows);
  const int64_t raw_bytes = EncodeAll(batches).bytes;
  EncodeOptions options;
  options.codec = codec;
  auto encoder = MakeEncoder(options);
  int64_t compressed = 0;
  for (auto _ : state) {
    compressed = 0;
    for (size_t i = 0; i < batches.size(); ++i) {
      auto messages = encoder->Encode(batches.Get(i));
      if (!messages.ok()) Die(messages.status());
      compressed += messages->back().body_length;
    }
  }
  state.SetBytesProcessed(state.iterations() * raw_bytes);
  state.counters["ratio"] = static_cast<double>(compressed) / static_cast<double>(raw_bytes);
  state.SetLabel(std::string(CodecName(codec)));
}
BENCHMARK(BM_EncodeCompressed)
    ->Arg(static_cast<int>(Codec::kLz4Frame))
    ->Arg(static_cast<int>(Codec::kZstd))
    ->Unit(benchmark::kMillisecond);

void BM_RawCodec(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const BatchSet batches(kCompressedBatchRows);
  const Bodies bodies = EncodeAll(batches);
  std::vector<uint8_t> out;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  LZ4F_preferences_t prefs = LZ4F_INIT_PREFERENCES;
  int64_t compressed = 0;
  for (auto _ : state) {
    compressed = 0;
    for (const auto& m : bodies.messages) {
      for (const Segment& s : m.body) {
        if (s.size < 8) continue;  // padding
        size_t written = 0;
        if (codec == Codec::kZstd) {
          out.resize(ZSTD_compressBound(s.size));
          written =
              ZSTD_compressCCtx(cctx, out.data(), out.size(), s.data, s.size, ZSTD_CLEVEL_DEFAULT);
        } else {
          prefs.frameInfo.contentSize = s.size;
          out.resize(LZ4F_compressFrameBound(s.size, &prefs));
          written = LZ4F_compressFrame(out.data(), out.size(), s.data, s.size, &prefs);
        }
        compressed += static_cast<int64_t>(written);
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  ZSTD_freeCCtx(cctx);
  state.SetBytesProcessed(state.iterations() * bodies.bytes);
  state.counters["ratio"] = static_cast<double>(compressed) / static_cast<double>(bodies.bytes);
  state.SetLabel(codec == Codec::kZstd ? "ZSTD_compressCCtx" : "LZ4F_compressFrame");
}
BENCHMARK(BM_RawCodec)
    ->Arg(static_cast<int>(Codec::kLz4Frame))
    ->Arg(static_cast<int>(Codec::kZstd))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bridge::ipc

BENCHMARK_MAIN();
