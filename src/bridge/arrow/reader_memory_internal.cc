#include "bridge/arrow/reader_memory_internal.h"

#include <cstdlib>
#include <cstring>

namespace bridge::ipc::internal {

alignas(64) const uint8_t kZeros[64] = {};

bool AllocationBudget::TryCharge(int64_t bytes) {
  if (bytes < 0) return false;
  int64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ - used) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

Result<Charge> Charge::Make(std::shared_ptr<AllocationBudget> budget, int64_t bytes,
                            std::string_view context, std::string_view what) {
  if (budget == nullptr || !budget->TryCharge(bytes)) {
    if (budget == nullptr) return Internal(context, ": ", what, ": no allocation budget");
    return ResourceExhausted(context, ": ", what, " needs ", bytes,
                             " bytes, more than the reader's allocation limit allows (",
                             budget->limit() - budget->used(), " of ", budget->limit(),
                             " bytes left)");
  }
  Charge charge;
  charge.budget_ = std::move(budget);
  charge.bytes_ = bytes;
  return charge;
}

Status Charge::Grow(int64_t bytes, std::string_view context, std::string_view what) {
  BRIDGE_ASSIGN_OR_RETURN(Charge more, Make(budget_, bytes, context, what));
  bytes_ += std::exchange(more.bytes_, 0);
  return OkStatus();
}

Result<std::shared_ptr<Allocation>> Allocation::Make(std::shared_ptr<AllocationBudget> budget,
                                                     int64_t size, std::string_view context,
                                                     std::string_view what) {
  constexpr int64_t kAlignment = 64;
  if (size < 0) return InvalidArgument(context, ": ", what, " has negative size ", size);
  // Rounded up to whole 64-byte lines (at least one), the rest zeroed.
  const int64_t capacity = size == 0 ? kAlignment
                                     : (size > INT64_MAX - kAlignment
                                            ? size
                                            : (size + kAlignment - 1) / kAlignment * kAlignment);
  BRIDGE_ASSIGN_OR_RETURN(Charge charge, Charge::Make(std::move(budget), capacity, context, what));
  auto* data = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, static_cast<size_t>(capacity)));
  if (data == nullptr) {
    return ResourceExhausted(context, ": cannot allocate ", capacity, " bytes for ", what);
  }
  std::memset(data + size, 0, static_cast<size_t>(capacity - size));
  return std::shared_ptr<Allocation>(new Allocation(data, size, std::move(charge)));
}

Allocation::~Allocation() { std::free(data_); }

}  // namespace bridge::ipc::internal
