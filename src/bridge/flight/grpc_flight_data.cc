#include <memory>
#include <utility>
#include <vector>

#include "bridge/flight/grpc_flight_data_internal.h"
#include "grpcpp/support/slice.h"

namespace bridge::flight {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kFixed32 = 5;

constexpr uint32_t kDescriptorField = 1;
constexpr uint32_t kDataHeaderField = 2;
constexpr uint32_t kAppMetadataField = 3;
constexpr uint32_t kDataBodyField = 1000;

void PutVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void PutTag(std::string& out, uint32_t field, uint32_t wire_type) {
  PutVarint(out, (uint64_t{field} << 3) | wire_type);
}

void PutBytesField(std::string& out, uint32_t field, std::string_view bytes) {
  if (bytes.empty()) return;  // proto3: an empty bytes field is not written
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, bytes.size());
  out.append(bytes);
}

// Owned by a body slice: one reference to the EncodedMessage's keep_alive.
void ReleaseKeepAlive(void* user_data) {
  delete static_cast<std::shared_ptr<const void>*>(user_data);
}

// The header slice: every field before data_body, plus data_body's tag and length.
std::string EncodeHeader(const protocol::FlightDescriptor* descriptor, std::string_view data_header,
                         std::string_view app_metadata, int64_t body_length) {
  std::string out;
  out.reserve(data_header.size() + app_metadata.size() + 32);
  if (descriptor != nullptr) {
    // Present even when empty: a set message field is written with length 0.
    std::string bytes = descriptor->SerializeAsString();
    PutTag(out, kDescriptorField, kLengthDelimited);
    PutVarint(out, bytes.size());
    out.append(bytes);
  }
  PutBytesField(out, kDataHeaderField, data_header);
  PutBytesField(out, kAppMetadataField, app_metadata);
  if (body_length > 0) {
    PutTag(out, kDataBodyField, kLengthDelimited);
    PutVarint(out, static_cast<uint64_t>(body_length));
  }
  return out;
}

