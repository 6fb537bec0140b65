// DoPut and DoExchange: the receive path, atomic ingest and hostile uploads, against the
// server in process on 127.0.0.1:0.
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "bridge/arrow/test_arrays.h"
#include "bridge/flight/client/client.h"
#include "bridge/flight/flight_testing.h"
#include "bridge/flight/ingest_internal.h"
#include "grpcpp/generic/generic_stub.h"
#include "nlohmann/json.hpp"

namespace bridge::flight {
namespace {

namespace fs = std::filesystem;
namespace ta = ::bridge::ipc::test_arrays;
using ::bridge::flight::testing::kRows;
using ::bridge::flight::testing::StartServer;
using ::bridge::flight::testing::TestServer;
using ::testing::HasSubstr;

constexpr std::string_view kDoPut = "/arrow.flight.protocol.FlightService/DoPut";
constexpr std::string_view kDoExchange = "/arrow.flight.protocol.FlightService/DoExchange";

// (x INT) schema and batches of it: batch b holds b*10 .. b*10+9.
ipc::OwnedSchema IntSchema() {
  std::vector<ipc::OwnedSchema> fields;
  fields.push_back(ta::MakeSchema("i", "x"));
  return ta::Columns(std::move(fields));
}

ipc::OwnedArray IntBatch(int b) {
  std::vector<ipc::OwnedArray> columns;
  int32_t v = b * 10;
  columns.push_back(ta::Int32s({v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7, v + 8, v + 9}));
  return ta::Batch(10, std::move(columns));
}

grpc::ByteBuffer BytesMessage(std::string_view bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

// The FlightData messages of an upload of `batches` (x INT): the schema (with `descriptor`
// and `app_metadata`), then one message per batch.
std::vector<grpc::ByteBuffer> UploadMessages(const protocol::FlightDescriptor& descriptor,
                                             int batches, std::string_view app_metadata = {}) {
  std::vector<grpc::ByteBuffer> out;
  ipc::OwnedSchema schema = IntSchema();
  auto encoder = ipc::RecordBatchEncoder::Make(*schema);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  if (!encoder.ok()) return out;
  auto schema_message = (*encoder)->EncodeSchema();
  EXPECT_TRUE(schema_message.ok());
  out.push_back(EncodeFlightData(*schema_message, &descriptor, app_metadata).buffer);
  for (int b = 0; b < batches; ++b) {
    auto messages = (*encoder)->Encode(IntBatch(b));
    EXPECT_TRUE(messages.ok()) << messages.status();
    if (!messages.ok()) return out;
    for (const auto& m : *messages) out.push_back(EncodeFlightData(m).buffer);
  }
  return out;
}

struct RawReply {
  grpc::Status status;
  std::vector<std::string> received;  // each reply message's bytes

  // The replies as FlightData (DoExchange).
  std::vector<DecodedFlightData> AsFlightData() const {
    std::vector<DecodedFlightData> out;
    for (const std::string& r : received) {
      Result<DecodedFlightData> d = DecodeFlightData(BytesMessage(r));
      EXPECT_TRUE(d.ok()) << d.status();
      if (d.ok()) out.push_back(std::move(d).value());
    }
    return out;
  }
};

// Sends `messages` on a raw bidirectional call `method` (stopping at the first failed
// write: the server may end the call early), half-closes, and reads every reply.
RawReply RawUpload(TestServer& t, std::string_view method, std::vector<grpc::ByteBuffer> messages,
                   const std::string& token = "") {
  RawReply reply;
  grpc::GenericStub stub(t.channel);
  grpc::ClientContext ctx;
  testing::Authorize(ctx, token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto call = stub.PrepareCall(&ctx, std::string(method), &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  for (grpc::ByteBuffer& m : messages) {
    call->Write(m, reinterpret_cast<void*>(2));
    EXPECT_TRUE(cq.Next(&tag, &ok));
    if (!ok) break;
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  for (;;) {
    grpc::ByteBuffer received;
    call->Read(&received, reinterpret_cast<void*>(4));
    EXPECT_TRUE(cq.Next(&tag, &ok));
    if (!ok) break;
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(received.Dump(&slices).ok());
    std::string bytes;
    for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    reply.received.push_back(std::move(bytes));
  }
  call->Finish(&reply.status, reinterpret_cast<void*>(5));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return reply;
}

// Every entry of the data folder, recursively, as paths relative to it.
std::set<std::string> DataFiles(TestServer& t) {
  std::set<std::string> out;
  fs::path data = t.dir.path() / "data";
  // Files may vanish while the folder is listed (a cancelled upload removing its temporary).
  std::error_code ec;
  for (fs::recursive_directory_iterator it(data, ec), end; !ec && it != end; it.increment(ec)) {
    out.insert(it->path().lexically_relative(data).string());
  }
  return out;
}

std::string FileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Rows and sum of column x of table `name` (through SQL on the server's engine).
std::pair<int64_t, int64_t> CountAndSum(TestServer& t, const std::string& name) {
  auto table = t.db->QueryTrusted(
      StrCat("select count(*), coalesce(sum(x), 0) from ", engine::QuoteIdentifier(name)));
  EXPECT_TRUE(table.ok()) << table.status();
  if (!table.ok() || table->rows.size() != 1) return {-1, -1};
  return {std::stoll(*table->rows[0][0]), std::stoll(*table->rows[0][1])};
}

// Waits (with a deadline) until the server has no upload running, so that what a cancelled
// upload left behind can be inspected.
void WaitForUploadsToEnd(TestServer& t) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    bool temp = false;
    for (const std::string& f : DataFiles(t)) temp = temp || f.find(".tmp-") != std::string::npos;
    // A new upload of a scratch table succeeds only when no upload holds the server's
    // threads; the data folder holds no temporary file once the cancelled writer cleaned up.
    if (!temp && t.server->stats().uploads_running == 0) return;
    std::this_thread::yield();
  }
  ADD_FAILURE() << "uploads did not end";
}

std::unique_ptr<client::Client> ConnectTo(TestServer& t, client::ClientOptions options = {}) {
  auto c =
      client::Client::Connect(StrCat("grpc://127.0.0.1:", t.server->port()), std::move(options));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(c).value() : nullptr;
}

Status PutBatches(client::Client& c, const std::string& table, int batches,
                  client::PutMode mode = client::PutMode::kCreate) {
  std::vector<ipc::OwnedArray> list;
  for (int b = 0; b < batches; ++b) list.push_back(IntBatch(b));
  return c.Put(client::Descriptor::Path(table), *IntSchema(), std::move(list), mode).status();
}

TEST(IngestNames, TableNamesThatCannotEscapeTheDataFolder) {
  for (const char* good : {"t", "trips_2024", "A1"}) {
    EXPECT_TRUE(ValidateTableName(good).ok()) << good;
  }
  for (std::string bad :
       {std::string(""), std::string("../x"), std::string("a/b"), std::string("a\\b"),
        std::string(".hidden"), std::string("1abc"), std::string("a b"), std::string("a\0b", 3),
        std::string(256, 'a'), std::string("caf\xc3\xa9")}) {
    EXPECT_STATUS(ValidateTableName(bad), StatusCode::kInvalidArgument, "table name") << bad;
  }
}

TEST(IngestNames, PutModes) {
  EXPECT_EQ(*ParsePutMode(""), PutMode::kCreate);
  EXPECT_EQ(*ParsePutMode("{}"), PutMode::kCreate);
  EXPECT_EQ(*ParsePutMode(R"({"mode": "append"})"), PutMode::kAppend);
  EXPECT_EQ(*ParsePutMode(R"({"mode": "replace"})"), PutMode::kReplace);
  EXPECT_EQ(*ParsePutMode(R"({"mode": "create"})"), PutMode::kCreate);
  for (const char* bad : {"append", R"({"mode": "upsert"})", R"({"mode": 1})", "[1]", "{"}) {
    EXPECT_STATUS(ParsePutMode(bad), StatusCode::kInvalidArgument, "mode") << bad;
  }
}

TEST(DoPutTest, AcknowledgesRowsCommitsAndCountsTheReceivedBody) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  RawReply reply = RawUpload(*t, kDoPut, UploadMessages(testing::Path({"ints"}), 5));
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  ASSERT_FALSE(reply.received.empty());
  // The last PutResult says the upload is committed, with every row.
  protocol::PutResult last;
  ASSERT_TRUE(last.ParseFromString(reply.received.back()));
  auto json = nlohmann::json::parse(last.app_metadata());
  EXPECT_EQ(json["rows"], 50);
  EXPECT_EQ(json["committed"], true);
  EXPECT_EQ(CountAndSum(*t, "ints"), std::make_pair(int64_t{50}, int64_t{49 * 50 / 2}));
  FlightStats stats = t->server->stats();
  EXPECT_EQ(stats.rows_ingested, 50);
  EXPECT_GE(stats.body_bytes_received, 5 * 10 * 4);
  EXPECT_TRUE(DataFiles(*t).count("ints.parquet"));
}

TEST(DoPutTest, LastAcknowledgementSaysCommitted) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto c = ConnectTo(*t);
  ASSERT_NE(c, nullptr);
  std::vector<ipc::OwnedArray> list;
  for (int b = 0; b < 4; ++b) list.push_back(IntBatch(b));
  ASSERT_OK_AND_ASSIGN(client::PutOutcome outcome,
                       c->Put(client::Descriptor::Path("acked"), *IntSchema(), std::move(list)));
  EXPECT_GE(outcome.acks, 1);
  auto json = nlohmann::json::parse(outcome.last_app_metadata);
  EXPECT_EQ(json["rows"], 40);
  EXPECT_EQ(json["table"], "acked");
  EXPECT_EQ(json["mode"], "create");
  EXPECT_EQ(json["committed"], true);
}

TEST(DoPutTest, CancelledUploadLeavesNothingAndLosesNothing) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto c = ConnectTo(*t);
  ASSERT_NE(c, nullptr);
  ASSERT_OK(PutBatches(*c, "kept", 3));
  std::string kept_bytes = FileBytes(t->dir.path() / "data" / "kept.parquet");
  std::set<std::string> before = DataFiles(*t);
  for (client::PutMode mode : {client::PutMode::kReplace, client::PutMode::kAppend}) {
    ASSERT_OK_AND_ASSIGN(auto writer,
                         c->DoPut(client::Descriptor::Path("kept"), *IntSchema(), mode));
    for (int b = 0; b < 20; ++b) ASSERT_OK(writer->Write(IntBatch(b)));
    writer.reset();  // no Close: the upload is cancelled
    WaitForUploadsToEnd(*t);
    EXPECT_EQ(DataFiles(*t), before) << client::PutModeName(mode);
    EXPECT_EQ(FileBytes(t->dir.path() / "data" / "kept.parquet"), kept_bytes);
    EXPECT_EQ(CountAndSum(*t, "kept"), std::make_pair(int64_t{30}, int64_t{29 * 30 / 2}));
  }
  ASSERT_OK_AND_ASSIGN(auto writer, c->DoPut(client::Descriptor::Path("fresh"), *IntSchema()));
  ASSERT_OK(writer->Write(IntBatch(0)));
  writer.reset();
  WaitForUploadsToEnd(*t);
  EXPECT_EQ(DataFiles(*t), before);
  ASSERT_OK(t->catalog->Refresh().status());
  EXPECT_FALSE(t->catalog->Table("fresh").has_value());
  // The server still takes uploads.
  ASSERT_OK(PutBatches(*c, "fresh", 1));
  EXPECT_EQ(CountAndSum(*t, "fresh"), std::make_pair(int64_t{10}, int64_t{45}));
}

TEST(DoPutTest, HostileUploadsAreClearErrorsAndWriteNothing) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  std::set<std::string> before = DataFiles(*t);
  struct Case {
    std::string what;
    std::vector<grpc::ByteBuffer> messages;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({"garbage", {}, "FlightData"});
  cases.back().messages.push_back(BytesMessage("\xff\xff\xff\xff\x0f garbage"));
  cases.push_back({"nothing", {}, "no FlightData"});
  cases.push_back({"no descriptor", UploadMessages(protocol::FlightDescriptor(), 1), "PATH"});
  cases.push_back({"cmd descriptor", UploadMessages(testing::Sql("select 1"), 1), "PATH"});
  cases.push_back({"two-part path", UploadMessages(testing::Path({"a", "b"}), 1), "PATH"});
  cases.push_back({"escaping name", UploadMessages(testing::Path({"../evil"}), 1), "table name"});
  cases.push_back({"bad mode", UploadMessages(testing::Path({"m"}), 1, "{\"mode\": 7}"), "mode"});
  {
    // A descriptor but a data_header that is no IPC message.
    std::string d = testing::Path({"junk"}).SerializeAsString();
    std::string bytes =
        StrCat("\x0a", std::string(1, static_cast<char>(d.size())), d, "\x12\x04", "abcd");
    cases.push_back({"bad IPC header", {}, "ipc"});
    cases.back().messages.push_back(BytesMessage(bytes));
  }
  {
    // The stream ends before its schema: a descriptor with no data_header.
    std::string d = testing::Path({"empty"}).SerializeAsString();
    std::string bytes = StrCat("\x0a", std::string(1, static_cast<char>(d.size())), d);
    cases.push_back({"no schema", {}, "schema"});
    cases.back().messages.push_back(BytesMessage(bytes));
  }
  {
    // A record batch whose body is shorter than its buffers say.
    std::vector<grpc::ByteBuffer> messages = UploadMessages(testing::Path({"short"}), 1);
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(messages[1].Dump(&slices).ok());
    std::string whole;
    for (auto& s : slices) whole.append(reinterpret_cast<const char*>(s.begin()), s.size());
    auto decoded = DecodeFlightData(messages[1]);
    ASSERT_OK(decoded.status());
    protocol::FlightData fd;
    fd.set_data_header(decoded->data_header);
    fd.set_data_body(std::string(8, '\0'));
    messages[1] = BytesMessage(fd.SerializeAsString());
    cases.push_back({"short body", std::move(messages), "ipc"});
  }
  for (Case& c : cases) {
    RawReply reply = RawUpload(*t, kDoPut, std::move(c.messages));
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.what << ": " << reply.status.error_message();
    EXPECT_THAT(reply.status.error_message(), HasSubstr(c.message)) << c.what;
  }
  WaitForUploadsToEnd(*t);
  EXPECT_EQ(DataFiles(*t), before);
  // The server keeps serving.
  protocol::FlightInfo info;
  ASSERT_TRUE(testing::GetInfo(*t, testing::Path({"numbers"}), &info).ok());
  EXPECT_EQ(testing::DecodeTable(testing::RawDoGet(*t, testing::TicketOf(info)).messages).rows,
            kRows);
}

TEST(DoPutTest, AppendsAPartFileToAFolderTableAndRefusesNonParquetTables) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  auto c = ConnectTo(*t);
  ASSERT_NE(c, nullptr);
  // A folder table of one Parquet file.
  fs::create_directories(t->dir.path() / "data" / "parts");
  ASSERT_OK(t->db->ExecuteTrusted(
      StrCat("COPY (SELECT range::INTEGER AS x FROM range(10)) TO ",
             engine::QuoteString((t->dir.path() / "data" / "parts" / "p0.parquet").string()),
             " (FORMAT parquet)")));
  ASSERT_OK(t->catalog->Refresh().status());
  ASSERT_OK(PutBatches(*c, "parts", 2, client::PutMode::kAppend));
  EXPECT_EQ(CountAndSum(*t, "parts"), std::make_pair(int64_t{30}, int64_t{45 + 19 * 20 / 2}));
  int files = 0;
  for (const auto& e : fs::directory_iterator(t->dir.path() / "data" / "parts")) {
    files += e.path().extension() == ".parquet";
  }
  EXPECT_EQ(files, 2);

