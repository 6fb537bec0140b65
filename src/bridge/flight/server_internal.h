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
//   commands.cc     the CommandHandler hooks (Flight SQL)
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
#include "bridge/flight/command_handler.h"
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

inline std::string_view View(const grpc::string_ref& s) {
  return std::string_view(s.data(), s.size());
}

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
  std::atomic<int64_t> results_from_cache{0};
  std::atomic<int64_t> results_cached{0};
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

  // A call whose query an action may interrupt: a running DoGet (do_get.cc) or a
  // PollFlightInfo job (plan.cc).
  class Cancellable {
   public:
    virtual ~Cancellable() = default;
    // Interrupts the call's query; the call then ends with CANCELLED. Must not block and
    // must not call back into the registry.
    virtual void CancelQuery() = 0;
  };
  // A registered running query (what `stats` lists and `cancel` looks for).
  struct RunningQuery {
    uint64_t id = 0;
    Cancellable* call = nullptr;  // valid until UnregisterQuery(id) returns
    std::string kind;             // "DoGet" or "PollFlightInfo"
    std::string user;
    std::string sql;
    uint64_t plan_id = 0;
    uint32_t endpoint = 0;
    Clock::time_point started;
  };
  // The registry (actions.cc). Register returns the id to unregister with; a call must
  // unregister before it is destroyed. CancelQueries interrupts the registered calls of plan
  // `plan_id` (only endpoint `endpoint` when given) and returns how many; the calls are
  // interrupted under the registry lock, so none can be destroyed meanwhile.
  uint64_t RegisterQuery(RunningQuery query);
  void UnregisterQuery(uint64_t id);
  int CancelQueries(uint64_t plan_id, std::optional<uint32_t> endpoint);
  int CancelAllQueries();
  std::vector<RunningQuery> RunningQueries() const;
  // CancelFlightInfo marks the plan cancelled: DoGet and RenewFlightEndpoint then refuse its
  // tickets with CANCELLED until they expire. At most kMaxCancelledPlans are remembered
  // (the oldest are forgotten first).
  static constexpr size_t kMaxCancelledPlans = 10000;
  void MarkPlanCancelled(uint64_t plan_id, Clock::time_point until);
  bool PlanCancelled(uint64_t plan_id) const;

  mutable std::mutex queries_mu;
  std::vector<RunningQuery> running_queries;
  uint64_t next_query_id = 0;
  std::deque<std::pair<uint64_t, Clock::time_point>> cancelled_plans;

  // PollFlightInfo jobs (plan.cc), at most kMaxPollJobs at once (running or finished and
  // not yet expired).
  struct PollJob;
  static constexpr size_t kMaxPollJobs = 64;
  std::mutex poll_mu;
  std::vector<std::shared_ptr<PollJob>> poll_jobs;

  // Names of DuckDB functions that are scalar and nothing else, loaded once (plan.cc: which
  // SQL a plan may split).
  mutable std::mutex functions_mu;
  mutable std::optional<std::vector<std::string>> scalar_functions;

  // Counters of plans and of the DoGet message cap.
  mutable std::atomic<int64_t> plans_split{0};  // FlightInfos with several endpoints
  std::atomic<int64_t> batches_sliced{0};       // batches sent as several messages
  std::atomic<int64_t> oversize_messages{0};    // messages above the cap (one row)

  // ---- [ingest] state added by do_put.cc / do_exchange.cc goes here ----

  // Upload counters (FlightStats): data_body bytes received by DoPut / DoExchange, of which
  // copied because gRPC split the message, and rows committed by DoPut.
  std::atomic<int64_t> body_bytes_received{0};
  std::atomic<int64_t> body_bytes_received_copied{0};
  std::atomic<int64_t> rows_ingested{0};
  // Tables being written by a DoPut (case-folded names), so two uploads never race on one.
  std::mutex ingest_tables_mu;
  std::vector<std::string> ingest_tables;
  std::atomic<uint64_t> ingest_part_counter{0};  // names the part files added to folder tables
  // The threads of running uploads (ingest_internal.h), made by the first upload; declared
  // last in this section so that its destructor joins them before the counters go.
  struct IngestThreads;
  std::mutex ingest_threads_mu;
  std::shared_ptr<IngestThreads> ingest_threads;
  // Uploads whose thread has not returned yet (ingest.cc).
  int RunningUploads();

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
// plan.cc: interrupts the PollFlightInfo query whose poll descriptor cmd is `cmd`, if `user`
// started it; returns whether there was one.
bool CancelPollJob(ServerState& state, std::string_view cmd, const std::string& user);

// actions.cc: DoAction and ListActions.
grpc::ServerWriteReactor<protocol::Result>* NewDoAction(ServerState& state,
                                                        grpc::CallbackServerContext* ctx,
                                                        const protocol::Action* action);
grpc::ServerWriteReactor<protocol::ActionType>* NewListActions(ServerState& state,
                                                               grpc::CallbackServerContext* ctx);

// commands.cc: the CommandHandler hooks. HandlerOf returns the handler that claims a CMD
// descriptor, or null. MakeCommandCall describes the call to the handler. CommandFlightInfo
// answers GetFlightInfo (and, by its schema, GetSchema: `schema_only`) for the handler's
// command.
CommandHandler* HandlerOf(const ServerState& state, const protocol::FlightDescriptor& descriptor);
CommandCall MakeCommandCall(grpc::CallbackServerContext* ctx, auth::Principal principal);
Result<protocol::FlightInfo> CommandFlightInfo(ServerState& state, CommandHandler& handler,
                                               grpc::CallbackServerContext* ctx,
                                               const protocol::FlightDescriptor& descriptor,
                                               bool schema_only = false);

// security.cc: adds the listening port with the credentials the options ask for (insecure,
// TLS, or mutual TLS). `port` receives the bound port once the server starts.
Status AddListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                        const FlightServerOptions& options, int* port);

// middleware.cc: registers the server interceptors (the middleware chain) on `builder`.
void AddMiddleware(grpc::ServerBuilder& builder, ServerState& state);

}  // namespace bridge::flight
