// The CommandHandler hooks (command_handler.h): FlightInfo of a handler's command.
#include "bridge/flight/command_handler.h"
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

CommandHandler* HandlerOf(const ServerState& state, const protocol::FlightDescriptor& descriptor) {
  CommandHandler* handler = state.services.commands;
  if (handler == nullptr || descriptor.type() != protocol::FlightDescriptor::CMD ||
      !handler->HandlesCommand(descriptor.cmd())) {
    return nullptr;
  }
  return handler;
}

CommandCall MakeCommandCall(grpc::CallbackServerContext* ctx, auth::Principal principal) {
  CommandCall call;
  call.principal = std::move(principal);
  // Every `cookie` header, joined as one Cookie line: clients may send each cookie apart.
  auto range = ctx->client_metadata().equal_range("cookie");
  for (auto it = range.first; it != range.second; ++it) {
    if (!call.cookie.empty()) call.cookie += "; ";
    call.cookie.append(it->second.data(), it->second.size());
  }
  call.add_header = [ctx](const std::string& name, const std::string& value) {
    ctx->AddInitialMetadata(name, value);
  };
  return call;
}

Result<protocol::FlightInfo> CommandFlightInfo(ServerState& state, CommandHandler& handler,
                                               grpc::CallbackServerContext* ctx,
                                               const protocol::FlightDescriptor& descriptor,
                                               bool schema_only) {
  BRIDGE_ASSIGN_OR_RETURN(auth::Principal principal, state.Authorize(*ctx));
  CommandCall call = MakeCommandCall(ctx, principal);
  call.schema_only = schema_only;
  BRIDGE_ASSIGN_OR_RETURN(CommandPlan plan, handler.Plan(descriptor.cmd(), call));
  protocol::FlightInfo info;
  if (!plan.sql.empty()) {
    BRIDGE_ASSIGN_OR_RETURN(auto session, state.services.db->Connect());
    protocol::FlightDescriptor sql;
    sql.set_type(protocol::FlightDescriptor::CMD);
    sql.set_cmd(plan.sql);
    BRIDGE_ASSIGN_OR_RETURN(Plan planned, state.PlanDescriptor(sql, *session));
    info = state.MakeFlightInfo(sql, std::move(planned));
    for (protocol::FlightEndpoint& endpoint : *info.mutable_endpoint()) {
      endpoint.mutable_ticket()->set_ticket(handler.WrapTicket(endpoint.ticket().ticket()));
    }
  } else {
    info.set_schema(std::move(plan.schema_message));
    for (std::string& ticket : plan.tickets) {
      info.add_endpoint()->mutable_ticket()->set_ticket(std::move(ticket));
    }
    info.set_total_bytes(-1);
    info.set_ordered(true);
  }
  *info.mutable_flight_descriptor() = descriptor;
  if (plan.total_records >= 0 || plan.sql.empty()) info.set_total_records(plan.total_records);
  return info;
}

}  // namespace bridge::flight