  std::string csv = FileBytes(t->dir.path() / "data" / "letters.csv");
  EXPECT_STATUS(PutBatches(*c, "letters", 1, client::PutMode::kReplace),
                StatusCode::kFailedPrecondition, "not a single Parquet file");
  EXPECT_STATUS(PutBatches(*c, "nosuch", 1, client::PutMode::kAppend), StatusCode::kNotFound,
                "does not exist");
  EXPECT_EQ(FileBytes(t->dir.path() / "data" / "letters.csv"), csv);
}

TEST(DoPutTest, NeedsATokenWithIngestWhenAuthIsOn) {
  auto t = StartServer(/*with_users=*/true);
  ASSERT_NE(t, nullptr);
  RawReply anonymous = RawUpload(*t, kDoPut, UploadMessages(testing::Path({"x"}), 1));
  EXPECT_EQ(anonymous.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  RawReply forged = RawUpload(*t, kDoPut, UploadMessages(testing::Path({"x"}), 1), "forged");
  EXPECT_EQ(forged.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(DataFiles(*t).count("x.parquet"));
}

TEST(DoExchangeTest, ErrorsAreClearAndTheServerKeepsServing) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  RawReply path = RawUpload(*t, kDoExchange, UploadMessages(testing::Path({"numbers"}), 1));
  EXPECT_EQ(path.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(path.status.error_message(), HasSubstr("CMD"));
  RawReply bad_sql =
      RawUpload(*t, kDoExchange, UploadMessages(testing::Sql("selec x from input"), 1));
  EXPECT_EQ(bad_sql.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad_sql.status.error_message(), HasSubstr("syntax error"));
  RawReply write =
      RawUpload(*t, kDoExchange, UploadMessages(testing::Sql("create table t as select 1"), 1));
  EXPECT_EQ(write.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << write.status.error_message();
  RawReply no_such_column =
      RawUpload(*t, kDoExchange, UploadMessages(testing::Sql("select nope from input"), 1));
  EXPECT_EQ(no_such_column.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // And a good exchange: the sum of 3 uploaded batches (0..29) streams back.
  RawReply good = RawUpload(
      *t, kDoExchange,
      UploadMessages(testing::Sql("select sum(x)::BIGINT as s, count(*)::BIGINT as n from input"),
                     3));
  ASSERT_TRUE(good.status.ok()) << good.status.error_message();
  testing::Table table = testing::DecodeTable(good.AsFlightData());
  EXPECT_EQ(table.rows, 1);
  EXPECT_EQ(table.column_names, (std::vector<std::string>{"s", "n"}));
  EXPECT_EQ(table.first_row, "435|30");
}

TEST(DoExchangeTest, StreamsTheResultOfEveryUploadedRow) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  // Row-wise SQL over 200 batches: the result streams back while the upload goes on.
  RawReply reply = RawUpload(
      *t, kDoExchange, UploadMessages(testing::Sql("select (x * 2)::BIGINT as y from input"), 200));
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  testing::Table table = testing::DecodeTable(reply.AsFlightData());
  EXPECT_EQ(table.rows, 2000);
  EXPECT_EQ(table.sum_of_first_column, 2 * (1999 * 2000 / 2));
}

}  // namespace
}  // namespace bridge::flight
