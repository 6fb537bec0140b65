// Concatenation of Arrow arrays (C Data Interface) into one freshly allocated array, used to
// coalesce DuckDB's 2048-row chunks into bigger record batches.
//
// Concatenation copies every value once (that copy is the price of coalescing; see
// bench/coalesce_bench.cc). The inputs are only read: they stay owned by the caller and may be
// released as soon as Concatenate returns. Functions here are thread-safe (they share no state).
#pragma once

#include <cstdint>
#include <span>

#include "bridge/arrow/c_data.h"
#include "bridge/common/status.h"

namespace bridge::ipc {

// Returns one array holding the rows of `arrays`, in order. Every input must be an array of
// the type `schema` describes (for DuckDB batches: the stream's "+s" schema); each input's
// `offset` and `length` select its rows. The result has offset 0, a correct null_count, no
// validity bitmap when it has no nulls (a null validity pointer), and buffers that are
// 64-byte aligned, zero-padded to a multiple of 64 bytes and owned by the result: its release
// frees them, and its children and dictionary may be moved out and released on their own.
// An empty `arrays` gives a length-0 array of the type.
//
// Every type DuckDB exports with its default settings is supported, and more: null, bool, integers,
// floats, decimals, dates, times, timestamps, durations, intervals, (large) utf8/binary,
// utf8/binary views, fixed_size_binary, (large) list, fixed_size_list, struct, map, sparse and
// dense unions, and dictionary-encoded arrays. Dictionaries: when every input's dictionary has the
// same contents the result keeps one copy and the indices are copied unchanged (DuckDB's ENUMs);
// otherwise the dictionaries are concatenated and each input's indices are shifted by the
// number of dictionary values before it (values may then repeat in the dictionary).
//
// Errors:
// - InvalidArgument: an input does not match `schema` (buffer or child counts), is released,
//   or has inconsistent lengths, offsets, type ids or view references. The message names the
//   input and the field ("concatenate: input 2, field 'tags.item': ...").
// - ResourceExhausted: the result does not fit its offsets (more than 2^31-1 bytes of
//   utf8/binary, or child values of a list or dense union), a shifted dictionary index does
//   not fit the index type, or memory cannot be allocated.
// - Unimplemented: run_end_encoded and list_view / large_list_view arrays (DuckDB makes list
//   views only with arrow_output_list_view set); ordered dictionaries whose contents differ
//   between inputs.
//
// The C Data Interface carries no buffer sizes, so buffers are trusted to be as long as the
// inputs' lengths and offsets imply; everything that can be checked against them is.
Result<OwnedArray> Concatenate(const ArrowSchema& schema,
                               std::span<const ArrowArray* const> arrays);

// Returns an estimate of the body bytes of `array` (of the type `schema` describes): the sum
// of the used sizes of its buffers over its rows (offset and length respected), recursively
// through children, plus whole dictionaries. Cheap (no scan of the values), meant for byte
// targets when coalescing. Never fails: parts that are inconsistent count as zero.
int64_t EstimateBytes(const ArrowSchema& schema, const ArrowArray& array);

}  // namespace bridge::ipc
