#include "bridge/arrow/reader.h"

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bridge/arrow/concatenate.h"
#include "bridge/arrow/reader_array_internal.h"
#include "bridge/arrow/reader_memory_internal.h"
#include "bridge/arrow/reader_message_internal.h"
#include "bridge/arrow/schema_decode_internal.h"

namespace bridge::ipc {

RecordBatchReader::~RecordBatchReader() = default;
ByteSource::~ByteSource() = default;

namespace internal {
namespace {

constexpr char kMagic[] = "ARROW1";
constexpr int64_t kMagicSize = 6;

// A dictionary made by concatenating a delta onto its predecessor, with its memory charge.
struct MergedDictionary {
  OwnedArray array;
  Charge charge;
};

// The decoding state every reader shares: the schema, the current dictionaries, the
// allocation budget. Not thread-safe.
class DecoderCore {
 public:
  DecoderCore(const ReadOptions& options, ReadStats& stats)
      : options_(options),
        stats_(stats),
        budget_(std::make_shared<AllocationBudget>(options.max_allocation_bytes)) {}

  bool has_schema() const { return schema_ != nullptr; }
  const ArrowSchema& schema() const { return *schema_->schema; }
  const std::shared_ptr<AllocationBudget>& budget() const { return budget_; }

  Status SetSchema(const fb::Schema* schema, std::string_view context) {
    if (schema == nullptr) return InvalidArgument(context, ": schema message without its schema");
    BRIDGE_ASSIGN_OR_RETURN(schema_, DecodeSchema(*schema, options_, budget_, context));
    return OkStatus();
  }

  // Handles one message of a stream. The first must be the schema. Returns the record
  // batch, or an invalid array for a schema or dictionary batch.
  Result<OwnedArray> ConsumeStreamMessage(const fb::Message& message, const Buffer& body,
                                          std::string_view context) {
    if (!has_schema()) {
      if (message.header_type() != fb::MessageHeader::Schema) {
        return InvalidArgument(context, ": the stream does not start with a schema message");
      }
      BRIDGE_RETURN_NOT_OK(SetSchema(message.header_as_Schema(), context));
      return OwnedArray();
    }
    switch (message.header_type()) {
      case fb::MessageHeader::Schema:
        return InvalidArgument(context, ": a second schema message");
      case fb::MessageHeader::DictionaryBatch:
        BRIDGE_RETURN_NOT_OK(ApplyDictionary(message.header_as_DictionaryBatch(), body,
                                             message.version(), context,
                                             /*allow_replacement=*/true));
        return OwnedArray();
      case fb::MessageHeader::RecordBatch:
        return DecodeRecordBatch(message.header_as_RecordBatch(), body, message.version(), context);
      case fb::MessageHeader::Tensor:
      case fb::MessageHeader::SparseTensor:
        return InvalidArgument(context, ": tensor messages are not supported");
      case fb::MessageHeader::NONE:
        break;
    }
    return InvalidArgument(context, ": message header of unknown type ",
                           static_cast<int>(message.header_type()));
  }

  // Decodes and stores a dictionary batch: a new dictionary, a replacement (streams only),
  // or a delta appended to the current dictionary.
  Status ApplyDictionary(const fb::DictionaryBatch* batch, const Buffer& body,
                         fb::MetadataVersion version, std::string_view context,
                         bool allow_replacement) {
    if (batch == nullptr)
      return InvalidArgument(context, ": dictionary message without its header");
    const int64_t id = batch->id();
    const std::string where = StrCat(context, " (dictionary ", id, ")");
    auto spec = schema_->dictionaries.find(id);
    if (spec == schema_->dictionaries.end()) {
      return InvalidArgument(where, ": the schema has no dictionary with this id");
    }
    if (batch->data() == nullptr) {
      return InvalidArgument(where, ": dictionary batch without its record batch");
    }
    BodyContext ctx{batch->data(), body, version, &dictionaries_, budget_, &stats_, where};
    BRIDGE_ASSIGN_OR_RETURN(
        auto columns, DecodeColumns(std::span<const FieldLayout>(spec->second.values, 1), ctx));
    std::shared_ptr<const ArrayData> values = std::move(columns[0]);
    auto current = dictionaries_.find(id);
    if (batch->is_delta() && current != dictionaries_.end()) {
      BRIDGE_ASSIGN_OR_RETURN(
          values, AppendDelta(*spec->second.schema, current->second, std::move(values), where));
      ++stats_.dictionary_deltas;
    } else if (current != dictionaries_.end() && !allow_replacement) {
      return InvalidArgument(where, ": a file may not replace a dictionary");
    }
    dictionaries_[id] = std::move(values);
    ++stats_.dictionary_batches;
    return OkStatus();
  }

