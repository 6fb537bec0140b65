// DoAction and ListActions.
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

grpc::ServerWriteReactor<protocol::Result>* NewDoAction(ServerState& /*state*/,
                                                        grpc::CallbackServerContext* /*ctx*/,
                                                        const protocol::Action* action) {
  return new FailedWrite<protocol::Result>(grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED, "flight: unknown action '" + action->type() + "'"));
}

grpc::ServerWriteReactor<protocol::ActionType>* NewListActions(
    ServerState& /*state*/, grpc::CallbackServerContext* /*ctx*/) {
  return new FailedWrite<protocol::ActionType>(
      grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "flight: ListActions is not implemented yet"));
}

}  // namespace bridge::flight
