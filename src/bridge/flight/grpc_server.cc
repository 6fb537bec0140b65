#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "Flight.grpc.pb.h"
#include "bridge/arrow/encoder.h"
#include "bridge/auth/auth.h"
#include "bridge/catalog/catalog.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/grpc_flight_data_internal.h"
#include "bridge/flight/grpc_status_internal.h"
#include "bridge/flight/server.h"
#include "bridge/flight/ticket_internal.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
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
    default:
      break;
  }
  return grpc::Status(code, std::string(status.message()));
}

namespace {

using Clock = std::chrono::system_clock;

// Threads that run blocking engine work for DoGet. Tasks run in order of posting.
class TaskPool {
 public:
  explicit TaskPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~TaskPool() { Stop(); }

  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

  // Runs the tasks already posted, then joins the threads. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A stream that may want to send a keep-alive message.
class KeepAliveTarget {
 public:
  virtual ~KeepAliveTarget() = default;
  // Called by the ticker thread; must not block.
  virtual void Tick(std::chrono::steady_clock::time_point now) = 0;
};

// One thread that ticks the registered streams a few times per keep-alive interval. A
// target is only ticked between Add and Remove; Remove waits for a tick in progress, so after
// it returns the target may be destroyed. Interval zero = no thread, Add/Remove do nothing.
class KeepAliveTicker {
 public:
  explicit KeepAliveTicker(std::chrono::milliseconds interval) : interval_(interval) {
    if (interval_.count() > 0) thread_ = std::thread([this] { Run(); });
  }
  ~KeepAliveTicker() { Stop(); }

  std::chrono::milliseconds interval() const { return interval_; }

  void Add(KeepAliveTarget* target) {
    if (interval_.count() == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    targets_.push_back(target);
  }
  void Remove(KeepAliveTarget* target) {
    if (interval_.count() == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    std::erase(targets_, target);
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    auto period = std::max(interval_ / 4, std::chrono::milliseconds(1));
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, period, [this] { return stopping_; });
      auto now = std::chrono::steady_clock::now();
      for (KeepAliveTarget* target : targets_) target->Tick(now);
    }
  }

  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<KeepAliveTarget*> targets_;
  bool stopping_ = false;
  std::thread thread_;
};

std::string_view View(const grpc::string_ref& s) { return std::string_view(s.data(), s.size()); }

std::string_view HeaderValue(const grpc::CallbackServerContext& ctx, std::string_view name) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(grpc::string_ref(name.data(), name.size()));
  return it == metadata.end() ? std::string_view() : View(it->second);
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// A write reactor that fails at once.
template <typename T>
class FailedWrite final : public grpc::ServerWriteReactor<T> {
 public:
  explicit FailedWrite(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// What one GetFlightInfo / GetSchema resolves a descriptor to.
struct Plan {
  std::string sql;
  std::string schema_message;  // encapsulated IPC Schema message
  int64_t total_records = -1;
};

// Shared by every call: the services, options, ticket key, thread pool and counters.
struct ServerState {
  FlightServerOptions options;
  Services services;
  TicketSigner signer;
  TaskPool pool;
  KeepAliveTicker ticker;
  std::atomic<int64_t> flight_data_sent{0};
  std::atomic<int64_t> keepalives_sent{0};
  std::atomic<int64_t> body_bytes_sent{0};
  std::atomic<int64_t> body_bytes_copied{0};
  prometheus::Counter* metric_messages = nullptr;
  prometheus::Counter* metric_body_bytes = nullptr;
  prometheus::Counter* metric_copied = nullptr;

  ServerState(FlightServerOptions o, Services s, TicketSigner t)
      : options(std::move(o)),
        services(s),
        signer(std::move(t)),
        pool(options.query_threads),
        ticker(options.keepalive_interval) {}

  // Returns the caller's principal: anonymous without auth, else from the bearer token in
  // the `authorization` header. Unauthenticated / PermissionDenied (no read permission).
  Result<auth::Principal> Authorize(const grpc::CallbackServerContext& ctx) const {
    const auth::Authenticator* authenticator = services.auth;
    if (authenticator == nullptr || !authenticator->enabled()) return auth::AnonymousPrincipal();
    BRIDGE_ASSIGN_OR_RETURN(auth::Principal principal,
                            authenticator->VerifyBearer(HeaderValue(ctx, "authorization")));
    if (!principal.Has(auth::kRead)) {
      return PermissionDenied("flight: user '", principal.user, "' may not read");
    }
    return principal;
  }

  void CountSent(const EncodeResult& sent) {
    flight_data_sent.fetch_add(1, std::memory_order_relaxed);
    body_bytes_sent.fetch_add(sent.body_bytes, std::memory_order_relaxed);
    body_bytes_copied.fetch_add(sent.body_bytes_copied, std::memory_order_relaxed);
    if (metric_messages != nullptr) {
      metric_messages->Increment();
      metric_body_bytes->Increment(static_cast<double>(sent.body_bytes));
      metric_copied->Increment(static_cast<double>(sent.body_bytes_copied));
    }
  }

  // Resolves `descriptor` to SQL and prepares it in `session` for the schema.
  Result<Plan> PlanDescriptor(const protocol::FlightDescriptor& descriptor,
                              engine::Session& session) const {
    Plan plan;
    switch (descriptor.type()) {
      case protocol::FlightDescriptor::PATH: {
        if (descriptor.path_size() != 1) {
          return InvalidArgument("flight: a PATH descriptor names one table, got ",
                                 descriptor.path_size(), " path elements");
        }
        const std::string& name = descriptor.path(0);
        std::optional<catalog::TableInfo> table = services.catalog->Table(name);
        if (!table) return NotFound("flight: no table '", name, "'");
        if (!table->error.empty()) {
          return FailedPrecondition("flight: table '", table->name, "' is broken: ", table->error);
        }
        plan.sql = StrCat("SELECT * FROM ", engine::QuoteIdentifier(table->name));
        if (table->format == "parquet" && table->rows) plan.total_records = *table->rows;
        break;
      }
      case protocol::FlightDescriptor::CMD:
        plan.sql = descriptor.cmd();
        if (plan.sql.empty()) return InvalidArgument("flight: a CMD descriptor needs SQL text");
        break;
      default:
        return InvalidArgument("flight: descriptor type must be PATH or CMD");
    }
    BRIDGE_ASSIGN_OR_RETURN(auto prepared, session.Prepare(plan.sql));
    if (prepared->parameter_count() != 0) {
      return InvalidArgument("flight: the query takes ", prepared->parameter_count(),
                             " parameters; Flight commands cannot bind parameters");
    }
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema schema, prepared->ResultSchema());
    BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage message, ipc::EncodeSchemaMessage(*schema));
    plan.schema_message = std::move(message.metadata);
    return plan;
  }

