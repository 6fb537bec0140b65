#include "bridge/arrow/concatenate.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "bridge/arrow/data_type.h"

namespace bridge::ipc {
namespace {

constexpr int64_t kAlignment = 64;
constexpr int kMaxDepth = 64;
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
// No single buffer is allowed to be bigger than this (far more than any machine has).
constexpr int64_t kMaxBufferBytes = int64_t{1} << 48;

// ---------------------------------------------------------------------------------------
// The arrays Concatenate makes

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Allocation = std::unique_ptr<uint8_t, FreeDeleter>;

// The private_data of every array (root, child or dictionary) that Concatenate makes: owns
// the array's buffers, and its children and dictionary, which are complete arrays with their
// own release so that a consumer may move them out.
struct ArrayNode {
  std::vector<Allocation> allocations;
  std::vector<const void*> buffers;
  std::vector<ArrowArray> child_structs;  // sized once; `children` points into it
  std::vector<ArrowArray*> children;
  ArrowArray dictionary_struct{};  // release == nullptr when there is no dictionary

  ArrayNode() { buffers.reserve(4); }
  ~ArrayNode() {
    for (ArrowArray& child : child_structs) {
      if (child.release != nullptr) child.release(&child);
    }
    if (dictionary_struct.release != nullptr) dictionary_struct.release(&dictionary_struct);
  }
  ArrayNode(const ArrayNode&) = delete;
  ArrayNode& operator=(const ArrayNode&) = delete;
};

void ReleaseArrayNode(ArrowArray* array) {
  delete static_cast<ArrayNode*>(array->private_data);
  array->private_data = nullptr;
  array->release = nullptr;
}

// Allocates a buffer of `size` bytes, 64-byte aligned and zero-padded to a multiple of 64,
// owned by `node` and appended to its buffers. With `zeroed` the whole buffer is zero.
Result<uint8_t*> AddBuffer(ArrayNode& node, int64_t size, bool zeroed) {
  if (size < 0 || size > kMaxBufferBytes) {
    return ResourceExhausted("concatenate: a buffer of ", size, " bytes is too large");
  }
  const int64_t capacity = std::max(kAlignment, (size + kAlignment - 1) / kAlignment * kAlignment);
  auto* data = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, capacity));
  if (data == nullptr) {
    return ResourceExhausted("concatenate: cannot allocate ", capacity, " bytes");
  }
  node.allocations.emplace_back(data);
  if (zeroed) {
    std::memset(data, 0, capacity);
  } else {
    std::memset(data + size, 0, capacity - size);
  }
  node.buffers.push_back(data);
  return data;
}

// ---------------------------------------------------------------------------------------
// Reading input buffers (which need not be aligned) and bitmaps

template <typename T>
T Load(const void* base, int64_t index) {
  T value;
  std::memcpy(&value, static_cast<const uint8_t*>(base) + index * static_cast<int64_t>(sizeof(T)),
              sizeof(T));
  return value;
}

template <typename T>
void Store(void* base, int64_t index, T value) {
  std::memcpy(static_cast<uint8_t*>(base) + index * static_cast<int64_t>(sizeof(T)), &value,
              sizeof(T));
}

bool GetBit(const uint8_t* bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }
void SetBit(uint8_t* bits, int64_t i) { bits[i >> 3] |= static_cast<uint8_t>(1u << (i & 7)); }

// Copies `length` bits from `src` (from bit `src_offset`) to `dst` (from bit `dst_offset`).
// `dst` must be zero from bit `dst_offset` on; bits after the copied ones stay zero.
void CopyBits(const uint8_t* src, int64_t src_offset, uint8_t* dst, int64_t dst_offset,
              int64_t length) {
  if (length <= 0) return;
  while (length > 0 && (dst_offset & 7) != 0) {
    if (GetBit(src, src_offset)) SetBit(dst, dst_offset);
    ++src_offset, ++dst_offset, --length;
  }
  const int64_t bytes = length >> 3;
  if (bytes > 0) {
    const uint8_t* s = src + (src_offset >> 3);
    uint8_t* d = dst + (dst_offset >> 3);
    const int shift = static_cast<int>(src_offset & 7);
    if (shift == 0) {
      std::memcpy(d, s, bytes);
    } else {
      for (int64_t i = 0; i < bytes; ++i) {
        d[i] = static_cast<uint8_t>((s[i] >> shift) | (s[i + 1] << (8 - shift)));
      }
    }
    src_offset += bytes * 8, dst_offset += bytes * 8, length -= bytes * 8;
  }
  for (; length > 0; ++src_offset, ++dst_offset, --length) {
    if (GetBit(src, src_offset)) SetBit(dst, dst_offset);
  }
}

// Sets `length` bits of `dst` from bit `dst_offset`; `dst` must be zero from there on.
void SetBits(uint8_t* dst, int64_t dst_offset, int64_t length) {
  for (; length > 0 && (dst_offset & 7) != 0; ++dst_offset, --length) SetBit(dst, dst_offset);
  const int64_t bytes = length >> 3;
  if (bytes > 0) std::memset(dst + (dst_offset >> 3), 0xFF, bytes);
  dst_offset += bytes * 8, length -= bytes * 8;
  for (; length > 0; ++dst_offset, --length) SetBit(dst, dst_offset);
}

int64_t CountSetBits(const uint8_t* bits, int64_t bytes) {
  int64_t count = 0;
  int64_t i = 0;
  for (; i + 8 <= bytes; i += 8) count += std::popcount(Load<uint64_t>(bits + i, 0));
  for (; i < bytes; ++i) count += std::popcount(bits[i]);
  return count;
}

// ---------------------------------------------------------------------------------------
// Inputs

// Rows [start, start + length) of `array`, counted from array->offset, from the top-level
// input number `input`.
struct Slice {
  const ArrowArray* array;
  int64_t start;
  int64_t length;
  size_t input;

  // Index of the first row in the array's buffers.
  int64_t physical() const { return array->offset + start; }
};

// A column (or nested field) being concatenated: its schema, parsed type and dotted path.
struct Field {
  const ArrowSchema& schema;
  DataType type;
  std::string path;
  bool dictionary_encoded;
};

// "concatenate" or "concatenate: field 'a.b'" (the top-level array has an empty path).
std::string FieldContext(const std::string& path) {
  return path.empty() ? std::string("concatenate") : StrCat("concatenate: field '", path, "'");
}

std::string Where(const Slice& slice, const Field& field) {
  std::string where = StrCat("concatenate: input ", slice.input);
  if (!field.path.empty()) where += StrCat(", field '", field.path, "'");
  return where;
}

