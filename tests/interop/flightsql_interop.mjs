#!/usr/bin/env node
// Usage: node flightsql_interop.mjs HOST:PORT PROTO_DIR
//
// Connects to a running `bridge serve` the way a Flight SQL driver does, with implementations
// independent of Bridge: @grpc/grpc-js + @grpc/proto-loader (Bridge's proto/Flight.proto) for
// the Flight calls, protobufjs (loading proto/FlightSql.proto) for the Flight SQL messages packed
// in google.protobuf.Any, and apache-arrow for the Arrow data. The sequence: GetSqlInfo,
// GetCatalogs, GetDbSchemas, GetTables with schemas, GetTableTypes, GetPrimaryKeys,
// GetXdbcTypeInfo, a query, a prepared statement with a parameter bound by DoPut, closing it,
// and an update (refused).
//
// Expects the data folder of server_interop_test.cc's Flight SQL test: people.csv (3 rows).
// Prints a JSON summary of what it saw and exits 0; exits 1 with the error on stderr.

import * as arrow from 'apache-arrow';
import protobuf from 'protobufjs';
import path from 'node:path';
import * as common from './flight_common.mjs';

const { EOS, collect, errorText, toIpcStream, uploadMessages } = common;
const [address, protoDir] = common.parseArgs('flightsql_interop.mjs');
const client = common.connect(address, protoDir);
const unary = (method, request) => common.unary(client, method, request);
const doPut = (messages) => common.bidi(client, 'DoPut', messages);

const root = new protobuf.Root().loadSync(path.join(protoDir, 'FlightSql.proto'), { keepCase: true });
const Any = new protobuf.Type('Any')
  .add(new protobuf.Field('type_url', 1, 'string'))
  .add(new protobuf.Field('value', 2, 'bytes'));
root.add(Any);
const PREFIX = 'type.googleapis.com/arrow.flight.protocol.sql.';

function sqlType(name) {
  return root.lookupType(`arrow.flight.protocol.sql.${name}`);
}

// Any(name{fields}) as bytes.
function pack(name, fields) {
  const type = sqlType(name);
  const value = type.encode(type.create(fields)).finish();
  return Buffer.from(Any.encode(Any.create({ type_url: PREFIX + name, value })).finish());
}

function unpack(name, bytes) {
  const any = Any.decode(bytes);
  if (any.type_url !== PREFIX + name) throw new Error(`expected ${name}, got ${any.type_url}`);
  return sqlType(name).decode(any.value);
}

function schemaFields(schemaMessage) {
  const schema = arrow.tableFromIPC(Buffer.concat([schemaMessage, EOS])).schema;
  // apache-arrow writes both union modes as Union<...>; say which.
  const type = (t) => (arrow.DataType.isDenseUnion(t) ? `Dense${t}` : `${t}`);
  return schema.fields.map((f) => `${f.name}:${type(f.type)}${f.nullable ? '' : '!'}`);
}

function cmd(bytes) {
  return { type: 'CMD', path: [], cmd: bytes };
}

// GetFlightInfo + DoGet of every endpoint: [info, table].
async function run(command) {
  const info = await unary('GetFlightInfo', cmd(command));
  const data = [];
  for (const endpoint of info.endpoint) data.push(...(await collect(client.DoGet(endpoint.ticket))));
  return [info, arrow.tableFromIPC(toIpcStream(data))];
}

async function action(type, body) {
  const results = await collect(client.DoAction({ type, body }));
  return results.map((r) => r.body);
}

async function main() {
  const summary = {};

  // GetSqlInfo: name, read-only, transactions.
  const [infoInfo, sqlInfo] = await run(pack('CommandGetSqlInfo', { info: [0, 3, 8] }));
  summary.sql_info_schema = schemaFields(infoInfo.schema);
  summary.sql_info = sqlInfo.toArray().map((r) => [Number(r.info_name), r.value]);

  const [, catalogs] = await run(pack('CommandGetCatalogs', {}));
  summary.catalogs = catalogs.toArray().map((r) => r.catalog_name);

  const [, schemas] = await run(pack('CommandGetDbSchemas', { db_schema_filter_pattern: '%' }));
  summary.db_schemas = schemas.toArray().map((r) => [r.catalog_name, r.db_schema_name]);

  const [tablesInfo, tables] = await run(pack('CommandGetTables', { include_schema: true }));
  summary.tables_schema = schemaFields(tablesInfo.schema);
  summary.tables = tables.toArray().map((r) => [r.table_name, r.table_type, schemaFields(Buffer.from(r.table_schema))]);

  const [, types] = await run(pack('CommandGetTableTypes', {}));
  summary.table_types = types.toArray().map((r) => r.table_type);
  const [keysInfo, keys] = await run(pack('CommandGetPrimaryKeys', { table: 'people' }));
  summary.primary_keys = [schemaFields(keysInfo.schema), keys.numRows];
  const [xdbcInfo, xdbc] = await run(pack('CommandGetXdbcTypeInfo', { data_type: 3 }));
  summary.xdbc_schema_width = schemaFields(xdbcInfo.schema).length;
  summary.xdbc_decimal = xdbc.toArray().map((r) => [r.type_name, r.column_size, [...r.create_params]]);

  const [, query] = await run(pack('CommandStatementQuery', { query: 'select id, name from people order by id' }));
  summary.query = query.toArray().map((r) => [Number(r.id), r.name]);

  // A prepared statement with one parameter, bound by DoPut.
  const [created] = await action('CreatePreparedStatement', pack('ActionCreatePreparedStatementRequest', { query: 'select name, score from people where id = ?' }));
  const prepared = unpack('ActionCreatePreparedStatementResult', created);
  summary.prepared_dataset_schema = schemaFields(Buffer.from(prepared.dataset_schema));
  summary.prepared_parameter_schema = schemaFields(Buffer.from(prepared.parameter_schema));
  const handle = Buffer.from(prepared.prepared_statement_handle);
  const command = pack('CommandPreparedStatementQuery', { prepared_statement_handle: handle });
  const parameters = arrow.tableFromArrays({ parameter_1: BigInt64Array.from([2n]) });
  const acks = await doPut(uploadMessages(parameters, cmd(command)));
  summary.bind_handle_same = Buffer.from(sqlType('DoPutPreparedStatementResult').decode(acks[acks.length - 1].app_metadata).prepared_statement_handle).equals(handle);
  const [, bound] = await run(command);
  summary.prepared = bound.toArray().map((r) => [r.name, r.score]);
  const closed = await action('ClosePreparedStatement', pack('ActionClosePreparedStatementRequest', { prepared_statement_handle: handle }));
  summary.close_results = closed.length;
  try {
    await run(command);
    summary.after_close = 'no error';
  } catch (err) {
    summary.after_close = errorText(err);
  }

  // An update: Bridge's SQL is read-only.
  try {
    await doPut(uploadMessages(parameters, cmd(pack('CommandStatementUpdate', { query: 'delete from people' }))));
    summary.update = 'no error';
  } catch (err) {
    summary.update = errorText(err);
  }

  console.log(JSON.stringify(summary));
  client.close();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
