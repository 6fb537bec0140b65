#include "bridge/format/row_writer.h"

#include <algorithm>
#include <vector>

#include "bridge/format/column_internal.h"
#include "bridge/format/text_internal.h"

namespace bridge::format {
namespace {

using internal::Column;
using internal::PlainStyle;

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return (x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x) == y; });
}

// The state shared by every format: the column tree and the Begin / Write / End order.
class WriterBase : public RowWriter {
 public:
  explicit WriterBase(std::unique_ptr<Column> root) : root_(std::move(root)) {}

  Status Begin(std::string* out) final {
    if (state_ != State::kNew) return FailedPrecondition("format: Begin called twice");
    state_ = State::kOpen;
    DoBegin(out);
    return OkStatus();
  }

  Status Write(const ArrowArray& batch, std::string* out) final {
    if (state_ != State::kOpen) {
      return FailedPrecondition("format: Write called ",
                                state_ == State::kNew ? "before Begin" : "after End");
    }
    BRIDGE_RETURN_NOT_OK(root_->Bind(batch));
    DoWrite(out);
    rows_ += root_->length();
    return OkStatus();
  }

  Status End(std::string* out) final {
    if (state_ != State::kOpen) {
      return FailedPrecondition("format: End called ",
                                state_ == State::kNew ? "before Begin" : "twice");
    }
    state_ = State::kEnded;
    DoEnd(out);
    return OkStatus();
  }

  int64_t rows() const final { return rows_; }

 protected:
  virtual void DoBegin(std::string* out) = 0;
  // Writes the rows of the batch bound to root_; rows_ counts the batches before it.
  virtual void DoWrite(std::string* out) = 0;
  virtual void DoEnd(std::string* out) = 0;

  const std::vector<std::unique_ptr<Column>>& columns() const { return root_->children(); }

  std::unique_ptr<Column> root_;
  int64_t rows_ = 0;

 private:
  enum class State { kNew, kOpen, kEnded };
  State state_ = State::kNew;
};

// JSON (an array of row objects) and NDJSON (a row object per line).
class JsonWriter final : public WriterBase {
 public:
  JsonWriter(std::unique_ptr<Column> root, bool lines)
      : WriterBase(std::move(root)), lines_(lines) {}

 private:
  void DoBegin(std::string* out) override {
    if (!lines_) out->push_back('[');
  }

  void DoWrite(std::string* out) override {
    const int64_t base = root_->offset();
    for (int64_t r = 0; r < root_->length(); ++r) {
      if (!lines_ && rows_ + r > 0) out->push_back(',');
      const bool null_row = root_->IsNull(r);
      out->push_back('{');
      for (size_t k = 0; k < columns().size(); ++k) {
        const Column& column = *columns()[k];
        if (k != 0) out->push_back(',');
        out->append(column.json_key());
        if (null_row) {
          out->append("null");
        } else {
          column.AppendJson(base + r, out);
        }
      }
      out->push_back('}');
      if (lines_) out->push_back('\n');
    }
  }

  void DoEnd(std::string* out) override {
    if (!lines_) out->append("]\n");
  }

  bool lines_;
};

// CSV after RFC 4180, with "\n" line ends.
class CsvWriter final : public WriterBase {
 public:
  CsvWriter(std::unique_ptr<Column> root, const TextOptions& options)
      : WriterBase(std::move(root)),
        header_(options.csv_header),
        delimiter_(options.csv_delimiter) {}

 private:
  void DoBegin(std::string* out) override {
    if (!header_ || columns().empty()) return;
    for (size_t k = 0; k < columns().size(); ++k) {
      if (k != 0) out->push_back(delimiter_);
      const size_t start = out->size();
      internal::AppendUtf8(columns()[k]->name(), out);
      QuoteIfNeeded(start, out);
    }
    out->push_back('\n');
  }

  void DoWrite(std::string* out) override {
    const int64_t base = root_->offset();
    for (int64_t r = 0; r < root_->length(); ++r) {
      const bool null_row = root_->IsNull(r);
      for (size_t k = 0; k < columns().size(); ++k) {
        const Column& column = *columns()[k];
        if (k != 0) out->push_back(delimiter_);
        if (null_row || column.IsNull(base + r)) continue;  // NULL: an empty field
        const size_t start = out->size();
        column.AppendPlain(base + r, style_, out);
        QuoteIfNeeded(start, out);
      }
      out->push_back('\n');
    }
  }

