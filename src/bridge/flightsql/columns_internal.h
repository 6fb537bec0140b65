// Private to src/bridge/flightsql: small Arrow results built in memory (the metadata
// commands' answers), exported through the C Data Interface so that DoGet's encoder sends
// them like any query result.
//
// A ColumnBuilder is a column of one type: it records rows and exports an ArrowSchema (the
// field: name, format, nullability) and an ArrowArray that owns copies of the buffers.
// Supported formats: "b", "c", "C", "s", "S", "i", "I", "l", "L", "u", "z", "+l", "+m",
// "+s", "+ud:..."; enough for the Flight SQL metadata schemas. Not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace bridge::flightsql {

class ColumnBuilder {
 public:
  ColumnBuilder(std::string format, std::string name, bool nullable,
                std::vector<ColumnBuilder> children = {});

  const std::string& format() const { return format_; }
  const std::string& name() const { return name_; }
  int64_t length() const { return length_; }
  ColumnBuilder& child(size_t i) { return children_[i]; }

  // Appends a null row (nested types: an empty list / zero-filled struct row).
  void Null();
  // Appends a value of a fixed-width column ("b" takes bool); T must match the format's size.
  template <typename T>
  void Value(T value) {
    if (format_ == "b") {
      AppendBit(bits_, length_, value != T{});
    } else {
      const auto* p = reinterpret_cast<const uint8_t*>(&value);
      data_.insert(data_.end(), p, p + sizeof(T));
    }
    Valid();
  }
  // Appends a utf8 ("u") or binary ("z") value.
  void Bytes(std::string_view value);
  // Lists and maps: ends a row whose items were appended to child(0) since the last row.
  void EndList();
  // Structs: ends a row whose fields were appended to the children.
  void EndStruct();
  // Dense unions: ends a row whose value was just appended to the child of type `type_id`.
  void EndUnion(int8_t type_id);

  // Returns the field's schema.
  ipc::OwnedSchema ExportSchema() const;
  // Returns the column's array (copies of the buffers; the builder may be reused or dropped).
  ipc::OwnedArray ExportArray() const;

 private:
  static void AppendBit(std::vector<uint8_t>& bits, int64_t index, bool value);
  void Valid();

  std::string format_;
  std::string name_;
  bool nullable_;
  std::vector<ColumnBuilder> children_;
  int64_t length_ = 0;
  int64_t null_count_ = 0;
  std::vector<uint8_t> validity_;    // bit per row
  std::vector<uint8_t> bits_;        // "b" values
  std::vector<uint8_t> data_;        // fixed-width values, or the bytes of "u" / "z"
  std::vector<int32_t> offsets_{0};  // "u", "z", "+l", "+m"; dense union: per-row offsets
  std::vector<int8_t> type_ids_;     // dense union
};

// A result of several columns, exported as one record batch.
struct ResultTable {
  std::vector<ColumnBuilder> columns;

  // Returns the record batch schema ("+s" over the columns).
  ipc::OwnedSchema ExportSchema() const;
  // Returns the encapsulated IPC Schema message of ExportSchema().
  Result<std::string> SchemaMessage() const;
  // Returns a stream of one batch holding every row (no batch when there are no rows).
  std::unique_ptr<engine::BatchStream> ToStream() const;
};

}  // namespace bridge::flightsql
