// TLS, mutual TLS and the middleware chain (request id, identity, access log, per-method
// metrics) of the Flight server, in process on 127.0.0.1:0, plus `bridge serve` serving
// Flight over mutual TLS from its configuration file. Certificates (a CA, a server and a
// client certificate, and a second CA) are made in the test with the openssl command.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bridge/common/testing.h"
#include "bridge/flight/flight_testing.h"
#include "bridge/flight/middleware.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"

namespace bridge::flight {
namespace {

namespace fs = std::filesystem;
using ::bridge::testing::BridgeBinary;
using ::bridge::testing::ChildProcess;
using ::bridge::testing::CommandResult;
using ::bridge::testing::RunCommand;
using ::bridge::testing::TempDir;
using ::bridge::testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using namespace ::bridge::flight::testing;  // NOLINT: test helpers

constexpr int64_t kSumOfIds = kRows * (kRows - 1) / 2;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---- Certificates ----

void Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  CommandResult r = RunCommand(args, 60);
  ASSERT_EQ(r.exit_code, 0) << "openssl " << args[1] << ": " << r.err << r.out;
}

// PEM files made in a TempDir: a CA, a server certificate for 127.0.0.1 and a client
// certificate (CN "client-one") signed by it, and a client certificate signed by another CA.
struct Certificates {
  TempDir dir;
  fs::path ca, server_cert, server_key, client_cert, client_key;
  fs::path other_client_cert, other_client_key;

  std::string Path(const std::string& name) const { return (dir.path() / name).string(); }

  // A P-256 key and a certificate for `cn` signed by `ca` with the extensions in `ext`.
  void Issue(const std::string& name, const std::string& cn, const std::string& ca_name,
             const std::string& ext) {
    WriteFile(dir.path() / (name + ".ext"), ext);
    Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", Path(name + ".key"), "-out", Path(name + ".csr"), "-subj", "/CN=" + cn});
    Openssl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca_name + ".pem"), "-CAkey",
             Path(ca_name + ".key"), "-CAcreateserial", "-days", "2", "-out", Path(name + ".pem"),
             "-extfile", Path(name + ".ext")});
  }
  void MakeCa(const std::string& name, const std::string& cn) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", Path(name + ".key"), "-out", Path(name + ".pem"), "-days", "2", "-subj",
             "/CN=" + cn});
  }
};

