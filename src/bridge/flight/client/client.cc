// The Flight client on gRPC's synchronous API: generated stubs for the control RPCs, raw
// ByteBuffer streams (FlightData encoded and decoded by hand) for DoGet, DoPut, DoExchange.
#include "bridge/flight/client/client.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "Flight.grpc.pb.h"
#include "bridge/arrow/encoder.h"
#include "bridge/arrow/reader.h"
#include "bridge/flight/grpc_flight_data_internal.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/sync_stream.h"
#include "nlohmann/json.hpp"

namespace bridge::flight::client {

namespace {

constexpr const char* kDoGetMethod = "/arrow.flight.protocol.FlightService/DoGet";
constexpr const char* kDoPutMethod = "/arrow.flight.protocol.FlightService/DoPut";
constexpr const char* kDoExchangeMethod = "/arrow.flight.protocol.FlightService/DoExchange";

using Clock = std::chrono::system_clock;

// Returns the Bridge status of a gRPC status: the codes are the same numbers (both are
// google.rpc.Code); the message is the server's, with context when it has none.
Status FromGrpc(const grpc::Status& status, std::string_view rpc, const std::string& uri) {
  if (status.ok()) return OkStatus();
  auto code = static_cast<StatusCode>(status.error_code());
  std::string message = status.error_message();
  if (code == StatusCode::kUnavailable) {
    message = StrCat("flight client: ", uri, " unavailable (", rpc, "): ", message);
  } else if (message.empty()) {
    message = StrCat("flight client: ", rpc, " failed with gRPC code ",
                     static_cast<int>(status.error_code()));
  }
  return Status(code, message);
}

Result<std::string> ReadTextFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("flight client: cannot read the ", what, " '", path, "'");
  std::ostringstream content;
  content << in.rdbuf();
  return std::move(content).str();
}

protocol::FlightDescriptor ToProto(const Descriptor& d) {
  protocol::FlightDescriptor out;
  if (d.type == Descriptor::Type::kPath) {
    out.set_type(protocol::FlightDescriptor::PATH);
    for (const std::string& p : d.path) out.add_path(p);
  } else {
    out.set_type(protocol::FlightDescriptor::CMD);
    out.set_cmd(d.cmd);
  }
  return out;
}

Descriptor FromProto(const protocol::FlightDescriptor& d) {
  Descriptor out;
  out.type = d.type() == protocol::FlightDescriptor::CMD ? Descriptor::Type::kCmd
                                                         : Descriptor::Type::kPath;
  out.path.assign(d.path().begin(), d.path().end());
  out.cmd = d.cmd();
  return out;
}

Clock::time_point FromProto(const google::protobuf::Timestamp& t) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
      std::chrono::seconds(t.seconds()) + std::chrono::nanoseconds(t.nanos())));
}

FlightInfo FromProto(const protocol::FlightInfo& info) {
  FlightInfo out;
  out.descriptor = FromProto(info.flight_descriptor());
  out.schema_message = info.schema();
  for (const protocol::FlightEndpoint& e : info.endpoint()) {
    Endpoint endpoint;
    endpoint.ticket = e.ticket().ticket();
    for (const protocol::Location& l : e.location()) endpoint.locations.push_back(l.uri());
    if (e.has_expiration_time()) endpoint.expiration = FromProto(e.expiration_time());
    endpoint.app_metadata = e.app_metadata();
    out.endpoints.push_back(std::move(endpoint));
  }
  out.total_records = info.total_records();
  out.total_bytes = info.total_bytes();
  out.ordered = info.ordered();
  out.app_metadata = info.app_metadata();
  return out;
}

// Parsed "scheme://host:port".
struct ParsedUri {
  bool tls = false;
  std::string target;  // host:port for gRPC
};

