// Arrow IPC stream and file writers on top of RecordBatchEncoder, writing through a
// gather-write ByteSink so that body bytes go from the batches' buffers to the sink
// without being copied.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/encoder.h"
#include "bridge/common/status.h"

namespace bridge::ipc {

// Where a writer's bytes go. Write takes a list of segments and writes all of them, in
// order, or fails; the segments are only valid during the call.
class ByteSink {
 public:
  virtual ~ByteSink();
  // Returns IoError (or another error of the implementation) when the bytes cannot all be
  // written; how many were written then is unspecified.
  virtual Status Write(std::span<const Segment> segments) = 0;
};

// Appends everything to a string. For tests and small in-memory results. Not thread-safe.
class StringSink : public ByteSink {
 public:
  Status Write(std::span<const Segment> segments) override;
  const std::string& data() const { return data_; }
  std::string Take() { return std::move(data_); }

 private:
  std::string data_;
};

// Writes to a file descriptor with writev(2), as many segments per call as the system
// allows, resuming after partial writes and EINTR (and waiting with poll(2) when a
// non-blocking descriptor returns EAGAIN). The descriptor is not owned and must stay open
// while the sink is used. Writing to a closed socket raises SIGPIPE unless the process
// ignores it. Not thread-safe.
class FileDescriptorSink : public ByteSink {
 public:
  explicit FileDescriptorSink(int fd) : fd_(fd) {}
  Status Write(std::span<const Segment> segments) override;
  int64_t bytes_written() const { return bytes_written_; }

 private:
  int fd_;
  int64_t bytes_written_ = 0;
};

// A byte range of a written file.
struct ByteRange {
  int64_t offset = 0;
  int64_t length = 0;
};

// Writes an IPC stream: the schema message (at Make), per batch its dictionary batches and
// record batch, and the end-of-stream marker (at Close). Not thread-safe.
//
// `sink` is not owned and must outlive the writer. After the sink fails, every later call
// returns FailedPrecondition (the stream is cut short); after an input error (a bad batch,
// nothing written) the stream can go on. Destroying the writer without Close leaves the
// stream without its end marker.
class StreamWriter {
 public:
  // Returns a writer that has written the schema of `schema` (a struct "+s"; not kept).
  // Errors: as RecordBatchEncoder::Make; InvalidArgument for a null sink; the sink's error.
  static Result<std::unique_ptr<StreamWriter>> Make(ByteSink* sink, const ArrowSchema& schema,
                                                    EncodeOptions options = {});

  // Encodes and writes `batch` (see RecordBatchEncoder::Encode for its errors); the batch is
  // released once its bytes are written. FailedPrecondition after Close or a sink failure.
  Status WriteBatch(OwnedArray batch);

  // Writes the end-of-stream marker (0xFFFFFFFF 0x00000000). FailedPrecondition when
  // already closed or after a sink failure.
  Status Close();

  // Bytes written to the sink so far.
  int64_t bytes_written() const { return bytes_written_; }
  const EncodeStats& stats() const { return encoder_->stats(); }

 private:
  StreamWriter(ByteSink* sink, std::unique_ptr<RecordBatchEncoder> encoder)
      : sink_(sink), encoder_(std::move(encoder)) {}
  Status WriteMessage(const EncodedMessage& message);
  Status CheckOpen() const;

  ByteSink* sink_;
  std::unique_ptr<RecordBatchEncoder> encoder_;
  int64_t bytes_written_ = 0;
  bool closed_ = false;
  Status failure_;
};

// Writes an IPC file: "ARROW1" and 2 padding bytes, the stream (schema, dictionaries,
// batches, end-of-stream marker), the Footer (schema, Blocks of the dictionary and record
// batch messages), the footer's int32 length and "ARROW1". The stream section
// (stream_range()) is itself a valid IPC stream. Dictionaries may grow between batches
// (deltas) but not change; options.file_format is forced on. Ownership, errors and thread
// safety as StreamWriter.
class FileWriter {
 public:
  // Returns a writer that has written the magic and the schema. `footer_metadata` becomes
  // the Footer's custom_metadata (the schema's own metadata is in the schema).
  static Result<std::unique_ptr<FileWriter>> Make(ByteSink* sink, const ArrowSchema& schema,
                                                  EncodeOptions options = {},
                                                  KeyValueMetadata footer_metadata = {});
  ~FileWriter();

