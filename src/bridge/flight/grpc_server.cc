// The FlightService: dispatch to the RPC files, Handshake, ListFlights, GetFlightInfo,
// GetSchema, and the server's start and shutdown.
#include "bridge/flight/server_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::flight {

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case StatusCode::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case StatusCode::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case StatusCode::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case StatusCode::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case StatusCode::kCancelled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case StatusCode::kDeadlineExceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case StatusCode::kUnimplemented:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
    case StatusCode::kDataLoss:  // e.g. a cached result whose checksum does not match
      code = grpc::StatusCode::DATA_LOSS;
      break;
    default:
      break;
  }
  return grpc::Status(code, std::string(status.message()));
}

namespace {

using Clock = std::chrono::system_clock;

// Handshake: Basic credentials (header or BasicAuth payload) -> bearer token, sent as the
// `authorization: Bearer` response header and as the response payload. The argon2 check
// runs on the pool (it takes tens of milliseconds).
class HandshakeReactor final
    : public grpc::ServerBidiReactor<protocol::HandshakeRequest, protocol::HandshakeResponse> {
 public:
  HandshakeReactor(grpc::CallbackServerContext* ctx, const auth::Authenticator* authenticator,
                   TaskPool& pool)
      : ctx_(ctx), auth_(authenticator), pool_(pool) {
    if (auth_ == nullptr || !auth_->enabled()) {
      Reply("");
      return;
    }
    std::string header(HeaderValue(*ctx, "authorization"));
    if (header.empty()) {
      StartRead(&request_);  // credentials in the payload
      return;
    }
    pool_.Post([this, header = std::move(header)] {
      Conclude(StartsWithNoCase(header, "basic ") ? auth_->LoginBasic(header)
                                                  : auth_->VerifyBearer(header));
    });
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(ToGrpcStatus(absl::UnauthenticatedError(
          "flight: handshake needs credentials: a BasicAuth payload or an authorization header")));
      return;
    }
    pool_.Post([this] {
      protocol::BasicAuth basic;
      if (!basic.ParseFromString(request_.payload())) {
        Finish(ToGrpcStatus(
            absl::UnauthenticatedError("flight: handshake payload is not a BasicAuth message")));
        return;
      }
      Conclude(auth_->Login(basic.username(), basic.password()));
    });
  }

  void OnDone() override { delete this; }

 private:
  void Conclude(Result<auth::Principal> principal) {
    if (!principal.ok()) {
      Finish(ToGrpcStatus(principal.status()));
      return;
    }
    Reply(auth_->IssueToken(*principal));
  }

  void Reply(const std::string& token) {
    if (!token.empty()) ctx_->AddInitialMetadata("authorization", "Bearer " + token);
    response_.set_payload(token);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  grpc::CallbackServerContext* ctx_;
  const auth::Authenticator* auth_;
  TaskPool& pool_;
  protocol::HandshakeRequest request_;
  protocol::HandshakeResponse response_;
};

// Writes a list of FlightInfo one after the other; the list is made on the pool.
class FlightInfoWriter final : public grpc::ServerWriteReactor<protocol::FlightInfo> {
 public:
  FlightInfoWriter(TaskPool& pool,
                   std::function<Result<std::vector<protocol::FlightInfo>>()> make) {
    pool.Post([this, make = std::move(make)] {
      Result<std::vector<protocol::FlightInfo>> infos = make();
      if (!infos.ok()) {
        Finish(ToGrpcStatus(infos.status()));
        return;
      }
      infos_ = std::move(infos).value();
      Next();
    });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "flight: the client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == infos_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    StartWrite(&infos_[next_++]);
  }
  std::vector<protocol::FlightInfo> infos_;
  size_t next_ = 0;
};

using ServiceBase = protocol::FlightService::WithCallbackMethod_Handshake<
    protocol::FlightService::WithCallbackMethod_ListFlights<
        protocol::FlightService::WithCallbackMethod_GetFlightInfo<
            protocol::FlightService::WithCallbackMethod_PollFlightInfo<
                protocol::FlightService::WithCallbackMethod_GetSchema<
                    protocol::FlightService::WithRawCallbackMethod_DoGet<
                        protocol::FlightService::WithRawCallbackMethod_DoPut<
                            protocol::FlightService::WithRawCallbackMethod_DoExchange<
                                protocol::FlightService::WithCallbackMethod_DoAction<
                                    protocol::FlightService::WithCallbackMethod_ListActions<
                                        protocol::FlightService::Service>>>>>>>>>>;

class FlightServiceImpl final : public ServiceBase {
 public:
  explicit FlightServiceImpl(ServerState& state) : state_(state) {}

