// Arrow Flight SQL overhead: Bridge's Flight server with the Flight SQL handler in process on
// 127.0.0.1:0, read by Bridge's Flight client over loopback, each Flight SQL measurement beside
// the same work as plain Flight in the same run (interleaved, so both see the same machine).
//
//   round trip   GetFlightInfo + DoGet of a one-row query (`SELECT 42 AS answer`):
//                CommandStatementQuery vs a plain CMD descriptor; p50 and p99 over --trips
//   throughput   the 5M-row `SELECT * FROM trips`: CommandStatementQuery vs plain DoGet in
//                --runs interleaved pairs (which goes first alternates): medians, best of
//                each, and the median of the pairs' ratios (this machine's run-to-run noise
//                is ~10%, so single runs cannot show a 5% difference); the Flight SQL layer
//                should cost under 5%
//
// Prints a Markdown table. Run:
//   build/release/bench/flightsql_bench --data build/bench-data [--runs 7] [--trips 2000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.h"
#include "bridge/catalog/catalog.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/client/client.h"
#include "bridge/flight/server.h"
#include "bridge/flightsql/flight_sql.h"
#include "bridge/flightsql/sql_client.h"

namespace bridge {
namespace {

using Clock = std::chrono::steady_clock;
namespace fc = flight::client;

using bench::Check;
using bench::Die;

// Seconds of one GetFlightInfo + fetch of every endpoint of `descriptor`; `rows` receives the
// row count.
double Fetch(fc::Client& client, const fc::Descriptor& descriptor, int64_t* rows) {
  auto start = Clock::now();
  fc::FlightInfo info = Check(client.GetFlightInfo(descriptor));
  fc::FetchOptions options;
  options.keep_batches = false;
  fc::Table table = Check(client.FetchAll(info, options));
  *rows = table.rows;
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

int Main(int argc, char** argv) {
  std::filesystem::path data;
  int runs = 7;
  int trips = 2000;
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
    } else if (arg == "--trips") {
      trips = std::max(10, std::atoi(value().c_str()));
    } else {
      Die(InvalidArgument("usage: flightsql_bench --data DIR [--runs N] [--trips N]"));
    }
  }
  if (data.empty()) Die(InvalidArgument("--data DIR (bridge gen-demo output) is required"));

  engine::EngineOptions eo;
  eo.data_dir = data;
  auto db = Check(engine::Database::Open(eo));
  catalog::CatalogOptions co;
  co.watch = false;
  auto catalog = Check(catalog::Catalog::Open(*db, co));
  auto handler = Check(flightsql::MakeFlightSqlHandler(*db, *catalog));
  flight::FlightServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.endpoints = 1;  // one stream each way, so the two paths do the same work
  options.query_threads = 4;
  flight::Services services{db.get(), catalog.get(), nullptr, nullptr, nullptr, handler.get()};
  auto server = Check(flight::FlightServer::Start(options, services));
  fc::ClientOptions client_options;
  client_options.max_message_bytes = -1;
  auto client = Check(
      fc::Client::Connect(StrCat("grpc://127.0.0.1:", server->port()), std::move(client_options)));

  auto plain = [](const std::string& sql) { return fc::Descriptor::Sql(sql); };
  auto flight_sql = [](const std::string& sql) {
    return fc::Descriptor::Sql(flightsql::SqlClient::StatementQueryCommand(sql));
  };

  // Round trips, interleaved.
  const std::string small = "SELECT 42 AS answer";
  std::vector<double> plain_trips, sql_trips;
  int64_t rows = 0;
  for (int i = 0; i < trips + 50; ++i) {
    double s = i % 2 == 0 ? 0 : Fetch(*client, flight_sql(small), &rows);
    double p = Fetch(*client, plain(small), &rows);
    if (i % 2 == 0) s = Fetch(*client, flight_sql(small), &rows);
    if (i < 50) continue;  // warm-up
    plain_trips.push_back(p);
    sql_trips.push_back(s);
  }

  // Throughput, interleaved pairs.
  const std::string big = "SELECT * FROM trips";
  std::vector<double> plain_runs, sql_runs, ratios;
  int64_t big_rows = 0;
  for (int i = 0; i < runs; ++i) {
    // Alternate which goes first, so that neither always follows the other.
    double p = 0, s = 0;
    if (i % 2 == 0) {
      p = Fetch(*client, plain(big), &big_rows);
      s = Fetch(*client, flight_sql(big), &big_rows);
    } else {
      s = Fetch(*client, flight_sql(big), &big_rows);
      p = Fetch(*client, plain(big), &big_rows);
    }
    plain_runs.push_back(p);
    sql_runs.push_back(s);
    ratios.push_back(s / p);
  }
  const double plain_median = Percentile(plain_runs, 0.5), sql_median = Percentile(sql_runs, 0.5);
  const double plain_best = *std::min_element(plain_runs.begin(), plain_runs.end());
  const double sql_best = *std::min_element(sql_runs.begin(), sql_runs.end());

  std::printf("| what | plain Flight | Flight SQL | Flight SQL / plain |\n");
  std::printf("| --- | ---: | ---: | ---: |\n");
  for (double p : {0.5, 0.99}) {
    double a = Percentile(plain_trips, p) * 1e6, b = Percentile(sql_trips, p) * 1e6;
    std::printf("| `%s` round trip p%.0f (us, %d trips) | %.0f | %.0f | %.2fx |\n", small.c_str(),
                p * 100, trips, a, b, b / a);
  }
  std::printf("| `%s` (%lld rows), median of %d (s) | %.3f | %.3f | %.3fx |\n", big.c_str(),
              static_cast<long long>(big_rows), runs, plain_median, sql_median,
              sql_median / plain_median);
  std::printf("| same, best of %d (s) | %.3f | %.3f | %.3fx |\n", runs, plain_best, sql_best,
              sql_best / plain_best);
  std::printf("| same, median of the %d pairs' ratios | - | - | **%.3fx** |\n", runs,
              Percentile(ratios, 0.5));
  std::printf("| same, M rows/s (medians) | %.2f | %.2f | - |\n", big_rows / plain_median / 1e6,
              big_rows / sql_median / 1e6);
  return 0;
}

}  // namespace
}  // namespace bridge

int main(int argc, char** argv) { return bridge::Main(argc, argv); }
