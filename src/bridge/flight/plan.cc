// Plans: what a descriptor means (ServerState::PlanDescriptor), the FlightInfo handed out
// for it (ServerState::MakeFlightInfo), and PollFlightInfo.
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

using Clock = std::chrono::system_clock;

Result<Plan> ServerState::PlanDescriptor(const protocol::FlightDescriptor& descriptor,
                                       engine::Session& session) const {
  Plan plan;
  switch (descriptor.type()) {
    case protocol::FlightDescriptor::PATH: {
      if (descriptor.path_size() != 1) {
        return InvalidArgument("flight: a PATH descriptor names one table, got ",
                               descriptor.path_size(), " path elements");
      }
      const std::string& name = descriptor.path(0);
      std::optional<catalog::TableInfo> table = services.catalog->Table(name);
      if (!table) return NotFound("flight: no table '", name, "'");
      if (!table->error.empty()) {
        return FailedPrecondition("flight: table '", table->name, "' is broken: ", table->error);
      }
      plan.sql = StrCat("SELECT * FROM ", engine::QuoteIdentifier(table->name));
      if (table->format == "parquet" && table->rows) plan.total_records = *table->rows;
      break;
    }
    case protocol::FlightDescriptor::CMD:
      plan.sql = descriptor.cmd();
      if (plan.sql.empty()) return InvalidArgument("flight: a CMD descriptor needs SQL text");
      break;
    default:
      return InvalidArgument("flight: descriptor type must be PATH or CMD");
  }
  BRIDGE_ASSIGN_OR_RETURN(auto prepared, session.Prepare(plan.sql));
  if (prepared->parameter_count() != 0) {
    return InvalidArgument("flight: the query takes ", prepared->parameter_count(),
                           " parameters; Flight commands cannot bind parameters");
  }
  BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedSchema schema, prepared->ResultSchema());
  BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage message, ipc::EncodeSchemaMessage(*schema));
  plan.schema_message = std::move(message.metadata);
  return plan;
}

protocol::FlightInfo ServerState::MakeFlightInfo(const protocol::FlightDescriptor& descriptor,
                                                 Plan plan) const {
  protocol::FlightInfo info;
  info.set_schema(std::move(plan.schema_message));
  *info.mutable_flight_descriptor() = descriptor;
  int64_t expiry_seconds = std::chrono::duration_cast<std::chrono::seconds>(
                               (Clock::now() + options.ticket_ttl).time_since_epoch())
                               .count();
  TicketContents ticket{std::move(plan.sql),
                        Clock::time_point(std::chrono::seconds(expiry_seconds))};
  protocol::FlightEndpoint* endpoint = info.add_endpoint();
  endpoint->mutable_ticket()->set_ticket(signer.Sign(ticket));
  endpoint->mutable_expiration_time()->set_seconds(expiry_seconds);
  info.set_total_records(plan.total_records);
  info.set_total_bytes(-1);
  info.set_ordered(true);
  return info;
}

grpc::ServerUnaryReactor* NewPollFlightInfo(ServerState& /*state*/, grpc::CallbackServerContext* ctx,
                                            const protocol::FlightDescriptor* /*descriptor*/,
                                            protocol::PollInfo* /*info*/) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               "flight: PollFlightInfo is not implemented yet"));
  return reactor;
}

}  // namespace bridge::flight