template <typename... Args>
Status Bad(const Slice& slice, const Field& field, const Args&... args) {
  return InvalidArgument(Where(slice, field), ": ", args...);
}

std::string ChildPath(const std::string& parent, const ArrowSchema& child, int64_t index) {
  std::string name =
      child.name != nullptr && child.name[0] != '\0' ? std::string(child.name) : StrCat("#", index);
  return parent.empty() ? name : StrCat(parent, ".", name);
}

bool HasValidity(const Field& field) {
  if (field.dictionary_encoded) return true;
  switch (field.type.id) {
    case TypeId::kNull:
    case TypeId::kDenseUnion:
    case TypeId::kSparseUnion:
    case TypeId::kRunEndEncoded:
      return false;
    default:
      return true;
  }
}

// Returns the validity bitmap of `slice`'s array (of a type that has one) if it may hold
// nulls, else nullptr.
const uint8_t* ValidityOf(const Slice& slice) {
  const ArrowArray& a = *slice.array;
  if (a.null_count == 0 || a.n_buffers < 1) return nullptr;
  return static_cast<const uint8_t*>(a.buffers[0]);
}

// Buffers (exactly, or at least for views) and children an array of `field`'s type has.
struct Layout {
  int64_t buffers;
  bool at_least;  // views: validity, views, variadic data buffers..., sizes
  int64_t children;
  int64_t element_bytes;  // bytes per row in the widest per-row buffer, for overflow checks
};

Layout LayoutOf(const Field& field) {
  const DataType& t = field.type;
  if (field.dictionary_encoded) return {2, false, 0, t.FixedBitWidth() / 8};
  switch (t.id) {
    case TypeId::kNull:
      return {0, false, 0, 0};
    case TypeId::kBinary:
    case TypeId::kUtf8:
      return {3, false, 0, 4};
    case TypeId::kList:
    case TypeId::kMap:
      return {2, false, 1, 4};
    case TypeId::kLargeBinary:
    case TypeId::kLargeUtf8:
      return {3, false, 0, 8};
    case TypeId::kLargeList:
      return {2, false, 1, 8};
    case TypeId::kBinaryView:
    case TypeId::kUtf8View:
      return {3, true, 0, 16};
    case TypeId::kListView:
      return {3, false, 1, 4};
    case TypeId::kLargeListView:
      return {3, false, 1, 8};
    case TypeId::kFixedSizeList:
      return {1, false, 1, std::max(1, t.fixed_size)};
    case TypeId::kStruct:
      return {1, false, field.schema.n_children, 0};
    case TypeId::kSparseUnion:
      return {1, false, field.schema.n_children, 1};
    case TypeId::kDenseUnion:
      return {2, false, field.schema.n_children, 4};
    case TypeId::kRunEndEncoded:
      return {0, false, 2, 0};
    default:
      return {2, false, 0, std::max(1, t.FixedBitWidth() / 8)};
  }
}

// Checks the structure of `slice`'s array against `field` and that the slice lies inside it.
Status CheckArray(const Field& field, const Slice& slice) {
  const ArrowArray* a = slice.array;
  if (a == nullptr) return Bad(slice, field, "array is null");
  if (a->release == nullptr) return Bad(slice, field, "array is released");
  if (a->length < 0 || a->offset < 0) {
    return Bad(slice, field, "negative length ", a->length, " or offset ", a->offset);
  }
  if (a->offset > kMaxInt64 - a->length) return Bad(slice, field, "offset + length overflows");
  if (slice.start < 0 || slice.length < 0 || slice.start > a->length - slice.length) {
    return Bad(slice, field, "rows [", slice.start, ", ", slice.start + slice.length,
               ") are outside the array's length ", a->length);
  }
  if (a->null_count < -1 || a->null_count > a->length) {
    return Bad(slice, field, "null_count ", a->null_count, " is not within [-1, length ", a->length,
               "]");
  }
  const Layout layout = LayoutOf(field);
  if (layout.at_least ? a->n_buffers < layout.buffers
                      : a->n_buffers != layout.buffers &&
                            !(field.type.id == TypeId::kNull && a->n_buffers == 1)) {
    return Bad(slice, field, "array has ", a->n_buffers, " buffers, type ", TypeName(field.type),
               " has ", layout.at_least ? "at least " : "", layout.buffers);
  }
  if (a->n_buffers > 0 && a->buffers == nullptr) return Bad(slice, field, "buffers are null");
  if (a->n_children != layout.children) {
    return Bad(slice, field, "array has ", a->n_children, " children, the schema has ",
               layout.children);
  }
  if (a->n_children > 0) {
    if (a->children == nullptr) return Bad(slice, field, "children are null");
    for (int64_t i = 0; i < a->n_children; ++i) {
      if (a->children[i] == nullptr) return Bad(slice, field, "child ", i, " is null");
    }
  }
  if (field.dictionary_encoded != (a->dictionary != nullptr)) {
    return Bad(slice, field,
               field.dictionary_encoded ? "array has no dictionary, the schema has one"
                                        : "array has a dictionary, the schema has none");
  }
  if (HasValidity(field) && a->null_count > 0 && a->buffers[0] == nullptr) {
    return Bad(slice, field, "null_count is ", a->null_count, " but there is no validity bitmap");
  }
  // Every index computed from a row (row * width, row + 1) must fit int64.
  if (layout.element_bytes > 0 && a->offset + a->length >= kMaxInt64 / layout.element_bytes) {
    return Bad(slice, field, "offset + length ", a->offset + a->length, " is too large");
  }
  return OkStatus();
}

Status CheckSchema(const ArrowSchema& schema, const std::string& path) {
  if (schema.n_children < 0 || (schema.n_children > 0 && schema.children == nullptr)) {
    return InvalidArgument(FieldContext(path), ": schema has bad children");
  }
  for (int64_t i = 0; i < schema.n_children; ++i) {
    if (schema.children[i] == nullptr || schema.children[i]->format == nullptr) {
      return InvalidArgument(FieldContext(path), ": schema child ", i, " is null");
    }
  }
  return OkStatus();
}

