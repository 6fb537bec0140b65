#!/usr/bin/env node
// Usage: node http_arrow.mjs BASE_URL            (e.g. http://127.0.0.1:8080)
//
// Fetches one query covering every DuckDB type Bridge serves from a running `bridge serve`
// twice — GET /query?format=arrow, decoded by apache-arrow (an implementation independent of
// Bridge), and GET /query?format=json — and compares the two value by value. Prints
// {"rows": N, "columns": C, "values": V, "batches": B} and exits 0 when every value agrees;
// prints the first mismatches to stderr and exits 1 otherwise.
//
// The JSON is parsed by a small lossless parser (numbers keep their text), so 64-bit integers
// and decimals are compared exactly. What each Arrow value must look like in Bridge's JSON
// (src/bridge/format/README.md):
//   int8..int32, uint8..uint32     number, same value
//   int64, uint64                  number whose text is the exact decimal integer
//   float32 / float64              number that reads back to the same float (NaN/inf: null)
//   decimal(p, s) (DECIMAL,        number whose text is the exact value with all s fraction
//     HUGEINT = decimal(38, 0))      digits ("12.30")
//   utf8 (VARCHAR, UUID)           the same string
//   binary (BLOB)                  base64 string of the bytes
//   bool                           true / false
//   date32                         "YYYY-MM-DD"
//   time64[us]                     "HH:MM:SS[.fraction]", trailing zeros dropped
//   timestamp[s|ms|us|ns]          "YYYY-MM-DDTHH:MM:SS[.fraction]" (+ "Z" with a time zone,
//                                    the instant in UTC)
//   interval month_day_nano        DuckDB's text of the interval; checked against the
//                                    `<col>_text` column the query adds (iv::VARCHAR)
//   dictionary (ENUM)              the dictionary value
//   list / fixed-size list         array; struct: object in field order
//   map with utf8 keys             object {key: value}; other keys: [{"key", "value"}]
//   null at any depth              null

import * as arrow from 'apache-arrow';

const { Type } = arrow;
const utf8 = new TextDecoder('utf-8');

