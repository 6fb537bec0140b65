// DoPut: an uploaded Arrow stream ingested into a table (atomic Parquet in the data folder).
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewDoPut(
    ServerState& /*state*/, grpc::CallbackServerContext* /*ctx*/) {
  return new FailedBidi<grpc::ByteBuffer, grpc::ByteBuffer>(
      grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "flight: DoPut is not implemented yet"));
}

}  // namespace bridge::flight
