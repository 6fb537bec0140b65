// The entry header: JSON in the IPC file footer's custom_metadata, with its own XXH3-64.
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "bridge/cache/cache_internal.h"
#include "nlohmann/json.hpp"

namespace bridge::cache::internal {
namespace {

using nlohmann::json;

std::string_view MessageTypeName(ipc::MessageType type) {
  switch (type) {
    case ipc::MessageType::kSchema:
      return "schema";
    case ipc::MessageType::kDictionaryBatch:
      return "dictionary";
    case ipc::MessageType::kRecordBatch:
      return "batch";
  }
  return "?";
}

Result<ipc::MessageType> ParseMessageType(std::string_view name) {
  if (name == "schema") return ipc::MessageType::kSchema;
  if (name == "dictionary") return ipc::MessageType::kDictionaryBatch;
  if (name == "batch") return ipc::MessageType::kRecordBatch;
  return InvalidArgument("cache: header: unknown message type '", std::string(name), "'");
}

bool IsHex(std::string_view text, size_t digits) {
  return text.size() == digits && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<uint64_t> ParseHex64(std::string_view text) {
  if (!IsHex(text, 16)) {
    return InvalidArgument("cache: header: '", std::string(text), "' is not 16 hex digits");
  }
  uint64_t value = 0;
  for (char c : text)
    value = (value << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  return value;
}

// Returns the header decoded from its JSON text, checking types but not consistency with
// the file.
Result<EntryHeader> ParseHeaderJson(std::string_view text) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument("cache: header is not a JSON object");
  }
  // Type errors of a well-formed but foreign document surface as json exceptions; they
  // are caught here and never leave this function.
  try {
    EntryHeader h;
    h.format_version = doc.at("format_version").get<int>();
    if (h.format_version != kFormatVersion) {
      return InvalidArgument("cache: header format version ", h.format_version, " is not ",
                             kFormatVersion);
    }
    h.flags = doc.at("flags").get<uint32_t>();
    BRIDGE_ASSIGN_OR_RETURN(h.codec, ipc::ParseCodec(doc.at("codec").get<std::string>()));
    h.id = doc.at("id").get<std::string>();
    h.key_digest = doc.at("key_digest").get<std::string>();
    h.query_digest = doc.at("query_digest").get<std::string>();
    for (const json& t : doc.at("tables")) {
      h.tables.push_back(
          TableVersion{t.at("name").get<std::string>(), t.at("version").get<uint64_t>()});
    }
    h.created_ms = doc.at("created_ms").get<int64_t>();
    BRIDGE_ASSIGN_OR_RETURN(h.schema_hash, ParseHex64(doc.at("schema_hash").get<std::string>()));
    h.stream.offset = doc.at("stream").at(0).get<int64_t>();
    h.stream.length = doc.at("stream").at(1).get<int64_t>();
    const json& messages = doc.at("messages");
    h.messages.reserve(messages.size());
    for (const json& m : messages) {
      CachedMessage out;
      BRIDGE_ASSIGN_OR_RETURN(out.type, ParseMessageType(m.at(0).get<std::string>()));
      out.offset = m.at(1).get<int64_t>();
      out.metadata_length = m.at(2).get<int64_t>();
      out.flatbuffer_length = m.at(3).get<int64_t>();
      out.body_length = m.at(4).get<int64_t>();
      BRIDGE_ASSIGN_OR_RETURN(out.checksum, ParseHex64(m.at(5).get<std::string>()));
      h.messages.push_back(out);
    }
    return h;
  } catch (const json::exception& e) {
    return InvalidArgument("cache: header: ", e.what());
  }
}

std::span<const uint8_t> Bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

}  // namespace

uint64_t Xxh3(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

Result<ipc::KeyValueMetadata> EncodeHeader(const EntryHeader& header) {
  json tables = json::array();
  for (const TableVersion& t : header.tables) {
    tables.push_back({{"name", t.name}, {"version", t.version}});
  }
  json messages = json::array();
  for (const CachedMessage& m : header.messages) {
    messages.push_back(json::array({MessageTypeName(m.type), m.offset, m.metadata_length,
                                    m.flatbuffer_length, m.body_length, Hex64(m.checksum)}));
  }
  const json doc = {
      {"format_version", header.format_version},
      {"flags", header.flags},
      {"codec", std::string(ipc::CodecName(header.codec))},
      {"id", header.id},
      {"key_digest", header.key_digest},
      {"query_digest", header.query_digest},
      {"tables", std::move(tables)},
      {"created_ms", header.created_ms},
      {"schema_hash", Hex64(header.schema_hash)},
      {"stream", json::array({header.stream.offset, header.stream.length})},
      {"messages", std::move(messages)},
  };
  std::string text;
  try {
    text = doc.dump();
  } catch (const json::exception& e) {  // invalid UTF-8; caught here, never passed on
    return InvalidArgument("cache: entry ", header.id, ": header: ", e.what());
  }
  std::string checksum = Hex64(Xxh3(Bytes(text)));
  return ipc::KeyValueMetadata{{std::string(kHeaderKey), std::move(text)},
                               {std::string(kHeaderChecksumKey), std::move(checksum)}};
}

Result<EntryHeader> ReadHeader(std::span<const uint8_t> file) {
  BRIDGE_ASSIGN_OR_RETURN(ipc::FileFooter footer, ipc::ReadFileFooter(file));
  const std::string* text = nullptr;
  const std::string* checksum = nullptr;
  for (const auto& [key, value] : footer.custom_metadata) {
    if (key == kHeaderKey) text = &value;
    if (key == kHeaderChecksumKey) checksum = &value;
  }
  if (text == nullptr || checksum == nullptr) {
    return InvalidArgument("cache: the file's footer has no ", kHeaderKey, " entry header");
  }
  BRIDGE_ASSIGN_OR_RETURN(const uint64_t expected, ParseHex64(*checksum));
  if (Xxh3(Bytes(*text)) != expected) {
    return InvalidArgument("cache: entry header checksum mismatch");
  }
  BRIDGE_ASSIGN_OR_RETURN(EntryHeader h, ParseHeaderJson(*text));

  // Identity and flags.
  if (!IsEntryId(h.id) || !IsHex(h.key_digest, 64) || !IsHex(h.query_digest, 64)) {
    return InvalidArgument("cache: header: malformed id or key digests");
  }
  const bool compressed = h.codec != ipc::Codec::kNone;
  if (h.flags != (compressed ? kFlagCompressed : kFlagUncompressed)) {
    return InvalidArgument("cache: header: flags ", h.flags, " disagree with codec ",
                           ipc::CodecName(h.codec));
  }

  // The stream section: right after the 8-byte leading magic, ending at the footer.
  const int64_t size = static_cast<int64_t>(file.size());
  if (h.stream.offset != 8 || h.stream.length < 16 ||
      h.stream.offset + h.stream.length != footer.footer_offset) {
    return InvalidArgument("cache: header: stream section ", h.stream.offset, "+", h.stream.length,
                           " does not end at the footer (", footer.footer_offset, ")");
  }

  // Messages tile the stream section, schema first, then the end-of-stream marker.
  if (h.messages.empty() || h.messages[0].type != ipc::MessageType::kSchema) {
    return InvalidArgument("cache: header: the first message is not the schema");
  }
  int64_t at = h.stream.offset;
  std::vector<ipc::FileBlock> dictionaries;
  std::vector<ipc::FileBlock> batches;
  for (size_t i = 0; i < h.messages.size(); ++i) {
    const CachedMessage& m = h.messages[i];
    if (i > 0 && m.type == ipc::MessageType::kSchema) {
      return InvalidArgument("cache: header: message ", i, " is a second schema");
    }
    if (m.offset != at || m.metadata_length < 16 || m.metadata_length % 8 != 0 ||
        m.metadata_length > INT32_MAX || m.flatbuffer_length <= 0 ||
        m.flatbuffer_length > m.metadata_length - 8 || m.body_length < 0 ||
        m.body_length % 8 != 0 || m.body_length > size ||
        m.total_length() > h.stream.offset + h.stream.length - 8 - at) {
      return InvalidArgument("cache: header: message ", i, " at ", m.offset,
                             " does not fit the stream section");
    }
    const ipc::FileBlock block{m.offset, static_cast<int32_t>(m.metadata_length), m.body_length};
    if (m.type == ipc::MessageType::kDictionaryBatch) dictionaries.push_back(block);
    if (m.type == ipc::MessageType::kRecordBatch) batches.push_back(block);
    at += m.total_length();
  }
  if (at + 8 != h.stream.offset + h.stream.length) {
    return InvalidArgument("cache: header: messages end at ", at,
                           ", not 8 bytes before the end of the stream section");
  }
  static constexpr uint8_t kEndOfStream[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  if (std::memcmp(file.data() + at, kEndOfStream, sizeof(kEndOfStream)) != 0) {
    return InvalidArgument("cache: no end-of-stream marker at ", at);
  }
  auto same = [](const std::vector<ipc::FileBlock>& a, const std::vector<ipc::FileBlock>& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
             return x.offset == y.offset && x.metadata_length == y.metadata_length &&
                    x.body_length == y.body_length;
           });
  };
  if (!same(dictionaries, footer.dictionaries) || !same(batches, footer.record_batches)) {
    return InvalidArgument("cache: header messages disagree with the footer's blocks");
  }

  // The schema message (on the first pages): its framing and hash.
  const CachedMessage& schema = h.messages[0];
  uint32_t marker;
  int32_t length;
  std::memcpy(&marker, file.data() + schema.offset, 4);
  std::memcpy(&length, file.data() + schema.offset + 4, 4);
  if (marker != 0xFFFFFFFFu || length + int64_t{8} != schema.metadata_length ||
      schema.body_length != 0) {
    return InvalidArgument("cache: the schema message's framing disagrees with the header");
  }
  if (Xxh3(file.subspan(static_cast<size_t>(schema.offset) + 8,
                        static_cast<size_t>(schema.flatbuffer_length))) != h.schema_hash) {
    return InvalidArgument("cache: schema hash mismatch");
  }
  return h;
}

}  // namespace bridge::cache::internal
