#include "bridge/arrow/integration_json.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "bridge/arrow/data_type.h"
#include "nlohmann/json.hpp"

namespace bridge::ipc {
namespace {

// Keys keep their insertion order, so the documents read like Arrow's own.
using Json = nlohmann::ordered_json;

// The key under which a dictionary-encoded column carries its dictionary (a column) until
// ToIntegrationJson moves it to "dictionaries". Never appears in output.
constexpr char kInlineDictionary[] = "__dictionary";

// ---------------------------------------------------------------------------------------
// Reading C Data Interface buffers

bool BitAt(const void* bits, int64_t i) {
  return (static_cast<const uint8_t*>(bits)[i >> 3] >> (i & 7)) & 1;
}

template <typename T>
T LoadAt(const void* base, int64_t index) {
  T value;
  std::memcpy(&value, static_cast<const uint8_t*>(base) + index * static_cast<int64_t>(sizeof(T)),
              sizeof(T));
  return value;
}

constexpr char kHexDigits[] = "0123456789ABCDEF";

std::string Hex(const uint8_t* data, int64_t size) {
  std::string out;
  out.resize(static_cast<size_t>(size) * 2);
  for (int64_t i = 0; i < size; ++i) {
    out[2 * i] = kHexDigits[data[i] >> 4];
    out[2 * i + 1] = kHexDigits[data[i] & 15];
  }
  return out;
}

std::optional<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = digit(hex[2 * i]);
    const int lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string UpperHex(std::string_view hex) {
  std::string out(hex);
  for (char& c : out) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// Returns the little-endian two's complement integer of `bytes` bytes (a multiple of 4) at
// `data` in decimal.
std::string DecimalString(const uint8_t* data, int bytes) {
  std::vector<uint32_t> limbs(static_cast<size_t>(bytes) / 4);
  std::memcpy(limbs.data(), data, limbs.size() * 4);
  const bool negative = (limbs.back() >> 31) != 0;
  if (negative) {
    uint64_t carry = 1;
    for (uint32_t& limb : limbs) {
      const uint64_t v = static_cast<uint64_t>(~limb) + carry;
      limb = static_cast<uint32_t>(v);
      carry = v >> 32;
    }
  }
  std::string digits;
  auto is_zero = [&] {
    return std::all_of(limbs.begin(), limbs.end(), [](uint32_t l) { return l == 0; });
  };
  while (!is_zero()) {
    uint64_t remainder = 0;
    for (size_t i = limbs.size(); i-- > 0;) {
      const uint64_t v = (remainder << 32) | limbs[i];
      limbs[i] = static_cast<uint32_t>(v / 10);
      remainder = v % 10;
    }
    digits.push_back(static_cast<char>('0' + remainder));
  }
  if (digits.empty()) digits = "0";
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalize.
    uint32_t e = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3ff) << 13);
  }
  return std::bit_cast<float>(bits);
}

// Rounds to the nearest float16 (ties to even).
uint16_t FloatToHalf(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);  // rounds to inf
  if (abs < 0x38800000u) {                                              // subnormal or zero
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal
    const uint32_t mantissa = (abs & 0x7fffff) | 0x800000;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    uint32_t value = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (value & 1))) ++value;
    return static_cast<uint16_t>(sign | value);
  }
  uint32_t value = ((abs >> 23) - 112) << 10 | ((abs >> 13) & 0x3ff);
  const uint32_t rest = abs & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (value & 1))) ++value;
  return static_cast<uint16_t>(sign | value);
}

Json FloatJson(double value, bool single) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (single) {
    // The shortest text that reads back as this float, as a double.
    const std::string text = fmt::format("{}", static_cast<float>(value));
    return std::strtod(text.c_str(), nullptr);
  }
  return value;
}

std::vector<std::pair<std::string, std::string>> DecodeMetadata(const char* metadata) {
  std::vector<std::pair<std::string, std::string>> out;
  if (metadata == nullptr) return out;
  const int32_t n = LoadAt<int32_t>(metadata, 0);
  const char* p = metadata + 4;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t key_length = LoadAt<int32_t>(p, 0);
    std::string key(p + 4, key_length);
    p += 4 + key_length;
    const int32_t value_length = LoadAt<int32_t>(p, 0);
    std::string value(p + 4, value_length);
    p += 4 + value_length;
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

Json MetadataJson(const std::vector<std::pair<std::string, std::string>>& pairs) {
  Json out = Json::array();
  for (const auto& [key, value] : pairs) out.push_back(Json{{"key", key}, {"value", value}});
  return out;
}

const char* UnitName(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kSecond:
      return "SECOND";
    case TimeUnit::kMilli:
      return "MILLISECOND";
    case TimeUnit::kMicro:
      return "MICROSECOND";
    case TimeUnit::kNano:
      return "NANOSECOND";
  }
  return "?";
}

// Returns the integer at `index` of a buffer of integers of type `id`.
int64_t IntegerAt(TypeId id, const void* data, int64_t index) {
  switch (id) {
    case TypeId::kInt8:
      return LoadAt<int8_t>(data, index);
    case TypeId::kUInt8:
      return LoadAt<uint8_t>(data, index);
    case TypeId::kInt16:
      return LoadAt<int16_t>(data, index);
    case TypeId::kUInt16:
      return LoadAt<uint16_t>(data, index);
    case TypeId::kInt32:
      return LoadAt<int32_t>(data, index);
    case TypeId::kUInt32:
      return LoadAt<uint32_t>(data, index);
    default:
      return LoadAt<int64_t>(data, index);
  }
}

// ---------------------------------------------------------------------------------------
// Arrays -> JSON (dictionaries kept inline under kInlineDictionary)

