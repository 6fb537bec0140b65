// Decoding of record batch bodies into validated arrays, and their export as C Data
// Interface arrays. Private to src/bridge/arrow.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bridge/arrow/buffer.h"
#include "bridge/arrow/c_data.h"
#include "bridge/arrow/fb/Message_generated.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/reader_memory_internal.h"
#include "bridge/arrow/schema_decode_internal.h"
#include "bridge/common/status.h"

namespace bridge::ipc::internal {

// An immutable decoded array. Shared between the batches that use it (a dictionary is
// shared by every batch until replaced); each export makes fresh ArrowArray structs over it.
struct ArrayData {
  int64_t length = 0;
  int64_t null_count = 0;
  int64_t offset = 0;
  std::vector<const void*> buffers;
  std::vector<std::shared_ptr<const ArrayData>> children;
  std::shared_ptr<const ArrayData> dictionary;
  // What keeps the buffers alive: the input's owner, allocations, an imported array.
  std::vector<std::shared_ptr<const void>> owners;
};

// Returns a C Data Interface array over `data`, holding it (and so its buffers) until
// released. Its children and dictionary are complete arrays that may be moved out.
OwnedArray ExportArray(std::shared_ptr<const ArrayData> data);

// Wraps `array`, made elsewhere (e.g. by Concatenate), whose memory `owner` keeps alive.
std::shared_ptr<const ArrayData> ImportArray(const ArrowArray& array,
                                             std::shared_ptr<const void> owner);

// The current contents of every dictionary id seen so far.
using DictionaryMap = std::map<int64_t, std::shared_ptr<const ArrayData>>;

// Where a record batch body comes from and what it may use.
struct BodyContext {
  const fb::RecordBatch* batch = nullptr;  // verified
  Buffer body;
  fb::MetadataVersion version = fb::MetadataVersion::V5;
  const DictionaryMap* dictionaries = nullptr;
  std::shared_ptr<AllocationBudget> budget;
  ReadStats* stats = nullptr;
  std::string context;  // "ipc: message 3"
};

// Decodes the columns `fields` from a RecordBatch (of a record batch message, or the single
// column of a dictionary batch), checking every node, buffer and value that matters for
// memory safety. Errors: InvalidArgument naming the field; ResourceExhausted when the
// allocation budget is exceeded.
Result<std::vector<std::shared_ptr<const ArrayData>>> DecodeColumns(
    std::span<const FieldLayout> fields, const BodyContext& body);

}  // namespace bridge::ipc::internal
