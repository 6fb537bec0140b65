// libFuzzer target: an Arrow IPC file, opened and read batch by batch (and its stream
// section as a stream). Every input must end in batches or an error: never a crash or a
// sanitizer report.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "bridge/arrow/reader.h"

namespace {

constexpr int64_t kMaxBatches = 1000;

bridge::ipc::ReadOptions Options() {
  bridge::ipc::ReadOptions options;
  options.max_allocation_bytes = 64 << 20;
  return options;
}

void Touch(const ArrowArray& array) {
  volatile uint8_t sink = 0;
  for (int64_t i = 0; i < array.n_buffers; ++i) {
    if (array.buffers[i] != nullptr) sink = sink ^ *static_cast<const uint8_t*>(array.buffers[i]);
  }
  for (int64_t i = 0; i < array.n_children; ++i) Touch(*array.children[i]);
  if (array.dictionary != nullptr) Touch(*array.dictionary);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(data, data + size);
  bridge::ipc::Buffer buffer(bytes->data(), bytes->size(), bytes);
  auto reader = bridge::ipc::FileReader::Open(buffer, Options());
  if (!reader.ok()) return 0;
  for (int64_t i = 0; i < (*reader)->num_batches() && i < kMaxBatches; ++i) {
    auto batch = (*reader)->ReadBatch(i);
    if (batch.ok()) Touch(**batch);
  }
  auto [offset, length] = (*reader)->stream_section();
  if (auto stream = bridge::ipc::OpenStreamReader(
          buffer.Slice(static_cast<size_t>(offset), static_cast<size_t>(length)), Options());
      stream.ok()) {
    for (int i = 0; i < kMaxBatches; ++i) {
      auto batch = (*stream)->Next();
      if (!batch.ok() || !batch->valid()) break;
      Touch(**batch);
    }
  }
  return 0;
}
