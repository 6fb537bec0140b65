#!/usr/bin/env node
// Usage: node read_arrow.mjs FILE
//
// Reads an Arrow IPC stream or file with apache-arrow (the npm package pinned in
// package.json, an implementation independent of Bridge) and prints one JSON document:
//
//   {"format": "stream" | "file",
//    "schema": {"fields": [FIELD...], "metadata": {key: value}},
//    "batches": [row count of each record batch],
//    "columns": [top-level field names],
//    "rows": [[value of each column]...]}          (all batches, in order)
//
//   FIELD = {"name", "type": apache-arrow's type string ("Int32", "Timestamp<MICROSECOND, UTC>",
//            "Dictionary<Uint8, Utf8>", ...), "nullable", "metadata"?: {key: value},
//            "children"?: [FIELD...]}
//
// Canonical form of values (the interop tests compare against it):
//   null                    -> null (a null slot at any depth)
//   bool                    -> true / false
//   int8..int32, uint8..32  -> JSON number
//   int64, uint64           -> decimal string ("-9223372036854775808")
//   float16/32/64           -> JSON number, float32/16 as the shortest decimal that reads back
//                              to the same value; NaN / Infinity / -Infinity as strings
//   decimal(p, s)           -> exact decimal string with s fraction digits ("-12.340", "7")
//   utf8, large utf8, views -> string
//   binary, fixed binary    -> upper-case hex string ("00FF")
//   date32 / date64         -> "YYYY-MM-DD" (date64 that is not a whole day: milliseconds string)
//   time, timestamp,        -> decimal string of the integer in the type's unit (the unit and
//   duration                   time zone are in the type string)
//   interval year_month     -> {"months": n}
//   interval day_time       -> {"days": n, "milliseconds": n}
//   interval month_day_nano -> {"months": n, "days": n, "nanoseconds": "n"}
//   list, large list,       -> array of values
//   fixed-size list
//   struct                  -> object {field name: value} in field order
//   map                     -> array of {"key": k, "value": v}
//   union (sparse, dense)   -> {"type": child field name, "type_id": n, "value": v}
//   dictionary              -> the dictionary value the index points at
//   run-end encoded         -> the value of the run
//
// apache-arrow reads compressed bodies only with codecs registered by the caller; none are
// (no LZ4/ZSTD package is pinned), so compressed input fails with apache-arrow's error.
//
// Exit status 0 on success; on a read error the message goes to stderr and the status is 1.

import { readFileSync } from 'node:fs';
import * as arrow from 'apache-arrow';

const { Type } = arrow;
const utf8 = new TextDecoder('utf-8');

function hex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

function floatNumber(x, single) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (!single) return x;
  for (let p = 1; p <= 9; ++p) {
    const candidate = Number(x.toPrecision(p));
    if (Math.fround(candidate) === x) return candidate;
  }
  return x;
}

function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

// The two's complement integer of `words` 32-bit little-endian words.
function wordsToBigInt(values, start, words) {
  let v = 0n;
  for (let k = words - 1; k >= 0; --k) v = (v << 32n) | BigInt(values[start + k] >>> 0);
  const bits = BigInt(32 * words);
  if (v >> (bits - 1n)) v -= 1n << bits;
  return v;
}

function scaled(v, scale) {
  const negative = v < 0n;
  let digits = (negative ? -v : v).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  }
  return (negative ? '-' : '') + digits;
}