  Result<OwnedArray> DecodeRecordBatch(const fb::RecordBatch* batch, const Buffer& body,
                                       fb::MetadataVersion version, std::string_view context) {
    if (batch == nullptr)
      return InvalidArgument(context, ": record batch message without its header");
    if (batch->length() < 0) {
      return InvalidArgument(context, ": negative record batch length ", batch->length());
    }
    BodyContext ctx{batch, body, version, &dictionaries_, budget_, &stats_, std::string(context)};
    BRIDGE_ASSIGN_OR_RETURN(auto columns, DecodeColumns(schema_->fields, ctx));
    auto root = std::make_shared<ArrayData>();
    root->length = batch->length();
    root->buffers = {nullptr};
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i]->length < root->length) {
        return InvalidArgument(context, ", field '", schema_->fields[i].path, "': has ",
                               columns[i]->length, " values, fewer than the batch's ",
                               root->length);
      }
    }
    root->children = std::move(columns);
    ++stats_.batches;
    return ExportArray(std::move(root));
  }

 private:
  Result<std::shared_ptr<const ArrayData>> AppendDelta(const ArrowSchema& schema,
                                                       std::shared_ptr<const ArrayData> current,
                                                       std::shared_ptr<const ArrayData> delta,
                                                       const std::string& where) {
    OwnedArray old_array = ExportArray(std::move(current));
    OwnedArray new_array = ExportArray(std::move(delta));
    // Concatenate allocates about the used bytes of both, plus padding per buffer.
    const int64_t estimate =
        EstimateBytes(schema, *old_array) + EstimateBytes(schema, *new_array) + 4096;
    auto merged = std::make_shared<MergedDictionary>();
    BRIDGE_ASSIGN_OR_RETURN(merged->charge,
                            Charge::Make(budget_, estimate, where, "appending a dictionary delta"));
    const ArrowArray* inputs[] = {old_array.get(), new_array.get()};
    Result<OwnedArray> result = Concatenate(schema, inputs);
    if (!result.ok()) return WithContext(result.status(), StrCat(where, ": dictionary delta"));
    merged->array = std::move(result).value();
    const ArrowArray& root = *merged->array;
    return ImportArray(root, std::move(merged));
  }

  const ReadOptions& options_;
  ReadStats& stats_;
  std::shared_ptr<AllocationBudget> budget_;
  std::unique_ptr<DecodedSchema> schema_;
  DictionaryMap dictionaries_;
};

std::string MessageContext(int64_t index) { return StrCat("ipc: message ", index); }

// A stream reader over any MessageSource. Errors are sticky.
class StreamReader final : public RecordBatchReader {
 public:
  explicit StreamReader(ReadOptions options) : options_(options), core_(options_, stats_) {}

  // Reads the schema message through `source`.
  Status Start(std::unique_ptr<MessageSource> source) {
    source_ = std::move(source);
    const std::string context = MessageContext(0);
    BRIDGE_ASSIGN_OR_RETURN(auto message, source_->Next(context));
    if (!message.has_value()) {
      return InvalidArgument(context, ": the stream ends before its schema message");
    }
    ++stats_.messages;
    return core_.ConsumeStreamMessage(*message->metadata.root, message->body, context).status();
  }

  const ArrowSchema& schema() const override { return core_.schema(); }
  const ReadStats& stats() const override { return stats_; }

  Result<OwnedArray> Next() override {
    if (!error_.ok()) return error_;
    Result<OwnedArray> result = ReadNext();
    if (!result.ok()) error_ = result.status();
    return result;
  }

  ReadOptions& options() { return options_; }
  ReadStats& mutable_stats() { return stats_; }
  const std::shared_ptr<AllocationBudget>& budget() const { return core_.budget(); }

