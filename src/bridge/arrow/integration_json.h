// The Arrow integration-test JSON format: Arrow's own textual description of a schema and its
// record batches ("schema" / "batches" / "dictionaries", with per-column VALIDITY, DATA,
// OFFSET, TYPE_ID, VIEWS ... arrays), used by the golden files in arrow-testing. Bridge uses it
// to prove that its IPC reader and writer agree with other Arrow implementations, and
// `bridge ipc to-json` prints it.
//
// Functions here are thread-safe (they share no state) and only read their inputs.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"

namespace bridge::ipc {

// Returns `batches` (struct arrays whose children are the columns, as the IPC reader and
// engine::BatchStream produce them) of `schema` (a "+s" struct schema) as one integration JSON
// document on one line: {"schema": {...}, "batches": [...], "dictionaries": [...]}.
//
// Encoding of values, as Arrow's integration runner writes them: 8..32-bit integers, date32,
// time32, month intervals and floats are JSON numbers; 64-bit integers, date64, time64,
// timestamps, durations and decimals (the unscaled integer) are strings; binary and
// fixed-size binary are upper-case hex strings; utf8 is text (bytes that are not UTF-8 become
// U+FFFD); day-time intervals are {"days", "milliseconds"}, month-day-nano intervals
// {"months", "days", "nanoseconds"}; float16 is the number it stands for; NaN and infinities
// are the strings "NaN", "Infinity", "-Infinity". Arrays with an offset are written
// normalized: lists and binaries get offsets that start at 0 and children cut to the rows
// that are referenced; dense union offsets and list views keep their children whole. A
// dictionary-encoded column holds its indices in DATA and its values in "dictionaries";
// dictionary ids are assigned in depth-first order (inner dictionaries first, as Arrow C++
// does), one per dictionary-encoded field. A dictionary that grows from batch to batch (delta
// dictionaries) is written once, with its last contents.
//
// Errors: InvalidArgument for a schema that is not a struct, a batch that does not match the
// schema (buffer or child counts, offsets outside a child, missing buffers, bad view
// references), naming the batch and column; Unimplemented when a later batch replaces a
// dictionary with different values (integration JSON holds one dictionary per id).
Result<std::string> ToIntegrationJson(const ArrowSchema& schema,
                                      std::span<const ArrowArray* const> batches);

struct JsonCompareOptions {
  // Floating-point values match when they are equal once the expected value is rounded to
  // the column's precision (float16/float32/float64), or, when this is > 0, when they differ
  // by at most this much (Arrow C++'s integration runner uses ApproxEquals: 1e-5).
  double float_tolerance = 0;
  // Most mismatches reported in one Status (one per column and batch at most).
  int max_mismatches = 10;
};

// Compares `batches` of `schema` with the integration JSON document `golden_json`
// semantically:
// - the schema: field names, nullability, types with all their parameters, children,
//   dictionary encoding (index type, ordered; not the ids), field and schema metadata
//   (as sets of key/value pairs; extension metadata included). As in Arrow C++'s type
//   equality, the names of a map's entries/key/value fields do not count;
// - the number of batches and of rows in each;
// - every value: validity, and the value only where it is valid (golden files hold garbage
//   under nulls); lists, maps and list views by their items, not their offsets; dictionaries
//   by the values the indices point at (so a reader that renumbers dictionary ids or
//   reorders dictionary values still passes); unions by type id and the child value;
//   run-end encoded arrays and binary/utf8 views by their logical values; integers and
//   decimals whether written as numbers or strings; binary hex in either letter case.
//
// Returns OK when everything matches, InvalidArgument listing the mismatches otherwise, each
// naming where it is: "batch 0, column 'a.b', row 7: expected 3, got 4" (a list item is
// "row 7[2]"; schema mismatches name the field). InvalidArgument also when `golden_json` is
// not an integration JSON document or the batches are malformed.
Status CompareWithIntegrationJson(const ArrowSchema& schema,
                                  std::span<const ArrowArray* const> batches,
                                  std::string_view golden_json,
                                  const JsonCompareOptions& options = {});

// Compares two integration JSON documents with the rules of CompareWithIntegrationJson
// (`expected` plays the golden file).
Status CompareIntegrationJsonDocuments(std::string_view expected, std::string_view actual,
                                       const JsonCompareOptions& options = {});

// Returns the contents of `path`, gunzipped when it is gzip-compressed (read as is
// otherwise). NotFound when it does not exist, IoError (Unavailable) when it cannot be read
// or is a damaged gzip stream.
Result<std::string> ReadGzipFile(const std::filesystem::path& path);

}  // namespace bridge::ipc
