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

TEST(TicketTest, EveryAlteredByteIsRefused) {
  ASSERT_OK_AND_ASSIGN(TicketSigner signer, TicketSigner::Make(""));
  std::string ticket = signer.Sign(Contents("SELECT 1"));
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
