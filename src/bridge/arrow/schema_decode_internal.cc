#include "bridge/arrow/schema_decode_internal.h"

#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "bridge/arrow/fb/Schema_generated.h"

namespace bridge::ipc::internal {
namespace {

// What one decoded field costs in memory, beyond its strings (ArrowSchema node, layout,
// bookkeeping); counted against the budget so that a small hostile schema cannot fan out
// into a huge tree.
constexpr int64_t kFieldCost = 512;

// The private_data of every ArrowSchema the decoder makes: owns its strings, children and
// dictionary, which are complete schemas with their own release so a consumer may move
// them out.
struct SchemaNode {
  std::string format;
  std::string name;
  std::string metadata;  // C Data Interface encoding; empty = none
  int64_t flags = 0;
  std::vector<ArrowSchema> child_structs;  // sized once; `children` points into it
  std::vector<ArrowSchema*> children;
  ArrowSchema dictionary_struct{};  // release == nullptr when not dictionary-encoded
  bool has_dictionary = false;

  SchemaNode() = default;
  SchemaNode(const SchemaNode&) = delete;
  SchemaNode& operator=(const SchemaNode&) = delete;
  ~SchemaNode() {
    for (ArrowSchema& child : child_structs) {
      if (child.release != nullptr) child.release(&child);
    }
    if (dictionary_struct.release != nullptr) dictionary_struct.release(&dictionary_struct);
  }
};

void ReleaseSchemaNode(ArrowSchema* schema) {
  delete static_cast<SchemaNode*>(schema->private_data);
  schema->private_data = nullptr;
  schema->release = nullptr;
}

// Creates a node with `n_children` (still unreleased-empty) child structs.
std::unique_ptr<SchemaNode> NewNode(size_t n_children) {
  auto node = std::make_unique<SchemaNode>();
  node->child_structs.resize(n_children);
  for (ArrowSchema& child : node->child_structs) child.release = nullptr;
  node->children.reserve(n_children);
  for (ArrowSchema& child : node->child_structs) node->children.push_back(&child);
  node->dictionary_struct.release = nullptr;
  return node;
}

// Fills `out` from `node` and hands the node's ownership to it.
void Publish(std::unique_ptr<SchemaNode> node, ArrowSchema* out) {
  SchemaNode* n = node.release();
  out->format = n->format.c_str();
  out->name = n->name.c_str();
  out->metadata = n->metadata.empty() ? nullptr : n->metadata.data();
  out->flags = n->flags;
  out->n_children = static_cast<int64_t>(n->children.size());
  out->children = n->children.empty() ? nullptr : n->children.data();
  out->dictionary = n->has_dictionary ? &n->dictionary_struct : nullptr;
  out->release = &ReleaseSchemaNode;
  out->private_data = n;
}

void AppendInt32(std::string& out, int32_t value) {
  char bytes[4];
  std::memcpy(bytes, &value, 4);
  out.append(bytes, 4);
}

std::string_view View(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->c_str(), s->size());
}

// The C Data Interface encoding of key-value metadata: int32 count, then for each pair
// int32 length + key bytes, int32 length + value bytes. Empty when there is none.
std::string EncodeMetadata(const flatbuffers::Vector<flatbuffers::Offset<fb::KeyValue>>* pairs) {
  std::string out;
  if (pairs == nullptr || pairs->size() == 0) return out;
  AppendInt32(out, static_cast<int32_t>(pairs->size()));
  for (const fb::KeyValue* kv : *pairs) {
    std::string_view key = kv == nullptr ? std::string_view() : View(kv->key());
    std::string_view value = kv == nullptr ? std::string_view() : View(kv->value());
    AppendInt32(out, static_cast<int32_t>(key.size()));
    out.append(key);
    AppendInt32(out, static_cast<int32_t>(value.size()));
    out.append(value);
  }
  return out;
}

const char* UnitLetter(fb::TimeUnit unit) {
  switch (unit) {
    case fb::TimeUnit::SECOND:
      return "s";
    case fb::TimeUnit::MILLISECOND:
      return "m";
    case fb::TimeUnit::MICROSECOND:
      return "u";
    case fb::TimeUnit::NANOSECOND:
      return "n";
  }
  return nullptr;
}

Result<std::string> IntFormat(const fb::Int* type, std::string_view where) {
  if (type == nullptr) return InvalidArgument(where, "integer type without its table");
  const bool is_signed = type->is_signed();
  switch (type->bit_width()) {
    case 8:
      return std::string(is_signed ? "c" : "C");
    case 16:
      return std::string(is_signed ? "s" : "S");
    case 32:
      return std::string(is_signed ? "i" : "I");
    case 64:
      return std::string(is_signed ? "l" : "L");
    default:
      return InvalidArgument(where, "integer bit width ", type->bit_width(),
                             " (must be 8, 16, 32 or 64)");
  }
}

std::string FieldName(const fb::Field* field) {
  return field == nullptr ? std::string() : std::string(View(field->name()));
}

std::string ChildPath(const std::string& parent, const fb::Field* child, size_t index) {
  std::string name = FieldName(child);
  if (name.empty()) name = StrCat("#", index);
  return parent.empty() ? name : StrCat(parent, ".", name);
}

// A canonical description of a value type (formats of the whole tree, dictionary ids
// included), to check that fields sharing a dictionary id agree.
void AppendSignature(const FieldLayout& layout, std::string& out) {
  out += layout.format;
  if (layout.dictionary != nullptr) {
    out += StrCat("{", layout.dictionary_id, ":");
    AppendSignature(*layout.dictionary, out);
    out += "}";
  }
  if (!layout.children.empty()) {
    out += "(";
    for (const FieldLayout& child : layout.children) {
      AppendSignature(child, out);
      out += ",";
    }
    out += ")";
  }
}

class SchemaDecoder {
 public:
  SchemaDecoder(const ReadOptions& options, std::shared_ptr<AllocationBudget> budget,
                std::string_view context, DecodedSchema& out)
      : options_(options), budget_(std::move(budget)), context_(context), out_(out) {}

