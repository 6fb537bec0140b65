// DoGet: the ticket's query streamed as FlightData, one message per IPC message.
#include "bridge/flight/server_internal.h"

namespace bridge::flight {
namespace {

// DoGet: runs the ticket's query on the pool and writes one FlightData per IPC message.
//
// At most one fetch (a pool task that fetches and encodes until one message is ready) and at
// most one write are in flight. Normally they alternate: a fetch ends by starting the write
// of its message, the write's completion starts the next fetch. While a fetch takes longer
// than the keep-alive interval, the ticker writes a metadata-only FlightData; a message the
// fetch finishes meanwhile waits in ready_ until that write completes. Whoever ends the call
// unregisters from the ticker and calls Finish without holding mu_ and touches nothing after.
class DoGetReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           public KeepAliveTarget {
 public:
  DoGetReactor(ServerState& state, std::string sql, std::chrono::milliseconds timeout)
      : state_(state), sql_(std::move(sql)), timeout_(timeout) {
    keepalive_ = EncodeMetadataOnly(kKeepAliveMetadata);
    fetching_ = true;
    state_.pool.Post([this] { Begin(); });
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    last_write_ = std::chrono::steady_clock::now();
    if (!ok) client_gone_ = true;
    if (fetching_) return;  // a keep-alive completed; the fetch carries on
    if (finish_status_) {
      Status status = *finish_status_;
      finishing_ = true;
      lock.unlock();
      return FinishNow(status);
    }
    if (client_gone_) {
      fetching_ = true;
      lock.unlock();
      state_.pool.Post([this] { Conclude(Cancelled("flight: the client went away")); });
      return;
    }
    if (ready_) {
      out_ = std::move(*ready_);
      ready_.reset();
      writing_ = true;
      lock.unlock();
      StartWrite(&out_);
      return;
    }
    fetching_ = true;
    lock.unlock();
    state_.pool.Post([this] { Fetch(); });
  }

  void OnCancel() override {
    cancelled_.store(true);
    std::lock_guard<std::mutex> lock(session_mu_);
    if (session_) session_->Cancel();
  }

  void OnDone() override { delete this; }