  protocol::FlightInfo MakeFlightInfo(const protocol::FlightDescriptor& descriptor,
                                      Plan plan) const {
    protocol::FlightInfo info;
    info.set_schema(std::move(plan.schema_message));
    *info.mutable_flight_descriptor() = descriptor;
    int64_t expiry_seconds = std::chrono::duration_cast<std::chrono::seconds>(
                                 (Clock::now() + options.ticket_ttl).time_since_epoch())
                                 .count();
    TicketContents ticket{std::move(plan.sql),
                          Clock::time_point(std::chrono::seconds(expiry_seconds))};
    protocol::FlightEndpoint* endpoint = info.add_endpoint();
    endpoint->mutable_ticket()->set_ticket(signer.Sign(ticket));
    endpoint->mutable_expiration_time()->set_seconds(expiry_seconds);
    info.set_total_records(plan.total_records);
    info.set_total_bytes(-1);
    info.set_ordered(true);
    return info;
  }
};

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

// DoGet: runs the ticket's query on the pool and writes one FlightData per IPC message.
//
// At most one fetch (a pool task that fetches and encodes until one message is ready) and at
// most one write are in flight. Normally they alternate: a fetch ends by starting the write
// of its message, the write's completion starts the next fetch. While a fetch takes longer
// than the keep-alive interval, the ticker writes a metadata-only FlightData; a message the
// fetch finishes meanwhile waits in ready_ until that write completes. Whoever ends the call
// unregisters from the ticker and calls Finish without holding mu_ and touches nothing after.
class DoGetReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           public KeepAliveTarget {
 public:
  DoGetReactor(ServerState& state, std::string sql, std::chrono::milliseconds timeout)
      : state_(state), sql_(std::move(sql)), timeout_(timeout) {
    keepalive_ = EncodeMetadataOnly(kKeepAliveMetadata);
    fetching_ = true;
    state_.pool.Post([this] { Begin(); });
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    last_write_ = std::chrono::steady_clock::now();
    if (!ok) client_gone_ = true;
    if (fetching_) return;  // a keep-alive completed; the fetch carries on
    if (finish_status_) {
      Status status = *finish_status_;
      finishing_ = true;
      lock.unlock();
      return FinishNow(status);
    }
    if (client_gone_) {
      fetching_ = true;
      lock.unlock();
      state_.pool.Post([this] { Conclude(Cancelled("flight: the client went away")); });
      return;
    }
    if (ready_) {
      out_ = std::move(*ready_);
      ready_.reset();
      writing_ = true;
      lock.unlock();
      StartWrite(&out_);
      return;
    }
    fetching_ = true;
    lock.unlock();
    state_.pool.Post([this] { Fetch(); });
  }

