#include "bridge/app/demo_data.h"

#include <fstream>

#include "bridge/engine/engine.h"
#include "spdlog/spdlog.h"

namespace bridge::app {
namespace {

struct City {
  const char* name;
  const char* country;
  double lat;
  double lon;
  int64_t population;
};

constexpr City kCities[50] = {
    {"Tokyo", "JP", 35.68, 139.69, 13960000},
    {"Delhi", "IN", 28.61, 77.21, 16787000},
    {"Shanghai", "CN", 31.23, 121.47, 24870000},
    {"Sao Paulo", "BR", -23.55, -46.63, 12330000},
    {"Mexico City", "MX", 19.43, -99.13, 9209000},
    {"Cairo", "EG", 30.04, 31.24, 9540000},
    {"Mumbai", "IN", 19.08, 72.88, 12478000},
    {"Beijing", "CN", 39.90, 116.41, 21540000},
    {"Dhaka", "BD", 23.81, 90.41, 8906000},
    {"Osaka", "JP", 34.69, 135.50, 2753000},
    {"New York", "US", 40.71, -74.01, 8336000},
    {"Karachi", "PK", 24.86, 67.01, 14910000},
    {"Buenos Aires", "AR", -34.60, -58.38, 3076000},
    {"Istanbul", "TR", 41.01, 28.98, 15460000},
    {"Kolkata", "IN", 22.57, 88.36, 4497000},
    {"Manila", "PH", 14.60, 120.98, 1846000},
    {"Lagos", "NG", 6.52, 3.38, 15388000},
    {"Rio de Janeiro", "BR", -22.91, -43.17, 6748000},
    {"Tianjin", "CN", 39.34, 117.36, 13866000},
    {"Kinshasa", "CD", -4.44, 15.27, 14970000},
    {"Guangzhou", "CN", 23.13, 113.26, 18676000},
    {"Los Angeles", "US", 34.05, -118.24, 3898000},
    {"Moscow", "RU", 55.76, 37.62, 13010000},
    {"Shenzhen", "CN", 22.54, 114.06, 17560000},
    {"Lahore", "PK", 31.55, 74.34, 11126000},
    {"Bangalore", "IN", 12.97, 77.59, 8443000},
    {"Paris", "FR", 48.86, 2.35, 2161000},
    {"Bogota", "CO", 4.71, -74.07, 7901000},
    {"Jakarta", "ID", -6.21, 106.85, 10562000},
    {"Chennai", "IN", 13.08, 80.27, 7088000},
    {"Lima", "PE", -12.05, -77.04, 9752000},
    {"Bangkok", "TH", 13.76, 100.50, 10539000},
    {"Seoul", "KR", 37.57, 126.98, 9776000},
    {"Nagoya", "JP", 35.18, 136.91, 2332000},
    {"Hyderabad", "IN", 17.39, 78.49, 6993000},
    {"London", "GB", 51.51, -0.13, 8982000},
    {"Tehran", "IR", 35.69, 51.39, 8694000},
    {"Chicago", "US", 41.88, -87.63, 2746000},
    {"Chengdu", "CN", 30.57, 104.07, 20937000},
    {"Nanjing", "CN", 32.06, 118.80, 9314000},
    {"Wuhan", "CN", 30.59, 114.31, 12326000},
    {"Ho Chi Minh City", "VN", 10.82, 106.63, 8993000},
    {"Luanda", "AO", -8.84, 13.23, 8330000},
    {"Ahmedabad", "IN", 23.02, 72.57, 5570000},
    {"Kuala Lumpur", "MY", 3.14, 101.69, 1808000},
    {"Hong Kong", "HK", 22.32, 114.17, 7482000},
    {"Madrid", "ES", 40.42, -3.70, 3223000},
    {"Berlin", "DE", 52.52, 13.40, 3645000},
    {"Toronto", "CA", 43.65, -79.38, 2794000},
    {"Sydney", "AU", -33.87, 151.21, 5312000},
};

Status WriteCities(const std::filesystem::path& path) {
  std::filesystem::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "city_id,name,country,lat,lon,population\n";
    for (int i = 0; i < 50; ++i) {
      const City& c = kCities[i];
      out << (i + 1) << ',' << c.name << ',' << c.country << ',' << c.lat << ',' << c.lon << ','
          << c.population << '\n';
    }
    if (!out) return IoError("gen-demo: cannot write ", tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError("gen-demo: cannot rename to ", path.string(), ": ", ec.message());
  return OkStatus();
}

}  // namespace

Status GenerateDemoData(const DemoOptions& options) {
  if (options.rows < 1) return InvalidArgument("gen-demo: --rows must be >= 1");
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) {
    return IoError("gen-demo: cannot create '", options.out_dir.string(), "': ", ec.message());
  }
  for (const char* name : {"trips", "cities.csv", "events.ndjson", ".trips.tmp"}) {
    if (std::filesystem::exists(options.out_dir / name)) {
      return AlreadyExists("gen-demo: '", (options.out_dir / name).string(),
                           "' already exists; remove it or choose another --out");
    }
  }
  // One thread: files come out with the same rows in the same order every time.
  engine::EngineOptions engine_options;
  engine_options.data_dir = options.out_dir;
  engine_options.threads = 1;
  engine_options.max_sessions = 1;
  BRIDGE_ASSIGN_OR_RETURN(auto db, engine::Database::Open(engine_options));
  const auto& dir = db->options().data_dir;
  std::string seed = std::to_string(options.seed);
  // u(k): a uniform number in [0, 1) from (seed, row, k), the same on every run.
  auto u = [&](int k) {
    return "(hash(i, " + seed + ", " + std::to_string(k) + ") % 1000000007) / 1000000007.0";
  };
  std::string trips_sql =
      "COPY (SELECT id, pickup_at, dropoff_at, passengers, distance, fare, tip, payment, "
      "city_id, notes, year(pickup_at) AS year, month(pickup_at) AS month FROM ("
      "SELECT i AS id, "
      "TIMESTAMP '2024-01-01' + to_seconds(CAST(floor(" +
      u(1) +
      " * 365 * 86400) AS BIGINT)) "
      "AS pickup_at, "
      "pickup_at + to_seconds(CAST(120 + floor(" +
      u(2) +
      " * 3480) AS BIGINT)) AS dropoff_at, "
      "CAST(1 + floor(" +
      u(3) + " * " + u(3) +
      " * 6) AS INTEGER) AS passengers, "
      "round(0.3 + " +
      u(4) + " * " + u(4) +
      " * 30, 2) AS distance, "
      "CAST(2.5 + distance * 1.75 + " +
      u(5) +
      " * 3 AS DECIMAL(10,2)) AS fare, "
      "round(CASE WHEN " +
      u(6) + " < 0.4 THEN 0 ELSE fare * (0.1 + " + u(7) +
      " * 0.15) END, 2) "
      "AS tip, "
      "['card', 'cash', 'app', 'voucher', 'unknown'][1 + CAST(floor(" +
      u(8) + " * " + u(8) +
      " * 5) AS INTEGER)] AS payment, "
      "CAST(1 + floor(" +
      u(9) +
      " * 50) AS INTEGER) AS city_id, "
      "CASE WHEN " +
      u(10) +
      " < 0.9 THEN NULL ELSE "
      "['quiet ride', 'luggage', 'airport run', 'late night', 'called \"twice\"']"
      "[1 + CAST(floor(" +
      u(11) +
      " * 5) AS INTEGER)] END AS notes "
      "FROM range(" +
      std::to_string(options.rows) + ") t(i))) TO " +
      engine::QuoteString((dir / ".trips.tmp").string()) +
      " (FORMAT parquet, PARTITION_BY (year, month), COMPRESSION zstd, ROW_GROUP_SIZE 122880)";
  spdlog::info("gen-demo: writing {} trips to {}", options.rows, (dir / "trips").string());
  // Written under a hidden name and renamed, so a watching server never sees half of it.
  BRIDGE_RETURN_NOT_OK(WithContext(db->ExecuteTrusted(trips_sql), "gen-demo: trips"));
  std::filesystem::rename(dir / ".trips.tmp", dir / "trips", ec);
  if (ec) return IoError("gen-demo: cannot rename trips: ", ec.message());

