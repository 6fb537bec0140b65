// libFuzzer target: an Arrow IPC stream, read from memory and through a byte source. Every
// input must end in a batch sequence, a clean end or an error: never a crash or a sanitizer
// report.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "bridge/arrow/reader.h"

namespace {

constexpr int kMaxBatches = 1000;

bridge::ipc::ReadOptions Options() {
  bridge::ipc::ReadOptions options;
  options.max_allocation_bytes = 64 << 20;
  return options;
}

// Reads the first and last byte of each fixed-size chunk the reader exported, so ASan checks
// that exported pointers are real.
void Touch(const ArrowArray& array) {
  volatile uint8_t sink = 0;
  for (int64_t i = 0; i < array.n_buffers; ++i) {
    if (array.buffers[i] != nullptr) sink = sink ^ *static_cast<const uint8_t*>(array.buffers[i]);
  }
  for (int64_t i = 0; i < array.n_children; ++i) Touch(*array.children[i]);
  if (array.dictionary != nullptr) Touch(*array.dictionary);
}

void Drain(bridge::ipc::RecordBatchReader& reader) {
  for (int i = 0; i < kMaxBatches; ++i) {
    auto batch = reader.Next();
    if (!batch.ok() || !batch->valid()) return;
    Touch(**batch);
  }
}

class ChunkedSource : public bridge::ipc::ByteSource {
 public:
  ChunkedSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bridge::Result<size_t> Read(uint8_t* out, size_t max) override {
    const size_t n = std::min({max, size_ - position_, size_t{4096}});
    if (n > 0) std::memcpy(out, data_ + position_, n);
    position_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An owned copy, so reads past the end are caught exactly.
  auto bytes = std::make_shared<std::vector<uint8_t>>(data, data + size);
  bridge::ipc::Buffer buffer(bytes->data(), bytes->size(), bytes);
  if (auto reader = bridge::ipc::OpenStreamReader(buffer, Options()); reader.ok()) {
    Drain(**reader);
  }
  if (auto reader =
          bridge::ipc::OpenStreamReader(std::make_unique<ChunkedSource>(data, size), Options());
      reader.ok()) {
    Drain(**reader);
  }
  return 0;
}
