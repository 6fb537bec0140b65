#include "bridge/app/sql_command.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bridge/app/flight_command.h"
#include "bridge/flightsql/sql_client.h"
#include "bridge/format/row_writer.h"

namespace bridge::app {
namespace {

namespace fc = ::bridge::flight::client;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Fail(int code, const Status& status) {
  std::fprintf(stderr, "bridge: %s\n", std::string(status.message()).c_str());
  return code;
}

class SqlCommandImpl final : public SqlCommand {
 public:
  explicit SqlCommandImpl(CLI::App& app) {
    cmd_ = app.add_subcommand("sql",
                              "an Arrow Flight SQL client: run a query (with --param: as a "
                              "prepared statement) or list the tables");
    cmd_->add_option("--uri", uri_, "server: grpc://HOST:PORT or grpc+tls://HOST:PORT")->required();
    cmd_->add_option("--user", user_, "user name (Basic handshake -> bearer token)");
    cmd_->add_option("--password", password_, "password of --user");
    cmd_->add_option("--token", token_, "bearer token (instead of --user/--password)");
    cmd_->add_option("--tls-ca", tls_ca_, "PEM root certificates of the server (grpc+tls)");
    cmd_->add_option("--tls-server-name", tls_server_name_,
                     "name to check in the server's certificate instead of the URI's host");
    cmd_->add_option("--param", params_,
                     "a parameter value (repeat for $1, $2, ...): runs the query as a prepared "
                     "statement; values go as text and the server casts them")
        ->allow_extra_args(false);
    cmd_->add_flag("--tables", tables_, "list the tables (the query argument: a name pattern)");
    cmd_->add_option("--format", format_, "stdout format: table|csv|json|ndjson")
        ->capture_default_str();
    cmd_->add_option("--out", out_, "write the result as an Arrow IPC file instead of printing");
    cmd_->add_option("--timeout-ms", timeout_ms_, "deadline of each call, 0 = none")
        ->capture_default_str();
    cmd_->add_option("query", query_, "SQL (or, with --tables, a table name pattern)");
  }

  bool parsed() const override { return cmd_->parsed(); }

  int Run() override {
    if (user_.empty() != password_.empty()) {
      return Fail(kExitUsage, InvalidArgument("--user and --password go together"));
    }
    if (!token_.empty() && !user_.empty()) {
      return Fail(kExitUsage, InvalidArgument("give --token or --user/--password, not both"));
    }
    if (!tables_ && query_.empty()) return Fail(kExitUsage, InvalidArgument("give a query"));
    if (tables_ && !params_.empty()) {
      return Fail(kExitUsage, InvalidArgument("--tables takes no --param"));
    }
    if (out_.empty() && !format::ParseTextFormat(format_).ok()) {
      return Fail(kExitUsage, InvalidArgument("--format must be table, csv, json or ndjson"));
    }
    if (timeout_ms_ < 0) return Fail(kExitUsage, InvalidArgument("--timeout-ms must be >= 0"));
    fc::ClientOptions options;
    options.user = user_;
    options.password = password_;
    options.token = token_;
    options.tls_root_ca_file = tls_ca_;
    options.tls_server_name = tls_server_name_;
    options.timeout = std::chrono::milliseconds(timeout_ms_);
    auto client = fc::Client::Connect(uri_, options);
    if (!client.ok()) {
      bool usage = client.status().code() == StatusCode::kInvalidArgument ||
                   client.status().code() == StatusCode::kNotFound;
      return Fail(usage ? kExitUsage : kExitFailure, client.status());
    }
    flightsql::SqlClient sql(**client);
    auto start = std::chrono::steady_clock::now();
    Result<fc::Table> table = tables_           ? sql.Tables(query_)
                              : params_.empty() ? sql.Query(query_)
                                                : sql.QueryPrepared(query_, params_);
    if (!table.ok()) return Fail(kExitFailure, table.status());
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::fprintf(stderr, "sql: %lld rows in %.3f s\n", static_cast<long long>(table->rows),
                 took.count());
    Status written = out_.empty() ? PrintTable(format_, *table) : WriteArrowFile(out_, *table);
    return written.ok() ? 0 : Fail(kExitFailure, written);
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::string uri_;
  std::string user_;
  std::string password_;
  std::string token_;
  std::string tls_ca_;
  std::string tls_server_name_;
  std::vector<std::string> params_;
  bool tables_ = false;
  std::string format_ = "table";
  std::string out_;
  int64_t timeout_ms_ = 0;
  std::string query_;
};

}  // namespace

SqlCommand::~SqlCommand() = default;

std::unique_ptr<SqlCommand> SqlCommand::Register(CLI::App& app) {
  return std::make_unique<SqlCommandImpl>(app);
}

}  // namespace bridge::app
