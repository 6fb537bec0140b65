// Arrow logical types as described by C Data Interface format strings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/status.h"

namespace bridge::ipc {

enum class TypeId {
  kNull,
  kBool,
  kInt8,
  kUInt8,
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kFloat16,
  kFloat32,
  kFloat64,
  kBinary,
  kLargeBinary,
  kBinaryView,
  kUtf8,
  kLargeUtf8,
  kUtf8View,
  kDecimal,          // precision, scale, bit_width (32, 64, 128 or 256)
  kFixedSizeBinary,  // fixed_size = byte width
  kDate32,           // days
  kDate64,           // milliseconds
  kTime32,           // unit s or ms
  kTime64,           // unit us or ns
  kTimestamp,        // unit, timezone (empty = none)
  kDuration,         // unit
  kIntervalMonths,
  kIntervalDayTime,
  kIntervalMonthDayNano,
  kList,
  kLargeList,
  kListView,
  kLargeListView,
  kFixedSizeList,  // fixed_size = list size
  kStruct,
  kMap,
  kDenseUnion,   // type_codes
  kSparseUnion,  // type_codes
  kRunEndEncoded,
};

enum class TimeUnit { kSecond, kMilli, kMicro, kNano };

// A parsed format string. Children and dictionaries are described by their own schemas.
struct DataType {
  TypeId id = TypeId::kNull;
  int32_t fixed_size = 0;
  int32_t precision = 0;
  int32_t scale = 0;
  int32_t bit_width = 0;  // decimals: 32/64/128/256; fixed-width types: their width in bits
  TimeUnit unit = TimeUnit::kSecond;
  std::string timezone;
  std::vector<int8_t> type_codes;

  // Returns the width in bits of one value for fixed-width types (bool = 1), else 0.
  int32_t FixedBitWidth() const;
};

// Returns whether `id` is one of the eight integer types / a signed one.
bool IsInteger(TypeId id);
bool IsSignedInteger(TypeId id);

// Parses a C Data Interface format string ("i", "d:10,2", "tsu:UTC", "+w:3", ...).
// Returns InvalidArgument naming the string when it is not one the specification defines.
Result<DataType> ParseFormat(std::string_view format);

// Returns a short human-readable name of `type` ("int32", "decimal(10,2)",
// "timestamp[us, tz=UTC]", "list", ...).
std::string TypeName(const DataType& type);

}  // namespace bridge::ipc
