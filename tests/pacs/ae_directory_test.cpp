#include <gtest/gtest.h>

#include "yilian/pacs/dicom_server.h"

namespace yilian::pacs {
namespace {

TEST(AeDirectory, maps_known_titles_and_files_unknown_ones_under_the_unknown_institution) {
  AeDirectory aes(1, false);
  aes.add("TOWNSHIP_CT", 7);
  EXPECT_EQ(aes.resolve("TOWNSHIP_CT"), 7);
  EXPECT_EQ(aes.resolve("  TOWNSHIP_CT  "), 7);  // padding is not part of the title
  EXPECT_EQ(aes.resolve("township_ct"), 1);      // titles are case-sensitive
  EXPECT_EQ(aes.resolve("OTHER"), 1);
}

TEST(AeDirectory, refuses_unknown_titles_when_configured_to) {
  AeDirectory aes(1, true);
  aes.add("TOWNSHIP_CT", 7);
  EXPECT_EQ(aes.resolve("TOWNSHIP_CT"), 7);
  EXPECT_FALSE(aes.resolve("OTHER").has_value());
}

TEST(NormalizeAeTitle, strips_leading_and_trailing_spaces) {
  EXPECT_EQ(normalize_ae_title(" A B "), "A B");
  EXPECT_EQ(normalize_ae_title("    "), "");
}

}  // namespace
}  // namespace yilian::pacs
