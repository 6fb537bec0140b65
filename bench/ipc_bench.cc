// What do Arrow IPC encoding and decoding cost next to moving the bytes they describe?
//
// Encoding. The IPC encoder turns a record batch into a small metadata block plus body
// segments that point into the batch's buffers, so its cost should not grow with the data:
// it is compared with a memcpy of the same body bytes (the least a copying encoder would
// pay). Data: 1M rows × 5 columns (int64 id, double x, utf8 name 'item-N', timestamp[us] ts,
// int32 k with nulls), cut into batches of 2048 rows (DuckDB's chunk), 65536 rows and 1M rows.
//   - Encode/R:          RecordBatchEncoder::Encode of every batch (segments and metadata;
//                        dropping the messages, which releases the batches, included),
//                        bytes_per_second over the body bytes; counter "pct_of_memcpy" is the
//                        mean time of a pass over all batches as a percentage of the best of 7
//                        memcpy passes over their bodies, measured in the same process just
//                        before (target: < 2, also at 2048-row batches); "pct_best_pass" is
//                        the best encode pass against the same memcpy pass (best against
//                        best: steadier on a busy machine); "ns_per_batch" the mean per batch,
//   - MemcpyBody/R:      memcpy of the exact body bytes the encoder references,
//   - EncodeCompressed/codec: Encode with LZ4_FRAME / ZSTD (65536-row batches), MB/s of
//                        uncompressed body; counter "ratio" = compressed / uncompressed,
//   - RawCodec/codec:    LZ4F_compressFrame / ZSTD_compressCCtx (a reused context: the
//                        codec at its best) on the same buffers, one call per buffer as the
//                        encoder does: the codec's own cost, beside which the encoder's
//                        overhead shows.
//
// Decoding.
//   - FileReadMapped/MB: an uncompressed IPC file of 1 MB and of 1 GB (written once by
//                        FileWriter to a temporary directory under $TMPDIR or /tmp, removed
//                        at exit; the same schema, int64 a and double b, and 8 batches in
//                        both, so every batch has the same number of buffers), mapped with
//                        mmap(PROT_READ, MAP_PRIVATE) and wrapped as an ipc::Buffer; times
//                        FileReader::Open plus ReadBatch(i) of every batch (decoding only:
//                        the arrays are views into the mapping and no value is touched).
//                        Counter "us_per_batch" should be the same for both sizes: reading
//                        is O(number of buffers), not O(bytes). "bytes_copied" (the reader's
//                        ReadStats) should be 0. bytes_per_second is over the file size.
//   - ReadCompressed/codec: OpenStreamReader over an in-memory stream written by
//                        StreamWriter with LZ4_FRAME / ZSTD from the EncodeCompressed data,
//                        reading every batch (each decompressed buffer is fresh memory,
//                        released with its batch); bytes_per_second over the bytes the
//                        decompression produced (counter "decompressed_MB" per pass; buffers
//                        the writer left uncompressed are views and cost nothing); "ratio" =
//                        stream size / uncompressed body,
//   - RawDecompress/codec: ZSTD_decompressDCtx / LZ4F_decompress (reused contexts and
//                        output buffer: the codec at its best) on the same frames (the
//                        writer's Compress of each body buffer, where it pays), one call per
//                        frame, bytes_per_second over the same decompressed bytes: the codec's
//                        own cost, beside which the reader's overhead shows.
//
// Run (about 20 s on 2 cores; 1 GB of temporary disk while it runs):
//   build/release/bench/ipc_bench --benchmark_counters_tabular=true
// and, for one group, e.g. --benchmark_filter='Encode/|MemcpyBody' or 'FileReadMapped'. The
// encoder's percentages compare wall times: on a busy machine take pct_best_pass, or repeat
// (--benchmark_repetitions=5).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "bridge/arrow/buffer.h"
#include "bridge/arrow/c_data.h"
#include "bridge/arrow/compression.h"
#include "bridge/arrow/encoder.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/writer.h"

