// Memory the IPC reader allocates, counted against ReadOptions::max_allocation_bytes.
// Private to src/bridge/arrow.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "bridge/common/status.h"

namespace bridge::ipc::internal {

// Bytes a reader may have allocated at once. Shared (by shared_ptr) between the reader and
// every allocation it made, which may outlive it; thread-safe.
class AllocationBudget {
 public:
  explicit AllocationBudget(int64_t limit) : limit_(limit < 0 ? 0 : limit) {}
  AllocationBudget(const AllocationBudget&) = delete;
  AllocationBudget& operator=(const AllocationBudget&) = delete;

  // Counts `bytes` more; returns false (counting nothing) if that would exceed the limit.
  bool TryCharge(int64_t bytes);
  void Refund(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  int64_t limit() const { return limit_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

// A count of bytes held against a budget until destruction. Move-only.
class Charge {
 public:
  Charge() = default;
  // Counts `bytes` against `budget`; ResourceExhausted naming `what` (prefixed with
  // `context`) if they do not fit.
  static Result<Charge> Make(std::shared_ptr<AllocationBudget> budget, int64_t bytes,
                             std::string_view context, std::string_view what);
  ~Charge() { Reset(); }
  Charge(Charge&& other) noexcept
      : budget_(std::move(other.budget_)), bytes_(std::exchange(other.bytes_, 0)) {}
  Charge& operator=(Charge&& other) noexcept {
    if (this != &other) {
      Reset();
      budget_ = std::move(other.budget_);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  Charge(const Charge&) = delete;
  Charge& operator=(const Charge&) = delete;

  int64_t bytes() const { return bytes_; }
  // Counts `bytes` more against the same budget (the charge must come from Make).
  // ResourceExhausted, counting nothing, if they do not fit.
  Status Grow(int64_t bytes, std::string_view context, std::string_view what);
  void Reset() {
    if (budget_ != nullptr && bytes_ != 0) budget_->Refund(bytes_);
    budget_.reset();
    bytes_ = 0;
  }

 private:
  std::shared_ptr<AllocationBudget> budget_;
  int64_t bytes_ = 0;
};

// A 64-byte aligned, zero-padded block of memory counted against a budget while it lives.
class Allocation {
 public:
  // Allocates `size` bytes (0 is allowed). ResourceExhausted (message prefixed with
  // `context`, naming `what`) if the budget has no room or memory cannot be had.
  static Result<std::shared_ptr<Allocation>> Make(std::shared_ptr<AllocationBudget> budget,
                                                  int64_t size, std::string_view context,
                                                  std::string_view what);
  ~Allocation();
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;

  uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  Allocation(uint8_t* data, int64_t size, Charge charge)
      : data_(data), size_(size), charge_(std::move(charge)) {}

  uint8_t* data_;
  int64_t size_;
  Charge charge_;
};

// 64 zero bytes, 64-byte aligned: what an empty buffer points to, so that consumers may
// read offsets[0] of an empty list.
extern const uint8_t kZeros[64];

}  // namespace bridge::ipc::internal
