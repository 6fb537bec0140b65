#include "bridge/http/rows_query.h"

#include <random>

#include "bridge/common/testing.h"

namespace bridge::engine {
// engine::Value holds a Blob, which has no ==; the tests compare Values.
inline bool operator==(const Blob& a, const Blob& b) { return a.bytes == b.bytes; }
}  // namespace bridge::engine

namespace bridge::http {
namespace {

using engine::Value;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A catalog over one Parquet table:
//   id | name                | fare  | paid  | day        | odd.name | we"ird
//   1  | alice               | 12.50 | true  | 2024-01-01 | 10       | a
//   2  | Bob                 |  7.25 | false | 2024-01-02 | 20       | NULL
//   3  | NULL                | 30.00 | NULL  | 2024-02-01 | NULL     | c
//   4  | o'neil              |  5.00 | true  | 2024-03-01 | 40       | d
//   5  | carol               | NULL  | false | NULL       | 50       | e
class RowsQueryEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::EngineOptions options;
    options.data_dir = data_.path();
    options.threads = 1;
    ASSERT_OK_AND_ASSIGN(db_, engine::Database::Open(options));
    ASSERT_OK(db_->ExecuteTrusted(StrCat(
        "COPY (SELECT * FROM (VALUES "
        "(1, 'alice', 12.50, true, DATE '2024-01-01', 10, 'a'), "
        "(2, 'Bob', 7.25, false, DATE '2024-01-02', 20, NULL), "
        "(3, NULL, 30.00, NULL, DATE '2024-02-01', NULL, 'c'), "
        "(4, 'o''neil', 5.00, true, DATE '2024-03-01', 40, 'd'), "
        "(5, 'carol', NULL, false, NULL, 50, 'e')) "
        "AS v(id, name, fare, paid, day, \"odd.name\", \"we\"\"ird\")) TO ",
        engine::QuoteString((data_.path() / "trips.parquet").string()), " (FORMAT parquet)")));
    // Give id, fare and odd.name fixed types whatever VALUES inferred.
    ASSERT_OK(db_->ExecuteTrusted(StrCat(
        "COPY (SELECT CAST(id AS BIGINT) AS id, name, CAST(fare AS DECIMAL(10,2)) AS fare, "
        "paid, day, CAST(\"odd.name\" AS INTEGER) AS \"odd.name\", \"we\"\"ird\" FROM ",
        engine::QuoteString((data_.path() / "trips.parquet").string()), ") TO ",
        engine::QuoteString((data_.path() / "trips2.parquet").string()), " (FORMAT parquet)")));
    std::filesystem::remove(data_.path() / "trips.parquet");
    ASSERT_OK_AND_ASSIGN(catalog_, catalog::Catalog::Open(*db_, {.watch = false}));
    std::optional<catalog::TableInfo> table = catalog_->Table("trips2");
    ASSERT_TRUE(table.has_value());
    table_ = *table;
    ASSERT_OK_AND_ASSIGN(session_, db_->Connect());
  }

  // Builds the query for `params` (plus columns=id unless given) and returns the ids.
  std::vector<int64_t> Ids(Params params) {
    if (!FindParam(params, "columns")) params.emplace_back("columns", "id");
    if (!FindParam(params, "order")) params.emplace_back("order", "id");
    Result<RowsQuery> query = BuildRowsQuery(table_, params);
    EXPECT_TRUE(query.ok()) << query.status();
    if (!query.ok()) return {};
    return Run(*query);
  }

  std::vector<int64_t> Run(const RowsQuery& query) {
    std::vector<int64_t> ids;
    auto prepared = session_->Prepare(query.sql);
    EXPECT_TRUE(prepared.ok()) << prepared.status() << "\n" << query.sql;
    if (!prepared.ok()) return ids;
    EXPECT_EQ((*prepared)->parameter_count(), query.params.size()) << query.sql;
    auto stream = (*prepared)->Execute(query.params);
    EXPECT_TRUE(stream.ok()) << stream.status() << "\n" << query.sql;
    if (!stream.ok()) return ids;
    for (;;) {
      auto batch = (*stream)->Next();
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok() || !batch->valid()) break;
      const ArrowArray* child = (*batch)->children[0];
      for (int64_t row = 0; row < child->length; ++row) {
        ids.push_back(static_cast<const int64_t*>(child->buffers[1])[child->offset + row]);
      }
    }
    return ids;
  }

  testing::TempDir data_;
  std::unique_ptr<engine::Database> db_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<engine::Session> session_;
  catalog::TableInfo table_;
};