class Emitter {
 public:
  // Returns the JSON field of `schema`; assigns dictionary ids (children first).
  Result<Json> Field(const ArrowSchema& schema) {
    Json field = Json::object();
    field["name"] = schema.name != nullptr ? schema.name : "";
    field["nullable"] = (schema.flags & ARROW_FLAG_NULLABLE) != 0;
    const ArrowSchema& value = schema.dictionary != nullptr ? *schema.dictionary : schema;
    BRIDGE_ASSIGN_OR_RETURN(DataType type, Parse(value));
    BRIDGE_ASSIGN_OR_RETURN(field["type"], TypeJson(value, type));
    Json children = Json::array();
    for (int64_t i = 0; i < value.n_children; ++i) {
      BRIDGE_ASSIGN_OR_RETURN(Json child, Field(*value.children[i]));
      children.push_back(std::move(child));
    }
    field["children"] = std::move(children);
    if (schema.dictionary != nullptr) {
      BRIDGE_ASSIGN_OR_RETURN(DataType index, Parse(schema));
      if (!IsInteger(index.id)) {
        return InvalidArgument("field '", field["name"].get<std::string>(),
                               "': dictionary index type '", schema.format, "' is not an integer");
      }
      BRIDGE_ASSIGN_OR_RETURN(Json index_json, TypeJson(schema, index));
      field["dictionary"] =
          Json{{"id", next_dictionary_id_++},
               {"indexType", std::move(index_json)},
               {"isOrdered", (schema.flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0}};
    }
    auto metadata = DecodeMetadata(schema.metadata);
    if (!metadata.empty()) field["metadata"] = MetadataJson(metadata);
    return field;
  }

  // Returns rows [start, start + length) of `array` (counted from its offset) as a JSON
  // column. `path` names the column in errors.
  Result<Json> Column(const ArrowSchema& schema, const ArrowArray& array, int64_t start,
                      int64_t length, const std::string& path) {
    if (array.release == nullptr) return InvalidArgument("column '", path, "': released array");
    if (start < 0 || length < 0 || start + length > array.length) {
      return InvalidArgument("column '", path, "': rows [", start, ", ", start + length,
                             ") outside an array of length ", array.length);
    }
    Json column = Json::object();
    column["name"] = schema.name != nullptr ? schema.name : "";
    column["count"] = length;
    const int64_t p = array.offset + start;  // physical index of the first row

    if (schema.dictionary != nullptr) {
      BRIDGE_ASSIGN_OR_RETURN(DataType index, Parse(schema));
      BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
      if (array.dictionary == nullptr) {
        return InvalidArgument("column '", path, "': dictionary-encoded array without dictionary");
      }
      column["VALIDITY"] = Validity(array, p, length);
      BRIDGE_ASSIGN_OR_RETURN(column["DATA"], Integers(index, array, 1, p, length, path));
      BRIDGE_ASSIGN_OR_RETURN(column[kInlineDictionary],
                              Column(*schema.dictionary, *array.dictionary, 0,
                                     array.dictionary->length, path + ".<dictionary>"));
      return column;
    }

    BRIDGE_ASSIGN_OR_RETURN(DataType type, Parse(schema));
    if (array.n_children != schema.n_children) {
      return InvalidArgument("column '", path, "': array has ", array.n_children,
                             " children, schema ", schema.n_children);
    }
    switch (type.id) {
      case TypeId::kNull:
        return column;
      case TypeId::kBool: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(const void* bits, Data(array, 1, length, path));
        Json data = Json::array();
        for (int64_t i = 0; i < length; ++i) data.push_back(BitAt(bits, p + i));
        column["DATA"] = std::move(data);
        return column;
      }
      case TypeId::kInt8:
      case TypeId::kUInt8:
      case TypeId::kInt16:
      case TypeId::kUInt16:
      case TypeId::kInt32:
      case TypeId::kUInt32:
      case TypeId::kInt64:
      case TypeId::kUInt64:
      case TypeId::kDate32:
      case TypeId::kDate64:
      case TypeId::kTime32:
      case TypeId::kTime64:
      case TypeId::kTimestamp:
      case TypeId::kDuration:
      case TypeId::kIntervalMonths: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(column["DATA"], Integers(type, array, 1, p, length, path));
        return column;
      }
      case TypeId::kFloat16:
      case TypeId::kFloat32:
      case TypeId::kFloat64: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(const void* values, Data(array, 1, length, path));
        Json data = Json::array();
        for (int64_t i = 0; i < length; ++i) {
          if (type.id == TypeId::kFloat16) {
            data.push_back(FloatJson(HalfToFloat(LoadAt<uint16_t>(values, p + i)), true));
          } else if (type.id == TypeId::kFloat32) {
            data.push_back(FloatJson(LoadAt<float>(values, p + i), true));
          } else {
            data.push_back(FloatJson(LoadAt<double>(values, p + i), false));
          }
        }
        column["DATA"] = std::move(data);
        return column;
      }
      case TypeId::kDecimal: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(const void* values, Data(array, 1, length, path));
        const int bytes = type.bit_width / 8;
        Json data = Json::array();
        for (int64_t i = 0; i < length; ++i) {
          data.push_back(
              DecimalString(static_cast<const uint8_t*>(values) + (p + i) * bytes, bytes));
        }
        column["DATA"] = std::move(data);
        return column;
      }
      case TypeId::kIntervalDayTime:
      case TypeId::kIntervalMonthDayNano: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(const void* values, Data(array, 1, length, path));
        Json data = Json::array();
        for (int64_t i = 0; i < length; ++i) {
          if (type.id == TypeId::kIntervalDayTime) {
            data.push_back(Json{{"days", LoadAt<int32_t>(values, 2 * (p + i))},
                                {"milliseconds", LoadAt<int32_t>(values, 2 * (p + i) + 1)}});
          } else {
            const auto* at = static_cast<const uint8_t*>(values) + (p + i) * 16;
            data.push_back(Json{{"months", LoadAt<int32_t>(at, 0)},
                                {"days", LoadAt<int32_t>(at, 1)},
                                {"nanoseconds", LoadAt<int64_t>(at + 8, 0)}});
          }
        }
        column["DATA"] = std::move(data);
        return column;
      }
      case TypeId::kFixedSizeBinary: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(const void* values, Data(array, 1, length, path));
        Json data = Json::array();
        for (int64_t i = 0; i < length; ++i) {
          data.push_back(Hex(static_cast<const uint8_t*>(values) + (p + i) * type.fixed_size,
                             type.fixed_size));
        }
        column["DATA"] = std::move(data);
        return column;
      }
      case TypeId::kBinary:
      case TypeId::kUtf8:
      case TypeId::kLargeBinary:
      case TypeId::kLargeUtf8: {
        const bool large = type.id == TypeId::kLargeBinary || type.id == TypeId::kLargeUtf8;
        const bool utf8 = type.id == TypeId::kUtf8 || type.id == TypeId::kLargeUtf8;
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 3, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(auto offsets, Offsets(array, p, length, large, path));
        const int64_t bytes = offsets.back() - offsets.front();
        const void* chars = array.buffers[2];
        if (bytes > 0 && chars == nullptr) {
          return InvalidArgument("column '", path, "': missing data buffer");
        }
        Json offset_json = Json::array();
        Json data = Json::array();
        for (int64_t i = 0; i <= length; ++i) {
          const int64_t o = offsets[i] - offsets[0];
          if (large) {
            offset_json.push_back(std::to_string(o));
          } else {
            offset_json.push_back(o);
          }
          if (i == length) break;
          const auto* begin = static_cast<const uint8_t*>(chars) + offsets[i];
          const int64_t size = offsets[i + 1] - offsets[i];
          if (utf8) {
            data.push_back(std::string(reinterpret_cast<const char*>(begin), size));
          } else {
            data.push_back(Hex(begin, size));
          }
        }
        column["OFFSET"] = std::move(offset_json);
        column["DATA"] = std::move(data);
        return column;
      }
      case TypeId::kBinaryView:
      case TypeId::kUtf8View:
        return Views(type, array, p, length, path, std::move(column));
      case TypeId::kList:
      case TypeId::kLargeList:
      case TypeId::kMap: {
        const bool large = type.id == TypeId::kLargeList;
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 2, path));
        BRIDGE_RETURN_NOT_OK(NeedChildren(schema, 1, path));
        column["VALIDITY"] = Validity(array, p, length);
        BRIDGE_ASSIGN_OR_RETURN(auto offsets, Offsets(array, p, length, large, path));
        const ArrowArray& child = *array.children[0];
        if (offsets.back() > child.length) {
          return InvalidArgument("column '", path, "': offset ", offsets.back(),
                                 " past the child's length ", child.length);
        }
        Json offset_json = Json::array();
        for (int64_t o : offsets) {
          if (large) {
            offset_json.push_back(std::to_string(o - offsets[0]));
          } else {
            offset_json.push_back(o - offsets[0]);
          }
        }
        column["OFFSET"] = std::move(offset_json);
        BRIDGE_ASSIGN_OR_RETURN(Json child_json, Child(schema, array, 0, offsets[0],
                                                       offsets.back() - offsets[0], path));
        column["children"] = Json::array({std::move(child_json)});
        return column;
      }
      case TypeId::kListView:
      case TypeId::kLargeListView: {
        const bool large = type.id == TypeId::kLargeListView;
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 3, path));
        BRIDGE_RETURN_NOT_OK(NeedChildren(schema, 1, path));
        column["VALIDITY"] = Validity(array, p, length);
        const ArrowArray& child = *array.children[0];
        Json offset_json = Json::array();
        Json size_json = Json::array();
        if (length > 0 && (array.buffers[1] == nullptr || array.buffers[2] == nullptr)) {
          return InvalidArgument("column '", path, "': missing offsets or sizes buffer");
        }
        for (int64_t i = 0; i < length; ++i) {
          const int64_t o = large ? LoadAt<int64_t>(array.buffers[1], p + i)
                                  : LoadAt<int32_t>(array.buffers[1], p + i);
          const int64_t s = large ? LoadAt<int64_t>(array.buffers[2], p + i)
                                  : LoadAt<int32_t>(array.buffers[2], p + i);
          if (IsValid(array, p + i) && (o < 0 || s < 0 || o + s > child.length)) {
            return InvalidArgument("column '", path, "', row ", start + i, ": list view [", o, ", ",
                                   o + s, ") outside the child's length ", child.length);
          }
          offset_json.push_back(large ? Json(std::to_string(o)) : Json(o));
          size_json.push_back(large ? Json(std::to_string(s)) : Json(s));
        }
        column["OFFSET"] = std::move(offset_json);
        column["SIZE"] = std::move(size_json);
        BRIDGE_ASSIGN_OR_RETURN(Json child_json, Child(schema, array, 0, 0, child.length, path));
        column["children"] = Json::array({std::move(child_json)});
        return column;
      }
      case TypeId::kFixedSizeList: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 1, path));
        BRIDGE_RETURN_NOT_OK(NeedChildren(schema, 1, path));
        column["VALIDITY"] = Validity(array, p, length);
        const int64_t n = type.fixed_size;
        BRIDGE_ASSIGN_OR_RETURN(Json child_json, Child(schema, array, 0, p * n, length * n, path));
        column["children"] = Json::array({std::move(child_json)});
        return column;
      }
      case TypeId::kStruct: {
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 1, path));
        column["VALIDITY"] = Validity(array, p, length);
        Json children = Json::array();
        for (int64_t j = 0; j < schema.n_children; ++j) {
          BRIDGE_ASSIGN_OR_RETURN(Json child_json, Child(schema, array, j, p, length, path));
          children.push_back(std::move(child_json));
        }
        column["children"] = std::move(children);
        return column;
      }
      case TypeId::kSparseUnion:
      case TypeId::kDenseUnion: {
        const bool dense = type.id == TypeId::kDenseUnion;
        BRIDGE_RETURN_NOT_OK(NeedBuffers(array, dense ? 2 : 1, path));
        if (schema.n_children != static_cast<int64_t>(type.type_codes.size())) {
          return InvalidArgument("column '", path, "': union with ", type.type_codes.size(),
                                 " type ids and ", schema.n_children, " children");
        }
        BRIDGE_ASSIGN_OR_RETURN(const void* ids, Data(array, 0, length, path));
        const void* offsets = nullptr;
        if (dense) {
          BRIDGE_ASSIGN_OR_RETURN(offsets, Data(array, 1, length, path));
        }
        Json id_json = Json::array();
        Json offset_json = Json::array();
        for (int64_t i = 0; i < length; ++i) {
          const int8_t code = LoadAt<int8_t>(ids, p + i);
          const auto it = std::find(type.type_codes.begin(), type.type_codes.end(), code);
          if (it == type.type_codes.end()) {
            return InvalidArgument("column '", path, "', row ", start + i, ": type id ",
                                   static_cast<int>(code), " is not one of the union's");
          }
          id_json.push_back(static_cast<int>(code));
          if (dense) {
            const int32_t o = LoadAt<int32_t>(offsets, p + i);
            const ArrowArray& child = *array.children[it - type.type_codes.begin()];
            if (o < 0 || o >= child.length) {
              return InvalidArgument("column '", path, "', row ", start + i, ": offset ", o,
                                     " outside the child's length ", child.length);
            }
            offset_json.push_back(o);
          }
        }
        column["TYPE_ID"] = std::move(id_json);
        if (dense) column["OFFSET"] = std::move(offset_json);
        Json children = Json::array();
        for (int64_t j = 0; j < schema.n_children; ++j) {
          const int64_t child_start = dense ? 0 : p;
          const int64_t child_length = dense ? array.children[j]->length : length;
          BRIDGE_ASSIGN_OR_RETURN(Json child_json,
                                  Child(schema, array, j, child_start, child_length, path));
          children.push_back(std::move(child_json));
        }
        column["children"] = std::move(children);
        return column;
      }
      case TypeId::kRunEndEncoded:
        return RunEnds(schema, array, p, length, path, std::move(column));
    }
    return Unimplemented("column '", path, "': type '", schema.format, "'");
  }

 private:
  static Result<DataType> Parse(const ArrowSchema& schema) {
    if (schema.format == nullptr) return InvalidArgument("schema without format string");
    return ParseFormat(schema.format);
  }

  static Result<Json> TypeJson(const ArrowSchema& schema, const DataType& type) {
    auto integer = [](bool is_signed, int bits) {
      return Json{{"name", "int"}, {"isSigned", is_signed}, {"bitWidth", bits}};
    };
    switch (type.id) {
      case TypeId::kNull:
        return Json{{"name", "null"}};
      case TypeId::kBool:
        return Json{{"name", "bool"}};
      case TypeId::kInt8:
      case TypeId::kUInt8:
      case TypeId::kInt16:
      case TypeId::kUInt16:
      case TypeId::kInt32:
      case TypeId::kUInt32:
      case TypeId::kInt64:
      case TypeId::kUInt64:
        return integer(IsSignedInteger(type.id), type.FixedBitWidth());
      case TypeId::kFloat16:
        return Json{{"name", "floatingpoint"}, {"precision", "HALF"}};
      case TypeId::kFloat32:
        return Json{{"name", "floatingpoint"}, {"precision", "SINGLE"}};
      case TypeId::kFloat64:
        return Json{{"name", "floatingpoint"}, {"precision", "DOUBLE"}};
      case TypeId::kBinary:
        return Json{{"name", "binary"}};
      case TypeId::kLargeBinary:
        return Json{{"name", "largebinary"}};
      case TypeId::kBinaryView:
        return Json{{"name", "binaryview"}};
      case TypeId::kUtf8:
        return Json{{"name", "utf8"}};
      case TypeId::kLargeUtf8:
        return Json{{"name", "largeutf8"}};
      case TypeId::kUtf8View:
        return Json{{"name", "utf8view"}};
      case TypeId::kDecimal:
        return Json{{"name", "decimal"},
                    {"precision", type.precision},
                    {"scale", type.scale},
                    {"bitWidth", type.bit_width}};
      case TypeId::kFixedSizeBinary:
        return Json{{"name", "fixedsizebinary"}, {"byteWidth", type.fixed_size}};
      case TypeId::kDate32:
        return Json{{"name", "date"}, {"unit", "DAY"}};
      case TypeId::kDate64:
        return Json{{"name", "date"}, {"unit", "MILLISECOND"}};
      case TypeId::kTime32:
      case TypeId::kTime64:
        return Json{{"name", "time"},
                    {"unit", UnitName(type.unit)},
                    {"bitWidth", type.id == TypeId::kTime32 ? 32 : 64}};
      case TypeId::kTimestamp: {
        Json out{{"name", "timestamp"}, {"unit", UnitName(type.unit)}};
        if (!type.timezone.empty()) out["timezone"] = type.timezone;
        return out;
      }
      case TypeId::kDuration:
        return Json{{"name", "duration"}, {"unit", UnitName(type.unit)}};
      case TypeId::kIntervalMonths:
        return Json{{"name", "interval"}, {"unit", "YEAR_MONTH"}};
      case TypeId::kIntervalDayTime:
        return Json{{"name", "interval"}, {"unit", "DAY_TIME"}};
      case TypeId::kIntervalMonthDayNano:
        return Json{{"name", "interval"}, {"unit", "MONTH_DAY_NANO"}};
      case TypeId::kList:
        return Json{{"name", "list"}};
      case TypeId::kLargeList:
        return Json{{"name", "largelist"}};
      case TypeId::kListView:
        return Json{{"name", "listview"}};
      case TypeId::kLargeListView:
        return Json{{"name", "largelistview"}};
      case TypeId::kFixedSizeList:
        return Json{{"name", "fixedsizelist"}, {"listSize", type.fixed_size}};
      case TypeId::kStruct:
        return Json{{"name", "struct"}};
      case TypeId::kMap:
        return Json{{"name", "map"},
                    {"keysSorted", (schema.flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0}};
      case TypeId::kSparseUnion:
      case TypeId::kDenseUnion: {
        Json ids = Json::array();
        for (int8_t code : type.type_codes) ids.push_back(static_cast<int>(code));
        return Json{{"name", "union"},
                    {"mode", type.id == TypeId::kDenseUnion ? "DENSE" : "SPARSE"},
                    {"typeIds", std::move(ids)}};
      }
      case TypeId::kRunEndEncoded:
        return Json{{"name", "runendencoded"}};
    }
    return Unimplemented("type '", schema.format, "'");
  }

  static Status NeedBuffers(const ArrowArray& array, int64_t n, const std::string& path) {
    if (array.n_buffers != n) {
      return InvalidArgument("column '", path, "': ", array.n_buffers, " buffers, expected ", n);
    }
    return OkStatus();
  }

  static Status NeedChildren(const ArrowSchema& schema, int64_t n, const std::string& path) {
    if (schema.n_children != n) {
      return InvalidArgument("column '", path, "': ", schema.n_children, " children, expected ", n);
    }
    return OkStatus();
  }

  // Buffer `i`, which must be present unless there are no rows.
  static Result<const void*> Data(const ArrowArray& array, int64_t i, int64_t length,
                                  const std::string& path) {
    const void* data = array.buffers[i];
    if (data == nullptr && length > 0) {
      return InvalidArgument("column '", path, "': buffer ", i, " is missing");
    }
    return data;
  }

  static bool IsValid(const ArrowArray& array, int64_t physical) {
    return array.null_count == 0 || array.buffers[0] == nullptr ||
           BitAt(array.buffers[0], physical);
  }

  static Json Validity(const ArrowArray& array, int64_t p, int64_t length) {
    Json out = Json::array();
    for (int64_t i = 0; i < length; ++i) out.push_back(IsValid(array, p + i) ? 1 : 0);
    return out;
  }

  // Integers of `type` from buffer `b`: numbers up to 32 bits, strings for 64 bits.
  static Result<Json> Integers(const DataType& type, const ArrowArray& array, int64_t b, int64_t p,
                               int64_t length, const std::string& path) {
    BRIDGE_ASSIGN_OR_RETURN(const void* values, Data(array, b, length, path));
    Json out = Json::array();
    const int bits = type.FixedBitWidth();
    for (int64_t i = 0; i < length; ++i) {
      if (bits == 64) {
        if (type.id == TypeId::kUInt64) {
          out.push_back(std::to_string(LoadAt<uint64_t>(values, p + i)));
        } else {
          out.push_back(std::to_string(LoadAt<int64_t>(values, p + i)));
        }
      } else {
        const TypeId id = type.id == TypeId::kDate32 || type.id == TypeId::kTime32 ||
                                  type.id == TypeId::kIntervalMonths
                              ? TypeId::kInt32
                              : type.id;
        out.push_back(IntegerAt(id, values, p + i));
      }
    }
    return out;
  }

  // The length + 1 offsets of rows [p, p + length), checked to be non-decreasing.
  static Result<std::vector<int64_t>> Offsets(const ArrowArray& array, int64_t p, int64_t length,
                                              bool large, const std::string& path) {
    std::vector<int64_t> out;
    out.reserve(length + 1);
    if (array.buffers[1] == nullptr) {
      if (length > 0) return InvalidArgument("column '", path, "': offsets buffer is missing");
      out.push_back(0);
      return out;
    }
    for (int64_t i = 0; i <= length; ++i) {
      const int64_t o = large ? LoadAt<int64_t>(array.buffers[1], p + i)
                              : LoadAt<int32_t>(array.buffers[1], p + i);
      if (o < 0 || (!out.empty() && o < out.back())) {
        return InvalidArgument("column '", path, "': offsets decrease at row ", i);
      }
      out.push_back(o);
    }
    return out;
  }

  Result<Json> Child(const ArrowSchema& schema, const ArrowArray& array, int64_t j, int64_t start,
                     int64_t length, const std::string& path) {
    const ArrowSchema& child_schema = *schema.children[j];
    return Column(child_schema, *array.children[j], start, length,
                  path + "." + (child_schema.name != nullptr ? child_schema.name : ""));
  }

  static Result<Json> Views(const DataType& type, const ArrowArray& array, int64_t p,
                            int64_t length, const std::string& path, Json column) {
    const bool utf8 = type.id == TypeId::kUtf8View;
    if (array.n_buffers < 3) {
      return InvalidArgument("column '", path, "': ", array.n_buffers,
                             " buffers, expected at least 3");
    }
    const int64_t variadic = array.n_buffers - 3;
    const void* sizes = array.buffers[array.n_buffers - 1];
    if (variadic > 0 && sizes == nullptr) {
      return InvalidArgument("column '", path, "': missing variadic buffer sizes");
    }
    column["VALIDITY"] = Validity(array, p, length);
    BRIDGE_ASSIGN_OR_RETURN(const void* views, Data(array, 1, length, path));
    Json view_json = Json::array();
    for (int64_t i = 0; i < length; ++i) {
      const auto* view = static_cast<const uint8_t*>(views) + (p + i) * 16;
      const int32_t size = LoadAt<int32_t>(view, 0);
      if (!IsValid(array, p + i)) {
        view_json.push_back(Json{{"SIZE", 0}, {"INLINED", ""}});
        continue;
      }
      if (size < 0) {
        return InvalidArgument("column '", path, "', row ", i, ": negative view size");
      }
      if (size <= 12) {
        std::string inlined(reinterpret_cast<const char*>(view + 4), size);
        view_json.push_back(
            Json{{"SIZE", size}, {"INLINED", utf8 ? inlined : Hex(view + 4, size)}});
        continue;
      }
      const int32_t index = LoadAt<int32_t>(view, 2);
      const int32_t offset = LoadAt<int32_t>(view, 3);
      if (index < 0 || index >= variadic || offset < 0 ||
          offset + static_cast<int64_t>(size) > LoadAt<int64_t>(sizes, index)) {
        return InvalidArgument("column '", path, "', row ", i, ": view of buffer ", index, " at ",
                               offset, " size ", size, " is outside the data");
      }
      view_json.push_back(Json{{"SIZE", size},
                               {"PREFIX_HEX", Hex(view + 4, 4)},
                               {"BUFFER_INDEX", index},
                               {"OFFSET", offset}});
    }
    column["VIEWS"] = std::move(view_json);
    Json buffers = Json::array();
    for (int64_t k = 0; k < variadic; ++k) {
      const int64_t size = LoadAt<int64_t>(sizes, k);
      const void* data = array.buffers[2 + k];
      if (size > 0 && data == nullptr) {
        return InvalidArgument("column '", path, "': variadic buffer ", k, " is missing");
      }
      buffers.push_back(Hex(static_cast<const uint8_t*>(data), size));
    }
    column["VARIADIC_DATA_BUFFERS"] = std::move(buffers);
    return column;
  }

  // Run-end encoded rows [p, p + length), written as Arrow C++ does: logical run ends
  // (relative to the first row, the last one clamped to `length`) and the values they cover.
  Result<Json> RunEnds(const ArrowSchema& schema, const ArrowArray& array, int64_t p,
                       int64_t length, const std::string& path, Json column) {
    BRIDGE_RETURN_NOT_OK(NeedBuffers(array, 0, path));
    BRIDGE_RETURN_NOT_OK(NeedChildren(schema, 2, path));
    const ArrowArray& ends = *array.children[0];
    BRIDGE_ASSIGN_OR_RETURN(DataType ends_type, Parse(*schema.children[0]));
    if (ends_type.id != TypeId::kInt16 && ends_type.id != TypeId::kInt32 &&
        ends_type.id != TypeId::kInt64) {
      return InvalidArgument("column '", path, "': run ends of type '", schema.children[0]->format,
                             "'");
    }
    BRIDGE_RETURN_NOT_OK(NeedBuffers(ends, 2, path + ".run_ends"));
    BRIDGE_ASSIGN_OR_RETURN(const void* end_values, Data(ends, 1, ends.length, path));
    auto end_at = [&](int64_t k) { return IntegerAt(ends_type.id, end_values, ends.offset + k); };
    int64_t first = 0;
    while (first < ends.length && end_at(first) <= p) ++first;
    int64_t last = first;  // one past the last run that covers a row
    std::vector<int64_t> logical_ends;
    while (last < ends.length && static_cast<int64_t>(logical_ends.size()) < length) {
      const int64_t end = std::min(end_at(last), p + length) - p;
      if (!logical_ends.empty() && end <= logical_ends.back()) {
        return InvalidArgument("column '", path, "': run ends do not increase");
      }
      logical_ends.push_back(end);
      ++last;
      if (end >= length) break;
    }
    if (length > 0 && (logical_ends.empty() || logical_ends.back() < length)) {
      return InvalidArgument("column '", path, "': run ends stop before row ", p + length);
    }
    const int64_t runs = static_cast<int64_t>(logical_ends.size());
    Json ends_json = Json::object();
    ends_json["name"] = schema.children[0]->name != nullptr ? schema.children[0]->name : "";
    ends_json["count"] = runs;
    ends_json["VALIDITY"] = Json(std::vector<int>(runs, 1));
    Json data = Json::array();
    for (int64_t e : logical_ends) {
      data.push_back(ends_type.id == TypeId::kInt64 ? Json(std::to_string(e)) : Json(e));
    }
    ends_json["DATA"] = std::move(data);
    if (first + runs > array.children[1]->length) {
      return InvalidArgument("column '", path, "': more runs than values");
    }
    BRIDGE_ASSIGN_OR_RETURN(Json values_json, Child(schema, array, 1, first, runs, path));
    column["children"] = Json::array({std::move(ends_json), std::move(values_json)});
    return column;
  }

  int64_t next_dictionary_id_ = 0;
};

