// Arrow IPC encoding: a schema and a stream of record batches (C Data Interface arrays) in,
// encapsulated IPC messages out, without copying the data.
//
// An EncodedMessage is a small owned metadata block (continuation marker, length, flatbuffer
// Message, padding) plus a list of body segments that point into the batch's own buffers.
// The message keeps the batch alive (`keep_alive`) until the last copy of the message is
// dropped, so a transport can hand the segments to writev / grpc::Slice and release the
// batch when the bytes are gone. Stream and file writers on top of this are in writer.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/compression.h"
#include "bridge/common/status.h"

namespace bridge::ipc {

// A byte range that lives elsewhere (in a batch's buffers, in an EncodedMessage or in
// static memory). Never owns what it points to.
struct Segment {
  const uint8_t* data;
  size_t size;
};

// Custom metadata: key/value pairs in order (keys may repeat, as in the spec).
using KeyValueMetadata = std::vector<std::pair<std::string, std::string>>;

struct EncodeOptions {
  // Body compression; each buffer becomes an int64 uncompressed length and one frame
  // (or length -1 and the raw bytes when the frame would not be smaller).
  Codec codec = Codec::kNone;
  // Codec level; 0 = the library's default (ZSTD 3, LZ4 fast mode).
  int level = 0;
  // Writing the IPC file format: dictionaries may grow (deltas) but not be replaced.
  bool file_format = false;
  // Alignment of the metadata block and of every buffer in the body: 8 or 64 (also 16, 32).
  int alignment = 8;
};

enum class MessageType { kSchema, kDictionaryBatch, kRecordBatch };

// One encapsulated IPC message. Movable and copyable (copies share keep_alive); segments stay
// valid for as long as any copy holding keep_alive exists.
struct EncodedMessage {
  MessageType type = MessageType::kSchema;
  // Owned: 0xFFFFFFFF, int32 little-endian length of what follows, the flatbuffer Message,
  // zero padding so that the body starts aligned. Its size is a multiple of the alignment.
  std::string metadata;
  // The body: segments that point into the batch's buffers (zero copy), into storage owned
  // through keep_alive (compressed frames, the few copies listed in `copied_bytes`), or to
  // static zeros (padding).
  std::vector<Segment> body;
  int64_t body_length = 0;  // sum of the body's segment sizes; a multiple of the alignment
  // Owns the ArrowArray the body points into (released when the last holder drops it) and
  // any bytes the encoder produced. Null for schema messages.
  std::shared_ptr<const void> keep_alive;
  size_t flatbuffer_size = 0;  // size of the flatbuffer inside `metadata`
  // Bytes the encoder had to copy instead of pointing at: validity/bool bitmaps whose bit
  // offset is not a multiple of 8, offsets of sliced utf8/binary/list arrays rebased to start
  // at 0, run ends of sliced run-end encoded arrays. Zero for unsliced input.
  int64_t copied_bytes = 0;

  // The flatbuffer Message alone, without marker, length or padding (Flight's data_header).
  std::string_view flatbuffer() const {
    if (metadata.size() < 8) return {};
    return std::string_view(metadata).substr(8, flatbuffer_size);
  }
  // Metadata plus body: the bytes this message takes in a stream.
  int64_t total_size() const { return static_cast<int64_t>(metadata.size()) + body_length; }
};

// Counters of what an encoder produced so far.
struct EncodeStats {
  int64_t record_batches = 0;
  int64_t dictionary_batches = 0;  // including deltas and replacements
  int64_t dictionary_deltas = 0;
  int64_t dictionary_replacements = 0;
  int64_t body_bytes = 0;    // sum of body_length over every message
  int64_t copied_bytes = 0;  // sum of copied_bytes over every message
};

// Encodes the messages of one IPC stream (or of the stream section of an IPC file): the
// schema, then per batch the dictionary batches it needs and the record batch. Stateful: it
// remembers the dictionaries already sent, so it must see the batches in stream order.
// Not thread-safe; the messages it returns are independent of it and of each other.
//
// Metadata version V5. Field nodes and buffers follow the columnar format's depth-first
// layout; unions have no validity buffer, the null type has no buffers, view types record
// their variadic buffer counts (the C Data Interface's trailing sizes buffer is not sent).
// A validity bitmap is omitted (length 0) when its rows have no nulls. Sliced arrays
// (non-zero offsets anywhere in the tree) are encoded as just the rows they show; only the
// children of dense unions and list views and the data buffers of views, which offsets may
// reference anywhere, are sent whole.
//
// Dictionaries get ids in depth-first order of the schema. A batch's dictionary is sent the
// first time; later, nothing is sent when it has the same contents as the last one sent, a
// delta batch (isDelta, just the new values) when it extends it, and a replacement otherwise
// (an error with file_format, which forbids replacement). Dictionaries that contain
// dictionary-encoded fields are never sent as deltas (Arrow C++ cannot read those). Nested
// dictionaries are sent before the dictionaries that use them. To compare, the encoder keeps
// the latest batch holding each dictionary alive until a later batch replaces it (so a
// stream with dictionaries holds one batch more than the caller does).
class RecordBatchEncoder {
 public:
  // Returns an encoder for batches of `schema`, a struct ("+s") whose children are the
  // columns. Nothing of `schema` is kept: it may be released afterwards. Returns
  // InvalidArgument for a released schema, unknown format strings, wrong child counts,
  // non-integer dictionary indices, bad metadata, nesting deeper than 64 levels or bad
  // options; Unimplemented for dictionaries of dictionary-encoded values.
  static Result<std::unique_ptr<RecordBatchEncoder>> Make(const ArrowSchema& schema,
                                                          EncodeOptions options = {});
  ~RecordBatchEncoder();
  RecordBatchEncoder(const RecordBatchEncoder&) = delete;
  RecordBatchEncoder& operator=(const RecordBatchEncoder&) = delete;

  // Returns the Schema message (no body). May be called any number of times.
  Result<EncodedMessage> EncodeSchema() const;

  // Takes `batch`, a struct array of the schema's type (the top-level struct must have no
  // nulls), and returns the dictionary batch messages it needs followed by its record batch
  // message; the batch is released when the last of them is dropped (and, if it has
  // dictionaries, once a later batch's dictionaries are compared with its). Returns
  // InvalidArgument (with the batch number and field path) for a released array, child or
  // buffer counts that do not match the schema, negative lengths, offsets or null counts out
  // of range, missing buffers, offsets that decrease or point outside a child, and a
  // dictionary replacement in file_format; Internal if compression fails. On error nothing of
  // the encoder's state changes (the stream can go on with the next batch).
  Result<std::vector<EncodedMessage>> Encode(OwnedArray batch);

  const EncodeOptions& options() const;
  const EncodeStats& stats() const;

 private:
  struct State;
  explicit RecordBatchEncoder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Returns the encapsulated Schema message of `schema` (for example Flight's
// FlightInfo.schema). Errors as RecordBatchEncoder::Make.
Result<EncodedMessage> EncodeSchemaMessage(const ArrowSchema& schema, EncodeOptions options = {});

}  // namespace bridge::ipc
