// Private to src/bridge/flight: the receive path of DoPut and DoExchange.
//
// An upload is a raw bidirectional call (FlightData in as grpc::ByteBuffer) driven by one
// dedicated thread per call (ServerState::IngestThreads, at most kMaxUploads at once), not by
// the query pool: an upload lasts as long as the client keeps sending, and the pool serves
// DoGet fetches. The thread reads one message at a time (UploadCall::Read) only when the
// consumer (the Parquet writer, or the DoExchange query) asks for the next batch, so a fast
// client is held back by gRPC flow control and memory stays bounded by about one message.
//
// Zero copy: each FlightData is decoded with DecodeFlightData; its body is a view into the
// received slice when gRPC delivered the message in one slice (else it was joined once and
// counted in body_bytes_received_copied); ipc::StreamDecoder's arrays are views into that body,
// and DuckDB takes them over with duckdb_data_chunk_from_arrow.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bridge/arrow/reader.h"
#include "bridge/engine/engine.h"
#include "bridge/flight/server_internal.h"

namespace bridge::flight {

// Uploads (DoPut + DoExchange) that may run at once; more get RESOURCE_EXHAUSTED.
inline constexpr int kMaxUploads = 16;

// The threads of running uploads. Start() refuses beyond the limit; finished threads are
// joined by the next Start() and by the destructor. Thread-safe.
struct ServerState::IngestThreads {
 public:
  explicit IngestThreads(int limit) : limit_(limit) {}
  ~IngestThreads();
  IngestThreads(const IngestThreads&) = delete;
  IngestThreads& operator=(const IngestThreads&) = delete;

  // Runs `task` on a new thread. ResourceExhausted when `limit` tasks are running.
  Status Start(std::function<void()> task);

  // Tasks that have not returned yet.
  int running();

 private:
  std::mutex mu_;
  const int limit_;
  int running_ = 0;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::thread> threads_;
  std::vector<uint64_t> finished_;
};

// Returns the server's upload threads, made on first use.
ServerState::IngestThreads& IngestThreadsOf(ServerState& state);

// A raw bidirectional call (ByteBuffers both ways) driven synchronously from one worker
// thread: Read() and Write() block until gRPC completes the operation. One Read and one Write
// may be in progress at the same time (from different threads). The reactor owns itself: it
// is deleted after Finish() once gRPC is done with it, so the worker must not touch it after
// calling Finish().
class UploadCall final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // What the worker runs; its return value ends the call.
  using Body = std::function<Status(UploadCall&)>;

  // Starts the call: `body` runs on a new upload thread. Returns the reactor for gRPC (which
  // fails at once with RESOURCE_EXHAUSTED when too many uploads run).
  static UploadCall* Start(ServerState& state, grpc::CallbackServerContext* ctx, Body body);

  // Returns the next message, nullopt once the client has finished sending, Cancelled when
  // the call was cancelled or AbortReads() was called.
  Result<std::optional<grpc::ByteBuffer>> Read();

  // Writes `message`, first waiting for the previous write. Cancelled if the client is gone.
  Status Write(grpc::ByteBuffer message);

  // Starts writing `message` unless a write is in flight, in which case it is dropped (for
  // acknowledgements that a later one supersedes).
  void TryWrite(grpc::ByteBuffer message);

  // Makes a blocked Read() and every later one return Cancelled. Any thread.
  void AbortReads();

  // After Read() returned the end of the upload: returns Cancelled if that end was in fact
  // the client cancelling the call. gRPC fails the pending read of a cancelled call before
  // (or after) it calls OnCancel, and a failed read looks like a half-close, so this waits
  // up to kCancelGrace for OnCancel (or IsCancelled) before calling the end genuine. For
  // what must not commit a cancelled upload (DoPut).
  Status ConfirmEnd();
  static constexpr std::chrono::milliseconds kCancelGrace{100};