  void OnCancel() override {
    cancelled_.store(true);
    std::lock_guard<std::mutex> lock(session_mu_);
    if (session_) session_->Cancel();
  }

  void OnDone() override { delete this; }

  void Tick(std::chrono::steady_clock::time_point now) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fetching_ || writing_ || finishing_ || finish_status_ || client_gone_ ||
          !first_write_done_ || now - last_write_ < state_.ticker.interval()) {
        return;
      }
      writing_ = true;
    }
    state_.keepalives_sent.fetch_add(1, std::memory_order_relaxed);
    StartWrite(&keepalive_);
  }

 private:
  static constexpr std::string_view kKeepAliveMetadata = "bridge:keepalive";

  void Begin() {
    Result<std::unique_ptr<engine::Session>> session = state_.services.db->Connect();
    if (!session.ok()) return Conclude(session.status());
    {
      std::lock_guard<std::mutex> lock(session_mu_);
      session_ = std::move(session).value();
    }
    if (cancelled_.load()) return Conclude(Cancelled("flight: DoGet cancelled"));
    // Prepare first and send the schema at once: executing may take long (DuckDB runs
    // blocking operators such as aggregates before it returns), and keep-alives may only
    // follow the schema.
    Result<std::unique_ptr<engine::PreparedStatement>> prepared = session_->Prepare(sql_);
    if (!prepared.ok()) return Conclude(prepared.status());
    prepared_ = std::move(prepared).value();
    Result<ipc::OwnedSchema> schema = prepared_->ResultSchema();
    if (!schema.ok()) return Conclude(schema.status());
    Result<std::unique_ptr<ipc::RecordBatchEncoder>> encoder =
        ipc::RecordBatchEncoder::Make(**schema);
    if (!encoder.ok()) return Conclude(encoder.status());
    encoder_ = std::move(encoder).value();
    Result<ipc::EncodedMessage> message = encoder_->EncodeSchema();
    if (!message.ok()) return Conclude(message.status());
    pending_.push_back(std::move(message).value());
    state_.ticker.Add(this);
    Fetch();
  }

  // Runs the prepared statement (on the first fetch after the schema).
  Status Execute() {
    engine::QueryOptions query_options;
    query_options.timeout = timeout_;
    query_options.batch_rows = state_.options.batch_rows;
    query_options.batch_bytes = state_.options.batch_bytes;
    BRIDGE_ASSIGN_OR_RETURN(stream_, prepared_->Execute({}, query_options));
    return OkStatus();
  }

  // On the pool: fetches until a message is ready, then writes it (or leaves it in ready_
  // while a keep-alive is being written); concludes at the end of the result or on an error.
  void Fetch() {
    while (pending_.empty()) {
      if (cancelled_.load()) return Conclude(Cancelled("flight: DoGet cancelled"));
      if (stream_ == nullptr) {
        Status executed = Execute();
        if (!executed.ok()) return Conclude(executed);
        continue;
      }
      Result<ipc::OwnedArray> batch = stream_->Next();
      if (!batch.ok()) return Conclude(batch.status());
      if (!batch->valid()) return Conclude(OkStatus());
      Result<std::vector<ipc::EncodedMessage>> messages = encoder_->Encode(std::move(*batch));
      if (!messages.ok()) return Conclude(messages.status());
      for (ipc::EncodedMessage& m : *messages) pending_.push_back(std::move(m));
    }
    EncodeResult encoded = EncodeFlightData(pending_.front());
    pending_.pop_front();
    state_.CountSent(encoded);
    std::unique_lock<std::mutex> lock(mu_);
    if (client_gone_) {
      lock.unlock();
      return Conclude(Cancelled("flight: the client went away"));
    }
    fetching_ = false;
    if (writing_) {
      ready_ = std::move(encoded.buffer);
      return;
    }
    writing_ = true;
    first_write_done_ = true;
    out_ = std::move(encoded.buffer);
    lock.unlock();
    StartWrite(&out_);
  }

  // On the pool, in place of a fetch: releases the query and ends the call (at once, or when
  // the keep-alive write in flight completes).
  void Conclude(const Status& status) {
    pending_.clear();
    encoder_.reset();
    stream_.reset();
    prepared_.reset();
    {
      std::lock_guard<std::mutex> lock(session_mu_);
      session_.reset();
    }
    std::unique_lock<std::mutex> lock(mu_);
    fetching_ = false;
    if (writing_) {
      finish_status_ = status;
      return;
    }
    finishing_ = true;
    lock.unlock();
    FinishNow(status);
  }

  void FinishNow(const Status& status) {
    state_.ticker.Remove(this);
    Finish(ToGrpcStatus(status));
  }

  ServerState& state_;
  const std::string sql_;
  const std::chrono::milliseconds timeout_;
  std::atomic<bool> cancelled_{false};

  std::mutex session_mu_;  // guards session_ against OnCancel
  std::unique_ptr<engine::Session> session_;
  // Used by the fetch in flight only.
  std::unique_ptr<engine::PreparedStatement> prepared_;
  std::unique_ptr<engine::BatchStream> stream_;
  std::unique_ptr<ipc::RecordBatchEncoder> encoder_;
  std::deque<ipc::EncodedMessage> pending_;

  std::mutex mu_;  // guards the flags below, ready_, and out_ while no write is in flight
  bool fetching_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool client_gone_ = false;
  bool first_write_done_ = false;
  std::optional<Status> finish_status_;
  std::optional<grpc::ByteBuffer> ready_;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  grpc::ByteBuffer out_;
  grpc::ByteBuffer keepalive_;
};