  BRIDGE_RETURN_NOT_OK(WriteCities(dir / "cities.csv"));

  int64_t events = std::max<int64_t>(1000, options.rows / 100);
  std::string events_sql =
      "COPY (SELECT i AS event_id, "
      "TIMESTAMP '2024-01-01' + to_seconds(CAST(floor(" +
      u(21) +
      " * 365 * 86400) AS BIGINT)) "
      "AS at, "
      "['open', 'search', 'book', 'cancel', 'rate'][1 + CAST(floor(" +
      u(22) +
      " * 5) AS INTEGER)] AS kind, "
      "{'id': CAST(floor(" +
      u(23) +
      " * 100000) AS BIGINT), "
      "'tier': ['free', 'plus', 'pro'][1 + CAST(floor(" +
      u(24) +
      " * 3) AS INTEGER)], "
      "'device': {'os': ['ios', 'android', 'web'][1 + CAST(floor(" +
      u(25) + " * 3) AS INTEGER)], 'version': CAST(1 + floor(" + u(26) +
      " * 20) AS INTEGER)}} AS user, "
      "list_transform(range(CAST(floor(" +
      u(27) +
      " * 4) AS BIGINT)), "
      "x -> ['promo', 'rain', 'rush', 'event', 'night'][1 + (x + i) % 5]) AS tags, "
      "CASE WHEN " +
      u(28) + " < 0.5 THEN NULL ELSE CAST(floor(" + u(29) + " * " + std::to_string(options.rows) +
      ") AS BIGINT) END AS trip_id "
      "FROM range(" +
      std::to_string(events) + ") t(i)) TO " +
      engine::QuoteString((dir / ".events.ndjson.tmp").string()) + " (FORMAT json)";
  BRIDGE_RETURN_NOT_OK(WithContext(db->ExecuteTrusted(events_sql), "gen-demo: events"));
  std::filesystem::rename(dir / ".events.ndjson.tmp", dir / "events.ndjson", ec);
  if (ec) return IoError("gen-demo: cannot rename events.ndjson: ", ec.message());
  spdlog::info("gen-demo: wrote trips/, cities.csv and events.ndjson ({} events) in {}", events,
               dir.string());
  return OkStatus();
}

}  // namespace bridge::app