Result<Field> MakeField(const ArrowSchema& schema, std::string path) {
  if (schema.format == nullptr) {
    return InvalidArgument(FieldContext(path), ": schema has no format");
  }
  BRIDGE_RETURN_NOT_OK(CheckSchema(schema, path));
  auto type = ParseFormat(schema.format);
  if (!type.ok()) return WithContext(type.status(), FieldContext(path));
  Field field{schema, std::move(type).value(), std::move(path), schema.dictionary != nullptr};
  const DataType& t = field.type;
  if (field.dictionary_encoded && !IsInteger(t.id)) {
    return InvalidArgument(FieldContext(field.path), ": dictionary indices must be integers, not ",
                           TypeName(t));
  }
  if (field.dictionary_encoded && schema.dictionary->format == nullptr) {
    return InvalidArgument(FieldContext(field.path), ": dictionary has no format");
  }
  const int64_t expected_children = field.dictionary_encoded ? 0 : LayoutOf(field).children;
  if (schema.n_children != expected_children) {
    return InvalidArgument(FieldContext(field.path), ": schema of type ", TypeName(t), " has ",
                           schema.n_children, " children, expected ", expected_children);
  }
  if (!field.dictionary_encoded && (t.id == TypeId::kDenseUnion || t.id == TypeId::kSparseUnion) &&
      static_cast<int64_t>(t.type_codes.size()) != schema.n_children) {
    return InvalidArgument(FieldContext(field.path), ": union has ", t.type_codes.size(),
                           " type codes for ", schema.n_children, " children");
  }
  return field;
}

// ---------------------------------------------------------------------------------------
// Concatenation, one node of the type tree at a time

Status ConcatArrays(const ArrowSchema& schema, const std::string& path,
                    const std::vector<Slice>& slices, int depth, ArrowArray* out);

// Builds the validity bitmap (or none) and returns the null count.
Result<int64_t> ConcatValidity(const std::vector<Slice>& slices, int64_t total, ArrayNode& node) {
  bool any_nulls = false;
  for (const Slice& s : slices) any_nulls |= s.length > 0 && ValidityOf(s) != nullptr;
  if (!any_nulls) {
    node.buffers.push_back(nullptr);
    return 0;
  }
  const int64_t bytes = (total + 7) / 8;
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * bits, AddBuffer(node, bytes, /*zeroed=*/true));
  int64_t pos = 0;
  for (const Slice& s : slices) {
    if (const uint8_t* src = ValidityOf(s)) {
      CopyBits(src, s.physical(), bits, pos, s.length);
    } else {
      SetBits(bits, pos, s.length);
    }
    pos += s.length;
  }
  const int64_t null_count = total - CountSetBits(bits, bytes);
  if (null_count == 0) node.buffers.back() = nullptr;  // claimed nulls that were not there
  return null_count;
}

Status ConcatFixedWidth(const Field& field, const std::vector<Slice>& slices, int64_t total,
                        int64_t width, ArrayNode& node) {
  int64_t bytes = 0;
  if (__builtin_mul_overflow(total, width, &bytes)) {
    return ResourceExhausted(FieldContext(field.path), ": ", total, " values of ", width,
                             " bytes are too many");
  }
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * dst, AddBuffer(node, bytes, /*zeroed=*/false));
  int64_t pos = 0;
  for (const Slice& s : slices) {
    if (s.length == 0 || width == 0) continue;
    const auto* src = static_cast<const uint8_t*>(s.array->buffers[1]);
    if (src == nullptr) return Bad(s, field, "data buffer is null");
    std::memcpy(dst + pos * width, src + s.physical() * width, s.length * width);
    pos += s.length;
  }
  return OkStatus();
}

Status ConcatBool(const Field& field, const std::vector<Slice>& slices, int64_t total,
                  ArrayNode& node) {
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * dst, AddBuffer(node, (total + 7) / 8, /*zeroed=*/true));
  int64_t pos = 0;
  for (const Slice& s : slices) {
    if (s.length == 0) continue;
    const auto* src = static_cast<const uint8_t*>(s.array->buffers[1]);
    if (src == nullptr) return Bad(s, field, "data buffer is null");
    CopyBits(src, s.physical(), dst, pos, s.length);
    pos += s.length;
  }
  return OkStatus();
}

// The range of child values (or bytes) one input's rows refer to.
struct ValueRange {
  int64_t begin = 0;
  int64_t end = 0;
};

// Writes the rebased offsets buffer of a binary or list field and returns, per slice, the
// range of values it refers to. `limit` is the most values the offsets can address.
template <typename OffsetT>
Result<std::vector<ValueRange>> ConcatOffsets(const Field& field, const std::vector<Slice>& slices,
                                              int64_t total, const char* what, int64_t limit,
                                              ArrayNode& node) {
  std::vector<ValueRange> ranges(slices.size());
  int64_t values = 0;
  for (size_t k = 0; k < slices.size(); ++k) {
    const Slice& s = slices[k];
    if (s.length == 0) continue;
    const void* offsets = s.array->buffers[1];
    if (offsets == nullptr) return Bad(s, field, "offsets buffer is null");
    const int64_t begin = Load<OffsetT>(offsets, s.physical());
    const int64_t end = Load<OffsetT>(offsets, s.physical() + s.length);
    if (begin < 0 || end < begin) {
      return Bad(s, field, "offsets [", begin, ", ", end, "] of rows [", s.start, ", ",
                 s.start + s.length, ") are not increasing");
    }
    if (end - begin > limit - values) {
      return ResourceExhausted(Where(s, field), ": concatenated ", what, " exceed ", limit,
                               ", the most that ", sizeof(OffsetT) * 8, "-bit offsets address");
    }
    values += end - begin;
    ranges[k] = {begin, end};
  }
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * out_bytes,
                          AddBuffer(node, (total + 1) * static_cast<int64_t>(sizeof(OffsetT)),
                                    /*zeroed=*/false));
  auto* out = reinterpret_cast<OffsetT*>(out_bytes);
  out[0] = 0;
  int64_t row = 0;
  int64_t base = 0;
  for (size_t k = 0; k < slices.size(); ++k) {
    const Slice& s = slices[k];
    if (s.length == 0) continue;
    const auto* in = static_cast<const uint8_t*>(s.array->buffers[1]) +
                     s.physical() * static_cast<int64_t>(sizeof(OffsetT));
    // Unsigned arithmetic: garbage offsets must not overflow before they are rejected.
    using U = std::make_unsigned_t<OffsetT>;
    const U delta = static_cast<U>(base - ranges[k].begin);
    OffsetT prev = static_cast<OffsetT>(ranges[k].begin);
    bool decreasing = false;
    OffsetT* dst = out + row;
    for (int64_t i = 1; i <= s.length; ++i) {
      const OffsetT v = Load<OffsetT>(in, i);
      decreasing |= v < prev;
      prev = v;
      dst[i] = static_cast<OffsetT>(static_cast<U>(v) + delta);
    }
    if (decreasing) return Bad(s, field, "offsets are not increasing");
    row += s.length;
    base += ranges[k].end - ranges[k].begin;
  }
  return ranges;
}

