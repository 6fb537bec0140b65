// Decoding of an IPC flatbuffer Schema into a C Data Interface ArrowSchema plus the layout
// the body decoder follows. Private to src/bridge/arrow.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/data_type.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/reader_memory_internal.h"
#include "bridge/common/status.h"

namespace bridge::ipc {
namespace fb {
struct Schema;
}  // namespace fb

namespace internal {

// How one field is laid out in a record batch body. For a dictionary-encoded field `type`
// is the index type and `dictionary` describes the values (with the field's children);
// otherwise `children` are the field's children.
struct FieldLayout {
  std::string path;    // dotted names from the top-level field ("tags.item"), for errors
  std::string format;  // C Data Interface format string of `type`
  DataType type;
  std::vector<FieldLayout> children;
  std::unique_ptr<FieldLayout> dictionary;
  int64_t dictionary_id = 0;
};

// A dictionary the schema declares: the layout of its values (owned by the schema's field
// tree) and their ArrowSchema (owned by DecodedSchema::schema).
struct DictionarySpec {
  const FieldLayout* values = nullptr;
  const ArrowSchema* schema = nullptr;
};

// A decoded schema. Pointers in `dictionaries` point into `fields` and `schema`, so a
// DecodedSchema is kept behind a unique_ptr and never moved.
struct DecodedSchema {
  OwnedSchema schema;  // "+s"
  std::vector<FieldLayout> fields;
  std::map<int64_t, DictionarySpec> dictionaries;
  Charge charge;  // the schema's memory, counted against the reader's budget
};

// Decodes `schema` (already verified by the flatbuffers verifier). Checks every type
// (bit widths, units, child counts, union type ids, run-end types), the nesting depth, and
// that fields sharing a dictionary id have the same value type. Errors are InvalidArgument
// prefixed with `context` ("ipc: message 0, field 'a.b': ...").
Result<std::unique_ptr<DecodedSchema>> DecodeSchema(const fb::Schema& schema,
                                                    const ReadOptions& options,
                                                    std::shared_ptr<AllocationBudget> budget,
                                                    std::string_view context);

}  // namespace internal
}  // namespace bridge::ipc
