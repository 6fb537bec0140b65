// The JSON REST peer of Bridge's HTTP benchmark: a typical Node.js service over DuckDB.
//
//   node server.mjs DATA_DIR [PORT]      (PORT also from $PORT; 0 or absent = any free port)
//
// Opens an in-memory DuckDB (@duckdb/node-api, DuckDB 1.4.4) with one view per table of the
// data folder, named and read the way Bridge's catalog does (a top-level folder of Parquet
// files is one table read with hive_partitioning and union_by_name; a top-level .parquet
// or .csv file is a table named after the file), and answers
//
//   GET /query?sql=SELECT...   ->  200 application/json: [{"col": value, ...}, ...]
//
// the usual way: the result streams chunk by chunk (so large results do not hit V8's string
// length limit), each chunk's rows converted by node-api's JSON converter
// (yieldRowObjectJson: BIGINT/DECIMAL/UUID as strings, dates and timestamps as ISO-like
// strings) and serialized with JSON.stringify, honouring the socket's backpressure.
// Errors are 400 {"error": "..."}. Prints "node-json peer listening on http://127.0.0.1:PORT".
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

const dataDir = process.argv[2];
if (!dataDir) {
  console.error('usage: node server.mjs DATA_DIR [PORT]');
  process.exit(2);
}
const port = Number(process.argv[3] ?? process.env.PORT ?? 0);

const quote = (s) => `'${s.replaceAll("'", "''")}'`;
const ident = (s) => `"${s.replaceAll('"', '""')}"`;
const tableName = (name) => name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, '_$1');

function hasParquet(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory() ? hasParquet(p) : entry.name.endsWith('.parquet')) return true;
  }
  return false;
}

const instance = await DuckDBInstance.create(':memory:');
const setup = await instance.connect();
for (const entry of fs.readdirSync(dataDir, { withFileTypes: true })) {
  if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
  const full = path.resolve(dataDir, entry.name);
  let source = null;
  if (entry.isDirectory() && hasParquet(full)) {
    source = `read_parquet(${quote(full + '/**/*.parquet')}, hive_partitioning = true, union_by_name = true)`;
  } else if (entry.isFile() && entry.name.endsWith('.parquet')) {
    source = `read_parquet(${quote(full)})`;
  } else if (entry.isFile() && entry.name.endsWith('.csv')) {
    source = `read_csv(${quote(full)})`;
  }
  if (source === null) continue;
  const name = tableName(entry.name.replace(/\.(parquet|csv)$/, ''));
  await setup.run(`CREATE VIEW ${ident(name)} AS SELECT * FROM ${source}`);
}
setup.closeSync();

function sendError(res, status, message) {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function write(res, text) {
  if (!res.write(text)) await new Promise((resolve) => res.once('drain', resolve));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET' || url.pathname !== '/query') return sendError(res, 404, 'not found');
  const sql = url.searchParams.get('sql');
  if (!sql) return sendError(res, 400, 'missing sql');
  const connection = await instance.connect();
  try {
    let result;
    try {
      result = await connection.stream(sql);
    } catch (err) {
      return sendError(res, 400, err.message);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    let first = true;
    await write(res, '[');
    for await (const rows of result.yieldRowObjectJson()) {
      if (rows.length === 0) continue;
      const text = JSON.stringify(rows);
      await write(res, (first ? '' : ',') + text.slice(1, -1));
      first = false;
      if (res.destroyed) break;
    }
    res.end(']');
  } catch (err) {
    res.destroy(err);  // a truncated response, never a silently short one
  } finally {
    connection.closeSync();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`node-json peer listening on http://127.0.0.1:${server.address().port}`);
});