template <typename OffsetT>
Status ConcatBinary(const Field& field, const std::vector<Slice>& slices, int64_t total,
                    ArrayNode& node) {
  const int64_t limit = sizeof(OffsetT) == 4 ? kMaxInt32 : kMaxBufferBytes;
  BRIDGE_ASSIGN_OR_RETURN(std::vector<ValueRange> ranges,
                          ConcatOffsets<OffsetT>(field, slices, total, "bytes", limit, node));
  int64_t bytes = 0;
  for (const ValueRange& r : ranges) bytes += r.end - r.begin;
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * dst, AddBuffer(node, bytes, /*zeroed=*/false));
  int64_t pos = 0;
  for (size_t k = 0; k < slices.size(); ++k) {
    const int64_t n = ranges[k].end - ranges[k].begin;
    if (n == 0) continue;
    const auto* src = static_cast<const uint8_t*>(slices[k].array->buffers[2]);
    if (src == nullptr) return Bad(slices[k], field, "data buffer is null");
    std::memcpy(dst + pos, src + ranges[k].begin, n);
    pos += n;
  }
  return OkStatus();
}

// Binary/utf8 views: long strings are copied, compacted, into new data buffers of at most
// 2^31-1 bytes each (a view addresses its buffer with an int32 offset).
constexpr int64_t kViewSize = 16;
constexpr int32_t kInlineViewBytes = 12;

Status CheckViews(const Field& field, const Slice& s) {
  const ArrowArray& a = *s.array;
  if (s.length == 0) return OkStatus();
  if (a.buffers[1] == nullptr) return Bad(s, field, "views buffer is null");
  const int64_t data_buffers = a.n_buffers - 3;
  const void* sizes = a.buffers[a.n_buffers - 1];
  if (data_buffers > 0 && sizes == nullptr) return Bad(s, field, "variadic sizes buffer is null");
  const uint8_t* validity = ValidityOf(s);
  const auto* views = static_cast<const uint8_t*>(a.buffers[1]);
  for (int64_t i = s.physical(), end = s.physical() + s.length; i < end; ++i) {
    if (validity != nullptr && !GetBit(validity, i)) continue;
    const uint8_t* view = views + i * kViewSize;
    const int32_t length = Load<int32_t>(view, 0);
    if (length < 0) return Bad(s, field, "row ", i - a.offset, ": negative view length");
    if (length <= kInlineViewBytes) continue;
    const int32_t buffer = Load<int32_t>(view, 2);
    const int32_t offset = Load<int32_t>(view, 3);
    if (buffer < 0 || buffer >= data_buffers) {
      return Bad(s, field, "row ", i - a.offset, ": view refers to data buffer ", buffer, " of ",
                 data_buffers);
    }
    const int64_t size = Load<int64_t>(sizes, buffer);
    if (offset < 0 || offset > size - length || a.buffers[2 + buffer] == nullptr) {
      return Bad(s, field, "row ", i - a.offset, ": view [", offset, ", +", length,
                 ") is outside data buffer ", buffer, " of ", size, " bytes");
    }
  }
  return OkStatus();
}

Status ConcatViews(const Field& field, const std::vector<Slice>& slices, int64_t total,
                   ArrayNode& node) {
  // Pass 1: check every view and plan the data buffers.
  std::vector<int64_t> data_sizes;
  auto place = [&data_sizes](int32_t length) {
    if (data_sizes.empty() || data_sizes.back() > kMaxInt32 - length) data_sizes.push_back(0);
    const int64_t offset = data_sizes.back();
    data_sizes.back() += length;
    return std::pair<int32_t, int32_t>(static_cast<int32_t>(data_sizes.size() - 1),
                                       static_cast<int32_t>(offset));
  };
  for (const Slice& s : slices) {
    BRIDGE_RETURN_NOT_OK(CheckViews(field, s));
    if (s.length == 0) continue;
    const uint8_t* validity = ValidityOf(s);
    const auto* views = static_cast<const uint8_t*>(s.array->buffers[1]);
    for (int64_t i = s.physical(), end = s.physical() + s.length; i < end; ++i) {
      if (validity != nullptr && !GetBit(validity, i)) continue;
      const int32_t length = Load<int32_t>(views + i * kViewSize, 0);
      if (length > kInlineViewBytes) place(length);
    }
  }
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * out_views, AddBuffer(node, total * kViewSize, /*zeroed=*/true));
  std::vector<uint8_t*> out_data;
  for (int64_t size : data_sizes) {
    BRIDGE_ASSIGN_OR_RETURN(uint8_t * data, AddBuffer(node, size, /*zeroed=*/false));
    out_data.push_back(data);
  }
  BRIDGE_ASSIGN_OR_RETURN(
      uint8_t * out_sizes,
      AddBuffer(node, static_cast<int64_t>(data_sizes.size()) * 8, /*zeroed=*/false));
  for (size_t j = 0; j < data_sizes.size(); ++j) Store<int64_t>(out_sizes, j, data_sizes[j]);
  // Pass 2: copy, in the same order so that `place` gives the same answers.
  data_sizes.clear();
  int64_t row = 0;
  for (const Slice& s : slices) {
    if (s.length == 0) continue;
    const uint8_t* validity = ValidityOf(s);
    const auto* views = static_cast<const uint8_t*>(s.array->buffers[1]);
    for (int64_t i = s.physical(), end = s.physical() + s.length; i < end; ++i, ++row) {
      if (validity != nullptr && !GetBit(validity, i)) continue;  // null: a zero view
      const uint8_t* view = views + i * kViewSize;
      uint8_t* dst = out_views + row * kViewSize;
      const int32_t length = Load<int32_t>(view, 0);
      std::memcpy(dst, view, 8);  // length and prefix (or the first 4 inline bytes)
      if (length <= kInlineViewBytes) {
        std::memcpy(dst + 8, view + 8, 8);
        continue;
      }
      const int32_t buffer = Load<int32_t>(view, 2);
      const int32_t offset = Load<int32_t>(view, 3);
      auto [out_buffer, out_offset] = place(length);
      std::memcpy(out_data[out_buffer] + out_offset,
                  static_cast<const uint8_t*>(s.array->buffers[2 + buffer]) + offset, length);
      Store<int32_t>(dst, 2, out_buffer);
      Store<int32_t>(dst, 3, out_offset);
    }
  }
  return OkStatus();
}

// Builds child `index` of `node` from `child_slices`.
Status ConcatChild(const Field& field, int64_t index, const std::vector<Slice>& child_slices,
                   int depth, ArrayNode& node) {
  const ArrowSchema& child_schema = *field.schema.children[index];
  return ConcatArrays(child_schema, ChildPath(field.path, child_schema, index), child_slices,
                      depth + 1, &node.child_structs[index]);
}

