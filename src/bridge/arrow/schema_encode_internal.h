// Private to src/bridge/arrow: a validated, self-contained description of an ArrowSchema
// (FieldInfo / SchemaInfo) and its encoding as an IPC flatbuffers Schema.
//
// AnalyzeSchema copies everything it needs out of the C struct, so the ArrowSchema may be
// released afterwards. Dictionary ids are assigned in depth-first pre-order (a field before
// the fields of its dictionary's value type), as Arrow C++ does; the same SchemaInfo gives
// the same ids everywhere it is used (schema message, dictionary batches, file footer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bridge/arrow/c_data.h"
#include "bridge/arrow/data_type.h"
#include "bridge/arrow/encoder.h"
#include "bridge/arrow/fb/Schema_generated.h"
#include "bridge/common/status.h"

namespace bridge::ipc {

// One field of a schema, or the value type of a dictionary.
struct FieldInfo {
  std::string name;
  std::string path;  // dotted path from the schema root, for messages ("tags.item")
  // The type of the arrays at this position. For a dictionary-encoded field: the index type.
  DataType type;
  bool nullable = false;
  bool keys_sorted = false;  // maps
  KeyValueMetadata metadata;
  std::vector<FieldInfo> children;  // the children of `type` (none when dictionary-encoded)

  // Dictionary-encoded fields only: the dictionary's id, whether it is ordered, and the
  // value type (its `type` and `children`; its name, nullability and metadata are unused).
  int64_t dictionary_id = -1;
  bool dictionary_ordered = false;
  std::unique_ptr<FieldInfo> dictionary;

  bool dictionary_encoded() const { return dictionary_id >= 0; }
};

struct SchemaInfo {
  std::vector<FieldInfo> fields;  // the children of the top-level struct
  KeyValueMetadata metadata;      // schema-level custom metadata
  int64_t num_dictionaries = 0;   // ids are 0 .. num_dictionaries - 1
};

// Validates `schema` (a struct "+s" whose children are the columns) and copies it into a
// SchemaInfo. Returns InvalidArgument for a released schema, a format string the spec does
// not define, wrong child counts (lists: 1, maps: 1 struct of 2, unions: one per type code,
// run-end encoded: run ends of int16/32/64 and values), non-integer dictionary indices,
// negative metadata lengths or nesting deeper than 64 levels; Unimplemented for a
// dictionary whose values are themselves dictionary-encoded (IPC cannot describe it).
Result<SchemaInfo> AnalyzeSchema(const ArrowSchema& schema);

// Parses C Data Interface metadata (int32 count, then per pair int32 length + key bytes,
// int32 length + value bytes; native-endian). `metadata` may be null (no metadata).
Result<KeyValueMetadata> ParseMetadata(const char* metadata);

// Returns whether the type at `field` (or below it) has a dictionary-encoded field.
bool HasNestedDictionary(const FieldInfo& field);

// Writes `schema` into `fbb` (every field with a children vector, even an empty one, as
// Arrow C++ readers require).
flatbuffers::Offset<fb::Schema> WriteSchema(flatbuffers::FlatBufferBuilder& fbb,
                                            const SchemaInfo& schema);

// Writes `metadata` as a vector of KeyValue; returns a null offset when it is empty.
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>> WriteMetadata(
    flatbuffers::FlatBufferBuilder& fbb, const KeyValueMetadata& metadata);

}  // namespace bridge::ipc
