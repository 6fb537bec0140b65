// The baseline of the engine benchmark: the same query through DuckDB's C API directly,
// with no Bridge code in between. Usage: duckdb_direct [--stream] DATA_DIR SQL
//
// It defines the table `trips` exactly as Bridge's catalog does (a view over the Hive-
// partitioned Parquet folder). By default the query runs with duckdb_query (a materialized
// result) and the result is printed as CSV. --stream prepares the query and fetches its
// chunks from duckdb_execute_prepared_streaming, as Bridge must to stream large results,
// and prints only the number of rows.
#include <cstdio>
#include <cstring>
#include <string>

#include "duckdb.h"

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "duckdb_direct: %s\n", what != nullptr ? what : "unknown error");
  return 1;
}

// duckdb_query + CSV of the materialized result.
int RunMaterialized(duckdb_connection conn, const std::string& sql) {
  duckdb_result result;
  if (duckdb_query(conn, sql.c_str(), &result) != DuckDBSuccess) {
    int code = Fail(duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    return code;
  }
  idx_t columns = duckdb_column_count(&result);
  idx_t rows = duckdb_row_count(&result);
  for (idx_t r = 0; r < rows; ++r) {
    for (idx_t c = 0; c < columns; ++c) {
      char* value = duckdb_value_varchar(&result, c, r);
      std::printf("%s%s", c == 0 ? "" : ",", value != nullptr ? value : "");
      duckdb_free(value);
    }
    std::printf("\n");
  }
  duckdb_destroy_result(&result);
  return 0;
}

// duckdb_prepare + duckdb_execute_prepared_streaming + duckdb_fetch_chunk.
int RunStreaming(duckdb_connection conn, const std::string& sql) {
  duckdb_prepared_statement stmt = nullptr;
  if (duckdb_prepare(conn, sql.c_str(), &stmt) != DuckDBSuccess) {
    int code = Fail(duckdb_prepare_error(stmt));
    duckdb_destroy_prepare(&stmt);
    return code;
  }
  duckdb_result result;
  if (duckdb_execute_prepared_streaming(stmt, &result) != DuckDBSuccess) {
    int code = Fail(duckdb_result_error(&result));
    duckdb_destroy_result(&result);
    duckdb_destroy_prepare(&stmt);
    return code;
  }
  idx_t rows = 0;
  while (duckdb_data_chunk chunk = duckdb_fetch_chunk(result)) {
    rows += duckdb_data_chunk_get_size(chunk);
    duckdb_destroy_data_chunk(&chunk);
  }
  int code = 0;
  if (const char* error = duckdb_result_error(&result); error != nullptr) code = Fail(error);
  duckdb_destroy_result(&result);
  duckdb_destroy_prepare(&stmt);
  if (code == 0) std::printf("%llu rows\n", static_cast<unsigned long long>(rows));
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  bool stream = argc == 4 && std::strcmp(argv[1], "--stream") == 0;
  if (stream) {
    ++argv;
    --argc;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: duckdb_direct [--stream] DATA_DIR SQL\n");
    return 2;
  }
  duckdb_database db;
  duckdb_connection conn;
  if (duckdb_open(nullptr, &db) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess) {
    return Fail("cannot open DuckDB");
  }
  std::string view = std::string("CREATE VIEW trips AS SELECT * FROM read_parquet('") + argv[1] +
                     "/trips/**/*.parquet', hive_partitioning = true, union_by_name = true)";
  duckdb_result created;
  if (duckdb_query(conn, view.c_str(), &created) != DuckDBSuccess) {
    int code = Fail(duckdb_result_error(&created));
    duckdb_destroy_result(&created);
    return code;
  }
  duckdb_destroy_result(&created);
  int code = stream ? RunStreaming(conn, argv[2]) : RunMaterialized(conn, argv[2]);
  duckdb_disconnect(&conn);
  duckdb_close(&db);
  return code;
}
