// The Flight server's middleware: small objects that see every call (request id, identity,
// access log, per-method metrics). The chain is run by a gRPC server interceptor
// (middleware.cc); a middleware only sees the plain-C++ CallInfo below, never a gRPC type.
//
// Adding a middleware = one class implementing `Middleware` plus one line in
// BuildMiddlewareChain (middleware.cc). Hooks run in chain order on gRPC's threads: they must
// not block (no engine work, no file I/O, no argon2).
//
// Order of hooks for one call: OnStart (the request headers arrived, the handler has not run
// yet), OnResponseHeaders (the response headers are being sent; for a call that fails at
// once, right before OnFinish), OnFinish (the status is being sent; every field is final).
// OnStart always comes first and OnFinish exactly once and last; the hooks of one call never
// run at the same time.
//
// Enforcing authentication stays in the RPC handlers (ServerState::Authorize): gRPC 1.51's
// server interceptors cannot answer a call with a status of their own before the handler
// runs, so the identity middleware only finds out who the caller is, for the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/common/status.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace bridge::auth {
class Authenticator;
}  // namespace bridge::auth

namespace bridge::flight {

// gRPC metadata (lower-case keys) in arrival order.
using Headers = std::vector<std::pair<std::string, std::string>>;

// Returns the value of the first header named `name` (lower case), or "" when absent.
std::string_view FindHeader(const Headers& headers, std::string_view name);

// Returns the canonical name of a gRPC status code ("OK", "INVALID_ARGUMENT", ...), or
// "CODE_<n>" for a number outside the known range.
std::string GrpcCodeName(int code);

// What middleware sees of one call. Filled by the chain (method ... status) and by the
// middleware themselves (request_id, principal, response_headers).
struct CallInfo {
  std::string method;              // short RPC name: "DoGet", "Handshake", ...
  std::string peer;                // gRPC peer, e.g. "ipv4:127.0.0.1:52144"
  std::string client_certificate;  // the client certificate's common name (mutual TLS), or ""
  Headers request_headers;         // the client's metadata
  std::chrono::steady_clock::time_point start;

  // Set by middleware.
  std::string request_id;
  std::string principal;     // the caller's user name; "" = unknown / anonymous
  Headers response_headers;  // added to the response's initial metadata

  // Counted by the chain as messages pass; final in OnFinish.
  int64_t messages_in = 0;
  int64_t messages_out = 0;
  int64_t bytes_in = 0;   // serialized request message bytes
  int64_t bytes_out = 0;  // serialized response message bytes

  // Final in OnFinish.
  int status_code = 0;  // gRPC status code sent (grpc::StatusCode numbering)
  std::string status_message;
  bool cancelled = false;  // the client went away or cancelled (the status never reached it)
  std::chrono::nanoseconds duration{0};
};

// One link of the chain. Thread safety: one instance serves every call of the server at the
// same time, so the hooks must be thread-safe (each call has its own CallInfo).
class Middleware {
 public:
  virtual ~Middleware() = default;
  // The request headers arrived; the handler has not run yet.
  virtual void OnStart(CallInfo& /*call*/) {}
  // The response headers are being sent: `sent` holds every header of the response (the
  // handler's and call.response_headers).
  virtual void OnResponseHeaders(CallInfo& /*call*/, const Headers& /*sent*/) {}
  // The call ends; `call` is final.
  virtual void OnFinish(const CallInfo& /*call*/) {}
};

// The built-in middleware, in chain order.

// Takes the client's `x-request-id` when it is 1..128 characters of [A-Za-z0-9._:-], else
// makes one (32 random hex digits); sets call.request_id and returns it as `x-request-id`.
std::unique_ptr<Middleware> MakeRequestIdMiddleware();

// Finds the caller's user name (call.principal) without enforcing anything: the user of a
// valid `authorization: Bearer` token, else for Handshake the user of the token it issues.
// `authenticator` may be null (= no users); borrowed, must outlive the middleware.
std::unique_ptr<Middleware> MakeIdentityMiddleware(const auth::Authenticator* authenticator);

// Logs one line per call through spdlog's default logger at info level:
//   flight: access method=DoGet code=OK peer=ipv4:127.0.0.1:5 principal=alice
//   request_id=... messages_in=1 messages_out=4 bytes_in=60 bytes_out=80212 duration_ms=3.2
// (plus `cert=CN` under mutual TLS, `cancelled=true` and `error="..."` when they apply).
std::unique_ptr<Middleware> MakeAccessLogMiddleware();

// Prometheus metrics per method, registered in `registry` (borrowed, must outlive the
// middleware):
//   bridge_flight_requests_total{method,code}          calls ended, by status code name
//   bridge_flight_request_duration_seconds{method}     histogram of call durations
//   bridge_flight_request_message_bytes_total{method}  serialized bytes received
//   bridge_flight_response_message_bytes_total{method} serialized bytes sent
//   Returns InvalidArgument when a name is taken in `registry` by a different metric.
Result<std::unique_ptr<Middleware>> MakeMetricsMiddleware(prometheus::Registry& registry);

}  // namespace bridge::flight