Result<ParsedUri> ParseUri(std::string_view uri) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("flight client: bad URI '", std::string(uri), "': ", std::string(why),
                           " (expected grpc://HOST:PORT, grpc+tcp://HOST:PORT or "
                           "grpc+tls://HOST:PORT)");
  };
  size_t sep = uri.find("://");
  if (sep == std::string_view::npos) return bad("no scheme");
  std::string_view scheme = uri.substr(0, sep);
  ParsedUri out;
  if (scheme == "grpc+tls") {
    out.tls = true;
  } else if (scheme != "grpc" && scheme != "grpc+tcp") {
    return bad(StrCat("unsupported scheme '", std::string(scheme), "'"));
  }
  std::string_view rest = uri.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos || rest.find('?') != std::string_view::npos) {
    return bad("a Flight URI has no path or query");
  }
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("an IPv6 host is written [ADDRESS]:PORT");
    }
    host = rest.substr(0, close + 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) return bad("no host");
  int port_number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_number < 1 ||
      port_number > 65535) {
    return bad(StrCat("port '", std::string(port), "' is not a number from 1 to 65535"));
  }
  out.target = StrCat(std::string(host), ":", port_number);
  return out;
}

// Feeds received FlightData to an IPC stream decoder; keeps the schema and counts.
class BatchDecoder {
 public:
  // Decodes one received message. Returns a valid array for a record batch, an invalid one
  // for anything else (schema, dictionary, metadata-only message).
  Result<ipc::OwnedArray> Consume(const grpc::ByteBuffer& buffer) {
    ++stats_.messages;
    BRIDGE_ASSIGN_OR_RETURN(DecodedFlightData data, DecodeFlightData(buffer));
    if (data.data_header.empty()) {
      ++stats_.metadata_messages;
      last_app_metadata_ = std::move(data.app_metadata);
      return ipc::OwnedArray();
    }
    std::span<const uint8_t> header(reinterpret_cast<const uint8_t*>(data.data_header.data()),
                                    data.data_header.size());
    stats_.header_bytes += static_cast<int64_t>(data.data_header.size());
    stats_.body_bytes += static_cast<int64_t>(data.body.size());
    stats_.body_bytes_copied += data.body_bytes_copied;
    if (!decoder_.has_schema()) {
      // A copy of the schema that outlives the decoder (the decoder keeps its own).
      BRIDGE_ASSIGN_OR_RETURN(schema_, ipc::DecodeSchemaMetadata(header));
    }
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, decoder_.Consume(header, std::move(data.body)));
    stats_.body_bytes_realigned = decoder_.stats().bytes_copied;
    if (batch.valid()) {
      ++stats_.batches;
      stats_.rows += batch->length;
    }
    return batch;
  }

  bool has_schema() const { return schema_.valid(); }
  const ArrowSchema& schema() const { return *schema_; }
  ipc::OwnedSchema TakeSchema() { return std::move(schema_); }
  const StreamStats& stats() const { return stats_; }

 private:
  ipc::StreamDecoder decoder_;
  ipc::OwnedSchema schema_;
  StreamStats stats_;
  std::string last_app_metadata_;
};

// Sends a schema and batches as FlightData on a stream; the first message carries the
// descriptor and `first_metadata`.
class BatchSender {
 public:
  static Result<std::unique_ptr<BatchSender>> Make(const ArrowSchema& schema,
                                                   protocol::FlightDescriptor descriptor,
                                                   std::string first_metadata) {
    auto sender = std::unique_ptr<BatchSender>(new BatchSender());
    BRIDGE_ASSIGN_OR_RETURN(sender->encoder_, ipc::RecordBatchEncoder::Make(schema));
    sender->descriptor_ = std::move(descriptor);
    sender->first_metadata_ = std::move(first_metadata);
    return sender;
  }

