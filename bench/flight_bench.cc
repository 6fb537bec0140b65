// Arrow Flight throughput: Bridge's Flight server in process on 127.0.0.1:0, read by Bridge's
// Flight client over loopback, beside the parts of the same work measured alone in the same
// run.
//
//   DuckDB alone        the query's batches pulled in process (the producer's cost)
//   DuckDB + encode     the same, each batch also IPC-encoded (zero-copy: metadata only)
//   DoGet, one stream   GetFlightInfo + DoGet of the whole result over gRPC
//   DoGet, parallel     the table as a plan of one endpoint per core, fetched in parallel
//   DoGet, protobuf     one stream through the generated FlightData serializer (data_body
//                       copied into a protobuf `bytes` field): the path zero-copy avoids
//   DoGet, generated    data DuckDB generates (range(), no file scan), one stream
//   DoGet, cached       the same query answered from the result cache: FlightData bodies
//                       are slices of the cached file's mapping (no query, no encoding)
//   DoPut               the result uploaded back as a new Parquet table (rows/s)
//
// Prints a Markdown table (bench/run puts it in bench/results/latest.md). Each row is the
// best of --runs runs. With --loopback-gbps (one iperf3 stream over loopback, measured by
// bench/run in the same run) each throughput is also given as a share of that limit.
//
// Run: build/release/bench/flight_bench --data build/bench-data [--runs 3] [--loopback-gbps G]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "bridge/arrow/encoder.h"
#include "bridge/cache/cache.h"
#include "bridge/catalog/catalog.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/client/client.h"
#include "bridge/flight/server.h"

namespace bridge {
namespace {

using Clock = std::chrono::steady_clock;
namespace fc = flight::client;

using bench::Check;
using bench::Die;

struct Measure {
  double seconds = 0;
  int64_t rows = 0;
  int64_t bytes = 0;         // Arrow body bytes (+ IPC metadata for Flight)
  int64_t bytes_copied = 0;  // body bytes the server copied on the way
};

// Runs `once` `runs` times and returns the fastest run.
Measure Best(int runs, const std::function<Measure()>& once) {
  Measure best;
  for (int i = 0; i < runs; ++i) {
    Measure m = once();
    if (i == 0 || m.seconds < best.seconds) best = m;
  }
  return best;
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Measure Scan(engine::Database& db, const std::string& sql, bool encode) {
  auto session = Check(db.Connect());
  auto start = Clock::now();
  auto stream = Check(session->Query(sql));
  std::unique_ptr<ipc::RecordBatchEncoder> encoder;
  if (encode) encoder = Check(ipc::RecordBatchEncoder::Make(stream->schema()));
  Measure m;
  for (;;) {
    ipc::OwnedArray batch = Check(stream->Next());
    if (!batch.valid()) break;
    m.rows += batch->length;
    if (encode) {
      for (const ipc::EncodedMessage& message : Check(encoder->Encode(std::move(batch)))) {
        m.bytes += message.total_size();
      }
    }
  }
  m.seconds = Seconds(start);
  return m;
}

struct ServerUnderTest {
  std::unique_ptr<flight::FlightServer> server;
  std::unique_ptr<fc::Client> client;
};

ServerUnderTest Serve(engine::Database& db, catalog::Catalog& catalog, int endpoints,
                      bool copy_body, cache::Cache* cache = nullptr, int64_t batch_bytes = 0) {
  flight::FlightServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.endpoints = endpoints;
  options.copy_body = copy_body;
  options.query_threads = 4;
  options.batch_bytes = batch_bytes;
  ServerUnderTest s;
  s.server = Check(flight::FlightServer::Start(options, {&db, &catalog, nullptr, nullptr, cache}));
  fc::ClientOptions client_options;
  client_options.max_message_bytes = -1;
  s.client = Check(fc::Client::Connect(StrCat("grpc://127.0.0.1:", s.server->port()),
                                       std::move(client_options)));
  return s;
}

Measure Fetch(ServerUnderTest& s, const fc::Descriptor& descriptor, bool parallel) {
  int64_t copied_before = s.server->stats().body_bytes_copied;
  auto start = Clock::now();
  fc::FlightInfo info = Check(s.client->GetFlightInfo(descriptor));
  fc::FetchOptions options;
  options.parallel = parallel;
  options.keep_batches = false;
  fc::Table table = Check(s.client->FetchAll(info, options));
  Measure m;
  m.seconds = Seconds(start);
  m.rows = table.rows;
  m.bytes = table.stats.body_bytes + table.stats.header_bytes;
  m.bytes_copied = s.server->stats().body_bytes_copied - copied_before;
  return m;
}

struct Row {
  std::string what;
  Measure m;
};

int Main(int argc, char** argv) {
  std::filesystem::path data;
  int runs = 3;
  double loopback_gbps = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(InvalidArgument(arg, " needs a value"));
      return argv[++i];
    };
    if (arg == "--data") {
      data = value();
    } else if (arg == "--runs") {
      runs = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--loopback-gbps") {
      loopback_gbps = std::atof(value().c_str());
    } else {
      Die(InvalidArgument("usage: flight_bench --data DIR [--runs N] [--loopback-gbps G]"));
    }
  }
  if (data.empty()) Die(InvalidArgument("--data DIR (bridge gen-demo output) is required"));
  const std::filesystem::path upload = data / "flight_bench_upload.parquet";
  std::filesystem::remove(upload);

