// ColumnBuilder and ResultTable (columns_internal.h).
#include <cstdlib>

#include "bridge/arrow/encoder.h"
#include "bridge/flightsql/columns_internal.h"

namespace bridge::flightsql {
namespace {

// What an exported schema owns.
struct SchemaHolder {
  std::string format;
  std::string name;
  std::vector<ArrowSchema> children;
  std::vector<ArrowSchema*> child_pointers;
};

void ReleaseSchema(ArrowSchema* schema) {
  auto* holder = static_cast<SchemaHolder*>(schema->private_data);
  for (ArrowSchema& child : holder->children) {
    if (child.release != nullptr) child.release(&child);
  }
  delete holder;
  schema->release = nullptr;
}

void FillSchema(ArrowSchema* out, std::string format, std::string name, int64_t flags,
                std::vector<ipc::OwnedSchema> children) {
  auto* holder = new SchemaHolder{std::move(format), std::move(name), {}, {}};
  holder->children.resize(children.size());
  for (size_t i = 0; i < children.size(); ++i) children[i].MoveTo(&holder->children[i]);
  for (ArrowSchema& child : holder->children) holder->child_pointers.push_back(&child);
  out->format = holder->format.c_str();
  out->name = holder->name.c_str();
  out->metadata = nullptr;
  out->flags = flags;
  out->n_children = static_cast<int64_t>(holder->children.size());
  out->children = holder->child_pointers.data();
  out->dictionary = nullptr;
  out->release = ReleaseSchema;
  out->private_data = holder;
}

// What an exported array owns: its buffers and children.
struct ArrayHolder {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<const void*> buffer_pointers;
  std::vector<ArrowArray> children;
  std::vector<ArrowArray*> child_pointers;
};

void ReleaseArray(ArrowArray* array) {
  auto* holder = static_cast<ArrayHolder*>(array->private_data);
  for (ArrowArray& child : holder->children) {
    if (child.release != nullptr) child.release(&child);
  }
  delete holder;
  array->release = nullptr;
}

// `buffers`: nullopt = a null buffer pointer.
void FillArray(ArrowArray* out, int64_t length, int64_t null_count,
               std::vector<std::optional<std::vector<uint8_t>>> buffers,
               std::vector<ipc::OwnedArray> children) {
  auto* holder = new ArrayHolder;
  for (auto& buffer : buffers) {
    if (!buffer) {
      holder->buffers.emplace_back();
      holder->buffer_pointers.push_back(nullptr);
      continue;
    }
    // Padding so that an empty buffer still has a valid address.
    buffer->resize(buffer->size() + 8, 0);
    holder->buffers.push_back(std::move(*buffer));
    holder->buffer_pointers.push_back(holder->buffers.back().data());
  }
  holder->children.resize(children.size());
  for (size_t i = 0; i < children.size(); ++i) children[i].MoveTo(&holder->children[i]);
  for (ArrowArray& child : holder->children) holder->child_pointers.push_back(&child);
  out->length = length;
  out->null_count = null_count;
  out->offset = 0;
  out->n_buffers = static_cast<int64_t>(holder->buffer_pointers.size());
  out->n_children = static_cast<int64_t>(holder->children.size());
  out->buffers = holder->buffer_pointers.data();
  out->children = holder->child_pointers.data();
  out->dictionary = nullptr;
  out->release = ReleaseArray;
  out->private_data = holder;
}

template <typename T>
std::vector<uint8_t> BytesOf(const std::vector<T>& values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A stream of at most one batch.
class OneBatchStream final : public engine::BatchStream {
 public:
  OneBatchStream(ipc::OwnedSchema schema, ipc::OwnedArray batch)
      : schema_(std::move(schema)), batch_(std::move(batch)) {}
  const ArrowSchema& schema() const override { return *schema_; }
  Result<ipc::OwnedArray> Next() override { return std::move(batch_); }

 private:
  ipc::OwnedSchema schema_;
  ipc::OwnedArray batch_;
};

}  // namespace

ColumnBuilder::ColumnBuilder(std::string format, std::string name, bool nullable,
                             std::vector<ColumnBuilder> children)
    : format_(std::move(format)),
      name_(std::move(name)),
      nullable_(nullable),
      children_(std::move(children)) {}

void ColumnBuilder::AppendBit(std::vector<uint8_t>& bits, int64_t index, bool value) {
  if (static_cast<size_t>(index / 8) >= bits.size()) bits.push_back(0);
  if (value) bits[index / 8] |= static_cast<uint8_t>(1u << (index % 8));
}

void ColumnBuilder::Valid() {
  AppendBit(validity_, length_, true);
  ++length_;
}

void ColumnBuilder::Null() {
  AppendBit(validity_, length_, false);
  if (format_ == "b") {
    AppendBit(bits_, length_, false);
  } else if (format_ == "u" || format_ == "z" || format_ == "+l" || format_ == "+m") {
    offsets_.push_back(offsets_.back());
  } else if (format_ == "+s") {
    for (ColumnBuilder& child : children_) child.Null();
  } else {
    static constexpr struct {
      char format;
      size_t width;
    } kWidths[] = {{'c', 1}, {'C', 1}, {'s', 2}, {'S', 2}, {'i', 4}, {'I', 4}, {'l', 8}, {'L', 8}};
    for (const auto& w : kWidths) {
      if (format_.size() == 1 && format_[0] == w.format) data_.resize(data_.size() + w.width, 0);
    }
  }
  ++null_count_;
  ++length_;
}

void ColumnBuilder::Bytes(std::string_view value) {
  data_.insert(data_.end(), value.begin(), value.end());
  offsets_.push_back(static_cast<int32_t>(data_.size()));
  Valid();
}

void ColumnBuilder::EndList() {
  offsets_.push_back(static_cast<int32_t>(children_[0].length()));
  Valid();
}

void ColumnBuilder::EndStruct() { Valid(); }

void ColumnBuilder::EndUnion(int8_t type_id) {
  type_ids_.push_back(type_id);
  offsets_.push_back(static_cast<int32_t>(children_[type_id].length() - 1));
  ++length_;
}

ipc::OwnedSchema ColumnBuilder::ExportSchema() const {
  std::vector<ipc::OwnedSchema> children;
  for (const ColumnBuilder& child : children_) children.push_back(child.ExportSchema());
  ipc::OwnedSchema out;
  FillSchema(out.out(), format_, name_, nullable_ ? ARROW_FLAG_NULLABLE : 0, std::move(children));
  return out;
}

ipc::OwnedArray ColumnBuilder::ExportArray() const {
  std::vector<ipc::OwnedArray> children;
  for (const ColumnBuilder& child : children_) children.push_back(child.ExportArray());
  std::vector<std::optional<std::vector<uint8_t>>> buffers;
  if (format_.starts_with("+ud:")) {
    // Dense unions have no validity bitmap: type ids, then offsets (the first offsets_
    // element is the list sentinel, not a row).
    std::vector<int32_t> offsets(offsets_.begin() + 1, offsets_.end());
    buffers.push_back(BytesOf(type_ids_));
    buffers.push_back(BytesOf(offsets));
  } else {
    std::optional<std::vector<uint8_t>> validity;
    if (null_count_ > 0) validity = validity_;
    buffers.push_back(std::move(validity));
    if (format_ == "b") {
      buffers.push_back(bits_);
    } else if (format_ == "u" || format_ == "z") {
      buffers.push_back(BytesOf(offsets_));
      buffers.push_back(data_);
    } else if (format_ == "+l" || format_ == "+m") {
      buffers.push_back(BytesOf(offsets_));
    } else if (format_ != "+s") {
      buffers.push_back(data_);
    }
  }
  ipc::OwnedArray out;
  FillArray(out.out(), length_, null_count_, std::move(buffers), std::move(children));
  return out;
}

ipc::OwnedSchema ResultTable::ExportSchema() const {
  std::vector<ipc::OwnedSchema> children;
  for (const ColumnBuilder& column : columns) children.push_back(column.ExportSchema());
  ipc::OwnedSchema out;
  FillSchema(out.out(), "+s", "", 0, std::move(children));
  return out;
}

Result<std::string> ResultTable::SchemaMessage() const {
  ipc::OwnedSchema schema = ExportSchema();
  BRIDGE_ASSIGN_OR_RETURN(ipc::EncodedMessage message, ipc::EncodeSchemaMessage(*schema));
  return std::move(message.metadata);
}

std::unique_ptr<engine::BatchStream> ResultTable::ToStream() const {
  ipc::OwnedArray batch;
  const int64_t rows = columns.empty() ? 0 : columns[0].length();
  if (rows > 0) {
    std::vector<ipc::OwnedArray> children;
    for (const ColumnBuilder& column : columns) children.push_back(column.ExportArray());
    FillArray(batch.out(), rows, 0, {std::nullopt}, std::move(children));
  }
  return std::make_unique<OneBatchStream>(ExportSchema(), std::move(batch));
}

}  // namespace bridge::flightsql