  void Tick(std::chrono::steady_clock::time_point now) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fetching_ || writing_ || finishing_ || finish_status_ || client_gone_ ||
          !first_write_done_ || now - last_write_ < state_.ticker.interval()) {
        return;
      }
      writing_ = true;
    }
    state_.keepalives_sent.fetch_add(1, std::memory_order_relaxed);
    StartWrite(&keepalive_);
  }

 private:
  static constexpr std::string_view kKeepAliveMetadata = "bridge:keepalive";

  void Begin() {
    Result<std::unique_ptr<engine::Session>> session = state_.services.db->Connect();
    if (!session.ok()) return Conclude(session.status());
    {
      std::lock_guard<std::mutex> lock(session_mu_);
      session_ = std::move(session).value();
    }
    if (cancelled_.load()) return Conclude(Cancelled("flight: DoGet cancelled"));
    // Prepare first and send the schema at once: executing may take long (DuckDB runs
    // blocking operators such as aggregates before it returns), and keep-alives may only
    // follow the schema.
    Result<std::unique_ptr<engine::PreparedStatement>> prepared = session_->Prepare(sql_);
    if (!prepared.ok()) return Conclude(prepared.status());
    prepared_ = std::move(prepared).value();
    Result<ipc::OwnedSchema> schema = prepared_->ResultSchema();
    if (!schema.ok()) return Conclude(schema.status());
    Result<std::unique_ptr<ipc::RecordBatchEncoder>> encoder =
        ipc::RecordBatchEncoder::Make(**schema);
    if (!encoder.ok()) return Conclude(encoder.status());
    encoder_ = std::move(encoder).value();
    Result<ipc::EncodedMessage> message = encoder_->EncodeSchema();
    if (!message.ok()) return Conclude(message.status());
    pending_.push_back(std::move(message).value());
    state_.ticker.Add(this);
    Fetch();
  }

  // Runs the prepared statement (on the first fetch after the schema).
  Status Execute() {
    engine::QueryOptions query_options;
    query_options.timeout = timeout_;
    query_options.batch_rows = state_.options.batch_rows;
    query_options.batch_bytes = state_.options.batch_bytes;
    BRIDGE_ASSIGN_OR_RETURN(stream_, prepared_->Execute({}, query_options));
    return OkStatus();
  }

  // On the pool: fetches until a message is ready, then writes it (or leaves it in ready_
  // while a keep-alive is being written); concludes at the end of the result or on an error.
  void Fetch() {
    while (pending_.empty()) {
      if (cancelled_.load()) return Conclude(Cancelled("flight: DoGet cancelled"));
      if (stream_ == nullptr) {
        Status executed = Execute();
        if (!executed.ok()) return Conclude(executed);
        continue;
      }
      Result<ipc::OwnedArray> batch = stream_->Next();
      if (!batch.ok()) return Conclude(batch.status());
      if (!batch->valid()) return Conclude(OkStatus());
      Result<std::vector<ipc::EncodedMessage>> messages = encoder_->Encode(std::move(*batch));
      if (!messages.ok()) return Conclude(messages.status());
      for (ipc::EncodedMessage& m : *messages) pending_.push_back(std::move(m));
    }
    EncodeResult encoded = EncodeFlightData(pending_.front());
    pending_.pop_front();
    state_.CountSent(encoded);
    std::unique_lock<std::mutex> lock(mu_);
    if (client_gone_) {
      lock.unlock();
      return Conclude(Cancelled("flight: the client went away"));
    }
    fetching_ = false;
    if (writing_) {
      ready_ = std::move(encoded.buffer);
      return;
    }
    writing_ = true;
    first_write_done_ = true;
    out_ = std::move(encoded.buffer);
    lock.unlock();
    StartWrite(&out_);
  }

  // On the pool, in place of a fetch: releases the query and ends the call (at once, or when
  // the keep-alive write in flight completes).
  void Conclude(const Status& status) {
    pending_.clear();
    encoder_.reset();
    stream_.reset();
    prepared_.reset();
    {
      std::lock_guard<std::mutex> lock(session_mu_);
      session_.reset();
    }
    std::unique_lock<std::mutex> lock(mu_);
    fetching_ = false;
    if (writing_) {
      finish_status_ = status;
      return;
    }
    finishing_ = true;
    lock.unlock();
    FinishNow(status);
  }

  void FinishNow(const Status& status) {
    state_.ticker.Remove(this);
    Finish(ToGrpcStatus(status));
  }

  ServerState& state_;
  const std::string sql_;
  const std::chrono::milliseconds timeout_;
  std::atomic<bool> cancelled_{false};

  std::mutex session_mu_;  // guards session_ against OnCancel
  std::unique_ptr<engine::Session> session_;
  // Used by the fetch in flight only.
  std::unique_ptr<engine::PreparedStatement> prepared_;
  std::unique_ptr<engine::BatchStream> stream_;
  std::unique_ptr<ipc::RecordBatchEncoder> encoder_;
  std::deque<ipc::EncodedMessage> pending_;

  std::mutex mu_;  // guards the flags below, ready_, and out_ while no write is in flight
  bool fetching_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool client_gone_ = false;
  bool first_write_done_ = false;
  std::optional<Status> finish_status_;
  std::optional<grpc::ByteBuffer> ready_;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  grpc::ByteBuffer out_;
  grpc::ByteBuffer keepalive_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewDoGet(ServerState& state,
                                                     grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* request) {
  Result<TicketContents> ticket = [&]() -> Result<TicketContents> {
    BRIDGE_RETURN_NOT_OK(state.Authorize(*ctx));
    grpc::Slice slice;
    protocol::Ticket message;
    if (!request->DumpToSingleSlice(&slice).ok() ||
        !message.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
      return InvalidArgument("flight: DoGet request is not a Ticket");
    }
    return state.signer.Verify(message.ticket());
  }();
  if (!ticket.ok()) return new FailedWrite<grpc::ByteBuffer>(ToGrpcStatus(ticket.status()));
  return new DoGetReactor(state, std::move(ticket->sql), CallTimeout(state, *ctx));
}

}  // namespace bridge::flight
