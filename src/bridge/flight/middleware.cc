// The middleware chain: one gRPC server interceptor per call runs the Middleware objects of
// middleware.h at the call's start, response headers and end, and counts its messages.
#include "bridge/flight/middleware.h"

#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>

#include "bridge/common/logging.h"
#include "bridge/flight/server_internal.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/histogram.h"
#include "spdlog/spdlog.h"

namespace bridge::flight {

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

std::string GrpcCodeName(int code) {
  static constexpr std::array<const char*, 17> kNames = {"OK",
                                                         "CANCELLED",
                                                         "UNKNOWN",
                                                         "INVALID_ARGUMENT",
                                                         "DEADLINE_EXCEEDED",
                                                         "NOT_FOUND",
                                                         "ALREADY_EXISTS",
                                                         "PERMISSION_DENIED",
                                                         "RESOURCE_EXHAUSTED",
                                                         "FAILED_PRECONDITION",
                                                         "ABORTED",
                                                         "OUT_OF_RANGE",
                                                         "UNIMPLEMENTED",
                                                         "INTERNAL",
                                                         "UNAVAILABLE",
                                                         "DATA_LOSS",
                                                         "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(kNames.size())) return kNames[code];
  return StrCat("CODE_", code);
}

namespace {

// ---- Request id ----

bool SaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string NewRequestId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::array<unsigned char, 16> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    // OpenSSL's generator failed (it should not): fall back to a process-unique counter.
    static std::atomic<uint64_t> counter{0};
    uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    for (int i = 0; i < 8; ++i) {
      random[i] = static_cast<unsigned char>(t >> (8 * i));
      random[8 + i] = static_cast<unsigned char>(n >> (8 * i));
    }
  }
  std::string id;
  id.reserve(32);
  for (unsigned char b : random) {
    id += kHex[b >> 4];
    id += kHex[b & 0xf];
  }
  return id;
}

class RequestIdMiddleware final : public Middleware {
 public:
  void OnStart(CallInfo& call) override {
    std::string_view given = FindHeader(call.request_headers, "x-request-id");
    call.request_id = SaneRequestId(given) ? std::string(given) : NewRequestId();
    call.response_headers.emplace_back("x-request-id", call.request_id);
  }
};

// ---- Identity ----

class IdentityMiddleware final : public Middleware {
 public:
  explicit IdentityMiddleware(const auth::Authenticator* authenticator) : auth_(authenticator) {}

  void OnStart(CallInfo& call) override {
    if (!enabled()) return;
    std::string_view header = FindHeader(call.request_headers, "authorization");
    if (!StartsWithNoCase(header, "bearer ")) return;
    Result<auth::Principal> principal = auth_->VerifyBearer(header);
    if (principal.ok()) call.principal = principal->user;
  }

  void OnResponseHeaders(CallInfo& call, const Headers& sent) override {
    // A successful Handshake: the caller is the user of the token it was just given.
    if (!enabled() || !call.principal.empty() || call.method != "Handshake") return;
    std::string_view header = FindHeader(sent, "authorization");
    if (!StartsWithNoCase(header, "bearer ")) return;
    Result<auth::Principal> principal = auth_->VerifyBearer(header);
    if (principal.ok()) call.principal = principal->user;
  }

 private:
  bool enabled() const { return auth_ != nullptr && auth_->enabled(); }
  const auth::Authenticator* auth_;
};

// ---- Access log ----

class AccessLogMiddleware final : public Middleware {
 public:
  void OnFinish(const CallInfo& call) override {
    std::string line =
        StrCat("flight: access method=", call.method, " code=", GrpcCodeName(call.status_code),
               " peer=", call.peer.empty() ? "-" : call.peer,
               " principal=", call.principal.empty() ? "-" : call.principal,
               " request_id=", call.request_id.empty() ? "-" : call.request_id,
               " messages_in=", call.messages_in, " messages_out=", call.messages_out,
               " bytes_in=", call.bytes_in, " bytes_out=", call.bytes_out);
    char duration[32];
    std::snprintf(duration, sizeof(duration), "%.3f",
                  std::chrono::duration<double, std::milli>(call.duration).count());
    line += StrCat(" duration_ms=", duration);
    if (!call.client_certificate.empty()) line += StrCat(" cert=", call.client_certificate);
    if (call.cancelled) line += StrCat(" cancelled=true");
    if (call.status_code != 0 && !call.status_message.empty()) {
      std::string_view message = call.status_message;
      if (message.size() > 300) message = message.substr(0, 300);
      line += StrCat(" error=\"", JsonEscape(message), "\"");
    }
    spdlog::info("{}", line);
  }
};

// ---- Metrics ----

const std::vector<double>& LatencyBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};
  return *buckets;
}