// The internal form of a document: the schema as JSON and the batches, dictionaries inline.
struct Document {
  Json schema;
  std::vector<Json> batches;
};

Result<Document> Emit(const ArrowSchema& schema, std::span<const ArrowArray* const> batches) {
  if (schema.format == nullptr || std::string_view(schema.format) != "+s") {
    return InvalidArgument("json: the schema is not a struct ('+s') of columns");
  }
  Emitter emitter;
  Document doc;
  Json fields = Json::array();
  for (int64_t j = 0; j < schema.n_children; ++j) {
    BRIDGE_ASSIGN_OR_RETURN(Json field, emitter.Field(*schema.children[j]));
    fields.push_back(std::move(field));
  }
  doc.schema = Json{{"fields", std::move(fields)}};
  auto metadata = DecodeMetadata(schema.metadata);
  if (!metadata.empty()) doc.schema["metadata"] = MetadataJson(metadata);
  for (size_t b = 0; b < batches.size(); ++b) {
    const ArrowArray& batch = *batches[b];
    if (batch.release == nullptr) return InvalidArgument("json: batch ", b, " is released");
    if (batch.n_children != schema.n_children) {
      return InvalidArgument("json: batch ", b, " has ", batch.n_children, " columns, schema ",
                             schema.n_children);
    }
    Json columns = Json::array();
    for (int64_t j = 0; j < schema.n_children; ++j) {
      const std::string name = schema.children[j]->name != nullptr ? schema.children[j]->name : "";
      auto column =
          emitter.Column(*schema.children[j], *batch.children[j], batch.offset, batch.length, name);
      if (!column.ok()) return WithContext(column.status(), StrCat("json: batch ", b));
      columns.push_back(std::move(column).value());
    }
    doc.batches.push_back(Json{{"count", batch.length}, {"columns", std::move(columns)}});
  }
  return doc;
}

