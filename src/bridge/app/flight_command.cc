#include "bridge/app/flight_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bridge/arrow/data_type.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/writer.h"
#include "bridge/flight/client/client.h"
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

// Client-side problems that are the caller's fault exit 2; the server's answers exit 1.
int FailConnect(const Status& status) {
  bool usage =
      status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kNotFound;
  return Fail(usage ? kExitUsage : kExitFailure, status);
}

std::string DescribeType(const ArrowSchema& field) {
  auto type = ipc::ParseFormat(field.format);
  std::string text = type.ok() ? ipc::TypeName(*type) : std::string(field.format);
  if (field.dictionary != nullptr) {
    text = StrCat("dictionary<", DescribeType(*field.dictionary), ">");
  }
  if (!(field.flags & ARROW_FLAG_NULLABLE)) text += " not null";
  return text;
}

std::string DescribeSchema(const ArrowSchema& schema) {
  std::string out;
  for (int64_t i = 0; i < schema.n_children; ++i) {
    const ArrowSchema& field = *schema.children[i];
    out += StrCat("  ", field.name != nullptr ? field.name : "", ": ", DescribeType(field), "\n");
  }
  return out;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The batches of an Arrow IPC stream or file read whole into memory (they are views into
// it); the reader keeps the schema.
struct Input {
  std::unique_ptr<ipc::FileReader> file;
  std::unique_ptr<ipc::RecordBatchReader> stream;
  const ArrowSchema* schema = nullptr;
  std::vector<ipc::OwnedArray> batches;
  int64_t rows = 0;
};

Result<ipc::Buffer> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read '", path, "'");
  std::ostringstream content;
  content << in.rdbuf();
  return ipc::Buffer::FromString(std::move(content).str());
}

Result<Input> DecodeInput(const ipc::Buffer& bytes) {
  Input input;
  if (bytes.view().starts_with("ARROW1")) {
    BRIDGE_ASSIGN_OR_RETURN(input.file, ipc::FileReader::Open(bytes));
    input.schema = &input.file->schema();
    for (int64_t i = 0; i < input.file->num_batches(); ++i) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, input.file->ReadBatch(i));
      input.rows += batch->length;
      input.batches.push_back(std::move(batch));
    }
    return input;
  }
  BRIDGE_ASSIGN_OR_RETURN(input.stream, ipc::OpenStreamReader(bytes));
  input.schema = &input.stream->schema();
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, input.stream->Next());
    if (!batch.valid()) break;
    input.rows += batch->length;
    input.batches.push_back(std::move(batch));
  }
  return input;
}

}  // namespace

Status WriteArrowFile(const std::string& path, fc::Table& table) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot write '", path, "': ", std::strerror(errno));
  ipc::FileDescriptorSink sink(fd);
  Status st = [&]() -> Status {
    BRIDGE_ASSIGN_OR_RETURN(auto writer, ipc::FileWriter::Make(&sink, *table.schema));
    for (ipc::OwnedArray& batch : table.batches) {
      BRIDGE_RETURN_NOT_OK(writer->WriteBatch(std::move(batch)));
    }
    table.batches.clear();
    return writer->Close();
  }();
  if (::close(fd) != 0 && st.ok())
    st = IoError("cannot write '", path, "': ", std::strerror(errno));
  return st;
}