std::unique_ptr<Certificates> MakeCertificates() {
  auto c = std::make_unique<Certificates>();
  c->MakeCa("ca", "Bridge Test CA");
  c->Issue("server", "127.0.0.1", "ca",
           "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  c->Issue("client", "client-one", "ca",
           "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  c->MakeCa("other", "Some Other CA");
  c->Issue("stranger", "stranger", "other",
           "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  c->ca = c->Path("ca.pem");
  c->server_cert = c->Path("server.pem");
  c->server_key = c->Path("server.key");
  c->client_cert = c->Path("client.pem");
  c->client_key = c->Path("client.key");
  c->other_client_cert = c->Path("stranger.pem");
  c->other_client_key = c->Path("stranger.key");
  for (const fs::path& p : {c->ca, c->server_cert, c->server_key, c->client_cert, c->client_key,
                            c->other_client_cert, c->other_client_key}) {
    EXPECT_TRUE(fs::exists(p)) << p;
  }
  return c;
}

// A channel to 127.0.0.1:port: plaintext when `ca` is empty, else TLS trusting `ca`, with a
// client certificate when `cert` is given.
std::shared_ptr<grpc::Channel> Channel(int port, const fs::path& ca, const fs::path& cert = {},
                                       const fs::path& key = {}) {
  std::string target = StrCat("127.0.0.1:", port);
  if (ca.empty()) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadText(ca);
  if (!cert.empty()) {
    ssl.pem_cert_chain = ReadText(cert);
    ssl.pem_private_key = ReadText(key);
  }
  return grpc::CreateChannel(target, grpc::SslCredentials(ssl));
}

void UseChannel(TestServer& t, std::shared_ptr<grpc::Channel> channel) {
  t.channel = std::move(channel);
  t.stub = protocol::FlightService::NewStub(t.channel);
}

// GetFlightInfo with a deadline (a refused TLS handshake must not hang the test).
grpc::Status QuickInfo(TestServer& t, const protocol::FlightDescriptor& d,
                       protocol::FlightInfo* info) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return t.stub->GetFlightInfo(&ctx, d, info);
}

// Reads the whole numbers table through GetFlightInfo + DoGet and checks its values.
void ExpectNumbersTable(TestServer& t) {
  protocol::FlightInfo info;
  grpc::Status status = QuickInfo(t, Path({"numbers"}), &info);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  Fetched fetched = RawDoGet(t, TicketOf(info));
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  Table table = DecodeTable(fetched.messages);
  EXPECT_EQ(table.rows, kRows);
  EXPECT_EQ(table.sum_of_first_column, kSumOfIds);
  EXPECT_EQ(table.first_row, "0|'row 0'");
}

std::function<void(FlightServerOptions&)> WithTls(const Certificates& c, bool mutual) {
  return [&c, mutual](FlightServerOptions& o) {
    o.endpoints = 1;
    o.tls_cert_file = c.server_cert.string();
    o.tls_key_file = c.server_key.string();
    if (mutual) o.tls_client_ca_file = c.ca.string();
  };
}

// ---- TLS ----

TEST(FlightTlsTest, ClientTrustingTheCaReadsRealRows) {
  auto certs = MakeCertificates();
  auto t = StartServer(false, std::chrono::seconds(5), WithTls(*certs, false));
  ASSERT_NE(t, nullptr);
  UseChannel(*t, Channel(t->server->port(), certs->ca));
  ExpectNumbersTable(*t);
  grpc::Status status;
  std::vector<protocol::FlightInfo> flights = ListFlights(*t, "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(flights.size(), 2u);
}

TEST(FlightTlsTest, PlaintextClientAgainstTlsFails) {
  auto certs = MakeCertificates();
  auto t = StartServer(false, std::chrono::seconds(5), WithTls(*certs, false));
  ASSERT_NE(t, nullptr);
  UseChannel(*t, Channel(t->server->port(), {}));
  protocol::FlightInfo info;
  EXPECT_EQ(QuickInfo(*t, Path({"numbers"}), &info).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The server keeps serving TLS clients.
  UseChannel(*t, Channel(t->server->port(), certs->ca));
  ExpectNumbersTable(*t);
}

TEST(FlightTlsTest, ClientThatDoesNotTrustTheServerFails) {
  auto certs = MakeCertificates();
  auto t = StartServer(false, std::chrono::seconds(5), WithTls(*certs, false));
  ASSERT_NE(t, nullptr);
  UseChannel(*t, Channel(t->server->port(), certs->Path("other.pem")));
  protocol::FlightInfo info;
  EXPECT_EQ(QuickInfo(*t, Path({"numbers"}), &info).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(FlightTlsTest, MutualTlsRefusesClientsWithoutAValidCertificate) {
  auto certs = MakeCertificates();
  auto t = StartServer(false, std::chrono::seconds(5), WithTls(*certs, true));
  ASSERT_NE(t, nullptr);
  int port = t->server->port();
  protocol::FlightInfo info;
  UseChannel(*t, Channel(port, certs->ca));  // no client certificate
  EXPECT_EQ(QuickInfo(*t, Path({"numbers"}), &info).error_code(), grpc::StatusCode::UNAVAILABLE);
  UseChannel(*t, Channel(port, certs->ca, certs->other_client_cert, certs->other_client_key));
  EXPECT_EQ(QuickInfo(*t, Path({"numbers"}), &info).error_code(), grpc::StatusCode::UNAVAILABLE);
  UseChannel(*t, Channel(port, {}));
  EXPECT_EQ(QuickInfo(*t, Path({"numbers"}), &info).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(FlightTlsTest, MutualTlsServesClientsWithACertificateOfTheCa) {
  auto certs = MakeCertificates();
  auto t = StartServer(false, std::chrono::seconds(5), WithTls(*certs, true));
  ASSERT_NE(t, nullptr);
  UseChannel(*t, Channel(t->server->port(), certs->ca, certs->client_cert, certs->client_key));
  ExpectNumbersTable(*t);
}

// Starts a second server over `t`'s services with `configure`d options; returns its status.
Status StartWith(TestServer& t, const std::function<void(FlightServerOptions&)>& configure) {
  FlightServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.query_threads = 1;
  configure(options);
  Services services{t.db.get(), t.catalog.get(), t.auth.get(), nullptr};
  return FlightServer::Start(options, services).status();
}

TEST(FlightTlsTest, BadTlsFilesAreClearErrorsFromStart) {
  auto certs = MakeCertificates();
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  const std::string cert = certs->server_cert.string();
  const std::string key = certs->server_key.string();
  const std::string missing = certs->Path("missing.pem");
  const std::string garbage = certs->Path("garbage.pem");
  WriteFile(garbage, "this is not PEM\n");
  const std::string empty = certs->Path("empty.pem");
  WriteFile(empty, "");

  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = missing;
                            o.tls_key_file = key;
                          }),
                StatusCode::kUnavailable, "cannot read the TLS certificate '" + missing + "'");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = cert;
                            o.tls_key_file = missing;
                          }),
                StatusCode::kUnavailable, "cannot read the TLS key '" + missing + "'");
  EXPECT_STATUS(StartWith(*t, [&](FlightServerOptions& o) { o.tls_cert_file = cert; }),
                StatusCode::kInvalidArgument, "both tls_cert_file and tls_key_file");
  EXPECT_STATUS(StartWith(*t, [&](FlightServerOptions& o) { o.tls_key_file = key; }),
                StatusCode::kInvalidArgument, "both tls_cert_file and tls_key_file");
  EXPECT_STATUS(StartWith(*t, [&](FlightServerOptions& o) { o.tls_client_ca_file = cert; }),
                StatusCode::kInvalidArgument, "tls_client_ca_file needs tls_cert_file");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = garbage;
                            o.tls_key_file = key;
                          }),
                StatusCode::kInvalidArgument, "'" + garbage + "' holds no PEM certificate");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = empty;
                            o.tls_key_file = key;
                          }),
                StatusCode::kInvalidArgument, "'" + empty + "' is empty");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = cert;
                            o.tls_key_file = garbage;
                          }),
                StatusCode::kInvalidArgument, "'" + garbage + "' holds no usable PEM private key");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = cert;
                            o.tls_key_file = certs->client_key.string();
                          }),
                StatusCode::kInvalidArgument, "does not match the certificate");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = cert;
                            o.tls_key_file = key;
                            o.tls_client_ca_file = garbage;
                          }),
                StatusCode::kInvalidArgument, "TLS client CA '" + garbage + "' holds no PEM");
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = certs->dir.path().string();  // a folder
                            o.tls_key_file = key;
                          }),
                StatusCode::kUnavailable, "cannot read the TLS certificate");
  // An encrypted key fails at once instead of asking for a pass phrase on the terminal.
  const std::string encrypted = certs->Path("encrypted.key");
  Openssl({"pkey", "-in", key, "-aes256", "-passout", "pass:secret", "-out", encrypted});
  EXPECT_STATUS(StartWith(*t,
                          [&](FlightServerOptions& o) {
                            o.tls_cert_file = cert;
                            o.tls_key_file = encrypted;
                          }),
                StatusCode::kInvalidArgument, "encrypted keys are not supported");
  // The good pair starts.
  EXPECT_OK(StartWith(*t, [&](FlightServerOptions& o) {
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    o.tls_client_ca_file = certs->ca.string();
  }));
}