class MetricsMiddleware final : public Middleware {
 public:
  explicit MetricsMiddleware(prometheus::Registry& registry)
      : requests_(prometheus::BuildCounter()
                      .Name("bridge_flight_requests_total")
                      .Help("Flight calls ended, by method and gRPC status code.")
                      .Register(registry)),
        durations_(prometheus::BuildHistogram()
                       .Name("bridge_flight_request_duration_seconds")
                       .Help("Time from a Flight call's arrival to its status, by method.")
                       .Register(registry)),
        bytes_in_(prometheus::BuildCounter()
                      .Name("bridge_flight_request_message_bytes_total")
                      .Help("Serialized request message bytes received, by method.")
                      .Register(registry)),
        bytes_out_(prometheus::BuildCounter()
                       .Name("bridge_flight_response_message_bytes_total")
                       .Help("Serialized response message bytes sent, by method.")
                       .Register(registry)) {}

  void OnFinish(const CallInfo& call) override {
    requests_.Add({{"method", call.method}, {"code", GrpcCodeName(call.status_code)}}).Increment();
    durations_.Add({{"method", call.method}}, LatencyBuckets())
        .Observe(std::chrono::duration<double>(call.duration).count());
    bytes_in_.Add({{"method", call.method}}).Increment(static_cast<double>(call.bytes_in));
    bytes_out_.Add({{"method", call.method}}).Increment(static_cast<double>(call.bytes_out));
  }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& bytes_in_;
  prometheus::Family<prometheus::Counter>& bytes_out_;
};

// ---- The interceptor that runs the chain ----

using Chain = std::vector<std::unique_ptr<Middleware>>;

// How a method's request messages reach the interceptor: raw ByteBuffers or one generated
// protobuf type (needed to measure them: gRPC hands over the deserialized message).
enum class RequestKind { kUnknown, kRaw, kHandshake, kCriteria, kDescriptor, kAction, kEmpty };

RequestKind KindOf(std::string_view method) {
  if (method == "DoGet" || method == "DoPut" || method == "DoExchange") return RequestKind::kRaw;
  if (method == "Handshake") return RequestKind::kHandshake;
  if (method == "ListFlights") return RequestKind::kCriteria;
  if (method == "GetFlightInfo" || method == "PollFlightInfo" || method == "GetSchema") {
    return RequestKind::kDescriptor;
  }
  if (method == "DoAction") return RequestKind::kAction;
  if (method == "ListActions") return RequestKind::kEmpty;
  return RequestKind::kUnknown;
}

int64_t RequestBytes(RequestKind kind, const void* message) {
  switch (kind) {
    case RequestKind::kRaw:
      return static_cast<int64_t>(static_cast<const grpc::ByteBuffer*>(message)->Length());
    case RequestKind::kHandshake:
      return static_cast<int64_t>(
          static_cast<const protocol::HandshakeRequest*>(message)->ByteSizeLong());
    case RequestKind::kCriteria:
      return static_cast<int64_t>(static_cast<const protocol::Criteria*>(message)->ByteSizeLong());
    case RequestKind::kDescriptor:
      return static_cast<int64_t>(
          static_cast<const protocol::FlightDescriptor*>(message)->ByteSizeLong());
    case RequestKind::kAction:
      return static_cast<int64_t>(static_cast<const protocol::Action*>(message)->ByteSizeLong());
    case RequestKind::kEmpty:
      return static_cast<int64_t>(static_cast<const protocol::Empty*>(message)->ByteSizeLong());
    case RequestKind::kUnknown:
      break;
  }
  return 0;
}

Headers CopyHeaders(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  Headers headers;
  headers.reserve(metadata.size());
  for (const auto& [key, value] : metadata) {
    headers.emplace_back(std::string(key.data(), key.size()),
                         std::string(value.data(), value.size()));
  }
  return headers;
}

// One per call, created and owned by gRPC (it lives as long as the call's ServerRpcInfo).
// gRPC may intercept a call's receive and send batches on different threads at once, so the
// hooks take `mu_`.
class ChainInterceptor final : public grpc::experimental::Interceptor {
 public:
  ChainInterceptor(const Chain& chain, grpc::experimental::ServerRpcInfo* info)
      : chain_(chain), info_(info) {
    std::string_view method = info->method() != nullptr ? info->method() : "";
    size_t slash = method.rfind('/');
    call_.method = std::string(slash == std::string_view::npos ? method : method.substr(slash + 1));
    kind_ = KindOf(call_.method);
    call_.start = std::chrono::steady_clock::now();
  }