  Status DecodeFields(const fb::Schema& schema) {
    if (schema.endianness() != fb::Endianness::Little) {
      return InvalidArgument(context_, ": big-endian data is not supported");
    }
    const auto* fields = schema.fields();
    const size_t n = fields == nullptr ? 0 : fields->size();
    // Charged before anything is allocated for the fields.
    BRIDGE_RETURN_NOT_OK(ChargeBytes(kFieldCost * (static_cast<int64_t>(n) + 1)));
    auto root = NewNode(n);
    root->format = "+s";
    root->metadata = EncodeMetadata(schema.custom_metadata());
    BRIDGE_RETURN_NOT_OK(ChargeBytes(static_cast<int64_t>(root->metadata.size())));
    out_.fields.resize(n);
    for (size_t i = 0; i < n; ++i) {
      BRIDGE_RETURN_NOT_OK(DecodeField(fields->Get(static_cast<flatbuffers::uoffset_t>(i)),
                                       ChildPath("", fields->Get(i), i), 1, root->child_structs[i],
                                       out_.fields[i]));
    }
    Publish(std::move(root), out_.schema.out());
    // The dictionary value schemas are reachable only once published: record them now.
    for (size_t i = 0; i < n; ++i) {
      RecordDictionarySchemas(out_.fields[i], *out_.schema->children[i]);
    }
    return OkStatus();
  }

 private:
  Status ChargeBytes(int64_t bytes) {
    // One charge per schema, grown field by field (refunded with the schema).
    if (out_.charge.bytes() == 0) {
      BRIDGE_ASSIGN_OR_RETURN(out_.charge, Charge::Make(budget_, bytes, context_, "the schema"));
      return OkStatus();
    }
    return out_.charge.Grow(bytes, context_, "the schema");
  }