// Reads the protobuf fields of a FlightData held in contiguous memory.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : bytes_(bytes) {}

  bool done() const { return pos_ >= bytes_.size(); }
  size_t pos() const { return pos_; }

  Result<uint64_t> Varint(std::string_view what) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) {
        return InvalidArgument("flight: FlightData: truncated varint (", what, ") at byte ", pos_);
      }
      uint8_t byte = static_cast<uint8_t>(bytes_[pos_++]);
      if (shift == 63 && byte > 1) {
        return InvalidArgument("flight: FlightData: varint (", what,
                               ") longer than 64 bits at byte ", pos_ - 1);
      }
      value |= uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return InvalidArgument("flight: FlightData: varint (", what, ") longer than 10 bytes at byte ",
                           pos_);
  }

  // Returns `size` bytes starting at the current position, or an error if they run past the end.
  Result<std::string_view> Take(uint64_t size, uint32_t field) {
    if (size > bytes_.size() - pos_) {
      return InvalidArgument("flight: FlightData: field ", field, " has length ", size,
                             " but only ", bytes_.size() - pos_, " bytes remain");
    }
    std::string_view out = bytes_.substr(pos_, size);
    pos_ += size;
    return out;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace

EncodeResult EncodeFlightData(const ipc::EncodedMessage& message,
                              const protocol::FlightDescriptor* descriptor,
                              std::string_view app_metadata) {
  EncodeResult result;
  std::string header =
      EncodeHeader(descriptor, message.flatbuffer(), app_metadata, message.body_length);
  std::vector<grpc::Slice> slices;
  slices.reserve(message.body.size() + 1);
  slices.emplace_back(header.data(), header.size());  // copies the few metadata bytes
  for (const ipc::Segment& segment : message.body) {
    if (segment.size == 0) continue;
    // grpc::Slice(buf, len, destroy, user_data) references `buf`; each slice owns one
    // reference to the batch, released when gRPC drops the slice.
    auto* owner = new std::shared_ptr<const void>(message.keep_alive);
    slices.emplace_back(const_cast<uint8_t*>(segment.data), segment.size, &ReleaseKeepAlive, owner);
  }
  result.buffer = grpc::ByteBuffer(slices.data(), slices.size());
  result.body_bytes = message.body_length;
  result.body_bytes_copied = 0;
  return result;
}

grpc::ByteBuffer EncodeMetadataOnly(std::string_view app_metadata,
                                    const protocol::FlightDescriptor* descriptor) {
  std::string header = EncodeHeader(descriptor, {}, app_metadata, 0);
  grpc::Slice slice(header.data(), header.size());
  return grpc::ByteBuffer(&slice, 1);
}

Result<DecodedFlightData> DecodeFlightData(ipc::Buffer bytes) {
  DecodedFlightData out;
  WireReader reader(bytes.view());
  while (!reader.done()) {
    size_t field_start = reader.pos();
    BRIDGE_ASSIGN_OR_RETURN(uint64_t tag, reader.Varint("tag"));
    uint64_t field64 = tag >> 3;
    uint32_t wire_type = static_cast<uint32_t>(tag & 7);
    if (field64 == 0 || field64 > 0x1FFFFFFF) {
      return InvalidArgument("flight: FlightData: invalid field number ", field64, " at byte ",
                             field_start);
    }
    uint32_t field = static_cast<uint32_t>(field64);
    bool known = field == kDescriptorField || field == kDataHeaderField ||
                 field == kAppMetadataField || field == kDataBodyField;
    if (known && wire_type != kLengthDelimited) {
      return InvalidArgument("flight: FlightData: field ", field, " has wire type ", wire_type,
                             ", expected 2 (length-delimited)");
    }
    switch (wire_type) {
      case kVarint: {
        BRIDGE_RETURN_NOT_OK(reader.Varint("unknown field"));
        break;
      }
      case kFixed64: {
        BRIDGE_RETURN_NOT_OK(reader.Take(8, field));
        break;
      }
      case kFixed32: {
        BRIDGE_RETURN_NOT_OK(reader.Take(4, field));
        break;
      }
      case kLengthDelimited: {
        BRIDGE_ASSIGN_OR_RETURN(uint64_t length, reader.Varint("length"));
        size_t value_start = reader.pos();
        BRIDGE_ASSIGN_OR_RETURN(std::string_view value, reader.Take(length, field));
        if (field == kDescriptorField) {
          protocol::FlightDescriptor descriptor;
          if (!descriptor.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            return InvalidArgument("flight: FlightData: flight_descriptor does not parse");
          }
          out.descriptor = std::move(descriptor);
        } else if (field == kDataHeaderField) {
          out.data_header.assign(value);
        } else if (field == kAppMetadataField) {
          out.app_metadata.assign(value);
        } else if (field == kDataBodyField) {
          out.body = bytes.Slice(value_start, value.size());
        }
        break;
      }
      default:
        return InvalidArgument("flight: FlightData: unsupported wire type ", wire_type, " (field ",
                               field, ") at byte ", field_start);
    }
  }
  return out;
}

Result<DecodedFlightData> DecodeFlightData(const grpc::ByteBuffer& buffer) {
  if (!buffer.Valid()) return InvalidArgument("flight: FlightData: empty byte buffer");
  auto slice = std::make_shared<grpc::Slice>();
  int64_t copied = 0;
  if (!buffer.TrySingleSlice(slice.get()).ok()) {
    // gRPC delivered the message in several slices: join them once.
    grpc::Status joined = buffer.DumpToSingleSlice(slice.get());
    if (!joined.ok()) {
      return InvalidArgument("flight: FlightData: cannot read the message: ",
                             joined.error_message());
    }
    copied = static_cast<int64_t>(slice->size());
  }
  const uint8_t* data = slice->begin();
  size_t size = slice->size();
  BRIDGE_ASSIGN_OR_RETURN(DecodedFlightData out,
                          DecodeFlightData(ipc::Buffer(data, size, std::move(slice))));
  out.body_bytes_copied = copied == 0 ? 0 : static_cast<int64_t>(out.body.size());
  return out;
}

}  // namespace bridge::flight