  grpc::ServerBidiReactor<protocol::HandshakeRequest, protocol::HandshakeResponse>* Handshake(
      grpc::CallbackServerContext* ctx) override {
    return new HandshakeReactor(ctx, state_.services.auth, state_.pool);
  }

  grpc::ServerWriteReactor<protocol::FlightInfo>* ListFlights(
      grpc::CallbackServerContext* ctx, const protocol::Criteria* criteria) override {
    return new FlightInfoWriter(state_.pool, [this, ctx, prefix = criteria->expression()] {
      return ListInfos(*ctx, prefix);
    });
  }

  grpc::ServerUnaryReactor* GetFlightInfo(grpc::CallbackServerContext* ctx,
                                          const protocol::FlightDescriptor* descriptor,
                                          protocol::FlightInfo* info) override {
    return RunUnary(ctx, [this, ctx, descriptor, info]() -> Status {
      if (CommandHandler* handler = HandlerOf(state_, *descriptor)) {
        BRIDGE_ASSIGN_OR_RETURN(*info, CommandFlightInfo(state_, *handler, ctx, *descriptor));
        return OkStatus();
      }
      BRIDGE_RETURN_NOT_OK(state_.Authorize(*ctx));
      BRIDGE_ASSIGN_OR_RETURN(auto session, state_.services.db->Connect());
      BRIDGE_ASSIGN_OR_RETURN(Plan plan, state_.PlanDescriptor(*descriptor, *session));
      *info = state_.MakeFlightInfo(*descriptor, std::move(plan));
      return OkStatus();
    });
  }

  grpc::ServerUnaryReactor* GetSchema(grpc::CallbackServerContext* ctx,
                                      const protocol::FlightDescriptor* descriptor,
                                      protocol::SchemaResult* result) override {
    return RunUnary(ctx, [this, ctx, descriptor, result]() -> Status {
      if (CommandHandler* handler = HandlerOf(state_, *descriptor)) {
        BRIDGE_ASSIGN_OR_RETURN(auto info, CommandFlightInfo(state_, *handler, ctx, *descriptor,
                                                             /*schema_only=*/true));
        result->set_schema(std::move(*info.mutable_schema()));
        return OkStatus();
      }
      BRIDGE_RETURN_NOT_OK(state_.Authorize(*ctx));
      BRIDGE_ASSIGN_OR_RETURN(auto session, state_.services.db->Connect());
      BRIDGE_ASSIGN_OR_RETURN(Plan plan, state_.PlanDescriptor(*descriptor, *session));
      result->set_schema(std::move(plan.schema_message));
      return OkStatus();
    });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* DoGet(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* request) override {
    return NewDoGet(state_, ctx, request);
  }

  grpc::ServerUnaryReactor* PollFlightInfo(grpc::CallbackServerContext* ctx,
                                           const protocol::FlightDescriptor* descriptor,
                                           protocol::PollInfo* info) override {
    return NewPollFlightInfo(state_, ctx, descriptor, info);
  }

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* DoPut(
      grpc::CallbackServerContext* ctx) override {
    return NewDoPut(state_, ctx);
  }

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* DoExchange(
      grpc::CallbackServerContext* ctx) override {
    return NewDoExchange(state_, ctx);
  }

  grpc::ServerWriteReactor<protocol::Result>* DoAction(grpc::CallbackServerContext* ctx,
                                                       const protocol::Action* action) override {
    return NewDoAction(state_, ctx, action);
  }

  grpc::ServerWriteReactor<protocol::ActionType>* ListActions(
      grpc::CallbackServerContext* ctx, const protocol::Empty* /*request*/) override {
    return NewListActions(state_, ctx);
  }

 private:
  // Runs `work` on the pool and finishes the unary call with its status. The request and
  // response stay valid until Finish.
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx,
                                     std::function<Status()> work) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    state_.pool.Post([reactor, work = std::move(work)] { reactor->Finish(ToGrpcStatus(work())); });
    return reactor;
  }

  Result<std::vector<protocol::FlightInfo>> ListInfos(const grpc::CallbackServerContext& ctx,
                                                      const std::string& prefix) const {
    BRIDGE_RETURN_NOT_OK(state_.Authorize(ctx));
    BRIDGE_ASSIGN_OR_RETURN(auto session, state_.services.db->Connect());
    std::vector<protocol::FlightInfo> infos;
    for (const catalog::TableInfo& table : state_.services.catalog->Tables()) {
      if (!table.error.empty() || !StartsWithNoCase(table.name, prefix)) continue;
      protocol::FlightDescriptor descriptor;
      descriptor.set_type(protocol::FlightDescriptor::PATH);
      descriptor.add_path(table.name);
      Result<Plan> plan = state_.PlanDescriptor(descriptor, *session);
      if (!plan.ok()) {
        // A table that stopped working since the last refresh is left out of the list.
        spdlog::warn("flight: ListFlights skips table '{}': {}", table.name,
                     std::string(plan.status().message()));
        continue;
      }
      infos.push_back(state_.MakeFlightInfo(descriptor, std::move(plan).value()));
    }
    return infos;
  }