Status PrintTable(const std::string& format_name, const fc::Table& table) {
  if (format_name == "none") return OkStatus();
  BRIDGE_ASSIGN_OR_RETURN(format::TextFormat format, format::ParseTextFormat(format_name));
  BRIDGE_ASSIGN_OR_RETURN(auto writer, format::RowWriter::Make(format, *table.schema));
  std::string out;
  BRIDGE_RETURN_NOT_OK(writer->Begin(&out));
  for (const ipc::OwnedArray& batch : table.batches) {
    BRIDGE_RETURN_NOT_OK(writer->Write(*batch, &out));
    if (out.size() > (1 << 20)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  BRIDGE_RETURN_NOT_OK(writer->End(&out));
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return OkStatus();
}

namespace {

class FlightCommandImpl final : public FlightCommand {
 public:
  explicit FlightCommandImpl(CLI::App& app) {
    cmd_ = app.add_subcommand("flight",
                              "an Arrow Flight client: list, info, get, put, exchange, "
                              "actions, action");
    cmd_->require_subcommand(1);
    cmd_->fallthrough();
    cmd_->add_option("--uri", uri_, "server: grpc://HOST:PORT, grpc+tcp://..., grpc+tls://...")
        ->required();
    cmd_->add_option("--user", user_, "user name (Basic handshake -> bearer token)");
    cmd_->add_option("--password", password_, "password of --user");
    cmd_->add_option("--token", token_, "bearer token (instead of --user/--password)");
    cmd_->add_option("--tls-ca", tls_ca_, "PEM root certificates of the server (grpc+tls)");
    cmd_->add_option("--tls-cert", tls_cert_, "PEM client certificate (mutual TLS)");
    cmd_->add_option("--tls-key", tls_key_, "PEM key of --tls-cert");
    cmd_->add_option("--tls-server-name", tls_server_name_,
                     "name to check in the server's certificate instead of the URI's host");
    cmd_->add_option("--timeout-ms", timeout_ms_, "deadline of each call, 0 = none")
        ->capture_default_str();

    list_ = cmd_->add_subcommand("list", "list the flights (tables) with their row counts");
    list_->add_option("prefix", prefix_, "only names starting with this (any case)");

    info_ = cmd_->add_subcommand("info", "show the schema and endpoints of a table or query");
    AddDescriptor(*info_);

    get_ = cmd_->add_subcommand("get", "fetch every endpoint of a table or query");
    AddDescriptor(*get_);
    get_->add_flag("--parallel", parallel_, "read the endpoints in parallel");
    get_->add_option("--out", out_, "write an Arrow IPC file instead of printing");
    get_->add_option("--format", format_, "stdout format: table|csv|json|ndjson|none")
        ->capture_default_str();

    put_ = cmd_->add_subcommand("put", "upload an Arrow IPC file or stream into a table");
    put_->add_option("--path", path_, "the table")->required();
    put_->add_option("--mode", mode_, "create|append|replace")->capture_default_str();
    put_->add_option("file", file_, "Arrow IPC file or stream")->required();

    exchange_ =
        cmd_->add_subcommand("exchange", "run SQL over an uploaded Arrow file (as table input)");
    exchange_->add_option("--sql", sql_, "the SQL; the upload is the table `input`")->required();
    exchange_->add_option("file", file_, "Arrow IPC file or stream")->required();
    exchange_->add_option("--out", out_, "write an Arrow IPC file instead of printing");
    exchange_->add_option("--format", format_, "stdout format: table|csv|json|ndjson|none")
        ->capture_default_str();

    actions_ = cmd_->add_subcommand("actions", "list the server's actions");
    action_ = cmd_->add_subcommand("action", "run an action and print its results");
    action_->add_option("name", action_name_, "the action")->required();
    action_->add_option("body", action_body_, "the action's body");
  }

  bool parsed() const override { return cmd_->parsed(); }

  int Run() override {
    if (!user_.empty() && password_.empty()) {
      return Fail(kExitUsage, InvalidArgument("--user needs --password"));
    }
    if (user_.empty() && !password_.empty()) {
      return Fail(kExitUsage, InvalidArgument("--password needs --user"));
    }
    if (!token_.empty() && !user_.empty()) {
      return Fail(kExitUsage, InvalidArgument("give --token or --user/--password, not both"));
    }
    if (timeout_ms_ < 0) return Fail(kExitUsage, InvalidArgument("--timeout-ms must be >= 0"));
    if (get_->parsed() || info_->parsed()) {
      if (sql_.empty() == path_.empty()) {
        return Fail(kExitUsage, InvalidArgument("give one of --sql SQL or --path TABLE"));
      }
    }
    std::optional<fc::PutMode> mode;
    if (put_->parsed()) {
      auto parsed = fc::ParsePutMode(mode_);
      if (!parsed.ok())
        return Fail(kExitUsage, InvalidArgument("--mode must be create, append or replace"));
      mode = *parsed;
    }
    if ((get_->parsed() || exchange_->parsed()) && out_.empty() && format_ != "none") {
      if (!format::ParseTextFormat(format_).ok()) {
        return Fail(kExitUsage,
                    InvalidArgument("--format must be table, csv, json, ndjson or none"));
      }
    }
    // Read the upload before connecting: a bad file is a usage error.
    std::optional<Input> input;
    if (put_->parsed() || exchange_->parsed()) {
      auto bytes = ReadWholeFile(file_);
      if (!bytes.ok()) return Fail(kExitUsage, bytes.status());
      auto decoded = DecodeInput(*bytes);
      if (!decoded.ok()) {
        return Fail(kExitUsage, WithContext(decoded.status(), StrCat("'", file_, "'")));
      }
      input = std::move(decoded).value();
    }

    fc::ClientOptions options;
    options.user = user_;
    options.password = password_;
    options.token = token_;
    options.tls_root_ca_file = tls_ca_;
    options.tls_cert_file = tls_cert_;
    options.tls_key_file = tls_key_;
    options.tls_server_name = tls_server_name_;
    options.timeout = std::chrono::milliseconds(timeout_ms_);
    auto client = fc::Client::Connect(uri_, options);
    if (!client.ok()) return FailConnect(client.status());
    fc::Client& c = **client;

    if (list_->parsed()) return List(c);
    if (info_->parsed()) return Info(c);
    if (get_->parsed()) return Get(c);
    if (put_->parsed()) return Put(c, *mode, std::move(*input));
    if (exchange_->parsed()) return Exchange(c, std::move(*input));
    if (actions_->parsed()) return Actions(c);
    if (action_->parsed()) return Action(c);
    return kExitUsage;
  }

 private:
  void AddDescriptor(CLI::App& sub) {
    sub.add_option("--sql", sql_, "a query (CMD descriptor)");
    sub.add_option("--path", path_, "a table (PATH descriptor)");
  }

  fc::Descriptor TheDescriptor() const {
    return sql_.empty() ? fc::Descriptor::Path(path_) : fc::Descriptor::Sql(sql_);
  }

  int List(fc::Client& c) {
    auto flights = c.ListFlights(prefix_);
    if (!flights.ok()) return Fail(kExitFailure, flights.status());
    std::string out = "name\trecords\tbytes\tendpoints\n";
    for (const fc::FlightInfo& f : *flights) {
      std::string name;
      for (const std::string& p : f.descriptor.path) name += (name.empty() ? "" : "/") + p;
      if (f.descriptor.type == fc::Descriptor::Type::kCmd) name = f.descriptor.cmd;
      out +=
          StrCat(name, "\t", f.total_records, "\t", f.total_bytes, "\t", f.endpoints.size(), "\n");
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }

  int Info(fc::Client& c) {
    auto info = c.GetFlightInfo(TheDescriptor());
    if (!info.ok()) return Fail(kExitFailure, info.status());
    auto schema = info->Schema();
    if (!schema.ok()) return Fail(kExitFailure, schema.status());
    std::string out = StrCat(
        "schema:\n", DescribeSchema(**schema), "total_records: ", info->total_records, "\n",
        "total_bytes: ", info->total_bytes, "\n", "ordered: ", info->ordered ? "true" : "false",
        "\n", "endpoints: ", info->endpoints.size(), "\n");
    for (size_t i = 0; i < info->endpoints.size(); ++i) {
      const fc::Endpoint& e = info->endpoints[i];
      std::string locations;
      for (const std::string& l : e.locations) locations += (locations.empty() ? "" : ", ") + l;
      out += StrCat("  ", i, ": ticket ", e.ticket.size(),
                    " bytes, locations: ", locations.empty() ? "(this connection)" : locations,
                    e.expiration ? StrCat(", expires ", FormatTime(*e.expiration)) : "", "\n");
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }

  // Reports what a fetch received on stderr.
  static void Report(const char* what, const fc::Table& table, size_t endpoints, bool parallel,
                     double seconds) {
    double mb = static_cast<double>(table.stats.body_bytes) / 1e6;
    std::fprintf(stderr,
                 "%s: %lld rows, %lld bytes (Arrow bodies) from %zu endpoint(s)%s in %.3f s: "
                 "%.1f MB/s\n",
                 what, static_cast<long long>(table.rows),
                 static_cast<long long>(table.stats.body_bytes), endpoints,
                 parallel ? " in parallel" : "", seconds, seconds > 0 ? mb / seconds : 0.0);
  }

  int Output(fc::Table& table) {
    Status st = out_.empty() ? PrintTable(format_, table) : WriteArrowFile(out_, table);
    return st.ok() ? 0 : Fail(kExitFailure, st);
  }

  int Get(fc::Client& c) {
    auto start = std::chrono::steady_clock::now();
    auto info = c.GetFlightInfo(TheDescriptor());
    if (!info.ok()) return Fail(kExitFailure, info.status());
    fc::FetchOptions options;
    options.parallel = parallel_;
    options.keep_batches = !out_.empty() || format_ != "none";
    auto table = c.FetchAll(*info, options);
    if (!table.ok()) return Fail(kExitFailure, table.status());
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    Report("get", *table, info->endpoints.size(), parallel_, took.count());
    return Output(*table);
  }

  int Put(fc::Client& c, fc::PutMode mode, Input input) {
    auto start = std::chrono::steady_clock::now();
    int64_t rows = input.rows;
    size_t batches = input.batches.size();
    auto outcome =
        c.Put(fc::Descriptor::Path(path_), *input.schema, std::move(input.batches), mode);
    if (!outcome.ok()) return Fail(kExitFailure, outcome.status());
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::fprintf(
        stderr,
        "put: %lld rows in %zu batch(es), %lld bytes into '%s' (%s) in %.3f s: %lld "
        "acknowledgement(s)%s%s\n",
        static_cast<long long>(rows), batches, static_cast<long long>(outcome->body_bytes_sent),
        path_.c_str(), mode_.c_str(), took.count(), static_cast<long long>(outcome->acks),
        outcome->last_app_metadata.empty() ? "" : ", last: ", outcome->last_app_metadata.c_str());
    return 0;
  }

  int Exchange(fc::Client& c, Input input) {
    auto start = std::chrono::steady_clock::now();
    auto table = c.Exchange(sql_, *input.schema, std::move(input.batches));
    if (!table.ok()) return Fail(kExitFailure, table.status());
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    Report("exchange", *table, 1, false, took.count());
    return Output(*table);
  }

  int Actions(fc::Client& c) {
    auto actions = c.ListActions();
    if (!actions.ok()) return Fail(kExitFailure, actions.status());
    std::string out;
    for (const fc::ActionType& a : *actions) out += StrCat(a.type, "\t", a.description, "\n");
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }

  int Action(fc::Client& c) {
    auto results = c.DoAction(action_name_, action_body_);
    if (!results.ok()) return Fail(kExitFailure, results.status());
    std::string out;
    for (const std::string& r : *results) out += r + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }

  CLI::App* cmd_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* info_ = nullptr;
  CLI::App* get_ = nullptr;
  CLI::App* put_ = nullptr;
  CLI::App* exchange_ = nullptr;
  CLI::App* actions_ = nullptr;
  CLI::App* action_ = nullptr;
  std::string uri_;
  std::string user_;
  std::string password_;
  std::string token_;
  std::string tls_ca_;
  std::string tls_cert_;
  std::string tls_key_;
  std::string tls_server_name_;
  int64_t timeout_ms_ = 0;
  std::string prefix_;
  std::string sql_;
  std::string path_;
  bool parallel_ = false;
  std::string out_;
  std::string format_ = "table";
  std::string mode_ = "create";
  std::string file_;
  std::string action_name_;
  std::string action_body_;
};

}  // namespace

FlightCommand::~FlightCommand() = default;

std::unique_ptr<FlightCommand> FlightCommand::Register(CLI::App& app) {
  return std::make_unique<FlightCommandImpl>(app);
}

}  // namespace bridge::app
