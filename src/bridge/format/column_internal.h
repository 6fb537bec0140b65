// Column: the formatter of one Arrow field (a column, a nested field or a dictionary),
// built once from the schema and bound to each batch's array. Private to the format module.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/data_type.h"
#include "bridge/common/status.h"

namespace bridge::format::internal {

// How scalar values are written outside JSON (CSV fields, table cells).
struct PlainStyle {
  // Between the date and the time of a timestamp.
  char datetime_separator = 'T';
};

// Writes the values of one field as JSON or as plain text.
//
// Make() checks the schema once. Bind() checks an array of that type against everything
// the C Data Interface lets us check (buffer and child counts, non-null buffers, lengths,
// offsets of strings, lists and views, union type ids, dictionary indices, run ends), so
// that the Append functions, which then read without checks, stay inside the memory the
// array describes. Indices `i` are logical: 0 is the array's first slot, the array's own
// `offset` is added here.
//
// Not thread-safe. The schema must outlive the Column; a bound array must stay alive while
// its values are read.
class Column {
 public:
  // Builds the formatter of `schema`; `path` names the field in error messages ("" for the
  // record batch itself, "a", "a.b", "tags[]"). Returns InvalidArgument for a format string
  // that is not a valid Arrow type or a type whose children do not fit it.
  static Result<std::unique_ptr<Column>> Make(const ArrowSchema& schema, std::string path);

  Column(const Column&) = delete;
  Column& operator=(const Column&) = delete;

  // Checks `array` and remembers it (and its children and dictionary) for the accessors
  // below. Returns InvalidArgument naming the field and the fault for a malformed array;
  // the Column is then unbound until the next successful Bind.
  Status Bind(const ArrowArray& array);

  const std::string& name() const { return name_; }
  // The field's name as a JSON object key with its colon: "\"name\":".
  const std::string& json_key() const { return json_key_; }
  const std::vector<std::unique_ptr<Column>>& children() const { return children_; }
  // True for numbers (integers, floats, decimals), which tables align right.
  bool IsNumeric() const;
  // True when the schema is a struct without a dictionary.
  bool IsStruct() const;

  // Of the bound array.
  int64_t offset() const { return offset_; }
  int64_t length() const { return length_; }

  // Returns whether slot `i` is null: its validity bit, or for dictionaries, unions and
  // run-end encoded arrays the value it refers to.
  bool IsNull(int64_t i) const;
  // Appends slot `i` as a JSON value ("null" when null).
  void AppendJson(int64_t i, std::string* out) const;
  // Appends slot `i`, which must not be null, as plain text: strings as they are (invalid
  // UTF-8 repaired), binary as DuckDB's \xHH text, NaN and infinities as nan / inf / -inf,
  // nested values as JSON.
  void AppendPlain(int64_t i, const PlainStyle& style, std::string* out) const;

 private:
  enum class Kind : uint8_t {
    kNull,
    kBool,
    kInt8,
    kInt16,
    kInt32,
    kInt64,
    kUInt8,
    kUInt16,
    kUInt32,
    kUInt64,
    kHalf,
    kFloat,
    kDouble,
    kDecimal,
    kString,
    kBinary,
    kUuid,
    kInt128,
    kUInt128,
    kDate32,
    kDate64,
    kTime32,
    kTime64,
    kTimestamp,
    kDuration,
    kIntervalMonths,
    kIntervalDayTime,
    kIntervalMonthDayNano,
    kList,
    kStruct,
    kMap,
    kUnion,
    kRunEnd,
  };
  // Where the values of strings, binaries and lists are.
  enum class Layout : uint8_t {
    kNone,
    kOffsets32,
    kOffsets64,
    kView,
    kFixed,
    kListView32,
    kListView64
  };

  Column();
  static Result<std::unique_ptr<Column>> MakeAt(const ArrowSchema& schema, std::string path,
                                                int depth);
  Status SetType(const ArrowSchema& schema, int depth);
  Status AddChild(const ArrowSchema& schema, std::string path, int depth);

  template <typename... Args>
  Status Error(const Args&... args) const;

  Status BindBuffers(const ArrowArray& array);
  Status CheckValues() const;
  Status CheckIndices() const;
  Status CheckStringOffsets() const;
  Status CheckViews() const;
  Status CheckListOffsets() const;
  Status CheckUnion() const;
  Status CheckRunEnds() const;

  bool IsText() const;
  bool IsValidAt(int64_t physical) const {
    return validity_ == nullptr || ((validity_[physical >> 3] >> (physical & 7)) & 1) != 0;
  }
  int64_t IntegerAt(int64_t physical) const;  // integer kinds only
  int64_t IndexAt(int64_t i) const { return IntegerAt(offset_ + i); }
  std::string_view BytesAt(int64_t i) const;
  std::pair<int64_t, int64_t> ListRange(int64_t i) const;
  std::pair<const Column*, int64_t> UnionMember(int64_t i) const;
  int64_t RunIndex(int64_t i) const;

  // Appends a non-null, non-dictionary slot of a scalar or nested kind.
  void AppendValue(int64_t i, bool json, char datetime_separator, std::string* out) const;
  void AppendNested(int64_t i, std::string* out) const;

  // From the schema.
  Kind kind_ = Kind::kNull;
  Layout layout_ = Layout::kNone;
  ipc::DataType type_;
  std::string name_;
  std::string path_;
  std::string json_key_;
  int32_t byte_width_ = 0;  // fixed-width values
  bool dense_union_ = false;
  bool string_keys_ = false;  // maps: written as JSON objects
  std::vector<std::unique_ptr<Column>> children_;
  std::unique_ptr<Column> dictionary_;  // set: this column holds indices into it
  int8_t child_of_type_code_[128];      // unions: child index of each type code, or -1

  // From the bound array.
  int64_t offset_ = 0;
  int64_t length_ = 0;
  int64_t n_buffers_ = 0;
  const uint8_t* validity_ = nullptr;
  const uint8_t* values_ = nullptr;           // values, offsets, views, union type ids
  const uint8_t* data_ = nullptr;             // string bytes, list-view sizes, dense union offsets
  const uint8_t* const* variadic_ = nullptr;  // view data buffers
  const int64_t* variadic_sizes_ = nullptr;
  int64_t variadic_count_ = 0;
};

}  // namespace bridge::format::internal
