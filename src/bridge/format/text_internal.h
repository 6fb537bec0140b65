// Text of single values: JSON string escaping, UTF-8 repair, numbers, decimals, dates,
// times and intervals. Private to the format module. Every function appends to `out` and
// never allocates anything but `out`'s own growth.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bridge/arrow/data_type.h"

namespace bridge::format::internal {

// Appends `bytes` as a JSON string literal, quotes included: `"` and `\` escaped, \b \f \n
// \r \t by their short escapes, other control characters as \u00XX, and every invalid
// UTF-8 sequence (each maximal invalid subpart) replaced by U+FFFD.
void AppendJsonString(std::string_view bytes, std::string* out);

// Appends `bytes` with every invalid UTF-8 sequence replaced by U+FFFD, nothing escaped.
void AppendUtf8(std::string_view bytes, std::string* out);

// Appends `bytes` as standard base64 (RFC 4648, with padding).
void AppendBase64(std::string_view bytes, std::string* out);

// Appends `bytes` as DuckDB writes a BLOB as text: printable ASCII other than \ ' " as is,
// every other byte as \xHH (upper-case hex).
void AppendBlobText(std::string_view bytes, std::string* out);

// Appends 16 bytes as a UUID: 8-4-4-4-12 lower-case hex digits.
void AppendUuid(const uint8_t* bytes, std::string* out);

void AppendInt(int64_t value, std::string* out);
void AppendUInt(uint64_t value, std::string* out);
void AppendInt128(__int128 value, std::string* out);
void AppendUInt128(unsigned __int128 value, std::string* out);

// Appends a decimal stored as a little-endian two's complement integer of `bit_width` bits
// (32, 64, 128 or 256) at `bytes`, with `scale` digits after the point ("12.30", "-0.05");
// a negative scale appends zeros.
void AppendDecimal(const uint8_t* bytes, int32_t bit_width, int32_t scale, std::string* out);

// Appends the shortest text that reads back as the same value ("0.1", "1e+20", "-0").
// Finite values only.
void AppendDouble(double value, std::string* out);
void AppendFloat(float value, std::string* out);
// `bits` is an IEEE 754 binary16 value.
void AppendHalf(uint16_t bits, std::string* out);
double HalfToDouble(uint16_t bits);

// Appends the proleptic Gregorian date `days` after 1970-01-01 as YYYY-MM-DD; years outside
// 0..9999 use ISO 8601's expanded form (-0044-03-15, +12345-01-01).
void AppendDate(int64_t days, std::string* out);

// Appends `value` ticks of `unit` as [-]HH:MM:SS[.fraction]: hours have at least two digits
// and are not wrapped at 24; the fraction has trailing zeros removed and is left out when
// zero.
void AppendClock(int64_t value, ipc::TimeUnit unit, std::string* out);

// Appends the timestamp `value` ticks of `unit` after the epoch as
// YYYY-MM-DD<separator>HH:MM:SS[.fraction], followed by "Z" when `utc`. DuckDB's infinite
// timestamps (INT64_MAX, -INT64_MAX) are written as "infinity" / "-infinity".
void AppendTimestamp(int64_t value, ipc::TimeUnit unit, char separator, bool utc, std::string* out);

// Appends an interval the way DuckDB writes one: "1 year 2 months 3 days 04:05:06.5",
// parts that are zero left out, "00:00:00" when all are zero.
void AppendInterval(int32_t months, int32_t days, int64_t nanos, std::string* out);

// Returns the number of terminal columns `utf8` (valid UTF-8) takes: East Asian wide and
// emoji characters count two, combining marks zero, others one.
int64_t DisplayWidth(std::string_view utf8);

}  // namespace bridge::format::internal
