// Test-only (library bridge_arrow_testing): Arrow C Data Interface arrays and schemas built
// by hand from literal buffers, and a reader that turns their values back into text,
// written from the columnar format specification independently of the code under test.
//
// Every array and schema made here owns its buffers, children and dictionary and frees them
// in its release callback. Not thread-safe: `released_test_arrays` is a plain counter.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/data_type.h"
#include "bridge/arrow/encoder.h"

namespace bridge::ipc::test_arrays {

// ---------------------------------------------------------------------------------------
// Buffers

// One buffer of an array; nullopt stands for a null buffer pointer.
using MaybeBuffer = std::optional<std::vector<uint8_t>>;

// Returns the bytes of `values`, native-endian.
template <typename T>
std::vector<uint8_t> Bytes(std::initializer_list<T> values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.begin(), bytes.size());
  return bytes;
}

// Returns a bitmap whose bit i is set when pattern[i] == '1', with one spare zero byte at
// the end.
std::vector<uint8_t> Bits(std::string_view pattern);

// Returns the bytes of `text`.
std::vector<uint8_t> Chars(std::string_view text);

// Returns the C Data Interface encoding of `pairs` (int32 count, then per pair int32 length +
// key, int32 length + value), built here rather than by the code under test.
std::string MetadataBytes(const KeyValueMetadata& pairs);

// ---------------------------------------------------------------------------------------
// Arrays

// How many arrays made by MakeArray and View have been released; tests may reset it.
extern int released_test_arrays;

// MakeArray's null_count that asks it to count the zero bits of buffer 0 over the rows (0
// when there is no buffer 0).
inline constexpr int64_t kCountNulls = -2;

// Returns an array of `length` rows from `offset` that owns `buffers`, `children` and
// `dictionary`.
OwnedArray MakeArray(int64_t length, std::vector<MaybeBuffer> buffers,
                     std::vector<OwnedArray> children = {}, OwnedArray dictionary = {},
                     int64_t offset = 0, int64_t null_count = kCountNulls);

// Frees what an array made by MakeArray owns, given its private_data, for a test that
// cleared the array's release by hand (not counted in released_test_arrays).
void FreeTestArrayData(void* private_data);

// Returns a view of rows [start, start + length) of `array`, sharing its buffers (which must
// outlive the view), null_count -1. With `push_down`, a struct's view keeps offset 0 and
// moves the rows into its children's offsets instead.
OwnedArray View(const ArrowArray& array, int64_t start, int64_t length, bool push_down = false);

// Returns a record batch: a struct array over `columns` with no validity bitmap.
OwnedArray Batch(int64_t length, std::vector<OwnedArray> columns, int64_t offset = 0);

// Returns an int32 array of `values` (a validity bitmap when `validity` is not empty) whose
// rows start at `offset`.
OwnedArray Int32s(std::initializer_list<int32_t> values, std::string_view validity = "",
                  int64_t offset = 0);

// Returns a utf8 (or binary) array with int32 offsets of `values` (nullopt = null) whose rows
// start at `offset`.
OwnedArray Utf8(std::vector<std::optional<std::string>> values, int64_t offset = 0);

// Returns a large utf8 (or large binary) array with int64 offsets of `values`.
OwnedArray LargeUtf8(std::vector<std::optional<std::string>> values);

// ---------------------------------------------------------------------------------------
// Schemas

// Returns a schema that owns its strings, `children` and `dictionary`; `metadata` is encoded
// as the C Data Interface asks (a null pointer when empty).
OwnedSchema MakeSchema(std::string format, std::string name = "x",
                       std::vector<OwnedSchema> children = {}, OwnedSchema dictionary = {},
                       int64_t flags = ARROW_FLAG_NULLABLE, const KeyValueMetadata& metadata = {});

// Returns a record batch schema: a struct "+s" named "" with flags 0 over `fields`.
OwnedSchema Columns(std::vector<OwnedSchema> fields, const KeyValueMetadata& metadata = {});

// ---------------------------------------------------------------------------------------
// Reading values back

// Returns bit `i` of a bitmap.
inline bool BitAt(const void* bits, int64_t i) {
  return (static_cast<const uint8_t*>(bits)[i >> 3] >> (i & 7)) & 1;
}

// Returns element `index` of an array of T at `base`, read without alignment.
template <typename T>
T LoadAt(const void* base, int64_t index) {
  T value;
  std::memcpy(&value, static_cast<const uint8_t*>(base) + index * sizeof(T), sizeof(T));
  return value;
}

// Returns the type of `schema`; adds a test failure (and returns a default DataType) when
// its format does not parse.
DataType TypeOf(const ArrowSchema& schema);

// Returns whether arrays of `schema` (of type `type`) have a validity bitmap as buffer 0.
bool HasValidityBitmap(const ArrowSchema& schema, const DataType& type);

// Returns element `i` of a buffer of integers of `type`; adds a test failure for a type
// that is not an integer.
int64_t IntegerAt(const DataType& type, const void* data, int64_t i);

// Returns "0x" and the bytes in hex.
std::string Hex(const void* data, int64_t size);

// Returns row `row` (counted from array.offset) of `array` as text: "null", a number, a
// quoted string, hex bytes, "[...]", "{name: ...}", "<code: ...>"; a dictionary-encoded
// value is its decoded value preceded by `dictionary_prefix`.
std::string ValueAt(const ArrowSchema& schema, const ArrowArray& array, int64_t row,
                    std::string_view dictionary_prefix = "");

// Returns the arguments moved into a vector (an initializer list cannot hold move-only
// arrays and schemas).
template <typename... T>
std::vector<OwnedArray> Arrays(T... arrays) {
  std::vector<OwnedArray> out;
  (out.push_back(std::move(arrays)), ...);
  return out;
}
template <typename... T>
std::vector<OwnedSchema> Fields(T... fields) {
  std::vector<OwnedSchema> out;
  (out.push_back(std::move(fields)), ...);
  return out;
}

// Returns every row of the record batch `batch` of `schema` as "v1 | v2 | ...", each value as
// ValueAt writes it.
std::vector<std::string> Rows(const ArrowSchema& schema, const ArrowArray& batch);

}  // namespace bridge::ipc::test_arrays
