#include <cmath>
#include <cstring>
#include <limits>

#include "bridge/format/column_internal.h"
#include "bridge/format/text_internal.h"

namespace bridge::format::internal {
namespace {

using ipc::TypeId;

constexpr int kMaxDepth = 64;

template <typename T>
T Load(const uint8_t* base, int64_t index) {
  T value;
  std::memcpy(&value, base + index * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return value;
}

// The extension type of a field, from its metadata (see the Arrow C Data Interface:
// int32 pair count, then int32 length + bytes for each key and value).
struct Extension {
  std::string_view name;
  std::string_view metadata;
};

Extension ReadExtension(const char* metadata) {
  Extension ext;
  if (metadata == nullptr) return ext;
  const char* p = metadata;
  auto read_int = [&p] {
    int32_t v;
    std::memcpy(&v, p, 4);
    p += 4;
    return v;
  };
  const int32_t pairs = read_int();
  if (pairs < 0 || pairs > 4096) return ext;
  for (int32_t k = 0; k < pairs; ++k) {
    const int32_t key_length = read_int();
    if (key_length < 0 || key_length > (1 << 20)) return {};
    std::string_view key(p, key_length);
    p += key_length;
    const int32_t value_length = read_int();
    if (value_length < 0 || value_length > (1 << 20)) return {};
    std::string_view value(p, value_length);
    p += value_length;
    if (key == "ARROW:extension:name") ext.name = value;
    if (key == "ARROW:extension:metadata") ext.metadata = value;
  }
  return ext;
}

// Returns the string value of `"field": "..."` in a flat JSON object, or "".
std::string_view JsonField(std::string_view json, std::string_view field) {
  const std::string quoted = StrCat("\"", field, "\"");
  size_t pos = json.find(quoted);
  if (pos == std::string_view::npos) return {};
  pos += quoted.size();
  while (pos < json.size() && (json[pos] == ' ' || json[pos] == ':')) ++pos;
  if (pos >= json.size() || json[pos] != '"') return {};
  const size_t end = json.find('"', pos + 1);
  if (end == std::string_view::npos) return {};
  return json.substr(pos + 1, end - pos - 1);
}

std::string ChildPath(const std::string& parent, std::string_view suffix) {
  return parent.empty() ? std::string(suffix) : StrCat(parent, ".", suffix);
}

}  // namespace

Column::Column() { std::memset(child_of_type_code_, -1, sizeof(child_of_type_code_)); }

template <typename... Args>
Status Column::Error(const Args&... args) const {
  if (path_.empty()) return InvalidArgument("format: record batch: ", args...);
  return InvalidArgument("format: column '", path_, "': ", args...);
}

Result<std::unique_ptr<Column>> Column::Make(const ArrowSchema& schema, std::string path) {
  return MakeAt(schema, std::move(path), 0);
}

Result<std::unique_ptr<Column>> Column::MakeAt(const ArrowSchema& schema, std::string path,
                                               int depth) {
  std::unique_ptr<Column> column(new Column());
  column->path_ = std::move(path);
  if (depth > kMaxDepth) return column->Error("types nested deeper than ", kMaxDepth, " levels");
  column->name_ = schema.name == nullptr ? "" : schema.name;
  AppendJsonString(column->name_, &column->json_key_);
  column->json_key_.push_back(':');
  BRIDGE_RETURN_NOT_OK(column->SetType(schema, depth));
  return column;
}

Status Column::AddChild(const ArrowSchema& schema, std::string path, int depth) {
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<Column> child, MakeAt(schema, std::move(path), depth));
  children_.push_back(std::move(child));
  return OkStatus();
}

Status Column::SetType(const ArrowSchema& schema, int depth) {
  if (schema.format == nullptr) return Error("schema has no format string");
  auto parsed = ipc::ParseFormat(schema.format);
  if (!parsed.ok()) {
    return Error("unsupported type '", schema.format, "' (", std::string(parsed.status().message()),
                 ")");
  }
  type_ = std::move(parsed).value();
  if (schema.n_children < 0 || (schema.n_children > 0 && schema.children == nullptr)) {
    return Error("schema has a bad child list");
  }
  for (int64_t k = 0; k < schema.n_children; ++k) {
    if (schema.children[k] == nullptr) return Error("schema child ", k, " is null");
  }
  auto expect_children = [&](int64_t n) -> Status {
    if (schema.n_children != n) {
      return Error(ipc::TypeName(type_), " needs ", n, " child field(s), the schema has ",
                   schema.n_children);
    }
    return OkStatus();
  };
  const bool is_integer = type_.id >= TypeId::kInt8 && type_.id <= TypeId::kUInt64;
  if (schema.dictionary != nullptr) {
    if (!is_integer) {
      return Error("dictionary indices must be integers, not ", ipc::TypeName(type_));
    }
    BRIDGE_RETURN_NOT_OK(expect_children(0));
    BRIDGE_ASSIGN_OR_RETURN(dictionary_,
                            MakeAt(*schema.dictionary, StrCat(path_, "(dictionary)"), depth + 1));
  }

  byte_width_ = type_.FixedBitWidth() / 8;
  switch (type_.id) {
    case TypeId::kNull:
      kind_ = Kind::kNull;
      break;
    case TypeId::kBool:
      kind_ = Kind::kBool;
      break;
    case TypeId::kInt8:
      kind_ = Kind::kInt8;
      break;
    case TypeId::kInt16:
      kind_ = Kind::kInt16;
      break;
    case TypeId::kInt32:
      kind_ = Kind::kInt32;
      break;
    case TypeId::kInt64:
      kind_ = Kind::kInt64;
      break;
    case TypeId::kUInt8:
      kind_ = Kind::kUInt8;
      break;
    case TypeId::kUInt16:
      kind_ = Kind::kUInt16;
      break;
    case TypeId::kUInt32:
      kind_ = Kind::kUInt32;
      break;
    case TypeId::kUInt64:
      kind_ = Kind::kUInt64;
      break;
    case TypeId::kFloat16:
      kind_ = Kind::kHalf;
      break;
    case TypeId::kFloat32:
      kind_ = Kind::kFloat;
      break;
    case TypeId::kFloat64:
      kind_ = Kind::kDouble;
      break;
    case TypeId::kDecimal:
      if (type_.scale < -100 || type_.scale > 100) {
        return Error("unsupported type '", schema.format, "' (scale out of range)");
      }
      kind_ = Kind::kDecimal;
      break;
    case TypeId::kUtf8:
    case TypeId::kBinary:
      kind_ = type_.id == TypeId::kUtf8 ? Kind::kString : Kind::kBinary;
      layout_ = Layout::kOffsets32;
      break;
    case TypeId::kLargeUtf8:
    case TypeId::kLargeBinary:
      kind_ = type_.id == TypeId::kLargeUtf8 ? Kind::kString : Kind::kBinary;
      layout_ = Layout::kOffsets64;
      break;
    case TypeId::kUtf8View:
    case TypeId::kBinaryView:
      kind_ = type_.id == TypeId::kUtf8View ? Kind::kString : Kind::kBinary;
      layout_ = Layout::kView;
      break;
    case TypeId::kFixedSizeBinary: {
      kind_ = Kind::kBinary;
      layout_ = Layout::kFixed;
      byte_width_ = type_.fixed_size;
      const Extension ext = ReadExtension(schema.metadata);
      if (type_.fixed_size == 16 && ext.name == "arrow.uuid") kind_ = Kind::kUuid;
      if (type_.fixed_size == 16 && ext.name == "arrow.opaque" &&
          JsonField(ext.metadata, "vendor_name") == "DuckDB") {
        const std::string_view type_name = JsonField(ext.metadata, "type_name");
        if (type_name == "uhugeint") kind_ = Kind::kUInt128;
        if (type_name == "hugeint") kind_ = Kind::kInt128;
      }
      break;
    }
    case TypeId::kDate32:
      kind_ = Kind::kDate32;
      break;
    case TypeId::kDate64:
      kind_ = Kind::kDate64;
      break;
    case TypeId::kTime32:
      kind_ = Kind::kTime32;
      break;
    case TypeId::kTime64:
      kind_ = Kind::kTime64;
      break;
    case TypeId::kTimestamp:
      kind_ = Kind::kTimestamp;
      break;
    case TypeId::kDuration:
      kind_ = Kind::kDuration;
      break;
    case TypeId::kIntervalMonths:
      kind_ = Kind::kIntervalMonths;
      break;
    case TypeId::kIntervalDayTime:
      kind_ = Kind::kIntervalDayTime;
      break;
    case TypeId::kIntervalMonthDayNano:
      kind_ = Kind::kIntervalMonthDayNano;
      break;
    case TypeId::kList:
    case TypeId::kLargeList:
    case TypeId::kListView:
    case TypeId::kLargeListView:
    case TypeId::kFixedSizeList:
      kind_ = Kind::kList;
      layout_ = type_.id == TypeId::kList            ? Layout::kOffsets32
                : type_.id == TypeId::kLargeList     ? Layout::kOffsets64
                : type_.id == TypeId::kListView      ? Layout::kListView32
                : type_.id == TypeId::kLargeListView ? Layout::kListView64
                                                     : Layout::kFixed;
      BRIDGE_RETURN_NOT_OK(expect_children(1));
      BRIDGE_RETURN_NOT_OK(AddChild(*schema.children[0], StrCat(path_, "[]"), depth + 1));
      break;
    case TypeId::kStruct:
      kind_ = Kind::kStruct;
      for (int64_t k = 0; k < schema.n_children; ++k) {
        const char* child_name = schema.children[k]->name;
        BRIDGE_RETURN_NOT_OK(AddChild(*schema.children[k],
                                      ChildPath(path_, child_name == nullptr ? "" : child_name),
                                      depth + 1));
      }
      break;
    case TypeId::kMap: {
      kind_ = Kind::kMap;
      layout_ = Layout::kOffsets32;
      BRIDGE_RETURN_NOT_OK(expect_children(1));
      const ArrowSchema& entries = *schema.children[0];
      if (entries.format == nullptr || std::string_view(entries.format) != "+s" ||
          entries.n_children != 2 || entries.dictionary != nullptr) {
        return Error("map entries must be a struct of key and value");
      }
      // The entries' fields are named after the map: "m.key", "m.value".
      std::unique_ptr<Column> entries_column(new Column());
      entries_column->path_ = path_;
      BRIDGE_RETURN_NOT_OK(entries_column->SetType(entries, depth + 1));
      string_keys_ = entries_column->children_[0]->IsText();
      children_.push_back(std::move(entries_column));
      break;
    }
    case TypeId::kDenseUnion:
    case TypeId::kSparseUnion: {
      kind_ = Kind::kUnion;
      dense_union_ = type_.id == TypeId::kDenseUnion;
      BRIDGE_RETURN_NOT_OK(expect_children(static_cast<int64_t>(type_.type_codes.size())));
      for (size_t k = 0; k < type_.type_codes.size(); ++k) {
        const int8_t code = type_.type_codes[k];
        if (child_of_type_code_[code] != -1) return Error("union type code ", code, " repeats");
        child_of_type_code_[code] = static_cast<int8_t>(k);
        const char* child_name = schema.children[k]->name;
        BRIDGE_RETURN_NOT_OK(AddChild(*schema.children[k],
                                      ChildPath(path_, child_name == nullptr ? "" : child_name),
                                      depth + 1));
      }
      break;
    }
    case TypeId::kRunEndEncoded:
      kind_ = Kind::kRunEnd;
      BRIDGE_RETURN_NOT_OK(expect_children(2));
      BRIDGE_RETURN_NOT_OK(AddChild(*schema.children[0], ChildPath(path_, "run_ends"), depth + 1));
      BRIDGE_RETURN_NOT_OK(AddChild(*schema.children[1], ChildPath(path_, "values"), depth + 1));
      if (children_[0]->dictionary_ != nullptr ||
          (children_[0]->kind_ != Kind::kInt16 && children_[0]->kind_ != Kind::kInt32 &&
           children_[0]->kind_ != Kind::kInt64)) {
        return Error("run ends must be int16, int32 or int64");
      }
      break;
  }
  if (kind_ != Kind::kList && kind_ != Kind::kStruct && kind_ != Kind::kMap &&
      kind_ != Kind::kUnion && kind_ != Kind::kRunEnd) {
    BRIDGE_RETURN_NOT_OK(expect_children(0));
  }
  return OkStatus();
}

bool Column::IsNumeric() const {
  if (dictionary_ != nullptr) return dictionary_->IsNumeric();
  if (kind_ == Kind::kRunEnd) return children_[1]->IsNumeric();
  return (kind_ >= Kind::kInt8 && kind_ <= Kind::kDecimal) || kind_ == Kind::kInt128 ||
         kind_ == Kind::kUInt128;
}

bool Column::IsStruct() const { return kind_ == Kind::kStruct && dictionary_ == nullptr; }

bool Column::IsText() const {
  if (dictionary_ != nullptr) return dictionary_->IsText();
  return kind_ == Kind::kString;
}

// ---------------------------------------------------------------------------------------
// Binding and validation

Status Column::Bind(const ArrowArray& array) {
  length_ = 0;  // unbound until everything is checked
  if (array.release == nullptr) return Error("the array was released");
  if (array.length < 0 || array.offset < 0 ||
      array.length > std::numeric_limits<int64_t>::max() - array.offset) {
    return Error("bad length ", array.length, " or offset ", array.offset);
  }
  if (array.n_children != static_cast<int64_t>(children_.size())) {
    return Error("array has ", array.n_children, " children, the schema ", children_.size());
  }
  if (array.n_children > 0 && array.children == nullptr) return Error("children are null");
  for (size_t k = 0; k < children_.size(); ++k) {
    if (array.children[k] == nullptr) return Error("child ", k, " is null");
    BRIDGE_RETURN_NOT_OK(children_[k]->Bind(*array.children[k]));
  }
  if (dictionary_ != nullptr) {
    if (array.dictionary == nullptr) return Error("dictionary-encoded array has no dictionary");
    BRIDGE_RETURN_NOT_OK(dictionary_->Bind(*array.dictionary));
  }
  offset_ = array.offset;
  BRIDGE_RETURN_NOT_OK(BindBuffers(array));
  length_ = array.length;
  Status status = CheckValues();
  if (!status.ok()) length_ = 0;
  return status;
}

Status Column::CheckValues() const {
  if (length_ == 0) return OkStatus();
  if (dictionary_ != nullptr) return CheckIndices();
  switch (kind_) {
    case Kind::kString:
    case Kind::kBinary:
      if (layout_ == Layout::kView) return CheckViews();
      if (layout_ != Layout::kFixed) return CheckStringOffsets();
      return OkStatus();
    case Kind::kList:
    case Kind::kMap:
      return CheckListOffsets();
    case Kind::kStruct: {
      const int64_t end = offset_ + length_;
      for (const auto& child : children_) {
        if (child->length_ < end) {
          return Error("child '", child->name_, "' has ", child->length_, " slots, needs ", end);
        }
      }
      return OkStatus();
    }
    case Kind::kUnion:
      return CheckUnion();
    case Kind::kRunEnd:
      return CheckRunEnds();
    default:
      return OkStatus();
  }
}

Status Column::BindBuffers(const ArrowArray& array) {
  int64_t expected = 2;
  switch (kind_) {
    case Kind::kNull:
    case Kind::kRunEnd:
      expected = 0;
      break;
    case Kind::kStruct:
      expected = 1;
      break;
    case Kind::kUnion:
      expected = dense_union_ ? 2 : 1;
      break;
    case Kind::kList:
      expected = layout_ == Layout::kFixed                                          ? 1
                 : layout_ == Layout::kListView32 || layout_ == Layout::kListView64 ? 3
                                                                                    : 2;
      break;
    case Kind::kString:
    case Kind::kBinary:
      if (layout_ == Layout::kOffsets32 || layout_ == Layout::kOffsets64) expected = 3;
      if (layout_ == Layout::kView) expected = std::max<int64_t>(array.n_buffers, 3);
      break;
    default:
      break;
  }
  if (dictionary_ != nullptr) expected = 2;
  if (array.n_buffers != expected) {
    return Error("array has ", array.n_buffers, " buffers, ", ipc::TypeName(type_), " has ",
                 expected);
  }
  if (expected > 0 && array.buffers == nullptr) return Error("buffer list is null");
  n_buffers_ = array.n_buffers;
  auto buffer = [&](int64_t k) { return static_cast<const uint8_t*>(array.buffers[k]); };

  validity_ = nullptr;
  values_ = nullptr;
  data_ = nullptr;
  variadic_ = nullptr;
  variadic_sizes_ = nullptr;
  variadic_count_ = 0;
  const bool has_validity = kind_ != Kind::kNull && kind_ != Kind::kUnion && kind_ != Kind::kRunEnd;
  if (has_validity) {
    validity_ = buffer(0);
    if (validity_ == nullptr && array.null_count > 0) {
      return Error("null count ", array.null_count, " but no validity bitmap");
    }
  }
  if (array.length == 0) return OkStatus();  // nothing will be read
  auto required = [&](int64_t k, const uint8_t** dest) -> Status {
    *dest = buffer(k);
    if (*dest == nullptr) return Error("buffer ", k, " is null");
    return OkStatus();
  };
  if (dictionary_ != nullptr) return required(1, &values_);
  switch (kind_) {
    case Kind::kNull:
    case Kind::kStruct:
    case Kind::kRunEnd:
      return OkStatus();
    case Kind::kUnion:
      BRIDGE_RETURN_NOT_OK(required(0, &values_));
      if (dense_union_) BRIDGE_RETURN_NOT_OK(required(1, &data_));
      return OkStatus();
    case Kind::kList:
    case Kind::kMap:
      if (layout_ == Layout::kFixed) return OkStatus();
      BRIDGE_RETURN_NOT_OK(required(1, &values_));
      if (layout_ == Layout::kListView32 || layout_ == Layout::kListView64) {
        BRIDGE_RETURN_NOT_OK(required(2, &data_));
      }
      return OkStatus();
    case Kind::kString:
    case Kind::kBinary:
      BRIDGE_RETURN_NOT_OK(required(1, &values_));
      if (layout_ == Layout::kOffsets32 || layout_ == Layout::kOffsets64) {
        data_ = buffer(2);  // may be null when every value is empty (checked later)
      } else if (layout_ == Layout::kView) {
        variadic_count_ = array.n_buffers - 3;
        variadic_ = reinterpret_cast<const uint8_t* const*>(array.buffers + 2);
        variadic_sizes_ = static_cast<const int64_t*>(array.buffers[array.n_buffers - 1]);
        if (variadic_count_ > 0 && variadic_sizes_ == nullptr) {
          return Error("variadic buffer sizes are null");
        }
      }
      return OkStatus();
    default:
      return required(1, &values_);
  }
}

Status Column::CheckIndices() const {
  const int64_t size = dictionary_->length_;
  for (int64_t p = offset_; p < offset_ + length_; ++p) {
    if (!IsValidAt(p)) continue;
    const int64_t index = IntegerAt(p);  // uint64 above INT64_MAX turns negative
    if (index < 0 || index >= size) {
      return Error("dictionary index ", index, " at slot ", p - offset_, " is outside the ", size,
                   " dictionary values");
    }
  }
  return OkStatus();
}

Status Column::CheckStringOffsets() const {
  const int64_t first = offset_;
  const int64_t last = offset_ + length_;
  auto check = [&](auto offsets_tag) -> Status {
    using OffsetType = decltype(offsets_tag);
    int64_t previous = Load<OffsetType>(values_, first);
    if (previous < 0) return Error("offset ", previous, " at slot 0 is negative");
    for (int64_t p = first + 1; p <= last; ++p) {
      const int64_t current = Load<OffsetType>(values_, p);
      if (current < previous) {
        return Error("offset ", current, " at slot ", p - first, " < previous offset ", previous);
      }
      previous = current;
    }
    if (previous > Load<OffsetType>(values_, first) && data_ == nullptr) {
      return Error("data buffer is null");
    }
    return OkStatus();
  };
  return layout_ == Layout::kOffsets32 ? check(int32_t{}) : check(int64_t{});
}

Status Column::CheckViews() const {
  for (int64_t p = offset_; p < offset_ + length_; ++p) {
    if (!IsValidAt(p)) continue;
    const uint8_t* view = values_ + 16 * p;
    const int32_t size = Load<int32_t>(view, 0);
    if (size < 0) return Error("view at slot ", p - offset_, " has negative length ", size);
    if (size <= 12) continue;
    const int32_t buffer = Load<int32_t>(view + 8, 0);
    const int32_t offset = Load<int32_t>(view + 12, 0);
    if (buffer < 0 || buffer >= variadic_count_) {
      return Error("view at slot ", p - offset_, " refers to data buffer ", buffer, " of ",
                   variadic_count_);
    }
    if (variadic_[buffer] == nullptr) return Error("data buffer ", buffer, " is null");
    if (offset < 0 || int64_t{offset} + size > variadic_sizes_[buffer]) {
      return Error("view at slot ", p - offset_, " (offset ", offset, ", length ", size,
                   ") is outside data buffer ", buffer, " of ", variadic_sizes_[buffer], " bytes");
    }
  }
  return OkStatus();
}

Status Column::CheckListOffsets() const {
  const Column& child = *children_[0];
  const int64_t first = offset_;
  const int64_t last = offset_ + length_;
  switch (layout_) {
    case Layout::kFixed: {
      const int64_t size = type_.fixed_size;
      if (size > 0 && last > child.length_ / size) {
        return Error("child has ", child.length_, " slots, needs ", last, " lists of ", size);
      }
      return OkStatus();
    }
    case Layout::kOffsets32:
    case Layout::kOffsets64: {
      int64_t previous = 0;
      for (int64_t p = first; p <= last; ++p) {
        const int64_t current =
            layout_ == Layout::kOffsets32 ? Load<int32_t>(values_, p) : Load<int64_t>(values_, p);
        if (current < previous || current > child.length_) {
          return Error("offset ", current, " at slot ", p - first,
                       p == first ? " is negative or" : " < previous offset or",
                       " outside the child's ", child.length_, " slots");
        }
        previous = current;
      }
      return OkStatus();
    }
    case Layout::kListView32:
    case Layout::kListView64:
      for (int64_t p = first; p < last; ++p) {
        if (!IsValidAt(p)) continue;
        const bool wide = layout_ == Layout::kListView64;
        const int64_t offset = wide ? Load<int64_t>(values_, p) : Load<int32_t>(values_, p);
        const int64_t size = wide ? Load<int64_t>(data_, p) : Load<int32_t>(data_, p);
        if (offset < 0 || size < 0 || size > child.length_ || offset > child.length_ - size) {
          return Error("list view at slot ", p - first, " (offset ", offset, ", size ", size,
                       ") is outside the child's ", child.length_, " slots");
        }
      }
      return OkStatus();
    default:
      return OkStatus();
  }
}

Status Column::CheckUnion() const {
  const int64_t end = offset_ + length_;
  if (!dense_union_) {
    for (const auto& child : children_) {
      if (child->length_ < end) {
        return Error("member '", child->name_, "' has ", child->length_, " slots, needs ", end);
      }
    }
  }
  for (int64_t p = offset_; p < end; ++p) {
    const int8_t code = static_cast<int8_t>(values_[p]);
    const int child = code < 0 ? -1 : child_of_type_code_[code];
    if (child < 0) return Error("unknown type id ", int{code}, " at slot ", p - offset_);
    if (dense_union_) {
      const int32_t child_offset = Load<int32_t>(data_, p);
      if (child_offset < 0 || child_offset >= children_[child]->length_) {
        return Error("offset ", child_offset, " at slot ", p - offset_, " is outside member '",
                     children_[child]->name_, "' of ", children_[child]->length_, " slots");
      }
    }
  }
  return OkStatus();
}

Status Column::CheckRunEnds() const {
  const Column& ends = *children_[0];
  const Column& values = *children_[1];
  if (ends.length_ == 0) return Error("no run ends for ", length_, " slots");
  if (values.length_ < ends.length_) {
    return Error(ends.length_, " runs but ", values.length_, " values");
  }
  int64_t previous = 0;
  for (int64_t k = 0; k < ends.length_; ++k) {
    const int64_t end = ends.IntegerAt(ends.offset_ + k);
    if (end <= previous) return Error("run end ", end, " at run ", k, " does not increase");
    previous = end;
  }
  if (previous < offset_ + length_) {
    return Error("runs cover ", previous, " slots, the array needs ", offset_ + length_);
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Reading

int64_t Column::IntegerAt(int64_t p) const {
  switch (kind_) {
    case Kind::kInt8:
      return Load<int8_t>(values_, p);
    case Kind::kInt16:
      return Load<int16_t>(values_, p);
    case Kind::kInt32:
      return Load<int32_t>(values_, p);
    case Kind::kInt64:
      return Load<int64_t>(values_, p);
    case Kind::kUInt8:
      return Load<uint8_t>(values_, p);
    case Kind::kUInt16:
      return Load<uint16_t>(values_, p);
    case Kind::kUInt32:
      return Load<uint32_t>(values_, p);
    case Kind::kUInt64:
      return static_cast<int64_t>(Load<uint64_t>(values_, p));
    default:
      return 0;
  }
}

std::string_view Column::BytesAt(int64_t i) const {
  const int64_t p = offset_ + i;
  const auto* data = reinterpret_cast<const char*>(data_);
  switch (layout_) {
    case Layout::kOffsets32: {
      const int32_t begin = Load<int32_t>(values_, p);
      return {data + begin, static_cast<size_t>(Load<int32_t>(values_, p + 1) - begin)};
    }
    case Layout::kOffsets64: {
      const int64_t begin = Load<int64_t>(values_, p);
      return {data + begin, static_cast<size_t>(Load<int64_t>(values_, p + 1) - begin)};
    }
    case Layout::kView: {
      const auto* view = reinterpret_cast<const char*>(values_ + 16 * p);
      const int32_t size = Load<int32_t>(values_ + 16 * p, 0);
      if (size <= 12) return {view + 4, static_cast<size_t>(size)};
      const int32_t buffer = Load<int32_t>(values_ + 16 * p + 8, 0);
      const int32_t offset = Load<int32_t>(values_ + 16 * p + 12, 0);
      return {reinterpret_cast<const char*>(variadic_[buffer]) + offset, static_cast<size_t>(size)};
    }
    case Layout::kFixed:
      return {reinterpret_cast<const char*>(values_) + p * byte_width_,
              static_cast<size_t>(byte_width_)};
    default:
      return {};
  }
}

std::pair<int64_t, int64_t> Column::ListRange(int64_t i) const {
  const int64_t p = offset_ + i;
  switch (layout_) {
    case Layout::kOffsets32:
      return {Load<int32_t>(values_, p), Load<int32_t>(values_, p + 1)};
    case Layout::kOffsets64:
      return {Load<int64_t>(values_, p), Load<int64_t>(values_, p + 1)};
    case Layout::kListView32: {
      const int64_t begin = Load<int32_t>(values_, p);
      return {begin, begin + Load<int32_t>(data_, p)};
    }
    case Layout::kListView64: {
      const int64_t begin = Load<int64_t>(values_, p);
      return {begin, begin + Load<int64_t>(data_, p)};
    }
    case Layout::kFixed:
      return {p * type_.fixed_size, (p + 1) * type_.fixed_size};
    default:
      return {0, 0};
  }
}

std::pair<const Column*, int64_t> Column::UnionMember(int64_t i) const {
  const int64_t p = offset_ + i;
  const Column* child = children_[child_of_type_code_[values_[p]]].get();
  return {child, dense_union_ ? Load<int32_t>(data_, p) : p};
}

int64_t Column::RunIndex(int64_t i) const {
  const Column& ends = *children_[0];
  const int64_t logical = offset_ + i;
  // The first run whose end is past `logical`.
  int64_t lo = 0;
  int64_t hi = ends.length_ - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (ends.IntegerAt(ends.offset_ + mid) > logical) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

bool Column::IsNull(int64_t i) const {
  switch (kind_) {
    case Kind::kNull:
      return true;
    case Kind::kUnion: {
      auto [child, j] = UnionMember(i);
      return child->IsNull(j);
    }
    case Kind::kRunEnd:
      return children_[1]->IsNull(RunIndex(i));
    default:
      if (!IsValidAt(offset_ + i)) return true;
      if (dictionary_ != nullptr) return dictionary_->IsNull(IndexAt(i));
      return false;
  }
}

void Column::AppendJson(int64_t i, std::string* out) const {
  switch (kind_) {
    case Kind::kNull:
      out->append("null");
      return;
    case Kind::kUnion: {
      auto [child, j] = UnionMember(i);
      child->AppendJson(j, out);
      return;
    }
    case Kind::kRunEnd:
      children_[1]->AppendJson(RunIndex(i), out);
      return;
    default:
      break;
  }
  if (!IsValidAt(offset_ + i)) {
    out->append("null");
  } else if (dictionary_ != nullptr) {
    dictionary_->AppendJson(IndexAt(i), out);
  } else {
    AppendValue(i, true, 'T', out);
  }
}

void Column::AppendPlain(int64_t i, const PlainStyle& style, std::string* out) const {
  switch (kind_) {
    case Kind::kNull:
      return;
    case Kind::kUnion: {
      auto [child, j] = UnionMember(i);
      child->AppendPlain(j, style, out);
      return;
    }
    case Kind::kRunEnd:
      children_[1]->AppendPlain(RunIndex(i), style, out);
      return;
    default:
      break;
  }
  if (!IsValidAt(offset_ + i)) return;
  if (dictionary_ != nullptr) {
    dictionary_->AppendPlain(IndexAt(i), style, out);
  } else {
    AppendValue(i, false, style.datetime_separator, out);
  }
}

void Column::AppendValue(int64_t i, bool json, char separator, std::string* out) const {
  const int64_t p = offset_ + i;
  // Floats: JSON has no NaN or infinities.
  auto append_float = [&](double value, auto append_finite) {
    if (std::isfinite(value)) {
      append_finite();
    } else if (json) {
      out->append("null");
    } else {
      out->append(std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf");
    }
  };
  // Text that JSON quotes (dates, times, intervals, UUIDs): all ASCII without escapes.
  auto quoted = [&](auto append_text) {
    if (json) out->push_back('"');
    append_text();
    if (json) out->push_back('"');
  };
  switch (kind_) {
    case Kind::kBool:
      out->append((values_[p >> 3] >> (p & 7)) & 1 ? "true" : "false");
      return;
    case Kind::kInt8:
    case Kind::kInt16:
    case Kind::kInt32:
    case Kind::kInt64:
    case Kind::kUInt8:
    case Kind::kUInt16:
    case Kind::kUInt32:
      AppendInt(IntegerAt(p), out);
      return;
    case Kind::kUInt64:
      AppendUInt(Load<uint64_t>(values_, p), out);
      return;
    case Kind::kHalf: {
      const uint16_t bits = Load<uint16_t>(values_, p);
      append_float(HalfToDouble(bits), [&] { AppendHalf(bits, out); });
      return;
    }
    case Kind::kFloat: {
      const float value = Load<float>(values_, p);
      append_float(value, [&] { AppendFloat(value, out); });
      return;
    }
    case Kind::kDouble: {
      const double value = Load<double>(values_, p);
      append_float(value, [&] { AppendDouble(value, out); });
      return;
    }
    case Kind::kDecimal:
      AppendDecimal(values_ + p * byte_width_, type_.bit_width, type_.scale, out);
      return;
    case Kind::kString:
      if (json) {
        AppendJsonString(BytesAt(i), out);
      } else {
        AppendUtf8(BytesAt(i), out);
      }
      return;
    case Kind::kBinary:
      if (json) {
        out->push_back('"');
        AppendBase64(BytesAt(i), out);
        out->push_back('"');
      } else {
        AppendBlobText(BytesAt(i), out);
      }
      return;
    case Kind::kUuid:
      quoted([&] { AppendUuid(values_ + 16 * p, out); });
      return;
    case Kind::kInt128:
    case Kind::kUInt128: {
      uint64_t halves[2];
      std::memcpy(halves, values_ + 16 * p, 16);
      const unsigned __int128 value = (static_cast<unsigned __int128>(halves[1]) << 64) | halves[0];
      if (kind_ == Kind::kInt128) {
        AppendInt128(static_cast<__int128>(value), out);
      } else {
        AppendUInt128(value, out);
      }
      return;
    }
    case Kind::kDate32:
      quoted([&] {
        // DuckDB's infinite dates.
        const int32_t days = Load<int32_t>(values_, p);
        if (days == std::numeric_limits<int32_t>::max()) {
          out->append("infinity");
        } else if (days == -std::numeric_limits<int32_t>::max()) {
          out->append("-infinity");
        } else {
          AppendDate(days, out);
        }
      });
      return;
    case Kind::kDate64:
      quoted([&] {
        const int64_t ms = Load<int64_t>(values_, p);
        AppendDate(ms / 86400000 - (ms % 86400000 < 0 ? 1 : 0), out);
      });
      return;
    case Kind::kTime32:
      quoted([&] { AppendClock(Load<int32_t>(values_, p), type_.unit, out); });
      return;
    case Kind::kTime64:
    case Kind::kDuration:
      quoted([&] { AppendClock(Load<int64_t>(values_, p), type_.unit, out); });
      return;
    case Kind::kTimestamp:
      quoted([&] {
        AppendTimestamp(Load<int64_t>(values_, p), type_.unit, separator, !type_.timezone.empty(),
                        out);
      });
      return;
    case Kind::kIntervalMonths:
      quoted([&] { AppendInterval(Load<int32_t>(values_, p), 0, 0, out); });
      return;
    case Kind::kIntervalDayTime:
      quoted([&] {
        const uint8_t* v = values_ + 8 * p;
        AppendInterval(0, Load<int32_t>(v, 0), int64_t{Load<int32_t>(v, 1)} * 1000000, out);
      });
      return;
    case Kind::kIntervalMonthDayNano:
      quoted([&] {
        const uint8_t* v = values_ + 16 * p;
        AppendInterval(Load<int32_t>(v, 0), Load<int32_t>(v, 1), Load<int64_t>(v + 8, 0), out);
      });
      return;
    case Kind::kList:
    case Kind::kStruct:
    case Kind::kMap:
      AppendNested(i, out);
      return;
    case Kind::kNull:
    case Kind::kUnion:
    case Kind::kRunEnd:
      return;  // handled by the callers
  }
}

void Column::AppendNested(int64_t i, std::string* out) const {
  switch (kind_) {
    case Kind::kList: {
      const Column& child = *children_[0];
      auto [begin, end] = ListRange(i);
      out->push_back('[');
      for (int64_t j = begin; j < end; ++j) {
        if (j != begin) out->push_back(',');
        child.AppendJson(j, out);
      }
      out->push_back(']');
      return;
    }
    case Kind::kStruct: {
      const int64_t p = offset_ + i;
      out->push_back('{');
      for (size_t k = 0; k < children_.size(); ++k) {
        if (k != 0) out->push_back(',');
        out->append(children_[k]->json_key_);
        children_[k]->AppendJson(p, out);
      }
      out->push_back('}');
      return;
    }
    case Kind::kMap: {
      const Column& entries = *children_[0];
      const Column& key = *entries.children_[0];
      const Column& value = *entries.children_[1];
      auto [begin, end] = ListRange(i);
      out->push_back(string_keys_ ? '{' : '[');
      for (int64_t j = begin; j < end; ++j) {
        if (j != begin) out->push_back(',');
        const int64_t e = entries.offset_ + j;
        if (string_keys_) {
          if (key.IsNull(e)) {
            out->append("\"\"");  // Arrow map keys are never null; keep the JSON valid anyway
          } else {
            key.AppendJson(e, out);
          }
          out->push_back(':');
          value.AppendJson(e, out);
        } else {
          out->append("{\"key\":");
          key.AppendJson(e, out);
          out->append(",\"value\":");
          value.AppendJson(e, out);
          out->push_back('}');
        }
      }
      out->push_back(string_keys_ ? '}' : ']');
      return;
    }
    default:
      return;
  }
}

}  // namespace bridge::format::internal