  // Returns the FlightData of the schema (with the descriptor).
  Result<grpc::ByteBuffer> SchemaMessage() {
    BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage message, encoder_->EncodeSchema());
    return EncodeFlightData(message, &descriptor_, first_metadata_).buffer;
  }

  // Returns the FlightData of `batch`'s dictionaries and record batch (bodies referenced).
  Result<std::vector<grpc::ByteBuffer>> BatchMessages(ipc::OwnedArray batch) {
    BRIDGE_ASSIGN_OR_RETURN(std::vector<ipc::EncodedMessage> messages,
                            encoder_->Encode(std::move(batch)));
    std::vector<grpc::ByteBuffer> out;
    for (const ipc::EncodedMessage& m : messages) {
      EncodeResult encoded = EncodeFlightData(m);
      body_bytes_ += encoded.body_bytes;
      out.push_back(std::move(encoded.buffer));
    }
    ++batches_;
    return out;
  }

  int64_t batches() const { return batches_; }
  int64_t body_bytes() const { return body_bytes_; }

 private:
  BatchSender() = default;
  std::unique_ptr<ipc::RecordBatchEncoder> encoder_;
  protocol::FlightDescriptor descriptor_;
  std::string first_metadata_;
  int64_t batches_ = 0;
  int64_t body_bytes_ = 0;
};

int64_t RowsOfAck(const std::string& app_metadata) {
  nlohmann::json json = nlohmann::json::parse(app_metadata, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return -1;
  auto it = json.find("rows");
  if (it == json.end() || !it->is_number_integer()) return -1;
  return it->get<int64_t>();
}

}  // namespace

void StreamStats::Add(const StreamStats& o) {
  messages += o.messages;
  metadata_messages += o.metadata_messages;
  batches += o.batches;
  rows += o.rows;
  body_bytes += o.body_bytes;
  body_bytes_copied += o.body_bytes_copied;
  body_bytes_realigned += o.body_bytes_realigned;
  header_bytes += o.header_bytes;
}

Descriptor Descriptor::Path(std::string table) {
  Descriptor d;
  d.type = Type::kPath;
  d.path.push_back(std::move(table));
  return d;
}

Descriptor Descriptor::Sql(std::string sql) {
  Descriptor d;
  d.type = Type::kCmd;
  d.cmd = std::move(sql);
  return d;
}

Result<ipc::OwnedSchema> FlightInfo::Schema() const {
  if (schema_message.empty()) return InvalidArgument("flight client: the FlightInfo has no schema");
  return ipc::DecodeSchemaMessage(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(schema_message.data()), schema_message.size()));
}

std::string_view PutModeName(PutMode mode) {
  switch (mode) {
    case PutMode::kAppend:
      return "append";
    case PutMode::kReplace:
      return "replace";
    case PutMode::kCreate:
      break;
  }
  return "create";
}

Result<PutMode> ParsePutMode(std::string_view name) {
  if (name == "create") return PutMode::kCreate;
  if (name == "append") return PutMode::kAppend;
  if (name == "replace") return PutMode::kReplace;
  return InvalidArgument("flight client: unknown put mode '", std::string(name),
                         "' (create, append or replace)");
}

StreamReader::~StreamReader() = default;
PutWriter::~PutWriter() = default;

struct Client::Impl {
  std::string uri;
  ClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<protocol::FlightService::Stub> stub;
  std::string token;
  // Raw (ByteBuffer) methods; registered with the channel once.
  std::unique_ptr<grpc::internal::RpcMethod> do_get;
  std::unique_ptr<grpc::internal::RpcMethod> do_put;
  std::unique_ptr<grpc::internal::RpcMethod> do_exchange;
  // Clients of other locations met in FetchAll, by URI.
  std::mutex others_mu;
  std::map<std::string, std::shared_ptr<Client>> others;

  // A context with the deadline and the bearer token.
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (options.timeout.count() > 0) ctx->set_deadline(Clock::now() + options.timeout);
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
  Status Fail(const grpc::Status& status, std::string_view rpc) const {
    return FromGrpc(status, rpc, uri);
  }
};

namespace {

// DoGet's reader over a synchronous server-streaming call of ByteBuffers.
class GrpcStreamReader final : public StreamReader {
 public:
  GrpcStreamReader(std::unique_ptr<grpc::ClientContext> ctx, std::string uri)
      : ctx_(std::move(ctx)), uri_(std::move(uri)) {}
  ~GrpcStreamReader() override {
    if (reader_ != nullptr && !finished_) {
      ctx_->TryCancel();
      reader_->Finish();
    }
  }