// ---------------------------------------------------------------------------------------
// Reading integration JSON

enum class Kind {
  kNull,
  kBool,
  kInteger,  // every type whose value is one integer: ints, dates, times, timestamps, ...
  kDecimal,
  kFloat,
  kDayTime,
  kMonthDayNano,
  kBinary,  // binary, large binary, fixed-size binary: hex DATA
  kUtf8,    // utf8, large utf8: text DATA
  kBinaryView,
  kUtf8View,
  kList,  // list, large list, map
  kListView,
  kFixedSizeList,
  kStruct,
  kUnion,
  kRunEndEncoded,
};

// A field of the expected schema, parsed once for the comparison.
struct FieldInfo {
  std::string path;  // "a.b"
  std::string type;  // canonical description, also used to compare types
  Kind kind = Kind::kNull;
  int float_bits = 0;
  int32_t list_size = 0;
  bool dense = false;
  std::vector<int64_t> type_ids;
  bool dictionary = false;
  int64_t dictionary_id = -1;
  std::string dictionary_type;                                // canonical "int8 ordered"
  std::vector<std::pair<std::string, std::string>> metadata;  // sorted
  std::string name;
  bool nullable = true;
  std::vector<FieldInfo> children;
};

const Json* Member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

Result<std::string> StringMember(const Json& object, const char* key, const std::string& where) {
  const Json* v = Member(object, key);
  if (v == nullptr || !v->is_string()) {
    return InvalidArgument(where, ": '", key, "' is missing or not a string");
  }
  return v->get<std::string>();
}

Result<int64_t> IntMember(const Json& object, const char* key, const std::string& where) {
  const Json* v = Member(object, key);
  if (v == nullptr || !v->is_number_integer()) {
    return InvalidArgument(where, ": '", key, "' is missing or not an integer");
  }
  return v->get<int64_t>();
}

