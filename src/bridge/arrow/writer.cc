#include "bridge/arrow/writer.h"

#include <limits.h>
#include <poll.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "bridge/arrow/fb/File_generated.h"
#include "bridge/arrow/schema_encode_internal.h"

namespace bridge::ipc {
namespace {

// End of stream: continuation marker and a zero metadata length.
constexpr uint8_t kEndOfStream[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
// File magic plus the 2 padding bytes that follow it at the start of a file.
constexpr uint8_t kFileStart[8] = {'A', 'R', 'R', 'O', 'W', '1', 0, 0};
constexpr uint8_t kMagic[6] = {'A', 'R', 'R', 'O', 'W', '1'};

std::string ErrnoMessage(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// Returns the metadata block followed by the body segments.
std::vector<Segment> SegmentsOf(const EncodedMessage& message) {
  std::vector<Segment> segments;
  segments.reserve(message.body.size() + 1);
  segments.push_back(
      Segment{reinterpret_cast<const uint8_t*>(message.metadata.data()), message.metadata.size()});
  segments.insert(segments.end(), message.body.begin(), message.body.end());
  return segments;
}

}  // namespace

ByteSink::~ByteSink() = default;

Status StringSink::Write(std::span<const Segment> segments) {
  size_t total = data_.size();
  for (const Segment& s : segments) total += s.size;
  data_.reserve(total);
  for (const Segment& s : segments) data_.append(reinterpret_cast<const char*>(s.data), s.size);
  return OkStatus();
}

Status FileDescriptorSink::Write(std::span<const Segment> segments) {
  std::vector<iovec> iov;
  iov.reserve(segments.size());
  for (const Segment& s : segments) {
    if (s.size > 0) iov.push_back(iovec{const_cast<uint8_t*>(s.data), s.size});
  }
  size_t next = 0;
  while (next < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - next, IOV_MAX));
    const ssize_t written = ::writev(fd_, &iov[next], count);
    if (written < 0) {
      const int error = errno;
      if (error == EINTR) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
          return IoError("ipc: waiting to write to fd ", fd_, ": ", ErrnoMessage(errno));
        }
        continue;
      }
      return IoError("ipc: writing to fd ", fd_, ": ", ErrnoMessage(error));
    }
    if (written == 0) return IoError("ipc: writing to fd ", fd_, ": nothing was written");
    bytes_written_ += written;
    // Skip what was written: whole segments, then part of one.
    size_t left = static_cast<size_t>(written);
    while (left > 0) {
      iovec& v = iov[next];
      if (left >= v.iov_len) {
        left -= v.iov_len;
        ++next;
      } else {
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + left;
        v.iov_len -= left;
        left = 0;
      }
    }
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// StreamWriter

Result<std::unique_ptr<StreamWriter>> StreamWriter::Make(ByteSink* sink, const ArrowSchema& schema,
                                                         EncodeOptions options) {
  if (sink == nullptr) return InvalidArgument("ipc: stream writer without a sink");
  BRIDGE_ASSIGN_OR_RETURN(auto encoder, RecordBatchEncoder::Make(schema, options));
  BRIDGE_ASSIGN_OR_RETURN(EncodedMessage message, encoder->EncodeSchema());
  std::unique_ptr<StreamWriter> writer(new StreamWriter(sink, std::move(encoder)));
  BRIDGE_RETURN_NOT_OK(writer->WriteMessage(message));
  return writer;
}

Status StreamWriter::CheckOpen() const {
  if (!failure_.ok())
    return FailedPrecondition("ipc: the stream failed earlier: ", std::string(failure_.message()));
  if (closed_) return FailedPrecondition("ipc: the stream is closed");
  return OkStatus();
}

Status StreamWriter::WriteMessage(const EncodedMessage& message) {
  const std::vector<Segment> segments = SegmentsOf(message);
  Status status = sink_->Write(segments);
  if (!status.ok()) {
    failure_ = status;
    return status;
  }
  bytes_written_ += message.total_size();
  return OkStatus();
}

Status StreamWriter::WriteBatch(OwnedArray batch) {
  BRIDGE_RETURN_NOT_OK(CheckOpen());
  BRIDGE_ASSIGN_OR_RETURN(std::vector<EncodedMessage> messages, encoder_->Encode(std::move(batch)));
  for (const EncodedMessage& message : messages) BRIDGE_RETURN_NOT_OK(WriteMessage(message));
  return OkStatus();
}

Status StreamWriter::Close() {
  BRIDGE_RETURN_NOT_OK(CheckOpen());
  const Segment eos{kEndOfStream, sizeof(kEndOfStream)};
  Status status = sink_->Write(std::span<const Segment>(&eos, 1));
  if (!status.ok()) {
    failure_ = status;
    return status;
  }
  bytes_written_ += sizeof(kEndOfStream);
  closed_ = true;
  return OkStatus();
}

// ---------------------------------------------------------------------------------------
// FileWriter

struct FileWriter::Blocks {
  SchemaInfo schema;
  KeyValueMetadata footer_metadata;
  std::vector<fb::Block> dictionaries;
  std::vector<fb::Block> record_batches;
};

FileWriter::FileWriter(ByteSink* sink, std::unique_ptr<RecordBatchEncoder> encoder)
    : sink_(sink), encoder_(std::move(encoder)), blocks_(std::make_unique<Blocks>()) {}
FileWriter::~FileWriter() = default;

Result<std::unique_ptr<FileWriter>> FileWriter::Make(ByteSink* sink, const ArrowSchema& schema,
                                                     EncodeOptions options,
                                                     KeyValueMetadata footer_metadata) {
  if (sink == nullptr) return InvalidArgument("ipc: file writer without a sink");
  options.file_format = true;
  BRIDGE_ASSIGN_OR_RETURN(auto encoder, RecordBatchEncoder::Make(schema, options));
  BRIDGE_ASSIGN_OR_RETURN(EncodedMessage message, encoder->EncodeSchema());
  std::unique_ptr<FileWriter> writer(new FileWriter(sink, std::move(encoder)));
  // The footer repeats the schema; analyzing it again gives the same dictionary ids.
  BRIDGE_ASSIGN_OR_RETURN(writer->blocks_->schema, AnalyzeSchema(schema));
  writer->blocks_->footer_metadata = std::move(footer_metadata);
  const Segment start{kFileStart, sizeof(kFileStart)};
  BRIDGE_RETURN_NOT_OK(writer->WriteBytes(std::span<const Segment>(&start, 1)));
  writer->stream_range_.offset = writer->bytes_written_;
  BRIDGE_RETURN_NOT_OK(writer->WriteMessage(message));
  return writer;
}

Status FileWriter::CheckOpen() const {
  if (!failure_.ok())
    return FailedPrecondition("ipc: the file failed earlier: ", std::string(failure_.message()));
  if (closed_) return FailedPrecondition("ipc: the file is closed");
  return OkStatus();
}

Status FileWriter::WriteBytes(std::span<const Segment> segments) {
  Status status = sink_->Write(segments);
  if (!status.ok()) {
    failure_ = status;
    return status;
  }
  for (const Segment& s : segments) bytes_written_ += static_cast<int64_t>(s.size);
  return OkStatus();
}

Status FileWriter::WriteMessage(const EncodedMessage& message) {
  // Block.offset points at the continuation marker; metaDataLength counts the 8-byte
  // prefix and the padding.
  const fb::Block block(bytes_written_, static_cast<int32_t>(message.metadata.size()),
                        message.body_length);
  BRIDGE_RETURN_NOT_OK(WriteBytes(SegmentsOf(message)));
  if (message.type == MessageType::kDictionaryBatch) blocks_->dictionaries.push_back(block);
  if (message.type == MessageType::kRecordBatch) blocks_->record_batches.push_back(block);
  return OkStatus();
}

Status FileWriter::WriteBatch(OwnedArray batch) {
  BRIDGE_RETURN_NOT_OK(CheckOpen());
  BRIDGE_ASSIGN_OR_RETURN(std::vector<EncodedMessage> messages, encoder_->Encode(std::move(batch)));
  for (const EncodedMessage& message : messages) BRIDGE_RETURN_NOT_OK(WriteMessage(message));
  return OkStatus();
}

Status FileWriter::Close() {
  BRIDGE_RETURN_NOT_OK(CheckOpen());
  const Segment eos{kEndOfStream, sizeof(kEndOfStream)};
  BRIDGE_RETURN_NOT_OK(WriteBytes(std::span<const Segment>(&eos, 1)));
  const ByteRange stream{stream_range_.offset, bytes_written_ - stream_range_.offset};

  flatbuffers::FlatBufferBuilder fbb(1024);
  auto schema = WriteSchema(fbb, blocks_->schema);
  auto dictionaries = fbb.CreateVectorOfStructs(blocks_->dictionaries);
  auto record_batches = fbb.CreateVectorOfStructs(blocks_->record_batches);
  auto metadata = WriteMetadata(fbb, blocks_->footer_metadata);
  fbb.Finish(fb::CreateFooter(fbb, fb::MetadataVersion::V5, schema, dictionaries, record_batches,
                              metadata));
  const int32_t footer_length = static_cast<int32_t>(fbb.GetSize());
  uint8_t length_bytes[4];
  std::memcpy(length_bytes, &footer_length, sizeof(length_bytes));  // little-endian host
  const Segment tail[] = {{fbb.GetBufferPointer(), fbb.GetSize()},
                          {length_bytes, sizeof(length_bytes)},
                          {kMagic, sizeof(kMagic)}};
  BRIDGE_RETURN_NOT_OK(WriteBytes(tail));
  stream_range_ = stream;
  closed_ = true;
  return OkStatus();
}

}  // namespace bridge::ipc