  // Starts the call and reads up to the schema.
  Status Open(const grpc::internal::RpcMethod& method, grpc::Channel* channel,
              std::string_view ticket) {
    protocol::Ticket request;
    request.set_ticket(std::string(ticket));
    reader_.reset(grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
        channel, method, ctx_.get(), request));
    while (!decoder_.has_schema()) {
      BRIDGE_ASSIGN_OR_RETURN(bool more, ReadOne(nullptr));
      if (!more) return InvalidArgument("flight client: DoGet stream ended without a schema");
    }
    return OkStatus();
  }

  const ArrowSchema& schema() const override { return decoder_.schema(); }

  Result<ipc::OwnedArray> Next() override {
    ipc::OwnedArray batch;
    for (;;) {
      BRIDGE_ASSIGN_OR_RETURN(bool more, ReadOne(&batch));
      if (!more || batch.valid()) return batch;
    }
  }

  void Cancel() override { ctx_->TryCancel(); }

  const StreamStats& stats() const override { return decoder_.stats(); }

  ipc::OwnedSchema TakeSchema() { return decoder_.TakeSchema(); }

 private:
  // Reads one message; false at the end of the stream. A record batch goes to `batch`.
  Result<bool> ReadOne(ipc::OwnedArray* batch) {
    if (!final_.ok()) return final_;
    if (finished_) return false;
    grpc::ByteBuffer buffer;
    if (!reader_->Read(&buffer)) {
      finished_ = true;
      final_ = FromGrpc(reader_->Finish(), "DoGet", uri_);
      if (!final_.ok()) return final_;
      return false;
    }
    Result<ipc::OwnedArray> decoded = decoder_.Consume(buffer);
    if (!decoded.ok()) {
      // A malformed stream: stop it and keep the error.
      ctx_->TryCancel();
      reader_->Finish();
      finished_ = true;
      final_ = decoded.status();
      return final_;
    }
    if (batch != nullptr) *batch = std::move(decoded).value();
    return true;
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
  std::string uri_;
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader_;
  BatchDecoder decoder_;
  bool finished_ = false;
  Status final_;
};

using RawStream = grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

// DoPut over a synchronous bidirectional call. A thread reads the PutResults while the
// caller writes.
class GrpcPutWriter final : public PutWriter {
 public:
  GrpcPutWriter(std::unique_ptr<grpc::ClientContext> ctx, std::unique_ptr<BatchSender> sender,
                std::string uri)
      : ctx_(std::move(ctx)), sender_(std::move(sender)), uri_(std::move(uri)) {}
  ~GrpcPutWriter() override {
    if (stream_ && !concluded_) {
      ctx_->TryCancel();
      Conclude().IgnoreError();  // cancelled on purpose: the status says so
    }
  }

  Status Open(const grpc::internal::RpcMethod& method, grpc::Channel* channel) {
    stream_.reset(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel, method, ctx_.get()));
    acks_ = std::thread([this] { ReadAcks(); });
    BRIDGE_ASSIGN_OR_RETURN(grpc::ByteBuffer schema, sender_->SchemaMessage());
    if (!stream_->Write(schema)) return Broken();
    return OkStatus();
  }

  Status Write(ipc::OwnedArray batch) override {
    if (concluded_) return FailedPrecondition("flight client: DoPut already closed");
    BRIDGE_ASSIGN_OR_RETURN(std::vector<grpc::ByteBuffer> messages,
                            sender_->BatchMessages(std::move(batch)));
    for (const grpc::ByteBuffer& m : messages) {
      if (!stream_->Write(m)) return Broken();
    }
    return OkStatus();
  }

