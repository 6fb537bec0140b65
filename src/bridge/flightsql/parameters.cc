// Bound parameters: the rows of an uploaded Arrow batch as engine values.
#include <cstring>

#include "bridge/flightsql/flightsql_internal.h"

namespace bridge::flightsql {
namespace {

template <typename T>
T Load(const void* base, int64_t index) {
  T value;
  std::memcpy(&value, static_cast<const uint8_t*>(base) + index * sizeof(T), sizeof(T));
  return value;
}

bool IsNull(const ArrowArray& a, int64_t row) {
  if (a.null_count == 0 || a.n_buffers == 0 || a.buffers[0] == nullptr) return false;
  int64_t i = a.offset + row;
  return ((static_cast<const uint8_t*>(a.buffers[0])[i >> 3] >> (i & 7)) & 1) == 0;
}

// The value of row `row` of column `a` of type `format`.
Result<engine::Value> ValueAt(std::string_view format, const ArrowArray& a, int64_t row,
                              std::string_view name) {
  if (format == "n") return engine::Value();
  if (IsNull(a, row)) return engine::Value();
  const int64_t i = a.offset + row;
  auto data = [&](int b) { return a.buffers[b]; };
  if (format.size() == 1) {
    switch (format[0]) {
      case 'b':
        return engine::Value(((static_cast<const uint8_t*>(data(1))[i >> 3] >> (i & 7)) & 1) != 0);
      case 'c':
        return engine::Value(int64_t{Load<int8_t>(data(1), i)});
      case 's':
        return engine::Value(int64_t{Load<int16_t>(data(1), i)});
      case 'i':
        return engine::Value(int64_t{Load<int32_t>(data(1), i)});
      case 'l':
        return engine::Value(Load<int64_t>(data(1), i));
      case 'C':
        return engine::Value(int64_t{Load<uint8_t>(data(1), i)});
      case 'S':
        return engine::Value(int64_t{Load<uint16_t>(data(1), i)});
      case 'I':
        return engine::Value(int64_t{Load<uint32_t>(data(1), i)});
      case 'L': {
        uint64_t v = Load<uint64_t>(data(1), i);
        if (v > static_cast<uint64_t>(INT64_MAX)) {
          return InvalidArgument("flightsql: parameter '", std::string(name), "': ", v,
                                 " does not fit a BIGINT");
        }
        return engine::Value(static_cast<int64_t>(v));
      }
      case 'f':
        return engine::Value(double{Load<float>(data(1), i)});
      case 'g':
        return engine::Value(Load<double>(data(1), i));
      case 'u':
      case 'z': {
        int32_t begin = Load<int32_t>(data(1), i), end = Load<int32_t>(data(1), i + 1);
        std::string bytes(static_cast<const char*>(data(2)) + begin,
                          static_cast<size_t>(end - begin));
        if (format[0] == 'z') return engine::Value(engine::Blob{std::move(bytes)});
        return engine::Value(std::move(bytes));
      }
      case 'U':
      case 'Z': {
        int64_t begin = Load<int64_t>(data(1), i), end = Load<int64_t>(data(1), i + 1);
        std::string bytes(static_cast<const char*>(data(2)) + begin,
                          static_cast<size_t>(end - begin));
        if (format[0] == 'Z') return engine::Value(engine::Blob{std::move(bytes)});
        return engine::Value(std::move(bytes));
      }
      default:
        break;
    }
  }
  return InvalidArgument("flightsql: parameter '", std::string(name), "' has Arrow type '",
                         std::string(format),
                         "'; bind booleans, integers, floating point, strings, binary or nulls");
}

}  // namespace

Result<std::vector<std::vector<engine::Value>>> ParameterRows(const ArrowSchema& schema,
                                                              const ArrowArray& batch) {
  if (batch.n_children != schema.n_children) {
    return InvalidArgument("flightsql: the parameter batch has ", batch.n_children,
                           " columns, its schema ", schema.n_children);
  }
  std::vector<std::vector<engine::Value>> rows(static_cast<size_t>(batch.length));
  for (int64_t c = 0; c < schema.n_children; ++c) {
    const ArrowSchema& field = *schema.children[c];
    const ArrowArray& column = *batch.children[c];
    if (field.dictionary != nullptr) {
      return InvalidArgument("flightsql: parameter '", field.name,
                             "' is dictionary-encoded; send plain values");
    }
    for (int64_t r = 0; r < batch.length; ++r) {
      BRIDGE_ASSIGN_OR_RETURN(engine::Value value,
                              ValueAt(field.format, column, batch.offset + r, field.name));
      rows[static_cast<size_t>(r)].push_back(std::move(value));
    }
  }
  return rows;
}

}  // namespace bridge::flightsql