template <typename OffsetT>
Status ConcatList(const Field& field, const std::vector<Slice>& slices, int64_t total, int depth,
                  ArrayNode& node) {
  const int64_t limit = sizeof(OffsetT) == 4 ? kMaxInt32 : kMaxInt64;
  BRIDGE_ASSIGN_OR_RETURN(
      std::vector<ValueRange> ranges,
      ConcatOffsets<OffsetT>(field, slices, total, "child values", limit, node));
  std::vector<Slice> child_slices;
  for (size_t k = 0; k < slices.size(); ++k) {
    if (ranges[k].end == ranges[k].begin) continue;
    child_slices.push_back({slices[k].array->children[0], ranges[k].begin,
                            ranges[k].end - ranges[k].begin, slices[k].input});
  }
  return ConcatChild(field, 0, child_slices, depth, node);
}

Status ConcatFixedSizeList(const Field& field, const std::vector<Slice>& slices, int depth,
                           ArrayNode& node) {
  const int64_t size = field.type.fixed_size;
  std::vector<Slice> child_slices;
  for (const Slice& s : slices) {
    if (s.length == 0 || size == 0) continue;
    child_slices.push_back({s.array->children[0], s.physical() * size, s.length * size, s.input});
  }
  return ConcatChild(field, 0, child_slices, depth, node);
}

// Struct and sparse union: child j holds the rows at the parent's physical indices.
Status ConcatRowAlignedChildren(const Field& field, const std::vector<Slice>& slices, int depth,
                                ArrayNode& node) {
  for (int64_t j = 0; j < field.schema.n_children; ++j) {
    std::vector<Slice> child_slices;
    for (const Slice& s : slices) {
      if (s.length == 0) continue;
      child_slices.push_back({s.array->children[j], s.physical(), s.length, s.input});
    }
    BRIDGE_RETURN_NOT_OK(ConcatChild(field, j, child_slices, depth, node));
  }
  return OkStatus();
}

// Maps a union's type codes to child indices (-1 = not a code of this union).
std::array<int8_t, 128> ChildOfTypeCode(const DataType& type) {
  std::array<int8_t, 128> child{};
  child.fill(-1);
  for (size_t j = 0; j < type.type_codes.size(); ++j) {
    child[type.type_codes[j]] = static_cast<int8_t>(j);
  }
  return child;
}

Status CopyTypeIds(const Field& field, const std::vector<Slice>& slices, int64_t total,
                   const std::array<int8_t, 128>& child_of, ArrayNode& node) {
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * dst, AddBuffer(node, total, /*zeroed=*/false));
  int64_t pos = 0;
  for (const Slice& s : slices) {
    if (s.length == 0) continue;
    const auto* ids = static_cast<const int8_t*>(s.array->buffers[0]);
    if (ids == nullptr) return Bad(s, field, "type ids buffer is null");
    bool bad = false;
    for (int64_t i = 0; i < s.length; ++i) {
      const int8_t code = ids[s.physical() + i];
      bad |= code < 0 || child_of[code] < 0;
      dst[pos + i] = static_cast<uint8_t>(code);
    }
    if (bad) return Bad(s, field, "type id that is not one of the union's type codes");
    pos += s.length;
  }
  return OkStatus();
}

Status ConcatSparseUnion(const Field& field, const std::vector<Slice>& slices, int64_t total,
                         int depth, ArrayNode& node) {
  BRIDGE_RETURN_NOT_OK(CopyTypeIds(field, slices, total, ChildOfTypeCode(field.type), node));
  return ConcatRowAlignedChildren(field, slices, depth, node);
}

// Dense union: each input's rows refer to a range of each child; the ranges are copied one
// after the other and the offsets rebased onto them.
Status ConcatDenseUnion(const Field& field, const std::vector<Slice>& slices, int64_t total,
                        int depth, ArrayNode& node) {
  const auto child_of = ChildOfTypeCode(field.type);
  BRIDGE_RETURN_NOT_OK(CopyTypeIds(field, slices, total, child_of, node));
  BRIDGE_ASSIGN_OR_RETURN(uint8_t * out_offsets, AddBuffer(node, total * 4, /*zeroed=*/false));
  const int64_t n_children = field.schema.n_children;
  std::vector<std::vector<Slice>> child_slices(n_children);
  std::vector<int64_t> child_base(n_children, 0);
  std::vector<int64_t> first(n_children);
  std::vector<int64_t> last(n_children);
  int64_t row = 0;
  for (const Slice& s : slices) {
    if (s.length == 0) continue;
    const auto* ids = static_cast<const int8_t*>(s.array->buffers[0]);
    const void* offsets = s.array->buffers[1];
    if (offsets == nullptr) return Bad(s, field, "offsets buffer is null");
    std::fill(first.begin(), first.end(), kMaxInt64);
    std::fill(last.begin(), last.end(), -1);
    for (int64_t i = s.physical(), end = s.physical() + s.length; i < end; ++i) {
      const int8_t c = child_of[ids[i]];  // checked by CopyTypeIds
      const int32_t offset = Load<int32_t>(offsets, i);
      if (offset < 0 || offset >= s.array->children[c]->length) {
        return Bad(s, field, "row ", i - s.array->offset, ": offset ", offset, " is outside child ",
                   static_cast<int>(c), " of length ", s.array->children[c]->length);
      }
      first[c] = std::min<int64_t>(first[c], offset);
      last[c] = std::max<int64_t>(last[c], offset);
    }
    for (int64_t c = 0; c < n_children; ++c) {
      if (last[c] < 0) continue;
      const int64_t n = last[c] - first[c] + 1;
      if (n > kMaxInt32 - child_base[c]) {
        return ResourceExhausted(Where(s, field), ": child ", c,
                                 " of the dense union exceeds 2^31-1 values");
      }
      child_slices[c].push_back({s.array->children[c], first[c], n, s.input});
    }
    for (int64_t i = s.physical(), end = s.physical() + s.length; i < end; ++i, ++row) {
      const int8_t c = child_of[ids[i]];
      const int64_t offset = Load<int32_t>(offsets, i) - first[c] + child_base[c];
      Store<int32_t>(out_offsets, row, static_cast<int32_t>(offset));
    }
    for (int64_t c = 0; c < n_children; ++c) {
      if (last[c] >= 0) child_base[c] += last[c] - first[c] + 1;
    }
  }
  for (int64_t c = 0; c < n_children; ++c) {
    BRIDGE_RETURN_NOT_OK(ConcatChild(field, c, child_slices[c], depth, node));
  }
  return OkStatus();
}

