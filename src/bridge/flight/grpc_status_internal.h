// Status -> gRPC status: the one place where Bridge errors become gRPC codes.
// Private to src/bridge/flight.
#pragma once

#include "bridge/common/status.h"
#include "grpcpp/support/status.h"

namespace bridge::flight {

// Returns the gRPC status of `status`, with the same message: InvalidArgument,
// Unauthenticated, PermissionDenied, NotFound, AlreadyExists, FailedPrecondition,
// ResourceExhausted, Cancelled, DeadlineExceeded and Unimplemented keep their codes; OK is
// OK; everything else (Internal, IoError, Unknown, ...) becomes INTERNAL.
grpc::Status ToGrpcStatus(const Status& status);

}  // namespace bridge::flight
