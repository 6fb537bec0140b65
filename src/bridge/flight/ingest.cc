// The receive path of DoPut and DoExchange (see ingest_internal.h).
#include <algorithm>

#include "bridge/flight/ingest_internal.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace bridge::flight {

// ---- IngestThreads ----

ServerState::IngestThreads::~IngestThreads() {
  std::map<uint64_t, std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [id, thread] : threads) thread.join();
}

Status ServerState::IngestThreads::Start(std::function<void()> task) {
  std::vector<std::thread> done;
  std::lock_guard lock(mu_);
  for (uint64_t id : finished_) {
    auto it = threads_.find(id);
    if (it != threads_.end()) {
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
  }
  finished_.clear();
  for (std::thread& t : done) t.join();  // they have returned (or are about to)
  if (running_ >= limit_) {
    return ResourceExhausted("flight: ", limit_, " uploads are running; try again later");
  }
  ++running_;
  uint64_t id = ++next_id_;
  threads_.emplace(id, std::thread([this, id, task = std::move(task)]() mutable {
                     task();
                     task = nullptr;
                     std::lock_guard lock(mu_);
                     --running_;
                     finished_.push_back(id);
                   }));
  return OkStatus();
}

int ServerState::IngestThreads::running() {
  std::lock_guard lock(mu_);
  return running_;
}

int ServerState::RunningUploads() {
  std::lock_guard lock(ingest_threads_mu);
  return ingest_threads == nullptr ? 0 : ingest_threads->running();
}

ServerState::IngestThreads& IngestThreadsOf(ServerState& state) {
  std::lock_guard lock(state.ingest_threads_mu);
  if (state.ingest_threads == nullptr) {
    state.ingest_threads = std::make_shared<ServerState::IngestThreads>(kMaxUploads);
  }
  return *state.ingest_threads;
}

// ---- UploadCall ----

UploadCall* UploadCall::Start(ServerState& state, grpc::CallbackServerContext* ctx, Body body) {
  auto* call = new UploadCall(state, ctx, std::move(body));
  Status started = IngestThreadsOf(state).Start([call] {
    Status status = call->body_(*call);
    call->FinishCall(status);  // the last use of `call`
  });
  if (!started.ok()) call->Finish(ToGrpcStatus(started));
  return call;
}

Result<std::optional<grpc::ByteBuffer>> UploadCall::Read() {
  std::unique_lock lock(mu_);
  auto cancelled = [] { return Cancelled("flight: the upload was cancelled"); };
  if (reads_aborted_) return cancelled();
  if (client_done_) return std::optional<grpc::ByteBuffer>();
  if (!reading_) {
    reading_ = true;
    read_done_ = false;
    lock.unlock();
    StartRead(&read_buffer_);
    lock.lock();
  }
  cv_.wait(lock, [this] { return read_done_ || reads_aborted_; });
  if (!read_done_) return cancelled();
  read_done_ = false;
  if (client_done_) return std::optional<grpc::ByteBuffer>();
  return std::optional<grpc::ByteBuffer>(std::move(read_buffer_));
}

Status UploadCall::Write(grpc::ByteBuffer message) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !writing_ || client_gone_; });
  if (client_gone_) return Cancelled("flight: the client went away");
  writing_ = true;
  write_buffer_ = std::move(message);
  lock.unlock();
  StartWrite(&write_buffer_);
  return OkStatus();
}

void UploadCall::TryWrite(grpc::ByteBuffer message) {
  {
    std::lock_guard lock(mu_);
    if (writing_ || client_gone_) return;
    writing_ = true;
    write_buffer_ = std::move(message);
  }
  StartWrite(&write_buffer_);
}

void UploadCall::AbortReads() {
  std::lock_guard lock(mu_);
  reads_aborted_ = true;
  cv_.notify_all();
}

Status UploadCall::ConfirmEnd() {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, kCancelGrace, [this] { return reads_aborted_; });
  if (reads_aborted_ || ctx_->IsCancelled()) {
    return Cancelled("flight: the upload was cancelled");
  }
  return OkStatus();
}

void UploadCall::SetCancelHook(std::function<void()> hook) {
  std::lock_guard lock(hook_mu_);
  cancel_hook_ = std::move(hook);
}

void UploadCall::OnReadDone(bool ok) {
  std::lock_guard lock(mu_);
  reading_ = false;
  read_done_ = true;
  if (!ok) client_done_ = true;
  cv_.notify_all();
}

void UploadCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (!ok) client_gone_ = true;
  cv_.notify_all();
}

void UploadCall::OnCancel() {
  {
    std::lock_guard lock(mu_);
    reads_aborted_ = true;
    client_gone_ = true;
    cv_.notify_all();
  }
  // Under hook_mu_, so the hook cannot be removed (and its session destroyed) meanwhile.
  std::lock_guard lock(hook_mu_);
  if (cancel_hook_) cancel_hook_();
}