// Dictionary comparison (flat value types only; anything else counts as different, which
// is always correct since different dictionaries are concatenated).
bool IsValidAt(const Slice& s, int64_t i) {
  const uint8_t* validity = ValidityOf(s);
  return validity == nullptr || GetBit(validity, s.physical() + i);
}

template <typename OffsetT>
Result<bool> BinaryValuesEqual(const Field& field, const Slice& a, const Slice& b) {
  const void* a_offsets = a.array->buffers[1];
  const void* b_offsets = b.array->buffers[1];
  if (a_offsets == nullptr) return Bad(a, field, "offsets buffer is null");
  if (b_offsets == nullptr) return Bad(b, field, "offsets buffer is null");
  const auto* a_data = static_cast<const uint8_t*>(a.array->buffers[2]);
  const auto* b_data = static_cast<const uint8_t*>(b.array->buffers[2]);
  for (int64_t i = 0; i < a.length; ++i) {
    const int64_t a0 = Load<OffsetT>(a_offsets, a.physical() + i);
    const int64_t a1 = Load<OffsetT>(a_offsets, a.physical() + i + 1);
    const int64_t b0 = Load<OffsetT>(b_offsets, b.physical() + i);
    const int64_t b1 = Load<OffsetT>(b_offsets, b.physical() + i + 1);
    if (a0 < 0 || a1 < a0 || (a1 > a0 && a_data == nullptr)) {
      return Bad(a, field, "dictionary offsets are not increasing");
    }
    if (b0 < 0 || b1 < b0 || (b1 > b0 && b_data == nullptr)) {
      return Bad(b, field, "dictionary offsets are not increasing");
    }
    const bool valid = IsValidAt(a, i);
    if (valid != IsValidAt(b, i)) return false;
    if (!valid) continue;
    if (a1 - a0 != b1 - b0) return false;
    if (a1 > a0 && std::memcmp(a_data + a0, b_data + b0, a1 - a0) != 0) return false;
  }
  return true;
}

// Returns the bytes of view row `i` (already checked by CheckViews).
std::string_view ViewBytes(const Slice& s, int64_t i) {
  const auto* view =
      static_cast<const uint8_t*>(s.array->buffers[1]) + (s.physical() + i) * kViewSize;
  const int32_t length = Load<int32_t>(view, 0);
  const char* data = length <= kInlineViewBytes
                         ? reinterpret_cast<const char*>(view + 4)
                         : static_cast<const char*>(s.array->buffers[2 + Load<int32_t>(view, 2)]) +
                               Load<int32_t>(view, 3);
  return {data, static_cast<size_t>(length)};
}

Result<bool> ValuesEqual(const Field& field, const Slice& a, const Slice& b) {
  if (a.length != b.length) return false;
  if (field.dictionary_encoded) return false;
  const DataType& t = field.type;
  switch (t.id) {
    case TypeId::kNull:
      return true;
    case TypeId::kBinary:
    case TypeId::kUtf8:
      return BinaryValuesEqual<int32_t>(field, a, b);
    case TypeId::kLargeBinary:
    case TypeId::kLargeUtf8:
      return BinaryValuesEqual<int64_t>(field, a, b);
    case TypeId::kBinaryView:
    case TypeId::kUtf8View: {
      BRIDGE_RETURN_NOT_OK(CheckViews(field, a));
      BRIDGE_RETURN_NOT_OK(CheckViews(field, b));
      for (int64_t i = 0; i < a.length; ++i) {
        const bool valid = IsValidAt(a, i);
        if (valid != IsValidAt(b, i)) return false;
        if (valid && ViewBytes(a, i) != ViewBytes(b, i)) return false;
      }
      return true;
    }
    default:
      break;
  }
  const int32_t bits = t.FixedBitWidth();
  const bool fixed = bits > 0 && LayoutOf(field).buffers == 2 && LayoutOf(field).children == 0;
  if (!fixed) return false;
  if (a.length == 0) return true;
  const auto* a_data = static_cast<const uint8_t*>(a.array->buffers[1]);
  const auto* b_data = static_cast<const uint8_t*>(b.array->buffers[1]);
  if (a_data == nullptr) return Bad(a, field, "data buffer is null");
  if (b_data == nullptr) return Bad(b, field, "data buffer is null");
  const int64_t width = bits / 8;
  for (int64_t i = 0; i < a.length; ++i) {
    const bool valid = IsValidAt(a, i);
    if (valid != IsValidAt(b, i)) return false;
    if (!valid) continue;
    if (bits == 1) {
      if (GetBit(a_data, a.physical() + i) != GetBit(b_data, b.physical() + i)) return false;
    } else if (std::memcmp(a_data + (a.physical() + i) * width, b_data + (b.physical() + i) * width,
                           width) != 0) {
      return false;
    }
  }
  return true;
}

template <typename IndexT>
Status ShiftIndices(const Field& field, const std::vector<Slice>& slices,
                    const std::vector<int64_t>& dictionary_start,
                    const std::vector<int64_t>& dictionary_length, uint8_t* dst_bytes) {
  constexpr int64_t kIndexMax =
      static_cast<uint64_t>(std::numeric_limits<IndexT>::max()) > static_cast<uint64_t>(kMaxInt64)
          ? kMaxInt64
          : static_cast<int64_t>(std::numeric_limits<IndexT>::max());
  int64_t row = 0;
  for (size_t k = 0; k < slices.size(); ++k) {
    const Slice& s = slices[k];
    if (s.length == 0) continue;
    const void* src = s.array->buffers[1];
    if (src == nullptr) return Bad(s, field, "indices buffer is null");
    const int64_t shift = dictionary_start[k];
    const int64_t size = dictionary_length[k];
    if (size - 1 > kIndexMax - shift) {
      return ResourceExhausted(Where(s, field), ": concatenated dictionaries of ", shift + size,
                               " values do not fit the index type ", TypeName(field.type));
    }
    for (int64_t i = 0; i < s.length; ++i, ++row) {
      if (!IsValidAt(s, i)) {
        Store<IndexT>(dst_bytes, row, IndexT{0});
        continue;
      }
      const IndexT index = Load<IndexT>(src, s.physical() + i);
      bool in_range;
      if constexpr (std::is_signed_v<IndexT>) {
        in_range = index >= 0 && static_cast<int64_t>(index) < size;
      } else {
        in_range = static_cast<uint64_t>(index) < static_cast<uint64_t>(size);
      }
      if (!in_range) {
        return Bad(s, field, "row ", s.start + i, ": dictionary index ", index,
                   " is outside the dictionary of ", size, " values");
      }
      Store<IndexT>(dst_bytes, row, static_cast<IndexT>(static_cast<int64_t>(index) + shift));
    }
  }
  return OkStatus();
}

