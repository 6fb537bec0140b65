#!/usr/bin/env node
// Usage: node write_arrow.mjs OUT
//
// Writes an Arrow IPC stream with apache-arrow (independent of Bridge) to OUT, for Bridge's
// reader to read. Two record batches (3 rows, then 2) of the fixed values below; the C++
// interop test (interop_test.cc, kWrittenByNode) holds the same values as integration JSON.
// Keep the two in sync.
//
//   column  type                         batch 0                          batch 1
//   i8      int8                         -128, 0, 127                     null, 5
//   i16     int16                        -32768, 1, null                  32767, -2
//   i32     int32                        null, -2147483648, 2147483647    0, 42
//   i64     int64                        -2^63, 2^53 + 1, null            2^63 - 1, -1
//   u8      uint8                        0, 255, null                     1, 2
//   u16     uint16                       65535, 0, 1                      null, 3
//   u32     uint32                       4294967295, 0, null              7, 8
//   u64     uint64                       2^64 - 1, 0, null                1, null
//   f32     float32                      1.5, -0.25, null                 3.4028234663852886e38, 0.1f
//   f64     float64                      0.1, -1e300, null                2.5, 5e-324
//   s       utf8                         "héllo", "", null                "日本", "x"
//   b       bool                         true, false, null                false, true
//   d       dictionary<int8, utf8>       "red", "green", null             "blue", "red"
//   li      list<int32>                  [1, 2], [], null                 [null, 3], [4]
//   st      struct<a: int32, b: utf8>    {1, "x"}, null, {null, "z"}      {4, null}, {5, "w"}
//   ts_ms   timestamp[ms]                0, 1600000000123, null           -1, 86400000
//   ts_us   timestamp[us, UTC]           1600000000123456, null, 0        -1, 1
//   dt      date32 (days)                0, 18262, null                   -1, 1
//   nul     null                         null x 3                         null x 2
//   bin     binary                       00FF, (empty), null              41, 010203
//
// The dictionary of `d` differs between the batches (apache-arrow builds one per batch), so
// the stream carries a dictionary replacement or delta. Exit status 0 on success.

import { writeFileSync } from 'node:fs';
import * as arrow from 'apache-arrow';

// One type object per column, shared by both batches so that they have one schema.
const types = {
  i8: new arrow.Int8(),
  i16: new arrow.Int16(),
  i32: new arrow.Int32(),
  i64: new arrow.Int64(),
  u8: new arrow.Uint8(),
  u16: new arrow.Uint16(),
  u32: new arrow.Uint32(),
  u64: new arrow.Uint64(),
  f32: new arrow.Float32(),
  f64: new arrow.Float64(),
  s: new arrow.Utf8(),
  b: new arrow.Bool(),
  d: new arrow.Dictionary(new arrow.Utf8(), new arrow.Int8(), 0),
  li: new arrow.List(new arrow.Field('item', new arrow.Int32(), true)),
  st: new arrow.Struct([
    new arrow.Field('a', new arrow.Int32(), true),
    new arrow.Field('b', new arrow.Utf8(), true),
  ]),
  ts_ms: new arrow.TimestampMillisecond(),
  ts_us: new arrow.TimestampMicrosecond('UTC'),
  dt: new arrow.DateDay(),
  nul: new arrow.Null(),
  bin: new arrow.Binary(),
};

// A vector of 64-bit (or 32-bit) integer-backed values made straight from the integers, so
// that no value goes through a JS number (apache-arrow's builders take milliseconds there).
function raw(type, ArrayType, values) {
  const bitmap = new Uint8Array(Math.ceil(values.length / 8));
  const data = new ArrayType(values.length);
  let nulls = 0;
  values.forEach((v, i) => {
    if (v === null) {
      ++nulls;
    } else {
      bitmap[i >> 3] |= 1 << (i & 7);
      data[i] = v;
    }
  });
  return arrow.makeVector(arrow.makeData({
    type, length: values.length, nullCount: nulls, nullBitmap: bitmap, data,
  }));
}

function batch(columns) {
  const vectors = {};
  for (const [name, values] of Object.entries(columns)) {
    const type = types[name];
    if (name === 'ts_ms' || name === 'ts_us') {
      vectors[name] = raw(type, BigInt64Array, values);
    } else if (name === 'dt') {
      vectors[name] = raw(type, Int32Array, values);
    } else {
      vectors[name] = arrow.vectorFromArray(values, type);
    }
  }
  return new arrow.Table(vectors);
}

const first = batch({
  i8: [-128, 0, 127],
  i16: [-32768, 1, null],
  i32: [null, -2147483648, 2147483647],
  i64: [-(2n ** 63n), 2n ** 53n + 1n, null],
  u8: [0, 255, null],
  u16: [65535, 0, 1],
  u32: [4294967295, 0, null],
  u64: [2n ** 64n - 1n, 0n, null],
  f32: [1.5, -0.25, null],
  f64: [0.1, -1e300, null],
  s: ['héllo', '', null],
  b: [true, false, null],
  d: ['red', 'green', null],
  li: [[1, 2], [], null],
  st: [{ a: 1, b: 'x' }, null, { a: null, b: 'z' }],
  ts_ms: [0n, 1600000000123n, null],
  ts_us: [1600000000123456n, null, 0n],
  dt: [0, 18262, null],
  nul: [null, null, null],
  bin: [Uint8Array.from([0x00, 0xff]), new Uint8Array(0), null],
});

const second = batch({
  i8: [null, 5],
  i16: [32767, -2],
  i32: [0, 42],
  i64: [2n ** 63n - 1n, -1n],
  u8: [1, 2],
  u16: [null, 3],
  u32: [7, 8],
  u64: [1n, null],
  f32: [3.4028234663852886e38, Math.fround(0.1)],
  f64: [2.5, 5e-324],
  s: ['日本', 'x'],
  b: [false, true],
  d: ['blue', 'red'],
  li: [[null, 3], [4]],
  st: [{ a: 4, b: null }, { a: 5, b: 'w' }],
  ts_ms: [-1n, 86400000n],
  ts_us: [-1n, 1n],
  dt: [-1, 1],
  nul: [null, null],
  bin: [Uint8Array.from([0x41]), Uint8Array.from([1, 2, 3])],
});

function main() {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: node write_arrow.mjs OUT\n');
    process.exit(2);
  }
  const table = new arrow.Table([...first.batches, ...second.batches]);
  if (table.batches.length !== 2 || table.numRows !== 5) {
    throw new Error(`expected 2 batches of 5 rows, got ${table.batches.length} / ${table.numRows}`);
  }
  const bytes = arrow.RecordBatchStreamWriter.writeAll(table).toUint8Array(true);
  writeFileSync(out, bytes);
}

try {
  main();
} catch (error) {
  process.stderr.write(`write_arrow: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