bool BoolMember(const Json& object, const char* key, bool otherwise) {
  const Json* v = Member(object, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : otherwise;
}

// Fills kind, type (canonical text) and type parameters of `info` from a JSON type object.
Status ParseType(const Json& type, FieldInfo& info) {
  const std::string where = StrCat("field '", info.path, "'");
  BRIDGE_ASSIGN_OR_RETURN(std::string name, StringMember(type, "name", where + " type"));
  auto unit = [&]() -> Result<std::string> { return StringMember(type, "unit", where); };
  if (name == "null") {
    info.kind = Kind::kNull;
    info.type = "null";
  } else if (name == "bool") {
    info.kind = Kind::kBool;
    info.type = "bool";
  } else if (name == "int") {
    BRIDGE_ASSIGN_OR_RETURN(int64_t bits, IntMember(type, "bitWidth", where));
    const Json* is_signed = Member(type, "isSigned");
    if (is_signed == nullptr || !is_signed->is_boolean()) {
      return InvalidArgument(where, ": 'isSigned' is missing");
    }
    info.kind = Kind::kInteger;
    info.type = StrCat(is_signed->get<bool>() ? "int" : "uint", bits);
  } else if (name == "floatingpoint") {
    BRIDGE_ASSIGN_OR_RETURN(std::string precision, StringMember(type, "precision", where));
    info.kind = Kind::kFloat;
    info.float_bits = precision == "HALF" ? 16 : precision == "SINGLE" ? 32 : 64;
    if (precision != "HALF" && precision != "SINGLE" && precision != "DOUBLE") {
      return InvalidArgument(where, ": precision '", precision, "'");
    }
    info.type = StrCat("float", info.float_bits);
  } else if (name == "decimal" || name == "decimal32" || name == "decimal64" ||
             name == "decimal128" || name == "decimal256") {
    BRIDGE_ASSIGN_OR_RETURN(int64_t precision, IntMember(type, "precision", where));
    BRIDGE_ASSIGN_OR_RETURN(int64_t scale, IntMember(type, "scale", where));
    int64_t bits = name == "decimal" ? 128 : std::stoi(name.substr(7));
    if (const Json* w = Member(type, "bitWidth"); w != nullptr && w->is_number_integer()) {
      bits = w->get<int64_t>();
    }
    info.kind = Kind::kDecimal;
    info.type = StrCat("decimal", bits, "(", precision, ",", scale, ")");
  } else if (name == "date") {
    BRIDGE_ASSIGN_OR_RETURN(std::string u, unit());
    info.kind = Kind::kInteger;
    info.type = StrCat("date[", u, "]");
  } else if (name == "time") {
    BRIDGE_ASSIGN_OR_RETURN(std::string u, unit());
    BRIDGE_ASSIGN_OR_RETURN(int64_t bits, IntMember(type, "bitWidth", where));
    info.kind = Kind::kInteger;
    info.type = StrCat("time", bits, "[", u, "]");
  } else if (name == "timestamp") {
    BRIDGE_ASSIGN_OR_RETURN(std::string u, unit());
    std::string tz;
    if (const Json* t = Member(type, "timezone"); t != nullptr && t->is_string()) {
      tz = t->get<std::string>();
    }
    info.kind = Kind::kInteger;
    info.type = StrCat("timestamp[", u, tz.empty() ? "" : ", tz=", tz, "]");
  } else if (name == "duration") {
    BRIDGE_ASSIGN_OR_RETURN(std::string u, unit());
    info.kind = Kind::kInteger;
    info.type = StrCat("duration[", u, "]");
  } else if (name == "interval") {
    BRIDGE_ASSIGN_OR_RETURN(std::string u, unit());
    if (u == "YEAR_MONTH") {
      info.kind = Kind::kInteger;
    } else if (u == "DAY_TIME") {
      info.kind = Kind::kDayTime;
    } else if (u == "MONTH_DAY_NANO") {
      info.kind = Kind::kMonthDayNano;
    } else {
      return InvalidArgument(where, ": interval unit '", u, "'");
    }
    info.type = StrCat("interval[", u, "]");
  } else if (name == "binary" || name == "largebinary") {
    info.kind = Kind::kBinary;
    info.type = name;
  } else if (name == "fixedsizebinary") {
    BRIDGE_ASSIGN_OR_RETURN(int64_t width, IntMember(type, "byteWidth", where));
    info.kind = Kind::kBinary;
    info.type = StrCat("fixedsizebinary[", width, "]");
  } else if (name == "utf8" || name == "largeutf8") {
    info.kind = Kind::kUtf8;
    info.type = name;
  } else if (name == "binaryview") {
    info.kind = Kind::kBinaryView;
    info.type = name;
  } else if (name == "utf8view") {
    info.kind = Kind::kUtf8View;
    info.type = name;
  } else if (name == "list" || name == "largelist") {
    info.kind = Kind::kList;
    info.type = name;
  } else if (name == "map") {
    info.kind = Kind::kList;
    info.type = StrCat("map[keysSorted=", BoolMember(type, "keysSorted", false), "]");
  } else if (name == "listview" || name == "largelistview") {
    info.kind = Kind::kListView;
    info.type = name;
  } else if (name == "fixedsizelist") {
    BRIDGE_ASSIGN_OR_RETURN(int64_t size, IntMember(type, "listSize", where));
    info.kind = Kind::kFixedSizeList;
    info.list_size = static_cast<int32_t>(size);
    info.type = StrCat("fixedsizelist[", size, "]");
  } else if (name == "struct") {
    info.kind = Kind::kStruct;
    info.type = name;
  } else if (name == "union") {
    BRIDGE_ASSIGN_OR_RETURN(std::string mode, StringMember(type, "mode", where));
    const Json* ids = Member(type, "typeIds");
    if (ids == nullptr || !ids->is_array()) return InvalidArgument(where, ": no 'typeIds'");
    info.kind = Kind::kUnion;
    info.dense = mode == "DENSE";
    std::string text = StrCat("union[", mode, "](");
    for (const Json& id : *ids) {
      if (!id.is_number_integer()) return InvalidArgument(where, ": bad 'typeIds'");
      text += StrCat(info.type_ids.empty() ? "" : ",", id.get<int64_t>());
      info.type_ids.push_back(id.get<int64_t>());
    }
    info.type = text + ")";
  } else if (name == "runendencoded") {
    info.kind = Kind::kRunEndEncoded;
    info.type = name;
  } else {
    return InvalidArgument(where, ": unknown type '", name, "'");
  }
  return OkStatus();
}

Result<std::vector<std::pair<std::string, std::string>>> ParseMetadata(const Json& object,
                                                                       const std::string& where) {
  std::vector<std::pair<std::string, std::string>> out;
  const Json* metadata = Member(object, "metadata");
  if (metadata == nullptr || metadata->is_null()) return out;
  if (!metadata->is_array()) return InvalidArgument(where, ": 'metadata' is not an array");
  for (const Json& kv : *metadata) {
    BRIDGE_ASSIGN_OR_RETURN(std::string key, StringMember(kv, "key", where + " metadata"));
    BRIDGE_ASSIGN_OR_RETURN(std::string value, StringMember(kv, "value", where + " metadata"));
    out.emplace_back(std::move(key), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<FieldInfo> ParseField(const Json& field, const std::string& parent_path) {
  FieldInfo info;
  if (!field.is_object()) return InvalidArgument("json: a field is not an object");
  BRIDGE_ASSIGN_OR_RETURN(info.name, StringMember(field, "name", "json: field"));
  info.path = parent_path.empty() ? info.name : parent_path + "." + info.name;
  info.nullable = BoolMember(field, "nullable", true);
  const Json* type = Member(field, "type");
  if (type == nullptr) return InvalidArgument("field '", info.path, "': no 'type'");
  BRIDGE_RETURN_NOT_OK(ParseType(*type, info));
  if (const Json* children = Member(field, "children"); children != nullptr) {
    if (!children->is_array()) return InvalidArgument("field '", info.path, "': bad 'children'");
    for (const Json& child : *children) {
      BRIDGE_ASSIGN_OR_RETURN(FieldInfo c, ParseField(child, info.path));
      info.children.push_back(std::move(c));
    }
  }
  const size_t want_children =
      info.kind == Kind::kList || info.kind == Kind::kListView || info.kind == Kind::kFixedSizeList
          ? 1
      : info.kind == Kind::kRunEndEncoded ? 2
      : info.kind == Kind::kUnion         ? info.type_ids.size()
                                          : 0;
  if (info.kind != Kind::kStruct && info.children.size() != want_children) {
    return InvalidArgument("field '", info.path, "': type ", info.type, " with ",
                           info.children.size(), " children");
  }
  if (const Json* dictionary = Member(field, "dictionary"); dictionary != nullptr) {
    info.dictionary = true;
    BRIDGE_ASSIGN_OR_RETURN(info.dictionary_id,
                            IntMember(*dictionary, "id", StrCat("field '", info.path, "'")));
    const Json* index = Member(*dictionary, "indexType");
    if (index == nullptr) return InvalidArgument("field '", info.path, "': no 'indexType'");
    FieldInfo index_info;
    index_info.path = info.path;
    BRIDGE_RETURN_NOT_OK(ParseType(*index, index_info));
    if (index_info.type.find("int") != 0 && index_info.type.find("uint") != 0) {
      return InvalidArgument("field '", info.path, "': dictionary index type ", index_info.type);
    }
    info.dictionary_type = StrCat(
        index_info.type, BoolMember(*dictionary, "isOrdered", false) ? " ordered" : " unordered");
  }
  BRIDGE_ASSIGN_OR_RETURN(info.metadata, ParseMetadata(field, StrCat("field '", info.path, "'")));
  return info;
}

std::string MetadataText(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out = "{";
  for (const auto& [key, value] : pairs) {
    out += StrCat(out.size() > 1 ? ", " : "", key, "=", value);
  }
  return out + "}";
}

// Appends to `errors` every difference between the two field trees. The names of a map's
// entries, key and value fields are not compared (as in Arrow C++'s type equality: they are
// not significant, and writers differ in them).
void CompareFields(const FieldInfo& e, const FieldInfo& a, std::vector<std::string>& errors,
                   int map_depth = 0) {
  const std::string where = StrCat("schema: field '", e.path, "'");
  if (e.name != a.name && map_depth == 0) {
    errors.push_back(StrCat(where, ": expected name '", e.name, "', got '", a.name, "'"));
  }
  if (e.nullable != a.nullable) {
    errors.push_back(StrCat(where, ": expected nullable=", e.nullable, ", got ", a.nullable));
  }
  if (e.type != a.type) {
    errors.push_back(StrCat(where, ": expected type ", e.type, ", got ", a.type));
    return;
  }
  if (e.dictionary != a.dictionary) {
    errors.push_back(StrCat(where, e.dictionary ? ": expected dictionary-encoded, got plain"
                                                : ": expected plain, got dictionary-encoded"));
  } else if (e.dictionary_type != a.dictionary_type) {
    errors.push_back(StrCat(where, ": expected dictionary index ", e.dictionary_type, ", got ",
                            a.dictionary_type));
  }
  if (e.metadata != a.metadata) {
    errors.push_back(StrCat(where, ": expected metadata ", MetadataText(e.metadata), ", got ",
                            MetadataText(a.metadata)));
  }
  if (e.children.size() != a.children.size()) {
    errors.push_back(
        StrCat(where, ": expected ", e.children.size(), " children, got ", a.children.size()));
    return;
  }
  const bool is_map = e.type.starts_with("map[");
  const int child_map_depth = is_map ? 2 : std::max(0, map_depth - 1);
  for (size_t i = 0; i < e.children.size(); ++i) {
    CompareFields(e.children[i], a.children[i], errors, child_map_depth);
  }
}

struct Schema {
  std::vector<FieldInfo> fields;
  std::vector<std::pair<std::string, std::string>> metadata;
};

Result<Schema> ParseSchema(const Json& schema) {
  Schema out;
  const Json* fields = Member(schema, "fields");
  if (fields == nullptr || !fields->is_array()) {
    return InvalidArgument("json: 'schema' has no 'fields' array");
  }
  for (const Json& field : *fields) {
    BRIDGE_ASSIGN_OR_RETURN(FieldInfo info, ParseField(field, ""));
    out.fields.push_back(std::move(info));
  }
  BRIDGE_ASSIGN_OR_RETURN(out.metadata, ParseMetadata(schema, "schema"));
  return out;
}

// ---------------------------------------------------------------------------------------
// Comparing values

// Where the dictionaries of one side are: by id (a parsed document) or inline in each
// dictionary-encoded column (our own batches).
struct Side {
  const std::map<int64_t, const Json*>* by_id = nullptr;
};

// A column of one side, with that side's field (whose dictionary ids are that side's).
struct ColumnRef {
  const Json* column;
  const Side* side;
  const FieldInfo* field;
};

// Parses an integer written as a JSON number or string into canonical decimal text.
std::optional<std::string> CanonicalInteger(const Json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) != d || !std::isfinite(d)) return std::nullopt;
    return fmt::format("{:.0f}", d);
  }
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_ref<const std::string&>();
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
  if (s == "0") negative = false;
  return StrCat(negative ? "-" : "", s);
}

std::optional<int64_t> JsonInt64(const Json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    int64_t out = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && ptr == s.data() + s.size()) return out;
  }
  return std::nullopt;
}

std::optional<double> JsonDouble(const Json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "NaN" || s == "nan") return std::nan("");
    if (s == "Infinity" || s == "Inf" || s == "inf") return HUGE_VAL;
    if (s == "-Infinity" || s == "-Inf" || s == "-inf") return -HUGE_VAL;
  }
  return std::nullopt;
}