  template <typename... Args>
  Status Bad(const std::string& path, const Args&... args) {
    return InvalidArgument(context_, ", field '", path, "': ", args...);
  }

  // Returns the format string of `field`'s own type (not its dictionary index type).
  Result<std::string> ValueFormat(const fb::Field& field, const std::string& path) {
    const size_t n_children = field.children() == nullptr ? 0 : field.children()->size();
    if (field.type_type() != fb::Type::NONE && field.type() == nullptr) {
      return Bad(path, "type ", static_cast<int>(field.type_type()), " without its table");
    }
    const std::string where = StrCat(context_, ", field '", path, "': ");
    auto expect_children = [&](size_t n, std::string_view type) -> Status {
      if (n_children != n) {
        return Bad(path, type, " must have ", n, " child field", n == 1 ? "" : "s", ", not ",
                   n_children);
      }
      return OkStatus();
    };
    switch (field.type_type()) {
      case fb::Type::Null:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "null"));
        return std::string("n");
      case fb::Type::Int:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "an integer"));
        return IntFormat(field.type_as_Int(), where);
      case fb::Type::FloatingPoint: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "a floating point type"));
        const auto* t = field.type_as_FloatingPoint();
        switch (t == nullptr ? fb::Precision::SINGLE : t->precision()) {
          case fb::Precision::HALF:
            return std::string("e");
          case fb::Precision::SINGLE:
            return std::string("f");
          case fb::Precision::DOUBLE:
            return std::string("g");
        }
        return Bad(path, "unknown floating point precision ", static_cast<int>(t->precision()));
      }
      case fb::Type::Binary:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "binary"));
        return std::string("z");
      case fb::Type::LargeBinary:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "large_binary"));
        return std::string("Z");
      case fb::Type::Utf8:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "utf8"));
        return std::string("u");
      case fb::Type::LargeUtf8:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "large_utf8"));
        return std::string("U");
      case fb::Type::BinaryView:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "binary_view"));
        return std::string("vz");
      case fb::Type::Utf8View:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "utf8_view"));
        return std::string("vu");
      case fb::Type::Bool:
        BRIDGE_RETURN_NOT_OK(expect_children(0, "bool"));
        return std::string("b");
      case fb::Type::Decimal: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "a decimal"));
        const auto* t = field.type_as_Decimal();
        if (t == nullptr) return Bad(path, "decimal type without its table");
        const int32_t bits = t->bit_width();
        if (bits != 32 && bits != 64 && bits != 128 && bits != 256) {
          return Bad(path, "decimal bit width ", bits, " (must be 32, 64, 128 or 256)");
        }
        if (t->precision() <= 0) return Bad(path, "decimal precision ", t->precision());
        return bits == 128 ? StrCat("d:", t->precision(), ",", t->scale())
                           : StrCat("d:", t->precision(), ",", t->scale(), ",", bits);
      }
      case fb::Type::Date: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "a date"));
        const auto* t = field.type_as_Date();
        const fb::DateUnit unit = t == nullptr ? fb::DateUnit::MILLISECOND : t->unit();
        if (unit == fb::DateUnit::DAY) return std::string("tdD");
        if (unit == fb::DateUnit::MILLISECOND) return std::string("tdm");
        return Bad(path, "unknown date unit ", static_cast<int>(unit));
      }
      case fb::Type::Time: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "a time"));
        const auto* t = field.type_as_Time();
        if (t == nullptr) return Bad(path, "time type without its table");
        const char* unit = UnitLetter(t->unit());
        if (unit == nullptr) return Bad(path, "unknown time unit ", static_cast<int>(t->unit()));
        const bool is32 =
            t->unit() == fb::TimeUnit::SECOND || t->unit() == fb::TimeUnit::MILLISECOND;
        if (t->bit_width() != (is32 ? 32 : 64)) {
          return Bad(path, "time bit width ", t->bit_width(), " does not match its unit (must be ",
                     is32 ? 32 : 64, ")");
        }
        return StrCat("tt", unit);
      }
      case fb::Type::Timestamp: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "a timestamp"));
        const auto* t = field.type_as_Timestamp();
        if (t == nullptr) return Bad(path, "timestamp type without its table");
        const char* unit = UnitLetter(t->unit());
        if (unit == nullptr) return Bad(path, "unknown time unit ", static_cast<int>(t->unit()));
        std::string_view tz = View(t->timezone());
        if (tz.find('\0') != std::string_view::npos) return Bad(path, "time zone contains NUL");
        return StrCat("ts", unit, ":", tz);
      }
      case fb::Type::Duration: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "a duration"));
        const auto* t = field.type_as_Duration();
        const fb::TimeUnit u = t == nullptr ? fb::TimeUnit::MILLISECOND : t->unit();
        const char* unit = UnitLetter(u);
        if (unit == nullptr) return Bad(path, "unknown time unit ", static_cast<int>(u));
        return StrCat("tD", unit);
      }
      case fb::Type::Interval: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "an interval"));
        const auto* t = field.type_as_Interval();
        const fb::IntervalUnit unit = t == nullptr ? fb::IntervalUnit::YEAR_MONTH : t->unit();
        switch (unit) {
          case fb::IntervalUnit::YEAR_MONTH:
            return std::string("tiM");
          case fb::IntervalUnit::DAY_TIME:
            return std::string("tiD");
          case fb::IntervalUnit::MONTH_DAY_NANO:
            return std::string("tin");
        }
        return Bad(path, "unknown interval unit ", static_cast<int>(unit));
      }
      case fb::Type::FixedSizeBinary: {
        BRIDGE_RETURN_NOT_OK(expect_children(0, "fixed_size_binary"));
        const auto* t = field.type_as_FixedSizeBinary();
        if (t == nullptr) return Bad(path, "fixed_size_binary type without its table");
        // DataType keeps the width in bits in an int32.
        constexpr int32_t kMaxWidth = std::numeric_limits<int32_t>::max() / 8;
        if (t->byte_width() < 0 || t->byte_width() > kMaxWidth) {
          return Bad(path, "fixed_size_binary width ", t->byte_width(), " is not within 0..",
                     kMaxWidth);
        }
        return StrCat("w:", t->byte_width());
      }
      case fb::Type::List:
        BRIDGE_RETURN_NOT_OK(expect_children(1, "a list"));
        return std::string("+l");
      case fb::Type::LargeList:
        BRIDGE_RETURN_NOT_OK(expect_children(1, "a large_list"));
        return std::string("+L");
      case fb::Type::ListView:
        BRIDGE_RETURN_NOT_OK(expect_children(1, "a list_view"));
        return std::string("+vl");
      case fb::Type::LargeListView:
        BRIDGE_RETURN_NOT_OK(expect_children(1, "a large_list_view"));
        return std::string("+vL");
      case fb::Type::FixedSizeList: {
        BRIDGE_RETURN_NOT_OK(expect_children(1, "a fixed_size_list"));
        const auto* t = field.type_as_FixedSizeList();
        if (t == nullptr) return Bad(path, "fixed_size_list type without its table");
        if (t->list_size() < 0) return Bad(path, "fixed_size_list size ", t->list_size());
        return StrCat("+w:", t->list_size());
      }
      case fb::Type::Struct_:
        return std::string("+s");
      case fb::Type::Map: {
        BRIDGE_RETURN_NOT_OK(expect_children(1, "a map"));
        const fb::Field* entries = field.children()->Get(0);
        if (entries == nullptr || entries->type_type() != fb::Type::Struct_ ||
            entries->dictionary() != nullptr || entries->children() == nullptr ||
            entries->children()->size() != 2) {
          return Bad(path, "a map's child must be a struct of two fields (key, value)");
        }
        return std::string("+m");
      }
      case fb::Type::Union: {
        const auto* t = field.type_as_Union();
        if (t == nullptr) return Bad(path, "union type without its table");
        if (n_children > 128) return Bad(path, "a union has ", n_children, " children (max 128)");
        std::string format;
        if (t->mode() == fb::UnionMode::Sparse) {
          format = "+us:";
        } else if (t->mode() == fb::UnionMode::Dense) {
          format = "+ud:";
        } else {
          return Bad(path, "unknown union mode ", static_cast<int>(t->mode()));
        }
        const auto* ids = t->type_ids();
        if (ids != nullptr && ids->size() != n_children) {
          return Bad(path, "union has ", ids->size(), " type ids for ", n_children, " children");
        }
        std::set<int32_t> seen;
        for (size_t i = 0; i < n_children; ++i) {
          const int32_t id = ids == nullptr ? static_cast<int32_t>(i)
                                            : ids->Get(static_cast<flatbuffers::uoffset_t>(i));
          if (id < 0 || id > 127) return Bad(path, "union type id ", id, " (must be 0..127)");
          if (!seen.insert(id).second) return Bad(path, "union type id ", id, " appears twice");
          if (i > 0) format += ",";
          format += StrCat(id);
        }
        return format;
      }
      case fb::Type::RunEndEncoded: {
        BRIDGE_RETURN_NOT_OK(expect_children(2, "run_end_encoded"));
        const fb::Field* run_ends = field.children()->Get(0);
        const fb::Int* int_type = run_ends == nullptr ? nullptr : run_ends->type_as_Int();
        if (int_type == nullptr || run_ends->dictionary() != nullptr || !int_type->is_signed() ||
            (int_type->bit_width() != 16 && int_type->bit_width() != 32 &&
             int_type->bit_width() != 64)) {
          return Bad(path, "run ends must be int16, int32 or int64");
        }
        return std::string("+r");
      }
      case fb::Type::NONE:
        return Bad(path, "field has no type");
    }
    return Bad(path, "unknown type ", static_cast<int>(field.type_type()));
  }

  Status DecodeField(const fb::Field* field, const std::string& path, int depth, ArrowSchema& out,
                     FieldLayout& layout) {
    if (field == nullptr) return Bad(path, "missing field table");
    if (depth > options_.max_nesting_depth) {
      return Bad(path, "nesting deeper than the limit of ", options_.max_nesting_depth);
    }
    const auto* children = field->children();
    const size_t n_children = children == nullptr ? 0 : children->size();
    BRIDGE_ASSIGN_OR_RETURN(std::string value_format, ValueFormat(*field, path));
    BRIDGE_ASSIGN_OR_RETURN(DataType value_type, ParseFormat(value_format));
    // This field's own cost was charged with its parent's children; its children's cost
    // (and a dictionary's) is charged before they are allocated.
    BRIDGE_RETURN_NOT_OK(ChargeBytes(kFieldCost * (static_cast<int64_t>(n_children) +
                                                   (field->dictionary() != nullptr ? 1 : 0))));

    auto node = NewNode(0);
    node->name = FieldName(field);
    node->metadata = EncodeMetadata(field->custom_metadata());
    if (node->name.find('\0') != std::string::npos) return Bad(path, "field name contains NUL");
    BRIDGE_RETURN_NOT_OK(ChargeBytes(2 * static_cast<int64_t>(node->name.size()) +
                                     static_cast<int64_t>(node->metadata.size() + path.size())));
    if (field->nullable()) node->flags |= ARROW_FLAG_NULLABLE;
    if (value_type.id == TypeId::kMap) {
      const auto* map = field->type_as_Map();
      if (map != nullptr && map->keys_sorted()) node->flags |= ARROW_FLAG_MAP_KEYS_SORTED;
    }
    layout.path = path;

    // The node that holds the value type and the children: the field itself, or the
    // dictionary values of a dictionary-encoded field.
    std::unique_ptr<SchemaNode> values = NewNode(n_children);
    values->format = value_format;
    FieldLayout* value_layout = &layout;
    const fb::DictionaryEncoding* encoding = field->dictionary();
    if (encoding != nullptr) {
      if (depth + 1 > options_.max_nesting_depth) {
        return Bad(path, "nesting deeper than the limit of ", options_.max_nesting_depth);
      }
      if (encoding->dictionary_kind() != fb::DictionaryKind::DenseArray) {
        return Bad(path, "unknown dictionary kind ", static_cast<int>(encoding->dictionary_kind()));
      }
      std::string index_format = "i";  // the spec's default when index_type is absent
      if (encoding->index_type() != nullptr) {
        BRIDGE_ASSIGN_OR_RETURN(index_format,
                                IntFormat(encoding->index_type(),
                                          StrCat(context_, ", field '", path, "': index type: ")));
      }
      node->format = index_format;
      if (encoding->is_ordered()) node->flags |= ARROW_FLAG_DICTIONARY_ORDERED;
      layout.format = index_format;
      BRIDGE_ASSIGN_OR_RETURN(layout.type, ParseFormat(index_format));
      layout.dictionary_id = encoding->id();
      layout.dictionary = std::make_unique<FieldLayout>();
      value_layout = layout.dictionary.get();
      value_layout->path = path;
      // Dictionary values may hold nulls whatever the field says.
      values->flags = ARROW_FLAG_NULLABLE;
    }
    value_layout->format = value_format;
    value_layout->type = std::move(value_type);
    value_layout->children.resize(n_children);
    const int child_depth = encoding != nullptr ? depth + 2 : depth + 1;
    for (size_t i = 0; i < n_children; ++i) {
      const fb::Field* child = children->Get(static_cast<flatbuffers::uoffset_t>(i));
      BRIDGE_RETURN_NOT_OK(DecodeField(child, ChildPath(path, child, i), child_depth,
                                       values->child_structs[i], value_layout->children[i]));
    }

    if (encoding != nullptr) {
      // Fields sharing a dictionary must agree on its value type.
      std::string signature;
      AppendSignature(*value_layout, signature);
      auto [it, inserted] = signatures_.emplace(layout.dictionary_id, signature);
      if (!inserted && it->second != signature) {
        return Bad(path, "dictionary id ", layout.dictionary_id,
                   " is shared with a field of a different value type");
      }
      node->has_dictionary = true;
      Publish(std::move(values), &node->dictionary_struct);
    } else {
      node->format = std::move(values->format);
      node->child_structs = std::move(values->child_structs);
      node->children = std::move(values->children);
      values->child_structs.clear();
    }
    Publish(std::move(node), &out);
    return OkStatus();
  }

  // Registers the first ArrowSchema of each dictionary id found under `layout` / `schema`.
  void RecordDictionarySchemas(const FieldLayout& layout, const ArrowSchema& schema) {
    const FieldLayout* values = &layout;
    const ArrowSchema* value_schema = &schema;
    if (layout.dictionary != nullptr) {
      values = layout.dictionary.get();
      value_schema = schema.dictionary;
      out_.dictionaries.emplace(layout.dictionary_id, DictionarySpec{values, value_schema});
    }
    for (size_t i = 0; i < values->children.size(); ++i) {
      RecordDictionarySchemas(values->children[i], *value_schema->children[i]);
    }
  }

  const ReadOptions& options_;
  std::shared_ptr<AllocationBudget> budget_;
  std::string context_;
  DecodedSchema& out_;
  std::map<int64_t, std::string> signatures_;
};

}  // namespace

Result<std::unique_ptr<DecodedSchema>> DecodeSchema(const fb::Schema& schema,
                                                    const ReadOptions& options,
                                                    std::shared_ptr<AllocationBudget> budget,
                                                    std::string_view context) {
  auto decoded = std::make_unique<DecodedSchema>();
  SchemaDecoder decoder(options, std::move(budget), context, *decoded);
  BRIDGE_RETURN_NOT_OK(decoder.DecodeFields(schema));
  return decoded;
}

}  // namespace bridge::ipc::internal