  Result<PutOutcome> Close() override {
    if (concluded_) return FailedPrecondition("flight client: DoPut already closed");
    BRIDGE_RETURN_NOT_OK(Conclude());
    std::lock_guard<std::mutex> lock(mu_);
    outcome_.rows = RowsOfAck(outcome_.last_app_metadata);
    outcome_.batches_sent = sender_->batches();
    outcome_.body_bytes_sent = sender_->body_bytes();
    return outcome_;
  }

 private:
  void ReadAcks() {
    grpc::ByteBuffer buffer;
    while (stream_->Read(&buffer)) {
      protocol::PutResult ack;
      std::vector<grpc::Slice> slices;
      std::string bytes;
      if (buffer.Dump(&slices).ok()) {
        for (const grpc::Slice& s : slices) {
          bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++outcome_.acks;
      if (ack.ParseFromString(bytes)) outcome_.last_app_metadata = ack.app_metadata();
    }
  }

  // The write failed: the server has ended the call; its status says why.
  Status Broken() {
    Status st = Conclude();
    if (st.ok()) return Internal("flight client: DoPut: the server closed the stream early");
    return st;
  }

  // Half-closes, waits for the acks and the status. Idempotent.
  Status Conclude() {
    if (concluded_) return final_;
    concluded_ = true;
    stream_->WritesDone();
    if (acks_.joinable()) acks_.join();
    final_ = FromGrpc(stream_->Finish(), "DoPut", uri_);
    return final_;
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<BatchSender> sender_;
  std::string uri_;
  std::unique_ptr<RawStream> stream_;
  std::thread acks_;
  std::mutex mu_;
  PutOutcome outcome_;
  bool concluded_ = false;
  Status final_;
};

}  // namespace

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

const std::string& Client::uri() const { return impl_->uri; }
const std::string& Client::token() const { return impl_->token; }

Result<std::unique_ptr<Client>> Client::Connect(std::string_view uri, ClientOptions options) {
  BRIDGE_ASSIGN_OR_RETURN(ParsedUri parsed, ParseUri(uri));
  if (!options.token.empty() && (!options.user.empty() || !options.password.empty())) {
    return InvalidArgument("flight client: give a token or user/password, not both");
  }
  if (options.user.empty() != options.password.empty() && options.token.empty()) {
    return InvalidArgument("flight client: user and password go together");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgument("flight client: the TLS client certificate needs its key (and back)");
  }
  if (!parsed.tls && (!options.tls_root_ca_file.empty() || !options.tls_cert_file.empty())) {
    return InvalidArgument("flight client: TLS files given for a plain URI '", std::string(uri),
                           "' (use grpc+tls://)");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
  if (parsed.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_root_ca_file.empty()) {
      BRIDGE_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                              ReadTextFile(options.tls_root_ca_file, "TLS root CA file"));
    }
    if (!options.tls_cert_file.empty()) {
      BRIDGE_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                              ReadTextFile(options.tls_cert_file, "TLS certificate file"));
      BRIDGE_ASSIGN_OR_RETURN(ssl.pem_private_key,
                              ReadTextFile(options.tls_key_file, "TLS key file"));
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  int max_receive = options.max_message_bytes < 0 || options.max_message_bytes > INT32_MAX
                        ? -1
                        : static_cast<int>(options.max_message_bytes);
  args.SetMaxReceiveMessageSize(max_receive);
  args.SetMaxSendMessageSize(-1);

  auto impl = std::make_unique<Impl>();
  impl->uri = std::string(uri);
  impl->channel = grpc::CreateCustomChannel(parsed.target, credentials, args);
  impl->stub = protocol::FlightService::NewStub(impl->channel);
  impl->do_get = std::make_unique<grpc::internal::RpcMethod>(
      kDoGetMethod, grpc::internal::RpcMethod::SERVER_STREAMING, impl->channel);
  impl->do_put = std::make_unique<grpc::internal::RpcMethod>(
      kDoPutMethod, grpc::internal::RpcMethod::BIDI_STREAMING, impl->channel);
  impl->do_exchange = std::make_unique<grpc::internal::RpcMethod>(
      kDoExchangeMethod, grpc::internal::RpcMethod::BIDI_STREAMING, impl->channel);
  impl->token = options.token;
  std::string user = std::move(options.user);
  std::string password = std::move(options.password);
  options.user.clear();
  options.password.clear();
  impl->options = std::move(options);
  auto client = std::unique_ptr<Client>(new Client(std::move(impl)));
  if (!user.empty()) {
    BRIDGE_ASSIGN_OR_RETURN(client->impl_->token, client->Handshake(user, password));
  }
  return client;
}

Result<std::string> Client::Handshake(std::string_view user, std::string_view password) {
  auto ctx = impl_->Context();
  auto stream = impl_->stub->Handshake(ctx.get());
  protocol::BasicAuth basic;
  basic.set_username(std::string(user));
  basic.set_password(std::string(password));
  protocol::HandshakeRequest request;
  request.set_payload(basic.SerializeAsString());
  stream->Write(request);
  stream->WritesDone();
  protocol::HandshakeResponse response;
  std::string payload;
  while (stream->Read(&response)) payload = response.payload();
  BRIDGE_RETURN_NOT_OK(impl_->Fail(stream->Finish(), "Handshake"));
  // The token is the `authorization: Bearer` response header; the payload is a fallback.
  const auto& headers = ctx->GetServerInitialMetadata();
  auto it = headers.find("authorization");
  if (it != headers.end()) {
    std::string_view value(it->second.data(), it->second.size());
    constexpr std::string_view kBearer = "Bearer ";
    if (value.size() > kBearer.size() && value.substr(0, kBearer.size()) == kBearer) {
      return std::string(value.substr(kBearer.size()));
    }
  }
  return payload;
}

Result<std::vector<FlightInfo>> Client::ListFlights(std::string_view prefix) {
  auto ctx = impl_->Context();
  protocol::Criteria criteria;
  criteria.set_expression(std::string(prefix));
  auto reader = impl_->stub->ListFlights(ctx.get(), criteria);
  std::vector<FlightInfo> out;
  protocol::FlightInfo info;
  while (reader->Read(&info)) out.push_back(FromProto(info));
  BRIDGE_RETURN_NOT_OK(impl_->Fail(reader->Finish(), "ListFlights"));
  return out;
}

Result<FlightInfo> Client::GetFlightInfo(const Descriptor& descriptor) {
  auto ctx = impl_->Context();
  protocol::FlightInfo info;
  BRIDGE_RETURN_NOT_OK(impl_->Fail(
      impl_->stub->GetFlightInfo(ctx.get(), ToProto(descriptor), &info), "GetFlightInfo"));
  return FromProto(info);
}

Result<PollInfo> Client::PollFlightInfo(const Descriptor& descriptor) {
  auto ctx = impl_->Context();
  protocol::PollInfo poll;
  BRIDGE_RETURN_NOT_OK(impl_->Fail(
      impl_->stub->PollFlightInfo(ctx.get(), ToProto(descriptor), &poll), "PollFlightInfo"));
  PollInfo out;
  if (poll.has_info()) out.info = FromProto(poll.info());
  if (poll.has_flight_descriptor()) out.next = FromProto(poll.flight_descriptor());
  if (poll.has_progress()) out.progress = poll.progress();
  if (poll.has_expiration_time()) out.expiration = FromProto(poll.expiration_time());
  return out;
}

Result<ipc::OwnedSchema> Client::GetSchema(const Descriptor& descriptor) {
  auto ctx = impl_->Context();
  protocol::SchemaResult result;
  BRIDGE_RETURN_NOT_OK(
      impl_->Fail(impl_->stub->GetSchema(ctx.get(), ToProto(descriptor), &result), "GetSchema"));
  const std::string& bytes = result.schema();
  return ipc::DecodeSchemaMessage(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::unique_ptr<StreamReader>> Client::DoGet(std::string_view ticket) {
  auto reader = std::make_unique<GrpcStreamReader>(impl_->Context(), impl_->uri);
  BRIDGE_RETURN_NOT_OK(reader->Open(*impl_->do_get, impl_->channel.get(), ticket));
  return std::unique_ptr<StreamReader>(std::move(reader));
}

Result<Table> Client::FetchAll(const FlightInfo& info, FetchOptions options) {
  struct Part {
    ipc::OwnedSchema schema;
    std::vector<ipc::OwnedArray> batches;
    StreamStats stats;
  };
  // Reads one endpoint from `client`.
  auto read = [&options](Client& client, const std::string& ticket) -> Result<Part> {
    BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<StreamReader> reader, client.DoGet(ticket));
    Part part;
    for (;;) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, reader->Next());
      if (!batch.valid()) break;
      if (options.keep_batches) part.batches.push_back(std::move(batch));
    }
    part.stats = reader->stats();
    part.schema = static_cast<GrpcStreamReader&>(*reader).TakeSchema();
    return part;
  };
  auto fetch = [&](size_t i) -> Result<Part> {
    const Endpoint& endpoint = info.endpoints[i];
    std::vector<std::string> here;
    for (const std::string& l : endpoint.locations) {
      if (l != kReuseConnection && l != impl_->uri) here.push_back(l);
    }
    if (here.size() < endpoint.locations.size() || endpoint.locations.empty()) {
      return read(*this, endpoint.ticket);
    }
    Status last;
    for (const std::string& location : here) {
      std::shared_ptr<Client> other;
      {
        std::lock_guard<std::mutex> lock(impl_->others_mu);
        auto it = impl_->others.find(location);
        if (it != impl_->others.end()) other = it->second;
      }
      if (other == nullptr) {
        ClientOptions o = impl_->options;
        o.token = impl_->token;
        Result<std::unique_ptr<Client>> connected = Connect(location, o);
        if (!connected.ok()) {
          last = connected.status();
          continue;
        }
        std::lock_guard<std::mutex> lock(impl_->others_mu);
        other = impl_->others.emplace(location, std::move(connected).value()).first->second;
      }
      Result<Part> part = read(*other, endpoint.ticket);
      // Another location may serve the ticket when this one cannot be reached.
      if (part.ok() || part.status().code() != StatusCode::kUnavailable) return part;
      last = part.status();
    }
    return last;
  };

  size_t n = info.endpoints.size();
  std::vector<std::optional<Result<Part>>> parts(n);
  if (!options.parallel || n <= 1) {
    for (size_t i = 0; i < n; ++i) {
      parts[i] = fetch(i);
      if (!parts[i]->ok()) return parts[i]->status();
    }
  } else {
    size_t threads =
        options.max_threads > 0 ? std::min(n, static_cast<size_t>(options.max_threads)) : n;
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> workers;
    for (size_t t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < n && !failed.load(); i = next++) {
          parts[i] = fetch(i);
          if (!parts[i]->ok()) failed.store(true);
        }
      });
    }
    for (std::thread& w : workers) w.join();
    for (size_t i = 0; i < n; ++i) {
      if (parts[i] && !parts[i]->ok()) return parts[i]->status();
    }
  }
  Table table;
  for (size_t i = 0; i < n; ++i) {
    Part& part = **parts[i];
    if (!table.schema.valid()) table.schema = std::move(part.schema);
    for (ipc::OwnedArray& b : part.batches) table.batches.push_back(std::move(b));
    table.stats.Add(part.stats);
  }
  table.rows = table.stats.rows;
  if (!table.schema.valid()) {
    BRIDGE_ASSIGN_OR_RETURN(table.schema, info.Schema());
  }
  return table;
}