TEST_F(RowsQueryEngineTest, TableHasTheExpectedTypes) {
  ASSERT_EQ(table_.columns.size(), 7u);
  EXPECT_EQ(table_.columns[0].type, "BIGINT");
  EXPECT_EQ(table_.columns[1].type, "VARCHAR");
  EXPECT_EQ(table_.columns[2].type, "DECIMAL(10,2)");
  EXPECT_EQ(table_.columns[3].type, "BOOLEAN");
  EXPECT_EQ(table_.columns[4].type, "DATE");
  EXPECT_EQ(table_.columns[5].name, "odd.name");
}

TEST_F(RowsQueryEngineTest, SqlIsParameterized) {
  ASSERT_OK_AND_ASSIGN(RowsQuery q, BuildRowsQuery(table_, {{"columns", "id,name"},
                                                            {"filter", "fare.gt.1"},
                                                            {"filter", "name.like.%"},
                                                            {"order", "fare.desc.nullslast,id"},
                                                            {"limit", "5"},
                                                            {"offset", "1"},
                                                            {"format", "csv"}}));
  EXPECT_EQ(q.sql,
            "SELECT \"id\", \"name\" FROM \"trips2\" WHERE \"fare\" > CAST($1 AS DECIMAL(10,2)) "
            "AND \"name\" LIKE $2 ORDER BY \"fare\" DESC NULLS LAST, \"id\" LIMIT $3 OFFSET $4");
  EXPECT_THAT(q.params, ElementsAre(Value(std::string("1")), Value(std::string("%")),
                                    Value(int64_t{5}), Value(int64_t{1})));
  EXPECT_THAT(Run(q), ElementsAre(2, 4));
}

TEST_F(RowsQueryEngineTest, NoParamsSelectsEverything) {
  ASSERT_OK_AND_ASSIGN(RowsQuery q, BuildRowsQuery(table_, {}));
  EXPECT_EQ(q.sql, "SELECT * FROM \"trips2\"");
  EXPECT_THAT(q.params, IsEmpty());
  EXPECT_EQ(Run(q).size(), 5u);
}

TEST_F(RowsQueryEngineTest, Comparisons) {
  EXPECT_THAT(Ids({{"filter", "id.eq.3"}}), ElementsAre(3));
  EXPECT_THAT(Ids({{"filter", "id.neq.3"}}), ElementsAre(1, 2, 4, 5));
  EXPECT_THAT(Ids({{"filter", "fare.gt.10"}}), ElementsAre(1, 3));
  EXPECT_THAT(Ids({{"filter", "fare.gte.12.50"}}), ElementsAre(1, 3));
  EXPECT_THAT(Ids({{"filter", "fare.lt.7.25"}}), ElementsAre(4));
  EXPECT_THAT(Ids({{"filter", "fare.lte.7.25"}}), ElementsAre(2, 4));
  EXPECT_THAT(Ids({{"filter", "day.gte.2024-02-01"}}), ElementsAre(3, 4));
  EXPECT_THAT(Ids({{"filter", "name.eq.o'neil"}}), ElementsAre(4));
  EXPECT_THAT(Ids({{"filter", "odd.name.eq.20"}}), ElementsAre(2));
  EXPECT_THAT(Ids({{"filter", "we\"ird.eq.c"}}), ElementsAre(3));
  EXPECT_THAT(Ids({{"filter", "id.gt.1"}, {"filter", "paid.is.false"}}), ElementsAre(2, 5));
}

TEST_F(RowsQueryEngineTest, InjectionAttemptsAreJustValues) {
  EXPECT_THAT(Ids({{"filter", "name.eq.x'; drop table t; --"}}), IsEmpty());
  EXPECT_THAT(Ids({{"filter", "name.like.x'; drop view trips2; --"}}), IsEmpty());
  EXPECT_THAT(Ids({{"filter", "name.in.(x') or 1=1 --,alice"}}), ElementsAre(1));
  EXPECT_THAT(Ids({{"filter", "name.eq.\" OR 1=1"}}), IsEmpty());
  EXPECT_EQ(Ids({}).size(), 5u);  // the table is still there
}

