// Buffer: an immutable byte range plus a shared owner that keeps it alive. The unit of
// zero-copy input: a decoded array that points into a Buffer holds its owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bridge::ipc {

class Buffer {
 public:
  Buffer() = default;
  // Views `size` bytes at `data`, kept alive by `owner` (may be null for static memory).
  Buffer(const uint8_t* data, size_t size, std::shared_ptr<const void> owner)
      : data_(data), size_(size), owner_(std::move(owner)) {}

  // Takes `bytes` and views them.
  static Buffer FromString(std::string bytes) {
    auto owned = std::make_shared<const std::string>(std::move(bytes));
    return Buffer(reinterpret_cast<const uint8_t*>(owned->data()), owned->size(), owned);
  }
  static Buffer FromVector(std::vector<uint8_t> bytes) {
    auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
    return Buffer(owned->data(), owned->size(), owned);
  }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // Returns bytes [offset, offset + length) sharing this buffer's owner. The caller checks
  // the range.
  Buffer Slice(size_t offset, size_t length) const {
    return Buffer(data_ + offset, length, owner_);
  }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
};

}  // namespace bridge::ipc