namespace bridge::ipc {
namespace {

constexpr int64_t kRows = 1 << 20;

using bench::Die;

[[noreturn]] void DieErrno(const char* what, const std::string& path) {
  std::fprintf(stderr, "ipc_bench: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
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
// Messages encoded from a BatchSet point into it: it must outlive them.
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

// Owns a schema of nullable columns (static format and name strings) that releases nothing.
struct Schema {
  static constexpr int kMaxColumns = 5;
  ArrowSchema top{};
  ArrowSchema fields[kMaxColumns]{};
  ArrowSchema* pointers[kMaxColumns];
  Schema(std::initializer_list<const char*> formats, std::initializer_list<const char*> names) {
    int n = 0;
    for (const char* format : formats) fields[n++].format = format;
    n = 0;
    for (const char* name : names) {
      fields[n].name = name;
      fields[n].flags = ARROW_FLAG_NULLABLE;
      fields[n].release = &NoRelease;
      pointers[n] = &fields[n];
      ++n;
    }
    top.format = "+s";
    top.name = "";
    top.n_children = n;
    top.children = pointers;
    top.release = &NoRelease;
  }
  static void NoRelease(ArrowSchema* s) { s->release = nullptr; }
};

// id int64, x double, name utf8, ts timestamp[us], k int32: the columns of BatchSet.
const Schema& FiveColumns() {
  static const Schema* schema =
      new Schema({"l", "g", "u", "tsu:", "i"}, {"id", "x", "name", "ts", "k"});
  return *schema;
}

std::unique_ptr<RecordBatchEncoder> MakeEncoder(EncodeOptions options = {}) {
  auto encoder = RecordBatchEncoder::Make(FiveColumns().top, options);
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
  double best_pass_ns = 1e300;
  const auto start = std::chrono::steady_clock::now();
  auto pass_start = start;
  for (auto _ : state) {
    for (size_t i = 0; i < batches.size(); ++i) {
      auto messages = encoder->Encode(batches.Get(i));
      if (!messages.ok()) Die(messages.status());
      segments += static_cast<int64_t>(messages->back().body.size());
      benchmark::DoNotOptimize(messages->back().metadata.data());
    }
    const auto pass_end = std::chrono::steady_clock::now();
    best_pass_ns = std::min(
        best_pass_ns, std::chrono::duration<double, std::nano>(pass_end - pass_start).count());
    pass_start = pass_end;
  }
  const auto end = std::chrono::steady_clock::now();
  const double encode_ns =
      std::chrono::duration<double, std::nano>(end - start).count() / state.iterations();
  state.SetBytesProcessed(state.iterations() * bodies.bytes);
  state.counters["batches"] = static_cast<double>(batches.size());
  state.counters["segments_per_batch"] =
      static_cast<double>(segments) / static_cast<double>(state.iterations() * batches.size());
  state.counters["ns_per_batch"] = encode_ns / static_cast<double>(batches.size());
  state.counters["pct_of_memcpy"] = 100.0 * encode_ns / memcpy_ns;
  state.counters["pct_best_pass"] = 100.0 * best_pass_ns / memcpy_ns;
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

// ---------------------------------------------------------------------------------------
// Decoding

// A directory of temporary files, made on first use under $TMPDIR (or /tmp) and removed
// with its files when the process exits (std::atexit, so also after Die).
class TempDir {
 public:
  static TempDir& Get() {
    static TempDir* dir = [] {
      auto* d = new TempDir;
      std::atexit([] { Get().RemoveAll(); });
      return d;
    }();
    return *dir;
  }
  // Returns the path of `name` in the directory, to be removed at exit.
  std::string File(const std::string& name) {
    const std::string path = path_ + "/" + name;
    files_.push_back(path);
    return path;
  }

 private:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ipc_bench.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) DieErrno("mkdtemp", pattern);
    path_ = pattern;
  }
  void RemoveAll() {
    for (const std::string& file : files_) unlink(file.c_str());
    rmdir(path_.c_str());
  }
  std::string path_;
  std::vector<std::string> files_;
};

// The files of FileReadMapped: kMappedBatches batches of two columns, int64 `a` and double
// `b` (no nulls; 16 bytes a row), so the 1 MB and 1 GB files differ only in rows per batch.
constexpr int kMappedBatches = 8;
const Schema& TwoColumns() {
  static const Schema* schema = new Schema({"l", "g"}, {"a", "b"});
  return *schema;
}

// Writes the file of `megabytes` (1 MiB or 1 GiB of body) with FileWriter, once per process,
// and returns its path. Every batch views the same generated columns.
std::string MappedFile(int64_t megabytes) {
  static std::string paths[2];
  std::string& path = paths[megabytes > 1 ? 1 : 0];
  if (!path.empty()) return path;
  const int64_t rows = (megabytes << 20) / (kMappedBatches * 16);
  std::vector<int64_t> a(static_cast<size_t>(rows));
  std::vector<double> b(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    a[i] = i;
    b[i] = static_cast<double>(i) * 0.25;
  }
  const void* a_buffers[] = {nullptr, a.data()};
  const void* b_buffers[] = {nullptr, b.data()};
  const void* top_buffers[] = {nullptr};
  ArrowArray columns[2]{};
  ArrowArray* column_pointers[] = {&columns[0], &columns[1]};
  auto no_release = [](ArrowArray* x) { x->release = nullptr; };
  for (int c = 0; c < 2; ++c) {
    columns[c].length = rows;
    columns[c].n_buffers = 2;
    columns[c].buffers = c == 0 ? a_buffers : b_buffers;
    columns[c].release = no_release;
  }
  ArrowArray top{};
  top.length = rows;
  top.n_buffers = 1;
  top.buffers = top_buffers;
  top.n_children = 2;
  top.children = column_pointers;
  top.release = no_release;

  const std::string file = TempDir::Get().File("mapped_" + std::to_string(megabytes) + "mb.arrow");
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) DieErrno("open", file);
  FileDescriptorSink sink(fd);
  auto writer = FileWriter::Make(&sink, TwoColumns().top);
  if (!writer.ok()) Die(writer.status());
  for (int i = 0; i < kMappedBatches; ++i) {
    ArrowArray copy = top;
    if (Status st = (*writer)->WriteBatch(OwnedArray(&copy)); !st.ok()) Die(st);
  }
  if (Status st = (*writer)->Close(); !st.ok()) Die(st);
  if (close(fd) != 0) DieErrno("close", file);
  path = file;
  return path;
}

// A read-only private mapping of a whole file; unmapped when the last Buffer viewing it goes.
class Mapping {
 public:
  static Buffer Open(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) DieErrno("open", path);
    struct stat st {};
    if (fstat(fd, &st) != 0) DieErrno("fstat", path);
    const auto size = static_cast<size_t>(st.st_size);
    void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) DieErrno("mmap", path);
    close(fd);
    auto owner = std::make_shared<const Mapping>(addr, size);
    return Buffer(static_cast<const uint8_t*>(addr), size, owner);
  }
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~Mapping() { munmap(addr_, size_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

 private:
  void* addr_;
  size_t size_;
};

// Buffers in `a` and everything below it (C Data Interface buffers, nulls included).
int64_t CountBuffers(const ArrowArray& a) {
  int64_t n = a.n_buffers;
  for (int64_t i = 0; i < a.n_children; ++i) n += CountBuffers(*a.children[i]);
  if (a.dictionary != nullptr) n += CountBuffers(*a.dictionary);
  return n;
}

void BM_FileReadMapped(benchmark::State& state) {
  const Buffer file = Mapping::Open(MappedFile(state.range(0)));
  int64_t buffers_per_batch = 0;
  int64_t bytes_copied = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto reader = FileReader::Open(file);
    if (!reader.ok()) Die(reader.status());
    const int64_t batches = (*reader)->num_batches();
    for (int64_t i = 0; i < batches; ++i) {
      auto batch = (*reader)->ReadBatch(i);
      if (!batch.ok()) Die(batch.status());
      benchmark::DoNotOptimize(batch->get()->children);
      if (buffers_per_batch == 0) buffers_per_batch = CountBuffers(**batch);
    }
    if ((*reader)->num_batches() != kMappedBatches) {
      Die(InvalidArgument("expected ", kMappedBatches, " batches"));
    }
    bytes_copied = (*reader)->stats().bytes_copied;
  }
  const auto end = std::chrono::steady_clock::now();
  const double us = std::chrono::duration<double, std::micro>(end - start).count();
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(file.size()));
  state.counters["file_MB"] = static_cast<double>(file.size()) / (1 << 20);
  state.counters["batches"] = kMappedBatches;
  state.counters["buffers_per_batch"] = static_cast<double>(buffers_per_batch);
  state.counters["us_per_batch"] = us / static_cast<double>(state.iterations() * kMappedBatches);
  state.counters["bytes_copied"] = static_cast<double>(bytes_copied);
}
BENCHMARK(BM_FileReadMapped)->Arg(1)->Arg(1024)->Unit(benchmark::kMicrosecond);

