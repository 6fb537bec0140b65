#include "bridge/arrow/data_type.h"

#include <charconv>
#include <limits>

namespace bridge::ipc {
namespace {

Result<int32_t> ParseInt(std::string_view text, std::string_view format) {
  int32_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return InvalidArgument("arrow: bad number '", text, "' in format string '", format, "'");
  }
  return value;
}

Result<TimeUnit> ParseUnit(char c, std::string_view format) {
  switch (c) {
    case 's':
      return TimeUnit::kSecond;
    case 'm':
      return TimeUnit::kMilli;
    case 'u':
      return TimeUnit::kMicro;
    case 'n':
      return TimeUnit::kNano;
    default:
      return InvalidArgument("arrow: bad time unit in format string '", format, "'");
  }
}

const char* UnitName(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kSecond:
      return "s";
    case TimeUnit::kMilli:
      return "ms";
    case TimeUnit::kMicro:
      return "us";
    case TimeUnit::kNano:
      return "ns";
  }
  return "?";
}

DataType Simple(TypeId id, int32_t bit_width = 0) {
  DataType t;
  t.id = id;
  t.bit_width = bit_width;
  return t;
}

}  // namespace

bool IsInteger(TypeId id) {
  switch (id) {
    case TypeId::kInt8:
    case TypeId::kUInt8:
    case TypeId::kInt16:
    case TypeId::kUInt16:
    case TypeId::kInt32:
    case TypeId::kUInt32:
    case TypeId::kInt64:
    case TypeId::kUInt64:
      return true;
    default:
      return false;
  }
}

bool IsSignedInteger(TypeId id) {
  return id == TypeId::kInt8 || id == TypeId::kInt16 || id == TypeId::kInt32 ||
         id == TypeId::kInt64;
}

int32_t DataType::FixedBitWidth() const {
  switch (id) {
    case TypeId::kBool:
      return 1;
    case TypeId::kInt8:
    case TypeId::kUInt8:
      return 8;
    case TypeId::kInt16:
    case TypeId::kUInt16:
    case TypeId::kFloat16:
      return 16;
    case TypeId::kInt32:
    case TypeId::kUInt32:
    case TypeId::kFloat32:
    case TypeId::kDate32:
    case TypeId::kTime32:
    case TypeId::kIntervalMonths:
      return 32;
    case TypeId::kInt64:
    case TypeId::kUInt64:
    case TypeId::kFloat64:
    case TypeId::kDate64:
    case TypeId::kTime64:
    case TypeId::kTimestamp:
    case TypeId::kDuration:
    case TypeId::kIntervalDayTime:
      return 64;
    case TypeId::kIntervalMonthDayNano:
      return 128;
    case TypeId::kDecimal:
      return bit_width;
    case TypeId::kFixedSizeBinary:
      return fixed_size * 8;
    default:
      return 0;
  }
}