  void DoEnd(std::string*) override {}

  // Quotes the field that starts at `start` if it holds the delimiter, a quote, CR or LF,
  // or is empty (an empty string, told apart from NULL).
  void QuoteIfNeeded(size_t start, std::string* out) {
    const std::string_view field(out->data() + start, out->size() - start);
    bool needs_quotes = field.empty();
    for (const char c : field) {
      if (c == delimiter_ || c == '"' || c == '\n' || c == '\r') {
        needs_quotes = true;
        break;
      }
    }
    if (!needs_quotes) return;
    scratch_.assign(field);  // a copy only for the rare fields that need quotes
    out->resize(start);
    out->push_back('"');
    for (const char c : scratch_) {
      if (c == '"') out->push_back('"');
      out->push_back(c);
    }
    out->push_back('"');
  }

  bool header_;
  char delimiter_;
  PlainStyle style_{'T'};
  std::string scratch_;
};

// Aligned columns like psql, with a row count footer.
class TableWriter final : public WriterBase {
 public:
  TableWriter(std::unique_ptr<Column> root, const TextOptions& options)
      : WriterBase(std::move(root)), max_rows_(options.table_max_rows) {
    for (const auto& column : columns()) {
      scratch_.clear();
      internal::AppendUtf8(column->name(), &scratch_);
      const size_t start = names_.size();
      AppendCellText(scratch_, &names_);
      name_ends_.push_back(names_.size());
      widths_.push_back(
          internal::DisplayWidth(std::string_view(names_).substr(start, names_.size() - start)));
      right_aligned_.push_back(column->IsNumeric());
    }
  }

 private:
  void DoBegin(std::string*) override {}

  void DoWrite(std::string*) override {
    const int64_t base = root_->offset();
    const int64_t keep = std::min(root_->length(), std::max<int64_t>(max_rows_ - rows_, 0));
    for (int64_t r = 0; r < keep; ++r) {
      const bool null_row = root_->IsNull(r);
      for (size_t k = 0; k < columns().size(); ++k) {
        const Column& column = *columns()[k];
        scratch_.clear();
        if (null_row || column.IsNull(base + r)) {
          scratch_.append("NULL");
        } else {
          column.AppendPlain(base + r, style_, &scratch_);
        }
        const size_t start = cells_.size();
        AppendCellText(scratch_, &cells_);
        cell_ends_.push_back(cells_.size());
        widths_[k] = std::max(widths_[k], internal::DisplayWidth(std::string_view(cells_).substr(
                                              start, cells_.size() - start)));
      }
    }
  }

  void DoEnd(std::string* out) override {
    const size_t n = columns().size();
    if (n > 0) {
      // Header, centered.
      size_t start = 0;
      for (size_t k = 0; k < n; ++k) {
        const std::string_view name = std::string_view(names_).substr(start, name_ends_[k] - start);
        start = name_ends_[k];
        const int64_t pad = widths_[k] - internal::DisplayWidth(name);
        if (k != 0) out->push_back('|');
        out->push_back(' ');
        out->append(pad / 2, ' ');
        out->append(name);
        out->append(pad - pad / 2, ' ');
        out->push_back(' ');
      }
      EndLine(out);
      for (size_t k = 0; k < n; ++k) {
        if (k != 0) out->push_back('+');
        out->append(widths_[k] + 2, '-');
      }
      out->push_back('\n');
      start = 0;
      for (size_t c = 0; c < cell_ends_.size(); ++c) {
        const size_t k = c % n;
        const std::string_view cell = std::string_view(cells_).substr(start, cell_ends_[c] - start);
        start = cell_ends_[c];
        const int64_t pad = widths_[k] - internal::DisplayWidth(cell);
        if (k != 0) out->push_back('|');
        out->push_back(' ');
        if (right_aligned_[k]) out->append(pad, ' ');
        out->append(cell);
        if (!right_aligned_[k]) out->append(pad, ' ');
        out->push_back(' ');
        if (k == n - 1) EndLine(out);
      }
    }
    const int64_t shown = std::min(rows_, max_rows_);
    out->append(StrCat("(", rows_, rows_ == 1 ? " row" : " rows"));
    if (shown < rows_) out->append(StrCat(", ", shown, " shown"));
    out->append(")\n");
  }