// The EncodeCompressed data written by StreamWriter with `codec`, as one in-memory stream.
Buffer CompressedStream(Codec codec) {
  const BatchSet batches(kCompressedBatchRows);
  EncodeOptions options;
  options.codec = codec;
  StringSink sink;
  auto writer = StreamWriter::Make(&sink, FiveColumns().top, options);
  if (!writer.ok()) Die(writer.status());
  for (size_t i = 0; i < batches.size(); ++i) {
    if (Status st = (*writer)->WriteBatch(batches.Get(i)); !st.ok()) Die(st);
  }
  if (Status st = (*writer)->Close(); !st.ok()) Die(st);
  return Buffer::FromString(sink.Take());
}

void BM_ReadCompressed(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const int64_t raw_bytes = EncodeAll(BatchSet(kCompressedBatchRows)).bytes;
  const Buffer stream = CompressedStream(codec);
  int64_t batches = 0;
  int64_t decompressed = 0;
  for (auto _ : state) {
    auto reader = OpenStreamReader(stream);
    if (!reader.ok()) Die(reader.status());
    batches = 0;
    while (true) {
      auto batch = (*reader)->Next();
      if (!batch.ok()) Die(batch.status());
      if (!batch->valid()) break;
      benchmark::DoNotOptimize(batch->get()->children);
      ++batches;
    }
    decompressed = (*reader)->stats().bytes_decompressed;
  }
  // The work is the decompression: count the bytes it produced, as RawDecompress does (the
  // buffers the writer left uncompressed are views, read for free).
  state.SetBytesProcessed(state.iterations() * decompressed);
  state.counters["batches"] = static_cast<double>(batches);
  state.counters["ratio"] = static_cast<double>(stream.size()) / static_cast<double>(raw_bytes);
  state.counters["decompressed_MB"] = static_cast<double>(decompressed) / (1 << 20);
  state.SetLabel(std::string(CodecName(codec)));
}
BENCHMARK(BM_ReadCompressed)
    ->Arg(static_cast<int>(Codec::kLz4Frame))
    ->Arg(static_cast<int>(Codec::kZstd))
    ->Unit(benchmark::kMillisecond);

