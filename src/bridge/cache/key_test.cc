// NormalizeSql, DigestKey and entry ids.
#include <set>
#include <string>

#include "bridge/cache/cache.h"
#include "bridge/cache/cache_internal.h"
#include "bridge/common/testing.h"

namespace bridge::cache {
namespace {

TEST(NormalizeSqlTest, WhitespaceAndCommentsCollapseToOneSpace) {
  EXPECT_EQ(NormalizeSql("  SELECT\t a,\n\n  b  FROM   t  "), "SELECT a, b FROM t");
  EXPECT_EQ(NormalizeSql("SELECT 1 -- the answer\nFROM t"), "SELECT 1 FROM t");
  EXPECT_EQ(NormalizeSql("SELECT/* one */1/* two /* nested */ still */FROM t"), "SELECT 1 FROM t");
  EXPECT_EQ(NormalizeSql("SELECT 1 -- to the end"), "SELECT 1");
  EXPECT_EQ(NormalizeSql(""), "");
  EXPECT_EQ(NormalizeSql(" \n\t "), "");
}

TEST(NormalizeSqlTest, QuotedTextIsKeptByteForByte) {
  EXPECT_EQ(NormalizeSql("SELECT  'a  --  b'  FROM t"), "SELECT 'a  --  b' FROM t");
  EXPECT_EQ(NormalizeSql("SELECT 'it''s  here'"), "SELECT 'it''s  here'");
  EXPECT_EQ(NormalizeSql("SELECT \"my   column\" FROM t"), "SELECT \"my   column\" FROM t");
  EXPECT_EQ(NormalizeSql("SELECT E'a\\'  /* b'"), "SELECT E'a\\'  /* b'");
  EXPECT_EQ(NormalizeSql("SELECT $$ a   b $$,  $tag$ x $$ y $tag$"),
            "SELECT $$ a   b $$, $tag$ x $$ y $tag$");
  // A parameter is not a dollar quote.
  EXPECT_EQ(NormalizeSql("SELECT $1,   $2"), "SELECT $1, $2");
  // Unterminated quotes and comments keep the rest as is.
  EXPECT_EQ(NormalizeSql("SELECT  'a   b"), "SELECT 'a   b");
  EXPECT_EQ(NormalizeSql("SELECT  /* a   b"), "SELECT /* a   b");
}

CacheKey Key(std::string sql, std::vector<TableVersion> tables = {{"trips", 1}}) {
  return CacheKey{std::move(sql), {}, "", std::move(tables)};
}

TEST(DigestKeyTest, SameQueryWrittenDifferentlyHasTheSameDigest) {
  const KeyDigest a = DigestKey(Key("SELECT *  FROM trips -- all\n"));
  const KeyDigest b = DigestKey(Key("SELECT * FROM trips"));
  EXPECT_EQ(a.query, b.query);
  EXPECT_EQ(a.full, b.full);
  EXPECT_EQ(a.query.size(), 64u);
  EXPECT_EQ(a.full.size(), 64u);
  EXPECT_NE(a.query, a.full);
  // The order of tables does not matter.
  EXPECT_EQ(DigestKey(Key("SELECT 1", {{"a", 1}, {"b", 2}})).full,
            DigestKey(Key("SELECT 1", {{"b", 2}, {"a", 1}})).full);
}

TEST(DigestKeyTest, EveryPartOfTheKeyCounts) {
  const CacheKey base{"SELECT ?", {"int64:5"}, "codec=none", {{"trips", 3}}};
  std::set<std::string> full;
  std::set<std::string> query;
  auto add = [&](const CacheKey& key) {
    const KeyDigest d = DigestKey(key);
    full.insert(d.full);
    query.insert(d.query);
  };
  add(base);
  CacheKey other_sql = base;
  other_sql.sql = "SELECT  '?'";
  add(other_sql);
  CacheKey other_parameter = base;
  other_parameter.parameters = {"utf8:5"};
  add(other_parameter);
  CacheKey split_parameters = base;
  split_parameters.parameters = {"int64:", "5"};
  add(split_parameters);
  CacheKey other_options = base;
  other_options.output_options = "codec=zstd";
  add(other_options);
  CacheKey other_version = base;
  other_version.tables = {{"trips", 4}};
  add(other_version);
  EXPECT_EQ(full.size(), 6u);
  // The table version changes only the full digest: same query, other data.
  EXPECT_EQ(query.size(), 5u);
  EXPECT_EQ(DigestKey(other_version).query, DigestKey(base).query);
}

TEST(EntryIdTest, RandomHexIds) {
  ASSERT_OK_AND_ASSIGN(std::string a, internal::NewEntryId());
  ASSERT_OK_AND_ASSIGN(std::string b, internal::NewEntryId());
  EXPECT_TRUE(internal::IsEntryId(a));
  EXPECT_NE(a, b);
  EXPECT_FALSE(internal::IsEntryId(""));
  EXPECT_FALSE(internal::IsEntryId(std::string(32, 'A')));
  EXPECT_FALSE(internal::IsEntryId(std::string(31, 'a')));
  EXPECT_FALSE(internal::IsEntryId("../../../../etc/passwd0000000000"));
  EXPECT_EQ(internal::Hex64(0x0123456789abcdefULL), "0123456789abcdef");
}

}  // namespace
}  // namespace bridge::cache