class Comparer {
 public:
  explicit Comparer(const JsonCompareOptions& options) : options_(options) {}

  // Compares the rows of one top-level column; appends at most one mismatch.
  void Column(const FieldInfo& field, ColumnRef e, ColumnRef a, int64_t batch) {
    batch_ = batch;
    rows_.clear();
    const int64_t e_count = Count(*e.column);
    const int64_t a_count = Count(*a.column);
    if (e_count != a_count) {
      Fail(field, StrCat("expected ", e_count, " rows, got ", a_count), false);
      return;
    }
    for (int64_t r = 0; r < e_count; ++r) {
      rows_.assign(1, r);
      if (!Slot(field, false, e, r, a, r)) return;
    }
  }

  // Compares values [0, count) of two dictionaries of `field` (already resolved); returns
  // false after a mismatch.
  bool Rows(const FieldInfo& field, ColumnRef e, ColumnRef a, int64_t count, int64_t batch) {
    batch_ = batch;
    for (int64_t r = 0; r < count; ++r) {
      rows_.assign(1, r);
      if (!Slot(field, true, e, r, a, r)) return false;
    }
    return true;
  }

  std::vector<std::string>& errors() { return errors_; }

 private:
  static int64_t Count(const Json& column) {
    const Json* count = Member(column, "count");
    return count != nullptr && count->is_number_integer() ? count->get<int64_t>() : -1;
  }

  // Records a mismatch at the current row; returns false (stop comparing this column).
  bool Fail(const FieldInfo& field, const std::string& what, bool with_row = true) {
    std::string row;
    for (size_t i = 0; i < rows_.size(); ++i) {
      row += i == 0 ? StrCat(rows_[i]) : StrCat("[", rows_[i], "]");
    }
    errors_.push_back(StrCat("batch ", batch_, ", column '", field.path, "'",
                             with_row ? StrCat(", row ", row) : std::string(), ": ", what));
    return false;
  }

  // The element `i` of member `key` of `column`, or null.
  static const Json* At(const Json& column, const char* key, int64_t i) {
    const Json* array = Member(column, key);
    if (array == nullptr || !array->is_array() || i < 0 ||
        static_cast<size_t>(i) >= array->size()) {
      return nullptr;
    }
    return &(*array)[static_cast<size_t>(i)];
  }

  bool Malformed(const FieldInfo& field, const char* side, const std::string& what) {
    return Fail(field, StrCat(side, " column is malformed: ", what));
  }

  static bool HasValidity(const FieldInfo& field, bool resolved) {
    if (field.dictionary && !resolved) return true;
    return field.kind != Kind::kNull && field.kind != Kind::kUnion &&
           field.kind != Kind::kRunEndEncoded;
  }

  static bool IsValidAt(const FieldInfo& field, bool resolved, const Json& column, int64_t i) {
    if (field.kind == Kind::kNull && !(field.dictionary && !resolved)) return false;
    if (!HasValidity(field, resolved)) return true;
    const Json* v = At(column, "VALIDITY", i);
    if (v == nullptr) return Member(column, "VALIDITY") == nullptr;  // absent: all valid
    return v->is_boolean() ? v->get<bool>() : (v->is_number() && v->get<double>() != 0);
  }

  // Returns the leaf value of a slot as canonical text, or nullopt when it cannot be read.
  std::optional<std::string> Leaf(const FieldInfo& field, const Json& column, int64_t i) {
    switch (field.kind) {
      case Kind::kBool: {
        const Json* v = At(column, "DATA", i);
        if (v == nullptr) return std::nullopt;
        if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
        if (v->is_number()) return v->get<double>() != 0 ? "true" : "false";
        return std::nullopt;
      }
      case Kind::kInteger:
      case Kind::kDecimal: {
        const Json* v = At(column, "DATA", i);
        if (v == nullptr) return std::nullopt;
        return CanonicalInteger(*v);
      }
      case Kind::kDayTime:
      case Kind::kMonthDayNano: {
        const Json* v = At(column, "DATA", i);
        if (v == nullptr || !v->is_object()) return std::nullopt;
        std::string out = "{";
        const char* keys[3] = {"days", "milliseconds", nullptr};
        const char* mdn_keys[3] = {"months", "days", "nanoseconds"};
        for (int k = 0; k < 3; ++k) {
          const char* key = field.kind == Kind::kDayTime ? keys[k] : mdn_keys[k];
          if (key == nullptr) break;
          const Json* part = Member(*v, key);
          if (part == nullptr) return std::nullopt;
          auto text = CanonicalInteger(*part);
          if (!text) return std::nullopt;
          out += StrCat(k > 0 ? ", " : "", "\"", key, "\": ", *text);
        }
        return out + "}";
      }
      case Kind::kBinary: {
        const Json* v = At(column, "DATA", i);
        if (v == nullptr || !v->is_string()) return std::nullopt;
        return UpperHex(v->get_ref<const std::string&>());
      }
      case Kind::kUtf8: {
        const Json* v = At(column, "DATA", i);
        if (v == nullptr || !v->is_string()) return std::nullopt;
        return v->get<std::string>();
      }
      case Kind::kBinaryView:
      case Kind::kUtf8View: {
        auto bytes = ViewBytes(field.kind == Kind::kUtf8View, column, i);
        if (!bytes) return std::nullopt;
        return field.kind == Kind::kUtf8View ? *bytes
                                             : Hex(reinterpret_cast<const uint8_t*>(bytes->data()),
                                                   static_cast<int64_t>(bytes->size()));
      }
      default:
        return std::nullopt;
    }
  }

  // The bytes a view points at.
  static std::optional<std::string> ViewBytes(bool utf8, const Json& column, int64_t i) {
    const Json* view = At(column, "VIEWS", i);
    if (view == nullptr || !view->is_object()) return std::nullopt;
    const Json* size_json = Member(*view, "SIZE");
    if (size_json == nullptr || !size_json->is_number_integer()) return std::nullopt;
    const int64_t size = size_json->get<int64_t>();
    if (const Json* inlined = Member(*view, "INLINED"); inlined != nullptr) {
      if (!inlined->is_string()) return std::nullopt;
      if (utf8) return inlined->get<std::string>();
      return Unhex(inlined->get_ref<const std::string&>());
    }
    const Json* index = Member(*view, "BUFFER_INDEX");
    const Json* offset = Member(*view, "OFFSET");
    if (index == nullptr || offset == nullptr || !index->is_number_integer() ||
        !offset->is_number_integer()) {
      return std::nullopt;
    }
    const Json* buffer = At(column, "VARIADIC_DATA_BUFFERS", index->get<int64_t>());
    if (buffer == nullptr || !buffer->is_string()) return std::nullopt;
    const std::string& hex = buffer->get_ref<const std::string&>();
    const int64_t o = offset->get<int64_t>();
    if (o < 0 || size < 0 || static_cast<size_t>(2 * (o + size)) > hex.size()) {
      return std::nullopt;
    }
    auto bytes = Unhex(std::string_view(hex).substr(2 * o, 2 * size));
    if (!bytes) return std::nullopt;
    if (const Json* prefix = Member(*view, "PREFIX_HEX");
        prefix != nullptr && prefix->is_string()) {
      auto prefix_bytes = Unhex(prefix->get_ref<const std::string&>());
      if (!prefix_bytes || bytes->compare(0, prefix_bytes->size(), *prefix_bytes) != 0) {
        return std::nullopt;
      }
    }
    return bytes;
  }

  static std::string Quote(const FieldInfo& field, const std::string& text) {
    if (field.kind == Kind::kUtf8 || field.kind == Kind::kUtf8View) {
      return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
    }
    if (field.kind == Kind::kBinary || field.kind == Kind::kBinaryView) return "0x" + text;
    return text;
  }

  // Compares floats; true when they match.
  bool FloatsMatch(int bits, double e, double a) const {
    if (std::isnan(e) || std::isnan(a)) return std::isnan(e) && std::isnan(a);
    double er = e;
    double ar = a;
    if (bits == 32) {
      er = static_cast<float>(e);
      ar = static_cast<float>(a);
    } else if (bits == 16) {
      er = HalfToFloat(FloatToHalf(static_cast<float>(e)));
      ar = HalfToFloat(FloatToHalf(static_cast<float>(a)));
    }
    if (er == ar) return true;
    return options_.float_tolerance > 0 && std::fabs(e - a) <= options_.float_tolerance;
  }

  // Resolves the dictionary of a dictionary-encoded column.
  static const Json* Dictionary(const ColumnRef& ref) {
    if (ref.side->by_id == nullptr) return Member(*ref.column, kInlineDictionary);
    auto it = ref.side->by_id->find(ref.field->dictionary_id);
    return it == ref.side->by_id->end() ? nullptr : it->second;
  }

  // The reference to child column `column` (child k of `parent`'s field).
  static ColumnRef Child(const ColumnRef& parent, const Json* column, size_t k) {
    return {column, parent.side, &parent.field->children[k]};
  }

  static const Json* ChildColumn(const Json& column, size_t k) {
    const Json* children = Member(column, "children");
    if (children == nullptr || !children->is_array() || k >= children->size()) return nullptr;
    return &(*children)[k];
  }

