#include <random>
#include <string>
#include <vector>

#include "Flight.pb.h"
#include "bridge/arrow/encoder.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/test_arrays.h"
#include "bridge/common/testing.h"
#include "bridge/flight/grpc_flight_data_internal.h"
#include "bridge/flight/grpc_status_internal.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/slice.h"

namespace bridge::flight {
namespace {

using ::bridge::ipc::EncodedMessage;
using ::bridge::ipc::RecordBatchEncoder;
namespace ta = ::bridge::ipc::test_arrays;

std::string Concat(const std::vector<ipc::Segment>& segments) {
  std::string out;
  for (const ipc::Segment& s : segments) out.append(reinterpret_cast<const char*>(s.data), s.size);
  return out;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer SingleSlice(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

// A schema (a: int32, s: utf8) and its encoder.
std::unique_ptr<RecordBatchEncoder> MakeEncoder() {
  std::vector<ipc::OwnedSchema> fields;
  fields.push_back(ta::MakeSchema("i", "a"));
  fields.push_back(ta::MakeSchema("u", "s"));
  ipc::OwnedSchema schema = ta::Columns(std::move(fields));
  auto encoder = RecordBatchEncoder::Make(*schema);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  return std::move(encoder).value();
}

// The record batch message of rows a = 1, 2, 3 and s = "one", "two", null.
EncodedMessage MakeBatchMessage(RecordBatchEncoder& encoder) {
  std::vector<ipc::OwnedArray> columns;
  columns.push_back(ta::Int32s({1, 2, 3}));
  columns.push_back(ta::Utf8({"one", "two", std::nullopt}));
  auto messages = encoder.Encode(ta::Batch(3, std::move(columns)));
  EXPECT_TRUE(messages.ok()) << messages.status();
  EXPECT_EQ(messages->size(), 1u);
  return std::move(messages->back());
}

protocol::FlightDescriptor SqlDescriptor(const std::string& sql) {
  protocol::FlightDescriptor d;
  d.set_type(protocol::FlightDescriptor::CMD);
  d.set_cmd(sql);
  return d;
}

TEST(FlightDataCodecTest, EncodingIsByteIdenticalToTheGeneratedSerializer) {
  auto encoder = MakeEncoder();
  EncodedMessage message = MakeBatchMessage(*encoder);
  ASSERT_GT(message.body_length, 0);
  protocol::FlightDescriptor descriptor = SqlDescriptor("SELECT 1");

  EncodeResult ours = EncodeFlightData(message, &descriptor, "meta");
  EXPECT_EQ(ours.body_bytes, message.body_length);
  EXPECT_EQ(ours.body_bytes_copied, 0);

  protocol::FlightData expected;
  *expected.mutable_flight_descriptor() = descriptor;
  expected.set_data_header(std::string(message.flatbuffer()));
  expected.set_app_metadata("meta");
  expected.set_data_body(Concat(message.body));
  EXPECT_EQ(Flatten(ours.buffer), expected.SerializeAsString());

  protocol::FlightData parsed;
  ASSERT_TRUE(parsed.ParseFromString(Flatten(ours.buffer)));
  EXPECT_EQ(parsed.flight_descriptor().cmd(), "SELECT 1");
  EXPECT_EQ(parsed.data_header(), message.flatbuffer());
  EXPECT_EQ(parsed.app_metadata(), "meta");
  EXPECT_EQ(parsed.data_body(), Concat(message.body));
}

TEST(FlightDataCodecTest, SchemaMessageHasNoBodyField) {
  auto encoder = MakeEncoder();
  ASSERT_OK_AND_ASSIGN(EncodedMessage schema, encoder->EncodeSchema());
  EncodeResult ours = EncodeFlightData(schema);
  std::string bytes = Flatten(ours.buffer);
  EXPECT_EQ(bytes.find(kDataBodyTag), std::string::npos);
  protocol::FlightData expected;
  expected.set_data_header(std::string(schema.flatbuffer()));
  EXPECT_EQ(bytes, expected.SerializeAsString());
}

TEST(FlightDataCodecTest, BodySlicesPointAtTheArrowBuffers) {
  auto encoder = MakeEncoder();
  EncodedMessage message = MakeBatchMessage(*encoder);
  EncodeResult ours = EncodeFlightData(message);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(ours.buffer.Dump(&slices).ok());
  std::vector<const ipc::Segment*> non_empty;
  for (const ipc::Segment& s : message.body) {
    if (s.size > 0) non_empty.push_back(&s);
  }
  ASSERT_EQ(slices.size(), non_empty.size() + 1);  // header slice + one per segment
  for (size_t i = 0; i < non_empty.size(); ++i) {
    EXPECT_EQ(slices[i + 1].begin(), non_empty[i]->data) << "slice " << i + 1 << " was copied";
    EXPECT_EQ(slices[i + 1].size(), non_empty[i]->size);
  }
  // The header slice ends with the data_body tag and the body length.
  std::string header(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size());
  EXPECT_NE(header.find(kDataBodyTag), std::string::npos);
}

TEST(FlightDataCodecTest, SlicesKeepTheBatchAliveUntilGrpcDropsThem) {
  auto encoder = MakeEncoder();
  int released_before = ta::released_test_arrays;
  grpc::ByteBuffer buffer;
  {
    EncodedMessage message = MakeBatchMessage(*encoder);
    buffer = EncodeFlightData(message).buffer;
  }
  encoder.reset();
  EXPECT_EQ(ta::released_test_arrays, released_before);  // the slices hold the batch
  std::string before = Flatten(buffer);
  buffer.Clear();
  EXPECT_GT(ta::released_test_arrays, released_before);
  EXPECT_FALSE(before.empty());
}

TEST(FlightDataCodecTest, DecodesGeneratedSerializationAsAViewOfOneSlice) {
  protocol::FlightData data;
  *data.mutable_flight_descriptor() = SqlDescriptor("SELECT 2");
  data.set_data_header("header");
  data.set_app_metadata("app");
  data.set_data_body(std::string(1000, 'b'));
  grpc::ByteBuffer buffer = SingleSlice(data.SerializeAsString());
  grpc::Slice slice;
  ASSERT_TRUE(buffer.TrySingleSlice(&slice).ok());

  ASSERT_OK_AND_ASSIGN(DecodedFlightData decoded, DecodeFlightData(buffer));
  ASSERT_TRUE(decoded.descriptor.has_value());
  EXPECT_EQ(decoded.descriptor->cmd(), "SELECT 2");
  EXPECT_EQ(decoded.data_header, "header");
  EXPECT_EQ(decoded.app_metadata, "app");
  EXPECT_EQ(decoded.body.view(), std::string(1000, 'b'));
  EXPECT_EQ(decoded.body_bytes_copied, 0);
  EXPECT_GE(decoded.body.data(), slice.begin());  // a view into the received slice
  EXPECT_LE(decoded.body.data() + decoded.body.size(), slice.end());
}

TEST(FlightDataCodecTest, DecodesSplitMessagesWithOneCountedCopy) {
  auto encoder = MakeEncoder();
  EncodedMessage message = MakeBatchMessage(*encoder);
  EncodeResult ours = EncodeFlightData(message, nullptr, "x");
  ASSERT_OK_AND_ASSIGN(DecodedFlightData decoded, DecodeFlightData(ours.buffer));
  EXPECT_FALSE(decoded.descriptor.has_value());
  EXPECT_EQ(decoded.data_header, message.flatbuffer());
  EXPECT_EQ(decoded.app_metadata, "x");
  EXPECT_EQ(decoded.body.view(), Concat(message.body));
  EXPECT_EQ(decoded.body_bytes_copied, message.body_length);
}

TEST(FlightDataCodecTest, RoundTripThroughTheIpcStreamDecoder) {
  auto encoder = MakeEncoder();
  ASSERT_OK_AND_ASSIGN(EncodedMessage schema, encoder->EncodeSchema());
  EncodedMessage batch = MakeBatchMessage(*encoder);
  ipc::StreamDecoder decoder;
  for (const EncodedMessage* m : {&schema, &batch}) {
    ASSERT_OK_AND_ASSIGN(DecodedFlightData decoded, DecodeFlightData(EncodeFlightData(*m).buffer));
    std::span<const uint8_t> header(reinterpret_cast<const uint8_t*>(decoded.data_header.data()),
                                    decoded.data_header.size());
    ASSERT_OK_AND_ASSIGN(ipc::OwnedArray array, decoder.Consume(header, decoded.body));
    if (m == &schema) {
      EXPECT_FALSE(array.valid());
      continue;
    }
    ASSERT_TRUE(array.valid());
    EXPECT_EQ((*array).length, 3);
    const ArrowSchema& s = decoder.schema();
    EXPECT_EQ(ta::ValueAt(*s.children[0], *(*array).children[0], 2), "3");
    EXPECT_EQ(ta::ValueAt(*s.children[1], *(*array).children[1], 1), "'two'");
    EXPECT_EQ(ta::ValueAt(*s.children[1], *(*array).children[1], 2), "null");
  }
}

TEST(FlightDataCodecTest, SkipsUnknownFieldsOfEveryWireType) {
  protocol::FlightData data;
  data.set_data_header("h");
  data.set_data_body("body");
  std::string unknown;
  unknown += std::string("\x28\x96\x01", 3);                // field 5 varint 150
  unknown += std::string("\x31") + std::string(8, '\x07');  // field 6 fixed64
  unknown += std::string("\x3D") + std::string(4, '\x01');  // field 7 fixed32
  unknown += std::string("\x42\x03xyz", 5);                 // field 8 bytes
  unknown += std::string("\xCA\x3E\x01z", 4);               // field 1001 bytes
  ASSERT_OK_AND_ASSIGN(DecodedFlightData decoded,
                       DecodeFlightData(SingleSlice(unknown + data.SerializeAsString() + unknown)));
  EXPECT_EQ(decoded.data_header, "h");
  EXPECT_EQ(decoded.body.view(), "body");
}

TEST(FlightDataCodecTest, RefusesMalformedBytes) {
  struct Case {
    std::string bytes;
    std::string message;
  };
  std::vector<Case> cases = {
      {std::string("\x12", 1), "truncated varint (length)"},
      {std::string("\x12\x05"
                   "ab",
                   4),
       "field 2 has length 5 but only 2 bytes remain"},
      {std::string("\xC2\x3E\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x02", 12), "longer than 64 bits"},
      {std::string("\xC2\x3E\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x7F", 11), "field 1000 has length"},
      {std::string("\x4B", 1), "unsupported wire type 3 (field 9)"},
      {std::string("\x4C", 1), "unsupported wire type 4 (field 9)"},
      {std::string("\x0B", 1), "field 1 has wire type 3"},
      {std::string("\x02\x00", 2), "invalid field number 0"},
      {std::string("\x10\x01", 2), "field 2 has wire type 0"},
      {std::string("\x0A\x02\xFF\xFF", 4), "flight_descriptor does not parse"},
      {std::string("\x31\x01\x02", 3), "field 6 has length 8"},
      {std::string("\x80", 1), "truncated varint (tag)"},
  };
  for (const Case& c : cases) {
    EXPECT_STATUS(DecodeFlightData(SingleSlice(c.bytes)), StatusCode::kInvalidArgument, c.message)
        << ta::Hex(c.bytes.data(), static_cast<int64_t>(c.bytes.size()));
  }
  EXPECT_STATUS(DecodeFlightData(grpc::ByteBuffer()), StatusCode::kInvalidArgument, "empty");
}

TEST(FlightDataCodecTest, RandomBytesNeverCrashAndAgreeWithProtobufOnSuccess) {
  protocol::FlightData data;
  *data.mutable_flight_descriptor() = SqlDescriptor("x");
  data.set_data_header("header");
  data.set_app_metadata("meta");
  data.set_data_body(std::string(64, 'b'));
  std::string valid = data.SerializeAsString();
  google::protobuf::LogSilencer quiet;  // protobuf logs each invalid UTF-8 path it meets
  std::mt19937 rng(42);
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = valid;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    Result<DecodedFlightData> ours = DecodeFlightData(SingleSlice(bytes));
    protocol::FlightData theirs;
    bool theirs_ok = theirs.ParseFromString(bytes);
    if (ours.ok() && theirs_ok) {
      ++accepted;
      EXPECT_EQ(ours->data_header, theirs.data_header());
      EXPECT_EQ(ours->app_metadata, theirs.app_metadata());
      EXPECT_EQ(ours->body.view(), theirs.data_body());
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(FlightStatusTest, MapsEveryCodeOnce) {
  EXPECT_EQ(ToGrpcStatus(OkStatus()).error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(ToGrpcStatus(InvalidArgument("bad sql")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(InvalidArgument("bad sql")).error_message(), "bad sql");
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ToGrpcStatus(PermissionDenied("x")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(NotFound("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(ResourceExhausted("x")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(Cancelled("x")).error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(ToGrpcStatus(DeadlineExceeded("x")).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcStatus(Unimplemented("x")).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ToGrpcStatus(IoError("x")).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ToGrpcStatus(Internal("x")).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ToGrpcStatus(absl::DataLossError("x")).error_code(), grpc::StatusCode::DATA_LOSS);
}

}  // namespace
}  // namespace bridge::flight
