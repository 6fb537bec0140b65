// DoAction and ListActions, and the registry of running queries that `cancel`,
// CancelFlightInfo and `stats` use.
#include <nlohmann/json.hpp>

#include "bridge/cache/cache.h"
#include "bridge/flight/server_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::flight {

// ---- The registry of running queries ----

uint64_t ServerState::RegisterQuery(RunningQuery query) {
  std::lock_guard<std::mutex> lock(queries_mu);
  query.id = ++next_query_id;
  running_queries.push_back(std::move(query));
  return next_query_id;
}

void ServerState::UnregisterQuery(uint64_t id) {
  std::lock_guard<std::mutex> lock(queries_mu);
  std::erase_if(running_queries, [id](const RunningQuery& q) { return q.id == id; });
}

int ServerState::CancelQueries(uint64_t plan_id, std::optional<uint32_t> endpoint) {
  std::lock_guard<std::mutex> lock(queries_mu);
  int cancelled = 0;
  for (const RunningQuery& q : running_queries) {
    if (q.plan_id != plan_id || q.plan_id == 0) continue;
    if (endpoint && q.endpoint != *endpoint) continue;
    q.call->CancelQuery();
    ++cancelled;
  }
  return cancelled;
}

int ServerState::CancelAllQueries() {
  std::lock_guard<std::mutex> lock(queries_mu);
  for (const RunningQuery& q : running_queries) q.call->CancelQuery();
  return static_cast<int>(running_queries.size());
}

std::vector<ServerState::RunningQuery> ServerState::RunningQueries() const {
  std::lock_guard<std::mutex> lock(queries_mu);
  return running_queries;
}

void ServerState::MarkPlanCancelled(uint64_t plan_id, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(queries_mu);
  auto now = Clock::now();
  while (!cancelled_plans.empty() &&
         (cancelled_plans.front().second <= now || cancelled_plans.size() >= kMaxCancelledPlans)) {
    cancelled_plans.pop_front();
  }
  cancelled_plans.emplace_back(plan_id, until);
}

bool ServerState::PlanCancelled(uint64_t plan_id) const {
  std::lock_guard<std::mutex> lock(queries_mu);
  auto now = Clock::now();
  for (const auto& [id, until] : cancelled_plans) {
    if (id == plan_id && until > now) return true;
  }
  return false;
}

