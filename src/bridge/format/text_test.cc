#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "bridge/common/testing.h"
#include "bridge/format/text_internal.h"

namespace bridge::format::internal {
namespace {

using ipc::TimeUnit;

template <typename F>
std::string Text(F append) {
  std::string out;
  append(&out);
  return out;
}

std::string Json(std::string_view bytes) {
  return Text([&](std::string* out) { AppendJsonString(bytes, out); });
}

TEST(TextTest, JsonStringsEscapeQuotesBackslashesAndControls) {
  EXPECT_EQ(Json(""), R"("")");
  EXPECT_EQ(Json("plain"), R"("plain")");
  EXPECT_EQ(Json("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(Json("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(Json(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(Json("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST(TextTest, InvalidUtf8BecomesReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Json("a\xFF"
                 "b"),
            "\"a" + fffd + "b\"");
  // Truncated sequence at the end: one replacement for the maximal subpart.
  EXPECT_EQ(Json("a\xE2\x82"), "\"a" + fffd + "\"");
  // Overlong encodings and surrogates are invalid; each byte that cannot start a maximal
  // subpart becomes its own replacement.
  EXPECT_EQ(Json("\xC0\xAF"), "\"" + fffd + fffd + "\"");
  EXPECT_EQ(Json("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");
  EXPECT_EQ(Json("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");
  // A lone continuation byte, then a valid character.
  EXPECT_EQ(Json("\x80\xC3\xA9"), "\"" + fffd + "\xC3\xA9\"");
  EXPECT_EQ(Text([](std::string* out) { AppendUtf8("x\xF0\x9F\x98y\n", out); }),
            "x" + fffd + "y\n");
}

TEST(TextTest, Base64AndBlobText) {
  auto base64 = [](std::string_view s) {
    return Text([&](std::string* out) { AppendBase64(s, out); });
  };
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string_view("\xff\x00\xfe", 3)), "/wD+");
  EXPECT_EQ(
      Text([](std::string* out) { AppendBlobText(std::string_view("a\x00\\'\"\xff~", 7), out); }),
      "a\\x00\\x5C\\x27\\x22\\xFF~");
}

TEST(TextTest, IntegersAndDecimals) {
  EXPECT_EQ(Text([](std::string* o) { AppendInt(std::numeric_limits<int64_t>::min(), o); }),
            "-9223372036854775808");
  EXPECT_EQ(Text([](std::string* o) { AppendUInt(std::numeric_limits<uint64_t>::max(), o); }),
            "18446744073709551615");
  EXPECT_EQ(Text([](std::string* o) { AppendUInt128(~static_cast<unsigned __int128>(0), o); }),
            "340282366920938463463374607431768211455");
  EXPECT_EQ(Text([](std::string* o) {
              AppendInt128(static_cast<__int128>(static_cast<unsigned __int128>(1) << 127), o);
            }),
            "-170141183460469231731687303715884105728");

  auto decimal = [](__int128 value, int32_t bit_width, int32_t scale) {
    uint8_t bytes[32];
    std::memcpy(bytes, &value, 16);
    std::memset(bytes + 16, value < 0 ? 0xff : 0, 16);
    return Text([&](std::string* o) { AppendDecimal(bytes, bit_width, scale, o); });
  };
  EXPECT_EQ(decimal(1230, 128, 2), "12.30");
  EXPECT_EQ(decimal(-5, 128, 2), "-0.05");
  EXPECT_EQ(decimal(0, 128, 2), "0.00");
  EXPECT_EQ(decimal(0, 128, 0), "0");
  EXPECT_EQ(decimal(7, 128, -3), "7000");
  EXPECT_EQ(decimal(0, 128, -3), "0");
  EXPECT_EQ(decimal(-123456789, 32, 4), "-12345.6789");
  EXPECT_EQ(decimal(std::numeric_limits<int64_t>::min(), 64, 0), "-9223372036854775808");
  // 10^38 - 1 with scale 10.
  __int128 max38 = 1;
  for (int k = 0; k < 38; ++k) max38 *= 10;
  max38 -= 1;
  EXPECT_EQ(decimal(-max38, 128, 10), "-9999999999999999999999999999.9999999999");
  // The most negative 256-bit value.
  uint8_t min256[32] = {};
  min256[31] = 0x80;
  EXPECT_EQ(Text([&](std::string* o) { AppendDecimal(min256, 256, 0, o); }),
            "-57896044618658097711785492504343953926634992332820282019728792003956564819968");
  uint8_t minus_one[32];
  std::memset(minus_one, 0xff, 32);
  EXPECT_EQ(Text([&](std::string* o) { AppendDecimal(minus_one, 256, 3, o); }), "-0.001");
}

TEST(TextTest, FloatsAreShortestRoundTrip) {
  EXPECT_EQ(Text([](std::string* o) { AppendDouble(0.1, o); }), "0.1");
  EXPECT_EQ(Text([](std::string* o) { AppendDouble(1e20, o); }), "1e+20");
  EXPECT_EQ(Text([](std::string* o) { AppendDouble(-0.0, o); }), "-0");
  EXPECT_EQ(Text([](std::string* o) { AppendDouble(123.0, o); }), "123");
  EXPECT_EQ(Text([](std::string* o) { AppendFloat(0.1f, o); }), "0.1");
  EXPECT_EQ(Text([](std::string* o) { AppendFloat(16777216.0f, o); }), "16777216");
  // Every finite binary16 value prints as a short decimal that rounds back to it.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const double value = HalfToDouble(static_cast<uint16_t>(bits));
    if (!std::isfinite(value)) continue;
    std::string text;
    AppendHalf(static_cast<uint16_t>(bits), &text);
    double back = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), back);
    ASSERT_EQ(ec, std::errc()) << text;
    ASSERT_EQ(end, text.data() + text.size()) << text;
    // Rounds to the same binary16: nearer to `value` than to either neighbour.
    const uint16_t magnitude = bits & 0x7fff;
    if (magnitude != 0 && magnitude != 0x7bff) {
      const double low = std::fabs(HalfToDouble(magnitude - 1));
      const double high = std::fabs(HalfToDouble(magnitude + 1));
      ASSERT_GE(std::fabs(back), (std::fabs(value) + low) / 2) << bits << " " << text;
      ASSERT_LE(std::fabs(back), (std::fabs(value) + high) / 2) << bits << " " << text;
    }
    ASSERT_EQ(std::signbit(back), std::signbit(value)) << text;
  }
  auto half = [](uint16_t bits) { return Text([&](std::string* o) { AppendHalf(bits, o); }); };
  EXPECT_EQ(half(0x3c00), "1");
  EXPECT_EQ(half(0x2e66), "0.1");
  EXPECT_EQ(half(0xc000), "-2");
  EXPECT_EQ(half(0x7bff), "65500");  // 65504 is the nearest binary16
  EXPECT_EQ(half(0x0001), "6e-08");
  EXPECT_EQ(half(0x8000), "-0");
}

TEST(TextTest, DatesUseIsoYearsOutsideZeroToNineThousand) {
  auto date = [](int64_t days) { return Text([&](std::string* o) { AppendDate(days, o); }); };
  EXPECT_EQ(date(0), "1970-01-01");
  EXPECT_EQ(date(-1), "1969-12-31");
  EXPECT_EQ(date(19723), "2024-01-01");
  EXPECT_EQ(date(11016), "2000-02-29");
  EXPECT_EQ(date(-719162), "0001-01-01");
  EXPECT_EQ(date(-719163), "0000-12-31");
  EXPECT_EQ(date(-719529), "-0001-12-31");
  EXPECT_EQ(date(2932896), "9999-12-31");
  EXPECT_EQ(date(2932897), "+10000-01-01");
}

TEST(TextTest, ClocksTimestampsAndIntervals) {
  auto clock = [](int64_t v, TimeUnit u) {
    return Text([&](std::string* o) { AppendClock(v, u, o); });
  };
  EXPECT_EQ(clock(0, TimeUnit::kSecond), "00:00:00");
  EXPECT_EQ(clock(3723, TimeUnit::kSecond), "01:02:03");
  EXPECT_EQ(clock(3723500, TimeUnit::kMilli), "01:02:03.5");
  EXPECT_EQ(clock(3723000001, TimeUnit::kMicro), "01:02:03.000001");
  EXPECT_EQ(clock(86400000000000, TimeUnit::kNano), "24:00:00");
  EXPECT_EQ(clock(-360000123456789, TimeUnit::kNano), "-100:00:00.123456789");
  EXPECT_EQ(clock(std::numeric_limits<int64_t>::min(), TimeUnit::kSecond),
            "-2562047788015215:30:08");

  auto ts = [](int64_t v, TimeUnit u, char sep, bool utc) {
    return Text([&](std::string* o) { AppendTimestamp(v, u, sep, utc, o); });
  };
  EXPECT_EQ(ts(0, TimeUnit::kSecond, 'T', false), "1970-01-01T00:00:00");
  EXPECT_EQ(ts(-1, TimeUnit::kMicro, 'T', false), "1969-12-31T23:59:59.999999");
  EXPECT_EQ(ts(1704164645123456, TimeUnit::kMicro, 'T', true), "2024-01-02T03:04:05.123456Z");
  EXPECT_EQ(ts(1704164645123, TimeUnit::kMilli, ' ', false), "2024-01-02 03:04:05.123");
  EXPECT_EQ(ts(-1, TimeUnit::kNano, 'T', false), "1969-12-31T23:59:59.999999999");
  EXPECT_EQ(ts(std::numeric_limits<int64_t>::max(), TimeUnit::kMicro, 'T', false), "infinity");
  EXPECT_EQ(ts(-std::numeric_limits<int64_t>::max(), TimeUnit::kSecond, 'T', true), "-infinity");
  EXPECT_EQ(ts(std::numeric_limits<int64_t>::min(), TimeUnit::kSecond, 'T', false),
            "-292277022657-01-27T08:29:52");

  auto interval = [](int32_t m, int32_t d, int64_t ns) {
    return Text([&](std::string* o) { AppendInterval(m, d, ns, o); });
  };
  EXPECT_EQ(interval(0, 0, 0), "00:00:00");
  EXPECT_EQ(interval(1, 0, 0), "1 month");
  EXPECT_EQ(interval(14, 2, 0), "1 year 2 months 2 days");
  EXPECT_EQ(interval(-25, -1, -3000000000), "-2 years -1 month -1 day -00:00:03");
  EXPECT_EQ(interval(0, 0, 90061500000000), "25:01:01.5");
}

TEST(TextTest, DisplayWidthCountsWideAndCombiningCharacters) {
  EXPECT_EQ(DisplayWidth(""), 0);
  EXPECT_EQ(DisplayWidth("abc"), 3);
  EXPECT_EQ(DisplayWidth("h\xC3\xA9"), 2);                 // é
  EXPECT_EQ(DisplayWidth("e\xCC\x81"), 1);                 // e + combining acute
  EXPECT_EQ(DisplayWidth("\xE6\x97\xA5\xE6\x9C\xAC"), 4);  // 日本
  EXPECT_EQ(DisplayWidth("\xF0\x9F\x98\x80"), 2);          // 😀
}

}  // namespace
}  // namespace bridge::format::internal
