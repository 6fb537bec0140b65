// The middleware chain: gRPC server interceptors every call passes.
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

void AddMiddleware(grpc::ServerBuilder& /*builder*/, ServerState& /*state*/) {}

}  // namespace bridge::flight
