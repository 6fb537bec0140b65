#include "bridge/flight/flight_testing.h"

#include <filesystem>

#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/auth/password.h"
#include "grpcpp/generic/generic_stub.h"

namespace bridge::flight::testing {

using ::bridge::testing::WriteFile;
namespace ta = ::bridge::ipc::test_arrays;

double TestServer::Counter(const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) return family.metric[0].counter.value;
  }
  return -1;
}

std::unique_ptr<TestServer> StartServer(
    bool with_users, std::chrono::milliseconds keepalive,
    const std::function<void(FlightServerOptions&)>& configure,
    const std::function<std::unique_ptr<CommandHandler>(TestServer&)>& make_commands,
    bool with_cache) {
  auto t = std::make_unique<TestServer>();
  auto data = t->dir.path() / "data";
  std::filesystem::create_directories(data);
  engine::EngineOptions eo;
  eo.data_dir = data;
  eo.threads = 2;
  eo.max_sessions = 8;
  auto db = engine::Database::Open(eo);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return nullptr;
  t->db = std::move(db).value();
  Status copied = t->db->ExecuteTrusted(StrCat(
      "COPY (SELECT range AS id, 'row ' || range::VARCHAR AS label FROM range(", kRows, ")) TO ",
      engine::QuoteString((data / "numbers.parquet").string()), " (FORMAT parquet)"));
  EXPECT_TRUE(copied.ok()) << copied;
  WriteFile(data / "letters.csv", "letter,n\na,1\nb,2\n");
  catalog::CatalogOptions co;
  co.watch = false;
  auto catalog = catalog::Catalog::Open(*t->db, co);
  EXPECT_TRUE(catalog.ok()) << catalog.status();
  if (!catalog.ok()) return nullptr;
  t->catalog = std::move(catalog).value();

  auth::AuthOptions ao;
  if (with_users) {
    auto hash = auth::HashPassword("secret");
    EXPECT_TRUE(hash.ok());
    WriteFile(t->dir.path() / "users.toml",
              StrCat("[users.alice]\npassword = \"", *hash,
                     "\"\npermissions = [\"read\"]\n[users.bob]\npassword = \"", *hash,
                     "\"\npermissions = []\n[users.carol]\npassword = \"", *hash,
                     "\"\npermissions = [\"read\", \"ingest\"]\n[users.dave]\npassword = \"", *hash,
                     "\"\npermissions = [\"read\", \"admin\"]\n"));
    ao.users_file = t->dir.path() / "users.toml";
    ao.token_secret = std::string(32, 's');
  }
  auto authenticator = auth::Authenticator::Make(ao);
  EXPECT_TRUE(authenticator.ok()) << authenticator.status();
  if (!authenticator.ok()) return nullptr;
  t->auth = std::move(authenticator).value();

  FlightServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.query_threads = 2;
  options.keepalive_interval = keepalive;
  if (configure) configure(options);
  if (with_cache) {
    cache::CacheOptions cache_options;
    cache_options.dir = t->dir.path() / "results";
    auto opened = cache::Cache::Open(cache_options);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return nullptr;
    t->cache = std::move(opened).value();
  }
  if (make_commands) t->commands = make_commands(*t);
  Services services{t->db.get(),  t->catalog.get(), t->auth.get(),
                    &t->registry, t->cache.get(),   t->commands.get()};
  auto server = FlightServer::Start(options, services);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  t->server = std::move(server).value();
  EXPECT_GT(t->server->port(), 0);
  t->channel = grpc::CreateChannel(StrCat("127.0.0.1:", t->server->port()),
                                   grpc::InsecureChannelCredentials());
  t->stub = protocol::FlightService::NewStub(t->channel);
  return t;
}

protocol::FlightDescriptor Path(std::vector<std::string> path) {
  protocol::FlightDescriptor d;
  d.set_type(protocol::FlightDescriptor::PATH);
  for (auto& p : path) d.add_path(p);
  return d;
}