using ServiceBase = protocol::FlightService::WithCallbackMethod_Handshake<
    protocol::FlightService::WithCallbackMethod_ListFlights<
        protocol::FlightService::WithCallbackMethod_GetFlightInfo<
            protocol::FlightService::WithCallbackMethod_PollFlightInfo<
                protocol::FlightService::WithCallbackMethod_GetSchema<
                    protocol::FlightService::WithRawCallbackMethod_DoGet<
                        protocol::FlightService::WithCallbackMethod_DoPut<
                            protocol::FlightService::WithCallbackMethod_DoExchange<
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
      BRIDGE_RETURN_NOT_OK(state_.Authorize(*ctx));
      BRIDGE_ASSIGN_OR_RETURN(auto session, state_.services.db->Connect());
      BRIDGE_ASSIGN_OR_RETURN(Plan plan, state_.PlanDescriptor(*descriptor, *session));
      result->set_schema(std::move(plan.schema_message));
      return OkStatus();
    });
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* DoGet(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* request) override {
    Result<TicketContents> ticket = [&]() -> Result<TicketContents> {
      BRIDGE_RETURN_NOT_OK(state_.Authorize(*ctx));
      grpc::Slice slice;
      protocol::Ticket message;
      if (!request->DumpToSingleSlice(&slice).ok() ||
          !message.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
        return InvalidArgument("flight: DoGet request is not a Ticket");
      }
      return state_.signer.Verify(message.ticket());
    }();
    if (!ticket.ok()) return new FailedWrite<grpc::ByteBuffer>(ToGrpcStatus(ticket.status()));
    return new DoGetReactor(state_, std::move(ticket->sql), Timeout(*ctx));
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

  // The engine timeout of a call: the server's query_timeout, shortened to the client's
  // deadline when it is sooner.
  std::chrono::milliseconds Timeout(const grpc::CallbackServerContext& ctx) const {
    std::chrono::milliseconds timeout = state_.options.query_timeout;
    Clock::time_point deadline = ctx.deadline();
    auto now = Clock::now();
    if (deadline < now + std::chrono::hours(24 * 365)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      if (left < std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
      if (timeout.count() == 0 || left < timeout) timeout = left;
    }
    return timeout;
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
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl->port);
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
  impl_->state->ticker.Stop();
  impl_->state->pool.Stop();
}

}  // namespace bridge::flight