Status ShiftIndicesOfType(const Field& field, const std::vector<Slice>& slices,
                          const std::vector<int64_t>& start, const std::vector<int64_t>& length,
                          uint8_t* dst) {
  switch (field.type.id) {
    case TypeId::kInt8:
      return ShiftIndices<int8_t>(field, slices, start, length, dst);
    case TypeId::kUInt8:
      return ShiftIndices<uint8_t>(field, slices, start, length, dst);
    case TypeId::kInt16:
      return ShiftIndices<int16_t>(field, slices, start, length, dst);
    case TypeId::kUInt16:
      return ShiftIndices<uint16_t>(field, slices, start, length, dst);
    case TypeId::kInt32:
      return ShiftIndices<int32_t>(field, slices, start, length, dst);
    case TypeId::kUInt32:
      return ShiftIndices<uint32_t>(field, slices, start, length, dst);
    case TypeId::kInt64:
      return ShiftIndices<int64_t>(field, slices, start, length, dst);
    default:
      return ShiftIndices<uint64_t>(field, slices, start, length, dst);
  }
}

Status ConcatDictionaryEncoded(const Field& field, const std::vector<Slice>& slices, int64_t total,
                               int depth, ArrayNode& node) {
  const ArrowSchema& value_schema = *field.schema.dictionary;
  BRIDGE_ASSIGN_OR_RETURN(
      Field values,
      MakeField(value_schema, field.path.empty() ? std::string("<dictionary>")
                                                 : StrCat(field.path, ".<dictionary>")));
  // The dictionaries that matter: those of inputs with rows (or the first, if none has).
  std::vector<size_t> used;
  for (size_t k = 0; k < slices.size(); ++k) {
    if (slices[k].length > 0) used.push_back(k);
  }
  if (used.empty() && !slices.empty()) used.push_back(0);
  std::vector<Slice> dictionaries;
  for (size_t k : used) {
    const ArrowArray* d = slices[k].array->dictionary;
    Slice whole{d, 0, d->length, slices[k].input};
    BRIDGE_RETURN_NOT_OK(CheckArray(values, whole));
    dictionaries.push_back(whole);
  }
  bool all_equal = true;
  for (size_t k = 1; k < dictionaries.size() && all_equal; ++k) {
    const ArrowArray* a = dictionaries[0].array;
    const ArrowArray* b = dictionaries[k].array;
    const bool same_memory = a->length == b->length && a->offset == b->offset &&
                             a->n_buffers == b->n_buffers &&
                             std::equal(a->buffers, a->buffers + a->n_buffers, b->buffers);
    if (same_memory) continue;
    BRIDGE_ASSIGN_OR_RETURN(all_equal, ValuesEqual(values, dictionaries[0], dictionaries[k]));
  }
  const int64_t width = field.type.FixedBitWidth() / 8;
  if (all_equal) {
    BRIDGE_RETURN_NOT_OK(ConcatFixedWidth(field, slices, total, width, node));
    if (dictionaries.size() > 1) dictionaries.erase(dictionaries.begin() + 1, dictionaries.end());
  } else {
    if (field.schema.flags & ARROW_FLAG_DICTIONARY_ORDERED) {
      return Unimplemented(FieldContext(field.path),
                           ": ordered dictionaries that differ between inputs");
    }
    std::vector<int64_t> start(slices.size(), 0);
    std::vector<int64_t> length(slices.size(), 0);
    int64_t values_so_far = 0;
    for (size_t j = 0; j < used.size(); ++j) {
      start[used[j]] = values_so_far;
      length[used[j]] = dictionaries[j].length;
      values_so_far += dictionaries[j].length;
    }
    BRIDGE_ASSIGN_OR_RETURN(uint8_t * dst, AddBuffer(node, total * width, /*zeroed=*/false));
    BRIDGE_RETURN_NOT_OK(ShiftIndicesOfType(field, slices, start, length, dst));
  }
  return ConcatArrays(value_schema, values.path, dictionaries, depth + 1, &node.dictionary_struct);
}

Status ConcatArrays(const ArrowSchema& schema, const std::string& path,
                    const std::vector<Slice>& slices, int depth, ArrowArray* out) {
  if (depth > kMaxDepth) {
    return InvalidArgument(FieldContext(path), ": nested more than ", kMaxDepth, " levels deep");
  }
  BRIDGE_ASSIGN_OR_RETURN(Field field, MakeField(schema, path));
  int64_t total = 0;
  for (const Slice& s : slices) {
    BRIDGE_RETURN_NOT_OK(CheckArray(field, s));
    if (__builtin_add_overflow(total, s.length, &total)) {
      return Bad(s, field, "total length overflows");
    }
  }
  // Keeps every per-row buffer size (at most 32 bytes a row but for fixed_size_binary, whose
  // size is checked on its own) far from overflowing.
  if (total > kMaxBufferBytes / 32) {
    return ResourceExhausted(FieldContext(path), ": ", total, " rows are too many");
  }
  auto node = std::make_unique<ArrayNode>();
  node->child_structs.resize(field.dictionary_encoded ? 0 : schema.n_children);
  for (ArrowArray& child : node->child_structs) node->children.push_back(&child);

  int64_t null_count = 0;
  if (HasValidity(field)) {
    BRIDGE_ASSIGN_OR_RETURN(null_count, ConcatValidity(slices, total, *node));
  }
  const DataType& t = field.type;
  Status status;
  if (field.dictionary_encoded) {
    status = ConcatDictionaryEncoded(field, slices, total, depth, *node);
  } else {
    switch (t.id) {
      case TypeId::kNull:
        null_count = total;
        break;
      case TypeId::kBool:
        status = ConcatBool(field, slices, total, *node);
        break;
      case TypeId::kBinary:
      case TypeId::kUtf8:
        status = ConcatBinary<int32_t>(field, slices, total, *node);
        break;
      case TypeId::kLargeBinary:
      case TypeId::kLargeUtf8:
        status = ConcatBinary<int64_t>(field, slices, total, *node);
        break;
      case TypeId::kBinaryView:
      case TypeId::kUtf8View:
        status = ConcatViews(field, slices, total, *node);
        break;
      case TypeId::kList:
      case TypeId::kMap:
        status = ConcatList<int32_t>(field, slices, total, depth, *node);
        break;
      case TypeId::kLargeList:
        status = ConcatList<int64_t>(field, slices, total, depth, *node);
        break;
      case TypeId::kFixedSizeList:
        status = ConcatFixedSizeList(field, slices, depth, *node);
        break;
      case TypeId::kFixedSizeBinary:
        status = ConcatFixedWidth(field, slices, total, t.fixed_size, *node);
        break;
      case TypeId::kStruct:
        status = ConcatRowAlignedChildren(field, slices, depth, *node);
        break;
      case TypeId::kSparseUnion:
        status = ConcatSparseUnion(field, slices, total, depth, *node);
        break;
      case TypeId::kDenseUnion:
        status = ConcatDenseUnion(field, slices, total, depth, *node);
        break;
      case TypeId::kListView:
      case TypeId::kLargeListView:
      case TypeId::kRunEndEncoded:
        return Unimplemented(FieldContext(path), ": ", TypeName(t), " arrays are not supported");
      default: {
        const int32_t bits = t.FixedBitWidth();
        if (bits <= 0 || bits % 8 != 0) {
          return Unimplemented(FieldContext(path), ": type ", TypeName(t));
        }
        status = ConcatFixedWidth(field, slices, total, bits / 8, *node);
        break;
      }
    }
  }
  BRIDGE_RETURN_NOT_OK(status);

  out->length = total;
  out->null_count = null_count;
  out->offset = 0;
  out->n_buffers = static_cast<int64_t>(node->buffers.size());
  out->buffers = node->buffers.data();
  out->n_children = static_cast<int64_t>(node->children.size());
  out->children = node->children.empty() ? nullptr : node->children.data();
  out->dictionary = field.dictionary_encoded ? &node->dictionary_struct : nullptr;
  out->release = &ReleaseArrayNode;
  out->private_data = node.release();
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// Size estimate

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? kMaxInt64 : sum;
}