void UploadCall::OnDone() { delete this; }

void UploadCall::FinishCall(const Status& status) {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !writing_; });
  }
  SetCancelHook(nullptr);
  // A read may still be in flight (the body stopped early); gRPC completes it as the call
  // ends.
  Finish(ToGrpcStatus(status));
}

// ---- UploadStream ----

Result<std::unique_ptr<UploadStream>> UploadStream::Open(ServerState& state, UploadCall& call,
                                                         DecodedFlightData first) {
  std::unique_ptr<UploadStream> stream(new UploadStream(state, call));
  std::optional<DecodedFlightData> message(std::move(first));
  while (!stream->decoder_.has_schema()) {
    if (!message) {
      return InvalidArgument("flight: the upload ended before its schema message");
    }
    if (!message->data_header.empty()) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream->Consume(*message));
      if (batch.valid()) return InvalidArgument("flight: the upload's first message is a batch");
    }
    if (stream->decoder_.has_schema()) break;
    BRIDGE_ASSIGN_OR_RETURN(message, stream->ReadMessage());
  }
  return stream;
}

Result<std::optional<DecodedFlightData>> UploadStream::ReadMessage() {
  BRIDGE_ASSIGN_OR_RETURN(std::optional<grpc::ByteBuffer> buffer, call_.Read());
  if (!buffer) return std::optional<DecodedFlightData>();
  BRIDGE_ASSIGN_OR_RETURN(DecodedFlightData message, DecodeFlightData(*buffer));
  state_.body_bytes_received.fetch_add(static_cast<int64_t>(message.body.size()),
                                       std::memory_order_relaxed);
  state_.body_bytes_received_copied.fetch_add(message.body_bytes_copied, std::memory_order_relaxed);
  return std::optional<DecodedFlightData>(std::move(message));
}

Result<ipc::OwnedArray> UploadStream::Consume(const DecodedFlightData& message) {
  const auto* header = reinterpret_cast<const uint8_t*>(message.data_header.data());
  return decoder_.Consume(std::span<const uint8_t>(header, message.data_header.size()),
                          message.body);
}

Result<ipc::OwnedArray> UploadStream::Next() {
  if (batches_ > 0 && on_consumed_) on_consumed_(rows_);
  while (!ended_) {
    BRIDGE_ASSIGN_OR_RETURN(std::optional<DecodedFlightData> message, ReadMessage());
    if (!message) {
      if (confirm_end_) BRIDGE_RETURN_NOT_OK(call_.ConfirmEnd());
      ended_ = true;
      break;
    }
    if (message->data_header.empty()) continue;  // metadata only
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, Consume(*message));
    if (!batch.valid()) continue;  // a dictionary batch, or the end-of-stream marker
    rows_ += batch->length;
    ++batches_;
    return batch;
  }
  return ipc::OwnedArray();
}

void UploadStream::Abort() { call_.AbortReads(); }

// ---- Helpers ----

Status ValidateTableName(std::string_view name) {
  auto invalid = [&](std::string_view why) {
    std::string shown(name.substr(0, 64));
    std::replace(shown.begin(), shown.end(), '\0', '?');
    return InvalidArgument("flight: invalid table name '", shown, name.size() > 64 ? "...'" : "'",
                           ": ", std::string(why));
  };
  if (name.empty()) return invalid("empty");
  if (name.size() > 255) return invalid("longer than 255 bytes");
  auto is_letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_letter(name[0])) return invalid("it must start with a letter");
  for (char c : name) {
    if (!is_letter(c) && !(c >= '0' && c <= '9') && c != '_') {
      return invalid("use ASCII letters, digits and '_' only");
    }
  }
  return OkStatus();
}

Result<PutMode> ParsePutMode(std::string_view app_metadata) {
  if (app_metadata.empty()) return PutMode::kCreate;
  nlohmann::json json = nlohmann::json::parse(app_metadata, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return InvalidArgument(
        "flight: DoPut: app_metadata of the first message must be a JSON object such as "
        "{\"mode\": \"append\"}");
  }
  auto it = json.find("mode");
  if (it == json.end()) return PutMode::kCreate;
  if (it->is_string()) {
    const std::string& mode = it->get_ref<const std::string&>();
    if (mode == "create") return PutMode::kCreate;
    if (mode == "append") return PutMode::kAppend;
    if (mode == "replace") return PutMode::kReplace;
  }
  return InvalidArgument("flight: DoPut: mode must be \"create\", \"append\" or \"replace\", got ",
                         it->dump());
}

grpc::ByteBuffer MakePutResult(const std::string& json) {
  protocol::PutResult result;
  result.set_app_metadata(json);
  std::string bytes = result.SerializeAsString();
  grpc::Slice slice(bytes);  // a copy: a few bytes of metadata
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace bridge::flight
