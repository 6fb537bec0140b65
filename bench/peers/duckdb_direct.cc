// The baseline of the engine benchmark: the same query through DuckDB's C API directly,
// with no Bridge code in between. Usage: duckdb_direct DATA_DIR SQL
//
// It defines the table `trips` exactly as Bridge's catalog does (a view over the Hive-
// partitioned Parquet folder) and prints the result as CSV.
#include <cstdio>
#include <string>

#include "duckdb.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: duckdb_direct DATA_DIR SQL\n");
    return 2;
  }
  duckdb_database db;
  duckdb_connection conn;
  if (duckdb_open(nullptr, &db) != DuckDBSuccess || duckdb_connect(db, &conn) != DuckDBSuccess) {
    std::fprintf(stderr, "duckdb_direct: cannot open DuckDB\n");
    return 1;
  }
  std::string view = std::string("CREATE VIEW trips AS SELECT * FROM read_parquet('") + argv[1] +
                     "/trips/**/*.parquet', hive_partitioning = true, union_by_name = true)";
  duckdb_result result;
  for (const std::string& sql : {view, std::string(argv[2])}) {
    if (duckdb_query(conn, sql.c_str(), &result) != DuckDBSuccess) {
      std::fprintf(stderr, "duckdb_direct: %s\n", duckdb_result_error(&result));
      duckdb_destroy_result(&result);
      return 1;
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
  }
  duckdb_disconnect(&conn);
  duckdb_close(&db);
  return 0;
}