int64_t Estimate(const ArrowSchema& schema, const ArrowArray* array, int64_t start, int64_t length,
                 int depth) {
  if (array == nullptr || depth > kMaxDepth || schema.format == nullptr) return 0;
  auto field = MakeField(schema, "");
  if (!field.ok()) return 0;
  Slice s{array, start, length, 0};
  if (!CheckArray(*field, s).ok()) return 0;
  const ArrowArray& a = *array;
  const DataType& t = field->type;
  int64_t bytes = 0;
  if (HasValidity(*field) && a.null_count != 0 && a.buffers[0] != nullptr) {
    bytes += (length + 7) / 8;
  }
  auto child_estimate = [&](int64_t j, int64_t child_start, int64_t child_length) {
    return Estimate(*schema.children[j], a.children[j], child_start, child_length, depth + 1);
  };
  auto offsets_range = [&](auto offset_type) -> ValueRange {
    using OffsetT = decltype(offset_type);
    if (length == 0 || a.buffers[1] == nullptr) return {};
    const int64_t begin = Load<OffsetT>(a.buffers[1], s.physical());
    const int64_t end = Load<OffsetT>(a.buffers[1], s.physical() + length);
    if (begin < 0 || end < begin) return {};
    return {begin, end};
  };
  if (field->dictionary_encoded) {
    bytes += length * (t.FixedBitWidth() / 8);
    return SaturatingAdd(
        bytes, Estimate(*schema.dictionary, a.dictionary, 0, a.dictionary->length, depth + 1));
  }
  switch (t.id) {
    case TypeId::kNull:
      return 0;
    case TypeId::kBool:
      return bytes + (length + 7) / 8;
    case TypeId::kBinary:
    case TypeId::kUtf8: {
      const ValueRange r = offsets_range(int32_t{});
      return bytes + (length + 1) * 4 + (r.end - r.begin);
    }
    case TypeId::kLargeBinary:
    case TypeId::kLargeUtf8: {
      const ValueRange r = offsets_range(int64_t{});
      return SaturatingAdd(bytes + (length + 1) * 8, r.end - r.begin);
    }
    case TypeId::kBinaryView:
    case TypeId::kUtf8View: {
      bytes += length * kViewSize;
      const void* sizes = a.buffers[a.n_buffers - 1];
      for (int64_t j = 0; sizes != nullptr && j < a.n_buffers - 3; ++j) {
        bytes = SaturatingAdd(bytes, std::max<int64_t>(0, Load<int64_t>(sizes, j)));
      }
      return bytes;
    }
    case TypeId::kList:
    case TypeId::kMap: {
      const ValueRange r = offsets_range(int32_t{});
      return SaturatingAdd(bytes + (length + 1) * 4, child_estimate(0, r.begin, r.end - r.begin));
    }
    case TypeId::kLargeList: {
      const ValueRange r = offsets_range(int64_t{});
      return SaturatingAdd(bytes + (length + 1) * 8, child_estimate(0, r.begin, r.end - r.begin));
    }
    case TypeId::kFixedSizeList: {
      const int64_t size = t.fixed_size;
      return SaturatingAdd(bytes, child_estimate(0, s.physical() * size, length * size));
    }
    case TypeId::kStruct:
    case TypeId::kSparseUnion: {
      if (t.id == TypeId::kSparseUnion) bytes += length;
      for (int64_t j = 0; j < a.n_children; ++j) {
        bytes = SaturatingAdd(bytes, child_estimate(j, s.physical(), length));
      }
      return bytes;
    }
    case TypeId::kDenseUnion: {
      bytes += length * 5;
      for (int64_t j = 0; j < a.n_children; ++j) {
        bytes = SaturatingAdd(bytes, child_estimate(j, 0, a.children[j]->length));
      }
      return bytes;
    }
    case TypeId::kListView:
    case TypeId::kLargeListView:
    case TypeId::kRunEndEncoded:
      return bytes;
    default:
      return SaturatingAdd(bytes, length * (t.FixedBitWidth() / 8));
  }
}

}  // namespace

Result<OwnedArray> Concatenate(const ArrowSchema& schema,
                               std::span<const ArrowArray* const> arrays) {
  std::vector<Slice> slices;
  slices.reserve(arrays.size());
  for (size_t k = 0; k < arrays.size(); ++k) {
    if (arrays[k] == nullptr) return InvalidArgument("concatenate: input ", k, " is null");
    slices.push_back({arrays[k], 0, arrays[k]->length, k});
  }
  OwnedArray result;
  BRIDGE_RETURN_NOT_OK(ConcatArrays(schema, "", slices, 0, result.out()));
  return result;
}

int64_t EstimateBytes(const ArrowSchema& schema, const ArrowArray& array) {
  return Estimate(schema, &array, 0, array.length, 0);
}

}  // namespace bridge::ipc