  ~ChainInterceptor() override {
    // A call torn down without sending a status (it should not happen: every reactor
    // finishes) is still logged and counted.
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_) {
      Start(nullptr);
      call_.cancelled = true;
      End(grpc::Status(grpc::StatusCode::CANCELLED, "the call ended without a status"),
          /*ask_context=*/false);
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) {
        Start(methods->GetRecvInitialMetadata());
      }
      if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE)) {
        if (const void* message = methods->GetRecvMessage(); message != nullptr) {
          ++call_.messages_in;
          call_.bytes_in += RequestBytes(kind_, message);
        }
      }
      if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_INITIAL_METADATA)) {
        SendHeaders(methods->GetSendInitialMetadata());
      }
      if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_MESSAGE)) {
        // The serialized form the call sends anyway (for the raw methods it shares the
        // slices of our ByteBuffer: nothing is copied).
        const grpc::ByteBuffer* sent = methods->GetSerializedSendMessage();
        ++call_.messages_out;
        if (sent != nullptr) call_.bytes_out += static_cast<int64_t>(sent->Length());
      }
      if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS) && !finished_) {
        End(methods->GetSendStatus(), /*ask_context=*/true);
      }
    }
    methods->Proceed();
  }

 private:
  void Start(std::multimap<grpc::string_ref, grpc::string_ref>* metadata) {
    if (started_) return;
    started_ = true;
    if (metadata != nullptr) {
      call_.request_headers = CopyHeaders(*metadata);
      grpc::ServerContextBase* ctx = info_->server_context();
      call_.peer = ctx->peer();
      std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
      if (auth != nullptr && auth->IsPeerAuthenticated()) {
        std::vector<grpc::string_ref> names = auth->FindPropertyValues("x509_common_name");
        if (!names.empty()) call_.client_certificate.assign(names[0].data(), names[0].size());
      }
    }
    for (const auto& middleware : chain_) middleware->OnStart(call_);
  }

  void SendHeaders(std::multimap<std::string, std::string>* metadata) {
    if (headers_sent_) return;
    headers_sent_ = true;
    Start(nullptr);
    Headers sent;
    if (metadata != nullptr) {
      for (const auto& [key, value] : call_.response_headers) metadata->emplace(key, value);
      sent.assign(metadata->begin(), metadata->end());
    }
    for (const auto& middleware : chain_) middleware->OnResponseHeaders(call_, sent);
  }

  void End(const grpc::Status& status, bool ask_context) {
    finished_ = true;
    Start(nullptr);
    if (!headers_sent_) {
      headers_sent_ = true;
      for (const auto& middleware : chain_) middleware->OnResponseHeaders(call_, Headers());
    }
    call_.status_code = static_cast<int>(status.error_code());
    call_.status_message = status.error_message();
    if (ask_context && info_->server_context()->IsCancelled()) call_.cancelled = true;
    call_.duration = std::chrono::steady_clock::now() - call_.start;
    for (const auto& middleware : chain_) middleware->OnFinish(call_);
  }

  const Chain& chain_;
  grpc::experimental::ServerRpcInfo* info_;  // owns this interceptor
  RequestKind kind_ = RequestKind::kUnknown;
  std::mutex mu_;
  CallInfo call_;
  bool started_ = false;
  bool headers_sent_ = false;
  bool finished_ = false;
};

// Owned by the grpc::Server, so the chain outlives every call's interceptor.
class ChainFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ChainFactory(Chain chain) : chain_(std::move(chain)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new ChainInterceptor(chain_, info);
  }

 private:
  const Chain chain_;
};

}  // namespace

std::unique_ptr<Middleware> MakeRequestIdMiddleware() {
  return std::make_unique<RequestIdMiddleware>();
}

std::unique_ptr<Middleware> MakeIdentityMiddleware(const auth::Authenticator* authenticator) {
  return std::make_unique<IdentityMiddleware>(authenticator);
}

std::unique_ptr<Middleware> MakeAccessLogMiddleware() {
  return std::make_unique<AccessLogMiddleware>();
}

Result<std::unique_ptr<Middleware>> MakeMetricsMiddleware(prometheus::Registry& registry) {
  // prometheus-cpp throws when a name is already registered with another type or help.
  try {
    return std::unique_ptr<Middleware>(std::make_unique<MetricsMiddleware>(registry));
  } catch (const std::exception& e) {
    return InvalidArgument("flight: cannot register the per-method metrics: ", e.what());
  }
}

void AddMiddleware(grpc::ServerBuilder& builder, ServerState& state) {
  Chain chain;
  chain.push_back(MakeRequestIdMiddleware());
  chain.push_back(MakeIdentityMiddleware(state.services.auth));
  if (state.services.registry != nullptr) {
    Result<std::unique_ptr<Middleware>> metrics = MakeMetricsMiddleware(*state.services.registry);
    if (metrics.ok()) {
      chain.push_back(std::move(metrics).value());
    } else {
      spdlog::warn("{}", std::string(metrics.status().message()));
    }
  }
  chain.push_back(MakeAccessLogMiddleware());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<ChainFactory>(std::move(chain)));
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

}  // namespace bridge::flight
