#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "bridge/format/text_internal.h"

namespace bridge::format::internal {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

// Returns the length of the valid UTF-8 sequence at p[0] (a byte >= 0x80; `avail` >= 1 bytes
// readable), or minus the length of its maximal invalid subpart (Unicode 3.9, "U+FFFD
// substitution of maximal subparts").
int Utf8Sequence(const uint8_t* p, size_t avail) {
  const uint8_t c = p[0];
  int need = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c == 0xE0) {
    need = 2;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    need = 2;
  } else if (c == 0xED) {
    need = 2;
    hi = 0x9F;
  } else if (c == 0xF0) {
    need = 3;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    need = 3;
  } else if (c == 0xF4) {
    need = 3;
    hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (static_cast<size_t>(k) >= avail) return -k;
    const uint8_t b = p[k];
    if (b < lo || b > hi) return -k;
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

// Appends `bytes` with invalid UTF-8 repaired; when `json`, also escapes what JSON strings
// must escape.
template <bool json>
void AppendRepaired(std::string_view bytes, std::string* out) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t run = 0;
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      if (!json || (c >= 0x20 && c != '"' && c != '\\')) {
        ++i;
        continue;
      }
      out->append(bytes.data() + run, i - run);
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\b':
          out->append("\\b");
          break;
        case '\f':
          out->append("\\f");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        default: {
          const char escape[6] = {'\\', 'u', '0', '0', kHexLower[c >> 4], kHexLower[c & 15]};
          out->append(escape, sizeof(escape));
        }
      }
      ++i;
      run = i;
      continue;
    }
    const int len = Utf8Sequence(p + i, n - i);
    if (len > 0) {
      i += len;
      continue;
    }
    out->append(bytes.data() + run, i - run);
    out->append(kReplacement);
    i += -len;
    run = i;
  }
  out->append(bytes.data() + run, n - run);
}

template <typename T>
void AppendChars(T value, std::string* out) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, end - buf);
}

// Writes the decimal digits of the 256-bit unsigned integer `limbs` (little-endian, modified)
// into the end of `buf` and returns where they start. `buf` holds at least 80 chars.
char* UnsignedDigits(uint64_t limbs[4], char* buf_end) {
  constexpr uint64_t kChunk = 10000000000000000000ULL;  // 1e19
  char* pos = buf_end;
  for (;;) {
    int top = 3;
    while (top >= 0 && limbs[top] == 0) --top;
    if (top <= 0) {
      // Fits in 64 bits.
      char tmp[24];
      auto [end, ec] = std::to_chars(tmp, tmp + sizeof(tmp), top < 0 ? 0 : limbs[0]);
      const size_t len = end - tmp;
      pos -= len;
      std::memcpy(pos, tmp, len);
      return pos;
    }
    unsigned __int128 rem = 0;
    for (int k = top; k >= 0; --k) {
      const unsigned __int128 cur = (rem << 64) | limbs[k];
      limbs[k] = static_cast<uint64_t>(cur / kChunk);
      rem = cur % kChunk;
    }
    uint64_t chunk = static_cast<uint64_t>(rem);
    for (int d = 0; d < 19; ++d) {
      *--pos = static_cast<char>('0' + chunk % 10);
      chunk /= 10;
    }
  }
}

void AppendTwoDigits(int64_t v, std::string* out) {
  out->push_back(static_cast<char>('0' + v / 10));
  out->push_back(static_cast<char>('0' + v % 10));
}

int64_t TicksPerSecond(ipc::TimeUnit unit) {
  switch (unit) {
    case ipc::TimeUnit::kSecond:
      return 1;
    case ipc::TimeUnit::kMilli:
      return 1000;
    case ipc::TimeUnit::kMicro:
      return 1000000;
    case ipc::TimeUnit::kNano:
      return 1000000000;
  }
  return 1;
}

int FractionDigits(ipc::TimeUnit unit) {
  switch (unit) {
    case ipc::TimeUnit::kSecond:
      return 0;
    case ipc::TimeUnit::kMilli:
      return 3;
    case ipc::TimeUnit::kMicro:
      return 6;
    case ipc::TimeUnit::kNano:
      return 9;
  }
  return 0;
}

// Appends the non-negative `magnitude` ticks as HH:MM:SS[.fraction].
void AppendClockMagnitude(uint64_t magnitude, int64_t ticks_per_second, int fraction_digits,
                          std::string* out) {
  const uint64_t tps = static_cast<uint64_t>(ticks_per_second);
  uint64_t seconds = magnitude / tps;
  uint64_t fraction = magnitude % tps;
  const uint64_t hours = seconds / 3600;
  seconds %= 3600;
  if (hours < 10) out->push_back('0');
  AppendUInt(hours, out);
  out->push_back(':');
  AppendTwoDigits(static_cast<int64_t>(seconds / 60), out);
  out->push_back(':');
  AppendTwoDigits(static_cast<int64_t>(seconds % 60), out);
  if (fraction == 0) return;
  char digits[9];
  for (int d = fraction_digits - 1; d >= 0; --d) {
    digits[d] = static_cast<char>('0' + fraction % 10);
    fraction /= 10;
  }
  int len = fraction_digits;
  while (len > 0 && digits[len - 1] == '0') --len;
  out->push_back('.');
  out->append(digits, len);
}

}  // namespace

