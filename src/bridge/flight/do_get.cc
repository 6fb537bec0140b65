// DoGet: the ticket's query streamed as FlightData, one message per IPC message (a record
// batch above options.max_message_bytes as several messages of fewer rows).
#include "bridge/cache/cache.h"
#include "bridge/cache/result_key.h"
#include "bridge/flight/server_internal.h"
#include "spdlog/spdlog.h"

namespace bridge::flight {
namespace {

// What changes the bytes of a DoGet result besides the query: the message cap (batches are
// sliced to fit it). Flight entries are kept apart from HTTP's, whose batches are not cut.
std::string CacheOutputOptions(const FlightServerOptions& options) {
  return StrCat("flight;max_message_bytes=", options.max_message_bytes);
}

// An upper bound of the FlightData size of `m`: data_header and data_body with their tags
// and length varints (1 + 5 and 2 + 5 bytes at most).
int64_t FlightDataSize(const ipc::EncodedMessage& m) {
  return static_cast<int64_t>(m.flatbuffer_size) + m.body_length + 16;
}

// Rows [start, start + length) of the struct array `parent`, sharing its buffers and
// children (no data is copied): the slice's release drops one reference to the parent.
ipc::OwnedArray SliceOf(const std::shared_ptr<ipc::OwnedArray>& parent, int64_t start,
                        int64_t length) {
  struct Holder {
    std::shared_ptr<ipc::OwnedArray> parent;
  };
  const ArrowArray& p = **parent;
  ipc::OwnedArray out;
  ArrowArray* a = out.out();
  a->length = length;
  a->offset = p.offset + start;
  a->null_count = p.null_count == 0 ? 0 : -1;
  a->n_buffers = p.n_buffers;
  a->n_children = p.n_children;
  a->buffers = p.buffers;
  a->children = p.children;
  a->dictionary = p.dictionary;
  a->private_data = new Holder{parent};
  a->release = [](ArrowArray* self) {
    delete static_cast<Holder*>(self->private_data);
    self->release = nullptr;
  };
  return out;
}

// The plain generated-protobuf path (options.copy_body, the benchmark's baseline): the body
// is copied into FlightData.data_body and serialized by protobuf into gRPC's buffer.
EncodeResult EncodeThroughProtobuf(const ipc::EncodedMessage& m) {
  protocol::FlightData data;
  data.set_data_header(std::string(m.flatbuffer()));
  std::string* body = data.mutable_data_body();
  body->reserve(static_cast<size_t>(m.body_length));
  for (const ipc::Segment& segment : m.body) {
    body->append(reinterpret_cast<const char*>(segment.data), segment.size);
  }
  EncodeResult out;
  bool own_buffer = false;
  grpc::Status serialized =
      grpc::SerializationTraits<protocol::FlightData>::Serialize(data, &out.buffer, &own_buffer);
  (void)serialized;  // serializing a valid message into memory does not fail
  out.body_bytes = m.body_length;
  // Two copies of every body byte: into data_body, then into gRPC's slices.
  out.body_bytes_copied = 2 * m.body_length;
  return out;
}

// DoGet: runs the ticket's query on the pool and writes one FlightData per IPC message.
//
// At most one fetch (a pool task that fetches and encodes messages), one write and one
// message waiting in ready_ exist at a time. The fetch starts the write of its message and
// goes on to fetch the next while that write is in flight; a message fetched before the
// write completes waits in ready_, and the write's completion writes it and starts the next
// fetch. So DuckDB, the encoder and the socket work at once, and a slow client holds the
// query back by one message. While a fetch takes longer than the keep-alive interval, the
// ticker writes a metadata-only FlightData (a message fetched meanwhile waits in ready_). Whoever
// ends the call unregisters from the ticker and calls Finish without holding mu_ and touches
// nothing after.
//
// The call is registered with the server (ServerState::RegisterQuery) from construction
// until just before Finish, so that the `cancel` and CancelFlightInfo actions can interrupt
// its query (CancelQuery); the client then sees CANCELLED.
class DoGetReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           public KeepAliveTarget,
                           public ServerState::Cancellable {
 public:
  // With `open` (a CommandHandler's own stream), the stream is opened by it instead of
  // running ticket.sql; `params` are bound to ticket.sql (a CommandHandler's query).
  DoGetReactor(ServerState& state, const TicketContents& ticket, const std::string& user,
               std::chrono::milliseconds timeout, OpenStream open = nullptr,
               std::vector<engine::Value> params = {})
      : state_(state),
        sql_(ticket.sql),
        params_(std::move(params)),
        timeout_(timeout),
        open_(std::move(open)) {
    keepalive_ = EncodeMetadataOnly(kKeepAliveMetadata);
    registration_ = state_.RegisterQuery(
        {0, this, "DoGet", user, ticket.sql, ticket.plan_id, ticket.endpoint, Clock::now()});
    fetching_ = true;
    state_.pool.Post([this] { Begin(); });
  }

  void CancelQuery() override {
    cancelled_.store(true);
    std::lock_guard<std::mutex> lock(session_mu_);
    if (session_) session_->Cancel();
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    last_write_ = std::chrono::steady_clock::now();
    if (!ok) client_gone_ = true;
    if (client_gone_) {
      ready_.reset();
      if (fetching_) return;  // the fetch sees client_gone_ and concludes
      if (finish_status_) {
        Status status = *finish_status_;
        finishing_ = true;
        lock.unlock();
        return FinishNow(status);
      }
      fetching_ = true;
      lock.unlock();
      state_.pool.Post([this] { Conclude(Cancelled("flight: the client went away")); });
      return;
    }
    if (ready_) {
      // Write the message fetched meanwhile, and fetch the next one while it is written.
      out_ = std::move(*ready_);
      ready_.reset();
      writing_ = true;
      const bool fetch = !fetching_ && !finish_status_;
      if (fetch) fetching_ = true;
      lock.unlock();
      StartWrite(&out_);
      if (fetch) ScheduleFetch();
      return;
    }
    if (finish_status_) {
      Status status = *finish_status_;
      finishing_ = true;
      lock.unlock();
      return FinishNow(status);
    }
    if (fetching_) return;  // a keep-alive completed, or the fetch is ahead; it carries on
    fetching_ = true;
    lock.unlock();
    ScheduleFetch();
  }

  void OnCancel() override { CancelQuery(); }

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
    if (open_) {
      Result<std::unique_ptr<engine::BatchStream>> stream = open_(*session_, QueryOptions());
      if (!stream.ok()) return Conclude(stream.status());
      stream_ = std::move(stream).value();
      return Start(stream_->schema());
    }
    if (LookUpCache()) {
      // No query runs: give the engine session back for the transfer.
      {
        std::lock_guard<std::mutex> lock(session_mu_);
        session_.reset();
      }
      state_.ticker.Add(this);
      return Fetch();
    }
    // Prepare first and send the schema at once: executing may take long (DuckDB runs
    // blocking operators such as aggregates before it returns), and keep-alives may only
    // follow the schema.
    Result<std::unique_ptr<engine::PreparedStatement>> prepared = session_->Prepare(sql_);
    if (!prepared.ok()) return Conclude(prepared.status());
    prepared_ = std::move(prepared).value();
    Result<ipc::OwnedSchema> schema = prepared_->ResultSchema();
    if (!schema.ok()) return Conclude(schema.status());
    Start(**schema);
  }