function isoDate(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function validAt(data, i) {
  if (data.typeId === Type.Null) return false;
  const bitmap = data.nullBitmap;
  if (!bitmap || bitmap.length === 0) return true;
  return ((bitmap[i >> 3] >> (i & 7)) & 1) === 1;
}

// The canonical value at row `i` of `data` (an apache-arrow Data object).
function valueAt(data, i) {
  if (data.offset !== 0) throw new Error(`unexpected sliced data (offset ${data.offset})`);
  const type = data.type;
  if (data.typeId !== Type.SparseUnion && data.typeId !== Type.DenseUnion &&
      data.typeId !== Type.Union && data.typeId !== Type.RunEndEncoded && !validAt(data, i)) {
    return null;
  }
  const values = data.values;
  switch (data.typeId) {
    case Type.Null:
      return null;
    case Type.Bool:
      return ((values[i >> 3] >> (i & 7)) & 1) === 1;
    case Type.Int:
    case Type.Int8:
    case Type.Int16:
    case Type.Int32:
    case Type.Int64:
    case Type.Uint8:
    case Type.Uint16:
    case Type.Uint32:
    case Type.Uint64:
      return type.bitWidth === 64 ? values[i].toString() : Number(values[i]);
    case Type.Float:
    case Type.Float16:
    case Type.Float32:
    case Type.Float64:
      if (type.precision === 0) return floatNumber(halfToNumber(values[i]), true);
      return floatNumber(values[i], type.precision === 1);
    case Type.Decimal: {
      const words = type.bitWidth / 32;
      return scaled(wordsToBigInt(values, i * words, words), type.scale);
    }
    case Type.Utf8:
    case Type.LargeUtf8: {
      const o = data.valueOffsets;
      return utf8.decode(values.subarray(Number(o[i]), Number(o[i + 1])));
    }
    case Type.Binary:
    case Type.LargeBinary: {
      const o = data.valueOffsets;
      return hex(values.subarray(Number(o[i]), Number(o[i + 1])));
    }
    case Type.FixedSizeBinary:
      return hex(values.subarray(i * type.byteWidth, (i + 1) * type.byteWidth));
    case Type.Utf8View:
    case Type.BinaryView: {
      const v = arrow.makeVector(data).get(i);
      return typeof v === 'string' ? v : hex(v);
    }
    case Type.Date:
    case Type.DateDay:
    case Type.DateMillisecond:
      if (type.unit === arrow.DateUnit.DAY) return isoDate(values[i] * 86400000);
      return BigInt(values[i]) % 86400000n === 0n ? isoDate(Number(values[i]))
                                                  : values[i].toString();
    case Type.Time:
    case Type.TimeSecond:
    case Type.TimeMillisecond:
    case Type.TimeMicrosecond:
    case Type.TimeNanosecond:
    case Type.Timestamp:
    case Type.TimestampSecond:
    case Type.TimestampMillisecond:
    case Type.TimestampMicrosecond:
    case Type.TimestampNanosecond:
    case Type.Duration:
    case Type.DurationSecond:
    case Type.DurationMillisecond:
    case Type.DurationMicrosecond:
    case Type.DurationNanosecond:
      return values[i].toString();
    case Type.Interval:
    case Type.IntervalYearMonth:
    case Type.IntervalDayTime:
    case Type.IntervalMonthDayNano:
      if (type.unit === arrow.IntervalUnit.YEAR_MONTH) return { months: values[i] };
      if (type.unit === arrow.IntervalUnit.DAY_TIME) {
        return { days: values[2 * i], milliseconds: values[2 * i + 1] };
      }
      return {
        months: values[4 * i],
        days: values[4 * i + 1],
        nanoseconds: wordsToBigInt(values, 4 * i + 2, 2).toString(),
      };
    case Type.List:
    case Type.LargeList: {
      const o = data.valueOffsets;
      const out = [];
      for (let j = Number(o[i]); j < Number(o[i + 1]); ++j) out.push(valueAt(data.children[0], j));
      return out;
    }
    case Type.FixedSizeList: {
      const out = [];
      for (let j = i * type.listSize; j < (i + 1) * type.listSize; ++j) {
        out.push(valueAt(data.children[0], j));
      }
      return out;
    }
    case Type.Struct: {
      const out = {};
      type.children.forEach((field, k) => { out[field.name] = valueAt(data.children[k], i); });
      return out;
    }
    case Type.Map: {
      const o = data.valueOffsets;
      const entries = data.children[0];
      const out = [];
      for (let j = o[i]; j < o[i + 1]; ++j) {
        out.push({ key: valueAt(entries.children[0], j), value: valueAt(entries.children[1], j) });
      }
      return out;
    }
    case Type.Union:
    case Type.SparseUnion:
    case Type.DenseUnion: {
      const code = data.typeIds[i];
      const k = type.typeIds.indexOf(code);
      const at = type.mode === arrow.UnionMode.Dense ? data.valueOffsets[i] : i;
      return { type: type.children[k].name, type_id: code, value: valueAt(data.children[k], at) };
    }
    case Type.Dictionary: {
      let index = Number(values[i]);
      for (const chunk of data.dictionary.data) {
        if (index < chunk.length) return valueAt(chunk, index);
        index -= chunk.length;
      }
      throw new Error(`dictionary index ${values[i]} out of range`);
    }
    case Type.RunEndEncoded: {
      const ends = data.children[0];
      let k = 0;
      while (k < ends.length && Number(ends.values[k]) <= i) ++k;
      return valueAt(data.children[1], k);
    }
    default:
      throw new Error(`unsupported type ${type}`);
  }
}

function metadataObject(map) {
  if (!map || map.size === 0) return undefined;
  return Object.fromEntries([...map.entries()]);
}

function describeField(field) {
  const out = { name: field.name, type: String(field.type), nullable: field.nullable };
  const metadata = metadataObject(field.metadata);
  if (metadata) out.metadata = metadata;
  const valueType = arrow.DataType.isDictionary(field.type) ? field.type.dictionary : field.type;
  if (valueType.children && valueType.children.length > 0) {
    out.children = valueType.children.map(describeField);
  }
  return out;
}

function main() {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: node read_arrow.mjs FILE\n');
    process.exit(2);
  }
  const reader = arrow.RecordBatchReader.from(readFileSync(path));
  reader.open();
  const format = reader.isFile() ? 'file' : 'stream';
  const schema = reader.schema;
  const batches = [];
  const rows = [];
  for (const batch of reader) {
    batches.push(batch.numRows);
    const columns = batch.data.children;
    for (let i = 0; i < batch.numRows; ++i) rows.push(columns.map((c) => valueAt(c, i)));
  }
  const out = {
    format,
    schema: { fields: schema.fields.map(describeField) },
    batches,
    columns: schema.fields.map((f) => f.name),
    rows,
  };
  const metadata = metadataObject(schema.metadata);
  if (metadata) out.schema.metadata = metadata;
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`read_arrow: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
}
