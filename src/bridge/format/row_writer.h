// Text output of query results: JSON, NDJSON, CSV and a human-readable table, written
// straight from Arrow C Data Interface record batches.
//
// The writers append to a caller-owned std::string that the caller reuses between batches
// (send it, clear it, write the next batch): there is no document tree and no per-row or
// per-value allocation. The rules for every Arrow type are in README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"

namespace bridge::format {

enum class TextFormat {
  kJson,    // [{"col": value, ...}, ...]
  kNdjson,  // one {"col": value, ...} per line
  kCsv,     // RFC 4180 with a header row
  kTable,   // aligned columns for a terminal, like psql
};

// Returns the format named `name`: "json", "ndjson" (or "jsonl"), "csv" or "table", in any
// letter case. Returns InvalidArgument for other names.
Result<TextFormat> ParseTextFormat(std::string_view name);

// Returns the lower-case name of `format` ("json", ...).
std::string_view TextFormatName(TextFormat format);

// Returns the HTTP Content-Type of `format` ("application/json", "application/x-ndjson",
// "text/csv; charset=utf-8", "text/plain; charset=utf-8").
std::string_view ContentType(TextFormat format);

struct TextOptions {
  // CSV: write the column names as the first line.
  bool csv_header = true;
  // CSV: the field separator; not '"', '\r' or '\n'.
  char csv_delimiter = ',';
  // Table: the most rows held and printed; the footer still counts all rows. >= 0.
  int64_t table_max_rows = 10000;
};

// Writes the rows of Arrow record batches as text.
//
// A batch is a struct array whose children are the columns, as engine::BatchStream yields
// them. Call Begin once, Write for each batch, then End once. Every call only appends to
// `out`. Write checks the whole batch (buffers, lengths, offsets, indices) before it
// writes anything: on error `out` is left as it was and the writer can go on with the next
// batch.
//
// The table format must see every row to size its columns: it keeps the text of up to
// table_max_rows rows and prints everything in End; Begin and Write append nothing.
//
// Not thread-safe. The schema passed to Make must outlive the writer.
class RowWriter {
 public:
  virtual ~RowWriter() = default;

  // Returns a writer for batches of `schema`, a struct ("+s") whose children are the
  // columns. Returns InvalidArgument naming the column for a type it cannot write
  // ("format: column 'x': unsupported type '+q' ...") and for bad options.
  static Result<std::unique_ptr<RowWriter>> Make(TextFormat format, const ArrowSchema& schema,
                                                 TextOptions options = {});

  // Appends what comes before the rows: "[" for JSON, the header line for CSV.
  virtual Status Begin(std::string* out) = 0;

  // Appends the rows of `batch`. Returns InvalidArgument for a batch that does not match
  // the schema or is malformed, FailedPrecondition outside Begin ... End.
  virtual Status Write(const ArrowArray& batch, std::string* out) = 0;

  // Appends what comes after the rows: "]\n" for JSON, the whole table for the table
  // format.
  virtual Status End(std::string* out) = 0;

  // Rows written so far.
  virtual int64_t rows() const = 0;
};

}  // namespace bridge::format
