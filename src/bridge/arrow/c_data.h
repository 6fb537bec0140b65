// The Arrow C Data Interface (ABI structs from the Arrow specification) and move-only
// owners that call `release` exactly once.
//
// The structs are declared in the global namespace behind the ARROW_C_DATA_INTERFACE
// guard, as the specification asks, so they coexist with other producers' copies
// (duckdb.h only forward-declares them).
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

extern "C" {

struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};

}  // extern "C"
#endif  // ARROW_C_DATA_INTERFACE

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
extern "C" {
struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};
}  // extern "C"
#endif  // ARROW_C_STREAM_INTERFACE

namespace bridge::ipc {

// Owns one C Data Interface struct (ArrowSchema, ArrowArray or ArrowArrayStream) and
// releases it once, on destruction or Reset(). Move-only. Not thread-safe.
//
// A producer fills the struct through out(); a consumer that takes ownership of the
// contents (for example DuckDB's duckdb_data_chunk_from_arrow) calls release_ownership()
// or simply moves the struct out and marks it released, as the spec describes.
template <typename T>
class Owned {
 public:
  Owned() { raw_.release = nullptr; }
  // Takes the contents of `raw` and marks `raw` released.
  explicit Owned(T* raw) : raw_(*raw) { raw->release = nullptr; }
  ~Owned() { Reset(); }
  Owned(Owned&& other) noexcept : raw_(other.raw_) { other.raw_.release = nullptr; }
  Owned& operator=(Owned&& other) noexcept {
    if (this != &other) {
      Reset();
      raw_ = other.raw_;
      other.raw_.release = nullptr;
    }
    return *this;
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;

  // Releases the owned struct, if any.
  void Reset() {
    if (raw_.release != nullptr) raw_.release(&raw_);
    raw_.release = nullptr;
  }
  // Releases what is held and returns the struct to be filled by a producer.
  T* out() {
    Reset();
    return &raw_;
  }
  // Moves the contents into `dest` (which must be released or uninitialized); this object
  // is left empty.
  void MoveTo(T* dest) {
    *dest = raw_;
    raw_.release = nullptr;
  }

  bool valid() const { return raw_.release != nullptr; }
  T* get() { return &raw_; }
  const T* get() const { return &raw_; }
  T* operator->() { return &raw_; }
  const T* operator->() const { return &raw_; }
  T& operator*() { return raw_; }
  const T& operator*() const { return raw_; }

 private:
  T raw_;
};

using OwnedSchema = Owned<ArrowSchema>;
using OwnedArray = Owned<ArrowArray>;
using OwnedArrayStream = Owned<ArrowArrayStream>;

}  // namespace bridge::ipc