  // Sets the function OnCancel calls (e.g. Session::Cancel); an empty one removes it. The
  // function must stay callable until it is removed.
  void SetCancelHook(std::function<void()> hook);

  grpc::CallbackServerContext& context() { return *ctx_; }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  UploadCall(ServerState& state, grpc::CallbackServerContext* ctx, Body body)
      : state_(state), ctx_(ctx), body_(std::move(body)) {}
  // Waits for the write in flight and ends the call with `status`.
  void FinishCall(const Status& status);

  ServerState& state_;
  grpc::CallbackServerContext* ctx_;
  Body body_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool reading_ = false;  // a read is in flight
  bool read_done_ = false;
  bool client_done_ = false;  // the client half-closed (or the call ended)
  bool reads_aborted_ = false;
  bool writing_ = false;
  bool client_gone_ = false;  // a write failed or the call was cancelled
  grpc::ByteBuffer read_buffer_;
  grpc::ByteBuffer write_buffer_;
  std::mutex hook_mu_;  // guards cancel_hook_ and its calls; taken before mu_, never inside it
  std::function<void()> cancel_hook_;
};

// The uploaded Arrow stream of a call, as an engine input: each Next() reads FlightData
// messages until one holds a record batch (schema and dictionary messages are applied on the
// way, metadata-only messages skipped). Used by one consumer thread; Abort() from any thread.
class UploadStream final : public engine::InputStream {
 public:
  // Decodes `first` (already read, its descriptor already taken) and reads on until the
  // schema has arrived. InvalidArgument for malformed FlightData, a bad IPC stream, or a
  // stream that ends before its schema.
  static Result<std::unique_ptr<UploadStream>> Open(ServerState& state, UploadCall& call,
                                                    DecodedFlightData first);

  const ArrowSchema& schema() const override { return decoder_.schema(); }
  Result<ipc::OwnedArray> Next() override;
  void Abort() override;

  // Called at the start of each Next() after the first batch, with the rows handed out so
  // far (all consumed by then): DoPut's acknowledgements.
  void set_on_consumed(std::function<void(int64_t rows)> f) { on_consumed_ = std::move(f); }

  // Makes the end of the upload wait for UploadCall::ConfirmEnd (DoPut: a cancelled upload
  // must not look complete).
  void set_confirm_end(bool confirm) { confirm_end_ = confirm; }

  int64_t rows() const { return rows_; }
  int64_t batches() const { return batches_; }

 private:
  UploadStream(ServerState& state, UploadCall& call) : state_(state), call_(call) {}
  // Feeds one received message to the decoder; returns its record batch, if any.
  Result<ipc::OwnedArray> Consume(const DecodedFlightData& message);
  // Reads and decodes the next message; nullopt at the end of the upload.
  Result<std::optional<DecodedFlightData>> ReadMessage();

  ServerState& state_;
  UploadCall& call_;
  ipc::StreamDecoder decoder_;
  std::function<void(int64_t)> on_consumed_;
  int64_t rows_ = 0;
  int64_t batches_ = 0;
  bool ended_ = false;
  bool confirm_end_ = false;
};

// Returns OK if `name` may name an uploaded table: 1 to 255 bytes of ASCII letters, digits
// and '_', starting with a letter, so that `<name>.parquet` becomes a table of that very name
// (the catalog would rename or ignore anything else). InvalidArgument otherwise; this also
// refuses '/', '\\', "..", a leading '.', NUL and the empty name.
Status ValidateTableName(std::string_view name);

// DoPut modes (app_metadata of the first message: {"mode": "create"|"append"|"replace"}).
enum class PutMode { kCreate, kAppend, kReplace };

// Parses the first message's app_metadata: empty = create. InvalidArgument for anything but
// a JSON object whose optional "mode" is one of the three names.
Result<PutMode> ParsePutMode(std::string_view app_metadata);

// Returns a serialized PutResult whose app_metadata is `json`.
grpc::ByteBuffer MakePutResult(const std::string& json);

}  // namespace bridge::flight