Result<DataType> ParseFormat(std::string_view f) {
  auto bad = [&] { return InvalidArgument("arrow: unsupported format string '", f, "'"); };
  if (f.size() == 1) {
    switch (f[0]) {
      case 'n':
        return Simple(TypeId::kNull);
      case 'b':
        return Simple(TypeId::kBool, 1);
      case 'c':
        return Simple(TypeId::kInt8, 8);
      case 'C':
        return Simple(TypeId::kUInt8, 8);
      case 's':
        return Simple(TypeId::kInt16, 16);
      case 'S':
        return Simple(TypeId::kUInt16, 16);
      case 'i':
        return Simple(TypeId::kInt32, 32);
      case 'I':
        return Simple(TypeId::kUInt32, 32);
      case 'l':
        return Simple(TypeId::kInt64, 64);
      case 'L':
        return Simple(TypeId::kUInt64, 64);
      case 'e':
        return Simple(TypeId::kFloat16, 16);
      case 'f':
        return Simple(TypeId::kFloat32, 32);
      case 'g':
        return Simple(TypeId::kFloat64, 64);
      case 'z':
        return Simple(TypeId::kBinary);
      case 'Z':
        return Simple(TypeId::kLargeBinary);
      case 'u':
        return Simple(TypeId::kUtf8);
      case 'U':
        return Simple(TypeId::kLargeUtf8);
      default:
        return bad();
    }
  }
  if (f == "vz") return Simple(TypeId::kBinaryView);
  if (f == "vu") return Simple(TypeId::kUtf8View);
  if (f.starts_with("d:")) {
    // d:precision,scale[,bitwidth]
    std::string_view rest = f.substr(2);
    std::vector<int32_t> parts;
    while (true) {
      size_t comma = rest.find(',');
      BRIDGE_ASSIGN_OR_RETURN(int32_t v, ParseInt(rest.substr(0, comma), f));
      parts.push_back(v);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    if (parts.size() < 2 || parts.size() > 3) return bad();
    DataType t = Simple(TypeId::kDecimal, parts.size() == 3 ? parts[2] : 128);
    t.precision = parts[0];
    t.scale = parts[1];
    if (t.bit_width != 32 && t.bit_width != 64 && t.bit_width != 128 && t.bit_width != 256) {
      return bad();
    }
    return t;
  }
  if (f.starts_with("w:")) {
    DataType t = Simple(TypeId::kFixedSizeBinary);
    BRIDGE_ASSIGN_OR_RETURN(t.fixed_size, ParseInt(f.substr(2), f));
    // The width in bits must fit an int32 too.
    if (t.fixed_size < 0 || t.fixed_size > std::numeric_limits<int32_t>::max() / 8) return bad();
    t.bit_width = t.fixed_size * 8;
    return t;
  }
  if (f == "tdD") return Simple(TypeId::kDate32, 32);
  if (f == "tdm") return Simple(TypeId::kDate64, 64);
  if (f == "tiM") return Simple(TypeId::kIntervalMonths, 32);
  if (f == "tiD") return Simple(TypeId::kIntervalDayTime, 64);
  if (f == "tin") return Simple(TypeId::kIntervalMonthDayNano, 128);
  if (f.size() == 3 && f.starts_with("tt")) {
    BRIDGE_ASSIGN_OR_RETURN(TimeUnit unit, ParseUnit(f[2], f));
    bool is32 = unit == TimeUnit::kSecond || unit == TimeUnit::kMilli;
    DataType t = Simple(is32 ? TypeId::kTime32 : TypeId::kTime64, is32 ? 32 : 64);
    t.unit = unit;
    return t;
  }
  if (f.size() == 3 && f.starts_with("tD")) {
    DataType t = Simple(TypeId::kDuration, 64);
    BRIDGE_ASSIGN_OR_RETURN(t.unit, ParseUnit(f[2], f));
    return t;
  }
  if (f.size() >= 4 && f.starts_with("ts") && f[3] == ':') {
    DataType t = Simple(TypeId::kTimestamp, 64);
    BRIDGE_ASSIGN_OR_RETURN(t.unit, ParseUnit(f[2], f));
    t.timezone = std::string(f.substr(4));
    return t;
  }
  if (f == "+l") return Simple(TypeId::kList);
  if (f == "+L") return Simple(TypeId::kLargeList);
  if (f == "+vl") return Simple(TypeId::kListView);
  if (f == "+vL") return Simple(TypeId::kLargeListView);
  if (f == "+s") return Simple(TypeId::kStruct);
  if (f == "+m") return Simple(TypeId::kMap);
  if (f == "+r") return Simple(TypeId::kRunEndEncoded);
  if (f.starts_with("+w:")) {
    DataType t = Simple(TypeId::kFixedSizeList);
    BRIDGE_ASSIGN_OR_RETURN(t.fixed_size, ParseInt(f.substr(3), f));
    if (t.fixed_size < 0) return bad();
    return t;
  }
  if (f.starts_with("+ud:") || f.starts_with("+us:")) {
    DataType t = Simple(f[2] == 'd' ? TypeId::kDenseUnion : TypeId::kSparseUnion);
    std::string_view rest = f.substr(4);
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      BRIDGE_ASSIGN_OR_RETURN(int32_t code, ParseInt(rest.substr(0, comma), f));
      if (code < 0 || code > 127) return bad();
      t.type_codes.push_back(static_cast<int8_t>(code));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    return t;
  }
  return bad();
}

std::string TypeName(const DataType& t) {
  switch (t.id) {
    case TypeId::kNull:
      return "null";
    case TypeId::kBool:
      return "bool";
    case TypeId::kInt8:
      return "int8";
    case TypeId::kUInt8:
      return "uint8";
    case TypeId::kInt16:
      return "int16";
    case TypeId::kUInt16:
      return "uint16";
    case TypeId::kInt32:
      return "int32";
    case TypeId::kUInt32:
      return "uint32";
    case TypeId::kInt64:
      return "int64";
    case TypeId::kUInt64:
      return "uint64";
    case TypeId::kFloat16:
      return "float16";
    case TypeId::kFloat32:
      return "float32";
    case TypeId::kFloat64:
      return "float64";
    case TypeId::kBinary:
      return "binary";
    case TypeId::kLargeBinary:
      return "large_binary";
    case TypeId::kBinaryView:
      return "binary_view";
    case TypeId::kUtf8:
      return "utf8";
    case TypeId::kLargeUtf8:
      return "large_utf8";
    case TypeId::kUtf8View:
      return "utf8_view";
    case TypeId::kDecimal:
      return StrCat("decimal", t.bit_width, "(", t.precision, ",", t.scale, ")");
    case TypeId::kFixedSizeBinary:
      return StrCat("fixed_size_binary[", t.fixed_size, "]");
    case TypeId::kDate32:
      return "date32";
    case TypeId::kDate64:
      return "date64";
    case TypeId::kTime32:
      return StrCat("time32[", UnitName(t.unit), "]");
    case TypeId::kTime64:
      return StrCat("time64[", UnitName(t.unit), "]");
    case TypeId::kTimestamp:
      return t.timezone.empty() ? StrCat("timestamp[", UnitName(t.unit), "]")
                                : StrCat("timestamp[", UnitName(t.unit), ", tz=", t.timezone, "]");
    case TypeId::kDuration:
      return StrCat("duration[", UnitName(t.unit), "]");
    case TypeId::kIntervalMonths:
      return "interval[months]";
    case TypeId::kIntervalDayTime:
      return "interval[day_time]";
    case TypeId::kIntervalMonthDayNano:
      return "interval[month_day_nano]";
    case TypeId::kList:
      return "list";
    case TypeId::kLargeList:
      return "large_list";
    case TypeId::kListView:
      return "list_view";
    case TypeId::kLargeListView:
      return "large_list_view";
    case TypeId::kFixedSizeList:
      return StrCat("fixed_size_list[", t.fixed_size, "]");
    case TypeId::kStruct:
      return "struct";
    case TypeId::kMap:
      return "map";
    case TypeId::kDenseUnion:
      return "dense_union";
    case TypeId::kSparseUnion:
      return "sparse_union";
    case TypeId::kRunEndEncoded:
      return "run_end_encoded";
  }
  return "?";
}

}  // namespace bridge::ipc
