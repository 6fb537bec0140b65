#include "bridge/arrow/test_arrays.h"

#include <memory>
#include <utility>

#include "bridge/common/testing.h"

namespace bridge::ipc::test_arrays {

int released_test_arrays = 0;

std::vector<uint8_t> Bits(std::string_view pattern) {
  std::vector<uint8_t> bytes((pattern.size() + 7) / 8 + 1, 0);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '1') bytes[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
  return bytes;
}

std::vector<uint8_t> Chars(std::string_view text) { return {text.begin(), text.end()}; }

std::string MetadataBytes(const KeyValueMetadata& pairs) {
  std::string out;
  auto put = [&](int32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(static_cast<int32_t>(pairs.size()));
  for (const auto& [k, v] : pairs) {
    put(static_cast<int32_t>(k.size()));
    out += k;
    put(static_cast<int32_t>(v.size()));
    out += v;
  }
  return out;
}

namespace {

struct TestArrayData {
  std::vector<std::vector<uint8_t>> storage;
  std::vector<const void*> buffers;
  std::vector<OwnedArray> owned_children;
  std::vector<ArrowArray*> children;
  OwnedArray dictionary;
};

void ReleaseTestArray(ArrowArray* array) {
  delete static_cast<TestArrayData*>(array->private_data);
  array->release = nullptr;
  ++released_test_arrays;
}

struct ViewData {
  std::vector<OwnedArray> children;
  std::vector<ArrowArray*> child_pointers;
};

void ReleaseView(ArrowArray* array) {
  delete static_cast<ViewData*>(array->private_data);
  array->release = nullptr;
  ++released_test_arrays;
}

struct TestSchemaData {
  std::string format;
  std::string name;
  std::string metadata;
  std::vector<OwnedSchema> owned_children;
  std::vector<ArrowSchema*> children;
  OwnedSchema dictionary;
};

void ReleaseTestSchema(ArrowSchema* schema) {
  delete static_cast<TestSchemaData*>(schema->private_data);
  schema->release = nullptr;
}

// Returns a utf8 array of `values` (nullopt = null) with int32 offsets, or int64 offsets
// when `large`, whose rows start at `offset`.
OwnedArray VariableLength(std::vector<std::optional<std::string>> values, bool large,
                          int64_t offset) {
  std::string pattern;
  std::string chars;
  std::vector<uint8_t> offsets;
  auto put = [&](int64_t o) {
    auto b = large ? Bytes<int64_t>({o}) : Bytes<int32_t>({static_cast<int32_t>(o)});
    offsets.insert(offsets.end(), b.begin(), b.end());
  };
  put(0);
  for (const auto& v : values) {
    pattern += v.has_value() ? '1' : '0';
    if (v.has_value()) chars += *v;
    put(static_cast<int64_t>(chars.size()));
  }
  return MakeArray(static_cast<int64_t>(values.size()) - offset,
                   {Bits(pattern), std::move(offsets), Chars(chars)}, {}, {}, offset);
}

}  // namespace

OwnedArray MakeArray(int64_t length, std::vector<MaybeBuffer> buffers,
                     std::vector<OwnedArray> children, OwnedArray dictionary, int64_t offset,
                     int64_t null_count) {
  auto data = std::make_unique<TestArrayData>();
  data->storage.reserve(buffers.size());
  for (auto& b : buffers) {
    if (b.has_value()) {
      data->storage.push_back(std::move(*b));
      data->buffers.push_back(data->storage.back().data());
    } else {
      data->buffers.push_back(nullptr);
    }
  }
  data->owned_children = std::move(children);
  for (auto& c : data->owned_children) data->children.push_back(c.get());
  data->dictionary = std::move(dictionary);
  if (null_count == kCountNulls) {
    null_count = 0;
    if (!data->buffers.empty() && data->buffers[0] != nullptr) {
      for (int64_t i = offset; i < offset + length; ++i) null_count += !BitAt(data->buffers[0], i);
    }
  }
  ArrowArray raw{};
  raw.length = length;
  raw.null_count = null_count;
  raw.offset = offset;
  raw.n_buffers = static_cast<int64_t>(data->buffers.size());
  raw.buffers = data->buffers.data();
  raw.n_children = static_cast<int64_t>(data->children.size());
  raw.children = data->children.data();
  raw.dictionary = data->dictionary.valid() ? data->dictionary.get() : nullptr;
  raw.release = &ReleaseTestArray;
  raw.private_data = data.release();
  return OwnedArray(&raw);
}

void FreeTestArrayData(void* private_data) { delete static_cast<TestArrayData*>(private_data); }

OwnedArray View(const ArrowArray& array, int64_t start, int64_t length, bool push_down) {
  auto data = std::make_unique<ViewData>();
  ArrowArray raw = array;
  raw.offset = array.offset + start;
  raw.length = length;
  raw.null_count = -1;
  if (push_down) {
    raw.offset = 0;
    for (int64_t j = 0; j < array.n_children; ++j) {
      data->children.push_back(View(*array.children[j], array.offset + start, length));
    }
    for (auto& c : data->children) data->child_pointers.push_back(c.get());
    raw.children = data->child_pointers.data();
  }
  raw.release = &ReleaseView;
  raw.private_data = data.release();
  return OwnedArray(&raw);
}

OwnedArray Batch(int64_t length, std::vector<OwnedArray> columns, int64_t offset) {
  return MakeArray(length, {std::nullopt}, std::move(columns), {}, offset, 0);
}

OwnedArray Int32s(std::initializer_list<int32_t> values, std::string_view validity,
                  int64_t offset) {
  const int64_t length = static_cast<int64_t>(values.size()) - offset;
  return MakeArray(length, {validity.empty() ? MaybeBuffer() : Bits(validity), Bytes(values)}, {},
                   {}, offset);
}

OwnedArray Utf8(std::vector<std::optional<std::string>> values, int64_t offset) {
  return VariableLength(std::move(values), /*large=*/false, offset);
}

OwnedArray LargeUtf8(std::vector<std::optional<std::string>> values) {
  return VariableLength(std::move(values), /*large=*/true, 0);
}

OwnedSchema MakeSchema(std::string format, std::string name, std::vector<OwnedSchema> children,
                       OwnedSchema dictionary, int64_t flags, const KeyValueMetadata& metadata) {
  auto data = std::make_unique<TestSchemaData>();
  data->format = std::move(format);
  data->name = std::move(name);
  if (!metadata.empty()) data->metadata = MetadataBytes(metadata);
  data->owned_children = std::move(children);
  for (auto& c : data->owned_children) data->children.push_back(c.get());
  data->dictionary = std::move(dictionary);
  ArrowSchema raw{};
  raw.format = data->format.c_str();
  raw.name = data->name.c_str();
  raw.metadata = data->metadata.empty() ? nullptr : data->metadata.data();
  raw.flags = flags;
  raw.n_children = static_cast<int64_t>(data->children.size());
  raw.children = data->children.data();
  raw.dictionary = data->dictionary.valid() ? data->dictionary.get() : nullptr;
  raw.release = &ReleaseTestSchema;
  raw.private_data = data.release();
  return OwnedSchema(&raw);
}

OwnedSchema Columns(std::vector<OwnedSchema> fields, const KeyValueMetadata& metadata) {
  return MakeSchema("+s", "", std::move(fields), {}, 0, metadata);
}

DataType TypeOf(const ArrowSchema& schema) {
  auto type = ParseFormat(schema.format);
  EXPECT_TRUE(type.ok()) << type.status();
  return type.ok() ? *type : DataType{};
}

bool HasValidityBitmap(const ArrowSchema& schema, const DataType& type) {
  if (schema.dictionary != nullptr) return true;
  return type.id != TypeId::kNull && type.id != TypeId::kDenseUnion &&
         type.id != TypeId::kSparseUnion && type.id != TypeId::kRunEndEncoded;
}

int64_t IntegerAt(const DataType& type, const void* data, int64_t i) {
  switch (type.id) {
    case TypeId::kInt8:
      return LoadAt<int8_t>(data, i);
    case TypeId::kUInt8:
      return LoadAt<uint8_t>(data, i);
    case TypeId::kInt16:
      return LoadAt<int16_t>(data, i);
    case TypeId::kUInt16:
      return LoadAt<uint16_t>(data, i);
    case TypeId::kInt32:
      return LoadAt<int32_t>(data, i);
    case TypeId::kUInt32:
      return LoadAt<uint32_t>(data, i);
    case TypeId::kInt64:
      return LoadAt<int64_t>(data, i);
    case TypeId::kUInt64:
      return static_cast<int64_t>(LoadAt<uint64_t>(data, i));
    default:
      ADD_FAILURE() << "not an integer: " << TypeName(type);
      return 0;
  }
}

std::string Hex(const void* data, int64_t size) {
  std::string out = "0x";
  for (int64_t i = 0; i < size; ++i) {
    out += fmt::format("{:02x}", static_cast<const uint8_t*>(data)[i]);
  }
  return out;
}

std::string ValueAt(const ArrowSchema& schema, const ArrowArray& array, int64_t row,
                    std::string_view dictionary_prefix) {
  const DataType t = TypeOf(schema);
  const int64_t p = array.offset + row;
  if (t.id == TypeId::kNull) return "null";
  if (HasValidityBitmap(schema, t) && array.null_count != 0 && array.buffers[0] != nullptr &&
      !BitAt(array.buffers[0], p)) {
    return "null";
  }
  auto child = [&](int64_t c, int64_t r) {
    return ValueAt(*schema.children[c], *array.children[c], r, dictionary_prefix);
  };
  if (schema.dictionary != nullptr) {
    return std::string(dictionary_prefix) + ValueAt(*schema.dictionary, *array.dictionary,
                                                    IntegerAt(t, array.buffers[1], p),
                                                    dictionary_prefix);
  }
  auto list = [&](int64_t begin, int64_t end) {
    std::string out = "[";
    for (int64_t j = begin; j < end; ++j) out += (j > begin ? ", " : "") + child(0, j);
    return out + "]";
  };
  switch (t.id) {
    case TypeId::kBool:
      return BitAt(array.buffers[1], p) ? "true" : "false";
    case TypeId::kInt8:
    case TypeId::kUInt8:
    case TypeId::kInt16:
    case TypeId::kUInt16:
    case TypeId::kInt32:
    case TypeId::kUInt32:
    case TypeId::kInt64:
      return std::to_string(IntegerAt(t, array.buffers[1], p));
    case TypeId::kUInt64:
      return std::to_string(LoadAt<uint64_t>(array.buffers[1], p));
    case TypeId::kFloat32:
      return fmt::format("{}", LoadAt<float>(array.buffers[1], p));
    case TypeId::kFloat64:
      return fmt::format("{}", LoadAt<double>(array.buffers[1], p));
    case TypeId::kBinary:
    case TypeId::kUtf8: {
      const int32_t b = LoadAt<int32_t>(array.buffers[1], p);
      const int32_t e = LoadAt<int32_t>(array.buffers[1], p + 1);
      return "'" + std::string(static_cast<const char*>(array.buffers[2]) + b, e - b) + "'";
    }
    case TypeId::kLargeBinary:
    case TypeId::kLargeUtf8: {
      const int64_t b = LoadAt<int64_t>(array.buffers[1], p);
      const int64_t e = LoadAt<int64_t>(array.buffers[1], p + 1);
      return "'" + std::string(static_cast<const char*>(array.buffers[2]) + b, e - b) + "'";
    }
    case TypeId::kBinaryView:
    case TypeId::kUtf8View: {
      const auto* view = static_cast<const uint8_t*>(array.buffers[1]) + p * 16;
      const int32_t length = LoadAt<int32_t>(view, 0);
      const char* data =
          length <= 12 ? reinterpret_cast<const char*>(view + 4)
                       : static_cast<const char*>(array.buffers[2 + LoadAt<int32_t>(view, 2)]) +
                             LoadAt<int32_t>(view, 3);
      return "'" + std::string(data, length) + "'";
    }
    case TypeId::kList:
    case TypeId::kMap:
      return list(LoadAt<int32_t>(array.buffers[1], p), LoadAt<int32_t>(array.buffers[1], p + 1));
    case TypeId::kLargeList:
      return list(LoadAt<int64_t>(array.buffers[1], p), LoadAt<int64_t>(array.buffers[1], p + 1));
    case TypeId::kListView: {
      const int32_t b = LoadAt<int32_t>(array.buffers[1], p);
      return list(b, b + LoadAt<int32_t>(array.buffers[2], p));
    }
    case TypeId::kLargeListView: {
      const int64_t b = LoadAt<int64_t>(array.buffers[1], p);
      return list(b, b + LoadAt<int64_t>(array.buffers[2], p));
    }
    case TypeId::kFixedSizeList:
      return list(p * t.fixed_size, (p + 1) * t.fixed_size);
    case TypeId::kStruct: {
      std::string out = "{";
      for (int64_t c = 0; c < schema.n_children; ++c) {
        out += (c > 0 ? ", " : "") + std::string(schema.children[c]->name) + ": " + child(c, p);
      }
      return out + "}";
    }
    case TypeId::kSparseUnion:
    case TypeId::kDenseUnion: {
      const int8_t code = LoadAt<int8_t>(array.buffers[0], p);
      size_t c = 0;
      while (c < t.type_codes.size() && t.type_codes[c] != code) ++c;
      if (c == t.type_codes.size()) return "<bad type id>";
      const int64_t at = t.id == TypeId::kSparseUnion ? p : LoadAt<int32_t>(array.buffers[1], p);
      return fmt::format("<{}: {}>", code, child(static_cast<int64_t>(c), at));
    }
    case TypeId::kRunEndEncoded: {
      const ArrowArray& ends = *array.children[0];
      const DataType end_type = TypeOf(*schema.children[0]);
      int64_t r = 0;
      while (IntegerAt(end_type, ends.buffers[1], ends.offset + r) <= p) ++r;
      return child(1, r);
    }
    default: {
      const int64_t width = t.FixedBitWidth() / 8;
      return Hex(static_cast<const uint8_t*>(array.buffers[1]) + p * width, width);
    }
  }
}

std::vector<std::string> Rows(const ArrowSchema& schema, const ArrowArray& batch) {
  std::vector<std::string> rows;
  for (int64_t r = 0; r < batch.length; ++r) {
    std::string row;
    for (int64_t c = 0; c < batch.n_children; ++c) {
      row +=
          (c > 0 ? " | " : "") + ValueAt(*schema.children[c], *batch.children[c], batch.offset + r);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace bridge::ipc::test_arrays