  // Compares slot ei of e with slot ai of a. Returns false after a mismatch.
  bool Slot(const FieldInfo& field, bool resolved, ColumnRef e, int64_t ei, ColumnRef a,
            int64_t ai) {
    const bool e_valid = IsValidAt(field, resolved, *e.column, ei);
    const bool a_valid = IsValidAt(field, resolved, *a.column, ai);
    if (e_valid != a_valid) {
      return Fail(field, e_valid ? "expected a value, got null" : "expected null, got a value");
    }
    if (!e_valid) return true;

    if (field.dictionary && !resolved) {
      const Json* e_index_json = At(*e.column, "DATA", ei);
      const Json* a_index_json = At(*a.column, "DATA", ai);
      auto e_index = e_index_json ? JsonInt64(*e_index_json) : std::nullopt;
      auto a_index = a_index_json ? JsonInt64(*a_index_json) : std::nullopt;
      if (!e_index) return Malformed(field, "expected", "no dictionary index");
      if (!a_index) return Malformed(field, "actual", "no dictionary index");
      const Json* e_dict = Dictionary(e);
      const Json* a_dict = Dictionary(a);
      if (e_dict == nullptr) return Malformed(field, "expected", "dictionary not found");
      if (a_dict == nullptr) return Malformed(field, "actual", "dictionary not found");
      if (*e_index < 0 || *e_index >= Count(*e_dict)) {
        return Malformed(field, "expected", StrCat("dictionary index ", *e_index, " out of range"));
      }
      if (*a_index < 0 || *a_index >= Count(*a_dict)) {
        return Fail(field, StrCat("dictionary index ", *a_index, " outside the dictionary of ",
                                  Count(*a_dict), " values"));
      }
      return Slot(field, true, {e_dict, e.side, e.field}, *e_index, {a_dict, a.side, a.field},
                  *a_index);
    }

    switch (field.kind) {
      case Kind::kNull:
        return true;
      case Kind::kFloat: {
        const Json* ev = At(*e.column, "DATA", ei);
        const Json* av = At(*a.column, "DATA", ai);
        auto ed = ev ? JsonDouble(*ev) : std::nullopt;
        auto ad = av ? JsonDouble(*av) : std::nullopt;
        if (!ed) return Malformed(field, "expected", "no float DATA");
        if (!ad) return Malformed(field, "actual", "no float DATA");
        if (!FloatsMatch(field.float_bits, *ed, *ad)) {
          return Fail(field, StrCat("expected ", ev->dump(), ", got ", av->dump()));
        }
        return true;
      }
      case Kind::kBool:
      case Kind::kInteger:
      case Kind::kDecimal:
      case Kind::kDayTime:
      case Kind::kMonthDayNano:
      case Kind::kBinary:
      case Kind::kUtf8:
      case Kind::kBinaryView:
      case Kind::kUtf8View: {
        auto ev = Leaf(field, *e.column, ei);
        auto av = Leaf(field, *a.column, ai);
        if (!ev) return Malformed(field, "expected", "value not readable");
        if (!av) return Malformed(field, "actual", "value not readable");
        if (*ev != *av) {
          return Fail(field, StrCat("expected ", Quote(field, *ev), ", got ", Quote(field, *av)));
        }
        return true;
      }
      case Kind::kList:
      case Kind::kListView: {
        auto range = [&](const Json& column,
                         int64_t i) -> std::optional<std::pair<int64_t, int64_t>> {
          const Json* begin = At(column, "OFFSET", i);
          const Json* second = At(column, field.kind == Kind::kList ? "OFFSET" : "SIZE",
                                  field.kind == Kind::kList ? i + 1 : i);
          auto b = begin ? JsonInt64(*begin) : std::nullopt;
          auto s = second ? JsonInt64(*second) : std::nullopt;
          if (!b || !s) return std::nullopt;
          const int64_t size = field.kind == Kind::kList ? *s - *b : *s;
          if (size < 0) return std::nullopt;
          return std::make_pair(*b, size);
        };
        auto er = range(*e.column, ei);
        auto ar = range(*a.column, ai);
        if (!er) return Malformed(field, "expected", "bad OFFSET");
        if (!ar) return Malformed(field, "actual", "bad OFFSET");
        if (er->second != ar->second) {
          return Fail(field, StrCat("expected ", er->second, " items, got ", ar->second));
        }
        return Items(field, e, er->first, a, ar->first, er->second);
      }
      case Kind::kFixedSizeList:
        return Items(field, e, ei * field.list_size, a, ai * field.list_size, field.list_size);
      case Kind::kStruct: {
        for (size_t k = 0; k < field.children.size(); ++k) {
          const Json* ec = ChildColumn(*e.column, k);
          const Json* ac = ChildColumn(*a.column, k);
          if (ec == nullptr) return Malformed(field, "expected", StrCat("no child ", k));
          if (ac == nullptr) return Malformed(field, "actual", StrCat("no child ", k));
          if (!Slot(field.children[k], false, Child(e, ec, k), ei, Child(a, ac, k), ai)) {
            return false;
          }
        }
        return true;
      }
      case Kind::kUnion: {
        const Json* e_id_json = At(*e.column, "TYPE_ID", ei);
        const Json* a_id_json = At(*a.column, "TYPE_ID", ai);
        auto e_id = e_id_json ? JsonInt64(*e_id_json) : std::nullopt;
        auto a_id = a_id_json ? JsonInt64(*a_id_json) : std::nullopt;
        if (!e_id) return Malformed(field, "expected", "no TYPE_ID");
        if (!a_id) return Malformed(field, "actual", "no TYPE_ID");
        if (*e_id != *a_id) {
          return Fail(field, StrCat("expected type id ", *e_id, ", got ", *a_id));
        }
        auto it = std::find(field.type_ids.begin(), field.type_ids.end(), *e_id);
        if (it == field.type_ids.end()) {
          return Malformed(field, "expected", StrCat("type id ", *e_id, " not in the union"));
        }
        const size_t k = static_cast<size_t>(it - field.type_ids.begin());
        int64_t e_at = ei;
        int64_t a_at = ai;
        if (field.dense) {
          const Json* eo = At(*e.column, "OFFSET", ei);
          const Json* ao = At(*a.column, "OFFSET", ai);
          auto e_offset = eo ? JsonInt64(*eo) : std::nullopt;
          auto a_offset = ao ? JsonInt64(*ao) : std::nullopt;
          if (!e_offset) return Malformed(field, "expected", "no union OFFSET");
          if (!a_offset) return Malformed(field, "actual", "no union OFFSET");
          e_at = *e_offset;
          a_at = *a_offset;
        }
        const Json* ec = ChildColumn(*e.column, k);
        const Json* ac = ChildColumn(*a.column, k);
        if (ec == nullptr) return Malformed(field, "expected", StrCat("no child ", k));
        if (ac == nullptr) return Malformed(field, "actual", StrCat("no child ", k));
        if (e_at < 0 || e_at >= Count(*ec)) return Malformed(field, "expected", "bad offset");
        if (a_at < 0 || a_at >= Count(*ac)) return Malformed(field, "actual", "bad offset");
        return Slot(field.children[k], false, Child(e, ec, k), e_at, Child(a, ac, k), a_at);
      }
      case Kind::kRunEndEncoded: {
        auto physical = [&](const Json& column, int64_t i) -> std::optional<int64_t> {
          const Json* ends = ChildColumn(column, 0);
          if (ends == nullptr) return std::nullopt;
          const Json* data = Member(*ends, "DATA");
          if (data == nullptr || !data->is_array()) return std::nullopt;
          // First run whose end is past row i.
          int64_t lo = 0;
          int64_t hi = static_cast<int64_t>(data->size());
          while (lo < hi) {
            const int64_t mid = (lo + hi) / 2;
            auto end = JsonInt64((*data)[static_cast<size_t>(mid)]);
            if (!end) return std::nullopt;
            if (*end <= i) {
              lo = mid + 1;
            } else {
              hi = mid;
            }
          }
          if (lo >= static_cast<int64_t>(data->size())) return std::nullopt;
          return lo;
        };
        auto ep = physical(*e.column, ei);
        auto ap = physical(*a.column, ai);
        if (!ep) return Malformed(field, "expected", "bad run ends");
        if (!ap) return Malformed(field, "actual", "bad run ends");
        const Json* ec = ChildColumn(*e.column, 1);
        const Json* ac = ChildColumn(*a.column, 1);
        if (ec == nullptr) return Malformed(field, "expected", "no values child");
        if (ac == nullptr) return Malformed(field, "actual", "no values child");
        return Slot(field.children[1], false, Child(e, ec, 1), *ep, Child(a, ac, 1), *ap);
      }
    }
    return true;
  }

  // Compares `count` items of the single child of a list-like field.
  bool Items(const FieldInfo& field, ColumnRef e, int64_t e_start, ColumnRef a, int64_t a_start,
             int64_t count) {
    const Json* ec = ChildColumn(*e.column, 0);
    const Json* ac = ChildColumn(*a.column, 0);
    if (ec == nullptr) return Malformed(field, "expected", "no child column");
    if (ac == nullptr) return Malformed(field, "actual", "no child column");
    if (e_start < 0 || e_start + count > Count(*ec)) {
      return Malformed(field, "expected", "items outside the child");
    }
    if (a_start < 0 || a_start + count > Count(*ac)) {
      return Malformed(field, "actual", "items outside the child");
    }
    for (int64_t j = 0; j < count; ++j) {
      rows_.push_back(j);
      const bool ok = Slot(field.children[0], false, Child(e, ec, 0), e_start + j, Child(a, ac, 0),
                           a_start + j);
      rows_.pop_back();
      if (!ok) return false;
    }
    return true;
  }

  const JsonCompareOptions& options_;
  int64_t batch_ = 0;
  std::vector<int64_t> rows_;  // row, then item indexes into nested lists
  std::vector<std::string> errors_;
};

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgument("json: ", what, " is not valid JSON");
  if (!doc.is_object()) return InvalidArgument("json: ", what, " is not a JSON object");
  return doc;
}

// The dictionaries of a parsed document by id.
Result<std::map<int64_t, const Json*>> DictionariesById(const Json& doc) {
  std::map<int64_t, const Json*> out;
  const Json* dictionaries = Member(doc, "dictionaries");
  if (dictionaries == nullptr) return out;
  if (!dictionaries->is_array()) return InvalidArgument("json: 'dictionaries' is not an array");
  for (const Json& d : *dictionaries) {
    BRIDGE_ASSIGN_OR_RETURN(int64_t id, IntMember(d, "id", "json: dictionary"));
    const Json* data = Member(d, "data");
    const Json* columns = data != nullptr ? Member(*data, "columns") : nullptr;
    if (columns == nullptr || !columns->is_array() || columns->size() != 1) {
      return InvalidArgument("json: dictionary ", id, " has no single column");
    }
    out[id] = &(*columns)[0];
  }
  return out;
}