// One compressed buffer: a frame and the size it decompresses to.
struct Frame {
  std::vector<uint8_t> bytes;
  size_t size;
};

// The frames the writer puts in the CompressedStream of `codec`: each body buffer
// compressed by the same Compress call, kept where compression pays (elsewhere the writer
// sends the raw bytes and the reader has nothing to decompress).
std::vector<Frame> CompressedFrames(Codec codec) {
  const BatchSet batches(kCompressedBatchRows);  // the bodies point into it
  const Bodies bodies = EncodeAll(batches);
  std::vector<Frame> frames;
  for (const auto& m : bodies.messages) {
    for (const Segment& s : m.body) {
      if (s.size < 8) continue;  // padding
      Frame frame{{}, s.size};
      if (Status st = Compress(codec, {s.data, s.size}, &frame.bytes); !st.ok()) Die(st);
      if (frame.bytes.size() < s.size) frames.push_back(std::move(frame));
    }
  }
  return frames;
}

void BM_RawDecompress(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const std::vector<Frame> frames = CompressedFrames(codec);
  size_t largest = 0;
  int64_t bytes = 0;
  for (const Frame& f : frames) {
    largest = std::max(largest, f.size);
    bytes += static_cast<int64_t>(f.size);
  }
  std::vector<uint8_t> out(largest);
  ZSTD_DCtx* zstd = ZSTD_createDCtx();
  LZ4F_dctx* lz4 = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&lz4, LZ4F_VERSION))) {
    Die(Internal("LZ4F_createDecompressionContext failed"));
  }
  for (auto _ : state) {
    for (const Frame& f : frames) {
      size_t produced = 0;
      if (codec == Codec::kZstd) {
        produced = ZSTD_decompressDCtx(zstd, out.data(), f.size, f.bytes.data(), f.bytes.size());
        if (ZSTD_isError(produced)) Die(Internal(ZSTD_getErrorName(produced)));
      } else {
        size_t out_size = f.size;
        size_t in_size = f.bytes.size();
        const size_t rc =
            LZ4F_decompress(lz4, out.data(), &out_size, f.bytes.data(), &in_size, nullptr);
        if (LZ4F_isError(rc) || rc != 0) Die(Internal("LZ4F_decompress: incomplete frame"));
        produced = out_size;
      }
      if (produced != f.size) Die(Internal("decompressed ", produced, " bytes, not ", f.size));
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  ZSTD_freeDCtx(zstd);
  LZ4F_freeDecompressionContext(lz4);
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["frames"] = static_cast<double>(frames.size());
  state.counters["decompressed_MB"] = static_cast<double>(bytes) / (1 << 20);
  state.SetLabel(codec == Codec::kZstd ? "ZSTD_decompressDCtx" : "LZ4F_decompress");
}
BENCHMARK(BM_RawDecompress)
    ->Arg(static_cast<int>(Codec::kLz4Frame))
    ->Arg(static_cast<int>(Codec::kZstd))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bridge::ipc

BENCHMARK_MAIN();
