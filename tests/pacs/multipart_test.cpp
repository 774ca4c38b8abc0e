#include <gtest/gtest.h>

#include "yilian/pacs/dicomweb.h"

namespace yilian::pacs {
namespace {

TEST(Multipart, splits_parts_with_their_types_and_keeps_binary_bytes) {
  std::string bin("a\0b\r\nc", 6);
  std::string body =
      "preamble\r\n--xyz\r\nContent-Type: application/dicom\r\n\r\n" + bin +
      "\r\n--xyz\r\ncontent-type:text/plain\r\nX-Other: 1\r\n\r\nhello\r\n--xyz--\r\n";
  auto parts =
      split_multipart(R"(multipart/related; type="application/dicom"; boundary="xyz")", body);
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].content_type, "application/dicom");
  EXPECT_EQ((*parts)[0].bytes, bin);
  EXPECT_EQ((*parts)[1].content_type, "text/plain");
  EXPECT_EQ((*parts)[1].bytes, "hello");
}

TEST(Multipart, malformed_bodies_are_errors_not_crashes) {
  const std::string ct = "multipart/related; boundary=xyz";
  EXPECT_FALSE(split_multipart("application/json", "{}").ok());
  EXPECT_FALSE(split_multipart("multipart/related", "--xyz--").ok());  // no boundary
  EXPECT_FALSE(split_multipart(ct, "nothing here").ok());
  EXPECT_FALSE(split_multipart(ct, "--xyz\r\nContent-Type: a\r\n\r\nunterminated").ok());
  EXPECT_FALSE(split_multipart(ct, "--xyz\r\nno header end").ok());
  EXPECT_FALSE(split_multipart(ct, "--xyzGARBAGE").ok());
  auto empty = split_multipart(ct, "--xyz--\r\n");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace yilian::pacs