  // Ends a line without its trailing spaces.
  static void EndLine(std::string* out) {
    while (!out->empty() && out->back() == ' ') out->pop_back();
    out->push_back('\n');
  }

  // Appends `text` with control characters escaped (\n, \r, \t, \xHH) so a cell stays on
  // one line.
  static void AppendCellText(std::string_view text, std::string* out) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c >= 0x20 && c != 0x7f) {
        out->push_back(ch);
      } else if (c == '\n') {
        out->append("\\n");
      } else if (c == '\r') {
        out->append("\\r");
      } else if (c == '\t') {
        out->append("\\t");
      } else {
        const char escape[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
        out->append(escape, 4);
      }
    }
  }

  int64_t max_rows_;
  PlainStyle style_{' '};
  std::string names_;  // the header's cells, end to end
  std::vector<size_t> name_ends_;
  std::string cells_;  // the kept rows' cells, row by row, end to end
  std::vector<size_t> cell_ends_;
  std::vector<int64_t> widths_;
  std::vector<bool> right_aligned_;
  std::string scratch_;
};

}  // namespace

Result<TextFormat> ParseTextFormat(std::string_view name) {
  if (EqualsIgnoringCase(name, "json")) return TextFormat::kJson;
  if (EqualsIgnoringCase(name, "ndjson") || EqualsIgnoringCase(name, "jsonl")) {
    return TextFormat::kNdjson;
  }
  if (EqualsIgnoringCase(name, "csv")) return TextFormat::kCsv;
  if (EqualsIgnoringCase(name, "table")) return TextFormat::kTable;
  return InvalidArgument("format: unknown output format '", name,
                         "' (expected json, ndjson, csv or table)");
}

std::string_view TextFormatName(TextFormat format) {
  switch (format) {
    case TextFormat::kJson:
      return "json";
    case TextFormat::kNdjson:
      return "ndjson";
    case TextFormat::kCsv:
      return "csv";
    case TextFormat::kTable:
      return "table";
  }
  return "?";
}

std::string_view ContentType(TextFormat format) {
  switch (format) {
    case TextFormat::kJson:
      return "application/json";
    case TextFormat::kNdjson:
      return "application/x-ndjson";
    case TextFormat::kCsv:
      return "text/csv; charset=utf-8";
    case TextFormat::kTable:
      return "text/plain; charset=utf-8";
  }
  return "application/octet-stream";
}

Result<std::unique_ptr<RowWriter>> RowWriter::Make(TextFormat format, const ArrowSchema& schema,
                                                   TextOptions options) {
  if (options.csv_delimiter == '"' || options.csv_delimiter == '\r' ||
      options.csv_delimiter == '\n' || options.csv_delimiter == '\0' ||
      static_cast<unsigned char>(options.csv_delimiter) >= 0x80) {
    return InvalidArgument("format: the CSV delimiter cannot be a quote, CR, LF, NUL or non-ASCII");
  }
  if (options.table_max_rows < 0) {
    return InvalidArgument("format: table_max_rows is negative (", options.table_max_rows, ")");
  }
  BRIDGE_ASSIGN_OR_RETURN(std::unique_ptr<Column> root, Column::Make(schema, ""));
  if (!root->IsStruct()) {
    return InvalidArgument("format: a record batch schema is a struct ('+s') of columns, not '",
                           schema.format, "'");
  }
  switch (format) {
    case TextFormat::kJson:
      return std::make_unique<JsonWriter>(std::move(root), false);
    case TextFormat::kNdjson:
      return std::make_unique<JsonWriter>(std::move(root), true);
    case TextFormat::kCsv:
      return std::make_unique<CsvWriter>(std::move(root), options);
    case TextFormat::kTable:
      return std::make_unique<TableWriter>(std::move(root), options);
  }
  return InvalidArgument("format: unknown text format");
}

}  // namespace bridge::format