  ServerState& state_;
};

}  // namespace

struct FlightServer::Impl {
  std::unique_ptr<ServerState> state;
  std::unique_ptr<FlightServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::mutex shutdown_mu;
  bool shut_down = false;
};

Result<std::unique_ptr<FlightServer>> FlightServer::Start(const FlightServerOptions& options,
                                                          const Services& services) {
  if (services.db == nullptr || services.catalog == nullptr) {
    return InvalidArgument("flight: the server needs a database and a catalog");
  }
  if (options.query_threads < 1) {
    return InvalidArgument("flight: query_threads must be at least 1");
  }
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("flight: bad port ", options.port);
  }
  if (options.keepalive_interval.count() < 0) {
    return InvalidArgument("flight: keepalive_interval must not be negative");
  }
  if (options.ticket_ttl.count() <= 0) {
    return InvalidArgument("flight: ticket_ttl must be positive");
  }
  BRIDGE_ASSIGN_OR_RETURN(TicketSigner signer, TicketSigner::Make(options.ticket_secret));
  auto impl = std::make_unique<Impl>();
  impl->state = std::make_unique<ServerState>(options, services, std::move(signer));
  if (services.registry != nullptr) {
    auto& messages = prometheus::BuildCounter()
                         .Name("bridge_flight_data_messages_total")
                         .Help("FlightData messages written by DoGet")
                         .Register(*services.registry);
    auto& bytes = prometheus::BuildCounter()
                      .Name("bridge_flight_body_bytes_total")
                      .Help("FlightData data_body bytes written")
                      .Register(*services.registry);
    auto& copied = prometheus::BuildCounter()
                       .Name("bridge_flight_body_bytes_copied_total")
                       .Help("FlightData data_body bytes copied instead of referenced")
                       .Register(*services.registry);
    impl->state->metric_messages = &messages.Add({});
    impl->state->metric_body_bytes = &bytes.Add({});
    impl->state->metric_copied = &copied.Add({});
  }
  impl->service = std::make_unique<FlightServiceImpl>(*impl->state);

  std::string address = options.host.find(':') != std::string::npos
                            ? StrCat("[", options.host, "]:", options.port)
                            : StrCat(options.host, ":", options.port);
  grpc::ServerBuilder builder;
  BRIDGE_RETURN_NOT_OK(AddListeningPort(builder, address, options, &impl->port));
  AddMiddleware(builder, *impl->state);
  builder.RegisterService(impl->service.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return IoError("flight: cannot listen on ", address);
  }
  return std::unique_ptr<FlightServer>(new FlightServer(std::move(impl)));
}

FlightServer::FlightServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FlightServer::~FlightServer() { Shutdown(std::chrono::milliseconds(0)); }

int FlightServer::port() const { return impl_->port; }

FlightStats FlightServer::stats() const {
  FlightStats out;
  out.flight_data_sent = impl_->state->flight_data_sent.load();
  out.body_bytes_sent = impl_->state->body_bytes_sent.load();
  out.body_bytes_copied = impl_->state->body_bytes_copied.load();
  out.keepalives_sent = impl_->state->keepalives_sent.load();
  out.results_from_cache = impl_->state->results_from_cache.load();
  out.results_cached = impl_->state->results_cached.load();
  out.body_bytes_received = impl_->state->body_bytes_received.load();
  out.body_bytes_received_copied = impl_->state->body_bytes_received_copied.load();
  out.rows_ingested = impl_->state->rows_ingested.load();
  out.uploads_running = impl_->state->RunningUploads();
  return out;
}

void FlightServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(impl_->shutdown_mu);
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  // Calls still running at the deadline are cancelled: their OnCancel interrupts the query,
  // and the pool finishes them.
  impl_->server->Shutdown(Clock::now() + grace);
  impl_->server->Wait();
  // PollFlightInfo queries run on the pool without a call; interrupt them too.
  impl_->state->CancelAllQueries();
  impl_->state->ticker.Stop();
  impl_->state->pool.Stop();
}

}  // namespace bridge::flight