// ---- Middleware ----

// Captures what spdlog's default logger writes (message text only) while it lives. Create
// it before the server and destroy it after (the server logs from its threads).
class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10000)) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }

  // The access log lines that contain `text`.
  std::vector<std::string> AccessLines(const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& line : sink_->last_formatted()) {
      if (line.find("flight: access ") != std::string::npos &&
          line.find(text) != std::string::npos) {
        out.push_back(line);
      }
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

std::string MetadataValue(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                          const std::string& name) {
  auto it = metadata.find(name);
  return it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
}

// A GetFlightInfo that sends `request_id` (unless empty) and returns the x-request-id the
// server answered with (initial metadata).
std::string InfoRequestId(TestServer& t, const protocol::FlightDescriptor& d,
                          const std::string& request_id, grpc::Status* status = nullptr) {
  grpc::ClientContext ctx;
  if (!request_id.empty()) ctx.AddMetadata("x-request-id", request_id);
  protocol::FlightInfo info;
  grpc::Status s = t.stub->GetFlightInfo(&ctx, d, &info);
  if (status != nullptr) *status = s;
  return MetadataValue(ctx.GetServerInitialMetadata(), "x-request-id");
}

TEST(FlightMiddlewareTest, RequestIdIsEchoedOrGenerated) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(InfoRequestId(*t, Path({"numbers"}), "req-42.a:b_c"), "req-42.a:b_c");
  std::string first = InfoRequestId(*t, Path({"numbers"}), "");
  std::string second = InfoRequestId(*t, Path({"numbers"}), "");
  EXPECT_THAT(first, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_THAT(second, MatchesRegex("[0-9a-f]{32}"));
  EXPECT_NE(first, second);
  // Ids that are too long or hold other characters are replaced.
  EXPECT_THAT(InfoRequestId(*t, Path({"numbers"}), std::string(129, 'a')),
              MatchesRegex("[0-9a-f]{32}"));
  EXPECT_THAT(InfoRequestId(*t, Path({"numbers"}), "has space"), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_EQ(InfoRequestId(*t, Path({"numbers"}), std::string(128, 'a')), std::string(128, 'a'));
  // A failing call answers with its request id too.
  grpc::Status status;
  EXPECT_EQ(InfoRequestId(*t, Sql("SELEC nonsense"), "failing-1", &status), "failing-1");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(FlightMiddlewareTest, RequestIdOnStreamingCalls) {
  auto t = StartServer();
  ASSERT_NE(t, nullptr);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", "list-7");
  auto reader = t->stub->ListFlights(&ctx, protocol::Criteria());
  protocol::FlightInfo info;
  int n = 0;
  while (reader->Read(&info)) ++n;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(n, 2);
  EXPECT_EQ(MetadataValue(ctx.GetServerInitialMetadata(), "x-request-id"), "list-7");
}

// Returns the counter bridge_flight_requests_total{method,code} (0 when absent).
double Requests(TestServer& t, const std::string& method, const std::string& code) {
  for (const auto& family : t.registry.Collect()) {
    if (family.name != "bridge_flight_requests_total") continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& label : metric.label) labels[label.name] = label.value;
      if (labels["method"] == method && labels["code"] == code) return metric.counter.value;
    }
  }
  return 0;
}

// Sample count of bridge_flight_request_duration_seconds{method}, or the value of the
// counter family `family_name`{method}.
double MethodValue(TestServer& t, const std::string& family_name, const std::string& method) {
  for (const auto& family : t.registry.Collect()) {
    if (family.name != family_name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "method" && label.value == method) {
          return family.type == prometheus::MetricType::Histogram
                     ? static_cast<double>(metric.histogram.sample_count)
                     : metric.counter.value;
        }
      }
    }
  }
  return 0;
}