TEST_F(RowsQueryEngineTest, LikeIsAndIn) {
  EXPECT_THAT(Ids({{"filter", "name.like.%o%"}}), ElementsAre(2, 4, 5));
  EXPECT_THAT(Ids({{"filter", "name.like.b%"}}), IsEmpty());
  EXPECT_THAT(Ids({{"filter", "name.ilike.b%"}}), ElementsAre(2));
  EXPECT_THAT(Ids({{"filter", "name.is.null"}}), ElementsAre(3));
  EXPECT_THAT(Ids({{"filter", "name.is.notnull"}}), ElementsAre(1, 2, 4, 5));
  EXPECT_THAT(Ids({{"filter", "paid.is.true"}}), ElementsAre(1, 4));
  EXPECT_THAT(Ids({{"filter", "paid.is.false"}}), ElementsAre(2, 5));
  EXPECT_THAT(Ids({{"filter", "id.in.(1,3,5)"}}), ElementsAre(1, 3, 5));
  EXPECT_THAT(Ids({{"filter", "name.in.alice,carol,zed"}}), ElementsAre(1, 5));
  EXPECT_THAT(Ids({{"filter", "fare.in.7.25,30"}}), ElementsAre(2, 3));
}

TEST_F(RowsQueryEngineTest, OrderLimitOffset) {
  EXPECT_THAT(Ids({{"order", "fare.desc.nullslast"}}), ElementsAre(3, 1, 2, 4, 5));
  EXPECT_THAT(Ids({{"order", "fare.desc.nullsfirst"}}), ElementsAre(5, 3, 1, 2, 4));
  EXPECT_THAT(Ids({{"order", "fare.asc"}}), ElementsAre(4, 2, 1, 3, 5));
  EXPECT_THAT(Ids({{"order", "fare.nullsfirst"}}), ElementsAre(5, 4, 2, 1, 3));
  EXPECT_THAT(Ids({{"order", "paid.desc,id.desc"}}), ElementsAre(4, 1, 5, 2, 3));
  EXPECT_THAT(Ids({{"order", "odd.name.desc"}}), ElementsAre(5, 4, 2, 1, 3));
  EXPECT_THAT(Ids({{"limit", "2"}, {"offset", "1"}}), ElementsAre(2, 3));
  EXPECT_THAT(Ids({{"offset", "3"}}), ElementsAre(4, 5));
  EXPECT_THAT(Ids({{"limit", "0"}}), IsEmpty());
  EXPECT_THAT(Ids({{"limit", "9223372036854775807"}}), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(RowsQueryEngineTest, ValueOfTheWrongTypeFailsAtExecution) {
  ASSERT_OK_AND_ASSIGN(RowsQuery q, BuildRowsQuery(table_, {{"filter", "id.eq.abc"}}));
  ASSERT_OK_AND_ASSIGN(auto prepared, session_->Prepare(q.sql));
  auto stream = prepared->Execute(q.params);
  Status status = stream.ok() ? (*stream)->Next().status() : stream.status();
  EXPECT_FALSE(status.ok());
}

catalog::TableInfo Table() {
  catalog::TableInfo table;
  table.name = "t";
  table.columns = {{"a", "BIGINT"},    {"s", "VARCHAR"},
                   {"b", "BOOLEAN"},   {"st", "STRUCT(x INTEGER, \"y\"\") --\" VARCHAR)"},
                   {"l", "INTEGER[]"}, {"ts", "TIMESTAMP WITH TIME ZONE"}};
  return table;
}

TEST(BuildRowsQueryTest, CastsToSimpleTypesOnly) {
  ASSERT_OK_AND_ASSIGN(RowsQuery q, BuildRowsQuery(Table(), {{"filter", "ts.lt.2024-01-01"}}));
  EXPECT_EQ(q.sql, "SELECT * FROM \"t\" WHERE \"ts\" < CAST($1 AS TIMESTAMP WITH TIME ZONE)");
  EXPECT_STATUS(BuildRowsQuery(Table(), {{"filter", "st.eq.1"}}), StatusCode::kInvalidArgument,
                "cannot compare column 'st'");
  EXPECT_STATUS(BuildRowsQuery(Table(), {{"filter", "l.in.1,2"}}), StatusCode::kInvalidArgument,
                "cannot compare column 'l'");
  // IS NULL needs no cast.
  ASSERT_OK_AND_ASSIGN(q, BuildRowsQuery(Table(), {{"filter", "st.is.null"}}));
  EXPECT_EQ(q.sql, "SELECT * FROM \"t\" WHERE \"st\" IS NULL");
}

TEST(BuildRowsQueryTest, OnlyPlainTypeNamesAreSplicedIntoCasts) {
  for (std::string type : {"BIGINT", "DECIMAL(18,3)", "DECIMAL(18, 3)", "VARCHAR(10)",
                           "TIME WITH TIME ZONE", "TIMESTAMP_NS", "UUID"}) {
    catalog::TableInfo table{.name = "t", .columns = {{"c", type}}};
    EXPECT_TRUE(BuildRowsQuery(table, {{"filter", "c.eq.1"}}).ok()) << type;
  }
  for (std::string type : {"ENUM('a', 'b')", "INTEGER[]", "MAP(VARCHAR, INTEGER)", "DECIMAL(",
                           "DECIMAL()", "DECIMAL(1,)", "DECIMAL(1,2,3)", "BIGINT ", " BIGINT",
                           "TIME  ZONE", "bigint", "STRUCT(a INTEGER)", "X) --", ""}) {
    catalog::TableInfo table{.name = "t", .columns = {{"c", type}}};
    EXPECT_STATUS(BuildRowsQuery(table, {{"filter", "c.eq.1"}}), StatusCode::kInvalidArgument,
                  "cannot compare column 'c'")
        << type;
  }
}

TEST(BuildRowsQueryTest, Errors) {
  struct Case {
    Params params;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{{"columns", "a,nope"}}, "table 't' has no column 'nope'"},
           {{{"columns", "a,,s"}}, "has no column ''"},
           {{{"columns", ""}}, "has no column ''"},
           {{{"filter", "nope.eq.1"}}, "table 't' has no column 'nope'"},
           {{{"filter", "a.equals.1"}}, "is not <column>.<op>.<value>"},
           {{{"filter", "a.eq"}}, "is not <column>.<op>.<value>"},
           {{{"filter", "a"}}, "is not <column>.<op>.<value>"},
           {{{"filter", ""}}, "is not <column>.<op>.<value>"},
           {{{"filter", "a.like.1%"}}, "like needs a VARCHAR column; 'a' is BIGINT"},
           {{{"filter", "a.ilike.1%"}}, "ilike needs a VARCHAR column"},
           {{{"filter", "s.is.maybe"}}, "is takes null, notnull, true or false"},
           {{{"filter", "s.is.true"}}, "needs a BOOLEAN column"},
           {{{"filter", "a.in."}}, "in needs at least one value"},
           {{{"filter", "a.in.()"}}, "in needs at least one value"},
           {{{"order", "nope"}}, "order: 'nope'"},
           {{{"order", "a.sideways"}}, "order: 'a.sideways'"},
           {{{"order", "a.desc.asc"}}, "order: 'a.desc.asc'"},
           {{{"order", "a,"}}, "order: ''"},
           {{{"limit", "-1"}}, "limit must be a non-negative integer"},
           {{{"limit", "ten"}}, "limit must be a non-negative integer"},
           {{{"offset", "1.5"}}, "offset must be a non-negative integer"},
           {{{"limit", "1"}, {"limit", "2"}}, "limit appears more than once"},
           {{{"order", "a"}, {"order", "s"}}, "order appears more than once"},
       }) {
    EXPECT_STATUS(BuildRowsQuery(Table(), c.params), StatusCode::kInvalidArgument, c.message)
        << c.params.front().first << "=" << c.params.front().second;
  }
  std::string many(1001 * 2, ',');
  EXPECT_STATUS(BuildRowsQuery(Table(), {{"filter", "a.in." + many}}), StatusCode::kInvalidArgument,
                "at most 1000 values");
}

TEST(BuildRowsQueryTest, BrokenTable) {
  catalog::TableInfo table;
  table.name = "bad";
  table.error = "cannot read file";
  EXPECT_STATUS(BuildRowsQuery(table, {}), StatusCode::kInvalidArgument,
                "table 'bad' cannot be read: cannot read file");
}

TEST(BuildRowsQueryTest, RandomParamsNeverCrash) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {"a",          "s",  "b",  "st",   "ts",   ".",    ",",
                                           "eq",         "in", "is", "like", "null", "true", "desc",
                                           "nullsfirst", "(",  ")",  "1",    "'",    "\"",   ""};
  const std::vector<std::string> keys = {"filter", "order", "columns", "limit", "offset"};
  for (int i = 0; i < 20000; ++i) {
    std::string value;
    for (int n = rng() % 8; n > 0; --n) value += pieces[rng() % pieces.size()];
    Result<RowsQuery> q = BuildRowsQuery(Table(), {{keys[rng() % keys.size()], value}});
    if (q.ok()) {
      // Whatever was accepted only holds quoted identifiers and $n placeholders.
      EXPECT_EQ(q->sql.find('\''), std::string::npos) << q->sql;
    }
  }
}

}  // namespace
}  // namespace bridge::http
