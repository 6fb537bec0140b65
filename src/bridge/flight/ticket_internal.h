// Flight tickets: opaque to clients, signed with HMAC-SHA256 so that a client cannot forge
// or alter one to read other data, and expiring.
//
// Layout (all integers little-endian):
//   "BT2" | int64 expiry (Unix seconds) | uint64 plan id | uint32 endpoint index |
//   uint64 table version | uint32 length | table name | uint32 length | query (UTF-8 SQL) |
//   32-byte HMAC
// where the HMAC covers everything before it. Only the server that holds the key can make
// or check a ticket; servers sharing a key accept each other's tickets. Version 1 tickets
// ("BT1", no plan id and no table) are no longer accepted.
//
// Private to src/bridge/flight. Thread safety: a TicketSigner is immutable after Make and may
// be used from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bridge/common/status.h"

namespace bridge::flight {

struct TicketContents {
  std::string sql;  // the query this ticket runs
  std::chrono::system_clock::time_point expires;
  // Random id shared by every endpoint of one FlightInfo (what CancelFlightInfo cancels and
  // RenewFlightEndpoint keeps), and this endpoint's index in it.
  uint64_t plan_id = 0;
  uint32_t endpoint = 0;
  // A partitioned plan's table and its catalog version when the plan was made: DoGet refuses
  // the ticket once the table has changed (its endpoints would no longer add up to the
  // table). Empty = no such check.
  std::string table;
  uint64_t table_version = 0;
};

class TicketSigner {
 public:
  // Returns a signer using `secret` (>= 32 bytes), or 32 random bytes when `secret` is
  // empty. InvalidArgument for a secret that is too short, Internal when randomness fails.
  static Result<TicketSigner> Make(std::string_view secret);

  // Returns the ticket for `contents` (expiry rounded down to whole seconds).
  std::string Sign(const TicketContents& contents) const;

  // Returns the contents of a ticket made by Sign with the same key. InvalidArgument for a
  // malformed, forged or altered ticket ("flight: invalid ticket: ..."), and for one whose
  // expiry has passed at `now` ("flight: ticket expired").
  Result<TicketContents> Verify(
      std::string_view ticket,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

 private:
  explicit TicketSigner(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace bridge::flight