namespace {

using Json = nlohmann::json;

struct ActionInfo {
  const char* type;
  const char* description;
};

constexpr ActionInfo kActions[] = {
    {"refresh",
     "Rescans the data folder now. Body: empty. Result: JSON {\"version\": catalog version, "
     "\"changes\": [{\"kind\", \"table\", \"version\", \"error\"}]}. Needs the ingest or admin "
     "permission when authentication is on."},
    {"cancel",
     "Interrupts the running DoGet calls of a ticket (they end with CANCELLED). Body: the "
     "ticket bytes (Ticket.ticket). Result: JSON {\"cancelled\": calls interrupted}."},
    {"CancelFlightInfo",
     "Standard: cancels every endpoint of a FlightInfo (running DoGets are interrupted, later "
     "DoGets of its tickets fail with CANCELLED); a PollFlightInfo descriptor as the info's "
     "descriptor cancels that query. Body: CancelFlightInfoRequest. Result: "
     "CancelFlightInfoResult."},
    {"RenewFlightEndpoint",
     "Standard: re-signs an endpoint's ticket with a new expiration time (now + ticket TTL). "
     "Body: RenewFlightEndpointRequest. Result: the renewed FlightEndpoint."},
    {"health",
     "Body: empty. Result: JSON {\"status\": \"ok\", \"duckdb\", \"tables\", "
     "\"broken_tables\", \"catalog_version\"}."},
    {"stats",
     "Body: empty. Result: JSON of the server's FlightStats counters, plan counters and the "
     "running queries (the SQL only of the caller's own queries, or all with admin)."},
    {"cache-clear",
     "Deletes every entry of the result cache (readers that have one open finish with it). "
     "Body: empty. Result: JSON {\"removed\": entries deleted}. Needs the admin permission when "
     "authentication is on; FAILED_PRECONDITION when the server has no result cache."},
};

int64_t UnixSeconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// `principal` is the one Authorize returned: without authentication, anonymous with every
// permission, so the checks below hold only when authentication is on.
Result<std::string> Refresh(ServerState& state, const auth::Principal& principal) {
  if (!principal.Has(auth::kIngest) && !principal.Has(auth::kAdmin)) {
    return PermissionDenied("flight: user '", principal.user,
                            "' lacks the ingest or admin permission that refresh needs");
  }
  BRIDGE_ASSIGN_OR_RETURN(std::vector<catalog::TableChange> changes,
                          state.services.catalog->Refresh());
  Json out = {{"version", state.services.catalog->version()}, {"changes", Json::array()}};
  for (const catalog::TableChange& change : changes) {
    out["changes"].push_back({{"kind", std::string(catalog::ChangeKindName(change.kind))},
                              {"table", change.name},
                              {"version", change.version},
                              {"error", change.error}});
  }
  return out.dump();
}

Result<std::string> Cancel(ServerState& state, const std::string& body) {
  Result<TicketContents> ticket = state.signer.Verify(body);
  if (!ticket.ok()) {
    // Also accept a serialized Ticket message.
    protocol::Ticket message;
    if (message.ParseFromString(body)) {
      Result<TicketContents> inner = state.signer.Verify(message.ticket());
      if (inner.ok()) ticket = std::move(inner);
    }
  }
  if (!ticket.ok()) return ticket.status();
  int cancelled = state.CancelQueries(ticket->plan_id, ticket->endpoint);
  return Json{{"cancelled", cancelled}}.dump();
}

Result<std::string> CancelFlightInfo(ServerState& state, const auth::Principal& principal,
                                     const std::string& body) {
  protocol::CancelFlightInfoRequest request;
  if (!request.ParseFromString(body)) {
    return InvalidArgument("flight: CancelFlightInfo body is not a CancelFlightInfoRequest");
  }
  const protocol::FlightInfo& info = request.info();
  bool found = false;
  // A PollFlightInfo query still running.
  const protocol::FlightDescriptor& descriptor = info.flight_descriptor();
  if (descriptor.type() == protocol::FlightDescriptor::CMD &&
      CancelPollJob(state, descriptor.cmd(), principal.user)) {
    found = true;
  }
  std::vector<TicketContents> tickets;
  std::vector<uint64_t> own_keys;  // of the handler's own tickets
  const CommandHandler* handler = state.services.commands;
  for (const protocol::FlightEndpoint& endpoint : info.endpoint()) {
    std::string raw = endpoint.ticket().ticket();
    if (handler != nullptr && handler->HandlesTicket(raw)) {
      std::optional<std::string> inner = handler->UnwrapTicket(raw);
      if (!inner) {
        // The handler's own ticket: cancellable when it has a key (e.g. a Flight SQL
        // prepared statement's parameter row); a metadata result is not.
        if (const uint64_t key = handler->CancelKey(raw); key != 0) own_keys.push_back(key);
        continue;
      }
      raw = std::move(*inner);
    }
    BRIDGE_ASSIGN_OR_RETURN(TicketContents ticket, state.signer.Verify(raw));
    tickets.push_back(std::move(ticket));
  }
  for (const TicketContents& ticket : tickets) {
    // Remembered until the ticket could have been renewed to the longest.
    state.MarkPlanCancelled(ticket.plan_id, ticket.expires + state.options.ticket_ttl);
    state.CancelQueries(ticket.plan_id, ticket.endpoint);
    found = true;
  }
  for (const uint64_t key : own_keys) {
    // The handler's tickets do not expire; its keys are per FlightInfo, so a ticket ttl is
    // long enough for a client to give up on it.
    state.MarkPlanCancelled(key, Clock::now() + state.options.ticket_ttl);
    state.CancelQueries(key, std::nullopt);
    found = true;
  }
  protocol::CancelFlightInfoResult result;
  result.set_status(found ? protocol::CANCEL_STATUS_CANCELLED
                          : protocol::CANCEL_STATUS_NOT_CANCELLABLE);
  return result.SerializeAsString();
}

Result<std::string> Renew(ServerState& state, const std::string& body) {
  protocol::RenewFlightEndpointRequest request;
  if (!request.ParseFromString(body)) {
    return InvalidArgument("flight: RenewFlightEndpoint body is not a RenewFlightEndpointRequest");
  }
  // A ticket a CommandHandler wrapped (a Flight SQL statement's) is renewed inside its
  // wrapping; the handler's own tickets (metadata results) do not expire.
  std::string raw = request.endpoint().ticket().ticket();
  const CommandHandler* handler = state.services.commands;
  const bool wrapped = handler != nullptr && handler->HandlesTicket(raw);
  if (wrapped) {
    std::optional<std::string> inner = handler->UnwrapTicket(raw);
    if (!inner) return request.endpoint().SerializeAsString();
    raw = std::move(*inner);
  }
  BRIDGE_ASSIGN_OR_RETURN(TicketContents ticket, state.signer.Verify(raw));
  if (state.PlanCancelled(ticket.plan_id)) {
    return Cancelled("flight: the FlightInfo of this endpoint was cancelled");
  }
  int64_t expiry = UnixSeconds(Clock::now() + state.options.ticket_ttl);
  ticket.expires = Clock::time_point(std::chrono::seconds(expiry));
  protocol::FlightEndpoint renewed = request.endpoint();
  std::string signed_ticket = state.signer.Sign(ticket);
  renewed.mutable_ticket()->set_ticket(wrapped ? handler->WrapTicket(signed_ticket)
                                               : std::move(signed_ticket));
  renewed.mutable_expiration_time()->set_seconds(expiry);
  renewed.mutable_expiration_time()->set_nanos(0);
  return renewed.SerializeAsString();
}

Result<std::string> ClearCache(ServerState& state, const auth::Principal& principal) {
  if (!principal.Has(auth::kAdmin)) {
    return PermissionDenied("flight: user '", principal.user,
                            "' lacks the admin permission that cache-clear needs");
  }
  if (state.services.cache == nullptr) {
    return FailedPrecondition("flight: the result cache is off on this server");
  }
  const int64_t removed = state.services.cache->Clear();
  spdlog::info("flight: {} cached results deleted on request of '{}'", removed, principal.user);
  return Json{{"removed", removed}}.dump();
}

std::string Health(ServerState& state) {
  std::vector<catalog::TableInfo> tables = state.services.catalog->Tables();
  int64_t broken = 0;
  for (const auto& t : tables) broken += t.error.empty() ? 0 : 1;
  return Json{{"status", "ok"},
              {"duckdb", engine::DuckDBVersion()},
              {"tables", tables.size()},
              {"broken_tables", broken},
              {"catalog_version", state.services.catalog->version()}}
      .dump();
}

std::string Stats(ServerState& state, const auth::Principal& principal) {
  Json running = Json::array();
  auto now = Clock::now();
  for (const ServerState::RunningQuery& q : state.RunningQueries()) {
    Json entry = {{"kind", q.kind},
                  {"user", q.user},
                  {"plan_id", q.plan_id},
                  {"endpoint", q.endpoint},
                  {"seconds", std::chrono::duration<double>(now - q.started).count()}};
    if (q.user == principal.user || principal.Has(auth::kAdmin)) entry["sql"] = q.sql;
    running.push_back(std::move(entry));
  }
  size_t poll_jobs = 0;
  {
    std::lock_guard<std::mutex> lock(state.poll_mu);
    poll_jobs = state.poll_jobs.size();
  }
  return Json{{"flight_data_sent", state.flight_data_sent.load()},
              {"body_bytes_sent", state.body_bytes_sent.load()},
              {"body_bytes_copied", state.body_bytes_copied.load()},
              {"keepalives_sent", state.keepalives_sent.load()},
              {"plans_split", state.plans_split.load()},
              {"batches_sliced", state.batches_sliced.load()},
              {"oversize_messages", state.oversize_messages.load()},
              {"poll_jobs", poll_jobs},
              {"running_queries", std::move(running)}}
      .dump();
}

Result<std::optional<std::string>> RunAction(ServerState& state, grpc::CallbackServerContext* ctx,
                                             const protocol::Action& action) {
  BRIDGE_ASSIGN_OR_RETURN(auth::Principal principal, state.Authorize(*ctx));
  const std::string& type = action.type();
  CommandHandler* handler = state.services.commands;
  if (handler != nullptr && handler->HandlesAction(type)) {
    return handler->DoAction(type, action.body(), MakeCommandCall(ctx, std::move(principal)));
  }
  if (type == "refresh") return Refresh(state, principal);
  if (type == "cancel") return Cancel(state, action.body());
  if (type == "CancelFlightInfo") return CancelFlightInfo(state, principal, action.body());
  if (type == "RenewFlightEndpoint") return Renew(state, action.body());
  if (type == "health") return Health(state);
  if (type == "stats") return Stats(state, principal);
  if (type == "cache-clear") return ClearCache(state, principal);
  return Unimplemented("flight: unknown action '", type, "'; see ListActions");
}

// Writes one Result (the action's answer) computed on the pool.
class ActionReactor final : public grpc::ServerWriteReactor<protocol::Result> {
 public:
  ActionReactor(ServerState& state, grpc::CallbackServerContext* ctx,
                const protocol::Action* action) {
    state.pool.Post([this, &state, ctx, action] {
      Result<std::optional<std::string>> body = RunAction(state, ctx, *action);
      if (!body.ok()) {
        Finish(ToGrpcStatus(body.status()));
        return;
      }
      if (!body->has_value()) {
        Finish(grpc::Status::OK);  // an action that answers no Result
        return;
      }
      result_.set_body(std::move(**body));
      StartWriteAndFinish(&result_, grpc::WriteOptions(), grpc::Status::OK);
    });
  }
  void OnDone() override { delete this; }

