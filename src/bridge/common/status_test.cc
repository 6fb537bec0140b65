#include "bridge/common/status.h"

#include "bridge/common/logging.h"
#include "bridge/common/testing.h"

namespace bridge {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("half: ", x, " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  BRIDGE_ASSIGN_OR_RETURN(int half, Half(x));
  BRIDGE_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  BRIDGE_RETURN_NOT_OK(Half(x));
  return OkStatus();
}

TEST(StatusTest, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*Quarter(12), 3);
  EXPECT_STATUS(Quarter(6), StatusCode::kInvalidArgument, "half: 3 is odd");
  EXPECT_OK(CheckEven(4));
  EXPECT_STATUS(CheckEven(5), StatusCode::kInvalidArgument, "5 is odd");
}

TEST(StatusTest, WithContextPrefixesTheMessageAndKeepsTheCode) {
  Status st = WithContext(NotFound("no such table"), "catalog");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "catalog: no such table");
  EXPECT_TRUE(WithContext(OkStatus(), "x").ok());
}

TEST(LoggingTest, JsonEscapeHandlesQuotesAndControlCharacters) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
  EXPECT_EQ(JsonEscape("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(LoggingTest, UnknownLevelIsRejected) {
  EXPECT_STATUS(ConfigureLogging(LogFormat::kText, "loud"), StatusCode::kInvalidArgument,
                "unknown level 'loud'");
  EXPECT_OK(ConfigureLogging(LogFormat::kJson, "warn"));
}

}  // namespace
}  // namespace bridge