 private:
  Result<OwnedArray> ReadNext() {
    while (true) {
      const std::string context = MessageContext(stats_.messages);
      BRIDGE_ASSIGN_OR_RETURN(auto message, source_->Next(context));
      if (!message.has_value()) return OwnedArray();
      ++stats_.messages;
      BRIDGE_ASSIGN_OR_RETURN(OwnedArray batch, core_.ConsumeStreamMessage(*message->metadata.root,
                                                                           message->body, context));
      if (batch.valid()) return batch;
    }
  }

  ReadOptions options_;
  ReadStats stats_;
  DecoderCore core_;
  std::unique_ptr<MessageSource> source_;
  Status error_;
};

}  // namespace
}  // namespace internal

Result<std::unique_ptr<RecordBatchReader>> OpenStreamReader(Buffer data, ReadOptions options) {
  auto reader = std::make_unique<internal::StreamReader>(options);
  BRIDGE_RETURN_NOT_OK(reader->Start(internal::MakeBufferMessageSource(
      std::move(data), reader->options(), reader->mutable_stats())));
  return std::unique_ptr<RecordBatchReader>(std::move(reader));
}

Result<std::unique_ptr<RecordBatchReader>> OpenStreamReader(std::unique_ptr<ByteSource> source,
                                                            ReadOptions options) {
  if (source == nullptr) return InvalidArgument("ipc: no byte source");
  auto reader = std::make_unique<internal::StreamReader>(options);
  BRIDGE_RETURN_NOT_OK(reader->Start(internal::MakeByteMessageSource(
      std::move(source), reader->options(), reader->mutable_stats(), reader->budget())));
  return std::unique_ptr<RecordBatchReader>(std::move(reader));
}

// ---------------------------------------------------------------------------------------
// StreamDecoder

class StreamDecoder::Impl {
 public:
  explicit Impl(ReadOptions options) : options_(options), core_(options_, stats_) {}

  Result<OwnedArray> Consume(std::span<const uint8_t> metadata, Buffer body) {
    if (!error_.ok()) return error_;
    Result<OwnedArray> result = ConsumeImpl(metadata, std::move(body));
    if (!result.ok()) error_ = result.status();
    return result;
  }

  internal::DecoderCore& core() { return core_; }
  const internal::DecoderCore& core() const { return core_; }
  const ReadStats& stats() const { return stats_; }

 private:
  Result<OwnedArray> ConsumeImpl(std::span<const uint8_t> metadata, Buffer body) {
    const std::string context = internal::MessageContext(stats_.messages);
    BRIDGE_ASSIGN_OR_RETURN(auto verified,
                            internal::VerifyMessage(metadata, options_, stats_, context));
    const int64_t body_length = verified.root->body_length();
    if (body_length > static_cast<int64_t>(body.size())) {
      return InvalidArgument(context, ": body of ", body.size(), " bytes is shorter than the ",
                             body_length, " the message announces");
    }
    // Buffers must lie within the announced body.
    body = body.Slice(0, static_cast<size_t>(body_length));
    stats_.bytes_read += static_cast<int64_t>(metadata.size()) + body_length;
    ++stats_.messages;
    return core_.ConsumeStreamMessage(*verified.root, body, context);
  }

  ReadOptions options_;
  ReadStats stats_;
  internal::DecoderCore core_;
  Status error_;
};

StreamDecoder::StreamDecoder(ReadOptions options) : impl_(std::make_unique<Impl>(options)) {}
StreamDecoder::~StreamDecoder() = default;
Result<OwnedArray> StreamDecoder::Consume(std::span<const uint8_t> metadata, Buffer body) {
  return impl_->Consume(metadata, std::move(body));
}
bool StreamDecoder::has_schema() const { return impl_->core().has_schema(); }
const ArrowSchema& StreamDecoder::schema() const { return impl_->core().schema(); }
const ReadStats& StreamDecoder::stats() const { return impl_->stats(); }

// ---------------------------------------------------------------------------------------
// FileReader

class FileReader::Impl {
 public:
  Impl(Buffer data, ReadOptions options)
      : data_(std::move(data)), options_(options), core_(options_, stats_) {}

