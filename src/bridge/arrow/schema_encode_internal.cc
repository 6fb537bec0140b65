#include "bridge/arrow/schema_encode_internal.h"

#include <cstring>

namespace bridge::ipc {
namespace {

constexpr int kMaxNestingDepth = 64;

std::string ChildPath(const std::string& parent, const std::string& name) {
  if (parent.empty()) return name;
  return StrCat(parent, ".", name);
}

Status Bad(const std::string& path, const std::string& what) {
  return InvalidArgument("ipc: schema field '", path, "': ", what);
}

// Checks the number and kinds of children that `type` requires.
Status CheckChildren(const FieldInfo& field, const ArrowSchema& schema) {
  const int64_t n = schema.n_children;
  switch (field.type.id) {
    case TypeId::kList:
    case TypeId::kLargeList:
    case TypeId::kListView:
    case TypeId::kLargeListView:
    case TypeId::kFixedSizeList:
      if (n != 1) return Bad(field.path, StrCat(TypeName(field.type), " needs 1 child, has ", n));
      return OkStatus();
    case TypeId::kMap:
      if (n != 1 || std::string_view(schema.children[0]->format) != "+s" ||
          schema.children[0]->n_children != 2) {
        return Bad(field.path, "map needs one struct child with 2 children (key, value)");
      }
      return OkStatus();
    case TypeId::kStruct:
      return OkStatus();
    case TypeId::kDenseUnion:
    case TypeId::kSparseUnion:
      if (n != static_cast<int64_t>(field.type.type_codes.size())) {
        return Bad(field.path, StrCat("union has ", field.type.type_codes.size(),
                                      " type codes but ", n, " children"));
      }
      return OkStatus();
    case TypeId::kRunEndEncoded:
      if (n != 2) return Bad(field.path, StrCat("run_end_encoded needs 2 children, has ", n));
      return OkStatus();
    default:
      if (n != 0) return Bad(field.path, StrCat(TypeName(field.type), " has ", n, " children"));
      return OkStatus();
  }
}

// Analyzes `schema` into a FieldInfo whose path is `path`, assigning dictionary ids from
// *next_dictionary_id on.
Result<FieldInfo> AnalyzeField(const ArrowSchema& schema, std::string path, int depth,
                               int64_t* next_dictionary_id) {
  FieldInfo field;
  field.name = schema.name != nullptr ? schema.name : "";
  field.path = std::move(path);
  if (depth > kMaxNestingDepth) {
    return Bad(field.path, StrCat("nested deeper than ", kMaxNestingDepth, " levels"));
  }
  if (schema.format == nullptr) return Bad(field.path, "format is null");
  auto type = ParseFormat(schema.format);
  if (!type.ok()) return Bad(field.path, std::string(type.status().message()));
  field.type = *std::move(type);
  field.nullable = (schema.flags & ARROW_FLAG_NULLABLE) != 0;
  field.keys_sorted = (schema.flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0;
  auto metadata = ParseMetadata(schema.metadata);
  if (!metadata.ok()) return Bad(field.path, std::string(metadata.status().message()));
  field.metadata = *std::move(metadata);
  if (schema.n_children < 0) return Bad(field.path, "negative n_children");
  if (schema.n_children > 0 && schema.children == nullptr) return Bad(field.path, "children null");
  for (int64_t i = 0; i < schema.n_children; ++i) {
    if (schema.children[i] == nullptr) return Bad(field.path, StrCat("child ", i, " is null"));
    if (schema.children[i]->format == nullptr) {
      return Bad(field.path, StrCat("child ", i, " has a null format"));
    }
  }

  if (schema.dictionary != nullptr) {
    if (!IsInteger(field.type.id)) {
      return Bad(field.path,
                 StrCat("dictionary indices must be integers, not ", TypeName(field.type)));
    }
    if (schema.n_children != 0) return Bad(field.path, "dictionary indices have children");
    if (schema.dictionary->dictionary != nullptr) {
      return Unimplemented("ipc: schema field '", field.path,
                           "': a dictionary whose values are dictionary-encoded cannot be "
                           "described in IPC");
    }
    field.dictionary_id = (*next_dictionary_id)++;
    field.dictionary_ordered = (schema.flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0;
    // The value type keeps the field's path: the dictionary's own name is meaningless.
    BRIDGE_ASSIGN_OR_RETURN(FieldInfo value, AnalyzeField(*schema.dictionary, field.path, depth + 1,
                                                          next_dictionary_id));
    field.dictionary = std::make_unique<FieldInfo>(std::move(value));
    return field;
  }

  BRIDGE_RETURN_NOT_OK(CheckChildren(field, schema));
  field.children.reserve(static_cast<size_t>(schema.n_children));
  for (int64_t i = 0; i < schema.n_children; ++i) {
    const char* child_name = schema.children[i]->name;
    BRIDGE_ASSIGN_OR_RETURN(
        FieldInfo child,
        AnalyzeField(*schema.children[i], ChildPath(field.path, child_name ? child_name : ""),
                     depth + 1, next_dictionary_id));
    field.children.push_back(std::move(child));
  }
  if (field.type.id == TypeId::kRunEndEncoded) {
    const FieldInfo& run_ends = field.children[0];
    const TypeId id = run_ends.type.id;
    if (run_ends.dictionary_encoded() ||
        (id != TypeId::kInt16 && id != TypeId::kInt32 && id != TypeId::kInt64)) {
      return Bad(field.path, "run ends must be int16, int32 or int64");
    }
  }
  return field;
}

fb::TimeUnit ToFbUnit(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kSecond:
      return fb::TimeUnit::SECOND;
    case TimeUnit::kMilli:
      return fb::TimeUnit::MILLISECOND;
    case TimeUnit::kMicro:
      return fb::TimeUnit::MICROSECOND;
    case TimeUnit::kNano:
      return fb::TimeUnit::NANOSECOND;
  }
  return fb::TimeUnit::SECOND;
}

flatbuffers::Offset<fb::Int> WriteIntType(flatbuffers::FlatBufferBuilder& fbb,
                                          const DataType& type) {
  return fb::CreateInt(fbb, type.FixedBitWidth(), IsSignedInteger(type.id));
}

std::pair<fb::Type, flatbuffers::Offset<void>> WriteType(flatbuffers::FlatBufferBuilder& fbb,
                                                         const FieldInfo& field) {
  const DataType& t = field.type;
  switch (t.id) {
    case TypeId::kNull:
      return {fb::Type::Null, fb::CreateNull(fbb).Union()};
    case TypeId::kBool:
      return {fb::Type::Bool, fb::CreateBool(fbb).Union()};
    case TypeId::kInt8:
    case TypeId::kUInt8:
    case TypeId::kInt16:
    case TypeId::kUInt16:
    case TypeId::kInt32:
    case TypeId::kUInt32:
    case TypeId::kInt64:
    case TypeId::kUInt64:
      return {fb::Type::Int, WriteIntType(fbb, t).Union()};
    case TypeId::kFloat16:
      return {fb::Type::FloatingPoint, fb::CreateFloatingPoint(fbb, fb::Precision::HALF).Union()};
    case TypeId::kFloat32:
      return {fb::Type::FloatingPoint, fb::CreateFloatingPoint(fbb, fb::Precision::SINGLE).Union()};
    case TypeId::kFloat64:
      return {fb::Type::FloatingPoint, fb::CreateFloatingPoint(fbb, fb::Precision::DOUBLE).Union()};
    case TypeId::kBinary:
      return {fb::Type::Binary, fb::CreateBinary(fbb).Union()};
    case TypeId::kLargeBinary:
      return {fb::Type::LargeBinary, fb::CreateLargeBinary(fbb).Union()};
    case TypeId::kBinaryView:
      return {fb::Type::BinaryView, fb::CreateBinaryView(fbb).Union()};
    case TypeId::kUtf8:
      return {fb::Type::Utf8, fb::CreateUtf8(fbb).Union()};
    case TypeId::kLargeUtf8:
      return {fb::Type::LargeUtf8, fb::CreateLargeUtf8(fbb).Union()};
    case TypeId::kUtf8View:
      return {fb::Type::Utf8View, fb::CreateUtf8View(fbb).Union()};
    case TypeId::kDecimal:
      return {fb::Type::Decimal, fb::CreateDecimal(fbb, t.precision, t.scale, t.bit_width).Union()};
    case TypeId::kFixedSizeBinary:
      return {fb::Type::FixedSizeBinary, fb::CreateFixedSizeBinary(fbb, t.fixed_size).Union()};
    case TypeId::kDate32:
      return {fb::Type::Date, fb::CreateDate(fbb, fb::DateUnit::DAY).Union()};
    case TypeId::kDate64:
      return {fb::Type::Date, fb::CreateDate(fbb, fb::DateUnit::MILLISECOND).Union()};
    case TypeId::kTime32:
      return {fb::Type::Time, fb::CreateTime(fbb, ToFbUnit(t.unit), 32).Union()};
    case TypeId::kTime64:
      return {fb::Type::Time, fb::CreateTime(fbb, ToFbUnit(t.unit), 64).Union()};
    case TypeId::kTimestamp: {
      flatbuffers::Offset<flatbuffers::String> tz;
      if (!t.timezone.empty()) tz = fbb.CreateString(t.timezone);
      return {fb::Type::Timestamp, fb::CreateTimestamp(fbb, ToFbUnit(t.unit), tz).Union()};
    }
    case TypeId::kDuration:
      return {fb::Type::Duration, fb::CreateDuration(fbb, ToFbUnit(t.unit)).Union()};
    case TypeId::kIntervalMonths:
      return {fb::Type::Interval, fb::CreateInterval(fbb, fb::IntervalUnit::YEAR_MONTH).Union()};
    case TypeId::kIntervalDayTime:
      return {fb::Type::Interval, fb::CreateInterval(fbb, fb::IntervalUnit::DAY_TIME).Union()};
    case TypeId::kIntervalMonthDayNano:
      return {fb::Type::Interval,
              fb::CreateInterval(fbb, fb::IntervalUnit::MONTH_DAY_NANO).Union()};
    case TypeId::kList:
      return {fb::Type::List, fb::CreateList(fbb).Union()};
    case TypeId::kLargeList:
      return {fb::Type::LargeList, fb::CreateLargeList(fbb).Union()};
    case TypeId::kListView:
      return {fb::Type::ListView, fb::CreateListView(fbb).Union()};
    case TypeId::kLargeListView:
      return {fb::Type::LargeListView, fb::CreateLargeListView(fbb).Union()};
    case TypeId::kFixedSizeList:
      return {fb::Type::FixedSizeList, fb::CreateFixedSizeList(fbb, t.fixed_size).Union()};
    case TypeId::kStruct:
      return {fb::Type::Struct_, fb::CreateStruct_(fbb).Union()};
    case TypeId::kMap:
      return {fb::Type::Map, fb::CreateMap(fbb, field.keys_sorted).Union()};
    case TypeId::kDenseUnion:
    case TypeId::kSparseUnion: {
      std::vector<int32_t> ids(t.type_codes.begin(), t.type_codes.end());
      auto type_ids = fbb.CreateVector(ids);
      const fb::UnionMode mode =
          t.id == TypeId::kDenseUnion ? fb::UnionMode::Dense : fb::UnionMode::Sparse;
      return {fb::Type::Union, fb::CreateUnion(fbb, mode, type_ids).Union()};
    }
    case TypeId::kRunEndEncoded:
      return {fb::Type::RunEndEncoded, fb::CreateRunEndEncoded(fbb).Union()};
  }
  return {fb::Type::NONE, 0};
}

flatbuffers::Offset<fb::Field> WriteField(flatbuffers::FlatBufferBuilder& fbb,
                                          const FieldInfo& field) {
  // A dictionary-encoded field is described by its value type; the index type goes into
  // the DictionaryEncoding.
  const FieldInfo& value = field.dictionary_encoded() ? *field.dictionary : field;
  std::vector<flatbuffers::Offset<fb::Field>> children;
  children.reserve(value.children.size());
  for (const FieldInfo& child : value.children) children.push_back(WriteField(fbb, child));
  auto children_vector = fbb.CreateVector(children);
  auto [type_type, type] = WriteType(fbb, value);
  flatbuffers::Offset<fb::DictionaryEncoding> dictionary;
  if (field.dictionary_encoded()) {
    auto index_type = WriteIntType(fbb, field.type);
    dictionary =
        fb::CreateDictionaryEncoding(fbb, field.dictionary_id, index_type, field.dictionary_ordered,
                                     fb::DictionaryKind::DenseArray);
  }
  auto name = fbb.CreateString(field.name);
  auto metadata = WriteMetadata(fbb, field.metadata);
  return fb::CreateField(fbb, name, field.nullable, type_type, type, dictionary, children_vector,
                         metadata);
}

}  // namespace

Result<KeyValueMetadata> ParseMetadata(const char* metadata) {
  KeyValueMetadata out;
  if (metadata == nullptr) return out;
  auto read_int32 = [&](int32_t* value) {
    std::memcpy(value, metadata, sizeof(int32_t));
    metadata += sizeof(int32_t);
  };
  int32_t count = 0;
  read_int32(&count);
  if (count < 0) return InvalidArgument("ipc: metadata has a negative pair count ", count);
  out.reserve(static_cast<size_t>(count));
  for (int32_t i = 0; i < count; ++i) {
    int32_t key_length = 0;
    read_int32(&key_length);
    if (key_length < 0) return InvalidArgument("ipc: metadata key ", i, " has a negative length");
    std::string key(metadata, static_cast<size_t>(key_length));
    metadata += key_length;
    int32_t value_length = 0;
    read_int32(&value_length);
    if (value_length < 0) {
      return InvalidArgument("ipc: metadata value ", i, " has a negative length");
    }
    std::string value(metadata, static_cast<size_t>(value_length));
    metadata += value_length;
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

Result<SchemaInfo> AnalyzeSchema(const ArrowSchema& schema) {
  if (schema.release == nullptr) return InvalidArgument("ipc: schema is released");
  if (schema.format == nullptr || std::string_view(schema.format) != "+s") {
    return InvalidArgument("ipc: a record batch schema must be a struct ('+s'), not '",
                           schema.format == nullptr ? "(null)" : schema.format, "'");
  }
  if (schema.n_children < 0 || (schema.n_children > 0 && schema.children == nullptr)) {
    return InvalidArgument("ipc: schema has a bad child list");
  }
  if (schema.dictionary != nullptr) {
    return InvalidArgument("ipc: the top-level struct of a schema cannot be dictionary-encoded");
  }
  SchemaInfo info;
  BRIDGE_ASSIGN_OR_RETURN(info.metadata, ParseMetadata(schema.metadata));
  info.fields.reserve(static_cast<size_t>(schema.n_children));
  for (int64_t i = 0; i < schema.n_children; ++i) {
    if (schema.children[i] == nullptr) return InvalidArgument("ipc: schema child ", i, " is null");
    const char* name = schema.children[i]->name;
    BRIDGE_ASSIGN_OR_RETURN(FieldInfo field, AnalyzeField(*schema.children[i], name ? name : "", 1,
                                                          &info.num_dictionaries));
    info.fields.push_back(std::move(field));
  }
  return info;
}

bool HasNestedDictionary(const FieldInfo& field) {
  if (field.dictionary_encoded()) return true;
  for (const FieldInfo& child : field.children) {
    if (HasNestedDictionary(child)) return true;
  }
  return false;
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>> WriteMetadata(
    flatbuffers::FlatBufferBuilder& fbb, const KeyValueMetadata& metadata) {
  if (metadata.empty()) return 0;
  std::vector<flatbuffers::Offset<fb::KeyValue>> pairs;
  pairs.reserve(metadata.size());
  for (const auto& [key, value] : metadata) {
    auto k = fbb.CreateString(key);
    auto v = fbb.CreateString(value);
    pairs.push_back(fb::CreateKeyValue(fbb, k, v));
  }
  return fbb.CreateVector(pairs);
}

flatbuffers::Offset<fb::Schema> WriteSchema(flatbuffers::FlatBufferBuilder& fbb,
                                            const SchemaInfo& schema) {
  std::vector<flatbuffers::Offset<fb::Field>> fields;
  fields.reserve(schema.fields.size());
  for (const FieldInfo& field : schema.fields) fields.push_back(WriteField(fbb, field));
  auto fields_vector = fbb.CreateVector(fields);
  auto metadata = WriteMetadata(fbb, schema.metadata);
  return fb::CreateSchema(fbb, fb::Endianness::Little, fields_vector, metadata);
}

}  // namespace bridge::ipc
