// Arrow IPC readers: the stream format (from contiguous bytes, from an incremental byte
// source, or one message at a time as Flight delivers it) and the file format (random
// access through the footer), decoding into C Data Interface arrays.
//
// Zero-copy: decoded arrays are views into the input. Each array's private_data holds the
// input Buffer's owner, so the arrays stay valid after the reader is destroyed, for as long
// as the consumer keeps them. The reader copies only where it must, and counts it in
// ReadStats: a compressed buffer is decompressed into fresh memory; a buffer that is not
// aligned to its type's width is copied to aligned memory; binary/utf8 views get the
// buffer of variadic buffer sizes the C Data Interface wants and IPC does not carry; a
// dictionary delta is concatenated with the dictionary it extends.
//
// Untrusted input: everything is validated before use (framing, flatbuffers with the
// generated verifier, lengths, offsets, buffer ranges, null counts, child lengths, union
// type ids and offsets, run ends, view references, dictionary ids and indices), so a hostile
// input can neither make a reader read out of bounds nor allocate more than
// ReadOptions::max_allocation_bytes. Malformed input gives InvalidArgument whose message
// names the message and field ("ipc: message 3, field 'tags.item': offset 70 > data size
// 64"); exceeding a limit gives ResourceExhausted. UTF-8 is not validated.
//
// Readers are not thread-safe; the arrays they return are independent of each other and
// of the reader and may be released from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "bridge/arrow/buffer.h"
#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"

namespace bridge::ipc {

// Limits that keep a hostile input from exhausting memory or the stack.
struct ReadOptions {
  // Bytes the reader may have allocated at any one time: decompressed and realigned
  // buffers, variadic-size buffers, concatenated dictionaries, message bodies received from
  // a ByteSource, and the decoded schema. Memory stays counted until the arrays using it are
  // released, so a consumer that keeps every batch of a large compressed stream reaches it.
  int64_t max_allocation_bytes = int64_t{1} << 31;
  // Deepest nesting of fields (children and dictionaries) a schema may have.
  int max_nesting_depth = 64;
  // Largest flatbuffer (message metadata or file footer) accepted.
  int64_t max_metadata_bytes = 64 << 20;
};

// What a reader has done so far.
struct ReadStats {
  int64_t messages = 0;               // IPC messages decoded (the end-of-stream marker excluded)
  int64_t dictionary_batches = 0;     // dictionary batches applied (deltas included)
  int64_t dictionary_deltas = 0;      // of which deltas
  int64_t batches = 0;                // record batches returned
  int64_t bytes_read = 0;             // input bytes consumed: framing, metadata and bodies
  int64_t bytes_copied = 0;           // body bytes copied to realign buffers
  int64_t bytes_decompressed = 0;     // bytes produced by body decompression
  int64_t metadata_bytes_copied = 0;  // flatbuffer bytes copied to aligned memory
};

// A stream of record batches decoded from IPC. Each batch is a struct array ("+s") with one
// child per schema field, offset 0 and no validity bitmap.
class RecordBatchReader {
 public:
  virtual ~RecordBatchReader();
  // The stream's schema: a "+s" schema with one child per field; schema-level custom
  // metadata in schema().metadata. Valid as long as the reader.
  virtual const ArrowSchema& schema() const = 0;
  // Returns the next record batch, or an invalid OwnedArray at the end of the stream (an
  // end-of-stream marker or the end of the input at a message boundary). Dictionary batches
  // are applied on the way. After an error, every later call returns the same error.
  virtual Result<OwnedArray> Next() = 0;
  virtual const ReadStats& stats() const = 0;
};

// Opens a stream held in contiguous memory (a Buffer in memory or over an mmap). The first
// message (the schema) is decoded here. Both the current framing (0xFFFFFFFF continuation
// marker, then the int32 metadata length) and the legacy one (int32 length first) are read.
Result<std::unique_ptr<RecordBatchReader>> OpenStreamReader(Buffer data, ReadOptions options = {});

// A source of bytes read incrementally, such as a socket or a pipe.
class ByteSource {
 public:
  virtual ~ByteSource();
  // Reads up to `max` bytes into `out`; returns how many, 0 only at the end of the input.
  virtual Result<size_t> Read(uint8_t* out, size_t max) = 0;
};

// Opens a stream read from `source`, message by message. Each message body is read into
// memory the reader allocates (counted against max_allocation_bytes while arrays use it);
// the arrays are views into it.
Result<std::unique_ptr<RecordBatchReader>> OpenStreamReader(std::unique_ptr<ByteSource> source,
                                                            ReadOptions options = {});

// Decodes a stream delivered one message at a time, each as its flatbuffer Message (no
// continuation marker or length prefix) plus its body: Flight's FlightData.data_header and
// data_body. Not thread-safe.
class StreamDecoder {
 public:
  explicit StreamDecoder(ReadOptions options = {});
  ~StreamDecoder();
  StreamDecoder(const StreamDecoder&) = delete;
  StreamDecoder& operator=(const StreamDecoder&) = delete;

  // Decodes one message. The first must be a Schema; dictionary batches are applied. Returns
  // the record batch when the message was one, else an invalid OwnedArray. The arrays are
  // views into `body` (kept alive through its owner). `metadata` is only read during the
  // call. After an error, every later call returns the same error.
  Result<OwnedArray> Consume(std::span<const uint8_t> metadata, Buffer body);

  bool has_schema() const;
  // The schema; only valid once has_schema().
  const ArrowSchema& schema() const;
  const ReadStats& stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Random access to an Arrow IPC file held in contiguous memory. Dictionaries are loaded
// when the file is opened. Not thread-safe.
class FileReader {
 public:
  // Checks the magic bytes and the footer, decodes the schema and loads every dictionary.
  static Result<std::unique_ptr<FileReader>> Open(Buffer data, ReadOptions options = {});
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // The schema from the footer ("+s", as RecordBatchReader::schema()).
  const ArrowSchema& schema() const;
  int64_t num_batches() const;
  // Returns record batch `i` (0 <= i < num_batches()), located through the footer; may be
  // called in any order and repeatedly.
  Result<OwnedArray> ReadBatch(int64_t i);
  // Offset and length of the file's stream section: the bytes from just after the leading
  // magic to the start of the footer, which are themselves a valid IPC stream (schema,
  // dictionaries, batches and, as writers put it there, the end-of-stream marker).
  std::pair<int64_t, int64_t> stream_section() const;
  const ReadStats& stats() const;

 private:
  class Impl;
  explicit FileReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes one encapsulated Schema message (continuation marker, length, flatbuffer; the
// legacy framing without the marker is accepted), e.g. Flight's FlightInfo.schema.
Result<OwnedSchema> DecodeSchemaMessage(std::span<const uint8_t> encapsulated_message,
                                        ReadOptions options = {});

// Decodes the schema of a bare flatbuffer Message whose header is a Schema, e.g. the
// data_header of Flight's first FlightData.
Result<OwnedSchema> DecodeSchemaMetadata(std::span<const uint8_t> flatbuffer_message,
                                         ReadOptions options = {});

}  // namespace bridge::ipc
