// Private to src/bridge/flight: what the RPC implementations share — the server state
// (services, options, ticket signer, task pool, keep-alive ticker, counters), small helpers,
// and one factory per RPC file:
//   grpc_server.cc  FlightService (dispatch), Handshake, ListFlights, GetFlightInfo,
//                   GetSchema, Start/Shutdown
//   plan.cc         ServerState::PlanDescriptor / MakeFlightInfo (endpoints), PollFlightInfo
//   do_get.cc       DoGet
//   do_put.cc       DoPut
//   do_exchange.cc  DoExchange
//   actions.cc      DoAction, ListActions
//   security.cc     listening port credentials (TLS / mTLS)
//   middleware.cc   server interceptors
#pragma once

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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

namespace bridge::flight {

using Clock = std::chrono::system_clock;

// Threads that run blocking engine work. Tasks run in order of posting.
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

inline std::string_view View(const grpc::string_ref& s) { return std::string_view(s.data(), s.size()); }

inline std::string_view HeaderValue(const grpc::CallbackServerContext& ctx, std::string_view name) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(grpc::string_ref(name.data(), name.size()));
  return it == metadata.end() ? std::string_view() : View(it->second);
}

inline bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
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

// A bidirectional reactor that fails at once.
template <typename Request, typename Response>
class FailedBidi final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit FailedBidi(grpc::Status status) { this->Finish(std::move(status)); }
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
  // the `authorization` header. Unauthenticated / PermissionDenied (lacks `needed`).
  Result<auth::Principal> Authorize(const grpc::CallbackServerContext& ctx,
                                    auth::Permission needed = auth::kRead) const {
    const auth::Authenticator* authenticator = services.auth;
    if (authenticator == nullptr || !authenticator->enabled()) return auth::AnonymousPrincipal();
    BRIDGE_ASSIGN_OR_RETURN(auth::Principal principal,
                            authenticator->VerifyBearer(HeaderValue(ctx, "authorization")));
    if (!principal.Has(needed)) {
      return PermissionDenied("flight: user '", principal.user, "' lacks the ",
                              auth::PermissionNames(needed), " permission");
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

  // Resolves `descriptor` to SQL and prepares it in `session` for the schema (plan.cc).
  Result<Plan> PlanDescriptor(const protocol::FlightDescriptor& descriptor,
                              engine::Session& session) const;

  // The FlightInfo of a planned descriptor: schema, sizes and endpoints (plan.cc).
  protocol::FlightInfo MakeFlightInfo(const protocol::FlightDescriptor& descriptor,
                                      Plan plan) const;

  // ---- [plans+actions] state added by plan.cc / actions.cc / do_get.cc goes here ----

  // ---- [ingest] state added by do_put.cc / do_exchange.cc goes here ----

  // ---- [security] state added by middleware / TLS goes here ----
};

// The engine timeout of a call: the server's query_timeout, shortened to the client's
// deadline when it is sooner.
inline std::chrono::milliseconds CallTimeout(const ServerState& state,
                                           const grpc::CallbackServerContext& ctx) {
  std::chrono::milliseconds timeout = state.options.query_timeout;
  std::chrono::system_clock::time_point deadline = ctx.deadline();
  auto now = std::chrono::system_clock::now();
  if (deadline < now + std::chrono::hours(24 * 365)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left < std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
    if (timeout.count() == 0 || left < timeout) timeout = left;
  }
  return timeout;
}

// ---- One factory per RPC file. Each returns a reactor that owns itself (deletes itself in
// OnDone). `state` outlives every call. ----

// do_get.cc: streams the ticket in `request` (a serialized Ticket) as FlightData.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewDoGet(ServerState& state,
                                                     grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* request);

// do_put.cc: ingests the uploaded stream (FlightData in, PutResult out; raw ByteBuffers).
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewDoPut(
    ServerState& state, grpc::CallbackServerContext* ctx);

// do_exchange.cc: runs the descriptor's SQL over the uploaded stream as table `input`.
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewDoExchange(
    ServerState& state, grpc::CallbackServerContext* ctx);

// plan.cc: PollFlightInfo.
grpc::ServerUnaryReactor* NewPollFlightInfo(ServerState& state, grpc::CallbackServerContext* ctx,
                                            const protocol::FlightDescriptor* descriptor,
                                            protocol::PollInfo* info);

// actions.cc: DoAction and ListActions.
grpc::ServerWriteReactor<protocol::Result>* NewDoAction(ServerState& state,
                                                        grpc::CallbackServerContext* ctx,
                                                        const protocol::Action* action);
grpc::ServerWriteReactor<protocol::ActionType>* NewListActions(ServerState& state,
                                                               grpc::CallbackServerContext* ctx);

// security.cc: adds the listening port with the credentials the options ask for (insecure,
// TLS, or mutual TLS). `port` receives the bound port once the server starts.
Status AddListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                        const FlightServerOptions& options, int* port);

// middleware.cc: registers the server interceptors (the middleware chain) on `builder`.
void AddMiddleware(grpc::ServerBuilder& builder, ServerState& state);

}  // namespace bridge::flight