Result<std::vector<const Json*>> BatchesOf(const Json& doc) {
  std::vector<const Json*> out;
  const Json* batches = Member(doc, "batches");
  if (batches == nullptr || !batches->is_array()) {
    return InvalidArgument("json: no 'batches' array");
  }
  for (const Json& b : *batches) out.push_back(&b);
  return out;
}

// Compares a parsed expected document with the actual schema and batches.
Status CompareParsed(const Json& expected, const Side& expected_side, const Json& actual_schema,
                     const std::vector<const Json*>& actual_batches, const Side& actual_side,
                     const JsonCompareOptions& options) {
  const Json* e_schema_json = Member(expected, "schema");
  if (e_schema_json == nullptr) return InvalidArgument("json: expected document has no 'schema'");
  BRIDGE_ASSIGN_OR_RETURN(Schema e_schema, ParseSchema(*e_schema_json));
  BRIDGE_ASSIGN_OR_RETURN(Schema a_schema, ParseSchema(actual_schema));

  std::vector<std::string> errors;
  if (e_schema.fields.size() != a_schema.fields.size()) {
    errors.push_back(StrCat("schema: expected ", e_schema.fields.size(), " fields, got ",
                            a_schema.fields.size()));
  } else {
    for (size_t i = 0; i < e_schema.fields.size(); ++i) {
      CompareFields(e_schema.fields[i], a_schema.fields[i], errors);
    }
  }
  if (e_schema.metadata != a_schema.metadata) {
    errors.push_back(StrCat("schema: expected metadata ", MetadataText(e_schema.metadata), ", got ",
                            MetadataText(a_schema.metadata)));
  }
  BRIDGE_ASSIGN_OR_RETURN(std::vector<const Json*> e_batches, BatchesOf(expected));
  if (errors.empty() && e_batches.size() != actual_batches.size()) {
    errors.push_back(
        StrCat("expected ", e_batches.size(), " batches, got ", actual_batches.size()));
  }
  if (errors.empty()) {
    Comparer comparer(options);
    for (size_t b = 0; b < e_batches.size(); ++b) {
      const Json* e_columns = Member(*e_batches[b], "columns");
      const Json* a_columns = Member(*actual_batches[b], "columns");
      if (e_columns == nullptr || !e_columns->is_array() ||
          e_columns->size() != e_schema.fields.size()) {
        return InvalidArgument("json: expected batch ", b, " does not have one column per field");
      }
      if (a_columns == nullptr || !a_columns->is_array() ||
          a_columns->size() != a_schema.fields.size()) {
        return InvalidArgument("json: actual batch ", b, " does not have one column per field");
      }
      const int64_t e_count = IntMember(*e_batches[b], "count", "").value_or(-1);
      const int64_t a_count = IntMember(*actual_batches[b], "count", "").value_or(-1);
      if (e_count != a_count) {
        comparer.errors().push_back(
            StrCat("batch ", b, ": expected ", e_count, " rows, got ", a_count));
      }
      for (size_t c = 0; c < e_schema.fields.size(); ++c) {
        comparer.Column(e_schema.fields[c], {&(*e_columns)[c], &expected_side, &e_schema.fields[c]},
                        {&(*a_columns)[c], &actual_side, &a_schema.fields[c]},
                        static_cast<int64_t>(b));
        if (static_cast<int>(comparer.errors().size()) >= options.max_mismatches) break;
      }
      if (static_cast<int>(comparer.errors().size()) >= options.max_mismatches) break;
    }
    errors = std::move(comparer.errors());
  }
  if (errors.empty()) return OkStatus();
  const size_t shown =
      std::min(errors.size(), static_cast<size_t>(std::max(1, options.max_mismatches)));
  std::string message = errors.size() == 1 ? "" : StrCat(errors.size(), " mismatches");
  if (errors.size() >= static_cast<size_t>(options.max_mismatches) && errors.size() > 1) {
    message += " (stopped counting)";
  }
  for (size_t i = 0; i < shown; ++i) message += StrCat(message.empty() ? "" : "\n", errors[i]);
  return InvalidArgument(message);
}

// Moves the inline dictionaries of `column` (of `field`) out into `out.dictionaries`,
// recursively. A dictionary met again in a later batch must agree with the one kept on the
// values both hold; the longer one is kept (delta dictionaries grow).
struct Outliner {
  const JsonCompareOptions& options;
  std::map<int64_t, Json> dictionaries;   // outlined, by id
  std::map<int64_t, Json> inline_copies;  // as met, inner dictionaries still inline

  Status Children(const Json& field, Json& column, const FieldInfo& info, size_t batch) {
    const Json* field_children = Member(field, "children");
    auto it = column.find("children");
    if (field_children == nullptr || it == column.end()) return OkStatus();
    for (size_t k = 0; k < field_children->size() && k < it->size(); ++k) {
      BRIDGE_RETURN_NOT_OK(Column((*field_children)[k], (*it)[k], info.children[k], batch));
    }
    return OkStatus();
  }

  Status Column(const Json& field, Json& column, const FieldInfo& info, size_t batch) {
    if (!info.dictionary) return Children(field, column, info, batch);
    auto inline_it = column.find(kInlineDictionary);
    if (inline_it == column.end()) return Internal("json: dictionary column without dictionary");
    Json dictionary = std::move(*inline_it);
    column.erase(kInlineDictionary);
    auto seen = inline_copies.find(info.dictionary_id);
    if (seen != inline_copies.end()) {
      const Side inline_side;
      const int64_t old_count = seen->second["count"].get<int64_t>();
      const int64_t new_count = dictionary["count"].get<int64_t>();
      Comparer comparer(options);
      if (!comparer.Rows(info, {&seen->second, &inline_side, &info},
                         {&dictionary, &inline_side, &info}, std::min(old_count, new_count),
                         static_cast<int64_t>(batch))) {
        return Unimplemented("json: batch ", batch, ", column '", info.path,
                             "': the dictionary was replaced by different values, and "
                             "integration JSON holds one dictionary per id (",
                             comparer.errors().front(), ")");
      }
      if (new_count <= old_count) return OkStatus();
    }
    inline_copies[info.dictionary_id] = dictionary;
    BRIDGE_RETURN_NOT_OK(Children(field, dictionary, info, batch));
    dictionaries[info.dictionary_id] = std::move(dictionary);
    return OkStatus();
  }
};

}  // namespace

Result<std::string> ToIntegrationJson(const ArrowSchema& schema,
                                      std::span<const ArrowArray* const> batches) {
  BRIDGE_ASSIGN_OR_RETURN(Document doc, Emit(schema, batches));
  BRIDGE_ASSIGN_OR_RETURN(Schema parsed, ParseSchema(doc.schema));
  const Json& fields = doc.schema["fields"];
  const JsonCompareOptions options;
  Outliner outliner{options, {}, {}};
  for (size_t b = 0; b < doc.batches.size(); ++b) {
    Json& columns = doc.batches[b]["columns"];
    for (size_t c = 0; c < fields.size(); ++c) {
      BRIDGE_RETURN_NOT_OK(outliner.Column(fields[c], columns[c], parsed.fields[c], b));
    }
  }
  std::map<int64_t, Json>& dictionaries = outliner.dictionaries;
  Json out = Json::object();
  out["schema"] = std::move(doc.schema);
  out["batches"] = Json(std::move(doc.batches));
  if (!dictionaries.empty()) {
    Json list = Json::array();
    for (auto& [id, column] : dictionaries) {
      column["name"] = StrCat("DICT", id);
      const int64_t count = column["count"].get<int64_t>();
      list.push_back(
          Json{{"id", id}, {"data", Json{{"count", count}, {"columns", Json::array({column})}}}});
    }
    out["dictionaries"] = std::move(list);
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Status CompareWithIntegrationJson(const ArrowSchema& schema,
                                  std::span<const ArrowArray* const> batches,
                                  std::string_view golden_json, const JsonCompareOptions& options) {
  BRIDGE_ASSIGN_OR_RETURN(Json expected, ParseJson(golden_json, "the golden document"));
  BRIDGE_ASSIGN_OR_RETURN(auto expected_dictionaries, DictionariesById(expected));
  BRIDGE_ASSIGN_OR_RETURN(Document actual, Emit(schema, batches));
  std::vector<const Json*> actual_batches;
  for (const Json& b : actual.batches) actual_batches.push_back(&b);
  const Side expected_side{&expected_dictionaries};
  const Side actual_side{nullptr};
  return CompareParsed(expected, expected_side, actual.schema, actual_batches, actual_side,
                       options);
}

Status CompareIntegrationJsonDocuments(std::string_view expected_text, std::string_view actual_text,
                                       const JsonCompareOptions& options) {
  BRIDGE_ASSIGN_OR_RETURN(Json expected, ParseJson(expected_text, "the expected document"));
  BRIDGE_ASSIGN_OR_RETURN(Json actual, ParseJson(actual_text, "the actual document"));
  BRIDGE_ASSIGN_OR_RETURN(auto expected_dictionaries, DictionariesById(expected));
  BRIDGE_ASSIGN_OR_RETURN(auto actual_dictionaries, DictionariesById(actual));
  const Json* actual_schema = Member(actual, "schema");
  if (actual_schema == nullptr) return InvalidArgument("json: actual document has no 'schema'");
  BRIDGE_ASSIGN_OR_RETURN(std::vector<const Json*> actual_batches, BatchesOf(actual));
  const Side expected_side{&expected_dictionaries};
  const Side actual_side{&actual_dictionaries};
  return CompareParsed(expected, expected_side, *actual_schema, actual_batches, actual_side,
                       options);
}

Result<std::string> ReadGzipFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound("json: no file '", path.string(), "'");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return IoError("json: cannot open '", path.string(), "'");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(file, &gzclose);
  std::string out;
  char chunk[1 << 16];
  for (;;) {
    const int n = gzread(file, chunk, sizeof(chunk));
    if (n < 0) {
      int errnum = 0;
      const char* message = gzerror(file, &errnum);
      return IoError("json: reading '", path.string(), "': ", message != nullptr ? message : "?");
    }
    if (n == 0) break;
    out.append(chunk, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace bridge::ipc