  Status WriteBatch(OwnedArray batch);

  // Writes a dictionary or record batch message that was encoded elsewhere (e.g. by the
  // RecordBatchEncoder of a stream being sent to a client, so that the same segments go to
  // the socket and to this file without a second encoding), and records its footer Block.
  // The message must come from an encoder of the same schema and codec. Do not mix with
  // WriteBatch in one file (the encoders' dictionary states would disagree). Returns
  // InvalidArgument, writing nothing, for a message whose flatbuffer does not verify or
  // disagrees with its framing or body length, a Schema message (the schema is written at
  // Make), a body codec other than the writer's, a dictionary replacement (a non-delta
  // batch for an id already written; the file format forbids it) or a delta before its
  // dictionary; the sink's error otherwise; FailedPrecondition after Close or a failure.
  Status WriteEncodedMessage(const EncodedMessage& message);

  // Writes the end-of-stream marker, the footer and the trailing magic.
  Status Close();
  // As Close, with `footer_metadata` as the Footer's custom_metadata instead of the one given
  // at Make (for values known only at the end, such as checksums of the batches).
  Status Close(KeyValueMetadata footer_metadata);

  // The stream section's bytes in the file (from the schema message through the
  // end-of-stream marker). Valid after a successful Close.
  ByteRange stream_range() const { return stream_range_; }
  int64_t bytes_written() const { return bytes_written_; }
  const EncodeStats& stats() const { return encoder_->stats(); }

 private:
  struct Blocks;
  FileWriter(ByteSink* sink, std::unique_ptr<RecordBatchEncoder> encoder);
  Status WriteMessage(const EncodedMessage& message);
  Status WriteBytes(std::span<const Segment> segments);
  Status CheckOpen() const;
  // Returns the dictionary id of a valid dictionary batch message, -1 for a record batch.
  Result<int64_t> CheckEncodedMessage(const EncodedMessage& message) const;

  ByteSink* sink_;
  std::unique_ptr<RecordBatchEncoder> encoder_;
  std::unique_ptr<Blocks> blocks_;  // the footer's contents so far
  int64_t bytes_written_ = 0;
  ByteRange stream_range_;
  bool closed_ = false;
  Status failure_;
};

// One Block of a file footer: where a dictionary or record batch message is.
struct FileBlock {
  int64_t offset = 0;           // of the message's continuation marker
  int32_t metadata_length = 0;  // prefix, flatbuffer and padding
  int64_t body_length = 0;
};

// What an IPC file's footer says, without decoding the schema or reading any message.
struct FileFooter {
  int64_t footer_offset = 0;  // where the Footer flatbuffer starts (= end of the stream section)
  std::vector<FileBlock> dictionaries;
  std::vector<FileBlock> record_batches;
  KeyValueMetadata custom_metadata;
};

// Returns the footer of the IPC file in `file` (the whole file, e.g. a mapping): checks the
// leading and trailing magic and the footer length, and verifies the Footer flatbuffer
// (at most `max_footer_bytes`). Reads only the first 8 bytes and the tail of `file`, so it
// is cheap on a mapping of a large file: the counterpart of FileWriter's footer metadata
// for a caller that keeps its own index in it. Returns InvalidArgument for anything
// malformed (truncated or torn files included).
Result<FileFooter> ReadFileFooter(std::span<const uint8_t> file,
                                  int64_t max_footer_bytes = int64_t{64} << 20);

}  // namespace bridge::ipc