void AppendJsonString(std::string_view bytes, std::string* out) {
  out->push_back('"');
  AppendRepaired<true>(bytes, out);
  out->push_back('"');
}

void AppendUtf8(std::string_view bytes, std::string* out) { AppendRepaired<false>(bytes, out); }

void AppendBase64(std::string_view bytes, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                          kAlphabet[v & 63]};
    out->append(quad, 4);
  }
  if (i + 1 == n) {
    const uint32_t v = uint32_t{p[i]} << 16;
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
    out->append(quad, 4);
  } else if (i + 2 == n) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                          '='};
    out->append(quad, 4);
  }
}

void AppendBlobText(std::string_view bytes, std::string* out) {
  for (const char ch : bytes) {
    const auto c = static_cast<uint8_t>(ch);
    if (c >= 32 && c <= 126 && c != '\\' && c != '\'' && c != '"') {
      out->push_back(ch);
    } else {
      const char escape[4] = {'\\', 'x', kHexUpper[c >> 4], kHexUpper[c & 15]};
      out->append(escape, 4);
    }
  }
}

void AppendUuid(const uint8_t* bytes, std::string* out) {
  for (int k = 0; k < 16; ++k) {
    if (k == 4 || k == 6 || k == 8 || k == 10) out->push_back('-');
    out->push_back(kHexLower[bytes[k] >> 4]);
    out->push_back(kHexLower[bytes[k] & 15]);
  }
}

void AppendInt(int64_t value, std::string* out) { AppendChars(value, out); }
void AppendUInt(uint64_t value, std::string* out) { AppendChars(value, out); }

void AppendUInt128(unsigned __int128 value, std::string* out) {
  uint64_t limbs[4] = {static_cast<uint64_t>(value), static_cast<uint64_t>(value >> 64), 0, 0};
  char buf[80];
  char* start = UnsignedDigits(limbs, buf + sizeof(buf));
  out->append(start, buf + sizeof(buf) - start);
}

void AppendInt128(__int128 value, std::string* out) {
  if (value < 0) {
    out->push_back('-');
    AppendUInt128(-static_cast<unsigned __int128>(value), out);
  } else {
    AppendUInt128(static_cast<unsigned __int128>(value), out);
  }
}

void AppendDecimal(const uint8_t* bytes, int32_t bit_width, int32_t scale, std::string* out) {
  uint64_t limbs[4];
  switch (bit_width) {
    case 32: {
      int32_t v;
      std::memcpy(&v, bytes, 4);
      limbs[0] = static_cast<uint64_t>(static_cast<int64_t>(v));
      limbs[1] = limbs[2] = limbs[3] = v < 0 ? ~uint64_t{0} : 0;
      break;
    }
    case 64: {
      int64_t v;
      std::memcpy(&v, bytes, 8);
      limbs[0] = static_cast<uint64_t>(v);
      limbs[1] = limbs[2] = limbs[3] = v < 0 ? ~uint64_t{0} : 0;
      break;
    }
    case 128:
      std::memcpy(limbs, bytes, 16);
      limbs[2] = limbs[3] = (limbs[1] >> 63) ? ~uint64_t{0} : 0;
      break;
    default:
      std::memcpy(limbs, bytes, 32);
      break;
  }
  const bool negative = (limbs[3] >> 63) != 0;
  if (negative) {
    uint64_t carry = 1;
    for (uint64_t& limb : limbs) {
      limb = ~limb + carry;
      carry = (carry != 0 && limb == 0) ? 1 : 0;
    }
  }
  char buf[80];
  char* end = buf + sizeof(buf);
  const char* digits = UnsignedDigits(limbs, end);
  const int64_t n = end - digits;
  if (negative) out->push_back('-');
  if (scale <= 0) {
    out->append(digits, n);
    if (!(n == 1 && digits[0] == '0')) out->append(static_cast<size_t>(-int64_t{scale}), '0');
  } else if (n > scale) {
    out->append(digits, n - scale);
    out->push_back('.');
    out->append(digits + n - scale, scale);
  } else {
    out->append("0.");
    out->append(static_cast<size_t>(scale - n), '0');
    out->append(digits, n);
  }
}

void AppendDouble(double value, std::string* out) { AppendChars(value, out); }
void AppendFloat(float value, std::string* out) { AppendChars(value, out); }

double HalfToDouble(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(mantissa, -24);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::quiet_NaN();
  } else {
    magnitude = std::ldexp(1024 + mantissa, exponent - 25);
  }
  return (bits & 0x8000) ? -magnitude : magnitude;
}

