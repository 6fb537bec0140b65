#include "bridge/http/errors.h"

#include <nlohmann/json.hpp>

#include "bridge/common/testing.h"

namespace bridge::http {
namespace {

TEST(HttpStatusOfTest, MapsEveryAgreedCode) {
  EXPECT_EQ(HttpStatusOf(OkStatus()), 200);
  EXPECT_EQ(HttpStatusOf(InvalidArgument("x")), 400);
  EXPECT_EQ(HttpStatusOf(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpStatusOf(PermissionDenied("x")), 403);
  EXPECT_EQ(HttpStatusOf(NotFound("x")), 404);
  EXPECT_EQ(HttpStatusOf(DeadlineExceeded("x")), 504);
  EXPECT_EQ(HttpStatusOf(ResourceExhausted("x")), 429);
  EXPECT_EQ(HttpStatusOf(Cancelled("x")), 503);
  EXPECT_EQ(HttpStatusOf(Unimplemented("x")), 501);
  EXPECT_EQ(HttpStatusOf(FailedPrecondition("x")), 400);
  EXPECT_EQ(HttpStatusOf(AlreadyExists("x")), 409);
  EXPECT_EQ(HttpStatusOf(absl::InternalError("x")), 500);
  EXPECT_EQ(HttpStatusOf(absl::UnknownError("x")), 500);
  EXPECT_EQ(HttpStatusOf(absl::DataLossError("x")), 500);
}

TEST(ErrorBodyTest, HasCodeAndMessage) {
  EXPECT_EQ(ErrorBody(InvalidArgument("http: bad 'x'")),
            "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"http: bad 'x'\"}}\n");
  EXPECT_EQ(ErrorBody("not_acceptable", "no"),
            "{\"error\":{\"code\":\"not_acceptable\",\"message\":\"no\"}}\n");
}

TEST(ErrorBodyTest, CodesAreLowerSnakeCase) {
  EXPECT_EQ(ErrorCodeName(StatusCode::kUnauthenticated), "unauthenticated");
  EXPECT_EQ(ErrorCodeName(StatusCode::kDeadlineExceeded), "deadline_exceeded");
  EXPECT_EQ(ErrorCodeName(StatusCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(ErrorCodeName(StatusCode::kPermissionDenied), "permission_denied");
  EXPECT_EQ(ErrorCodeName(StatusCode::kFailedPrecondition), "failed_precondition");
  EXPECT_EQ(ErrorCodeName(StatusCode::kNotFound), "not_found");
}

TEST(ErrorBodyTest, AnyMessageGivesValidJson) {
  const std::string message = std::string("quote \" backslash \\ newline \n tab \t nul ") +
                              std::string(1, '\0') + " bad utf8 \xff\xc3 end é";
  std::string body = ErrorBody(absl::InternalError(message));
  ASSERT_EQ(body.back(), '\n');
  auto json = nlohmann::json::parse(body);  // throws (fails the test) if invalid
  EXPECT_EQ(json["error"]["code"], "internal");
  std::string decoded = json["error"]["message"];
  EXPECT_THAT(decoded, ::testing::StartsWith("quote \" backslash \\ newline \n tab \t nul "));
  EXPECT_THAT(decoded, ::testing::HasSubstr("bad utf8 \xEF\xBF\xBD"));  // U+FFFD
  EXPECT_THAT(decoded, ::testing::EndsWith(" end é"));
}

}  // namespace
}  // namespace bridge::http