Result<std::unique_ptr<PutWriter>> Client::DoPut(const Descriptor& descriptor,
                                                 const ArrowSchema& schema, PutMode mode) {
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<BatchSender> sender,
                          BatchSender::Make(schema, ToProto(descriptor),
                                            StrCat("{\"mode\": \"", PutModeName(mode), "\"}")));
  auto writer = std::make_unique<GrpcPutWriter>(impl_->Context(), std::move(sender), impl_->uri);
  BRIDGE_RETURN_NOT_OK(writer->Open(*impl_->do_put, impl_->channel.get()));
  return std::unique_ptr<PutWriter>(std::move(writer));
}

Result<PutOutcome> Client::Put(const Descriptor& descriptor, const ArrowSchema& schema,
                               std::vector<ipc::OwnedArray> batches, PutMode mode) {
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<PutWriter> writer, DoPut(descriptor, schema, mode));
  for (ipc::OwnedArray& batch : batches) BRIDGE_RETURN_NOT_OK(writer->Write(std::move(batch)));
  return writer->Close();
}

Result<Table> Client::Exchange(std::string_view sql, const ArrowSchema& schema,
                               std::vector<ipc::OwnedArray> batches) {
  BRIDGE_ASSIGN_OR_RETURN(
      std::unique_ptr<BatchSender> sender,
      BatchSender::Make(schema, ToProto(Descriptor::Sql(std::string(sql))), ""));
  // Encode everything first so that input errors come before the call starts.
  std::vector<grpc::ByteBuffer> messages;
  BRIDGE_ASSIGN_OR_RETURN(grpc::ByteBuffer first, sender->SchemaMessage());
  messages.push_back(std::move(first));
  for (ipc::OwnedArray& batch : batches) {
    BRIDGE_ASSIGN_OR_RETURN(std::vector<grpc::ByteBuffer> encoded,
                            sender->BatchMessages(std::move(batch)));
    for (grpc::ByteBuffer& m : encoded) messages.push_back(std::move(m));
  }
  auto ctx = impl_->Context();
  std::unique_ptr<RawStream> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          impl_->channel.get(), *impl_->do_exchange, ctx.get()));
  // Upload on a thread while this one reads the result, so neither side's flow control
  // window can block the other.
  std::thread uploader([&] {
    for (const grpc::ByteBuffer& m : messages) {
      if (!stream->Write(m)) break;
    }
    stream->WritesDone();
  });
  BatchDecoder decoder;
  Table table;
  Status decode_error;
  grpc::ByteBuffer buffer;
  while (stream->Read(&buffer)) {
    Result<ipc::OwnedArray> batch = decoder.Consume(buffer);
    if (!batch.ok()) {
      decode_error = batch.status();
      ctx->TryCancel();
      break;
    }
    if (batch->valid()) table.batches.push_back(std::move(batch).value());
  }
  uploader.join();
  Status final = impl_->Fail(stream->Finish(), "DoExchange");
  BRIDGE_RETURN_NOT_OK(decode_error);
  BRIDGE_RETURN_NOT_OK(final);
  if (!decoder.has_schema()) {
    return InvalidArgument("flight client: DoExchange returned no schema");
  }
  table.stats = decoder.stats();
  table.rows = table.stats.rows;
  table.schema = decoder.TakeSchema();
  return table;
}

Result<std::vector<ActionType>> Client::ListActions() {
  auto ctx = impl_->Context();
  auto reader = impl_->stub->ListActions(ctx.get(), protocol::Empty());
  std::vector<ActionType> out;
  protocol::ActionType type;
  while (reader->Read(&type)) out.push_back({type.type(), type.description()});
  BRIDGE_RETURN_NOT_OK(impl_->Fail(reader->Finish(), "ListActions"));
  return out;
}

Result<std::vector<std::string>> Client::DoAction(std::string_view type, std::string_view body) {
  auto ctx = impl_->Context();
  protocol::Action action;
  action.set_type(std::string(type));
  action.set_body(std::string(body));
  auto reader = impl_->stub->DoAction(ctx.get(), action);
  std::vector<std::string> out;
  protocol::Result result;
  while (reader->Read(&result)) out.push_back(result.body());
  BRIDGE_RETURN_NOT_OK(impl_->Fail(reader->Finish(), "DoAction"));
  return out;
}

}  // namespace bridge::flight::client
