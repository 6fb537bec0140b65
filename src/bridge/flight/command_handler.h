// An extension point of the Flight server: a CommandHandler serves the commands, tickets and
// actions of a protocol layered on Flight (Arrow Flight SQL, src/bridge/flightsql) while the
// server keeps authentication, middleware, tickets, the zero-copy DoGet and the atomic ingest.
//
// The server consults the handler (Services::commands) in GetFlightInfo and GetSchema (CMD
// descriptors it claims), DoGet (tickets it claims), DoPut (a first message whose descriptor is
// a CMD it claims), DoAction (action types it claims) and ListActions. Everything else is
// served as before. No gRPC or protobuf type appears here: commands, tickets and bodies are
// the serialized bytes.
//
// Thread safety: the server calls a handler from several threads at once. Lifetime: borrowed
// by the server; it must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/auth/auth.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace bridge::flight {

// The call a handler method serves.
struct CommandCall {
  auth::Principal principal;  // already authorized for reading
  std::string cookie;         // the request's `cookie` header ("" when absent)
  // Adds a response header (e.g. `set-cookie`); only before the method returns.
  std::function<void(const std::string& name, const std::string& value)> add_header;
  // Plan: the call is GetSchema (only CommandPlan's schema is used).
  bool schema_only = false;
};

// What GetFlightInfo / GetSchema answer for a command: either SQL, planned by the server like
// a CMD descriptor (schema, one or more endpoints, signed tickets, each passed through
// CommandHandler::WrapTicket), or a result of the handler's own (its schema and one endpoint
// per ticket).
struct CommandPlan {
  std::string sql;             // non-empty = planned as SQL
  std::string schema_message;  // own result: an encapsulated IPC Schema message
  std::vector<std::string> tickets;
  int64_t total_records = -1;
};

// Opens a DoGet's stream on the call's own engine session (cancelling the call, a `cancel`
// action or the deadline interrupts that session). The stream must not outlive the session.
using OpenStream = std::function<Result<std::unique_ptr<engine::BatchStream>>(
    engine::Session& session, const engine::QueryOptions& options)>;

// A ticket of the handler's own, resolved for DoGet: either a query the server runs as it
// runs a signed ticket's (`sql` with `params` bound: prepared, schema sent at once, executed
// on the first fetch with keep-alives meanwhile, through the result cache), or a stream the
// handler opens itself (`open`, e.g. a metadata result computed in memory).
struct CommandTicket {
  std::string sql;
  std::vector<engine::Value> params;
  OpenStream open;          // used when `sql` is empty
  std::string description;  // what `stats` shows as the call's SQL (`sql` when empty)
  // Non-zero: the call is registered under this plan id, so a CancelFlightInfo naming a
  // ticket whose CommandHandler::CancelKey is the same interrupts it, and refuses later
  // DoGets of such tickets with CANCELLED. Should be random and unguessable.
  uint64_t cancel_key = 0;
};

// What DoPut does with an upload whose descriptor is one of the handler's commands.
struct PutPlan {
  enum class Kind {
    kIngest,   // written into `table` like a DoPut of PATH [table] (needs the ingest permission)
    kConsume,  // read by `consume`
  };
  enum class Mode { kCreate, kAppend, kReplace };  // as DoPut's "create" / "append" / "replace"
  Kind kind = Kind::kIngest;
  std::string table;
  Mode mode = Mode::kCreate;
  // kIngest: the app_metadata of the last PutResult, given the rows committed.
  std::function<std::string(int64_t rows)> ingested;
  // kConsume: reads the upload (batches of its schema) and returns the app_metadata of the
  // one PutResult.
  std::function<Result<std::string>(engine::BatchStream& upload)> consume;
};

class CommandHandler {
 public:
  virtual ~CommandHandler() = default;

  // Whether the bytes are the handler's: a FlightDescriptor.cmd, a Ticket.ticket, an
  // Action.type. Cheap and non-blocking.
  virtual bool HandlesCommand(std::string_view cmd) const = 0;
  virtual bool HandlesTicket(std::string_view ticket) const = 0;
  virtual bool HandlesAction(std::string_view type) const = 0;

  // GetFlightInfo and GetSchema of `cmd`. Errors go to the client as they are.
  virtual Result<CommandPlan> Plan(std::string_view cmd, const CommandCall& call) = 0;

  // Returns the ticket handed out for a signed ticket of a planned SQL command.
  virtual std::string WrapTicket(std::string_view flight_ticket) const = 0;
  // Returns the signed ticket inside a ticket made by WrapTicket, nullopt for the handler's
  // other tickets.
  virtual std::optional<std::string> UnwrapTicket(std::string_view ticket) const = 0;
  // DoGet of one of the handler's own tickets (not a wrapped one).
  virtual Result<CommandTicket> ResolveTicket(std::string_view ticket, const CommandCall& call) = 0;
  // CancelFlightInfo of one of the handler's own tickets: the cancel_key ResolveTicket gives
  // its DoGet, or 0 when nothing it runs can be cancelled. Cheap; no authorization (the key
  // is the capability).
  virtual uint64_t CancelKey(std::string_view ticket) const = 0;

  // DoPut of `cmd` (the first message's descriptor).
  virtual Result<PutPlan> PlanPut(std::string_view cmd, const CommandCall& call) = 0;

  // DoAction: the body of the one Result, or nullopt for an action that answers none.
  virtual Result<std::optional<std::string>> DoAction(std::string_view type, std::string_view body,
                                                      const CommandCall& call) = 0;
  // The actions ListActions adds: (type, description).
  virtual std::vector<std::pair<std::string, std::string>> ActionTypes() const = 0;
};

}  // namespace bridge::flight