TEST(FlightMiddlewareTest, CountsCallsPerMethodAndStatusCode) {
  auto t =
      StartServer(false, std::chrono::seconds(5), [](FlightServerOptions& o) { o.endpoints = 1; });
  ASSERT_NE(t, nullptr);
  protocol::FlightInfo info;
  protocol::FlightDescriptor numbers = Path({"numbers"});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(GetInfo(*t, numbers, &info).ok());
  protocol::FlightDescriptor bad = Sql("SELEC nonsense");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(GetInfo(*t, bad, &info).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(GetInfo(*t, Path({"no_such_table"}), &info).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status status;
  ListFlights(*t, "", &status);
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(GetInfo(*t, numbers, &info).ok());
  Fetched fetched = RawDoGet(*t, TicketOf(info));
  ASSERT_TRUE(fetched.status.ok());
  EXPECT_EQ(RawDoGet(*t, "forged ticket").status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  EXPECT_EQ(Requests(*t, "GetFlightInfo", "OK"), 4);
  EXPECT_EQ(Requests(*t, "GetFlightInfo", "INVALID_ARGUMENT"), 2);
  EXPECT_EQ(Requests(*t, "GetFlightInfo", "NOT_FOUND"), 1);
  EXPECT_EQ(Requests(*t, "ListFlights", "OK"), 1);
  EXPECT_EQ(Requests(*t, "DoGet", "OK"), 1);
  EXPECT_EQ(Requests(*t, "DoGet", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(Requests(*t, "GetSchema", "OK"), 0);
  EXPECT_EQ(MethodValue(*t, "bridge_flight_request_duration_seconds", "GetFlightInfo"), 7);
  EXPECT_EQ(MethodValue(*t, "bridge_flight_request_duration_seconds", "DoGet"), 2);
  // Request bytes are the serialized requests: exactly 4 + 2 + 1 descriptors.
  EXPECT_EQ(MethodValue(*t, "bridge_flight_request_message_bytes_total", "GetFlightInfo"),
            4.0 * static_cast<double>(numbers.ByteSizeLong()) +
                2.0 * static_cast<double>(bad.ByteSizeLong()) +
                static_cast<double>(Path({"no_such_table"}).ByteSizeLong()));
  // Every FlightData of the DoGet, whose bodies alone are body_bytes_sent.
  EXPECT_GT(MethodValue(*t, "bridge_flight_response_message_bytes_total", "DoGet"),
            static_cast<double>(t->server->stats().body_bytes_sent));
}

// Returns the token of a Basic handshake for `user_colon_password_base64`.
std::string Login(TestServer& t, const std::string& basic, const std::string& request_id = "") {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Basic " + basic);
  if (!request_id.empty()) ctx.AddMetadata("x-request-id", request_id);
  auto stream = t.stub->Handshake(&ctx);
  stream->WritesDone();
  protocol::HandshakeResponse response;
  std::string token;
  while (stream->Read(&response)) token = response.payload();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return token;
}

TEST(FlightMiddlewareTest, AccessLogNamesMethodPrincipalStatusAndSizes) {
  LogCapture log;
  auto t =
      StartServer(true, std::chrono::seconds(5), [](FlightServerOptions& o) { o.endpoints = 1; });
  ASSERT_NE(t, nullptr);
  std::string token = Login(*t, "YWxpY2U6c2VjcmV0", "login-1");  // alice:secret
  ASSERT_FALSE(token.empty());
  auto handshake = log.AccessLines("request_id=login-1");
  ASSERT_EQ(handshake.size(), 1u);
  EXPECT_THAT(handshake[0], HasSubstr("method=Handshake code=OK"));
  EXPECT_THAT(handshake[0], HasSubstr("principal=alice"));

  protocol::FlightInfo info;
  ASSERT_TRUE(GetInfo(*t, Path({"numbers"}), &info, token).ok());
  grpc::Status denied;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "no-token");
    protocol::FlightInfo ignored;
    denied = t->stub->GetFlightInfo(&ctx, Path({"numbers"}), &ignored);
  }
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto unauthenticated = log.AccessLines("request_id=no-token");
  ASSERT_EQ(unauthenticated.size(), 1u);
  EXPECT_THAT(unauthenticated[0], HasSubstr("method=GetFlightInfo code=UNAUTHENTICATED"));
  EXPECT_THAT(unauthenticated[0], HasSubstr("principal=-"));
  EXPECT_THAT(unauthenticated[0], HasSubstr("error=\""));

  // DoGet with alice's token (a generated id).
  Fetched fetched = RawDoGet(*t, TicketOf(info), token);
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  auto doget = log.AccessLines("method=DoGet code=OK");
  ASSERT_EQ(doget.size(), 1u);
  EXPECT_THAT(doget[0], HasSubstr("principal=alice"));
  EXPECT_THAT(doget[0],
              HasSubstr(StrCat(" messages_in=1 messages_out=", fetched.messages.size(), " ")));
  EXPECT_THAT(doget[0], MatchesRegex(".* peer=ipv4:127\\.0\\.0\\.1:[0-9]+ .*"));
  EXPECT_THAT(doget[0], MatchesRegex(".* duration_ms=[0-9]+\\.[0-9]{3}.*"));
  EXPECT_THAT(doget[0], Not(HasSubstr("error=")));

  // A generated-stub DoGet with a request id of our own.
  {
    grpc::ClientContext ctx;
    Authorize(ctx, token);
    ctx.AddMetadata("x-request-id", "doget-2");
    protocol::Ticket ticket;
    ticket.set_ticket(TicketOf(info));
    auto reader = t->stub->DoGet(&ctx, ticket);
    protocol::FlightData data;
    int64_t bytes = 0;
    int messages = 0;
    while (reader->Read(&data)) {
      ++messages;
      bytes += static_cast<int64_t>(data.ByteSizeLong());
    }
    ASSERT_TRUE(reader->Finish().ok());
    auto second = log.AccessLines("request_id=doget-2");
    ASSERT_EQ(second.size(), 1u);
    // The serialized size of what the client received, byte for byte.
    EXPECT_THAT(second[0], HasSubstr(StrCat(" messages_out=", messages, " bytes_in=",
                                            ticket.ByteSizeLong(), " bytes_out=", bytes, " ")));
  }
}

TEST(FlightMiddlewareTest, AccessLogNamesTheClientCertificateUnderMutualTls) {
  LogCapture log;
  auto certs = MakeCertificates();
  auto t = StartServer(false, std::chrono::seconds(5), WithTls(*certs, true));
  ASSERT_NE(t, nullptr);
  UseChannel(*t, Channel(t->server->port(), certs->ca, certs->client_cert, certs->client_key));
  EXPECT_EQ(InfoRequestId(*t, Path({"numbers"}), "mtls-1"), "mtls-1");
  auto lines = log.AccessLines("request_id=mtls-1");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" cert=client-one"));
}

// ---- `bridge serve` over mutual TLS ----

// Returns the port of "Flight listening on grpc+tls://127.0.0.1:PORT" in `log`, or 0.
int FlightTlsPort(const std::string& log) {
  const std::string marker = "Flight listening on grpc+tls://127.0.0.1:";
  size_t at = log.find(marker);
  if (at == std::string::npos) return 0;
  return std::atoi(log.c_str() + at + marker.size());
}

TEST(FlightServeTlsTest, ServeSpeaksFlightOverMutualTlsFromTheConfigFile) {
  auto certs = MakeCertificates();
  TempDir dir;
  WriteFile(dir.path() / "data" / "letters.csv", "letter,n\na,1\nb,2\nc,39\n");
  fs::copy_file(certs->server_cert, dir.path() / "server.pem");
  fs::copy_file(certs->server_key, dir.path() / "server.key");
  fs::copy_file(certs->ca, dir.path() / "clients.pem");
  // Relative paths in the file are relative to its folder.
  WriteFile(dir.path() / "bridge.toml",
            "data_dir = \"data\"\n[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n"
            "client_ca = \"clients.pem\"\n");
  ASSERT_OK_AND_ASSIGN(
      auto server, ChildProcess::Start({BridgeBinary(), "serve", "--config",
                                        (dir.path() / "bridge.toml").string(), "--http-port", "0",
                                        "--flight-port", "0", "--watch", "false"}));
  ASSERT_TRUE(server->WaitForOutput("Ctrl-C", 60)) << server->output();
  int port = FlightTlsPort(server->output());
  ASSERT_GT(port, 0) << server->output();
  EXPECT_THAT(server->output(), HasSubstr("client certificates required"));

  TestServer client;  // only its channel and stub are used
  UseChannel(client, Channel(port, certs->ca, certs->client_cert, certs->client_key));
  grpc::Status status;
  std::vector<protocol::FlightInfo> flights = ListFlights(client, "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << server->output();
  ASSERT_EQ(flights.size(), 1u);
  EXPECT_EQ(flights[0].flight_descriptor().path(0), "letters");
  protocol::FlightInfo info;
  ASSERT_TRUE(
      QuickInfo(client, Sql("SELECT sum(n)::BIGINT AS total, count(*) AS rows FROM letters"), &info)
          .ok());
  ASSERT_GE(info.endpoint_size(), 1);
  Fetched fetched = RawDoGet(client, info.endpoint(0).ticket().ticket());
  ASSERT_TRUE(fetched.status.ok()) << fetched.status.error_message();
  Table table = DecodeTable(fetched.messages);
  EXPECT_EQ(table.rows, 1);
  EXPECT_EQ(table.first_row, "42|3");

  // No client certificate, or no TLS at all: refused.
  UseChannel(client, Channel(port, certs->ca));
  EXPECT_EQ(QuickInfo(client, Path({"letters"}), &info).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  UseChannel(client, Channel(port, {}));
  EXPECT_EQ(QuickInfo(client, Path({"letters"}), &info).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(30), 0) << server->output();
}

TEST(FlightServeTlsTest, ClientCaWithoutCertificateIsAUsageError) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "data");
  CommandResult r =
      RunCommand({BridgeBinary(), "serve", "--data", (dir.path() / "data").string(), "--http-port",
                  "0", "--flight-port", "0", "--tls-client-ca", (dir.path() / "ca.pem").string()},
                 60);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("tls.client_ca needs tls.cert and tls.key"));
}

}  // namespace
}  // namespace bridge::flight
