#include "bridge/app/local_commands.h"

#include <cctype>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "bridge/app/cli.h"
#include "bridge/app/demo_data.h"
#include "bridge/app/ipc_commands.h"
#include "bridge/common/logging.h"
#include "bridge/format/row_writer.h"

namespace bridge::app {
namespace {

// Returns the words of `sql` (runs of letters, digits and underscores), lower-cased.
std::set<std::string> WordsOf(std::string_view sql) {
  std::set<std::string> words;
  std::string word;
  for (char c : sql) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.insert(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.insert(std::move(word));
  return words;
}

int RunQuery(const Overrides& flags, const std::string& format_name, const std::string& compression,
             const std::string& sql) {
  // The result goes to stdout; only warnings and errors go to stderr unless asked.
  auto config = flags.Resolve("warn");
  if (!config.ok()) return Fail(kExitUsage, config.status());
  bool arrow = format_name == "arrow";
  auto codec = ipc::ParseCodec(compression);
  if (!codec.ok()) return Fail(kExitUsage, codec.status());
  if (!arrow && *codec != ipc::Codec::kNone) {
    return Fail(kExitUsage, InvalidArgument("--compression applies to --format arrow only"));
  }
  auto format = arrow ? Result<format::TextFormat>(format::TextFormat::kTable)
                      : format::ParseTextFormat(format_name);
  if (!format.ok()) return Fail(kExitUsage, format.status());
  // One query, one session: only the tables the SQL mentions get a view, and none is
  // described (see the engine benchmark in README).
  engine::EngineOptions engine_options = EngineOptionsOf(*config);
  engine_options.max_sessions = 1;
  engine_options.progress = false;  // nobody polls it here
  catalog::CatalogOptions catalog_options;
  catalog_options.watch = false;
  catalog_options.describe = false;
  // Table names are identifiers ([A-Za-z0-9_]), so a table is mentioned iff its lower-cased
  // name is one of the words (string literals included: query_table('trips') counts).
  catalog_options.include = [words = WordsOf(sql)](std::string_view name) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return words.contains(lower);
  };
  auto opened = OpenDataFolder(engine_options, catalog_options);
  if (!opened.ok()) return Fail(kExitUsage, opened.status());
  auto session = opened->db->Connect();
  if (!session.ok()) return Fail(kExitFailure, session.status());
  engine::QueryOptions options;
  options.timeout = std::chrono::milliseconds(config->query_timeout_ms);
  options.batch_rows = config->batch_rows;
  options.batch_bytes = config->batch_bytes;
  auto stream = (*session)->Query(sql, {}, options);
  if (!stream.ok()) return Fail(kExitFailure, stream.status());
  if (arrow) {
    Status st = WriteArrowStream(**stream, *codec);
    return st.ok() ? 0 : Fail(kExitFailure, st);
  }
  auto writer = format::RowWriter::Make(*format, (*stream)->schema());
  if (!writer.ok()) return Fail(kExitFailure, writer.status());
  std::string out;
  auto flush = [&out] {
    std::fwrite(out.data(), 1, out.size(), stdout);
    out.clear();
  };
  Status st = (*writer)->Begin(&out);
  while (st.ok()) {
    auto batch = (*stream)->Next();
    if (!batch.ok()) {
      st = batch.status();
      break;
    }
    if (!batch->valid()) {
      st = (*writer)->End(&out);
      break;
    }
    st = (*writer)->Write(**batch, &out);
    if (out.size() > (1 << 20)) flush();
  }
  flush();
  std::fflush(stdout);
  if (!st.ok()) return Fail(kExitFailure, st);
  return 0;
}

int RunGenDemo(const std::string& out, int64_t rows, uint64_t seed) {
  Status st = ConfigureLogging(LogFormat::kText, "info");
  if (!st.ok()) return Fail(kExitUsage, st);
  DemoOptions options;
  options.out_dir = out;
  options.rows = rows;
  options.seed = seed;
  st = GenerateDemoData(options);
  if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kAlreadyExists) {
    return Fail(kExitUsage, st);
  }
  if (!st.ok()) return Fail(kExitFailure, st);
  return 0;
}

class LocalCommandsImpl final : public LocalCommands {
 public:
  explicit LocalCommandsImpl(CLI::App& app) {
    query_ = app.add_subcommand("query", "run one query in-process and print the result");
    query_flags_.AddCommon(*query_);
    query_->add_option("--format", format_name_, "table|csv|json|ndjson|arrow")
        ->capture_default_str();
    query_->add_option("--compression", compression_, "Arrow body compression: none|zstd|lz4")
        ->capture_default_str();
    query_->add_option("sql", sql_, "the SQL query")->required();

    gen_demo_ = app.add_subcommand("gen-demo", "write the deterministic demo dataset");
    gen_demo_->add_option("--out", demo_out_, "output folder")->required();
    gen_demo_->add_option("--rows", demo_rows_, "number of trips")->capture_default_str();
    gen_demo_->add_option("--seed", demo_seed_, "seed of the generator")->capture_default_str();

    CLI::App* ipc = app.add_subcommand("ipc", "inspect Arrow IPC streams and files");
    ipc->require_subcommand(1);
    struct IpcSub {
      const char* name;
      const char* help;
      IpcCommand command;
    };
    for (const IpcSub& sub :
         {IpcSub{"cat", "print the schema and rows as a table", IpcCommand::kCat},
          IpcSub{"validate", "check every message; exit 0 if valid, 1 with the reason if not",
                 IpcCommand::kValidate},
          IpcSub{"to-json", "print the Arrow integration-test JSON", IpcCommand::kToJson}}) {
      CLI::App* cmd = ipc->add_subcommand(sub.name, sub.help);
      cmd->add_option("file", ipc_path_, "IPC stream or file, - for stdin")->required();
      ipc_subs_.emplace_back(cmd, sub.command);
    }

    version_ = app.add_subcommand("version", "print Bridge's and DuckDB's versions");
  }

  bool parsed() const override {
    if (query_->parsed() || gen_demo_->parsed() || version_->parsed()) return true;
    for (const auto& [cmd, command] : ipc_subs_) {
      if (cmd->parsed()) return true;
    }
    return false;
  }

  int Run() override {
    if (query_->parsed()) return RunQuery(query_flags_, format_name_, compression_, sql_);
    if (gen_demo_->parsed()) return RunGenDemo(demo_out_, demo_rows_, demo_seed_);
    for (const auto& [cmd, command] : ipc_subs_) {
      if (cmd->parsed()) return RunIpcCommand(command, ipc_path_);
    }
    if (version_->parsed()) {
      std::printf("bridge %s\nduckdb %s\n", kBridgeVersion, engine::DuckDBVersion().c_str());
      return 0;
    }
    return kExitUsage;
  }

 private:
  CLI::App* query_ = nullptr;
  Overrides query_flags_;
  std::string format_name_ = "table";
  std::string compression_ = "none";
  std::string sql_;
  CLI::App* gen_demo_ = nullptr;
  std::string demo_out_;
  int64_t demo_rows_ = 5'000'000;
  uint64_t demo_seed_ = 42;
  std::string ipc_path_;
  std::vector<std::pair<CLI::App*, IpcCommand>> ipc_subs_;
  CLI::App* version_ = nullptr;
};

}  // namespace

bool LocalCommands::Handles(std::string_view name) {
  return name == "query" || name == "gen-demo" || name == "ipc" || name == "version";
}

std::unique_ptr<LocalCommands> LocalCommands::Register(CLI::App& app) {
  return std::make_unique<LocalCommandsImpl>(app);
}

LocalCommands::~LocalCommands() = default;

}  // namespace bridge::app