 private:
  protocol::Result result_;
};

// Writes the action types one after the other.
class ListActionsReactor final : public grpc::ServerWriteReactor<protocol::ActionType> {
 public:
  // `extra`: a CommandHandler's actions, listed after the server's.
  ListActionsReactor(Status authorized, std::vector<std::pair<std::string, std::string>> extra)
      : extra_(std::move(extra)) {
    if (!authorized.ok()) {
      Finish(ToGrpcStatus(authorized));
      return;
    }
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "flight: the client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == std::size(kActions) + extra_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    if (next_ < std::size(kActions)) {
      type_.set_type(kActions[next_].type);
      type_.set_description(kActions[next_].description);
    } else {
      type_.set_type(extra_[next_ - std::size(kActions)].first);
      type_.set_description(extra_[next_ - std::size(kActions)].second);
    }
    ++next_;
    StartWrite(&type_);
  }
  protocol::ActionType type_;
  size_t next_ = 0;
  std::vector<std::pair<std::string, std::string>> extra_;
};

}  // namespace

grpc::ServerWriteReactor<protocol::Result>* NewDoAction(ServerState& state,
                                                        grpc::CallbackServerContext* ctx,
                                                        const protocol::Action* action) {
  return new ActionReactor(state, ctx, action);
}

grpc::ServerWriteReactor<protocol::ActionType>* NewListActions(ServerState& state,
                                                               grpc::CallbackServerContext* ctx) {
  // Checking a bearer token does not block (no argon2), so it runs here.
  const CommandHandler* handler = state.services.commands;
  return new ListActionsReactor(state.Authorize(*ctx).status(),
                                handler == nullptr
                                    ? std::vector<std::pair<std::string, std::string>>()
                                    : handler->ActionTypes());
}

}  // namespace bridge::flight
