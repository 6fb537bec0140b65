#include "bridge/common/testing.h"
#include "bridge/flight/ticket_internal.h"

namespace bridge::flight {
namespace {

using Clock = std::chrono::system_clock;

TicketContents Contents(std::string sql) {
  return TicketContents{std::move(sql), Clock::now() + std::chrono::hours(1)};
}

TEST(TicketTest, SignedTicketVerifies) {
  ASSERT_OK_AND_ASSIGN(TicketSigner signer, TicketSigner::Make(std::string(32, 'k')));
  auto expires = Clock::time_point(std::chrono::seconds(4'000'000'000));
  std::string ticket = signer.Sign({"SELECT * FROM \"trips\"", expires});
  ASSERT_OK_AND_ASSIGN(TicketContents contents, signer.Verify(ticket));
  EXPECT_EQ(contents.sql, "SELECT * FROM \"trips\"");
  EXPECT_EQ(contents.expires, expires);
}

TEST(TicketTest, PlanFieldsRoundTrip) {
  ASSERT_OK_AND_ASSIGN(TicketSigner signer, TicketSigner::Make(std::string(32, 'k')));
  TicketContents contents = Contents("SELECT * FROM read_parquet('x') WHERE filename = 'y'");
  contents.plan_id = 0x0123456789abcdefULL;
  contents.endpoint = 7;
  contents.table = "trips";
  contents.table_version = 42;
  ASSERT_OK_AND_ASSIGN(TicketContents back, signer.Verify(signer.Sign(contents)));
  EXPECT_EQ(back.sql, contents.sql);
  EXPECT_EQ(back.plan_id, contents.plan_id);
  EXPECT_EQ(back.endpoint, 7u);
  EXPECT_EQ(back.table, "trips");
  EXPECT_EQ(back.table_version, 42u);
  // An empty table and query are fine too.
  ASSERT_OK_AND_ASSIGN(TicketContents empty, signer.Verify(signer.Sign(Contents(""))));
  EXPECT_EQ(empty.sql, "");
  EXPECT_EQ(empty.table, "");
}

TEST(TicketTest, VersionOneTicketsAreRefused) {
  ASSERT_OK_AND_ASSIGN(TicketSigner signer, TicketSigner::Make(std::string(32, 'k')));
  std::string ticket = signer.Sign(Contents("SELECT 1"));
  ticket[2] = '1';  // "BT1": the old layout
  EXPECT_STATUS(signer.Verify(ticket), StatusCode::kInvalidArgument, "invalid ticket");
}

TEST(TicketTest, EveryAlteredByteIsRefused) {
  ASSERT_OK_AND_ASSIGN(TicketSigner signer, TicketSigner::Make(""));
  TicketContents contents = Contents("SELECT 1");
  contents.table = "t";
  contents.plan_id = 9;
  std::string ticket = signer.Sign(contents);
  for (size_t i = 0; i < ticket.size(); ++i) {
    std::string altered = ticket;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    EXPECT_STATUS(signer.Verify(altered), StatusCode::kInvalidArgument, "invalid ticket")
        << "byte " << i;
  }
  EXPECT_STATUS(signer.Verify(ticket.substr(0, ticket.size() - 1)), StatusCode::kInvalidArgument,
                "invalid ticket");
  EXPECT_STATUS(signer.Verify(ticket + "x"), StatusCode::kInvalidArgument, "invalid ticket");
  EXPECT_STATUS(signer.Verify(""), StatusCode::kInvalidArgument, "invalid ticket");
}

TEST(TicketTest, AnotherKeysTicketIsRefused) {
  ASSERT_OK_AND_ASSIGN(TicketSigner a, TicketSigner::Make(std::string(32, 'a')));
  ASSERT_OK_AND_ASSIGN(TicketSigner b, TicketSigner::Make(std::string(32, 'b')));
  EXPECT_STATUS(b.Verify(a.Sign(Contents("SELECT 1"))), StatusCode::kInvalidArgument,
                "bad signature");
}

TEST(TicketTest, ExpiredTicketIsRefused) {
  ASSERT_OK_AND_ASSIGN(TicketSigner signer, TicketSigner::Make(""));
  auto now = Clock::now();
  std::string ticket = signer.Sign({"SELECT 1", now + std::chrono::seconds(10)});
  EXPECT_OK(signer.Verify(ticket, now));
  EXPECT_STATUS(signer.Verify(ticket, now + std::chrono::seconds(11)), StatusCode::kInvalidArgument,
                "ticket expired");
}

TEST(TicketTest, ShortSecretIsRefused) {
  EXPECT_STATUS(TicketSigner::Make("short"), StatusCode::kInvalidArgument, "at least 32 bytes");
}

}  // namespace
}  // namespace bridge::flight
