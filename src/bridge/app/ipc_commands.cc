#include "bridge/app/ipc_commands.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <vector>

#include "bridge/arrow/data_type.h"
#include "bridge/arrow/encoder.h"
#include "bridge/arrow/integration_json.h"
#include "bridge/arrow/reader.h"
#include "bridge/arrow/writer.h"
#include "bridge/format/row_writer.h"

namespace bridge::app {
namespace {

constexpr std::string_view kFileMagic = "ARROW1";

Result<ipc::Buffer> ReadInput(const std::string& path) {
  std::string bytes;
  if (path == "-") {
    bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFound("ipc: cannot read '", path, "'");
    std::ostringstream content;
    content << in.rdbuf();
    bytes = std::move(content).str();
  }
  return ipc::Buffer::FromString(std::move(bytes));
}

// The decoded contents of a stream or file.
struct Decoded {
  std::unique_ptr<ipc::RecordBatchReader> stream;
  std::unique_ptr<ipc::FileReader> file;
  std::vector<ipc::OwnedArray> batches;
  const ArrowSchema* schema = nullptr;
};

Result<Decoded> DecodeAll(const ipc::Buffer& input) {
  Decoded decoded;
  bool is_file = input.size() >= kFileMagic.size() && input.view().starts_with(kFileMagic);
  if (is_file) {
    BRIDGE_ASSIGN_OR_RETURN(decoded.file, ipc::FileReader::Open(input));
    decoded.schema = &decoded.file->schema();
    for (int64_t i = 0; i < decoded.file->num_batches(); ++i) {
      BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, decoded.file->ReadBatch(i));
      decoded.batches.push_back(std::move(batch));
    }
    return decoded;
  }
  BRIDGE_ASSIGN_OR_RETURN(decoded.stream, ipc::OpenStreamReader(input));
  decoded.schema = &decoded.stream->schema();
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, decoded.stream->Next());
    if (!batch.valid()) break;
    decoded.batches.push_back(std::move(batch));
  }
  return decoded;
}

std::string DescribeField(const ArrowSchema& field) {
  auto type = ipc::ParseFormat(field.format);
  std::string text = type.ok() ? ipc::TypeName(*type) : std::string(field.format);
  if (field.dictionary != nullptr) {
    text = StrCat("dictionary<values=", DescribeField(*field.dictionary), ", indices=", text,
                  (field.flags & ARROW_FLAG_DICTIONARY_ORDERED) ? ", ordered" : "", ">");
  } else if (field.n_children > 0) {
    text += "<";
    for (int64_t i = 0; i < field.n_children; ++i) {
      const ArrowSchema& child = *field.children[i];
      text += StrCat(i > 0 ? ", " : "", child.name != nullptr ? child.name : "", ": ",
                     DescribeField(child));
    }
    text += ">";
  }
  if (!(field.flags & ARROW_FLAG_NULLABLE)) text += " not null";
  return text;
}

Status PrintTable(const Decoded& decoded) {
  std::string out = "schema:\n";
  const ArrowSchema& schema = *decoded.schema;
  for (int64_t i = 0; i < schema.n_children; ++i) {
    const ArrowSchema& field = *schema.children[i];
    out += StrCat("  ", field.name != nullptr ? field.name : "", ": ", DescribeField(field), "\n");
  }
  out += "\n";
  BRIDGE_ASSIGN_OR_RETURN(auto writer, format::RowWriter::Make(format::TextFormat::kTable, schema));
  BRIDGE_RETURN_NOT_OK(writer->Begin(&out));
  for (const auto& batch : decoded.batches) BRIDGE_RETURN_NOT_OK(writer->Write(*batch, &out));
  BRIDGE_RETURN_NOT_OK(writer->End(&out));
  std::fwrite(out.data(), 1, out.size(), stdout);
  return OkStatus();
}

}  // namespace

int RunIpcCommand(IpcCommand command, const std::string& path) {
  auto input = ReadInput(path);
  if (!input.ok()) {
    std::fprintf(stderr, "bridge: %s\n", std::string(input.status().message()).c_str());
    return 2;
  }
  auto decoded = DecodeAll(*input);
  if (!decoded.ok()) {
    std::fprintf(stderr, "%s%s\n", command == IpcCommand::kValidate ? "invalid: " : "bridge: ",
                 std::string(decoded.status().message()).c_str());
    return 1;
  }
  Status st = OkStatus();
  switch (command) {
    case IpcCommand::kValidate: {
      int64_t rows = 0;
      for (const auto& batch : decoded->batches) rows += batch->length;
      std::printf("valid: %s, %lld columns, %zu batches, %lld rows\n",
                  decoded->file ? "IPC file" : "IPC stream",
                  static_cast<long long>(decoded->schema->n_children), decoded->batches.size(),
                  static_cast<long long>(rows));
      break;
    }
    case IpcCommand::kCat:
      st = PrintTable(*decoded);
      break;
    case IpcCommand::kToJson: {
      std::vector<const ArrowArray*> batches;
      for (const auto& batch : decoded->batches) batches.push_back(batch.get());
      auto json = ipc::ToIntegrationJson(*decoded->schema, batches);
      if (json.ok()) {
        std::fwrite(json->data(), 1, json->size(), stdout);
        std::fputc('\n', stdout);
      }
      st = json.status();
      break;
    }
  }
  if (!st.ok()) {
    std::fprintf(stderr, "bridge: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}

Status WriteArrowStream(engine::BatchStream& stream, ipc::Codec codec) {
  ipc::FileDescriptorSink sink(STDOUT_FILENO);
  ipc::EncodeOptions options;
  options.codec = codec;
  BRIDGE_ASSIGN_OR_RETURN(auto writer, ipc::StreamWriter::Make(&sink, stream.schema(), options));
  for (;;) {
    BRIDGE_ASSIGN_OR_RETURN(ipc::OwnedArray batch, stream.Next());
    if (!batch.valid()) break;
    BRIDGE_RETURN_NOT_OK(writer->WriteBatch(std::move(batch)));
  }
  return writer->Close();
}

}  // namespace bridge::app
