// DoExchange: SQL over the uploaded stream (table `input`), the result streamed back.
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewDoExchange(
    ServerState& /*state*/, grpc::CallbackServerContext* /*ctx*/) {
  return new FailedBidi<grpc::ByteBuffer, grpc::ByteBuffer>(
      grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "flight: DoExchange is not implemented yet"));
}

}  // namespace bridge::flight
