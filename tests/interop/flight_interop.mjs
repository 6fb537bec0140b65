#!/usr/bin/env node
// Usage: node flight_interop.mjs HOST:PORT PROTO_DIR
//
// Talks to a running `bridge serve` over Arrow Flight with implementations independent of
// Bridge: @grpc/grpc-js + @grpc/proto-loader (loading Bridge's proto/Flight.proto) for gRPC and
// protobuf, apache-arrow for Arrow IPC. FlightData is turned back into an IPC stream
// (data_header + data_body framed as encapsulated messages) and decoded by apache-arrow;
// uploads are apache-arrow's own IPC stream split into FlightData.
//
// Expects the data folder of server_interop_test.cc: people.csv (3 rows) and parts/ (three
// CSV files of 1000 rows each, id 0..2999), served with --flight-endpoints 3.
// Prints a JSON summary of what it saw and exits 0; exits 1 with the error on stderr.

import * as arrow from 'apache-arrow';
import * as common from './flight_common.mjs';

const { EOS, collect, toIpcStream, uploadMessages } = common;
const [address, protoDir] = common.parseArgs('flight_interop.mjs');
const client = common.connect(address, protoDir);
const unary = (method, request) => common.unary(client, method, request);
const bidi = (method, messages) => common.bidi(client, method, messages);

function schemaOf(info) {
  // FlightInfo.schema is an encapsulated Schema message: add EOS and read it as a stream.
  return arrow.tableFromIPC(Buffer.concat([info.schema, EOS])).schema;
}

async function fetchEndpoint(endpoint) {
  const data = await collect(client.DoGet(endpoint.ticket));
  return arrow.tableFromIPC(toIpcStream(data));
}

function columnValues(table, name) {
  return table.getChild(name).toArray();
}

function pathDescriptor(name) {
  return { type: 'PATH', path: [name], cmd: Buffer.alloc(0) };
}

function cmdDescriptor(sql) {
  return { type: 'CMD', path: [], cmd: Buffer.from(sql) };
}

async function main() {
  const summary = {};

  // ListFlights: one FlightInfo per table.
  const flights = await collect(client.ListFlights({ expression: '' }));
  summary.tables = flights.map((f) => f.flight_descriptor.path.join('/')).sort();

  // A split table: every endpoint fetched, together exactly the whole table.
  const parts = await unary('GetFlightInfo', pathDescriptor('parts'));
  summary.parts_schema = schemaOf(parts).fields.map((f) => `${f.name}:${f.type}`);
  summary.parts_endpoints = parts.endpoint.length;
  summary.parts_ordered = parts.ordered;
  let rows = 0;
  let sum = 0n;
  const seen = new Set();
  for (const endpoint of parts.endpoint) {
    const table = await fetchEndpoint(endpoint);
    rows += table.numRows;
    for (const id of columnValues(table, 'id')) {
      sum += BigInt(id);
      seen.add(Number(id));
    }
  }
  summary.parts_rows = rows;
  summary.parts_sum = sum.toString();
  summary.parts_distinct = seen.size;

  // SQL as a CMD descriptor.
  const people = await unary('GetFlightInfo', cmdDescriptor('select id, name, score from people order by id'));
  const peopleTable = await fetchEndpoint(people.endpoint[0]);
  summary.people = peopleTable.toArray().map((r) => [Number(r.id), r.name, r.score]);

  // GetSchema without running the query.
  const schema = await unary('GetSchema', cmdDescriptor('select 42::INTEGER as answer'));
  summary.get_schema = schemaOf(schema).fields.map((f) => `${f.name}:${f.type}`);

  // DoPut of a table apache-arrow wrote, then read back through DoGet.
  const upload = arrow.tableFromArrays({
    k: Int32Array.from({ length: 5000 }, (_, i) => i * 3),
    s: Array.from({ length: 5000 }, (_, i) => (i % 10 === 0 ? null : `s${i}`)),
  });
  const acks = await bidi('DoPut', uploadMessages(upload, pathDescriptor('uploaded'), '{"mode": "create"}'));
  summary.put_acks = acks.length;
  summary.put_last = JSON.parse(acks[acks.length - 1].app_metadata.toString());
  const uploaded = await unary('GetFlightInfo', cmdDescriptor('select k, s from uploaded order by k'));
  const back = await fetchEndpoint(uploaded.endpoint[0]);
  let same = back.numRows === upload.numRows;
  const k0 = columnValues(upload, 'k');
  const k1 = columnValues(back, 'k');
  const s0 = upload.getChild('s');
  const s1 = back.getChild('s');
  for (let i = 0; same && i < upload.numRows; ++i) same = k0[i] === k1[i] && s0.get(i) === s1.get(i);
  summary.put_roundtrip_equal = same;

  // DoExchange: SQL over the uploaded stream, the result streamed back.
  const exchanged = await bidi(
    'DoExchange',
    uploadMessages(upload, cmdDescriptor('select count(*)::BIGINT as n, sum(k)::BIGINT as total, count(s)::BIGINT as strings from input'))
  );
  const result = arrow.tableFromIPC(toIpcStream(exchanged)).toArray()[0];
  summary.exchange = [String(result.n), String(result.total), String(result.strings)];

  // An error keeps its gRPC code and message.
  try {
    await unary('GetFlightInfo', cmdDescriptor('selec 1'));
    summary.bad_sql = 'no error';
  } catch (err) {
    summary.bad_sql = common.errorText(err);
  }

  console.log(JSON.stringify(summary));
  client.close();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
