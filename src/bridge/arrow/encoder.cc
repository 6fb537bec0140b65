#include "bridge/arrow/encoder.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <span>

#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/arrow/schema_encode_internal.h"

namespace bridge::ipc {

// Bodies are the arrays' buffers as they are in memory, and schemas declare Little endian.
static_assert(std::endian::native == std::endian::little,
              "the IPC encoder writes host-order buffers and declares them little-endian");

namespace {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
constexpr uint8_t kZeros[64] = {};
// The int64 uncompressed-length prefix -1 ("left uncompressed"), little-endian.
constexpr uint8_t kUncompressedPrefix[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

// `multiple` is a power of two (an alignment checked at Make), so no division is needed.
int64_t RoundUp(int64_t n, int64_t multiple) { return (n + multiple - 1) & -multiple; }

template <typename T>
T LoadAt(const void* base, int64_t index) {
  T value;
  std::memcpy(&value, static_cast<const uint8_t*>(base) + index * static_cast<int64_t>(sizeof(T)),
              sizeof(T));
  return value;
}

bool BitAt(const void* bits, int64_t i) {
  return (static_cast<const uint8_t*>(bits)[i >> 3] >> (i & 7)) & 1;
}

// Returns the number of set bits in bits [offset, offset + length). On x86-64 a clone using
// the POPCNT instruction is picked at load time where the CPU has it (the portable build
// would call libgcc's bit-twiddling __popcountdi2 per word).
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("popcnt", "default")))
#endif
int64_t
CountSetBits(const uint8_t* bits, int64_t offset, int64_t length) {
  int64_t count = 0;
  int64_t i = offset;
  const int64_t end = offset + length;
  for (; i < end && (i & 7) != 0; ++i) count += BitAt(bits, i);
  if (i >= end) return count;
  // Whole bytes from here: words of 64 bits, then bytes, then the bits of a last byte.
  const uint8_t* p = bits + (i >> 3);
  int64_t remaining = end - i;
  auto word = [](const uint8_t* at) {
    uint64_t w;
    std::memcpy(&w, at, sizeof(w));
    return std::popcount(w);
  };
  for (; remaining >= 256; remaining -= 256, p += 32) {
    count += word(p) + word(p + 8) + word(p + 16) + word(p + 24);
  }
  for (; remaining >= 64; remaining -= 64, p += 8) count += word(p);
  for (; remaining >= 8; remaining -= 8, ++p) count += std::popcount(static_cast<unsigned>(*p));
  if (remaining > 0) count += std::popcount(static_cast<unsigned>(*p) & ((1u << remaining) - 1));
  return count;
}

// Returns bits [offset, offset + length) of `bits` shifted to start at bit 0, unused bits of
// the last byte zeroed. Reads no byte past the one holding the last bit.
std::vector<uint8_t> CopyBitmap(const uint8_t* bits, int64_t offset, int64_t length) {
  const int64_t bytes = (length + 7) / 8;
  std::vector<uint8_t> out(static_cast<size_t>(bytes));
  const int shift = static_cast<int>(offset & 7);
  const uint8_t* src = bits + offset / 8;
  for (int64_t j = 0; j < bytes; ++j) {
    const int64_t nbits = std::min<int64_t>(8, length - 8 * j);
    unsigned value = static_cast<unsigned>(src[j]) >> shift;
    if (shift + nbits > 8) value |= static_cast<unsigned>(src[j + 1]) << (8 - shift);
    if (nbits < 8) value &= (1u << nbits) - 1;
    out[static_cast<size_t>(j)] = static_cast<uint8_t>(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Layout of each type in the C Data Interface

bool HasValidityBuffer(const FieldInfo& f) {
  if (f.dictionary_encoded()) return true;
  switch (f.type.id) {
    case TypeId::kNull:
    case TypeId::kDenseUnion:
    case TypeId::kSparseUnion:
    case TypeId::kRunEndEncoded:
      return false;
    default:
      return true;
  }
}

struct BufferCount {
  int64_t count;
  bool at_least;  // views: validity, views, variadic data buffers..., sizes
};

BufferCount BuffersOf(const FieldInfo& f) {
  if (f.dictionary_encoded()) return {2, false};
  switch (f.type.id) {
    case TypeId::kNull:
    case TypeId::kRunEndEncoded:
      return {0, false};
    case TypeId::kBinary:
    case TypeId::kUtf8:
    case TypeId::kLargeBinary:
    case TypeId::kLargeUtf8:
    case TypeId::kListView:
    case TypeId::kLargeListView:
      return {3, false};
    case TypeId::kBinaryView:
    case TypeId::kUtf8View:
      return {3, true};
    case TypeId::kFixedSizeList:
    case TypeId::kStruct:
    case TypeId::kSparseUnion:
      return {1, false};
    default:  // fixed width, bool, list, large list, map, dense union
      return {2, false};
  }
}

// Bytes per row in the widest per-row buffer (or the child multiplier of fixed-size lists):
// offset + length times this must fit int64.
int64_t RowWidth(const FieldInfo& f) {
  const DataType& t = f.type;
  int64_t width = std::max<int64_t>(8, t.FixedBitWidth() / 8);
  if (t.id == TypeId::kBinaryView || t.id == TypeId::kUtf8View) width = 16;
  if (t.id == TypeId::kFixedSizeList) width = std::max<int64_t>(width, t.fixed_size);
  return width;
}

// What encoding needs to know of a field, worked out once at Make rather than for every
// array of every batch: its FieldInfo and the facts of its C Data Interface layout. Mirrors
// the FieldInfo tree, which must outlive it (both belong to the encoder's state).
struct FieldLayout {
  explicit FieldLayout(const FieldInfo& field)
      : info(field),
        type(field.type),
        dictionary_encoded(field.dictionary_encoded()),
        has_validity(HasValidityBuffer(field)),
        buffers(BuffersOf(field)),
        row_width(RowWidth(field)),
        value_bytes(field.type.FixedBitWidth() / 8),
        num_children(static_cast<int64_t>(field.children.size())) {
    children.reserve(field.children.size());
    for (const FieldInfo& child : field.children) children.emplace_back(child);
    if (field.dictionary != nullptr) dictionary = std::make_unique<FieldLayout>(*field.dictionary);
  }

  const FieldInfo& info;
  const DataType& type;  // info.type (for dictionary-encoded fields: the index type)
  bool dictionary_encoded;
  bool has_validity;  // HasValidityBuffer
  BufferCount buffers;
  int64_t row_width;                        // RowWidth
  int64_t value_bytes;                      // FixedBitWidth() / 8
  int64_t num_children;                     // info.children.size()
  std::vector<FieldLayout> children;        // of info.children
  std::unique_ptr<FieldLayout> dictionary;  // of info.dictionary: the value type
};

// Where in the stream an error happened: the batch and, while a dictionary is encoded, its
// id. Formatted only when there is an error to report.
struct Context {
  int64_t batch = 0;
  int64_t dictionary_id = -1;

  std::string ToString() const {
    if (dictionary_id < 0) return StrCat("ipc: batch ", batch);
    return StrCat("ipc: batch ", batch, ", dictionary ", dictionary_id);
  }
};

// Error paths are kept out of line (and out of the hot code's registers and cache lines).
template <typename... Args>
[[gnu::cold, gnu::noinline]] Status BadArray(const Context& context, const FieldLayout& f,
                                             const Args&... args) {
  return InvalidArgument(context.ToString(), ", field '", f.info.path, "': ", args...);
}

// What is wrong with an array, as CheckStructure finds it.
enum class StructureError {
  kNone,
  kReleased,
  kNegative,
  kTooLarge,
  kNullCount,
  kBufferCount,
  kBuffersNull,
  kChildCount,
  kChildrenNull,
  kChildNull,
  kDictionary,
  kNoValidityBitmap,
};

// Returns the first thing wrong with `a` as an array of `f` that can be seen without looking
// at the rows (release, lengths, null count, buffer and child counts, dictionary presence),
// or kNone. Inlined: it runs for every array of every batch.
[[gnu::always_inline]] inline StructureError FindStructureError(const FieldLayout& f,
                                                                const ArrowArray& a) {
  if (a.release == nullptr) return StructureError::kReleased;
  if (a.length < 0 || a.offset < 0) return StructureError::kNegative;
  int64_t end = 0;
  if (__builtin_add_overflow(a.offset, a.length, &end) ||
      __builtin_mul_overflow(end + 1, f.row_width, &end)) {
    return StructureError::kTooLarge;
  }
  if (a.null_count < -1 || a.null_count > a.length) return StructureError::kNullCount;
  const BufferCount buffers = f.buffers;
  const bool buffers_ok = buffers.at_least ? a.n_buffers >= buffers.count
                                           : a.n_buffers == buffers.count ||
                                                 (f.type.id == TypeId::kNull &&
                                                  !f.dictionary_encoded && a.n_buffers == 1);
  if (!buffers_ok) return StructureError::kBufferCount;
  if (a.n_buffers > 0 && a.buffers == nullptr) return StructureError::kBuffersNull;
  const int64_t children = f.num_children;
  if (a.n_children != children) return StructureError::kChildCount;
  if (children > 0 && a.children == nullptr) return StructureError::kChildrenNull;
  for (int64_t i = 0; i < children; ++i) {
    if (a.children[i] == nullptr) return StructureError::kChildNull;
  }
  if (f.dictionary_encoded != (a.dictionary != nullptr)) return StructureError::kDictionary;
  if (f.has_validity && a.null_count > 0 && a.buffers[0] == nullptr) {
    return StructureError::kNoValidityBitmap;
  }
  return StructureError::kNone;
}

// Returns the InvalidArgument that describes `error`, found in `a`.
[[gnu::cold, gnu::noinline]] Status StructureErrorStatus(StructureError error,
                                                         const Context& context,
                                                         const FieldLayout& f,
                                                         const ArrowArray& a) {
  switch (error) {
    case StructureError::kNone:
      break;
    case StructureError::kReleased:
      return BadArray(context, f, "array is released");
    case StructureError::kNegative:
      return BadArray(context, f, "negative length ", a.length, " or offset ", a.offset);
    case StructureError::kTooLarge:
      return BadArray(context, f, "offset ", a.offset, " + length ", a.length, " is too large");
    case StructureError::kNullCount:
      return BadArray(context, f, "null_count ", a.null_count, " is not within [-1, length ",
                      a.length, "]");
    case StructureError::kBufferCount:
      return BadArray(context, f, "array has ", a.n_buffers, " buffers, type ",
                      f.dictionary_encoded ? "dictionary indices" : TypeName(f.type), " has ",
                      f.buffers.at_least ? "at least " : "", f.buffers.count);
    case StructureError::kBuffersNull:
      return BadArray(context, f, "buffers are null");
    case StructureError::kChildCount:
      return BadArray(context, f, "array has ", a.n_children, " children, the schema has ",
                      f.num_children);
    case StructureError::kChildrenNull:
      return BadArray(context, f, "children are null");
    case StructureError::kChildNull:
      for (int64_t i = 0; i < a.n_children; ++i) {
        if (a.children[i] == nullptr) return BadArray(context, f, "child ", i, " is null");
      }
      break;
    case StructureError::kDictionary:
      return BadArray(context, f,
                      f.dictionary_encoded ? "array has no dictionary, the schema has one"
                                           : "array has a dictionary, the schema has none");
    case StructureError::kNoValidityBitmap:
      return BadArray(context, f, "null_count is ", a.null_count,
                      " but there is no validity bitmap");
  }
  return Internal(context.ToString(), ", field '", f.info.path, "': inconsistent check");
}

// Checks what can be checked of `a` against `f` without looking at the rows (see
// FindStructureError); returns InvalidArgument naming the batch, field and problem.
[[gnu::always_inline]] inline Status CheckStructure(const Context& context, const FieldLayout& f,
                                                    const ArrowArray& a) {
  const StructureError error = FindStructureError(f, a);
  if (error == StructureError::kNone) [[likely]]
    return OkStatus();
  return StructureErrorStatus(error, context, f, a);
}

// Returns the nulls among rows [start, start + length) of `a` (a type with a validity bitmap).
int64_t NullCount(const ArrowArray& a, int64_t start, int64_t length) {
  const void* bits = a.buffers[0];
  if (bits == nullptr || a.null_count == 0 || length == 0) return 0;
  if (start == 0 && length == a.length && a.null_count > 0) return a.null_count;
  return length - CountSetBits(static_cast<const uint8_t*>(bits), a.offset + start, length);
}

// ---------------------------------------------------------------------------------------
// Message bodies

// The batch a message's body points into, shared by the messages made from it.
struct BatchHolder {
  explicit BatchHolder(OwnedArray a) : array(std::move(a)) {}
  OwnedArray array;
};

// Bytes made by the encoder for one message (copies, compressed frames). Moving a vector
// keeps its heap block, so pointers into the elements stay valid as this vector grows and
// when it moves into a MessageStorage.
using OwnedBytes = std::vector<std::vector<uint8_t>>;

// What an EncodedMessage's keep_alive owns when the encoder made bytes for it. A message
// that only points into its batch (the usual case) shares the BatchHolder itself instead,
// which saves an allocation per message.
struct MessageStorage {
  std::shared_ptr<const BatchHolder> batch;
  OwnedBytes owned;
};

// Which optional parts a RecordBatch message's flatbuffer has and how long its vectors are:
// everything that decides where a FlatBufferBuilder puts each value. (A builder leaves out a
// scalar equal to its default, so a zero length or body length changes the layout; the
// compression field is present or not for all of an encoder's messages.)
struct RecordBatchShape {
  size_t nodes = 0;
  size_t buffers = 0;
  size_t variadic_counts = 0;
  bool has_length = false;
  bool has_body_length = false;
  bool operator==(const RecordBatchShape&) const = default;
};

// The metadata of a RecordBatch message built with a FlatBufferBuilder, and the offsets in
// it of the values that change from batch to batch. A builder lays a message out from the
// sequence of calls and the shape alone, never from the values, so the metadata of another
// batch of the same shape is this one with its values written over: the bytes the builder
// would make, for a copy and a few stores (building them was most of the per-batch cost).
struct RecordBatchTemplate {
  RecordBatchShape shape;
  std::string metadata;  // empty until the first record batch
  size_t flatbuffer_size = 0;
  size_t length_at = 0;       // RecordBatch.length, if shape.has_length
  size_t body_length_at = 0;  // Message.bodyLength, if shape.has_body_length
  size_t nodes_at = 0;
  size_t buffers_at = 0;
  size_t variadic_counts_at = 0;
};

// A list of trivially copyable values that keeps its memory from one message to the next
// (clear() keeps the capacity) and grows out of line, so that appending is a compare and a
// store.
template <typename T>
class ReusedList {
 public:
  void clear() { size_ = 0; }
  [[gnu::always_inline]] void push_back(const T& value) {
    if (size_ == storage_.size()) [[unlikely]]
      Grow();
    storage_[size_++] = value;
  }
  const T* data() const { return storage_.data(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  [[gnu::noinline]] void Grow() { storage_.resize(std::max<size_t>(16, 2 * storage_.size())); }

  std::vector<T> storage_;
  size_t size_ = 0;
};

// What an encoder reuses from one message to the next, so that the per-message work does
// not allocate for it: the flatbuffer under construction, the lists of field nodes, buffers,
// variadic buffer counts and body segments, and the last record batch's metadata.
struct MessageScratch {
  flatbuffers::FlatBufferBuilder fbb{1024};
  ReusedList<fb::FieldNode> nodes;
  ReusedList<fb::Buffer> buffers;
  ReusedList<int64_t> variadic_counts;
  ReusedList<Segment> segments;
  RecordBatchTemplate record_batch;
};

// Accumulates the field nodes, buffer descriptions and segments of one message body. The
// lists are `scratch`'s (cleared here), so only one BodyWriter may use a MessageScratch at a
// time.
class BodyWriter {
 public:
  BodyWriter(const EncodeOptions& options, MessageScratch& scratch)
      : options_(options),
        alignment_(options.alignment),
        nodes_(scratch.nodes),
        buffers_(scratch.buffers),
        variadic_counts_(scratch.variadic_counts),
        segments_(scratch.segments) {
    nodes_.clear();
    buffers_.clear();
    variadic_counts_.clear();
    segments_.clear();
  }

  void AddNode(int64_t length, int64_t null_count) {
    nodes_.push_back(fb::FieldNode(length, null_count));
  }
  void AddVariadicCount(int64_t count) { variadic_counts_.push_back(count); }

  // Adds a buffer of `size` bytes at `data` (which must outlive the message: a batch buffer,
  // owned storage or static memory), compressed if the options say so, then padding. A
  // compression failure is kept for status().
  [[gnu::always_inline]] void AddBuffer(const uint8_t* data, int64_t size) {
    BRIDGE_DCHECK(size >= 0);
    if (options_.codec != Codec::kNone && size > 0) {
      AddCompressed(data, size);
      return;
    }
    buffers_.push_back(fb::Buffer(offset_, size));
    Append(data, size);
    Pad();
  }

  // Adds a buffer of no bytes (an omitted validity bitmap, an empty data buffer): the same
  // as AddBuffer(nullptr, 0), without the work. The body stays aligned; no padding follows.
  [[gnu::always_inline]] void AddEmptyBuffer() {
    BRIDGE_DCHECK(offset_ % alignment_ == 0);
    buffers_.push_back(fb::Buffer(offset_, 0));
  }

  // Adds a buffer the encoder had to make (counted in copied_bytes).
  void AddCopy(std::vector<uint8_t> bytes) {
    const int64_t size = static_cast<int64_t>(bytes.size());
    copied_bytes_ += size;
    AddBuffer(Own(std::move(bytes)), size);
  }

  const ReusedList<fb::FieldNode>& nodes() const { return nodes_; }
  const ReusedList<fb::Buffer>& buffers() const { return buffers_; }
  const ReusedList<int64_t>& variadic_counts() const { return variadic_counts_; }
  const ReusedList<Segment>& segments() const { return segments_; }
  OwnedBytes& owned() { return owned_; }
  int64_t body_length() const { return offset_; }
  int64_t copied_bytes() const { return copied_bytes_; }
  // Internal if compressing a buffer failed (the body is then not to be used), else OK.
  const Status& status() const { return status_; }

 private:
  [[gnu::always_inline]] void Append(const uint8_t* data, int64_t size) {
    if (size == 0) return;
    segments_.push_back(Segment{data, static_cast<size_t>(size)});
    offset_ += size;
  }
  [[gnu::always_inline]] void Pad() { Append(kZeros, RoundUp(offset_, alignment_) - offset_); }

  // AddBuffer with a codec: the int64 uncompressed length and one frame, or length -1 and
  // the raw bytes when the frame would not be smaller. Kept apart so that AddBuffer stays
  // small enough to inline.
  [[gnu::noinline]] void AddCompressed(const uint8_t* data, int64_t size) {
    const int64_t start = offset_;
    std::vector<uint8_t> frame(sizeof(int64_t));
    Status compressed =
        Compress(options_.codec, std::span<const uint8_t>(data, static_cast<size_t>(size)), &frame,
                 options_.level);
    if (!compressed.ok() && status_.ok()) status_ = std::move(compressed);
    const int64_t frame_size = static_cast<int64_t>(frame.size());
    if (status_.ok() && frame_size - static_cast<int64_t>(sizeof(int64_t)) < size) {
      std::memcpy(frame.data(), &size, sizeof(size));
      Append(Own(std::move(frame)), frame_size);
    } else {
      // Compression does not pay: length -1 and the raw bytes, still zero copy.
      Append(kUncompressedPrefix, sizeof(kUncompressedPrefix));
      Append(data, size);
    }
    buffers_.push_back(fb::Buffer(start, offset_ - start));
    Pad();
  }
  const uint8_t* Own(std::vector<uint8_t> bytes) {
    owned_.push_back(std::move(bytes));
    return owned_.back().data();
  }

  const EncodeOptions& options_;
  const int64_t alignment_;
  ReusedList<fb::FieldNode>& nodes_;
  ReusedList<fb::Buffer>& buffers_;
  ReusedList<int64_t>& variadic_counts_;
  ReusedList<Segment>& segments_;
  OwnedBytes owned_;
  int64_t offset_ = 0;
  int64_t copied_bytes_ = 0;
  Status status_;
};

// Walks arrays depth-first and writes their field nodes and buffers into a BodyWriter.
class ArrayEncoder {
 public:
  ArrayEncoder(const Context& context, BodyWriter& body) : context_(context), body_(body) {}

  // Encodes rows [start, start + length) of `a` (counted from a.offset) and everything they
  // reference below.
  Status Encode(const FieldLayout& f, const ArrowArray& a, int64_t start, int64_t length) {
    BRIDGE_RETURN_NOT_OK(CheckStructure(context_, f, a));
    if (start < 0 || length < 0 || start > a.length - length) {
      return Bad(f, "rows [", start, ", ", start + length, ") are outside the array's length ",
                 a.length);
    }
    const int64_t phys = a.offset + start;
    const DataType& t = f.type;
    if (!f.has_validity) {
      // The null type's nodes count every row as null; V5 unions and run-end encoded arrays
      // have no nulls of their own.
      body_.AddNode(length, t.id == TypeId::kNull ? length : 0);
    } else {
      const int64_t nulls = NullCount(a, start, length);
      body_.AddNode(length, nulls);
      if (nulls == 0) {
        body_.AddEmptyBuffer();
      } else {
        BRIDGE_RETURN_NOT_OK(EncodeBitmap(f, a.buffers[0], phys, length));
      }
    }
    if (f.dictionary_encoded) return EncodeFixed(f, a.buffers[1], phys, length, f.value_bytes);

    switch (t.id) {
      case TypeId::kNull:
        return OkStatus();
      case TypeId::kBool:
        return EncodeBitmap(f, a.buffers[1], phys, length);
      case TypeId::kBinary:
      case TypeId::kUtf8:
        return EncodeBinary<int32_t>(f, a, phys, length);
      case TypeId::kLargeBinary:
      case TypeId::kLargeUtf8:
        return EncodeBinary<int64_t>(f, a, phys, length);
      case TypeId::kBinaryView:
      case TypeId::kUtf8View:
        return EncodeViews(f, a, phys, length);
      case TypeId::kList:
      case TypeId::kMap:
        return EncodeList<int32_t>(f, a, phys, length);
      case TypeId::kLargeList:
        return EncodeList<int64_t>(f, a, phys, length);
      case TypeId::kListView:
        return EncodeListView(f, a, phys, length, sizeof(int32_t));
      case TypeId::kLargeListView:
        return EncodeListView(f, a, phys, length, sizeof(int64_t));
      case TypeId::kFixedSizeList:
        return Encode(f.children[0], *a.children[0], phys * t.fixed_size, length * t.fixed_size);
      case TypeId::kStruct:
        for (size_t i = 0; i < f.children.size(); ++i) {
          BRIDGE_RETURN_NOT_OK(Encode(f.children[i], *a.children[i], phys, length));
        }
        return OkStatus();
      case TypeId::kSparseUnion:
        BRIDGE_RETURN_NOT_OK(EncodeFixed(f, a.buffers[0], phys, length, 1));
        for (size_t i = 0; i < f.children.size(); ++i) {
          BRIDGE_RETURN_NOT_OK(Encode(f.children[i], *a.children[i], phys, length));
        }
        return OkStatus();
      case TypeId::kDenseUnion:
        // The offsets point anywhere into the children, so the children are sent whole.
        BRIDGE_RETURN_NOT_OK(EncodeFixed(f, a.buffers[0], phys, length, 1));
        BRIDGE_RETURN_NOT_OK(EncodeFixed(f, a.buffers[1], phys, length, sizeof(int32_t)));
        for (size_t i = 0; i < f.children.size(); ++i) {
          const ArrowArray& child = *a.children[i];
          BRIDGE_RETURN_NOT_OK(Encode(f.children[i], child, 0, child.length));
        }
        return OkStatus();
      case TypeId::kRunEndEncoded:
        return EncodeRunEndEncoded(f, a, phys, length);
      default:
        return EncodeFixed(f, a.buffers[1], phys, length, f.value_bytes);
    }
  }

 private:
  template <typename... Args>
  [[gnu::cold, gnu::noinline]] Status Bad(const FieldLayout& f, const Args&... args) const {
    return BadArray(context_, f, args...);
  }

  [[gnu::always_inline]] Status EncodeFixed(const FieldLayout& f, const void* data, int64_t phys,
                                            int64_t length, int64_t width) {
    const int64_t size = length * width;
    if (size == 0) {
      body_.AddEmptyBuffer();
      return OkStatus();
    }
    if (data == nullptr) return Bad(f, "a data buffer is null");
    body_.AddBuffer(static_cast<const uint8_t*>(data) + phys * width, size);
    return OkStatus();
  }

  // A bitmap at bit offset `phys`: a sub-range of the source when it starts on a byte
  // boundary; otherwise the one copy the encoder makes of bitmaps, shifted to bit 0.
  Status EncodeBitmap(const FieldLayout& f, const void* bits, int64_t phys, int64_t length) {
    if (length == 0) {
      body_.AddEmptyBuffer();
      return OkStatus();
    }
    if (bits == nullptr) return Bad(f, "a bitmap buffer is null");
    const auto* bytes = static_cast<const uint8_t*>(bits);
    if (phys % 8 == 0) {
      body_.AddBuffer(bytes + phys / 8, (length + 7) / 8);
      return OkStatus();
    }
    body_.AddCopy(CopyBitmap(bytes, phys, length));
    return OkStatus();
  }

  // Writes the offsets of rows [phys, phys + length) starting at 0 and returns the range
  // [*first, *last) of data (or child rows) they cover. Offsets that already start at 0 are
  // a sub-range of the source; others (sliced arrays) are copied, rebased, as the spec
  // recommends.
  template <typename Offset>
  Status EncodeOffsets(const FieldLayout& f, const ArrowArray& a, int64_t phys, int64_t length,
                       int64_t* first, int64_t* last) {
    *first = *last = 0;
    if (length == 0) {
      body_.AddBuffer(kZeros, sizeof(Offset));  // the one offset, 0
      return OkStatus();
    }
    const void* offsets = a.buffers[1];
    if (offsets == nullptr) return Bad(f, "the offsets buffer is null");
    const Offset begin = LoadAt<Offset>(offsets, phys);
    const Offset end = LoadAt<Offset>(offsets, phys + length);
    if (begin < 0 || end < begin) {
      return Bad(f, "offsets of rows [", phys - a.offset, ", ", phys - a.offset + length,
                 ") run from ", begin, " to ", end);
    }
    *first = begin;
    *last = end;
    const int64_t size = (length + 1) * static_cast<int64_t>(sizeof(Offset));
    if (begin == 0) {
      body_.AddBuffer(static_cast<const uint8_t*>(offsets) + phys * sizeof(Offset), size);
      return OkStatus();
    }
    std::vector<uint8_t> rebased(static_cast<size_t>(size));
    for (int64_t i = 0; i <= length; ++i) {
      const Offset value = static_cast<Offset>(LoadAt<Offset>(offsets, phys + i) - begin);
      std::memcpy(rebased.data() + i * sizeof(Offset), &value, sizeof(Offset));
    }
    body_.AddCopy(std::move(rebased));
    return OkStatus();
  }

  template <typename Offset>
  Status EncodeBinary(const FieldLayout& f, const ArrowArray& a, int64_t phys, int64_t length) {
    int64_t first = 0;
    int64_t last = 0;
    BRIDGE_RETURN_NOT_OK(EncodeOffsets<Offset>(f, a, phys, length, &first, &last));
    if (last == first) {
      body_.AddEmptyBuffer();
      return OkStatus();
    }
    if (a.buffers[2] == nullptr) return Bad(f, "the data buffer is null");
    body_.AddBuffer(static_cast<const uint8_t*>(a.buffers[2]) + first, last - first);
    return OkStatus();
  }

  template <typename Offset>
  Status EncodeList(const FieldLayout& f, const ArrowArray& a, int64_t phys, int64_t length) {
    int64_t first = 0;
    int64_t last = 0;
    BRIDGE_RETURN_NOT_OK(EncodeOffsets<Offset>(f, a, phys, length, &first, &last));
    return Encode(f.children[0], *a.children[0], first, last - first);
  }

  // List views: offsets and sizes are sub-ranges; they may point anywhere into the child,
  // so the child is sent whole.
  Status EncodeListView(const FieldLayout& f, const ArrowArray& a, int64_t phys, int64_t length,
                        int64_t width) {
    BRIDGE_RETURN_NOT_OK(EncodeFixed(f, a.buffers[1], phys, length, width));
    BRIDGE_RETURN_NOT_OK(EncodeFixed(f, a.buffers[2], phys, length, width));
    const ArrowArray& child = *a.children[0];
    return Encode(f.children[0], child, 0, child.length);
  }

  // utf8_view / binary_view: the views of the rows, then every variadic data buffer whole
  // (their sizes come from the C Data Interface's trailing sizes buffer, which IPC does not
  // carry; the count goes into variadicBufferCounts).
  Status EncodeViews(const FieldLayout& f, const ArrowArray& a, int64_t phys, int64_t length) {
    BRIDGE_RETURN_NOT_OK(EncodeFixed(f, a.buffers[1], phys, length, 16));
    const int64_t data_buffers = a.n_buffers - 3;
    const void* sizes = a.buffers[a.n_buffers - 1];
    if (data_buffers > 0 && sizes == nullptr) return Bad(f, "the variadic sizes buffer is null");
    body_.AddVariadicCount(data_buffers);
    for (int64_t k = 0; k < data_buffers; ++k) {
      const int64_t size = LoadAt<int64_t>(sizes, k);
      const void* data = a.buffers[2 + k];
      if (size < 0 || (size > 0 && data == nullptr)) {
        return Bad(f, "variadic buffer ", k, " has size ", size, " and address ", data);
      }
      body_.AddBuffer(static_cast<const uint8_t*>(data), size);
    }
    return OkStatus();
  }

  // Run-end encoded: the runs that cover rows [phys, phys + length). Run ends are positions
  // in the parent's rows, so unless the rows start at 0 and the last run ends exactly at
  // `length`, they are copied, shifted and clipped (IPC arrays have no offset).
  Status EncodeRunEndEncoded(const FieldLayout& f, const ArrowArray& a, int64_t phys,
                             int64_t length) {
    const FieldLayout& ends_field = f.children[0];
    const FieldLayout& values_field = f.children[1];
    const ArrowArray& ends = *a.children[0];
    const ArrowArray& values = *a.children[1];
    if (length == 0) {
      BRIDGE_RETURN_NOT_OK(Encode(ends_field, ends, 0, 0));
      return Encode(values_field, values, 0, 0);
    }
    BRIDGE_RETURN_NOT_OK(CheckStructure(context_, ends_field, ends));
    const int64_t runs = ends.length;
    const void* data = ends.buffers[1];
    if (runs > 0 && data == nullptr) return Bad(ends_field, "the run ends buffer is null");
    const int width = static_cast<int>(ends_field.value_bytes);
    auto end_of_run = [&](int64_t r) -> int64_t {
      const int64_t i = ends.offset + r;
      switch (width) {
        case 2:
          return LoadAt<int16_t>(data, i);
        case 4:
          return LoadAt<int32_t>(data, i);
        default:
          return LoadAt<int64_t>(data, i);
      }
    };
    // First run ending after row `phys`, and the run holding the last row.
    int64_t lo = 0;
    int64_t hi = runs;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (end_of_run(mid) <= phys)
        lo = mid + 1;
      else
        hi = mid;
    }
    const int64_t first_run = lo;
    hi = runs;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (end_of_run(mid) < phys + length)
        lo = mid + 1;
      else
        hi = mid;
    }
    const int64_t last_run = lo;
    if (last_run >= runs) {
      return Bad(f, "run ends stop before row ", phys - a.offset + length, " of ", a.length);
    }
    const int64_t used = last_run - first_run + 1;
    if (phys == 0 && first_run == 0 && end_of_run(last_run) == length) {
      BRIDGE_RETURN_NOT_OK(Encode(ends_field, ends, 0, used));
    } else {
      body_.AddNode(used, 0);
      body_.AddEmptyBuffer();
      std::vector<uint8_t> shifted(static_cast<size_t>(used * width));
      for (int64_t r = 0; r < used; ++r) {
        const int64_t end = std::min(end_of_run(first_run + r) - phys, length);
        switch (width) {
          case 2: {
            const auto v = static_cast<int16_t>(end);
            std::memcpy(shifted.data() + r * width, &v, sizeof(v));
            break;
          }
          case 4: {
            const auto v = static_cast<int32_t>(end);
            std::memcpy(shifted.data() + r * width, &v, sizeof(v));
            break;
          }
          default:
            std::memcpy(shifted.data() + r * width, &end, sizeof(end));
        }
      }
      body_.AddCopy(std::move(shifted));
    }
    return Encode(values_field, values, first_run, used);
  }

  const Context& context_;
  BodyWriter& body_;
};

// ---------------------------------------------------------------------------------------
// Dictionary comparison: does a dictionary hold the same values as the one sent before?

bool ValidAt(const ArrowArray& a, int64_t phys) {
  return a.buffers[0] == nullptr || a.null_count == 0 || BitAt(a.buffers[0], phys);
}

// Returns the dictionary index at `phys` of an integer array, or -1 when it is negative or
// beyond int64.
int64_t IndexAt(const DataType& t, const void* data, int64_t phys) {
  switch (t.id) {
    case TypeId::kInt8:
      return LoadAt<int8_t>(data, phys);
    case TypeId::kUInt8:
      return LoadAt<uint8_t>(data, phys);
    case TypeId::kInt16:
      return LoadAt<int16_t>(data, phys);
    case TypeId::kUInt16:
      return LoadAt<uint16_t>(data, phys);
    case TypeId::kInt32:
      return LoadAt<int32_t>(data, phys);
    case TypeId::kUInt32:
      return LoadAt<uint32_t>(data, phys);
    case TypeId::kInt64:
      return LoadAt<int64_t>(data, phys);
    case TypeId::kUInt64: {
      const uint64_t v = LoadAt<uint64_t>(data, phys);
      return v > static_cast<uint64_t>(kMaxInt64) ? -1 : static_cast<int64_t>(v);
    }
    default:
      return -1;
  }
}

struct ValueBytes {
  const uint8_t* data = nullptr;
  int64_t size = -1;  // -1: inconsistent
  bool operator==(const ValueBytes& o) const {
    return size >= 0 && size == o.size && (size == 0 || std::memcmp(data, o.data, size) == 0);
  }
};

template <typename Offset>
ValueBytes BinaryAt(const ArrowArray& a, int64_t phys) {
  const Offset begin = LoadAt<Offset>(a.buffers[1], phys);
  const Offset end = LoadAt<Offset>(a.buffers[1], phys + 1);
  if (begin < 0 || end < begin || (end > begin && a.buffers[2] == nullptr)) return {};
  return {static_cast<const uint8_t*>(a.buffers[2]) + begin, end - begin};
}

ValueBytes ViewAt(const ArrowArray& a, int64_t phys) {
  const auto* view = static_cast<const uint8_t*>(a.buffers[1]) + phys * 16;
  const int32_t size = LoadAt<int32_t>(view, 0);
  if (size < 0) return {};
  if (size <= 12) return {view + 4, size};
  const int32_t buffer = LoadAt<int32_t>(view + 8, 0);
  const int32_t offset = LoadAt<int32_t>(view + 12, 0);
  const int64_t data_buffers = a.n_buffers - 3;
  if (buffer < 0 || buffer >= data_buffers || offset < 0) return {};
  const int64_t buffer_size = LoadAt<int64_t>(a.buffers[a.n_buffers - 1], buffer);
  if (static_cast<int64_t>(offset) + size > buffer_size || a.buffers[2 + buffer] == nullptr) {
    return {};
  }
  return {static_cast<const uint8_t*>(a.buffers[2 + buffer]) + offset, size};
}

// Child range [offset, offset + size) of a list-like row, or size -1 when inconsistent.
struct ChildRange {
  int64_t offset = 0;
  int64_t size = -1;
};

ChildRange ListAt(const FieldInfo& f, const ArrowArray& a, int64_t phys) {
  int64_t begin = 0;
  int64_t end = 0;
  switch (f.type.id) {
    case TypeId::kList:
    case TypeId::kMap:
      begin = LoadAt<int32_t>(a.buffers[1], phys);
      end = LoadAt<int32_t>(a.buffers[1], phys + 1);
      break;
    case TypeId::kLargeList:
      begin = LoadAt<int64_t>(a.buffers[1], phys);
      end = LoadAt<int64_t>(a.buffers[1], phys + 1);
      break;
    case TypeId::kListView:
      begin = LoadAt<int32_t>(a.buffers[1], phys);
      end = begin + LoadAt<int32_t>(a.buffers[2], phys);
      break;
    case TypeId::kLargeListView:
      begin = LoadAt<int64_t>(a.buffers[1], phys);
      end = begin + LoadAt<int64_t>(a.buffers[2], phys);
      break;
    default:
      return {};
  }
  if (begin < 0 || end < begin) return {};
  return {begin, end - begin};
}

// Index of the child of union `f` holding `type_code`, or -1.
int64_t UnionChild(const FieldInfo& f, int8_t type_code) {
  const auto& codes = f.type.type_codes;
  const auto it = std::find(codes.begin(), codes.end(), type_code);
  return it == codes.end() ? -1 : it - codes.begin();
}

// Index in the values of the run holding row `phys` of run-end encoded `a`, or -1.
int64_t RunAt(const FieldInfo& f, const ArrowArray& a, int64_t phys) {
  const ArrowArray& ends = *a.children[0];
  const int width = f.children[0].type.FixedBitWidth() / 8;
  if (ends.length > 0 && ends.buffers[1] == nullptr) return -1;
  auto end_of_run = [&](int64_t r) -> int64_t {
    const int64_t i = ends.offset + r;
    if (width == 2) return LoadAt<int16_t>(ends.buffers[1], i);
    if (width == 4) return LoadAt<int32_t>(ends.buffers[1], i);
    return LoadAt<int64_t>(ends.buffers[1], i);
  };
  int64_t lo = 0;
  int64_t hi = ends.length;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (end_of_run(mid) <= phys)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < ends.length ? lo : -1;
}

// Returns whether rows [as, as + n) of `a` and [bs, bs + n) of `b` (counted from their
// offsets; arrays of `f`'s type whose structure CheckStructure accepted) hold the same
// values. Inconsistent arrays compare unequal. Floating point values compare bitwise.
bool ValuesEqual(const FieldInfo& f, const ArrowArray& a, int64_t as, const ArrowArray& b,
                 int64_t bs, int64_t n) {
  if (n == 0) return true;
  if (as < 0 || bs < 0 || n < 0 || as > a.length - n || bs > b.length - n) return false;
  const DataType& t = f.type;
  if (!f.dictionary_encoded() && t.id == TypeId::kNull) return true;
  const int64_t pa = a.offset + as;
  const int64_t pb = b.offset + bs;
  const bool may_have_nulls =
      HasValidityBuffer(f) && ((a.buffers[0] != nullptr && a.null_count != 0) ||
                               (b.buffers[0] != nullptr && b.null_count != 0));
  if (may_have_nulls) {
    for (int64_t i = 0; i < n; ++i) {
      if (ValidAt(a, pa + i) != ValidAt(b, pb + i)) return false;
    }
  }
  auto valid = [&](int64_t i) { return !may_have_nulls || ValidAt(a, pa + i); };
  auto each_valid = [&](auto&& same) {
    for (int64_t i = 0; i < n; ++i) {
      if (valid(i) && !same(i)) return false;
    }
    return true;
  };

  if (f.dictionary_encoded()) {
    return each_valid([&](int64_t i) {
      const int64_t ia = IndexAt(t, a.buffers[1], pa + i);
      const int64_t ib = IndexAt(t, b.buffers[1], pb + i);
      return ia >= 0 && ib >= 0 &&
             ValuesEqual(*f.dictionary, *a.dictionary, ia, *b.dictionary, ib, 1);
    });
  }
  switch (t.id) {
    case TypeId::kBool:
      return each_valid(
          [&](int64_t i) { return BitAt(a.buffers[1], pa + i) == BitAt(b.buffers[1], pb + i); });
    case TypeId::kBinary:
    case TypeId::kUtf8:
      return each_valid(
          [&](int64_t i) { return BinaryAt<int32_t>(a, pa + i) == BinaryAt<int32_t>(b, pb + i); });
    case TypeId::kLargeBinary:
    case TypeId::kLargeUtf8:
      return each_valid(
          [&](int64_t i) { return BinaryAt<int64_t>(a, pa + i) == BinaryAt<int64_t>(b, pb + i); });
    case TypeId::kBinaryView:
    case TypeId::kUtf8View:
      return each_valid([&](int64_t i) { return ViewAt(a, pa + i) == ViewAt(b, pb + i); });
    case TypeId::kList:
    case TypeId::kLargeList:
    case TypeId::kMap:
    case TypeId::kListView:
    case TypeId::kLargeListView:
      return each_valid([&](int64_t i) {
        const ChildRange ra = ListAt(f, a, pa + i);
        const ChildRange rb = ListAt(f, b, pb + i);
        return ra.size >= 0 && ra.size == rb.size &&
               ValuesEqual(f.children[0], *a.children[0], ra.offset, *b.children[0], rb.offset,
                           ra.size);
      });
    case TypeId::kFixedSizeList: {
      const int64_t k = t.fixed_size;
      if (!may_have_nulls) {
        return ValuesEqual(f.children[0], *a.children[0], pa * k, *b.children[0], pb * k, n * k);
      }
      return each_valid([&](int64_t i) {
        return ValuesEqual(f.children[0], *a.children[0], (pa + i) * k, *b.children[0],
                           (pb + i) * k, k);
      });
    }
    case TypeId::kStruct: {
      auto rows_equal = [&](int64_t offset, int64_t count) {
        for (size_t c = 0; c < f.children.size(); ++c) {
          if (!ValuesEqual(f.children[c], *a.children[c], pa + offset, *b.children[c], pb + offset,
                           count)) {
            return false;
          }
        }
        return true;
      };
      if (!may_have_nulls) return rows_equal(0, n);
      return each_valid([&](int64_t i) { return rows_equal(i, 1); });
    }
    case TypeId::kSparseUnion:
    case TypeId::kDenseUnion: {
      const bool dense = t.id == TypeId::kDenseUnion;
      return each_valid([&](int64_t i) {
        const int8_t code = LoadAt<int8_t>(a.buffers[0], pa + i);
        if (code != LoadAt<int8_t>(b.buffers[0], pb + i)) return false;
        const int64_t c = UnionChild(f, code);
        if (c < 0) return false;
        const int64_t ra = dense ? LoadAt<int32_t>(a.buffers[1], pa + i) : pa + i;
        const int64_t rb = dense ? LoadAt<int32_t>(b.buffers[1], pb + i) : pb + i;
        return ValuesEqual(f.children[c], *a.children[c], ra, *b.children[c], rb, 1);
      });
    }
    case TypeId::kRunEndEncoded:
      return each_valid([&](int64_t i) {
        const int64_t ra = RunAt(f, a, pa + i);
        const int64_t rb = RunAt(f, b, pb + i);
        return ra >= 0 && rb >= 0 &&
               ValuesEqual(f.children[1], *a.children[1], ra, *b.children[1], rb, 1);
      });
    default: {
      const int64_t width = t.FixedBitWidth() / 8;
      const auto* da = static_cast<const uint8_t*>(a.buffers[1]);
      const auto* db = static_cast<const uint8_t*>(b.buffers[1]);
      if (da == nullptr || db == nullptr) return false;
      if (!may_have_nulls) return std::memcmp(da + pa * width, db + pb * width, n * width) == 0;
      return each_valid([&](int64_t i) {
        return std::memcmp(da + (pa + i) * width, db + (pb + i) * width, width) == 0;
      });
    }
  }
}

// ---------------------------------------------------------------------------------------
// Messages

EncodedMessage FinishMessage(flatbuffers::FlatBufferBuilder& fbb, MessageType type,
                             fb::MessageHeader header_type, flatbuffers::Offset<void> header,
                             int64_t body_length, int alignment) {
  auto message = fb::CreateMessage(fbb, fb::MetadataVersion::V5, header_type, header, body_length);
  fbb.Finish(message);
  const int64_t fb_size = fbb.GetSize();
  const int64_t total = RoundUp(8 + fb_size, alignment);
  EncodedMessage out;
  out.type = type;
  const uint32_t marker = 0xFFFFFFFFu;
  const int32_t length = static_cast<int32_t>(total - 8);
  out.metadata.assign(static_cast<size_t>(total), '\0');
  std::memcpy(out.metadata.data(), &marker, 4);
  std::memcpy(out.metadata.data() + 4, &length, 4);
  std::memcpy(out.metadata.data() + 8, fbb.GetBufferPointer(), static_cast<size_t>(fb_size));
  out.flatbuffer_size = static_cast<size_t>(fb_size);
  out.body_length = body_length;
  return out;
}

flatbuffers::Offset<fb::RecordBatch> WriteRecordBatch(flatbuffers::FlatBufferBuilder& fbb,
                                                      int64_t length, const BodyWriter& body,
                                                      Codec codec) {
  auto nodes = fbb.CreateVectorOfStructs(body.nodes().data(), body.nodes().size());
  auto buffers = fbb.CreateVectorOfStructs(body.buffers().data(), body.buffers().size());
  flatbuffers::Offset<fb::BodyCompression> compression;
  if (codec != Codec::kNone) {
    compression = fb::CreateBodyCompression(
        fbb, codec == Codec::kZstd ? fb::CompressionType::ZSTD : fb::CompressionType::LZ4_FRAME,
        fb::BodyCompressionMethod::BUFFER);
  }
  flatbuffers::Offset<flatbuffers::Vector<int64_t>> variadic;
  if (!body.variadic_counts().empty()) {
    variadic = fbb.CreateVector(body.variadic_counts().data(), body.variadic_counts().size());
  }
  return fb::CreateRecordBatch(fbb, length, nodes, buffers, compression, variadic);
}

static_assert(sizeof(fb::FieldNode) == 2 * sizeof(int64_t) &&
                  sizeof(fb::Buffer) == 2 * sizeof(int64_t),
              "flatbuffers structs are stored as they are in memory");

// Returns where in `message` (the metadata of a RecordBatch message) its values are.
RecordBatchTemplate MakeTemplate(const EncodedMessage& message, RecordBatchShape shape) {
  RecordBatchTemplate t;
  t.shape = shape;
  t.metadata = message.metadata;
  t.flatbuffer_size = message.flatbuffer_size;
  const auto* base = reinterpret_cast<const uint8_t*>(t.metadata.data());
  const fb::Message* m = fb::GetMessage(base + 8);
  const fb::RecordBatch* batch = m->header_as_RecordBatch();
  BRIDGE_DCHECK(batch != nullptr);
  // The generated tables derive privately from flatbuffers::Table, at offset 0.
  auto scalar_at = [&](const void* table, flatbuffers::voffset_t field) -> size_t {
    const uint8_t* at = reinterpret_cast<const flatbuffers::Table*>(table)->GetAddressOf(field);
    BRIDGE_DCHECK(at != nullptr);
    return static_cast<size_t>(at - base);
  };
  if (shape.has_length) t.length_at = scalar_at(batch, fb::RecordBatch::VT_LENGTH);
  if (shape.has_body_length) t.body_length_at = scalar_at(m, fb::Message::VT_BODY_LENGTH);
  t.nodes_at = static_cast<size_t>(batch->nodes()->Data() - base);
  t.buffers_at = static_cast<size_t>(batch->buffers()->Data() - base);
  if (shape.variadic_counts > 0) {
    t.variadic_counts_at = static_cast<size_t>(batch->variadic_buffer_counts()->Data() - base);
  }
  return t;
}

// Returns the metadata of `t` with the values of a batch of `length` rows and `body`
// (whose shape is t.shape) written over.
EncodedMessage FromTemplate(const RecordBatchTemplate& t, int64_t length, const BodyWriter& body) {
  EncodedMessage out;
  out.type = MessageType::kRecordBatch;
  out.metadata = t.metadata;
  char* p = out.metadata.data();
  const int64_t body_length = body.body_length();
  if (t.shape.has_length) std::memcpy(p + t.length_at, &length, sizeof(length));
  if (t.shape.has_body_length) std::memcpy(p + t.body_length_at, &body_length, sizeof(body_length));
  auto write_list = [p](size_t at, const auto& list) {
    if (!list.empty()) std::memcpy(p + at, list.data(), list.size() * sizeof(*list.data()));
  };
  write_list(t.nodes_at, body.nodes());
  write_list(t.buffers_at, body.buffers());
  write_list(t.variadic_counts_at, body.variadic_counts());
  out.flatbuffer_size = t.flatbuffer_size;
  out.body_length = body_length;
  return out;
}

// Returns the RecordBatch message (metadata only) of a batch of `length` rows and `body`,
// from the template when the shape is the last one's, else built (and made the template).
// Debug builds build every message and check the template's copy against it.
EncodedMessage RecordBatchMessage(MessageScratch& scratch, const EncodeOptions& options,
                                  int64_t length, const BodyWriter& body) {
  const RecordBatchShape shape{body.nodes().size(), body.buffers().size(),
                               body.variadic_counts().size(), length != 0, body.body_length() != 0};
  RecordBatchTemplate& t = scratch.record_batch;
  const bool reuse = !t.metadata.empty() && t.shape == shape;
#ifdef NDEBUG
  if (reuse) return FromTemplate(t, length, body);
#endif
  flatbuffers::FlatBufferBuilder& fbb = scratch.fbb;
  fbb.Clear();
  auto header = WriteRecordBatch(fbb, length, body, options.codec);
  EncodedMessage built =
      FinishMessage(fbb, MessageType::kRecordBatch, fb::MessageHeader::RecordBatch, header.Union(),
                    body.body_length(), options.alignment);
  if (reuse) {
    BRIDGE_DCHECK(FromTemplate(t, length, body).metadata == built.metadata);
  } else {
    t = MakeTemplate(built, shape);
  }
  return built;
}

// Gives `message` the body's segments (copied into a list of exactly their number, its one
// allocation) and a keep_alive that owns `batch` and the bytes the encoder made for the body
// (when there are none, the batch holder itself: no allocation).
void AttachBody(EncodedMessage& message, BodyWriter& body,
                std::shared_ptr<const BatchHolder> batch) {
  message.body.assign(body.segments().data(), body.segments().data() + body.segments().size());
  message.copied_bytes = body.copied_bytes();
  if (body.owned().empty()) {
    message.keep_alive = std::move(batch);
  } else {
    auto storage = std::make_shared<MessageStorage>();
    storage->batch = std::move(batch);
    storage->owned = std::move(body.owned());
    message.keep_alive = std::move(storage);
  }
}

}  // namespace

// A dictionary last sent for one id: the array (inside the batch that is kept alive for it).
struct SentDictionary {
  std::shared_ptr<const BatchHolder> batch;
  const ArrowArray* array = nullptr;
};

struct RecordBatchEncoder::State {
  SchemaInfo schema;
  std::vector<FieldLayout> columns;  // of schema.fields
  EncodeOptions options;
  EncodeStats stats;
  std::vector<SentDictionary> dictionaries;  // by id
  MessageScratch scratch;                    // reused by every dictionary and record batch
};

namespace {

struct DictionaryUse {
  const FieldLayout* field;  // the dictionary-encoded field
  const ArrowArray* dictionary;
};

// Checks the structure of `a` and everything below it, and lists the dictionaries in the
// order they must be sent: nested dictionaries before the dictionaries that use them.
Status CollectDictionaries(const Context& context, const FieldLayout& f, const ArrowArray& a,
                           std::vector<DictionaryUse>* out) {
  BRIDGE_RETURN_NOT_OK(CheckStructure(context, f, a));
  if (f.dictionary_encoded) {
    BRIDGE_RETURN_NOT_OK(CollectDictionaries(context, *f.dictionary, *a.dictionary, out));
    out->push_back({&f, a.dictionary});
    return OkStatus();
  }
  for (size_t i = 0; i < f.children.size(); ++i) {
    BRIDGE_RETURN_NOT_OK(CollectDictionaries(context, f.children[i], *a.children[i], out));
  }
  return OkStatus();
}

Result<EncodedMessage> EncodeDictionaryBatch(const EncodeOptions& options, MessageScratch& scratch,
                                             std::shared_ptr<const BatchHolder> batch,
                                             const Context& context, const FieldLayout& field,
                                             const ArrowArray& dictionary, int64_t start,
                                             bool is_delta) {
  BodyWriter body(options, scratch);
  const int64_t id = field.info.dictionary_id;
  const Context dictionary_context{context.batch, id};
  ArrayEncoder encoder(dictionary_context, body);
  const int64_t length = dictionary.length - start;
  BRIDGE_RETURN_NOT_OK(encoder.Encode(*field.dictionary, dictionary, start, length));
  BRIDGE_RETURN_NOT_OK(body.status());
  flatbuffers::FlatBufferBuilder& fbb = scratch.fbb;
  fbb.Clear();
  auto data = WriteRecordBatch(fbb, length, body, options.codec);
  auto header = fb::CreateDictionaryBatch(fbb, id, data, is_delta);
  EncodedMessage message =
      FinishMessage(fbb, MessageType::kDictionaryBatch, fb::MessageHeader::DictionaryBatch,
                    header.Union(), body.body_length(), options.alignment);
  AttachBody(message, body, std::move(batch));
  return message;
}

}  // namespace

RecordBatchEncoder::RecordBatchEncoder(std::unique_ptr<State> state) : state_(std::move(state)) {}
RecordBatchEncoder::~RecordBatchEncoder() = default;

Result<std::unique_ptr<RecordBatchEncoder>> RecordBatchEncoder::Make(const ArrowSchema& schema,
                                                                     EncodeOptions options) {
  if (options.alignment != 8 && options.alignment != 16 && options.alignment != 32 &&
      options.alignment != 64) {
    return InvalidArgument("ipc: alignment must be 8, 16, 32 or 64, not ", options.alignment);
  }
  if (options.codec != Codec::kNone && options.codec != Codec::kLz4Frame &&
      options.codec != Codec::kZstd) {
    return InvalidArgument("ipc: unknown codec");
  }
  auto state = std::make_unique<State>();
  BRIDGE_ASSIGN_OR_RETURN(state->schema, AnalyzeSchema(schema));
  state->options = options;
  state->columns.reserve(state->schema.fields.size());
  for (const FieldInfo& field : state->schema.fields) state->columns.emplace_back(field);
  state->dictionaries.resize(static_cast<size_t>(state->schema.num_dictionaries));
  return std::unique_ptr<RecordBatchEncoder>(new RecordBatchEncoder(std::move(state)));
}

const EncodeOptions& RecordBatchEncoder::options() const { return state_->options; }
const EncodeStats& RecordBatchEncoder::stats() const { return state_->stats; }

Result<EncodedMessage> RecordBatchEncoder::EncodeSchema() const {
  flatbuffers::FlatBufferBuilder fbb(1024);
  auto schema = WriteSchema(fbb, state_->schema);
  return FinishMessage(fbb, MessageType::kSchema, fb::MessageHeader::Schema, schema.Union(),
                       /*body_length=*/0, state_->options.alignment);
}

Result<std::vector<EncodedMessage>> RecordBatchEncoder::Encode(OwnedArray batch) {
  State& s = *state_;
  const Context context{s.stats.record_batches};
  if (!batch.valid()) return InvalidArgument(context.ToString(), ": the batch is released");
  auto holder = std::make_shared<const BatchHolder>(std::move(batch));
  const ArrowArray& top = *holder->array;
  const int64_t columns = static_cast<int64_t>(s.schema.fields.size());
  if (top.length < 0 || top.offset < 0 || top.offset > kMaxInt64 / 16 - 1 - top.length) {
    return InvalidArgument(context.ToString(), ": bad length ", top.length, " or offset ",
                           top.offset);
  }
  if (top.n_children != columns || (columns > 0 && top.children == nullptr)) {
    return InvalidArgument(context.ToString(), ": the batch has ", top.n_children,
                           " columns, the schema has ", columns);
  }
  if (top.n_buffers != 1 || top.buffers == nullptr) {
    return InvalidArgument(context.ToString(), ": the batch is not a struct array (", top.n_buffers,
                           " buffers)");
  }
  if (top.null_count != 0 && top.buffers[0] != nullptr && top.length > 0) {
    const int64_t nulls = top.length - CountSetBits(static_cast<const uint8_t*>(top.buffers[0]),
                                                    top.offset, top.length);
    if (nulls > 0) {
      return InvalidArgument(context.ToString(), ": the top-level struct has ", nulls,
                             " null rows; a record batch cannot");
    }
  }
  for (int64_t i = 0; i < columns; ++i) {
    if (top.children[i] == nullptr)
      return InvalidArgument(context.ToString(), ": column ", i, " is null");
  }

  std::vector<DictionaryUse> uses;
  for (int64_t i = 0; i < columns && s.schema.num_dictionaries > 0; ++i) {
    BRIDGE_RETURN_NOT_OK(CollectDictionaries(context, s.columns[i], *top.children[i], &uses));
  }

  std::vector<EncodedMessage> messages;
  messages.reserve(uses.size() + 1);
  int64_t deltas = 0;
  int64_t replacements = 0;
  for (const DictionaryUse& use : uses) {
    const FieldInfo& field = use.field->info;
    const SentDictionary& sent = s.dictionaries[static_cast<size_t>(field.dictionary_id)];
    int64_t start = 0;
    bool is_delta = false;
    if (sent.array != nullptr) {
      const int64_t old_length = sent.array->length;
      const int64_t new_length = use.dictionary->length;
      const bool prefix_equal =
          new_length >= old_length &&
          ValuesEqual(*field.dictionary, *sent.array, 0, *use.dictionary, 0, old_length);
      if (prefix_equal && new_length == old_length) continue;  // already sent
      if (prefix_equal && !HasNestedDictionary(*field.dictionary)) {
        start = old_length;
        is_delta = true;
        ++deltas;
      } else if (s.options.file_format) {
        return InvalidArgument(context.ToString(), ", field '", field.path, "': dictionary ",
                               field.dictionary_id,
                               " changed; the IPC file format cannot replace a dictionary "
                               "(only extend it)");
      } else {
        ++replacements;
      }
    }
    BRIDGE_ASSIGN_OR_RETURN(EncodedMessage message,
                            EncodeDictionaryBatch(s.options, s.scratch, holder, context, *use.field,
                                                  *use.dictionary, start, is_delta));
    messages.push_back(std::move(message));
  }

  BodyWriter body(s.options, s.scratch);
  ArrayEncoder encoder(context, body);
  for (int64_t i = 0; i < columns; ++i) {
    // Columns are a struct's children: the struct's offset applies to them.
    BRIDGE_RETURN_NOT_OK(encoder.Encode(s.columns[i], *top.children[i], top.offset, top.length));
  }
  BRIDGE_RETURN_NOT_OK(body.status());
  messages.push_back(RecordBatchMessage(s.scratch, s.options, top.length, body));

  // Success: remember this batch's dictionaries (equal ones too, so older batches can go).
  for (const DictionaryUse& use : uses) {
    s.dictionaries[static_cast<size_t>(use.field->info.dictionary_id)] = {holder, use.dictionary};
  }
  AttachBody(messages.back(), body, std::move(holder));  // the last use: no reference count
  s.stats.record_batches += 1;
  s.stats.dictionary_batches += static_cast<int64_t>(messages.size()) - 1;
  s.stats.dictionary_deltas += deltas;
  s.stats.dictionary_replacements += replacements;
  for (const EncodedMessage& m : messages) {
    s.stats.body_bytes += m.body_length;
    s.stats.copied_bytes += m.copied_bytes;
  }
  return messages;
}

Result<EncodedMessage> EncodeSchemaMessage(const ArrowSchema& schema, EncodeOptions options) {
  BRIDGE_ASSIGN_OR_RETURN(auto encoder, RecordBatchEncoder::Make(schema, options));
  return encoder->EncodeSchema();
}

}  // namespace bridge::ipc