  Status Open() {
    const int64_t size = static_cast<int64_t>(data_.size());
    // magic (6) + padding (2) + footer length (4) + magic (6), with nothing in between.
    if (size < 2 * internal::kMagicSize + 6) {
      return InvalidArgument("ipc: a file of ", size, " bytes is too short");
    }
    const uint8_t* p = data_.data();
    if (std::memcmp(p, internal::kMagic, internal::kMagicSize) != 0) {
      return InvalidArgument("ipc: the file does not start with ARROW1");
    }
    if (std::memcmp(p + size - internal::kMagicSize, internal::kMagic, internal::kMagicSize) != 0) {
      return InvalidArgument("ipc: the file does not end with ARROW1");
    }
    const int64_t footer_length = internal::LoadInt32(p + size - internal::kMagicSize - 4);
    const int64_t max_footer = size - 2 * internal::kMagicSize - 6;
    if (footer_length <= 0 || footer_length > max_footer) {
      return InvalidArgument("ipc: footer length ", footer_length, " is not within 1..",
                             max_footer);
    }
    footer_start_ = size - internal::kMagicSize - 4 - footer_length;
    BRIDGE_ASSIGN_OR_RETURN(
        auto footer,
        internal::VerifyFooter(
            std::span<const uint8_t>(p + footer_start_, static_cast<size_t>(footer_length)),
            options_, stats_, "ipc: file footer"));
    BRIDGE_RETURN_NOT_OK(core_.SetSchema(footer.root->schema(), "ipc: file footer"));

    // The stream section must begin with the schema message for it to be a stream.
    {
      const std::string context = "ipc: file stream section";
      BRIDGE_ASSIGN_OR_RETURN(
          auto first, internal::ReadMessageAt(data_, 8, footer_start_, options_, stats_, context));
      if (!first.has_value() || first->metadata.root->header_type() != fb::MessageHeader::Schema) {
        return InvalidArgument(context, ": does not start with a schema message");
      }
    }

    if (const auto* blocks = footer.root->dictionaries(); blocks != nullptr) {
      for (size_t i = 0; i < blocks->size(); ++i) {
        const std::string context = StrCat("ipc: dictionary block ", i);
        BRIDGE_ASSIGN_OR_RETURN(auto message, ReadBlock(internal::LoadStruct(*blocks, i), context));
        const fb::Message& m = *message.metadata.root;
        if (m.header_type() != fb::MessageHeader::DictionaryBatch) {
          return InvalidArgument(context, ": not a dictionary batch");
        }
        BRIDGE_RETURN_NOT_OK(core_.ApplyDictionary(m.header_as_DictionaryBatch(), message.body,
                                                   m.version(), context,
                                                   /*allow_replacement=*/false));
      }
    }
    if (const auto* blocks = footer.root->record_batches(); blocks != nullptr) {
      batches_.reserve(blocks->size());
      for (size_t i = 0; i < blocks->size(); ++i) {
        batches_.push_back(internal::LoadStruct(*blocks, i));
      }
    }
    return OkStatus();
  }

  Result<OwnedArray> ReadBatch(int64_t i) {
    const int64_t n = static_cast<int64_t>(batches_.size());
    if (i < 0 || i >= n) {
      return InvalidArgument("ipc: record batch ", i, " does not exist (the file has ", n, ")");
    }
    const fb::Block& block = batches_[static_cast<size_t>(i)];
    const std::string context =
        StrCat("ipc: record batch ", i, " (file offset ", block.offset(), ")");
    BRIDGE_ASSIGN_OR_RETURN(auto message, ReadBlock(block, context));
    const fb::Message& m = *message.metadata.root;
    if (m.header_type() != fb::MessageHeader::RecordBatch) {
      return InvalidArgument(context, ": not a record batch");
    }
    return core_.DecodeRecordBatch(m.header_as_RecordBatch(), message.body, m.version(), context);
  }

  const ArrowSchema& schema() const { return core_.schema(); }
  int64_t num_batches() const { return static_cast<int64_t>(batches_.size()); }
  std::pair<int64_t, int64_t> stream_section() const { return {8, footer_start_ - 8}; }
  const ReadStats& stats() const { return stats_; }

