#include "common/csv.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight {
namespace {

using ::testing::HasSubstr;

TEST(CsvTable, ParsesQuotedFieldsWithCommasAndAddressesByName) {
  auto t = CsvTable::Parse("a,b,c\n1,\"x,{'y': 1}\",3\r\n4,5,6\n", "f.csv");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->rows(), 2u);
  int b = *t->Column("b");
  EXPECT_EQ(t->Cell(0, b), "x,{'y': 1}");
  EXPECT_EQ(*t->Int(1, *t->Column("c")), 6);
  EXPECT_EQ(t->Line(1), 3);
}

TEST(CsvTable, ErrorsNameFileLineAndColumn) {
  auto t = CsvTable::Parse("a,b\n1,2\n3,zz\n", "prices.csv");
  ASSERT_TRUE(t.ok());
  auto v = t->Double(1, 1);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("prices.csv:3:2 'b'"));
  auto bad = CsvTable::Parse("a,b\n1,2,3\n", "x.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("x.csv:2"));
  EXPECT_FALSE(CsvTable::Parse("", "empty.csv").ok());
  EXPECT_FALSE(CsvTable::Parse("a\n\"open", "q.csv").ok());
  EXPECT_THAT(std::string(t->Column("nope").status().message()), HasSubstr("missing column 'nope'"));
}

}  // namespace
}  // namespace greenlight