const ROWS = 3000;  // two DuckDB chunks
const COLUMNS = [
  ['i8', 'CASE WHEN i % 7 = 1 THEN NULL ELSE (i % 127)::TINYINT END'],
  ['i16', '(i * 3 - 4000)::SMALLINT'],
  ['i32', 'CASE WHEN i % 7 = 3 THEN NULL ELSE (i * 100003 - 150000000)::INTEGER END'],
  ['i64', 'CASE WHEN i % 7 = 4 THEN NULL ELSE (i - 1500) * 3000000000007 END'],
  ['u8', '(i % 200)::UTINYINT'],
  ['u16', '(i * 7)::USMALLINT'],
  ['u32', '(i * 1000000)::UINTEGER'],
  ['u64', 'CASE WHEN i % 7 = 6 THEN NULL ELSE i::UBIGINT * 6000000000000000 END'],
  ['huge', 'i::HUGEINT * 100000000000000000000 - 5'],
  ['f32', 'CASE WHEN i % 5 = 0 THEN NULL ELSE (i / 7.0)::FLOAT END'],
  ['f64', "CASE WHEN i % 5 = 1 THEN NULL WHEN i = 7 THEN 'nan'::DOUBLE ELSE i / 3.0 - 100 END"],
  ['d4', '((i % 2000) / 10.0 - 99)::DECIMAL(4, 1)'],
  ['d9', '(i * 1.25 - 7)::DECIMAL(9, 2)'],
  ['d18', 'CASE WHEN i % 5 = 3 THEN NULL ELSE (i * 1000.125 - 7)::DECIMAL(18, 3) END'],
  ['d38', '(i * 12345678901.5 - 1)::DECIMAL(38, 10)'],
  ['s', "CASE WHEN i % 13 = 0 THEN NULL ELSE 'str-' || i || repeat('é\"\\', (i % 4)::INTEGER) || chr((i % 31 + 1)::INTEGER) END"],
  ['bl', "CASE WHEN i % 13 = 1 THEN NULL ELSE ('\\x00\\xFF' || i)::BLOB END"],
  ['bo', 'CASE WHEN i % 7 = 0 THEN NULL ELSE i % 3 = 0 END'],
  ['dt', "CASE WHEN i % 11 = 0 THEN NULL ELSE DATE '2020-01-01' + (i - 1500)::INTEGER END"],
  ['tm', "TIME '00:00:00' + INTERVAL (i * 17) SECOND + INTERVAL (i * 10) MICROSECOND"],
  ['ts', "CASE WHEN i % 11 = 2 THEN NULL ELSE TIMESTAMP '2020-01-01' + INTERVAL (i) MINUTE + INTERVAL (i) MICROSECOND END"],
  ['ts_s', "(TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND)::TIMESTAMP_S"],
  ['ts_ms', "(TIMESTAMP '2020-01-01' + INTERVAL (i * 7) MILLISECOND)::TIMESTAMP_MS"],
  ['ts_ns', "('2020-01-01 00:00:01.' || lpad(i::VARCHAR, 9, '0'))::TIMESTAMP_NS"],
  ['tstz', "CASE WHEN i % 11 = 3 THEN NULL ELSE TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) HOUR END"],
  ['iv', 'CASE WHEN i % 11 = 4 THEN NULL ELSE to_months((i % 15)::INTEGER) + to_days((i % 30)::INTEGER) + to_microseconds(i::BIGINT * 1000) END'],
  ['uid', 'md5(i::VARCHAR)::UUID'],
  ['en', "CASE WHEN i % 7 = 5 THEN NULL ELSE (['red', 'green', 'blue'])[(i % 3) + 1]::ENUM('red', 'green', 'blue') END"],
  ['li', 'CASE WHEN i % 9 = 0 THEN NULL ELSE list_transform(range(i % 5), x -> CASE WHEN x = 2 THEN NULL ELSE (x + i)::INTEGER END) END'],
  ['ls', "list_transform(range(i % 3), x -> 'v' || x || '-é' || i)"],
  ['arr', 'CAST(CASE WHEN i % 6 = 0 THEN NULL ELSE [i::INTEGER, (i * 2)::INTEGER, NULL] END AS INTEGER[3])'],
  ['st', "CASE WHEN i % 8 = 0 THEN NULL ELSE {'a': i::INTEGER, 'b': CASE WHEN i % 3 = 0 THEN NULL ELSE 'n' || i END, 'c': [i::INTEGER, (i + 1)::INTEGER]} END"],
  ['mp', "CASE WHEN i % 10 = 0 THEN NULL ELSE MAP {'k' || (i % 3): i::INTEGER, 'z': CASE WHEN i % 4 = 0 THEN NULL ELSE (i + 1)::INTEGER END} END"],
  ['mpi', "MAP {i::INTEGER: 'v' || i}"],
  ['nested', "[{'x': i::INTEGER, 'y': [CASE WHEN i % 2 = 0 THEN NULL ELSE 'y' || i END]}, NULL]"],
  ['nothing', 'NULL::INTEGER'],
];
const IV = COLUMNS.find(([n]) => n === 'iv')[1];
const SQL = `SELECT i AS id, ${COLUMNS.map(([n, e]) => `${e} AS ${n}`).join(', ')}, ` +
    `(${IV})::VARCHAR AS iv_text FROM range(${ROWS}) t(i) ORDER BY i`;

// ----------------------------------------------------------------------------------------
// A lossless JSON parser: numbers become JsonNumber (their text), everything else as usual.

class JsonNumber {
  constructor(text) { this.text = text; }
}