 private:
  // Reads the message a footer Block points at, checking that the block agrees with it.
  Result<internal::RawMessage> ReadBlock(const fb::Block& block, const std::string& context) {
    const int64_t offset = block.offset();
    const int64_t metadata_length = block.meta_data_length();
    const int64_t body_length = block.body_length();
    if (offset < 8 || offset >= footer_start_ || metadata_length <= 0 || body_length < 0 ||
        metadata_length > footer_start_ - offset ||
        body_length > footer_start_ - offset - metadata_length) {
      return InvalidArgument(context, ": block (offset ", offset, ", metadata ", metadata_length,
                             ", body ", body_length, ") is outside the stream section [8, ",
                             footer_start_, ")");
    }
    BRIDGE_ASSIGN_OR_RETURN(auto message, internal::ReadMessageAt(data_, offset, footer_start_,
                                                                  options_, stats_, context));
    if (!message.has_value()) {
      return InvalidArgument(context, ": the block points at an end-of-stream marker");
    }
    ++stats_.messages;
    if (message->metadata_end != offset + metadata_length) {
      return InvalidArgument(context, ": block metadata length ", metadata_length,
                             " does not match the message's ", message->metadata_end - offset);
    }
    if (static_cast<int64_t>(message->body.size()) != body_length) {
      return InvalidArgument(context, ": block body length ", body_length,
                             " does not match the message's ", message->body.size());
    }
    return std::move(*message);
  }

  Buffer data_;
  ReadOptions options_;
  ReadStats stats_;
  internal::DecoderCore core_;
  int64_t footer_start_ = 0;
  std::vector<fb::Block> batches_;
};

FileReader::FileReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FileReader::~FileReader() = default;

Result<std::unique_ptr<FileReader>> FileReader::Open(Buffer data, ReadOptions options) {
  auto impl = std::make_unique<Impl>(std::move(data), options);
  BRIDGE_RETURN_NOT_OK(impl->Open());
  return std::unique_ptr<FileReader>(new FileReader(std::move(impl)));
}

const ArrowSchema& FileReader::schema() const { return impl_->schema(); }
int64_t FileReader::num_batches() const { return impl_->num_batches(); }
Result<OwnedArray> FileReader::ReadBatch(int64_t i) { return impl_->ReadBatch(i); }
std::pair<int64_t, int64_t> FileReader::stream_section() const { return impl_->stream_section(); }
const ReadStats& FileReader::stats() const { return impl_->stats(); }

// ---------------------------------------------------------------------------------------
// Schema messages

namespace {

Result<OwnedSchema> SchemaOf(const fb::Message& message, const ReadOptions& options,
                             std::string_view context) {
  if (message.header_type() != fb::MessageHeader::Schema) {
    return InvalidArgument(context, ": not a schema message");
  }
  if (message.header_as_Schema() == nullptr) {
    return InvalidArgument(context, ": schema message without its schema");
  }
  auto budget = std::make_shared<internal::AllocationBudget>(options.max_allocation_bytes);
  BRIDGE_ASSIGN_OR_RETURN(
      auto decoded, internal::DecodeSchema(*message.header_as_Schema(), options, budget, context));
  return std::move(decoded->schema);
}

}  // namespace

Result<OwnedSchema> DecodeSchemaMessage(std::span<const uint8_t> encapsulated_message,
                                        ReadOptions options) {
  const std::string context = "ipc: schema message";
  ReadStats stats;
  // A view without an owner: nothing outlives this call but the decoded schema, which
  // copies what it keeps.
  Buffer bytes(encapsulated_message.data(), encapsulated_message.size(), nullptr);
  BRIDGE_ASSIGN_OR_RETURN(
      auto message, internal::ReadMessageAt(bytes, 0, static_cast<int64_t>(bytes.size()), options,
                                            stats, context));
  if (!message.has_value()) return InvalidArgument(context, ": empty or end-of-stream marker");
  return SchemaOf(*message->metadata.root, options, context);
}

Result<OwnedSchema> DecodeSchemaMetadata(std::span<const uint8_t> flatbuffer_message,
                                         ReadOptions options) {
  const std::string context = "ipc: schema message";
  ReadStats stats;
  BRIDGE_ASSIGN_OR_RETURN(auto verified,
                          internal::VerifyMessage(flatbuffer_message, options, stats, context));
  return SchemaOf(*verified.root, options, context);
}

}  // namespace bridge::ipc
