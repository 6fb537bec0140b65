#include "bridge/arrow/writer.h"

#include <limits.h>
#include <poll.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "bridge/arrow/fb/File_generated.h"
#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/arrow/reader_message_internal.h"
#include "bridge/arrow/schema_encode_internal.h"
#include "bridge/common/errno.h"

namespace bridge::ipc {
namespace {

// End of stream: continuation marker and a zero metadata length.
constexpr uint8_t kEndOfStream[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
// File magic plus the 2 padding bytes that follow it at the start of a file.
constexpr uint8_t kFileStart[8] = {'A', 'R', 'R', 'O', 'W', '1', 0, 0};
constexpr uint8_t kMagic[6] = {'A', 'R', 'R', 'O', 'W', '1'};

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
  std::set<int64_t> dictionary_ids;  // written through WriteEncodedMessage
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

Result<int64_t> FileWriter::CheckEncodedMessage(const EncodedMessage& message) const {
  const std::string_view flatbuffer = message.flatbuffer();
  if (message.metadata.size() < 8 || message.metadata.size() % 8 != 0 ||
      flatbuffer.size() + 8 > message.metadata.size()) {
    return InvalidArgument("ipc: file writer: encoded message metadata of ",
                           message.metadata.size(), " bytes is not framed and 8-byte aligned");
  }
  uint32_t marker;
  int32_t length;
  std::memcpy(&marker, message.metadata.data(), 4);
  std::memcpy(&length, message.metadata.data() + 4, 4);
  if (marker != 0xFFFFFFFFu || static_cast<size_t>(length) + 8 != message.metadata.size()) {
    return InvalidArgument("ipc: file writer: encoded message prefix does not match its ",
                           message.metadata.size(), " bytes of metadata");
  }
  int64_t body_bytes = 0;
  for (const Segment& s : message.body) body_bytes += static_cast<int64_t>(s.size);
  if (body_bytes != message.body_length || message.body_length % 8 != 0) {
    return InvalidArgument("ipc: file writer: encoded message body of ", body_bytes,
                           " bytes (body_length ", message.body_length,
                           ") is not a multiple of 8 or disagrees with its segments");
  }
  ReadStats stats;
  BRIDGE_ASSIGN_OR_RETURN(
      auto verified,
      internal::VerifyMessage(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(flatbuffer.data()),
                                   flatbuffer.size()),
          ReadOptions{}, stats, "ipc: file writer: encoded message"));
  const fb::Message* m = verified.root;
  if (m->body_length() != message.body_length) {
    return InvalidArgument("ipc: file writer: encoded message says bodyLength ", m->body_length(),
                           " but has ", message.body_length, " bytes");
  }
  const fb::BodyCompression* compression = nullptr;
  int64_t dictionary_id = -1;
  switch (m->header_type()) {
    case fb::MessageHeader::Schema:
      return InvalidArgument("ipc: file writer: the schema message is written at Make");
    case fb::MessageHeader::DictionaryBatch: {
      if (message.type != MessageType::kDictionaryBatch) break;
      const fb::DictionaryBatch* batch = m->header_as_DictionaryBatch();
      const bool seen = blocks_->dictionary_ids.count(batch->id()) > 0;
      if (!batch->is_delta() && seen) {
        return InvalidArgument("ipc: file writer: dictionary ", batch->id(),
                               " cannot replace an earlier one in an IPC file");
      }
      if (batch->is_delta() && !seen) {
        return InvalidArgument("ipc: file writer: delta of dictionary ", batch->id(),
                               " before the dictionary itself");
      }
      if (batch->data() != nullptr) compression = batch->data()->compression();
      dictionary_id = batch->id();
      break;
    }
    case fb::MessageHeader::RecordBatch:
      if (message.type != MessageType::kRecordBatch) break;
      compression = m->header_as_RecordBatch()->compression();
      break;
    default:
      return InvalidArgument("ipc: file writer: encoded message of unexpected type ",
                             static_cast<int>(m->header_type()));
  }
  const MessageType expected = m->header_type() == fb::MessageHeader::RecordBatch
                                   ? MessageType::kRecordBatch
                                   : MessageType::kDictionaryBatch;
  if (message.type != expected) {
    return InvalidArgument("ipc: file writer: encoded message type disagrees with its flatbuffer");
  }
  const Codec codec = compression == nullptr                                   ? Codec::kNone
                      : compression->codec() == fb::CompressionType::LZ4_FRAME ? Codec::kLz4Frame
                                                                               : Codec::kZstd;
  if (codec != encoder_->options().codec) {
    return InvalidArgument("ipc: file writer: encoded message body codec ", CodecName(codec),
                           " is not the file's codec ", CodecName(encoder_->options().codec));
  }
  return dictionary_id;
}

Status FileWriter::WriteEncodedMessage(const EncodedMessage& message) {
  BRIDGE_RETURN_NOT_OK(CheckOpen());
  BRIDGE_ASSIGN_OR_RETURN(const int64_t dictionary_id, CheckEncodedMessage(message));
  BRIDGE_RETURN_NOT_OK(WriteMessage(message));
  if (message.type == MessageType::kDictionaryBatch) blocks_->dictionary_ids.insert(dictionary_id);
  return OkStatus();
}

Status FileWriter::Close(KeyValueMetadata footer_metadata) {
  BRIDGE_RETURN_NOT_OK(CheckOpen());
  blocks_->footer_metadata = std::move(footer_metadata);
  return Close();
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

// ---------------------------------------------------------------------------------------
// Footer

Result<FileFooter> ReadFileFooter(std::span<const uint8_t> file, int64_t max_footer_bytes) {
  const int64_t size = static_cast<int64_t>(file.size());
  // magic + padding (8), footer length (4), magic (6), and at least one byte of footer.
  constexpr int64_t kMinimum = sizeof(kFileStart) + 4 + sizeof(kMagic) + 1;
  if (size < kMinimum) {
    return InvalidArgument("ipc: file of ", size, " bytes is too short for an IPC file");
  }
  if (std::memcmp(file.data(), kFileStart, sizeof(kMagic)) != 0 ||
      std::memcmp(file.data() + size - sizeof(kMagic), kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgument("ipc: file does not start and end with the ARROW1 magic");
  }
  int32_t footer_length;
  std::memcpy(&footer_length, file.data() + size - sizeof(kMagic) - 4, 4);
  const int64_t max_length = std::min<int64_t>(size - kMinimum + 1, max_footer_bytes);
  if (footer_length <= 0 || footer_length > max_length) {
    return InvalidArgument("ipc: footer length ", footer_length, " is not within 1..", max_length);
  }
  FileFooter out;
  out.footer_offset = size - static_cast<int64_t>(sizeof(kMagic)) - 4 - footer_length;
  ReadStats stats;
  ReadOptions options;
  options.max_metadata_bytes = max_footer_bytes;
  BRIDGE_ASSIGN_OR_RETURN(
      auto footer, internal::VerifyFooter(file.subspan(static_cast<size_t>(out.footer_offset),
                                                       static_cast<size_t>(footer_length)),
                                          options, stats, "ipc: file footer"));
  auto blocks = [](const flatbuffers::Vector<const fb::Block*>* in, std::vector<FileBlock>& to) {
    if (in == nullptr) return;
    to.reserve(in->size());
    for (const fb::Block* b : *in) {
      to.push_back(FileBlock{b->offset(), b->meta_data_length(), b->body_length()});
    }
  };
  blocks(footer.root->dictionaries(), out.dictionaries);
  blocks(footer.root->record_batches(), out.record_batches);
  if (const auto* metadata = footer.root->custom_metadata(); metadata != nullptr) {
    for (const fb::KeyValue* kv : *metadata) {
      out.custom_metadata.emplace_back(kv->key() ? kv->key()->str() : std::string(),
                                       kv->value() ? kv->value()->str() : std::string());
    }
  }
  return out;
}

}  // namespace bridge::ipc
