// The listening port's credentials.
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

Status AddListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                        const FlightServerOptions& /*options*/, int* port) {
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  return OkStatus();
}

}  // namespace bridge::flight
