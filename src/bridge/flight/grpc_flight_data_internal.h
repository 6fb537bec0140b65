// The zero-copy FlightData codec: arrow.flight.protocol.FlightData written and read by hand
// so that data_body never passes through a protobuf `bytes` field.
//
// Encoding writes the protobuf wire format itself: one small owned slice with the tags,
// varint lengths, the descriptor, data_header and app_metadata, followed by one grpc::Slice
// per body segment that *references* the EncodedMessage's memory (the slice's destroy
// callback drops a reference to the message's keep_alive, so the batch lives until gRPC has
// sent the bytes). The resulting grpc::ByteBuffer is byte-for-byte what the generated
// FlightData serializer writes for the same fields.
//
// Decoding reads the fields back from a received grpc::ByteBuffer, skipping unknown fields
// and refusing malformed input (bad varints, lengths past the end, wrong wire types, groups).
// The body is a view into the received slice when the message arrived as one slice;
// otherwise the message is joined once and the body bytes are counted as copied.
//
// Private to src/bridge/flight. Thread safety: free functions, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "Flight.pb.h"
#include "bridge/arrow/buffer.h"
#include "bridge/arrow/encoder.h"
#include "bridge/common/status.h"
#include "grpcpp/support/byte_buffer.h"

namespace bridge::flight {

namespace protocol = ::arrow::flight::protocol;

// Tag of FlightData.data_body (field 1000, wire type 2) as its varint bytes.
inline constexpr std::string_view kDataBodyTag = "\xC2\x3E";

// What an encode produced.
struct EncodeResult {
  grpc::ByteBuffer buffer;
  int64_t body_bytes = 0;         // bytes of data_body
  int64_t body_bytes_copied = 0;  // body bytes copied into owned slices (0 for EncodedMessage)
};

// Returns the FlightData of `message`: data_header = message.flatbuffer(), data_body = its
// body segments (referenced, not copied), plus the optional descriptor and app_metadata.
// `message` is copied (cheaply: its metadata string and segment list; the body is shared
// through keep_alive), so the caller may drop it at once.
EncodeResult EncodeFlightData(const ipc::EncodedMessage& message,
                              const protocol::FlightDescriptor* descriptor = nullptr,
                              std::string_view app_metadata = {});

// Returns a FlightData with only app_metadata (and the optional descriptor): a metadata-only
// message such as a keep-alive.
grpc::ByteBuffer EncodeMetadataOnly(std::string_view app_metadata,
                                    const protocol::FlightDescriptor* descriptor = nullptr);

// A received FlightData.
struct DecodedFlightData {
  std::optional<protocol::FlightDescriptor> descriptor;
  std::string data_header;        // the flatbuffer Message (copied: a few hundred bytes)
  std::string app_metadata;       // copied
  ipc::Buffer body;               // view into the received memory (its owner keeps it alive)
  int64_t body_bytes_copied = 0;  // body bytes copied because gRPC split the message
};

// Decodes `buffer`. Unknown fields are skipped; a repeated singular field keeps the last
// value (as protobuf does). Returns InvalidArgument ("flight: FlightData: ...") for a
// truncated or overlong varint, a length past the end of the message, field number 0, wire
// types 3/4/6/7, a known field with the wrong wire type, or a descriptor that does not parse.
Result<DecodedFlightData> DecodeFlightData(const grpc::ByteBuffer& buffer);

// The same for bytes already in memory: `bytes` must stay alive as long as the returned
// body (its owner is `owner`, which may be null for memory the caller manages).
Result<DecodedFlightData> DecodeFlightData(ipc::Buffer bytes);

}  // namespace bridge::flight
