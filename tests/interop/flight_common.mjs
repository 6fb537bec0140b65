// Helpers shared by the Flight interop scripts (flight_interop.mjs, flightsql_interop.mjs):
// a FlightService client from @grpc/grpc-js + @grpc/proto-loader loading Bridge's
// proto/Flight.proto, call helpers, and the conversion between FlightData and the IPC stream
// apache-arrow reads and writes.

import * as arrow from 'apache-arrow';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import path from 'node:path';

export { grpc };

// Returns [address, protoDir] from the command line, or exits with the usage of `script`.
export function parseArgs(script) {
  const [address, protoDir] = process.argv.slice(2);
  if (!address || !protoDir) {
    console.error(`usage: node ${script} HOST:PORT PROTO_DIR`);
    process.exit(2);
  }
  return [address, protoDir];
}

export function connect(address, protoDir) {
  const definition = protoLoader.loadSync(path.join(protoDir, 'Flight.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const { FlightService } = grpc.loadPackageDefinition(definition).arrow.flight.protocol;
  return new FlightService(address, grpc.credentials.createInsecure());
}

export function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

export async function collect(stream) {
  const out = [];
  for await (const message of stream) out.push(message);
  return out;
}

// Writes `messages` on a bidirectional call and resolves with what the server sent back.
export function bidi(client, method, messages) {
  return new Promise((resolve, reject) => {
    const call = client[method]();
    const received = [];
    call.on('data', (r) => received.push(r));
    call.on('error', reject);
    call.on('end', () => resolve(received));
    for (const m of messages) call.write(m);
    call.end();
  });
}

export const EOS = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

// Encapsulated IPC messages from FlightData (metadata-only messages are skipped).
export function toIpcStream(flightData) {
  const parts = [];
  for (const m of flightData) {
    if (!m.data_header || m.data_header.length === 0) continue;
    const pad = (8 - (m.data_header.length % 8)) % 8;
    const prefix = Buffer.alloc(8);
    prefix.writeInt32LE(-1, 0);
    prefix.writeInt32LE(m.data_header.length + pad, 4);
    parts.push(prefix, m.data_header, Buffer.alloc(pad), m.data_body);
  }
  parts.push(EOS);
  return Buffer.concat(parts);
}

// The messages of an IPC stream: [{header (flatbuffer), body}].
export function ipcMessages(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = [];
  let off = 0;
  while (off + 8 <= bytes.length) {
    let len = view.getInt32(off, true);
    off += 4;
    if (len === -1) {
      len = view.getInt32(off, true);
      off += 4;
    }
    if (len === 0) break;
    const header = bytes.subarray(off, off + len);
    off += len;
    const bodyLength = Number(arrow.Message.decode(header).bodyLength);
    out.push({ header: Buffer.from(header), body: Buffer.from(bytes.subarray(off, off + bodyLength)) });
    off += bodyLength;
  }
  return out;
}

// FlightData of an apache-arrow table: the first carries the descriptor and app_metadata.
export function uploadMessages(table, descriptor, appMetadata) {
  return ipcMessages(arrow.tableToIPC(table, 'stream')).map((m, i) => ({
    flight_descriptor: i === 0 ? descriptor : null,
    data_header: m.header,
    app_metadata: i === 0 && appMetadata ? Buffer.from(appMetadata) : Buffer.alloc(0),
    data_body: m.body,
  }));
}

// Returns "CODE: first line of the message" of a gRPC error.
export function errorText(err) {
  return `${grpc.status[err.code]}: ${err.details.split('\n')[0]}`;
}