function parseJson(text) {
  let pos = 0;
  const fail = (what) => { throw new Error(`JSON: ${what} at offset ${pos}`); };
  const ws = () => { while (pos < text.length && ' \t\r\n'.includes(text[pos])) ++pos; };
  function value() {
    ws();
    const c = text[pos];
    if (c === '{') {
      ++pos;
      const out = {};
      ws();
      if (text[pos] === '}') { ++pos; return out; }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail('expected a key');
        const key = string();
        ws();
        if (text[pos++] !== ':') fail("expected ':'");
        if (Object.prototype.hasOwnProperty.call(out, key)) fail(`duplicate key ${key}`);
        out[key] = value();
        ws();
        if (text[pos] === ',') { ++pos; continue; }
        if (text[pos] === '}') { ++pos; return out; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      ++pos;
      const out = [];
      ws();
      if (text[pos] === ']') { ++pos; return out; }
      for (;;) {
        out.push(value());
        ws();
        if (text[pos] === ',') { ++pos; continue; }
        if (text[pos] === ']') { ++pos; return out; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, pos)) { pos += word.length; return v; }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(pos, pos + 400));
    if (!m) fail('unexpected character');
    pos += m[0].length;
    return new JsonNumber(m[0]);
  }
  function string() {
    const start = pos;
    ++pos;
    while (pos < text.length && text[pos] !== '"') {
      if (text[pos] === '\\') ++pos;
      else if (text.charCodeAt(pos) < 0x20) fail('raw control character in a string');
      ++pos;
    }
    ++pos;
    return JSON.parse(text.slice(start, pos));
  }
  const out = value();
  ws();
  if (pos !== text.length) fail('trailing text');
  return out;
}

// ----------------------------------------------------------------------------------------
// The JSON value Bridge must write for row `i` of apache-arrow Data `data`, as a checker.

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

function pad(n, width = 2) { return String(n).padStart(width, '0'); }

// "HH:MM:SS[.fraction]" of `v` units since midnight (or of a day's remainder).
function clock(v, perSecond, digits) {
  const seconds = v / perSecond;
  const fraction = v % perSecond;
  let out = `${pad(seconds / 3600n)}:${pad((seconds / 60n) % 60n)}:${pad(seconds % 60n)}`;
  if (fraction !== 0n) out += `.${fraction.toString().padStart(digits, '0').replace(/0+$/, '')}`;
  return out;
}

const UNITS = { [arrow.TimeUnit.SECOND]: [1n, 0], [arrow.TimeUnit.MILLISECOND]: [1000n, 3],
                [arrow.TimeUnit.MICROSECOND]: [1000000n, 6], [arrow.TimeUnit.NANOSECOND]: [1000000000n, 9] };

function timestampText(v, unit, zoned) {
  const [perSecond, digits] = UNITS[unit];
  const perDay = perSecond * 86400n;
  let day = v / perDay;
  let rest = v % perDay;
  if (rest < 0n) { rest += perDay; day -= 1n; }
  const date = new Date(Number(day) * 86400000).toISOString().slice(0, 10);
  return `${date}T${clock(rest, perSecond, digits)}${zoned ? 'Z' : ''}`;
}

function base64(bytes) { return Buffer.from(bytes).toString('base64'); }

function validAt(data, i) {
  if (data.typeId === Type.Null) return false;
  const bitmap = data.nullBitmap;
  if (!bitmap || bitmap.length === 0) return true;
  return ((bitmap[i >> 3] >> (i & 7)) & 1) === 1;
}

// Compares JSON value `got` with what Arrow `data` row `i` says; pushes problems to `errors`.
function check(data, i, got, where, errors, ctx) {
  const bad = (expected) => errors.push(`${where}: arrow says ${expected}, json has ${
    got instanceof JsonNumber ? got.text : JSON.stringify(got)}`);
  if (data.offset !== 0) throw new Error(`unexpected sliced data at ${where}`);
  if (!validAt(data, i)) {
    if (got !== null) bad('null');
    return;
  }
  ctx.values += 1;
  const type = data.type;
  const values = data.values;
  const num = (text) => { if (!(got instanceof JsonNumber) || got.text !== text) bad(text); };
  switch (data.typeId) {
    case Type.Bool: {
      const v = ((values[i >> 3] >> (i & 7)) & 1) === 1;
      if (got !== v) bad(String(v));
      return;
    }
    case Type.Int: case Type.Int8: case Type.Int16: case Type.Int32: case Type.Int64:
    case Type.Uint8: case Type.Uint16: case Type.Uint32: case Type.Uint64:
      num(values[i].toString());
      return;
    case Type.Float: case Type.Float32: case Type.Float64: {
      const v = values[i];
      if (!Number.isFinite(v)) { if (got !== null) bad(`${v} (null in JSON)`); return; }
      const single = type.precision === arrow.Precision.SINGLE;
      const ok = got instanceof JsonNumber &&
          (single ? Math.fround(Number(got.text)) === v : Number(got.text) === v);
      if (!ok) bad(String(v));
      return;
    }
    case Type.Decimal: {
      const words = type.bitWidth / 32;
      num(scaled(wordsToBigInt(values, i * words, words), type.scale));
      return;
    }
    case Type.Utf8: case Type.LargeUtf8: {
      const o = data.valueOffsets;
      const v = utf8.decode(values.subarray(Number(o[i]), Number(o[i + 1])));
      if (got !== v) bad(JSON.stringify(v));
      return;
    }
    case Type.Binary: case Type.LargeBinary: {
      const o = data.valueOffsets;
      const v = base64(values.subarray(Number(o[i]), Number(o[i + 1])));
      if (got !== v) bad(JSON.stringify(v));
      return;
    }
    case Type.Date: case Type.DateDay: {
      const v = new Date(values[i] * 86400000).toISOString().slice(0, 10);
      if (got !== v) bad(v);
      return;
    }
    case Type.Time: case Type.TimeMicrosecond: case Type.TimeNanosecond:
    case Type.TimeMillisecond: case Type.TimeSecond: {
      const [perSecond, digits] = UNITS[type.unit];
      const v = clock(BigInt(values[i]), perSecond, digits);
      if (got !== v) bad(v);
      return;
    }
    case Type.Timestamp: case Type.TimestampSecond: case Type.TimestampMillisecond:
    case Type.TimestampMicrosecond: case Type.TimestampNanosecond: {
      const v = timestampText(BigInt(values[i]), type.unit, !!type.timezone);
      if (got !== v) bad(v);
      return;
    }
    case Type.Interval: case Type.IntervalMonthDayNano: {
      // DuckDB's own text of the same interval, from the iv_text column.
      const v = ctx.intervalText;
      if (got !== v) bad(JSON.stringify(v));
      return;
    }
    case Type.Dictionary: {
      let index = Number(values[i]);
      for (const chunk of data.dictionary.data) {
        if (index < chunk.length) { check(chunk, index, got, where, errors, ctx); ctx.values -= 1; return; }
        index -= chunk.length;
      }
      bad(`dictionary index ${values[i]} out of range`);
      return;
    }
    case Type.List: case Type.LargeList: {
      const o = data.valueOffsets;
      const n = Number(o[i + 1]) - Number(o[i]);
      if (!Array.isArray(got) || got.length !== n) { bad(`an array of ${n}`); return; }
      for (let j = 0; j < n; ++j) check(data.children[0], Number(o[i]) + j, got[j], `${where}[${j}]`, errors, ctx);
      return;
    }
    case Type.FixedSizeList: {
      const n = type.listSize;
      if (!Array.isArray(got) || got.length !== n) { bad(`an array of ${n}`); return; }
      for (let j = 0; j < n; ++j) check(data.children[0], i * n + j, got[j], `${where}[${j}]`, errors, ctx);
      return;
    }
    case Type.Struct: {
      const names = type.children.map((f) => f.name);
      if (got === null || typeof got !== 'object' || Array.isArray(got) || got instanceof JsonNumber ||
          Object.keys(got).join(',') !== names.join(',')) {
        bad(`an object with keys ${names.join(',')}`);
        return;
      }
      names.forEach((name, k) => check(data.children[k], i, got[name], `${where}.${name}`, errors, ctx));
      return;
    }
    case Type.Map: {
      const o = data.valueOffsets;
      const entries = data.children[0];
      const keys = entries.children[0];
      const textKeys = keys.typeId === Type.Utf8 || keys.typeId === Type.LargeUtf8;
      const n = Number(o[i + 1]) - Number(o[i]);
      if (textKeys) {
        if (got === null || typeof got !== 'object' || Array.isArray(got) || Object.keys(got).length !== n) {
          bad(`an object of ${n} entries`);
          return;
        }
        const gotKeys = Object.keys(got);
        for (let j = 0; j < n; ++j) {
          const at = Number(o[i]) + j;
          const ko = keys.valueOffsets;
          const key = utf8.decode(keys.values.subarray(Number(ko[at]), Number(ko[at + 1])));
          if (gotKeys[j] !== key) { bad(`key ${JSON.stringify(key)} at entry ${j}`); return; }
          check(entries.children[1], at, got[key], `${where}{${key}}`, errors, ctx);
        }
      } else {
        if (!Array.isArray(got) || got.length !== n) { bad(`an array of ${n} entries`); return; }
        for (let j = 0; j < n; ++j) {
          const at = Number(o[i]) + j;
          const e = got[j];
          if (e === null || typeof e !== 'object' || Object.keys(e).join(',') !== 'key,value') {
            bad('{"key", "value"} entries');
            return;
          }
          check(keys, at, e.key, `${where}[${j}].key`, errors, ctx);
          check(entries.children[1], at, e.value, `${where}[${j}].value`, errors, ctx);
        }
      }
      return;
    }
    default:
      errors.push(`${where}: type ${type} is not covered by this test`);
  }
}

async function fetchBytes(url) {
  const response = await fetch(url);
  const body = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) {
    throw new Error(`GET ${url}: ${response.status} ${utf8.decode(body).slice(0, 500)}`);
  }
  return { body, type: response.headers.get('content-type') };
}

