#include "bridge/arrow/reader_array_internal.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "bridge/arrow/compression.h"
#include "bridge/arrow/reader_message_internal.h"

namespace bridge::ipc::internal {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the IPC reader exports little-endian data as is");

// ---------------------------------------------------------------------------------------
// Export

// The private_data of every ArrowArray ExportArray makes: holds the ArrayData (and so its
// buffers) and owns the exported children and dictionary, which are complete arrays with
// their own release so that a consumer may move them out.
struct ExportNode {
  std::shared_ptr<const ArrayData> data;
  std::vector<const void*> buffers;
  std::vector<ArrowArray> child_structs;  // sized once; `children` points into it
  std::vector<ArrowArray*> children;
  ArrowArray dictionary_struct{};

  ExportNode() = default;
  ExportNode(const ExportNode&) = delete;
  ExportNode& operator=(const ExportNode&) = delete;
  ~ExportNode() {
    for (ArrowArray& child : child_structs) {
      if (child.release != nullptr) child.release(&child);
    }
    if (dictionary_struct.release != nullptr) dictionary_struct.release(&dictionary_struct);
  }
};

void ReleaseExportNode(ArrowArray* array) {
  delete static_cast<ExportNode*>(array->private_data);
  array->private_data = nullptr;
  array->release = nullptr;
}

void ExportInto(std::shared_ptr<const ArrayData> data, ArrowArray* out) {
  auto* node = new ExportNode;
  node->dictionary_struct.release = nullptr;
  node->buffers = data->buffers;
  node->child_structs.resize(data->children.size());
  node->children.reserve(data->children.size());
  for (size_t i = 0; i < data->children.size(); ++i) {
    ExportInto(data->children[i], &node->child_structs[i]);
    node->children.push_back(&node->child_structs[i]);
  }
  if (data->dictionary != nullptr) ExportInto(data->dictionary, &node->dictionary_struct);
  out->length = data->length;
  out->null_count = data->null_count;
  out->offset = data->offset;
  out->n_buffers = static_cast<int64_t>(node->buffers.size());
  out->n_children = static_cast<int64_t>(node->children.size());
  out->buffers = node->buffers.empty() ? nullptr : node->buffers.data();
  out->children = node->children.empty() ? nullptr : node->children.data();
  out->dictionary = data->dictionary != nullptr ? &node->dictionary_struct : nullptr;
  out->release = &ReleaseExportNode;
  out->private_data = node;
  node->data = std::move(data);
}

std::shared_ptr<const ArrayData> ImportNode(const ArrowArray& array,
                                            const std::shared_ptr<const void>& owner) {
  auto data = std::make_shared<ArrayData>();
  data->length = array.length;
  data->null_count = array.null_count;
  data->offset = array.offset;
  if (array.n_buffers > 0) data->buffers.assign(array.buffers, array.buffers + array.n_buffers);
  for (int64_t i = 0; i < array.n_children; ++i) {
    data->children.push_back(ImportNode(*array.children[i], owner));
  }
  if (array.dictionary != nullptr) data->dictionary = ImportNode(*array.dictionary, owner);
  data->owners.push_back(owner);
  return data;
}

// ---------------------------------------------------------------------------------------
// Reading values (buffers are aligned by now, but memcpy keeps every load defined)

template <typename T>
T Load(const uint8_t* base, int64_t index) {
  T value;
  std::memcpy(&value, base + index * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return value;
}

bool BitIsSet(const uint8_t* bits, int64_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

// A null validity pointer means every slot is valid.
bool IsValid(const uint8_t* validity, int64_t i) {
  return validity == nullptr || BitIsSet(validity, i);
}

int64_t BytesForBits(int64_t bits) { return bits / 8 + (bits % 8 != 0 ? 1 : 0); }

int64_t CountSetBits(const uint8_t* bits, int64_t n_bits) {
  int64_t count = 0;
  const int64_t whole_bytes = n_bits / 8;
  int64_t i = 0;
  for (; i + 8 <= whole_bytes; i += 8) count += std::popcount(Load<uint64_t>(bits + i, 0));
  for (; i < whole_bytes; ++i) count += std::popcount(bits[i]);
  for (int64_t bit = whole_bytes * 8; bit < n_bits; ++bit) count += BitIsSet(bits, bit) ? 1 : 0;
  return count;
}

// Returns a * b, or nullopt if it overflows int64.
std::optional<int64_t> Multiply(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------
// The decoder

// A body buffer after decompression or realignment: `size` bytes at `data` (never null).
struct BufferRef {
  const uint8_t* data = kZeros;
  int64_t size = 0;
};

struct Node {
  int64_t length = 0;
  int64_t null_count = 0;
};

class BodyDecoder {
 public:
  explicit BodyDecoder(const BodyContext& body) : body_(body) {
    const fb::RecordBatch& batch = *body.batch;
    nodes_ = batch.nodes();
    buffers_ = batch.buffers();
    variadic_ = batch.variadic_buffer_counts();
    n_nodes_ = nodes_ == nullptr ? 0 : nodes_->size();
    n_buffers_ = buffers_ == nullptr ? 0 : buffers_->size();
    n_variadic_ = variadic_ == nullptr ? 0 : variadic_->size();
  }

  Result<std::vector<std::shared_ptr<const ArrayData>>> Run(std::span<const FieldLayout> fields) {
    BRIDGE_RETURN_NOT_OK(ReadCompression());
    std::vector<std::shared_ptr<const ArrayData>> columns;
    columns.reserve(fields.size());
    for (const FieldLayout& field : fields) {
      BRIDGE_ASSIGN_OR_RETURN(auto column, DecodeField(field));
      columns.push_back(std::move(column));
    }
    if (node_index_ != n_nodes_) {
      return InvalidArgument(body_.context, ": the message has ", n_nodes_,
                             " field nodes but the schema describes ", node_index_);
    }
    if (buffer_index_ != n_buffers_) {
      return InvalidArgument(body_.context, ": the message has ", n_buffers_,
                             " buffers but the schema uses ", buffer_index_);
    }
    if (variadic_index_ != n_variadic_) {
      return InvalidArgument(body_.context, ": the message has ", n_variadic_,
                             " variadic buffer counts but the schema has ", variadic_index_,
                             " view fields");
    }
    return columns;
  }

 private:
  template <typename... Args>
  Status Bad(const FieldLayout& field, const Args&... args) const {
    return InvalidArgument(body_.context, ", field '", field.path, "': ", args...);
  }
  std::string Where(const FieldLayout& field) const {
    return StrCat(body_.context, ", field '", field.path, "'");
  }

  Status ReadCompression() {
    const fb::BodyCompression* compression = body_.batch->compression();
    if (compression == nullptr) return OkStatus();
    if (compression->method() != fb::BodyCompressionMethod::BUFFER) {
      return InvalidArgument(body_.context, ": unknown body compression method ",
                             static_cast<int>(compression->method()));
    }
    switch (compression->codec()) {
      case fb::CompressionType::LZ4_FRAME:
        codec_ = Codec::kLz4Frame;
        return OkStatus();
      case fb::CompressionType::ZSTD:
        codec_ = Codec::kZstd;
        return OkStatus();
    }
    return InvalidArgument(body_.context, ": unknown body compression codec ",
                           static_cast<int>(compression->codec()));
  }

  Result<Node> NextNode(const FieldLayout& field) {
    if (node_index_ >= n_nodes_) {
      return Bad(field, "the message has only ", n_nodes_,
                 " field nodes, fewer than the schema describes");
    }
    const fb::FieldNode raw = LoadStruct(*nodes_, node_index_++);
    Node node{raw.length(), raw.null_count()};
    if (node.length < 0) return Bad(field, "negative length ", node.length);
    if (node.null_count < 0 || node.null_count > node.length) {
      return Bad(field, "null count ", node.null_count, " is not within 0..length (", node.length,
                 ")");
    }
    return node;
  }

  // Returns the next body buffer, decompressed if the body is compressed and copied if it
  // is not aligned to `alignment`. Buffers the caller does not `need` are only
  // range-checked (an empty BufferRef comes back).
  Result<BufferRef> NextBuffer(const FieldLayout& field, std::string_view what, int alignment,
                               ArrayData& out, bool need = true) {
    if (buffer_index_ >= n_buffers_) {
      return Bad(field, "the message has only ", n_buffers_,
                 " buffers, fewer than the schema needs");
    }
    const fb::Buffer raw = LoadStruct(*buffers_, buffer_index_++);
    const int64_t body_size = static_cast<int64_t>(body_.body.size());
    int64_t offset = raw.offset();
    int64_t length = raw.length();
    if (offset < 0 || length < 0 || offset > body_size || length > body_size - offset) {
      return Bad(field, what, " buffer at offset ", offset, " of ", length,
                 " bytes is outside the body of ", body_size, " bytes");
    }
    if (length == 0 || !need) return BufferRef{};
    const uint8_t* data = body_.body.data() + offset;
    if (codec_.has_value()) {
      if (length < 8) {
        return Bad(field, "compressed ", what, " buffer of ", length,
                   " bytes has no room for its uncompressed length");
      }
      const int64_t uncompressed = LoadInt64(data);
      data += 8;
      length -= 8;
      if (uncompressed != -1) {
        if (uncompressed < 0) {
          return Bad(field, what, " buffer announces uncompressed length ", uncompressed);
        }
        BRIDGE_ASSIGN_OR_RETURN(auto allocation,
                                Allocation::Make(body_.budget, uncompressed, Where(field),
                                                 StrCat("decompressing the ", what, " buffer")));
        Status status = Decompress(*codec_, std::span<const uint8_t>(data, length),
                                   std::span<uint8_t>(allocation->data(), uncompressed));
        if (!status.ok()) return Bad(field, what, " buffer: ", std::string(status.message()));
        body_.stats->bytes_decompressed += uncompressed;
        out.owners.push_back(allocation);
        return uncompressed == 0 ? BufferRef{} : BufferRef{allocation->data(), uncompressed};
      }
      // -1: the buffer was stored uncompressed; it stays a view.
      if (length == 0) return BufferRef{};
    }
    if (alignment > 1 && reinterpret_cast<uintptr_t>(data) % alignment != 0) {
      // Copy: the buffer is not aligned to its type's width and consumers load values in
      // place (counted in ReadStats::bytes_copied).
      BRIDGE_ASSIGN_OR_RETURN(auto allocation,
                              Allocation::Make(body_.budget, length, Where(field),
                                               StrCat("realigning the ", what, " buffer")));
      std::memcpy(allocation->data(), data, static_cast<size_t>(length));
      body_.stats->bytes_copied += length;
      out.owners.push_back(allocation);
      return BufferRef{allocation->data(), length};
    }
    return BufferRef{data, length};
  }

  // Checks that `buffer` holds `count` values of `width` bytes.
  Status NeedBytes(const FieldLayout& field, std::string_view what, const BufferRef& buffer,
                   int64_t count, int64_t width) const {
    std::optional<int64_t> need = Multiply(count, width);
    if (!need.has_value() || buffer.size < *need) {
      return Bad(field, what, " buffer of ", buffer.size, " bytes is too short for ", count,
                 " values of ", width, " bytes");
    }
    return OkStatus();
  }

  // Reads the validity buffer. Returns null when every slot is valid (null count 0): the
  // bitmap is then neither needed nor exported.
  Result<const uint8_t*> Validity(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(BufferRef bitmap,
                            NextBuffer(field, "validity", 1, out, node.null_count > 0));
    if (node.null_count == 0) return nullptr;
    const int64_t need = BytesForBits(node.length);
    if (bitmap.size < need) {
      return Bad(field, "validity bitmap of ", bitmap.size, " bytes is too short for ", node.length,
                 " values");
    }
    const int64_t nulls = node.length - CountSetBits(bitmap.data, node.length);
    if (nulls != node.null_count) {
      return Bad(field, "null count ", node.null_count, " does not match the ", nulls,
                 " nulls of the validity bitmap");
    }
    return bitmap.data;
  }

  // Checks `length + 1` offsets: non-negative, non-decreasing, the last <= `limit`. Returns
  // the last offset. An empty buffer stands for the offsets of an empty array.
  template <typename Offset>
  Result<int64_t> CheckOffsets(const FieldLayout& field, int64_t length, const BufferRef& offsets,
                               int64_t limit, std::string_view limit_name) const {
    if (length == 0 && offsets.size == 0) return 0;
    if (length == std::numeric_limits<int64_t>::max()) return Bad(field, "length too large");
    BRIDGE_RETURN_NOT_OK(NeedBytes(field, "offsets", offsets, length + 1, sizeof(Offset)));
    int64_t previous = Load<Offset>(offsets.data, 0);
    if (previous < 0) return Bad(field, "first offset ", previous, " is negative");
    for (int64_t i = 1; i <= length; ++i) {
      const int64_t current = Load<Offset>(offsets.data, i);
      if (current < previous) {
        return Bad(field, "offset ", current, " at ", i, " is less than the one before (", previous,
                   ")");
      }
      previous = current;
    }
    if (previous > limit) return Bad(field, "offset ", previous, " > ", limit_name, " ", limit);
    return previous;
  }

  Result<std::shared_ptr<const ArrayData>> DecodeField(const FieldLayout& field) {
    BRIDGE_ASSIGN_OR_RETURN(Node node, NextNode(field));
    auto out = std::make_shared<ArrayData>();
    out->length = node.length;
    out->null_count = node.null_count;
    if (body_.body.owner() != nullptr) out->owners.push_back(body_.body.owner());
    if (field.dictionary != nullptr) {
      BRIDGE_RETURN_NOT_OK(DecodeIndices(field, node, *out));
      return out;
    }
    switch (field.type.id) {
      case TypeId::kNull:
        out->null_count = node.length;
        break;
      case TypeId::kBool:
      case TypeId::kInt8:
      case TypeId::kUInt8:
      case TypeId::kInt16:
      case TypeId::kUInt16:
      case TypeId::kInt32:
      case TypeId::kUInt32:
      case TypeId::kInt64:
      case TypeId::kUInt64:
      case TypeId::kFloat16:
      case TypeId::kFloat32:
      case TypeId::kFloat64:
      case TypeId::kDecimal:
      case TypeId::kFixedSizeBinary:
      case TypeId::kDate32:
      case TypeId::kDate64:
      case TypeId::kTime32:
      case TypeId::kTime64:
      case TypeId::kTimestamp:
      case TypeId::kDuration:
      case TypeId::kIntervalMonths:
      case TypeId::kIntervalDayTime:
      case TypeId::kIntervalMonthDayNano:
        BRIDGE_RETURN_NOT_OK(DecodeFixedWidth(field, node, *out));
        break;
      case TypeId::kBinary:
      case TypeId::kUtf8:
        BRIDGE_RETURN_NOT_OK(DecodeBinary<int32_t>(field, node, *out));
        break;
      case TypeId::kLargeBinary:
      case TypeId::kLargeUtf8:
        BRIDGE_RETURN_NOT_OK(DecodeBinary<int64_t>(field, node, *out));
        break;
      case TypeId::kBinaryView:
      case TypeId::kUtf8View:
        BRIDGE_RETURN_NOT_OK(DecodeView(field, node, *out));
        break;
      case TypeId::kList:
      case TypeId::kMap:
        BRIDGE_RETURN_NOT_OK(DecodeList<int32_t>(field, node, *out));
        break;
      case TypeId::kLargeList:
        BRIDGE_RETURN_NOT_OK(DecodeList<int64_t>(field, node, *out));
        break;
      case TypeId::kListView:
        BRIDGE_RETURN_NOT_OK(DecodeListView<int32_t>(field, node, *out));
        break;
      case TypeId::kLargeListView:
        BRIDGE_RETURN_NOT_OK(DecodeListView<int64_t>(field, node, *out));
        break;
      case TypeId::kFixedSizeList:
        BRIDGE_RETURN_NOT_OK(DecodeFixedSizeList(field, node, *out));
        break;
      case TypeId::kStruct:
        BRIDGE_RETURN_NOT_OK(DecodeStruct(field, node, *out));
        break;
      case TypeId::kDenseUnion:
      case TypeId::kSparseUnion:
        BRIDGE_RETURN_NOT_OK(DecodeUnion(field, node, *out));
        break;
      case TypeId::kRunEndEncoded:
        BRIDGE_RETURN_NOT_OK(DecodeRunEndEncoded(field, node, *out));
        break;
    }
    return out;
  }

  Status DecodeFixedWidth(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    const int32_t bits = field.type.FixedBitWidth();
    const bool byte_aligned = field.type.id == TypeId::kFixedSizeBinary || bits == 1;
    const int alignment = byte_aligned ? 1 : std::min(8, bits / 8);
    BRIDGE_ASSIGN_OR_RETURN(BufferRef values, NextBuffer(field, "values", alignment, out));
    if (bits == 1) {
      if (values.size < BytesForBits(node.length)) {
        return Bad(field, "values bitmap of ", values.size, " bytes is too short for ", node.length,
                   " values");
      }
    } else {
      BRIDGE_RETURN_NOT_OK(NeedBytes(field, "values", values, node.length, bits / 8));
    }
    out.buffers = {validity, values.data};
    return OkStatus();
  }

  template <typename Offset>
  Status DecodeBinary(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    BRIDGE_ASSIGN_OR_RETURN(BufferRef offsets, NextBuffer(field, "offsets", sizeof(Offset), out));
    BRIDGE_ASSIGN_OR_RETURN(BufferRef data, NextBuffer(field, "data", 1, out));
    BRIDGE_RETURN_NOT_OK(
        CheckOffsets<Offset>(field, node.length, offsets, data.size, "data size").status());
    out.buffers = {validity, offsets.data, data.data};
    return OkStatus();
  }

  Status DecodeView(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    BRIDGE_ASSIGN_OR_RETURN(BufferRef views, NextBuffer(field, "views", 8, out));
    BRIDGE_RETURN_NOT_OK(NeedBytes(field, "views", views, node.length, 16));
    if (variadic_index_ >= n_variadic_) {
      return Bad(field, "the message has no variadic buffer count for this view field");
    }
    const int64_t n_data = LoadElement(*variadic_, variadic_index_++);
    if (n_data < 0 || n_data > static_cast<int64_t>(n_buffers_ - buffer_index_)) {
      return Bad(field, "variadic buffer count ", n_data, " is not within the ",
                 n_buffers_ - buffer_index_, " buffers left in the message");
    }
    std::vector<BufferRef> data(static_cast<size_t>(n_data));
    for (BufferRef& buffer : data) {
      BRIDGE_ASSIGN_OR_RETURN(buffer, NextBuffer(field, "variadic data", 1, out));
    }
    // The C Data Interface wants a last buffer holding the variadic buffers' sizes (int64),
    // which IPC does not carry.
    BRIDGE_ASSIGN_OR_RETURN(auto sizes, Allocation::Make(body_.budget, n_data * 8, Where(field),
                                                         "the variadic buffer sizes"));
    for (int64_t i = 0; i < n_data; ++i) {
      std::memcpy(sizes->data() + i * 8, &data[static_cast<size_t>(i)].size, 8);
    }
    out.owners.push_back(sizes);
    for (int64_t i = 0; i < node.length; ++i) {
      if (!IsValid(validity, i)) continue;
      const uint8_t* view = views.data + i * 16;
      const int32_t size = Load<int32_t>(view, 0);
      if (size < 0) return Bad(field, "view ", i, " has negative length ", size);
      if (size <= 12) continue;  // inlined
      const int32_t index = Load<int32_t>(view, 2);
      const int32_t offset = Load<int32_t>(view, 3);
      if (index < 0 || index >= n_data) {
        return Bad(field, "view ", i, " refers to variadic buffer ", index, " of ", n_data);
      }
      const int64_t available = data[static_cast<size_t>(index)].size;
      if (offset < 0 || offset > available || size > available - offset) {
        return Bad(field, "view ", i, " (offset ", offset, ", length ", size,
                   ") is outside variadic buffer ", index, " of ", available, " bytes");
      }
    }
    out.buffers.reserve(static_cast<size_t>(n_data) + 3);
    out.buffers = {validity, views.data};
    for (const BufferRef& buffer : data) out.buffers.push_back(buffer.data);
    out.buffers.push_back(n_data == 0 ? kZeros : sizes->data());
    return OkStatus();
  }

  template <typename Offset>
  Status DecodeList(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    BRIDGE_ASSIGN_OR_RETURN(BufferRef offsets, NextBuffer(field, "offsets", sizeof(Offset), out));
    BRIDGE_ASSIGN_OR_RETURN(auto child, DecodeField(field.children[0]));
    BRIDGE_RETURN_NOT_OK(
        CheckOffsets<Offset>(field, node.length, offsets, child->length, "child length").status());
    out.buffers = {validity, offsets.data};
    out.children = {std::move(child)};
    return OkStatus();
  }

  template <typename Offset>
  Status DecodeListView(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    BRIDGE_ASSIGN_OR_RETURN(BufferRef offsets, NextBuffer(field, "offsets", sizeof(Offset), out));
    BRIDGE_ASSIGN_OR_RETURN(BufferRef sizes, NextBuffer(field, "sizes", sizeof(Offset), out));
    BRIDGE_RETURN_NOT_OK(NeedBytes(field, "offsets", offsets, node.length, sizeof(Offset)));
    BRIDGE_RETURN_NOT_OK(NeedBytes(field, "sizes", sizes, node.length, sizeof(Offset)));
    BRIDGE_ASSIGN_OR_RETURN(auto child, DecodeField(field.children[0]));
    for (int64_t i = 0; i < node.length; ++i) {
      if (!IsValid(validity, i)) continue;
      const int64_t offset = Load<Offset>(offsets.data, i);
      const int64_t size = Load<Offset>(sizes.data, i);
      if (offset < 0 || size < 0 || offset > child->length || size > child->length - offset) {
        return Bad(field, "list view ", i, " (offset ", offset, ", size ", size,
                   ") is outside the child's ", child->length, " values");
      }
    }
    out.buffers = {validity, offsets.data, sizes.data};
    out.children = {std::move(child)};
    return OkStatus();
  }

  Status DecodeFixedSizeList(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    BRIDGE_ASSIGN_OR_RETURN(auto child, DecodeField(field.children[0]));
    std::optional<int64_t> need = Multiply(node.length, field.type.fixed_size);
    if (!need.has_value() || child->length < *need) {
      return Bad(field, "child has ", child->length, " values, fewer than ", node.length,
                 " lists of ", field.type.fixed_size);
    }
    out.buffers = {validity};
    out.children = {std::move(child)};
    return OkStatus();
  }

  Status DecodeStruct(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    out.buffers = {validity};
    for (const FieldLayout& child_field : field.children) {
      BRIDGE_ASSIGN_OR_RETURN(auto child, DecodeField(child_field));
      if (child->length < node.length) {
        return Bad(child_field, "has ", child->length, " values, fewer than its parent's ",
                   node.length);
      }
      out.children.push_back(std::move(child));
    }
    return OkStatus();
  }

  Status DecodeUnion(const FieldLayout& field, const Node& node, ArrayData& out) {
    const bool dense = field.type.id == TypeId::kDenseUnion;
    if (body_.version < fb::MetadataVersion::V5) {
      // Before V5 unions had a validity bitmap, which the C Data Interface cannot carry.
      BRIDGE_RETURN_NOT_OK(NextBuffer(field, "validity", 1, out, false).status());
      if (node.null_count != 0) {
        return Bad(field, "a pre-V5 union with top-level nulls is not supported");
      }
    }
    out.null_count = 0;  // unions have no validity bitmap of their own
    BRIDGE_ASSIGN_OR_RETURN(BufferRef types, NextBuffer(field, "type ids", 1, out));
    BRIDGE_RETURN_NOT_OK(NeedBytes(field, "type ids", types, node.length, 1));
    BufferRef offsets;
    if (dense) {
      BRIDGE_ASSIGN_OR_RETURN(offsets, NextBuffer(field, "offsets", 4, out));
      BRIDGE_RETURN_NOT_OK(NeedBytes(field, "offsets", offsets, node.length, 4));
    }
    std::array<int, 128> child_of_code;
    child_of_code.fill(-1);
    for (size_t i = 0; i < field.type.type_codes.size(); ++i) {
      child_of_code[static_cast<size_t>(field.type.type_codes[i])] = static_cast<int>(i);
    }
    for (const FieldLayout& child_field : field.children) {
      BRIDGE_ASSIGN_OR_RETURN(auto child, DecodeField(child_field));
      if (!dense && child->length < node.length) {
        return Bad(child_field, "has ", child->length, " values, fewer than the sparse union's ",
                   node.length);
      }
      out.children.push_back(std::move(child));
    }
    for (int64_t i = 0; i < node.length; ++i) {
      const int8_t code = static_cast<int8_t>(types.data[i]);
      const int child = code < 0 ? -1 : child_of_code[static_cast<size_t>(code)];
      if (child < 0) return Bad(field, "type id ", int{code}, " at ", i, " is not the union's");
      if (dense) {
        const int32_t offset = Load<int32_t>(offsets.data, i);
        const int64_t child_length = out.children[static_cast<size_t>(child)]->length;
        if (offset < 0 || offset >= child_length) {
          return Bad(field, "offset ", offset, " at ", i, " is outside child ", child, " of ",
                     child_length, " values");
        }
      }
    }
    if (dense) {
      out.buffers = {types.data, offsets.data};
    } else {
      out.buffers = {types.data};
    }
    return OkStatus();
  }

  Status DecodeRunEndEncoded(const FieldLayout& field, const Node& node, ArrayData& out) {
    out.null_count = 0;  // nulls live in the values
    BRIDGE_ASSIGN_OR_RETURN(auto run_ends, DecodeField(field.children[0]));
    BRIDGE_ASSIGN_OR_RETURN(auto values, DecodeField(field.children[1]));
    const int64_t runs = run_ends->length;
    if (run_ends->null_count != 0) return Bad(field, "run ends contain nulls");
    if (values->length < runs) {
      return Bad(field, "values has ", values->length, " entries, fewer than the ", runs, " runs");
    }
    if (node.length > 0 && runs == 0) return Bad(field, "no runs for ", node.length, " values");
    const auto* ends = static_cast<const uint8_t*>(run_ends->buffers[1]);
    int64_t previous = 0;
    for (int64_t i = 0; i < runs; ++i) {
      int64_t end = 0;
      switch (field.children[0].type.id) {
        case TypeId::kInt16:
          end = Load<int16_t>(ends, i);
          break;
        case TypeId::kInt32:
          end = Load<int32_t>(ends, i);
          break;
        default:
          end = Load<int64_t>(ends, i);
          break;
      }
      if (end <= previous) {
        return Bad(field, "run end ", end, " at ", i, " is not greater than the one before (",
                   previous, ")");
      }
      previous = end;
    }
    if (runs > 0 && previous < node.length) {
      return Bad(field, "last run end ", previous, " < length ", node.length);
    }
    out.children = {std::move(run_ends), std::move(values)};
    return OkStatus();
  }

  Status DecodeIndices(const FieldLayout& field, const Node& node, ArrayData& out) {
    BRIDGE_ASSIGN_OR_RETURN(const uint8_t* validity, Validity(field, node, out));
    const int width = field.type.FixedBitWidth() / 8;
    BRIDGE_ASSIGN_OR_RETURN(BufferRef indices, NextBuffer(field, "indices", width, out));
    BRIDGE_RETURN_NOT_OK(NeedBytes(field, "indices", indices, node.length, width));
    auto it = body_.dictionaries->find(field.dictionary_id);
    if (it == body_.dictionaries->end() || it->second == nullptr) {
      return Bad(field, "dictionary ", field.dictionary_id, " has not been sent before its use");
    }
    const int64_t size = it->second->length;
    for (int64_t i = 0; i < node.length; ++i) {
      if (!IsValid(validity, i)) continue;  // null slots may hold anything
      int64_t index = 0;
      bool too_big = false;
      switch (field.type.id) {
        case TypeId::kInt8:
          index = Load<int8_t>(indices.data, i);
          break;
        case TypeId::kUInt8:
          index = Load<uint8_t>(indices.data, i);
          break;
        case TypeId::kInt16:
          index = Load<int16_t>(indices.data, i);
          break;
        case TypeId::kUInt16:
          index = Load<uint16_t>(indices.data, i);
          break;
        case TypeId::kInt32:
          index = Load<int32_t>(indices.data, i);
          break;
        case TypeId::kUInt32:
          index = Load<uint32_t>(indices.data, i);
          break;
        case TypeId::kInt64:
          index = Load<int64_t>(indices.data, i);
          break;
        default: {
          const uint64_t u = Load<uint64_t>(indices.data, i);
          too_big = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
          index = static_cast<int64_t>(u);
          break;
        }
      }
      if (too_big || index < 0 || index >= size) {
        return Bad(field, "dictionary index ",
                   too_big ? StrCat(Load<uint64_t>(indices.data, i)) : StrCat(index), " at ", i,
                   " is outside dictionary ", field.dictionary_id, " of ", size, " values");
      }
    }
    out.buffers = {validity, indices.data};
    out.dictionary = it->second;
    return OkStatus();
  }

  const BodyContext& body_;
  const flatbuffers::Vector<const fb::FieldNode*>* nodes_ = nullptr;
  const flatbuffers::Vector<const fb::Buffer*>* buffers_ = nullptr;
  const flatbuffers::Vector<int64_t>* variadic_ = nullptr;
  size_t n_nodes_ = 0;
  size_t n_buffers_ = 0;
  size_t n_variadic_ = 0;
  size_t node_index_ = 0;
  size_t buffer_index_ = 0;
  size_t variadic_index_ = 0;
  std::optional<Codec> codec_;
};

}  // namespace

OwnedArray ExportArray(std::shared_ptr<const ArrayData> data) {
  OwnedArray out;
  ExportInto(std::move(data), out.out());
  return out;
}

std::shared_ptr<const ArrayData> ImportArray(const ArrowArray& array,
                                             std::shared_ptr<const void> owner) {
  return ImportNode(array, owner);
}

Result<std::vector<std::shared_ptr<const ArrayData>>> DecodeColumns(
    std::span<const FieldLayout> fields, const BodyContext& body) {
  BodyDecoder decoder(body);
  return decoder.Run(fields);
}

}  // namespace bridge::ipc::internal