  // Sends the schema message and starts fetching.
  void Start(const ArrowSchema& schema) {
    Result<std::unique_ptr<ipc::RecordBatchEncoder>> encoder =
        ipc::RecordBatchEncoder::Make(schema);
    if (!encoder.ok()) return Conclude(encoder.status());
    encoder_ = std::move(encoder).value();
    Result<ipc::EncodedMessage> message = encoder_->EncodeSchema();
    if (!message.ok()) return Conclude(message.status());
    pending_.push_back(std::move(message).value());
    if (cache_key_) {
      // A miss: the messages sent also go to a new entry (committed at the end).
      auto writer = state_.services.cache->BeginWrite(*cache_key_, schema);
      if (writer.ok()) {
        cache_writer_ = std::move(writer).value();
      } else if (writer.status().code() != StatusCode::kAlreadyExists) {
        spdlog::warn("flight: not caching a result: {}", std::string(writer.status().message()));
      }
    }
    state_.ticker.Add(this);
    Fetch();
  }

  // With a result cache and a query whose result may be cached: computes its key and looks
  // it up. Returns true on a hit whose schema message verifies; the batches are then
  // verified one by one as they are sent (a mismatch ends the call with DATA_LOSS; the entry
  // is gone, so the client's retry runs the query). A corrupt schema is a miss.
  bool LookUpCache() {
    cache::Cache* cache = state_.services.cache;
    if (cache == nullptr) return false;
    Result<std::optional<cache::CacheKey>> key = cache::ResultKey(
        *session_, *state_.services.catalog, sql_, params_, CacheOutputOptions(state_.options));
    if (!key.ok() || !*key) return false;
    cache_key_ = std::move(**key);
    std::shared_ptr<const cache::Entry> entry = cache->Lookup(*cache_key_);
    if (entry == nullptr) return false;
    Status verified = entry->VerifyMessage(0);
    if (!verified.ok()) {
      spdlog::warn("flight: cached result {} is corrupt ({}); running the query", entry->id(),
                   std::string(verified.message()));
      return false;
    }
    cached_ = std::move(entry);
    from_cache_ = true;
    state_.results_from_cache.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Starts the next fetch: on the pool, where fetching may block (DuckDB); inline for a
  // cached result, whose next message is a few microseconds of work (and a first-time
  // checksum), so each message costs no thread hop.
  void ScheduleFetch() {
    // Inline only when the next message needs no hashing (verified before: a warm entry);
    // a first-time checksum of a large message is work for the pool, not a gRPC thread.
    if (from_cache_ && cached_ != nullptr && next_cached_ < cached_->messages().size() &&
        cached_->IsVerified(next_cached_)) {
      return Fetch();
    }
    state_.pool.Post([this] { Fetch(); });
  }

  // The next message of the cached entry into pending_; false at its end.
  Result<bool> NextCachedMessage() {
    if (next_cached_ >= cached_->messages().size()) return false;
    BRIDGE_RETURN_NOT_OK(cached_->VerifyMessage(next_cached_));
    pending_.push_back(cache::MessageOf(cached_, next_cached_++));
    return true;
  }

  // Runs the prepared statement (on the first fetch after the schema).
  Status Execute() {
    BRIDGE_ASSIGN_OR_RETURN(stream_, prepared_->Execute(params_, QueryOptions()));
    return OkStatus();
  }

  engine::QueryOptions QueryOptions() const {
    engine::QueryOptions query_options;
    query_options.timeout = timeout_;
    query_options.batch_rows = state_.options.batch_rows;
    query_options.batch_bytes = state_.options.batch_bytes;
    return query_options;
  }

  // On the pool: fetches until a message is ready and writes it; while that write is in
  // flight it fetches the next message (so DuckDB and the socket work at the same time),
  // which then waits in ready_ for the write to complete (at most one message ahead).
  // Concludes at the end of the result or on an error.
  void Fetch() {
    for (;;) {
      while (pending_.empty()) {
        if (cancelled_.load()) return Conclude(Cancelled("flight: DoGet cancelled"));
        if (cached_ != nullptr) {
          Result<bool> more = NextCachedMessage();
          if (!more.ok()) return Conclude(more.status());
          if (!*more) return Conclude(OkStatus());
          continue;
        }
        if (stream_ == nullptr) {
          Status executed = Execute();
          if (!executed.ok()) return Conclude(executed);
          continue;
        }
        Result<ipc::OwnedArray> batch = stream_->Next();
        if (!batch.ok()) return Conclude(batch.status());
        if (!batch->valid()) return Conclude(OkStatus());
        Status encoded = EncodeBatch(std::move(*batch));
        if (!encoded.ok()) return Conclude(encoded);
      }
      // The tee: on failure (too big, disk full) the writer abandons the entry; the call goes on.
      if (cache_writer_ && !cache_writer_->Write(pending_.front()).ok()) cache_writer_.reset();
      EncodeResult encoded;
      if (state_.options.copy_body) {
        encoded = EncodeThroughProtobuf(pending_.front());
      } else {
        encoded = EncodeFlightData(pending_.front());
        // The few bytes the IPC encoder copies for slices (rebased offsets).
        encoded.body_bytes_copied += pending_.front().copied_bytes;
      }
      pending_.pop_front();
      state_.CountSent(encoded);
      std::unique_lock<std::mutex> lock(mu_);
      if (client_gone_) {
        lock.unlock();
        return Conclude(Cancelled("flight: the client went away"));
      }
      if (writing_) {
        ready_ = std::move(encoded.buffer);
        fetching_ = false;
        return;
      }
      writing_ = true;
      first_write_done_ = true;
      out_ = std::move(encoded.buffer);
      lock.unlock();
      StartWrite(&out_);
    }
  }

  // Encodes `batch` into pending_: its dictionary batches and its record batch, or, when
  // that record batch's FlightData would exceed options.max_message_bytes, several record
  // batches of consecutive row slices (zero copy; slices start at multiples of 8 rows so
  // that validity bitmaps need no shifting). A single row above the cap, and a dictionary
  // batch, are sent whole whatever their size (counted in oversize_messages).
  Status EncodeBatch(ipc::OwnedArray batch) {
    const int64_t cap = state_.options.max_message_bytes;
    if (cap <= 0) {
      BRIDGE_ASSIGN_OR_RETURN(auto messages, encoder_->Encode(std::move(batch)));
      for (ipc::EncodedMessage& m : messages) pending_.push_back(std::move(m));
      return OkStatus();
    }
    auto shared = std::make_shared<ipc::OwnedArray>(std::move(batch));
    const int64_t length = (*shared)->length;
    BRIDGE_ASSIGN_OR_RETURN(auto messages, encoder_->Encode(SliceOf(shared, 0, length)));
    if (messages.empty() || FlightDataSize(messages.back()) <= cap || length <= 1) {
      for (ipc::EncodedMessage& m : messages) {
        if (FlightDataSize(m) > cap) state_.oversize_messages.fetch_add(1);
        pending_.push_back(std::move(m));
      }
      return OkStatus();
    }
    // Keep the dictionaries, replace the record batch by slices of about cap bytes.
    const int64_t size = FlightDataSize(messages.back());
    messages.pop_back();
    for (ipc::EncodedMessage& m : messages) {
      if (FlightDataSize(m) > cap) state_.oversize_messages.fetch_add(1);
      pending_.push_back(std::move(m));
    }
    state_.batches_sliced.fetch_add(1, std::memory_order_relaxed);
    int64_t rows = std::max<int64_t>(1, length * cap / size);
    if (rows >= 16) rows -= rows % 8;
    for (int64_t start = 0; start < length; start += rows) {
      BRIDGE_RETURN_NOT_OK(EncodeSlice(shared, start, std::min(rows, length - start), cap));
    }
    return OkStatus();
  }

  // Encodes rows [start, start + length) of `batch`, halving until each message fits.
  Status EncodeSlice(const std::shared_ptr<ipc::OwnedArray>& batch, int64_t start, int64_t length,
                     int64_t cap) {
    BRIDGE_ASSIGN_OR_RETURN(auto messages, encoder_->Encode(SliceOf(batch, start, length)));
    if (messages.empty()) return OkStatus();
    if (FlightDataSize(messages.back()) > cap && length > 1) {
      messages.pop_back();
      for (ipc::EncodedMessage& m : messages) pending_.push_back(std::move(m));
      int64_t half = length / 2;
      if (half >= 16) half -= half % 8;
      BRIDGE_RETURN_NOT_OK(EncodeSlice(batch, start, half, cap));
      return EncodeSlice(batch, start + half, length - half, cap);
    }
    for (ipc::EncodedMessage& m : messages) {
      if (FlightDataSize(m) > cap) state_.oversize_messages.fetch_add(1);
      pending_.push_back(std::move(m));
    }
    return OkStatus();
  }

  // On the pool, in place of a fetch: releases the query and ends the call (at once, or when
  // the keep-alive write in flight completes).
  void Conclude(const Status& status) {
    pending_.clear();
    // A complete result is committed (fsync, rename) once the call's finish is under way, so
    // the client does not wait for the disk; an error or a cancel abandons the entry.
    std::unique_ptr<cache::EntryWriter> writer = std::move(cache_writer_);
    if (!status.ok()) writer.reset();
    ServerState& state = state_;  // `this` may be gone once the call is finished
    ConcludeCall(status);
    if (writer) {
      auto committed = writer->Commit();
      if (committed.ok()) {
        state.results_cached.fetch_add(1, std::memory_order_relaxed);
      } else {
        spdlog::warn("flight: caching a result failed: {}",
                     std::string(committed.status().message()));
      }
    }
  }

  // Releases the query and ends the call (at once, or when the write in flight completes).
  void ConcludeCall(const Status& status) {
    cached_.reset();  // messages in flight keep their own pins
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
    state_.UnregisterQuery(registration_);
    Finish(ToGrpcStatus(status));
  }

  ServerState& state_;
  const std::string sql_;
  const std::vector<engine::Value> params_;
  const std::chrono::milliseconds timeout_;
  const OpenStream open_;
  uint64_t registration_ = 0;
  std::atomic<bool> cancelled_{false};

  std::mutex session_mu_;  // guards session_ against OnCancel
  std::unique_ptr<engine::Session> session_;
  // Used by the fetch in flight only.
  std::unique_ptr<engine::PreparedStatement> prepared_;
  std::unique_ptr<engine::BatchStream> stream_;
  std::unique_ptr<ipc::RecordBatchEncoder> encoder_;
  std::deque<ipc::EncodedMessage> pending_;
  // Result cache: the key (a cacheable query), the entry being sent (a hit) and the next
  // message of it, or the entry being written (a miss).
  std::optional<cache::CacheKey> cache_key_;
  std::shared_ptr<const cache::Entry> cached_;
  bool from_cache_ = false;  // set before the first write, never reset
  size_t next_cached_ = 0;
  std::unique_ptr<cache::EntryWriter> cache_writer_;

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
  std::string user;
  OpenStream open;                    // a CommandHandler's own stream
  std::vector<engine::Value> params;  // a CommandHandler's query's parameters
  Result<TicketContents> ticket = [&]() -> Result<TicketContents> {
    BRIDGE_ASSIGN_OR_RETURN(auth::Principal principal, state.Authorize(*ctx));
    user = principal.user;
    grpc::Slice slice;
    protocol::Ticket message;
    if (!request->DumpToSingleSlice(&slice).ok() ||
        !message.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
      return InvalidArgument("flight: DoGet request is not a Ticket");
    }
    CommandHandler* handler = state.services.commands;
    if (handler != nullptr && handler->HandlesTicket(message.ticket())) {
      std::optional<std::string> inner = handler->UnwrapTicket(message.ticket());
      if (inner) {
        message.set_ticket(std::move(*inner));
      } else {
        BRIDGE_ASSIGN_OR_RETURN(
            CommandTicket own,
            handler->ResolveTicket(message.ticket(), MakeCommandCall(ctx, std::move(principal))));
        if (own.cancel_key != 0 && state.PlanCancelled(own.cancel_key)) {
          return Cancelled("flight: the FlightInfo of this ticket was cancelled");
        }
        TicketContents contents;
        contents.plan_id = own.cancel_key;
        if (!own.sql.empty()) {
          contents.sql = std::move(own.sql);
          params = std::move(own.params);
        } else {
          open = std::move(own.open);
          contents.sql = std::move(own.description);
        }
        return contents;
      }
    }
    BRIDGE_ASSIGN_OR_RETURN(TicketContents contents, state.signer.Verify(message.ticket()));
    if (state.PlanCancelled(contents.plan_id)) {
      return Cancelled("flight: the FlightInfo of this ticket was cancelled");
    }
    if (!contents.table.empty()) {
      // The endpoints of a split add up to the table only as it was when planned.
      std::optional<catalog::TableInfo> table = state.services.catalog->Table(contents.table);
      if (!table || table->version != contents.table_version) {
        return FailedPrecondition("flight: table '", contents.table,
                                  "' changed since the plan was made; call GetFlightInfo again");
      }
    }
    return contents;
  }();
  if (!ticket.ok()) return new FailedWrite<grpc::ByteBuffer>(ToGrpcStatus(ticket.status()));
  return new DoGetReactor(state, *ticket, user, CallTimeout(state, *ctx), std::move(open),
                          std::move(params));
}

}  // namespace bridge::flight