protocol::FlightDescriptor Sql(const std::string& sql) {
  protocol::FlightDescriptor d;
  d.set_type(protocol::FlightDescriptor::CMD);
  d.set_cmd(sql);
  return d;
}

void Authorize(grpc::ClientContext& ctx, const std::string& token) {
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
}

// DoGet through a generic (ByteBuffer) call: every FlightData goes through DecodeFlightData.
Fetched RawDoGet(TestServer& t, const std::string& ticket, const std::string& token,
                 int max_messages) {
  Fetched out;
  grpc::GenericStub stub(t.channel);
  grpc::ClientContext ctx;
  Authorize(ctx, token);
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto call = stub.PrepareCall(&ctx, "/arrow.flight.protocol.FlightService/DoGet", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  protocol::Ticket request;
  request.set_ticket(ticket);
  std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes.data(), bytes.size());
  grpc::ByteBuffer request_buffer(&slice, 1);
  call->Write(request_buffer, reinterpret_cast<void*>(2));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  call->WritesDone(reinterpret_cast<void*>(3));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  for (int n = 0; max_messages < 0 || n < max_messages; ++n) {
    grpc::ByteBuffer received;
    call->Read(&received, reinterpret_cast<void*>(4));
    EXPECT_TRUE(cq.Next(&tag, &ok));
    if (!ok) break;
    Result<DecodedFlightData> decoded = DecodeFlightData(received);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    if (decoded.ok()) out.messages.push_back(std::move(decoded).value());
  }
  if (max_messages >= 0) ctx.TryCancel();
  call->Finish(&out.status, reinterpret_cast<void*>(5));
  EXPECT_TRUE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

Table DecodeTable(const std::vector<DecodedFlightData>& messages) {
  Table table;
  ipc::StreamDecoder decoder;
  for (const DecodedFlightData& m : messages) {
    if (m.data_header.empty()) continue;  // metadata-only (keep-alive)
    std::span<const uint8_t> header(reinterpret_cast<const uint8_t*>(m.data_header.data()),
                                    m.data_header.size());
    Result<ipc::OwnedArray> batch = decoder.Consume(header, m.body);
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok() || !batch->valid()) continue;
    const ArrowSchema& schema = decoder.schema();
    const ArrowArray& array = **batch;
    if (table.batches == 0) {
      for (int64_t c = 0; c < schema.n_children; ++c) {
        table.column_names.push_back(schema.children[c]->name);
        if (c > 0) table.first_row += "|";
        table.first_row += ta::ValueAt(*schema.children[c], *array.children[c], 0);
      }
    }
    ++table.batches;
    table.rows += array.length;
    if (std::string_view(schema.children[0]->format) == "l") {
      const ArrowArray& column = *array.children[0];
      for (int64_t i = 0; i < column.length; ++i) {
        table.sum_of_first_column += ta::LoadAt<int64_t>(column.buffers[1], column.offset + i);
      }
    }
  }
  return table;
}

std::string TicketOf(const protocol::FlightInfo& info) {
  EXPECT_EQ(info.endpoint_size(), 1);
  return info.endpoint_size() > 0 ? info.endpoint(0).ticket().ticket() : "";
}

grpc::Status GetInfo(TestServer& t, const protocol::FlightDescriptor& d, protocol::FlightInfo* info,
                     const std::string& token) {
  grpc::ClientContext ctx;
  Authorize(ctx, token);
  return t.stub->GetFlightInfo(&ctx, d, info);
}

std::vector<protocol::FlightInfo> ListFlights(TestServer& t, const std::string& prefix,
                                              grpc::Status* status, const std::string& token) {
  grpc::ClientContext ctx;
  Authorize(ctx, token);
  protocol::Criteria criteria;
  criteria.set_expression(prefix);
  auto reader = t.stub->ListFlights(&ctx, criteria);
  std::vector<protocol::FlightInfo> out;
  protocol::FlightInfo info;
  while (reader->Read(&info)) out.push_back(info);
  *status = reader->Finish();
  return out;
}

}  // namespace bridge::flight::testing
