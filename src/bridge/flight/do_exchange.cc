// DoExchange: SQL over the uploaded stream (table `input`), the result streamed back.
//
// The first FlightData carries the descriptor CMD (the UTF-8 SQL) and the Schema message of
// the upload. The query runs in an engine session with Session::QueryWithInput, which pulls
// the upload batch by batch as DuckDB needs it; the result goes back as FlightData (Schema
// message first, then dictionary and record batches), encoded with the zero-copy encoder.
#include "bridge/flight/ingest_internal.h"

namespace bridge::flight {
namespace {

Status RunDoExchange(ServerState& state, UploadCall& call, std::chrono::milliseconds timeout) {
  BRIDGE_ASSIGN_OR_RETURN(std::optional<grpc::ByteBuffer> first_buffer, call.Read());
  if (!first_buffer) return InvalidArgument("flight: DoExchange: the client sent no FlightData");
  BRIDGE_ASSIGN_OR_RETURN(DecodedFlightData first, DecodeFlightData(*first_buffer));
  first_buffer.reset();
  state.body_bytes_received.fetch_add(static_cast<int64_t>(first.body.size()),
                                      std::memory_order_relaxed);
  state.body_bytes_received_copied.fetch_add(first.body_bytes_copied, std::memory_order_relaxed);
  if (!first.descriptor || first.descriptor->type() != protocol::FlightDescriptor::CMD ||
      first.descriptor->cmd().empty()) {
    return InvalidArgument(
        "flight: DoExchange: the first FlightData needs a descriptor CMD with SQL that reads "
        "the table `input`");
  }
  std::string sql = first.descriptor->cmd();
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<UploadStream> upload,
                          UploadStream::Open(state, call, std::move(first)));
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<engine::Session> session, state.services.db->Connect());
  call.SetCancelHook([s = session.get()] { s->Cancel(); });
  Status status = [&]() -> Status {
    engine::QueryOptions options;
    options.timeout = timeout;
    options.batch_rows = state.options.batch_rows;
    options.batch_bytes = state.options.batch_bytes;
    BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<engine::BatchStream> result,
                            session->QueryWithInput(sql, *upload, options));
    BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<ipc::RecordBatchEncoder> encoder,
                            ipc::RecordBatchEncoder::Make(result->schema()));
    BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage schema, encoder->EncodeSchema());
    EncodeResult encoded = EncodeFlightData(schema);
    state.CountSent(encoded);
    BRIDGE_RETURN_NOT_OK(call.Write(std::move(encoded.buffer)));
    for (;;) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, result->Next());
      if (!batch.valid()) return OkStatus();
      BRIDGE_ASSIGN_OR_RETURN(std::vector<ipc::EncodedMessage> messages,
                              encoder->Encode(std::move(batch)));
      for (const ipc::EncodedMessage& message : messages) {
        encoded = EncodeFlightData(message);
        state.CountSent(encoded);
        BRIDGE_RETURN_NOT_OK(call.Write(std::move(encoded.buffer)));
      }
    }
  }();
  call.SetCancelHook(nullptr);  // before the session goes
  return status;
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* NewDoExchange(
    ServerState& state, grpc::CallbackServerContext* ctx) {
  Status allowed = state.Authorize(*ctx).status();
  if (!allowed.ok()) {
    return new FailedBidi<grpc::ByteBuffer, grpc::ByteBuffer>(ToGrpcStatus(allowed));
  }
  std::chrono::milliseconds timeout = CallTimeout(state, *ctx);
  return UploadCall::Start(state, ctx, [&state, timeout](UploadCall& call) {
    return RunDoExchange(state, call, timeout);
  });
}

}  // namespace bridge::flight
