#include "bridge/arrow/data_type.h"

#include "bridge/common/testing.h"

namespace bridge::ipc {
namespace {

TEST(ParseFormatTest, PrimitivesAndParameterizedTypes) {
  ASSERT_OK_AND_ASSIGN(DataType i32, ParseFormat("i"));
  EXPECT_EQ(i32.id, TypeId::kInt32);
  EXPECT_EQ(i32.FixedBitWidth(), 32);

  ASSERT_OK_AND_ASSIGN(DataType dec, ParseFormat("d:10,2"));
  EXPECT_EQ(dec.id, TypeId::kDecimal);
  EXPECT_EQ(dec.precision, 10);
  EXPECT_EQ(dec.scale, 2);
  EXPECT_EQ(dec.bit_width, 128);
  ASSERT_OK_AND_ASSIGN(DataType dec256, ParseFormat("d:76,-3,256"));
  EXPECT_EQ(dec256.scale, -3);
  EXPECT_EQ(TypeName(dec256), "decimal256(76,-3)");

  ASSERT_OK_AND_ASSIGN(DataType ts, ParseFormat("tsu:Europe/Paris"));
  EXPECT_EQ(ts.id, TypeId::kTimestamp);
  EXPECT_EQ(ts.unit, TimeUnit::kMicro);
  EXPECT_EQ(ts.timezone, "Europe/Paris");
  ASSERT_OK_AND_ASSIGN(DataType ts_naive, ParseFormat("tsn:"));
  EXPECT_EQ(ts_naive.timezone, "");
  EXPECT_EQ(TypeName(ts_naive), "timestamp[ns]");

  ASSERT_OK_AND_ASSIGN(DataType t32, ParseFormat("ttm"));
  EXPECT_EQ(t32.id, TypeId::kTime32);
  ASSERT_OK_AND_ASSIGN(DataType t64, ParseFormat("ttu"));
  EXPECT_EQ(t64.id, TypeId::kTime64);

  ASSERT_OK_AND_ASSIGN(DataType fsl, ParseFormat("+w:3"));
  EXPECT_EQ(fsl.id, TypeId::kFixedSizeList);
  EXPECT_EQ(fsl.fixed_size, 3);
  ASSERT_OK_AND_ASSIGN(DataType fsb, ParseFormat("w:16"));
  EXPECT_EQ(fsb.FixedBitWidth(), 128);

  ASSERT_OK_AND_ASSIGN(DataType u, ParseFormat("+ud:0,5,7"));
  EXPECT_EQ(u.id, TypeId::kDenseUnion);
  EXPECT_EQ(u.type_codes, (std::vector<int8_t>{0, 5, 7}));

  ASSERT_OK_AND_ASSIGN(DataType view, ParseFormat("vu"));
  EXPECT_EQ(view.id, TypeId::kUtf8View);
  ASSERT_OK_AND_ASSIGN(DataType mdn, ParseFormat("tin"));
  EXPECT_EQ(mdn.FixedBitWidth(), 128);
}

TEST(DataTypeTest, IntegerPredicates) {
  EXPECT_TRUE(IsInteger(TypeId::kUInt64));
  EXPECT_TRUE(IsInteger(TypeId::kInt8));
  EXPECT_FALSE(IsInteger(TypeId::kFloat32));
  EXPECT_FALSE(IsInteger(TypeId::kDecimal));
  EXPECT_TRUE(IsSignedInteger(TypeId::kInt32));
  EXPECT_FALSE(IsSignedInteger(TypeId::kUInt32));
}

TEST(ParseFormatTest, RejectsMalformedStrings) {
  for (const char* bad : {"", "x", "d:", "d:10", "d:1,2,3,4", "d:10,2,100", "w:", "w:-1", "+w:abc",
                          "tsx:", "ttq", "+ud:300", "+q"}) {
    EXPECT_STATUS(ParseFormat(bad), StatusCode::kInvalidArgument, "format string") << bad;
  }
}

}  // namespace
}  // namespace bridge::ipc