async function main() {
  const base = process.argv[2];
  if (!base) {
    console.error('usage: node http_arrow.mjs BASE_URL');
    process.exit(2);
  }
  const url = (format) => `${base}/query?format=${format}&sql=${encodeURIComponent(SQL)}`;
  const [a, j] = await Promise.all([fetchBytes(url('arrow')), fetchBytes(url('json'))]);
  const errors = [];
  if (a.type !== 'application/vnd.apache.arrow.stream') errors.push(`arrow content-type ${a.type}`);
  if (!String(j.type).startsWith('application/json')) errors.push(`json content-type ${j.type}`);
  const table = arrow.tableFromIPC(a.body);
  const rows = parseJson(utf8.decode(j.body));
  if (!Array.isArray(rows)) throw new Error('the JSON body is not an array');
  if (table.numRows !== ROWS || rows.length !== ROWS) {
    errors.push(`rows: arrow ${table.numRows}, json ${rows.length}, expected ${ROWS}`);
  }
  const names = table.schema.fields.map((f) => f.name);
  const expectedNames = ['id', ...COLUMNS.map(([n]) => n), 'iv_text'];
  if (names.join(',') !== expectedNames.join(',')) errors.push(`arrow columns ${names.join(',')}`);
  const ctx = { values: 0, intervalText: null };
  let r = 0;
  for (const batch of table.batches) {
    const ivText = batch.data.children[names.indexOf('iv_text')];
    for (let i = 0; i < batch.numRows && r < rows.length; ++i, ++r) {
      const row = rows[r];
      if (row === null || typeof row !== 'object' || Object.keys(row).join(',') !== names.join(',')) {
        errors.push(`row ${r}: json keys ${row && Object.keys(row).join(',')}`);
        continue;
      }
      ctx.intervalText = validAt(ivText, i)
          ? utf8.decode(ivText.values.subarray(ivText.valueOffsets[i], ivText.valueOffsets[i + 1]))
          : null;
      names.forEach((name, k) => check(batch.data.children[k], i, row[name], `row ${r}.${name}`, errors, ctx));
      if (errors.length > 50) break;
    }
  }
  if (errors.length > 0) {
    console.error(errors.slice(0, 30).join('\n'));
    console.error(`${errors.length} mismatch(es)`);
    process.exit(1);
  }
  console.log(JSON.stringify({ rows: r, columns: names.length, values: ctx.values, batches: table.batches.length }));
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