void AppendHalf(uint16_t bits, std::string* out) {
  const uint16_t magnitude_bits = bits & 0x7fff;
  // The value of a finite non-negative binary16 bit pattern, also for 0x7c00 (65536: what
  // the largest finite value's upper neighbour would be without the exponent limit).
  auto value_of = [](int m) {
    const int exponent = (m >> 10) & 0x1f;
    const int mantissa = m & 0x3ff;
    return exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  };
  const double v = value_of(magnitude_bits);
  if (magnitude_bits == 0) {
    out->append((bits & 0x8000) ? "-0" : "0");
    return;
  }
  const double low_mid = (v + value_of(magnitude_bits - 1)) / 2;
  const double high_mid = (v + value_of(magnitude_bits + 1)) / 2;
  const bool even = (magnitude_bits & 1) == 0;
  char buf[32];
  for (int precision = 1; precision <= 5; ++precision) {
    auto [end, ec] =
        std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, precision);
    double back = 0;
    std::from_chars(buf, end, back);
    const bool rounds_back =
        (back > low_mid && back < high_mid) || (even && (back == low_mid || back == high_mid));
    if (rounds_back || precision == 5) {
      // `back` is the double nearest that short decimal; its own shortest text is the same
      // digits, written fixed or scientific, whichever is shorter.
      if (bits & 0x8000) out->push_back('-');
      AppendDouble(back, out);
      return;
    }
  }
}

void AppendDate(int64_t days, std::string* out) {
  // Howard Hinnant's civil_from_days.
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t year = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  if (month <= 2) ++year;
  if (year >= 0 && year <= 9999) {
    AppendTwoDigits(year / 100, out);
    AppendTwoDigits(year % 100, out);
  } else {
    out->push_back(year < 0 ? '-' : '+');
    const int64_t magnitude = year < 0 ? -year : year;
    if (magnitude < 1000) out->append(magnitude < 10 ? "000" : magnitude < 100 ? "00" : "0");
    AppendInt(magnitude, out);
  }
  out->push_back('-');
  AppendTwoDigits(month, out);
  out->push_back('-');
  AppendTwoDigits(day, out);
}

void AppendClock(int64_t value, ipc::TimeUnit unit, std::string* out) {
  uint64_t magnitude = static_cast<uint64_t>(value);
  if (value < 0) {
    out->push_back('-');
    magnitude = 0 - magnitude;
  }
  AppendClockMagnitude(magnitude, TicksPerSecond(unit), FractionDigits(unit), out);
}

void AppendTimestamp(int64_t value, ipc::TimeUnit unit, char separator, bool utc,
                     std::string* out) {
  if (value == std::numeric_limits<int64_t>::max()) {
    out->append("infinity");
    return;
  }
  if (value == -std::numeric_limits<int64_t>::max()) {
    out->append("-infinity");
    return;
  }
  const int64_t ticks_per_day = TicksPerSecond(unit) * 86400;
  int64_t days = value / ticks_per_day;
  int64_t rest = value % ticks_per_day;
  if (rest < 0) {
    rest += ticks_per_day;
    --days;
  }
  AppendDate(days, out);
  out->push_back(separator);
  AppendClockMagnitude(static_cast<uint64_t>(rest), TicksPerSecond(unit), FractionDigits(unit),
                       out);
  if (utc) out->push_back('Z');
}

void AppendInterval(int32_t months, int32_t days, int64_t nanos, std::string* out) {
  const int32_t years = months / 12;
  bool any = false;
  auto part = [&](int64_t value, std::string_view name) {
    if (value == 0) return;
    if (any) out->push_back(' ');
    any = true;
    AppendInt(value, out);
    out->push_back(' ');
    out->append(name);
    if (value != 1 && value != -1) out->push_back('s');
  };
  part(years, "year");
  part(months - years * 12, "month");
  part(days, "day");
  if (nanos != 0 || !any) {
    if (any) out->push_back(' ');
    AppendClock(nanos, ipc::TimeUnit::kNano, out);
  }
}

int64_t DisplayWidth(std::string_view utf8) {
  const auto* p = reinterpret_cast<const uint8_t*>(utf8.data());
  const size_t n = utf8.size();
  int64_t width = 0;
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++width;
      ++i;
      continue;
    }
    const int len = Utf8Sequence(p + i, n - i);
    if (len <= 0) {
      ++width;
      i += -len;
      continue;
    }
    uint32_t cp = len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3f);
    i += len;
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) ||
        (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F)) {
      continue;  // combining marks, zero-width characters, variation selectors
    }
    const bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
                      (cp >= 0x3041 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
                      (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
                      (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) ||
                      (cp >= 0x1F300 && cp <= 0x1F64F) || (cp >= 0x1F900 && cp <= 0x1F9FF) ||
                      (cp >= 0x20000 && cp <= 0x3FFFD);
    width += wide ? 2 : 1;
  }
  return width;
}

}  // namespace bridge::format::internal