  engine::EngineOptions eo;
  eo.data_dir = data;
  auto db = Check(engine::Database::Open(eo));
  catalog::CatalogOptions co;
  co.watch = false;
  auto catalog = Check(catalog::Catalog::Open(*db, co));
  const std::string sql = "SELECT * FROM trips";
  const std::string generated =
      "SELECT range::BIGINT AS a, (range * 2)::BIGINT AS b, (range * 0.5)::DOUBLE AS c, "
      "(range % 1000)::INTEGER AS d FROM range(20000000)";
  const int cores = static_cast<int>(std::thread::hardware_concurrency());

  std::vector<Row> rows;
  rows.push_back({"DuckDB alone (in process, no encoding)",
                  Best(runs, [&] { return Scan(*db, sql, false); })});
  rows.push_back(
      {"DuckDB + IPC encode (in process)", Best(runs, [&] { return Scan(*db, sql, true); })});
  {
    ServerUnderTest s = Serve(*db, *catalog, 1, false);
    rows.push_back({"DoGet, one stream (zero-copy FlightData)",
                    Best(runs, [&] { return Fetch(s, fc::Descriptor::Sql(sql), false); })});
  }
  {
    ServerUnderTest s = Serve(*db, *catalog, cores, false);
    rows.push_back({StrCat("DoGet, ", cores, " endpoints in parallel"),
                    Best(runs, [&] { return Fetch(s, fc::Descriptor::Path("trips"), true); })});
  }
  {
    ServerUnderTest s = Serve(*db, *catalog, 1, true);
    rows.push_back({"DoGet, one stream, generated protobuf (body copied)",
                    Best(runs, [&] { return Fetch(s, fc::Descriptor::Sql(sql), false); })});
  }
  // From the result cache: the entry holds the messages the first DoGet sent, so its batch
  // size is the live query's (DuckDB's 2048-row chunks by default, or coalesced).
  auto from_cache = [&](int64_t batch_bytes) {
    Measure cached;
    const std::filesystem::path cache_dir =
        std::filesystem::temp_directory_path() / StrCat("flight_bench_cache_", ::getpid());
    cache::CacheOptions cache_options;
    cache_options.dir = cache_dir;
    cache_options.max_bytes = int64_t{4} << 30;
    auto result_cache = Check(cache::Cache::Open(cache_options));
    {
      ServerUnderTest s = Serve(*db, *catalog, 1, false, result_cache.get(), batch_bytes);
      Fetch(s, fc::Descriptor::Sql(sql), false);  // the miss writes the entry
      // The entry is committed (fsync, rename) just after the call finished.
      for (int i = 0; i < 6000 && s.server->stats().results_cached != 1; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (s.server->stats().results_cached != 1) Die(Internal("the result was not cached"));
      cached = Best(runs, [&] { return Fetch(s, fc::Descriptor::Sql(sql), false); });
      if (s.server->stats().results_from_cache != runs) Die(Internal("cache hits missing"));
    }
    result_cache.reset();
    std::filesystem::remove_all(cache_dir);
    return cached;
  };
  const Measure cached = from_cache(0);
  const Measure cached_coalesced = from_cache(int64_t{4} << 20);
  Measure generated_alone = Best(runs, [&] { return Scan(*db, generated, true); });
  Measure generated_get;
  {
    ServerUnderTest s = Serve(*db, *catalog, 1, false);
    generated_get = Best(runs, [&] { return Fetch(s, fc::Descriptor::Sql(generated), false); });
  }
  Measure put;
  {
    ServerUnderTest s = Serve(*db, *catalog, 1, false);
    fc::FlightInfo info = Check(s.client->GetFlightInfo(fc::Descriptor::Sql(sql)));
    put = Best(runs, [&] {
      // Put takes the batches over: fetch them anew (not timed) for every run.
      fc::Table table = Check(s.client->FetchAll(info));
      auto start = Clock::now();
      fc::PutOutcome outcome =
          Check(s.client->Put(fc::Descriptor::Path("flight_bench_upload"), *table.schema,
                              std::move(table.batches), fc::PutMode::kReplace));
      Measure m;
      m.seconds = Seconds(start);
      m.rows = table.rows;
      m.bytes = outcome.body_bytes_sent;
      return m;
    });
  }
  std::filesystem::remove(upload);

  auto gbps = [](const Measure& m) { return m.bytes * 8 / m.seconds / 1e9; };
  auto share = [&](const Measure& m) {
    if (loopback_gbps <= 0) return std::string("-");
    char text[32];
    std::snprintf(text, sizeof(text), "%.0f%%", 100 * gbps(m) / loopback_gbps);
    return std::string(text);
  };
  std::printf(
      "| what | seconds | M rows/s | MB | Gbit/s | share of loopback | body bytes copied per GB "
      "|\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  // In-process rows cross no socket: no share of the loopback limit.
  auto print = [&](const std::string& what, const Measure& m) {
    const bool in_process = what.find("in process") != std::string::npos;
    std::printf(
        "| %s | %.3f | %.2f | %.0f | %.2f | %s | %s |\n", what.c_str(), m.seconds,
        m.rows / m.seconds / 1e6, m.bytes / 1e6, gbps(m), in_process ? "-" : share(m).c_str(),
        m.bytes > 0 ? std::to_string(static_cast<int64_t>(m.bytes_copied * 1e9 / m.bytes)).c_str()
                    : "-");
  };
  for (const Row& r : rows) print(r.what, r.m);
  print("DoGet from the result cache, one stream (slices of the file's mapping)", cached);
  print("DoGet from the result cache, entry written with --batch-bytes 4 MiB", cached_coalesced);
  print("DuckDB generates 20M rows x 4 columns + encode (in process)", generated_alone);
  print("DoGet of those generated rows, one stream", generated_get);
  print("DoPut of the trips result (new Parquet table)", put);
  if (loopback_gbps > 0) {
    std::printf("| loopback TCP limit, one iperf3 stream | - | - | - | %.2f | 100%% | - |\n",
                loopback_gbps);
  }
  // Where the one-stream DoGet's time goes: DuckDB producing the batches, IPC encoding
  // (metadata only), and the rest (gRPC, loopback, the client decoding).
  const Measure& alone = rows[0].m;
  const Measure& encoded = rows[1].m;
  const Measure& one = rows[2].m;
  std::printf(
      "\nOne-stream DoGet of `%s`: %.0f%% DuckDB, %.0f%% IPC encoding, %.0f%% gRPC + "
      "loopback + client. Protobuf path / zero-copy path time: %.2fx.\n",
      sql.c_str(), 100 * alone.seconds / one.seconds,
      100 * std::max(0.0, encoded.seconds - alone.seconds) / one.seconds,
      100 * std::max(0.0, one.seconds - encoded.seconds) / one.seconds,
      rows[4].m.seconds / one.seconds);
  return 0;
}

}  // namespace
}  // namespace bridge

int main(int argc, char** argv) { return bridge::Main(argc, argv); }
